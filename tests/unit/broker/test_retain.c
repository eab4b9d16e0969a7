/* The retained-message index: set, replace, clear, lookup, and matching filters against the
 * stored topics (wildcards, the $-rule, the parent level of '#'), compared at random with
 * mqtt_filter_matches(); references are released exactly once; allocation failures; clearing
 * all but one first level. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mem.h"
#include "proto.h"
#include "retain.h"
#include "testlib.h"

/* A fake refcounted message: counts its releases. */
struct fake {
    int released;
    char topic[64];
};

static void fake_release(void *msg)
{
    ((struct fake *)msg)->released++;
}

static int set(struct retain *r, const char *topic, struct fake *f)
{
    snprintf(f->topic, sizeof f->topic, "%s", topic);
    return retain_set(r, topic, strlen(topic), f);
}

/* The sorted, ';'-joined topics a filter matches, each checked against its message. */
struct found {
    char list[1024];
    int n;
};

static void found_cb(void *ctx, const char *topic, size_t topic_len, void *msg)
{
    struct found *fd = ctx;
    struct fake *f = msg;
    assert_int_equal(strlen(f->topic), topic_len);
    assert_memory_equal(f->topic, topic, topic_len); /* the rebuilt topic is the message's */
    fd->n++;
}

static int match_count(struct retain *r, const char *filter)
{
    struct found fd = {.n = 0};
    assert_int_equal(retain_match(r, filter, strlen(filter), found_cb, &fd), 0);
    return fd.n;
}

static void found_cb_count(void *ctx, const char *topic, size_t topic_len, void *msg)
{
    (void)topic;
    (void)msg;
    assert_int_equal(topic_len, 59999);
    ((struct found *)ctx)->n++;
}

static long baseline;

static int setup(void **state)
{
    (void)state;
    mem_fault_set(-1, 0);
    baseline = mem_live_blocks();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mem_fault_set(-1, 0);
    assert_int_equal(mem_live_blocks(), baseline);
    return 0;
}

/* Set, get, replace (the old message released), clear (released, count down). */
static void set_replace_clear(void **state)
{
    struct retain *r = retain_new(fake_release);
    struct fake a = {0}, b = {0};
    (void)state;
    assert_int_equal(set(r, "a/b", &a), 0);
    assert_int_equal(retain_count(r), 1);
    assert_ptr_equal(retain_get(r, "a/b", 3), &a);
    assert_null(retain_get(r, "a", 1));
    assert_null(retain_get(r, "a/b/c", 5));
    assert_int_equal(set(r, "a/b", &b), 0);
    assert_int_equal(a.released, 1);
    assert_int_equal(retain_count(r), 1);
    assert_ptr_equal(retain_get(r, "a/b", 3), &b);
    assert_int_equal(retain_clear(r, "a/b", 3), 0);
    assert_int_equal(b.released, 1);
    assert_int_equal(retain_count(r), 0);
    assert_int_equal(retain_clear(r, "a/b", 3), -ENOENT);
    assert_int_equal(retain_clear(r, "a", 1), -ENOENT);
    assert_null(retain_get(r, "a/b", 3));
    retain_free(r);
    assert_int_equal(a.released, 1);
    assert_int_equal(b.released, 1);
}

/* Invalid topics are refused and the message released (the reference was transferred). */
static void set_invalid_topic_releases(void **state)
{
    struct retain *r = retain_new(fake_release);
    struct fake a = {0};
    char big[70000];
    (void)state;
    assert_int_equal(retain_set(r, "", 0, &a), -EINVAL);
    assert_int_equal(retain_set(r, "a/+", 3, &a), -EINVAL);
    assert_int_equal(retain_set(r, "#", 1, &a), -EINVAL);
    memset(big, 'x', sizeof big);
    assert_int_equal(retain_set(r, big, sizeof big, &a), -EINVAL);
    assert_int_equal(a.released, 4);
    assert_int_equal(retain_set(r, "a", 1, NULL), -EINVAL);
    assert_int_equal(retain_count(r), 0);
    assert_int_equal(retain_match(r, "a/#/b", 5, found_cb, NULL), -EINVAL);
    assert_int_equal(retain_match(r, "", 0, found_cb, NULL), -EINVAL);
    assert_int_equal(retain_match(r, "$share/g/a", 10, found_cb, NULL), 0); /* a plain filter */
    retain_free(r);
}

/* Freeing the index releases every stored message once. */
static void free_releases_everything(void **state)
{
    static const char *topics[] = {"a", "a/b", "a/b/c", "b", "/", "//", "$SYS/x", "a/c"};
    struct fake f[8] = {0};
    struct retain *r = retain_new(fake_release);
    size_t i;
    (void)state;
    for (i = 0; i < 8; i++)
        assert_int_equal(set(r, topics[i], &f[i]), 0);
    assert_int_equal(retain_count(r), 8);
    retain_free(r);
    for (i = 0; i < 8; i++)
        assert_int_equal(f[i].released, 1);
    retain_free(NULL);
}

/* Matching tables: wildcards, empty levels, '#' including the parent level, the $-rule. */
static void filters_match_topics(void **state)
{
    static const char *topics[] = {"sport",
                                   "sport/tennis",
                                   "sport/tennis/player1",
                                   "sport/tennis/player1/ranking",
                                   "sport/golf",
                                   "/finance",
                                   "sport/",
                                   "$SYS/broker/uptime",
                                   "$SYS",
                                   "a/$x"};
    static const struct {
        const char *filter;
        int n;
    } rows[] = {
        {"#", 8},
        {"sport/#", 6},
        {"sport/tennis/#", 3},
        {"sport/tennis/player1/#", 2},
        {"sport/+", 3}, /* tennis, golf, "" */
        {"sport/tennis/+", 1},
        {"+", 1},
        {"+/+", 5}, /* sport/tennis, sport/golf, /finance, sport/, a/$x */
        {"/+", 1},
        {"+/finance", 1},
        {"$SYS/#", 2},
        {"$SYS/+/uptime", 1},
        {"+/broker/uptime", 0},
        {"sport/tennis/player1/ranking", 1},
        {"sport/tennis/player2", 0},
        {"a/+", 1},
        {"nothing/#", 0},
    };
    struct fake f[10] = {0};
    struct retain *r = retain_new(fake_release);
    size_t i;
    (void)state;
    for (i = 0; i < 10; i++)
        assert_int_equal(set(r, topics[i], &f[i]), 0);
    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int expect = 0, got;
        size_t j;
        for (j = 0; j < 10; j++)
            expect += mqtt_filter_matches(rows[i].filter, strlen(rows[i].filter), topics[j],
                                          strlen(topics[j]));
        got = match_count(r, rows[i].filter);
        if (got != expect)
            fail_msg("filter '%s': %d matches, reference %d", rows[i].filter, got, expect);
        if (got != rows[i].n)
            fail_msg("filter '%s': %d matches, table %d", rows[i].filter, got, rows[i].n);
    }
    retain_free(r);
}

/* Randomised: random topics set and cleared; every filter over the same alphabet matches
 * exactly the stored topics that mqtt_filter_matches() accepts; emptied branches are freed. */
static void random_topics_agree_with_reference(void **state)
{
    static const char *levels[] = {"a", "b", "", "$s", "+", "#"};
    enum { N = 40 };
    struct fake f[N];
    bool stored[N] = {false};
    uint64_t rng = test_seed();
    struct retain *r = retain_new(fake_release);
    long empty_blocks = mem_live_blocks();
    int round, i, l;
    (void)state;
    memset(f, 0, sizeof f);
    for (round = 0; round < 3000; round++) {
        char filter[32] = "";
        int expect = 0, nl;
        i = (int)(test_rand(&rng) % N);
        if (stored[i]) {
            assert_int_equal(retain_clear(r, f[i].topic, strlen(f[i].topic)), 0);
            stored[i] = false;
        } else {
            char topic[32] = "";
            nl = 1 + (int)(test_rand(&rng) % 4);
            for (l = 0; l < nl; l++) {
                if (l) strcat(topic, "/");
                strcat(topic, levels[test_rand(&rng) % 4]);
            }
            if (!topic[0] || retain_get(r, topic, strlen(topic)))
                continue; /* not a topic, or stored by another slot */
            assert_int_equal(set(r, topic, &f[i]), 0);
            stored[i] = true;
        }
        nl = 1 + (int)(test_rand(&rng) % 4);
        for (l = 0; l < nl; l++) {
            if (l) strcat(filter, "/");
            strcat(filter, levels[test_rand(&rng) % 6]);
        }
        if (mqtt_topic_filter_check(filter, strlen(filter), false) != MQTT_ERR_NONE) {
            assert_int_equal(retain_match(r, filter, strlen(filter), found_cb, NULL), -EINVAL);
            continue;
        }
        for (i = 0; i < N; i++)
            expect += stored[i] &&
                      mqtt_filter_matches(filter, strlen(filter), f[i].topic, strlen(f[i].topic));
        if (match_count(r, filter) != expect)
            fail_msg("filter '%s': %d, reference %d", filter, match_count(r, filter), expect);
    }
    for (i = 0; i < N; i++)
        if (stored[i]) assert_int_equal(retain_clear(r, f[i].topic, strlen(f[i].topic)), 0);
    assert_int_equal(retain_count(r), 0);
    assert_int_equal(mem_live_blocks(), empty_blocks); /* every node freed */
    retain_free(r);
}

/* A topic of 30,000 levels is stored, matched by '#' and freed without deep recursion. */
static void deep_topic(void **state)
{
    enum { LEVELS = 30000 };
    char *topic = malloc(2 * LEVELS);
    struct retain *r = retain_new(NULL);
    struct found fd = {.n = 0};
    int dummy;
    size_t i;
    (void)state;
    for (i = 0; i < LEVELS; i++) {
        topic[2 * i] = 'x';
        topic[2 * i + 1] = '/';
    }
    assert_int_equal(retain_set(r, topic, 2 * LEVELS - 1, &dummy), 0);
    assert_ptr_equal(retain_get(r, topic, 2 * LEVELS - 1), &dummy);
    assert_int_equal(retain_match(r, "#", 1, found_cb_count, &fd), 0);
    assert_int_equal(fd.n, 1);
    retain_free(r);
    free(topic);
}

/* Every allocation failure of retain_set releases the message and leaves the index as it
 * was; retain_new failures free what they got. */
static void allocation_failures(void **state)
{
    struct retain *r;
    struct fake a = {0}, b = {0};
    long delay;
    (void)state;
    for (delay = 0; delay < 3; delay++) {
        mem_fault_set(delay, 1);
        r = retain_new(fake_release);
        mem_fault_set(-1, 0);
        assert_null(r);
    }
    r = retain_new(fake_release);
    assert_int_equal(set(r, "a/b", &a), 0);
    for (delay = 0;; delay++) {
        long live = mem_live_blocks();
        unsigned long faults = mem_fault_count();
        int rc, released = b.released;
        mem_fault_set(delay, 1);
        rc = set(r, "a/c/d/e", &b);
        mem_fault_set(-1, 0);
        if (mem_fault_count() == faults) {
            assert_int_equal(rc, 0);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
        assert_int_equal(b.released, released + 1);
        assert_int_equal(mem_live_blocks(), live);
        assert_int_equal(retain_count(r), 1);
        assert_int_equal(match_count(r, "#"), 1);
    }
    assert_int_equal(retain_count(r), 2);
    retain_free(r);
}

/* Clearing everything but one first level: each other message released once, their nodes
 * freed (the teardown counts blocks), the kept subtree intact, the index usable after. */
static void clear_all_keeps_one_level(void **state)
{
    struct retain *r = retain_new(fake_release);
    struct fake f[8];
    const char *topics[] = {"a",      "a/b",       "a/b/c", "b/x/y/z", "$SYS/broker/uptime",
                            "$SYS/x", "$SYSTEM/y", "c"};
    (void)state;
    memset(f, 0, sizeof f);
    for (int i = 0; i < 8; i++)
        assert_int_equal(set(r, topics[i], &f[i]), 0);
    assert_int_equal(retain_clear_all(r, "$SYS", 4), 6);
    assert_int_equal(retain_count(r), 2);
    for (int i = 0; i < 8; i++)
        assert_int_equal(f[i].released, i == 4 || i == 5 ? 0 : 1);
    assert_ptr_equal(retain_get(r, "$SYS/x", 6), &f[5]);
    assert_null(retain_get(r, "a/b", 3));
    assert_int_equal(match_count(r, "$SYS/#"), 2);
    assert_int_equal(match_count(r, "#"), 0);
    struct fake g = {0};
    assert_int_equal(set(r, "a/b", &g), 0);
    assert_int_equal(match_count(r, "#"), 1);
    assert_int_equal(retain_clear_all(r, NULL, 0), 3);
    assert_int_equal(retain_count(r), 0);
    assert_int_equal(g.released, 1);
    assert_int_equal(f[4].released + f[5].released, 2);
    assert_int_equal(retain_clear_all(r, NULL, 0), 0);
    retain_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(set_replace_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(set_invalid_topic_releases, setup, teardown),
        cmocka_unit_test_setup_teardown(free_releases_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(filters_match_topics, setup, teardown),
        cmocka_unit_test_setup_teardown(random_topics_agree_with_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(deep_topic, setup, teardown),
        cmocka_unit_test_setup_teardown(allocation_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(clear_all_keeps_one_level, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
