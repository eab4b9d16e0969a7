/* The cluster object, shared by the files of cluster/ (cluster.c: lifecycle, proposals;
 * multi.c: the cluster port, links and forwarding; liveness.c; members.c; owner.c). */
#ifndef STARLING_CLUSTER_IMPL_H
#define STARLING_CLUSTER_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "cluster.h"
#include "forward.h"
#include "fsm.h"
#include "link.h"
#include "port.h"
#include "ring.h"
#include "transport_local.h"
#include "transport_port.h"

#define DEFAULT_CLUSTER_PORT 7700u

/* A proposal handed to raft, waiting until its index is committed into LMDB. */
struct proposal {
    struct proposal *next;
    uint64_t index; /* 0 until raft_apply assigned it */
    cluster_applied_cb cb;
    void *data;
};

/* The committed liveness verdict on one node (nodes table), kept in memory. */
struct node_state {
    uint64_t id;
    bool known; /* a verdict is committed */
    bool up;
    bool proposing;         /* the leader proposed a change and waits for it */
    uint64_t changed_at_ms; /* of the committed verdict (the proposer's clock) */
    uint64_t down_epoch;    /* the ring epoch of its last NODE_DOWN applied since this start */
};

/* The owner lease (lease.c). */
#define LEASE_GRANTS     4
#define LEASE_VOTERS_MAX 64
struct lease_grant {
    uint64_t leader;
    uint64_t asked_ms; /* this node's loop time when it asked */
    uint64_t commit;   /* the leader's commit index when it answered */
};
struct lease {
    struct lease_grant grants[LEASE_GRANTS]; /* a follower's latest answers, a ring */
    size_t next;
    struct {
        uint64_t id, term, asked_ms; /* the latest question of this leader it answered */
    } voters[LEASE_VOTERS_MAX];
    size_t n_voters;
    bool held; /* as cluster_current last answered (logged when it changes) */
};

struct cluster {
    uv_loop_t *loop;
    struct cluster_config cfg;
    struct cluster_events ev;
    void *ev_ctx;
    char *data_dir, *raft_dir, *state_dir, *address;
    struct store *store;
    struct fsm fsm;

    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport tcp;
    struct transport_local local;
    bool use_tcp, transport_ready, io_ready, raft_ready, started;

    uv_check_t check; /* flushes the FSM batch and the proposal queue */
    uv_idle_t idle;   /* active while something waits: keeps poll from blocking */
    uv_timer_t retry; /* retries commits in the failed state */
    int handles_open;
    /* After raft_close: libraft 0.15 may still call the raft_io's close callback (see
     * raft_closed in cluster.c), so the memory holding io and raft lives on until the loop has
     * no request in flight; io.data then points at spent (zeroed: nothing to free). */
    uv_timer_t reap;
    struct raft spent;
    unsigned reap_quiet, reap_ticks;
    bool io_closed;

    /* Queued (not yet given to raft) proposals, in order, with their encoded buffers. */
    struct proposal **queued;
    struct raft_buffer *queued_bufs;
    unsigned n_queued, cap_queued;
    /* Handed to raft, in index order. */
    struct proposal *inflight_head, *inflight_tail;

    uint64_t leader_id;
    struct raft_barrier commit_push; /* the leader's barrier that sends the commit index */
    bool commit_push_pending, commit_push_again;
    uint64_t restored_index;                    /* a restore to report from the next check, or 0 */
    bool restored;                              /* restored_index is to be reported */
    struct cluster_apply_latency apply_latency; /* cluster_propose -> applied (cluster.c) */
    bool closing;
    bool unavailable_logged; /* raft stopped after an I/O error (logged once) */
    cluster_close_cb close_cb;
    void *close_data;

    /* ---- multi-node (multi.c and friends); unused when !multi ---- */
    bool multi;
    struct port *port;
    struct transport_port tport;
    struct link *link;
    struct fwd fwd;
    struct ring ring;
    struct node_state *nodes; /* committed verdicts, sorted by id */
    size_t n_nodes;
    bool ring_dirty;
    struct lease lease;
    uint64_t ring_epoch;       /* ring_epoch_next over the applied NODE_UP / NODE_DOWN */
    uint64_t ring_epoch_built; /* the epoch of the ring as built (cluster_ring_epoch) */
    uv_timer_t tick;           /* liveness, forwarding timeouts, configuration watch, join */
    bool tick_open;
    uint64_t conf_sig;     /* signature of the configuration the links follow */
    uint64_t leader_since; /* uv_now when this node became leader, 0 if not */
    bool noquorum_logged;
    bool was_member, removed;
    /* joining */
    char *join_target;
    struct port_dial *join_dial;
    uv_tcp_t *join_stream;
    uint8_t join_buf[300];
    size_t join_len;
    uint64_t join_next_ms;
    unsigned join_attempt; /* which resolved host / initial member to ask next */
    struct probe *probe;   /* a pristine initial member asking before it bootstraps */
    bool rejoin;           /* started with an empty log, not bootstrapped: joins on the rejoin
                            * channel until accepted (a voter that lost its state is re-added) */
    int multi_closing;     /* port and link closes pending */
    void (*multi_done)(struct cluster *c);
};

void cluster_logf(const struct cluster *c, enum cluster_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cluster_from_raft(int rv);
void cluster_kick(struct cluster *c);
/* Queues an encoded command for the local raft_apply (leader). 0 or -ENOMEM. */
int cluster_queue_local(struct cluster *c, const uint8_t *cmd, size_t size, cluster_applied_cb cb,
                        void *data);
/* The end of cluster_start: bootstrap the configuration (unless the node joins) and start Raft.
 * fresh: the Raft directory was empty. */
int cluster_raft_start(struct cluster *c, bool bootstrap, bool fresh);

/* multi.c */
int multi_init(struct cluster *c);   /* from cluster_new */
int multi_start(struct cluster *c);  /* from cluster_start, before raft_start */
void multi_check(struct cluster *c); /* every loop iteration */
void multi_leader_changed(struct cluster *c, uint64_t leader_id, bool self);
void multi_committed(struct cluster *c, uint64_t last_applied);
int multi_propose(struct cluster *c, const uint8_t *cmd, size_t size, cluster_applied_cb cb,
                  void *data);
void multi_close(struct cluster *c, void (*done)(struct cluster *c));
bool multi_busy(const struct cluster *c);

/* owner.c */
int owner_load(struct cluster *c); /* nodes table -> c->nodes, ring */
void owner_applied(struct cluster *c, const struct cluster_cmd *cmd, uint64_t index);
void owner_refresh(struct cluster *c); /* after a batch: rebuild the ring if dirty */
struct node_state *owner_node(struct cluster *c, uint64_t id);
/* The entry of id, created (unknown, down) if missing. NULL on -ENOMEM. */
struct node_state *owner_node_add(struct cluster *c, uint64_t id);

/* lease.c */
void lease_tick(struct cluster *c, uint64_t now_ms); /* every heartbeat: ask */
void lease_on_ask(struct cluster *c, uint64_t from, const uint8_t *buf, size_t len);
void lease_on_answer(struct cluster *c, uint64_t from, const uint8_t *buf, size_t len);

/* liveness.c */
void liveness_tick(struct cluster *c, uint64_t now_ms);
void liveness_node_down_applied(struct cluster *c, uint64_t node_id);
void liveness_became_leader(struct cluster *c);

/* members.c */
void members_tick(struct cluster *c, uint64_t now_ms); /* join attempts, removal watch */
/* A join request (empty_log: on the rejoin channel). */
void members_accept_join(struct cluster *c, uint64_t id, const char *address, uv_tcp_t *stream,
                         bool empty_log);
/* Writes one join-channel answer on stream, then closes it. */
void members_answer(struct cluster *c, uv_tcp_t *stream, int status, const char *leader_addr);
/* The leader's advertised address, or NULL when none is known or Raft has not started. */
const char *members_leader_address(const struct cluster *c);
bool members_self_in_config(const struct cluster *c);
void members_removed_notice(struct cluster *c, uint64_t from_id);

/* probe.c */
int probe_begin(struct cluster *c); /* from cluster_start: ask, then bootstrap or join */
void probe_tick(struct cluster *c, uint64_t now_ms);
void probe_accept(struct cluster *c, uv_tcp_t *stream);
void probe_close(struct cluster *c);

#endif
