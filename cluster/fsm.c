/* The Raft FSM over storage: batching of applied entries into one LMDB transaction, the
 * failed state, snapshots and restore (see fsm.h for how it works). */
#include "fsm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.h"
#include "fsm_exec.h"
#include "ring.h"

struct fsm_entry {
    struct fsm_entry *next;
    uint64_t index;
    bool valid; /* decoded; invalid entries only advance last_applied */
    struct cluster_cmd cmd;
    size_t len;
    uint8_t data[]; /* the entry's bytes; cmd points in here */
};

#define SNAP_MAGIC      "STSN"
#define SNAP_VERSION    1u
#define SNAP_HEADER     16u
#define FLUSH_MAX_BATCH 4096u /* entries per write transaction */

void fsm_log(const struct fsm *f, enum cluster_log_level level, const char *fmt, ...)
{
    if (!f->hooks.log) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    f->hooks.log(f->hooks.log_ctx, level, line);
}

static uint64_t fsm_current_index(const struct fsm *f)
{
    /* raft sets last_applied after apply() returns: this entry is the next one. */
    return raft_last_applied(f->raft) + 1;
}

static int fsm_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    struct fsm *f = rf->data;
    uint64_t index = fsm_current_index(f);
    *result = NULL;
    if (index <= f->last_seen) {
        f->n_skipped++; /* already in LMDB (replay after restart) or already pending */
        return 0;
    }
    struct fsm_entry *e = malloc(sizeof *e + buf->len);
    if (!e) {
        /* Nothing sensible is left: raft would advance past this entry. Enter the failed
         * state so that nothing later is committed without it; a restart replays it. */
        fsm_log(f, CLUSTER_LOG_ERR, "out of memory applying entry %llu; state frozen",
                (unsigned long long)index);
        if (!f->failed && f->hooks.failed) f->hooks.failed(f->hooks.ctx, -ENOMEM);
        f->failed = -ENOMEM;
        f->last_seen = UINT64_MAX; /* take nothing more */
        return RAFT_NOMEM;
    }
    e->next = NULL;
    e->index = index;
    e->len = buf->len;
    memcpy(e->data, buf->base, buf->len);
    e->valid = cmd_decode_entry(e->data, e->len, &e->cmd) == 0;
    if (!e->valid) {
        f->n_corrupt++;
        fsm_log(f, CLUSTER_LOG_ERR,
                "bug: committed entry %llu (%zu bytes) is not a valid command; skipped",
                (unsigned long long)index, buf->len);
    }
    bool first = f->head == NULL;
    if (f->tail)
        f->tail->next = e;
    else
        f->head = e;
    f->tail = e;
    f->n_pending++;
    f->last_seen = index;
    if (first && f->hooks.pending) f->hooks.pending(f->hooks.ctx);
    return 0;
}

/* Executes entries head..(n of them) in one transaction and commits. */
static int fsm_commit_some(struct fsm *f, size_t n, struct fsm_entry **last_out)
{
    for (;;) {
        struct store_txn *t;
        int rc = store_write_begin(f->store, &t);
        if (rc != 0) return rc;
        struct fsm_entry *e = f->head, *last = NULL;
        for (size_t i = 0; i < n && rc == 0; i++, e = e->next) {
            last = e;
            if (!e->valid) continue;
            rc = fsm_exec(t, &e->cmd);
            if (rc != 0 && !fsm_exec_error_is_local(rc)) {
                if (rc != -ENOENT)
                    fsm_log(f, CLUSTER_LOG_DEBUG, "entry %llu (%s): %s; no effect",
                            (unsigned long long)e->index, cluster_cmd_type_name(e->cmd.type),
                            store_strerror(rc));
                rc = 0;
            }
            if (rc == 0 &&
                (e->cmd.type == CLUSTER_CMD_NODE_UP || e->cmd.type == CLUSTER_CMD_NODE_DOWN)) {
                uint64_t epoch;
                rc = store_meta_ring_epoch(t, &epoch);
                if (rc == 0) rc = store_meta_set_ring_epoch(t, ring_epoch_next(epoch, e->index));
            }
        }
        if (rc == 0) rc = store_meta_set_last_applied(t, last->index);
        bool committing = rc == 0;
        if (rc == 0) {
            rc = store_write_commit(t);
        } else {
            store_txn_end(t);
        }
        if (rc == 0) {
            *last_out = last;
            return 0;
        }
        /* A full disk: a larger map does not help. */
        if (committing && store_commit_disk_error(f->store)) f->disk_failed = true;
        if (rc != -ENOSPC || f->disk_failed) return rc;
        int grc = store_grow(f->store);
        if (grc != 0) return rc; /* at the maximum map size, or the disk is full */
        f->n_grows++;
        fsm_log(f, CLUSTER_LOG_NOTICE, "state map grown to %zu bytes", store_map_size(f->store));
    }
}

/* The early snapshot of state kept under a new log (see fsm_flush in fsm.h). */
static void snapshot_soon_check(struct fsm *f)
{
    if (!f->raft) return;
    if (!f->snapshot_asked && f->loaded_applied > 0 && f->last_applied == 0) {
        f->snapshot_asked = f->snapshot_soon = true;
        f->saved_threshold = f->raft->snapshot.threshold;
        f->saved_trailing = f->raft->snapshot.trailing;
        raft_set_snapshot_threshold(f->raft, 1);
        raft_set_snapshot_trailing(f->raft, 0);
        return;
    }
    /* raft removed the entries before the snapshot with the settings it had then. */
    if (!f->snapshot_soon || f->raft->log.snapshot.last_index == 0) return;
    f->snapshot_soon = false;
    raft_set_snapshot_threshold(f->raft, f->saved_threshold);
    raft_set_snapshot_trailing(f->raft, f->saved_trailing);
    fsm_log(f, CLUSTER_LOG_NOTICE,
            "the state kept under a new log is in the snapshot at index %llu: new members are "
            "sent it",
            (unsigned long long)f->raft->log.snapshot.last_index);
}

int fsm_flush(struct fsm *f)
{
    snapshot_soon_check(f);
    if (f->flushing) return 0;
    f->flushing = true;
    f->disk_failed = false;
    int rc = 0;
    while (f->head && rc == 0) {
        size_t n = f->n_pending < FLUSH_MAX_BATCH ? f->n_pending : FLUSH_MAX_BATCH;
        struct fsm_entry *last = NULL;
        rc = fsm_commit_some(f, n, &last);
        if (rc != 0) break;
        /* Detach the committed run, then report it. */
        struct fsm_entry *run = f->head;
        f->head = last->next;
        if (!f->head) f->tail = NULL;
        last->next = NULL;
        f->n_pending -= n;
        f->last_applied = last->index;
        f->n_batches++;
        if (f->failed) {
            fsm_log(f, CLUSTER_LOG_NOTICE, "state writes recovered at index %llu",
                    (unsigned long long)f->last_applied);
            f->failed = 0;
            if (f->hooks.failed) f->hooks.failed(f->hooks.ctx, 0);
        }
        while (run) {
            struct fsm_entry *next = run->next;
            if (run->valid && f->hooks.applied)
                f->hooks.applied(f->hooks.ctx, &run->cmd, run->index);
            free(run);
            run = next;
        }
        if (f->hooks.committed) f->hooks.committed(f->hooks.ctx, f->last_applied);
    }
    if (rc != 0 && f->failed != rc) {
        bool first = f->failed == 0;
        f->failed = rc;
        size_t map = store_map_size(f->store), max = store_map_size_max(f->store);
        const char *why = "";
        if (f->disk_failed && (rc == -ENOSPC || rc == -EIO))
            why = ": disk full?";
        else if (rc == -ENOSPC && map >= max)
            why = ": state map full";
        fsm_log(f, CLUSTER_LOG_ERR,
                "cannot write state (%s%s, map %zu of at most %zu bytes): %zu committed entries "
                "wait in memory; durable work is refused until this is resolved",
                store_strerror(rc), why, map, max, f->n_pending);
        if (first && f->hooks.failed) f->hooks.failed(f->hooks.ctx, rc);
    }
    f->flushing = false;
    return rc;
}

uint64_t fsm_applied_index(const struct fsm *f)
{
    uint64_t index;
    if (f->head)
        index = f->head->index - 1;
    else if (f->failed || !f->raft)
        index = f->last_applied;
    else
        index = raft_last_applied(f->raft);
    return index > f->last_applied ? index : f->last_applied;
}

/* ---- snapshots ---- */

/* A memory file (memfd) holds the copy, mapped as the snapshot's data buffer: no second copy
 * into the heap and no disk I/O while the loop waits. A temp file beside the state is the
 * fallback where memfd is missing. */
static int snap_tmpfile(const struct fsm *f)
{
    int fd = memfd_create("starling-snapshot", MFD_CLOEXEC);
    if (fd >= 0) return fd;
    fd = open(f->tmp_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    char path[4096];
    snprintf(path, sizeof path, "%s/snapshot.XXXXXX", f->tmp_dir);
    fd = mkstemp(path);
    if (fd >= 0) unlink(path);
    return fd;
}

/* Two buffers: [0] the header (heap), [1] the LMDB copy (a read-only mapping). */
static int fsm_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct fsm *f = rf->data;
    if (fsm_flush(f) != 0) return RAFT_IOERR;
    int fd = snap_tmpfile(f);
    if (fd < 0) {
        fsm_log(f, CLUSTER_LOG_ERR, "snapshot: temp file in %s: %s", f->tmp_dir, strerror(errno));
        return RAFT_IOERR;
    }
    int rc = store_snapshot_write(f->store, fd);
    struct stat st;
    if (rc == 0 && fstat(fd, &st) != 0) rc = -errno;
    if (rc == 0 && st.st_size <= 0) rc = -EIO;
    struct raft_buffer *b = NULL;
    uint8_t *header = NULL;
    void *data = MAP_FAILED;
    if (rc == 0) {
        data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (data == MAP_FAILED) rc = -errno;
    }
    if (rc == 0) {
        b = malloc(2 * sizeof *b);
        header = malloc(SNAP_HEADER);
        if (!b || !header) rc = -ENOMEM;
    }
    close(fd); /* the mapping keeps the memory file */
    if (rc != 0) {
        fsm_log(f, CLUSTER_LOG_ERR, "snapshot failed: %s", store_strerror(rc));
        if (data != MAP_FAILED) munmap(data, (size_t)st.st_size);
        free(b);
        free(header);
        return rc == -ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
    }
    memcpy(header, SNAP_MAGIC, 4);
    header[4] = header[5] = header[6] = 0;
    header[7] = SNAP_VERSION;
    uint64_t la = f->last_applied;
    for (int i = 0; i < 8; i++)
        header[8 + i] = (uint8_t)(la >> (56 - 8 * i));
    b[0] = (struct raft_buffer){.base = header, .len = SNAP_HEADER};
    b[1] = (struct raft_buffer){.base = data, .len = (size_t)st.st_size};
    *bufs = b;
    *n_bufs = 2;
    fsm_log(f, CLUSTER_LOG_INFO, "snapshot at applied index %llu: %zu bytes",
            (unsigned long long)f->last_applied, SNAP_HEADER + b[1].len);
    return 0;
}

/* Version 2: raft owns none of the snapshot buffers; they are released here. */
static int fsm_snapshot_finalize(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    (void)rf;
    if (*bufs && *n_bufs == 2) {
        free((*bufs)[0].base);
        munmap((*bufs)[1].base, (*bufs)[1].len);
    }
    free(*bufs);
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

static int fsm_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct fsm *f = rf->data;
    const uint8_t *p = buf->base;
    if (buf->len < SNAP_HEADER || memcmp(p, SNAP_MAGIC, 4) != 0 || p[4] || p[5] || p[6] ||
        p[7] != SNAP_VERSION) {
        fsm_log(f, CLUSTER_LOG_ERR, "restore: not a snapshot of this format");
        return RAFT_CORRUPT;
    }
    uint64_t la = 0;
    for (int i = 0; i < 8; i++)
        la = la << 8 | p[8 + i];
    if (fsm_flush(f) != 0) return RAFT_IOERR;
    /* A snapshot at applied index 0 holds state kept under a new log (see fsm_flush in
     * fsm.h): a node at index 0 installs it. */
    bool base = la == 0 && f->last_applied == 0;
    if (la <= f->last_applied && !base) {
        /* LMDB already holds this state or a later one of the same log. */
        fsm_log(f, CLUSTER_LOG_DEBUG, "restore: snapshot at %llu, state already at %llu",
                (unsigned long long)la, (unsigned long long)f->last_applied);
        raft_free(buf->base);
        return 0;
    }
    int rc = store_snapshot_install(f->store, p + SNAP_HEADER, buf->len - SNAP_HEADER);
    if (rc != 0) {
        fsm_log(f, CLUSTER_LOG_ERR, "restore failed: %s", store_strerror(rc));
        return rc == STORE_ECORRUPT ? RAFT_CORRUPT : RAFT_IOERR;
    }
    struct store_txn *t;
    rc = store_read_begin(f->store, &t);
    if (rc == 0) {
        rc = store_meta_last_applied(t, &f->last_applied);
        store_txn_end(t);
    }
    if (rc != 0) return RAFT_IOERR;
    f->last_seen = f->last_applied;
    raft_free(buf->base);
    fsm_log(f, CLUSTER_LOG_NOTICE, "state restored from snapshot at applied index %llu",
            (unsigned long long)f->last_applied);
    if (f->hooks.restored) f->hooks.restored(f->hooks.ctx, f->last_applied);
    if (f->hooks.committed) f->hooks.committed(f->hooks.ctx, f->last_applied);
    return 0;
}

int fsm_init(struct fsm *f, struct store *store, const char *tmp_dir, const struct fsm_hooks *hooks)
{
    memset(f, 0, sizeof *f);
    f->store = store;
    f->hooks = *hooks;
    f->tmp_dir = strdup(tmp_dir);
    if (!f->tmp_dir) return -ENOMEM;
    struct store_txn *t;
    int rc = store_read_begin(store, &t);
    if (rc == 0) {
        rc = store_meta_last_applied(t, &f->last_applied);
        store_txn_end(t);
    }
    if (rc != 0) {
        free(f->tmp_dir);
        f->tmp_dir = NULL;
        return rc;
    }
    f->last_seen = f->loaded_applied = f->last_applied;
    f->raft_fsm.version = 2;
    f->raft_fsm.data = f;
    f->raft_fsm.apply = fsm_apply;
    f->raft_fsm.snapshot = fsm_snapshot;
    f->raft_fsm.restore = fsm_restore;
    f->raft_fsm.snapshot_finalize = fsm_snapshot_finalize;
    return 0;
}

void fsm_close(struct fsm *f)
{
    while (f->head) {
        struct fsm_entry *next = f->head->next;
        free(f->head);
        f->head = next;
    }
    f->tail = NULL;
    f->n_pending = 0;
    free(f->tmp_dir);
    f->tmp_dir = NULL;
}
