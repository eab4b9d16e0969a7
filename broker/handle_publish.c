/* PUBLISH from a client: topic aliases in, limits (max_qos, retain_available, our Receive
 * Maximum), payload format check, ACL, QoS 2 duplicate detection, retained set/clear, delivery,
 * and the acknowledgement (after the commit when the message had to become durable). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "config.h"
#include "conn.h"
#include "core.h"
#include "deliver.h"
#include "durable.h"
#include "handle.h"
#include "listener.h"
#include "log.h"
#include "msg.h"
#include "route.h"
#include "session.h"

/* The reason to acknowledge with for a durable failure. */
static uint8_t publish_failure_reason(int status)
{
    return status == -ENOSPC || status == CLUSTER_EFAILED ? MQTT_RC_QUOTA_EXCEEDED
                                                          : MQTT_RC_UNSPECIFIED_ERROR;
}

static void publish_acked(struct conn *c, uint8_t qos, uint16_t pid, uint8_t reason,
                          uint64_t reply_seq)
{
    struct mqtt_packet pkt = {.type = qos == 1 ? MQTT_PUBACK : MQTT_PUBREC};
    pkt.u.ack.packet_id = pid;
    pkt.u.ack.reason = c->version == MQTT_V5 ? reason : 0;
    conn_reason_string(c, &pkt, pkt.u.ack.reason, NULL);
    if (reply_seq)
        conn_reply_finish(c, reply_seq, &pkt);
    else
        conn_send_ack(c, pkt.type, pid, pkt.u.ack.reason);
}

/* Every durable part of a publish committed (or failed): the acknowledgement leaves. */
static void publish_done_cb(struct broker *b, struct dur_wait *w, int status)
{
    struct conn *c = conn_find(b, w->conn_id);
    if (c) {
        if (w->reply_seq && w->qos == 1 && c->inflight_in > 0) c->inflight_in--;
        if (status < 0 && (c->version != MQTT_V5 || b->route)) {
            /* 3.x cannot say it failed, and on several nodes a failure is not acknowledged
             * at all (the owner may have applied it): the client retries after reconnecting. */
            if (w->qos == 2 && c->sess) session_qos2_in_remove(c->sess, w->pid);
            conn_reply_finish(c, w->reply_seq, NULL);
            conn_close(c, MQTT_RC_UNSPECIFIED_ERROR, "message could not be stored");
        } else {
            uint8_t reason = status < 0 ? publish_failure_reason(status) : (uint8_t)w->u32;
            if (status < 0 && w->qos == 2 && c->sess) session_qos2_in_remove(c->sess, w->pid);
            publish_acked(c, w->qos, w->pid, reason, w->reply_seq);
        }
    }
    free(w);
}

static void publish_wait(struct conn *c, const struct mqtt_publish *p, struct dur_wait *w,
                         uint8_t reason);

void handle_publish(struct conn *c, const struct mqtt_packet *pkt)
{
    struct broker *b = c->b;
    const struct config *cfg = b->cfg;
    struct session *s = c->sess;
    const struct mqtt_publish *p = &pkt->u.publish;
    const char *topic = p->topic.ptr;
    size_t topic_len = p->topic.len;

    b->stats.pub_received++;
    b->stats.pub_bytes_received += p->payload_len;

    if (c->version == MQTT_V5 && (pkt->props.present & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS))) {
        uint16_t alias = pkt->props.topic_alias;
        uint16_t max = c->lst->cfg->max_topic_alias; /* as announced in CONNACK */
        struct conn_ext *e;
        if (alias == 0 || alias > max) {
            conn_close(c, MQTT_RC_TOPIC_ALIAS_INVALID,
                       "topic alias out of range"); /* [MQTT-3.3.2-9] */
            return;
        }
        if (!(e = conn_ext(c))) {
            conn_close(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
            return;
        }
        if (e->alias_in.max == 0) alias_in_init(&e->alias_in, max);
        if (topic_len == 0) {
            if (alias_in_get(&e->alias_in, alias, &topic, &topic_len) < 0) {
                conn_close(c, MQTT_RC_PROTOCOL_ERROR, "unknown topic alias");
                return;
            }
        } else if (alias_in_set(&e->alias_in, alias, topic, topic_len) < 0) {
            conn_close(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
            return;
        }
    }
    if (topic_len == 0) {
        conn_close(c, MQTT_RC_PROTOCOL_ERROR, "empty topic"); /* [MQTT-3.3.2-1] */
        return;
    }
    if (p->qos > c->lst->cfg->max_qos) {
        conn_close(c, MQTT_RC_QOS_NOT_SUPPORTED, "QoS above max_qos"); /* [MQTT-3.2.2-11] */
        return;
    }
    if (p->retain && !cfg->retain_available) {
        conn_close(c, MQTT_RC_RETAIN_NOT_SUPPORTED, "retain not available"); /* [MQTT-3.2.2-14] */
        return;
    }
    if (p->qos == 2 && session_qos2_in_has(s, p->packet_id)) {
        /* A resent QoS 2 PUBLISH before PUBREL: acknowledge, do not deliver again. */
        conn_send_ack(c, MQTT_PUBREC, p->packet_id, 0);
        return;
    }
    if (c->version == MQTT_V5 && p->qos > 0 &&
        s->qos2_in_count + c->inflight_in >= broker_receive_max(b)) {
        conn_close(c, MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED,
                   "receive maximum exceeded"); /* [MQTT-3.3.4-9] */
        return;
    }
    if (c->version == MQTT_V5 && (pkt->props.present & MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT)) &&
        pkt->props.payload_format == 1 &&
        mqtt_utf8_check((const char *)p->payload, p->payload_len) != MQTT_ERR_NONE) {
        if (p->qos == 0)
            conn_close(c, MQTT_RC_PAYLOAD_FORMAT_INVALID, "payload is not UTF-8");
        else
            publish_acked(c, p->qos, p->packet_id, MQTT_RC_PAYLOAD_FORMAT_INVALID, 0);
        return;
    }

    /* message_size_limit: too large a payload is dropped; 3.x still gets its acknowledgement,
     * MQTT 5 gets 0x83 Implementation specific error, as mosquitto.conf(5) documents (2.0.11
     * sends 0x95, which is not a PUBACK/PUBREC reason code and which clients such as
     * paho-mqtt refuse). */
    if (cfg->message_size_limit && p->payload_len > cfg->message_size_limit) {
        b->stats.pub_dropped++;
        if (p->qos == 0) return;
        if (c->version == MQTT_V5) {
            publish_acked(c, p->qos, p->packet_id, MQTT_RC_IMPLEMENTATION_SPECIFIC_ERROR, 0);
            return;
        }
        if (p->qos == 2) session_qos2_in_add(s, p->packet_id);
        publish_acked(c, p->qos, p->packet_id, 0, 0);
        return;
    }

    /* ACL: a denied PUBLISH is acknowledged and dropped (3.x) or refused with 0x87 (v5). */
    uint8_t reason = MQTT_RC_SUCCESS;
    {
        char tbuf[256];
        char *t = topic_len < sizeof tbuf ? tbuf : malloc(topic_len + 1);
        if (!t) {
            conn_close(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
            return;
        }
        memcpy(t, topic, topic_len);
        t[topic_len] = '\0';
        int rc = acl_check(c->lst->acl, c->client_id, c->username, t, ACL_WRITE);
        if (t != tbuf) free(t);
        if (rc != 0) {
            log_at(LOG_TYPE_DEBUG,
                   "Denied PUBLISH from %s (d%d, q%d, r%d, m%u, '%.*s', ... (%u bytes)).",
                   c->client_id, p->dup, p->qos, p->retain, p->packet_id, (int)topic_len, topic,
                   p->payload_len);
            if (p->qos == 0) return;
            if (c->version == MQTT_V5) {
                publish_acked(c, p->qos, p->packet_id, MQTT_RC_NOT_AUTHORIZED, 0);
                return;
            }
            if (p->qos == 2) session_qos2_in_add(s, p->packet_id);
            publish_acked(c, p->qos, p->packet_id, 0, 0);
            return;
        }
    }

    struct msg *m = NULL;
    int rc = msg_new_from_publish(pkt, topic, topic_len, broker_wall_ms(), &m);
    if (rc < 0) {
        conn_close(c, rc == -ENOMEM ? MQTT_RC_SERVER_UNAVAILABLE : MQTT_RC_MALFORMED_PACKET,
                   "publish could not be stored");
        return;
    }

    struct dur_wait *w = NULL;
    if (b->route) {
        /* Several nodes: the topic's owner sequences it (route.h). */
        uint64_t owner = route_remote_owner(b, topic, topic_len);
        if (owner && p->qos == 0) {
            route_forward(b, owner, c->client_id, m, NULL);
            msg_unref(m);
            return;
        }
        bool current = p->qos == 0 || owner || route_current(b);
        if (owner || !current || (p->qos > 0 && route_holding(b))) {
            w = dur_wait_new(b, publish_done_cb);
            if (!w) {
                msg_unref(m);
                conn_close(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
                return;
            }
            if (route_holding(b) || !owner)
                route_hold(b, c->client_id, m, w);
            else
                route_forward(b, owner, c->client_id, m, w);
        } else {
            size_t n = route_owner_publish(b, s, c->client_id, m, true, p->qos > 0 ? &w : NULL,
                                           publish_done_cb);
            if (c->version == MQTT_V5 && n == 0) reason = MQTT_RC_NO_MATCHING_SUBSCRIBERS;
        }
        msg_unref(m);
        publish_wait(c, p, w, reason);
        return;
    }
    if (p->retain) {
        /* Retained set or clear [MQTT-3.3.1-5..7]: acknowledged after the commit. */
        w = dur_wait_new(b, publish_done_cb);
        if (!w) {
            msg_unref(m);
            conn_close(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
            return;
        }
        int prc = p->payload_len == 0
                      ? dur_retain_clear(b, topic, topic_len, dur_wait_cb, dur_hold(w))
                      : dur_retain_set(b, m, c->client_id, dur_wait_cb, dur_hold(w));
        if (prc < 0) dur_wait_fail(w, prc);
    }
    size_t n = deliver_publish(b, s, m, p->qos > 0 ? &w : NULL, publish_done_cb);
    msg_unref(m);
    if (c->version == MQTT_V5 && n == 0 && reason == MQTT_RC_SUCCESS)
        reason = MQTT_RC_NO_MATCHING_SUBSCRIBERS;
    publish_wait(c, p, w, reason);
}

/* The acknowledgement of a publish: now, or once the durable parts held by w are done. */
static void publish_wait(struct conn *c, const struct mqtt_publish *p, struct dur_wait *w,
                         uint8_t reason)
{
    struct session *s = c->sess;
    if (p->qos == 2) session_qos2_in_add(s, p->packet_id);
    if (!w) {
        if (p->qos > 0) publish_acked(c, p->qos, p->packet_id, reason, 0);
        return;
    }
    w->conn_id = c->id;
    w->pid = p->packet_id;
    w->qos = p->qos;
    w->u32 = reason;
    if (p->qos > 0) {
        if (w->pending > 1 || w->status < 0) {
            w->reply_seq = conn_reply_defer(c);
            if (p->qos == 1) c->inflight_in++; /* QoS 2 counts in qos2_in already */
        }
    } else {
        w->qos = 0;
    }
    if (p->qos == 0) w->done = NULL;
    dur_wait_release(w);
}
