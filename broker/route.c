/* Publish forwarding between nodes (see route.h). */
#include "route.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "config.h"
#include "conn.h"
#include "core.h"
#include "deliver.h"
#include "log.h"
#include "msg.h"
#include "session.h"

/* Target nodes of one delivery (more are sent to every live node). */
#define ROUTE_TARGETS_MAX 32

/* A forwarded QoS >= 1 message waiting for its owner's confirmation. */
struct route_pend {
    struct htab_node node; /* in route->pending by token */
    uint64_t token;
    uint64_t owner;
    struct dur_wait *w;
    struct route_pend *taken_next; /* in a list of entries out of the table */
};

struct route {
    struct broker *b;
    uint64_t self;
    uint64_t next_token;
    struct htab pending;
    bool local_only; /* delivering a copy from the owner */
    uint64_t targets[ROUTE_TARGETS_MAX];
    unsigned ntargets;
    bool targets_overflow;
    uint64_t shed;    /* QoS 0 messages not forwarded (link down or full) */
    uint64_t refused; /* QoS >= 1 messages not forwarded (queue full) */
};

/* The owner's side of a forwarded QoS >= 1 message. */
struct route_confirm {
    uint64_t from;
    uint64_t token;
    bool matched;
};

int route_new(struct broker *b)
{
    struct route *r = calloc(1, sizeof *r);
    if (!r) return -ENOMEM;
    r->b = b;
    r->self = cluster_node_id(b->cluster);
    htab_init(&r->pending);
    b->route = r;
    return 0;
}

/* Takes out of the pending table every entry (with live_check: whose owner is not live) and
 * returns them as a list through taken_next. The table is walked to the end before anything is
 * removed: removing (or freeing) the walk's current node would leave htab_next on it. */
static struct route_pend *route_pending_take(struct route *r, bool live_check)
{
    struct route_pend *taken = NULL;
    size_t bucket = 0;
    struct htab_node *cur = NULL, *node;
    while ((node = htab_next(&r->pending, &bucket, &cur)) != NULL) {
        struct route_pend *p = (struct route_pend *)node;
        if (live_check && route_node_live(r->b, p->owner)) continue;
        p->taken_next = taken;
        taken = p;
    }
    for (struct route_pend *p = taken; p; p = p->taken_next)
        htab_remove(&r->pending, &p->node);
    return taken;
}

void route_free(struct broker *b)
{
    struct route *r = b->route;
    if (!r) return;
    struct route_pend *p = route_pending_take(r, false);
    while (p) {
        struct route_pend *next = p->taken_next;
        p->w->done = NULL; /* its connection is gone: nobody to answer */
        dur_wait_fail(p->w, CLUSTER_ESHUTDOWN);
        free(p);
        p = next;
    }
    htab_close(&r->pending);
    free(r);
    b->route = NULL;
}

uint64_t route_remote_owner(struct broker *b, const char *topic, size_t len)
{
    uint64_t o = cluster_owner(b->cluster, topic, len);
    return o == b->route->self ? 0 : o;
}

bool route_node_live(struct broker *b, uint64_t id)
{
    uint64_t ids[64];
    size_t n = cluster_live_members(b->cluster, ids, 64);
    if (n == 0) return true; /* no verdict committed yet: every member counts as live */
    for (size_t i = 0; i < n && i < 64; i++)
        if (ids[i] == id) return true;
    return false;
}

/* A digest of the live members this node routes by: an owner refuses a message forwarded
 * under another view (a node that was stopped, or a ring change in progress), so that one
 * topic never has two sequencers at once. */
static uint64_t route_ring_digest(struct broker *b)
{
    uint64_t ids[64];
    size_t n = cluster_live_members(b->cluster, ids, 64);
    uint64_t d = 0x9e3779b97f4a7c15ull ^ n;
    for (size_t i = 0; i < n && i < 64; i++)
        d = htab_hash_u64(d ^ ids[i]);
    return d;
}

void route_note_target(struct broker *b, uint64_t id)
{
    struct route *r = b->route;
    if (!r) return;
    for (unsigned i = 0; i < r->ntargets; i++)
        if (r->targets[i] == id) return;
    if (r->ntargets == ROUTE_TARGETS_MAX) {
        r->targets_overflow = true;
        return;
    }
    r->targets[r->ntargets++] = id;
}

bool route_local_only(const struct broker *b)
{
    return b->route && b->route->local_only;
}

static void route_put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t route_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* ---- encoding ---- */

/* m as a QUEUE_PUSH command into a malloc'ed buffer. NULL without memory or if too large. */
static uint8_t *route_encode(const char *pub_id, const struct msg *m, uint64_t token, size_t head,
                             size_t *len)
{
    struct cluster_cmd cmd = {.type = CLUSTER_CMD_QUEUE_PUSH};
    cmd.queue_push.client_id.ptr = pub_id ? pub_id : "";
    cmd.queue_push.client_id.len = pub_id ? strlen(pub_id) : 0;
    cmd.queue_push.msg_id = token;
    cmd.queue_push.msg.topic.ptr = m->topic;
    cmd.queue_push.msg.topic.len = m->topic_len;
    cmd.queue_push.msg.payload.ptr = m->payload;
    cmd.queue_push.msg.payload.len = m->payload_len;
    cmd.queue_push.msg.props.ptr = m->props;
    cmd.queue_push.msg.props.len = m->props_len;
    cmd.queue_push.msg.expires_at_ms = m->expires_at_ms;
    cmd.queue_push.msg.qos = m->qos;
    cmd.queue_push.msg.retain = m->retain;
    size_t need = cluster_cmd_encoded_size(&cmd);
    if (need == 0) return NULL;
    uint8_t *buf = malloc(head + need);
    if (!buf) return NULL;
    *len = cluster_cmd_encode(&cmd, buf + head, need);
    if (*len == 0) {
        free(buf);
        return NULL;
    }
    *len += head;
    return buf;
}

static void route_send_confirm(struct broker *b, uint64_t to, uint64_t token, int status,
                               bool matched)
{
    uint8_t f[13];
    route_put64(f, token);
    uint32_t st = (uint32_t)status;
    f[8] = (uint8_t)(st >> 24);
    f[9] = (uint8_t)(st >> 16);
    f[10] = (uint8_t)(st >> 8);
    f[11] = (uint8_t)st;
    f[12] = matched;
    int rc = cluster_link_send(b->cluster, to, ROUTE_FRAME_CONFIRM, f, sizeof f, 0);
    if (rc < 0)
        log_at(LOG_TYPE_WARNING, "Confirmation to node %llu not sent: %s.", (unsigned long long)to,
               cluster_strerror(rc));
}

/* ---- ingress ---- */

static void route_pend_finish(struct route *r, struct route_pend *p, int status, bool matched)
{
    htab_remove(&r->pending, &p->node);
    struct dur_wait *w = p->w;
    if (status == 0 && !matched && w->u32 == 0) w->u32 = MQTT_RC_NO_MATCHING_SUBSCRIBERS;
    free(p);
    dur_wait_cb(w, status, 0);
}

/* Local delivery only (QoS 0 whose owner cannot be reached: the minority keeps serving its own
 * clients). */
static void route_deliver_local(struct broker *b, const char *pub_id, struct msg *m)
{
    struct route *r = b->route;
    struct session *publisher = pub_id ? session_find(b, pub_id, strlen(pub_id)) : NULL;
    r->local_only = true;
    deliver_publish(b, publisher, m, NULL, NULL);
    r->local_only = false;
}

void route_forward(struct broker *b, uint64_t owner, const char *pub_id, struct msg *m,
                   struct dur_wait *w)
{
    struct route *r = b->route;
    struct route_pend *p = NULL;
    uint64_t token = 0;
    if (w) {
        p = calloc(1, sizeof *p);
        if (!p) {
            dur_wait_fail(dur_hold(w), -ENOMEM);
            return;
        }
        token = ++r->next_token;
    }
    size_t len = 0;
    uint8_t *buf = route_encode(pub_id, m, token, 8, &len);
    if (!buf) {
        free(p);
        if (w) dur_wait_fail(dur_hold(w), -ENOMEM);
        return;
    }
    route_put64(buf, route_ring_digest(b));
    int rc = cluster_link_send(b->cluster, owner, ROUTE_FRAME_FORWARD, buf, len,
                               w ? 0 : CLUSTER_LINK_QOS0);
    free(buf);
    if (!w) {
        if (rc < 0) {
            r->shed++;
            route_deliver_local(b, pub_id, m);
        }
        return;
    }
    if (rc < 0) {
        r->refused++;
        free(p);
        dur_wait_fail(dur_hold(w), rc);
        return;
    }
    p->token = token;
    p->owner = owner;
    p->w = dur_hold(w);
    if (htab_insert(&r->pending, &p->node, htab_hash_u64(token)) < 0) {
        free(p);
        dur_wait_fail(w, -ENOMEM);
    }
}

static bool route_pend_eq(const struct htab_node *n, const void *key)
{
    return ((const struct route_pend *)n)->token == *(const uint64_t *)key;
}

static void route_on_confirm(struct broker *b, const uint8_t *buf, size_t len)
{
    struct route *r = b->route;
    if (len != 13) return;
    uint64_t token = route_get64(buf);
    int32_t status = (int32_t)((uint32_t)buf[8] << 24 | (uint32_t)buf[9] << 16 |
                               (uint32_t)buf[10] << 8 | buf[11]);
    struct htab_node *n = htab_find(&r->pending, htab_hash_u64(token), route_pend_eq, &token);
    if (!n) return;
    route_pend_finish(r, (struct route_pend *)n, status, buf[12] != 0);
}

/* ---- owner ---- */

static void route_owner_done_cb(struct broker *b, struct dur_wait *w, int status)
{
    struct route_confirm *cf = w->data;
    if (b->route && cf) route_send_confirm(b, cf->from, cf->token, status, cf->matched);
    free(cf);
    free(w);
}

size_t route_owner_publish(struct broker *b, struct session *publisher, const char *pub_id,
                           struct msg *m, bool do_retain, struct dur_wait **wp, dur_done_cb done)
{
    struct route *r = b->route;
    if (do_retain && m->retain && b->cfg->retain_available) {
        struct dur_wait *w = NULL;
        if (wp) {
            if (!*wp) *wp = dur_wait_new(b, done);
            w = *wp;
        }
        int rc = m->payload_len == 0
                     ? dur_retain_clear(b, m->topic, m->topic_len, w ? dur_wait_cb : NULL,
                                        w ? dur_hold(w) : NULL)
                     : dur_retain_set(b, m, pub_id, w ? dur_wait_cb : NULL, w ? dur_hold(w) : NULL);
        if (rc < 0 && w) dur_wait_fail(w, rc);
    }
    r->ntargets = 0;
    r->targets_overflow = false;
    size_t n = deliver_publish(b, publisher, m, wp, done);
    uint64_t all[64];
    const uint64_t *to = r->targets;
    size_t nto = r->ntargets;
    if (r->targets_overflow) {
        nto = cluster_live_members(b->cluster, all, 64);
        if (nto > 64) nto = 64;
        to = all;
    }
    if (nto == 0) return n;
    size_t len = 0;
    uint8_t *buf = route_encode(pub_id, m, 0, 0, &len);
    int fail = buf ? 0 : -ENOMEM;
    for (size_t i = 0; buf && i < nto; i++) {
        if (to[i] == r->self) continue;
        int rc = cluster_link_send(b->cluster, to[i], ROUTE_FRAME_DELIVER, buf, len,
                                   m->qos ? 0 : CLUSTER_LINK_QOS0);
        if (rc < 0) {
            if (m->qos) {
                r->refused++;
                fail = rc;
            } else {
                r->shed++;
            }
        }
    }
    free(buf);
    if (fail < 0 && m->qos && wp) {
        if (!*wp) *wp = dur_wait_new(b, done);
        if (*wp) dur_wait_fail(dur_hold(*wp), fail);
    }
    return n;
}

/* A decoded FORWARD / DELIVER frame as a message. NULL if it does not decode. */
static struct msg *route_decode(const uint8_t *buf, size_t len, struct cluster_cmd *cmd)
{
    if (cluster_cmd_decode(buf, len, cmd) < 0 || cmd->type != CLUSTER_CMD_QUEUE_PUSH) return NULL;
    return dur_msg_from_store(&cmd->queue_push.msg);
}

static void route_on_forward(struct broker *b, uint64_t from, const uint8_t *buf, size_t len)
{
    struct cluster_cmd cmd;
    if (len < 8) return;
    uint64_t digest = route_get64(buf);
    struct msg *m = route_decode(buf + 8, len - 8, &cmd);
    if (m && digest != route_ring_digest(b)) {
        /* Routed under another view of the live members: not ours to sequence. */
        b->route->refused++;
        if (cmd.queue_push.msg_id)
            route_send_confirm(b, from, cmd.queue_push.msg_id, CLUSTER_ELEADERSHIPLOST, false);
        msg_unref(m);
        return;
    }
    if (!m) {
        log_at(LOG_TYPE_WARNING, "Malformed forwarded message from node %llu.",
               (unsigned long long)from);
        return;
    }
    const char *pub_id = cmd.queue_push.client_id.ptr;
    struct session *publisher = session_find(b, pub_id, cmd.queue_push.client_id.len);
    uint64_t token = cmd.queue_push.msg_id;
    struct dur_wait *w = NULL;
    size_t n =
        route_owner_publish(b, publisher, pub_id, m, true, token ? &w : NULL, route_owner_done_cb);
    if (token) {
        if (!w) {
            route_send_confirm(b, from, token, 0, n > 0);
        } else {
            struct route_confirm *cf = malloc(sizeof *cf);
            if (!cf) {
                route_send_confirm(b, from, token, -ENOMEM, false);
                w->done = NULL;
            } else {
                cf->from = from;
                cf->token = token;
                cf->matched = n > 0;
                w->data = cf;
            }
            dur_wait_release(w);
        }
    }
    msg_unref(m);
}

static void route_on_deliver(struct broker *b, uint64_t from, const uint8_t *buf, size_t len)
{
    struct cluster_cmd cmd;
    struct msg *m = route_decode(buf, len, &cmd);
    if (!m) {
        log_at(LOG_TYPE_WARNING, "Malformed message copy from node %llu.",
               (unsigned long long)from);
        return;
    }
    route_deliver_local(b, cmd.queue_push.client_id.ptr, m);
    msg_unref(m);
}

/* ---- events ---- */

void route_link_frame(void *ctx, uint64_t from_id, uint8_t type, const uint8_t *buf, size_t len)
{
    struct broker *b = ctx;
    if (!b->route || b->closing_cluster) return;
    switch (type) {
    case ROUTE_FRAME_FORWARD:
        route_on_forward(b, from_id, buf, len);
        break;
    case ROUTE_FRAME_DELIVER:
        route_on_deliver(b, from_id, buf, len);
        break;
    case ROUTE_FRAME_CONFIRM:
        route_on_confirm(b, buf, len);
        break;
    default:
        break;
    }
}

void route_ring_changed(void *ctx)
{
    struct broker *b = ctx;
    struct route *r = b->route;
    if (!r) return;
    /* Messages forwarded to an owner that is gone are not acknowledged: the publisher sends
     * them again (MQTT 5: an error reason; 3.x: the connection closes). */
    struct route_pend *p = route_pending_take(r, true);
    while (p) {
        struct route_pend *next = p->taken_next;
        struct dur_wait *w = p->w;
        free(p);
        dur_wait_cb(w, CLUSTER_ELEADERSHIPLOST, 0);
        p = next;
    }
}

struct route_will_ctx {
    struct broker *b;
    uint64_t node;
    struct store_txn *t;
    struct msg **msgs;
    char **ids;
    size_t n, cap;
};

static int route_will_cb(void *ctx, const struct store_will *w)
{
    struct route_will_ctx *x = ctx;
    struct store_session ss;
    int rc = store_session_get(x->t, w->client_id.ptr, w->client_id.len, &ss);
    if (rc < 0 || ss.node_id != x->node) return 0;
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 16;
        struct msg **m = realloc(x->msgs, cap * sizeof *m);
        if (!m) return 0;
        x->msgs = m;
        char **ids = realloc(x->ids, cap * sizeof *ids);
        if (!ids) return 0;
        x->ids = ids;
        x->cap = cap;
    }
    struct store_message sm = w->msg;
    uint32_t expiry = (uint32_t)sm.expires_at_ms; /* the interval, for a will */
    sm.expires_at_ms = expiry ? broker_wall_ms() + (uint64_t)expiry * 1000 : 0;
    struct msg *m = dur_msg_from_store(&sm);
    char *id = strndup(w->client_id.ptr, w->client_id.len);
    if (!m || !id) {
        if (m) msg_unref(m);
        free(id);
        return 0;
    }
    x->msgs[x->n] = m;
    x->ids[x->n] = id;
    x->n++;
    return 0;
}

void route_node_changed(void *ctx, uint64_t node_id, bool up, bool is_leader)
{
    struct broker *b = ctx;
    log_at(LOG_TYPE_NOTICE, "Cluster: node %llu is %s.", (unsigned long long)node_id,
           up ? "up" : "down");
    if (up || !is_leader || !b->route) return;
    /* The dead node's wills: read now, before the leader's purge of its sessions. */
    struct route_will_ctx x = {.b = b, .node = node_id};
    if (store_read_begin(cluster_storage(b->cluster), &x.t) < 0) return;
    store_will_foreach(x.t, route_will_cb, &x);
    store_txn_end(x.t);
    for (size_t i = 0; i < x.n; i++) {
        struct msg *m = x.msgs[i];
        log_at(LOG_TYPE_NOTICE, "Publishing the will of %s (node %llu is down).", x.ids[i],
               (unsigned long long)node_id);
        dur_session_client(b, CLUSTER_CMD_WILL_CLEAR, x.ids[i], strlen(x.ids[i]));
        uint64_t owner = route_remote_owner(b, m->topic, m->topic_len);
        if (owner)
            route_forward(b, owner, x.ids[i], m, NULL);
        else
            route_owner_publish(b, NULL, x.ids[i], m, true, NULL, NULL);
        msg_unref(m);
        free(x.ids[i]);
    }
    free(x.msgs);
    free(x.ids);
}

void route_removed(void *ctx)
{
    struct broker *b = ctx;
    log_at(LOG_TYPE_NOTICE, "This node was removed from the cluster: stopping.");
    broker_stop(b);
}
