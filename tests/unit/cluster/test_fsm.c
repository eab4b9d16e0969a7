/* cluster/fsm.c on libraft's deterministic raft_fixture: commands applied in order into
 * LMDB with the right indices, one transaction per batch, identical state on 3 servers,
 * already-applied indices skipped, corrupt entries skipped, snapshot + restore, map growth
 * and the failed state. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "cluster.h"
#include "fsm.h"
#include "ring.h"
#include "testlib.h"

#define S(lit)      ((struct store_str){lit, sizeof lit - 1})
#define MAX_SERVERS 3
#define MAX_EVENTS  512

struct server {
    char dir[512];
    struct store *store;
    struct fsm fsm;
    uint64_t applied[MAX_EVENTS];
    enum cluster_cmd_type types[MAX_EVENTS];
    uint64_t seqs[MAX_EVENTS];
    unsigned n_applied;
    unsigned n_committed;
    unsigned n_restored;
    int failed_rc;
};

struct fix {
    const char *dir;
    struct raft_fixture f;
    struct server s[MAX_SERVERS];
    unsigned n;
};

static void on_applied(void *ctx, const struct cluster_cmd *cmd, uint64_t index)
{
    struct server *s = ctx;
    assert_true(s->n_applied < MAX_EVENTS);
    s->types[s->n_applied] = cmd->type;
    s->seqs[s->n_applied] = cmd->type == CLUSTER_CMD_QUEUE_PUSH ? cmd->queue_push.seq : 0;
    s->applied[s->n_applied++] = index;
}
static void on_committed(void *ctx, uint64_t last)
{
    struct server *s = ctx;
    (void)last;
    s->n_committed++;
}
static void on_restored(void *ctx, uint64_t last)
{
    struct server *s = ctx;
    (void)last;
    s->n_restored++;
}
static void on_failed(void *ctx, int rc)
{
    struct server *s = ctx;
    s->failed_rc = rc;
}

static void server_open(struct server *s, const char *base, unsigned i, size_t map, size_t max)
{
    snprintf(s->dir, sizeof s->dir, "%s/s%u", base, i);
    struct store_options opt = {.map_size = map, .map_size_max = max};
    assert_int_equal(store_open(s->dir, &opt, &s->store), 0);
    struct fsm_hooks hooks = {.applied = on_applied,
                              .committed = on_committed,
                              .restored = on_restored,
                              .failed = on_failed,
                              .ctx = s};
    assert_int_equal(fsm_init(&s->fsm, s->store, s->dir, &hooks), 0);
}

/* n servers, all voters, server 0 elected. Stores may be prepared by prepare(). */
static void fix_start(struct fix *x, unsigned n, size_t map, size_t max,
                      void (*prepare)(struct server *s))
{
    memset(x, 0, sizeof *x);
    x->dir = test_mkdtemp();
    x->n = n;
    assert_int_equal(raft_fixture_initialize(&x->f), 0);
    for (unsigned i = 0; i < n; i++) {
        if (prepare) {
            snprintf(x->s[i].dir, sizeof x->s[i].dir, "%s/s%u", x->dir, i);
            struct store *st;
            assert_int_equal(store_open(x->s[i].dir, NULL, &st), 0);
            x->s[i].store = st;
            prepare(&x->s[i]);
            store_close(st);
        }
        server_open(&x->s[i], x->dir, i, map, max);
        assert_int_equal(raft_fixture_grow(&x->f, &x->s[i].fsm.raft_fsm), 0);
        x->s[i].fsm.raft = raft_fixture_get(&x->f, i);
    }
    struct raft_configuration conf;
    assert_int_equal(raft_fixture_configuration(&x->f, n, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&x->f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&x->f), 0);
    if (n == 1) /* a single voter elects itself */
        assert_true(raft_fixture_step_until_has_leader(&x->f, 5000));
    else
        raft_fixture_elect(&x->f, 0);
    assert_int_equal(raft_fixture_leader_index(&x->f), 0);
}

static void fix_stop(struct fix *x)
{
    raft_fixture_close(&x->f);
    for (unsigned i = 0; i < x->n; i++) {
        fsm_close(&x->s[i].fsm);
        store_close(x->s[i].store);
    }
    test_rmdir(x->dir);
}

static void flush_all(struct fix *x)
{
    for (unsigned i = 0; i < x->n; i++)
        fsm_flush(&x->s[i].fsm);
}

struct applied_req {
    struct raft_apply req;
    int status;
    bool fired;
};

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct applied_req *a = req->data;
    (void)result;
    a->status = status;
    a->fired = true;
}

/* Proposes n commands in one raft_apply on server 0; returns the first index. */
static uint64_t propose(struct fix *x, const struct cluster_cmd *cmds, unsigned n,
                        struct applied_req *a)
{
    struct raft_buffer bufs[64];
    assert_true(n <= 64);
    for (unsigned i = 0; i < n; i++) {
        size_t len = cluster_cmd_encoded_size(&cmds[i]);
        assert_true(len > 0);
        bufs[i].base = raft_malloc(len);
        bufs[i].len = len;
        assert_int_equal(cluster_cmd_encode(&cmds[i], bufs[i].base, len), len);
    }
    a->req.data = a;
    a->fired = false;
    assert_int_equal(raft_apply(raft_fixture_get(&x->f, 0), &a->req, bufs, n, apply_cb), 0);
    return a->req.index;
}

static void apply_and_wait(struct fix *x, const struct cluster_cmd *cmds, unsigned n,
                           uint64_t *first)
{
    struct applied_req a;
    uint64_t idx = propose(x, cmds, n, &a);
    if (x->n == raft_fixture_n(&x->f)) {
        assert_true(raft_fixture_step_until_applied(&x->f, x->n, idx + n - 1, 10000));
    } else {
        for (unsigned i = 0; i < x->n; i++)
            assert_true(raft_fixture_step_until_applied(&x->f, i, idx + n - 1, 10000));
    }
    assert_true(a.fired);
    assert_int_equal(a.status, 0);
    flush_all(x);
    if (first) *first = idx;
}

static struct cluster_cmd c_open(const char *client)
{
    return (struct cluster_cmd){.type = CLUSTER_CMD_SESSION_OPEN,
                                .session_open = {.client_id = {client, strlen(client)},
                                                 .node_id = 1,
                                                 .protocol_version = 5,
                                                 .flags = STORE_SESSION_PERSISTENT}};
}
static struct cluster_cmd c_sub(const char *client, const char *filter)
{
    return (struct cluster_cmd){.type = CLUSTER_CMD_SUBSCRIBE,
                                .subscribe = {.client_id = {client, strlen(client)},
                                              .filter = {filter, strlen(filter)},
                                              .options = 1}};
}
static struct cluster_cmd c_retain(const char *topic, const char *payload)
{
    return (struct cluster_cmd){
        .type = CLUSTER_CMD_RETAIN_SET,
        .retain_set = {.msg = {.topic = {topic, strlen(topic)},
                               .payload = {(const uint8_t *)payload, strlen(payload)},
                               .qos = 1}}};
}
static struct cluster_cmd c_push(const char *client, uint64_t msg_id)
{
    return (struct cluster_cmd){
        .type = CLUSTER_CMD_QUEUE_PUSH,
        .queue_push = {.client_id = {client, strlen(client)},
                       .msg_id = msg_id,
                       .msg = {.topic = S("q/t"), .payload = {(const uint8_t *)"m", 1}, .qos = 1}}};
}

/* A printable dump of the whole state, to compare servers. */
struct dump {
    char buf[16384];
    size_t len;
};
static void dumpf(struct dump *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dumpf(struct dump *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(d->buf + d->len, sizeof d->buf - d->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof d->buf - d->len);
    d->len += (size_t)n;
}
static int d_sess(void *ctx, const struct store_session *s)
{
    dumpf(ctx, "S %s %d %d;", s->client_id.ptr, s->flags, s->connected);
    return 0;
}
static int d_sub(void *ctx, const struct store_subscription *s)
{
    dumpf(ctx, "U %s %s %d;", s->client_id.ptr, s->filter.ptr, s->options);
    return 0;
}
static int d_ret(void *ctx, const struct store_retained *r)
{
    dumpf(ctx, "R %s %.*s;", r->msg.topic.ptr, (int)r->msg.payload.len,
          (const char *)r->msg.payload.ptr);
    return 0;
}
static int d_q(void *ctx, const struct store_queued *q)
{
    dumpf(ctx, "Q %s %llu %llu;", q->client_id.ptr, (unsigned long long)q->seq,
          (unsigned long long)q->msg_id);
    return 0;
}
static void dump_state(struct store *st, struct dump *d)
{
    struct store_txn *t;
    d->len = 0;
    d->buf[0] = 0;
    assert_int_equal(store_read_begin(st, &t), 0);
    uint64_t la;
    assert_int_equal(store_meta_last_applied(t, &la), 0);
    assert_int_equal(store_session_foreach(t, d_sess, d), 0);
    assert_int_equal(store_sub_foreach(t, d_sub, d), 0);
    assert_int_equal(store_retain_foreach(t, d_ret, d), 0);
    assert_int_equal(store_queue_foreach(t, d_q, d), 0);
    store_txn_end(t);
}

static uint64_t stored_last_applied(struct store *st)
{
    struct store_txn *t;
    uint64_t la;
    assert_int_equal(store_read_begin(st, &t), 0);
    assert_int_equal(store_meta_last_applied(t, &la), 0);
    store_txn_end(t);
    return la;
}

/* One server: a batch of three commands in one raft_apply is applied in order with the log
 * indices raft assigned (so "index = last_applied + 1 during apply" holds), committed in one
 * transaction, and last_applied in LMDB is the batch's last index. */
static void one_server_batch_in_order(void **state)
{
    (void)state;
    struct fix x;
    fix_start(&x, 1, 0, 0, NULL);
    struct cluster_cmd cmds[] = {c_open("c1"), c_sub("c1", "a/#"), c_retain("a/b", "v1")};
    uint64_t first;
    unsigned commits_before = x.s[0].n_committed;
    apply_and_wait(&x, cmds, 3, &first);
    struct server *s = &x.s[0];
    assert_int_equal(s->n_applied, 3);
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(s->applied[i], first + i);
        assert_int_equal(s->types[i], cmds[i].type);
    }
    assert_int_equal(s->n_committed - commits_before, 1);
    assert_int_equal(stored_last_applied(s->store), first + 2);
    assert_int_equal(s->fsm.last_applied, first + 2);
    struct dump d;
    dump_state(s->store, &d);
    assert_string_equal(d.buf, "S c1 2 1;U c1 a/# 1;R a/b v1;");
    fix_stop(&x);
}

/* Three servers apply the same commands into identical states, including the queue
 * sequence numbers the FSM assigns; a later batch of acks and deletes too. */
static void three_servers_same_state(void **state)
{
    (void)state;
    struct fix x;
    fix_start(&x, 3, 0, 0, NULL);
    struct cluster_cmd b1[] = {c_open("a"),     c_sub("a", "x/+"), c_push("a", 10),
                               c_push("a", 11), c_push("b", 5),    c_retain("r/1", "one")};
    apply_and_wait(&x, b1, 6, NULL);
    struct cluster_cmd b2[] = {
        {.type = CLUSTER_CMD_QUEUE_ACK, .queue_ack = {.client_id = S("a"), .msg_id = 10}},
        {.type = CLUSTER_CMD_SESSION_CLOSE, .client = {.client_id = S("a"), .at_ms = 5}},
        {.type = CLUSTER_CMD_RETAIN_CLEAR, .retain_clear = {.topic = S("r/1")}},
        {.type = CLUSTER_CMD_UNSUBSCRIBE,
         .unsubscribe = {.client_id = S("nobody"), .filter = S("f")}}, /* no-op */
        c_push("a", 12),
    };
    apply_and_wait(&x, b2, 5, NULL);
    struct dump d0, di;
    dump_state(x.s[0].store, &d0);
    assert_string_equal(d0.buf, "S a 2 0;U a x/+ 1;Q a 2 11;Q a 3 12;Q b 1 5;");
    for (unsigned i = 1; i < 3; i++) {
        dump_state(x.s[i].store, &di);
        assert_string_equal(di.buf, d0.buf);
        assert_int_equal(x.s[i].n_applied, x.s[0].n_applied);
        assert_memory_equal(x.s[i].applied, x.s[0].applied, x.s[0].n_applied * sizeof(uint64_t));
        assert_memory_equal(x.s[i].seqs, x.s[0].seqs, x.s[0].n_applied * sizeof(uint64_t));
    }
    fix_stop(&x);
}

/* A committed entry that does not decode is logged and skipped: the entries after it are
 * applied, last_applied moves past it, and it reaches no event. */
static void corrupt_entry_is_skipped(void **state)
{
    (void)state;
    struct fix x;
    fix_start(&x, 1, 0, 0, NULL);
    struct raft_buffer bufs[3];
    struct cluster_cmd a = c_open("ok1"), b = c_open("ok2");
    size_t la = cluster_cmd_encoded_size(&a), lb = cluster_cmd_encoded_size(&b);
    bufs[0] = (struct raft_buffer){raft_malloc(la), la};
    cluster_cmd_encode(&a, bufs[0].base, la);
    bufs[1] = (struct raft_buffer){raft_malloc(5), 5};
    memcpy(bufs[1].base, "\x01\x63junk", 5);
    bufs[2] = (struct raft_buffer){raft_malloc(lb), lb};
    cluster_cmd_encode(&b, bufs[2].base, lb);
    struct applied_req r = {.req.data = &r};
    assert_int_equal(raft_apply(raft_fixture_get(&x.f, 0), &r.req, bufs, 3, apply_cb), 0);
    uint64_t first = r.req.index;
    assert_true(raft_fixture_step_until_applied(&x.f, 1, first + 2, 10000));
    flush_all(&x);
    struct server *s = &x.s[0];
    assert_int_equal(s->fsm.n_corrupt, 1);
    assert_int_equal(s->n_applied, 2);
    assert_int_equal(s->applied[0], first);
    assert_int_equal(s->applied[1], first + 2);
    assert_int_equal(stored_last_applied(s->store), first + 2);
    fix_stop(&x);
}

/* The store already holds the state up to index 3 (as after a restart): raft's replay of
 * entries 2 and 3 is skipped, entry 4 is applied. */
static void prepare_applied_3(struct server *s)
{
    struct store_txn *t;
    assert_int_equal(store_write_begin(s->store, &t), 0);
    assert_int_equal(store_meta_set_last_applied(t, 3), 0);
    assert_int_equal(store_write_commit(t), 0);
}

static void already_applied_indices_are_skipped(void **state)
{
    (void)state;
    struct fix x;
    fix_start(&x, 1, 0, 0, prepare_applied_3);
    /* Index 1 is the bootstrap configuration. */
    struct cluster_cmd cmds[] = {c_open("two"), c_open("three"), c_open("four")};
    uint64_t first;
    apply_and_wait(&x, cmds, 3, &first);
    assert_int_equal(first, 2);
    struct server *s = &x.s[0];
    assert_int_equal(s->fsm.n_skipped, 2);
    assert_int_equal(s->n_applied, 1);
    assert_int_equal(s->applied[0], 4);
    struct dump d;
    dump_state(s->store, &d);
    assert_string_equal(d.buf, "S four 2 1;");
    assert_int_equal(stored_last_applied(s->store), 4);
    fix_stop(&x);
}

/* With a low snapshot threshold, a server cut off while the others move on is caught up by
 * a snapshot: its restore replaces its LMDB state with the leader's, and later commands
 * apply on top. */
static void snapshot_and_restore(void **state)
{
    (void)state;
    struct fix x;
    fix_start(&x, 3, 0, 0, NULL);
    for (unsigned i = 0; i < 3; i++) {
        raft_set_snapshot_threshold(raft_fixture_get(&x.f, i), 8);
        raft_set_snapshot_trailing(raft_fixture_get(&x.f, i), 2);
    }
    struct cluster_cmd first = c_retain("before", "x");
    apply_and_wait(&x, &first, 1, NULL);
    raft_fixture_disconnect(&x.f, 0, 2);
    raft_fixture_disconnect(&x.f, 1, 2);
    x.n = 2; /* wait only for servers 0 and 1 */
    char topics[40][16];
    for (unsigned i = 0; i < 40; i++) {
        snprintf(topics[i], sizeof topics[i], "t/%u", i);
        struct cluster_cmd c = c_retain(topics[i], "v");
        apply_and_wait(&x, &c, 1, NULL);
    }
    x.n = 3;
    raft_fixture_reconnect(&x.f, 0, 2);
    raft_fixture_reconnect(&x.f, 1, 2);
    struct cluster_cmd last = c_retain("after", "y");
    uint64_t idx;
    apply_and_wait(&x, &last, 1, &idx);
    assert_true(x.s[2].n_restored >= 1);
    struct dump d0, d2;
    dump_state(x.s[0].store, &d0);
    dump_state(x.s[2].store, &d2);
    assert_string_equal(d2.buf, d0.buf);
    assert_non_null(strstr(d2.buf, "R t/39 v;"));
    assert_non_null(strstr(d2.buf, "R after y;"));
    assert_int_equal(stored_last_applied(x.s[2].store), idx);
    /* The restored server's events resume after the snapshot, in order. */
    assert_int_equal(x.s[2].applied[x.s[2].n_applied - 1], idx);
    fix_stop(&x);
}

static int ring_add_up(void *ctx, const struct store_node *n)
{
    uint64_t *ids = ctx;
    if (n->up) ids[++ids[0]] = n->node_id;
    return 0;
}

/* The ring of a server, from its nodes table alone (as cluster/owner.c builds it). */
static void ring_of(struct server *s, struct ring *r)
{
    uint64_t ids[16] = {0};
    struct store_txn *t;
    assert_int_equal(store_read_begin(s->store, &t), 0);
    assert_int_equal(store_node_foreach(t, ring_add_up, ids), 0);
    store_txn_end(t);
    ring_init(r);
    assert_true(ring_set_members(r, ids + 1, ids[0]) >= 0);
}

static bool same_owners(struct server *a, struct server *b)
{
    struct ring ra, rb;
    ring_of(a, &ra);
    ring_of(b, &rb);
    bool same = ra.n == rb.n;
    char topic[32];
    for (int i = 0; i < 500 && same; i++) {
        int n = snprintf(topic, sizeof topic, "dev/%d/state", i);
        same = ring_owner(&ra, topic, (size_t)n) == ring_owner(&rb, topic, (size_t)n);
    }
    ring_close(&ra);
    ring_close(&rb);
    return same;
}

static struct cluster_cmd c_node(uint64_t id, bool up)
{
    return (struct cluster_cmd){.type = up ? CLUSTER_CMD_NODE_UP : CLUSTER_CMD_NODE_DOWN,
                                .node = {.node_id = id, .address = S("h:1"), .at_ms = 1}};
}

/* Liveness verdicts are committed commands: every server derives the same ring from them; a
 * partitioned server keeps its old ring until it catches up, then agrees again. */
static void ring_from_committed_verdicts(void **state)
{
    (void)state;
    struct fix x;
    fix_start(&x, 3, 0, 0, NULL);
    struct cluster_cmd up[3] = {c_node(1, true), c_node(2, true), c_node(3, true)};
    apply_and_wait(&x, up, 3, NULL);
    assert_true(same_owners(&x.s[0], &x.s[1]));
    assert_true(same_owners(&x.s[0], &x.s[2]));
    struct ring r;
    ring_of(&x.s[2], &r);
    assert_int_equal(r.n, 3);
    ring_close(&r);
    raft_fixture_disconnect(&x.f, 0, 2);
    raft_fixture_disconnect(&x.f, 1, 2);
    x.n = 2;
    struct cluster_cmd down = c_node(3, false);
    apply_and_wait(&x, &down, 1, NULL);
    assert_true(same_owners(&x.s[0], &x.s[1]));
    assert_false(same_owners(&x.s[0], &x.s[2])); /* not yet */
    ring_of(&x.s[0], &r);
    assert_int_equal(r.n, 2);
    ring_close(&r);
    x.n = 3;
    raft_fixture_reconnect(&x.f, 0, 2);
    raft_fixture_reconnect(&x.f, 1, 2);
    struct cluster_cmd back = c_node(3, true);
    apply_and_wait(&x, &back, 1, NULL);
    assert_true(same_owners(&x.s[0], &x.s[2]));
    ring_of(&x.s[2], &r);
    assert_int_equal(r.n, 3);
    ring_close(&r);
    fix_stop(&x);
}

/* A batch that overflows a small map grows it and commits everything. */
static void map_full_grows(void **state)
{
    (void)state;
    struct fix x;
    fix_start(&x, 1, 64u << 10, 64u << 20, NULL);
    static char payload[3000];
    memset(payload, 'p', sizeof payload - 1);
    char topics[60][16];
    struct cluster_cmd cmds[60];
    for (unsigned i = 0; i < 60; i++) {
        snprintf(topics[i], sizeof topics[i], "big/%u", i);
        cmds[i] = c_retain(topics[i], payload);
    }
    apply_and_wait(&x, cmds, 60, NULL);
    struct server *s = &x.s[0];
    assert_true(s->fsm.n_grows > 0);
    assert_int_equal(s->n_applied, 60);
    assert_int_equal(s->failed_rc, 0);
    fix_stop(&x);
}

/* When the map cannot grow, nothing is committed, the entries wait, the failed hook gets
 * -ENOSPC, and LMDB keeps its earlier consistent state. */
static void map_full_at_maximum_fails_safely(void **state)
{
    (void)state;
    struct fix x;
    fix_start(&x, 1, 64u << 10, 64u << 10, NULL);
    struct cluster_cmd small = c_retain("small", "s");
    apply_and_wait(&x, &small, 1, NULL);
    uint64_t before = stored_last_applied(x.s[0].store);
    static char payload[3000];
    memset(payload, 'p', sizeof payload - 1);
    char topics[60][16];
    struct cluster_cmd cmds[60];
    for (unsigned i = 0; i < 60; i++) {
        snprintf(topics[i], sizeof topics[i], "big/%u", i);
        cmds[i] = c_retain(topics[i], payload);
    }
    apply_and_wait(&x, cmds, 60, NULL);
    struct server *s = &x.s[0];
    assert_int_equal(s->failed_rc, -ENOSPC);
    assert_int_equal(s->fsm.failed, -ENOSPC);
    assert_int_equal(s->fsm.n_pending, 60);
    assert_int_equal(stored_last_applied(s->store), before);
    assert_int_equal(fsm_flush(&s->fsm), -ENOSPC); /* a retry fails the same way */
    struct dump d;
    dump_state(s->store, &d);
    assert_string_equal(d.buf, "R small s;");
    fix_stop(&x);
}

static struct cluster_cmd c_will(const char *client, const char *payload)
{
    return (struct cluster_cmd){
        .type = CLUSTER_CMD_WILL_SET,
        .will_set = {
            .client_id = {client, strlen(client)},
            .msg = {.topic = S("w/t"), .payload = {(const uint8_t *)payload, strlen(payload)}},
            .delay_interval_s = 30}};
}

static bool will_of(struct store *st, const char *client, char *payload /* OUT */)
{
    struct store_txn *t;
    struct store_will w;
    assert_int_equal(store_read_begin(st, &t), 0);
    int rc = store_will_get(t, client, strlen(client), &w);
    if (rc == 0) {
        memcpy(payload, w.msg.payload.ptr, w.msg.payload.len);
        payload[w.msg.payload.len] = '\0';
    }
    store_txn_end(t);
    return rc == 0;
}

/* A session open (a new connection) removes the previous connection's will record, whether it
 * resumes the session or not; the new connection's will is the WILL_SET after its open. */
static void open_replaces_the_will(void **state)
{
    (void)state;
    struct fix x;
    fix_start(&x, 1, 0, 0, NULL);
    struct store *st = x.s[0].store;
    char got[16];
    struct cluster_cmd first[] = {c_open("c1"), c_will("c1", "old"), c_sub("c1", "a/#")};
    uint64_t idx;
    apply_and_wait(&x, first, 3, &idx);
    assert_true(will_of(st, "c1", got));
    assert_string_equal(got, "old");
    struct cluster_cmd resumed[] = {c_open("c1")};
    apply_and_wait(&x, resumed, 1, &idx);
    assert_false(will_of(st, "c1", got));
    struct dump d;
    dump_state(st, &d);
    assert_string_equal(d.buf, "S c1 2 1;U c1 a/# 1;"); /* the rest of the session stays */
    struct cluster_cmd again[] = {c_open("c1"), c_will("c1", "new")};
    apply_and_wait(&x, again, 2, &idx);
    assert_true(will_of(st, "c1", got));
    assert_string_equal(got, "new");
    fix_stop(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_server_batch_in_order),
        cmocka_unit_test(open_replaces_the_will),
        cmocka_unit_test(three_servers_same_state),
        cmocka_unit_test(corrupt_entry_is_skipped),
        cmocka_unit_test(already_applied_indices_are_skipped),
        cmocka_unit_test(snapshot_and_restore),
        cmocka_unit_test(ring_from_committed_verdicts),
        cmocka_unit_test(map_full_grows),
        cmocka_unit_test(map_full_at_maximum_fails_safely),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
