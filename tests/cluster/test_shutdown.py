"""SIGTERM of a node that still has forwarded QoS 1 messages waiting for their owner's
confirmation: the node exits 0 (those waits are dropped at exit, nothing touches them after)."""

import time

from cluster_harness import Cluster
from pahoclient import Client, V5

TOPICS = 20


def test_sigterm_with_forwards_awaiting_confirmation():
    with Cluster(3) as c:
        lead = c.leader()
        ingress, owner = [x for x in c.running() if x.id != lead.id][:2]
        pub = Client(ingress, "pend-pub", V5)
        try:
            pub.c.max_inflight_messages_set(TOPICS)
            # The owner of about a third of the topics stops answering: the ingress keeps
            # those forwards pending (the owner is declared down only after 2 election
            # timeouts; the SIGTERM comes well before).
            c.wait_alive_view([x.id for x in c.running()])
            acked = TOPICS
            for attempt in range(5):
                # Until the ingress itself counts the owner as live, nothing goes to it.
                owner.sigstop()
                infos = [pub.publish("pend/%d/%d" % (attempt, k), b"x", qos=1, wait=False)
                         for k in range(TOPICS)]
                deadline = time.monotonic() + 0.5
                while time.monotonic() < deadline:
                    with pub.cond:
                        acked = sum(1 for i in infos if i.mid in pub.published)
                    if acked >= TOPICS:
                        break
                    time.sleep(0.02)
                if acked < TOPICS:
                    break
                owner.sigcont()
                time.sleep(1.0)
            assert acked < TOPICS, "every publish was acknowledged: no forward was pending"
            ingress.sigterm()  # asserts exit status 0
        finally:
            pub.drop()
            owner.sigcont()
        c.wait_ready(nodes=[lead, owner])
        ingress.start()
        c.wait_ready()
