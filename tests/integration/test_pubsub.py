"""Publish/subscribe: QoS 0/1/2 in both directions for MQTT 3.1, 3.1.1 and 5.0."""

import select

import pytest

from harness import WAIT, Broker, starling_only
from pahoclient import PROTOCOLS, PROTO_IDS, V5, Client, mosquitto_pub, mosquitto_sub_start


@pytest.fixture(scope="module")
def broker():
    with Broker() as b:
        yield b


# A message published at QoS p to a subscription granted QoS s is delivered at min(p, s)
# [MQTT-3.8.4-8] (v5: 3.8.4), for every protocol version on both sides.
@pytest.mark.parametrize("proto", PROTOCOLS, ids=PROTO_IDS.get)
@pytest.mark.parametrize("pub_qos", [0, 1, 2])
@pytest.mark.parametrize("sub_qos", [0, 1, 2])
def test_delivery_at_minimum_qos(broker, proto, pub_qos, sub_qos):
    topic = "ps/%d/%d/%d" % (proto, pub_qos, sub_qos)
    with Client(broker, "s-%s" % topic, proto) as s, Client(broker, "p-%s" % topic, proto) as p:
        assert s.subscribe(topic, sub_qos) == [sub_qos]
        p.publish(topic, b"hello", qos=pub_qos)
        m = s.expect()
        assert (m.topic, m.payload, m.qos, m.retain) == (topic, b"hello", min(pub_qos, sub_qos),
                                                        False)
        s.expect_nothing(0.1)


# Messages between clients of different protocol versions keep topic and payload.
@pytest.mark.parametrize("pub_proto", PROTOCOLS, ids=PROTO_IDS.get)
@pytest.mark.parametrize("sub_proto", PROTOCOLS, ids=PROTO_IDS.get)
def test_cross_version_delivery(broker, pub_proto, sub_proto):
    topic = "xv/%d/%d" % (pub_proto, sub_proto)
    with Client(broker, "s" + topic, sub_proto) as s, Client(broker, "p" + topic, pub_proto) as p:
        s.subscribe("xv/+/%d" % sub_proto, 2)
        p.publish(topic, b"\x00\xffbinary", qos=2)
        m = s.expect()
        assert (m.topic, m.payload, m.qos) == (topic, b"\x00\xffbinary", 2)


# Messages from one publisher on one topic arrive in order at QoS 0, 1 and 2 (4.6).
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_order_preserved(broker, qos):
    topic = "order/%d" % qos
    with Client(broker, "os%d" % qos, V5) as s, Client(broker, "op%d" % qos, V5) as p:
        s.subscribe(topic, qos)
        for i in range(50):
            p.publish(topic, str(i), qos=qos, wait=False)
        got = s.expect_n(50)
        assert [m.payload for m in got] == [str(i).encode() for i in range(50)]


# Wildcards: '+' matches one level, '#' matches the parent and any number of levels (4.7).
def test_wildcards(broker):
    with Client(broker, "wc-s", V5) as s, Client(broker, "wc-p", V5) as p:
        s.subscribe([("wc/+/x", 0), ("wd/#", 0)])
        for t in ["wc/a/x", "wc/a/b/x", "wc/x", "wd", "wd/1/2/3", "wdx/1"]:
            p.publish(t, t, qos=1)
        got = sorted(m.topic for m in s.expect_n(3))
        assert got == ["wc/a/x", "wd", "wd/1/2/3"]
        s.expect_nothing(0.2)


# Topics starting with $ are not matched by filters starting with a wildcard [MQTT-4.7.2-1].
def test_dollar_topics_not_matched_by_wildcards(broker):
    with Client(broker, "dl-s", V5) as s, Client(broker, "dl-p", V5) as p:
        s.subscribe([("#", 0), ("+/dl", 0)])
        p.publish("$dl/dl", "x", qos=1)
        p.publish("nd/dl", "y", qos=1)
        got = s.expect(topic="nd/dl")
        assert got.payload == b"y"
        s.expect_nothing(0.2, topic="$dl/dl")


# After UNSUBSCRIBE no more messages are sent for that filter (3.10.4).
def test_unsubscribe_stops_delivery(broker):
    with Client(broker, "us-s", V5) as s, Client(broker, "us-p", V5) as p:
        s.subscribe("us/t", 1)
        p.publish("us/t", "1", qos=1)
        s.expect()
        s.unsubscribe("us/t")
        p.publish("us/t", "2", qos=1)
        s.expect_nothing(0.3)


# When a client's subscriptions overlap, the message is delivered at the maximum QoS of the
# matching subscriptions [MQTT-3.3.5-1]. The server MAY send one further copy per additional
# matching subscription (Mosquitto does), so: some copy arrives at QoS 2, no copy is foreign.
@pytest.mark.parametrize("proto", PROTOCOLS, ids=PROTO_IDS.get)
def test_overlapping_subscriptions_max_qos(broker, proto):
    if proto != V5:
        starling_only("2.0.11 sends a 3.x client one copy at an arbitrary matching QoS")
    with Client(broker, "ov-s%d" % proto, proto) as s, Client(broker, "ov-p%d" % proto, proto) as p:
        s.subscribe([("ov%d/#" % proto, 0), ("ov%d/+/c" % proto, 2), ("ov%d/b/+" % proto, 1)])
        p.publish("ov%d/b/c" % proto, "m", qos=2)
        got = s.expect()
        copies = [got]
        while got.qos != 2:
            got = s.expect()
            copies.append(got)
        copies += s.drain()
        assert len(copies) <= 3
        assert {m.topic for m in copies} == {"ov%d/b/c" % proto}


# Subscribing again with the same filter replaces the subscription, and no duplicate copy
# is delivered [MQTT-3.8.4-3].
def test_resubscribe_replaces(broker):
    with Client(broker, "rs-s", V5) as s, Client(broker, "rs-p", V5) as p:
        s.subscribe("rs/t", 2)
        assert s.subscribe("rs/t", 0) == [0]
        p.publish("rs/t", "m", qos=2)
        assert s.expect().qos == 0
        s.expect_nothing(0.2)


# mosquitto_sub and mosquitto_pub work unchanged against the broker, all three versions.
@pytest.mark.parametrize("version", ["mqttv31", "mqttv311", "mqttv5"])
def test_mosquitto_clients(broker, version):
    with Client(broker, "mc-probe-" + version, V5) as probe:
        probe.publish("mc/%s/ready" % version, "r", qos=1, retain=True)
    sub = mosquitto_sub_start(broker.port, "mc/%s/#" % version, 2, qos=1, version=version)
    try:
        # the retained marker arrives once the subscription is in place
        r, _, _ = select.select([sub.stdout], [], [], WAIT)
        assert r, "mosquitto_sub received nothing"
        assert sub.stdout.readline().strip() == "mc/%s/ready r" % version
        mosquitto_pub(broker.port, "mc/%s/x" % version, "hello world", qos=1, version=version)
        out, err = sub.communicate(timeout=WAIT)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    assert sub.returncode == 0, err
    assert out.splitlines() == ["mc/%s/x hello world" % version]


# upgrade_outgoing_qos true: messages go out at the subscription's QoS even when published
# lower (mosquitto.conf(5)).
def test_upgrade_outgoing_qos():
    with Broker({"upgrade_outgoing_qos": "true"}) as b:
        with Client(b, "uq-s", V5) as s, Client(b, "uq-p", V5) as p:
            s.subscribe("uq", 2)
            p.publish("uq", "m", qos=0)
            assert s.expect().qos == 2


# max_qos 1: subscriptions are granted at most QoS 1 and the v5 CONNACK says Maximum QoS 1.
def test_max_qos():
    with Broker({"max_qos": 1}) as b:
        with Client(b, "mq-s", V5) as s, Client(b, "mq3", 4) as s3, Client(b, "mq-p", V5) as p:
            assert s.connack_props.MaximumQoS == 1
            assert s.subscribe("mq", 2) == [1]
            assert s3.subscribe("mq", 2) == [1]
            p.publish("mq", "m", qos=1)
            assert s.expect().qos == 1
            assert s3.expect().qos == 1


# Pings are answered: a client with a 1 s keepalive stays connected across several intervals.
def test_ping(broker):
    c = Client(broker, "ping", V5, keepalive=1)
    try:
        import time
        time.sleep(2.2)
        assert c.c.is_connected()
        assert not c.disconnects
    finally:
        c.disconnect()
