"""MQTT 5 features: message expiry, topic aliases, request/response, user properties,
payload format indicator, subscription identifiers, no local, shared subscriptions, AUTH."""

import time

import pytest

from harness import Broker, is_mosquitto, starling_only
from pahoclient import V5, V311, Client, props, sub_opts
from rawmqtt import (CONNACK, DISCONNECT, P_AUTH_METHOD, P_MESSAGE_EXPIRY, P_PAYLOAD_FORMAT,
                     P_REASON_STRING, P_REQUEST_PROBLEM_INFO, P_SESSION_EXPIRY,
                     P_SUBSCRIPTION_ID, P_TOPIC_ALIAS, P_TOPIC_ALIAS_MAXIMUM, P_USER_PROPERTY,
                     PUBACK, PUBLISH, RawClient, connect_pkt, raw_connect)


@pytest.fixture(scope="module")
def broker():
    with Broker() as b:
        yield b


def _offline_subscriber(port, cid, topic):
    c = raw_connect(port, cid, 5, clean=False, plist=[(P_SESSION_EXPIRY, 300)])
    c.subscribe([(topic, 1)])
    c.disconnect()


# A message whose Message Expiry Interval passes while queued is not delivered
# [MQTT-3.3.2-5].
def test_expired_message_dropped(broker):
    _offline_subscriber(broker.port, "mx-drop", "v5/mx/drop")
    with raw_connect(broker.port, "mx-dp", 5) as p:
        p.publish_acked("v5/mx/drop", b"short", qos=1, plist=[(P_MESSAGE_EXPIRY, 1)])
        p.publish_acked("v5/mx/drop", b"long", qos=1, pid=2, plist=[(P_MESSAGE_EXPIRY, 60)])
    time.sleep(2.2)
    c = raw_connect(broker.port, "mx-drop", 5, clean=False, plist=[(P_SESSION_EXPIRY, 0)])
    m = c.expect(PUBLISH)
    assert m.payload == b"long"
    c.ack(PUBACK, m.pid)
    c.expect_nothing(0.3)
    c.disconnect()


# A queued message is forwarded with the remaining expiry interval [MQTT-3.3.2-6].
def test_expiry_forwarded_with_remaining_interval(broker):
    _offline_subscriber(broker.port, "mx-rem", "v5/mx/rem")
    with raw_connect(broker.port, "mx-rp", 5) as p:
        p.publish_acked("v5/mx/rem", b"x", qos=1, plist=[(P_MESSAGE_EXPIRY, 30)])
    time.sleep(1.5)
    c = raw_connect(broker.port, "mx-rem", 5, clean=False, plist=[(P_SESSION_EXPIRY, 0)])
    m = c.expect(PUBLISH)
    left = m.prop(P_MESSAGE_EXPIRY)
    assert left is not None and 1 <= left <= 29, left
    c.ack(PUBACK, m.pid)
    c.disconnect()


# A retained message stops being retained once its expiry has passed.
def test_retained_message_expires(broker):
    with raw_connect(broker.port, "mx-ret", 5) as p:
        p.publish_acked("v5/mx/ret", b"r", qos=1, retain=True, plist=[(P_MESSAGE_EXPIRY, 1)])
    time.sleep(2.2)
    with Client(broker, "mx-ret-s", V5) as s:
        s.subscribe("v5/mx/ret", 1)
        s.expect_nothing(0.3)


# Inbound topic alias: a PUBLISH setting alias 1 for a topic, then PUBLISHes with an empty
# topic and alias 1, all reach subscribers of that topic [MQTT-3.3.2-12]; CONNACK states the
# Topic Alias Maximum the broker accepts.
def test_inbound_topic_alias(broker):
    with Client(broker, "ta-s", V311) as s:
        s.subscribe("v5/alias/in", 0)
        c = RawClient(broker.port, 5)
        ack = c.connect("ta-p")
        assert (ack.prop(P_TOPIC_ALIAS_MAXIMUM) or 0) >= 1
        c.publish("v5/alias/in", b"1", plist=[(P_TOPIC_ALIAS, 1)])
        c.publish("", b"2", plist=[(P_TOPIC_ALIAS, 1)])
        c.publish_acked("", b"3", qos=1, pid=1, plist=[(P_TOPIC_ALIAS, 1)])
        got = s.expect_n(3)
        assert [(m.topic, m.payload) for m in got] == [("v5/alias/in", b"1"),
                                                        ("v5/alias/in", b"2"),
                                                        ("v5/alias/in", b"3")]
        c.disconnect()


# Topic alias above the broker's Topic Alias Maximum: DISCONNECT 0x94 Topic Alias invalid
# [MQTT-3.3.2-9]; alias 0 is not permitted [MQTT-3.3.2-8] (the spec names no code: 0x94 or
# 0x82; Mosquitto says 0x81); an alias never set, with an empty topic, is a protocol error.
@pytest.mark.parametrize("alias,topic,rc", [(0, "t", (0x94, 0x82, 0x81)), (65535, "t", (0x94,)),
                                            (7, "", (0x82,))])
def test_invalid_topic_alias(broker, alias, topic, rc):
    if not is_mosquitto() and alias == 0:
        rc = (0x94, 0x82)
    c = RawClient(broker.port, 5)
    c.connect("ta-bad%d" % alias)
    c.publish(topic, b"x", plist=[(P_TOPIC_ALIAS, alias)])
    got = c.expect_closed()
    assert got and got[-1].type == DISCONNECT and got[-1].rc in rc, got
    c.close()


# Outbound topic aliases: a client with Topic Alias Maximum N may get aliases 1..N; every
# message resolves to its real topic [MQTT-3.3.2-11]. Without a maximum it gets none
# [MQTT-3.3.2-10].
@pytest.mark.parametrize("maximum", [0, 2])
def test_outbound_topic_alias(broker, maximum):
    plist = [(P_TOPIC_ALIAS_MAXIMUM, maximum)] if maximum else []
    c = raw_connect(broker.port, "tao%d" % maximum, 5, plist=plist)
    c.subscribe([("v5/alias/out%d/#" % maximum, 0)])
    topics = ["v5/alias/out%d/%s" % (maximum, t) for t in "aabbcaab"]
    with raw_connect(broker.port, "taop%d" % maximum, 5) as p:
        for t in topics:
            p.publish_acked(t, t.encode(), qos=1)
    aliases, got, used = {}, [], 0
    for _ in topics:
        m = c.expect(PUBLISH)
        a = m.prop(P_TOPIC_ALIAS)
        if a is not None:
            assert 1 <= a <= maximum, a
            if m.topic:
                aliases[a] = m.topic
            else:
                used += 1
            topic = m.topic or aliases[a]
        else:
            assert m.topic
            topic = m.topic
        assert m.payload == topic.encode()
        got.append(topic)
    assert got == topics
    if maximum and not is_mosquitto():  # 2.0.11 never sends aliases; Starling does
        assert used > 0, "broker never used an outbound alias"
    c.disconnect()


# Response Topic and Correlation Data are forwarded unchanged [MQTT-3.3.2-15]
# [MQTT-3.3.2-16]: a requester and a responder complete a round trip.
def test_request_response(broker):
    with Client(broker, "req", V5) as req, Client(broker, "resp", V5) as resp:
        req.subscribe("v5/rr/reply", 1)
        resp.subscribe("v5/rr/request", 1)
        req.publish("v5/rr/request", b"ping", qos=1, properties=props(
            ResponseTopic="v5/rr/reply", CorrelationData=b"\x01\x02corr"))
        q = resp.expect()
        assert q.prop("ResponseTopic") == "v5/rr/reply"
        assert q.prop("CorrelationData") == b"\x01\x02corr"
        resp.publish(q.prop("ResponseTopic"), b"pong", qos=1,
                     properties=props(CorrelationData=q.prop("CorrelationData")))
        r = req.expect()
        assert (r.payload, r.prop("CorrelationData")) == (b"pong", b"\x01\x02corr")


# User properties are forwarded unaltered and in order, duplicates included, with the
# Content Type [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20].
def test_user_properties_and_content_type_passed_through(broker):
    ups = [("b", "2"), ("a", "1"), ("b", "3"), ("ünï", "cödé")]
    with Client(broker, "up-s", V5) as s, Client(broker, "up-p", V5) as p:
        s.subscribe("v5/up", 1)
        p.publish("v5/up", b"x", qos=1,
                  properties=props(UserProperty=ups, ContentType="application/json"))
        m = s.expect()
        assert m.prop("UserProperty") == ups
        assert m.prop("ContentType") == "application/json"


# Payload Format Indicator 1 with a payload that is not valid UTF-8: PUBACK or DISCONNECT
# with 0x99 Payload format invalid [MQTT-3.3.2-4]; nothing is delivered.
def test_payload_format_invalid(broker):
    starling_only("2.0.11 does not check the payload format")
    with Client(broker, "pf-s", V5) as s:
        s.subscribe("v5/pfi", 1)
        c = RawClient(broker.port, 5)
        c.connect("pf-bad")
        c.publish("v5/pfi", b"\xff\xfe\xc3", qos=1, pid=1, plist=[(P_PAYLOAD_FORMAT, 1)])
        p = c.recv()
        assert p.type in (PUBACK, DISCONNECT) and p.rc == 0x99, p
        c.close()
        s.expect_nothing(0.3)


# A valid UTF-8 payload with Payload Format Indicator 1 is forwarded with the indicator
# [MQTT-3.3.2-4].
def test_payload_format_valid_forwarded(broker):
    with Client(broker, "pfv-s", V5) as s:
        s.subscribe("v5/pfv", 1)
        with raw_connect(broker.port, "pfv-p", 5) as c:
            ack = c.publish_acked("v5/pfv", "héllo".encode(), qos=1,
                                  plist=[(P_PAYLOAD_FORMAT, 1)])
            assert ack.rc == 0
        m = s.expect()
        assert m.payload == "héllo".encode() and m.prop("PayloadFormatIndicator") == 1


# Subscription Identifiers are returned on matching messages [MQTT-3.3.4-3]; overlapping
# subscriptions yield all their identifiers [MQTT-3.3.4-4] [MQTT-3.3.4-5].
def test_subscription_identifiers(broker):
    c = raw_connect(broker.port, "sid", 5)
    c.subscribe([("v5/sid/+", 1)], pid=1, plist=[(P_SUBSCRIPTION_ID, 7)])
    c.subscribe([("v5/sid/#", 1)], pid=2, plist=[(P_SUBSCRIPTION_ID, 300)])
    c.subscribe([("v5/sid/x", 1)], pid=3)
    with raw_connect(broker.port, "sid-p", 5) as p:
        p.publish_acked("v5/sid/x", b"m", qos=1)
    ids = []
    while True:
        try:
            m = c.recv(0.5)
        except TimeoutError:
            break
        assert m.type == PUBLISH
        ids += [v for k, v in m.props if k == P_SUBSCRIPTION_ID]
        c.ack(PUBACK, m.pid)
    assert sorted(ids) == [7, 300]
    c.disconnect()


# No Local: a client's own messages are not sent back to it [MQTT-3.8.3-3]; others' are.
def test_no_local(broker):
    with Client(broker, "nl", V5) as c, Client(broker, "nl-other", V5) as o:
        c.subscribe("v5/nl", options=sub_opts(1, no_local=True))
        c.publish("v5/nl", b"mine", qos=1)
        o.publish("v5/nl", b"theirs", qos=1)
        assert c.expect().payload == b"theirs"
        c.expect_nothing(0.3)


# Shared subscriptions: each message goes to one member of the group, round-robin
# (4.8.2); a plain subscriber still gets every message.
def test_shared_subscription_round_robin(broker):
    a = Client(broker, "sh-a", V5)
    b = Client(broker, "sh-b", V311)
    plain = Client(broker, "sh-plain", V5)
    try:
        a.subscribe("$share/g1/v5/sh/#", 1)
        b.subscribe("$share/g1/v5/sh/#", 1)
        plain.subscribe("v5/sh/#", 1)
        with Client(broker, "sh-p", V5) as p:
            for i in range(10):
                p.publish("v5/sh/t", b"%d" % i, qos=1)
        assert len(plain.expect_n(10)) == 10
        time.sleep(0.3)
        ga, gb = a.drain(), b.drain()
        assert sorted(int(m.payload) for m in ga + gb) == list(range(10))
        assert len(ga) == 5 and len(gb) == 5, (ga, gb)
        assert all(m.topic == "v5/sh/t" for m in ga + gb)
    finally:
        for c in (a, b, plain):
            c.disconnect()


# Two groups sharing a filter each get every message once.
def test_shared_subscription_groups_independent(broker):
    a = Client(broker, "sg-a", V5)
    b = Client(broker, "sg-b", V5)
    try:
        a.subscribe("$share/ga/v5/sg", 1)
        b.subscribe("$share/gb/v5/sg", 1)
        with Client(broker, "sg-p", V5) as p:
            for i in range(4):
                p.publish("v5/sg", b"%d" % i, qos=1)
        assert [m.payload for m in a.expect_n(4)] == [b"0", b"1", b"2", b"3"]
        assert [m.payload for m in b.expect_n(4)] == [b"0", b"1", b"2", b"3"]
    finally:
        a.disconnect()
        b.disconnect()


# AUTH: a CONNECT with an Authentication Method the broker does not support gets CONNACK
# 0x8C Bad authentication method and the connection is closed [MQTT-4.12.0-1].
def test_unknown_auth_method(broker):
    c = RawClient(broker.port, 5)
    c.send(connect_pkt("auth", 5, plist=[(P_AUTH_METHOD, "X-NO-SUCH-METHOD")]))
    got = c.expect_closed()
    assert got and got[0].type == CONNACK and got[0].rc == 0x8C, got
    c.close()


# Reason strings: a DISCONNECT for a protocol error carries a human-readable Reason String;
# with Request Problem Information 0 the broker sends none on acknowledgements
# [MQTT-3.1.2-29].
def test_reason_string_on_disconnect(broker):
    starling_only("Mosquitto 2.0.11 sends no reason strings")
    c = RawClient(broker.port, 5)
    c.connect("rs")
    c.publish("t", b"x", plist=[(P_TOPIC_ALIAS, 65535)])
    got = c.expect_closed()
    assert got and got[-1].type == DISCONNECT and got[-1].rc == 0x94
    assert got[-1].prop(P_REASON_STRING), got[-1].props
    c.close()


# Request Problem Information 0: no Reason String or User Property on a PUBACK with an error
# [MQTT-3.1.2-29].
def test_request_problem_information_zero():
    with Broker({"acl_file": "/dev/null"}) as b:
        c = RawClient(b.port, 5)
        c.connect("rpi", plist=[(P_REQUEST_PROBLEM_INFO, 0)])
        ack = c.publish_acked("denied/topic", b"x", qos=1)
        assert ack.rc == 0x87
        assert ack.prop(P_REASON_STRING) is None and ack.prop(P_USER_PROPERTY) is None
        c.disconnect()



# v5 reason codes on acknowledgements: PUBACK/PUBREC 0x10 No matching subscribers when no
# subscription matched (3.4.2.1); UNSUBACK 0x11 No subscription existed (3.11.3).
def test_no_matching_subscribers_and_no_subscription_existed(broker):
    from rawmqtt import UNSUBACK, unsubscribe_pkt
    with raw_connect(broker.port, "rc-acks", 5) as c:
        assert c.publish_acked("v5/nobody/here", b"x", qos=1).rc == 0x10
        # 0x10 is a MAY; 2.0.11 uses it on PUBACK only
        want2 = (0x00, 0x10) if is_mosquitto() else (0x10,)
        assert c.publish_acked("v5/nobody/here", b"x", qos=2, pid=2).rc in want2
        c.subscribe([("v5/rc/yes", 1)])
        c.send(unsubscribe_pkt(5, ["v5/rc/yes", "v5/rc/never"], version=5))
        u = c.expect(UNSUBACK)
        assert (u.pid, u.codes) == (5, [0x00, 0x11])
        c.disconnect()
