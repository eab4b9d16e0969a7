/* Tests of broker/metrics.c: the Prometheus text exposition format (0.0.4). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"
#include "textbuf.h"

/* A family is HELP and TYPE lines followed by its samples; integer values are exact. */
static void counter_and_gauge(void **state)
{
    struct textbuf tb;
    (void)state;
    textbuf_init(&tb, 0);
    metrics_counter(&tb, "starling_messages_received_total", "PUBLISH packets received.",
                    18446744073709551615u);
    metrics_gauge(&tb, "starling_connections", "Open client connections.", 0);
    assert_int_equal(textbuf_error(&tb), 0);
    assert_string_equal(tb.data,
                        "# HELP starling_messages_received_total PUBLISH packets received.\n"
                        "# TYPE starling_messages_received_total counter\n"
                        "starling_messages_received_total 18446744073709551615\n"
                        "# HELP starling_connections Open client connections.\n"
                        "# TYPE starling_connections gauge\n"
                        "starling_connections 0\n");
    textbuf_free(&tb);
}

/* Label values escape backslash, quote and newline; HELP escapes backslash and newline only. */
static void labels_escaped(void **state)
{
    struct textbuf tb;
    struct metrics_label l[] = {{"reason", "a\\b\"c\nd"}, {"listener", "[::1]:1883"}};
    (void)state;
    textbuf_init(&tb, 0);
    metrics_family(&tb, "x_total", METRICS_COUNTER, "back\\slash \"q\"\nnext");
    metrics_sample(&tb, "x_total", l, 2, 7);
    metrics_sample(&tb, "x_total", l + 1, 1, 8);
    assert_int_equal(textbuf_error(&tb), 0);
    assert_string_equal(tb.data, "# HELP x_total back\\\\slash \"q\"\\nnext\n"
                                 "# TYPE x_total counter\n"
                                 "x_total{reason=\"a\\\\b\\\"c\\nd\",listener=\"[::1]:1883\"} 7\n"
                                 "x_total{listener=\"[::1]:1883\"} 8\n");
    textbuf_free(&tb);
}

/* Floating-point values: shortest exact form, and Prometheus' spellings of NaN and infinities. */
static void doubles(void **state)
{
    struct textbuf tb;
    (void)state;
    textbuf_init(&tb, 0);
    metrics_sample_double(&tb, "a", NULL, 0, 0.005);
    metrics_sample_double(&tb, "a", NULL, 0, 0.1 + 0.2);
    metrics_sample_double(&tb, "a", NULL, 0, NAN);
    metrics_sample_double(&tb, "a", NULL, 0, INFINITY);
    metrics_sample_double(&tb, "a", NULL, 0, -INFINITY);
    metrics_sample_double(&tb, "a", NULL, 0, 1e300);
    assert_string_equal(tb.data,
                        "a 0.005\na 0.30000000000000004\na NaN\na +Inf\na -Inf\na 1e+300\n");
    textbuf_free(&tb);
}

/* Buckets are cumulative, end with le="+Inf" equal to _count, and _sum adds the values;
 * a value equal to a bound falls in that bound's bucket. */
static void histogram(void **state)
{
    static const double bounds[] = {0.001, 0.01, 0.1};
    struct metrics_histogram h;
    struct textbuf tb;
    struct metrics_label l[] = {{"node", "1"}};
    (void)state;
    assert_int_equal(metrics_histogram_init(&h, bounds, 3), 0);
    metrics_histogram_observe(&h, 0.0005);
    metrics_histogram_observe(&h, 0.001);
    metrics_histogram_observe(&h, 0.05);
    metrics_histogram_observe(&h, 2);
    textbuf_init(&tb, 0);
    metrics_family(&tb, "starling_raft_apply_seconds", METRICS_HISTOGRAM, "Apply time.");
    metrics_histogram_write(&tb, "starling_raft_apply_seconds", l, 1, &h);
    assert_int_equal(textbuf_error(&tb), 0);
    assert_string_equal(tb.data, "# HELP starling_raft_apply_seconds Apply time.\n"
                                 "# TYPE starling_raft_apply_seconds histogram\n"
                                 "starling_raft_apply_seconds_bucket{node=\"1\",le=\"0.001\"} 2\n"
                                 "starling_raft_apply_seconds_bucket{node=\"1\",le=\"0.01\"} 2\n"
                                 "starling_raft_apply_seconds_bucket{node=\"1\",le=\"0.1\"} 3\n"
                                 "starling_raft_apply_seconds_bucket{node=\"1\",le=\"+Inf\"} 4\n"
                                 "starling_raft_apply_seconds_sum{node=\"1\"} 2.0515\n"
                                 "starling_raft_apply_seconds_count{node=\"1\"} 4\n");
    textbuf_free(&tb);
}

/* Bounds must be finite and strictly ascending, and fit. */
static void histogram_bad_bounds(void **state)
{
    struct metrics_histogram h;
    double many[METRICS_HISTOGRAM_MAX_BOUNDS + 1];
    (void)state;
    for (size_t i = 0; i < sizeof many / sizeof many[0]; i++)
        many[i] = (double)i;
    assert_int_equal(metrics_histogram_init(&h, (const double[]){1, 1}, 2), -EINVAL);
    assert_int_equal(metrics_histogram_init(&h, (const double[]){2, 1}, 2), -EINVAL);
    assert_int_equal(metrics_histogram_init(&h, (const double[]){1, INFINITY}, 2), -EINVAL);
    assert_int_equal(metrics_histogram_init(&h, many, METRICS_HISTOGRAM_MAX_BOUNDS + 1), -EINVAL);
    assert_int_equal(metrics_histogram_init(&h, many, METRICS_HISTOGRAM_MAX_BOUNDS), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counter_and_gauge),
        cmocka_unit_test(labels_escaped),
        cmocka_unit_test(doubles),
        cmocka_unit_test(histogram),
        cmocka_unit_test(histogram_bad_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
