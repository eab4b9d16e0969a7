/* Randomized round trips: generate a valid packet of every type and version, encode it,
 * parse it back through struct mqtt_reader in random splits, compare field by field, and
 * re-encode the parsed packet to the same bytes. The seed is printed (STARLING_TEST_SEED). */
#include "proto_test.h"
#include "testlib.h"

#define BIT(id) MQTT_PROP_BIT(MQTT_PROP_##id)

#define ITERATIONS 20000

static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
    return (uint32_t)(test_rand(&rng) % n);
}

static bool coin(void)
{
    return rnd(2) == 0;
}

/* Storage for the strings and arrays of one generated packet. */
static struct {
    char bytes[16384];
    size_t used;
    struct mqtt_user_prop users[3][8];
    uint32_t sub_ids[8];
    struct mqtt_topic_entry topics[8];
    uint8_t reasons[8];
} arena;

static char *arena_take(size_t n)
{
    assert_true(arena.used + n <= sizeof arena.bytes);
    char *p = arena.bytes + arena.used;
    arena.used += n;
    return p;
}

/* A UTF-8 string of 0..max bytes from a small alphabet that includes a 2-byte and a
 * 3-byte character, never a wildcard. */
static struct mqtt_str rstr(size_t min, size_t max)
{
    static const char *const pieces[] = {"a", "b", "z",        "0",           "/",
                                         "-", " ", "\xC3\xA9", "\xE2\x82\xAC"};
    size_t target = min + rnd((uint32_t)(max - min + 1));
    char *p = arena_take(target + 3);
    size_t n = 0;
    while (n < target) {
        const char *piece = pieces[rnd(sizeof pieces / sizeof pieces[0])];
        size_t l = strlen(piece);
        if (n + l > target) {
            piece = "x";
            l = 1;
        }
        memcpy(p + n, piece, l);
        n += l;
    }
    return (struct mqtt_str){.ptr = p, .len = (uint16_t)n};
}

static struct mqtt_bin rbin(size_t max)
{
    size_t n = rnd((uint32_t)max + 1);
    uint8_t *p = (uint8_t *)arena_take(n + 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd(256);
    return (struct mqtt_bin){.ptr = p, .len = (uint16_t)n};
}

/* A topic name: non-empty, no wildcards. */
static struct mqtt_str rtopic(void)
{
    return rstr(1, 30);
}

/* A valid topic filter from levels, '+' and a final '#'. */
static struct mqtt_str rfilter(void)
{
    static const char *const levels[] = {"a", "bc", "+", "", "sport", "\xC3\xA9t\xC3\xA9", "$x"};
    char *p = arena_take(128);
    size_t n = 0;
    int count = 1 + (int)rnd(4);
    for (int i = 0; i < count; i++) {
        const char *l = levels[rnd(sizeof levels / sizeof levels[0])];
        if (i > 0) p[n++] = '/';
        memcpy(p + n, l, strlen(l));
        n += strlen(l);
    }
    if (rnd(4) == 0) {
        if (n > 0) p[n++] = '/';
        p[n++] = '#';
    }
    if (n == 0) p[n++] = '+';
    return (struct mqtt_str){.ptr = p, .len = (uint16_t)n};
}

static uint32_t r32(void)
{
    return (uint32_t)test_rand(&rng);
}

static uint16_t r16_nonzero(void)
{
    return (uint16_t)(1 + rnd(65535));
}

static void add_users(struct mqtt_props *p, int slot)
{
    uint32_t n = rnd(4) == 0 ? rnd(4) : 0;
    for (uint32_t i = 0; i < n; i++) {
        arena.users[slot][i].key = rstr(0, 6);
        arena.users[slot][i].value = rstr(0, 6);
    }
    if (n > 0) {
        p->user = arena.users[slot];
        p->user_count = n;
    }
}

static void maybe_reason_string(struct mqtt_props *p)
{
    if (coin()) {
        p->present |= BIT(REASON_STRING);
        p->reason_string = rstr(0, 12);
    }
}

static uint8_t pick(const uint8_t *list, size_t n)
{
    return list[rnd((uint32_t)n)];
}
#define PICK(arr) pick((arr), sizeof(arr))

static void gen_connect(struct mqtt_packet *pkt, uint8_t version)
{
    struct mqtt_connect *c = &pkt->u.connect;
    c->version = version;
    c->clean_start = coin();
    c->keepalive_s = (uint16_t)rnd(65536);
    c->client_id = version == MQTT_V31 ? rstr(1, 23) : rstr(0, 23);
    c->will_flag = coin();
    if (c->will_flag) {
        c->will_qos = (uint8_t)rnd(3);
        c->will_retain = coin();
        c->will_topic = rtopic();
        c->will_payload = rbin(40);
    }
    c->has_username = coin();
    if (c->has_username) c->username = rstr(0, 12);
    c->has_password = version == MQTT_V5 || c->has_username ? coin() : false;
    if (c->has_password) c->password = rbin(12);
    if (version != MQTT_V5) return;
    struct mqtt_props *p = &pkt->props;
    if (coin()) {
        p->present |= BIT(SESSION_EXPIRY);
        p->session_expiry_s = r32();
    }
    if (coin()) {
        p->present |= BIT(RECEIVE_MAXIMUM);
        p->receive_maximum = r16_nonzero();
    }
    if (coin()) {
        p->present |= BIT(MAXIMUM_PACKET_SIZE);
        p->maximum_packet_size = 1 + rnd(UINT32_MAX);
    }
    if (coin()) {
        p->present |= BIT(TOPIC_ALIAS_MAXIMUM);
        p->topic_alias_maximum = (uint16_t)rnd(65536);
    }
    if (coin()) {
        p->present |= BIT(REQUEST_RESPONSE_INFO);
        p->request_response_info = (uint8_t)rnd(2);
    }
    if (coin()) {
        p->present |= BIT(REQUEST_PROBLEM_INFO);
        p->request_problem_info = (uint8_t)rnd(2);
    }
    if (coin()) {
        p->present |= BIT(AUTH_METHOD);
        p->auth_method = rstr(1, 10);
        if (coin()) {
            p->present |= BIT(AUTH_DATA);
            p->auth_data = rbin(10);
        }
    }
    add_users(p, 0);
    if (!c->will_flag) return;
    struct mqtt_props *w = &c->will_props;
    if (coin()) {
        w->present |= BIT(WILL_DELAY);
        w->will_delay_s = r32();
    }
    if (coin()) {
        w->present |= BIT(PAYLOAD_FORMAT);
        w->payload_format = (uint8_t)rnd(2);
    }
    if (coin()) {
        w->present |= BIT(MESSAGE_EXPIRY);
        w->message_expiry_s = r32();
    }
    if (coin()) {
        w->present |= BIT(CONTENT_TYPE);
        w->content_type = rstr(0, 10);
    }
    if (coin()) {
        w->present |= BIT(RESPONSE_TOPIC);
        w->response_topic = rtopic();
    }
    if (coin()) {
        w->present |= BIT(CORRELATION_DATA);
        w->correlation_data = rbin(10);
    }
    add_users(w, 1);
}

static void gen_connack(struct mqtt_packet *pkt, uint8_t version)
{
    static const uint8_t v3[] = {0x00, 0x84, 0x85, 0x88, 0x86, 0x87};
    static const uint8_t v5[] = {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
                                 0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
    pkt->u.connack.reason = version == MQTT_V5 ? PICK(v5) : PICK(v3);
    pkt->u.connack.session_present = pkt->u.connack.reason == 0 && coin();
    if (version != MQTT_V5) return;
    struct mqtt_props *p = &pkt->props;
    if (coin()) {
        p->present |= BIT(SESSION_EXPIRY);
        p->session_expiry_s = r32();
    }
    if (coin()) {
        p->present |= BIT(RECEIVE_MAXIMUM);
        p->receive_maximum = r16_nonzero();
    }
    if (coin()) {
        p->present |= BIT(MAXIMUM_QOS);
        p->maximum_qos = (uint8_t)rnd(2);
    }
    if (coin()) {
        p->present |= BIT(RETAIN_AVAILABLE);
        p->retain_available = (uint8_t)rnd(2);
    }
    if (coin()) {
        p->present |= BIT(MAXIMUM_PACKET_SIZE);
        p->maximum_packet_size = 1 + rnd(UINT32_MAX);
    }
    if (coin()) {
        p->present |= BIT(ASSIGNED_CLIENT_ID);
        p->assigned_client_id = rstr(1, 23);
    }
    if (coin()) {
        p->present |= BIT(TOPIC_ALIAS_MAXIMUM);
        p->topic_alias_maximum = (uint16_t)rnd(65536);
    }
    maybe_reason_string(p);
    if (coin()) {
        p->present |= BIT(WILDCARD_SUB_AVAILABLE);
        p->wildcard_sub_available = (uint8_t)rnd(2);
    }
    if (coin()) {
        p->present |= BIT(SUB_ID_AVAILABLE);
        p->sub_id_available = (uint8_t)rnd(2);
    }
    if (coin()) {
        p->present |= BIT(SHARED_SUB_AVAILABLE);
        p->shared_sub_available = (uint8_t)rnd(2);
    }
    if (coin()) {
        p->present |= BIT(SERVER_KEEP_ALIVE);
        p->server_keep_alive_s = (uint16_t)rnd(65536);
    }
    if (coin()) {
        p->present |= BIT(RESPONSE_INFO);
        p->response_info = rstr(0, 10);
    }
    if (coin()) {
        p->present |= BIT(SERVER_REFERENCE);
        p->server_reference = rstr(0, 10);
    }
    if (coin()) {
        p->present |= BIT(AUTH_METHOD);
        p->auth_method = rstr(1, 10);
        if (coin()) {
            p->present |= BIT(AUTH_DATA);
            p->auth_data = rbin(10);
        }
    }
    add_users(p, 0);
}

static void gen_publish(struct mqtt_packet *pkt, uint8_t version)
{
    struct mqtt_publish *m = &pkt->u.publish;
    m->qos = (uint8_t)rnd(3);
    m->dup = m->qos > 0 && coin();
    m->retain = coin();
    m->topic = rtopic();
    if (m->qos > 0) m->packet_id = r16_nonzero();
    struct mqtt_bin payload = rbin(rnd(8) == 0 ? 2000 : 64);
    m->payload = payload.ptr;
    m->payload_len = payload.len;
    if (version != MQTT_V5) return;
    struct mqtt_props *p = &pkt->props;
    if (coin()) {
        p->present |= BIT(PAYLOAD_FORMAT);
        p->payload_format = (uint8_t)rnd(2);
    }
    if (coin()) {
        p->present |= BIT(MESSAGE_EXPIRY);
        p->message_expiry_s = r32();
    }
    if (coin()) {
        p->present |= BIT(CONTENT_TYPE);
        p->content_type = rstr(0, 10);
    }
    if (coin()) {
        p->present |= BIT(RESPONSE_TOPIC);
        p->response_topic = rtopic();
    }
    if (coin()) {
        p->present |= BIT(CORRELATION_DATA);
        p->correlation_data = rbin(10);
    }
    if (coin()) {
        p->present |= BIT(TOPIC_ALIAS);
        p->topic_alias = r16_nonzero();
        if (coin()) m->topic = (struct mqtt_str){.ptr = "", .len = 0};
    }
    if (rnd(3) == 0) {
        uint32_t n = 1 + rnd(4);
        for (uint32_t i = 0; i < n; i++)
            arena.sub_ids[i] = 1 + rnd(MQTT_VARINT_MAX);
        p->sub_ids = arena.sub_ids;
        p->sub_id_count = n;
        p->sub_id = arena.sub_ids[0];
    }
    add_users(p, 0);
}

static void gen_ack(struct mqtt_packet *pkt, uint8_t version)
{
    static const uint8_t puback[] = {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99};
    static const uint8_t pubrel[] = {0x00, 0x92};
    pkt->u.ack.packet_id = r16_nonzero();
    if (version != MQTT_V5) return;
    bool first_pair = pkt->type == MQTT_PUBACK || pkt->type == MQTT_PUBREC;
    pkt->u.ack.reason = coin() ? 0 : first_pair ? PICK(puback) : PICK(pubrel);
    if (coin()) {
        maybe_reason_string(&pkt->props);
        add_users(&pkt->props, 0);
    }
}

static void gen_subscribe(struct mqtt_packet *pkt, uint8_t version)
{
    bool sub = pkt->type == MQTT_SUBSCRIBE;
    uint32_t n = 1 + rnd(5);
    pkt->u.subscribe.packet_id = r16_nonzero();
    for (uint32_t i = 0; i < n; i++) {
        struct mqtt_topic_entry *e = &arena.topics[i];
        memset(e, 0, sizeof *e);
        e->filter = rfilter();
        if (!sub) continue;
        e->opts.qos = (uint8_t)rnd(3);
        if (version == MQTT_V5) {
            e->opts.no_local = coin();
            e->opts.retain_as_published = coin();
            e->opts.retain_handling = (uint8_t)rnd(3);
        }
    }
    pkt->u.subscribe.topics.list = arena.topics;
    pkt->u.subscribe.topics.count = n;
    if (version != MQTT_V5) return;
    if (sub && coin()) {
        arena.sub_ids[0] = 1 + rnd(MQTT_VARINT_MAX);
        pkt->props.sub_ids = arena.sub_ids;
        pkt->props.sub_id_count = 1;
        pkt->props.sub_id = arena.sub_ids[0];
    }
    add_users(&pkt->props, 0);
}

static void gen_suback(struct mqtt_packet *pkt, uint8_t version)
{
    static const uint8_t v3[] = {0x00, 0x01, 0x02, 0x80};
    static const uint8_t v5sub[] = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
                                    0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
    static const uint8_t v5unsub[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
    bool sub = pkt->type == MQTT_SUBACK;
    pkt->u.suback.packet_id = r16_nonzero();
    if (!sub && version != MQTT_V5) return;
    uint32_t n = 1 + rnd(6);
    for (uint32_t i = 0; i < n; i++)
        arena.reasons[i] = version != MQTT_V5 ? PICK(v3) : sub ? PICK(v5sub) : PICK(v5unsub);
    pkt->u.suback.reasons = arena.reasons;
    pkt->u.suback.count = n;
    if (version == MQTT_V5) {
        maybe_reason_string(&pkt->props);
        add_users(&pkt->props, 0);
    }
}

static void gen_disconnect(struct mqtt_packet *pkt, uint8_t version)
{
    static const uint8_t disconnect[] = {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
                                         0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
                                         0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
    static const uint8_t auth[] = {0x00, 0x18, 0x19};
    if (version != MQTT_V5) return;
    struct mqtt_props *p = &pkt->props;
    if (pkt->type == MQTT_DISCONNECT) {
        pkt->u.disconnect.reason = coin() ? 0 : PICK(disconnect);
        if (coin()) {
            p->present |= BIT(SESSION_EXPIRY);
            p->session_expiry_s = r32();
        }
        if (coin()) {
            p->present |= BIT(SERVER_REFERENCE);
            p->server_reference = rstr(0, 10);
        }
    } else {
        pkt->u.disconnect.reason = PICK(auth);
        if (coin()) {
            p->present |= BIT(AUTH_METHOD);
            p->auth_method = rstr(1, 10);
            if (coin()) {
                p->present |= BIT(AUTH_DATA);
                p->auth_data = rbin(10);
            }
        }
    }
    maybe_reason_string(p);
    add_users(p, 0);
}

static void generate(struct mqtt_packet *pkt, uint8_t type, uint8_t version)
{
    arena.used = 0;
    memset(pkt, 0, sizeof *pkt);
    pkt->type = type;
    switch (type) {
    case MQTT_CONNECT:
        gen_connect(pkt, version);
        break;
    case MQTT_CONNACK:
        gen_connack(pkt, version);
        break;
    case MQTT_PUBLISH:
        gen_publish(pkt, version);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        gen_ack(pkt, version);
        break;
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        gen_subscribe(pkt, version);
        break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        gen_suback(pkt, version);
        break;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        gen_disconnect(pkt, version);
        break;
    default:
        break;
    }
}

/* Encodes pkt, feeds the bytes to a reader in 1-4 random pieces, and compares. */
static void round_trip(const struct mqtt_packet *pkt, uint8_t version, uint32_t iteration)
{
    static uint8_t wire[32768], again[32768];
    size_t size = mqtt_encoded_size(pkt, version);
    if (size == 0 || size > sizeof wire)
        fail_msg("iteration %u: type %u v%u: encoded size %zu", iteration, pkt->type, version,
                 size);
    assert_int_equal(mqtt_encode(pkt, version, wire, sizeof wire), size);

    struct pt_heap heap = {0};
    struct mqtt_reader r;
    struct mqtt_packet got;
    enum mqtt_parse_result res = MQTT_PARSE_MORE;
    mqtt_reader_init(&r, pt_parser(version), pt_heap_allocator(&heap));
    size_t cuts[5] = {0, 0, 0, 0, size};
    size_t pieces = 1 + rnd(4);
    for (size_t i = 1; i < pieces; i++)
        cuts[i] = rnd((uint32_t)size + 1);
    cuts[pieces] = size;
    for (size_t i = 1; i < pieces; i++) /* sort the inner cuts */
        for (size_t j = i + 1; j < pieces; j++)
            if (cuts[j] < cuts[i]) {
                size_t t = cuts[i];
                cuts[i] = cuts[j];
                cuts[j] = t;
            }
    for (size_t i = 0; i < pieces && res == MQTT_PARSE_MORE; i++) {
        assert_int_equal(mqtt_reader_feed(&r, wire + cuts[i], cuts[i + 1] - cuts[i]), 0);
        res = mqtt_reader_next(&r, &got);
        /* Whole only once the last byte is in. */
        if (cuts[i + 1] < size) assert_int_equal(res, MQTT_PARSE_MORE);
    }
    if (res != MQTT_PARSE_DONE)
        fail_msg("iteration %u: type %u v%u: result %d error %d (%s)", iteration, pkt->type,
                 version, (int)res, (int)got.error, mqtt_error_str(got.error));
    assert_int_equal(got.wire_len, size);
    pt_assert_packet_equal(pkt, &got, version);

    /* parse -> encode gives the same bytes. */
    assert_int_equal(mqtt_encoded_size(&got, version), size);
    assert_int_equal(mqtt_encode(&got, version, again, sizeof again), size);
    assert_memory_equal(again, wire, size);
    mqtt_reader_close(&r);
    assert_int_equal(heap.live, 0);
}

/* Every packet type of every version survives encode -> split parse -> compare. */
static void roundtrip_random_packets(void **state)
{
    static const uint8_t versions[] = {MQTT_V31, MQTT_V311, MQTT_V5};
    (void)state;
    rng = test_seed();
    for (uint32_t i = 0; i < ITERATIONS; i++) {
        uint8_t version = versions[rnd(3)];
        uint8_t type = (uint8_t)(1 + rnd(version == MQTT_V5 ? 15 : 14));
        struct mqtt_packet pkt;
        generate(&pkt, type, version);
        round_trip(&pkt, version, i);
    }
}

/* Each canonical golden vector re-encodes to itself after parsing. */
static void roundtrip_golden_vectors(void **state)
{
    static uint8_t out[4096];
    (void)state;
    for (size_t i = 0; i < pt_golden_count; i++) {
        const struct pt_golden *g = &pt_golden[i];
        struct mqtt_packet pkt;
        if (!g->canonical) continue;
        pt_parse_ok(pt_parser(g->version), g->wire, g->len, &pkt);
        size_t n = mqtt_encode(&pkt, g->version, out, sizeof out);
        if (n != g->len || memcmp(out, g->wire, n) != 0)
            fail_msg("%s: re-encoded to %zu bytes, not the original %zu", g->name, n, g->len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_golden_vectors),
        cmocka_unit_test(roundtrip_random_packets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
