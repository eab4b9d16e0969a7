"""Fault scenarios shared by tests/cluster and the chaos driver.

Each function takes a running Cluster, runs a Workload (checker.py) around one fault and
returns the History; callers assert checker.check(history) == [].
"""

import os
import tempfile
import time

import pytest

import checker
from cluster_harness import CLUSTER_WAIT

# Raft's election timeout is 1 s: a stop "longer than the election timeout" is 3 of them.
ELECTION_S = float(os.environ.get("STARLING_ELECTION_S", "1.0"))


def sizes():
    """Cluster sizes to run: 3 by default, 3 and 5 with STARLING_CLUSTER_FULL=1."""
    return [3, 5] if os.environ.get("STARLING_CLUSTER_FULL") == "1" else [3]


def full():
    return os.environ.get("STARLING_CLUSTER_FULL") == "1"


def phase():
    """Seconds of traffic before and after a fault (longer with STARLING_CLUSTER_FULL)."""
    return 8.0 if full() else 3.0


def workload(cluster, seed=0, **kw):
    kw.setdefault("publishers", 3)
    kw.setdefault("subscribers", 2)
    kw.setdefault("clean", 1)
    kw.setdefault("rate", 20.0)
    return checker.Workload(cluster, seed=seed, **kw)


def verify(history, what):
    """Assert the history holds; on failure it is saved as JSON (path in the message) under
    $STARLING_CLUSTER_HISTORY_DIR (default the temp dir) for checker.check(History.load())."""
    bad = checker.check(history)
    if bad:
        d = os.environ.get("STARLING_CLUSTER_HISTORY_DIR") or tempfile.gettempdir()
        os.makedirs(d, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="history-", suffix=".json", dir=d)
        os.close(fd)
        history.dump(path)
        raise AssertionError("%s violates the guarantees (history: %s):\n  %s"
                             % (what, path, "\n  ".join(bad)))


def timed_retained_ack(cluster, topic="t/after-fault", timeout=CLUSTER_WAIT):
    """Seconds until a retained QoS 1 publish is acknowledged by some running node."""
    h = checker.History()
    start = time.monotonic()
    seq = 0
    while time.monotonic() - start < timeout:
        for nd in cluster.running():
            rc = checker.RecClient(h, "timer-%d" % nd.id, lambda: [nd], persistent=False)
            if not rc.connect_to(nd, timeout=1.0):
                continue
            seq += 1
            mid = rc.publish(topic, seq, 1, retain=True)
            rc.wait_for(lambda: rc.done(mid) or not rc.connected, 2.0)
            acked = rc.acked(mid)
            rc.disconnect()
            if acked:
                return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError("no retained publish acknowledged within %.0fs" % timeout)


# ---- single faults under traffic --------------------------------------------------------------


def kill_leader(cluster, seed=0, restart=True):
    with workload(cluster, seed) as w:
        w.run_for(phase())
        lead = cluster.leader()
        lead.kill9()
        t0 = time.monotonic()
        new = cluster.wait_leader(exclude=[lead])
        took = time.monotonic() - t0
        w.wait_acks(20, timeout=CLUSTER_WAIT)
        w.run_for(phase())
        if restart:
            lead.start(wait=False)
            cluster.wait_ready()
            w.run_for(1.0)
        h = w.finish()
        h.add("note", what="leader %d killed, node %d led after %.2fs" % (lead.id, new.id, took))
        return h


def kill_follower(cluster, seed=0, restart=True):
    with workload(cluster, seed) as w:
        w.run_for(phase())
        f = cluster.followers()[0]
        f.kill9()
        w.wait_acks(20, timeout=CLUSTER_WAIT)
        w.run_for(phase())
        if restart:
            f.start(wait=False)
            cluster.wait_ready()
            w.run_for(1.0)
        return w.finish()


def stop_node(cluster, leader=True, seconds=None, seed=0):
    """SIGSTOP a node (the leader by default) for longer than the election timeout."""
    seconds = seconds if seconds is not None else 3 * ELECTION_S + 1
    with workload(cluster, seed) as w:
        w.run_for(phase())
        nd = cluster.leader() if leader else cluster.followers()[0]
        nd.sigstop()
        if leader:
            cluster.wait_leader(exclude=[nd])
        time.sleep(seconds)
        w.wait_acks(10, timeout=CLUSTER_WAIT)
        nd.sigcont()
        cluster.wait_ready()
        w.run_for(phase())
        return w.finish()


def rolling_restart(cluster, seed=0):
    with workload(cluster, seed) as w:
        w.run_for(phase())

        def between(nd):
            w.wait_acks(10, timeout=CLUSTER_WAIT)
        cluster.rolling_restart(between=between)
        w.run_for(phase())
        return w.finish()


def join_and_remove(cluster, seed=0):
    """Add a node under traffic, then remove a follower (not the new one) under traffic."""
    with workload(cluster, seed) as w:
        w.run_for(phase())
        nd = cluster.add_node()
        w.wait_acks(10, timeout=CLUSTER_WAIT)
        # the new node serves clients: a subscriber there gets cross-node traffic
        probe_h = checker.History()
        rc = checker.RecClient(probe_h, "on-new-node", lambda: [nd], persistent=False)
        assert rc.connect_to(nd), "no CONNACK from the new node %d" % nd.id
        mid = rc.subscribe([("load/#", 1)])
        assert rc.wait_for(lambda: mid not in rc.pending_sub, CLUSTER_WAIT), "no SUBACK on new node"
        assert rc.wait_for(lambda: len(probe_h.of("deliver")) >= 5, CLUSTER_WAIT), \
            "the new node's subscriber gets no traffic"
        rc.disconnect()
        w.run_for(phase())
        lead = cluster.leader()
        victim = next(x for x in cluster.running() if x.id not in (lead.id, nd.id))
        cluster.remove_node(victim.id)
        w.wait_acks(10, timeout=CLUSTER_WAIT)
        w.run_for(phase())
        return w.finish()


def partition_leader(cluster, seed=0, hold=None):
    """Isolate the leader (with n//2 - 1 followers on 5+ nodes) in a minority, then heal.

    In the minority, clean clients keep exchanging QoS 0 locally; a SUBSCRIBE and a retained
    QoS 1 publish sent there get no acknowledgement until the heal; the majority elects a
    leader and keeps acknowledging. Returns the History (with a "minority" window)."""
    hold = hold if hold is not None else max(phase(), 4 * ELECTION_S)
    with workload(cluster, seed) as w:
        w.run_for(phase())
        lead = cluster.leader()
        others = [x for x in cluster.running() if x.id != lead.id]
        k = (len(cluster.running()) - 1) // 2 - 1  # extra minority members, keep it a minority
        minority = [lead] + others[:k]
        majority = others[k:]
        h = w.h
        # local QoS 0 pair on the old leader, subscribed before the partition
        lsub = checker.RecClient(h, "local-sub", lambda: [lead], persistent=False,
                                 keepalive=30)
        assert lsub.connect_to(lead)
        mid = lsub.subscribe([("local/q0", 0)])
        assert lsub.wait_for(lambda: mid not in lsub.pending_sub, CLUSTER_WAIT)
        lpub = checker.RecClient(h, "local-pub", lambda: [lead], persistent=False,
                                 keepalive=30)
        assert lpub.connect_to(lead)
        h.add("subscriber", c="local-sub", persistent=False)
        # a client that will ask for things needing a commit once the partition is in place
        probe = checker.RecClient(h, "minority-probe", lambda: [lead], persistent=False,
                                  keepalive=30)
        assert probe.connect_to(lead)

        cluster.partition([x.id for x in minority], [x.id for x in majority])
        window = h.add("minority", nodes=[x.id for x in minority], until=None)
        new = cluster.wait_leader(nodes=majority)
        assert new.id not in {x.id for x in minority}
        w.wait_acks(10, timeout=CLUSTER_WAIT)

        # things that need a commit, sent into the minority: no acknowledgement while cut off
        smid = probe.subscribe([("minority/sub", 1)])
        rmid = probe.publish("minority/retained", 1, 1, retain=True)
        rsent = time.monotonic()
        # a new persistent session there: no CONNACK (or a refusal) until the heal
        pers = checker.RecClient(h, "minority-persistent", lambda: [lead], persistent=True)
        pers.begin_connect(lead)

        # local QoS 0 keeps flowing inside the minority
        base = len([e for e in h.of("deliver") if e["c"] == "local-sub"])
        for i in range(20):
            lpub.publish("local/q0", 1000 + i, 0)
            lpub.loop(0.01)
        got_local = lsub.wait_for(
            lambda: len([e for e in h.of("deliver") if e["c"] == "local-sub"]) >= base + 20, 5.0)
        recorded = []

        def pump(t):
            for c in (probe, pers, lsub, lpub):
                c.loop(t)
            if probe.acked(rmid) and not recorded:
                recorded.append(h.add("pub_ack", p="minority-probe", topic="minority/retained",
                                      seq=1, qos=1, retain=True, node=lead.id, sent=rsent))
        end = time.monotonic() + hold
        while time.monotonic() < end:
            pump(0.02)
        cluster.heal()
        window["until"] = time.monotonic()
        # after the heal the probe's operations complete (or its connection was closed)
        end = time.monotonic() + CLUSTER_WAIT
        while time.monotonic() < end and probe.connected and not (
                smid not in probe.pending_sub and probe.done(rmid)):
            pump(0.05)
        pers.close()
        probe.disconnect()
        lsub.disconnect()
        lpub.disconnect()
        cluster.wait_ready()
        w.run_for(phase())
        hist = w.finish()
        assert got_local, "local QoS 0 between two clients of the minority node stopped"
        return hist


# The scenarios that still find a violation of the guarantees on the current broker: QoS 1/2
# messages in flight to a connected persistent subscriber live only on its node and are lost
# with it; a QoS 2 publisher that moves node can have a message delivered twice; after a
# SIGSTOP of the leader a QoS 1 message can arrive after later ones (docs/cluster.md, "Known
# gaps"). They run and report XFAIL, or XPASS once the gaps are closed; remove this marker then.
KNOWN_GAP_INFLIGHT = pytest.mark.xfail(
    reason="known gaps (docs/cluster.md): QoS 1/2 in flight to a connected persistent "
    "subscriber are lost with its node; publisher QoS 2 state does not move with a session; "
    "order after a SIGSTOP of the leader",
    strict=False)
