/* SUBSCRIBE: per-filter checks (ACL, max_qos, shared-subscription rules), the subscribe
 * committed through the cluster, then SUBACK and the retained messages per Retain Handling. */
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
#include "session.h"
#include "subs.h"

struct sub_entry {
    char *filter;
    uint16_t len;
    uint8_t options;
    uint8_t reason; /* granted QoS or failure */
    bool existed;   /* the client had this exact subscription already */
};

struct sub_req {
    uint16_t pid;
    uint32_t sub_id;
    uint32_t n;
    struct sub_entry e[];
};

static void sub_req_free(struct sub_req *r)
{
    if (!r) return;
    for (uint32_t i = 0; i < r->n; i++)
        free(r->e[i].filter);
    free(r);
}

static void subscribe_done_cb(struct broker *b, struct dur_wait *w, int status)
{
    struct sub_req *r = w->data;
    struct conn *c = conn_find(b, w->conn_id);
    uint8_t *reasons = c && c->sess ? malloc(r->n ? r->n : 1) : NULL;
    if (c && !reasons) {
        conn_close(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
    } else if (c && c->sess) {
        for (uint32_t i = 0; i < r->n; i++) {
            reasons[i] = r->e[i].reason;
            if (status < 0 && reasons[i] < 0x80)
                reasons[i] =
                    c->version == MQTT_V5 && (status == -ENOSPC || status == CLUSTER_EFAILED)
                        ? MQTT_RC_QUOTA_EXCEEDED
                        : MQTT_RC_UNSPECIFIED_ERROR;
            if (c->version != MQTT_V5 && reasons[i] >= 0x80)
                reasons[i] = 0x80; /* 3.1.1 has one failure code */
        }
        struct mqtt_packet pkt = {.type = MQTT_SUBACK};
        pkt.u.suback.packet_id = r->pid;
        pkt.u.suback.reasons = reasons;
        pkt.u.suback.count = r->n;
        conn_reply_finish(c, w->reply_seq, &pkt);
        /* Retained messages after SUBACK, per Retain Handling [MQTT-3.3.1-9..11]. */
        for (uint32_t i = 0; i < r->n; i++) {
            struct sub_entry *e = &r->e[i];
            if (e->reason >= 0x80 || status < 0) continue;
            uint8_t rh = SUBS_OPT_RETAIN_HANDLING(e->options);
            if (rh == MQTT_RH_DONT_SEND || (rh == MQTT_RH_SEND_IF_NEW && e->existed)) continue;
            deliver_retained(b, c->sess, e->filter, e->len, e->options, r->sub_id);
        }
    }
    free(reasons);
    sub_req_free(r);
    free(w);
}

void handle_subscribe(struct conn *c, const struct mqtt_packet *pkt)
{
    struct broker *b = c->b;
    struct session *s = c->sess;
    const struct mqtt_subscribe *sp = &pkt->u.subscribe;
    uint32_t n = sp->topics.count;
    struct sub_req *r = calloc(1, sizeof *r + n * sizeof r->e[0]);
    struct dur_wait *w = r ? dur_wait_new(b, subscribe_done_cb) : NULL;
    if (!w) {
        free(r);
        conn_close(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
        return;
    }
    r->pid = sp->packet_id;
    if (c->version == MQTT_V5 && pkt->props.sub_id_count > 0) r->sub_id = pkt->props.sub_id;
    w->data = r;
    w->conn_id = c->id;

    const uint8_t *pos = sp->topics.raw, *end = sp->topics.raw + sp->topics.raw_len;
    struct mqtt_topic_entry te;
    while (r->n < n && mqtt_topic_next(&pos, end, true, &te) == 1) {
        struct sub_entry *e = &r->e[r->n++];
        e->filter = malloc((size_t)te.filter.len + 1);
        if (!e->filter) {
            e->reason = MQTT_RC_UNSPECIFIED_ERROR;
            continue;
        }
        memcpy(e->filter, te.filter.ptr, te.filter.len);
        e->filter[te.filter.len] = '\0';
        e->len = te.filter.len;
        struct mqtt_sub_opts o = te.opts;
        if (c->version != MQTT_V5) {
            o.no_local = false;
            o.retain_as_published = false;
            o.retain_handling = MQTT_RH_SEND;
        }
        struct mqtt_str group, inner;
        bool shared = mqtt_topic_share_split(e->filter, e->len, &group, &inner);
        if (shared && o.no_local) {
            /* [MQTT-3.8.3-4] */
            sub_req_free(r);
            free(w);
            conn_close(c, MQTT_RC_PROTOCOL_ERROR, "No Local on a shared subscription");
            return;
        }
        if (o.qos > c->lst->cfg->max_qos) o.qos = c->lst->cfg->max_qos;
        e->options = mqtt_sub_opts_byte(o);
        if (acl_check(c->lst->acl, c->client_id, c->username, e->filter, ACL_SUBSCRIBE) != 0) {
            e->reason = MQTT_RC_NOT_AUTHORIZED;
            continue;
        }
        struct subs_info info;
        e->existed = subs_find(b->subs, s, e->filter, e->len, &info) == 0;
        e->reason = o.qos;
        if (log_is_enabled(LOG_TYPE_SUBSCRIBE))
            log_at(LOG_TYPE_SUBSCRIBE, "%s %d %s", c->client_id, o.qos, e->filter);
        int rc = dur_subscribe(b, s->client_id, s->client_id_len, e->filter, e->len, e->options,
                               r->sub_id, dur_wait_cb, dur_hold(w));
        if (rc < 0) {
            w->pending--;
            e->reason = rc == -ENOSPC || rc == CLUSTER_EFAILED ? MQTT_RC_QUOTA_EXCEEDED
                                                               : MQTT_RC_UNSPECIFIED_ERROR;
        } else {
            s->committed_subs = true;
        }
    }
    w->reply_seq = conn_reply_defer(c);
    dur_wait_release(w);
}
