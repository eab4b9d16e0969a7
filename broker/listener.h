/* TCP listeners: one uv_tcp_t per bound address of a configured listener (IPv4 and/or IPv6
 * as socket_domain says), max_connections per listener, TCP_NODELAY on every accepted
 * connection. A listener with certfile serves TLS (its context is built when it opens and
 * rebuilt on SIGHUP for new connections); one with `protocol websockets` serves MQTT over
 * WebSocket (see conn.h for the transports). */
#ifndef STARLING_BROKER_LISTENER_H
#define STARLING_BROKER_LISTENER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

struct acl;
struct auth_db;
struct broker;
struct conn;
struct config_listener;

struct listener_sock {
    uv_tcp_t tcp;
    struct listener *lst;
    char addr[64]; /* "address:port" as bound */
    bool open;
    bool pending; /* a connection waits until the broker accepts (durable state ready) */
};

struct tls_ctx;

struct listener {
    struct broker *b;
    const struct config_listener *cfg;
    struct listener_sock socks[4];
    unsigned nsocks;
    int connections;                     /* live connections accepted here */
    uint64_t bytes_received, bytes_sent; /* MQTT bytes of its clients (also in broker_stats) */
    uint16_t port;        /* the port bound (the configured one, or the one picked for 0) */
    struct auth_db *auth; /* password file in force for this listener (NULL: none) */
    struct acl *acl;      /* ACL in force (NULL: none) */
    bool owns_security;   /* per_listener_settings: auth and acl are this listener's */
    struct tls_ctx *tls;  /* TLS context for new connections (NULL: plain TCP); owned */
    uv_signal_t *hup;     /* SIGHUP watcher reloading the certificates (TLS only); owned */
};

/* Binds and listens on every address of cfg. Returns 0 (at least one socket listens) or a
 * negative libuv error with a one-line message in err. */
int listener_open(struct broker *b, struct listener *l, const struct config_listener *cfg,
                  char *err, size_t errlen);
/* Stops accepting: closes the listening sockets (connections stay) and drops the listener's
 * reference to its TLS context (connections keep theirs). */
void listener_close(struct listener *l);

/* Rebuilds the TLS context from the certificate files (new connections use it; existing ones
 * keep theirs). On failure the context in force stays and an error is logged. Returns 0, or a
 * negative errno. No-op (0) for a listener without TLS. Called on SIGHUP. */
int listener_reload_tls(struct listener *l);

/* Accepts the connections that arrived before the broker was ready. */
void listener_accept_pending(struct listener *l);

void listener_conn_opened(struct listener *l, struct conn *c);
void listener_conn_closed(struct listener *l, struct conn *c);

#endif
