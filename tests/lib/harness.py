"""Integration test harness: real broker processes on loopback, bounded waits.

    with Broker({"max_keepalive": 10}) as b:
        c = Client(b, "c1", proto=V5)
        ...

The broker binary is $STARLING_BIN (set by ctest). With STARLING_TEST_BROKER=mosquitto
the same tests run against /usr/sbin/mosquitto (or $MOSQUITTO_BIN) to check that an
expectation is Mosquitto's behaviour too; tests of Starling-only properties call
starling_only().
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

MOSQUITTO_DEFAULT = "/usr/sbin/mosquitto"

# Upper bound for any single wait in the suite (seconds). Generous for sanitizer builds.
WAIT = float(os.environ.get("STARLING_TEST_WAIT", "10"))


def broker_kind():
    return os.environ.get("STARLING_TEST_BROKER", "starling")


def is_mosquitto():
    return broker_kind() == "mosquitto"


def starling_only(why="Starling-specific behaviour"):
    """Skip the calling test when running against mosquitto."""
    if is_mosquitto():
        pytest.skip("mosquitto: " + why)


def broker_bin():
    if is_mosquitto():
        return os.environ.get("MOSQUITTO_BIN", MOSQUITTO_DEFAULT)
    path = os.environ.get("STARLING_BIN")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "build", "bin", "starling")
    if not os.path.exists(path):
        pytest.skip("broker binary not found: set STARLING_BIN")
    return path


def passwd_bin():
    """starling-passwd, or mosquitto_passwd when testing mosquitto."""
    if is_mosquitto():
        return "mosquitto_passwd"
    path = os.environ.get("STARLING_PASSWD")
    if not path:
        path = os.path.join(os.path.dirname(broker_bin()), "starling-passwd")
    return path


def free_port():
    """A TCP port free on 127.0.0.1 right now (the broker binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout=WAIT, interval=0.02, what="condition"):
    """Poll pred() until it returns a true value (returned) or fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _conf_text(conf):
    if conf is None:
        return ""
    if isinstance(conf, str):
        return conf
    lines = []
    for k, v in conf.items():
        if isinstance(v, (list, tuple)):
            for item in v:
                lines.append("%s %s" % (k, item))
        elif isinstance(v, bool):
            lines.append("%s %s" % (k, "true" if v else "false"))
        else:
            lines.append("%s %s" % (k, v))
    return "\n".join(lines) + "\n"


class Broker:
    """A broker process with its own config, port, data dir and log file.

    conf: str (mosquitto.conf text) or dict (directive -> value; list values repeat).
    Unless the conf has its own `listener`, the harness adds `listener <free port> 127.0.0.1`.
    Unless the conf says otherwise: allow_anonymous true, persistence true in b.data_dir,
    log_dest stderr (unbuffered), log_type all. raw=True writes the conf exactly as given.
    args: extra command-line arguments. expect_exit: exit status expected after SIGTERM.
    use_conf=False starts the binary without -c (give port= and args such as -p).
    env: extra environment variables for the broker process.
    host: the loopback address the MQTT port is checked on (and clients connect to).
    """

    def __init__(self, conf=None, args=(), raw=False, start=True, expect_exit=0, wait_port=True,
                 use_conf=True, port=None, env=None, host="127.0.0.1"):
        self.host = host
        self.tmp = tempfile.mkdtemp(prefix="starling-it-")
        self.data_dir = os.path.join(self.tmp, "data")
        os.mkdir(self.data_dir)
        if not use_conf and os.getuid() == 0:
            # without a config, a broker run as root drops to an unprivileged user (as
            # Mosquitto does) and must still be able to create ./starling-data here
            os.chmod(self.tmp, 0o777)
        self.conf_path = os.path.join(self.tmp, "broker.conf")
        self.log = os.path.join(self.tmp, "broker.log")
        self.args = list(args)
        self.expect_exit = expect_exit
        self.wait_port = wait_port
        self.proc = None
        self.port = port
        self.use_conf = use_conf
        self.wrapper = []  # a command the broker runs under (unshare ..., a test's own)
        self.env = dict(os.environ, **(env or {}))
        text = _conf_text(conf)
        if not raw and use_conf:
            text = self._defaults(text)
        with open(self.conf_path, "w") as f:
            f.write(text)
        self.conf_text = text
        self._start_requested = start

    def _defaults(self, text):
        keys = {ln.split()[0] for ln in text.splitlines() if ln.strip() and not ln.startswith("#")}
        extra = []
        if self.port is not None:
            pass  # the caller's conf (e.g. an include_dir) opens the given port
        elif "listener" not in keys and "port" not in keys:
            self.port = free_port()
            extra.append("listener %d %s" % (self.port, self.host))
        else:
            for ln in text.splitlines():
                p = ln.split()
                if p and p[0] in ("listener", "port") and len(p) > 1:
                    self.port = int(p[1])
                    break
        if "allow_anonymous" not in keys:
            extra.append("allow_anonymous true")
        if "persistence" not in keys:
            extra.append("persistence true")
        if "persistence_location" not in keys:
            extra.append("persistence_location %s/" % self.data_dir)
        if "log_dest" not in keys:
            extra.append("log_dest stderr")
        if "log_type" not in keys:
            extra.append("log_type all")
        if "user" not in keys and os.getuid() == 0:
            # Mosquitto drops root privileges to user "mosquitto" by default.
            extra.append("user %s" % pwd.getpwuid(os.getuid()).pw_name)
        return "\n".join(extra) + "\n" + text

    # --- process control -------------------------------------------------------

    def start(self):
        self._logf = open(self.log, "ab")
        cmd = self.wrapper + [broker_bin()] + (["-c", self.conf_path] if self.use_conf else [])
        cmd += self.args
        self.proc = subprocess.Popen(cmd, stdout=self._logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.tmp, env=self.env)
        if self.wait_port and self.port is not None:
            def up():
                if self.proc.poll() is not None:
                    raise AssertionError("broker exited with %s during start-up:\n%s"
                                         % (self.proc.returncode, self.log_text()))
                return port_open(self.port, self.host)
            wait_until(up, what="broker port %s:%d" % (self.host, self.port))
        return self

    def stop(self, sig=signal.SIGTERM, timeout=WAIT):
        """Send sig and wait for exit; returns the exit status (kills on timeout)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)
            raise AssertionError("broker did not exit within %.0fs after signal %d:\n%s"
                                 % (timeout, sig, self.log_tail()))

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=WAIT)

    def restart(self):
        """SIGTERM (status checked) then start again with the same conf, port and data dir."""
        rc = self.stop()
        assert rc == self.expect_exit, "exit status %s on restart:\n%s" % (rc, self.log_tail())
        self._logf.close()
        return self.start()

    def start_again(self):
        """Start after kill9() with the same conf, port and data dir."""
        self._logf.close()
        return self.start()

    def sighup(self):
        self.proc.send_signal(signal.SIGHUP)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    # --- log -------------------------------------------------------------------

    def log_text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    def wait_log(self, needle, timeout=WAIT):
        """Wait until the log contains needle (str, case-insensitive) or predicate(text)."""
        if callable(needle):
            return wait_until(lambda: needle(self.log_text()), timeout, what="log condition")
        n = needle.lower()
        return wait_until(lambda: n in self.log_text().lower(), timeout, what="log line %r" % needle)

    # --- context ---------------------------------------------------------------

    def __enter__(self):
        if self._start_requested:
            try:
                self.start()
            except BaseException:
                self._cleanup()
                raise
        return self

    def __exit__(self, et, ev, tb):
        try:
            if self.proc is not None and self.proc.poll() is None:
                rc = self.stop()
                if et is None:
                    assert rc == self.expect_exit, (
                        "broker exit status %s after SIGTERM (want %s):\n%s"
                        % (rc, self.expect_exit, self.log_tail()))
            elif self.proc is not None and et is None and self.proc.returncode not in (0, -9):
                raise AssertionError("broker died with status %s:\n%s"
                                     % (self.proc.returncode, self.log_tail()))
        finally:
            self._cleanup(failed=et is not None)
        return False

    def _cleanup(self, failed=False):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                pass
        if getattr(self, "_logf", None):
            self._logf.close()
        if failed:
            print("---- broker log (%s) ----\n%s" % (self.log, self.log_tail(200)))
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_broker(args, timeout=WAIT, cwd=None, env=None):
    """Run the broker binary to completion (for -h and start-up errors)."""
    return subprocess.run([broker_bin()] + list(args), capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env, stdin=subprocess.DEVNULL)
