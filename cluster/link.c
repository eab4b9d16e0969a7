/* Node links (link.h). */
#include "link.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>

#include "hello.h"

#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 5000u
#define FRAME_HEADER   5u

struct link_peer {
    struct link_peer *next;
    struct link *l;
    uint64_t id;
    char *address;
    uv_tcp_t *out;
    struct port_dial *dial;
    uv_timer_t timer; /* reconnect backoff */
    unsigned backoff_ms;
    bool up, removed;
    int refs; /* timer, out stream, dial, writes in flight */
    uint8_t *pend;
    size_t pend_len, pend_cap;
    size_t inflight_bytes;
    struct cluster_link_stats st;
    uint64_t last_heard_ms;
};

/* An accepted (incoming) link connection. */
struct link_in {
    struct link_in *next, *prev;
    struct link *l;
    uint64_t from;
    uv_tcp_t *tcp;
    uint8_t *buf;
    size_t len, cap;
};

struct link_write {
    uv_write_t w;
    struct link_peer *p;
    uint8_t *buf;
    size_t len;
};

struct link {
    uv_loop_t *loop;
    struct port *port;
    size_t queue_max;
    unsigned ping_ms;
    struct link_hooks hooks;
    struct link_peer *peers;
    struct link_in *ins;
    uv_timer_t ping;
    int refs; /* ping timer, peers, incoming connections */
    bool closing;
    void (*close_cb)(void *);
    void *close_data;
};

static void link_logf(const struct link *l, enum cluster_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void link_logf(const struct link *l, enum cluster_log_level level, const char *fmt, ...)
{
    if (!l->hooks.log) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    l->hooks.log(l->hooks.log_ctx, level, line);
}

static void link_unref(struct link *l)
{
    if (--l->refs > 0 || !l->closing) return;
    void (*cb)(void *) = l->close_cb;
    void *data = l->close_data;
    free(l);
    if (cb) cb(data);
}

static struct link_peer *peer_find(const struct link *l, uint64_t id)
{
    for (struct link_peer *p = l->peers; p; p = p->next)
        if (p->id == id && !p->removed) return p;
    return NULL;
}

static void peer_unref(struct link_peer *p)
{
    if (--p->refs > 0) return;
    struct link *l = p->l;
    free(p->address);
    free(p->pend);
    free(p);
    link_unref(l);
}

/* ---- outgoing ---- */

static void peer_dial(struct link_peer *p);

static void peer_timer_cb(uv_timer_t *t)
{
    peer_dial(t->data);
}

static void out_closed(uv_handle_t *h)
{
    struct link_peer *p = h->data;
    raft_free(h);
    peer_unref(p);
}

static void peer_down(struct link_peer *p, const char *why)
{
    struct link *l = p->l;
    bool was_up = p->up;
    p->up = false;
    if (p->out) {
        uv_close((uv_handle_t *)p->out, out_closed);
        p->out = NULL;
    }
    if (was_up) {
        link_logf(l, CLUSTER_LOG_NOTICE, "link to node %llu (%s) down: %s",
                  (unsigned long long)p->id, p->address, why);
        if (l->hooks.state) l->hooks.state(l->hooks.ctx, p->id, false);
    }
    /* Frames that were never written stay in pend; QoS 0 among them stays too (it was
     * accepted while the link was up). Reconnect after the backoff. */
    if (!p->removed && !l->closing) {
        uv_timer_start(&p->timer, peer_timer_cb, p->backoff_ms, 0);
        p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
    }
}

static void out_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char sink[64];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(sink, sizeof sink);
}

static void out_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct link_peer *p = s->data;
    (void)buf;
    if (nread >= 0) return; /* the peer never writes on our connection */
    peer_down(p, nread == UV_EOF ? "closed by the peer" : uv_strerror((int)nread));
}

static void dial_cb(void *data, int status, uv_tcp_t *stream, uint64_t peer_id)
{
    struct link_peer *p = data;
    struct link *l = p->l;
    p->dial = NULL;
    if (status == 0 && (p->removed || l->closing)) {
        port_stream_close(stream);
        status = -ECANCELED;
    } else if (status == 0 && peer_id != p->id) {
        link_logf(l, CLUSTER_LOG_WARNING, "link to %s: node %llu answered, expected node %llu",
                  p->address, (unsigned long long)peer_id, (unsigned long long)p->id);
        port_stream_close(stream);
        status = -EINVAL;
    }
    if (status != 0) {
        if (status != -ECANCELED) {
            if (p->st.connects == 0 || p->backoff_ms >= BACKOFF_MAX_MS)
                link_logf(l, CLUSTER_LOG_DEBUG, "link to node %llu (%s): %s",
                          (unsigned long long)p->id, p->address, uv_strerror(status));
            peer_down(p, uv_strerror(status));
        }
        peer_unref(p);
        return;
    }
    /* The dial's reference becomes the stream's. */
    p->out = stream;
    stream->data = p;
    p->up = true;
    p->backoff_ms = BACKOFF_MIN_MS;
    p->st.connects++;
    uv_read_start((uv_stream_t *)stream, out_alloc_cb, out_read_cb);
    link_logf(l, CLUSTER_LOG_NOTICE, "link to node %llu (%s) up", (unsigned long long)p->id,
              p->address);
    if (l->hooks.state) l->hooks.state(l->hooks.ctx, p->id, true);
    if (p->pend_len && l->hooks.kick) l->hooks.kick(l->hooks.ctx);
}

static void peer_dial(struct link_peer *p)
{
    if (p->removed || p->l->closing || p->dial || p->out) return;
    int rc = port_dial(p->l->port, p->address, HELLO_CHANNEL_LINK, dial_cb, p, &p->dial);
    if (rc != 0) {
        link_logf(p->l, CLUSTER_LOG_WARNING, "link to node %llu: cannot dial %s: %s",
                  (unsigned long long)p->id, p->address, uv_strerror(rc));
        p->dial = NULL;
        uv_timer_start(&p->timer, peer_timer_cb, BACKOFF_MAX_MS, 0);
        return;
    }
    p->refs++;
}

static void peer_timer_closed(uv_handle_t *h)
{
    peer_unref(h->data);
}

static void peer_remove(struct link_peer *p)
{
    p->removed = true;
    if (p->dial) {
        port_dial_cancel(p->dial); /* its callback never fires now: drop its reference here */
        p->dial = NULL;
        p->refs--;
    }
    p->up = false;
    if (p->out) {
        uv_close((uv_handle_t *)p->out, out_closed);
        p->out = NULL;
    }
    uv_close((uv_handle_t *)&p->timer, peer_timer_closed);
}

static int peer_add(struct link *l, uint64_t id, const char *address)
{
    struct link_peer *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    p->address = strdup(address);
    if (!p->address) {
        free(p);
        return -ENOMEM;
    }
    p->l = l;
    p->id = id;
    p->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_init(l->loop, &p->timer);
    p->timer.data = p;
    p->refs = 1; /* the timer */
    l->refs++;
    p->next = l->peers;
    l->peers = p;
    peer_dial(p);
    return 0;
}

int link_set_peers(struct link *l, const uint64_t *ids, const char *const *addresses, size_t n)
{
    /* Drop the gone and the moved. */
    struct link_peer **pp = &l->peers;
    while (*pp) {
        struct link_peer *p = *pp;
        bool keep = false;
        for (size_t i = 0; i < n && !p->removed; i++)
            if (ids[i] == p->id && strcmp(addresses[i], p->address) == 0) keep = true;
        if (!keep) {
            *pp = p->next;
            if (!p->removed) peer_remove(p);
            continue;
        }
        pp = &p->next;
    }
    for (size_t i = 0; i < n; i++) {
        if (peer_find(l, ids[i])) continue;
        int rc = peer_add(l, ids[i], addresses[i]);
        if (rc != 0) return rc;
    }
    return 0;
}

static void write_cb(uv_write_t *w, int status)
{
    struct link_write *lw = (struct link_write *)w;
    struct link_peer *p = lw->p;
    p->inflight_bytes -= lw->len;
    free(lw->buf);
    free(lw);
    if (status < 0 && p->out && !p->removed) peer_down(p, uv_strerror(status));
    peer_unref(p);
}

static void peer_flush(struct link_peer *p)
{
    if (!p->up || !p->out || p->pend_len == 0) return;
    struct link_write *lw = malloc(sizeof *lw);
    if (!lw) return; /* stays gathered; the next iteration tries again */
    lw->p = p;
    lw->buf = p->pend;
    lw->len = p->pend_len;
    uv_buf_t b = uv_buf_init((char *)lw->buf, (unsigned)lw->len);
    int rc = uv_write(&lw->w, (uv_stream_t *)p->out, &b, 1, write_cb);
    if (rc != 0) {
        free(lw);
        peer_down(p, uv_strerror(rc));
        return;
    }
    p->refs++;
    p->inflight_bytes += lw->len;
    p->st.writes++;
    p->st.bytes_sent += lw->len;
    p->pend = NULL;
    p->pend_len = p->pend_cap = 0;
}

void link_flush(struct link *l)
{
    for (struct link_peer *p = l->peers; p; p = p->next)
        if (!p->removed) peer_flush(p);
}

int link_send(struct link *l, uint64_t peer_id, uint8_t type, const void *buf, size_t len,
              unsigned flags)
{
    if (len + 1 > LINK_FRAME_MAX) return -EMSGSIZE;
    struct link_peer *p = peer_find(l, peer_id);
    if (!p) return -ENOENT;
    size_t need = FRAME_HEADER + len;
    bool sheddable = flags & LINK_F_SHEDDABLE;
    if ((sheddable && !p->up) || p->pend_len + p->inflight_bytes + need > l->queue_max) {
        if (sheddable)
            p->st.shed++;
        else
            p->st.refused++;
        return -ENOBUFS;
    }
    if (p->pend_len + need > p->pend_cap) {
        size_t cap = p->pend_cap ? p->pend_cap : 4096;
        while (cap < p->pend_len + need)
            cap *= 2;
        uint8_t *nb = realloc(p->pend, cap);
        if (!nb) return -ENOMEM;
        p->pend = nb;
        p->pend_cap = cap;
    }
    uint8_t *o = p->pend + p->pend_len;
    uint32_t flen = (uint32_t)(len + 1);
    o[0] = (uint8_t)(flen >> 24);
    o[1] = (uint8_t)(flen >> 16);
    o[2] = (uint8_t)(flen >> 8);
    o[3] = (uint8_t)flen;
    o[4] = type;
    if (len) memcpy(o + FRAME_HEADER, buf, len);
    p->pend_len += need;
    p->st.frames_sent++;
    if (p->up && l->hooks.kick) l->hooks.kick(l->hooks.ctx);
    return 0;
}

/* ---- incoming ---- */

static void in_closed(uv_handle_t *h)
{
    struct link_in *in = h->data;
    struct link *l = in->l;
    raft_free(h);
    free(in->buf);
    free(in);
    link_unref(l);
}

static void in_close(struct link_in *in)
{
    struct link *l = in->l;
    if (in->prev)
        in->prev->next = in->next;
    else
        l->ins = in->next;
    if (in->next) in->next->prev = in->prev;
    in->tcp->data = in;
    uv_close((uv_handle_t *)in->tcp, in_closed);
}

static void in_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct link_in *in = h->data;
    (void)suggested;
    if (in->cap - in->len < 65536) {
        size_t cap = in->cap ? in->cap * 2 : 131072;
        uint8_t *nb = realloc(in->buf, cap);
        if (!nb) {
            *buf = uv_buf_init(NULL, 0); /* read fails with UV_ENOBUFS */
            return;
        }
        in->buf = nb;
        in->cap = cap;
    }
    *buf = uv_buf_init((char *)in->buf + in->len, (unsigned)(in->cap - in->len));
}

static void in_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct link_in *in = s->data;
    struct link *l = in->l;
    (void)b;
    if (nread < 0) {
        in_close(in);
        return;
    }
    in->len += (size_t)nread;
    size_t off = 0;
    struct link_peer *p = peer_find(l, in->from);
    while (in->len - off >= FRAME_HEADER) {
        const uint8_t *f = in->buf + off;
        size_t flen = (size_t)f[0] << 24 | (size_t)f[1] << 16 | (size_t)f[2] << 8 | f[3];
        if (flen == 0 || flen > LINK_FRAME_MAX) {
            link_logf(l, CLUSTER_LOG_WARNING, "link from node %llu: bad frame length %zu",
                      (unsigned long long)in->from, flen);
            in_close(in);
            return;
        }
        if (in->len - off < 4 + flen) {
            /* Make room for the whole frame at once. */
            if (4 + flen > in->cap) {
                uint8_t *nb = realloc(in->buf, 4 + flen + 65536);
                if (!nb) {
                    in_close(in);
                    return;
                }
                in->buf = nb;
                in->cap = 4 + flen + 65536;
            }
            break;
        }
        if (p) {
            p->st.frames_received++;
            p->last_heard_ms = uv_now(l->loop);
        }
        l->hooks.frame(l->hooks.ctx, in->from, f[4], f + FRAME_HEADER, flen - 1);
        off += 4 + flen;
        if (l->closing) return;
    }
    if (off) {
        memmove(in->buf, in->buf + off, in->len - off);
        in->len -= off;
    }
}

void link_accept(struct link *l, uint64_t id, uv_tcp_t *stream)
{
    struct link_in *in = calloc(1, sizeof *in);
    if (!in || l->closing) {
        free(in);
        port_stream_close(stream);
        return;
    }
    in->l = l;
    in->from = id;
    in->tcp = stream;
    stream->data = in;
    in->next = l->ins;
    if (l->ins) l->ins->prev = in;
    l->ins = in;
    l->refs++;
    struct link_peer *p = peer_find(l, id);
    if (p) p->last_heard_ms = uv_now(l->loop);
    if (uv_read_start((uv_stream_t *)stream, in_alloc_cb, in_read_cb) != 0) in_close(in);
}

/* ---- pings, stats, lifecycle ---- */

static void ping_cb(uv_timer_t *t)
{
    struct link *l = t->data;
    for (struct link_peer *p = l->peers; p; p = p->next)
        if (!p->removed && p->up && p->pend_len == 0)
            link_send(l, p->id, LINK_TYPE_PING, NULL, 0, LINK_F_SHEDDABLE);
}

uint64_t link_last_heard(const struct link *l, uint64_t id)
{
    struct link_peer *p = peer_find(l, id);
    return p ? p->last_heard_ms : 0;
}

bool link_is_up(const struct link *l, uint64_t id)
{
    struct link_peer *p = peer_find(l, id);
    return p && p->up;
}

int link_peer_stats(const struct link *l, uint64_t id, struct cluster_link_stats *out)
{
    struct link_peer *p = peer_find(l, id);
    if (!p) return -ENOENT;
    *out = p->st;
    out->node_id = p->id;
    out->up = p->up;
    out->queued_bytes = p->pend_len + p->inflight_bytes;
    return 0;
}

int link_new(uv_loop_t *loop, struct port *port, size_t queue_max_bytes, unsigned ping_ms,
             const struct link_hooks *hooks, struct link **out)
{
    struct link *l = calloc(1, sizeof *l);
    if (!l) return -ENOMEM;
    l->loop = loop;
    l->port = port;
    l->queue_max = queue_max_bytes;
    l->ping_ms = ping_ms;
    l->hooks = *hooks;
    uv_timer_init(loop, &l->ping);
    l->ping.data = l;
    uv_unref((uv_handle_t *)&l->ping);
    uv_timer_start(&l->ping, ping_cb, ping_ms, ping_ms);
    l->refs = 1;
    *out = l;
    return 0;
}

static void ping_closed(uv_handle_t *h)
{
    link_unref(h->data);
}

void link_close(struct link *l, void (*cb)(void *data), void *data)
{
    l->closing = true;
    l->close_cb = cb;
    l->close_data = data;
    l->refs++; /* held while closing everything below */
    while (l->peers) {
        struct link_peer *p = l->peers;
        l->peers = p->next;
        if (!p->removed) peer_remove(p);
    }
    while (l->ins)
        in_close(l->ins);
    uv_close((uv_handle_t *)&l->ping, ping_closed);
    link_unref(l);
}
