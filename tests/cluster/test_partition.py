"""Partition of the leader into a minority and heal (through the link proxies, no
privileges needed): the minority acknowledges nothing that needs a commit, its clients keep
exchanging QoS 0 locally, the majority elects a leader and keeps acknowledging; after the heal
the checker finds no lost acknowledged message, subscription or retained message."""

import pytest

import checker

import scenarios
from cluster_harness import Cluster
from scenarios import sizes


@scenarios.KNOWN_GAP_INFLIGHT
@pytest.mark.parametrize("n", sizes())
def test_partition_leader_into_minority_and_heal(n):
    with Cluster(n) as c:
        h = scenarios.partition_leader(c, seed=n)
        scenarios.verify(h, "leader partitioned into a minority on %d nodes" % n)


def test_minority_node_log_says_so_once():
    """The isolated node logs that it lost the majority, once (not once per refused
    operation)."""
    words = ("minority", "quorum", "majority")
    with Cluster(3) as c:
        lead = c.leader()
        before = len([ln for ln in lead.log_text().lower().splitlines()
                      if any(w in ln for w in words)])
        others = [x.id for x in c.running() if x.id != lead.id]
        h = checker.History()
        cl = checker.RecClient(h, "knock", lambda: [lead], persistent=False,
                               keepalive=30)
        assert cl.connect_to(lead)
        c.partition([lead.id], others)
        c.wait_leader(nodes=[c.nodes[i] for i in others])
        if cl.connected:
            for i in range(10):
                cl.subscribe([("knock/%d" % i, 1)])
            cl.wait_for(lambda: False, 3 * scenarios.ELECTION_S)
            granted = [e for e in h.of("suback") if e["g"] < 0x80]
            assert not granted, "the minority granted a SUBSCRIBE: %s" % granted
            cl.close()
        c.heal()
        c.wait_ready()
        hits = [ln for ln in lead.log_text().lower().splitlines()
                if any(w in ln for w in words)][before:]
        assert hits, "the isolated node never logged that it lost the majority"
        assert len(hits) <= 4, "logged %d times:\n%s" % (len(hits), "\n".join(hits))
