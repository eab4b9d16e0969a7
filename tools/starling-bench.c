/* starling-bench: MQTT load generator that verifies what it measures.
 *
 * Scenarios: fanin (P publishers -> one wildcard subscriber), fanout (1 publisher -> S
 * subscribers), pairwise (N publisher/subscriber pairs), latency (pairwise at a fixed offered
 * rate, open loop), storm (open C connections, hold them idle, ping each, close).
 * Every payload carries publisher index, sequence number and intended send time; subscribers
 * count lost, duplicated, reordered and misrouted messages. Exit status: 0 success, 1 usage
 * or connection error, 2 verification failure (loss or duplicates at QoS >= 1, misrouting).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "bench.h"
#include "proto.h"

#define NS_PER_S 1000000000ull

static struct bench bench_state;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: starling-bench SCENARIO [options]\n"
            "Scenarios: fanin, fanout, pairwise, latency, storm\n"
            "  -H, --host ADDR[:PORT][,ADDR[:PORT]...]  brokers (IPv4; default 127.0.0.1)\n"
            "  -p, --port PORT           default port (1883)\n"
            "  -q, --qos 0|1|2           QoS of publications and subscriptions (0)\n"
            "  -s, --size BYTES          payload size, at least %d (64)\n"
            "  -c, --clients N           publishers (fanin), subscribers (fanout), pairs\n"
            "                            (pairwise, latency) or connections (storm)\n"
            "  -d, --duration SEC        measurement window (5); storm: idle hold time\n"
            "  -w, --warmup SEC          warm-up before the window (1)\n"
            "      --drain SEC           max wait for messages in flight at the end (10)\n"
            "  -r, --rate MSGS           total offered msgs/s, open loop (latency: 10000)\n"
            "  -W, --window N            in-flight messages per publisher (64)\n"
            "  -n, --count N             messages per publisher instead of a duration\n"
            "  -V, --mqtt 311|5          protocol version (311)\n"
            "  -u, --username NAME       -P, --password PASS\n"
            "      --tls                 MQTT over TLS 1.2/1.3 (default port 8883)\n"
            "      --cafile FILE         verify the broker's certificate against FILE\n"
            "                            (without it: encrypted, not verified)\n"
            "      --pid PID[,PID...]    broker processes: CPU per message, RSS per connection\n"
            "      --persistent          subscribers keep persistent sessions (clean start\n"
            "                            off, MQTT 5 session expiry 600 s)\n"
            "      --sub-offline SEC     persistent subscribers go offline while publishers\n"
            "                            run, then come back for their queued messages\n"
            "      --connect-window N    connects in progress at once (64; storm 100)\n"
            "      --src-ips N           spread connections over N source addresses in\n"
            "                            127.1.0.0/16 (storm default: one per 2000)\n"
            "  -k, --keepalive SEC       (60; storm 600)\n"
            "      --json                one JSON line on stdout (table goes to stderr)\n"
            "      --plot FILE.svg       latency percentiles and throughput (gnuplot)\n"
            "      --label TEXT          name carried into the JSON line\n"
            "      --quiet               no progress line\n",
            BENCH_PAYLOAD_MIN);
}

void bench_error(struct bench *b, const char *fmt, ...)
{
    va_list ap;
    b->errors++;
    if (b->first_error[0] == 0) {
        va_start(ap, fmt);
        vsnprintf(b->first_error, sizeof b->first_error, fmt, ap);
        va_end(ap);
    }
    if (b->errors <= 10 && !b->o.json) {
        fprintf(stderr, "%sstarling-bench: ", b->o.progress ? "\r\033[K" : "");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
}

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

/* ---- phases ---- */

static void set_phase(struct bench *b, enum bench_phase ph);
static void pump(struct bench *b);
static void storm_check_ping(struct bench *b);

static struct bench_client *all_clients_at(struct bench *b, uint32_t i)
{
    if (i < b->nsubs) return &b->subs[i];
    i -= b->nsubs;
    if (i < b->npubs) return &b->pubs[i];
    return &b->idle[i - b->npubs];
}

static void cq_reset(struct bench *b)
{
    b->cq_len = b->cq_next = b->cq_pending = 0;
    b->ready = b->closed = 0;
}

static void cq_push(struct bench *b, struct bench_client *c)
{
    b->cq[b->cq_len++] = c;
}

/* Starts queued connects up to the connect window. */
static void cq_run(struct bench *b)
{
    while (b->cq_next < b->cq_len && b->cq_pending < b->o.connect_window) {
        struct bench_client *c = b->cq[b->cq_next++];
        int rc = client_connect(c);
        if (rc < 0) {
            bench_error(b, "connect: %s", uv_strerror(rc));
            b->failed++;
            continue;
        }
        b->cq_pending++;
    }
}

static bool cq_done(const struct bench *b)
{
    return b->cq_next == b->cq_len && b->cq_pending == 0;
}

static void rate_poll_close_cb(uv_handle_t *h)
{
    struct bench *b = h->data;
    close(b->rate_fd);
    b->rate_fd = -1;
}

static void stop_all(struct bench *b)
{
    uv_timer_stop(&b->phase_timer);
    uv_timer_stop(&b->tick);
    uv_timer_stop(&b->progress);
    uv_check_stop(&b->pump);
    if (!uv_is_closing((uv_handle_t *)&b->phase_timer)) {
        uv_close((uv_handle_t *)&b->phase_timer, NULL);
        uv_close((uv_handle_t *)&b->tick, NULL);
        uv_close((uv_handle_t *)&b->progress, NULL);
        uv_close((uv_handle_t *)&b->pump, NULL);
        if (b->rate_fd >= 0) uv_close((uv_handle_t *)&b->rate_poll, rate_poll_close_cb);
    }
}

static void abort_run(struct bench *b)
{
    b->phase = BENCH_PH_DONE;
    uint32_t n = b->nsubs + b->npubs + b->nidle;
    for (uint32_t i = 0; i < n; i++) {
        struct bench_client *c = all_clients_at(b, i);
        if (c->handle_open && !uv_is_closing((uv_handle_t *)&c->tcp))
            uv_close((uv_handle_t *)&c->tcp, NULL);
    }
    stop_all(b);
}

static void phase_timer_cb(uv_timer_t *t);
static void start_timer_s(struct bench *b, double s);

static void teardown(struct bench *b)
{
    if (b->o.count && (b->phase == BENCH_PH_DRAIN || b->phase == BENCH_PH_RECONNECT)) {
        b->t_measure_end = b->t_last_delivery > b->t_measure ? b->t_last_delivery : now_ns();
        bench_proc_sample(b->o.pids, b->o.npids, &b->proc1);
    }
    set_phase(b, BENCH_PH_TEARDOWN);
    uint32_t n = b->nsubs + b->npubs + b->nidle;
    uint32_t open = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct bench_client *c = all_clients_at(b, i);
        if (c->handle_open) {
            open++;
            client_disconnect(c);
        }
    }
    if (open == 0) {
        b->phase = BENCH_PH_DONE;
        stop_all(b);
    } else {
        start_timer_s(b, 5); /* then close whatever is still open */
    }
}

static void start_timer_s(struct bench *b, double s)
{
    uv_timer_start(&b->phase_timer, phase_timer_cb, (uint64_t)(s * 1000.0 + 0.5), 0);
}

static void connect_group(struct bench *b, struct bench_client *arr, uint32_t n)
{
    cq_reset(b);
    for (uint32_t i = 0; i < n; i++)
        cq_push(b, &arr[i]);
    cq_run(b);
}

static void set_phase(struct bench *b, enum bench_phase ph)
{
    b->phase = ph;
}

static void rate_poll_cb(uv_poll_t *h, int status, int events)
{
    struct bench *b = h->data;
    uint64_t expirations;
    (void)status;
    (void)events;
    if (read(b->rate_fd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
        bench_error(b, "timerfd: %s", strerror(errno));
    pump(b);
}

/* Open loop needs sub-millisecond send times, finer than libuv timers: a timerfd wakes the
 * loop once per message interval (at least every 20 us) and the pump sends what is due. */
static int start_rate_clock(struct bench *b)
{
    uint64_t interval_ns = (uint64_t)(1e9 / b->o.rate);
    if (interval_ns < 20000) interval_ns = 20000;
    b->rate_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (b->rate_fd < 0) return -errno;
    struct itimerspec its = {
        .it_interval = {.tv_sec = (time_t)(interval_ns / NS_PER_S),
                        .tv_nsec = (long)(interval_ns % NS_PER_S)},
        .it_value = {.tv_sec = 0, .tv_nsec = 1000},
    };
    if (timerfd_settime(b->rate_fd, 0, &its, NULL) < 0) return -errno;
    int rc = uv_poll_init(b->loop, &b->rate_poll, b->rate_fd);
    if (rc < 0) return rc;
    b->rate_poll.data = b;
    return uv_poll_start(&b->rate_poll, UV_READABLE, rate_poll_cb);
}

static void start_publishing(struct bench *b)
{
    if (b->o.rate > 0 && b->rate_fd < 0) {
        int rc = start_rate_clock(b);
        if (rc < 0) {
            bench_error(b, "cannot start the rate clock: %s", uv_strerror(rc));
            if (b->rate_fd >= 0) close(b->rate_fd);
            b->rate_fd = -1;
        }
    }
    b->t_start = now_ns();
    for (uint32_t i = 0; i < b->npubs; i++)
        b->pubs[i].last_progress_ns = b->t_start;
    bench_proc_sample(b->o.pids, b->o.npids, &b->proc0);
    if (b->o.warmup_s > 0 && b->o.count == 0) {
        set_phase(b, BENCH_PH_WARMUP);
        start_timer_s(b, b->o.warmup_s);
    } else {
        set_phase(b, BENCH_PH_MEASURE);
        b->t_measure = b->t_start;
        start_timer_s(b, b->o.count ? b->o.duration_s + 3600 : b->o.duration_s);
    }
    pump(b);
}

static void end_measure(struct bench *b)
{
    b->t_measure_end = now_ns();
    if (!b->o.count) bench_proc_sample(b->o.pids, b->o.npids, &b->proc1);
    set_phase(b, BENCH_PH_DRAIN);
    start_timer_s(b, b->o.drain_s);
    b->t_last_delivery = b->t_measure_end;
}

static uint64_t pub_outstanding(const struct bench_client *p)
{
    uint64_t want = p->sent * p->receivers;
    uint64_t have = p->delivered + p->forgiven;
    return want > have ? want - have : 0;
}

static bool all_delivered(const struct bench *b)
{
    for (uint32_t i = 0; i < b->npubs; i++)
        if (pub_outstanding(&b->pubs[i]) > 0) return false;
    return true;
}

/* The messages a subscriber must get from p: all of them at QoS 0, the acknowledged ones at
 * QoS >= 1 (the broker never took responsibility for the others). */
static uint64_t pub_owed(const struct bench *b, const struct bench_client *p)
{
    return b->o.qos > 0 ? p->acked : p->sent;
}

static bool all_acked(const struct bench *b)
{
    for (uint32_t i = 0; i < b->npubs; i++) {
        const struct bench_client *p = &b->pubs[i];
        if (p->inflight > 0 && p->state == BENCH_CS_READY) return false;
    }
    return true;
}

/* Called after each loop iteration and on timer ticks: moves the drain along. */
static void check_drain(struct bench *b)
{
    if (b->phase == BENCH_PH_DRAIN) {
        if (!all_acked(b)) return;
        if (b->o.sub_offline) {
            b->t_drain_end = now_ns();
            set_phase(b, BENCH_PH_RECONNECT);
            b->t_last_delivery = now_ns();
            start_timer_s(b, b->o.drain_s);
            connect_group(b, b->subs, b->nsubs);
            return;
        }
        if (all_delivered(b)) {
            b->t_drain_end = now_ns();
            teardown(b);
        }
    } else if (b->phase == BENCH_PH_RECONNECT) {
        if (b->ready < b->nsubs) return;
        /* Done when everything arrived, or nothing came for a second. */
        if (all_delivered(b) || now_ns() - b->t_last_delivery > NS_PER_S) {
            b->t_drain_end = now_ns();
            teardown(b);
        }
    }
}

static void phase_timer_cb(uv_timer_t *t)
{
    struct bench *b = t->data;
    switch (b->phase) {
    case BENCH_PH_OFFLINE:
        connect_group(b, b->pubs, b->npubs);
        set_phase(b, BENCH_PH_SETUP);
        break;
    case BENCH_PH_WARMUP:
        set_phase(b, BENCH_PH_MEASURE);
        b->t_measure = now_ns();
        b->win_sent = b->win_received = 0;
        bench_proc_sample(b->o.pids, b->o.npids, &b->proc0);
        start_timer_s(b, b->o.duration_s);
        break;
    case BENCH_PH_MEASURE:
        end_measure(b);
        check_drain(b);
        break;
    case BENCH_PH_DRAIN:
    case BENCH_PH_RECONNECT:
        /* Drain time is up: what has not arrived is lost. */
        b->t_drain_end = now_ns();
        teardown(b);
        break;
    case BENCH_PH_STORM_HOLD: {
        bench_proc_sample(b->o.pids, b->o.npids, &b->proc_rss1);
        set_phase(b, BENCH_PH_STORM_PING);
        b->t_ping0 = now_ns();
        b->pongs = b->ping_lost = b->pinged = 0;
        for (uint32_t i = 0; i < b->nidle; i++) {
            if (b->idle[i].state == BENCH_CS_READY) {
                client_ping(&b->idle[i]);
                b->pinged++;
            }
        }
        pump(b);
        storm_check_ping(b);
        break;
    }
    case BENCH_PH_TEARDOWN:
        /* Connections that did not close in time. */
        abort_run(b);
        break;
    default:
        break;
    }
}

/* ---- the pump: publish what the window and the rate allow, then flush ---- */

static void pump_publisher(struct bench *b, struct bench_client *p, uint64_t now)
{
    const struct bench_opts *o = &b->o;
    uint32_t win = o->window;
    if (o->qos > 0 && p->server_recv_max < win) win = p->server_recv_max;
    if (win > 65000) win = 65000;
    bool e2e = !o->sub_offline && p->receivers > 0;
    double per_pub = o->rate / (double)b->npubs;
    uint64_t due = UINT64_MAX;
    if (o->rate > 0) {
        uint64_t el = now > b->t_start + p->offset_ns ? now - b->t_start - p->offset_ns : 0;
        due = (uint64_t)((double)el * per_pub / 1e9) + 1;
    }
    if (o->count && due > o->count) due = o->count;
    while (p->sent < due && client_can_publish(p)) {
        if (o->qos > 0 && p->inflight >= win) break;
        if (e2e && pub_outstanding(p) >= (uint64_t)o->window * p->receivers) break;
        uint64_t ts = now;
        if (o->rate > 0)
            ts = b->t_start + p->offset_ns + (uint64_t)((double)p->sent * 1e9 / per_pub);
        client_publish(p, ts);
        if (b->phase == BENCH_PH_MEASURE) b->win_sent++;
        uint64_t sec = (now - b->t_start) / NS_PER_S;
        if (sec < b->nsecs) b->secs[sec].sent++;
    }
}

static void pump(struct bench *b)
{
    if (b->phase == BENCH_PH_WARMUP || b->phase == BENCH_PH_MEASURE) {
        uint64_t now = now_ns();
        bool done = b->o.count > 0;
        for (uint32_t i = 0; i < b->npubs; i++) {
            pump_publisher(b, &b->pubs[i], now);
            if (b->pubs[i].sent < b->o.count && b->pubs[i].state == BENCH_CS_READY) done = false;
        }
        if (done && !b->pubs_done) {
            b->pubs_done = true;
            end_measure(b);
        }
    }
    while (b->dirty_head) {
        struct bench_client *c = b->dirty_head;
        b->dirty_head = c->next_dirty;
        client_flush(c);
    }
    check_drain(b);
}

static void pump_cb(uv_check_t *h)
{
    pump(h->data);
}

static void tick_cb(uv_timer_t *t)
{
    struct bench *b = t->data;
    uint64_t now = now_ns();
    /* A QoS 0 publisher whose messages stopped arriving would wait forever for its window:
     * after a second without progress its outstanding messages are no longer waited for
     * (they count as lost at the end if they never come). */
    if (b->phase == BENCH_PH_WARMUP || b->phase == BENCH_PH_MEASURE) {
        for (uint32_t i = 0; i < b->npubs; i++) {
            struct bench_client *p = &b->pubs[i];
            uint64_t out = pub_outstanding(p);
            if (out >= (uint64_t)b->o.window * p->receivers && out > 0 &&
                now - p->last_progress_ns > NS_PER_S) {
                p->forgiven += out;
                p->last_progress_ns = now;
                b->stalls++;
            }
        }
    }
    pump(b);
}

/* ---- events from the clients ---- */

void bench_on_ready(struct bench_client *c)
{
    struct bench *b = c->b;
    b->cq_pending--;
    b->ready++;
    cq_run(b);
    switch (b->phase) {
    case BENCH_PH_SETUP:
        if (c->role == BENCH_ROLE_SUB && b->ready == b->nsubs) {
            if (b->o.sub_offline) {
                set_phase(b, BENCH_PH_OFFLINE);
                for (uint32_t i = 0; i < b->nsubs; i++)
                    client_disconnect(&b->subs[i]);
                b->closed = 0;
            } else {
                connect_group(b, b->pubs, b->npubs);
            }
        } else if (c->role == BENCH_ROLE_PUB && b->ready == b->npubs) {
            start_publishing(b);
        }
        break;
    case BENCH_PH_STORM_CONNECT:
        if (cq_done(b)) {
            b->t_conn1 = now_ns();
            bench_proc_sample(b->o.pids, b->o.npids, &b->proc_c1);
            b->proc_rss0 = b->proc_c0;
            set_phase(b, BENCH_PH_STORM_HOLD);
            start_timer_s(b, b->o.duration_s);
        }
        break;
    default:
        break;
    }
}

static void storm_closed(struct bench *b)
{
    if (b->phase == BENCH_PH_STORM_CONNECT && cq_done(b)) {
        b->t_conn1 = now_ns();
        bench_proc_sample(b->o.pids, b->o.npids, &b->proc_c1);
        set_phase(b, BENCH_PH_STORM_HOLD);
        start_timer_s(b, b->o.duration_s);
    }
}

/* Every pinged connection answered (or is gone): close them all. */
static void storm_check_ping(struct bench *b)
{
    if (b->pongs + b->ping_lost < b->pinged) return;
    b->t_ping1 = now_ns();
    set_phase(b, BENCH_PH_STORM_CLOSE);
    b->t_close0 = now_ns();
    uint32_t open = 0;
    for (uint32_t i = 0; i < b->nidle; i++) {
        client_disconnect(&b->idle[i]);
        open += b->idle[i].handle_open;
    }
    if (open == 0) {
        b->t_close1 = now_ns();
        b->phase = BENCH_PH_DONE;
        stop_all(b);
    }
}

void bench_on_closed(struct bench_client *c)
{
    struct bench *b = c->b;
    bool expected =
        b->phase == BENCH_PH_TEARDOWN || b->phase == BENCH_PH_OFFLINE || b->phase == BENCH_PH_DONE;
    if (!c->was_ready && b->phase != BENCH_PH_DONE && b->phase != BENCH_PH_TEARDOWN) {
        /* The connect itself failed. */
        b->cq_pending--;
        b->failed++;
        if (b->phase == BENCH_PH_STORM_CONNECT) {
            cq_run(b);
            storm_closed(b);
            return;
        }
        bench_error(b, "cannot set up the clients");
        abort_run(b);
        return;
    }
    if (!expected && b->phase != BENCH_PH_STORM_CLOSE)
        bench_error(b, "%s %u lost its connection",
                    c->role == BENCH_ROLE_PUB   ? "publisher"
                    : c->role == BENCH_ROLE_SUB ? "subscriber"
                                                : "connection",
                    c->idx);
    b->closed++;
    if (b->phase == BENCH_PH_WARMUP || b->phase == BENCH_PH_MEASURE || b->phase == BENCH_PH_DRAIN ||
        b->phase == BENCH_PH_RECONNECT) {
        /* Nothing left to measure once every connection is gone. */
        if (b->nopen == 0) {
            if (b->phase == BENCH_PH_WARMUP || b->phase == BENCH_PH_MEASURE) end_measure(b);
            b->t_drain_end = now_ns();
            teardown(b);
            return;
        }
        /* A connection lost mid-run ends the publishing; the rest drains as usual. */
        if (b->phase == BENCH_PH_WARMUP || b->phase == BENCH_PH_MEASURE) {
            end_measure(b);
            check_drain(b);
        }
    }
    if (b->phase == BENCH_PH_OFFLINE && b->closed == b->nsubs) {
        start_timer_s(b, b->o.offline_s);
    } else if (b->phase == BENCH_PH_TEARDOWN || b->phase == BENCH_PH_STORM_CLOSE) {
        if (b->nopen == 0) {
            if (b->phase == BENCH_PH_STORM_CLOSE) b->t_close1 = now_ns();
            b->phase = BENCH_PH_DONE;
            stop_all(b);
        }
    } else if (b->phase == BENCH_PH_STORM_PING && c->role == BENCH_ROLE_IDLE) {
        /* A connection lost during the ping round will not answer. */
        b->ping_lost++;
        storm_check_ping(b);
    }
}

void bench_on_pong(struct bench_client *c)
{
    struct bench *b = c->b;
    if (b->phase != BENCH_PH_STORM_PING) return;
    b->pongs++;
    storm_check_ping(b);
}

void bench_on_delivery(struct bench_client *sub, const char *topic, size_t topic_len,
                       const uint8_t *payload, size_t len)
{
    struct bench *b = sub->b;
    uint64_t now = now_ns();
    sub->received++;
    b->t_last_delivery = now;
    uint32_t hdr[4];
    uint64_t seq, ts;
    if (len < BENCH_PAYLOAD_MIN) {
        b->misrouted++;
        return;
    }
    memcpy(hdr, payload, sizeof hdr);
    memcpy(&seq, payload + 16, 8);
    memcpy(&ts, payload + 24, 8);
    uint32_t pi = hdr[2];
    if (hdr[0] != BENCH_MAGIC || hdr[1] != b->run_id || pi < sub->first_pub ||
        pi >= sub->first_pub + sub->npubs || pi >= b->npubs) {
        b->misrouted++;
        return;
    }
    struct bench_client *p = &b->pubs[pi];
    if (topic_len != p->topic_len || memcmp(topic, p->topic, topic_len) != 0 || seq >= p->sent) {
        b->misrouted++;
        return;
    }
    p->delivered++;
    p->last_progress_ns = now;
    int rc = bench_seq_add(&sub->seqs[pi - sub->first_pub], seq);
    if (rc < 0) bench_error(b, "out of memory");
    if (rc <= 0) return;
    uint64_t lat = now > ts ? now - ts : 0;
    /* With --count the window runs until the last message arrived. */
    if (b->phase == BENCH_PH_MEASURE ||
        (b->o.count && (b->phase == BENCH_PH_DRAIN || b->phase == BENCH_PH_RECONNECT))) {
        b->win_received++;
        bench_hist_add(&b->hist, lat);
    }
    if (b->t_start && now >= b->t_start) {
        uint64_t sec = (now - b->t_start) / NS_PER_S;
        if (sec < b->nsecs) {
            b->secs[sec].received++;
            b->secs[sec].lat_sum_ns += lat;
            if (lat > b->secs[sec].lat_max_ns) b->secs[sec].lat_max_ns = lat;
        }
    }
}

/* ---- live progress ---- */

static const char *phase_name(enum bench_phase ph)
{
    static const char *const names[] = {"setup", "offline",   "warm-up", "measure",
                                        "drain", "reconnect", "closing", "connect",
                                        "hold",  "ping",      "close",   "done"};
    return names[ph];
}

static void progress_cb(uv_timer_t *t)
{
    struct bench *b = t->data;
    uint64_t now = now_ns();
    uint64_t sent = 0, recv = 0, out = 0;
    for (uint32_t i = 0; i < b->npubs; i++) {
        sent += b->pubs[i].sent;
        out += pub_outstanding(&b->pubs[i]);
    }
    for (uint32_t i = 0; i < b->nsubs; i++)
        recv += b->subs[i].received;
    double dt = (double)(now - b->prog_t) / 1e9;
    if (dt <= 0) dt = 1;
    if (b->nidle > 0) {
        uint32_t live = 0;
        for (uint32_t i = 0; i < b->nidle; i++)
            live += b->idle[i].state == BENCH_CS_READY;
        fprintf(stderr, "\r\033[K[%6.1fs] %-9s connected %u/%u  failed %u  errors %llu",
                (double)(now - b->prog_t0) / 1e9, phase_name(b->phase), live, b->nidle, b->failed,
                (unsigned long long)b->errors);
    } else {
        fprintf(stderr,
                "\r\033[K[%6.1fs] %-9s sent %9.0f/s  recv %9.0f/s  in flight %6llu  errors %llu",
                (double)(now - b->prog_t0) / 1e9, phase_name(b->phase),
                (double)(sent - b->prog_sent) / dt, (double)(recv - b->prog_recv) / dt,
                (unsigned long long)out, (unsigned long long)b->errors);
    }
    b->prog_sent = sent;
    b->prog_recv = recv;
    b->prog_t = now;
}

/* ---- results ---- */

static double secs_between(uint64_t a, uint64_t b)
{
    return b > a ? (double)(b - a) / 1e9 : 0.0;
}

static void compute_result(struct bench *b, struct bench_result *r)
{
    memset(r, 0, sizeof *r);
    r->errors = b->errors;
    r->misrouted = b->misrouted;
    r->stalls = b->stalls;
    for (uint32_t i = 0; i < b->npubs; i++) {
        r->sent += b->pubs[i].sent;
        r->acked += b->pubs[i].acked;
    }
    for (uint32_t i = 0; i < b->nsubs; i++) {
        struct bench_client *s = &b->subs[i];
        r->received += s->received;
        for (uint32_t k = 0; k < s->npubs; k++) {
            const struct bench_seq *q = &s->seqs[k];
            const struct bench_client *p = &b->pubs[s->first_pub + k];
            r->unique += q->unique;
            r->dups += q->dups;
            r->reordered += q->reordered;
            if (pub_owed(b, p) > q->unique) r->lost += pub_owed(b, p) - q->unique;
        }
    }
    r->window_s = secs_between(b->t_measure, b->t_measure_end);
    if (r->window_s > 0) {
        r->sent_per_s = (double)b->win_sent / r->window_s;
        r->msgs_per_s = (double)b->win_received / r->window_s;
    }
    r->p50_ns = bench_hist_quantile(&b->hist, 0.50);
    r->p90_ns = bench_hist_quantile(&b->hist, 0.90);
    r->p99_ns = bench_hist_quantile(&b->hist, 0.99);
    r->p999_ns = bench_hist_quantile(&b->hist, 0.999);
    r->max_ns = b->hist.max;
    r->mean_ns = b->hist.count ? (double)b->hist.sum / (double)b->hist.count : 0;
    if (b->o.scenario != BENCH_STORM && b->proc0.ok && b->proc1.ok && b->win_received > 0) {
        r->have_cpu = true;
        r->cpu_us_per_msg = (double)(b->proc1.cpu_us - b->proc0.cpu_us) / (double)b->win_received;
        r->rss_kb_start = (double)b->proc0.rss_kb;
        r->rss_kb_end = (double)b->proc1.rss_kb;
    }
    if (b->o.scenario == BENCH_STORM) {
        r->connected = b->nidle - b->failed;
        double ct = secs_between(b->t_conn0, b->t_conn1);
        if (ct > 0) r->connects_per_s = (double)r->connected / ct;
        double pt = secs_between(b->t_ping0, b->t_ping1);
        if (pt > 0) r->pings_per_s = (double)b->pongs / pt;
        double xt = secs_between(b->t_close0, b->t_close1);
        if (xt > 0) r->closes_per_s = (double)r->connected / xt;
        if (b->proc_c0.ok && b->proc_c1.ok && b->proc_rss1.ok && r->connected > 0) {
            r->have_cpu = true;
            r->cpu_us_per_connect =
                (double)(b->proc_c1.cpu_us - b->proc_c0.cpu_us) / (double)r->connected;
            r->rss_kb_start = (double)b->proc_c0.rss_kb;
            r->rss_kb_end = (double)b->proc_rss1.rss_kb;
            r->rss_bytes_per_conn = ((double)b->proc_rss1.rss_kb - (double)b->proc_c0.rss_kb) *
                                    1024.0 / (double)r->connected;
        }
    }
    r->exit_status = 0;
    if (b->errors > 0 || b->failed > 0) r->exit_status = 1;
    if (b->o.scenario != BENCH_STORM) {
        if (b->misrouted > 0 || (b->o.qos >= 1 && (r->lost > 0 || r->dups > 0))) r->exit_status = 2;
        /* A broker that keeps the connection but never acknowledges fails as well. */
        if (b->o.qos >= 1 && r->sent > r->acked && r->errors == 0) r->exit_status = 2;
    }
}

/* ---- set-up ---- */

static int parse_addrs(struct bench_opts *o, const char *list, int default_port)
{
    char *copy = strdup(list);
    if (!copy) return -ENOMEM;
    int n = 1;
    for (const char *q = list; *q; q++)
        n += *q == ',';
    o->addrs = calloc((size_t)n, sizeof *o->addrs);
    if (!o->addrs) {
        free(copy);
        return -ENOMEM;
    }
    o->naddrs = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int port = default_port;
        char *colon = strrchr(tok, ':');
        if (colon) {
            *colon = 0;
            port = atoi(colon + 1);
        }
        if (strcmp(tok, "localhost") == 0) tok = "127.0.0.1";
        struct bench_addr *a = &o->addrs[o->naddrs];
        if (port <= 0 || port > 65535 || uv_ip4_addr(tok, port, &a->sa) != 0) {
            fprintf(stderr, "starling-bench: bad broker address '%s' (IPv4 address[:port])\n", tok);
            free(copy);
            return -EINVAL;
        }
        snprintf(a->text, sizeof a->text, "%s:%d", tok, port);
        o->naddrs++;
    }
    free(copy);
    return o->naddrs > 0 ? 0 : -EINVAL;
}

static int raise_nofile(uint64_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -errno;
    if (rl.rlim_cur >= need) return 0;
    if (rl.rlim_max < need) {
        struct rlimit want = {.rlim_cur = need, .rlim_max = need};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) return 0;
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        return -EMFILE;
    }
    rl.rlim_cur = need;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0 ? 0 : -errno;
}

static int init_clients(struct bench *b)
{
    struct bench_opts *o = &b->o;
    uint32_t n = o->clients;
    uint32_t np = 0, ns = 0;
    switch (o->scenario) {
    case BENCH_FANIN:
        np = n;
        ns = 1;
        break;
    case BENCH_FANOUT:
        np = 1;
        ns = n;
        break;
    case BENCH_PAIRWISE:
    case BENCH_LATENCY:
        np = ns = n;
        break;
    case BENCH_STORM:
        b->nidle = n;
        break;
    }
    b->npubs = np;
    b->nsubs = ns;
    b->pubs = calloc(np ? np : 1, sizeof *b->pubs);
    b->subs = calloc(ns ? ns : 1, sizeof *b->subs);
    b->idle = calloc(b->nidle ? b->nidle : 1, sizeof *b->idle);
    b->cq = calloc(np + ns + b->nidle + 1, sizeof *b->cq);
    if (!b->pubs || !b->subs || !b->idle || !b->cq) return -ENOMEM;
    for (uint32_t i = 0; i < np; i++) {
        struct bench_client *p = &b->pubs[i];
        p->b = b;
        p->idx = i;
        p->role = BENCH_ROLE_PUB;
        p->server_recv_max = 65535;
        p->addr_idx = (uint16_t)(i % (uint32_t)o->naddrs);
        p->topic_len = (uint8_t)snprintf(p->topic, sizeof p->topic, "bench/%08x/%u", b->run_id,
                                         o->scenario == BENCH_FANOUT ? 0 : i);
        p->receivers = o->scenario == BENCH_FANOUT ? ns : 1;
        p->payload = malloc(o->size);
        if (!p->payload) return -ENOMEM;
        for (uint32_t k = 0; k < o->size; k++)
            p->payload[k] = (uint8_t)('a' + k % 26);
        if (o->rate > 0) p->offset_ns = (uint64_t)(1e9 / (o->rate / np) * i / np);
    }
    for (uint32_t i = 0; i < ns; i++) {
        struct bench_client *s = &b->subs[i];
        s->b = b;
        s->idx = i;
        s->role = BENCH_ROLE_SUB;
        s->persistent = o->sub_offline || o->persistent;
        switch (o->scenario) {
        case BENCH_FANIN:
            s->first_pub = 0;
            s->npubs = np;
            s->addr_idx = 0;
            s->topic_len = (uint8_t)snprintf(s->topic, sizeof s->topic, "bench/%08x/+", b->run_id);
            break;
        case BENCH_FANOUT:
            s->first_pub = 0;
            s->npubs = 1;
            s->addr_idx = (uint16_t)(i % (uint32_t)o->naddrs);
            s->topic_len = (uint8_t)snprintf(s->topic, sizeof s->topic, "bench/%08x/0", b->run_id);
            break;
        default:
            /* With several brokers a pair spans two of them. */
            s->first_pub = i;
            s->npubs = 1;
            s->addr_idx = (uint16_t)((i + 1) % (uint32_t)o->naddrs);
            s->topic_len =
                (uint8_t)snprintf(s->topic, sizeof s->topic, "bench/%08x/%u", b->run_id, i);
            break;
        }
        s->seqs = calloc(s->npubs, sizeof *s->seqs);
        if (!s->seqs) return -ENOMEM;
    }
    for (uint32_t i = 0; i < b->nidle; i++) {
        struct bench_client *c = &b->idle[i];
        c->b = b;
        c->idx = i;
        c->role = BENCH_ROLE_IDLE;
        c->addr_idx = (uint16_t)(i % (uint32_t)o->naddrs);
    }
    return 0;
}

static int parse_scenario(const char *s, enum bench_scenario *out)
{
    static const struct {
        const char *name;
        enum bench_scenario sc;
    } tab[] = {{"fanin", BENCH_FANIN},
               {"fanout", BENCH_FANOUT},
               {"pairwise", BENCH_PAIRWISE},
               {"latency", BENCH_LATENCY},
               {"storm", BENCH_STORM}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        if (strcmp(s, tab[i].name) == 0) {
            *out = tab[i].sc;
            return 0;
        }
    }
    return -EINVAL;
}

static bool parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

enum {
    OPT_TLS = 256,
    OPT_CAFILE,
    OPT_PID,
    OPT_JSON,
    OPT_PLOT,
    OPT_QUIET,
    OPT_DRAIN,
    OPT_SUB_OFFLINE,
    OPT_PERSISTENT,
    OPT_CONNECT_WINDOW,
    OPT_SRC_IPS,
    OPT_LABEL,
};

/* Returns 0, or the exit status to leave with. */
static int parse_options(struct bench_opts *o, int argc, char **argv)
{
    static const struct option longs[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"qos", required_argument, NULL, 'q'},
        {"size", required_argument, NULL, 's'},
        {"clients", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"drain", required_argument, NULL, OPT_DRAIN},
        {"rate", required_argument, NULL, 'r'},
        {"window", required_argument, NULL, 'W'},
        {"count", required_argument, NULL, 'n'},
        {"mqtt", required_argument, NULL, 'V'},
        {"username", required_argument, NULL, 'u'},
        {"password", required_argument, NULL, 'P'},
        {"keepalive", required_argument, NULL, 'k'},
        {"tls", no_argument, NULL, OPT_TLS},
        {"cafile", required_argument, NULL, OPT_CAFILE},
        {"pid", required_argument, NULL, OPT_PID},
        {"json", no_argument, NULL, OPT_JSON},
        {"plot", required_argument, NULL, OPT_PLOT},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"sub-offline", required_argument, NULL, OPT_SUB_OFFLINE},
        {"persistent", no_argument, NULL, OPT_PERSISTENT},
        {"connect-window", required_argument, NULL, OPT_CONNECT_WINDOW},
        {"src-ips", required_argument, NULL, OPT_SRC_IPS},
        {"label", required_argument, NULL, OPT_LABEL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *hosts = "127.0.0.1";
    int port = 0;
    double v;
    bool have_clients = false, have_rate = false, have_ka = false;
    bool have_cw = false, have_src = false, have_dur = false;

    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
            usage(stdout);
            return -1;
        }
        usage(stderr);
        return 1;
    }
    if (parse_scenario(argv[1], &o->scenario) != 0) {
        fprintf(stderr, "starling-bench: unknown scenario '%s'\n", argv[1]);
        usage(stderr);
        return 1;
    }
    o->qos = 0;
    o->size = 64;
    o->duration_s = 5;
    o->warmup_s = 1;
    o->drain_s = 10;
    o->window = 64;
    o->version = MQTT_V311;
    o->offline_s = 0;
    o->keepalive_s = 60;
    o->connect_window = 64;

    optind = 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "H:p:q:s:c:d:w:r:W:n:V:u:P:k:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'H':
            hosts = optarg;
            break;
        case 'p':
            if (!parse_num(optarg, 1, 65535, &v)) goto bad;
            port = (int)v;
            break;
        case 'q':
            if (!parse_num(optarg, 0, 2, &v) || v != (int)v) goto bad;
            o->qos = (int)v;
            break;
        case 's':
            if (!parse_num(optarg, BENCH_PAYLOAD_MIN, 256 * 1024 * 1024, &v)) goto bad;
            o->size = (uint32_t)v;
            break;
        case 'c':
            if (!parse_num(optarg, 1, 10000000, &v)) goto bad;
            o->clients = (uint32_t)v;
            have_clients = true;
            break;
        case 'd':
            if (!parse_num(optarg, 0.01, 86400, &v)) goto bad;
            o->duration_s = v;
            have_dur = true;
            break;
        case 'w':
            if (!parse_num(optarg, 0, 86400, &v)) goto bad;
            o->warmup_s = v;
            break;
        case OPT_DRAIN:
            if (!parse_num(optarg, 0.01, 86400, &v)) goto bad;
            o->drain_s = v;
            break;
        case 'r':
            if (!parse_num(optarg, 0, 1e9, &v)) goto bad;
            o->rate = v;
            have_rate = true;
            break;
        case 'W':
            if (!parse_num(optarg, 1, 65000, &v)) goto bad;
            o->window = (uint32_t)v;
            break;
        case 'n':
            if (!parse_num(optarg, 1, 1e15, &v)) goto bad;
            o->count = (uint64_t)v;
            break;
        case 'V':
            if (strcmp(optarg, "311") == 0 || strcmp(optarg, "3.1.1") == 0 ||
                strcmp(optarg, "4") == 0)
                o->version = MQTT_V311;
            else if (strcmp(optarg, "5") == 0 || strcmp(optarg, "5.0") == 0)
                o->version = MQTT_V5;
            else
                goto bad;
            break;
        case 'u':
            o->username = optarg;
            break;
        case 'P':
            o->password = optarg;
            break;
        case 'k':
            if (!parse_num(optarg, 0, 65535, &v)) goto bad;
            o->keepalive_s = (uint16_t)v;
            have_ka = true;
            break;
        case OPT_TLS:
            o->tls = true;
            break;
        case OPT_CAFILE:
            o->cafile = optarg;
            break;
        case OPT_PID: {
            char *end;
            const char *q = optarg;
            o->npids = 0;
            while (*q) {
                long pid = strtol(q, &end, 10);
                if (end == q || pid <= 0 || o->npids == 16) goto bad;
                o->pids[o->npids++] = (int)pid;
                q = *end == ',' ? end + 1 : end;
                if (*end && *end != ',') goto bad;
            }
            break;
        }
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_PLOT:
            o->plot = optarg;
            break;
        case OPT_QUIET:
            o->quiet = true;
            break;
        case OPT_SUB_OFFLINE:
            if (!parse_num(optarg, 0, 86400, &v)) goto bad;
            o->sub_offline = true;
            o->offline_s = v;
            break;
        case OPT_PERSISTENT:
            o->persistent = true;
            break;
        case OPT_CONNECT_WINDOW:
            if (!parse_num(optarg, 1, 1e6, &v)) goto bad;
            o->connect_window = (uint32_t)v;
            have_cw = true;
            break;
        case OPT_SRC_IPS:
            if (!parse_num(optarg, 0, 65534, &v)) goto bad;
            o->src_ips = (uint32_t)v;
            have_src = true;
            break;
        case OPT_LABEL:
            o->label = optarg;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "starling-bench: unexpected argument '%s'\n", argv[optind]);
        return 1;
    }
    if (o->cafile && !o->tls) {
        fprintf(stderr, "starling-bench: --cafile needs --tls\n");
        return 1;
    }
    if (port == 0) port = o->tls ? 8883 : 1883;
    if (parse_addrs(o, hosts, port) != 0) return 1;
    if (o->password && !o->username && o->version == MQTT_V311) {
        fprintf(stderr, "starling-bench: MQTT 3.1.1 needs a username with a password\n");
        return 1;
    }
    if (!have_clients) {
        static const uint32_t defaults[] = {[BENCH_FANIN] = 4,
                                            [BENCH_FANOUT] = 4,
                                            [BENCH_PAIRWISE] = 4,
                                            [BENCH_LATENCY] = 4,
                                            [BENCH_STORM] = 1000};
        o->clients = defaults[o->scenario];
    }
    if (o->scenario == BENCH_LATENCY && !have_rate) o->rate = 10000;
    if (o->scenario == BENCH_STORM) {
        if (!have_ka) o->keepalive_s = 600;
        if (!have_cw) o->connect_window = 100;
        if (!have_src) o->src_ips = (o->clients + 1999) / 2000;
        if (!have_dur) o->duration_s = 1;
    }
    if (o->sub_offline && o->scenario == BENCH_STORM) {
        fprintf(stderr, "starling-bench: --sub-offline needs publishers and subscribers\n");
        return 1;
    }
    o->progress = !o->quiet && !o->json && isatty(STDERR_FILENO);
    return 0;
bad:
    fprintf(stderr, "starling-bench: bad value '%s' for an option\n", optarg ? optarg : "");
    return 1;
}

int main(int argc, char **argv)
{
    struct bench *b = &bench_state;
    int rc = parse_options(&b->o, argc, argv);
    if (rc != 0) return rc < 0 ? 0 : rc;

    uint64_t seed = uv_hrtime() ^ ((uint64_t)getpid() << 32);
    seed ^= seed >> 29;
    seed *= 0xbf58476d1ce4e5b9ull;
    b->run_id = (uint32_t)(seed ^ (seed >> 32));
    if (b->o.rate > 0 && b->o.scenario != BENCH_STORM &&
        b->o.rate / (b->o.scenario == BENCH_FANOUT ? 1 : b->o.clients) > 1e7) {
        fprintf(stderr, "starling-bench: rate too high\n");
        return 1;
    }
    if (init_clients(b) != 0) {
        fprintf(stderr, "starling-bench: out of memory\n");
        return 1;
    }
    uint64_t fds = (uint64_t)b->npubs + b->nsubs + b->nidle + 64;
    if (raise_nofile(fds) != 0) {
        fprintf(stderr,
                "starling-bench: cannot raise the open-file limit to %llu (ulimit -n, or run "
                "as root)\n",
                (unsigned long long)fds);
        return 1;
    }
    double total_s = b->o.warmup_s + b->o.duration_s + b->o.drain_s + 2;
    if (b->o.count) total_s += 3600;
    b->nsecs = (uint32_t)(total_s + 1);
    if (b->nsecs > 100000) b->nsecs = 100000;
    b->secs = calloc(b->nsecs, sizeof *b->secs);
    if (!b->secs) {
        fprintf(stderr, "starling-bench: out of memory\n");
        return 1;
    }

    if (b->o.tls && client_tls_init(b) != 0) return 1;

    b->loop = uv_default_loop();
    uv_check_init(b->loop, &b->pump);
    b->pump.data = b;
    uv_check_start(&b->pump, pump_cb);
    uv_timer_init(b->loop, &b->phase_timer);
    b->phase_timer.data = b;
    uv_timer_init(b->loop, &b->tick);
    b->tick.data = b;
    uv_timer_start(&b->tick, tick_cb, 1, b->o.rate > 0 ? 1 : 100);
    b->rate_fd = -1;
    uv_timer_init(b->loop, &b->progress);
    b->progress.data = b;
    b->prog_t = b->prog_t0 = now_ns();
    if (b->o.progress) uv_timer_start(&b->progress, progress_cb, 1000, 1000);

    if (b->o.scenario == BENCH_STORM) {
        set_phase(b, BENCH_PH_STORM_CONNECT);
        bench_proc_sample(b->o.pids, b->o.npids, &b->proc_c0);
        b->t_conn0 = now_ns();
        connect_group(b, b->idle, b->nidle);
    } else {
        set_phase(b, BENCH_PH_SETUP);
        connect_group(b, b->subs, b->nsubs);
    }
    uv_run(b->loop, UV_RUN_DEFAULT);
    if (b->o.progress) fputs("\r\033[K", stderr);

    struct bench_result r;
    compute_result(b, &r);
    if (b->o.json) {
        report_table(b, &r, stderr);
        report_json(b, &r, stdout);
    } else {
        report_table(b, &r, stdout);
    }
    if (b->o.plot && b->o.scenario != BENCH_STORM && report_plot(b, &r, b->o.plot) != 0 &&
        r.exit_status == 0)
        r.exit_status = 1;

    for (uint32_t i = 0; i < b->npubs; i++)
        client_free(&b->pubs[i]);
    for (uint32_t i = 0; i < b->nsubs; i++)
        client_free(&b->subs[i]);
    for (uint32_t i = 0; i < b->nidle; i++)
        client_free(&b->idle[i]);
    free(b->pubs);
    free(b->subs);
    free(b->idle);
    free(b->cq);
    free(b->secs);
    free(b->o.addrs);
    client_tls_free(b);
    uv_loop_close(b->loop);
    return r.exit_status;
}
