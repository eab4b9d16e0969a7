/* MQTT 5 properties: the per-identifier table (type, typed field, packets allowed on), block
 * parsing with validation, sizing and writing, and the raw iterator mqtt_prop_next(). */
#include <stddef.h>

#include "codec.h"

enum prop_type {
    PT_NONE = 0,
    PT_BYTE,
    PT_U16,
    PT_U32,
    PT_VARINT,
    PT_STR,
    PT_BIN,
    PT_PAIR,
};

struct prop_info {
    uint8_t type; /* enum prop_type */
    uint16_t off; /* offset of the typed field in struct mqtt_props */
};

#define PI(t, field)                                                                               \
    {                                                                                              \
        t, (uint16_t)offsetof(struct mqtt_props, field)                                            \
    }

/* MQTT 5.0 section 2.2.2.2, Table 2-4. */
static const struct prop_info prop_info[64] = {
    [MQTT_PROP_PAYLOAD_FORMAT] = PI(PT_BYTE, payload_format),
    [MQTT_PROP_MESSAGE_EXPIRY] = PI(PT_U32, message_expiry_s),
    [MQTT_PROP_CONTENT_TYPE] = PI(PT_STR, content_type),
    [MQTT_PROP_RESPONSE_TOPIC] = PI(PT_STR, response_topic),
    [MQTT_PROP_CORRELATION_DATA] = PI(PT_BIN, correlation_data),
    [MQTT_PROP_SUBSCRIPTION_ID] = PI(PT_VARINT, sub_id),
    [MQTT_PROP_SESSION_EXPIRY] = PI(PT_U32, session_expiry_s),
    [MQTT_PROP_ASSIGNED_CLIENT_ID] = PI(PT_STR, assigned_client_id),
    [MQTT_PROP_SERVER_KEEP_ALIVE] = PI(PT_U16, server_keep_alive_s),
    [MQTT_PROP_AUTH_METHOD] = PI(PT_STR, auth_method),
    [MQTT_PROP_AUTH_DATA] = PI(PT_BIN, auth_data),
    [MQTT_PROP_REQUEST_PROBLEM_INFO] = PI(PT_BYTE, request_problem_info),
    [MQTT_PROP_WILL_DELAY] = PI(PT_U32, will_delay_s),
    [MQTT_PROP_REQUEST_RESPONSE_INFO] = PI(PT_BYTE, request_response_info),
    [MQTT_PROP_RESPONSE_INFO] = PI(PT_STR, response_info),
    [MQTT_PROP_SERVER_REFERENCE] = PI(PT_STR, server_reference),
    [MQTT_PROP_REASON_STRING] = PI(PT_STR, reason_string),
    [MQTT_PROP_RECEIVE_MAXIMUM] = PI(PT_U16, receive_maximum),
    [MQTT_PROP_TOPIC_ALIAS_MAXIMUM] = PI(PT_U16, topic_alias_maximum),
    [MQTT_PROP_TOPIC_ALIAS] = PI(PT_U16, topic_alias),
    [MQTT_PROP_MAXIMUM_QOS] = PI(PT_BYTE, maximum_qos),
    [MQTT_PROP_RETAIN_AVAILABLE] = PI(PT_BYTE, retain_available),
    [MQTT_PROP_USER_PROPERTY] = {PT_PAIR, 0},
    [MQTT_PROP_MAXIMUM_PACKET_SIZE] = PI(PT_U32, maximum_packet_size),
    [MQTT_PROP_WILDCARD_SUB_AVAILABLE] = PI(PT_BYTE, wildcard_sub_available),
    [MQTT_PROP_SUB_ID_AVAILABLE] = PI(PT_BYTE, sub_id_available),
    [MQTT_PROP_SHARED_SUB_AVAILABLE] = PI(PT_BYTE, shared_sub_available),
};

#define B(id) MQTT_PROP_BIT(MQTT_PROP_##id)

/* Properties that may appear at most once: all but user properties and subscription
 * identifiers (which may repeat only in a PUBLISH from the server). */
#define SINGLE_MASK                                                                                \
    (B(PAYLOAD_FORMAT) | B(MESSAGE_EXPIRY) | B(CONTENT_TYPE) | B(RESPONSE_TOPIC) |                 \
     B(CORRELATION_DATA) | B(SESSION_EXPIRY) | B(ASSIGNED_CLIENT_ID) | B(SERVER_KEEP_ALIVE) |      \
     B(AUTH_METHOD) | B(AUTH_DATA) | B(REQUEST_PROBLEM_INFO) | B(WILL_DELAY) |                     \
     B(REQUEST_RESPONSE_INFO) | B(RESPONSE_INFO) | B(SERVER_REFERENCE) | B(REASON_STRING) |        \
     B(RECEIVE_MAXIMUM) | B(TOPIC_ALIAS_MAXIMUM) | B(TOPIC_ALIAS) | B(MAXIMUM_QOS) |               \
     B(RETAIN_AVAILABLE) | B(MAXIMUM_PACKET_SIZE) | B(WILDCARD_SUB_AVAILABLE) |                    \
     B(SUB_ID_AVAILABLE) | B(SHARED_SUB_AVAILABLE))

/* Byte properties whose value is 0 or 1. */
#define FLAG_MASK                                                                                  \
    (B(PAYLOAD_FORMAT) | B(REQUEST_PROBLEM_INFO) | B(REQUEST_RESPONSE_INFO) | B(MAXIMUM_QOS) |     \
     B(RETAIN_AVAILABLE) | B(WILDCARD_SUB_AVAILABLE) | B(SUB_ID_AVAILABLE) |                       \
     B(SHARED_SUB_AVAILABLE))

#define ACK_PROPS (B(REASON_STRING) | B(USER_PROPERTY))

/* Which properties each packet (index: packet type; 0: the will of a CONNECT) may carry. */
static const uint64_t prop_allowed[16] = {
    [PROPS_WILL] = B(PAYLOAD_FORMAT) | B(MESSAGE_EXPIRY) | B(CONTENT_TYPE) | B(RESPONSE_TOPIC) |
                   B(CORRELATION_DATA) | B(WILL_DELAY) | B(USER_PROPERTY),
    [MQTT_CONNECT] = B(SESSION_EXPIRY) | B(AUTH_METHOD) | B(AUTH_DATA) | B(REQUEST_PROBLEM_INFO) |
                     B(REQUEST_RESPONSE_INFO) | B(RECEIVE_MAXIMUM) | B(TOPIC_ALIAS_MAXIMUM) |
                     B(USER_PROPERTY) | B(MAXIMUM_PACKET_SIZE),
    [MQTT_CONNACK] = B(SESSION_EXPIRY) | B(ASSIGNED_CLIENT_ID) | B(SERVER_KEEP_ALIVE) |
                     B(AUTH_METHOD) | B(AUTH_DATA) | B(RESPONSE_INFO) | B(SERVER_REFERENCE) |
                     B(REASON_STRING) | B(RECEIVE_MAXIMUM) | B(TOPIC_ALIAS_MAXIMUM) |
                     B(MAXIMUM_QOS) | B(RETAIN_AVAILABLE) | B(USER_PROPERTY) |
                     B(MAXIMUM_PACKET_SIZE) | B(WILDCARD_SUB_AVAILABLE) | B(SUB_ID_AVAILABLE) |
                     B(SHARED_SUB_AVAILABLE),
    [MQTT_PUBLISH] = B(PAYLOAD_FORMAT) | B(MESSAGE_EXPIRY) | B(CONTENT_TYPE) | B(RESPONSE_TOPIC) |
                     B(CORRELATION_DATA) | B(SUBSCRIPTION_ID) | B(TOPIC_ALIAS) | B(USER_PROPERTY),
    [MQTT_PUBACK] = ACK_PROPS,
    [MQTT_PUBREC] = ACK_PROPS,
    [MQTT_PUBREL] = ACK_PROPS,
    [MQTT_PUBCOMP] = ACK_PROPS,
    [MQTT_SUBSCRIBE] = B(SUBSCRIPTION_ID) | B(USER_PROPERTY),
    [MQTT_SUBACK] = ACK_PROPS,
    [MQTT_UNSUBSCRIBE] = B(USER_PROPERTY),
    [MQTT_UNSUBACK] = ACK_PROPS,
    [MQTT_DISCONNECT] =
        B(SESSION_EXPIRY) | B(SERVER_REFERENCE) | B(REASON_STRING) | B(USER_PROPERTY),
    [MQTT_AUTH] = B(AUTH_METHOD) | B(AUTH_DATA) | B(REASON_STRING) | B(USER_PROPERTY),
};

void props_clear(struct mqtt_props *props)
{
    /* The typed fields are left alone: they are read only under their `present` bit, and
     * zeroing the whole struct would be the largest cost of parsing a small PUBLISH. */
    props->present = 0;
    props->payload_format = 0;
    props->topic_alias = 0;
    props->sub_id = 0;
    props->sub_id_count = 0;
    props->sub_ids = NULL;
    props->user_count = 0;
    props->user = NULL;
    props->raw = NULL;
    props->raw_len = 0;
}

/* Checks the value of a single-valued integer property (MQTT 5.0 section 3, per property). */
static enum mqtt_error prop_int_check(uint8_t id, uint32_t v)
{
    switch (id) {
    case MQTT_PROP_PAYLOAD_FORMAT:        /* 0 unspecified bytes, 1 UTF-8 (3.3.2.3.2) */
    case MQTT_PROP_REQUEST_PROBLEM_INFO:  /* 0 or 1 */
    case MQTT_PROP_REQUEST_RESPONSE_INFO: /* 0 or 1 */
    case MQTT_PROP_MAXIMUM_QOS:           /* 0 or 1 */
    case MQTT_PROP_RETAIN_AVAILABLE:      /* 0 or 1 */
    case MQTT_PROP_WILDCARD_SUB_AVAILABLE:
    case MQTT_PROP_SUB_ID_AVAILABLE:
    case MQTT_PROP_SHARED_SUB_AVAILABLE:
        return v > 1 ? MQTT_ERR_PROP_VALUE : MQTT_ERR_NONE;
    case MQTT_PROP_RECEIVE_MAXIMUM:     /* a value of 0 is a Protocol Error */
    case MQTT_PROP_MAXIMUM_PACKET_SIZE: /* a value of 0 is a Protocol Error */
    case MQTT_PROP_TOPIC_ALIAS:         /* [MQTT-3.3.2-8] */
    case MQTT_PROP_SUBSCRIPTION_ID:     /* 1 to 268,435,455; 0 is a Protocol Error */
        return v == 0 ? MQTT_ERR_PROP_VALUE : MQTT_ERR_NONE;
    default:
        return MQTT_ERR_NONE;
    }
}

enum mqtt_error props_parse(struct cur *c, unsigned ctx, uint8_t role, struct mqtt_props *out)
{
    uint32_t len;
    enum mqtt_error e;
    uint64_t seen = 0;

    if ((e = cur_varint(c, &len))) return e;
    if (len > cur_left(c)) return MQTT_ERR_TRUNCATED;
    out->raw = c->p;
    out->raw_len = len;
    struct cur b = {c->p, c->p + len};
    c->p += len;
    if (len == 0) return MQTT_ERR_NONE;

    while (b.p < b.end) {
        /* The identifier is a variable byte integer; every defined one fits in one byte. */
        uint8_t id = *b.p++;
        if (id >= 64 || prop_info[id].type == PT_NONE) return MQTT_ERR_PROP_UNKNOWN;
        if (!(prop_allowed[ctx] & MQTT_PROP_BIT(id))) return MQTT_ERR_PROP_NOT_ALLOWED;
        /* A server never sends Session Expiry Interval in DISCONNECT [MQTT-3.14.2-2]. */
        if (id == MQTT_PROP_SESSION_EXPIRY && ctx == MQTT_DISCONNECT && role == MQTT_ROLE_CLIENT)
            return MQTT_ERR_PROP_NOT_ALLOWED;
        const struct prop_info *pi = &prop_info[id];
        char *field = (char *)out + pi->off;
        uint64_t bit = MQTT_PROP_BIT(id);
        if (bit & SINGLE_MASK) {
            if (seen & bit)
                return MQTT_ERR_PROP_DUPLICATE; /* "more than once is a Protocol Error" */
            seen |= bit;
        }
        switch (pi->type) {
        case PT_BYTE: {
            uint8_t v;
            if ((e = cur_u8(&b, &v)) || (e = prop_int_check(id, v))) return e;
            *(uint8_t *)field = v;
            break;
        }
        case PT_U16: {
            uint16_t v;
            if ((e = cur_u16(&b, &v)) || (e = prop_int_check(id, v))) return e;
            *(uint16_t *)field = v;
            break;
        }
        case PT_U32: {
            uint32_t v;
            if ((e = cur_u32(&b, &v)) || (e = prop_int_check(id, v))) return e;
            *(uint32_t *)field = v;
            break;
        }
        case PT_VARINT: { /* the subscription identifier */
            uint32_t v;
            if ((e = cur_varint(&b, &v)) || (e = prop_int_check(id, v))) return e;
            if (ctx == MQTT_PUBLISH && role == MQTT_ROLE_SERVER)
                return MQTT_ERR_PROP_NOT_ALLOWED; /* [MQTT-3.3.4-6] */
            if (ctx == MQTT_SUBSCRIBE && out->sub_id_count)
                return MQTT_ERR_PROP_DUPLICATE; /* once in SUBSCRIBE (5.0 3.8.2.1.2) */
            if (out->sub_id_count++ == 0) out->sub_id = v;
            break;
        }
        case PT_STR: {
            struct mqtt_str s;
            if ((e = cur_str(&b, &s))) return e; /* [MQTT-1.5.4-1] [MQTT-1.5.4-2] */
            if (id == MQTT_PROP_RESPONSE_TOPIC && (e = mqtt_topic_name_check(s.ptr, s.len)))
                return e; /* [MQTT-3.3.2-13] [MQTT-3.3.2-14] */
            *(struct mqtt_str *)field = s;
            break;
        }
        case PT_BIN: {
            struct mqtt_bin v;
            if ((e = cur_bin(&b, &v))) return e;
            *(struct mqtt_bin *)field = v;
            break;
        }
        case PT_PAIR: { /* both strings are UTF-8 [MQTT-1.5.7-1] */
            struct mqtt_str k, v;
            if ((e = cur_str(&b, &k)) || (e = cur_str(&b, &v))) return e;
            out->user_count++;
            break;
        }
        }
    }
    /* Authentication Data without an Authentication Method is a Protocol Error (3.1.2.11.10,
     * 3.2.2.3.18, 3.15.2.2.3). */
    if ((seen & B(AUTH_DATA)) && !(seen & B(AUTH_METHOD))) return MQTT_ERR_PROP_VALUE;
    out->present = seen;
    return MQTT_ERR_NONE;
}

bool props_encodable(const struct mqtt_props *p, unsigned ctx)
{
    uint64_t single = p->present & SINGLE_MASK;
    uint64_t allowed = prop_allowed[ctx];
    if (single & ~allowed) return false; /* 2.2.2.2: only the properties of the packet */
    if (p->sub_id_count && !(allowed & B(SUBSCRIPTION_ID))) return false;
    if (p->user_count && !(allowed & B(USER_PROPERTY))) return false;
    if (p->sub_id_count > 1 && ctx != MQTT_PUBLISH) return false; /* once in SUBSCRIBE */
    if ((single & B(AUTH_DATA)) && !(single & B(AUTH_METHOD))) return false;
    if (p->sub_id_count) {
        /* 1 to 268,435,455 (3.3.2.3.8, 3.8.2.1.2). */
        if (p->sub_ids) {
            for (uint32_t i = 0; i < p->sub_id_count; i++)
                if (p->sub_ids[i] == 0 || p->sub_ids[i] > MQTT_VARINT_MAX) return false;
        } else if (p->sub_id_count == 1 && (p->sub_id == 0 || p->sub_id > MQTT_VARINT_MAX)) {
            return false;
        }
    }
    /* Integer values in range (the checks of prop_int_check(), field by field): byte flags
     * 0 or 1, and no 0 for Receive Maximum, Maximum Packet Size and Topic Alias
     * [MQTT-3.3.2-8]. */
    if (single & FLAG_MASK) {
        if ((single & B(PAYLOAD_FORMAT)) && p->payload_format > 1) return false;
        if ((single & B(REQUEST_PROBLEM_INFO)) && p->request_problem_info > 1) return false;
        if ((single & B(REQUEST_RESPONSE_INFO)) && p->request_response_info > 1) return false;
        if ((single & B(MAXIMUM_QOS)) && p->maximum_qos > 1) return false;
        if ((single & B(RETAIN_AVAILABLE)) && p->retain_available > 1) return false;
        if ((single & B(WILDCARD_SUB_AVAILABLE)) && p->wildcard_sub_available > 1) return false;
        if ((single & B(SUB_ID_AVAILABLE)) && p->sub_id_available > 1) return false;
        if ((single & B(SHARED_SUB_AVAILABLE)) && p->shared_sub_available > 1) return false;
    }
    if ((single & B(RECEIVE_MAXIMUM)) && p->receive_maximum == 0) return false;
    if ((single & B(MAXIMUM_PACKET_SIZE)) && p->maximum_packet_size == 0) return false;
    if ((single & B(TOPIC_ALIAS)) && p->topic_alias == 0) return false;
    return true;
}

int mqtt_prop_next(const uint8_t **pos, const uint8_t *end, struct mqtt_prop *out)
{
    struct cur c = {*pos, end};
    uint8_t id;
    if (c.p >= c.end) return 0;
    id = *c.p++;
    if (id >= 64 || prop_info[id].type == PT_NONE) return -1;
    out->id = id;
    switch (prop_info[id].type) {
    case PT_BYTE: {
        uint8_t v;
        if (cur_u8(&c, &v)) return -1;
        out->v.u32 = v;
        break;
    }
    case PT_U16: {
        uint16_t v;
        if (cur_u16(&c, &v)) return -1;
        out->v.u32 = v;
        break;
    }
    case PT_U32:
        if (cur_u32(&c, &out->v.u32)) return -1;
        break;
    case PT_VARINT:
        if (cur_varint(&c, &out->v.u32)) return -1;
        break;
    case PT_STR:
    case PT_BIN: {
        struct mqtt_bin b;
        if (cur_bin(&c, &b)) return -1;
        if (prop_info[id].type == PT_STR) {
            out->v.str.ptr = (const char *)b.ptr;
            out->v.str.len = b.len;
        } else {
            out->v.bin = b;
        }
        break;
    }
    case PT_PAIR: {
        struct mqtt_bin k, v;
        if (cur_bin(&c, &k) || cur_bin(&c, &v)) return -1;
        out->v.pair.key.ptr = (const char *)k.ptr;
        out->v.pair.key.len = k.len;
        out->v.pair.value.ptr = (const char *)v.ptr;
        out->v.pair.value.len = v.len;
        break;
    }
    }
    *pos = c.p;
    return 1;
}

/* ---- Encoding ---- */

/* Length of the encoded property at p (identifier included), or 0 if it is malformed. */
static size_t prop_len(const uint8_t *p, const uint8_t *end)
{
    size_t left = (size_t)(end - p), n;
    uint32_t v;
    int k;
    if (p[0] >= 64) return 0;
    switch (prop_info[p[0]].type) {
    case PT_BYTE:
        n = 2;
        break;
    case PT_U16:
        n = 3;
        break;
    case PT_U32:
        n = 5;
        break;
    case PT_VARINT:
        k = mqtt_varint_decode(p + 1, left - 1, &v);
        if (k <= 0) return 0;
        n = 1 + (size_t)k;
        break;
    case PT_STR:
    case PT_BIN:
        if (left < 3) return 0;
        n = 3 + (size_t)(p[1] << 8 | p[2]);
        break;
    case PT_PAIR:
        if (left < 3) return 0;
        n = 3 + (size_t)(p[1] << 8 | p[2]);
        if (left < n + 2) return 0;
        n += 2 + (size_t)(p[n] << 8 | p[n + 1]);
        break;
    default:
        return 0;
    }
    return n <= left ? n : 0;
}

/* Sum of the encoded sizes of the properties with identifier id inside the raw block. */
static size_t raw_size_of(const struct mqtt_props *props, uint8_t id)
{
    const uint8_t *pos = props->raw, *end = props->raw + props->raw_len;
    size_t sum = 0, n;
    if (!props->raw) return 0;
    for (; pos < end && (n = prop_len(pos, end)) != 0; pos += n)
        if (pos[0] == id) sum += n;
    return sum;
}

/* Copies the properties with identifier id from the raw block, in order. */
static uint8_t *raw_write_of(const struct mqtt_props *props, uint8_t id, uint8_t *o)
{
    const uint8_t *pos = props->raw, *end = props->raw + props->raw_len;
    size_t n;
    if (!props->raw) return o;
    for (; pos < end && (n = prop_len(pos, end)) != 0; pos += n)
        if (pos[0] == id) o = put_bytes(o, pos, n);
    return o;
}

size_t mqtt_props_size(const struct mqtt_props *p)
{
    size_t n = 0;
    uint64_t bits = p->present & SINGLE_MASK;
    while (bits) {
        unsigned id = (unsigned)__builtin_ctzll(bits);
        bits &= bits - 1;
        const char *field = (const char *)p + prop_info[id].off;
        switch (prop_info[id].type) {
        case PT_BYTE:
            n += 2;
            break;
        case PT_U16:
            n += 3;
            break;
        case PT_U32:
            n += 5;
            break;
        case PT_STR:
            n += 3 + (size_t)((const struct mqtt_str *)field)->len;
            break;
        case PT_BIN:
            n += 3 + (size_t)((const struct mqtt_bin *)field)->len;
            break;
        }
    }
    if (p->sub_id_count > 0) {
        if (p->sub_ids) {
            for (uint32_t i = 0; i < p->sub_id_count; i++)
                n += 1 + mqtt_varint_size(p->sub_ids[i]);
        } else if (p->sub_id_count == 1) {
            n += 1 + mqtt_varint_size(p->sub_id);
        } else {
            n += raw_size_of(p, MQTT_PROP_SUBSCRIPTION_ID);
        }
    }
    if (p->user_count > 0) {
        if (p->user) {
            for (uint32_t i = 0; i < p->user_count; i++)
                n += 5 + (size_t)p->user[i].key.len + p->user[i].value.len;
        } else {
            n += raw_size_of(p, MQTT_PROP_USER_PROPERTY);
        }
    }
    return n;
}

uint8_t *props_write(const struct mqtt_props *p, uint8_t *o)
{
    uint64_t bits = p->present & SINGLE_MASK;
    if (p->sub_id_count > 0) bits |= B(SUBSCRIPTION_ID);
    while (bits) {
        uint8_t id = (uint8_t)__builtin_ctzll(bits);
        bits &= bits - 1;
        const char *field = (const char *)p + prop_info[id].off;
        if (id == MQTT_PROP_SUBSCRIPTION_ID) {
            if (p->sub_ids) {
                for (uint32_t i = 0; i < p->sub_id_count; i++) {
                    *o++ = id;
                    o += mqtt_varint_encode(p->sub_ids[i], o);
                }
            } else if (p->sub_id_count == 1) {
                *o++ = id;
                o += mqtt_varint_encode(p->sub_id, o);
            } else {
                o = raw_write_of(p, id, o);
            }
            continue;
        }
        *o++ = id;
        switch (prop_info[id].type) {
        case PT_BYTE:
            *o++ = *(const uint8_t *)field;
            break;
        case PT_U16:
            o = put_u16(o, *(const uint16_t *)field);
            break;
        case PT_U32:
            o = put_u32(o, *(const uint32_t *)field);
            break;
        case PT_STR: {
            const struct mqtt_str *s = (const struct mqtt_str *)field;
            o = put_str(o, s->ptr, s->len);
            break;
        }
        case PT_BIN: {
            const struct mqtt_bin *s = (const struct mqtt_bin *)field;
            o = put_str(o, s->ptr, s->len);
            break;
        }
        }
    }
    /* User properties last, in order. */
    if (p->user_count > 0) {
        if (p->user) {
            for (uint32_t i = 0; i < p->user_count; i++) {
                const struct mqtt_user_prop *u = &p->user[i];
                *o++ = MQTT_PROP_USER_PROPERTY;
                o = put_str(o, u->key.ptr, u->key.len);
                o = put_str(o, u->value.ptr, u->value.len);
            }
        } else {
            o = raw_write_of(p, MQTT_PROP_USER_PROPERTY, o);
        }
    }
    return o;
}
