/* The subscription index: matching tables (MQTT 3.1.1 section 4.7 examples, the $-rule),
 * filter validation, replace/remove, shared groups round-robin, per-owner merging of
 * overlapping subscriptions, allocation failures, a randomised comparison with
 * mqtt_filter_matches(), and the match cost over 100k subscriptions (printed, not asserted). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mem.h"
#include "proto.h"
#include "subs.h"
#include "testlib.h"

/* Owners are opaque: any distinct pointers. */
static char owners[64];
#define OWNER(i) ((void *)&owners[i])

static int add(struct subs *s, int owner, const char *filter, uint8_t qos, uint32_t id)
{
    return subs_add(s, OWNER(owner), filter, strlen(filter), SUBS_OPTIONS(qos, 0, 0, 0), id, NULL);
}

/* The set of owners (bit i = owner i) reached by subs_match, and the number of calls. */
struct seen {
    uint64_t owners;
    int calls;
    void *order[16];
};

static void seen_cb(void *ctx, const struct subs_info *sub)
{
    struct seen *sn = ctx;
    int i = (int)((char *)sub->owner - owners);
    if (sn->calls < 16) sn->order[sn->calls] = sub->owner;
    sn->calls++;
    sn->owners |= UINT64_C(1) << i;
}

static struct seen match(struct subs *s, const char *topic)
{
    struct seen sn = {0};
    subs_match(s, topic, strlen(topic), NULL, NULL, seen_cb, &sn);
    return sn;
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
    assert_int_equal(mem_live_blocks(), baseline); /* no leak through the wrapper */
    return 0;
}

/* The examples of MQTT 3.1.1 section 4.7 and the $-rule [MQTT-4.7.2-1]: each row subscribes
 * one owner to the filter and checks whether the topic reaches it. */
static void spec_examples_match(void **state)
{
    static const struct {
        const char *filter, *topic;
        bool matches;
    } rows[] = {
        {"sport/tennis/player1/#", "sport/tennis/player1", true},
        {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
        {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
        {"sport/#", "sport", true}, /* [MQTT-4.7.1-2] parent level */
        {"#", "sport/tennis", true},
        {"#", "/", true},
        {"sport/tennis/+", "sport/tennis/player1", true},
        {"sport/tennis/+", "sport/tennis/player2", true},
        {"sport/tennis/+", "sport/tennis/player1/ranking", false},
        {"sport/+", "sport", false},
        {"sport/+", "sport/", true},
        {"+/+", "/finance", true},
        {"/+", "/finance", true},
        {"+", "/finance", false},
        {"+/tennis/#", "sport/tennis", true},
        {"+/tennis/#", "sport/tennis/x/y", true},
        {"+/tennis/#", "sport/golf", false},
        {"ACCOUNTS", "Accounts", false}, /* case sensitive [MQTT-4.7.3-4] */
        {"a//b", "a//b", true},
        {"a/+/b", "a//b", true},
        {"/", "/", true},
        {"+/+", "/", true},
        {"+", "", false},
        {"#", "$SYS/monitor/Clients", false}, /* [MQTT-4.7.2-1] */
        {"+/monitor/Clients", "$SYS/monitor/Clients", false},
        {"$SYS/#", "$SYS/monitor/Clients", true},
        {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
        {"$SYS/#", "$SYS", true},
        {"+", "$SYS", false},
        {"a/#", "a/$x", true}, /* only the first level is special */
        {"a/+", "a/$x", true},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct subs *s = subs_new();
        struct seen sn;
        assert_non_null(s);
        assert_int_equal(add(s, 1, rows[i].filter, 0, 0), 0);
        sn = match(s, rows[i].topic);
        if (sn.calls != (rows[i].matches ? 1 : 0))
            fail_msg("filter '%s' topic '%s': %d calls", rows[i].filter, rows[i].topic, sn.calls);
        subs_free(s);
    }
}

/* Malformed filters are refused and change nothing [MQTT-4.7.1-2], [MQTT-4.7.1-3]. */
static void invalid_filters_are_refused(void **state)
{
    static const char *bad[] = {
        "a/#/b",         "a#",          "a/b+",          "#/",        "+a",
        "sport/tennis#", "$share/",     "$share/g",      "$share//a", "$share/g/",
        "$share/g+/a",   "$share/g#/a", "$share/g/a/#/b"};
    struct subs *s = subs_new();
    char big[70000];
    size_t i;
    (void)state;
    assert_int_equal(subs_add(s, OWNER(1), "", 0, 0, 0, NULL), -EINVAL);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (add(s, 1, bad[i], 0, 0) != -EINVAL) fail_msg("'%s' accepted", bad[i]);
    memset(big, 'a', sizeof big);
    assert_int_equal(subs_add(s, OWNER(1), big, sizeof big, 0, 0, NULL), -EINVAL);
    assert_int_equal(subs_count(s), 0);
    assert_int_equal(subs_remove(s, OWNER(1), "a/#/b", 5), -ENOENT);
    subs_free(s);
}

/* Subscribing again to the same filter replaces options and identifier, reports it, and
 * counts once; the same filter under $share is a different subscription. */
static void resubscribe_replaces(void **state)
{
    struct subs *s = subs_new();
    struct subs_info info;
    bool replaced = true;
    (void)state;
    assert_int_equal(subs_add(s, OWNER(1), "a/b", 3, SUBS_OPTIONS(1, 0, 0, 1), 7, &replaced), 0);
    assert_false(replaced);
    assert_int_equal(subs_add(s, OWNER(1), "a/b", 3, SUBS_OPTIONS(2, 1, 1, 2), 9, &replaced), 0);
    assert_true(replaced);
    assert_int_equal(subs_count(s), 1);
    assert_int_equal(subs_find(s, OWNER(1), "a/b", 3, &info), 0);
    assert_ptr_equal(info.owner, OWNER(1));
    assert_string_equal(info.filter, "a/b");
    assert_null(info.group);
    assert_int_equal(SUBS_OPT_QOS(info.options), 2);
    assert_true(SUBS_OPT_NO_LOCAL(info.options));
    assert_true(SUBS_OPT_RAP(info.options));
    assert_int_equal(SUBS_OPT_RETAIN_HANDLING(info.options), 2);
    assert_int_equal(info.sub_id, 9);
    assert_int_equal(subs_add(s, OWNER(1), "$share/g/a/b", 12, 0, 0, &replaced), 0);
    assert_false(replaced);
    assert_int_equal(subs_count(s), 2);
    assert_int_equal(subs_find(s, OWNER(1), "$share/g/a/b", 12, &info), 0);
    assert_int_equal(info.group_len, 1);
    assert_memory_equal(info.group, "g", 1);
    assert_int_equal(subs_find(s, OWNER(2), "a/b", 3, &info), -ENOENT);
    assert_int_equal(subs_find(s, OWNER(1), "a/c", 3, &info), -ENOENT);
    subs_free(s);
}

/* Removal: one filter, then everything of an owner; emptied nodes are freed. */
static void remove_and_remove_owner(void **state)
{
    struct subs *s = subs_new();
    long before = mem_live_blocks();
    (void)state;
    assert_int_equal(add(s, 1, "a/b/c", 0, 0), 0);
    assert_int_equal(add(s, 1, "a/+/c", 0, 0), 0);
    assert_int_equal(add(s, 1, "$share/g/a/#", 0, 0), 0);
    assert_int_equal(add(s, 2, "a/b/c", 0, 0), 0);
    assert_int_equal(subs_count(s), 4);
    assert_int_equal(subs_shared_count(s), 1);
    assert_int_equal(subs_owner_count(s, OWNER(1)), 3);
    assert_int_equal(subs_remove(s, OWNER(1), "a/b/c", 5), 0);
    assert_int_equal(subs_remove(s, OWNER(1), "a/b/c", 5), -ENOENT);
    assert_int_equal(subs_remove(s, OWNER(3), "a/b/c", 5), -ENOENT);
    assert_int_equal(subs_remove(s, OWNER(1), "$share/h/a/#", 12), -ENOENT);
    assert_int_equal(match(s, "a/b/c").owners, (1u << 1) | (1u << 2));
    assert_int_equal(subs_remove_owner(s, OWNER(1)), 2);
    assert_int_equal(subs_shared_count(s), 0);
    assert_int_equal(subs_remove_owner(s, OWNER(1)), 0);
    assert_int_equal(subs_owner_count(s, OWNER(1)), 0);
    assert_int_equal(match(s, "a/b/c").owners, 1u << 2);
    assert_int_equal(subs_remove(s, OWNER(2), "a/b/c", 5), 0);
    assert_int_equal(subs_count(s), 0);
    assert_int_equal(match(s, "a/b/c").calls, 0);
    assert_int_equal(mem_live_blocks(), before); /* every node, group and owner freed */
    subs_free(s);
}

static void collect_info(void *ctx, const struct subs_info *sub)
{
    char *out = ctx;
    strcat(out, sub->filter);
    strcat(out, ";");
}

/* An owner's subscriptions are listed in the order they were added. */
static void foreach_owner_in_order(void **state)
{
    struct subs *s = subs_new();
    char out[128] = "";
    (void)state;
    assert_int_equal(add(s, 1, "x/#", 0, 0), 0);
    assert_int_equal(add(s, 2, "y", 0, 0), 0);
    assert_int_equal(add(s, 1, "$share/g/y", 0, 0), 0);
    assert_int_equal(add(s, 1, "a", 0, 0), 0);
    subs_foreach_owner(s, OWNER(1), collect_info, out);
    assert_string_equal(out, "x/#;$share/g/y;a;");
    out[0] = '\0';
    subs_foreach_owner(s, OWNER(9), collect_info, out);
    assert_string_equal(out, "");
    subs_free(s);
}

static bool able_unless_3(void *ctx, void *owner)
{
    (void)ctx;
    return owner != OWNER(3);
}

static bool never_able(void *ctx, void *owner)
{
    (void)ctx;
    (void)owner;
    return false;
}

/* A shared group delivers each message to exactly one member, round-robin, independently of
 * other groups and of non-shared subscriptions to the same filter; members the caller reports
 * unable are skipped, and a group without an able member is skipped. */
static void shared_groups_round_robin(void **state)
{
    struct subs *s = subs_new();
    struct seen sn;
    int i, hits[8] = {0};
    (void)state;
    assert_int_equal(add(s, 1, "$share/g/a/+", 0, 0), 0);
    assert_int_equal(add(s, 2, "$share/g/a/+", 0, 0), 0);
    assert_int_equal(add(s, 3, "$share/g/a/+", 0, 0), 0);
    assert_int_equal(add(s, 4, "$share/h/a/+", 0, 0), 0);
    assert_int_equal(add(s, 5, "a/+", 0, 0), 0);
    for (i = 0; i < 6; i++) {
        sn = match(s, "a/x");
        assert_int_equal(sn.calls, 3); /* one of g, h's only member, the plain one */
        assert_true(sn.owners & (1u << 4));
        assert_true(sn.owners & (1u << 5));
        hits[(sn.owners & 0x2) ? 1 : (sn.owners & 0x4) ? 2 : 3]++;
        if (i > 0) /* strict rotation 1, 2, 3, 1, ... */
            assert_true(sn.owners & (1u << (1 + i % 3)));
    }
    assert_int_equal(hits[1], 2);
    assert_int_equal(hits[2], 2);
    assert_int_equal(hits[3], 2);
    /* owner 3 is offline: 1 and 2 alternate */
    for (i = 0; i < 4; i++) {
        sn.owners = 0;
        sn.calls = 0;
        subs_match(s, "a/x", 3, able_unless_3, NULL, seen_cb, &sn);
        assert_int_equal(sn.owners & (1u << 3), 0);
        assert_int_equal(sn.calls, 2 + 1);
    }
    sn.owners = 0;
    sn.calls = 0;
    subs_match(s, "a/x", 3, never_able, NULL, seen_cb, &sn);
    assert_int_equal(sn.calls, 1); /* only the non-shared one */
    /* removing the member the cursor points at keeps the rotation going */
    sn = match(s, "a/x");
    assert_int_equal(subs_remove(s, OWNER(2), "$share/g/a/+", 12), 0);
    assert_int_equal(subs_remove(s, OWNER(3), "$share/g/a/+", 12), 0);
    for (i = 0; i < 3; i++)
        assert_true(match(s, "a/x").owners & (1u << 1));
    assert_int_equal(subs_remove(s, OWNER(1), "$share/g/a/+", 12), 0);
    assert_int_equal(match(s, "a/x").calls, 2);
    subs_free(s);
}

static const struct subs_target *target_of(const struct subs_target *t, size_t n, int owner,
                                           bool shared)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (t[i].owner == OWNER(owner) && t[i].shared == shared) return &t[i];
    return NULL;
}

/* subs_group_pick takes the group by its "$share/<group>/<filter>" and shares the group's
 * round-robin cursor with matching; subs_able_none leaves groups out of a match and a collect
 * without moving that cursor; a shared target names its member's filter. */
static void group_pick_and_no_groups(void **state)
{
    struct subs *s = subs_new();
    struct subs_info info;
    const struct subs_target *t;
    struct seen sn = {0};
    size_t n;
    (void)state;
    assert_int_equal(add(s, 1, "$share/g/a/+", 1, 0), 0);
    assert_int_equal(add(s, 2, "$share/g/a/+", 1, 7), 0);
    assert_int_equal(add(s, 3, "$share/g/a/+", 1, 0), 0);
    assert_int_equal(add(s, 4, "a/+", 0, 0), 0);
    assert_int_equal(add(s, 5, "$share/h/a/#", 2, 0), 0);
    assert_int_equal(subs_group_pick(s, "$share/g/a/+", 12, NULL, NULL, &info), 0);
    assert_ptr_equal(info.owner, OWNER(1));
    assert_int_equal(subs_group_pick(s, "$share/g/a/+", 12, able_unless_3, NULL, &info), 0);
    assert_ptr_equal(info.owner, OWNER(2));
    assert_int_equal(info.sub_id, 7);
    assert_int_equal(SUBS_OPT_QOS(info.options), 1);
    /* 3 is not able: the rotation goes on with 1; then a match takes 2 */
    assert_int_equal(subs_group_pick(s, "$share/g/a/+", 12, able_unless_3, NULL, &info), 0);
    assert_ptr_equal(info.owner, OWNER(1));
    assert_true(match(s, "a/x").owners & (1u << 2));
    assert_int_equal(subs_group_pick(s, "$share/g/a/+", 12, never_able, NULL, &info), -ENOENT);
    assert_int_equal(subs_group_pick(s, "$share/g/a/#", 12, NULL, NULL, &info), -ENOENT);
    assert_int_equal(subs_group_pick(s, "$share/x/a/+", 12, NULL, NULL, &info), -ENOENT);
    assert_int_equal(subs_group_pick(s, "a/+", 3, NULL, NULL, &info), -ENOENT);
    /* no groups: only the non-shared subscriber, and the cursor stays on 3 */
    subs_match(s, "a/x", 3, subs_able_none, NULL, seen_cb, &sn);
    assert_int_equal(sn.calls, 1);
    assert_true(sn.owners == (1u << 4));
    assert_int_equal(subs_collect(s, "a/x", 3, NULL, subs_able_none, NULL, &t, &n), 0);
    assert_int_equal(n, 1);
    assert_ptr_equal(t[0].owner, OWNER(4));
    assert_null(t[0].filter);
    assert_int_equal(subs_collect(s, "a/x", 3, NULL, NULL, NULL, &t, &n), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        if (t[i].owner == OWNER(3)) {
            assert_true(t[i].shared);
            assert_int_equal(t[i].filter_len, 12);
            assert_memory_equal(t[i].filter, "$share/g/a/+", 12);
        } else if (t[i].owner == OWNER(5)) {
            assert_int_equal(t[i].filter_len, 12);
            assert_memory_equal(t[i].filter, "$share/h/a/#", 12);
        } else {
            assert_ptr_equal(t[i].owner, OWNER(4));
        }
    }
    subs_free(s);
}

static bool has_id(const struct subs_target *t, uint32_t id)
{
    uint32_t i;
    for (i = 0; i < t->sub_id_count; i++)
        if (t->sub_ids[i] == id) return true;
    return false;
}

/* Overlapping subscriptions of one owner give ONE target at the maximum QoS carrying every
 * subscription identifier (MQTT-3.3.5-1, MQTT 5 section 3.3.4); a shared group's pick is a
 * copy of its own (MQTT 5 section 4.8.2). */
static void collect_merges_overlaps_per_owner(void **state)
{
    struct subs *s = subs_new();
    const struct subs_target *t, *a, *b, *sh;
    size_t n;
    int round;
    (void)state;
    assert_int_equal(add(s, 1, "a/+", 1, 11), 0);
    assert_int_equal(add(s, 2, "a/b", 0, 0), 0);
    assert_int_equal(add(s, 1, "a/#", 2, 12), 0);
    assert_int_equal(add(s, 1, "a/b", 0, 0), 0);
    assert_int_equal(subs_add(s, OWNER(1), "+/b", 3, SUBS_OPTIONS(0, 0, 1, 0), 13, NULL), 0);
    assert_int_equal(add(s, 2, "#", 1, 21), 0);
    assert_int_equal(add(s, 1, "$share/g/a/b", 1, 14), 0);
    for (round = 0; round < 3; round++) { /* scratch reuse gives the same answer */
        assert_int_equal(subs_collect(s, "a/b", 3, NULL, NULL, NULL, &t, &n), 0);
        assert_int_equal(n, 3);
        a = target_of(t, n, 1, false);
        b = target_of(t, n, 2, false);
        sh = target_of(t, n, 1, true);
        assert_non_null(a);
        assert_non_null(b);
        assert_non_null(sh);
        assert_int_equal(a->qos, 2);
        assert_true(a->retain_as_published);
        assert_int_equal(a->sub_id_count, 3);
        assert_true(has_id(a, 11) && has_id(a, 12) && has_id(a, 13));
        assert_int_equal(b->qos, 1);
        assert_false(b->retain_as_published);
        assert_int_equal(b->sub_id_count, 1);
        assert_true(has_id(b, 21));
        assert_int_equal(sh->qos, 1);
        assert_int_equal(sh->sub_id_count, 1);
        assert_true(has_id(sh, 14));
    }
    assert_int_equal(subs_collect(s, "x/y", 3, NULL, NULL, NULL, &t, &n), 0);
    assert_int_equal(n, 1);
    assert_ptr_equal(t[0].owner, OWNER(2));
    assert_int_equal(subs_collect(s, "$x", 2, NULL, NULL, NULL, &t, &n), 0);
    assert_int_equal(n, 0);
    subs_free(s);
}

/* No Local leaves out the publisher's own No Local subscriptions, not its others
 * [MQTT-3.8.3-3]. */
static void collect_no_local(void **state)
{
    struct subs *s = subs_new();
    const struct subs_target *t;
    size_t n;
    (void)state;
    assert_int_equal(subs_add(s, OWNER(1), "a", 1, SUBS_OPTIONS(2, 1, 0, 0), 5, NULL), 0);
    assert_int_equal(subs_add(s, OWNER(2), "a", 1, SUBS_OPTIONS(1, 1, 0, 0), 0, NULL), 0);
    assert_int_equal(subs_collect(s, "a", 1, OWNER(1), NULL, NULL, &t, &n), 0);
    assert_int_equal(n, 1);
    assert_ptr_equal(t[0].owner, OWNER(2));
    assert_int_equal(add(s, 1, "+", 0, 6), 0);
    assert_int_equal(subs_collect(s, "a", 1, OWNER(1), NULL, NULL, &t, &n), 0);
    assert_int_equal(n, 2);
    assert_ptr_equal(target_of(t, n, 1, false)->owner, OWNER(1));
    assert_int_equal(target_of(t, n, 1, false)->qos, 0); /* only the "+" one counts */
    assert_int_equal(target_of(t, n, 1, false)->sub_id_count, 1);
    assert_int_equal(target_of(t, n, 1, false)->sub_ids[0], 6);
    subs_free(s);
}

/* The collected targets stay valid while the caller subscribes and unsubscribes (only the
 * next collect reuses the scratch area). */
static void collect_survives_add_and_remove(void **state)
{
    struct subs *s = subs_new();
    const struct subs_target *t;
    size_t n;
    int i;
    (void)state;
    assert_int_equal(add(s, 1, "a", 1, 3), 0);
    assert_int_equal(add(s, 2, "+", 2, 4), 0);
    assert_int_equal(subs_collect(s, "a", 1, NULL, NULL, NULL, &t, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(subs_remove_owner(s, OWNER(1)), 1);
    for (i = 3; i < 60; i++)
        assert_int_equal(add(s, i, "a/#", 0, (uint32_t)i), 0);
    assert_ptr_equal(target_of(t, n, 1, false)->owner, OWNER(1));
    assert_int_equal(target_of(t, n, 1, false)->sub_ids[0], 3);
    assert_int_equal(target_of(t, n, 2, false)->qos, 2);
    assert_int_equal(target_of(t, n, 2, false)->sub_ids[0], 4);
    subs_free(s);
}

/* Every allocation failure of subs_add leaves the index as it was (count, matches, memory);
 * retrying after the failure succeeds. */
static void add_failures_leave_index_unchanged(void **state)
{
    static const char *filters[] = {"a/b/c/d", "$share/grp/a/+/c", "x/#", "a/b/c/d"};
    struct subs *s = subs_new();
    size_t i;
    (void)state;
    assert_int_equal(add(s, 1, "a/b", 0, 0), 0);
    for (i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        long delay;
        int owner = 2 + (int)i % 2;
        for (delay = 0;; delay++) {
            size_t count = subs_count(s);
            long live = mem_live_blocks();
            unsigned long faults = mem_fault_count();
            uint64_t before = match(s, "a/b/c/d").owners;
            int rc;
            mem_fault_set(delay, 1);
            rc = add(s, owner, filters[i], 1, 0);
            mem_fault_set(-1, 0);
            if (mem_fault_count() == faults) {
                assert_int_equal(rc, 0);
                break;
            }
            assert_int_equal(rc, -ENOMEM);
            assert_int_equal(subs_count(s), count);
            assert_int_equal(mem_live_blocks(), live);
            assert_int_equal(match(s, "a/b/c/d").owners, before);
            assert_true(delay < 20);
        }
    }
    assert_int_equal(subs_count(s), 5);
    subs_free(s);
}

/* A failed subs_new frees what it got; a failed collect reports -ENOMEM and no targets. */
static void new_and_collect_failures(void **state)
{
    struct subs *s;
    const struct subs_target *t;
    size_t n;
    long delay;
    int i;
    (void)state;
    for (delay = 0; delay < 3; delay++) {
        mem_fault_set(delay, 1);
        s = subs_new();
        mem_fault_set(-1, 0);
        assert_null(s);
    }
    s = subs_new();
    for (i = 0; i < 40; i++)
        assert_int_equal(add(s, i, "t", 1, (uint32_t)i + 1), 0);
    mem_fault_set(0, -1);
    assert_int_equal(subs_collect(s, "t", 1, NULL, NULL, NULL, &t, &n), -ENOMEM);
    assert_int_equal(n, 0);
    mem_fault_set(-1, 0);
    assert_int_equal(subs_collect(s, "t", 1, NULL, NULL, NULL, &t, &n), 0);
    assert_int_equal(n, 40);
    subs_free(s);
}

/* Randomised: filters and topics over a small alphabet; subs_match reaches exactly the owners
 * whose filter mqtt_filter_matches() accepts, also after random removals. */
static void random_filters_agree_with_reference(void **state)
{
    static const char *levels[] = {"a", "b", "", "$s", "+", "#"};
    enum { OWNERS = 48 };
    char filters[OWNERS][32];
    bool present[OWNERS] = {false};
    uint64_t rng = test_seed();
    struct subs *s = subs_new();
    int round, i;
    (void)state;
    for (round = 0; round < 3000; round++) {
        char topic[32] = "";
        int nl = 1 + (int)(test_rand(&rng) % 4), l;
        uint64_t expect = 0;
        struct seen sn;
        /* change one owner's subscription */
        i = (int)(test_rand(&rng) % OWNERS);
        if (present[i]) {
            assert_int_equal(subs_remove(s, OWNER(i), filters[i], strlen(filters[i])), 0);
            present[i] = false;
        } else {
            int fl = 1 + (int)(test_rand(&rng) % 4);
            filters[i][0] = '\0';
            for (l = 0; l < fl; l++) {
                const char *lv = levels[test_rand(&rng) % 6];
                if (l) strcat(filters[i], "/");
                strcat(filters[i], lv);
            }
            if (mqtt_topic_filter_check(filters[i], strlen(filters[i]), false) == MQTT_ERR_NONE) {
                assert_int_equal(add(s, i, filters[i], 0, 0), 0);
                present[i] = true;
            } else {
                assert_int_equal(add(s, i, filters[i], 0, 0), -EINVAL);
            }
        }
        for (l = 0; l < nl; l++) {
            if (l) strcat(topic, "/");
            strcat(topic, levels[test_rand(&rng) % 4]);
        }
        if (!topic[0]) /* not a topic name */
            continue;
        for (i = 0; i < OWNERS; i++)
            if (present[i] &&
                mqtt_filter_matches(filters[i], strlen(filters[i]), topic, strlen(topic)))
                expect |= UINT64_C(1) << i;
        sn = match(s, topic);
        if (sn.owners != expect || sn.calls != __builtin_popcountll(expect))
            fail_msg("topic '%s': got %llx expected %llx", topic, (unsigned long long)sn.owners,
                     (unsigned long long)expect);
    }
    subs_free(s);
}

static void count_cb(void *ctx, const struct subs_info *sub)
{
    (void)sub;
    (*(size_t *)ctx)++;
}

static double elapsed_ns(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e9 + (double)(b->tv_nsec - a->tv_nsec);
}

/* The cost of matching one topic in an index of 100,000 subscriptions: 90,000 devices with an
 * exact subscription each, 5,000 "+" dashboards, 4,000 '#' subtrees, 1,000 others. Printed
 * as ns/match (not asserted: machines differ); the match counts are checked. */
static void match_cost_100k(void **state)
{
    enum { DEVICES = 90000, ROUNDS = 200000 };
    struct subs *s = subs_new();
    char f[64];
    static char *own; /* 100k distinct owners */
    struct timespec t0, t1;
    size_t i, hits = 0, n;
    const struct subs_target *t;
    uint64_t rng = test_seed();
    (void)state;
    own = malloc(100000);
    for (i = 0; i < DEVICES; i++) {
        snprintf(f, sizeof f, "site/%zu/dev/%zu/temp", i % 100, i);
        assert_int_equal(subs_add(s, own + i, f, strlen(f), 1, 0, NULL), 0);
    }
    for (i = 0; i < 5000; i++) {
        snprintf(f, sizeof f, "site/%zu/dev/+/temp", i % 100);
        assert_int_equal(subs_add(s, own + DEVICES + i, f, strlen(f), 0, 0, NULL), 0);
    }
    for (i = 0; i < 4000; i++) {
        snprintf(f, sizeof f, "site/%zu/dev/%zu/#", i % 100, i * 7);
        assert_int_equal(subs_add(s, own + DEVICES + 5000 + i, f, strlen(f), 0, 0, NULL), 0);
    }
    for (i = 0; i < 1000; i++) {
        snprintf(f, sizeof f, "other/%zu/+/x", i);
        assert_int_equal(subs_add(s, own + DEVICES + 9000 + i, f, strlen(f), 0, 0, NULL), 0);
    }
    assert_int_equal(subs_count(s), 100000);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < ROUNDS; i++) {
        size_t d = test_rand(&rng) % DEVICES;
        int len = snprintf(f, sizeof f, "site/%zu/dev/%zu/temp", d % 100, d);
        subs_match(s, f, (size_t)len, NULL, NULL, count_cb, &hits);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* each device topic: its own sub + 50 dashboards of its site + maybe one '#' */
    assert_true(hits >= (size_t)ROUNDS * 51);
    printf("subs_match: %.0f ns/match over %zu subscriptions (%.1f matches per topic)\n",
           elapsed_ns(&t0, &t1) / ROUNDS, subs_count(s), (double)hits / ROUNDS);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < ROUNDS; i++) {
        size_t d = test_rand(&rng) % DEVICES;
        int len = snprintf(f, sizeof f, "site/%zu/dev/%zu/temp", d % 100, d);
        assert_int_equal(subs_collect(s, f, (size_t)len, NULL, NULL, NULL, &t, &n), 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("subs_collect: %.0f ns/collect (merged targets, same index)\n",
           elapsed_ns(&t0, &t1) / ROUNDS);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < ROUNDS; i++) {
        size_t d = test_rand(&rng) % 1000;
        int len = snprintf(f, sizeof f, "other/%zu/q/x", d);
        subs_match(s, f, (size_t)len, NULL, NULL, count_cb, &hits);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("subs_match: %.0f ns/match for a topic with one match\n", elapsed_ns(&t0, &t1) / ROUNDS);
    subs_free(s);
    free(own);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(spec_examples_match, setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_filters_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(resubscribe_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(remove_and_remove_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(foreach_owner_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(shared_groups_round_robin, setup, teardown),
        cmocka_unit_test_setup_teardown(group_pick_and_no_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(collect_merges_overlaps_per_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(collect_no_local, setup, teardown),
        cmocka_unit_test_setup_teardown(collect_survives_add_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(add_failures_leave_index_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(new_and_collect_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(random_filters_agree_with_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(match_cost_100k, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
