/* admin: the admin HTTP/1.1 API on admin_listener (/healthz, /readyz, /metrics and JSON under
 * /api/v1/), served from the loop.
 *
 * Contract:
 * - Everything runs on the loop given to admin_start(); hooks are called on it and must not
 *   block (they read in-memory state; the mutating ones start an operation and finish it
 *   later with admin_op_finish()).
 * - admin.c knows nothing of the broker: what it reports and does comes through struct
 *   admin_hooks. A NULL hook answers 501 on its route (ready NULL: always ready).
 * - Requests are bounded (max_request_bytes for the request line, headers and body; a larger
 *   one gets 413 and the connection closes), connections are bounded (max_connections; more
 *   are closed at once) and idle connections are closed after idle_timeout_ms. Keep-alive
 *   and pipelined requests are served in order, one at a time.
 * - With a token, every request except /healthz and /readyz needs `Authorization: Bearer
 *   <token>` (compared in constant time); otherwise 401.
 * - Errors: 0 or -errno (libuv codes pass through).
 *
 * Routes:
 *   GET  /healthz                 200 "ok" while the process serves
 *   GET  /readyz                  200 "ready" when hooks->ready() says so, else 503
 *   GET  /metrics                 Prometheus text format (hooks->metrics)
 *   GET  /api/v1/cluster          JSON written by hooks->cluster_json
 *   POST /api/v1/cluster/join     {"id": N, "address": "host:port"}
 *   POST /api/v1/cluster/remove   {"id": N}
 *   POST /api/v1/cluster/transfer {"id": N} or {} (any voter)
 * Errors are JSON: {"error": "what is wrong"} with 400, 401, 404, 405 (with Allow), 413,
 * 500, 501, 503 or what a mutating hook chose.
 */
#ifndef STARLING_BROKER_ADMIN_H
#define STARLING_BROKER_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "json.h"
#include "textbuf.h"

struct admin;
struct tls_ctx;
/* One mutating request in progress; finished exactly once with admin_op_finish(). */
struct admin_op;

struct admin_hooks {
    void *ctx; /* passed to every hook */
    /* /readyz */
    bool (*ready)(void *ctx);
    /* GET /api/v1/cluster: writes one JSON object with w. 0, or a negative error (503). */
    int (*cluster_json)(void *ctx, struct json_writer *w);
    /* GET /metrics: appends the exposition to out. 0, or a negative error (503). */
    int (*metrics)(void *ctx, struct textbuf *out);
    /* The mutating calls, after the body was checked: id >= 1 (transfer: 0 = any voter),
     * address non-empty (borrowed for the call). Each must call admin_op_finish(op) exactly
     * once, now or later on the loop. */
    void (*join)(void *ctx, struct admin_op *op, uint64_t id, const char *address);
    void (*remove)(void *ctx, struct admin_op *op, uint64_t id);
    void (*transfer)(void *ctx, struct admin_op *op, uint64_t id);
};

/* Completes a mutating request: http_status 200 answers {"ok":true,"message":...}, any other
 * status {"error": message}. message may be NULL; it is copied. If the client has gone the
 * answer is dropped. op is invalid afterwards. */
void admin_op_finish(struct admin_op *op, int http_status, const char *message);
/* Before an error admin_op_finish(): the error JSON also names the leader, "leader_id" and
 * "leader_cluster_address" (its cluster port, not its admin listener: nodes do not learn
 * each other's admin addresses). For 421 from a follower. */
void admin_op_set_leader(struct admin_op *op, uint64_t id, const char *cluster_address);

struct admin_config {
    const char *bind_address; /* required: an IPv4 or IPv6 literal */
    uint16_t port;            /* 0: a free port (admin_port() tells which) */
    const char *token;        /* NULL: no authorization required; copied */
    size_t max_request_bytes; /* 0: 16 KiB */
    unsigned idle_timeout_ms; /* 0: 30 s */
    unsigned max_connections; /* 0: 64 */
    /* HTTPS (tls.h, a reference is taken); NULL: plain HTTP. A connection's first byte
     * decides: a TLS record starts the handshake (closed if not done within 10 s), anything
     * else is answered 400 in plain HTTP and closed. */
    struct tls_ctx *tls;
};

/* Binds and listens. hooks is copied (ctx borrowed: it must outlive the admin). Returns 0
 * and *out, or a negative libuv error with `admin_listener ADDRESS:PORT: what is wrong` in
 * err. */
int admin_start(uv_loop_t *loop, const struct admin_config *cfg, const struct admin_hooks *hooks,
                struct admin **out /* OUT */, char *err, size_t errlen);

/* The port bound. */
uint16_t admin_port(const struct admin *a);

/* hooks->ctx as given to admin_start. */
void *admin_ctx(const struct admin *a);

/* Whether the listener serves HTTPS. */
bool admin_is_https(const struct admin *a);
/* Replaces the TLS context for new connections (a reference is taken; existing connections
 * keep theirs). Only for a listener started with one. */
void admin_set_tls(struct admin *a, struct tls_ctx *tls);

/* Stops listening, closes every connection and calls no hook any more. The memory goes when
 * the last handle has closed and every started operation has been finished (the broker
 * finishes them when its cluster closes); then cb(data) fires, if not NULL. NULL a is a
 * no-op. Call once. */
void admin_close(struct admin *a, void (*cb)(void *data), void *data);

#endif
