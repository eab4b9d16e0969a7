/* cluster: replicated state through Raft (canonical raft over raft_uv) into storage.
 *
 * Contract:
 * - Everything runs on one libuv loop thread, the broker's: every function here must be
 *   called on it, and every callback (proposal callbacks, events, log lines, close) fires on
 *   it, never from inside the call that registered it.
 * - Durable state changes only by proposing a struct cluster_cmd. A command is applied by the
 *   FSM of every node, in log order, into LMDB (storage.h); the broker then hears of it
 *   through struct cluster_events and reads state through cluster_storage().
 * - Batching: commands proposed during one loop iteration go into one raft_apply (one buffer
 *   per command). Applied commands are written in one LMDB write transaction per batch, and
 *   the proposers' callbacks and the applied events fire after that transaction committed.
 * - Ownership: a command passed to cluster_propose() is encoded before the call returns; the
 *   caller keeps ownership of it and of every string it points to. Commands handed to events
 *   are borrowed: their strings point into an internal copy of the log entry and are valid
 *   only during the callback.
 * - Errors: 0 or -errno, plus the CLUSTER_E* codes below (below -4096) and storage's STORE_E*
 *   codes; cluster_strerror() renders them all.
 * - One node (the default): no peers and no join configured. A one-voter configuration is
 *   bootstrapped on the first start, no cluster port is opened, cluster_owner() is always this
 *   node, and nothing below "multi-node" changes anything.
 * - Several nodes: cfg.peers (static bootstrap) or cfg.join (a node added later). One cluster
 *   port carries Raft and the node links; see "multi-node" below.
 */
#ifndef STARLING_CLUSTER_H
#define STARLING_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "storage.h"

/* Error codes errno lacks. */
enum cluster_error {
    CLUSTER_ENOTLEADER = -5001,      /* this node is not the leader: propose elsewhere, later */
    CLUSTER_ECORRUPT = -5002,        /* a command does not decode */
    CLUSTER_ESHUTDOWN = -5003,       /* the cluster is closing: the proposal was dropped */
    CLUSTER_ELEADERSHIPLOST = -5004, /* leadership was lost before the command committed; it
                                        may or may not be applied later */
    CLUSTER_EFAILED = -5005,         /* the local state cannot be written (see the failed
                                        event); durable work is refused until it recovers */
    CLUSTER_ERAFT = -5006,           /* any other libraft error (details in the log) */
    CLUSTER_ENOQUORUM = -5007,       /* no leader is known (minority partition, election in
                                        progress): nothing that needs a commit is accepted */
    CLUSTER_ENOTMEMBER = -5008,      /* this node is not (or no longer) a member */
};
/* Renders 0, -errno, CLUSTER_E* and STORE_E* codes. Never NULL. */
const char *cluster_strerror(int rc);

/* ---- commands ---- */

enum cluster_cmd_type {
    CLUSTER_CMD_SESSION_OPEN = 1,       /* .session_open */
    CLUSTER_CMD_SESSION_CLOSE = 2,      /* .client: connection ended, the session stays */
    CLUSTER_CMD_SESSION_EXPIRE = 3,     /* .client: session expired: purge all of the client */
    CLUSTER_CMD_SESSION_DELETE = 4,     /* .client: session ended (clean, kicked): purge */
    CLUSTER_CMD_SUBSCRIBE = 5,          /* .subscribe */
    CLUSTER_CMD_UNSUBSCRIBE = 6,        /* .unsubscribe */
    CLUSTER_CMD_RETAIN_SET = 7,         /* .retain_set */
    CLUSTER_CMD_RETAIN_CLEAR = 8,       /* .retain_clear */
    CLUSTER_CMD_QUEUE_PUSH = 9,         /* .queue_push */
    CLUSTER_CMD_QUEUE_ACK = 10,         /* .queue_ack */
    CLUSTER_CMD_QUEUE_DROP_OLDEST = 11, /* .queue_drop */
    CLUSTER_CMD_WILL_SET = 12,          /* .will_set */
    CLUSTER_CMD_WILL_CLEAR = 13,        /* .client */
    CLUSTER_CMD_NODE_UP = 14,           /* .node */
    CLUSTER_CMD_NODE_DOWN = 15,         /* .node */
};
#define CLUSTER_CMD_TYPE_MAX 15

/* Client-scoped commands without more data. at_ms: the proposer's clock (wall ms since the
 * epoch), recorded as disconnected_at_ms by SESSION_CLOSE; informational for the others. */
struct cluster_cmd_client {
    struct store_str client_id;
    uint64_t at_ms;
};
struct cluster_cmd_unsubscribe {
    struct store_str client_id;
    struct store_str filter;
};
struct cluster_cmd_retain_clear {
    struct store_str topic;
};
struct cluster_cmd_queue_ack {
    struct store_str client_id;
    uint64_t msg_id;
};
struct cluster_cmd_queue_drop {
    struct store_str client_id;
    uint32_t count; /* how many of the oldest messages to drop */
};
struct cluster_cmd_node {
    uint64_t node_id;
    struct store_str address; /* may be empty */
    uint64_t at_ms;
};

/* A tagged union. Strings need not be NUL-terminated when proposing (len counts); in decoded
 * commands (events) they are. Limits checked by cluster_propose (-EINVAL otherwise): client
 * ids, topics, filters and addresses at most 65535 bytes without NUL bytes; qos <= 2;
 * payloads and property blocks below 256 MiB. */
struct cluster_cmd {
    enum cluster_cmd_type type;
    union {
        /* client_id, node_id, expiry_interval_s, protocol_version, flags and created_at_ms
         * are proposed; connected and disconnected_at_ms are ignored (the FSM sets
         * connected=true, disconnected_at_ms=0). With STORE_SESSION_CLEAN_START the client's
         * previous subscriptions, queue and will are purged first. */
        struct store_session session_open;
        struct cluster_cmd_client client;
        struct store_subscription subscribe;
        struct cluster_cmd_unsubscribe unsubscribe;
        struct store_retained retain_set; /* msg.retain is forced true */
        struct cluster_cmd_retain_clear retain_clear;
        /* seq is ignored when proposing; in the applied event it holds the sequence number
         * storage assigned. */
        struct store_queued queue_push;
        struct cluster_cmd_queue_ack queue_ack;
        struct cluster_cmd_queue_drop queue_drop;
        struct store_will will_set;
        struct cluster_cmd_node node;
    };
};

/* The versioned binary encoding (layout in cluster/command.h). Exposed for tools and the
 * fuzz target; the broker never needs it.
 * cluster_cmd_encoded_size: bytes needed, or 0 if cmd breaks a limit above.
 * cluster_cmd_encode: writes into out[0..cap), returns bytes written or 0 (too small/invalid).
 * cluster_cmd_decode: 0 or CLUSTER_ECORRUPT (truncated, trailing bytes, unknown version or
 * type, bad field); *out points into buf. */
size_t cluster_cmd_encoded_size(const struct cluster_cmd *cmd);
size_t cluster_cmd_encode(const struct cluster_cmd *cmd, uint8_t *out, size_t cap);
int cluster_cmd_decode(const uint8_t *buf, size_t len, struct cluster_cmd *out /* OUT */);
/* "session_open", "subscribe", ...; "unknown" otherwise. */
const char *cluster_cmd_type_name(enum cluster_cmd_type type);

/* ---- configuration and callbacks ---- */

enum cluster_log_level {
    CLUSTER_LOG_DEBUG,
    CLUSTER_LOG_INFO,
    CLUSTER_LOG_NOTICE,
    CLUSTER_LOG_WARNING,
    CLUSTER_LOG_ERR,
};
/* One line, without a trailing newline. */
typedef void (*cluster_log_cb)(void *ctx, enum cluster_log_level level, const char *line);

struct cluster_config {
    const char *data_dir; /* required; Raft in <data_dir>/raft, LMDB in <data_dir>/state */
    uint64_t node_id;     /* 0 = 1 */
    /* Raft address "a.b.c.d:port" (IPv4 only, raft_uv_tcp). NULL = a single node that talks
     * to nobody: a local transport that opens no socket ("local"). */
    const char *raft_address;
    size_t map_size;               /* LMDB initial map size; 0 = STORE_DEFAULT_MAP_SIZE */
    size_t map_size_max;           /* LMDB growth limit; 0 = STORE_DEFAULT_MAP_SIZE_MAX */
    unsigned snapshot_threshold;   /* entries between snapshots; 0 = 4096 */
    unsigned snapshot_trailing;    /* entries kept behind a snapshot; 0 = 1024 */
    unsigned election_timeout_ms;  /* 0 = 1000 */
    unsigned heartbeat_timeout_ms; /* 0 = 100 */
    cluster_log_cb log;            /* may be NULL: no logging */
    void *log_ctx;

    /* ---- multi-node (all zero/NULL = one node; see "multi-node" below) ---- */
    /* The initial members, identical on every initial node, this node included
     * (directive cluster_peers ID@HOST:PORT ...). Bootstrapped once, on the first start of an
     * empty data dir; ignored afterwards. */
    const struct cluster_peer *peers;
    size_t n_peers;
    /* "host:port" of any member, for a node added later (cluster_join). Used only while this
     * node is not yet in the configuration. */
    const char *join;
    /* Cluster port (cluster_listen PORT [BIND]): 0 = 7700; bind NULL = all interfaces. */
    unsigned listen_port;
    const char *listen_bind;
    /* What peers dial to reach this node (cluster_advertise HOST:PORT); NULL = this node's
     * own entry in peers, else "<listen_bind>:<listen_port>" for a specific bind address,
     * else "<gethostname()>:<listen_port>". Also the Raft address. */
    const char *advertise;
    /* The shared secret (cluster_secret_file contents, used as is); NULL/0 = none (anyone
     * reaching the port can join: log a warning in the broker). */
    const uint8_t *secret;
    size_t secret_len;
    /* Cluster TLS (cluster_cafile, cluster_certfile, cluster_keyfile): the files' PEM
     * contents (read by the broker when it loads its configuration, before it drops
     * privileges), all three or none (NULL). With them every connection on the cluster port
     * runs TLS 1.3, both sides presenting a certificate signed by the CA (no host name check:
     * the CA is the cluster's own), and the secret's hello runs inside it. Contents that
     * wolfSSL cannot load make cluster_start fail with -EINVAL and a log line naming the
     * directive. Only read during cluster_start. */
    const char *tls_ca_pem;
    size_t tls_ca_pem_len;
    const char *tls_cert_pem;
    size_t tls_cert_pem_len;
    const char *tls_key_pem;
    size_t tls_key_pem_len;
    const char *name;            /* cluster name in the hello; NULL = "starling" */
    size_t link_queue_max_bytes; /* per peer outgoing queue; 0 = 64 MiB */
    unsigned node_down_ms;       /* silence before NODE_DOWN; 0 = 2 x election timeout */
    unsigned forward_timeout_ms; /* forwarded proposal timeout; 0 = 5 x election timeout */
};

/* One initial member. */
struct cluster_peer {
    uint64_t id;
    const char *address; /* "host:port", "a.b.c.d:port" or "[v6]:port" */
};

/* Events, all optional (NULL members are skipped), all on the loop. */
struct cluster_events {
    /* Every command this node's FSM applied, in log order, once its LMDB transaction
     * committed: the broker's own, other nodes' (later), and the log tail replayed by
     * cluster_start(). Not called for entries the state loaded at start already contains. A
     * command that failed to decode is logged and skipped (never passed here); one whose
     * effect was a no-op (ack of an unknown message, ...) is passed all the same. */
    void (*applied)(void *ctx, const struct cluster_cmd *cmd, uint64_t index);
    /* The whole state was replaced by a snapshot: at start-up when LMDB was behind Raft's last
     * snapshot (lost or damaged state dir), or a follower catching up (later). Rebuild every
     * in-memory index from cluster_storage(); applied events for later entries follow. */
    void (*restored)(void *ctx, uint64_t index);
    /* The leader changed; leader_id 0 = none known. is_self: this node leads. */
    void (*leader_changed)(void *ctx, uint64_t leader_id, bool is_self);
    /* Writing into LMDB failed (rc < 0: -ENOSPC when the map reached map_size_max or the
     * disk is full, -EIO ...), or works again (rc == 0). While failed: cluster_propose
     * refuses with CLUSTER_EFAILED; proposals already waiting get CLUSTER_EFAILED at once
     * (their commands are in the Raft log and will still be applied when writing works
     * again, or after a restart); committed entries wait in memory, in order, and are
     * retried every second. LMDB keeps its last consistent state throughout. */
    void (*failed)(void *ctx, int rc);

    /* ---- multi-node ---- */
    /* A node-link frame of a broker type (1..CLUSTER_LINK_TYPE_MAX) from node from_id, in the
     * order that node sent them (buf borrowed: valid during the call). */
    void (*link_frame)(void *ctx, uint64_t from_id, uint8_t type, const uint8_t *buf, size_t len);
    /* The set of live members or the ring epoch changed (committed NODE_UP/NODE_DOWN, or a
     * restore): cluster_owner() may answer differently from now on. */
    void (*ring_changed)(void *ctx);
    /* A committed NODE_DOWN (up false) or NODE_UP (up true) was applied, on every node, after
     * the applied event of that command. is_leader: this node leads. On NODE_DOWN the leader
     * then proposes SESSION_DELETE for every non-persistent session whose node_id is the dead
     * node, and SESSION_CLOSE for its persistent, connected ones: a broker that fires wills of
     * a dead node's clients must read them (store_will_*) inside this callback, before those
     * commands purge them; only the leader's broker (is_leader) should fire them.
     * cluster_owner() already answers by the new live set (ring_changed came first). */
    void (*node_changed)(void *ctx, uint64_t node_id, bool up, bool is_leader);
    /* This node was removed from the configuration: it no longer serves cluster state
     * (proposals fail with CLUSTER_ENOTMEMBER). The broker should stop taking clients and
     * exit; to serve again the node needs an empty data dir and cluster_join (its old Raft
     * log still lists it as a member). */
    void (*removed)(void *ctx);
};

struct cluster;

/* ---- lifecycle ---- */

/* Allocates the cluster and opens LMDB (<data_dir>/state, created if missing), so that the
 * broker can load its indices from cluster_storage() before starting. Does not touch Raft.
 * cfg and ev are copied; the strings in cfg must outlive the cluster. Errors: -EINVAL (no
 * data_dir), STORE_ENEWER (data dir from a newer version), -ENOMEM, -errno from the file
 * system. *out is set only on success. */
int cluster_new(uv_loop_t *loop, const struct cluster_config *cfg, const struct cluster_events *ev,
                void *ev_ctx, struct cluster **out /* OUT */);

/* Starts Raft: raft_uv in <data_dir>/raft; bootstraps the one-voter configuration {node_id}
 * if that directory holds no Raft state yet (never again afterwards), then raft_start. On
 * the loop that follows, Raft loads its last snapshot and replays the log tail; entries
 * already in LMDB are skipped, the others are applied and reported through events->applied.
 * A single voter elects itself at once (leader_changed fires). Call once. */
int cluster_start(struct cluster *c);

typedef void (*cluster_close_cb)(void *data);
/* Stops everything: pending proposals fail with CLUSTER_ESHUTDOWN, applied-but-uncommitted
 * entries are committed, then raft_close, raft_uv_close, the transport, the loop handles,
 * LMDB. cb(data) fires on the loop once all of it is closed and the cluster is freed (so
 * uv_loop_close() can then return 0): LMDB closes first, the memory libraft may still touch
 * is freed once the loop had no request in flight for 40 ms (at most 2 s; see cluster.c).
 * Works whether or not cluster_start was called.
 * cb may be NULL. Call once; no other call on c afterwards. */
void cluster_close(struct cluster *c, cluster_close_cb cb, void *data);

/* ---- use ---- */

/* The LMDB state, for read transactions (store_read_begin). Valid until cluster_close. The
 * pointer never changes, also across a snapshot restore. End every read transaction before
 * returning to the loop: a restore reopens the environment, and an open reader also keeps
 * LMDB from reusing pages. Never write through it: the FSM is the only writer. */
struct store *cluster_storage(struct cluster *c);

/* Fires once cmd was committed by Raft AND applied into LMDB on this node (status 0, index =
 * its log index; the applied event for it has already fired), or failed (status < 0, index
 * 0): CLUSTER_ENOTLEADER, CLUSTER_ELEADERSHIPLOST, CLUSTER_ESHUTDOWN (close), CLUSTER_EFAILED,
 * -ENOMEM. After a failure the command may still be applied later (it can be in the log):
 * treat it as "not acknowledged", not as "never happened". */
typedef void (*cluster_applied_cb)(void *data, int status, uint64_t index);

/* Proposes a command. It is encoded at once and queued; all commands queued during one loop
 * iteration are handed to Raft in one raft_apply from a uv_check handle (an idle handle
 * keeps the poll phase from blocking while commands wait). Returns 0 (cb, if not NULL, will
 * fire exactly once, later) or an error, and then cb never fires: -EINVAL (bad command),
 * CLUSTER_ENOTLEADER, CLUSTER_ESHUTDOWN, CLUSTER_EFAILED, -ENOMEM. */
int cluster_propose(struct cluster *c, const struct cluster_cmd *cmd, cluster_applied_cb cb,
                    void *data);

/* True when this node is the Raft leader (proposals can be accepted). */
bool cluster_is_leader(const struct cluster *c);
/* The leader's id, 0 if none is known. */
uint64_t cluster_leader_id(const struct cluster *c);
/* This node's id. */
uint64_t cluster_node_id(const struct cluster *c);
/* Index of the last entry committed into LMDB. */
uint64_t cluster_last_applied(const struct cluster *c);

/* Apply latency: for every command proposed on this node (leader, or a follower that
 * forwards it), the time from cluster_propose() until its callback fires with status 0, that
 * is until Raft committed it and this node's FSM applied it into LMDB (monotonic clock).
 * Failed proposals are not counted. Buckets (upper bounds, seconds): 0.5 ms to 10 s, the
 * Prometheus defaults with three smaller ones below 5 ms. */
#define CLUSTER_APPLY_BUCKETS 14
struct cluster_apply_latency {
    double bounds_s[CLUSTER_APPLY_BUCKETS];     /* ascending upper bounds */
    uint64_t counts[CLUSTER_APPLY_BUCKETS + 1]; /* per bucket, not cumulative; the last one
                                                   counts what exceeds every bound */
    uint64_t count;
    double sum_s;
};
void cluster_apply_latency(const struct cluster *c, struct cluster_apply_latency *out /* OUT */);

/* ---- multi-node ----
 *
 * Proposals on a follower: cluster_propose() works on every node. On a follower the encoded
 * command is sent to the leader over the node link (all commands of one loop iteration in
 * one frame); the leader raft_apply's them and answers with their index once committed; the
 * callback fires once THIS node's FSM applied that index (status 0, the applied event for it
 * fired before). Failures, index 0: CLUSTER_ENOQUORUM (no leader known when proposing: the
 * call itself returns it; or none became known within forward_timeout_ms),
 * CLUSTER_ELEADERSHIPLOST (the leader changed, or did not answer within forward_timeout_ms,
 * after the command was sent: it may or may not be applied later: do not acknowledge),
 * CLUSTER_ENOTLEADER (three leaders in a row refused it), CLUSTER_EFAILED, -ENOMEM.
 * A minority node (no leader) refuses every proposal with CLUSTER_ENOQUORUM and logs it once
 * per outage.
 */

/* Broker frame types on the node links: 1..CLUSTER_LINK_TYPE_MAX. */
#define CLUSTER_LINK_TYPE_MAX 0xEF
/* cluster_link_send flags. */
#define CLUSTER_LINK_QOS0 0x01u /* may be shed when the link is down or its queue full */

/* Queues a frame to node peer_id; frames leave in one write per peer per loop iteration, in
 * order, and arrive through events->link_frame on that node. Returns 0 (queued), -ENOBUFS
 * (not queued: with CLUSTER_LINK_QOS0 the frame was shed and counted, because the link is
 * down or its queue is full; without it the queue is full: hold the message, do not
 * acknowledge it, try later), -ENOENT (no such member, or peer_id is this node), -EINVAL
 * (type out of range, or one node), -EMSGSIZE. Frames of other flags queue while the link is
 * down (reconnects with backoff) as long as the queue has room; frames written to a
 * connection that then breaks are lost. buf is copied. */
int cluster_link_send(struct cluster *c, uint64_t peer_id, uint8_t type, const void *buf,
                      size_t len, unsigned flags);

struct cluster_link_stats {
    uint64_t node_id;
    bool up;              /* the outgoing connection is established */
    size_t queued_bytes;  /* gathered + being written */
    uint64_t frames_sent; /* queued for sending */
    uint64_t frames_received;
    uint64_t bytes_sent, writes;
    uint64_t shed;    /* QoS 0 frames dropped */
    uint64_t refused; /* other frames refused (-ENOBUFS) */
    uint64_t connects;
};
/* Fills out[0..cap) with the stats of every peer link; returns how many peers there are
 * (may exceed cap). */
size_t cluster_link_stats(const struct cluster *c, struct cluster_link_stats *out, size_t cap);

/* Counters of the multi-node machinery (all 0 on one node), for metrics. */
struct cluster_stats {
    uint64_t hello_accepted;  /* connections that passed the hello, both directions */
    uint64_t hello_refused;   /* connections closed for a failed hello (secret, name, ...) */
    uint64_t dial_failures;   /* dials that did not reach a peer */
    uint64_t forwarded;       /* proposal batches sent to the leader */
    uint64_t forward_retries; /* batches sent again after "not leader" */
    uint64_t forward_failed;  /* forwarded proposals that failed */
};
void cluster_get_stats(const struct cluster *c, struct cluster_stats *out /* OUT */);

/* The owner of a topic: the node id that rendezvous hashing picks among the live members of
 * the committed state (XXH3_64bits_withSeed(topic, len, member_id), highest wins). One node:
 * always this node. 0: no live member is committed yet (a new cluster's first moments). */
uint64_t cluster_owner(struct cluster *c, const char *topic, size_t len);
/* Whether this node may sequence topics (the owner lease, cluster/lease.c): the leader while a
 * majority of the voters answered it within node_down_ms / 2; a follower that asked its leader
 * within node_down_ms / 2 and has applied what the leader had committed when it answered. A
 * node stopped, cut off or restarted is not current until it has caught up, and no node is
 * before a live member is committed. One node: true. */
bool cluster_current(struct cluster *c);
/* The ring epoch: the Raft index of the last applied NODE_UP / NODE_DOWN (a restore's new log
 * continues above the old epoch), 0 before any. Every node that applied the same prefix of
 * the log holds the same epoch, and it grows with every change of the live set, also when a
 * node leaves and comes back (same members, new epoch). One node: 0. */
uint64_t cluster_ring_epoch(const struct cluster *c);
/* The ring epoch of the last NODE_DOWN of node id this node applied since it started (0:
 * none seen). */
uint64_t cluster_node_down_epoch(struct cluster *c, uint64_t id);
/* The live members in the ring (ascending ids). Returns the count (may exceed cap). */
size_t cluster_live_members(const struct cluster *c, uint64_t *ids, size_t cap);
/* A digest of the ring's committed state (the live members and the commands that made each
 * one live): equal on two nodes exactly when they route by the same view. */
uint64_t cluster_ring_digest(const struct cluster *c);

enum cluster_role {
    CLUSTER_ROLE_VOTER,
    CLUSTER_ROLE_STANDBY,
    CLUSTER_ROLE_SPARE,
};
const char *cluster_role_name(enum cluster_role role); /* "voter", "standby", "spare" */

struct cluster_member {
    uint64_t id;
    char address[256];
    enum cluster_role role;
    bool alive; /* committed liveness (NODE_UP / NODE_DOWN); a member without a verdict yet
                   counts as alive */
};
struct cluster_status {
    uint64_t node_id;
    uint64_t leader_id; /* 0 = none known */
    uint64_t term;
    uint64_t commit_index;
    uint64_t applied_index; /* Raft's applied index, as far as LMDB holds it: reaches
                             * commit_index also when configuration or barrier entries came
                             * last (cluster_last_applied() counts commands only) */
    size_t n_members;       /* may exceed the cap passed to cluster_members */
};
/* True when this node holds the replicated state as a voter or standby of the configuration
 * it knows and was not removed (one node: once started). For /readyz: ready when
 * cluster_is_member() and cluster_status.applied_index reached the commit_index that
 * cluster_members() reported at start (or at the first moment this became true). */
bool cluster_is_member(const struct cluster *c);

/* A snapshot of the configuration as this node knows it, for the admin API. Fills
 * members[0..cap) and *st. */
void cluster_members(const struct cluster *c, struct cluster_member *members, size_t cap,
                     struct cluster_status *st /* OUT */);

/* Membership changes, on the leader only (else CLUSTER_ENOTLEADER: ask cluster_leader_id()).
 * cb(data, status) fires once, later: 0 when done, or an error.
 * - cluster_add: adds id at address as a spare, catches it up and promotes it to voter
 *   (what cluster_join does by itself from the new node).
 * - cluster_remove: demotes (voter -> spare) then removes id; the removed node hears of it
 *   (events->removed). Removing the leader itself: transfer leadership first.
 * - cluster_transfer: hands leadership to id (0 = any voter, the most up to date); status 0
 *   once another node leads. Used on SIGTERM of the leader before closing. */
typedef void (*cluster_change_cb)(void *data, int status);
int cluster_add(struct cluster *c, uint64_t id, const char *address, cluster_change_cb cb,
                void *data);
int cluster_remove(struct cluster *c, uint64_t id, cluster_change_cb cb, void *data);
int cluster_transfer(struct cluster *c, uint64_t id, cluster_change_cb cb, void *data);

#endif
