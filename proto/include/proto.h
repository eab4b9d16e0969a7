/* proto: the MQTT 3.1 / 3.1.1 / 5.0 codec.
 *
 * Contract:
 * - Pure: no I/O, no clocks, no logging, no global state. Thread-safe as long as each call
 *   has its own objects.
 * - No hidden allocation. mqtt_parse() points into the caller's buffer; the encoders write into
 *   caller buffers sized with mqtt_encoded_size() first. The only component that allocates,
 *   struct mqtt_reader, does so through the allocator its caller hands it.
 * - Decoded strings, binaries, property blocks and topic lists point into the parsed buffer:
 *   they are valid while that buffer is unchanged (for mqtt_reader: until the next
 *   mqtt_reader_next() or mqtt_reader_feed() call).
 * - Errors: bad input is reported as an enum mqtt_error, each kind distinct, each mapped to the
 *   MQTT 5 reason code a server sends for it (mqtt_error_reason()).
 * - Conformance statements are cited as [MQTT-x.y.z-n] at the check and in its test;
 *   tests/unit/proto/CONFORMANCE.md lists every statement of 3.1.1 and 5.0 with its test.
 */
#ifndef STARLING_PROTO_H
#define STARLING_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Protocol levels as carried in CONNECT. */
enum mqtt_version {
    MQTT_V31 = 3,  /* "MQIsdp" */
    MQTT_V311 = 4, /* "MQTT" */
    MQTT_V5 = 5,   /* "MQTT" */
};

enum mqtt_type {
    MQTT_CONNECT = 1,
    MQTT_CONNACK = 2,
    MQTT_PUBLISH = 3,
    MQTT_PUBACK = 4,
    MQTT_PUBREC = 5,
    MQTT_PUBREL = 6,
    MQTT_PUBCOMP = 7,
    MQTT_SUBSCRIBE = 8,
    MQTT_SUBACK = 9,
    MQTT_UNSUBSCRIBE = 10,
    MQTT_UNSUBACK = 11,
    MQTT_PINGREQ = 12,
    MQTT_PINGRESP = 13,
    MQTT_DISCONNECT = 14,
    MQTT_AUTH = 15, /* MQTT 5 only */
};

/* MQTT 5 reason codes (also used for 3.x CONNACK return codes through mqtt_connack_v3_code()). */
enum mqtt_reason {
    MQTT_RC_SUCCESS = 0x00, /* also Normal disconnection, Granted QoS 0 */
    MQTT_RC_GRANTED_QOS1 = 0x01,
    MQTT_RC_GRANTED_QOS2 = 0x02,
    MQTT_RC_DISCONNECT_WITH_WILL = 0x04,
    MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
    MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
    MQTT_RC_CONTINUE_AUTHENTICATION = 0x18,
    MQTT_RC_REAUTHENTICATE = 0x19,
    MQTT_RC_UNSPECIFIED_ERROR = 0x80,
    MQTT_RC_MALFORMED_PACKET = 0x81,
    MQTT_RC_PROTOCOL_ERROR = 0x82,
    MQTT_RC_IMPLEMENTATION_SPECIFIC_ERROR = 0x83,
    MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84,
    MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID = 0x85,
    MQTT_RC_BAD_USERNAME_OR_PASSWORD = 0x86,
    MQTT_RC_NOT_AUTHORIZED = 0x87,
    MQTT_RC_SERVER_UNAVAILABLE = 0x88,
    MQTT_RC_SERVER_BUSY = 0x89,
    MQTT_RC_BANNED = 0x8A,
    MQTT_RC_SERVER_SHUTTING_DOWN = 0x8B,
    MQTT_RC_BAD_AUTHENTICATION_METHOD = 0x8C,
    MQTT_RC_KEEP_ALIVE_TIMEOUT = 0x8D,
    MQTT_RC_SESSION_TAKEN_OVER = 0x8E,
    MQTT_RC_TOPIC_FILTER_INVALID = 0x8F,
    MQTT_RC_TOPIC_NAME_INVALID = 0x90,
    MQTT_RC_PACKET_IDENTIFIER_IN_USE = 0x91,
    MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND = 0x92,
    MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93,
    MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
    MQTT_RC_PACKET_TOO_LARGE = 0x95,
    MQTT_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
    MQTT_RC_QUOTA_EXCEEDED = 0x97,
    MQTT_RC_ADMINISTRATIVE_ACTION = 0x98,
    MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99,
    MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9A,
    MQTT_RC_QOS_NOT_SUPPORTED = 0x9B,
    MQTT_RC_USE_ANOTHER_SERVER = 0x9C,
    MQTT_RC_SERVER_MOVED = 0x9D,
    MQTT_RC_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E,
    MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
    MQTT_RC_MAXIMUM_CONNECT_TIME = 0xA0,
    MQTT_RC_SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1,
    MQTT_RC_WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2,
};

/* The name of a reason code ("Malformed Packet"), or "Unknown" for one the spec lacks. */
const char *mqtt_reason_str(uint8_t reason);

/* Whether an MQTT 5 packet of the given type may carry reason code rc: each packet's table of
 * the specification (CONNACK [MQTT-3.2.2-8], PUBACK [MQTT-3.4.2-1], PUBREC [MQTT-3.5.2-1],
 * PUBREL [MQTT-3.6.2-1], PUBCOMP [MQTT-3.7.2-1], SUBACK [MQTT-3.9.3-2], UNSUBACK
 * [MQTT-3.11.3-2], DISCONNECT [MQTT-3.14.2-1], AUTH [MQTT-3.15.2-1]). mqtt_parse() refuses
 * any other; the encoders write the code they are given, so a sender checks with this. False
 * for types without a reason code. */
bool mqtt_reason_allowed(uint8_t type, uint8_t rc);

/* MQTT 3.x CONNACK return codes (0 accepted .. 5 not authorized) for an MQTT 5 reason code. */
uint8_t mqtt_connack_v3_code(uint8_t reason);

/* Every distinct kind of bad input. mqtt_error_reason() maps each to the reason code a server
 * sends for it; mqtt_error_str() describes it for a log line. */
enum mqtt_error {
    MQTT_ERR_NONE = 0,
    MQTT_ERR_RESERVED_TYPE,         /* packet type 0, or 15 before MQTT 5 */
    MQTT_ERR_RESERVED_FLAGS,        /* fixed-header flags not as the type requires */
    MQTT_ERR_QOS3,                  /* PUBLISH with both QoS bits set [MQTT-3.3.1-4] */
    MQTT_ERR_DUP_QOS0,              /* DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2] */
    MQTT_ERR_BAD_VARINT,            /* more than 4 bytes, or an overlong encoding */
    MQTT_ERR_TOO_LARGE,             /* over the maximum packet size */
    MQTT_ERR_TRUNCATED,             /* a field runs past the end of the packet */
    MQTT_ERR_TRAILING_BYTES,        /* bytes left over after the last field */
    MQTT_ERR_BAD_UTF8,              /* ill-formed UTF-8, surrogates, overlong [MQTT-1.5.4-1] */
    MQTT_ERR_UTF8_NULL,             /* U+0000 in a UTF-8 string [MQTT-1.5.4-2] */
    MQTT_ERR_ZERO_PACKET_ID,        /* packet identifier 0 where one is required */
    MQTT_ERR_BAD_PROTOCOL_NAME,     /* neither "MQTT" nor "MQIsdp" [MQTT-3.1.2-1] */
    MQTT_ERR_BAD_PROTOCOL_VERSION,  /* unknown level, or level and name disagree */
    MQTT_ERR_CONNECT_RESERVED,      /* CONNECT flags bit 0 set [MQTT-3.1.2-3] */
    MQTT_ERR_WILL_FLAGS,            /* will QoS/retain set without will flag, or will QoS 3 */
    MQTT_ERR_PASSWORD_WITHOUT_USER, /* 3.1.1: password flag without username [MQTT-3.1.2-22] */
    MQTT_ERR_TOPIC_EMPTY,           /* zero-length topic name (without an alias in v5) */
    MQTT_ERR_TOPIC_WILDCARD,        /* '+' or '#' in a topic name [MQTT-3.3.2-2] */
    MQTT_ERR_FILTER_INVALID,        /* misplaced '+' or '#', or empty filter [MQTT-4.7.1-*] */
    MQTT_ERR_SHARE_INVALID,         /* bad $share/<group>/<filter>, or No Local on one */
    MQTT_ERR_NO_TOPICS,             /* SUBSCRIBE/UNSUBSCRIBE without any [MQTT-3.8.3-3] */
    MQTT_ERR_SUB_OPTIONS,           /* reserved subscription option bits, or QoS 3 */
    MQTT_ERR_PROP_UNKNOWN,          /* property identifier the spec does not define */
    MQTT_ERR_PROP_NOT_ALLOWED,      /* not allowed on this packet (or side) [MQTT-3.3.4-6] */
    MQTT_ERR_PROP_DUPLICATE,        /* property that may appear once appears twice */
    MQTT_ERR_PROP_VALUE,            /* property value out of range */
    MQTT_ERR_REASON_INVALID,        /* reason code not allowed on this packet */
    MQTT_ERR_CONNACK_FLAGS,         /* CONNACK acknowledge flags reserved bits */
    MQTT_ERR_RETAIN_HANDLING,       /* Retain Handling 3 in 5.0 subscription options */
    MQTT_ERR_UNEXPECTED,            /* a packet this side never receives (parser role) */
};
uint8_t mqtt_error_reason(enum mqtt_error err);
const char *mqtt_error_str(enum mqtt_error err);

/* A length-prefixed UTF-8 string or binary field. Not NUL-terminated. */
struct mqtt_str {
    const char *ptr;
    uint16_t len;
};
struct mqtt_bin {
    const uint8_t *ptr;
    uint16_t len;
};
/* Build a struct mqtt_str from a C string literal or variable. */
#define MQTT_STR(s) ((struct mqtt_str){.ptr = (s), .len = (uint16_t)strlen(s)})

/* MQTT 5 property identifiers. */
enum mqtt_prop_id {
    MQTT_PROP_PAYLOAD_FORMAT = 0x01,
    MQTT_PROP_MESSAGE_EXPIRY = 0x02,
    MQTT_PROP_CONTENT_TYPE = 0x03,
    MQTT_PROP_RESPONSE_TOPIC = 0x08,
    MQTT_PROP_CORRELATION_DATA = 0x09,
    MQTT_PROP_SUBSCRIPTION_ID = 0x0B,
    MQTT_PROP_SESSION_EXPIRY = 0x11,
    MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,
    MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,
    MQTT_PROP_AUTH_METHOD = 0x15,
    MQTT_PROP_AUTH_DATA = 0x16,
    MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,
    MQTT_PROP_WILL_DELAY = 0x18,
    MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,
    MQTT_PROP_RESPONSE_INFO = 0x1A,
    MQTT_PROP_SERVER_REFERENCE = 0x1C,
    MQTT_PROP_REASON_STRING = 0x1F,
    MQTT_PROP_RECEIVE_MAXIMUM = 0x21,
    MQTT_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
    MQTT_PROP_TOPIC_ALIAS = 0x23,
    MQTT_PROP_MAXIMUM_QOS = 0x24,
    MQTT_PROP_RETAIN_AVAILABLE = 0x25,
    MQTT_PROP_USER_PROPERTY = 0x26,
    MQTT_PROP_MAXIMUM_PACKET_SIZE = 0x27,
    MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
    MQTT_PROP_SUB_ID_AVAILABLE = 0x29,
    MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2A,
};
#define MQTT_PROP_BIT(id) (UINT64_C(1) << (id))

struct mqtt_user_prop {
    struct mqtt_str key;
    struct mqtt_str value;
};

/* The properties of one packet (or of a CONNECT's will), typed.
 *
 * `present` has MQTT_PROP_BIT(id) set for every single-valued property that is present; the
 * typed field holds its value. mqtt_parse() does not clear the typed fields of absent properties
 * (that would cost more than the rest of parsing a small PUBLISH): test `present` before reading
 * one. payload_format and topic_alias alone are also 0 when absent. User properties (repeatable,
 * order kept) and subscription identifiers (repeatable in a server's PUBLISH) are counted here and
 * read in order with mqtt_prop_next() over `raw`.
 *
 * Encoding: single-valued properties are written when their bit is set. User properties come
 * from `user` [user_count] when `user` is set, otherwise from the user properties inside `raw`
 * (so a decoded block passes through unchanged, in order). Subscription identifiers come from
 * `sub_ids` [sub_id_count] when set, otherwise from `sub_id` when sub_id_count is 1. */
struct mqtt_props {
    uint64_t present;
    uint8_t payload_format;
    uint32_t message_expiry_s;
    struct mqtt_str content_type;
    struct mqtt_str response_topic;
    struct mqtt_bin correlation_data;
    uint32_t session_expiry_s;
    struct mqtt_str assigned_client_id;
    uint16_t server_keep_alive_s;
    struct mqtt_str auth_method;
    struct mqtt_bin auth_data;
    uint8_t request_problem_info;
    uint32_t will_delay_s;
    uint8_t request_response_info;
    struct mqtt_str response_info;
    struct mqtt_str server_reference;
    struct mqtt_str reason_string;
    uint16_t receive_maximum;
    uint16_t topic_alias_maximum;
    uint16_t topic_alias;
    uint8_t maximum_qos;
    uint8_t retain_available;
    uint32_t maximum_packet_size;
    uint8_t wildcard_sub_available;
    uint8_t sub_id_available;
    uint8_t shared_sub_available;

    uint32_t sub_id;       /* the first subscription identifier, if sub_id_count > 0 */
    uint32_t sub_id_count; /* how many subscription identifiers */
    const uint32_t *sub_ids;
    uint32_t user_count; /* how many user properties */
    const struct mqtt_user_prop *user;

    const uint8_t *raw; /* the encoded property block (after its length), when decoded */
    uint32_t raw_len;
};

/* One property as read from an encoded block. */
struct mqtt_prop {
    uint8_t id;
    union {
        uint32_t u32; /* byte, two byte, four byte and variable byte integers */
        struct mqtt_str str;
        struct mqtt_bin bin;
        struct mqtt_user_prop pair;
    } v;
};

/* Reads the property at *pos in [*pos, end) and advances *pos.
 * Returns 1 with *out filled, 0 at the end of the block, or -1 if the block is malformed
 * (cannot happen on a block that mqtt_parse() accepted). */
int mqtt_prop_next(const uint8_t **pos, const uint8_t *end, struct mqtt_prop *out);

/* Subscription options byte of MQTT 5 (3.x carries only the QoS bits). */
enum mqtt_retain_handling {
    MQTT_RH_SEND = 0,        /* send retained messages at subscribe */
    MQTT_RH_SEND_IF_NEW = 1, /* only if the subscription did not exist */
    MQTT_RH_DONT_SEND = 2,
};
struct mqtt_sub_opts {
    uint8_t qos;
    bool no_local;
    bool retain_as_published;
    uint8_t retain_handling; /* enum mqtt_retain_handling */
};
uint8_t mqtt_sub_opts_byte(struct mqtt_sub_opts o);

/* One topic filter of a SUBSCRIBE (opts unused for UNSUBSCRIBE). */
struct mqtt_topic_entry {
    struct mqtt_str filter;
    struct mqtt_sub_opts opts;
};

/* The list of a SUBSCRIBE / UNSUBSCRIBE payload, or the reason codes of SUBACK / UNSUBACK.
 * Decoded: `raw`/`raw_len` is the payload and `count` its entries; read them in order with
 * mqtt_topic_next(). Encoding: `list` [count] when set, else `raw` is copied. */
struct mqtt_topic_list {
    uint32_t count;
    const struct mqtt_topic_entry *list;
    const uint8_t *raw;
    uint32_t raw_len;
};

/* Reads the entry at *pos of a SUBSCRIBE (with_opts) or UNSUBSCRIBE payload that mqtt_parse()
 * accepted. Returns 1 with *out filled, 0 at the end. */
int mqtt_topic_next(const uint8_t **pos, const uint8_t *end, bool with_opts,
                    struct mqtt_topic_entry *out);

struct mqtt_connect {
    uint8_t version; /* enum mqtt_version */
    bool clean_start;
    uint16_t keepalive_s;
    struct mqtt_str client_id;
    bool will_flag;
    uint8_t will_qos;
    bool will_retain;
    struct mqtt_props will_props; /* MQTT 5 */
    struct mqtt_str will_topic;
    struct mqtt_bin will_payload;
    bool has_username;
    struct mqtt_str username;
    bool has_password;
    struct mqtt_bin password;
};

struct mqtt_connack {
    bool session_present;
    uint8_t reason; /* MQTT 5 reason code; encoded for 3.x via mqtt_connack_v3_code() */
};

struct mqtt_publish {
    uint8_t qos;
    bool dup;
    bool retain;
    struct mqtt_str topic;
    uint16_t packet_id;     /* QoS > 0 only */
    const uint8_t *payload; /* payloads may exceed 64 KiB, hence not a struct mqtt_bin */
    uint32_t payload_len;
};

/* PUBACK, PUBREC, PUBREL, PUBCOMP. In MQTT 5 the reason code and properties may be omitted
 * on the wire when the reason is success and there are no properties. */
struct mqtt_ack {
    uint16_t packet_id;
    uint8_t reason;
};

struct mqtt_subscribe { /* SUBSCRIBE and UNSUBSCRIBE */
    uint16_t packet_id;
    struct mqtt_topic_list topics;
};

struct mqtt_suback { /* SUBACK and UNSUBACK (3.x UNSUBACK carries no reason codes) */
    uint16_t packet_id;
    const uint8_t *reasons;
    uint32_t count;
};

struct mqtt_disconnect { /* DISCONNECT and AUTH (MQTT 5: reason and properties optional) */
    uint8_t reason;
};

struct mqtt_packet {
    uint8_t type;            /* enum mqtt_type */
    uint8_t flags;           /* the fixed header's low nibble */
    uint32_t remaining_len;  /* remaining length from the fixed header */
    uint32_t wire_len;       /* fixed header + remaining length: bytes consumed */
    enum mqtt_error error;   /* set when mqtt_parse() returns MQTT_PARSE_BAD */
    uint8_t reason;          /* mqtt_error_reason(error) when bad */
    struct mqtt_props props; /* MQTT 5 properties of the variable header */
    union {
        struct mqtt_connect connect;
        struct mqtt_connack connack;
        struct mqtt_publish publish;
        struct mqtt_ack ack;
        struct mqtt_subscribe subscribe;   /* also unsubscribe */
        struct mqtt_suback suback;         /* also unsuback */
        struct mqtt_disconnect disconnect; /* also auth */
    } u;
};

/* Which side parses: a server parses what clients send and rejects what only servers send
 * (CONNACK, SUBACK, UNSUBACK, PINGRESP), and the reverse for a client (CONNECT, SUBSCRIBE,
 * UNSUBSCRIBE, PINGREQ, and DISCONNECT before MQTT 5), with MQTT_ERR_UNEXPECTED. A server
 * also rejects a PUBLISH carrying a subscription identifier [MQTT-3.3.4-6], and a client a
 * DISCONNECT carrying a Session Expiry Interval [MQTT-3.14.2-2] (MQTT_ERR_PROP_NOT_ALLOWED).
 * MQTT_ROLE_ANY accepts both directions. */
enum mqtt_role {
    MQTT_ROLE_ANY = 0,
    MQTT_ROLE_SERVER = 1,
    MQTT_ROLE_CLIENT = 2,
};

struct mqtt_parser {
    /* Protocol level of the connection; CONNECT carries its own, and the caller sets this from
     * u.connect.version afterwards. 0 (not known yet) parses like 3.1.1. With MQTT_V31, DUP is
     * tolerated on PUBREL, SUBSCRIBE and UNSUBSCRIBE, as 3.1 retries set it. */
    uint8_t version;
    uint8_t role;             /* enum mqtt_role */
    uint32_t max_packet_size; /* whole packet, fixed header included; 0: the protocol maximum */
};

enum mqtt_parse_result {
    MQTT_PARSE_DONE = 0, /* *pkt is filled; pkt->wire_len bytes were used */
    MQTT_PARSE_MORE = 1, /* buf holds part of a packet; call again with more bytes */
    MQTT_PARSE_BAD = 2,  /* pkt->error and pkt->reason say why */
};

/* Parses one packet from the start of buf[0..len). Never reads outside it, whatever the input.
 * The packet size limit is checked as soon as the fixed header is complete, before any of the
 * body need be present: a too-large packet is MQTT_PARSE_BAD with MQTT_ERR_TOO_LARGE.
 * With MQTT_PARSE_MORE, *need_out (if not NULL) gets the total bytes the packet needs when the
 * fixed header is complete, else 0. Decoded fields point into buf. */
enum mqtt_parse_result mqtt_parse(const struct mqtt_parser *p, const uint8_t *buf, size_t len,
                                  struct mqtt_packet *pkt, size_t *need_out);

/* Encoding. The caller fills a struct mqtt_packet (type, u.*, props), asks for the exact size,
 * and encodes into a buffer of at least that size. Flags for PUBLISH come from u.publish
 * (dup, qos, retain); other packets get the flags the spec fixes. Properties are written only
 * for MQTT 5. Returns the bytes written, or 0 if cap is too small, if the packet cannot be
 * represented (e.g. remaining length over 268,435,455), or if it breaks a rule of its
 * fixed-size fields that a sender must follow and mqtt_parse() enforces: QoS 3 or DUP on
 * QoS 0 [MQTT-3.3.1-4] [MQTT-3.3.1-2], a zero packet identifier, will QoS 3, a 3.x password
 * without a user name, Session Present with a refusal, an empty topic name (without a 5.0
 * Topic Alias), an empty SUBSCRIBE / UNSUBSCRIBE / SUBACK, subscription options QoS 3 or
 * Retain Handling 3 or No Local on $share, a property the packet does not allow or out of
 * range. mqtt_encoded_size() returns 0 for the same packets. Strings (UTF-8, wildcards in
 * topic names, filter syntax) and reason codes (see mqtt_reason_allowed()) are the caller's
 * to choose and validate: a decoded packet has them checked already. */
size_t mqtt_encoded_size(const struct mqtt_packet *pkt, uint8_t version);
size_t mqtt_encode(const struct mqtt_packet *pkt, uint8_t version, uint8_t *out, size_t cap);

/* Size of the encoded property block of props (without its length prefix). */
size_t mqtt_props_size(const struct mqtt_props *props);

/* Variable byte integers: encode into out (at most 4 bytes) and return the length; decode from
 * buf[0..len) returning bytes used, 0 if more bytes are needed, -1 if malformed. */
size_t mqtt_varint_encode(uint32_t value, uint8_t *out);
size_t mqtt_varint_size(uint32_t value);
int mqtt_varint_decode(const uint8_t *buf, size_t len, uint32_t *value);
#define MQTT_VARINT_MAX 268435455u

/* ---- Validation and topic tools ---- */

/* Well-formed UTF-8 per [MQTT-1.5.4-1] and no U+0000 [MQTT-1.5.4-2]. Returns MQTT_ERR_NONE,
 * MQTT_ERR_BAD_UTF8 or MQTT_ERR_UTF8_NULL. Control characters and non-characters are allowed
 * (the spec says SHOULD NOT), see mqtt_utf8_has_controls(). */
enum mqtt_error mqtt_utf8_check(const char *s, size_t len);
bool mqtt_utf8_has_controls(const char *s, size_t len);

/* A topic name for PUBLISH: non-empty, no wildcards, valid UTF-8. */
enum mqtt_error mqtt_topic_name_check(const char *s, size_t len);
/* A topic filter: non-empty, '#' only last and alone in its level, '+' alone in its level.
 * $share/<group>/<filter> is checked when allow_shared (group non-empty, no wildcards). */
enum mqtt_error mqtt_topic_filter_check(const char *s, size_t len, bool allow_shared);

/* Splits "$share/<group>/<filter>". Returns true and fills group and filter when s is a
 * shared-subscription filter (valid or not: check it with mqtt_topic_filter_check()). */
bool mqtt_topic_share_split(const char *s, size_t len, struct mqtt_str *group,
                            struct mqtt_str *filter);

/* Whether topic name matches filter (no $share prefix). A filter whose first level is a
 * wildcard never matches a topic that starts with '$' [MQTT-4.7.2-1]. */
bool mqtt_filter_matches(const char *filter, size_t filter_len, const char *topic,
                         size_t topic_len);

/* Whether a filter contains a wildcard. */
bool mqtt_filter_has_wildcard(const char *s, size_t len);

/* ---- Incremental reader: bytes in any split, whole packets out ----
 *
 * mqtt_reader_feed() appends bytes; mqtt_reader_next() returns the next whole packet. The buffer
 * grows only to hold the packet in flight (plus whatever else one feed brought), and never
 * beyond the parser's maximum packet size for it: a packet announced as too large (or with a
 * bad fixed header) is rejected from its fixed header, before its body is buffered, and the
 * buffer is freed. An emptied buffer over 64 KiB is given back at the next feed. Change
 * r->parser.version once the CONNECT is parsed. */
struct mqtt_allocator {
    /* realloc semantics; size 0 frees and returns NULL. */
    void *(*realloc)(void *ctx, void *ptr, size_t size);
    void *ctx;
};

struct mqtt_reader {
    struct mqtt_parser parser;
    struct mqtt_allocator alloc;
    uint8_t *buf;
    size_t len; /* bytes held */
    size_t off; /* start of unconsumed bytes */
    size_t cap;
    bool failed;           /* a bad packet was seen: the stream is unusable */
    enum mqtt_error error; /* why, once failed */
};

void mqtt_reader_init(struct mqtt_reader *r, const struct mqtt_parser *p,
                      struct mqtt_allocator alloc);
void mqtt_reader_close(struct mqtt_reader *r);
/* Appends len bytes. Returns 0, or -ENOMEM. */
int mqtt_reader_feed(struct mqtt_reader *r, const uint8_t *data, size_t len);
/* MQTT_PARSE_DONE with *pkt (valid until the next feed/next call), MQTT_PARSE_MORE when no whole
 * packet is buffered, MQTT_PARSE_BAD (and every later call too) on bad input. */
enum mqtt_parse_result mqtt_reader_next(struct mqtt_reader *r, struct mqtt_packet *pkt);

#endif
