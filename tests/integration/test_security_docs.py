"""docs/security.md, run: every example tagged `test=NAME` is executed against a real broker.

A section NAME has `sh test=NAME-setup` blocks (one shell script, run in a fresh directory that
stands for /etc/starling), one `conf test=NAME` block (the broker's configuration), and
`sh test=NAME-ok` / `sh test=NAME-refused` blocks whose every line must succeed / fail (exit
non-zero, or, for mosquitto_sub, print that every subscription was denied: it exits 0 then).
Ports and /etc/starling are substituted; listeners bind 127.0.0.1. A section whose broker stops
start-up with "not supported yet" is skipped with the broker's own message."""

import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from harness import WAIT, Broker, broker_bin, free_port, starling_only

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DOC = os.path.join(ROOT, "docs", "security.md")
PORTS = ("8883", "1883", "8088", "7701")
FENCE = re.compile(r"^```(\w+)[ \t]+test=([\w.-]+)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def doc_sections():
    """{name: {"setup": [text], "conf": [text], "ok": [text], "refused": [text]}}"""
    with open(DOC) as f:
        text = f.read()
    sections = {}
    for lang, tag, body in FENCE.findall(text):
        m = re.fullmatch(r"(.*?)-(setup|ok|refused)", tag)
        name, kind = (m.group(1), m.group(2)) if m else (tag, "conf")
        assert (kind == "conf") == (lang == "conf"), "block %s: conf blocks are `conf`" % tag
        sections.setdefault(name, {}).setdefault(kind, []).append(body)
    return sections


SECTIONS = doc_sections()


def test_doc_has_every_section():
    """The page covers each topic with a runnable example (a lost tag fails here)."""
    for name in ("tls", "mtls", "acl", "secret", "clustertls", "admin"):
        assert name in SECTIONS, "docs/security.md has no `test=%s` blocks" % name
        s = SECTIONS[name]
        assert len(s.get("conf", [])) == 1, "%s: exactly one conf block" % name
        assert s.get("ok"), "%s: no ok commands" % name
    for name in ("tls", "mtls", "acl", "admin"):
        assert SECTIONS[name].get("refused"), "%s: no refused commands" % name


class Env:
    def __init__(self, d):
        self.dir = d
        self.ports = {p: str(free_port()) for p in PORTS}
        self.pid = None

    def subst(self, text):
        text = text.replace("/etc/starling", self.dir)
        for p, q in self.ports.items():
            text = re.sub(r"(?<![\w.])%s\b" % p, q, text)
        return text

    def conf(self, text):
        lines = []
        for ln in self.subst(text).splitlines():
            p = ln.split()
            if len(p) == 2 and p[0] in ("listener", "admin_listener"):
                ln += " 127.0.0.1"
            lines.append(ln)
        lines += ["persistence true", "persistence_location %s/data/" % self.dir,
                  "log_dest stderr", "log_type all"]
        if os.getuid() == 0:
            lines.append("user root")
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        return "\n".join(lines) + "\n"

    def command(self, line):
        line = self.subst(line).replace("-h localhost", "-h 127.0.0.1")
        if self.pid is not None:
            line = line.replace("$(pidof starling)", str(self.pid))
        assert "pidof" not in line, "a command signalling brokers by name: %s" % line
        return line

    def run(self, script):
        bindir = os.path.dirname(os.path.abspath(broker_bin()))
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
        return subprocess.run(["bash", "-c", script], cwd=self.dir, env=env, capture_output=True,
                              text=True, timeout=WAIT * 3, stdin=subprocess.DEVNULL)


def commands(blocks):
    for b in blocks:
        for ln in b.splitlines():
            if ln.strip() and not ln.lstrip().startswith("#"):
                yield ln


def first_port(conf_text):
    for ln in conf_text.splitlines():
        p = ln.split()
        if len(p) >= 2 and p[0] == "listener":
            return int(p[1])
    raise AssertionError("conf without a listener")


@pytest.mark.parametrize("name", ["tls", "mtls", "acl", "secret", "clustertls", "admin"])
def test_section(name):
    starling_only("docs/security.md documents Starling")
    for tool in ("openssl", "mosquitto_pub", "mosquitto_sub", "mosquitto_passwd", "curl"):
        if shutil.which(tool) is None:
            pytest.skip("%s not installed" % tool)
    sec = SECTIONS[name]
    d = tempfile.mkdtemp(prefix="starling-secdoc-")
    try:
        env = Env(d)
        for script in sec.get("setup", []):
            r = env.run("set -e\n" + env.subst(script))
            assert r.returncode == 0, "%s-setup failed:\n%s%s" % (name, r.stdout, r.stderr)
        conf = env.conf(sec["conf"][0])
        b = Broker(conf, raw=True, start=False, port=first_port(conf))
        with b:
            try:
                b.start()
            except AssertionError:
                log = b.log_text()
                m = re.search(r"^.*not supported yet.*$", log, re.M)
                if m and b.proc.poll() is not None:
                    pytest.skip("%s: the broker refuses the documented config: %s"
                                % (name, m.group(0).strip()))
                raise
            env.pid = b.pid
            for ln in commands(sec.get("ok", [])):
                cmd = env.command(ln)
                for attempt in range(3):  # the first ones may race a node becoming ready
                    r = env.run(cmd)
                    if r.returncode == 0:
                        break
                    time.sleep(1)
                assert r.returncode == 0, "%s: documented command failed (%d): %s\n%s%s" % (
                    name, r.returncode, cmd, r.stdout, r.stderr)
            for ln in commands(sec.get("refused", [])):
                cmd = env.command(ln)
                r = env.run(cmd)
                refused = r.returncode != 0 or "subscription requests were denied" in (
                    r.stdout + r.stderr)
                assert refused, "%s: documented refusal succeeded: %s\n%s%s" % (
                    name, cmd, r.stdout, r.stderr)
                assert b.alive(), "broker died after: %s\n%s" % (cmd, b.log_tail())
    finally:
        shutil.rmtree(d, ignore_errors=True)
