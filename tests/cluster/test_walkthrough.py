"""docs/bare-metal.md's commands against tools/local-cluster.sh: three nodes up, `starling-ctl
status`, a message published on one node and read on another (mosquitto_pub/_sub), a fourth
node added with cluster_join, then removed with `starling-ctl remove`, a rolling restart of
every node, and down. Node i runs on 127.0.0.i with the same ports on every node, as the
walkthrough's hosts do; the ports are free ones picked by the test, the state dir is a temp
dir, and every node is stopped (SIGKILL at last) on every path out.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile

import pytest

import harness
from cluster_harness import ctl_bin, loopback_usable, node_host

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.normpath(os.path.join(HERE, "..", "..", "tools", "local-cluster.sh"))
NODES = 4  # three, then a fourth that joins


def _port_free_everywhere(port):
    for i in range(1, NODES + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((node_host(i), port))
            except OSError:
                return False
    return True


def _free_ports(n):
    out = []
    while len(out) < n:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p not in out and _port_free_everywhere(p):
            out.append(p)
    return out


class LocalCluster:
    def __init__(self):
        harness.broker_bin()  # skips without a broker
        if harness.is_mosquitto():
            pytest.skip("the walkthrough needs starling")
        if ctl_bin() is None:
            pytest.skip("starling-ctl not built (set STARLING_CTL)")
        for i in range(1, NODES + 1):
            if not loopback_usable(node_host(i)):
                pytest.skip("cannot bind %s (need 127.0.0.0/8 on lo)" % node_host(i))
        for tool in ("mosquitto_pub", "mosquitto_sub", "stdbuf"):
            if shutil.which(tool) is None:
                pytest.skip("%s not installed (mosquitto-clients)" % tool)
        self.state = tempfile.mkdtemp(prefix="starling-local-cluster-")
        self.mqtt, cluster, admin = _free_ports(3)
        self.env = dict(os.environ,
                        STARLING_BIN=harness.broker_bin(), STARLING_CTL=ctl_bin(),
                        STARLING_LOCAL_CLUSTER_DIR=self.state,
                        STARLING_LOCAL_CLUSTER_MQTT_PORT=str(self.mqtt),
                        STARLING_LOCAL_CLUSTER_CLUSTER_PORT=str(cluster),
                        STARLING_LOCAL_CLUSTER_ADMIN_PORT=str(admin),
                        STARLING_LOCAL_CLUSTER_WAIT="60",
                        STARLING_LOCAL_CLUSTER_STOP_WAIT="30")
        self.admin = admin

    def run(self, *args, timeout=120, check=True):
        r = subprocess.run(["bash", SCRIPT] + [str(a) for a in args], env=self.env,
                           capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check:
            assert r.returncode == 0, "local-cluster.sh %s: status %d\n%s\n%s%s" % (
                " ".join(map(str, args)), r.returncode, r.stdout, r.stderr, self.logs())
        return r

    def ctl(self, node, *args):
        r = subprocess.run([ctl_bin(), "-H", "%s:%d" % (node_host(node), self.admin)]
                           + [str(a) for a in args], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, "starling-ctl %s: %d\n%s%s" % (args, r.returncode,
                                                                 r.stdout, r.stderr)
        return r.stdout

    def pid(self, node):
        try:
            with open(os.path.join(self.state, "node-%d" % node, "starling.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def alive(self, node):
        pid = self.pid(node)
        if pid is None:
            return False
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                return self.state.encode() in f.read()
        except OSError:
            return False

    def logs(self):
        out = []
        for i in range(1, NODES + 1):
            p = os.path.join(self.state, "node-%d" % i, "starling.log")
            if os.path.exists(p):
                with open(p, "rb") as f:
                    tail = f.read().decode("utf-8", "replace").splitlines()[-40:]
                out.append("---- node %d log ----\n%s" % (i, "\n".join(tail)))
        return "\n".join(out)

    def cleanup(self, failed):
        try:
            self.run("down", timeout=90, check=False)
        except subprocess.TimeoutExpired:
            pass
        for i in range(1, NODES + 1):
            if self.alive(i):
                os.kill(self.pid(i), signal.SIGKILL)
        if failed:
            print(self.logs())
        shutil.rmtree(self.state, ignore_errors=True)

    def pub_sub(self, pub_node, sub_node, topic, payload, retain=False):
        """mosquitto_sub on sub_node, mosquitto_pub on pub_node; returns what sub printed."""
        sub = None
        if not retain:
            # line-buffered, so that its SUBACK line shows before it exits
            sub = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-h", node_host(sub_node), "-p",
                                    str(self.mqtt), "-t", topic, "-q", "1", "-C", "1", "-W",
                                    "20", "-v", "-d"], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
            # wait for its SUBACK (-d prints it) before publishing
            lines = []
            for ln in sub.stdout:
                lines.append(ln)
                if "SUBACK" in ln:
                    break
            else:
                raise AssertionError("mosquitto_sub: no SUBACK:\n%s" % "".join(lines))
        r = subprocess.run(["mosquitto_pub", "-h", node_host(pub_node), "-p", str(self.mqtt),
                            "-t", topic, "-m", payload, "-q", "1"] + (["-r"] if retain else []),
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, "mosquitto_pub: %s%s" % (r.stdout, r.stderr)
        if retain:
            r = subprocess.run(["mosquitto_sub", "-h", node_host(sub_node), "-p",
                                str(self.mqtt), "-t", topic, "-q", "1", "-C", "1", "-W",
                                "20", "-v"], capture_output=True, text=True, timeout=30)
            return r.stdout
        try:
            out, _ = sub.communicate(timeout=30)
        finally:
            if sub.poll() is None:
                sub.kill()
                sub.wait()
        return "".join(ln for ln in out.splitlines(True)
                       if not ln.startswith(("Client ", "Subscribed ")))


def _members(ctl_out):
    """{id: (role, alive)} from `starling-ctl members`."""
    out = {}
    for ln in ctl_out.splitlines():
        f = ln.split()
        if len(f) >= 4 and f[0].isdigit():
            out[int(f[0])] = (f[2], f[3])
    return out


def _leader(status_out):
    m = re.search(r"^leader\s+(\d+)\s*$", status_out, re.M)
    return int(m.group(1)) if m else None


def test_walkthrough():
    lc = LocalCluster()
    failed = True
    try:
        # three hosts, any start order: the script starts them one after the other
        r = lc.run("up", 3)
        assert "ready: 1 2 3" in r.stdout, r.stdout
        conf = lc.run("conf", 2).stdout
        for line in ("node_id 2", "cluster_listen %s 127.0.0.2" % lc.env[
                "STARLING_LOCAL_CLUSTER_CLUSTER_PORT"], "cluster_peers 1@127.0.0.1:",
                "cluster_secret_file ", "admin_listener %d 127.0.0.2" % lc.admin):
            assert line in conf, conf

        # starling-ctl status: one leader, three alive voters, seen the same from every node
        st = lc.run("status").stdout
        assert re.search(r"^node 3\s+127\.0\.0\.3\s+running pid \d+, ready", st, re.M), st
        leaders = {_leader(lc.ctl(i, "status")) for i in (1, 2, 3)}
        assert len(leaders) == 1 and leaders.pop() in (1, 2, 3), leaders
        ms = _members(lc.ctl(1, "members"))
        assert ms == {1: ("voter", "yes"), 2: ("voter", "yes"), 3: ("voter", "yes")}, ms

        # a message published on node 1 reaches a subscriber on node 3; retained on node 2
        # is read on node 1
        assert lc.pub_sub(1, 3, "walk/a", "hello-3").strip() == "walk/a hello-3"
        assert lc.pub_sub(2, 1, "walk/ret", "kept", retain=True).strip() == "walk/ret kept"

        # a fourth host with cluster_join
        lc.run("join", 4)
        conf4 = lc.run("conf", 4).stdout
        assert "cluster_join 127.0.0." in conf4 and "cluster_peers" not in conf4, conf4
        ms = _members(lc.ctl(4, "members"))
        assert ms.get(4) == ("voter", "yes") and len(ms) == 4, ms
        assert lc.pub_sub(4, 2, "walk/b", "from-4").strip() == "walk/b from-4"
        assert lc.pub_sub(3, 4, "walk/ret", "x", retain=True).strip() == "walk/ret x"

        # remove it again: starling-ctl remove on the leader, then it is stopped
        lc.run("remove", 4)
        assert not lc.alive(4)
        ms = _members(lc.ctl(1, "members"))
        assert sorted(ms) == [1, 2, 3], ms

        # rolling upgrade: one node at a time, each ready before the next
        for i in (1, 2, 3):
            old = lc.pid(i)
            lc.run("restart", i)
            assert lc.alive(i) and lc.pid(i) != old
            assert _leader(lc.ctl(i, "status")) in (1, 2, 3)
        assert lc.pub_sub(3, 1, "walk/c", "after-roll").strip() == "walk/c after-roll"

        # down: every node stops
        lc.run("down")
        assert not any(lc.alive(i) for i in (1, 2, 3))
        st = lc.run("status", check=False)
        assert st.returncode != 0 and "node 1   127.0.0.1 stopped" in st.stdout, st.stdout
        # up again: the same cluster from its data dirs (no new bootstrap)
        lc.run("up")
        ms = _members(lc.ctl(2, "members"))
        assert sorted(ms) == [1, 2, 3], ms
        r = subprocess.run(["mosquitto_sub", "-h", node_host(3), "-p", str(lc.mqtt), "-t",
                            "walk/ret", "-C", "1", "-W", "20", "-v"], capture_output=True,
                           text=True, timeout=30)
        assert r.stdout.strip() == "walk/ret x", (r.stdout, r.stderr)
        failed = False
    finally:
        lc.cleanup(failed)
