/* The timer wheel: entries fire once, never early, at the first advance that reaches them,
 * whatever the steps of time; add, remove and reschedule from callbacks. Time is injected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testlib.h"
#include "wheel.h"

struct timer {
    struct wheel_entry entry;
    struct wheel *w;
    uint64_t due_ms;
    uint64_t fired_at; /* the wheel's time when it fired */
    int fired;
    uint64_t period_ms;   /* > 0: re-adds itself */
    struct timer *victim; /* removed by this timer's callback */
};

#define TIMER_OF(e) ((struct timer *)((char *)(e)-offsetof(struct timer, entry)))

static void timer_cb(struct wheel_entry *e)
{
    struct timer *t = TIMER_OF(e);
    t->fired++;
    t->fired_at = t->w->now_ms;
    assert_false(wheel_entry_is_scheduled(e));
    if (t->victim) wheel_remove(t->w, &t->victim->entry);
    if (t->period_ms) {
        t->due_ms = t->w->now_ms + t->period_ms;
        wheel_add(t->w, e, t->due_ms);
    }
}

static void timer_init(struct timer *t, struct wheel *w)
{
    memset(t, 0, sizeof *t);
    t->w = w;
    wheel_entry_init(&t->entry, timer_cb);
}

/* An entry fires at its instant, not a millisecond before. */
static void fires_at_due_time_not_before(void **state)
{
    struct wheel w;
    struct timer t;
    (void)state;
    wheel_init(&w, 1000);
    timer_init(&t, &w);
    wheel_add(&w, &t.entry, 1100);
    assert_int_equal(wheel_count(&w), 1);
    assert_int_equal(wheel_advance(&w, 1099), 0);
    assert_int_equal(t.fired, 0);
    assert_int_equal(wheel_advance(&w, 1100), 1);
    assert_int_equal(t.fired, 1);
    assert_int_equal(wheel_count(&w), 0);
    assert_int_equal(wheel_advance(&w, 5000), 0);
    assert_int_equal(t.fired, 1);
    wheel_close(&w);
}

/* An entry added for an instant not after the wheel's time fires at the next advance. */
static void past_instant_fires_at_next_advance(void **state)
{
    struct wheel w;
    struct timer a, b;
    (void)state;
    wheel_init(&w, 500);
    timer_init(&a, &w);
    timer_init(&b, &w);
    wheel_add(&w, &a.entry, 10);
    wheel_add(&w, &b.entry, 500);
    assert_int_equal(wheel_next_ms(&w), 500);
    assert_int_equal(wheel_advance(&w, 500), 2);
    assert_int_equal(a.fired + b.fired, 2);
    wheel_close(&w);
}

/* Removing or rescheduling an entry is reflected; removing twice is harmless. */
static void remove_and_reschedule(void **state)
{
    struct wheel w;
    struct timer a, b;
    (void)state;
    wheel_init(&w, 0);
    timer_init(&a, &w);
    timer_init(&b, &w);
    wheel_add(&w, &a.entry, 100);
    wheel_add(&w, &b.entry, 200);
    wheel_remove(&w, &a.entry);
    wheel_remove(&w, &a.entry);
    assert_false(wheel_entry_is_scheduled(&a.entry));
    wheel_add(&w, &b.entry, 50); /* earlier */
    assert_int_equal(wheel_count(&w), 1);
    assert_int_equal(wheel_advance(&w, 60), 1);
    assert_int_equal(b.fired, 1);
    assert_int_equal(b.fired_at, 60);
    wheel_add(&w, &b.entry, 100000); /* later, a higher level */
    wheel_add(&w, &b.entry, 70000);  /* moved again */
    assert_int_equal(wheel_advance(&w, 69999), 0);
    assert_int_equal(wheel_advance(&w, 70000), 1);
    assert_int_equal(a.fired, 0);
    assert_int_equal(b.fired, 2);
    wheel_close(&w);
}

/* Time never goes backwards: an earlier instant runs only what is due now. */
static void advance_backwards_does_not_rewind(void **state)
{
    struct wheel w;
    struct timer t;
    (void)state;
    wheel_init(&w, 10000);
    timer_init(&t, &w);
    wheel_add(&w, &t.entry, 10001);
    assert_int_equal(wheel_advance(&w, 5), 0);
    assert_int_equal(w.now_ms, 10000);
    assert_int_equal(wheel_advance(&w, 10001), 1);
    wheel_close(&w);
}

/* A callback may re-add its own entry (a periodic timer) and remove another entry due in the
 * same advance, whose callback then does not run. */
static void callbacks_may_modify_the_wheel(void **state)
{
    struct wheel w;
    struct timer p, a, b;
    (void)state;
    wheel_init(&w, 0);
    timer_init(&p, &w);
    timer_init(&a, &w);
    timer_init(&b, &w);
    p.period_ms = 10;
    p.due_ms = 10;
    wheel_add(&w, &p.entry, 10);
    assert_int_equal(wheel_advance(&w, 95), 1); /* re-added for 105 */
    assert_int_equal(p.fired, 1);
    assert_int_equal(wheel_advance(&w, 104), 0);
    assert_int_equal(wheel_advance(&w, 105), 1);
    assert_int_equal(p.fired, 2);
    assert_int_equal(wheel_count(&w), 1);
    /* a and b due together; whichever runs first removes the other */
    a.victim = &b;
    b.victim = &a;
    wheel_add(&w, &a.entry, 200);
    wheel_add(&w, &b.entry, 200);
    wheel_remove(&w, &p.entry);
    assert_int_equal(wheel_advance(&w, 300), 1);
    assert_int_equal(a.fired + b.fired, 1);
    assert_int_equal(wheel_count(&w), 0);
    wheel_close(&w);
}

/* wheel_next_ms is UINT64_MAX when empty, exact for a near entry, never after the earliest
 * due instant for far ones, and advancing to it makes progress. */
static void next_ms_is_a_lower_bound(void **state)
{
    struct wheel w;
    struct timer t;
    uint64_t now = 1000000, next;
    int steps = 0;
    (void)state;
    wheel_init(&w, now);
    timer_init(&t, &w);
    assert_true(wheel_next_ms(&w) == UINT64_MAX);
    wheel_add(&w, &t.entry, now + 3);
    assert_true(wheel_next_ms(&w) == now + 3);
    wheel_add(&w, &t.entry, now + 86400000); /* a day */
    while (!t.fired) {
        next = wheel_next_ms(&w);
        assert_true(next <= t.entry.due_ms || t.fired);
        assert_true(next > w.now_ms);
        wheel_advance(&w, next);
        assert_true(++steps < 100);
    }
    assert_int_equal(t.fired_at, now + 86400000);
    wheel_close(&w);
}

/* wheel_close unschedules everything without calling back. */
static void close_unschedules_all(void **state)
{
    struct wheel w;
    struct timer t[3];
    int i;
    (void)state;
    wheel_init(&w, 0);
    for (i = 0; i < 3; i++) {
        timer_init(&t[i], &w);
        wheel_add(&w, &t[i].entry, (uint64_t)i * 100000);
    }
    wheel_close(&w);
    for (i = 0; i < 3; i++) {
        assert_false(wheel_entry_is_scheduled(&t[i].entry));
        assert_int_equal(t[i].fired, 0);
    }
    assert_int_equal(wheel_count(&w), 0);
}

/* Instants anywhere in 64 bits, including the far end, are representable. */
static void extreme_instants(void **state)
{
    struct wheel w;
    struct timer a, b;
    (void)state;
    wheel_init(&w, 0);
    timer_init(&a, &w);
    timer_init(&b, &w);
    wheel_add(&w, &a.entry, UINT64_MAX);
    wheel_add(&w, &b.entry, (uint64_t)1 << 63);
    assert_int_equal(wheel_advance(&w, ((uint64_t)1 << 63) - 1), 0);
    assert_int_equal(wheel_advance(&w, (uint64_t)1 << 63), 1);
    assert_int_equal(b.fired, 1);
    assert_int_equal(wheel_advance(&w, UINT64_MAX - 1), 0);
    assert_int_equal(wheel_advance(&w, UINT64_MAX), 1);
    assert_int_equal(a.fired, 1);
    wheel_close(&w);
}

/* Randomised: many entries over spans from milliseconds to years, advanced in steps from 1 ms
 * to huge jumps, with random removals and reschedules. Every scheduled entry fires exactly
 * once, at the first advance whose time reaches its instant. */
static void random_schedules_fire_exactly_on_time(void **state)
{
    enum { N = 2000 };
    static struct timer t[N];
    struct wheel w;
    uint64_t rng = test_seed(), now = test_rand(&rng) % ((uint64_t)1 << 40);
    int i, round;
    (void)state;
    wheel_init(&w, now);
    for (i = 0; i < N; i++)
        timer_init(&t[i], &w);
    for (round = 0; round < 400; round++) {
        uint64_t step;
        size_t expect = 0, ran;
        /* schedule, reschedule or remove a few */
        for (i = 0; i < 20; i++) {
            struct timer *x = &t[test_rand(&rng) % N];
            unsigned span_bits = (unsigned)(test_rand(&rng) % 36);
            if (test_rand(&rng) % 5 == 0) {
                wheel_remove(&w, &x->entry);
                continue;
            }
            x->due_ms = now + test_rand(&rng) % ((uint64_t)1 << span_bits);
            x->fired = 0;
            wheel_add(&w, &x->entry, x->due_ms);
        }
        switch (test_rand(&rng) % 4) {
        case 0:
            step = 1;
            break;
        case 1:
            step = test_rand(&rng) % 64;
            break;
        case 2:
            step = test_rand(&rng) % 100000;
            break;
        default:
            step = test_rand(&rng) % ((uint64_t)1 << 34);
            break;
        }
        now += step;
        for (i = 0; i < N; i++)
            if (wheel_entry_is_scheduled(&t[i].entry) && t[i].due_ms <= now) expect++;
        ran = wheel_advance(&w, now);
        assert_int_equal(ran, expect);
        for (i = 0; i < N; i++) {
            if (wheel_entry_is_scheduled(&t[i].entry)) {
                assert_true(t[i].due_ms > now); /* not late */
                assert_int_equal(t[i].fired, 0);
            } else if (t[i].fired) {
                assert_int_equal(t[i].fired, 1);
                assert_true(t[i].due_ms <= t[i].fired_at); /* not early */
            }
        }
    }
    wheel_close(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fires_at_due_time_not_before),
        cmocka_unit_test(past_instant_fires_at_next_advance),
        cmocka_unit_test(remove_and_reschedule),
        cmocka_unit_test(advance_backwards_does_not_rewind),
        cmocka_unit_test(callbacks_may_modify_the_wheel),
        cmocka_unit_test(next_ms_is_a_lower_bound),
        cmocka_unit_test(close_unschedules_all),
        cmocka_unit_test(extreme_instants),
        cmocka_unit_test(random_schedules_fire_exactly_on_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
