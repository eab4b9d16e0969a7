/* The allocation wrapper: the fault schedule fails exactly the allocations asked for, and
 * live-block accounting follows malloc, calloc, realloc and free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mem.h"

/* delay successes, then repeat failures, then normal service again. */
static void fault_schedule_delay_and_repeat(void **state)
{
    void *p[6];
    unsigned long faults = mem_fault_count();
    int i;
    (void)state;
    mem_fault_set(2, 2);
    for (i = 0; i < 6; i++)
        p[i] = mem_malloc(8);
    assert_non_null(p[0]);
    assert_non_null(p[1]);
    assert_null(p[2]);
    assert_null(p[3]);
    assert_non_null(p[4]);
    assert_non_null(p[5]);
    assert_int_equal(mem_fault_count(), faults + 2);
    for (i = 0; i < 6; i++)
        mem_free(p[i]);
}

/* A negative repeat fails every allocation until the schedule is turned off; calloc and
 * realloc are subject to it, a realloc failure keeps the old block. */
static void fault_forever_until_off(void **state)
{
    char *p = mem_malloc(4), *q;
    (void)state;
    memcpy(p, "abc", 4);
    mem_fault_set(0, -1);
    assert_null(mem_malloc(1));
    assert_null(mem_calloc(2, 2));
    assert_null(mem_realloc(p, 100));
    assert_null(mem_strndup("x", 1));
    assert_string_equal(p, "abc");
    mem_fault_set(-1, 0);
    q = mem_realloc(p, 100);
    assert_non_null(q);
    assert_string_equal(q, "abc");
    mem_free(q);
}

/* Live blocks count what is allocated and not freed; realloc(NULL) allocates, realloc to 0
 * frees, free(NULL) is nothing. */
static void live_block_accounting(void **state)
{
    long base = mem_live_blocks();
    void *a, *b, *c;
    char *s;
    (void)state;
    mem_fault_set(-1, 0);
    a = mem_malloc(10);
    b = mem_calloc(3, 4);
    c = mem_realloc(NULL, 5);
    s = mem_strndup("hello world", 5);
    assert_string_equal(s, "hello");
    assert_int_equal(mem_live_blocks(), base + 4);
    c = mem_realloc(c, 50);
    assert_int_equal(mem_live_blocks(), base + 4);
    assert_null(mem_realloc(c, 0));
    mem_free(NULL);
    mem_free(a);
    mem_free(b);
    mem_free(s);
    assert_int_equal(mem_live_blocks(), base);
    a = mem_calloc(1, 1);
    assert_int_equal(((unsigned char *)a)[0], 0);
    mem_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fault_schedule_delay_and_repeat),
        cmocka_unit_test(fault_forever_until_off),
        cmocka_unit_test(live_block_accounting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
