"""Cluster TLS end to end (cluster_cafile, cluster_certfile, cluster_keyfile): three starling
processes replicate a retained message while the recording proxies between them see no payload
in the clear (and do see it without TLS, so the check can fail); a node with a certificate of
another CA cannot join and does not disturb the leadership; one or two of the three directives
stop start-up. Certificates are made here with openssl."""

import os
import shutil
import subprocess
import tempfile
import time

import pytest

import harness
import scenarios
from cluster_harness import Cluster, free_ports_on
from pahoclient import V311, Client

MARKER = b"SECRET-PAYLOAD-1234"

CERTS_SH = r"""
set -e
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' >leaf.ext
for ca in ca other; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout $ca.key -out $ca.pem -days 2 -subj /CN=$ca-root
done
mk() {
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout $1.key -out $1.csr -subj /CN=$1
  openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -out $1.pem \
    -days 2 -extfile leaf.ext
}
mk node ca
mk rogue other
"""


@pytest.fixture(scope="module")
def certs():
    if shutil.which("openssl") is None:
        pytest.skip("no openssl")
    d = tempfile.mkdtemp(prefix="starling-ctls-")
    try:
        subprocess.run(["sh", "-c", CERTS_SH], cwd=d, check=True, capture_output=True,
                       timeout=60)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def tls_lines(d, who="node"):
    return ("cluster_cafile %s\ncluster_certfile %s\ncluster_keyfile %s\n"
            % (os.path.join(d, "ca.pem"), os.path.join(d, who + ".pem"),
               os.path.join(d, who + ".key")))


def publish_and_read_everywhere(c, topic):
    p = Client(c.nodes[1], "pub-" + topic.replace("/", "-"), V311)
    p.publish(topic, MARKER, qos=1, retain=True)
    p.disconnect()
    for nd in c.running():
        end = time.monotonic() + 10
        while True:
            s = Client(nd, "chk%d" % nd.id, V311)
            s.subscribe(topic, 1)
            try:
                m = s.expect(timeout=1.0, topic=topic)
            except AssertionError:
                m = None
            s.disconnect()
            if m is not None:
                assert m.payload == MARKER
                break
            assert time.monotonic() < end, "node %d never had the retained message" % nd.id


def test_no_plaintext_between_tls_nodes(certs):
    with Cluster(3, conf_extra=tls_lines(certs), record=True) as c:
        publish_and_read_everywhere(c, "secret/tls")
        wire = c.recorded_cluster_bytes()
        assert len(wire) > 1000, "the nodes did not talk through the proxies"
        assert MARKER not in wire, "the payload crossed between nodes in the clear"
        assert b"STCH" not in wire, "the cluster hello crossed in the clear"


def test_payload_visible_without_tls():
    """The control: the same capture without cluster TLS shows the payload."""
    with Cluster(3, record=True) as c:
        publish_and_read_everywhere(c, "secret/plain")
        assert MARKER in c.recorded_cluster_bytes()


def test_node_with_another_ca_stays_out(certs):
    def conf(node):
        return tls_lines(certs, "rogue" if node.id == 4 else "node")

    with Cluster(3, conf_extra=conf) as c:
        lead = c.leader()
        intruder = c.add_node(node_id=4, wait=False)
        intruder.removed = True  # never a member: left out of the cluster's views
        time.sleep(3 * scenarios.ELECTION_S)
        st = c.leader().status()
        assert intruder.id not in [m["id"] for m in st["members"]], st
        assert not intruder.ready()
        assert "TLS" in intruder.log_text(), intruder.log_tail()
        refused = any("certificate verify failed" in nd.log_text() for nd in c.nodes.values()
                      if nd.id != intruder.id)
        assert refused, "no member logged the refused certificate"
        intruder.kill9()
        assert c.leader().id == lead.id, "the intruder disturbed the leadership"
        publish_and_read_everywhere(c, "still/works")


def run_broker(certs, name, conf):
    path = os.path.join(certs, name)
    with open(path, "w") as f:
        f.write(conf)
    r = subprocess.run([harness.broker_bin(), "-c", path], capture_output=True, text=True,
                       timeout=20)
    return r.returncode, r.stdout + r.stderr


def test_incomplete_or_bad_tls_files_refused(certs):
    rc, out = run_broker(certs, "half.conf",
                         "cluster_cafile %s\n" % os.path.join(certs, "ca.pem"))
    assert rc != 0
    assert "cluster TLS needs all three" in out, out
    rc, out = run_broker(certs, "missing.conf", tls_lines(certs).replace("node.pem", "nope.pem"))
    assert rc != 0
    assert "cluster_certfile: cannot read" in out, out
    # All three readable, but the certificate is not one: the cluster port does not start.
    data = tempfile.mkdtemp(prefix="starling-ctls-data-")
    try:
        with open(os.path.join(certs, "secret"), "w") as f:
            f.write("s3cret\n")
        os.chmod(os.path.join(certs, "secret"), 0o600)
        port, cport = free_ports_on("127.0.0.1", 2)
        conf = ("listener %d 127.0.0.1\nnode_id 1\npersistence_location %s\n"
                "cluster_listen %d 127.0.0.1\ncluster_peers 1@127.0.0.1:%d\n"
                "cluster_secret_file %s\n" % (port, data, cport, cport,
                                                os.path.join(certs, "secret")))
        rc, out = run_broker(certs, "bad.conf",
                             conf + tls_lines(certs).replace("node.pem", "ca.key"))
        assert rc != 0
        assert "cannot load cluster_certfile" in out, out
    finally:
        shutil.rmtree(data, ignore_errors=True)
