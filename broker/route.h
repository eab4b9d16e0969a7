/* Publish forwarding between the nodes of a cluster (DESIGN.md "Publish forwarding and topic
 * ownership"): the ingress sends a message to owner(topic); the owner retains it, delivers to
 * its own clients, queues it durably for persistent sessions connected nowhere, and sends one
 * copy to each other live node where a matching session is connected; that node delivers to
 * its local clients. For QoS >= 1 the owner confirms to the ingress once the durable parts are
 * committed and the copies queued on the node links; only then is the publisher acknowledged.
 *
 * Node-link frames (types of cluster_link_send):
 * - ROUTE_FRAME_FORWARD (ingress -> owner): ring epoch u64 | ingress generation u64 | a
 *   QUEUE_PUSH command in cluster_cmd_encode's layout, used as the message's encoding:
 *   client_id = the publisher's client id (No Local), msg_id = the ingress's token (0: no
 *   confirmation wanted), msg = the message.
 * - ROUTE_FRAME_COPY (owner -> target node), the copy a target node delivers, with the
 *   shared-subscription deliveries the owner chose for that node:
 *
 *     epoch u64 | hops u8 | cmd_len u32 | QUEUE_PUSH command [cmd_len] (msg_id 0) | n u32 |
 *     n x ( client_len u16 | client id | filter_len u16 | "$share/<group>/<filter>" )
 *
 *   From the owner (hops 0) the node delivers to its own matching non-shared subscribers and,
 *   per entry, to that member of that group, or to another of the group's members connected
 *   here if that one left meanwhile; never to a member the owner did not name. A QoS >= 1
 *   entry with no member of its group left here is sent on (hops + 1, that entry only, the
 *   owner's epoch) to the group's next member connected on another live node, at most
 *   ROUTE_HOPS_MAX times; a copy with hops > 0 carries shared deliveries only.
 * - ROUTE_FRAME_DELIVER (owner -> target node), the copy of owners before ROUTE_FRAME_COPY:
 *   epoch u64 | QUEUE_PUSH command. Still delivered as they meant it (shared groups balanced
 *   among the members connected to the receiving node); this version never sends it.
 * - ROUTE_FRAME_CONFIRM (owner -> ingress): token (8 bytes, big endian), status (4 bytes, two's
 *   complement, 0 or a negative error), matched (1 byte: any subscriber at all).
 * All integers are big endian. A frame type a node does not know is ignored; a frame layout
 * never changes meaning: a new layout is a new type.
 *
 * Shared subscriptions: the owner picks one member per matching group cluster-wide,
 * round-robin over the group's members in the replicated index (the cursor is the owner's),
 * among those connected here or connected on a live node per the committed state (a
 * persistent member connected nowhere is not picked, as on one node).
 *
 * Limits: the old connection's will is not published when a session moves to another node;
 * QoS 1/2 messages in flight to a connection (not yet acknowledged, not from the durable
 * queue) are not moved with its session.
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
    ROUTE_FRAME_COPY = 4,
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
/* deliver_publish, as the owner, picked client_id, connected on node id (another live node),
 * as the member of the shared group that filter names: the copy to that node says so. */
void route_note_pick(struct broker *b, uint64_t id, const char *client_id, size_t client_id_len,
                     const char *filter, size_t filter_len);
/* True while delivering a copy from the owner: only sessions connected here get it. */
bool route_local_only(const struct broker *b);
/* True while the owner decides a message's deliveries (route_owner_publish): shared groups
 * pick among members connected on any live node. */
bool route_picks_cluster_wide(const struct broker *b);
/* True while delivering a ROUTE_FRAME_COPY: its owner chose the shared deliveries, so the
 * groups are left out of the local match. */
bool route_groups_decided(const struct broker *b);

/* Cluster events. */
void route_link_frame(void *ctx, uint64_t from_id, uint8_t type, const uint8_t *buf, size_t len);
void route_ring_changed(void *ctx);
void route_node_changed(void *ctx, uint64_t node_id, bool up, bool is_leader);
void route_removed(void *ctx);

#endif
