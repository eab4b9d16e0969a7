/* Messages: one shared body per message; each subscriber's PUBLISH is a few head bytes plus
 * slices of that body. Every layout is checked by parsing the gathered bytes with the codec
 * (mqtt_parse), in 3.1.1 and 5.0, QoS 0/1/2, DUP, RETAIN, aliases, subscription identifiers,
 * the remaining expiry and pass-through properties in order; refcounts and failures. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mem.h"
#include "msg.h"
#include "testlib.h"

static long baseline;

static int setup(void **state)
{
    (void)state;
    mem_fault_set(-1, 0);
    baseline = mem_live_blocks();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mem_fault_set(-1, 0);
    assert_int_equal(mem_live_blocks(), baseline);
    return 0;
}

static struct msg *simple(const char *topic, const char *payload, uint8_t qos, bool retain)
{
    struct msg_init in = {.topic = topic,
                          .topic_len = strlen(topic),
                          .payload = (const uint8_t *)payload,
                          .payload_len = strlen(payload),
                          .qos = qos,
                          .retain = retain};
    struct msg *m;
    assert_int_equal(msg_new(&in, &m), 0);
    return m;
}

/* The gathered bytes of one prepared write, parsed back. */
struct wire {
    uint8_t bytes[4096];
    size_t len;
    unsigned iov_count;
    struct msg_iov iov[MSG_IOV_MAX];
    uint8_t head[MSG_HEAD_SIZE(8)];
    struct mqtt_packet pkt;
};

static void prepare_and_parse(const struct msg *m, const struct msg_send *s, struct wire *w)
{
    struct mqtt_parser p = {.version = s->version, .role = MQTT_ROLE_ANY};
    size_t len, i, off = 0;
    assert_int_equal(msg_prepare(m, s, w->head, sizeof w->head, w->iov, &w->iov_count, &len), 0);
    assert_true(msg_head_size(m, s) <= MSG_HEAD_SIZE(s->sub_id_count));
    for (i = 0; i < w->iov_count; i++) {
        assert_true(w->iov[i].len > 0);
        memcpy(w->bytes + off, w->iov[i].base, w->iov[i].len);
        off += w->iov[i].len;
    }
    assert_int_equal(off, len);
    assert_int_equal(msg_wire_size(m, s), len);
    assert_int_equal(msg_encode(m, s, w->bytes + 2048, 2048), len);
    assert_memory_equal(w->bytes, w->bytes + 2048, len);
    w->len = len;
    assert_int_equal(mqtt_parse(&p, w->bytes, len, &w->pkt, NULL), MQTT_PARSE_DONE);
    assert_int_equal(w->pkt.wire_len, len);
    assert_int_equal(w->pkt.type, MQTT_PUBLISH);
}

/* Whether iov points into the message's body (shared, not copied). */
static bool in_body(const struct msg *m, const struct msg_iov *iov)
{
    return iov->base >= m->body && iov->base + iov->len <= m->body + m->body_len;
}

/* 3.1.1 QoS 0: the fixed header, then one slice of the body. */
static void v311_qos0_is_head_and_one_slice(void **state)
{
    struct msg *m = simple("a/b", "hello", 0, false);
    struct msg_send s = {.version = MQTT_V311};
    struct wire w;
    (void)state;
    prepare_and_parse(m, &s, &w);
    assert_int_equal(w.iov_count, 2);
    assert_true(in_body(m, &w.iov[1]));
    assert_int_equal(w.pkt.u.publish.qos, 0);
    assert_false(w.pkt.u.publish.retain);
    assert_int_equal(w.pkt.u.publish.topic.len, 3);
    assert_memory_equal(w.pkt.u.publish.topic.ptr, "a/b", 3);
    assert_int_equal(w.pkt.u.publish.payload_len, 5);
    assert_memory_equal(w.pkt.u.publish.payload, "hello", 5);
    assert_int_equal(w.len, 2 + 2 + 3 + 5);
    msg_unref(m);
}

/* QoS 1 and 2 in 3.1 / 3.1.1: packet id and flags are per write; topic and payload are
 * slices of the same body for every subscriber. */
static void v3_qos12_patch_packet_id_and_flags(void **state)
{
    struct msg *m = simple("t", "payload", 2, true);
    struct wire w1, w2;
    struct msg_send s1 = {.version = MQTT_V311, .qos = 1, .packet_id = 0x1234, .retain = true};
    struct msg_send s2 = {.version = MQTT_V31, .qos = 2, .packet_id = 7, .dup = true};
    (void)state;
    prepare_and_parse(m, &s1, &w1);
    prepare_and_parse(m, &s2, &w2);
    assert_int_equal(w1.iov_count, 4);
    assert_int_equal(w1.pkt.u.publish.qos, 1);
    assert_int_equal(w1.pkt.u.publish.packet_id, 0x1234);
    assert_true(w1.pkt.u.publish.retain);
    assert_false(w1.pkt.u.publish.dup);
    assert_int_equal(w2.pkt.u.publish.qos, 2);
    assert_int_equal(w2.pkt.u.publish.packet_id, 7);
    assert_true(w2.pkt.u.publish.dup);
    assert_false(w2.pkt.u.publish.retain);
    assert_ptr_equal(w1.iov[1].base, w2.iov[1].base); /* topic */
    assert_ptr_equal(w1.iov[3].base, w2.iov[3].base); /* payload */
    assert_true(in_body(m, &w1.iov[3]));
    msg_unref(m);
}

/* DUP is never set on QoS 0 [MQTT-3.3.1-2]; an empty payload is fine. */
static void qos0_never_dup_and_empty_payload(void **state)
{
    struct msg *m = simple("t", "", 0, false);
    struct msg_send s = {.version = MQTT_V311, .dup = true};
    struct wire w;
    (void)state;
    prepare_and_parse(m, &s, &w);
    assert_false(w.pkt.u.publish.dup);
    assert_int_equal(w.pkt.u.publish.payload_len, 0);
    msg_unref(m);
}

/* An MQTT 5 PUBLISH as a client would send it, parsed: every kind of property. */
static const struct mqtt_user_prop users[] = {
    {{"k2", 2}, {"v2", 2}},
    {{"k1", 2}, {"v1", 2}},
    {{"k2", 2}, {"again", 5}},
};

static size_t v5_incoming(uint8_t *buf, size_t cap, struct mqtt_packet *out)
{
    struct mqtt_packet pkt = {.type = MQTT_PUBLISH};
    struct mqtt_parser p = {.version = MQTT_V5, .role = MQTT_ROLE_SERVER};
    size_t len;
    pkt.u.publish.qos = 1;
    pkt.u.publish.packet_id = 99;
    pkt.u.publish.topic = MQTT_STR("req/x");
    pkt.u.publish.payload = (const uint8_t *)"{}";
    pkt.u.publish.payload_len = 2;
    pkt.props.present =
        MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT) | MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY) |
        MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE) | MQTT_PROP_BIT(MQTT_PROP_RESPONSE_TOPIC) |
        MQTT_PROP_BIT(MQTT_PROP_CORRELATION_DATA) | MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS);
    pkt.props.payload_format = 1;
    pkt.props.message_expiry_s = 10;
    pkt.props.content_type = MQTT_STR("application/json");
    pkt.props.response_topic = MQTT_STR("resp/x");
    pkt.props.correlation_data = (struct mqtt_bin){(const uint8_t *)"\x01\x02\x03", 3};
    pkt.props.topic_alias = 3;
    pkt.props.user = users;
    pkt.props.user_count = 3;
    len = mqtt_encode(&pkt, MQTT_V5, buf, cap);
    assert_true(len > 0);
    assert_int_equal(mqtt_parse(&p, buf, len, out, NULL), MQTT_PARSE_DONE);
    return len;
}

/* The user properties of a parsed packet, in order, as "k=v;" pairs. */
static void users_of(const struct mqtt_packet *pkt, char *out)
{
    const uint8_t *pos = pkt->props.raw, *end = pos + pkt->props.raw_len;
    struct mqtt_prop pr;
    out[0] = '\0';
    while (mqtt_prop_next(&pos, end, &pr) == 1) {
        if (pr.id != MQTT_PROP_USER_PROPERTY) continue;
        strncat(out, pr.v.pair.key.ptr, pr.v.pair.key.len);
        strcat(out, "=");
        strncat(out, pr.v.pair.value.ptr, pr.v.pair.value.len);
        strcat(out, ";");
    }
}

/* MQTT 5: pass-through properties arrive unchanged and in order [MQTT-3.3.2-17/18]; Topic
 * Alias and Message Expiry of the publisher are not forwarded; the remaining interval is
 * rounded up [MQTT-3.3.2-6]; the subscriber's identifiers and alias are added. */
static void v5_properties_pass_through(void **state)
{
    uint8_t in[512];
    struct mqtt_packet pkt;
    struct msg *m;
    struct wire w;
    char u[128];
    static const uint32_t ids[] = {5, 300000};
    struct msg_send s = {.version = MQTT_V5,
                         .qos = 1,
                         .packet_id = 42,
                         .topic_alias = 7,
                         .sub_ids = ids,
                         .sub_id_count = 2,
                         .now_ms = 3500};
    const struct mqtt_props *pr = &w.pkt.props;
    (void)state;
    v5_incoming(in, sizeof in, &pkt);
    assert_int_equal(msg_new_from_publish(&pkt, "req/x", 5, 1000, &m), 0);
    assert_int_equal(m->expires_at_ms, 11000);
    assert_int_equal(m->qos, 1);
    prepare_and_parse(m, &s, &w);
    assert_int_equal(w.iov_count, 4);
    assert_memory_equal(w.pkt.u.publish.topic.ptr, "req/x", 5);
    assert_int_equal(w.pkt.u.publish.packet_id, 42);
    assert_true(pr->present & MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY));
    assert_int_equal(pr->message_expiry_s, 8); /* 7.5 s left */
    assert_true(pr->present & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS));
    assert_int_equal(pr->topic_alias, 7);
    assert_int_equal(pr->sub_id_count, 2);
    assert_int_equal(pr->payload_format, 1);
    assert_int_equal(pr->content_type.len, 16);
    assert_memory_equal(pr->content_type.ptr, "application/json", 16);
    assert_memory_equal(pr->response_topic.ptr, "resp/x", 6);
    assert_int_equal(pr->correlation_data.len, 3);
    assert_memory_equal(pr->correlation_data.ptr, "\x01\x02\x03", 3);
    users_of(&w.pkt, u);
    assert_string_equal(u, "k2=v2;k1=v1;k2=again;");
    {
        /* the identifiers, in order */
        const uint8_t *pos = pr->raw, *end = pos + pr->raw_len;
        struct mqtt_prop p;
        int n = 0;
        while (mqtt_prop_next(&pos, end, &p) == 1)
            if (p.id == MQTT_PROP_SUBSCRIPTION_ID) assert_int_equal(p.v.u32, ids[n++]);
        assert_int_equal(n, 2);
    }
    assert_memory_equal(w.pkt.u.publish.payload, "{}", 2);
    /* the same message to a 3.1.1 subscriber carries no properties at all */
    s.version = MQTT_V311;
    prepare_and_parse(m, &s, &w);
    assert_int_equal(w.pkt.u.publish.payload_len, 2);
    assert_int_equal(w.len, 2 + 2 + 5 + 2 + 2);
    msg_unref(m);
}

/* With an alias the client knows, the topic is left out (empty) and the alias carries it;
 * without expiry no Message Expiry Interval is sent. */
static void v5_known_alias_omits_topic(void **state)
{
    struct msg *m = simple("a/long/topic/name", "p", 0, false);
    struct msg_send s = {.version = MQTT_V5, .topic_alias = 2, .alias_known = true};
    struct wire w;
    (void)state;
    prepare_and_parse(m, &s, &w);
    assert_int_equal(w.pkt.u.publish.topic.len, 0);
    assert_int_equal(w.pkt.props.topic_alias, 2);
    assert_false(w.pkt.props.present & MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY));
    assert_int_equal(w.iov_count, 2); /* head (header, empty topic, props), props+payload */
    assert_true(in_body(m, &w.iov[1]));
    msg_unref(m);
}

/* Every version x QoS x DUP x RETAIN x alias x id count parses back to what was asked. */
static void every_form_round_trips(void **state)
{
    static const uint8_t versions[] = {MQTT_V31, MQTT_V311, MQTT_V5};
    static const uint32_t ids[] = {1, 127, 128, 16383, 16384, 268435455};
    struct msg_init in = {.topic = "x/y", .topic_len = 3, .qos = 2, .expires_at_ms = 5000};
    uint8_t payload[300];
    struct msg *m;
    size_t v;
    unsigned q, f, n;
    (void)state;
    memset(payload, 0xAB, sizeof payload);
    in.payload = payload;
    in.payload_len = sizeof payload;
    assert_int_equal(msg_new(&in, &m), 0);
    for (v = 0; v < 3; v++)
        for (q = 0; q < 3; q++)
            for (f = 0; f < 16; f++)
                for (n = 0; n <= 6; n += 3) {
                    struct msg_send s = {.version = versions[v],
                                         .qos = (uint8_t)q,
                                         .packet_id = q ? (uint16_t)(f + 1) : 0,
                                         .dup = f & 1,
                                         .retain = f & 2,
                                         .topic_alias = (f & 4) ? 65535 : 0,
                                         .alias_known = f & 8,
                                         .sub_ids = ids,
                                         .sub_id_count = n,
                                         .now_ms = 4000};
                    struct wire w;
                    bool v5 = versions[v] == MQTT_V5;
                    prepare_and_parse(m, &s, &w);
                    assert_int_equal(w.pkt.u.publish.qos, q);
                    assert_int_equal(w.pkt.u.publish.dup, q && (f & 1));
                    assert_int_equal(w.pkt.u.publish.retain, !!(f & 2));
                    if (q) assert_int_equal(w.pkt.u.publish.packet_id, f + 1);
                    assert_int_equal(w.pkt.u.publish.payload_len, sizeof payload);
                    assert_int_equal(w.pkt.u.publish.topic.len, v5 && (f & 4) && (f & 8) ? 0 : 3);
                    if (v5) {
                        assert_int_equal(w.pkt.props.sub_id_count, n);
                        assert_int_equal(w.pkt.props.message_expiry_s, 1);
                        assert_int_equal(w.pkt.props.topic_alias, (f & 4) ? 65535 : 0);
                    }
                }
    msg_unref(m);
}

/* Bad sends and a small head buffer are refused without writing past it. */
static void prepare_refuses_bad_sends(void **state)
{
    struct msg *m = simple("t", "p", 1, false);
    static const uint32_t zero_id[] = {0}, big_id[] = {268435456};
    struct msg_send s = {.version = MQTT_V5, .qos = 1, .packet_id = 1};
    struct msg_iov iov[MSG_IOV_MAX];
    uint8_t head[MSG_HEAD_SIZE(1)];
    unsigned n;
    size_t len;
    (void)state;
    assert_int_equal(msg_prepare(m, &s, head, msg_head_size(m, &s) - 1, iov, &n, &len), -ENOSPC);
    assert_int_equal(msg_prepare(m, &s, head, msg_head_size(m, &s), iov, &n, &len), 0);
    s.packet_id = 0;
    assert_int_equal(msg_prepare(m, &s, head, sizeof head, iov, &n, &len), -EINVAL);
    s.packet_id = 1;
    s.qos = 3;
    assert_int_equal(msg_prepare(m, &s, head, sizeof head, iov, &n, &len), -EINVAL);
    s.qos = 1;
    s.sub_ids = zero_id;
    s.sub_id_count = 1;
    assert_int_equal(msg_prepare(m, &s, head, sizeof head, iov, &n, &len), -EINVAL);
    s.sub_ids = big_id;
    assert_int_equal(msg_prepare(m, &s, head, sizeof head, iov, &n, &len), -EINVAL);
    assert_int_equal(msg_wire_size(m, &s), 0);
    assert_int_equal(msg_encode(m, &s, head, sizeof head), 0);
    s.sub_id_count = 0;
    assert_int_equal(msg_encode(m, &s, head, 3), 0); /* out too small */
    msg_unref(m);
}

/* msg_new refuses what cannot be a PUBLISH, and drops a malformed property block. */
static void new_refuses_bad_messages(void **state)
{
    static const uint8_t bad_props[] = {0x03, 0x00, 0x09, 'x'}; /* string runs past the end */
    static const uint8_t unknown_prop[] = {0x7F, 0x00};
    struct msg_init in = {.topic = "t", .topic_len = 1};
    struct msg *m = (struct msg *)&in;
    (void)state;
    in.topic_len = 0;
    assert_int_equal(msg_new(&in, &m), -EINVAL);
    assert_null(m);
    in.topic_len = 70000;
    assert_int_equal(msg_new(&in, &m), -EINVAL);
    in.topic_len = 1;
    in.qos = 3;
    assert_int_equal(msg_new(&in, &m), -EINVAL);
    in.qos = 0;
    in.props = bad_props;
    in.props_len = sizeof bad_props;
    assert_int_equal(msg_new(&in, &m), -EINVAL);
    in.props = unknown_prop;
    in.props_len = sizeof unknown_prop;
    assert_int_equal(msg_new(&in, &m), -EINVAL);
    in.props = NULL;
    in.props_len = 0;
    in.payload = (const uint8_t *)"";
    in.payload_len = (size_t)MQTT_VARINT_MAX + 1; /* refused before it is read */
    assert_int_equal(msg_new(&in, &m), -EMSGSIZE);
    in.payload_len = 0;
    assert_int_equal(msg_new(&in, &m), 0);
    msg_unref(m);
}

/* References: the message lives until the last unref; NULL is a no-op; expiry is judged
 * against the time given. */
static void refcount_and_expiry(void **state)
{
    struct msg_init in = {.topic = "t", .topic_len = 1, .expires_at_ms = 2000};
    struct msg *m;
    (void)state;
    assert_int_equal(msg_new(&in, &m), 0);
    assert_int_equal(m->refs, 1);
    assert_ptr_equal(msg_ref(m), m);
    msg_ref(m);
    assert_int_equal(m->refs, 3);
    msg_unref(m);
    msg_unref(m);
    assert_int_equal(mem_live_blocks(), baseline + 1);
    assert_false(msg_is_expired(m, 1999));
    assert_true(msg_is_expired(m, 2000));
    msg_unref(m);
    assert_int_equal(mem_live_blocks(), baseline);
    msg_unref(NULL);
    in.expires_at_ms = 0;
    assert_int_equal(msg_new(&in, &m), 0);
    assert_false(msg_is_expired(m, UINT64_MAX));
    msg_unref(m);
}

/* An allocation failure in msg_new is reported and leaves nothing behind; a large message
 * needs a head bigger than inline and msg_encode handles that. */
static void allocation_failure_and_big_head(void **state)
{
    struct msg_init in = {.topic = "t", .topic_len = 1};
    struct msg *m = NULL;
    uint32_t ids[20];
    uint8_t out[256];
    struct msg_send s = {.version = MQTT_V5, .sub_ids = ids, .sub_id_count = 20};
    struct mqtt_parser p = {.version = MQTT_V5};
    struct mqtt_packet pkt;
    size_t len;
    int i;
    (void)state;
    mem_fault_set(0, 1);
    assert_int_equal(msg_new(&in, &m), -ENOMEM);
    assert_null(m);
    mem_fault_set(-1, 0);
    assert_int_equal(msg_new(&in, &m), 0);
    for (i = 0; i < 20; i++)
        ids[i] = 1000000u + (uint32_t)i;
    assert_true(msg_head_size(m, &s) > MSG_HEAD_INLINE);
    mem_fault_set(0, 1);
    assert_int_equal(msg_encode(m, &s, out, sizeof out), 0);
    mem_fault_set(-1, 0);
    len = msg_encode(m, &s, out, sizeof out);
    assert_true(len > 0);
    assert_int_equal(mqtt_parse(&p, out, len, &pkt, NULL), MQTT_PARSE_DONE);
    assert_int_equal(pkt.props.sub_id_count, 20);
    msg_unref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(v311_qos0_is_head_and_one_slice, setup, teardown),
        cmocka_unit_test_setup_teardown(v3_qos12_patch_packet_id_and_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(qos0_never_dup_and_empty_payload, setup, teardown),
        cmocka_unit_test_setup_teardown(v5_properties_pass_through, setup, teardown),
        cmocka_unit_test_setup_teardown(v5_known_alias_omits_topic, setup, teardown),
        cmocka_unit_test_setup_teardown(every_form_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(prepare_refuses_bad_sends, setup, teardown),
        cmocka_unit_test_setup_teardown(new_refuses_bad_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(refcount_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(allocation_failure_and_big_head, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
