"""$SYS/broker/... topics published every sys_interval seconds with Mosquitto's names."""

import re
import time

import pytest

from harness import WAIT, Broker
from pahoclient import V311, Client

TOPICS = [
    "$SYS/broker/version",
    "$SYS/broker/uptime",
    "$SYS/broker/clients/connected",
    "$SYS/broker/clients/total",
    "$SYS/broker/clients/disconnected",
    "$SYS/broker/clients/maximum",
    "$SYS/broker/messages/received",
    "$SYS/broker/messages/sent",
    "$SYS/broker/bytes/received",
    "$SYS/broker/bytes/sent",
    "$SYS/broker/publish/messages/dropped",
    "$SYS/broker/subscriptions/count",
    "$SYS/broker/retained messages/count",
    "$SYS/broker/load/messages/received/1min",
    "$SYS/broker/load/messages/sent/5min",
    "$SYS/broker/load/bytes/received/15min",
    "$SYS/broker/load/connections/1min",
]


@pytest.fixture(scope="module")
def broker():
    with Broker({"sys_interval": 1}) as b:
        yield b


def _latest(c, topic, pred=lambda v: True, timeout=WAIT):
    """Wait for a message on topic whose payload satisfies pred; returns the payload str."""
    deadline = time.monotonic() + timeout
    while True:
        m = c.expect(topic=topic, timeout=max(0.01, deadline - time.monotonic()))
        v = m.payload.decode()
        if pred(v):
            return v


# Every Mosquitto $SYS/broker topic of the list is published.
def test_sys_topics_published(broker):
    with Client(broker, "sys-all", V311) as c:
        c.subscribe("$SYS/broker/#", 0)
        seen = set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not set(TOPICS) <= seen:
            try:
                seen.add(c.expect(timeout=0.5).topic)
            except AssertionError:
                pass
        assert set(TOPICS) - seen == set()


# $SYS/broker/version names the broker and its version.
def test_sys_version(broker):
    with Client(broker, "sys-ver", V311) as c:
        c.subscribe("$SYS/broker/version", 0)
        v = c.expect().payload.decode()
        assert re.match(r"^\S+ version \d+\.\d+\.\d+", v), v


# $SYS/broker/uptime is "N seconds" and grows every sys_interval.
def test_sys_uptime_grows(broker):
    with Client(broker, "sys-up", V311) as c:
        c.subscribe("$SYS/broker/uptime", 0)
        first = c.expect().payload.decode()
        assert re.match(r"^\d+ seconds$", first), first
        n0 = int(first.split()[0])
        later = _latest(c, "$SYS/broker/uptime", lambda v: int(v.split()[0]) > n0, timeout=4)
        assert int(later.split()[0]) > n0


# clients/connected counts the connected clients; clients/maximum is at least that.
def test_sys_clients_connected(broker):
    with Client(broker, "sys-cc", V311) as c:
        c.subscribe("$SYS/broker/clients/connected", 0)
        base = int(c.expect().payload)
        extra = [Client(broker, "sys-x%d" % i, V311) for i in range(3)]
        try:
            _latest(c, "$SYS/broker/clients/connected", lambda v: int(v) >= base + 3)
        finally:
            for e in extra:
                e.disconnect()
        _latest(c, "$SYS/broker/clients/connected", lambda v: int(v) <= base)
        c.subscribe("$SYS/broker/clients/maximum", 0)
        assert int(c.expect(topic="$SYS/broker/clients/maximum").payload) >= base + 3


# messages/received grows with incoming PUBLISH; retained messages/count and
# subscriptions/count follow the state.
def test_sys_counters_follow_traffic(broker):
    with Client(broker, "sys-cnt", V311) as c:
        c.subscribe([("$SYS/broker/messages/received", 0),
                     ("$SYS/broker/retained messages/count", 0),
                     ("$SYS/broker/subscriptions/count", 0),
                     ("$SYS/broker/shared_subscriptions/count", 0)])
        rx = int(c.expect(topic="$SYS/broker/messages/received").payload)
        ret = int(c.expect(topic="$SYS/broker/retained messages/count").payload)
        subs = int(c.expect(topic="$SYS/broker/subscriptions/count").payload)
        shared = int(c.expect(topic="$SYS/broker/shared_subscriptions/count").payload)
        for i in range(5):
            c.publish("sys/ret/%d" % i, b"x", qos=1, retain=True)
        c.subscribe([("sys/a", 0), ("sys/b", 0), ("$share/g/sys/c", 0)])
        _latest(c, "$SYS/broker/messages/received", lambda v: int(v) >= rx + 5)
        _latest(c, "$SYS/broker/retained messages/count", lambda v: int(v) >= ret + 5)
        _latest(c, "$SYS/broker/subscriptions/count", lambda v: int(v) >= subs + 3)
        _latest(c, "$SYS/broker/shared_subscriptions/count", lambda v: int(v) == shared + 1)
        for i in range(5):
            c.publish("sys/ret/%d" % i, b"", qos=1, retain=True)


# sys_interval 0 turns the $SYS updates off (mosquitto.conf(5)).
def test_sys_interval_zero_disables_updates():
    with Broker({"sys_interval": 0}) as b:
        with Client(b, "sys-off", V311) as c:
            c.subscribe("$SYS/broker/uptime", 0)
            c.expect_nothing(2.2, topic="$SYS/broker/uptime")
