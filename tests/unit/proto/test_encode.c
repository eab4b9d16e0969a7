/* Encoders: exact sizes, refusal of short buffers and unrepresentable packets, fixed flags,
 * and one PUBLISH serialized once for many readers. */
#include <stdlib.h>

#include "proto_test.h"

/* A buffer one byte short of mqtt_encoded_size() is refused for every golden packet, and
 * nothing is written past the exact size. */
static void encode_refuses_short_buffer(void **state)
{
    static uint8_t out[4096];
    (void)state;
    for (size_t i = 0; i < pt_golden_count; i++) {
        const struct pt_golden *g = &pt_golden[i];
        struct mqtt_packet pkt;
        pt_parse_ok(pt_parser(g->version), g->wire, g->len, &pkt);
        size_t size = mqtt_encoded_size(&pkt, g->version);
        for (size_t cap = 0; cap < size; cap++)
            assert_int_equal(mqtt_encode(&pkt, g->version, out, cap), 0);
        memset(out, 0xEE, sizeof out);
        assert_int_equal(mqtt_encode(&pkt, g->version, out, size), size);
        assert_int_equal(out[size], 0xEE);
    }
}

/* A remaining length over 268,435,455 cannot be represented (2.1.4). */
static void encode_refuses_unrepresentable_length(void **state)
{
    struct mqtt_packet pkt = {.type = MQTT_PUBLISH};
    uint8_t out[16];
    (void)state;
    pkt.u.publish.topic = MQTT_STR("t");
    pkt.u.publish.payload = out;
    pkt.u.publish.payload_len = MQTT_VARINT_MAX - 3 + 1;
    assert_int_equal(mqtt_encoded_size(&pkt, MQTT_V311), 0);
    assert_int_equal(mqtt_encode(&pkt, MQTT_V311, out, sizeof out), 0);
    /* One byte less fits exactly. */
    pkt.u.publish.payload_len = MQTT_VARINT_MAX - 3;
    assert_int_equal(mqtt_encoded_size(&pkt, MQTT_V311), 5 + (size_t)MQTT_VARINT_MAX);
}

/* Fixed flags come from the spec, not from pkt->flags: PUBREL, SUBSCRIBE and UNSUBSCRIBE
 * carry 0010 [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1], the rest 0000. */
static void encode_sets_fixed_flags(void **state)
{
    static const struct mqtt_topic_entry list[] = {{{"a", 1}, {0}}};
    uint8_t out[64];
    (void)state;
    for (uint8_t type = MQTT_CONNECT; type <= MQTT_AUTH; type++) {
        if (type == MQTT_PUBLISH) continue;
        struct mqtt_packet pkt = {.type = type, .flags = 0xF};
        if (type >= MQTT_PUBACK && type <= MQTT_PUBCOMP) pkt.u.ack.packet_id = 1;
        if (type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE) {
            pkt.u.subscribe.packet_id = 1;
            pkt.u.subscribe.topics.list = list;
            pkt.u.subscribe.topics.count = 1;
        }
        if (type == MQTT_SUBACK || type == MQTT_UNSUBACK) {
            static const uint8_t rc[] = {0};
            pkt.u.suback.packet_id = 1;
            pkt.u.suback.reasons = rc;
            pkt.u.suback.count = 1;
        }
        if (type == MQTT_CONNECT)
            pkt.u.connect = (struct mqtt_connect){.version = MQTT_V5, .client_id = MQTT_STR("c")};
        assert_true(mqtt_encode(&pkt, MQTT_V5, out, sizeof out) > 0);
        uint8_t want =
            (type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE) ? 2 : 0;
        assert_int_equal(out[0], (uint8_t)(type << 4 | want));
    }
}

/* PUBLISH flags come from dup, qos and retain (3.3.1). */
static void encode_publish_flags(void **state)
{
    uint8_t out[32];
    (void)state;
    for (uint8_t qos = 0; qos < 3; qos++) {
        for (int dup = 0; dup < 2; dup++) {
            for (int retain = 0; retain < 2; retain++) {
                if (qos == 0 && dup) continue;
                struct mqtt_packet pkt = {.type = MQTT_PUBLISH};
                pkt.u.publish.topic = MQTT_STR("t");
                pkt.u.publish.qos = qos;
                pkt.u.publish.dup = dup;
                pkt.u.publish.retain = retain;
                pkt.u.publish.packet_id = 1;
                assert_true(mqtt_encode(&pkt, MQTT_V311, out, sizeof out) > 0);
                assert_int_equal(out[0], 0x30 | dup << 3 | qos << 1 | retain);
            }
        }
    }
}

/* A PUBLISH is serialized once into one buffer and parsed by any number of readers; the
 * encoder reads the packet without changing it. */
static void encode_publish_once_for_many(void **state)
{
    static uint8_t payload[64];
    struct mqtt_packet pkt = {.type = MQTT_PUBLISH};
    (void)state;
    memset(payload, 0x42, sizeof payload);
    pkt.u.publish.topic = MQTT_STR("sensors/1/temp");
    pkt.u.publish.qos = 1;
    pkt.u.publish.packet_id = 77;
    pkt.u.publish.payload = payload;
    pkt.u.publish.payload_len = sizeof payload;
    struct mqtt_packet copy = pkt;
    size_t size = mqtt_encoded_size(&pkt, MQTT_V311);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    assert_int_equal(mqtt_encode(&pkt, MQTT_V311, buf, size), size);
    assert_memory_equal(&pkt, &copy, sizeof pkt);
    for (int i = 0; i < 3; i++) {
        struct mqtt_packet back;
        pt_parse_ok(&pt_v311, buf, size, &back);
        pt_assert_packet_equal(&pkt, &back, MQTT_V311);
    }
    free(buf);
}

/* Encodes pkt with version and asserts that both the size and the encoding refuse it. */
static void assert_refused(const struct mqtt_packet *pkt, uint8_t version)
{
    uint8_t out[256];
    assert_int_equal(mqtt_encoded_size(pkt, version), 0);
    assert_int_equal(mqtt_encode(pkt, version, out, sizeof out), 0);
}

static struct mqtt_packet publish_packet(uint8_t qos)
{
    struct mqtt_packet pkt = {.type = MQTT_PUBLISH};
    pkt.u.publish.topic = MQTT_STR("t");
    pkt.u.publish.qos = qos;
    pkt.u.publish.packet_id = qos ? 1 : 0;
    return pkt;
}

/* The encoder never writes a PUBLISH with both QoS bits set [MQTT-3.3.1-4]. */
static void encode_refuses_publish_qos3(void **state)
{
    struct mqtt_packet pkt = publish_packet(3);
    (void)state;
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++)
        assert_refused(&pkt, v);
}

/* DUP is 0 for every QoS 0 message [MQTT-3.3.1-2] (a QoS 0 PUBLISH goes out with DUP 0
 * [MQTT-4.3.1-1]); the encoder refuses it rather than write a packet the receiver must treat
 * as malformed. */
static void encode_refuses_dup_on_qos0(void **state)
{
    struct mqtt_packet pkt = publish_packet(0);
    (void)state;
    pkt.u.publish.dup = true;
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++)
        assert_refused(&pkt, v);
}

/* A QoS 0 PUBLISH carries no packet identifier, whatever packet_id holds: 3.1.1 [MQTT-2.3.1-5],
 * 5.0 [MQTT-2.2.1-2]. */
static void encode_publish_qos0_writes_no_packet_id(void **state)
{
    struct mqtt_packet pkt = publish_packet(0);
    uint8_t out[32];
    (void)state;
    pkt.u.publish.packet_id = 0x1234;
    assert_int_equal(mqtt_encode(&pkt, MQTT_V311, out, sizeof out), 5);
    static const uint8_t want[] = {0x30, 0x03, 0x00, 0x01, 't'};
    assert_memory_equal(out, want, sizeof want);
}

/* Packet identifiers are non-zero where the packet has one: PUBLISH QoS > 0, SUBSCRIBE and
 * UNSUBSCRIBE (3.1.1 [MQTT-2.3.1-1], 5.0 [MQTT-2.2.1-3] from a client, [MQTT-2.2.1-4] from a
 * server), and the acknowledgements that repeat them (3.1.1 [MQTT-2.3.1-6] [MQTT-2.3.1-7],
 * 5.0 [MQTT-2.2.1-5] [MQTT-2.2.1-6]). */
static void encode_refuses_zero_packet_id(void **state)
{
    static const struct mqtt_topic_entry list[] = {{{"a", 1}, {0}}};
    static const uint8_t rc[] = {0};
    (void)state;
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
        for (uint8_t qos = 1; qos <= 2; qos++) {
            struct mqtt_packet pkt = publish_packet(qos);
            pkt.u.publish.packet_id = 0;
            assert_refused(&pkt, v);
        }
        for (uint8_t type = MQTT_PUBACK; type <= MQTT_UNSUBACK; type++) {
            struct mqtt_packet pkt = {.type = type};
            if (type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE) {
                pkt.u.subscribe.topics.list = list;
                pkt.u.subscribe.topics.count = 1;
            } else if (type == MQTT_SUBACK || type == MQTT_UNSUBACK) {
                pkt.u.suback.reasons = rc;
                pkt.u.suback.count = 1;
            }
            assert_refused(&pkt, v);
        }
    }
}

/* CONNECT: will QoS 3 (3.1.1 [MQTT-3.1.2-14], 5.0 [MQTT-3.1.2-12]) and, before 5.0, a password
 * without a user name [MQTT-3.1.2-22] are refused; without the will flag the will QoS and
 * retain bits are written as 0 whatever the fields hold (3.1.1 [MQTT-3.1.2-11]
 * [MQTT-3.1.2-13] [MQTT-3.1.2-15], 5.0 [MQTT-3.1.2-11] [MQTT-3.1.2-13]). */
static void encode_connect_flag_rules(void **state)
{
    uint8_t out[64];
    (void)state;
    struct mqtt_packet pkt = {.type = MQTT_CONNECT};
    pkt.u.connect.client_id = MQTT_STR("c");
    pkt.u.connect.will_flag = true;
    pkt.u.connect.will_topic = MQTT_STR("w");
    pkt.u.connect.will_qos = 3;
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++)
        assert_refused(&pkt, v);

    pkt.u.connect.will_flag = false;
    pkt.u.connect.will_retain = true;
    size_t n = mqtt_encode(&pkt, MQTT_V311, out, sizeof out);
    assert_int_equal(n, 15);
    assert_int_equal(out[9], 0x00); /* connect flags: no will, QoS 0, no retain */
    struct mqtt_packet back;
    pt_parse_ok(&pt_v311, out, n, &back);

    pkt.u.connect.will_retain = false;
    pkt.u.connect.has_password = true;
    pkt.u.connect.password = (struct mqtt_bin){(const uint8_t *)"p", 1};
    assert_refused(&pkt, MQTT_V31);
    assert_refused(&pkt, MQTT_V311);
    assert_true(mqtt_encode(&pkt, MQTT_V5, out, sizeof out) > 0); /* allowed in 5.0 (3.1.2.9) */
}

/* A refused connection has Session Present 0: 3.1.1 [MQTT-3.2.2-4], 5.0 [MQTT-3.2.2-6]. */
static void encode_connack_rules(void **state)
{
    uint8_t out[16];
    (void)state;
    struct mqtt_packet pkt = {.type = MQTT_CONNACK};
    pkt.u.connack.session_present = true;
    pkt.u.connack.reason = MQTT_RC_NOT_AUTHORIZED;
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++)
        assert_refused(&pkt, v);
    pkt.u.connack.session_present = false;
    assert_int_equal(mqtt_encode(&pkt, MQTT_V311, out, sizeof out), 4);
    assert_int_equal(out[3], 5); /* 3.1.1 return code 5, not authorized */
    pkt.u.connack.reason = MQTT_RC_SUCCESS;
    pkt.u.connack.session_present = true;
    assert_int_equal(mqtt_encode(&pkt, MQTT_V5, out, sizeof out), 5);
    assert_int_equal(out[2], 0x01);
}

/* Each 5.0 packet with a reason code uses one from its table: CONNACK [MQTT-3.2.2-8], PUBACK
 * [MQTT-3.4.2-1], PUBREC [MQTT-3.5.2-1], PUBREL [MQTT-3.6.2-1], PUBCOMP [MQTT-3.7.2-1],
 * SUBACK [MQTT-3.9.3-2], UNSUBACK [MQTT-3.11.3-2], DISCONNECT [MQTT-3.14.2-1], AUTH
 * [MQTT-3.15.2-1]. For every code 0..255, mqtt_reason_allowed() and the parser agree, and a
 * packet encoded with the code parses back exactly when the code is allowed. */
static void reason_allowed_agrees_with_parser(void **state)
{
    static const uint8_t types[] = {MQTT_CONNACK,  MQTT_PUBACK,     MQTT_PUBREC,
                                    MQTT_PUBREL,   MQTT_PUBCOMP,    MQTT_SUBACK,
                                    MQTT_UNSUBACK, MQTT_DISCONNECT, MQTT_AUTH};
    static const size_t table_size[] = {22, 9, 9, 2, 2, 12, 7, 29, 3};
    uint8_t out[32];
    (void)state;
    for (size_t t = 0; t < sizeof types; t++) {
        size_t allowed = 0;
        for (unsigned rc = 0; rc < 256; rc++) {
            uint8_t code = (uint8_t)rc;
            struct mqtt_packet pkt = {.type = types[t]};
            switch (pkt.type) {
            case MQTT_CONNACK:
                pkt.u.connack.reason = code;
                break;
            case MQTT_SUBACK:
            case MQTT_UNSUBACK:
                pkt.u.suback.packet_id = 5;
                pkt.u.suback.reasons = &code;
                pkt.u.suback.count = 1;
                break;
            case MQTT_DISCONNECT:
            case MQTT_AUTH:
                pkt.u.disconnect.reason = code;
                break;
            default:
                pkt.u.ack.packet_id = 5;
                pkt.u.ack.reason = code;
                break;
            }
            size_t n = mqtt_encode(&pkt, MQTT_V5, out, sizeof out);
            assert_true(n > 0); /* the encoder writes the caller's code */
            struct mqtt_packet back;
            bool ok = mqtt_reason_allowed(pkt.type, code);
            enum mqtt_parse_result res = mqtt_parse(&pt_v5, out, n, &back, NULL);
            if (ok != (res == MQTT_PARSE_DONE))
                fail_msg("type %u reason 0x%02X: allowed %d, parse %d", pkt.type, rc, ok, res);
            if (!ok) assert_int_equal(back.error, MQTT_ERR_REASON_INVALID);
            allowed += ok;
        }
        assert_int_equal(allowed, table_size[t]);
    }
    assert_false(mqtt_reason_allowed(MQTT_PUBLISH, 0));
}

/* SUBSCRIBE and UNSUBSCRIBE carry at least one filter (3.1.1 [MQTT-3.8.3-3], 5.0
 * [MQTT-3.8.3-2]; [MQTT-3.10.3-2]), requested QoS 0..2 [MQTT-3-8.3-4], Retain Handling 0..2
 * (5.0 3.8.3.1) and no No Local on a shared subscription (5.0 [MQTT-3.8.3-4]). A SUBACK has a
 * reason code per filter, so at least one. */
static void encode_subscribe_rules(void **state)
{
    struct mqtt_topic_entry list[] = {{{"a/+", 3}, {.qos = 1}}};
    (void)state;
    struct mqtt_packet pkt = {.type = MQTT_SUBSCRIBE};
    pkt.u.subscribe.packet_id = 3;
    pkt.u.subscribe.topics.list = list;
    pkt.u.subscribe.topics.count = 0;
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++)
        assert_refused(&pkt, v);
    pkt.type = MQTT_UNSUBSCRIBE;
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++)
        assert_refused(&pkt, v);
    pkt.type = MQTT_SUBSCRIBE;
    pkt.u.subscribe.topics.count = 1;
    assert_true(mqtt_encoded_size(&pkt, MQTT_V5) > 0);
    list[0].opts.qos = 3;
    assert_refused(&pkt, MQTT_V311);
    assert_refused(&pkt, MQTT_V5);
    list[0].opts.qos = 1;
    list[0].opts.retain_handling = 3;
    assert_refused(&pkt, MQTT_V5);
    list[0].opts.retain_handling = 0;
    list[0].opts.no_local = true;
    assert_true(mqtt_encoded_size(&pkt, MQTT_V5) > 0);
    list[0].filter = MQTT_STR("$share/g/a/+");
    assert_refused(&pkt, MQTT_V5);

    struct mqtt_packet sa = {.type = MQTT_SUBACK};
    sa.u.suback.packet_id = 3;
    assert_refused(&sa, MQTT_V311);
    assert_refused(&sa, MQTT_V5);
}

/* 5.0 properties are written only where the packet allows them (2.2.2.2) and with values in
 * range: Topic Alias 0 is never sent [MQTT-3.3.2-8], nor Subscription Identifier 0, nor
 * Receive Maximum 0, nor Authentication Data without an Authentication Method. */
static void encode_refuses_invalid_properties(void **state)
{
    uint8_t out[64];
    (void)state;
    struct mqtt_packet pkt = publish_packet(1);
    pkt.props.present = MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS);
    pkt.props.topic_alias = 0;
    assert_refused(&pkt, MQTT_V5);
    pkt.props.topic_alias = 1;
    assert_true(mqtt_encode(&pkt, MQTT_V5, out, sizeof out) > 0);
    pkt.props.present |= MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY); /* not a PUBLISH property */
    assert_refused(&pkt, MQTT_V5);
    assert_true(mqtt_encode(&pkt, MQTT_V311, out, sizeof out) > 0); /* 3.x writes no props */

    pkt = publish_packet(1);
    pkt.props.sub_id_count = 1;
    pkt.props.sub_id = 0;
    assert_refused(&pkt, MQTT_V5);

    struct mqtt_packet cn = {.type = MQTT_CONNECT};
    cn.u.connect.client_id = MQTT_STR("c");
    cn.props.present = MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAXIMUM);
    cn.props.receive_maximum = 0;
    assert_refused(&cn, MQTT_V5);
    cn.props.receive_maximum = 10;
    assert_true(mqtt_encode(&cn, MQTT_V5, out, sizeof out) > 0);
    cn.props.present |= MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA);
    cn.props.auth_data = (struct mqtt_bin){(const uint8_t *)"d", 1};
    assert_refused(&cn, MQTT_V5);
    cn.props.present |= MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD);
    cn.props.auth_method = MQTT_STR("m");
    assert_true(mqtt_encode(&cn, MQTT_V5, out, sizeof out) > 0);
}

/* A topic name is at least one character [MQTT-4.7.3-1]; in 5.0 an empty one goes with a Topic
 * Alias (3.3.2.3.4). */
static void encode_refuses_empty_topic(void **state)
{
    uint8_t out[32];
    (void)state;
    struct mqtt_packet pkt = publish_packet(0);
    pkt.u.publish.topic = MQTT_STR("");
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++)
        assert_refused(&pkt, v);
    pkt.props.present = MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS);
    pkt.props.topic_alias = 4;
    assert_true(mqtt_encode(&pkt, MQTT_V5, out, sizeof out) > 0);
    assert_refused(&pkt, MQTT_V311);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode_refuses_short_buffer),
        cmocka_unit_test(encode_refuses_unrepresentable_length),
        cmocka_unit_test(encode_sets_fixed_flags),
        cmocka_unit_test(encode_publish_flags),
        cmocka_unit_test(encode_publish_once_for_many),
        cmocka_unit_test(encode_refuses_publish_qos3),
        cmocka_unit_test(encode_refuses_dup_on_qos0),
        cmocka_unit_test(encode_publish_qos0_writes_no_packet_id),
        cmocka_unit_test(encode_refuses_zero_packet_id),
        cmocka_unit_test(encode_connect_flag_rules),
        cmocka_unit_test(encode_connack_rules),
        cmocka_unit_test(reason_allowed_agrees_with_parser),
        cmocka_unit_test(encode_subscribe_rules),
        cmocka_unit_test(encode_refuses_invalid_properties),
        cmocka_unit_test(encode_refuses_empty_topic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
