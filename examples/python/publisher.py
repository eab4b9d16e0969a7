#!/usr/bin/python3
"""Publishes numbered messages to a Starling cluster and fails over between its nodes.

    ./publisher.py --hosts node1:1883,node2:1883,node3:1883 -t sensors/seq -q 1 -n 1000

Message k (from --start, 1 by default) carries --message with {seq} replaced by k. QoS 1 and 2
messages are counted as delivered once the broker acknowledged them (PUBACK / PUBCOMP); the
run ends when --count messages were produced and all of them are acknowledged, or after
--drain-timeout seconds (exit status 1, the missing sequence numbers on stderr).

While no node is reachable, new messages wait in a local queue (--queue-size, oldest dropped
beyond it); QoS 1 and 2 messages already handed to a node and not acknowledged are sent again
to the next node (with the DUP flag) by paho-mqtt. With a persistent session (the default: a
fixed client id, clean_session False) the next node resumes the session.
"""

import argparse
import os
import signal
import sys
import threading
import time

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from failover import FailoverClient, OfflineQueue, add_connection_args  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_connection_args(p, "example-publisher")
    m = p.add_argument_group("messages")
    m.add_argument("-t", "--topic", default="example/seq")
    m.add_argument("--qos", type=int, choices=[0, 1, 2], default=1,
                   help="0 at most once, 1 at least once (default), 2 exactly once")
    m.add_argument("-r", "--retain", action="store_true")
    m.add_argument("-m", "--message", default="{seq}",
                   help="payload template; {seq} is the sequence number (default %(default)s)")
    m.add_argument("-n", "--count", type=int, default=0,
                   help="messages to publish, 0 for no end (default)")
    m.add_argument("--start", type=int, default=1, help="first sequence number (default 1)")
    m.add_argument("--interval", type=float, default=1.0,
                   help="seconds between messages (default 1)")
    m.add_argument("--max-inflight", type=int, default=20,
                   help="unacknowledged QoS 1/2 messages at once (default 20)")
    m.add_argument("--queue-size", type=int, default=10000,
                   help="messages held while offline, 0 for no limit (default 10000)")
    m.add_argument("--drain-timeout", type=float, default=60.0,
                   help="seconds to wait for the last acknowledgements (default 60)")
    return p.parse_args(argv)


class Publisher:
    def __init__(self, args):
        self.args = args
        self.fc = FailoverClient(args, "publisher")
        self.fc.client.max_inflight_messages_set(args.max_inflight)
        self.fc.client.max_queued_messages_set(0)  # the OfflineQueue bounds what waits
        self.fc.client.on_publish = self._on_publish
        self.fc.on_idle = self._pump
        self.lock = threading.Lock()
        self.outbox = OfflineQueue(args.queue_size)  # produced, not handed to paho yet
        self.unacked = {}  # mid -> seq, handed to paho, acknowledgement awaited
        self.acked = set()
        self.produced = 0

    def produce(self, seq):
        with self.lock:
            self.outbox.put(seq)
            self.produced += 1

    # on the client's thread
    def _pump(self):
        c = self.fc.client
        while self.fc.connected:
            with self.lock:
                if not len(self.outbox) or len(self.unacked) >= self.args.max_inflight:
                    return
                seq = self.outbox.pop()
            payload = self.args.message.replace("{seq}", str(seq))
            info = c.publish(self.args.topic, payload, self.args.qos, self.args.retain)
            with self.lock:
                if self.args.qos == 0:
                    if info.rc == mqtt.MQTT_ERR_SUCCESS:
                        self.acked.add(seq)
                    else:  # not written: it waits for the next connection
                        self.outbox.items.appendleft(seq)
                        return
                else:  # paho keeps it until acknowledged, across reconnections
                    self.unacked[info.mid] = seq

    def _on_publish(self, client, userdata, mid):
        if self.args.qos == 0:
            return
        with self.lock:
            seq = self.unacked.pop(mid, None)
            if seq is not None:
                self.acked.add(seq)

    def missing(self, upto):
        with self.lock:
            return [s for s in range(self.args.start, upto) if s not in self.acked]

    def run(self, stop):
        a = self.args
        self.fc.start()
        seq = a.start
        next_at = time.monotonic()
        while not stop.is_set() and (a.count == 0 or seq < a.start + a.count):
            self.produce(seq)
            seq += 1
            next_at += a.interval
            stop.wait(max(0.0, next_at - time.monotonic()))
        deadline = time.monotonic() + a.drain_timeout
        while self.missing(seq) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.fc.stop()
        missing = self.missing(seq)
        with self.lock:
            dropped = self.outbox.dropped
            acked = len(self.acked)
        print("publisher: done: %d published, %d acknowledged, %d dropped while offline;"
              " connections: %s" % (seq - a.start, acked, dropped,
                                    " -> ".join(self.fc.connections) or "none"),
              file=sys.stderr, flush=True)
        if missing:
            shown = " ".join(str(s) for s in missing[:50])
            print("publisher: not acknowledged: %s%s" % (shown, " ..." if len(missing) > 50
                                                         else ""), file=sys.stderr, flush=True)
            return 1
        return 0


def main(argv=None):
    args = parse_args(argv)
    stop = threading.Event()

    def on_signal(signum, frame):
        if stop.is_set():
            sys.exit(130)
        stop.set()  # stop producing, wait for the acknowledgements (a second signal: at once)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return Publisher(args).run(stop)


if __name__ == "__main__":
    sys.exit(main())
