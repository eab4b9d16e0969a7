/* The admin API's JSON: an escaping writer and a strict reader of flat objects (json.h). */
#include "json.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at s[0..len) (RFC 3629: no overlong forms, no
 * surrogates, at most U+10FFFF), or 0 if it is not one. */
static size_t utf8_seq_len(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp = 0;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* ---- writer ---- */

void json_escape(struct textbuf *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0; /* run: bytes from i - run copied as they are */
    textbuf_putc(out, '"');
    while (i < len) {
        unsigned char c = p[i];
        size_t n = c >= 0x20 && c != '"' && c != '\\' ? utf8_seq_len(p + i, len - i) : 0;
        if (n > 0) {
            i += n;
            run += n;
            continue;
        }
        textbuf_append(out, p + i - run, run);
        run = 0;
        switch (c) {
        case '"':
            textbuf_puts(out, "\\\"");
            break;
        case '\\':
            textbuf_puts(out, "\\\\");
            break;
        case '\n':
            textbuf_puts(out, "\\n");
            break;
        case '\r':
            textbuf_puts(out, "\\r");
            break;
        case '\t':
            textbuf_puts(out, "\\t");
            break;
        default:
            if (c < 0x20)
                textbuf_printf(out, "\\u%04x", c);
            else
                textbuf_puts(out, "\\ufffd"); /* not UTF-8 */
            break;
        }
        i++;
    }
    textbuf_append(out, p + i - run, run);
    textbuf_putc(out, '"');
}

static void json_misuse(struct json_writer *w)
{
    assert(!"json writer misuse");
    if (w->out->error == 0) w->out->error = -EINVAL;
}

static bool json_level_is_object(const struct json_writer *w)
{
    return w->depth > 0 && (w->in_object >> w->depth & 1u);
}

/* Places the comma before a value (arrays) or checks that a key came first (objects). */
static bool json_before_value(struct json_writer *w)
{
    if (json_level_is_object(w)) {
        if (!w->after_key) {
            json_misuse(w);
            return false;
        }
        w->after_key = false;
        return true;
    }
    if (w->depth > 0) {
        if (w->has_items >> w->depth & 1u) textbuf_putc(w->out, ',');
        w->has_items |= 1u << w->depth;
    }
    return true;
}

void json_writer_init(struct json_writer *w, struct textbuf *out)
{
    memset(w, 0, sizeof *w);
    w->out = out;
}

static void json_begin(struct json_writer *w, bool object)
{
    if (!json_before_value(w)) return;
    if (w->depth + 1 >= JSON_MAX_DEPTH) {
        json_misuse(w);
        return;
    }
    w->depth++;
    w->has_items &= ~(1u << w->depth);
    if (object)
        w->in_object |= 1u << w->depth;
    else
        w->in_object &= ~(1u << w->depth);
    textbuf_putc(w->out, object ? '{' : '[');
}

static void json_end(struct json_writer *w, bool object)
{
    if (w->depth == 0 || json_level_is_object(w) != object || w->after_key) {
        json_misuse(w);
        return;
    }
    w->depth--;
    textbuf_putc(w->out, object ? '}' : ']');
}

void json_begin_object(struct json_writer *w)
{
    json_begin(w, true);
}

void json_end_object(struct json_writer *w)
{
    json_end(w, true);
}

void json_begin_array(struct json_writer *w)
{
    json_begin(w, false);
}

void json_end_array(struct json_writer *w)
{
    json_end(w, false);
}

void json_key(struct json_writer *w, const char *key)
{
    if (!json_level_is_object(w) || w->after_key) {
        json_misuse(w);
        return;
    }
    if (w->has_items >> w->depth & 1u) textbuf_putc(w->out, ',');
    w->has_items |= 1u << w->depth;
    json_escape(w->out, key, strlen(key));
    textbuf_putc(w->out, ':');
    w->after_key = true;
}

void json_string_n(struct json_writer *w, const char *s, size_t len)
{
    if (json_before_value(w)) json_escape(w->out, s, len);
}

void json_string(struct json_writer *w, const char *s)
{
    json_string_n(w, s, strlen(s));
}

void json_uint(struct json_writer *w, uint64_t v)
{
    if (json_before_value(w)) textbuf_printf(w->out, "%" PRIu64, v);
}

void json_int(struct json_writer *w, int64_t v)
{
    if (json_before_value(w)) textbuf_printf(w->out, "%" PRId64, v);
}

void json_bool(struct json_writer *w, bool v)
{
    if (json_before_value(w)) textbuf_puts(w->out, v ? "true" : "false");
}

void json_null(struct json_writer *w)
{
    if (json_before_value(w)) textbuf_puts(w->out, "null");
}

/* ---- reader ---- */

struct json_reader {
    const unsigned char *p, *end, *start;
    char *err;
    size_t errlen;
};

static int json_fail(struct json_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int json_fail(struct json_reader *r, const char *fmt, ...)
{
    if (r->err != NULL && r->errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static int json_bad(struct json_reader *r)
{
    if (r->p >= r->end) return json_fail(r, "invalid JSON: unexpected end");
    return json_fail(r, "invalid JSON at byte %zu", (size_t)(r->p - r->start));
}

static void json_skip_ws(struct json_reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int json_hex4(struct json_reader *r, uint32_t *out)
{
    uint32_t v = 0;
    if (r->end - r->p < 4) return json_bad(r);
    for (int i = 0; i < 4; i++) {
        unsigned char c = *r->p++;
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return json_bad(r);
    }
    *out = v;
    return 0;
}

/* Appends code point cp as UTF-8 to out[*n..cap-1); false if it does not fit. */
static bool json_put_utf8(char *out, size_t cap, size_t *n, uint32_t cp)
{
    unsigned char b[4];
    size_t k;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        k = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3f));
        k = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xe0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp & 0x3f));
        k = 3;
    } else {
        b[0] = (unsigned char)(0xf0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        b[3] = (unsigned char)(0x80 | (cp & 0x3f));
        k = 4;
    }
    if (*n + k >= cap) return false;
    memcpy(out + *n, b, k);
    *n += k;
    return true;
}

/* Reads a string (r->p at the opening quote) into out[0..cap) with a NUL. */
static int json_read_string(struct json_reader *r, char *out, size_t cap, size_t *len_out,
                            const char *what)
{
    size_t n = 0;
    if (r->p >= r->end || *r->p != '"') return json_bad(r);
    r->p++;
    for (;;) {
        if (r->p >= r->end) return json_bad(r);
        unsigned char c = *r->p;
        if (c == '"') {
            r->p++;
            break;
        }
        if (c < 0x20) return json_bad(r);
        if (c != '\\') {
            size_t k = utf8_seq_len(r->p, (size_t)(r->end - r->p));
            if (k == 0) return json_fail(r, "%s: invalid UTF-8", what);
            if (n + k >= cap) return json_fail(r, "%s: too long", what);
            memcpy(out + n, r->p, k);
            n += k;
            r->p += k;
            continue;
        }
        r->p++;
        if (r->p >= r->end) return json_bad(r);
        uint32_t cp = 0;
        switch (*r->p++) {
        case '"':
            cp = '"';
            break;
        case '\\':
            cp = '\\';
            break;
        case '/':
            cp = '/';
            break;
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u':
            if (json_hex4(r, &cp) != 0) return -EINVAL;
            if (cp >= 0xdc00 && cp <= 0xdfff) return json_fail(r, "%s: invalid \\u escape", what);
            if (cp >= 0xd800 && cp <= 0xdbff) {
                uint32_t lo = 0;
                if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u')
                    return json_fail(r, "%s: invalid \\u escape", what);
                r->p += 2;
                if (json_hex4(r, &lo) != 0) return -EINVAL;
                if (lo < 0xdc00 || lo > 0xdfff) return json_fail(r, "%s: invalid \\u escape", what);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0) return json_fail(r, "%s: NUL character", what);
            break;
        default:
            r->p--;
            return json_bad(r);
        }
        if (!json_put_utf8(out, cap, &n, cp)) return json_fail(r, "%s: too long", what);
    }
    out[n] = '\0';
    if (len_out != NULL) *len_out = n;
    return 0;
}

/* A non-negative integer without sign, fraction, exponent or leading zero. */
static int json_read_uint(struct json_reader *r, const char *name, uint64_t *out)
{
    const unsigned char *s = r->p;
    uint64_t v = 0;
    if (r->p >= r->end || *r->p < '0' || *r->p > '9')
        return json_fail(r, "field \"%s\": expected a non-negative integer", name);
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        unsigned d = (unsigned)(*r->p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return json_fail(r, "field \"%s\": integer out of range", name);
        v = v * 10 + d;
        r->p++;
    }
    if ((r->p - s > 1 && s[0] == '0') ||
        (r->p < r->end && (*r->p == '.' || *r->p == 'e' || *r->p == 'E')))
        return json_fail(r, "field \"%s\": expected a non-negative integer", name);
    *out = v;
    return 0;
}

int json_read_object(const char *buf, size_t len, struct json_field *fields, size_t n, char *err,
                     size_t errlen)
{
    struct json_reader r = {
        .p = (const unsigned char *)buf,
        .end = (const unsigned char *)buf + len,
        .start = (const unsigned char *)buf,
        .err = err,
        .errlen = errlen,
    };
    char key[64];
    int rc;
    if (err != NULL && errlen > 0) err[0] = '\0';
    for (size_t i = 0; i < n; i++)
        fields[i].present = false;
    json_skip_ws(&r);
    if (r.p >= r.end || *r.p != '{') return json_fail(&r, "expected a JSON object");
    r.p++;
    json_skip_ws(&r);
    if (r.p < r.end && *r.p == '}') {
        r.p++;
        goto end;
    }
    for (;;) {
        json_skip_ws(&r);
        if ((rc = json_read_string(&r, key, sizeof key, NULL, "field name")) != 0) return rc;
        json_skip_ws(&r);
        if (r.p >= r.end || *r.p != ':') return json_bad(&r);
        r.p++;
        json_skip_ws(&r);
        struct json_field *f = NULL;
        for (size_t i = 0; i < n && f == NULL; i++)
            if (strcmp(fields[i].name, key) == 0) f = &fields[i];
        if (f == NULL) return json_fail(&r, "unknown field \"%s\"", key);
        if (f->present) return json_fail(&r, "field \"%s\" given twice", key);
        if (f->type == JSON_FIELD_UINT) {
            rc = json_read_uint(&r, f->name, &f->u);
        } else {
            if (r.p >= r.end || *r.p != '"')
                return json_fail(&r, "field \"%s\": expected a string", f->name);
            rc = json_read_string(&r, f->str, f->str_cap, &f->str_len, f->name);
        }
        if (rc != 0) return rc;
        f->present = true;
        json_skip_ws(&r);
        if (r.p < r.end && *r.p == ',') {
            r.p++;
            continue;
        }
        if (r.p < r.end && *r.p == '}') {
            r.p++;
            break;
        }
        return json_bad(&r);
    }
end:
    json_skip_ws(&r);
    if (r.p != r.end) return json_fail(&r, "trailing data after the JSON object");
    return 0;
}
