/* The mosquitto.conf reader: one table of directives (name, scope, type, bounds, field)
 * drives a line parser that fills a struct config, then listeners are resolved (default
 * listener, local-only mode, -p, per_listener_settings). */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"

/* strdup through the allocation wrapper (mem.h). */
static char *str_dup(const char *s)
{
    return mem_strndup(s, strlen(s));
}

#define CONFIG_DEFAULT_PORT         1883
#define CONFIG_MQTT_MAX_PAYLOAD     268435455u
#define CONFIG_MQTT_MAX_PACKET      268435460u
#define CONFIG_MAX_INCLUDE_FILES    4096
#define CONFIG_DEFAULT_CLUSTER_PORT 7700
#define CONFIG_DEFAULT_ADMIN_PORT   8088

/* Where a directive's field lives. */
enum dir_scope {
    SCOPE_GLOBAL,   /* struct config */
    SCOPE_LISTENER, /* the current listener (the default listener before any `listener`) */
    SCOPE_SECURITY, /* global, or the current listener's with per_listener_settings true */
};

enum dir_type {
    TYPE_BOOL,
    TYPE_INT,         /* integer in [min, max] stored in a field of `width` bytes */
    TYPE_STRING,      /* the rest of the line, trimmed; a second occurrence is an error */
    TYPE_SPECIAL,     /* parsed by `fn` */
    TYPE_IGNORED,     /* accepted and ignored (documented) */
    TYPE_UNSUPPORTED, /* recognized; stops start-up with "not supported yet" */
};

struct parser;
struct directive;
typedef int (*dir_fn)(struct parser *p, const struct directive *d, char *value);

struct directive {
    const char *name;
    enum dir_scope scope;
    enum dir_type type;
    size_t offset;
    unsigned char width;
    bool is_signed;
    long long min, max;
    dir_fn fn;
};

/* Parser state for one config_load(). */
struct parser {
    struct config *cfg;
    const char *file;
    int line;
    const char *directive;
    char *err;
    size_t errlen;
    int depth;           /* 0: the main file */
    struct stat main_st; /* to refuse including the main file */
    bool have_main_st;
    long cur;                     /* index of the current listener; -1: the default one */
    struct config_listener deflt; /* listener options given before any `listener` */
    bool deflt_port_set, deflt_bind_set;
    bool security_seen;              /* a security directive was given */
    bool log_dest_set, log_type_set; /* the first occurrence replaces the default */
    /* the first cluster_peers or cluster_join line, for the checks at the end */
    char cluster_file[1024];
    int cluster_line;
    const char *cluster_directive;
    /* the first admin_certfile/keyfile/cafile line, for the check at the end */
    char admin_tls_file[1024];
    int admin_tls_line;
    const char *admin_tls_directive;
};

/* ---- small helpers ---- */

static int fail(struct parser *p, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats `FILE:LINE: DIRECTIVE: message` into p->err and returns rc. */
static int fail(struct parser *p, int rc, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->err != NULL && p->errlen > 0) {
        if (p->directive != NULL)
            snprintf(p->err, p->errlen, "%s:%d: %s: %s", p->file, p->line, p->directive, msg);
        else if (p->line > 0)
            snprintf(p->err, p->errlen, "%s:%d: %s", p->file, p->line, msg);
        else
            snprintf(p->err, p->errlen, "%s: %s", p->file, msg);
        /* The message quotes the file; keep terminal control bytes out of it. */
        for (char *c = p->err; *c != '\0'; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    }
    return rc;
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

/* Splits the next whitespace-separated word off *s; NULL at the end of the line. */
static char *next_word(char **s)
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

/* Fails unless nothing but an optional `# comment` is left on the line. */
static int no_more(struct parser *p, char *rest)
{
    char *w = next_word(&rest);
    if (w != NULL && w[0] != '#') return fail(p, -EINVAL, "unexpected extra value '%s'", w);
    return 0;
}

static int parse_ll(const char *s, long long *out)
{
    if (s == NULL || *s == '\0') return -EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || isspace((unsigned char)s[0])) return -EINVAL;
    *out = v;
    return 0;
}

static void store_int(void *field, unsigned width, long long v)
{
    switch (width) {
    case 1:
        *(uint8_t *)field = (uint8_t)v;
        break;
    case 2:
        *(uint16_t *)field = (uint16_t)v;
        break;
    case 4:
        *(uint32_t *)field = (uint32_t)v; /* also int32_t/int: same representation */
        break;
    default:
        *(uint64_t *)field = (uint64_t)v;
        break;
    }
}

static struct config_listener *cur_listener(struct parser *p)
{
    return p->cur < 0 ? &p->deflt : &p->cfg->listeners[p->cur];
}

static struct config_security *cur_security(struct parser *p)
{
    if (!p->cfg->per_listener_settings) return &p->cfg->security;
    return &cur_listener(p)->security;
}

static void *field_of(struct parser *p, const struct directive *d)
{
    char *base;
    switch (d->scope) {
    case SCOPE_LISTENER:
        base = (char *)cur_listener(p);
        break;
    case SCOPE_SECURITY:
        base = (char *)cur_security(p);
        break;
    default:
        base = (char *)p->cfg;
        break;
    }
    return base + d->offset;
}

/* Strings are left NULL while parsing, so that a repeated string directive is detected;
 * their defaults are filled in afterwards (strings_fill). */
static void security_defaults(struct config_security *s)
{
    memset(s, 0, sizeof *s);
    s->allow_zero_length_clientid = true;
}

static int fill(char **field, const char *dflt)
{
    if (*field == NULL && (*field = str_dup(dflt)) == NULL) return -ENOMEM;
    return 0;
}

static int security_fill(struct config_security *s)
{
    return fill(&s->auto_id_prefix, "auto-");
}

static void security_free(struct config_security *s)
{
    mem_free(s->auto_id_prefix);
    mem_free(s->password_file);
    mem_free(s->acl_file);
    memset(s, 0, sizeof *s);
}

static int dup_or_null(const char *s, char **out)
{
    *out = NULL;
    if (s == NULL) return 0;
    *out = str_dup(s);
    return *out != NULL ? 0 : -ENOMEM;
}

static int security_copy(struct config_security *dst, const struct config_security *src)
{
    *dst = *src;
    dst->auto_id_prefix = dst->password_file = dst->acl_file = NULL;
    if (dup_or_null(src->auto_id_prefix, &dst->auto_id_prefix) != 0 ||
        dup_or_null(src->password_file, &dst->password_file) != 0 ||
        dup_or_null(src->acl_file, &dst->acl_file) != 0) {
        security_free(dst);
        return -ENOMEM;
    }
    return 0;
}

static void listener_init(struct config_listener *l, int line)
{
    memset(l, 0, sizeof *l);
    l->max_connections = -1;
    l->max_qos = 2;
    l->max_topic_alias = 10;
    l->line = line;
    security_defaults(&l->security);
}

static void tls_free(struct config_tls *t)
{
    mem_free(t->cafile);
    mem_free(t->capath);
    mem_free(t->certfile);
    mem_free(t->keyfile);
    mem_free(t->ciphers);
    mem_free(t->ciphers_tls13);
    mem_free(t->crlfile);
    memset(t, 0, sizeof *t);
}

/* Deep copy of src's strings into dst (dst's own are not freed). */
static int tls_copy(struct config_tls *dst, const struct config_tls *src)
{
    *dst = *src;
    dst->cafile = dst->capath = dst->certfile = dst->keyfile = NULL;
    dst->ciphers = dst->ciphers_tls13 = dst->crlfile = NULL;
    if (dup_or_null(src->cafile, &dst->cafile) != 0 ||
        dup_or_null(src->capath, &dst->capath) != 0 ||
        dup_or_null(src->certfile, &dst->certfile) != 0 ||
        dup_or_null(src->keyfile, &dst->keyfile) != 0 ||
        dup_or_null(src->ciphers, &dst->ciphers) != 0 ||
        dup_or_null(src->ciphers_tls13, &dst->ciphers_tls13) != 0 ||
        dup_or_null(src->crlfile, &dst->crlfile) != 0) {
        tls_free(dst);
        return -ENOMEM;
    }
    return 0;
}

static void listener_free(struct config_listener *l)
{
    mem_free(l->bind_address);
    mem_free(l->file);
    security_free(&l->security);
    tls_free(&l->tls);
}

/* Appends a listener declared at file:line (the name is copied), with defaults; returns its
 * index or -ENOMEM. */
static long listener_add(struct config *cfg, const char *file, int line)
{
    struct config_listener *ls =
        mem_realloc(cfg->listeners, (cfg->listener_count + 1) * sizeof *cfg->listeners);
    if (ls == NULL) return -ENOMEM;
    cfg->listeners = ls;
    listener_init(&ls[cfg->listener_count], line);
    if ((ls[cfg->listener_count].file = str_dup(file)) == NULL) return -ENOMEM;
    return (long)cfg->listener_count++;
}

static int parse_port(struct parser *p, const char *word, uint16_t *out)
{
    long long v;
    if (parse_ll(word, &v) != 0 || v < 0 || v > 65535)
        return fail(p, -EINVAL, "invalid port '%s' (expected 1 to 65535)", word);
    if (v == 0) return fail(p, -ENOTSUP, "port 0 (a Unix socket listener) is not supported yet");
    *out = (uint16_t)v;
    return 0;
}

/* ---- special directives ---- */

static int dir_listener(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    char *port = next_word(&value);
    char *addr = next_word(&value);
    uint16_t n = 0;
    int rc;
    if (port == NULL) return fail(p, -EINVAL, "missing port");
    if ((rc = parse_port(p, port, &n)) != 0) return rc;
    if ((rc = no_more(p, value)) != 0) return rc;
    if (addr != NULL && addr[0] == '#') addr = NULL;
    for (size_t i = 0; i < p->cfg->listener_count; i++) {
        const struct config_listener *o = &p->cfg->listeners[i];
        if (o->port == n &&
            ((o->bind_address == NULL && addr == NULL) ||
             (o->bind_address != NULL && addr != NULL && strcmp(o->bind_address, addr) == 0)))
            return fail(p, -EINVAL, "port %u%s%s is already a listener (%s:%d)", n,
                        addr ? " on " : "", addr ? addr : "", o->file, o->line);
    }
    long idx = listener_add(p->cfg, p->file, p->line);
    if (idx < 0) return fail(p, -ENOMEM, "out of memory");
    struct config_listener *l = &p->cfg->listeners[idx];
    l->port = n;
    if (addr != NULL && (l->bind_address = str_dup(addr)) == NULL)
        return fail(p, -ENOMEM, "out of memory");
    /* With per_listener_settings false the listener's security is filled in at the end. */
    p->cur = idx;
    return 0;
}

/* Deprecated `port N`: the default listener's port. */
static int dir_port(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    char *w = next_word(&value);
    int rc;
    if (w == NULL) return fail(p, -EINVAL, "missing port");
    if ((rc = parse_port(p, w, &p->deflt.port)) != 0) return rc;
    p->deflt_port_set = true;
    return no_more(p, value);
}

/* Deprecated `bind_address ADDRESS`: the default listener's address. */
static int dir_bind_address(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    char *w = next_word(&value);
    int rc;
    if (w == NULL) return fail(p, -EINVAL, "missing address");
    if ((rc = no_more(p, value)) != 0) return rc;
    if (p->deflt.bind_address != NULL) return fail(p, -EINVAL, "given twice");
    if ((p->deflt.bind_address = str_dup(w)) == NULL) return fail(p, -ENOMEM, "out of memory");
    p->deflt_bind_set = true;
    return 0;
}

static int dir_protocol(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    char *w = next_word(&value);
    int rc;
    if (w == NULL) return fail(p, -EINVAL, "missing value (mqtt or websockets)");
    if ((rc = no_more(p, value)) != 0) return rc;
    if (strcmp(w, "mqtt") == 0) {
        cur_listener(p)->protocol = CONFIG_PROTOCOL_MQTT;
        return 0;
    }
    if (strcmp(w, "websockets") == 0) {
        cur_listener(p)->protocol = CONFIG_PROTOCOL_WEBSOCKETS;
        return 0;
    }
    return fail(p, -EINVAL, "invalid value '%s' (expected mqtt or websockets)", w);
}

static int dir_tls_version(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    char *w = next_word(&value);
    int rc;
    if (w == NULL) return fail(p, -EINVAL, "missing value (tlsv1.2 or tlsv1.3)");
    if ((rc = no_more(p, value)) != 0) return rc;
    if (strcmp(w, "tlsv1.2") == 0)
        cur_listener(p)->tls.version = CONFIG_TLS_1_2;
    else if (strcmp(w, "tlsv1.3") == 0)
        cur_listener(p)->tls.version = CONFIG_TLS_1_3;
    else if (strcmp(w, "tlsv1.1") == 0 || strcmp(w, "tlsv1") == 0)
        return fail(p, -ENOTSUP, "%s is not supported (tlsv1.2 or tlsv1.3)", w);
    else
        return fail(p, -EINVAL, "invalid value '%s' (expected tlsv1.2 or tlsv1.3)", w);
    return 0;
}

/* Options the TLS library of this build cannot provide (wolfSSL without PSK). */
static int dir_not_in_build(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    (void)value;
    return fail(p, -ENOTSUP, "not supported by this build (TLS-PSK is not available)");
}

static int dir_socket_domain(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    char *w = next_word(&value);
    int rc;
    if (w == NULL) return fail(p, -EINVAL, "missing value (ipv4 or ipv6)");
    if ((rc = no_more(p, value)) != 0) return rc;
    if (strcmp(w, "ipv4") == 0)
        cur_listener(p)->socket_domain = CONFIG_SOCKET_DOMAIN_IPV4;
    else if (strcmp(w, "ipv6") == 0)
        cur_listener(p)->socket_domain = CONFIG_SOCKET_DOMAIN_IPV6;
    else
        return fail(p, -EINVAL, "invalid value '%s' (expected ipv4 or ipv6)", w);
    return 0;
}

static int dir_max_connections(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    char *w = next_word(&value);
    long long v;
    int rc;
    if (w == NULL) return fail(p, -EINVAL, "missing value");
    if (parse_ll(w, &v) != 0 || v > INT_MAX)
        return fail(p, -EINVAL, "invalid value '%s' (expected an integer, -1 = unlimited)", w);
    if ((rc = no_more(p, value)) != 0) return rc;
    cur_listener(p)->max_connections = v < 0 ? -1 : (int)v; /* mosquitto: negative = -1 */
    return 0;
}

/* max_packet_size: 0 (no limit) or at least 20 bytes, as Mosquitto requires. */
static int dir_max_packet_size(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    char *w = next_word(&value);
    long long v;
    int rc;
    if (w == NULL) return fail(p, -EINVAL, "missing value");
    if (parse_ll(w, &v) != 0)
        return fail(p, -EINVAL, "invalid value '%s' (expected an integer)", w);
    if ((v != 0 && v < 20) || v < 0 || v > CONFIG_MQTT_MAX_PACKET)
        return fail(p, -EINVAL, "value %s out of range (0, or 20 to %u)", w,
                    CONFIG_MQTT_MAX_PACKET);
    if ((rc = no_more(p, value)) != 0) return rc;
    p->cfg->max_packet_size = (uint32_t)v;
    return 0;
}

static int dir_per_listener_settings(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    char *w = next_word(&value);
    int rc;
    bool v;
    if (w != NULL && strcmp(w, "true") == 0)
        v = true;
    else if (w != NULL && strcmp(w, "false") == 0)
        v = false;
    else
        return fail(p, -EINVAL, "invalid value '%s' (expected true or false)", w ? w : "");
    if ((rc = no_more(p, value)) != 0) return rc;
    if (v && p->security_seen)
        return fail(p, -EINVAL, "must be set before any other security settings");
    p->cfg->per_listener_settings = v;
    return 0;
}

static int dir_log_dest(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    struct config *cfg = p->cfg;
    char *w = next_word(&value);
    unsigned bit;
    int rc;
    if (w == NULL)
        return fail(p, -EINVAL, "missing value (stdout, stderr, syslog, topic, file, none)");
    if (strcmp(w, "file") == 0) {
        char *path = trim(value);
        if (*path == '\0') return fail(p, -EINVAL, "missing file name after 'file'");
        if (cfg->log_file != NULL) return fail(p, -EINVAL, "only one log file may be given");
        if ((cfg->log_file = str_dup(path)) == NULL) return fail(p, -ENOMEM, "out of memory");
        bit = CONFIG_LOG_DEST_FILE;
    } else {
        if ((rc = no_more(p, value)) != 0) return rc;
        if (strcmp(w, "stdout") == 0)
            bit = CONFIG_LOG_DEST_STDOUT;
        else if (strcmp(w, "stderr") == 0)
            bit = CONFIG_LOG_DEST_STDERR;
        else if (strcmp(w, "syslog") == 0)
            bit = CONFIG_LOG_DEST_SYSLOG;
        else if (strcmp(w, "topic") == 0)
            bit = CONFIG_LOG_DEST_TOPIC;
        else if (strcmp(w, "none") == 0)
            bit = CONFIG_LOG_DEST_NONE;
        else if (strcmp(w, "dlt") == 0)
            return fail(p, -ENOTSUP, "dlt not supported yet");
        else
            return fail(p, -EINVAL, "invalid value '%s'", w);
    }
    if (!p->log_dest_set) {
        cfg->log_dest = 0;
        p->log_dest_set = true;
    }
    cfg->log_dest |= bit;
    return 0;
}

static int dir_log_type(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    char *w = next_word(&value);
    if (w == NULL) return fail(p, -EINVAL, "missing value");
    if (!p->log_type_set) {
        p->cfg->log_types = 0;
        p->log_type_set = true;
    }
    /* Mosquitto reads one word per line; several words on one line all apply here. */
    for (; w != NULL && w[0] != '#'; w = next_word(&value)) {
        unsigned bits;
        if (log_type_parse(w, &bits) != 0) return fail(p, -EINVAL, "invalid value '%s'", w);
        if (strcmp(w, "none") == 0)
            p->cfg->log_types = 0;
        else
            p->cfg->log_types |= bits;
    }
    return 0;
}

static int dir_duration(struct parser *p, const struct directive *d, char *value)
{
    char *w = next_word(&value);
    uint64_t s;
    int rc;
    if (w == NULL || config_parse_duration(w, &s) != 0)
        return fail(p, -EINVAL,
                    "invalid duration '%s' (expected a positive number and h, d, w, m or y)",
                    w ? w : "");
    if ((rc = no_more(p, value)) != 0) return rc;
    *(uint64_t *)field_of(p, d) = s;
    return 0;
}

static int read_file(const char *path, char **out, size_t *len);

/* ---- cluster and admin directives ---- */

/* Characters of a host name or address (IPv6 only inside brackets, see parse_host_port). */
static bool host_is_valid(const char *h, size_t n, bool ipv6)
{
    if (n == 0 || n > 253) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (isalnum(c) || c == '-' || c == '.' || c == '_') continue;
        if (ipv6 && (c == ':' || c == '%')) continue;
        return false;
    }
    return true;
}

/* Splits HOST:PORT (or [IPV6]:PORT) in `text`; *host is allocated. Fails with a message
 * quoting text. */
static int parse_host_port(struct parser *p, const char *text, char **host /* OUT */,
                           uint16_t *port /* OUT */)
{
    const char *h = text, *colon;
    size_t hlen;
    bool ipv6 = false;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return fail(p, -EINVAL, "invalid address '%s' (expected [IPV6]:PORT)", text);
        h = text + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        ipv6 = true;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL)
            return fail(p, -EINVAL, "invalid address '%s' (expected HOST:PORT)", text);
        hlen = (size_t)(colon - text);
        if (memchr(text, ':', hlen) != NULL)
            return fail(p, -EINVAL,
                        "invalid address '%s' (an IPv6 address needs brackets: [ADDRESS]:PORT)",
                        text);
    }
    if (!host_is_valid(h, hlen, ipv6)) return fail(p, -EINVAL, "invalid host in '%s'", text);
    long long v;
    if (parse_ll(colon + 1, &v) != 0 || v < 1 || v > 65535)
        return fail(p, -EINVAL, "invalid port in '%s' (expected 1 to 65535)", text);
    if ((*host = mem_strndup(h, hlen)) == NULL) return fail(p, -ENOMEM, "out of memory");
    *port = (uint16_t)v;
    return 0;
}

/* Remembers where the first cluster_peers/cluster_join line is, for checks at the end. */
static void note_cluster_line(struct parser *p, const char *directive)
{
    if (p->cluster_line > 0) return;
    snprintf(p->cluster_file, sizeof p->cluster_file, "%s", p->file);
    p->cluster_line = p->line;
    p->cluster_directive = directive;
}

static int dir_node_id(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    char *w = next_word(&value);
    long long v;
    int rc;
    if (w == NULL) return fail(p, -EINVAL, "missing value");
    if (parse_ll(w, &v) != 0)
        return fail(p, -EINVAL, "invalid value '%s' (expected an integer)", w);
    if (v < 1 || v > UINT32_MAX)
        return fail(p, -EINVAL, "value %s out of range (1 to %u)", w, UINT32_MAX);
    if ((rc = no_more(p, value)) != 0) return rc;
    if (p->cfg->node_id_set) return fail(p, -EINVAL, "given twice");
    p->cfg->node_id = (uint32_t)v;
    p->cfg->node_id_set = true;
    return 0;
}

/* `NAME [PORT [BIND]]`: the admin listener and the cluster port. */
static int dir_port_bind(struct parser *p, char *value, bool *set, uint16_t *port, char **bind)
{
    char *w = next_word(&value);
    char *addr = next_word(&value);
    int rc;
    if (*set) return fail(p, -EINVAL, "given twice");
    if (w != NULL && w[0] == '#') w = addr = NULL;
    if (addr != NULL && addr[0] == '#') addr = NULL;
    if (w != NULL && (rc = parse_port(p, w, port)) != 0) return rc;
    if (addr != NULL && (rc = no_more(p, value)) != 0) return rc;
    if (addr != NULL) {
        if (!host_is_valid(addr, strlen(addr), true))
            return fail(p, -EINVAL, "invalid bind address '%s'", addr);
        char *copy = str_dup(addr);
        if (copy == NULL) return fail(p, -ENOMEM, "out of memory");
        mem_free(*bind);
        *bind = copy;
    }
    *set = true;
    return 0;
}

static int dir_admin_listener(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    struct config *cfg = p->cfg;
    return dir_port_bind(p, value, &cfg->admin_listener_set, &cfg->admin_port,
                         &cfg->admin_bind_address);
}

static int dir_cluster_listen(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    struct config *cfg = p->cfg;
    return dir_port_bind(p, value, &cfg->cluster_listen_set, &cfg->cluster_port,
                         &cfg->cluster_bind_address);
}

static int dir_cluster_advertise(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    struct config *cfg = p->cfg;
    char *w = next_word(&value);
    int rc;
    if (w == NULL) return fail(p, -EINVAL, "missing HOST:PORT");
    if ((rc = no_more(p, value)) != 0) return rc;
    if (cfg->cluster_advertise_set) return fail(p, -EINVAL, "given twice");
    rc = parse_host_port(p, w, &cfg->cluster_advertise_host, &cfg->cluster_advertise_port);
    if (rc == 0) cfg->cluster_advertise_set = true;
    return rc;
}

static int dir_cluster_join(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    struct config *cfg = p->cfg;
    char *w = next_word(&value);
    int rc;
    if (w == NULL) return fail(p, -EINVAL, "missing HOST:PORT");
    if ((rc = no_more(p, value)) != 0) return rc;
    if (cfg->cluster_join_host != NULL) return fail(p, -EINVAL, "given twice");
    if (cfg->cluster_peer_count > 0)
        return fail(p, -EINVAL,
                    "cannot be combined with cluster_peers (%s:%d): initial members list the "
                    "peers, a node added later joins",
                    p->cluster_file, p->cluster_line);
    if ((rc = parse_host_port(p, w, &cfg->cluster_join_host, &cfg->cluster_join_port)) != 0)
        return rc;
    note_cluster_line(p, "cluster_join");
    return 0;
}

/* One ID@HOST:PORT entry of cluster_peers. */
static int add_peer(struct parser *p, const char *entry)
{
    struct config *cfg = p->cfg;
    const char *at = strchr(entry, '@');
    long long id;
    char idtext[24];
    int rc;
    if (at == NULL || at == entry || (size_t)(at - entry) >= sizeof idtext)
        return fail(p, -EINVAL, "invalid peer '%s' (expected ID@HOST:PORT)", entry);
    memcpy(idtext, entry, (size_t)(at - entry));
    idtext[at - entry] = '\0';
    if (parse_ll(idtext, &id) != 0 || id < 1 || id > UINT32_MAX)
        return fail(p, -EINVAL, "invalid peer id in '%s' (expected 1 to %u)", entry, UINT32_MAX);
    for (size_t i = 0; i < cfg->cluster_peer_count; i++)
        if (cfg->cluster_peers[i].id == (uint64_t)id)
            return fail(p, -EINVAL, "peer id %lld given twice", id);
    struct config_peer peer = {.id = (uint64_t)id};
    if ((rc = parse_host_port(p, at + 1, &peer.host, &peer.port)) != 0) return rc;
    for (size_t i = 0; i < cfg->cluster_peer_count; i++) {
        const struct config_peer *o = &cfg->cluster_peers[i];
        if (o->port == peer.port && strcmp(o->host, peer.host) == 0) {
            mem_free(peer.host);
            return fail(p, -EINVAL, "peers %llu and %lld have the same address '%s'",
                        (unsigned long long)o->id, id, at + 1);
        }
    }
    struct config_peer *grown =
        mem_realloc(cfg->cluster_peers, (cfg->cluster_peer_count + 1) * sizeof *grown);
    if (grown == NULL) {
        mem_free(peer.host);
        return fail(p, -ENOMEM, "out of memory");
    }
    cfg->cluster_peers = grown;
    grown[cfg->cluster_peer_count++] = peer;
    return 0;
}

/* cluster_peers ID@HOST:PORT ...: several entries on a line; the directive may repeat. */
static int dir_cluster_peers(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    char *w = next_word(&value);
    int rc;
    if (w == NULL || w[0] == '#') return fail(p, -EINVAL, "missing ID@HOST:PORT");
    if (p->cfg->cluster_join_host != NULL)
        return fail(p, -EINVAL,
                    "cannot be combined with cluster_join (%s:%d): initial members list the "
                    "peers, a node added later joins",
                    p->cluster_file, p->cluster_line);
    for (; w != NULL && w[0] != '#'; w = next_word(&value))
        if ((rc = add_peer(p, w)) != 0) return rc;
    note_cluster_line(p, "cluster_peers");
    return 0;
}

/* Reads a small secret file into *out (allocated, NUL-terminated, trailing white space
 * removed); *len excludes the NUL. */
static int read_secret(struct parser *p, const char *path, char **out, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    struct stat st;
    int rc;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 65536)
        return fail(p, -EINVAL, "'%s' is larger than 64 KiB", path);
    if ((rc = read_file(path, &buf, &n)) != 0) {
        if (rc == -ENOMEM) return fail(p, rc, "out of memory");
        return fail(p, rc, "cannot read '%s': %s", path, strerror(-rc));
    }
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        n--;
    buf[n] = '\0';
    if (n == 0) {
        mem_free(buf);
        return fail(p, -EINVAL, "'%s' is empty", path);
    }
    *out = buf;
    *len = n;
    return 0;
}

/* A string directive whose value names a file that is read at once. */
static int dir_secret_file(struct parser *p, char *value, char **path_field, char **content,
                           size_t *content_len)
{
    char *path = trim(value);
    if (*path == '\0') return fail(p, -EINVAL, "missing file name");
    if (*path_field != NULL) return fail(p, -EINVAL, "given twice");
    int rc = read_secret(p, path, content, content_len);
    if (rc != 0) return rc;
    if ((*path_field = str_dup(path)) == NULL) {
        mem_free(*content);
        *content = NULL;
        return fail(p, -ENOMEM, "out of memory");
    }
    return 0;
}

static int dir_cluster_secret_file(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    struct config *cfg = p->cfg;
    char *secret = NULL;
    int rc =
        dir_secret_file(p, value, &cfg->cluster_secret_file, &secret, &cfg->cluster_secret_len);
    if (rc == 0) cfg->cluster_secret = (uint8_t *)secret;
    return rc;
}

static int dir_admin_token_file(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    struct config *cfg = p->cfg;
    size_t len = 0;
    int rc = dir_secret_file(p, value, &cfg->admin_token_file, &cfg->admin_token, &len);
    if (rc != 0) return rc;
    /* It travels in an Authorization header: visible ASCII only. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)cfg->admin_token[i];
        if (c < 0x21 || c > 0x7e)
            return fail(p, -EINVAL,
                        "the token in '%s' may only hold visible ASCII characters (no spaces)",
                        cfg->admin_token_file);
    }
    return 0;
}

/* cluster_cafile / cluster_certfile / cluster_keyfile and admin_cafile / admin_certfile /
 * admin_keyfile: the PEM file is read now (before privileges are dropped); wolfSSL checks its
 * contents when the cluster port or the admin listener starts. */
static int dir_cluster_tls_file(struct parser *p, const struct directive *d, char *value)
{
    struct config *cfg = p->cfg;
    char **path_f = &cfg->cluster_cafile, **pem_f = &cfg->cluster_ca_pem;
    size_t *len_f = &cfg->cluster_ca_pem_len;
    if (strcmp(d->name, "cluster_certfile") == 0) {
        path_f = &cfg->cluster_certfile;
        pem_f = &cfg->cluster_cert_pem;
        len_f = &cfg->cluster_cert_pem_len;
    } else if (strcmp(d->name, "cluster_keyfile") == 0) {
        path_f = &cfg->cluster_keyfile;
        pem_f = &cfg->cluster_key_pem;
        len_f = &cfg->cluster_key_pem_len;
    }
    if (strncmp(d->name, "admin_", 6) == 0 && p->admin_tls_line == 0) {
        snprintf(p->admin_tls_file, sizeof p->admin_tls_file, "%s", p->file);
        p->admin_tls_line = p->line;
        p->admin_tls_directive = d->name;
    }
    if (strcmp(d->name, "admin_cafile") == 0) {
        path_f = &cfg->admin_cafile;
        pem_f = &cfg->admin_ca_pem;
        len_f = &cfg->admin_ca_pem_len;
    } else if (strcmp(d->name, "admin_certfile") == 0) {
        path_f = &cfg->admin_certfile;
        pem_f = &cfg->admin_cert_pem;
        len_f = &cfg->admin_cert_pem_len;
    } else if (strcmp(d->name, "admin_keyfile") == 0) {
        path_f = &cfg->admin_keyfile;
        pem_f = &cfg->admin_key_pem;
        len_f = &cfg->admin_key_pem_len;
    }
    char *path = trim(value);
    if (*path == '\0') return fail(p, -EINVAL, "missing file name");
    if (*path_f != NULL) return fail(p, -EINVAL, "given twice");
    int rc = read_file(path, pem_f, len_f);
    if (rc == -ENOMEM) return fail(p, rc, "out of memory");
    if (rc != 0) return fail(p, rc, "cannot read '%s': %s", path, strerror(-rc));
    if ((*path_f = str_dup(path)) == NULL) return fail(p, -ENOMEM, "out of memory");
    return 0;
}

/* The checks that need the whole file, and the cluster_advertise default. */
static int cluster_resolve(struct parser *p)
{
    struct config *cfg = p->cfg;
    if (cfg->cluster_port == 0) cfg->cluster_port = CONFIG_DEFAULT_CLUSTER_PORT;
    if (cfg->admin_port == 0) cfg->admin_port = CONFIG_DEFAULT_ADMIN_PORT;
    if (!cfg->cluster_advertise_set) {
        const char *b = cfg->cluster_bind_address;
        char name[256];
        if (b == NULL || strcmp(b, "0.0.0.0") == 0 || strcmp(b, "::") == 0) {
            if (gethostname(name, sizeof name) != 0 || name[0] == '\0')
                snprintf(name, sizeof name, "localhost");
            name[sizeof name - 1] = '\0';
            b = name;
        }
        if ((cfg->cluster_advertise_host = str_dup(b)) == NULL)
            return fail(p, -ENOMEM, "out of memory");
        cfg->cluster_advertise_port = cfg->cluster_port;
    }
    int n_tls = (cfg->cluster_cafile != NULL) + (cfg->cluster_certfile != NULL) +
                (cfg->cluster_keyfile != NULL);
    if (n_tls != 0 && n_tls != 3) {
        p->directive = NULL;
        p->line = 0;
        return fail(p, -EINVAL,
                    "cluster TLS needs all three of cluster_cafile, cluster_certfile and "
                    "cluster_keyfile");
    }
    if ((cfg->admin_certfile != NULL) != (cfg->admin_keyfile != NULL) ||
        (cfg->admin_cafile != NULL && cfg->admin_certfile == NULL)) {
        p->file = p->admin_tls_file;
        p->line = p->admin_tls_line;
        p->directive = p->admin_tls_directive;
        return fail(p, -EINVAL,
                    "admin HTTPS needs admin_certfile and admin_keyfile (admin_cafile only with "
                    "them)");
    }
    if (!config_is_clustered(cfg)) return 0;
    p->file = p->cluster_file;
    p->line = p->cluster_line;
    p->directive = p->cluster_directive;
    if (cfg->cluster_secret_file == NULL)
        return fail(p, -EINVAL,
                    "needs cluster_secret_file: every connection between nodes proves the "
                    "shared secret");
    if (!cfg->node_id_set)
        return fail(p, -EINVAL, "needs node_id: each member of a cluster has its own id");
    if (cfg->cluster_peer_count > 0) {
        size_t i;
        for (i = 0; i < cfg->cluster_peer_count; i++)
            if (cfg->cluster_peers[i].id == cfg->node_id) break;
        if (i == cfg->cluster_peer_count)
            return fail(p, -EINVAL,
                        "node_id %u is not among the peers (an initial member lists itself too)",
                        cfg->node_id);
    }
    return 0;
}

bool config_is_clustered(const struct config *cfg)
{
    return cfg->cluster_peer_count > 0 || cfg->cluster_join_host != NULL;
}

static int load_text(struct parser *p, const char *name, char *text);
static int load_file(struct parser *p, const char *path);

/* Mosquitto's include_dir order: case-insensitive first, then upper case before lower case
 * at the first position where two names differ only in case. */
static int include_name_cmp(const void *a, const void *b)
{
    const unsigned char *s1 = *(const unsigned char *const *)a;
    const unsigned char *s2 = *(const unsigned char *const *)b;
    for (; s1[0] && s2[0]; s1++, s2++) {
        int r = toupper(s1[0]) - toupper(s2[0]);
        if (r != 0) return r;
        if (s1[0] != s2[0]) return (int)s1[0] - (int)s2[0];
    }
    return (int)s1[0] - (int)s2[0];
}

static int dir_include_dir(struct parser *p, const struct directive *d, char *value)
{
    (void)d;
    char *dir = trim(value);
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    if (*dir == '\0') return fail(p, -EINVAL, "missing directory");
    if (p->depth > 0) return fail(p, -EINVAL, "only allowed in the main configuration file");
    DIR *dh = opendir(dir);
    if (dh == NULL) {
        int e = errno;
        return fail(p, -e, "cannot open directory '%s': %s", dir, strerror(e));
    }
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len <= 5 || strcmp(de->d_name + len - 5, ".conf") != 0) continue;
        if (n == CONFIG_MAX_INCLUDE_FILES) {
            rc = fail(p, -EINVAL, "more than %d files in '%s'", CONFIG_MAX_INCLUDE_FILES, dir);
            goto out;
        }
        char **grown = mem_realloc(names, (n + 1) * sizeof *names);
        if (grown == NULL || (grown[n] = str_dup(de->d_name)) == NULL) {
            if (grown != NULL) names = grown;
            rc = fail(p, -ENOMEM, "out of memory");
            goto out;
        }
        names = grown;
        n++;
    }
    if (n > 1) qsort(names, n, sizeof *names, include_name_cmp);
    /* Keep this line's context: messages from included files name their own file and line. */
    const char *file = p->file;
    int line = p->line;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t plen = strlen(dir) + 1 + strlen(names[i]) + 1;
        char *path = mem_malloc(plen);
        if (path == NULL) {
            rc = fail(p, -ENOMEM, "out of memory");
            break;
        }
        snprintf(path, plen, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
            mem_free(path);
            continue;
        }
        if (p->have_main_st && stat(path, &st) == 0 && st.st_dev == p->main_st.st_dev &&
            st.st_ino == p->main_st.st_ino) {
            rc = fail(p, -EINVAL, "'%s' contains the main configuration file", dir);
            mem_free(path);
            break;
        }
        p->depth++;
        rc = load_file(p, path);
        p->depth--;
        mem_free(path);
        p->file = file;
        p->line = line;
        p->directive = "include_dir";
    }
out:
    closedir(dh);
    for (size_t i = 0; i < n; i++)
        mem_free(names[i]);
    mem_free(names);
    return rc;
}

/* ---- the table ---- */

#define F(st, field) offsetof(st, field), sizeof(((st *)0)->field)
#define G_BOOL(name, field)                                                                        \
    {                                                                                              \
        name, SCOPE_GLOBAL, TYPE_BOOL, F(struct config, field), 0, 0, 0, NULL                      \
    }
#define S_BOOL(name, field)                                                                        \
    {                                                                                              \
        name, SCOPE_SECURITY, TYPE_BOOL, F(struct config_security, field), 0, 0, 0, NULL           \
    }
#define G_UINT(name, field, lo, hi)                                                                \
    {                                                                                              \
        name, SCOPE_GLOBAL, TYPE_INT, F(struct config, field), false, lo, hi, NULL                 \
    }
#define G_SINT(name, field, lo, hi)                                                                \
    {                                                                                              \
        name, SCOPE_GLOBAL, TYPE_INT, F(struct config, field), true, lo, hi, NULL                  \
    }
#define L_STR(name, field)                                                                         \
    {                                                                                              \
        name, SCOPE_LISTENER, TYPE_STRING, F(struct config_listener, field), 0, 0, 0, NULL         \
    }
#define L_BOOL(name, field)                                                                        \
    {                                                                                              \
        name, SCOPE_LISTENER, TYPE_BOOL, F(struct config_listener, field), 0, 0, 0, NULL           \
    }
#define L_UINT(name, field, lo, hi)                                                                \
    {                                                                                              \
        name, SCOPE_LISTENER, TYPE_INT, F(struct config_listener, field), false, lo, hi, NULL      \
    }
#define G_STR(name, field)                                                                         \
    {                                                                                              \
        name, SCOPE_GLOBAL, TYPE_STRING, F(struct config, field), 0, 0, 0, NULL                    \
    }
#define S_STR(name, field)                                                                         \
    {                                                                                              \
        name, SCOPE_SECURITY, TYPE_STRING, F(struct config_security, field), 0, 0, 0, NULL         \
    }
#define SPECIAL(name, scope, fn)                                                                   \
    {                                                                                              \
        name, scope, TYPE_SPECIAL, 0, 0, 0, 0, 0, fn                                               \
    }
#define SPECIAL_F(name, st, field, fn)                                                             \
    {                                                                                              \
        name, SCOPE_GLOBAL, TYPE_SPECIAL, F(st, field), 0, 0, 0, fn                                \
    }
#define IGNORED(name)                                                                              \
    {                                                                                              \
        name, SCOPE_GLOBAL, TYPE_IGNORED, 0, 0, 0, 0, 0, NULL                                      \
    }
#define UNSUPPORTED(name)                                                                          \
    {                                                                                              \
        name, SCOPE_GLOBAL, TYPE_UNSUPPORTED, 0, 0, 0, 0, 0, NULL                                  \
    }

static const struct directive directives[] = {
    /* listeners */
    SPECIAL("listener", SCOPE_GLOBAL, dir_listener),
    SPECIAL("port", SCOPE_GLOBAL, dir_port),
    SPECIAL("bind_address", SCOPE_GLOBAL, dir_bind_address),
    SPECIAL("protocol", SCOPE_LISTENER, dir_protocol),
    SPECIAL("socket_domain", SCOPE_LISTENER, dir_socket_domain),
    SPECIAL("max_connections", SCOPE_LISTENER, dir_max_connections),
    L_UINT("max_qos", max_qos, 0, 2),
    L_UINT("max_topic_alias", max_topic_alias, 0, 65535),
    /* security (per listener with per_listener_settings true) */
    SPECIAL("per_listener_settings", SCOPE_GLOBAL, dir_per_listener_settings),
    S_BOOL("allow_anonymous", allow_anonymous),
    S_BOOL("allow_zero_length_clientid", allow_zero_length_clientid),
    S_STR("auto_id_prefix", auto_id_prefix),
    S_STR("password_file", password_file),
    S_STR("acl_file", acl_file),
    /* persistence */
    G_BOOL("persistence", persistence),
    G_STR("persistence_location", persistence_location),
    G_STR("persistence_file", persistence_file),
    G_SINT("autosave_interval", autosave_interval_s, INT32_MIN, INT32_MAX),
    G_BOOL("autosave_on_changes", autosave_on_changes),
    /* logging */
    SPECIAL("log_dest", SCOPE_GLOBAL, dir_log_dest),
    SPECIAL("log_type", SCOPE_GLOBAL, dir_log_type),
    G_SINT("log_facility", log_facility, 0, 7),
    G_BOOL("connection_messages", connection_messages),
    G_BOOL("log_timestamp", log_timestamp),
    G_STR("log_timestamp_format", log_timestamp_format),
    /* limits and behaviour */
    G_UINT("max_inflight_messages", max_inflight_messages, 0, 65535),
    G_UINT("max_inflight_bytes", max_inflight_bytes, 0, INT64_MAX),
    G_UINT("max_queued_messages", max_queued_messages, 0, INT32_MAX),
    G_UINT("max_queued_bytes", max_queued_bytes, 0, INT64_MAX),
    G_BOOL("queue_qos0_messages", queue_qos0_messages),
    G_UINT("message_size_limit", message_size_limit, 0, CONFIG_MQTT_MAX_PAYLOAD),
    SPECIAL("max_packet_size", SCOPE_GLOBAL, dir_max_packet_size),
    G_UINT("max_keepalive", max_keepalive, 10, 65535),
    SPECIAL_F("persistent_client_expiration", struct config, persistent_client_expiration_s,
              dir_duration),
    G_BOOL("retain_available", retain_available),
    G_BOOL("upgrade_outgoing_qos", upgrade_outgoing_qos),
    G_BOOL("check_retain_source", check_retain_source),
    G_BOOL("set_tcp_nodelay", set_tcp_nodelay),
    G_UINT("sys_interval", sys_interval_s, 0, INT32_MAX),
    IGNORED("allow_duplicate_messages"),
    /* process */
    SPECIAL("include_dir", SCOPE_GLOBAL, dir_include_dir),
    G_STR("pid_file", pid_file),
    G_STR("user", user),
    /* cluster */
    SPECIAL("node_id", SCOPE_GLOBAL, dir_node_id),
    SPECIAL("cluster_listen", SCOPE_GLOBAL, dir_cluster_listen),
    SPECIAL("cluster_advertise", SCOPE_GLOBAL, dir_cluster_advertise),
    SPECIAL("cluster_peers", SCOPE_GLOBAL, dir_cluster_peers),
    SPECIAL("cluster_join", SCOPE_GLOBAL, dir_cluster_join),
    SPECIAL("cluster_secret_file", SCOPE_GLOBAL, dir_cluster_secret_file),
    SPECIAL("cluster_cafile", SCOPE_GLOBAL, dir_cluster_tls_file),
    SPECIAL("cluster_certfile", SCOPE_GLOBAL, dir_cluster_tls_file),
    SPECIAL("cluster_keyfile", SCOPE_GLOBAL, dir_cluster_tls_file),
    SPECIAL("admin_listener", SCOPE_GLOBAL, dir_admin_listener),
    SPECIAL("admin_token_file", SCOPE_GLOBAL, dir_admin_token_file),
    SPECIAL("admin_cafile", SCOPE_GLOBAL, dir_cluster_tls_file),
    SPECIAL("admin_certfile", SCOPE_GLOBAL, dir_cluster_tls_file),
    SPECIAL("admin_keyfile", SCOPE_GLOBAL, dir_cluster_tls_file),
    /* listener options of later milestones */
    UNSUPPORTED("bind_interface"),
    UNSUPPORTED("http_dir"),
    UNSUPPORTED("mount_point"),
    UNSUPPORTED("use_username_as_clientid"),
    UNSUPPORTED("websockets_log_level"),
    UNSUPPORTED("websockets_headers_size"),
    /* TLS */
    L_STR("cafile", tls.cafile),
    L_STR("capath", tls.capath),
    L_STR("certfile", tls.certfile),
    L_STR("keyfile", tls.keyfile),
    L_STR("ciphers", tls.ciphers),
    L_STR("ciphers_tls1.3", tls.ciphers_tls13),
    L_STR("crlfile", tls.crlfile),
    UNSUPPORTED("dhparamfile"),
    L_BOOL("require_certificate", tls.require_certificate),
    UNSUPPORTED("tls_engine"),
    UNSUPPORTED("tls_engine_kpass_sha1"),
    UNSUPPORTED("tls_keyform"),
    SPECIAL("tls_version", SCOPE_LISTENER, dir_tls_version),
    L_BOOL("use_identity_as_username", tls.use_identity_as_username),
    L_BOOL("use_subject_as_username", tls.use_subject_as_username),
    SPECIAL("psk_hint", SCOPE_LISTENER, dir_not_in_build),
    SPECIAL("psk_file", SCOPE_GLOBAL, dir_not_in_build),
    /* plugins and other mosquitto features */
    UNSUPPORTED("auth_plugin"),
    UNSUPPORTED("auth_plugin_deny_special_chars"),
    UNSUPPORTED("plugin"),
    UNSUPPORTED("memory_limit"),
    UNSUPPORTED("clientid_prefixes"),
    /* bridges */
    UNSUPPORTED("connection"),
    UNSUPPORTED("address"),
    UNSUPPORTED("addresses"),
    UNSUPPORTED("bridge_attempt_unsubscribe"),
    UNSUPPORTED("bridge_bind_address"),
    UNSUPPORTED("bridge_max_packet_size"),
    UNSUPPORTED("bridge_outgoing_retain"),
    UNSUPPORTED("bridge_protocol_version"),
    UNSUPPORTED("bridge_alpn"),
    UNSUPPORTED("bridge_cafile"),
    UNSUPPORTED("bridge_capath"),
    UNSUPPORTED("bridge_certfile"),
    UNSUPPORTED("bridge_identity"),
    UNSUPPORTED("bridge_insecure"),
    UNSUPPORTED("bridge_keyfile"),
    UNSUPPORTED("bridge_psk"),
    UNSUPPORTED("bridge_require_ocsp"),
    UNSUPPORTED("bridge_tls_version"),
    UNSUPPORTED("cleansession"),
    UNSUPPORTED("local_cleansession"),
    UNSUPPORTED("keepalive_interval"),
    UNSUPPORTED("idle_timeout"),
    UNSUPPORTED("local_clientid"),
    UNSUPPORTED("local_password"),
    UNSUPPORTED("local_username"),
    UNSUPPORTED("notifications"),
    UNSUPPORTED("notifications_local_only"),
    UNSUPPORTED("notification_topic"),
    UNSUPPORTED("remote_clientid"),
    UNSUPPORTED("remote_password"),
    UNSUPPORTED("remote_username"),
    UNSUPPORTED("clientid"),
    UNSUPPORTED("password"),
    UNSUPPORTED("username"),
    UNSUPPORTED("restart_timeout"),
    UNSUPPORTED("round_robin"),
    UNSUPPORTED("start_type"),
    UNSUPPORTED("threshold"),
    UNSUPPORTED("topic"),
    UNSUPPORTED("try_private"),
};

static const struct directive *find_directive(const char *name)
{
    static const struct directive opt_prefix = UNSUPPORTED("plugin options");
    for (size_t i = 0; i < sizeof directives / sizeof directives[0]; i++)
        if (strcmp(directives[i].name, name) == 0) return &directives[i];
    if (strncmp(name, "auth_opt_", 9) == 0 || strncmp(name, "plugin_opt_", 11) == 0)
        return &opt_prefix;
    return NULL;
}

static int apply_directive(struct parser *p, const struct directive *d, char *value)
{
    if (d->scope == SCOPE_SECURITY) p->security_seen = true;
    switch (d->type) {
    case TYPE_BOOL: {
        char *w = next_word(&value);
        bool v;
        int rc;
        if (w != NULL && strcmp(w, "true") == 0)
            v = true;
        else if (w != NULL && strcmp(w, "false") == 0)
            v = false;
        else if (w == NULL)
            return fail(p, -EINVAL, "missing value (expected true or false)");
        else
            return fail(p, -EINVAL, "invalid value '%s' (expected true or false)", w);
        if ((rc = no_more(p, value)) != 0) return rc;
        *(bool *)field_of(p, d) = v;
        if (d->scope == SCOPE_SECURITY && strcmp(d->name, "allow_anonymous") == 0)
            cur_security(p)->allow_anonymous_set = true;
        return 0;
    }
    case TYPE_INT: {
        char *w = next_word(&value);
        long long v;
        int rc;
        if (w == NULL) return fail(p, -EINVAL, "missing value");
        if (parse_ll(w, &v) != 0)
            return fail(p, -EINVAL, "invalid value '%s' (expected an integer)", w);
        if (v < d->min || v > d->max)
            return fail(p, -EINVAL, "value %s out of range (%lld to %lld)", w, d->min, d->max);
        if ((rc = no_more(p, value)) != 0) return rc;
        store_int(field_of(p, d), d->width, v);
        return 0;
    }
    case TYPE_STRING: {
        char **field = field_of(p, d);
        char *v = trim(value);
        if (*v == '\0') return fail(p, -EINVAL, "missing value");
        if (*field != NULL) /* a repeated string directive is an error, as in Mosquitto */
            return fail(p, -EINVAL, "given twice");
        if ((*field = str_dup(v)) == NULL) return fail(p, -ENOMEM, "out of memory");
        return 0;
    }
    case TYPE_SPECIAL:
        return d->fn(p, d, value);
    case TYPE_IGNORED:
        return 0;
    case TYPE_UNSUPPORTED:
        return fail(p, -ENOTSUP, "not supported yet");
    }
    return fail(p, -EINVAL, "internal error");
}

static int parse_line(struct parser *p, char *line)
{
    char *s = trim(line);
    if (*s == '\0' || *s == '#') return 0;
    char *name = next_word(&s);
    const struct directive *d = find_directive(name);
    p->directive = name;
    if (d == NULL) return fail(p, -EINVAL, "unknown directive");
    return apply_directive(p, d, s);
}

/* Parses text (NUL-terminated, modified in place) as the file `name`. */
static int load_text(struct parser *p, const char *name, char *text)
{
    const char *saved_file = p->file;
    int saved_line = p->line;
    int rc = 0;
    p->file = name;
    p->line = 0;
    char *pos = text;
    while (rc == 0 && *pos != '\0') {
        char *nl = strchr(pos, '\n');
        if (nl != NULL) *nl = '\0';
        p->line++;
        p->directive = NULL;
        rc = parse_line(p, pos);
        if (nl == NULL) break;
        pos = nl + 1;
    }
    if (rc == 0) {
        p->file = saved_file;
        p->line = saved_line;
    }
    return rc;
}

static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL) return -errno;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return -EISDIR;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (cap - n < 4096) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *g = mem_realloc(buf, ncap + 1);
            if (g == NULL) {
                rc = -ENOMEM;
                break;
            }
            buf = g;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) rc = -EIO;
            break;
        }
    }
    fclose(f);
    if (rc != 0) {
        mem_free(buf);
        return rc;
    }
    if (buf == NULL && (buf = mem_malloc(1)) == NULL) return -ENOMEM;
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* Reports a NUL byte with its line, rather than silently cutting the line there. */
static int check_nul(struct parser *p, const char *name, const char *buf, size_t len)
{
    const char *z = memchr(buf, '\0', len);
    if (z == NULL) return 0;
    int line = 1;
    for (const char *c = buf; c < z; c++)
        line += *c == '\n';
    p->file = name;
    p->line = line;
    p->directive = NULL;
    return fail(p, -EINVAL, "NUL byte in line");
}

static int load_file(struct parser *p, const char *path)
{
    char *buf;
    size_t len;
    int rc = read_file(path, &buf, &len);
    if (rc != 0) {
        p->file = path;
        p->line = 0;
        p->directive = NULL;
        return fail(p, rc, "cannot read: %s", strerror(-rc));
    }
    rc = check_nul(p, path, buf, len);
    if (rc == 0) rc = load_text(p, path, buf);
    mem_free(buf);
    return rc;
}

/* ---- resolution after the file ---- */

static int strings_fill(struct config *cfg);

/* Whether any TLS option is set (certfile or not). */
static bool tls_is_set(const struct config_tls *t)
{
    return t->certfile || t->keyfile || t->cafile || t->capath || t->ciphers || t->ciphers_tls13 ||
           t->crlfile || t->require_certificate || t->use_identity_as_username ||
           t->use_subject_as_username || t->version != CONFIG_TLS_ANY;
}

static bool deflt_is_used(const struct parser *p)
{
    const struct config_listener *d = &p->deflt;
    return p->deflt_port_set || p->deflt_bind_set || d->max_connections >= 0 || d->max_qos != 2 ||
           d->socket_domain != CONFIG_SOCKET_DOMAIN_ANY || d->protocol != CONFIG_PROTOCOL_MQTT ||
           tls_is_set(&d->tls) ||
           (p->cfg->per_listener_settings &&
            (d->security.password_file != NULL || d->security.acl_file != NULL));
}

/* Adds a listener with tmpl's options (tmpl and sec borrowed), declared at `file`, at the
 * front or back of the list. */
static int listener_push_copy(struct config *cfg, const struct config_listener *tmpl,
                              const struct config_security *sec, uint16_t port, const char *addr,
                              const char *file, bool front)
{
    long idx = listener_add(cfg, file, 0);
    if (idx < 0) return -ENOMEM;
    struct config_listener *l = &cfg->listeners[idx];
    char *name = l->file;
    *l = *tmpl; /* the options; every string is replaced below */
    l->file = name;
    l->line = 0;
    l->port = port;
    l->bind_address = NULL;
    security_defaults(&l->security);
    memset(&l->tls, 0, sizeof l->tls);
    if (security_copy(&l->security, sec) != 0 || dup_or_null(addr, &l->bind_address) != 0 ||
        tls_copy(&l->tls, &tmpl->tls) != 0) {
        listener_free(l);
        cfg->listener_count--;
        return -ENOMEM;
    }
    if (front && cfg->listener_count > 1) {
        struct config_listener tmp = *l;
        memmove(&cfg->listeners[1], &cfg->listeners[0],
                (cfg->listener_count - 1) * sizeof *cfg->listeners);
        cfg->listeners[0] = tmp;
    }
    return 0;
}

/* The TLS options of one listener hang together (reported at the listener's line). */
static int tls_check(struct parser *p, const struct config_listener *l)
{
    const struct config_tls *t = &l->tls;
    p->file = l->file;
    p->line = l->line;
    p->directive = l->line > 0 ? "listener" : NULL;
    if (t->certfile == NULL) {
        if (t->keyfile != NULL) return fail(p, -EINVAL, "keyfile given without certfile");
        if (tls_is_set(t))
            return fail(p, -EINVAL, "TLS options given without certfile (TLS is off)");
        return 0;
    }
    if (t->keyfile == NULL) return fail(p, -EINVAL, "certfile given without keyfile");
    if (t->require_certificate && t->cafile == NULL && t->capath == NULL)
        return fail(p, -EINVAL, "require_certificate needs cafile or capath");
    if (t->use_identity_as_username && t->use_subject_as_username)
        return fail(p, -EINVAL,
                    "use_identity_as_username and use_subject_as_username are exclusive");
    return 0;
}

static int resolve(struct parser *p, const struct config_args *args)
{
    struct config *cfg = p->cfg;
    int rc;
    p->directive = NULL;
    p->line = 0;
    if (strings_fill(cfg) != 0 || security_fill(&p->deflt.security) != 0)
        return fail(p, -ENOMEM, "out of memory");
    for (size_t i = 0; i < cfg->listener_count; i++)
        if (security_fill(&cfg->listeners[i].security) != 0)
            return fail(p, -ENOMEM, "out of memory");

    /* Mosquitto's implicit default listener (port/bind_address or listener options given
     * before any `listener` line). */
    if (deflt_is_used(p)) {
        const struct config_security *sec =
            cfg->per_listener_settings ? &p->deflt.security : &cfg->security;
        uint16_t port = p->deflt_port_set ? p->deflt.port : CONFIG_DEFAULT_PORT;
        if ((rc = listener_push_copy(cfg, &p->deflt, sec, port, p->deflt.bind_address, p->file,
                                     true)))
            return fail(p, rc, "out of memory");
    }

    if (cfg->listener_count == 0) {
        /* Local-only mode: 127.0.0.1 and ::1 on 1883 or on each -p port. */
        const struct config_security *sec =
            cfg->per_listener_settings ? &p->deflt.security : &cfg->security;
        struct config_security local;
        if ((rc = security_copy(&local, sec)) != 0) return fail(p, rc, "out of memory");
        if (!local.allow_anonymous_set) local.allow_anonymous = true;
        size_t nports = args != NULL && args->port_count > 0 ? args->port_count : 1;
        for (size_t i = 0; i < nports && rc == 0; i++) {
            uint16_t port =
                args != NULL && args->port_count > 0 ? args->ports[i] : CONFIG_DEFAULT_PORT;
            rc = listener_push_copy(cfg, &p->deflt, &local, port, "127.0.0.1", "<default>", false);
            if (rc == 0)
                rc = listener_push_copy(cfg, &p->deflt, &local, port, "::1", "<default>", false);
        }
        security_free(&local);
        if (rc != 0) return fail(p, rc, "out of memory");
        for (size_t i = 0; i < cfg->listener_count; i++) {
            cfg->listeners[i].local_only = true;
            cfg->listeners[i].socket_domain = CONFIG_SOCKET_DOMAIN_ANY;
        }
        cfg->local_only = true;
    } else if (args != NULL && args->port_count > 0) {
        cfg->cmd_ports_ignored = true;
    }

    if (!cfg->per_listener_settings) {
        for (size_t i = 0; i < cfg->listener_count; i++) {
            struct config_listener *l = &cfg->listeners[i];
            if (l->local_only) continue;
            security_free(&l->security);
            if (security_copy(&l->security, &cfg->security) != 0)
                return fail(p, -ENOMEM, "out of memory");
        }
    }
    cfg->max_qos = p->deflt.max_qos;
    cfg->max_topic_alias = p->deflt.max_topic_alias;
    for (size_t i = 0; i < cfg->listener_count; i++)
        if ((rc = tls_check(p, &cfg->listeners[i])) != 0) return rc;

    if (args != NULL) {
        if (args->verbose) {
            cfg->log_types = LOG_TYPE_ALL;
            cfg->verbose = true;
        }
        if (args->daemon) cfg->daemon = true;
    }
    if ((cfg->log_dest & CONFIG_LOG_DEST_FILE) && cfg->log_file == NULL)
        return fail(p, -EINVAL, "log_dest file without a file name");
    return cluster_resolve(p);
}

/* ---- public ---- */

static int strings_fill(struct config *cfg)
{
    if (fill(&cfg->persistence_location, "./starling-data") != 0 ||
        fill(&cfg->persistence_file, "mosquitto.db") != 0 || fill(&cfg->user, "mosquitto") != 0 ||
        fill(&cfg->admin_bind_address, "127.0.0.1") != 0 || security_fill(&cfg->security) != 0)
        return -ENOMEM;
    return 0;
}

/* Mosquitto's defaults (Starling's persistence), strings left NULL. */
static void defaults_numeric(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->persistence = true;
    cfg->autosave_interval_s = 1800;
    cfg->log_dest = CONFIG_LOG_DEST_STDERR;
    cfg->log_types = LOG_TYPE_DEFAULT;
    cfg->log_facility = -1;
    cfg->connection_messages = true;
    cfg->log_timestamp = true;
    cfg->max_inflight_messages = 20;
    cfg->max_queued_messages = 1000;
    cfg->message_size_limit = 0;
    cfg->max_keepalive = 65535;
    cfg->max_topic_alias = 10;
    cfg->retain_available = true;
    cfg->max_qos = 2;
    cfg->sys_interval_s = 10;
    cfg->node_id = 1;
    cfg->cluster_port = CONFIG_DEFAULT_CLUSTER_PORT;
    cfg->admin_port = CONFIG_DEFAULT_ADMIN_PORT;
    security_defaults(&cfg->security);
}

int config_defaults(struct config *cfg)
{
    defaults_numeric(cfg);
    if (strings_fill(cfg) != 0) {
        config_free(cfg);
        return -ENOMEM;
    }
    return 0;
}

void config_free(struct config *cfg)
{
    if (cfg == NULL) return;
    for (size_t i = 0; i < cfg->listener_count; i++)
        listener_free(&cfg->listeners[i]);
    mem_free(cfg->listeners);
    security_free(&cfg->security);
    mem_free(cfg->persistence_location);
    mem_free(cfg->persistence_file);
    mem_free(cfg->log_file);
    mem_free(cfg->log_timestamp_format);
    mem_free(cfg->pid_file);
    mem_free(cfg->user);
    mem_free(cfg->config_file);
    mem_free(cfg->cluster_bind_address);
    mem_free(cfg->cluster_advertise_host);
    for (size_t i = 0; i < cfg->cluster_peer_count; i++)
        mem_free(cfg->cluster_peers[i].host);
    mem_free(cfg->cluster_peers);
    mem_free(cfg->cluster_join_host);
    mem_free(cfg->cluster_cafile);
    mem_free(cfg->cluster_certfile);
    mem_free(cfg->cluster_keyfile);
    mem_free(cfg->cluster_ca_pem);
    mem_free(cfg->cluster_cert_pem);
    if (cfg->cluster_key_pem != NULL)
        explicit_bzero(cfg->cluster_key_pem, cfg->cluster_key_pem_len);
    mem_free(cfg->cluster_key_pem);
    mem_free(cfg->cluster_secret_file);
    if (cfg->cluster_secret != NULL) explicit_bzero(cfg->cluster_secret, cfg->cluster_secret_len);
    mem_free(cfg->cluster_secret);
    mem_free(cfg->admin_bind_address);
    mem_free(cfg->admin_token_file);
    if (cfg->admin_token != NULL) explicit_bzero(cfg->admin_token, strlen(cfg->admin_token));
    mem_free(cfg->admin_token);
    mem_free(cfg->admin_certfile);
    mem_free(cfg->admin_keyfile);
    mem_free(cfg->admin_cafile);
    mem_free(cfg->admin_cert_pem);
    mem_free(cfg->admin_ca_pem);
    if (cfg->admin_key_pem != NULL) explicit_bzero(cfg->admin_key_pem, cfg->admin_key_pem_len);
    mem_free(cfg->admin_key_pem);
    memset(cfg, 0, sizeof *cfg);
}

static int load_common(const char *name, const char *path, char *text, size_t len,
                       const struct config_args *args, struct config *out, char *err, size_t errlen)
{
    struct parser p;
    int rc;
    memset(&p, 0, sizeof p);
    p.cfg = out;
    p.err = err;
    p.errlen = errlen;
    p.cur = -1;
    p.file = name != NULL ? name : "<command line>";
    if (err != NULL && errlen > 0) err[0] = '\0';
    defaults_numeric(out);
    listener_init(&p.deflt, 0);
    if (path != NULL) {
        if ((out->config_file = str_dup(path)) == NULL) {
            rc = fail(&p, -ENOMEM, "out of memory");
            goto out;
        }
        p.have_main_st = stat(path, &p.main_st) == 0;
    }
    if (text != NULL) {
        if ((rc = check_nul(&p, name, text, len)) != 0) goto out;
        if ((rc = load_text(&p, name, text)) != 0) goto out;
    }
    p.file = name != NULL ? name : "<command line>";
    rc = resolve(&p, args);
out:
    listener_free(&p.deflt);
    if (rc != 0) config_free(out);
    return rc;
}

int config_load(const char *path, const struct config_args *args, struct config *out, char *err,
                size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    if (path != NULL) {
        int rc = read_file(path, &buf, &len);
        if (rc != 0) {
            memset(out, 0, sizeof *out);
            if (err != NULL && errlen > 0)
                snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
            return rc;
        }
    }
    int rc = load_common(path, path, buf, len, args, out, err, errlen);
    mem_free(buf);
    return rc;
}

int config_load_buffer(const char *name, const char *buf, size_t len,
                       const struct config_args *args, struct config *out, char *err, size_t errlen)
{
    char *copy = mem_malloc(len + 1);
    if (copy == NULL) {
        memset(out, 0, sizeof *out);
        if (err != NULL && errlen > 0) snprintf(err, errlen, "%s: out of memory", name);
        return -ENOMEM;
    }
    memcpy(copy, buf, len);
    copy[len] = '\0';
    int rc = load_common(name, NULL, copy, len, args, out, err, errlen);
    mem_free(copy);
    return rc;
}

int config_parse_duration(const char *text, uint64_t *out_s)
{
    size_t n = strlen(text);
    uint64_t mult;
    if (n < 2) return -EINVAL;
    switch (text[n - 1]) {
    case 'h':
        mult = 3600;
        break;
    case 'd':
        mult = 86400;
        break;
    case 'w':
        mult = 86400 * 7;
        break;
    case 'm':
        mult = 86400 * 30;
        break;
    case 'y':
        mult = 86400 * 365;
        break;
    default:
        return -EINVAL;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n - 1; i++) {
        if (text[i] < '0' || text[i] > '9') return -EINVAL;
        v = v * 10 + (uint64_t)(text[i] - '0');
        if (v > UINT32_MAX) return -EINVAL;
    }
    if (v == 0) return -EINVAL;
    *out_s = v * mult;
    return 0;
}

const char *config_usage(void)
{
    return "starling is an MQTT v5.0/v3.1.1/v3.1 broker.\n"
           "\n"
           "Usage: starling [-c config_file] [-d] [-h] [-p port] [-v]\n"
           "\n"
           " -c : specify the broker config file.\n"
           " -d : put the broker into the background after starting.\n"
           " -h : display this help.\n"
           " -p : start the broker listening on the specified port.\n"
           "      Not recommended in conjunction with the -c option.\n"
           " -v : verbose mode - enable all logging types. This overrides\n"
           "      any logging options given in the config file.\n";
}

int config_parse_args(int argc, char *const argv[], struct config_args *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err != NULL && errlen > 0) err[0] = '\0';
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config-file") == 0) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "-c argument given, but no config file specified.");
                return -EINVAL;
            }
            out->config_file = argv[++i];
        } else if (strcmp(a, "-p") == 0 || strcmp(a, "--port") == 0) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "-p argument given, but no port specified.");
                return -EINVAL;
            }
            char *end;
            errno = 0;
            long v = strtol(argv[++i], &end, 10);
            if (errno != 0 || *end != '\0' || end == argv[i] || v < 1 || v > 65535) {
                snprintf(err, errlen, "Invalid port specified (%s).", argv[i]);
                return -EINVAL;
            }
            if (out->port_count == CONFIG_MAX_CMD_PORTS) {
                snprintf(err, errlen, "Only %d ports can be specified on the command line.",
                         CONFIG_MAX_CMD_PORTS);
                return -EINVAL;
            }
            out->ports[out->port_count++] = (uint16_t)v;
        } else if (strcmp(a, "-d") == 0 || strcmp(a, "--daemon") == 0) {
            out->daemon = true;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            out->verbose = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            out->help = true;
        } else {
            snprintf(err, errlen, "Unknown option '%s'.", a);
            return -EINVAL;
        }
    }
    return 0;
}
