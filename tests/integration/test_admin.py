"""The admin HTTP API of one node (admin_listener): /healthz, /readyz, /api/v1/cluster, /metrics
(parsed with the Prometheus client's own text parser), the bearer token, and starling-ctl; and
the same over HTTPS (admin_certfile, admin_keyfile, admin_cafile) with certificates made here
with openssl."""

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import (WAIT, Broker, broker_bin, free_port, run_broker, starling_only,
                     wait_until)
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

    # options may follow the command as well
    r = subprocess.run([ctl_bin(), "status", "--json", "-H", "127.0.0.1:%d" % node.admin_port,
                        "--token-file", node.token_file], capture_output=True, text=True,
                       timeout=WAIT * 2)
    assert r.returncode == 0 and json.loads(r.stdout)["leader"] == 1, r.stderr
    r = subprocess.run([ctl_bin(), "remove", "-H", "127.0.0.1:%d" % node.admin_port, "1", "2"],
                       capture_output=True, text=True, timeout=WAIT * 2)
    assert r.returncode == 2 and "remove needs ID" in r.stderr


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


# ---- HTTPS (admin_certfile / admin_keyfile / admin_cafile) ----

def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True,
                       timeout=WAIT)
    assert r.returncode == 0, r.stderr


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", name + ".key", "-out", name + ".crt", "-days", "30", "-subj",
            "/CN=" + name, cwd=d)


def make_cert(d, name, ca, cn, server):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server else
                "extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
            "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", name + ".crt", cwd=d)


@pytest.fixture(scope="module")
def pki():
    d = tempfile.mkdtemp(prefix="starling-admin-tls-")
    make_ca(d, "ca")
    make_ca(d, "otherca")
    make_cert(d, "server", "ca", "127.0.0.1", server=True)
    make_cert(d, "server2", "otherca", "127.0.0.1", server=True)
    make_cert(d, "ops", "ca", "ops", server=False)
    make_cert(d, "stranger", "otherca", "ops", server=False)
    yield lambda name: os.path.join(d, name)
    shutil.rmtree(d, ignore_errors=True)


def https_request(port, method, path, ca, token=None, cert=None, key=None):
    """One HTTPS request on its own connection; returns (status, body str)."""
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=WAIT, context=ctx)
    try:
        h = {"Authorization": "Bearer " + token} if token else {}
        conn.request(method, path, headers=h)
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def https_ctl(port, pki, *args, token_file=None, extra=()):
    cmd = [ctl_bin(), "-H", "https://127.0.0.1:%d" % port, "--timeout", str(WAIT)] + list(extra)
    if token_file:
        cmd += ["--token-file", token_file]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=WAIT * 2)


def https_conf(pki, port, token_file, crt=None, key=None, extra=""):
    return ("admin_listener %d 127.0.0.1\nadmin_token_file %s\nadmin_certfile %s\n"
            "admin_keyfile %s\n%s" % (port, token_file, crt or pki("server.crt"),
                                       key or pki("server.key"), extra))


@pytest.fixture
def token_file(tmp_path):
    path = str(tmp_path / "token")
    with open(path, "w") as f:
        f.write(TOKEN + "\n")
    return path


def https_up(port, ca):
    try:
        return https_request(port, "GET", "/readyz", ca)[0] == 200
    except (OSError, ssl.SSLError):
        return False


def test_https_with_token_and_ctl(pki, token_file):
    require_admin_wired()
    port = free_port()
    with Broker(https_conf(pki, port, token_file)) as b:
        b.wait_log("Admin API on https://127.0.0.1:%d/ (bearer token required)" % port)
        wait_until(lambda: https_up(port, pki("ca.crt")), what="HTTPS /readyz 200")
        assert https_request(port, "GET", "/healthz", pki("ca.crt")) == (200, "ok\n")
        # the token is still required
        status, text = https_request(port, "GET", "/api/v1/cluster", pki("ca.crt"))
        assert status == 401 and "unauthorized" in json.loads(text)["error"]
        status, text = https_request(port, "GET", "/api/v1/cluster", pki("ca.crt"), token=TOKEN)
        assert status == 200 and json.loads(text)["leader"] == 1
        # keep-alive: several requests over one TLS connection
        conn = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=WAIT,
            context=ssl.create_default_context(cafile=pki("ca.crt")))
        try:
            for _ in range(3):
                conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + TOKEN})
                r = conn.getresponse()
                fams = {f.name for f in text_string_to_metric_families(r.read().decode())}
                assert r.status == 200 and "starling_raft_apply_seconds" in fams
        finally:
            conn.close()
        # a client that trusts another CA does not get through
        with pytest.raises(ssl.SSLError):
            https_request(port, "GET", "/healthz", pki("otherca.crt"))
        # starling-ctl over HTTPS
        r = https_ctl(port, pki, "status", token_file=token_file, extra=["--cafile",
                                                                         pki("ca.crt")])
        assert r.returncode == 0, r.stderr
        assert "members        1 (1 alive)" in r.stdout
        r = https_ctl(port, pki, "status", extra=["--cafile", pki("ca.crt")])
        assert r.returncode == 4, r.stderr
        r = https_ctl(port, pki, "status", token_file=token_file,
                      extra=["--cafile", pki("otherca.crt")])
        assert r.returncode == 3 and "TLS handshake failed" in r.stderr, r.stderr
        # plain HTTP to the HTTPS port: a clear 400 in plain HTTP, then the connection closes
        status, headers, text = request(port, "GET", "/healthz")
        assert status == 400 and "HTTPS only" in json.loads(text)["error"]
        assert headers["connection"] == "close"
        b.wait_log("plain HTTP from 127.0.0.1:")
        r = ctl("status", token_file=token_file, port=port)
        assert r.returncode == 1 and "HTTPS only" in r.stderr, r.stderr
        # the listener still serves
        assert https_request(port, "GET", "/healthz", pki("ca.crt")) == (200, "ok\n")


def test_https_stalled_handshake_does_not_block(pki, token_file):
    require_admin_wired()
    port = free_port()
    with Broker(https_conf(pki, port, token_file)) as b:
        wait_until(lambda: https_up(port, pki("ca.crt")), what="HTTPS /readyz 200")
        # half a ClientHello, then nothing
        stalled = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        try:
            stalled.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
            for _ in range(3):
                assert https_request(port, "GET", "/healthz", pki("ca.crt")) == (200, "ok\n")
            # ... and it is closed once the handshake time (10 s) has passed
            b.wait_log("not completed in 10 s", timeout=WAIT + 15)
            stalled.settimeout(WAIT)
            assert stalled.recv(100) == b""
        finally:
            stalled.close()


def test_https_client_certificate_and_reload(pki, token_file, tmp_path):
    """admin_cafile: a client certificate signed by it is required; SIGHUP reloads the
    server certificate for new connections."""
    require_admin_wired()
    port = free_port()
    crt, key = str(tmp_path / "s.crt"), str(tmp_path / "s.key")
    shutil.copy(pki("server.crt"), crt)
    shutil.copy(pki("server.key"), key)
    conf = https_conf(pki, port, token_file, crt, key, "admin_cafile %s\n" % pki("ca.crt"))
    with Broker(conf) as b:
        b.wait_log("(client certificate required)")
        ops = dict(cert=pki("ops.crt"), key=pki("ops.key"))
        wait_until(lambda: https_request(port, "GET", "/readyz", pki("ca.crt"), **ops)[0] == 200,
                   what="HTTPS /readyz 200 with a client certificate")

        def refused(**kw):
            try:
                https_request(port, "GET", "/healthz", pki("ca.crt"), **kw)
            except (ssl.SSLError, ConnectionError):
                return True
            return False

        assert refused()  # no client certificate
        assert refused(cert=pki("stranger.crt"), key=pki("stranger.key"))  # another CA
        b.wait_log("TLS handshake failed")
        r = https_ctl(port, pki, "status", token_file=token_file,
                      extra=["--cafile", pki("ca.crt"), "--cert", ops["cert"], "--key",
                             ops["key"]])
        assert r.returncode == 0, r.stderr
        # SIGHUP: the server certificate now comes from another CA
        shutil.copy(pki("server2.crt"), crt)
        shutil.copy(pki("server2.key"), key)
        b.sighup()
        b.wait_log("Reloaded the TLS certificates of the admin API")
        assert https_request(port, "GET", "/healthz", pki("otherca.crt"), **ops) == (200, "ok\n")
        with pytest.raises(ssl.SSLError):
            https_request(port, "GET", "/healthz", pki("ca.crt"), **ops)
        # a broken file on reload: the certificates in force stay
        with open(key, "w") as f:
            f.write("not a key\n")
        b.sighup()
        b.wait_log("the certificates in force stay")
        assert https_request(port, "GET", "/healthz", pki("otherca.crt"), **ops) == (200, "ok\n")


def test_https_bad_files_stop_start_up(pki, token_file):
    require_admin_wired()
    with tempfile.TemporaryDirectory() as d:
        if os.getuid() == 0:
            os.chmod(d, 0o777)  # the broker may drop root privileges before failing
        conf = os.path.join(d, "c.conf")
        for crt, key, want in [(pki("server.crt"), pki("server.csr"),
                                "admin_keyfile: not a PEM key"),
                               (pki("server.csr"), pki("server.key"),
                                "admin_certfile: not a PEM certificate")]:
            with open(conf, "w") as f:
                f.write("listener %d 127.0.0.1\npersistence_location %s/data/\n%s"
                        % (free_port(), d, https_conf(pki, free_port(), token_file, crt, key)))
            r = run_broker(["-c", conf], cwd=d)
            assert r.returncode != 0
            assert want in r.stdout + r.stderr, r.stdout + r.stderr
