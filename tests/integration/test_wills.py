"""Will messages: sent on abrupt close, not on a clean DISCONNECT, Will Delay Interval and its
interaction with session expiry, DISCONNECT 0x04."""

import time

import pytest

from harness import Broker, starling_only
from pahoclient import PROTO_IDS, PROTOCOLS, V5, Client, props


@pytest.fixture(scope="module")
def broker():
    with Broker() as b:
        yield b


def _watch(broker, topic, name):
    w = Client(broker, name, V5)
    w.subscribe(topic, 2)
    return w


# A network close without DISCONNECT publishes the will [MQTT-3.1.2-8], with its QoS and
# payload; all protocol versions.
@pytest.mark.parametrize("proto", PROTOCOLS, ids=PROTO_IDS.get)
def test_will_on_abrupt_close(broker, proto):
    topic = "will/abrupt/%d" % proto
    w = _watch(broker, topic, "wa-w%d" % proto)
    try:
        c = Client(broker, "wa%d" % proto, proto, will={"topic": topic, "payload": b"gone",
                                                       "qos": 1})
        c.drop()
        m = w.expect()
        assert (m.topic, m.payload, m.qos, m.retain) == (topic, b"gone", 1, False)
    finally:
        w.disconnect()


# A clean DISCONNECT (v5 reason 0x00) deletes the will without publishing it [MQTT-3.1.2-10]
# [MQTT-3.14.4-3].
@pytest.mark.parametrize("proto", PROTOCOLS, ids=PROTO_IDS.get)
def test_no_will_on_clean_disconnect(broker, proto):
    topic = "will/clean/%d" % proto
    w = _watch(broker, topic, "wc-w%d" % proto)
    try:
        c = Client(broker, "wc%d" % proto, proto, will={"topic": topic, "payload": b"x"})
        c.disconnect()
        w.expect_nothing(0.5)
    finally:
        w.disconnect()


# v5 DISCONNECT with reason 0x04 (Disconnect with Will Message) publishes the will
# [MQTT-3.14.2-1 table: 0x04].
def test_disconnect_0x04_sends_will(broker):
    w = _watch(broker, "will/0x04", "w04-w")
    try:
        c = Client(broker, "w04", V5, will={"topic": "will/0x04", "payload": b"bye"})
        c.disconnect(reasoncode=0x04)
        assert w.expect().payload == b"bye"
    finally:
        w.disconnect()


# A retained will is stored as the retained message of its topic.
def test_will_retain(broker):
    c = Client(broker, "wr", V5, will={"topic": "will/retained", "payload": b"r", "qos": 1,
                                       "retain": True})
    c.drop()
    w = Client(broker, "wr-w", V5)
    try:
        w.subscribe("will/retained", 1)
        m = w.expect()
        assert m.retain and m.payload == b"r"
    finally:
        w.publish("will/retained", b"", qos=1, retain=True)
        w.disconnect()


# Will properties (content type, user properties, message expiry) travel with the will.
def test_will_properties_forwarded(broker):
    w = _watch(broker, "will/props", "wp-w")
    try:
        wp = props("WILLMESSAGE", ContentType="text/plain",
                   UserProperty=[("k1", "v1"), ("k2", "v2")])
        c = Client(broker, "wp", V5, will={"topic": "will/props", "payload": b"p",
                                           "properties": wp})
        c.drop()
        m = w.expect()
        assert m.prop("ContentType") == "text/plain"
        assert m.prop("UserProperty") == [("k1", "v1"), ("k2", "v2")]
    finally:
        w.disconnect()


# The will is published after the Will Delay Interval, not before [MQTT-3.1.3-9].
def test_will_delay(broker):
    w = _watch(broker, "will/delay", "wd-w")
    try:
        c = Client(broker, "wd", V5, properties=props("CONNECT", SessionExpiryInterval=60),
                   will={"topic": "will/delay", "payload": b"late",
                         "properties": props("WILLMESSAGE", WillDelayInterval=2)})
        t0 = time.monotonic()
        c.drop()
        w.expect_nothing(1.2)
        m = w.expect(timeout=5)
        assert m.payload == b"late"
        assert m.at - t0 >= 1.5
    finally:
        w.disconnect()


# Reconnecting with the same client id before the will delay ends cancels the will
# [MQTT-3.1.3-9] (3.1.2.5: "if a new Network Connection to this Session is made before the
# Will Delay Interval has passed, the Server MUST NOT send the Will Message").
def test_will_delay_cancelled_by_reconnect(broker):
    w = _watch(broker, "will/cancel", "wx-w")
    try:
        sp = props("CONNECT", SessionExpiryInterval=60)
        c = Client(broker, "wx", V5, properties=sp, will={
            "topic": "will/cancel", "payload": b"no",
            "properties": props("WILLMESSAGE", WillDelayInterval=2)})
        c.drop()
        c2 = Client(broker, "wx", V5, properties=sp, clean=False)
        w.expect_nothing(3.0)
        c2.disconnect()
    finally:
        w.disconnect()


# A will is due at once when the session ends before the will delay: session expiry 1 s,
# will delay 30 s -> the will is sent at session end [MQTT-3.1.3-9] (5.0 3.1.3.2.2).
@pytest.mark.parametrize("expiry", [0, 1])
def test_will_sent_when_session_ends_before_delay(broker, expiry):
    if expiry == 0:
        starling_only("2.0.11 waits for the will delay even when the session ended at once")
    topic = "will/expiry/%d" % expiry
    w = _watch(broker, topic, "we-w%d" % expiry)
    try:
        c = Client(broker, "we%d" % expiry, V5,
                   properties=props("CONNECT", SessionExpiryInterval=expiry),
                   will={"topic": topic, "payload": b"end",
                         "properties": props("WILLMESSAGE", WillDelayInterval=30)})
        t0 = time.monotonic()
        c.drop()
        m = w.expect(timeout=expiry + 4)
        assert m.payload == b"end"
        assert m.at - t0 < expiry + 3
    finally:
        w.disconnect()


# The will is also sent when the broker closes the connection for a malformed packet or a
# protocol error [MQTT-3.1.2-8]: a PUBLISH with QoS 3 [MQTT-3.3.1-4], a second CONNECT
# [MQTT-3.1.0-2].
@pytest.mark.parametrize("bad", ["qos3", "second_connect"])
def test_will_on_protocol_error(broker, bad):
    from rawmqtt import PUBLISH, RawClient, connect_pkt, mstr, packet, u16
    if bad == "second_connect":
        starling_only("2.0.11 drops the will on a second CONNECT")
    topic = "will/proto/" + bad
    w = _watch(broker, topic, "wpe-w" + bad)
    try:
        c = RawClient(broker.port, 4)
        c.connect("wpe" + bad, will={"topic": topic, "payload": b"err"})
        if bad == "qos3":
            c.send(packet(PUBLISH, 0x06, mstr("x") + u16(1)))
        else:
            c.send(connect_pkt("wpe" + bad, 4))
        c.expect_closed()
        c.close()
        assert w.expect().payload == b"err"
    finally:
        w.disconnect()


# Session takeover closes the old connection without DISCONNECT from its client, so its will
# is published (v5 3.1.4: "If the existing Client has a Will Message, that Will Message is
# published"; 3.1.1 the same network close rule [MQTT-3.1.2-8]).
@pytest.mark.parametrize("proto", PROTOCOLS, ids=PROTO_IDS.get)
def test_will_on_session_takeover(broker, proto):
    topic = "will/takeover/%d" % proto
    w = _watch(broker, topic, "wt-w%d" % proto)
    try:
        old = Client(broker, "wt%d" % proto, proto, will={"topic": topic, "payload": b"old"})
        new = Client(broker, "wt%d" % proto, proto)
        old.wait_disconnected()
        old.stop()
        assert w.expect().payload == b"old"
        new.disconnect()
        w.expect_nothing(0.3)
    finally:
        w.disconnect()
