/* Reason codes: names, 3.x CONNACK return codes, and the reason code of each error kind. */
#include "proto_test.h"

static void reason_str_names_codes(void **state)
{
    (void)state;
    assert_string_equal(mqtt_reason_str(MQTT_RC_SUCCESS), "Success");
    assert_string_equal(mqtt_reason_str(MQTT_RC_MALFORMED_PACKET), "Malformed Packet");
    assert_string_equal(mqtt_reason_str(MQTT_RC_PROTOCOL_ERROR), "Protocol Error");
    assert_string_equal(mqtt_reason_str(MQTT_RC_PACKET_TOO_LARGE), "Packet too large");
    assert_string_equal(mqtt_reason_str(MQTT_RC_TOPIC_NAME_INVALID), "Topic Name invalid");
    assert_string_equal(mqtt_reason_str(0x03), "Unknown");
    assert_string_equal(mqtt_reason_str(0xFF), "Unknown");
    /* Every error code of the spec, 0x80 to 0xA2, has a name. */
    for (unsigned rc = 0x80; rc <= 0xA2; rc++)
        assert_string_not_equal(mqtt_reason_str((uint8_t)rc), "Unknown");
}

/* MQTT 5 CONNACK reasons map to the six 3.1.1 return codes (3.2.2.3). */
static void connack_v3_code_maps_reasons(void **state)
{
    (void)state;
    assert_int_equal(mqtt_connack_v3_code(MQTT_RC_SUCCESS), 0);
    assert_int_equal(mqtt_connack_v3_code(MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION), 1);
    assert_int_equal(mqtt_connack_v3_code(MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID), 2);
    assert_int_equal(mqtt_connack_v3_code(MQTT_RC_SERVER_UNAVAILABLE), 3);
    assert_int_equal(mqtt_connack_v3_code(MQTT_RC_BAD_USERNAME_OR_PASSWORD), 4);
    assert_int_equal(mqtt_connack_v3_code(MQTT_RC_NOT_AUTHORIZED), 5);
    /* Anything else is one of the refusals, never "accepted". */
    assert_true(mqtt_connack_v3_code(MQTT_RC_BANNED) >= 1);
    assert_true(mqtt_connack_v3_code(MQTT_RC_BANNED) <= 5);
    assert_true(mqtt_connack_v3_code(MQTT_RC_SERVER_BUSY) >= 1);
}

/* Where the spec names the reason, the error maps to it: malformed packet for the encoding
 * errors (1.5, 2.1.3, 2.2.2.2), protocol error for duplicates and values (2.2.2.2), packet
 * too large, topic filter invalid. This is the code a server closes with, in a CONNACK or
 * DISCONNECT at most [MQTT-4.13.1-1]. */
static void error_reason_follows_spec(void **state)
{
    static const struct {
        enum mqtt_error err;
        uint8_t reason;
    } table[] = {
        {MQTT_ERR_RESERVED_TYPE, MQTT_RC_MALFORMED_PACKET},
        {MQTT_ERR_RESERVED_FLAGS, MQTT_RC_MALFORMED_PACKET},
        {MQTT_ERR_QOS3, MQTT_RC_MALFORMED_PACKET},
        {MQTT_ERR_BAD_VARINT, MQTT_RC_MALFORMED_PACKET},
        {MQTT_ERR_TOO_LARGE, MQTT_RC_PACKET_TOO_LARGE},
        {MQTT_ERR_TRUNCATED, MQTT_RC_MALFORMED_PACKET},
        {MQTT_ERR_TRAILING_BYTES, MQTT_RC_MALFORMED_PACKET},
        {MQTT_ERR_BAD_UTF8, MQTT_RC_MALFORMED_PACKET},
        {MQTT_ERR_UTF8_NULL, MQTT_RC_MALFORMED_PACKET},
        {MQTT_ERR_BAD_PROTOCOL_VERSION, MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION},
        {MQTT_ERR_CONNECT_RESERVED, MQTT_RC_MALFORMED_PACKET},
        {MQTT_ERR_PROP_UNKNOWN, MQTT_RC_MALFORMED_PACKET},
        {MQTT_ERR_PROP_NOT_ALLOWED, MQTT_RC_MALFORMED_PACKET},
        {MQTT_ERR_PROP_DUPLICATE, MQTT_RC_PROTOCOL_ERROR},
        {MQTT_ERR_PROP_VALUE, MQTT_RC_PROTOCOL_ERROR},
        {MQTT_ERR_FILTER_INVALID, MQTT_RC_TOPIC_FILTER_INVALID},
        {MQTT_ERR_UNEXPECTED, MQTT_RC_PROTOCOL_ERROR},
        {MQTT_ERR_SUB_OPTIONS, MQTT_RC_MALFORMED_PACKET},
        {MQTT_ERR_RETAIN_HANDLING, MQTT_RC_PROTOCOL_ERROR},
        {MQTT_ERR_NO_TOPICS, MQTT_RC_PROTOCOL_ERROR},
        {MQTT_ERR_ZERO_PACKET_ID, MQTT_RC_PROTOCOL_ERROR},
        {MQTT_ERR_TOPIC_WILDCARD, MQTT_RC_TOPIC_NAME_INVALID},
        {MQTT_ERR_DUP_QOS0, MQTT_RC_MALFORMED_PACKET},
    };
    (void)state;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (mqtt_error_reason(table[i].err) != table[i].reason)
            fail_msg("error %d (%s): reason 0x%02X, want 0x%02X", (int)table[i].err,
                     mqtt_error_str(table[i].err), mqtt_error_reason(table[i].err),
                     table[i].reason);
    }
}

/* Every error kind has its own description and an error reason code. */
static void every_error_has_reason_and_text(void **state)
{
    (void)state;
    assert_int_equal(mqtt_error_reason(MQTT_ERR_NONE), MQTT_RC_SUCCESS);
    for (int e = MQTT_ERR_RESERVED_TYPE; e <= MQTT_ERR_UNEXPECTED; e++) {
        const char *s = mqtt_error_str((enum mqtt_error)e);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_true(mqtt_error_reason((enum mqtt_error)e) >= 0x80);
        for (int f = MQTT_ERR_RESERVED_TYPE; f < e; f++)
            assert_string_not_equal(s, mqtt_error_str((enum mqtt_error)f));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reason_str_names_codes),
        cmocka_unit_test(connack_v3_code_maps_reasons),
        cmocka_unit_test(error_reason_follows_spec),
        cmocka_unit_test(every_error_has_reason_and_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
