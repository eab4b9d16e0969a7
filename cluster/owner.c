/* Topic ownership from committed state: the live-member set kept from the nodes table and
 * the NODE_UP / NODE_DOWN commands, and the ring built over it (ring.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

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

/* Rebuilds the ring from the verdicts; fires ring_changed when it changed. The digest covers
 * each live member's id and the instant of its committed verdict, so that a member that went
 * down and came back makes another view than the one before (c->nodes is sorted by id). */
static int owner_rebuild(struct cluster *c)
{
    uint64_t *ids = malloc((c->n_nodes + 1) * sizeof *ids);
    if (!ids) return -ENOMEM;
    size_t k = 0;
    uint64_t d = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < c->n_nodes; i++) {
        if (!c->nodes[i].known || !c->nodes[i].up) continue;
        ids[k++] = c->nodes[i].id;
        uint64_t pair[2] = {c->nodes[i].id, c->nodes[i].changed_at_ms};
        d = XXH3_64bits_withSeed(pair, sizeof pair, d);
    }
    int rc = ring_set_members(&c->ring, ids, k);
    free(ids);
    if (rc < 0) return rc;
    c->ring.digest = d;
    c->ring_dirty = false;
    bool epoch_moved = c->ring_epoch != c->ring_epoch_built;
    c->ring_epoch_built = c->ring_epoch;
    if ((rc == 1 || epoch_moved) && c->started && c->ev.ring_changed) c->ev.ring_changed(c->ev_ctx);
    return 0;
}

static int load_one(void *ctx, const struct store_node *n)
{
    struct cluster *c = ctx;
    struct node_state *ns = owner_node_add(c, n->node_id);
    if (!ns) return -ENOMEM;
    ns->known = true;
    ns->up = n->up;
    ns->changed_at_ms = n->changed_at_ms;
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
    if (rc == 0) rc = store_meta_ring_epoch(t, &c->ring_epoch);
    store_txn_end(t);
    if (rc != 0) return rc;
    return owner_rebuild(c);
}

void owner_applied(struct cluster *c, const struct cluster_cmd *cmd, uint64_t index)
{
    if (cmd->type != CLUSTER_CMD_NODE_UP && cmd->type != CLUSTER_CMD_NODE_DOWN) return;
    c->ring_epoch = ring_epoch_next(c->ring_epoch, index);
    struct node_state *ns = owner_node_add(c, cmd->node.node_id);
    if (!ns) {
        c->ring_dirty = true; /* reloaded from storage below */
        return;
    }
    ns->known = true;
    ns->up = cmd->type == CLUSTER_CMD_NODE_UP;
    ns->changed_at_ms = cmd->node.at_ms;
    if (!ns->up) ns->down_epoch = c->ring_epoch;
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

uint64_t cluster_ring_digest(const struct cluster *c)
{
    return c->multi ? c->ring.digest : 0;
}

uint64_t cluster_ring_epoch(const struct cluster *c)
{
    /* The ring is rebuilt after each applied batch: until then the epoch stays with it. */
    return c->multi ? c->ring_epoch_built : 0;
}

uint64_t cluster_node_down_epoch(struct cluster *c, uint64_t id)
{
    struct node_state *ns = c->multi ? owner_node(c, id) : NULL;
    return ns ? ns->down_epoch : 0;
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
