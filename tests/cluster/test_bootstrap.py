"""Bootstrap of 3 (and 5) nodes, the cluster API and starling-ctl, cross-node publish /
subscribe at QoS 0, 1 and 2, retained messages on every node."""

import json
import subprocess

import pytest

import checker
from cluster_harness import Cluster, ctl_bin
from pahoclient import V5, V311, Client
from scenarios import sizes


@pytest.mark.parametrize("n", sizes())
def test_bootstrap_members_and_leader(n):
    with Cluster(n) as c:
        lead = c.leader()
        sts = c.statuses()
        assert set(sts) == set(range(1, n + 1))
        terms = set()
        for nid, st in sts.items():
            assert st["node_id"] == nid
            assert st["leader"] == lead.id
            assert st["applied_index"] <= st["commit_index"]
            terms.add(st["term"])
            ms = {m["id"]: m for m in st["members"]}
            assert set(ms) == set(range(1, n + 1)), st
            for i, m in ms.items():
                assert m["role"] == "voter", st
                assert m["address"] == c.nodes[i].advertise, st
        assert len(terms) == 1
        c.wait_alive_view(range(1, n + 1))
        for nd in c.nodes.values():
            st, body = nd.http("GET", "/healthz")
            assert st == 200


def test_starling_ctl_status_and_members():
    if ctl_bin() is None:
        pytest.skip("starling-ctl not built")
    with Cluster(3) as c:
        lead = c.leader()
        r = c.ctl("--json", "status", node=c.nodes[2])
        assert r.returncode == 0, r.stderr
        st = json.loads(r.stdout)
        assert st["leader"] == lead.id and st["node_id"] == 2
        r = c.ctl("members", node=c.nodes[3])
        assert r.returncode == 0, r.stderr
        for i in (1, 2, 3):
            assert c.nodes[i].advertise in r.stdout
        # mutating commands go to the leader's admin API
        target = next(i for i in (1, 2, 3) if i != lead.id)
        r = c.ctl("transfer", str(target), node=lead, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        assert c.wait_leader().id == target
        r = c.ctl("remove", "99", node=c.nodes[target])
        assert r.returncode == 1, "removing an unknown node: %s %s" % (r.stdout, r.stderr)
        r = subprocess.run([ctl_bin(), "-H", "127.0.0.1:1", "status"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 3, r.stderr


def test_cross_node_pubsub():
    """At QoS 0, 1 and 2, a publisher on each node reaches a subscriber on every node, in
    order."""
    with Cluster(3) as c:
        for qos in (0, 1, 2):
            subs = {i: Client(nd, "sub%d-%d" % (i, qos), V5) for i, nd in c.nodes.items()}
            for s in subs.values():
                assert s.subscribe("x%d/#" % qos, qos) == [qos]
            for i, nd in c.nodes.items():
                p = Client(nd, "pub%d" % i, V311)
                for k in range(20):
                    p.publish("x%d/%d" % (qos, i), checker.payload("pub%d" % i, k), qos=qos)
                p.disconnect()
            for j, s in subs.items():
                got = s.expect_n(60, timeout=20)
                by = {}
                for m in got:
                    assert m.qos == qos
                    pub, seq = checker.parse_payload(m.payload)
                    by.setdefault(m.topic, []).append(seq)
                for i in c.nodes:
                    assert by.get("x%d/%d" % (qos, i)) == list(range(20)), (
                        qos, j, i, by.get("x%d/%d" % (qos, i)))
                s.expect_nothing(0.3)
                s.disconnect()


def test_retained_visible_on_every_node():
    with Cluster(3) as c:
        h = checker.History()
        topics = []
        for i, nd in c.nodes.items():
            rc = checker.RecClient(h, "ret%d" % i, lambda nd=nd: [nd], persistent=False)
            assert rc.connect_to(nd)
            for k in range(1, 4):
                mid = rc.publish("r/%d" % i, k, 1, retain=True)
                assert rc.wait_for(lambda: rc.done(mid), 10), "no PUBACK"
                assert rc.acked(mid), "PUBACK %#x" % rc.refusals[mid]
                h.add("pub_ack", p=rc.cid, topic="r/%d" % i, seq=k, qos=1, retain=True,
                      node=nd.id)
            rc.disconnect()
            topics.append("r/%d" % i)
        checker.read_retained(c, h, topics)
        h.add("end")
        checker.assert_ok(h, "retained on 3 nodes")
        # a cleared retained message is gone everywhere
        p = Client(c.nodes[2], "clear", V311)
        p.publish("r/1", b"", qos=1, retain=True)
        p.disconnect()
        for nd in c.nodes.values():
            s = Client(nd, "chk%d" % nd.id, V311)
            s.subscribe("r/1", 1)
            s.expect_nothing(0.5)
            s.disconnect()
