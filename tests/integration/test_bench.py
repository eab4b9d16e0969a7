"""starling-bench end to end: it reports what really happened to the messages.

Not a benchmark: short runs that check the verification. A clean run reports no loss and exits 0;
a broker that drops messages on purpose (a tiny max_queued_messages for a persistent subscriber
that is offline while the publishers run) is caught and the run exits 2.

The bench binary is $STARLING_BENCH, else starling-bench beside $STARLING_BIN, else
build/bin/starling-bench. STARLING_TEST_BROKER=mosquitto runs the same tests against mosquitto.
"""

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from harness import Broker, broker_bin, free_port, is_mosquitto

HERE = os.path.dirname(os.path.abspath(__file__))


def bench_bin():
    path = os.environ.get("STARLING_BENCH")
    if not path and os.environ.get("STARLING_BIN"):
        path = os.path.join(os.path.dirname(os.environ["STARLING_BIN"]), "starling-bench")
    if not path:
        path = os.path.join(HERE, "..", "..", "build", "bin", "starling-bench")
    if not os.path.exists(path):
        pytest.skip("starling-bench not found: set STARLING_BENCH")
    return path


def run_bench(broker, *args, timeout=60):
    """Runs starling-bench against broker; returns (exit status, parsed --json line, stderr)."""
    cmd = [bench_bin()] + list(args) + ["-p", str(broker.port), "--json", "--quiet"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    assert lines, "no JSON line from %s (status %d):\n%s%s" % (cmd, p.returncode, p.stdout,
                                                              p.stderr)
    return p.returncode, json.loads(lines[-1]), p.stderr


def clean_conf():
    conf = {"persistence": "false"}
    if is_mosquitto():
        # mosquitto 2.0.11 with its default max_inflight_messages (20) leaves QoS 1/2 messages
        # queued for an online subscriber unsent (starling-bench and paho both see it), so the
        # runs that must be clean lift the limit there.
        conf["max_inflight_messages"] = 0
    return conf


def _openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def tls_broker():
    """A broker with one TLS listener; yields (broker, path of a file of the PKI)."""
    broker_bin()
    d = tempfile.mkdtemp(prefix="starling-bench-tls-")
    try:
        for ca in ("ca", "otherca"):
            _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-keyout", ca + ".key", "-out", ca + ".crt", "-days", "30",
                     "-subj", "/CN=" + ca, cwd=d)
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
        with open(os.path.join(d, "server.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "30", "-extfile", "server.ext", "-out",
                 "server.crt", cwd=d)
        pki = lambda name: os.path.join(d, name)  # noqa: E731
        conf = dict(clean_conf(), listener="%d 127.0.0.1" % free_port(), cafile=pki("ca.crt"),
                    certfile=pki("server.crt"), keyfile=pki("server.key"))
        with Broker(conf) as b:
            yield b, pki
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def broker():
    broker_bin()
    with Broker(clean_conf()) as b:
        yield b


# A short fan-in run at QoS 1 delivers every message exactly once and exits 0; the broker's
# CPU and RSS are read through --pid.
@pytest.mark.parametrize("mqtt", ["311", "5"])
def test_fanin_qos1_clean_run(broker, mqtt):
    rc, r, err = run_bench(broker, "fanin", "-q", "1", "-c", "3", "-d", "1", "-w", "0.2",
                           "-V", mqtt, "--pid", str(broker.pid))
    assert rc == 0, err
    assert r["exit"] == 0 and r["errors"] == 0
    assert r["sent"] > 0 and r["acked"] == r["sent"]
    assert r["unique"] == r["sent"] and r["lost"] == 0 and r["duplicated"] == 0
    assert r["misrouted"] == 0
    assert r["msgs_per_s"] > 0 and "cpu_us_per_msg" in r


# QoS 2 pairs, QoS 0 fan-out, an open-loop latency run and persistent subscriber sessions, with
# a fixed message count: every message arrives once.
@pytest.mark.parametrize("args", [["pairwise", "-q", "2", "-c", "2"],
                                  ["fanout", "-q", "0", "-c", "3"],
                                  ["latency", "-q", "1", "-c", "2", "-r", "2000"],
                                  ["fanin", "-q", "1", "-c", "2", "-V", "5", "--persistent"]])
def test_counted_runs_deliver_everything(broker, args):
    rc, r, err = run_bench(broker, *args, "-n", "300")
    assert rc == 0, err
    receivers = 3 if args[0] == "fanout" else 1
    assert r["sent"] == r["publishers"] * 300
    assert r["unique"] == r["sent"] * receivers and r["lost"] == 0 and r["duplicated"] == 0


# Storm: every connection connects, answers its ping and closes.
def test_storm_small(broker):
    rc, r, err = run_bench(broker, "storm", "-c", "200", "-d", "0.2")
    assert rc == 0, err
    assert r["connections"] == 200 and r["failed"] == 0 and r["connects_per_s"] > 0


# The same persistent-subscriber run without a queue limit loses nothing...
def test_offline_subscriber_receives_its_queue(broker):
    rc, r, err = run_bench(broker, "fanin", "-q", "1", "-c", "2", "-n", "50",
                           "--sub-offline", "0.2")
    assert rc == 0, err
    assert r["unique"] == 100 and r["lost"] == 0


# ... but with max_queued_messages 5 the broker drops what exceeds the queue of the offline
# subscriber: the bench counts the loss and exits 2 (QoS 1 and QoS 2, both protocol versions).
@pytest.mark.parametrize("qos,mqtt", [("1", "311"), ("2", "5")])
def test_dropping_broker_is_detected(qos, mqtt):
    broker_bin()
    with Broker({"persistence": "false", "max_queued_messages": 5}) as b:
        rc, r, err = run_bench(b, "fanin", "-q", qos, "-V", mqtt, "-c", "2", "-n", "50",
                               "--sub-offline", "0.2")
    assert rc == 2, err
    assert r["exit"] == 2
    assert r["acked"] == 100
    assert 0 < r["unique"] <= 10 and r["lost"] == 100 - r["unique"]


# --tls: MQTT over TLS to a TLS listener, the broker verified against --cafile: a counted
# QoS 1 fan-in delivers everything and a small storm connects, pings and closes every
# connection.
def test_tls_runs(tls_broker):
    b, pki = tls_broker
    rc, r, err = run_bench(b, "fanin", "-q", "1", "-c", "3", "-n", "200", "--tls", "--cafile",
                           pki("ca.crt"))
    assert rc == 0, err
    assert r["sent"] == 600 and r["unique"] == 600 and r["lost"] == 0 and r["duplicated"] == 0
    rc, r, err = run_bench(b, "storm", "-c", "50", "-d", "0.2", "--tls", "--cafile",
                           pki("ca.crt"), "-V", "5")
    assert rc == 0, err
    assert r["connections"] == 50 and r["failed"] == 0


# A broker whose certificate another CA signed fails the handshake: every connection fails
# with the reason and the run exits 1.
def test_tls_wrong_ca_fails(tls_broker):
    b, pki = tls_broker
    rc, r, err = run_bench(b, "storm", "-c", "5", "-d", "0.2", "--tls", "--cafile",
                           pki("otherca.crt"))
    assert rc == 1
    assert "TLS handshake failed" in err and r["connections"] == 0


# --cafile without --tls is refused, not ignored.
def test_cafile_needs_tls():
    p = subprocess.run([bench_bin(), "fanin", "--cafile", "/nonexistent"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 1 and "--cafile needs --tls" in p.stderr
