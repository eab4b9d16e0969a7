"""QoS 1 and 2 state machines on the wire (raw sockets): redelivery with DUP, packet id reuse,
PUBREL resend, exactly-once, Receive Maximum and Maximum Packet Size in both directions."""

import pytest

from harness import Broker, starling_only
from rawmqtt import (DISCONNECT, P_MAXIMUM_PACKET_SIZE, P_RECEIVE_MAXIMUM, P_SESSION_EXPIRY,
                     PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, RawClient, raw_connect)

VERSIONS = [4, 5]
VIDS = {4: "v311", 5: "v5"}


def _persistent(version):
    """CONNECT arguments for a session that outlives the connection."""
    if version == 5:
        return {"clean": False, "plist": [(P_SESSION_EXPIRY, 300)]}
    return {"clean": False}


@pytest.fixture(scope="module")
def broker():
    with Broker({"max_inflight_messages": 10}) as b:
        yield b


# Unacknowledged QoS 1 messages are resent on reconnect of a persistent session, with the same
# packet id and DUP set [MQTT-4.4.0-1] [MQTT-3.3.1-1].
@pytest.mark.parametrize("version", VERSIONS, ids=VIDS.get)
def test_qos1_redelivered_with_dup_after_reconnect(broker, version):
    cid = "redeliver1-%d" % version
    s = raw_connect(broker.port, cid, version, **_persistent(version))
    s.subscribe([("rd1/%d" % version, 1)])
    with raw_connect(broker.port, "rd1p-%d" % version, version) as p:
        p.publish_acked("rd1/%d" % version, b"m1", qos=1, pid=3)
    first = s.expect(PUBLISH)
    assert (first.qos, first.dup, first.payload) == (1, False, b"m1")
    s.close()  # no PUBACK
    s = raw_connect(broker.port, cid, version, **_persistent(version))
    again = s.expect(PUBLISH)
    assert (again.qos, again.dup, again.pid, again.payload) == (1, True, first.pid, b"m1")
    s.ack(PUBACK, again.pid)
    s.expect_nothing(0.3)
    s.disconnect()


# An unacknowledged QoS 2 PUBLISH is resent with DUP; after PUBREC the broker resends PUBREL
# (not the PUBLISH) on reconnect [MQTT-4.4.0-1]; PUBCOMP ends the flow.
@pytest.mark.parametrize("version", VERSIONS, ids=VIDS.get)
def test_qos2_publish_and_pubrel_resent_after_reconnect(broker, version):
    cid = "redeliver2-%d" % version
    topic = "rd2/%d" % version
    s = raw_connect(broker.port, cid, version, **_persistent(version))
    s.subscribe([(topic, 2)])
    with raw_connect(broker.port, "rd2p-%d" % version, version) as p:
        p.publish_acked(topic, b"m2", qos=2, pid=5)
    first = s.expect(PUBLISH)
    assert first.qos == 2 and not first.dup
    s.close()
    s = raw_connect(broker.port, cid, version, **_persistent(version))
    again = s.expect(PUBLISH)
    assert (again.dup, again.pid, again.payload) == (True, first.pid, b"m2")
    s.ack(PUBREC, again.pid)
    rel = s.expect(PUBREL)
    assert rel.pid == again.pid and rel.flags == 0x02
    s.close()  # no PUBCOMP
    s = raw_connect(broker.port, cid, version, **_persistent(version))
    rel2 = s.expect(PUBREL)
    assert rel2.pid == again.pid
    s.ack(PUBCOMP, rel2.pid)
    s.expect_nothing(0.3)
    s.disconnect()


# A packet id becomes free for reuse once its flow completes (PUBACK, PUBCOMP): the same id
# then carries a new message [MQTT-2.2.1-3] (v5: 2.2.1).
@pytest.mark.parametrize("version", VERSIONS, ids=VIDS.get)
@pytest.mark.parametrize("qos", [1, 2])
def test_packet_id_reuse(broker, version, qos):
    topic = "reuse/%d/%d" % (version, qos)
    with raw_connect(broker.port, "reuse-s%d%d" % (version, qos), version) as s, \
            raw_connect(broker.port, "reuse-p%d%d" % (version, qos), version) as p:
        s.subscribe([(topic, 0)])
        for payload in (b"one", b"two", b"three"):
            ack = p.publish_acked(topic, payload, qos=qos, pid=1)
            assert ack.pid == 1 and ack.rc == 0
            assert s.expect(PUBLISH).payload == payload


# QoS 2 inbound is exactly once: a PUBLISH resent with DUP before PUBREL is not delivered
# again [MQTT-4.3.3-10] (v3.1.1: 4.3.3 method B), and each copy gets a PUBREC.
@pytest.mark.parametrize("version", VERSIONS, ids=VIDS.get)
def test_qos2_exactly_once_with_duplicate_publish(broker, version):
    topic = "eo/%d" % version
    with raw_connect(broker.port, "eo-s%d" % version, version) as s, \
            raw_connect(broker.port, "eo-p%d" % version, version) as p:
        s.subscribe([(topic, 0)])
        p.publish(topic, b"once", qos=2, pid=9)
        assert p.expect(PUBREC).pid == 9
        p.publish(topic, b"once", qos=2, pid=9, dup=True)
        assert p.expect(PUBREC).pid == 9
        p.ack(PUBREL, 9)
        assert p.expect(PUBCOMP).pid == 9
        assert s.expect(PUBLISH).payload == b"once"
        s.expect_nothing(0.3)


# A PUBREL resent after the PUBCOMP was lost is answered with PUBCOMP again [MQTT-4.3.3-11]
# (v5: reason 0x92 Packet Identifier not found is allowed), and the message is not duplicated.
@pytest.mark.parametrize("version", VERSIONS, ids=VIDS.get)
def test_pubrel_resend_answered(broker, version):
    topic = "rel/%d" % version
    with raw_connect(broker.port, "rel-s%d" % version, version) as s, \
            raw_connect(broker.port, "rel-p%d" % version, version) as p:
        s.subscribe([(topic, 0)])
        p.publish_acked(topic, b"x", qos=2, pid=4)
        p.ack(PUBREL, 4)
        comp = p.expect(PUBCOMP)
        assert comp.pid == 4 and comp.rc in (0, 0x92)
        assert s.expect(PUBLISH).payload == b"x"
        s.expect_nothing(0.3)


# Outbound QoS 1/2 flows from broker to client use packet ids the client can acknowledge in
# any order; the broker never has more unacknowledged than the client's Receive Maximum
# (v5) [MQTT-3.3.4-9], and sends the rest as acknowledgements come in.
@pytest.mark.parametrize("qos", [1, 2])
def test_outbound_receive_maximum(broker, qos):
    if qos == 2:
        # 4.9: the send quota grows back on PUBCOMP, not on PUBREC
        starling_only("2.0.11 sends the next QoS 2 PUBLISH after PUBREC, before PUBCOMP")
    topic = "rm/out/%d" % qos
    s = raw_connect(broker.port, "rm-s%d" % qos, 5, plist=[(P_RECEIVE_MAXIMUM, 2)])
    s.subscribe([(topic, qos)])
    with raw_connect(broker.port, "rm-p%d" % qos, 5) as p:
        for i in range(5):
            p.publish_acked(topic, b"%d" % i, qos=qos, pid=i + 1)
    got = [s.expect(PUBLISH), s.expect(PUBLISH)]
    s.expect_nothing(0.3)
    assert len({m.pid for m in got}) == 2
    payloads = [m.payload for m in got]
    while len(payloads) < 5:
        m = got.pop(0)
        if qos == 1:
            s.ack(PUBACK, m.pid)
        else:
            s.ack(PUBREC, m.pid)
            assert s.expect(PUBREL).pid == m.pid
            s.ack(PUBCOMP, m.pid)
        n = s.expect(PUBLISH)
        got.append(n)
        payloads.append(n.payload)
    assert payloads == [b"0", b"1", b"2", b"3", b"4"]
    s.disconnect()


# max_inflight_messages bounds the messages in flight to a 3.1.1 client too.
def test_outbound_inflight_limit_v311():
    with Broker({"max_inflight_messages": 2}) as b:
        with raw_connect(b.port, "if-s", 4) as s, raw_connect(b.port, "if-p", 4) as p:
            s.subscribe([("if", 1)])
            for i in range(4):
                p.publish_acked("if", b"%d" % i, qos=1, pid=i + 1)
            a, c = s.expect(PUBLISH), s.expect(PUBLISH)
            s.expect_nothing(0.3)
            s.ack(PUBACK, a.pid)
            assert s.expect(PUBLISH).payload == b"2"
            del c


# The broker's CONNACK states Receive Maximum = max_inflight_messages; a client that sends
# more unacknowledged QoS 2 PUBLISH than that gets DISCONNECT 0x93 [MQTT-3.3.4-8].
def test_receive_maximum_exceeded_disconnect_0x93():
    starling_only("2.0.11 answers the excess PUBLISH with PUBREC 0x97 instead")
    with Broker({"max_inflight_messages": 3}) as b:
        c = RawClient(b.port, 5)
        ack = c.connect("rmx")
        assert ack.prop(P_RECEIVE_MAXIMUM) == 3
        for pid in range(1, 5):
            c.publish("rmx", b"x", qos=2, pid=pid)
        got = c.expect_closed()
        assert [p.type for p in got].count(PUBREC) <= 3
        assert got[-1].type == DISCONNECT and got[-1].rc == 0x93, got
        c.close()


# max_packet_size: CONNACK carries Maximum Packet Size; a bigger packet from a v5 client gets
# DISCONNECT 0x95 [MQTT-3.2.2-15], a 3.1.1 client is disconnected.
@pytest.mark.parametrize("version", VERSIONS, ids=VIDS.get)
def test_inbound_packet_too_large(version):
    with Broker({"max_packet_size": 200}) as b:
        c = RawClient(b.port, version)
        ack = c.connect("big%d" % version)
        if version == 5:
            assert ack.prop(P_MAXIMUM_PACKET_SIZE) == 200
        c.publish("big", b"x" * 300, qos=0)
        got = c.expect_closed()
        if version == 5:
            assert got and got[-1].type == DISCONNECT and got[-1].rc == 0x95, got
        else:
            assert got == []
        c.close()
        # the broker keeps serving
        with raw_connect(b.port, "after", version) as d:
            d.publish_acked("big", b"small", qos=1)


# A client's Maximum Packet Size is respected: a message too big for it is not sent
# (discarded as if delivered) [MQTT-3.1.2-24]; smaller ones are.
def test_outbound_maximum_packet_size(broker):
    s = raw_connect(broker.port, "mps-s", 5, plist=[(P_MAXIMUM_PACKET_SIZE, 64)])
    s.subscribe([("mps", 1)])
    with raw_connect(broker.port, "mps-p", 5) as p:
        p.publish_acked("mps", b"L" * 100, qos=1, pid=1)
        p.publish_acked("mps", b"small", qos=1, pid=2)
    m = s.expect(PUBLISH)
    assert m.payload == b"small"
    s.ack(PUBACK, m.pid)
    s.expect_nothing(0.3)
    s.disconnect()


# QoS 0 messages are delivered at most once and need no acknowledgement; a QoS 0 PUBLISH
# with a packet id is not expected, the broker sends QoS 0 without one [MQTT-2.2.1-2].
def test_qos0_has_no_packet_id(broker):
    with raw_connect(broker.port, "q0-s", 4) as s, raw_connect(broker.port, "q0-p", 4) as p:
        s.subscribe([("q0", 0)])
        p.publish("q0", b"abc", qos=0)
        m = s.expect(PUBLISH)
        assert m.qos == 0 and m.pid is None and m.payload == b"abc"


# message_size_limit: a bigger payload is dropped; 3.1.1 still gets its PUBACK, v5 gets
# PUBACK 0x83 Implementation specific error (mosquitto.conf(5); 0x95 is not a PUBACK reason
# code); the connection stays usable.
@pytest.mark.parametrize("version", VERSIONS, ids=VIDS.get)
def test_message_size_limit(version):
    with Broker({"message_size_limit": 100}) as b:
        with raw_connect(b.port, "msl-s", 4) as s, raw_connect(b.port, "msl-p", version) as p:
            s.subscribe([("msl", 1)])
            big = p.publish_acked("msl", b"x" * 200, qos=1, pid=1)
            assert big.rc == (0x83 if version == 5 else 0)
            assert p.publish_acked("msl", b"y" * 20, qos=1, pid=2).rc == 0
            m = s.expect(PUBLISH)
            assert m.payload == b"y" * 20
