/* Tests of broker/auth.c against files written by Debian's mosquitto_passwd and by
 * starling-passwd, with Python's hashlib as an independent reference. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "auth.h"
#include "config.h"
#include "log.h"
#include "mem.h"
#include "testlib.h"

static char err[512];

static int run(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static struct auth_db *load_ok(const char *path)
{
    struct auth_db *db = NULL;
    int rc = auth_db_load(path, &db, err, sizeof err);
    if (rc != 0) fail_msg("auth_db_load %s: %d %s", path, rc, err);
    return db;
}

static int check(const struct auth_db *db, const char *user, const char *pw)
{
    return auth_check(db, user, pw, strlen(pw));
}

/* Files written by mosquitto_passwd 2.0 in its default ($7$) and -H sha512 ($6$) forms load
 * unchanged; right passwords pass, wrong ones and unknown users fail. */
static void mosquitto_passwd_files(void **state)
{
    const char *dir = test_mkdtemp();
    char path[256], cmd[4096];
    (void)state;
    snprintf(path, sizeof path, "%s/passwd", dir);
    snprintf(cmd, sizeof cmd,
             "mosquitto_passwd -c -b %s alice 'secret one' && "
             "mosquitto_passwd -H sha512 -b %s bob hunter2 && "
             "mosquitto_passwd -H sha512-pbkdf2 -b %s carol 'pässwörd' && "
             "grep -q '^alice:\\$7\\$101\\$' %s && grep -q '^bob:\\$6\\$' %s",
             path, path, path, path, path);
    assert_int_equal(run(cmd), 0);

    struct auth_db *db = load_ok(path);
    assert_int_equal(auth_db_count(db), 3);
    assert_int_equal(check(db, "alice", "secret one"), 0);
    assert_int_equal(check(db, "bob", "hunter2"), 0);
    assert_int_equal(check(db, "carol", "pässwörd"), 0);
    assert_int_equal(check(db, "alice", "secret"), -EACCES);
    assert_int_equal(check(db, "alice", "secret one "), -EACCES);
    assert_int_equal(check(db, "bob", "hunter3"), -EACCES);
    assert_int_equal(check(db, "bob", ""), -EACCES);
    assert_int_equal(check(db, "dave", "hunter2"), -EACCES);
    assert_int_equal(auth_check(db, NULL, "x", 1), -EACCES);
    /* the password length is honoured: a prefix of the right password is wrong */
    assert_int_equal(auth_check(db, "bob", "hunter2x", 7), 0);
    assert_int_equal(auth_check(db, "bob", "hunter2", 6), -EACCES);
    auth_db_unref(db);

    /* A password changed with mosquitto_passwd takes effect in a newly loaded db (reload). */
    snprintf(cmd, sizeof cmd, "mosquitto_passwd -b %s alice changed", path);
    assert_int_equal(run(cmd), 0);
    db = load_ok(path);
    assert_int_equal(check(db, "alice", "changed"), 0);
    assert_int_equal(check(db, "alice", "secret one"), -EACCES);
    auth_db_unref(db);
    test_rmdir(dir);
}

/* As Mosquitto 2 does, plain-text passwords, unknown hash types and malformed hashes are
 * removed from the db and the rest of the file still loads; comments and blanks are skipped. */
static void bad_entries_removed(void **state)
{
    const char *dir = test_mkdtemp();
    char path[256], cmd[4096];
    (void)state;
    snprintf(path, sizeof path, "%s/passwd", dir);
    snprintf(cmd, sizeof cmd, "mosquitto_passwd -c -b %s good pw", path);
    assert_int_equal(run(cmd), 0);
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs("# a comment\n"
          "\n"
          "plain:password\n"
          "nohash\n"
          "empty:\n"
          "md5:$1$abc$def\n"
          "short:$6$c2FsdA==$AAAA\n"
          "badb64:$7$101$!!!!$!!!!\n"
          "iter0:$7$0$c2FsdHNhbHRzYWx0$AAAA\n"
          ":$6$x$y\n",
          f);
    fclose(f);
    struct auth_db *db = load_ok(path);
    assert_int_equal(auth_db_count(db), 1);
    assert_int_equal(check(db, "good", "pw"), 0);
    assert_int_equal(check(db, "plain", "password"), -EACCES);
    assert_int_equal(check(db, "nohash", ""), -EACCES);
    auth_db_unref(db);
    test_rmdir(dir);
}

/* With a username listed twice, the first line wins; blanks around fields are ignored. */
static void duplicates_and_blanks(void **state)
{
    const char *dir = test_mkdtemp();
    char path[256], l1[300], l2[300], text[700];
    (void)state;
    static const uint8_t salt[AUTH_SALT_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    assert_int_equal(
        auth_hash_password(AUTH_HASH_SHA512_PBKDF2, "first", 5, 0, salt, l1, sizeof l1), 0);
    assert_int_equal(auth_hash_password(AUTH_HASH_SHA512, "second", 6, 0, salt, l2, sizeof l2), 0);
    snprintf(path, sizeof path, "%s/passwd", dir);
    snprintf(text, sizeof text, "  u : %s \nu:%s\n", l1, l2);
    write_file(path, text);
    struct auth_db *db = load_ok(path);
    assert_int_equal(check(db, "u", "first"), 0);
    assert_int_equal(check(db, "u", "second"), -EACCES);
    auth_db_unref(db);
    test_rmdir(dir);
}

/* Runs Python's hashlib on a hash field and returns its verdict for password (0 = match). */
static int python_verifies(const char *field, const char *password)
{
    char script[2048];
    snprintf(script, sizeof script,
             "%s -c 'import sys,hashlib,base64\n"
             "f=sys.argv[1].split(\"$\"); pw=sys.argv[2].encode()\n"
             "if f[1]==\"7\":\n"
             "  d=hashlib.pbkdf2_hmac(\"sha512\",pw,base64.b64decode(f[3]),int(f[2]),64); h=f[4]\n"
             "else:\n"
             "  d=hashlib.sha512(pw+base64.b64decode(f[2])).digest(); h=f[3]\n"
             "sys.exit(0 if base64.b64encode(d).decode()==h else 1)' '%s' '%s'",
             STARLING_PYTHON3, field, password);
    return run(script);
}

/* auth_hash_password writes what mosquitto_passwd writes: the reference computation (Python
 * hashlib) agrees, for both forms, and auth_check accepts it. */
static void hash_matches_reference(void **state)
{
    char field[AUTH_HASH_LINE_MAX];
    (void)state;
    assert_int_equal(
        auth_hash_password(AUTH_HASH_SHA512_PBKDF2, "s3cret", 6, 0, NULL, field, sizeof field), 0);
    assert_int_equal(strncmp(field, "$7$101$", 7), 0);
    assert_int_equal(strlen(field), 7 + 16 + 1 + 88);
    assert_int_equal(python_verifies(field, "s3cret"), 0);
    assert_int_equal(python_verifies(field, "s3creT"), 1);

    assert_int_equal(
        auth_hash_password(AUTH_HASH_SHA512, "s3cret", 6, 0, NULL, field, sizeof field), 0);
    assert_int_equal(strncmp(field, "$6$", 3), 0);
    assert_int_equal(python_verifies(field, "s3cret"), 0);

    /* Other iteration counts are honoured when reading. */
    assert_int_equal(
        auth_hash_password(AUTH_HASH_SHA512_PBKDF2, "x", 1, 1000, NULL, field, sizeof field), 0);
    assert_int_equal(strncmp(field, "$7$1000$", 8), 0);
    assert_int_equal(python_verifies(field, "x"), 0);

    char small[20];
    assert_int_equal(auth_hash_password(AUTH_HASH_SHA512, "x", 1, 0, NULL, small, sizeof small),
                     -ENOSPC);
    assert_int_equal(auth_hash_password((enum auth_hash)5, "x", 1, 0, NULL, field, sizeof field),
                     -EINVAL);
}

/* starling-passwd's output (default and -H sha512) verifies with auth_check and with the
 * Python reference; -D, -U and the error cases follow mosquitto_passwd. */
static void starling_passwd_tool(void **state)
{
    const char *dir = test_mkdtemp();
    char path[256], cmd[4096], line[512];
    const char *bin = STARLING_BIN_DIR "/starling-passwd";
    (void)state;
    snprintf(path, sizeof path, "%s/passwd", dir);
    snprintf(cmd, sizeof cmd, "%s -c -b %s alice 'pw one' && %s -H sha512 -b %s bob pw2", bin, path,
             bin, path);
    assert_int_equal(run(cmd), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(st.st_mode & 0777, 0666 & ~mask); /* as mosquitto_passwd */

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    line[strcspn(line, "\n")] = '\0';
    assert_int_equal(strncmp(line, "alice:$7$101$", 13), 0);
    assert_int_equal(python_verifies(line + 6, "pw one"), 0);
    assert_non_null(fgets(line, sizeof line, f));
    line[strcspn(line, "\n")] = '\0';
    assert_int_equal(strncmp(line, "bob:$6$", 7), 0);
    assert_int_equal(python_verifies(line + 4, "pw2"), 0);
    assert_null(fgets(line, sizeof line, f));
    fclose(f);

    struct auth_db *db = load_ok(path);
    assert_int_equal(check(db, "alice", "pw one"), 0);
    assert_int_equal(check(db, "bob", "pw2"), 0);
    assert_int_equal(check(db, "bob", "pw1"), -EACCES);
    auth_db_unref(db);

    /* mosquitto_passwd edits the same file (it can parse it), and we read its edit. */
    snprintf(cmd, sizeof cmd, "mosquitto_passwd -b %s carol pw3", path);
    assert_int_equal(run(cmd), 0);
    /* update alice (the line is replaced, not duplicated), delete bob */
    snprintf(cmd, sizeof cmd, "%s -b %s alice new && %s -D %s bob", bin, path, bin, path);
    assert_int_equal(run(cmd), 0);
    db = load_ok(path);
    assert_int_equal(auth_db_count(db), 2);
    assert_int_equal(check(db, "alice", "new"), 0);
    assert_int_equal(check(db, "carol", "pw3"), 0);
    assert_int_equal(check(db, "bob", "pw2"), -EACCES);
    auth_db_unref(db);

    /* interactive form: password twice on stdin */
    snprintf(cmd, sizeof cmd, "printf 'tty\\ntty\\n' | %s %s dave >/dev/null", bin, path);
    assert_int_equal(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "printf 'a\\nb\\n' | %s %s dave >/dev/null 2>&1", bin, path);
    assert_int_equal(run(cmd), 2);
    db = load_ok(path);
    assert_int_equal(check(db, "dave", "tty"), 0);
    auth_db_unref(db);

    /* -U hashes plain-text lines and leaves hashed ones alone */
    char plain[256];
    snprintf(plain, sizeof plain, "%s/plain", dir);
    write_file(plain, "# users\nerin:pw5\nfrank:pw6\n");
    snprintf(cmd, sizeof cmd, "%s -U %s && %s -b %s gina pw7 && %s -U %s", bin, plain, bin, plain,
             bin, plain);
    assert_int_equal(run(cmd), 0);
    db = load_ok(plain);
    assert_int_equal(auth_db_count(db), 3);
    assert_int_equal(check(db, "erin", "pw5"), 0);
    assert_int_equal(check(db, "frank", "pw6"), 0);
    assert_int_equal(check(db, "gina", "pw7"), 0);
    auth_db_unref(db);

    /* errors */
    static const struct {
        const char *pre, *post; /* arguments before and after the file (NULL: no file) */
        int rc;
    } bad[] = {
        {"-D", "nobody", 1},
        {"-b", "'a:b' pw", 1},
        {"-c -D", "u", 1},
        {"-H md5 -b", "u pw", 1},
        {"-b", "u ''", 1},
        {"-b", "", 1},
        {"-b /nonexistent/dir/f u pw", NULL, 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s %s %s %s >/dev/null 2>&1", bin, bad[i].pre,
                 bad[i].post ? path : "", bad[i].post ? bad[i].post : "");
        if (run(cmd) != bad[i].rc) fail_msg("%s: expected exit %d", cmd, bad[i].rc);
    }
    test_rmdir(dir);
}

/* Loading a missing file fails with the path in the message. */
static void missing_file(void **state)
{
    struct auth_db *db = (struct auth_db *)1;
    (void)state;
    assert_int_equal(auth_db_load("/nonexistent/passwd", &db, err, sizeof err), -ENOENT);
    assert_null(db);
    assert_string_equal(
        err, "/nonexistent/passwd: cannot open password file: No such file or directory");
}

/* References: the db outlives a reload swap while a job holds a reference. */
static void references(void **state)
{
    const char *dir = test_mkdtemp();
    char path[256], cmd[4096];
    (void)state;
    snprintf(path, sizeof path, "%s/passwd", dir);
    snprintf(cmd, sizeof cmd, "mosquitto_passwd -c -b %s u p", path);
    assert_int_equal(run(cmd), 0);
    struct auth_db *db = load_ok(path);
    struct auth_db *job = auth_db_ref(db);
    auth_db_unref(db); /* the broker swapped in a new db */
    assert_int_equal(check(job, "u", "p"), 0);
    auth_db_unref(job); /* freed here (ASan checks) */
    auth_db_unref(NULL);
    assert_int_equal(auth_db_count(NULL), 0);
    assert_int_equal(auth_check(NULL, "u", "p", 1), -EACCES);
    test_rmdir(dir);
}

/* Every allocation of a load can fail: -ENOMEM, nothing leaked, no db returned. */
static void out_of_memory(void **state)
{
    const char *dir = test_mkdtemp();
    char path[256], cmd[4096];
    (void)state;
    snprintf(path, sizeof path, "%s/passwd", dir);
    snprintf(cmd, sizeof cmd,
             "mosquitto_passwd -c -b %s a 1 && mosquitto_passwd -b %s b 2 && "
             "mosquitto_passwd -H sha512 -b %s c 3",
             path, path, path);
    assert_int_equal(run(cmd), 0);
    for (long delay = 0;; delay++) {
        struct auth_db *db = (struct auth_db *)1;
        long live = mem_live_blocks();
        unsigned long faults = mem_fault_count();
        mem_fault_set(delay, 1);
        int rc = auth_db_load(path, &db, err, sizeof err);
        mem_fault_set(-1, 0);
        bool hit = mem_fault_count() != faults;
        if (!hit) {
            assert_int_equal(rc, 0);
            assert_int_equal(check(db, "c", "3"), 0);
            auth_db_unref(db);
            assert_int_equal(mem_live_blocks(), live);
            assert_true(delay > 2);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
        assert_null(db);
        assert_int_equal(mem_live_blocks(), live);
    }
    test_rmdir(dir);
}

static int quiet_log(void **state)
{
    struct config c;
    (void)state;
    /* The removed-entry messages go to the log; keep the test output readable. */
    if (config_defaults(&c) != 0) return -1;
    c.log_dest = CONFIG_LOG_DEST_NONE;
    int rc = log_open(&c);
    config_free(&c);
    return rc;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mosquitto_passwd_files),
        cmocka_unit_test(bad_entries_removed),
        cmocka_unit_test(duplicates_and_blanks),
        cmocka_unit_test(hash_matches_reference),
        cmocka_unit_test(starling_passwd_tool),
        cmocka_unit_test(missing_file),
        cmocka_unit_test(references),
        cmocka_unit_test(out_of_memory),
    };
    return cmocka_run_group_tests(tests, quiet_log, NULL);
}
