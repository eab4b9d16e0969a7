/* A node that goes silent without closing anything (what SIGSTOP does to a process): three
 * nodes, each on its own thread and libuv loop, over real sockets on 127.0.0.1. Pausing a
 * thread stops its node dead with its sockets open. The others must elect a new leader,
 * commit the silent node down (the ring shrinks), keep committing; once it runs again it
 * comes back as a follower and is committed up. The main thread sees the nodes only through
 * snapshots each node thread publishes under a mutex, and asks for proposals the same way. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "cluster.h"
#include "testlib.h"

#define N 3

struct snap {
    uint64_t leader_id;
    bool is_leader;
    size_t live;
    uint64_t applied;
    int propose_status; /* 1 = pending, else the callback's status */
};

struct tnode {
    uint64_t id;
    pthread_t thread;
    uv_loop_t loop;
    struct cluster *c;
    struct cluster_config cfg;
    char dir[512], addr[64];
    pthread_mutex_t mu;
    bool paused, quit, closed, want_propose;
    char topic[64];
    struct snap snap;
};

static struct tnode nodes[N];
static struct cluster_peer peers[N];

static void log_line(void *ctx, enum cluster_log_level level, const char *line)
{
    struct tnode *n = ctx;
    if (level >= CLUSTER_LOG_ERR || getenv("TEST_VERBOSE"))
        fprintf(stderr, "node%llu[%d]: %s\n", (unsigned long long)n->id, level, line);
}

static void propose_done(void *data, int status, uint64_t index)
{
    struct tnode *n = data;
    (void)index;
    pthread_mutex_lock(&n->mu);
    n->snap.propose_status = status;
    pthread_mutex_unlock(&n->mu);
}

static void wake_cb(uv_timer_t *t)
{
    (void)t;
}

static void closed_cb(void *data)
{
    struct tnode *n = data;
    n->closed = true;
}

static void *node_main(void *arg)
{
    struct tnode *n = arg;
    uv_timer_t wake;
    uv_timer_init(&n->loop, &wake);
    uv_timer_start(&wake, wake_cb, 5, 5);
    for (;;) {
        pthread_mutex_lock(&n->mu);
        bool paused = n->paused, quit = n->quit, propose = n->want_propose;
        n->want_propose = false;
        pthread_mutex_unlock(&n->mu);
        if (quit) break;
        if (paused) {
            usleep(5000);
            continue;
        }
        if (propose) {
            struct cluster_cmd cmd = {.type = CLUSTER_CMD_RETAIN_SET};
            cmd.retain_set.msg.topic = (struct store_str){n->topic, strlen(n->topic)};
            cmd.retain_set.msg.payload = (struct store_blob){(const uint8_t *)"v", 1};
            int rc = cluster_propose(n->c, &cmd, propose_done, n);
            if (rc != 0) propose_done(n, rc, 0);
        }
        uv_run(&n->loop, UV_RUN_ONCE);
        uint64_t ids[N + 2];
        struct snap s = {
            .leader_id = cluster_leader_id(n->c),
            .is_leader = cluster_is_leader(n->c),
            .live = cluster_live_members(n->c, ids, N + 2),
            .applied = cluster_last_applied(n->c),
        };
        pthread_mutex_lock(&n->mu);
        s.propose_status = n->snap.propose_status;
        n->snap = s;
        pthread_mutex_unlock(&n->mu);
    }
    cluster_close(n->c, closed_cb, n);
    uv_close((uv_handle_t *)&wake, NULL);
    while (!n->closed)
        uv_run(&n->loop, UV_RUN_ONCE);
    uv_run(&n->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&n->loop), 0);
    return NULL;
}

static unsigned free_port(void)
{
    uv_loop_t l;
    uv_loop_init(&l);
    uv_tcp_t t;
    struct sockaddr_in a, b;
    uv_tcp_init(&l, &t);
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&t, (struct sockaddr *)&a, 0), 0);
    int len = sizeof b;
    uv_tcp_getsockname(&t, (struct sockaddr *)&b, &len);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&l, UV_RUN_DEFAULT);
    uv_loop_close(&l);
    return ntohs(b.sin_port);
}

static struct snap snap_of(struct tnode *n)
{
    pthread_mutex_lock(&n->mu);
    struct snap s = n->snap;
    pthread_mutex_unlock(&n->mu);
    return s;
}

static void set_paused(struct tnode *n, bool paused)
{
    pthread_mutex_lock(&n->mu);
    n->paused = paused;
    pthread_mutex_unlock(&n->mu);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits (bounded) until cond holds. */
static bool wait_for(bool (*cond)(void *), void *arg, unsigned ms)
{
    uint64_t end = now_ms() + ms;
    while (now_ms() < end) {
        if (cond(arg)) return true;
        usleep(10000);
    }
    return cond(arg);
}

/* The running nodes (not `except`) agree on a leader among them: its index, or -1. */
static int agreed_leader(struct tnode *except)
{
    uint64_t id = 0;
    int li = -1;
    for (int i = 0; i < N; i++) {
        if (&nodes[i] == except) continue;
        struct snap s = snap_of(&nodes[i]);
        if (s.leader_id == 0 || (id && s.leader_id != id)) return -1;
        id = s.leader_id;
        if (s.is_leader) li = i;
    }
    return li >= 0 && nodes[li].id == id ? li : -1;
}

static struct tnode *excluded;
static bool have_leader(void *arg)
{
    (void)arg;
    return agreed_leader(excluded) >= 0;
}

static size_t want_live;
static bool live_is(void *arg)
{
    (void)arg;
    for (int i = 0; i < N; i++)
        if (&nodes[i] != excluded && snap_of(&nodes[i]).live != want_live) return false;
    return true;
}

static bool proposal_done(void *arg)
{
    return snap_of(arg).propose_status != 1;
}

static int propose_on(struct tnode *n, const char *topic)
{
    pthread_mutex_lock(&n->mu);
    snprintf(n->topic, sizeof n->topic, "%s", topic);
    n->snap.propose_status = 1;
    n->want_propose = true;
    pthread_mutex_unlock(&n->mu);
    assert_true(wait_for(proposal_done, n, 15000));
    return snap_of(n).propose_status;
}

/* A proposal on a running follower, retried across a documented leadership failure. */
static void propose_ok(const char *topic)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        assert_true(wait_for(have_leader, NULL, 10000));
        int li = agreed_leader(excluded);
        struct tnode *f = NULL;
        for (int i = 0; i < N && !f; i++)
            if (i != li && &nodes[i] != excluded) f = &nodes[i];
        int rc = propose_on(f ? f : &nodes[li], topic);
        if (rc == 0) return;
        assert_true(rc == CLUSTER_ELEADERSHIPLOST || rc == CLUSTER_ENOQUORUM ||
                    rc == CLUSTER_ENOTLEADER);
    }
    fail_msg("no proposal got through");
}

static void silent_nodes(void **state)
{
    (void)state;
    for (int i = 0; i < N; i++) {
        struct tnode *n = &nodes[i];
        n->id = (uint64_t)i + 1;
        snprintf(n->dir, sizeof n->dir, "%s", test_mkdtemp());
        unsigned port = free_port();
        snprintf(n->addr, sizeof n->addr, "127.0.0.1:%u", port);
        peers[i] = (struct cluster_peer){n->id, n->addr};
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
            .secret = (const uint8_t *)"k",
            .secret_len = 1,
            .peers = peers,
            .n_peers = N,
        };
        pthread_mutex_init(&n->mu, NULL);
    }
    for (int i = 0; i < N; i++) {
        struct tnode *n = &nodes[i];
        assert_int_equal(uv_loop_init(&n->loop), 0);
        assert_int_equal(cluster_new(&n->loop, &n->cfg, NULL, n, &n->c), 0);
        assert_int_equal(cluster_start(n->c), 0);
        assert_int_equal(pthread_create(&n->thread, NULL, node_main, n), 0);
    }
    excluded = NULL;
    assert_true(wait_for(have_leader, NULL, 10000));
    want_live = 3;
    assert_true(wait_for(live_is, NULL, 10000));
    propose_ok("first");

    /* The leader goes silent for longer than the election timeout and node_down_ms. */
    struct tnode *old = &nodes[agreed_leader(NULL)];
    set_paused(old, true);
    excluded = old;
    assert_true(wait_for(have_leader, NULL, 10000));
    want_live = 2;
    assert_true(wait_for(live_is, NULL, 10000));
    propose_ok("while/silent");
    /* It wakes up: a follower now (pre-vote keeps it from deposing the leader), committed up,
     * and it applies what it missed. */
    set_paused(old, false);
    excluded = NULL;
    want_live = 3;
    assert_true(wait_for(live_is, NULL, 10000));
    assert_true(wait_for(have_leader, NULL, 10000));
    propose_ok("after/wake");

    /* A follower goes silent: the ring shrinks, commits go on. */
    int li = agreed_leader(NULL);
    struct tnode *f = &nodes[(li + 1) % N];
    set_paused(f, true);
    excluded = f;
    want_live = 2;
    assert_true(wait_for(live_is, NULL, 10000));
    propose_ok("follower/silent");
    set_paused(f, false);
    excluded = NULL;
    want_live = 3;
    assert_true(wait_for(live_is, NULL, 10000));

    for (int i = 0; i < N; i++) {
        pthread_mutex_lock(&nodes[i].mu);
        nodes[i].quit = true;
        pthread_mutex_unlock(&nodes[i].mu);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(nodes[i].thread, NULL);
        pthread_mutex_destroy(&nodes[i].mu);
        test_rmdir(nodes[i].dir);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(silent_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
