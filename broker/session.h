/* Sessions: the state of one client id that outlives (or not) its connection. In-flight
 * messages in both directions with the QoS 1/2 state machines, packet-id allocation and
 * reuse, DUP on redelivery, redelivery on reconnect, Receive Maximum both ways, the offline
 * queue bounded by max_queued_messages/max_queued_bytes, queue_qos0_messages, takeover,
 * expiry, and the bridge to durable state (queue push/ack, session open/close/expire).
 *
 * Ownership: the broker's session table owns every struct session (b->sessions, by client
 * id). A connection points to its session while attached; a session points back to its
 * connection (NULL while offline). Messages in queues hold msg references. */
#ifndef STARLING_BROKER_SESSION_H
#define STARLING_BROKER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "htab.h"
#include "msg.h"
#include "wheel.h"

struct broker;
struct conn;
struct listener;

enum session_out_state {
    OUT_QUEUED = 0,   /* not sent yet (window full or offline) */
    OUT_WAIT_PUBACK,  /* QoS 1 sent */
    OUT_WAIT_PUBREC,  /* QoS 2 sent */
    OUT_WAIT_PUBCOMP, /* QoS 2: PUBREL sent */
};

/* One outbound message: queued, or in flight with a packet id. Pooled (no malloc per
 * message once warm). */
struct session_out {
    struct session_out *next;
    struct session_out *prev;  /* in flight: the one sent before */
    struct htab_node pid_node; /* in flight: in the session's table by packet id */
    struct msg *m;
    uint64_t msg_id; /* durable queue id; 0 when not in the durable queue */
    uint16_t pid;
    uint8_t qos;
    uint8_t state;    /* enum session_out_state */
    bool retain;      /* RETAIN flag to send */
    bool sent;        /* sent before: DUP on resend */
    uint8_t nsub_ids; /* subscription identifiers (at most SESSION_SUB_IDS kept) */
    uint32_t sub_ids[2];
};

struct session_will {
    struct msg *m;
    uint32_t delay_s;
    uint32_t expiry_s; /* Message Expiry Interval, from when it is published; 0: none */
    bool durable;      /* a WILL_SET was committed: clear it when the will is gone */
};

/* Fields are ordered by size so that the struct has no padding (an idle connection's
 * session is a large share of its memory). */
struct session {
    struct htab_node node;
    struct broker *b;
    char *client_id; /* NUL-terminated, from session_id_new() (a reference) */
    char *username;  /* of the last connection, for ACL checks of deliveries; owned */
    struct conn *conn;
    struct listener *lst; /* of the last connection (its ACL applies); NULL if loaded */
    /* Several nodes: the node the client is connected to per the committed state (the last
     * applied SESSION_OPEN), 0 once it disconnected there. */
    uint64_t node_id;
    struct wheel_entry expiry_entry;
    struct session_will will;
    struct wheel_entry will_entry;

    /* outbound */
    struct session_out *inflight, *inflight_tail; /* in send order */
    struct htab *pids; /* in-flight records by packet id; NULL while none is in flight */
    struct session_out *queue, *queue_tail;
    uint64_t queue_bytes;
    /* inbound QoS 2 packet ids awaiting PUBREL */
    uint16_t *qos2_in;
    uint32_t qos2_in_count, qos2_in_cap;

    uint32_t expiry_s; /* after disconnect; UINT32_MAX: never */
    uint32_t inflight_count;
    uint32_t queue_count;
    uint32_t pending_pushes; /* durable queue pushes proposed, not applied yet */
    uint16_t last_pid;
    uint16_t client_id_len;
    uint8_t version;
    bool persistent;     /* outlives its connection */
    bool durable;        /* a SESSION_OPEN was committed for it */
    bool committed_subs; /* subscriptions were proposed: purge them when it ends */
};

/* ---- the table ---- */

void session_table_init(struct broker *b);
/* Frees every session (broker exit: nothing is proposed). */
void session_table_close(struct broker *b);
struct session *session_find(struct broker *b, const char *client_id, size_t len);
/* A new offline session registered under client_id. NULL without memory. */
struct session *session_new(struct broker *b, const char *client_id, size_t len);
/* As session_new, with an id from session_id_new() (a reference is taken, the caller keeps
 * its own). */
struct session *session_new_id(struct broker *b, char *id);

/* Client ids shared by a connection and its session (one copy per client): a NUL-terminated
 * string with a reference count in front. session_id_new returns it with one reference, or
 * NULL without memory; session_id_unref(NULL) is a no-op. */
char *session_id_new(const char *client_id, size_t len);
char *session_id_ref(char *id);
void session_id_unref(char *id);
/* Removes the session from the table, drops its subscriptions from the index, its queues and
 * its will (without firing it), and frees it. It must be detached. */
void session_free(struct session *s);

/* ---- connection life ---- */

/* Creates and attaches the (empty, clean) session of a bare connection (see conn.h), which
 * stops being bare. Returns 0 or -ENOMEM (the connection is unchanged). */
int session_open_bare(struct conn *c);

/* Attaches c to s and redelivers: unacknowledged PUBLISHes again with DUP, PUBREL for
 * those awaiting PUBCOMP, then queued messages up to the window. */
void session_attach(struct session *s, struct conn *c);
/* The connection ended with reason (0: normal DISCONNECT). Handles the will (dropped on a
 * normal disconnect, due now or after its delay otherwise), and either ends the session
 * (not persistent) or keeps it offline with its expiry scheduled. */
void session_detach(struct session *s, struct conn *c, uint8_t reason);
/* Ends a session now: will due, subscriptions and queue gone, durable state purged. */
void session_end(struct session *s, bool expired);

/* Whether a session persists after its connection (clean session 0 / expiry > 0). */
static inline bool session_is_persistent(const struct session *s)
{
    return s->persistent;
}

/* ---- outbound ---- */

/* Delivers m to s at qos with the given RETAIN flag and subscription ids: sent now when
 * online and the window allows, else queued (within limits), else dropped and counted. */
void session_deliver(struct session *s, struct msg *m, uint8_t qos, bool retain,
                     const uint32_t *sub_ids, uint32_t nsub_ids);
/* Adds a message from the durable queue (start-up load or an applied push). */
void session_queue_durable(struct session *s, struct msg *m, uint64_t msg_id);
/* PUBACK / PUBREC / PUBCOMP from the client. Returns 0, or a reason for a protocol error. */
int session_on_puback(struct session *s, uint16_t pid);
int session_on_pubrec(struct session *s, uint16_t pid, uint8_t reason);
int session_on_pubcomp(struct session *s, uint16_t pid);
/* Sends what the window allows from the queue. */
void session_pump(struct session *s);

/* ---- inbound QoS 2 ---- */

bool session_qos2_in_has(const struct session *s, uint16_t pid);
int session_qos2_in_add(struct session *s, uint16_t pid);
bool session_qos2_in_remove(struct session *s, uint16_t pid);

/* ---- wills ---- */

/* Replaces the session's will (NULL clears it). Takes the reference to m. */
void session_set_will(struct session *s, struct msg *m, uint32_t delay_s, uint32_t expiry_s);
/* Publishes the will now (if any) and clears it. */
void session_fire_will(struct session *s);

#endif
