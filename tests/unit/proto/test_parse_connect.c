/* CONNECT in MQTT 3.1, 3.1.1 and 5.0: golden vectors both ways, and every way to get it wrong. */
#include "proto_test.h"

#define MQTT   0x00, 0x04, 'M', 'Q', 'T', 'T'
#define MQISDP 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p'

static const struct mqtt_parser server311 = {.version = MQTT_V311, .role = MQTT_ROLE_SERVER};
static const struct mqtt_parser server5 = {.version = MQTT_V5, .role = MQTT_ROLE_SERVER};

static struct mqtt_bin bin(const char *s)
{
    return (struct mqtt_bin){.ptr = (const uint8_t *)s, .len = (uint16_t)strlen(s)};
}

static void assert_bin(struct mqtt_bin b, const char *s)
{
    assert_int_equal(b.len, strlen(s));
    assert_memory_equal(b.ptr, s, b.len);
}

/* The smallest CONNECT of each version. */
static struct mqtt_packet connect_min(uint8_t version)
{
    struct mqtt_packet pkt = {.type = MQTT_CONNECT};
    pkt.u.connect.version = version;
    pkt.u.connect.clean_start = true;
    pkt.u.connect.keepalive_s = 60;
    pkt.u.connect.client_id = MQTT_STR("c1");
    return pkt;
}

/* The will, user name and password of the *_connect_full vectors. */
static struct mqtt_packet connect_full(uint8_t version, uint16_t keepalive_s, uint8_t will_qos)
{
    struct mqtt_packet pkt = {.type = MQTT_CONNECT};
    struct mqtt_connect *c = &pkt.u.connect;
    c->version = version;
    c->clean_start = true;
    c->keepalive_s = keepalive_s;
    c->client_id = MQTT_STR("cid");
    c->will_flag = true;
    c->will_qos = will_qos;
    c->will_retain = true;
    c->will_topic = MQTT_STR("w/t");
    c->will_payload = bin("bye");
    c->has_username = true;
    c->username = MQTT_STR("u");
    c->has_password = true;
    c->password = bin("pw");
    return pkt;
}

static void check_full(const struct mqtt_packet *pkt, uint8_t version, uint16_t keepalive_s,
                       uint8_t will_qos)
{
    const struct mqtt_connect *c = &pkt->u.connect;
    assert_int_equal(pkt->type, MQTT_CONNECT);
    assert_int_equal(c->version, version);
    assert_true(c->clean_start);
    assert_int_equal(c->keepalive_s, keepalive_s);
    pt_assert_str_equal(c->client_id, "cid");
    assert_true(c->will_flag);
    assert_int_equal(c->will_qos, will_qos);
    assert_true(c->will_retain);
    pt_assert_str_equal(c->will_topic, "w/t");
    assert_bin(c->will_payload, "bye");
    assert_true(c->has_username);
    pt_assert_str_equal(c->username, "u");
    assert_true(c->has_password);
    assert_bin(c->password, "pw");
}

/* MQTT 3.1 CONNECT: protocol name "MQIsdp", level 3. */
static void parse_v31_connect_min(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v31_connect_min", &pkt);
    assert_int_equal(pkt.type, MQTT_CONNECT);
    assert_int_equal(pkt.flags, 0);
    assert_int_equal(pkt.remaining_len, 16);
    assert_int_equal(pkt.u.connect.version, MQTT_V31);
    assert_true(pkt.u.connect.clean_start);
    assert_int_equal(pkt.u.connect.keepalive_s, 60);
    pt_assert_str_equal(pkt.u.connect.client_id, "c1");
    assert_false(pkt.u.connect.will_flag);
    assert_false(pkt.u.connect.has_username);
    assert_false(pkt.u.connect.has_password);
}

static void encode_v31_connect_min(void **state)
{
    struct mqtt_packet pkt = connect_min(MQTT_V31);
    (void)state;
    pt_encode_golden(&pkt, "v31_connect_min");
}

static void parse_v31_connect_full(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v31_connect_full", &pkt);
    check_full(&pkt, MQTT_V31, 60, 1);
}

static void encode_v31_connect_full(void **state)
{
    struct mqtt_packet pkt = connect_full(MQTT_V31, 60, 1);
    (void)state;
    pt_encode_golden(&pkt, "v31_connect_full");
}

static void parse_v311_connect_min(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v311_connect_min", &pkt);
    assert_int_equal(pkt.u.connect.version, MQTT_V311);
    assert_true(pkt.u.connect.clean_start);
    assert_int_equal(pkt.u.connect.keepalive_s, 60);
    pt_assert_str_equal(pkt.u.connect.client_id, "c1");
    assert_false(pkt.u.connect.will_flag);
}

static void encode_v311_connect_min(void **state)
{
    struct mqtt_packet pkt = connect_min(MQTT_V311);
    (void)state;
    pt_encode_golden(&pkt, "v311_connect_min");
}

/* A zero-length client identifier is allowed [MQTT-3.1.3-6]. */
static void parse_v311_connect_empty_client_id(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v311_connect_empty_id", &pkt);
    assert_int_equal(pkt.u.connect.client_id.len, 0);
    assert_int_equal(pkt.u.connect.keepalive_s, 0);
}

static void encode_v311_connect_empty_client_id(void **state)
{
    struct mqtt_packet pkt = connect_min(MQTT_V311);
    (void)state;
    pkt.u.connect.keepalive_s = 0;
    pkt.u.connect.client_id = MQTT_STR("");
    pt_encode_golden(&pkt, "v311_connect_empty_id");
}

/* Client identifier, will topic, will message, user name, password, in that order
 * [MQTT-3.1.3-1]. */
static void parse_v311_connect_full(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v311_connect_full", &pkt);
    check_full(&pkt, MQTT_V311, 10, 1);
}

static void encode_v311_connect_full(void **state)
{
    struct mqtt_packet pkt = connect_full(MQTT_V311, 10, 1);
    (void)state;
    pt_encode_golden(&pkt, "v311_connect_full");
}

static void parse_v5_connect_min(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_connect_min", &pkt);
    assert_int_equal(pkt.u.connect.version, MQTT_V5);
    assert_int_equal(pkt.props.present, 0);
    assert_int_equal(pkt.props.user_count, 0);
    pt_assert_str_equal(pkt.u.connect.client_id, "c1");
}

static void encode_v5_connect_min(void **state)
{
    struct mqtt_packet pkt = connect_min(MQTT_V5);
    (void)state;
    pt_encode_golden(&pkt, "v5_connect_min");
}

static const struct mqtt_user_prop user_kv[] = {{{"k", 1}, {"v", 1}}};
static const struct mqtt_user_prop user_ab[] = {{{"a", 1}, {"b", 1}}};

#define BIT(id) MQTT_PROP_BIT(MQTT_PROP_##id)

/* CONNECT properties and will properties, every field; the payload in the order client
 * identifier, will properties, will topic, will payload, user name, password [MQTT-3.1.3-1]. */
static void parse_v5_connect_full(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_connect_full", &pkt);
    check_full(&pkt, MQTT_V5, 30, 2);
    const struct mqtt_props *p = &pkt.props;
    assert_int_equal(p->present, BIT(SESSION_EXPIRY) | BIT(AUTH_METHOD) | BIT(AUTH_DATA) |
                                     BIT(REQUEST_PROBLEM_INFO) | BIT(REQUEST_RESPONSE_INFO) |
                                     BIT(RECEIVE_MAXIMUM) | BIT(TOPIC_ALIAS_MAXIMUM));
    assert_int_equal(p->session_expiry_s, 3600);
    pt_assert_str_equal(p->auth_method, "SCRAM");
    assert_int_equal(p->auth_data.len, 2);
    assert_int_equal(p->auth_data.ptr[0], 1);
    assert_int_equal(p->auth_data.ptr[1], 2);
    assert_int_equal(p->request_problem_info, 0);
    assert_int_equal(p->request_response_info, 1);
    assert_int_equal(p->receive_maximum, 20);
    assert_int_equal(p->topic_alias_maximum, 10);
    assert_int_equal(p->user_count, 1);
    assert_int_equal(p->raw_len, 35);

    const struct mqtt_props *w = &pkt.u.connect.will_props;
    assert_int_equal(w->present, BIT(PAYLOAD_FORMAT) | BIT(MESSAGE_EXPIRY) | BIT(CONTENT_TYPE) |
                                     BIT(RESPONSE_TOPIC) | BIT(CORRELATION_DATA) | BIT(WILL_DELAY));
    assert_int_equal(w->payload_format, 1);
    assert_int_equal(w->message_expiry_s, 60);
    pt_assert_str_equal(w->content_type, "text");
    pt_assert_str_equal(w->response_topic, "r/t");
    assert_int_equal(w->correlation_data.len, 2);
    assert_int_equal(w->correlation_data.ptr[0], 0xAB);
    assert_int_equal(w->will_delay_s, 5);
    assert_int_equal(w->user_count, 1);
    assert_int_equal(w->raw_len, 37);

    /* The user properties are read in order from raw. */
    const uint8_t *pos = w->raw;
    struct mqtt_prop prop;
    int n = 0;
    while (mqtt_prop_next(&pos, w->raw + w->raw_len, &prop) == 1) {
        if (prop.id != MQTT_PROP_USER_PROPERTY) continue;
        pt_assert_str_equal(prop.v.pair.key, "a");
        pt_assert_str_equal(prop.v.pair.value, "b");
        n++;
    }
    assert_int_equal(n, 1);
}

static void encode_v5_connect_full(void **state)
{
    static const uint8_t auth_data[] = {1, 2};
    static const uint8_t corr[] = {0xAB, 0xCD};
    struct mqtt_packet pkt = connect_full(MQTT_V5, 30, 2);
    (void)state;
    struct mqtt_props *p = &pkt.props;
    p->present = BIT(SESSION_EXPIRY) | BIT(AUTH_METHOD) | BIT(AUTH_DATA) |
                 BIT(REQUEST_PROBLEM_INFO) | BIT(REQUEST_RESPONSE_INFO) | BIT(RECEIVE_MAXIMUM) |
                 BIT(TOPIC_ALIAS_MAXIMUM);
    p->session_expiry_s = 3600;
    p->auth_method = MQTT_STR("SCRAM");
    p->auth_data = (struct mqtt_bin){auth_data, 2};
    p->request_problem_info = 0;
    p->request_response_info = 1;
    p->receive_maximum = 20;
    p->topic_alias_maximum = 10;
    p->user = user_kv;
    p->user_count = 1;
    struct mqtt_props *w = &pkt.u.connect.will_props;
    w->present = BIT(PAYLOAD_FORMAT) | BIT(MESSAGE_EXPIRY) | BIT(CONTENT_TYPE) |
                 BIT(RESPONSE_TOPIC) | BIT(CORRELATION_DATA) | BIT(WILL_DELAY);
    w->payload_format = 1;
    w->message_expiry_s = 60;
    w->content_type = MQTT_STR("text");
    w->response_topic = MQTT_STR("r/t");
    w->correlation_data = (struct mqtt_bin){corr, 2};
    w->will_delay_s = 5;
    w->user = user_ab;
    w->user_count = 1;
    assert_int_equal(mqtt_props_size(p), 35);
    assert_int_equal(mqtt_props_size(w), 37);
    pt_encode_golden(&pkt, "v5_connect_full");
}

/* MQTT 5 drops the rule that a password needs a user name (3.1.2.9). */
static void parse_v5_connect_password_without_username(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_connect_password_only", &pkt);
    assert_false(pkt.u.connect.has_username);
    assert_true(pkt.u.connect.has_password);
    assert_bin(pkt.u.connect.password, "pw");
}

static void encode_v5_connect_password_without_username(void **state)
{
    struct mqtt_packet pkt = connect_min(MQTT_V5);
    (void)state;
    pkt.u.connect.keepalive_s = 0;
    pkt.u.connect.client_id = MQTT_STR("c");
    pkt.u.connect.has_password = true;
    pkt.u.connect.password = bin("pw");
    pt_encode_golden(&pkt, "v5_connect_password_only");
}

/* The CONNECT's own level wins over the parser's version: a 3.1.1 parser reads a 5.0 CONNECT. */
static void parse_connect_uses_its_own_level(void **state)
{
    const struct pt_golden *g = pt_golden_get("v5_connect_full");
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_ok(&server311, g->wire, g->len, &pkt);
    assert_int_equal(pkt.u.connect.version, MQTT_V5);
    assert_int_equal(pkt.props.session_expiry_s, 3600);
}

/* ---- malformed ---- */

/* A protocol name other than "MQTT"/"MQIsdp" [MQTT-3.1.2-1]. */
static void parse_rejects_unknown_protocol_name(void **state)
{
    static const uint8_t w[] = {0x10, 0x0E, 0x00, 0x04, 'M',  'Q',  'T', 'X',
                                0x04, 0x02, 0x00, 0x3C, 0x00, 0x02, 'c', '1'};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_BAD_PROTOCOL_NAME);
}

/* A protocol level this codec does not know: CONNACK 0x84 / return code 1 [MQTT-3.1.2-2]. */
static void parse_rejects_unknown_protocol_level(void **state)
{
    static const uint8_t w[] = {0x10, 0x0E, MQTT, 0x06, 0x02, 0x00, 0x3C, 0x00, 0x02, 'c', '1'};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_BAD_PROTOCOL_VERSION);
    assert_int_equal(mqtt_error_reason(MQTT_ERR_BAD_PROTOCOL_VERSION),
                     MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION);
}

/* "MQIsdp" goes with level 3 only [MQTT-3.1.2-2]. */
static void parse_rejects_mqisdp_with_level_4(void **state)
{
    static const uint8_t w[] = {0x10, 0x10, MQISDP, 0x04, 0x02, 0x00, 0x3C, 0x00, 0x02, 'c', '1'};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_BAD_PROTOCOL_VERSION);
}

/* "MQTT" goes with levels 4 and 5 only [MQTT-3.1.2-2]. */
static void parse_rejects_mqtt_with_level_3(void **state)
{
    static const uint8_t w[] = {0x10, 0x0E, MQTT, 0x03, 0x02, 0x00, 0x3C, 0x00, 0x02, 'c', '1'};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_BAD_PROTOCOL_VERSION);
}

/* The reserved bit 0 of the connect flags must be 0 [MQTT-3.1.2-3]. */
static void parse_rejects_connect_reserved_flag(void **state)
{
    static const uint8_t w311[] = {0x10, 0x0E, MQTT, 0x04, 0x03, 0x00, 0x3C, 0x00, 0x02, 'c', '1'};
    static const uint8_t w5[] = {0x10, 0x0F, MQTT, 0x05, 0x03, 0x00,
                                 0x3C, 0x00, 0x00, 0x02, 'c',  '1'};
    (void)state;
    PT_BAD(&server311, w311, MQTT_ERR_CONNECT_RESERVED);
    PT_BAD(&server5, w5, MQTT_ERR_CONNECT_RESERVED);
}

/* The fixed-header flags of CONNECT are reserved, 0000 [MQTT-2.2.2-1] [MQTT-2.1.3-1]. */
static void parse_rejects_connect_fixed_header_flags(void **state)
{
    static const uint8_t w[] = {0x11, 0x0E, MQTT, 0x04, 0x02, 0x00, 0x3C, 0x00, 0x02, 'c', '1'};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_RESERVED_FLAGS);
}

/* Will QoS set without the will flag: 3.1.1 [MQTT-3.1.2-13], 5.0 [MQTT-3.1.2-11]. */
static void parse_rejects_will_qos_without_will(void **state)
{
    static const uint8_t w[] = {0x10, 0x0E, MQTT, 0x04, 0x0A, 0x00, 0x3C, 0x00, 0x02, 'c', '1'};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_WILL_FLAGS);
}

/* Will retain set without the will flag: 3.1.1 [MQTT-3.1.2-15], 5.0 [MQTT-3.1.2-13]. */
static void parse_rejects_will_retain_without_will(void **state)
{
    static const uint8_t w[] = {0x10, 0x0F, MQTT, 0x05, 0x22, 0x00,
                                0x3C, 0x00, 0x00, 0x02, 'c',  '1'};
    (void)state;
    PT_BAD(&server5, w, MQTT_ERR_WILL_FLAGS);
}

/* Will QoS 3: 3.1.1 [MQTT-3.1.2-14], 5.0 [MQTT-3.1.2-12]. */
static void parse_rejects_will_qos3(void **state)
{
    static const uint8_t w[] = {0x10, 0x16, MQTT, 0x04, 0x1E, 0x00, 0x3C, 0x00, 0x02, 'c',
                                '1',  0x00, 0x01, 't',  0x00, 0x03, 'b',  'y',  'e'};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_WILL_FLAGS);
}

/* 3.1.1: the password flag needs the user name flag [MQTT-3.1.2-22]. */
static void parse_rejects_v311_password_without_username(void **state)
{
    static const uint8_t w[] = {0x10, 0x12, MQTT, 0x04, 0x42, 0x00, 0x3C, 0x00,
                                0x02, 'c',  '1',  0x00, 0x02, 'p',  'w'};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_PASSWORD_WITHOUT_USER);
}

/* The client identifier is a UTF-8 string [MQTT-3.1.3-4] [MQTT-1.5.3-1]. */
static void parse_rejects_bad_utf8_client_id(void **state)
{
    static const uint8_t w[] = {0x10, 0x0E, MQTT, 0x04, 0x02, 0x00, 0x3C, 0x00, 0x02, 'c', 0xFF};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_BAD_UTF8);
}

/* The user name is a UTF-8 string without U+0000 [MQTT-3.1.3-11] [MQTT-1.5.3-2]. */
static void parse_rejects_nul_in_username(void **state)
{
    static const uint8_t w[] = {0x10, 0x13, MQTT, 0x04, 0x82, 0x00, 0x3C, 0x00,
                                0x02, 'c',  '1',  0x00, 0x03, 'u',  0x00, 'x'};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_UTF8_NULL);
}

/* The will topic is a topic name: no wildcards [MQTT-3.1.3-10] [MQTT-4.7.1-1]. */
static void parse_rejects_wildcard_will_topic(void **state)
{
    static const uint8_t w[] = {0x10, 0x16, MQTT, 0x04, 0x06, 0x00, 0x3C, 0x00, 0x02, 'c',
                                '1',  0x00, 0x01, '#',  0x00, 0x03, 'b',  'y',  'e'};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_TOPIC_WILDCARD);
}

/* The will flag promises a will topic and message: a packet that ends before is truncated
 * [MQTT-3.1.2-9]. */
static void parse_rejects_will_flag_without_will_fields(void **state)
{
    static const uint8_t w[] = {0x10, 0x0E, MQTT, 0x04, 0x06, 0x00, 0x3C, 0x00, 0x02, 'c', '1'};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_TRUNCATED);
}

/* The user name flag promises a user name: 3.1.1 [MQTT-3.1.2-19], 5.0 [MQTT-3.1.2-17]. */
static void parse_rejects_username_flag_without_username(void **state)
{
    static const uint8_t w[] = {0x10, 0x0E, MQTT, 0x04, 0x82, 0x00, 0x3C, 0x00, 0x02, 'c', '1'};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_TRUNCATED);
}

/* A user name present without its flag is a byte left over: 3.1.1 [MQTT-3.1.2-18], 5.0
 * [MQTT-3.1.2-16]. */
static void parse_rejects_connect_trailing_bytes(void **state)
{
    static const uint8_t w[] = {0x10, 0x11, MQTT, 0x04, 0x02, 0x00, 0x3C,
                                0x00, 0x02, 'c',  '1',  0x00, 0x01, 'u'};
    static const uint8_t w5[] = {0x10, 0x12, MQTT, 0x05, 0x02, 0x00, 0x3C, 0x00,
                                 0x00, 0x02, 'c',  '1',  0x00, 0x01, 'u'};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_TRAILING_BYTES);
    PT_BAD(&server5, w5, MQTT_ERR_TRAILING_BYTES);
}

/* A password present without its flag is left over: 3.1.1 [MQTT-3.1.2-20], 5.0
 * [MQTT-3.1.2-18]. */
static void parse_rejects_password_without_password_flag(void **state)
{
    static const uint8_t w[] = {0x10, 0x14, MQTT, 0x04, 0x82, 0x00, 0x3C, 0x00, 0x02,
                                'c',  '1',  0x00, 0x01, 'u',  0x00, 0x01, 'p'};
    static const uint8_t w5[] = {0x10, 0x15, MQTT, 0x05, 0x82, 0x00, 0x3C, 0x00, 0x00,
                                 0x02, 'c',  '1',  0x00, 0x01, 'u',  0x00, 0x01, 'p'};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_TRAILING_BYTES);
    PT_BAD(&server5, w5, MQTT_ERR_TRAILING_BYTES);
}

/* Without the will flag there is no will topic or will message in the payload (3.1.1
 * [MQTT-3.1.2-11]): those bytes are left over. */
static void parse_rejects_will_fields_without_will_flag(void **state)
{
    static const uint8_t w[] = {0x10, 0x14, MQTT, 0x04, 0x02, 0x00, 0x3C, 0x00, 0x02,
                                'c',  '1',  0x00, 0x01, 'w',  0x00, 0x01, 'm'};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_TRAILING_BYTES);
}

/* The client identifier is present, the first field of the payload [MQTT-3.1.3-3]: a CONNECT
 * that ends before it is truncated. */
static void parse_rejects_connect_without_client_id(void **state)
{
    static const uint8_t w[] = {0x10, 0x0A, MQTT, 0x04, 0x02, 0x00, 0x3C};
    static const uint8_t w5[] = {0x10, 0x0B, MQTT, 0x05, 0x02, 0x00, 0x3C, 0x00};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_TRUNCATED);
    PT_BAD(&server5, w5, MQTT_ERR_TRUNCATED);
}

/* Client identifiers of 1 to 23 bytes of 0-9, a-z and A-Z are accepted [MQTT-3.1.3-5] (the same
 * number in 3.1.1 and 5.0), in every version. */
static void parse_accepts_23_byte_alphanumeric_client_ids(void **state)
{
    static const char *ids[] = {"0", "0123456789abcdefghijklm", "nopqrstuvwxyzABCDEFGHIJ",
                                "KLMNOPQRSTUVWXYZ0123456"};
    uint8_t out[64];
    (void)state;
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
        for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
            struct mqtt_packet pkt = connect_min(v), back;
            pkt.u.connect.client_id = MQTT_STR(ids[i]);
            size_t n = mqtt_encode(&pkt, v, out, sizeof out);
            assert_true(n > 0);
            const struct mqtt_parser server = {.version = v, .role = MQTT_ROLE_SERVER};
            pt_parse_ok(&server, out, n, &back);
            pt_assert_str_equal(back.u.connect.client_id, ids[i]);
        }
    }
}

/* 5.0: the user name is a UTF-8 string [MQTT-3.1.3-12] [MQTT-1.5.4-2], and so is the will
 * topic [MQTT-3.1.3-11], a topic name without wildcards [MQTT-4.7.0-1]. */
static void parse_rejects_v5_bad_username_and_will_topic(void **state)
{
    static const uint8_t user[] = {0x10, 0x14, MQTT, 0x05, 0x82, 0x00, 0x3C, 0x00, 0x00,
                                   0x02, 'c',  '1',  0x00, 0x03, 'u',  0x00, 'x'};
    static const uint8_t will[] = {0x10, 0x18, MQTT, 0x05, 0x06, 0x00, 0x3C, 0x00, 0x00, 0x02, 'c',
                                   '1',  0x00, 0x00, 0x01, '+',  0x00, 0x03, 'b',  'y',  'e'};
    static const uint8_t will_utf8[] = {0x10, 0x19, MQTT, 0x05, 0x06, 0x00, 0x3C, 0x00,
                                        0x00, 0x02, 'c',  '1',  0x00, 0x00, 0x02, 0xC0,
                                        0x80, 0x00, 0x03, 'b',  'y',  'e'};
    (void)state;
    PT_BAD(&server5, user, MQTT_ERR_UTF8_NULL);
    PT_BAD(&server5, will, MQTT_ERR_TOPIC_WILDCARD);
    PT_BAD(&server5, will_utf8, MQTT_ERR_BAD_UTF8);
}

/* 3.1.1: the will topic is a UTF-8 string [MQTT-3.1.3-10] [MQTT-1.5.3-1]: overlong C0 80. */
static void parse_rejects_v311_bad_utf8_will_topic(void **state)
{
    static const uint8_t w[] = {0x10, 0x17, MQTT, 0x04, 0x06, 0x00, 0x3C, 0x00, 0x02, 'c',
                                '1',  0x00, 0x02, 0xC0, 0x80, 0x00, 0x03, 'b',  'y',  'e'};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_BAD_UTF8);
}

/* The server validates the whole CONNECT before accepting it [MQTT-3.1.4-1] (3.1.1 and 5.0).
 * In 5.0 it may say why in a CONNACK before closing: every reason a CONNECT is refused with is
 * a Connect Reason Code [MQTT-3.2.2-8], so the CONNACK encodes. */
static void parse_connect_errors_are_connack_reasons(void **state)
{
    static const uint8_t reserved[] = {0x10, 0x0F, MQTT, 0x05, 0x03, 0x00,
                                       0x3C, 0x00, 0x00, 0x02, 'c',  '1'};
    static const uint8_t name[] = {0x10, 0x0F, 0x00, 0x04, 'M',  'Q',  'T', 'X', 0x05,
                                   0x02, 0x00, 0x3C, 0x00, 0x00, 0x02, 'c', '1'};
    static const uint8_t level[] = {0x10, 0x0F, MQTT, 0x06, 0x02, 0x00,
                                    0x3C, 0x00, 0x00, 0x02, 'c',  '1'};
    static const uint8_t will_qos3[] = {0x10, 0x0F, MQTT, 0x05, 0x1E, 0x00,
                                        0x3C, 0x00, 0x00, 0x02, 'c',  '1'};
    static const uint8_t dup_prop[] = {0x10, 0x15, MQTT, 0x05, 0x02, 0x00, 0x3C, 0x06, 0x21,
                                       0x00, 0x01, 0x21, 0x00, 0x01, 0x00, 0x02, 'c',  '1'};
    static const uint8_t utf8[] = {0x10, 0x0F, MQTT, 0x05, 0x02, 0x00,
                                   0x3C, 0x00, 0x00, 0x02, 'c',  0xFF};
    static const uint8_t trailing[] = {0x10, 0x10, MQTT, 0x05, 0x02, 0x00, 0x3C,
                                       0x00, 0x00, 0x02, 'c',  '1',  'x'};
    static const struct {
        const uint8_t *w;
        size_t n;
        enum mqtt_error err;
    } bad[] = {
        {reserved, sizeof reserved, MQTT_ERR_CONNECT_RESERVED},
        {name, sizeof name, MQTT_ERR_BAD_PROTOCOL_NAME},
        {level, sizeof level, MQTT_ERR_BAD_PROTOCOL_VERSION},
        {will_qos3, sizeof will_qos3, MQTT_ERR_WILL_FLAGS},
        {dup_prop, sizeof dup_prop, MQTT_ERR_PROP_DUPLICATE},
        {utf8, sizeof utf8, MQTT_ERR_BAD_UTF8},
        {trailing, sizeof trailing, MQTT_ERR_TRAILING_BYTES},
    };
    uint8_t out[16];
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct mqtt_packet pkt;
        pt_parse_bad(&server5, bad[i].w, bad[i].n, bad[i].err);
        assert_int_equal(mqtt_parse(&server5, bad[i].w, bad[i].n, &pkt, NULL), MQTT_PARSE_BAD);
        assert_true(pkt.reason >= 0x80);
        struct mqtt_packet ack = {.type = MQTT_CONNACK};
        ack.u.connack.reason = pkt.reason;
        assert_int_equal(mqtt_encode(&ack, MQTT_V5, out, sizeof out), 5);
    }
}

/* A CONNECT that stops in the middle of its variable header. */
static void parse_rejects_connect_truncated_header(void **state)
{
    static const uint8_t w[] = {0x10, 0x07, MQTT, 0x04};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_TRUNCATED);
}

/* A client never receives a CONNECT. */
static void parse_client_rejects_connect(void **state)
{
    static const struct mqtt_parser client = {.version = MQTT_V311, .role = MQTT_ROLE_CLIENT};
    const struct pt_golden *g = pt_golden_get("v311_connect_min");
    (void)state;
    pt_parse_bad(&client, g->wire, g->len, MQTT_ERR_UNEXPECTED);
}

/* A Topic Alias is not a CONNECT property (MQTT 5 2.2.2.2: malformed). */
static void parse_rejects_connect_property_not_allowed(void **state)
{
    static const uint8_t w[] = {0x10, 0x12, MQTT, 0x05, 0x02, 0x00, 0x3C, 0x03,
                                0x23, 0x00, 0x01, 0x00, 0x02, 'c',  '1'};
    (void)state;
    PT_BAD(&server5, w, MQTT_ERR_PROP_NOT_ALLOWED);
}

/* Session Expiry Interval twice is a protocol error (MQTT 5 3.1.2.11.2). */
static void parse_rejects_duplicate_session_expiry(void **state)
{
    static const uint8_t w[] = {0x10, 0x19, MQTT, 0x05, 0x02, 0x00, 0x3C, 0x0A, 0x11, 0x00, 0x00,
                                0x00, 0x01, 0x11, 0x00, 0x00, 0x00, 0x02, 0x00, 0x02, 'c',  '1'};
    (void)state;
    PT_BAD(&server5, w, MQTT_ERR_PROP_DUPLICATE);
    assert_int_equal(mqtt_error_reason(MQTT_ERR_PROP_DUPLICATE), MQTT_RC_PROTOCOL_ERROR);
}

/* Receive Maximum 0 is a protocol error (MQTT 5 3.1.2.11.3). */
static void parse_rejects_receive_maximum_zero(void **state)
{
    static const uint8_t w[] = {0x10, 0x12, MQTT, 0x05, 0x02, 0x00, 0x3C, 0x03,
                                0x21, 0x00, 0x00, 0x00, 0x02, 'c',  '1'};
    (void)state;
    PT_BAD(&server5, w, MQTT_ERR_PROP_VALUE);
}

/* Maximum Packet Size 0 is a protocol error (MQTT 5 3.1.2.11.4). */
static void parse_rejects_maximum_packet_size_zero(void **state)
{
    static const uint8_t w[] = {0x10, 0x14, MQTT, 0x05, 0x02, 0x00, 0x3C, 0x05, 0x27,
                                0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 'c',  '1'};
    (void)state;
    PT_BAD(&server5, w, MQTT_ERR_PROP_VALUE);
}

/* Request Problem Information other than 0/1 is a protocol error (MQTT 5 3.1.2.11.7). */
static void parse_rejects_request_problem_info_2(void **state)
{
    static const uint8_t w[] = {0x10, 0x11, MQTT, 0x05, 0x02, 0x00, 0x3C,
                                0x02, 0x17, 0x02, 0x00, 0x02, 'c',  '1'};
    (void)state;
    PT_BAD(&server5, w, MQTT_ERR_PROP_VALUE);
}

/* Request Response Information other than 0/1 is a protocol error (MQTT 5 3.1.2.11.6). */
static void parse_rejects_request_response_info_2(void **state)
{
    static const uint8_t w[] = {0x10, 0x11, MQTT, 0x05, 0x02, 0x00, 0x3C,
                                0x02, 0x19, 0x02, 0x00, 0x02, 'c',  '1'};
    (void)state;
    PT_BAD(&server5, w, MQTT_ERR_PROP_VALUE);
}

/* An identifier the spec does not define is malformed (MQTT 5 2.2.2.2). */
static void parse_rejects_unknown_property(void **state)
{
    static const uint8_t w[] = {0x10, 0x11, MQTT, 0x05, 0x02, 0x00, 0x3C,
                                0x02, 0x05, 0x00, 0x00, 0x02, 'c',  '1'};
    (void)state;
    PT_BAD(&server5, w, MQTT_ERR_PROP_UNKNOWN);
    assert_int_equal(mqtt_error_reason(MQTT_ERR_PROP_UNKNOWN), MQTT_RC_MALFORMED_PACKET);
}

/* Session Expiry is a CONNECT property, not a will property (MQTT 5 3.1.3.2). */
static void parse_rejects_will_property_not_allowed(void **state)
{
    static const uint8_t w[] = {0x10, 0x1B, MQTT, 0x05, 0x06, 0x00, 0x3C, 0x00,
                                0x00, 0x02, 'c',  '1',  0x05, 0x11, 0x00, 0x00,
                                0x00, 0x01, 0x00, 0x01, 't',  0x00, 0x01, 'm'};
    (void)state;
    PT_BAD(&server5, w, MQTT_ERR_PROP_NOT_ALLOWED);
}

/* Payload Format Indicator is 0 or 1 (MQTT 5 3.1.3.2.3). */
static void parse_rejects_will_payload_format_2(void **state)
{
    static const uint8_t w[] = {0x10, 0x18, MQTT, 0x05, 0x06, 0x00, 0x3C, 0x00, 0x00, 0x02, 'c',
                                '1',  0x02, 0x01, 0x02, 0x00, 0x01, 't',  0x00, 0x01, 'm'};
    (void)state;
    PT_BAD(&server5, w, MQTT_ERR_PROP_VALUE);
}

/* A property length running past the packet is truncated. */
static void parse_rejects_property_length_past_end(void **state)
{
    static const uint8_t w[] = {0x10, 0x0F, MQTT, 0x05, 0x02, 0x00,
                                0x3C, 0x20, 0x00, 0x02, 'c',  '1'};
    (void)state;
    PT_BAD(&server5, w, MQTT_ERR_TRUNCATED);
}

/* The user property key and value are UTF-8 strings [MQTT-1.5.7-1]. */
static void parse_rejects_bad_utf8_user_property(void **state)
{
    static const uint8_t w[] = {0x10, 0x16, MQTT, 0x05, 0x02, 0x00, 0x3C, 0x07, 0x26, 0x00,
                                0x01, 'k',  0x00, 0x01, 0xC0, 0x00, 0x02, 'c',  '1'};
    (void)state;
    PT_BAD(&server5, w, MQTT_ERR_BAD_UTF8);
}

/* The password flag promises a password: 3.1.1 [MQTT-3.1.2-21], 5.0 [MQTT-3.1.2-19]. */
static void parse_rejects_password_flag_without_password(void **state)
{
    static const uint8_t w[] = {0x10, 0x11, MQTT, 0x04, 0xC2, 0x00, 0x3C,
                                0x00, 0x02, 'c',  '1',  0x00, 0x01, 'u'};
    (void)state;
    PT_BAD(&server311, w, MQTT_ERR_TRUNCATED);
}

/* Authentication Data without an Authentication Method is a protocol error (3.1.2.11.10). */
static void parse_rejects_auth_data_without_method(void **state)
{
    static const uint8_t w[] = {0x10, 0x13, MQTT, 0x05, 0x02, 0x00, 0x3C, 0x04,
                                0x16, 0x00, 0x01, 0xAA, 0x00, 0x02, 'c',  '1'};
    struct mqtt_packet pkt;
    (void)state;
    assert_int_equal(mqtt_parse(&server5, w, sizeof w, &pkt, NULL), MQTT_PARSE_BAD);
    assert_int_equal(pkt.reason, MQTT_RC_PROTOCOL_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_v31_connect_min),
        cmocka_unit_test(encode_v31_connect_min),
        cmocka_unit_test(parse_v31_connect_full),
        cmocka_unit_test(encode_v31_connect_full),
        cmocka_unit_test(parse_v311_connect_min),
        cmocka_unit_test(encode_v311_connect_min),
        cmocka_unit_test(parse_v311_connect_empty_client_id),
        cmocka_unit_test(encode_v311_connect_empty_client_id),
        cmocka_unit_test(parse_v311_connect_full),
        cmocka_unit_test(encode_v311_connect_full),
        cmocka_unit_test(parse_v5_connect_min),
        cmocka_unit_test(encode_v5_connect_min),
        cmocka_unit_test(parse_v5_connect_full),
        cmocka_unit_test(encode_v5_connect_full),
        cmocka_unit_test(parse_v5_connect_password_without_username),
        cmocka_unit_test(encode_v5_connect_password_without_username),
        cmocka_unit_test(parse_connect_uses_its_own_level),
        cmocka_unit_test(parse_rejects_unknown_protocol_name),
        cmocka_unit_test(parse_rejects_unknown_protocol_level),
        cmocka_unit_test(parse_rejects_mqisdp_with_level_4),
        cmocka_unit_test(parse_rejects_mqtt_with_level_3),
        cmocka_unit_test(parse_rejects_connect_reserved_flag),
        cmocka_unit_test(parse_rejects_connect_fixed_header_flags),
        cmocka_unit_test(parse_rejects_will_qos_without_will),
        cmocka_unit_test(parse_rejects_will_retain_without_will),
        cmocka_unit_test(parse_rejects_will_qos3),
        cmocka_unit_test(parse_rejects_v311_password_without_username),
        cmocka_unit_test(parse_rejects_bad_utf8_client_id),
        cmocka_unit_test(parse_rejects_nul_in_username),
        cmocka_unit_test(parse_rejects_wildcard_will_topic),
        cmocka_unit_test(parse_rejects_will_flag_without_will_fields),
        cmocka_unit_test(parse_rejects_username_flag_without_username),
        cmocka_unit_test(parse_rejects_connect_trailing_bytes),
        cmocka_unit_test(parse_rejects_password_without_password_flag),
        cmocka_unit_test(parse_rejects_will_fields_without_will_flag),
        cmocka_unit_test(parse_rejects_connect_without_client_id),
        cmocka_unit_test(parse_accepts_23_byte_alphanumeric_client_ids),
        cmocka_unit_test(parse_rejects_v5_bad_username_and_will_topic),
        cmocka_unit_test(parse_rejects_v311_bad_utf8_will_topic),
        cmocka_unit_test(parse_connect_errors_are_connack_reasons),
        cmocka_unit_test(parse_rejects_connect_truncated_header),
        cmocka_unit_test(parse_client_rejects_connect),
        cmocka_unit_test(parse_rejects_connect_property_not_allowed),
        cmocka_unit_test(parse_rejects_duplicate_session_expiry),
        cmocka_unit_test(parse_rejects_receive_maximum_zero),
        cmocka_unit_test(parse_rejects_maximum_packet_size_zero),
        cmocka_unit_test(parse_rejects_request_problem_info_2),
        cmocka_unit_test(parse_rejects_request_response_info_2),
        cmocka_unit_test(parse_rejects_unknown_property),
        cmocka_unit_test(parse_rejects_will_property_not_allowed),
        cmocka_unit_test(parse_rejects_will_payload_format_2),
        cmocka_unit_test(parse_rejects_property_length_past_end),
        cmocka_unit_test(parse_rejects_bad_utf8_user_property),
        cmocka_unit_test(parse_rejects_password_flag_without_password),
        cmocka_unit_test(parse_rejects_auth_data_without_method),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
