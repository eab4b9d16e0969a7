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
#include "subs.h"

/* Target nodes of one delivery (more are sent to every live node). */
#define ROUTE_TARGETS_MAX 32
/* Ingress nodes an owner keeps the refusal generation of. */
#define ROUTE_GENS_MAX 64
/* Sends of one message before its publisher is failed (not acknowledged). */
#define ROUTE_SENDS_MAX 50
/* Wait before re-routing a refused message: doubles from MIN to MAX while refusals go on. */
#define ROUTE_BACKOFF_MIN_MS 5
#define ROUTE_BACKOFF_MAX_MS 200
/* A message sent to an owner that then left the ring: its answer is awaited this long. */
#define ROUTE_ORPHAN_MS 500
/* While holding: a message without an answer for this long is routed again. */
#define ROUTE_STUCK_MS 3000
#define ROUTE_TICK_MS  20
/* The owner's answer to a message forwarded under another view: not routed, send again. */
#define ROUTE_REFUSED (-ESTALE)
/* The copy's scratch buffer is freed after a message that made it larger than this. */
#define ROUTE_SCRATCH_KEEP ((size_t)1 << 20)
/* ROUTE_FRAME_COPY: the bytes before the command (epoch, hops, cmd_len). */
#define ROUTE_COPY_HEAD 13
/* A QoS >= 1 shared delivery whose member is gone is sent on at most this many times. */
#define ROUTE_HOPS_MAX 2

/* A QoS >= 1 message of a publisher on this node, forwarded and waiting for its owner's
 * confirmation (in route->pending by token), or held for (re)routing (in route->queue). */
struct route_pend {
    struct htab_node node; /* in route->pending by token, while sent */
    uint64_t token;        /* of the latest send */
    uint64_t seq;          /* arrival order on this node */
    uint64_t owner;
    uint64_t sent_ms;    /* loop time of the latest send */
    uint64_t give_up_ms; /* the owner left the ring: routed again after this loop time */
    struct dur_wait *w;  /* one hold, released by the answer */
    struct msg *m;       /* one reference */
    unsigned sends;
    struct route_pend *next; /* in the queue, or in a list taken out of the table */
    char pub_id[];           /* the publisher's client id */
};

struct route {
    struct broker *b;
    uint64_t self;
    uint64_t next_token;
    uint64_t next_seq;
    struct htab pending;
    size_t npending;
    size_t norphans;                       /* pending entries with give_up_ms */
    struct route_pend *queue, *queue_tail; /* held, by seq */
    bool holding;                          /* new QoS >= 1 messages join the queue */
    uint64_t gen;                          /* of this node's forwards (see route_flush) */
    uint64_t retry_at_ms;                  /* the queue waits until then (loop time) */
    unsigned backoff_ms;
    uv_timer_t timer;
    bool timer_on;
    struct {
        uint64_t node;
        uint64_t min_gen;
    } gens[ROUTE_GENS_MAX]; /* owner side: forwards of node below min_gen are refused */
    size_t ngens;
    bool local_only;     /* delivering a copy from the owner */
    bool cluster_wide;   /* deciding deliveries as the owner (route_owner_publish) */
    bool groups_decided; /* delivering a ROUTE_FRAME_COPY */
    /* The owner's shared picks on other nodes for the message being sequenced, and the copy
     * being built: scratch that grows to the largest need (no allocation per message). */
    struct route_pick *picks;
    size_t npicks, picks_cap;
    uint8_t *pick_bytes;
    size_t pick_len, pick_bytes_cap;
    bool picks_failed;
    uint8_t *frame;
    size_t frame_cap;
    uint64_t targets[ROUTE_TARGETS_MAX];
    unsigned ntargets;
    bool targets_overflow;
    uint64_t shed;       /* QoS 0 messages not forwarded (link down or full) */
    uint64_t refused;    /* QoS >= 1 messages not forwarded (queue full) */
    uint64_t rerouted;   /* QoS >= 1 messages routed again after a ring change */
    uint64_t stale;      /* copies from an owner declared down since it sequenced them */
    uint64_t redirected; /* shared deliveries sent on: their member had left this node */
};

/* A shared delivery the owner picked on another node: its entry (client id and filter, in
 * the layout of ROUTE_FRAME_COPY) is pick_bytes[off, off + len). */
struct route_pick {
    uint64_t node;
    uint32_t off, len;
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
    /* Above every generation this node used before a restart (owners remember them). */
    r->gen = broker_wall_ms() << 16;
    htab_init(&r->pending);
    uv_timer_init(b->loop, &r->timer);
    r->timer.data = r;
    uv_unref((uv_handle_t *)&r->timer);
    b->route = r;
    return 0;
}

/* Takes every entry out of the pending table (the walk reaches the end before anything is
 * removed: removing the walk's current node would leave htab_next on it) and returns them as
 * a list through next. */
static struct route_pend *route_pending_take_all(struct route *r)
{
    struct route_pend *taken = NULL;
    size_t bucket = 0;
    struct htab_node *cur = NULL, *node;
    while ((node = htab_next(&r->pending, &bucket, &cur)) != NULL) {
        struct route_pend *p = (struct route_pend *)node;
        p->next = taken;
        taken = p;
    }
    for (struct route_pend *p = taken; p; p = p->next)
        htab_remove(&r->pending, &p->node);
    r->npending = 0;
    r->norphans = 0;
    return taken;
}

static void route_pend_free(struct route_pend *p)
{
    msg_unref(p->m);
    free(p);
}

void route_free(struct broker *b)
{
    struct route *r = b->route;
    if (!r) return;
    struct route_pend *p = route_pending_take_all(r);
    for (int pass = 0; pass < 2; pass++) {
        while (p) {
            struct route_pend *next = p->next;
            p->w->done = NULL; /* its connection is gone: nobody to answer */
            dur_wait_fail(p->w, CLUSTER_ESHUTDOWN);
            route_pend_free(p);
            p = next;
        }
        p = r->queue;
        r->queue = r->queue_tail = NULL;
    }
    htab_close(&r->pending);
    free(r->picks);
    free(r->pick_bytes);
    free(r->frame);
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

/* The ring epoch this node routes by (cluster_ring_epoch): a forward carries the ingress's, a
 * copy the owner's. An owner sequences only a forward of its own epoch, so that one topic
 * never has two sequencers at once (see "HOW RE-ROUTING WORKS"). */
static uint64_t route_epoch(struct broker *b)
{
    return cluster_ring_epoch(b->cluster);
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

bool route_picks_cluster_wide(const struct broker *b)
{
    return b->route && b->route->cluster_wide;
}

bool route_groups_decided(const struct broker *b)
{
    return b->route && b->route->groups_decided;
}

/* Makes room for n elements of size sz in *arr (capacity *cap); false without memory. */
static bool route_reserve(void **arr, size_t *cap, size_t n, size_t sz)
{
    if (n <= *cap) return true;
    size_t c = *cap ? *cap : 16;
    while (c < n)
        c *= 2;
    void *p = realloc(*arr, c * sz);
    if (!p) return false;
    *arr = p;
    *cap = c;
    return true;
}

static void route_put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void route_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t route_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void route_note_pick(struct broker *b, uint64_t id, const char *client_id, size_t client_id_len,
                     const char *filter, size_t filter_len)
{
    struct route *r = b->route;
    if (!r) return;
    route_note_target(b, id);
    size_t need = 4 + client_id_len + filter_len;
    if (client_id_len > UINT16_MAX || filter_len > UINT16_MAX || r->pick_len + need > UINT32_MAX ||
        !route_reserve((void **)&r->picks, &r->picks_cap, r->npicks + 1, sizeof *r->picks) ||
        !route_reserve((void **)&r->pick_bytes, &r->pick_bytes_cap, r->pick_len + need, 1)) {
        r->picks_failed = true;
        return;
    }
    uint8_t *p = r->pick_bytes + r->pick_len;
    route_put16(p, client_id_len);
    memcpy(p + 2, client_id, client_id_len);
    route_put16(p + 2 + client_id_len, filter_len);
    memcpy(p + 4 + client_id_len, filter, filter_len);
    r->picks[r->npicks].node = id;
    r->picks[r->npicks].off = (uint32_t)r->pick_len;
    r->picks[r->npicks].len = (uint32_t)need;
    r->npicks++;
    r->pick_len += need;
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

/* m as a QUEUE_PUSH command (the message's encoding on the links). */
static void route_cmd_of(const char *pub_id, const struct msg *m, uint64_t token,
                         struct cluster_cmd *cmd)
{
    memset(cmd, 0, sizeof *cmd);
    cmd->type = CLUSTER_CMD_QUEUE_PUSH;
    cmd->queue_push.client_id.ptr = pub_id ? pub_id : "";
    cmd->queue_push.client_id.len = pub_id ? strlen(pub_id) : 0;
    cmd->queue_push.msg_id = token;
    cmd->queue_push.msg.topic.ptr = m->topic;
    cmd->queue_push.msg.topic.len = m->topic_len;
    cmd->queue_push.msg.payload.ptr = m->payload;
    cmd->queue_push.msg.payload.len = m->payload_len;
    cmd->queue_push.msg.props.ptr = m->props;
    cmd->queue_push.msg.props.len = m->props_len;
    cmd->queue_push.msg.expires_at_ms = m->expires_at_ms;
    cmd->queue_push.msg.qos = m->qos;
    cmd->queue_push.msg.retain = m->retain;
}

/* m as a QUEUE_PUSH command into a malloc'ed buffer. NULL without memory or if too large. */
static uint8_t *route_encode(const char *pub_id, const struct msg *m, uint64_t token, size_t head,
                             size_t *len)
{
    struct cluster_cmd cmd;
    route_cmd_of(pub_id, m, token, &cmd);
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

/* The head of a ROUTE_FRAME_COPY of m (epoch, hops, cmd_len, command) into r->frame; OUT
 * *len: its length. 0, -ENOMEM, -EMSGSIZE. */
static int route_copy_head(struct route *r, uint64_t epoch, uint8_t hops, const char *pub_id,
                           const struct msg *m, size_t *len)
{
    struct cluster_cmd cmd;
    route_cmd_of(pub_id, m, 0, &cmd);
    size_t need = cluster_cmd_encoded_size(&cmd);
    if (need == 0 || need > UINT32_MAX) return -EMSGSIZE;
    if (!route_reserve((void **)&r->frame, &r->frame_cap, ROUTE_COPY_HEAD + need + 4, 1))
        return -ENOMEM;
    route_put64(r->frame, epoch);
    r->frame[8] = hops;
    route_put32(r->frame + 9, (uint32_t)need);
    if (cluster_cmd_encode(&cmd, r->frame + ROUTE_COPY_HEAD, need) != need) return -EMSGSIZE;
    *len = ROUTE_COPY_HEAD + need;
    return 0;
}

/* Appends the picks of node to the copy's head (head bytes long). OUT *len: the frame's
 * length. 0 or -ENOMEM. */
static int route_copy_picks(struct route *r, uint64_t node, size_t head, size_t *len)
{
    size_t bytes = 0;
    uint32_t n = 0;
    for (size_t i = 0; i < r->npicks; i++)
        if (r->picks[i].node == node) {
            bytes += r->picks[i].len;
            n++;
        }
    if (!route_reserve((void **)&r->frame, &r->frame_cap, head + 4 + bytes, 1)) return -ENOMEM;
    uint8_t *p = r->frame + head;
    route_put32(p, n);
    p += 4;
    for (size_t i = 0; i < r->npicks && n > 0; i++)
        if (r->picks[i].node == node) {
            memcpy(p, r->pick_bytes + r->picks[i].off, r->picks[i].len);
            p += r->picks[i].len;
        }
    *len = head + 4 + bytes;
    return 0;
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

/* ---- ingress ----
 *
 * HOW RE-ROUTING WORKS. The nodes apply a change of the live set at slightly different
 * moments, and an owner refuses (ROUTE_REFUSED) a QoS >= 1 message forwarded under another
 * ring epoch than its own, or while it does not hold the owner lease (cluster_current), so
 * that a topic never has two sequencers. A message of this node's own client on a topic this
 * node owns is treated the same way while it lacks the lease. Refused messages
 * are not lost: the ingress keeps each forwarded message until its owner answers, and a
 * refused one is routed again under the view this node holds then (another node may own the
 * topic, or this one). Three rules keep one publisher's order per topic:
 * - Holding: from the first refusal, or from a ring change while forwards are unanswered,
 *   new QoS >= 1 messages join the queue behind the refused ones instead of being routed.
 *   The queue is routed again only once nothing forwarded is unanswered (an answer may still
 *   be an acceptance under the old view), in arrival order, then holding ends.
 * - Generations: every forward carries this node's generation, which grows each time the
 *   queue is routed again. An owner that refused a message of generation g refuses every later
 *   message of this node up to g as well, even if its view now agrees: a message sent after a
 *   refused one must not overtake it.
 * - Backoff: after a refusal the queue waits (5 ms doubling to 200 ms) unless this node's
 *   view changes first; after ROUTE_SENDS_MAX sends the publisher is failed as before.
 * A message whose owner left the ring awaits the owner's answer for ROUTE_ORPHAN_MS (a node
 * being removed still answers), then is routed again; so is one unanswered for
 * ROUTE_STUCK_MS while holding (its frame was lost with a broken connection). The old owner
 * cannot sequence such a frame later (it lost the lease before it was declared down, and once
 * caught up it holds a newer epoch), so those two reach subscribers twice only if the owner
 * took them and then died or stopped before its answer came back: QoS 1 allows it, and for
 * QoS 2 it is the case of a publisher resending after its connection was closed. A message
 * whose publisher's connection is gone is not routed again: the publisher resends it itself. */

static void route_timer_cb(uv_timer_t *t);
static void route_flush(struct route *r);

static void route_pend_finish(struct route_pend *p, int status, bool matched)
{
    struct dur_wait *w = p->w;
    if (status == 0 && !matched && w->u32 == 0) w->u32 = MQTT_RC_NO_MATCHING_SUBSCRIBERS;
    route_pend_free(p);
    dur_wait_cb(w, status, 0);
}

/* Takes p out of the pending table. */
static void route_pend_unlink(struct route *r, struct route_pend *p)
{
    htab_remove(&r->pending, &p->node);
    r->npending--;
    if (p->give_up_ms) r->norphans--;
    p->give_up_ms = 0;
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

/* Runs the timer while something waits for it. */
static void route_timer_update(struct route *r)
{
    bool want = r->holding || r->norphans > 0;
    if (want && !r->timer_on) {
        uv_timer_start(&r->timer, route_timer_cb, ROUTE_TICK_MS, ROUTE_TICK_MS);
        r->timer_on = true;
    } else if (!want && r->timer_on) {
        uv_timer_stop(&r->timer);
        r->timer_on = false;
    }
}

/* Puts p into the queue by arrival order (refused ones go before later held ones). */
static void route_enqueue(struct route *r, struct route_pend *p)
{
    p->owner = 0;
    if (!r->queue || r->queue_tail->seq < p->seq) {
        p->next = NULL;
        if (r->queue_tail)
            r->queue_tail->next = p;
        else
            r->queue = p;
        r->queue_tail = p;
        return;
    }
    struct route_pend **pp = &r->queue;
    while (*pp && (*pp)->seq < p->seq)
        pp = &(*pp)->next;
    p->next = *pp;
    *pp = p;
}

/* The publisher of p closed its connection: it sends the message again (it was not
 * acknowledged) or gives it up, and routing it again now could deliver it after the later
 * messages it sent since. (A will has no connection: it is always routed again.)
 * Not so for QoS 2 in a session that outlives the connection: its packet id stays received,
 * so the publisher's resend is answered as a duplicate (PUBREC, not delivered again) and this
 * message is the one copy to deliver. */
static bool route_publisher_gone(struct route *r, const struct route_pend *p)
{
    const struct dur_wait *w = p->w;
    if (!w->done || !w->conn_id || conn_find(r->b, w->conn_id)) return false;
    if (w->qos == 2) {
        const struct session *s = session_find(r->b, p->pub_id, strlen(p->pub_id));
        if (s && s->persistent) return false;
    }
    return true;
}

/* p (out of the table) to be routed again, or failed after too many sends. */
static void route_retry(struct route *r, struct route_pend *p)
{
    if (route_publisher_gone(r, p)) {
        route_pend_finish(p, CLUSTER_ELEADERSHIPLOST, false);
        return;
    }
    if (p->sends >= ROUTE_SENDS_MAX) {
        r->refused++;
        log_at(LOG_TYPE_WARNING, "A message from %s was refused %u times: not acknowledged.",
               p->pub_id, p->sends);
        route_pend_finish(p, CLUSTER_ELEADERSHIPLOST, false);
        return;
    }
    r->rerouted++;
    route_enqueue(r, p);
    r->holding = true;
}

/* p was not taken under the view it was routed by: again, after a backoff (or sooner, when
 * this node's view changes). */
static void route_refused(struct route *r, struct route_pend *p)
{
    uint64_t now = uv_now(r->b->loop);
    if (r->retry_at_ms <= now) {
        r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : ROUTE_BACKOFF_MIN_MS;
        if (r->backoff_ms > ROUTE_BACKOFF_MAX_MS) r->backoff_ms = ROUTE_BACKOFF_MAX_MS;
        r->retry_at_ms = now + r->backoff_ms;
    }
    route_retry(r, p);
    route_timer_update(r);
}

/* Sends p (out of the table and the queue) to owner under the current view; on failure
 * (link queue full, no memory) the publisher is failed. */
static void route_send(struct route *r, struct route_pend *p, uint64_t owner)
{
    struct broker *b = r->b;
    size_t len = 0;
    p->token = ++r->next_token;
    uint8_t *buf = route_encode(p->pub_id, p->m, p->token, 16, &len);
    if (!buf) {
        route_pend_finish(p, -ENOMEM, false);
        return;
    }
    route_put64(buf, route_epoch(b));
    route_put64(buf + 8, r->gen);
    int rc = cluster_link_send(b->cluster, owner, ROUTE_FRAME_FORWARD, buf, len, 0);
    free(buf);
    if (rc == 0) {
        p->owner = owner;
        p->sends++;
        p->sent_ms = uv_now(b->loop);
        p->give_up_ms = 0;
        rc = htab_insert(&r->pending, &p->node, htab_hash_u64(p->token));
        if (rc == 0) {
            r->npending++;
            return;
        }
    } else if (rc == -ENOENT) {
        /* The owner left the configuration; the ring follows when NODE_DOWN is applied. */
        p->sends++;
        route_refused(r, p);
        return;
    } else {
        r->refused++;
    }
    route_pend_finish(p, rc, false);
}

/* Routes p under the current view: to its owner, or published here when this node owns it. */
static void route_dispatch(struct route *r, struct route_pend *p)
{
    struct broker *b = r->b;
    uint64_t owner = route_remote_owner(b, p->m->topic, p->m->topic_len);
    if (owner) {
        route_send(r, p, owner);
        return;
    }
    if (!cluster_current(b->cluster)) {
        /* This node owns it by a view that may be stale: as an owner's refusal. */
        p->sends++;
        route_refused(r, p);
        return;
    }
    struct session *publisher = session_find(b, p->pub_id, strlen(p->pub_id));
    struct dur_wait *w = p->w;
    size_t n = route_owner_publish(b, publisher, p->pub_id, p->m, true, &w, NULL);
    route_pend_finish(p, 0, n > 0);
}

/* Routes the queue again once nothing forwarded is unanswered and the backoff passed. */
static void route_flush(struct route *r)
{
    struct broker *b = r->b;
    if (!r->holding || r->npending > 0 || b->closing_cluster) return;
    if (r->queue && uv_now(b->loop) < r->retry_at_ms) return;
    r->holding = false;
    r->gen++;
    struct route_pend *p = r->queue;
    r->queue = r->queue_tail = NULL;
    while (p) {
        struct route_pend *next = p->next;
        if (route_publisher_gone(r, p))
            route_pend_finish(p, CLUSTER_ELEADERSHIPLOST, false);
        else
            route_dispatch(r, p);
        p = next;
    }
}

static void route_timer_cb(uv_timer_t *t)
{
    struct route *r = t->data;
    struct broker *b = r->b;
    uint64_t now = uv_now(b->loop);
    if (r->norphans > 0 || r->holding) {
        /* Answers that will not come: the owner left the ring, or the frame was lost. */
        struct route_pend *late = NULL;
        size_t bucket = 0;
        struct htab_node *cur = NULL, *node;
        while ((node = htab_next(&r->pending, &bucket, &cur)) != NULL) {
            struct route_pend *p = (struct route_pend *)node;
            if ((p->give_up_ms && now >= p->give_up_ms) ||
                (r->holding && now - p->sent_ms >= ROUTE_STUCK_MS)) {
                p->next = late;
                late = p;
            }
        }
        while (late) {
            struct route_pend *next = late->next;
            route_pend_unlink(r, late);
            route_retry(r, late);
            late = next;
        }
    }
    route_flush(r);
    route_timer_update(r);
}

/* A new QoS >= 1 message routed (or held) with w: one hold of w is taken. */
static void route_start(struct broker *b, uint64_t owner, const char *pub_id, struct msg *m,
                        struct dur_wait *w)
{
    struct route *r = b->route;
    size_t idlen = pub_id ? strlen(pub_id) : 0;
    struct route_pend *p = calloc(1, sizeof *p + idlen + 1);
    if (!p) {
        dur_wait_fail(dur_hold(w), -ENOMEM);
        return;
    }
    if (idlen) memcpy(p->pub_id, pub_id, idlen);
    p->seq = ++r->next_seq;
    p->w = dur_hold(w);
    p->m = msg_ref(m);
    if (r->holding) {
        route_enqueue(r, p);
        route_timer_update(r);
    } else if (owner) {
        route_send(r, p, owner);
    } else {
        route_dispatch(r, p);
    }
}

bool route_current(struct broker *b)
{
    return cluster_current(b->cluster);
}

bool route_holding(const struct broker *b)
{
    return b->route && b->route->holding;
}

void route_hold(struct broker *b, const char *pub_id, struct msg *m, struct dur_wait *w)
{
    route_start(b, 0, pub_id, m, w);
}

void route_forward(struct broker *b, uint64_t owner, const char *pub_id, struct msg *m,
                   struct dur_wait *w)
{
    struct route *r = b->route;
    if (w) {
        route_start(b, owner, pub_id, m, w);
        return;
    }
    size_t len = 0;
    uint8_t *buf = route_encode(pub_id, m, 0, 16, &len);
    int rc = -ENOMEM;
    if (buf) {
        route_put64(buf, route_epoch(b));
        route_put64(buf + 8, r->gen);
        rc = cluster_link_send(b->cluster, owner, ROUTE_FRAME_FORWARD, buf, len, CLUSTER_LINK_QOS0);
        free(buf);
    }
    if (rc < 0) {
        r->shed++;
        route_deliver_local(b, pub_id, m);
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
    struct route_pend *p = (struct route_pend *)n;
    route_pend_unlink(r, p);
    if (status == ROUTE_REFUSED) {
        /* Routed under another view: nothing was done with it. */
        route_refused(r, p);
    } else {
        if (status == 0) r->backoff_ms = 0;
        route_pend_finish(p, status, buf[12] != 0);
    }
    route_flush(r);
    route_timer_update(r);
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
    r->npicks = 0;
    r->pick_len = 0;
    r->picks_failed = false;
    bool was_wide = r->cluster_wide;
    r->cluster_wide = true;
    size_t n = deliver_publish(b, publisher, m, wp, done);
    r->cluster_wide = was_wide;
    uint64_t all[64];
    const uint64_t *to = r->targets;
    size_t nto = r->ntargets;
    if (r->targets_overflow) {
        nto = cluster_live_members(b->cluster, all, 64);
        if (nto > 64) nto = 64;
        to = all;
    }
    if (nto == 0) return n;
    size_t head = 0;
    int fail = route_copy_head(r, route_epoch(b), 0, pub_id, m, &head);
    if (fail == 0 && r->picks_failed) fail = -ENOMEM; /* a shared delivery is missing */
    for (size_t i = 0; head && i < nto; i++) {
        if (to[i] == r->self) continue;
        size_t len = 0;
        int rc = route_copy_picks(r, to[i], head, &len);
        if (rc == 0)
            rc = cluster_link_send(b->cluster, to[i], ROUTE_FRAME_COPY, r->frame, len,
                                   m->qos ? 0 : CLUSTER_LINK_QOS0);
        if (rc < 0) {
            if (m->qos && rc != -ENOENT) {
                /* (-ENOENT: that node left the configuration, and its clients with it.) */
                r->refused++;
                fail = rc;
            } else {
                r->shed++;
            }
        }
    }
    if (r->frame_cap > ROUTE_SCRATCH_KEEP) {
        /* A large message's copy: its scratch is not kept. */
        free(r->frame);
        r->frame = NULL;
        r->frame_cap = 0;
    }
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

/* The generation below which forwards of node from are refused (0: none refused yet). */
static uint64_t *route_min_gen(struct route *r, uint64_t from)
{
    for (size_t i = 0; i < r->ngens; i++)
        if (r->gens[i].node == from) return &r->gens[i].min_gen;
    if (r->ngens == ROUTE_GENS_MAX) return NULL;
    r->gens[r->ngens].node = from;
    r->gens[r->ngens].min_gen = 0;
    return &r->gens[r->ngens++].min_gen;
}

static void route_on_forward(struct broker *b, uint64_t from, const uint8_t *buf, size_t len)
{
    struct cluster_cmd cmd;
    if (len < 16) return;
    uint64_t epoch = route_get64(buf);
    uint64_t gen = route_get64(buf + 8);
    struct msg *m = route_decode(buf + 16, len - 16, &cmd);
    if (!m) {
        log_at(LOG_TYPE_WARNING, "Malformed forwarded message from node %llu.",
               (unsigned long long)from);
        return;
    }
    if (cmd.queue_push.msg_id) {
        /* Routed under another ring epoch, or sent after such a message (the ingress routes
         * that one again first): not ours to sequence now. An older epoch: the ingress routes
         * it again once it applied the newer state. A newer one: this node is behind; refused
         * as well (not held), the ingress sends it again after a backoff, by when this node
         * has applied that state, or ownership moved. */
        uint64_t *min_gen = route_min_gen(b->route, from);
        if (epoch != route_epoch(b) || !cluster_current(b->cluster) ||
            (min_gen && gen < *min_gen)) {
            if (min_gen && gen + 1 > *min_gen) *min_gen = gen + 1;
            route_send_confirm(b, from, cmd.queue_push.msg_id, ROUTE_REFUSED, false);
            msg_unref(m);
            return;
        }
    } else if (epoch != route_epoch(b)) {
        /* QoS 0 is not gated by the lease (a node just started, or on the minority side,
         * keeps it flowing); a stale owner's QoS 0 copies are dropped by their receivers. */
        b->route->shed++;
        msg_unref(m);
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

/* Whether a QoS 0 copy of ring epoch epoch from node from comes from a stale owner: one
 * declared down since it sequenced the copy (or the copy waited in its link buffer).
 * Delivering it would put it after messages sequenced later. QoS >= 1 copies are delivered:
 * the owner confirmed them to their ingress once queued here, so dropping one could lose an
 * acknowledged message; the owner lease keeps a stale owner from sequencing them in the first
 * place. */
static bool route_copy_stale(struct broker *b, uint64_t from, uint64_t epoch, const struct msg *m)
{
    if (m->qos != 0 || epoch >= cluster_node_down_epoch(b->cluster, from)) return false;
    b->route->stale++;
    log_at(LOG_TYPE_DEBUG, "Copy from node %llu of ring epoch %llu dropped (down at %llu).",
           (unsigned long long)from, (unsigned long long)epoch,
           (unsigned long long)cluster_node_down_epoch(b->cluster, from));
    return true;
}

/* A ROUTE_FRAME_DELIVER, from an owner of a version before ROUTE_FRAME_COPY: delivered as it
 * meant it (shared groups balanced among the members connected here). */
static void route_on_deliver(struct broker *b, uint64_t from, const uint8_t *buf, size_t len)
{
    struct cluster_cmd cmd;
    if (len < 8) return;
    uint64_t epoch = route_get64(buf);
    struct msg *m = route_decode(buf + 8, len - 8, &cmd);
    if (!m) {
        log_at(LOG_TYPE_WARNING, "Malformed message copy from node %llu.",
               (unsigned long long)from);
        return;
    }
    if (!route_copy_stale(b, from, epoch, m))
        route_deliver_local(b, cmd.queue_push.client_id.ptr, m);
    msg_unref(m);
}

/* Checks the shared-delivery entries of a copy, [p, end): true when they are exactly n. */
static bool route_picks_ok(const uint8_t *p, const uint8_t *end, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        for (int k = 0; k < 2; k++) {
            if (end - p < 2) return false;
            size_t l = (size_t)p[0] << 8 | p[1];
            p += 2;
            if ((size_t)(end - p) < l) return false;
            p += l;
        }
    return p == end;
}

/* A member of a shared group connected on another live node (per the committed state). */
static bool route_able_elsewhere(void *ctx, void *owner)
{
    struct broker *b = ctx;
    const struct session *s = owner;
    return !s->conn && s->node_id && s->node_id != b->route->self && route_node_live(b, s->node_id);
}

/* A QoS >= 1 shared delivery whose member (and every other member of its group) is gone from
 * this node: sent on to the group's next member connected on another live node, as a copy
 * carrying only that delivery. false: no such member, or sent on too often (dropped). */
static bool route_redirect(struct broker *b, uint64_t epoch, uint8_t hops, const char *pub_id,
                           struct msg *m, const char *filter, size_t filter_len)
{
    struct route *r = b->route;
    struct subs_info sub;
    if (hops >= ROUTE_HOPS_MAX ||
        subs_group_pick(b->subs, filter, filter_len, route_able_elsewhere, b, &sub) < 0)
        return false;
    const struct session *s = sub.owner;
    size_t head = 0, len = 0;
    r->npicks = 0;
    r->pick_len = 0;
    r->picks_failed = false;
    route_note_pick(b, s->node_id, s->client_id, s->client_id_len, filter, filter_len);
    if (r->picks_failed || route_copy_head(r, epoch, (uint8_t)(hops + 1), pub_id, m, &head) < 0 ||
        route_copy_picks(r, s->node_id, head, &len) < 0 ||
        cluster_link_send(b->cluster, s->node_id, ROUTE_FRAME_COPY, r->frame, len, 0) < 0)
        return false;
    r->redirected++;
    log_at(LOG_TYPE_DEBUG, "Shared delivery for %.*s sent on to %s on node %llu (hop %u).",
           (int)filter_len, filter, s->client_id, (unsigned long long)s->node_id, hops + 1u);
    return true;
}

/* A ROUTE_FRAME_COPY: this node's own non-shared subscribers (from the owner: hops 0), then
 * the shared members picked here. */
static void route_on_copy(struct broker *b, uint64_t from, const uint8_t *buf, size_t len)
{
    struct route *r = b->route;
    struct cluster_cmd cmd;
    struct msg *m = NULL;
    const uint8_t *end = buf + len, *p;
    uint32_t cmd_len = 0, n = 0;
    uint64_t epoch = 0;
    uint8_t hops = 0;
    if (len >= ROUTE_COPY_HEAD) {
        epoch = route_get64(buf);
        hops = buf[8];
        cmd_len = route_get32(buf + 9);
    }
    if (len < ROUTE_COPY_HEAD || cmd_len > len - ROUTE_COPY_HEAD ||
        len - ROUTE_COPY_HEAD - cmd_len < 4)
        goto bad;
    p = buf + ROUTE_COPY_HEAD + cmd_len;
    n = route_get32(p);
    p += 4;
    if (!route_picks_ok(p, end, n)) goto bad;
    m = route_decode(buf + ROUTE_COPY_HEAD, cmd_len, &cmd);
    if (!m) goto bad;
    if (route_copy_stale(b, from, epoch, m)) {
        msg_unref(m);
        return;
    }
    const char *pub_id = cmd.queue_push.client_id.ptr;
    bool was_local = r->local_only;
    r->local_only = true;
    if (hops == 0) {
        struct session *publisher = session_find(b, pub_id, cmd.queue_push.client_id.len);
        r->groups_decided = true;
        deliver_publish(b, publisher, m, NULL, NULL);
        r->groups_decided = false;
    }
    for (uint32_t i = 0; i < n; i++) {
        size_t id_len = (size_t)p[0] << 8 | p[1];
        const char *id = (const char *)p + 2;
        p += 2 + id_len;
        size_t filter_len = (size_t)p[0] << 8 | p[1];
        const char *filter = (const char *)p + 2;
        p += 2 + filter_len;
        if (deliver_pick(b, m, id, id_len, filter, filter_len) == 0) continue;
        /* Nobody of the group here any more (the member left before the owner knew). */
        if (m->qos == 0 || !route_redirect(b, epoch, hops, pub_id, m, filter, filter_len))
            b->stats.pub_dropped++;
    }
    r->local_only = was_local;
    msg_unref(m);
    return;
bad:
    log_at(LOG_TYPE_WARNING, "Malformed message copy from node %llu.", (unsigned long long)from);
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
    case ROUTE_FRAME_COPY:
        route_on_copy(b, from_id, buf, len);
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
    /* What was forwarded under the old view may still be taken by its owner: new messages wait
     * until every answer is in. One whose owner is gone gets ROUTE_ORPHAN_MS to answer. */
    if (r->npending > 0) r->holding = true;
    r->retry_at_ms = 0;
    uint64_t give_up = uv_now(b->loop) + ROUTE_ORPHAN_MS;
    size_t bucket = 0;
    struct htab_node *cur = NULL, *node;
    while ((node = htab_next(&r->pending, &bucket, &cur)) != NULL) {
        struct route_pend *p = (struct route_pend *)node;
        if (p->give_up_ms || route_node_live(b, p->owner)) continue;
        p->give_up_ms = give_up;
        r->norphans++;
    }
    /* Not flushed here but at the next tick: this event can come in the middle of an applied
     * batch (a first NODE_UP applied, the others not yet), a ring no node routes by. */
    route_timer_update(r);
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
    if (rc < 0 || ss.node_id != x->node || !dur_will_due_at_node_down(&ss, w)) return 0;
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
        /* Forwarded as a confirmed message whatever its QoS: the other nodes apply this
         * NODE_DOWN a little later than the leader, and an owner that has not yet refuses it
         * until it has (it is routed again, not lost). */
        struct dur_wait *w = dur_wait_new(b, NULL);
        if (w) {
            route_start(b, owner, x.ids[i], m, w);
            dur_wait_release(w);
        } else if (owner) {
            route_forward(b, owner, x.ids[i], m, NULL);
        } else {
            route_owner_publish(b, NULL, x.ids[i], m, true, NULL, NULL);
        }
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
