"""MQTT over WebSocket (`protocol websockets`, subprotocol mqtt), also over TLS: paho-mqtt with
transport="websockets" and MQTT.js (npm `mqtt`, installed in tests/integration/js by `npm ci`
when node_modules is missing); packets spanning frames and frames holding several packets;
malformed upgrades (400) and malformed frames (closed) are refused and the broker keeps
serving."""

import base64
import os
import queue
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile

import paho.mqtt.client as mqtt
import pytest

from harness import WAIT, Broker, free_port, is_mosquitto, starling_only

JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")


def ws_conf(port, extra=""):
    return "listener %d 127.0.0.1\nprotocol websockets\n%s" % (port, extra)


class WsPaho:
    def __init__(self, port, client_id="", ca=None):
        self.c = mqtt.Client(client_id=client_id, transport="websockets")
        if ca:
            self.c.tls_set(ca_certs=ca)
        self.port = port
        self.msgs = queue.Queue()
        self.connack = queue.Queue()
        self.subacks = queue.Queue()
        self.c.on_connect = lambda c, u, f, rc: self.connack.put(rc)
        self.c.on_message = lambda c, u, m: self.msgs.put((m.topic, m.payload))
        self.c.on_subscribe = lambda c, u, mid, granted: self.subacks.put(granted)

    def connect(self):
        self.c.connect("127.0.0.1", self.port, keepalive=30)
        self.c.loop_start()
        return self.connack.get(timeout=WAIT)

    def subscribe(self, topic, qos=0):
        self.c.subscribe(topic, qos)
        return self.subacks.get(timeout=WAIT)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def roundtrip(port, ca=None, size=64):
    sub = WsPaho(port, ca=ca)
    assert sub.connect() == 0
    assert sub.subscribe("ws/#", 1) == (1,)
    pub = WsPaho(port, ca=ca)
    assert pub.connect() == 0
    payload = bytes(i % 251 for i in range(size))
    pub.c.publish("ws/big", payload, 1).wait_for_publish()
    for i in range(5):
        pub.c.publish("ws/small", b"m%d" % i, 0)
    assert sub.msgs.get(timeout=WAIT) == ("ws/big", payload)
    for i in range(5):
        assert sub.msgs.get(timeout=WAIT) == ("ws/small", b"m%d" % i)
    pub.close()
    sub.close()


def test_paho_websockets():
    port = free_port()
    with Broker(ws_conf(port)):
        roundtrip(port)
        roundtrip(port, size=300000)  # one packet over many frames and reads


def test_websockets_and_tcp_listeners_together():
    port, tcp = free_port(), free_port()
    conf = ws_conf(port) + "listener %d 127.0.0.1\n" % tcp
    with Broker(conf):
        sub = WsPaho(port)
        assert sub.connect() == 0
        assert sub.subscribe("mix/#", 0) == (0,)
        r = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(tcp), "-t", "mix/a",
                            "-m", "from tcp"], capture_output=True, text=True, timeout=WAIT)
        assert r.returncode == 0, r.stderr
        assert sub.msgs.get(timeout=WAIT) == ("mix/a", b"from tcp")
        sub.close()


# ---- raw WebSocket frames ----

def upgrade(port, request=None, key=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    key = key or base64.b64encode(os.urandom(16)).decode()
    if request is None:
        request = ("GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n" % key)
    s.sendall(request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    return s, head


def frame(payload, opcode=2, fin=True, mask=True):
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, m | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return hdr + payload
    k = os.urandom(4)
    return hdr + k + bytes(c ^ k[i % 4] for i, c in enumerate(payload))


def read_frame(s):
    def need(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf
    b0, b1 = need(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", need(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", need(8))[0]
    return b0 & 0x0F, need(n)


CONNECT = bytes([0x10, 0x0e, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 30, 0, 2]) + b"ws"
SUBSCRIBE = bytes([0x82, 0x08, 0, 1, 0, 3]) + b"a/b" + bytes([0])
PUBLISH = bytes([0x30, 0x07, 0, 3]) + b"a/b" + b"hi"


def test_packets_split_and_joined_across_frames():
    port = free_port()
    with Broker(ws_conf(port)):
        s, head = upgrade(port)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"Sec-WebSocket-Protocol: mqtt" in head
        # CONNECT split over three frames (one of them a continuation of a fragmented message)
        s.sendall(frame(CONNECT[:3]) + frame(CONNECT[3:9], fin=False) +
                  frame(CONNECT[9:], opcode=0))
        assert read_frame(s) == (2, bytes([0x20, 2, 0, 0]))
        s.sendall(frame(SUBSCRIBE))
        assert read_frame(s) == (2, bytes([0x90, 3, 0, 1, 0]))
        # PUBLISH and PINGREQ in one frame, then a PUBLISH split inside its header
        s.sendall(frame(PUBLISH + bytes([0xC0, 0])))
        s.sendall(frame(PUBLISH[:1]) + frame(PUBLISH[1:]))
        want = PUBLISH + bytes([0xD0, 0]) + PUBLISH
        got = b""
        while len(got) < len(want):
            got += read_frame(s)[1]
        assert got == want
        # a ping frame gets a pong
        s.sendall(frame(b"p1", opcode=9))
        assert read_frame(s) == (10, b"p1")
        s.close()


def test_sec_websocket_accept():
    port = free_port()
    with Broker(ws_conf(port)):
        # RFC 6455 section 1.3's example
        s, head = upgrade(port, key="dGhlIHNhbXBsZSBub25jZQ==")
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head, head
        s.close()


BAD_UPGRADES = [
    "POST /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: mqtt\r\nContent-Length: 0\r\n\r\n",
    "GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
    "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
    "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n"
    "Sec-WebSocket-Protocol: mqtt\r\n\r\n",
    "\x10\x0e\x00\x04MQTT\x04\x02\x00\x1e\x00\x02ws\r\n\r\n",
    "GET /mqtt HTTP/1.1\r\n" + "X-Filler: " + "a" * 9000 + "\r\n\r\n",
]


def test_malformed_upgrades_refused():
    starling_only("the answers and log lines are Starling's")
    port = free_port()
    with Broker(ws_conf(port)) as b:
        for req in BAD_UPGRADES:
            s, head = upgrade(port, request=req)
            assert head.startswith(b"HTTP/1.1 400"), (req, head)
            s.settimeout(WAIT)
            assert s.recv(100) == b""  # then closed
            s.close()
        assert b.log_text().count("WebSocket upgrade refused") == len(BAD_UPGRADES)
        roundtrip(port)


@pytest.mark.parametrize("bad", ["unmasked", "text", "reserved_opcode", "rsv_bits"])
def test_malformed_frames_close(bad):
    starling_only("the log line is Starling's")
    port = free_port()
    with Broker(ws_conf(port)) as b:
        s, head = upgrade(port)
        assert head.startswith(b"HTTP/1.1 101")
        s.sendall(frame(CONNECT))
        assert read_frame(s) == (2, bytes([0x20, 2, 0, 0]))
        if bad == "unmasked":
            s.sendall(frame(PUBLISH, mask=False))
        elif bad == "text":
            s.sendall(frame(PUBLISH, opcode=1))
        elif bad == "reserved_opcode":
            s.sendall(frame(PUBLISH, opcode=3))
        else:
            f = bytearray(frame(PUBLISH))
            f[0] |= 0x40
            s.sendall(bytes(f))
        s.settimeout(WAIT)
        try:
            while True:
                op, _ = read_frame(s)
                if op == 8:  # a close frame, then the socket closes
                    continue
        except (ConnectionError, OSError):
            pass
        b.wait_log("Client ws [")
        b.wait_log(lambda t: "WebSocket" in t.split("Client ws [", 1)[1])
        roundtrip(port)


def test_websockets_over_tls():
    with tempfile.TemporaryDirectory() as d:
        def ossl(*a):
            r = subprocess.run(["openssl"] + list(a), cwd=d, capture_output=True, text=True,
                               timeout=WAIT)
            assert r.returncode == 0, r.stderr
        ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", "5", "-subj", "/CN=ws-ca")
        ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "s.key", "-out", "s.csr", "-subj", "/CN=localhost")
        with open(os.path.join(d, "ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        ossl("x509", "-req", "-in", "s.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "5", "-extfile", "ext", "-out", "s.crt")
        ca = os.path.join(d, "ca.crt")
        port = free_port()
        conf = ws_conf(port, "certfile %s/s.crt\nkeyfile %s/s.key\n" % (d, d))
        with Broker(conf):
            roundtrip(port, ca=ca)
            roundtrip(port, ca=ca, size=200000)
            if mqttjs_ready():
                run_mqttjs("wss://localhost:%d/mqtt" % port, ca)


# ---- MQTT.js ----

_npm_state = {}


def mqttjs_ready():
    """node_modules in tests/integration/js (npm ci once when missing); False if unavailable."""
    if "ok" in _npm_state:
        return _npm_state["ok"]
    ok = False
    if not os.path.isfile(os.path.join(JS_DIR, "package-lock.json")):
        _npm_state["why"] = "no %s/package-lock.json" % JS_DIR
    elif shutil.which("node") and shutil.which("npm"):
        if os.path.isdir(os.path.join(JS_DIR, "node_modules", "mqtt")):
            ok = True
        else:
            try:
                r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR,
                                   capture_output=True, text=True, timeout=120)
                ok = r.returncode == 0
                _npm_state["why"] = r.stderr[-500:]
            except subprocess.TimeoutExpired:
                _npm_state["why"] = "npm ci timed out (registry unreachable?)"
            except OSError as e:
                _npm_state["why"] = "npm ci failed: %s" % e
    else:
        _npm_state["why"] = "node or npm not installed"
    _npm_state["ok"] = ok
    return ok


def run_mqttjs(url, ca=None):
    args = ["node", os.path.join(JS_DIR, "pubsub.js"), url, "js/topic"] + ([ca] if ca else [])
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "js/topic hello from mqtt.js"


def test_mqttjs():
    if not mqttjs_ready():
        pytest.skip("MQTT.js unavailable: %s" % _npm_state.get("why", ""))
    port = free_port()
    with Broker(ws_conf(port)):
        run_mqttjs("ws://127.0.0.1:%d/mqtt" % port)
        # MQTT.js and paho on the same topic
        sub = WsPaho(port)
        assert sub.connect() == 0
        assert sub.subscribe("js/#", 1) == (1,)
        run_mqttjs("ws://127.0.0.1:%d/mqtt" % port)
        assert sub.msgs.get(timeout=WAIT) == ("js/topic", b"hello from mqtt.js")
        sub.close()
