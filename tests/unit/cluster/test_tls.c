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
#include "nodes.h"
#include "testlib.h"

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
