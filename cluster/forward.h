/* Forwarding of proposals from a follower to the leader over the node link.
 *
 * On a follower, cluster_propose encodes the command and adds it here; once per loop
 * iteration fwd_flush() sends everything added since the last flush to the leader in one
 * FWD_PROPOSE frame. The leader hands the commands to one raft_apply and, once they are
 * committed and applied on the leader, answers with FWD_RESULT (status 0 and the index of the
 * first command; they occupy consecutive indices) or an error. The follower then waits until
 * its OWN FSM has applied the last of those indices, and only then completes each proposal
 * with status 0 and its index.
 *
 *   FWD_PROPOSE  req_id u64 | n u32 | n x (len u32 | encoded command)
 *   FWD_RESULT   req_id u64 | status i32 | first_index u64 | n u32
 *
 * Failures (each proposal's callback gets the status, index 0):
 * - The leader answers CLUSTER_ENOTLEADER (it lost leadership before raft_apply took the
 *   commands: they are not in the log): the request goes back to the queue and is sent to the
 *   next known leader, at most FWD_MAX_ATTEMPTS times, then CLUSTER_ENOTLEADER.
 * - The leader changes (or is lost) while a request was sent and not yet answered:
 *   CLUSTER_ELEADERSHIPLOST (the commands may or may not be committed later).
 * - No answer within the timeout (the link to the leader is down or slow):
 *   CLUSTER_ELEADERSHIPLOST, same meaning.
 * - A request waiting for a leader for longer than the timeout: CLUSTER_ENOQUORUM.
 * - Any other error from the leader (CLUSTER_EFAILED, -EINVAL ...) is passed on.
 * An answered request (status 0) is committed: it completes when the local FSM applies it,
 * whatever happens to leadership meanwhile.
 *
 * This file holds the follower's bookkeeping and the frame codec, with no I/O: the cluster
 * passes the sender and the clock in.
 */
#ifndef STARLING_CLUSTER_FORWARD_H
#define STARLING_CLUSTER_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"

#define FWD_MAX_ATTEMPTS 3u

struct fwd_req;

struct fwd {
    struct fwd_req *queued_head, *queued_tail; /* to send (new, or retrying) */
    struct fwd_req *sent;                      /* sent, no answer yet */
    struct fwd_req *answered;                  /* committed; waiting for the local FSM */
    struct fwd_req *current;                   /* gathering this iteration */
    uint64_t next_req_id;
    uint64_t timeout_ms;
    /* counters */
    uint64_t n_sent, n_retried, n_failed;
};

/* Sends one frame of the given link type to the leader: 0; -EAGAIN (no link to it yet: the
 * request stays queued); other < 0: the request fails (-ENOBUFS as CLUSTER_ENOQUORUM). */
typedef int (*fwd_send_fn)(void *ctx, uint64_t leader_id, uint8_t type, const uint8_t *buf,
                           size_t len);

void fwd_init(struct fwd *f, uint64_t timeout_ms);
/* Fails everything with status. */
void fwd_close(struct fwd *f, int status);

/* Adds one encoded command (copied) to this iteration's request. 0 or -ENOMEM. */
int fwd_add(struct fwd *f, const uint8_t *cmd, size_t len, cluster_applied_cb cb, void *data,
            uint64_t now_ms);
/* Sends every queued request to leader_id (if not 0); requests queued longer than the
 * timeout fail with CLUSTER_ENOQUORUM. */
void fwd_flush(struct fwd *f, uint64_t leader_id, uint64_t now_ms, fwd_send_fn send, void *ctx);
/* A FWD_RESULT frame arrived. last_applied: the local FSM's. 0 or CLUSTER_ECORRUPT. */
int fwd_on_result(struct fwd *f, const uint8_t *buf, size_t len, uint64_t last_applied);
/* The local FSM applied up to last_applied: completes answered requests it covers. */
void fwd_on_applied(struct fwd *f, uint64_t last_applied);
/* The leader changed to leader_id (0 = none): sent, unanswered requests fail. */
void fwd_on_leader_change(struct fwd *f, uint64_t leader_id);
/* Fails sent requests older than the timeout. */
void fwd_expire(struct fwd *f, uint64_t now_ms);
/* True while anything waits (for the idle handle). */
bool fwd_busy(const struct fwd *f);
/* Takes the queued requests back (this node became the leader): each command and its
 * callback are passed to take(), which proposes it locally; then the request is freed. */
void fwd_take_queued(struct fwd *f,
                     void (*take)(void *ctx, const uint8_t *cmd, size_t len, cluster_applied_cb cb,
                                  void *data),
                     void *ctx);

/* ---- frames ---- */

/* Decodes a FWD_PROPOSE: calls each(ctx, cmd, len) per command after checking the whole
 * frame. Returns the command count, or CLUSTER_ECORRUPT. *req_id is set. */
int fwd_decode_propose(const uint8_t *buf, size_t len, uint64_t *req_id /* OUT */,
                       int (*each)(void *ctx, const uint8_t *cmd, size_t len), void *ctx);
/* Encodes a FWD_RESULT into out[FWD_RESULT_SIZE]. */
#define FWD_RESULT_SIZE 24u
void fwd_encode_result(uint8_t *out, uint64_t req_id, int32_t status, uint64_t first_index,
                       uint32_t n);

#endif
