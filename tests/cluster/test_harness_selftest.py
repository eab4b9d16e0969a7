"""The link proxies that make partitions: a cut pair cannot talk (open connections are
closed, new ones refused) while other pairs can, and a heal restores it. No broker needed:
echo servers stand in for the nodes' cluster ports and a hello head names the dialer."""

import socket
import struct
import threading
import time

import pytest

from cluster_harness import Cluster, Node, loopback_usable, node_host


def echo_server(host, port, stop):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(16)
    srv.settimeout(0.1)

    def serve(conn):
        try:
            while True:
                d = conn.recv(4096)
                if not d:
                    break
                conn.sendall(d)
        except OSError:
            pass
        conn.close()

    def loop():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except socket.timeout:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()
        srv.close()
    threading.Thread(target=loop, daemon=True).start()


def hello_head(node_id):
    # "STCH" | version 1 | channel 2 | addr_len 0 | cluster u64 | node_id u64
    return b"STCH" + bytes([1, 2, 0, 0]) + struct.pack(">QQ", 7, node_id)


def dial(src, dst_node):
    s = socket.create_connection((dst_node.host, dst_node.proxy.port), timeout=2)
    s.settimeout(2)
    head = hello_head(src)
    s.sendall(head)
    got = b""
    while len(got) < len(head):
        d = s.recv(4096)
        if not d:
            raise ConnectionError("closed")
        got += d
    assert got == head
    return s


def works(s):
    try:
        s.sendall(b"ping")
        return s.recv(4) == b"ping"
    except OSError:
        return False


def test_partition_cuts_and_heals():
    for i in (1, 2, 3):
        if not loopback_usable(node_host(i)):
            pytest.skip("cannot bind %s" % node_host(i))
    c = Cluster(3, start=False)
    stop = threading.Event()
    try:
        nodes = {i: Node(c, i) for i in (1, 2, 3)}
        c.nodes = nodes
        for nd in nodes.values():
            echo_server(nd.host, nd.cluster_port, stop)
        a = dial(1, nodes[2])  # node 1 -> node 2
        b = dial(2, nodes[3])  # node 2 -> node 3
        assert works(a) and works(b)
        c.partition([1], [2, 3])
        time.sleep(0.2)
        assert not works(a), "the open 1 -> 2 connection survived the partition"
        assert works(b), "2 -> 3 is inside the majority and must keep working"
        with pytest.raises((ConnectionError, OSError)):
            dial(3, nodes[1])  # across the partition: closed after the hello
        c.heal()
        assert works(dial(1, nodes[2])) and works(dial(3, nodes[1]))
        # a single pair cut
        x = dial(1, nodes[3])
        c.cut(1, 3)
        time.sleep(0.2)
        assert not works(x)
        assert works(dial(1, nodes[2]))
        c.heal()
        assert works(dial(3, nodes[1]))
    finally:
        stop.set()
        for nd in c.nodes.values():
            nd.proxy.stop()
        c._cleanup()
