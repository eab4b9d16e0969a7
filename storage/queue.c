/* The queue table: messages for offline persistent sessions, key client_id \0 seq (u64 BE),
 * so that one client's messages are contiguous and in push order (layout in record.h). */
#include <errno.h>
#include <string.h>

#include "env.h"
#include "record.h"

/* Builds client_id \0 seq into buf; *plen gets the length of the client_id \0 prefix. */
static int queue_key(uint8_t *buf, const char *client_id, size_t len, uint64_t seq, MDB_val *key,
                     size_t *plen)
{
    if (len + 1 + 8 > RECORD_KEY_MAX) return -ENAMETOOLONG;
    int rc = store_key2(buf, client_id, len, NULL, 0, false, key);
    if (rc != 0) return rc;
    rec_be64(buf + len + 1, seq);
    key->mv_size = len + 1 + 8;
    if (plen) *plen = len + 1;
    return 0;
}

static void enc_queued(struct rec_writer *w, const void *rec)
{
    const struct store_queued *q = rec;
    rec_put_u8(w, RECORD_VERSION);
    rec_put_u8(w, q->msg.qos);
    rec_put_u8(w, q->msg.retain ? 1 : 0);
    rec_put_u64(w, q->msg_id);
    rec_put_message_tail(w, &q->msg);
}

static int dec_queued(const MDB_val *key, const MDB_val *val, struct store_queued *out)
{
    const char *k = key->mv_data;
    if (key->mv_size < 10 || k[key->mv_size - 9] != 0 || memchr(k, 0, key->mv_size - 9))
        return STORE_ECORRUPT;
    *out = (struct store_queued){0};
    out->client_id.ptr = k;
    out->client_id.len = key->mv_size - 9;
    out->seq = rec_get_be64((const uint8_t *)k + key->mv_size - 8);
    struct rec_reader r = {.p = val->mv_data, .left = val->mv_size};
    uint8_t version, retain;
    if (!rec_get_u8(&r, &version) || version != RECORD_VERSION || !rec_get_u8(&r, &out->msg.qos) ||
        !rec_get_u8(&r, &retain) || !rec_get_u64(&r, &out->msg_id) ||
        !rec_get_message_tail(&r, &out->msg) || !rec_done(&r) || out->msg.qos > 2 || retain > 1)
        return STORE_ECORRUPT;
    out->msg.retain = retain;
    return 0;
}

int store_queue_push(struct store_txn *txn, const struct store_queued *q, uint64_t *seq)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val key, val;
    size_t plen;
    int rc = queue_key(buf, q->client_id.ptr, q->client_id.len, UINT64_MAX, &key, &plen);
    if (rc != 0) return rc;
    /* The client's last seq: the key before client_id \0 FF..FF (or the table's last). */
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn->txn, txn->s->dbi[DB_QUEUE], &cur);
    if (rc != 0) return store_rc(rc);
    MDB_val probe = key;
    rc = mdb_cursor_get(cur, &probe, &val, MDB_SET_RANGE);
    if (rc == 0)
        rc = mdb_cursor_get(cur, &probe, &val, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(cur, &probe, &val, MDB_LAST);
    uint64_t next = 1;
    if (rc == 0 && probe.mv_size == key.mv_size && memcmp(probe.mv_data, buf, plen) == 0)
        next = rec_get_be64((const uint8_t *)probe.mv_data + plen) + 1;
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) return store_rc(rc);
    if (next == UINT64_MAX || next == 0) return -EOVERFLOW;
    rec_be64(buf + plen, next);
    rc = store_put_rec(txn, DB_QUEUE, &key, enc_queued, q);
    if (rc == 0 && seq) *seq = next;
    return rc;
}

struct queue_scan {
    store_queued_cb cb;
    void *ctx;
    uint64_t msg_id;    /* ack: the message searched */
    uint64_t found_seq; /* ack: its seq, or 0 */
    size_t count, bytes;
};

static int queue_scan_fn(void *ctx, const MDB_val *key, const MDB_val *val)
{
    struct queue_scan *sc = ctx;
    struct store_queued q;
    int rc = dec_queued(key, val, &q);
    return rc != 0 ? rc : sc->cb(sc->ctx, &q);
}

int store_queue_foreach_client(struct store_txn *txn, const char *client_id, size_t len,
                               store_queued_cb cb, void *ctx)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val key;
    size_t plen;
    int rc = queue_key(buf, client_id, len, 0, &key, &plen);
    if (rc != 0) return rc == -ENAMETOOLONG ? 0 : rc;
    struct queue_scan sc = {.cb = cb, .ctx = ctx};
    return store_scan(txn, DB_QUEUE, buf, plen, queue_scan_fn, &sc);
}

int store_queue_foreach(struct store_txn *txn, store_queued_cb cb, void *ctx)
{
    struct queue_scan sc = {.cb = cb, .ctx = ctx};
    return store_scan(txn, DB_QUEUE, NULL, 0, queue_scan_fn, &sc);
}

static int ack_find_cb(void *ctx, const struct store_queued *q)
{
    struct queue_scan *sc = ctx;
    if (q->msg_id != sc->msg_id) return 0;
    sc->found_seq = q->seq;
    return 1;
}

int store_queue_ack(struct store_txn *txn, const char *client_id, size_t len, uint64_t msg_id)
{
    struct queue_scan sc = {.msg_id = msg_id};
    int rc = store_queue_foreach_client(txn, client_id, len, ack_find_cb, &sc);
    if (rc < 0) return rc;
    if (rc == 0) return -ENOENT;
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val key;
    rc = queue_key(buf, client_id, len, sc.found_seq, &key, NULL);
    return rc != 0 ? rc : store_del_key(txn, DB_QUEUE, &key);
}

int store_queue_drop_oldest(struct store_txn *txn, const char *client_id, size_t len,
                            uint32_t count, uint32_t *dropped)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val key, val;
    size_t plen;
    uint32_t n = 0;
    if (dropped) *dropped = 0;
    int rc = queue_key(buf, client_id, len, 0, &key, &plen);
    if (rc != 0) return rc == -ENAMETOOLONG ? 0 : rc;
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn->txn, txn->s->dbi[DB_QUEUE], &cur);
    if (rc != 0) return store_rc(rc);
    while (n < count) {
        key = (MDB_val){.mv_size = plen, .mv_data = buf};
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
        if (rc != 0 || key.mv_size < plen || memcmp(key.mv_data, buf, plen) != 0) break;
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0) break;
        n++;
    }
    mdb_cursor_close(cur);
    if (dropped) *dropped = n;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_rc(rc);
}

static int stat_cb(void *ctx, const struct store_queued *q)
{
    struct queue_scan *sc = ctx;
    sc->count++;
    sc->bytes += q->msg.payload.len;
    return 0;
}

int store_queue_stat(struct store_txn *txn, const char *client_id, size_t len, size_t *count,
                     size_t *bytes)
{
    struct queue_scan sc = {0};
    int rc = store_queue_foreach_client(txn, client_id, len, stat_cb, &sc);
    if (count) *count = sc.count;
    if (bytes) *bytes = sc.bytes;
    return rc;
}

int store_queue_del_client(struct store_txn *txn, const char *client_id, size_t len, size_t *n)
{
    uint8_t buf[RECORD_KEY_MAX];
    MDB_val key;
    size_t plen;
    if (n) *n = 0;
    int rc = queue_key(buf, client_id, len, 0, &key, &plen);
    if (rc != 0) return rc == -ENAMETOOLONG ? 0 : rc;
    return store_del_prefix(txn, DB_QUEUE, buf, plen, n);
}
