"""Retained messages: set, replace, clear, retain handling, retain as published, $ topics."""

import pytest

from harness import Broker
from pahoclient import PROTO_IDS, PROTOCOLS, V5, V311, Client, sub_opts
from rawmqtt import DISCONNECT, P_RETAIN_AVAILABLE, RawClient


@pytest.fixture(scope="module")
def broker():
    with Broker() as b:
        yield b


# A retained message is sent to a new matching subscriber with RETAIN set [MQTT-3.3.1-6]
# [MQTT-3.3.1-8], at min(message QoS, granted QoS).
@pytest.mark.parametrize("proto", PROTOCOLS, ids=PROTO_IDS.get)
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_retained_sent_to_new_subscriber(broker, proto, qos):
    topic = "ret/set/%d/%d" % (proto, qos)
    with Client(broker, "rp%d%d" % (proto, qos), proto) as p:
        p.publish(topic, "kept", qos=2, retain=True)
    with Client(broker, "rs%d%d" % (proto, qos), proto) as s:
        s.subscribe(topic, qos)
        m = s.expect()
        assert (m.topic, m.payload, m.retain, m.qos) == (topic, b"kept", True, qos)


# A new retained message replaces the one stored for the topic [MQTT-3.3.1-5].
@pytest.mark.parametrize("proto", PROTOCOLS, ids=PROTO_IDS.get)
def test_retained_replaced(broker, proto):
    topic = "ret/replace/%d" % proto
    with Client(broker, "rrp%d" % proto, proto) as p:
        p.publish(topic, "old", qos=1, retain=True)
        p.publish(topic, "new", qos=1, retain=True)
    with Client(broker, "rrs%d" % proto, proto) as s:
        s.subscribe(topic, 1)
        assert s.expect().payload == b"new"
        s.expect_nothing(0.2)


# A retained PUBLISH with an empty payload removes the retained message [MQTT-3.3.1-10] and
# is still forwarded to current subscribers [MQTT-3.3.1-11 of 3.1.1 / 3.3.1.3].
@pytest.mark.parametrize("proto", PROTOCOLS, ids=PROTO_IDS.get)
def test_retained_cleared_by_empty_payload(broker, proto):
    topic = "ret/clear/%d" % proto
    with Client(broker, "rcp%d" % proto, proto) as p, Client(broker, "rcl%d" % proto, proto) as live:
        p.publish(topic, "x", qos=1, retain=True)
        live.subscribe(topic, 1)
        assert live.expect().payload == b"x"
        p.publish(topic, b"", qos=1, retain=True)
        assert live.expect().payload == b""
    with Client(broker, "rcs%d" % proto, proto) as s:
        s.subscribe(topic, 1)
        s.expect_nothing(0.3)


# A retained message forwarded to an existing subscription has RETAIN 0 (3.1.1
# [MQTT-3.3.1-9]; v5 with Retain As Published 0 [MQTT-3.3.1-12]).
@pytest.mark.parametrize("proto", PROTOCOLS, ids=PROTO_IDS.get)
def test_live_retained_forwarded_without_retain_flag(broker, proto):
    topic = "ret/live/%d" % proto
    with Client(broker, "rls%d" % proto, proto) as s, Client(broker, "rlp%d" % proto, proto) as p:
        s.subscribe(topic, 1)
        p.publish(topic, "x", qos=1, retain=True)
        m = s.expect()
        assert m.retain is False
        p.publish(topic, b"", qos=1, retain=True)
        s.expect()


# Retain As Published 1 keeps RETAIN as the publisher set it [MQTT-3.3.1-13].
def test_retain_as_published(broker):
    with Client(broker, "rap-s", V5) as s, Client(broker, "rap-p", V5) as p:
        s.subscribe("ret/rap", options=sub_opts(1, retain_as_published=True))
        p.publish("ret/rap", "r", qos=1, retain=True)
        p.publish("ret/rap", "n", qos=1, retain=False)
        a, b = s.expect(), s.expect()
        assert (a.payload, a.retain, b.payload, b.retain) == (b"r", True, b"n", False)
        p.publish("ret/rap", b"", qos=1, retain=True)


# Retain Handling 0 sends retained messages at every subscribe [MQTT-3.3.1-9]; 1 only when
# the subscription did not exist [MQTT-3.3.1-10]; 2 never [MQTT-3.3.1-11].
@pytest.mark.parametrize("handling,first,again", [(0, True, True), (1, True, False),
                                                  (2, False, False)])
def test_retain_handling(broker, handling, first, again):
    topic = "ret/rh/%d" % handling
    with Client(broker, "rhp%d" % handling, V5) as p:
        p.publish(topic, "kept", qos=1, retain=True)
    with Client(broker, "rhs%d" % handling, V5) as s:
        for want in (first, again):
            s.subscribe(topic, options=sub_opts(1, retain_handling=handling))
            if want:
                m = s.expect()
                assert m.retain and m.payload == b"kept"
            s.expect_nothing(0.3)


# A wildcard subscription receives every matching retained message.
def test_wildcard_gets_all_retained(broker):
    with Client(broker, "rw-p", V311) as p:
        for t in ("ret/w/a", "ret/w/b/c", "ret/wx"):
            p.publish(t, t, qos=1, retain=True)
    with Client(broker, "rw-s", V311) as s:
        s.subscribe("ret/w/#", 0)
        got = sorted(m.topic for m in s.expect_n(2))
        assert got == ["ret/w/a", "ret/w/b/c"]
        s.expect_nothing(0.2)


# Retained messages on $ topics are not sent to a '#' subscription [MQTT-4.7.2-1], but are to
# a filter naming the $ topic.
def test_dollar_retained_not_matched_by_hash(broker):
    with Client(broker, "rd-p", V311) as p:
        p.publish("$ret/x", "d", qos=1, retain=True)
        p.publish("retd/x", "n", qos=1, retain=True)
    with Client(broker, "rd-s", V311) as s:
        s.subscribe("#", 0)
        msgs = s.expect_n(1)
        s.expect_nothing(0.3, topic="$ret/x")
        assert "$ret/x" not in [m.topic for m in msgs + s.drain()]
        s.subscribe("$ret/#", 0)
        assert s.expect(topic="$ret/x").payload == b"d"


# retain_available false: v5 CONNACK says Retain Available 0 and a retained PUBLISH gets
# DISCONNECT 0x9A Retain not supported (5.0 section 3.3.1.3).
def test_retain_not_available():
    with Broker({"retain_available": "false"}) as b:
        c = RawClient(b.port, 5)
        ack = c.connect("rna")
        assert ack.prop(P_RETAIN_AVAILABLE) == 0
        c.publish("rna", b"x", qos=0, retain=True)
        got = c.expect_closed()
        assert got and got[-1].type == DISCONNECT and got[-1].rc == 0x9A, got
        c.close()
