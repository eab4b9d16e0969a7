/* The encoders: the exact size of a packet first, then one pass writing it into the caller's
 * buffer, so a PUBLISH is serialized once whatever the number of its receivers. */
#include "codec.h"

/* Sizes worked out once and shared by sizing and writing. */
struct plan {
    size_t rem;        /* remaining length */
    size_t props;      /* property block size without its length, MQTT 5 */
    size_t will_props; /* the will's, MQTT 5 CONNECT */
    uint8_t ack_form;  /* acks, DISCONNECT, AUTH in 5.0: 0 bare, 1 reason only, 2 full */
};

static size_t props_field_size(size_t props)
{
    return mqtt_varint_size((uint32_t)props) + props;
}

static size_t topic_list_size(const struct mqtt_topic_list *tl, bool with_opts)
{
    size_t n = 0;
    if (!tl->list) return tl->raw_len;
    for (uint32_t i = 0; i < tl->count; i++)
        n += 2 + (size_t)tl->list[i].filter.len + (with_opts ? 1 : 0);
    return n;
}

/* The optional tail of 5.0 acks, DISCONNECT and AUTH: nothing when the reason is success and
 * there are no properties, the reason alone without properties, else both. */
static size_t ack_tail(struct plan *pl, uint8_t reason)
{
    if (pl->props)
        pl->ack_form = 2;
    else
        pl->ack_form = reason != MQTT_RC_SUCCESS ? 1 : 0;
    return pl->ack_form == 0 ? 0 : pl->ack_form == 1 ? 1 : 1 + props_field_size(pl->props);
}

/* props_encodable(), with the common case of no properties at all answered here. */
static inline bool props_ok(const struct mqtt_props *p, unsigned ctx)
{
    if (!(p->present | p->sub_id_count | p->user_count)) return true;
    return props_encodable(p, ctx);
}

/* Whether a SUBSCRIBE / UNSUBSCRIBE list may be written: at least one entry [MQTT-3.8.3-3]
 * (5.0 [MQTT-3.8.3-2]) [MQTT-3.10.3-2], requested QoS 0..2 [MQTT-3-8.3-4], Retain Handling
 * 0..2, and in 5.0 no No Local on a shared subscription [MQTT-3.8.3-4]. */
static bool topic_list_encodable(const struct mqtt_topic_list *tl, bool with_opts, bool v5)
{
    if (!tl->list) return tl->raw_len > 0; /* a decoded list, checked when it was parsed */
    if (tl->count == 0) return false;
    for (uint32_t i = 0; with_opts && i < tl->count; i++) {
        const struct mqtt_topic_entry *te = &tl->list[i];
        if (te->opts.qos > 2) return false;
        if (!v5) continue;
        if (te->opts.retain_handling > 2) return false;
        if (te->opts.no_local && te->filter.len >= 7 && memcmp(te->filter.ptr, "$share/", 7) == 0)
            return false;
    }
    return true;
}

/* The rules of the fixed-size fields that a sender MUST follow, checked before anything is
 * written: the encoder never produces a packet that mqtt_parse() refuses for one of these.
 * Strings (UTF-8, topic names and filters) and the choice of reason codes are the caller's
 * (mqtt_reason_allowed() says which codes a packet may carry). */
static bool packet_encodable(const struct mqtt_packet *pkt, uint8_t version)
{
    bool v5 = version == MQTT_V5;
    switch (pkt->type) {
    case MQTT_PUBLISH: {
        const struct mqtt_publish *pub = &pkt->u.publish;
        if (pub->qos > 2) return false;              /* [MQTT-3.3.1-4] */
        if (pub->dup && pub->qos == 0) return false; /* [MQTT-3.3.1-2] */
        /* A non-zero packet identifier with QoS 1 and 2: 3.1.1 [MQTT-2.3.1-1], 5.0
         * [MQTT-2.2.1-3] [MQTT-2.2.1-4]. */
        if (pub->qos && pub->packet_id == 0) return false;
        /* A topic name, or in 5.0 an empty one with a Topic Alias [MQTT-4.7.3-1]. */
        if (pub->topic.len == 0 &&
            !(v5 && (pkt->props.present & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS))))
            return false;
        return !v5 || props_ok(&pkt->props, MQTT_PUBLISH);
    }
    case MQTT_CONNECT: {
        const struct mqtt_connect *cn = &pkt->u.connect;
        /* Will QoS 0..2: 3.1.1 [MQTT-3.1.2-14], 5.0 [MQTT-3.1.2-12]. Without the will flag the
         * will QoS and retain bits are written as 0 ([MQTT-3.1.2-11] [MQTT-3.1.2-13]). */
        if (cn->will_flag && cn->will_qos > 2) return false;
        if (!v5 && cn->has_password && !cn->has_username) return false; /* [MQTT-3.1.2-22] */
        if (!v5) return true;
        if (cn->will_flag && !props_ok(&cn->will_props, PROPS_WILL)) return false;
        return props_ok(&pkt->props, MQTT_CONNECT);
    }
    case MQTT_CONNACK: {
        uint8_t sp;
        memcpy(&sp, &pkt->u.connack.session_present, 1);
        uint8_t rc = pkt->u.connack.reason;
        /* Session Present 0 with a refusal: 3.1.1 [MQTT-3.2.2-4], 5.0 [MQTT-3.2.2-6]. */
        if (sp && (v5 ? rc : mqtt_connack_v3_code(rc)) != 0) return false;
        return !v5 || props_ok(&pkt->props, MQTT_CONNACK);
    }
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        if (pkt->u.ack.packet_id == 0) return false; /* the id of a PUBLISH, never 0 */
        return !v5 || props_ok(&pkt->props, pkt->type);
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        if (pkt->u.subscribe.packet_id == 0) return false; /* [MQTT-2.3.1-1] [MQTT-2.2.1-3] */
        if (!topic_list_encodable(&pkt->u.subscribe.topics, pkt->type == MQTT_SUBSCRIBE, v5))
            return false;
        return !v5 || props_ok(&pkt->props, pkt->type);
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        if (pkt->u.suback.packet_id == 0) return false; /* that of the SUBSCRIBE */
        /* A reason code per filter of the SUBSCRIBE, so one at least (3.x UNSUBACK: none). */
        if (pkt->u.suback.count == 0 && (v5 || pkt->type == MQTT_SUBACK)) return false;
        return !v5 || props_ok(&pkt->props, pkt->type);
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        return !v5 || props_ok(&pkt->props, pkt->type);
    default:
        return true;
    }
}

/* Fills *pl; returns false when pkt cannot be encoded in this version. */
static bool plan_packet(const struct mqtt_packet *pkt, uint8_t version, struct plan *pl)
{
    bool v5 = version == MQTT_V5;
    size_t rem = 0;
    if (version < MQTT_V31 || version > MQTT_V5) return false;
    if (!packet_encodable(pkt, version)) return false;
    pl->props = v5 ? mqtt_props_size(&pkt->props) : 0;
    pl->will_props = 0;
    pl->ack_form = 0;
    switch (pkt->type) {
    case MQTT_PUBLISH: {
        const struct mqtt_publish *pub = &pkt->u.publish;
        rem = 2 + (size_t)pub->topic.len + (pub->qos ? 2 : 0) + pub->payload_len;
        if (v5) rem += props_field_size(pl->props);
        break;
    }
    case MQTT_CONNECT: {
        const struct mqtt_connect *cn = &pkt->u.connect;
        rem = (version == MQTT_V31 ? 8 : 6) + 1 + 1 + 2 + 2 + (size_t)cn->client_id.len;
        if (v5) rem += props_field_size(pl->props);
        if (cn->will_flag) {
            if (v5) {
                pl->will_props = mqtt_props_size(&cn->will_props);
                rem += props_field_size(pl->will_props);
            }
            rem += 4 + (size_t)cn->will_topic.len + cn->will_payload.len;
        }
        if (cn->has_username) rem += 2 + (size_t)cn->username.len;
        if (cn->has_password) rem += 2 + (size_t)cn->password.len;
        break;
    }
    case MQTT_CONNACK:
        rem = 2 + (v5 ? props_field_size(pl->props) : 0);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        rem = 2 + (v5 ? ack_tail(pl, pkt->u.ack.reason) : 0);
        break;
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        rem = 2 + topic_list_size(&pkt->u.subscribe.topics, pkt->type == MQTT_SUBSCRIBE);
        if (v5) rem += props_field_size(pl->props);
        break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        rem = 2;
        if (v5)
            rem += props_field_size(pl->props) + pkt->u.suback.count;
        else if (pkt->type == MQTT_SUBACK)
            rem += pkt->u.suback.count;
        break;
    case MQTT_PINGREQ:
    case MQTT_PINGRESP:
        rem = 0;
        break;
    case MQTT_AUTH:
        if (!v5) return false; /* AUTH exists only in MQTT 5 */
        /* fall through */
    case MQTT_DISCONNECT:
        rem = v5 ? ack_tail(pl, pkt->u.disconnect.reason) : 0;
        break;
    default:
        return false;
    }
    if (rem > MQTT_VARINT_MAX || pl->props > MQTT_VARINT_MAX || pl->will_props > MQTT_VARINT_MAX)
        return false;
    pl->rem = rem;
    return true;
}

size_t mqtt_encoded_size(const struct mqtt_packet *pkt, uint8_t version)
{
    struct plan pl;
    if (!plan_packet(pkt, version, &pl)) return 0;
    return 1 + mqtt_varint_size((uint32_t)pl.rem) + pl.rem;
}

static uint8_t *put_props(uint8_t *o, const struct mqtt_props *props, size_t size)
{
    o += mqtt_varint_encode((uint32_t)size, o);
    return size ? props_write(props, o) : o;
}

static uint8_t *put_topic_list(uint8_t *o, const struct mqtt_topic_list *tl, bool with_opts,
                               bool v5)
{
    if (!tl->list) return put_bytes(o, tl->raw, tl->raw_len);
    for (uint32_t i = 0; i < tl->count; i++) {
        const struct mqtt_topic_entry *te = &tl->list[i];
        o = put_str(o, te->filter.ptr, te->filter.len);
        if (with_opts) *o++ = v5 ? mqtt_sub_opts_byte(te->opts) : (te->opts.qos & 3);
    }
    return o;
}

static uint8_t *put_connect(uint8_t *o, const struct mqtt_packet *pkt, uint8_t version,
                            const struct plan *pl)
{
    const struct mqtt_connect *cn = &pkt->u.connect;
    bool v5 = version == MQTT_V5;
    uint8_t f = 0;
    if (version == MQTT_V31)
        o = put_str(o, "MQIsdp", 6);
    else
        o = put_str(o, "MQTT", 4);
    *o++ = version;
    if (cn->clean_start) f |= 0x02;
    if (cn->will_flag)
        f |= (uint8_t)(0x04 | ((cn->will_qos & 3) << 3) | (cn->will_retain ? 0x20 : 0));
    if (cn->has_password) f |= 0x40;
    if (cn->has_username) f |= 0x80;
    *o++ = f;
    o = put_u16(o, cn->keepalive_s);
    if (v5) o = put_props(o, &pkt->props, pl->props);
    o = put_str(o, cn->client_id.ptr, cn->client_id.len);
    if (cn->will_flag) {
        if (v5) o = put_props(o, &cn->will_props, pl->will_props);
        o = put_str(o, cn->will_topic.ptr, cn->will_topic.len);
        o = put_str(o, cn->will_payload.ptr, cn->will_payload.len);
    }
    if (cn->has_username) o = put_str(o, cn->username.ptr, cn->username.len);
    if (cn->has_password) o = put_str(o, cn->password.ptr, cn->password.len);
    return o;
}

static uint8_t *put_ack_tail(uint8_t *o, const struct plan *pl, uint8_t reason,
                             const struct mqtt_props *props)
{
    if (pl->ack_form >= 1) *o++ = reason;
    if (pl->ack_form == 2) o = put_props(o, props, pl->props);
    return o;
}

size_t mqtt_encode(const struct mqtt_packet *pkt, uint8_t version, uint8_t *out, size_t cap)
{
    struct plan pl;
    bool v5 = version == MQTT_V5;
    if (!plan_packet(pkt, version, &pl)) return 0;
    size_t total = 1 + mqtt_varint_size((uint32_t)pl.rem) + pl.rem;
    if (total > cap) return 0;

    uint8_t *o = out;
    uint8_t flags = 0;
    switch (pkt->type) {
    case MQTT_PUBLISH:
        flags = (uint8_t)((pkt->u.publish.dup ? 0x08 : 0) | ((pkt->u.publish.qos & 3) << 1) |
                          (pkt->u.publish.retain ? 0x01 : 0));
        break;
    case MQTT_PUBREL:
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        flags = 0x02; /* [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1] */
        break;
    }
    *o++ = (uint8_t)(pkt->type << 4 | flags);
    o += mqtt_varint_encode((uint32_t)pl.rem, o);

    switch (pkt->type) {
    case MQTT_PUBLISH: {
        const struct mqtt_publish *pub = &pkt->u.publish;
        o = put_str(o, pub->topic.ptr, pub->topic.len);
        if (pub->qos) o = put_u16(o, pub->packet_id);
        if (v5) o = put_props(o, &pkt->props, pl.props);
        o = put_bytes(o, pub->payload, pub->payload_len);
        break;
    }
    case MQTT_CONNECT:
        o = put_connect(o, pkt, version, &pl);
        break;
    case MQTT_CONNACK: {
        /* Read as a byte: any non-zero value means present, even one a union member left. */
        uint8_t sp;
        memcpy(&sp, &pkt->u.connack.session_present, 1);
        *o++ = sp ? 1 : 0;
        *o++ = v5 ? pkt->u.connack.reason : mqtt_connack_v3_code(pkt->u.connack.reason);
        if (v5) o = put_props(o, &pkt->props, pl.props);
        break;
    }
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        o = put_u16(o, pkt->u.ack.packet_id);
        if (v5) o = put_ack_tail(o, &pl, pkt->u.ack.reason, &pkt->props);
        break;
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        o = put_u16(o, pkt->u.subscribe.packet_id);
        if (v5) o = put_props(o, &pkt->props, pl.props);
        o = put_topic_list(o, &pkt->u.subscribe.topics, pkt->type == MQTT_SUBSCRIBE, v5);
        break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        o = put_u16(o, pkt->u.suback.packet_id);
        if (v5) o = put_props(o, &pkt->props, pl.props);
        if (v5 || pkt->type == MQTT_SUBACK)
            o = put_bytes(o, pkt->u.suback.reasons, pkt->u.suback.count);
        break;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        if (v5) o = put_ack_tail(o, &pl, pkt->u.disconnect.reason, &pkt->props);
        break;
    default: /* PINGREQ, PINGRESP */
        break;
    }
    return (size_t)(o - out);
}
