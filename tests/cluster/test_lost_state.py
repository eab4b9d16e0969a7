"""An initial member (cluster_peers) that starts with an empty data dir while the cluster already
runs: a member whose disk was replaced, or one that starts long after the others bootstrapped.
It must not come back as a voter with an empty log (it could vote a stale candidate in): it asks
the other initial members first, joins through the leader, which demotes it to a spare, catches
it up and promotes it again. Checked from the logs of both sides, the membership, and the state
the node then serves."""

import os
import shutil

import pytest

from cluster_harness import CLUSTER_WAIT, Cluster, Node
from harness import wait_until
from pahoclient import V311, Client

N_RETAINED = 30


def _fill(node, tag):
    """Retained QoS 1 messages, each published again on a new connection if the broker closed
    the connection first (a publish that meets a change of the live set, docs/cluster.md), as
    a client that reconnects does."""
    pub = Client(node, "ls-pub-%s" % tag, V311)
    for i in range(N_RETAINED):
        for attempt in range(5):
            gone = len(pub.disconnects)
            info = pub.publish("ls/%s/%d" % (tag, i), b"%s%d" % (tag.encode(), i), qos=1,
                               retain=True, wait=False)
            pub._wait(lambda: info.mid in pub.published or len(pub.disconnects) > gone,
                      CLUSTER_WAIT, "PUBACK or disconnect")
            if info.mid in pub.published:
                break
            pub.disconnect()
            pub = Client(node, "ls-pub-%s" % tag, V311)
        else:
            raise AssertionError("ls/%s/%d: no PUBACK in 5 connections" % (tag, i))
    pub.disconnect()


def _check_retained(node, tag):
    r = Client(node, "ls-check-%s-%d" % (tag, node.id), V311)
    assert r.subscribe("ls/%s/+" % tag, 1) == [1]
    got = {m.topic: m.payload for m in r.expect_n(N_RETAINED, timeout=CLUSTER_WAIT)}
    r.disconnect()
    assert got == {"ls/%s/%d" % (tag, i): b"%s%d" % (tag.encode(), i) for i in range(N_RETAINED)}


def _all_voters(c, n):
    c.wait_members(lambda ms: sorted((m["id"], m["role"]) for m in ms) ==
                   [(i, "voter") for i in range(1, n + 1)], CLUSTER_WAIT, "%d voters" % n)


def _prepared(c, ids):
    """Nodes `ids` of a cluster the harness did not start: created with the static peer list
    of ids, none running."""
    c._check_env()
    for i in ids:
        c.nodes[i] = Node(c, i)
    peers = " ".join("%d@%s" % (i, c.nodes[i].advertise) for i in ids)
    for i in ids:
        c.nodes[i].peers_line = peers
        c.nodes[i].create()
    return [c.nodes[i] for i in ids]


def test_a_member_whose_data_is_lost_is_re_added_not_bootstrapped():
    with Cluster(3) as c:
        lead = c.leader()
        victim = next(nd for nd in c.running() if nd.id != lead.id)
        _fill(lead, "a")
        victim.kill9()
        shutil.rmtree(victim.data_dir)

        before = len(victim.log_text())  # the log file goes on across restarts
        victim.start(wait=False)
        victim.wait_log("joining it instead of bootstrapping", timeout=CLUSTER_WAIT)
        assert "bootstrapped a new" not in victim.log_text()[before:]
        lead = c.leader()
        lead.wait_log("node %d lost its state: re-adding it" % victim.id, timeout=CLUSTER_WAIT)
        victim.wait_ready()
        _all_voters(c, 3)
        _check_retained(victim, "a")

        # it serves writes again, and they reach the others
        _fill(victim, "b")
        for nd in c.running():
            _check_retained(nd, "b")


def test_an_initial_member_started_late_joins_the_running_cluster():
    c = Cluster(3, start=False)
    with c:
        _prepared(c, (1, 2, 3))
        first = [c.nodes[1], c.nodes[2]]
        for nd in first:
            nd.start(wait=False)
        # node 3 never answers: the two bootstrap once the probe's wait is over
        c.wait_leader(nodes=first)
        for nd in first:
            assert "bootstrapped a new 3-node cluster" in nd.log_text()
        c.wait_ready(nodes=first)
        _fill(first[0], "c")

        late = c.nodes[3]
        late.start(wait=False)
        late.wait_log("joining it instead of bootstrapping", timeout=CLUSTER_WAIT)
        late.wait_ready()
        _all_voters(c, 3)
        assert "bootstrapped a new" not in late.log_text()
        _check_retained(late, "c")
        # one leader that every node agrees on
        wait_until(lambda: len({nd.status()["leader"] for nd in c.running()}) == 1,
                   CLUSTER_WAIT, "one agreed leader")


def test_members_starting_together_bootstrap_at_once():
    with Cluster(3) as c:
        for nd in c.running():
            log = nd.log_text()
            assert "asking the other initial members" in log
            assert "bootstrapped a new 3-node cluster" in log
            assert "instead of bootstrapping" not in log


def test_sigterm_while_asking_the_other_members():
    c = Cluster(3, start=False)
    with c:
        lone = _prepared(c, (1, 2, 3))[0]
        lone.start(wait=False)
        lone.wait_log("asking the other initial members", timeout=CLUSTER_WAIT)
        lone.sigterm()  # asserts exit status 0
        assert "bootstrapped" not in lone.log_text()


def test_join_through_a_name_of_several_hosts_including_this_one(tmp_path):
    """cluster_join names every member (a Kubernetes headless Service): the name resolves to
    this node first, which it skips, then to a member. The joiner runs in a mount namespace of
    its own whose /etc/hosts maps the name to 127.0.0.1 (itself) and 127.0.0.2."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private /etc/hosts")
    c = Cluster(3, proxy=False, start=False)
    with c:
        for nd in _prepared(c, (2, 3)):
            nd.start(wait=False)
        c.wait_leader(nodes=[c.nodes[2], c.nodes[3]])
        port = c.nodes[2].cluster_port
        hosts = tmp_path / "hosts"
        hosts.write_text("127.0.0.1 localhost\n127.0.0.1 members.test\n"
                         "127.0.0.2 members.test\n")
        joiner = Node(c, 1, join="members.test:%d" % port)
        joiner.cluster_port = port  # 127.0.0.1:port, beside node 2's 127.0.0.2:port
        joiner.advertise = "127.0.0.1:%d" % port
        c.nodes[1] = joiner
        joiner.create()
        joiner.broker.wrapper = ["unshare", "--mount", "sh", "-c",
                                 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts)]
        joiner.start(wait=False)
        c.wait_members(lambda ms: any(m["id"] == 1 and m.get("role") == "voter" for m in ms),
                       CLUSTER_WAIT, "node 1 a voter")
        joiner.wait_ready()
        assert "joined the cluster as node 1" in joiner.log_text()
        if "reached this node; trying the next host" not in joiner.log_text():
            # the resolver ordered node 2 first: the rotation was not needed this time
            print("members.test resolved to node 2 first")
