/* starling-ctl: the command line of a node's admin API (admin_listener): cluster status,
 * members, join, remove and leader transfer, as tables or raw JSON; and the offline
 * operations on a node's data dir: backup, restore and disaster recovery.
 *
 *   starling-ctl [-H [https://]HOST:PORT] [--cafile FILE] [--cert FILE --key FILE]
 *                [--token-file FILE] [--json] [--timeout SECONDS] COMMAND
 *     status                  the node's view: leader, term, indices, member count
 *     members                 one line per member: id, address, role, alive, leader
 *     join ID HOST:PORT       add node ID, whose cluster port is HOST:PORT (on the leader)
 *     remove ID               remove node ID (on the leader)
 *     transfer [ID]           hand leadership to node ID, or to any voter (on the leader)
 *
 *   starling-ctl COMMAND (--data-dir DIR | -c starling.conf) ...   (no admin API)
 *     backup FILE             compacted copy of the node's state, while it runs
 *     restore FILE [--force]  the state of FILE into a stopped node, without a Raft log
 *     recover [--node-id N] [--address HOST:PORT] [--yes]
 *                             force this stopped node to be the only voter (quorum lost)
 *
 * Exit status: 0 done, 1 the API refused or failed (its message is printed), 2 usage,
 * 3 the admin API cannot be reached, 4 unauthorized (missing or wrong token).
 *
 * A blocking HTTP/1.1 client over one socket per call (HTTPS through wolfSSL with https:// or
 * --cafile) and a small JSON reader; tools use no private broker header. */
/* clang-format off */
#include <wolfssl/options.h> /* first: the library's build options (structure layouts) */
/* clang-format on */
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <wolfssl/ssl.h>

#include "cluster.h"
#include "cluster_recover.h"
#include "storage.h"

#define CTL_DEFAULT_ADDRESS "127.0.0.1:8088"
#define CTL_MAX_RESPONSE    (16u << 20)
#define CTL_MAX_NODES       4096

enum ctl_exit {
    CTL_OK = 0,
    CTL_FAILED = 1,
    CTL_USAGE = 2,
    CTL_UNREACHABLE = 3,
    CTL_UNAUTHORIZED = 4,
};

static const char usage_text[] =
    "Usage: starling-ctl [-H [https://]HOST:PORT] [--cafile FILE] [--cert FILE --key FILE]\n"
    "                    [--token-file FILE] [--json] [--timeout SECONDS] COMMAND\n"
    "\n"
    "Commands:\n"
    "  status               this node's view of the cluster\n"
    "  members              the members: id, address, role, alive, leader\n"
    "  join ID HOST:PORT    add node ID whose cluster port is HOST:PORT (ask the leader)\n"
    "  remove ID            remove node ID (ask the leader)\n"
    "  transfer [ID]        hand leadership to node ID, or to any voter (ask the leader)\n"
    "\n"
    "Offline commands, on a node's data dir (--data-dir DIR, or -c starling.conf for its\n"
    "persistence_location, node_id and cluster address); they need no admin API:\n"
    "  backup FILE          write a compacted copy of the node's state to FILE (the node\n"
    "                       may run); prints the last applied index it holds\n"
    "  restore FILE [--force]  put FILE as the state of a stopped node with an empty data\n"
    "                       dir (--force: replace its state and Raft log); the node starts\n"
    "                       a new Raft log over it\n"
    "  recover [--node-id N] [--address HOST:PORT] [--yes]\n"
    "                       quorum lost for good: make this stopped node the only voter of\n"
    "                       its Raft configuration (asks for confirmation without --yes)\n"
    "\n"
    "Options (before or after the command):\n"
    "  -H HOST:PORT         the node's admin_listener (default " CTL_DEFAULT_ADDRESS ");\n"
    "                       https://HOST:PORT talks HTTPS (admin_certfile)\n"
    "  --cafile FILE        HTTPS, the server certificate checked against this CA (default:\n"
    "                       the system's CAs) and its name against HOST\n"
    "  --cert FILE, --key FILE  a client certificate and key (PEM; for admin_cafile)\n"
    "  --token-file FILE    the bearer token (the node's admin_token_file)\n"
    "  --json               print the API's JSON as it is\n"
    "  --timeout SECONDS    give up after this long (default 10)\n"
    "\n"
    "Exit status: 0 done, 1 refused or failed, 2 usage, 3 cannot reach the admin API,\n"
    "4 unauthorized.\n";

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("starling-ctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
    fputs(usage_text, stderr);
    exit(CTL_USAGE);
}

/* ---- JSON (just enough to read the API's answers) ---- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

/* A node of the parsed document. Children of arrays and objects follow their parent in
 * document order; `next` links siblings, `child` the first child; object members carry key. */
struct jnode {
    enum jtype type;
    int child, next; /* indices into nodes, -1 for none */
    const char *key; /* object members: the decoded key */
    const char *str; /* J_STR: decoded; J_NUM: the text */
    bool b;
};

struct jdoc {
    struct jnode nodes[CTL_MAX_NODES];
    int n;
    char *p, *end; /* parsing position in the (modified in place) text */
};

static void jws(struct jdoc *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
        d->p++;
}

/* Decodes a string in place (escapes shrink it); ASCII escapes only are kept exactly, \u
 * becomes '?' unless ASCII (display purposes). Returns the start or NULL. */
static char *jstring(struct jdoc *d)
{
    if (d->p >= d->end || *d->p != '"') return NULL;
    char *out = ++d->p, *w = out;
    while (d->p < d->end && *d->p != '"') {
        char c = *d->p++;
        if (c == '\\' && d->p < d->end) {
            char e = *d->p++;
            if (e == 'n')
                c = '\n';
            else if (e == 't')
                c = '\t';
            else if (e == 'r')
                c = '\r';
            else if (e == 'b' || e == 'f')
                c = ' ';
            else if (e == 'u') {
                if (d->end - d->p < 4) return NULL;
                char hex[5] = {d->p[0], d->p[1], d->p[2], d->p[3], 0};
                long v = strtol(hex, NULL, 16);
                c = v > 0 && v < 0x80 ? (char)v : '?';
                d->p += 4;
            } else
                c = e;
        }
        *w++ = c;
    }
    if (d->p >= d->end) return NULL;
    d->p++;
    *w = '\0';
    return out;
}

static int jvalue(struct jdoc *d, int depth);

static int jnew(struct jdoc *d, enum jtype t)
{
    if (d->n == CTL_MAX_NODES) return -1;
    struct jnode *n = &d->nodes[d->n];
    memset(n, 0, sizeof *n);
    n->type = t;
    n->child = n->next = -1;
    return d->n++;
}

static int jcontainer(struct jdoc *d, int depth, bool obj)
{
    int self = jnew(d, obj ? J_OBJ : J_ARR), last = -1;
    if (self < 0) return -1;
    d->p++;
    jws(d);
    if (d->p < d->end && *d->p == (obj ? '}' : ']')) {
        d->p++;
        return self;
    }
    for (;;) {
        const char *key = NULL;
        jws(d);
        if (obj) {
            if ((key = jstring(d)) == NULL) return -1;
            jws(d);
            if (d->p >= d->end || *d->p != ':') return -1;
            d->p++;
        }
        int v = jvalue(d, depth + 1);
        if (v < 0) return -1;
        d->nodes[v].key = key;
        if (last < 0)
            d->nodes[self].child = v;
        else
            d->nodes[last].next = v;
        last = v;
        jws(d);
        if (d->p < d->end && *d->p == ',') {
            d->p++;
            continue;
        }
        if (d->p < d->end && *d->p == (obj ? '}' : ']')) {
            d->p++;
            return self;
        }
        return -1;
    }
}

static int jvalue(struct jdoc *d, int depth)
{
    jws(d);
    if (d->p >= d->end || depth > 32) return -1;
    char c = *d->p;
    if (c == '{' || c == '[') return jcontainer(d, depth, c == '{');
    if (c == '"') {
        int n = jnew(d, J_STR);
        if (n < 0 || (d->nodes[n].str = jstring(d)) == NULL) return -1;
        return n;
    }
    static const struct {
        const char *word;
        enum jtype t;
        bool b;
    } words[] = {{"true", J_BOOL, true}, {"false", J_BOOL, false}, {"null", J_NULL, false}};
    for (size_t i = 0; i < 3; i++) {
        size_t l = strlen(words[i].word);
        if ((size_t)(d->end - d->p) >= l && memcmp(d->p, words[i].word, l) == 0) {
            int n = jnew(d, words[i].t);
            if (n < 0) return -1;
            d->nodes[n].b = words[i].b;
            d->p += l;
            return n;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        int n = jnew(d, J_NUM);
        if (n < 0) return -1;
        char *s = d->p;
        while (d->p < d->end && strchr("+-.eE0123456789", *d->p) != NULL)
            d->p++;
        /* Terminate the number text: copy it into the key-less string slot. */
        size_t len = (size_t)(d->p - s);
        char *t = malloc(len + 1);
        if (t == NULL) return -1;
        memcpy(t, s, len);
        t[len] = '\0';
        d->nodes[n].str = t; /* freed at exit with the process */
        return n;
    }
    return -1;
}

/* Parses text[0..len) (modified in place) into d; root at index 0. */
static int jparse(struct jdoc *d, char *text, size_t len)
{
    d->n = 0;
    d->p = text;
    d->end = text + len;
    if (jvalue(d, 0) != 0) return -1;
    jws(d);
    return d->p == d->end ? 0 : -1;
}

static const struct jnode *jget(const struct jdoc *d, const struct jnode *obj, const char *key)
{
    if (obj == NULL || obj->type != J_OBJ) return NULL;
    for (int i = obj->child; i >= 0; i = d->nodes[i].next)
        if (strcmp(d->nodes[i].key, key) == 0) return &d->nodes[i];
    return NULL;
}

/* A member's value as display text. */
static const char *jtext(const struct jnode *n)
{
    if (n == NULL) return "-";
    switch (n->type) {
    case J_NULL:
        return "none";
    case J_BOOL:
        return n->b ? "yes" : "no";
    case J_NUM:
    case J_STR:
        return n->str;
    default:
        return "?";
    }
}

/* ---- HTTP ---- */

struct ctl {
    char host[256];
    char port[8];
    char *token;
    bool json;
    int timeout_ms;
    bool tls;                                /* https:// or --cafile */
    const char *cafile, *certfile, *keyfile; /* NULL: system CAs, no client certificate */
};

struct response {
    int status;
    char *body; /* NUL-terminated */
    size_t body_len;
};

static int ctl_connect(const struct ctl *c, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int rc = getaddrinfo(c->host, c->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s", gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    snprintf(err, errlen, "no address");
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            snprintf(err, errlen, "%s", strerror(errno));
            close(fd);
            fd = -1;
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        int pr = poll(&p, 1, c->timeout_ms);
        if (pr <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            snprintf(err, errlen, "%s", pr == 0 ? "timed out" : strerror(soerr ? soerr : errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* Waits until fd is ready for events; false on timeout or error. */
static bool ctl_wait(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    return poll(&p, 1, timeout_ms) > 0;
}

/* ---- HTTPS: wolfSSL over the non-blocking socket, waiting with poll ---- */

static WOLFSSL_CTX *ctl_tls_ctx;

static void ctl_tls_die(const struct ctl *c, const char *what, const char *detail)
{
    fprintf(stderr, "starling-ctl: cannot reach admin API at https://%s:%s: %s%s%s\n", c->host,
            c->port, what, detail ? ": " : "", detail ? detail : "");
    exit(CTL_UNREACHABLE);
}

/* Waits for what wolfSSL asked for after a call that returned r; false on a real error. */
static bool ctl_tls_wait(const struct ctl *c, WOLFSSL *ssl, int fd, int r)
{
    int e = wolfSSL_get_error(ssl, r);
    if (e != WOLFSSL_ERROR_WANT_READ && e != WOLFSSL_ERROR_WANT_WRITE) return false;
    struct pollfd p = {.fd = fd, .events = e == WOLFSSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
    if (poll(&p, 1, c->timeout_ms) <= 0) ctl_tls_die(c, "TLS timed out", NULL);
    return true;
}

/* The TLS session over fd (handshake done; server certificate verified); exits on failure. */
static WOLFSSL *ctl_tls_open(const struct ctl *c, int fd)
{
    char why[WOLFSSL_MAX_ERROR_SZ];
    if (ctl_tls_ctx == NULL) {
        wolfSSL_Init();
        WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
        if (ctx == NULL || wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != 1)
            ctl_tls_die(c, "cannot set up TLS", NULL);
        if ((c->cafile ? wolfSSL_CTX_load_verify_locations(ctx, c->cafile, NULL)
                       : wolfSSL_CTX_load_system_CA_certs(ctx)) != 1)
            ctl_tls_die(c, "cannot load CA certificates from",
                        c->cafile ? c->cafile : "the system");
        if (c->certfile && wolfSSL_CTX_use_certificate_chain_file(ctx, c->certfile) != 1)
            ctl_tls_die(c, "cannot load the certificate", c->certfile);
        if (c->keyfile &&
            wolfSSL_CTX_use_PrivateKey_file(ctx, c->keyfile, WOLFSSL_FILETYPE_PEM) != 1)
            ctl_tls_die(c, "cannot load the key (PEM without password)", c->keyfile);
        wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
        ctl_tls_ctx = ctx;
    }
    WOLFSSL *ssl = wolfSSL_new(ctl_tls_ctx);
    if (ssl == NULL || wolfSSL_set_fd(ssl, fd) != WOLFSSL_SUCCESS ||
        wolfSSL_check_domain_name(ssl, c->host) != WOLFSSL_SUCCESS ||
        wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, c->host, (unsigned short)strlen(c->host)) !=
            WOLFSSL_SUCCESS)
        ctl_tls_die(c, "cannot set up TLS", NULL);
    int r;
    while ((r = wolfSSL_connect(ssl)) != WOLFSSL_SUCCESS)
        if (!ctl_tls_wait(c, ssl, fd, r)) {
            int e = wolfSSL_get_error(ssl, r);
            ctl_tls_die(c, "TLS handshake failed", wolfSSL_ERR_error_string((unsigned long)e, why));
        }
    return ssl;
}

/* send()/recv() through TLS: > 0 bytes, 0 closed, -1 with errno (EAGAIN: poll again). */
static ssize_t ctl_tls_io(const struct ctl *c, WOLFSSL *ssl, int fd, void *buf, size_t len,
                          bool out)
{
    int n = len > INT32_MAX ? INT32_MAX : (int)len;
    int r = out ? wolfSSL_write(ssl, buf, n) : wolfSSL_read(ssl, buf, n);
    if (r > 0) return r;
    int e = wolfSSL_get_error(ssl, r);
    if (e == WOLFSSL_ERROR_ZERO_RETURN) return 0;
    if (!ctl_tls_wait(c, ssl, fd, r)) {
        errno = EPROTO;
        return -1;
    }
    errno = EAGAIN;
    return -1;
}

/* One request; exits with CTL_UNREACHABLE when the API cannot be reached. */
static void ctl_call(const struct ctl *c, const char *method, const char *path, const char *body,
                     struct response *out)
{
    char err[256], head[2048];
    int fd = ctl_connect(c, err, sizeof err);
    if (fd < 0) {
        fprintf(stderr, "starling-ctl: cannot reach admin API at %s:%s: %s\n", c->host, c->port,
                err);
        exit(CTL_UNREACHABLE);
    }
    WOLFSSL *ssl = c->tls ? ctl_tls_open(c, fd) : NULL;
    bool v6 = strchr(c->host, ':') != NULL;
    size_t blen = body != NULL ? strlen(body) : 0;
    int hl = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: starling-ctl\r\n"
                      "Accept: application/json\r\nConnection: close\r\n%s%s%s%s%s"
                      "Content-Length: %zu\r\n\r\n",
                      method, path, v6 ? "[" : "", c->host, v6 ? "]" : "", c->port,
                      c->token ? "Authorization: Bearer " : "", c->token ? c->token : "",
                      c->token ? "\r\n" : "", body ? "Content-Type: application/json" : "",
                      body ? "\r\n" : "", blen);
    char *req = malloc((size_t)hl + blen);
    if (req == NULL) {
        fprintf(stderr, "starling-ctl: out of memory\n");
        exit(CTL_FAILED);
    }
    memcpy(req, head, (size_t)hl);
    if (blen) memcpy(req + hl, body, blen);
    size_t total = (size_t)hl + blen, sent = 0;
    while (sent < total) {
        if (!ctl_wait(fd, POLLOUT, c->timeout_ms)) break;
        ssize_t w = ssl ? ctl_tls_io(c, ssl, fd, req + sent, total - sent, true)
                        : send(fd, req + sent, total - sent, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (w <= 0) break;
        sent += (size_t)w;
    }
    free(req);
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    bool timed_out = false;
    while (buf != NULL) {
        if (!(ssl && wolfSSL_pending(ssl) > 0) && !ctl_wait(fd, POLLIN, c->timeout_ms)) {
            timed_out = true;
            break;
        }
        if (n == cap) {
            if (cap >= CTL_MAX_RESPONSE) break;
            char *g = realloc(buf, cap * 2 + 1);
            if (g == NULL) break;
            buf = g;
            cap *= 2;
        }
        ssize_t r =
            ssl ? ctl_tls_io(c, ssl, fd, buf + n, cap - n, false) : recv(fd, buf + n, cap - n, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    if (ssl) {
        wolfSSL_shutdown(ssl);
        wolfSSL_free(ssl);
    }
    close(fd);
    if (buf == NULL) {
        fprintf(stderr, "starling-ctl: out of memory\n");
        exit(CTL_FAILED);
    }
    buf[n] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1 || sep == NULL) {
        fprintf(stderr, "starling-ctl: %s from the admin API at %s:%s\n",
                timed_out ? "no answer in time" : "no valid HTTP answer", c->host, c->port);
        exit(CTL_UNREACHABLE);
    }
    out->body = sep + 4;
    out->body_len = n - (size_t)(out->body - buf);
}

/* Checks the status and parses the JSON body into d; prints the API's error and exits
 * otherwise. With --json the body is printed as it is first. */
static void ctl_result(const struct ctl *c, struct response *r, struct jdoc *d)
{
    if (c->json) fwrite(r->body, 1, r->body_len, stdout);
    bool parsed = jparse(d, r->body, r->body_len) == 0;
    if (r->status == 200 && parsed) return;
    const struct jnode *e = parsed ? jget(d, &d->nodes[0], "error") : NULL;
    const char *msg = e != NULL && e->type == J_STR ? e->str : NULL;
    if (r->status == 401) {
        fprintf(stderr, "starling-ctl: unauthorized: %s\n",
                c->token ? "the admin API refused the token"
                         : "the admin API needs a token "
                           "(--token-file)");
        exit(CTL_UNAUTHORIZED);
    }
    if (r->status == 200)
        fprintf(stderr, "starling-ctl: the admin API's answer is not valid JSON\n");
    else
        fprintf(stderr, "starling-ctl: HTTP %d: %s\n", r->status, msg ? msg : "(no message)");
    exit(CTL_FAILED);
}

/* ---- commands ---- */

static int cmd_status(const struct ctl *c, bool members_table)
{
    static struct jdoc d;
    struct response r;
    ctl_call(c, "GET", "/api/v1/cluster", NULL, &r);
    ctl_result(c, &r, &d);
    if (c->json) return CTL_OK;
    const struct jnode *root = &d.nodes[0], *members = jget(&d, root, "members");
    const char *leader = jtext(jget(&d, root, "leader"));
    if (!members_table) {
        int n = 0, alive = 0;
        for (int i = members ? members->child : -1; i >= 0; i = d.nodes[i].next, n++) {
            const struct jnode *a = jget(&d, &d.nodes[i], "alive");
            alive += a != NULL && a->type == J_BOOL && a->b;
        }
        printf("node           %s\n", jtext(jget(&d, root, "node_id")));
        printf("leader         %s\n", leader);
        printf("term           %s\n", jtext(jget(&d, root, "term")));
        printf("commit index   %s\n", jtext(jget(&d, root, "commit_index")));
        printf("applied index  %s\n", jtext(jget(&d, root, "applied_index")));
        printf("members        %d (%d alive)\n", n, alive);
        return CTL_OK;
    }
    printf("%-8s %-40s %-8s %-6s %s\n", "ID", "ADDRESS", "ROLE", "ALIVE", "LEADER");
    for (int i = members ? members->child : -1; i >= 0; i = d.nodes[i].next) {
        const struct jnode *m = &d.nodes[i];
        const char *id = jtext(jget(&d, m, "id"));
        printf("%-8s %-40s %-8s %-6s %s\n", id, jtext(jget(&d, m, "address")),
               jtext(jget(&d, m, "role")), jtext(jget(&d, m, "alive")),
               strcmp(id, leader) == 0 ? "*" : "");
    }
    return CTL_OK;
}

static int cmd_change(const struct ctl *c, const char *path, const char *body)
{
    static struct jdoc d;
    struct response r;
    ctl_call(c, "POST", path, body, &r);
    ctl_result(c, &r, &d);
    if (c->json) return CTL_OK;
    const struct jnode *m = jget(&d, &d.nodes[0], "message");
    printf("%s\n", m != NULL && m->type == J_STR ? m->str : "done");
    return CTL_OK;
}

static uint64_t parse_id(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || s[0] == '-' || v == 0 || v > UINT32_MAX)
        die_usage("invalid node id '%s' (expected 1 to 4294967295)", s);
    return v;
}

static char *read_token(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "starling-ctl: cannot read %s: %s\n", path, strerror(errno));
        exit(CTL_USAGE);
    }
    static char tok[4096];
    size_t n = fread(tok, 1, sizeof tok - 1, f);
    fclose(f);
    tok[n] = '\0';
    while (n > 0 &&
           (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' ' || tok[n - 1] == '\t'))
        tok[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)tok[i] < 0x21 || (unsigned char)tok[i] > 0x7e) {
            fprintf(stderr, "starling-ctl: %s: the token may only hold visible ASCII\n", path);
            exit(CTL_USAGE);
        }
    if (n == 0) {
        fprintf(stderr, "starling-ctl: %s is empty\n", path);
        exit(CTL_USAGE);
    }
    return tok;
}

/* Splits [https://]HOST:PORT or [V6]:PORT into c->host and c->port. */
static void set_address(struct ctl *c, const char *a)
{
    const char *colon;
    if (strncmp(a, "https://", 8) == 0) {
        c->tls = true;
        a += 8;
    } else if (strncmp(a, "http://", 7) == 0) {
        a += 7;
    }
    size_t hl;
    if (a[0] == '[') {
        const char *close = strchr(a, ']');
        if (close == NULL || close[1] != ':') die_usage("invalid address '%s'", a);
        hl = (size_t)(close - a - 1);
        colon = close + 1;
        a++;
    } else {
        colon = strrchr(a, ':');
        if (colon == NULL) die_usage("invalid address '%s' (expected HOST:PORT)", a);
        hl = (size_t)(colon - a);
    }
    long p = strtol(colon + 1, NULL, 10);
    if (hl == 0 || hl >= sizeof c->host || p < 1 || p > 65535)
        die_usage("invalid address '%s' (expected HOST:PORT)", a);
    memcpy(c->host, a, hl);
    c->host[hl] = '\0';
    snprintf(c->port, sizeof c->port, "%ld", p);
}

/* ---- offline commands: backup, restore, recover (on a data directory, no admin API) ---- */

/* What the offline commands need of a node's configuration. */
struct node_conf {
    char data_dir[4096];
    uint64_t node_id;
    char address[300]; /* the advertised cluster address, "" if unknown */
    bool have_data_dir;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("starling-ctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(CTL_FAILED);
}

/* Trailing slashes off, as the broker does with persistence_location. */
static void set_data_dir(struct node_conf *nc, const char *dir)
{
    if (!*dir) die_usage("empty data dir");
    snprintf(nc->data_dir, sizeof nc->data_dir, "%s", dir);
    size_t n = strlen(nc->data_dir);
    while (n > 1 && nc->data_dir[n - 1] == '/')
        nc->data_dir[--n] = '\0';
    nc->have_data_dir = true;
}

/* Reads the directives that locate a node's data from a starling.conf: persistence,
 * persistence_location (default ./starling-data, relative to the directory the broker runs
 * in, as for the broker), node_id, and the advertised cluster address (cluster_advertise, or
 * this node's entry in cluster_peers). Files named by include_dir are not read. */
static void read_conf(const char *path, struct node_conf *nc)
{
    FILE *f = fopen(path, "r");
    if (!f) die("cannot read %s: %s", path, strerror(errno));
    char line[8192], peers[8192] = "", location[4096] = "./starling-data";
    bool persistence = true;
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\0' || *p == '\n') continue;
        size_t n = strlen(p);
        while (n > 0 &&
               (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
            p[--n] = '\0';
        char *v = p + strcspn(p, " \t");
        if (*v) *v++ = '\0';
        while (*v == ' ' || *v == '\t')
            v++;
        if (strcmp(p, "persistence_location") == 0)
            snprintf(location, sizeof location, "%s", v);
        else if (strcmp(p, "persistence") == 0)
            persistence = strcmp(v, "false") != 0;
        else if (strcmp(p, "node_id") == 0)
            nc->node_id = strtoull(v, NULL, 10);
        else if (strcmp(p, "cluster_advertise") == 0)
            snprintf(nc->address, sizeof nc->address, "%s", v);
        else if (strcmp(p, "cluster_peers") == 0)
            snprintf(peers, sizeof peers, "%s", v);
    }
    fclose(f);
    if (!persistence)
        die("%s: persistence false: the node keeps its state in a temporary directory", path);
    if (!nc->have_data_dir) set_data_dir(nc, location);
    if (!nc->address[0] && nc->node_id) {
        for (char *tok = strtok(peers, " \t,"); tok; tok = strtok(NULL, " \t,")) {
            char *at = strchr(tok, '@');
            if (at && strtoull(tok, NULL, 10) == nc->node_id) {
                snprintf(nc->address, sizeof nc->address, "%s", at + 1);
                break;
            }
        }
    }
}

static void join_path(char *out, size_t cap, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, cap, "%s/%s", dir, name) >= cap) die("path too long: %s", dir);
}

/* Refuses when a process (the broker, or a backup) has the node's state open. */
static void refuse_if_running(const char *data_dir, const char *what)
{
    char state[4200];
    long pid;
    join_path(state, sizeof state, data_dir, "state");
    int rc = store_in_use(state, &pid);
    if (rc < 0) die("cannot check %s: %s", state, store_strerror(rc));
    if (rc > 0)
        die("process %ld has the state in %s open (a running broker?): stop the node before %s",
            pid, data_dir, what);
}

static void print_info(const struct store_backup_info *in)
{
    printf("last applied index %llu; %llu sessions, %llu subscriptions, %llu retained "
           "messages, %llu queued messages, %llu wills; %llu bytes\n",
           (unsigned long long)in->last_applied, (unsigned long long)in->sessions,
           (unsigned long long)in->subscriptions, (unsigned long long)in->retained,
           (unsigned long long)in->queued, (unsigned long long)in->wills,
           (unsigned long long)in->bytes);
}

static int cmd_backup(const struct node_conf *nc, const char *file)
{
    char state[4200], data[4300];
    struct stat st;
    join_path(state, sizeof state, nc->data_dir, "state");
    join_path(data, sizeof data, state, "data.mdb");
    if (stat(data, &st) != 0)
        die("no state to back up in %s (%s: %s)", nc->data_dir, data, strerror(errno));
    struct store_backup_info in;
    int rc = store_backup(state, file, &in);
    if (rc != 0) die("backup of %s into %s failed: %s", state, file, store_strerror(rc));
    printf("backup %s of %s: ", file, nc->data_dir);
    print_info(&in);
    return CTL_OK;
}

/* Whether dir exists and holds at least one entry. */
static bool dir_has_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return false;
    struct dirent *e;
    bool any = false;
    while (!any && (e = readdir(d)) != NULL)
        any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return any;
}

/* Removes the files of the Raft directory (raft_uv keeps it flat) and the directory. */
static void remove_raft_dir(const char *raft)
{
    DIR *d = opendir(raft);
    if (!d) {
        if (errno == ENOENT) return;
        die("cannot open %s: %s", raft, strerror(errno));
    }
    struct dirent *e;
    char path[8400];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        join_path(path, sizeof path, raft, e->d_name);
        if (unlink(path) != 0) die("cannot remove %s: %s", path, strerror(errno));
    }
    closedir(d);
    if (rmdir(raft) != 0) die("cannot remove %s: %s", raft, strerror(errno));
}

static int cmd_restore(const struct node_conf *nc, const char *file, bool force)
{
    struct store_backup_info in;
    int rc = store_backup_check(file, &in);
    if (rc == STORE_ECORRUPT)
        die("%s is not a Starling state backup (not an LMDB file of ours)", file);
    if (rc != 0) die("%s: %s", file, store_strerror(rc));
    char state[4200], raft[4200], data[4300];
    join_path(state, sizeof state, nc->data_dir, "state");
    join_path(raft, sizeof raft, nc->data_dir, "raft");
    join_path(data, sizeof data, state, "data.mdb");
    if (mkdir(nc->data_dir, 0700) != 0 && errno != EEXIST)
        die("cannot create data dir %s: %s", nc->data_dir, strerror(errno));
    refuse_if_running(nc->data_dir, "restoring");
    struct stat st;
    bool has_state = stat(data, &st) == 0, has_log = dir_has_entries(raft);
    if ((has_state || has_log) && !force)
        die("%s already holds %s: restore into an empty data dir, or add --force to replace "
            "it (the node's state and Raft log are deleted)",
            nc->data_dir, has_state ? "state" : "a Raft log");
    /* The log goes first: state without a log is what a restore leaves anyway, while a log
     * beside restored state would replay its entries over it. */
    remove_raft_dir(raft);
    rc = store_restore(file, state, &in);
    if (rc == -EBUSY) refuse_if_running(nc->data_dir, "restoring");
    if (rc != 0) die("restore of %s into %s failed: %s", file, state, store_strerror(rc));
    printf("restored %s into %s: ", file, nc->data_dir);
    print_info(&in);
    printf("Start the node: it begins a new Raft log over this state (as a one-node cluster, "
           "or with its cluster_peers); other nodes join it with empty data dirs.\n");
    return CTL_OK;
}

static const char recover_warning[] =
    "WARNING: disaster recovery. This forces node %llu (%s) to be the ONLY voter of the\n"
    "cluster whose Raft log is in %s/raft.\n"
    "- Use it only when a majority of the voters is lost for good, on the survivor with the\n"
    "  longest log (the highest applied index), exactly once.\n"
    "- Whatever was committed on the lost nodes but is not in this node's log is lost for\n"
    "  good: acknowledged retained messages, subscriptions, session and queue changes.\n"
    "- The old members must never start again with their old data dirs: wipe them and let\n"
    "  them join this node (cluster_join) as new members.\n"
    "This node's state holds the log up to index %llu.\n";

static int cmd_recover(const struct node_conf *nc, bool yes)
{
    if (!nc->node_id) die_usage("recover needs --node-id (or node_id in -c FILE)");
    if (!nc->address[0])
        die_usage("recover needs --address HOST:PORT, this node's advertised cluster address "
                  "(or cluster_advertise / cluster_peers in -c FILE)");
    refuse_if_running(nc->data_dir, "recovering");
    char state[4200], data[4300], raft[4200];
    join_path(state, sizeof state, nc->data_dir, "state");
    join_path(data, sizeof data, state, "data.mdb");
    join_path(raft, sizeof raft, nc->data_dir, "raft");
    if (!dir_has_entries(raft)) die("no Raft log in %s: nothing to recover", raft);
    struct store_backup_info in = {0};
    store_backup_check(data, &in); /* for the warning only */
    fprintf(stderr, recover_warning, (unsigned long long)nc->node_id, nc->address, nc->data_dir,
            (unsigned long long)in.last_applied);
    if (!yes) {
        if (!isatty(STDIN_FILENO))
            die("not confirmed: add --yes to recover without a terminal; nothing was changed");
        fprintf(stderr, "Type 'yes' to go on: ");
        char answer[16] = "";
        if (!fgets(answer, sizeof answer, stdin) || strcmp(answer, "yes\n") != 0)
            die("not confirmed; nothing was changed");
    }
    char err[512];
    long pid = 0;
    int rc = cluster_recover(nc->data_dir, nc->node_id, nc->address, &pid, err, sizeof err);
    if (rc == -EBUSY) refuse_if_running(nc->data_dir, "recovering");
    if (rc == -ENOENT) die("no Raft log in %s: nothing to recover", raft);
    if (rc != 0) die("recover failed: %s", err[0] ? err : cluster_strerror(rc));
    printf("recovered: node %llu (%s) is the only voter of the configuration in %s. Start it; "
           "then start new nodes with empty data dirs and cluster_join pointing at it.\n",
           (unsigned long long)nc->node_id, nc->address, raft);
    return CTL_OK;
}

/* backup|restore|recover [options] [FILE]: argv[0] is the command. */
static int offline_main(int argc, char **argv)
{
    const char *cmd = argv[0], *conf = NULL, *file = NULL;
    struct node_conf nc = {0};
    bool force = false, yes = false;
    const char *node_id = NULL, *address = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_next = i + 1 < argc;
        if (strcmp(a, "--data-dir") == 0 || strcmp(a, "-d") == 0) {
            if (!has_next) die_usage("%s needs a directory", a);
            set_data_dir(&nc, argv[++i]);
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (!has_next) die_usage("%s needs a file", a);
            conf = argv[++i];
        } else if (strcmp(a, "--force") == 0 && strcmp(cmd, "restore") == 0) {
            force = true;
        } else if (strcmp(a, "--yes") == 0 && strcmp(cmd, "recover") == 0) {
            yes = true;
        } else if (strcmp(a, "--node-id") == 0 && strcmp(cmd, "recover") == 0) {
            if (!has_next) die_usage("--node-id needs an id");
            node_id = argv[++i];
        } else if (strcmp(a, "--address") == 0 && strcmp(cmd, "recover") == 0) {
            if (!has_next) die_usage("--address needs HOST:PORT");
            address = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            die_usage("unknown option '%s' for %s", a, cmd);
        } else if (!file && strcmp(cmd, "recover") != 0) {
            file = a;
        } else {
            die_usage("unexpected argument '%s'", a);
        }
    }
    if (conf) read_conf(conf, &nc);
    if (node_id) nc.node_id = parse_id(node_id);
    if (address) {
        struct ctl check;
        set_address(&check, address); /* validates the form */
        snprintf(nc.address, sizeof nc.address, "%s", address);
    }
    if (!nc.have_data_dir) die_usage("%s needs --data-dir DIR or -c FILE", cmd);
    if (strcmp(cmd, "recover") == 0) return cmd_recover(&nc, yes);
    if (!file) die_usage("%s needs a FILE", cmd);
    return cmd[0] == 'b' ? cmd_backup(&nc, file) : cmd_restore(&nc, file, force);
}

/* Parses the global option at argv[i] into c; returns the index of its last word. Options may
 * come before or after the command (`starling-ctl status -H HOST:PORT`). */
static int global_option(struct ctl *c, int argc, char **argv, int i)
{
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
        fputs(usage_text, stdout);
        exit(CTL_OK);
    } else if (strcmp(a, "--json") == 0) {
        c->json = true;
    } else if (strcmp(a, "-H") == 0 || strcmp(a, "--host") == 0) {
        if (++i == argc) die_usage("%s needs HOST:PORT", a);
        set_address(c, argv[i]);
    } else if (strcmp(a, "--cafile") == 0 || strcmp(a, "--cert") == 0 || strcmp(a, "--key") == 0) {
        if (++i == argc) die_usage("%s needs a file", a);
        const char **f = a[2] == 'c' && a[3] == 'a' ? &c->cafile
                         : a[4] == 'r'              ? &c->certfile
                                                    : &c->keyfile;
        *f = argv[i];
        c->tls = true;
    } else if (strcmp(a, "--token-file") == 0) {
        if (++i == argc) die_usage("--token-file needs a file");
        c->token = read_token(argv[i]);
    } else if (strcmp(a, "--timeout") == 0) {
        if (++i == argc) die_usage("--timeout needs seconds");
        double s = strtod(argv[i], NULL);
        if (!(s > 0 && s <= 3600)) die_usage("invalid timeout '%s'", argv[i]);
        c->timeout_ms = (int)(s * 1000);
    } else {
        die_usage("unknown option '%s'", a);
    }
    return i;
}

int main(int argc, char **argv)
{
    struct ctl c = {.timeout_ms = 10000};
    int i;
    set_address(&c, CTL_DEFAULT_ADDRESS);
    for (i = 1; i < argc && argv[i][0] == '-'; i++)
        i = global_option(&c, argc, argv, i);
    if (i == argc) die_usage("missing command");
    if (strcmp(argv[i], "backup") == 0 || strcmp(argv[i], "restore") == 0 ||
        strcmp(argv[i], "recover") == 0)
        return offline_main(argc - i, argv + i);
    /* The command's words, with the options that follow it taken out. */
    const char *cmd = argv[i++];
    char **args = argv + i;
    int nargs = 0;
    for (; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            i = global_option(&c, argc, argv, i);
        else
            args[nargs++] = argv[i];
    }
    if (!c.certfile != !c.keyfile) die_usage("--cert and --key go together");
    char body[512];
    if (strcmp(cmd, "status") == 0 || strcmp(cmd, "members") == 0) {
        if (nargs != 0) die_usage("%s takes no arguments", cmd);
        return cmd_status(&c, cmd[0] == 'm');
    }
    if (strcmp(cmd, "join") == 0) {
        if (nargs != 2) die_usage("join needs ID HOST:PORT");
        uint64_t id = parse_id(args[0]);
        const char *addr = args[1];
        struct ctl check = c;
        set_address(&check, addr); /* validates the form */
        for (const char *p = addr; *p; p++)
            if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
                die_usage("invalid address '%s'", addr);
        snprintf(body, sizeof body, "{\"id\":%llu,\"address\":\"%s\"}", (unsigned long long)id,
                 addr);
        return cmd_change(&c, "/api/v1/cluster/join", body);
    }
    if (strcmp(cmd, "remove") == 0) {
        if (nargs != 1) die_usage("remove needs ID");
        snprintf(body, sizeof body, "{\"id\":%llu}", (unsigned long long)parse_id(args[0]));
        return cmd_change(&c, "/api/v1/cluster/remove", body);
    }
    if (strcmp(cmd, "transfer") == 0) {
        if (nargs > 1) die_usage("transfer takes at most one ID");
        if (nargs == 1)
            snprintf(body, sizeof body, "{\"id\":%llu}", (unsigned long long)parse_id(args[0]));
        else
            snprintf(body, sizeof body, "{}");
        return cmd_change(&c, "/api/v1/cluster/transfer", body);
    }
    die_usage("unknown command '%s'", cmd);
}
