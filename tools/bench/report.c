/* starling-bench output: the summary table, the --json line, and the --plot SVG (gnuplot). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

const char *report_scenario_name(enum bench_scenario s)
{
    switch (s) {
    case BENCH_FANIN:
        return "fanin";
    case BENCH_FANOUT:
        return "fanout";
    case BENCH_PAIRWISE:
        return "pairwise";
    case BENCH_LATENCY:
        return "latency";
    case BENCH_STORM:
        return "storm";
    }
    return "?";
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

void report_table(const struct bench *b, const struct bench_result *r, FILE *out)
{
    const struct bench_opts *o = &b->o;
    fprintf(out, "scenario        %s, MQTT %s, %s%d broker%s\n", report_scenario_name(o->scenario),
            o->version == 5 ? "5.0" : "3.1.1", "", o->naddrs, o->naddrs > 1 ? "s" : "");
    if (o->scenario == BENCH_STORM) {
        fprintf(out, "connections     %u of %u (failed %u)\n", r->connected, b->nidle, b->failed);
        fprintf(out, "connects/s      %.0f\n", r->connects_per_s);
        fprintf(out, "pings/s         %.0f\n", r->pings_per_s);
        fprintf(out, "closes/s        %.0f\n", r->closes_per_s);
        if (r->have_cpu) {
            fprintf(out, "broker RSS      %.0f kB -> %.0f kB with the connections idle\n",
                    r->rss_kb_start, r->rss_kb_end);
            fprintf(out, "RSS/connection  %.0f bytes\n", r->rss_bytes_per_conn);
            fprintf(out, "CPU/connect     %.1f us\n", r->cpu_us_per_connect);
        }
    } else {
        fprintf(out, "clients         %u publishers, %u subscribers, QoS %d, %u-byte payloads\n",
                b->npubs, b->nsubs, o->qos, o->size);
        if (o->rate > 0) fprintf(out, "offered         %.0f msgs/s (open loop)\n", o->rate);
        fprintf(out, "window          %.2f s\n", r->window_s);
        fprintf(out, "sent            %.0f msgs/s\n", r->sent_per_s);
        fprintf(out, "delivered       %.0f msgs/s\n", r->msgs_per_s);
        fprintf(out, "latency (us)    p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
                us(r->p50_ns), us(r->p90_ns), us(r->p99_ns), us(r->p999_ns), us(r->max_ns));
        if (r->have_cpu) {
            fprintf(out, "broker CPU      %.2f us per delivered message\n", r->cpu_us_per_msg);
            fprintf(out, "broker RSS      %.0f kB -> %.0f kB\n", r->rss_kb_start, r->rss_kb_end);
        }
        fprintf(out,
                "verification    sent %llu, acked %llu, received %llu, unique %llu\n"
                "                lost %llu, duplicated %llu, reordered %llu, misrouted %llu%s\n",
                (unsigned long long)r->sent, (unsigned long long)r->acked,
                (unsigned long long)r->received, (unsigned long long)r->unique,
                (unsigned long long)r->lost, (unsigned long long)r->dups,
                (unsigned long long)r->reordered, (unsigned long long)r->misrouted,
                r->stalls ? " (window stalls)" : "");
    }
    if (r->errors)
        fprintf(out, "errors          %llu: %s\n", (unsigned long long)r->errors, b->first_error);
    fprintf(out, "result          %s\n",
            r->exit_status == 0   ? "ok"
            : r->exit_status == 2 ? "FAILED verification"
                                  : "errors");
}

static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(out, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(out, "\\u%04x", *s);
        else
            fputc(*s, out);
    }
    fputc('"', out);
}

void report_json(const struct bench *b, const struct bench_result *r, FILE *out)
{
    const struct bench_opts *o = &b->o;
    fprintf(out, "{\"scenario\":\"%s\",\"label\":", report_scenario_name(o->scenario));
    json_str(out, o->label ? o->label : "");
    fprintf(out,
            ",\"mqtt\":\"%s\",\"qos\":%d,\"size\":%u,\"clients\":%u,\"publishers\":%u,"
            "\"subscribers\":%u,\"brokers\":%d,\"rate\":%.0f,\"window\":%u",
            o->version == 5 ? "5.0" : "3.1.1", o->qos, o->size, o->clients, b->npubs, b->nsubs,
            o->naddrs, o->rate, o->window);
    if (o->scenario == BENCH_STORM) {
        fprintf(out,
                ",\"connections\":%u,\"failed\":%u,\"connects_per_s\":%.1f,\"pings_per_s\":%.1f,"
                "\"closes_per_s\":%.1f",
                r->connected, b->failed, r->connects_per_s, r->pings_per_s, r->closes_per_s);
        if (r->have_cpu)
            fprintf(out,
                    ",\"rss_kb_start\":%.0f,\"rss_kb_idle\":%.0f,\"rss_bytes_per_conn\":%.1f,"
                    "\"cpu_us_per_connect\":%.2f",
                    r->rss_kb_start, r->rss_kb_end, r->rss_bytes_per_conn, r->cpu_us_per_connect);
    } else {
        fprintf(out,
                ",\"window_s\":%.3f,\"sent_per_s\":%.1f,\"msgs_per_s\":%.1f,"
                "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
                "\"max\":%.1f,\"mean\":%.1f}",
                r->window_s, r->sent_per_s, r->msgs_per_s, us(r->p50_ns), us(r->p90_ns),
                us(r->p99_ns), us(r->p999_ns), us(r->max_ns), r->mean_ns / 1000.0);
        if (r->have_cpu)
            fprintf(out, ",\"cpu_us_per_msg\":%.3f,\"rss_kb_start\":%.0f,\"rss_kb_end\":%.0f",
                    r->cpu_us_per_msg, r->rss_kb_start, r->rss_kb_end);
        fprintf(out,
                ",\"sent\":%llu,\"acked\":%llu,\"received\":%llu,\"unique\":%llu,\"lost\":%llu,"
                "\"duplicated\":%llu,\"reordered\":%llu,\"misrouted\":%llu,\"stalls\":%llu",
                (unsigned long long)r->sent, (unsigned long long)r->acked,
                (unsigned long long)r->received, (unsigned long long)r->unique,
                (unsigned long long)r->lost, (unsigned long long)r->dups,
                (unsigned long long)r->reordered, (unsigned long long)r->misrouted,
                (unsigned long long)r->stalls);
    }
    fprintf(out, ",\"errors\":%llu,\"error\":", (unsigned long long)r->errors);
    json_str(out, b->first_error);
    fprintf(out, ",\"exit\":%d}\n", r->exit_status);
    fflush(out);
}

/* Writes the data files and the gnuplot script into a temporary folder and runs gnuplot. */
int report_plot(const struct bench *b, const struct bench_result *r, const char *svg_path)
{
    char dir[] = "/tmp/starling-bench-plot-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("starling-bench: --plot");
        return -1;
    }
    char pct[96], tput[96], script[96];
    snprintf(pct, sizeof pct, "%s/percentiles.dat", dir);
    snprintf(tput, sizeof tput, "%s/throughput.dat", dir);
    snprintf(script, sizeof script, "%s/plot.gp", dir);
    int rc = -1;
    bool io_error = true;
    FILE *f = fopen(pct, "w");
    if (!f) goto out;
    /* x: 1/(1-q) on a log axis, the usual latency-percentile spectrum. */
    static const double qs[] = {0.0,   0.25,  0.5,    0.75,   0.9,     0.95,    0.99,
                                0.995, 0.999, 0.9995, 0.9999, 0.99999, 0.999999};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        if (qs[i] > 0 && (double)b->hist.count * (1 - qs[i]) < 1) break;
        fprintf(f, "%.6f %.3f\n", 1.0 / (1.0 - qs[i]),
                us(bench_hist_quantile(&b->hist, qs[i] > 0 ? qs[i] : 0.000001)));
    }
    fclose(f);
    f = fopen(tput, "w");
    if (!f) goto out;
    uint32_t last = 0;
    for (uint32_t i = 0; i < b->nsecs; i++)
        if (b->secs[i].sent || b->secs[i].received) last = i;
    for (uint32_t i = 0; i <= last && i < b->nsecs; i++) {
        const struct bench_second *s = &b->secs[i];
        fprintf(f, "%u %llu %llu %.3f %.3f\n", i, (unsigned long long)s->sent,
                (unsigned long long)s->received,
                s->received ? (double)s->lat_sum_ns / (double)s->received / 1000.0 : 0.0,
                us(s->lat_max_ns));
    }
    fclose(f);
    f = fopen(script, "w");
    if (!f) goto out;
    fprintf(f,
            "set terminal svg size 900,700 dynamic font 'sans,11'\n"
            "set output '%s'\n"
            "set multiplot layout 2,1 title 'starling-bench %s, QoS %d, %u B, %.0f msgs/s "
            "delivered'\n"
            "set title 'latency by percentile (measurement window)'\n"
            "set logscale x\nset logscale y\nset grid\n"
            "set xlabel 'percentile'\nset ylabel 'latency (us)'\n"
            "set xtics ('0%%%%' 1, '90%%%%' 10, '99%%%%' 100, '99.9%%%%' 1000, "
            "'99.99%%%%' 10000, '99.999%%%%' 100000)\n"
            "plot '%s' using 1:2 with linespoints title 'latency' lw 2\n"
            "unset logscale x\nunset logscale y\nset xtics auto\n"
            "set title 'throughput and latency over time (s since publishing began)'\n"
            "set xlabel 'time (s)'\nset ylabel 'msgs/s'\nset y2label 'latency (us)'\n"
            "set y2tics\nset logscale y2\n"
            "plot '%s' using 1:2 with steps title 'sent' lw 2, "
            "'' using 1:3 with steps title 'delivered' lw 2, "
            "'' using 1:4 axes x1y2 with lines title 'mean latency', "
            "'' using 1:5 axes x1y2 with lines title 'max latency'\n"
            "unset multiplot\n",
            svg_path, report_scenario_name(b->o.scenario), b->o.qos, b->o.size, r->msgs_per_s, pct,
            tput);
    fclose(f);
    pid_t pid = fork();
    if (pid < 0) goto out;
    if (pid == 0) {
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        _exit(127);
    }
    io_error = false;
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        rc = 0;
    else
        fprintf(stderr, "starling-bench: --plot: gnuplot failed%s\n",
                WIFEXITED(st) && WEXITSTATUS(st) == 127 ? " (not installed?)" : "");
out:
    if (io_error) perror("starling-bench: --plot");
    unlink(pct);
    unlink(tput);
    unlink(script);
    rmdir(dir);
    return rc;
}
