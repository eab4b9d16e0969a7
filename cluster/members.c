/* Membership: the snapshot for the admin API, add (spare -> catch-up -> voter), remove
 * (demote, then remove), leader transfer, the join request of a new node, and the watch that
 * tells a node it was removed.
 *
 * Join, from the new node (cfg.join, while this node is not in its configuration): every
 * second it dials the join address on the hello's join channel (the hello carries its id and
 * advertised address) and reads one answer: i32 status | u16 length | leader address. A
 * member that is not the leader answers CLUSTER_ENOTLEADER with the leader's address, which
 * the new node dials next; the leader runs cluster_add and answers its status when done.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_impl.h"
#include "hello.h"

#define JOIN_RETRY_MS 1000u

const char *cluster_role_name(enum cluster_role role)
{
    switch (role) {
    case CLUSTER_ROLE_VOTER:
        return "voter";
    case CLUSTER_ROLE_STANDBY:
        return "standby";
    case CLUSTER_ROLE_SPARE:
        return "spare";
    }
    return "unknown";
}

static const struct raft_server *conf_find(const struct cluster *c, uint64_t id)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    for (unsigned i = 0; i < conf->n; i++)
        if (conf->servers[i].id == id) return &conf->servers[i];
    return NULL;
}

bool members_self_in_config(const struct cluster *c)
{
    return c->raft_ready && conf_find(c, c->cfg.node_id) != NULL;
}

bool cluster_is_member(const struct cluster *c)
{
    if (!c->multi) return c->started;
    const struct raft_server *self = c->raft_ready ? conf_find(c, c->cfg.node_id) : NULL;
    return self && self->role != RAFT_SPARE && !c->removed;
}

void cluster_members(const struct cluster *c, struct cluster_member *members, size_t cap,
                     struct cluster_status *st)
{
    memset(st, 0, sizeof *st);
    st->node_id = c->cfg.node_id;
    st->leader_id = c->leader_id;
    st->applied_index = c->raft_ready ? fsm_applied_index(&c->fsm) : c->fsm.last_applied;
    if (!c->raft_ready) return;
    st->term = c->raft.current_term;
    st->commit_index = c->raft.commit_index;
    const struct raft_configuration *conf = &c->raft.configuration;
    st->n_members = conf->n;
    for (unsigned i = 0; i < conf->n && i < cap; i++) {
        const struct raft_server *s = &conf->servers[i];
        struct cluster_member *m = &members[i];
        m->id = s->id;
        snprintf(m->address, sizeof m->address, "%s", s->address);
        m->role = s->role == RAFT_VOTER     ? CLUSTER_ROLE_VOTER
                  : s->role == RAFT_STANDBY ? CLUSTER_ROLE_STANDBY
                                            : CLUSTER_ROLE_SPARE;
        if (!c->multi) {
            m->alive = true;
            continue;
        }
        struct node_state *ns = owner_node((struct cluster *)c, s->id);
        m->alive = !ns || !ns->known || ns->up;
    }
}

/* ---- changes ---- */

enum change_step { STEP_ADD, STEP_PROMOTE, STEP_DEMOTE, STEP_REMOVE };

struct change {
    struct raft_change req;
    struct cluster *c;
    enum change_step step;
    bool readd; /* a voter that lost its state: demote, then promote (caught up) again */
    uint64_t id;
    char address[HELLO_ADDR_MAX + 1]; /* of a node being removed: told when it is done */
    cluster_change_cb cb;
    void *data;
};

static int change_status(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case RAFT_CANTCHANGE:
        return -EBUSY; /* another change is in progress */
    case RAFT_BADID:
    case RAFT_NOTFOUND:
        return -ENOENT;
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
        return -EEXIST;
    case RAFT_BADROLE:
        return -EALREADY;
    default:
        return cluster_from_raft(rv);
    }
}

static void change_cb(struct raft_change *req, int status);

static int change_next(struct change *ch, enum change_step step)
{
    struct cluster *c = ch->c;
    ch->step = step;
    switch (step) {
    case STEP_PROMOTE:
        return raft_assign(&c->raft, &ch->req, ch->id, RAFT_VOTER, change_cb);
    case STEP_DEMOTE:
        return raft_assign(&c->raft, &ch->req, ch->id, RAFT_SPARE, change_cb);
    case STEP_REMOVE:
        return raft_remove(&c->raft, &ch->req, ch->id, change_cb);
    case STEP_ADD:
        break;
    }
    return RAFT_INVALID;
}

static void notice_dialed(void *data, int status, uv_tcp_t *stream, uint64_t peer_id)
{
    (void)data;
    (void)peer_id;
    if (status == 0) port_stream_close(stream);
}

static void change_done(struct change *ch, int status)
{
    /* A removed node no longer gets entries, so it cannot see its own removal: tell it (if
     * it is unreachable now, it stays out of the cluster all the same). */
    if (status == 0 && ch->step == STEP_REMOVE && ch->c->port && !ch->c->closing)
        port_dial(ch->c->port, ch->address, HELLO_CHANNEL_REMOVED, notice_dialed, NULL, NULL);
    if (ch->cb) ch->cb(ch->data, status);
    free(ch);
}

static void change_cb(struct raft_change *req, int status)
{
    struct change *ch = req->data;
    struct cluster *c = ch->c;
    if (status != 0 || c->closing) {
        cluster_logf(c, CLUSTER_LOG_WARNING, "membership change of node %llu failed: %s",
                     (unsigned long long)ch->id, raft_strerror(status));
        change_done(ch, status ? change_status(status) : CLUSTER_ESHUTDOWN);
        return;
    }
    enum change_step next;
    switch (ch->step) {
    case STEP_ADD:
        next = STEP_PROMOTE;
        break;
    case STEP_DEMOTE:
        next = ch->readd ? STEP_PROMOTE : STEP_REMOVE;
        break;
    default:
        cluster_logf(c, CLUSTER_LOG_NOTICE, "node %llu %s", (unsigned long long)ch->id,
                     ch->step == STEP_PROMOTE ? "is a voter now" : "removed");
        change_done(ch, 0);
        return;
    }
    int rv = change_next(ch, next);
    if (rv != 0) {
        cluster_logf(c, CLUSTER_LOG_WARNING, "membership change of node %llu: %s",
                     (unsigned long long)ch->id, raft_strerror(rv));
        change_done(ch, change_status(rv));
    }
}

static struct change *change_new(struct cluster *c, uint64_t id, cluster_change_cb cb, void *data)
{
    struct change *ch = calloc(1, sizeof *ch);
    if (!ch) return NULL;
    ch->c = c;
    ch->id = id;
    ch->cb = cb;
    ch->data = data;
    ch->req.data = ch;
    return ch;
}

static int change_check(const struct cluster *c)
{
    if (c->closing) return CLUSTER_ESHUTDOWN;
    if (!c->started) return CLUSTER_ENOTLEADER;
    if (!c->multi) return -EINVAL;
    if (!cluster_is_leader(c)) return CLUSTER_ENOTLEADER;
    return 0;
}

int cluster_add(struct cluster *c, uint64_t id, const char *address, cluster_change_cb cb,
                void *data)
{
    int rc = change_check(c);
    if (rc != 0) return rc;
    char h[256], s[16];
    if (id == 0 || !address || port_split_address(address, h, sizeof h, s, sizeof s) != 0)
        return -EINVAL;
    const struct raft_server *srv = conf_find(c, id);
    if (srv && srv->role == RAFT_VOTER) return -EALREADY;
    if (srv && strcmp(srv->address, address) != 0) return -EEXIST;
    struct change *ch = change_new(c, id, cb, data);
    if (!ch) return -ENOMEM;
    int rv;
    if (srv) {
        rv = change_next(ch, STEP_PROMOTE);
    } else {
        ch->step = STEP_ADD;
        rv = raft_add(&c->raft, &ch->req, id, address, change_cb);
    }
    if (rv != 0) {
        free(ch);
        return change_status(rv);
    }
    cluster_logf(c, CLUSTER_LOG_NOTICE, "adding node %llu at %s", (unsigned long long)id, address);
    return 0;
}

int cluster_remove(struct cluster *c, uint64_t id, cluster_change_cb cb, void *data)
{
    int rc = change_check(c);
    if (rc != 0) return rc;
    const struct raft_server *srv = conf_find(c, id);
    if (!srv) return -ENOENT;
    if (id == c->cfg.node_id) return -EBUSY; /* transfer leadership first */
    struct change *ch = change_new(c, id, cb, data);
    if (!ch) return -ENOMEM;
    snprintf(ch->address, sizeof ch->address, "%s", srv->address);
    int rv = change_next(ch, srv->role == RAFT_VOTER ? STEP_DEMOTE : STEP_REMOVE);
    if (rv != 0) {
        free(ch);
        return change_status(rv);
    }
    cluster_logf(c, CLUSTER_LOG_NOTICE, "removing node %llu", (unsigned long long)id);
    return 0;
}

struct transfer {
    struct raft_transfer req;
    struct cluster *c;
    cluster_change_cb cb;
    void *data;
};

static void transfer_cb(struct raft_transfer *req)
{
    struct transfer *tr = req->data;
    struct cluster *c = tr->c;
    raft_id id = 0;
    const char *addr = NULL;
    if (!c->closing || c->raft_ready) raft_leader(&c->raft, &id, &addr);
    int status = id != 0 && id != c->cfg.node_id ? 0 : -ETIMEDOUT;
    if (tr->cb) tr->cb(tr->data, status);
    free(tr);
}

int cluster_transfer(struct cluster *c, uint64_t id, cluster_change_cb cb, void *data)
{
    int rc = change_check(c);
    if (rc != 0) return rc;
    struct transfer *tr = calloc(1, sizeof *tr);
    if (!tr) return -ENOMEM;
    tr->c = c;
    tr->cb = cb;
    tr->data = data;
    tr->req.data = tr;
    int rv = raft_transfer(&c->raft, &tr->req, id, transfer_cb);
    if (rv != 0) {
        free(tr);
        return change_status(rv);
    }
    cluster_logf(c, CLUSTER_LOG_NOTICE, "transferring leadership to %s",
                 id ? "the chosen node" : "another voter");
    return 0;
}

/* ---- join: the member's side ---- */

struct join_answer {
    uv_write_t w;
    struct cluster *c;
    uv_tcp_t *stream;
    uint8_t buf[4 + 2 + 256];
};

static void answer_written(uv_write_t *w, int status)
{
    struct join_answer *a = (struct join_answer *)w;
    (void)status;
    port_stream_close(a->stream);
    free(a);
}

static void join_answer_send(struct join_answer *a, int status, const char *leader_addr)
{
    size_t alen = leader_addr ? strlen(leader_addr) : 0;
    if (alen > 255) alen = 0;
    uint32_t s = (uint32_t)status;
    a->buf[0] = (uint8_t)(s >> 24);
    a->buf[1] = (uint8_t)(s >> 16);
    a->buf[2] = (uint8_t)(s >> 8);
    a->buf[3] = (uint8_t)s;
    a->buf[4] = (uint8_t)(alen >> 8);
    a->buf[5] = (uint8_t)alen;
    if (alen) memcpy(a->buf + 6, leader_addr, alen);
    uv_buf_t b = uv_buf_init((char *)a->buf, (unsigned)(6 + alen));
    if (a->c->closing || uv_write(&a->w, (uv_stream_t *)a->stream, &b, 1, answer_written) != 0) {
        port_stream_close(a->stream);
        free(a);
    }
}

static void join_added(void *data, int status)
{
    join_answer_send(data, status, NULL);
}

static struct join_answer *join_answer_new(struct cluster *c, uv_tcp_t *stream)
{
    struct join_answer *a = calloc(1, sizeof *a);
    if (!a) {
        port_stream_close(stream);
        return NULL;
    }
    a->c = c;
    a->stream = stream;
    return a;
}

void members_answer(struct cluster *c, uv_tcp_t *stream, int status, const char *leader_addr)
{
    struct join_answer *a = join_answer_new(c, stream);
    if (a) join_answer_send(a, status, leader_addr);
}

const char *members_leader_address(const struct cluster *c)
{
    if (!c->started || c->leader_id == 0) return NULL;
    const struct raft_server *l = conf_find(c, c->leader_id);
    return l ? l->address : NULL;
}

/* A voter asking to join with an empty Raft log has lost its state: it must not vote again
 * before it is caught up, so it becomes a spare and is promoted once it has the log. */
static int readd(struct cluster *c, uint64_t id, cluster_change_cb cb, void *data)
{
    struct change *ch = change_new(c, id, cb, data);
    if (!ch) return -ENOMEM;
    ch->readd = true;
    int rv = change_next(ch, STEP_DEMOTE);
    if (rv != 0) {
        free(ch);
        return change_status(rv);
    }
    cluster_logf(c, CLUSTER_LOG_WARNING,
                 "node %llu lost its state: re-adding it (spare, caught up, then voter)",
                 (unsigned long long)id);
    return 0;
}

void members_accept_join(struct cluster *c, uint64_t id, const char *address, uv_tcp_t *stream,
                         bool empty_log)
{
    struct join_answer *a = join_answer_new(c, stream);
    if (!a) return;
    if (!cluster_is_leader(c)) {
        join_answer_send(a, CLUSTER_ENOTLEADER, members_leader_address(c));
        return;
    }
    const struct raft_server *srv = conf_find(c, id);
    int rc;
    if (empty_log && srv && srv->role == RAFT_VOTER && id != c->cfg.node_id &&
        strcmp(srv->address, address) == 0 && (rc = change_check(c)) == 0)
        rc = readd(c, id, join_added, a);
    else
        rc = cluster_add(c, id, address, join_added, a);
    if (rc == 0) return; /* join_added answers */
    if (rc == -EALREADY) rc = 0;
    join_answer_send(a, rc, NULL);
}

/* ---- join: the new node's side ---- */

static void join_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct cluster *c = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)c->join_buf + c->join_len,
                       (unsigned)(sizeof c->join_buf - c->join_len));
}

static void join_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct cluster *c = s->data;
    (void)buf;
    if (nread > 0) c->join_len += (size_t)nread;
    bool whole =
        c->join_len >= 6 && c->join_len >= 6 + ((size_t)c->join_buf[4] << 8 | c->join_buf[5]);
    if (!whole && nread >= 0 && c->join_len < sizeof c->join_buf) return;
    port_stream_close(c->join_stream);
    c->join_stream = NULL;
    if (!whole) return; /* retried by the tick */
    int status = (int)((uint32_t)c->join_buf[0] << 24 | (uint32_t)c->join_buf[1] << 16 |
                       (uint32_t)c->join_buf[2] << 8 | c->join_buf[3]);
    size_t alen = (size_t)c->join_buf[4] << 8 | c->join_buf[5];
    if (status == CLUSTER_ENOTLEADER && alen > 0) {
        char *t = malloc(alen + 1);
        if (t) {
            memcpy(t, c->join_buf + 6, alen);
            t[alen] = '\0';
            cluster_logf(c, CLUSTER_LOG_INFO, "join: asking the leader at %s", t);
            free(c->join_target);
            c->join_target = t;
            c->join_next_ms = 0;
        }
        return;
    }
    if (status == 0) {
        c->rejoin = false;
        cluster_logf(c, CLUSTER_LOG_NOTICE, "joined the cluster as node %llu",
                     (unsigned long long)c->cfg.node_id);
    } else
        cluster_logf(
            c, status == -EBUSY ? CLUSTER_LOG_INFO : CLUSTER_LOG_WARNING, "join refused: %s",
            status == -EBUSY ? "a membership change is in progress" : cluster_strerror(status));
}

/* After a failed attempt: the next address to ask. The leader we were sent to may be gone:
 * ask the configured member again (the next of the hosts its name resolves to), or the next
 * initial member when this node joins because its data was lost (probe.c). */
static void join_next_target(struct cluster *c)
{
    c->join_attempt++;
    const char *next = c->cfg.join;
    if (!next && c->cfg.n_peers > 0) {
        const struct cluster_peer *p = &c->cfg.peers[c->join_attempt % c->cfg.n_peers];
        if (p->id == c->cfg.node_id) p = &c->cfg.peers[++c->join_attempt % c->cfg.n_peers];
        next = p->address;
    }
    if (!next || strcmp(c->join_target, next) == 0) return;
    char *t = strdup(next);
    if (t) {
        free(c->join_target);
        c->join_target = t;
    }
}

static void join_dialed(void *data, int status, uv_tcp_t *stream, uint64_t peer_id)
{
    struct cluster *c = data;
    c->join_dial = NULL;
    if (status == 0 && peer_id == c->cfg.node_id) {
        /* A name of several hosts (a Kubernetes headless Service) that includes this one. */
        port_stream_close(stream);
        cluster_logf(c, CLUSTER_LOG_INFO, "join via %s: reached this node; trying the next host",
                     c->join_target);
        c->join_attempt++;
        return;
    }
    if (status != 0) {
        cluster_logf(c, CLUSTER_LOG_INFO, "join via %s: %s", c->join_target, uv_strerror(status));
        join_next_target(c);
        return;
    }
    if (c->closing) {
        port_stream_close(stream);
        return;
    }
    c->join_stream = stream;
    stream->data = c;
    c->join_len = 0;
    if (uv_read_start((uv_stream_t *)stream, join_alloc, join_read) != 0) {
        port_stream_close(stream);
        c->join_stream = NULL;
    }
}

static void became_removed(struct cluster *c)
{
    c->removed = true;
    cluster_logf(c, CLUSTER_LOG_WARNING,
                 "this node was removed from the cluster: it no longer serves cluster state");
    if (c->ev.removed) c->ev.removed(c->ev_ctx);
}

void members_removed_notice(struct cluster *c, uint64_t from_id)
{
    /* The hello has proven that the sender knows the cluster secret. This node's own view
     * of the configuration cannot confirm it: the demotion and the removal were appended
     * while it no longer received entries. */
    if (c->removed || from_id == c->cfg.node_id) return;
    cluster_logf(c, CLUSTER_LOG_INFO, "node %llu says this node was removed",
                 (unsigned long long)from_id);
    became_removed(c);
}

void members_tick(struct cluster *c, uint64_t now_ms)
{
    bool in = members_self_in_config(c);
    if (in) {
        c->was_member = true;
    } else if (c->was_member && !c->removed && c->raft.configuration.n > 0) {
        became_removed(c);
    }
    /* Ask until this node is a voter: a join cut short (the leader died between the add
     * and the promotion) leaves it a spare, which the next leader promotes on request. */
    const struct raft_server *self = conf_find(c, c->cfg.node_id);
    bool voter = self && self->role == RAFT_VOTER;
    if (!c->join_target || (voter && !c->rejoin) || c->removed || c->join_dial || c->join_stream ||
        now_ms < c->join_next_ms)
        return;
    c->join_next_ms = now_ms + JOIN_RETRY_MS;
    uint8_t channel = c->rejoin ? HELLO_CHANNEL_REJOIN : HELLO_CHANNEL_JOIN;
    if (port_dial_nth(c->port, c->join_target, c->join_attempt, channel, join_dialed, c,
                      &c->join_dial) != 0) {
        c->join_dial = NULL;
        cluster_logf(c, CLUSTER_LOG_WARNING, "join: bad address %s", c->join_target);
    }
}
