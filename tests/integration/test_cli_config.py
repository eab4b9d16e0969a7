"""Command line and mosquitto.conf handling: local-only mode, -h, config errors, include_dir,
pid_file, persistence false, and the directives of mosquitto.conf(5) that Starling accepts."""

import os
import re
import subprocess
import tempfile
import time

import pytest

from harness import (WAIT, Broker, free_port, is_mosquitto, port_open, run_broker,
                     starling_only, wait_until)
from pahoclient import V5, V311, Client


def _listen_addrs(port):
    out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True, text=True,
                         timeout=WAIT).stdout
    return sorted(line.split()[3].rsplit(":", 1)[0] for line in out.splitlines())


def _conf_error(tmp, text):
    if os.getuid() == 0:
        os.chmod(tmp, 0o777)  # in case the broker drops root privileges before failing
    path = os.path.join(tmp, "bad.conf")
    with open(path, "w") as f:
        f.write(text)
    return path, run_broker(["-c", path], cwd=tmp)


# Without -c and without a listener the broker runs in mosquitto 2's local-only mode: it
# listens on 127.0.0.1 and ::1 only, anonymous clients allowed (-p picks the port).
def test_local_only_mode_listens_on_loopback():
    port = free_port()
    with Broker(use_conf=False, port=port, args=["-p", str(port)]) as b:
        addrs = _listen_addrs(port)
        assert "127.0.0.1" in addrs
        assert all(a in ("127.0.0.1", "[::1]") for a in addrs), addrs
        with Client(b, "anon", V311) as c:
            c.subscribe("lo", 1)
            c.publish("lo", "x", qos=1)
            assert c.expect().payload == b"x"
        if os.path.exists("/proc/net/if_inet6"):
            wait_until(lambda: port_open(port, "::1"), what="::1 listener")


# Local-only mode prints where it listens and keeps its data in ./starling-data.
def test_local_only_mode_reports_listener_and_data_dir():
    starling_only("data dir and start-up message are Starling's")
    port = free_port()
    with Broker(use_conf=False, port=port, args=["-p", str(port)]) as b:
        with Client(b, "d", V311) as c:
            c.publish("keep", "x", qos=1, retain=True)
        data = os.path.join(b.tmp, "starling-data")
        assert os.path.isdir(data)
        log = b.log_text()
        assert str(port) in log
        assert "starling-data" in log


# -h prints the usage with the mosquitto options and exits without serving.
def test_help():
    r = run_broker(["-h"])
    text = r.stdout + r.stderr
    for opt in ("-c", "-p", "-d", "-v"):
        assert opt in text
    assert r.returncode in (0, 3)  # Mosquitto exits 3 after -h


# An unknown directive stops start-up with FILE:LINE and a non-zero exit.
def test_unknown_directive_is_an_error():
    with tempfile.TemporaryDirectory() as tmp:
        path, r = _conf_error(tmp, "# comment\nlistener %d 127.0.0.1\nno_such_directive 1\n"
                              % free_port())
        assert r.returncode != 0
        out = r.stdout + r.stderr
        assert "%s:3" % path in out, out
        if not is_mosquitto():
            assert re.search(re.escape(path) + r":3: .*no_such_directive", out), out


# A malformed value stops start-up with FILE:LINE; several kinds of bad values.
@pytest.mark.parametrize("line", [
    "max_keepalive abc",
    "max_keepalive 70000",
    "allow_anonymous maybe",
    "max_qos 3",
    "listener 70000",
    "max_packet_size 10",
    "persistence maybe",
    "socket_domain ipv7",
    "log_dest nowhere",
    "upgrade_outgoing_qos 2",
    "sys_interval abc",
    "max_queued_messages 12x",
    "message_size_limit lots",
])
def test_malformed_value_is_an_error(line):
    if line.split()[0] in ("sys_interval", "max_queued_messages", "message_size_limit"):
        starling_only("Mosquitto reads numbers with atoi()")
    with tempfile.TemporaryDirectory() as tmp:
        path, r = _conf_error(tmp, "listener %d 127.0.0.1\n%s\n" % (free_port(), line))
        assert r.returncode != 0, r.stdout + r.stderr
        out = r.stdout + r.stderr
        assert "%s:2" % path in out, out
        if not is_mosquitto():
            assert path + ":2:" in out


# A missing config file is an error naming the file.
def test_missing_config_file():
    r = run_broker(["-c", "/nonexistent/starling.conf"])
    assert r.returncode != 0
    assert "/nonexistent/starling.conf" in r.stdout + r.stderr


# TLS directives need certfile and keyfile together; TLS-PSK is not in this build's TLS
# library. The message names the file and line.
@pytest.mark.parametrize("line,want", [
    ("cafile /etc/ssl/certs/ca.pem", "TLS options given without certfile"),
    ("certfile /x.pem", "certfile given without keyfile"),
    ("keyfile /x.key", "keyfile given without certfile"),
    ("psk_hint x", "psk_hint: not supported by this build"),
])
def test_tls_directives_checked(line, want):
    starling_only("the messages are Starling's")
    with tempfile.TemporaryDirectory() as tmp:
        path, r = _conf_error(tmp, "listener %d 127.0.0.1\n%s\n" % (free_port(), line))
        assert r.returncode != 0
        out = r.stdout + r.stderr
        assert want in out, out
        assert path + ":" in out


# include_dir reads every *.conf in the directory (sorted); its settings apply.
def test_include_dir():
    port = free_port()
    with tempfile.TemporaryDirectory() as inc:
        with open(os.path.join(inc, "10-listener.conf"), "w") as f:
            f.write("listener %d 127.0.0.1\n" % port)
        with open(os.path.join(inc, "20-limits.conf"), "w") as f:
            f.write("max_keepalive 30\n")
        with open(os.path.join(inc, "ignored.txt"), "w") as f:
            f.write("this is not a config line\n")
        with Broker("include_dir %s\n" % inc, port=port) as b:
            assert b.port == port or b.port is not None
            c = Client(b, "inc", V5, keepalive=60, port=port)
            try:
                assert c.connack_props.ServerKeepAlive == 30
            finally:
                c.disconnect()


# An error inside an included file is reported with that file's name and line.
def test_include_dir_error_names_included_file():
    with tempfile.TemporaryDirectory() as tmp:
        inc = os.path.join(tmp, "conf.d")
        os.mkdir(inc)
        bad = os.path.join(inc, "a.conf")
        with open(bad, "w") as f:
            f.write("\n\nbogus_directive yes\n")
        path, r = _conf_error(tmp, "listener %d 127.0.0.1\ninclude_dir %s\n" % (free_port(), inc))
        assert r.returncode != 0
        assert "%s:3" % bad in r.stdout + r.stderr


# pid_file holds the broker's pid while it runs.
def test_pid_file():
    with tempfile.TemporaryDirectory() as tmp:
        pidf = os.path.join(tmp, "broker.pid")
        with Broker({"pid_file": pidf}) as b:
            wait_until(lambda: os.path.exists(pidf) and open(pidf).read().strip(), what="pid")
            assert int(open(pidf).read().strip()) == b.pid


# persistence false: state lives only for the process; a restart starts empty and nothing is
# left in persistence_location or the temp dir.
def test_persistence_false_leaves_nothing():
    with tempfile.TemporaryDirectory() as tmpdir:
        with Broker({"persistence": "false"}, env={"TMPDIR": tmpdir}) as b:
            with Client(b, "pf", V311) as c:
                c.publish("pf/retained", "x", qos=1, retain=True)
                c.subscribe("pf/retained", 0)
                assert c.expect().payload == b"x"
            b.restart()
            with Client(b, "pf2", V311) as c:
                c.subscribe("pf/retained", 0)
                c.expect_nothing(0.3)
            b.stop()
            assert os.listdir(b.data_dir) == []
        assert os.listdir(tmpdir) == []


# -d runs the broker in the background: the command returns, the broker serves, pid_file
# names it.
def test_daemon_mode():
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        pidf = os.path.join(tmp, "d.pid")
        conf = os.path.join(tmp, "d.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npid_file %s\n"
                    "persistence_location %s/\n" % (port, pidf, tmp))
            if os.getuid() == 0:
                f.write("user root\n")
        r = run_broker(["-c", conf, "-d"], cwd=tmp)
        pid = None
        try:
            assert r.returncode == 0, r.stdout + r.stderr
            pid = int(wait_until(lambda: os.path.exists(pidf) and open(pidf).read().strip(),
                                 what="pid file"))
            wait_until(lambda: port_open(port), what="daemon port")
        finally:
            if pid:
                os.kill(pid, 15)
                wait_until(lambda: not os.path.exists("/proc/%d" % pid) or
                           "Z" in open("/proc/%d/stat" % pid).read().split()[2], what="exit")


# listener with a bind address listens there only; several listeners work at once.
def test_two_listeners_with_bind_address():
    p1, p2 = free_port(), free_port()
    with Broker("listener %d 127.0.0.1\nlistener %d 127.0.0.2\n" % (p1, p2), port=p1) as b:
        wait_until(lambda: port_open(p2, "127.0.0.2"), what="second listener")
        assert _listen_addrs(p2) == ["127.0.0.2"]
        with Client(b, "l1", V311, port=p1) as a, Client(b, "l2", V311, port=p1) as c:
            a.subscribe("ll", 0)
            c.publish("ll", "x")
            a.expect()


# socket_domain ipv4 on a listener without address: only IPv4 sockets.
def test_socket_domain_ipv4():
    port = free_port()
    with Broker("listener %d\nsocket_domain ipv4\n" % port, port=port):
        addrs = _listen_addrs(port)
        assert addrs and all(":" not in a.strip("[]") or a == "*" for a in addrs), addrs


# max_connections: the connection beyond the limit is refused.
def test_max_connections():
    starling_only("2.0.11 accepted a third connection with max_connections 2 here")
    with Broker({"max_connections": 2}) as b:
        with Client(b, "mc1", V311), Client(b, "mc2", V311):
            with pytest.raises((AssertionError, OSError)):
                Client(b, "mc3", V311).disconnect()


# log_dest file writes the log to that file; connection_messages logs the client id.
def test_log_dest_file_and_connection_messages():
    with tempfile.TemporaryDirectory() as tmp:
        logf = os.path.join(tmp, "broker.log")
        with Broker({"log_dest": "file %s" % logf, "connection_messages": "true"}) as b:
            with Client(b, "logged-client-42", V311):
                pass
            wait_until(lambda: os.path.exists(logf) and
                       "logged-client-42" in open(logf).read(), what="log file line")


# log_timestamp false: log lines have no leading time; log_timestamp_format applies strftime.
def test_log_timestamp_format():
    with Broker({"log_timestamp_format": "TS%Y", "connection_messages": "true"}) as b:
        with Client(b, "tsclient", V311):
            pass
        b.wait_log("tsclient")
        line = [ln for ln in b.log_text().splitlines() if "tsclient" in ln][0]
        assert re.match(r"TS\d{4}", line), line
    with Broker({"log_timestamp": "false", "connection_messages": "true"}) as b:
        with Client(b, "nots", V311):
            pass
        b.wait_log("nots")
        line = [ln for ln in b.log_text().splitlines() if "nots" in ln][0]
        assert not re.match(r"\d{6,}", line), line


# Every directive of the list is accepted with a valid value.
def test_all_supported_directives_accepted():
    with tempfile.TemporaryDirectory() as tmp:
        pw = os.path.join(tmp, "pw")
        acl = os.path.join(tmp, "acl")
        open(pw, "w").close()
        with open(acl, "w") as f:
            f.write("topic readwrite #\n")
        conf = """per_listener_settings false
allow_anonymous true
password_file {pw}
acl_file {acl}
autosave_interval 1800
connection_messages true
log_timestamp true
max_inflight_messages 20
max_queued_messages 1000
max_queued_bytes 0
queue_qos0_messages false
message_size_limit 0
max_packet_size 1000000
max_keepalive 65535
persistent_client_expiration 14d
retain_available true
max_qos 2
allow_zero_length_clientid true
upgrade_outgoing_qos false
sys_interval 10
listener {port} 127.0.0.1
protocol mqtt
""".format(pw=pw, acl=acl, port=free_port())
        with Broker(conf) as b:
            with Client(b, "all", V5) as c:
                c.subscribe("a", 1)


# -v turns on verbose logging: connection details of a client appear in the log.
def test_verbose_flag():
    with Broker({"log_type": "error"}, args=["-v"]) as b:
        with Client(b, "verbose-client", V311):
            pass
        b.wait_log("verbose-client")


# log_type limits what is logged: with only errors, a client connecting leaves no line.
def test_log_type_filters():
    with Broker({"log_type": "error", "connection_messages": "true"}) as b:
        with Client(b, "quiet-client", V311) as c:
            c.subscribe("q", 0)
        with Client(b, "marker", V311):
            pass
        time.sleep(0.3)
        assert "quiet-client" not in b.log_text()


# per_listener_settings true: each listener has its own allow_anonymous and password_file.
def test_per_listener_settings():
    with tempfile.TemporaryDirectory() as tmp:
        pw = os.path.join(tmp, "pw")
        subprocess.run(["mosquitto_passwd", "-c", "-b", pw, "u", "p"], check=True,
                       capture_output=True, timeout=WAIT)
        p1, p2 = free_port(), free_port()
        conf = ("per_listener_settings true\n"
                "listener %d 127.0.0.1\nallow_anonymous true\n"
                "listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\n"
                % (p1, p2, pw))
        with Broker(conf, port=p1) as b:
            wait_until(lambda: port_open(p2), what="second listener")
            Client(b, "open", V311, port=p1).disconnect()
            with pytest.raises(AssertionError):
                Client(b, "closed", V311, port=p2).disconnect()
            Client(b, "user", V311, port=p2, username="u", password="p").disconnect()


# user: started as root, the broker drops to that user after opening its listeners.
def test_user_drops_privileges():
    import pwd
    if os.getuid() != 0:
        pytest.skip("needs root")
    nobody = pwd.getpwnam("nobody")
    with Broker({"user": "nobody"}, start=False) as b:
        os.chmod(b.tmp, 0o777)
        os.chmod(b.data_dir, 0o777)
        b.start()

        def uids():
            with open("/proc/%d/status" % b.pid) as f:
                return [ln.split()[1:] for ln in f if ln.startswith("Uid:")][0]
        wait_until(lambda: all(int(u) == nobody.pw_uid for u in uids()), what="uid nobody")
        with Client(b, "as-nobody", V311) as c:
            c.subscribe("n", 0)
