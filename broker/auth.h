/* Password authentication against a mosquitto_passwd file.
 *
 * Contract:
 * - auth_db_load() reads a password file into an immutable struct auth_db. Lines are
 *   `username:$6$<salt>$<hash>` (SHA-512 of password then salt) or
 *   `username:$7$<iterations>$<salt>$<hash>` (PBKDF2-HMAC-SHA512), base64 fields, as Debian's
 *   mosquitto_passwd 2.0 writes them. As in Mosquitto 2, a line with a plain-text password,
 *   an unknown hash type or a malformed hash is removed with an error log line
 *   ("Error: ... for user X, removing entry.") and the rest of the file still loads.
 *   Comments (#) and blank lines are skipped.
 * - auth_check() is a pure function of an immutable db: it may run on any thread, several at
 *   once, while the loop keeps using the same db. It is slow by design ($7$ runs PBKDF2):
 *   run it on the thread pool, never on the loop thread.
 * - Reload (SIGHUP) loads a new db and swaps the pointer; a job still running on the old db
 *   holds a reference (auth_db_ref) and the last auth_db_unref frees it.
 */
#ifndef STARLING_BROKER_AUTH_H
#define STARLING_BROKER_AUTH_H

#include <stddef.h>
#include <stdint.h>

struct auth_db;

/* Hash kinds of a password file line. */
enum auth_hash {
    AUTH_HASH_SHA512 = 6,        /* $6$ */
    AUTH_HASH_SHA512_PBKDF2 = 7, /* $7$ (mosquitto_passwd 2.0's default) */
};

/* mosquitto_passwd 2.0's parameters. */
#define AUTH_SALT_LEN          12
#define AUTH_PBKDF2_ITERATIONS 101
#define AUTH_HASH_LINE_MAX     256 /* enough for any "$7$<iter>$<salt>$<hash>" we write */

/* Loads the password file at path. On success *out is a new db with one reference.
 * Returns 0, or a negative errno (-ENOENT, -EACCES, -EIO, -ENOMEM, -EINVAL for a username
 * longer than 65535 bytes) with a message `FILE: what is wrong` or `FILE:LINE: ...` in err.
 * Entries with bad hashes are dropped with a log line, not an error (see above). */
int auth_db_load(const char *path, struct auth_db **out /* OUT */, char *err, size_t errlen);

/* Adds a reference (atomic; any thread). Returns db. */
struct auth_db *auth_db_ref(struct auth_db *db);

/* Drops a reference (atomic; any thread); the last one frees the db. NULL is a no-op. */
void auth_db_unref(struct auth_db *db);

/* Number of usable entries (after dropped lines). */
size_t auth_db_count(const struct auth_db *db);

/* Checks a username and password (pwlen bytes, not NUL-terminated necessarily) against db.
 * Returns 0 when the user exists and the password matches, -EACCES otherwise (unknown user,
 * wrong password, user == NULL). The hash comparison is constant-time; an unknown user costs
 * about as much as a known one (a dummy $7$ hash is computed). Thread-safe, no allocation
 * beyond the stack. */
int auth_check(const struct auth_db *db, const char *user, const char *password, size_t pwlen);

/* Writes the hash field of a password file line ("$7$101$<salt>$<hash>" or "$6$<salt>$<hash>",
 * no username, NUL-terminated) for password using `salt` (AUTH_SALT_LEN bytes; NULL: random
 * from wolfCrypt's RNG). iterations is used for $7$ only (0: AUTH_PBKDF2_ITERATIONS).
 * Returns 0, -EINVAL (bad kind or iterations), -ENOSPC (out too small), -EIO (RNG/hash failure).
 */
int auth_hash_password(enum auth_hash kind, const char *password, size_t pwlen, unsigned iterations,
                       const uint8_t *salt, char *out, size_t outlen);

#endif
