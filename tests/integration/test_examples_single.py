"""examples/python against one broker: QoS 1 from publisher.py to subscriber.py, with a restart
of the broker (SIGTERM, or kill -9) in the middle of the stream; both clients reconnect (with
backoff) to the same node, the persistent sessions resume from the data dir, and no
acknowledged message is lost.
"""

import os
import shutil
import subprocess

import pytest

from examples import Example
from harness import WAIT, Broker, free_port, wait_until

COUNT = 300


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_qos1_survives_broker_restart(how, tmp_path):
    with Broker() as b:
        hosts = "%s:%d" % (b.host, b.port)
        tmp = str(tmp_path)
        procs = []
        try:
            sub = Example(tmp, "subscriber.py", [
                "--hosts", hosts, "-t", "single/seq", "--qos", "1", "-i", "ex1-sub-" + how,
                "--min-backoff", "0.1", "--max-backoff", "1", "--stats"])
            procs.append(sub)
            wait_until(lambda: "subscriber: subscribed to" in sub.text("err"), WAIT,
                       interval=0.05, what="the subscriber's SUBACK")
            pub = Example(tmp, "publisher.py", [
                "--hosts", hosts, "-t", "single/seq", "--qos", "1", "-n", str(COUNT),
                "--interval", "0.01", "-i", "ex1-pub-" + how, "--min-backoff", "0.1",
                "--max-backoff", "1", "--drain-timeout", "30",
                "--will-topic", "single/status", "--online-payload", "online"])
            procs.append(pub)
            wait_until(lambda: len(sub.lines()) >= COUNT // 4, WAIT, interval=0.02,
                       what="the first messages at the subscriber")
            assert pub.proc.poll() is None, pub.text("err")
            if how == "kill9":
                b.kill9()
                b.start_again()
            else:
                b.restart()
            rc = pub.wait(timeout=60)
            err = pub.text("err")
            assert rc == 0, "publisher exit status %s:\n%s" % (rc, err)
            assert "%d published, %d acknowledged" % (COUNT, COUNT) in err, err
            assert err.count(": connected to %s" % hosts) >= 2, \
                "the publisher did not reconnect:\n%s" % err
            want = {str(i) for i in range(1, COUNT + 1)}
            try:
                wait_until(lambda: want <= set(sub.lines()), WAIT * 2, interval=0.1,
                           what="every acknowledged message at the subscriber")
            except AssertionError:
                missing = sorted(want - set(sub.lines()), key=int)
                raise AssertionError("QoS 1 messages lost: %d of %d, first %s\nsubscriber:\n%s"
                                     % (len(missing), COUNT, missing[:20], sub.text("err")))
            assert set(sub.lines()) <= want
            assert sub.text("err").count("subscriber: connected to") >= 2, sub.text("err")
        finally:
            for p in procs:
                p.close()


def _openssl(d, *args):
    r = subprocess.run(["openssl"] + list(args), cwd=d, capture_output=True, text=True,
                       timeout=WAIT)
    assert r.returncode == 0, r.stderr


def _pki(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, in d."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl(d, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=example-ca")
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        _openssl(d, "req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj",
                 "/CN=" + name)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        _openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", name + ".ext", "-out",
                 name + ".crt")
    return lambda name: os.path.join(d, name)


# TLS with client certificates on both examples, and the publisher's last will when it dies
# without a DISCONNECT (kill -9 of the publisher process).
def test_tls_and_last_will(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    pki = _pki(str(tmp_path))
    port = free_port()
    conf = ("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n"
            "require_certificate true\n" % (port, pki("ca.crt"), pki("server.crt"),
                                            pki("server.key")))
    tls = ["--cafile", pki("ca.crt"), "--cert", pki("client.crt"), "--key", pki("client.key")]
    with Broker(conf) as b:
        hosts = "127.0.0.1:%d" % b.port
        tmp = str(tmp_path)
        procs = []
        try:
            sub = Example(tmp, "subscriber.py", [
                "--hosts", hosts, "-t", "tls/seq", "-t", "tls/status", "-v", "-i", "ex1-tls-sub",
                "--clean-session"] + tls)
            procs.append(sub)
            wait_until(lambda: "subscriber: subscribed to" in sub.text("err"), WAIT,
                       interval=0.05, what="the subscriber's SUBACK over TLS")
            pub = Example(tmp, "publisher.py", [
                "--hosts", hosts, "-t", "tls/seq", "-n", "0", "--interval", "0.02",
                "-i", "ex1-tls-pub", "--tls-version", "tlsv1.3", "--will-topic", "tls/status",
                "--will-payload", "gone", "--online-payload", "here"] + tls)
            procs.append(pub)
            wait_until(lambda: "tls/status here" in sub.lines()
                       and sum(ln.startswith("tls/seq ") for ln in sub.lines()) >= 20, WAIT,
                       interval=0.05, what="the publisher's messages over TLS")
            assert "tls/status gone" not in sub.lines()
            pub.proc.kill()
            pub.proc.wait(timeout=WAIT)
            wait_until(lambda: "tls/status gone" in sub.lines(), WAIT, interval=0.05,
                       what="the publisher's last will")
            seqs = [int(ln.split()[1]) for ln in sub.lines() if ln.startswith("tls/seq ")]
            assert seqs == list(range(1, len(seqs) + 1)), seqs[:30]
        finally:
            for p in procs:
                p.close()
