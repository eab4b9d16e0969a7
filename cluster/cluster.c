/* The cluster object: lifecycle on the broker's loop, raft_uv set-up, proposal batching,
 * completion of proposals once applied, events. */
#include "cluster.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "cluster_impl.h"
#include "command.h"

#define DEFAULT_SNAPSHOT_THRESHOLD 4096u
#define DEFAULT_SNAPSHOT_TRAILING  1024u
#define DEFAULT_ELECTION_MS        1000u
#define DEFAULT_HEARTBEAT_MS       100u
#define RETRY_MS                   1000u

/* One raft_apply: the request and the range of its proposals. */
struct batch {
    struct raft_apply req;
    struct cluster *c;
    unsigned n;
};

void cluster_logf(const struct cluster *c, enum cluster_log_level level, const char *fmt, ...)
{
    if (!c->cfg.log) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->cfg.log(c->cfg.log_ctx, level, line);
}

const char *cluster_strerror(int rc)
{
    switch (rc) {
    case CLUSTER_ENOTLEADER:
        return "not the leader";
    case CLUSTER_ECORRUPT:
        return "malformed command";
    case CLUSTER_ESHUTDOWN:
        return "cluster is shutting down";
    case CLUSTER_ELEADERSHIPLOST:
        return "leadership lost before the command committed";
    case CLUSTER_EFAILED:
        return "replicated state cannot be written";
    case CLUSTER_ERAFT:
        return "raft error";
    default:
        return store_strerror(rc);
    }
}

int cluster_from_raft(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case RAFT_NOTLEADER:
        return CLUSTER_ENOTLEADER;
    case RAFT_LEADERSHIPLOST:
        return CLUSTER_ELEADERSHIPLOST;
    case RAFT_SHUTDOWN:
    case RAFT_CANCELED:
        return CLUSTER_ESHUTDOWN;
    case RAFT_NOMEM:
        return -ENOMEM;
    default:
        return CLUSTER_ERAFT;
    }
}

static void idle_noop(uv_idle_t *h)
{
    (void)h;
}

void cluster_kick(struct cluster *c)
{
    if (!uv_is_active((uv_handle_t *)&c->idle) && !uv_is_closing((uv_handle_t *)&c->idle))
        uv_idle_start(&c->idle, idle_noop);
}

/* ---- completion of proposals ---- */

static void complete(struct proposal *p, int status, uint64_t index)
{
    if (p->cb) p->cb(p->data, status, index);
    free(p);
}

/* Completes inflight proposals up to index (committed into LMDB). */
static void complete_upto(struct cluster *c, uint64_t index)
{
    while (c->inflight_head && c->inflight_head->index != 0 && c->inflight_head->index <= index) {
        struct proposal *p = c->inflight_head;
        c->inflight_head = p->next;
        if (!c->inflight_head) c->inflight_tail = NULL;
        complete(p, 0, p->index);
    }
}

/* Fails inflight proposals whose index lies in [from, to] (all with to = UINT64_MAX). */
static void fail_range(struct cluster *c, uint64_t from, uint64_t to, int status)
{
    struct proposal **pp = &c->inflight_head, *prev = NULL;
    while (*pp) {
        struct proposal *p = *pp;
        if (p->index >= from && p->index <= to) {
            *pp = p->next;
            if (c->inflight_tail == p) c->inflight_tail = prev;
            complete(p, status, 0);
        } else {
            prev = p;
            pp = &p->next;
        }
    }
}

static void fail_queued(struct cluster *c, int status)
{
    unsigned n = c->n_queued;
    c->n_queued = 0;
    for (unsigned i = 0; i < n; i++) {
        raft_free(c->queued_bufs[i].base);
        complete(c->queued[i], status, 0);
    }
}

/* ---- FSM hooks ---- */

static void hook_applied(void *ctx, const struct cluster_cmd *cmd, uint64_t index)
{
    struct cluster *c = ctx;
    if (c->ev.applied) c->ev.applied(c->ev_ctx, cmd, index);
    if (!c->multi) return;
    owner_applied(c, cmd, index);
    if (cmd->type == CLUSTER_CMD_NODE_UP || cmd->type == CLUSTER_CMD_NODE_DOWN) {
        bool up = cmd->type == CLUSTER_CMD_NODE_UP;
        owner_refresh(c); /* node_changed routes by the new ring (the dead node's wills) */
        if (c->ev.node_changed)
            c->ev.node_changed(c->ev_ctx, cmd->node.node_id, up, cluster_is_leader(c));
        if (!up) liveness_node_down_applied(c, cmd->node.node_id);
    }
}

/* Followers learn the commit index from the leader's next AppendEntries, which libraft sends
 * with new entries or after a heartbeat interval: a follower waiting to apply an entry (its
 * own proposal, or the state a forwarded publish needs) would wait that long every time. A
 * barrier entry appended after a committed batch sends the new commit index to every follower
 * at once: one at a time, when everything appended is committed (a batch committed meanwhile
 * gets one more when it is done). */
static void push_commit(struct cluster *c);

static void commit_pushed(struct raft_barrier *req, int status)
{
    struct cluster *c = req->data;
    (void)status;
    c->commit_push_pending = false;
    if (c->commit_push_again) push_commit(c);
}

static void push_commit(struct cluster *c)
{
    c->commit_push_again = c->commit_push_pending;
    /* Entries appended and not yet committed: their commit comes back here, and new appends
     * carry the commit index meanwhile. */
    if (c->commit_push_pending || c->closing || !cluster_is_leader(c) ||
        c->raft.configuration.n < 2 || raft_last_index(&c->raft) > c->raft.commit_index)
        return;
    c->commit_push.data = c;
    if (raft_barrier(&c->raft, &c->commit_push, commit_pushed) == 0) c->commit_push_pending = true;
}

static void hook_committed(void *ctx, uint64_t last_applied)
{
    struct cluster *c = ctx;
    complete_upto(c, last_applied);
    if (c->multi) {
        multi_committed(c, last_applied);
        push_commit(c);
    }
}

static void hook_restored(void *ctx, uint64_t index)
{
    /* raft restores inside raft_start (and, later, inside its receive path): report it from
     * the loop, before the entries applied after it. */
    struct cluster *c = ctx;
    c->restored_index = index; /* 0 for a snapshot of state kept under a new log */
    c->restored = true;
    cluster_kick(c);
}

static void hook_pending(void *ctx)
{
    cluster_kick(ctx);
}

static void retry_cb(uv_timer_t *t);

static void hook_failed(void *ctx, int rc)
{
    struct cluster *c = ctx;
    if (rc != 0) {
        /* Everything waiting may or may not be applied later: tell its proposers now. */
        fail_range(c, 0, UINT64_MAX, CLUSTER_EFAILED);
        if (!c->closing) uv_timer_start(&c->retry, retry_cb, RETRY_MS, RETRY_MS);
    } else {
        uv_timer_stop(&c->retry);
    }
    if (c->ev.failed) c->ev.failed(c->ev_ctx, rc);
}

static void retry_cb(uv_timer_t *t)
{
    struct cluster *c = t->data;
    fsm_flush(&c->fsm);
}

/* ---- batching ---- */

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct batch *b = req->data;
    (void)result;
    if (status != 0) {
        /* None of the batch counts as applied; those already completed are unaffected. */
        fail_range(b->c, req->index, req->index + b->n - 1, cluster_from_raft(status));
    }
    free(b);
}

static void flush_proposals(struct cluster *c)
{
    if (c->n_queued == 0) return;
    unsigned n = c->n_queued;
    struct batch *b = malloc(sizeof *b);
    int rv = b ? 0 : RAFT_NOMEM;
    if (rv == 0) {
        b->c = c;
        b->n = n;
        b->req.data = b;
        rv = raft_apply(&c->raft, &b->req, c->queued_bufs, n, apply_cb);
    }
    if (rv != 0) {
        free(b);
        cluster_logf(c, CLUSTER_LOG_WARNING, "propose %u commands: %s", n, raft_strerror(rv));
        fail_queued(c, cluster_from_raft(rv));
        return;
    }
    /* raft owns the buffers now; the proposals wait for their indices to be applied. */
    for (unsigned i = 0; i < n; i++) {
        struct proposal *p = c->queued[i];
        p->index = b->req.index + i;
        p->next = NULL;
        if (c->inflight_tail)
            c->inflight_tail->next = p;
        else
            c->inflight_head = p;
        c->inflight_tail = p;
    }
    c->n_queued = 0;
}

static void watch_leader(struct cluster *c)
{
    raft_id id = 0;
    const char *addr = NULL;
    if (!c->unavailable_logged && raft_state(&c->raft) == RAFT_UNAVAILABLE) {
        /* libraft 0.15 stops for good after a failed write of its log or metadata (a full
         * disk among others); only a restart brings it back. */
        c->unavailable_logged = true;
        const char *msg = raft_errmsg(&c->raft);
        cluster_logf(c, CLUSTER_LOG_ERR,
                     "raft stopped after an error of its log in %s (disk full?)%s%s: durable work "
                     "is refused until a restart",
                     c->raft_dir, msg && *msg ? ": " : "", msg ? msg : "");
    }
    raft_leader(&c->raft, &id, &addr);
    if (id == c->leader_id) return;
    c->leader_id = id;
    bool self = id == c->cfg.node_id;
    cluster_logf(c, CLUSTER_LOG_NOTICE, "raft leader: %llu%s", (unsigned long long)id,
                 id == 0 ? " (none)"
                 : self  ? " (this node)"
                         : "");
    if (!self) fail_range(c, 0, UINT64_MAX, CLUSTER_ELEADERSHIPLOST);
    if (c->multi) multi_leader_changed(c, id, self);
    if (c->ev.leader_changed) c->ev.leader_changed(c->ev_ctx, id, self);
}

static void check_cb(uv_check_t *h)
{
    struct cluster *c = h->data;
    /* A restore first (the state it left is exactly the snapshot's: later entries are still
     * pending), then applied entries (their callbacks may propose more), then proposals. */
    if (c->restored) {
        uint64_t index = c->restored_index;
        c->restored = false;
        c->restored_index = 0;
        if (c->multi) owner_load(c);
        if (c->ev.restored) c->ev.restored(c->ev_ctx, index);
    }
    fsm_flush(&c->fsm);
    if (c->started && !c->closing) {
        watch_leader(c);
        if (c->multi) multi_check(c);
        flush_proposals(c);
    }
    /* In the failed state pending entries stay: the retry timer, not a busy loop, retries. */
    if (c->n_queued == 0 && (c->fsm.head == NULL || c->fsm.failed) && !(c->multi && multi_busy(c)))
        uv_idle_stop(&c->idle);
}

int cluster_queue_local(struct cluster *c, const uint8_t *cmd, size_t size, cluster_applied_cb cb,
                        void *data)
{
    if (c->n_queued == c->cap_queued) {
        unsigned cap = c->cap_queued ? c->cap_queued * 2 : 64;
        struct proposal **q = realloc(c->queued, cap * sizeof *q);
        if (!q) return -ENOMEM;
        c->queued = q;
        struct raft_buffer *qb = realloc(c->queued_bufs, cap * sizeof *qb);
        if (!qb) return -ENOMEM;
        c->queued_bufs = qb;
        c->cap_queued = cap;
    }
    size_t entry = cmd_entry_size(size);
    struct proposal *p = malloc(sizeof *p);
    uint8_t *buf = raft_malloc(entry);
    if (!p || !buf) {
        free(p);
        raft_free(buf);
        return -ENOMEM;
    }
    memcpy(buf, cmd, size);
    memset(buf + size, 0, entry - size);
    *p = (struct proposal){.cb = cb, .data = data};
    c->queued[c->n_queued] = p;
    c->queued_bufs[c->n_queued] = (struct raft_buffer){.base = buf, .len = entry};
    c->n_queued++;
    cluster_kick(c);
    return 0;
}

/* ---- apply latency ---- */

static const double apply_bounds_s[CLUSTER_APPLY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

/* A proposal of this node on its way: the proposer's callback and when it was proposed. */
struct timed {
    struct cluster *c;
    cluster_applied_cb cb;
    void *data;
    uint64_t start_ns;
};

static void apply_latency_observe(struct cluster *c, uint64_t ns)
{
    struct cluster_apply_latency *h = &c->apply_latency;
    double s = (double)ns / 1e9;
    size_t i = 0;
    while (i < CLUSTER_APPLY_BUCKETS && s > apply_bounds_s[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum_s += s;
}

static void timed_cb(void *data, int status, uint64_t index)
{
    struct timed t = *(struct timed *)data;
    free(data);
    if (status == 0) apply_latency_observe(t.c, uv_hrtime() - t.start_ns);
    if (t.cb) t.cb(t.data, status, index);
}

void cluster_apply_latency(const struct cluster *c, struct cluster_apply_latency *out)
{
    *out = c->apply_latency;
    memcpy(out->bounds_s, apply_bounds_s, sizeof out->bounds_s);
}

int cluster_propose(struct cluster *c, const struct cluster_cmd *cmd, cluster_applied_cb cb,
                    void *data)
{
    if (c->closing) return CLUSTER_ESHUTDOWN;
    if (!c->started) return c->probe ? CLUSTER_ENOQUORUM : CLUSTER_ENOTLEADER; /* probe.c */
    if (c->removed) return CLUSTER_ENOTMEMBER;
    bool leader = raft_state(&c->raft) == RAFT_LEADER;
    if (!leader && !c->multi) return CLUSTER_ENOTLEADER;
    if (c->fsm.failed) return CLUSTER_EFAILED;
    size_t size = cluster_cmd_encoded_size(cmd);
    if (size == 0) return -EINVAL;
    uint8_t stack[512];
    uint8_t *buf = size <= sizeof stack ? stack : malloc(size);
    struct timed *t = malloc(sizeof *t);
    if (!buf || !t) {
        if (buf != stack) free(buf);
        free(t);
        return -ENOMEM;
    }
    *t = (struct timed){.c = c, .cb = cb, .data = data, .start_ns = uv_hrtime()};
    cluster_cmd_encode(cmd, buf, size);
    int rc = leader ? cluster_queue_local(c, buf, size, timed_cb, t)
                    : multi_propose(c, buf, size, timed_cb, t);
    if (buf != stack) free(buf);
    if (rc != 0) free(t);
    return rc;
}

/* ---- lifecycle ---- */

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Everything but the cluster object itself (which holds the raft_io and struct raft). */
static void cluster_release(struct cluster *c)
{
    fsm_close(&c->fsm);
    store_close(c->store);
    c->store = NULL;
    free(c->queued);
    free(c->queued_bufs);
    free(c->data_dir);
    free(c->raft_dir);
    free(c->state_dir);
    free(c->address);
    ring_close(&c->ring);
    free(c->nodes);
    free(c->join_target);
    c->queued = NULL;
    c->queued_bufs = NULL;
    c->data_dir = c->raft_dir = c->state_dir = c->address = c->join_target = NULL;
    c->nodes = NULL;
}

static void cluster_free(struct cluster *c)
{
    cluster_release(c);
    free(c);
}

int cluster_new(uv_loop_t *loop, const struct cluster_config *cfg, const struct cluster_events *ev,
                void *ev_ctx, struct cluster **out)
{
    if (!cfg || !cfg->data_dir || !*cfg->data_dir) return -EINVAL;
    struct cluster *c = calloc(1, sizeof *c);
    if (!c) return -ENOMEM;
    c->loop = loop;
    c->cfg = *cfg;
    if (!c->cfg.node_id) c->cfg.node_id = 1;
    if (!c->cfg.snapshot_threshold) c->cfg.snapshot_threshold = DEFAULT_SNAPSHOT_THRESHOLD;
    if (!c->cfg.snapshot_trailing) c->cfg.snapshot_trailing = DEFAULT_SNAPSHOT_TRAILING;
    if (!c->cfg.election_timeout_ms) c->cfg.election_timeout_ms = DEFAULT_ELECTION_MS;
    if (!c->cfg.heartbeat_timeout_ms) c->cfg.heartbeat_timeout_ms = DEFAULT_HEARTBEAT_MS;
    if (ev) c->ev = *ev;
    c->ev_ctx = ev_ctx;
    c->multi = cfg->n_peers > 0 || (cfg->join && *cfg->join);
    c->use_tcp = !c->multi && cfg->raft_address != NULL;
    c->data_dir = strdup(cfg->data_dir);
    c->raft_dir = path_join(cfg->data_dir, "raft");
    c->state_dir = path_join(cfg->data_dir, "state");
    c->address = strdup(cfg->raft_address ? cfg->raft_address : "local");
    int rc = 0;
    if (!c->data_dir || !c->raft_dir || !c->state_dir || !c->address) {
        rc = -ENOMEM;
        goto fail;
    }
    struct store_options opt = {.map_size = cfg->map_size, .map_size_max = cfg->map_size_max};
    rc = store_open(c->state_dir, &opt, &c->store); /* creates data_dir/state */
    if (rc != 0) {
        cluster_logf(c, CLUSTER_LOG_ERR, "state in %s: %s", c->state_dir, store_strerror(rc));
        goto fail;
    }
    struct fsm_hooks hooks = {
        .applied = hook_applied,
        .committed = hook_committed,
        .restored = hook_restored,
        .pending = hook_pending,
        .failed = hook_failed,
        .log = cfg->log,
        .log_ctx = cfg->log_ctx,
        .ctx = c,
    };
    rc = fsm_init(&c->fsm, c->store, c->state_dir, &hooks);
    if (rc != 0) goto fail;
    if (c->multi) {
        rc = multi_init(c); /* sets c->address to the advertised address */
        if (rc != 0) goto fail;
    }
    uv_check_init(loop, &c->check);
    uv_idle_init(loop, &c->idle);
    uv_timer_init(loop, &c->retry);
    uv_timer_init(loop, &c->reap);
    c->check.data = c->idle.data = c->retry.data = c->reap.data = c;
    uv_unref((uv_handle_t *)&c->check);
    uv_unref((uv_handle_t *)&c->idle);
    uv_unref((uv_handle_t *)&c->retry);
    c->handles_open = 3; /* reap is closed on its own, last */
    uv_check_start(&c->check, check_cb);
    *out = c;
    return 0;
fail:
    cluster_free(c);
    return rc;
}

struct store *cluster_storage(struct cluster *c)
{
    return c->store;
}

/* A new Raft log over existing state (the raft directory was removed, the state kept): the
 * state's last_applied counts entries of a log that is gone, and would make the new log's
 * first entries look applied already. Keep the state and count from the new log's start. */
static int rebase_state(struct cluster *c)
{
    if (c->fsm.last_applied == 0) return 0;
    cluster_logf(c, CLUSTER_LOG_WARNING,
                 "%s holds state up to index %llu of a Raft log that is gone: keeping the state, "
                 "starting a new log",
                 c->state_dir, (unsigned long long)c->fsm.last_applied);
    struct store_txn *t;
    int rc = store_write_begin(c->store, &t);
    if (rc == 0) {
        rc = store_meta_set_last_applied(t, 0);
        if (rc == 0)
            rc = store_write_commit(t);
        else
            store_txn_end(t);
    }
    if (rc != 0) {
        cluster_logf(c, CLUSTER_LOG_ERR, "state in %s: %s", c->state_dir, store_strerror(rc));
        return RAFT_IOERR;
    }
    c->fsm.last_applied = c->fsm.last_seen = 0;
    return 0;
}

static bool raft_dir_is_empty(const char *dir)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/metadata1", dir);
    if (stat(path, &st) == 0) return false;
    snprintf(path, sizeof path, "%s/metadata2", dir);
    return stat(path, &st) != 0;
}

int cluster_start(struct cluster *c)
{
    if (c->started || c->raft_ready || c->closing) return -EALREADY;
    if (mkdir(c->raft_dir, 0700) != 0 && errno != EEXIST) {
        int rc = -errno;
        cluster_logf(c, CLUSTER_LOG_ERR, "raft dir %s: %s", c->raft_dir, strerror(errno));
        return rc;
    }
    int rv;
    struct raft_uv_transport *t;
    bool fresh = raft_dir_is_empty(c->raft_dir);
    if (c->multi) {
        rv = multi_start(c); /* the cluster port and the links */
        if (rv != 0) return rv;
        t = &c->tport.t;
    } else if (c->use_tcp) {
        rv = raft_uv_tcp_init(&c->tcp, c->loop);
        if (rv != 0) {
            cluster_logf(c, CLUSTER_LOG_ERR, "raft transport: %s", raft_strerror(rv));
            return cluster_from_raft(rv);
        }
        t = &c->tcp;
    } else {
        transport_local_init(&c->local, c->loop);
        t = &c->local.t;
    }
    c->transport_ready = true;
    rv = raft_uv_init(&c->io, c->loop, c->raft_dir, t);
    if (rv != 0) {
        cluster_logf(c, CLUSTER_LOG_ERR, "raft storage in %s: %s", c->raft_dir, raft_strerror(rv));
        return cluster_from_raft(rv);
    }
    c->io_ready = true;
    rv = raft_init(&c->raft, &c->io, &c->fsm.raft_fsm, c->cfg.node_id, c->address);
    if (rv != 0) {
        cluster_logf(c, CLUSTER_LOG_ERR, "raft init: %s", raft_errmsg(&c->raft));
        return cluster_from_raft(rv);
    }
    c->raft_ready = true;
    c->fsm.raft = &c->raft;
    raft_set_election_timeout(&c->raft, c->cfg.election_timeout_ms);
    raft_set_heartbeat_timeout(&c->raft, c->cfg.heartbeat_timeout_ms);
    raft_set_pre_vote(&c->raft, true);
    raft_set_snapshot_threshold(&c->raft, c->cfg.snapshot_threshold);
    raft_set_snapshot_trailing(&c->raft, c->cfg.snapshot_trailing);

    /* A pristine initial member of several asks the others first whether the cluster already
     * runs (its data was lost): then it joins instead of bootstrapping (probe.c). */
    if (c->multi && fresh && c->cfg.n_peers > 1 && !c->cfg.join) return probe_begin(c);
    return cluster_raft_start(c, true, fresh);
}

int cluster_raft_start(struct cluster *c, bool bootstrap, bool fresh)
{
    /* Bootstrap the configuration (one voter, or the static peers); raft refuses
     * (RAFT_CANTBOOTSTRAP) when the directory already holds state, so an existing data dir is
     * never re-bootstrapped. A joining node bootstraps nothing: the leader adds it. */
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = 0;
    if (!bootstrap) {
        /* nothing: the leader adds this node */
    } else if (!c->multi) {
        rv = raft_configuration_add(&conf, c->cfg.node_id, c->address, RAFT_VOTER);
    } else {
        for (size_t i = 0; i < c->cfg.n_peers && rv == 0; i++)
            rv = raft_configuration_add(&conf, c->cfg.peers[i].id, c->cfg.peers[i].address,
                                        RAFT_VOTER);
    }
    if (rv == 0 && conf.n > 0) {
        rv = raft_bootstrap(&c->raft, &conf);
        if (rv == 0) {
            cluster_logf(c, CLUSTER_LOG_NOTICE,
                         "bootstrapped a new %u-node cluster (node %llu) in %s", conf.n,
                         (unsigned long long)c->cfg.node_id, c->data_dir);
            rv = rebase_state(c);
        } else if (rv == RAFT_CANTBOOTSTRAP) {
            rv = 0;
        }
    } else if (rv == 0 && fresh) {
        rv = rebase_state(c); /* joining with an empty log */
        c->rejoin = c->multi;
    }
    raft_configuration_close(&conf);
    if (rv != 0) {
        cluster_logf(c, CLUSTER_LOG_ERR, "raft bootstrap: %s", raft_strerror(rv));
        return cluster_from_raft(rv);
    }
    rv = raft_start(&c->raft);
    if (rv != 0) {
        cluster_logf(c, CLUSTER_LOG_ERR, "raft start: %s", raft_errmsg(&c->raft));
        return cluster_from_raft(rv);
    }
    c->started = true;
    cluster_logf(c, CLUSTER_LOG_INFO, "raft started: node %llu, log in %s, state at index %llu",
                 (unsigned long long)c->cfg.node_id, c->raft_dir,
                 (unsigned long long)c->fsm.last_applied);
    cluster_kick(c); /* leader change and the replayed tail are reported from the loop */
    return 0;
}

bool cluster_is_leader(const struct cluster *c)
{
    return c->started && raft_state((struct raft *)&c->raft) == RAFT_LEADER;
}

uint64_t cluster_leader_id(const struct cluster *c)
{
    return c->leader_id;
}

uint64_t cluster_node_id(const struct cluster *c)
{
    return c->cfg.node_id;
}

uint64_t cluster_last_applied(const struct cluster *c)
{
    return c->fsm.last_applied;
}

/* ---- closing ----
 *
 * libraft 0.15's raft_uv can invoke the raft_io close callback (libraft's own, which frees
 * struct raft's address, log and configuration and then calls raft_close's callback) more than
 * once: it takes a log segment off its list before that segment's file writer has closed, so
 * the callback can fire while a writer still closes (a write still on the thread pool, as
 * after ENOSPC on the log), and the writer's close then fires it again, on memory that the
 * first call let its owner free. So after the first call io.data points at a zeroed struct
 * raft (a second call frees NULLs and calls nothing), and the cluster object, which holds io
 * and raft, and raft_uv's own state are freed only once the loop has had no request in flight
 * for two ticks of the reap timer (raft_uv's writes and segment finalizations are thread-pool
 * requests; a writer's handles close in the iteration its last request finished), or after
 * REAP_MAX_MS: other users of the loop (other nodes in tests, clients) may keep requests in
 * flight all the time, while raft_uv's last writes end within milliseconds. */

#define REAP_TICK_MS 20u
#define REAP_MAX_MS  2000u

static void reap_closed(uv_handle_t *h)
{
    struct cluster *c = h->data;
    cluster_close_cb cb = c->close_cb;
    void *data = c->close_data;
    if (c->io_ready && !c->io_closed) raft_uv_close(&c->io);
    if (c->transport_ready && c->use_tcp) raft_uv_tcp_close(&c->tcp);
    free(c);
    if (cb) cb(data);
}

static void reap_cb(uv_timer_t *t)
{
    struct cluster *c = t->data;
    c->reap_ticks++;
    c->reap_quiet = c->loop->active_reqs.count == 0 ? c->reap_quiet + 1 : 0;
    bool timed_out = c->reap_ticks * REAP_TICK_MS >= REAP_MAX_MS;
    if (c->reap_quiet < 2 && !timed_out) return;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, reap_closed);
}

static void handle_closed(uv_handle_t *h)
{
    struct cluster *c = h->data;
    if (--c->handles_open > 0) return;
    cluster_release(c); /* LMDB is closed from here on */
    uv_timer_start(&c->reap, reap_cb, REAP_TICK_MS, REAP_TICK_MS);
}

static void close_handles(struct cluster *c)
{
    /* Whatever raft applied last is committed before LMDB closes. */
    fsm_flush(&c->fsm);
    fail_range(c, 0, UINT64_MAX, CLUSTER_ESHUTDOWN);
    uv_close((uv_handle_t *)&c->check, handle_closed);
    uv_close((uv_handle_t *)&c->idle, handle_closed);
    uv_close((uv_handle_t *)&c->retry, handle_closed);
}

/* A second close callback of raft_io (see above): logged at debug level, nothing else. */
static void raft_closed_again(struct raft *r)
{
    struct cluster *c = (struct cluster *)((char *)r - offsetof(struct cluster, spent));
    c->spent.close_cb = raft_closed_again; /* libraft leaves it, but do not depend on that */
    cluster_logf(c, CLUSTER_LOG_DEBUG, "raft storage reported closed once more; ignored");
}

static void raft_closed(struct raft *r)
{
    struct cluster *c = (struct cluster *)((char *)r - offsetof(struct cluster, raft));
    c->spent.close_cb = raft_closed_again;
    c->io.data = &c->spent;
    if (c->multi)
        multi_close(c, close_handles);
    else
        close_handles(c);
}

void cluster_close(struct cluster *c, cluster_close_cb cb, void *data)
{
    if (c->closing) return;
    c->closing = true;
    c->close_cb = cb;
    c->close_data = data;
    fail_queued(c, CLUSTER_ESHUTDOWN);
    if (c->raft_ready) {
        raft_close(&c->raft, raft_closed);
        return;
    }
    /* raft never initialized: release what cluster_start got to (nothing of raft_uv runs:
     * its close was never started). */
    if (c->io_ready) raft_uv_close(&c->io);
    c->io_closed = true;
    if (c->transport_ready && c->use_tcp) raft_uv_tcp_close(&c->tcp);
    c->transport_ready = false;
    if (c->multi)
        multi_close(c, close_handles);
    else
        close_handles(c);
}
