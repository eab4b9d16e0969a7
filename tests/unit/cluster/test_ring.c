/* cluster/ring.c: rendezvous ownership is deterministic (independent of member order and of
 * the cache), balanced, and moves only about 1/N of the topics when a member joins or
 * leaves, all of them to the joining member or away from the leaving one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ring.h"
#include "testlib.h"

#define TOPICS 20000

static char topics[TOPICS][48];
static size_t lens[TOPICS];
static uint64_t before[TOPICS];

static void make_topics(void)
{
    uint64_t st = test_seed();
    for (int i = 0; i < TOPICS; i++) {
        int n = snprintf(topics[i], sizeof topics[i], "site/%llu/dev/%d/temp",
                         (unsigned long long)(test_rand(&st) % 1000), i);
        lens[i] = (size_t)n;
    }
}

static void empty_and_single(void **state)
{
    (void)state;
    struct ring r;
    ring_init(&r);
    assert_int_equal(ring_owner(&r, "a", 1), 0);
    uint64_t one = 7;
    assert_int_equal(ring_set_members(&r, &one, 1), 1);
    assert_int_equal(ring_set_members(&r, &one, 1), 0); /* unchanged */
    assert_int_equal(ring_owner(&r, "a", 1), 7);
    assert_int_equal(ring_owner(&r, "", 0), 7);
    ring_close(&r);
}

static void deterministic(void **state)
{
    (void)state;
    make_topics();
    struct ring a, b;
    ring_init(&a);
    ring_init(&b);
    uint64_t m1[] = {1, 2, 3, 4, 5}, m2[] = {5, 3, 1, 4, 2, 3};
    assert_int_equal(ring_set_members(&a, m1, 5), 1);
    assert_int_equal(ring_set_members(&b, m2, 6), 1);
    assert_int_equal(b.n, 5); /* duplicates ignored */
    unsigned count[6] = {0};
    for (int i = 0; i < TOPICS; i++) {
        uint64_t o = ring_owner(&a, topics[i], lens[i]);
        assert_true(o >= 1 && o <= 5);
        assert_int_equal(ring_owner(&b, topics[i], lens[i]), o);
        assert_int_equal(ring_owner_uncached(&a, topics[i], lens[i]), o);
        assert_int_equal(ring_owner(&a, topics[i], lens[i]), o); /* cached */
        count[o]++;
    }
    for (int m = 1; m <= 5; m++) {
        assert_true(count[m] > TOPICS / 5 * 8 / 10);
        assert_true(count[m] < TOPICS / 5 * 12 / 10);
    }
    assert_true(a.hits > 0);
    ring_close(&a);
    ring_close(&b);
}

static void join_and_leave_move_one_nth(void **state)
{
    (void)state;
    make_topics();
    struct ring r;
    ring_init(&r);
    uint64_t m[] = {1, 2, 3, 4, 5, 6};
    ring_set_members(&r, m, 5);
    for (int i = 0; i < TOPICS; i++)
        before[i] = ring_owner(&r, topics[i], lens[i]);
    /* 6 joins: only topics that 6 now wins move. */
    assert_int_equal(ring_set_members(&r, m, 6), 1);
    unsigned moved = 0;
    for (int i = 0; i < TOPICS; i++) {
        uint64_t o = ring_owner(&r, topics[i], lens[i]); /* the cache was invalidated */
        assert_int_equal(o, ring_owner_uncached(&r, topics[i], lens[i]));
        if (o != before[i]) {
            assert_int_equal(o, 6);
            moved++;
        }
    }
    printf("join of a 6th member moved %u of %d topics (1/6 = %d)\n", moved, TOPICS, TOPICS / 6);
    assert_true(moved > TOPICS / 6 * 8 / 10 && moved < TOPICS / 6 * 12 / 10);
    /* 3 leaves: only its topics move, to the others. */
    for (int i = 0; i < TOPICS; i++)
        before[i] = ring_owner(&r, topics[i], lens[i]);
    uint64_t without3[] = {1, 2, 4, 5, 6};
    assert_int_equal(ring_set_members(&r, without3, 5), 1);
    moved = 0;
    for (int i = 0; i < TOPICS; i++) {
        uint64_t o = ring_owner(&r, topics[i], lens[i]);
        assert_true(o != 3);
        if (before[i] != 3)
            assert_int_equal(o, before[i]);
        else
            moved++;
    }
    assert_true(moved > TOPICS / 6 * 8 / 10 && moved < TOPICS / 6 * 12 / 10);
    ring_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_and_single),
        cmocka_unit_test(deterministic),
        cmocka_unit_test(join_and_leave_move_one_nth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
