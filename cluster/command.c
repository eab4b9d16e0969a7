/* Encoder, defensive decoder and validation of the command layout in command.h. */
#include "command.h"

#include <errno.h>
#include <string.h>

#include "proto.h"

struct wr {
    uint8_t *p;
    size_t cap, len;
};

static void put(struct wr *w, const void *src, size_t n)
{
    if (w->p && w->len + n <= w->cap && n) memcpy(w->p + w->len, src, n);
    w->len += n;
}
static void put_u8(struct wr *w, uint8_t v)
{
    put(w, &v, 1);
}
static void put_u16(struct wr *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 2);
}
static void put_u32(struct wr *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 4);
}
static void put_u64(struct wr *w, uint64_t v)
{
    put_u32(w, (uint32_t)(v >> 32));
    put_u32(w, (uint32_t)v);
}
static void put_str(struct wr *w, struct store_str s)
{
    put_u16(w, (uint16_t)s.len);
    put(w, s.ptr, s.len);
    put_u8(w, 0);
}
static void put_blob(struct wr *w, struct store_blob b)
{
    put_u32(w, (uint32_t)b.len);
    put(w, b.ptr, b.len);
}
static void put_msg(struct wr *w, const struct store_message *m)
{
    put_str(w, m->topic);
    put_u8(w, m->qos);
    put_u8(w, m->retain ? 1 : 0);
    put_u64(w, m->expires_at_ms);
    put_blob(w, m->props);
    put_blob(w, m->payload);
}

/* Writes the whole encoding; with w->p NULL it only counts. */
static void encode(struct wr *w, const struct cluster_cmd *c)
{
    put_u8(w, CMD_VERSION);
    put_u8(w, (uint8_t)c->type);
    switch (c->type) {
    case CLUSTER_CMD_SESSION_OPEN:
        put_str(w, c->session_open.client_id);
        put_u64(w, c->session_open.node_id);
        put_u64(w, c->session_open.created_at_ms);
        put_u32(w, c->session_open.expiry_interval_s);
        put_u8(w, c->session_open.protocol_version);
        put_u8(w, c->session_open.flags);
        break;
    case CLUSTER_CMD_SESSION_CLOSE:
    case CLUSTER_CMD_SESSION_EXPIRE:
    case CLUSTER_CMD_SESSION_DELETE:
    case CLUSTER_CMD_WILL_CLEAR:
        put_str(w, c->client.client_id);
        put_u64(w, c->client.at_ms);
        break;
    case CLUSTER_CMD_SUBSCRIBE:
        put_str(w, c->subscribe.client_id);
        put_str(w, c->subscribe.filter);
        put_u8(w, c->subscribe.options);
        put_u32(w, c->subscribe.subscription_id);
        break;
    case CLUSTER_CMD_UNSUBSCRIBE:
        put_str(w, c->unsubscribe.client_id);
        put_str(w, c->unsubscribe.filter);
        break;
    case CLUSTER_CMD_RETAIN_SET: {
        struct store_message m = c->retain_set.msg;
        m.retain = true; /* always 1 on the wire: the decoder accepts nothing else */
        put_msg(w, &m);
        put_str(w, c->retain_set.publisher_client_id);
        break;
    }
    case CLUSTER_CMD_RETAIN_CLEAR:
        put_str(w, c->retain_clear.topic);
        break;
    case CLUSTER_CMD_QUEUE_PUSH:
        put_str(w, c->queue_push.client_id);
        put_u64(w, c->queue_push.msg_id);
        put_msg(w, &c->queue_push.msg);
        break;
    case CLUSTER_CMD_QUEUE_ACK:
        put_str(w, c->queue_ack.client_id);
        put_u64(w, c->queue_ack.msg_id);
        break;
    case CLUSTER_CMD_QUEUE_DROP_OLDEST:
        put_str(w, c->queue_drop.client_id);
        put_u32(w, c->queue_drop.count);
        break;
    case CLUSTER_CMD_WILL_SET:
        put_str(w, c->will_set.client_id);
        put_u32(w, c->will_set.delay_interval_s);
        put_msg(w, &c->will_set.msg);
        break;
    case CLUSTER_CMD_NODE_UP:
    case CLUSTER_CMD_NODE_DOWN:
        put_u64(w, c->node.node_id);
        put_str(w, c->node.address);
        put_u64(w, c->node.at_ms);
        break;
    }
}

/* ---- validation ---- */

static bool str_ok(struct store_str s)
{
    return s.len <= CMD_STR_MAX && (s.len == 0 || s.ptr != NULL) &&
           (s.len == 0 || memchr(s.ptr, 0, s.len) == NULL);
}
static bool client_ok(struct store_str s)
{
    return s.len > 0 && str_ok(s) && mqtt_utf8_check(s.ptr, s.len) == MQTT_ERR_NONE;
}
static bool topic_ok(struct store_str s)
{
    return s.len > 0 && str_ok(s) && mqtt_topic_name_check(s.ptr, s.len) == MQTT_ERR_NONE;
}
static bool filter_ok(struct store_str s)
{
    return s.len > 0 && str_ok(s) && mqtt_topic_filter_check(s.ptr, s.len, true) == MQTT_ERR_NONE;
}
static bool blob_ok(struct store_blob b)
{
    return b.len < CMD_BLOB_MAX && (b.len == 0 || b.ptr != NULL);
}
static bool msg_ok(const struct store_message *m)
{
    return topic_ok(m->topic) && m->qos <= 2 && blob_ok(m->props) && blob_ok(m->payload);
}
static bool options_ok(uint8_t o)
{
    return (o & 0xC0) == 0 && (o & 0x03) != 3 && ((o >> 4) & 0x03) != 3;
}

int cmd_validate(const struct cluster_cmd *c)
{
    bool ok = false;
    switch (c->type) {
    case CLUSTER_CMD_SESSION_OPEN: {
        const struct store_session *s = &c->session_open;
        ok = client_ok(s->client_id) && s->protocol_version >= 3 && s->protocol_version <= 5 &&
             (s->flags & ~(STORE_SESSION_CLEAN_START | STORE_SESSION_PERSISTENT)) == 0;
        break;
    }
    case CLUSTER_CMD_SESSION_CLOSE:
    case CLUSTER_CMD_SESSION_EXPIRE:
    case CLUSTER_CMD_SESSION_DELETE:
    case CLUSTER_CMD_WILL_CLEAR:
        ok = client_ok(c->client.client_id);
        break;
    case CLUSTER_CMD_SUBSCRIBE:
        ok = client_ok(c->subscribe.client_id) && filter_ok(c->subscribe.filter) &&
             options_ok(c->subscribe.options) && c->subscribe.subscription_id <= CMD_SUB_ID_MAX;
        break;
    case CLUSTER_CMD_UNSUBSCRIBE:
        ok = client_ok(c->unsubscribe.client_id) && filter_ok(c->unsubscribe.filter);
        break;
    case CLUSTER_CMD_RETAIN_SET:
        ok = msg_ok(&c->retain_set.msg) && str_ok(c->retain_set.publisher_client_id);
        break;
    case CLUSTER_CMD_RETAIN_CLEAR:
        ok = topic_ok(c->retain_clear.topic);
        break;
    case CLUSTER_CMD_QUEUE_PUSH:
        ok = client_ok(c->queue_push.client_id) && msg_ok(&c->queue_push.msg);
        break;
    case CLUSTER_CMD_QUEUE_ACK:
        ok = client_ok(c->queue_ack.client_id);
        break;
    case CLUSTER_CMD_QUEUE_DROP_OLDEST:
        ok = client_ok(c->queue_drop.client_id);
        break;
    case CLUSTER_CMD_WILL_SET:
        ok = client_ok(c->will_set.client_id) && msg_ok(&c->will_set.msg);
        break;
    case CLUSTER_CMD_NODE_UP:
    case CLUSTER_CMD_NODE_DOWN:
        ok = c->node.node_id != 0 && str_ok(c->node.address);
        break;
    }
    return ok ? 0 : -EINVAL;
}

size_t cluster_cmd_encoded_size(const struct cluster_cmd *cmd)
{
    if (cmd_validate(cmd) != 0) return 0;
    struct wr w = {0};
    encode(&w, cmd);
    return w.len;
}

size_t cluster_cmd_encode(const struct cluster_cmd *cmd, uint8_t *out, size_t cap)
{
    size_t need = cluster_cmd_encoded_size(cmd);
    if (need == 0 || need > cap) return 0;
    struct wr w = {.p = out, .cap = cap};
    encode(&w, cmd);
    return w.len;
}

/* ---- decoding ---- */

struct rd {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static const uint8_t *take(struct rd *r, size_t n)
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
static uint8_t get_u8(struct rd *r)
{
    const uint8_t *p = take(r, 1);
    return p ? p[0] : 0;
}
static uint16_t get_u16(struct rd *r)
{
    const uint8_t *p = take(r, 2);
    return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}
static uint32_t get_u32(struct rd *r)
{
    const uint8_t *p = take(r, 4);
    return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}
static uint64_t get_u64(struct rd *r)
{
    uint64_t hi = get_u32(r);
    return hi << 32 | get_u32(r);
}
static struct store_str get_str(struct rd *r)
{
    size_t n = get_u16(r);
    const uint8_t *p = take(r, n + 1);
    if (!p || p[n] != 0) {
        r->bad = true;
        return (struct store_str){"", 0};
    }
    return (struct store_str){(const char *)p, n};
}
static struct store_blob get_blob(struct rd *r)
{
    size_t n = get_u32(r);
    const uint8_t *p = take(r, n);
    return (struct store_blob){p && n ? p : NULL, p ? n : 0};
}
static bool get_bool(struct rd *r)
{
    uint8_t v = get_u8(r);
    if (v > 1) r->bad = true;
    return v == 1;
}
static void get_msg(struct rd *r, struct store_message *m)
{
    m->topic = get_str(r);
    m->qos = get_u8(r);
    m->retain = get_bool(r);
    m->expires_at_ms = get_u64(r);
    m->props = get_blob(r);
    m->payload = get_blob(r);
}

static int decode(const uint8_t *buf, size_t len, struct cluster_cmd *out, bool padded);

int cluster_cmd_decode(const uint8_t *buf, size_t len, struct cluster_cmd *out)
{
    return decode(buf, len, out, false);
}

int cmd_decode_entry(const uint8_t *buf, size_t len, struct cluster_cmd *out)
{
    return decode(buf, len, out, true);
}

size_t cmd_entry_size(size_t encoded)
{
    return (encoded + 7) & ~(size_t)7;
}

/* Padding after a command in a log entry: fewer than 8 bytes, all zero. */
static bool padding_ok(const uint8_t *p, size_t left)
{
    if (left >= 8) return false;
    for (size_t i = 0; i < left; i++)
        if (p[i] != 0) return false;
    return true;
}

static int decode(const uint8_t *buf, size_t len, struct cluster_cmd *out, bool padded)
{
    struct rd r = {.p = buf, .left = len};
    struct cluster_cmd c;
    memset(&c, 0, sizeof c);
    uint8_t version = get_u8(&r);
    uint8_t type = get_u8(&r);
    if (r.bad || version == 0 || version > CMD_VERSION || type == 0 || type > CLUSTER_CMD_TYPE_MAX)
        return CLUSTER_ECORRUPT;
    c.type = (enum cluster_cmd_type)type;
    switch (c.type) {
    case CLUSTER_CMD_SESSION_OPEN:
        c.session_open.client_id = get_str(&r);
        c.session_open.node_id = get_u64(&r);
        c.session_open.created_at_ms = get_u64(&r);
        c.session_open.expiry_interval_s = get_u32(&r);
        c.session_open.protocol_version = get_u8(&r);
        c.session_open.flags = get_u8(&r);
        c.session_open.connected = true;
        break;
    case CLUSTER_CMD_SESSION_CLOSE:
    case CLUSTER_CMD_SESSION_EXPIRE:
    case CLUSTER_CMD_SESSION_DELETE:
    case CLUSTER_CMD_WILL_CLEAR:
        c.client.client_id = get_str(&r);
        c.client.at_ms = get_u64(&r);
        break;
    case CLUSTER_CMD_SUBSCRIBE:
        c.subscribe.client_id = get_str(&r);
        c.subscribe.filter = get_str(&r);
        c.subscribe.options = get_u8(&r);
        c.subscribe.subscription_id = get_u32(&r);
        break;
    case CLUSTER_CMD_UNSUBSCRIBE:
        c.unsubscribe.client_id = get_str(&r);
        c.unsubscribe.filter = get_str(&r);
        break;
    case CLUSTER_CMD_RETAIN_SET:
        get_msg(&r, &c.retain_set.msg);
        c.retain_set.publisher_client_id = get_str(&r);
        break;
    case CLUSTER_CMD_RETAIN_CLEAR:
        c.retain_clear.topic = get_str(&r);
        break;
    case CLUSTER_CMD_QUEUE_PUSH:
        c.queue_push.client_id = get_str(&r);
        c.queue_push.msg_id = get_u64(&r);
        get_msg(&r, &c.queue_push.msg);
        break;
    case CLUSTER_CMD_QUEUE_ACK:
        c.queue_ack.client_id = get_str(&r);
        c.queue_ack.msg_id = get_u64(&r);
        break;
    case CLUSTER_CMD_QUEUE_DROP_OLDEST:
        c.queue_drop.client_id = get_str(&r);
        c.queue_drop.count = get_u32(&r);
        break;
    case CLUSTER_CMD_WILL_SET:
        c.will_set.client_id = get_str(&r);
        c.will_set.delay_interval_s = get_u32(&r);
        get_msg(&r, &c.will_set.msg);
        break;
    case CLUSTER_CMD_NODE_UP:
    case CLUSTER_CMD_NODE_DOWN:
        c.node.node_id = get_u64(&r);
        c.node.address = get_str(&r);
        c.node.at_ms = get_u64(&r);
        break;
    }
    if (r.bad || cmd_validate(&c) != 0) return CLUSTER_ECORRUPT;
    if (r.left != 0 && !(padded && padding_ok(r.p, r.left))) return CLUSTER_ECORRUPT;
    if (c.type == CLUSTER_CMD_RETAIN_SET && !c.retain_set.msg.retain) return CLUSTER_ECORRUPT;
    *out = c;
    return 0;
}

const char *cluster_cmd_type_name(enum cluster_cmd_type type)
{
    static const char *const names[CLUSTER_CMD_TYPE_MAX + 1] = {
        [CLUSTER_CMD_SESSION_OPEN] = "session_open",
        [CLUSTER_CMD_SESSION_CLOSE] = "session_close",
        [CLUSTER_CMD_SESSION_EXPIRE] = "session_expire",
        [CLUSTER_CMD_SESSION_DELETE] = "session_delete",
        [CLUSTER_CMD_SUBSCRIBE] = "subscribe",
        [CLUSTER_CMD_UNSUBSCRIBE] = "unsubscribe",
        [CLUSTER_CMD_RETAIN_SET] = "retain_set",
        [CLUSTER_CMD_RETAIN_CLEAR] = "retain_clear",
        [CLUSTER_CMD_QUEUE_PUSH] = "queue_push",
        [CLUSTER_CMD_QUEUE_ACK] = "queue_ack",
        [CLUSTER_CMD_QUEUE_DROP_OLDEST] = "queue_drop_oldest",
        [CLUSTER_CMD_WILL_SET] = "will_set",
        [CLUSTER_CMD_WILL_CLEAR] = "will_clear",
        [CLUSTER_CMD_NODE_UP] = "node_up",
        [CLUSTER_CMD_NODE_DOWN] = "node_down",
    };
    unsigned t = (unsigned)type;
    return t <= CLUSTER_CMD_TYPE_MAX && names[t] ? names[t] : "unknown";
}
