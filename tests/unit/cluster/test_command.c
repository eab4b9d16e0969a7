/* cluster/command.c: every command type round-trips; every defensive rejection of the
 * decoder; the encoder refuses what the decoder would refuse. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster.h"
#include "command.h"
#include "testlib.h"

#define S(lit) ((struct store_str){lit, sizeof lit - 1})
#define B(lit) ((struct store_blob){(const uint8_t *)lit, sizeof lit - 1})

static const struct store_message msg = {
    .topic = S("a/b/c"),
    .payload = B("payload\0with nul"),
    .props = B("\x02\x00\x00\x00\x3c"),
    .expires_at_ms = 1700000000999ull,
    .qos = 2,
    .retain = true,
};

/* One example of every command type. */
static struct cluster_cmd examples(int type)
{
    struct cluster_cmd c = {.type = (enum cluster_cmd_type)type};
    switch (c.type) {
    case CLUSTER_CMD_SESSION_OPEN:
        c.session_open = (struct store_session){
            .client_id = S("client-1"),
            .node_id = 7,
            .created_at_ms = 123456789,
            .expiry_interval_s = 0xFFFFFFFFu,
            .protocol_version = 5,
            .flags = STORE_SESSION_CLEAN_START | STORE_SESSION_PERSISTENT,
        };
        break;
    case CLUSTER_CMD_SESSION_CLOSE:
    case CLUSTER_CMD_SESSION_EXPIRE:
    case CLUSTER_CMD_SESSION_DELETE:
    case CLUSTER_CMD_WILL_CLEAR:
        c.client = (struct cluster_cmd_client){.client_id = S("c\xc3\xa9"), .at_ms = 42};
        break;
    case CLUSTER_CMD_SUBSCRIBE:
        c.subscribe = (struct store_subscription){.client_id = S("c"),
                                                  .filter = S("$share/g/x/+/#"),
                                                  .options = 0x2E,
                                                  .subscription_id = 268435455u};
        break;
    case CLUSTER_CMD_UNSUBSCRIBE:
        c.unsubscribe = (struct cluster_cmd_unsubscribe){.client_id = S("c"), .filter = S("#")};
        break;
    case CLUSTER_CMD_RETAIN_SET:
        c.retain_set = (struct store_retained){.msg = msg, .publisher_client_id = S("pub")};
        break;
    case CLUSTER_CMD_RETAIN_CLEAR:
        c.retain_clear.topic = S("t");
        break;
    case CLUSTER_CMD_QUEUE_PUSH:
        c.queue_push = (struct store_queued){.client_id = S("q"), .msg_id = UINT64_MAX, .msg = msg};
        break;
    case CLUSTER_CMD_QUEUE_ACK:
        c.queue_ack = (struct cluster_cmd_queue_ack){.client_id = S("q"), .msg_id = 9};
        break;
    case CLUSTER_CMD_QUEUE_DROP_OLDEST:
        c.queue_drop = (struct cluster_cmd_queue_drop){.client_id = S("q"), .count = 3};
        break;
    case CLUSTER_CMD_WILL_SET:
        c.will_set = (struct store_will){.client_id = S("w"), .msg = msg, .delay_interval_s = 60};
        break;
    case CLUSTER_CMD_NODE_UP:
    case CLUSTER_CMD_NODE_DOWN:
        c.node = (struct cluster_cmd_node){.node_id = 3, .address = S("10.0.0.3:7700"), .at_ms = 1};
        break;
    }
    return c;
}

static void str_eq(struct store_str a, struct store_str b)
{
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.ptr, b.ptr, a.len);
    assert_int_equal(a.ptr[a.len], 0); /* decoded strings are NUL-terminated */
}
static void blob_eq(struct store_blob a, struct store_blob b)
{
    assert_int_equal(a.len, b.len);
    if (a.len) assert_memory_equal(a.ptr, b.ptr, a.len);
}
static void msg_eq(const struct store_message *a, const struct store_message *b)
{
    str_eq(a->topic, b->topic);
    blob_eq(a->payload, b->payload);
    blob_eq(a->props, b->props);
    assert_int_equal(a->expires_at_ms, b->expires_at_ms);
    assert_int_equal(a->qos, b->qos);
    assert_int_equal(a->retain, b->retain);
}

static uint8_t *encode(const struct cluster_cmd *c, size_t *len)
{
    size_t n = cluster_cmd_encoded_size(c);
    assert_true(n > 0);
    uint8_t *buf = malloc(n);
    assert_int_equal(cluster_cmd_encode(c, buf, n - 1), 0); /* too small: nothing */
    assert_int_equal(cluster_cmd_encode(c, buf, n), n);
    *len = n;
    return buf;
}

/* Every type encodes and decodes to the same fields. */
static void roundtrip_every_type(void **state)
{
    (void)state;
    for (int type = 1; type <= CLUSTER_CMD_TYPE_MAX; type++) {
        struct cluster_cmd in = examples(type), out;
        size_t len;
        uint8_t *buf = encode(&in, &len);
        assert_int_equal(buf[0], CMD_VERSION);
        assert_int_equal(buf[1], type);
        assert_int_equal(cluster_cmd_decode(buf, len, &out), 0);
        assert_int_equal(out.type, in.type);
        assert_string_not_equal(cluster_cmd_type_name(out.type), "unknown");
        switch (in.type) {
        case CLUSTER_CMD_SESSION_OPEN:
            str_eq(out.session_open.client_id, in.session_open.client_id);
            assert_int_equal(out.session_open.node_id, 7);
            assert_int_equal(out.session_open.created_at_ms, 123456789);
            assert_int_equal(out.session_open.expiry_interval_s, 0xFFFFFFFFu);
            assert_int_equal(out.session_open.protocol_version, 5);
            assert_int_equal(out.session_open.flags, 3);
            break;
        case CLUSTER_CMD_SESSION_CLOSE:
        case CLUSTER_CMD_SESSION_EXPIRE:
        case CLUSTER_CMD_SESSION_DELETE:
        case CLUSTER_CMD_WILL_CLEAR:
            str_eq(out.client.client_id, in.client.client_id);
            assert_int_equal(out.client.at_ms, 42);
            break;
        case CLUSTER_CMD_SUBSCRIBE:
            str_eq(out.subscribe.client_id, in.subscribe.client_id);
            str_eq(out.subscribe.filter, in.subscribe.filter);
            assert_int_equal(out.subscribe.options, 0x2E);
            assert_int_equal(out.subscribe.subscription_id, 268435455u);
            break;
        case CLUSTER_CMD_UNSUBSCRIBE:
            str_eq(out.unsubscribe.client_id, in.unsubscribe.client_id);
            str_eq(out.unsubscribe.filter, in.unsubscribe.filter);
            break;
        case CLUSTER_CMD_RETAIN_SET:
            msg_eq(&out.retain_set.msg, &in.retain_set.msg);
            str_eq(out.retain_set.publisher_client_id, in.retain_set.publisher_client_id);
            break;
        case CLUSTER_CMD_RETAIN_CLEAR:
            str_eq(out.retain_clear.topic, in.retain_clear.topic);
            break;
        case CLUSTER_CMD_QUEUE_PUSH:
            str_eq(out.queue_push.client_id, in.queue_push.client_id);
            assert_int_equal(out.queue_push.msg_id, UINT64_MAX);
            msg_eq(&out.queue_push.msg, &in.queue_push.msg);
            break;
        case CLUSTER_CMD_QUEUE_ACK:
            str_eq(out.queue_ack.client_id, in.queue_ack.client_id);
            assert_int_equal(out.queue_ack.msg_id, 9);
            break;
        case CLUSTER_CMD_QUEUE_DROP_OLDEST:
            str_eq(out.queue_drop.client_id, in.queue_drop.client_id);
            assert_int_equal(out.queue_drop.count, 3);
            break;
        case CLUSTER_CMD_WILL_SET:
            str_eq(out.will_set.client_id, in.will_set.client_id);
            assert_int_equal(out.will_set.delay_interval_s, 60);
            msg_eq(&out.will_set.msg, &in.will_set.msg);
            break;
        case CLUSTER_CMD_NODE_UP:
        case CLUSTER_CMD_NODE_DOWN:
            assert_int_equal(out.node.node_id, 3);
            str_eq(out.node.address, in.node.address);
            assert_int_equal(out.node.at_ms, 1);
            break;
        }
        free(buf);
    }
}

/* Every strict prefix of a valid command, and one extra byte, are refused. */
static void truncation_and_trailing_bytes(void **state)
{
    (void)state;
    for (int type = 1; type <= CLUSTER_CMD_TYPE_MAX; type++) {
        struct cluster_cmd in = examples(type), out;
        size_t len;
        uint8_t *buf = encode(&in, &len);
        for (size_t n = 0; n < len; n++)
            assert_int_equal(cluster_cmd_decode(buf, n, &out), CLUSTER_ECORRUPT);
        uint8_t *longer = malloc(len + 1);
        memcpy(longer, buf, len);
        longer[len] = 0;
        assert_int_equal(cluster_cmd_decode(longer, len + 1, &out), CLUSTER_ECORRUPT);
        free(longer);
        free(buf);
    }
}

/* Encodes the example of a type, lets mutate() break one byte, expects a refusal. */
static void expect_refused(int type, void (*mutate)(uint8_t *buf, size_t len))
{
    struct cluster_cmd in = examples(type), out;
    size_t len;
    uint8_t *buf = encode(&in, &len);
    mutate(buf, len);
    assert_int_equal(cluster_cmd_decode(buf, len, &out), CLUSTER_ECORRUPT);
    free(buf);
}

static void m_version0(uint8_t *b, size_t n)
{
    (void)n;
    b[0] = 0;
}
static void m_version_newer(uint8_t *b, size_t n)
{
    (void)n;
    b[0] = CMD_VERSION + 1;
}
static void m_type0(uint8_t *b, size_t n)
{
    (void)n;
    b[1] = 0;
}
static void m_type_unknown(uint8_t *b, size_t n)
{
    (void)n;
    b[1] = CLUSTER_CMD_TYPE_MAX + 1;
}
/* Client id "client-1" starts at offset 4 (after the u16 length): its NUL is at 12. */
static void m_no_nul(uint8_t *b, size_t n)
{
    (void)n;
    b[12] = 'x';
}
static void m_inner_nul(uint8_t *b, size_t n)
{
    (void)n;
    b[5] = 0;
}
static void m_bad_utf8(uint8_t *b, size_t n)
{
    (void)n;
    b[5] = 0xFF;
}
static void m_empty_client(uint8_t *b, size_t n)
{
    /* Length 0 but the bytes stay: the decoder then sees garbage, refused either way. */
    (void)n;
    b[2] = b[3] = 0;
}
/* session open tail: ... | proto u8 | flags u8 */
static void m_proto2(uint8_t *b, size_t n)
{
    b[n - 2] = 2;
}
static void m_proto6(uint8_t *b, size_t n)
{
    b[n - 2] = 6;
}
static void m_flags(uint8_t *b, size_t n)
{
    b[n - 1] = 0x04;
}
/* subscribe tail: ... | options u8 | sub id u32 */
static void m_opt_reserved(uint8_t *b, size_t n)
{
    b[n - 5] = 0x40;
}
static void m_opt_qos3(uint8_t *b, size_t n)
{
    b[n - 5] = 0x03;
}
static void m_opt_rh3(uint8_t *b, size_t n)
{
    b[n - 5] = 0x30;
}
static void m_sub_id_big(uint8_t *b, size_t n)
{
    b[n - 4] = 0x10; /* 0x10xxxxxx > 268435455 */
}
/* retain set: topic "a/b/c" at 4..8, NUL 9, then qos at 10, retain at 11 */
static void m_qos3(uint8_t *b, size_t n)
{
    (void)n;
    b[10] = 3;
}
static void m_retain2(uint8_t *b, size_t n)
{
    (void)n;
    b[11] = 2;
}
static void m_topic_wildcard(uint8_t *b, size_t n)
{
    (void)n;
    b[5] = '+';
}
/* unsubscribe: client "c" (2..4), filter "#" length at 5..6, '#' at 7 */
static void m_filter_bad(uint8_t *b, size_t n)
{
    (void)n;
    b[5] = 0;
    b[6] = 1;
    b[7] = 0xC0; /* ill-formed UTF-8 */
}
/* node: node id u64 at 2..9 */
static void m_node0(uint8_t *b, size_t n)
{
    (void)n;
    memset(b + 2, 0, 8);
}
/* retain set: payload length field far beyond the buffer */
static void m_blob_huge(uint8_t *b, size_t n)
{
    (void)n;
    /* topic(2+5+1) qos retain expires(8) => props length at 20 */
    b[20] = 0x7F;
}

/* Each defensive check refuses a command that breaks it. */
static void decoder_rejections(void **state)
{
    (void)state;
    expect_refused(CLUSTER_CMD_SESSION_OPEN, m_version0);
    expect_refused(CLUSTER_CMD_SESSION_OPEN, m_version_newer);
    expect_refused(CLUSTER_CMD_SESSION_OPEN, m_type0);
    expect_refused(CLUSTER_CMD_SESSION_OPEN, m_type_unknown);
    expect_refused(CLUSTER_CMD_SESSION_OPEN, m_no_nul);
    expect_refused(CLUSTER_CMD_SESSION_OPEN, m_inner_nul);
    expect_refused(CLUSTER_CMD_SESSION_OPEN, m_bad_utf8);
    expect_refused(CLUSTER_CMD_SESSION_OPEN, m_empty_client);
    expect_refused(CLUSTER_CMD_SESSION_OPEN, m_proto2);
    expect_refused(CLUSTER_CMD_SESSION_OPEN, m_proto6);
    expect_refused(CLUSTER_CMD_SESSION_OPEN, m_flags);
    expect_refused(CLUSTER_CMD_SUBSCRIBE, m_opt_reserved);
    expect_refused(CLUSTER_CMD_SUBSCRIBE, m_opt_qos3);
    expect_refused(CLUSTER_CMD_SUBSCRIBE, m_opt_rh3);
    expect_refused(CLUSTER_CMD_SUBSCRIBE, m_sub_id_big);
    expect_refused(CLUSTER_CMD_RETAIN_SET, m_qos3);
    expect_refused(CLUSTER_CMD_RETAIN_SET, m_retain2);
    expect_refused(CLUSTER_CMD_RETAIN_SET, m_topic_wildcard);
    expect_refused(CLUSTER_CMD_RETAIN_SET, m_blob_huge);
    expect_refused(CLUSTER_CMD_UNSUBSCRIBE, m_filter_bad);
    expect_refused(CLUSTER_CMD_NODE_UP, m_node0);
}

/* The encoder refuses commands the decoder would refuse. */
static void encoder_validates(void **state)
{
    (void)state;
    struct cluster_cmd c = examples(CLUSTER_CMD_SUBSCRIBE);
    c.subscribe.filter = S("a/#/b");
    assert_int_equal(cluster_cmd_encoded_size(&c), 0);
    c = examples(CLUSTER_CMD_RETAIN_SET);
    c.retain_set.msg.qos = 3;
    assert_int_equal(cluster_cmd_encoded_size(&c), 0);
    c = examples(CLUSTER_CMD_RETAIN_SET);
    c.retain_set.msg.topic = S("a/+");
    assert_int_equal(cluster_cmd_encoded_size(&c), 0);
    c = examples(CLUSTER_CMD_SESSION_OPEN);
    c.session_open.client_id = S("");
    assert_int_equal(cluster_cmd_encoded_size(&c), 0);
    c.session_open.client_id = (struct store_str){"a\0b", 3};
    assert_int_equal(cluster_cmd_encoded_size(&c), 0);
    c = examples(CLUSTER_CMD_NODE_DOWN);
    c.node.node_id = 0;
    assert_int_equal(cluster_cmd_encoded_size(&c), 0);
    c.type = (enum cluster_cmd_type)99;
    assert_int_equal(cluster_cmd_encoded_size(&c), 0);
    assert_string_equal(cluster_cmd_type_name((enum cluster_cmd_type)99), "unknown");
    /* Not NUL-terminated input strings are fine: len counts. */
    char id[4] = {'a', 'b', 'c', 'd'};
    c = examples(CLUSTER_CMD_SESSION_DELETE);
    c.client.client_id = (struct store_str){id, 3};
    size_t len;
    uint8_t *buf = encode(&c, &len);
    struct cluster_cmd out;
    assert_int_equal(cluster_cmd_decode(buf, len, &out), 0);
    assert_string_equal(out.client.client_id.ptr, "abc");
    free(buf);
}

/* In the log a command is padded with zeros to a multiple of 8 (raft_uv needs it): the entry
 * decoder accepts up to 7 zero bytes, the plain decoder none, and nothing else is accepted. */
static void entry_padding(void **state)
{
    (void)state;
    struct cluster_cmd in = examples(CLUSTER_CMD_QUEUE_ACK), out;
    size_t len;
    uint8_t *buf = encode(&in, &len);
    size_t entry = cmd_entry_size(len);
    assert_int_equal(entry % 8, 0);
    assert_true(entry >= len && entry < len + 8);
    uint8_t padded[64] = {0};
    assert_true(len + 8 <= sizeof padded);
    memcpy(padded, buf, len);
    for (size_t extra = 0; extra < 8; extra++)
        assert_int_equal(cmd_decode_entry(padded, len + extra, &out), 0);
    assert_int_equal(cmd_decode_entry(padded, len + 8, &out), CLUSTER_ECORRUPT);
    assert_int_equal(cluster_cmd_decode(padded, len + 1, &out), CLUSTER_ECORRUPT);
    padded[len + 2] = 1;
    assert_int_equal(cmd_decode_entry(padded, len + 3, &out), CLUSTER_ECORRUPT);
    free(buf);
}

/* Random byte flips never crash the decoder, and whatever it accepts re-encodes to the same
 * bytes (the decoder accepts only canonical encodings). */
static void random_mutations(void **state)
{
    (void)state;
    uint64_t seed = test_seed();
    for (int round = 0; round < 20000; round++) {
        int type = 1 + (int)(test_rand(&seed) % CLUSTER_CMD_TYPE_MAX);
        struct cluster_cmd in = examples(type), out;
        size_t len;
        uint8_t *buf = encode(&in, &len);
        int flips = 1 + (int)(test_rand(&seed) % 3);
        for (int i = 0; i < flips; i++)
            buf[test_rand(&seed) % len] = (uint8_t)test_rand(&seed);
        size_t cut = test_rand(&seed) % 4 == 0 ? test_rand(&seed) % (len + 1) : len;
        if (cluster_cmd_decode(buf, cut, &out) == 0) {
            size_t n2 = cluster_cmd_encoded_size(&out);
            assert_int_equal(n2, cut);
            uint8_t *again = malloc(n2);
            assert_int_equal(cluster_cmd_encode(&out, again, n2), n2);
            assert_memory_equal(again, buf, n2);
            free(again);
        }
        free(buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_every_type), cmocka_unit_test(truncation_and_trailing_bytes),
        cmocka_unit_test(decoder_rejections),   cmocka_unit_test(encoder_validates),
        cmocka_unit_test(entry_padding),        cmocka_unit_test(random_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
