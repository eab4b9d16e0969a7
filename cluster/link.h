/* Node links: long-lived connections between the nodes of the cluster, for publish forwarding
 * (the broker's frames) and the cluster's own traffic (forwarded proposals, pings).
 *
 * Each node dials every other member on the cluster port, channel link, and writes its frames
 * to that peer over this outgoing connection; what a peer sends arrives on the connection the
 * peer dialed (so a pair of nodes has two connections, one per direction, and a node never
 * races its peer for "the" connection). Frames:
 *
 *   u32 length (big-endian, of what follows) | u8 type | payload[length - 1]
 *
 * Types 1..LINK_TYPE_USER_MAX are the broker's; the others the cluster's own.
 *
 * Sending appends to the peer's outgoing buffer; link_flush(), called once per loop iteration
 * (the cluster's uv_check), writes everything a peer gathered in one uv_write. The outgoing
 * queue of a peer (gathered + written but not yet completed) is bounded by queue_max_bytes.
 * When a link is down, or a frame does not fit: frames flagged LINK_F_SHEDDABLE (QoS 0) are
 * dropped and counted (shed); others are kept, while they fit, until the link is up again
 * (reconnect with backoff 100 ms doubling to 5 s, the name resolved again each time), and
 * refused with -ENOBUFS when they do not. Frames already written to a connection that then
 * breaks are lost: the broker's protocol (acknowledgement by the owner) covers that.
 */
#ifndef STARLING_CLUSTER_LINK_H
#define STARLING_CLUSTER_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cluster.h"
#include "port.h"

#define LINK_TYPE_USER_MAX 0xEFu
#define LINK_F_SHEDDABLE   0x01u
#define LINK_FRAME_MAX     ((size_t)512 << 20)

/* The cluster's own frame types. */
#define LINK_TYPE_PING         0xF0u /* empty: keeps last_heard fresh */
#define LINK_TYPE_FWD_PROPOSE  0xF1u /* forward.h */
#define LINK_TYPE_FWD_RESULT   0xF2u /* forward.h */
#define LINK_TYPE_LEASE_ASK    0xF3u /* lease.c */
#define LINK_TYPE_LEASE_ANSWER 0xF4u /* lease.c */

struct link;

struct link_hooks {
    /* A whole frame from peer from_id (borrowed: valid during the call). */
    void (*frame)(void *ctx, uint64_t from_id, uint8_t type, const uint8_t *buf, size_t len);
    /* Something was queued: make sure link_flush runs this iteration. */
    void (*kick)(void *ctx);
    /* The outgoing link to id came up or went down. */
    void (*state)(void *ctx, uint64_t id, bool up);
    cluster_log_cb log;
    void *log_ctx;
    void *ctx;
};

int link_new(uv_loop_t *loop, struct port *port, size_t queue_max_bytes, unsigned ping_ms,
             const struct link_hooks *hooks, struct link **out /* OUT */);
/* Makes the set of peers exactly ids[i] at addresses[i] (self excluded by the caller): new
 * ones are dialed, gone ones closed (their queues dropped), a changed address redialed. */
int link_set_peers(struct link *l, const uint64_t *ids, const char *const *addresses, size_t n);
/* Queues one frame (see above). 0, -ENOBUFS (not queued; shed if sheddable), -ENOENT (no
 * such peer), -EMSGSIZE, -ENOMEM. */
int link_send(struct link *l, uint64_t peer_id, uint8_t type, const void *buf, size_t len,
              unsigned flags);
/* Writes what was gathered, one uv_write per peer. */
void link_flush(struct link *l);
/* An accepted link-channel connection from peer id (the cluster's port_accept_cb). */
void link_accept(struct link *l, uint64_t id, uv_tcp_t *stream);
/* When a frame from id last arrived (uv_now ms), 0 if never. */
uint64_t link_last_heard(const struct link *l, uint64_t id);
bool link_is_up(const struct link *l, uint64_t id);
/* Per-peer statistics (cluster.h). 0 or -ENOENT. */
int link_peer_stats(const struct link *l, uint64_t id, struct cluster_link_stats *out /* OUT */);
void link_close(struct link *l, void (*cb)(void *data), void *data);

#endif
