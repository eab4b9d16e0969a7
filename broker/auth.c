/* Password files in mosquitto_passwd's $6$/$7$ formats: loading, checking, hashing. */
#include "auth.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/pwdbased.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha512.h>

#include "log.h"
#include "mem.h"

/* strdup through the allocation wrapper (mem.h). */
static char *str_dup(const char *s)
{
    return mem_strndup(s, strlen(s));
}

#define AUTH_HASH_LEN       64 /* SHA-512 */
#define AUTH_SALT_MAX       64
#define AUTH_ITERATIONS_MAX (1 << 24)
#define AUTH_USERNAME_MAX   65535

struct auth_entry {
    char *username;
    enum auth_hash kind;
    unsigned iterations;
    uint8_t salt[AUTH_SALT_MAX];
    size_t salt_len;
    uint8_t hash[AUTH_HASH_LEN];
    int line;
};

struct auth_db {
    int refs;                   /* atomic */
    struct auth_entry *entries; /* sorted by username */
    size_t count;
};

static int b64_decode(const char *in, uint8_t *out, size_t cap, size_t *out_len)
{
    word32 n = (word32)cap;
    size_t len = strlen(in);
    if (len == 0 || len > 4 * cap) return -EINVAL;
    if (Base64_Decode((const byte *)in, (word32)len, out, &n) != 0) return -EINVAL;
    *out_len = n;
    return 0;
}

/* Computes the 64-byte digest of password with the entry's parameters. */
static int compute(enum auth_hash kind, unsigned iterations, const uint8_t *salt, size_t salt_len,
                   const char *password, size_t pwlen, uint8_t out[AUTH_HASH_LEN])
{
    if (kind == AUTH_HASH_SHA512_PBKDF2) {
        if (wc_PBKDF2(out, (const byte *)password, (int)pwlen, salt, (int)salt_len, (int)iterations,
                      AUTH_HASH_LEN, WC_SHA512) != 0)
            return -EIO;
        return 0;
    }
    wc_Sha512 sha;
    int rc = -EIO;
    if (wc_InitSha512(&sha) != 0) return -EIO;
    if (wc_Sha512Update(&sha, (const byte *)password, (word32)pwlen) == 0 &&
        wc_Sha512Update(&sha, salt, (word32)salt_len) == 0 && wc_Sha512Final(&sha, out) == 0)
        rc = 0;
    wc_Sha512Free(&sha);
    return rc;
}

/* Parses "$6$salt$hash" or "$7$iter$salt$hash" into e. Returns 0, -EPROTONOSUPPORT for an
 * unknown type, -EINVAL for a malformed hash. */
static int parse_hash(char *field, struct auth_entry *e)
{
    char *save = NULL;
    char *type = strtok_r(field, "$", &save);
    char *a, *b, *c;
    size_t n;
    if (type == NULL || field[0] != '$') return -EPROTONOSUPPORT;
    if (strcmp(type, "6") == 0) {
        e->kind = AUTH_HASH_SHA512;
        e->iterations = 0;
        a = strtok_r(NULL, "$", &save);
        b = strtok_r(NULL, "$", &save);
        if (a == NULL || b == NULL || strtok_r(NULL, "$", &save) != NULL) return -EINVAL;
    } else if (strcmp(type, "7") == 0) {
        e->kind = AUTH_HASH_SHA512_PBKDF2;
        c = strtok_r(NULL, "$", &save);
        a = strtok_r(NULL, "$", &save);
        b = strtok_r(NULL, "$", &save);
        if (c == NULL || a == NULL || b == NULL || strtok_r(NULL, "$", &save) != NULL)
            return -EINVAL;
        char *end;
        errno = 0;
        unsigned long it = strtoul(c, &end, 10);
        if (errno != 0 || *end != '\0' || c[0] == '-' || it < 1 || it > AUTH_ITERATIONS_MAX)
            return -EINVAL;
        e->iterations = (unsigned)it;
    } else {
        return -EPROTONOSUPPORT;
    }
    if (b64_decode(a, e->salt, sizeof e->salt, &e->salt_len) != 0 || e->salt_len == 0)
        return -EINVAL;
    uint8_t hash[AUTH_HASH_LEN * 2];
    if (b64_decode(b, hash, sizeof hash, &n) != 0 || n != AUTH_HASH_LEN) return -EINVAL;
    memcpy(e->hash, hash, AUTH_HASH_LEN);
    return 0;
}

static char *trimblanks(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static int entry_cmp(const void *a, const void *b)
{
    const struct auth_entry *x = a, *y = b;
    int c = strcmp(x->username, y->username);
    if (c != 0) return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

static void db_free(struct auth_db *db)
{
    if (db == NULL) return;
    for (size_t i = 0; i < db->count; i++)
        mem_free(db->entries[i].username);
    mem_free(db->entries);
    mem_free(db);
}

/* Parses one line (modified in place) and appends an entry; bad hashes are logged and
 * skipped like Mosquitto does. */
static int parse_line(struct auth_db *db, size_t *cap, const char *path, int lineno, char *line,
                      char *err, size_t errlen)
{
    char *save = NULL;
    if (line[0] == '#') return 0;
    char *user = strtok_r(line, ":", &save);
    if (user == NULL) return 0;
    user = trimblanks(user);
    if (strlen(user) > AUTH_USERNAME_MAX) {
        snprintf(err, errlen, "%s:%d: username too long", path, lineno);
        return -EINVAL;
    }
    if (user[0] == '\0') return 0; /* mosquitto: "Empty username in password file, ignoring." */
    char *pw = strtok_r(NULL, ":", &save);
    struct auth_entry e;
    memset(&e, 0, sizeof e);
    if (pw == NULL || *(pw = trimblanks(pw)) == '\0') {
        log_at(LOG_TYPE_ERROR, "Error: Missing password hash for user %s, removing entry.", user);
        return 0;
    }
    int rc = parse_hash(pw, &e);
    if (rc == -EPROTONOSUPPORT) {
        log_at(LOG_TYPE_ERROR, "Error: Invalid password hash type for user %s, removing entry.",
               user);
        return 0;
    }
    if (rc != 0) {
        log_at(LOG_TYPE_ERROR, "Error: Unable to decode password for user %s, removing entry.",
               user);
        return 0;
    }
    if (db->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct auth_entry *g = mem_realloc(db->entries, ncap * sizeof *g);
        if (g == NULL) goto nomem;
        db->entries = g;
        *cap = ncap;
    }
    e.line = lineno;
    if ((e.username = str_dup(user)) == NULL) goto nomem;
    db->entries[db->count++] = e;
    return 0;
nomem:
    snprintf(err, errlen, "%s: out of memory", path);
    return -ENOMEM;
}

int auth_db_load(const char *path, struct auth_db **out, char *err, size_t errlen)
{
    char dummy[1];
    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open password file: %s", path, strerror(e));
        return -e;
    }
    struct auth_db *db = mem_calloc(1, sizeof *db);
    char *line = NULL;
    size_t linecap = 0, cap = 0;
    int lineno = 0, rc = 0;
    if (db == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        fclose(f);
        return -ENOMEM;
    }
    db->refs = 1;
    while (getline(&line, &linecap, f) >= 0) {
        lineno++;
        if ((rc = parse_line(db, &cap, path, lineno, line, err, errlen)) != 0) break;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -EIO;
    }
    free(line); /* getline's buffer: libc */
    fclose(f);
    if (rc != 0) {
        db_free(db);
        return rc;
    }
    /* Sorted by (username, line) for lookup: with duplicates the first line wins. */
    if (db->count > 1) qsort(db->entries, db->count, sizeof *db->entries, entry_cmp);
    *out = db;
    return 0;
}

struct auth_db *auth_db_ref(struct auth_db *db)
{
    __atomic_add_fetch(&db->refs, 1, __ATOMIC_RELAXED);
    return db;
}

void auth_db_unref(struct auth_db *db)
{
    if (db != NULL && __atomic_sub_fetch(&db->refs, 1, __ATOMIC_ACQ_REL) == 0) db_free(db);
}

size_t auth_db_count(const struct auth_db *db)
{
    return db != NULL ? db->count : 0;
}

static const struct auth_entry *find(const struct auth_db *db, const char *user)
{
    size_t lo = 0, hi = db->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(user, db->entries[mid].username);
        if (c == 0) {
            while (mid > 0 && strcmp(user, db->entries[mid - 1].username) == 0)
                mid--;
            return &db->entries[mid];
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

int auth_check(const struct auth_db *db, const char *user, const char *password, size_t pwlen)
{
    static const uint8_t dummy_salt[AUTH_SALT_LEN] = {0};
    uint8_t digest[AUTH_HASH_LEN];
    const struct auth_entry *e = NULL;
    if (db != NULL && user != NULL) e = find(db, user);
    if (password == NULL) password = "";
    if (e == NULL) {
        /* Spend about the same time as a real check, then refuse. */
        compute(AUTH_HASH_SHA512_PBKDF2, AUTH_PBKDF2_ITERATIONS, dummy_salt, sizeof dummy_salt,
                password, pwlen, digest);
        return -EACCES;
    }
    if (compute(e->kind, e->iterations, e->salt, e->salt_len, password, pwlen, digest) != 0)
        return -EACCES;
    volatile uint8_t diff = 0;
    for (size_t i = 0; i < AUTH_HASH_LEN; i++)
        diff |= digest[i] ^ e->hash[i];
    return diff == 0 ? 0 : -EACCES;
}

int auth_hash_password(enum auth_hash kind, const char *password, size_t pwlen, unsigned iterations,
                       const uint8_t *salt, char *out, size_t outlen)
{
    uint8_t salt_buf[AUTH_SALT_LEN];
    uint8_t digest[AUTH_HASH_LEN];
    byte salt_b64[32], hash_b64[128];
    word32 salt_b64_len = sizeof salt_b64, hash_b64_len = sizeof hash_b64;
    int n;
    if (kind != AUTH_HASH_SHA512 && kind != AUTH_HASH_SHA512_PBKDF2) return -EINVAL;
    if (iterations == 0) iterations = AUTH_PBKDF2_ITERATIONS;
    if (iterations > AUTH_ITERATIONS_MAX) return -EINVAL;
    if (salt == NULL) {
        WC_RNG rng;
        if (wc_InitRng(&rng) != 0) return -EIO;
        int rc = wc_RNG_GenerateBlock(&rng, salt_buf, sizeof salt_buf);
        wc_FreeRng(&rng);
        if (rc != 0) return -EIO;
        salt = salt_buf;
    }
    if (compute(kind, iterations, salt, AUTH_SALT_LEN, password, pwlen, digest) != 0) return -EIO;
    if (Base64_Encode_NoNl(salt, AUTH_SALT_LEN, salt_b64, &salt_b64_len) != 0 ||
        Base64_Encode_NoNl(digest, AUTH_HASH_LEN, hash_b64, &hash_b64_len) != 0)
        return -EIO;
    if (kind == AUTH_HASH_SHA512_PBKDF2)
        n = snprintf(out, outlen, "$7$%u$%.*s$%.*s", iterations, (int)salt_b64_len,
                     (const char *)salt_b64, (int)hash_b64_len, (const char *)hash_b64);
    else
        n = snprintf(out, outlen, "$6$%.*s$%.*s", (int)salt_b64_len, (const char *)salt_b64,
                     (int)hash_b64_len, (const char *)hash_b64);
    if (n < 0 || (size_t)n >= outlen) return -ENOSPC;
    return 0;
}
