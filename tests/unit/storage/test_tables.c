/* storage tables: put / get / iterate / delete for sessions, subscriptions, retained, queue,
 * wills and nodes, and the purge of one client. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "storage.h"
#include "testlib.h"

#define S(lit) ((struct store_str){lit, sizeof lit - 1})
#define B(lit) ((struct store_blob){(const uint8_t *)lit, sizeof lit - 1})

struct fixture {
    const char *dir;
    struct store *s;
    struct store_txn *w;
};

static int setup(void **state)
{
    static struct fixture f;
    f.dir = test_mkdtemp();
    char path[512];
    snprintf(path, sizeof path, "%s/state", f.dir);
    if (store_open(path, NULL, &f.s) != 0) return -1;
    if (store_write_begin(f.s, &f.w) != 0) return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_txn_end(f->w);
    store_close(f->s);
    test_rmdir(f->dir);
    return 0;
}

/* Session records round-trip every field; strings are NUL-terminated in the map. */
static void session_put_get_del(void **state)
{
    struct fixture *f = *state;
    struct store_session in = {.client_id = S("c1"),
                               .node_id = 3,
                               .created_at_ms = 1700000000123ull,
                               .disconnected_at_ms = 5,
                               .expiry_interval_s = 0xFFFFFFFFu,
                               .protocol_version = 5,
                               .flags = STORE_SESSION_PERSISTENT,
                               .connected = true};
    struct store_session out;
    assert_int_equal(store_session_put(f->w, &in), 0);
    assert_int_equal(store_session_get(f->w, "c1", 2, &out), 0);
    assert_string_equal(out.client_id.ptr, "c1");
    assert_int_equal(out.client_id.len, 2);
    assert_int_equal(out.node_id, 3);
    assert_int_equal(out.created_at_ms, 1700000000123ull);
    assert_int_equal(out.disconnected_at_ms, 5);
    assert_int_equal(out.expiry_interval_s, 0xFFFFFFFFu);
    assert_int_equal(out.protocol_version, 5);
    assert_int_equal(out.flags, STORE_SESSION_PERSISTENT);
    assert_true(out.connected);
    assert_int_equal(store_session_get(f->w, "c", 1, &out), -ENOENT);
    assert_int_equal(store_session_del(f->w, "c1", 2), 0);
    assert_int_equal(store_session_del(f->w, "c1", 2), -ENOENT);
    assert_int_equal(store_session_get(f->w, "c1", 2, &out), -ENOENT);
}

static int count_cb(void *ctx, const void *rec)
{
    (void)rec;
    (*(int *)ctx)++;
    return 0;
}

static int sub_collect(void *ctx, const struct store_subscription *s)
{
    char *out = ctx;
    char line[128];
    snprintf(line, sizeof line, "%s|%s|%u|%u;", s->client_id.ptr, s->filter.ptr, s->options,
             s->subscription_id);
    strcat(out, line);
    return 0;
}

/* Subscriptions: keyed client \0 filter, iterated per client in filter order, a client id
 * that is a prefix of another does not see the other's subscriptions. */
static void subscriptions_by_client(void **state)
{
    struct fixture *f = *state;
    struct store_subscription subs[] = {
        {.client_id = S("a"), .filter = S("x/#"), .options = 7, .subscription_id = 1},
        {.client_id = S("a"), .filter = S("$share/g/y")},
        {.client_id = S("ab"), .filter = S("z"), .options = 2},
        {.client_id = S("b"), .filter = S("+/+"), .options = 1, .subscription_id = 9},
    };
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(store_sub_put(f->w, &subs[i]), 0);
    subs[0].options = 1; /* replace */
    assert_int_equal(store_sub_put(f->w, &subs[0]), 0);

    char all[512] = "";
    assert_int_equal(store_sub_foreach(f->w, sub_collect, all), 0);
    assert_string_equal(all, "a|$share/g/y|0|0;a|x/#|1|1;ab|z|2|0;b|+/+|1|9;");
    char a[512] = "";
    assert_int_equal(store_sub_foreach_client(f->w, "a", 1, sub_collect, a), 0);
    assert_string_equal(a, "a|$share/g/y|0|0;a|x/#|1|1;");

    struct store_subscription got;
    assert_int_equal(store_sub_get(f->w, "b", 1, "+/+", 3, &got), 0);
    assert_int_equal(got.subscription_id, 9);
    assert_int_equal(store_sub_del(f->w, "b", 1, "+/+", 3), 0);
    assert_int_equal(store_sub_del(f->w, "b", 1, "+/+", 3), -ENOENT);
    size_t n = 0;
    assert_int_equal(store_sub_del_client(f->w, "a", 1, &n), 0);
    assert_int_equal(n, 2);
    int count = 0;
    assert_int_equal(store_sub_foreach(f->w, (store_subscription_cb)count_cb, &count), 0);
    assert_int_equal(count, 1);
}

/* A foreach stops at the first nonzero return of its callback and returns that value. */
static int stop_at_second(void *ctx, const struct store_retained *r)
{
    (void)r;
    return ++*(int *)ctx == 2 ? 42 : 0;
}

/* Retained messages: payload, properties, qos, expiry and publisher round-trip; replace,
 * delete, iterate. */
static void retained_put_get_del(void **state)
{
    struct fixture *f = *state;
    struct store_retained r = {
        .msg = {.topic = S("a/b"),
                .payload = B("hello"),
                .props = B("\x01\x01"),
                .expires_at_ms = 99,
                .qos = 2},
        .publisher_client_id = S("pub"),
    };
    assert_int_equal(store_retain_put(f->w, &r), 0);
    struct store_retained got;
    assert_int_equal(store_retain_get(f->w, "a/b", 3, &got), 0);
    assert_string_equal(got.msg.topic.ptr, "a/b");
    assert_int_equal(got.msg.payload.len, 5);
    assert_memory_equal(got.msg.payload.ptr, "hello", 5);
    assert_int_equal(got.msg.props.len, 2);
    assert_int_equal(got.msg.qos, 2);
    assert_true(got.msg.retain);
    assert_int_equal(got.msg.expires_at_ms, 99);
    assert_string_equal(got.publisher_client_id.ptr, "pub");

    r.msg.payload = (struct store_blob){NULL, 0};
    r.msg.topic = S("c");
    assert_int_equal(store_retain_put(f->w, &r), 0);
    assert_int_equal(store_retain_get(f->w, "c", 1, &got), 0);
    assert_int_equal(got.msg.payload.len, 0);
    int count = 0;
    assert_int_equal(store_retain_foreach(f->w, stop_at_second, &count), 42);
    assert_int_equal(store_retain_del(f->w, "a/b", 3), 0);
    assert_int_equal(store_retain_del(f->w, "a/b", 3), -ENOENT);
    count = 0;
    assert_int_equal(store_retain_foreach(f->w, (store_retained_cb)count_cb, &count), 0);
    assert_int_equal(count, 1);
}

static int queue_collect(void *ctx, const struct store_queued *q)
{
    char *out = ctx;
    char line[128];
    snprintf(line, sizeof line, "%s:%llu:%llu:%.*s;", q->client_id.ptr, (unsigned long long)q->seq,
             (unsigned long long)q->msg_id, (int)q->msg.payload.len,
             (const char *)q->msg.payload.ptr);
    strcat(out, line);
    return 0;
}

static void push(struct store_txn *t, const char *client, uint64_t msg_id, const char *payload,
                 uint64_t expect_seq)
{
    struct store_queued q = {
        .client_id = {client, strlen(client)},
        .msg_id = msg_id,
        .msg = {.topic = S("t"),
                .payload = {(const uint8_t *)payload, strlen(payload)},
                .qos = 1,
                .retain = true,
                .expires_at_ms = 5},
    };
    uint64_t seq = 0;
    assert_int_equal(store_queue_push(t, &q, &seq), 0);
    assert_int_equal(seq, expect_seq);
}

/* Queues: per-client increasing seq, order kept, ack by message id in any position, drop of
 * the oldest, counts and bytes, clients that share a prefix kept apart. */
static void queue_order_ack_drop(void **state)
{
    struct fixture *f = *state;
    push(f->w, "b", 100, "b1", 1);
    push(f->w, "a", 10, "x", 1);
    push(f->w, "a", 11, "yy", 2);
    push(f->w, "ab", 5, "o", 1);
    push(f->w, "a", 7, "zzz", 3);

    char a[512] = "";
    assert_int_equal(store_queue_foreach_client(f->w, "a", 1, queue_collect, a), 0);
    assert_string_equal(a, "a:1:10:x;a:2:11:yy;a:3:7:zzz;");
    size_t count, bytes;
    assert_int_equal(store_queue_stat(f->w, "a", 1, &count, &bytes), 0);
    assert_int_equal(count, 3);
    assert_int_equal(bytes, 6);

    assert_int_equal(store_queue_ack(f->w, "a", 1, 11), 0);
    assert_int_equal(store_queue_ack(f->w, "a", 1, 11), -ENOENT);
    assert_int_equal(store_queue_ack(f->w, "a", 1, 5), -ENOENT); /* "ab"'s id */
    push(f->w, "a", 12, "w", 4);                                 /* seq continues after the last */
    uint32_t dropped;
    assert_int_equal(store_queue_drop_oldest(f->w, "a", 1, 2, &dropped), 0);
    assert_int_equal(dropped, 2);
    a[0] = 0;
    assert_int_equal(store_queue_foreach_client(f->w, "a", 1, queue_collect, a), 0);
    assert_string_equal(a, "a:4:12:w;");
    assert_int_equal(store_queue_drop_oldest(f->w, "a", 1, 10, &dropped), 0);
    assert_int_equal(dropped, 1);

    char all[512] = "";
    assert_int_equal(store_queue_foreach(f->w, queue_collect, all), 0);
    assert_string_equal(all, "ab:1:5:o;b:1:100:b1;");

    struct store_queued got;
    (void)got;
    size_t n;
    assert_int_equal(store_queue_del_client(f->w, "b", 1, &n), 0);
    assert_int_equal(n, 1);
    all[0] = 0;
    assert_int_equal(store_queue_foreach(f->w, queue_collect, all), 0);
    assert_string_equal(all, "ab:1:5:o;");
}

/* Wills round-trip; a purge removes session, subscriptions, queue and will of one client. */
static void will_and_purge(void **state)
{
    struct fixture *f = *state;
    struct store_will w = {
        .client_id = S("c"),
        .msg = {.topic = S("will/t"), .payload = B("bye"), .qos = 1, .retain = true},
        .delay_interval_s = 30};
    assert_int_equal(store_will_put(f->w, &w), 0);
    struct store_will got;
    assert_int_equal(store_will_get(f->w, "c", 1, &got), 0);
    assert_string_equal(got.msg.topic.ptr, "will/t");
    assert_int_equal(got.delay_interval_s, 30);
    assert_true(got.msg.retain);
    assert_int_equal(got.msg.qos, 1);

    struct store_session s = {.client_id = S("c"), .protocol_version = 4};
    struct store_subscription sub = {S("c"), S("f"), 1, 0};
    struct store_subscription other = {S("d"), S("f"), 1, 0};
    assert_int_equal(store_session_put(f->w, &s), 0);
    assert_int_equal(store_sub_put(f->w, &sub), 0);
    assert_int_equal(store_sub_put(f->w, &other), 0);
    push(f->w, "c", 1, "m", 1);
    assert_int_equal(store_client_purge(f->w, "c", 1), 0);
    assert_int_equal(store_client_purge(f->w, "c", 1), 0); /* nothing left: still fine */
    struct store_session gs;
    assert_int_equal(store_session_get(f->w, "c", 1, &gs), -ENOENT);
    assert_int_equal(store_will_get(f->w, "c", 1, &got), -ENOENT);
    size_t count;
    assert_int_equal(store_queue_stat(f->w, "c", 1, &count, NULL), 0);
    assert_int_equal(count, 0);
    int n = 0;
    assert_int_equal(store_sub_foreach(f->w, (store_subscription_cb)count_cb, &n), 0);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(store_will_foreach(f->w, (store_will_cb)count_cb, &n), 0);
    assert_int_equal(n, 0);
}

static int node_collect(void *ctx, const struct store_node *n)
{
    char line[64];
    snprintf(line, sizeof line, "%llu:%d:%s;", (unsigned long long)n->node_id, n->up,
             n->address.ptr);
    strcat(ctx, line);
    return 0;
}

/* Nodes are iterated in id order (big-endian keys). */
static void nodes_in_id_order(void **state)
{
    struct fixture *f = *state;
    struct store_node a = {.node_id = 300, .address = S("10.0.0.3:7700"), .up = true};
    struct store_node b = {.node_id = 2, .address = S(""), .up = false};
    assert_int_equal(store_node_put(f->w, &a), 0);
    assert_int_equal(store_node_put(f->w, &b), 0);
    char out[128] = "";
    assert_int_equal(store_node_foreach(f->w, node_collect, out), 0);
    assert_string_equal(out, "2:0:;300:1:10.0.0.3:7700;");
}

/* Keys beyond LMDB's 511 bytes are refused before anything is written; lookups of such keys
 * simply find nothing; NUL bytes inside names are refused. */
static void long_and_bad_keys(void **state)
{
    struct fixture *f = *state;
    static char big[600];
    memset(big, 'x', sizeof big);
    struct store_retained r = {.msg = {.topic = {big, sizeof big}}};
    assert_int_equal(store_retain_put(f->w, &r), -ENAMETOOLONG);
    struct store_retained got;
    assert_int_equal(store_retain_get(f->w, big, sizeof big, &got), -ENOENT);
    struct store_subscription s = {{big, 300}, {big, 300}, 0, 0};
    assert_int_equal(store_sub_put(f->w, &s), -ENAMETOOLONG);
    s.client_id = (struct store_str){"a\0b", 3};
    s.filter = S("f");
    assert_int_equal(store_sub_put(f->w, &s), -EINVAL);
    struct store_queued q = {.client_id = {big, 505}};
    assert_int_equal(store_queue_push(f->w, &q, NULL), -ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(session_put_get_del, setup, teardown),
        cmocka_unit_test_setup_teardown(subscriptions_by_client, setup, teardown),
        cmocka_unit_test_setup_teardown(retained_put_get_del, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_order_ack_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(will_and_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(nodes_in_id_order, setup, teardown),
        cmocka_unit_test_setup_teardown(long_and_bad_keys, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
