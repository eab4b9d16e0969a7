/* Several nodes: the cluster port, its dispatch to Raft, links and joins, the node links'
 * frames, and both sides of proposal forwarding (forward.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "cluster_impl.h"
#include "command.h"
#include "hello.h"

#define DEFAULT_LINK_QUEUE ((size_t)64 << 20)

/* ---- set-up ---- */

int multi_init(struct cluster *c)
{
    unsigned election = c->cfg.election_timeout_ms;
    if (!c->cfg.listen_port) c->cfg.listen_port = DEFAULT_CLUSTER_PORT;
    if (!c->cfg.node_down_ms) c->cfg.node_down_ms = 2 * election;
    if (!c->cfg.forward_timeout_ms) c->cfg.forward_timeout_ms = 5 * election;
    if (!c->cfg.link_queue_max_bytes) c->cfg.link_queue_max_bytes = DEFAULT_LINK_QUEUE;
    fwd_init(&c->fwd, c->cfg.forward_timeout_ms);
    ring_init(&c->ring);
    /* The advertised address is also this node's Raft address. */
    char buf[300];
    const char *adv = c->cfg.advertise;
    for (size_t i = 0; !adv && i < c->cfg.n_peers; i++)
        if (c->cfg.peers[i].id == c->cfg.node_id) adv = c->cfg.peers[i].address;
    const char *bind = c->cfg.listen_bind;
    if (!adv && bind && *bind && strcmp(bind, "0.0.0.0") != 0 && strcmp(bind, "::") != 0) {
        /* A specific bind address is what peers reach. */
        snprintf(buf, sizeof buf, strchr(bind, ':') ? "[%s]:%u" : "%s:%u", bind,
                 c->cfg.listen_port);
        adv = buf;
    }
    if (!adv) {
        char host[256];
        if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "localhost");
        host[sizeof host - 1] = '\0';
        snprintf(buf, sizeof buf, "%s:%u", host, c->cfg.listen_port);
        adv = buf;
    }
    char h[256], s[16];
    if (port_split_address(adv, h, sizeof h, s, sizeof s) != 0 || strlen(adv) > HELLO_ADDR_MAX) {
        cluster_logf(c, CLUSTER_LOG_ERR, "cluster: bad advertised address '%s'", adv);
        return -EINVAL;
    }
    for (size_t i = 0; i < c->cfg.n_peers; i++) {
        if (c->cfg.peers[i].id == 0 || !c->cfg.peers[i].address ||
            port_split_address(c->cfg.peers[i].address, h, sizeof h, s, sizeof s) != 0) {
            cluster_logf(c, CLUSTER_LOG_ERR, "cluster: bad peer %zu", i + 1);
            return -EINVAL;
        }
    }
    char *a = strdup(adv);
    if (!a) return -ENOMEM;
    free(c->address);
    c->address = a;
    if (c->cfg.join) {
        c->join_target = strdup(c->cfg.join);
        if (!c->join_target) return -ENOMEM;
    }
    return owner_load(c);
}

static void on_accept(void *ctx, uint8_t channel, uint64_t node_id, const char *address,
                      uv_tcp_t *stream)
{
    struct cluster *c = ctx;
    switch (channel) {
    case HELLO_CHANNEL_RAFT:
        transport_port_accept(&c->tport, node_id, address, stream);
        return;
    case HELLO_CHANNEL_LINK:
        link_accept(c->link, node_id, stream);
        return;
    case HELLO_CHANNEL_JOIN:
    case HELLO_CHANNEL_REJOIN:
        members_accept_join(c, node_id, address, stream, channel == HELLO_CHANNEL_REJOIN);
        return;
    case HELLO_CHANNEL_PROBE:
        probe_accept(c, stream);
        return;
    case HELLO_CHANNEL_REMOVED:
        port_stream_close(stream);
        members_removed_notice(c, node_id);
        return;
    default:
        port_stream_close(stream);
    }
}

/* ---- the leader's side of forwarding ---- */

struct fwd_apply {
    struct raft_apply req;
    struct cluster *c;
    uint64_t from, req_id;
    unsigned n;
};

static void fwd_reply(struct cluster *c, uint64_t to, uint64_t req_id, int status, uint64_t first,
                      unsigned n)
{
    uint8_t out[FWD_RESULT_SIZE];
    fwd_encode_result(out, req_id, status, first, n);
    int rc = link_send(c->link, to, LINK_TYPE_FWD_RESULT, out, sizeof out, 0);
    if (rc != 0)
        cluster_logf(c, CLUSTER_LOG_INFO, "forwarded proposal answer to node %llu lost: %s",
                     (unsigned long long)to, uv_strerror(rc));
}

static void fwd_apply_cb(struct raft_apply *req, int status, void *result)
{
    struct fwd_apply *fa = req->data;
    (void)result;
    if (!fa->c->closing)
        fwd_reply(fa->c, fa->from, fa->req_id, cluster_from_raft(status),
                  status == 0 ? req->index : 0, fa->n);
    free(fa);
}

struct fwd_collect {
    struct raft_buffer *bufs;
    unsigned n;
};

static int fwd_collect_one(void *ctx, const uint8_t *cmd, size_t len)
{
    struct fwd_collect *fc = ctx;
    struct cluster_cmd dec;
    if (cluster_cmd_decode(cmd, len, &dec) != 0) return CLUSTER_ECORRUPT;
    size_t entry = cmd_entry_size(len);
    uint8_t *b = raft_malloc(entry);
    if (!b) return -ENOMEM;
    memcpy(b, cmd, len);
    memset(b + len, 0, entry - len);
    fc->bufs[fc->n++] = (struct raft_buffer){.base = b, .len = entry};
    return 0;
}

static void on_fwd_propose(struct cluster *c, uint64_t from, const uint8_t *buf, size_t len)
{
    uint64_t req_id = 0;
    if (len < 12) return;
    uint32_t n = (uint32_t)buf[8] << 24 | (uint32_t)buf[9] << 16 | (uint32_t)buf[10] << 8 | buf[11];
    req_id = hello_get64(buf);
    if (!cluster_is_leader(c)) {
        fwd_reply(c, from, req_id, CLUSTER_ENOTLEADER, 0, n);
        return;
    }
    if (c->fsm.failed) {
        fwd_reply(c, from, req_id, CLUSTER_EFAILED, 0, n);
        return;
    }
    if (n == 0 || n > len / 4) {
        fwd_reply(c, from, req_id, CLUSTER_ECORRUPT, 0, n);
        return;
    }
    struct fwd_collect fc = {.bufs = calloc(n, sizeof *fc.bufs)};
    struct fwd_apply *fa = malloc(sizeof *fa);
    int rc = fc.bufs && fa ? fwd_decode_propose(buf, len, &req_id, fwd_collect_one, &fc) : -ENOMEM;
    if (rc >= 0) {
        *fa = (struct fwd_apply){.c = c, .from = from, .req_id = req_id, .n = fc.n};
        fa->req.data = fa;
        rc = raft_apply(&c->raft, &fa->req, fc.bufs, fc.n, fwd_apply_cb);
        if (rc != 0) {
            rc = cluster_from_raft(rc);
        } else {
            free(fc.bufs); /* raft owns the entries now, not the array */
            return;
        }
    }
    for (unsigned i = 0; i < fc.n; i++)
        raft_free(fc.bufs[i].base);
    free(fc.bufs);
    free(fa);
    fwd_reply(c, from, req_id, rc, 0, n);
}

/* ---- links ---- */

static void on_frame(void *ctx, uint64_t from, uint8_t type, const uint8_t *buf, size_t len)
{
    struct cluster *c = ctx;
    if (c->closing) return;
    if (type >= 1 && type <= LINK_TYPE_USER_MAX) {
        if (c->ev.link_frame) c->ev.link_frame(c->ev_ctx, from, type, buf, len);
        return;
    }
    switch (type) {
    case LINK_TYPE_PING:
        return;
    case LINK_TYPE_FWD_PROPOSE:
        on_fwd_propose(c, from, buf, len);
        return;
    case LINK_TYPE_LEASE_ASK:
        lease_on_ask(c, from, buf, len);
        return;
    case LINK_TYPE_LEASE_ANSWER:
        lease_on_answer(c, from, buf, len);
        return;
    case LINK_TYPE_FWD_RESULT:
        if (fwd_on_result(&c->fwd, buf, len, c->fsm.last_applied) != 0)
            cluster_logf(c, CLUSTER_LOG_WARNING, "bad forwarding answer from node %llu",
                         (unsigned long long)from);
        return;
    default:
        cluster_logf(c, CLUSTER_LOG_DEBUG, "link frame of unknown type %u from node %llu", type,
                     (unsigned long long)from);
    }
}

static void on_link_kick(void *ctx)
{
    cluster_kick(ctx);
}

/* The links follow the Raft configuration: every other server in it. */
static void follow_configuration(struct cluster *c)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    uint64_t sig = XXH3_64bits(NULL, 0);
    XXH3_state_t *st = XXH3_createState();
    if (!st) return;
    XXH3_64bits_reset(st);
    for (unsigned i = 0; i < conf->n; i++) {
        XXH3_64bits_update(st, &conf->servers[i].id, sizeof conf->servers[i].id);
        XXH3_64bits_update(st, conf->servers[i].address, strlen(conf->servers[i].address) + 1);
    }
    sig = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    if (sig == c->conf_sig) return;
    c->conf_sig = sig;
    uint64_t *ids = malloc((conf->n + 1) * sizeof *ids);
    const char **addrs = malloc((conf->n + 1) * sizeof *addrs);
    if (!ids || !addrs) {
        free(ids);
        free(addrs);
        c->conf_sig = 0; /* try again next tick */
        return;
    }
    size_t k = 0;
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == c->cfg.node_id) continue;
        ids[k] = conf->servers[i].id;
        addrs[k] = conf->servers[i].address;
        k++;
    }
    if (link_set_peers(c->link, ids, addrs, k) != 0) c->conf_sig = 0;
    free(ids);
    free(addrs);
}

static int fwd_send(void *ctx, uint64_t leader, uint8_t type, const uint8_t *buf, size_t len)
{
    struct cluster *c = ctx;
    int rc = link_send(c->link, leader, type, buf, len, 0);
    if (rc == -ENOENT) {
        follow_configuration(c); /* the leader may be newer than our links */
        rc = link_send(c->link, leader, type, buf, len, 0);
    }
    return rc == -ENOENT ? -EAGAIN : rc;
}

static void tick_cb(uv_timer_t *t)
{
    struct cluster *c = t->data;
    if (c->closing) return;
    uint64_t now = uv_now(c->loop);
    if (!c->started) {
        probe_tick(c, now);
        return;
    }
    follow_configuration(c);
    members_tick(c, now);
    fwd_expire(&c->fwd, now);
    uint64_t leader = c->leader_id == c->cfg.node_id ? 0 : c->leader_id;
    fwd_flush(&c->fwd, leader, now, fwd_send, c);
    if (cluster_is_leader(c)) liveness_tick(c, now);
    lease_tick(c, now);
    cluster_kick(c);
}

int multi_start(struct cluster *c)
{
    struct port_config pc = {
        .node_id = c->cfg.node_id,
        .advertise = c->address,
        .cluster = hello_cluster_id(c->cfg.name),
        .secret = c->cfg.secret,
        .secret_len = c->cfg.secret_len,
        .tls_ca_pem = c->cfg.tls_ca_pem,
        .tls_ca_pem_len = c->cfg.tls_ca_pem_len,
        .tls_cert_pem = c->cfg.tls_cert_pem,
        .tls_cert_pem_len = c->cfg.tls_cert_pem_len,
        .tls_key_pem = c->cfg.tls_key_pem,
        .tls_key_pem_len = c->cfg.tls_key_pem_len,
        .log = c->cfg.log,
        .log_ctx = c->cfg.log_ctx,
    };
    int rc = port_new(c->loop, &pc, on_accept, c, &c->port);
    if (rc != 0) return rc;
    struct link_hooks lh = {
        .frame = on_frame,
        .kick = on_link_kick,
        .log = c->cfg.log,
        .log_ctx = c->cfg.log_ctx,
        .ctx = c,
    };
    unsigned ping = c->cfg.heartbeat_timeout_ms;
    rc = link_new(c->loop, c->port, c->cfg.link_queue_max_bytes, ping, &lh, &c->link);
    if (rc != 0) return rc;
    transport_port_init(&c->tport, c->loop, c->port);
    uv_timer_init(c->loop, &c->tick);
    c->tick.data = c;
    c->tick_open = true;
    uv_unref((uv_handle_t *)&c->tick);
    uv_timer_start(&c->tick, tick_cb, ping, ping);
    rc = port_listen(c->port, c->cfg.listen_bind, c->cfg.listen_port);
    if (rc != 0) return rc;
    if (!c->cfg.secret_len)
        cluster_logf(c, CLUSTER_LOG_WARNING,
                     "cluster: no cluster secret: any host reaching the cluster port can join");
    return 0;
}

/* ---- hooks from cluster.c ---- */

void multi_check(struct cluster *c)
{
    if (c->fwd.current) {
        uint64_t leader = c->leader_id == c->cfg.node_id ? 0 : c->leader_id;
        fwd_flush(&c->fwd, leader, uv_now(c->loop), fwd_send, c);
    }
    link_flush(c->link);
}

static void take_local(void *ctx, const uint8_t *cmd, size_t len, cluster_applied_cb cb, void *data)
{
    struct cluster *c = ctx;
    int rc = cluster_queue_local(c, cmd, len, cb, data);
    if (rc != 0 && cb) cb(data, rc, 0);
}

void multi_leader_changed(struct cluster *c, uint64_t leader_id, bool self)
{
    fwd_on_leader_change(&c->fwd, leader_id);
    if (leader_id != 0) c->noquorum_logged = false;
    if (self) {
        c->leader_since = uv_now(c->loop);
        fwd_take_queued(&c->fwd, take_local, c);
        liveness_became_leader(c);
    } else {
        c->leader_since = 0;
    }
}

void multi_committed(struct cluster *c, uint64_t last_applied)
{
    fwd_on_applied(&c->fwd, last_applied);
    owner_refresh(c);
}

int multi_propose(struct cluster *c, const uint8_t *cmd, size_t size, cluster_applied_cb cb,
                  void *data)
{
    if (c->leader_id == 0 || c->leader_id == c->cfg.node_id) {
        if (!c->noquorum_logged) {
            c->noquorum_logged = true;
            cluster_logf(c, CLUSTER_LOG_WARNING,
                         "no cluster leader known (minority or election): durable work is "
                         "refused until a leader is elected");
        }
        return CLUSTER_ENOQUORUM;
    }
    int rc = fwd_add(&c->fwd, cmd, size, cb, data, uv_now(c->loop));
    if (rc == 0) cluster_kick(c);
    return rc;
}

bool multi_busy(const struct cluster *c)
{
    return c->fwd.current != NULL;
}

/* ---- close ---- */

static void multi_part_closed(void *data)
{
    struct cluster *c = data;
    if (--c->multi_closing > 0) return;
    if (c->multi_done) c->multi_done(c);
}

static void tick_closed(uv_handle_t *h)
{
    multi_part_closed(h->data);
}

void multi_close(struct cluster *c, void (*done)(struct cluster *c))
{
    c->multi_done = done;
    fwd_close(&c->fwd, CLUSTER_ESHUTDOWN);
    c->multi_closing = 1; /* held until everything below was started */
    probe_close(c);
    if (c->join_dial) {
        port_dial_cancel(c->join_dial);
        c->join_dial = NULL;
    }
    if (c->join_stream) {
        port_stream_close(c->join_stream);
        c->join_stream = NULL;
    }
    if (c->tick_open) {
        c->multi_closing++;
        uv_close((uv_handle_t *)&c->tick, tick_closed);
        c->tick_open = false;
    }
    if (c->link) {
        c->multi_closing++;
        link_close(c->link, multi_part_closed, c);
        c->link = NULL;
    }
    if (c->port) {
        c->multi_closing++;
        port_close(c->port, multi_part_closed, c);
        c->port = NULL;
    }
    multi_part_closed(c);
}

/* ---- public: links ---- */

int cluster_link_send(struct cluster *c, uint64_t peer_id, uint8_t type, const void *buf,
                      size_t len, unsigned flags)
{
    if (!c->multi || !c->link || type < 1 || type > CLUSTER_LINK_TYPE_MAX) return -EINVAL;
    if (peer_id == c->cfg.node_id) return -ENOENT;
    return link_send(c->link, peer_id, type, buf, len,
                     flags & CLUSTER_LINK_QOS0 ? LINK_F_SHEDDABLE : 0);
}

void cluster_get_stats(const struct cluster *c, struct cluster_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!c->multi) return;
    if (c->port) {
        struct port_stats ps;
        port_get_stats(c->port, &ps);
        out->hello_accepted = ps.accepted + ps.dialed;
        out->hello_refused = ps.refused;
        out->dial_failures = ps.dial_failed;
    }
    out->forwarded = c->fwd.n_sent;
    out->forward_retries = c->fwd.n_retried;
    out->forward_failed = c->fwd.n_failed;
}

size_t cluster_link_stats(const struct cluster *c, struct cluster_link_stats *out, size_t cap)
{
    if (!c->multi || !c->link || !c->raft_ready) return 0;
    const struct raft_configuration *conf = &c->raft.configuration;
    size_t k = 0;
    for (unsigned i = 0; i < conf->n; i++) {
        struct cluster_link_stats st;
        if (link_peer_stats(c->link, conf->servers[i].id, &st) != 0) continue;
        if (k < cap) out[k] = st;
        k++;
    }
    return k;
}
