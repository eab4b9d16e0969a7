/* libraft's transport over the cluster port (transport_port.h). */
#include "transport_port.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hello.h"

struct transport_conn {
    struct transport_conn *next, *prev;
    struct transport_port *tp;
    struct raft_uv_connect *req;
    struct port_dial *dial;
};

static void conn_unlink(struct transport_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->tp->pending = c->next;
    if (c->next) c->next->prev = c->prev;
}

static int tp_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    (void)t;
    (void)id;
    (void)address;
    return 0;
}

static int tp_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct transport_port *tp = (struct transport_port *)t;
    tp->accept_cb = cb;
    return 0;
}

static void tp_dial_cb(void *data, int status, uv_tcp_t *stream, uint64_t peer_id)
{
    struct transport_conn *c = data;
    struct raft_uv_connect *req = c->req;
    (void)peer_id;
    conn_unlink(c);
    free(c);
    if (status != 0) {
        req->cb(req, NULL, RAFT_NOCONNECTION);
        return;
    }
    req->cb(req, (struct uv_stream_s *)stream, 0);
}

static int tp_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                      const char *address, raft_uv_connect_cb cb)
{
    struct transport_port *tp = (struct transport_port *)t;
    (void)id;
    if (tp->closed) return RAFT_CANCELED;
    struct transport_conn *c = calloc(1, sizeof *c);
    if (!c) return RAFT_NOMEM;
    c->tp = tp;
    c->req = req;
    req->cb = cb;
    int rc = port_dial(tp->port, address, HELLO_CHANNEL_RAFT, tp_dial_cb, c, &c->dial);
    if (rc != 0) {
        free(c);
        snprintf(t->errmsg, sizeof t->errmsg, "cannot dial %s: %s", address, uv_strerror(rc));
        return rc == -EINVAL ? RAFT_INVALID : RAFT_NOCONNECTION;
    }
    c->next = tp->pending;
    if (tp->pending) tp->pending->prev = c;
    tp->pending = c;
    return 0;
}

static void tp_timer_closed(uv_handle_t *h)
{
    struct transport_port *tp = h->data;
    if (tp->close_cb) tp->close_cb(&tp->t);
}

static void tp_close_timer_cb(uv_timer_t *timer)
{
    struct transport_port *tp = timer->data;
    /* Connects still in flight end as canceled, as raft_uv_tcp's do. */
    while (tp->pending) {
        struct transport_conn *c = tp->pending;
        conn_unlink(c);
        port_dial_cancel(c->dial);
        struct raft_uv_connect *req = c->req;
        free(c);
        req->cb(req, NULL, RAFT_CANCELED);
    }
    uv_close((uv_handle_t *)timer, tp_timer_closed);
}

static void tp_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct transport_port *tp = (struct transport_port *)t;
    tp->closed = true;
    tp->close_cb = cb;
    tp->accept_cb = NULL;
    uv_timer_init(tp->loop, &tp->timer);
    tp->timer.data = tp;
    uv_timer_start(&tp->timer, tp_close_timer_cb, 0, 0);
}

void transport_port_accept(struct transport_port *tp, uint64_t id, const char *address,
                           uv_tcp_t *stream)
{
    if (tp->closed || !tp->accept_cb) {
        port_stream_close(stream);
        return;
    }
    tp->accept_cb(&tp->t, id, address, (struct uv_stream_s *)stream);
}

void transport_port_init(struct transport_port *tp, uv_loop_t *loop, struct port *port)
{
    memset(tp, 0, sizeof *tp);
    tp->loop = loop;
    tp->port = port;
    tp->t.init = tp_init;
    tp->t.listen = tp_listen;
    tp->t.connect = tp_connect;
    tp->t.close = tp_close;
}
