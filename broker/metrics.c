/* Prometheus text exposition format 0.0.4: families, samples, label escaping, histograms
 * (metrics.h). */
#include "metrics.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool metrics_name_ok(const char *s, bool colon)
{
    if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9')) return false;
    for (const char *c = s; *c != '\0'; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '_' || (colon && *c == ':');
        if (!ok) return false;
    }
    return true;
}

static bool metrics_check(struct textbuf *out, bool ok)
{
    if (ok) return true;
    assert(!"invalid metric or label name");
    if (out->error == 0) out->error = -EINVAL;
    return false;
}

/* Appends s with \\, \n and (in label values) \" escaped. */
static void metrics_escape(struct textbuf *out, const char *s, bool quote)
{
    const char *run = s;
    for (const char *c = s; *c != '\0'; c++) {
        const char *esc = NULL;
        if (*c == '\\')
            esc = "\\\\";
        else if (*c == '\n')
            esc = "\\n";
        else if (quote && *c == '"')
            esc = "\\\"";
        if (esc == NULL) continue;
        textbuf_append(out, run, (size_t)(c - run));
        textbuf_puts(out, esc);
        run = c + 1;
    }
    textbuf_puts(out, run);
}

void metrics_family(struct textbuf *out, const char *name, enum metrics_type type, const char *help)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    if (!metrics_check(out, metrics_name_ok(name, true))) return;
    textbuf_printf(out, "# HELP %s ", name);
    metrics_escape(out, help, false);
    textbuf_printf(out, "\n# TYPE %s %s\n", name, types[type]);
}

/* `name{a="x",b="y"` ... with an optional extra le label; the caller closes. */
static bool metrics_head(struct textbuf *out, const char *name, const char *suffix,
                         const struct metrics_label *labels, size_t nlabels, const char *le)
{
    if (!metrics_check(out, metrics_name_ok(name, true))) return false;
    textbuf_puts(out, name);
    textbuf_puts(out, suffix);
    if (nlabels == 0 && le == NULL) return true;
    textbuf_putc(out, '{');
    for (size_t i = 0; i < nlabels; i++) {
        const char *ln = labels[i].name;
        if (!metrics_check(out, metrics_name_ok(ln, false) && strncmp(ln, "__", 2) != 0))
            return false;
        textbuf_printf(out, "%s%s=\"", i ? "," : "", ln);
        metrics_escape(out, labels[i].value != NULL ? labels[i].value : "", true);
        textbuf_putc(out, '"');
    }
    if (le != NULL) textbuf_printf(out, "%sle=\"%s\"", nlabels ? "," : "", le);
    textbuf_putc(out, '}');
    return true;
}

/* A double as the format wants it: Go's ParseFloat reads %.17g; NaN, +Inf, -Inf spelled. */
static void metrics_double(char *buf, size_t cap, double v)
{
    if (isnan(v))
        snprintf(buf, cap, "NaN");
    else if (isinf(v))
        snprintf(buf, cap, "%s", v > 0 ? "+Inf" : "-Inf");
    else {
        /* The shortest of %.15g/%.17g that reads back as v: 0.005, not 0.0050000000000000001. */
        snprintf(buf, cap, "%.15g", v);
        if (strtod(buf, NULL) != v) snprintf(buf, cap, "%.17g", v);
    }
}

void metrics_sample(struct textbuf *out, const char *name, const struct metrics_label *labels,
                    size_t nlabels, uint64_t value)
{
    if (metrics_head(out, name, "", labels, nlabels, NULL))
        textbuf_printf(out, " %" PRIu64 "\n", value);
}

void metrics_sample_double(struct textbuf *out, const char *name,
                           const struct metrics_label *labels, size_t nlabels, double value)
{
    char v[64];
    metrics_double(v, sizeof v, value);
    if (metrics_head(out, name, "", labels, nlabels, NULL)) textbuf_printf(out, " %s\n", v);
}

void metrics_counter(struct textbuf *out, const char *name, const char *help, uint64_t value)
{
    metrics_family(out, name, METRICS_COUNTER, help);
    metrics_sample(out, name, NULL, 0, value);
}

void metrics_gauge(struct textbuf *out, const char *name, const char *help, uint64_t value)
{
    metrics_family(out, name, METRICS_GAUGE, help);
    metrics_sample(out, name, NULL, 0, value);
}

int metrics_histogram_init(struct metrics_histogram *h, const double *bounds, size_t nbounds)
{
    memset(h, 0, sizeof *h);
    if (nbounds > METRICS_HISTOGRAM_MAX_BOUNDS) return -EINVAL;
    for (size_t i = 0; i < nbounds; i++)
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) return -EINVAL;
    memcpy(h->bounds, bounds, nbounds * sizeof *bounds);
    h->nbounds = nbounds;
    return 0;
}

void metrics_histogram_observe(struct metrics_histogram *h, double value)
{
    size_t i = 0;
    while (i < h->nbounds && value > h->bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += value;
}

void metrics_histogram_write(struct textbuf *out, const char *name,
                             const struct metrics_label *labels, size_t nlabels,
                             const struct metrics_histogram *h)
{
    char le[64];
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->nbounds; i++) {
        cum += h->counts[i];
        if (i < h->nbounds)
            metrics_double(le, sizeof le, h->bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        if (metrics_head(out, name, "_bucket", labels, nlabels, le))
            textbuf_printf(out, " %" PRIu64 "\n", cum);
    }
    char sum[64];
    metrics_double(sum, sizeof sum, h->sum);
    if (metrics_head(out, name, "_sum", labels, nlabels, NULL)) textbuf_printf(out, " %s\n", sum);
    if (metrics_head(out, name, "_count", labels, nlabels, NULL))
        textbuf_printf(out, " %" PRIu64 "\n", h->count);
}
