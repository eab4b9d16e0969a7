/* Several cluster nodes on one libuv loop, over real sockets on 127.0.0.1: the cluster port
 * and its hello, the Raft transport over it, bootstrap of a static configuration, proposals
 * forwarded from followers, leader loss, join (spare -> voter) and remove, liveness verdicts
 * and the ring, node-link frames (order, batching, shedding). Every wait is bounded. */
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

static void change_done_cb(void *data, int status)
{
    done_cb(data, status, 0);
}

static size_t live_count(struct cluster *c)
{
    uint64_t ids[MAX_NODES];
    return cluster_live_members(c, ids, MAX_NODES);
}

static size_t want_live;
static bool live_everywhere(void *arg)
{
    (void)arg;
    for (int i = 0; i < MAX_NODES; i++)
        if (nodes[i].open && !nodes[i].removed && live_count(nodes[i].c) != want_live) return false;
    return true;
}

/* ---- tests ---- */

/* Three nodes bootstrap, elect, commit every node up (the ring), forward a follower's
 * proposal; the owner of a topic is the same everywhere. */
static void bootstrap_and_forward(void **state)
{
    (void)state;
    start_cluster(3, "127.0.0.1");
    struct tnode *f = a_follower();
    assert_non_null(f);
    propose_everywhere(f, "from/follower");
    propose_everywhere(agreed_leader(), "from/leader");
    want_live = 3;
    assert_true(run_until(live_everywhere, NULL, 10000));
    char topic[32];
    for (int t = 0; t < 100; t++) {
        snprintf(topic, sizeof topic, "t/%d", t);
        uint64_t o = cluster_owner(nodes[0].c, topic, strlen(topic));
        assert_true(o >= 1 && o <= 3);
        assert_int_equal(cluster_owner(nodes[1].c, topic, strlen(topic)), o);
        assert_int_equal(cluster_owner(nodes[2].c, topic, strlen(topic)), o);
    }
    struct cluster_member m[MAX_NODES];
    struct cluster_status st;
    cluster_members(nodes[0].c, m, MAX_NODES, &st);
    assert_int_equal(st.n_members, 3);
    assert_int_equal(st.node_id, 1);
    assert_true(st.leader_id >= 1 && st.leader_id <= 3);
    assert_true(st.term >= 1);
    assert_true(st.commit_index >= want_index);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(m[i].role, CLUSTER_ROLE_VOTER);
        assert_true(m[i].alive);
    }
    all_stop();
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* The leader goes away: the others elect a new one, commit it down, and proposals from the
 * remaining follower go on. */
static void leader_loss(void **state)
{
    (void)state;
    start_cluster(3, "127.0.0.1");
    want_live = 3;
    assert_true(run_until(live_everywhere, NULL, 10000));
    struct tnode *old = agreed_leader();
    node_stop(old->idx);
    assert_true(run_until(have_leader, NULL, 10000));
    struct tnode *l = agreed_leader();
    assert_true(l != old);
    propose_everywhere(a_follower(), "after/loss");
    want_live = 2;
    assert_true(run_until(live_everywhere, NULL, 10000));
    assert_true(a_follower()->n_down_events >= 1);
    assert_true(a_follower()->n_ring >= 1);
    /* No leader for the last one alone: proposals are refused at once. */
    node_stop(l->idx);
    struct tnode *last = a_follower();
    uv_run(&loop, UV_RUN_NOWAIT);
    struct cluster_cmd cmd = c_retain("alone");
    int rc = 0;
    for (int tries = 0; tries < 200; tries++) {
        struct done d = {0};
        rc = cluster_propose(last->c, &cmd, done_cb, &d);
        if (rc != 0) break;
        assert_true(run_until(fired, &d, 10000));
        assert_true(d.status != 0);
    }
    assert_int_equal(rc, CLUSTER_ENOQUORUM);
    all_stop();
    assert_int_equal(uv_loop_close(&loop), 0);
}

static bool n4_member(void *arg)
{
    (void)arg;
    return cluster_is_member(nodes[3].c);
}

static bool n4_removed(void *arg)
{
    (void)arg;
    return nodes[3].removed;
}

/* A fourth node joins through a follower (redirected to the leader), becomes a voter, gets
 * the state; then it is removed and hears of it. */
static void join_and_remove(void **state)
{
    (void)state;
    snap_threshold = 16; /* the new node gets a snapshot, then entries */
    start_cluster(3, "127.0.0.1");
    char topic[32];
    for (int i = 0; i < 40; i++) {
        snprintf(topic, sizeof topic, "before/%d", i);
        propose_everywhere(agreed_leader(), topic);
    }
    propose_everywhere(agreed_leader(), "before/join");
    node_prepare(3, "127.0.0.1");
    snap_threshold = 0;
    nodes[3].cfg.join = a_follower()->addr;
    nodes[3].cfg.advertise = NULL; /* derived from the bind address */
    node_start(3);
    assert_true(run_until(n4_voter, NULL, 15000));
    want_index = cluster_last_applied(agreed_leader()->c);
    assert_true(run_until(all_applied, NULL, 10000));
    assert_true(has_retained(nodes[3].c, "before/join"));
    assert_true(has_retained(nodes[3].c, "before/0"));
    assert_true(nodes[3].n_restored >= 1); /* caught up from a snapshot */
    assert_true(run_until(n4_member, NULL, 10000));
    propose_everywhere(&nodes[3], "from/joined");
    want_live = 4;
    assert_true(run_until(live_everywhere, NULL, 10000));

    struct done d = {0};
    assert_int_equal(cluster_remove(agreed_leader()->c, 4, change_done_cb, &d), 0);
    assert_true(run_until(n4_removed, NULL, 10000));
    struct cluster_cmd cmd = c_retain("x");
    assert_int_equal(cluster_propose(nodes[3].c, &cmd, NULL, NULL), CLUSTER_ENOTMEMBER);
    assert_false(cluster_is_member(nodes[3].c));
    want_live = 3;
    node_stop(3);
    assert_true(run_until(live_everywhere, NULL, 10000));
    all_stop();
    assert_int_equal(uv_loop_close(&loop), 0);
}

static bool session_state(struct cluster *c, const char *id, bool *connected)
{
    struct store_txn *t;
    struct store_session sess;
    assert_int_equal(store_read_begin(cluster_storage(c), &t), 0);
    int rc = store_session_get(t, id, strlen(id), &sess);
    if (rc == 0 && connected) *connected = sess.connected;
    store_txn_end(t);
    return rc == 0;
}

static struct tnode *survivor;
static bool sessions_ended(void *arg)
{
    (void)arg;
    bool connected = true;
    return !session_state(survivor->c, "clean-3", NULL) &&
           session_state(survivor->c, "kept-3", &connected) && !connected;
}

static void open_session(struct tnode *n, const char *id, uint8_t flags)
{
    struct cluster_cmd cmd = {.type = CLUSTER_CMD_SESSION_OPEN};
    cmd.session_open.client_id = (struct store_str){id, strlen(id)};
    cmd.session_open.node_id = n->id;
    cmd.session_open.protocol_version = 5;
    cmd.session_open.expiry_interval_s = flags & STORE_SESSION_PERSISTENT ? 3600 : 0;
    cmd.session_open.flags = flags;
    struct done d = {0};
    assert_int_equal(cluster_propose(n->c, &cmd, done_cb, &d), 0);
    assert_true(run_until(fired, &d, 10000));
    assert_int_equal(d.status, 0);
}

/* A follower with a clean and a persistent session dies: the leader commits it down, then the
 * end of its clean session (deleted) and of its persistent one's connection (closed). */
static void node_down_ends_its_sessions(void **state)
{
    (void)state;
    start_cluster(3, "127.0.0.1");
    want_live = 3;
    assert_true(run_until(live_everywhere, NULL, 10000));
    struct tnode *f = a_follower();
    open_session(f, "clean-3", STORE_SESSION_CLEAN_START);
    open_session(f, "kept-3", STORE_SESSION_PERSISTENT);
    node_stop(f->idx);
    survivor = a_follower();
    if (!survivor) survivor = agreed_leader();
    assert_non_null(survivor);
    assert_true(run_until(sessions_ended, NULL, 10000));
    want_live = 2;
    assert_true(run_until(live_everywhere, NULL, 10000));
    uint64_t ids[MAX_NODES];
    assert_int_equal(cluster_live_members(survivor->c, ids, MAX_NODES), 2);
    assert_true(ids[0] != f->id && ids[1] != f->id);
    assert_true(cluster_owner(survivor->c, "any/topic", 9) != f->id);
    all_stop();
    assert_int_equal(uv_loop_close(&loop), 0);
}

static unsigned n_sub_done, n_sub_failed;
static void sub_done(void *data, int status, uint64_t index)
{
    (void)data;
    (void)index;
    n_sub_done++;
    if (status != 0) n_sub_failed++;
}

static unsigned want_subs;
static bool subs_done(void *arg)
{
    (void)arg;
    return n_sub_done >= want_subs;
}

/* Committed SUBSCRIBEs per second, proposed on n in bursts of `burst` per loop iteration. */
static double subscribe_rate(struct tnode *n, unsigned total, unsigned burst)
{
    n_sub_done = n_sub_failed = 0;
    uint64_t t0 = uv_hrtime();
    char client[32], filter[48];
    for (unsigned sent = 0; sent < total;) {
        for (unsigned i = 0; i < burst && sent < total; i++, sent++) {
            snprintf(client, sizeof client, "c%u", sent % 1000);
            snprintf(filter, sizeof filter, "sensors/%u/+/temp", sent);
            struct cluster_cmd cmd = {.type = CLUSTER_CMD_SUBSCRIBE};
            cmd.subscribe.client_id = (struct store_str){client, strlen(client)};
            cmd.subscribe.filter = (struct store_str){filter, strlen(filter)};
            cmd.subscribe.options = 1;
            assert_int_equal(cluster_propose(n->c, &cmd, sub_done, NULL), 0);
        }
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    want_subs = total;
    assert_true(run_until(subs_done, NULL, 60000));
    assert_int_equal(n_sub_failed, 0);
    return total / ((double)(uv_hrtime() - t0) / 1e9);
}

/* Not a pass/fail figure: prints the rate of committed SUBSCRIBEs on three nodes sharing
 * one loop (one CPU for all three), proposed on the leader and on a follower. */
static void throughput(void **state)
{
    (void)state;
    start_cluster(3, "127.0.0.1");
    double leader = subscribe_rate(agreed_leader(), 20000, 500);
    double follower = subscribe_rate(a_follower(), 20000, 500);
    struct cluster_stats cs;
    cluster_get_stats(a_follower()->c, &cs);
    assert_true(cs.forwarded > 0);
    assert_true(cs.forwarded < 20000 / 10); /* batched */
    /* Link frames of 100 bytes, leader to a follower, as fast as the queue takes them. */
    struct tnode *from = agreed_leader(), *to = a_follower();
    const unsigned frames = 200000;
    static uint8_t frame[100];
    uint64_t t0 = uv_hrtime();
    for (unsigned sent = 0; sent < frames || to->n_bulk < frames;) {
        while (sent < frames && cluster_link_send(from->c, to->id, 8, frame, sizeof frame, 0) == 0)
            sent++;
        uv_run(&loop, UV_RUN_ONCE);
        assert_true(uv_hrtime() - t0 < 60 * (uint64_t)1000000000);
    }
    double link_rate = frames / ((double)(uv_hrtime() - t0) / 1e9);
    printf("link frames of 100 bytes, one way, both ends on one loop: %.0f/s\n", link_rate);
    printf("committed SUBSCRIBEs/s, 3 nodes on one loop: %.0f proposed on the leader, %.0f on a "
           "follower\n",
           leader, follower);
    all_stop();
    assert_int_equal(uv_loop_close(&loop), 0);
}

static bool leader_is_not(void *arg)
{
    struct tnode *l = agreed_leader();
    return l && l != arg;
}

/* Leadership transfer hands over to another voter. */
static void transfer(void **state)
{
    (void)state;
    start_cluster(3, "localhost"); /* names resolve */
    struct tnode *l = agreed_leader();
    struct done d = {0};
    assert_int_equal(cluster_transfer(l->c, 0, change_done_cb, &d), 0);
    assert_true(run_until(leader_is_not, l, 10000));
    propose_everywhere(a_follower(), "after/transfer");
    all_stop();
    assert_int_equal(uv_loop_close(&loop), 0);
}

static unsigned want_frames;
static bool frames_in(void *arg)
{
    return ((struct tnode *)arg)->n_frames >= want_frames;
}

static bool link_down(void *arg)
{
    struct cluster_link_stats st[MAX_NODES];
    size_t n = cluster_link_stats(nodes[0].c, st, MAX_NODES);
    for (size_t i = 0; i < n; i++)
        if (st[i].node_id == (uint64_t)(uintptr_t)arg) return !st[i].up;
    return false;
}

static bool link_up(void *arg)
{
    return !link_down(arg);
}

/* Frames from node 1 to node 2 arrive in order, several per write; with node 2 gone, QoS 0
 * frames are shed and counted, others held until the queue is full. */
static void link_frames(void **state)
{
    (void)state;
    start_cluster(3, "127.0.0.1");
    assert_true(run_until(link_up, (void *)(uintptr_t)2, 10000));
    const unsigned n = 2000;
    for (unsigned i = 0; i < n; i++) {
        uint8_t b[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        assert_int_equal(cluster_link_send(nodes[0].c, 2, 7, b, 4, i % 2 ? CLUSTER_LINK_QOS0 : 0),
                         0);
    }
    want_frames = n;
    assert_true(run_until(frames_in, &nodes[1], 10000));
    assert_int_equal(nodes[1].frame_from, 1);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(nodes[1].frames[i], i);
    struct cluster_link_stats st[MAX_NODES];
    size_t k = cluster_link_stats(nodes[0].c, st, MAX_NODES);
    assert_int_equal(k, 2);
    for (size_t i = 0; i < k; i++) {
        if (st[i].node_id != 2) continue;
        assert_true(st[i].up);
        assert_true(st[i].writes < n / 10); /* batched */
        assert_int_equal(st[i].shed, 0);
    }
    assert_int_equal(cluster_link_send(nodes[0].c, 1, 7, "abcd", 4, 0), -ENOENT);
    assert_int_equal(cluster_link_send(nodes[0].c, 9, 7, "abcd", 4, 0), -ENOENT);
    assert_int_equal(cluster_link_send(nodes[0].c, 2, 0xF1, "abcd", 4, 0), -EINVAL);

    node_stop(1);
    assert_true(run_until(link_down, (void *)(uintptr_t)2, 10000));
    /* The node's own traffic to node 2 (liveness, routing) may have been shed or refused
     * while the loop ran: count from here. */
    uint64_t shed0 = 0, refused0 = 0;
    k = cluster_link_stats(nodes[0].c, st, MAX_NODES);
    for (size_t i = 0; i < k; i++) {
        if (st[i].node_id != 2) continue;
        shed0 = st[i].shed;
        refused0 = st[i].refused;
    }
    assert_int_equal(cluster_link_send(nodes[0].c, 2, 7, "abcd", 4, CLUSTER_LINK_QOS0), -ENOBUFS);
    assert_int_equal(cluster_link_send(nodes[0].c, 2, 7, "abcd", 4, 0), 0); /* held */
    static uint8_t big[256 << 10];
    int rc = 0;
    for (int i = 0; i < 10 && rc == 0; i++)
        rc = cluster_link_send(nodes[0].c, 2, 7, big, sizeof big, 0);
    assert_int_equal(rc, -ENOBUFS); /* the 1 MiB queue is full */
    k = cluster_link_stats(nodes[0].c, st, MAX_NODES);
    for (size_t i = 0; i < k; i++) {
        if (st[i].node_id != 2) continue;
        assert_false(st[i].up);
        assert_int_equal(st[i].shed, shed0 + 1);
        assert_int_equal(st[i].refused, refused0 + 1);
        assert_true(st[i].queued_bytes > 0);
    }
    all_stop();
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A node with another secret never gets in: no leader for it, the others carry on. */
static void wrong_secret(void **state)
{
    (void)state;
    start_cluster(3, "127.0.0.1");
    node_prepare(3, "127.0.0.1");
    nodes[3].cfg.secret = (const uint8_t *)"wrong";
    nodes[3].cfg.secret_len = 5;
    nodes[3].cfg.join = nodes[0].addr;
    node_start(3);
    bool never = false;
    run_until(n4_voter, &never, 2000);
    assert_false(n4_voter(NULL));
    assert_int_equal(cluster_leader_id(nodes[3].c), 0);
    struct cluster_stats cs;
    uint64_t refused = 0;
    for (int i = 0; i < 3; i++) {
        cluster_get_stats(nodes[i].c, &cs);
        refused += cs.hello_refused;
    }
    assert_true(refused >= 1);
    cluster_get_stats(nodes[3].c, &cs);
    assert_true(cs.hello_refused >= 1);
    assert_int_equal(cs.hello_accepted, 0);
    struct cluster_cmd cmd = c_retain("x");
    assert_int_equal(cluster_propose(nodes[3].c, &cmd, NULL, NULL), CLUSTER_ENOQUORUM);
    node_stop(3);
    propose_everywhere(agreed_leader(), "still/works");
    all_stop();
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Configuration errors are refused; a cluster closed before or after a failed start frees
 * everything (the loop closes). */
static void config_errors_and_early_close(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    memset(nodes, 0, sizeof nodes);
    node_prepare(0, "127.0.0.1");
    node_prepare(1, "127.0.0.1");
    struct cluster_peer bad[] = {{1, nodes[0].addr}, {2, "no-port"}};
    nodes[0].cfg.peers = bad;
    nodes[0].cfg.n_peers = 2;
    struct cluster *c;
    assert_int_equal(cluster_new(&loop, &nodes[0].cfg, &events, &nodes[0], &c), -EINVAL);
    struct cluster_peer good[] = {{1, nodes[0].addr}, {2, nodes[1].addr}};
    nodes[0].cfg.peers = good;
    node_start(0);
    /* Its port is taken: the second node cannot start, and closes cleanly. */
    nodes[1].cfg.peers = good;
    nodes[1].cfg.n_peers = 2;
    nodes[1].cfg.listen_port = nodes[0].cfg.listen_port;
    assert_int_equal(cluster_new(&loop, &nodes[1].cfg, &events, &nodes[1], &nodes[1].c), 0);
    assert_int_equal(cluster_start(nodes[1].c), UV_EADDRINUSE);
    nodes[1].open = true;
    node_stop(1);
    /* Never started. */
    node_prepare(2, "127.0.0.1");
    nodes[2].cfg.peers = good;
    nodes[2].cfg.n_peers = 2;
    assert_int_equal(cluster_new(&loop, &nodes[2].cfg, &events, &nodes[2], &nodes[2].c), 0);
    assert_int_equal(cluster_owner(nodes[2].c, "t", 1), 0); /* no verdict yet */
    nodes[2].open = true;
    node_stop(2);
    /* One node alone of two: no leader, proposals refused. */
    struct cluster_cmd cmd = c_retain("x");
    assert_int_equal(cluster_propose(nodes[0].c, &cmd, NULL, NULL), CLUSTER_ENOQUORUM);
    all_stop();
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(int argc, char **argv)
{
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    signal(SIGPIPE,
           SIG_IGN); /* as the broker: a peer closing mid-write is an error, not a signal */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bootstrap_and_forward),
        cmocka_unit_test(leader_loss),
        cmocka_unit_test(join_and_remove),
        cmocka_unit_test(transfer),
        cmocka_unit_test(link_frames),
        cmocka_unit_test(wrong_secret),
        cmocka_unit_test(node_down_ends_its_sessions),
        cmocka_unit_test(throughput),
        cmocka_unit_test(config_errors_and_early_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
