"""Sessions across nodes: takeover (v5 0x8E), a persistent session resuming on another node
with its queued messages, QoS 2 exactly-once across reconnects to other nodes, wills of a
dead node's clients."""

import time

import pytest

import checker
from checker import History, RecClient, TAKEOVER
from cluster_harness import Cluster, CLUSTER_WAIT
from pahoclient import V5, V311, Client, props
from scenarios import KNOWN_GAP_INFLIGHT, sizes


def test_takeover_between_nodes():
    with Cluster(3) as c:
        h = History()
        old = Client(c.nodes[1], "dup-id", V5, clean=False,
                     properties=props("CONNECT", SessionExpiryInterval=300))
        assert old.subscribe("take/#", 1) == [1]
        h.add("connack", c="dup-id", conn=1, node=1, sp=False, rc=0, t=time.monotonic())
        new = Client(c.nodes[3], "dup-id", V5, clean=False,
                     properties=props("CONNECT", SessionExpiryInterval=300))
        h.add("connack", c="dup-id", conn=2, node=3, sp=new.session_present, rc=0,
              t=time.monotonic())
        assert new.session_present, "the session did not move to node 3"
        rc, _ = old.wait_disconnected(timeout=CLUSTER_WAIT)
        h.add("disc", c="dup-id", conn=1, node=1, rc=rc, by="broker", t=time.monotonic())
        assert rc == TAKEOVER, "old connection closed with %#x, want 0x8E" % rc
        h.add("end")
        checker.assert_ok(h, "takeover")
        # the subscription moved with the session; the old connection gets nothing
        p = Client(c.nodes[2], "p", V311)
        p.publish("take/x", b"after", qos=1)
        assert new.expect(timeout=10).payload == b"after"
        old.expect_nothing(0.3)
        # a third CONNECT back on node 1 takes it over again
        third = Client(c.nodes[1], "dup-id", V5, clean=False,
                       properties=props("CONNECT", SessionExpiryInterval=300))
        assert third.session_present
        rc, _ = new.wait_disconnected(timeout=CLUSTER_WAIT)
        assert rc == TAKEOVER
        for x in (third, p):
            x.disconnect()
        old.stop()
        new.stop()


@pytest.mark.parametrize("n", sizes())
def test_persistent_session_resumes_on_another_node(n):
    with Cluster(n) as c:
        sp = props("CONNECT", SessionExpiryInterval=300)
        s = Client(c.nodes[1], "persist", V5, clean=False, properties=sp)
        assert s.subscribe("q/#", 2) == [2]
        s.disconnect()
        p = Client(c.nodes[2], "qpub", V311)
        # one QoS per topic (paho hands a QoS 2 message over at PUBREL, so a mix of QoS on
        # one topic is not seen in publish order even when sent in order)
        qos_of = {0: 1, 1: 2, 2: 1}
        for k in range(30):
            p.publish("q/%d" % (k % 3), checker.payload("qpub", k), qos=qos_of[k % 3])
        p.disconnect()
        s2 = Client(c.nodes[n], "persist", V5, clean=False, properties=sp)
        assert s2.session_present, "session not present on node %d" % n
        got = s2.expect_n(30, timeout=20)
        seqs = {}
        for m in got:
            pub, k = checker.parse_payload(m.payload)
            seqs.setdefault(m.topic, []).append(k)
            assert m.qos == qos_of[k % 3]
        for t, lst in seqs.items():
            assert lst == sorted(lst), (t, lst)
        assert sorted(sum(seqs.values(), [])) == list(range(30))
        s2.expect_nothing(0.5)
        s2.disconnect()


def _drive(clients, secs):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        for x in clients:
            x.loop(0.005)


def settle(pub, pending, h):
    """Record the QoS 2 flows of pending (mid -> (seq, sent)) that ended: PUBCOMP, or a
    refusal (reason code >= 0x80 in PUBREC / PUBCOMP)."""
    for m in [m for m in pending if pub.done(m)]:
        s, sent = pending.pop(m)
        pub.acked_mids.discard(m)
        code = pub.refusals.pop(m, None)
        kind = "pub_ack" if code is None else "pub_refused"
        h.add(kind, p="q2-pub", topic="q2/t", seq=s, qos=2, retain=False, node=pub.node.id,
              sent=sent, rc=code)


# A message in flight to the subscriber when it moves (a direct copy, not yet acknowledged)
# lives only in the old node's session: now and then it is lost (docs/cluster.md, known gaps).
@KNOWN_GAP_INFLIGHT
def test_qos2_exactly_once_across_reconnects():
    """A QoS 2 publisher and subscriber, both persistent, move to other nodes mid-stream
    (connections dropped with flows in flight); every acknowledged message arrives exactly
    once and in order."""
    with Cluster(3) as c:
        h = History()
        nodes = c.nodes
        sub = RecClient(h, "q2-sub", lambda: [nodes[1]], persistent=True)
        h.add("subscriber", c="q2-sub", persistent=True)
        assert sub.connect_to(nodes[1])
        mid = sub.subscribe([("q2/#", 2)])
        assert sub.wait_for(lambda: mid not in sub.pending_sub, 10)
        pub = RecClient(h, "q2-pub", lambda: [nodes[2]], persistent=True)
        h.add("publisher", c="q2-pub", persistent=True)
        assert pub.connect_to(nodes[2])
        pending = {}
        seq = 0
        moves = {60: ("sub", 3), 120: ("pub", 3), 180: ("sub", 2), 240: ("pub", 1)}
        while seq < 300:
            seq += 1
            mid = pub.publish("q2/t", seq, 2)
            pending[mid] = (seq, time.monotonic())
            # several in flight at once (paho's window), the subscriber keeps reading
            _drive([pub, sub], 0.002)
            settle(pub, pending, h)
            if seq in moves:
                who, to = moves[seq]
                x = sub if who == "sub" else pub
                x.close()  # in-flight QoS 2 flows are cut mid-way
                assert x.connect_to(nodes[to], timeout=CLUSTER_WAIT), "%s to node %d" % (who, to)
                assert x.session_present, "%s's session did not move to node %d" % (who, to)
        end = time.monotonic() + 20
        while pending and time.monotonic() < end:
            _drive([pub, sub], 0.05)
            settle(pub, pending, h)
        assert not pending, "unacknowledged QoS 2 publishes: %s" % sorted(pending.values())[:5]
        got = lambda: len({e["seq"] for e in h.of("deliver")})  # noqa: E731
        sub.wait_for(lambda: got() >= len(h.of("pub_ack")), 20)
        _drive([sub], 0.5)
        h.add("end")
        checker.assert_ok(h, "QoS 2 across reconnects")
        acked = len(h.of("pub_ack"))
        assert acked >= 270, "only %d of 300 QoS 2 publishes acknowledged (%d refused)" % (
            acked, len(h.of("pub_refused")))
        pub.disconnect()
        sub.disconnect()


@pytest.mark.parametrize("victim", ["follower", "leader"])
def test_will_fires_when_the_clients_node_dies(victim):
    with Cluster(3) as c:
        lead = c.leader()
        dead = lead if victim == "leader" else next(x for x in c.running() if x.id != lead.id)
        watch_node = next(x for x in c.running() if x.id != dead.id)
        w = Client(watch_node, "watcher", V311)
        assert w.subscribe("wills/#", 1) == [1]
        clean_will = Client(dead, "doomed-clean", V311,
                            will={"topic": "wills/clean", "payload": b"gone-clean", "qos": 1})
        pers_will = Client(dead, "doomed-pers", V5, clean=False,
                           properties=props("CONNECT", SessionExpiryInterval=300),
                           will={"topic": "wills/pers", "payload": b"gone-pers", "qos": 1})
        quiet = Client(dead, "quiet", V311,
                       will={"topic": "wills/quiet", "payload": b"never", "qos": 1})
        quiet.disconnect()  # a clean DISCONNECT: its will must not fire
        w.expect_nothing(0.3)
        dead.kill9()
        clean_will.stop()
        pers_will.stop()
        got = {}
        end = time.monotonic() + CLUSTER_WAIT
        while len(got) < 2 and time.monotonic() < end:
            m = w.expect(timeout=max(0.1, end - time.monotonic()))
            got[m.topic] = got.get(m.topic, 0) + 1
        assert got == {"wills/clean": 1, "wills/pers": 1}, got
        w.expect_nothing(1.0)
        # the node comes back: the wills do not fire a second time
        dead.start(wait=False)
        c.wait_ready()
        w.expect_nothing(1.0)
        w.disconnect()
