/* starling-bench connections: TCP through libuv, MQTT through the project's codec, and with
 * --tls wolfSSL over memory callbacks.
 *
 * Writes are gathered in obuf during a loop iteration and leave in one write per connection
 * (client_flush(), called from the pump); with TLS, obuf is encrypted into xbuf as one batch
 * first. Reads are parsed straight from the loop's scratch buffer (with TLS, decrypted into
 * it); only a trailing partial packet is copied into the client's rbuf. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>
#include <wolfssl/options.h> /* first: the library's build options (structure layouts) */
#include <wolfssl/ssl.h>

#include "bench.h"
#include "proto.h"

static int buf_reserve(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    uint8_t *p = realloc(*buf, n);
    if (!p) return -ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}

static void mark_dirty(struct bench_client *c)
{
    if (c->dirty) return;
    c->dirty = true;
    c->next_dirty = c->b->dirty_head;
    c->b->dirty_head = c;
}

static void client_fail(struct bench_client *c, const char *what, int rc);

/* Encodes pkt at the end of obuf. */
static void queue_packet(struct bench_client *c, const struct mqtt_packet *pkt)
{
    uint8_t ver = c->b->o.version;
    size_t n = mqtt_encoded_size(pkt, ver);
    if (n == 0 || buf_reserve(&c->obuf, &c->ocap, c->olen + n) != 0) {
        client_fail(c, "cannot encode packet", -ENOMEM);
        return;
    }
    size_t w = mqtt_encode(pkt, ver, c->obuf + c->olen, c->ocap - c->olen);
    if (w != n) {
        client_fail(c, "cannot encode packet", -EINVAL);
        return;
    }
    c->olen += n;
    mark_dirty(c);
}

static void close_cb(uv_handle_t *h)
{
    struct bench_client *c = h->data;
    if (c->ssl) wolfSSL_free(c->ssl);
    c->ssl = NULL;
    c->tls_up = false;
    c->tin_off = c->tin_len = 0;
    c->xlen = 0;
    c->handle_open = false;
    c->b->nopen--;
    c->state = BENCH_CS_IDLE;
    c->writing = false;
    c->olen = 0;
    c->rlen = 0;
    bench_on_closed(c);
}

static void client_close(struct bench_client *c)
{
    if (!c->handle_open || uv_is_closing((uv_handle_t *)&c->tcp)) return;
    c->state = BENCH_CS_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, close_cb);
}

static void client_fail(struct bench_client *c, const char *what, int rc)
{
    if (c->state == BENCH_CS_CLOSING) return;
    bench_error(c->b, "%s %u (%s): %s%s%s",
                c->role == BENCH_ROLE_PUB   ? "publisher"
                : c->role == BENCH_ROLE_SUB ? "subscriber"
                                            : "connection",
                c->idx, c->b->o.addrs[c->addr_idx].text, what, rc ? ": " : "",
                rc ? uv_strerror(rc) : "");
    client_close(c);
}

static void write_cb(uv_write_t *req, int status)
{
    struct bench_client *c = req->data;
    c->writing = false;
    if (status < 0) {
        if (status != UV_ECANCELED) client_fail(c, "write failed", status);
        return;
    }
    client_flush(c);
}

/* wolfSSL's output: appended to xbuf, written by client_flush(). */
static int tls_send_cb(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    struct bench_client *c = ctx;
    (void)ssl;
    if (buf_reserve(&c->xbuf, &c->xcap, c->xlen + (size_t)sz) != 0) return WOLFSSL_CBIO_ERR_GENERAL;
    memcpy(c->xbuf + c->xlen, buf, (size_t)sz);
    c->xlen += (size_t)sz;
    return sz;
}

/* wolfSSL's input: what read_cb() put in tin. */
static int tls_recv_cb(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    struct bench_client *c = ctx;
    (void)ssl;
    size_t avail = c->tin_len - c->tin_off;
    if (avail == 0) return WOLFSSL_CBIO_ERR_WANT_READ;
    size_t n = avail < (size_t)sz ? avail : (size_t)sz;
    memcpy(buf, c->tin + c->tin_off, n);
    c->tin_off += n;
    return (int)n;
}

static void tls_fail(struct bench_client *c, const char *what, int ret)
{
    char msg[160];
    char reason[WOLFSSL_MAX_ERROR_SZ];
    wolfSSL_ERR_error_string_n((unsigned long)wolfSSL_get_error(c->ssl, ret), reason,
                               sizeof reason);
    snprintf(msg, sizeof msg, "%s: %s", what, reason);
    client_fail(c, msg, 0);
}

int client_tls_init(struct bench *b)
{
    wolfSSL_Init();
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
    if (!ctx || wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "starling-bench: cannot create the TLS context\n");
        if (ctx) wolfSSL_CTX_free(ctx);
        return -1;
    }
    if (b->o.cafile) {
        if (wolfSSL_CTX_load_verify_locations(ctx, b->o.cafile, NULL) != WOLFSSL_SUCCESS) {
            fprintf(stderr, "starling-bench: --cafile %s: cannot load it\n", b->o.cafile);
            wolfSSL_CTX_free(ctx);
            return -1;
        }
        wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
    } else {
        wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
    }
    wolfSSL_CTX_SetIORecv(ctx, tls_recv_cb);
    wolfSSL_CTX_SetIOSend(ctx, tls_send_cb);
    b->tls_ctx = ctx;
    return 0;
}

void client_tls_free(struct bench *b)
{
    if (!b->tls_ctx) return;
    wolfSSL_CTX_free(b->tls_ctx);
    b->tls_ctx = NULL;
    wolfSSL_Cleanup();
}

void client_flush(struct bench_client *c)
{
    c->dirty = false;
    if (c->writing || !c->handle_open || uv_is_closing((uv_handle_t *)&c->tcp)) return;
    uint8_t **out = &c->obuf;
    size_t *outlen = &c->olen, *outcap = &c->ocap;
    if (c->ssl) {
        /* The batch is encrypted at once (wolfSSL_write takes all of it: the send callback
         * never blocks). */
        if (c->tls_up && c->olen > 0) {
            int ret = wolfSSL_write(c->ssl, c->obuf, (int)c->olen);
            if (ret != (int)c->olen) {
                tls_fail(c, "TLS write failed", ret);
                return;
            }
            c->olen = 0;
        }
        out = &c->xbuf;
        outlen = &c->xlen;
        outcap = &c->xcap;
    }
    if (*outlen > 0) {
        uv_buf_t ub = uv_buf_init((char *)*out, (unsigned)*outlen);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &ub, 1);
        size_t done = n > 0 ? (size_t)n : 0;
        if (n < 0 && n != UV_EAGAIN) {
            client_fail(c, "write failed", n);
            return;
        }
        if (done < *outlen) {
            /* Hand the rest to uv_write; swap buffers so the output can fill meanwhile. */
            size_t rest = *outlen - done;
            uint8_t *tmp = c->wbuf;
            size_t tcap = c->wcap;
            c->wbuf = *out;
            c->wcap = *outcap;
            *out = tmp;
            *outcap = tcap;
            *outlen = 0;
            ub = uv_buf_init((char *)c->wbuf + done, (unsigned)rest);
            c->wreq.data = c;
            int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &ub, 1, write_cb);
            if (rc < 0) {
                client_fail(c, "write failed", rc);
                return;
            }
            c->writing = true;
            return;
        }
        *outlen = 0;
    }
    if (c->state == BENCH_CS_CLOSING) client_close(c);
}

static void pid_release(struct bench_client *c, uint16_t pid)
{
    if (!c->pid_used || !((c->pid_used[pid / 64] >> (pid % 64)) & 1)) {
        client_fail(c, "acknowledgement for an unknown packet id", 0);
        return;
    }
    c->pid_used[pid / 64] &= ~(UINT64_C(1) << (pid % 64));
    c->inflight--;
}

static void send_ack(struct bench_client *c, uint8_t type, uint16_t pid)
{
    struct mqtt_packet p;
    memset(&p, 0, sizeof p);
    p.type = type;
    p.u.ack.packet_id = pid;
    queue_packet(c, &p);
}

static void send_subscribe(struct bench_client *c)
{
    struct mqtt_topic_entry e;
    memset(&e, 0, sizeof e);
    e.filter.ptr = c->topic;
    e.filter.len = c->topic_len;
    e.opts.qos = (uint8_t)c->b->o.qos;
    struct mqtt_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQTT_SUBSCRIBE;
    p.u.subscribe.packet_id = 1;
    p.u.subscribe.topics.count = 1;
    p.u.subscribe.topics.list = &e;
    c->state = BENCH_CS_SUBACK;
    queue_packet(c, &p);
}

static void on_connack(struct bench_client *c, const struct mqtt_packet *p)
{
    if (c->state != BENCH_CS_CONNACK) {
        client_fail(c, "unexpected CONNACK", 0);
        return;
    }
    if (p->u.connack.reason != 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "connection refused: %s", mqtt_reason_str(p->u.connack.reason));
        client_fail(c, msg, 0);
        return;
    }
    c->server_recv_max = 65535;
    if (p->props.present & MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAXIMUM))
        c->server_recv_max = p->props.receive_maximum;
    if (c->role == BENCH_ROLE_SUB && !(c->persistent && p->u.connack.session_present)) {
        send_subscribe(c);
        return;
    }
    c->state = BENCH_CS_READY;
    c->was_ready = true;
    bench_on_ready(c);
}

static void on_packet(struct bench_client *c, const struct mqtt_packet *p)
{
    switch (p->type) {
    case MQTT_CONNACK:
        on_connack(c, p);
        break;
    case MQTT_SUBACK:
        if (c->state != BENCH_CS_SUBACK || p->u.suback.count < 1) {
            client_fail(c, "unexpected SUBACK", 0);
        } else if (p->u.suback.reasons[0] >= 0x80) {
            client_fail(c, "subscription refused", 0);
        } else {
            c->state = BENCH_CS_READY;
            c->was_ready = true;
            bench_on_ready(c);
        }
        break;
    case MQTT_PUBLISH: {
        const struct mqtt_publish *pub = &p->u.publish;
        bool deliver = true;
        if (pub->qos == 2) {
            uint16_t id = pub->packet_id;
            if (!c->qos2_held) {
                c->qos2_held = calloc(65536 / 64, sizeof(uint64_t));
                if (!c->qos2_held) {
                    client_fail(c, "out of memory", -ENOMEM);
                    return;
                }
            }
            /* A resent PUBLISH before our PUBREC was answered is the same message. */
            if ((c->qos2_held[id / 64] >> (id % 64)) & 1) deliver = false;
            c->qos2_held[id / 64] |= UINT64_C(1) << (id % 64);
        }
        if (deliver)
            bench_on_delivery(c, pub->topic.ptr, pub->topic.len, pub->payload, pub->payload_len);
        if (pub->qos == 1)
            send_ack(c, MQTT_PUBACK, pub->packet_id);
        else if (pub->qos == 2)
            send_ack(c, MQTT_PUBREC, pub->packet_id);
        break;
    }
    case MQTT_PUBREL: {
        uint16_t id = p->u.ack.packet_id;
        if (c->qos2_held) c->qos2_held[id / 64] &= ~(UINT64_C(1) << (id % 64));
        send_ack(c, MQTT_PUBCOMP, id);
        break;
    }
    case MQTT_PUBACK:
    case MQTT_PUBCOMP:
        if (p->u.ack.reason >= 0x80)
            bench_error(c->b, "publisher %u: %s for id %u", c->idx,
                        mqtt_reason_str(p->u.ack.reason), p->u.ack.packet_id);
        pid_release(c, p->u.ack.packet_id);
        c->acked++;
        break;
    case MQTT_PUBREC:
        if (p->u.ack.reason >= 0x80) {
            bench_error(c->b, "publisher %u: PUBREC %s for id %u", c->idx,
                        mqtt_reason_str(p->u.ack.reason), p->u.ack.packet_id);
            pid_release(c, p->u.ack.packet_id);
            c->acked++;
        } else {
            send_ack(c, MQTT_PUBREL, p->u.ack.packet_id);
        }
        break;
    case MQTT_PINGRESP:
        bench_on_pong(c);
        break;
    case MQTT_DISCONNECT:
        client_fail(c, mqtt_reason_str(p->u.disconnect.reason), 0);
        break;
    default:
        client_fail(c, "unexpected packet", 0);
        break;
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct bench_client *c = h->data;
    (void)suggested;
    buf->base = (char *)c->b->scratch;
    buf->len = sizeof c->b->scratch;
}

/* Parses whole packets from data[0..len); returns the bytes used, or -1 after a failure. */
static long parse_all(struct bench_client *c, const uint8_t *data, size_t len)
{
    const struct mqtt_parser parser = {.version = c->b->o.version, .role = MQTT_ROLE_CLIENT};
    size_t off = 0;
    while (off < len && c->state != BENCH_CS_CLOSING) {
        struct mqtt_packet pkt;
        size_t need = 0;
        enum mqtt_parse_result r = mqtt_parse(&parser, data + off, len - off, &pkt, &need);
        if (r == MQTT_PARSE_MORE) break;
        if (r == MQTT_PARSE_BAD) {
            client_fail(c, mqtt_error_str(pkt.error), 0);
            return -1;
        }
        on_packet(c, &pkt);
        off += pkt.wire_len;
    }
    return (long)off;
}

static void send_connect(struct bench_client *c);

/* MQTT bytes received (plain, or decrypted). */
static void plain_input(struct bench_client *c, const uint8_t *data, size_t len)
{
    if (c->rlen > 0) {
        if (buf_reserve(&c->rbuf, &c->rcap, c->rlen + len) != 0) {
            client_fail(c, "out of memory", -ENOMEM);
            return;
        }
        memcpy(c->rbuf + c->rlen, data, len);
        c->rlen += len;
        long used = parse_all(c, c->rbuf, c->rlen);
        if (used < 0) return;
        memmove(c->rbuf, c->rbuf + used, c->rlen - (size_t)used);
        c->rlen -= (size_t)used;
        return;
    }
    long used = parse_all(c, data, len);
    if (used < 0 || (size_t)used == len) return;
    size_t rest = len - (size_t)used;
    if (buf_reserve(&c->rbuf, &c->rcap, rest) != 0) {
        client_fail(c, "out of memory", -ENOMEM);
        return;
    }
    memcpy(c->rbuf, data + used, rest);
    c->rlen = rest;
}

/* TLS bytes received: the handshake goes on, or records are decrypted into the scratch
 * buffer (data was copied into tin first, so the scratch buffer is free). */
static void tls_input(struct bench_client *c, const uint8_t *data, size_t len)
{
    if (c->tin_off > 0) {
        memmove(c->tin, c->tin + c->tin_off, c->tin_len - c->tin_off);
        c->tin_len -= c->tin_off;
        c->tin_off = 0;
    }
    if (buf_reserve(&c->tin, &c->tin_cap, c->tin_len + len) != 0) {
        client_fail(c, "out of memory", -ENOMEM);
        return;
    }
    memcpy(c->tin + c->tin_len, data, len);
    c->tin_len += len;
    if (!c->tls_up) {
        int ret = wolfSSL_connect(c->ssl);
        if (ret != WOLFSSL_SUCCESS) {
            if (wolfSSL_get_error(c->ssl, ret) == WOLFSSL_ERROR_WANT_READ)
                client_flush(c);
            else
                tls_fail(c, "TLS handshake failed", ret);
            return;
        }
        c->tls_up = true;
        send_connect(c);
    }
    uint8_t *plain = c->b->scratch;
    while (c->state != BENCH_CS_CLOSING && c->handle_open) {
        int n = wolfSSL_read(c->ssl, plain, (int)sizeof c->b->scratch);
        if (n > 0) {
            plain_input(c, plain, (size_t)n);
            continue;
        }
        int err = wolfSSL_get_error(c->ssl, n);
        if (err == WOLFSSL_ERROR_WANT_READ) break;
        if (err == WOLFSSL_ERROR_ZERO_RETURN)
            client_fail(c, "broker closed the TLS session", 0);
        else
            tls_fail(c, "TLS read failed", n);
        return;
    }
    /* wolfSSL may have answered something (a key update): send it along. */
    if (c->xlen > 0) mark_dirty(c);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct bench_client *c = s->data;
    if (nread < 0) {
        client_fail(c, nread == UV_EOF ? "broker closed the connection" : "read failed",
                    nread == UV_EOF ? 0 : (int)nread);
        return;
    }
    if (nread == 0 || c->state == BENCH_CS_CLOSING) return;
    if (c->ssl)
        tls_input(c, (const uint8_t *)buf->base, (size_t)nread);
    else
        plain_input(c, (const uint8_t *)buf->base, (size_t)nread);
}

static void send_connect(struct bench_client *c)
{
    const struct bench_opts *o = &c->b->o;
    char id[64];
    snprintf(id, sizeof id, "sb-%08x-%c%u", c->b->run_id,
             c->role == BENCH_ROLE_PUB   ? 'p'
             : c->role == BENCH_ROLE_SUB ? 's'
                                         : 'c',
             c->idx);
    struct mqtt_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQTT_CONNECT;
    p.u.connect.version = o->version;
    p.u.connect.clean_start = !c->persistent;
    p.u.connect.keepalive_s = o->keepalive_s;
    p.u.connect.client_id = MQTT_STR(id);
    if (o->username) {
        p.u.connect.has_username = true;
        p.u.connect.username = MQTT_STR(o->username);
    }
    if (o->password) {
        p.u.connect.has_password = true;
        p.u.connect.password.ptr = (const uint8_t *)o->password;
        p.u.connect.password.len = (uint16_t)strlen(o->password);
    }
    if (o->version == MQTT_V5) {
        p.props.present |= MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAXIMUM);
        p.props.receive_maximum = 65535;
        if (c->persistent) {
            p.props.present |= MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY);
            p.props.session_expiry_s = 600;
        }
    }
    c->state = BENCH_CS_CONNACK;
    queue_packet(c, &p);
    client_flush(c);
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct bench_client *c = req->data;
    if (status < 0) {
        if (status != UV_ECANCELED) client_fail(c, "connect failed", status);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    if (rc < 0) {
        client_fail(c, "read failed", rc);
        return;
    }
    if (c->b->tls_ctx) {
        /* CONNECT follows the handshake (tls_input). */
        c->ssl = wolfSSL_new(c->b->tls_ctx);
        if (!c->ssl) {
            client_fail(c, "cannot create a TLS session", -ENOMEM);
            return;
        }
        wolfSSL_SetIOReadCtx(c->ssl, c);
        wolfSSL_SetIOWriteCtx(c->ssl, c);
        int ret = wolfSSL_connect(c->ssl);
        if (ret != WOLFSSL_SUCCESS && wolfSSL_get_error(c->ssl, ret) != WOLFSSL_ERROR_WANT_READ) {
            tls_fail(c, "TLS handshake failed", ret);
            return;
        }
        client_flush(c);
        return;
    }
    send_connect(c);
}

int client_connect(struct bench_client *c)
{
    struct bench *b = c->b;
    int rc = uv_tcp_init_ex(b->loop, &c->tcp, AF_INET);
    if (rc < 0) return rc;
    c->handle_open = true;
    b->nopen++;
    c->tcp.data = c;
    c->rlen = 0;
    c->olen = 0;
    c->writing = false;
    c->was_ready = false;
    if (b->o.src_ips > 0) {
        /* Spread source addresses over 127.1.0.0/16 so that each (source, destination)
         * pair needs few ephemeral ports: the kernel's search for a free port slows down
         * as a pair fills up. The port is picked at connect() time. */
        uv_os_fd_t fd;
        int one = 1;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        /* Each run starts at its own offset, away from the TIME_WAIT sockets of the last. */
        uint32_t k = 1 + (b->run_id + c->idx % b->o.src_ips) % 65534;
        struct sockaddr_in src;
        memset(&src, 0, sizeof src);
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl((127u << 24) | (1u << 16) | (k & 0xffff));
        rc = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0);
        if (rc < 0) {
            client_fail(c, "bind failed", rc);
            return 0; /* reported through bench_on_closed() */
        }
    }
    c->state = BENCH_CS_CONNECTING;
    c->creq.data = c;
    rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&b->o.addrs[c->addr_idx].sa,
                        connect_cb);
    if (rc < 0) {
        client_fail(c, "connect failed", rc);
        return 0; /* reported through bench_on_closed() */
    }
    return 0;
}

bool client_can_publish(const struct bench_client *c)
{
    /* Stop adding while the socket is backed up by more than a megabyte. */
    return c->state == BENCH_CS_READY && c->olen < 1024 * 1024;
}

void client_publish(struct bench_client *c, uint64_t ts_ns)
{
    struct bench *b = c->b;
    uint32_t hdr[4] = {BENCH_MAGIC, b->run_id, c->idx, 0};
    uint64_t seq = c->sent;
    memcpy(c->payload, hdr, sizeof hdr);
    memcpy(c->payload + 16, &seq, 8);
    memcpy(c->payload + 24, &ts_ns, 8);

    struct mqtt_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQTT_PUBLISH;
    p.u.publish.qos = (uint8_t)b->o.qos;
    p.u.publish.topic.ptr = c->topic;
    p.u.publish.topic.len = c->topic_len;
    p.u.publish.payload = c->payload;
    p.u.publish.payload_len = b->o.size;
    if (b->o.qos > 0) {
        if (!c->pid_used) {
            c->pid_used = calloc(65536 / 64, sizeof(uint64_t));
            if (!c->pid_used) {
                client_fail(c, "out of memory", -ENOMEM);
                return;
            }
        }
        /* Next free packet id; callers keep inflight below 65535. */
        uint16_t id = c->next_pid;
        do {
            id = (uint16_t)(id + 1);
        } while (id == 0 || ((c->pid_used[id / 64] >> (id % 64)) & 1));
        c->next_pid = id;
        c->pid_used[id / 64] |= UINT64_C(1) << (id % 64);
        c->inflight++;
        p.u.publish.packet_id = id;
    }
    c->sent++;
    queue_packet(c, &p);
}

void client_ping(struct bench_client *c)
{
    struct mqtt_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQTT_PINGREQ;
    queue_packet(c, &p);
}

void client_disconnect(struct bench_client *c)
{
    if (!c->handle_open || c->state == BENCH_CS_CLOSING) return;
    if (c->state == BENCH_CS_READY || c->state == BENCH_CS_SUBACK || c->state == BENCH_CS_CONNACK) {
        struct mqtt_packet p;
        memset(&p, 0, sizeof p);
        p.type = MQTT_DISCONNECT;
        queue_packet(c, &p);
        c->state = BENCH_CS_CLOSING;
        client_flush(c);
    } else {
        client_close(c);
    }
}

void client_free(struct bench_client *c)
{
    free(c->rbuf);
    free(c->obuf);
    free(c->wbuf);
    free(c->tin);
    free(c->xbuf);
    if (c->ssl) wolfSSL_free(c->ssl);
    free(c->pid_used);
    free(c->qos2_held);
    free(c->payload);
    if (c->seqs) {
        for (uint32_t i = 0; i < c->npubs; i++)
            bench_seq_close(&c->seqs[i]);
        free(c->seqs);
    }
    memset(c, 0, sizeof *c);
}
