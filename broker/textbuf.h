/* textbuf: a growable text buffer with a sticky error, for building HTTP responses, JSON and
 * the metrics exposition without checking every append.
 *
 * Contract: appends after a failure (out of memory, or the limit reached) do nothing;
 * textbuf_error() reports the first failure. data is NUL-terminated whenever len > 0 or
 * after any append; it is owned by the buffer until textbuf_free(). Not thread-safe. */
#ifndef STARLING_BROKER_TEXTBUF_H
#define STARLING_BROKER_TEXTBUF_H

#include <stdarg.h>
#include <stddef.h>

struct textbuf {
    char *data;
    size_t len, cap;
    size_t max_len; /* 0: no limit; else appends beyond it fail with -E2BIG */
    int error;      /* 0, -ENOMEM or -E2BIG */
};

/* An empty buffer (no allocation yet) of at most max_len bytes (0 = unlimited). */
void textbuf_init(struct textbuf *tb, size_t max_len);
/* Releases the data; the buffer is empty again (and its error cleared). */
void textbuf_free(struct textbuf *tb);
/* Drops the contents and the error, keeps the memory. */
void textbuf_reset(struct textbuf *tb);

void textbuf_append(struct textbuf *tb, const void *data, size_t len);
void textbuf_puts(struct textbuf *tb, const char *s);
void textbuf_putc(struct textbuf *tb, char c);
void textbuf_printf(struct textbuf *tb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void textbuf_vprintf(struct textbuf *tb, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* 0, or the first failure: -ENOMEM, -E2BIG. */
int textbuf_error(const struct textbuf *tb);

#endif
