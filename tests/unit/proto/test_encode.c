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
        pkt.u.connect.version = MQTT_V5;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode_refuses_short_buffer),
        cmocka_unit_test(encode_refuses_unrepresentable_length),
        cmocka_unit_test(encode_sets_fixed_flags),
        cmocka_unit_test(encode_publish_flags),
        cmocka_unit_test(encode_publish_once_for_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
