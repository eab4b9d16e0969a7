"""The will of a connection that is taken over, on one node and across nodes.

A CONNECT with a client id that is connected elsewhere closes the old connection (v5
DISCONNECT 0x8E). Its will then follows the rules of any network close other than by
DISCONNECT 0x00 (MQTT 5 3.1.2.5, 3.1.3.2.2, 3.1.4; 3.1.1 [MQTT-3.1.2-8]):

- the old session ends (it was not persistent, or the new connection has clean start): the
  will is published now, whatever its delay (the session end makes it due);
- the session is resumed by the new connection: a will without delay (every 3.1.1 will) is
  published at the close; a will with a delay is not published, because a new connection to
  the session was made before the delay elapsed.

One table of cases runs against a single node and against a cluster where the old connection
is on node 1, the new one on node 3 and the watcher on node 2: both must agree.
"""

import pytest

from cluster_harness import Cluster, CLUSTER_WAIT
from harness import Broker
from pahoclient import V5, V311, Client, props

TAKEOVER = 0x8E
DELAY_S = 2  # a will delay the cancelled case waits out

# (protocol, old session persistent, new connection clean, will delay s, will published)
CASES = [
    (V311, False, False, 0, True),
    (V311, False, True, 0, True),
    (V311, True, True, 0, True),
    (V311, True, False, 0, True),  # 3.1.1 has no delay: the close publishes it
    (V5, False, False, 0, True),
    (V5, False, True, 0, True),
    (V5, True, True, 0, True),
    (V5, True, False, 0, True),
    (V5, False, False, 300, True),  # expiry 0: the session ends at the close
    (V5, True, True, 300, True),  # clean start ends the old session
    (V5, True, False, DELAY_S, False),  # resumed before the delay elapsed
]


def _case_id(case):
    proto, pers, clean, delay, _ = case
    return "%s-%s-%s-delay%d" % ("v5" if proto == V5 else "v311",
                                 "persistent" if pers else "cleanold",
                                 "cleanstart" if clean else "resume", delay)


def _connect(where, cid, proto, persistent, clean, will=None):
    if proto == V5:
        p = props("CONNECT", SessionExpiryInterval=300 if persistent else 0)
        return Client(where, cid, V5, clean=clean, properties=p, will=will)
    return Client(where, cid, V311, clean=clean, will=will)


def run_case(old_at, new_at, watch_at, tag, case, wait):
    proto, persistent, new_clean, delay, published = case
    cid = "tw-%s-%s" % (tag, _case_id(case))
    topic = "takeover-will/%s/%s" % (tag, _case_id(case))
    w = Client(watch_at, cid + "-w", V5)
    old = new = None
    try:
        assert w.subscribe(topic, 1) == [1]
        will = {"topic": topic, "payload": b"old-will", "qos": 1}
        if proto == V5 and delay:
            will["properties"] = props("WILLMESSAGE", WillDelayInterval=delay)
        # the old connection: persistent or not, clean start so that nothing is left over
        old = _connect(old_at, cid, proto, persistent, True, will)
        new = _connect(new_at, cid, proto, persistent, new_clean)
        rc, _ = old.wait_disconnected(timeout=wait)
        if proto == V5:
            assert rc == TAKEOVER, "old connection closed with %#x, want 0x8E" % rc
        old.stop()
        if published:
            m = w.expect(timeout=wait)
            assert (m.topic, m.payload, m.qos) == (topic, b"old-will", 1)
            w.expect_nothing(0.5)  # once
        else:
            w.expect_nothing(DELAY_S + 2.0)
        # the new connection ends cleanly: still no (other) will
        new.disconnect()
        new = None
        w.expect_nothing(0.3)
    finally:
        for x in (old, new):
            if x is not None:
                x.drop()
        w.disconnect()


@pytest.fixture(scope="module")
def single():
    with Broker() as b:
        yield b


@pytest.fixture(scope="module")
def cluster():
    with Cluster(3) as c:
        yield c


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_takeover_will_single_node(single, case):
    run_case(single, single, single, "one", case, 10)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_takeover_will_across_nodes(cluster, case):
    run_case(cluster.nodes[1], cluster.nodes[3], cluster.nodes[2], "three", case, CLUSTER_WAIT)
