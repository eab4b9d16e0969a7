/* The bounded byte cursors behind the record layouts of record.h. */
#include "record.h"

#include <string.h>

static uint8_t *rec_room(struct rec_writer *w, size_t n)
{
    if (w->overflow || w->cap - w->len < n || w->len > w->cap) {
        w->overflow = true;
        w->len += n;
        return NULL;
    }
    uint8_t *p = w->out + w->len;
    w->len += n;
    return p;
}

void rec_put_u8(struct rec_writer *w, uint8_t v)
{
    uint8_t *p = rec_room(w, 1);
    if (p) *p = v;
}

void rec_put_u32(struct rec_writer *w, uint32_t v)
{
    uint8_t *p = rec_room(w, 4);
    if (p) {
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
    }
}

void rec_put_u64(struct rec_writer *w, uint64_t v)
{
    uint8_t *p = rec_room(w, 8);
    if (p) rec_be64(p, v);
}

void rec_put_bytes(struct rec_writer *w, const void *src, size_t n)
{
    uint8_t *p = rec_room(w, n);
    if (p && n) memcpy(p, src, n);
}

void rec_put_str(struct rec_writer *w, struct store_str s)
{
    rec_put_u32(w, (uint32_t)s.len);
    rec_put_bytes(w, s.ptr, s.len);
    rec_put_u8(w, 0);
}

void rec_put_blob(struct rec_writer *w, struct store_blob b)
{
    rec_put_u32(w, (uint32_t)b.len);
    rec_put_bytes(w, b.ptr, b.len);
}

static const uint8_t *rec_take(struct rec_reader *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

bool rec_get_u8(struct rec_reader *r, uint8_t *v)
{
    const uint8_t *p = rec_take(r, 1);
    if (!p) return false;
    *v = p[0];
    return true;
}

bool rec_get_u32(struct rec_reader *r, uint32_t *v)
{
    const uint8_t *p = rec_take(r, 4);
    if (!p) return false;
    *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return true;
}

bool rec_get_u64(struct rec_reader *r, uint64_t *v)
{
    const uint8_t *p = rec_take(r, 8);
    if (!p) return false;
    *v = rec_get_be64(p);
    return true;
}

bool rec_get_str(struct rec_reader *r, struct store_str *s)
{
    uint32_t n;
    if (!rec_get_u32(r, &n) || n == UINT32_MAX) return r->bad = true, false;
    const uint8_t *p = rec_take(r, (size_t)n + 1);
    if (!p || p[n] != 0 || memchr(p, 0, n) != NULL) return r->bad = true, false;
    s->ptr = (const char *)p;
    s->len = n;
    return true;
}

bool rec_get_blob(struct rec_reader *r, struct store_blob *b)
{
    uint32_t n;
    if (!rec_get_u32(r, &n)) return false;
    const uint8_t *p = rec_take(r, n);
    if (!p) return false;
    b->ptr = n ? p : NULL;
    b->len = n;
    return true;
}

bool rec_done(const struct rec_reader *r)
{
    return !r->bad && r->left == 0;
}

void rec_put_message_tail(struct rec_writer *w, const struct store_message *m)
{
    rec_put_u64(w, m->expires_at_ms);
    rec_put_str(w, m->topic);
    rec_put_blob(w, m->props);
    rec_put_blob(w, m->payload);
}

bool rec_get_message_tail(struct rec_reader *r, struct store_message *m)
{
    return rec_get_u64(r, &m->expires_at_ms) && rec_get_str(r, &m->topic) &&
           rec_get_blob(r, &m->props) && rec_get_blob(r, &m->payload);
}
