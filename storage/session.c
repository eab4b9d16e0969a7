/* The sessions table (layout in record.h), and the purge of everything of one client. */
#include <errno.h>

#include "env.h"
#include "record.h"

static void enc_session(struct rec_writer *w, const void *rec)
{
    const struct store_session *s = rec;
    rec_put_u8(w, RECORD_VERSION);
    rec_put_u8(w, s->flags);
    rec_put_u8(w, s->protocol_version);
    rec_put_u8(w, s->connected ? 1 : 0);
    rec_put_u32(w, s->expiry_interval_s);
    rec_put_u64(w, s->node_id);
    rec_put_u64(w, s->created_at_ms);
    rec_put_u64(w, s->disconnected_at_ms);
}

static int dec_session(const MDB_val *key, const MDB_val *val, struct store_session *s)
{
    const char *k = key->mv_data;
    if (key->mv_size < 1 || k[key->mv_size - 1] != 0) return STORE_ECORRUPT;
    s->client_id.ptr = k;
    s->client_id.len = key->mv_size - 1;
    struct rec_reader r = {.p = val->mv_data, .left = val->mv_size};
    uint8_t version, connected;
    if (!rec_get_u8(&r, &version) || version != RECORD_VERSION || !rec_get_u8(&r, &s->flags) ||
        !rec_get_u8(&r, &s->protocol_version) || !rec_get_u8(&r, &connected) ||
        !rec_get_u32(&r, &s->expiry_interval_s) || !rec_get_u64(&r, &s->node_id) ||
        !rec_get_u64(&r, &s->created_at_ms) || !rec_get_u64(&r, &s->disconnected_at_ms) ||
        !rec_done(&r) || connected > 1)
        return STORE_ECORRUPT;
    s->connected = connected;
    return 0;
}

int store_session_put(struct store_txn *txn, const struct store_session *s)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val key;
    int rc = store_key2(buf, s->client_id.ptr, s->client_id.len, NULL, 0, false, &key);
    if (rc != 0) return rc;
    return store_put_rec(txn, DB_SESSIONS, &key, enc_session, s);
}

int store_session_get(struct store_txn *txn, const char *client_id, size_t len,
                      struct store_session *out)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val key, val;
    int rc = store_key2(buf, client_id, len, NULL, 0, false, &key);
    if (rc != 0) return rc == -ENAMETOOLONG ? -ENOENT : rc;
    rc = store_get_val(txn, DB_SESSIONS, &key, &val);
    if (rc != 0) return rc;
    return dec_session(&key, &val, out);
}

int store_session_del(struct store_txn *txn, const char *client_id, size_t len)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val key;
    int rc = store_key2(buf, client_id, len, NULL, 0, false, &key);
    if (rc != 0) return rc == -ENAMETOOLONG ? -ENOENT : rc;
    return store_del_key(txn, DB_SESSIONS, &key);
}

struct session_scan {
    store_session_cb cb;
    void *ctx;
};

static int session_scan_fn(void *ctx, const MDB_val *key, const MDB_val *val)
{
    struct session_scan *sc = ctx;
    struct store_session s;
    int rc = dec_session(key, val, &s);
    return rc != 0 ? rc : sc->cb(sc->ctx, &s);
}

int store_session_foreach(struct store_txn *txn, store_session_cb cb, void *ctx)
{
    struct session_scan sc = {cb, ctx};
    return store_scan(txn, DB_SESSIONS, NULL, 0, session_scan_fn, &sc);
}

int store_client_purge(struct store_txn *txn, const char *client_id, size_t len)
{
    int rc = store_session_del(txn, client_id, len);
    if (rc != 0 && rc != -ENOENT) return rc;
    rc = store_sub_del_client(txn, client_id, len, NULL);
    if (rc == 0) rc = store_queue_del_client(txn, client_id, len, NULL);
    if (rc == 0) {
        rc = store_will_del(txn, client_id, len);
        if (rc == -ENOENT) rc = 0;
    }
    return rc;
}
