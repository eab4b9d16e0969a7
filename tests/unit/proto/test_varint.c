/* Variable byte integers (MQTT 5 1.5.5, 3.1.1 2.2.3). */
#include "proto_test.h"
#include "testlib.h"

static const struct {
    uint32_t value;
    uint8_t bytes[4];
    size_t len;
} table[] = {
    {0, {0x00}, 1},
    {127, {0x7F}, 1},
    {128, {0x80, 0x01}, 2},
    {16383, {0xFF, 0x7F}, 2},
    {16384, {0x80, 0x80, 0x01}, 3},
    {2097151, {0xFF, 0xFF, 0x7F}, 3},
    {2097152, {0x80, 0x80, 0x80, 0x01}, 4},
    {268435455, {0xFF, 0xFF, 0xFF, 0x7F}, 4},
};

/* The boundary values of the spec's table encode to the shortest form [MQTT-1.5.5-1]. */
static void varint_encodes_boundaries(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        uint8_t out[4] = {0};
        assert_int_equal(mqtt_varint_size(table[i].value), table[i].len);
        assert_int_equal(mqtt_varint_encode(table[i].value, out), table[i].len);
        assert_memory_equal(out, table[i].bytes, table[i].len);
    }
}

static void varint_decodes_boundaries(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        uint32_t v = 12345;
        assert_int_equal(mqtt_varint_decode(table[i].bytes, table[i].len, &v), table[i].len);
        assert_int_equal(v, table[i].value);
        /* Any shorter prefix needs more bytes. */
        for (size_t k = 0; k < table[i].len; k++)
            assert_int_equal(mqtt_varint_decode(table[i].bytes, k, &v), 0);
    }
}

/* A fifth byte is malformed, whatever follows. */
static void varint_rejects_five_bytes(void **state)
{
    static const uint8_t five[] = {0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    static const uint8_t four_cont[] = {0x80, 0x80, 0x80, 0x80};
    uint32_t v;
    (void)state;
    assert_int_equal(mqtt_varint_decode(five, sizeof five, &v), -1);
    assert_int_equal(mqtt_varint_decode(four_cont, sizeof four_cont, &v), -1);
}

/* Overlong forms (a trailing 0x00 group) are malformed [MQTT-1.5.5-1]. */
static void varint_rejects_overlong(void **state)
{
    static const uint8_t a[] = {0x80, 0x00};
    static const uint8_t b[] = {0xFF, 0x80, 0x00};
    static const uint8_t c[] = {0x81, 0x80, 0x80, 0x00};
    uint32_t v;
    (void)state;
    assert_int_equal(mqtt_varint_decode(a, sizeof a, &v), -1);
    assert_int_equal(mqtt_varint_decode(b, sizeof b, &v), -1);
    assert_int_equal(mqtt_varint_decode(c, sizeof c, &v), -1);
}

/* Every value encodes and decodes back, sampled across the range. */
static void varint_round_trips(void **state)
{
    uint64_t rng = test_seed();
    (void)state;
    for (int i = 0; i < 100000; i++) {
        uint32_t value = (uint32_t)(test_rand(&rng) % (MQTT_VARINT_MAX + 1ull));
        if (i % 4 == 0) value >>= (test_rand(&rng) % 28);
        uint8_t buf[4];
        size_t n = mqtt_varint_encode(value, buf);
        uint32_t back;
        assert_int_equal(n, mqtt_varint_size(value));
        assert_int_equal(mqtt_varint_decode(buf, n, &back), (int)n);
        assert_int_equal(back, value);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(varint_encodes_boundaries), cmocka_unit_test(varint_decodes_boundaries),
        cmocka_unit_test(varint_rejects_five_bytes), cmocka_unit_test(varint_rejects_overlong),
        cmocka_unit_test(varint_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
