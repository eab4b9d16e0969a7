/* The meta table: format version, last applied Raft index, ring epoch, cluster id. */
#include <errno.h>

#include "env.h"
#include "record.h"

static MDB_val meta_key(const char *name, size_t len)
{
    return (MDB_val){.mv_size = len, .mv_data = (void *)name};
}
#define META_KEY(lit) meta_key(lit, sizeof lit - 1)

int store_meta_last_applied(struct store_txn *txn, uint64_t *out)
{
    MDB_val key = META_KEY("last_applied"), val;
    int rc = store_get_val(txn, DB_META, &key, &val);
    if (rc == -ENOENT) {
        *out = 0;
        return 0;
    }
    if (rc != 0) return rc;
    struct rec_reader r = {.p = val.mv_data, .left = val.mv_size};
    if (!rec_get_u64(&r, out) || !rec_done(&r)) return STORE_ECORRUPT;
    return 0;
}

static void enc_u64(struct rec_writer *w, const void *rec)
{
    rec_put_u64(w, *(const uint64_t *)rec);
}

int store_meta_set_last_applied(struct store_txn *txn, uint64_t index)
{
    MDB_val key = META_KEY("last_applied");
    return store_put_rec(txn, DB_META, &key, enc_u64, &index);
}

int store_meta_ring_epoch(struct store_txn *txn, uint64_t *out)
{
    MDB_val key = META_KEY("ring_epoch"), val;
    int rc = store_get_val(txn, DB_META, &key, &val);
    if (rc == -ENOENT) {
        *out = 0;
        return 0;
    }
    if (rc != 0) return rc;
    struct rec_reader r = {.p = val.mv_data, .left = val.mv_size};
    if (!rec_get_u64(&r, out) || !rec_done(&r)) return STORE_ECORRUPT;
    return 0;
}

int store_meta_set_ring_epoch(struct store_txn *txn, uint64_t epoch)
{
    MDB_val key = META_KEY("ring_epoch");
    return store_put_rec(txn, DB_META, &key, enc_u64, &epoch);
}

int store_meta_cluster_id(struct store_txn *txn, struct store_blob *out)
{
    MDB_val key = META_KEY("cluster_id"), val;
    int rc = store_get_val(txn, DB_META, &key, &val);
    if (rc != 0) return rc;
    out->ptr = val.mv_data;
    out->len = val.mv_size;
    return 0;
}

static void enc_blob_raw(struct rec_writer *w, const void *rec)
{
    const struct store_blob *b = rec;
    rec_put_bytes(w, b->ptr, b->len);
}

int store_meta_set_cluster_id(struct store_txn *txn, const void *id, size_t len)
{
    if (len == 0 || len > 64) return -EINVAL;
    MDB_val key = META_KEY("cluster_id");
    struct store_blob b = {.ptr = id, .len = len};
    return store_put_rec(txn, DB_META, &key, enc_blob_raw, &b);
}

int store_meta_format_version(struct store_txn *txn, uint32_t *out)
{
    MDB_val key = META_KEY("format_version"), val;
    int rc = store_get_val(txn, DB_META, &key, &val);
    if (rc != 0) return rc;
    struct rec_reader r = {.p = val.mv_data, .left = val.mv_size};
    if (!rec_get_u32(&r, out) || !rec_done(&r)) return STORE_ECORRUPT;
    return 0;
}
