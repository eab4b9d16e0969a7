/* cluster/forward.c: the follower's side of proposal forwarding without sockets: batching
 * into one frame, completion only once the local FSM applied the answered indices, retries on
 * "not leader", failures on leader change, timeouts and missing leaders, and the frames. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "forward.h"
#include "link.h"

#define NREQ 64

static int status[NREQ];
static uint64_t idx[NREQ];
static int n_done;

static void done_cb(void *data, int st, uint64_t index)
{
    int i = (int)(intptr_t)data;
    assert_true(i < NREQ);
    status[i] = st;
    idx[i] = index;
    n_done++;
}

struct sent {
    int n;
    uint64_t to;
    uint8_t type;
    uint8_t frame[4096];
    size_t len;
    int rc; /* what send returns */
};

static int send_fn(void *ctx, uint64_t leader, uint8_t type, const uint8_t *buf, size_t len)
{
    struct sent *s = ctx;
    if (s->rc) return s->rc;
    s->n++;
    s->to = leader;
    s->type = type;
    assert_true(len <= sizeof s->frame);
    memcpy(s->frame, buf, len);
    s->len = len;
    return 0;
}

static int n_cmds;
static char cmds[8][16];
static int each(void *ctx, const uint8_t *cmd, size_t len)
{
    (void)ctx;
    memcpy(cmds[n_cmds], cmd, len);
    cmds[n_cmds][len] = 0;
    n_cmds++;
    return 0;
}

static void reset(void)
{
    memset(status, 0x55, sizeof status);
    memset(idx, 0, sizeof idx);
    n_done = 0;
    n_cmds = 0;
}

static uint64_t sent_req_id(const struct sent *s)
{
    uint64_t id;
    n_cmds = 0;
    assert_true(fwd_decode_propose(s->frame, s->len, &id, each, NULL) > 0);
    return id;
}

static void answer(struct fwd *f, const struct sent *s, int st, uint64_t first, uint32_t n,
                   uint64_t applied)
{
    uint8_t r[FWD_RESULT_SIZE];
    fwd_encode_result(r, sent_req_id(s), st, first, n);
    assert_int_equal(fwd_on_result(f, r, sizeof r, applied), 0);
}

static void batch_completes_after_local_apply(void **state)
{
    (void)state;
    reset();
    struct fwd f;
    fwd_init(&f, 1000);
    struct sent s = {0};
    assert_int_equal(fwd_add(&f, (const uint8_t *)"one", 3, done_cb, (void *)0, 0), 0);
    assert_int_equal(fwd_add(&f, (const uint8_t *)"two", 3, done_cb, (void *)1, 0), 0);
    assert_int_equal(fwd_add(&f, (const uint8_t *)"three", 5, done_cb, (void *)2, 0), 0);
    assert_true(fwd_busy(&f));
    fwd_flush(&f, 2, 1, send_fn, &s);
    assert_int_equal(s.n, 1); /* one frame for the iteration */
    assert_int_equal(s.to, 2);
    assert_int_equal(s.type, LINK_TYPE_FWD_PROPOSE);
    sent_req_id(&s);
    assert_int_equal(n_cmds, 3);
    assert_string_equal(cmds[0], "one");
    assert_string_equal(cmds[2], "three");
    answer(&f, &s, 0, 10, 3, 9);
    assert_int_equal(n_done, 0);
    fwd_on_applied(&f, 11);
    assert_int_equal(n_done, 0); /* 12 not applied yet */
    fwd_on_leader_change(&f, 0); /* committed: leadership no longer matters */
    fwd_on_applied(&f, 12);
    assert_int_equal(n_done, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(status[i], 0);
        assert_int_equal(idx[i], 10 + (uint64_t)i);
    }
    assert_false(fwd_busy(&f));
    /* Already applied when the answer arrives: completes at once. */
    reset();
    fwd_add(&f, (const uint8_t *)"x", 1, done_cb, (void *)0, 5);
    fwd_flush(&f, 2, 5, send_fn, &s);
    answer(&f, &s, 0, 20, 1, 25);
    assert_int_equal(n_done, 1);
    assert_int_equal(idx[0], 20);
    fwd_close(&f, CLUSTER_ESHUTDOWN);
}

static void not_leader_retries_then_fails(void **state)
{
    (void)state;
    reset();
    struct fwd f;
    fwd_init(&f, 1000);
    struct sent s = {0};
    fwd_add(&f, (const uint8_t *)"c", 1, done_cb, (void *)0, 0);
    fwd_flush(&f, 2, 0, send_fn, &s);
    answer(&f, &s, CLUSTER_ENOTLEADER, 0, 1, 0);
    assert_int_equal(n_done, 0);
    fwd_flush(&f, 3, 1, send_fn, &s); /* the next leader */
    assert_int_equal(s.n, 2);
    assert_int_equal(s.to, 3);
    answer(&f, &s, CLUSTER_ENOTLEADER, 0, 1, 0);
    fwd_flush(&f, 1, 2, send_fn, &s);
    answer(&f, &s, CLUSTER_ENOTLEADER, 0, 1, 0);
    assert_int_equal(n_done, 1);
    assert_int_equal(status[0], CLUSTER_ENOTLEADER);
    assert_int_equal(f.n_retried, 2);
    fwd_close(&f, CLUSTER_ESHUTDOWN);
}

static void leader_change_timeout_and_no_leader(void **state)
{
    (void)state;
    reset();
    struct fwd f;
    fwd_init(&f, 1000);
    struct sent s = {0};
    /* sent, unanswered, leader changes */
    fwd_add(&f, (const uint8_t *)"a", 1, done_cb, (void *)0, 0);
    fwd_flush(&f, 2, 0, send_fn, &s);
    fwd_on_leader_change(&f, 3);
    assert_int_equal(status[0], CLUSTER_ELEADERSHIPLOST);
    /* a late answer for it is ignored */
    answer(&f, &s, 0, 5, 1, 0);
    assert_int_equal(n_done, 1);
    /* sent, no answer in time */
    fwd_add(&f, (const uint8_t *)"b", 1, done_cb, (void *)1, 100);
    fwd_flush(&f, 3, 100, send_fn, &s);
    fwd_expire(&f, 1099);
    assert_int_equal(n_done, 1);
    fwd_expire(&f, 1100);
    assert_int_equal(status[1], CLUSTER_ELEADERSHIPLOST);
    /* no leader: waits, then ENOQUORUM; no link yet (-EAGAIN): waits too */
    fwd_add(&f, (const uint8_t *)"c", 1, done_cb, (void *)2, 2000);
    fwd_flush(&f, 0, 2500, send_fn, &s);
    s.rc = -EAGAIN;
    fwd_flush(&f, 4, 2600, send_fn, &s);
    assert_int_equal(n_done, 2);
    s.rc = 0;
    fwd_flush(&f, 0, 3000, send_fn, &s);
    assert_int_equal(status[2], CLUSTER_ENOQUORUM);
    /* a full queue toward the leader */
    fwd_add(&f, (const uint8_t *)"d", 1, done_cb, (void *)3, 3000);
    s.rc = -ENOBUFS;
    fwd_flush(&f, 4, 3000, send_fn, &s);
    assert_int_equal(status[3], CLUSTER_ENOQUORUM);
    assert_false(fwd_busy(&f));
    fwd_close(&f, CLUSTER_ESHUTDOWN);
}

static void take(void *ctx, const uint8_t *cmd, size_t len, cluster_applied_cb cb, void *data)
{
    (void)ctx;
    each(NULL, cmd, len);
    cb(data, 0, 100 + (uint64_t)n_cmds);
}

static void taken_back_by_a_new_leader_and_close(void **state)
{
    (void)state;
    reset();
    struct fwd f;
    fwd_init(&f, 1000);
    fwd_add(&f, (const uint8_t *)"p", 1, done_cb, (void *)0, 0);
    fwd_add(&f, (const uint8_t *)"q", 1, done_cb, (void *)1, 0);
    fwd_take_queued(&f, take, NULL);
    assert_int_equal(n_cmds, 2);
    assert_string_equal(cmds[0], "p");
    assert_string_equal(cmds[1], "q");
    assert_int_equal(idx[1], 102);
    assert_false(fwd_busy(&f));
    reset();
    struct sent s = {0};
    fwd_add(&f, (const uint8_t *)"r", 1, done_cb, (void *)0, 0);
    fwd_flush(&f, 2, 0, send_fn, &s);
    fwd_add(&f, (const uint8_t *)"s", 1, done_cb, (void *)1, 0);
    fwd_close(&f, CLUSTER_ESHUTDOWN);
    assert_int_equal(n_done, 2);
    assert_int_equal(status[0], CLUSTER_ESHUTDOWN);
    assert_int_equal(status[1], CLUSTER_ESHUTDOWN);
}

static void frames_are_checked(void **state)
{
    (void)state;
    uint64_t id;
    uint8_t f[64] = {0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 3, 'a', 'b', 'c'};
    n_cmds = 0;
    assert_int_equal(fwd_decode_propose(f, 19, &id, each, NULL), 1);
    assert_int_equal(id, 9);
    assert_int_equal(fwd_decode_propose(f, 18, &id, each, NULL), CLUSTER_ECORRUPT);
    assert_int_equal(fwd_decode_propose(f, 20, &id, each, NULL), CLUSTER_ECORRUPT);
    f[11] = 2;
    assert_int_equal(fwd_decode_propose(f, 19, &id, each, NULL), CLUSTER_ECORRUPT);
    f[11] = 0;
    assert_int_equal(fwd_decode_propose(f, 19, &id, each, NULL), CLUSTER_ECORRUPT);
    assert_int_equal(fwd_decode_propose(f, 5, &id, each, NULL), CLUSTER_ECORRUPT);
    struct fwd fw;
    fwd_init(&fw, 10);
    assert_int_equal(fwd_on_result(&fw, f, 10, 0), CLUSTER_ECORRUPT);
    fwd_close(&fw, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batch_completes_after_local_apply),
        cmocka_unit_test(not_leader_retries_then_fails),
        cmocka_unit_test(leader_change_timeout_and_no_leader),
        cmocka_unit_test(taken_back_by_a_new_leader_and_close),
        cmocka_unit_test(frames_are_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
