"""Recorded MQTT clients and a checker for the cluster guarantees (DESIGN.md "Guarantees").

A History is an append-only, thread-safe list of events (plain dicts, JSON-serialisable so a
failing run can be saved and replayed through check()). Clients record every acknowledged
operation and every delivery; check(history) returns the violations:

- route:     every acknowledged subscription still routes (a probe published after the
             faults reaches every subscriber of every acknowledged filter);
- retained:  every acknowledged retained message is visible on every live node (a read taken
             after the ack returns that message or a later one from the same writer);
- lost:      every acknowledged QoS >= 1 message matching an acknowledged subscription of a
             persistent session (or of a connection that stayed up from before the publish to
             the end) is delivered at least once;
- dup:       a QoS 2 delivery happens at most once per subscriber (acknowledged or not), and
             an acknowledged one exactly once;
- order:     per subscriber, per topic and publisher, first deliveries come in increasing
             sequence (duplicates of QoS 1 are allowed); and every two subscribers see the
             messages they share on a topic in the same order (the owner's order): by first
             copies, except that a pair with a QoS 1 message delivered more than once (a
             resend after a lost acknowledgement is sequenced again) passes when some choice
             of copies agrees;
- session:   a persistent session, once acknowledged, is present at every later CONNACK;
- twice:     a client id is not connected twice at once (an older connection is closed within
             a grace period after a newer one was acknowledged);
- invented:  nothing is delivered that was not published, at a QoS above the publish's;
- minority:  nothing that needs a commit (SUBACK, retained PUBACK, persistent CONNACK) is
             acknowledged by a node while it sits in a minority (a "minority" window event).

Payloads are b"<publisher>|<seq>|<padding>": one sequence per publisher across its topics.
Subscribers must not hold overlapping filters (MQTT allows one copy per matching filter), and
each topic carries one QoS (paho hands a QoS 2 message to the application at PUBREL, so QoS 1
and 2 messages on one topic are not observed in their sending order).
"""

import json
import random
import struct
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

V311, V5 = mqtt.MQTTv311, mqtt.MQTTv5
TAKEOVER = 0x8E


def _rc(rc):
    return rc.value if hasattr(rc, "value") else int(rc)


class _Paho(mqtt.Client):
    """paho 1.6.1 drops the v5 reason code of PUBACK / PUBREC / PUBCOMP and reports a refusal
    (>= 0x80) through on_publish like a success: keep the refusals in self.refusals."""

    refusals = None

    def _note_reason(self):
        pkt = self._in_packet
        if self._protocol == mqtt.MQTTv5 and pkt["remaining_length"] > 2:
            mid, code = struct.unpack("!HB", pkt["packet"][:3])
            if code >= 0x80 and self.refusals is not None:
                self.refusals.setdefault(mid, code)

    def _handle_pubackcomp(self, cmd):
        self._note_reason()
        return super()._handle_pubackcomp(cmd)

    def _handle_pubrec(self):
        self._note_reason()
        return super()._handle_pubrec()


def payload(pub, seq, pad=0):
    return ("%s|%d|" % (pub, seq)).encode() + b"x" * pad


def parse_payload(data):
    try:
        pub, seq, _ = data.split(b"|", 2)
        return pub.decode(), int(seq)
    except (ValueError, UnicodeDecodeError):
        return None, None


def topic_matches(filt, topic):
    if filt.startswith("$share/"):
        filt = filt.split("/", 2)[2]
    f, t = filt.split("/"), topic.split("/")
    for i, part in enumerate(f):
        if part == "#":
            return True
        if i >= len(t):
            return False
        if part != "+" and part != t[i]:
            return False
    return len(f) == len(t)


class History:
    """Thread-safe event log. Events are dicts with "k" (kind) and "t" (monotonic time)."""

    def __init__(self, events=None):
        self.lock = threading.Lock()
        self.events = list(events or [])

    def add(self, kind, **kw):
        kw["k"] = kind
        kw.setdefault("t", time.monotonic())
        with self.lock:
            self.events.append(kw)
        return kw

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def of(self, *kinds):
        return [e for e in self.snapshot() if e["k"] in kinds]

    def dump(self, path):
        with open(path, "w") as f:
            json.dump(self.snapshot(), f)

    @classmethod
    def load(cls, path):
        with open(path) as f:
            return cls(json.load(f))


# ---- the checker -------------------------------------------------------------------------------


class Violation(str):
    pass


def _v(kind, msg):
    return Violation("%s: %s" % (kind, msg))


def check(history, takeover_grace=5.0, limit=30):
    """All violations found in history (list of strings, empty when it holds)."""
    ev = history.snapshot() if isinstance(history, History) else list(history)
    out = []
    out += check_invented(ev)
    out += check_delivery(ev)
    out += check_order(ev)
    out += check_routes(ev)
    out += check_retained(ev)
    out += check_sessions(ev)
    out += check_single_connection(ev, takeover_grace)
    out += check_minority(ev)
    if limit and len(out) > limit:
        out = out[:limit] + ["... and %d more" % (len(out) - limit)]
    return out


def assert_ok(history, what="history", **kw):
    bad = check(history, **kw)
    assert not bad, "%s violates the guarantees:\n  %s" % (what, "\n  ".join(bad))


def _end_time(ev):
    ends = [e["t"] for e in ev if e["k"] == "end"]
    return max(ends) if ends else max((e["t"] for e in ev), default=0.0)


def _sent_index(ev):
    sent = {}
    for e in ev:
        if e["k"] == "pub_sent":
            sent.setdefault((e["p"], e["seq"]), e)
    return sent


def check_invented(ev):
    sent = _sent_index(ev)
    out = []
    for e in ev:
        if e["k"] != "deliver":
            continue
        s = sent.get((e["p"], e["seq"]))
        if s is None:
            out.append(_v("invented", "%s got %s#%s on %s, never published"
                          % (e["c"], e["p"], e["seq"], e["topic"])))
        elif s["topic"] != e["topic"]:
            out.append(_v("invented", "%s got %s#%s on %s, published on %s"
                          % (e["c"], e["p"], e["seq"], e["topic"], s["topic"])))
        elif e["qos"] > s["qos"]:
            out.append(_v("invented", "%s got %s#%s at QoS %d, published at QoS %d"
                          % (e["c"], e["p"], e["seq"], e["qos"], s["qos"])))
    return out


def _subscriptions(ev):
    """client -> list of (filter, granted, acked_at, gone_at or None)."""
    subs = {}
    for e in ev:
        if e["k"] == "suback" and e["g"] < 0x80:
            subs.setdefault(e["c"], []).append([e["f"], e["g"], e["t"], None])
        elif e["k"] == "unsuback":
            for s in subs.get(e["c"], []):
                if s[0] == e["f"] and s[3] is None:
                    s[3] = e["sent"]
    return subs


def _connections(ev):
    """client -> list of dicts {conn, node, up, down, sp} in connack order."""
    conns = {}
    for e in ev:
        if e["k"] == "connack" and e.get("rc", 0) == 0:
            conns.setdefault(e["c"], []).append(
                {"conn": e["conn"], "node": e.get("node"), "up": e["t"], "down": None,
                 "sp": e.get("sp", False), "by": None})
        elif e["k"] == "disc":
            for c in conns.get(e["c"], []):
                if c["conn"] == e["conn"] and c["down"] is None:
                    c["down"] = e["t"]
                    c["by"] = e.get("by")
    return conns


def check_delivery(ev):
    """lost / dup, for messages acknowledged to their publisher."""
    out = []
    persistent = {e["c"]: e["persistent"] for e in ev if e["k"] == "subscriber"}
    subs = _subscriptions(ev)
    conns = _connections(ev)
    end = _end_time(ev)
    acked = {(e["p"], e["seq"]): e for e in ev if e["k"] == "pub_ack"}
    sent = _sent_index(ev)
    got = {}
    for e in ev:
        if e["k"] == "deliver":
            got.setdefault((e["c"], e["p"], e["seq"]), []).append(e)
    # QoS 2: never twice
    for (c, p, s), ds in got.items():
        q2 = [d for d in ds if d["qos"] == 2]
        if len(q2) > 1:
            out.append(_v("dup", "%s got QoS 2 message %s#%d %d times (nodes %s)"
                          % (c, p, s, len(q2), [d.get("node") for d in q2])))
    for (p, s), a in acked.items():
        m = sent.get((p, s), a)
        q = m["qos"]
        if q == 0 or p == "probe":  # probes are judged by check_routes
            continue
        for c, lst in subs.items():
            if c not in persistent:
                continue
            for f, g, at, gone in lst:
                if not topic_matches(f, m["topic"]) or at >= m["t"]:
                    continue
                if gone is not None and gone <= a["t"]:
                    continue
                eff = min(q, g)
                if eff == 0:
                    continue
                if not persistent[c]:
                    # a clean session owes only while one connection spans publish .. end
                    span = [x for x in conns.get(c, []) if x["up"] <= at and
                            (x["down"] is None or x["down"] >= end)]
                    if not span:
                        continue
                n = len(got.get((c, p, s), []))
                if n == 0:
                    out.append(_v("lost", "%s never got acknowledged QoS %d message %s#%d on %s"
                                  % (c, eff, p, s, m["topic"])))
                break
    return out


def _first_deliveries(ev):
    """client -> topic -> [(pub, seq)] in first-delivery order."""
    seen = set()
    out = {}
    for e in ev:
        if e["k"] != "deliver":
            continue
        key = (e["c"], e["p"], e["seq"])
        if key in seen:
            continue
        seen.add(key)
        out.setdefault(e["c"], {}).setdefault(e["topic"], []).append((e["p"], e["seq"]))
    return out


def _all_deliveries(ev):
    """client -> topic -> (pub, seq) -> [positions of every copy in that client's deliveries
    on that topic], and the set of (pub, seq) delivered at QoS 1."""
    out = {}
    qos1 = set()
    for e in ev:
        if e["k"] != "deliver":
            continue
        per = out.setdefault(e["c"], {}).setdefault(e["topic"], {"n": 0, "pos": {}})
        per["pos"].setdefault((e["p"], e["seq"]), []).append(per["n"])
        per["n"] += 1
        if e.get("qos") == 1:
            qos1.add((e["p"], e["seq"]))
    return out, qos1


def _orders(pos, a, b, loose):
    """The relative orders of a and b a subscriber can be said to have seen: "<" (a first)
    and/or ">". With loose, any choice of copies counts; otherwise first copies only."""
    pa, pb = pos[a], pos[b]
    if not loose:
        return {"<" if pa[0] < pb[0] else ">"}
    got = set()
    if min(pa) < max(pb):
        got.add("<")
    if min(pb) < max(pa):
        got.add(">")
    return got


def _disagreement(ref, seq, all_ref, all_c, qos1):
    """The first pair of messages of seq (a subscriber's first copies) that it and the
    reference saw in opposite orders, when no choice of copies of a QoS 1 message delivered
    more than once (a publisher's resend after a lost acknowledgement is sequenced again)
    makes them agree; None if there is none."""
    pos = {k: i for i, k in enumerate(ref)}
    shared = [k for k in seq if k in pos]
    # fast path: first copies agree
    prev = -1
    for k in shared:
        if pos[k] < prev:
            break
        prev = pos[k]
    else:
        return None
    for j, b in enumerate(shared):
        for a in shared[:j]:
            if pos[a] < pos[b]:
                continue
            # the subscriber saw a before b, the reference b before a
            loose = ((a in qos1 and (len(all_ref[a]) > 1 or len(all_c[a]) > 1)) or
                     (b in qos1 and (len(all_ref[b]) > 1 or len(all_c[b]) > 1)))
            if not loose or not (_orders(all_ref, a, b, True) & _orders(all_c, a, b, True)):
                return a, b
    return None


def check_order(ev):
    out = []
    first = _first_deliveries(ev)
    every, qos1 = _all_deliveries(ev)
    # per subscriber, per topic and publisher: increasing sequence
    for c, topics in first.items():
        for topic, seq in topics.items():
            last = {}
            for p, s in seq:
                if p in last and s < last[p]:
                    out.append(_v("order", "%s got %s#%d after %s#%d on %s"
                                  % (c, p, s, p, last[p], topic)))
                last[p] = max(s, last.get(p, s))
    # every two subscribers agree on the relative order of what they share on a topic (for a
    # QoS 1 message delivered more than once, some choice of its copies must agree)
    by_topic = {}
    for c, topics in first.items():
        for topic, seq in topics.items():
            by_topic.setdefault(topic, []).append((c, seq))
    for topic, lists in by_topic.items():
        if len(lists) < 2:
            continue
        ref_c, ref = max(lists, key=lambda x: len(x[1]))
        for c, seq in lists:
            if c == ref_c:
                continue
            bad = _disagreement(ref, seq, every[ref_c][topic]["pos"], every[c][topic]["pos"],
                                qos1)
            if bad:
                (a, b) = bad
                out.append(_v("order", "on %s %s saw %s#%d after %s#%d, %s the reverse"
                              % (topic, c, b[0], b[1], a[0], a[1], ref_c)))
    return out


def check_routes(ev):
    out = []
    delivered = {(e["c"], e["p"], e["seq"]) for e in ev if e["k"] == "deliver"}
    for e in ev:
        if e["k"] != "probe":
            continue
        if not e.get("acked"):
            out.append(_v("route", "probe %s#%d on %s was not acknowledged"
                          % (e["p"], e["seq"], e["topic"])))
            continue
        for c, f in e["targets"]:
            if (c, e["p"], e["seq"]) not in delivered:
                out.append(_v("route", "%s's acknowledged subscription %s no longer routes "
                              "(probe %s#%d on %s not delivered)"
                              % (c, f, e["p"], e["seq"], e["topic"])))
    return out


def check_retained(ev):
    out = []
    sent = _sent_index(ev)
    last_ack = {}
    for e in ev:
        if e["k"] == "pub_ack" and e.get("retain"):
            cur = last_ack.get(e["topic"])
            if cur is None or e["seq"] > cur["seq"]:
                last_ack[e["topic"]] = e
    reads = [e for e in ev if e["k"] == "retained_read"]
    for e in reads:
        a = last_ack.get(e["topic"])
        if a is None or e["t"] < a["t"]:
            continue
        if e.get("p") is None:
            out.append(_v("retained", "node %s has nothing retained on %s; %s#%d was "
                          "acknowledged" % (e["node"], e["topic"], a["p"], a["seq"])))
        elif e["p"] != a["p"] or e["seq"] < a["seq"]:
            out.append(_v("retained", "node %s shows %s#%s on %s after %s#%d was acknowledged"
                          % (e["node"], e["p"], e["seq"], e["topic"], a["p"], a["seq"])))
        elif (e["p"], e["seq"]) not in sent:
            out.append(_v("retained", "node %s shows %s#%s on %s, never published"
                          % (e["node"], e["p"], e["seq"], e["topic"])))
    for e in ev:
        if e["k"] != "retained_sweep":
            continue
        read_nodes = {r["node"] for r in reads if r["t"] >= e["t"]}
        for n in e["nodes"]:
            if n not in read_nodes:
                out.append(_v("retained", "node %s was not read in the final sweep" % n))
    return out


def check_sessions(ev):
    out = []
    persistent = {e["c"] for e in ev if e["k"] == "subscriber" and e["persistent"]}
    persistent |= {e["c"] for e in ev if e["k"] == "publisher" and e.get("persistent")}
    seen = set()
    for e in ev:
        if e["k"] != "connack" or e.get("rc", 0) != 0 or e["c"] not in persistent:
            continue
        if e["c"] in seen and not e.get("sp"):
            out.append(_v("session", "%s's persistent session was gone at CONNACK on node %s "
                          "(session present 0)" % (e["c"], e.get("node"))))
        seen.add(e["c"])
    return out


def check_single_connection(ev, grace=5.0):
    out = []
    end = _end_time(ev)
    for c, lst in _connections(ev).items():
        for i in range(len(lst) - 1):
            old, new = lst[i], lst[i + 1]
            down = old["down"] if old["down"] is not None else end
            if down > new["up"] + grace:
                out.append(_v("twice", "%s connected on node %s (conn %d) and on node %s (conn "
                              "%d) at once for %.1fs" % (c, old["node"], old["conn"], new["node"],
                                                         new["conn"], down - new["up"])))
    return out


NEEDS_COMMIT = ("suback", "retained_ack", "persistent_connack")


def check_minority(ev):
    """Within a window {"k": "minority", "nodes", "t", "until"}: an operation sent to one of
    those nodes after the window opened must not be acknowledged before it closes."""
    out = []
    for w in ev:
        if w["k"] != "minority":
            continue
        t0, t1, nodes = w["t"], w.get("until", _end_time(ev)), set(w["nodes"])
        for e in ev:
            if e.get("node") not in nodes or not (t0 < e["t"] < t1):
                continue
            sent = e.get("sent")
            if sent is None or sent <= t0:
                continue
            kind = None
            if e["k"] == "suback" and e["g"] < 0x80:
                kind = "SUBACK for %s" % e["f"]
            elif e["k"] == "pub_ack" and e.get("retain") and e.get("qos", 0) > 0:
                kind = "PUBACK of retained %s#%d" % (e["p"], e["seq"])
            elif e["k"] == "connack" and e.get("rc", 0) == 0 and e.get("persistent"):
                kind = "CONNACK of persistent %s" % e["c"]
            if kind:
                out.append(_v("minority", "node %s acknowledged %s (%.2fs into the partition) "
                              "without a majority" % (e["node"], kind, e["t"] - t0)))
    return out


# ---- recorded clients ---------------------------------------------------------------------------


class RecClient:
    """A paho client driven by its caller's thread (no paho thread), recording into a History.

    nodes_fn() -> the nodes it may connect to (objects with .id, .host, .port); it connects to
    `prefer` first and moves on to the next one when a node fails. persistent: v5 clean start 0
    and Session Expiry 300 (v3.1.1: clean session 0), kept across reconnects.
    """

    def __init__(self, hist, cid, nodes_fn, proto=V5, persistent=True, prefer=0, keepalive=4,
                 will=None):
        self.h = hist
        self.cid = cid
        self.nodes_fn = nodes_fn
        self.proto = proto
        self.persistent = persistent
        self.prefer = prefer
        self.keepalive = keepalive
        self.conn_no = 0
        self.node = None
        self.connected = False
        self.connecting = False
        self.session_present = None
        self.disc_reasons = []
        self.pending_sub = {}  # mid -> (filters, sent)
        self.pending_unsub = {}
        self.acked_mids = set()
        self.on_deliver = None
        self.ready = False  # for the workload: connected and subscribed
        kw = {"client_id": cid, "protocol": proto, "reconnect_on_failure": False}
        if proto != V5:
            kw["clean_session"] = not persistent
        self.c = _Paho(**kw)
        self.refusals = self.c.refusals = {}  # mid -> reason code >= 0x80
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_publish = self._on_publish
        if will:
            self.c.will_set(will["topic"], will.get("payload"), will.get("qos", 0),
                            will.get("retain", False), will.get("properties"))

    # callbacks (the driving thread, inside loop())
    def _on_connect(self, client, userdata, flags, rc, properties=None):
        rc = _rc(rc)
        self.connecting = False
        sp = bool(flags.get("session present"))
        if rc == 0:
            self.conn_no += 1
            self.connected = True
            self.session_present = sp
        self.h.add("connack", c=self.cid, conn=self.conn_no, node=self.node.id, sp=sp, rc=rc,
                   persistent=self.persistent, sent=self._connect_sent)

    def _on_disconnect(self, client, userdata, rc, properties=None):
        was = self.connected
        self.connected = False
        self.connecting = False
        rc = _rc(rc)
        self.disc_reasons.append(rc)
        if was:
            self.h.add("disc", c=self.cid, conn=self.conn_no, node=self.node.id, rc=rc,
                       by="self" if self._closing else "broker")

    def _on_message(self, client, userdata, m):
        p, s = parse_payload(m.payload)
        e = self.h.add("deliver", c=self.cid, conn=self.conn_no, node=self.node.id,
                       topic=m.topic, p=p, seq=s, qos=m.qos, dup=bool(m.dup),
                       retain=bool(m.retain))
        if self.on_deliver:
            self.on_deliver(e, m)

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        filters, sent = self.pending_sub.pop(mid, ([], None))
        for (f, _), g in zip(filters, granted):
            self.h.add("suback", c=self.cid, f=f, g=_rc(g), node=self.node.id, sent=sent)

    def _on_unsubscribe(self, client, userdata, mid, *rest):
        filters, sent = self.pending_unsub.pop(mid, ([], None))
        for f in filters:
            self.h.add("unsuback", c=self.cid, f=f, node=self.node.id, sent=sent)

    def _on_publish(self, client, userdata, mid):
        self.acked_mids.add(mid)

    # driving
    _closing = False
    _connect_sent = None

    def loop(self, timeout=0.02):
        try:
            self.c.loop(timeout)
        except (OSError, ValueError):
            # paho raises on a socket another path closed
            if self.connected:
                self._on_disconnect(self.c, None, mqtt.MQTT_ERR_CONN_LOST)

    def close(self):
        """Drop the connection from our side (no DISCONNECT: a will may fire)."""
        self._closing = True
        try:
            sock = self.c.socket()
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
            if self.connected:
                self._on_disconnect(self.c, None, mqtt.MQTT_ERR_CONN_LOST)
            self.c._sock = None
        finally:
            self._closing = False
        self.connected = False

    def disconnect(self):
        """Clean DISCONNECT."""
        self._closing = True
        try:
            if self.connected:
                self.c.disconnect()
                end = time.monotonic() + 2
                while self.connected and time.monotonic() < end:
                    self.loop(0.05)
            if self.connected:
                self.close()
        finally:
            self._closing = False

    def begin_connect(self, node):
        """Open the socket and send CONNECT; loop() until self.connecting is False. False if
        the socket cannot be opened."""
        self.node = node
        kw = {}
        if self.proto == V5:
            kw["clean_start"] = not self.persistent
            if self.persistent:
                p = Properties(PacketTypes.CONNECT)
                p.SessionExpiryInterval = 300
                kw["properties"] = p
        self.connecting = True
        self._connect_sent = time.monotonic()
        try:
            self.c.connect(node.host, node.port, self.keepalive, **kw)
        except (OSError, ValueError):
            self.connecting = False
            return False
        return True

    def connect_to(self, node, timeout=4.0):
        """One attempt on one node; True once CONNACK 0 arrived (else the socket is closed)."""
        if not self.begin_connect(node):
            return False
        end = time.monotonic() + timeout
        while self.connecting and time.monotonic() < end:
            self.loop(0.05)
        if not self.connected:
            self.close()
            return False
        return True

    def ensure_connected(self, deadline, stop=None):
        """Connect somewhere (preferred node first); False if deadline passes or stop is set."""
        tries = 0
        while not self.connected:
            if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                return False
            nodes = list(self.nodes_fn())
            if nodes:
                nd = nodes[(self.prefer + tries) % len(nodes)]
                if self.connect_to(nd):
                    return True
            tries += 1
            time.sleep(0.1)
        return True

    def subscribe(self, filters):
        """filters: [(filter, qos)]; records the SUBACK when it comes (loop() it)."""
        res, mid = self.c.subscribe(filters)
        if res == mqtt.MQTT_ERR_SUCCESS:
            self.pending_sub[mid] = (list(filters), time.monotonic())
        return mid if res == mqtt.MQTT_ERR_SUCCESS else None

    def unsubscribe(self, filters):
        res, mid = self.c.unsubscribe(list(filters))
        if res == mqtt.MQTT_ERR_SUCCESS:
            self.pending_unsub[mid] = (list(filters), time.monotonic())
        return mid

    def publish(self, topic, seq, qos, retain=False, pad=0):
        """Record pub_sent; returns paho's mid (acked when mid in acked_mids)."""
        self.h.add("pub_sent", p=self.cid, topic=topic, seq=seq, qos=qos, retain=retain,
                   node=self.node.id if self.node else None)
        info = self.c.publish(topic, payload(self.cid, seq, pad), qos, retain)
        self.refusals.pop(info.mid, None)
        self.acked_mids.discard(info.mid)
        return info.mid

    def done(self, mid):
        """The flow of mid ended (acknowledged or refused)."""
        return mid in self.acked_mids

    def acked(self, mid):
        """The flow of mid ended with success (no reason code >= 0x80)."""
        return mid in self.acked_mids and mid not in self.refusals

    def wait_for(self, pred, timeout):
        end = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > end:
                return False
            self.loop(0.02)
        return True


# ---- the workload ----------------------------------------------------------------------------


class Workload:
    """Publishers and subscribers on threads, moving between nodes when theirs fails.

    publishers: persistent v5 sessions publishing one message at a time (waiting for the ack
    before the next) to load/q<qos>/<k>, and every `retain_every`-th message a retained QoS 1
    publish to ret/<publisher>. subscribers: persistent sessions on load/#; clean: clean
    sessions on load/# that re-subscribe after each reconnect.
    """

    def __init__(self, cluster, hist=None, publishers=3, subscribers=2, clean=1, rate=25.0,
                 qos=(0, 1, 2), topics_per_qos=2, retain_every=10, ack_timeout=8.0, seed=0,
                 prefix="w"):
        self.cluster = cluster
        self.h = hist or History()
        self.n_pub, self.n_sub, self.n_clean = publishers, subscribers, clean
        self.rate = rate
        self.qos = qos
        self.topics = ["load/q%d/%d" % (q, k) for q in qos for k in range(topics_per_qos)]
        self.retain_every = retain_every
        self.ack_timeout = ack_timeout
        self.rnd = random.Random(seed)
        self.prefix = prefix
        self.stop_pub = threading.Event()
        self.stop_all = threading.Event()
        self.threads = []
        self.errors = []
        self.pub_count = {}
        self.subs = []
        self.pubs = []
        self.subscribed = threading.Barrier(1 + subscribers + clean, timeout=60)
        self.sub_ready = {}

    def nodes(self):
        return self.cluster.running()

    def start(self):
        nid = 0
        for i in range(self.n_sub + self.n_clean):
            persistent = i < self.n_sub
            cid = "%s-%s%d" % (self.prefix, "sub" if persistent else "clean", i)
            self.h.add("subscriber", c=cid, persistent=persistent)
            rc = RecClient(self.h, cid, self.nodes, persistent=persistent, prefer=nid)
            nid += 1
            self.subs.append(rc)
            self._spawn(self._sub_main, rc)
        for i in range(self.n_pub):
            cid = "%s-pub%d" % (self.prefix, i)
            self.h.add("publisher", c=cid, persistent=True)
            rc = RecClient(self.h, cid, self.nodes, persistent=True, prefer=nid)
            nid += 1
            self.pubs.append(rc)
        try:
            self.subscribed.wait()
        except threading.BrokenBarrierError:
            self.stop()
            raise AssertionError("subscribers did not get their SUBACK: %s" % self.errors)
        for rc in self.pubs:
            self._spawn(self._pub_main, rc)
        return self

    def _spawn(self, fn, rc):
        def run():
            try:
                fn(rc)
            except Exception as e:  # recorded, reported by finish()
                self.errors.append("%s: %r" % (rc.cid, e))
        t = threading.Thread(target=run, daemon=True, name=rc.cid)
        t.start()
        self.threads.append(t)

    def _sub_main(self, rc):
        first = True
        subscribed = False
        while not self.stop_all.is_set():
            if not rc.connected:
                rc.ready = False
                if not rc.ensure_connected(time.monotonic() + 5, self.stop_all):
                    continue
                if not rc.persistent or not rc.session_present:
                    subscribed = False
                rc.ready = subscribed
            if not subscribed:
                mid = rc.subscribe([("load/#", 2)])
                ok = rc.wait_for(lambda: mid not in rc.pending_sub or not rc.connected, 15)
                if ok and rc.connected:
                    subscribed = rc.ready = True
                    if first:
                        first = False
                        self.sub_ready[rc.cid] = True
                        try:
                            self.subscribed.wait()
                        except threading.BrokenBarrierError:
                            pass
                elif rc.connected:
                    rc.close()  # no SUBACK (minority?): try elsewhere
                continue
            rc.loop(0.05)
            # a silent node (SIGSTOP): paho's keepalive notices; move on after that
        rc.disconnect()

    def _pub_main(self, rc):
        seq = 0
        period = 1.0 / self.rate if self.rate else 0
        nxt = time.monotonic()
        while not self.stop_pub.is_set():
            if not rc.connected and not rc.ensure_connected(time.monotonic() + 5, self.stop_pub):
                continue
            seq += 1
            if self.retain_every and seq % self.retain_every == 0:
                topic, qos, retain = "ret/%s" % rc.cid, 1, True
            else:
                topic = self.topics[seq % len(self.topics)]
                qos, retain = int(topic.split("/")[1][1:]), False
            mid = rc.publish(topic, seq, qos, retain)
            self._await_ack(rc, mid, topic, seq, qos, retain, self.stop_pub)
            self.pub_count[rc.cid] = seq
            nxt += period
            delay = nxt - time.monotonic()
            if delay > 0:
                rc.wait_for(lambda: False, delay)
            else:
                nxt = time.monotonic()
        rc.disconnect()

    def _await_ack(self, rc, mid, topic, seq, qos, retain, stop):
        if qos == 0:
            rc.loop(0.0)
            return True
        sent = time.monotonic()
        hard = sent + max(30.0, 4 * self.ack_timeout)
        while True:
            on_conn = time.monotonic()
            ok = rc.wait_for(lambda: mid in rc.acked_mids or not rc.connected,
                             self.ack_timeout)
            if mid in rc.acked_mids:
                rc.acked_mids.discard(mid)
                code = rc.refusals.pop(mid, None)
                if code is not None:
                    self.h.add("pub_refused", p=rc.cid, topic=topic, seq=seq, qos=qos,
                               retain=retain, node=rc.node.id, sent=sent, rc=code)
                    return False
                self.h.add("pub_ack", p=rc.cid, topic=topic, seq=seq, qos=qos, retain=retain,
                           node=rc.node.id, sent=sent)
                return True
            if time.monotonic() > hard or (stop.is_set() and time.monotonic() - on_conn > 1):
                return False
            if ok is False or not rc.connected:
                # no ack on this node in time, or the connection broke: resume the session
                # elsewhere (paho resends the unacknowledged message)
                if rc.connected:
                    rc.close()
                rc.prefer += 1
                rc.ensure_connected(time.monotonic() + 10, self.stop_all)

    def run_for(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.05)
            if self.errors:
                raise AssertionError("workload errors: %s" % self.errors)

    def published(self):
        return sum(self.pub_count.values())

    def acked(self):
        return len(self.h.of("pub_ack"))

    def wait_acks(self, n_more, timeout=30):
        """Wait until n_more acknowledgements arrived after now (traffic flows)."""
        base = self.acked()
        end = time.monotonic() + timeout
        while self.acked() < base + n_more:
            if time.monotonic() > end:
                raise AssertionError("traffic stalled: %d of %d acks in %.0fs"
                                     % (self.acked() - base, n_more, timeout))
            time.sleep(0.05)

    def stop(self):
        self.stop_pub.set()
        self.stop_all.set()
        for t in self.threads:
            t.join(timeout=30)

    def __enter__(self):
        return self.start()

    def __exit__(self, et, ev, tb):
        self.stop()  # every client thread ends on every path (finish() already did it)
        return False

    def finish(self, settle=15.0, probe=True, retained=True):
        """Stop publishing, let deliveries settle, probe every acknowledged subscription,
        read retained messages on every running node, stop; returns the History."""
        self.stop_pub.set()
        for t in self.threads:
            if t.name.startswith(self.prefix + "-pub"):
                t.join(timeout=60)
        # let persistent subscribers reconnect and drain their queues
        end = time.monotonic() + settle
        while time.monotonic() < end:
            if not [v for v in check_delivery(self.h.snapshot()) if v.startswith("lost")]:
                if all(s.connected and s.ready for s in self.subs):
                    break
            time.sleep(0.2)
        if probe:
            probe_routes(self.cluster, self.h, [(s.cid, "load/#") for s in self.subs],
                         "load/probe")
        if retained:
            topics = ["ret/%s" % p.cid for p in self.pubs]
            read_retained(self.cluster, self.h, topics)
        # the end of the observed run: connections still up now count as up to the end
        self.h.add("end")
        self.stop_all.set()
        for t in self.threads:
            t.join(timeout=30)
        if self.errors:
            raise AssertionError("workload errors: %s" % self.errors)
        return self.h


def probe_routes(cluster, hist, targets, topic, timeout=10.0):
    """Publish one QoS 1 probe on topic from a running node and record who must get it."""
    nodes = cluster.running()
    prober = RecClient(hist, "probe", lambda: nodes, persistent=False,
                       prefer=random.randrange(len(nodes)))
    seq = int(time.monotonic() * 1000)
    prober.ensure_connected(time.monotonic() + timeout)
    mid = prober.publish(topic, seq, 1)
    prober.wait_for(lambda: prober.done(mid) or not prober.connected, timeout)
    acked = prober.acked(mid)
    if acked:
        hist.add("pub_ack", p="probe", topic=topic, seq=seq, qos=1, retain=False,
                 node=prober.node.id)
    prober.disconnect()
    hist.add("probe", p="probe", seq=seq, topic=topic, targets=[list(x) for x in targets],
             acked=acked)
    # give the deliveries time to land (the subscribers' threads record them)
    want = {c for c, _ in targets}
    end = time.monotonic() + timeout
    while time.monotonic() < end and acked:
        got = {e["c"] for e in hist.of("deliver") if e["p"] == "probe" and e["seq"] == seq}
        if want <= got:
            break
        time.sleep(0.1)


def read_retained(cluster, hist, topics, timeout=10.0):
    """On every running node, read each topic's retained message with a fresh clean client,
    retrying until it is at least the last acknowledged one (bounded); records the last read."""
    acked = {}
    for e in hist.of("pub_ack"):
        if e.get("retain"):
            acked[e["topic"]] = max(acked.get(e["topic"], 0), e["seq"])
    nodes = cluster.running()
    hist.add("retained_sweep", nodes=[n.id for n in nodes])
    end = time.monotonic() + timeout  # for the whole sweep
    for nd in nodes:
        while True:
            got = _read_retained_once(nd, topics)
            done = all(got.get(t, (None, -1))[1] is not None and
                       got.get(t, (None, -1))[1] >= acked.get(t, 0) for t in topics
                       if t in acked)
            if done or time.monotonic() > end:
                break
            time.sleep(0.3)
        for t in topics:
            p, s = got.get(t, (None, None))
            hist.add("retained_read", node=nd.id, topic=t, p=p, seq=s)


def _read_retained_once(node, topics):
    h = History()
    rc = RecClient(h, "rr-%d-%d" % (node.id, random.randrange(1 << 30)), lambda: [node],
                   persistent=False)
    got = {}
    if not rc.connect_to(node):
        return got
    mid = rc.subscribe([(t, 1) for t in topics])
    rc.wait_for(lambda: mid not in rc.pending_sub, 5)
    rc.wait_for(lambda: len({e["topic"] for e in h.of("deliver")}) >= len(topics), 1.0)
    for e in h.of("deliver"):
        if e["retain"]:
            got[e["topic"]] = (e["p"], e["seq"])
    rc.disconnect()
    return got
