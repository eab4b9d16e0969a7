/* Shared fixtures of the codec's unit tests: golden byte vectors, parse/encode assertions that
 * also check every prefix, and a counting allocator for struct mqtt_reader. */
#ifndef STARLING_PROTO_TEST_H
#define STARLING_PROTO_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto.h"

/* Parsers that accept packets of both directions. */
extern const struct mqtt_parser pt_v31;
extern const struct mqtt_parser pt_v311;
extern const struct mqtt_parser pt_v5;
const struct mqtt_parser *pt_parser(uint8_t version);

/* A golden vector: the exact bytes of one packet. `canonical` vectors are what the encoder
 * writes for the packet they decode to (others are accepted on input only). */
struct pt_golden {
    const char *name;
    uint8_t version;
    bool canonical;
    const uint8_t *wire;
    size_t len;
};
extern const struct pt_golden pt_golden[];
extern const size_t pt_golden_count;
/* The golden vector called name (fails the test if there is none). */
const struct pt_golden *pt_golden_get(const char *name);

/* Parses wire[0..len) with p: asserts MQTT_PARSE_DONE using all len bytes, and that every
 * shorter prefix is MQTT_PARSE_MORE. */
void pt_parse_ok(const struct mqtt_parser *p, const uint8_t *wire, size_t len,
                 struct mqtt_packet *pkt);
/* pt_parse_ok() on the golden vector called name, with a ROLE_ANY parser of its version. */
void pt_parse_golden(const char *name, struct mqtt_packet *pkt);
/* Asserts that wire[0..len) is MQTT_PARSE_BAD with err, and reason mqtt_error_reason(err). */
void pt_parse_bad(const struct mqtt_parser *p, const uint8_t *wire, size_t len,
                  enum mqtt_error err);
/* Like pt_parse_bad, for the common case of a whole array. */
#define PT_BAD(p, arr, err) pt_parse_bad((p), (arr), sizeof(arr), (err))
#define PT_OK(p, arr, pkt)  pt_parse_ok((p), (arr), sizeof(arr), (pkt))

/* Asserts mqtt_encoded_size() == len, that mqtt_encode() writes exactly wire, and that it
 * refuses a buffer one byte short. */
void pt_encode_eq(const struct mqtt_packet *pkt, uint8_t version, const uint8_t *wire, size_t len);
void pt_encode_golden(const struct mqtt_packet *pkt, const char *name);

/* Field by field comparison of two packets of the given version (strings by content). */
void pt_assert_packet_equal(const struct mqtt_packet *a, const struct mqtt_packet *b,
                            uint8_t version);
void pt_assert_props_equal(const struct mqtt_props *a, const struct mqtt_props *b);
void pt_assert_str_equal(struct mqtt_str s, const char *expected);

/* An allocator that counts live bytes and remembers the peak; when fail_from > 0, the
 * fail_from-th allocation and every later one fail. */
struct pt_heap {
    size_t live;
    size_t peak;
    size_t calls;
    size_t fail_from;
};
struct mqtt_allocator pt_heap_allocator(struct pt_heap *h);

#endif
