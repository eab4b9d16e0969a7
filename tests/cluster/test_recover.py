"""Disaster recovery with `starling-ctl recover`: a 3-node cluster loses two nodes for good
(kill -9, data dirs gone), the survivor is forced to be the only voter, serves the state it
had as a one-voter cluster, and a new node joins it and gets the state. recover refuses
while the node runs and without confirmation, and then changes nothing."""

import hashlib
import os
import shutil
import subprocess

import pytest

from cluster_harness import CLUSTER_WAIT, Cluster, ctl_bin
from harness import WAIT, wait_until
from pahoclient import V5, V311, Client, props

N_RETAINED = 40
N_QUEUED = 10
SESSION = props("CONNECT", SessionExpiryInterval=3600)


def _ctl(*args):
    path = ctl_bin()
    if path is None:
        pytest.skip("starling-ctl not built (set STARLING_CTL)")
    return subprocess.run([path] + list(args), capture_output=True, text=True, timeout=WAIT * 3,
                          stdin=subprocess.DEVNULL)


def _raft_fingerprint(node):
    """Names and contents of every file of the node's Raft directory."""
    raft = os.path.join(node.data_dir, "raft")
    out = {}
    for name in sorted(os.listdir(raft)):
        with open(os.path.join(raft, name), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def _wait_all_applied(c, nodes):
    """Every given node has applied everything the leader had committed when this started."""
    commit = c.leader().status()["commit_index"]

    def ok():
        sts = [nd.status() for nd in nodes]
        return all(s and s["applied_index"] >= commit for s in sts)
    wait_until(ok, CLUSTER_WAIT, interval=0.1, what="every node applied index %d" % commit)


def _fill(c, first):
    """Retained messages and a persistent session with queued messages, all acknowledged."""
    s = Client(first, "rec-sess", V5, clean=False, properties=SESSION)
    assert s.subscribe("rec/q/#", 1) == [1]
    s.disconnect()
    p = Client(first, "rec-pub", V311)
    for i in range(N_RETAINED):
        p.publish("rec/r/%d" % i, b"r%d" % i, qos=1, retain=True)
    for i in range(N_QUEUED):
        p.publish("rec/q/%d" % (i % 3), b"q%d" % i, qos=1)
    p.disconnect()


def _check_state(node):
    """The retained messages and the session with its queued messages, on node."""
    r = Client(node, "rec-check", V311)
    assert r.subscribe("rec/r/+", 1) == [1]
    got = {m.topic: m.payload for m in r.expect_n(N_RETAINED, timeout=CLUSTER_WAIT)}
    assert got == {"rec/r/%d" % i: b"r%d" % i for i in range(N_RETAINED)}
    r.disconnect()
    s = Client(node, "rec-sess", V5, clean=False, properties=SESSION)
    assert s.session_present, "the persistent session is gone"
    msgs = s.expect_n(N_QUEUED, timeout=CLUSTER_WAIT)
    assert sorted(m.payload for m in msgs) == sorted(b"q%d" % i for i in range(N_QUEUED))
    return s


def _check_writes(node_pub, node_sub, tag):
    """QoS 1 publishes on 60 topics (every owner of a ring over old and new members) from
    node_pub reach a subscriber on node_sub: no topic is owned by a node that is gone."""
    sub = Client(node_sub, "rec-w-sub-%s" % tag, V311)
    assert sub.subscribe("rec/w/%s/#" % tag, 1) == [1]
    pub = Client(node_pub, "rec-w-pub-%s" % tag, V311)
    for i in range(60):
        pub.publish("rec/w/%s/%d" % (tag, i), b"w%d" % i, qos=1, timeout=CLUSTER_WAIT)
    pub.publish("rec/r/new-%s" % tag, b"new", qos=1, retain=True, timeout=CLUSTER_WAIT)
    got = sorted(m.payload for m in sub.expect_n(60, timeout=CLUSTER_WAIT))
    assert got == sorted(b"w%d" % i for i in range(60))
    pub.disconnect()
    sub.disconnect()


def _lose_for_good(nd):
    """kill -9 and the data dir gone: the node never comes back as it was."""
    nd.kill9()
    nd.removed = True
    shutil.rmtree(nd.data_dir, ignore_errors=True)


# The whole path: majority lost, recover on the survivor, one-voter cluster with the state,
# a new node joins and gets the state.
def test_recover_survivor_then_new_node_joins():
    with Cluster(3) as c:
        lead = c.leader()
        survivor = next(nd for nd in c.running() if nd.id != lead.id)
        _fill(c, survivor)
        _wait_all_applied(c, c.running())
        for nd in list(c.running()):
            if nd is not survivor:
                _lose_for_good(nd)
        survivor.kill9()

        r = _ctl("recover", "-c", survivor.broker.conf_path, "--yes")
        assert r.returncode == 0, r.stderr + r.stdout
        assert "only voter" in r.stdout
        assert "WARNING" in r.stderr and "lost for good" in r.stderr

        survivor.start(wait=False)
        c.wait_ready(nodes=[survivor])
        st = survivor.status()
        assert st["leader"] == survivor.id
        assert [(m["id"], m["role"]) for m in st["members"]] == [(survivor.id, "voter")]
        s = _check_state(survivor)
        _check_writes(survivor, survivor, "one")

        # a new node with an empty data dir joins the survivor and gets everything
        new = c.add_node(node_id=4)
        c.wait_ready(nodes=[survivor, new])
        st = c.leader().status()
        assert sorted((m["id"], m["role"]) for m in st["members"]) == [
            (survivor.id, "voter"), (4, "voter")]
        r = Client(new, "rec-check-new", V311)
        assert r.subscribe("rec/r/+", 1) == [1]
        got = {m.topic: m.payload for m in r.expect_n(N_RETAINED + 1, timeout=CLUSTER_WAIT)}
        assert got["rec/r/new-one"] == b"new"
        assert all(got["rec/r/%d" % i] == b"r%d" % i for i in range(N_RETAINED))
        r.disconnect()
        _check_writes(new, survivor, "two")
        _check_writes(survivor, new, "three")
        s.disconnect()


# recover refuses while the broker runs on the data dir, and without --yes when there is no
# terminal to confirm on; neither changes the Raft log.
def test_recover_refuses_running_node_and_unconfirmed():
    with Cluster(3) as c:
        nd = c.followers()[0]
        before = _raft_fingerprint(nd)
        r = _ctl("recover", "-c", nd.broker.conf_path, "--yes")
        assert r.returncode == 1, r.stderr + r.stdout
        assert "process %d has the state" % nd.pid in r.stderr
        assert "stop the node" in r.stderr
        assert nd.running()
        nd.sigterm()
        before = _raft_fingerprint(nd)
        r = _ctl("recover", "--data-dir", nd.data_dir, "--node-id", str(nd.id),
                 "--address", nd.advertise)
        assert r.returncode == 1, r.stderr + r.stdout
        assert "WARNING" in r.stderr and "--yes" in r.stderr
        assert "nothing was changed" in r.stderr
        assert _raft_fingerprint(nd) == before
        # the node is still a member of the 3-node cluster, as before
        nd.start()
        c.wait_ready()
        st = nd.status()
        assert len(st["members"]) == 3


# Usage errors and a data dir without a Raft log.
def test_recover_bad_inputs(tmp_path):
    r = _ctl("recover", "--data-dir", str(tmp_path), "--address", "127.0.0.1:7700", "--yes")
    assert r.returncode == 2 and "--node-id" in r.stderr
    r = _ctl("recover", "--data-dir", str(tmp_path), "--node-id", "1", "--yes")
    assert r.returncode == 2 and "--address" in r.stderr
    r = _ctl("recover", "--data-dir", str(tmp_path), "--node-id", "1", "--address",
             "127.0.0.1:7700", "--yes")
    assert r.returncode == 1 and "no Raft log" in r.stderr
    assert os.listdir(str(tmp_path)) == []



def _restore_one_then_join(c, tmp_path):
    """Retained messages on a one-member cluster, its backup restored over it (--force: a new
    Raft log), then node 2 joins with an empty data dir. Returns (node 1, node 2)."""
    one = c.nodes[1]
    p = Client(one, "rst-pub", V311)
    for i in range(N_RETAINED):
        p.publish("rst/r/%d" % i, b"r%d" % i, qos=1, retain=True)
    p.disconnect()
    backup = str(tmp_path / "state.backup")
    r = _ctl("backup", "-c", one.broker.conf_path, backup)
    assert r.returncode == 0, r.stderr
    one.sigterm()
    r = _ctl("restore", backup, "-c", one.broker.conf_path, "--force")
    assert r.returncode == 0, r.stderr
    one.start()
    new = c.add_node(node_id=2)
    c.wait_ready(nodes=[one, new])
    return one, new


def _check_restored(nd, timeout=CLUSTER_WAIT):
    r = Client(nd, "rst-check-%d" % nd.id, V311)
    assert r.subscribe("rst/r/+", 1) == [1]
    got = {m.topic: m.payload for m in r.expect_n(N_RETAINED, timeout=timeout)}
    assert got == {"rst/r/%d" % i: b"r%d" % i for i in range(N_RETAINED)}, nd
    r.expect_nothing(0.3)
    r.disconnect()


# A backup restored on one node, started as a one-member cluster, then a new node joins it:
# the restored state is not in the new Raft log, so the node snapshots it at once and the
# joiner is sent that snapshot (from the log it would have missed it for good). The joiner
# serves it once restarted (see the next test).
def test_restore_then_join_gets_the_state(tmp_path):
    with Cluster(1) as c:
        one, new = _restore_one_then_join(c, tmp_path)
        _check_restored(one)
        assert "state restored from snapshot" in new.log_text()
        new.restart()
        c.wait_ready(nodes=[one, new])
        _check_restored(new)
        _check_writes(new, one, "rst")


# A node that installs a snapshot while it runs (a joiner sent a snapshot) serves it at once.
def test_restore_then_join_serves_without_restart(tmp_path):
    with Cluster(1) as c:
        one, new = _restore_one_then_join(c, tmp_path)
        _check_restored(new, timeout=WAIT)
