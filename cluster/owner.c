/* Topic ownership from committed state: the live-member set kept from the nodes table and
 * the NODE_UP / NODE_DOWN commands, and the ring built over it (ring.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_impl.h"

struct node_state *owner_node(struct cluster *c, uint64_t id)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].id == id) return &c->nodes[i];
    return NULL;
}

struct node_state *owner_node_add(struct cluster *c, uint64_t id)
{
    struct node_state *ns = owner_node(c, id);
    if (ns) return ns;
    struct node_state *n = realloc(c->nodes, (c->n_nodes + 1) * sizeof *n);
    if (!n) return NULL;
    c->nodes = n;
    size_t i = c->n_nodes;
    while (i > 0 && n[i - 1].id > id) {
        n[i] = n[i - 1];
        i--;
    }
    n[i] = (struct node_state){.id = id};
    c->n_nodes++;
    return &n[i];
}

/* Rebuilds the ring from the verdicts; fires ring_changed when it changed. */
static int owner_rebuild(struct cluster *c)
{
    uint64_t *ids = malloc((c->n_nodes + 1) * sizeof *ids);
    if (!ids) return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].known && c->nodes[i].up) ids[k++] = c->nodes[i].id;
    int rc = ring_set_members(&c->ring, ids, k);
    free(ids);
    if (rc < 0) return rc;
    c->ring_dirty = false;
    if (rc == 1 && c->started && c->ev.ring_changed) c->ev.ring_changed(c->ev_ctx);
    return 0;
}

static int load_one(void *ctx, const struct store_node *n)
{
    struct cluster *c = ctx;
    struct node_state *ns = owner_node_add(c, n->node_id);
    if (!ns) return -ENOMEM;
    ns->known = true;
    ns->up = n->up;
    return 0;
}

int owner_load(struct cluster *c)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        c->nodes[i].known = c->nodes[i].up = false;
    struct store_txn *t;
    int rc = store_read_begin(c->store, &t);
    if (rc != 0) return rc;
    rc = store_node_foreach(t, load_one, c);
    store_txn_end(t);
    if (rc != 0) return rc;
    return owner_rebuild(c);
}

void owner_applied(struct cluster *c, const struct cluster_cmd *cmd)
{
    if (cmd->type != CLUSTER_CMD_NODE_UP && cmd->type != CLUSTER_CMD_NODE_DOWN) return;
    struct node_state *ns = owner_node_add(c, cmd->node.node_id);
    if (!ns) {
        c->ring_dirty = true; /* reloaded from storage below */
        return;
    }
    ns->known = true;
    ns->up = cmd->type == CLUSTER_CMD_NODE_UP;
    c->ring_dirty = true;
}

void owner_refresh(struct cluster *c)
{
    if (!c->ring_dirty) return;
    if (owner_rebuild(c) != 0) owner_load(c);
}

uint64_t cluster_owner(struct cluster *c, const char *topic, size_t len)
{
    if (!c->multi) return c->cfg.node_id;
    return ring_owner(&c->ring, topic, len);
}

size_t cluster_live_members(const struct cluster *c, uint64_t *ids, size_t cap)
{
    if (!c->multi) {
        if (cap) ids[0] = c->cfg.node_id;
        return 1;
    }
    for (size_t i = 0; i < c->ring.n && i < cap; i++)
        ids[i] = c->ring.members[i];
    return c->ring.n;
}
