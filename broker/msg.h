/* The reference-counted application message, and how one PUBLISH of it is laid out for each
 * subscriber without copying or re-encoding what subscribers share.
 *
 * Contract:
 * - A message is immutable after msg_new(); it is shared by every queue, inflight window,
 *   retained index entry and pending write that holds a reference (msg_ref / msg_unref).
 *   References are not atomic: the loop thread owns messages.
 * - One allocation per message: the struct and its wire body.
 * - Errors: -EINVAL, -ENOMEM, -ENOSPC, -EMSGSIZE.
 *
 * HOW IT WORKS: a PUBLISH on the wire is
 *
 *   | byte 0 | remaining length | topic length | topic | packet id | props length | props | payload
 * | (1)      varint (1..4)      (2)            (n)     (2, QoS>0)  varint (v5)    (v5)
 *
 * Between subscribers, byte 0 (QoS, DUP, RETAIN), the remaining length, the packet id and, in
 * MQTT 5, some properties (Message Expiry Interval: the time left; Topic Alias; Subscription
 * Identifiers) differ. Everything else is the same for every subscriber and every protocol
 * version: the topic, the pass-through properties (Payload Format Indicator, Content Type,
 * Response Topic, Correlation Data, User Properties in their order) and the payload. So a
 * message keeps ONE encoded body, built once in msg_new():
 *
 *   body = | topic length | topic | pass-through props | payload |
 *
 * and a write to one subscriber is up to four slices (msg_prepare()), two of them small
 * per-write bytes in a caller-provided head buffer, two of them shared slices of the body:
 *
 *   iov[0] head:   byte 0, remaining length          (v5 with a known alias: + 0x00 0x00)
 *   iov[1] body:   topic length + topic              (left out with a known alias)
 *   iov[2] head:   packet id (QoS > 0); v5: props length, expiry, alias, subscription ids
 *   iov[3] body:   v5: pass-through props + payload; 3.x: payload only
 *
 * Adjacent parts merge (3.1.1 QoS 0 is [head][body], two slices). This is the "encode once
 * per wire form" rule taken to its end: every wire form (version x QoS x DUP x RETAIN x
 * packet id x alias x subscription ids x expiry) shares the same body, and a per-subscriber
 * form costs at most msg_head_size() bytes (<= 21 + 5 per subscription identifier) written
 * into the write request, with no allocation. The pending write holds a msg reference until
 * its write callback; the body cannot change meanwhile.
 */
#ifndef STARLING_BROKER_MSG_H
#define STARLING_BROKER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct msg {
    uint32_t refs;
    uint8_t qos; /* QoS it was published with */
    bool retain; /* RETAIN flag it was published with */
    uint16_t topic_len;
    uint32_t props_len; /* pass-through property block (MQTT 5), without length */
    uint32_t payload_len;
    uint64_t expires_at_ms; /* absolute Message Expiry instant, 0 for none */
    const char *topic;      /* into body, not NUL-terminated */
    const uint8_t *props;   /* into body */
    const uint8_t *payload; /* into body */
    size_t body_len;        /* 2 + topic_len + props_len + payload_len */
    uint8_t body[];
};

/* What a message is made of. props is the raw property block of an MQTT 5 PUBLISH
 * (struct mqtt_props.raw) or NULL: only the pass-through properties are kept, in order
 * (Topic Alias, Message Expiry Interval and Subscription Identifiers are dropped; expiry is
 * expires_at_ms instead). */
struct msg_init {
    const char *topic;
    size_t topic_len;
    const uint8_t *payload;
    size_t payload_len;
    uint8_t qos;
    bool retain;
    const uint8_t *props;
    size_t props_len;
    uint64_t expires_at_ms; /* 0: never expires */
};

/* A new message with one reference. OUT *out. Returns 0, -EINVAL (empty topic or longer than
 * 65535, QoS above 2, malformed property block), -EMSGSIZE (cannot fit a PUBLISH), -ENOMEM. */
int msg_new(const struct msg_init *init, struct msg **out);

/* A message from a parsed PUBLISH: topic is the topic to use (the packet's, or the one its
 * alias maps to), now_ms turns a Message Expiry Interval into expires_at_ms. */
int msg_new_from_publish(const struct mqtt_packet *pkt, const char *topic, size_t topic_len,
                         uint64_t now_ms, struct msg **out);

static inline struct msg *msg_ref(struct msg *m)
{
    m->refs++;
    return m;
}
/* Drops one reference; frees at zero. msg_unref(NULL) is a no-op. */
void msg_unref(struct msg *m);

/* Whether the message has expired at now_ms [MQTT-3.3.2-5]: then it is not delivered. */
static inline bool msg_is_expired(const struct msg *m, uint64_t now_ms)
{
    return m->expires_at_ms != 0 && now_ms >= m->expires_at_ms;
}

/* The per-subscriber parts of one PUBLISH. */
struct msg_send {
    uint8_t version;         /* enum mqtt_version of the receiving connection */
    uint8_t qos;             /* QoS of this delivery */
    bool dup;                /* redelivery (QoS > 0) */
    bool retain;             /* the RETAIN flag to send */
    uint16_t packet_id;      /* QoS > 0 */
    uint16_t topic_alias;    /* v5: alias to send, 0 for none */
    bool alias_known;        /* v5: the client maps topic_alias already: topic left out */
    uint32_t sub_id_count;   /* v5 */
    const uint32_t *sub_ids; /* v5: [sub_id_count], each 1..268435455 */
    uint64_t now_ms;         /* v5: for the remaining Message Expiry Interval */
};

#define MSG_IOV_MAX 4
/* Head bytes needed for n subscription identifiers (enough for any struct msg_send). */
#define MSG_HEAD_SIZE(n) (21u + 5u * (n))
#define MSG_HEAD_INLINE  MSG_HEAD_SIZE(2) /* a write request's inline head: 31 bytes */

struct msg_iov {
    const uint8_t *base;
    size_t len;
};

/* Head bytes msg_prepare() needs for s (at most MSG_HEAD_SIZE(s->sub_id_count)). */
size_t msg_head_size(const struct msg *m, const struct msg_send *s);

/* Size of the PUBLISH for s on the wire (to compare with the client's Maximum Packet Size
 * [MQTT-3.1.2-24]), or 0 if it cannot be encoded (remaining length over 268435455). */
size_t msg_wire_size(const struct msg *m, const struct msg_send *s);

/* Lays out the PUBLISH of m for one subscriber: per-write bytes go into head[0..head_cap),
 * shared bytes are slices of m->body (valid while the caller holds a reference to m).
 * OUT iov[0..*iov_count), *wire_len (the sum of the slices). Returns 0, -ENOSPC (head_cap <
 * msg_head_size()), -EMSGSIZE (too large for a PUBLISH), -EINVAL (QoS above 2, packet id 0
 * with QoS > 0, subscription id 0 or above 268435455). */
int msg_prepare(const struct msg *m, const struct msg_send *s, uint8_t *head, size_t head_cap,
                struct msg_iov iov[MSG_IOV_MAX], unsigned *iov_count, size_t *wire_len);

/* The same PUBLISH as one contiguous buffer out[0..cap) (queued-message storage, tests).
 * Returns the bytes written, or 0 if cap is too small or msg_prepare() fails. */
size_t msg_encode(const struct msg *m, const struct msg_send *s, uint8_t *out, size_t cap);

#endif
