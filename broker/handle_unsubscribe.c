/* UNSUBSCRIBE: each filter removed through the cluster, then UNSUBACK (v5: 0x11 for a filter
 * the client was not subscribed to). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "core.h"
#include "durable.h"
#include "handle.h"
#include "log.h"
#include "session.h"
#include "subs.h"

struct unsub_req {
    uint16_t pid;
    uint32_t n;
    uint8_t reasons[];
};

static void unsubscribe_done_cb(struct broker *b, struct dur_wait *w, int status)
{
    struct unsub_req *r = w->data;
    struct conn *c = conn_find(b, w->conn_id);
    if (c) {
        if (status < 0)
            for (uint32_t i = 0; i < r->n; i++)
                if (r->reasons[i] < 0x80) r->reasons[i] = MQTT_RC_UNSPECIFIED_ERROR;
        struct mqtt_packet pkt = {.type = MQTT_UNSUBACK};
        pkt.u.suback.packet_id = r->pid;
        pkt.u.suback.reasons = r->reasons;
        pkt.u.suback.count = r->n;
        conn_reply_finish(c, w->reply_seq, &pkt);
    }
    free(r);
    free(w);
}

void handle_unsubscribe(struct conn *c, const struct mqtt_packet *pkt)
{
    struct broker *b = c->b;
    struct session *s = c->sess;
    const struct mqtt_subscribe *sp = &pkt->u.subscribe;
    uint32_t n = sp->topics.count;
    struct unsub_req *r = calloc(1, sizeof *r + n);
    struct dur_wait *w = r ? dur_wait_new(b, unsubscribe_done_cb) : NULL;
    if (!w) {
        free(r);
        conn_close(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
        return;
    }
    r->pid = sp->packet_id;
    w->data = r;
    w->conn_id = c->id;
    const uint8_t *pos = sp->topics.raw, *end = sp->topics.raw + sp->topics.raw_len;
    struct mqtt_topic_entry te;
    while (r->n < n && mqtt_topic_next(&pos, end, false, &te) == 1) {
        uint8_t *reason = &r->reasons[r->n++];
        struct subs_info info;
        if (subs_find(b->subs, s, te.filter.ptr, te.filter.len, &info) != 0) {
            *reason = MQTT_RC_NO_SUBSCRIPTION_EXISTED;
            continue;
        }
        *reason = MQTT_RC_SUCCESS;
        if (log_is_enabled(LOG_TYPE_UNSUBSCRIBE))
            log_at(LOG_TYPE_UNSUBSCRIBE, "%s %.*s", c->client_id, (int)te.filter.len,
                   te.filter.ptr);
        int rc = dur_unsubscribe(b, s->client_id, s->client_id_len, te.filter.ptr, te.filter.len,
                                 dur_wait_cb, dur_hold(w));
        if (rc < 0) {
            w->pending--;
            *reason = MQTT_RC_UNSPECIFIED_ERROR;
        }
    }
    w->reply_seq = conn_reply_defer(c);
    dur_wait_release(w);
}
