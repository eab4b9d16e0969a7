/* Start-up of a pristine initial member. A node with cluster_peers and an empty Raft directory
 * is either one of a new cluster's first members, or a member whose data was lost (a replaced
 * disk, a new volume). Bootstrapping in the second case would bring it back as a voter with an
 * empty log, which may vote a stale candidate in and lose committed entries. So before it
 * bootstraps it asks every other initial member on the probe channel whether a leader is known:
 *
 * - an answer naming a leader: the cluster runs. Raft starts without a configuration and the
 *   node joins through that leader (members.c), which re-adds it as a spare, catches it up and
 *   promotes it again;
 * - every other member answered "no leader" (they are starting too), or PROBE_WAIT_MS passed
 *   without an answer naming a leader: bootstrap the static configuration, as every member of
 *   a new cluster does.
 *
 * An answer is the join channel's: i32 status | u16 length | leader address, with status 0
 * and the address when a leader is known, CLUSTER_ENOTLEADER and no address otherwise. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_impl.h"
#include "hello.h"

#define PROBE_ROUND_MS 500u
#define PROBE_WAIT_MS  3000u

struct probe_peer {
    struct probe *pr;
    uint64_t id;
    const char *address; /* borrowed from cfg.peers */
    struct port_dial *dial;
    uv_tcp_t *stream;
    uint8_t buf[4 + 2 + 256];
    size_t len;
    bool answered; /* said "no leader" */
};

struct probe {
    struct cluster *c;
    uint64_t deadline_ms, next_round_ms;
    size_t n;
    struct probe_peer peers[];
};

/* Stops every dial and read, frees the probe. */
void probe_close(struct cluster *c)
{
    struct probe *pr = c->probe;
    if (!pr) return;
    for (size_t i = 0; i < pr->n; i++) {
        struct probe_peer *pp = &pr->peers[i];
        if (pp->dial) port_dial_cancel(pp->dial);
        if (pp->stream) port_stream_close(pp->stream);
    }
    free(pr);
    c->probe = NULL;
}

/* The verdict: join through leader, or (NULL) bootstrap the static configuration. */
static void decide(struct cluster *c, const char *leader)
{
    probe_close(c);
    if (leader) {
        char *t = strdup(leader);
        if (!t) {
            cluster_logf(c, CLUSTER_LOG_ERR, "cluster start: out of memory");
            return;
        }
        free(c->join_target);
        c->join_target = t;
        cluster_logf(c, CLUSTER_LOG_WARNING,
                     "the cluster already runs (leader at %s) and this node's data dir is "
                     "empty: joining it instead of bootstrapping",
                     leader);
    }
    int rc = cluster_raft_start(c, leader == NULL, true);
    if (rc != 0)
        cluster_logf(c, CLUSTER_LOG_ERR, "cluster start: %s: this node does not serve",
                     cluster_strerror(rc));
}

static bool all_answered(const struct probe *pr)
{
    for (size_t i = 0; i < pr->n; i++)
        if (!pr->peers[i].answered) return false;
    return true;
}

static void answer_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct probe_peer *pp = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)pp->buf + pp->len, (unsigned)(sizeof pp->buf - pp->len));
}

static void answer_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct probe_peer *pp = s->data;
    struct probe *pr = pp->pr;
    (void)buf;
    if (nread > 0) pp->len += (size_t)nread;
    size_t alen = pp->len >= 6 ? ((size_t)pp->buf[4] << 8 | pp->buf[5]) : 0;
    bool whole = pp->len >= 6 && pp->len >= 6 + alen;
    if (!whole && nread >= 0 && pp->len < sizeof pp->buf) return;
    port_stream_close(pp->stream);
    pp->stream = NULL;
    if (!whole) return; /* asked again next round */
    int32_t status = (int32_t)((uint32_t)pp->buf[0] << 24 | (uint32_t)pp->buf[1] << 16 |
                               (uint32_t)pp->buf[2] << 8 | pp->buf[3]);
    if (status == 0 && alen > 0) {
        char leader[257];
        memcpy(leader, pp->buf + 6, alen);
        leader[alen] = '\0';
        decide(pr->c, leader); /* frees pr */
        return;
    }
    pp->answered = true;
    if (all_answered(pr)) {
        cluster_logf(pr->c, CLUSTER_LOG_INFO,
                     "every initial member is starting: bootstrapping the cluster");
        decide(pr->c, NULL);
    }
}

static void dialed(void *data, int status, uv_tcp_t *stream, uint64_t peer_id)
{
    struct probe_peer *pp = data;
    pp->dial = NULL;
    if (status != 0) return; /* asked again next round */
    if (peer_id != pp->id) {
        cluster_logf(pp->pr->c, CLUSTER_LOG_WARNING, "%s answers as node %llu, not node %llu",
                     pp->address, (unsigned long long)peer_id, (unsigned long long)pp->id);
        port_stream_close(stream);
        return;
    }
    pp->stream = stream;
    pp->len = 0;
    stream->data = pp;
    if (uv_read_start((uv_stream_t *)stream, answer_alloc, answer_read) != 0) {
        port_stream_close(stream);
        pp->stream = NULL;
    }
}

int probe_begin(struct cluster *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->cfg.n_peers; i++)
        if (c->cfg.peers[i].id != c->cfg.node_id) n++;
    struct probe *pr = calloc(1, sizeof *pr + n * sizeof pr->peers[0]);
    if (!pr) return -ENOMEM;
    pr->c = c;
    for (size_t i = 0; i < c->cfg.n_peers; i++) {
        if (c->cfg.peers[i].id == c->cfg.node_id) continue;
        struct probe_peer *pp = &pr->peers[pr->n++];
        pp->pr = pr;
        pp->id = c->cfg.peers[i].id;
        pp->address = c->cfg.peers[i].address;
    }
    uint64_t now = uv_now(c->loop);
    unsigned wait = 3 * c->cfg.election_timeout_ms;
    pr->deadline_ms = now + (wait > PROBE_WAIT_MS ? wait : PROBE_WAIT_MS);
    c->probe = pr;
    cluster_logf(c, CLUSTER_LOG_INFO,
                 "empty data dir: asking the other initial members whether the cluster runs");
    probe_tick(c, now);
    return 0;
}

void probe_tick(struct cluster *c, uint64_t now_ms)
{
    struct probe *pr = c->probe;
    if (!pr) return;
    if (now_ms >= pr->deadline_ms) {
        cluster_logf(c, CLUSTER_LOG_INFO,
                     "no initial member knows a leader: bootstrapping the cluster");
        decide(c, NULL);
        return;
    }
    if (now_ms < pr->next_round_ms) return;
    pr->next_round_ms = now_ms + PROBE_ROUND_MS;
    for (size_t i = 0; i < pr->n; i++) {
        struct probe_peer *pp = &pr->peers[i];
        if (pp->dial || pp->stream) continue;
        if (port_dial(c->port, pp->address, HELLO_CHANNEL_PROBE, dialed, pp, &pp->dial) != 0)
            pp->dial = NULL;
    }
}

void probe_accept(struct cluster *c, uv_tcp_t *stream)
{
    const char *leader = members_leader_address(c);
    members_answer(c, stream, leader ? 0 : CLUSTER_ENOTLEADER, leader);
}
