"""A follower that installs a Raft snapshot while it runs serves the new state at once: it is
SIGSTOPped and cut off while the others commit more entries than they keep behind their
snapshot (snapshots every 4,096 entries, 1,024 kept) and restart, so once it is back the
leader sends it the snapshot. Without a restart it then serves the retained messages, the subscriptions of other nodes'
clients (as the owner of a topic it routes to them), a persistent session with its queued
messages, and it keeps its own connected client and that client's subscription."""

import os

from cluster_harness import CLUSTER_WAIT, Cluster
from harness import wait_until
from pahoclient import V5, V311, Client, props
from rawmqtt import PUBACK, RawClient

N_RETAINED = 30
N_QUEUED = 10
N_TOPICS = 60  # spread over every owner
# More committed entries than a snapshot threshold and its trailing entries together.
N_FILL = 5600
WINDOW = 200
# Raft keeps its log in 8 MiB segment files and drops a segment only once every entry in it
# is behind the snapshot's trailing entries: large entries make the follower's last entry
# fall in a dropped segment.
FILLER = b"x" * 4096
TRAILING = 1024  # entries kept behind a snapshot
SESSION = props("CONNECT", SessionExpiryInterval=3600)


def _fill(node, n):
    """n retained QoS 1 publishes on one topic, WINDOW at a time: n committed entries (the
    last one's payload begins with f<n - 1>)."""
    raw = RawClient(node.port, host=node.host)
    try:
        raw.connect("snap-fill")
        sent = 0
        while sent < n:
            k = min(WINDOW, n - sent)
            for j in range(k):
                payload = b"f%d " % (sent + j) + FILLER
                raw.publish("snap/fill", payload, qos=1, retain=True, pid=j + 1)
            for _ in range(k):
                raw.recv_skip(PUBACK, timeout=CLUSTER_WAIT)
            sent += k
        raw.disconnect()
    finally:
        raw.close()


def _snapshot_index(node):
    """The index of the node's latest complete Raft snapshot (its .meta file), or 0."""
    best = 0
    for name in os.listdir(os.path.join(node.data_dir, "raft")):
        if name.startswith("snapshot-") and name.endswith(".meta"):
            best = max(best, int(name.split("-")[2]))
    return best


def test_follower_installs_snapshot_while_running():
    with Cluster(3) as c:
        lead = c.leader()
        fol, other = [nd for nd in c.running() if nd.id != lead.id]
        pid_before = fol.pid

        # A client of the follower with a subscription committed before the stop.
        mine = Client(fol, "snap-mine", V311)
        assert mine.subscribe("snap/mine/#", 1) == [1]

        # Stopped and cut off.
        before = fol.status()["applied_index"]
        fol.sigstop()
        c.partition([lead, other], [fol])
        c.wait_alive_view([lead.id, other.id], [fol.id])

        # Committed while the follower is stopped: only its snapshot holds these. A
        # persistent session of another node's client with a subscription, a persistent
        # session with queued messages, retained messages.
        far = Client(other, "snap-far", V5, clean=False, properties=SESSION)
        assert far.subscribe("snap/w/#", 1) == [1]
        far.disconnect()
        s = Client(lead, "snap-sess", V5, clean=False, properties=SESSION)
        assert s.subscribe("snap/q/#", 1) == [1]
        s.disconnect()
        p = Client(lead, "snap-pub", V311)
        for i in range(N_RETAINED):
            p.publish("snap/r/%d" % i, b"r%d" % i, qos=1, retain=True, timeout=CLUSTER_WAIT)
        for i in range(N_QUEUED):
            p.publish("snap/q/%d" % (i % 3), b"q%d" % i, qos=1, timeout=CLUSTER_WAIT)
        p.disconnect()
        _fill(lead, N_FILL)
        for nd in (lead, other):
            wait_until(lambda: _snapshot_index(nd) > TRAILING + before, CLUSTER_WAIT,
                       interval=0.1, what="a snapshot on node %d" % nd.id)
        # Restarted one after the other, the two load their log from what is left on disk
        # (the segments after the follower's last entry): no send to the follower queued
        # earlier holds the entries it lacks, so the leader sends it the snapshot.
        for nd in (other, lead):
            nd.kill9()
            nd.start(wait=False)
            c.wait_ready(nodes=[lead, other])

        c.heal()
        fol.sigcont()
        fol.wait_log("state restored from snapshot", timeout=CLUSTER_WAIT)
        fol.wait_log("State replaced by a snapshot at index", timeout=CLUSTER_WAIT)
        c.wait_alive_view([lead.id, other.id, fol.id])
        c.wait_ready()
        assert fol.pid == pid_before, "the follower restarted"

        # Retained messages published while it was stopped.
        r = Client(fol, "snap-check", V311)
        assert r.subscribe("snap/r/+", 1) == [1]
        got = {m.topic: m.payload for m in r.expect_n(N_RETAINED, timeout=CLUSTER_WAIT)}
        assert got == {"snap/r/%d" % i: b"r%d" % i for i in range(N_RETAINED)}
        assert r.subscribe("snap/fill", 1) == [1]
        fill = r.expect(timeout=CLUSTER_WAIT, topic="snap/fill").payload
        assert fill == b"f%d " % (N_FILL - 1) + FILLER
        r.disconnect()

        # Topics on every owner, published through the follower: those it owns it routes
        # itself, to the other node's client that subscribed while it was stopped.
        far = Client(other, "snap-far", V5, clean=False, properties=SESSION)
        assert far.session_present
        pub = Client(fol, "snap-wpub", V311)
        for i in range(N_TOPICS):
            pub.publish("snap/w/%d" % i, b"w%d" % i, qos=1, timeout=CLUSTER_WAIT)
        got = sorted(m.payload for m in far.expect_n(N_TOPICS, timeout=CLUSTER_WAIT))
        assert got == sorted(b"w%d" % i for i in range(N_TOPICS))
        far.expect_nothing(0.3)
        pub.disconnect()

        # The persistent session made while it was stopped, with its queued messages.
        s = Client(fol, "snap-sess", V5, clean=False, properties=SESSION)
        assert s.session_present, "the persistent session is unknown to the follower"
        msgs = s.expect_n(N_QUEUED, timeout=CLUSTER_WAIT)
        assert sorted(m.payload for m in msgs) == sorted(b"q%d" % i for i in range(N_QUEUED))
        s.disconnect()

        # Its own client kept its connection; the subscription the others dropped when the
        # follower was declared down is committed again from the follower. Probes until the
        # owners have it again, then every message reaches it.
        probe = Client(other, "snap-probe", V311)
        n = [0]

        def reached():
            n[0] += 1
            probe.publish("snap/mine/probe", b"p%d" % n[0], qos=1, timeout=CLUSTER_WAIT)
            return any(m.topic == "snap/mine/probe" for m in mine.drain())
        wait_until(reached, CLUSTER_WAIT, interval=0.2, what="the follower's client subscribed")
        for i in range(N_TOPICS):
            probe.publish("snap/mine/%d" % i, b"m%d" % i, qos=1, timeout=CLUSTER_WAIT)
        for i in range(N_TOPICS):
            m = mine.expect(timeout=CLUSTER_WAIT, topic="snap/mine/%d" % i)
            assert m.payload == b"m%d" % i
        probe.disconnect()
        mine.disconnect()
        far.disconnect()
