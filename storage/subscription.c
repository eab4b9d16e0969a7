/* The subscriptions table, key client_id \0 filter \0 (layout in record.h). */
#include <errno.h>
#include <string.h>

#include "env.h"
#include "record.h"

static void enc_sub(struct rec_writer *w, const void *rec)
{
    const struct store_subscription *s = rec;
    rec_put_u8(w, RECORD_VERSION);
    rec_put_u8(w, s->options);
    rec_put_u32(w, s->subscription_id);
}

static int dec_sub(const MDB_val *key, const MDB_val *val, struct store_subscription *s)
{
    const char *k = key->mv_data;
    const char *nul = key->mv_size ? memchr(k, 0, key->mv_size) : NULL;
    if (!nul || key->mv_size < 2 || k[key->mv_size - 1] != 0) return STORE_ECORRUPT;
    s->client_id.ptr = k;
    s->client_id.len = (size_t)(nul - k);
    s->filter.ptr = nul + 1;
    s->filter.len = key->mv_size - s->client_id.len - 2;
    if (memchr(s->filter.ptr, 0, s->filter.len)) return STORE_ECORRUPT;
    struct rec_reader r = {.p = val->mv_data, .left = val->mv_size};
    uint8_t version;
    if (!rec_get_u8(&r, &version) || version != RECORD_VERSION || !rec_get_u8(&r, &s->options) ||
        !rec_get_u32(&r, &s->subscription_id) || !rec_done(&r))
        return STORE_ECORRUPT;
    return 0;
}

int store_sub_put(struct store_txn *txn, const struct store_subscription *s)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val key;
    int rc = store_key2(buf, s->client_id.ptr, s->client_id.len, s->filter.ptr, s->filter.len, true,
                        &key);
    if (rc != 0) return rc;
    return store_put_rec(txn, DB_SUBS, &key, enc_sub, s);
}

int store_sub_del(struct store_txn *txn, const char *client_id, size_t client_len,
                  const char *filter, size_t filter_len)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val key;
    int rc = store_key2(buf, client_id, client_len, filter, filter_len, true, &key);
    if (rc != 0) return rc == -ENAMETOOLONG ? -ENOENT : rc;
    return store_del_key(txn, DB_SUBS, &key);
}

int store_sub_get(struct store_txn *txn, const char *client_id, size_t client_len,
                  const char *filter, size_t filter_len, struct store_subscription *out)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val key, val;
    int rc = store_key2(buf, client_id, client_len, filter, filter_len, true, &key);
    if (rc != 0) return rc == -ENAMETOOLONG ? -ENOENT : rc;
    rc = store_get_val(txn, DB_SUBS, &key, &val);
    return rc != 0 ? rc : dec_sub(&key, &val, out);
}

struct sub_scan {
    store_subscription_cb cb;
    void *ctx;
};

static int sub_scan_fn(void *ctx, const MDB_val *key, const MDB_val *val)
{
    struct sub_scan *sc = ctx;
    struct store_subscription s;
    int rc = dec_sub(key, val, &s);
    return rc != 0 ? rc : sc->cb(sc->ctx, &s);
}

int store_sub_foreach(struct store_txn *txn, store_subscription_cb cb, void *ctx)
{
    struct sub_scan sc = {cb, ctx};
    return store_scan(txn, DB_SUBS, NULL, 0, sub_scan_fn, &sc);
}

int store_sub_foreach_client(struct store_txn *txn, const char *client_id, size_t len,
                             store_subscription_cb cb, void *ctx)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val prefix;
    int rc = store_key2(buf, client_id, len, NULL, 0, false, &prefix);
    if (rc != 0) return rc == -ENAMETOOLONG ? 0 : rc;
    struct sub_scan sc = {cb, ctx};
    return store_scan(txn, DB_SUBS, prefix.mv_data, prefix.mv_size, sub_scan_fn, &sc);
}

int store_sub_del_client(struct store_txn *txn, const char *client_id, size_t len, size_t *n)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val prefix;
    if (n) *n = 0;
    int rc = store_key2(buf, client_id, len, NULL, 0, false, &prefix);
    if (rc != 0) return rc == -ENAMETOOLONG ? 0 : rc;
    return store_del_prefix(txn, DB_SUBS, prefix.mv_data, prefix.mv_size, n);
}
