/* Topic aliases: inbound limits and lookups, outbound assignment up to the client's maximum
 * with least-recently-used reassignment, checked against a model of the client's table;
 * allocation failures. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "alias.h"
#include "mem.h"
#include "testlib.h"

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

/* Inbound: aliases 1..max map to the last topic set; 0 and above max are refused
 * [MQTT-3.3.2-8], [MQTT-3.3.2-9]; an alias never set is unknown. */
static void inbound_set_get_limits(void **state)
{
    struct alias_in a;
    const char *t;
    size_t len;
    char longer[300];
    (void)state;
    alias_in_init(&a, 3);
    assert_int_equal(mem_live_blocks(), baseline); /* nothing until used */
    assert_int_equal(alias_in_get(&a, 1, &t, &len), -ENOENT);
    assert_int_equal(alias_in_set(&a, 0, "x", 1), -EINVAL);
    assert_int_equal(alias_in_set(&a, 4, "x", 1), -EINVAL);
    assert_int_equal(alias_in_set(&a, 1, "", 0), -EINVAL);
    assert_int_equal(alias_in_get(&a, 0, &t, &len), -EINVAL);
    assert_int_equal(alias_in_get(&a, 4, &t, &len), -EINVAL);
    assert_int_equal(alias_in_set(&a, 3, "a/b", 3), 0);
    assert_int_equal(alias_in_get(&a, 3, &t, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(t, "a/b", 3);
    assert_int_equal(alias_in_get(&a, 2, &t, &len), -ENOENT);
    memset(longer, 'z', sizeof longer);
    assert_int_equal(alias_in_set(&a, 3, longer, sizeof longer), 0); /* remapped */
    assert_int_equal(alias_in_get(&a, 3, &t, &len), 0);
    assert_int_equal(len, sizeof longer);
    assert_int_equal(alias_in_set(&a, 3, "c", 1), 0);
    assert_int_equal(alias_in_get(&a, 3, &t, &len), 0);
    assert_int_equal(len, 1);
    assert_memory_equal(t, "c", 1);
    alias_in_close(&a);
}

/* A maximum of 0 refuses every alias and allocates nothing. */
static void zero_maximum(void **state)
{
    struct alias_in in;
    struct alias_out out;
    uint16_t alias = 9;
    bool known = true;
    const char *t;
    size_t len;
    (void)state;
    alias_in_init(&in, 0);
    assert_int_equal(alias_in_set(&in, 1, "x", 1), -EINVAL);
    assert_int_equal(alias_in_get(&in, 1, &t, &len), -EINVAL);
    alias_out_init(&out, 0);
    assert_int_equal(alias_out_get(&out, "x", 1, &alias, &known), 0);
    assert_int_equal(alias, 0);
    assert_false(known);
    assert_int_equal(mem_live_blocks(), baseline);
    alias_in_close(&in);
    alias_out_close(&out);
}

static uint16_t out_get(struct alias_out *a, const char *topic, bool *known)
{
    uint16_t alias;
    assert_int_equal(alias_out_get(a, topic, strlen(topic), &alias, known), 0);
    return alias;
}

/* Outbound: new topics take aliases 1..max, a known topic reuses its alias, and when the
 * table is full the least recently used alias is reassigned. */
static void outbound_assign_and_lru(void **state)
{
    struct alias_out a;
    bool known;
    (void)state;
    alias_out_init(&a, 3);
    assert_int_equal(out_get(&a, "A", &known), 1);
    assert_false(known);
    assert_int_equal(out_get(&a, "B", &known), 2);
    assert_false(known);
    assert_int_equal(out_get(&a, "C", &known), 3);
    assert_false(known);
    assert_int_equal(out_get(&a, "A", &known), 1);
    assert_true(known);
    assert_int_equal(out_get(&a, "D", &known), 2); /* B was least recently used */
    assert_false(known);
    assert_int_equal(out_get(&a, "B", &known), 3); /* then C */
    assert_false(known);
    assert_int_equal(out_get(&a, "D", &known), 2);
    assert_true(known);
    /* forgetting: the alias's PUBLISH was never sent */
    alias_out_forget(&a, 2);
    alias_out_forget(&a, 2);
    alias_out_forget(&a, 0);
    alias_out_forget(&a, 99);
    assert_int_equal(out_get(&a, "E", &known), 2); /* the forgotten alias goes first */
    assert_false(known);
    assert_int_equal(out_get(&a, "D", &known), 1); /* A is now least recently used */
    assert_false(known);
    alias_out_close(&a);
}

/* Randomised: a model of the client's alias table stays consistent with every answer: a
 * "known" alias maps to the topic in the client's table, a new one sets it. */
static void outbound_matches_client_model(void **state)
{
    enum { MAX = 8, TOPICS = 20 };
    struct alias_out a;
    char client[MAX + 1][8];
    uint64_t rng = test_seed();
    int i;
    (void)state;
    memset(client, 0, sizeof client);
    alias_out_init(&a, MAX);
    for (i = 0; i < 5000; i++) {
        char topic[8];
        bool known;
        uint16_t alias;
        snprintf(topic, sizeof topic, "t%d", (int)(test_rand(&rng) % TOPICS));
        alias = out_get(&a, topic, &known);
        assert_true(alias >= 1 && alias <= MAX);
        if (known) {
            assert_string_equal(client[alias], topic);
        } else if (test_rand(&rng) % 10 == 0) {
            alias_out_forget(&a, alias); /* not sent: the client's table is unchanged */
        } else {
            snprintf(client[alias], sizeof client[alias], "%s", topic);
        }
    }
    alias_out_close(&a);
}

/* Allocation failures: inbound keeps the old mapping; outbound answers "no alias" and stays
 * consistent. */
static void allocation_failures(void **state)
{
    struct alias_in in;
    struct alias_out out;
    const char *t;
    size_t len;
    uint16_t alias;
    bool known;
    char longer[100];
    (void)state;
    alias_in_init(&in, 2);
    mem_fault_set(0, 1);
    assert_int_equal(alias_in_set(&in, 1, "a", 1), -ENOMEM); /* the table */
    mem_fault_set(1, 1);
    assert_int_equal(alias_in_set(&in, 1, "a", 1), -ENOMEM); /* the topic */
    mem_fault_set(-1, 0);
    assert_int_equal(alias_in_get(&in, 1, &t, &len), -ENOENT);
    assert_int_equal(alias_in_set(&in, 1, "a", 1), 0);
    memset(longer, 'l', sizeof longer);
    mem_fault_set(0, 1);
    assert_int_equal(alias_in_set(&in, 1, longer, sizeof longer), -ENOMEM);
    mem_fault_set(-1, 0);
    assert_int_equal(alias_in_get(&in, 1, &t, &len), 0);
    assert_int_equal(len, 1);
    alias_in_close(&in);

    alias_out_init(&out, 2);
    mem_fault_set(0, 1);
    assert_int_equal(alias_out_get(&out, "a", 1, &alias, &known), -ENOMEM); /* the table */
    assert_int_equal(alias, 0);
    mem_fault_set(1, 1);
    assert_int_equal(alias_out_get(&out, "a", 1, &alias, &known), -ENOMEM); /* the copy */
    mem_fault_set(-1, 0);
    assert_int_equal(out_get(&out, "a", &known), 1);
    assert_false(known);
    mem_fault_set(0, 1);
    assert_int_equal(alias_out_get(&out, "b", 1, &alias, &known), -ENOMEM);
    mem_fault_set(-1, 0);
    assert_int_equal(out_get(&out, "a", &known), 1);
    assert_true(known);
    assert_int_equal(out_get(&out, "b", &known), 2);
    alias_out_close(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(inbound_set_get_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(zero_maximum, setup, teardown),
        cmocka_unit_test_setup_teardown(outbound_assign_and_lru, setup, teardown),
        cmocka_unit_test_setup_teardown(outbound_matches_client_model, setup, teardown),
        cmocka_unit_test_setup_teardown(allocation_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
