/* Reference-counted messages and their per-subscriber PUBLISH layout (see msg.h for the
 * wire layout and why one body serves every wire form). */
#include "msg.h"

#include <errno.h>
#include <string.h>

#include "mem.h"

#define SUB_ID_MAX MQTT_VARINT_MAX

/* Whether a v5 PUBLISH property passes from publisher to subscribers unchanged. Message
 * Expiry is re-computed per send [MQTT-3.3.2-6], Topic Alias is per connection
 * [MQTT-3.3.2-7] and Subscription Identifiers are the receiver's. */
static bool prop_passes(uint8_t id)
{
    switch (id) {
    case MQTT_PROP_PAYLOAD_FORMAT:   /* [MQTT-3.3.2-4] */
    case MQTT_PROP_CONTENT_TYPE:     /* [MQTT-3.3.2-20] */
    case MQTT_PROP_RESPONSE_TOPIC:   /* [MQTT-3.3.2-15] */
    case MQTT_PROP_CORRELATION_DATA: /* [MQTT-3.3.2-16] */
    case MQTT_PROP_USER_PROPERTY:    /* [MQTT-3.3.2-17], [MQTT-3.3.2-18]: in order */
        return true;
    default:
        return false;
    }
}

/* Copies the pass-through properties of props[0..len) to out (if not NULL). Returns their
 * size, or -1 for a malformed block. */
static long props_filter(const uint8_t *props, size_t len, uint8_t *out)
{
    const uint8_t *pos, *end;
    struct mqtt_prop pr;
    size_t n = 0;
    if (!props) return 0;
    pos = props;
    end = props + len;
    for (;;) {
        const uint8_t *start = pos;
        int rc = mqtt_prop_next(&pos, end, &pr);
        if (rc == 0) return (long)n;
        if (rc < 0) return -1;
        if (!prop_passes(pr.id)) continue;
        if (out) memcpy(out + n, start, (size_t)(pos - start));
        n += (size_t)(pos - start);
    }
}

int msg_new(const struct msg_init *in, struct msg **out)
{
    long props_len;
    size_t body_len;
    struct msg *m;
    uint8_t *b;

    *out = NULL;
    if (in->topic_len == 0 || in->topic_len > UINT16_MAX || in->qos > 2) return -EINVAL;
    props_len = props_filter(in->props, in->props_len, NULL);
    if (props_len < 0) return -EINVAL;
    body_len = 2 + in->topic_len + (size_t)props_len + in->payload_len;
    /* The smallest PUBLISH of it (3.x, QoS 0) must be representable. */
    if (in->payload_len > MQTT_VARINT_MAX || body_len > MQTT_VARINT_MAX) return -EMSGSIZE;
    m = mem_malloc(sizeof *m + body_len);
    if (!m) return -ENOMEM;
    m->refs = 1;
    m->qos = in->qos;
    m->retain = in->retain;
    m->topic_len = (uint16_t)in->topic_len;
    m->props_len = (uint32_t)props_len;
    m->payload_len = (uint32_t)in->payload_len;
    m->expires_at_ms = in->expires_at_ms;
    m->body_len = body_len;
    b = m->body;
    b[0] = (uint8_t)(in->topic_len >> 8);
    b[1] = (uint8_t)in->topic_len;
    memcpy(b + 2, in->topic, in->topic_len);
    props_filter(in->props, in->props_len, b + 2 + in->topic_len);
    if (in->payload_len) memcpy(b + 2 + in->topic_len + props_len, in->payload, in->payload_len);
    m->topic = (const char *)b + 2;
    m->props = b + 2 + in->topic_len;
    m->payload = m->props + props_len;
    *out = m;
    return 0;
}

int msg_new_from_publish(const struct mqtt_packet *pkt, const char *topic, size_t topic_len,
                         uint64_t now_ms, struct msg **out)
{
    const struct mqtt_publish *p = &pkt->u.publish;
    struct msg_init in = {
        .topic = topic,
        .topic_len = topic_len,
        .payload = p->payload,
        .payload_len = p->payload_len,
        .qos = p->qos,
        .retain = p->retain,
        .props = pkt->props.raw,
        .props_len = pkt->props.raw_len,
    };
    if (pkt->props.present & MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY))
        in.expires_at_ms = now_ms + (uint64_t)pkt->props.message_expiry_s * 1000u;
    return msg_new(&in, out);
}

void msg_unref(struct msg *m)
{
    if (m && --m->refs == 0) mem_free(m);
}

/* The sizes of one PUBLISH for s. */
struct layout {
    bool v5;
    bool topic_sent;
    size_t props_len;  /* v5: per-write properties + pass-through ones */
    uint32_t expiry_s; /* v5: remaining interval, when the message has an expiry */
    size_t remaining;  /* remaining length */
    size_t head_len;
};

static int layout_of(const struct msg *m, const struct msg_send *s, struct layout *l)
{
    uint32_t i;
    size_t per_write = 0;
    if (s->qos > 2 || (s->qos > 0 && s->packet_id == 0)) return -EINVAL;
    l->v5 = s->version == MQTT_V5;
    l->topic_sent = !(l->v5 && s->topic_alias && s->alias_known);
    l->expiry_s = 0;
    l->props_len = 0;
    if (l->v5) {
        if (m->expires_at_ms) {
            uint64_t left = m->expires_at_ms > s->now_ms ? m->expires_at_ms - s->now_ms : 0;
            uint64_t sec = (left + 999) / 1000;
            l->expiry_s = sec > UINT32_MAX ? UINT32_MAX : (uint32_t)sec;
            per_write += 5;
        }
        if (s->topic_alias) per_write += 3;
        for (i = 0; i < s->sub_id_count; i++) {
            if (s->sub_ids[i] == 0 || s->sub_ids[i] > SUB_ID_MAX) return -EINVAL;
            per_write += 1 + mqtt_varint_size(s->sub_ids[i]);
        }
        l->props_len = per_write + m->props_len;
    }
    l->remaining = (l->topic_sent ? 2u + m->topic_len : 2u) + (s->qos ? 2u : 0u) +
                   (l->v5 ? mqtt_varint_size((uint32_t)l->props_len) + l->props_len : 0) +
                   m->payload_len;
    if (l->props_len > MQTT_VARINT_MAX || l->remaining > MQTT_VARINT_MAX) return -EMSGSIZE;
    l->head_len = 1 + mqtt_varint_size((uint32_t)l->remaining) + (l->topic_sent ? 0 : 2) +
                  (s->qos ? 2 : 0) +
                  (l->v5 ? mqtt_varint_size((uint32_t)l->props_len) + per_write : 0);
    return 0;
}

size_t msg_head_size(const struct msg *m, const struct msg_send *s)
{
    struct layout l;
    return layout_of(m, s, &l) < 0 ? 0 : l.head_len;
}

size_t msg_wire_size(const struct msg *m, const struct msg_send *s)
{
    struct layout l;
    if (layout_of(m, s, &l) < 0) return 0;
    return 1 + mqtt_varint_size((uint32_t)l.remaining) + l.remaining;
}

static uint8_t *put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

int msg_prepare(const struct msg *m, const struct msg_send *s, uint8_t *head, size_t head_cap,
                struct msg_iov iov[MSG_IOV_MAX], unsigned *iov_count, size_t *wire_len)
{
    struct layout l;
    uint8_t *h = head, *h2;
    const uint8_t *tail;
    size_t tail_len;
    unsigned n = 0;
    uint32_t i;
    int rc = layout_of(m, s, &l);

    *iov_count = 0;
    *wire_len = 0;
    if (rc < 0) return rc;
    if (head_cap < l.head_len) return -ENOSPC;
    /* iov[0]: fixed header (and an empty topic when the alias stands for it). */
    *h++ = (uint8_t)(MQTT_PUBLISH << 4 | (s->dup && s->qos ? 0x08 : 0) | s->qos << 1 |
                     (s->retain ? 0x01 : 0));
    h += mqtt_varint_encode((uint32_t)l.remaining, h);
    if (!l.topic_sent) h = put_u16(h, 0);
    iov[n].base = head;
    iov[n++].len = (size_t)(h - head);
    /* iov[1]: the topic, shared. */
    if (l.topic_sent) {
        iov[n].base = m->body;
        iov[n++].len = 2u + m->topic_len;
    }
    /* iov[2]: packet id and the per-write properties. */
    h2 = h;
    if (s->qos) h = put_u16(h, s->packet_id);
    if (l.v5) {
        h += mqtt_varint_encode((uint32_t)l.props_len, h);
        if (m->expires_at_ms) {
            *h++ = MQTT_PROP_MESSAGE_EXPIRY;
            *h++ = (uint8_t)(l.expiry_s >> 24);
            *h++ = (uint8_t)(l.expiry_s >> 16);
            *h++ = (uint8_t)(l.expiry_s >> 8);
            *h++ = (uint8_t)l.expiry_s;
        }
        if (s->topic_alias) {
            *h++ = MQTT_PROP_TOPIC_ALIAS;
            h = put_u16(h, s->topic_alias);
        }
        for (i = 0; i < s->sub_id_count; i++) {
            *h++ = MQTT_PROP_SUBSCRIPTION_ID;
            h += mqtt_varint_encode(s->sub_ids[i], h);
        }
    }
    if (h != h2) {
        if (!l.topic_sent) /* contiguous with iov[0] */
            iov[n - 1].len += (size_t)(h - h2);
        else {
            iov[n].base = h2;
            iov[n++].len = (size_t)(h - h2);
        }
    }
    /* iov[3]: pass-through properties (v5) and payload, shared. */
    tail = l.v5 ? m->props : m->payload;
    tail_len = l.v5 ? m->props_len + m->payload_len : m->payload_len;
    if (tail_len) {
        if (h == h2 && l.topic_sent && tail == m->body + 2 + m->topic_len) /* after topic */
            iov[n - 1].len += tail_len;
        else {
            iov[n].base = tail;
            iov[n++].len = tail_len;
        }
    }
    *iov_count = n;
    *wire_len = (size_t)(h - head) + (l.topic_sent ? 2u + m->topic_len : 0) + tail_len;
    return 0;
}

size_t msg_encode(const struct msg *m, const struct msg_send *s, uint8_t *out, size_t cap)
{
    uint8_t head[MSG_HEAD_INLINE];
    uint8_t *big = NULL, *hp = head;
    struct msg_iov iov[MSG_IOV_MAX];
    unsigned n, i;
    size_t len, off = 0, need = msg_head_size(m, s);

    if (need > sizeof head) {
        big = mem_malloc(need);
        if (!big) return 0;
        hp = big;
    }
    if (msg_prepare(m, s, hp, need ? need : sizeof head, iov, &n, &len) < 0 || len > cap) {
        mem_free(big);
        return 0;
    }
    for (i = 0; i < n; i++) {
        memcpy(out + off, iov[i].base, iov[i].len);
        off += iov[i].len;
    }
    mem_free(big);
    return off;
}
