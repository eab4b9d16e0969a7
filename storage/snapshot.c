/* Snapshots: a compacted copy of the environment out, and a copy in replacing the whole state. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env.h"
#include "record.h"

int store_snapshot_write(struct store *s, int fd)
{
    if (s->wtxn.txn) return -EBUSY;
    if (!s->env) return -EIO;
    return store_rc(mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT));
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Opens the candidate file read-only on its own and checks its format version. */
static int check_candidate(const char *path)
{
    MDB_env *env;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    int rc = mdb_env_create(&env);
    if (rc != 0) return store_rc(rc);
    rc = mdb_env_set_maxdbs(env, DB_COUNT);
    if (rc == 0) rc = mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0600);
    if (rc == 0) rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) rc = mdb_dbi_open(txn, "meta", 0, &dbi);
    MDB_val key = {.mv_size = 14, .mv_data = "format_version"}, val;
    if (rc == 0) rc = mdb_get(txn, dbi, &key, &val);
    int result;
    if (rc != 0) {
        result = STORE_ECORRUPT;
    } else {
        struct rec_reader r = {.p = val.mv_data, .left = val.mv_size};
        uint32_t version;
        if (!rec_get_u32(&r, &version) || !rec_done(&r))
            result = STORE_ECORRUPT;
        else if (version > STORE_FORMAT_VERSION)
            result = STORE_ENEWER;
        else
            result = 0;
    }
    if (txn) mdb_txn_abort(txn);
    mdb_env_close(env);
    return result;
}

int store_snapshot_install(struct store *s, const void *data, size_t len)
{
    if (s->wtxn.txn) return -EBUSY;
    size_t dlen = strlen(s->dir);
    char *tmp = malloc(dlen + 32), *dst = malloc(dlen + 32);
    int rc = 0, fd = -1;
    if (!tmp || !dst) {
        rc = -ENOMEM;
        goto out;
    }
    snprintf(tmp, dlen + 32, "%s/restore.mdb", s->dir);
    snprintf(dst, dlen + 32, "%s/data.mdb", s->dir);
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    rc = write_all(fd, data, len);
    if (rc == 0 && fsync(fd) != 0) rc = -errno;
    close(fd);
    if (rc == 0) rc = check_candidate(tmp);
    if (rc != 0) {
        unlink(tmp);
        goto out;
    }
    /* Swap: close, rename over the data file, make the rename durable, reopen. */
    mdb_env_close(s->env);
    s->env = NULL;
    if (rename(tmp, dst) != 0) {
        rc = -errno;
        unlink(tmp);
    } else {
        int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    int rc2 = store_env_reopen(s);
    if (rc == 0) rc = rc2;
out:
    free(tmp);
    free(dst);
    return rc;
}
