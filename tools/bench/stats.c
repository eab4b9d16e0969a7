/* starling-bench statistics: latency histogram, sequence check, broker figures from /proc. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* Values below 2*SUB are exact; above, each power of two holds SUB buckets. */
static uint32_t hist_index(uint64_t v)
{
    if (v < 2 * BENCH_HIST_SUB) return (uint32_t)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 7 */
    uint64_t m = v >> (e - 6);                       /* in [64, 128) */
    uint32_t i = 2 * BENCH_HIST_SUB + (e - 7) * BENCH_HIST_SUB + (uint32_t)(m - BENCH_HIST_SUB);
    return i < BENCH_HIST_BUCKETS ? i : BENCH_HIST_BUCKETS - 1;
}

/* The highest value that falls in bucket i. */
static uint64_t hist_upper(uint32_t i)
{
    if (i < 2 * BENCH_HIST_SUB) return i;
    uint32_t k = i - 2 * BENCH_HIST_SUB;
    unsigned e = 7 + k / BENCH_HIST_SUB;
    uint64_t m = BENCH_HIST_SUB + k % BENCH_HIST_SUB;
    return ((m + 1) << (e - 6)) - 1;
}

void bench_hist_add(struct bench_hist *h, uint64_t v)
{
    h->b[hist_index(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max) h->max = v;
}

uint64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
    if (h->count == 0) return 0;
    uint64_t want = (uint64_t)(q * (double)h->count + 0.5);
    if (want < 1) want = 1;
    if (want > h->count) want = h->count;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            uint64_t u = hist_upper(i);
            return u < h->max ? u : h->max;
        }
    }
    return h->max;
}

#define SEQ_WORDS (BENCH_SEQ_WINDOW / 64)

static bool seq_bit(const struct bench_seq *s, uint64_t seq)
{
    uint64_t i = seq % BENCH_SEQ_WINDOW;
    return s->ahead && (s->ahead[i / 64] >> (i % 64)) & 1;
}

static void seq_clear(struct bench_seq *s, uint64_t seq)
{
    uint64_t i = seq % BENCH_SEQ_WINDOW;
    if (s->ahead) s->ahead[i / 64] &= ~(UINT64_C(1) << (i % 64));
}

int bench_seq_add(struct bench_seq *s, uint64_t seq)
{
    if (seq < s->next) goto dup;
    if (seq == s->next) {
        s->next++;
        while (s->next < s->top && seq_bit(s, s->next)) {
            seq_clear(s, s->next);
            s->next++;
        }
    } else {
        if (!s->ahead) {
            s->ahead = calloc(SEQ_WORDS, sizeof(uint64_t));
            if (!s->ahead) return -ENOMEM;
        }
        /* Too far ahead: the oldest missing ones are given up (they stay uncounted). */
        while (seq >= s->next + BENCH_SEQ_WINDOW) {
            seq_clear(s, s->next);
            s->next++;
        }
        if (seq < s->next)
            goto dup; /* cannot happen: seq >= old next and next <= seq - WINDOW + 1 */
        if (seq_bit(s, seq)) goto dup;
        uint64_t i = seq % BENCH_SEQ_WINDOW;
        s->ahead[i / 64] |= UINT64_C(1) << (i % 64);
    }
    if (seq + 1 < s->top) s->reordered++;
    if (seq + 1 > s->top) s->top = seq + 1;
    s->unique++;
    return 1;
dup:
    s->dups++;
    return 0;
}

void bench_seq_close(struct bench_seq *s)
{
    free(s->ahead);
    s->ahead = NULL;
}

static bool proc_one(int pid, uint64_t *cpu_us, uint64_t *rss_kb)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* Fields after the command name, which may hold spaces and parentheses. */
    char *p = strrchr(buf, ')');
    if (!p) return false;
    unsigned long long utime = 0, stime = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return false;
    long tck = sysconf(_SC_CLK_TCK);
    *cpu_us = (utime + stime) * (uint64_t)(1000000 / (tck > 0 ? tck : 100));

    snprintf(path, sizeof path, "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (!f) return false;
    bool found = false;
    while (fgets(buf, sizeof buf, f)) {
        unsigned long long kb;
        if (sscanf(buf, "VmRSS: %llu kB", &kb) == 1) {
            *rss_kb = kb;
            found = true;
            break;
        }
    }
    fclose(f);
    return found;
}

void bench_proc_sample(const int *pids, int n, struct bench_proc *out)
{
    memset(out, 0, sizeof *out);
    out->ok = n > 0;
    for (int i = 0; i < n; i++) {
        uint64_t cpu = 0, rss = 0;
        if (!proc_one(pids[i], &cpu, &rss)) {
            out->ok = false;
            continue;
        }
        out->cpu_us += cpu;
        out->rss_kb += rss;
    }
}
