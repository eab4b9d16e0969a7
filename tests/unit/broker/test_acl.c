/* Tests of broker/acl.c: the Mosquitto ACL file format and the access matrix (user sections,
 * anonymous section, patterns with %u/%c, deny wins, read/write/subscribe, $SYS and $share). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "acl.h"
#include "mem.h"
#include "testlib.h"

static char err[512];

static struct acl *load_ok(const char *text)
{
    struct acl *acl = NULL;
    int rc = acl_load_buffer("t.acl", text, strlen(text), &acl, err, sizeof err);
    if (rc != 0) fail_msg("acl_load_buffer: %d %s", rc, err);
    return acl;
}

struct access_case {
    const char *client_id;
    const char *username;
    const char *topic;
    enum acl_access access;
    int expect; /* 0 or -EACCES */
};

static void run_cases(const struct acl *acl, const struct access_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = acl_check(acl, c[i].client_id, c[i].username, c[i].topic, c[i].access);
        if (rc != c[i].expect)
            fail_msg("case %zu: client %s user %s topic '%s' access %d: got %d, expected %d", i,
                     c[i].client_id, c[i].username ? c[i].username : "(anonymous)", c[i].topic,
                     c[i].access, rc, c[i].expect);
    }
}

static const char matrix_file[] = "# anonymous clients\n"
                                  "topic read public/#\n"
                                  "topic deny public/secret\n"
                                  "\n"
                                  "user alice\n"
                                  "topic readwrite alice/#\n"
                                  "topic read sensors/+/temp\n"
                                  "topic deny sensors/broken/temp\n"
                                  "topic write cmd\n"
                                  "topic sensors/raw\n"
                                  "\n"
                                  "user bob\n"
                                  "topic write sensors/bob/#\n"
                                  "\n"
                                  "user carol\n"
                                  "topic readwrite users/#\n"
                                  "topic read with space/x\n"
                                  "\n"
                                  "pattern read devices/%c/in\n"
                                  "pattern write devices/%c/out\n"
                                  "pattern readwrite users/%u/#\n"
                                  "pattern deny users/%u/private\n"
                                  "user alice\n"
                                  "topic read late/alice\n";

#define R  ACL_READ
#define W  ACL_WRITE
#define S  ACL_SUBSCRIBE
#define U  ACL_UNSUBSCRIBE
#define OK 0
#define NO (-EACCES)

/* The access matrix of one file: per user, anonymous, patterns, deny wins. */
static void access_matrix(void **state)
{
    static const struct access_case cases[] = {
        /* anonymous section */
        {"c1", NULL, "public/a", R, OK},
        {"c1", NULL, "public/a/b", R, OK},
        {"c1", NULL, "public", R, OK}, /* public/# matches its parent */
        {"c1", NULL, "public/a", W, NO},
        {"c1", NULL, "public/secret", R, NO},
        {"c1", NULL, "alice/x", R, NO},
        {"c1", NULL, "public/#", S, OK},
        {"c1", NULL, "#", S, OK},
        {"c1", NULL, "public/secret", S, NO},
        {"c1", NULL, "private/#", S, NO},
        {"c1", NULL, "private/#", U, OK},
        /* alice: her own section only */
        {"c2", "alice", "alice/x", R, OK},
        {"c2", "alice", "alice/x", W, OK},
        {"c2", "alice", "alice", W, OK},
        {"c2", "alice", "sensors/a/temp", R, OK},
        {"c2", "alice", "sensors/a/temp", W, NO},
        {"c2", "alice", "sensors/broken/temp", R, NO},
        {"c2", "alice", "sensors/a/humidity", R, NO},
        {"c2", "alice", "cmd", W, OK},
        {"c2", "alice", "cmd", R, NO},
        {"c2", "alice", "sensors/raw", R, OK},
        {"c2", "alice", "sensors/raw", W, OK},
        {"c2", "alice", "late/alice", R, OK}, /* a repeated user line adds to the section */
        {"c2", "alice", "public/a", R, NO},   /* no anonymous rules for users */
        {"c2", "alice", "sensors/#", S, OK},  /* overlaps sensors/+/temp */
        {"c2", "alice", "sensors/+/temp", S, OK},
        {"c2", "alice", "sensors/broken/temp", S, NO}, /* covered by the deny */
        {"c2", "alice", "sensors/+/humidity", S, NO},
        {"c2", "alice", "cmd", S, NO}, /* write-only */
        {"c2", "alice", "+/x", S, OK}, /* overlaps alice/# */
        /* bob */
        {"c3", "bob", "sensors/bob/t", W, OK},
        {"c3", "bob", "sensors/bob/t", R, NO},
        {"c3", "bob", "sensors/#", S, NO},
        /* unknown user: only patterns apply */
        {"c4", "mallory", "alice/x", R, NO},
        {"c4", "mallory", "users/mallory/x", R, OK},
        {"c4", "mallory", "public/a", R, NO},
        /* patterns with %c */
        {"dev1", NULL, "devices/dev1/in", R, OK},
        {"dev1", NULL, "devices/dev1/in", W, NO},
        {"dev1", NULL, "devices/dev1/out", W, OK},
        {"dev1", NULL, "devices/dev2/in", R, NO},
        {"dev1", NULL, "devices/+/in", S, OK},
        {"dev1", NULL, "devices/dev2/in", S, NO},
        {"dev1", "alice", "devices/dev1/in", R, OK},
        /* patterns with %u: not for anonymous clients */
        {"c5", NULL, "users/alice/x", R, NO},
        {"c5", "alice", "users/alice/x", R, OK},
        {"c5", "alice", "users/alice/x", W, OK},
        {"c5", "alice", "users/bob/x", R, NO},
        {"c5", "alice", "users/alice/private", R, NO},
        {"c5", "alice", "users/alice/#", S, OK},
        {"c5", "alice", "users/alice/private", S, NO},
        /* a pattern deny wins over a grant from the user's own lines */
        {"c6", "carol", "users/dave/private", R, OK},
        {"c6", "carol", "users/carol/private", R, NO},
        {"c6", "carol", "users/carol/private", W, NO},
        {"c6", "carol", "with space/x", R, OK},
        /* a username or client id with a wildcard character is refused when patterns
         * substitute it (CVE-2017-7650) */
        {"dev+", NULL, "devices/dev+/in", R, NO},
        {"dev#", NULL, "public/a", R, NO},
        {"c7", "a+", "users/a+/x", R, NO},
        {"c7", "a/b", "users/a/b/x", R, NO}, /* %u is one level */
        /* $SYS: never writable, readable only by a rule naming it */
        {"c2", "alice", "$SYS/broker/uptime", R, NO},
        {"c2", "alice", "$SYS/broker/uptime", W, NO},
        /* $share: checked as its filter; not publishable */
        {"c1", NULL, "$share/g/public/#", S, OK},
        {"c1", NULL, "$share/g/private/x", S, NO},
        {"c1", NULL, "$share/g", S, NO},
        {"c1", NULL, "$share//public/a", S, NO},
        {"c1", NULL, "$share/g/public/a", W, NO},
    };
    (void)state;
    struct acl *acl = load_ok(matrix_file);
    run_cases(acl, cases, sizeof cases / sizeof cases[0]);
    acl_free(acl);
}

/* Without an ACL file everything is allowed except Mosquitto's '$' rules. */
static void no_acl_allows_all(void **state)
{
    static const struct access_case cases[] = {
        {"c", NULL, "a/b", R, OK},
        {"c", NULL, "a/b", W, OK},
        {"c", "u", "#", S, OK},
        {"c", "u", "$SYS/#", S, OK},
        {"c", "u", "$SYS/broker/uptime", R, OK},
        {"c", "u", "$SYS/broker/uptime", W, NO},
        {"c", "u", "$SYS/broker/connection/br1/state", W, OK},
        {"c", "u", "$share/g/a", W, NO},
        {"c", "u", "$share/g/a", S, OK},
        {"c", "u", "$other/x", W, OK},
    };
    (void)state;
    run_cases(NULL, cases, sizeof cases / sizeof cases[0]);
    assert_int_equal(acl_check(NULL, "c", NULL, NULL, ACL_READ), -EACCES);
    acl_free(NULL);
}

/* SUBSCRIBE is allowed when the filter overlaps a read rule: table of rule/filter pairs,
 * including '$' topics, which a leading wildcard never matches [MQTT-4.7.2-1]. */
static void subscribe_overlap(void **state)
{
    static const struct {
        const char *rule, *filter;
        int expect;
    } cases[] = {
        {"a/b", "a/b", OK},       {"a/b", "a/c", NO},    {"a/+", "a/b", OK},  {"a/b", "a/+", OK},
        {"a/#", "a", OK},         {"a", "a/#", OK},      {"a", "a/+", NO},    {"a/+", "a", NO},
        {"#", "x/y/z", OK},       {"+/+", "a", NO},      {"+/+", "#", OK},    {"a/b/c", "a/#", OK},
        {"a/b/c", "+/+/+/+", NO}, {"$SYS/#", "#", NO},   {"#", "$SYS/x", NO}, {"+/x", "$SYS/x", NO},
        {"$SYS/+", "$SYS/#", OK}, {"$SYS/x", "+/x", NO}, {"+", "+", OK},      {"a//b", "a/+/b", OK},
        {"a//b", "a/b", NO},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "topic read %s\n", cases[i].rule);
        struct acl *acl = load_ok(text);
        int rc = acl_check(acl, "c", NULL, cases[i].filter, ACL_SUBSCRIBE);
        if (rc != cases[i].expect)
            fail_msg("rule '%s' filter '%s': got %d, expected %d", cases[i].rule, cases[i].filter,
                     rc, cases[i].expect);
        acl_free(acl);
    }
}

/* A deny rule refuses a SUBSCRIBE only when it covers every topic of the filter. */
static void subscribe_deny_covers(void **state)
{
    static const struct {
        const char *deny, *filter;
        int expect;
    } cases[] = {
        {"a/#", "a/b", NO},   {"a/#", "a", NO},       {"a/#", "a/#", NO},   {"a/+", "a/b", NO},
        {"a/+", "a/#", OK},   {"a/+", "a/+", NO},     {"a/b", "a/+", OK},   {"#", "x/y", NO},
        {"+/b", "a/b", NO},   {"a/+/c", "a/+/c", NO}, {"a/+/c", "a/#", OK}, {"a", "a/#", OK},
        {"a/b", "a/b/c", OK}, {"+", "#", OK},         {"#", "#", NO},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "topic deny %s\ntopic read #\n", cases[i].deny);
        struct acl *acl = load_ok(text);
        int rc = acl_check(acl, "c", NULL, cases[i].filter, ACL_SUBSCRIBE);
        if (rc != cases[i].expect)
            fail_msg("deny '%s' filter '%s': got %d, expected %d", cases[i].deny, cases[i].filter,
                     rc, cases[i].expect);
        acl_free(acl);
    }
}

/* Topic-name matching for READ/WRITE follows MQTT filter matching. */
static void topic_matching(void **state)
{
    static const struct {
        const char *rule, *topic;
        int expect;
    } cases[] = {
        {"a/#", "a", OK},    {"a/#", "a/b/c", OK}, {"a/+", "a/b", OK},   {"a/+", "a/b/c", NO},
        {"a/+", "a", NO},    {"+", "a", OK},       {"+", "a/b", NO},     {"#", "a/b", OK},
        {"#", "$SYS/a", NO}, {"+/a", "$x/a", NO},  {"$x/+", "$x/a", OK}, {"a/b", "a/b/", NO},
        {"a/+", "a/", OK},   {"+/+", "/a", OK},    {"%u/x", "%u/x", OK},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "topic read %s\n", cases[i].rule);
        struct acl *acl = load_ok(text);
        int rc = acl_check(acl, "c", NULL, cases[i].topic, ACL_READ);
        if (rc != cases[i].expect)
            fail_msg("rule '%s' topic '%s': got %d, expected %d", cases[i].rule, cases[i].topic, rc,
                     cases[i].expect);
        acl_free(acl);
    }
}

/* Every malformed line is refused with `FILE:LINE: what is wrong`. */
static void parse_errors(void **state)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"topic\n", "t.acl:1: topic: missing topic"},
        {"\n\npattern\n", "t.acl:3: pattern: missing topic"},
        {"topic foo bar\n",
         "t.acl:1: topic: invalid access type 'foo' (expected read, write, readwrite or deny)"},
        {"topic read a/#/b\n", "t.acl:1: topic: invalid topic 'a/#/b'"},
        {"pattern write a+\n", "t.acl:1: pattern: invalid topic 'a+'"},
        {"user\n", "t.acl:1: user: missing username"},
        {"bogus x\n", "t.acl:1: bogus: unknown keyword (expected topic, pattern or user)"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct acl *acl = (struct acl *)1;
        int rc =
            acl_load_buffer("t.acl", cases[i].text, strlen(cases[i].text), &acl, err, sizeof err);
        assert_int_equal(rc, -EINVAL);
        assert_null(acl);
        assert_string_equal(err, cases[i].msg);
    }
    struct acl *acl;
    assert_int_equal(acl_load("/nonexistent/acl", &acl, err, sizeof err), -ENOENT);
    assert_string_equal(err, "/nonexistent/acl: cannot open ACL file: No such file or directory");
    static const char nul[] = "topic read a\nto\0pic read b\n";
    assert_int_equal(acl_load_buffer("t.acl", nul, sizeof nul - 1, &acl, err, sizeof err), -EINVAL);
    assert_string_equal(err, "t.acl:2: NUL byte in line");
}

/* The file form is read from disk the same way (Mosquitto's example file, CRLF ends). */
static void load_from_file(void **state)
{
    const char *dir = test_mkdtemp();
    char path[256];
    (void)state;
    snprintf(path, sizeof path, "%s/acl", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("topic read $SYS/#\r\n"
          "user roger\r\n"
          "topic foo/bar\r\n"
          "pattern write $SYS/broker/connection/%c/state\r\n",
          f);
    fclose(f);
    struct acl *acl = NULL;
    assert_int_equal(acl_load(path, &acl, err, sizeof err), 0);
    assert_int_equal(acl_check(acl, "c", NULL, "$SYS/broker/uptime", ACL_READ), 0);
    assert_int_equal(acl_check(acl, "c", NULL, "$SYS/#", ACL_SUBSCRIBE), 0);
    assert_int_equal(acl_check(acl, "c", "roger", "foo/bar", ACL_WRITE), 0);
    assert_int_equal(acl_check(acl, "c", "roger", "foo/bar", ACL_READ), 0);
    assert_int_equal(acl_check(acl, "c", "roger", "$SYS/broker/uptime", ACL_READ), -EACCES);
    assert_int_equal(acl_check(acl, "br1", "roger", "$SYS/broker/connection/br1/state", ACL_WRITE),
                     0);
    assert_int_equal(acl_check(acl, "br1", "roger", "$SYS/broker/connection/br2/state", ACL_WRITE),
                     -EACCES);
    acl_free(acl);
    test_rmdir(dir);
}

/* Every allocation of a load can fail: -ENOMEM, nothing leaked, no acl returned. */
static void out_of_memory(void **state)
{
    (void)state;
    for (long delay = 0;; delay++) {
        struct acl *acl = (struct acl *)1;
        long live = mem_live_blocks();
        unsigned long faults = mem_fault_count();
        mem_fault_set(delay, 1);
        int rc =
            acl_load_buffer("t.acl", matrix_file, sizeof matrix_file - 1, &acl, err, sizeof err);
        mem_fault_set(-1, 0);
        bool hit = mem_fault_count() != faults;
        if (!hit) {
            assert_int_equal(rc, 0);
            assert_int_equal(acl_check(acl, "c", "alice", "alice/x", ACL_WRITE), 0);
            acl_free(acl);
            assert_int_equal(mem_live_blocks(), live);
            assert_true(delay > 10);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
        assert_null(acl);
        assert_int_equal(mem_live_blocks(), live);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(access_matrix),     cmocka_unit_test(no_acl_allows_all),
        cmocka_unit_test(subscribe_overlap), cmocka_unit_test(subscribe_deny_covers),
        cmocka_unit_test(topic_matching),    cmocka_unit_test(parse_errors),
        cmocka_unit_test(load_from_file),    cmocka_unit_test(out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
