/* metrics: Prometheus text exposition format 0.0.4 (`text/plain; version=0.0.4`).
 *
 * A family is opened with its HELP and TYPE lines, then its samples follow:
 *
 *     metrics_family(out, "starling_connections", METRICS_GAUGE, "Open client connections.");
 *     struct metrics_label l[] = {{"listener", "127.0.0.1:1883"}};
 *     metrics_sample(out, "starling_connections", l, 1, 12);
 *
 * Names must match [a-zA-Z_:][a-zA-Z0-9_:]* and label names [a-zA-Z_][a-zA-Z0-9_]*
 * (not starting with "__"): a bad one is a bug, asserted in debug builds and turned into
 * textbuf error -EINVAL otherwise. Label values and HELP texts may hold anything; they are
 * escaped (\\, \", \n). Each family name must appear once per exposition (the caller's duty).
 * Errors collect in the textbuf (textbuf_error). */
#ifndef STARLING_BROKER_METRICS_H
#define STARLING_BROKER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "textbuf.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum metrics_type {
    METRICS_COUNTER,
    METRICS_GAUGE,
    METRICS_HISTOGRAM,
};

struct metrics_label {
    const char *name;
    const char *value;
};

/* `# HELP name help` and `# TYPE name type`. */
void metrics_family(struct textbuf *out, const char *name, enum metrics_type type,
                    const char *help);
/* `name{labels} value` with an integer value. */
void metrics_sample(struct textbuf *out, const char *name, const struct metrics_label *labels,
                    size_t nlabels, uint64_t value);
/* The same with a floating-point value (NaN, +Inf and -Inf written as Prometheus spells
 * them). */
void metrics_sample_double(struct textbuf *out, const char *name,
                           const struct metrics_label *labels, size_t nlabels, double value);

/* A family with one unlabelled sample. */
void metrics_counter(struct textbuf *out, const char *name, const char *help, uint64_t value);
void metrics_gauge(struct textbuf *out, const char *name, const char *help, uint64_t value);

/* A histogram with fixed upper bounds (ascending, finite). Not thread-safe; observe from the
 * loop. counts has nbounds + 1 slots (the last is +Inf), not cumulative. */
#define METRICS_HISTOGRAM_MAX_BOUNDS 24
struct metrics_histogram {
    double bounds[METRICS_HISTOGRAM_MAX_BOUNDS];
    size_t nbounds;
    uint64_t counts[METRICS_HISTOGRAM_MAX_BOUNDS + 1];
    double sum;
    uint64_t count;
};

/* Sets the bounds (copied; at most METRICS_HISTOGRAM_MAX_BOUNDS, strictly ascending) and
 * zeroes the counts. Returns 0 or -EINVAL. */
int metrics_histogram_init(struct metrics_histogram *h, const double *bounds, size_t nbounds);
void metrics_histogram_observe(struct metrics_histogram *h, double value);
/* The samples of a histogram family (metrics_family with METRICS_HISTOGRAM first):
 * name_bucket{labels,le="..."} cumulative counts ending with le="+Inf", name_sum and
 * name_count. */
void metrics_histogram_write(struct textbuf *out, const char *name,
                             const struct metrics_label *labels, size_t nlabels,
                             const struct metrics_histogram *h);

#endif
