"""Persistent sessions of a node that is killed and declared down: the cluster expires them.

The leader closes the dead node's persistent sessions (SESSION_CLOSE at the instant the node
was declared down); from then on every node keeps their session expiry and their will's delay,
and the leader (the node the client was last connected to being down) publishes each will
when its delay or the session's expiry comes first, and commits the expiry: session,
subscriptions and queue gone on every node. A client that resumes its session on another
node before the expiry keeps it, with the messages queued meanwhile. The killed node, started
again, does not bring back what the cluster expired, nor publish the wills again.
"""

import time

import pytest

from cluster_harness import Cluster, CLUSTER_WAIT
from pahoclient import V5, V311, Client, props


def _v5(node, cid, expiry_s, will=None, clean=False):
    return Client(node, cid, V5, clean=clean, will=will,
                  properties=props("CONNECT", SessionExpiryInterval=expiry_s))


def _will(topic, payload, delay_s=0):
    w = {"topic": topic, "payload": payload, "qos": 1}
    if delay_s:
        w["properties"] = props("WILLMESSAGE", WillDelayInterval=delay_s)
    return w


def _barrier(node):
    """A retained QoS 1 publish on node is acknowledged once node applied its commit, which
    comes after every command the leader proposed before it."""
    p = Client(node, "barrier-%d-%d" % (node.id, time.monotonic_ns()), V311)
    try:
        p.publish("exp/barrier", b"b", qos=1, retain=True)
        p.publish("exp/barrier", b"", qos=1, retain=True)
    finally:
        p.disconnect()


def _session_present(node, cid):
    """Whether node still holds a session for cid (a v5 probe that resumes without keeping
    anything: session expiry 0)."""
    c = _v5(node, cid, 0)
    try:
        return c.session_present
    finally:
        c.disconnect()


def _collect(w, n, what):
    got = {}
    end = time.monotonic() + CLUSTER_WAIT
    while sum(got.values()) < n and time.monotonic() < end:
        m = w.expect(timeout=max(0.1, end - time.monotonic()))
        got[(m.topic, m.payload)] = got.get((m.topic, m.payload), 0) + 1
    return got


@pytest.mark.parametrize("victim", ["follower", "leader"])
def test_sessions_of_a_dead_node_expire(victim):
    with Cluster(3) as c:
        lead = c.leader()
        dead = lead if victim == "leader" else next(x for x in c.running() if x.id != lead.id)
        alive = [x for x in c.running() if x.id != dead.id]
        w = Client(alive[0], "exp-watcher", V5)
        assert w.subscribe("exp/wills/#", 1) == [1]
        clients = [
            # session expiry before the will delay: the will goes when the session expires
            _v5(dead, "exp-short", 3, _will("exp/wills/short", b"short", 300)),
            # a will delay before the session expiry: the will goes after its delay, the
            # session stays
            _v5(dead, "exp-delay", 300, _will("exp/wills/delay", b"delay", 2)),
            # a 3.1.1 persistent session: its will has no delay
            Client(dead, "exp-v3", V311, clean=False,
                   will={"topic": "exp/wills/v3", "payload": b"v3", "qos": 1}),
            # resumes on another node before its expiry
            _v5(dead, "exp-resume", 10),
            # a will delay longer than the test: the node's death does not publish it early
            _v5(dead, "exp-pending", 600, _will("exp/wills/pending", b"early", 300)),
        ]
        assert clients[0].subscribe("exp/q/short", 1) == [1]
        assert clients[3].subscribe("exp/q/resume", 1) == [1]
        dead.kill9()
        for x in clients:
            x.stop()
        c.wait_alive_view([x.id for x in alive], [dead.id])
        new_lead = c.wait_leader(exclude=[dead])
        new_lead.wait_log("sessions of down node %d" % dead.id, timeout=CLUSTER_WAIT)
        # queued for the offline sessions, now that they are closed
        p = Client(alive[1], "exp-pub", V311)
        p.publish("exp/q/resume", b"kept", qos=1)
        p.publish("exp/q/short", b"lost", qos=1)
        p.disconnect()
        r = _v5(alive[1], "exp-resume", 10)
        assert r.session_present, "the session did not survive its node"
        assert r.expect(timeout=CLUSTER_WAIT).payload == b"kept"

        got = _collect(w, 3, "wills")
        assert got == {("exp/wills/short", b"short"): 1, ("exp/wills/delay", b"delay"): 1,
                       ("exp/wills/v3", b"v3"): 1}, got
        # exp-short has expired (its will went with it) on every node; the others stay
        for node in alive:
            _barrier(node)
            assert not _session_present(node, "exp-short"), "exp-short kept on node %d" % node.id
        assert _session_present(alive[0], "exp-delay")

        # the resumed session outlived its old expiry: its subscription still works
        p = Client(alive[0], "exp-pub2", V311)
        p.publish("exp/q/resume", b"later", qos=1)
        p.disconnect()
        assert r.expect(timeout=CLUSTER_WAIT).payload == b"later"

        # the dead node comes back: nothing expired comes back, no will a second time
        dead.start(wait=False)
        c.wait_ready()
        _barrier(dead)
        assert not _session_present(dead, "exp-short")
        w.expect_nothing(1.5)
        r.disconnect()
        w.disconnect()
