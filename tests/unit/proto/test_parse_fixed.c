/* The fixed header: packet types, remaining length, maximum packet size, partial input. */
#include "proto_test.h"

/* Packet type 0 is reserved (2.1.2). */
static void parse_rejects_packet_type_0(void **state)
{
    static const uint8_t w[] = {0x00, 0x00};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_RESERVED_TYPE);
    PT_BAD(&pt_v5, w, MQTT_ERR_RESERVED_TYPE);
    assert_int_equal(mqtt_error_reason(MQTT_ERR_RESERVED_TYPE), MQTT_RC_MALFORMED_PACKET);
}

/* A remaining length of five bytes is malformed (2.2.3 / 1.5.5). */
static void parse_rejects_five_byte_remaining_length(void **state)
{
    static const uint8_t w[] = {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_BAD_VARINT);
    PT_BAD(&pt_v5, w, MQTT_ERR_BAD_VARINT);
    assert_int_equal(mqtt_error_reason(MQTT_ERR_BAD_VARINT), MQTT_RC_MALFORMED_PACKET);
}

/* A fifth continuation byte is rejected before it arrives whole: four bytes with the
 * continuation bit set cannot start a valid length. */
static void parse_rejects_fourth_continuation_bit(void **state)
{
    static const uint8_t w[] = {0x30, 0x80, 0x80, 0x80, 0x80};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_BAD_VARINT);
}

/* The encoded value must use the minimum number of bytes [MQTT-1.5.5-1]: 80 00 is 0. */
static void parse_rejects_overlong_remaining_length(void **state)
{
    static const uint8_t zero[] = {0xC0, 0x80, 0x00};
    static const uint8_t two[] = {0x40, 0x82, 0x80, 0x00, 0x00, 0x01};
    (void)state;
    PT_BAD(&pt_v311, zero, MQTT_ERR_BAD_VARINT);
    PT_BAD(&pt_v5, two, MQTT_ERR_BAD_VARINT);
}

/* The largest remaining length, 268,435,455, is accepted from the header alone and the
 * parser asks for the whole packet. */
static void parse_announces_largest_packet(void **state)
{
    static const uint8_t w[] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};
    struct mqtt_packet pkt;
    size_t need = 0;
    (void)state;
    assert_int_equal(mqtt_parse(&pt_v311, w, sizeof w, &pkt, &need), MQTT_PARSE_MORE);
    assert_int_equal(need, 5 + (size_t)MQTT_VARINT_MAX);
}

/* The maximum packet size is enforced from the fixed header alone, before the body
 * (3.1.2.11.4; [MQTT-3.2.2-15] on the client side). */
static void parse_rejects_too_large_from_fixed_header(void **state)
{
    static const struct mqtt_parser p = {.version = MQTT_V5, .max_packet_size = 1000};
    static const uint8_t huge[] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};
    static const uint8_t just_over[] = {0x30, 0xE7, 0x07}; /* 3 + 999 = 1002 */
    (void)state;
    PT_BAD(&p, huge, MQTT_ERR_TOO_LARGE);
    PT_BAD(&p, just_over, MQTT_ERR_TOO_LARGE);
    assert_int_equal(mqtt_error_reason(MQTT_ERR_TOO_LARGE), MQTT_RC_PACKET_TOO_LARGE);
}

/* The limit counts the whole packet, fixed header included: exactly the limit is fine. */
static void parse_accepts_packet_of_exactly_max_size(void **state)
{
    static const struct mqtt_parser p = {.version = MQTT_V311, .max_packet_size = 100};
    uint8_t w[101] = {0x30, 98, 0x00, 0x01, 't'};
    struct mqtt_packet pkt;
    size_t need = 0;
    (void)state;
    memset(w + 5, 'x', sizeof w - 5);
    assert_int_equal(mqtt_parse(&p, w, 2, &pkt, &need), MQTT_PARSE_MORE);
    assert_int_equal(need, 100);
    pt_parse_ok(&p, w, 100, &pkt);
    assert_int_equal(pkt.u.publish.payload_len, 95);
    w[1] = 99;
    pt_parse_bad(&p, w, 2, MQTT_ERR_TOO_LARGE);
}

/* Nothing, or only part of the remaining length, is MORE with need 0. */
static void parse_partial_fixed_header_needs_more(void **state)
{
    static const uint8_t w[] = {0x30, 0x80, 0x01};
    struct mqtt_packet pkt;
    size_t need = 99;
    (void)state;
    assert_int_equal(mqtt_parse(&pt_v311, w, 0, &pkt, &need), MQTT_PARSE_MORE);
    assert_int_equal(need, 0);
    need = 99;
    assert_int_equal(mqtt_parse(&pt_v311, w, 1, &pkt, &need), MQTT_PARSE_MORE);
    assert_int_equal(need, 0);
    need = 99;
    assert_int_equal(mqtt_parse(&pt_v311, w, 2, &pkt, &need), MQTT_PARSE_MORE);
    assert_int_equal(need, 0);
    assert_int_equal(mqtt_parse(&pt_v311, w, 3, &pkt, &need), MQTT_PARSE_MORE);
    assert_int_equal(need, 3 + 128);
}

/* Bytes after a whole packet belong to the next one: wire_len says where it ends. */
static void parse_stops_at_packet_end(void **state)
{
    static const uint8_t w[] = {0xC0, 0x00, 0xE0, 0x00};
    struct mqtt_packet pkt;
    (void)state;
    assert_int_equal(mqtt_parse(&pt_v311, w, sizeof w, &pkt, NULL), MQTT_PARSE_DONE);
    assert_int_equal(pkt.type, MQTT_PINGREQ);
    assert_int_equal(pkt.wire_len, 2);
    assert_int_equal(mqtt_parse(&pt_v311, w + 2, 2, &pkt, NULL), MQTT_PARSE_DONE);
    assert_int_equal(pkt.type, MQTT_DISCONNECT);
}

/* Every reserved flag nibble of every fixed-flag packet type is rejected [MQTT-2.2.2-1]
 * [MQTT-2.2.2-2] (5.0 [MQTT-2.1.3-1]): for each type, all 15 wrong nibbles. */
static void parse_rejects_every_wrong_flag_nibble(void **state)
{
    (void)state;
    for (uint8_t type = MQTT_CONNECT; type <= MQTT_AUTH; type++) {
        if (type == MQTT_PUBLISH) continue;
        uint8_t want =
            (type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE) ? 2 : 0;
        for (uint8_t flags = 0; flags < 16; flags++) {
            if (flags == want) continue;
            uint8_t w[] = {(uint8_t)(type << 4 | flags), 0x00};
            struct mqtt_packet pkt;
            assert_int_equal(mqtt_parse(&pt_v5, w, sizeof w, &pkt, NULL), MQTT_PARSE_BAD);
            if (pkt.error != MQTT_ERR_RESERVED_FLAGS)
                fail_msg("type %u flags %x: error %d", type, flags, (int)pkt.error);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_rejects_packet_type_0),
        cmocka_unit_test(parse_rejects_five_byte_remaining_length),
        cmocka_unit_test(parse_rejects_fourth_continuation_bit),
        cmocka_unit_test(parse_rejects_overlong_remaining_length),
        cmocka_unit_test(parse_announces_largest_packet),
        cmocka_unit_test(parse_rejects_too_large_from_fixed_header),
        cmocka_unit_test(parse_accepts_packet_of_exactly_max_size),
        cmocka_unit_test(parse_partial_fixed_header_needs_more),
        cmocka_unit_test(parse_stops_at_packet_end),
        cmocka_unit_test(parse_rejects_every_wrong_flag_nibble),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
