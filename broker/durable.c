/* The broker's side of the replicated state (see durable.h): proposals, applied commands,
 * the start-up load. */
#include "durable.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conn.h"
#include "core.h"
#include "log.h"
#include "msg.h"
#include "retain.h"
#include "route.h"
#include "session.h"
#include "subs.h"

/* Several nodes: the least delay of a will loaded from storage or the log. */
#define DUR_CLUSTER_WILL_WAIT_MS 5000

/* ---- waits ---- */

struct dur_wait *dur_wait_new(struct broker *b, dur_done_cb done)
{
    struct dur_wait *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->b = b;
    w->done = done;
    w->pending = 1;
    return w;
}

static void dur_wait_drop(struct dur_wait *w)
{
    if (--w->pending > 0) return;
    if (w->done)
        w->done(w->b, w, w->status); /* frees w */
    else
        free(w);
}

void dur_wait_release(struct dur_wait *w)
{
    dur_wait_drop(w);
}

void dur_wait_cb(void *data, int status, uint64_t index)
{
    struct dur_wait *w = data;
    (void)index;
    if (status < 0 && w->status == 0) w->status = status;
    dur_wait_drop(w);
}

void dur_wait_fail(struct dur_wait *w, int status)
{
    if (w->status == 0) w->status = status;
    dur_wait_drop(w);
}

/* ---- proposals ---- */

/* Every proposal is counted until it completes, so that a stop commits what it proposed
 * (wills, session ends) before Raft closes, and a write failure can answer its waiters. */
struct dur_prop {
    struct broker *b;
    cluster_applied_cb cb; /* NULL once answered (a failure was reported early) */
    void *data;
    struct dur_prop *prev, *next; /* b->dur_props */
};

static void dur_prop_cb(void *data, int status, uint64_t index)
{
    struct dur_prop *p = data;
    struct broker *b = p->b;
    b->dur_inflight--;
    if (p->prev)
        p->prev->next = p->next;
    else
        b->dur_props = p->next;
    if (p->next) p->next->prev = p->prev;
    if (p->cb) p->cb(p->data, status, index);
    free(p);
    broker_maybe_finish_stop(b);
}

/* The state cannot be written: whoever waits for a proposal hears it failed now (the entry may
 * still be applied once writes recover; nothing was acknowledged for it). */
static void dur_fail_waiting(struct broker *b, int status)
{
    for (struct dur_prop *p = b->dur_props; p; p = p->next) {
        cluster_applied_cb cb = p->cb;
        if (!cb) continue;
        p->cb = NULL;
        cb(p->data, status, 0);
    }
}

int dur_propose(struct broker *b, const struct cluster_cmd *cmd, cluster_applied_cb cb, void *data)
{
    if (!b->cluster || b->closing_cluster) return CLUSTER_ESHUTDOWN;
    struct dur_prop *p = malloc(sizeof *p);
    if (!p) return -ENOMEM;
    p->b = b;
    p->cb = cb;
    p->data = data;
    p->prev = NULL;
    int rc = cluster_propose(b->cluster, cmd, dur_prop_cb, p);
    if (rc == 0) {
        b->dur_inflight++;
        p->next = b->dur_props;
        if (p->next) p->next->prev = p;
        b->dur_props = p;
        return 0;
    }
    free(p);
    if (rc == CLUSTER_ENOQUORUM) {
        /* A minority: said once until a leader is known again. */
        if (!b->noquorum_logged)
            log_at(LOG_TYPE_WARNING,
                   "No majority of the cluster is reachable: nothing that needs a commit is "
                   "accepted until it is.");
        b->noquorum_logged = true;
    } else if (rc != CLUSTER_ESHUTDOWN)
        log_at(LOG_TYPE_WARNING, "Durable %s refused: %s.", cluster_cmd_type_name(cmd->type),
               cluster_strerror(rc));
    return rc;
}

static struct store_str dur_str(const char *p, size_t len)
{
    return (struct store_str){.ptr = p, .len = len};
}

static void dur_store_message(const struct msg *m, struct store_message *out)
{
    out->topic = dur_str(m->topic, m->topic_len);
    out->payload = (struct store_blob){.ptr = m->payload, .len = m->payload_len};
    out->props = (struct store_blob){.ptr = m->props, .len = m->props_len};
    out->expires_at_ms = m->expires_at_ms;
    out->qos = m->qos;
    out->retain = m->retain;
}

int dur_session_open(struct broker *b, const struct session *s, bool clean_start,
                     cluster_applied_cb cb, void *data)
{
    struct cluster_cmd cmd = {.type = CLUSTER_CMD_SESSION_OPEN};
    cmd.session_open.client_id = dur_str(s->client_id, s->client_id_len);
    cmd.session_open.node_id = b->cluster ? cluster_node_id(b->cluster) : b->cfg->node_id;
    cmd.session_open.created_at_ms = broker_wall_ms();
    cmd.session_open.expiry_interval_s = s->expiry_s;
    cmd.session_open.protocol_version = s->version;
    cmd.session_open.flags = (uint8_t)((s->persistent ? STORE_SESSION_PERSISTENT : 0) |
                                       (clean_start ? STORE_SESSION_CLEAN_START : 0));
    return dur_propose(b, &cmd, cb, data);
}

int dur_session_client(struct broker *b, enum cluster_cmd_type type, const char *client_id,
                       size_t len)
{
    struct cluster_cmd cmd = {.type = type};
    cmd.client.client_id = dur_str(client_id, len);
    cmd.client.at_ms = broker_wall_ms();
    return dur_propose(b, &cmd, NULL, NULL);
}

int dur_subscribe(struct broker *b, const char *client_id, size_t client_len, const char *filter,
                  size_t filter_len, uint8_t options, uint32_t sub_id, cluster_applied_cb cb,
                  void *data)
{
    struct cluster_cmd cmd = {.type = CLUSTER_CMD_SUBSCRIBE};
    cmd.subscribe.client_id = dur_str(client_id, client_len);
    cmd.subscribe.filter = dur_str(filter, filter_len);
    cmd.subscribe.options = options;
    cmd.subscribe.subscription_id = sub_id;
    return dur_propose(b, &cmd, cb, data);
}

int dur_unsubscribe(struct broker *b, const char *client_id, size_t client_len, const char *filter,
                    size_t filter_len, cluster_applied_cb cb, void *data)
{
    struct cluster_cmd cmd = {.type = CLUSTER_CMD_UNSUBSCRIBE};
    cmd.unsubscribe.client_id = dur_str(client_id, client_len);
    cmd.unsubscribe.filter = dur_str(filter, filter_len);
    return dur_propose(b, &cmd, cb, data);
}

int dur_retain_set(struct broker *b, const struct msg *m, const char *publisher,
                   cluster_applied_cb cb, void *data)
{
    struct cluster_cmd cmd = {.type = CLUSTER_CMD_RETAIN_SET};
    dur_store_message(m, &cmd.retain_set.msg);
    cmd.retain_set.msg.retain = true;
    cmd.retain_set.publisher_client_id =
        dur_str(publisher ? publisher : "", publisher ? strlen(publisher) : 0);
    return dur_propose(b, &cmd, cb, data);
}

int dur_retain_clear(struct broker *b, const char *topic, size_t len, cluster_applied_cb cb,
                     void *data)
{
    struct cluster_cmd cmd = {.type = CLUSTER_CMD_RETAIN_CLEAR};
    cmd.retain_clear.topic = dur_str(topic, len);
    return dur_propose(b, &cmd, cb, data);
}

int dur_queue_push(struct broker *b, const struct session *s, const struct msg *m, uint64_t msg_id,
                   cluster_applied_cb cb, void *data)
{
    struct cluster_cmd cmd = {.type = CLUSTER_CMD_QUEUE_PUSH};
    cmd.queue_push.client_id = dur_str(s->client_id, s->client_id_len);
    cmd.queue_push.msg_id = msg_id;
    dur_store_message(m, &cmd.queue_push.msg);
    return dur_propose(b, &cmd, cb, data);
}

int dur_queue_ack(struct broker *b, const struct session *s, uint64_t msg_id)
{
    struct cluster_cmd cmd = {.type = CLUSTER_CMD_QUEUE_ACK};
    cmd.queue_ack.client_id = dur_str(s->client_id, s->client_id_len);
    cmd.queue_ack.msg_id = msg_id;
    return dur_propose(b, &cmd, NULL, NULL);
}

int dur_will_set(struct broker *b, const struct session *s)
{
    if (!s->will.m) return 0;
    struct cluster_cmd cmd = {.type = CLUSTER_CMD_WILL_SET};
    cmd.will_set.client_id = dur_str(s->client_id, s->client_id_len);
    dur_store_message(s->will.m, &cmd.will_set.msg);
    cmd.will_set.msg.expires_at_ms = s->will.expiry_s; /* the interval, for a will */
    cmd.will_set.delay_interval_s = s->will.delay_s;
    int rc = dur_propose(b, &cmd, NULL, NULL);
    if (rc == 0) ((struct session *)s)->will.durable = true;
    return rc;
}

int dur_will_clear(struct broker *b, const struct session *s)
{
    return dur_session_client(b, CLUSTER_CMD_WILL_CLEAR, s->client_id, s->client_id_len);
}

struct msg *dur_msg_from_store(const struct store_message *sm)
{
    struct msg_init in = {
        .topic = sm->topic.ptr,
        .topic_len = sm->topic.len,
        .payload = sm->payload.ptr,
        .payload_len = sm->payload.len,
        .qos = sm->qos,
        .retain = sm->retain,
        .props = sm->props.len ? sm->props.ptr : NULL,
        .props_len = sm->props.len,
        .expires_at_ms = sm->expires_at_ms,
    };
    struct msg *m = NULL;
    if (msg_new(&in, &m) < 0) return NULL;
    return m;
}

/* ---- applying commands to memory ---- */

static struct session *dur_session(struct broker *b, const struct store_str *id)
{
    return session_find(b, id->ptr, id->len);
}

/* An offline session as storage describes it (start-up, or a replayed open). */
static struct session *dur_session_offline(struct broker *b, const struct store_session *ss)
{
    struct session *s = session_find(b, ss->client_id.ptr, ss->client_id.len);
    if (!s) s = session_new(b, ss->client_id.ptr, ss->client_id.len);
    if (!s) return NULL;
    if (s->conn) return s;
    s->persistent = (ss->flags & STORE_SESSION_PERSISTENT) != 0;
    s->durable = true;
    s->node_id = ss->connected ? ss->node_id : 0;
    s->version = ss->protocol_version;
    s->expiry_s = ss->expiry_interval_s;
    if (s->version != MQTT_V5) {
        uint64_t e = b->cfg->persistent_client_expiration_s;
        s->expiry_s = e ? (uint32_t)(e > UINT32_MAX - 1 ? UINT32_MAX - 1 : e) : UINT32_MAX;
    }
    if (b->route && s->node_id && s->node_id != cluster_node_id(b->cluster)) {
        /* Connected on another node: its timers start when its close is applied. */
        wheel_remove(&b->wheel, &s->expiry_entry);
        return s;
    }
    if (s->expiry_s != UINT32_MAX) {
        /* Expiry runs from the disconnect; a session connected when the node stopped counts
         * as disconnected now. */
        uint64_t wall = broker_wall_ms();
        uint64_t since = ss->connected || !ss->disconnected_at_ms ? wall : ss->disconnected_at_ms;
        uint64_t end = since + (uint64_t)s->expiry_s * 1000;
        uint64_t left = end > wall ? end - wall : 0;
        wheel_add(&b->wheel, &s->expiry_entry, uv_now(b->loop) + left);
    }
    return s;
}

static void dur_purge_memory(struct broker *b, struct session *s)
{
    subs_remove_owner(b->subs, s);
    /* Queued durable messages go; in-flight ones finish with the connection. */
    struct session_out **pp = &s->queue;
    s->queue_tail = NULL;
    while (*pp) {
        struct session_out *o = *pp;
        if (o->msg_id) {
            *pp = o->next;
            s->queue_count--;
            s->queue_bytes -= o->m->payload_len;
            msg_unref(o->m);
            free(o);
        } else {
            s->queue_tail = o;
            pp = &o->next;
        }
    }
}

static void dur_apply_will(struct broker *b, const struct store_will *sw)
{
    struct session *s = session_find(b, sw->client_id.ptr, sw->client_id.len);
    if (s && (s->conn || s->will.m)) return;
    /* Several nodes: the will of a client connected elsewhere is that node's (or, when it
     * dies, the leader's, from storage). */
    if (b->route && s && s->node_id && s->node_id != cluster_node_id(b->cluster)) return;
    if (!s) {
        /* A will whose session is not persistent: it fires after its delay. */
        s = session_new(b, sw->client_id.ptr, sw->client_id.len);
        if (!s) return;
        s->persistent = false;
        s->expiry_s = 0;
        uint64_t end_ms = (uint64_t)sw->delay_interval_s * 1000;
        if (b->route && end_ms < DUR_CLUSTER_WILL_WAIT_MS) end_ms = DUR_CLUSTER_WILL_WAIT_MS;
        wheel_add(&b->wheel, &s->expiry_entry, uv_now(b->loop) + end_ms);
    }
    struct store_message sm = sw->msg;
    sm.expires_at_ms = 0;
    struct msg *m = dur_msg_from_store(&sm);
    if (!m) return;
    session_set_will(s, m, sw->delay_interval_s, (uint32_t)sw->msg.expires_at_ms);
    s->will.durable = true;
    uint64_t delay_ms = (uint64_t)sw->delay_interval_s * 1000;
    /* Several nodes: a will read back from the log (this node restarting) waits until the
     * node caught up: the leader may have published and cleared it while this node was down. */
    if (b->route && delay_ms < DUR_CLUSTER_WILL_WAIT_MS) delay_ms = DUR_CLUSTER_WILL_WAIT_MS;
    wheel_add(&b->wheel, &s->will_entry, uv_now(b->loop) + delay_ms);
}

static void dur_apply_queued(struct broker *b, const struct store_queued *q, bool runtime)
{
    struct session *s = session_find(b, q->client_id.ptr, q->client_id.len);
    if (q->msg_id > b->next_msg_id) b->next_msg_id = q->msg_id;
    if (!s) return;
    if (runtime && s->pending_pushes > 0) s->pending_pushes--;
    struct msg *m = dur_msg_from_store(&q->msg);
    if (!m) return;
    session_queue_durable(s, m, q->msg_id);
}

/* Several nodes: s is connected here and its last committed open is this node's. */
static bool dur_lives_here(struct broker *b, const struct session *s)
{
    return b->route && s->conn && s->conn->state == CONN_ACTIVE &&
           s->node_id == cluster_node_id(b->cluster);
}

static void dur_resubscribe_cb(void *ctx, const struct subs_info *sub)
{
    struct session *s = ctx;
    dur_subscribe(s->b, s->client_id, s->client_id_len, sub->filter, sub->filter_len, sub->options,
                  sub->sub_id, NULL, NULL);
}

/* A node that had not heard of the session's move here (stopped, cut off) ended or closed it
 * after the move: the session's open and subscriptions are committed again from here. */
static void dur_reassert(struct broker *b, struct session *s)
{
    log_at(LOG_TYPE_NOTICE, "Client %s: session ended by a stale node; committing it again.",
           s->client_id);
    if (dur_session_open(b, s, false, NULL, NULL) < 0) return;
    subs_foreach_owner(b->subs, s, dur_resubscribe_cb, s);
    if (s->will.m) dur_will_set(b, s);
}

/* A SESSION_OPEN committed by another node: a connection of that client here is taken over
 * (v5 0x8E); the session stays known here as connected there. */
static void dur_apply_remote_open(struct broker *b, struct session *s,
                                  const struct store_session *so)
{
    if (s && s->conn) {
        /* A CONNECT of this client in progress here: its own open follows and wins. */
        if (s->conn->state != CONN_ACTIVE) return;
        s->node_id = so->node_id;
        /* Clean start there ends the session here: its will is due (session_detach). */
        if (so->flags & STORE_SESSION_CLEAN_START) s->persistent = false;
        conn_close(s->conn, MQTT_RC_SESSION_TAKEN_OVER, "session taken over on another node");
        s = dur_session(b, &so->client_id);
        if (s && s->conn) return;
    }
    if (s && s->will.m) {
        /* An offline session's will kept here (dur_arm_offline): the new connection came
         * before its delay elapsed, or, with clean start, the node that takes the client
         * publishes it as the session ends there. */
        s->will.durable = false;
        session_set_will(s, NULL, 0, 0);
    }
    s = dur_session_offline(b, so);
    if (!s) return;
    s->node_id = so->node_id;
    wheel_remove(&b->wheel, &s->expiry_entry);
    if (so->flags & STORE_SESSION_CLEAN_START) dur_purge_memory(b, s);
}

/* Several nodes: a persistent session of another node's client was closed (the client left
 * that node, or the leader closed the sessions of a node declared down). Every node keeps its
 * expiry and its will's delay, from the instant of the close, so that the cluster still
 * expires the session and publishes the will if that node never comes back
 * (dur_session_due_here picks the node that acts). The node the client left armed its own. */
static void dur_arm_offline(struct broker *b, struct session *s, uint64_t at_ms)
{
    struct store_txn *t = NULL;
    if (store_read_begin(cluster_storage(b->cluster), &t) < 0) return;
    struct store_session ss;
    if (store_session_get(t, s->client_id, s->client_id_len, &ss) < 0 || ss.connected ||
        ss.node_id == cluster_node_id(b->cluster) || !(ss.flags & STORE_SESSION_PERSISTENT)) {
        store_txn_end(t);
        return;
    }
    uint64_t wall = broker_wall_ms(), now = uv_now(b->loop);
    if (s->expiry_s != UINT32_MAX) {
        uint64_t end = at_ms + (uint64_t)s->expiry_s * 1000;
        wheel_add(&b->wheel, &s->expiry_entry, now + (end > wall ? end - wall : 0));
    }
    struct store_will sw;
    if (!s->will.m && store_will_get(t, s->client_id, s->client_id_len, &sw) == 0) {
        struct store_message sm = sw.msg;
        sm.expires_at_ms = 0;
        struct msg *m = dur_msg_from_store(&sm);
        if (m) {
            session_set_will(s, m, sw.delay_interval_s, (uint32_t)sw.msg.expires_at_ms);
            s->will.durable = true;
            uint64_t end = at_ms + (uint64_t)sw.delay_interval_s * 1000;
            wheel_add(&b->wheel, &s->will_entry, now + (end > wall ? end - wall : 0));
        }
    }
    store_txn_end(t);
}

bool dur_session_due_here(struct broker *b, const struct session *s)
{
    if (!b->route || s->conn) return true;
    struct store_txn *t = NULL;
    if (store_read_begin(cluster_storage(b->cluster), &t) < 0) return false;
    struct store_session ss;
    uint64_t self = cluster_node_id(b->cluster);
    bool due = true;
    if (store_session_get(t, s->client_id, s->client_id_len, &ss) == 0 && ss.node_id != self)
        due = !ss.connected && !route_node_live(b, ss.node_id) && cluster_is_leader(b->cluster);
    store_txn_end(t);
    return due;
}

bool dur_will_due_at_node_down(const struct store_session *ss, const struct store_will *w)
{
    return !(ss->flags & STORE_SESSION_PERSISTENT) || ss->expiry_interval_s == 0 ||
           w->delay_interval_s == 0;
}

void dur_applied(void *ctx, const struct cluster_cmd *cmd, uint64_t index)
{
    struct broker *b = ctx;
    struct session *s;
    (void)index;
    switch (cmd->type) {
    case CLUSTER_CMD_SESSION_OPEN:
        s = dur_session(b, &cmd->session_open.client_id);
        if (b->route && cmd->session_open.node_id != cluster_node_id(b->cluster)) {
            dur_apply_remote_open(b, s, &cmd->session_open);
            break;
        }
        if (s && s->conn) s->node_id = cmd->session_open.node_id;
        if (!s || !s->conn) {
            s = dur_session_offline(b, &cmd->session_open);
            if (s && (cmd->session_open.flags & STORE_SESSION_CLEAN_START)) dur_purge_memory(b, s);
        }
        break;
    case CLUSTER_CMD_SESSION_CLOSE:
        s = dur_session(b, &cmd->client.client_id);
        if (s && !s->conn) {
            s->node_id = 0;
            if (b->route && s->persistent) dur_arm_offline(b, s, cmd->client.at_ms);
        }
        if (s && dur_lives_here(b, s)) dur_reassert(b, s);
        break;
    case CLUSTER_CMD_SESSION_EXPIRE:
    case CLUSTER_CMD_SESSION_DELETE:
        s = dur_session(b, &cmd->client.client_id);
        if (s && dur_lives_here(b, s)) {
            dur_reassert(b, s);
            break;
        }
        if (s) {
            dur_purge_memory(b, s);
            if (!s->conn && s->durable && !s->will.m) session_free(s);
        }
        break;
    case CLUSTER_CMD_SUBSCRIBE:
        s = dur_session(b, &cmd->subscribe.client_id);
        if (s) {
            subs_add(b->subs, s, cmd->subscribe.filter.ptr, cmd->subscribe.filter.len,
                     cmd->subscribe.options, cmd->subscribe.subscription_id, NULL);
            s->committed_subs = true;
        }
        break;
    case CLUSTER_CMD_UNSUBSCRIBE:
        s = dur_session(b, &cmd->unsubscribe.client_id);
        if (s) subs_remove(b->subs, s, cmd->unsubscribe.filter.ptr, cmd->unsubscribe.filter.len);
        break;
    case CLUSTER_CMD_RETAIN_SET: {
        struct msg *m = dur_msg_from_store(&cmd->retain_set.msg);
        if (m) retain_set(b->retain, m->topic, m->topic_len, m);
        break;
    }
    case CLUSTER_CMD_RETAIN_CLEAR:
        retain_clear(b->retain, cmd->retain_clear.topic.ptr, cmd->retain_clear.topic.len);
        break;
    case CLUSTER_CMD_QUEUE_PUSH:
        dur_apply_queued(b, &cmd->queue_push, true);
        break;
    case CLUSTER_CMD_QUEUE_ACK:
        s = dur_session(b, &cmd->queue_ack.client_id);
        if (s) {
            /* Replayed acks remove what the load found; live acks left the queue already. */
            struct session_out **pp = &s->queue, *prev = NULL;
            while (*pp) {
                struct session_out *o = *pp;
                if (o->msg_id == cmd->queue_ack.msg_id) {
                    *pp = o->next;
                    if (s->queue_tail == o) s->queue_tail = prev;
                    s->queue_count--;
                    s->queue_bytes -= o->m->payload_len;
                    msg_unref(o->m);
                    free(o);
                    break;
                }
                prev = o;
                pp = &o->next;
            }
        }
        break;
    case CLUSTER_CMD_WILL_SET:
        dur_apply_will(b, &cmd->will_set);
        break;
    case CLUSTER_CMD_WILL_CLEAR:
        s = dur_session(b, &cmd->client.client_id);
        if (s && !s->conn && s->will.m && s->will.durable) {
            s->will.durable = false;
            session_set_will(s, NULL, 0, 0);
        }
        break;
    default:
        break;
    }
}

void dur_failed(void *ctx, int rc)
{
    struct broker *b = ctx;
    if (rc == 0) {
        if (b->cluster_failed) log_at(LOG_TYPE_NOTICE, "The durable state can be written again.");
        b->cluster_failed = false;
        return;
    }
    b->cluster_failed = true;
    log_at(LOG_TYPE_ERROR,
           "Error: the durable state cannot be written (%s%s): durable work is refused until it "
           "can.",
           cluster_strerror(rc), rc == -ENOSPC || rc == -EIO ? "; disk full or map full?" : "");
    dur_fail_waiting(b, CLUSTER_EFAILED);
}

/* Subscriptions stored for clients without a session (clean sessions of a previous run). */
static int dur_orphan_cb(void *ctx, const struct store_subscription *ss)
{
    struct broker *b = ctx;
    static char last[65536];
    static size_t last_len = (size_t)-1;
    if (ss->client_id.len == last_len && memcmp(last, ss->client_id.ptr, last_len) == 0) return 0;
    if (session_find(b, ss->client_id.ptr, ss->client_id.len)) return 0;
    memcpy(last, ss->client_id.ptr, ss->client_id.len);
    last_len = ss->client_id.len;
    dur_session_client(b, CLUSTER_CMD_SESSION_DELETE, ss->client_id.ptr, ss->client_id.len);
    return 0;
}

void dur_leader_changed(void *ctx, uint64_t leader_id, bool is_self)
{
    struct broker *b = ctx;
    static bool swept;
    if (leader_id != 0) {
        if (b->noquorum_logged) log_at(LOG_TYPE_NOTICE, "A cluster leader is known again.");
        b->noquorum_logged = false;
        broker_ready(b);
    }
    if (!is_self || swept) return;
    swept = true;
    struct store_txn *t = NULL;
    if (store_read_begin(cluster_storage(b->cluster), &t) == 0) {
        store_sub_foreach(t, dur_orphan_cb, b);
        store_txn_end(t);
    }
}

void dur_log(void *ctx, enum cluster_log_level level, const char *line)
{
    (void)ctx;
    unsigned type = LOG_TYPE_DEBUG;
    switch (level) {
    case CLUSTER_LOG_DEBUG:
        type = LOG_TYPE_DEBUG;
        break;
    case CLUSTER_LOG_INFO:
        type = LOG_TYPE_INFORMATION;
        break;
    case CLUSTER_LOG_NOTICE:
        type = LOG_TYPE_NOTICE;
        break;
    case CLUSTER_LOG_WARNING:
        type = LOG_TYPE_WARNING;
        break;
    case CLUSTER_LOG_ERR:
        type = LOG_TYPE_ERROR;
        break;
    }
    log_at(type, "%s", line);
}

/* ---- start-up load ---- */

static int dur_load_session(void *ctx, const struct store_session *ss)
{
    struct broker *b = ctx;
    if (ss->flags & STORE_SESSION_PERSISTENT)
        dur_session_offline(b, ss);
    else if (b->route && ss->connected && ss->node_id != cluster_node_id(b->cluster))
        dur_session_offline(b, ss); /* a clean session connected on another node */
    return 0;
}

static int dur_load_sub(void *ctx, const struct store_subscription *ss)
{
    struct broker *b = ctx;
    struct session *s = session_find(b, ss->client_id.ptr, ss->client_id.len);
    if (s) {
        subs_add(b->subs, s, ss->filter.ptr, ss->filter.len, ss->options, ss->subscription_id,
                 NULL);
        s->committed_subs = true;
    }
    return 0;
}

static int dur_load_retained(void *ctx, const struct store_retained *r)
{
    struct broker *b = ctx;
    struct msg *m = dur_msg_from_store(&r->msg);
    if (m) retain_set(b->retain, m->topic, m->topic_len, m);
    return 0;
}

static int dur_load_queued(void *ctx, const struct store_queued *q)
{
    dur_apply_queued(ctx, q, false);
    return 0;
}

static int dur_load_will(void *ctx, const struct store_will *w)
{
    dur_apply_will(ctx, w);
    return 0;
}

int dur_load(struct broker *b)
{
    struct store_txn *t = NULL;
    int rc = store_read_begin(cluster_storage(b->cluster), &t);
    if (rc < 0) return rc;
    rc = store_session_foreach(t, dur_load_session, b);
    if (rc == 0) rc = store_sub_foreach(t, dur_load_sub, b);
    if (rc == 0) rc = store_retain_foreach(t, dur_load_retained, b);
    if (rc == 0) rc = store_queue_foreach(t, dur_load_queued, b);
    if (rc == 0) rc = store_will_foreach(t, dur_load_will, b);
    store_txn_end(t);
    /* Message ids stay unique across restarts. */
    uint64_t floor = broker_wall_ms() * 1000;
    if (b->next_msg_id < floor) b->next_msg_id = floor;
    return rc;
}

/* ---- a snapshot installed while running ---- */

/* A session connected to this node when the snapshot came: kept, and reconciled with what the
 * snapshot holds for it. */
struct dur_kept {
    struct session *s;
    bool seen;      /* the snapshot holds a session record for it */
    bool connected; /* that record's */
    uint64_t node_id;
    uint8_t flags;
    uint8_t version;
    uint32_t expiry_s;
    bool reassert; /* it lives here and the snapshot ended it: committed again from memory */
};

struct dur_restore {
    struct broker *b;
    struct dur_kept *kept; /* by session pointer */
    size_t nkept;
};

static int dur_kept_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct dur_kept *)a)->s;
    uintptr_t y = (uintptr_t)((const struct dur_kept *)b)->s;
    return x < y ? -1 : x > y;
}

static struct dur_kept *dur_kept_find(const struct dur_restore *x, const struct session *s)
{
    if (!s || !x->nkept) return NULL;
    struct dur_kept key = {.s = (struct session *)s};
    return bsearch(&key, x->kept, x->nkept, sizeof *x->kept, dur_kept_cmp);
}

static int dur_restore_session(void *ctx, const struct store_session *ss)
{
    struct dur_restore *x = ctx;
    struct dur_kept *k = dur_kept_find(x, session_find(x->b, ss->client_id.ptr, ss->client_id.len));
    if (!k) return dur_load_session(x->b, ss);
    k->seen = true;
    k->connected = ss->connected;
    k->node_id = ss->node_id;
    k->flags = ss->flags;
    k->version = ss->protocol_version;
    k->expiry_s = ss->expiry_interval_s;
    return 0;
}

static int dur_restore_sub(void *ctx, const struct store_subscription *ss)
{
    struct dur_restore *x = ctx;
    struct dur_kept *k = dur_kept_find(x, session_find(x->b, ss->client_id.ptr, ss->client_id.len));
    if (k && k->reassert) return 0;
    return dur_load_sub(x->b, ss);
}

/* Whether s holds the durable message msg_id, queued or in flight. */
static bool dur_has_msg(const struct session *s, uint64_t msg_id)
{
    for (const struct session_out *o = s->inflight; o; o = o->next)
        if (o->msg_id == msg_id) return true;
    for (const struct session_out *o = s->queue; o; o = o->next)
        if (o->msg_id == msg_id) return true;
    return false;
}

static int dur_restore_queued(void *ctx, const struct store_queued *q)
{
    struct dur_restore *x = ctx;
    struct session *s = session_find(x->b, q->client_id.ptr, q->client_id.len);
    if (dur_kept_find(x, s) && dur_has_msg(s, q->msg_id)) {
        if (q->msg_id > x->b->next_msg_id) x->b->next_msg_id = q->msg_id;
        return 0;
    }
    dur_apply_queued(x->b, q, false);
    return 0;
}

/* The state was replaced by a snapshot (see cluster.h): every index the start-up load builds
 * is rebuilt from storage, except for sessions connected to this node, which keep their
 * connection and what is in flight, and are reconciled with the snapshot (see DESIGN.md). */
void dur_restored(void *ctx, uint64_t index)
{
    struct broker *b = ctx;
    struct dur_restore x = {.b = b};
    size_t total = 0, nfree = 0;
    struct session **drop = NULL;
    size_t bucket = 0;
    struct htab_node *cur = NULL, *n;
    while (htab_next(&b->sessions, &bucket, &cur))
        total++;
    if (total) {
        drop = malloc(total * sizeof *drop);
        x.kept = calloc(total, sizeof *x.kept);
        if (!drop || !x.kept) {
            free(drop);
            free(x.kept);
            log_at(LOG_TYPE_ERROR,
                   "Error: out of memory reloading the state replaced by a snapshot at index "
                   "%llu: restart this node.",
                   (unsigned long long)index);
            return;
        }
    }
    bucket = 0;
    cur = NULL;
    while ((n = htab_next(&b->sessions, &bucket, &cur)) != NULL) {
        struct session *s = (struct session *)n;
        if (s->conn)
            x.kept[x.nkept++].s = s;
        else
            drop[nfree++] = s;
    }
    /* Sessions not connected here (offline ones, other nodes' clients, pending wills) go with
     * their subscriptions, queues and wills, and come back as the snapshot has them. Nothing
     * is proposed for them. */
    for (size_t i = 0; i < nfree; i++) {
        drop[i]->will.durable = false;
        session_free(drop[i]);
    }
    free(drop);
    if (x.nkept) qsort(x.kept, x.nkept, sizeof *x.kept, dur_kept_cmp);
    size_t cleared = retain_clear_all(b->retain, "$SYS", 4);

    struct store_txn *t = NULL;
    int rc = store_read_begin(cluster_storage(b->cluster), &t);
    if (rc == 0) rc = store_session_foreach(t, dur_restore_session, &x);
    if (rc == 0) {
        for (size_t i = 0; i < x.nkept; i++) {
            struct dur_kept *k = &x.kept[i];
            /* Its subscriptions are the snapshot's: one acknowledged here was committed at or
             * before the snapshot's index (then the snapshot holds it unless a later committed
             * command removed it) or after it (then its applied event follows). A session
             * that lives here and that the snapshot ended (a stale node) keeps its own, and
             * commits them again below, as dur_applied does for such an end. */
            k->reassert = dur_lives_here(b, k->s) && (!k->seen || !k->connected);
            if (!k->reassert) subs_remove_owner(b->subs, k->s);
            /* Pushes counted before the snapshot may never be applied here. */
            k->s->pending_pushes = 0;
        }
        rc = store_sub_foreach(t, dur_restore_sub, &x);
    }
    if (rc == 0) rc = store_retain_foreach(t, dur_load_retained, b);
    if (rc == 0) rc = store_queue_foreach(t, dur_restore_queued, &x);
    if (rc == 0) rc = store_will_foreach(t, dur_load_will, b);
    if (t) store_txn_end(t);
    if (rc < 0) {
        log_at(LOG_TYPE_ERROR,
               "Error: cannot reload the state replaced by a snapshot at index %llu (%s): "
               "restart this node.",
               (unsigned long long)index, cluster_strerror(rc));
        free(x.kept);
        return;
    }
    /* Connected sessions the snapshot moved or ended, as the applied commands would have. */
    size_t reasserted = 0, taken = 0;
    for (size_t i = 0; i < x.nkept; i++) {
        struct dur_kept *k = &x.kept[i];
        struct session *s = k->s;
        if (k->reassert) {
            dur_reassert(b, s);
            reasserted++;
        } else if (b->route && k->seen && k->connected && k->node_id &&
                   k->node_id != cluster_node_id(b->cluster) && dur_lives_here(b, s)) {
            /* Without the clean-start flag: the subscriptions loaded are those after it. */
            struct store_session so = {
                .client_id = dur_str(s->client_id, s->client_id_len),
                .node_id = k->node_id,
                .expiry_interval_s = k->expiry_s,
                .protocol_version = k->version,
                .flags = (uint8_t)(k->flags & ~STORE_SESSION_CLEAN_START),
                .connected = true,
            };
            dur_apply_remote_open(b, s, &so);
            taken++;
        }
    }
    free(x.kept);
    log_at(LOG_TYPE_NOTICE,
           "State replaced by a snapshot at index %llu: reloaded (%zu sessions, %zu "
           "subscriptions, %zu retained messages; %zu retained messages dropped; %zu connected "
           "sessions kept, %zu committed again, %zu taken over elsewhere).",
           (unsigned long long)index, b->sessions.count, subs_count(b->subs),
           retain_count(b->retain), cleared, x.nkept, reasserted, taken);
}
