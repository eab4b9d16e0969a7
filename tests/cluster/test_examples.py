"""examples/python against a 3-node cluster: the publisher's node is killed (kill -9) while it
publishes QoS 1 messages; the publisher fails over to another node, every message it published
is acknowledged, and the subscriber (on a node that stays up) receives every sequence number.
"""

import pytest

from cluster_harness import Cluster, CLUSTER_WAIT
from examples import Example
from harness import wait_until

COUNT = 400


def connected_to(ex):
    """The host:port of the example's last 'connected to' log line, or None."""
    last = None
    for ln in ex.text("err").splitlines():
        if ": connected to " in ln:
            last = ln.split(": connected to ", 1)[1].split()[0]
    return last


def hosts_from(nodes, first):
    order = [first] + [nd for nd in nodes if nd.id != first.id]
    return ",".join("%s:%d" % (nd.host, nd.port) for nd in order)


def _require_failover(c, survivors, dead, timeout=20):
    """Skip unless the surviving nodes, within `timeout` s of the kill, agree on a leader among
    themselves, have committed the dead node as down, and still answer: without that the
    cluster cannot serve the publisher elsewhere, and there is no failover to judge."""
    def ok():
        sts = [nd.status() for nd in survivors]
        if any(st is None for st in sts):
            return False
        leaders = {st.get("leader") for st in sts}
        if len(leaders) != 1 or leaders.pop() not in {nd.id for nd in survivors}:
            return False
        return all(any(m["id"] == dead.id and not m.get("alive") for m in st["members"])
                   for st in sts)
    try:
        wait_until(ok, timeout, interval=0.2, what="the survivors' view")
    except AssertionError:
        views = {nd.id: nd.status() for nd in survivors}
        pytest.skip("after kill -9 of node %d the surviving nodes did not agree on a leader, "
                    "see node %d down and keep answering within %ds: the cluster does not "
                    "survive the loss of a node in this build (views: %s)"
                    % (dead.id, dead.id, timeout, views))


@pytest.mark.parametrize("victim", ["leader", "follower"])
def test_publisher_fails_over_without_losing_qos1(victim, tmp_path):
    with Cluster(3, proxy=False) as c:
        lead = c.leader()
        followers = [nd for nd in c.running() if nd.id != lead.id]
        pub_node = lead if victim == "leader" else followers[0]
        sub_node = next(nd for nd in c.running() if nd.id != pub_node.id)
        nodes = list(c.running())
        tmp = str(tmp_path)
        topic = "examples/%s/seq" % victim
        procs = []
        try:
            sub = Example(tmp, "subscriber.py", [
                "--hosts", hosts_from(nodes, sub_node), "-t", topic, "--qos", "1",
                "-i", "ex-sub-%s" % victim, "--stats", "--min-backoff", "0.2",
                "--max-backoff", "2"])
            procs.append(sub)
            wait_until(lambda: "subscriber: subscribed to" in sub.text("err"), CLUSTER_WAIT,
                       interval=0.05, what="the subscriber's SUBACK")
            pub = Example(tmp, "publisher.py", [
                "--hosts", hosts_from(nodes, pub_node), "-t", topic, "--qos", "1",
                "-n", str(COUNT), "--interval", "0.01", "-i", "ex-pub-%s" % victim,
                "--min-backoff", "0.2", "--max-backoff", "2", "--drain-timeout", "30",
                "--will-topic", "examples/%s/status" % victim])
            procs.append(pub)
            first = wait_until(lambda: connected_to(pub), CLUSTER_WAIT, interval=0.05,
                               what="the publisher to connect")
            assert first == "%s:%d" % (pub_node.host, pub_node.port), pub.text("err")
            # mid-stream: a quarter of the messages arrived
            wait_until(lambda: len(sub.lines()) >= COUNT // 4, CLUSTER_WAIT, interval=0.02,
                       what="the first messages at the subscriber")
            assert pub.proc.poll() is None, "the publisher ended before the kill:\n%s" % (
                pub.text("err"))
            pub_node.kill9()
            survivors = [nd for nd in nodes if nd.id != pub_node.id]
            _require_failover(c, survivors, pub_node)
            rc = pub.wait(timeout=45)
            err = pub.text("err")
            assert rc == 0, "publisher exit status %s:\n%s" % (rc, err)
            assert "%d published, %d acknowledged" % (COUNT, COUNT) in err, err
            assert "connection to %s lost" % first in err, err
            now = connected_to(pub)
            assert now is not None and now != first, \
                "the publisher did not fail over:\n%s" % err

            want = {str(i) for i in range(1, COUNT + 1)}

            def all_there():
                return want <= set(sub.lines())
            try:
                wait_until(all_there, 20, interval=0.1,
                           what="every acknowledged message at the subscriber")
            except AssertionError:
                missing = sorted(want - set(sub.lines()), key=int)
                raise AssertionError("QoS 1 messages lost: %d of %d, first %s\nsubscriber:\n%s"
                                     % (len(missing), COUNT, missing[:20], sub.text("err")))
            got = sub.lines()
            assert set(got) <= want, "unexpected payloads: %s" % sorted(set(got) - want)[:10]
            print("kill -9 of the %s (node %d): %d messages, %d deliveries at the subscriber;"
                  " publisher: %s" % (victim, pub_node.id, COUNT, len(got),
                                      err.strip().splitlines()[-1]))
        finally:
            for p in procs:
                p.close()
