/* The admin HTTP/1.1 server: connections on the loop, requests parsed by http-parser, routes
 * answered through struct admin_hooks (admin.h); HTTPS through tls.c's caller-driven
 * wolfSSL connections when a TLS context is given. */
#include "admin.h"

#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "tls.h"

#define ADMIN_DEFAULT_MAX_REQUEST (16 * 1024)
#define ADMIN_DEFAULT_IDLE_MS     30000
#define ADMIN_DEFAULT_MAX_CONNS   64
#define ADMIN_MAX_URL             2048
#define ADMIN_MAX_AUTH            1024
#define ADMIN_MAX_ADDRESS         300
#define ADMIN_MAX_RESPONSE        (64u << 20)
#define ADMIN_READ_SIZE           16384
#define ADMIN_HANDSHAKE_MS        10000 /* a TLS handshake not done by then is closed */

struct admin_op {
    struct admin_conn *conn;
    uint64_t leader_id;                     /* admin_op_set_leader(): 0 = none */
    char leader_address[ADMIN_MAX_ADDRESS]; /* the leader's cluster address */
};

struct admin_conn {
    uv_tcp_t tcp;
    struct admin *a;
    struct admin_conn *prev, *next;
    http_parser parser;
    uint64_t last_ms;        /* loop time of the last read */
    size_t req_bytes;        /* bytes of the current request seen by the callbacks */
    struct textbuf url;      /* the request target */
    struct textbuf body;     /* the request body */
    struct textbuf pending;  /* bytes after a complete request: parsed once it is answered */
    struct textbuf out;      /* the response being written (with TLS: being encrypted) */
    struct tls_conn *tls;    /* HTTPS: the connection's TLS state; NULL: plain HTTP */
    struct textbuf tls_out;  /* ciphertext waiting for the write in progress to end */
    struct textbuf tls_wire; /* ciphertext being written */
    uint64_t accepted_ms;
    bool tls_started; /* the first byte was seen (a TLS record, or plain HTTP answered 400) */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    char hdr_name[32];
    size_t hdr_name_len;
    bool hdr_name_long, in_value, hdr_is_auth;
    char auth[ADMIN_MAX_AUTH];
    size_t auth_len;
    bool auth_seen, auth_bad;
    bool message_done; /* a request is complete and not answered yet */
    bool too_large;
    bool keep_alive;
    bool head;       /* HEAD: headers only */
    bool responding; /* a response is being sent: its request is not finished yet */
    bool writing;    /* a uv_write is in progress */
    bool draining;   /* answered with close: read and discard until EOF */
    bool closing;    /* uv_close called */
    bool closed;     /* handle closed; memory kept while op_active */
    bool op_active;
    struct admin_op op;
};

struct admin {
    uv_loop_t *loop;
    uv_tcp_t server;
    uv_timer_t sweep;
    struct admin_hooks hooks;
    char *token;
    size_t token_len;
    struct tls_ctx *tls; /* HTTPS for new connections; NULL: plain HTTP */
    size_t max_request;
    unsigned idle_ms, max_conns;
    struct admin_conn *conns;
    unsigned nconns;
    unsigned handles_open; /* server, sweep timer, connections */
    unsigned ops_pending;
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
    uint16_t port;
    char rbuf[ADMIN_READ_SIZE]; /* every read lands here and is parsed at once */
};

static const http_parser_settings admin_parser_settings;

/* ---- lifetime ---- */

static void admin_maybe_free(struct admin *a)
{
    if (!a->closing || a->handles_open > 0 || a->ops_pending > 0) return;
    void (*cb)(void *) = a->close_cb;
    void *data = a->close_data;
    if (a->token != NULL) explicit_bzero(a->token, a->token_len);
    mem_free(a->token);
    tls_ctx_unref(a->tls);
    mem_free(a);
    if (cb != NULL) cb(data);
}

static void admin_conn_free(struct admin_conn *c)
{
    textbuf_free(&c->url);
    textbuf_free(&c->body);
    textbuf_free(&c->pending);
    textbuf_free(&c->out);
    textbuf_free(&c->tls_out);
    textbuf_free(&c->tls_wire);
    tls_conn_free(c->tls);
    explicit_bzero(c->auth, sizeof c->auth);
    mem_free(c);
}

static void admin_conn_closed_cb(uv_handle_t *h)
{
    struct admin_conn *c = h->data;
    struct admin *a = c->a;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next != NULL) c->next->prev = c->prev;
    a->nconns--;
    a->handles_open--;
    c->closed = true;
    if (!c->op_active) admin_conn_free(c);
    admin_maybe_free(a);
}

static void admin_conn_close(struct admin_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, admin_conn_closed_cb);
}

/* ---- responses ---- */

static const char *admin_status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 421:
        return "Misdirected Request";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

static void admin_write_cb(uv_write_t *req, int status);

/* HTTPS: writes the ciphertext gathered in tls_out unless a write is in progress (its
 * callback writes what gathered meanwhile). */
static void admin_tls_flush(struct admin_conn *c)
{
    if (c->writing || c->closing || c->tls_out.len == 0) return;
    struct textbuf t = c->tls_wire;
    c->tls_wire = c->tls_out;
    c->tls_out = t;
    uv_buf_t buf = uv_buf_init(c->tls_wire.data, (unsigned)c->tls_wire.len);
    c->writing = true;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, admin_write_cb) != 0) {
        c->writing = false;
        admin_conn_close(c);
    }
}

/* tls.c's output: ciphertext (handshake records, encrypted responses, alerts). */
static int admin_tls_out_cb(void *arg, const uint8_t *data, size_t len)
{
    struct admin_conn *c = arg;
    textbuf_append(&c->tls_out, data, len);
    return textbuf_error(&c->tls_out) == 0 ? 0 : -ENOMEM;
}

/* Sends status with body[0..len); extra: more header lines (each ending in \r\n) or NULL. */
static void admin_respond(struct admin_conn *c, int status, const char *ctype, const char *body,
                          size_t len, const char *extra)
{
    struct textbuf *o = &c->out;
    textbuf_reset(o);
    textbuf_printf(o,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Cache-Control: no-store\r\n%s%s\r\n",
                   status, admin_status_text(status), ctype, len, extra != NULL ? extra : "",
                   c->keep_alive ? "" : "Connection: close\r\n");
    if (!c->head) textbuf_append(o, body, len);
    if (textbuf_error(o) != 0) {
        admin_conn_close(c);
        return;
    }
    c->responding = true;
    if (c->tls != NULL) {
        int rc = tls_conn_write(c->tls, (const uint8_t *)o->data, o->len);
        textbuf_reset(o);
        if (rc != 0)
            admin_conn_close(c);
        else
            admin_tls_flush(c);
        return;
    }
    uv_buf_t buf = uv_buf_init(o->data, (unsigned)o->len);
    c->writing = true;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, admin_write_cb) != 0) {
        c->writing = false;
        admin_conn_close(c);
    }
}

static void admin_respond_text(struct admin_conn *c, int status, const char *text)
{
    admin_respond(c, status, "text/plain; charset=utf-8", text, strlen(text), NULL);
}

static void admin_respond_json(struct admin_conn *c, int status, struct textbuf *body,
                               const char *extra)
{
    textbuf_putc(body, '\n');
    if (textbuf_error(body) != 0) {
        c->keep_alive = false;
        admin_respond_text(c, 500, "out of memory\n");
        return;
    }
    admin_respond(c, status, "application/json", body->data, body->len, extra);
}

/* {"error": message} with status (and extra headers); with a leader id (421), also
 * "leader_id" and "leader_cluster_address". */
static void admin_respond_error_leader(struct admin_conn *c, int status, const char *message,
                                       const char *extra, uint64_t leader_id,
                                       const char *leader_address)
{
    struct textbuf tb;
    struct json_writer w;
    textbuf_init(&tb, 0);
    json_writer_init(&w, &tb);
    json_begin_object(&w);
    json_key(&w, "error");
    json_string(&w, message);
    if (leader_id != 0) {
        json_key(&w, "leader_id");
        json_uint(&w, leader_id);
        json_key(&w, "leader_cluster_address");
        json_string(&w, leader_address);
    }
    json_end_object(&w);
    admin_respond_json(c, status, &tb, extra);
    textbuf_free(&tb);
}

static void admin_respond_error(struct admin_conn *c, int status, const char *message,
                                const char *extra)
{
    admin_respond_error_leader(c, status, message, extra, 0, NULL);
}

/* ---- requests ---- */

static void admin_request_reset(struct admin_conn *c)
{
    textbuf_reset(&c->url);
    textbuf_reset(&c->body);
    c->req_bytes = 0;
    c->hdr_name_len = 0;
    c->hdr_name_long = c->in_value = c->hdr_is_auth = false;
    c->auth_len = 0;
    c->auth_seen = c->auth_bad = false;
    c->too_large = c->head = false;
}

static int admin_count(struct admin_conn *c, size_t len)
{
    c->req_bytes += len;
    if (c->req_bytes > c->a->max_request) {
        c->too_large = true;
        return -1;
    }
    return 0;
}

static int admin_on_message_begin(http_parser *p)
{
    admin_request_reset(p->data);
    return 0;
}

static int admin_on_url(http_parser *p, const char *at, size_t len)
{
    struct admin_conn *c = p->data;
    if (admin_count(c, len) != 0) return -1;
    textbuf_append(&c->url, at, len);
    if (textbuf_error(&c->url) != 0) {
        c->too_large = true;
        return -1;
    }
    return 0;
}

static int admin_on_header_field(http_parser *p, const char *at, size_t len)
{
    struct admin_conn *c = p->data;
    if (admin_count(c, len) != 0) return -1;
    if (c->in_value) {
        c->in_value = false;
        c->hdr_name_len = 0;
        c->hdr_name_long = false;
    }
    if (c->hdr_name_len + len >= sizeof c->hdr_name) {
        c->hdr_name_long = true;
        return 0;
    }
    memcpy(c->hdr_name + c->hdr_name_len, at, len);
    c->hdr_name_len += len;
    c->hdr_name[c->hdr_name_len] = '\0';
    return 0;
}

static int admin_on_header_value(http_parser *p, const char *at, size_t len)
{
    struct admin_conn *c = p->data;
    if (admin_count(c, len) != 0) return -1;
    if (!c->in_value) {
        c->in_value = true;
        c->hdr_is_auth = !c->hdr_name_long && strcasecmp(c->hdr_name, "authorization") == 0;
        if (c->hdr_is_auth) {
            if (c->auth_seen) c->auth_bad = true; /* two Authorization headers */
            c->auth_seen = true;
            c->auth_len = 0;
        }
    }
    if (!c->hdr_is_auth) return 0;
    if (c->auth_len + len >= sizeof c->auth) {
        c->auth_bad = true;
        return 0;
    }
    memcpy(c->auth + c->auth_len, at, len);
    c->auth_len += len;
    return 0;
}

static int admin_on_headers_complete(http_parser *p)
{
    struct admin_conn *c = p->data;
    c->head = p->method == HTTP_HEAD;
    if (p->content_length != ULLONG_MAX && p->content_length > c->a->max_request) {
        c->too_large = true;
        return -1;
    }
    return 0;
}

static int admin_on_body(http_parser *p, const char *at, size_t len)
{
    struct admin_conn *c = p->data;
    if (admin_count(c, len) != 0) return -1;
    textbuf_append(&c->body, at, len);
    return textbuf_error(&c->body) == 0 ? 0 : -1;
}

static int admin_on_message_complete(http_parser *p)
{
    struct admin_conn *c = p->data;
    c->keep_alive = http_should_keep_alive(p) != 0;
    c->message_done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings admin_parser_settings = {
    .on_message_begin = admin_on_message_begin,
    .on_url = admin_on_url,
    .on_header_field = admin_on_header_field,
    .on_header_value = admin_on_header_value,
    .on_headers_complete = admin_on_headers_complete,
    .on_body = admin_on_body,
    .on_message_complete = admin_on_message_complete,
};

/* Equal in time that depends only on the length of the expected value. */
static bool admin_equal_ct(const char *given, size_t glen, const char *want, size_t wlen)
{
    volatile unsigned char diff = (unsigned char)(glen != wlen);
    for (size_t i = 0; i < wlen; i++)
        diff |= (unsigned char)((i < glen ? (unsigned char)given[i] : 0) ^ (unsigned char)want[i]);
    return diff == 0;
}

static bool admin_authorized(const struct admin_conn *c)
{
    const struct admin *a = c->a;
    if (a->token == NULL) return true;
    if (!c->auth_seen || c->auth_bad) return false;
    const char *v = c->auth;
    size_t n = c->auth_len;
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    if (n < 7 || strncasecmp(v, "Bearer ", 7) != 0) return false;
    v += 7;
    n -= 7;
    while (n > 0 && *v == ' ') {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return admin_equal_ct(v, n, a->token, a->token_len);
}

/* ---- routes ---- */

enum admin_route_id {
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_METRICS,
    ROUTE_CLUSTER,
    ROUTE_JOIN,
    ROUTE_REMOVE,
    ROUTE_TRANSFER,
};

static const struct admin_route {
    const char *path;
    enum admin_route_id id;
    bool post;   /* POST only; else GET and HEAD */
    bool public; /* no token needed */
} admin_routes[] = {
    {"/healthz", ROUTE_HEALTHZ, false, true},
    {"/readyz", ROUTE_READYZ, false, true},
    {"/metrics", ROUTE_METRICS, false, false},
    {"/api/v1/cluster", ROUTE_CLUSTER, false, false},
    {"/api/v1/cluster/join", ROUTE_JOIN, true, false},
    {"/api/v1/cluster/remove", ROUTE_REMOVE, true, false},
    {"/api/v1/cluster/transfer", ROUTE_TRANSFER, true, false},
};

static void admin_serve_metrics(struct admin_conn *c)
{
    struct admin *a = c->a;
    struct textbuf tb;
    if (a->hooks.metrics == NULL) {
        admin_respond_error(c, 501, "metrics are not available", NULL);
        return;
    }
    textbuf_init(&tb, ADMIN_MAX_RESPONSE);
    int rc = a->hooks.metrics(a->hooks.ctx, &tb);
    if (rc < 0 || textbuf_error(&tb) != 0)
        admin_respond_error(c, 503, "metrics could not be collected", NULL);
    else
        admin_respond(c, 200, METRICS_CONTENT_TYPE, tb.data != NULL ? tb.data : "", tb.len, NULL);
    textbuf_free(&tb);
}

static void admin_serve_cluster(struct admin_conn *c)
{
    struct admin *a = c->a;
    struct textbuf tb;
    struct json_writer w;
    if (a->hooks.cluster_json == NULL) {
        admin_respond_error(c, 501, "cluster state is not available", NULL);
        return;
    }
    textbuf_init(&tb, ADMIN_MAX_RESPONSE);
    json_writer_init(&w, &tb);
    int rc = a->hooks.cluster_json(a->hooks.ctx, &w);
    if (rc < 0 || textbuf_error(&tb) != 0 || w.depth != 0)
        admin_respond_error(c, 503, "cluster state could not be read", NULL);
    else
        admin_respond_json(c, 200, &tb, NULL);
    textbuf_free(&tb);
}

/* POST join/remove/transfer: check the body, then hand the operation to the hook. */
static void admin_serve_change(struct admin_conn *c, enum admin_route_id route)
{
    struct admin *a = c->a;
    char address[ADMIN_MAX_ADDRESS];
    char err[160], msg[200];
    struct json_field f[2] = {
        {.name = "id", .type = JSON_FIELD_UINT},
        {.name = "address", .type = JSON_FIELD_STRING, .str = address, .str_cap = sizeof address},
    };
    size_t nfields = route == ROUTE_JOIN ? 2 : 1;
    void *hook = route == ROUTE_JOIN     ? (void *)a->hooks.join
                 : route == ROUTE_REMOVE ? (void *)a->hooks.remove
                                         : (void *)a->hooks.transfer;
    if (hook == NULL) {
        admin_respond_error(c, 501, "membership changes are not available", NULL);
        return;
    }
    bool empty = true;
    for (size_t i = 0; i < c->body.len && empty; i++)
        empty = c->body.data[i] == ' ' || c->body.data[i] == '\r' || c->body.data[i] == '\n' ||
                c->body.data[i] == '\t';
    if (!(empty && route == ROUTE_TRANSFER)) {
        if (json_read_object(c->body.data != NULL ? c->body.data : "", c->body.len, f, nfields, err,
                             sizeof err) != 0) {
            snprintf(msg, sizeof msg, "bad request body: %s", err);
            admin_respond_error(c, 400, msg, NULL);
            return;
        }
    }
    if (route != ROUTE_TRANSFER && (!f[0].present || f[0].u == 0)) {
        admin_respond_error(c, 400, "bad request body: \"id\" (a positive integer) is required",
                            NULL);
        return;
    }
    if (route == ROUTE_JOIN && (!f[1].present || f[1].str_len == 0)) {
        admin_respond_error(c, 400, "bad request body: \"address\" (\"host:port\") is required",
                            NULL);
        return;
    }
    c->op_active = true;
    c->op = (struct admin_op){.conn = c};
    a->ops_pending++;
    uint64_t id = f[0].present ? f[0].u : 0;
    if (route == ROUTE_JOIN)
        a->hooks.join(a->hooks.ctx, &c->op, id, address);
    else if (route == ROUTE_REMOVE)
        a->hooks.remove(a->hooks.ctx, &c->op, id);
    else
        a->hooks.transfer(a->hooks.ctx, &c->op, id);
}

static void admin_dispatch(struct admin_conn *c)
{
    struct admin *a = c->a;
    const char *url = c->url.data != NULL ? c->url.data : "";
    size_t plen = strcspn(url, "?#");
    const struct admin_route *r = NULL;
    for (size_t i = 0; i < sizeof admin_routes / sizeof admin_routes[0] && r == NULL; i++)
        if (strlen(admin_routes[i].path) == plen && memcmp(admin_routes[i].path, url, plen) == 0)
            r = &admin_routes[i];
    if ((r == NULL || !r->public) && !admin_authorized(c)) {
        admin_respond_error(c, 401, "unauthorized: a valid bearer token is required",
                            "WWW-Authenticate: Bearer realm=\"starling\"\r\n");
        return;
    }
    if (r == NULL) {
        admin_respond_error(c, 404, "not found", NULL);
        return;
    }
    enum http_method m = c->parser.method;
    if (r->post ? m != HTTP_POST : (m != HTTP_GET && m != HTTP_HEAD)) {
        admin_respond_error(c, 405, "method not allowed",
                            r->post ? "Allow: POST\r\n" : "Allow: GET, HEAD\r\n");
        return;
    }
    switch (r->id) {
    case ROUTE_HEALTHZ:
        admin_respond_text(c, 200, "ok\n");
        break;
    case ROUTE_READYZ:
        if (a->hooks.ready == NULL || a->hooks.ready(a->hooks.ctx))
            admin_respond_text(c, 200, "ready\n");
        else
            admin_respond_text(c, 503, "not ready\n");
        break;
    case ROUTE_METRICS:
        admin_serve_metrics(c);
        break;
    case ROUTE_CLUSTER:
        admin_serve_cluster(c);
        break;
    default:
        admin_serve_change(c, r->id);
        break;
    }
}

void admin_op_finish(struct admin_op *op, int http_status, const char *message)
{
    struct admin_conn *c = op->conn;
    struct admin *a = c->a;
    c->op_active = false;
    a->ops_pending--;
    if (c->closed) {
        admin_conn_free(c);
        admin_maybe_free(a);
        return;
    }
    if (c->closing) return;
    if (http_status == 200) {
        struct textbuf tb;
        struct json_writer w;
        textbuf_init(&tb, 0);
        json_writer_init(&w, &tb);
        json_begin_object(&w);
        json_key(&w, "ok");
        json_bool(&w, true);
        if (message != NULL) {
            json_key(&w, "message");
            json_string(&w, message);
        }
        json_end_object(&w);
        admin_respond_json(c, 200, &tb, NULL);
        textbuf_free(&tb);
    } else {
        admin_respond_error_leader(c, http_status >= 400 && http_status <= 599 ? http_status : 500,
                                   message != NULL ? message : "failed", NULL, op->leader_id,
                                   op->leader_address);
    }
}

void admin_op_set_leader(struct admin_op *op, uint64_t id, const char *cluster_address)
{
    op->leader_id = id;
    snprintf(op->leader_address, sizeof op->leader_address, "%s", cluster_address);
}

/* ---- input ---- */

static void admin_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Parses data[0..len); stops at the end of a request and answers it. */
static void admin_feed(struct admin_conn *c, const char *data, size_t len)
{
    size_t n = http_parser_execute(&c->parser, &admin_parser_settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED && c->message_done) {
        textbuf_append(&c->pending, data + n, len - n);
        uv_read_stop((uv_stream_t *)&c->tcp);
        if (textbuf_error(&c->pending) != 0) c->keep_alive = false; /* too much pipelined */
        admin_dispatch(c);
        return;
    }
    if (e != HPE_OK) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->keep_alive = false;
        c->head = false;
        if (c->too_large)
            admin_respond_error(c, 413, "request too large", NULL);
        else {
            char msg[160];
            snprintf(msg, sizeof msg, "malformed HTTP request: %s", http_errno_description(e));
            admin_respond_error(c, 400, msg, NULL);
        }
    }
}

static void admin_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct admin_conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->a->rbuf, sizeof c->a->rbuf);
}

static void admin_read_start(struct admin_conn *c)
{
    if (uv_read_start((uv_stream_t *)&c->tcp, admin_alloc_cb, admin_read_cb) != 0)
        admin_conn_close(c);
}

static void admin_shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

static void admin_write_cb(uv_write_t *req, int status)
{
    struct admin_conn *c = req->data;
    c->writing = false;
    textbuf_reset(c->tls != NULL ? &c->tls_wire : &c->out);
    if (c->closing) return;
    if (status < 0) {
        admin_conn_close(c);
        return;
    }
    if (c->tls != NULL && c->tls_out.len > 0) {
        admin_tls_flush(c); /* more ciphertext gathered meanwhile (maybe the response) */
        return;
    }
    if (!c->responding || c->draining) return; /* a handshake flight or close_notify */
    c->responding = false;
    if (!c->keep_alive) {
        /* Let the client read the answer: half-close, then discard its input until EOF (or
         * the idle timeout) so that unread bytes do not turn the close into a reset. */
        c->draining = true;
        if (c->tls != NULL) {
            tls_conn_shutdown(c->tls); /* close_notify, written before the half-close */
            admin_tls_flush(c);
        }
        c->sreq.data = c;
        if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, admin_shutdown_cb) != 0) {
            admin_conn_close(c);
            return;
        }
        admin_read_start(c);
        return;
    }
    /* Keep-alive: the next request, maybe already here. */
    c->message_done = false;
    http_parser_pause(&c->parser, 0);
    struct textbuf rest = c->pending;
    textbuf_init(&c->pending, rest.max_len);
    if (rest.len > 0) admin_feed(c, rest.data, rest.len);
    textbuf_free(&rest);
    if (!c->message_done && !c->responding && !c->closing) admin_read_start(c);
}

/* The peer's address for log lines. */
static void admin_peer(struct admin_conn *c, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char host[64] = "?";
    unsigned port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof host);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof host);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    snprintf(out, cap, "%s:%u", host, port);
}

/* tls.c's plaintext: HTTP requests, parsed like plain input. */
static int admin_tls_deliver_cb(void *arg, const uint8_t *data, size_t len)
{
    struct admin_conn *c = arg;
    if (c->closing) return -ECANCELED;
    if (c->draining) return 0;
    if (c->message_done || c->responding) {
        /* Pipelined behind the request being answered: parsed once it is. */
        textbuf_append(&c->pending, data, len);
        if (textbuf_error(&c->pending) != 0) c->keep_alive = false;
        return 0;
    }
    admin_feed(c, (const char *)data, len);
    return c->closing ? -ECANCELED : 0;
}

/* HTTPS input: a plain HTTP request is answered 400 in plain HTTP; otherwise ciphertext
 * drives the handshake and the plaintext reaches the parser. */
static void admin_tls_input(struct admin_conn *c, const uint8_t *data, size_t len)
{
    char err[256], peer[80];
    if (!c->tls_started) {
        c->tls_started = true;
        if (data[0] != 0x16) { /* not a TLS handshake record */
            admin_peer(c, peer, sizeof peer);
            log_at(LOG_TYPE_NOTICE, "Admin API: plain HTTP from %s on the HTTPS port refused.",
                   peer);
            tls_conn_free(c->tls);
            c->tls = NULL;
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->keep_alive = false;
            admin_respond_error(c, 400, "this admin listener speaks HTTPS only", NULL);
            return;
        }
    }
    int rc = tls_conn_input(c->tls, data, len, admin_tls_deliver_cb, c, err, sizeof err);
    if (rc == -ECANCELED || c->closing) return;
    if (rc < 0) {
        if (rc != -EPIPE) {
            admin_peer(c, peer, sizeof peer);
            log_at(LOG_TYPE_NOTICE, "Admin API: %s from %s; closing.", err, peer);
        }
        admin_conn_close(c);
        return;
    }
    admin_tls_flush(c);
}

static void admin_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct admin_conn *c = s->data;
    if (nread == 0 || c->closing) return;
    if (nread < 0) {
        /* EOF or error. An answer still being written is abandoned. */
        admin_conn_close(c);
        return;
    }
    c->last_ms = uv_now(c->a->loop);
    if (c->draining) return;
    if (c->tls != NULL) {
        admin_tls_input(c, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    if (c->message_done || c->responding) {
        /* Read is stopped while a request is answered; keep bytes that raced in. */
        textbuf_append(&c->pending, buf->base, (size_t)nread);
        return;
    }
    admin_feed(c, buf->base, (size_t)nread);
}

/* ---- server ---- */

static void admin_connection_cb(uv_stream_t *server, int status)
{
    struct admin *a = server->data;
    if (status < 0 || a->closing) return;
    struct admin_conn *c = mem_calloc(1, sizeof *c);
    if (c == NULL) return; /* the connection waits in the backlog */
    c->a = a;
    if (uv_tcp_init(a->loop, &c->tcp) != 0) {
        mem_free(c);
        return;
    }
    c->tcp.data = c;
    c->wreq.data = c;
    c->next = a->conns;
    if (a->conns != NULL) a->conns->prev = c;
    a->conns = c;
    a->nconns++;
    a->handles_open++;
    textbuf_init(&c->url, ADMIN_MAX_URL);
    textbuf_init(&c->body, a->max_request);
    textbuf_init(&c->pending, a->max_request);
    textbuf_init(&c->out, 0);
    textbuf_init(&c->tls_out, 0);
    textbuf_init(&c->tls_wire, 0);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->last_ms = c->accepted_ms = uv_now(a->loop);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || a->nconns > a->max_conns) {
        admin_conn_close(c);
        return;
    }
    if (a->tls != NULL && (c->tls = tls_conn_new(a->tls, admin_tls_out_cb, c)) == NULL) {
        admin_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    admin_read_start(c);
}

/* Closes connections idle for longer than idle_ms (not those waiting for an operation) and
 * TLS handshakes not done within ADMIN_HANDSHAKE_MS. */
static void admin_sweep_cb(uv_timer_t *t)
{
    struct admin *a = t->data;
    uint64_t now = uv_now(a->loop);
    for (struct admin_conn *c = a->conns; c != NULL; c = c->next) {
        if (c->op_active || c->closing) continue;
        bool stalled = c->tls != NULL && !tls_conn_established(c->tls) &&
                       now - c->accepted_ms >= ADMIN_HANDSHAKE_MS;
        if (stalled) {
            char peer[80];
            admin_peer(c, peer, sizeof peer);
            log_at(LOG_TYPE_NOTICE,
                   "Admin API: TLS handshake from %s not completed in %u s; closing.", peer,
                   ADMIN_HANDSHAKE_MS / 1000);
        }
        if (stalled || now - c->last_ms >= a->idle_ms) admin_conn_close(c);
    }
}

static void admin_handle_closed_cb(uv_handle_t *h)
{
    struct admin *a = h->data;
    a->handles_open--;
    admin_maybe_free(a);
}

int admin_start(uv_loop_t *loop, const struct admin_config *cfg, const struct admin_hooks *hooks,
                struct admin **out, char *err, size_t errlen)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_storage ss;
    } addr;
    const char *host = cfg->bind_address != NULL ? cfg->bind_address : "127.0.0.1";
    bool v6 = strchr(host, ':') != NULL;
    int rc = v6 ? uv_ip6_addr(host, cfg->port, &addr.in6) : uv_ip4_addr(host, cfg->port, &addr.in);
    if (rc != 0) {
        snprintf(err, errlen, "admin_listener %s:%u: not an IP address", host, cfg->port);
        return rc;
    }
    struct admin *a = mem_calloc(1, sizeof *a);
    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    a->loop = loop;
    a->hooks = *hooks;
    a->max_request = cfg->max_request_bytes ? cfg->max_request_bytes : ADMIN_DEFAULT_MAX_REQUEST;
    a->idle_ms = cfg->idle_timeout_ms ? cfg->idle_timeout_ms : ADMIN_DEFAULT_IDLE_MS;
    a->max_conns = cfg->max_connections ? cfg->max_connections : ADMIN_DEFAULT_MAX_CONNS;
    if (cfg->token != NULL) {
        a->token_len = strlen(cfg->token);
        if ((a->token = mem_strndup(cfg->token, a->token_len)) == NULL) {
            mem_free(a);
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
    }
    if (cfg->tls != NULL) a->tls = tls_ctx_ref(cfg->tls);
    uv_tcp_init(loop, &a->server);
    a->server.data = a;
    a->handles_open++;
    uv_timer_init(loop, &a->sweep);
    a->sweep.data = a;
    a->handles_open++;
    uv_unref((uv_handle_t *)&a->sweep);
    rc = uv_tcp_bind(&a->server, &addr.sa, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&a->server, 64, admin_connection_cb);
    if (rc != 0) {
        snprintf(err, errlen, "admin_listener %s%s%s:%u: %s", v6 ? "[" : "", host, v6 ? "]" : "",
                 cfg->port, uv_strerror(rc));
        admin_close(a, NULL, NULL);
        return rc;
    }
    int len = sizeof addr;
    if (uv_tcp_getsockname(&a->server, &addr.sa, &len) == 0)
        a->port = ntohs(v6 ? addr.in6.sin6_port : addr.in.sin_port);
    unsigned every = a->idle_ms / 4 ? a->idle_ms / 4 : 1;
    if (a->tls != NULL && every > ADMIN_HANDSHAKE_MS / 4) every = ADMIN_HANDSHAKE_MS / 4;
    uv_timer_start(&a->sweep, admin_sweep_cb, every, every);
    *out = a;
    return 0;
}

uint16_t admin_port(const struct admin *a)
{
    return a->port;
}

void *admin_ctx(const struct admin *a)
{
    return a->hooks.ctx;
}

bool admin_is_https(const struct admin *a)
{
    return a->tls != NULL;
}

void admin_set_tls(struct admin *a, struct tls_ctx *tls)
{
    tls_ctx_unref(a->tls);
    a->tls = tls_ctx_ref(tls);
}

void admin_close(struct admin *a, void (*cb)(void *data), void *data)
{
    if (a == NULL) return;
    a->closing = true;
    a->close_cb = cb;
    a->close_data = data;
    uv_close((uv_handle_t *)&a->server, admin_handle_closed_cb);
    uv_close((uv_handle_t *)&a->sweep, admin_handle_closed_cb);
    for (struct admin_conn *c = a->conns; c != NULL; c = c->next)
        admin_conn_close(c);
}
