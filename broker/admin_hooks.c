/* The admin API's hooks for this broker (admin_hooks.h): what /readyz, /api/v1/cluster and
 * /metrics report, and membership changes handed to the cluster. */
#include "admin_hooks.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "config.h"
#include "core.h"
#include "json.h"
#include "listener.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "retain.h"
#include "subs.h"

/* Members read per call; more are read with a larger buffer. */
#define ADMIN_HOOKS_MEMBERS 16

/* The hooks' context, freed when the admin server is gone. */
struct admin_view {
    struct broker *b;
    bool target_known; /* the commit index to reach was learned */
    uint64_t target;
    bool caught_up; /* sticky: applied up to target once */
};

/* The configuration as this node knows it. *members is allocated (mem_free it). */
static int admin_hooks_members(struct broker *b, struct cluster_member **members /* OUT */,
                               struct cluster_status *st /* OUT */)
{
    size_t cap = ADMIN_HOOKS_MEMBERS;
    for (;;) {
        struct cluster_member *m = mem_calloc(cap, sizeof *m);
        if (m == NULL) return -ENOMEM;
        cluster_members(b->cluster, m, cap, st);
        if (st->n_members <= cap) {
            *members = m;
            return 0;
        }
        mem_free(m);
        cap = st->n_members;
    }
}

/* Ready: a member of the configuration (a voter or standby, not removed) that has applied
 * the commit index it learned when it first was a member with a known leader, and not
 * stopping. Catching up is sticky: a later election or a lost quorum does not make the node
 * unready (that would empty a Service of every pod); leaving the configuration does. */
static bool admin_hooks_ready(void *ctx)
{
    struct admin_view *v = ctx;
    struct broker *b = v->b;
    if (b->cluster == NULL || b->stopping || b->loading || b->cluster_failed) return false;
    if (!cluster_is_member(b->cluster)) return false;
    if (!v->caught_up) {
        struct cluster_member *m;
        struct cluster_status st;
        if (admin_hooks_members(b, &m, &st) != 0) return false;
        mem_free(m);
        if (!v->target_known) {
            if (st.leader_id == 0) return false;
            v->target = st.commit_index;
            v->target_known = true;
        }
        /* The leader has applied what it committed (applied_index counts commands only,
         * the commit index configuration entries too). */
        v->caught_up = st.applied_index >= v->target || st.leader_id == st.node_id;
    }
    return v->caught_up;
}

static int admin_hooks_cluster_json(void *ctx, struct json_writer *w)
{
    struct admin_view *v = ctx;
    struct broker *b = v->b;
    struct cluster_member *m;
    struct cluster_status st;
    if (b->cluster == NULL) return -ESHUTDOWN;
    int rc = admin_hooks_members(b, &m, &st);
    if (rc != 0) return rc;
    json_begin_object(w);
    json_key(w, "node_id");
    json_uint(w, st.node_id);
    json_key(w, "leader");
    if (st.leader_id != 0)
        json_uint(w, st.leader_id);
    else
        json_null(w);
    json_key(w, "term");
    json_uint(w, st.term);
    json_key(w, "commit_index");
    json_uint(w, st.commit_index);
    json_key(w, "applied_index");
    json_uint(w, st.applied_index);
    json_key(w, "members");
    json_begin_array(w);
    for (size_t i = 0; i < st.n_members; i++) {
        json_begin_object(w);
        json_key(w, "id");
        json_uint(w, m[i].id);
        json_key(w, "address");
        json_string(w, m[i].address);
        json_key(w, "role");
        json_string(w, cluster_role_name(m[i].role));
        json_key(w, "alive");
        json_bool(w, m[i].alive);
        json_end_object(w);
    }
    json_end_array(w);
    json_end_object(w);
    mem_free(m);
    return 0;
}

/* ---- metrics ---- */

static void admin_hooks_listener_metrics(struct broker *b, struct textbuf *out)
{
    metrics_family(out, "starling_connections", METRICS_GAUGE,
                   "Open client connections, per listener.");
    for (size_t i = 0; i < b->nlisteners; i++) {
        const struct listener *l = &b->listeners[i];
        if (l->cfg == NULL) continue;
        char where[96];
        const char *bind = l->cfg->bind_address;
        bool v6 = bind != NULL && strchr(bind, ':') != NULL;
        snprintf(where, sizeof where, "%s%s%s:%u", v6 ? "[" : "", bind != NULL ? bind : "*",
                 v6 ? "]" : "", l->port ? l->port : l->cfg->port);
        struct metrics_label lab[] = {{"listener", where}};
        metrics_sample(out, "starling_connections", lab, 1,
                       l->connections > 0 ? (uint64_t)l->connections : 0);
    }
}

static void admin_hooks_cluster_metrics(struct broker *b, struct textbuf *out)
{
    struct cluster_member *m;
    struct cluster_status st;
    if (admin_hooks_members(b, &m, &st) != 0) {
        if (out->error == 0) out->error = -ENOMEM;
        return;
    }
    size_t alive = 0;
    for (size_t i = 0; i < st.n_members; i++)
        alive += m[i].alive;
    mem_free(m);
    metrics_gauge(out, "starling_raft_term", "Current Raft term.", st.term);
    metrics_gauge(out, "starling_raft_commit_index", "Raft commit index known to this node.",
                  st.commit_index);
    metrics_gauge(out, "starling_raft_applied_index", "Raft index applied into the local state.",
                  st.applied_index);
    metrics_gauge(out, "starling_raft_leader_id", "Id of the known leader (0: none).",
                  st.leader_id);
    metrics_gauge(out, "starling_raft_is_leader", "1 when this node is the Raft leader.",
                  st.leader_id != 0 && st.leader_id == st.node_id);
    metrics_gauge(out, "starling_cluster_members", "Members of the Raft configuration.",
                  st.n_members);
    metrics_gauge(out, "starling_cluster_members_alive",
                  "Members of the configuration committed as alive.", alive);
    metrics_gauge(out, "starling_lmdb_bytes",
                  "Size of the LMDB memory map holding the state, in bytes.",
                  store_map_size(cluster_storage(b->cluster)));

    struct cluster_link_stats few[ADMIN_HOOKS_MEMBERS], *ls = few;
    size_t n = cluster_link_stats(b->cluster, few, ADMIN_HOOKS_MEMBERS);
    if (n > ADMIN_HOOKS_MEMBERS) {
        ls = mem_calloc(n, sizeof *ls);
        if (ls == NULL) {
            if (out->error == 0) out->error = -ENOMEM;
            return;
        }
        size_t again = cluster_link_stats(b->cluster, ls, n);
        n = again < n ? again : n;
    }
    uint64_t shed = 0;
    for (size_t i = 0; i < n; i++)
        shed += ls[i].shed;
    static const struct {
        const char *name, *help;
        enum metrics_type type;
    } link_families[] = {
        {"starling_node_link_up", "1 when the connection to the peer is established.",
         METRICS_GAUGE},
        {"starling_node_link_queue_bytes", "Bytes queued for the peer.", METRICS_GAUGE},
        {"starling_node_link_frames_sent_total", "Frames queued for the peer.", METRICS_COUNTER},
        {"starling_node_link_frames_received_total", "Frames received from the peer.",
         METRICS_COUNTER},
        {"starling_node_link_bytes_sent_total", "Bytes written to the peer.", METRICS_COUNTER},
        {"starling_node_link_connects_total", "Connections made to the peer.", METRICS_COUNTER},
    };
    for (size_t f = 0; f < sizeof link_families / sizeof link_families[0]; f++) {
        metrics_family(out, link_families[f].name, link_families[f].type, link_families[f].help);
        for (size_t i = 0; i < n; i++) {
            char peer[24];
            snprintf(peer, sizeof peer, "%" PRIu64, ls[i].node_id);
            struct metrics_label lab[] = {{"peer", peer}};
            uint64_t val = f == 0   ? ls[i].up
                           : f == 1 ? ls[i].queued_bytes
                           : f == 2 ? ls[i].frames_sent
                           : f == 3 ? ls[i].frames_received
                           : f == 4 ? ls[i].bytes_sent
                                    : ls[i].connects;
            metrics_sample(out, link_families[f].name, lab, 1, val);
        }
    }
    metrics_family(out, "starling_messages_dropped_total", METRICS_COUNTER,
                   "PUBLISH messages dropped, by reason.");
    struct metrics_label broker_reason[] = {{"reason", "client_queue"}};
    struct metrics_label link_reason[] = {{"reason", "node_link"}};
    metrics_sample(out, "starling_messages_dropped_total", broker_reason, 1, b->stats.pub_dropped);
    metrics_sample(out, "starling_messages_dropped_total", link_reason, 1, shed);
    if (ls != few) mem_free(ls);
}

static int admin_hooks_metrics(void *ctx, struct textbuf *out)
{
    struct admin_view *v = ctx;
    struct broker *b = v->b;
    const struct broker_stats *s = &b->stats;
    admin_hooks_listener_metrics(b, out);
    metrics_gauge(out, "starling_connections_connecting",
                  "Accepted connections that have not completed CONNECT.", s->clients_connecting);
    metrics_gauge(out, "starling_clients_maximum", "Most clients connected at once.",
                  s->clients_maximum);
    metrics_counter(out, "starling_clients_expired_total", "Sessions that expired.",
                    s->clients_expired);
    metrics_gauge(out, "starling_sessions", "Sessions known to this node.", b->sessions.count);
    metrics_counter(out, "starling_messages_received_total", "PUBLISH packets received.",
                    s->pub_received);
    metrics_counter(out, "starling_messages_sent_total", "PUBLISH packets sent.", s->pub_sent);
    metrics_counter(out, "starling_packets_received_total", "MQTT packets received.",
                    s->msgs_received);
    metrics_counter(out, "starling_packets_sent_total", "MQTT packets sent.", s->msgs_sent);
    metrics_counter(out, "starling_bytes_received_total", "Bytes received from clients.",
                    s->bytes_received);
    metrics_counter(out, "starling_bytes_sent_total", "Bytes sent to clients.", s->bytes_sent);
    metrics_counter(out, "starling_publish_bytes_received_total", "PUBLISH packet bytes received.",
                    s->pub_bytes_received);
    metrics_counter(out, "starling_publish_bytes_sent_total", "PUBLISH packet bytes sent.",
                    s->pub_bytes_sent);
    metrics_gauge(out, "starling_subscriptions", "Subscriptions in the index.",
                  subs_count(b->subs));
    metrics_gauge(out, "starling_retained_messages", "Retained messages.", retain_count(b->retain));
    metrics_gauge(out, "starling_uptime_seconds", "Seconds since the broker started.",
                  (broker_wall_ms() - b->started_ms) / 1000);
    if (b->cluster != NULL) admin_hooks_cluster_metrics(b, out);
    return 0;
}

/* ---- membership changes ---- */

/* An HTTP status for a cluster error. */
static int admin_hooks_http_status(int rc)
{
    switch (rc) {
    case -EINVAL:
        return 400;
    case -ENOENT:
        return 404;
    case -EEXIST:
    case -EBUSY:
    case -EALREADY:
        return 409;
    case CLUSTER_ENOTLEADER:
        return 421;
    case CLUSTER_ENOQUORUM:
    case CLUSTER_ESHUTDOWN:
    case CLUSTER_ELEADERSHIPLOST:
    case CLUSTER_ENOTMEMBER:
    case CLUSTER_EFAILED:
        return 503;
    case -ETIMEDOUT:
        return 504;
    default:
        return 500;
    }
}

/* Finishes op with rc's status and "WHAT: reason"; for "not the leader", says which node
 * leads. */
static void admin_hooks_fail(struct broker *b, struct admin_op *op, const char *what, int rc)
{
    char msg[400];
    snprintf(msg, sizeof msg, "%s: %s", what, cluster_strerror(rc));
    if (rc == CLUSTER_ENOTLEADER && b->cluster != NULL) {
        struct cluster_member *m;
        struct cluster_status st;
        if (admin_hooks_members(b, &m, &st) == 0) {
            for (size_t i = 0; i < st.n_members; i++)
                if (m[i].id == st.leader_id && st.leader_id != 0)
                    snprintf(msg, sizeof msg, "%s: %s: the leader is node %" PRIu64 " at %s", what,
                             cluster_strerror(rc), m[i].id, m[i].address);
            mem_free(m);
        }
    }
    admin_op_finish(op, admin_hooks_http_status(rc), msg);
}

/* One membership change in flight. */
struct admin_change {
    struct admin_op *op;
    struct broker *b;
    char done[96]; /* the success message */
    char what[96]; /* "cannot ..." for a failure */
};

static void admin_hooks_change_cb(void *data, int status)
{
    struct admin_change *ch = data;
    if (status == 0)
        admin_op_finish(ch->op, 200, ch->done);
    else
        admin_hooks_fail(ch->b, ch->op, ch->what, status);
    mem_free(ch);
}

enum admin_change_kind { CHANGE_ADD, CHANGE_REMOVE, CHANGE_TRANSFER };

static void admin_hooks_change(struct admin_view *v, struct admin_op *op,
                               enum admin_change_kind kind, uint64_t id, const char *address)
{
    struct broker *b = v->b;
    if (b->cluster == NULL || b->stopping) {
        admin_op_finish(op, 503, "the node is stopping");
        return;
    }
    struct admin_change *ch = mem_calloc(1, sizeof *ch);
    if (ch == NULL) {
        admin_op_finish(op, 500, "out of memory");
        return;
    }
    ch->op = op;
    ch->b = b;
    int rc;
    switch (kind) {
    case CHANGE_ADD:
        snprintf(ch->done, sizeof ch->done, "node %" PRIu64 " added as a voter", id);
        snprintf(ch->what, sizeof ch->what, "cannot add node %" PRIu64, id);
        rc = cluster_add(b->cluster, id, address, admin_hooks_change_cb, ch);
        break;
    case CHANGE_REMOVE:
        snprintf(ch->done, sizeof ch->done, "node %" PRIu64 " removed", id);
        snprintf(ch->what, sizeof ch->what, "cannot remove node %" PRIu64, id);
        rc = cluster_remove(b->cluster, id, admin_hooks_change_cb, ch);
        break;
    default:
        if (id != 0)
            snprintf(ch->done, sizeof ch->done, "leadership transferred to node %" PRIu64, id);
        else
            snprintf(ch->done, sizeof ch->done, "leadership transferred");
        snprintf(ch->what, sizeof ch->what, "cannot transfer leadership");
        rc = cluster_transfer(b->cluster, id, admin_hooks_change_cb, ch);
        break;
    }
    if (rc != 0) {
        char what[96];
        snprintf(what, sizeof what, "%s", ch->what);
        mem_free(ch);
        admin_hooks_fail(b, op, what, rc);
        return;
    }
    log_at(LOG_TYPE_NOTICE, "Admin API: %s of node %" PRIu64 " requested.",
           kind == CHANGE_ADD      ? "addition"
           : kind == CHANGE_REMOVE ? "removal"
                                   : "leadership transfer",
           id);
}

static void admin_hooks_join(void *ctx, struct admin_op *op, uint64_t id, const char *address)
{
    admin_hooks_change(ctx, op, CHANGE_ADD, id, address);
}

static void admin_hooks_remove(void *ctx, struct admin_op *op, uint64_t id)
{
    admin_hooks_change(ctx, op, CHANGE_REMOVE, id, NULL);
}

static void admin_hooks_transfer(void *ctx, struct admin_op *op, uint64_t id)
{
    admin_hooks_change(ctx, op, CHANGE_TRANSFER, id, NULL);
}

/* ---- lifecycle ---- */

static void admin_hooks_closed_cb(void *data)
{
    mem_free(data);
}

int admin_hooks_start(struct broker *b, struct admin **out, char *err, size_t errlen)
{
    const struct config *cfg = b->cfg;
    *out = NULL;
    if (!cfg->admin_listener_set) return 0;
    struct admin_view *v = mem_calloc(1, sizeof *v);
    if (v == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    v->b = b;
    const struct admin_hooks hooks = {
        .ctx = v,
        .ready = admin_hooks_ready,
        .cluster_json = admin_hooks_cluster_json,
        .metrics = admin_hooks_metrics,
        .join = admin_hooks_join,
        .remove = admin_hooks_remove,
        .transfer = admin_hooks_transfer,
    };
    const struct admin_config ac = {
        .bind_address = cfg->admin_bind_address,
        .port = cfg->admin_port,
        .token = cfg->admin_token,
    };
    int rc = admin_start(b->loop, &ac, &hooks, out, err, errlen);
    if (rc != 0) {
        mem_free(v);
        return rc;
    }
    bool v6 = strchr(cfg->admin_bind_address, ':') != NULL;
    log_at(LOG_TYPE_NOTICE, "Admin API on http://%s%s%s:%u/%s.", v6 ? "[" : "",
           cfg->admin_bind_address, v6 ? "]" : "", admin_port(*out),
           cfg->admin_token != NULL ? " (bearer token required)" : "");
    return 0;
}

void admin_hooks_stop(struct admin *a)
{
    if (a == NULL) return;
    /* The view is the hooks' ctx: freed once the server is gone. */
    admin_close(a, admin_hooks_closed_cb, admin_ctx(a));
}
