"""Publishing through a ring change without reconnecting: while a node joins and while one is
removed, the nodes apply the new live set at slightly different moments and an owner refuses a
message forwarded under another view; the ingress routes it again itself. Publishers that never
reconnect (a disconnect fails the test) keep several QoS 1 and QoS 2 messages in flight on
topics spread over every owner; the checker then finds every acknowledged message delivered to
every subscriber, QoS 2 exactly once, and each topic in the publisher's order."""

import threading
import time

import checker
import scenarios
from cluster_harness import Cluster, CLUSTER_WAIT

TOPICS = 12        # per QoS: spread over every owner, old and new
WINDOW = 8         # unacknowledged messages per publisher
RATE = 150.0       # messages/s per publisher
PHASE_S = 3.0


class OneShotPublisher:
    """A v5 clean-session publisher on one node that never reconnects: any disconnect or
    refusal is an error. QoS 1 and 2 alternate over TOPICS topics per QoS."""

    def __init__(self, hist, cid, node):
        self.h = hist
        self.rc = checker.RecClient(hist, cid, lambda: [node], persistent=False)
        self.node = node
        self.errors = []
        self.inflight = {}  # mid -> (topic, seq, qos, sent)
        self.acks = 0
        self.stop = threading.Event()
        self.thread = None

    def start(self):
        assert self.rc.connect_to(self.node), "%s: no CONNACK" % self.rc.cid
        self.thread = threading.Thread(target=self._run, daemon=True, name=self.rc.cid)
        self.thread.start()

    def _collect(self):
        rc = self.rc
        for mid in [m for m in self.inflight if m in rc.acked_mids]:
            topic, seq, qos, sent = self.inflight.pop(mid)
            rc.acked_mids.discard(mid)
            code = rc.refusals.pop(mid, None)
            if code is not None:
                self.errors.append("%s#%d refused with 0x%02x" % (rc.cid, seq, code))
                continue
            self.h.add("pub_ack", p=rc.cid, topic=topic, seq=seq, qos=qos, retain=False,
                       node=self.node.id, sent=sent)
            self.acks += 1

    def _run(self):
        rc = self.rc
        seq = 0
        nxt = time.monotonic()
        try:
            while not self.stop.is_set() and not self.errors:
                if not rc.connected:
                    self.errors.append("%s: disconnected (reasons %s)" % (rc.cid, rc.disc_reasons))
                    break
                self._collect()
                if len(self.inflight) >= WINDOW or time.monotonic() < nxt:
                    rc.loop(0.005)
                    continue
                seq += 1
                qos = 1 + seq % 2
                topic = "rc/q%d/%d" % (qos, (seq // 2) % TOPICS)
                sent = time.monotonic()
                mid = rc.publish(topic, seq, qos)
                self.inflight[mid] = (topic, seq, qos, sent)
                nxt += 1.0 / RATE
            # the messages still in flight are answered without a reconnect
            end = time.monotonic() + CLUSTER_WAIT
            while self.inflight and time.monotonic() < end and rc.connected:
                rc.loop(0.02)
                self._collect()
            if self.inflight and not self.errors:
                self.errors.append("%s: %d messages never acknowledged (connected: %s)"
                                   % (rc.cid, len(self.inflight), rc.connected))
        except Exception as e:  # reported by the test
            self.errors.append("%s: %r" % (rc.cid, e))

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=CLUSTER_WAIT + 10)
        self.rc.disconnect()


class Subscriber:
    """A clean QoS 2 subscriber on rc/# pinned to one node (a disconnect is an error)."""

    def __init__(self, hist, cid, node):
        hist.add("subscriber", c=cid, persistent=False)
        self.rc = checker.RecClient(hist, cid, lambda: [node], persistent=False)
        self.node = node
        self.stop = threading.Event()
        self.thread = None

    def start(self):
        rc = self.rc
        assert rc.connect_to(self.node), "%s: no CONNACK" % rc.cid
        mid = rc.subscribe([("rc/#", 2)])
        assert rc.wait_for(lambda: mid not in rc.pending_sub, CLUSTER_WAIT), "no SUBACK"
        self.thread = threading.Thread(target=self._run, daemon=True, name=rc.cid)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set() and self.rc.connected:
            self.rc.loop(0.02)

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=10)
        connected = self.rc.connected
        self.rc.disconnect()
        return connected


def _wait_acks(pubs, n_more, what):
    base = sum(p.acks for p in pubs)
    end = time.monotonic() + CLUSTER_WAIT
    while sum(p.acks for p in pubs) < base + n_more:
        errors = [e for p in pubs for e in p.errors]
        assert not errors, "%s: %s" % (what, errors)
        assert time.monotonic() < end, "%s: traffic stalled" % what
        time.sleep(0.05)


def test_publish_through_join_and_remove():
    with Cluster(3) as c:
        h = checker.History()
        lead = c.leader()
        keep = next(x for x in c.running() if x.id != lead.id)
        victim = next(x for x in c.running() if x.id not in (lead.id, keep.id))
        subs = [Subscriber(h, "rc-sub-%d" % nd.id, nd) for nd in (lead, keep)]
        for s in subs:
            s.start()
        pubs = [OneShotPublisher(h, "rc-pub-%d" % nd.id, nd) for nd in (lead, keep, victim)]
        for p in pubs:
            p.start()
        try:
            time.sleep(PHASE_S)
            _wait_acks(pubs, 50, "before the join")
            c.add_node()
            _wait_acks(pubs, 200, "after the join")
            time.sleep(PHASE_S)
            # the victim's own publisher goes first: its node is about to leave
            pubs[2].finish()
            c.remove_node(victim.id)
            _wait_acks(pubs[:2], 200, "after the removal")
            time.sleep(PHASE_S)
        finally:
            for p in pubs:
                if not p.stop.is_set():
                    p.finish()
        errors = [e for p in pubs for e in p.errors]
        assert not errors, errors
        # deliveries settle: every acknowledged message reached both subscribers
        end = time.monotonic() + CLUSTER_WAIT
        while time.monotonic() < end:
            if not [v for v in checker.check_delivery(h.snapshot() + [{"k": "end",
                                                                       "t": time.monotonic()}])
                    if v.startswith("lost")]:
                break
            time.sleep(0.2)
        h.add("end")
        still = [s.finish() for s in subs]
        assert all(still), "a subscriber was disconnected: %s" % [
            s.rc.disc_reasons for s in subs]
        acked = len(h.of("pub_ack"))
        print("acknowledged: %d (QoS 1 and 2), deliveries: %d" % (acked, len(h.of("deliver"))))
        scenarios.verify(h, "publishing through a join and a removal")
