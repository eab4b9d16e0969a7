"""What publisher.py and subscriber.py share: their connection options and a paho-mqtt 1.6
client that knows every node of a Starling cluster and moves to the next one when its node goes
away.

Any node serves any client: a persistent session (clean_session False and a fixed client id)
resumes on whichever node the client reaches next, with its subscriptions and queued messages.
So failing over is reconnecting elsewhere with the same client id; paho-mqtt resends the QoS 1
and 2 messages that were not acknowledged yet.

One thread owns the paho client (connect, the network loop, every publish), so nothing of
paho is called from two threads at once; other threads hand it work with FailoverClient.call().

Reconnection: after a connection ends, the next node is tried at once; every failed attempt
after that (refused, unreachable, no CONNACK within --connect-timeout) waits an exponentially
growing delay, --min-backoff doubling up to --max-backoff, with jitter, so a fleet of clients
does not reconnect in step. A CONNACK resets the delay.
"""

import argparse
import collections
import queue
import random
import ssl
import sys
import threading
import time

import paho.mqtt.client as mqtt


def parse_hosts(text):
    """'h1:1883,h2:1883,[fd00::1]:1883' -> [(host, port), ...]; the port defaults to 1883."""
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else "1883"
        elif item.count(":") == 1:
            host, port = item.split(":")
        else:
            host, port = item, "1883"
        try:
            port = int(port)
        except ValueError:
            raise argparse.ArgumentTypeError("bad port in %r" % item)
        if not host or not 0 < port < 65536:
            raise argparse.ArgumentTypeError("bad host:port %r" % item)
        out.append((host, port))
    if not out:
        raise argparse.ArgumentTypeError("no host in %r" % text)
    return out


def add_connection_args(p, default_client_id):
    g = p.add_argument_group("connection")
    g.add_argument("--hosts", type=parse_hosts, default=parse_hosts("localhost:1883"),
                   help="the cluster's nodes, HOST:PORT,HOST:PORT,... (default localhost:1883);"
                        " tried in this order, moving to the next when one fails")
    g.add_argument("--shuffle", action="store_true",
                   help="start at a random node of --hosts (spreads clients over the nodes)")
    g.add_argument("-i", "--client-id", default=default_client_id,
                   help="client id (default %(default)s); keep it fixed for a persistent session")
    g.add_argument("--clean-session", action="store_true",
                   help="no persistent session: what was queued for this client is dropped"
                        " when it disconnects")
    g.add_argument("-k", "--keepalive", type=int, default=30, help="seconds (default 30)")
    g.add_argument("-u", "--username")
    g.add_argument("-P", "--password")
    g.add_argument("--connect-timeout", type=float, default=5.0,
                   help="seconds to wait for CONNACK before trying the next node (default 5)")
    g.add_argument("--min-backoff", type=float, default=0.5,
                   help="first reconnection delay in seconds (default 0.5)")
    g.add_argument("--max-backoff", type=float, default=30.0,
                   help="longest reconnection delay in seconds (default 30)")
    t = p.add_argument_group("TLS (a listener with certfile/keyfile on the broker)")
    t.add_argument("--tls", action="store_true",
                   help="TLS, the broker verified with the system's CAs")
    t.add_argument("--cafile", help="CA certificate(s) to verify the broker with; turns TLS on")
    t.add_argument("--cert", help="client certificate (require_certificate true)")
    t.add_argument("--key", help="client private key")
    t.add_argument("--tls-version", choices=["tlsv1.2", "tlsv1.3"],
                   help="only this version (default: the best both sides have)")
    t.add_argument("--insecure", action="store_true",
                   help="do not check the broker's host name against its certificate")
    w = p.add_argument_group("last will")
    w.add_argument("--will-topic", help="the broker publishes --will-payload here when this"
                                        " client goes away without a DISCONNECT")
    w.add_argument("--will-payload", default="offline")
    w.add_argument("--will-qos", type=int, choices=[0, 1, 2], default=1)
    w.add_argument("--will-retain", action="store_true")
    w.add_argument("--online-payload",
                   help="published (retained, QoS 1) on --will-topic at every connection")
    p.add_argument("-q", "--quiet", action="store_true", help="no connection log on stderr")


def tls_context(args):
    """The TLS settings of the command line as an ssl.SSLContext."""
    ctx = ssl.create_default_context(cafile=args.cafile)  # system CAs without --cafile
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    if args.tls_version:
        v = {"tlsv1.2": ssl.TLSVersion.TLSv1_2, "tlsv1.3": ssl.TLSVersion.TLSv1_3}
        ctx.minimum_version = ctx.maximum_version = v[args.tls_version]
    if args.insecure:
        ctx.check_hostname = False
    return ctx


class FailoverClient:
    """A paho client that connects to one node of args.hosts at a time."""

    def __init__(self, args, name):
        self.args = args
        self.name = name
        self.hosts = list(args.hosts)
        self.index = random.randrange(len(self.hosts)) if args.shuffle else 0
        self.client = mqtt.Client(client_id=args.client_id, clean_session=args.clean_session,
                                  protocol=mqtt.MQTTv311)
        c = self.client
        if args.username:
            c.username_pw_set(args.username, args.password)
        if args.tls or args.cafile or args.cert:
            c.tls_set_context(tls_context(args))
            c.tls_insecure_set(args.insecure)
        if args.will_topic:
            c.will_set(args.will_topic, args.will_payload, args.will_qos, args.will_retain)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        self.on_connected = None  # callable(session_present), on the client's thread
        self.on_idle = None  # callable(), on the client's thread at every turn of its loop
        self.connected = False
        self.current = None  # "host:port" while connected
        self.connections = []  # every "host:port" a CONNACK came from, in order
        self._calls = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # --- for the application -----------------------------------------------------------

    def log(self, fmt, *a):
        if not self.args.quiet:
            print("%s: %s" % (self.name, fmt % a), file=sys.stderr, flush=True)

    def start(self):
        self._thread.start()
        return self

    def call(self, fn, *a):
        """Run fn(*a) on the client's thread (the only thread that touches paho)."""
        self._calls.put((fn, a))

    def stop(self, timeout=5.0):
        """Disconnect cleanly (no will) and end the thread."""
        self._stop.set()
        self._thread.join(timeout)

    # --- paho callbacks (on the client's thread) -----------------------------------------

    def _on_connect(self, client, userdata, flags, rc):
        if rc != 0:
            self.log("%s refused the connection: %s", self._target, mqtt.connack_string(rc))
            return
        self.connected = True
        self.current = self._target
        self.connections.append(self._target)
        self.log("connected to %s (session present: %s)", self._target,
                 "yes" if flags.get("session present") else "no")
        if self.args.will_topic and self.args.online_payload is not None:
            client.publish(self.args.will_topic, self.args.online_payload, 1, True)
        if self.on_connected:
            self.on_connected(bool(flags.get("session present")))

    def _on_disconnect(self, client, userdata, rc):
        if self.connected and rc == 0:
            self.log("disconnected from %s", self.current)
        elif self.connected:
            self.log("connection to %s lost (%s)", self.current, mqtt.error_string(rc))
        self.connected = False
        self.current = None

    # --- the client's thread -----------------------------------------------------------

    def _run_calls(self):
        while True:
            try:
                fn, a = self._calls.get_nowait()
            except queue.Empty:
                return
            fn(*a)

    def _backoff(self, failures):
        delay = min(self.args.max_backoff, self.args.min_backoff * (2 ** (failures - 1)))
        delay *= random.uniform(0.5, 1.0)
        self._stop.wait(delay)

    def _session(self, host, port):
        """One connection to one node; returns True when it got a CONNACK."""
        self._target = "%s:%d" % (host, port)
        try:
            self.client.connect(host, port, self.args.keepalive)
        except (OSError, ssl.SSLError) as e:
            self.log("cannot connect to %s: %s", self._target, e)
            return False
        deadline = time.monotonic() + self.args.connect_timeout
        got = False
        while not self._stop.is_set():
            self._run_calls()
            if self.on_idle:
                self.on_idle()
            rc = self.client.loop(timeout=0.05)
            got = got or self.connected
            if rc != mqtt.MQTT_ERR_SUCCESS:
                break
            if not got and time.monotonic() > deadline:
                self.log("no CONNACK from %s within %.1fs", self._target,
                         self.args.connect_timeout)
                self.client.disconnect()
                self.client.loop(timeout=0.05)
                break
        if self._stop.is_set() and self.connected:
            self._run_calls()
            if self.on_idle:
                self.on_idle()
            self.client.disconnect()
            for _ in range(20):  # let the DISCONNECT go out
                if self.client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                    break
        self.connected = False
        return got

    def _run(self):
        failures = 0
        while not self._stop.is_set():
            host, port = self.hosts[self.index]
            got = self._session(host, port)
            if self._stop.is_set():
                break
            # this node is gone or failing: the next one, at once after a working connection
            self.index = (self.index + 1) % len(self.hosts)
            if got:
                failures = 0
                continue
            failures += 1
            self._run_calls()
            self._backoff(failures)


class OfflineQueue:
    """Messages produced while no node is reachable, oldest dropped beyond `limit`."""

    def __init__(self, limit):
        self.limit = limit
        self.items = collections.deque()
        self.dropped = 0

    def put(self, item):
        if self.limit and len(self.items) >= self.limit:
            self.items.popleft()
            self.dropped += 1
        self.items.append(item)

    def __len__(self):
        return len(self.items)

    def pop(self):
        return self.items.popleft()
