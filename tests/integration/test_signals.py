"""Signals: SIGTERM and SIGINT stop the broker cleanly (exit 0) after sending the wills that
are due; SIGHUP does not stop it."""

import signal
import time

import pytest

from harness import Broker, port_open
from pahoclient import V5, V311, Client, props
from rawmqtt import RawClient


# SIGTERM/SIGINT: exit status 0, listeners closed, and the wills of connected clients are
# published (a retained will is there after restart).
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_exits_zero_and_sends_wills(sig):
    with Broker() as b:
        watcher = Client(b, "sig-watch", V5)
        watcher.subscribe("sig/will/#", 1)
        c = RawClient(b.port, 4)
        c.connect("sig-client", will={"topic": "sig/will/a", "payload": b"down", "qos": 1,
                                      "retain": True})
        rc = b.stop(sig)
        assert rc == 0, b.log_tail()
        assert not port_open(b.port)
        c.close()
        watcher.stop()
        b.start_again()
        with Client(b, "sig-check", V311) as chk:
            chk.subscribe("sig/will/a", 1)
            m = chk.expect()
            assert (m.payload, m.retain) == (b"down", True)


# A will whose delay has not passed at shutdown is still due (the session ends with the
# process when it does not persist): it is published before exit.
def test_stop_sends_delayed_will_of_ending_session():
    with Broker() as b:
        c = Client(b, "sig-delay", V5, properties=props("CONNECT", SessionExpiryInterval=0),
                   will={"topic": "sig/delayed", "payload": b"late", "retain": True,
                         "qos": 1, "properties": props("WILLMESSAGE", WillDelayInterval=60)})
        assert b.stop(signal.SIGTERM) == 0
        c.stop()
        b.start_again()
        with Client(b, "sig-delay-chk", V311) as chk:
            chk.subscribe("sig/delayed", 1)
            assert chk.expect().payload == b"late"


# SIGHUP reloads and keeps running; connections stay up.
def test_sighup_keeps_running():
    with Broker() as b:
        with Client(b, "hup", V311) as c:
            c.subscribe("hup", 1)
            b.sighup()
            time.sleep(0.3)
            assert b.alive()
            c.publish("hup", b"still", qos=1)
            assert c.expect().payload == b"still"
            assert not c.disconnects


# Repeated SIGTERM during shutdown does not crash: exit status stays 0.
def test_double_sigterm():
    with Broker() as b:
        with Client(b, "dbl", V311):
            pass
        b.proc.send_signal(signal.SIGTERM)
        b.proc.send_signal(signal.SIGTERM)
        assert b.stop() == 0
