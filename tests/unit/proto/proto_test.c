/* Shared fixtures of the codec's unit tests (see proto_test.h). */
#include "proto_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct mqtt_parser pt_v31 = {.version = MQTT_V31, .role = MQTT_ROLE_ANY};
const struct mqtt_parser pt_v311 = {.version = MQTT_V311, .role = MQTT_ROLE_ANY};
const struct mqtt_parser pt_v5 = {.version = MQTT_V5, .role = MQTT_ROLE_ANY};

const struct mqtt_parser *pt_parser(uint8_t version)
{
    switch (version) {
    case MQTT_V31:
        return &pt_v31;
    case MQTT_V311:
        return &pt_v311;
    default:
        return &pt_v5;
    }
}

const struct pt_golden *pt_golden_get(const char *name)
{
    for (size_t i = 0; i < pt_golden_count; i++) {
        if (strcmp(pt_golden[i].name, name) == 0) return &pt_golden[i];
    }
    fail_msg("no golden vector %s", name);
    return NULL;
}

void pt_parse_ok(const struct mqtt_parser *p, const uint8_t *wire, size_t len,
                 struct mqtt_packet *pkt)
{
    for (size_t k = 0; k < len; k++) {
        struct mqtt_packet part;
        size_t need = 12345;
        memset(&part, 0, sizeof part);
        enum mqtt_parse_result r = mqtt_parse(p, wire, k, &part, &need);
        if (r != MQTT_PARSE_MORE)
            fail_msg("prefix of %zu/%zu bytes: result %d (error %d), want MORE", k, len, (int)r,
                     (int)part.error);
        /* Once the fixed header is complete the parser knows the whole size. */
        assert_true(need == 0 || need == len);
    }
    memset(pkt, 0, sizeof *pkt);
    size_t need = 0;
    enum mqtt_parse_result r = mqtt_parse(p, wire, len, pkt, &need);
    if (r != MQTT_PARSE_DONE)
        fail_msg("parse of %zu bytes: result %d, error %d (%s)", len, (int)r, (int)pkt->error,
                 mqtt_error_str(pkt->error));
    assert_int_equal(pkt->wire_len, len);
    assert_int_equal(pkt->error, MQTT_ERR_NONE);
}

void pt_parse_golden(const char *name, struct mqtt_packet *pkt)
{
    const struct pt_golden *g = pt_golden_get(name);
    pt_parse_ok(pt_parser(g->version), g->wire, g->len, pkt);
}

void pt_parse_bad(const struct mqtt_parser *p, const uint8_t *wire, size_t len, enum mqtt_error err)
{
    struct mqtt_packet pkt;
    memset(&pkt, 0, sizeof pkt);
    enum mqtt_parse_result r = mqtt_parse(p, wire, len, &pkt, NULL);
    if (r != MQTT_PARSE_BAD || pkt.error != err)
        fail_msg("result %d error %d (%s), want BAD with error %d (%s)", (int)r, (int)pkt.error,
                 mqtt_error_str(pkt.error), (int)err, mqtt_error_str(err));
    assert_int_equal(pkt.reason, mqtt_error_reason(err));
    assert_true(pkt.reason >= 0x80);
}

static void dump(const char *what, const uint8_t *b, size_t n)
{
    fprintf(stderr, "%s (%zu):", what, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %02X", b[i]);
    fprintf(stderr, "\n");
}

void pt_encode_eq(const struct mqtt_packet *pkt, uint8_t version, const uint8_t *wire, size_t len)
{
    uint8_t out[4096];
    assert_true(len <= sizeof out);
    size_t size = mqtt_encoded_size(pkt, version);
    memset(out, 0xA5, sizeof out);
    size_t n = mqtt_encode(pkt, version, out, sizeof out);
    if (size != len || n != len || memcmp(out, wire, len) != 0) {
        dump("want", wire, len);
        dump("got ", out, n);
        fail_msg("encoded_size %zu, encode %zu, want %zu bytes as above", size, n, len);
    }
    /* Nothing is written past the packet. */
    assert_int_equal(out[len], 0xA5);
    /* One byte short of the exact size is refused. */
    assert_int_equal(mqtt_encode(pkt, version, out, len - 1), 0);
}

void pt_encode_golden(const struct mqtt_packet *pkt, const char *name)
{
    const struct pt_golden *g = pt_golden_get(name);
    pt_encode_eq(pkt, g->version, g->wire, g->len);
}

void pt_assert_str_equal(struct mqtt_str s, const char *expected)
{
    size_t n = strlen(expected);
    if (s.len != n || (n > 0 && memcmp(s.ptr, expected, n) != 0))
        fail_msg("string \"%.*s\", want \"%s\"", (int)s.len, s.ptr ? s.ptr : "", expected);
}

static void assert_mstr_equal(struct mqtt_str a, struct mqtt_str b)
{
    assert_int_equal(a.len, b.len);
    if (a.len > 0) assert_memory_equal(a.ptr, b.ptr, a.len);
}

static void assert_bin_equal(struct mqtt_bin a, struct mqtt_bin b)
{
    assert_int_equal(a.len, b.len);
    if (a.len > 0) assert_memory_equal(a.ptr, b.ptr, a.len);
}

/* The user properties of a block, in order, from `user` or from `raw`. */
static size_t collect_user(const struct mqtt_props *p, struct mqtt_user_prop *out, size_t max)
{
    size_t n = 0;
    if (p->user != NULL) {
        for (uint32_t i = 0; i < p->user_count && n < max; i++)
            out[n++] = p->user[i];
        return n;
    }
    const uint8_t *pos = p->raw;
    const uint8_t *end = p->raw ? p->raw + p->raw_len : NULL;
    struct mqtt_prop prop;
    int rc;
    while (pos != NULL && (rc = mqtt_prop_next(&pos, end, &prop)) == 1) {
        if (prop.id == MQTT_PROP_USER_PROPERTY && n < max) out[n++] = prop.v.pair;
    }
    if (pos != NULL) assert_int_equal(rc, 0);
    return n;
}

/* The subscription identifiers of a block, in order. */
static size_t collect_sub_ids(const struct mqtt_props *p, uint32_t *out, size_t max)
{
    size_t n = 0;
    if (p->sub_ids != NULL) {
        for (uint32_t i = 0; i < p->sub_id_count && n < max; i++)
            out[n++] = p->sub_ids[i];
        return n;
    }
    if (p->raw == NULL) {
        if (p->sub_id_count == 1) out[n++] = p->sub_id;
        return n;
    }
    const uint8_t *pos = p->raw;
    struct mqtt_prop prop;
    while (mqtt_prop_next(&pos, p->raw + p->raw_len, &prop) == 1) {
        if (prop.id == MQTT_PROP_SUBSCRIPTION_ID && n < max) out[n++] = prop.v.u32;
    }
    return n;
}

#define BIT(id) MQTT_PROP_BIT(MQTT_PROP_##id)

void pt_assert_props_equal(const struct mqtt_props *a, const struct mqtt_props *b)
{
    assert_int_equal(a->present, b->present);
    uint64_t m = a->present;
    if (m & BIT(PAYLOAD_FORMAT)) assert_int_equal(a->payload_format, b->payload_format);
    if (m & BIT(MESSAGE_EXPIRY)) assert_int_equal(a->message_expiry_s, b->message_expiry_s);
    if (m & BIT(CONTENT_TYPE)) assert_mstr_equal(a->content_type, b->content_type);
    if (m & BIT(RESPONSE_TOPIC)) assert_mstr_equal(a->response_topic, b->response_topic);
    if (m & BIT(CORRELATION_DATA)) assert_bin_equal(a->correlation_data, b->correlation_data);
    if (m & BIT(SESSION_EXPIRY)) assert_int_equal(a->session_expiry_s, b->session_expiry_s);
    if (m & BIT(ASSIGNED_CLIENT_ID))
        assert_mstr_equal(a->assigned_client_id, b->assigned_client_id);
    if (m & BIT(SERVER_KEEP_ALIVE))
        assert_int_equal(a->server_keep_alive_s, b->server_keep_alive_s);
    if (m & BIT(AUTH_METHOD)) assert_mstr_equal(a->auth_method, b->auth_method);
    if (m & BIT(AUTH_DATA)) assert_bin_equal(a->auth_data, b->auth_data);
    if (m & BIT(REQUEST_PROBLEM_INFO))
        assert_int_equal(a->request_problem_info, b->request_problem_info);
    if (m & BIT(WILL_DELAY)) assert_int_equal(a->will_delay_s, b->will_delay_s);
    if (m & BIT(REQUEST_RESPONSE_INFO))
        assert_int_equal(a->request_response_info, b->request_response_info);
    if (m & BIT(RESPONSE_INFO)) assert_mstr_equal(a->response_info, b->response_info);
    if (m & BIT(SERVER_REFERENCE)) assert_mstr_equal(a->server_reference, b->server_reference);
    if (m & BIT(REASON_STRING)) assert_mstr_equal(a->reason_string, b->reason_string);
    if (m & BIT(RECEIVE_MAXIMUM)) assert_int_equal(a->receive_maximum, b->receive_maximum);
    if (m & BIT(TOPIC_ALIAS_MAXIMUM))
        assert_int_equal(a->topic_alias_maximum, b->topic_alias_maximum);
    if (m & BIT(TOPIC_ALIAS)) assert_int_equal(a->topic_alias, b->topic_alias);
    if (m & BIT(MAXIMUM_QOS)) assert_int_equal(a->maximum_qos, b->maximum_qos);
    if (m & BIT(RETAIN_AVAILABLE)) assert_int_equal(a->retain_available, b->retain_available);
    if (m & BIT(MAXIMUM_PACKET_SIZE))
        assert_int_equal(a->maximum_packet_size, b->maximum_packet_size);
    if (m & BIT(WILDCARD_SUB_AVAILABLE))
        assert_int_equal(a->wildcard_sub_available, b->wildcard_sub_available);
    if (m & BIT(SUB_ID_AVAILABLE)) assert_int_equal(a->sub_id_available, b->sub_id_available);
    if (m & BIT(SHARED_SUB_AVAILABLE))
        assert_int_equal(a->shared_sub_available, b->shared_sub_available);

    static struct mqtt_user_prop ua[64], ub[64];
    size_t na = collect_user(a, ua, 64), nb = collect_user(b, ub, 64);
    assert_int_equal(na, nb);
    assert_int_equal(a->user_count, na);
    assert_int_equal(b->user_count, nb);
    for (size_t i = 0; i < na; i++) {
        assert_mstr_equal(ua[i].key, ub[i].key);
        assert_mstr_equal(ua[i].value, ub[i].value);
    }
    static uint32_t sa[64], sb[64];
    size_t ma = collect_sub_ids(a, sa, 64), mb = collect_sub_ids(b, sb, 64);
    assert_int_equal(ma, mb);
    assert_int_equal(a->sub_id_count, ma);
    assert_int_equal(b->sub_id_count, mb);
    for (size_t i = 0; i < ma; i++)
        assert_int_equal(sa[i], sb[i]);
    if (ma > 0) {
        assert_int_equal(a->sub_id, sa[0]);
        assert_int_equal(b->sub_id, sb[0]);
    }
}

/* The entries of a SUBSCRIBE/UNSUBSCRIBE list, from `list` or from `raw`. */
static size_t collect_topics(const struct mqtt_topic_list *l, bool with_opts,
                             struct mqtt_topic_entry *out, size_t max)
{
    size_t n = 0;
    if (l->list != NULL) {
        for (uint32_t i = 0; i < l->count && n < max; i++)
            out[n++] = l->list[i];
        return n;
    }
    const uint8_t *pos = l->raw;
    while (pos != NULL && n < max &&
           mqtt_topic_next(&pos, l->raw + l->raw_len, with_opts, &out[n]) == 1)
        n++;
    return n;
}

void pt_assert_packet_equal(const struct mqtt_packet *a, const struct mqtt_packet *b,
                            uint8_t version)
{
    assert_int_equal(a->type, b->type);
    bool v5 = version == MQTT_V5;
    if (v5 && a->type != MQTT_PINGREQ && a->type != MQTT_PINGRESP)
        pt_assert_props_equal(&a->props, &b->props);
    switch (a->type) {
    case MQTT_CONNECT: {
        const struct mqtt_connect *x = &a->u.connect, *y = &b->u.connect;
        assert_int_equal(x->version, y->version);
        assert_int_equal(x->clean_start, y->clean_start);
        assert_int_equal(x->keepalive_s, y->keepalive_s);
        assert_mstr_equal(x->client_id, y->client_id);
        assert_int_equal(x->will_flag, y->will_flag);
        if (x->will_flag) {
            assert_int_equal(x->will_qos, y->will_qos);
            assert_int_equal(x->will_retain, y->will_retain);
            assert_mstr_equal(x->will_topic, y->will_topic);
            assert_bin_equal(x->will_payload, y->will_payload);
            if (x->version == MQTT_V5) pt_assert_props_equal(&x->will_props, &y->will_props);
        }
        assert_int_equal(x->has_username, y->has_username);
        if (x->has_username) assert_mstr_equal(x->username, y->username);
        assert_int_equal(x->has_password, y->has_password);
        if (x->has_password) assert_bin_equal(x->password, y->password);
        break;
    }
    case MQTT_CONNACK:
        assert_int_equal(a->u.connack.session_present, b->u.connack.session_present);
        assert_int_equal(a->u.connack.reason, b->u.connack.reason);
        break;
    case MQTT_PUBLISH: {
        const struct mqtt_publish *x = &a->u.publish, *y = &b->u.publish;
        assert_int_equal(x->qos, y->qos);
        assert_int_equal(x->dup, y->dup);
        assert_int_equal(x->retain, y->retain);
        assert_mstr_equal(x->topic, y->topic);
        if (x->qos > 0) assert_int_equal(x->packet_id, y->packet_id);
        assert_int_equal(x->payload_len, y->payload_len);
        if (x->payload_len > 0) assert_memory_equal(x->payload, y->payload, x->payload_len);
        break;
    }
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        assert_int_equal(a->u.ack.packet_id, b->u.ack.packet_id);
        if (v5) assert_int_equal(a->u.ack.reason, b->u.ack.reason);
        break;
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE: {
        static struct mqtt_topic_entry ta[256], tb[256];
        bool opts = a->type == MQTT_SUBSCRIBE;
        assert_int_equal(a->u.subscribe.packet_id, b->u.subscribe.packet_id);
        assert_int_equal(a->u.subscribe.topics.count, b->u.subscribe.topics.count);
        size_t na = collect_topics(&a->u.subscribe.topics, opts, ta, 256);
        size_t nb = collect_topics(&b->u.subscribe.topics, opts, tb, 256);
        assert_int_equal(na, nb);
        assert_int_equal(na, a->u.subscribe.topics.count);
        for (size_t i = 0; i < na; i++) {
            assert_mstr_equal(ta[i].filter, tb[i].filter);
            if (!opts) continue;
            assert_int_equal(ta[i].opts.qos, tb[i].opts.qos);
            if (v5) {
                assert_int_equal(ta[i].opts.no_local, tb[i].opts.no_local);
                assert_int_equal(ta[i].opts.retain_as_published, tb[i].opts.retain_as_published);
                assert_int_equal(ta[i].opts.retain_handling, tb[i].opts.retain_handling);
            }
        }
        break;
    }
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        assert_int_equal(a->u.suback.packet_id, b->u.suback.packet_id);
        if (a->type == MQTT_SUBACK || v5) {
            assert_int_equal(a->u.suback.count, b->u.suback.count);
            if (a->u.suback.count > 0)
                assert_memory_equal(a->u.suback.reasons, b->u.suback.reasons, a->u.suback.count);
        }
        break;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        if (v5) assert_int_equal(a->u.disconnect.reason, b->u.disconnect.reason);
        break;
    default:
        break;
    }
}

/* Each block carries its size in a header so that live bytes can be counted. */
struct block {
    size_t size;
    max_align_t align;
};

static void *heap_realloc(void *ctx, void *ptr, size_t size)
{
    struct pt_heap *h = ctx;
    struct block *old = ptr ? (struct block *)((char *)ptr - offsetof(struct block, align)) : NULL;
    if (size == 0) {
        if (old) {
            h->live -= old->size;
            free(old);
        }
        return NULL;
    }
    h->calls++;
    if (h->fail_from > 0 && h->calls >= h->fail_from) return NULL;
    size_t old_size = old ? old->size : 0;
    struct block *b = realloc(old, offsetof(struct block, align) + size);
    if (b == NULL) return NULL;
    b->size = size;
    h->live = h->live - old_size + size;
    if (h->live > h->peak) h->peak = h->live;
    return &b->align;
}

struct mqtt_allocator pt_heap_allocator(struct pt_heap *h)
{
    return (struct mqtt_allocator){.realloc = heap_realloc, .ctx = h};
}
