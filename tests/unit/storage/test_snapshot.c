/* storage/snapshot.c: a compacted copy out, installed into another store, replaces its state;
 * garbage is refused and leaves the state as it was. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage.h"
#include "testlib.h"

static struct store *open_at(const char *dir, const char *name)
{
    char path[512];
    struct store *s;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(store_open(path, NULL, &s), 0);
    return s;
}

static void put_retained(struct store *s, const char *topic, uint64_t index)
{
    struct store_txn *t;
    struct store_retained r = {.msg = {.topic = {topic, strlen(topic)}, .qos = 1}};
    assert_int_equal(store_write_begin(s, &t), 0);
    assert_int_equal(store_retain_put(t, &r), 0);
    assert_int_equal(store_meta_set_last_applied(t, index), 0);
    assert_int_equal(store_write_commit(t), 0);
}

static bool has_retained(struct store *s, const char *topic)
{
    struct store_txn *t;
    struct store_retained r;
    assert_int_equal(store_read_begin(s, &t), 0);
    int rc = store_retain_get(t, topic, strlen(topic), &r);
    store_txn_end(t);
    return rc == 0;
}

static uint64_t last_applied(struct store *s)
{
    struct store_txn *t;
    uint64_t la;
    assert_int_equal(store_read_begin(s, &t), 0);
    assert_int_equal(store_meta_last_applied(t, &la), 0);
    store_txn_end(t);
    return la;
}

/* The copy carries the whole state including last_applied; install replaces everything. */
static void snapshot_roundtrip(void **state)
{
    (void)state;
    const char *dir = test_mkdtemp();
    struct store *a = open_at(dir, "a"), *b = open_at(dir, "b");
    put_retained(a, "from/a", 10);
    put_retained(b, "from/b", 3);

    char path[512];
    snprintf(path, sizeof path, "%s/snap", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    struct store_txn *w;
    assert_int_equal(store_write_begin(a, &w), 0);
    assert_int_equal(store_snapshot_write(a, fd), -EBUSY); /* not with a write txn open */
    store_txn_end(w);
    assert_int_equal(store_snapshot_write(a, fd), 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *data = malloc((size_t)st.st_size);
    assert_int_equal(pread(fd, data, (size_t)st.st_size, 0), st.st_size);
    close(fd);

    /* Garbage first: refused, b unchanged. */
    uint8_t junk[8192];
    memset(junk, 0xA5, sizeof junk);
    assert_int_equal(store_snapshot_install(b, junk, sizeof junk), STORE_ECORRUPT);
    assert_true(has_retained(b, "from/b"));
    assert_int_equal(last_applied(b), 3);

    assert_int_equal(store_snapshot_install(b, data, (size_t)st.st_size), 0);
    assert_false(has_retained(b, "from/b"));
    assert_true(has_retained(b, "from/a"));
    assert_int_equal(last_applied(b), 10);
    put_retained(b, "after", 11); /* still writable */
    store_close(b);
    b = open_at(dir, "b");
    assert_true(has_retained(b, "after"));
    assert_true(has_retained(b, "from/a"));
    free(data);
    store_close(a);
    store_close(b);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(snapshot_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
