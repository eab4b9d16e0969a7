/* Sessions: QoS state machines, queues, takeover, expiry (see session.h). */
#include "session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "config.h"
#include "conn.h"
#include "core.h"
#include "deliver.h"
#include "durable.h"
#include "listener.h"
#include "log.h"
#include "retain.h"
#include "route.h"
#include "subs.h"

#define SESSION_OUT_POOL_MAX 4096

static bool session_eq(const struct htab_node *n, const void *key)
{
    const struct session *s = (const struct session *)n;
    const struct mqtt_str *k = key;
    return s->client_id_len == k->len && memcmp(s->client_id, k->ptr, k->len) == 0;
}

void session_table_init(struct broker *b)
{
    htab_init(&b->sessions);
}

struct session *session_find(struct broker *b, const char *client_id, size_t len)
{
    struct mqtt_str key = {.ptr = client_id, .len = (uint16_t)len};
    return (struct session *)htab_find(&b->sessions, htab_hash_bytes(client_id, len), session_eq,
                                       &key);
}

/* A client id shared by a connection and its session: a reference count before the text. */
struct session_id {
    uint32_t refs;
    char text[];
};

static struct session_id *session_id_of(char *id)
{
    return (struct session_id *)(id - offsetof(struct session_id, text));
}

char *session_id_new(const char *client_id, size_t len)
{
    struct session_id *i = malloc(sizeof *i + len + 1);
    if (!i) return NULL;
    i->refs = 1;
    memcpy(i->text, client_id, len);
    i->text[len] = '\0';
    return i->text;
}

char *session_id_ref(char *id)
{
    session_id_of(id)->refs++;
    return id;
}

void session_id_unref(char *id)
{
    if (id && --session_id_of(id)->refs == 0) free(session_id_of(id));
}

static void session_expiry_cb(struct wheel_entry *e);
static void session_will_cb(struct wheel_entry *e);

struct session *session_new_id(struct broker *b, char *id)
{
    size_t len = strlen(id);
    struct session *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->client_id = session_id_ref(id);
    s->client_id_len = (uint16_t)len;
    s->b = b;
    s->expiry_s = UINT32_MAX;
    wheel_entry_init(&s->expiry_entry, session_expiry_cb);
    wheel_entry_init(&s->will_entry, session_will_cb);
    if (htab_insert(&b->sessions, &s->node, htab_hash_bytes(id, len)) < 0) {
        session_id_unref(s->client_id);
        free(s);
        return NULL;
    }
    return s;
}

struct session *session_new(struct broker *b, const char *client_id, size_t len)
{
    char *id = session_id_new(client_id, len);
    if (!id) return NULL;
    struct session *s = session_new_id(b, id);
    session_id_unref(id);
    return s;
}

/* ---- outbound records ---- */

static struct session_out *out_new(struct broker *b)
{
    struct session_out *o = b->out_free;
    if (o) {
        b->out_free = o->next;
        b->out_free_count--;
    } else {
        o = malloc(sizeof *o);
        if (!o) return NULL;
    }
    memset(o, 0, sizeof *o);
    return o;
}

static void out_free(struct broker *b, struct session_out *o)
{
    msg_unref(o->m);
    if (b->out_free_count < SESSION_OUT_POOL_MAX) {
        o->next = b->out_free;
        b->out_free = o;
        b->out_free_count++;
    } else {
        free(o);
    }
}

/* The table of in-flight packet ids exists only while messages are in flight. */
static void pids_free(struct session *s)
{
    if (!s->pids) return;
    htab_close(s->pids);
    free(s->pids);
    s->pids = NULL;
}

static void out_list_free(struct broker *b, struct session_out *o)
{
    while (o) {
        struct session_out *next = o->next;
        out_free(b, o);
        o = next;
    }
}

void session_free(struct session *s)
{
    struct broker *b = s->b;
    subs_remove_owner(b->subs, s);
    htab_remove(&b->sessions, &s->node);
    wheel_remove(&b->wheel, &s->expiry_entry);
    wheel_remove(&b->wheel, &s->will_entry);
    out_list_free(b, s->inflight);
    pids_free(s);
    out_list_free(b, s->queue);
    msg_unref(s->will.m);
    free(s->qos2_in);
    free(s->username);
    session_id_unref(s->client_id);
    free(s);
}

void session_table_close(struct broker *b)
{
    size_t bucket = 0;
    struct htab_node *cur = NULL, *n;
    while ((n = htab_next(&b->sessions, &bucket, &cur)) != NULL) {
        struct session *s = (struct session *)n;
        if (s->conn) {
            s->conn->sess = NULL;
            s->conn = NULL;
        }
        session_free(s);
        bucket = 0;
        cur = NULL;
    }
    htab_close(&b->sessions);
    while (b->out_free) {
        struct session_out *o = b->out_free;
        b->out_free = o->next;
        free(o);
    }
    b->out_free_count = 0;
}

/* ---- outbound flow ---- */

static uint32_t session_window(const struct session *s)
{
    uint32_t w = s->b->cfg->max_inflight_messages ? s->b->cfg->max_inflight_messages : 65535;
    if (s->conn && s->conn->receive_max_out < w) w = s->conn->receive_max_out; /* [MQTT-3.3.4-7] */
    return w ? w : 1;
}

static bool session_online(const struct session *s)
{
    return s->conn && s->conn->state == CONN_ACTIVE;
}

/* In-flight records are found by packet id through a per-session table (the id is its own
 * hash), and kept in send order in a doubly linked list. */
static struct session_out *inflight_find(struct session *s, uint16_t pid, struct session_out **prev)
{
    struct htab_node *n = s->pids ? htab_find(s->pids, pid, NULL, NULL) : NULL;
    if (!n) return NULL;
    struct session_out *o =
        (struct session_out *)((char *)n - offsetof(struct session_out, pid_node));
    if (prev) *prev = o->prev;
    return o;
}

static bool pid_in_use(struct session *s, uint16_t pid)
{
    return s->pids && htab_find(s->pids, pid, NULL, NULL) != NULL;
}

/* The next free packet id (1..65535), reusing ids once acknowledged. */
static uint16_t session_next_pid(struct session *s)
{
    for (uint32_t i = 0; i < 65535; i++) {
        uint16_t pid = (uint16_t)(s->last_pid % 65535 + 1);
        s->last_pid = pid;
        if (!pid_in_use(s, pid)) return pid;
    }
    return 0;
}

static void inflight_unlink(struct session *s, struct session_out *o, struct session_out *prev)
{
    (void)prev;
    if (o->prev)
        o->prev->next = o->next;
    else
        s->inflight = o->next;
    if (o->next)
        o->next->prev = o->prev;
    else
        s->inflight_tail = o->prev;
    o->next = o->prev = NULL;
    htab_remove(s->pids, &o->pid_node);
    s->inflight_count--;
    if (s->inflight_count == 0) pids_free(s); /* an idle session keeps no table */
}

/* Returns 0, or -ENOMEM (then o is not in flight). */
static int inflight_append(struct session *s, struct session_out *o)
{
    if (!s->pids) {
        s->pids = malloc(sizeof *s->pids);
        if (!s->pids) return -ENOMEM;
        htab_init(s->pids);
    }
    if (htab_insert(s->pids, &o->pid_node, o->pid) < 0) {
        if (s->inflight_count == 0) pids_free(s);
        return -ENOMEM;
    }
    o->next = NULL;
    o->prev = s->inflight_tail;
    if (s->inflight_tail)
        s->inflight_tail->next = o;
    else
        s->inflight = o;
    s->inflight_tail = o;
    s->inflight_count++;
    return 0;
}

/* The message is done (acknowledged, or impossible to send): leaves the durable queue. */
static void out_done(struct session *s, struct session_out *o)
{
    if (o->msg_id) dur_queue_ack(s->b, s, o->msg_id);
    out_free(s->b, o);
}

/* Sends an in-flight record (first time or again). Returns false if it had to be dropped
 * (too large for the client or expired): the caller removes it. */
static bool out_send(struct session *s, struct session_out *o)
{
    struct conn *c = s->conn;
    if (o->state == OUT_WAIT_PUBCOMP) {
        conn_send_ack(c, MQTT_PUBREL, o->pid, 0);
        return true;
    }
    int rc = deliver_send(c, o->m, o->qos, o->sent, o->retain, o->pid, o->sub_ids, o->nsub_ids);
    if (rc == -EMSGSIZE || rc == -ETIME) {
        s->b->stats.pub_dropped++;
        return false;
    }
    o->sent = true;
    return true;
}

static bool queue_has_room(const struct session *s, size_t extra_bytes)
{
    const struct config *cfg = s->b->cfg;
    uint64_t n = (uint64_t)s->queue_count + s->pending_pushes;
    if (cfg->max_queued_messages && n >= cfg->max_queued_messages) return false;
    if (cfg->max_queued_bytes && s->queue_bytes + extra_bytes > cfg->max_queued_bytes) return false;
    return true;
}

static void queue_append(struct session *s, struct session_out *o)
{
    o->next = NULL;
    if (s->queue_tail)
        s->queue_tail->next = o;
    else
        s->queue = o;
    s->queue_tail = o;
    s->queue_count++;
    s->queue_bytes += o->m->payload_len;
}

static struct session_out *queue_pop(struct session *s)
{
    struct session_out *o = s->queue;
    if (!o) return NULL;
    s->queue = o->next;
    if (!s->queue) s->queue_tail = NULL;
    o->next = NULL;
    s->queue_count--;
    s->queue_bytes -= o->m->payload_len;
    return o;
}

void session_pump(struct session *s)
{
    struct broker *b = s->b;
    uint64_t now = broker_wall_ms();
    while (s->queue && session_online(s)) {
        if (s->queue->qos > 0 && s->inflight_count >= session_window(s)) break;
        struct session_out *o = queue_pop(s);
        if (msg_is_expired(o->m, now)) {
            b->stats.pub_dropped++;
            out_done(s, o);
            continue;
        }
        if (o->qos == 0) {
            deliver_send(s->conn, o->m, 0, false, o->retain, 0, o->sub_ids, o->nsub_ids);
            out_free(b, o);
            continue;
        }
        o->pid = session_next_pid(s);
        if (!o->pid) {
            out_free(b, o);
            continue;
        }
        o->state = o->qos == 1 ? OUT_WAIT_PUBACK : OUT_WAIT_PUBREC;
        if (inflight_append(s, o) < 0) {
            s->b->stats.pub_dropped++;
            out_done(s, o);
            continue;
        }
        if (!out_send(s, o)) {
            inflight_unlink(s, o, NULL);
            out_done(s, o);
        }
    }
}

void session_deliver(struct session *s, struct msg *m, uint8_t qos, bool retain,
                     const uint32_t *sub_ids, uint32_t nsub_ids)
{
    struct broker *b = s->b;
    if (session_online(s)) {
        struct conn *c = s->conn;
        if (qos == 0) {
            if (conn_out_queued(c) > BROKER_SLOW_CONSUMER_BYTES) {
                b->stats.pub_dropped++;
                return;
            }
            deliver_send(c, m, 0, false, retain, 0, sub_ids, nsub_ids);
            return;
        }
    } else if (qos == 0 && !(s->persistent && b->cfg->queue_qos0_messages)) {
        return;
    }
    if (!session_online(s) || s->queue || (qos > 0 && s->inflight_count >= session_window(s))) {
        if (!queue_has_room(s, m->payload_len)) {
            b->stats.pub_dropped++;
            return;
        }
    }
    struct session_out *o = out_new(b);
    if (!o) {
        b->stats.pub_dropped++;
        return;
    }
    o->m = msg_ref(m);
    o->qos = qos;
    o->retain = retain;
    for (uint32_t i = 0; i < nsub_ids && i < 2; i++)
        o->sub_ids[o->nsub_ids++] = sub_ids[i];
    queue_append(s, o);
    session_pump(s);
}

void session_queue_durable(struct session *s, struct msg *m, uint64_t msg_id)
{
    struct session_out *o = out_new(s->b);
    if (!o) {
        msg_unref(m);
        return;
    }
    o->m = m;
    o->qos = m->qos;
    o->retain = false;
    o->msg_id = msg_id;
    queue_append(s, o);
    session_pump(s);
}

int session_on_puback(struct session *s, uint16_t pid)
{
    struct session_out *prev = NULL;
    struct session_out *o = inflight_find(s, pid, &prev);
    if (!o || o->state != OUT_WAIT_PUBACK) return 0; /* unknown id: ignored, as mosquitto does */
    inflight_unlink(s, o, prev);
    out_done(s, o);
    session_pump(s);
    return 0;
}

int session_on_pubrec(struct session *s, uint16_t pid, uint8_t reason)
{
    struct session_out *prev = NULL;
    struct session_out *o = inflight_find(s, pid, &prev);
    if (!o || (o->state != OUT_WAIT_PUBREC && o->state != OUT_WAIT_PUBCOMP)) {
        if (reason < 0x80)
            conn_send_ack(s->conn, MQTT_PUBREL, pid, MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND);
        return 0;
    }
    if (reason >= 0x80) {
        /* The receiver refused it: the flow ends here [MQTT-4.3.3-?]. */
        inflight_unlink(s, o, prev);
        out_done(s, o);
        session_pump(s);
        return 0;
    }
    if (o->state == OUT_WAIT_PUBREC && o->msg_id) {
        /* Received by the client: it leaves the durable queue now. */
        dur_queue_ack(s->b, s, o->msg_id);
        o->msg_id = 0;
    }
    o->state = OUT_WAIT_PUBCOMP;
    msg_unref(o->m);
    o->m = NULL;
    conn_send_ack(s->conn, MQTT_PUBREL, pid, 0);
    return 0;
}

int session_on_pubcomp(struct session *s, uint16_t pid)
{
    struct session_out *prev = NULL;
    struct session_out *o = inflight_find(s, pid, &prev);
    if (!o || o->state != OUT_WAIT_PUBCOMP) return 0;
    inflight_unlink(s, o, prev);
    out_done(s, o);
    session_pump(s);
    return 0;
}

/* ---- inbound QoS 2 ---- */

bool session_qos2_in_has(const struct session *s, uint16_t pid)
{
    for (uint32_t i = 0; i < s->qos2_in_count; i++)
        if (s->qos2_in[i] == pid) return true;
    return false;
}

int session_qos2_in_add(struct session *s, uint16_t pid)
{
    if (s->qos2_in_count == s->qos2_in_cap) {
        uint32_t cap = s->qos2_in_cap ? s->qos2_in_cap * 2 : 8;
        uint16_t *p = realloc(s->qos2_in, cap * sizeof *p);
        if (!p) return -ENOMEM;
        s->qos2_in = p;
        s->qos2_in_cap = cap;
    }
    s->qos2_in[s->qos2_in_count++] = pid;
    return 0;
}

bool session_qos2_in_remove(struct session *s, uint16_t pid)
{
    for (uint32_t i = 0; i < s->qos2_in_count; i++) {
        if (s->qos2_in[i] == pid) {
            s->qos2_in[i] = s->qos2_in[--s->qos2_in_count];
            if (s->qos2_in_count == 0) {
                free(s->qos2_in);
                s->qos2_in = NULL;
                s->qos2_in_cap = 0;
            }
            return true;
        }
    }
    return false;
}

/* ---- connection life ---- */

int session_open_bare(struct conn *c)
{
    struct session *s = session_new_id(c->b, c->client_id);
    if (!s) return -ENOMEM;
    if (c->username && !(s->username = strdup(c->username))) {
        session_free(s);
        return -ENOMEM;
    }
    s->version = c->version;
    s->persistent = false;
    if (c->version == MQTT_V5) s->expiry_s = 0;
    s->lst = c->lst;
    conn_bare_remove(c);
    session_attach(s, c);
    return 0;
}

void session_attach(struct session *s, struct conn *c)
{
    struct broker *b = s->b;
    s->conn = c;
    c->sess = s;
    wheel_remove(&b->wheel, &s->expiry_entry);
    /* Redelivery [MQTT-4.4.0-1]: unacknowledged PUBLISH again with DUP, PUBREL again. */
    struct session_out *prev = NULL, *o = s->inflight;
    while (o) {
        struct session_out *next = o->next;
        if (!out_send(s, o)) {
            inflight_unlink(s, o, prev);
            out_done(s, o);
        } else {
            prev = o;
        }
        o = next;
    }
    session_pump(s);
}

void session_detach(struct session *s, struct conn *c, uint8_t reason)
{
    struct broker *b = s->b;
    if (s->conn != c) return;
    s->conn = NULL;
    c->sess = NULL;
    /* A normal DISCONNECT discards the will [MQTT-3.1.2-10]. A stop ends connections like
     * any abnormal close: wills that are due go out before the end. */
    if (s->will.m && reason == MQTT_RC_SUCCESS) session_set_will(s, NULL, 0, 0);
    if (b->route && s->node_id && s->node_id != cluster_node_id(b->cluster)) {
        /* Taken over on another node (its SESSION_OPEN was applied): the session lives on
         * there and nothing is proposed from here (that open removed the will's record). The
         * will goes as on one node (connect_finish): due now when the session ends with this
         * connection (not persistent, or the new connection has clean start, which
         * dur_apply_remote_open marks by clearing persistent) or when it has no delay; one
         * with a delay is dropped, as the new connection came before the delay elapsed. */
        s->will.durable = false;
        if (s->will.m && (!s->persistent || s->expiry_s == 0 || s->will.delay_s == 0))
            session_fire_will(s);
        else
            session_set_will(s, NULL, 0, 0);
        return;
    }
    if (!s->persistent || s->expiry_s == 0) {
        session_end(s, false);
        return;
    }
    if (s->durable)
        dur_session_client(b, CLUSTER_CMD_SESSION_CLOSE, s->client_id, s->client_id_len);
    uint64_t now = uv_now(b->loop);
    if (s->expiry_s != UINT32_MAX)
        wheel_add(&b->wheel, &s->expiry_entry, now + (uint64_t)s->expiry_s * 1000);
    if (s->will.m) {
        if (s->will.delay_s == 0)
            session_fire_will(s);
        else
            wheel_add(&b->wheel, &s->will_entry, now + (uint64_t)s->will.delay_s * 1000);
    }
}

void session_end(struct session *s, bool expired)
{
    struct broker *b = s->b;
    if (s->conn) return;
    if (s->will.m) session_fire_will(s); /* the session ends: its will is due [MQTT-3.1.3-9] */
    /* A session connected on another node is only dropped from memory here: the open this
     * node proposes next has clean start and purges it (a delete would reach that node first
     * and make it commit its session again). */
    bool elsewhere = b->route && s->node_id && s->node_id != cluster_node_id(b->cluster);
    if ((s->durable || s->committed_subs) && !elsewhere)
        dur_session_client(b, expired ? CLUSTER_CMD_SESSION_EXPIRE : CLUSTER_CMD_SESSION_DELETE,
                           s->client_id, s->client_id_len);
    if (expired) {
        b->stats.clients_expired++;
        log_at(LOG_TYPE_NOTICE, "Expiring client %s.", s->client_id);
    }
    session_free(s);
}

/* Several nodes: every node keeps the timers of an offline session, and the one that acts is
 * the node the client was last connected to while it is live, else the leader; the others
 * look again a second later, until the committed expiry (or will clear, or a new open)
 * reaches them. */
#define SESSION_NOT_MINE_RETRY_MS 1000

static void session_expiry_cb(struct wheel_entry *e)
{
    struct session *s = (struct session *)((char *)e - offsetof(struct session, expiry_entry));
    if (!s->conn && !dur_session_due_here(s->b, s)) {
        wheel_add(&s->b->wheel, e, uv_now(s->b->loop) + SESSION_NOT_MINE_RETRY_MS);
        return;
    }
    session_end(s, true);
}

static void session_will_cb(struct wheel_entry *e)
{
    struct session *s = (struct session *)((char *)e - offsetof(struct session, will_entry));
    if (s->conn) return;
    if (!dur_session_due_here(s->b, s)) {
        wheel_add(&s->b->wheel, e, uv_now(s->b->loop) + SESSION_NOT_MINE_RETRY_MS);
        return;
    }
    session_fire_will(s);
}

/* ---- wills ---- */

void session_set_will(struct session *s, struct msg *m, uint32_t delay_s, uint32_t expiry_s)
{
    struct broker *b = s->b;
    wheel_remove(&b->wheel, &s->will_entry);
    if (s->will.m && s->will.durable && !m) dur_will_clear(b, s);
    msg_unref(s->will.m);
    s->will.m = m;
    s->will.delay_s = delay_s;
    s->will.expiry_s = expiry_s;
    if (!m) s->will.durable = false;
}

void session_fire_will(struct session *s)
{
    struct broker *b = s->b;
    struct msg *m = s->will.m;
    if (!m) return;
    s->will.m = NULL;
    wheel_remove(&b->wheel, &s->will_entry);
    if (s->will.durable) {
        dur_will_clear(b, s);
        s->will.durable = false;
    }
    struct msg *send = m;
    if (s->will.expiry_s) {
        struct msg_init in = {
            .topic = m->topic,
            .topic_len = m->topic_len,
            .payload = m->payload,
            .payload_len = m->payload_len,
            .qos = m->qos,
            .retain = m->retain,
            .props = m->props,
            .props_len = m->props_len,
            .expires_at_ms = broker_wall_ms() + (uint64_t)s->will.expiry_s * 1000,
        };
        struct msg *copy = NULL;
        if (msg_new(&in, &copy) == 0)
            send = copy;
        else
            msg_ref(send);
        msg_unref(m);
    }
    char topic[65536];
    memcpy(topic, send->topic, send->topic_len);
    topic[send->topic_len] = '\0';
    if (acl_check(broker_session_acl(b, s->lst), s->client_id, s->username, topic, ACL_WRITE) ==
        0) {
        if (b->route) {
            uint64_t owner = route_remote_owner(b, send->topic, send->topic_len);
            if (owner)
                route_forward(b, owner, s->client_id, send, NULL);
            else
                route_owner_publish(b, s, s->client_id, send, true, NULL, NULL);
            msg_unref(send);
            return;
        }
        if (send->retain && b->cfg->retain_available) {
            if (send->payload_len == 0)
                dur_retain_clear(b, send->topic, send->topic_len, NULL, NULL);
            else
                dur_retain_set(b, send, s->client_id, NULL, NULL);
        }
        deliver_publish(b, s, send, NULL, NULL);
    } else {
        log_at(LOG_TYPE_DEBUG, "Denied will of %s on %s.", s->client_id, topic);
    }
    msg_unref(send);
}
