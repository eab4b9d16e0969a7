/* The cluster port: one TCP listener carrying Raft and node links, and the dialer that opens
 * connections to peers. Every connection, in both directions, first runs the hello of
 * hello.h (cluster name, node id, channel, HMAC proof of the shared secret both ways); only
 * then is it handed on, as a plain uv_tcp_t with reading stopped, to whoever owns the
 * channel. A connection that fails the hello is closed and logged (one line). With cluster
 * TLS (port_config.tls_*) a TLS 1.3 handshake, both certificates checked, comes first, the
 * hello runs inside it, and the stream handed on is the plaintext end of a bridge (below).
 *
 * Addresses are "host:port", "a.b.c.d:port" or "[v6]:port". Host names are resolved
 * (uv_getaddrinfo) on every dial, so a peer that moved is found again; every address the name
 * resolves to is tried in order.
 *
 * Handed-on streams are allocated with raft_malloc (libraft frees the ones it receives with
 * raft_free after uv_close); close others with port_stream_close.
 */
#ifndef STARLING_CLUSTER_PORT_H
#define STARLING_CLUSTER_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cluster.h"

struct port;
struct port_dial;

/* An accepted connection passed its hello: channel, the peer's node id and advertised
 * address (borrowed: valid during the call). The callee owns stream. */
typedef void (*port_accept_cb)(void *ctx, uint8_t channel, uint64_t node_id, const char *address,
                               uv_tcp_t *stream);
/* A dial finished: status 0 with the stream (the callee owns it) and the peer's node id, or
 * status < 0 (-ECANCELED at port_close, -ECONNREFUSED, -EACCES for a failed hello, ...) with
 * stream NULL. Fires exactly once (unless canceled), never from inside port_dial. */
typedef void (*port_dial_cb)(void *data, int status, uv_tcp_t *stream, uint64_t peer_id);

struct port_config {
    uint64_t node_id;
    const char *advertise; /* sent in every hello */
    uint64_t cluster;      /* hello_cluster_id(name) */
    const uint8_t *secret;
    size_t secret_len;
    unsigned hello_timeout_ms; /* 0 = 5000; covers the TLS handshake too */
    /* Cluster TLS: the three PEM contents (CA, certificate chain, key), or all NULL (off). With
     * them every connection, both directions, runs TLS 1.3 with a certificate signed by the CA
     * required on both sides, and the hello runs inside it. A consumer then gets one end of a
     * socketpair (still a uv_tcp_t, opened with uv_tcp_open) whose bytes a bridge in the port
     * carries through TLS. port_new fails with -EINVAL (and a log line) if one cannot be loaded. */
    const char *tls_ca_pem, *tls_cert_pem, *tls_key_pem; /* read during port_new only */
    size_t tls_ca_pem_len, tls_cert_pem_len, tls_key_pem_len;
    cluster_log_cb log;
    void *log_ctx;
};

int port_new(uv_loop_t *loop, const struct port_config *cfg, port_accept_cb accept_cb, void *ctx,
             struct port **out /* OUT */);
/* Listens on bind:port_no (bind NULL or "" = all interfaces, IPv6 and IPv4). port_no 0 picks
 * a free port: port_bound() tells which. */
int port_listen(struct port *p, const char *bind, unsigned port_no);
unsigned port_bound(const struct port *p);

/* Dials address for channel. Returns 0 (cb fires later) or -EINVAL (bad address), -ENOMEM. */
int port_dial(struct port *p, const char *address, uint8_t channel, port_dial_cb cb, void *data,
              struct port_dial **out /* OUT, may be NULL */);
/* The same, starting at the nth of the addresses the name resolves to (modulo their count). */
int port_dial_nth(struct port *p, const char *address, unsigned nth, uint8_t channel,
                  port_dial_cb cb, void *data, struct port_dial **out /* OUT, may be NULL */);
/* Cancels a dial whose cb has not fired yet: the cb never fires (the caller cleans up). */
void port_dial_cancel(struct port_dial *d);

/* uv_close + free of a handed-on stream. */
void port_stream_close(uv_tcp_t *stream);

/* Counters for tests and metrics. */
struct port_stats {
    uint64_t accepted, refused, dialed, dial_failed;
};
void port_get_stats(const struct port *p, struct port_stats *out /* OUT */);

/* Closes the listener and every connection still in its hello (dials get -ECANCELED); cb
 * fires once all handles are closed, and p is freed. */
void port_close(struct port *p, void (*cb)(void *data), void *data);

/* Splits "host:port" / "[v6]:port". 0 or -EINVAL. host gets at most hostcap-1 chars. */
int port_split_address(const char *address, char *host, size_t hostcap, char *serv, size_t servcap);

#endif
