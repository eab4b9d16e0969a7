/* struct mqtt_reader: every golden vector byte by byte and at every split point, memory
 * bounded by the packet in flight and by the maximum packet size, errors sticky. */
#include <errno.h>
#include <stdlib.h>

#include "proto_test.h"
#include "testlib.h"

/* The reader may start with a small fixed allocation; past it, it holds one packet. */
#define INITIAL_ALLOC_MAX 256

static size_t max_size(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* Each golden vector fed one byte at a time comes out whole at its last byte, equal to a
 * direct parse, and the buffer never grows past the packet size. */
static void reader_golden_byte_by_byte(void **state)
{
    (void)state;
    for (size_t i = 0; i < pt_golden_count; i++) {
        const struct pt_golden *g = &pt_golden[i];
        struct pt_heap heap = {0};
        struct mqtt_reader r;
        struct mqtt_packet direct, pkt;
        pt_parse_ok(pt_parser(g->version), g->wire, g->len, &direct);
        mqtt_reader_init(&r, pt_parser(g->version), pt_heap_allocator(&heap));
        for (size_t k = 0; k < g->len; k++) {
            assert_int_equal(mqtt_reader_feed(&r, g->wire + k, 1), 0);
            enum mqtt_parse_result res = mqtt_reader_next(&r, &pkt);
            if (k + 1 < g->len && res != MQTT_PARSE_MORE)
                fail_msg("%s: byte %zu: result %d", g->name, k, (int)res);
        }
        pt_assert_packet_equal(&direct, &pkt, g->version);
        assert_int_equal(pkt.wire_len, g->len);
        assert_int_equal(mqtt_reader_next(&r, &pkt), MQTT_PARSE_MORE);
        if (heap.peak > max_size(g->len, INITIAL_ALLOC_MAX))
            fail_msg("%s: peak %zu bytes for a %zu-byte packet", g->name, heap.peak, g->len);
        mqtt_reader_close(&r);
        assert_int_equal(heap.live, 0);
    }
}

/* The golden vectors of one version as one stream. */
static size_t stream_of(uint8_t version, uint8_t *out, size_t cap, size_t *count)
{
    size_t n = 0;
    *count = 0;
    for (size_t i = 0; i < pt_golden_count; i++) {
        if (pt_golden[i].version != version) continue;
        assert_true(n + pt_golden[i].len <= cap);
        memcpy(out + n, pt_golden[i].wire, pt_golden[i].len);
        n += pt_golden[i].len;
        (*count)++;
    }
    return n;
}

/* Drains the reader, checking each packet against the next golden vector of the version. */
static void drain(struct mqtt_reader *r, uint8_t version, size_t *next)
{
    struct mqtt_packet pkt;
    enum mqtt_parse_result res;
    while ((res = mqtt_reader_next(r, &pkt)) == MQTT_PARSE_DONE) {
        while (pt_golden[*next].version != version)
            (*next)++;
        const struct pt_golden *g = &pt_golden[*next];
        struct mqtt_packet direct;
        assert_int_equal(mqtt_parse(pt_parser(version), g->wire, g->len, &direct, NULL),
                         MQTT_PARSE_DONE);
        assert_int_equal(pkt.wire_len, g->len);
        pt_assert_packet_equal(&direct, &pkt, version);
        (*next)++;
    }
    assert_int_equal(res, MQTT_PARSE_MORE);
}

/* The stream of all golden vectors of a version, cut in two at every point, gives every
 * packet in order: packets need not be aligned on any read or WebSocket frame boundary
 * [MQTT-6.0.0-2]. */
static void reader_every_split_point(void **state)
{
    static uint8_t stream[4096];
    static const uint8_t versions[] = {MQTT_V31, MQTT_V311, MQTT_V5};
    (void)state;
    for (size_t v = 0; v < 3; v++) {
        size_t count;
        size_t n = stream_of(versions[v], stream, sizeof stream, &count);
        for (size_t cut = 0; cut <= n; cut++) {
            struct pt_heap heap = {0};
            struct mqtt_reader r;
            size_t next = 0;
            mqtt_reader_init(&r, pt_parser(versions[v]), pt_heap_allocator(&heap));
            assert_int_equal(mqtt_reader_feed(&r, stream, cut), 0);
            drain(&r, versions[v], &next);
            assert_int_equal(mqtt_reader_feed(&r, stream + cut, n - cut), 0);
            drain(&r, versions[v], &next);
            size_t got = 0;
            for (size_t i = 0; i < next; i++)
                got += pt_golden[i].version == versions[v];
            assert_int_equal(got, count);
            mqtt_reader_close(&r);
            assert_int_equal(heap.live, 0);
        }
    }
}

/* The same stream in random chunks of 1 to 7 bytes. */
static void reader_random_chunks(void **state)
{
    static uint8_t stream[4096];
    uint64_t rng = test_seed();
    (void)state;
    for (int round = 0; round < 300; round++) {
        uint8_t version = (uint8_t)(MQTT_V31 + round % 3);
        size_t count, next = 0;
        size_t n = stream_of(version, stream, sizeof stream, &count);
        struct pt_heap heap = {0};
        struct mqtt_reader r;
        mqtt_reader_init(&r, pt_parser(version), pt_heap_allocator(&heap));
        for (size_t off = 0; off < n;) {
            size_t chunk = 1 + test_rand(&rng) % 7;
            if (chunk > n - off) chunk = n - off;
            assert_int_equal(mqtt_reader_feed(&r, stream + off, chunk), 0);
            off += chunk;
            drain(&r, version, &next);
        }
        size_t got = 0;
        for (size_t i = 0; i < next; i++)
            got += pt_golden[i].version == version;
        assert_int_equal(got, count);
        mqtt_reader_close(&r);
        assert_int_equal(heap.live, 0);
    }
}

/* A 100 KB PUBLISH fed byte by byte: the buffer is the packet, not twice it. */
static void reader_large_packet_allocates_its_size(void **state)
{
    size_t payload_len = 100000, rem = 2 + 3 + 2 + payload_len;
    size_t len = 1 + mqtt_varint_size((uint32_t)rem) + rem;
    uint8_t *wire = malloc(len);
    struct pt_heap heap = {0};
    struct mqtt_reader r;
    struct mqtt_packet pkt;
    (void)state;
    assert_non_null(wire);
    size_t off = 0;
    wire[off++] = 0x32;
    off += mqtt_varint_encode((uint32_t)rem, wire + off);
    memcpy(wire + off,
           "\x00\x03"
           "a/b"
           "\x00\x09",
           7);
    off += 7;
    memset(wire + off, 'p', payload_len);
    mqtt_reader_init(&r, &pt_v311, pt_heap_allocator(&heap));
    for (size_t k = 0; k < len; k++) {
        assert_int_equal(mqtt_reader_feed(&r, wire + k, 1), 0);
        assert_int_equal(mqtt_reader_next(&r, &pkt),
                         k + 1 < len ? MQTT_PARSE_MORE : MQTT_PARSE_DONE);
    }
    assert_int_equal(pkt.u.publish.payload_len, payload_len);
    assert_int_equal(pkt.u.publish.packet_id, 9);
    if (heap.peak > len) fail_msg("peak %zu bytes for a %zu-byte packet", heap.peak, len);
    mqtt_reader_close(&r);
    assert_int_equal(heap.live, 0);
    free(wire);
}

/* A packet announced as too large is rejected from its fixed header, without buffering
 * its body (3.1.2.11.4). */
static void reader_rejects_too_large_from_fixed_header(void **state)
{
    static const struct mqtt_parser p = {.version = MQTT_V5, .max_packet_size = 1000};
    static const uint8_t header[] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};
    struct pt_heap heap = {0};
    struct mqtt_reader r;
    struct mqtt_packet pkt;
    (void)state;
    mqtt_reader_init(&r, &p, pt_heap_allocator(&heap));
    for (size_t k = 0; k < sizeof header; k++) {
        assert_int_equal(mqtt_reader_feed(&r, header + k, 1), 0);
        enum mqtt_parse_result res = mqtt_reader_next(&r, &pkt);
        if (k + 1 < sizeof header) {
            assert_int_equal(res, MQTT_PARSE_MORE);
        } else {
            assert_int_equal(res, MQTT_PARSE_BAD);
            assert_int_equal(pkt.error, MQTT_ERR_TOO_LARGE);
            assert_int_equal(pkt.reason, MQTT_RC_PACKET_TOO_LARGE);
        }
    }
    assert_true(heap.peak <= INITIAL_ALLOC_MAX);
    mqtt_reader_close(&r);
    assert_int_equal(heap.live, 0);
}

/* The buffer never exceeds the maximum packet size, whatever arrives. */
static void reader_buffer_bounded_by_max_packet_size(void **state)
{
    static const struct mqtt_parser p = {.version = MQTT_V311, .max_packet_size = 40};
    static uint8_t stream[4096];
    size_t count, next = 0;
    size_t n = stream_of(MQTT_V311, stream, sizeof stream, &count);
    struct pt_heap heap = {0};
    struct mqtt_reader r;
    (void)state;
    mqtt_reader_init(&r, &p, pt_heap_allocator(&heap));
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(mqtt_reader_feed(&r, stream + k, 1), 0);
        struct mqtt_packet pkt;
        while (mqtt_reader_next(&r, &pkt) == MQTT_PARSE_DONE)
            next++;
    }
    assert_int_equal(next, count);
    if (heap.peak > 40) fail_msg("peak %zu bytes with a 40-byte maximum packet size", heap.peak);
    mqtt_reader_close(&r);
}

/* After a bad packet every later call is BAD: the stream cannot be resynchronized. */
static void reader_bad_is_sticky(void **state)
{
    static const uint8_t bad[] = {0x36, 0x07, 0x00, 0x01, 't', 0x12, 0x34, 'p', 'x'};
    static const uint8_t good[] = {0xC0, 0x00};
    struct pt_heap heap = {0};
    struct mqtt_reader r;
    struct mqtt_packet pkt;
    (void)state;
    mqtt_reader_init(&r, &pt_v311, pt_heap_allocator(&heap));
    assert_int_equal(mqtt_reader_feed(&r, bad, sizeof bad), 0);
    assert_int_equal(mqtt_reader_next(&r, &pkt), MQTT_PARSE_BAD);
    assert_int_equal(pkt.error, MQTT_ERR_QOS3);
    assert_true(r.failed);
    mqtt_reader_feed(&r, good, sizeof good);
    assert_int_equal(mqtt_reader_next(&r, &pkt), MQTT_PARSE_BAD);
    assert_int_equal(mqtt_reader_next(&r, &pkt), MQTT_PARSE_BAD);
    mqtt_reader_close(&r);
    assert_int_equal(heap.live, 0);
}

/* A failing allocator makes feed return -ENOMEM and leaks nothing. */
static void reader_feed_reports_enomem(void **state)
{
    const struct pt_golden *g = pt_golden_get("v5_connect_full");
    struct pt_heap heap = {.fail_from = 1};
    struct mqtt_reader r;
    struct mqtt_packet pkt;
    (void)state;
    mqtt_reader_init(&r, &pt_v5, pt_heap_allocator(&heap));
    assert_int_equal(mqtt_reader_feed(&r, g->wire, g->len), -ENOMEM);
    mqtt_reader_close(&r);
    assert_int_equal(heap.live, 0);

    /* Once memory is back the reader works. */
    heap = (struct pt_heap){0};
    mqtt_reader_init(&r, &pt_v5, pt_heap_allocator(&heap));
    assert_int_equal(mqtt_reader_feed(&r, g->wire, g->len), 0);
    assert_int_equal(mqtt_reader_next(&r, &pkt), MQTT_PARSE_DONE);
    mqtt_reader_close(&r);
    assert_int_equal(heap.live, 0);
}

/* Many packets in one feed all come out, and the consumed space is reused. */
static void reader_many_packets_in_one_feed(void **state)
{
    static uint8_t pings[2000];
    struct pt_heap heap = {0};
    struct mqtt_reader r;
    struct mqtt_packet pkt;
    (void)state;
    for (size_t i = 0; i < sizeof pings; i += 2) {
        pings[i] = 0xC0;
        pings[i + 1] = 0x00;
    }
    mqtt_reader_init(&r, &pt_v311, pt_heap_allocator(&heap));
    for (int round = 0; round < 50; round++) {
        assert_int_equal(mqtt_reader_feed(&r, pings, sizeof pings), 0);
        int n = 0;
        while (mqtt_reader_next(&r, &pkt) == MQTT_PARSE_DONE) {
            assert_int_equal(pkt.type, MQTT_PINGREQ);
            n++;
        }
        assert_int_equal(n, 1000);
    }
    assert_true(heap.peak <= 2 * sizeof pings);
    mqtt_reader_close(&r);
    assert_int_equal(heap.live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reader_golden_byte_by_byte),
        cmocka_unit_test(reader_every_split_point),
        cmocka_unit_test(reader_random_chunks),
        cmocka_unit_test(reader_large_packet_allocates_its_size),
        cmocka_unit_test(reader_rejects_too_large_from_fixed_header),
        cmocka_unit_test(reader_buffer_bounded_by_max_packet_size),
        cmocka_unit_test(reader_bad_is_sticky),
        cmocka_unit_test(reader_feed_reports_enomem),
        cmocka_unit_test(reader_many_packets_in_one_feed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
