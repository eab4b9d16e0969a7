"""The scripts of examples/python as processes, for the tests that run them."""

import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.normpath(os.path.join(HERE, "..", "..", "examples", "python"))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


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
