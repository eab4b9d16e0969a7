"""Backup and restore with `starling-ctl backup` / `restore`: a backup taken while the broker
runs under a load of retained messages and new persistent sessions holds everything
acknowledged before it started, consistently; restored into a fresh data dir it is what the
node serves after start, and new publishes work. Bad inputs give clear errors and change
nothing."""

import os
import re
import subprocess
import threading
import time

import pytest

from harness import WAIT, Broker, broker_bin, starling_only
from rawmqtt import P_SESSION_EXPIRY, PUBACK, PUBLISH, RawClient, raw_connect

N_TOPICS = 50


def _ctl(*args):
    path = os.environ.get("STARLING_CTL") or os.path.join(os.path.dirname(broker_bin()),
                                                          "starling-ctl")
    if not os.path.exists(path):
        pytest.skip("starling-ctl not built")
    return subprocess.run([path] + list(args), capture_output=True, text=True, timeout=WAIT * 6,
                          stdin=subprocess.DEVNULL)


class Load:
    """Retained QoS 1 publishes (topic bk/r/<k mod N_TOPICS>, payload k) and new persistent
    sessions subscribed to bk/s/<n>/#, one after the other on their own thread; records when
    each was acknowledged."""

    def __init__(self, port):
        self.port = port
        self.acked = []     # (monotonic time of the ack, k)
        self.sessions = []  # (monotonic time of the SUBACK, n)
        self.error = None
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            with raw_connect(self.port, "bk-load", 4) as p:
                k = 0
                while not self.stop.is_set():
                    p.publish_acked("bk/r/%d" % (k % N_TOPICS), b"%d" % k, qos=1, retain=True,
                                    pid=k % 60000 + 1)
                    self.acked.append((time.monotonic(), k))
                    if k % 10 == 0:
                        n = k // 10
                        s = raw_connect(self.port, "bk-s-%d" % n, 5, clean=False,
                                        plist=[(P_SESSION_EXPIRY, 3600)])
                        assert s.subscribe([("bk/s/%d/#" % n, 1)]) == [1]
                        self.sessions.append((time.monotonic(), n))
                        s.close()
                    k += 1
        except BaseException as e:  # reported by the test
            self.error = e

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join(timeout=WAIT * 2)
        assert not self.t.is_alive(), "the load did not stop"


def _info(out):
    m = re.search(r"last applied index (\d+); (\d+) sessions, (\d+) subscriptions, (\d+) retained",
                  out)
    assert m, out
    return dict(zip(("index", "sessions", "subscriptions", "retained"), map(int, m.groups())))


def _retained(port, flt="bk/r/+", expect_n=None):
    """topic -> payload of every retained message matching flt."""
    with raw_connect(port, "bk-read", 4) as s:
        s.subscribe([(flt, 0)])
        got = {}
        while True:
            try:
                m = s.expect(PUBLISH, timeout=0.5 if expect_n is None or len(got) >= expect_n
                             else WAIT)
            except TimeoutError:
                break
            assert m.retain
            got[m.topic] = m.payload
        return got


# A backup under load holds every retained message and persistent subscription acknowledged
# before it started; restored into a fresh data dir, the node serves exactly the backup's
# state (consistent: each topic's value was published, at least as new as acknowledged) and
# takes new publishes.
def test_backup_under_load_then_restore():
    starling_only("starling-ctl backup")
    backup_dir = None
    with Broker() as a:
        backup_dir = a.tmp
        path = os.path.join(a.tmp, "state.backup")
        with Load(a.port) as load:
            deadline = time.monotonic() + WAIT
            while len(load.acked) < 300 and time.monotonic() < deadline and not load.error:
                time.sleep(0.05)
            assert len(load.acked) >= 300, "load too slow: %d" % len(load.acked)
            t0 = time.monotonic()
            r = _ctl("backup", "-c", a.conf_path, path)
            t1 = time.monotonic()
            # the load went on through the backup: acknowledgements after it too
            deadline = time.monotonic() + WAIT
            while (not load.acked or load.acked[-1][0] <= t1) and not load.error:
                assert time.monotonic() < deadline, "the load stalled during the backup"
                time.sleep(0.02)
        assert load.error is None, load.error
        assert r.returncode == 0, r.stderr + r.stdout
        info = _info(r.stdout)
        assert info["index"] > 0 and info["retained"] == N_TOPICS
        assert [f for f in os.listdir(a.tmp) if ".tmp-" in f] == []
        before = {}
        for t, k in load.acked:
            if t < t0:
                before[k % N_TOPICS] = k
        sessions_before = [n for t, n in load.sessions if t < t0]
        published = max(k for _, k in load.acked) + 1  # a publish in flight may be in it
        assert info["subscriptions"] >= len(sessions_before)

        with Broker(start=False) as b:
            r = _ctl("restore", path, "--data-dir", b.data_dir)
            assert r.returncode == 0, r.stderr + r.stdout
            assert _info(r.stdout) == info
            assert sorted(os.listdir(b.data_dir)) == ["state"]
            b.start()
            got = _retained(b.port, expect_n=N_TOPICS)
            assert len(got) == N_TOPICS
            for i in range(N_TOPICS):
                k = int(got["bk/r/%d" % i])
                assert k % N_TOPICS == i
                assert before.get(i, -1) <= k <= published, (i, k, before.get(i))
            # every persistent session subscribed before the backup is there, subscribed
            for n in sessions_before[::7] + sessions_before[-1:]:
                s = RawClient(b.port, 5)
                assert s.connect("bk-s-%d" % n, clean=False,
                                 plist=[(P_SESSION_EXPIRY, 3600)]).session_present, n
                with raw_connect(b.port, "bk-pub", 4) as p:
                    p.publish_acked("bk/s/%d/x" % n, b"after-restore", qos=1)
                m = s.expect(PUBLISH)
                assert m.payload == b"after-restore"
                s.ack(PUBACK, m.pid)
                s.disconnect()
            # new retained publishes are taken and survive a restart
            with raw_connect(b.port, "bk-new", 4) as p:
                p.publish_acked("bk/new", b"new", qos=1, retain=True)
            b.restart()
            assert _retained(b.port, "bk/new", expect_n=1) == {"bk/new": b"new"}
    assert backup_dir is not None


# restore --force over a stopped node's data dir replaces its state and its Raft log: what
# the node had since is gone, the backup's state is there.
def test_restore_force_replaces_state_and_log():
    starling_only("starling-ctl restore")
    with Broker() as a:
        with raw_connect(a.port, "bk-f", 4) as p:
            p.publish_acked("bk/f/kept", b"1", qos=1, retain=True)
        path = os.path.join(a.tmp, "f.backup")
        r = _ctl("backup", "--data-dir", a.data_dir, path)
        assert r.returncode == 0, r.stderr
        with raw_connect(a.port, "bk-f", 4) as p:
            p.publish_acked("bk/f/later", b"2", qos=1, retain=True)
        assert a.stop() == 0
        r = _ctl("restore", path, "--data-dir", a.data_dir)
        assert r.returncode == 1
        assert "already holds state" in r.stderr and "--force" in r.stderr
        r = _ctl("restore", path, "--data-dir", a.data_dir, "--force")
        assert r.returncode == 0, r.stderr
        assert not os.path.exists(os.path.join(a.data_dir, "raft"))
        a.start_again()
        assert _retained(a.port, "bk/f/+", expect_n=1) == {"bk/f/kept": b"1"}


# Bad inputs: a file that is not a backup, a running broker's data dir, a data dir without
# state, a missing file or directory. Each is refused with a clear message and changes nothing.
def test_bad_inputs():
    starling_only("starling-ctl backup and restore")
    with Broker() as a:
        junk = os.path.join(a.tmp, "junk")
        with open(junk, "wb") as f:
            f.write(b"not an LMDB file\n" * 1000)
        fresh = os.path.join(a.tmp, "fresh")
        r = _ctl("restore", junk, "--data-dir", fresh)
        assert r.returncode == 1 and "is not a Starling state backup" in r.stderr, r.stderr
        assert not os.path.exists(fresh)

        good = os.path.join(a.tmp, "good")
        assert _ctl("backup", "-c", a.conf_path, good).returncode == 0
        for extra in ([], ["--force"]):
            r = _ctl("restore", good, "--data-dir", a.data_dir, *extra)
            assert r.returncode == 1, r.stderr
            assert "process %d has the state" % a.pid in r.stderr, r.stderr
            assert "stop the node" in r.stderr
        assert os.path.exists(os.path.join(a.data_dir, "raft"))

        r = _ctl("backup", "--data-dir", os.path.join(a.tmp, "nowhere"), good + "2")
        assert r.returncode == 1 and "no state to back up" in r.stderr, r.stderr
        assert not os.path.exists(good + "2")
        r = _ctl("backup", "--data-dir", a.data_dir, os.path.join(a.tmp, "no", "such", "f"))
        assert r.returncode == 1 and "No such file or directory" in r.stderr, r.stderr
        r = _ctl("restore", os.path.join(a.tmp, "missing"), "--data-dir", fresh)
        assert r.returncode == 1 and "No such file or directory" in r.stderr, r.stderr
        r = _ctl("restore", good, "--data-dir", os.path.join(a.tmp, "no", "such"))
        assert r.returncode == 1 and "cannot create data dir" in r.stderr, r.stderr
        r = _ctl("backup", good)
        assert r.returncode == 2 and "--data-dir" in r.stderr
        r = _ctl("restore", "--data-dir", fresh)
        assert r.returncode == 2 and "FILE" in r.stderr
        assert not os.path.exists(fresh)
        # the broker was not disturbed
        with raw_connect(a.port, "bk-ok", 4) as p:
            p.publish_acked("bk/ok", b"ok", qos=1, retain=True)
