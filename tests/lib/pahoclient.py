"""paho-mqtt (1.6.1) wrapper: connect with a given protocol, bounded waits, recorded messages.

    c = Client(b, "sub", V5)                # connects, asserts CONNACK success
    c.subscribe("a/#", 1)                   # waits for SUBACK, returns granted codes
    c.publish("a/b", "x", qos=1)            # waits until the flow completes
    m = c.expect()                          # next message (Msg) within WAIT
    c.expect_nothing(0.3)
"""

import subprocess
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from harness import WAIT

V31, V311, V5 = mqtt.MQTTv31, mqtt.MQTTv311, mqtt.MQTTv5
PROTOCOLS = [V31, V311, V5]
PROTO_IDS = {V31: "v31", V311: "v311", V5: "v5"}


def _rc_value(rc):
    return rc.value if hasattr(rc, "value") else rc


def props(packet_type="PUBLISH", **kw):
    """Properties(PUBLISH|CONNECT|SUBSCRIBE|WILLMESSAGE) with attributes set from kw."""
    p = Properties(getattr(PacketTypes, packet_type))
    for k, v in kw.items():
        setattr(p, k, v)
    return p


class Msg:
    def __init__(self, m):
        self.topic = m.topic
        self.payload = m.payload
        self.qos = m.qos
        self.retain = bool(m.retain)
        self.dup = bool(m.dup)
        self.properties = getattr(m, "properties", None)
        self.at = time.monotonic()

    def prop(self, name, default=None):
        return getattr(self.properties, name, default) if self.properties is not None else default

    def __repr__(self):
        return "Msg(%r, %r, qos=%d, retain=%s)" % (self.topic, self.payload, self.qos,
                                                    self.retain)


class Client:
    def __init__(self, broker, client_id="", proto=V311, clean=True, keepalive=60, will=None,
                 username=None, password=None, properties=None, connect=True, expect_rc=0,
                 port=None, host=None):
        self.port = port if port is not None else broker.port
        self.host = host if host is not None else getattr(broker, "host", "127.0.0.1")
        self.proto = proto
        self.client_id = client_id
        self.clean = clean
        self.keepalive = keepalive
        self.properties = properties
        self.cond = threading.Condition()
        self.messages = []
        self.connacks = []
        self.subacks = {}
        self.unsubacks = set()
        self.published = set()
        self.disconnects = []
        kw = {"client_id": client_id, "protocol": proto, "reconnect_on_failure": False}
        if proto != V5:
            kw["clean_session"] = clean
        self.c = mqtt.Client(**kw)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_publish = self._on_publish
        self.c.on_disconnect = self._on_disconnect
        if will:
            self.c.will_set(will["topic"], will.get("payload"), will.get("qos", 0),
                            will.get("retain", False), will.get("properties"))
        if username is not None:
            self.c.username_pw_set(username, password)
        self.started = False
        if connect:
            try:
                self.connect(expect_rc=expect_rc)
            except BaseException:
                self.drop()
                raise

    # --- callbacks (paho's network thread) ----------------------------------------------

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        with self.cond:
            self.connacks.append((flags, _rc_value(rc), properties))
            self.cond.notify_all()

    def _on_message(self, client, userdata, m):
        with self.cond:
            self.messages.append(Msg(m))
            self.cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        with self.cond:
            self.subacks[mid] = [_rc_value(g) for g in granted]
            self.cond.notify_all()

    def _on_unsubscribe(self, client, userdata, mid, *rest):
        with self.cond:
            self.unsubacks.add(mid)
            self.cond.notify_all()

    def _on_publish(self, client, userdata, mid):
        with self.cond:
            self.published.add(mid)
            self.cond.notify_all()

    def _on_disconnect(self, client, userdata, rc, properties=None):
        with self.cond:
            self.disconnects.append((_rc_value(rc), properties))
            self.cond.notify_all()

    def _wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s: timed out after %.1fs waiting for %s"
                                         % (self.client_id, timeout, what))
                self.cond.wait(left)

    # --- operations -----------------------------------------------------------------------

    def connect(self, expect_rc=0, timeout=WAIT):
        """Connect (or reconnect) and wait for CONNACK; returns (flags, rc, properties)."""
        n, d = len(self.connacks), len(self.disconnects)
        kw = {}
        if self.proto == V5:
            kw["clean_start"] = self.clean
            kw["properties"] = self.properties
        self.c.connect(self.host, self.port, self.keepalive, **kw)
        if not self.started:
            self.c.loop_start()
            self.started = True
        self._wait(lambda: len(self.connacks) > n or len(self.disconnects) > d, timeout,
                   "CONNACK")
        if len(self.connacks) == n:
            raise AssertionError("%s: connection closed without CONNACK" % self.client_id)
        ack = self.connacks[-1]
        if expect_rc is not None:
            assert ack[1] == expect_rc, "CONNACK rc %s, want %s" % (ack[1], expect_rc)
        return ack

    @property
    def session_present(self):
        return bool(self.connacks[-1][0].get("session present"))

    @property
    def connack_props(self):
        return self.connacks[-1][2]

    def subscribe(self, topic, qos=0, options=None, properties=None, timeout=WAIT):
        """Subscribe to one filter (or list of (filter, qos)); returns granted codes."""
        if self.proto == V5 and options is not None:
            res, mid = self.c.subscribe(topic, options=options, properties=properties)
        elif isinstance(topic, list):
            res, mid = self.c.subscribe(topic, properties=properties)
        else:
            res, mid = self.c.subscribe(topic, qos, properties=properties)
        assert res == mqtt.MQTT_ERR_SUCCESS, "subscribe send failed: %s" % res
        return self._wait(lambda: self.subacks.get(mid), timeout, "SUBACK")

    def unsubscribe(self, topic, timeout=WAIT):
        res, mid = self.c.unsubscribe(topic)
        assert res == mqtt.MQTT_ERR_SUCCESS
        self._wait(lambda: mid in self.unsubacks, timeout, "UNSUBACK")

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=None, wait=True,
                timeout=WAIT):
        info = self.c.publish(topic, payload, qos, retain, properties)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, "publish send failed: %s" % info.rc
        if wait:
            self._wait(lambda: info.mid in self.published, timeout, "publish %s done" % topic)
        return info

    def expect(self, timeout=WAIT, topic=None):
        """Pop the next received message (optionally the next on `topic`)."""
        def first():
            for i, m in enumerate(self.messages):
                if topic is None or m.topic == topic:
                    return i + 1
            return 0
        i = self._wait(first, timeout, "a message" + (" on %s" % topic if topic else ""))
        with self.cond:
            return self.messages.pop(i - 1)

    def expect_n(self, n, timeout=WAIT):
        self._wait(lambda: len(self.messages) >= n, timeout, "%d messages" % n)
        with self.cond:
            out, self.messages[:] = self.messages[:n], self.messages[n:]
            return out

    def expect_nothing(self, duration=0.3, topic=None):
        end = time.monotonic() + duration
        while time.monotonic() < end:
            with self.cond:
                bad = [m for m in self.messages if topic is None or m.topic == topic]
                if bad:
                    raise AssertionError("%s: unexpected message %r" % (self.client_id, bad[0]))
                self.cond.wait(max(0.0, end - time.monotonic()))
        with self.cond:
            bad = [m for m in self.messages if topic is None or m.topic == topic]
            assert not bad, "%s: unexpected message %r" % (self.client_id, bad[0])

    def wait_disconnected(self, timeout=WAIT):
        """Wait until the broker closes this connection; returns (rc, properties)."""
        self._wait(lambda: self.disconnects, timeout, "disconnect")
        return self.disconnects[-1]

    def drain(self):
        with self.cond:
            out, self.messages[:] = list(self.messages), []
            return out

    def disconnect(self, reasoncode=None, properties=None):
        """Clean DISCONNECT, then stop the network thread."""
        if self.c.is_connected():
            if self.proto == V5 and reasoncode is not None:
                from paho.mqtt.reasoncodes import ReasonCodes
                rc = ReasonCodes(PacketTypes.DISCONNECT, identifier=reasoncode)
                self.c.disconnect(reasoncode=rc, properties=properties)
            else:
                self.c.disconnect()
            try:
                self._wait(lambda: self.disconnects, WAIT, "local disconnect")
            except AssertionError:
                pass
        self.stop()

    def drop(self):
        """Close the TCP connection without DISCONNECT (abrupt close: the will is sent)."""
        self.c.loop_stop()
        self.started = False
        sock = self.c.socket()
        if sock is not None:
            sock.close()

    def stop(self):
        if self.started:
            self.c.loop_stop()
            self.started = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.drop() if exc[0] else self.disconnect()
        except Exception:
            pass
        return False


def sub_opts(qos=0, no_local=False, retain_as_published=False, retain_handling=0):
    return SubscribeOptions(qos=qos, noLocal=no_local, retainAsPublished=retain_as_published,
                            retainHandling=retain_handling)


def mosquitto_pub(port, topic, message, qos=0, retain=False, version="mqttv311", extra=(),
                  timeout=WAIT):
    cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-m", message,
           "-q", str(qos), "-V", version] + (["-r"] if retain else []) + list(extra)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, "mosquitto_pub failed: %s %s" % (r.stdout, r.stderr)
    return r


def mosquitto_sub_start(port, topic, count, qos=0, version="mqttv311", extra=()):
    """Start mosquitto_sub -C count -v; returns the Popen (read with .communicate)."""
    cmd = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-C", str(count),
           "-q", str(qos), "-V", version, "-v", "-W", str(int(WAIT))] + list(extra)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
