"""Byte-exact MQTT over a raw socket: encoders, a packet reader, and parsers.

Used where a library client would hide the wire: malformed packets, DUP flags, packet ids,
Receive Maximum, topic aliases, reason codes on acknowledgements.
"""

import socket
import struct
import time

from harness import WAIT

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)

# Property identifiers (MQTT 5.0 section 2.2.2.2).
P_PAYLOAD_FORMAT = 0x01
P_MESSAGE_EXPIRY = 0x02
P_CONTENT_TYPE = 0x03
P_RESPONSE_TOPIC = 0x08
P_CORRELATION_DATA = 0x09
P_SUBSCRIPTION_ID = 0x0B
P_SESSION_EXPIRY = 0x11
P_ASSIGNED_CLIENT_ID = 0x12
P_SERVER_KEEP_ALIVE = 0x13
P_AUTH_METHOD = 0x15
P_AUTH_DATA = 0x16
P_REQUEST_PROBLEM_INFO = 0x17
P_WILL_DELAY = 0x18
P_REQUEST_RESPONSE_INFO = 0x19
P_RESPONSE_INFO = 0x1A
P_REASON_STRING = 0x1F
P_RECEIVE_MAXIMUM = 0x21
P_TOPIC_ALIAS_MAXIMUM = 0x22
P_TOPIC_ALIAS = 0x23
P_MAXIMUM_QOS = 0x24
P_RETAIN_AVAILABLE = 0x25
P_USER_PROPERTY = 0x26
P_MAXIMUM_PACKET_SIZE = 0x27
P_WILDCARD_SUB_AVAILABLE = 0x28
P_SUB_ID_AVAILABLE = 0x29
P_SHARED_SUB_AVAILABLE = 0x2A

_BYTE, _U16, _U32, _VAR, _STR, _BIN, _PAIR = range(7)
PROP_TYPES = {
    0x01: _BYTE, 0x02: _U32, 0x03: _STR, 0x08: _STR, 0x09: _BIN, 0x0B: _VAR, 0x11: _U32,
    0x12: _STR, 0x13: _U16, 0x15: _STR, 0x16: _BIN, 0x17: _BYTE, 0x18: _U32, 0x19: _BYTE,
    0x1A: _STR, 0x1C: _STR, 0x1F: _STR, 0x21: _U16, 0x22: _U16, 0x23: _U16, 0x24: _BYTE,
    0x25: _BYTE, 0x26: _PAIR, 0x27: _U32, 0x28: _BYTE, 0x29: _BYTE, 0x2A: _BYTE,
}


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def u16(n):
    return struct.pack("!H", n)


def u32(n):
    return struct.pack("!I", n)


def mstr(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    return u16(len(b)) + b


def props(plist):
    """Encode [(id, value), ...] as a property block with its length."""
    body = bytearray()
    for pid, val in plist or ():
        body += varint(pid)
        t = PROP_TYPES[pid]
        if t == _BYTE:
            body.append(val)
        elif t == _U16:
            body += u16(val)
        elif t == _U32:
            body += u32(val)
        elif t == _VAR:
            body += varint(val)
        elif t in (_STR, _BIN):
            body += mstr(val)
        else:
            body += mstr(val[0]) + mstr(val[1])
    return varint(len(body)) + bytes(body)


def packet(ptype, flags, body):
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + bytes(body)


def connect_pkt(client_id="", version=4, clean=True, keepalive=60, plist=None, will=None,
                username=None, password=None):
    """CONNECT; will = dict(topic, payload, qos=0, retain=False, props=[])."""
    name = b"MQIsdp" if version == 3 else b"MQTT"
    flags = 0x02 if clean else 0
    if will:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = mstr(name) + bytes([version, flags]) + u16(keepalive)
    if version == 5:
        body += props(plist)
    body += mstr(client_id)
    if will:
        if version == 5:
            body += props(will.get("props"))
        body += mstr(will["topic"]) + mstr(will["payload"])
    if username is not None:
        body += mstr(username)
    if password is not None:
        body += mstr(password)
    return packet(CONNECT, 0, body)


def publish_pkt(topic, payload=b"", qos=0, retain=False, dup=False, pid=None, version=4,
                plist=None):
    if isinstance(payload, str):
        payload = payload.encode()
    flags = (qos << 1) | (1 if retain else 0) | (0x08 if dup else 0)
    body = mstr(topic)
    if qos:
        body += u16(pid)
    if version == 5:
        body += props(plist)
    return packet(PUBLISH, flags, body + payload)


def ack_pkt(ptype, pid, version=4, rc=None, plist=None):
    """PUBACK/PUBREC/PUBREL/PUBCOMP/UNSUBACK-like: packet id [+ reason + props]."""
    flags = 0x02 if ptype == PUBREL else 0
    body = u16(pid)
    if version == 5 and (rc is not None or plist):
        body += bytes([rc or 0]) + props(plist)
    return packet(ptype, flags, body)


def subscribe_pkt(pid, filters, version=4, plist=None):
    """filters: [(filter, options_byte), ...] (options = QoS for 3.x)."""
    body = u16(pid)
    if version == 5:
        body += props(plist)
    for f, opt in filters:
        body += mstr(f) + bytes([opt])
    return packet(SUBSCRIBE, 0x02, body)


def unsubscribe_pkt(pid, filters, version=4):
    body = u16(pid) + (props([]) if version == 5 else b"")
    for f in filters:
        body += mstr(f)
    return packet(UNSUBSCRIBE, 0x02, body)


def disconnect_pkt(version=4, rc=None, plist=None):
    if version == 5 and (rc is not None or plist):
        return packet(DISCONNECT, 0, bytes([rc or 0]) + props(plist))
    return packet(DISCONNECT, 0, b"")


# --- decoding -------------------------------------------------------------------


def read_varint(buf, off):
    mult, val = 1, 0
    for i in range(4):
        b = buf[off + i]
        val += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            return val, off + i + 1
    raise ValueError("varint too long")


def read_str(buf, off):
    (n,) = struct.unpack_from("!H", buf, off)
    return bytes(buf[off + 2:off + 2 + n]), off + 2 + n


def parse_props(buf, off):
    """Returns ([(id, value), ...], new_offset). Strings come back as str."""
    n, off = read_varint(buf, off)
    end = off + n
    out = []
    while off < end:
        pid, off = read_varint(buf, off)
        t = PROP_TYPES[pid]
        if t == _BYTE:
            val, off = buf[off], off + 1
        elif t == _U16:
            (val,), off = struct.unpack_from("!H", buf, off), off + 2
        elif t == _U32:
            (val,), off = struct.unpack_from("!I", buf, off), off + 4
        elif t == _VAR:
            val, off = read_varint(buf, off)
        elif t == _STR:
            raw, off = read_str(buf, off)
            val = raw.decode()
        elif t == _BIN:
            val, off = read_str(buf, off)
        else:
            k, off = read_str(buf, off)
            v, off = read_str(buf, off)
            val = (k.decode(), v.decode())
        out.append((pid, val))
    return out, end


def prop(plist, pid, default=None):
    for k, v in plist:
        if k == pid:
            return v
    return default


class Packet:
    def __init__(self, first, body, version):
        self.type = first >> 4
        self.flags = first & 0x0F
        self.body = bytes(body)
        self.version = version
        self.props = []
        self.rc = 0
        self._parse()

    def _parse(self):
        b, v5 = self.body, self.version == 5
        t = self.type
        if t == CONNACK:
            self.session_present = bool(b[0] & 1)
            self.rc = b[1]
            if v5 and len(b) > 2:
                self.props, _ = parse_props(b, 2)
        elif t == PUBLISH:
            self.qos = (self.flags >> 1) & 3
            self.dup = bool(self.flags & 8)
            self.retain = bool(self.flags & 1)
            topic, off = read_str(b, 0)
            self.topic = topic.decode()
            self.pid = None
            if self.qos:
                (self.pid,) = struct.unpack_from("!H", b, off)
                off += 2
            if v5:
                self.props, off = parse_props(b, off)
            self.payload = b[off:]
        elif t in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            (self.pid,) = struct.unpack_from("!H", b, 0)
            if len(b) > 2:
                self.rc = b[2]
            if len(b) > 3:
                self.props, _ = parse_props(b, 3)
        elif t in (SUBACK, UNSUBACK):
            (self.pid,) = struct.unpack_from("!H", b, 0)
            off = 2
            if v5:
                self.props, off = parse_props(b, off)
            self.codes = list(b[off:])
        elif t in (DISCONNECT, AUTH):
            self.rc = b[0] if b else 0
            if len(b) > 1:
                self.props, _ = parse_props(b, 1)

    def prop(self, pid, default=None):
        return prop(self.props, pid, default)

    def __repr__(self):
        return "Packet(type=%d flags=%#x rc=%#x body=%r)" % (self.type, self.flags, self.rc,
                                                              self.body[:64])


class Closed(Exception):
    pass


class RawClient:
    """One TCP connection speaking bytes; every read bounded by a timeout."""

    def __init__(self, port, version=4, host="127.0.0.1"):
        self.version = version
        self.sock = socket.create_connection((host, port), timeout=WAIT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no packet from broker in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no packet from broker in time")
        except ConnectionResetError:
            raise Closed("connection reset")
        if not data:
            raise Closed("connection closed by broker")
        self.buf += data

    def recv(self, timeout=WAIT):
        """The next whole packet; raises Closed or TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                try:
                    n, off = read_varint(self.buf, 1)
                except IndexError:
                    n = None
                if n is not None and len(self.buf) >= off + n:
                    first = self.buf[0]
                    body = self.buf[off:off + n]
                    del self.buf[:off + n]
                    return Packet(first, body, self.version)
            self._fill(deadline)

    def expect(self, ptype, timeout=WAIT):
        p = self.recv(timeout)
        assert p.type == ptype, "expected packet type %d, got %r" % (ptype, p)
        return p

    def recv_skip(self, ptype, timeout=WAIT):
        """Next packet of ptype, dropping PINGRESP/other types in between."""
        deadline = time.monotonic() + timeout
        while True:
            p = self.recv(max(0.01, deadline - time.monotonic()))
            if p.type == ptype:
                return p

    def expect_nothing(self, duration):
        """Assert that no packet arrives within duration seconds."""
        try:
            p = self.recv(duration)
        except TimeoutError:
            return
        raise AssertionError("unexpected packet %r" % p)

    def expect_closed(self, timeout=WAIT):
        """Read until the broker closes; returns the packets received before the close."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                got.append(self.recv(max(0.01, deadline - time.monotonic())))
            except Closed:
                return got
            except TimeoutError:
                raise AssertionError("broker did not close the connection; got %r" % got)

    def connect(self, client_id="", clean=True, keepalive=60, plist=None, will=None,
                username=None, password=None, expect_rc=0):
        self.send(connect_pkt(client_id, self.version, clean, keepalive, plist, will, username,
                              password))
        p = self.expect(CONNACK)
        if expect_rc is not None:
            assert p.rc == expect_rc, "CONNACK rc %#x, want %#x" % (p.rc, expect_rc)
        return p

    def subscribe(self, filters, pid=1, plist=None):
        if isinstance(filters, str):
            filters = [(filters, 0)]
        self.send(subscribe_pkt(pid, filters, self.version, plist))
        p = self.recv_skip(SUBACK)
        assert p.pid == pid
        return p.codes

    def publish(self, topic, payload=b"", qos=0, retain=False, dup=False, pid=None, plist=None):
        self.send(publish_pkt(topic, payload, qos, retain, dup, pid, self.version, plist))

    def ack(self, ptype, pid, rc=None):
        self.send(ack_pkt(ptype, pid, self.version, rc))

    def publish_acked(self, topic, payload=b"", qos=1, retain=False, pid=1, plist=None):
        """Publish at QoS 1 or 2 and complete the flow; returns the PUBACK/PUBREC."""
        self.publish(topic, payload, qos, retain, pid=pid, plist=plist)
        if qos == 1:
            return self.recv_skip(PUBACK)
        rec = self.recv_skip(PUBREC)
        if rec.rc < 0x80:
            self.ack(PUBREL, pid)
            self.recv_skip(PUBCOMP)
        return rec

    def disconnect(self, rc=None, plist=None):
        try:
            self.send(disconnect_pkt(self.version, rc, plist))
        except OSError:
            pass
        self.close()


def raw_connect(port, client_id="", version=4, **kw):
    c = RawClient(port, version)
    c.connect(client_id, **kw)
    return c
