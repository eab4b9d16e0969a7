/* Backups of a node's state from outside the broker: a compacted copy taken while the broker
 * runs (LMDB lets other processes read the environment concurrently), its check, its
 * restore into a stopped node's state directory, and the test that tells whether a process
 * has the environment open.
 *
 * Every process that opens an LMDB environment (without MDB_NOLOCK) holds a shared fcntl
 * lock on the first byte of its lock.mdb for as long as the environment is open, and the
 * kernel drops it when the process dies; asking for a conflicting write lock with F_GETLK
 * therefore names a live process that has the state open. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "env.h"
#include "record.h"

static const char *const table_names[] = {"sessions", "subscriptions", "retained", "queue",
                                          "wills"};

/* Makes the last rename (or creation) in the directory of path durable. */
static void sync_parent(const char *path)
{
    char *dir = strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, strlen(dir) + 1, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int store_backup_check(const char *path, struct store_backup_info *info)
{
    memset(info, 0, sizeof *info);
    struct stat st;
    if (stat(path, &st) != 0) return -errno;
    if (S_ISDIR(st.st_mode)) return -EISDIR;
    info->bytes = (uint64_t)st.st_size;
    MDB_env *env;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    int rc = mdb_env_create(&env);
    if (rc != 0) return store_rc(rc);
    rc = mdb_env_set_maxdbs(env, DB_COUNT);
    /* MDB_NOLOCK: a backup file is never written, and a restore candidate is read by us
     * alone; no lock file appears beside it. */
    if (rc == 0) rc = mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0600);
    if (rc == 0) rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) rc = mdb_dbi_open(txn, "meta", 0, &dbi);
    int result = rc == 0 ? 0 : STORE_ECORRUPT;
    if (rc == 0) {
        MDB_val key = {.mv_size = 14, .mv_data = "format_version"}, val;
        uint32_t version = 0;
        struct rec_reader r;
        if (mdb_get(txn, dbi, &key, &val) != 0) {
            result = STORE_ECORRUPT;
        } else {
            r = (struct rec_reader){.p = val.mv_data, .left = val.mv_size};
            if (!rec_get_u32(&r, &version) || !rec_done(&r))
                result = STORE_ECORRUPT;
            else if (version > STORE_FORMAT_VERSION)
                result = STORE_ENEWER;
        }
        key = (MDB_val){.mv_size = 12, .mv_data = "last_applied"};
        if (result == 0 && mdb_get(txn, dbi, &key, &val) == 0) {
            r = (struct rec_reader){.p = val.mv_data, .left = val.mv_size};
            if (!rec_get_u64(&r, &info->last_applied) || !rec_done(&r)) result = STORE_ECORRUPT;
        }
        uint64_t *counts[] = {&info->sessions, &info->subscriptions, &info->retained, &info->queued,
                              &info->wills};
        for (size_t i = 0; result == 0 && i < sizeof table_names / sizeof *table_names; i++) {
            MDB_dbi t;
            MDB_stat ms;
            if (mdb_dbi_open(txn, table_names[i], 0, &t) != 0) continue; /* empty, never made */
            if (mdb_stat(txn, t, &ms) != 0)
                result = STORE_ECORRUPT;
            else
                *counts[i] = ms.ms_entries;
        }
    }
    if (txn) mdb_txn_abort(txn);
    mdb_env_close(env);
    return result;
}

int store_in_use(const char *state_dir, long *pid)
{
    *pid = 0;
    size_t n = strlen(state_dir) + sizeof "/lock.mdb";
    char *lock = malloc(n);
    if (!lock) return -ENOMEM;
    snprintf(lock, n, "%s/lock.mdb", state_dir);
    int fd = open(lock, O_RDONLY | O_CLOEXEC);
    free(lock);
    if (fd < 0) return errno == ENOENT ? 0 : -errno; /* never opened: nobody has it */
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    int rc = fcntl(fd, F_GETLK, &fl) == 0 ? 0 : -errno;
    close(fd);
    if (rc != 0) return rc;
    if (fl.l_type == F_UNLCK) return 0;
    *pid = (long)fl.l_pid;
    return 1;
}

/* One compacted copy of the environment in dir into fd. */
static int copy_env(const char *dir, int fd)
{
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc != 0) return store_rc(rc);
    rc = mdb_env_set_maxdbs(env, DB_COUNT);
    /* Read-only, but with the lock file: the copy's read transaction is registered in the
     * reader table, so the broker does not reuse the pages it is copying. */
    if (rc == 0) rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600);
    for (int tries = 0; rc == 0 && tries < 8; tries++) {
        if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
            mdb_env_close(env);
            return -errno;
        }
        rc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT);
        if (rc != MDB_MAP_RESIZED) break;
        /* The broker grew the map meanwhile: adopt its size and copy again. */
        rc = mdb_env_set_mapsize(env, 0);
        if (rc == 0) rc = MDB_MAP_RESIZED;
    }
    mdb_env_close(env);
    return store_rc(rc);
}

int store_backup(const char *state_dir, const char *path, struct store_backup_info *info)
{
    memset(info, 0, sizeof *info);
    struct stat st;
    size_t dlen = strlen(state_dir);
    char *data = malloc(dlen + sizeof "/data.mdb");
    if (!data) return -ENOMEM;
    snprintf(data, dlen + sizeof "/data.mdb", "%s/data.mdb", state_dir);
    int rc = stat(data, &st) == 0 ? 0 : -errno;
    free(data);
    if (rc != 0) return rc;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return -ENOMEM;
    snprintf(tmp, plen + 16, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = -errno;
        free(tmp);
        return rc;
    }
    rc = copy_env(state_dir, fd);
    if (rc == 0 && fsync(fd) != 0) rc = -errno;
    if (close(fd) != 0 && rc == 0) rc = -errno;
    /* The copy is read back before it takes the final name: a backup that is there is whole,
     * and what it reports (last_applied, counts) is what it holds. */
    if (rc == 0) rc = store_backup_check(tmp, info);
    if (rc == 0 && rename(tmp, path) != 0) rc = -errno;
    if (rc != 0) {
        unlink(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    sync_parent(path);
    return 0;
}

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -errno;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        int rc = -errno;
        close(in);
        return rc;
    }
    int rc = 0;
    char buf[1 << 16];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0) break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) {
                rc = -errno;
                break;
            }
            off += w;
        }
        if (rc != 0) break;
    }
    if (rc == 0 && fsync(out) != 0) rc = -errno;
    if (close(out) != 0 && rc == 0) rc = -errno;
    close(in);
    return rc;
}

int store_restore(const char *path, const char *state_dir, struct store_backup_info *info)
{
    int rc = store_backup_check(path, info);
    if (rc != 0) return rc;
    long pid;
    rc = store_in_use(state_dir, &pid);
    if (rc < 0) return rc;
    if (rc > 0) return -EBUSY;
    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) return -errno;
    size_t n = strlen(state_dir) + 32;
    char *tmp = malloc(n), *dst = malloc(n), *lock = malloc(n);
    if (!tmp || !dst || !lock) {
        rc = -ENOMEM;
        goto out;
    }
    snprintf(tmp, n, "%s/restore.mdb", state_dir);
    snprintf(dst, n, "%s/data.mdb", state_dir);
    snprintf(lock, n, "%s/lock.mdb", state_dir);
    rc = copy_file(path, tmp);
    if (rc == 0 && rename(tmp, dst) != 0) rc = -errno;
    if (rc != 0) {
        unlink(tmp);
        goto out;
    }
    /* The reader table of the environment that was there describes nobody now. */
    if (unlink(lock) != 0 && errno != ENOENT) rc = -errno;
    sync_parent(dst);
out:
    free(tmp);
    free(dst);
    free(lock);
    return rc;
}
