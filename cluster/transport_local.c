/* The socketless raft_uv transport of a single node (transport_local.h). */
#include "transport_local.h"

#include <stdio.h>
#include <string.h>

static int local_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    (void)t;
    (void)id;
    (void)address;
    return 0;
}

static int local_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    (void)t;
    (void)cb;
    return 0;
}

static int local_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                         const char *address, raft_uv_connect_cb cb)
{
    (void)req;
    (void)id;
    (void)address;
    (void)cb;
    snprintf(t->errmsg, sizeof t->errmsg, "single node: no connection to %s", address);
    return RAFT_NOCONNECTION;
}

static void local_closed(uv_handle_t *h)
{
    struct transport_local *l = h->data;
    if (l->close_cb) l->close_cb(&l->t);
}

static void local_timer_cb(uv_timer_t *timer)
{
    uv_close((uv_handle_t *)timer, local_closed);
}

static void local_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct transport_local *l = (struct transport_local *)t;
    l->close_cb = cb;
    uv_timer_init(l->loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, local_timer_cb, 0, 0);
}

void transport_local_init(struct transport_local *l, uv_loop_t *loop)
{
    memset(l, 0, sizeof *l);
    l->loop = loop;
    l->t.init = local_init;
    l->t.listen = local_listen;
    l->t.connect = local_connect;
    l->t.close = local_close;
}
