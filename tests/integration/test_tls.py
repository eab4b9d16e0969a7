"""TLS listeners (certfile, keyfile, cafile, require_certificate, use_identity_as_username,
tls_version, SIGHUP reload) with mosquitto_pub/mosquitto_sub and paho-mqtt's tls_set, and the
refused cases (wrong CA, no client certificate, expired certificate, plain TCP to the TLS
port): each gives one clear log line and the broker keeps serving. Certificates are made here
with openssl."""

import os
import queue
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

import paho.mqtt.client as mqtt
import pytest

from harness import WAIT, Broker, free_port, is_mosquitto, run_broker, starling_only


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True,
                       timeout=WAIT)
    assert r.returncode == 0, r.stderr


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", name + ".key", "-out", name + ".crt", "-days", "30", "-subj",
            "/CN=" + name, cwd=d)


def make_cert(d, name, ca, cn, days=30, server=False):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            name + ".key", "-out", name + ".csr", "-subj", "/O=Starling Test/CN=" + cn, cwd=d)
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server else
                "extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
            "-CAcreateserial", "-days", str(days), "-extfile", ext, "-out", name + ".crt", cwd=d)


@pytest.fixture(scope="module")
def pki():
    d = tempfile.mkdtemp(prefix="starling-tls-")
    make_ca(d, "ca")
    make_ca(d, "otherca")
    make_cert(d, "server", "ca", "localhost", server=True)
    make_cert(d, "server2", "otherca", "localhost", server=True)
    make_cert(d, "alice", "ca", "alice")
    make_cert(d, "bob", "ca", "bob")
    make_cert(d, "expired", "ca", "old", days=-1)
    make_cert(d, "stranger", "otherca", "alice")
    yield lambda name: os.path.join(d, name)
    shutil.rmtree(d, ignore_errors=True)


def tls_conf(pki, port, extra=""):
    return ("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n%s"
            % (port, pki("ca.crt"), pki("server.crt"), pki("server.key"), extra))


class Paho:
    """A paho-mqtt 3.1.1 client over TLS; connect() returns the CONNACK code or raises."""

    def __init__(self, port, ca, cert=None, key=None, client_id="", context=None):
        self.port = port
        self.c = mqtt.Client(client_id=client_id, clean_session=True)
        if context is not None:
            self.c.tls_set_context(context)
        else:
            self.c.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
        self.msgs = queue.Queue()
        self.connack = queue.Queue()
        self.subacks = queue.Queue()
        self.c.on_connect = lambda c, u, f, rc: self.connack.put(rc)
        self.c.on_message = lambda c, u, m: self.msgs.put((m.topic, m.payload))
        self.c.on_subscribe = lambda c, u, mid, granted: self.subacks.put(granted)

    def connect(self):
        self.c.connect("127.0.0.1", self.port, keepalive=30)
        self.c.loop_start()
        return self.connack.get(timeout=WAIT)

    def subscribe(self, topic, qos=0):
        self.c.subscribe(topic, qos)
        return self.subacks.get(timeout=WAIT)

    def publish(self, topic, payload, qos=1):
        self.c.publish(topic, payload, qos).wait_for_publish()

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def tls_fails(port, ca, cert=None, key=None, context=None):
    """True when a TLS connection (and MQTT CONNECT) with these credentials does not work."""
    try:
        p = Paho(port, ca, cert, key, context=context)
        p.c.connect("127.0.0.1", port, keepalive=30)
        p.c.loop_start()
    except (ssl.SSLError, OSError):
        return True
    # With TLS 1.3 the refusal of a client certificate arrives after connect() returned: the
    # client's network thread then ends with the error.
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            rc = p.connack.get(timeout=0.05)
            p.close()
            return rc != 0
        except queue.Empty:
            if p.c._thread is None or not p.c._thread.is_alive():
                return True
    p.c.loop_stop()
    return True


def pub_sub_roundtrip(port, pki, cert=None, key=None, topic="tls/t"):
    sub = Paho(port, pki("ca.crt"), cert, key)
    assert sub.connect() == 0
    assert sub.subscribe(topic, 1) == (1,)
    pub = Paho(port, pki("ca.crt"), cert, key)
    assert pub.connect() == 0
    pub.publish(topic, b"over tls")
    assert sub.msgs.get(timeout=WAIT) == (topic, b"over tls")
    pub.close()
    sub.close()


def test_mosquitto_clients_with_cafile(pki):
    port = free_port()
    with Broker(tls_conf(pki, port)) as b:
        sub = subprocess.Popen(["mosquitto_sub", "-h", "localhost", "-p", str(port), "--cafile",
                                pki("ca.crt"), "-t", "tls/#", "-C", "1", "-W", "10", "-v"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            b.wait_log("New client connected")
            r = subprocess.run(["mosquitto_pub", "-h", "localhost", "-p", str(port), "--cafile",
                                pki("ca.crt"), "-t", "tls/x", "-m", "hello tls", "-q", "1"],
                               capture_output=True, text=True, timeout=WAIT)
            assert r.returncode == 0, r.stderr
            out, err = sub.communicate(timeout=WAIT)
            assert out.strip() == "tls/x hello tls", err
        finally:
            if sub.poll() is None:
                sub.kill()
                sub.wait()


def test_paho_tls_set(pki):
    port = free_port()
    with Broker(tls_conf(pki, port)):
        pub_sub_roundtrip(port, pki)


def test_mtls_and_refused_cases(pki):
    port = free_port()
    with Broker(tls_conf(pki, port, "require_certificate true\n")) as b:
        # a certificate signed by cafile: accepted (mosquitto_pub --cert/--key too)
        pub_sub_roundtrip(port, pki, pki("alice.crt"), pki("alice.key"))
        r = subprocess.run(["mosquitto_pub", "-h", "localhost", "-p", str(port), "--cafile",
                            pki("ca.crt"), "--cert", pki("alice.crt"), "--key", pki("alice.key"),
                            "-t", "tls/m", "-m", "x"], capture_output=True, text=True,
                           timeout=WAIT)
        assert r.returncode == 0, r.stderr
        if is_mosquitto():
            return
        # no client certificate
        assert tls_fails(port, pki("ca.crt"))
        b.wait_log("no client certificate")
        # a certificate from another CA
        assert tls_fails(port, pki("ca.crt"), pki("stranger.crt"), pki("stranger.key"))
        b.wait_log("not signed by a trusted CA")
        # an expired certificate
        assert tls_fails(port, pki("ca.crt"), pki("expired.crt"), pki("expired.key"))
        b.wait_log("client certificate expired")
        # plain MQTT to the TLS port
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
            s.sendall(bytes([0x10, 0x0c, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 30, 0, 0]))
            s.settimeout(WAIT)
            try:
                while s.recv(100):
                    pass
            except (ConnectionResetError, socket.timeout):
                pass
        b.wait_log("not a TLS client hello")
        # one line each, and the broker still serves
        log = b.log_text()
        assert log.count("refused: TLS handshake failed") >= 4, log
        pub_sub_roundtrip(port, pki, pki("bob.crt"), pki("bob.key"))
        assert b.alive()


def test_certificate_identity_is_not_checked_against_password_file(pki):
    """With use_identity_as_username the certificate is the authentication: a password_file on
    the same listener is not consulted for it (Mosquitto's behaviour)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        pw = os.path.join(d, "passwd")
        subprocess.run(["mosquitto_passwd", "-c", "-b", pw, "someoneelse", "secret"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conf = tls_conf(pki, port, "require_certificate true\nuse_identity_as_username true\n"
                        "allow_anonymous false\npassword_file %s\n" % pw)
        with Broker(conf) as b:
            alice = Paho(port, pki("ca.crt"), pki("alice.crt"), pki("alice.key"), "a2")
            assert alice.connect() == 0
            assert alice.subscribe("alice/#", 1) == (1,)
            alice.close()
            if not is_mosquitto():
                b.wait_log("u'alice'")


@pytest.mark.parametrize("option", ["use_identity_as_username", "use_subject_as_username"])
def test_certificate_name_as_username_with_acl(pki, option):
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        acl = os.path.join(d, "acl")
        if option == "use_identity_as_username":
            alice_name, bob_name = "alice", "bob"
        else:
            alice_name, bob_name = "CN=alice,O=Starling Test", "CN=bob,O=Starling Test"
        with open(acl, "w") as f:
            f.write("user %s\ntopic readwrite alice/#\n\nuser %s\ntopic readwrite bob/#\n"
                    % (alice_name, bob_name))
        conf = tls_conf(pki, port, "require_certificate true\n%s true\n"
                        "allow_anonymous false\nacl_file %s\n" % (option, acl))
        with Broker(conf) as b:
            alice = Paho(port, pki("ca.crt"), pki("alice.crt"), pki("alice.key"), "a1")
            assert alice.connect() == 0
            assert alice.subscribe("alice/#", 1) == (1,)
            # the ACL denies it to alice (Mosquitto grants it and filters the deliveries)
            assert alice.subscribe("bob/#", 1) == ((1,) if is_mosquitto() else (128,))
            bob = Paho(port, pki("ca.crt"), pki("bob.crt"), pki("bob.key"), "b1")
            assert bob.connect() == 0
            bob.publish("alice/in", b"allowed?")  # bob may not write alice/#: dropped
            bob.publish("bob/x", b"bob's own")
            alice.publish("alice/x", b"alice's own")
            assert alice.msgs.get(timeout=WAIT) == ("alice/x", b"alice's own")
            time.sleep(0.3)
            assert alice.msgs.empty()
            alice.close()
            bob.close()
            b.wait_log("as a1")
            if not is_mosquitto():
                b.wait_log("u'%s'" % alice_name)


@pytest.mark.parametrize("version", ["tlsv1.2", "tlsv1.3"])
def test_tls_version_restricts(pki, version):
    port = free_port()
    with Broker(tls_conf(pki, port, "tls_version %s\n" % version)) as b:
        ok = ssl.TLSVersion.TLSv1_2 if version == "tlsv1.2" else ssl.TLSVersion.TLSv1_3
        bad = ssl.TLSVersion.TLSv1_3 if version == "tlsv1.2" else ssl.TLSVersion.TLSv1_2

        def ctx(v):
            c = ssl.create_default_context(cafile=pki("ca.crt"))
            c.minimum_version = c.maximum_version = v
            return c

        assert not tls_fails(port, None, context=ctx(ok))
        if not is_mosquitto():  # Mosquitto 2.0.11 with tlsv1.2 still accepts TLS 1.3
            assert tls_fails(port, None, context=ctx(bad))
            b.wait_log("refused: TLS handshake failed")
        assert not tls_fails(port, None, context=ctx(ok))


def test_both_versions_by_default(pki):
    port = free_port()
    with Broker(tls_conf(pki, port)):
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            c = ssl.create_default_context(cafile=pki("ca.crt"))
            c.minimum_version = c.maximum_version = v
            assert not tls_fails(port, None, context=c)


def test_sighup_reloads_certificates(pki):
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        crt, key = os.path.join(d, "s.crt"), os.path.join(d, "s.key")
        shutil.copy(pki("server.crt"), crt)
        shutil.copy(pki("server.key"), key)
        conf = "listener %d 127.0.0.1\ncertfile %s\nkeyfile %s\n" % (port, crt, key)
        with Broker(conf) as b:
            held = Paho(port, pki("ca.crt"))
            assert held.connect() == 0
            assert tls_fails(port, pki("otherca.crt"))
            # the certificate is replaced by one from another CA, then SIGHUP
            shutil.copy(pki("server2.crt"), crt)
            shutil.copy(pki("server2.key"), key)
            b.sighup()
            if not is_mosquitto():
                b.wait_log("Reloaded the TLS certificates")
            else:
                time.sleep(1)
            assert not tls_fails(port, pki("otherca.crt"))
            assert tls_fails(port, pki("ca.crt"))
            # the connection made before the reload goes on
            assert held.subscribe("still/here", 0) == (0,)
            held.close()
            # a broken file on reload: the certificates in force stay
            if not is_mosquitto():
                with open(key, "w") as f:
                    f.write("not a key\n")
                b.sighup()
                b.wait_log("the certificates in force stay")
                assert not tls_fails(port, pki("otherca.crt"))


def test_bad_certificate_files_stop_start_up(pki):
    starling_only("the message is Starling's")
    with tempfile.TemporaryDirectory() as d:
        if os.getuid() == 0:
            os.chmod(d, 0o777)  # the broker may drop root privileges before failing
        conf = os.path.join(d, "c.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\ncertfile %s\nkeyfile %s\n"
                    % (free_port(), os.path.join(d, "missing.crt"), pki("server.key")))
        r = run_broker(["-c", conf], cwd=d)
        assert r.returncode != 0
        assert "cannot load certfile" in r.stdout + r.stderr
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\ncertfile %s\nkeyfile %s\n"
                    % (free_port(), pki("server.crt"), pki("server.csr")))
        r = run_broker(["-c", conf], cwd=d)
        assert r.returncode != 0
        assert "cannot load keyfile" in r.stdout + r.stderr
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\npsk_hint x\n" % free_port())
        r = run_broker(["-c", conf], cwd=d)
        assert r.returncode != 0
        assert "not supported by this build" in r.stdout + r.stderr


def test_stalled_handshake_does_not_block_others(pki):
    port = free_port()
    with Broker(tls_conf(pki, port)) as b:
        # a client that sends half a ClientHello and waits
        stalled = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        stalled.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
        try:
            pub_sub_roundtrip(port, pki)
            # ... and is dropped after the connect grace period (10 s)
            if not is_mosquitto():
                b.wait_log("TLS handshake not completed in 10 s", timeout=WAIT + 10)
                stalled.settimeout(WAIT)
                assert stalled.recv(100) == b""
        finally:
            stalled.close()
