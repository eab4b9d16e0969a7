/* Node liveness, decided by the leader and committed so that every node derives the same
 * ring: a voter or standby this leader has heard from (any node-link frame, pings every
 * heartbeat) within node_down_ms is up, one it has not is down. The leader proposes NODE_UP /
 * NODE_DOWN when its view differs from the committed verdict (spares and removed nodes count
 * as down: they do not hold the replicated state). For node_down_ms after winning an election
 * it declares nobody down (its links are still coming up). A voter or standby without any
 * committed verdict that it has not heard from is declared down too, once that time passed.
 *
 * When a NODE_DOWN is applied on the leader, or a node is down when a new leader takes over,
 * the leader proposes the end of that node's sessions: SESSION_DELETE for non-persistent ones
 * (their clients are gone with their node), SESSION_CLOSE for persistent connected ones (they
 * stay, disconnected, and expire by their own rules).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "cluster_impl.h"

struct verdict {
    struct cluster *c;
    uint64_t id;
};

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static void verdict_cb(void *data, int status, uint64_t index)
{
    struct verdict *v = data;
    (void)index;
    struct node_state *ns = owner_node(v->c, v->id);
    if (ns) ns->proposing = false;
    if (status != 0 && status != CLUSTER_ESHUTDOWN)
        cluster_logf(v->c, CLUSTER_LOG_INFO, "liveness verdict on node %llu: %s",
                     (unsigned long long)v->id, cluster_strerror(status));
    free(v);
}

static void propose_verdict(struct cluster *c, uint64_t id, const char *address, bool up)
{
    struct node_state *ns = owner_node_add(c, id);
    struct verdict *v = malloc(sizeof *v);
    if (!ns || !v) {
        free(v);
        return;
    }
    *v = (struct verdict){c, id};
    struct cluster_cmd cmd = {.type = up ? CLUSTER_CMD_NODE_UP : CLUSTER_CMD_NODE_DOWN};
    cmd.node.node_id = id;
    cmd.node.address = (struct store_str){address ? address : "", address ? strlen(address) : 0};
    cmd.node.at_ms = wall_ms();
    int rc = cluster_propose(c, &cmd, verdict_cb, v);
    if (rc != 0) {
        free(v);
        return;
    }
    ns->proposing = true;
    cluster_logf(c, CLUSTER_LOG_NOTICE, "node %llu is %s", (unsigned long long)id,
                 up ? "up" : "down");
}

void liveness_tick(struct cluster *c, uint64_t now_ms)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    bool grace = now_ms - c->leader_since < c->cfg.node_down_ms;
    for (unsigned i = 0; i < conf->n; i++) {
        const struct raft_server *s = &conf->servers[i];
        bool alive;
        if (s->id == c->cfg.node_id) {
            alive = true;
        } else {
            uint64_t heard = link_last_heard(c->link, s->id);
            alive = heard != 0 && now_ms - heard < c->cfg.node_down_ms;
        }
        if (s->role == RAFT_SPARE) alive = false;
        struct node_state *ns = owner_node(c, s->id);
        if (ns && ns->proposing) continue;
        bool known = ns && ns->known;
        bool up = known && ns->up;
        if (alive && !up)
            propose_verdict(c, s->id, s->address, true);
        else if (!alive && up && (!grace || s->role == RAFT_SPARE))
            propose_verdict(c, s->id, s->address, false);
        else if (!alive && !known && s->role != RAFT_SPARE && !grace)
            /* Never given a verdict (it died, as leader say, before one was committed): its
             * clients' sessions end only once it is declared down. */
            propose_verdict(c, s->id, s->address, false);
    }
    /* Members that left the configuration. */
    for (size_t i = 0; i < c->n_nodes; i++) {
        struct node_state *ns = &c->nodes[i];
        if (!ns->known || !ns->up || ns->proposing) continue;
        bool in = false;
        for (unsigned j = 0; j < conf->n && !in; j++)
            in = conf->servers[j].id == ns->id;
        if (!in) {
            propose_verdict(c, ns->id, NULL, false);
            ns = &c->nodes[i]; /* propose may not move the array, but stay safe */
        }
    }
}

struct orphans {
    uint64_t node;
    struct cluster_cmd *cmds;
    char **ids;
    size_t n, cap;
};

static int collect(void *ctx, const struct store_session *s)
{
    struct orphans *o = ctx;
    if (s->node_id != o->node) return 0;
    bool persistent = s->flags & STORE_SESSION_PERSISTENT;
    if (persistent && !s->connected) return 0;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        struct cluster_cmd *nc = realloc(o->cmds, cap * sizeof *nc);
        if (!nc) return -ENOMEM;
        o->cmds = nc;
        char **ni = realloc(o->ids, cap * sizeof *ni);
        if (!ni) return -ENOMEM;
        o->ids = ni;
        o->cap = cap;
    }
    char *id = malloc(s->client_id.len + 1);
    if (!id) return -ENOMEM;
    memcpy(id, s->client_id.ptr, s->client_id.len);
    id[s->client_id.len] = '\0';
    o->ids[o->n] = id;
    o->cmds[o->n] = (struct cluster_cmd){.type = persistent ? CLUSTER_CMD_SESSION_CLOSE
                                                            : CLUSTER_CMD_SESSION_DELETE};
    o->cmds[o->n].client.client_id = (struct store_str){id, s->client_id.len};
    o->cmds[o->n].client.at_ms = wall_ms();
    o->n++;
    return 0;
}

static void end_sessions_of(struct cluster *c, uint64_t node)
{
    if (!cluster_is_leader(c) || node == c->cfg.node_id) return;
    struct orphans o = {.node = node};
    struct store_txn *t;
    int rc = store_read_begin(c->store, &t);
    if (rc == 0) {
        rc = store_session_foreach(t, collect, &o);
        store_txn_end(t);
    }
    size_t proposed = 0;
    for (size_t i = 0; i < o.n; i++) {
        if (rc == 0 && cluster_propose(c, &o.cmds[i], NULL, NULL) == 0) proposed++;
        free(o.ids[i]);
    }
    free(o.ids);
    free(o.cmds);
    if (proposed)
        cluster_logf(c, CLUSTER_LOG_NOTICE, "ending %zu sessions of down node %llu", proposed,
                     (unsigned long long)node);
}

void liveness_node_down_applied(struct cluster *c, uint64_t node_id)
{
    end_sessions_of(c, node_id);
}

void liveness_became_leader(struct cluster *c)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].known && !c->nodes[i].up) end_sessions_of(c, c->nodes[i].id);
}
