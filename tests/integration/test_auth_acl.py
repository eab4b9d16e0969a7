"""Authentication (password_file from mosquitto_passwd and starling-passwd) and ACLs
(acl_file: user, topic, pattern %u/%c, the anonymous section), SIGHUP reload."""

import os
import subprocess
import tempfile
import time

import pytest

from harness import WAIT, Broker, is_mosquitto, passwd_bin, starling_only, wait_until
from pahoclient import V5, V311, Client
from rawmqtt import PUBACK, PUBREC, RawClient, raw_connect

MOSQUITTO = "/usr/sbin/mosquitto"
# A password the broker does not accept: 3.x 0x05 "not authorized" (as Mosquitto; 3.1.1 keeps
# 0x04 for malformed user name or password data), v5 0x86 (Mosquitto 2.0.11: 0x87).
BAD_PW = (0x05,)
BAD_PW5 = (0x86, 0x87) if is_mosquitto() else (0x86,)

ACL = """# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic read sensors/#
topic deny alice/secret

user bob
topic readwrite bob/#
topic read alice/shared
topic read #
topic deny private/#

pattern readwrite users/%u/#
pattern write clients/%c/status
pattern read clients/+/status
"""


def mosquitto_passwd(*args):
    r = subprocess.run(["mosquitto_passwd"] + list(args), capture_output=True, text=True,
                       timeout=WAIT)
    assert r.returncode == 0, r.stderr
    return r


def make_passwd(path, users, sha512=False):
    """A password file written by Debian's mosquitto_passwd ($7$, or $6$ with -H sha512)."""
    first = True
    for user, pw in users.items():
        args = (["-H", "sha512"] if sha512 else []) + (["-c"] if first else [])
        mosquitto_passwd(*(args + ["-b", path, user, pw]))
        first = False
    prefix = "$6$" if sha512 else "$7$"
    with open(path) as f:
        assert all(ln.split(":", 1)[1].startswith(prefix) for ln in f.read().splitlines())


@pytest.fixture(scope="module")
def acl_broker():
    with tempfile.TemporaryDirectory() as tmp:
        pw = os.path.join(tmp, "passwd")
        acl = os.path.join(tmp, "acl")
        make_passwd(pw, {"alice": "alicepw", "bob": "bobpw"})
        with open(acl, "w") as f:
            f.write(ACL)
        with Broker({"password_file": pw, "acl_file": acl, "allow_anonymous": "true"}) as b:
            yield b


# A password file written by mosquitto_passwd in both hash forms loads unchanged: the right
# password connects, a wrong one gets 0x05 (3.1.1) not authorized / 0x86 (v5) bad user name or
# password.
@pytest.mark.parametrize("sha512", [False, True], ids=["sha512-pbkdf2-$7$", "sha512-$6$"])
def test_mosquitto_passwd_files(sha512):
    with tempfile.TemporaryDirectory() as tmp:
        pw = os.path.join(tmp, "passwd")
        make_passwd(pw, {"u1": "secret one", "u2": "p:w"}, sha512)
        with Broker({"password_file": pw, "allow_anonymous": "false"}) as b:
            for user, good in (("u1", "secret one"), ("u2", "p:w")):
                c = RawClient(b.port, 4)
                c.connect("ok-" + user, username=user, password=good)
                c.disconnect()
            c = RawClient(b.port, 4)
            assert c.connect("bad4", username="u1", password="wrong", expect_rc=None).rc in BAD_PW
            c.close()
            c = RawClient(b.port, 5)
            assert c.connect("bad5", username="u1", password="wrong", expect_rc=None).rc in BAD_PW5
            c.close()
            c = RawClient(b.port, 4)
            assert c.connect("nouser", username="nobody", password="x", expect_rc=None).rc in BAD_PW
            c.close()


# allow_anonymous false refuses clients without a username: 0x05 (3.1.1) / 0x87 (v5).
@pytest.mark.parametrize("version,rc", [(4, 0x05), (5, 0x87)])
def test_anonymous_refused(version, rc):
    with tempfile.TemporaryDirectory() as tmp:
        pw = os.path.join(tmp, "passwd")
        make_passwd(pw, {"u": "p"})
        with Broker({"password_file": pw, "allow_anonymous": "false"}) as b:
            c = RawClient(b.port, version)
            c.connect("anon", expect_rc=rc)
            c.expect_closed()
            c.close()


# allow_anonymous true with a password file: anonymous clients connect, wrong passwords of
# known users are still refused.
def test_anonymous_allowed_with_password_file(acl_broker):
    c = RawClient(acl_broker.port, 4)
    c.connect("anon-ok")
    c.disconnect()
    c = RawClient(acl_broker.port, 4)
    assert c.connect("bad", username="alice", password="nope", expect_rc=None).rc in BAD_PW
    c.close()


def _user(b, name, proto=V311, cid=None):
    return Client(b, cid or name, proto, username=name, password=name + "pw")


# A user may publish and subscribe where a readwrite rule allows.
def test_acl_user_readwrite(acl_broker):
    with _user(acl_broker, "alice") as a:
        assert a.subscribe("alice/x", 1) == [1]
        a.publish("alice/x", b"mine", qos=1)
        assert a.expect().payload == b"mine"


# A denied PUBLISH is dropped: 3.x gets a normal PUBACK (there is no way to refuse), v5 a
# PUBACK/PUBREC 0x87 Not authorized; subscribers see nothing.
@pytest.mark.parametrize("version,qos", [(4, 1), (4, 2), (5, 1), (5, 2)])
def test_acl_denied_publish(acl_broker, version, qos):
    with _user(acl_broker, "bob", V5, cid="watch%d%d" % (version, qos)) as watch:
        watch.subscribe("alice/shared", 1)
        c = RawClient(acl_broker.port, version)
        c.connect("bobpub%d%d" % (version, qos), username="bob", password="bobpw")
        ack = c.publish_acked("alice/shared", b"nope", qos=qos, pid=3)
        assert ack.type == (PUBACK if qos == 1 else PUBREC)
        assert ack.rc == (0x87 if version == 5 else 0)
        c.disconnect()
        watch.expect_nothing(0.3)


# A SUBSCRIBE whose filter no read rule can match gets 0x80 (3.1.1) / 0x87 (v5).
@pytest.mark.parametrize("version,rc", [(4, 0x80), (5, 0x87)])
def test_acl_subscribe_denied(acl_broker, version, rc):
    starling_only("2.0.11 grants every subscription and filters at delivery")
    c = RawClient(acl_broker.port, version)
    c.connect("alsub%d" % version, username="alice", password="alicepw")
    assert c.subscribe([("bob/inbox", 1), ("alice/ok", 1)]) == [rc, 1]
    c.disconnect()


# Every delivery is checked: bob's '#' subscription gets nothing from a denied topic.
def test_acl_delivery_checked(acl_broker):
    with _user(acl_broker, "bob") as b, _user(acl_broker, "alice") as a:
        b.subscribe("#", 0)
        time.sleep(0.1)
        b.drain()
        with Client(acl_broker, "priv-pub", V311) as anon:
            anon.publish("private/x", b"hidden", qos=1)
        a.publish("alice/shared", b"shared", qos=1)
        m = b.expect(topic="alice/shared")
        assert m.payload == b"shared"
        b.expect_nothing(0.3, topic="private/x")


# topic deny overrides a broader allow for that user.
def test_acl_topic_deny(acl_broker):
    with _user(acl_broker, "alice") as a, _user(acl_broker, "alice", cid="alice2") as a2:
        a2.subscribe("alice/#", 1)
        a.publish("alice/secret", b"s", qos=1)
        a.publish("alice/open", b"o", qos=1)
        assert a2.expect().topic == "alice/open"
        a2.expect_nothing(0.3)


# pattern %u substitutes the username, %c the client id.
def test_acl_patterns(acl_broker):
    with _user(acl_broker, "bob", cid="bob-dev-1") as b, _user(acl_broker, "alice") as a:
        a.subscribe("users/alice/#", 1)
        a.subscribe("clients/+/status", 1)
        a.publish("users/alice/x", b"own", qos=1)
        assert a.expect().payload == b"own"
        b.publish("users/alice/x", b"intruder", qos=1)
        b.publish("clients/bob-dev-1/status", b"up", qos=1)
        b.publish("clients/other/status", b"spoof", qos=1)
        m = a.expect()
        assert (m.topic, m.payload) == ("clients/bob-dev-1/status", b"up")
        a.expect_nothing(0.3)


# Rules before the first `user` line apply to anonymous clients only.
def test_acl_anonymous_section(acl_broker):
    with Client(acl_broker, "anon-r", V5) as anon, _user(acl_broker, "alice") as a:
        assert anon.subscribe("public/#", 1) == [1]
        if not is_mosquitto():  # 2.0.11 grants every subscription
            assert anon.subscribe("alice/#", 1) == [0x87]
        else:
            anon.subscribe("alice/#", 1)
        a.publish("alice/x", b"for alice only", qos=1)
        with Client(acl_broker, "anon-w", V311) as w:
            w.publish("public/news", b"anon write", qos=1)   # no write rule: dropped
        anon.expect_nothing(0.3)
        if not is_mosquitto():
            assert a.subscribe("public/#", 1) == [0x80]     # alice has no public rule


def _passwd_tool(*args, stdin=None):
    r = subprocess.run([passwd_bin()] + list(args), capture_output=True, text=True,
                       timeout=WAIT, input=stdin)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r


def _mosquitto_accepts(pwfile, user, password, good=True):
    """Start Debian's mosquitto on pwfile and try a login."""
    with tempfile.TemporaryDirectory() as tmp:
        from harness import free_port, port_open
        port = free_port()
        conf = os.path.join(tmp, "m.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\n"
                    % (port, pwfile))
            if os.getuid() == 0:
                f.write("user root\n")
        p = subprocess.Popen([MOSQUITTO, "-c", conf], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: port_open(port), what="mosquitto up")
            c = RawClient(port, 4)
            ack = c.connect("chk", username=user, password=password, expect_rc=None)
            c.close()
            return ack.rc == 0
        finally:
            p.terminate()
            p.wait(timeout=WAIT)


# starling-passwd -c -b creates a file Mosquitto itself reads; -b adds/updates users.
def test_starling_passwd_create_and_batch():
    with tempfile.TemporaryDirectory() as tmp:
        pw = os.path.join(tmp, "pw")
        _passwd_tool("-c", "-b", pw, "ann", "annpw")
        _passwd_tool("-b", pw, "ben", "benpw")
        _passwd_tool("-b", pw, "ann", "newpw")
        text = open(pw).read()
        assert sorted(ln.split(":")[0] for ln in text.splitlines()) == ["ann", "ben"]
        assert _mosquitto_accepts(pw, "ann", "newpw")
        assert not _mosquitto_accepts(pw, "ann", "annpw")
        assert _mosquitto_accepts(pw, "ben", "benpw")
        with Broker({"password_file": pw, "allow_anonymous": "false"}) as b:
            c = RawClient(b.port, 4)
            c.connect("sp", username="ben", password="benpw")
            c.disconnect()


# starling-passwd -D deletes a user.
def test_starling_passwd_delete():
    with tempfile.TemporaryDirectory() as tmp:
        pw = os.path.join(tmp, "pw")
        _passwd_tool("-c", "-b", pw, "ann", "annpw")
        _passwd_tool("-b", pw, "ben", "benpw")
        _passwd_tool("-D", pw, "ann")
        assert [ln.split(":")[0] for ln in open(pw).read().splitlines()] == ["ben"]
        assert _mosquitto_accepts(pw, "ben", "benpw")


# starling-passwd -U hashes a plain-text user:password file in place.
def test_starling_passwd_upgrade_plaintext():
    with tempfile.TemporaryDirectory() as tmp:
        pw = os.path.join(tmp, "pw")
        with open(pw, "w") as f:
            f.write("ann:plain1\nben:plain2\n")
        _passwd_tool("-U", pw)
        lines = open(pw).read().splitlines()
        assert all(ln.split(":", 1)[1].startswith("$") for ln in lines), lines
        assert _mosquitto_accepts(pw, "ann", "plain1")
        assert _mosquitto_accepts(pw, "ben", "plain2")


# SIGHUP reloads password_file and acl_file without dropping connections (as Mosquitto).
def test_sighup_reloads_password_and_acl():
    with tempfile.TemporaryDirectory() as tmp:
        pw = os.path.join(tmp, "pw")
        acl = os.path.join(tmp, "acl")
        make_passwd(pw, {"old": "oldpw"})
        with open(acl, "w") as f:
            f.write("user old\ntopic readwrite a/#\n")
        with Broker({"password_file": pw, "acl_file": acl, "allow_anonymous": "false"}) as b:
            keep = Client(b, "keep", V5, username="old", password="oldpw")
            try:
                keep.subscribe("a/#", 1)
                c = RawClient(b.port, 4)
                ack = c.connect("new0", username="new", password="newpw", expect_rc=None)
                assert ack.rc in BAD_PW
                c.close()
                mosquitto_passwd("-b", pw, "new", "newpw")
                with open(acl, "w") as f:
                    f.write("user old\ntopic readwrite a/#\ntopic readwrite b/#\n"
                            "user new\ntopic write a/#\n")
                b.sighup()

                def new_user_ok():
                    c = RawClient(b.port, 4)
                    ack = c.connect("new1", username="new", password="newpw", expect_rc=None)
                    c.disconnect()
                    return ack.rc == 0
                wait_until(new_user_ok, what="reloaded password file", interval=0.2)
                # the old connection survived and sees the new user's permitted publish
                with raw_connect(b.port, "new2", 4, username="new", password="newpw") as n:
                    n.publish_acked("a/from-new", b"hi", qos=1)
                assert keep.expect().payload == b"hi"
                assert keep.subscribe("b/x", 1) == [1]
                assert keep.c.is_connected() and not keep.disconnects
            finally:
                keep.disconnect()


# Password hashing runs off the loop thread: while slow ($7$ with many PBKDF2 iterations)
# logins are being checked, a connected client's PINGREQ is answered at once.
def test_hashing_does_not_block_the_loop():
    starling_only("Mosquitto hashes on its only thread")
    from rawmqtt import CONNACK, PINGREQ, PINGRESP, connect_pkt, packet
    with tempfile.TemporaryDirectory() as tmp:
        pw = os.path.join(tmp, "pw")
        mosquitto_passwd("-I", "600000", "-c", "-b", pw, "slow", "slowpw")
        mosquitto_passwd("-b", pw, "fast", "fastpw")
        with Broker({"password_file": pw, "allow_anonymous": "false"}) as b:
            live = raw_connect(b.port, "live", 4, username="fast", password="fastpw")
            slow = [RawClient(b.port, 4) for _ in range(2)]
            t0 = time.monotonic()
            for i, s in enumerate(slow):
                s.send(connect_pkt("slow%d" % i, 4, username="slow", password="slowpw"))
            time.sleep(0.02)
            worst = 0.0
            for _ in range(3):
                t = time.monotonic()
                live.send(packet(PINGREQ, 0, b""))
                live.expect(PINGRESP)
                worst = max(worst, time.monotonic() - t)
            for s in slow:
                assert s.expect(CONNACK).rc == 0
                s.disconnect()
            hashing = time.monotonic() - t0
            assert hashing > 0.3, "hashing too fast (%.2fs) to show anything" % hashing
            # a loop that hashed itself would answer the first ping only after the hashes
            assert worst < hashing / 3, "PINGRESP took %.2fs of %.2fs hashing" % (worst, hashing)
            live.disconnect()
