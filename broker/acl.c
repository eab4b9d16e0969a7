/* Mosquitto ACL files: parsing into per-user rule lists and patterns, and the access decision
 * for topic names (READ/WRITE) and subscription filters (SUBSCRIBE).
 *
 * HOW FILTERS ARE COMPARED
 * Rules and subscription filters are both MQTT filters, compared one level at a time:
 * - match(rule, topic): the usual MQTT matching of a topic name.
 * - overlap(rule, filter): some topic name matches both. Walk both level lists: '#' on
 *   either side ends the walk with "yes"; '+' pairs with any single level; literals must be
 *   equal; when one list ends first, the other must end with exactly "#" ("a/#" matches "a").
 * - covers(rule, filter): every topic the filter matches, the rule matches too. Walk both:
 *   rule '#' ends with "yes"; rule '+' pairs with anything but '#'; a rule literal needs the
 *   same literal. When the filter ends the rule must end too, or end with "#".
 * Everywhere, a wildcard in the first level does not match a level starting with '$'
 * [MQTT-4.7.2-1]. In rules, a level that is exactly "%u" or "%c" stands for the username or
 * client id as one literal level (a value containing '/' therefore never matches).
 */
#include "acl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

/* strdup through the allocation wrapper (mem.h). */
static char *str_dup(const char *s)
{
    return mem_strndup(s, strlen(s));
}

#define ACL_DENY 0u

struct acl_rule {
    char *topic;
    unsigned access; /* ACL_READ | ACL_WRITE bits; ACL_DENY (0) for deny */
    bool uses_username, uses_client_id;
};

struct acl_list {
    struct acl_rule *rules;
    size_t count, cap;
};

struct acl_user {
    char *username;
    struct acl_list list;
};

struct acl {
    struct acl_list anonymous;
    struct acl_user *users; /* sorted by username after loading */
    size_t user_count, user_cap;
    struct acl_list patterns;
};

/* ---- levels ---- */

struct level {
    const char *p;
    size_t len;
};

/* Cursor over the levels of a filter; `done` once the last level was returned. */
struct cursor {
    const char *s;
    bool done;
};

static bool next_level(struct cursor *c, struct level *out)
{
    if (c->done) return false;
    const char *slash = strchr(c->s, '/');
    out->p = c->s;
    if (slash == NULL) {
        out->len = strlen(c->s);
        c->done = true;
    } else {
        out->len = (size_t)(slash - c->s);
        c->s = slash + 1;
    }
    return true;
}

static bool is_lit(const struct level *l, const char *lit)
{
    size_t n = strlen(lit);
    return l->len == n && memcmp(l->p, lit, n) == 0;
}

static bool is_plus(const struct level *l)
{
    return is_lit(l, "+");
}

static bool is_hash(const struct level *l)
{
    return is_lit(l, "#");
}

static bool is_wild(const struct level *l)
{
    return is_plus(l) || is_hash(l);
}

static bool level_eq(const struct level *a, const struct level *b)
{
    return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

/* The substitution context of a rule: %u and %c values (NULL when absent). */
struct subst {
    const char *username;
    const char *client_id;
};

/* A rule's level after substitution; a substituted level is always a literal. */
static void rule_level(const struct level *raw, const struct subst *s, struct level *out,
                       bool *literal)
{
    *out = *raw;
    *literal = false;
    if (s != NULL && is_lit(raw, "%u") && s->username != NULL) {
        out->p = s->username;
        out->len = strlen(s->username);
        *literal = true;
    } else if (s != NULL && is_lit(raw, "%c") && s->client_id != NULL) {
        out->p = s->client_id;
        out->len = strlen(s->client_id);
        *literal = true;
    }
}

static bool starts_dollar(const struct level *l)
{
    return l->len > 0 && l->p[0] == '$';
}

/* Whether the rule (with substitution) matches topic name `topic`. */
static bool rule_matches(const char *rule, const struct subst *s, const char *topic)
{
    struct cursor rc = {rule, false}, tc = {topic, false};
    struct level raw, r, t = {NULL, 0};
    bool lit;
    for (int depth = 0;; depth++) {
        bool hr = next_level(&rc, &raw), ht = next_level(&tc, &t);
        if (!hr) return !ht;
        rule_level(&raw, s, &r, &lit);
        if (!lit && is_hash(&r)) return !(depth == 0 && ht && starts_dollar(&t));
        if (!ht) return false;
        if (!lit && is_plus(&r)) {
            if (depth == 0 && starts_dollar(&t)) return false;
            continue;
        }
        if (!level_eq(&r, &t)) return false;
    }
}

/* Whether some topic name matches both the rule and the filter. */
static bool rule_overlaps(const char *rule, const struct subst *s, const char *filter)
{
    struct cursor rc = {rule, false}, fc = {filter, false};
    struct level raw, r, f;
    bool lit;
    for (int depth = 0;; depth++) {
        bool hr = next_level(&rc, &raw), hf = next_level(&fc, &f);
        if (!hr && !hf) return true;
        if (!hr) /* the filter continues: only "#" also matches the shorter topic */
            return is_hash(&f) && fc.done;
        rule_level(&raw, s, &r, &lit);
        bool r_hash = !lit && is_hash(&r), r_plus = !lit && is_plus(&r);
        if (!hf) return r_hash;
        bool f_wild = is_wild(&f);
        if (depth == 0) {
            /* A wildcard never matches a '$' level; two wildcards meet on other topics. */
            if ((r_hash || r_plus) && !f_wild && starts_dollar(&f)) return false;
            if (f_wild && !(r_hash || r_plus) && starts_dollar(&r)) return false;
        }
        if (r_hash || is_hash(&f)) return true;
        if (r_plus || is_plus(&f)) continue;
        if (!level_eq(&r, &f)) return false;
    }
}

/* Whether every topic name the filter matches is matched by the rule. */
static bool rule_covers(const char *rule, const struct subst *s, const char *filter)
{
    struct cursor rc = {rule, false}, fc = {filter, false};
    struct level raw, r, f;
    bool lit;
    for (int depth = 0;; depth++) {
        bool hr = next_level(&rc, &raw), hf = next_level(&fc, &f);
        if (!hr) return !hf;
        rule_level(&raw, s, &r, &lit);
        bool r_hash = !lit && is_hash(&r), r_plus = !lit && is_plus(&r);
        if (!hf) return r_hash && rc.done;
        if (r_hash) return !(depth == 0 && !is_wild(&f) && starts_dollar(&f));
        if (r_plus) {
            if (is_hash(&f) || (depth == 0 && !is_wild(&f) && starts_dollar(&f))) return false;
            continue;
        }
        if (is_wild(&f) || !level_eq(&r, &f)) return false;
    }
}

/* mosquitto_sub_topic_check: '+' and '#' fill a whole level, '#' only last, no empty string. */
static bool filter_is_valid(const char *f)
{
    size_t n = strlen(f);
    if (n == 0 || n > 65535) return false;
    for (size_t i = 0; i < n; i++) {
        if (f[i] == '+' || f[i] == '#') {
            if (i > 0 && f[i - 1] != '/') return false;
            if (i + 1 < n && f[i + 1] != '/') return false;
            if (f[i] == '#' && i + 1 != n) return false;
        }
    }
    return true;
}

/* ---- loading ---- */

static void list_free(struct acl_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        mem_free(l->rules[i].topic);
    mem_free(l->rules);
}

void acl_free(struct acl *acl)
{
    if (acl == NULL) return;
    list_free(&acl->anonymous);
    list_free(&acl->patterns);
    for (size_t i = 0; i < acl->user_count; i++) {
        mem_free(acl->users[i].username);
        list_free(&acl->users[i].list);
    }
    mem_free(acl->users);
    mem_free(acl);
}

static bool has_level(const char *topic, const char *lvl)
{
    struct cursor c = {topic, false};
    struct level l;
    while (next_level(&c, &l))
        if (is_lit(&l, lvl)) return true;
    return false;
}

static int list_add(struct acl_list *l, const char *topic, unsigned access, bool pattern)
{
    if (l->count == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        struct acl_rule *g = mem_realloc(l->rules, ncap * sizeof *g);
        if (g == NULL) return -ENOMEM;
        l->rules = g;
        l->cap = ncap;
    }
    struct acl_rule *r = &l->rules[l->count];
    if ((r->topic = str_dup(topic)) == NULL) return -ENOMEM;
    r->access = access;
    r->uses_username = pattern && has_level(topic, "%u");
    r->uses_client_id = pattern && has_level(topic, "%c");
    l->count++;
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static char *word(char **s)
{
    char *w = *s;
    while (*w == ' ' || *w == '\t')
        w++;
    if (*w == '\0') return NULL;
    char *e = w;
    while (*e != '\0' && *e != ' ' && *e != '\t')
        e++;
    if (*e != '\0') *e++ = '\0';
    *s = e;
    return w;
}

static int user_cmp(const void *a, const void *b)
{
    return strcmp(((const struct acl_user *)a)->username, ((const struct acl_user *)b)->username);
}

/* Finds or adds the user's section; returns its index or -ENOMEM. */
static long user_section(struct acl *acl, const char *name)
{
    for (size_t i = 0; i < acl->user_count; i++)
        if (strcmp(acl->users[i].username, name) == 0) return (long)i;
    if (acl->user_count == acl->user_cap) {
        size_t ncap = acl->user_cap ? acl->user_cap * 2 : 8;
        struct acl_user *g = mem_realloc(acl->users, ncap * sizeof *g);
        if (g == NULL) return -ENOMEM;
        acl->users = g;
        acl->user_cap = ncap;
    }
    struct acl_user *u = &acl->users[acl->user_count];
    memset(u, 0, sizeof *u);
    if ((u->username = str_dup(name)) == NULL) return -ENOMEM;
    return (long)acl->user_count++;
}

#define ACL_FAIL(rc, ...)                                                                          \
    do {                                                                                           \
        if (err != NULL && errlen > 0) snprintf(err, errlen, __VA_ARGS__);                         \
        return rc;                                                                                 \
    } while (0)

/* Parses one line; *user is the current section (-1: anonymous). */
static int parse_line(struct acl *acl, long *user, const char *name, int lineno, char *line,
                      char *err, size_t errlen)
{
    char *s = trim(line);
    if (*s == '\0' || *s == '#') return 0;
    char *kw = word(&s);
    if (strcmp(kw, "topic") == 0 || strcmp(kw, "pattern") == 0) {
        bool pattern = kw[0] == 'p';
        char *access_s = word(&s);
        char *topic = trim(s);
        unsigned access;
        if (access_s == NULL) ACL_FAIL(-EINVAL, "%s:%d: %s: missing topic", name, lineno, kw);
        if (*topic == '\0') {
            topic = access_s;
            access = ACL_READ | ACL_WRITE;
        } else if (strcmp(access_s, "read") == 0) {
            access = ACL_READ;
        } else if (strcmp(access_s, "write") == 0) {
            access = ACL_WRITE;
        } else if (strcmp(access_s, "readwrite") == 0) {
            access = ACL_READ | ACL_WRITE;
        } else if (strcmp(access_s, "deny") == 0) {
            access = ACL_DENY;
        } else {
            ACL_FAIL(-EINVAL,
                     "%s:%d: %s: invalid access type '%s' (expected read, write, readwrite or "
                     "deny)",
                     name, lineno, kw, access_s);
        }
        if (!filter_is_valid(topic))
            ACL_FAIL(-EINVAL, "%s:%d: %s: invalid topic '%s'", name, lineno, kw, topic);
        struct acl_list *l = pattern     ? &acl->patterns
                             : *user < 0 ? &acl->anonymous
                                         : &acl->users[*user].list;
        if (list_add(l, topic, access, pattern) != 0) ACL_FAIL(-ENOMEM, "%s: out of memory", name);
        return 0;
    }
    if (strcmp(kw, "user") == 0) {
        char *u = trim(s);
        if (*u == '\0') ACL_FAIL(-EINVAL, "%s:%d: user: missing username", name, lineno);
        long idx = user_section(acl, u);
        if (idx < 0) ACL_FAIL(-ENOMEM, "%s: out of memory", name);
        *user = idx;
        return 0;
    }
    ACL_FAIL(-EINVAL, "%s:%d: %s: unknown keyword (expected topic, pattern or user)", name, lineno,
             kw);
}

int acl_load_buffer(const char *name, const char *buf, size_t len, struct acl **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (err != NULL && errlen > 0) err[0] = '\0';
    struct acl *acl = mem_calloc(1, sizeof *acl);
    char *text = mem_malloc(len + 1);
    int rc = 0, lineno = 0;
    long user = -1;
    if (acl == NULL || text == NULL) {
        mem_free(text);
        mem_free(acl);
        ACL_FAIL(-ENOMEM, "%s: out of memory", name);
    }
    memcpy(text, buf, len);
    text[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        const char *z = memchr(buf, '\0', len);
        lineno = 1;
        for (const char *c = buf; c < z; c++)
            lineno += *c == '\n';
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s:%d: NUL byte in line", name, lineno);
        rc = -EINVAL;
    }
    for (char *pos = text; rc == 0 && *pos != '\0';) {
        char *nl = strchr(pos, '\n');
        if (nl != NULL) *nl = '\0';
        rc = parse_line(acl, &user, name, ++lineno, pos, err, errlen);
        if (nl == NULL) break;
        pos = nl + 1;
    }
    mem_free(text);
    if (rc != 0) {
        acl_free(acl);
        return rc;
    }
    if (acl->user_count > 1) qsort(acl->users, acl->user_count, sizeof *acl->users, user_cmp);
    *out = acl;
    return 0;
}

int acl_load(const char *path, struct acl **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    *out = NULL;
    if (f == NULL) {
        int e = errno;
        ACL_FAIL(-e, "%s: cannot open ACL file: %s", path, strerror(e));
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 4096) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *g = mem_realloc(buf, ncap);
            if (g == NULL) {
                mem_free(buf);
                fclose(f);
                ACL_FAIL(-ENOMEM, "%s: out of memory", path);
            }
            buf = g;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad) {
        mem_free(buf);
        ACL_FAIL(-EIO, "%s: read error", path);
    }
    int rc = acl_load_buffer(path, buf, n, out, err, errlen);
    mem_free(buf);
    return rc;
}

/* ---- decision ---- */

static const struct acl_list *user_list(const struct acl *acl, const char *username)
{
    if (username == NULL) return &acl->anonymous;
    size_t lo = 0, hi = acl->user_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(username, acl->users[mid].username);
        if (c == 0) return &acl->users[mid].list;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

enum verdict { NO_MATCH, GRANT, DENY };

/* Applies one list: DENY if a deny rule hits, GRANT if a granting rule hits, else NO_MATCH.
 * `sub`: topic is a filter (SUBSCRIBE). Patterns get substitution (`s` non-NULL). */
static enum verdict apply_list(const struct acl_list *l, const struct subst *s, const char *topic,
                               unsigned want, bool sub, bool *granted)
{
    for (size_t i = 0; i < l->count; i++) {
        const struct acl_rule *r = &l->rules[i];
        if (s != NULL) {
            if (r->uses_username && s->username == NULL) continue;
            if (r->uses_client_id && s->client_id == NULL) continue;
        }
        if (r->access == ACL_DENY) {
            if (sub ? rule_covers(r->topic, s, topic) : rule_matches(r->topic, s, topic))
                return DENY;
        } else if (!*granted && (r->access & want)) {
            if (sub ? rule_overlaps(r->topic, s, topic) : rule_matches(r->topic, s, topic))
                *granted = true;
        }
    }
    return *granted ? GRANT : NO_MATCH;
}

static bool has_wild_char(const char *s)
{
    return s != NULL && strpbrk(s, "+#") != NULL;
}

/* Mosquitto's checks on '$' topics, made with and without an ACL file. */
static int dollar_check(const char *topic, enum acl_access access)
{
    if (topic[0] != '$') return 0;
    if (strncmp(topic, "$SYS", 4) == 0 && (topic[4] == '/' || topic[4] == '\0')) {
        if (access == ACL_WRITE)
            return rule_matches("$SYS/broker/connection/+/state", NULL, topic) ? 0 : -EACCES;
        return 0;
    }
    if (strncmp(topic, "$share", 6) == 0 && (topic[6] == '/' || topic[6] == '\0'))
        return access == ACL_SUBSCRIBE || access == ACL_UNSUBSCRIBE ? 0 : -EACCES;
    return 0;
}

int acl_check(const struct acl *acl, const char *client_id, const char *username, const char *topic,
              enum acl_access access)
{
    if (topic == NULL) return -EACCES;
    if (access == ACL_UNSUBSCRIBE) return 0;
    if (access == ACL_SUBSCRIBE && strncmp(topic, "$share/", 7) == 0) {
        const char *slash = strchr(topic + 7, '/');
        if (slash == NULL || slash == topic + 7 || slash[1] == '\0') return -EACCES;
        topic = slash + 1;
    }
    if (dollar_check(topic, access) != 0) return -EACCES;
    if (acl == NULL) return 0;
    if (access != ACL_READ && access != ACL_WRITE && access != ACL_SUBSCRIBE) return -EACCES;
    bool sub = access == ACL_SUBSCRIBE;
    unsigned want = sub ? ACL_READ : (unsigned)access;
    bool granted = false;

    const struct acl_list *own = user_list(acl, username);
    if (own != NULL && apply_list(own, NULL, topic, want, sub, &granted) == DENY) return -EACCES;

    if (acl->patterns.count > 0) {
        struct subst s = {username, client_id};
        /* CVE-2017-7650: a '+' or '#' in a substituted value would act as a wildcard. */
        for (size_t i = 0; i < acl->patterns.count; i++) {
            const struct acl_rule *r = &acl->patterns.rules[i];
            if ((r->uses_username && has_wild_char(username)) ||
                (r->uses_client_id && has_wild_char(client_id)))
                return -EACCES;
        }
        if (apply_list(&acl->patterns, &s, topic, want, sub, &granted) == DENY) return -EACCES;
    }
    return granted ? 0 : -EACCES;
}
