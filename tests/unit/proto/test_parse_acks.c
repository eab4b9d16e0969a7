/* CONNACK, PUBACK/PUBREC/PUBREL/PUBCOMP, PINGREQ/PINGRESP, DISCONNECT and AUTH in every version. */
#include "proto_test.h"

#define BIT(id) MQTT_PROP_BIT(MQTT_PROP_##id)

static const struct mqtt_parser server311 = {.version = MQTT_V311, .role = MQTT_ROLE_SERVER};
static const struct mqtt_parser client311 = {.version = MQTT_V311, .role = MQTT_ROLE_CLIENT};

static struct mqtt_packet connack(bool session_present, uint8_t reason)
{
    struct mqtt_packet pkt = {.type = MQTT_CONNACK};
    pkt.u.connack.session_present = session_present;
    pkt.u.connack.reason = reason;
    return pkt;
}

static struct mqtt_packet ack(uint8_t type, uint16_t packet_id, uint8_t reason)
{
    struct mqtt_packet pkt = {.type = type};
    pkt.u.ack.packet_id = packet_id;
    pkt.u.ack.reason = reason;
    return pkt;
}

/* ---- CONNACK ---- */

static void parse_v31_connack(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v31_connack", &pkt);
    assert_int_equal(pkt.type, MQTT_CONNACK);
    assert_false(pkt.u.connack.session_present);
    assert_int_equal(pkt.u.connack.reason, MQTT_RC_SUCCESS);
}

static void encode_v31_connack(void **state)
{
    struct mqtt_packet pkt = connack(false, MQTT_RC_SUCCESS);
    (void)state;
    pt_encode_golden(&pkt, "v31_connack");
}

/* 3.x return code 2 is "identifier rejected", reason 0x85 in MQTT 5 terms. */
static void parse_v31_connack_identifier_rejected(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v31_connack_id_rejected", &pkt);
    assert_int_equal(pkt.u.connack.reason, MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID);
}

static void encode_v31_connack_identifier_rejected(void **state)
{
    struct mqtt_packet pkt = connack(false, MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID);
    (void)state;
    pt_encode_golden(&pkt, "v31_connack_id_rejected");
}

static void parse_v311_connack_session_present(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v311_connack_session_present", &pkt);
    assert_true(pkt.u.connack.session_present);
    assert_int_equal(pkt.u.connack.reason, MQTT_RC_SUCCESS);
}

static void encode_v311_connack_session_present(void **state)
{
    struct mqtt_packet pkt = connack(true, MQTT_RC_SUCCESS);
    (void)state;
    pt_encode_golden(&pkt, "v311_connack_session_present");
}

/* 3.1.1 return code 4, "bad user name or password", is reason 0x86. */
static void parse_v311_connack_bad_auth(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v311_connack_bad_auth", &pkt);
    assert_int_equal(pkt.u.connack.reason, MQTT_RC_BAD_USERNAME_OR_PASSWORD);
}

static void encode_v311_connack_bad_auth(void **state)
{
    struct mqtt_packet pkt = connack(false, MQTT_RC_BAD_USERNAME_OR_PASSWORD);
    (void)state;
    pt_encode_golden(&pkt, "v311_connack_bad_auth");
}

static void parse_v5_connack_min(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_connack_min", &pkt);
    assert_false(pkt.u.connack.session_present);
    assert_int_equal(pkt.props.present, 0);
}

static void encode_v5_connack_min(void **state)
{
    struct mqtt_packet pkt = connack(false, 0);
    (void)state;
    pt_encode_golden(&pkt, "v5_connack_min");
}

#define CONNACK_BITS                                                                               \
    (BIT(ASSIGNED_CLIENT_ID) | BIT(SERVER_KEEP_ALIVE) | BIT(REASON_STRING) |                       \
     BIT(RECEIVE_MAXIMUM) | BIT(TOPIC_ALIAS_MAXIMUM) | BIT(MAXIMUM_QOS) | BIT(RETAIN_AVAILABLE) |  \
     BIT(MAXIMUM_PACKET_SIZE) | BIT(WILDCARD_SUB_AVAILABLE) | BIT(SUB_ID_AVAILABLE) |              \
     BIT(SHARED_SUB_AVAILABLE))

/* Every CONNACK property a server announces. */
static void parse_v5_connack_props(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_connack_props", &pkt);
    const struct mqtt_props *p = &pkt.props;
    assert_true(pkt.u.connack.session_present);
    assert_int_equal(p->present, CONNACK_BITS);
    pt_assert_str_equal(p->assigned_client_id, "abc");
    assert_int_equal(p->server_keep_alive_s, 30);
    pt_assert_str_equal(p->reason_string, "ok");
    assert_int_equal(p->receive_maximum, 10);
    assert_int_equal(p->topic_alias_maximum, 5);
    assert_int_equal(p->maximum_qos, 1);
    assert_int_equal(p->retain_available, 0);
    assert_int_equal(p->maximum_packet_size, 16384);
    assert_int_equal(p->wildcard_sub_available, 1);
    assert_int_equal(p->sub_id_available, 0);
    assert_int_equal(p->shared_sub_available, 1);
    assert_int_equal(p->user_count, 0);
}

static void encode_v5_connack_props(void **state)
{
    struct mqtt_packet pkt = connack(true, 0);
    struct mqtt_props *p = &pkt.props;
    (void)state;
    p->present = CONNACK_BITS;
    p->assigned_client_id = MQTT_STR("abc");
    p->server_keep_alive_s = 30;
    p->reason_string = MQTT_STR("ok");
    p->receive_maximum = 10;
    p->topic_alias_maximum = 5;
    p->maximum_qos = 1;
    p->retain_available = 0;
    p->maximum_packet_size = 16384;
    p->wildcard_sub_available = 1;
    p->sub_id_available = 0;
    p->shared_sub_available = 1;
    pt_encode_golden(&pkt, "v5_connack_props");
}

static void parse_v5_connack_not_authorized(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_connack_not_authorized", &pkt);
    assert_int_equal(pkt.u.connack.reason, MQTT_RC_NOT_AUTHORIZED);
}

static void encode_v5_connack_not_authorized(void **state)
{
    struct mqtt_packet pkt = connack(false, MQTT_RC_NOT_AUTHORIZED);
    (void)state;
    pt_encode_golden(&pkt, "v5_connack_not_authorized");
}

static void parse_v5_connack_server_reference(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_connack_use_another_server", &pkt);
    assert_int_equal(pkt.u.connack.reason, MQTT_RC_USE_ANOTHER_SERVER);
    assert_int_equal(pkt.props.present, BIT(SERVER_REFERENCE));
    pt_assert_str_equal(pkt.props.server_reference, "s2");
}

static void encode_v5_connack_server_reference(void **state)
{
    struct mqtt_packet pkt = connack(false, MQTT_RC_USE_ANOTHER_SERVER);
    (void)state;
    pkt.props.present = BIT(SERVER_REFERENCE);
    pkt.props.server_reference = MQTT_STR("s2");
    pt_encode_golden(&pkt, "v5_connack_use_another_server");
}

static void parse_v5_connack_response_info(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_connack_response_info", &pkt);
    assert_int_equal(pkt.props.present, BIT(RESPONSE_INFO));
    pt_assert_str_equal(pkt.props.response_info, "ri");
}

static void encode_v5_connack_response_info(void **state)
{
    struct mqtt_packet pkt = connack(false, 0);
    (void)state;
    pkt.props.present = BIT(RESPONSE_INFO);
    pkt.props.response_info = MQTT_STR("ri");
    pt_encode_golden(&pkt, "v5_connack_response_info");
}

/* Bits 7-1 of the acknowledge flags are reserved: 3.1.1 3.2.2.1, 5.0 [MQTT-3.2.2-1]. */
static void parse_rejects_connack_reserved_flags(void **state)
{
    static const uint8_t w311[] = {0x20, 0x02, 0x02, 0x00};
    static const uint8_t w5[] = {0x20, 0x03, 0x80, 0x00, 0x00};
    (void)state;
    PT_BAD(&pt_v311, w311, MQTT_ERR_CONNACK_FLAGS);
    PT_BAD(&pt_v5, w5, MQTT_ERR_CONNACK_FLAGS);
}

/* 3.1.1 return codes 6-255 are reserved (3.2.2.3). */
static void parse_rejects_v311_connack_reserved_return_code(void **state)
{
    static const uint8_t w[] = {0x20, 0x02, 0x00, 0x06};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_REASON_INVALID);
}

/* A CONNACK uses a Connect Reason Code [MQTT-3.2.2-8]: 0x04 is not one (3.2.2.2). */
static void parse_rejects_v5_connack_reason_invalid(void **state)
{
    static const uint8_t w[] = {0x20, 0x03, 0x00, 0x04, 0x00};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_REASON_INVALID);
}

/* Maximum QoS other than 0/1 is a protocol error (3.2.2.3.4). */
static void parse_rejects_connack_maximum_qos_2(void **state)
{
    static const uint8_t w[] = {0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_PROP_VALUE);
}

/* Retain Available other than 0/1 is a protocol error (3.2.2.3.5). */
static void parse_rejects_connack_retain_available_2(void **state)
{
    static const uint8_t w[] = {0x20, 0x05, 0x00, 0x00, 0x02, 0x25, 0x02};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_PROP_VALUE);
}

/* Will Delay Interval belongs to a will, not to a CONNACK (2.2.2.2). */
static void parse_rejects_connack_property_not_allowed(void **state)
{
    static const uint8_t w[] = {0x20, 0x08, 0x00, 0x00, 0x05, 0x18, 0x00, 0x00, 0x00, 0x01};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_PROP_NOT_ALLOWED);
}

/* A 3.1.1 CONNACK has exactly two bytes after its fixed header. */
static void parse_rejects_connack_trailing_bytes(void **state)
{
    static const uint8_t w[] = {0x20, 0x03, 0x00, 0x00, 0x00};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_TRAILING_BYTES);
    assert_int_equal(mqtt_error_reason(MQTT_ERR_TRAILING_BYTES), MQTT_RC_MALFORMED_PACKET);
}

static void parse_rejects_connack_truncated(void **state)
{
    static const uint8_t w[] = {0x20, 0x01, 0x00};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_TRUNCATED);
}

/* The CONNACK's fixed-header flags are reserved [MQTT-2.2.2-1]. */
static void parse_rejects_connack_fixed_header_flags(void **state)
{
    static const uint8_t w[] = {0x21, 0x02, 0x00, 0x00};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_RESERVED_FLAGS);
}

/* A server never receives a CONNACK. */
static void parse_server_rejects_connack(void **state)
{
    const struct pt_golden *g = pt_golden_get("v311_connack_session_present");
    (void)state;
    pt_parse_bad(&server311, g->wire, g->len, MQTT_ERR_UNEXPECTED);
}

/* ---- PUBACK, PUBREC, PUBREL, PUBCOMP ---- */

static const struct {
    const char *name;
    uint8_t type;
    uint16_t packet_id;
    uint8_t reason;
} acks[] = {
    {"v31_puback", MQTT_PUBACK, 7, 0},       {"v31_pubrec", MQTT_PUBREC, 7, 0},
    {"v31_pubrel", MQTT_PUBREL, 7, 0},       {"v31_pubcomp", MQTT_PUBCOMP, 7, 0},
    {"v311_puback", MQTT_PUBACK, 0x1234, 0}, {"v311_pubrec", MQTT_PUBREC, 0x1234, 0},
    {"v311_pubrel", MQTT_PUBREL, 0x1234, 0}, {"v311_pubcomp", MQTT_PUBCOMP, 0x1234, 0},
    {"v5_puback", MQTT_PUBACK, 5, 0},        {"v5_puback_reason", MQTT_PUBACK, 5, 0x10},
    {"v5_pubrec", MQTT_PUBREC, 5, 0x91},     {"v5_pubrel", MQTT_PUBREL, 5, 0x92},
    {"v5_pubcomp", MQTT_PUBCOMP, 5, 0},
};

/* Each acknowledgement golden vector parses to its type, packet id and reason. */
static void parse_pub_acks(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof acks / sizeof acks[0]; i++) {
        struct mqtt_packet pkt;
        pt_parse_golden(acks[i].name, &pkt);
        assert_int_equal(pkt.type, acks[i].type);
        assert_int_equal(pkt.u.ack.packet_id, acks[i].packet_id);
        assert_int_equal(pkt.u.ack.reason, acks[i].reason);
        assert_int_equal(pkt.flags, acks[i].type == MQTT_PUBREL ? 2 : 0);
    }
}

/* Each acknowledgement encodes to its golden vector: in MQTT 5 the reason code is omitted
 * when it is success without properties, and the property length when there are none. */
static void encode_pub_acks(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof acks / sizeof acks[0]; i++) {
        struct mqtt_packet pkt = ack(acks[i].type, acks[i].packet_id, acks[i].reason);
        pt_encode_golden(&pkt, acks[i].name);
    }
}

static void parse_v5_puback_props(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_puback_props", &pkt);
    assert_int_equal(pkt.u.ack.reason, MQTT_RC_UNSPECIFIED_ERROR);
    assert_int_equal(pkt.props.present, BIT(REASON_STRING));
    pt_assert_str_equal(pkt.props.reason_string, "err");
    assert_int_equal(pkt.props.user_count, 1);
}

static void encode_v5_puback_props(void **state)
{
    static const struct mqtt_user_prop kv[] = {{{"k", 1}, {"v", 1}}};
    struct mqtt_packet pkt = ack(MQTT_PUBACK, 5, MQTT_RC_UNSPECIFIED_ERROR);
    (void)state;
    pkt.props.present = BIT(REASON_STRING);
    pkt.props.reason_string = MQTT_STR("err");
    pkt.props.user = kv;
    pkt.props.user_count = 1;
    pt_encode_golden(&pkt, "v5_puback_props");
}

/* The long form with a zero property length is accepted too (3.4.2.2). */
static void parse_v5_puback_empty_props(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_puback_empty_props", &pkt);
    assert_int_equal(pkt.u.ack.packet_id, 5);
    assert_int_equal(pkt.u.ack.reason, 0);
    assert_int_equal(pkt.props.present, 0);
}

/* PUBREL's fixed-header flags are 0010 [MQTT-3.6.1-1]. */
static void parse_rejects_pubrel_flags(void **state)
{
    static const uint8_t w[] = {0x60, 0x02, 0x00, 0x01};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_RESERVED_FLAGS);
    assert_int_equal(mqtt_error_reason(MQTT_ERR_RESERVED_FLAGS), MQTT_RC_MALFORMED_PACKET);
}

/* PUBACK, PUBREC and PUBCOMP flags are 0000 [MQTT-2.2.2-1]. */
static void parse_rejects_puback_flags(void **state)
{
    static const uint8_t puback[] = {0x41, 0x02, 0x00, 0x01};
    static const uint8_t pubrec[] = {0x52, 0x02, 0x00, 0x01};
    static const uint8_t pubcomp[] = {0x78, 0x02, 0x00, 0x01};
    (void)state;
    PT_BAD(&pt_v311, puback, MQTT_ERR_RESERVED_FLAGS);
    PT_BAD(&pt_v5, pubrec, MQTT_ERR_RESERVED_FLAGS);
    PT_BAD(&pt_v31, pubcomp, MQTT_ERR_RESERVED_FLAGS);
}

/* A 3.1.1 PUBACK is exactly a packet id. */
static void parse_rejects_v311_puback_trailing_bytes(void **state)
{
    static const uint8_t w[] = {0x40, 0x03, 0x00, 0x01, 0x00};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_TRAILING_BYTES);
}

static void parse_rejects_puback_truncated(void **state)
{
    static const uint8_t w[] = {0x40, 0x01, 0x00};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_TRUNCATED);
    PT_BAD(&pt_v5, w, MQTT_ERR_TRUNCATED);
}

/* A PUBACK uses a PUBACK Reason Code [MQTT-3.4.2-1]: 0x04 is not one (3.4.2.1). */
static void parse_rejects_puback_reason_invalid(void **state)
{
    static const uint8_t w[] = {0x40, 0x03, 0x00, 0x01, 0x04};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_REASON_INVALID);
}

/* A PUBREL uses a PUBREL Reason Code, 0x00 or 0x92 [MQTT-3.6.2-1]. */
static void parse_rejects_pubrel_reason_invalid(void **state)
{
    static const uint8_t w[] = {0x62, 0x03, 0x00, 0x01, 0x10};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_REASON_INVALID);
}

/* A PUBREC uses a PUBREC Reason Code [MQTT-3.5.2-1]: 0x92 belongs to PUBREL only. */
static void parse_rejects_pubrec_reason_invalid(void **state)
{
    static const uint8_t w[] = {0x50, 0x03, 0x00, 0x01, 0x92};
    static const uint8_t ok[] = {0x50, 0x03, 0x00, 0x01, 0x91};
    struct mqtt_packet pkt;
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_REASON_INVALID);
    PT_OK(&pt_v5, ok, &pkt);
    assert_int_equal(pkt.u.ack.reason, MQTT_RC_PACKET_IDENTIFIER_IN_USE);
}

/* A PUBCOMP uses a PUBCOMP Reason Code, 0x00 or 0x92 [MQTT-3.7.2-1]. */
static void parse_rejects_pubcomp_reason_invalid(void **state)
{
    static const uint8_t w[] = {0x70, 0x03, 0x00, 0x01, 0x80};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_REASON_INVALID);
}

/* Reason String twice is a protocol error (3.4.2.2.2). */
static void parse_rejects_puback_duplicate_reason_string(void **state)
{
    static const uint8_t w[] = {0x40, 0x0C, 0x00, 0x01, 0x80, 0x08, 0x1F,
                                0x00, 0x01, 'a',  0x1F, 0x00, 0x01, 'b'};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_PROP_DUPLICATE);
}

/* A Topic Alias is not a PUBACK property (2.2.2.2). */
static void parse_rejects_puback_property_not_allowed(void **state)
{
    static const uint8_t w[] = {0x40, 0x07, 0x00, 0x01, 0x00, 0x03, 0x23, 0x00, 0x01};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_PROP_NOT_ALLOWED);
}

/* ---- PINGREQ, PINGRESP ---- */

static void parse_and_encode_pings(void **state)
{
    static const char *const names[] = {"v31_pingreq",   "v31_pingresp", "v311_pingreq",
                                        "v311_pingresp", "v5_pingreq",   "v5_pingresp"};
    (void)state;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct mqtt_packet pkt;
        pt_parse_golden(names[i], &pkt);
        assert_int_equal(pkt.type, i % 2 == 0 ? MQTT_PINGREQ : MQTT_PINGRESP);
        assert_int_equal(pkt.remaining_len, 0);
        struct mqtt_packet out = {.type = pkt.type};
        pt_encode_golden(&out, names[i]);
    }
}

/* PINGREQ has no variable header or payload (3.12). */
static void parse_rejects_pingreq_trailing_bytes(void **state)
{
    static const uint8_t w[] = {0xC0, 0x01, 0x00};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_TRAILING_BYTES);
}

/* PINGREQ flags are 0000 [MQTT-2.2.2-1]. */
static void parse_rejects_pingreq_flags(void **state)
{
    static const uint8_t w[] = {0xC1, 0x00};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_RESERVED_FLAGS);
}

/* Only servers send PINGRESP, only clients PINGREQ. */
static void parse_roles_reject_wrong_pings(void **state)
{
    static const uint8_t req[] = {0xC0, 0x00};
    static const uint8_t resp[] = {0xD0, 0x00};
    struct mqtt_packet pkt;
    (void)state;
    PT_BAD(&server311, resp, MQTT_ERR_UNEXPECTED);
    PT_BAD(&client311, req, MQTT_ERR_UNEXPECTED);
    PT_OK(&server311, req, &pkt);
    PT_OK(&client311, resp, &pkt);
}

/* ---- DISCONNECT ---- */

static void parse_and_encode_v3_disconnect(void **state)
{
    static const char *const names[] = {"v31_disconnect", "v311_disconnect", "v5_disconnect"};
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct mqtt_packet pkt;
        pt_parse_golden(names[i], &pkt);
        assert_int_equal(pkt.type, MQTT_DISCONNECT);
        assert_int_equal(pkt.u.disconnect.reason, 0);
        struct mqtt_packet out = {.type = MQTT_DISCONNECT};
        pt_encode_golden(&out, names[i]);
    }
}

static void parse_v5_disconnect_with_will(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_disconnect_with_will", &pkt);
    assert_int_equal(pkt.u.disconnect.reason, MQTT_RC_DISCONNECT_WITH_WILL);
}

static void encode_v5_disconnect_with_will(void **state)
{
    struct mqtt_packet pkt = {.type = MQTT_DISCONNECT};
    (void)state;
    pkt.u.disconnect.reason = MQTT_RC_DISCONNECT_WITH_WILL;
    pt_encode_golden(&pkt, "v5_disconnect_with_will");
}

static void parse_v5_disconnect_session_expiry(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_disconnect_session_expiry", &pkt);
    assert_int_equal(pkt.props.present, BIT(SESSION_EXPIRY));
    assert_int_equal(pkt.props.session_expiry_s, 10);
}

static void encode_v5_disconnect_session_expiry(void **state)
{
    struct mqtt_packet pkt = {.type = MQTT_DISCONNECT};
    (void)state;
    pkt.props.present = BIT(SESSION_EXPIRY);
    pkt.props.session_expiry_s = 10;
    pt_encode_golden(&pkt, "v5_disconnect_session_expiry");
}

static void parse_v5_disconnect_server_moved(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_disconnect_server_moved", &pkt);
    assert_int_equal(pkt.u.disconnect.reason, MQTT_RC_SERVER_MOVED);
    pt_assert_str_equal(pkt.props.server_reference, "s2");
}

static void encode_v5_disconnect_server_moved(void **state)
{
    struct mqtt_packet pkt = {.type = MQTT_DISCONNECT};
    (void)state;
    pkt.u.disconnect.reason = MQTT_RC_SERVER_MOVED;
    pkt.props.present = BIT(SERVER_REFERENCE);
    pkt.props.server_reference = MQTT_STR("s2");
    pt_encode_golden(&pkt, "v5_disconnect_server_moved");
}

/* 3.1.1 DISCONNECT has no variable header (3.14). */
static void parse_rejects_v311_disconnect_trailing_bytes(void **state)
{
    static const uint8_t w[] = {0xE0, 0x01, 0x00};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_TRAILING_BYTES);
}

/* DISCONNECT flags are 0000: 3.1.1 [MQTT-3.14.1-1], 5.0 [MQTT-3.14.1-1]. */
static void parse_rejects_disconnect_flags(void **state)
{
    static const uint8_t w[] = {0xE2, 0x00};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_RESERVED_FLAGS);
    PT_BAD(&pt_v5, w, MQTT_ERR_RESERVED_FLAGS);
}

/* A DISCONNECT uses a DISCONNECT Reason Code [MQTT-3.14.2-1]: 0x01 is not one. */
static void parse_rejects_disconnect_reason_invalid(void **state)
{
    static const uint8_t w[] = {0xE0, 0x01, 0x01};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_REASON_INVALID);
}

/* A Topic Alias is not a DISCONNECT property (2.2.2.2). */
static void parse_rejects_disconnect_property_not_allowed(void **state)
{
    static const uint8_t w[] = {0xE0, 0x05, 0x00, 0x03, 0x23, 0x00, 0x01};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_PROP_NOT_ALLOWED);
}

/* ---- AUTH ---- */

/* AUTH with reason 0 and no properties may have a remaining length of 0 (3.15.2.1). */
static void parse_v5_auth(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_auth", &pkt);
    assert_int_equal(pkt.type, MQTT_AUTH);
    assert_int_equal(pkt.u.disconnect.reason, MQTT_RC_SUCCESS);
}

static void encode_v5_auth(void **state)
{
    struct mqtt_packet pkt = {.type = MQTT_AUTH};
    (void)state;
    pt_encode_golden(&pkt, "v5_auth");
}

static void parse_v5_auth_continue(void **state)
{
    struct mqtt_packet pkt;
    (void)state;
    pt_parse_golden("v5_auth_continue", &pkt);
    assert_int_equal(pkt.u.disconnect.reason, MQTT_RC_CONTINUE_AUTHENTICATION);
    assert_int_equal(pkt.props.present, BIT(AUTH_METHOD) | BIT(AUTH_DATA));
    pt_assert_str_equal(pkt.props.auth_method, "SCRAM");
    assert_int_equal(pkt.props.auth_data.len, 3);
    assert_int_equal(pkt.props.auth_data.ptr[2], 3);
}

static void encode_v5_auth_continue(void **state)
{
    static const uint8_t data[] = {1, 2, 3};
    struct mqtt_packet pkt = {.type = MQTT_AUTH};
    (void)state;
    pkt.u.disconnect.reason = MQTT_RC_CONTINUE_AUTHENTICATION;
    pkt.props.present = BIT(AUTH_METHOD) | BIT(AUTH_DATA);
    pkt.props.auth_method = MQTT_STR("SCRAM");
    pkt.props.auth_data = (struct mqtt_bin){data, 3};
    pt_encode_golden(&pkt, "v5_auth_continue");
}

/* An AUTH uses an Authenticate Reason Code, 0x00, 0x18 or 0x19 [MQTT-3.15.2-1]. */
static void parse_rejects_auth_reason_invalid(void **state)
{
    static const uint8_t w[] = {0xF0, 0x02, 0x80, 0x00};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_REASON_INVALID);
}

/* AUTH flags are 0000 [MQTT-3.15.1-1]. */
static void parse_rejects_auth_flags(void **state)
{
    static const uint8_t w[] = {0xF1, 0x00};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_RESERVED_FLAGS);
}

/* Packet type 15 is reserved before MQTT 5 (3.1.1 2.2.1). */
static void parse_rejects_auth_before_v5(void **state)
{
    static const uint8_t w[] = {0xF0, 0x00};
    (void)state;
    PT_BAD(&pt_v311, w, MQTT_ERR_RESERVED_TYPE);
    PT_BAD(&pt_v31, w, MQTT_ERR_RESERVED_TYPE);
}

/* Authentication Method twice is a protocol error (3.15.2.2.2). */
static void parse_rejects_auth_duplicate_method(void **state)
{
    static const uint8_t w[] = {0xF0, 0x0C, 0x18, 0x0A, 0x15, 0x00, 0x02,
                                'a',  'b',  0x15, 0x00, 0x02, 'c',  'd'};
    (void)state;
    PT_BAD(&pt_v5, w, MQTT_ERR_PROP_DUPLICATE);
}

/* A CONNACK refusing the connection has Session Present 0: 3.1.1 [MQTT-3.2.2-4],
 * 5.0 [MQTT-3.2.2-6]. */
static void parse_rejects_session_present_on_refusal(void **state)
{
    static const uint8_t w311[] = {0x20, 0x02, 0x01, 0x05};
    static const uint8_t w5[] = {0x20, 0x03, 0x01, 0x87, 0x00};
    (void)state;
    PT_BAD(&client311, w311, MQTT_ERR_CONNACK_FLAGS);
    PT_BAD(&pt_v5, w5, MQTT_ERR_CONNACK_FLAGS);
}

/* A server never sends Session Expiry Interval in DISCONNECT [MQTT-3.14.2-2]. */
static void parse_client_rejects_session_expiry_in_disconnect(void **state)
{
    static const struct mqtt_parser client5 = {.version = MQTT_V5, .role = MQTT_ROLE_CLIENT};
    const struct pt_golden *g = pt_golden_get("v5_disconnect_session_expiry");
    (void)state;
    pt_parse_bad(&client5, g->wire, g->len, MQTT_ERR_PROP_NOT_ALLOWED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_v31_connack),
        cmocka_unit_test(encode_v31_connack),
        cmocka_unit_test(parse_v31_connack_identifier_rejected),
        cmocka_unit_test(encode_v31_connack_identifier_rejected),
        cmocka_unit_test(parse_v311_connack_session_present),
        cmocka_unit_test(encode_v311_connack_session_present),
        cmocka_unit_test(parse_v311_connack_bad_auth),
        cmocka_unit_test(encode_v311_connack_bad_auth),
        cmocka_unit_test(parse_v5_connack_min),
        cmocka_unit_test(encode_v5_connack_min),
        cmocka_unit_test(parse_v5_connack_props),
        cmocka_unit_test(encode_v5_connack_props),
        cmocka_unit_test(parse_v5_connack_not_authorized),
        cmocka_unit_test(encode_v5_connack_not_authorized),
        cmocka_unit_test(parse_v5_connack_server_reference),
        cmocka_unit_test(encode_v5_connack_server_reference),
        cmocka_unit_test(parse_v5_connack_response_info),
        cmocka_unit_test(encode_v5_connack_response_info),
        cmocka_unit_test(parse_rejects_connack_reserved_flags),
        cmocka_unit_test(parse_rejects_v311_connack_reserved_return_code),
        cmocka_unit_test(parse_rejects_v5_connack_reason_invalid),
        cmocka_unit_test(parse_rejects_connack_maximum_qos_2),
        cmocka_unit_test(parse_rejects_connack_retain_available_2),
        cmocka_unit_test(parse_rejects_connack_property_not_allowed),
        cmocka_unit_test(parse_rejects_connack_trailing_bytes),
        cmocka_unit_test(parse_rejects_connack_truncated),
        cmocka_unit_test(parse_rejects_connack_fixed_header_flags),
        cmocka_unit_test(parse_server_rejects_connack),
        cmocka_unit_test(parse_pub_acks),
        cmocka_unit_test(encode_pub_acks),
        cmocka_unit_test(parse_v5_puback_props),
        cmocka_unit_test(encode_v5_puback_props),
        cmocka_unit_test(parse_v5_puback_empty_props),
        cmocka_unit_test(parse_rejects_pubrel_flags),
        cmocka_unit_test(parse_rejects_puback_flags),
        cmocka_unit_test(parse_rejects_v311_puback_trailing_bytes),
        cmocka_unit_test(parse_rejects_puback_truncated),
        cmocka_unit_test(parse_rejects_puback_reason_invalid),
        cmocka_unit_test(parse_rejects_pubrel_reason_invalid),
        cmocka_unit_test(parse_rejects_pubrec_reason_invalid),
        cmocka_unit_test(parse_rejects_pubcomp_reason_invalid),
        cmocka_unit_test(parse_rejects_puback_duplicate_reason_string),
        cmocka_unit_test(parse_rejects_puback_property_not_allowed),
        cmocka_unit_test(parse_and_encode_pings),
        cmocka_unit_test(parse_rejects_pingreq_trailing_bytes),
        cmocka_unit_test(parse_rejects_pingreq_flags),
        cmocka_unit_test(parse_roles_reject_wrong_pings),
        cmocka_unit_test(parse_and_encode_v3_disconnect),
        cmocka_unit_test(parse_v5_disconnect_with_will),
        cmocka_unit_test(encode_v5_disconnect_with_will),
        cmocka_unit_test(parse_v5_disconnect_session_expiry),
        cmocka_unit_test(encode_v5_disconnect_session_expiry),
        cmocka_unit_test(parse_v5_disconnect_server_moved),
        cmocka_unit_test(encode_v5_disconnect_server_moved),
        cmocka_unit_test(parse_rejects_v311_disconnect_trailing_bytes),
        cmocka_unit_test(parse_rejects_disconnect_flags),
        cmocka_unit_test(parse_rejects_disconnect_reason_invalid),
        cmocka_unit_test(parse_rejects_disconnect_property_not_allowed),
        cmocka_unit_test(parse_v5_auth),
        cmocka_unit_test(encode_v5_auth),
        cmocka_unit_test(parse_v5_auth_continue),
        cmocka_unit_test(encode_v5_auth_continue),
        cmocka_unit_test(parse_rejects_auth_reason_invalid),
        cmocka_unit_test(parse_rejects_auth_flags),
        cmocka_unit_test(parse_rejects_auth_before_v5),
        cmocka_unit_test(parse_rejects_auth_duplicate_method),
        cmocka_unit_test(parse_rejects_session_present_on_refusal),
        cmocka_unit_test(parse_client_rejects_session_expiry_in_disconnect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
