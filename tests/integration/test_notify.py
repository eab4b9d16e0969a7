"""Service-manager readiness (systemd Type=notify): READY=1 once the broker accepts clients,
STOPPING=1 when it is told to stop, each a datagram to $NOTIFY_SOCKET."""

import os
import signal
import socket
import tempfile

import pytest

from harness import WAIT, Broker, is_mosquitto
from pahoclient import V311, Client


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_ready_and_stopping_are_sent_to_notify_socket(abstract):
    if is_mosquitto():
        pytest.skip("Mosquitto 2.0.11 from Debian is built without systemd notification")
    with tempfile.TemporaryDirectory() as d:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "@starling-notify-%d" % os.getpid()
            sock.bind("\0" + name[1:])
        else:
            name = os.path.join(d, "notify")
            sock.bind(name)
        sock.settimeout(WAIT)
        try:
            with Broker(env={"NOTIFY_SOCKET": name}) as b:
                assert sock.recv(256) == b"READY=1"
                # Ready means serving: a client connects and round-trips at once.
                with Client(b, "notify-check", V311) as c:
                    c.subscribe("n/t", 1)
                    c.publish("n/t", b"x", qos=1)
                    m = c.expect(topic="n/t")
                    assert m.payload == b"x"
                assert b.stop(signal.SIGTERM) == 0, b.log_tail()
                assert sock.recv(256) == b"STOPPING=1"
        finally:
            sock.close()


def test_without_notify_socket_nothing_is_sent():
    """No NOTIFY_SOCKET (the normal case outside systemd): the broker starts and stops as
    always."""
    env = {"NOTIFY_SOCKET": ""}
    with Broker(env=env) as b:
        with Client(b, "notify-none", V311) as c:
            c.subscribe("n/none", 0)
