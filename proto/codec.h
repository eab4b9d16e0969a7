/* Private helpers shared by the codec's files: a bounds-checked read cursor, big-endian writes,
 * and the property and topic routines the packet decoders and encoders call. */
#ifndef STARLING_PROTO_CODEC_H
#define STARLING_PROTO_CODEC_H

#include "proto.h"

/* A read cursor over [p, end): every read checks what remains and fails instead of overrunning. */
struct cur {
    const uint8_t *p;
    const uint8_t *end;
};

static inline size_t cur_left(const struct cur *c)
{
    return (size_t)(c->end - c->p);
}

static inline enum mqtt_error cur_u8(struct cur *c, uint8_t *v)
{
    if (c->p >= c->end) return MQTT_ERR_TRUNCATED;
    *v = *c->p++;
    return MQTT_ERR_NONE;
}

static inline enum mqtt_error cur_u16(struct cur *c, uint16_t *v)
{
    if (cur_left(c) < 2) return MQTT_ERR_TRUNCATED;
    *v = (uint16_t)((c->p[0] << 8) | c->p[1]);
    c->p += 2;
    return MQTT_ERR_NONE;
}

static inline enum mqtt_error cur_u32(struct cur *c, uint32_t *v)
{
    if (cur_left(c) < 4) return MQTT_ERR_TRUNCATED;
    *v = ((uint32_t)c->p[0] << 24) | ((uint32_t)c->p[1] << 16) | ((uint32_t)c->p[2] << 8) | c->p[3];
    c->p += 4;
    return MQTT_ERR_NONE;
}

/* A variable byte integer inside a packet body: running out of bytes is truncation, five
 * bytes or an overlong form is malformed [MQTT-1.5.5-1]. */
static inline enum mqtt_error cur_varint(struct cur *c, uint32_t *v)
{
    int n = mqtt_varint_decode(c->p, cur_left(c), v);
    if (n < 0) return MQTT_ERR_BAD_VARINT;
    if (n == 0) return MQTT_ERR_TRUNCATED;
    c->p += n;
    return MQTT_ERR_NONE;
}

/* A two-byte length followed by that many bytes (binary data, or a string unchecked). */
static inline enum mqtt_error cur_bin(struct cur *c, struct mqtt_bin *b)
{
    uint16_t n;
    if (cur_left(c) < 2) return MQTT_ERR_TRUNCATED;
    n = (uint16_t)((c->p[0] << 8) | c->p[1]);
    if (cur_left(c) - 2 < n) return MQTT_ERR_TRUNCATED;
    b->ptr = c->p + 2;
    b->len = n;
    c->p += 2 + (size_t)n;
    return MQTT_ERR_NONE;
}

/* A UTF-8 encoded string, checked [MQTT-1.5.4-1] [MQTT-1.5.4-2]. */
static inline enum mqtt_error cur_str(struct cur *c, struct mqtt_str *s)
{
    struct mqtt_bin b;
    enum mqtt_error e = cur_bin(c, &b);
    if (e) return e;
    s->ptr = (const char *)b.ptr;
    s->len = b.len;
    return mqtt_utf8_check(s->ptr, s->len);
}

static inline uint8_t *put_u16(uint8_t *o, uint16_t v)
{
    o[0] = (uint8_t)(v >> 8);
    o[1] = (uint8_t)v;
    return o + 2;
}

static inline uint8_t *put_u32(uint8_t *o, uint32_t v)
{
    o[0] = (uint8_t)(v >> 24);
    o[1] = (uint8_t)(v >> 16);
    o[2] = (uint8_t)(v >> 8);
    o[3] = (uint8_t)v;
    return o + 4;
}

static inline uint8_t *put_bytes(uint8_t *o, const void *p, size_t n)
{
    if (n) memcpy(o, p, n);
    return o + n;
}

static inline uint8_t *put_str(uint8_t *o, const void *p, uint16_t n)
{
    o = put_u16(o, n);
    return put_bytes(o, p, n);
}

/* Property contexts: the packet type, or PROPS_WILL for a CONNECT's will properties. */
#define PROPS_WILL 0

/* Empties props: no property present, no counts, no raw block. Typed fields other than
 * payload_format and topic_alias keep stale values; `present` says which are meaningful. */
void props_clear(struct mqtt_props *props);

/* Reads a property block (its variable byte length, then the properties) for context ctx of
 * the given parser role, validating every property, into *out (which props_clear() emptied). */
enum mqtt_error props_parse(struct cur *c, unsigned ctx, uint8_t role, struct mqtt_props *out);

/* Writes the properties of props (not the length prefix) whose total size is mqtt_props_size(). */
uint8_t *props_write(const struct mqtt_props *props, uint8_t *out);

/* Whether props may be written on a packet of context ctx: every property allowed there, every
 * integer value in range, at most one Subscription Identifier outside PUBLISH, Authentication
 * Data only with an Authentication Method. The encoders refuse a packet when it is false. */
bool props_encodable(const struct mqtt_props *props, unsigned ctx);

/* Topic checks used by the decoders. */
enum mqtt_error topic_list_parse(struct cur *c, bool with_opts, uint8_t version,
                                 struct mqtt_topic_list *out);

#endif
