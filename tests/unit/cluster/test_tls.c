/* Cluster TLS (cluster_cafile/certfile/keyfile) on real sockets on 127.0.0.1, certificates
 * made here with openssl: three TLS nodes elect a leader and replicate; a node whose
 * certificate comes from another CA cannot join and does not disturb them; a recording proxy
 * between the nodes sees no proposed payload in the clear with TLS, and sees it without (so
 * the check can fail); incomplete or unloadable TLS contents are refused at start. Every wait is
 * bounded. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "cluster.h"
#include "testlib.h"

#define MAX_NODES  5
#define MAX_FRAMES 4096

static uv_loop_t loop;

struct tnode {
    int idx;
    uint64_t id;
    struct cluster *c;
    struct cluster_config cfg;
    char dir[512];
    char addr[64];
    bool open, closed, removed;
    unsigned n_applied, n_ring, n_down_events, n_restored, n_bulk;
    uint64_t last_applied_index;
    /* link frames received */
    uint32_t frames[MAX_FRAMES];
    unsigned n_frames;
    uint64_t frame_from;
};

static struct tnode nodes[MAX_NODES];
static struct cluster_peer peers[MAX_NODES];
static size_t n_peers;
static const char *secret = "s3cret";
static unsigned snap_threshold; /* 0 = the default */

static void log_line(void *ctx, enum cluster_log_level level, const char *line)
{
    struct tnode *n = ctx;
    if (level >= CLUSTER_LOG_ERR || getenv("TEST_VERBOSE"))
        fprintf(stderr, "node%llu[%d]: %s\n", (unsigned long long)n->id, level, line);
}

static void ev_applied(void *ctx, const struct cluster_cmd *cmd, uint64_t index)
{
    struct tnode *n = ctx;
    (void)cmd;
    n->n_applied++;
    n->last_applied_index = index;
}

static void ev_restored(void *ctx, uint64_t index)
{
    struct tnode *n = ctx;
    (void)index;
    n->n_restored++;
}

static void ev_ring(void *ctx)
{
    struct tnode *n = ctx;
    n->n_ring++;
}

static void ev_node(void *ctx, uint64_t id, bool up, bool is_leader)
{
    struct tnode *n = ctx;
    (void)id;
    (void)is_leader;
    if (!up) n->n_down_events++;
}

static void ev_removed(void *ctx)
{
    struct tnode *n = ctx;
    n->removed = true;
}

static void ev_frame(void *ctx, uint64_t from, uint8_t type, const uint8_t *buf, size_t len)
{
    struct tnode *n = ctx;
    if (type == 8) { /* the throughput run: counted only */
        n->n_bulk++;
        return;
    }
    assert_int_equal(type, 7);
    assert_int_equal(len, 4);
    if (n->n_frames < MAX_FRAMES) {
        n->frames[n->n_frames++] =
            (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
    }
    n->frame_from = from;
}

static const struct cluster_events events = {
    .applied = ev_applied,
    .ring_changed = ev_ring,
    .restored = ev_restored,
    .node_changed = ev_node,
    .removed = ev_removed,
    .link_frame = ev_frame,
};

static unsigned free_port(void)
{
    uv_tcp_t t;
    struct sockaddr_in a;
    uv_tcp_init(&loop, &t);
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&t, (struct sockaddr *)&a, 0), 0);
    struct sockaddr_in b;
    int len = sizeof b;
    uv_tcp_getsockname(&t, (struct sockaddr *)&b, &len);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ntohs(b.sin_port);
}

/* Prepares node i (id i+1) with a fresh port; host "127.0.0.1" or a name. */
static void node_prepare(int i, const char *host)
{
    struct tnode *n = &nodes[i];
    memset(n, 0, sizeof *n);
    n->idx = i;
    n->id = (uint64_t)i + 1;
    snprintf(n->dir, sizeof n->dir, "%s", test_mkdtemp());
    unsigned port = free_port();
    snprintf(n->addr, sizeof n->addr, "%s:%u", host, port);
    n->cfg = (struct cluster_config){
        .data_dir = n->dir,
        .node_id = n->id,
        .log = log_line,
        .log_ctx = n,
        .election_timeout_ms = 500,
        .heartbeat_timeout_ms = 50,
        .listen_port = port,
        .listen_bind = "127.0.0.1",
        .advertise = n->addr,
        .secret = (const uint8_t *)secret,
        .secret_len = strlen(secret),
        .link_queue_max_bytes = 1 << 20,
        .snapshot_threshold = snap_threshold,
        .snapshot_trailing = snap_threshold ? 4 : 0,
    };
}

static void node_start(int i)
{
    struct tnode *n = &nodes[i];
    assert_int_equal(cluster_new(&loop, &n->cfg, &events, n, &n->c), 0);
    assert_int_equal(cluster_start(n->c), 0);
    n->open = true;
}

static void closed_cb(void *data)
{
    struct tnode *n = data;
    n->closed = true;
}

static void timeout_cb(uv_timer_t *t)
{
    bool *expired = t->data;
    *expired = true;
}

static bool run_until(bool (*cond)(void *arg), void *arg, unsigned ms)
{
    uv_timer_t timer;
    bool expired = false;
    uv_timer_init(&loop, &timer);
    timer.data = &expired;
    uv_timer_start(&timer, timeout_cb, ms, 0);
    /* Wakes the loop regularly, so that conditions set by unref'd timers are seen. */
    uv_timer_t wake;
    bool dummy = false;
    uv_timer_init(&loop, &wake);
    wake.data = &dummy;
    uv_timer_start(&wake, timeout_cb, 20, 20);
    while (!cond(arg) && !expired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_close((uv_handle_t *)&wake, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return !expired;
}

static bool node_closed(void *arg)
{
    return ((struct tnode *)arg)->closed;
}

static void node_stop(int i)
{
    struct tnode *n = &nodes[i];
    if (!n->open) return;
    cluster_close(n->c, closed_cb, n);
    assert_true(run_until(node_closed, n, 5000));
    n->open = false;
}

static void all_stop(void)
{
    for (int i = 0; i < MAX_NODES; i++)
        node_stop(i);
    uv_run(&loop, UV_RUN_NOWAIT);
    for (int i = 0; i < MAX_NODES; i++)
        if (nodes[i].dir[0]) test_rmdir(nodes[i].dir);
}

/* The leader every open node agrees on, or NULL. */
static struct tnode *agreed_leader(void)
{
    uint64_t id = 0;
    struct tnode *l = NULL;
    for (int i = 0; i < MAX_NODES; i++) {
        struct tnode *n = &nodes[i];
        if (!n->open || n->removed) continue;
        uint64_t lid = cluster_leader_id(n->c);
        if (lid == 0 || (id && lid != id)) return NULL;
        id = lid;
        if (cluster_is_leader(n->c)) l = n;
    }
    return l && l->id == id ? l : NULL;
}

static bool have_leader(void *arg)
{
    (void)arg;
    return agreed_leader() != NULL;
}

static struct tnode *a_follower(void)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (nodes[i].open && !nodes[i].removed && !cluster_is_leader(nodes[i].c)) return &nodes[i];
    return NULL;
}

struct done {
    bool fired;
    int status;
    uint64_t index;
};

static void done_cb(void *data, int status, uint64_t index)
{
    struct done *d = data;
    d->fired = true;
    d->status = status;
    d->index = index;
}

static bool fired(void *arg)
{
    return ((struct done *)arg)->fired;
}

static const char *payload = "v";

static struct cluster_cmd c_retain(const char *topic)
{
    return (struct cluster_cmd){
        .type = CLUSTER_CMD_RETAIN_SET,
        .retain_set = {.msg = {.topic = {topic, strlen(topic)},
                               .payload = {(const uint8_t *)payload, strlen(payload)},
                               .qos = 1}}};
}

static bool has_retained(struct cluster *c, const char *topic)
{
    struct store_txn *t;
    struct store_retained r;
    assert_int_equal(store_read_begin(cluster_storage(c), &t), 0);
    int rc = store_retain_get(t, topic, strlen(topic), &r);
    store_txn_end(t);
    return rc == 0;
}

static uint64_t want_index;
static bool all_applied(void *arg)
{
    (void)arg;
    for (int i = 0; i < MAX_NODES; i++)
        if (nodes[i].open && !nodes[i].removed && cluster_last_applied(nodes[i].c) < want_index)
            return false;
    return true;
}

/* Proposes a retained topic on node n and checks it reaches every open node. */
static void propose_everywhere(struct tnode *n, const char *topic)
{
    struct cluster_cmd cmd = c_retain(topic);
    struct done d = {0};
    /* A leader change in between (a loaded machine can miss a heartbeat) fails the proposal
     * as documented; try again then, a bounded number of times. */
    for (int attempt = 0;; attempt++) {
        memset(&d, 0, sizeof d);
        int rc = cluster_propose(n->c, &cmd, done_cb, &d);
        if (rc == 0) {
            assert_false(d.fired);
            assert_true(run_until(fired, &d, 10000));
            rc = d.status;
        }
        if (rc == 0) break;
        assert_true(rc == CLUSTER_ELEADERSHIPLOST || rc == CLUSTER_ENOQUORUM ||
                    rc == CLUSTER_ENOTLEADER);
        assert_true(attempt < 5);
        fprintf(stderr, "proposal on node %llu: %s; again\n", (unsigned long long)n->id,
                cluster_strerror(rc));
        assert_true(run_until(have_leader, NULL, 10000));
    }
    assert_true(d.index > 0);
    /* Applied on the proposer before its callback. */
    assert_true(cluster_last_applied(n->c) >= d.index);
    assert_true(has_retained(n->c, topic));
    want_index = d.index;
    assert_true(run_until(all_applied, NULL, 10000));
    for (int i = 0; i < MAX_NODES; i++)
        if (nodes[i].open && !nodes[i].removed) assert_true(has_retained(nodes[i].c, topic));
}

static bool n4_voter(void *arg)
{
    (void)arg;
    struct tnode *l = agreed_leader();
    if (!l) return false;
    struct cluster_member m[MAX_NODES];
    struct cluster_status st;
    cluster_members(l->c, m, MAX_NODES, &st);
    for (size_t i = 0; i < st.n_members && i < MAX_NODES; i++) {
        if (m[i].id != 4 || m[i].role != CLUSTER_ROLE_VOTER) continue;
        assert_string_equal(m[i].address, nodes[3].addr);
        return true;
    }
    return false;
}

/* ---- certificates ---- */

static char cert_dir[512];

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", cert_dir, name);
}

/* The PEM files' contents (the broker reads them the same way when it loads its config). */
struct pem {
    char *buf;
    size_t len;
};
static struct pem ca_pem, node_cert, node_key, rogue_cert, rogue_key;

static void pem_read(struct pem *out, const char *name)
{
    char path[600];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    out->buf = calloc(1, 65536);
    assert_non_null(out->buf);
    out->len = fread(out->buf, 1, 65535, f);
    fclose(f);
    assert_true(out->len > 0);
}

/* A cluster CA with one node certificate, and another CA with a certificate of its own. */
static void make_certs(void)
{
    snprintf(cert_dir, sizeof cert_dir, "%s", test_mkdtemp());
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "set -e; cd '%s'; exec >openssl.log 2>&1\n"
             "printf 'basicConstraints=CA:FALSE\\nkeyUsage=digitalSignature\\n"
             "extendedKeyUsage=serverAuth,clientAuth\\n' >leaf.ext\n"
             "for ca in ca other; do\n"
             "  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout $ca.key -out $ca.pem -days 2 -subj /CN=$ca-root\n"
             "done\n"
             "mk() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout $1.key -out $1.csr -subj /CN=$1\n"
             "  openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial "
             "-out $1.pem -days 2 -extfile leaf.ext; }\n"
             "mk node ca\nmk rogue other\n",
             cert_dir);
    int rc = system(cmd);
    if (rc != 0) {
        fprintf(stderr, "openssl failed (see %s/openssl.log)\n", cert_dir);
        fail();
    }
    pem_read(&ca_pem, "ca.pem");
    pem_read(&node_cert, "node.pem");
    pem_read(&node_key, "node.key");
    pem_read(&rogue_cert, "rogue.pem");
    pem_read(&rogue_key, "rogue.key");
}

static void tls_on(struct tnode *n, bool rogue)
{
    const struct pem *cert = rogue ? &rogue_cert : &node_cert,
                     *key = rogue ? &rogue_key : &node_key;
    n->cfg.tls_ca_pem = ca_pem.buf;
    n->cfg.tls_ca_pem_len = ca_pem.len;
    n->cfg.tls_cert_pem = cert->buf;
    n->cfg.tls_cert_pem_len = cert->len;
    n->cfg.tls_key_pem = key->buf;
    n->cfg.tls_key_pem_len = key->len;
}

/* ---- a recording TCP proxy on the loop ---- */

struct pside {
    uv_tcp_t tcp;
    struct ppair *pair;
};

struct ppair {
    struct pside a, b; /* a: the dialing node, b: the target node */
    int open;
    bool closing, b_connected;
    uv_connect_t conn;
    struct ppair *next;
};

struct proxy {
    uv_tcp_t listener;
    struct sockaddr_in target;
    unsigned port;
};

static struct proxy proxies[MAX_NODES];
static struct ppair *pairs;
static uint8_t *rec;
static size_t rec_len, rec_cap;

static void record(const char *buf, size_t len)
{
    if (rec_len + len > rec_cap) {
        rec_cap = (rec_len + len) * 2;
        rec = realloc(rec, rec_cap);
        assert_non_null(rec);
    }
    memcpy(rec + rec_len, buf, len);
    rec_len += len;
}

static void pside_closed(uv_handle_t *h)
{
    struct pside *s = h->data;
    s->pair->open--;
}

static void pair_close(struct ppair *pp)
{
    if (pp->closing) return;
    pp->closing = true;
    uv_close((uv_handle_t *)&pp->a.tcp, pside_closed);
    uv_close((uv_handle_t *)&pp->b.tcp, pside_closed);
}

struct pwrite {
    uv_write_t w;
    char buf[];
};

static void pwrite_cb(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void palloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = suggested;
}

static void pread_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct pside *side = s->data;
    struct ppair *pp = side->pair;
    if (nread < 0) {
        free(buf->base);
        pair_close(pp);
        return;
    }
    if (nread > 0 && !pp->closing) {
        record(buf->base, (size_t)nread);
        struct pside *other = side == &pp->a ? &pp->b : &pp->a;
        struct pwrite *w = malloc(sizeof *w + (size_t)nread);
        memcpy(w->buf, buf->base, (size_t)nread);
        uv_buf_t b = uv_buf_init(w->buf, (unsigned)nread);
        if (uv_write(&w->w, (uv_stream_t *)&other->tcp, &b, 1, pwrite_cb) != 0) {
            free(w);
            pair_close(pp);
        }
    }
    free(buf->base);
}

static void pconnect_cb(uv_connect_t *req, int status)
{
    struct ppair *pp = req->data;
    if (pp->closing) return;
    if (status < 0) {
        pair_close(pp);
        return;
    }
    pp->b_connected = true;
    uv_read_start((uv_stream_t *)&pp->a.tcp, palloc, pread_cb);
    uv_read_start((uv_stream_t *)&pp->b.tcp, palloc, pread_cb);
}

static void pconnection_cb(uv_stream_t *server, int status)
{
    struct proxy *px = server->data;
    if (status < 0) return;
    struct ppair *pp = calloc(1, sizeof *pp);
    assert_non_null(pp);
    pp->a.pair = pp->b.pair = pp;
    uv_tcp_init(&loop, &pp->a.tcp);
    uv_tcp_init(&loop, &pp->b.tcp);
    pp->a.tcp.data = &pp->a;
    pp->b.tcp.data = &pp->b;
    pp->open = 2;
    pp->next = pairs;
    pairs = pp;
    if (uv_accept(server, (uv_stream_t *)&pp->a.tcp) != 0) {
        pair_close(pp);
        return;
    }
    pp->conn.data = pp;
    if (uv_tcp_connect(&pp->conn, &pp->b.tcp, (const struct sockaddr *)&px->target, pconnect_cb) !=
        0)
        pair_close(pp);
}

/* A proxy for node i: peers reach node i through it (its advertised address). */
static void proxy_start(int i, unsigned target_port)
{
    struct proxy *px = &proxies[i];
    px->port = free_port();
    uv_ip4_addr("127.0.0.1", (int)target_port, &px->target);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", (int)px->port, &a);
    uv_tcp_init(&loop, &px->listener);
    px->listener.data = px;
    assert_int_equal(uv_tcp_bind(&px->listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&px->listener, 64, pconnection_cb), 0);
}

static bool pairs_closed(void *arg)
{
    (void)arg;
    for (struct ppair *pp = pairs; pp; pp = pp->next)
        if (pp->open > 0) return false;
    return true;
}

static void proxies_stop(int n)
{
    for (int i = 0; i < n; i++)
        uv_close((uv_handle_t *)&proxies[i].listener, NULL);
    for (struct ppair *pp = pairs; pp; pp = pp->next)
        pair_close(pp);
    assert_true(run_until(pairs_closed, NULL, 5000));
    while (pairs) {
        struct ppair *next = pairs->next;
        free(pairs);
        pairs = next;
    }
}

/* Three nodes, each reached by the others through its recording proxy; TLS or not. Proposes
 * retained messages carrying a marker and returns whether the marker crossed in the clear. */
static bool marker_in_clear(bool tls)
{
    static const char marker[] = "SECRET-PAYLOAD-1234";
    assert_int_equal(uv_loop_init(&loop), 0);
    memset(nodes, 0, sizeof nodes);
    rec_len = 0;
    for (int i = 0; i < 3; i++) {
        node_prepare(i, "127.0.0.1");
        proxy_start(i, nodes[i].cfg.listen_port);
        snprintf(nodes[i].addr, sizeof nodes[i].addr, "127.0.0.1:%u", proxies[i].port);
        if (tls) tls_on(&nodes[i], false);
    }
    n_peers = 3;
    for (int i = 0; i < 3; i++)
        peers[i] = (struct cluster_peer){nodes[i].id, nodes[i].addr};
    for (int i = 0; i < 3; i++) {
        nodes[i].cfg.peers = peers;
        nodes[i].cfg.n_peers = n_peers;
        node_start(i);
    }
    assert_true(run_until(have_leader, NULL, 10000));
    payload = marker;
    propose_everywhere(agreed_leader(), "secret/1");
    struct tnode *f = a_follower();
    assert_non_null(f);
    propose_everywhere(f, "secret/2"); /* forwarded over a node link */
    payload = "v";
    size_t seen = rec_len;
    bool found = memmem(rec, rec_len, marker, strlen(marker)) != NULL;
    for (int i = 0; i < 3; i++)
        node_stop(i);
    proxies_stop(3);
    all_stop();
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_true(seen > 1000); /* the cluster did talk through the proxies */
    return found;
}

static void no_plaintext_with_tls(void **state)
{
    (void)state;
    assert_false(marker_in_clear(true));
}

static void plaintext_without_tls(void **state)
{
    (void)state;
    assert_true(marker_in_clear(false));
}

static void tls_cluster(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    memset(nodes, 0, sizeof nodes);
    for (int i = 0; i < 3; i++) {
        node_prepare(i, "127.0.0.1");
        tls_on(&nodes[i], false);
    }
    n_peers = 3;
    for (int i = 0; i < 3; i++)
        peers[i] = (struct cluster_peer){nodes[i].id, nodes[i].addr};
    for (int i = 0; i < 3; i++) {
        nodes[i].cfg.peers = peers;
        nodes[i].cfg.n_peers = n_peers;
        node_start(i);
    }
    assert_true(run_until(have_leader, NULL, 10000));
    propose_everywhere(agreed_leader(), "tls/1");
    struct tnode *f = a_follower();
    assert_non_null(f);
    for (int k = 0; k < 20; k++) {
        char topic[32];
        snprintf(topic, sizeof topic, "tls/f/%d", k);
        propose_everywhere(f, topic);
    }
    struct cluster_stats cs;
    cluster_get_stats(nodes[0].c, &cs);
    assert_true(cs.hello_accepted >= 2);

    /* A node with a certificate of another CA, the right secret and cluster name: no
     * connection of it passes, and the three keep their leader and keep committing. */
    uint64_t leader = agreed_leader()->id;
    node_prepare(3, "127.0.0.1");
    tls_on(&nodes[3], true);
    nodes[3].cfg.join = nodes[0].addr;
    node_start(3);
    bool never = false;
    run_until(n4_voter, &never, 3000);
    assert_false(n4_voter(NULL));
    assert_false(cluster_is_member(nodes[3].c));
    assert_int_equal(cluster_leader_id(nodes[3].c), 0);
    cluster_get_stats(nodes[3].c, &cs);
    assert_true(cs.hello_refused >= 1);
    assert_int_equal(cs.hello_accepted, 0);
    uint64_t refused = 0;
    for (int i = 0; i < 3; i++) {
        cluster_get_stats(nodes[i].c, &cs);
        refused += cs.hello_refused;
    }
    assert_true(refused >= 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(cluster_leader_id(nodes[i].c), leader);
    node_stop(3);
    assert_non_null(agreed_leader());
    assert_int_equal(agreed_leader()->id, leader);
    propose_everywhere(agreed_leader(), "tls/still");
    all_stop();
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Incomplete or unloadable TLS settings fail at start, and nothing is left behind. */
static void tls_config_refused(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    memset(nodes, 0, sizeof nodes);
    for (int k = 0; k < 3; k++) {
        node_prepare(0, "127.0.0.1");
        peers[0] = (struct cluster_peer){nodes[0].id, nodes[0].addr};
        nodes[0].cfg.peers = peers;
        nodes[0].cfg.n_peers = 1;
        tls_on(&nodes[0], false);
        if (k == 0) nodes[0].cfg.tls_key_pem = NULL;
        if (k == 1) nodes[0].cfg.tls_cert_pem_len = 20; /* a truncated certificate */
        if (k == 2) {                                   /* a key where the CA belongs */
            nodes[0].cfg.tls_ca_pem = node_key.buf;
            nodes[0].cfg.tls_ca_pem_len = node_key.len;
        }
        struct tnode *n = &nodes[0];
        int rc = cluster_new(&loop, &n->cfg, &events, n, &n->c);
        if (rc == 0) {
            rc = cluster_start(n->c);
            assert_int_not_equal(rc, 0);
            n->open = true;
            node_stop(0);
        }
        test_rmdir(n->dir);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    make_certs();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_rmdir(cert_dir);
    free(rec);
    struct pem *all[] = {&ca_pem, &node_cert, &node_key, &rogue_cert, &rogue_key};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]->buf);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tls_cluster),
        cmocka_unit_test(no_plaintext_with_tls),
        cmocka_unit_test(plaintext_without_tls),
        cmocka_unit_test(tls_config_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
