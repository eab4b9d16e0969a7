/* The raft_uv transport of a multi-node cluster: Raft's connections run over the cluster
 * port (port.h) on the hello's raft channel. connect dials the peer's "host:port" (names are
 * resolved on every connect, IPv4 and IPv6), runs the hello and hands libraft the connected
 * stream; connections accepted on the raft channel go to libraft's accept callback with the
 * peer's id and advertised address. The hello replaces raft_uv_tcp's own handshake (protocol,
 * id, address), which in libraft 0.15 is part of the transport, not of uv_send/uv_recv: after
 * the hello the stream carries exactly what libraft's uv_send writes and uv_recv reads.
 */
#ifndef STARLING_CLUSTER_TRANSPORT_PORT_H
#define STARLING_CLUSTER_TRANSPORT_PORT_H

#include <stdbool.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "port.h"

struct transport_conn;

struct transport_port {
    struct raft_uv_transport t; /* first: raft sees this */
    uv_loop_t *loop;
    struct port *port;
    raft_uv_accept_cb accept_cb;
    struct transport_conn *pending; /* connects in flight */
    uv_timer_t timer;               /* defers the close callback to the loop */
    raft_uv_transport_close_cb close_cb;
    bool closed;
};

void transport_port_init(struct transport_port *tp, uv_loop_t *loop, struct port *port);
/* An accepted raft-channel connection (the cluster's port_accept_cb routes it here). */
void transport_port_accept(struct transport_port *tp, uint64_t id, const char *address,
                           uv_tcp_t *stream);

#endif
