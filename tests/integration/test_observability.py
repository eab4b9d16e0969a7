"""Observability of a two-node cluster: /metrics parsed with the Prometheus client's own text
parser (every metric the Grafana dashboard in docs/grafana uses is exported; counters move with
traffic; gauges match what the test did; drops are counted by reason; histograms are
well-formed) and the $SYS/cluster/... topics."""

import json
import os
import re
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cluster_harness import Cluster, free_port_on
from harness import WAIT, wait_until
from pahoclient import V311, Client

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DASHBOARD = os.path.join(ROOT, "docs", "grafana", "starling-dashboard.json")
TOKEN = "obs-admin-token-0123456789"
QUEUE_LIMIT = 2


@pytest.fixture(scope="module")
def cluster():
    extra_ports = {}

    def extra(node):
        port = free_port_on(node.host)
        extra_ports[node.id] = port
        return ("sys_interval 1\nmax_queued_messages %d\nmax_inflight_messages 1\n"
                "listener %d %s\n" % (QUEUE_LIMIT, port, node.host))

    with Cluster(n=2, proxy=False, token=TOKEN, conf_extra=extra) as c:
        for i, n in c.nodes.items():
            n.port2 = extra_ports[i]
        # /readyz comes before both members are committed alive; a PUBLISH routed while that
        # view changes is refused ("message could not be stored"), so start from a settled one
        for n in c.nodes.values():
            wait_until(lambda: value(n, "starling_cluster_members_alive") == 2,
                       what="node %d: both members alive" % n.id)
        for n in c.nodes.values():
            n.wait_log("Cluster: node 1 is up")
            n.wait_log("Cluster: node 2 is up")
        yield c


@pytest.fixture(autouse=True)
def logs_on_failure(request, cluster):
    """The nodes' logs for a failed test (the cluster outlives it)."""
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        for i, n in cluster.nodes.items():
            print("---- node %d log ----\n%s" % (i, n.log_tail(80)))


def scrape(node):
    status, body = node.http("GET", "/metrics", timeout=WAIT)
    assert status == 200, "/metrics: %s %r" % (status, body)
    assert isinstance(body, str)
    return list(text_string_to_metric_families(body))


def samples(families):
    """{(sample name, frozenset(labels.items())): value}"""
    out = {}
    for fam in families:
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(node, name, **labels):
    return samples(scrape(node)).get((name, frozenset(labels.items())))


def dashboard_metrics():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    exprs = []

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k in ("expr", "query", "definition") and isinstance(v, str):
                    exprs.append(v)
                else:
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(dash)
    names = set()
    for e in exprs:
        names.update(re.findall(r"\bstarling_[a-z0-9_]+", e))
    return names


def test_dashboard_uses_only_exported_metrics(cluster):
    used = dashboard_metrics()
    assert len(used) >= 15, sorted(used)
    for want in ("starling_connections", "starling_messages_received_total",
                 "starling_messages_dropped_total", "starling_raft_term",
                 "starling_node_link_queue_bytes", "starling_lmdb_bytes"):
        assert want in used, "the dashboard does not chart %s" % want
    node = cluster.nodes[1]
    # the peer's link shows up once it is established
    wait_until(lambda: value(node, "starling_node_link_up", peer="2") == 1,
               what="node link 1 -> 2 up")
    fams = scrape(node)
    exported = {s.name for f in fams for s in f.samples}
    missing = sorted(used - exported)
    assert not missing, "dashboard metrics not in /metrics: %s" % missing


def test_metrics_types(cluster):
    fams = {f.name: f for f in scrape(cluster.nodes[1])}
    for name in ("starling_messages_received", "starling_messages_sent",
                 "starling_messages_dropped", "starling_bytes_received", "starling_bytes_sent",
                 "starling_node_link_connects"):
        assert fams[name].type == "counter", name
    for name in ("starling_connections", "starling_subscriptions", "starling_retained_messages",
                 "starling_raft_term", "starling_raft_commit_index", "starling_raft_applied_index",
                 "starling_lmdb_bytes", "starling_node_link_queue_bytes"):
        assert fams[name].type == "gauge", name
    assert {s.labels.get("peer") for s in fams["starling_node_link_queue_bytes"].samples} == {"2"}
    assert fams["starling_lmdb_bytes"].samples[0].value > 0


def test_counters_move_with_traffic(cluster):
    node = cluster.nodes[1]
    n, payload = 20, b"x" * 300
    with Client(node, "obs-sub", V311) as sub, Client(node, "obs-pub", V311) as pub:
        # QoS 0 delivery: with max_inflight_messages 1 and max_queued_messages 2 a QoS 1
        # subscriber would (rightly) drop part of a burst
        sub.subscribe("obs/counters", qos=0)
        # the route may follow the SUBACK by a moment in a cluster: probe until it delivers
        def routed():
            pub.publish("obs/counters", b"probe", qos=1)
            return any(m.payload == b"probe" for m in sub.drain())
        wait_until(routed, interval=0.2, what="first delivery to obs-sub")
        time.sleep(0.3)
        sub.drain()
        before = samples(scrape(node))
        for i in range(n):
            pub.publish("obs/counters", payload, qos=1)
        got = sub.expect_n(n)
        assert all(m.payload == payload for m in got)

    def grew(name, by, **labels):
        key = (name, frozenset(labels.items()))

        def check():
            return samples(scrape(node))[key] - before[key] >= by
        wait_until(check, what="%s%s +%d" % (name, labels, by))

    listener = "%s:%d" % (node.host, node.port)
    grew("starling_messages_received_total", n)
    grew("starling_messages_sent_total", n)
    grew("starling_bytes_received_total", n * len(payload), listener=listener)
    grew("starling_bytes_sent_total", n * len(payload), listener=listener)
    grew("starling_publish_bytes_received_total", n * len(payload))
    grew("starling_packets_received_total", n)


def test_connections_per_listener(cluster):
    node = cluster.nodes[1]
    a = "%s:%d" % (node.host, node.port)
    b = "%s:%d" % (node.host, node.port2)

    def conns():
        s = samples(scrape(node))
        return (s.get(("starling_connections", frozenset({("listener", a)}))),
                s.get(("starling_connections", frozenset({("listener", b)}))))

    wait_until(lambda: conns() == (0, 0), what="no client connected: %s" % (conns(),))
    c1 = Client(node, "obs-a1", V311)
    c2 = Client(node, "obs-a2", V311)
    c3 = Client(node, "obs-b1", V311, port=node.port2)
    try:
        wait_until(lambda: conns() == (2, 1), what="2 on %s, 1 on %s: %s" % (a, b, conns()))
    finally:
        for c in (c1, c2, c3):
            c.disconnect()
    wait_until(lambda: conns() == (0, 0), what="all gone: %s" % (conns(),))


def test_bytes_per_listener(cluster):
    """Bytes are labelled by listener only (no unlabelled total to double count): traffic on
    the second listener moves its series, not the first one's."""
    node = cluster.nodes[1]
    a = "%s:%d" % (node.host, node.port)
    b = "%s:%d" % (node.host, node.port2)
    fams = {f.name: f for f in scrape(node)}
    for fam in ("starling_bytes_received", "starling_bytes_sent", "starling_connections"):
        assert {s.labels.get("listener") for s in fams[fam].samples} == {a, b}, fam
    n, payload = 10, b"y" * 500
    with Client(node, "obs-bytes", V311, port=node.port2) as c:
        c.subscribe("obs/bytes", qos=0)

        def routed():
            c.publish("obs/bytes", b"probe", qos=1)
            return any(m.payload == b"probe" for m in c.drain())
        wait_until(routed, interval=0.2, what="first delivery to obs-bytes")
        before = samples(scrape(node))
        for i in range(n):
            c.publish("obs/bytes", payload, qos=1)
        assert len(c.expect_n(n)) == n
        after = samples(scrape(node))

    def delta(name, listener):
        key = (name, frozenset({("listener", listener)}))
        return after[key] - before[key]
    assert delta("starling_bytes_received_total", b) >= n * len(payload)
    assert delta("starling_bytes_sent_total", b) >= n * len(payload)
    assert delta("starling_bytes_received_total", a) < len(payload)
    assert delta("starling_bytes_sent_total", a) < len(payload)


def apply_histogram(node):
    fam = [f for f in scrape(node) if f.name == "starling_raft_apply_seconds"]
    assert fam and fam[0].type == "histogram", "no starling_raft_apply_seconds histogram"
    by = {s.name: s for s in fam[0].samples if s.name != fam[0].name + "_bucket"}
    buckets = [(float(s.labels["le"]), s.value) for s in fam[0].samples
               if s.name == fam[0].name + "_bucket"]
    return by[fam[0].name + "_count"].value, by[fam[0].name + "_sum"].value, buckets


def no_subscriptions_left(cluster):
    """Waits until the subscriptions of the clean sessions that earlier tests ended (and the
    purged persistent ones) are removed on every node: the removals go through Raft and are
    applied after the clients have gone."""
    for n in cluster.nodes.values():
        wait_until(lambda: value(n, "starling_subscriptions") == 0,
                   what="node %d: no subscription left by earlier tests" % n.id)


def test_apply_histogram_counts_on_leader_and_follower(cluster):
    """Every command a node proposes (a follower forwards them to the leader) is observed once
    it is applied on that node."""
    leader = cluster.nodes[1].status()["leader"]
    for node in cluster.nodes.values():
        count0, sum0, _ = apply_histogram(node)
        k = 5
        cid = "obs-apply-%d" % node.id
        c = Client(node, cid, V311, clean=False)
        try:
            for i in range(k):
                c.subscribe("obs/apply/%d/%d" % (node.id, i), qos=1)
        finally:
            c.disconnect()
        # a clean session ends it all: its subscriptions are purged through Raft as well
        Client(node, cid, V311, clean=True).disconnect()
        wait_until(lambda: apply_histogram(node)[0] >= count0 + k,
                   what="node %d (%s): apply count +%d" % (
                       node.id, "leader" if node.id == leader else "follower", k))
        count, total, buckets = apply_histogram(node)
        assert total > sum0
        assert buckets[-1] == (float("inf"), count)
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    no_subscriptions_left(cluster)


def test_subscriptions_and_retained_gauges(cluster):
    node = cluster.nodes[1]
    no_subscriptions_left(cluster)
    subs0 = value(node, "starling_subscriptions")
    ret0 = value(node, "starling_retained_messages")
    with Client(node, "obs-gauges", V311) as c:
        c.subscribe("obs/g/1")
        c.subscribe("obs/g/2/#")
        wait_until(lambda: value(node, "starling_subscriptions") == subs0 + 2,
                   what="subscriptions +2")
        c.publish("obs/retained/a", b"1", qos=1, retain=True)
        c.publish("obs/retained/b", b"2", qos=1, retain=True)
        wait_until(lambda: value(node, "starling_retained_messages") == ret0 + 2,
                   what="retained +2")
        c.publish("obs/retained/a", b"", qos=1, retain=True)
        wait_until(lambda: value(node, "starling_retained_messages") == ret0 + 1,
                   what="retained -1 after clearing one")
    wait_until(lambda: value(node, "starling_subscriptions") == subs0,
               what="subscriptions back after the clean session ended")


def test_dropped_by_reason_after_queue_limit(cluster):
    node = cluster.nodes[1]
    key = "starling_messages_dropped_total"
    d0 = value(node, key, reason="client_queue")
    assert d0 is not None and value(node, key, reason="node_link") is not None
    off = Client(node, "obs-offline", V311, clean=False)
    off.subscribe("obs/drop", qos=1)
    off.disconnect()
    n = QUEUE_LIMIT + 5
    with Client(node, "obs-dropper", V311) as pub:
        for i in range(n):
            pub.publish("obs/drop", b"%d" % i, qos=1)
    wait_until(lambda: value(node, key, reason="client_queue") - d0 >= n - QUEUE_LIMIT,
               what="%d drops counted" % (n - QUEUE_LIMIT))
    # the queued ones are still delivered: the drop count is what did not fit
    back = Client(node, "obs-offline", V311, clean=False)
    try:
        got = back.expect_n(QUEUE_LIMIT)
        assert len(got) >= 1
    finally:
        back.disconnect()
    assert value(node, key, reason="client_queue") - d0 <= n - 1


def test_histograms_well_formed(cluster):
    fams = [f for f in scrape(cluster.nodes[1]) if f.type == "histogram"]
    assert "starling_raft_apply_seconds" in {f.name for f in fams}
    for f in fams:
        buckets = [s for s in f.samples if s.name == f.name + "_bucket"]
        count = [s.value for s in f.samples if s.name == f.name + "_count"]
        assert buckets and count, f.name
        bounds = [float(s.labels["le"]) for s in buckets]
        assert bounds == sorted(bounds) and bounds[-1] == float("inf"), f.name
        vals = [s.value for s in buckets]
        assert vals == sorted(vals), "%s: cumulative buckets decrease" % f.name
        assert vals[-1] == count[0], f.name


def test_raft_metrics_agree_with_the_api(cluster):
    n1, n2 = cluster.nodes[1], cluster.nodes[2]
    st = n1.status()
    leaders = [value(n, "starling_raft_is_leader") for n in (n1, n2)]
    assert sorted(leaders) == [0, 1], leaders
    for n in (n1, n2):
        assert value(n, "starling_raft_leader_id") == st["leader"]
        assert value(n, "starling_raft_term") >= 1
        assert value(n, "starling_cluster_members") == 2
        assert value(n, "starling_raft_commit_index") >= 1
    assert value(n1, "starling_raft_term") == st["term"]


def test_follower_answers_421_with_the_leader(cluster):
    """A membership change asked of a follower: 421 naming the leader's id and cluster
    address (nodes do not know each other's admin listeners)."""
    st = cluster.nodes[1].status()
    leader = st["leader"]
    follower = next(n for n in cluster.nodes.values() if n.id != leader)
    address = {m["id"]: m["address"] for m in st["members"]}[leader]
    status, body = follower.http("POST", "/api/v1/cluster/remove", {"id": 99}, timeout=WAIT)
    assert status == 421, (status, body)
    assert body["leader_id"] == leader
    assert body["leader_cluster_address"] == address
    assert "the leader is node %d (cluster address %s)" % (leader, address) in body["error"]


def test_sys_cluster_topics(cluster):
    """Published every sys_interval; the first ones may predate the election, so the test
    reads until the latest value of each topic agrees with /api/v1/cluster (or time runs out)."""
    node = cluster.nodes[1]
    st = node.status()
    want = {"node_id": "1", "leader": str(st["leader"]),
            "role": "leader" if st["leader"] == 1 else "voter"}
    got = {}

    def members_ok():
        ms = [m.split() for m in got.get("members", "").split(", ") if m]
        return (sorted(m[0] for m in ms) == ["1", "2"]
                and all(len(m) == 4 and m[2] == "voter" and m[3] == "up" for m in ms))

    def agree():
        return (all(got.get(k) == v for k, v in want.items()) and members_ok()
                and int(got.get("term", "0")) >= 1)

    with Client(node, "obs-sys", V311) as c:
        c.subscribe("$SYS/cluster/#")
        deadline = time.monotonic() + WAIT
        while not agree() and time.monotonic() < deadline:
            for m in c.drain():
                got[m.topic.split("/", 2)[2]] = m.payload.decode()
            time.sleep(0.1)
    assert agree(), "$SYS/cluster/... %s, want %s and both members up voters" % (got, want)
