/* Reason codes: their names, the 3.x CONNACK return codes, and the error kinds of the codec
 * with the reason code a server sends for each. */
#include "codec.h"

const char *mqtt_reason_str(uint8_t reason)
{
    switch (reason) {
    case MQTT_RC_SUCCESS:
        return "Success";
    case MQTT_RC_GRANTED_QOS1:
        return "Granted QoS 1";
    case MQTT_RC_GRANTED_QOS2:
        return "Granted QoS 2";
    case MQTT_RC_DISCONNECT_WITH_WILL:
        return "Disconnect with Will Message";
    case MQTT_RC_NO_MATCHING_SUBSCRIBERS:
        return "No matching subscribers";
    case MQTT_RC_NO_SUBSCRIPTION_EXISTED:
        return "No subscription existed";
    case MQTT_RC_CONTINUE_AUTHENTICATION:
        return "Continue authentication";
    case MQTT_RC_REAUTHENTICATE:
        return "Re-authenticate";
    case MQTT_RC_UNSPECIFIED_ERROR:
        return "Unspecified error";
    case MQTT_RC_MALFORMED_PACKET:
        return "Malformed Packet";
    case MQTT_RC_PROTOCOL_ERROR:
        return "Protocol Error";
    case MQTT_RC_IMPLEMENTATION_SPECIFIC_ERROR:
        return "Implementation specific error";
    case MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION:
        return "Unsupported Protocol Version";
    case MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID:
        return "Client Identifier not valid";
    case MQTT_RC_BAD_USERNAME_OR_PASSWORD:
        return "Bad User Name or Password";
    case MQTT_RC_NOT_AUTHORIZED:
        return "Not authorized";
    case MQTT_RC_SERVER_UNAVAILABLE:
        return "Server unavailable";
    case MQTT_RC_SERVER_BUSY:
        return "Server busy";
    case MQTT_RC_BANNED:
        return "Banned";
    case MQTT_RC_SERVER_SHUTTING_DOWN:
        return "Server shutting down";
    case MQTT_RC_BAD_AUTHENTICATION_METHOD:
        return "Bad authentication method";
    case MQTT_RC_KEEP_ALIVE_TIMEOUT:
        return "Keep Alive timeout";
    case MQTT_RC_SESSION_TAKEN_OVER:
        return "Session taken over";
    case MQTT_RC_TOPIC_FILTER_INVALID:
        return "Topic Filter invalid";
    case MQTT_RC_TOPIC_NAME_INVALID:
        return "Topic Name invalid";
    case MQTT_RC_PACKET_IDENTIFIER_IN_USE:
        return "Packet Identifier in use";
    case MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND:
        return "Packet Identifier not found";
    case MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED:
        return "Receive Maximum exceeded";
    case MQTT_RC_TOPIC_ALIAS_INVALID:
        return "Topic Alias invalid";
    case MQTT_RC_PACKET_TOO_LARGE:
        return "Packet too large";
    case MQTT_RC_MESSAGE_RATE_TOO_HIGH:
        return "Message rate too high";
    case MQTT_RC_QUOTA_EXCEEDED:
        return "Quota exceeded";
    case MQTT_RC_ADMINISTRATIVE_ACTION:
        return "Administrative action";
    case MQTT_RC_PAYLOAD_FORMAT_INVALID:
        return "Payload format invalid";
    case MQTT_RC_RETAIN_NOT_SUPPORTED:
        return "Retain not supported";
    case MQTT_RC_QOS_NOT_SUPPORTED:
        return "QoS not supported";
    case MQTT_RC_USE_ANOTHER_SERVER:
        return "Use another server";
    case MQTT_RC_SERVER_MOVED:
        return "Server moved";
    case MQTT_RC_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED:
        return "Shared Subscriptions not supported";
    case MQTT_RC_CONNECTION_RATE_EXCEEDED:
        return "Connection rate exceeded";
    case MQTT_RC_MAXIMUM_CONNECT_TIME:
        return "Maximum connect time";
    case MQTT_RC_SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED:
        return "Subscription Identifiers not supported";
    case MQTT_RC_WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED:
        return "Wildcard Subscriptions not supported";
    default:
        return "Unknown";
    }
}

/* MQTT 5.0 section 2.4 and each packet's reason code table: [MQTT-3.2.2-8] CONNACK,
 * [MQTT-3.4.2-1] PUBACK, [MQTT-3.5.2-1] PUBREC, [MQTT-3.6.2-1] PUBREL, [MQTT-3.7.2-1] PUBCOMP,
 * [MQTT-3.9.3-2] SUBACK, [MQTT-3.11.3-2] UNSUBACK, [MQTT-3.14.2-1] DISCONNECT,
 * [MQTT-3.15.2-1] AUTH. */
bool mqtt_reason_allowed(uint8_t type, uint8_t rc)
{
    static const uint8_t connack[] = {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
                                      0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
                                      0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
    static const uint8_t puback[] = {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99};
    static const uint8_t pubrel[] = {0x00, 0x92};
    static const uint8_t suback[] = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
                                     0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
    static const uint8_t unsuback[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
    static const uint8_t disconnect[] = {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
                                         0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
                                         0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
    static const uint8_t auth[] = {0x00, 0x18, 0x19};
    const uint8_t *set;
    size_t n;
    switch (type) {
    case MQTT_CONNACK:
        set = connack, n = sizeof connack;
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
        set = puback, n = sizeof puback;
        break;
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        set = pubrel, n = sizeof pubrel;
        break;
    case MQTT_SUBACK:
        set = suback, n = sizeof suback;
        break;
    case MQTT_UNSUBACK:
        set = unsuback, n = sizeof unsuback;
        break;
    case MQTT_DISCONNECT:
        set = disconnect, n = sizeof disconnect;
        break;
    case MQTT_AUTH:
        set = auth, n = sizeof auth;
        break;
    default:
        return false;
    }
    return memchr(set, rc, n) != NULL;
}

/* 3.1.1 section 3.2.2.3: 0 accepted, 1 unacceptable protocol version, 2 identifier rejected,
 * 3 server unavailable, 4 bad user name or password, 5 not authorized. */
uint8_t mqtt_connack_v3_code(uint8_t reason)
{
    switch (reason) {
    case MQTT_RC_SUCCESS:
        return 0;
    case MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION:
        return 1;
    case MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID:
        return 2;
    case MQTT_RC_BAD_USERNAME_OR_PASSWORD:
    case MQTT_RC_BAD_AUTHENTICATION_METHOD:
        return 4;
    case MQTT_RC_NOT_AUTHORIZED:
    case MQTT_RC_BANNED:
        return 5;
    default: /* server unavailable, busy, moved, quota, ... */
        return 3;
    }
}

uint8_t mqtt_error_reason(enum mqtt_error err)
{
    switch (err) {
    case MQTT_ERR_NONE:
        return MQTT_RC_SUCCESS;
    case MQTT_ERR_TOO_LARGE:
        return MQTT_RC_PACKET_TOO_LARGE;
    case MQTT_ERR_BAD_PROTOCOL_NAME:
    case MQTT_ERR_BAD_PROTOCOL_VERSION:
        return MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION; /* [MQTT-3.1.2-2] */
    case MQTT_ERR_TOPIC_WILDCARD:
        return MQTT_RC_TOPIC_NAME_INVALID;
    case MQTT_ERR_FILTER_INVALID:
        return MQTT_RC_TOPIC_FILTER_INVALID;
    case MQTT_ERR_ZERO_PACKET_ID:
    case MQTT_ERR_TOPIC_EMPTY:
    case MQTT_ERR_SHARE_INVALID:
    case MQTT_ERR_NO_TOPICS:
    case MQTT_ERR_PROP_DUPLICATE:
    case MQTT_ERR_PROP_VALUE:
    case MQTT_ERR_RETAIN_HANDLING:
    case MQTT_ERR_UNEXPECTED:
        return MQTT_RC_PROTOCOL_ERROR;
    case MQTT_ERR_RESERVED_TYPE:
    case MQTT_ERR_RESERVED_FLAGS:
    case MQTT_ERR_QOS3:
    case MQTT_ERR_DUP_QOS0:
    case MQTT_ERR_BAD_VARINT:
    case MQTT_ERR_TRUNCATED:
    case MQTT_ERR_TRAILING_BYTES:
    case MQTT_ERR_BAD_UTF8:
    case MQTT_ERR_UTF8_NULL:
    case MQTT_ERR_CONNECT_RESERVED:
    case MQTT_ERR_WILL_FLAGS:
    case MQTT_ERR_PASSWORD_WITHOUT_USER:
    case MQTT_ERR_SUB_OPTIONS:
    case MQTT_ERR_PROP_UNKNOWN:
    case MQTT_ERR_PROP_NOT_ALLOWED: /* "not valid for its packet type" is malformed (2.2.2.2) */
    case MQTT_ERR_REASON_INVALID:
    case MQTT_ERR_CONNACK_FLAGS:
        return MQTT_RC_MALFORMED_PACKET;
    }
    return MQTT_RC_UNSPECIFIED_ERROR;
}

const char *mqtt_error_str(enum mqtt_error err)
{
    switch (err) {
    case MQTT_ERR_NONE:
        return "no error";
    case MQTT_ERR_RESERVED_TYPE:
        return "reserved packet type";
    case MQTT_ERR_RESERVED_FLAGS:
        return "reserved fixed header flags";
    case MQTT_ERR_QOS3:
        return "PUBLISH with QoS 3";
    case MQTT_ERR_DUP_QOS0:
        return "DUP set on a QoS 0 PUBLISH";
    case MQTT_ERR_BAD_VARINT:
        return "malformed variable byte integer";
    case MQTT_ERR_TOO_LARGE:
        return "packet over the maximum packet size";
    case MQTT_ERR_TRUNCATED:
        return "field runs past the end of the packet";
    case MQTT_ERR_TRAILING_BYTES:
        return "trailing bytes after the last field";
    case MQTT_ERR_BAD_UTF8:
        return "ill-formed UTF-8 string";
    case MQTT_ERR_UTF8_NULL:
        return "U+0000 in a UTF-8 string";
    case MQTT_ERR_ZERO_PACKET_ID:
        return "packet identifier 0";
    case MQTT_ERR_BAD_PROTOCOL_NAME:
        return "unknown protocol name";
    case MQTT_ERR_BAD_PROTOCOL_VERSION:
        return "unsupported protocol version";
    case MQTT_ERR_CONNECT_RESERVED:
        return "CONNECT reserved flag set";
    case MQTT_ERR_WILL_FLAGS:
        return "invalid will QoS or retain flags";
    case MQTT_ERR_PASSWORD_WITHOUT_USER:
        return "password flag without user name flag";
    case MQTT_ERR_TOPIC_EMPTY:
        return "empty topic name";
    case MQTT_ERR_TOPIC_WILDCARD:
        return "wildcard in a topic name";
    case MQTT_ERR_FILTER_INVALID:
        return "invalid topic filter";
    case MQTT_ERR_SHARE_INVALID:
        return "invalid shared subscription";
    case MQTT_ERR_NO_TOPICS:
        return "SUBSCRIBE or UNSUBSCRIBE without topic filters";
    case MQTT_ERR_SUB_OPTIONS:
        return "invalid subscription options";
    case MQTT_ERR_PROP_UNKNOWN:
        return "unknown property identifier";
    case MQTT_ERR_PROP_NOT_ALLOWED:
        return "property not allowed on this packet";
    case MQTT_ERR_PROP_DUPLICATE:
        return "property included more than once";
    case MQTT_ERR_PROP_VALUE:
        return "property value out of range";
    case MQTT_ERR_REASON_INVALID:
        return "reason code not allowed on this packet";
    case MQTT_ERR_CONNACK_FLAGS:
        return "invalid CONNACK acknowledge flags";
    case MQTT_ERR_RETAIN_HANDLING:
        return "Retain Handling 3";
    case MQTT_ERR_UNEXPECTED:
        return "packet not expected by this side";
    }
    return "unknown error";
}
