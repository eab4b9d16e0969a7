/* storage/env.c and meta.c: open, transactions, last_applied, format version, map growth. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <lmdb.h>

#include "storage.h"
#include "testlib.h"

static struct store *open_store(const char *dir, size_t map, size_t max)
{
    struct store_options opt = {.map_size = map, .map_size_max = max};
    struct store *s = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/state", dir);
    assert_int_equal(store_open(path, &opt, &s), 0);
    return s;
}

/* A fresh store reports last_applied 0 and the current format version. */
static void fresh_store_is_empty(void **state)
{
    (void)state;
    const char *dir = test_mkdtemp();
    struct store *s = open_store(dir, 0, 0);
    struct store_txn *t;
    uint64_t la = 99;
    uint32_t v = 0;
    assert_int_equal(store_read_begin(s, &t), 0);
    assert_int_equal(store_meta_last_applied(t, &la), 0);
    assert_int_equal(la, 0);
    assert_int_equal(store_meta_format_version(t, &v), 0);
    assert_int_equal(v, STORE_FORMAT_VERSION);
    struct store_blob id;
    assert_int_equal(store_meta_cluster_id(t, &id), -ENOENT);
    store_txn_end(t);
    store_close(s);
    test_rmdir(dir);
}

/* last_applied is written in the same transaction as the state: an aborted transaction
 * leaves neither, a committed one both, and both survive a reopen. */
static void last_applied_shares_the_txn(void **state)
{
    (void)state;
    const char *dir = test_mkdtemp();
    struct store *s = open_store(dir, 0, 0);
    struct store_txn *t;
    struct store_retained r = {.msg = {.topic = {"a/b", 3}, .qos = 1}};

    assert_int_equal(store_write_begin(s, &t), 0);
    assert_int_equal(store_retain_put(t, &r), 0);
    assert_int_equal(store_meta_set_last_applied(t, 7), 0);
    store_txn_end(t); /* abort */

    assert_int_equal(store_read_begin(s, &t), 0);
    uint64_t la;
    struct store_retained got;
    assert_int_equal(store_meta_last_applied(t, &la), 0);
    assert_int_equal(la, 0);
    assert_int_equal(store_retain_get(t, "a/b", 3, &got), -ENOENT);
    store_txn_end(t);

    assert_int_equal(store_write_begin(s, &t), 0);
    struct store_txn *t2;
    assert_int_equal(store_write_begin(s, &t2), -EBUSY);
    assert_int_equal(store_retain_put(t, &r), 0);
    assert_int_equal(store_meta_set_last_applied(t, 8), 0);
    assert_int_equal(store_meta_set_cluster_id(t, "cid", 3), 0);
    assert_int_equal(store_write_commit(t), 0);
    store_close(s);

    s = open_store(dir, 0, 0);
    assert_int_equal(store_read_begin(s, &t), 0);
    assert_int_equal(store_meta_last_applied(t, &la), 0);
    assert_int_equal(la, 8);
    assert_int_equal(store_retain_get(t, "a/b", 3, &got), 0);
    struct store_blob id;
    assert_int_equal(store_meta_cluster_id(t, &id), 0);
    assert_int_equal(id.len, 3);
    assert_memory_equal(id.ptr, "cid", 3);
    store_txn_end(t);
    store_close(s);
    test_rmdir(dir);
}

/* A data directory whose meta says a newer format version is refused with STORE_ENEWER. */
static void newer_format_is_refused(void **state)
{
    (void)state;
    const char *dir = test_mkdtemp();
    struct store *s = open_store(dir, 0, 0);
    store_close(s);

    char path[512];
    snprintf(path, sizeof path, "%s/state", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, path, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    uint8_t v[4] = {0, 0, 0, STORE_FORMAT_VERSION + 1};
    MDB_val key = {14, "format_version"}, val = {4, v};
    assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    struct store *s2 = NULL;
    assert_int_equal(store_open(path, NULL, &s2), STORE_ENEWER);
    assert_null(s2);
    assert_string_equal(store_strerror(STORE_ENEWER),
                        "data directory written by a newer format version");
    test_rmdir(dir);
}

/* Fills a tiny map until a write fails with -ENOSPC, then grows it and retries the whole
 * transaction until it fits; at the maximum, growth itself fails with -ENOSPC. */
static void map_full_grows_and_retries(void **state)
{
    (void)state;
    const char *dir = test_mkdtemp();
    size_t max = 4u << 20;
    struct store *s = open_store(dir, 64u << 10, max);
    size_t start = store_map_size(s);
    static uint8_t payload[2000];
    int grows = 0, rc;
    for (;;) {
        struct store_txn *t;
        assert_int_equal(store_write_begin(s, &t), 0);
        rc = 0;
        for (int i = 0; i < 600 && rc == 0; i++) {
            char topic[32];
            snprintf(topic, sizeof topic, "t/%d", i);
            struct store_retained r = {
                .msg = {.topic = {topic, strlen(topic)}, .payload = {payload, sizeof payload}}};
            rc = store_retain_put(t, &r);
        }
        if (rc == 0) rc = store_meta_set_last_applied(t, 1);
        if (rc == 0) {
            rc = store_write_commit(t);
            if (rc == 0) break;
        } else {
            store_txn_end(t);
        }
        assert_int_equal(rc, -ENOSPC);
        assert_int_equal(store_grow(s), 0);
        grows++;
    }
    assert_true(grows > 0);
    assert_true(store_map_size(s) > start);

    /* Now exhaust the maximum. */
    for (;;) {
        struct store_txn *t;
        assert_int_equal(store_write_begin(s, &t), 0);
        rc = 0;
        for (int i = 0; i < 3000 && rc == 0; i++) {
            char topic[32];
            snprintf(topic, sizeof topic, "u/%d", i);
            struct store_retained r = {
                .msg = {.topic = {topic, strlen(topic)}, .payload = {payload, sizeof payload}}};
            rc = store_retain_put(t, &r);
        }
        if (rc == 0) {
            rc = store_write_commit(t);
        } else {
            store_txn_end(t);
        }
        assert_int_equal(rc, -ENOSPC);
        rc = store_grow(s);
        if (rc != 0) break;
    }
    assert_int_equal(rc, -ENOSPC);
    assert_true(store_map_size(s) <= max);

    /* Nothing of the failed transactions is visible; the first one is intact. */
    struct store_txn *t;
    struct store_retained got;
    assert_int_equal(store_read_begin(s, &t), 0);
    assert_int_equal(store_retain_get(t, "u/0", 3, &got), -ENOENT);
    assert_int_equal(store_retain_get(t, "t/599", 5, &got), 0);
    assert_int_equal(got.msg.payload.len, sizeof payload);
    store_txn_end(t);
    store_close(s);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fresh_store_is_empty),
        cmocka_unit_test(last_applied_shares_the_txn),
        cmocka_unit_test(newer_format_is_refused),
        cmocka_unit_test(map_full_grows_and_retries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
