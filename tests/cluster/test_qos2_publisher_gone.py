"""A QoS 2 publisher of a persistent session whose connection ends while its messages wait for
an owner that does not answer (stopped), and that sends them again with DUP when it is back.

Its packet ids stay received on the ingress, so the resends are answered as duplicates
(PUBREC, not delivered again): the first copies are the ones to deliver, and the ingress
routes them again once the stopped owner leaves the ring instead of giving them up with the
connection. Every message must reach the subscriber exactly once."""

import time

from cluster_harness import CLUSTER_WAIT, Cluster
from pahoclient import V311, Client
from rawmqtt import PUBCOMP, PUBLISH, PUBREC, PUBREL, RawClient

TOPICS = 12  # spread over every owner, the stopped one included


def test_qos2_resent_by_a_returning_publisher_is_delivered_once():
    with Cluster(3) as c:
        leader = c.leader()
        stopped = next(nd for nd in c.followers())
        ingress = next(nd for nd in c.nodes.values() if nd.id != stopped.id)
        sub = Client(ingress, "pg-sub", V311)
        assert sub.subscribe("pg/#", 2) == [2]
        # every topic routes before the fault (the subscription reached every owner)
        probe = RawClient(ingress.port, 4, ingress.host)
        probe.connect("pg-probe")
        for i in range(TOPICS):
            probe.publish_acked("pg/%d" % i, b"probe", qos=2, pid=i + 1)
        assert len(sub.expect_n(TOPICS, timeout=CLUSTER_WAIT)) == TOPICS
        probe.disconnect()

        stopped.sigstop()
        try:
            pub = RawClient(ingress.port, 4, ingress.host)
            pub.connect("pg-pub", clean=False)
            for i in range(TOPICS):
                pub.publish("pg/%d" % i, b"m%d" % i, qos=2, pid=i + 1)
            # PUBREC for the topics whose owner answers; the stopped owner's wait
            recs = set()
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and len(recs) < TOPICS:
                try:
                    p = pub.recv(max(0.01, deadline - time.monotonic()))
                except TimeoutError:
                    break
                if p.type == PUBREC:
                    recs.add(p.pid)
            waiting = sorted(set(range(1, TOPICS + 1)) - recs)
            assert waiting, "node %d owns none of the %d topics" % (stopped.id, TOPICS)
            pub.close()  # no DISCONNECT: the flows of the waiting ones are cut

            # back, resending what got no PUBREC (DUP), and completing every flow
            pub = RawClient(ingress.port, 4, ingress.host)
            assert pub.connect("pg-pub", clean=False).session_present, "session not present"
            for pid in waiting:
                pub.publish("pg/%d" % (pid - 1), b"m%d" % (pid - 1), qos=2, dup=True, pid=pid)
            got = set()
            deadline = time.monotonic() + CLUSTER_WAIT
            while got != set(waiting) and time.monotonic() < deadline:
                p = pub.recv(max(0.01, deadline - time.monotonic()))
                if p.type == PUBREC:
                    got.add(p.pid)
            assert got == set(waiting), "no PUBREC for %s" % sorted(set(waiting) - got)
            for pid in range(1, TOPICS + 1):
                pub.ack(PUBREL, pid)
            done = set()
            while done != set(range(1, TOPICS + 1)):
                p = pub.recv()
                assert p.type in (PUBCOMP, PUBREC, PUBLISH), p
                if p.type == PUBCOMP:
                    done.add(p.pid)
            pub.disconnect()

            # the stopped node leaves the ring; the first copies are routed to new owners
            msgs = sub.expect_n(TOPICS, timeout=CLUSTER_WAIT + 10)
            payloads = sorted(m.payload for m in msgs)
            assert payloads == sorted(b"m%d" % i for i in range(TOPICS)), payloads
            sub.expect_nothing(1.0)
        finally:
            stopped.kill9()
        sub.disconnect()
        assert leader.alive()
