/* SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK in every version. */
#include "proto_test.h"

#define BIT(id) MQTT_PROP_BIT(MQTT_PROP_##id)

static const struct mqtt_parser client5 = {.version = MQTT_V5, .role = MQTT_ROLE_CLIENT};

/* The entries of a parsed SUBSCRIBE (with_opts) or UNSUBSCRIBE, read with mqtt_topic_next(). */
static size_t entries(const struct mqtt_packet *pkt, bool with_opts, struct mqtt_topic_entry *out,
                      size_t max)
{
    const struct mqtt_topic_list *l = &pkt->u.subscribe.topics;
    const uint8_t *pos = l->raw;
    size_t n = 0;
    while (n < max && mqtt_topic_next(&pos, l->raw + l->raw_len, with_opts, &out[n]) == 1)
        n++;
    assert_int_equal(n, l->count);
    return n;
}

static struct mqtt_packet subscribe(uint8_t type, uint16_t packet_id,
                                    const struct mqtt_topic_entry *list, uint32_t count)
{
    struct mqtt_packet pkt = {.type = type};
    pkt.u.subscribe.packet_id = packet_id;
    pkt.u.subscribe.topics.list = list;
    pkt.u.subscribe.topics.count = count;
    return pkt;
}

static struct mqtt_packet suback(uint8_t type, uint16_t packet_id, const uint8_t *reasons,
                                 uint32_t count)
{
    struct mqtt_packet pkt = {.type = type};
    pkt.u.suback.packet_id = packet_id;
    pkt.u.suback.reasons = reasons;
    pkt.u.suback.count = count;
    return pkt;
}

static void parse_v31_subscribe(void **state)
{
    struct mqtt_packet pkt;
    struct mqtt_topic_entry e[4];
    (void)state;
    pt_parse_golden("v31_subscribe", &pkt);
    assert_int_equal(pkt.type, MQTT_SUBSCRIBE);
    assert_int_equal(pkt.flags, 2);
    assert_int_equal(pkt.u.subscribe.packet_id, 10);
    assert_int_equal(entries(&pkt, true, e, 4), 1);
    pt_assert_str_equal(e[0].filter, "a/#");
    assert_int_equal(e[0].opts.qos, 1);
}

static void encode_v31_subscribe(void **state)
{
    static const struct mqtt_topic_entry list[] = {{{"a/#", 3}, {.qos = 1}}};
    struct mqtt_packet pkt = subscribe(MQTT_SUBSCRIBE, 10, list, 1);
    (void)state;
    pt_encode_golden(&pkt, "v31_subscribe");
}

static void parse_v31_suback(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v31_suback", &pkt);
    assert_int_equal(pkt.u.suback.packet_id, 10);
    assert_int_equal(pkt.u.suback.count, 1);
    assert_int_equal(pkt.u.suback.reasons[0], 1);
}

static void encode_v31_suback(void **state)
{
    static const uint8_t rc[] = {1};
    struct mqtt_packet pkt = suback(MQTT_SUBACK, 10, rc, 1);
    (void)state;
    pt_encode_golden(&pkt, "v31_suback");
}

static void parse_v31_unsubscribe(void **state)
{
    struct mqtt_packet pkt;
    struct mqtt_topic_entry e[4];
    (void)state;
    pt_parse_golden("v31_unsubscribe", &pkt);
    assert_int_equal(pkt.type, MQTT_UNSUBSCRIBE);
    assert_int_equal(pkt.u.subscribe.packet_id, 11);
    assert_int_equal(entries(&pkt, false, e, 4), 1);
    pt_assert_str_equal(e[0].filter, "a/#");
}

static void encode_v31_unsubscribe(void **state)
{
    static const struct mqtt_topic_entry list[] = {{{"a/#", 3}, {0}}};
    struct mqtt_packet pkt = subscribe(MQTT_UNSUBSCRIBE, 11, list, 1);
    (void)state;
    pt_encode_golden(&pkt, "v31_unsubscribe");
}

/* 3.x UNSUBACK carries only the packet id. */
static void parse_and_encode_v3_unsuback(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v31_unsuback", &pkt);
    assert_int_equal(pkt.type, MQTT_UNSUBACK);
    assert_int_equal(pkt.u.suback.packet_id, 11);
    pt_parse_golden("v311_unsuback", &pkt);
    assert_int_equal(pkt.u.suback.packet_id, 2);
    struct mqtt_packet a = suback(MQTT_UNSUBACK, 11, NULL, 0);
    pt_encode_golden(&a, "v31_unsuback");
    struct mqtt_packet b = suback(MQTT_UNSUBACK, 2, NULL, 0);
    pt_encode_golden(&b, "v311_unsuback");
}

static void parse_v311_subscribe(void **state)
{
    struct mqtt_packet pkt;
    struct mqtt_topic_entry e[4];
    (void)state;
    pt_parse_golden("v311_subscribe", &pkt);
    assert_int_equal(pkt.u.subscribe.packet_id, 1);
    assert_int_equal(entries(&pkt, true, e, 4), 2);
    pt_assert_str_equal(e[0].filter, "a/+");
    assert_int_equal(e[0].opts.qos, 0);
    pt_assert_str_equal(e[1].filter, "#");
    assert_int_equal(e[1].opts.qos, 2);
}

static void encode_v311_subscribe(void **state)
{
    static const struct mqtt_topic_entry list[] = {{{"a/+", 3}, {.qos = 0}},
                                                   {{"#", 1}, {.qos = 2}}};
    struct mqtt_packet pkt = subscribe(MQTT_SUBSCRIBE, 1, list, 2);
    (void)state;
    pt_encode_golden(&pkt, "v311_subscribe");
}

/* A decoded list is re-encoded from raw. */
static void encode_v311_subscribe_from_raw(void **state)
{
    const struct pt_golden *g = pt_golden_get("v311_subscribe");
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden(g->name, &pkt);
    pkt.u.subscribe.topics.list = NULL;
    pt_encode_eq(&pkt, MQTT_V311, g->wire, g->len);
}

/* 0x80 is the 3.1.1 failure return code (3.9.3). */
static void parse_v311_suback(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v311_suback", &pkt);
    assert_int_equal(pkt.u.suback.count, 2);
    assert_int_equal(pkt.u.suback.reasons[0], 0x00);
    assert_int_equal(pkt.u.suback.reasons[1], 0x80);
}

static void encode_v311_suback(void **state)
{
    static const uint8_t rc[] = {0x00, 0x80};
    struct mqtt_packet pkt = suback(MQTT_SUBACK, 1, rc, 2);
    (void)state;
    pt_encode_golden(&pkt, "v311_suback");
}

static void parse_v311_unsubscribe(void **state)
{
    struct mqtt_packet pkt;
    struct mqtt_topic_entry e[4];
    (void)state;
    pt_parse_golden("v311_unsubscribe", &pkt);
    assert_int_equal(entries(&pkt, false, e, 4), 2);
    pt_assert_str_equal(e[0].filter, "a/+");
    pt_assert_str_equal(e[1].filter, "#");
}

static void encode_v311_unsubscribe(void **state)
{
    static const struct mqtt_topic_entry list[] = {{{"a/+", 3}, {0}}, {{"#", 1}, {0}}};
    struct mqtt_packet pkt = subscribe(MQTT_UNSUBSCRIBE, 2, list, 2);
    (void)state;
    pt_encode_golden(&pkt, "v311_unsubscribe");
}

/* MQTT 5 options: no local, retain as published, retain handling; a shared subscription. */
static void parse_v5_subscribe(void **state)
{
    struct mqtt_packet pkt;
    struct mqtt_topic_entry e[4];
    (void)state;
    pt_parse_golden("v5_subscribe", &pkt);
    assert_int_equal(pkt.props.present, 0);
    assert_int_equal(pkt.props.sub_id_count, 1);
    assert_int_equal(pkt.props.sub_id, 5);
    assert_int_equal(pkt.props.user_count, 1);
    assert_int_equal(entries(&pkt, true, e, 4), 2);
    pt_assert_str_equal(e[0].filter, "a/+");
    assert_int_equal(e[0].opts.qos, 1);
    assert_true(e[0].opts.no_local);
    assert_true(e[0].opts.retain_as_published);
    assert_int_equal(e[0].opts.retain_handling, MQTT_RH_DONT_SEND);
    pt_assert_str_equal(e[1].filter, "$share/g/x/#");
    assert_int_equal(e[1].opts.qos, 0);
    assert_false(e[1].opts.no_local);
    assert_false(e[1].opts.retain_as_published);
    assert_int_equal(e[1].opts.retain_handling, MQTT_RH_SEND_IF_NEW);
}

static void encode_v5_subscribe(void **state)
{
    static const struct mqtt_user_prop kv[] = {{{"k", 1}, {"v", 1}}};
    static const struct mqtt_topic_entry list[] = {
        {{"a/+", 3},
         {.qos = 1,
          .no_local = true,
          .retain_as_published = true,
          .retain_handling = MQTT_RH_DONT_SEND}},
        {{"$share/g/x/#", 12}, {.qos = 0, .retain_handling = MQTT_RH_SEND_IF_NEW}},
    };
    struct mqtt_packet pkt = subscribe(MQTT_SUBSCRIBE, 1, list, 2);
    (void)state;
    pkt.props.sub_id = 5;
    pkt.props.sub_id_count = 1;
    pkt.props.user = kv;
    pkt.props.user_count = 1;
    pt_encode_golden(&pkt, "v5_subscribe");
}

/* The subscription options byte (3.8.3.1). */
static void sub_opts_byte_packs_every_field(void **state)
{
    (void)state;
    assert_int_equal(mqtt_sub_opts_byte((struct mqtt_sub_opts){.qos = 2}), 0x02);
    assert_int_equal(mqtt_sub_opts_byte((struct mqtt_sub_opts){.no_local = true}), 0x04);
    assert_int_equal(mqtt_sub_opts_byte((struct mqtt_sub_opts){.retain_as_published = true}), 0x08);
    assert_int_equal(mqtt_sub_opts_byte((struct mqtt_sub_opts){.retain_handling = 2}), 0x20);
    assert_int_equal(
        mqtt_sub_opts_byte((struct mqtt_sub_opts){
            .qos = 1, .no_local = true, .retain_as_published = true, .retain_handling = 2}),
        0x2D);
}

static void parse_v5_suback(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_suback", &pkt);
    assert_int_equal(pkt.u.suback.count, 2);
    assert_int_equal(pkt.u.suback.reasons[0], MQTT_RC_GRANTED_QOS1);
    assert_int_equal(pkt.u.suback.reasons[1], MQTT_RC_SUCCESS);
    pt_parse_golden("v5_suback_props", &pkt);
    assert_int_equal(pkt.u.suback.count, 1);
    assert_int_equal(pkt.u.suback.reasons[0], MQTT_RC_TOPIC_FILTER_INVALID);
    pt_assert_str_equal(pkt.props.reason_string, "no");
}

static void encode_v5_suback(void **state)
{
    static const uint8_t rc[] = {1, 0};
    static const uint8_t bad[] = {MQTT_RC_TOPIC_FILTER_INVALID};
    (void)state;
    struct mqtt_packet a = suback(MQTT_SUBACK, 1, rc, 2);
    pt_encode_golden(&a, "v5_suback");
    struct mqtt_packet b = suback(MQTT_SUBACK, 2, bad, 1);
    b.props.present = BIT(REASON_STRING);
    b.props.reason_string = MQTT_STR("no");
    pt_encode_golden(&b, "v5_suback_props");
}

static void parse_v5_unsubscribe(void **state)
{
    struct mqtt_packet pkt;
    struct mqtt_topic_entry e[4];
    (void)state;
    pt_parse_golden("v5_unsubscribe", &pkt);
    assert_int_equal(pkt.u.subscribe.packet_id, 3);
    assert_int_equal(entries(&pkt, false, e, 4), 1);
    pt_assert_str_equal(e[0].filter, "a/+");
    pt_parse_golden("v5_unsubscribe_props", &pkt);
    assert_int_equal(pkt.props.user_count, 1);
}

static void encode_v5_unsubscribe(void **state)
{
    static const struct mqtt_user_prop kv[] = {{{"k", 1}, {"v", 1}}};
    static const struct mqtt_topic_entry list[] = {{{"a/+", 3}, {0}}};
    (void)state;
    struct mqtt_packet a = subscribe(MQTT_UNSUBSCRIBE, 3, list, 1);
    pt_encode_golden(&a, "v5_unsubscribe");
    a.props.user = kv;
    a.props.user_count = 1;
    pt_encode_golden(&a, "v5_unsubscribe_props");
}

static void parse_v5_unsuback(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_unsuback", &pkt);
    assert_int_equal(pkt.u.suback.count, 2);
    assert_int_equal(pkt.u.suback.reasons[0], MQTT_RC_SUCCESS);
    assert_int_equal(pkt.u.suback.reasons[1], MQTT_RC_NO_SUBSCRIPTION_EXISTED);
}

static void encode_v5_unsuback(void **state)
{
    static const uint8_t rc[] = {0x00, 0x11};
    struct mqtt_packet pkt = suback(MQTT_UNSUBACK, 3, rc, 2);
    (void)state;
    pt_encode_golden(&pkt, "v5_unsuback");
}

/* ---- malformed ---- */

/* SUBSCRIBE's fixed-header flags are 0010 [MQTT-3.8.1-1]. */
static void parse_rejects_subscribe_flags(void **state)
{
    static const uint8_t w[] = {0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_RESERVED_FLAGS);
}

/* UNSUBSCRIBE's fixed-header flags are 0010 [MQTT-3.10.1-1]. */
static void parse_rejects_unsubscribe_flags(void **state)
{
    static const uint8_t w[] = {0xA0, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_RESERVED_FLAGS);
}

/* SUBACK and UNSUBACK flags are 0000 [MQTT-2.2.2-1]. */
static void parse_rejects_suback_flags(void **state)
{
    static const uint8_t sa[] = {0x92, 0x03, 0x00, 0x01, 0x00};
    static const uint8_t ua[] = {0xB2, 0x02, 0x00, 0x01};
    (void)state;
    PT_BAD(&pt_v311, sa, MQTT_ERR_RESERVED_FLAGS);
    PT_BAD(&pt_v311, ua, MQTT_ERR_RESERVED_FLAGS);
}

/* A SUBSCRIBE without any topic filter: 3.1.1 [MQTT-3.8.3-3], 5.0 [MQTT-3.8.3-2]. */
static void parse_rejects_empty_subscribe(void **state)
{
    static const uint8_t w311[] = {0x82, 0x02, 0x00, 0x01};
    static const uint8_t w5[] = {0x82, 0x03, 0x00, 0x01, 0x00};
    (void)state;
    PT_BAD(&pt_v311, w311, MQTT_ERR_NO_TOPICS);
    PT_BAD(&pt_v5, w5, MQTT_ERR_NO_TOPICS);
}

/* An UNSUBSCRIBE without any topic filter: 3.1.1 [MQTT-3.10.3-2], 5.0 [MQTT-3.10.3-2]. */
static void parse_rejects_empty_unsubscribe(void **state)
{
    static const uint8_t w311[] = {0xA2, 0x02, 0x00, 0x01};
    static const uint8_t w5[] = {0xA2, 0x03, 0x00, 0x01, 0x00};
    (void)state;
    PT_BAD(&pt_v311, w311, MQTT_ERR_NO_TOPICS);
    PT_BAD(&pt_v5, w5, MQTT_ERR_NO_TOPICS);
}

/* SUBSCRIBE and UNSUBSCRIBE need a non-zero packet id [MQTT-2.3.1-1] [MQTT-2.2.1-3]. */
static void parse_rejects_subscribe_zero_packet_id(void **state)
{
    static const uint8_t sub[] = {0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 'a', 0x00};
    static const uint8_t unsub[] = {0xA2, 0x06, 0x00, 0x00, 0x00, 0x00, 0x01, 'a'};
    (void)state;
    PT_BAD(&pt_v311, sub, MQTT_ERR_ZERO_PACKET_ID);
    PT_BAD(&pt_v5, unsub, MQTT_ERR_ZERO_PACKET_ID);
}

/* '#' must be last [MQTT-4.7.1-2] (5.0 [MQTT-4.7.1-1]). */
static void parse_rejects_hash_not_last(void **state)
{
    static const uint8_t w[] = {0x82, 0x0A, 0x00, 0x01, 0x00, 0x05, 'a', '/', '#', '/', 'b', 0x00};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_FILTER_INVALID);
    assert_int_equal(mqtt_error_reason(MQTT_ERR_FILTER_INVALID), MQTT_RC_TOPIC_FILTER_INVALID);
}

/* '+' must fill its level [MQTT-4.7.1-3] (5.0 [MQTT-4.7.1-2]). */
static void parse_rejects_plus_inside_level(void **state)
{
    static const uint8_t w[] = {0xA2, 0x06, 0x00, 0x01, 0x00, 0x02, 'a', '+'};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_FILTER_INVALID);
}

/* A topic filter is at least one character [MQTT-4.7.3-1]. */
static void parse_rejects_empty_filter(void **state)
{
    static const uint8_t w[] = {0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_FILTER_INVALID);
}

/* Topic filters are UTF-8 strings [MQTT-3.8.3-1]: overlong E0 80 80. */
static void parse_rejects_bad_utf8_filter(void **state)
{
    static const uint8_t w[] = {0x82, 0x08, 0x00, 0x01, 0x00, 0x03, 0xE0, 0x80, 0x80, 0x00};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_BAD_UTF8);
}

/* Unsubscribe filters are UTF-8 strings [MQTT-3.10.3-1]. */
static void parse_rejects_nul_in_unsubscribe_filter(void **state)
{
    static const uint8_t w[] = {0xA2, 0x06, 0x00, 0x01, 0x00, 0x02, 'a', 0x00};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_UTF8_NULL);
}

/* 3.1.1: the upper six bits of the requested QoS byte are reserved [MQTT-3-8.3-4]. */
static void parse_rejects_v311_subscribe_reserved_option_bits(void **state)
{
    static const uint8_t w[] = {0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x04};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_SUB_OPTIONS);
}

/* Requested QoS 3 [MQTT-3-8.3-4] (5.0 3.8.3.1: protocol error). */
static void parse_rejects_subscribe_qos3(void **state)
{
    static const uint8_t w311[] = {0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03};
    static const uint8_t w5[] = {0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x03};
    (void)state;
    PT_BAD(&pt_v311, w311, MQTT_ERR_SUB_OPTIONS);
    PT_BAD(&pt_v5, w5, MQTT_ERR_SUB_OPTIONS);
}

/* MQTT 5: bits 6 and 7 of the options are reserved [MQTT-3.8.3-5]. */
static void parse_rejects_v5_subscribe_reserved_option_bits(void **state)
{
    static const uint8_t w[] = {0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x40};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_SUB_OPTIONS);
}

/* Retain handling 3 is a protocol error (3.8.3.1): its own error, reason 0x82. */
static void parse_rejects_retain_handling_3(void **state)
{
    static const uint8_t w[] = {0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x30};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_RETAIN_HANDLING);
    assert_int_equal(mqtt_error_reason(MQTT_ERR_RETAIN_HANDLING), MQTT_RC_PROTOCOL_ERROR);
}

/* No Local on a shared subscription is a protocol error [MQTT-3.8.3-4]. */
static void parse_rejects_no_local_on_shared_subscription(void **state)
{
    static const uint8_t w[] = {0x82, 0x10, 0x00, 0x01, 0x00, 0x00, 0x0A, '$', 's',
                                'h',  'a',  'r',  'e',  '/',  'g',  '/',  'x', 0x04};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_SHARE_INVALID);
    assert_int_equal(mqtt_error_reason(MQTT_ERR_SHARE_INVALID), MQTT_RC_PROTOCOL_ERROR);
}

/* A share name is at least one character [MQTT-4.8.2-1]. */
static void parse_rejects_empty_share_name(void **state)
{
    static const uint8_t w[] = {0x82, 0x0F, 0x00, 0x01, 0x00, 0x00, 0x09, '$', 's',
                                'h',  'a',  'r',  'e',  '/',  '/',  'x',  0x00};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_SHARE_INVALID);
}

/* A share name has no '/', '+' or '#' [MQTT-4.8.2-2]. */
static void parse_rejects_wildcard_in_share_name(void **state)
{
    static const uint8_t w[] = {0x82, 0x10, 0x00, 0x01, 0x00, 0x00, 0x0A, '$', 's',
                                'h',  'a',  'r',  'e',  '/',  '+',  '/',  'x', 0x00};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_SHARE_INVALID);
}

/* "$share/g" without a filter is not a shared subscription filter (4.8.2). */
static void parse_rejects_share_without_filter(void **state)
{
    static const uint8_t w[] = {0x82, 0x0E, 0x00, 0x01, 0x00, 0x00, 0x08, '$',
                                's',  'h',  'a',  'r',  'e',  '/',  'g',  0x00};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_SHARE_INVALID);
}

/* A filter without its options byte. */
static void parse_rejects_subscribe_missing_options(void **state)
{
    static const uint8_t w[] = {0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_TRUNCATED);
}

/* A filter length running past the packet. */
static void parse_rejects_unsubscribe_truncated_filter(void **state)
{
    static const uint8_t w[] = {0xA2, 0x05, 0x00, 0x01, 0x00, 0x04, 'a'};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_TRUNCATED);
}

/* Subscription Identifier 0 is a protocol error (3.8.2.1.2). */
static void parse_rejects_subscribe_sub_id_zero(void **state)
{
    static const uint8_t w[] = {0x82, 0x09, 0x00, 0x01, 0x02, 0x0B, 0x00, 0x00, 0x01, 'a', 0x00};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_PROP_VALUE);
    assert_int_equal(mqtt_error_reason(MQTT_ERR_PROP_VALUE), MQTT_RC_PROTOCOL_ERROR);
}

/* A SUBSCRIBE carries at most one Subscription Identifier (3.8.2.1.2). */
static void parse_rejects_subscribe_two_sub_ids(void **state)
{
    static const uint8_t w[] = {0x82, 0x0B, 0x00, 0x01, 0x04, 0x0B, 0x01,
                                0x0B, 0x02, 0x00, 0x01, 'a',  0x00};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_PROP_DUPLICATE);
}

/* A Subscription Identifier over 268,435,455 cannot be encoded: a 5-byte varint. */
static void parse_rejects_subscribe_sub_id_five_bytes(void **state)
{
    static const uint8_t w[] = {0x82, 0x0D, 0x00, 0x01, 0x06, 0x0B, 0x80, 0x80,
                                0x80, 0x80, 0x01, 0x00, 0x01, 'a',  0x00};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_BAD_VARINT);
}

/* Message Expiry is not a SUBSCRIBE property (2.2.2.2). */
static void parse_rejects_subscribe_property_not_allowed(void **state)
{
    static const uint8_t w[] = {0x82, 0x0C, 0x00, 0x01, 0x05, 0x02, 0x00,
                                0x00, 0x00, 0x01, 0x00, 0x01, 'a',  0x00};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_PROP_NOT_ALLOWED);
}

/* UNSUBSCRIBE carries only user properties (3.10.2.1). */
static void parse_rejects_unsubscribe_sub_id(void **state)
{
    static const uint8_t w[] = {0xA2, 0x08, 0x00, 0x01, 0x02, 0x0B, 0x01, 0x00, 0x01, 'a'};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_PROP_NOT_ALLOWED);
}

/* 3.1.1 SUBACK return codes are 0x00-0x02 and 0x80 [MQTT-3.9.3-2]. */
static void parse_rejects_v311_suback_reserved_code(void **state)
{
    static const uint8_t w[] = {0x90, 0x03, 0x00, 0x01, 0x03};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_REASON_INVALID);
}

/* A 5.0 SUBACK uses Subscribe Reason Codes [MQTT-3.9.3-2]: 0x10 is not one. */
static void parse_rejects_v5_suback_reason_invalid(void **state)
{
    static const uint8_t w[] = {0x90, 0x04, 0x00, 0x01, 0x00, 0x10};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_REASON_INVALID);
}

/* An UNSUBACK uses Unsubscribe Reason Codes [MQTT-3.11.3-2]: 0x01 is not one. */
static void parse_rejects_v5_unsuback_reason_invalid(void **state)
{
    static const uint8_t w[] = {0xB0, 0x04, 0x00, 0x01, 0x00, 0x01};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_REASON_INVALID);
}

/* A 3.1.1 UNSUBACK is exactly a packet id. */
static void parse_rejects_v311_unsuback_trailing_bytes(void **state)
{
    static const uint8_t w[] = {0xB0, 0x03, 0x00, 0x01, 0x00};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_TRAILING_BYTES);
}

/* A client never receives SUBSCRIBE/UNSUBSCRIBE, a server never SUBACK/UNSUBACK. */
static void parse_roles_reject_wrong_direction(void **state)
{
    static const struct mqtt_parser server5 = {.version = MQTT_V5, .role = MQTT_ROLE_SERVER};
    const struct pt_golden *sub = pt_golden_get("v5_subscribe");
    const struct pt_golden *unsub = pt_golden_get("v5_unsubscribe");
    const struct pt_golden *sa = pt_golden_get("v5_suback");
    const struct pt_golden *ua = pt_golden_get("v5_unsuback");
    (void)state;
    pt_parse_bad(&client5, sub->wire, sub->len, MQTT_ERR_UNEXPECTED);
    pt_parse_bad(&client5, unsub->wire, unsub->len, MQTT_ERR_UNEXPECTED);
    pt_parse_bad(&server5, sa->wire, sa->len, MQTT_ERR_UNEXPECTED);
    pt_parse_bad(&server5, ua->wire, ua->len, MQTT_ERR_UNEXPECTED);
    assert_int_equal(mqtt_error_reason(MQTT_ERR_UNEXPECTED), MQTT_RC_PROTOCOL_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_v31_subscribe),
        cmocka_unit_test(encode_v31_subscribe),
        cmocka_unit_test(parse_v31_suback),
        cmocka_unit_test(encode_v31_suback),
        cmocka_unit_test(parse_v31_unsubscribe),
        cmocka_unit_test(encode_v31_unsubscribe),
        cmocka_unit_test(parse_and_encode_v3_unsuback),
        cmocka_unit_test(parse_v311_subscribe),
        cmocka_unit_test(encode_v311_subscribe),
        cmocka_unit_test(encode_v311_subscribe_from_raw),
        cmocka_unit_test(parse_v311_suback),
        cmocka_unit_test(encode_v311_suback),
        cmocka_unit_test(parse_v311_unsubscribe),
        cmocka_unit_test(encode_v311_unsubscribe),
        cmocka_unit_test(parse_v5_subscribe),
        cmocka_unit_test(encode_v5_subscribe),
        cmocka_unit_test(sub_opts_byte_packs_every_field),
        cmocka_unit_test(parse_v5_suback),
        cmocka_unit_test(encode_v5_suback),
        cmocka_unit_test(parse_v5_unsubscribe),
        cmocka_unit_test(encode_v5_unsubscribe),
        cmocka_unit_test(parse_v5_unsuback),
        cmocka_unit_test(encode_v5_unsuback),
        cmocka_unit_test(parse_rejects_subscribe_flags),
        cmocka_unit_test(parse_rejects_unsubscribe_flags),
        cmocka_unit_test(parse_rejects_suback_flags),
        cmocka_unit_test(parse_rejects_empty_subscribe),
        cmocka_unit_test(parse_rejects_empty_unsubscribe),
        cmocka_unit_test(parse_rejects_subscribe_zero_packet_id),
        cmocka_unit_test(parse_rejects_hash_not_last),
        cmocka_unit_test(parse_rejects_plus_inside_level),
        cmocka_unit_test(parse_rejects_empty_filter),
        cmocka_unit_test(parse_rejects_bad_utf8_filter),
        cmocka_unit_test(parse_rejects_nul_in_unsubscribe_filter),
        cmocka_unit_test(parse_rejects_v311_subscribe_reserved_option_bits),
        cmocka_unit_test(parse_rejects_subscribe_qos3),
        cmocka_unit_test(parse_rejects_v5_subscribe_reserved_option_bits),
        cmocka_unit_test(parse_rejects_retain_handling_3),
        cmocka_unit_test(parse_rejects_no_local_on_shared_subscription),
        cmocka_unit_test(parse_rejects_empty_share_name),
        cmocka_unit_test(parse_rejects_wildcard_in_share_name),
        cmocka_unit_test(parse_rejects_share_without_filter),
        cmocka_unit_test(parse_rejects_subscribe_missing_options),
        cmocka_unit_test(parse_rejects_unsubscribe_truncated_filter),
        cmocka_unit_test(parse_rejects_subscribe_sub_id_zero),
        cmocka_unit_test(parse_rejects_subscribe_two_sub_ids),
        cmocka_unit_test(parse_rejects_subscribe_sub_id_five_bytes),
        cmocka_unit_test(parse_rejects_subscribe_property_not_allowed),
        cmocka_unit_test(parse_rejects_unsubscribe_sub_id),
        cmocka_unit_test(parse_rejects_v311_suback_reserved_code),
        cmocka_unit_test(parse_rejects_v5_suback_reason_invalid),
        cmocka_unit_test(parse_rejects_v5_unsuback_reason_invalid),
        cmocka_unit_test(parse_rejects_v311_unsuback_trailing_bytes),
        cmocka_unit_test(parse_roles_reject_wrong_direction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
