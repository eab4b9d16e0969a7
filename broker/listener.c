/* TCP listeners (see listener.h). */
#include "listener.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conn.h"
#include "core.h"
#include "log.h"
#include "tls.h"

/* Listen backlog per socket (the kernel caps it at net.core.somaxconn). */
#define LISTENER_BACKLOG 4096

static void listener_accept_cb(uv_stream_t *server, int status)
{
    struct listener_sock *ls = server->data;
    struct listener *l = ls->lst;
    struct broker *b = l->b;
    if (status < 0) {
        log_at(LOG_TYPE_ERROR, "Error accepting on %s: %s.", ls->addr, uv_strerror(status));
        return;
    }
    if (b->stopping) return;
    if (!b->accepting) {
        /* The durable state is not ready (no Raft leader yet): the connection waits in the
         * backlog; listener_accept_pending() takes it then. */
        ls->pending = true;
        return;
    }
    int max = l->cfg->max_connections;
    if (max >= 0 && l->connections >= max) {
        /* Accept and close at once, as mosquitto does, so the backlog does not fill. */
        uv_tcp_t *t = malloc(sizeof *t);
        if (!t) return;
        uv_tcp_init(b->loop, t);
        if (uv_accept(server, (uv_stream_t *)t) == 0)
            log_at(LOG_TYPE_NOTICE, "Client connection refused: max_connections (%d) reached.",
                   max);
        uv_close((uv_handle_t *)t, (uv_close_cb)free);
        return;
    }
    int rc = conn_accept(b, l, server);
    if (rc < 0)
        log_at(LOG_TYPE_ERROR, "Error accepting a connection on %s: %s.", ls->addr,
               uv_strerror(rc));
}

void listener_accept_pending(struct listener *l)
{
    for (unsigned i = 0; i < l->nsocks; i++) {
        struct listener_sock *ls = &l->socks[i];
        if (ls->pending && ls->open) {
            ls->pending = false;
            listener_accept_cb((uv_stream_t *)&ls->tcp, 0);
        }
    }
}

void listener_conn_opened(struct listener *l, struct conn *c)
{
    l->connections++;
    c->counted = true;
}

void listener_conn_closed(struct listener *l, struct conn *c)
{
    if (c->counted) {
        c->counted = false;
        l->connections--;
    }
}

static int listener_bind_one(struct broker *b, struct listener *l, const struct sockaddr *sa,
                             char *err, size_t errlen)
{
    if (l->nsocks >= sizeof l->socks / sizeof l->socks[0]) return 0;
    struct listener_sock *ls = &l->socks[l->nsocks];
    char host[INET6_ADDRSTRLEN] = "";
    if (sa->sa_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)sa, host, sizeof host);
    else
        uv_ip4_name((const struct sockaddr_in *)sa, host, sizeof host);
    int rc = uv_tcp_init(b->loop, &ls->tcp);
    if (rc < 0) goto fail;
    ls->tcp.data = ls;
    ls->lst = l;
    ls->open = true;
    l->nsocks++;
    rc = uv_tcp_bind(&ls->tcp, sa, sa->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    /* Accepted sockets inherit TCP_NODELAY from the listening one: no system call per
     * connection for it. */
    if (rc == 0) rc = uv_tcp_nodelay(&ls->tcp, 1);
    /* A deep backlog: a connection storm waits there instead of having its SYNs dropped and
     * retransmitted a second later (the kernel caps it at net.core.somaxconn). */
    if (rc == 0) rc = uv_listen((uv_stream_t *)&ls->tcp, LISTENER_BACKLOG, listener_accept_cb);
    if (rc < 0) goto fail;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    int port = l->cfg->port;
    if (uv_tcp_getsockname(&ls->tcp, (struct sockaddr *)&ss, &len) == 0)
        port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    l->port = (uint16_t)port;
    if (sa->sa_family == AF_INET6)
        snprintf(ls->addr, sizeof ls->addr, "[%s]:%d", host, port);
    else
        snprintf(ls->addr, sizeof ls->addr, "%s:%d", host, port);
    return 1;
fail:
    snprintf(err, errlen, "cannot listen on %s port %u: %s", host, l->cfg->port, uv_strerror(rc));
    return rc;
}

int listener_reload_tls(struct listener *l)
{
    if (!l->cfg->tls.certfile) return 0;
    struct tls_ctx *ctx;
    char err[512];
    int rc = tls_ctx_new(&l->cfg->tls, &ctx, err, sizeof err);
    if (rc < 0) {
        log_at(LOG_TYPE_ERROR, "Error: listener on port %u: %s; the certificates in force stay.",
               l->port, err);
        return rc;
    }
    tls_ctx_unref(l->tls);
    l->tls = ctx;
    log_at(LOG_TYPE_NOTICE, "Reloaded the TLS certificates of the listener on port %u.", l->port);
    return 0;
}

static void listener_hup_cb(uv_signal_t *h, int signum)
{
    (void)signum;
    listener_reload_tls(h->data);
}

int listener_open(struct broker *b, struct listener *l, const struct config_listener *cfg,
                  char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    l->b = b;
    l->cfg = cfg;
    l->port = cfg->port;
    if (cfg->tls.certfile) {
        char terr[400];
        int trc = tls_ctx_new(&cfg->tls, &l->tls, terr, sizeof terr);
        if (trc < 0) {
            snprintf(err, errlen, "listener on port %u: %s", cfg->port, terr);
            return trc == -ENOMEM ? UV_ENOMEM : UV_EINVAL;
        }
        /* A second SIGHUP watcher (libuv calls every one): the certificates are the
         * listener's own business. It does not keep the loop alive. */
        l->hup = malloc(sizeof *l->hup);
        if (l->hup && uv_signal_init(b->loop, l->hup) == 0) {
            l->hup->data = l;
            uv_signal_start(l->hup, listener_hup_cb, SIGHUP);
            uv_unref((uv_handle_t *)l->hup);
        } else {
            free(l->hup);
            l->hup = NULL;
        }
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    if (cfg->socket_domain == CONFIG_SOCKET_DOMAIN_IPV4)
        hints.ai_family = AF_INET;
    else if (cfg->socket_domain == CONFIG_SOCKET_DOMAIN_IPV6)
        hints.ai_family = AF_INET6;
    else
        hints.ai_family = AF_UNSPEC;
    char port[8];
    snprintf(port, sizeof port, "%u", cfg->port);
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(cfg->bind_address, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve listener address %s: %s",
                 cfg->bind_address ? cfg->bind_address : "*", gai_strerror(gai));
        return UV_EINVAL;
    }
    int ok = 0, last = 0;
    char lasterr[256] = "";
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
        /* With port 0 every socket of this listener shares the first one's port. */
        if (ok > 0 && cfg->port == 0) {
            if (ai->ai_family == AF_INET6)
                ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons(l->port);
            else
                ((struct sockaddr_in *)ai->ai_addr)->sin_port = htons(l->port);
        }
        int rc = listener_bind_one(b, l, ai->ai_addr, lasterr, sizeof lasterr);
        if (rc > 0)
            ok++;
        else if (rc < 0)
            last = rc;
    }
    freeaddrinfo(res);
    if (ok == 0) {
        listener_close(l);
        snprintf(err, errlen, "%s", lasterr[0] ? lasterr : "no address to listen on");
        return last ? last : UV_EADDRNOTAVAIL;
    }
    for (unsigned i = 0; i < l->nsocks; i++)
        if (l->socks[i].addr[0])
            log_at(LOG_TYPE_NOTICE, "Opening ipv%c listen socket on %s.",
                   strchr(l->socks[i].addr, '[') ? '6' : '4', l->socks[i].addr);
    return 0;
}

void listener_close(struct listener *l)
{
    for (unsigned i = 0; i < l->nsocks; i++) {
        struct listener_sock *ls = &l->socks[i];
        if (ls->open && !uv_is_closing((uv_handle_t *)&ls->tcp)) {
            ls->open = false;
            uv_close((uv_handle_t *)&ls->tcp, NULL);
        }
    }
    if (l->hup) {
        uv_close((uv_handle_t *)l->hup, (uv_close_cb)free);
        l->hup = NULL;
    }
    tls_ctx_unref(l->tls);
    l->tls = NULL;
}
