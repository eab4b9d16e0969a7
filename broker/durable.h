/* The broker's side of the replicated state: proposals for everything durable (sessions,
 * subscriptions, retained messages, queued messages, wills), the handler of every applied
 * command that keeps the in-memory indices in step, and the start-up load from storage.
 *
 * Proposals return 0 (cb fires once, later, with the commit status) or a negative error
 * (cb never fires). The in-memory subscription index, retained index and durable queues
 * change only when a command is applied (dur_applied), never at proposal time. */
#ifndef STARLING_BROKER_DURABLE_H
#define STARLING_BROKER_DURABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"

struct broker;
struct msg;
struct session;

/* A set of proposals whose outcome one reply waits for (SUBACK, PUBACK, CONNACK).
 * dur_wait_new() starts with one hold; each proposal made with dur_wait_cb adds one; the
 * reply's done callback fires once the holds are gone (status: first failure, or 0). */
struct dur_wait;
typedef void (*dur_done_cb)(struct broker *b, struct dur_wait *w, int status);
struct dur_wait {
    struct broker *b;
    dur_done_cb done;
    int pending;
    int status;
    uint64_t conn_id;
    uint64_t reply_seq;
    void *data; /* owned by the done callback */
    uint32_t u32;
    uint16_t pid;
    uint8_t qos;
};
struct dur_wait *dur_wait_new(struct broker *b, dur_done_cb done);
/* Drops the initial hold (call after the last proposal). */
void dur_wait_release(struct dur_wait *w);
/* A proposal callback for a dur_wait (data = the wait). Adds a hold when used via dur_hold. */
void dur_wait_cb(void *data, int status, uint64_t index);
static inline void *dur_hold(struct dur_wait *w)
{
    w->pending++;
    return w;
}
/* A failed proposal for a wait (the callback will not fire). */
void dur_wait_fail(struct dur_wait *w, int status);

/* Proposes cmd (cb may be NULL). Fails fast while the state cannot be written. */
int dur_propose(struct broker *b, const struct cluster_cmd *cmd, cluster_applied_cb cb, void *data);

int dur_session_open(struct broker *b, const struct session *s, bool clean_start,
                     cluster_applied_cb cb, void *data);
int dur_session_client(struct broker *b, enum cluster_cmd_type type, const char *client_id,
                       size_t len);
int dur_subscribe(struct broker *b, const char *client_id, size_t client_len, const char *filter,
                  size_t filter_len, uint8_t options, uint32_t sub_id, cluster_applied_cb cb,
                  void *data);
int dur_unsubscribe(struct broker *b, const char *client_id, size_t client_len, const char *filter,
                    size_t filter_len, cluster_applied_cb cb, void *data);
int dur_retain_set(struct broker *b, const struct msg *m, const char *publisher,
                   cluster_applied_cb cb, void *data);
int dur_retain_clear(struct broker *b, const char *topic, size_t len, cluster_applied_cb cb,
                     void *data);
int dur_queue_push(struct broker *b, const struct session *s, const struct msg *m, uint64_t msg_id,
                   cluster_applied_cb cb, void *data);
int dur_queue_ack(struct broker *b, const struct session *s, uint64_t msg_id);
int dur_will_set(struct broker *b, const struct session *s);
int dur_will_clear(struct broker *b, const struct session *s);

/* Several nodes: whether this node acts on an offline session's due expiry or will: the
 * node the client was last connected to while it is live, else the leader. One node alone,
 * or a session connected here: true. */
bool dur_session_due_here(struct broker *b, const struct session *s);
/* Several nodes: whether the will of a client of a node declared down is due at once (its
 * session ends with the node, or the will has no delay); else it waits for its delay or the
 * session's expiry, as the session's timers say (dur_session_due_here). */
bool dur_will_due_at_node_down(const struct store_session *ss, const struct store_will *w);

/* A message from a stored record (a copy). NULL without memory. */
struct msg *dur_msg_from_store(const struct store_message *sm);

/* Loads sessions, subscriptions, retained messages, queues and wills from storage into
 * memory (before cluster_start replays the log tail). */
int dur_load(struct broker *b);

/* The cluster's events. */
void dur_applied(void *ctx, const struct cluster_cmd *cmd, uint64_t index);
void dur_restored(void *ctx, uint64_t index);
void dur_failed(void *ctx, int rc);
void dur_leader_changed(void *ctx, uint64_t leader_id, bool is_self);

/* The cluster's log lines, into log_at. */
void dur_log(void *ctx, enum cluster_log_level level, const char *line);

#endif
