/* $SYS/broker/... topics (see sys.h). */
#include "sys.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core.h"
#include "deliver.h"
#include "msg.h"
#include "retain.h"
#include "subs.h"

/* One exponentially decayed rate (per minute) over 1, 5 and 15 minutes, as Mosquitto's
 * $SYS/broker/load/... topics. */
struct sys_load {
    const char *name; /* e.g. "messages/received" */
    const uint64_t *counter;
    uint64_t last;
    double avg[3];
};

#define SYS_TOPICS_MAX 64

struct sys_state {
    uv_timer_t *timer; /* b->sys_timer */
    uint64_t last_ms;
    struct sys_load loads[12];
    unsigned nloads;
    uint64_t sockets; /* accepted connections */
    char *values[SYS_TOPICS_MAX];
    const char *topics[SYS_TOPICS_MAX];
    unsigned ntopics;
    uint64_t interned; /* bit i: topics[i] was allocated here */
    size_t heap_max;   /* largest heap/current published */
};

/* Publishes topic=value as a retained message if the value changed. */
static void sys_publish(struct broker *b, const char *topic, const char *value)
{
    struct sys_state *st = b->sys;
    unsigned i;
    for (i = 0; i < st->ntopics; i++)
        if (st->topics[i] == topic || strcmp(st->topics[i], topic) == 0) break;
    if (i < st->ntopics && st->values[i] && strcmp(st->values[i], value) == 0) return;
    if (i == st->ntopics) {
        if (st->ntopics == SYS_TOPICS_MAX) return;
        st->topics[st->ntopics++] = topic;
    }
    free(st->values[i]);
    st->values[i] = strdup(value);
    struct msg_init in = {
        .topic = topic,
        .topic_len = strlen(topic),
        .payload = (const uint8_t *)value,
        .payload_len = strlen(value),
        .qos = 0,
        .retain = true,
    };
    struct msg *m = NULL;
    if (msg_new(&in, &m) < 0) return;
    retain_set(b->retain, topic, in.topic_len, msg_ref(m));
    deliver_publish(b, NULL, m, NULL, NULL);
    msg_unref(m);
}

static void sys_publish_u64(struct broker *b, const char *topic, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    sys_publish(b, topic, buf);
}

/* $SYS/cluster/...: this node, its role, the leader and the members as this node knows them. */
static void sys_update_cluster(struct broker *b)
{
    struct cluster_member ms[16];
    struct cluster_status st;
    cluster_members(b->cluster, ms, 16, &st);
    sys_publish_u64(b, "$SYS/cluster/node_id", st.node_id);
    char buf[1024];
    if (st.leader_id)
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)st.leader_id);
    else
        snprintf(buf, sizeof buf, "none");
    sys_publish(b, "$SYS/cluster/leader", buf);
    const char *role = "none";
    if (st.leader_id && st.leader_id == st.node_id) role = "leader";
    size_t n = st.n_members < 16 ? st.n_members : 16;
    for (size_t i = 0; i < n; i++)
        if (ms[i].id == st.node_id && strcmp(role, "leader") != 0)
            role = cluster_role_name(ms[i].role);
    sys_publish(b, "$SYS/cluster/role", role);
    sys_publish_u64(b, "$SYS/cluster/term", st.term);
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && len < sizeof buf; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%llu %s %s %s", i ? ", " : "",
                                (unsigned long long)ms[i].id, ms[i].address,
                                cluster_role_name(ms[i].role), ms[i].alive ? "up" : "down");
    sys_publish(b, "$SYS/cluster/members", buf);
}

static void sys_update(struct broker *b)
{
    struct sys_state *st = b->sys;
    const struct broker_stats *s = &b->stats;
    uint64_t now = uv_now(b->loop);
    char buf[64];

    snprintf(buf, sizeof buf, "%llu seconds",
             (unsigned long long)((broker_wall_ms() - b->started_ms) / 1000));
    sys_publish(b, "$SYS/broker/uptime", buf);

    size_t total = b->sessions.count + b->bare_conns.count;
    uint64_t connected = s->clients_connected;
    sys_publish_u64(b, "$SYS/broker/clients/total", total);
    sys_publish_u64(b, "$SYS/broker/clients/connected", connected);
    sys_publish_u64(b, "$SYS/broker/clients/active", connected);
    sys_publish_u64(b, "$SYS/broker/clients/disconnected",
                    total > connected ? total - connected : 0);
    sys_publish_u64(b, "$SYS/broker/clients/inactive", total > connected ? total - connected : 0);
    sys_publish_u64(b, "$SYS/broker/clients/maximum", s->clients_maximum);
    sys_publish_u64(b, "$SYS/broker/clients/expired", s->clients_expired);
    sys_publish_u64(b, "$SYS/broker/messages/received", s->msgs_received);
    sys_publish_u64(b, "$SYS/broker/messages/sent", s->msgs_sent);
    sys_publish_u64(b, "$SYS/broker/publish/messages/received", s->pub_received);
    sys_publish_u64(b, "$SYS/broker/publish/messages/sent", s->pub_sent);
    sys_publish_u64(b, "$SYS/broker/publish/messages/dropped", s->pub_dropped);
    sys_publish_u64(b, "$SYS/broker/publish/bytes/received", s->pub_bytes_received);
    sys_publish_u64(b, "$SYS/broker/publish/bytes/sent", s->pub_bytes_sent);
    sys_publish_u64(b, "$SYS/broker/bytes/received", s->bytes_received);
    sys_publish_u64(b, "$SYS/broker/bytes/sent", s->bytes_sent);
    sys_publish_u64(b, "$SYS/broker/subscriptions/count", subs_count(b->subs));
    sys_publish_u64(b, "$SYS/broker/shared_subscriptions/count", subs_shared_count(b->subs));
    sys_publish_u64(b, "$SYS/broker/retained messages/count", retain_count(b->retain));
    sys_publish_u64(b, "$SYS/broker/store/messages/count", retain_count(b->retain));
    /* Mosquitto's deprecated name for store/messages/count, still published by 2.0. */
    sys_publish_u64(b, "$SYS/broker/messages/stored", retain_count(b->retain));

    /* Heap in use by the process (glibc's count, not only the broker's own allocations as
     * Mosquitto's memory tracking counts), and the largest value published. */
    struct mallinfo2 mi = mallinfo2();
    size_t heap = mi.uordblks + mi.hblkhd;
    if (heap > st->heap_max) st->heap_max = heap;
    sys_publish_u64(b, "$SYS/broker/heap/current", heap);
    sys_publish_u64(b, "$SYS/broker/heap/maximum", st->heap_max);

    if (b->route) sys_update_cluster(b);

    /* Load averages: per-minute rates decayed over 1, 5 and 15 minutes. */
    double dt_s = st->last_ms ? (double)(now - st->last_ms) / 1000.0 : 0;
    st->last_ms = now;
    static const char *const spans[3] = {"1min", "5min", "15min"};
    static const double span_s[3] = {60, 300, 900};
    for (unsigned i = 0; i < st->nloads; i++) {
        struct sys_load *l = &st->loads[i];
        uint64_t cur = *l->counter;
        if (dt_s > 0) {
            double rate = (double)(cur - l->last) * 60.0 / dt_s;
            for (int k = 0; k < 3; k++) {
                /* exp(-dt/span) to first order; dt is far below the span. */
                double f = dt_s >= span_s[k] ? 0 : 1 - dt_s / span_s[k];
                l->avg[k] = l->avg[k] * f + rate * (1 - f);
            }
        }
        l->last = cur;
        for (int k = 0; k < 3; k++) {
            char topic[128];
            snprintf(topic, sizeof topic, "$SYS/broker/load/%s/%s", l->name, spans[k]);
            snprintf(buf, sizeof buf, "%.2f", l->avg[k]);
            /* The topic string must outlive the cache: keep one interned copy. */
            unsigned j;
            for (j = 0; j < st->ntopics; j++)
                if (strcmp(st->topics[j], topic) == 0) break;
            const char *t = j < st->ntopics ? st->topics[j] : NULL;
            if (!t) {
                char *dup = strdup(topic);
                if (!dup) continue;
                t = dup;
                if (st->ntopics == SYS_TOPICS_MAX) {
                    free(dup);
                    continue;
                }
                st->topics[st->ntopics] = t;
                st->values[st->ntopics] = NULL;
                st->ntopics++;
                st->interned |= 1ull << (st->ntopics - 1);
            }
            sys_publish(b, t, buf);
        }
    }
}

static void sys_timer_cb(uv_timer_t *t)
{
    struct broker *b = t->data;
    /* Once the cluster is being closed its state is no longer there to be read. */
    if (b->closing_cluster) return;
    sys_update(b);
}

void sys_start(struct broker *b)
{
    struct sys_state *st = calloc(1, sizeof *st);
    if (!st) return;
    b->sys = st;
    const struct broker_stats *s = &b->stats;
    struct {
        const char *name;
        const uint64_t *counter;
    } loads[] = {
        {"messages/received", &s->msgs_received},
        {"messages/sent", &s->msgs_sent},
        {"publish/received", &s->pub_received},
        {"publish/sent", &s->pub_sent},
        {"publish/dropped", &s->pub_dropped},
        {"bytes/received", &s->bytes_received},
        {"bytes/sent", &s->bytes_sent},
        {"connections", &s->connects},
        {"sockets", &s->sockets},
    };
    for (size_t i = 0; i < sizeof loads / sizeof loads[0]; i++) {
        st->loads[i].name = loads[i].name;
        st->loads[i].counter = loads[i].counter;
        st->nloads++;
    }
    char version[64];
    snprintf(version, sizeof version, "starling version %s", STARLING_VERSION);
    sys_publish(b, "$SYS/broker/version", version);
    uv_timer_init(b->loop, &b->sys_timer);
    b->sys_timer.data = b;
    if (b->cfg->sys_interval_s > 0) {
        sys_update(b);
        uv_timer_start(&b->sys_timer, sys_timer_cb, (uint64_t)b->cfg->sys_interval_s * 1000,
                       (uint64_t)b->cfg->sys_interval_s * 1000);
    }
}

void sys_free(struct broker *b)
{
    struct sys_state *st = b->sys;
    if (!st) return;
    for (unsigned i = 0; i < st->ntopics; i++) {
        free(st->values[i]);
        if (st->interned & (1ull << i)) free((char *)st->topics[i]);
    }
    free(st);
    b->sys = NULL;
}
