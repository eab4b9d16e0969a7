/* The retained table, key topic \0 (layout in record.h). */
#include <errno.h>

#include "env.h"
#include "record.h"

static void enc_retained(struct rec_writer *w, const void *rec)
{
    const struct store_retained *r = rec;
    rec_put_u8(w, RECORD_VERSION);
    rec_put_u8(w, r->msg.qos);
    rec_put_u64(w, r->msg.expires_at_ms);
    rec_put_str(w, r->publisher_client_id);
    rec_put_blob(w, r->msg.props);
    rec_put_blob(w, r->msg.payload);
}

static int dec_retained(const MDB_val *key, const MDB_val *val, struct store_retained *out)
{
    const char *k = key->mv_data;
    if (key->mv_size < 1 || k[key->mv_size - 1] != 0) return STORE_ECORRUPT;
    *out = (struct store_retained){0};
    out->msg.topic.ptr = k;
    out->msg.topic.len = key->mv_size - 1;
    out->msg.retain = true;
    struct rec_reader r = {.p = val->mv_data, .left = val->mv_size};
    uint8_t version;
    if (!rec_get_u8(&r, &version) || version != RECORD_VERSION || !rec_get_u8(&r, &out->msg.qos) ||
        !rec_get_u64(&r, &out->msg.expires_at_ms) || !rec_get_str(&r, &out->publisher_client_id) ||
        !rec_get_blob(&r, &out->msg.props) || !rec_get_blob(&r, &out->msg.payload) ||
        !rec_done(&r) || out->msg.qos > 2)
        return STORE_ECORRUPT;
    return 0;
}

int store_retain_put(struct store_txn *txn, const struct store_retained *r)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val key;
    int rc = store_key2(buf, r->msg.topic.ptr, r->msg.topic.len, NULL, 0, false, &key);
    if (rc != 0) return rc;
    return store_put_rec(txn, DB_RETAINED, &key, enc_retained, r);
}

int store_retain_get(struct store_txn *txn, const char *topic, size_t len,
                     struct store_retained *out)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val key, val;
    int rc = store_key2(buf, topic, len, NULL, 0, false, &key);
    if (rc != 0) return rc == -ENAMETOOLONG ? -ENOENT : rc;
    rc = store_get_val(txn, DB_RETAINED, &key, &val);
    return rc != 0 ? rc : dec_retained(&key, &val, out);
}

int store_retain_del(struct store_txn *txn, const char *topic, size_t len)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val key;
    int rc = store_key2(buf, topic, len, NULL, 0, false, &key);
    if (rc != 0) return rc == -ENAMETOOLONG ? -ENOENT : rc;
    return store_del_key(txn, DB_RETAINED, &key);
}

struct retained_scan {
    store_retained_cb cb;
    void *ctx;
};

static int retained_scan_fn(void *ctx, const MDB_val *key, const MDB_val *val)
{
    struct retained_scan *sc = ctx;
    struct store_retained r;
    int rc = dec_retained(key, val, &r);
    return rc != 0 ? rc : sc->cb(sc->ctx, &r);
}

int store_retain_foreach(struct store_txn *txn, store_retained_cb cb, void *ctx)
{
    struct retained_scan sc = {cb, ctx};
    return store_scan(txn, DB_RETAINED, NULL, 0, retained_scan_fn, &sc);
}
