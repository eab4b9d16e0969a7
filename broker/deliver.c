/* Delivery of published messages to subscribers (see deliver.h). */
#include "deliver.h"

#include <errno.h>
#include <string.h>

#include "acl.h"
#include "config.h"
#include "conn.h"
#include "core.h"
#include "durable.h"
#include "msg.h"
#include "retain.h"
#include "route.h"
#include "session.h"
#include "subs.h"

int deliver_send(struct conn *c, struct msg *m, uint8_t qos, bool dup, bool retain, uint16_t pid,
                 const uint32_t *sub_ids, uint32_t nsub_ids)
{
    struct broker *b = c->b;
    uint64_t now = broker_wall_ms();
    if (msg_is_expired(m, now)) return -ETIME; /* [MQTT-3.3.2-5] */
    struct msg_send s = {
        .version = c->version,
        .qos = qos,
        .dup = dup && qos > 0,
        .retain = retain,
        .packet_id = qos > 0 ? pid : 0,
        .now_ms = now,
    };
    if (c->version == MQTT_V5) {
        s.sub_id_count = nsub_ids;
        s.sub_ids = sub_ids;
        struct alias_out *ao = conn_alias_out(c);
        if (ao && alias_out_get(ao, m->topic, m->topic_len, &s.topic_alias, &s.alias_known) < 0)
            s.topic_alias = 0;
    }
    if (c->max_packet_out) {
        size_t wire = msg_wire_size(m, &s);
        if (wire == 0 || wire > c->max_packet_out) {
            /* [MQTT-3.1.2-25]: never send more than the client accepts; drop it. */
            if (s.topic_alias && !s.alias_known) alias_out_forget(conn_alias_out(c), s.topic_alias);
            return -EMSGSIZE;
        }
    }
    uint8_t head[MSG_HEAD_SIZE(8)];
    struct msg_iov iov[MSG_IOV_MAX];
    unsigned n = 0;
    size_t wire_len = 0;
    if (s.sub_id_count > 8) s.sub_id_count = 8;
    int rc = msg_prepare(m, &s, head, sizeof head, iov, &n, &wire_len);
    if (rc < 0) {
        if (s.topic_alias && !s.alias_known) alias_out_forget(conn_alias_out(c), s.topic_alias);
        return rc;
    }
    for (unsigned i = 0; i < n; i++) {
        if (iov[i].base >= head && iov[i].base < head + sizeof head)
            rc = conn_write(c, iov[i].base, iov[i].len);
        else
            rc = conn_write_shared(c, m, iov[i].base, iov[i].len);
        if (rc < 0) return rc;
    }
    b->stats.msgs_sent++;
    b->stats.pub_sent++;
    b->stats.pub_bytes_sent += m->payload_len;
    return 0;
}

/* The other live node s is connected to per the committed state, or 0 (several nodes only). */
static uint64_t deliver_remote_node(struct broker *b, const struct session *s)
{
    if (!b->route || s->conn || !s->node_id || s->node_id == cluster_node_id(b->cluster)) return 0;
    return route_node_live(b, s->node_id) ? s->node_id : 0;
}

/* Shared groups pick among online members: connected here, or, while the owner decides a
 * message's deliveries, connected on another live node (a persistent member connected nowhere
 * is not picked, on one node or several). */
static bool deliver_able(void *ctx, void *owner)
{
    struct broker *b = ctx;
    const struct session *s = owner;
    if (s->conn) return s->conn->state == CONN_ACTIVE;
    return route_picks_cluster_wide(b) && deliver_remote_node(b, s) != 0;
}

/* A member connected to this node. */
static bool deliver_able_here(void *ctx, void *owner)
{
    (void)ctx;
    const struct session *s = owner;
    return s->conn != NULL && s->conn->state == CONN_ACTIVE;
}

/* A durable push for an offline persistent session; the applied push queues it. */
static void deliver_offline(struct broker *b, struct session *s, struct msg *m, uint8_t qos,
                            struct dur_wait **wp, dur_done_cb done)
{
    const struct config *cfg = b->cfg;
    uint64_t n = (uint64_t)s->queue_count + s->pending_pushes;
    if ((cfg->max_queued_messages && n >= cfg->max_queued_messages) ||
        (cfg->max_queued_bytes && s->queue_bytes + m->payload_len > cfg->max_queued_bytes)) {
        b->stats.pub_dropped++;
        return;
    }
    (void)qos;
    struct dur_wait *w = NULL;
    if (wp) {
        if (!*wp) *wp = dur_wait_new(b, done);
        w = *wp;
    }
    uint64_t msg_id = ++b->next_msg_id;
    int rc = dur_queue_push(b, s, m, msg_id, w ? dur_wait_cb : NULL, w ? dur_hold(w) : NULL);
    if (rc < 0) {
        if (w) dur_wait_fail(w, rc);
        b->stats.pub_dropped++;
        return;
    }
    s->pending_pushes++;
}

/* m's topic NUL-terminated for ACL checks, copied at the first need. */
struct deliver_topic {
    bool have;
    char text[65536];
};

/* One delivery to s of m, for subscriptions granting sub_qos (retain_as_published: any has
 * Retain As Published): the ACL's read check, the QoS, then online or durably queued. Returns
 * whether it went to s. */
static bool deliver_to(struct broker *b, struct session *s, struct msg *m, uint8_t sub_qos,
                       bool retain_as_published, const uint32_t *sub_ids, uint32_t nsub_ids,
                       struct deliver_topic *topic, struct dur_wait **wp, dur_done_cb done)
{
    const struct config *cfg = b->cfg;
    const struct acl *acl = broker_session_acl(b, s->lst);
    if (acl) {
        if (!topic->have) {
            memcpy(topic->text, m->topic, m->topic_len);
            topic->text[m->topic_len] = '\0';
            topic->have = true;
        }
        if (acl_check(acl, s->client_id, s->username, topic->text, ACL_READ) != 0) return false;
    }
    uint8_t qos = cfg->upgrade_outgoing_qos ? sub_qos : (m->qos < sub_qos ? m->qos : sub_qos);
    bool retain = retain_as_published ? m->retain : false;
    if (!s->conn && s->persistent && qos > 0)
        deliver_offline(b, s, m, qos, wp, done);
    else
        session_deliver(s, m, qos, retain, sub_ids, nsub_ids);
    return true;
}

size_t deliver_publish(struct broker *b, struct session *publisher, struct msg *m,
                       struct dur_wait **wp, dur_done_cb done)
{
    const struct subs_target *t = NULL;
    size_t count = 0;
    /* A copy whose owner chose the shared deliveries: the groups are left out here. */
    subs_able_cb able = route_groups_decided(b) ? subs_able_none : deliver_able;
    if (subs_collect(b->subs, m->topic, m->topic_len, publisher, able, b, &t, &count) < 0) return 0;
    if (count == 0) return 0;
    struct deliver_topic topic;
    topic.have = false;
    size_t sent = 0;
    /* subs_collect's results live until the next subs_ call: nothing below calls one. */
    for (size_t i = 0; i < count; i++) {
        struct session *s = t[i].owner;
        if (b->route && !s->conn) {
            /* Several nodes: a copy from the owner goes to this node's clients only; the owner
             * leaves a session connected on another live node to that node, and tells it which
             * member of a shared group it picked there. */
            if (route_local_only(b)) continue;
            uint64_t node = deliver_remote_node(b, s);
            if (node) {
                if (t[i].shared)
                    route_note_pick(b, node, s->client_id, s->client_id_len, t[i].filter,
                                    t[i].filter_len);
                else
                    route_note_target(b, node);
                sent++;
                continue;
            }
            if (!s->persistent) continue;
        }
        if (deliver_to(b, s, m, t[i].qos, t[i].retain_as_published, t[i].sub_ids, t[i].sub_id_count,
                       &topic, wp, done))
            sent++;
    }
    return sent;
}

int deliver_pick(struct broker *b, struct msg *m, const char *client_id, size_t client_id_len,
                 const char *filter, size_t filter_len)
{
    struct session *s = session_find(b, client_id, client_id_len);
    struct subs_info sub;
    if (!s || !deliver_able_here(b, s) || subs_find(b->subs, s, filter, filter_len, &sub) < 0) {
        /* Gone from this node since the owner picked it: another member connected here. */
        if (subs_group_pick(b->subs, filter, filter_len, deliver_able_here, b, &sub) < 0)
            return -ENOENT;
        s = sub.owner;
    }
    uint32_t id = sub.sub_id;
    struct deliver_topic topic;
    topic.have = false;
    deliver_to(b, s, m, SUBS_OPT_QOS(sub.options), SUBS_OPT_RAP(sub.options), id ? &id : NULL,
               id ? 1 : 0, &topic, NULL, NULL);
    return 0;
}

struct deliver_retained_ctx {
    struct broker *b;
    struct session *s;
    uint8_t qos;
    uint32_t sub_id;
    uint64_t now;
};

static void deliver_retained_cb(void *ctx, const char *topic, size_t topic_len, void *msgp)
{
    struct deliver_retained_ctx *x = ctx;
    struct msg *m = msgp;
    (void)topic_len;
    if (msg_is_expired(m, x->now)) return;
    const struct acl *acl = broker_session_acl(x->b, x->s->lst);
    if (acl) {
        char t[65536];
        memcpy(t, topic, topic_len);
        t[topic_len] = '\0';
        if (acl_check(acl, x->s->client_id, x->s->username, t, ACL_READ) != 0) return;
    }
    uint8_t qos = x->b->cfg->upgrade_outgoing_qos ? x->qos : (m->qos < x->qos ? m->qos : x->qos);
    /* Retained messages sent for a new subscription carry RETAIN 1 [MQTT-3.3.1-9]. */
    session_deliver(x->s, m, qos, true, x->sub_id ? &x->sub_id : NULL, x->sub_id ? 1 : 0);
}

void deliver_retained(struct broker *b, struct session *s, const char *filter, size_t filter_len,
                      uint8_t options, uint32_t sub_id)
{
    struct mqtt_str group, f;
    if (mqtt_topic_share_split(filter, filter_len, &group, &f))
        return; /* no retained messages for shared subscriptions [MQTT-3.8.4-?] */
    struct deliver_retained_ctx x = {
        .b = b,
        .s = s,
        .qos = SUBS_OPT_QOS(options),
        .sub_id = sub_id,
        .now = broker_wall_ms(),
    };
    retain_match(b->retain, filter, filter_len, deliver_retained_cb, &x);
}
