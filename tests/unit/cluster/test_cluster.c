/* cluster/cluster.c with the real raft_uv on a libuv loop and a temp data dir: start (a
 * single voter elects itself), batched proposals applied into LMDB before their callbacks,
 * events, clean close (uv_loop_close() == 0), restart with the state present and nothing
 * re-applied, replay of a log tail LMDB lost, snapshots on disk, and the TCP transport. */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
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

#define S(lit)     ((struct store_str){lit, sizeof lit - 1})
#define MAX_EVENTS 1024

struct node {
    uv_loop_t loop;
    struct cluster *c;
    struct cluster_config cfg;
    char dir[512];
    /* events */
    uint64_t applied[MAX_EVENTS];
    unsigned n_applied;
    unsigned n_leader;
    unsigned n_restored;
    bool is_leader;
    /* proposals */
    int status[MAX_EVENTS];
    uint64_t index[MAX_EVENTS];
    unsigned n_done;
    bool closed;
};

static void ev_applied(void *ctx, const struct cluster_cmd *cmd, uint64_t index)
{
    struct node *n = ctx;
    (void)cmd;
    assert_true(n->n_applied < MAX_EVENTS);
    n->applied[n->n_applied++] = index;
}

static void ev_leader(void *ctx, uint64_t id, bool self)
{
    struct node *n = ctx;
    n->n_leader++;
    n->is_leader = self && id == 1;
}

static void ev_restored(void *ctx, uint64_t index)
{
    struct node *n = ctx;
    (void)index;
    assert_int_equal(n->n_applied, 0); /* before the entries applied after it */
    n->n_restored++;
}

static void log_line(void *ctx, enum cluster_log_level level, const char *line)
{
    (void)ctx;
    if (level >= CLUSTER_LOG_WARNING || getenv("TEST_VERBOSE"))
        fprintf(stderr, "cluster[%d]: %s\n", level, line);
}

static const struct cluster_events events = {
    .applied = ev_applied, .leader_changed = ev_leader, .restored = ev_restored};

static void node_open(struct node *n, const char *dir, const char *address)
{
    memset(n, 0, sizeof *n);
    snprintf(n->dir, sizeof n->dir, "%s", dir);
    assert_int_equal(uv_loop_init(&n->loop), 0);
    n->cfg = (struct cluster_config){.data_dir = n->dir,
                                     .raft_address = address,
                                     .log = log_line,
                                     .snapshot_threshold = 64,
                                     .snapshot_trailing = 8};
    assert_int_equal(cluster_new(&n->loop, &n->cfg, &events, n, &n->c), 0);
}

static void timeout_cb(uv_timer_t *t)
{
    bool *expired = t->data;
    *expired = true;
}

/* Runs the loop until cond(n) or 10 s. */
static void run_until(struct node *n, bool (*cond)(struct node *n))
{
    uv_timer_t timer;
    bool expired = false;
    uv_timer_init(&n->loop, &timer);
    timer.data = &expired;
    uv_timer_start(&timer, timeout_cb, 10000, 0);
    while (!cond(n) && !expired)
        uv_run(&n->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&n->loop, UV_RUN_NOWAIT);
    assert_false(expired);
}

static bool is_leader(struct node *n)
{
    return cluster_is_leader(n->c);
}

static void closed_cb(void *data)
{
    struct node *n = data;
    n->closed = true;
}

static void node_close(struct node *n)
{
    cluster_close(n->c, closed_cb, n);
    assert_false(n->closed); /* never from inside cluster_close */
    uv_run(&n->loop, UV_RUN_DEFAULT);
    assert_true(n->closed);
    assert_int_equal(uv_loop_close(&n->loop), 0);
}

static void done_cb(void *data, int status, uint64_t index)
{
    struct node *n = *(struct node **)data;
    n->status[n->n_done] = status;
    n->index[n->n_done] = index;
    n->n_done++;
}

static struct node *self_refs[MAX_EVENTS];

static struct cluster_cmd c_retain(const char *topic)
{
    return (struct cluster_cmd){.type = CLUSTER_CMD_RETAIN_SET,
                                .retain_set = {.msg = {.topic = {topic, strlen(topic)},
                                                       .payload = {(const uint8_t *)"v", 1},
                                                       .qos = 1}}};
}

static unsigned want_done;
static bool all_done(struct node *n)
{
    return n->n_done >= want_done;
}

/* Proposes count retained topics "<prefix>/<i>" in one loop iteration and waits. */
static void propose_batch(struct node *n, const char *prefix, unsigned count)
{
    unsigned before = n->n_done;
    char topic[64];
    for (unsigned i = 0; i < count; i++) {
        snprintf(topic, sizeof topic, "%s/%u", prefix, i);
        struct cluster_cmd c = c_retain(topic);
        self_refs[i] = n;
        assert_int_equal(cluster_propose(n->c, &c, done_cb, &self_refs[i]), 0);
    }
    assert_int_equal(n->n_done, before); /* callbacks only later */
    want_done = before + count;
    run_until(n, all_done);
    for (unsigned i = before; i < n->n_done; i++) {
        assert_int_equal(n->status[i], 0);
        if (i > before) assert_int_equal(n->index[i], n->index[i - 1] + 1);
    }
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

/* Start, a batch of proposals applied (and readable) before their callbacks, events for each,
 * close; reopen: the state is there before start, and nothing is applied again. */
static void start_propose_close_reopen(void **state)
{
    (void)state;
    const char *dir = test_mkdtemp();
    struct node n;
    node_open(&n, dir, NULL);
    struct cluster_cmd c = c_retain("x");
    assert_int_equal(cluster_propose(n.c, &c, done_cb, NULL), CLUSTER_ENOTLEADER);
    assert_int_equal(cluster_start(n.c), 0);
    run_until(&n, is_leader);
    assert_true(n.is_leader);
    assert_int_equal(cluster_leader_id(n.c), 1);

    struct cluster_cmd bad = c_retain("a/+");
    assert_int_equal(cluster_propose(n.c, &bad, done_cb, NULL), -EINVAL);
    propose_batch(&n, "t", 5);
    assert_int_equal(n.n_applied, 5);
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(n.applied[i], n.index[i]);
    assert_true(has_retained(n.c, "t/4"));
    assert_int_equal(cluster_last_applied(n.c), n.index[4]);
    uint64_t last = n.index[4];
    node_close(&n);

    node_open(&n, dir, NULL);
    assert_true(has_retained(n.c, "t/0")); /* loaded before raft starts */
    assert_int_equal(cluster_last_applied(n.c), last);
    assert_int_equal(cluster_start(n.c), 0);
    run_until(&n, is_leader);
    propose_batch(&n, "u", 1);
    assert_int_equal(n.n_applied, 1); /* only the new one */
    assert_true(n.index[0] > last);
    node_close(&n);
    test_rmdir(dir);
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out) return -1;
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, k, out);
    fclose(in);
    fclose(out);
    return 0;
}

/* LMDB behind the Raft log (as after a crash that lost the last LMDB commits): the restart
 * replays exactly the missing tail, in order, and reports it through events. */
static void restart_replays_lost_tail(void **state)
{
    (void)state;
    const char *dir = test_mkdtemp();
    char state_file[600], saved[600];
    snprintf(state_file, sizeof state_file, "%s/state/data.mdb", dir);
    snprintf(saved, sizeof saved, "%s/saved.mdb", dir);
    struct node n;
    node_open(&n, dir, NULL);
    assert_int_equal(cluster_start(n.c), 0);
    run_until(&n, is_leader);
    propose_batch(&n, "a", 3);
    uint64_t after_a = n.index[2];
    node_close(&n);
    assert_int_equal(copy_file(state_file, saved), 0);

    node_open(&n, dir, NULL);
    assert_int_equal(cluster_start(n.c), 0);
    run_until(&n, is_leader);
    propose_batch(&n, "b", 4);
    uint64_t first_b = n.index[0], last_b = n.index[3];
    node_close(&n);

    assert_int_equal(copy_file(saved, state_file), 0); /* LMDB back at after_a */
    node_open(&n, dir, NULL);
    assert_int_equal(cluster_last_applied(n.c), after_a);
    assert_false(has_retained(n.c, "b/0"));
    assert_int_equal(cluster_start(n.c), 0);
    run_until(&n, is_leader);
    propose_batch(&n, "c", 1); /* by its completion, the tail before it is applied too */
    assert_true(has_retained(n.c, "b/3"));
    assert_true(has_retained(n.c, "a/0"));
    assert_int_equal(n.n_applied, 5);
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(n.applied[i], first_b + i);
    assert_int_equal(n.applied[3], last_b);
    node_close(&n);
    test_rmdir(dir);
}

static unsigned count_snapshots(const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/raft", dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "snapshot-", 9) == 0 && !strstr(e->d_name, ".meta")) n++;
    closedir(d);
    return n;
}

/* Past the snapshot threshold raft_uv stores snapshots (compacted LMDB copies); a restart
 * restores the last one (skipped: LMDB is already there) and the state is complete. */
static void snapshots_and_restart(void **state)
{
    (void)state;
    const char *dir = test_mkdtemp();
    struct node n;
    node_open(&n, dir, NULL);
    assert_int_equal(cluster_start(n.c), 0);
    run_until(&n, is_leader);
    char prefix[16];
    for (unsigned round = 0; round < 10; round++) {
        snprintf(prefix, sizeof prefix, "r%u", round);
        propose_batch(&n, prefix, 20);
    }
    node_close(&n);
    assert_true(count_snapshots(dir) >= 1);

    node_open(&n, dir, NULL);
    assert_int_equal(cluster_start(n.c), 0);
    run_until(&n, is_leader);
    propose_batch(&n, "z", 1);
    assert_int_equal(n.n_applied, 1);
    assert_true(has_retained(n.c, "r0/0"));
    assert_true(has_retained(n.c, "r9/19"));
    node_close(&n);

    /* Without LMDB at all, the snapshot is installed and the tail replayed. */
    char path[600];
    snprintf(path, sizeof path, "%s/state/data.mdb", dir);
    assert_int_equal(unlink(path), 0);
    node_open(&n, dir, NULL);
    assert_false(has_retained(n.c, "r0/0"));
    assert_int_equal(cluster_start(n.c), 0);
    assert_int_equal(n.n_restored, 0); /* reported from the loop, not inside start */
    assert_int_equal(n.n_leader, 0);
    run_until(&n, is_leader);
    propose_batch(&n, "y", 1);
    assert_int_equal(n.n_restored, 1);
    assert_int_equal(n.n_leader, 1);
    assert_true(has_retained(n.c, "r0/0"));
    assert_true(has_retained(n.c, "r9/19"));
    assert_true(has_retained(n.c, "z/0"));
    node_close(&n);
    test_rmdir(dir);
}

/* The TCP transport on a loopback address works for a single voter as well. */
static void tcp_transport(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%u", ntohs(a.sin_port));
    const char *dir = test_mkdtemp();
    struct node n;
    node_open(&n, dir, address);
    assert_int_equal(cluster_start(n.c), 0);
    run_until(&n, is_leader);
    propose_batch(&n, "tcp", 3);
    node_close(&n);
    test_rmdir(dir);
}

static void count_active_idle(uv_handle_t *h, void *arg)
{
    if (h->type == UV_IDLE && uv_is_active(h)) (*(int *)arg)++;
}

static int last_failed = 1;
static void ev_failed(void *ctx, int rc)
{
    (void)ctx;
    last_failed = rc;
}

/* A map that cannot grow: the proposals whose entries cannot be written fail with
 * CLUSTER_EFAILED, the failed event reports -ENOSPC, new proposals are refused, LMDB keeps its
 * last consistent state; a restart with room applies the committed entries from the log. */
static void map_full_refuses_then_recovers_on_restart(void **state)
{
    (void)state;
    const char *dir = test_mkdtemp();
    struct node n;
    memset(&n, 0, sizeof n);
    snprintf(n.dir, sizeof n.dir, "%s", dir);
    assert_int_equal(uv_loop_init(&n.loop), 0);
    n.cfg = (struct cluster_config){
        .data_dir = n.dir, .log = log_line, .map_size = 64u << 10, .map_size_max = 64u << 10};
    struct cluster_events ev = events;
    ev.failed = ev_failed;
    last_failed = 1;
    assert_int_equal(cluster_new(&n.loop, &n.cfg, &ev, &n, &n.c), 0);
    assert_int_equal(cluster_start(n.c), 0);
    run_until(&n, is_leader);
    propose_batch(&n, "small", 1);
    static char payload[3000];
    memset(payload, 'p', sizeof payload);
    char topics[60][16];
    for (unsigned i = 0; i < 60; i++) {
        snprintf(topics[i], sizeof topics[i], "big/%u", i);
        struct cluster_cmd c = {
            .type = CLUSTER_CMD_RETAIN_SET,
            .retain_set = {.msg = {.topic = {topics[i], strlen(topics[i])},
                                   .payload = {(const uint8_t *)payload, sizeof payload}}}};
        self_refs[i] = &n;
        assert_int_equal(cluster_propose(n.c, &c, done_cb, &self_refs[i]), 0);
    }
    want_done = 61;
    run_until(&n, all_done);
    for (unsigned i = 1; i < 61; i++)
        assert_int_equal(n.status[i], CLUSTER_EFAILED);
    assert_int_equal(last_failed, -ENOSPC);
    struct cluster_cmd c = c_retain("refused");
    assert_int_equal(cluster_propose(n.c, &c, done_cb, NULL), CLUSTER_EFAILED);
    uv_run(&n.loop, UV_RUN_NOWAIT);
    int idle = 0; /* waiting in the failed state does not spin the loop */
    uv_walk(&n.loop, count_active_idle, &idle);
    assert_int_equal(idle, 0);
    assert_true(has_retained(n.c, "small/0"));
    assert_false(has_retained(n.c, "big/0"));
    node_close(&n);

    node_open(&n, dir, NULL); /* default map size: room enough */
    assert_false(has_retained(n.c, "big/0"));
    assert_int_equal(cluster_start(n.c), 0);
    run_until(&n, is_leader);
    propose_batch(&n, "after", 1);
    assert_true(has_retained(n.c, "big/0"));
    assert_true(has_retained(n.c, "big/59"));
    assert_int_equal(n.n_applied, 61);
    node_close(&n);
    test_rmdir(dir);
}

/* The raft directory removed but the state kept: the state survives and new commands apply
 * (not mistaken for entries already applied). */
static void lost_raft_log_keeps_state(void **state)
{
    (void)state;
    const char *dir = test_mkdtemp();
    struct node n;
    node_open(&n, dir, NULL);
    assert_int_equal(cluster_start(n.c), 0);
    run_until(&n, is_leader);
    propose_batch(&n, "old", 5);
    node_close(&n);
    char path[600];
    snprintf(path, sizeof path, "%s/raft", dir);
    test_rmdir(path);

    node_open(&n, dir, NULL);
    assert_int_equal(cluster_start(n.c), 0);
    run_until(&n, is_leader);
    propose_batch(&n, "new", 2);
    assert_int_equal(n.n_applied, 2);
    assert_true(has_retained(n.c, "old/4"));
    assert_true(has_retained(n.c, "new/1"));
    node_close(&n);
    test_rmdir(dir);
}

/* Closing without ever starting releases everything too. */
static bool status_caught_up(struct node *n)
{
    struct cluster_member m[4];
    struct cluster_status st;
    cluster_members(n->c, m, 4, &st);
    return st.commit_index > 0 && st.applied_index == st.commit_index;
}

/* cluster_status.applied_index follows Raft's applied index: a fresh node, whose log holds
 * only the bootstrap configuration (and whatever a new leader appends), is caught up without
 * any command; cluster_last_applied() still counts commands only (LMDB's last_applied). */
static void status_applied_index_counts_every_entry(void **state)
{
    (void)state;
    const char *dir = test_mkdtemp();
    struct node n;
    node_open(&n, dir, NULL);
    struct cluster_member m[4];
    struct cluster_status st;
    cluster_members(n.c, m, 4, &st);
    assert_int_equal(st.applied_index, 0);
    assert_int_equal(cluster_start(n.c), 0);
    run_until(&n, is_leader);
    run_until(&n, status_caught_up);
    assert_int_equal(cluster_last_applied(n.c), 0);

    propose_batch(&n, "t", 3);
    run_until(&n, status_caught_up);
    cluster_members(n.c, m, 4, &st);
    assert_true(st.applied_index >= n.index[2]);
    assert_int_equal(cluster_last_applied(n.c), n.index[2]);
    uint64_t last = n.index[2];
    node_close(&n);

    node_open(&n, dir, NULL);
    cluster_members(n.c, m, 4, &st);
    assert_int_equal(st.applied_index, last); /* what LMDB holds, before raft starts */
    assert_int_equal(cluster_start(n.c), 0);
    run_until(&n, is_leader);
    run_until(&n, status_caught_up);
    assert_int_equal(cluster_last_applied(n.c), last);
    node_close(&n);
    test_rmdir(dir);
}

static void close_without_start(void **state)
{
    (void)state;
    const char *dir = test_mkdtemp();
    struct node n;
    node_open(&n, dir, NULL);
    node_close(&n);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(start_propose_close_reopen),
        cmocka_unit_test(restart_replays_lost_tail),
        cmocka_unit_test(snapshots_and_restart),
        cmocka_unit_test(tcp_transport),
        cmocka_unit_test(map_full_refuses_then_recovers_on_restart),
        cmocka_unit_test(lost_raft_log_keeps_state),
        cmocka_unit_test(status_applied_index_counts_every_entry),
        cmocka_unit_test(close_without_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
