"""Bad input on raw sockets: each malformed packet or protocol violation gets the reason code
the specification names (v5: DISCONNECT first; 3.1.1: close), one log line with client id
and address; the broker keeps serving others and keeps nothing of the bad packet."""

import random

import pytest

from harness import Broker, is_mosquitto, starling_only
from pahoclient import V5, Client
from rawmqtt import (CONNACK, DISCONNECT, P_PAYLOAD_FORMAT, P_SUBSCRIPTION_ID, PUBLISH,
                     PUBREL, SUBSCRIBE, UNSUBSCRIBE, RawClient, connect_pkt, mstr, packet,
                     props, publish_pkt, raw_connect, u16, varint)

MALFORMED, PROTOCOL, TOPIC_INVALID = 0x81, 0x82, 0x90


def _sub_body(version, filters, pid=1, plist=None):
    body = u16(pid) + (props(plist) if version == 5 else b"")
    for f, o in filters:
        body += mstr(f) + bytes([o])
    return body


# name -> (build(version) -> bytes sent after a successful CONNECT, allowed v5 reason codes)
CASES = {
    # PUBLISH with both QoS bits set [MQTT-3.3.1-4]
    "publish_qos3": (lambda v: packet(PUBLISH, 0x06, mstr("mal/q3") + u16(1) +
                                      (b"\x00" if v == 5 else b"") + b"x"), (MALFORMED,)),
    # retained PUBLISH with QoS 3: must not become a retained message either
    "publish_qos3_retain": (lambda v: packet(PUBLISH, 0x07, mstr("mal/ret") + u16(1) +
                                             (b"\x00" if v == 5 else b"") + b"x"),
                            (MALFORMED,)),
    # wildcard in a topic name [MQTT-3.3.2-2]
    "publish_wildcard_topic": (lambda v: publish_pkt("mal/+/x", b"x", version=v),
                               (TOPIC_INVALID,)),
    # topic that is not valid UTF-8 [MQTT-1.5.4-1]
    "publish_bad_utf8_topic": (lambda v: packet(PUBLISH, 0, mstr(b"mal/\xff\xfe") +
                                                (b"\x00" if v == 5 else b"")), (MALFORMED,)),
    # topic with U+0000 [MQTT-1.5.4-2]
    "publish_nul_in_topic": (lambda v: packet(PUBLISH, 0, mstr(b"mal/\x00x") +
                                              (b"\x00" if v == 5 else b"")), (MALFORMED,)),
    # topic length beyond the packet
    "publish_truncated_topic": (lambda v: packet(PUBLISH, 0, u16(40) + b"mal"), (MALFORMED,)),
    # QoS 1 PUBLISH with packet id 0 [MQTT-2.2.1-3]
    "publish_packet_id_zero": (lambda v: publish_pkt("mal/pid0", b"x", qos=1, pid=0, version=v),
                               (MALFORMED, PROTOCOL)),
    # remaining length encoded in five bytes (1.5.5)
    "remaining_length_5_bytes": (lambda v: b"\x30\xff\xff\xff\xff\x01", (MALFORMED,)),
    # a second CONNECT [MQTT-3.1.0-2]
    "second_connect": (lambda v: connect_pkt("again", v), (PROTOCOL,)),
    # SUBSCRIBE with reserved flags 0000 instead of 0010 [MQTT-3.8.1-1]
    "subscribe_bad_flags": (lambda v: packet(SUBSCRIBE, 0x00, _sub_body(v, [("mal/s", 0)])),
                            (MALFORMED,)),
    # SUBSCRIBE without any topic filter [MQTT-3.8.3-3] (v5: protocol error)
    "subscribe_no_filters": (lambda v: packet(SUBSCRIBE, 0x02, _sub_body(v, [])),
                             (PROTOCOL, MALFORMED)),
    # subscription options with reserved bits set [MQTT-3.8.3-5]
    "subscribe_reserved_option_bits": (lambda v: packet(SUBSCRIBE, 0x02,
                                                        _sub_body(v, [("mal/o", 0xC0)])),
                                       (MALFORMED, PROTOCOL)),
    # a valid filter followed by a truncated one: nothing of the packet may be applied
    "subscribe_truncated_second_filter": (lambda v: packet(
        SUBSCRIBE, 0x02, _sub_body(v, [("mal/sub", 1)]) + u16(30) + b"ab"), (MALFORMED,)),
    # UNSUBSCRIBE without any topic filter [MQTT-3.10.3-2]
    "unsubscribe_no_filters": (lambda v: packet(UNSUBSCRIBE, 0x02, u16(1) +
                                                (b"\x00" if v == 5 else b"")),
                               (PROTOCOL, MALFORMED)),
    # PUBREL with reserved flags 0000 [MQTT-3.6.1-1]
    "pubrel_bad_flags": (lambda v: packet(PUBREL, 0x00, u16(1)), (MALFORMED,)),
    # reserved packet type 0 (2.1.2)
    "reserved_packet_type_0": (lambda v: b"\x00\x00", (MALFORMED, PROTOCOL)),
    # reserved packet type 15 (AUTH) sent by a 3.1.1 client, or AUTH in a v5 session that
    # did not start enhanced authentication (4.12: protocol error; 0x8C names the method)
    "auth_packet_unexpected": (lambda v: b"\xf0\x00", (PROTOCOL, MALFORMED, 0x8C)),
}

V5_CASES = {
    # a property twice (2.2.2.2: Protocol Error)
    "publish_duplicate_property": (lambda v: publish_pkt(
        "mal/dup", b"x", version=5, plist=[(P_PAYLOAD_FORMAT, 0), (P_PAYLOAD_FORMAT, 0)]),
        (PROTOCOL, MALFORMED)),
    # Subscription Identifier 0 (3.8.2.1.2: Protocol Error)
    "subscribe_id_zero": (lambda v: packet(SUBSCRIBE, 0x02, _sub_body(
        5, [("mal/sid", 0)], plist=[(P_SUBSCRIPTION_ID, 0)])), (PROTOCOL, MALFORMED)),
    # property length beyond the packet
    "publish_property_length_overrun": (lambda v: packet(PUBLISH, 0, mstr("mal/pl") +
                                                         varint(50) + b"\x01\x00"),
                                        (MALFORMED,)),
    # shared subscription with No Local [MQTT-3.8.3-4]
    "shared_no_local": (lambda v: packet(SUBSCRIBE, 0x02,
                                         _sub_body(5, [("$share/g/mal", 0x04)])),
                        (PROTOCOL,)),
}

ALL = [(n, 4) for n in CASES] + [(n, 5) for n in CASES] + [(n, 5) for n in V5_CASES]


@pytest.fixture(scope="module")
def broker():
    with Broker() as b:
        yield b


@pytest.fixture(scope="module")
def bystander(broker):
    c = Client(broker, "bystander", V5)
    c.subscribe("mal/#", 1)
    yield c
    c.disconnect()


def _log_line(b, cid):
    """The broker wrote a line naming the client id (and, for Starling, its address)."""
    def found(text):
        for line in text.splitlines():
            if cid in line and (is_mosquitto() or "127.0.0.1" in line):
                return True
        return False
    b.wait_log(found)


@pytest.mark.parametrize("name,version", ALL, ids=["%s-v%d" % a for a in ALL])
def test_malformed_packet(broker, bystander, name, version):
    build, codes = CASES.get(name) or V5_CASES[name]
    if name == "shared_no_local":
        starling_only("2.0.11 accepts No Local on a shared subscription")
    cid = "mal-%s-%d" % (name, version)
    c = RawClient(broker.port, version)
    c.connect(cid)
    c.send(build(version))
    got = c.expect_closed()
    c.close()
    if version == 5:
        if not is_mosquitto():
            assert got and got[-1].type == DISCONNECT, (name, got)
            assert got[-1].rc in codes, (name, hex(got[-1].rc))
        else:  # 2.0.11 sometimes closes without DISCONNECT
            assert all(p.type == DISCONNECT and p.rc >= 0x80 for p in got), got
    else:
        assert got == [], (name, got)
    _log_line(broker, cid)
    # The broker keeps serving: the bystander is still connected and gets messages.
    with raw_connect(broker.port, "after-" + cid, 4) as p:
        p.publish_acked("mal/alive", cid.encode(), qos=1)
    assert bystander.expect(topic="mal/alive").payload == cid.encode()
    assert not bystander.disconnects


# Nothing of a rejected packet is kept: no retained message from the bad retained PUBLISH,
# no subscription from the truncated SUBSCRIBE of a persistent session.
def test_malformed_packets_leave_no_state(broker):
    c = RawClient(broker.port, 4)
    c.connect("mal-state", clean=False)
    c.send(CASES["publish_qos3_retain"][0](4))
    c.expect_closed()
    c.close()
    c = RawClient(broker.port, 4)
    c.connect("mal-state", clean=False)
    c.send(CASES["subscribe_truncated_second_filter"][0](4))
    c.expect_closed()
    c.close()
    c = RawClient(broker.port, 4)
    c.connect("mal-state", clean=False)
    assert c.subscribe([("mal/ret", 0)], pid=2) == [0]
    c.expect_nothing(0.3)          # no retained message
    if not is_mosquitto():  # 2.0.11 applies the filters read before the error
        with raw_connect(broker.port, "mal-state-p", 4) as p:
            p.publish_acked("mal/sub", b"x", qos=1)
        c.expect_nothing(0.3)      # no subscription to mal/sub
    c.disconnect()


# A packet other than CONNECT first [MQTT-3.1.0-1] is closed without any answer.
@pytest.mark.parametrize("first", [publish_pkt("mal/first", b"x"), b"\xc0\x00",
                                   b"\x82\x06\x00\x01\x00\x01a\x00"])
def test_first_packet_not_connect(broker, first):
    c = RawClient(broker.port, 4)
    c.send(first)
    assert c.expect_closed() == []
    c.close()


# CONNECT errors: bad protocol name [MQTT-3.1.2-1], reserved flag [MQTT-3.1.2-3], will QoS
# without will flag [MQTT-3.1.2-13], will QoS 3 [MQTT-3.1.2-14], password without user name
# in 3.1.1 [MQTT-3.1.2-22]: closed, at most with a CONNACK refusal.
@pytest.mark.parametrize("name,pkt", [
    ("bad_protocol_name", packet(1, 0, mstr("MQTX") + b"\x04\x02\x00\x3c" + mstr("c"))),
    ("reserved_flag", packet(1, 0, mstr("MQTT") + b"\x04\x03\x00\x3c" + mstr("c"))),
    ("will_qos_without_will", packet(1, 0, mstr("MQTT") + b"\x04\x0a\x00\x3c" + mstr("c"))),
    ("will_qos3", packet(1, 0, mstr("MQTT") + b"\x04\x1e\x00\x3c" + mstr("c") + mstr("w") +
                         mstr("p"))),
    ("password_without_username", packet(1, 0, mstr("MQTT") + b"\x04\x42\x00\x3c" + mstr("c") +
                                         mstr("pw"))),
    ("truncated_connect", packet(1, 0, mstr("MQTT") + b"\x04\x02")),
])
def test_bad_connect(broker, name, pkt):
    c = RawClient(broker.port, 4)
    c.send(pkt)
    got = c.expect_closed()
    c.close()
    assert all(p.type == CONNACK and p.rc != 0 for p in got), got


# An unsupported protocol level gets CONNACK 0x01 (3.1.1) [MQTT-3.1.2-2] / 0x84 (v5).
@pytest.mark.parametrize("level", [2, 6, 255])
def test_unsupported_protocol_level(broker, level):
    c = RawClient(broker.port, 4)
    c.send(packet(1, 0, mstr("MQTT") + bytes([level, 0x02]) + b"\x00\x3c" + mstr("lvl")))
    got = c.expect_closed()
    c.close()
    assert len(got) <= 1
    if got:
        assert got[0].type == CONNACK and got[0].rc in (0x01, 0x84), got


# Random garbage after CONNECT never crashes the broker (seeded, printed on failure).
@pytest.mark.parametrize("seed", range(8))
def test_random_garbage(broker, bystander, seed):
    rnd = random.Random(seed)
    for version in (4, 5):
        c = RawClient(broker.port, version)
        c.connect("garbage-%d-%d" % (seed, version))
        data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200)))
        try:
            c.send(data)
            c.expect_nothing(0.1)
        except Exception:
            pass
        c.close()
    with raw_connect(broker.port, "after-garbage-%d" % seed, 4) as p:
        p.publish_acked("mal/alive", b"g%d" % seed, qos=1)
    assert bystander.expect(topic="mal/alive").payload == b"g%d" % seed
