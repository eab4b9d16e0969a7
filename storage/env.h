/* The environment and transaction objects shared by the storage files. */
#ifndef STARLING_STORAGE_ENV_H
#define STARLING_STORAGE_ENV_H

#include <stdbool.h>
#include <stdint.h>

#include <lmdb.h>

#include "storage.h"

enum store_db {
    DB_META,
    DB_SESSIONS,
    DB_SUBS,
    DB_RETAINED,
    DB_QUEUE,
    DB_WILLS,
    DB_NODES,
    DB_COUNT,
};

struct store_txn {
    struct store *s;
    MDB_txn *txn;
    bool write;
};

struct store {
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    char *dir;
    size_t map_size;
    size_t map_size_max;
    struct store_txn wtxn;  /* the one write transaction, when wtxn.txn != NULL */
    bool commit_disk_error; /* the last store_write_commit failed in its file writes */
};

/* MDB_* and errno values to 0 / -errno / STORE_E*. */
int store_rc(int mdb_rc);

/* Builds "a \0" or "a \0 b \0" into buf (RECORD_KEY_MAX bytes); -ENAMETOOLONG if too long. */
int store_key2(uint8_t *buf, const char *a, size_t alen, const char *b, size_t blen, bool with_b,
               MDB_val *key /* OUT */);

/* Deletes every key of table db that starts with prefix; *n (may be NULL) gets how many. */
int store_del_prefix(struct store_txn *txn, enum store_db db, const void *prefix, size_t len,
                     size_t *n /* OUT */);

struct rec_writer;
typedef void (*store_enc_fn)(struct rec_writer *w, const void *rec);
/* Puts key -> enc(rec), encoding straight into the map (MDB_RESERVE). */
int store_put_rec(struct store_txn *txn, enum store_db db, MDB_val *key, store_enc_fn enc,
                  const void *rec);
/* Looks key up; on success *key points at the key inside the map (borrowed like *val). */
int store_get_val(struct store_txn *txn, enum store_db db, MDB_val *key, MDB_val *val /* OUT */);
int store_del_key(struct store_txn *txn, enum store_db db, MDB_val *key);

/* Calls fn for every key starting with prefix (every key if len is 0), in key order; a
 * nonzero return of fn stops and is returned. fn must not write to the table. */
typedef int (*store_scan_fn)(void *ctx, const MDB_val *key, const MDB_val *val);
int store_scan(struct store_txn *txn, enum store_db db, const void *prefix, size_t len,
               store_scan_fn fn, void *ctx);

/* Opens the named tables and checks/writes the format version (env.c, also after restore). */
int store_env_setup(struct store *s);

/* Closes and reopens the environment after its data file was replaced (snapshot.c). */
int store_env_reopen(struct store *s);

#endif
