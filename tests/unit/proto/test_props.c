/* MQTT 5 properties: reading blocks with mqtt_prop_next(), user properties (repeatable, order
 * kept), sizes, pass-through of decoded blocks, and malformed blocks (2.2.2). */
#include "proto_test.h"

#define BIT(id) MQTT_PROP_BIT(MQTT_PROP_##id)

/* A block of every data type: byte, two and four byte integers, variable byte integer,
 * string, binary and string pair. */
static void prop_next_reads_every_type(void **state)
{
    static const uint8_t block[] = {
        0x01, 0x01,                                   /* payload format: byte */
        0x23, 0x01, 0x02,                             /* topic alias: two bytes */
        0x02, 0x00, 0x01, 0x00, 0x00,                 /* message expiry: four bytes */
        0x0B, 0xFF, 0xFF, 0xFF, 0x7F,                 /* subscription id: varint */
        0x03, 0x00, 0x02, 'c',  't',                  /* content type: string */
        0x09, 0x00, 0x03, 0x00, 0xFF, 0x10,           /* correlation data: binary */
        0x26, 0x00, 0x01, 'k',  0x00, 0x02, 'v', 'w', /* user property: pair */
    };
    const uint8_t *pos = block, *end = block + sizeof block;
    struct mqtt_prop p;
    (void)state;
    assert_int_equal(mqtt_prop_next(&pos, end, &p), 1);
    assert_int_equal(p.id, MQTT_PROP_PAYLOAD_FORMAT);
    assert_int_equal(p.v.u32, 1);
    assert_int_equal(mqtt_prop_next(&pos, end, &p), 1);
    assert_int_equal(p.id, MQTT_PROP_TOPIC_ALIAS);
    assert_int_equal(p.v.u32, 0x0102);
    assert_int_equal(mqtt_prop_next(&pos, end, &p), 1);
    assert_int_equal(p.id, MQTT_PROP_MESSAGE_EXPIRY);
    assert_int_equal(p.v.u32, 0x00010000);
    assert_int_equal(mqtt_prop_next(&pos, end, &p), 1);
    assert_int_equal(p.id, MQTT_PROP_SUBSCRIPTION_ID);
    assert_int_equal(p.v.u32, MQTT_VARINT_MAX);
    assert_int_equal(mqtt_prop_next(&pos, end, &p), 1);
    assert_int_equal(p.id, MQTT_PROP_CONTENT_TYPE);
    pt_assert_str_equal(p.v.str, "ct");
    assert_int_equal(mqtt_prop_next(&pos, end, &p), 1);
    assert_int_equal(p.id, MQTT_PROP_CORRELATION_DATA);
    assert_int_equal(p.v.bin.len, 3);
    assert_int_equal(p.v.bin.ptr[1], 0xFF);
    assert_int_equal(mqtt_prop_next(&pos, end, &p), 1);
    assert_int_equal(p.id, MQTT_PROP_USER_PROPERTY);
    pt_assert_str_equal(p.v.pair.key, "k");
    pt_assert_str_equal(p.v.pair.value, "vw");
    assert_int_equal(mqtt_prop_next(&pos, end, &p), 0);
    assert_ptr_equal(pos, end);
}

/* mqtt_prop_next() reports a block cut inside a property. */
static void prop_next_rejects_truncated_block(void **state)
{
    static const uint8_t block[] = {0x02, 0x00, 0x01};
    static const uint8_t unknown[] = {0x7F, 0x00};
    const uint8_t *pos = block;
    struct mqtt_prop p;
    (void)state;
    assert_int_equal(mqtt_prop_next(&pos, block + sizeof block, &p), -1);
    pos = unknown;
    assert_int_equal(mqtt_prop_next(&pos, unknown + sizeof unknown, &p), -1);
}

/* User properties may repeat, also with the same key, and keep their order (3.3.2.3.7). */
static void user_properties_repeat_in_order(void **state)
{
    static const uint8_t w[] = {0x30, 0x19, 0x00, 0x01, 't',  0x14, 0x26, 0x00, 0x01,
                                'k',  0x00, 0x01, '1',  0x26, 0x00, 0x01, 'k',  0x00,
                                0x01, '2',  0x26, 0x00, 0x01, 'a',  0x00, 0x00, 'x'};
    static const char *const keys[] = {"k", "k", "a"};
    static const char *const values[] = {"1", "2", ""};
    struct mqtt_packet pkt;
    (void)state;
    PT_OK(&pt_v5, w, &pkt);
    assert_int_equal(pkt.props.user_count, 3);
    const uint8_t *pos = pkt.props.raw;
    struct mqtt_prop p;
    int n = 0;
    while (mqtt_prop_next(&pos, pkt.props.raw + pkt.props.raw_len, &p) == 1) {
        assert_int_equal(p.id, MQTT_PROP_USER_PROPERTY);
        pt_assert_str_equal(p.v.pair.key, keys[n]);
        pt_assert_str_equal(p.v.pair.value, values[n]);
        n++;
    }
    assert_int_equal(n, 3);
    pt_encode_eq(&pkt, MQTT_V5, w, sizeof w);
}

/* The will's User Properties keep their order through decoding and re-encoding, the codec's
 * part of publishing the will with them in order [MQTT-3.1.3-10]. */
static void will_user_properties_keep_order(void **state)
{
    static const struct mqtt_user_prop users[] = {
        {{"b", 1}, {"1", 1}}, {{"a", 1}, {"2", 1}}, {{"b", 1}, {"3", 1}}};
    uint8_t out[96], again[96];
    (void)state;
    struct mqtt_packet pkt = {.type = MQTT_CONNECT}, back;
    pkt.u.connect.client_id = MQTT_STR("c");
    pkt.u.connect.will_flag = true;
    pkt.u.connect.will_topic = MQTT_STR("w");
    pkt.u.connect.will_props.user = users;
    pkt.u.connect.will_props.user_count = 3;
    size_t n = mqtt_encode(&pkt, MQTT_V5, out, sizeof out);
    assert_true(n > 0);
    pt_parse_ok(&pt_v5, out, n, &back);
    const struct mqtt_props *wp = &back.u.connect.will_props;
    assert_int_equal(wp->user_count, 3);
    const uint8_t *pos = wp->raw;
    struct mqtt_prop p;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mqtt_prop_next(&pos, wp->raw + wp->raw_len, &p), 1);
        assert_memory_equal(p.v.pair.key.ptr, users[i].key.ptr, 1);
        assert_memory_equal(p.v.pair.value.ptr, users[i].value.ptr, 1);
    }
    assert_int_equal(mqtt_encode(&back, MQTT_V5, again, sizeof again), n);
    assert_memory_equal(again, out, n);
}

/* mqtt_props_size() counts every written byte of the block, user properties included. */
static void props_size_is_exact(void **state)
{
    static const struct mqtt_user_prop users[] = {{{"key", 3}, {"value", 5}}, {{"", 0}, {"", 0}}};
    struct mqtt_props p = {0};
    (void)state;
    assert_int_equal(mqtt_props_size(&p), 0);
    p.present = BIT(SESSION_EXPIRY);
    assert_int_equal(mqtt_props_size(&p), 5);
    p.present |= BIT(REASON_STRING);
    p.reason_string = MQTT_STR("abc");
    assert_int_equal(mqtt_props_size(&p), 5 + 6);
    p.user = users;
    p.user_count = 2;
    assert_int_equal(mqtt_props_size(&p), 5 + 6 + 13 + 5);
    p.sub_id = 300;
    p.sub_id_count = 1;
    assert_int_equal(mqtt_props_size(&p), 5 + 6 + 13 + 5 + 3);
}

/* A property block of 128 bytes or more has a two-byte length (2.2.2.1). */
static void long_property_block_has_varint_length(void **state)
{
    static char reason[200];
    static uint8_t out[512];
    struct mqtt_packet pkt = {.type = MQTT_PUBACK};
    struct mqtt_packet back;
    (void)state;
    memset(reason, 'r', sizeof reason);
    pkt.u.ack.packet_id = 1;
    pkt.u.ack.reason = MQTT_RC_UNSPECIFIED_ERROR;
    pkt.props.present = BIT(REASON_STRING);
    pkt.props.reason_string = (struct mqtt_str){reason, sizeof reason};
    size_t n = mqtt_encode(&pkt, MQTT_V5, out, sizeof out);
    assert_int_equal(n, 1 + 2 + 2 + 1 + 2 + 3 + 200);
    assert_int_equal(out[5], MQTT_RC_UNSPECIFIED_ERROR);
    assert_int_equal(out[6], 0x80 | (203 & 0x7F));
    assert_int_equal(out[7], 203 >> 7);
    pt_parse_ok(&pt_v5, out, n, &back);
    assert_int_equal(back.props.reason_string.len, 200);
}

/* A varint property with an overlong encoding is malformed [MQTT-1.5.5-1]. */
static void parse_rejects_overlong_sub_id(void **state)
{
    static const uint8_t w[] = {0x30, 0x08, 0x00, 0x01, 't', 0x03, 0x0B, 0x81, 0x00, 'x'};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_BAD_VARINT);
}

/* A property length whose varint is overlong is malformed [MQTT-1.5.5-1]. */
static void parse_rejects_overlong_property_length(void **state)
{
    static const uint8_t w[] = {0x40, 0x05, 0x00, 0x01, 0x00, 0x80, 0x00};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_BAD_VARINT);
}

/* A string property cut by the end of the block is truncated, even when the packet goes on. */
static void parse_rejects_property_past_block_end(void **state)
{
    static const uint8_t w[] = {0x30, 0x0A, 0x00, 0x01, 't', 0x03, 0x03, 0x00, 0x03, 'a', 'b', 'c'};
    struct mqtt_packet pkt;
    (void)state;
    assert_int_equal(mqtt_parse(&pt_v5, w, sizeof w, &pkt, NULL), MQTT_PARSE_BAD);
    assert_true(pkt.error == MQTT_ERR_TRUNCATED);
}

/* An identifier past the defined ones is malformed (2.2.2.2). */
static void parse_rejects_unknown_property_ids(void **state)
{
    static const uint8_t ids[] = {0x00, 0x04, 0x0A, 0x0C, 0x10, 0x14, 0x1B, 0x1D, 0x20, 0x2B, 0x7F};
    (void)state;
    for (size_t i = 0; i < sizeof ids; i++) {
        uint8_t w[] = {0x40, 0x06, 0x00, 0x01, 0x00, 0x02, ids[i], 0x00};
        pt_parse_bad(&pt_v5, w, sizeof w, MQTT_ERR_PROP_UNKNOWN);
    }
}

/* Wildcard/Subscription Identifier/Shared Subscription Available are 0 or 1 (3.2.2.3.11-13). */
static void parse_rejects_availability_flags_over_1(void **state)
{
    static const uint8_t ids[] = {0x28, 0x29, 0x2A};
    (void)state;
    for (size_t i = 0; i < sizeof ids; i++) {
        uint8_t w[] = {0x20, 0x05, 0x00, 0x00, 0x02, ids[i], 0x02};
        pt_parse_bad(&pt_v5, w, sizeof w, MQTT_ERR_PROP_VALUE);
    }
}

/* Properties are MQTT 5 only: a 3.1.1 encoder writes none of them. */
static void encode_v311_ignores_props(void **state)
{
    static const uint8_t want[] = {0x40, 0x02, 0x00, 0x05};
    struct mqtt_packet pkt = {.type = MQTT_PUBACK};
    (void)state;
    pkt.u.ack.packet_id = 5;
    pkt.props.present = BIT(REASON_STRING);
    pkt.props.reason_string = MQTT_STR("x");
    pt_encode_eq(&pkt, MQTT_V311, want, sizeof want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prop_next_reads_every_type),
        cmocka_unit_test(prop_next_rejects_truncated_block),
        cmocka_unit_test(user_properties_repeat_in_order),
        cmocka_unit_test(will_user_properties_keep_order),
        cmocka_unit_test(props_size_is_exact),
        cmocka_unit_test(long_property_block_has_varint_length),
        cmocka_unit_test(parse_rejects_overlong_sub_id),
        cmocka_unit_test(parse_rejects_overlong_property_length),
        cmocka_unit_test(parse_rejects_property_past_block_end),
        cmocka_unit_test(parse_rejects_unknown_property_ids),
        cmocka_unit_test(parse_rejects_availability_flags_over_1),
        cmocka_unit_test(encode_v311_ignores_props),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
