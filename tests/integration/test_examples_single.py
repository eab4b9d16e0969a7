"""examples/python against one broker: QoS 1 from publisher.py to subscriber.py, with a restart
of the broker (SIGTERM, or kill -9) in the middle of the stream; both clients reconnect (with
backoff) to the same node, the persistent sessions resume from the data dir, and no
acknowledged message is lost.
"""

import os
import signal
import subprocess
import sys

import pytest

from harness import WAIT, Broker, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.normpath(os.path.join(HERE, "..", "..", "examples", "python"))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
COUNT = 300


class Example:
    """One example script as a process; stdout and stderr go to files of tmp."""

    def __init__(self, tmp, script, args):
        self.out_path = os.path.join(tmp, script + ".out")
        self.err_path = os.path.join(tmp, script + ".err")
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([PYTHON, os.path.join(EXAMPLES, script)] + args,
                                     stdout=self.out, stderr=self.err,
                                     stdin=subprocess.DEVNULL)

    def text(self, which="out"):
        with open(self.out_path if which == "out" else self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def lines(self):
        return self.text().splitlines()

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s still running after %ss; stderr:\n%s"
                                 % (self.proc.args[1], timeout, self.text("err")))

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.out.close()
        self.err.close()


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
