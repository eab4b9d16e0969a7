/* cluster/hello.c and cluster/port.c: the hello's encoding, and real dials on loopback: the
 * right secret gets a stream on the asked channel with the peer's identity; a wrong secret or
 * another cluster name is refused on both sides; host names and IPv6 literals resolve. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <raft.h>
#include <uv.h>

#include "hello.h"
#include "port.h"

static void hello_roundtrip(void **state)
{
    (void)state;
    struct hello h = {
        .channel = HELLO_CHANNEL_LINK, .cluster = hello_cluster_id(NULL), .node_id = 42};
    assert_int_equal(hello_nonce(h.nonce), 0);
    snprintf(h.addr, sizeof h.addr, "pod-1.svc:7700");
    uint8_t buf[HELLO_MAX];
    size_t n = hello_encode(&h, buf);
    assert_int_equal(n, HELLO_FIXED + strlen("pod-1.svc:7700"));
    struct hello d;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(hello_decode(buf, i, &d), 0); /* more needed */
    assert_int_equal(hello_decode(buf, n, &d), (int)n);
    assert_int_equal(d.node_id, 42);
    assert_int_equal(d.channel, HELLO_CHANNEL_LINK);
    assert_int_equal(d.cluster, hello_cluster_id("starling"));
    assert_string_equal(d.addr, "pod-1.svc:7700");
    assert_memory_equal(d.nonce, h.nonce, HELLO_NONCE);
    buf[0] = 'X';
    assert_int_equal(hello_decode(buf, n, &d), -EPROTO);
    uint8_t m1[HELLO_MAC], m2[HELLO_MAC], m3[HELLO_MAC];
    assert_int_equal(hello_mac((const uint8_t *)"a", 1, 'A', buf, n, NULL, 0, m1), 0);
    assert_int_equal(hello_mac((const uint8_t *)"b", 1, 'A', buf, n, NULL, 0, m2), 0);
    assert_int_equal(hello_mac((const uint8_t *)"a", 1, 'D', buf, n, NULL, 0, m3), 0);
    assert_false(hello_mac_equal(m1, m2));
    assert_false(hello_mac_equal(m1, m3));
    assert_true(hello_mac_equal(m1, m1));
    char host[256], serv[16];
    assert_int_equal(port_split_address("[::1]:7700", host, sizeof host, serv, sizeof serv), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port_split_address("a.b:1", host, sizeof host, serv, sizeof serv), 0);
    assert_int_equal(port_split_address("a.b", host, sizeof host, serv, sizeof serv), -EINVAL);
    assert_int_equal(port_split_address("::1:7", host, sizeof host, serv, sizeof serv), -EINVAL);
    assert_int_equal(port_split_address("h:0", host, sizeof host, serv, sizeof serv), -EINVAL);
    assert_int_equal(port_split_address("h:70000", host, sizeof host, serv, sizeof serv), -EINVAL);
}

static uv_loop_t loop;

struct acc {
    int n;
    uint8_t channel;
    uint64_t id;
    char addr[256];
};

static void on_accept(void *ctx, uint8_t channel, uint64_t id, const char *address,
                      uv_tcp_t *stream)
{
    struct acc *a = ctx;
    a->n++;
    a->channel = channel;
    a->id = id;
    snprintf(a->addr, sizeof a->addr, "%s", address);
    port_stream_close(stream);
}

struct dial {
    bool fired;
    int status;
    uint64_t peer;
};

static void on_dial(void *data, int status, uv_tcp_t *stream, uint64_t peer)
{
    struct dial *d = data;
    d->fired = true;
    d->status = status;
    d->peer = peer;
    if (stream) port_stream_close(stream);
}

static struct port *mkport(uint64_t id, const char *secret, const char *name, struct acc *a)
{
    struct port_config pc = {.node_id = id,
                             .advertise = "self:1",
                             .cluster = hello_cluster_id(name),
                             .secret = (const uint8_t *)secret,
                             .secret_len = strlen(secret),
                             .hello_timeout_ms = 2000};
    struct port *p;
    assert_int_equal(port_new(&loop, &pc, on_accept, a, &p), 0);
    return p;
}

static void wake_cb(uv_timer_t *t)
{
    (void)t;
}

static int dial_and_wait(struct port *p, const char *addr, uint8_t channel, struct dial *d)
{
    memset(d, 0, sizeof *d);
    int rc = port_dial(p, addr, channel, on_dial, d, NULL);
    if (rc != 0) return rc;
    assert_false(d->fired);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, wake_cb, 10, 10);
    uint64_t end = uv_now(&loop) + 5000;
    while (!d->fired && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(d->fired);
    return 0;
}

static void closed(void *data)
{
    (*(int *)data)++;
}

static void dials(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct acc acc = {0}, none = {0};
    struct port *server = mkport(1, "secret", NULL, &acc);
    assert_int_equal(port_listen(server, NULL, 0), 0); /* all interfaces, both families */
    unsigned portno = port_bound(server);
    assert_true(portno > 0);
    char a4[64], aname[64], a6[64];
    snprintf(a4, sizeof a4, "127.0.0.1:%u", portno);
    snprintf(aname, sizeof aname, "localhost:%u", portno);
    snprintf(a6, sizeof a6, "[::1]:%u", portno);

    struct port *good = mkport(2, "secret", NULL, &none);
    struct dial d;
    assert_int_equal(dial_and_wait(good, a4, HELLO_CHANNEL_LINK, &d), 0);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.peer, 1);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(acc.n, 1);
    assert_int_equal(acc.channel, HELLO_CHANNEL_LINK);
    assert_int_equal(acc.id, 2);
    assert_string_equal(acc.addr, "self:1");

    assert_int_equal(dial_and_wait(good, aname, HELLO_CHANNEL_RAFT, &d), 0);
    assert_int_equal(d.status, 0);
    if (dial_and_wait(good, a6, HELLO_CHANNEL_RAFT, &d) == 0 && d.status != -EADDRNOTAVAIL &&
        d.status != -ENETUNREACH && d.status != -ECONNREFUSED)
        assert_int_equal(d.status, 0);
    else
        printf("no IPv6 loopback here (%s)\n", uv_strerror(d.status));

    struct port *bad = mkport(3, "wrong", NULL, &none);
    assert_int_equal(dial_and_wait(bad, a4, HELLO_CHANNEL_LINK, &d), 0);
    assert_int_equal(d.status, -EACCES);
    struct port *other = mkport(4, "secret", "another", &none);
    assert_int_equal(dial_and_wait(other, a4, HELLO_CHANNEL_LINK, &d), 0);
    assert_int_equal(d.status, -EACCES);
    uv_run(&loop, UV_RUN_NOWAIT);
    struct port_stats st;
    port_get_stats(server, &st);
    int accepted_before = acc.n;
    assert_true(st.refused >= 2);
    assert_int_equal(acc.n, accepted_before);
    assert_int_equal(port_dial(good, "no-port", HELLO_CHANNEL_LINK, on_dial, &d, NULL), -EINVAL);
    assert_int_equal(dial_and_wait(good, "name.invalid:1", HELLO_CHANNEL_LINK, &d), 0);
    assert_true(d.status < 0);

    int n_closed = 0;
    port_close(server, closed, &n_closed);
    port_close(good, closed, &n_closed);
    port_close(bad, closed, &n_closed);
    port_close(other, closed, &n_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(n_closed, 4);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- closing with connections in every state of the hello ---- */

struct raw {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t w;
    bool connected, eof;
};

static void raw_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char sink[256];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(sink, sizeof sink);
}

static void raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct raw *r = s->data;
    (void)buf;
    if (nread < 0) {
        r->eof = true;
        uv_read_stop(s);
    }
}

static void raw_written(uv_write_t *w, int status)
{
    (void)w;
    (void)status;
}

static void raw_connected(uv_connect_t *c, int status)
{
    struct raw *r = c->data;
    if (status != 0) return;
    r->connected = true;
    /* The start of a hello: the acceptor waits for the rest. */
    static char partial[] = "STCH\1\2";
    uv_buf_t b = uv_buf_init(partial, 6);
    uv_write(&r->w, (uv_stream_t *)&r->tcp, &b, 1, raw_written);
    uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
}

/* A listener that accepts and never answers: dials to it wait for the challenge. */
static uv_tcp_t mute_listener, mute_conn[4];
static int n_mute;

static void mute_on_connection(uv_stream_t *server, int status)
{
    if (status < 0 || n_mute == 4) return;
    uv_tcp_init(&loop, &mute_conn[n_mute]);
    if (uv_accept(server, (uv_stream_t *)&mute_conn[n_mute]) == 0) n_mute++;
}

struct count {
    int n, status;
};

static void count_dial(void *data, int status, uv_tcp_t *stream, uint64_t peer)
{
    struct count *c = data;
    (void)peer;
    c->n++;
    c->status = status;
    if (stream) port_stream_close(stream);
}

static void expire_cb(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static void run_ms(unsigned ms)
{
    uv_timer_t t;
    bool expired = false;
    uv_timer_init(&loop, &t);
    t.data = &expired;
    uv_timer_start(&t, expire_cb, ms, 0);
    while (!expired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* port_close with an acceptor in its hello, a dial still resolving and a dial waiting for the
 * challenge: each dial callback fires exactly once with -ECANCELED, nothing fires after the
 * close callback, every handle is closed (uv_loop_close() == 0; ASan checks the lifetimes). A
 * canceled dial never calls back. */
static void close_mid_hello(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct acc acc = {0}, none = {0};
    struct port *server = mkport(1, "secret", NULL, &acc);
    assert_int_equal(port_listen(server, "127.0.0.1", 0), 0);
    char a4[64], amute[64];
    snprintf(a4, sizeof a4, "127.0.0.1:%u", port_bound(server));

    uv_tcp_init(&loop, &mute_listener);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(uv_tcp_bind(&mute_listener, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&mute_listener, 8, mute_on_connection), 0);
    struct sockaddr_in bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&mute_listener, (struct sockaddr *)&bound, &blen);
    snprintf(amute, sizeof amute, "127.0.0.1:%u", ntohs(bound.sin_port));

    struct raw raw = {0};
    uv_tcp_init(&loop, &raw.tcp);
    raw.tcp.data = &raw;
    raw.conn.data = &raw;
    uv_ip4_addr("127.0.0.1", (int)port_bound(server), &sa);
    assert_int_equal(uv_tcp_connect(&raw.conn, &raw.tcp, (struct sockaddr *)&sa, raw_connected), 0);

    struct port *dialer = mkport(2, "secret", NULL, &none);
    struct count waiting = {0}, canceled = {0}, resolving = {0};
    assert_int_equal(port_dial(dialer, amute, HELLO_CHANNEL_LINK, count_dial, &waiting, NULL), 0);
    struct port_dial *d;
    assert_int_equal(port_dial(dialer, amute, HELLO_CHANNEL_RAFT, count_dial, &canceled, &d), 0);
    run_ms(200);
    assert_true(raw.connected);
    assert_int_equal(n_mute, 2);
    assert_int_equal(waiting.n + canceled.n, 0);
    port_dial_cancel(d);
    assert_int_equal(port_dial(dialer, a4, HELLO_CHANNEL_LINK, count_dial, &resolving, NULL), 0);

    int n_closed = 0;
    port_close(dialer, closed, &n_closed); /* one dial waits for the challenge, one resolves */
    port_close(server, closed, &n_closed); /* the raw client is in the middle of its hello */
    assert_int_equal(n_closed, 0);
    assert_int_equal(resolving.n + waiting.n, 0); /* never from inside port_close */
    uv_close((uv_handle_t *)&mute_listener, NULL);
    for (int i = 0; i < n_mute; i++)
        uv_close((uv_handle_t *)&mute_conn[i], NULL);
    run_ms(300);
    assert_int_equal(n_closed, 2);
    assert_int_equal(waiting.n, 1);
    assert_int_equal(waiting.status, -ECANCELED);
    assert_int_equal(resolving.n, 1);
    assert_int_equal(resolving.status, -ECANCELED);
    assert_int_equal(canceled.n, 0);
    assert_int_equal(acc.n, 0);
    assert_true(raw.eof); /* the server closed the half-done hello */
    uv_close((uv_handle_t *)&raw.tcp, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hello_roundtrip),
        cmocka_unit_test(dials),
        cmocka_unit_test(close_mid_hello),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
