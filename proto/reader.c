/* struct mqtt_reader: buffers a byte stream fed in any split and hands out whole packets,
 * allocating only through the caller's allocator. */
#include <errno.h>

#include "codec.h"

/* Past this capacity an emptied buffer is given back, so idle connections stay small. */
#define READER_KEEP_CAP (64u * 1024)
#define READER_MIN_CAP  256u

void mqtt_reader_init(struct mqtt_reader *r, const struct mqtt_parser *p,
                      struct mqtt_allocator alloc)
{
    memset(r, 0, sizeof *r);
    r->parser = *p;
    r->alloc = alloc;
}

void mqtt_reader_close(struct mqtt_reader *r)
{
    if (r->buf && r->alloc.realloc) r->alloc.realloc(r->alloc.ctx, r->buf, 0);
    r->buf = NULL;
    r->len = r->off = r->cap = 0;
}

static void reader_fail(struct mqtt_reader *r, enum mqtt_error e)
{
    r->failed = true;
    r->error = e;
    mqtt_reader_close(r); /* nothing more will be read from this stream */
}

/* Looks at the fixed header of the packet that starts the buffered bytes followed by data, so
 * a bad or too large packet is refused before its body is buffered. Returns the size of that
 * packet when its fixed header is complete, else 0. */
static size_t reader_check_head(struct mqtt_reader *r, const uint8_t *data, size_t len)
{
    uint8_t head[5];
    size_t have = r->len - r->off, k = 0, total = 0;
    struct mqtt_packet pkt;
    for (; k < sizeof head && k < have; k++)
        head[k] = r->buf[r->off + k];
    for (size_t i = 0; k < sizeof head && i < len; i++)
        head[k++] = data[i];
    /* Only the fixed header is judged here: a complete tiny packet is parsed by next(). */
    enum mqtt_parse_result res = mqtt_parse(&r->parser, head, k, &pkt, &total);
    if (res == MQTT_PARSE_BAD &&
        (pkt.error == MQTT_ERR_TOO_LARGE || pkt.error == MQTT_ERR_BAD_VARINT ||
         pkt.error == MQTT_ERR_RESERVED_TYPE || pkt.error == MQTT_ERR_RESERVED_FLAGS ||
         pkt.error == MQTT_ERR_QOS3 || pkt.error == MQTT_ERR_DUP_QOS0 ||
         pkt.error == MQTT_ERR_UNEXPECTED))
        reader_fail(r, pkt.error);
    return res == MQTT_PARSE_MORE ? total : 0;
}

int mqtt_reader_feed(struct mqtt_reader *r, const uint8_t *data, size_t len)
{
    if (r->failed || len == 0) return 0;
    if (r->off == r->len && r->cap > READER_KEEP_CAP) {
        mqtt_reader_close(r); /* all consumed: drop a buffer a big packet left behind */
    } else if (r->off > 0) {
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
    }
    size_t head_total = reader_check_head(r, data, len);
    if (r->failed) return 0;
    size_t need = r->len + len;
    if (need > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : READER_MIN_CAP;
        size_t max = r->parser.max_packet_size;
        if (cap < need) cap = need;
        /* No more than the packet in flight needs, and within the size limit. */
        if (head_total >= need && cap > head_total) cap = head_total;
        if (max && cap > max && need <= max) cap = max;
        if (!r->alloc.realloc) return -ENOMEM;
        uint8_t *nb = r->alloc.realloc(r->alloc.ctx, r->buf, cap);
        if (!nb) return -ENOMEM;
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    return 0;
}

enum mqtt_parse_result mqtt_reader_next(struct mqtt_reader *r, struct mqtt_packet *pkt)
{
    enum mqtt_parse_result res;
    if (r->failed) {
        pkt->error = r->error;
        pkt->reason = mqtt_error_reason(r->error);
        return MQTT_PARSE_BAD;
    }
    if (r->off == r->len) {
        r->off = r->len = 0;
        return MQTT_PARSE_MORE;
    }
    res = mqtt_parse(&r->parser, r->buf + r->off, r->len - r->off, pkt, NULL);
    switch (res) {
    case MQTT_PARSE_DONE:
        r->off += pkt->wire_len;
        break;
    case MQTT_PARSE_MORE:
        break;
    case MQTT_PARSE_BAD:
        r->failed = true;
        r->error = pkt->error;
        break;
    }
    return res;
}
