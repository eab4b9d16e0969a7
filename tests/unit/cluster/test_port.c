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

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hello_roundtrip),
        cmocka_unit_test(dials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
