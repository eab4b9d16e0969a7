/* The admin API's hooks for this broker (admin_hooks.h): what /readyz, /api/v1/cluster and
 * /metrics report, and membership changes handed to the cluster. */
#include "admin_hooks.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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
#include "tls.h"

/* Members read per call; more are read with a larger buffer. */
#define ADMIN_HOOKS_MEMBERS 16

/* The hooks' context, freed when the admin server is gone. */
struct admin_view {
    struct broker *b;
    bool target_known; /* the commit index to reach was learned */
    uint64_t target;
    bool caught_up;   /* sticky: applied up to target once */
    uv_signal_t *hup; /* HTTPS: SIGHUP reloads the certificates (owned; NULL without) */
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

/* The listener label: "BIND:PORT" as configured ("*:PORT" without a bind address), unique
 * per listener. */
static void admin_hooks_listener_name(const struct listener *l, char *where, size_t cap)
{
    const char *bind = l->cfg->bind_address;
    bool v6 = bind != NULL && strchr(bind, ':') != NULL;
    snprintf(where, cap, "%s%s%s:%u", v6 ? "[" : "", bind != NULL ? bind : "*", v6 ? "]" : "",
             l->port ? l->port : l->cfg->port);
}

/* Connections and bytes per listener: labelled series only (the sum over listeners is the
 * node's total). */
static void admin_hooks_listener_metrics(struct broker *b, struct textbuf *out)
{
    static const struct {
        const char *name, *help;
        enum metrics_type type;
    } fams[] = {
        {"starling_connections", "Open client connections, per listener.", METRICS_GAUGE},
        {"starling_bytes_received_total", "MQTT packet bytes received from clients, per listener.",
         METRICS_COUNTER},
        {"starling_bytes_sent_total", "MQTT packet bytes queued to clients, per listener.",
         METRICS_COUNTER},
    };
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
        metrics_family(out, fams[f].name, fams[f].type, fams[f].help);
        for (size_t i = 0; i < b->nlisteners; i++) {
            const struct listener *l = &b->listeners[i];
            if (l->cfg == NULL) continue;
            char where[96];
            admin_hooks_listener_name(l, where, sizeof where);
            struct metrics_label lab[] = {{"listener", where}};
            uint64_t v = f == 0   ? (l->connections > 0 ? (uint64_t)l->connections : 0)
                         : f == 1 ? l->bytes_received
                                  : l->bytes_sent;
            metrics_sample(out, fams[f].name, lab, 1, v);
        }
    }
}

/* starling_raft_apply_seconds from the cluster's apply-latency buckets. */
static void admin_hooks_apply_latency(struct broker *b, struct textbuf *out)
{
    struct cluster_apply_latency al;
    struct metrics_histogram h;
    cluster_apply_latency(b->cluster, &al);
    if (metrics_histogram_init(&h, al.bounds_s, CLUSTER_APPLY_BUCKETS) != 0) {
        if (out->error == 0) out->error = -EINVAL;
        return;
    }
    memcpy(h.counts, al.counts, sizeof al.counts);
    h.count = al.count;
    h.sum = al.sum_s;
    metrics_family(out, "starling_raft_apply_seconds", METRICS_HISTOGRAM,
                   "Seconds from a command proposed on this node (forwarded to the leader "
                   "from a follower) until Raft committed it and this node applied it into "
                   "LMDB; failed proposals are not counted.");
    metrics_histogram_write(out, "starling_raft_apply_seconds", NULL, 0, &h);
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
    admin_hooks_apply_latency(b, out);
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
    metrics_gauge(out, "starling_sessions", "Sessions known to this node.",
                  b->sessions.count + b->bare_conns.count);
    metrics_counter(out, "starling_messages_received_total", "PUBLISH packets received.",
                    s->pub_received);
    metrics_counter(out, "starling_messages_sent_total", "PUBLISH packets sent.", s->pub_sent);
    metrics_counter(out, "starling_packets_received_total", "MQTT packets received.",
                    s->msgs_received);
    metrics_counter(out, "starling_packets_sent_total", "MQTT packets sent.", s->msgs_sent);
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
                if (m[i].id == st.leader_id && st.leader_id != 0) {
                    snprintf(msg, sizeof msg,
                             "%s: %s: the leader is node %" PRIu64
                             " (cluster address %s): ask its admin API",
                             what, cluster_strerror(rc), m[i].id, m[i].address);
                    admin_op_set_leader(op, m[i].id, m[i].address);
                }
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

static void admin_hooks_hup_closed_cb(uv_handle_t *h)
{
    free(h);
}

/* SIGHUP: the admin certificates again from their files, for new connections (as the
 * listeners do; the files are read with the privileges the broker runs with by then). */
static void admin_hooks_hup_cb(uv_signal_t *h, int signum)
{
    struct broker *b = h->data;
    const struct config *cfg = b->cfg;
    (void)signum;
    if (b->admin == NULL) return;
    const struct config_tls files = {
        .certfile = cfg->admin_certfile,
        .keyfile = cfg->admin_keyfile,
        .cafile = cfg->admin_cafile,
        .require_certificate = cfg->admin_cafile != NULL,
    };
    struct tls_ctx *ctx;
    char err[512];
    if (tls_ctx_new(&files, &ctx, err, sizeof err) < 0) {
        log_at(LOG_TYPE_ERROR, "Error: admin_listener: %s; the certificates in force stay.", err);
        return;
    }
    admin_set_tls(b->admin, ctx);
    tls_ctx_unref(ctx);
    log_at(LOG_TYPE_NOTICE, "Reloaded the TLS certificates of the admin API.");
}

/* admin_certfile/keyfile/cafile as read at load: the HTTPS context, or NULL for HTTP. */
static int admin_hooks_tls(const struct config *cfg, struct tls_ctx **out, char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->admin_cert_pem == NULL) return 0;
    const struct tls_pem pem = {
        .cert = cfg->admin_cert_pem,
        .cert_len = cfg->admin_cert_pem_len,
        .key = cfg->admin_key_pem,
        .key_len = cfg->admin_key_pem_len,
        .ca = cfg->admin_ca_pem,
        .ca_len = cfg->admin_ca_pem_len,
        .cert_name = "admin_certfile",
        .key_name = "admin_keyfile",
        .ca_name = "admin_cafile",
    };
    char terr[400];
    int rc = tls_ctx_new_pem(&pem, out, terr, sizeof terr);
    if (rc < 0) {
        snprintf(err, errlen, "admin_listener: %s", terr);
        return rc == -ENOMEM ? UV_ENOMEM : UV_EINVAL;
    }
    return 0;
}

int admin_hooks_start(struct broker *b, struct admin **out, char *err, size_t errlen)
{
    const struct config *cfg = b->cfg;
    *out = NULL;
    if (!cfg->admin_listener_set) return 0;
    struct tls_ctx *tls;
    int rc = admin_hooks_tls(cfg, &tls, err, errlen);
    if (rc != 0) return rc;
    struct admin_view *v = mem_calloc(1, sizeof *v);
    if (v == NULL) {
        tls_ctx_unref(tls);
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
        .tls = tls,
    };
    rc = admin_start(b->loop, &ac, &hooks, out, err, errlen);
    tls_ctx_unref(tls); /* the admin holds its own reference */
    if (rc != 0) {
        mem_free(v);
        return rc;
    }
    if (tls != NULL) {
        /* Its own SIGHUP watcher (libuv calls every one); it does not keep the loop alive. */
        v->hup = malloc(sizeof *v->hup);
        if (v->hup != NULL && uv_signal_init(b->loop, v->hup) == 0) {
            v->hup->data = b;
            uv_signal_start(v->hup, admin_hooks_hup_cb, SIGHUP);
            uv_unref((uv_handle_t *)v->hup);
        } else {
            free(v->hup);
            v->hup = NULL;
        }
    }
    bool v6 = strchr(cfg->admin_bind_address, ':') != NULL;
    log_at(LOG_TYPE_NOTICE, "Admin API on %s://%s%s%s:%u/%s%s.", tls != NULL ? "https" : "http",
           v6 ? "[" : "", cfg->admin_bind_address, v6 ? "]" : "", admin_port(*out),
           cfg->admin_token != NULL ? " (bearer token required)" : "",
           cfg->admin_cafile != NULL ? " (client certificate required)" : "");
    return 0;
}

void admin_hooks_stop(struct admin *a)
{
    if (a == NULL) return;
    struct admin_view *v = admin_ctx(a);
    if (v->hup != NULL) {
        uv_close((uv_handle_t *)v->hup, admin_hooks_hup_closed_cb);
        v->hup = NULL;
    }
    /* The view is the hooks' ctx: freed once the server is gone. */
    admin_close(a, admin_hooks_closed_cb, v);
}
