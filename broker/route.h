/* Publish forwarding between the nodes of a cluster (DESIGN.md "Publish forwarding and topic
 * ownership"): the ingress sends a message to owner(topic); the owner retains it, delivers to
 * its own clients, queues it durably for persistent sessions connected nowhere, and sends one
 * copy to each other live node where a matching session is connected; that node delivers to
 * its local clients. For QoS >= 1 the owner confirms to the ingress once the durable parts are
 * committed and the copies queued on the node links; only then is the publisher acknowledged.
 *
 * Node-link frames (types of cluster_link_send):
 * - ROUTE_FRAME_FORWARD (ingress -> owner) and ROUTE_FRAME_DELIVER (owner -> target node):
 *   a QUEUE_PUSH command in cluster_cmd_encode's layout, used as the message's encoding:
 *   client_id = the publisher's client id (No Local), msg_id = the ingress's token (0: no
 *   confirmation wanted), msg = the message.
 * - ROUTE_FRAME_CONFIRM (owner -> ingress): token (8 bytes, big endian), status (4 bytes, two's
 *   complement, 0 or a negative error), matched (1 byte: any subscriber at all).
 *
 * Limits: shared subscriptions are balanced among the members connected to each node (a
 * message can reach one member per node that has members); the old connection's will is not
 * published when a session moves to another node; QoS 1/2 messages in flight to a connection
 * (not yet acknowledged, not from the durable queue) are not moved with its session.
 *
 * Ownership: b->route, created by route_new() when the node is clustered (NULL on one node,
 * where nothing here runs). Loop thread only. */
#ifndef STARLING_BROKER_ROUTE_H
#define STARLING_BROKER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "durable.h"

struct broker;
struct msg;
struct session;

enum route_frame {
    ROUTE_FRAME_FORWARD = 1,
    ROUTE_FRAME_DELIVER = 2,
    ROUTE_FRAME_CONFIRM = 3,
};

/* Creates b->route. 0 or -ENOMEM. */
int route_new(struct broker *b);
/* Frees b->route; waiting publishers are not answered (their connections are gone). */
void route_free(struct broker *b);

/* The owner of a topic when it is another node, else 0 (this node owns it). */
uint64_t route_remote_owner(struct broker *b, const char *topic, size_t len);

/* Sends m (published by client pub_id) to its owner. With w (QoS >= 1) one hold of w is taken
 * and released once the message is done: confirmed by its owner, or routed again after a
 * refusal (another ring epoch, or no owner lease) and confirmed then (see route.c "HOW RE-ROUTING
 * WORKS"), or failed (link queue full, refused too often); w->u32 becomes
 * MQTT_RC_NO_MATCHING_SUBSCRIBERS when the owner found none (and w->u32 was 0); m gains a
 * reference until then. While route_holding(), a QoS >= 1 message goes through route_hold
 * instead. QoS 0 whose link is down is shed (counted) and delivered to this node's own clients
 * instead. */
void route_forward(struct broker *b, uint64_t owner, const char *pub_id, struct msg *m,
                   struct dur_wait *w);
/* Whether this node may sequence QoS >= 1 messages on the topics it owns (cluster_current:
 * the owner lease). When it may not, such a message of its own clients goes through
 * route_hold (routed again until it may, or ownership moved). QoS 0 is not gated. */
bool route_current(struct broker *b);
/* True while forwards are being routed again: a new QoS >= 1 message waits behind them
 * (route_hold), wherever its owner is, so that one publisher's order per topic holds. */
bool route_holding(const struct broker *b);
/* Queues m (QoS >= 1) behind the messages being routed again; then as route_forward with w,
 * or the owner's work on this node (route_owner_publish with w) if this node owns it then. */
void route_hold(struct broker *b, const char *pub_id, struct msg *m, struct dur_wait *w);

/* The owner's work for m, on this node (the ingress, or a forwarded message): retained
 * set/clear, delivery to local clients and durable queues, copies to the target nodes.
 * Durable parts hold *wp (created with done on first need) when wp is not NULL. Returns how
 * many subscribers matched cluster-wide. */
size_t route_owner_publish(struct broker *b, struct session *publisher, const char *pub_id,
                           struct msg *m, bool do_retain, struct dur_wait **wp, dur_done_cb done);

/* Whether node id is a live member of the ring. */
bool route_node_live(struct broker *b, uint64_t id);
/* deliver_publish found a matching session connected on node id (another live node). */
void route_note_target(struct broker *b, uint64_t id);
/* True while delivering a copy from the owner: only sessions connected here get it. */
bool route_local_only(const struct broker *b);

/* Cluster events. */
void route_link_frame(void *ctx, uint64_t from_id, uint8_t type, const uint8_t *buf, size_t len);
void route_ring_changed(void *ctx);
void route_node_changed(void *ctx, uint64_t node_id, bool up, bool is_leader);
void route_removed(void *ctx);

#endif
