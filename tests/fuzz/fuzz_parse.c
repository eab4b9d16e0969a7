/* Fuzz target `parse`: the input is a byte stream parsed as packets with every protocol
 * version and parser role (and once with a small maximum packet size). For every packet the
 * parser accepts, parse -> encode -> parse must give the same fields and encoding the result
 * again the same bytes; struct mqtt_reader fed the stream in two pieces must agree with
 * mqtt_parse(). Any disagreement aborts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_parse: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool str_eq(struct mqtt_str a, struct mqtt_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool bin_eq(struct mqtt_bin a, struct mqtt_bin b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* The next property with identifier id at *pos, or 0 at the end of the block. */
static int next_of(const uint8_t **pos, const uint8_t *end, uint8_t id, struct mqtt_prop *out)
{
    int r;
    if (*pos == NULL) return 0;
    while ((r = mqtt_prop_next(pos, end, out)) == 1 && out->id != id)
        ;
    CHECK(r >= 0);
    return r;
}

/* The repeatable properties of two decoded blocks: user properties in the same order, and
 * subscription identifiers in the same order (each list on its own: where one sits relative
 * to the other carries no meaning). */
static void check_prop_lists(const struct mqtt_props *a, const struct mqtt_props *b)
{
    static const uint8_t ids[] = {MQTT_PROP_USER_PROPERTY, MQTT_PROP_SUBSCRIPTION_ID};
    const uint8_t *ea = a->raw ? a->raw + a->raw_len : NULL;
    const uint8_t *eb = b->raw ? b->raw + b->raw_len : NULL;
    for (size_t k = 0; k < 2; k++) {
        const uint8_t *pa = a->raw, *pb = b->raw;
        uint32_t n = 0;
        struct mqtt_prop x, y;
        int rx;
        while ((rx = next_of(&pa, ea, ids[k], &x)) == 1) {
            CHECK(next_of(&pb, eb, ids[k], &y) == 1);
            if (ids[k] == MQTT_PROP_USER_PROPERTY) {
                CHECK(str_eq(x.v.pair.key, y.v.pair.key));
                CHECK(str_eq(x.v.pair.value, y.v.pair.value));
            } else {
                CHECK(x.v.u32 == y.v.u32);
                CHECK(n > 0 || (x.v.u32 == a->sub_id && y.v.u32 == b->sub_id));
            }
            n++;
        }
        CHECK(next_of(&pb, eb, ids[k], &y) == 0);
        if (ids[k] == MQTT_PROP_USER_PROPERTY)
            CHECK(n == a->user_count && n == b->user_count);
        else
            CHECK(n == a->sub_id_count && n == b->sub_id_count);
    }
}

#define SAME(field) CHECK(a->field == b->field)

static void check_props(const struct mqtt_props *a, const struct mqtt_props *b)
{
    SAME(present);
    uint64_t m = a->present;
#define HAS(id) (m & MQTT_PROP_BIT(MQTT_PROP_##id))
    if (HAS(PAYLOAD_FORMAT)) SAME(payload_format);
    if (HAS(MESSAGE_EXPIRY)) SAME(message_expiry_s);
    if (HAS(CONTENT_TYPE)) CHECK(str_eq(a->content_type, b->content_type));
    if (HAS(RESPONSE_TOPIC)) CHECK(str_eq(a->response_topic, b->response_topic));
    if (HAS(CORRELATION_DATA)) CHECK(bin_eq(a->correlation_data, b->correlation_data));
    if (HAS(SESSION_EXPIRY)) SAME(session_expiry_s);
    if (HAS(ASSIGNED_CLIENT_ID)) CHECK(str_eq(a->assigned_client_id, b->assigned_client_id));
    if (HAS(SERVER_KEEP_ALIVE)) SAME(server_keep_alive_s);
    if (HAS(AUTH_METHOD)) CHECK(str_eq(a->auth_method, b->auth_method));
    if (HAS(AUTH_DATA)) CHECK(bin_eq(a->auth_data, b->auth_data));
    if (HAS(REQUEST_PROBLEM_INFO)) SAME(request_problem_info);
    if (HAS(WILL_DELAY)) SAME(will_delay_s);
    if (HAS(REQUEST_RESPONSE_INFO)) SAME(request_response_info);
    if (HAS(RESPONSE_INFO)) CHECK(str_eq(a->response_info, b->response_info));
    if (HAS(SERVER_REFERENCE)) CHECK(str_eq(a->server_reference, b->server_reference));
    if (HAS(REASON_STRING)) CHECK(str_eq(a->reason_string, b->reason_string));
    if (HAS(RECEIVE_MAXIMUM)) SAME(receive_maximum);
    if (HAS(TOPIC_ALIAS_MAXIMUM)) SAME(topic_alias_maximum);
    if (HAS(TOPIC_ALIAS)) SAME(topic_alias);
    if (HAS(MAXIMUM_QOS)) SAME(maximum_qos);
    if (HAS(RETAIN_AVAILABLE)) SAME(retain_available);
    if (HAS(MAXIMUM_PACKET_SIZE)) SAME(maximum_packet_size);
    if (HAS(WILDCARD_SUB_AVAILABLE)) SAME(wildcard_sub_available);
    if (HAS(SUB_ID_AVAILABLE)) SAME(sub_id_available);
    if (HAS(SHARED_SUB_AVAILABLE)) SAME(shared_sub_available);
#undef HAS
    check_prop_lists(a, b);
}

static void check_topics(const struct mqtt_topic_list *a, const struct mqtt_topic_list *b,
                         bool with_opts, bool v5)
{
    const uint8_t *pa = a->raw, *pb = b->raw;
    uint32_t n = 0;
    CHECK(a->count == b->count);
    for (;;) {
        struct mqtt_topic_entry x, y;
        int rx = mqtt_topic_next(&pa, a->raw + a->raw_len, with_opts, &x);
        int ry = mqtt_topic_next(&pb, b->raw + b->raw_len, with_opts, &y);
        CHECK(rx == ry);
        if (rx != 1) break;
        CHECK(str_eq(x.filter, y.filter));
        if (with_opts) {
            CHECK(x.opts.qos == y.opts.qos);
            if (v5) {
                CHECK(x.opts.no_local == y.opts.no_local);
                CHECK(x.opts.retain_as_published == y.opts.retain_as_published);
                CHECK(x.opts.retain_handling == y.opts.retain_handling);
            }
        }
        n++;
    }
    CHECK(n == a->count);
}

static void check_same(const struct mqtt_packet *a, const struct mqtt_packet *b, uint8_t version)
{
    bool v5 = version == MQTT_V5;
    SAME(type);
    if (v5) check_props(&a->props, &b->props);
    switch (a->type) {
    case MQTT_CONNECT:
        SAME(u.connect.version);
        SAME(u.connect.clean_start);
        SAME(u.connect.keepalive_s);
        CHECK(str_eq(a->u.connect.client_id, b->u.connect.client_id));
        SAME(u.connect.will_flag);
        if (a->u.connect.will_flag) {
            SAME(u.connect.will_qos);
            SAME(u.connect.will_retain);
            CHECK(str_eq(a->u.connect.will_topic, b->u.connect.will_topic));
            CHECK(bin_eq(a->u.connect.will_payload, b->u.connect.will_payload));
            if (v5) check_props(&a->u.connect.will_props, &b->u.connect.will_props);
        }
        SAME(u.connect.has_username);
        if (a->u.connect.has_username) CHECK(str_eq(a->u.connect.username, b->u.connect.username));
        SAME(u.connect.has_password);
        if (a->u.connect.has_password) CHECK(bin_eq(a->u.connect.password, b->u.connect.password));
        break;
    case MQTT_CONNACK:
        SAME(u.connack.session_present);
        SAME(u.connack.reason);
        break;
    case MQTT_PUBLISH:
        SAME(u.publish.qos);
        SAME(u.publish.dup);
        SAME(u.publish.retain);
        CHECK(str_eq(a->u.publish.topic, b->u.publish.topic));
        if (a->u.publish.qos > 0) SAME(u.publish.packet_id);
        SAME(u.publish.payload_len);
        CHECK(a->u.publish.payload_len == 0 ||
              memcmp(a->u.publish.payload, b->u.publish.payload, a->u.publish.payload_len) == 0);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        SAME(u.ack.packet_id);
        SAME(u.ack.reason);
        break;
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        SAME(u.subscribe.packet_id);
        check_topics(&a->u.subscribe.topics, &b->u.subscribe.topics, a->type == MQTT_SUBSCRIBE, v5);
        break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        SAME(u.suback.packet_id);
        SAME(u.suback.count);
        CHECK(a->u.suback.count == 0 ||
              memcmp(a->u.suback.reasons, b->u.suback.reasons, a->u.suback.count) == 0);
        break;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        SAME(u.disconnect.reason);
        break;
    default:
        break;
    }
}

/* What the parser accepted passes the topic tools too, and the matcher agrees with itself. */
static void check_topics_of(const struct mqtt_packet *pkt, uint8_t version)
{
    if (pkt->type == MQTT_PUBLISH && pkt->u.publish.topic.len > 0) {
        struct mqtt_str t = pkt->u.publish.topic;
        CHECK(mqtt_topic_name_check(t.ptr, t.len) == MQTT_ERR_NONE);
        CHECK(!mqtt_filter_has_wildcard(t.ptr, t.len));
        CHECK(mqtt_filter_matches(t.ptr, t.len, t.ptr, t.len));
        /* [MQTT-4.7.2-1]: '#' matches every topic but those starting with '$'. */
        CHECK(mqtt_filter_matches("#", 1, t.ptr, t.len) == (t.ptr[0] != '$'));
    }
    if (pkt->type != MQTT_SUBSCRIBE && pkt->type != MQTT_UNSUBSCRIBE) return;
    const struct mqtt_topic_list *l = &pkt->u.subscribe.topics;
    const uint8_t *pos = l->raw;
    struct mqtt_topic_entry e;
    while (mqtt_topic_next(&pos, l->raw + l->raw_len, pkt->type == MQTT_SUBSCRIBE, &e) == 1) {
        struct mqtt_str group, filter = e.filter;
        CHECK(mqtt_topic_filter_check(e.filter.ptr, e.filter.len, version == MQTT_V5) ==
              MQTT_ERR_NONE);
        if (version == MQTT_V5 &&
            mqtt_topic_share_split(e.filter.ptr, e.filter.len, &group, &filter))
            CHECK(group.len > 0 && filter.len > 0);
        if (!mqtt_filter_has_wildcard(filter.ptr, filter.len))
            CHECK(mqtt_filter_matches(filter.ptr, filter.len, filter.ptr, filter.len));
    }
}

/* parse -> encode -> parse gives the same fields; encoding again gives the same bytes. */
static void check_round_trip(const struct mqtt_parser *p, const struct mqtt_packet *pkt)
{
    uint8_t version = pkt->type == MQTT_CONNECT ? pkt->u.connect.version : p->version;
    check_topics_of(pkt, version);
    size_t size = mqtt_encoded_size(pkt, version);
    CHECK(size > 0);
    CHECK(size <= pkt->wire_len + 8); /* at most a longer length or property length */
    uint8_t *buf = malloc(size), *again = malloc(size);
    CHECK(buf != NULL && again != NULL);
    CHECK(mqtt_encode(pkt, version, buf, size) == size);
    CHECK(mqtt_encode(pkt, version, buf, size - 1) == 0);

    struct mqtt_parser any = *p;
    any.max_packet_size = 0;
    struct mqtt_packet back;
    size_t need = 0;
    enum mqtt_parse_result r = mqtt_parse(&any, buf, size, &back, &need);
    if (r != MQTT_PARSE_DONE)
        fprintf(stderr, "fuzz_parse: re-parse of type %u v%u: result %d error %d (%s)\n", pkt->type,
                version, (int)r, (int)back.error, mqtt_error_str(back.error));
    CHECK(r == MQTT_PARSE_DONE);
    CHECK(back.wire_len == size);
    check_same(pkt, &back, version);
    CHECK(mqtt_encoded_size(&back, version) == size);
    CHECK(mqtt_encode(&back, version, again, size) == size);
    CHECK(memcmp(buf, again, size) == 0);
    free(buf);
    free(again);
}

static void *fuzz_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, size);
}

/* Parses the whole stream with one parser; returns how many packets were DONE. */
static size_t parse_stream(const struct mqtt_parser *p, const uint8_t *data, size_t size,
                           enum mqtt_parse_result *last)
{
    size_t off = 0, done = 0;
    for (;;) {
        struct mqtt_packet pkt;
        size_t need = 0;
        enum mqtt_parse_result r = mqtt_parse(p, data + off, size - off, &pkt, &need);
        *last = r;
        if (r == MQTT_PARSE_BAD) {
            CHECK(pkt.error != MQTT_ERR_NONE);
            CHECK(pkt.reason == mqtt_error_reason(pkt.error));
            CHECK(pkt.reason >= 0x80);
            return done;
        }
        if (r == MQTT_PARSE_MORE) {
            CHECK(need == 0 || need > size - off);
            CHECK(p->max_packet_size == 0 || need <= p->max_packet_size);
            return done;
        }
        CHECK(r == MQTT_PARSE_DONE);
        CHECK(pkt.wire_len > 0 && pkt.wire_len <= size - off);
        CHECK(p->max_packet_size == 0 || pkt.wire_len <= p->max_packet_size);
        check_round_trip(p, &pkt);
        off += pkt.wire_len;
        done++;
    }
}

/* struct mqtt_reader fed the stream in two pieces agrees with mqtt_parse(). */
static void check_reader(const struct mqtt_parser *p, const uint8_t *data, size_t size,
                         size_t want_done, enum mqtt_parse_result want_last)
{
    struct mqtt_reader r;
    struct mqtt_packet pkt;
    size_t cut = size > 0 ? data[0] % (size + 1) : 0, done = 0;
    enum mqtt_parse_result res = MQTT_PARSE_MORE;
    mqtt_reader_init(&r, p, (struct mqtt_allocator){.realloc = fuzz_realloc});
    CHECK(mqtt_reader_feed(&r, data, cut) == 0);
    while ((res = mqtt_reader_next(&r, &pkt)) == MQTT_PARSE_DONE)
        done++;
    if (res == MQTT_PARSE_MORE) {
        CHECK(mqtt_reader_feed(&r, data + cut, size - cut) == 0);
        while ((res = mqtt_reader_next(&r, &pkt)) == MQTT_PARSE_DONE)
            done++;
    }
    CHECK(done == want_done);
    CHECK(res == want_last);
    mqtt_reader_close(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t versions[] = {MQTT_V31, MQTT_V311, MQTT_V5};
    static const uint8_t roles[] = {MQTT_ROLE_ANY, MQTT_ROLE_SERVER, MQTT_ROLE_CLIENT};
    for (size_t v = 0; v < 3; v++) {
        for (size_t r = 0; r < 3; r++) {
            struct mqtt_parser p = {.version = versions[v], .role = roles[r]};
            enum mqtt_parse_result last;
            size_t done = parse_stream(&p, data, size, &last);
            if (r == 0) check_reader(&p, data, size, done, last);
        }
        struct mqtt_parser small = {.version = versions[v], .max_packet_size = 64};
        enum mqtt_parse_result last;
        size_t done = parse_stream(&small, data, size, &last);
        check_reader(&small, data, size, done, last);
    }
    return 0;
}
