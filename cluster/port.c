/* The cluster port: listener, dialer and the hello on both sides (port.h, hello.h). */
#include "port.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <raft.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "hello.h"

#define DEFAULT_HELLO_TIMEOUT_MS 5000u
#define SWEEP_MS                 500u
#define TLS_RX_CHUNK             16384u
#define BRIDGE_HIGH              (4u << 20) /* pause the other side above this many queued bytes */

enum hs_state {
    HS_RESOLVING,
    HS_TLS, /* TLS handshake (cluster TLS on), before the hello */
    HS_CONNECTING,
    HS_WAIT_HELLO,     /* acceptor */
    HS_WAIT_PROOF,     /* acceptor */
    HS_WAIT_CHALLENGE, /* dialer */
    HS_WAIT_OK,        /* dialer */
    HS_HANDOFF,        /* done; waiting for our last write */
    HS_FAILING,        /* the socket is closing */
};

/* One connection in its hello (either side), or a dial still resolving/connecting. */
struct hs {
    struct hs *next, *prev;
    struct port *p;
    bool dialer;
    enum hs_state state;
    uint8_t channel;
    unsigned nth; /* dialer: the resolved address to start at */
    uv_tcp_t *tcp;
    uv_getaddrinfo_t gai;
    struct addrinfo *ai, *ai_next;
    uv_connect_t conn;
    uint64_t deadline_ms;
    int writes_pending;
    int fail_status;
    bool canceled;
    uint8_t in[HELLO_MAX + HELLO_CHALLENGE];
    size_t in_len;
    uint8_t hello[HELLO_MAX];
    size_t hello_len;
    uint8_t nonce_a[HELLO_NONCE];
    uint64_t peer_id;
    char peer_addr[HELLO_ADDR_MAX + 1];
    char where[300]; /* for log lines: the dialed address or the peer's IP */
    port_dial_cb cb;
    void *data;
    struct tlsio *tls; /* cluster TLS on: the session, moved to the bridge at handoff */
    bool driving;      /* inside hs_tls_drive: freeing h is left to it */
    bool dead;
};

struct wreq {
    uv_write_t w;
    struct hs *h;
    size_t len;
    uint8_t buf[];
};

/* A TLS session over a TCP stream: ciphertext received and not yet consumed by wolfSSL, and
 * where wolfSSL's output goes. */
struct tlsio {
    WOLFSSL *ssl;
    uint8_t *rx;
    size_t rx_off, rx_len, rx_cap;
    int (*out)(void *owner, const uint8_t *buf, size_t len);
    void *owner;
};

/* After a hello inside TLS: the consumer got one end of a socketpair; the bridge moves bytes
 * between the other end (inner, plaintext) and the TLS session on the network stream. */
struct bridge {
    struct bridge *next, *prev;
    struct port *p;
    uv_tcp_t *net; /* raft_malloc'd */
    uv_tcp_t inner;
    struct tlsio *tls;
    uint64_t peer_id;
    int open_handles;
    bool closing, net_paused, inner_paused;
    uint8_t ibuf[65536];
};

struct port {
    uv_loop_t *loop;
    struct port_config cfg;
    char *advertise;
    uint8_t *secret;
    port_accept_cb accept_cb;
    void *ctx;
    uv_tcp_t listener;
    bool listening;
    uv_timer_t sweep;
    struct hs *hs_head;
    unsigned n_handles; /* tcp handles of hs objects, closing ones included */
    unsigned n_gai;     /* resolutions in flight */
    unsigned n_own;     /* listener and sweep timer not yet closed */
    bool closing;
    void (*close_cb)(void *);
    void *close_data;
    struct port_stats stats;
    WOLFSSL_CTX *tls_srv, *tls_cli; /* both NULL: cluster TLS off */
    struct bridge *bridges;
};

static void port_logf(const struct port *p, enum cluster_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void port_logf(const struct port *p, enum cluster_log_level level, const char *fmt, ...)
{
    if (!p->cfg.log) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->cfg.log(p->cfg.log_ctx, level, line);
}

static void port_tls_free(struct port *p)
{
    if (!p->tls_srv && !p->tls_cli) return;
    if (p->tls_srv) wolfSSL_CTX_free(p->tls_srv);
    if (p->tls_cli) wolfSSL_CTX_free(p->tls_cli);
    p->tls_srv = p->tls_cli = NULL;
    wolfSSL_Cleanup();
}

/* ---- TLS session plumbing (custom I/O callbacks) ---- */

static int tls_recv_cb(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    struct tlsio *t = ctx;
    (void)ssl;
    size_t avail = t->rx_len - t->rx_off;
    if (avail == 0) return WOLFSSL_CBIO_ERR_WANT_READ;
    size_t n = avail < (size_t)sz ? avail : (size_t)sz;
    memcpy(buf, t->rx + t->rx_off, n);
    t->rx_off += n;
    return (int)n;
}

static int tls_send_cb(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    struct tlsio *t = ctx;
    (void)ssl;
    if (t->out(t->owner, (const uint8_t *)buf, (size_t)sz) != 0) return WOLFSSL_CBIO_ERR_GENERAL;
    return sz;
}

static struct tlsio *tls_new(WOLFSSL_CTX *ctx)
{
    struct tlsio *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->ssl = wolfSSL_new(ctx);
    if (!t->ssl) {
        free(t);
        return NULL;
    }
    wolfSSL_SSLSetIORecv(t->ssl, tls_recv_cb);
    wolfSSL_SSLSetIOSend(t->ssl, tls_send_cb);
    wolfSSL_SetIOReadCtx(t->ssl, t);
    wolfSSL_SetIOWriteCtx(t->ssl, t);
    return t;
}

static void tls_free(struct tlsio *t)
{
    if (!t) return;
    wolfSSL_free(t->ssl);
    free(t->rx);
    free(t);
}

/* Room for the next read of ciphertext. */
static void tls_alloc(struct tlsio *t, uv_buf_t *buf)
{
    if (t->rx_off == t->rx_len) {
        t->rx_off = t->rx_len = 0;
    } else if (t->rx_off > 0) {
        memmove(t->rx, t->rx + t->rx_off, t->rx_len - t->rx_off);
        t->rx_len -= t->rx_off;
        t->rx_off = 0;
    }
    if (t->rx_cap - t->rx_len < TLS_RX_CHUNK) {
        uint8_t *n = realloc(t->rx, t->rx_len + TLS_RX_CHUNK);
        if (!n) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        t->rx = n;
        t->rx_cap = t->rx_len + TLS_RX_CHUNK;
    }
    *buf = uv_buf_init((char *)t->rx + t->rx_len, (unsigned)(t->rx_cap - t->rx_len));
}

static void port_maybe_closed(struct port *p)
{
    if (!p->closing || p->n_handles || p->n_gai || p->n_own || p->hs_head || p->bridges) return;
    void (*cb)(void *) = p->close_cb;
    void *data = p->close_data;
    port_tls_free(p);
    free(p->advertise);
    free(p->secret);
    free(p);
    if (cb) cb(data);
}

int port_split_address(const char *address, char *host, size_t hostcap, char *serv, size_t servcap)
{
    if (!address || !*address) return -EINVAL;
    const char *h = address, *hend, *colon;
    if (*address == '[') {
        h = address + 1;
        hend = strchr(h, ']');
        if (!hend || hend[1] != ':') return -EINVAL;
        colon = hend + 1;
    } else {
        colon = strrchr(address, ':');
        if (!colon || memchr(address, ':', (size_t)(colon - address))) return -EINVAL;
        hend = colon;
    }
    size_t hl = (size_t)(hend - h), sl = strlen(colon + 1);
    if (hl == 0 || hl >= hostcap || sl == 0 || sl >= servcap) return -EINVAL;
    for (const char *s = colon + 1; *s; s++)
        if (*s < '0' || *s > '9') return -EINVAL;
    long port = strtol(colon + 1, NULL, 10);
    if (port <= 0 || port > 65535) return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(serv, colon + 1, sl + 1);
    return 0;
}

/* ---- hs lifecycle ---- */

static struct hs *hs_new(struct port *p, bool dialer)
{
    struct hs *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->p = p;
    h->dialer = dialer;
    h->deadline_ms = uv_now(p->loop) + p->cfg.hello_timeout_ms;
    h->next = p->hs_head;
    if (p->hs_head) p->hs_head->prev = h;
    p->hs_head = h;
    return h;
}

static void hs_unlink(struct hs *h)
{
    struct port *p = h->p;
    if (h->prev)
        h->prev->next = h->next;
    else
        p->hs_head = h->next;
    if (h->next) h->next->prev = h->prev;
}

static void hs_free(struct hs *h)
{
    if (h->driving)
        h->dead = true;
    else
        free(h);
}

static void hs_finish(struct hs *h, int status)
{
    struct port *p = h->p;
    hs_unlink(h);
    if (h->ai) uv_freeaddrinfo(h->ai);
    tls_free(h->tls);
    h->tls = NULL;
    if (h->dialer) {
        if (status != 0) p->stats.dial_failed++;
        if (h->cb) h->cb(h->data, status, NULL, 0);
    }
    hs_free(h);
    port_maybe_closed(p);
}

static void tcp_free_cb(uv_handle_t *handle)
{
    struct port *p = handle->data;
    raft_free(handle);
    p->n_handles--;
    port_maybe_closed(p);
}

static void hs_tcp_closed(uv_handle_t *handle)
{
    struct hs *h = handle->data;
    raft_free(handle);
    h->p->n_handles--;
    h->tcp = NULL;
    hs_finish(h, h->fail_status);
}

static void hs_fail(struct hs *h, int status)
{
    if (h->state == HS_FAILING) return;
    h->state = HS_FAILING;
    h->fail_status = status;
    if (h->tcp) {
        uv_read_stop((uv_stream_t *)h->tcp);
        uv_close((uv_handle_t *)h->tcp, hs_tcp_closed);
    } else {
        hs_finish(h, status);
    }
}

/* A refused peer: one log line per connection. */
static void hs_refuse(struct hs *h, const char *why)
{
    h->p->stats.refused++;
    port_logf(h->p, CLUSTER_LOG_WARNING, "cluster port: %s %s refused: %s",
              h->dialer ? "connection to" : "connection from", h->where, why);
    hs_fail(h, -EACCES);
}

static int bridge_new(struct hs *h, uv_tcp_t **user /* OUT */);

static void hs_handoff(struct hs *h)
{
    struct port *p = h->p;
    uv_tcp_t *tcp = h->tcp;
    if (h->tls) {
        /* The consumer gets the plaintext end of a bridge; the network stream and the TLS
         * session go to the bridge. */
        uv_tcp_t *user = NULL;
        int rc = bridge_new(h, &user);
        if (rc != 0) {
            h->state = HS_WAIT_OK; /* not HANDOFF: hs_fail must run */
            hs_fail(h, rc);
            return;
        }
        h->tls = NULL;
        tcp = user;
    }
    h->tcp = NULL;
    p->n_handles--;
    tcp->data = NULL;
    hs_unlink(h);
    if (h->dialer) {
        p->stats.dialed++;
        h->cb(h->data, 0, tcp, h->peer_id);
    } else {
        p->stats.accepted++;
        p->accept_cb(p->ctx, h->channel, h->peer_id, h->peer_addr, tcp);
    }
    if (h->ai) uv_freeaddrinfo(h->ai);
    hs_free(h);
    port_maybe_closed(p);
}

static void hs_write_cb(uv_write_t *w, int status)
{
    struct wreq *r = (struct wreq *)w;
    struct hs *h = r->h;
    free(r);
    h->writes_pending--;
    if (h->state == HS_FAILING) return;
    if (status < 0) {
        hs_fail(h, status);
        return;
    }
    if (h->state == HS_HANDOFF && h->writes_pending == 0) hs_handoff(h);
}

static int hs_write_raw(struct hs *h, const uint8_t *buf, size_t len)
{
    struct wreq *r = malloc(sizeof *r + len);
    if (!r) return -ENOMEM;
    r->h = h;
    r->len = len;
    memcpy(r->buf, buf, len);
    uv_buf_t b = uv_buf_init((char *)r->buf, (unsigned)len);
    int rc = uv_write(&r->w, (uv_stream_t *)h->tcp, &b, 1, hs_write_cb);
    if (rc != 0) {
        free(r);
        return rc;
    }
    h->writes_pending++;
    return 0;
}

static int hs_tls_out(void *owner, const uint8_t *buf, size_t len)
{
    return hs_write_raw(owner, buf, len);
}

/* A hello message: through TLS when it is on. */
static int hs_write(struct hs *h, const uint8_t *buf, size_t len)
{
    if (!h->tls) return hs_write_raw(h, buf, len);
    int n = wolfSSL_write(h->tls->ssl, buf, (int)len);
    return n == (int)len ? 0 : -EIO;
}

/* How many bytes h->in should hold for the message expected next. */
static size_t hs_want(const struct hs *h)
{
    size_t want;
    switch (h->state) {
    case HS_WAIT_HELLO:
        want = HELLO_FIXED;
        if (h->in_len >= HELLO_FIXED) want += (size_t)h->in[6] << 8 | h->in[7];
        break;
    case HS_WAIT_PROOF:
        want = HELLO_PROOF;
        break;
    case HS_WAIT_CHALLENGE:
        want = HELLO_CHALLENGE;
        break;
    case HS_WAIT_OK:
        want = HELLO_OK;
        break;
    default:
        want = h->in_len + 1; /* a byte, to see EOF or a protocol error */
        break;
    }
    if (want > sizeof h->in) want = sizeof h->in;
    if (want <= h->in_len) want = h->in_len + 1 <= sizeof h->in ? h->in_len + 1 : h->in_len;
    return want;
}

static void hs_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct hs *h = handle->data;
    (void)suggested;
    /* Never read past the message expected next: whatever follows the hello stays in the
     * socket for the stream's next owner. */
    size_t want = hs_want(h);
    *buf = uv_buf_init((char *)h->in + h->in_len, (unsigned)(want - h->in_len));
}

/* ---- acceptor side ---- */

static void acceptor_on_hello(struct hs *h)
{
    struct port *p = h->p;
    struct hello hl;
    int n = hello_decode(h->in, h->in_len, &hl);
    if (n == 0) return;
    if (n < 0 || (size_t)n != h->in_len) {
        hs_refuse(h, "not a cluster hello");
        return;
    }
    h->hello_len = (size_t)n;
    memcpy(h->hello, h->in, h->hello_len);
    h->in_len = 0;
    uint8_t ch[HELLO_CHALLENGE] = {0};
    memcpy(ch, "STCC", 4);
    ch[4] = HELLO_VERSION;
    int status = HELLO_STATUS_OK;
    if (h->hello[4] != HELLO_VERSION)
        status = HELLO_STATUS_VERSION;
    else if (hl.cluster != p->cfg.cluster)
        status = HELLO_STATUS_CLUSTER;
    ch[5] = (uint8_t)status;
    hello_put64(ch + 8, p->cfg.node_id);
    if (status != HELLO_STATUS_OK) {
        hs_write(h, ch, sizeof ch);
        hs_refuse(h, status == HELLO_STATUS_VERSION ? "unknown hello version"
                                                    : "from another cluster (cluster name)");
        return;
    }
    if (hl.channel < HELLO_CHANNEL_RAFT || hl.channel > HELLO_CHANNEL_MAX || hl.node_id == 0) {
        hs_refuse(h, "bad channel or node id");
        return;
    }
    h->channel = hl.channel;
    h->peer_id = hl.node_id;
    memcpy(h->peer_addr, hl.addr, sizeof h->peer_addr);
    if (hello_nonce(h->nonce_a) != 0) {
        hs_fail(h, -EIO);
        return;
    }
    memcpy(ch + 16, h->nonce_a, HELLO_NONCE);
    uint8_t extra[8 + HELLO_NONCE];
    memcpy(extra, ch + 8, sizeof extra);
    if (hello_mac(p->secret, p->cfg.secret_len, 'A', h->hello, h->hello_len, extra, sizeof extra,
                  ch + 16 + HELLO_NONCE) != 0) {
        hs_fail(h, -EIO);
        return;
    }
    h->state = HS_WAIT_PROOF;
    int rc = hs_write(h, ch, sizeof ch);
    if (rc != 0) hs_fail(h, rc);
}

static void acceptor_on_proof(struct hs *h)
{
    struct port *p = h->p;
    if (h->in_len < HELLO_PROOF) return;
    if (h->in_len > HELLO_PROOF) {
        hs_refuse(h, "bytes after the proof");
        return;
    }
    uint8_t mac[HELLO_MAC];
    if (hello_mac(p->secret, p->cfg.secret_len, 'D', h->hello, h->hello_len, h->nonce_a,
                  HELLO_NONCE, mac) != 0) {
        hs_fail(h, -EIO);
        return;
    }
    if (!hello_mac_equal(mac, h->in)) {
        hs_refuse(h, "wrong cluster secret");
        return;
    }
    uv_read_stop((uv_stream_t *)h->tcp);
    h->state = HS_HANDOFF;
    int rc = hs_write(h, (const uint8_t *)"STOK", HELLO_OK);
    if (rc != 0) hs_fail(h, rc);
}

/* ---- dialer side ---- */

static void dialer_on_challenge(struct hs *h)
{
    struct port *p = h->p;
    if (h->in_len >= 4 && memcmp(h->in, "STCC", 4) != 0) {
        hs_refuse(h, "not a cluster port");
        return;
    }
    if (h->in_len < HELLO_CHALLENGE) return;
    if (h->in_len > HELLO_CHALLENGE) {
        hs_refuse(h, "bytes after the challenge");
        return;
    }
    if (h->in[5] != HELLO_STATUS_OK) {
        hs_refuse(h, h->in[5] == HELLO_STATUS_CLUSTER ? "the peer belongs to another cluster"
                                                      : "the peer speaks another hello version");
        return;
    }
    uint8_t mac[HELLO_MAC];
    if (hello_mac(p->secret, p->cfg.secret_len, 'A', h->hello, h->hello_len, h->in + 8,
                  8 + HELLO_NONCE, mac) != 0) {
        hs_fail(h, -EIO);
        return;
    }
    if (!hello_mac_equal(mac, h->in + 16 + HELLO_NONCE)) {
        hs_refuse(h, "the peer cannot prove the cluster secret");
        return;
    }
    h->peer_id = hello_get64(h->in + 8);
    memcpy(h->nonce_a, h->in + 16, HELLO_NONCE);
    h->in_len = 0;
    uint8_t proof[HELLO_PROOF];
    if (hello_mac(p->secret, p->cfg.secret_len, 'D', h->hello, h->hello_len, h->nonce_a,
                  HELLO_NONCE, proof) != 0) {
        hs_fail(h, -EIO);
        return;
    }
    h->state = HS_WAIT_OK;
    int rc = hs_write(h, proof, sizeof proof);
    if (rc != 0) hs_fail(h, rc);
}

static void dialer_on_ok(struct hs *h)
{
    if (h->in_len < HELLO_OK) return;
    if (h->in_len > HELLO_OK || memcmp(h->in, "STOK", 4) != 0) {
        /* The acceptor closes without OK when our proof was wrong. */
        hs_refuse(h, "hello not accepted");
        return;
    }
    uv_read_stop((uv_stream_t *)h->tcp);
    h->state = HS_HANDOFF;
    if (h->writes_pending == 0) hs_handoff(h);
}

static void hs_read_error(struct hs *h, ssize_t nread)
{
    if (h->state == HS_WAIT_OK && nread == UV_EOF) {
        hs_refuse(h, "closed by the peer (wrong cluster secret?)");
        return;
    }
    if (h->state == HS_WAIT_PROOF) {
        /* A dialer that could not check our proof gives up here. */
        hs_refuse(h, "closed without proving the cluster secret");
        return;
    }
    if (h->state == HS_TLS || (h->tls && h->state == HS_WAIT_CHALLENGE)) {
        /* In TLS 1.3 the server checks the client's certificate after the client is done. */
        hs_refuse(h, "closed during the TLS handshake (certificate not accepted?)");
        return;
    }
    if (nread == UV_ENOBUFS) {
        /* hs_alloc_cb had no room left: more bytes than any hello message. */
        hs_refuse(h, "hello too long");
        return;
    }
    hs_fail(h, (int)nread);
}

static void hs_dispatch(struct hs *h)
{
    switch (h->state) {
    case HS_WAIT_HELLO:
        acceptor_on_hello(h);
        break;
    case HS_WAIT_PROOF:
        acceptor_on_proof(h);
        break;
    case HS_WAIT_CHALLENGE:
        dialer_on_challenge(h);
        break;
    case HS_WAIT_OK:
        dialer_on_ok(h);
        break;
    default:
        hs_fail(h, -EPROTO);
        break;
    }
}

static void hs_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct hs *h = s->data;
    (void)buf;
    if (nread == 0) return;
    if (nread < 0) {
        hs_read_error(h, nread);
        return;
    }
    h->in_len += (size_t)nread;
    hs_dispatch(h);
    /* h may be gone now (handed off): reads never exceed the expected message (alloc_cb). */
}

/* ---- the hello inside TLS ---- */

static bool hs_in_hello(const struct hs *h)
{
    return h->state == HS_WAIT_HELLO || h->state == HS_WAIT_PROOF ||
           h->state == HS_WAIT_CHALLENGE || h->state == HS_WAIT_OK;
}

/* Runs the handshake, then the hello messages wolfSSL has decrypted. */
static void hs_tls_drive(struct hs *h)
{
    h->driving = true;
    WOLFSSL *ssl = h->tls->ssl;
    if (h->state == HS_TLS) {
        int rc = h->dialer ? wolfSSL_connect(ssl) : wolfSSL_accept(ssl);
        if (rc != WOLFSSL_SUCCESS) {
            int err = wolfSSL_get_error(ssl, rc);
            if (err != WOLFSSL_ERROR_WANT_READ && err != WOLFSSL_ERROR_WANT_WRITE) {
                char why[128], es[WOLFSSL_MAX_ERROR_SZ];
                snprintf(why, sizeof why, "TLS handshake failed: %s",
                         wolfSSL_ERR_error_string((unsigned long)err, es));
                hs_refuse(h, why);
            }
            goto out;
        }
        if (h->dialer) {
            h->state = HS_WAIT_CHALLENGE;
            rc = hs_write(h, h->hello, h->hello_len);
            if (rc != 0) {
                hs_fail(h, rc);
                goto out;
            }
        } else {
            h->state = HS_WAIT_HELLO;
        }
    }
    while (!h->dead && hs_in_hello(h)) {
        size_t want = hs_want(h);
        if (want <= h->in_len) {
            hs_refuse(h, "hello too long");
            break;
        }
        int n = wolfSSL_read(ssl, h->in + h->in_len, (int)(want - h->in_len));
        if (n <= 0) {
            int err = wolfSSL_get_error(ssl, n);
            if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) break;
            if (err == WOLFSSL_ERROR_ZERO_RETURN) {
                hs_read_error(h, UV_EOF);
            } else {
                char why[128], es[WOLFSSL_MAX_ERROR_SZ];
                snprintf(why, sizeof why, "TLS error: %s",
                         wolfSSL_ERR_error_string((unsigned long)err, es));
                hs_refuse(h, why);
            }
            break;
        }
        h->in_len += (size_t)n;
        hs_dispatch(h);
    }
out:
    h->driving = false;
    if (h->dead) free(h);
}

static void hs_tls_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct hs *h = handle->data;
    (void)suggested;
    tls_alloc(h->tls, buf);
}

static void hs_tls_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct hs *h = s->data;
    (void)buf;
    if (nread == 0) return;
    if (nread < 0) {
        hs_read_error(h, nread == UV_ENOBUFS ? -ENOMEM : nread);
        return;
    }
    h->tls->rx_len += (size_t)nread;
    hs_tls_drive(h);
}

/* The TCP connection is up: with cluster TLS, the handshake comes first. */
static int hs_tls_start(struct hs *h)
{
    struct port *p = h->p;
    h->tls = tls_new(h->dialer ? p->tls_cli : p->tls_srv);
    if (!h->tls) return -ENOMEM;
    h->tls->out = hs_tls_out;
    h->tls->owner = h;
    h->state = HS_TLS;
    int rc = uv_read_start((uv_stream_t *)h->tcp, hs_tls_alloc_cb, hs_tls_read_cb);
    if (rc != 0) return rc;
    hs_tls_drive(h);
    return 0;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct port *p = server->data;
    if (status < 0 || p->closing) return;
    uv_tcp_t *tcp = raft_malloc(sizeof *tcp);
    if (!tcp) return;
    uv_tcp_init(p->loop, tcp);
    p->n_handles++;
    tcp->data = p;
    if (uv_accept(server, (uv_stream_t *)tcp) != 0) {
        uv_close((uv_handle_t *)tcp, tcp_free_cb);
        return;
    }
    struct hs *h = hs_new(p, false);
    if (!h) {
        uv_close((uv_handle_t *)tcp, tcp_free_cb);
        return;
    }
    h->tcp = tcp;
    tcp->data = h;
    h->state = HS_WAIT_HELLO;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    snprintf(h->where, sizeof h->where, "?");
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) == 0) {
        char ip[64] = "?";
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            snprintf(h->where, sizeof h->where, "[%s]:%u", ip,
                     ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            snprintf(h->where, sizeof h->where, "%s:%u", ip,
                     ntohs(((struct sockaddr_in *)&ss)->sin_port));
        }
    }
    uv_tcp_nodelay(tcp, 1);
    int rc =
        p->tls_srv ? hs_tls_start(h) : uv_read_start((uv_stream_t *)tcp, hs_alloc_cb, hs_read_cb);
    if (rc != 0) hs_fail(h, rc);
}

static void dial_try_next(struct hs *h, int last_error);

static void dial_connect_cb(uv_connect_t *req, int status)
{
    struct hs *h = req->data;
    if (h->state != HS_CONNECTING) return; /* failing: the close callback finishes */
    if (h->canceled) {
        hs_fail(h, -ECANCELED);
        return;
    }
    if (status < 0) {
        uv_tcp_t *tcp = h->tcp;
        h->tcp = NULL;
        tcp->data = h->p;
        uv_close((uv_handle_t *)tcp, tcp_free_cb);
        dial_try_next(h, status);
        return;
    }
    uv_tcp_nodelay(h->tcp, 1);
    if (h->p->tls_cli) {
        int rc = hs_tls_start(h);
        if (rc != 0) hs_fail(h, rc);
        return;
    }
    h->state = HS_WAIT_CHALLENGE;
    int rc = hs_write(h, h->hello, h->hello_len);
    if (rc == 0) rc = uv_read_start((uv_stream_t *)h->tcp, hs_alloc_cb, hs_read_cb);
    if (rc != 0) hs_fail(h, rc);
}

static void dial_try_next(struct hs *h, int last_error)
{
    struct port *p = h->p;
    struct addrinfo *ai = h->ai_next;
    if (!ai || p->closing) {
        h->state = HS_FAILING;
        hs_finish(h, p->closing ? -ECANCELED : last_error);
        return;
    }
    h->ai_next = ai->ai_next;
    uv_tcp_t *tcp = raft_malloc(sizeof *tcp);
    if (!tcp) {
        h->state = HS_FAILING;
        hs_finish(h, -ENOMEM);
        return;
    }
    uv_tcp_init(p->loop, tcp);
    p->n_handles++;
    tcp->data = h;
    h->tcp = tcp;
    h->conn.data = h;
    h->state = HS_CONNECTING;
    int rc = uv_tcp_connect(&h->conn, tcp, ai->ai_addr, dial_connect_cb);
    if (rc != 0) {
        h->tcp = NULL;
        tcp->data = p;
        uv_close((uv_handle_t *)tcp, tcp_free_cb);
        dial_try_next(h, rc);
    }
}

static void dial_gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct hs *h = req->data;
    struct port *p = h->p;
    p->n_gai--;
    h->ai = res;
    h->ai_next = res;
    if (h->canceled || p->closing) {
        h->state = HS_FAILING;
        hs_finish(h, -ECANCELED);
        return;
    }
    if (status < 0) {
        port_logf(p, CLUSTER_LOG_INFO, "cluster port: cannot resolve %s: %s", h->where,
                  uv_strerror(status));
        h->state = HS_FAILING;
        hs_finish(h, status);
        return;
    }
    /* Start at the nth address (wrapping): successive dials of a name that resolves to several
     * hosts try each in turn. */
    size_t n = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        n++;
    for (size_t skip = n ? h->nth % n : 0; skip > 0; skip--)
        h->ai_next = h->ai_next->ai_next;
    dial_try_next(h, -EHOSTUNREACH);
}

int port_dial(struct port *p, const char *address, uint8_t channel, port_dial_cb cb, void *data,
              struct port_dial **out)
{
    return port_dial_nth(p, address, 0, channel, cb, data, out);
}

int port_dial_nth(struct port *p, const char *address, unsigned nth, uint8_t channel,
                  port_dial_cb cb, void *data, struct port_dial **out)
{
    char host[256], serv[16];
    if (p->closing) return -ECANCELED;
    if (port_split_address(address, host, sizeof host, serv, sizeof serv) != 0) return -EINVAL;
    struct hs *h = hs_new(p, true);
    if (!h) return -ENOMEM;
    h->channel = channel;
    h->nth = nth;
    h->cb = cb;
    h->data = data;
    snprintf(h->where, sizeof h->where, "%s", address);
    struct hello hl = {.channel = channel, .cluster = p->cfg.cluster, .node_id = p->cfg.node_id};
    snprintf(hl.addr, sizeof hl.addr, "%s", p->advertise);
    int rc = hello_nonce(hl.nonce);
    if (rc == 0) {
        h->hello_len = hello_encode(&hl, h->hello);
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        h->gai.data = h;
        h->state = HS_RESOLVING;
        rc = uv_getaddrinfo(p->loop, &h->gai, dial_gai_cb, host, serv, &hints);
    }
    if (rc != 0) {
        hs_unlink(h);
        free(h);
        return rc;
    }
    p->n_gai++;
    if (out) *out = (struct port_dial *)h;
    return 0;
}

void port_dial_cancel(struct port_dial *d)
{
    struct hs *h = (struct hs *)d;
    if (h->canceled || h->state == HS_FAILING) return;
    h->canceled = true;
    h->cb = NULL; /* the caller asked: it hears nothing more */
    if (h->state == HS_RESOLVING) {
        uv_cancel((uv_req_t *)&h->gai); /* or the callback sees canceled */
        return;
    }
    hs_fail(h, -ECANCELED);
}

static void stream_free_cb(uv_handle_t *handle)
{
    raft_free(handle); /* called through its own type, not a cast of raft_free */
}

void port_stream_close(uv_tcp_t *stream)
{
    uv_close((uv_handle_t *)stream, stream_free_cb);
}

/* ---- the plaintext bridge of a TLS connection ---- */

struct bwreq {
    uv_write_t w;
    struct bridge *b;
    uint8_t buf[];
};

static void bridge_close(struct bridge *b);

static void bridge_handle_closed(uv_handle_t *handle)
{
    struct bridge *b = handle->data;
    if (handle == (uv_handle_t *)b->net) raft_free(handle);
    if (--b->open_handles > 0) return;
    struct port *p = b->p;
    if (b->prev)
        b->prev->next = b->next;
    else
        p->bridges = b->next;
    if (b->next) b->next->prev = b->prev;
    tls_free(b->tls);
    free(b);
    port_maybe_closed(p);
}

static void bridge_close(struct bridge *b)
{
    if (b->closing) return;
    b->closing = true;
    uv_close((uv_handle_t *)b->net, bridge_handle_closed);
    uv_close((uv_handle_t *)&b->inner, bridge_handle_closed);
}

static void bridge_net_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct bridge *b = handle->data;
    (void)suggested;
    tls_alloc(b->tls, buf);
}

static void bridge_inner_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct bridge *b = handle->data;
    (void)suggested;
    *buf = uv_buf_init((char *)b->ibuf, sizeof b->ibuf);
}

static void bridge_net_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void bridge_inner_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* A write to either side finished: resume the side paused for it. */
static void bridge_write_cb(uv_write_t *w, int status)
{
    struct bwreq *r = (struct bwreq *)w;
    struct bridge *b = r->b;
    uv_stream_t *s = w->handle;
    free(r);
    if (b->closing) return;
    if (status < 0) {
        bridge_close(b);
        return;
    }
    if (uv_stream_get_write_queue_size(s) > BRIDGE_HIGH / 2) return;
    if (s == (uv_stream_t *)b->net && b->inner_paused) {
        b->inner_paused = false;
        uv_read_start((uv_stream_t *)&b->inner, bridge_inner_alloc_cb, bridge_inner_read_cb);
    } else if (s == (uv_stream_t *)&b->inner && b->net_paused) {
        b->net_paused = false;
        uv_read_start((uv_stream_t *)b->net, bridge_net_alloc_cb, bridge_net_read_cb);
    }
}

static int bridge_write(struct bridge *b, uv_stream_t *s, const uint8_t *buf, size_t len)
{
    int n = uv_try_write(s, &(uv_buf_t){.base = (char *)buf, .len = len}, 1);
    if (n == (int)len) return 0;
    if (n < 0 && n != UV_EAGAIN) return n;
    size_t done = n > 0 ? (size_t)n : 0;
    struct bwreq *r = malloc(sizeof *r + (len - done));
    if (!r) return -ENOMEM;
    r->b = b;
    memcpy(r->buf, buf + done, len - done);
    uv_buf_t ub = uv_buf_init((char *)r->buf, (unsigned)(len - done));
    int rc = uv_write(&r->w, s, &ub, 1, bridge_write_cb);
    if (rc != 0) free(r);
    return rc;
}

static int bridge_tls_out(void *owner, const uint8_t *buf, size_t len)
{
    struct bridge *b = owner;
    if (b->closing) return -ECANCELED;
    return bridge_write(b, (uv_stream_t *)b->net, buf, len);
}

/* Decrypts what wolfSSL can and passes it on to the consumer's end. */
static void bridge_pump_in(struct bridge *b)
{
    uint8_t buf[16384];
    for (;;) {
        int n = wolfSSL_read(b->tls->ssl, buf, sizeof buf);
        if (n > 0) {
            if (bridge_write(b, (uv_stream_t *)&b->inner, buf, (size_t)n) != 0) {
                bridge_close(b);
                return;
            }
            continue;
        }
        int err = wolfSSL_get_error(b->tls->ssl, n);
        if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) break;
        if (err != WOLFSSL_ERROR_ZERO_RETURN) {
            char es[WOLFSSL_MAX_ERROR_SZ];
            port_logf(b->p, CLUSTER_LOG_INFO, "cluster port: TLS connection with node %llu: %s",
                      (unsigned long long)b->peer_id,
                      wolfSSL_ERR_error_string((unsigned long)err, es));
        }
        bridge_close(b);
        return;
    }
    if (!b->net_paused && uv_stream_get_write_queue_size((uv_stream_t *)&b->inner) > BRIDGE_HIGH) {
        b->net_paused = true;
        uv_read_stop((uv_stream_t *)b->net);
    }
}

static void bridge_net_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct bridge *b = s->data;
    (void)buf;
    if (nread == 0 || b->closing) return;
    if (nread < 0) {
        bridge_close(b);
        return;
    }
    b->tls->rx_len += (size_t)nread;
    bridge_pump_in(b);
}

static void bridge_inner_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct bridge *b = s->data;
    if (nread == 0 || b->closing) return;
    if (nread < 0) {
        bridge_close(b); /* the consumer closed its end */
        return;
    }
    int n = wolfSSL_write(b->tls->ssl, buf->base, (int)nread);
    if (n != (int)nread) {
        bridge_close(b);
        return;
    }
    if (!b->inner_paused && uv_stream_get_write_queue_size((uv_stream_t *)b->net) > BRIDGE_HIGH) {
        b->inner_paused = true;
        uv_read_stop((uv_stream_t *)&b->inner);
    }
}

static void bridge_abort_closed(uv_handle_t *handle)
{
    free(handle->data);
}

/* Takes h's network stream and TLS session; *user gets the consumer's end. */
static int bridge_new(struct hs *h, uv_tcp_t **user)
{
    struct port *p = h->p;
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return -errno;
    struct bridge *b = calloc(1, sizeof *b);
    uv_tcp_t *u = raft_malloc(sizeof *u);
    if (!b || !u) {
        free(b);
        raft_free(u);
        close(fds[0]);
        close(fds[1]);
        return -ENOMEM;
    }
    uv_tcp_init(p->loop, u);
    uv_tcp_init(p->loop, &b->inner);
    int rc = uv_tcp_open(u, fds[0]);
    int rc2 = uv_tcp_open(&b->inner, fds[1]);
    if (rc != 0 || rc2 != 0) {
        /* uv_close closes an opened fd; close the others here. */
        if (rc != 0) close(fds[0]);
        if (rc2 != 0) close(fds[1]);
        uv_close((uv_handle_t *)u, stream_free_cb);
        b->inner.data = b;
        uv_close((uv_handle_t *)&b->inner, bridge_abort_closed);
        return rc != 0 ? rc : rc2;
    }
    b->p = p;
    b->net = h->tcp;
    b->tls = h->tls;
    b->tls->out = bridge_tls_out;
    b->tls->owner = b;
    b->peer_id = h->peer_id;
    b->open_handles = 2;
    b->net->data = b;
    b->inner.data = b;
    b->next = p->bridges;
    if (p->bridges) p->bridges->prev = b;
    p->bridges = b;
    uv_read_start((uv_stream_t *)b->net, bridge_net_alloc_cb, bridge_net_read_cb);
    uv_read_start((uv_stream_t *)&b->inner, bridge_inner_alloc_cb, bridge_inner_read_cb);
    *user = u;
    bridge_pump_in(b); /* records wolfSSL already holds */
    return 0;
}

/* ---- listener and lifecycle ---- */

static void sweep_cb(uv_timer_t *t)
{
    struct port *p = t->data;
    uint64_t now = uv_now(p->loop);
    struct hs *h = p->hs_head;
    while (h) {
        struct hs *next = h->next;
        if (h->state != HS_FAILING && h->state != HS_RESOLVING && h->state != HS_HANDOFF &&
            now > h->deadline_ms) {
            if (h->state == HS_CONNECTING)
                hs_fail(h, -ETIMEDOUT);
            else
                hs_refuse(h, "hello timed out");
        }
        h = next;
    }
}

static int tls_ctx_new(struct port *p, const struct port_config *cfg, bool server,
                       WOLFSSL_CTX **out)
{
    WOLFSSL_CTX *ctx =
        wolfSSL_CTX_new(server ? wolfTLSv1_3_server_method() : wolfTLSv1_3_client_method());
    if (!ctx) return -ENOMEM;
    *out = ctx;
    const char *what = NULL;
    if (wolfSSL_CTX_load_verify_buffer(ctx, (const unsigned char *)cfg->tls_ca_pem,
                                       (long)cfg->tls_ca_pem_len,
                                       WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
        what = "cluster_cafile (not a PEM certificate?)";
    else if (wolfSSL_CTX_use_certificate_chain_buffer(ctx, (const unsigned char *)cfg->tls_cert_pem,
                                                      (long)cfg->tls_cert_pem_len) !=
             WOLFSSL_SUCCESS)
        what = "cluster_certfile (not a PEM certificate?)";
    else if (wolfSSL_CTX_use_PrivateKey_buffer(ctx, (const unsigned char *)cfg->tls_key_pem,
                                               (long)cfg->tls_key_pem_len,
                                               WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
        what = "cluster_keyfile (not a password-less PEM key?)";
    if (what) {
        port_logf(p, CLUSTER_LOG_ERR, "cluster TLS: cannot load %s", what);
        return -EINVAL;
    }
    /* Debian's wolfSSL has no AES-NI: its software AES-GCM is several times slower than
     * ChaCha20-Poly1305, which both ends therefore prefer. */
    if (wolfSSL_CTX_set_cipher_list(ctx, "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:"
                                         "TLS13-AES256-GCM-SHA384") != WOLFSSL_SUCCESS) {
        port_logf(p, CLUSTER_LOG_ERR, "cluster TLS: no TLS 1.3 cipher suite available");
        return -EINVAL;
    }
    /* Both sides prove a certificate signed by the cluster CA. */
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return 0;
}

static int port_tls_setup(struct port *p, const struct port_config *cfg)
{
    if (!cfg->tls_ca_pem || !cfg->tls_cert_pem || !cfg->tls_key_pem) {
        port_logf(p, CLUSTER_LOG_ERR,
                  "cluster TLS needs all three of cluster_cafile, cluster_certfile and "
                  "cluster_keyfile");
        return -EINVAL;
    }
    if (wolfSSL_Init() != WOLFSSL_SUCCESS) return -EIO;
    /* A context counts as set up from here on: port_tls_free undoes wolfSSL_Init. */
    int rc = tls_ctx_new(p, cfg, true, &p->tls_srv);
    if (rc == 0) rc = tls_ctx_new(p, cfg, false, &p->tls_cli);
    if (rc != 0 && !p->tls_srv && !p->tls_cli) wolfSSL_Cleanup();
    return rc;
}

int port_new(uv_loop_t *loop, const struct port_config *cfg, port_accept_cb accept_cb, void *ctx,
             struct port **out)
{
    struct port *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    p->loop = loop;
    p->cfg = *cfg;
    if (!p->cfg.hello_timeout_ms) p->cfg.hello_timeout_ms = DEFAULT_HELLO_TIMEOUT_MS;
    p->advertise = strdup(cfg->advertise ? cfg->advertise : "");
    p->secret = malloc(cfg->secret_len ? cfg->secret_len : 1);
    if (!p->advertise || !p->secret) {
        free(p->advertise);
        free(p->secret);
        free(p);
        return -ENOMEM;
    }
    if (cfg->secret_len) memcpy(p->secret, cfg->secret, cfg->secret_len);
    if (cfg->tls_ca_pem || cfg->tls_cert_pem || cfg->tls_key_pem) {
        int rc = port_tls_setup(p, cfg);
        if (rc != 0) {
            port_tls_free(p);
            free(p->advertise);
            free(p->secret);
            free(p);
            return rc;
        }
    }
    p->accept_cb = accept_cb;
    p->ctx = ctx;
    uv_tcp_init(loop, &p->listener);
    p->listener.data = p;
    uv_timer_init(loop, &p->sweep);
    p->sweep.data = p;
    uv_unref((uv_handle_t *)&p->sweep);
    uv_timer_start(&p->sweep, sweep_cb, SWEEP_MS, SWEEP_MS);
    p->n_own = 2;
    *out = p;
    return 0;
}

int port_listen(struct port *p, const char *bind, unsigned port_no)
{
    struct sockaddr_storage ss;
    int rc;
    if (!bind || !*bind) {
        rc = uv_ip6_addr("::", (int)port_no, (struct sockaddr_in6 *)&ss);
        if (rc == 0) rc = uv_tcp_bind(&p->listener, (struct sockaddr *)&ss, 0);
        if (rc != 0) {
            /* No IPv6 on this host. */
            uv_ip4_addr("0.0.0.0", (int)port_no, (struct sockaddr_in *)&ss);
            rc = uv_tcp_bind(&p->listener, (struct sockaddr *)&ss, 0);
        }
    } else {
        uv_getaddrinfo_t req;
        char serv[16];
        snprintf(serv, sizeof serv, "%u", port_no);
        struct addrinfo hints = {
            .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
        rc = uv_getaddrinfo(p->loop, &req, NULL, bind, serv, &hints);
        if (rc == 0) {
            rc = uv_tcp_bind(&p->listener, req.addrinfo->ai_addr, 0);
            uv_freeaddrinfo(req.addrinfo);
        }
    }
    if (rc == 0) rc = uv_listen((uv_stream_t *)&p->listener, 128, on_connection);
    if (rc != 0) {
        port_logf(p, CLUSTER_LOG_ERR, "cluster port: cannot listen on %s:%u: %s",
                  bind && *bind ? bind : "*", port_no, uv_strerror(rc));
        return rc;
    }
    p->listening = true;
    port_logf(p, CLUSTER_LOG_NOTICE, "cluster port listening on %s:%u", bind && *bind ? bind : "*",
              port_bound(p));
    return 0;
}

unsigned port_bound(const struct port *p)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&p->listener, (struct sockaddr *)&ss, &len) != 0) return 0;
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void port_get_stats(const struct port *p, struct port_stats *out)
{
    *out = p->stats;
}

static void own_closed(uv_handle_t *handle)
{
    struct port *p = handle->data;
    p->n_own--;
    port_maybe_closed(p);
}

void port_close(struct port *p, void (*cb)(void *data), void *data)
{
    p->closing = true;
    p->close_cb = cb;
    p->close_data = data;
    uv_close((uv_handle_t *)&p->listener, own_closed);
    uv_close((uv_handle_t *)&p->sweep, own_closed);
    for (struct bridge *b = p->bridges; b; b = b->next)
        bridge_close(b);
    struct hs *h = p->hs_head;
    while (h) {
        struct hs *next = h->next;
        if (h->state == HS_RESOLVING) {
            h->canceled = true;
            uv_cancel((uv_req_t *)&h->gai);
        } else if (h->state == HS_HANDOFF) {
            hs_fail(h, -ECANCELED);
        } else {
            hs_fail(h, -ECANCELED);
        }
        h = next;
    }
}
