/* json: the small JSON the admin API speaks. A writer that escapes strings (invalid UTF-8
 * becomes U+FFFD, so the output is always valid JSON) and a strict reader for request bodies
 * that are one flat object of known fields.
 *
 * Not a general JSON library: the reader accepts only the fields the caller lists, with
 * non-negative integer or string values, no nesting, no duplicates, a bounded size. */
#ifndef STARLING_BROKER_JSON_H
#define STARLING_BROKER_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "textbuf.h"

#define JSON_MAX_DEPTH 16

/* ---- writer ---- */

/* Writes into out (borrowed). Commas and colons are placed by the writer: call json_key()
 * before each value inside an object. Misuse (a value without a key in an object, unbalanced
 * ends, nesting deeper than JSON_MAX_DEPTH) is a bug: it is asserted in debug builds and
 * turns into textbuf error -EINVAL otherwise. */
struct json_writer {
    struct textbuf *out;
    unsigned depth;
    uint32_t in_object; /* bit d: level d is an object (else an array) */
    uint32_t has_items; /* bit d: level d already holds an item */
    bool after_key;
};

void json_writer_init(struct json_writer *w, struct textbuf *out);
void json_begin_object(struct json_writer *w);
void json_end_object(struct json_writer *w);
void json_begin_array(struct json_writer *w);
void json_end_array(struct json_writer *w);
void json_key(struct json_writer *w, const char *key);
void json_string(struct json_writer *w, const char *s);
void json_string_n(struct json_writer *w, const char *s, size_t len);
void json_uint(struct json_writer *w, uint64_t v);
void json_int(struct json_writer *w, int64_t v);
void json_bool(struct json_writer *w, bool v);
void json_null(struct json_writer *w);

/* Appends s[0..len) as a quoted JSON string to out. */
void json_escape(struct textbuf *out, const char *s, size_t len);

/* ---- reader ---- */

enum json_field_type {
    JSON_FIELD_UINT,   /* a non-negative integer up to UINT64_MAX: 0, 12 (no sign, fraction,
                          exponent or leading zero) */
    JSON_FIELD_STRING, /* a string, decoded into str[0..str_cap) with a NUL; no \u0000 */
};

struct json_field {
    const char *name;
    enum json_field_type type;
    char *str;      /* JSON_FIELD_STRING: the caller's buffer */
    size_t str_cap; /* its size including the NUL */
    bool present;   /* OUT */
    uint64_t u;     /* OUT: JSON_FIELD_UINT */
    size_t str_len; /* OUT: JSON_FIELD_STRING, without the NUL */
};

/* Reads buf[0..len) (white space around allowed) as one JSON object whose members are all
 * among fields[0..n), each at most once. Sets present and the value of each one given.
 * Returns 0, or -EINVAL with a short message in err (e.g. `unknown field "x"`,
 * `field "id": expected a non-negative integer`, `invalid JSON at byte 7`). Strings must be
 * valid UTF-8 and fit str_cap. */
int json_read_object(const char *buf, size_t len, struct json_field *fields, size_t n, char *err,
                     size_t errlen);

#endif
