"""Keepalive: the broker closes a silent connection after 1.5 x keepalive; max_keepalive."""

import time

import pytest

from harness import Broker, is_mosquitto
from pahoclient import V5, Client
from rawmqtt import DISCONNECT, P_SERVER_KEEP_ALIVE, PINGREQ, PINGRESP, RawClient, packet


# Mosquitto checks keepalives every few seconds; Starling's timer wheel is meant to be tight.
SLACK = 8.0 if is_mosquitto() else 3.0


@pytest.fixture(scope="module")
def broker():
    with Broker() as b:
        yield b


# A client silent for 1.5 x its keepalive is disconnected [MQTT-3.1.2-24] (v5: -22); a v5
# client may get DISCONNECT 0x8D first. The will is sent.
@pytest.mark.parametrize("version", [3, 4, 5])
def test_silent_client_closed_after_one_and_a_half_keepalive(broker, version):
    topic = "ka/will/%d" % version
    w = Client(broker, "ka-w%d" % version, V5)
    w.subscribe(topic, 0)
    try:
        c = RawClient(broker.port, version)
        c.connect("ka%d" % version, keepalive=1, will={"topic": topic, "payload": b"timeout"})
        t0 = time.monotonic()
        got = c.expect_closed(timeout=10)
        elapsed = time.monotonic() - t0
        c.close()
        assert 1.3 <= elapsed <= SLACK, elapsed
        assert all(p.type == DISCONNECT and p.rc == 0x8D for p in got), got
        assert version == 5 or got == []
        assert w.expect().payload == b"timeout"
    finally:
        w.disconnect()


# A client that sends PINGREQ within the keepalive stays connected and gets PINGRESP
# [MQTT-3.12.4-1].
def test_pings_keep_connection(broker):
    c = RawClient(broker.port, 4)
    c.connect("ka-ping", keepalive=1)
    for _ in range(5):
        time.sleep(0.5)
        c.send(packet(PINGREQ, 0, b""))
        assert c.expect(PINGRESP).body == b""
    c.disconnect()


# Keepalive 0 turns the mechanism off: the broker does not close an idle client.
def test_keepalive_zero_never_times_out(broker):
    c = RawClient(broker.port, 4)
    c.connect("ka-zero", keepalive=0)
    c.expect_nothing(2.0)
    c.send(packet(PINGREQ, 0, b""))
    c.expect(PINGRESP)
    c.disconnect()


# max_keepalive: a v5 client asking for more (or for 0) gets Server Keep Alive = max_keepalive
# in CONNACK [MQTT-3.2.2-21] (mosquitto.conf(5): do not set below 10 seconds).
@pytest.mark.parametrize("asked", [0, 60])
def test_max_keepalive_server_keep_alive(asked):
    with Broker({"max_keepalive": 10}) as b:
        c = RawClient(b.port, 5)
        ack = c.connect("mk%d" % asked, keepalive=asked)
        assert ack.prop(P_SERVER_KEEP_ALIVE) == 10
        c.disconnect()


# The broker enforces the Server Keep Alive it sent: a silent client is closed after
# 1.5 x that value [MQTT-3.2.2-22 / 3.1.2-22].
def test_server_keep_alive_enforced():
    with Broker({"max_keepalive": 10}) as b:
        c = RawClient(b.port, 5)
        c.connect("mk-enf", keepalive=60)
        t0 = time.monotonic()
        c.expect_closed(timeout=25)
        assert 14 <= time.monotonic() - t0 <= 15 + SLACK - 1.5
        c.close()


# A keepalive within max_keepalive is left alone: no Server Keep Alive needed.
def test_keepalive_below_max_unchanged():
    with Broker({"max_keepalive": 100}) as b:
        c = RawClient(b.port, 5)
        ack = c.connect("mk-ok", keepalive=30)
        assert ack.prop(P_SERVER_KEEP_ALIVE) in (None, 30)
        c.disconnect()


# A 3.x client cannot be told a Server Keep Alive: current mosquitto.conf(5) says a 3.1.1
# client asking for more than max_keepalive gets CONNACK 0x02 (identifier rejected) and is
# disconnected, which Starling does; Debian's 2.0.11 still accepted it (its manual said
# max_keepalive applies to v5 clients only).
def test_max_keepalive_v311():
    with Broker({"max_keepalive": 10}) as b:
        c = RawClient(b.port, 4)
        ack = c.connect("mk3", keepalive=60, expect_rc=None)
        if is_mosquitto():
            assert ack.rc == 0
            c.expect_nothing(0.5)
        else:
            assert ack.rc == 0x02
            c.expect_closed()
        c.close()
        c = RawClient(b.port, 4)
        c.connect("mk3-ok", keepalive=10)
        c.disconnect()
