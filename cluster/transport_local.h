/* A raft_uv transport for a single node that talks to nobody: it opens no socket, accepts
 * nothing and refuses every connection. A one-voter configuration never sends a message, so
 * this is all it needs, and it spares a single node a listening port. */
#ifndef STARLING_CLUSTER_TRANSPORT_LOCAL_H
#define STARLING_CLUSTER_TRANSPORT_LOCAL_H

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

struct transport_local {
    struct raft_uv_transport t; /* first: raft sees this */
    uv_loop_t *loop;
    uv_timer_t timer; /* defers the close callback to the loop */
    raft_uv_transport_close_cb close_cb;
};

void transport_local_init(struct transport_local *l, uv_loop_t *loop);

#endif
