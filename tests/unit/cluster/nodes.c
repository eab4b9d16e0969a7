/* The multi-node fixture (nodes.h). */
#include "nodes.h"

#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "testlib.h"

uv_loop_t loop;

struct tnode nodes[MAX_NODES];
struct cluster_peer peers[MAX_NODES];
size_t n_peers;
const char *secret = "s3cret";
unsigned snap_threshold; /* 0 = the default */

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

const struct cluster_events events = {
    .applied = ev_applied,
    .ring_changed = ev_ring,
    .restored = ev_restored,
    .node_changed = ev_node,
    .removed = ev_removed,
    .link_frame = ev_frame,
};

unsigned free_port(void)
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
void node_prepare(int i, const char *host)
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

void node_start(int i)
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

bool run_until(bool (*cond)(void *arg), void *arg, unsigned ms)
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

void node_stop(int i)
{
    struct tnode *n = &nodes[i];
    if (!n->open) return;
    cluster_close(n->c, closed_cb, n);
    assert_true(run_until(node_closed, n, 5000));
    n->open = false;
}

void all_stop(void)
{
    for (int i = 0; i < MAX_NODES; i++)
        node_stop(i);
    uv_run(&loop, UV_RUN_NOWAIT);
    for (int i = 0; i < MAX_NODES; i++)
        if (nodes[i].dir[0]) test_rmdir(nodes[i].dir);
}

struct tnode *agreed_leader(void)
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

bool have_leader(void *arg)
{
    (void)arg;
    return agreed_leader() != NULL;
}

struct tnode *a_follower(void)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (nodes[i].open && !nodes[i].removed && !cluster_is_leader(nodes[i].c)) return &nodes[i];
    return NULL;
}

void done_cb(void *data, int status, uint64_t index)
{
    struct done *d = data;
    d->fired = true;
    d->status = status;
    d->index = index;
}

bool fired(void *arg)
{
    return ((struct done *)arg)->fired;
}

const char *payload = "v";

struct cluster_cmd c_retain(const char *topic)
{
    return (struct cluster_cmd){
        .type = CLUSTER_CMD_RETAIN_SET,
        .retain_set = {.msg = {.topic = {topic, strlen(topic)},
                               .payload = {(const uint8_t *)payload, strlen(payload)},
                               .qos = 1}}};
}

bool has_retained(struct cluster *c, const char *topic)
{
    struct store_txn *t;
    struct store_retained r;
    assert_int_equal(store_read_begin(cluster_storage(c), &t), 0);
    int rc = store_retain_get(t, topic, strlen(topic), &r);
    store_txn_end(t);
    return rc == 0;
}

uint64_t want_index;
bool all_applied(void *arg)
{
    (void)arg;
    for (int i = 0; i < MAX_NODES; i++)
        if (nodes[i].open && !nodes[i].removed && cluster_last_applied(nodes[i].c) < want_index)
            return false;
    return true;
}

void propose_everywhere(struct tnode *n, const char *topic)
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

void start_cluster(int n, const char *host)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    memset(nodes, 0, sizeof nodes);
    for (int i = 0; i < n; i++)
        node_prepare(i, host);
    n_peers = (size_t)n;
    for (int i = 0; i < n; i++)
        peers[i] = (struct cluster_peer){nodes[i].id, nodes[i].addr};
    for (int i = 0; i < n; i++) {
        nodes[i].cfg.peers = peers;
        nodes[i].cfg.n_peers = n_peers;
        node_start(i);
    }
    assert_true(run_until(have_leader, NULL, 10000));
}

bool n4_voter(void *arg)
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
