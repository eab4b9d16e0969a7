"""Join a node and remove one under traffic; leadership transfer; SIGTERM on the leader hands
leadership over before exit."""

import time

import pytest

import checker
import scenarios
from cluster_harness import Cluster, CLUSTER_WAIT
from harness import wait_until
from scenarios import sizes


@scenarios.KNOWN_GAP_INFLIGHT
@pytest.mark.parametrize("n", sizes())
def test_join_and_remove_under_traffic(n):
    with Cluster(n) as c:
        h = scenarios.join_and_remove(c, seed=n)
        scenarios.verify(h, "join and remove on %d nodes" % n)
        st = c.leader().status()
        assert len(st["members"]) == n, st


def test_leader_transfer_and_sigterm_hands_over():
    with Cluster(3, token="adm1n-t0ken") as c:
        lead = c.leader()
        target = next(x for x in c.running() if x.id != lead.id)
        # mutating calls need the bearer token
        saved, c.token = c.token, None
        st, _ = lead.http("POST", "/api/v1/cluster/transfer", {"id": target.id})
        c.token = saved
        assert st == 401, "transfer without the token answered %s" % st
        st, _ = lead.http("GET", "/api/v1/cluster")
        assert st == 200
        c.transfer(target.id)
        assert c.leader().id == target.id
        # SIGTERM on the leader: leadership moves before it exits (no election timeout gap)
        t0 = time.monotonic()
        target.sigterm()
        new = c.wait_leader(exclude=[target])
        took = time.monotonic() - t0
        assert new.id != target.id
        print("leadership after SIGTERM of the leader: %.2fs" % took)
        target.start(wait=False)
        c.wait_ready()


def test_removed_node_stops_serving_cluster_state():
    with Cluster(3) as c:
        lead = c.leader()
        victim = next(x for x in c.running() if x.id != lead.id)
        c.remove_node(victim.id, stop=False)
        wait_until(lambda: not victim.ready(), CLUSTER_WAIT, interval=0.2,
                   what="the removed node to stop reporting ready")
        h = checker.History()
        rc = checker.RecClient(h, "on-removed", lambda: [victim], persistent=False)
        if rc.connect_to(victim, timeout=3):
            mid = rc.subscribe([("x/#", 1)])
            rc.wait_for(lambda: mid not in rc.pending_sub or not rc.connected, 3)
            assert not h.of("suback") or h.of("suback")[0]["g"] >= 0x80, \
                "a removed node acknowledged a SUBSCRIBE"
            rc.close()
        victim.sigterm()


def test_node_without_the_secret_stays_out():
    with Cluster(3) as c:
        lead = c.leader()
        intruder = c.add_node(wait=False, secret="not-the-secret")
        intruder.removed = True  # never a member: left out of the cluster's views
        time.sleep(3 * scenarios.ELECTION_S)
        st = c.leader().status()
        assert intruder.id not in [m["id"] for m in st["members"]], st
        assert not intruder.ready()
        refused = any("secret" in nd.log_text().lower() for nd in c.nodes.values()
                      if nd.id != intruder.id)
        assert refused, "no member logged the dialer that could not prove the secret"
        intruder.kill9()
        assert c.leader().id == lead.id, "the intruder disturbed the leadership"
