#!/usr/bin/python3
"""Subscribes to topics on a Starling cluster, prints every message, and fails over between
the cluster's nodes.

    ./subscriber.py --hosts node1:1883,node2:1883,node3:1883 -t sensors/# -q 1 -v

Like mosquitto_sub: one line per message on stdout (the payload; with -v the topic, a space,
then the payload). With a persistent session (the default: a fixed client id, clean_session
False) the broker queues QoS 1 and 2 messages while this client is away, and the next node it
reaches delivers them: nothing acknowledged to the publisher is lost. QoS 1 means at least
once: a message may arrive twice around a failover (--stats counts those).
"""

import argparse
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from failover import FailoverClient, add_connection_args  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_connection_args(p, "example-subscriber")
    m = p.add_argument_group("messages")
    m.add_argument("-t", "--topic", action="append",
                   help="topic filter, may repeat (default example/#)")
    m.add_argument("--qos", type=int, choices=[0, 1, 2], default=1,
                   help="maximum QoS of the subscriptions (default 1)")
    m.add_argument("-v", "--verbose", action="store_true", help="print the topic too")
    m.add_argument("-C", "--count", type=int, default=0,
                   help="exit after this many messages (default: run until a signal)")
    m.add_argument("-W", "--timeout", type=float, default=0,
                   help="exit after this many seconds (default: no limit)")
    m.add_argument("--stats", action="store_true",
                   help="at exit, print on stderr how many messages came and how many payloads"
                        " came more than once")
    args = p.parse_args(argv)
    args.topic = args.topic or ["example/#"]
    return args


class Subscriber:
    def __init__(self, args, done):
        self.args = args
        self.done = done
        self.fc = FailoverClient(args, "subscriber")
        self.fc.client.on_message = self._on_message
        self.fc.client.on_subscribe = self._on_subscribe
        self.fc.on_connected = self._on_connected
        self.received = 0
        self.seen = set()
        self.duplicates = 0

    # on the client's thread
    def _on_connected(self, session_present):
        # also with a session present: cheap, and right if the session was lost
        self.fc.client.subscribe([(t, self.args.qos) for t in self.args.topic])

    def _on_subscribe(self, client, userdata, mid, granted):
        if any(q == 0x80 for q in granted):
            self.fc.log("subscription refused by %s: %s", self.fc.current, list(granted))
        else:
            self.fc.log("subscribed to %s on %s (granted QoS %s)", " ".join(self.args.topic),
                        self.fc.current, " ".join(str(q) for q in granted))

    def _on_message(self, client, userdata, msg):
        payload = msg.payload.decode("utf-8", "replace")
        if self.args.verbose:
            line = "%s %s" % (msg.topic, payload)
        else:
            line = payload
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        self.received += 1
        key = (msg.topic, msg.payload)
        if key in self.seen:
            self.duplicates += 1
        elif self.args.stats:
            self.seen.add(key)
        if self.args.count and self.received >= self.args.count:
            self.done.set()

    def run(self):
        self.fc.start()
        self.done.wait(self.args.timeout or None)
        self.fc.stop()
        if self.args.stats:
            print("subscriber: %d messages, %d repeated; connections: %s"
                  % (self.received, self.duplicates, " -> ".join(self.fc.connections) or "none"),
                  file=sys.stderr, flush=True)
        return 0


def main(argv=None):
    args = parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda s, f: done.set())
    signal.signal(signal.SIGTERM, lambda s, f: done.set())
    return Subscriber(args, done).run()


if __name__ == "__main__":
    sys.exit(main())
