/* The LMDB environment: open, close, transactions, map growth, error translation.
 *
 * Sync policy: MDB_NOMETASYNC, without MDB_WRITEMAP. Each commit fsyncs the data pages, and
 * the meta page that points at them is flushed by the next commit's sync (or by the OS).
 * A crash can therefore lose the last committed transaction, never corrupt the environment:
 * LMDB falls back to the previous meta page, whose last_applied describes exactly the state
 * it points at. Raft's log is fsynced before an entry counts as committed, so the restart
 * replays the lost tail from that last_applied (entries at or below it are skipped). MDB_NOSYNC
 * would save the data-page fsync too, but then ordering of data and meta writes is left to the
 * file system and a power cut can corrupt the file: not used. A process crash (kill -9) loses
 * nothing in either mode: committed pages are in the page cache.
 */
#include "env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "record.h"

static const char *const db_names[DB_COUNT] = {
    [DB_META] = "meta",         [DB_SESSIONS] = "sessions", [DB_SUBS] = "subscriptions",
    [DB_RETAINED] = "retained", [DB_QUEUE] = "queue",       [DB_WILLS] = "wills",
    [DB_NODES] = "nodes",
};

int store_rc(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_NOTFOUND:
        return -ENOENT;
    case MDB_MAP_FULL:
        return -ENOSPC;
    case MDB_TXN_FULL:
        return -E2BIG;
    case MDB_KEYEXIST:
        return -EEXIST;
    case MDB_BAD_VALSIZE:
        return -ENAMETOOLONG;
    case MDB_MAP_RESIZED:
    case MDB_READERS_FULL:
        return -EAGAIN;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return STORE_ECORRUPT;
    default:
        if (rc > 0) return -rc;
        return -EIO;
    }
}

const char *store_strerror(int rc)
{
    switch (rc) {
    case 0:
        return "success";
    case STORE_ENEWER:
        return "data directory written by a newer format version";
    case STORE_ECORRUPT:
        return "corrupt state record or snapshot";
    default:
        if (rc < 0 && rc > -4096) return strerror(-rc);
        return "unknown error";
    }
}

int store_env_setup(struct store *s)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0) return store_rc(rc);
    for (int i = 0; i < DB_COUNT; i++) {
        rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->dbi[i]);
        if (rc != 0) goto abort;
    }
    MDB_val key = {.mv_size = 14, .mv_data = "format_version"}, val;
    rc = mdb_get(txn, s->dbi[DB_META], &key, &val);
    if (rc == MDB_NOTFOUND) {
        uint8_t v[4] = {0, 0, 0, STORE_FORMAT_VERSION};
        val.mv_size = 4;
        val.mv_data = v;
        rc = mdb_put(txn, s->dbi[DB_META], &key, &val, 0);
        if (rc != 0) goto abort;
    } else if (rc != 0) {
        goto abort;
    } else {
        struct rec_reader r = {.p = val.mv_data, .left = val.mv_size};
        uint32_t version;
        if (!rec_get_u32(&r, &version) || !rec_done(&r)) {
            mdb_txn_abort(txn);
            return STORE_ECORRUPT;
        }
        if (version > STORE_FORMAT_VERSION) {
            mdb_txn_abort(txn);
            return STORE_ENEWER;
        }
    }
    return store_rc(mdb_txn_commit(txn));
abort:
    mdb_txn_abort(txn);
    return store_rc(rc);
}

static int mkdir_p(const char *dir)
{
    char *path = strdup(dir);
    if (!path) return -ENOMEM;
    int rc = 0;
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *p = c;
        if (c == '\0') break;
    }
    free(path);
    return rc;
}

static int store_env_open(struct store *s)
{
    int rc = mdb_env_create(&s->env);
    if (rc != 0) return store_rc(rc);
    rc = mdb_env_set_maxdbs(s->env, DB_COUNT);
    if (rc == 0) rc = mdb_env_set_mapsize(s->env, s->map_size);
    if (rc == 0) rc = mdb_env_open(s->env, s->dir, MDB_NOTLS | MDB_NOMETASYNC, 0600);
    if (rc != 0) goto fail;
    int dead = 0;
    rc = mdb_reader_check(s->env, &dead);
    if (rc != 0) goto fail;
    MDB_envinfo info;
    rc = mdb_env_info(s->env, &info);
    if (rc != 0) goto fail;
    s->map_size = info.me_mapsize; /* an existing file may be larger than asked */
    rc = store_env_setup(s);
    if (rc != 0) {
        mdb_env_close(s->env);
        s->env = NULL;
        return rc;
    }
    return 0;
fail:
    mdb_env_close(s->env);
    s->env = NULL;
    return store_rc(rc);
}

int store_env_reopen(struct store *s)
{
    if (s->env) mdb_env_close(s->env);
    s->env = NULL;
    return store_env_open(s);
}

int store_open(const char *dir, const struct store_options *opt, struct store **out)
{
    struct store *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    s->map_size = opt && opt->map_size ? opt->map_size : STORE_DEFAULT_MAP_SIZE;
    s->map_size_max = opt && opt->map_size_max ? opt->map_size_max : STORE_DEFAULT_MAP_SIZE_MAX;
    if (s->map_size_max < s->map_size) s->map_size_max = s->map_size;
    s->dir = strdup(dir);
    int rc = s->dir ? mkdir_p(dir) : -ENOMEM;
    if (rc == 0) rc = store_env_open(s);
    if (rc != 0) {
        free(s->dir);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void store_close(struct store *s)
{
    if (!s) return;
    if (s->wtxn.txn) mdb_txn_abort(s->wtxn.txn);
    if (s->env) mdb_env_close(s->env);
    free(s->dir);
    free(s);
}

size_t store_map_size(const struct store *s)
{
    return s->map_size;
}

size_t store_map_size_max(const struct store *s)
{
    return s->map_size_max;
}

int store_read_begin(struct store *s, struct store_txn **out)
{
    if (!s->env) return -EIO;
    struct store_txn *t = calloc(1, sizeof *t);
    if (!t) return -ENOMEM;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t->txn);
    if (rc != 0) {
        free(t);
        return store_rc(rc);
    }
    t->s = s;
    *out = t;
    return 0;
}

int store_write_begin(struct store *s, struct store_txn **out)
{
    if (s->wtxn.txn) return -EBUSY;
    if (!s->env) return -EIO;
    int rc = mdb_txn_begin(s->env, NULL, 0, &s->wtxn.txn);
    if (rc != 0) {
        s->wtxn.txn = NULL;
        return store_rc(rc);
    }
    s->wtxn.s = s;
    s->wtxn.write = true;
    *out = &s->wtxn;
    return 0;
}

int store_write_commit(struct store_txn *txn)
{
    int rc = mdb_txn_commit(txn->txn);
    txn->txn = NULL;
    /* LMDB returns errno for a failed write (ENOSPC) and EIO for a short one. */
    txn->s->commit_disk_error = rc > 0;
    return store_rc(rc);
}

bool store_commit_disk_error(const struct store *s)
{
    return s->commit_disk_error;
}

void store_txn_end(struct store_txn *txn)
{
    if (!txn) return;
    if (txn->txn) mdb_txn_abort(txn->txn);
    txn->txn = NULL;
    if (!txn->write) free(txn);
}

int store_grow(struct store *s)
{
    if (s->wtxn.txn) return -EBUSY;
    if (s->map_size >= s->map_size_max) return -ENOSPC;
    size_t next = s->map_size > s->map_size_max / 2 ? s->map_size_max : s->map_size * 2;
    int rc = mdb_env_set_mapsize(s->env, next);
    if (rc != 0) return store_rc(rc);
    MDB_envinfo info;
    if (mdb_env_info(s->env, &info) == 0) next = info.me_mapsize;
    s->map_size = next;
    return 0;
}

int store_key2(uint8_t *buf, const char *a, size_t alen, const char *b, size_t blen, bool with_b,
               MDB_val *key)
{
    size_t n = alen + 1 + (with_b ? blen + 1 : 0);
    if (alen >= RECORD_KEY_MAX || blen >= RECORD_KEY_MAX || n > RECORD_KEY_MAX)
        return -ENAMETOOLONG;
    if (memchr(a, 0, alen) || (with_b && memchr(b, 0, blen))) return -EINVAL;
    memcpy(buf, a, alen);
    buf[alen] = 0;
    if (with_b) {
        memcpy(buf + alen + 1, b, blen);
        buf[alen + 1 + blen] = 0;
    }
    key->mv_data = buf;
    key->mv_size = n;
    return 0;
}

int store_del_prefix(struct store_txn *txn, enum store_db db, const void *prefix, size_t len,
                     size_t *n)
{
    MDB_cursor *cur;
    size_t count = 0;
    int rc = mdb_cursor_open(txn->txn, txn->s->dbi[db], &cur);
    if (rc != 0) return store_rc(rc);
    /* Seek the prefix again after every delete: simple, and each seek is O(log n). */
    for (;;) {
        MDB_val key = {.mv_size = len, .mv_data = (void *)prefix}, val;
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
        if (rc != 0 || key.mv_size < len || memcmp(key.mv_data, prefix, len) != 0) break;
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0) break;
        count++;
    }
    mdb_cursor_close(cur);
    if (n) *n = count;
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : store_rc(rc);
}

int store_put_rec(struct store_txn *txn, enum store_db db, MDB_val *key, store_enc_fn enc,
                  const void *rec)
{
    struct rec_writer w = {0};
    enc(&w, rec); /* measure */
    MDB_val val = {.mv_size = w.len};
    int rc = mdb_put(txn->txn, txn->s->dbi[db], key, &val, MDB_RESERVE);
    if (rc != 0) return store_rc(rc);
    w = (struct rec_writer){.out = val.mv_data, .cap = val.mv_size};
    enc(&w, rec);
    return 0;
}

int store_get_val(struct store_txn *txn, enum store_db db, MDB_val *key, MDB_val *val)
{
    /* A cursor with MDB_SET_KEY, unlike mdb_get, also points *key into the map, so that
     * strings taken from the key outlive the caller's key buffer. */
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn->txn, txn->s->dbi[db], &cur);
    if (rc != 0) return store_rc(rc);
    rc = mdb_cursor_get(cur, key, val, MDB_SET_KEY);
    mdb_cursor_close(cur);
    return store_rc(rc);
}

int store_del_key(struct store_txn *txn, enum store_db db, MDB_val *key)
{
    return store_rc(mdb_del(txn->txn, txn->s->dbi[db], key, NULL));
}

int store_scan(struct store_txn *txn, enum store_db db, const void *prefix, size_t len,
               store_scan_fn fn, void *ctx)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn->txn, txn->s->dbi[db], &cur);
    if (rc != 0) return store_rc(rc);
    MDB_val key = {.mv_size = len, .mv_data = (void *)prefix}, val;
    rc = mdb_cursor_get(cur, &key, &val, len ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0) {
        if (len && (key.mv_size < len || memcmp(key.mv_data, prefix, len) != 0)) break;
        int r = fn(ctx, &key, &val);
        if (r != 0) {
            mdb_cursor_close(cur);
            return r;
        }
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_rc(rc);
}
