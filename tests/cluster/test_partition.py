"""Partition of the leader into a minority and heal (through the link proxies, no
privileges needed): the minority acknowledges nothing that needs a commit, its clients keep
exchanging QoS 0 locally, the majority elects a leader and keeps acknowledging; after the heal
the checker finds no lost acknowledged message, subscription or retained message."""

import pytest

import scenarios
from cluster_harness import Cluster
from scenarios import sizes


@pytest.mark.parametrize("n", sizes())
def test_partition_leader_into_minority_and_heal(n):
    with Cluster(n) as c:
        h = scenarios.partition_leader(c, seed=n)
        scenarios.verify(h, "leader partitioned into a minority on %d nodes" % n)


def test_minority_node_log_says_so_once():
    with Cluster(3) as c:
        lead = c.leader()
        others = [x.id for x in c.running() if x.id != lead.id]
        c.partition([lead.id], others)
        c.wait_leader(nodes=[c.nodes[i] for i in others])
        import time
        time.sleep(3 * scenarios.ELECTION_S)
        c.heal()
        c.wait_ready()
        text = lead.log_text().lower()
        hits = [ln for ln in text.splitlines() if "minority" in ln or "quorum" in ln]
        assert hits, "the isolated node never logged that it lost the majority"
