"""Multi-node harness: real `starling` processes on 127.0.0.1 .. 127.0.0.n, bounded waits.

    with Cluster(n=3) as c:
        leader = c.leader()
        cl = Client(c.nodes[1], "sub", V5)       # pahoclient.Client works with a Node
        leader.kill9(); c.wait_leader(exclude=[leader]); leader.start(); c.wait_ready()
        c.partition([1], [2, 3]); ...; c.heal()

Every node gets its own loopback address (node i on 127.0.0.i), free ports for MQTT, the
cluster port and the admin API, a data dir and a log; all nodes share one secret file.

Partitions without privileges: each node's cluster port is reached through a TCP proxy
(LinkProxy) on the node's address. Every node's `cluster_peers` and `cluster_advertise` name
the proxies, so all Raft and node-link traffic crosses them. A proxy learns which node dialed
from the cluster hello ("STCH", node id at offset 16), so cutting the pair (a, b) refuses new
connections and closes open ones between a and b, in both directions, while MQTT and admin
traffic is untouched. proxy=False dials the cluster ports directly (no partitions).

Every process is killed and every temp dir removed on every path out of the `with` block
(failure, KeyboardInterrupt); on failure the tail of every node's log is printed.
"""

import json
import os
import select
import shutil
import signal
import socket
import struct
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest

import harness
from harness import WAIT, wait_until

# Raft's default election timeout is 1 s; a new leader, a rejoin or a catch-up takes a few.
CLUSTER_WAIT = float(os.environ.get("STARLING_CLUSTER_WAIT", str(max(WAIT, 10) * 3)))
HELLO_MAGIC = b"STCH"
HELLO_ID_END = 24  # "STCH" | version | channel | addr_len u16 | cluster u64 | node_id u64


def node_host(node_id):
    if not 1 <= node_id <= 254:
        raise ValueError("node ids 1..254 map to 127.0.0.<id>")
    return "127.0.0.%d" % node_id


def free_port_on(host):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_ports_on(host, n):
    """n distinct free ports (every socket held until all are chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def loopback_usable(host):
    try:
        free_port_on(host)
        return True
    except OSError:
        return False


def ctl_bin():
    """starling-ctl beside the broker (or $STARLING_CTL), or None."""
    path = os.environ.get("STARLING_CTL")
    if not path:
        path = os.path.join(os.path.dirname(harness.broker_bin()), "starling-ctl")
    return path if os.path.exists(path) else None


# ---- the link proxy ------------------------------------------------------------------------


class _Pipe:
    """One proxied connection: src node -> dst node (src None until the hello is read)."""

    def __init__(self, proxy, client):
        self.proxy = proxy
        self.client = client
        self.server = None
        self.src = None
        self.closed = False
        self.lock = threading.Lock()
        self.recorded = bytearray()

    def close(self):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.client, self.server):
            if s is None:
                continue
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        self.proxy._forget(self)


class LinkProxy:
    """TCP proxy in front of one node's cluster port; the cluster decides which pairs pass."""

    def __init__(self, cluster, node_id, host, target_port, record=False):
        self.cluster = cluster
        self.node_id = node_id
        self.host = host
        self.target_port = target_port
        self.record = record
        self.recorded_cap = 4 << 20
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.pipes = set()
        self.lock = threading.Lock()
        self.stopping = False
        self.accepted = 0
        self.refused = 0
        self.thread = threading.Thread(target=self._accept_loop, daemon=True,
                                       name="proxy-%d" % node_id)
        self.thread.start()

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    def _forget(self, pipe):
        with self.lock:
            self.pipes.discard(pipe)

    def _accept_loop(self):
        while not self.stopping:
            try:
                client, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            pipe = _Pipe(self, client)
            with self.lock:
                self.pipes.add(pipe)
            threading.Thread(target=self._serve, args=(pipe,), daemon=True).start()

    def _serve(self, pipe):
        # Read the hello's fixed head to learn the dialer's node id (bounded wait).
        head = b""
        deadline = time.monotonic() + 5
        try:
            while len(head) < HELLO_ID_END and time.monotonic() < deadline:
                r, _, _ = select.select([pipe.client], [], [], 0.2)
                if not r:
                    continue
                chunk = pipe.client.recv(HELLO_ID_END - len(head))
                if not chunk:
                    break
                head += chunk
                if head[:4] != HELLO_MAGIC[:len(head[:4])]:
                    break  # not a hello: the dialer stays unknown
        except OSError:
            pipe.close()
            return
        if len(head) >= HELLO_ID_END and head[:4] == HELLO_MAGIC:
            pipe.src = struct.unpack(">Q", head[16:24])[0]
        if self.stopping or not self.cluster._link_allowed(pipe.src, self.node_id):
            self.refused += 1
            pipe.close()
            return
        try:
            pipe.server = socket.create_connection((self.host, self.target_port), timeout=2)
            pipe.server.settimeout(None)
            if head:
                pipe.server.sendall(head)
        except OSError:
            pipe.close()
            return
        self.accepted += 1
        if self.record and head:
            pipe.recorded += head
        threading.Thread(target=self._pump, args=(pipe, pipe.server, pipe.client, False),
                         daemon=True).start()
        self._pump(pipe, pipe.client, pipe.server, True)

    def _pump(self, pipe, src, dst, record):
        try:
            while not pipe.closed:
                data = src.recv(65536)
                if not data:
                    break
                if pipe.closed:
                    break
                if self.record and len(pipe.recorded) < self.recorded_cap:
                    pipe.recorded += data[: self.recorded_cap - len(pipe.recorded)]
                dst.sendall(data)
        except OSError:
            pass
        pipe.close()

    def cut(self, pred):
        """Close every open connection whose (src, this node) satisfies pred."""
        with self.lock:
            victims = [p for p in self.pipes if pred(p.src, self.node_id)]
        for p in victims:
            p.close()

    def recorded_bytes(self):
        with self.lock:
            return b"".join(bytes(p.recorded) for p in self.pipes)

    def stop(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            pipes = list(self.pipes)
        for p in pipes:
            p.close()


# ---- one node --------------------------------------------------------------------------------


class Node:
    """One starling process. `host`/`port` make it usable as pahoclient.Client's broker."""

    def __init__(self, cluster, node_id, peers_line=None, join=None):
        self.cluster = cluster
        self.id = node_id
        self.host = node_host(node_id)
        self.port, self.cluster_port, self.admin_port = free_ports_on(self.host, 3)
        self.proxy = None
        if cluster.use_proxy:
            self.proxy = LinkProxy(cluster, node_id, self.host, self.cluster_port,
                                   record=cluster.record)
            self.advertise = self.proxy.address
        else:
            self.advertise = "%s:%d" % (self.host, self.cluster_port)
        self.peers_line = peers_line
        self.join = join
        self.removed = False
        self.secret_file = cluster.secret_file  # another file: a node that cannot prove it
        self.broker = None
        self.stopped = False  # SIGSTOPped

    def conf(self):
        lines = [
            "listener %d %s" % (self.port, self.host),
            "node_id %d" % self.id,
            "cluster_listen %d %s" % (self.cluster_port, self.host),
            "cluster_advertise %s" % self.advertise,
            "admin_listener %d %s" % (self.admin_port, self.host),
        ]
        if self.secret_file:
            lines.append("cluster_secret_file %s" % self.secret_file)
        if self.cluster.token_file:
            lines.append("admin_token_file %s" % self.cluster.token_file)
        if self.join:
            lines.append("cluster_join %s" % self.join)
        else:
            lines.append("cluster_peers %s" % self.peers_line)
        extra = self.cluster.conf_extra
        if callable(extra):
            extra = extra(self)
        if isinstance(extra, dict):
            extra = harness._conf_text(extra)
        return "\n".join(lines) + "\n" + (extra or "")

    def create(self):
        self.broker = harness.Broker(self.conf(), start=False, host=self.host,
                                     env=self.cluster.env)
        return self

    # --- process control ---------------------------------------------------------------

    def start(self, wait=True):
        """Start (first time, or again after kill9/sigterm) with the same data dir."""
        if self.broker.proc is not None and getattr(self.broker, "_logf", None):
            self.broker._logf.close()
        self.stopped = False
        self.broker.start()
        if wait:
            self.wait_ready()
        return self

    def kill9(self):
        if self.stopped:
            self.sigcont()
        self.broker.kill9()

    def sigstop(self):
        self.broker.proc.send_signal(signal.SIGSTOP)
        self.stopped = True

    def sigcont(self):
        self.broker.proc.send_signal(signal.SIGCONT)
        self.stopped = False

    def sigterm(self, timeout=CLUSTER_WAIT):
        """SIGTERM and wait; asserts exit status 0."""
        if self.stopped:
            self.sigcont()
        rc = self.broker.stop(signal.SIGTERM, timeout=timeout)
        assert rc == 0, "node %d: exit status %s after SIGTERM:\n%s" % (
            self.id, rc, self.broker.log_tail())
        return rc

    def restart(self, wait=True):
        self.sigterm()
        return self.start(wait=wait)

    def alive(self):
        return self.broker is not None and self.broker.alive()

    def running(self):
        """Alive and not SIGSTOPped."""
        return self.alive() and not self.stopped

    @property
    def pid(self):
        return self.broker.pid

    @property
    def data_dir(self):
        return self.broker.data_dir

    def log_text(self):
        return self.broker.log_text()

    def log_tail(self, n=60):
        return self.broker.log_tail(n)

    def wait_log(self, needle, timeout=WAIT):
        return self.broker.wait_log(needle, timeout)

    # --- admin API ---------------------------------------------------------------------

    @property
    def admin_url(self):
        return "http://%s:%d" % (self.host, self.admin_port)

    @property
    def admin_address(self):
        return "%s:%d" % (self.host, self.admin_port)

    def http(self, method, path, body=None, timeout=2.0):
        """(status, parsed JSON or text) or (None, error string) when unreachable."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.admin_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.cluster.token:
            req.add_header("Authorization", "Bearer " + self.cluster.token)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (OSError, urllib.error.URLError) as e:
            return None, str(e)
        try:
            return status, json.loads(raw.decode() or "null")
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def ready(self):
        if not self.running():
            return False
        status, _ = self.http("GET", "/readyz", timeout=1.0)
        return status == 200

    def status(self):
        """GET /api/v1/cluster as a dict, or None when it does not answer."""
        if not self.running():
            return None
        st, body = self.http("GET", "/api/v1/cluster", timeout=1.0)
        return body if st == 200 and isinstance(body, dict) else None

    def wait_ready(self, timeout=CLUSTER_WAIT):
        last = [None]

        def ok():
            if not self.alive():
                raise AssertionError("node %d exited with %s:\n%s" % (
                    self.id, self.broker.proc.returncode, self.log_tail()))
            if not self.running():
                return False
            last[0] = self.http("GET", "/readyz", timeout=1.0)
            return last[0][0] == 200
        try:
            wait_until(ok, timeout, interval=0.1, what="node %d /readyz" % self.id)
        except AssertionError as e:
            raise AssertionError("%s (last answer %s; /api/v1/cluster: %s)"
                                 % (e, last[0], self.status())) from None
        return self

    def __repr__(self):
        return "Node(%d, %s:%d)" % (self.id, self.host, self.port)


# ---- the cluster -------------------------------------------------------------------------------


class Cluster:
    """n nodes bootstrapped from one static peer list.

    conf_extra: text, dict, or callable(node) -> text/dict appended to every node's conf.
    proxy: route the cluster ports through LinkProxy (partitions possible).
    token: bearer token for the admin API (admin_token_file), or None.
    record: the proxies keep the first MiB of each connection (recorded_bytes()).
    """

    def __init__(self, n=3, conf_extra=None, proxy=True, secret="s3cret-cluster-test",
                 token=None, record=False, start=True, env=None):
        self.n = n
        self.conf_extra = conf_extra
        self.use_proxy = proxy
        self.record = record
        self.token = token
        self.env = env
        self.nodes = {}
        self.groups = None  # None: no partition; else {node_id: group index}
        self.blocked = set()  # extra (a, b) pairs cut in both directions
        self._start = start
        self.tmp = tempfile.mkdtemp(prefix="starling-cluster-")
        self.secret_file = None
        self.token_file = None
        if secret:
            self.secret_file = os.path.join(self.tmp, "secret")
            with open(self.secret_file, "w") as f:
                f.write(secret + "\n")
            os.chmod(self.secret_file, 0o600)
        if token:
            self.token_file = os.path.join(self.tmp, "token")
            with open(self.token_file, "w") as f:
                f.write(token + "\n")
            os.chmod(self.token_file, 0o600)

    # --- set-up ------------------------------------------------------------------------

    def _check_env(self):
        harness.broker_bin()  # skips when there is no binary
        if harness.is_mosquitto():
            pytest.skip("the cluster tests need starling")
        for i in range(1, self.n + 1):
            if not loopback_usable(node_host(i)):
                pytest.skip("cannot bind %s (need 127.0.0.0/8 on lo)" % node_host(i))

    def start(self):
        self._check_env()
        ids = list(range(1, self.n + 1))
        for i in ids:
            self.nodes[i] = Node(self, i)
        peers = " ".join("%d@%s" % (i, self.nodes[i].advertise) for i in ids)
        for i in ids:
            self.nodes[i].peers_line = peers
            self.nodes[i].create()
        for i in ids:
            self.nodes[i].start(wait=False)
        self.wait_ready()
        return self

    def __enter__(self):
        if self._start:
            try:
                self.start()
            except BaseException:
                self._cleanup(failed=True)
                raise
        return self

    def __exit__(self, et, ev, tb):
        failed = et is not None
        try:
            if not failed:
                self.stop_all()
        except BaseException:
            failed = True
            raise
        finally:
            self._cleanup(failed=failed)
        return False

    def stop_all(self, timeout=CLUSTER_WAIT):
        """SIGTERM every running node at once; asserts every exit status is 0."""
        live = [nd for nd in self.nodes.values() if nd.alive()]
        for nd in live:
            if nd.stopped:
                nd.sigcont()
            nd.broker.proc.send_signal(signal.SIGTERM)
        bad = []
        deadline = time.monotonic() + timeout
        for nd in live:
            try:
                rc = nd.broker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:
                nd.broker.proc.kill()
                nd.broker.proc.wait(timeout=WAIT)
                rc = "timeout"
            if rc != 0:
                bad.append("node %d: exit status %s after SIGTERM:\n%s"
                           % (nd.id, rc, nd.log_tail(40)))
        assert not bad, "\n".join(bad)

    def _cleanup(self, failed=False):
        for nd in self.nodes.values():
            b = nd.broker
            if b is None:
                continue
            try:
                if b.proc is not None and b.proc.poll() is None:
                    if nd.stopped:
                        b.proc.send_signal(signal.SIGCONT)
                    b.proc.kill()
                    b.proc.wait(timeout=WAIT)
            except Exception:
                pass
        for nd in self.nodes.values():
            if nd.proxy is not None:
                nd.proxy.stop()
        if failed:
            for nd in self.nodes.values():
                if nd.broker is not None:
                    print("---- node %d log (%s) ----\n%s"
                          % (nd.id, nd.broker.log, nd.broker.log_tail(150)))
        for nd in self.nodes.values():
            if nd.broker is not None:
                nd.broker._cleanup(failed=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- views -------------------------------------------------------------------------

    def node(self, node_id):
        return self.nodes[node_id]

    def members(self):
        """Nodes that are part of the cluster (not removed)."""
        return [nd for nd in self.nodes.values() if not nd.removed]

    def running(self):
        return [nd for nd in self.members() if nd.running()]

    def statuses(self, nodes=None):
        out = {}
        for nd in nodes if nodes is not None else self.running():
            out[nd.id] = nd.status()
        return out

    def leader_view(self, nodes=None):
        """The leader id that every given node reports, or None when they do not agree."""
        sts = self.statuses(nodes)
        leaders = {s.get("leader") if s else None for s in sts.values()}
        if len(leaders) != 1:
            return None
        (lid,) = leaders
        return lid if lid else None

    def wait_leader(self, nodes=None, exclude=(), timeout=CLUSTER_WAIT):
        """Wait until the given (default: running, not excluded) nodes agree on a leader that
        is one of them; returns its Node."""
        ex = {x.id if isinstance(x, Node) else x for x in exclude}

        def agreed():
            group = nodes if nodes is not None else [nd for nd in self.running()
                                                     if nd.id not in ex]
            lid = self.leader_view(group)
            if lid is None or lid in ex or lid not in {nd.id for nd in group}:
                return None
            return self.nodes[lid]
        return wait_until(agreed, timeout, interval=0.1, what="an agreed leader")

    def leader(self, timeout=CLUSTER_WAIT):
        return self.wait_leader(timeout=timeout)

    def followers(self):
        lid = self.leader().id
        return [nd for nd in self.running() if nd.id != lid]

    def wait_ready(self, nodes=None, timeout=CLUSTER_WAIT):
        """Every given node (default: running members) answers /readyz 200, and they agree on
        a leader; returns the leader."""
        group = nodes if nodes is not None else self.running()
        deadline = time.monotonic() + timeout
        for nd in group:
            nd.wait_ready(timeout=max(0.5, deadline - time.monotonic()))
        return self.wait_leader(nodes=group, timeout=max(0.5, deadline - time.monotonic()))

    def wait_members(self, pred, timeout=CLUSTER_WAIT, what="membership"):
        """Wait until pred(members list of the leader's /api/v1/cluster) is true."""
        def ok():
            try:
                lead = self.wait_leader(timeout=2)
            except AssertionError:
                return None
            st = lead.status()
            return st if st and pred(st.get("members", [])) else None
        return wait_until(ok, timeout, interval=0.2, what=what)

    def wait_alive_view(self, ids_alive, ids_dead=(), timeout=CLUSTER_WAIT):
        """Wait until the leader reports exactly these members alive / dead."""
        want_up, want_down = set(ids_alive), set(ids_dead)

        def pred(members):
            up = {m["id"] for m in members if m.get("alive")}
            down = {m["id"] for m in members if not m.get("alive")}
            return want_up <= up and want_down <= down
        return self.wait_members(pred, timeout, "alive %s, dead %s" % (sorted(want_up),
                                                                       sorted(want_down)))

    # --- membership --------------------------------------------------------------------

    def _post_to_leader(self, path, body, timeout=CLUSTER_WAIT):
        """POST to the current leader, retrying through elections; returns the body."""
        last = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                lead = self.wait_leader(timeout=max(0.5, deadline - time.monotonic()))
            except AssertionError as e:
                last = str(e)
                continue
            st, resp = lead.http("POST", path, body, timeout=CLUSTER_WAIT)
            if st is not None and 200 <= st < 300:
                return resp
            last = "%s %s -> %s %s" % (lead, path, st, resp)
            time.sleep(0.3)
        raise AssertionError("POST %s %s failed: %s" % (path, body, last))

    def add_node(self, node_id=None, wait=True, timeout=CLUSTER_WAIT, secret=None):
        """Start a new node that joins through the leader; waits until it is a voter and
        ready. secret: another cluster secret for this node (it must not get in)."""
        if node_id is None:
            node_id = max(self.nodes) + 1
        assert node_id not in self.nodes
        if not loopback_usable(node_host(node_id)):
            pytest.skip("cannot bind %s" % node_host(node_id))
        lead = self.leader()
        nd = Node(self, node_id, join=lead.advertise)
        if secret is not None:
            nd.secret_file = os.path.join(self.tmp, "secret-%d" % node_id)
            with open(nd.secret_file, "w") as f:
                f.write(secret + "\n")
            os.chmod(nd.secret_file, 0o600)
        self.nodes[node_id] = nd
        nd.create()
        nd.start(wait=False)
        if wait:
            self.wait_members(lambda ms: any(m["id"] == node_id and m.get("role") == "voter"
                                             for m in ms), timeout,
                              "node %d a voter" % node_id)
            nd.wait_ready(timeout)
        return nd

    def join_via_api(self, node_id):
        """POST /api/v1/cluster/join for a node (the admin path, not cluster_join)."""
        nd = self.nodes[node_id]
        return self._post_to_leader("/api/v1/cluster/join", {"id": node_id,
                                                             "address": nd.advertise})

    def remove_node(self, node_id, stop=True, timeout=CLUSTER_WAIT):
        """POST remove to the leader, wait until the node left the configuration, then SIGTERM
        it (exit 0 asserted) unless stop=False."""
        self._post_to_leader("/api/v1/cluster/remove", {"id": node_id}, timeout)
        self.wait_members(lambda ms: all(m["id"] != node_id for m in ms), timeout,
                          "node %d removed" % node_id)
        nd = self.nodes[node_id]
        nd.removed = True
        if stop and nd.alive():
            nd.sigterm()
        return nd

    def transfer(self, node_id, timeout=CLUSTER_WAIT):
        self._post_to_leader("/api/v1/cluster/transfer", {"id": node_id}, timeout)
        return wait_until(lambda: self.leader_view() == node_id, timeout, interval=0.1,
                          what="leadership at node %d" % node_id)

    def rolling_restart(self, between=None, timeout=CLUSTER_WAIT):
        """SIGTERM (exit 0) and start every member in turn, waiting for readiness and an agreed
        leader each time; between(node) runs after each restart (checks under traffic)."""
        for nd in list(self.members()):
            nd.restart(wait=False)
            self.wait_ready(timeout=timeout)
            if between is not None:
                between(nd)

    # --- partitions ----------------------------------------------------------------------

    def _group_of(self, node_id):
        if self.groups is None or node_id is None:
            return None
        return self.groups.get(node_id, -1)

    def _link_allowed(self, src, dst):
        if (src, dst) in self.blocked or (dst, src) in self.blocked:
            return False
        if self.groups is None:
            return True
        if src is None:  # not a node hello: let it pass only when no partition is set
            return False
        return self._group_of(src) == self._group_of(dst)

    def _recut(self):
        for nd in self.nodes.values():
            if nd.proxy is not None:
                nd.proxy.cut(lambda s, d: not self._link_allowed(s, d))

    def partition(self, *groups):
        """Split the cluster: nodes in different groups cannot reach each other's cluster
        port (nodes in no group are cut from everyone). partition([1], [2, 3])."""
        if not self.use_proxy:
            pytest.skip("partitions need the link proxies (Cluster(proxy=True))")
        g = {}
        for i, grp in enumerate(groups):
            for x in grp:
                g[x.id if isinstance(x, Node) else x] = i
        self.groups = g
        self._recut()

    def cut(self, a, b):
        """Cut the single pair (a, b) in both directions."""
        a = a.id if isinstance(a, Node) else a
        b = b.id if isinstance(b, Node) else b
        self.blocked.add((a, b))
        self._recut()

    def heal(self):
        self.groups = None
        self.blocked.clear()

    def recorded_cluster_bytes(self):
        return b"".join(nd.proxy.recorded_bytes() for nd in self.nodes.values()
                        if nd.proxy is not None)

    # --- helpers -----------------------------------------------------------------------

    def ctl(self, *args, node=None, timeout=WAIT):
        """Run starling-ctl -H <node admin> args...; returns CompletedProcess (skips without
        the binary)."""
        import subprocess
        path = ctl_bin()
        if path is None:
            pytest.skip("starling-ctl not built (set STARLING_CTL)")
        nd = node or self.leader()
        cmd = [path, "-H", nd.admin_address]
        if self.token_file:
            cmd += ["--token-file", self.token_file]
        return subprocess.run(cmd + list(args), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
