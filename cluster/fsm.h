/* The Raft state machine: applies committed commands into storage, one LMDB write
 * transaction per batch, and snapshots/restores the whole LMDB state.
 *
 * How a batch works. raft calls apply() once per committed entry, synchronously, with no
 * index. apply() takes the index as raft->last_applied + 1 (raft sets last_applied after
 * apply returns; barrier and configuration entries advance it without apply), skips entries
 * at or below what LMDB already holds, and otherwise only copies the entry into the pending
 * list. fsm_flush() then executes every pending entry in one write transaction, stores
 * last_applied = the last pending index in the same transaction, commits, and only then
 * reports each command (applied hook) and the new last_applied (committed hook). The cluster
 * calls fsm_flush() from a uv_check handle, i.e. once per loop iteration after the I/O
 * callbacks in which raft applied; the snapshot path and close call it as well.
 *
 * Keeping the copies until the commit is also what makes a full map survivable: on -ENOSPC
 * from the puts (MDB_MAP_FULL) the transaction is aborted, the map grown, and the whole batch
 * executed again; -ENOSPC or -EIO from the commit's writes is a full disk (a larger map would
 * not help, so it is not grown). If the map
 * cannot grow (or the disk is full), the FSM enters the failed state: the pending entries
 * stay, further entries are added behind them, nothing is committed, and each later
 * fsm_flush() retries. LMDB therefore never holds a later entry without an earlier one.
 *
 * Snapshots (fsm version 2, synchronous on the loop): flush, then write a compacted copy of
 * the environment (mdb_env_copyfd2, MDB_CP_COMPACT) into a memory file behind a small header.
 * Because nothing else writes between the flush and the copy, the copy is exactly the state
 * at the snapshot index (mdb_env_copy* opens its own read transaction: run later or on another
 * thread it would not be). The copy blocks the loop: measured ~50 ms for 100,000 retained
 * messages of 200 bytes (42 MB), once per snapshot_threshold entries. Past that, the way out
 * is fsm v3: a read transaction opened in snapshot() on the loop (MDB_NOTLS), and a walk of
 * its tables into a fresh environment in snapshot_async() on the thread pool.
 *
 *   snapshot buffer:  "STSN" | version u32 (1) | last_applied u64 | LMDB data file bytes
 *
 * restore() installs it unless LMDB already holds that index or a later one (the normal case
 * at start-up, where raft restores its last snapshot before replaying the tail).
 */
#ifndef STARLING_CLUSTER_FSM_H
#define STARLING_CLUSTER_FSM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <raft.h>

#include "cluster.h"

struct fsm_entry; /* one pending (applied, not yet committed) entry */

struct fsm_hooks {
    /* Each command of a committed batch, in order. */
    void (*applied)(void *ctx, const struct cluster_cmd *cmd, uint64_t index);
    /* After each committed batch (and after a restore): LMDB holds everything up to index. */
    void (*committed)(void *ctx, uint64_t last_applied);
    /* The state was replaced by a snapshot. */
    void (*restored)(void *ctx, uint64_t last_applied);
    /* The first entry went pending (so the caller can make sure a flush comes). */
    void (*pending)(void *ctx);
    /* Commits started failing (rc < 0) or recovered (rc == 0). */
    void (*failed)(void *ctx, int rc);
    cluster_log_cb log;
    void *log_ctx;
    void *ctx;
};

struct fsm {
    struct raft_fsm raft_fsm; /* version 2; data = this */
    struct raft *raft;        /* for last_applied during apply; set before raft_start */
    struct store *store;
    char *tmp_dir; /* where snapshot copies are staged */
    struct fsm_hooks hooks;
    uint64_t last_applied; /* committed in LMDB */
    uint64_t last_seen;    /* highest index taken into pending (>= last_applied) */
    struct fsm_entry *head, *tail;
    size_t n_pending;
    int failed; /* 0, or the error that stops commits */
    bool flushing;
    bool disk_failed; /* the last flush failed in the commit's writes, not in the map */
    /* Counters, for tests and metrics. */
    uint64_t n_skipped, n_corrupt, n_batches, n_grows;
    /* State kept under a new Raft log (see fsm_flush): last_applied as loaded, whether the
     * early snapshot was asked for, and raft's snapshot settings to put back after it. */
    uint64_t loaded_applied;
    bool snapshot_soon, snapshot_asked;
    unsigned saved_threshold, saved_trailing;
};

/* Reads last_applied from the store. tmp_dir is copied. */
int fsm_init(struct fsm *f, struct store *store, const char *tmp_dir,
             const struct fsm_hooks *hooks);
/* Drops pending entries without committing them (call fsm_flush first to keep them). */
void fsm_close(struct fsm *f);

/* Commits the pending entries (see above). 0 if nothing is pending or all were committed;
 * else the error, and the FSM is in the failed state.
 * Also watches for state kept under a new Raft log (a restore, or a data dir whose log was
 * removed: last_applied was loaded above 0 and set back to 0 for the new log). That log does
 * not hold the state, so a node catching up from it would miss the state for good: raft is
 * told to snapshot after the next applied entry and to keep no entry before the snapshot, so
 * that other nodes are sent the snapshot; then raft's snapshot settings are put back. */
int fsm_flush(struct fsm *f);

/* The Raft index this node's state reflects: like last_applied, but counting the entries
 * that change nothing in LMDB (configuration, barriers) once raft applied them, so that it
 * reaches the commit index without a command after them. Everything below the first pending
 * entry is applied; in the failed state nothing past last_applied counts. */
uint64_t fsm_applied_index(const struct fsm *f);

/* Logs through the hooks' sink. */
void fsm_log(const struct fsm *f, enum cluster_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
