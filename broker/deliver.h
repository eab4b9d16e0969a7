/* Delivery: from one published message to the subscribers that get it (subscription
 * matching merged per client at the maximum granted QoS [MQTT-3.3.5-1], upgrade_outgoing_qos,
 * max_qos, No Local, subscription identifiers, shared groups round-robin, ACL read checks),
 * retained delivery at subscribe (Retain Handling, Retain As Published), and the layout of one
 * PUBLISH for one connection (topic alias out, Maximum Packet Size, message expiry). */
#ifndef STARLING_BROKER_DELIVER_H
#define STARLING_BROKER_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct conn;
struct dur_wait;
struct msg;
struct session;

/* Delivers m to every matching subscription. publisher (may be NULL) is the publishing
 * session (for No Local). QoS > 0 copies for offline persistent sessions are queued durably;
 * when wp is not NULL, those pushes hold *wp (created with done on first need). Returns how
 * many sessions it went to. */
size_t deliver_publish(struct broker *b, struct session *publisher, struct msg *m,
                       struct dur_wait **wp, void (*done)(struct broker *, struct dur_wait *, int));

/* Delivers m to client_id, a member connected here of the shared group that filter
 * ("$share/<group>/...") names, whom the topic's owner picked (several nodes); if it is no
 * longer connected here (or no longer a member), to the group's next member connected here.
 * Returns 0 (delivered, or refused by the member's ACL), or -ENOENT: no member of the group
 * is connected here (the caller sends it on or drops it). */
int deliver_pick(struct broker *b, struct msg *m, const char *client_id, size_t client_id_len,
                 const char *filter, size_t filter_len);

/* Writes one PUBLISH of m to c. Returns 0, -EMSGSIZE (over the client's Maximum Packet
 * Size: not sent), -ETIME (expired: not sent), -ENOMEM. */
int deliver_send(struct conn *c, struct msg *m, uint8_t qos, bool dup, bool retain, uint16_t pid,
                 const uint32_t *sub_ids, uint32_t nsub_ids);

/* Sends the retained messages matching filter to s (a new or replaced subscription with
 * options and sub_id). Shared subscriptions get none. */
void deliver_retained(struct broker *b, struct session *s, const char *filter, size_t filter_len,
                      uint8_t options, uint32_t sub_id);

#endif
