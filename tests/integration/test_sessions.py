"""Sessions: 3.x clean session 0 and v5 session expiry, offline queues, session present,
takeover, zero-length client ids."""

import time

import pytest

from harness import Broker, is_mosquitto
from rawmqtt import (DISCONNECT, P_ASSIGNED_CLIENT_ID, P_SESSION_EXPIRY, PINGREQ, PINGRESP,
                     PUBACK, PUBLISH, RawClient, packet, raw_connect)

VERSIONS = [3, 4, 5]
VIDS = {3: "v31", 4: "v311", 5: "v5"}


def persistent(version, expiry=300):
    if version == 5:
        return {"clean": False, "plist": [(P_SESSION_EXPIRY, expiry)]}
    return {"clean": False}


@pytest.fixture(scope="module")
def broker():
    with Broker() as b:
        yield b


def _publish(port, topic, payloads, qos=1):
    with raw_connect(port, "", 5) as p:
        for i, pl in enumerate(payloads):
            if qos:
                p.publish_acked(topic, pl, qos=qos, pid=i + 1)
            else:
                p.publish(topic, pl)
        p.disconnect()


# A persistent session keeps its subscriptions and queues QoS 1/2 messages while the client
# is offline; they are delivered on reconnect with Session Present 1 [MQTT-3.1.2-4]
# [MQTT-3.1.2-5] [MQTT-3.2.2-2].
@pytest.mark.parametrize("version", VERSIONS, ids=VIDS.get)
def test_persistent_session_keeps_subscriptions_and_queue(broker, version):
    cid, topic = "ps-%d" % version, "sess/q/%d" % version
    c = raw_connect(broker.port, cid, version, **persistent(version))
    c.subscribe([(topic, 1)])
    c.disconnect()
    _publish(broker.port, topic, [b"a", b"b", b"c"])
    c = RawClient(broker.port, version)
    ack = c.connect(cid, **persistent(version))
    assert ack.session_present or version == 3  # 3.1 has no Session Present flag
    got = []
    for _ in range(3):
        m = c.expect(PUBLISH)
        c.ack(PUBACK, m.pid)
        got.append(m.payload)
    assert got == [b"a", b"b", b"c"]
    # the subscription is still live
    _publish(broker.port, topic, [b"d"])
    assert c.expect(PUBLISH).payload == b"d"
    c.disconnect()


# QoS 0 messages are not queued for an offline client unless queue_qos0_messages is true.
@pytest.mark.parametrize("queue", [False, True])
def test_queue_qos0_messages(queue):
    with Broker({"queue_qos0_messages": queue}) as b:
        c = raw_connect(b.port, "q0", 4, clean=False)
        c.subscribe([("q0", 1)])
        c.disconnect()
        _publish(b.port, "q0", [b"zero"], qos=0)
        _publish(b.port, "q0", [b"one"], qos=1)
        c = raw_connect(b.port, "q0", 4, clean=False)
        first = c.expect(PUBLISH)
        if queue:
            assert first.payload == b"zero"
            first = c.expect(PUBLISH)
        assert first.payload == b"one"
        c.ack(PUBACK, first.pid)
        c.expect_nothing(0.3)
        c.disconnect()


# Clean session / Clean Start discards the previous session: Session Present 0, no old
# subscriptions or messages [MQTT-3.1.2-6] [MQTT-3.2.2-1] (v5 [MQTT-3.1.2-4]).
@pytest.mark.parametrize("version", VERSIONS, ids=VIDS.get)
def test_clean_start_discards_session(broker, version):
    cid, topic = "cs-%d" % version, "sess/clean/%d" % version
    c = raw_connect(broker.port, cid, version, **persistent(version))
    c.subscribe([(topic, 1)])
    c.disconnect()
    _publish(broker.port, topic, [b"old"])
    c = RawClient(broker.port, version)
    ack = c.connect(cid, clean=True)
    assert not ack.session_present
    c.expect_nothing(0.3)
    _publish(broker.port, topic, [b"new"])
    c.expect_nothing(0.3)
    c.disconnect()


# v5: a session with Session Expiry Interval 0 (the default) ends with the connection.
def test_v5_session_expiry_zero_ends_with_connection(broker):
    c = raw_connect(broker.port, "se0", 5, clean=False)
    c.subscribe([("sess/se0", 1)])
    c.disconnect()
    c = RawClient(broker.port, 5)
    assert not c.connect("se0", clean=False).session_present
    c.disconnect()


# v5: the session is removed once its expiry interval has passed after disconnect
# [MQTT-3.1.2-23].
def test_v5_session_expires(broker):
    c = raw_connect(broker.port, "se1", 5, clean=False, plist=[(P_SESSION_EXPIRY, 1)])
    c.subscribe([("sess/se1", 1)])
    c.disconnect()
    c = RawClient(broker.port, 5)
    assert c.connect("se1", clean=False, plist=[(P_SESSION_EXPIRY, 1)]).session_present
    c.disconnect()
    time.sleep(2.5)
    c = RawClient(broker.port, 5)
    assert not c.connect("se1", clean=False).session_present
    c.disconnect()


# v5: DISCONNECT may change the session expiry: setting 0 ends the session now.
def test_v5_disconnect_sets_session_expiry(broker):
    c = raw_connect(broker.port, "sed", 5, **persistent(5))
    c.subscribe([("sess/sed", 1)])
    c.disconnect(rc=0, plist=[(P_SESSION_EXPIRY, 0)])
    c = RawClient(broker.port, 5)
    assert not c.connect("sed", clean=False).session_present
    c.disconnect()


# v5: a DISCONNECT setting a non-zero expiry when CONNECT had 0 is a protocol error
# [MQTT-3.14.2-2]: the broker answers DISCONNECT 0x82.
def test_v5_disconnect_expiry_from_zero_is_protocol_error(broker):
    c = raw_connect(broker.port, "sez", 5)
    c.send(bytes([0xE0, 0x07, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x3C]))
    got = c.expect_closed()
    assert got and got[-1].type == DISCONNECT and got[-1].rc == 0x82, got
    c.close()


# max_queued_messages bounds the offline queue: messages beyond it are dropped.
def test_max_queued_messages():
    with Broker({"max_queued_messages": 3}) as b:
        c = raw_connect(b.port, "mq", 4, clean=False)
        c.subscribe([("mq", 1)])
        c.disconnect()
        _publish(b.port, "mq", [b"%d" % i for i in range(6)])
        c = raw_connect(b.port, "mq", 4, clean=False)
        got = []
        while True:
            try:
                m = c.recv(0.5)
            except TimeoutError:
                break
            got.append(m.payload)
            c.ack(PUBACK, m.pid)
        assert got == [b"0", b"1", b"2"]
        c.disconnect()


# max_queued_bytes bounds the offline queue by payload bytes as well.
def test_max_queued_bytes():
    with Broker({"max_queued_bytes": 250}) as b:
        c = raw_connect(b.port, "mqb", 4, clean=False)
        c.subscribe([("mqb", 1)])
        c.disconnect()
        _publish(b.port, "mqb", [bytes([65 + i]) * 100 for i in range(5)])
        c = raw_connect(b.port, "mqb", 4, clean=False)
        got = []
        while True:
            try:
                m = c.recv(0.5)
            except TimeoutError:
                break
            got.append(m.payload)
            c.ack(PUBACK, m.pid)
        assert 1 <= len(got) <= 3
        assert got == [bytes([65 + i]) * 100 for i in range(len(got))]
        c.disconnect()


# A second connection with the same client id takes the session over: the old connection
# is closed [MQTT-3.1.4-3], a v5 one with DISCONNECT 0x8E (Session taken over).
@pytest.mark.parametrize("version", VERSIONS, ids=VIDS.get)
def test_session_takeover(broker, version):
    cid, topic = "to-%d" % version, "sess/to/%d" % version
    old = raw_connect(broker.port, cid, version, **persistent(version))
    old.subscribe([(topic, 1)])
    new = RawClient(broker.port, version)
    ack = new.connect(cid, **persistent(version))
    assert ack.session_present or version == 3
    got = old.expect_closed()
    if version == 5 and not is_mosquitto():  # 2.0.11 closes without DISCONNECT
        assert got and got[-1].type == DISCONNECT and got[-1].rc == 0x8E, got
    else:
        assert got == []
    old.close()
    _publish(broker.port, topic, [b"to"])
    m = new.expect(PUBLISH)
    assert m.payload == b"to"
    new.ack(PUBACK, m.pid)
    new.disconnect(rc=0, plist=[(P_SESSION_EXPIRY, 0)] if version == 5 else None)


# A clean-session client that has only pinged since CONNACK (Starling keeps no session
# object for it until it sends more) is taken over like any other [MQTT-3.1.4-3]: the old
# connection is closed, a v5 one with DISCONNECT 0x8E, and the new one, clean or persistent,
# starts without a session, subscribes and receives.
@pytest.mark.parametrize("version", VERSIONS, ids=VIDS.get)
@pytest.mark.parametrize("keep", [False, True], ids=["clean", "persistent"])
def test_takeover_of_idle_clean_session(broker, version, keep):
    cid, topic = "idle-%d-%d" % (version, keep), "sess/idle/%d/%d" % (version, keep)
    old = raw_connect(broker.port, cid, version)
    old.send(packet(PINGREQ, 0, b""))
    old.expect(PINGRESP)
    new = RawClient(broker.port, version)
    ack = new.connect(cid, **(persistent(version) if keep else {}))
    assert not ack.session_present
    got = old.expect_closed()
    if version == 5 and not is_mosquitto():  # 2.0.11 closes without DISCONNECT
        assert got and got[-1].type == DISCONNECT and got[-1].rc == 0x8E, got
    else:
        assert got == []
    old.close()
    new.subscribe([(topic, 1)])
    _publish(broker.port, topic, [b"idle"])
    m = new.expect(PUBLISH)
    assert m.payload == b"idle"
    new.ack(PUBACK, m.pid)
    new.disconnect(rc=0, plist=[(P_SESSION_EXPIRY, 0)] if version == 5 else None)


# 3.1.1: a zero-length client id with clean session 1 is accepted [MQTT-3.1.3-6]; with clean
# session 0 it gets CONNACK 0x02 [MQTT-3.1.3-8].
@pytest.mark.parametrize("clean,rc", [(True, 0), (False, 2)])
def test_zero_length_client_id_v311(broker, clean, rc):
    c = RawClient(broker.port, 4)
    ack = c.connect("", clean=clean, expect_rc=rc)
    if rc:
        c.expect_closed()
    else:
        assert not ack.session_present
        c.subscribe([("zl", 0)])
    c.close()


# v5: a zero-length client id gets an Assigned Client Identifier in CONNACK
# [MQTT-3.1.3-7] [MQTT-3.2.2-16]; each connection a different one.
def test_zero_length_client_id_v5_assigned(broker):
    ids = []
    for _ in range(2):
        c = RawClient(broker.port, 5)
        ack = c.connect("")
        ids.append(ack.prop(P_ASSIGNED_CLIENT_ID))
        c.disconnect()
    assert all(ids) and ids[0] != ids[1]


# allow_zero_length_clientid false: 3.1.1 CONNACK 0x02, v5 CONNACK 0x85.
@pytest.mark.parametrize("version,rc", [(4, 0x02), (5, 0x85)])
def test_zero_length_client_id_refused(version, rc):
    with Broker({"allow_zero_length_clientid": "false"}) as b:
        if version == 5 and is_mosquitto():
            rc = 0x80  # 2.0.11 answers "unspecified error"
        c = RawClient(b.port, version)
        c.connect("", expect_rc=rc)
        c.expect_closed()
        c.close()


# MQTT 3.1 requires a client id of 1 to 23 characters: an empty one gets CONNACK 0x02
# (identifier rejected).
def test_zero_length_client_id_v31_rejected(broker):
    c = RawClient(broker.port, 3)
    c.connect("", clean=True, expect_rc=0x02)
    c.expect_closed()
    c.close()
