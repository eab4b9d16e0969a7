/* storage: the replicated state in one LMDB environment.
 *
 * Contract:
 * - One environment per data directory (<data_dir>/state), named tables: sessions,
 *   subscriptions, retained, queue, wills, nodes, meta. The layouts of keys and values are
 *   tables in storage/record.h.
 * - The FSM (cluster/) is the only writer: one write transaction per applied batch, with
 *   last_applied stored in that same transaction (store_meta_set_last_applied). Everyone else
 *   reads through read transactions (store_read_begin / store_txn_end).
 * - Threading: the environment is opened with MDB_NOTLS, so a read transaction may be used on
 *   another thread than the one that began it, but one transaction is never used by two threads
 *   at once. One write transaction at a time per environment.
 * - Borrowed results: every string and blob handed out by a getter or a foreach callback points
 *   into LMDB's map and is valid only until the transaction ends (or, for a write transaction,
 *   until its next update). Copy what must live longer. Strings are NUL-terminated and carry
 *   their length; blobs are not.
 * - Errors: 0 or -errno. LMDB codes are translated here: MDB_NOTFOUND -> -ENOENT,
 *   MDB_MAP_FULL -> -ENOSPC (after growth failed), corrupt records -> STORE_ECORRUPT, a data
 *   directory written by a newer format -> STORE_ENEWER. No MDB_* value leaves this module.
 * - Durability: the environment is opened with MDB_NOMETASYNC (data pages are fsynced at each
 *   commit, the meta page only at the next commit); the Raft log is the durable record and a
 *   restart replays it from the last_applied index LMDB holds. See storage/env.c.
 */
#ifndef STARLING_STORAGE_H
#define STARLING_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Error codes errno lacks (below -4096, as STYLE.md asks). */
enum store_error {
    STORE_ENEWER = -5101,   /* the data directory was written by a newer format version */
    STORE_ECORRUPT = -5102, /* a record or snapshot does not decode */
};
/* Renders 0, -errno and the STORE_E* codes. Never NULL. */
const char *store_strerror(int rc);

/* On-disk format version written into meta; a higher one is refused with STORE_ENEWER. */
#define STORE_FORMAT_VERSION 1u

/* Defaults for struct store_options. */
#define STORE_DEFAULT_MAP_SIZE     ((size_t)64 << 20)
#define STORE_DEFAULT_MAP_SIZE_MAX ((size_t)(sizeof(size_t) >= 8 ? ((size_t)1 << 40) : (1u << 30)))

struct store;     /* the environment; opaque */
struct store_txn; /* a read or write transaction; opaque */

struct store_options {
    size_t map_size;     /* initial map size in bytes; 0 = STORE_DEFAULT_MAP_SIZE */
    size_t map_size_max; /* growth stops here (then -ENOSPC); 0 = STORE_DEFAULT_MAP_SIZE_MAX */
};

/* A NUL-terminated string with its length (len excludes the NUL). */
struct store_str {
    const char *ptr;
    size_t len;
};
/* Raw bytes (e.g. MQTT 5 properties exactly as received, or a payload). */
struct store_blob {
    const uint8_t *ptr;
    size_t len;
};

/* A message as it is retained, queued or kept as a will. */
struct store_message {
    struct store_str topic;
    struct store_blob payload;
    struct store_blob props; /* MQTT 5 property block, raw (without its length prefix) */
    uint64_t expires_at_ms;  /* wall-clock ms since the epoch; 0 = never */
    uint8_t qos;             /* 0..2 */
    bool retain;
};

/* Session flags. */
#define STORE_SESSION_CLEAN_START 0x01u /* CONNECT had clean start / clean session */
#define STORE_SESSION_PERSISTENT  0x02u /* outlives its connection (v3 clean 0, v5 expiry > 0) */

struct store_session {
    struct store_str client_id;
    uint64_t node_id;            /* node the client is (or was last) connected to */
    uint64_t created_at_ms;      /* chosen by the proposer of the session open */
    uint64_t disconnected_at_ms; /* 0 while connected */
    uint32_t expiry_interval_s;  /* MQTT 5 session expiry; 0xFFFFFFFF = never */
    uint8_t protocol_version;    /* 3, 4 or 5 */
    uint8_t flags;               /* STORE_SESSION_* */
    bool connected;
};

struct store_subscription {
    struct store_str client_id;
    struct store_str filter;  /* as subscribed, including any "$share/<group>/" prefix */
    uint32_t subscription_id; /* MQTT 5 subscription identifier; 0 = none */
    uint8_t options;          /* the SUBSCRIBE options byte: QoS, NL, RAP, retain handling */
};

struct store_retained {
    struct store_message msg; /* msg.topic is the key; msg.retain is always true */
    struct store_str publisher_client_id;
};

struct store_queued {
    struct store_str client_id;
    uint64_t seq;    /* assigned by storage: increasing per client, defines the order */
    uint64_t msg_id; /* chosen by the proposer; unique per client */
    struct store_message msg;
};

struct store_will {
    struct store_str client_id;
    struct store_message msg;
    uint32_t delay_interval_s; /* MQTT 5 will delay interval */
};

struct store_node {
    uint64_t node_id;
    struct store_str address;
    uint64_t changed_at_ms;
    bool up;
};

/* Foreach callbacks: return 0 to continue; anything else stops the iteration, and the foreach
 * returns that value. Records are borrowed: valid only during the call. */
typedef int (*store_session_cb)(void *ctx, const struct store_session *s);
typedef int (*store_subscription_cb)(void *ctx, const struct store_subscription *s);
typedef int (*store_retained_cb)(void *ctx, const struct store_retained *r);
typedef int (*store_queued_cb)(void *ctx, const struct store_queued *q);
typedef int (*store_will_cb)(void *ctx, const struct store_will *w);
typedef int (*store_node_cb)(void *ctx, const struct store_node *n);

/* ---- environment (storage/env.c) ---- */

/* Opens (creating if needed) the environment in directory `dir` (created if missing), clears
 * stale reader slots (mdb_reader_check) and checks the format version: STORE_ENEWER if the
 * directory holds a newer one. opt may be NULL. *out is set only on success. */
int store_open(const char *dir, const struct store_options *opt, struct store **out /* OUT */);
/* Closes the environment. No transaction may be open. store_close(NULL) is a no-op. */
void store_close(struct store *s);
/* Current map size in bytes (it grows when a write transaction hits the end of the map). */
size_t store_map_size(const struct store *s);
/* The configured growth limit. */
size_t store_map_size_max(const struct store *s);

/* Begins a read transaction: a consistent snapshot of the last committed state. */
int store_read_begin(struct store *s, struct store_txn **out /* OUT */);
/* Begins the write transaction (FSM only). Fails with -EBUSY if one is already open. */
int store_write_begin(struct store *s, struct store_txn **out /* OUT */);
/* Commits a write transaction; the txn is gone afterwards whatever the result. -ENOSPC if the
 * map or the disk is full (nothing of the txn was written). */
int store_write_commit(struct store_txn *txn);
/* Whether the last failed store_write_commit failed writing the files (disk full: -ENOSPC, or
 * -EIO for a short write), where growing the map does not help, rather than in the map. */
bool store_commit_disk_error(const struct store *s);
/* Ends a read transaction or aborts a write transaction. NULL is a no-op. */
void store_txn_end(struct store_txn *txn);
/* Grows the map (doubling, capped at map_size_max). No transaction may be open.
 * -ENOSPC when already at the maximum. */
int store_grow(struct store *s);

/* ---- metadata (storage/meta.c) ---- */

/* Index of the last Raft entry whose effects this state includes; 0 for a fresh store. */
int store_meta_last_applied(struct store_txn *txn, uint64_t *out /* OUT */);
int store_meta_set_last_applied(struct store_txn *txn, uint64_t index);
/* The ring epoch: the Raft index of the last applied NODE_UP / NODE_DOWN (0: none yet), kept
 * with the state so that a restarted node or a snapshot carries it. */
int store_meta_ring_epoch(struct store_txn *txn, uint64_t *out /* OUT */);
int store_meta_set_ring_epoch(struct store_txn *txn, uint64_t epoch);
/* Opaque cluster id (up to 64 bytes); -ENOENT if never set. *out is borrowed. */
int store_meta_cluster_id(struct store_txn *txn, struct store_blob *out /* OUT */);
int store_meta_set_cluster_id(struct store_txn *txn, const void *id, size_t len);
/* The format version recorded in the environment. */
int store_meta_format_version(struct store_txn *txn, uint32_t *out /* OUT */);

/* ---- sessions (storage/session.c) ---- */

int store_session_put(struct store_txn *txn, const struct store_session *s);
/* -ENOENT if the client has no session record. */
int store_session_get(struct store_txn *txn, const char *client_id, size_t len,
                      struct store_session *out /* OUT, borrowed */);
/* Deletes the session record only; -ENOENT if absent. */
int store_session_del(struct store_txn *txn, const char *client_id, size_t len);
int store_session_foreach(struct store_txn *txn, store_session_cb cb, void *ctx);
/* Deletes everything of a client: session, subscriptions, queued messages, will. Absent
 * parts are fine (returns 0). */
int store_client_purge(struct store_txn *txn, const char *client_id, size_t len);

/* ---- subscriptions (storage/subscription.c), key client_id \0 filter ---- */

/* Inserts or replaces (same client and filter). */
int store_sub_put(struct store_txn *txn, const struct store_subscription *s);
/* -ENOENT if absent. */
int store_sub_del(struct store_txn *txn, const char *client_id, size_t client_len,
                  const char *filter, size_t filter_len);
int store_sub_get(struct store_txn *txn, const char *client_id, size_t client_len,
                  const char *filter, size_t filter_len,
                  struct store_subscription *out /* OUT, borrowed */);
int store_sub_foreach(struct store_txn *txn, store_subscription_cb cb, void *ctx);
/* The subscriptions of one client, in filter byte order. */
int store_sub_foreach_client(struct store_txn *txn, const char *client_id, size_t len,
                             store_subscription_cb cb, void *ctx);
/* Deletes all subscriptions of a client; *n (may be NULL) gets how many. */
int store_sub_del_client(struct store_txn *txn, const char *client_id, size_t len,
                         size_t *n /* OUT */);

/* ---- retained messages (storage/retain.c), key topic ---- */

/* Inserts or replaces the retained message of r->msg.topic. */
int store_retain_put(struct store_txn *txn, const struct store_retained *r);
int store_retain_get(struct store_txn *txn, const char *topic, size_t len,
                     struct store_retained *out /* OUT, borrowed */);
/* -ENOENT if absent. */
int store_retain_del(struct store_txn *txn, const char *topic, size_t len);
int store_retain_foreach(struct store_txn *txn, store_retained_cb cb, void *ctx);

/* ---- queued messages (storage/queue.c), key client_id \0 seq (big-endian u64) ---- */

/* Appends a message to the client's queue; *seq (may be NULL) gets its sequence number
 * (one more than the client's last, starting at 1). q->seq is ignored. */
int store_queue_push(struct store_txn *txn, const struct store_queued *q, uint64_t *seq /* OUT */);
/* Removes the client's message with this msg_id; -ENOENT if absent. */
int store_queue_ack(struct store_txn *txn, const char *client_id, size_t len, uint64_t msg_id);
/* Removes the client's `count` oldest messages; *dropped (may be NULL) gets how many. */
int store_queue_drop_oldest(struct store_txn *txn, const char *client_id, size_t len,
                            uint32_t count, uint32_t *dropped /* OUT */);
/* Number of queued messages and their payload bytes for one client. */
int store_queue_stat(struct store_txn *txn, const char *client_id, size_t len,
                     size_t *count /* OUT */, size_t *bytes /* OUT */);
/* One client's queue, oldest first. */
int store_queue_foreach_client(struct store_txn *txn, const char *client_id, size_t len,
                               store_queued_cb cb, void *ctx);
/* Every queued message: clients in byte order, each oldest first. */
int store_queue_foreach(struct store_txn *txn, store_queued_cb cb, void *ctx);
/* Deletes a client's whole queue; *n (may be NULL) gets how many. */
int store_queue_del_client(struct store_txn *txn, const char *client_id, size_t len,
                           size_t *n /* OUT */);

/* ---- wills (storage/will.c), key client_id ---- */

int store_will_put(struct store_txn *txn, const struct store_will *w);
int store_will_get(struct store_txn *txn, const char *client_id, size_t len,
                   struct store_will *out /* OUT, borrowed */);
/* -ENOENT if absent. */
int store_will_del(struct store_txn *txn, const char *client_id, size_t len);
int store_will_foreach(struct store_txn *txn, store_will_cb cb, void *ctx);

/* ---- cluster members (storage/node.c), key node_id (big-endian u64) ---- */

int store_node_put(struct store_txn *txn, const struct store_node *n);
int store_node_foreach(struct store_txn *txn, store_node_cb cb, void *ctx);

/* ---- snapshots (storage/snapshot.c) ---- */

/* Writes a compacted copy of the whole environment (mdb_env_copyfd2 with MDB_CP_COMPACT) to
 * the file descriptor fd, which is left open. No write transaction may be open: the copy then
 * is the state of the last commit. */
int store_snapshot_write(struct store *s, int fd);
/* Replaces the whole environment with a copy written by store_snapshot_write (the bytes of
 * its data file). The new file is written and fsynced beside the old one, then renamed over
 * it and the environment reopened; on failure the old state stays. No transaction may be
 * open. STORE_ECORRUPT if data is not an LMDB data file; STORE_ENEWER if its format version
 * is newer. */
int store_snapshot_install(struct store *s, const void *data, size_t len);

/* ---- backups (storage/backup.c): used from outside the broker, on a data directory ---- */

/* What a backup file holds. */
struct store_backup_info {
    uint64_t last_applied; /* the Raft index of the last command applied into it */
    uint64_t bytes;        /* size of the file */
    uint64_t sessions, subscriptions, retained, queued, wills; /* entries per table */
};

/* Writes a compacted copy of the environment in state_dir (<data_dir>/state) to path, taken
 * in one read transaction, so consistent while a broker writes the environment: the copy is
 * written to a temporary file beside path, fsynced, read back (store_backup_check) and only
 * then renamed to path. *info describes the copy. -ENOENT if state_dir holds no state. */
int store_backup(const char *state_dir, const char *path, struct store_backup_info *info /* OUT */);

/* Opens the file at path read-only as a state backup and describes it. STORE_ECORRUPT if it
 * is not an LMDB file holding Starling state, STORE_ENEWER if a newer format wrote it. */
int store_backup_check(const char *path, struct store_backup_info *info /* OUT */);

/* Puts the backup at path into state_dir as its data file (the directory is created; an
 * existing data file is replaced), through a temporary file, fsync and rename. -EBUSY if a
 * process has the environment in state_dir open. *info describes the backup. The Raft log is
 * the caller's business: a data file without a log starts a new log over it. */
int store_restore(const char *path, const char *state_dir,
                  struct store_backup_info *info /* OUT */);

/* 1 (and *pid, the process) if a live process has the environment in state_dir open, 0 if
 * none has, or -errno. */
int store_in_use(const char *state_dir, long *pid /* OUT */);

#endif
