/* Client connections: socket I/O, batching of output per loop iteration, the ordered chain of
 * deferred replies, and the one place a connection ends (see conn.h). */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core.h"
#include "handle.h"
#include "listener.h"
#include "log.h"
#include "session.h"
#include "tls.h"
#include "ws.h"

/* A TLS and/or WebSocket connection's transport state (plain TCP has none). */
struct conn_xport {
    struct tls_conn *tls; /* NULL: no TLS */
    struct ws_conn *ws;   /* NULL: no WebSocket */
    uint8_t *out;         /* transport bytes for the next uv_write */
    uint32_t olen, ocap;
    bool flushing; /* conn_x_flush() is producing output (no new flush to schedule) */
    bool shut;     /* close_notify / close frame queued */
    char why[192]; /* why the transport failed */
};

/* A uv_write in flight: the own bytes and the shared references it keeps alive. */
struct conn_wreq {
    uv_write_t req;
    struct conn *c;
    uint8_t *own;
    struct conn_seg *segs;
    uint32_t nsegs;
    uint32_t segcap;
    uint64_t bytes;
    struct conn_wreq *next_free;
};

static bool conn_id_eq(const struct htab_node *n, const void *key)
{
    const struct conn *c = (const struct conn *)((const char *)n - offsetof(struct conn, id_node));
    return c->id == *(const uint64_t *)key;
}

struct conn *conn_find(struct broker *b, uint64_t id)
{
    struct htab_node *n = htab_find(&b->conns, id, conn_id_eq, &id);
    if (!n) return NULL;
    struct conn *c = (struct conn *)((char *)n - offsetof(struct conn, id_node));
    return c->state == CONN_CLOSING ? NULL : c;
}

/* ---- bare connections ---- */

static bool conn_bare_eq(const struct htab_node *n, const void *key)
{
    const struct conn *c =
        (const struct conn *)((const char *)n - offsetof(struct conn, bare_node));
    const struct mqtt_str *k = key;
    return strlen(c->client_id) == k->len && memcmp(c->client_id, k->ptr, k->len) == 0;
}

int conn_bare_add(struct conn *c)
{
    if (htab_insert(&c->b->bare_conns, &c->bare_node,
                    htab_hash_bytes(c->client_id, strlen(c->client_id))) < 0)
        return -ENOMEM;
    c->bare = true;
    return 0;
}

struct conn *conn_bare_find(struct broker *b, const char *client_id, size_t len)
{
    struct mqtt_str key = {.ptr = client_id, .len = (uint16_t)len};
    struct htab_node *n =
        htab_find(&b->bare_conns, htab_hash_bytes(client_id, len), conn_bare_eq, &key);
    return n ? (struct conn *)((char *)n - offsetof(struct conn, bare_node)) : NULL;
}

void conn_bare_remove(struct conn *c)
{
    if (!c->bare) return;
    htab_remove(&c->b->bare_conns, &c->bare_node);
    c->bare = false;
}

/* ---- reading ---- */

/* How the connection's input parses: its protocol level once CONNECT is handled (0 before),
 * and the broker's packet size limit. */
static struct mqtt_parser conn_parser(const struct conn *c)
{
    return (struct mqtt_parser){.version = c->version,
                                .role = MQTT_ROLE_SERVER,
                                .max_packet_size = broker_max_packet_in(c->b)};
}

struct conn_ext *conn_ext(struct conn *c)
{
    if (!c->ext) c->ext = calloc(1, sizeof *c->ext);
    return c->ext;
}

/* The connection's transport, NULL for plain TCP. */
static inline struct conn_xport *conn_x(const struct conn *c)
{
    return c->ext ? c->ext->x : NULL;
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)suggested;
    buf->base = (char *)c->b->scratch;
    buf->len = BROKER_SCRATCH_SIZE;
}

/* The connection's buffers, allocated when first needed. NULL without memory. */
static struct conn_io *conn_io_get(struct conn *c)
{
    if (!c->io) c->io = calloc(1, sizeof *c->io);
    return c->io;
}

/* Frees the buffers' block once nothing is buffered, queued or being written: an idle
 * connection keeps none. Not while input is being handled (the input loop holds it). */
static void conn_io_trim(struct conn *c)
{
    struct conn_io *io = c->io;
    if (!io || c->in_input || io->rbuf || io->obuf || io->segs || io->nsegs || io->writes_active ||
        io->out_queued)
        return;
    free(io);
    c->io = NULL;
}

static uint32_t conn_writes_active(const struct conn *c)
{
    return c->io ? c->io->writes_active : 0;
}

static int conn_rbuf_reserve(struct conn *c, size_t need)
{
    if (!conn_io_get(c)) return -ENOMEM;
    if (need <= c->io->rcap) return 0;
    size_t cap = c->io->rcap ? c->io->rcap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > UINT32_MAX) return -ENOMEM;
    uint8_t *p = realloc(c->io->rbuf, cap);
    if (!p) return -ENOMEM;
    c->io->rbuf = p;
    c->io->rcap = (uint32_t)cap;
    return 0;
}

/* Frees the input buffer once it is empty: an idle connection keeps none (a partial packet
 * is rare, one allocation per read that ends inside a packet). */
static void conn_rbuf_trim(struct conn *c)
{
    if (c->io && c->io->rlen == 0 && c->io->rbuf) {
        free(c->io->rbuf);
        c->io->rbuf = NULL;
        c->io->rcap = 0;
    }
    conn_io_trim(c);
}

/* Appends bytes to the connection's own input buffer. */
static int conn_rbuf_append(struct conn *c, const uint8_t *data, size_t len)
{
    int rc = conn_rbuf_reserve(c, (c->io ? (size_t)c->io->rlen : 0) + len);
    if (rc < 0) return rc;
    memcpy(c->io->rbuf + c->io->rlen, data, len);
    c->io->rlen += (uint32_t)len;
    return 0;
}

/* Whether the bad packet at buf is an MQTT 5 PUBLISH with Topic Alias 0, which gets 0x94
 * Topic Alias invalid rather than a generic protocol error [MQTT-3.3.2-8]. */
static bool conn_publish_alias_zero(const uint8_t *buf, size_t len)
{
    if (len < 2 || (buf[0] >> 4) != MQTT_PUBLISH) return false;
    uint8_t qos = (buf[0] >> 1) & 3;
    uint32_t rl;
    int n = mqtt_varint_decode(buf + 1, len - 1, &rl);
    if (n <= 0) return false;
    const uint8_t *p = buf + 1 + n, *end = buf + len;
    if ((size_t)(end - p) > rl) end = p + rl;
    if (end - p < 2) return false;
    size_t tl = (size_t)p[0] << 8 | p[1];
    p += 2 + tl + (qos ? 2 : 0);
    if (p >= end) return false;
    uint32_t pl;
    n = mqtt_varint_decode(p, (size_t)(end - p), &pl);
    if (n <= 0) return false;
    p += n;
    if ((size_t)(end - p) < pl) return false;
    const uint8_t *pend = p + pl;
    struct mqtt_prop prop;
    while (mqtt_prop_next(&p, pend, &prop) == 1)
        if (prop.id == MQTT_PROP_TOPIC_ALIAS && prop.v.u32 == 0) return true;
    return false;
}

/* use_identity_as_username / use_subject_as_username: the certificate names the client, the
 * CONNECT's username and password are not used. Returns false when the connection was refused
 * (no usable certificate). */
static bool conn_cert_username(struct conn *c, struct mqtt_packet *pkt)
{
    bool missing;
    const char *user = tls_conn_cert_username(conn_x(c)->tls, &missing);
    if (missing) {
        c->version = pkt->u.connect.version; /* the refusal is a CONNACK in its version */
        conn_close(c, MQTT_RC_NOT_AUTHORIZED, "no client certificate name to use as username");
        return false;
    }
    if (user && strlen(user) <= UINT16_MAX) {
        pkt->u.connect.has_username = true;
        pkt->u.connect.username = MQTT_STR(user);
        pkt->u.connect.has_password = false;
    }
    return true;
}

/* Parses and handles whole packets from buf[0..len). Returns bytes consumed; stops early when
 * the connection pauses or ends. */
static size_t conn_process(struct conn *c, const uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (off < len && c->state != CONN_CLOSING && !c->paused) {
        struct mqtt_packet pkt;
        const struct mqtt_parser parser = conn_parser(c);
        enum mqtt_parse_result r = mqtt_parse(&parser, buf + off, len - off, &pkt, NULL);
        if (r == MQTT_PARSE_MORE) break;
        if (r == MQTT_PARSE_BAD) {
            char why[128];
            if (c->state == CONN_NEW && pkt.error == MQTT_ERR_BAD_PROTOCOL_VERSION) {
                /* [MQTT-3.1.2-2]: CONNACK 0x01 (unacceptable protocol version), then close. */
                static const uint8_t refuse[] = {0x20, 0x02, 0x00, 0x01};
                conn_write(c, refuse, sizeof refuse);
            }
            snprintf(why, sizeof why, "%s", mqtt_error_str(pkt.error));
            uint8_t reason = pkt.reason ? pkt.reason : MQTT_RC_MALFORMED_PACKET;
            if (c->version == MQTT_V5 && pkt.error == MQTT_ERR_PROP_VALUE &&
                conn_publish_alias_zero(buf + off, len - off)) {
                reason = MQTT_RC_TOPIC_ALIAS_INVALID;
                snprintf(why, sizeof why, "topic alias 0");
            }
            conn_close(c, reason, why);
            return len;
        }
        off += pkt.wire_len;
        c->b->stats.bytes_received += pkt.wire_len;
        c->lst->bytes_received += pkt.wire_len;
        c->b->stats.msgs_received++;
        if (pkt.type == MQTT_CONNECT && conn_x(c) && conn_x(c)->tls && !conn_cert_username(c, &pkt))
            return len;
        if (c->bare && pkt.type != MQTT_PINGREQ && session_open_bare(c) < 0) {
            conn_close(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
            return len;
        }
        handle_packet(c, &pkt);
    }
    return off;
}

/* Handles newly arrived bytes: completes a buffered partial packet first (copying only what
 * it needs), then parses the rest in place, and keeps any trailing partial packet. */
static void conn_input_run(struct conn *c, const uint8_t *data, size_t len)
{
    while (c->io && c->io->rlen > 0 && len > 0 && c->state != CONN_CLOSING) {
        if (c->paused) {
            if (conn_rbuf_append(c, data, len) < 0)
                conn_drop(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
            return;
        }
        /* How much the buffered packet still needs. */
        struct mqtt_packet pkt;
        size_t need = 0;
        const struct mqtt_parser parser = conn_parser(c);
        enum mqtt_parse_result r = mqtt_parse(&parser, c->io->rbuf, c->io->rlen, &pkt, &need);
        size_t take;
        if (r != MQTT_PARSE_MORE) {
            take = 0;
        } else if (need > 0) {
            take = need - c->io->rlen;
        } else {
            take = 1; /* fixed header still incomplete */
        }
        if (take > len) take = len;
        if (take > 0 && conn_rbuf_append(c, data, take) < 0) {
            conn_drop(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
            return;
        }
        data += take;
        len -= take;
        size_t used = conn_process(c, c->io->rbuf, c->io->rlen);
        if (used > 0) {
            memmove(c->io->rbuf, c->io->rbuf + used, c->io->rlen - used);
            c->io->rlen -= (uint32_t)used;
        }
        if (r != MQTT_PARSE_MORE && used == 0) break; /* paused or closing */
    }
    if (c->state == CONN_CLOSING || len == 0) goto trim;
    if (!c->io || c->io->rlen == 0) {
        size_t used = c->paused ? 0 : conn_process(c, data, len);
        data += used;
        len -= used;
    }
    if (len > 0 && c->state != CONN_CLOSING && conn_rbuf_append(c, data, len) < 0)
        conn_drop(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
trim:
    /* An idle connection keeps no input buffer. */
    conn_rbuf_trim(c);
}

static void conn_input(struct conn *c, const uint8_t *data, size_t len)
{
    c->in_input = true;
    conn_input_run(c, data, len);
    c->in_input = false;
}

void conn_feed(struct conn *c, const uint8_t *data, size_t len)
{
    if (c->state != CONN_CLOSING) conn_input(c, data, len);
}

/* ---- transports (TLS, WebSocket) ---- */

static void conn_schedule_flush(struct conn *c);

/* Appends transport bytes (handshake, encrypted records, frames) to the next write. */
static int conn_x_out(void *arg, const uint8_t *data, size_t len)
{
    struct conn *c = arg;
    struct conn_xport *x = conn_x(c);
    if ((size_t)x->olen + len > x->ocap) {
        size_t cap = x->ocap ? x->ocap : 1024;
        while (cap < (size_t)x->olen + len)
            cap *= 2;
        if (cap > UINT32_MAX) return -ENOMEM;
        uint8_t *p = realloc(x->out, cap);
        if (!p) return -ENOMEM;
        x->out = p;
        x->ocap = (uint32_t)cap;
    }
    memcpy(x->out + x->olen, data, len);
    x->olen += (uint32_t)len;
    if (!x->flushing) conn_schedule_flush(c);
    return 0;
}

/* WebSocket output goes through TLS when the connection has it. */
static int conn_x_ws_out(void *arg, const uint8_t *data, size_t len)
{
    struct conn *c = arg;
    if (conn_x(c)->tls) return tls_conn_write(conn_x(c)->tls, data, len) == 0 ? 0 : -ENOMEM;
    return conn_x_out(arg, data, len);
}

/* Plain MQTT bytes out of the transport. */
static int conn_x_plain(void *arg, const uint8_t *data, size_t len)
{
    struct conn *c = arg;
    conn_input(c, data, len);
    return c->state == CONN_CLOSING ? -ECONNRESET : 0;
}

static int conn_x_after_tls(void *arg, const uint8_t *data, size_t len)
{
    struct conn *c = arg;
    struct conn_xport *x = conn_x(c);
    if (!x->ws) return conn_x_plain(c, data, len);
    return ws_conn_input(x->ws, data, len, conn_x_plain, c, x->why, sizeof x->why);
}

static void conn_x_input(struct conn *c, const uint8_t *data, size_t len)
{
    struct conn_xport *x = conn_x(c);
    x->why[0] = '\0';
    int rc = x->tls ? tls_conn_input(x->tls, data, len, conn_x_after_tls, c, x->why, sizeof x->why)
                    : conn_x_after_tls(c, data, len);
    if (rc >= 0 || c->state == CONN_CLOSING) return;
    if (rc == -EPIPE) {
        /* The client closed the TLS session or the WebSocket: as a closed socket. */
        conn_drop(c, MQTT_RC_UNSPECIFIED_ERROR, NULL);
    } else if (c->state == CONN_NEW) {
        log_at(LOG_TYPE_NOTICE, "Client connection from %s refused: %s.", conn_addr(c),
               x->why[0] ? x->why : "transport error");
        conn_drop(c, MQTT_RC_UNSPECIFIED_ERROR, NULL);
    } else {
        conn_drop(c, MQTT_RC_PROTOCOL_ERROR, x->why[0] ? x->why : "transport error");
    }
}

static int conn_x_new(struct conn *c)
{
    struct listener *lst = c->lst;
    struct conn_ext *e = conn_ext(c);
    struct conn_xport *x = e ? calloc(1, sizeof *x) : NULL;
    if (!x) return -ENOMEM;
    e->x = x;
    if (lst->tls && !(x->tls = tls_conn_new(lst->tls, conn_x_out, c))) return -ENOMEM;
    if (lst->cfg->protocol == CONFIG_PROTOCOL_WEBSOCKETS) {
        /* A message holds one packet or a few: bound it as packets are (0: no limit but the
         * protocol's 256 MB). */
        size_t max = broker_max_packet_in(c->b);
        if (max == 0) max = 268435455 + 5;
        if (!(x->ws = ws_conn_new(conn_x_ws_out, c, max + 64 * 1024))) return -ENOMEM;
    }
    return 0;
}

static void conn_x_free(struct conn_xport *x)
{
    if (!x) return;
    tls_conn_free(x->tls);
    ws_conn_free(x->ws);
    free(x->out);
    free(x);
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread > 0) {
        if (conn_x(c))
            conn_x_input(c, (const uint8_t *)buf->base, (size_t)nread);
        else if (!c->in_input)
            conn_input(c, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    if (nread == 0) return;
    conn_drop(c, MQTT_RC_UNSPECIFIED_ERROR, NULL);
}

void conn_pause(struct conn *c)
{
    c->paused = true;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

void conn_resume(struct conn *c)
{
    if (c->state == CONN_CLOSING) return;
    bool was_paused = c->paused;
    c->paused = false;
    /* Inside conn_input() (a handler resumed synchronously), the input loop goes on by
     * itself: processing the buffer here would pull it from under that loop. */
    if (was_paused && !c->in_input && c->io && c->io->rlen > 0) {
        c->in_input = true;
        size_t used = conn_process(c, c->io->rbuf, c->io->rlen);
        c->in_input = false;
        if (used > 0 && c->state != CONN_CLOSING) {
            memmove(c->io->rbuf, c->io->rbuf + used, c->io->rlen - used);
            c->io->rlen -= (uint32_t)used;
            conn_rbuf_trim(c);
        }
    }
    if (c->state != CONN_CLOSING && !c->paused && !c->reading && c->detached == false) {
        if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) == 0)
            c->reading = true;
    }
}

static void conn_keepalive_cb(struct wheel_entry *e)
{
    struct conn *c = (struct conn *)((char *)e - offsetof(struct conn, keepalive));
    if (c->state == CONN_ACTIVE) {
        conn_close(c, MQTT_RC_KEEP_ALIVE_TIMEOUT, "keepalive timeout"); /* [MQTT-3.1.2-22] */
    } else if (c->state == CONN_NEW && conn_x(c) && conn_x(c)->tls &&
               !tls_conn_established(conn_x(c)->tls)) {
        log_at(LOG_TYPE_NOTICE,
               "Client connection from %s refused: TLS handshake not completed "
               "in %d s.",
               conn_addr(c), BROKER_CONNECT_TIMEOUT_S);
        conn_drop(c, MQTT_RC_MAXIMUM_CONNECT_TIME, NULL);
    } else
        conn_drop(c, MQTT_RC_MAXIMUM_CONNECT_TIME, "no CONNECT in time");
}

void conn_touch(struct conn *c)
{
    if (c->state != CONN_ACTIVE) return;
    struct broker *b = c->b;
    if (c->keepalive_s == 0)
        wheel_remove(&b->wheel, &c->keepalive);
    else
        wheel_add(&b->wheel, &c->keepalive, uv_now(b->loop) + (uint64_t)c->keepalive_s * 1500);
}

/* ---- writing ---- */

static void conn_schedule_flush(struct conn *c)
{
    if (!c->in_flush) {
        c->in_flush = true;
        c->flush_next = c->b->flush_list;
        c->b->flush_list = c;
    }
}

static int conn_seg_push(struct conn *c, struct msg *ref, uint32_t off, uint32_t len)
{
    if (!ref && c->io->nsegs > 0) {
        struct conn_seg *last = &c->io->segs[c->io->nsegs - 1];
        if (!last->ref && last->off + last->len == off) {
            last->len += len;
            return 0;
        }
    }
    if (c->io->nsegs == c->io->segcap) {
        uint32_t cap = c->io->segcap ? c->io->segcap * 2 : 8;
        struct conn_seg *s = realloc(c->io->segs, cap * sizeof *s);
        if (!s) return -ENOMEM;
        c->io->segs = s;
        c->io->segcap = cap;
    }
    c->io->segs[c->io->nsegs++] = (struct conn_seg){.ref = ref, .off = off, .len = len};
    return 0;
}

uint8_t *conn_reserve(struct conn *c, size_t len)
{
    if (c->state == CONN_CLOSING && c->closed) return NULL;
    if (!conn_io_get(c)) return NULL;
    if ((size_t)c->io->olen + len > c->io->ocap) {
        size_t cap = c->io->ocap ? c->io->ocap : 256;
        while (cap < (size_t)c->io->olen + len)
            cap *= 2;
        if (cap > UINT32_MAX) return NULL;
        uint8_t *p = realloc(c->io->obuf, cap);
        if (!p) return NULL;
        c->io->obuf = p;
        c->io->ocap = (uint32_t)cap;
    }
    if (conn_seg_push(c, NULL, c->io->olen, (uint32_t)len) < 0) return NULL;
    uint8_t *out = c->io->obuf + c->io->olen;
    c->io->olen += (uint32_t)len;
    c->io->out_queued += len;
    c->b->stats.bytes_sent += len;
    c->lst->bytes_sent += len;
    conn_schedule_flush(c);
    return out;
}

int conn_write(struct conn *c, const void *bytes, size_t len)
{
    uint8_t *p = conn_reserve(c, len);
    if (!p) return -ENOMEM;
    memcpy(p, bytes, len);
    return 0;
}

int conn_write_shared(struct conn *c, struct msg *m, const uint8_t *base, size_t len)
{
    if (c->closed) return -EPIPE;
    if (!conn_io_get(c)) return -ENOMEM;
    if (conn_seg_push(c, m, (uint32_t)(base - m->body), (uint32_t)len) < 0) return -ENOMEM;
    msg_ref(m);
    c->io->out_queued += len;
    c->b->stats.bytes_sent += len;
    c->lst->bytes_sent += len;
    conn_schedule_flush(c);
    return 0;
}

int conn_send(struct conn *c, const struct mqtt_packet *pkt)
{
    uint8_t version = c->version ? c->version : MQTT_V311;
    size_t n = mqtt_encoded_size(pkt, version);
    if (n == 0) return -EINVAL;
    if (c->max_packet_out && n > c->max_packet_out) {
        /* [MQTT-3.1.2-25]: the Reason String is the first thing to go. */
        if (!(pkt->props.present & MQTT_PROP_BIT(MQTT_PROP_REASON_STRING))) return -EMSGSIZE;
        struct mqtt_packet bare = *pkt;
        bare.props.present &= ~MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
        return conn_send(c, &bare);
    }
    uint8_t *p = conn_reserve(c, n);
    if (!p) return -ENOMEM;
    if (mqtt_encode(pkt, version, p, n) != n) return -EINVAL;
    c->b->stats.msgs_sent++;
    return 0;
}

static int conn_encode_reply(struct conn *c, const struct mqtt_packet *pkt, struct conn_reply *r)
{
    uint8_t version = c->version ? c->version : MQTT_V311;
    size_t n = mqtt_encoded_size(pkt, version);
    if (n == 0) return -EINVAL;
    r->bytes = malloc(n);
    if (!r->bytes) return -ENOMEM;
    r->len = (uint32_t)mqtt_encode(pkt, version, r->bytes, n);
    return 0;
}

uint64_t conn_reply_defer(struct conn *c)
{
    struct conn_replies *q = c->replies;
    if (!q) {
        q = calloc(1, sizeof *q);
        if (!q) return 0;
        c->replies = q;
    }
    struct conn_reply *r = calloc(1, sizeof *r);
    if (!r) {
        if (!q->head) {
            free(q);
            c->replies = NULL;
        }
        return 0;
    }
    /* Sequence numbers restart with each chain: no reply of an earlier chain is pending. */
    r->seq = ++q->seq;
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
    return r->seq;
}

/* Sends the finished replies at the head of the chain. */
static void conn_replies_drain(struct conn *c)
{
    struct conn_replies *q = c->replies;
    if (!q) return;
    while (q->head && q->head->done) {
        struct conn_reply *r = q->head;
        q->head = r->next;
        if (!q->head) q->tail = NULL;
        if (r->len > 0) {
            conn_write(c, r->bytes, r->len);
            c->b->stats.msgs_sent++;
        }
        free(r->bytes);
        free(r);
    }
    if (!q->head) {
        free(q);
        c->replies = NULL;
    }
}

void conn_reply_finish(struct conn *c, uint64_t seq, const struct mqtt_packet *pkt)
{
    for (struct conn_reply *r = c->replies ? c->replies->head : NULL; r; r = r->next) {
        if (r->seq == seq) {
            if (pkt && conn_encode_reply(c, pkt, r) < 0) r->len = 0;
            r->done = true;
            break;
        }
    }
    conn_replies_drain(c);
}

void conn_reason_string(const struct conn *c, struct mqtt_packet *pkt, uint8_t reason,
                        const char *why)
{
    if (c->version != MQTT_V5 || reason < 0x80) return;
    /* [MQTT-3.1.2-29]: without Request Problem Information only CONNACK, PUBLISH and
     * DISCONNECT may carry one. */
    if (!c->want_problem_info && pkt->type != MQTT_CONNACK && pkt->type != MQTT_DISCONNECT) return;
    pkt->props.present |= MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
    pkt->props.reason_string = MQTT_STR(why ? why : mqtt_reason_str(reason));
}

int conn_send_ack(struct conn *c, uint8_t type, uint16_t packet_id, uint8_t reason)
{
    struct mqtt_packet pkt = {.type = type};
    pkt.u.ack.packet_id = packet_id;
    pkt.u.ack.reason = reason;
    conn_reason_string(c, &pkt, reason, NULL);
    if (!c->replies) return conn_send(c, &pkt);
    uint64_t seq = conn_reply_defer(c);
    if (!seq) return -ENOMEM;
    conn_reply_finish(c, seq, &pkt);
    return 0;
}

static struct conn_wreq *conn_wreq_get(struct broker *b)
{
    struct conn_wreq *w = b->wreq_free;
    if (w) {
        b->wreq_free = w->next_free;
        b->wreq_free_count--;
        return w;
    }
    return calloc(1, sizeof *w);
}

static void conn_wreq_put(struct broker *b, struct conn_wreq *w)
{
    for (uint32_t i = 0; i < w->nsegs; i++)
        msg_unref(w->segs[i].ref);
    free(w->own);
    w->own = NULL;
    w->nsegs = 0;
    if (b->wreq_free_count < 1024 && w->segcap <= 64) {
        w->next_free = b->wreq_free;
        b->wreq_free = w;
        b->wreq_free_count++;
    } else {
        free(w->segs);
        free(w);
    }
}

static void conn_free(struct conn *c);

static void conn_write_cb(uv_write_t *req, int status)
{
    struct conn_wreq *w = (struct conn_wreq *)req;
    struct conn *c = w->c;
    struct broker *b = c->b;
    c->io->writes_active--;
    c->io->out_queued -= w->bytes;
    conn_wreq_put(b, w);
    /* A connection that writes only now and then (replies, pings) keeps no segment array
     * between writes; a busy one keeps its larger array rather than grow it again each time. */
    if (c->io->nsegs == 0 && c->io->writes_active == 0 && !c->in_flush && c->io->segs &&
        c->io->segcap <= 8) {
        free(c->io->segs);
        c->io->segs = NULL;
        c->io->segcap = 0;
    }
    conn_io_trim(c);
    if (status < 0 && c->state != CONN_CLOSING)
        conn_drop(c, MQTT_RC_UNSPECIFIED_ERROR, uv_strerror(status));
    if (c->closed && !c->shutting && conn_writes_active(c) == 0) conn_free(c);
}

static void conn_close_cb(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct broker *b = c->b;
    if (c->io) {
        free(c->io->rbuf);
        free(c->io->obuf);
        for (uint32_t i = 0; i < c->io->nsegs; i++)
            msg_unref(c->io->segs[i].ref);
        free(c->io->segs);
        free(c->io);
    }
    if (c->replies) {
        while (c->replies->head) {
            struct conn_reply *r = c->replies->head;
            c->replies->head = r->next;
            free(r->bytes);
            free(r);
        }
        free(c->replies);
        c->replies = NULL;
    }
    if (c->ext) {
        alias_in_close(&c->ext->alias_in);
        alias_out_close(&c->ext->alias_out);
        conn_x_free(c->ext->x);
        free(c->ext);
    }
    session_id_unref(c->client_id);
    free(c->username);
    if (c->in_closing) {
        if (c->closing_prev)
            c->closing_prev->closing_next = c->closing_next;
        else
            b->closing = c->closing_next;
        if (c->closing_next) c->closing_next->closing_prev = c->closing_prev;
    }
    b->live_conns--;
    free(c);
    broker_maybe_finish_stop(b);
}

/* Closes the socket once no write is in flight (write callbacks still reference c). */
static void conn_free(struct conn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp)) return;
    uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
}

static void conn_shutdown_cb(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    (void)status;
    free(req);
    c->shutting = false;
    conn_free(c);
}

/* TLS / WebSocket: the queued MQTT bytes are framed and encrypted as one batch, and the
 * transport's bytes leave in one uv_write. */
static void conn_x_flush(struct conn *c)
{
    struct broker *b = c->b;
    struct conn_xport *x = conn_x(c);
    x->flushing = true;
    if (c->io && c->io->nsegs > 0 && !c->closed) {
        size_t total = 0;
        for (uint32_t i = 0; i < c->io->nsegs; i++)
            total += c->io->segs[i].len;
        uint8_t *tmp = malloc(total ? total : 1);
        int rc = -ENOMEM;
        if (tmp) {
            size_t off = 0;
            for (uint32_t i = 0; i < c->io->nsegs; i++) {
                const struct conn_seg *s = &c->io->segs[i];
                memcpy(tmp + off, s->ref ? s->ref->body + s->off : c->io->obuf + s->off, s->len);
                off += s->len;
            }
            rc = x->ws ? ws_conn_write(x->ws, tmp, total) : tls_conn_write(x->tls, tmp, total);
            free(tmp);
        }
        for (uint32_t i = 0; i < c->io->nsegs; i++)
            msg_unref(c->io->segs[i].ref);
        c->io->nsegs = 0;
        c->io->olen = 0;
        c->io->out_queued -= total;
        /* The bytes were copied into the transport's output: an idle connection keeps no
         * output buffer. */
        free(c->io->obuf);
        c->io->obuf = NULL;
        c->io->ocap = 0;
        if (rc < 0) conn_drop(c, MQTT_RC_UNSPECIFIED_ERROR, "cannot encode output");
    }
    if (c->state == CONN_CLOSING && !c->closed && !x->shut) {
        x->shut = true;
        if (x->ws) ws_conn_shutdown(x->ws);
        if (x->tls) tls_conn_shutdown(x->tls);
    }
    x->flushing = false;
    if (x->olen == 0 || c->closed) return;
    struct conn_wreq *w = conn_io_get(c) ? conn_wreq_get(b) : NULL;
    if (!w) {
        conn_drop(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
        return;
    }
    uv_buf_t buf = uv_buf_init((char *)x->out, x->olen);
    w->c = c;
    w->own = x->out;
    w->nsegs = 0;
    w->bytes = x->olen;
    x->out = NULL;
    x->olen = x->ocap = 0;
    c->io->out_queued += w->bytes;
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, conn_write_cb);
    if (rc < 0) {
        c->io->out_queued -= w->bytes;
        conn_wreq_put(b, w);
        conn_drop(c, MQTT_RC_UNSPECIFIED_ERROR, uv_strerror(rc));
    } else {
        c->io->writes_active++;
    }
}

/* Hands the queued output to one uv_write. */
/* This iteration's output (c->io's buffer and segments, bytes in all) went out whole:
 * releases it as a completed write would. */
static void conn_written(struct conn *c, uint64_t bytes)
{
    struct conn_io *io = c->io;
    for (uint32_t i = 0; i < io->nsegs; i++)
        msg_unref(io->segs[i].ref);
    io->nsegs = 0;
    free(io->obuf);
    io->obuf = NULL;
    io->olen = io->ocap = 0;
    io->out_queued -= bytes;
    if (io->segcap <= 8) {
        free(io->segs);
        io->segs = NULL;
        io->segcap = 0;
    }
    conn_io_trim(c);
}

static void conn_flush(struct conn *c)
{
    struct broker *b = c->b;
    if (conn_x(c)) conn_x_flush(c);
    if (c->io && c->io->nsegs > 0 && !c->closed) {
        struct conn_wreq *w;
        uv_buf_t stackbufs[64];
        uv_buf_t *bufs = c->io->nsegs <= 64 ? stackbufs : malloc(c->io->nsegs * sizeof *bufs);
        if (!bufs) {
            conn_drop(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
            return;
        }
        uint64_t bytes = 0;
        for (uint32_t i = 0; i < c->io->nsegs; i++) {
            struct conn_seg *s = &c->io->segs[i];
            bufs[i].base = (char *)(s->ref ? s->ref->body + s->off : c->io->obuf + s->off);
            bufs[i].len = s->len;
            bytes += s->len;
        }
        /* Most flushes leave whole in one system call: written here, they need no write
         * request, no completion round in the next iteration, and no re-arming of the
         * descriptor (libuv 1.44 issues one epoll_ctl per completed uv_write). What is left
         * goes through uv_write below. */
        uv_buf_t *rest = bufs;
        unsigned nrest = c->io->nsegs;
        if (c->io->writes_active == 0) {
            int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nrest);
            if (n >= 0 && (uint64_t)n == bytes) {
                conn_written(c, bytes);
                if (bufs != stackbufs) free(bufs);
                goto written;
            }
            if (n < 0 && n != UV_EAGAIN) {
                /* The socket failed: the output is dropped below, as the connection ends. */
                if (bufs != stackbufs) free(bufs);
                conn_drop(c, MQTT_RC_UNSPECIFIED_ERROR, uv_strerror(n));
                goto written;
            }
            for (size_t left = n > 0 ? (size_t)n : 0; left > 0;) {
                if (left >= rest->len) {
                    left -= rest->len;
                    rest++;
                    nrest--;
                } else {
                    rest->base += left;
                    rest->len -= left;
                    left = 0;
                }
            }
        }
        if (!(w = conn_wreq_get(b))) {
            if (bufs != stackbufs) free(bufs);
            conn_drop(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
            return;
        }
        /* The request takes the own buffer and the segment array (with its references);
         * the connection takes the request's old array for the next iteration. */
        struct conn_seg *old = w->segs;
        uint32_t oldcap = w->segcap;
        w->c = c;
        w->own = c->io->obuf;
        w->segs = c->io->segs;
        w->segcap = c->io->segcap;
        w->nsegs = c->io->nsegs;
        w->bytes = bytes;
        c->io->obuf = NULL;
        c->io->olen = c->io->ocap = 0;
        c->io->segs = old;
        c->io->segcap = oldcap;
        c->io->nsegs = 0;
        int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, rest, nrest, conn_write_cb);
        if (bufs != stackbufs) free(bufs);
        if (rc < 0) {
            c->io->out_queued -= bytes;
            conn_wreq_put(b, w);
            conn_drop(c, MQTT_RC_UNSPECIFIED_ERROR, uv_strerror(rc));
        } else {
            c->io->writes_active++;
        }
    }
written:
    if (c->state == CONN_CLOSING && !c->closed) {
        c->closed = true;
        /* Drop output queued after the end (it can never be sent). */
        if (c->io) {
            for (uint32_t i = 0; i < c->io->nsegs; i++)
                msg_unref(c->io->segs[i].ref);
            c->io->nsegs = 0;
            c->io->olen = 0;
        }
        uv_shutdown_t *req = malloc(sizeof *req);
        if (req) {
            req->data = c;
            if (uv_shutdown(req, (uv_stream_t *)&c->tcp, conn_shutdown_cb) == 0) {
                c->shutting = true;
                return;
            }
            free(req);
        }
        if (conn_writes_active(c) == 0) conn_free(c);
    }
}

void conn_flush_all(struct broker *b)
{
    while (b->flush_list) {
        struct conn *c = b->flush_list;
        b->flush_list = c->flush_next;
        c->in_flush = false;
        c->flush_next = NULL;
        conn_flush(c);
    }
}

/* ---- accept and close ---- */

/* A new struct conn with an initialised (unconnected) TCP handle. */
static struct conn *conn_create(struct broker *b, struct listener *lst, int *rcp)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        *rcp = UV_ENOMEM;
        return NULL;
    }
    int rc = uv_tcp_init(b->loop, &c->tcp);
    if (rc < 0) {
        free(c);
        *rcp = rc;
        return NULL;
    }
    c->tcp.data = c;
    c->b = b;
    b->live_conns++;
    c->lst = lst;
    c->id = ++b->next_conn_id;
    c->receive_max_out = 65535;
    c->want_problem_info = true;
    wheel_entry_init(&c->keepalive, conn_keepalive_cb);
    *rcp = 0;
    return c;
}

struct conn *conn_new_detached(struct broker *b, struct listener *lst)
{
    int rc;
    struct conn *c = conn_create(b, lst, &rc);
    if (!c) return NULL;
    if (htab_insert(&b->conns, &c->id_node, c->id) < 0) {
        c->state = CONN_CLOSING;
        c->closed = true;
        uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
        return NULL;
    }
    c->detached = true;
    b->stats.clients_connecting++;
    return c;
}

int conn_accept(struct broker *b, struct listener *lst, uv_stream_t *server)
{
    int rc;
    struct conn *c = conn_create(b, lst, &rc);
    if (!c) return rc;
    rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc == 0) rc = htab_insert(&b->conns, &c->id_node, c->id) < 0 ? UV_ENOMEM : 0;
    if (rc < 0) {
        c->state = CONN_CLOSING;
        c->closed = true;
        uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
        return rc;
    }
    /* TCP_NODELAY comes from the listening socket (Linux copies it to accepted sockets). */
    struct sockaddr_storage ss;
    int namelen = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &namelen) == 0) {
        if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
            memcpy(c->peer_ip, &a->sin6_addr, 16);
            memcpy(c->peer_port, &a->sin6_port, 2);
            c->peer_family = AF_INET6;
        } else if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
            memcpy(c->peer_ip, &a->sin_addr, 4);
            memcpy(c->peer_port, &a->sin_port, 2);
            c->peer_family = AF_INET;
        }
    }
    listener_conn_opened(lst, c);
    b->stats.clients_connecting++;
    b->stats.sockets++;
    /* A client that never sends CONNECT (or never completes its TLS handshake) is dropped
     * after a grace period. */
    wheel_add(&b->wheel, &c->keepalive, uv_now(b->loop) + BROKER_CONNECT_TIMEOUT_S * 1000);
    if ((lst->tls || lst->cfg->protocol == CONFIG_PROTOCOL_WEBSOCKETS) && conn_x_new(c) < 0) {
        conn_drop(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
        return 0;
    }
    rc = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
    if (rc < 0) {
        conn_drop(c, MQTT_RC_UNSPECIFIED_ERROR, uv_strerror(rc));
        return 0;
    }
    c->reading = true;
    return 0;
}

const char *conn_addr(const struct conn *c)
{
    static char out[64];
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port;
    memcpy(&port, c->peer_port, 2);
    if (c->detached) {
        snprintf(out, sizeof out, "detached:%llu", (unsigned long long)c->id);
        return out;
    }
    if (c->peer_family == AF_INET6) {
        inet_ntop(AF_INET6, c->peer_ip, host, sizeof host);
        snprintf(out, sizeof out, "%s:%d", host, ntohs(port));
    } else if (c->peer_family == AF_INET) {
        inet_ntop(AF_INET, c->peer_ip, host, sizeof host);
        snprintf(out, sizeof out, "%s:%d", host, ntohs(port));
    } else {
        snprintf(out, sizeof out, "?:0");
    }
    return out;
}

/* The common end: logs once, detaches the session, stops input. */
static void conn_end(struct conn *c, uint8_t reason, const char *why)
{
    struct broker *b = c->b;
    bool was_active = c->state == CONN_ACTIVE;
    c->close_reason = reason;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    wheel_remove(&b->wheel, &c->keepalive);
    const char *id = c->client_id ? c->client_id : "<unknown>";
    if (why == NULL && reason != MQTT_RC_SUCCESS) {
        /* The peer closed the socket (or it failed) without DISCONNECT. */
        if (c->state != CONN_NEW && b->cfg->connection_messages)
            log_at(LOG_TYPE_NOTICE, "Client %s [%s] closed its connection.", id, conn_addr(c));
    } else if (reason == MQTT_RC_SUCCESS || reason == MQTT_RC_DISCONNECT_WITH_WILL) {
        if (b->cfg->connection_messages)
            log_at(LOG_TYPE_NOTICE, "Client %s [%s] disconnected.", id, conn_addr(c));
    } else {
        /* Bad input, limits, takeover, keepalive: always one line with the reason. */
        log_at(LOG_TYPE_NOTICE, "Client %s [%s] disconnected: %s (reason 0x%02x %s).", id,
               conn_addr(c), why ? why : "error", reason, mqtt_reason_str(reason));
    }
    c->state = CONN_CLOSING;
    conn_bare_remove(c);
    /* Until its socket is closed, an ended connection is found in b->closing (a stop's
     * conn_abort_all closes it there). */
    c->closing_prev = NULL;
    c->closing_next = b->closing;
    if (b->closing) b->closing->closing_prev = c;
    b->closing = c;
    c->in_closing = true;
    if (c->sess) session_detach(c->sess, c, reason);
    if (was_active && b->stats.clients_connected > 0)
        b->stats.clients_connected--;
    else if (!was_active && b->stats.clients_connecting > 0)
        b->stats.clients_connecting--;
    if (c->counted) listener_conn_closed(c->lst, c);
    htab_remove(&b->conns, &c->id_node);
    conn_schedule_flush(c);
}

/* Whether a 3.x CONNACK has a return code for this refusal (others just close). */
static bool conn_v3_refusal(uint8_t reason)
{
    switch (reason) {
    case MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION:
    case MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID:
    case MQTT_RC_SERVER_UNAVAILABLE:
    case MQTT_RC_SERVER_BUSY:
    case MQTT_RC_BAD_USERNAME_OR_PASSWORD:
    case MQTT_RC_NOT_AUTHORIZED:
    case MQTT_RC_BANNED:
    case MQTT_RC_BAD_AUTHENTICATION_METHOD:
        return true;
    default:
        return false;
    }
}

void conn_close(struct conn *c, uint8_t reason, const char *why)
{
    if (c->state == CONN_CLOSING) return;
    if (reason >= 0x80 && c->version == MQTT_V5 && c->state == CONN_ACTIVE) {
        struct mqtt_packet pkt = {.type = MQTT_DISCONNECT};
        pkt.u.disconnect.reason = reason;
        if (why && c->want_problem_info) {
            pkt.props.present |= MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
            pkt.props.reason_string = MQTT_STR(why);
        }
        if (conn_send(c, &pkt) == -EMSGSIZE) {
            pkt.props.present = 0;
            conn_send(c, &pkt);
        }
    } else if (reason >= 0x80 && c->state != CONN_ACTIVE && c->version != 0) {
        /* Refused before CONNACK: CONNACK carries the reason [MQTT-3.2.2-6]. */
        struct mqtt_packet pkt = {.type = MQTT_CONNACK};
        pkt.u.connack.reason = reason;
        conn_reason_string(c, &pkt, reason, why);
        if (c->version == MQTT_V5 && c->lst && c->lst->cfg->max_qos < 2) {
            /* As Mosquitto: a refused v5 client learns the listener's Maximum QoS too (it
             * explains a 0x9B for a will QoS above it). */
            pkt.props.present |= MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_QOS);
            pkt.props.maximum_qos = c->lst->cfg->max_qos;
        }
        if (c->version == MQTT_V5 || conn_v3_refusal(reason)) conn_send(c, &pkt);
    }
    conn_end(c, reason, why);
}

void conn_drop(struct conn *c, uint8_t reason, const char *why)
{
    if (c->state == CONN_CLOSING) return;
    conn_end(c, reason, why);
}

void conn_close_all(struct broker *b, uint8_t reason)
{
    size_t bucket = 0;
    struct htab_node *cur = NULL;
    struct htab_node *n;
    /* conn_close removes the node from the table: restart the scan each time. */
    while ((n = htab_next(&b->conns, &bucket, &cur)) != NULL) {
        struct conn *c = (struct conn *)((char *)n - offsetof(struct conn, id_node));
        conn_close(c, reason, "broker stopping");
        bucket = 0;
        cur = NULL;
    }
}

void conn_abort_all(struct broker *b)
{
    /* Live connections end first: each moves to b->closing (conn_drop removes it from the
     * table, so the scan restarts). Connections that were never in the table are closed
     * already. */
    size_t bucket = 0;
    struct htab_node *cur = NULL, *n;
    while ((n = htab_next(&b->conns, &bucket, &cur)) != NULL) {
        struct conn *c = (struct conn *)((char *)n - offsetof(struct conn, id_node));
        conn_drop(c, MQTT_RC_SERVER_SHUTTING_DOWN, "broker stopping");
        bucket = 0;
        cur = NULL;
    }
    for (struct conn *c = b->closing; c; c = c->closing_next) {
        c->closed = true;
        if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
    }
}

void conn_pool_free(struct broker *b)
{
    while (b->wreq_free) {
        struct conn_wreq *w = b->wreq_free;
        b->wreq_free = w->next_free;
        free(w->segs);
        free(w);
    }
    b->wreq_free_count = 0;
}
