/* starling-bench internals: the run's state, its clients, and the statistics they feed.
 *
 * One libuv loop drives every connection. A client is a publisher, a subscriber, or an idle
 * connection (storm); the scenario code in starling-bench.c decides who talks to whom and
 * when, client.c speaks MQTT through the project's codec, stats.c keeps the latency histogram
 * and the per-publisher sequence check, report.c prints and plots the results.
 */
#ifndef STARLING_BENCH_H
#define STARLING_BENCH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

/* ---- latency histogram: log-linear buckets, 1/64 relative precision, values in ns ---- */

#define BENCH_HIST_SUB     64
#define BENCH_HIST_BUCKETS (2 * BENCH_HIST_SUB + 57 * BENCH_HIST_SUB)

struct bench_hist {
    uint64_t count;
    uint64_t max;
    uint64_t sum;
    uint64_t b[BENCH_HIST_BUCKETS];
};

void bench_hist_add(struct bench_hist *h, uint64_t v);
/* The value below which a fraction q (0..1) of the recorded values lie (bucket upper bound). */
uint64_t bench_hist_quantile(const struct bench_hist *h, double q);

/* ---- sequence check of one publisher's messages as one subscriber sees them ----
 *
 * Every sequence number below `next` was received (or given up as lost once it fell more
 * than BENCH_SEQ_WINDOW behind the newest); `ahead` marks which of [next, next + WINDOW)
 * arrived early. A sequence number below `next` that arrives again is a duplicate. */
#define BENCH_SEQ_WINDOW 65536

struct bench_seq {
    uint64_t next;
    uint64_t top; /* highest sequence number seen + 1 */
    uint64_t unique;
    uint64_t dups;
    uint64_t reordered;
    uint64_t *ahead; /* BENCH_SEQ_WINDOW bits, ring-indexed by seq; NULL until needed */
};

/* Records seq. Returns 1 if it is new, 0 if a duplicate, -ENOMEM. */
int bench_seq_add(struct bench_seq *s, uint64_t seq);
void bench_seq_close(struct bench_seq *s);

/* ---- broker process figures from /proc ---- */

struct bench_proc {
    bool ok;
    uint64_t cpu_us; /* user + system time of all threads, summed over the pids */
    uint64_t rss_kb;
};

/* Reads /proc/<pid>/stat and /proc/<pid>/status for each of pids[0..n). */
void bench_proc_sample(const int *pids, int n, struct bench_proc *out);

/* ---- payload ----
 *
 * | offset | size | field                                       |
 * |--------|------|---------------------------------------------|
 * | 0      | 4    | magic "SBNC"                                |
 * | 4      | 4    | run id (random per run)                     |
 * | 8      | 4    | publisher index                             |
 * | 12     | 4    | reserved, 0                                 |
 * | 16     | 8    | sequence number, from 0 per publisher       |
 * | 24     | 8    | timestamp: intended send time, ns, monotonic |
 * | 32     | ...  | filler up to the payload size               |
 * All little-endian (the bench reads what it wrote on the same host). */
#define BENCH_PAYLOAD_MIN 32
#define BENCH_MAGIC       0x434e4253u /* "SBNC" */

enum bench_scenario {
    BENCH_FANIN,
    BENCH_FANOUT,
    BENCH_PAIRWISE,
    BENCH_LATENCY,
    BENCH_STORM,
};

enum bench_role {
    BENCH_ROLE_PUB = 1,
    BENCH_ROLE_SUB = 2,
    BENCH_ROLE_IDLE = 3,
};

enum bench_cstate {
    BENCH_CS_IDLE = 0,   /* not connected */
    BENCH_CS_CONNECTING, /* TCP connect in progress */
    BENCH_CS_CONNACK,    /* CONNECT sent */
    BENCH_CS_SUBACK,     /* SUBSCRIBE sent */
    BENCH_CS_READY,      /* usable */
    BENCH_CS_CLOSING,    /* DISCONNECT queued or uv_close pending */
};

struct bench;
struct WOLFSSL;

struct bench_client {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    struct bench *b;
    uint32_t idx;  /* index among clients of its role */
    uint8_t role;  /* enum bench_role */
    uint8_t state; /* enum bench_cstate */
    bool handle_open;
    bool writing;
    bool dirty;
    bool persistent;   /* clean start off (offline-subscriber runs) */
    bool was_ready;    /* reached READY on the current connection */
    uint16_t addr_idx; /* which broker address */
    struct bench_client *next_dirty;

    /* bytes received but not yet parsed (a partial packet) */
    uint8_t *rbuf;
    size_t rlen, rcap;
    /* bytes to write (obuf) and in flight in uv_write (wbuf) */
    uint8_t *obuf;
    size_t olen, ocap;
    uint8_t *wbuf;
    size_t wcap;
    /* TLS (--tls): the session, received bytes not yet decrypted, encrypted bytes to write */
    struct WOLFSSL *ssl;
    bool tls_up; /* handshake complete */
    uint8_t *tin;
    size_t tin_off, tin_len, tin_cap;
    uint8_t *xbuf;
    size_t xlen, xcap;

    char topic[48];
    uint8_t topic_len;

    /* publisher */
    uint64_t sent;     /* messages published (next sequence number) */
    uint64_t acked;    /* PUBACK / PUBCOMP received */
    uint32_t inflight; /* packet ids in use */
    uint16_t next_pid;
    uint16_t server_recv_max;
    uint64_t *pid_used; /* 65536 bits */
    uint32_t receivers; /* subscribers that should get each message */
    uint64_t delivered; /* deliveries of its messages, all subscribers */
    uint64_t forgiven;  /* deliveries no longer waited for (stall) */
    uint64_t last_progress_ns;
    uint64_t offset_ns; /* rate mode: this publisher's phase within the interval */
    uint8_t *payload;

    /* subscriber */
    uint32_t first_pub, npubs; /* publishers [first_pub, first_pub + npubs) are expected */
    struct bench_seq *seqs;    /* [npubs] */
    uint64_t *qos2_held;       /* 65536 bits: QoS 2 ids received, PUBREL not yet */
    uint64_t received;
};

struct bench_addr {
    struct sockaddr_in sa;
    char text[64];
};

enum bench_phase {
    BENCH_PH_SETUP,
    BENCH_PH_OFFLINE, /* persistent subscribers disconnect before publishing */
    BENCH_PH_WARMUP,
    BENCH_PH_MEASURE,
    BENCH_PH_DRAIN,
    BENCH_PH_RECONNECT, /* persistent subscribers come back and drain their queues */
    BENCH_PH_TEARDOWN,
    BENCH_PH_STORM_CONNECT,
    BENCH_PH_STORM_HOLD,
    BENCH_PH_STORM_PING,
    BENCH_PH_STORM_CLOSE,
    BENCH_PH_DONE,
};

/* One second of the run, for the throughput-over-time plot. */
struct bench_second {
    uint64_t sent;
    uint64_t received;
    uint64_t lat_sum_ns;
    uint64_t lat_max_ns;
};

struct bench_opts {
    enum bench_scenario scenario;
    int qos;
    uint32_t size;
    double duration_s;
    double warmup_s;
    double drain_s;
    uint32_t clients; /* publishers (fanin), subscribers (fanout), pairs, or connections */
    double rate;      /* total messages/s offered; 0: closed loop */
    uint32_t window;  /* in-flight messages per publisher */
    uint64_t count;   /* messages per publisher; 0: for the duration */
    uint8_t version;  /* 4 or 5 */
    const char *username;
    const char *password;
    bool tls;           /* MQTT over TLS */
    const char *cafile; /* verify the broker's certificate against it; NULL: no check */
    struct bench_addr *addrs;
    int naddrs;
    int pids[16];
    int npids;
    bool json;
    bool quiet;
    bool progress;
    const char *plot;
    bool sub_offline;
    bool persistent; /* subscribers with persistent sessions */
    double offline_s;
    uint32_t connect_window;
    uint32_t src_ips;
    uint16_t keepalive_s;
    const char *label;
};

struct bench {
    struct bench_opts o;
    uv_loop_t *loop;
    uv_check_t pump;
    uv_timer_t phase_timer;
    uv_timer_t tick;     /* 1 ms in rate mode, 100 ms otherwise */
    uv_timer_t progress; /* live line */
    uv_poll_t rate_poll; /* open loop: a timerfd at the message interval */
    int rate_fd;
    enum bench_phase phase;
    uint32_t run_id;

    struct bench_client *pubs;
    uint32_t npubs;
    struct bench_client *subs;
    uint32_t nsubs;
    struct bench_client *idle;
    uint32_t nidle;

    struct bench_client *dirty_head;
    void *tls_ctx; /* WOLFSSL_CTX with --tls */
    uint8_t scratch[256 * 1024];

    /* connect queue */
    struct bench_client **cq;
    uint32_t cq_len, cq_next, cq_pending;

    uint32_t nopen;  /* client handles open (not yet through their close callback) */
    uint32_t ready;  /* clients of the current setup step that are ready */
    uint32_t closed; /* clients closed in the current step */
    uint32_t failed; /* connects that failed */
    uint64_t errors; /* protocol errors, unexpected closes */
    char first_error[160];

    /* timeline, ns from uv_hrtime() */
    uint64_t t_start, t_measure, t_measure_end, t_drain_end, t_last_delivery;
    bool pubs_done; /* count mode: every publisher sent its count */

    /* window counters */
    uint64_t win_sent, win_received;
    struct bench_hist hist;
    struct bench_second *secs;
    uint32_t nsecs;
    uint64_t misrouted;
    uint64_t stalls;

    struct bench_proc proc0, proc1, proc_rss0, proc_rss1;

    /* storm */
    uint64_t t_conn0, t_conn1, t_ping0, t_ping1, t_close0, t_close1;
    uint32_t pinged, pongs, ping_lost;
    struct bench_proc proc_c0, proc_c1;

    /* progress */
    uint64_t prog_sent, prog_recv, prog_t, prog_t0;
};

/* Results, computed once the loop has finished. */
struct bench_result {
    uint64_t sent, acked, received, unique, lost, dups, reordered, misrouted, errors, stalls;
    double window_s;
    double sent_per_s, msgs_per_s;
    uint64_t p50_ns, p90_ns, p99_ns, p999_ns, max_ns;
    double mean_ns;
    bool have_cpu;
    double cpu_us_per_msg;
    double rss_kb_start, rss_kb_end;
    /* storm */
    uint32_t connected;
    double connects_per_s, pings_per_s, closes_per_s;
    double rss_bytes_per_conn;
    double cpu_us_per_connect;
    int exit_status;
};

/* client.c. client_connect() returns 0 or a libuv error when no handle could be made; any
 * later failure ends in bench_on_closed() with was_ready telling whether it got that far. */
int client_connect(struct bench_client *c);
void client_publish(struct bench_client *c, uint64_t ts_ns);
void client_ping(struct bench_client *c);
void client_disconnect(struct bench_client *c);
void client_flush(struct bench_client *c);
void client_free(struct bench_client *c);
bool client_can_publish(const struct bench_client *c);
/* --tls: the client context (wolfSSL, TLS 1.2 or 1.3), verifying the broker against cafile
 * when given. Returns 0, or -1 after printing why. */
int client_tls_init(struct bench *b);
void client_tls_free(struct bench *b);

/* Events client.c reports to the scenario (starling-bench.c). */
void bench_on_ready(struct bench_client *c);
void bench_on_closed(struct bench_client *c);
void bench_on_delivery(struct bench_client *sub, const char *topic, size_t topic_len,
                       const uint8_t *payload, size_t len);
void bench_on_pong(struct bench_client *c);
void bench_error(struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* report.c */
void report_table(const struct bench *b, const struct bench_result *r, FILE *out);
void report_json(const struct bench *b, const struct bench_result *r, FILE *out);
int report_plot(const struct bench *b, const struct bench_result *r, const char *svg_path);
const char *report_scenario_name(enum bench_scenario s);

#endif
