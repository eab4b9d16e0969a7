/* PUBLISH in MQTT 3.1, 3.1.1 and 5.0: golden vectors both ways, flags, topic names, properties. */
#include <stdlib.h>

#include "proto_test.h"

#define BIT(id) MQTT_PROP_BIT(MQTT_PROP_##id)

static const struct mqtt_parser server5 = {.version = MQTT_V5, .role = MQTT_ROLE_SERVER};
static const struct mqtt_parser client5 = {.version = MQTT_V5, .role = MQTT_ROLE_CLIENT};

static struct mqtt_packet publish(const char *topic, uint8_t qos, uint16_t packet_id,
                                  const char *payload)
{
    struct mqtt_packet pkt = {.type = MQTT_PUBLISH};
    pkt.u.publish.topic = MQTT_STR(topic);
    pkt.u.publish.qos = qos;
    pkt.u.publish.packet_id = packet_id;
    pkt.u.publish.payload = (const uint8_t *)payload;
    pkt.u.publish.payload_len = (uint32_t)strlen(payload);
    return pkt;
}

static void assert_payload(const struct mqtt_publish *p, const char *s)
{
    assert_int_equal(p->payload_len, strlen(s));
    if (p->payload_len > 0) assert_memory_equal(p->payload, s, p->payload_len);
}

static void parse_v31_publish_qos0(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v31_publish_qos0", &pkt);
    assert_int_equal(pkt.type, MQTT_PUBLISH);
    assert_int_equal(pkt.u.publish.qos, 0);
    assert_false(pkt.u.publish.dup);
    assert_false(pkt.u.publish.retain);
    pt_assert_str_equal(pkt.u.publish.topic, "a/b");
    assert_payload(&pkt.u.publish, "hi");
}

static void encode_v31_publish_qos0(void **state)
{
    struct mqtt_packet pkt = publish("a/b", 0, 0, "hi");
    (void)state;
    pt_encode_golden(&pkt, "v31_publish_qos0");
}

static void parse_v31_publish_qos1(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v31_publish_qos1", &pkt);
    assert_int_equal(pkt.u.publish.qos, 1);
    assert_int_equal(pkt.u.publish.packet_id, 7);
    assert_payload(&pkt.u.publish, "x");
}

static void encode_v31_publish_qos1(void **state)
{
    struct mqtt_packet pkt = publish("a/b", 1, 7, "x");
    (void)state;
    pt_encode_golden(&pkt, "v31_publish_qos1");
}

static void parse_v311_publish_retain(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v311_publish_qos0_retain", &pkt);
    assert_int_equal(pkt.flags, 0x1);
    assert_true(pkt.u.publish.retain);
    assert_int_equal(pkt.u.publish.qos, 0);
    assert_payload(&pkt.u.publish, "hi");
}

static void encode_v311_publish_retain(void **state)
{
    struct mqtt_packet pkt = publish("a/b", 0, 0, "hi");
    (void)state;
    pkt.u.publish.retain = true;
    pt_encode_golden(&pkt, "v311_publish_qos0_retain");
}

static void parse_v311_publish_qos1_dup(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v311_publish_qos1_dup", &pkt);
    assert_int_equal(pkt.flags, 0xA);
    assert_true(pkt.u.publish.dup);
    assert_int_equal(pkt.u.publish.qos, 1);
    assert_int_equal(pkt.u.publish.packet_id, 0x1234);
    assert_payload(&pkt.u.publish, "x");
}

static void encode_v311_publish_qos1_dup(void **state)
{
    struct mqtt_packet pkt = publish("a/b", 1, 0x1234, "x");
    (void)state;
    pkt.u.publish.dup = true;
    pt_encode_golden(&pkt, "v311_publish_qos1_dup");
}

/* A zero-length payload is valid (3.3.3). */
static void parse_v311_publish_qos2_empty_payload(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v311_publish_qos2_empty", &pkt);
    assert_int_equal(pkt.u.publish.qos, 2);
    assert_int_equal(pkt.u.publish.packet_id, 1);
    assert_int_equal(pkt.u.publish.payload_len, 0);
}

static void encode_v311_publish_qos2_empty_payload(void **state)
{
    struct mqtt_packet pkt = publish("a/b", 2, 1, "");
    (void)state;
    pt_encode_golden(&pkt, "v311_publish_qos2_empty");
}

static void parse_v5_publish_qos0(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_publish_qos0", &pkt);
    assert_int_equal(pkt.props.present, 0);
    assert_payload(&pkt.u.publish, "hi");
}

/* A QoS 0 PUBLISH carries no packet id [MQTT-2.2.1-2], and an empty property block is written
 * as a zero length [MQTT-2.2.2-1]. */
static void encode_v5_publish_qos0(void **state)
{
    struct mqtt_packet pkt = publish("a/b", 0, 0, "hi");
    (void)state;
    pt_encode_golden(&pkt, "v5_publish_qos0");
}

static void parse_v5_publish_props(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_publish_qos1_props", &pkt);
    const struct mqtt_props *p = &pkt.props;
    assert_int_equal(pkt.u.publish.packet_id, 5);
    assert_int_equal(p->present, BIT(PAYLOAD_FORMAT) | BIT(MESSAGE_EXPIRY) | BIT(CONTENT_TYPE) |
                                     BIT(RESPONSE_TOPIC) | BIT(CORRELATION_DATA) |
                                     BIT(TOPIC_ALIAS));
    assert_int_equal(p->payload_format, 1);
    assert_int_equal(p->message_expiry_s, 60);
    pt_assert_str_equal(p->content_type, "text");
    pt_assert_str_equal(p->response_topic, "r/t");
    assert_int_equal(p->correlation_data.len, 2);
    assert_int_equal(p->topic_alias, 7);
    assert_int_equal(p->user_count, 1);
    assert_int_equal(p->sub_id_count, 0);
    assert_payload(&pkt.u.publish, "x");
}

static void encode_v5_publish_props(void **state)
{
    static const uint8_t corr[] = {0xAB, 0xCD};
    static const struct mqtt_user_prop kv[] = {{{"k", 1}, {"v", 1}}};
    struct mqtt_packet pkt = publish("a/b", 1, 5, "x");
    (void)state;
    pkt.props.present = BIT(PAYLOAD_FORMAT) | BIT(MESSAGE_EXPIRY) | BIT(CONTENT_TYPE) |
                        BIT(RESPONSE_TOPIC) | BIT(CORRELATION_DATA) | BIT(TOPIC_ALIAS);
    pkt.props.payload_format = 1;
    pkt.props.message_expiry_s = 60;
    pkt.props.content_type = MQTT_STR("text");
    pkt.props.response_topic = MQTT_STR("r/t");
    pkt.props.correlation_data = (struct mqtt_bin){corr, 2};
    pkt.props.topic_alias = 7;
    pkt.props.user = kv;
    pkt.props.user_count = 1;
    pt_encode_golden(&pkt, "v5_publish_qos1_props");
}

/* A decoded property block is re-encoded unchanged (user properties from raw, in order): the
 * codec's part of forwarding Payload Format Indicator [MQTT-3.3.2-4], Response Topic
 * [MQTT-3.3.2-15], Correlation Data [MQTT-3.3.2-16], User Properties unaltered and in order
 * [MQTT-3.3.2-17] [MQTT-3.3.2-18] and Content Type [MQTT-3.3.2-20] to subscribers. */
static void encode_v5_publish_passes_decoded_props_through(void **state)
{
    const struct pt_golden *g = pt_golden_get("v5_publish_qos1_props");
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden(g->name, &pkt);
    pt_encode_eq(&pkt, MQTT_V5, g->wire, g->len);
}

/* With a topic alias the topic name may be empty (3.3.2.3.4). */
static void parse_v5_publish_alias_only(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_publish_alias_only", &pkt);
    assert_int_equal(pkt.u.publish.topic.len, 0);
    assert_int_equal(pkt.props.topic_alias, 1);
}

static void encode_v5_publish_alias_only(void **state)
{
    struct mqtt_packet pkt = publish("", 0, 0, "x");
    (void)state;
    pkt.props.present = BIT(TOPIC_ALIAS);
    pkt.props.topic_alias = 1;
    pt_encode_golden(&pkt, "v5_publish_alias_only");
}

/* A server's PUBLISH may carry several subscription identifiers, kept in order [MQTT-3.3.4-3]. */
static void parse_v5_publish_sub_ids(void **state)
{
    const struct pt_golden *g = pt_golden_get("v5_publish_sub_ids");
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_ok(&client5, g->wire, g->len, &pkt);
    assert_int_equal(pkt.props.sub_id_count, 2);
    assert_int_equal(pkt.props.sub_id, 1);
    assert_true(pkt.props.present & BIT(PAYLOAD_FORMAT));
    assert_int_equal(pkt.props.payload_format, 0);
    const uint8_t *pos = pkt.props.raw;
    struct mqtt_prop prop;
    uint32_t ids[4];
    int n = 0;
    while (mqtt_prop_next(&pos, pkt.props.raw + pkt.props.raw_len, &prop) == 1) {
        if (prop.id == MQTT_PROP_SUBSCRIPTION_ID && n < 4) ids[n++] = prop.v.u32;
    }
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 128);
}

static void encode_v5_publish_sub_ids(void **state)
{
    static const uint32_t ids[] = {1, 128};
    static const struct mqtt_user_prop kv[] = {{{"k", 1}, {"v", 1}}};
    struct mqtt_packet pkt = publish("a/b", 0, 0, "p");
    (void)state;
    pkt.props.present = BIT(PAYLOAD_FORMAT);
    pkt.props.payload_format = 0;
    pkt.props.sub_ids = ids;
    pkt.props.sub_id_count = 2;
    pkt.props.user = kv;
    pkt.props.user_count = 1;
    pt_encode_golden(&pkt, "v5_publish_sub_ids");
}

/* A payload over 64 KiB, and a topic name of the maximum 65,535 bytes [MQTT-4.7.3-3]. */
static void parse_publish_large_payload_and_longest_topic(void **state)
{
    size_t topic_len = 65535, payload_len = 100000;
    size_t rem = 2 + topic_len + 2 + payload_len;
    size_t len = 1 + mqtt_varint_size((uint32_t)rem) + rem;
    uint8_t *wire = malloc(len);
    struct mqtt_packet pkt;
    (void)state;
    assert_non_null(wire);
    size_t off = 0;
    wire[off++] = 0x32;
    off += mqtt_varint_encode((uint32_t)rem, wire + off);
    wire[off++] = 0xFF;
    wire[off++] = 0xFF;
    memset(wire + off, 't', topic_len);
    off += topic_len;
    wire[off++] = 0x01;
    wire[off++] = 0x02;
    memset(wire + off, 0x5A, payload_len);
    off += payload_len;
    assert_int_equal(off, len);
    assert_int_equal(mqtt_parse(&pt_v311, wire, len, &pkt, NULL), MQTT_PARSE_DONE);
    assert_int_equal(pkt.u.publish.topic.len, 65535);
    assert_int_equal(pkt.u.publish.packet_id, 0x0102);
    assert_int_equal(pkt.u.publish.payload_len, payload_len);
    assert_ptr_equal(pkt.u.publish.payload, wire + len - payload_len);

    uint8_t *out = malloc(len);
    assert_non_null(out);
    assert_int_equal(mqtt_encoded_size(&pkt, MQTT_V311), len);
    assert_int_equal(mqtt_encode(&pkt, MQTT_V311, out, len), len);
    assert_memory_equal(out, wire, len);
    free(out);
    free(wire);
}

/* Payload Format Indicator 1 with a payload that is not UTF-8 is left to the receiver: the
 * codec parses it and reports the indicator [MQTT-3.3.2-4 is the broker's to act on]. */
static void parse_publish_leaves_payload_format_check_to_caller(void **state)
{
    static const uint8_t w[] = {0x30, 0x09, 0x00, 0x01, 't', 0x02, 0x01, 0x01, 0xFF, 0xFE, 0x00};
    struct mqtt_packet pkt;
    (void)state;
    PT_OK(&pt_v5, w, &pkt);
    assert_int_equal(pkt.props.payload_format, 1);
    assert_int_equal(pkt.u.publish.payload_len, 3);
}

/* ---- malformed ---- */

/* Both QoS bits set is malformed [MQTT-3.3.1-4]. */
static void parse_rejects_qos3_publish(void **state)
{
    static const uint8_t w[] = {0x36, 0x07, 0x00, 0x01, 't', 0x12, 0x34, 'p', 'x'};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_QOS3);
    PT_BAD(&pt_v31, w, MQTT_ERR_QOS3);
    assert_int_equal(mqtt_error_reason(MQTT_ERR_QOS3), MQTT_RC_MALFORMED_PACKET);
}

/* DUP must be 0 on a QoS 0 PUBLISH [MQTT-3.3.1-2]. */
static void parse_rejects_dup_on_qos0(void **state)
{
    static const uint8_t w[] = {0x38, 0x05, 0x00, 0x01, 't', 'p', 'x'};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_DUP_QOS0);
}

/* QoS 1 and 2 PUBLISH need a non-zero packet id: 3.1.1 [MQTT-2.3.1-1], 5.0 [MQTT-2.2.1-3]. */
static void parse_rejects_publish_zero_packet_id(void **state)
{
    static const uint8_t q1[] = {0x32, 0x06, 0x00, 0x01, 't', 0x00, 0x00, 'x'};
    static const uint8_t q2[] = {0x34, 0x07, 0x00, 0x01, 't', 0x00, 0x00, 0x00, 'x'};
    (void)state;
    PT_BAD(&pt_v311, q1, MQTT_ERR_ZERO_PACKET_ID);
    PT_BAD(&pt_v5, q2, MQTT_ERR_ZERO_PACKET_ID);
}

/* No '+' in a topic name: 3.1.1 [MQTT-3.3.2-2] [MQTT-4.7.1-1], 5.0 [MQTT-4.7.0-1]. */
static void parse_rejects_plus_in_topic_name(void **state)
{
    static const uint8_t w[] = {0x30, 0x06, 0x00, 0x03, 'a', '/', '+', 'x'};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_TOPIC_WILDCARD);
}

/* No '#' in a topic name [MQTT-3.3.2-2]. */
static void parse_rejects_hash_in_topic_name(void **state)
{
    static const uint8_t w[] = {0x30, 0x07, 0x00, 0x03, 'a', '/', '#', 0x00, 'x'};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_TOPIC_WILDCARD);
}

/* A topic name is at least one character [MQTT-4.7.3-1]. */
static void parse_rejects_empty_topic_v311(void **state)
{
    static const uint8_t w[] = {0x30, 0x03, 0x00, 0x00, 'x'};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_TOPIC_EMPTY);
}

/* MQTT 5: an empty topic name needs a topic alias (3.3.2.1). */
static void parse_rejects_empty_topic_without_alias_v5(void **state)
{
    static const uint8_t w[] = {0x30, 0x04, 0x00, 0x00, 0x00, 'x'};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_TOPIC_EMPTY);
}

/* The topic name is a UTF-8 string [MQTT-3.3.2-1]; surrogates are ill-formed [MQTT-1.5.4-1]. */
static void parse_rejects_surrogate_in_topic(void **state)
{
    static const uint8_t w[] = {0x30, 0x06, 0x00, 0x03, 0xED, 0xA0, 0x80, 'x'};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_BAD_UTF8);
}

/* U+0000 in a topic name [MQTT-4.7.3-2] [MQTT-1.5.4-2]. */
static void parse_rejects_nul_in_topic(void **state)
{
    static const uint8_t w[] = {0x30, 0x06, 0x00, 0x03, 'a', 0x00, 'b', 'x'};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_UTF8_NULL);
    assert_int_equal(mqtt_error_reason(MQTT_ERR_UTF8_NULL), MQTT_RC_MALFORMED_PACKET);
}

/* A topic length running past the packet. */
static void parse_rejects_truncated_topic(void **state)
{
    static const uint8_t w[] = {0x30, 0x03, 0x00, 0x05, 'a'};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_TRUNCATED);
    assert_int_equal(mqtt_error_reason(MQTT_ERR_TRUNCATED), MQTT_RC_MALFORMED_PACKET);
}

/* A QoS 1 PUBLISH that ends before its packet id. */
static void parse_rejects_publish_without_packet_id(void **state)
{
    static const uint8_t w[] = {0x32, 0x04, 0x00, 0x02, 'a', 'b'};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_TRUNCATED);
}

/* Topic Alias 0 is not permitted [MQTT-3.3.2-8]. */
static void parse_rejects_topic_alias_zero(void **state)
{
    static const uint8_t w[] = {0x30, 0x08, 0x00, 0x01, 't', 0x03, 0x23, 0x00, 0x00, 'x'};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_PROP_VALUE);
}

/* Subscription Identifier 0 is a protocol error (3.3.2.3.8). */
static void parse_rejects_sub_id_zero(void **state)
{
    static const uint8_t w[] = {0x30, 0x07, 0x00, 0x01, 't', 0x02, 0x0B, 0x00, 'x'};
    (void)state;
    PT_BAD(&client5, w, MQTT_ERR_PROP_VALUE);
}

/* A client's PUBLISH must not carry a Subscription Identifier [MQTT-3.3.4-6]. */
static void parse_server_rejects_sub_id_from_client(void **state)
{
    static const uint8_t w[] = {0x30, 0x07, 0x00, 0x01, 't', 0x02, 0x0B, 0x01, 'x'};
    (void)state;
    PT_BAD(&server5, w, MQTT_ERR_PROP_NOT_ALLOWED);
}

/* Message Expiry Interval twice is a protocol error (3.3.2.3.3). */
static void parse_rejects_duplicate_message_expiry(void **state)
{
    static const uint8_t w[] = {0x30, 0x0F, 0x00, 0x01, 't',  0x0A, 0x02, 0x00, 0x00,
                                0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x02, 'x'};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_PROP_DUPLICATE);
}

/* Session Expiry Interval is not a PUBLISH property (2.2.2.2). */
static void parse_rejects_publish_property_not_allowed(void **state)
{
    static const uint8_t w[] = {0x30, 0x0A, 0x00, 0x01, 't',  0x05,
                                0x11, 0x00, 0x00, 0x00, 0x01, 'x'};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_PROP_NOT_ALLOWED);
    assert_int_equal(mqtt_error_reason(MQTT_ERR_PROP_NOT_ALLOWED), MQTT_RC_MALFORMED_PACKET);
}

/* Payload Format Indicator other than 0/1 (3.3.2.3.2). */
static void parse_rejects_payload_format_2(void **state)
{
    static const uint8_t w[] = {0x30, 0x07, 0x00, 0x01, 't', 0x02, 0x01, 0x02, 'x'};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_PROP_VALUE);
}

/* A Response Topic is a topic name: no wildcards [MQTT-3.3.2-14]. */
static void parse_rejects_wildcard_response_topic(void **state)
{
    static const uint8_t w[] = {0x30, 0x09, 0x00, 0x01, 't', 0x04, 0x08, 0x00, 0x01, '#', 'x'};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_TOPIC_WILDCARD);
}

/* A Response Topic is a UTF-8 string [MQTT-3.3.2-13]: a surrogate (ED A0 80) is ill-formed. */
static void parse_rejects_bad_utf8_response_topic(void **state)
{
    static const uint8_t w[] = {0x30, 0x0B, 0x00, 0x01, 't',  0x06, 0x08,
                                0x00, 0x03, 0xED, 0xA0, 0x80, 'x'};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_BAD_UTF8);
}

/* A server's QoS 1 PUBLISH has a non-zero packet identifier [MQTT-2.2.1-4]: a client parser
 * refuses 0. */
static void parse_client_rejects_zero_packet_id_from_server(void **state)
{
    static const uint8_t w[] = {0x32, 0x07, 0x00, 0x01, 't', 0x00, 0x00, 0x00, 'x'};
    (void)state;
    PT_BAD(&client5, w, MQTT_ERR_ZERO_PACKET_ID);
}

/* A QoS 0 PUBLISH has no packet identifier: the bytes after the topic name (and in 5.0 the
 * properties) are payload. 3.1.1 [MQTT-2.3.1-5], 5.0 [MQTT-2.2.1-2]. */
static void parse_publish_qos0_has_no_packet_id(void **state)
{
    static const uint8_t w[] = {0x30, 0x05, 0x00, 0x01, 't', 0x12, 0x34};
    static const uint8_t w5[] = {0x30, 0x06, 0x00, 0x01, 't', 0x00, 0x12, 0x34};
    struct mqtt_packet pkt;
    (void)state;
    PT_OK(&pt_v311, w, &pkt);
    assert_int_equal(pkt.u.publish.packet_id, 0);
    assert_int_equal(pkt.u.publish.payload_len, 2);
    assert_int_equal(pkt.u.publish.payload[0], 0x12);
    PT_OK(&pt_v5, w5, &pkt);
    assert_int_equal(pkt.u.publish.packet_id, 0);
    assert_int_equal(pkt.u.publish.payload_len, 2);
    assert_int_equal(pkt.u.publish.payload[1], 0x34);
}

/* The content type is a UTF-8 string [MQTT-3.3.2-19] [MQTT-1.5.4-1]: overlong C0 80. */
static void parse_rejects_overlong_utf8_content_type(void **state)
{
    static const uint8_t w[] = {0x30, 0x0A, 0x00, 0x01, 't',  0x05,
                                0x03, 0x00, 0x02, 0xC0, 0x80, 'x'};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_BAD_UTF8);
}

/* A BOM (EF BB BF) in a topic is U+FEFF and is neither skipped nor stripped: 3.1.1
 * [MQTT-1.5.3-3], 5.0 [MQTT-1.5.4-3]. */
static void parse_keeps_bom_in_topic(void **state)
{
    static const uint8_t w[] = {0x30, 0x07, 0x00, 0x04, 0xEF, 0xBB, 0xBF, 'a', 'x'};
    struct mqtt_packet pkt;
    (void)state;
    PT_OK(&pt_v311, w, &pkt);
    assert_int_equal(pkt.u.publish.topic.len, 4);
    assert_memory_equal(pkt.u.publish.topic.ptr,
                        "\xEF\xBB\xBF"
                        "a",
                        4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_v31_publish_qos0),
        cmocka_unit_test(encode_v31_publish_qos0),
        cmocka_unit_test(parse_v31_publish_qos1),
        cmocka_unit_test(encode_v31_publish_qos1),
        cmocka_unit_test(parse_v311_publish_retain),
        cmocka_unit_test(encode_v311_publish_retain),
        cmocka_unit_test(parse_v311_publish_qos1_dup),
        cmocka_unit_test(encode_v311_publish_qos1_dup),
        cmocka_unit_test(parse_v311_publish_qos2_empty_payload),
        cmocka_unit_test(encode_v311_publish_qos2_empty_payload),
        cmocka_unit_test(parse_v5_publish_qos0),
        cmocka_unit_test(encode_v5_publish_qos0),
        cmocka_unit_test(parse_v5_publish_props),
        cmocka_unit_test(encode_v5_publish_props),
        cmocka_unit_test(encode_v5_publish_passes_decoded_props_through),
        cmocka_unit_test(parse_v5_publish_alias_only),
        cmocka_unit_test(encode_v5_publish_alias_only),
        cmocka_unit_test(parse_v5_publish_sub_ids),
        cmocka_unit_test(encode_v5_publish_sub_ids),
        cmocka_unit_test(parse_publish_large_payload_and_longest_topic),
        cmocka_unit_test(parse_publish_leaves_payload_format_check_to_caller),
        cmocka_unit_test(parse_rejects_qos3_publish),
        cmocka_unit_test(parse_rejects_dup_on_qos0),
        cmocka_unit_test(parse_rejects_publish_zero_packet_id),
        cmocka_unit_test(parse_rejects_plus_in_topic_name),
        cmocka_unit_test(parse_rejects_hash_in_topic_name),
        cmocka_unit_test(parse_rejects_empty_topic_v311),
        cmocka_unit_test(parse_rejects_empty_topic_without_alias_v5),
        cmocka_unit_test(parse_rejects_surrogate_in_topic),
        cmocka_unit_test(parse_rejects_nul_in_topic),
        cmocka_unit_test(parse_rejects_truncated_topic),
        cmocka_unit_test(parse_rejects_publish_without_packet_id),
        cmocka_unit_test(parse_rejects_topic_alias_zero),
        cmocka_unit_test(parse_rejects_sub_id_zero),
        cmocka_unit_test(parse_server_rejects_sub_id_from_client),
        cmocka_unit_test(parse_rejects_duplicate_message_expiry),
        cmocka_unit_test(parse_rejects_publish_property_not_allowed),
        cmocka_unit_test(parse_rejects_payload_format_2),
        cmocka_unit_test(parse_rejects_wildcard_response_topic),
        cmocka_unit_test(parse_rejects_bad_utf8_response_topic),
        cmocka_unit_test(parse_client_rejects_zero_packet_id_from_server),
        cmocka_unit_test(parse_publish_qos0_has_no_packet_id),
        cmocka_unit_test(parse_rejects_overlong_utf8_content_type),
        cmocka_unit_test(parse_keeps_bom_in_topic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
