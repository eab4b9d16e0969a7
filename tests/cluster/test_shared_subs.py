"""Shared subscriptions across nodes: the topic's owner picks one member per group
cluster-wide, so each message reaches exactly one member of a group whose members sit on
different nodes; other groups and non-shared subscribers on the same filter get every message;
a member that leaves mid-run loses the group nothing at QoS 1."""

import collections
import threading
import time

import pytest

import checker
import rawmqtt
from cluster_harness import Cluster
from harness import WAIT
from pahoclient import V5, V311, Client

N = 30  # messages per publisher and QoS


@pytest.fixture(scope="module")
def cluster():
    with Cluster(3) as c:
        c.wait_alive_view(range(1, 4))
        yield c


def sync(c, timeout=20):
    """Waits until every node applied what was committed when called: the subscriptions and
    sessions made before are then known to every owner."""
    target = max(st["commit_index"] for st in c.statuses().values())
    deadline = time.monotonic() + timeout
    while True:
        sts = c.statuses()
        if all(st["applied_index"] >= target for st in sts.values()):
            return
        assert time.monotonic() < deadline, "nodes did not apply index %d: %r" % (target, sts)
        time.sleep(0.05)


def keys(msgs):
    return [checker.parse_payload(m.payload) for m in msgs]


def wait_total(clients, want, timeout=20):
    """Waits until the clients together hold want messages (or the timeout), then a little
    longer so that a duplicate would arrive too; returns each client's messages."""
    deadline = time.monotonic() + timeout
    while sum(len(c.messages) for c in clients) < want and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    return {c.client_id: c.drain() for c in clients}


def test_one_member_per_group_cluster_wide(cluster):
    c = cluster
    g1 = [Client(c.nodes[i], "g1-m%d" % i, V5) for i in (1, 2, 3)]
    g2 = [Client(c.nodes[i], "g2-m%d" % i, V311) for i in (2, 3)]
    plain = Client(c.nodes[1], "plain", V5)
    try:
        for m in g1:
            assert m.subscribe("$share/g1/sh/#", 1) == [1]
        for m in g2:
            assert m.subscribe("$share/g2/sh/#", 1) == [1]
        assert plain.subscribe("sh/#", 1) == [1]
        sync(c)
        for qos in (0, 1):
            sent = []
            for i, nd in c.nodes.items():
                p = Client(nd, "pub%d-q%d" % (i, qos), V311)
                for k in range(N):
                    # several topics: several owners, each picking among all members
                    p.publish("sh/q%d/%d" % (qos, k % 5), checker.payload(p.client_id, k),
                              qos=qos)
                    sent.append((p.client_id, k))
                p.disconnect()
            want = sorted(sent)
            got = plain.expect_n(len(sent), timeout=20)
            assert sorted(keys(got)) == want, "non-shared subscriber, QoS %d" % qos
            plain.expect_nothing(0.3)
            for group in (g1, g2):
                per = wait_total(group, len(sent))
                every = sorted(k for msgs in per.values() for k in keys(msgs))
                dup = [k for k, n in collections.Counter(every).items() if n > 1]
                assert not dup, "QoS %d: delivered to more than one member: %r" % (qos, dup[:5])
                assert every == want, "QoS %d: %d of %d delivered to the group" % (
                    qos, len(every), len(want))
                counts = {cid: len(msgs) for cid, msgs in per.items()}
                for cid, n in counts.items():
                    # round-robin per owner: about an equal share each
                    assert n >= len(sent) // (3 * len(group)), (qos, counts)
                for msgs in per.values():
                    assert all(m.qos == qos for m in msgs)
    finally:
        for m in g1 + g2 + [plain]:
            m.disconnect()


class Leaver(threading.Thread):
    """A group member on a raw connection: records and acknowledges what it gets; after
    leave_after messages it sends DISCONNECT and records what still arrives until the node
    closes the connection (all of it was delivered to it)."""

    def __init__(self, node, client_id, filt, leave_after):
        super().__init__(daemon=True)
        self.rc = rawmqtt.RawClient(node.port, version=4, host=node.host)
        self.rc.connect(client_id)
        assert self.rc.subscribe([(filt, 1)]) == [1]
        self.leave_after = leave_after
        self.got = []
        self.left = threading.Event()
        self.error = None

    def run(self):
        try:
            while True:
                try:
                    p = self.rc.recv(WAIT)
                except rawmqtt.Closed:
                    assert self.left.is_set(), "closed before leaving"
                    return
                if p.type != rawmqtt.PUBLISH:
                    continue
                self.got.append(checker.parse_payload(p.payload))
                if self.left.is_set():
                    continue
                if p.qos:
                    self.rc.ack(rawmqtt.PUBACK, p.pid)
                if len(self.got) >= self.leave_after:
                    self.left.set()
                    self.rc.send(rawmqtt.disconnect_pkt(4))
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            self.rc.close()


@pytest.mark.parametrize("neighbour", [False, True], ids=["alone", "neighbour"])
def test_member_leaves_mid_run_nothing_lost_qos1(cluster, neighbour):
    """A copy for the member that left goes to another member on its node (neighbour), or,
    with none there, to a member on another node."""
    c = cluster
    tag = "n" if neighbour else "a"
    nodes = (1, 2, 3) if neighbour else (1, 2)
    stay = [Client(c.nodes[i], "lv%s-m%d" % (tag, i), V5) for i in nodes]
    filt = "$share/lv%s/lv%s/#" % (tag, tag)
    leaver = None
    pubs = []
    try:
        for m in stay:
            assert m.subscribe(filt, 1) == [1]
        leaver = Leaver(c.nodes[3], "lv%s-leaver" % tag, filt, leave_after=10)
        sync(c)
        leaver.start()
        sent = []
        lock = threading.Lock()
        errors = []

        def publish(i):
            try:
                p = Client(c.nodes[i], "lv%spub%d" % (tag, i), V311)
                pubs.append(p)
                for k in range(3 * N):
                    p.publish("lv%s/%d" % (tag, k % 3), checker.payload(p.client_id, k), qos=1)
                    with lock:
                        sent.append((p.client_id, k))
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=publish, args=(i,), daemon=True) for i in (1, 2, 3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert all(not t.is_alive() for t in threads), "publishers did not finish"
        leaver.join(WAIT + 5)
        assert not leaver.is_alive() and leaver.error is None, leaver.error
        assert leaver.left.is_set(), "the member never left (got %d)" % len(leaver.got)
        want = sorted(sent)
        per = wait_total(stay, len(sent) - len(leaver.got))
        every = sorted(leaver.got + [k for msgs in per.values() for k in keys(msgs)])
        dup = [k for k, n in collections.Counter(every).items() if n > 1]
        assert not dup, "delivered to more than one member: %r" % dup[:5]
        missing = sorted(set(want) - set(every))
        assert not missing, "%d acknowledged messages reached no member: %r" % (
            len(missing), missing[:5])
        assert every == want
        for cid, msgs in per.items():
            assert msgs, "%s got nothing" % cid
    finally:
        for m in stay + pubs:
            m.disconnect()
