/* UTF-8 validation, topic name and topic filter checks, $share parsing, filter matching, and
 * the topic lists of SUBSCRIBE / UNSUBSCRIBE. */
#include "codec.h"

/* Bytes that stop the ASCII fast path: NUL, '#', '+', and every byte >= 0x80. */
static const uint8_t topic_special[256] = {
    [0] = 1,    ['#'] = 1,  ['+'] = 1,  [0x80] = 1, [0x81] = 1, [0x82] = 1, [0x83] = 1, [0x84] = 1,
    [0x85] = 1, [0x86] = 1, [0x87] = 1, [0x88] = 1, [0x89] = 1, [0x8A] = 1, [0x8B] = 1, [0x8C] = 1,
    [0x8D] = 1, [0x8E] = 1, [0x8F] = 1, [0x90] = 1, [0x91] = 1, [0x92] = 1, [0x93] = 1, [0x94] = 1,
    [0x95] = 1, [0x96] = 1, [0x97] = 1, [0x98] = 1, [0x99] = 1, [0x9A] = 1, [0x9B] = 1, [0x9C] = 1,
    [0x9D] = 1, [0x9E] = 1, [0x9F] = 1, [0xA0] = 1, [0xA1] = 1, [0xA2] = 1, [0xA3] = 1, [0xA4] = 1,
    [0xA5] = 1, [0xA6] = 1, [0xA7] = 1, [0xA8] = 1, [0xA9] = 1, [0xAA] = 1, [0xAB] = 1, [0xAC] = 1,
    [0xAD] = 1, [0xAE] = 1, [0xAF] = 1, [0xB0] = 1, [0xB1] = 1, [0xB2] = 1, [0xB3] = 1, [0xB4] = 1,
    [0xB5] = 1, [0xB6] = 1, [0xB7] = 1, [0xB8] = 1, [0xB9] = 1, [0xBA] = 1, [0xBB] = 1, [0xBC] = 1,
    [0xBD] = 1, [0xBE] = 1, [0xBF] = 1, [0xC0] = 1, [0xC1] = 1, [0xC2] = 1, [0xC3] = 1, [0xC4] = 1,
    [0xC5] = 1, [0xC6] = 1, [0xC7] = 1, [0xC8] = 1, [0xC9] = 1, [0xCA] = 1, [0xCB] = 1, [0xCC] = 1,
    [0xCD] = 1, [0xCE] = 1, [0xCF] = 1, [0xD0] = 1, [0xD1] = 1, [0xD2] = 1, [0xD3] = 1, [0xD4] = 1,
    [0xD5] = 1, [0xD6] = 1, [0xD7] = 1, [0xD8] = 1, [0xD9] = 1, [0xDA] = 1, [0xDB] = 1, [0xDC] = 1,
    [0xDD] = 1, [0xDE] = 1, [0xDF] = 1, [0xE0] = 1, [0xE1] = 1, [0xE2] = 1, [0xE3] = 1, [0xE4] = 1,
    [0xE5] = 1, [0xE6] = 1, [0xE7] = 1, [0xE8] = 1, [0xE9] = 1, [0xEA] = 1, [0xEB] = 1, [0xEC] = 1,
    [0xED] = 1, [0xEE] = 1, [0xEF] = 1, [0xF0] = 1, [0xF1] = 1, [0xF2] = 1, [0xF3] = 1, [0xF4] = 1,
    [0xF5] = 1, [0xF6] = 1, [0xF7] = 1, [0xF8] = 1, [0xF9] = 1, [0xFA] = 1, [0xFB] = 1, [0xFC] = 1,
    [0xFD] = 1, [0xFE] = 1, [0xFF] = 1,
};

/* Length of the well-formed UTF-8 sequence starting at s[0] (a byte >= 0x80), or 0 if it is
 * ill-formed: RFC 3629's table, which excludes overlong forms, the surrogates U+D800..U+DFFF
 * and anything above U+10FFFF [MQTT-1.5.4-1]. */
static size_t utf8_seq(const uint8_t *s, size_t left)
{
    uint8_t c = s[0];
    uint8_t lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong below U+0800 */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else
        return 0; /* continuation byte, C0/C1 overlong lead, or F5..FF */
    if (left < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return n;
}

enum mqtt_error mqtt_utf8_check(const char *str, size_t len)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c >= 0x01 && c < 0x80) {
            i++;
            continue;
        }
        if (c == 0) return MQTT_ERR_UTF8_NULL; /* [MQTT-1.5.4-2] */
        size_t n = utf8_seq(s + i, len - i);
        if (!n) return MQTT_ERR_BAD_UTF8; /* [MQTT-1.5.4-1] */
        i += n;
    }
    return MQTT_ERR_NONE;
}

bool mqtt_utf8_has_controls(const char *str, size_t len)
{
    const uint8_t *s = (const uint8_t *)str;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        if (c < 0x20 || c == 0x7F) return true; /* U+0000..U+001F, U+007F */
        if (c == 0xC2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9F)
            return true; /* U+0080..U+009F */
    }
    return false;
}

enum mqtt_error mqtt_topic_name_check(const char *str, size_t len)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    if (len == 0) return MQTT_ERR_TOPIC_EMPTY; /* [MQTT-4.7.3-1] */
    for (;;) {
        while (i < len && !topic_special[s[i]])
            i++;
        if (i == len) return MQTT_ERR_NONE;
        uint8_t c = s[i];
        if (c == '+' || c == '#')
            return MQTT_ERR_TOPIC_WILDCARD;    /* [MQTT-3.3.2-2] [MQTT-4.7.1-1] */
        if (c == 0) return MQTT_ERR_UTF8_NULL; /* [MQTT-1.5.4-2] [MQTT-4.7.3-2] */
        size_t n = utf8_seq(s + i, len - i);
        if (!n) return MQTT_ERR_BAD_UTF8; /* [MQTT-1.5.4-1] */
        i += n;
    }
}

/* The wildcard rules over a filter already known to be valid UTF-8 [MQTT-4.7.1-2]
 * [MQTT-4.7.1-3]: '#' alone in the last level, '+' alone in its level. */
static enum mqtt_error filter_levels_check(const char *s, size_t len)
{
    if (len == 0) return MQTT_ERR_FILTER_INVALID; /* [MQTT-4.7.3-1] */
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c != '+' && c != '#') continue;
        bool starts_level = i == 0 || s[i - 1] == '/';
        bool ends_level = i + 1 == len || s[i + 1] == '/';
        if (!starts_level || !ends_level)
            return MQTT_ERR_FILTER_INVALID; /* [MQTT-4.7.1-2] [MQTT-4.7.1-3] */
        if (c == '#' && i + 1 != len)
            return MQTT_ERR_FILTER_INVALID; /* '#' must be last [MQTT-4.7.1-2] */
    }
    return MQTT_ERR_NONE;
}

#define SHARE_PREFIX     "$share/"
#define SHARE_PREFIX_LEN 7

bool mqtt_topic_share_split(const char *s, size_t len, struct mqtt_str *group,
                            struct mqtt_str *filter)
{
    if (len < SHARE_PREFIX_LEN || memcmp(s, SHARE_PREFIX, SHARE_PREFIX_LEN) != 0) return false;
    const char *g = s + SHARE_PREFIX_LEN;
    size_t rest = len - SHARE_PREFIX_LEN;
    const char *slash = memchr(g, '/', rest);
    size_t glen = slash ? (size_t)(slash - g) : rest;
    group->ptr = g;
    group->len = (uint16_t)glen;
    if (slash) {
        filter->ptr = slash + 1;
        filter->len = (uint16_t)(rest - glen - 1);
    } else {
        filter->ptr = g + rest;
        filter->len = 0;
    }
    return true;
}

enum mqtt_error mqtt_topic_filter_check(const char *s, size_t len, bool allow_shared)
{
    struct mqtt_str group, filter;
    enum mqtt_error e;
    if (len == 0) return MQTT_ERR_FILTER_INVALID; /* [MQTT-4.7.3-1] */
    e = mqtt_utf8_check(s, len);
    if (e) return e;
    if (allow_shared && mqtt_topic_share_split(s, len, &group, &filter)) {
        /* The ShareName is at least one character, without '/', '+' or '#', and a topic
         * filter follows it [MQTT-4.8.2-1] [MQTT-4.8.2-2]. */
        if (group.len == 0 || filter.ptr == s + len) return MQTT_ERR_SHARE_INVALID;
        if (memchr(group.ptr, '+', group.len) || memchr(group.ptr, '#', group.len))
            return MQTT_ERR_SHARE_INVALID;
        if (filter.len == 0) return MQTT_ERR_SHARE_INVALID;
        return filter_levels_check(filter.ptr, filter.len);
    }
    return filter_levels_check(s, len);
}

bool mqtt_filter_has_wildcard(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == '+' || s[i] == '#') return true;
    return false;
}

bool mqtt_filter_matches(const char *f, size_t flen, const char *t, size_t tlen)
{
    size_t fi = 0, ti = 0;
    /* Wildcards in the first level never match a topic starting with '$' [MQTT-4.7.2-1]. */
    if (tlen > 0 && t[0] == '$' && flen > 0 && (f[0] == '+' || f[0] == '#')) return false;
    for (;;) {
        /* Both fi and ti are at the start of a level. */
        if (fi < flen && f[fi] == '#') return true; /* matches this level and everything below */
        if (fi < flen && f[fi] == '+') {
            fi++;
            while (ti < tlen && t[ti] != '/')
                ti++;
        } else {
            while (fi < flen && f[fi] != '/') {
                if (ti >= tlen || t[ti] != f[fi]) return false;
                fi++;
                ti++;
            }
            if (ti < tlen && t[ti] != '/') return false;
        }
        bool fend = fi >= flen, tend = ti >= tlen;
        if (fend && tend) return true;
        if (tend) /* "a/#" also matches "a", the parent level [MQTT-4.7.1-2] */
            return flen - fi == 2 && f[fi + 1] == '#';
        if (fend) return false;
        fi++; /* both at '/' */
        ti++;
    }
}

uint8_t mqtt_sub_opts_byte(struct mqtt_sub_opts o)
{
    return (uint8_t)((o.qos & 3) | (o.no_local ? 0x04 : 0) | (o.retain_as_published ? 0x08 : 0) |
                     ((o.retain_handling & 3) << 4));
}

enum mqtt_error topic_list_parse(struct cur *c, bool with_opts, uint8_t version,
                                 struct mqtt_topic_list *out)
{
    bool v5 = version == MQTT_V5;
    enum mqtt_error e;
    out->count = 0;
    out->list = NULL;
    out->raw = c->p;
    out->raw_len = (uint32_t)cur_left(c);
    while (c->p < c->end) {
        struct mqtt_bin b;
        struct mqtt_str f;
        if ((e = cur_bin(c, &b))) return e;
        f.ptr = (const char *)b.ptr;
        f.len = b.len;
        /* UTF-8 [MQTT-3.8.3-1] [MQTT-3.10.3-1], checked with the wildcard rules. */
        if ((e = mqtt_topic_filter_check(f.ptr, f.len, v5))) return e;
        if (with_opts) {
            uint8_t o;
            if ((e = cur_u8(c, &o))) return e;
            if ((o & 3) == 3) return MQTT_ERR_SUB_OPTIONS; /* QoS 3 */
            if (v5) {
                if (o & 0xC0) return MQTT_ERR_SUB_OPTIONS; /* reserved bits, 5.0 [MQTT-3.8.3-5] */
                /* Retain Handling 3 is a Protocol Error (5.0 3.8.3.1). */
                if (((o >> 4) & 3) == 3) return MQTT_ERR_RETAIN_HANDLING;
                /* No Local on a shared subscription is a Protocol Error, 5.0 [MQTT-3.8.3-4]. */
                if ((o & 0x04) && f.len >= SHARE_PREFIX_LEN &&
                    memcmp(f.ptr, SHARE_PREFIX, SHARE_PREFIX_LEN) == 0)
                    return MQTT_ERR_SHARE_INVALID;
            } else if (o & 0xFC) {
                return MQTT_ERR_SUB_OPTIONS; /* reserved bits, 3.1.1 [MQTT-3.8.3-4] */
            }
        }
        out->count++;
    }
    if (out->count == 0)
        return MQTT_ERR_NO_TOPICS; /* 3.1.1 [MQTT-3.8.3-3], 5.0 [MQTT-3.8.3-2]; [MQTT-3.10.3-2] */
    return MQTT_ERR_NONE;
}

int mqtt_topic_next(const uint8_t **pos, const uint8_t *end, bool with_opts,
                    struct mqtt_topic_entry *out)
{
    struct cur c = {*pos, end};
    struct mqtt_bin b;
    uint8_t o = 0;
    if (c.p >= c.end) return 0;
    if (cur_bin(&c, &b)) return 0;
    if (with_opts && cur_u8(&c, &o)) return 0;
    out->filter.ptr = (const char *)b.ptr;
    out->filter.len = b.len;
    out->opts.qos = o & 3;
    out->opts.no_local = (o & 0x04) != 0;
    out->opts.retain_as_published = (o & 0x08) != 0;
    out->opts.retain_handling = (o >> 4) & 3;
    *pos = c.p;
    return 1;
}
