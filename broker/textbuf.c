/* A growable text buffer with a sticky error (see textbuf.h). */
#include "textbuf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"

void textbuf_init(struct textbuf *tb, size_t max_len)
{
    memset(tb, 0, sizeof *tb);
    tb->max_len = max_len;
}

void textbuf_free(struct textbuf *tb)
{
    size_t max_len = tb->max_len;
    mem_free(tb->data);
    textbuf_init(tb, max_len);
}

void textbuf_reset(struct textbuf *tb)
{
    tb->len = 0;
    tb->error = 0;
    if (tb->data != NULL) tb->data[0] = '\0';
}

/* Makes room for `more` bytes and the NUL; false (error set) if it cannot. */
static int textbuf_reserve(struct textbuf *tb, size_t more)
{
    if (tb->error != 0) return tb->error;
    if (more > SIZE_MAX / 2 - tb->len || (tb->max_len > 0 && tb->len + more > tb->max_len))
        return tb->error = -E2BIG;
    size_t need = tb->len + more + 1;
    if (need <= tb->cap) return 0;
    size_t cap = tb->cap ? tb->cap : 256;
    while (cap < need)
        cap *= 2;
    char *d = mem_realloc(tb->data, cap);
    if (d == NULL) return tb->error = -ENOMEM;
    tb->data = d;
    tb->cap = cap;
    return 0;
}

void textbuf_append(struct textbuf *tb, const void *data, size_t len)
{
    if (textbuf_reserve(tb, len) != 0) return;
    if (len > 0) memcpy(tb->data + tb->len, data, len);
    tb->len += len;
    tb->data[tb->len] = '\0';
}

void textbuf_puts(struct textbuf *tb, const char *s)
{
    textbuf_append(tb, s, strlen(s));
}

void textbuf_putc(struct textbuf *tb, char c)
{
    textbuf_append(tb, &c, 1);
}

void textbuf_vprintf(struct textbuf *tb, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[128];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        if (tb->error == 0) tb->error = -EINVAL;
        return;
    }
    if ((size_t)n < sizeof small) {
        textbuf_append(tb, small, (size_t)n);
        return;
    }
    if (textbuf_reserve(tb, (size_t)n) != 0) return;
    vsnprintf(tb->data + tb->len, (size_t)n + 1, fmt, ap);
    tb->len += (size_t)n;
}

void textbuf_printf(struct textbuf *tb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    textbuf_vprintf(tb, fmt, ap);
    va_end(ap);
}

int textbuf_error(const struct textbuf *tb)
{
    return tb->error;
}
