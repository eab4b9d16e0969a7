"""The admin HTTP API of one node (admin_listener): /healthz, /readyz, /api/v1/cluster, /metrics
(parsed with the Prometheus client's own text parser), the bearer token, and starling-ctl."""

import http.client
import json
import os
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import WAIT, Broker, broker_bin, free_port, starling_only, wait_until
from pahoclient import V311, Client

TOKEN = "it-admin-token-0123456789"

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def require_admin_wired():
    """broker/admin_hooks.c serves the admin API once broker_start() opens it; until broker.c
    calls admin_hooks_start() there is nothing to test end to end (the HTTP server itself is
    covered by tests/unit/broker/test_admin.c)."""
    starling_only("the admin API is Starling's")
    with open(os.path.join(ROOT, "broker", "broker.c")) as f:
        if "admin_hooks_start(" not in f.read():
            pytest.skip("broker.c does not open the admin listener yet (admin_hooks_start)")


def ctl_bin():
    return os.path.join(os.path.dirname(broker_bin()), "starling-ctl")


def request(port, method, path, token=None, body=None, headers=None):
    """One request on its own connection; returns (status, headers dict, body str)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "Bearer " + token
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        conn.close()


def serves(port, path):
    """The status of GET path, or None while the port refuses connections."""
    try:
        return request(port, "GET", path)[0]
    except OSError:
        return None


def ctl(*args, token_file=None, port=None):
    cmd = [ctl_bin(), "-H", "127.0.0.1:%d" % port, "--timeout", str(WAIT)]
    if token_file:
        cmd += ["--token-file", token_file]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=WAIT * 2)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    require_admin_wired()
    d = tmp_path_factory.mktemp("admin")
    token_file = str(d / "token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    port = free_port()
    with Broker({"admin_listener": "%d 127.0.0.1" % port, "admin_token_file": token_file}) as b:
        b.admin_port = port
        b.token_file = token_file
        wait_until(lambda: serves(port, "/readyz") == 200, what="/readyz 200")
        yield b


def test_healthz_needs_no_token(node):
    status, headers, body = request(node.admin_port, "GET", "/healthz")
    assert (status, body) == (200, "ok\n")
    assert headers["content-type"].startswith("text/plain")


def test_readyz_once_caught_up(node):
    assert request(node.admin_port, "GET", "/readyz")[:3:2] == (200, "ready\n")


def test_calls_without_the_token_are_refused(node):
    for method, path, body in [("GET", "/api/v1/cluster", None), ("GET", "/metrics", None),
                               ("POST", "/api/v1/cluster/transfer", "{}"),
                               ("POST", "/api/v1/cluster/remove", '{"id":1}'),
                               ("POST", "/api/v1/cluster/join", '{"id":2,"address":"a:1"}')]:
        for token in (None, "wrong", TOKEN + "x", TOKEN[:-1]):
            status, headers, text = request(node.admin_port, method, path, token=token, body=body)
            assert status == 401, (method, path, token, status, text)
            assert headers["www-authenticate"].startswith("Bearer")
            assert "unauthorized" in json.loads(text)["error"]


def test_cluster_of_one_node(node):
    status, headers, text = request(node.admin_port, "GET", "/api/v1/cluster", token=TOKEN)
    assert status == 200, text
    assert headers["content-type"] == "application/json"
    c = json.loads(text)
    assert set(c) == {"node_id", "leader", "term", "commit_index", "applied_index", "members"}
    assert c["node_id"] == 1 and c["leader"] == 1
    assert c["term"] >= 1 and c["commit_index"] >= 1
    assert 0 <= c["applied_index"] <= c["commit_index"]
    assert len(c["members"]) == 1
    m = c["members"][0]
    assert set(m) == {"id", "address", "role", "alive"}
    assert (m["id"], m["role"], m["alive"]) == (1, "voter", True)


def test_unknown_path_and_wrong_method(node):
    status, _, text = request(node.admin_port, "GET", "/api/v1/nope", token=TOKEN)
    assert status == 404 and json.loads(text) == {"error": "not found"}
    status, headers, _ = request(node.admin_port, "DELETE", "/api/v1/cluster", token=TOKEN)
    assert status == 405 and headers["allow"] == "GET, HEAD"
    status, headers, _ = request(node.admin_port, "GET", "/api/v1/cluster/join", token=TOKEN)
    assert status == 405 and headers["allow"] == "POST"


def test_bad_bodies(node):
    for body, part in [('{"id":1', "invalid JSON"), ('{"id":-1}', "non-negative integer"),
                       ('{"id":2,"x":1}', 'unknown field "x"'), ('{"id":2}', '"address"')]:
        status, _, text = request(node.admin_port, "POST", "/api/v1/cluster/join", token=TOKEN,
                               body=body)
        assert status == 400, (body, text)
        assert part in json.loads(text)["error"]
    status, _, _ = request(node.admin_port, "POST", "/api/v1/cluster/remove", token=TOKEN,
                        body="x" * 100000)
    assert status == 413


def _families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(fams, name, **labels):
    for s in fams[name].samples:
        if s.name in (name, name + "_total") and all(s.labels.get(k) == v
                                                     for k, v in labels.items()):
            return s.value
    raise AssertionError("no sample %s%s" % (name, labels))


def test_metrics_parse_and_count(node):
    status, headers, text = request(node.admin_port, "GET", "/metrics", token=TOKEN)
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    fams = _families(text)
    # prometheus_client names counter families without their _total suffix
    for name, kind in [("starling_connections", "gauge"),
                       ("starling_messages_received", "counter"),
                       ("starling_messages_sent", "counter"),
                       ("starling_messages_dropped", "counter"),
                       ("starling_bytes_received", "counter"), ("starling_bytes_sent", "counter"),
                       ("starling_subscriptions", "gauge"),
                       ("starling_retained_messages", "gauge"),
                       ("starling_raft_term", "gauge"), ("starling_raft_commit_index", "gauge"),
                       ("starling_raft_applied_index", "gauge"), ("starling_lmdb_bytes", "gauge"),
                       ("starling_node_link_queue_bytes", "gauge")]:
        assert name in fams, name
        assert fams[name].type == kind, (name, fams[name].type)
    listener = "127.0.0.1:%d" % node.port
    before = _value(fams, "starling_messages_received")
    assert _value(fams, "starling_raft_is_leader") == 1
    assert _value(fams, "starling_lmdb_bytes") > 0

    with Client(node, "metrics-sub", V311) as s, Client(node, "metrics-pub", V311) as p:
        s.subscribe("metrics/t", 1)
        p.publish("metrics/t", b"x", qos=1)
        p.publish("metrics/r", b"kept", qos=1, retain=True)
        s.expect(topic="metrics/t")
        fams = _families(request(node.admin_port, "GET", "/metrics", token=TOKEN)[2])
        assert _value(fams, "starling_connections", listener=listener) == 2
        assert _value(fams, "starling_subscriptions") >= 1
    assert _value(fams, "starling_messages_received") >= before + 2
    assert _value(fams, "starling_messages_sent") >= 1
    assert _value(fams, "starling_bytes_received") > 0
    assert _value(fams, "starling_raft_applied_index") >= 1


def test_ctl_status_and_members(node):
    r = ctl("status", token_file=node.token_file, port=node.admin_port)
    assert r.returncode == 0, r.stderr
    lines = dict(ln.split(None, 1) if " " in ln else (ln, "") for ln in r.stdout.splitlines())
    assert lines["node"].strip() == "1" and lines["leader"].strip() == "1"
    assert "members        1 (1 alive)" in r.stdout

    r = ctl("members", token_file=node.token_file, port=node.admin_port)
    assert r.returncode == 0, r.stderr
    rows = [ln.split() for ln in r.stdout.splitlines()]
    assert rows[0] == ["ID", "ADDRESS", "ROLE", "ALIVE", "LEADER"]
    assert rows[1][0] == "1" and rows[1][2:] == ["voter", "yes", "*"]

    r = ctl("--json", "status", token_file=node.token_file, port=node.admin_port)
    assert r.returncode == 0 and json.loads(r.stdout)["leader"] == 1


def test_ctl_errors(node):
    r = ctl("status", port=node.admin_port)
    assert r.returncode == 4 and "unauthorized" in r.stderr
    r = ctl("status", port=free_port())
    assert r.returncode == 3 and "cannot reach admin API at 127.0.0.1:" in r.stderr
    r = ctl("remove", "x", port=node.admin_port)
    assert r.returncode == 2 and "invalid node id 'x'" in r.stderr
    r = ctl("frobnicate", port=node.admin_port)
    assert r.returncode == 2 and "unknown command" in r.stderr


def test_without_token_everything_is_open_and_loopback_is_the_default():
    require_admin_wired()
    port = free_port()
    with Broker({"admin_listener": str(port)}) as b:
        b.wait_log("Admin API on http://127.0.0.1:%d/" % port)
        wait_until(lambda: serves(port, "/readyz") == 200, what="/readyz 200")
        status, _, text = request(port, "GET", "/api/v1/cluster")
        assert status == 200 and json.loads(text)["leader"] == 1
        r = ctl("status", port=port)
        assert r.returncode == 0, r.stderr
