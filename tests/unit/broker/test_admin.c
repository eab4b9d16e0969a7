/* Tests of broker/admin.c over real HTTP: the server runs on a libuv loop in this thread with
 * hooks that answer fixed data; a client thread sends raw requests on 127.0.0.1 with
 * blocking sockets and records the answers, which are checked once the loop has stopped. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "admin.h"
#include "json.h"
#include "mem.h"
#include "metrics.h"

#define TOKEN "s3cret-T0ken"

/* ---- the hooks (loop thread) ---- */

static unsigned ready_calls;
static uint64_t joined_id, removed_id, transfer_id = 999;
static char joined_address[64];
static struct admin_op *deferred_op;
static uv_timer_t defer_timer;

static bool hook_ready(void *ctx)
{
    (void)ctx;
    return ++ready_calls > 1; /* not ready the first time, ready afterwards */
}

static int hook_cluster_json(void *ctx, struct json_writer *w)
{
    (void)ctx;
    json_begin_object(w);
    json_key(w, "node_id");
    json_uint(w, 1);
    json_key(w, "leader");
    json_null(w);
    json_key(w, "members");
    json_begin_array(w);
    json_end_array(w);
    json_end_object(w);
    return 0;
}

static int hook_metrics(void *ctx, struct textbuf *out)
{
    (void)ctx;
    metrics_gauge(out, "starling_connections", "Open client connections.", 5);
    return 0;
}

static void defer_cb(uv_timer_t *t)
{
    (void)t;
    admin_op_finish(deferred_op, 409, "node 3 is already a member");
    deferred_op = NULL;
}

static void hook_join(void *ctx, struct admin_op *op, uint64_t id, const char *address)
{
    (void)ctx;
    if (id == 3) { /* finished later, from a timer */
        deferred_op = op;
        uv_timer_start(&defer_timer, defer_cb, 50, 0);
        return;
    }
    joined_id = id;
    snprintf(joined_address, sizeof joined_address, "%s", address);
    admin_op_finish(op, 200, "node added");
}

static void hook_remove(void *ctx, struct admin_op *op, uint64_t id)
{
    (void)ctx;
    removed_id = id;
    admin_op_finish(op, 200, NULL);
}

static void hook_transfer(void *ctx, struct admin_op *op, uint64_t id)
{
    (void)ctx;
    transfer_id = id;
    admin_op_finish(op, 503, "no leader");
}

static const struct admin_hooks hooks = {
    .ready = hook_ready,
    .cluster_json = hook_cluster_json,
    .metrics = hook_metrics,
    .join = hook_join,
    .remove = hook_remove,
    .transfer = hook_transfer,
};

/* ---- the client (its own thread) ---- */

#define MAX_CASES 32

struct answer {
    int status;        /* 0: none (closed without an answer) */
    char headers[512]; /* header lines, lower-cased names */
    char body[512];
    int closed; /* the server closed the connection after the answers */
};

struct scenario {
    const char *name;
    const char *request; /* raw bytes; NULL with big_header/big_body set */
    size_t big_header;   /* > 0: a GET with an X-Pad header this long */
    int answers;         /* answers expected on the connection */
    struct answer got[2];
};

static struct scenario cases[] = {
    {"healthz", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0, 1, {{0}}},
    {"readyz not yet", "GET /readyz HTTP/1.1\r\n\r\n", 0, 1, {{0}}},
    {"readyz", "GET /readyz HTTP/1.1\r\n\r\n", 0, 1, {{0}}},
    {"cluster no token", "GET /api/v1/cluster HTTP/1.1\r\n\r\n", 0, 1, {{0}}},
    {"cluster wrong token",
     "GET /api/v1/cluster HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\r\n",
     0,
     1,
     {{0}}},
    {"cluster",
     "GET /api/v1/cluster?x=1 HTTP/1.1\r\nauthorization: bearer " TOKEN "\r\n\r\n",
     0,
     1,
     {{0}}},
    {"metrics no token", "GET /metrics HTTP/1.1\r\n\r\n", 0, 1, {{0}}},
    {"metrics", "GET /metrics HTTP/1.1\r\nAuthorization: Bearer " TOKEN "\r\n\r\n", 0, 1, {{0}}},
    {"not found", "GET /nope HTTP/1.1\r\nAuthorization: Bearer " TOKEN "\r\n\r\n", 0, 1, {{0}}},
    {"post cluster",
     "POST /api/v1/cluster HTTP/1.1\r\nAuthorization: Bearer " TOKEN
     "\r\nContent-Length: 0\r\n\r\n",
     0,
     1,
     {{0}}},
    {"get join",
     "GET /api/v1/cluster/join HTTP/1.1\r\nAuthorization: Bearer " TOKEN "\r\n\r\n",
     0,
     1,
     {{0}}},
    {"join bad json",
     "POST /api/v1/cluster/join HTTP/1.1\r\nAuthorization: Bearer " TOKEN
     "\r\nContent-Length: 8\r\n\r\n{\"id\":2,",
     0,
     1,
     {{0}}},
    {"join no address",
     "POST /api/v1/cluster/join HTTP/1.1\r\nAuthorization: Bearer " TOKEN
     "\r\nContent-Length: 8\r\n\r\n{\"id\":2}",
     0,
     1,
     {{0}}},
    {"join",
     "POST /api/v1/cluster/join HTTP/1.1\r\nAuthorization: Bearer " TOKEN
     "\r\nContent-Length: 37\r\n\r\n{\"id\":2,\"address\":\"127.0.0.2:7700\"}  ",
     0,
     1,
     {{0}}},
    {"join later",
     "POST /api/v1/cluster/join HTTP/1.1\r\nAuthorization: Bearer " TOKEN
     "\r\nTransfer-Encoding: chunked\r\n\r\n"
     "10\r\n{\"id\":3,\"address\r\n10\r\n\":\"127.0.0.3:7\"}\r\n0\r\n\r\n",
     0,
     1,
     {{0}}},
    {"remove no token",
     "POST /api/v1/cluster/remove HTTP/1.1\r\nContent-Length: 8\r\n\r\n{\"id\":2}",
     0,
     1,
     {{0}}},
    {"remove id 0",
     "POST /api/v1/cluster/remove HTTP/1.1\r\nAuthorization: Bearer " TOKEN
     "\r\nContent-Length: 8\r\n\r\n{\"id\":0}",
     0,
     1,
     {{0}}},
    {"remove",
     "POST /api/v1/cluster/remove HTTP/1.1\r\nAuthorization: Bearer " TOKEN
     "\r\nContent-Length: 8\r\n\r\n{\"id\":5}",
     0,
     1,
     {{0}}},
    {"transfer any",
     "POST /api/v1/cluster/transfer HTTP/1.1\r\nAuthorization: Bearer " TOKEN
     "\r\nContent-Length: 0\r\n\r\n",
     0,
     1,
     {{0}}},
    {"body too large",
     "POST /api/v1/cluster/join HTTP/1.1\r\nAuthorization: Bearer " TOKEN
     "\r\nContent-Length: 100000\r\n\r\n{",
     0,
     1,
     {{0}}},
    {"headers too large", NULL, 6000, 1, {{0}}},
    {"malformed", "GARBAGE\r\n\r\n", 0, 1, {{0}}},
    {"pipelined",
     "GET /healthz HTTP/1.1\r\n\r\nHEAD /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
     0,
     2,
     {{0}}},
    {"http/1.0", "GET /healthz HTTP/1.0\r\n\r\n", 0, 1, {{0}}},
    {"idle", "", 0, 0, {{0}}},
};
#define NCASES (sizeof cases / sizeof cases[0])

static uint16_t server_port;
static uv_async_t done_async;

static int client_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(server_port)};
    struct timeval tv = {.tv_sec = 5};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads answers from fd into s->got (Content-Length framing; HEAD answers carry none). */
static void client_read(int fd, struct scenario *s, bool head_last)
{
    static char buf[65536];
    size_t n = 0;
    for (int i = 0; i < s->answers; i++) {
        char *end;
        for (;;) {
            buf[n] = '\0';
            if ((end = strstr(buf, "\r\n\r\n")) != NULL) break;
            ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
            if (r <= 0) return;
            n += (size_t)r;
        }
        struct answer *a = &s->got[i];
        sscanf(buf, "HTTP/1.1 %d", &a->status);
        size_t hlen = (size_t)(end - buf);
        snprintf(a->headers, sizeof a->headers, "%.*s", (int)hlen, buf);
        const char *cl = strstr(a->headers, "Content-Length: ");
        size_t blen = cl != NULL ? strtoul(cl + 16, NULL, 10) : 0;
        if (head_last && i == s->answers - 1) blen = 0;
        size_t need = hlen + 4 + blen;
        while (n < need) {
            ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
            if (r <= 0) return;
            n += (size_t)r;
        }
        snprintf(a->body, sizeof a->body, "%.*s", (int)blen, buf + hlen + 4);
        memmove(buf, buf + need, n - need);
        n -= need;
    }
    char c;
    s->got[0].closed = recv(fd, &c, 1, 0) == 0;
}

static void *client_main(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < NCASES; i++) {
        struct scenario *s = &cases[i];
        int fd = client_connect();
        if (fd < 0) continue;
        if (s->big_header > 0) {
            static char req[8192];
            int k = snprintf(req, sizeof req, "GET /healthz HTTP/1.1\r\nX-Pad: ");
            memset(req + k, 'a', s->big_header);
            memcpy(req + k + s->big_header, "\r\n\r\n", 4);
            send(fd, req, (size_t)k + s->big_header + 4, MSG_NOSIGNAL);
        } else {
            send(fd, s->request, strlen(s->request), MSG_NOSIGNAL);
        }
        client_read(fd, s, strncmp(s->name, "pipelined", 9) == 0);
        close(fd);
    }
    uv_async_send(&done_async);
    return NULL;
}

/* ---- the test ---- */

static struct admin *server;
static bool admin_freed;

static void admin_closed_cb(void *data)
{
    (void)data;
    admin_freed = true;
}

static void done_cb(uv_async_t *h)
{
    uv_close((uv_handle_t *)h, NULL);
    uv_close((uv_handle_t *)&defer_timer, NULL);
    admin_close(server, admin_closed_cb, NULL);
}

static const struct answer *got(const char *name, int i)
{
    for (size_t k = 0; k < NCASES; k++)
        if (strcmp(cases[k].name, name) == 0) return &cases[k].got[i];
    fail_msg("no case %s", name);
    return NULL;
}

static void expect(const char *name, int status, const char *body_part)
{
    const struct answer *a = got(name, 0);
    if (a->status != status || (body_part != NULL && strstr(a->body, body_part) == NULL))
        fail_msg("%s: got %d '%s', expected %d with '%s'", name, a->status, a->body, status,
                 body_part ? body_part : "");
}

static void has_header(const char *name, int i, const char *line)
{
    const struct answer *a = got(name, i);
    if (strstr(a->headers, line) == NULL) fail_msg("%s: no '%s' in\n%s", name, line, a->headers);
}

/* Every route, status and limit of the admin API over real sockets. */
static void admin_over_http(void **state)
{
    uv_loop_t loop;
    char err[256];
    pthread_t th;
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &defer_timer);
    struct admin_config cfg = {
        .bind_address = "127.0.0.1",
        .port = 0,
        .token = TOKEN,
        .max_request_bytes = 4096,
        .idle_timeout_ms = 200,
    };
    int rc = admin_start(&loop, &cfg, &hooks, &server, err, sizeof err);
    if (rc != 0) fail_msg("%s", err);
    server_port = admin_port(server);
    assert_true(server_port > 0);
    uv_async_init(&loop, &done_async, done_cb);
    assert_int_equal(pthread_create(&th, NULL, client_main, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    assert_true(admin_freed);
    assert_int_equal(uv_loop_close(&loop), 0);

    expect("healthz", 200, "ok\n");
    has_header("healthz", 0, "Content-Type: text/plain");
    expect("readyz not yet", 503, "not ready");
    expect("readyz", 200, "ready");
    expect("cluster no token", 401,
           "{\"error\":\"unauthorized: a valid bearer token is required\"}");
    has_header("cluster no token", 0, "WWW-Authenticate: Bearer realm=\"starling\"");
    expect("cluster wrong token", 401, "unauthorized");
    expect("cluster", 200, "{\"node_id\":1,\"leader\":null,\"members\":[]}\n");
    has_header("cluster", 0, "Content-Type: application/json");
    expect("metrics no token", 401, "unauthorized");
    expect("metrics", 200, "starling_connections 5\n");
    has_header("metrics", 0, "Content-Type: text/plain; version=0.0.4");
    expect("not found", 404, "{\"error\":\"not found\"}");
    expect("post cluster", 405, "method not allowed");
    has_header("post cluster", 0, "Allow: GET, HEAD");
    expect("get join", 405, "method not allowed");
    has_header("get join", 0, "Allow: POST");
    expect("join bad json", 400, "bad request body: invalid JSON: unexpected end");
    expect("join no address", 400, "\\\"address\\\" (\\\"host:port\\\") is required");
    expect("join", 200, "{\"ok\":true,\"message\":\"node added\"}");
    assert_int_equal(joined_id, 2);
    assert_string_equal(joined_address, "127.0.0.2:7700");
    expect("join later", 409, "node 3 is already a member");
    expect("remove no token", 401, "unauthorized");
    expect("remove id 0", 400, "\\\"id\\\" (a positive integer) is required");
    expect("remove", 200, "{\"ok\":true}");
    assert_int_equal(removed_id, 5);
    expect("transfer any", 503, "no leader");
    assert_int_equal(transfer_id, 0);
    expect("body too large", 413, "request too large");
    assert_true(got("body too large", 0)->closed);
    has_header("body too large", 0, "Connection: close");
    expect("headers too large", 413, "request too large");
    expect("malformed", 400, "malformed HTTP request");
    assert_true(got("malformed", 0)->closed);
    assert_int_equal(got("pipelined", 0)->status, 200);
    assert_string_equal(got("pipelined", 0)->body, "ok\n");
    assert_int_equal(got("pipelined", 1)->status, 200);
    has_header("pipelined", 1, "Content-Length: 3");
    has_header("pipelined", 1, "Connection: close");
    assert_true(got("pipelined", 0)->closed);
    expect("http/1.0", 200, "ok");
    assert_true(got("http/1.0", 0)->closed);
    assert_true(got("idle", 0)->closed); /* closed by the idle timeout */
    assert_int_equal(mem_live_blocks(), 0);
}

/* A port in use: admin_start fails with the address in the message and leaks nothing. */
static void admin_port_in_use(void **state)
{
    uv_loop_t loop;
    char err[256];
    struct admin *a = NULL, *b = NULL;
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct admin_config cfg = {.bind_address = "127.0.0.1"};
    assert_int_equal(admin_start(&loop, &cfg, &hooks, &a, err, sizeof err), 0);
    cfg.port = admin_port(a);
    assert_int_equal(admin_start(&loop, &cfg, &hooks, &b, err, sizeof err), UV_EADDRINUSE);
    char want[128];
    snprintf(want, sizeof want, "admin_listener 127.0.0.1:%u: address already in use", cfg.port);
    assert_string_equal(err, want);
    cfg.bind_address = "not-an-address";
    assert_int_equal(admin_start(&loop, &cfg, &hooks, &b, err, sizeof err), UV_EINVAL);
    admin_close(a, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(mem_live_blocks(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(admin_over_http),
        cmocka_unit_test(admin_port_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
