/* The parser: variable byte integers, the fixed header (with the packet size limit checked
 * before the body is needed), and one decoder per packet type. */
#include "codec.h"

size_t mqtt_varint_size(uint32_t v)
{
    return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

size_t mqtt_varint_encode(uint32_t v, uint8_t *out)
{
    size_t n = 0;
    do {
        uint8_t b = v & 0x7F;
        v >>= 7;
        if (v) b |= 0x80;
        out[n++] = b;
    } while (v && n < 4);
    return n;
}

int mqtt_varint_decode(const uint8_t *buf, size_t len, uint32_t *value)
{
    uint32_t v = 0;
    for (size_t i = 0; i < 4; i++) {
        if (i >= len) return 0;
        uint8_t b = buf[i];
        v |= (uint32_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            if (i > 0 && b == 0)
                return -1; /* overlong: the minimum number of bytes [MQTT-1.5.5-1] */
            *value = v;
            return (int)i + 1;
        }
    }
    return -1; /* a fifth byte */
}

/* Packets only a server sends, and packets only a client sends (by type bit). */
#define SERVER_ONLY                                                                                \
    ((1u << MQTT_CONNACK) | (1u << MQTT_SUBACK) | (1u << MQTT_UNSUBACK) | (1u << MQTT_PINGRESP))
#define CLIENT_ONLY                                                                                \
    ((1u << MQTT_CONNECT) | (1u << MQTT_SUBSCRIBE) | (1u << MQTT_UNSUBSCRIBE) |                    \
     (1u << MQTT_PINGREQ))

/* Checks the first byte of the fixed header. */
static enum mqtt_error header_check(const struct mqtt_parser *p, uint8_t type, uint8_t flags)
{
    bool v5 = p->version == MQTT_V5;
    if (type == 0 || (type == MQTT_AUTH && !v5)) return MQTT_ERR_RESERVED_TYPE;
    if (p->role == MQTT_ROLE_SERVER && (SERVER_ONLY & (1u << type))) return MQTT_ERR_UNEXPECTED;
    if (p->role == MQTT_ROLE_CLIENT) {
        if (CLIENT_ONLY & (1u << type)) return MQTT_ERR_UNEXPECTED;
        if (type == MQTT_DISCONNECT && !v5)
            return MQTT_ERR_UNEXPECTED; /* a 3.x server never sends DISCONNECT */
    }
    switch (type) {
    case MQTT_PUBLISH:
        if ((flags & 0x06) == 0x06) return MQTT_ERR_QOS3;                /* [MQTT-3.3.1-4] */
        if ((flags & 0x08) && !(flags & 0x06)) return MQTT_ERR_DUP_QOS0; /* [MQTT-3.3.1-2] */
        return MQTT_ERR_NONE;
    case MQTT_PUBREL:
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        /* Flags 0010 [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1]; MQTT 3.1 let a retry set
         * DUP on these. */
        if (p->version == MQTT_V31) flags &= 0x07;
        return flags == 0x02 ? MQTT_ERR_NONE : MQTT_ERR_RESERVED_FLAGS;
    default:
        /* Reserved flags are 0: 3.1.1 [MQTT-2.2.2-1], 5.0 [MQTT-2.1.3-1]. */
        return flags == 0 ? MQTT_ERR_NONE : MQTT_ERR_RESERVED_FLAGS;
    }
}

/* Fails with TRAILING_BYTES unless the cursor used the whole body. */
static inline enum mqtt_error body_end(const struct cur *c)
{
    return c->p == c->end ? MQTT_ERR_NONE : MQTT_ERR_TRAILING_BYTES;
}

static enum mqtt_error packet_id(struct cur *c, uint16_t *id)
{
    enum mqtt_error e = cur_u16(c, id);
    if (e) return e;
    /* Non-zero packet identifiers: 3.1.1 [MQTT-2.3.1-1], 5.0 [MQTT-2.2.1-3]. */
    return *id == 0 ? MQTT_ERR_ZERO_PACKET_ID : MQTT_ERR_NONE;
}

static enum mqtt_error parse_connect(const struct mqtt_parser *p, struct cur *c,
                                     struct mqtt_packet *pkt)
{
    struct mqtt_connect *cn = &pkt->u.connect;
    struct mqtt_bin name;
    uint8_t level, f;
    enum mqtt_error e;

    memset(cn, 0, sizeof *cn);
    if ((e = cur_bin(c, &name)) || (e = cur_u8(c, &level))) return e;
    /* Protocol name "MQTT" [MQTT-3.1.2-1] (3.1: "MQIsdp"), and a level that goes with it;
     * others get CONNACK 0x01 / 0x84 [MQTT-3.1.2-2]. */
    if (name.len == 4 && memcmp(name.ptr, "MQTT", 4) == 0) {
        if (level != MQTT_V311 && level != MQTT_V5) return MQTT_ERR_BAD_PROTOCOL_VERSION;
    } else if (name.len == 6 && memcmp(name.ptr, "MQIsdp", 6) == 0) {
        if (level != MQTT_V31) return MQTT_ERR_BAD_PROTOCOL_VERSION;
    } else {
        return MQTT_ERR_BAD_PROTOCOL_NAME;
    }
    cn->version = level;
    bool v5 = level == MQTT_V5;

    if ((e = cur_u8(c, &f))) return e;
    if (f & 0x01) return MQTT_ERR_CONNECT_RESERVED; /* [MQTT-3.1.2-3] */
    cn->clean_start = (f & 0x02) != 0;
    cn->will_flag = (f & 0x04) != 0;
    cn->will_qos = (f >> 3) & 3;
    cn->will_retain = (f & 0x20) != 0;
    cn->has_password = (f & 0x40) != 0;
    cn->has_username = (f & 0x80) != 0;
    /* Without the will flag, will QoS and will retain are 0: 3.1.1 [MQTT-3.1.2-13]
     * [MQTT-3.1.2-15], 5.0 [MQTT-3.1.2-11] [MQTT-3.1.2-13]. */
    if (!cn->will_flag && (cn->will_qos || cn->will_retain)) return MQTT_ERR_WILL_FLAGS;
    /* Will QoS 3: 3.1.1 [MQTT-3.1.2-14], 5.0 [MQTT-3.1.2-12]. */
    if (cn->will_qos == 3) return MQTT_ERR_WILL_FLAGS;
    /* Before 5.0 a password needs a user name [MQTT-3.1.2-22]. */
    if (!v5 && cn->has_password && !cn->has_username) return MQTT_ERR_PASSWORD_WITHOUT_USER;
    if ((e = cur_u16(c, &cn->keepalive_s))) return e;
    if (v5 && (e = props_parse(c, MQTT_CONNECT, p->role, &pkt->props))) return e;

    /* Payload order: client id, will properties, will topic, will payload, user name,
     * password [MQTT-3.1.3-1]. The client id is a UTF-8 string [MQTT-3.1.3-4]; its length
     * and characters are the server's policy [MQTT-3.1.3-5]. */
    if ((e = cur_str(c, &cn->client_id))) return e;
    if (cn->will_flag) {
        if (v5 && (e = props_parse(c, PROPS_WILL, p->role, &cn->will_props))) return e;
        struct mqtt_bin t;
        if ((e = cur_bin(c, &t))) return e;
        cn->will_topic.ptr = (const char *)t.ptr;
        cn->will_topic.len = t.len;
        /* The will topic is a UTF-8 topic name: 3.1.1 [MQTT-3.1.3-10], 5.0 [MQTT-3.1.3-11]. */
        if ((e = mqtt_topic_name_check(cn->will_topic.ptr, cn->will_topic.len))) return e;
        if ((e = cur_bin(c, &cn->will_payload))) return e;
    }
    /* User name: 3.1.1 [MQTT-3.1.3-11], 5.0 [MQTT-3.1.3-12]. */
    if (cn->has_username && (e = cur_str(c, &cn->username))) return e;
    if (cn->has_password && (e = cur_bin(c, &cn->password))) return e;
    return body_end(c);
}

/* 3.x CONNACK return codes 0..5 as MQTT 5 reason codes. */
static const uint8_t connack_v3_reason[6] = {
    MQTT_RC_SUCCESS,
    MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION,
    MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID,
    MQTT_RC_SERVER_UNAVAILABLE,
    MQTT_RC_BAD_USERNAME_OR_PASSWORD,
    MQTT_RC_NOT_AUTHORIZED,
};

static enum mqtt_error parse_connack(const struct mqtt_parser *p, struct cur *c,
                                     struct mqtt_packet *pkt)
{
    uint8_t f, rc;
    enum mqtt_error e;
    if ((e = cur_u8(c, &f)) || (e = cur_u8(c, &rc))) return e;
    if (f & 0xFE) return MQTT_ERR_CONNACK_FLAGS; /* 3.1.1 and 5.0 [MQTT-3.2.2-1] */
    if (p->version == MQTT_V5) {
        if (!mqtt_reason_allowed(MQTT_CONNACK, rc)) return MQTT_ERR_REASON_INVALID;
        if ((e = props_parse(c, MQTT_CONNACK, p->role, &pkt->props))) return e;
    } else {
        if (rc >= sizeof connack_v3_reason)
            return MQTT_ERR_REASON_INVALID; /* 3.1.1 section 3.2.2.3: 0..5 */
        rc = connack_v3_reason[rc];
    }
    /* Session present is 0 with a failure: 3.1.1 [MQTT-3.2.2-4], 5.0 [MQTT-3.2.2-6]. */
    if ((f & 1) && rc != MQTT_RC_SUCCESS) return MQTT_ERR_CONNACK_FLAGS;
    pkt->u.connack.session_present = f & 1;
    pkt->u.connack.reason = rc;
    return body_end(c);
}

static enum mqtt_error parse_publish(const struct mqtt_parser *p, struct cur *c,
                                     struct mqtt_packet *pkt)
{
    struct mqtt_publish *pub = &pkt->u.publish;
    uint8_t flags = pkt->flags;
    enum mqtt_error e;
    uint16_t tlen;

    pub->qos = (flags >> 1) & 3;
    pub->dup = (flags & 0x08) != 0;
    pub->retain = (flags & 0x01) != 0;
    pub->packet_id = 0;
    if ((e = cur_u16(c, &tlen))) return e;
    if (cur_left(c) < tlen) return MQTT_ERR_TRUNCATED;
    pub->topic.ptr = (const char *)c->p;
    pub->topic.len = tlen;
    c->p += tlen;
    /* A UTF-8 topic name without wildcards [MQTT-3.3.2-1] [MQTT-3.3.2-2]; in 5.0 an empty
     * one is allowed with a topic alias (checked below). */
    if (tlen && (e = mqtt_topic_name_check(pub->topic.ptr, tlen))) return e;
    /* A packet identifier only with QoS 1 or 2: 3.1.1 [MQTT-2.3.1-5], 5.0 [MQTT-2.2.1-2]. */
    if (pub->qos && (e = packet_id(c, &pub->packet_id))) return e;
    if (p->version == MQTT_V5) {
        if ((e = props_parse(c, MQTT_PUBLISH, p->role, &pkt->props))) return e;
        /* An empty topic name needs a topic alias (5.0 section 3.3.2.1). */
        if (!tlen && !(pkt->props.present & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS)))
            return MQTT_ERR_TOPIC_EMPTY;
    } else if (!tlen) {
        return MQTT_ERR_TOPIC_EMPTY; /* [MQTT-4.7.3-1] */
    }
    pub->payload = c->p;
    pub->payload_len = (uint32_t)cur_left(c);
    c->p = c->end;
    return MQTT_ERR_NONE;
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
static enum mqtt_error parse_ack(const struct mqtt_parser *p, struct cur *c,
                                 struct mqtt_packet *pkt)
{
    enum mqtt_error e;
    if ((e = packet_id(c, &pkt->u.ack.packet_id))) return e;
    pkt->u.ack.reason = MQTT_RC_SUCCESS;
    if (p->version == MQTT_V5 && c->p < c->end) {
        /* Reason code and properties may be omitted (5.0 section 3.4.2.1). */
        uint8_t rc = *c->p++;
        if (!mqtt_reason_allowed(pkt->type, rc)) return MQTT_ERR_REASON_INVALID;
        pkt->u.ack.reason = rc;
        if (c->p < c->end && (e = props_parse(c, pkt->type, p->role, &pkt->props))) return e;
    }
    return body_end(c);
}

/* SUBSCRIBE and UNSUBSCRIBE. */
static enum mqtt_error parse_subscribe(const struct mqtt_parser *p, struct cur *c,
                                       struct mqtt_packet *pkt)
{
    enum mqtt_error e;
    if ((e = packet_id(c, &pkt->u.subscribe.packet_id))) return e;
    if (p->version == MQTT_V5 && (e = props_parse(c, pkt->type, p->role, &pkt->props))) return e;
    return topic_list_parse(c, pkt->type == MQTT_SUBSCRIBE, p->version, &pkt->u.subscribe.topics);
}

/* SUBACK and UNSUBACK. */
static enum mqtt_error parse_suback(const struct mqtt_parser *p, struct cur *c,
                                    struct mqtt_packet *pkt)
{
    struct mqtt_suback *sa = &pkt->u.suback;
    bool v5 = p->version == MQTT_V5;
    enum mqtt_error e;
    if ((e = packet_id(c, &sa->packet_id))) return e;
    sa->reasons = NULL;
    sa->count = 0;
    if (pkt->type == MQTT_UNSUBACK && !v5)
        return body_end(c); /* 3.x UNSUBACK is the packet identifier alone */
    if (v5 && (e = props_parse(c, pkt->type, p->role, &pkt->props))) return e;
    if (c->p == c->end)
        return MQTT_ERR_TRUNCATED; /* one reason code per topic filter, and there is one */
    sa->reasons = c->p;
    sa->count = (uint32_t)cur_left(c);
    for (uint32_t i = 0; i < sa->count; i++) {
        uint8_t rc = sa->reasons[i];
        bool ok = v5 ? mqtt_reason_allowed(pkt->type, rc) : (rc <= 2 || rc == 0x80);
        if (!ok) return MQTT_ERR_REASON_INVALID; /* 3.1.1 [MQTT-3.9.3-2] */
    }
    c->p = c->end;
    return MQTT_ERR_NONE;
}

/* DISCONNECT and AUTH. */
static enum mqtt_error parse_disconnect(const struct mqtt_parser *p, struct cur *c,
                                        struct mqtt_packet *pkt)
{
    enum mqtt_error e;
    pkt->u.disconnect.reason = MQTT_RC_SUCCESS;
    if (p->version == MQTT_V5 && c->p < c->end) {
        /* Reason code and properties may be omitted (5.0 sections 3.14.2.1, 3.15.2.1). */
        uint8_t rc = *c->p++;
        if (!mqtt_reason_allowed(pkt->type, rc)) return MQTT_ERR_REASON_INVALID;
        pkt->u.disconnect.reason = rc;
        if (c->p < c->end && (e = props_parse(c, pkt->type, p->role, &pkt->props))) return e;
    }
    return body_end(c); /* 3.x DISCONNECT has no body */
}

static enum mqtt_parse_result parse_bad(struct mqtt_packet *pkt, enum mqtt_error e)
{
    pkt->error = e;
    pkt->reason = mqtt_error_reason(e);
    return MQTT_PARSE_BAD;
}

enum mqtt_parse_result mqtt_parse(const struct mqtt_parser *p, const uint8_t *buf, size_t len,
                                  struct mqtt_packet *pkt, size_t *need_out)
{
    enum mqtt_error e;
    uint32_t rem;
    int n;

    if (need_out) *need_out = 0;
    if (len == 0) return MQTT_PARSE_MORE;
    uint8_t type = buf[0] >> 4, flags = buf[0] & 0x0F;
    pkt->type = type;
    pkt->flags = flags;
    pkt->remaining_len = 0;
    pkt->wire_len = 0;
    if ((e = header_check(p, type, flags))) return parse_bad(pkt, e);
    n = mqtt_varint_decode(buf + 1, len - 1, &rem);
    if (n < 0) return parse_bad(pkt, MQTT_ERR_BAD_VARINT); /* [MQTT-1.5.5-1] */
    if (n == 0) return MQTT_PARSE_MORE;
    /* The size limit holds from the fixed header, before the body arrives. */
    size_t total = 1 + (size_t)n + rem;
    if (p->max_packet_size && total > p->max_packet_size) return parse_bad(pkt, MQTT_ERR_TOO_LARGE);
    if (len < total) {
        if (need_out) *need_out = total;
        return MQTT_PARSE_MORE;
    }
    pkt->remaining_len = rem;
    pkt->wire_len = (uint32_t)total;
    pkt->error = MQTT_ERR_NONE;
    pkt->reason = MQTT_RC_SUCCESS;
    props_clear(&pkt->props);

    struct cur c = {buf + 1 + n, buf + total};
    switch (type) {
    case MQTT_PUBLISH:
        e = parse_publish(p, &c, pkt);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        e = parse_ack(p, &c, pkt);
        break;
    case MQTT_CONNECT:
        e = parse_connect(p, &c, pkt);
        break;
    case MQTT_CONNACK:
        e = parse_connack(p, &c, pkt);
        break;
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        e = parse_subscribe(p, &c, pkt);
        break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        e = parse_suback(p, &c, pkt);
        break;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        e = parse_disconnect(p, &c, pkt);
        break;
    default: /* PINGREQ, PINGRESP: no body */
        e = body_end(&c);
        break;
    }
    if (e) return parse_bad(pkt, e);
    return MQTT_PARSE_DONE;
}
