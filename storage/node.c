/* The nodes table: the committed verdict on each cluster member, key node_id (big-endian). */
#include "env.h"
#include "record.h"

static void enc_node(struct rec_writer *w, const void *rec)
{
    const struct store_node *n = rec;
    rec_put_u8(w, RECORD_VERSION);
    rec_put_u8(w, n->up ? 1 : 0);
    rec_put_u64(w, n->changed_at_ms);
    rec_put_str(w, n->address);
}

int store_node_put(struct store_txn *txn, const struct store_node *n)
{
    uint8_t k[8];
    rec_be64(k, n->node_id);
    MDB_val key = {.mv_size = 8, .mv_data = k};
    return store_put_rec(txn, DB_NODES, &key, enc_node, n);
}

struct node_scan {
    store_node_cb cb;
    void *ctx;
};

static int node_scan_fn(void *ctx, const MDB_val *key, const MDB_val *val)
{
    struct node_scan *sc = ctx;
    struct store_node n = {0};
    struct rec_reader r = {.p = val->mv_data, .left = val->mv_size};
    uint8_t version, up;
    if (key->mv_size != 8 || !rec_get_u8(&r, &version) || version != RECORD_VERSION ||
        !rec_get_u8(&r, &up) || !rec_get_u64(&r, &n.changed_at_ms) ||
        !rec_get_str(&r, &n.address) || !rec_done(&r) || up > 1)
        return STORE_ECORRUPT;
    n.node_id = rec_get_be64(key->mv_data);
    n.up = up;
    return sc->cb(sc->ctx, &n);
}

int store_node_foreach(struct store_txn *txn, store_node_cb cb, void *ctx)
{
    struct node_scan sc = {cb, ctx};
    return store_scan(txn, DB_NODES, NULL, 0, node_scan_fn, &sc);
}
