/* The owner lease (cluster_current): whether this node's view of the ring is recent enough for
 * it to sequence topics. Two round trips over the node links, each timed on the asking node's
 * own clock, so that frames that waited in a buffer (a stopped process, a cut link) prove
 * nothing:
 * - A follower asks its leader every tick (LEASE_ASK: term, the asker's loop time); the leader
 *   answers (LEASE_ANSWER: term, its commit index, the time echoed) while it leads that term.
 *   The follower is current while it holds an answer to a question asked less than lease_ms
 *   ago and has applied at least the commit index of that answer: it has applied everything
 *   committed before that moment.
 * - The leader asks every voter every tick; a voter answers while the asker is its leader in
 *   that term. The leader is current while answers to questions asked less than lease_ms ago
 *   came from a majority of the voters (itself included).
 * lease_ms is half of node_down_ms: a node cut off from the leader stops sequencing well before
 * the leader declares it down and ownership of its topics moves.
 */
#include <string.h>

#include "cluster_impl.h"

enum { LEASE_ASK_LEN = 16, LEASE_ANSWER_LEN = 24 };

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint64_t lease_ms(const struct cluster *c)
{
    return c->cfg.node_down_ms / 2;
}

static void lease_ask(struct cluster *c, uint64_t to, uint64_t now_ms)
{
    uint8_t f[LEASE_ASK_LEN];
    put64(f, c->raft.current_term);
    put64(f + 8, now_ms);
    link_send(c->link, to, LINK_TYPE_LEASE_ASK, f, sizeof f, LINK_F_SHEDDABLE);
}

void lease_tick(struct cluster *c, uint64_t now_ms)
{
    if (!c->started || c->closing) return;
    if (cluster_is_leader(c)) {
        const struct raft_configuration *conf = &c->raft.configuration;
        for (unsigned i = 0; i < conf->n; i++)
            if (conf->servers[i].id != c->cfg.node_id && conf->servers[i].role == RAFT_VOTER)
                lease_ask(c, conf->servers[i].id, now_ms);
    } else if (c->leader_id && c->leader_id != c->cfg.node_id) {
        lease_ask(c, c->leader_id, now_ms);
    }
}

void lease_on_ask(struct cluster *c, uint64_t from, const uint8_t *buf, size_t len)
{
    if (len != LEASE_ASK_LEN || !c->started) return;
    uint64_t term = get64(buf);
    if (term != c->raft.current_term) return;
    /* A follower asks its leader; the leader asks the voters that follow it. */
    bool answer = cluster_is_leader(c) || c->leader_id == from;
    if (!answer) return;
    uint8_t f[LEASE_ANSWER_LEN];
    put64(f, term);
    put64(f + 8, c->raft.commit_index);
    memcpy(f + 16, buf + 8, 8);
    link_send(c->link, from, LINK_TYPE_LEASE_ANSWER, f, sizeof f, LINK_F_SHEDDABLE);
}

void lease_on_answer(struct cluster *c, uint64_t from, const uint8_t *buf, size_t len)
{
    if (len != LEASE_ANSWER_LEN || !c->started) return;
    struct lease *l = &c->lease;
    uint64_t term = get64(buf);
    uint64_t commit = get64(buf + 8);
    uint64_t asked = get64(buf + 16);
    if (term != c->raft.current_term || asked > uv_now(c->loop)) return;
    if (cluster_is_leader(c)) {
        /* A voter's answer: keep the latest question it answered. */
        size_t i = 0;
        while (i < l->n_voters && l->voters[i].id != from)
            i++;
        if (i == l->n_voters) {
            if (i == LEASE_VOTERS_MAX) return;
            l->voters[i].id = from;
            l->voters[i].asked_ms = 0;
            l->voters[i].term = 0;
            l->n_voters++;
        }
        if (l->voters[i].term != term || l->voters[i].asked_ms < asked) {
            l->voters[i].asked_ms = asked;
            l->voters[i].term = term;
        }
        return;
    }
    if (from != c->leader_id) return;
    /* The leader's answer: a new slot unless it answers an older question than the newest. */
    size_t newest = (l->next + LEASE_GRANTS - 1) % LEASE_GRANTS;
    if (l->grants[newest].leader == from && l->grants[newest].asked_ms > asked) return;
    l->grants[l->next] = (struct lease_grant){.leader = from, .asked_ms = asked, .commit = commit};
    l->next = (l->next + 1) % LEASE_GRANTS;
}

static bool lease_check(struct cluster *c)
{
    /* No live member committed yet (a new cluster's first moments): every node would take
     * itself for the owner of every topic. */
    if (!c->started || c->closing || c->ring.n == 0) return false;
    struct lease *l = &c->lease;
    uint64_t now = uv_now(c->loop);
    uint64_t span = lease_ms(c);
    if (cluster_is_leader(c)) {
        const struct raft_configuration *conf = &c->raft.configuration;
        unsigned voters = 0, fresh = 0;
        for (unsigned i = 0; i < conf->n; i++) {
            const struct raft_server *s = &conf->servers[i];
            if (s->role != RAFT_VOTER) continue;
            voters++;
            if (s->id == c->cfg.node_id) {
                fresh++;
                continue;
            }
            for (size_t j = 0; j < l->n_voters; j++)
                if (l->voters[j].id == s->id && l->voters[j].term == c->raft.current_term &&
                    now - l->voters[j].asked_ms < span)
                    fresh++;
        }
        return voters > 0 && fresh * 2 > voters;
    }
    uint64_t leader = c->leader_id;
    if (!leader || leader == c->cfg.node_id) return false;
    uint64_t applied = c->raft_ready ? fsm_applied_index(&c->fsm) : c->fsm.last_applied;
    for (size_t i = 0; i < LEASE_GRANTS; i++) {
        const struct lease_grant *g = &l->grants[i];
        if (g->leader == leader && now - g->asked_ms < span && applied >= g->commit) return true;
    }
    return false;
}

bool cluster_current(struct cluster *c)
{
    if (!c->multi) return true;
    bool held = lease_check(c);
    if (held != c->lease.held) {
        c->lease.held = held;
        cluster_logf(c, CLUSTER_LOG_INFO, "owner lease %s (%s, applied %llu)",
                     held ? "held" : "lost", cluster_is_leader(c) ? "leader" : "follower",
                     (unsigned long long)c->fsm.last_applied);
    }
    return held;
}
