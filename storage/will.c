/* The wills table, key client_id \0 (layout in record.h). */
#include <errno.h>

#include "env.h"
#include "record.h"

static void enc_will(struct rec_writer *w, const void *rec)
{
    const struct store_will *wl = rec;
    rec_put_u8(w, RECORD_VERSION);
    rec_put_u8(w, wl->msg.qos);
    rec_put_u8(w, wl->msg.retain ? 1 : 0);
    rec_put_u32(w, wl->delay_interval_s);
    rec_put_message_tail(w, &wl->msg);
}

static int dec_will(const MDB_val *key, const MDB_val *val, struct store_will *out)
{
    const char *k = key->mv_data;
    if (key->mv_size < 1 || k[key->mv_size - 1] != 0) return STORE_ECORRUPT;
    *out = (struct store_will){0};
    out->client_id.ptr = k;
    out->client_id.len = key->mv_size - 1;
    struct rec_reader r = {.p = val->mv_data, .left = val->mv_size};
    uint8_t version, retain;
    if (!rec_get_u8(&r, &version) || version != RECORD_VERSION || !rec_get_u8(&r, &out->msg.qos) ||
        !rec_get_u8(&r, &retain) || !rec_get_u32(&r, &out->delay_interval_s) ||
        !rec_get_message_tail(&r, &out->msg) || !rec_done(&r) || out->msg.qos > 2 || retain > 1)
        return STORE_ECORRUPT;
    out->msg.retain = retain;
    return 0;
}

int store_will_put(struct store_txn *txn, const struct store_will *w)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val key;
    int rc = store_key2(buf, w->client_id.ptr, w->client_id.len, NULL, 0, false, &key);
    if (rc != 0) return rc;
    return store_put_rec(txn, DB_WILLS, &key, enc_will, w);
}

int store_will_get(struct store_txn *txn, const char *client_id, size_t len, struct store_will *out)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val key, val;
    int rc = store_key2(buf, client_id, len, NULL, 0, false, &key);
    if (rc != 0) return rc == -ENAMETOOLONG ? -ENOENT : rc;
    rc = store_get_val(txn, DB_WILLS, &key, &val);
    return rc != 0 ? rc : dec_will(&key, &val, out);
}

int store_will_del(struct store_txn *txn, const char *client_id, size_t len)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val key;
    int rc = store_key2(buf, client_id, len, NULL, 0, false, &key);
    if (rc != 0) return rc == -ENAMETOOLONG ? -ENOENT : rc;
    return store_del_key(txn, DB_WILLS, &key);
}

struct will_scan {
    store_will_cb cb;
    void *ctx;
};

static int will_scan_fn(void *ctx, const MDB_val *key, const MDB_val *val)
{
    struct will_scan *sc = ctx;
    struct store_will w;
    int rc = dec_will(key, val, &w);
    return rc != 0 ? rc : sc->cb(sc->ctx, &w);
}

int store_will_foreach(struct store_txn *txn, store_will_cb cb, void *ctx)
{
    struct will_scan sc = {cb, ctx};
    return store_scan(txn, DB_WILLS, NULL, 0, will_scan_fn, &sc);
}
