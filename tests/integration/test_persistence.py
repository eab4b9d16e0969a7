"""Durable state: what the broker acknowledged is there after kill -9 and restart
(subscriptions, retained messages, persistent sessions, queued messages); a clean restart
keeps it too (as Mosquitto's persistence does)."""

import pytest

from harness import Broker, starling_only
from rawmqtt import P_SESSION_EXPIRY, PUBACK, PUBLISH, RawClient, raw_connect


def _crash_or_restart(b, crash):
    if crash:
        b.kill9()
        b.start_again()
    else:
        b.restart()


MODES = [pytest.param(True, id="kill9"), pytest.param(False, id="sigterm")]


def _check_mode(crash):
    if crash:
        starling_only("Mosquitto saves only at autosave_interval and exit")


# An acknowledged subscription of a persistent session (3.1.1 clean session 0, v5 session
# expiry) is there after restart: Session Present 1 and messages are delivered.
@pytest.mark.parametrize("crash", MODES)
@pytest.mark.parametrize("version", [4, 5])
def test_subscription_survives(crash, version):
    _check_mode(crash)
    plist = [(P_SESSION_EXPIRY, 3600)] if version == 5 else None
    with Broker() as b:
        c = raw_connect(b.port, "dur-sub", version, clean=False, plist=plist)
        assert c.subscribe([("dur/sub/#", 1)]) == [1]
        c.close()
        _crash_or_restart(b, crash)
        c = RawClient(b.port, version)
        assert c.connect("dur-sub", clean=False, plist=plist).session_present
        with raw_connect(b.port, "dur-pub", version) as p:
            p.publish_acked("dur/sub/x", b"after", qos=1)
        m = c.expect(PUBLISH)
        assert m.payload == b"after"
        c.ack(PUBACK, m.pid)
        c.disconnect()


# Every retained message whose PUBACK arrived is there after restart; a cleared one stays
# cleared; a replaced one has its last value.
@pytest.mark.parametrize("crash", MODES)
def test_retained_survive(crash):
    _check_mode(crash)
    with Broker() as b:
        with raw_connect(b.port, "dur-ret", 4) as p:
            for i in range(30):
                p.publish_acked("dur/ret/%d" % i, b"v%d" % i, qos=1, retain=True, pid=i + 1)
            p.publish_acked("dur/ret/0", b"", qos=1, retain=True, pid=100)
            p.publish_acked("dur/ret/1", b"replaced", qos=1, retain=True, pid=101)
        _crash_or_restart(b, crash)
        with raw_connect(b.port, "dur-ret-s", 4) as s:
            s.subscribe([("dur/ret/+", 0)])
            got = {}
            for _ in range(29):
                m = s.expect(PUBLISH)
                assert m.retain
                got[m.topic] = m.payload
            s.expect_nothing(0.3)
        want = {"dur/ret/%d" % i: b"v%d" % i for i in range(2, 30)}
        want["dur/ret/1"] = b"replaced"
        assert got == want


# QoS 1 messages acknowledged to the publisher while the subscriber's persistent session was
# offline are delivered after restart, in order.
@pytest.mark.parametrize("crash", MODES)
@pytest.mark.parametrize("version", [4, 5])
def test_queued_messages_survive(crash, version):
    _check_mode(crash)
    plist = [(P_SESSION_EXPIRY, 3600)] if version == 5 else None
    with Broker() as b:
        c = raw_connect(b.port, "dur-q", version, clean=False, plist=plist)
        c.subscribe([("dur/q", 1)])
        c.disconnect()
        with raw_connect(b.port, "dur-qp", version) as p:
            for i in range(10):
                p.publish_acked("dur/q", b"%d" % i, qos=1, pid=i + 1)
        _crash_or_restart(b, crash)
        c = RawClient(b.port, version)
        assert c.connect("dur-q", clean=False, plist=plist).session_present
        got = []
        for _ in range(10):
            m = c.expect(PUBLISH)
            got.append(m.payload)
            c.ack(PUBACK, m.pid)
        assert got == [b"%d" % i for i in range(10)]
        c.expect_nothing(0.3)
        c.disconnect()


# A clean session leaves nothing behind: after restart the client id has no session.
@pytest.mark.parametrize("crash", MODES)
def test_clean_session_not_persisted(crash):
    _check_mode(crash)
    with Broker() as b:
        c = raw_connect(b.port, "dur-clean", 4, clean=True)
        c.subscribe([("dur/clean", 1)])
        c.disconnect()
        _crash_or_restart(b, crash)
        c = RawClient(b.port, 4)
        assert not c.connect("dur-clean", clean=False).session_present
        c.disconnect()


# The data dir of a crashed broker is reusable several times in a row (recovery is
# idempotent).
def test_repeated_crashes():
    starling_only("Mosquitto saves only at autosave_interval and exit")
    with Broker() as b:
        for i in range(3):
            with raw_connect(b.port, "rc%d" % i, 4) as p:
                p.publish_acked("dur/rc/%d" % i, b"%d" % i, qos=1, retain=True)
            b.kill9()
            b.start_again()
        with raw_connect(b.port, "rc-s", 4) as s:
            s.subscribe([("dur/rc/#", 0)])
            assert sorted(s.expect(PUBLISH).payload for _ in range(3)) == [b"0", b"1", b"2"]


# Disk full: the broker logs it clearly, refuses new durable work with an error reason code
# (v5 PUBACK >= 0x80 or DISCONNECT), keeps serving, and the data dir stays valid: after more
# space is given, a restart has every retained message that was acknowledged.
def test_disk_full():
    starling_only("Starling commits each acknowledged message")
    import os
    import subprocess
    import tempfile
    if os.getuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    mnt = tempfile.mkdtemp(prefix="starling-full-")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt]).returncode:
        os.rmdir(mnt)
        pytest.skip("cannot mount tmpfs here")
    try:
        with Broker({"persistence_location": mnt + "/"}) as b:
            acked, refused = [], None
            c = raw_connect(b.port, "full", 5)
            try:
                for i in range(400):
                    ack = c.publish_acked("dur/full/%d" % i, bytes([i % 256]) * 200000, qos=1,
                                          retain=True, pid=i % 60000 + 1)
                    if ack.rc >= 0x80:
                        refused = ack.rc
                        break
                    acked.append(i)
            except Exception as e:  # a DISCONNECT/close also refuses the work
                refused = repr(e)
            c.close()
            assert refused is not None, "24 MB never filled up"
            try:
                b.wait_log(lambda t: any(w in t.lower() for w in ("no space", "disk full",
                                                                  "map full", "enospc")))
                clear_log = True
            except AssertionError:
                clear_log = False
            with raw_connect(b.port, "still-alive", 4) as d:
                d.subscribe([("alive", 0)])
            subprocess.run(["mount", "-o", "remount,size=256m", mnt], check=True)
            b.restart()
            with raw_connect(b.port, "full-check", 4) as s:
                s.subscribe([("dur/full/+", 0)])
                got = set()
                while True:
                    try:
                        m = s.recv(1.0)
                    except TimeoutError:
                        break
                    got.add(int(m.topic.rsplit("/", 1)[1]))
                assert set(acked) <= got, sorted(set(acked) - got)[:10]
            assert clear_log, "no log line saying the disk is full:\n" + b.log_tail(20)
    finally:
        subprocess.run(["umount", mnt])
        os.rmdir(mnt)


# A data dir written by a newer format version is refused at start-up with a clear error,
# and left untouched.
def test_newer_format_version_refused():
    starling_only("Starling's data dir format")
    import os
    import shutil
    import subprocess
    from harness import WAIT, broker_bin
    if not shutil.which("mdb_dump") or not shutil.which("mdb_load"):
        pytest.skip("lmdb-utils not installed")
    with Broker() as b:
        with raw_connect(b.port, "fmt", 4) as p:
            p.publish_acked("dur/fmt", b"x", qos=1, retain=True)
        assert b.stop() == 0
        state = os.path.join(b.data_dir, "state")
        dump = subprocess.run(["mdb_dump", "-s", "meta", state], capture_output=True, text=True,
                              timeout=WAIT, check=True).stdout
        key = " " + b"format_version".hex()
        lines = dump.splitlines()
        i = lines.index(key)
        assert int(lines[i + 1], 16) >= 1
        lines[i + 1] = " %08x" % 0x7FFFFFFF
        subprocess.run(["mdb_load", "-s", "meta", state], input="\n".join(lines) + "\n",
                       text=True, timeout=WAIT, check=True)
        before = open(os.path.join(state, "data.mdb"), "rb").read()
        r = subprocess.run([broker_bin(), "-c", b.conf_path], capture_output=True, text=True,
                           timeout=WAIT, cwd=b.tmp)
        out = r.stdout + r.stderr
        assert r.returncode != 0, out
        assert "newer" in out.lower() or "version" in out.lower(), out
        assert open(os.path.join(state, "data.mdb"), "rb").read() == before
