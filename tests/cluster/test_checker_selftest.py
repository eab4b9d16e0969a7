"""The checker fails on histories that break a guarantee (no broker needed).

Each test builds a small recorded history that holds, checks it passes, then breaks it in
one way (a lost acknowledged message, a reorder, a QoS 2 duplicate, ...) and checks that the
checker names exactly that violation.
"""

import copy

import checker
from checker import History, check


def base():
    """Two persistent subscribers, one publisher; everything acknowledged and delivered."""
    h = History()
    t = [0.0]

    def at():
        t[0] += 1.0
        return t[0]

    for c in ("s1", "s2"):
        h.add("subscriber", c=c, persistent=True, t=at())
        h.add("connack", c=c, conn=1, node=1, sp=False, rc=0, persistent=True, sent=t[0], t=at())
        h.add("suback", c=c, f="load/#", g=2, node=1, sent=t[0], t=at())
    h.add("publisher", c="p", persistent=True, t=at())
    h.add("connack", c="p", conn=1, node=2, sp=False, rc=0, persistent=True, sent=t[0], t=at())
    for seq, (topic, qos) in enumerate([("load/a", 1), ("load/a", 2), ("load/b", 2),
                                        ("load/a", 1)], start=1):
        h.add("pub_sent", p="p", topic=topic, seq=seq, qos=qos, retain=False, node=2, t=at())
        for c in ("s1", "s2"):
            h.add("deliver", c=c, conn=1, node=1, topic=topic, p="p", seq=seq, qos=qos,
                  dup=False, retain=False, t=at())
        h.add("pub_ack", p="p", topic=topic, seq=seq, qos=qos, retain=False, node=2,
              sent=t[0], t=at())
    h.add("pub_sent", p="p", topic="ret/p", seq=5, qos=1, retain=True, node=2, t=at())
    h.add("pub_ack", p="p", topic="ret/p", seq=5, qos=1, retain=True, node=2, sent=t[0], t=at())
    h.add("retained_sweep", nodes=[1, 2, 3], t=at())
    for n in (1, 2, 3):
        h.add("retained_read", node=n, topic="ret/p", p="p", seq=5, t=at())
    h.add("pub_sent", p="probe", topic="load/probe", seq=1000, qos=1, retain=False, node=3, t=at())
    h.add("pub_ack", p="probe", topic="load/probe", seq=1000, qos=1, retain=False, node=3, t=at())
    h.add("probe", p="probe", seq=1000, topic="load/probe", targets=[["s1", "load/#"],
                                                                   ["s2", "load/#"]],
          acked=True, t=at())
    for c in ("s1", "s2"):
        h.add("deliver", c=c, conn=1, node=1, topic="load/probe", p="probe", seq=1000, qos=1,
              dup=False, retain=False, t=at())
    h.add("end", t=at())
    return h


def edit(h, pred, change=None, drop=False):
    """A copy of h with the events matching pred changed (change(e)) or dropped."""
    out = []
    hit = 0
    for e in h.snapshot():
        if pred(e):
            hit += 1
            if drop:
                continue
            e = copy.deepcopy(e)
            change(e)
        out.append(e)
    assert hit, "the edit matched nothing"
    return History(out)


def only(violations, kind):
    assert violations, "the checker found nothing"
    kinds = {v.split(":", 1)[0] for v in violations}
    assert kinds == {kind}, violations
    return violations


def test_clean_history_passes():
    assert check(base()) == []


def test_lost_acknowledged_qos1():
    h = edit(base(), lambda e: e["k"] == "deliver" and e["c"] == "s2" and e["seq"] == 1,
             drop=True)
    v = only(check(h), "lost")
    assert "s2" in v[0] and "p#1" in v[0]


def test_unacknowledged_loss_is_allowed():
    h = edit(base(), lambda e: e["k"] == "pub_ack" and e["seq"] == 4, drop=True)
    h = edit(h, lambda e: e["k"] == "deliver" and e["seq"] == 4, drop=True)
    assert check(h) == []


def test_qos2_duplicate():
    h = base()
    h.add("deliver", c="s1", conn=2, node=3, topic="load/a", p="p", seq=2, qos=2, dup=True,
          retain=False, t=100.0)
    only(check(h), "dup")


def test_qos1_duplicate_is_allowed():
    h = base()
    h.events.insert(-1, {"k": "deliver", "c": "s1", "conn": 1, "node": 1, "topic": "load/a",
                         "p": "p", "seq": 1, "qos": 1, "dup": True, "retain": False, "t": 99.0})
    assert check(h) == []


def test_reorder_for_one_subscriber():
    h = base()
    ev = h.events
    i1 = next(i for i, e in enumerate(ev) if e["k"] == "deliver" and e["c"] == "s1" and
              e["seq"] == 1)
    i4 = next(i for i, e in enumerate(ev) if e["k"] == "deliver" and e["c"] == "s1" and
              e["seq"] == 4)
    ev[i1], ev[i4] = ev[i4], ev[i1]
    v = only(check(h), "order")
    assert any("s1 got p#1 after p#4" in x for x in v), v


def test_subscribers_disagree_on_order():
    # two publishers on one topic: each subscriber keeps each publisher's order, but s2 sees
    # q's message before p's while s1 saw it after
    h = base()
    h.events.insert(-1, {"k": "pub_sent", "p": "q", "topic": "load/a", "seq": 1, "qos": 0,
                         "retain": False, "node": 1, "t": 50.0})
    ev = h.events
    j = max(i for i, e in enumerate(ev) if e["k"] == "deliver" and e["c"] == "s1" and
            e["topic"] == "load/a")
    ev.insert(j + 1, {"k": "deliver", "c": "s1", "conn": 1, "node": 1, "topic": "load/a",
                      "p": "q", "seq": 1, "qos": 0, "dup": False, "retain": False, "t": 51.0})
    k = min(i for i, e in enumerate(ev) if e["k"] == "deliver" and e["c"] == "s2" and
            e["topic"] == "load/a")
    ev.insert(k, {"k": "deliver", "c": "s2", "conn": 1, "node": 1, "topic": "load/a",
                  "p": "q", "seq": 1, "qos": 0, "dup": False, "retain": False, "t": 51.0})
    v = only(check(h), "order")
    assert any("the reverse" in x for x in v), v


def _resequenced(s1, s2):
    """base() plus two publishers' QoS 1 messages on load/c, X = x#1 and Y = y#1, delivered
    to s1 and s2 in the given orders (lists of "X" / "Y", one entry per copy)."""
    h = base()
    t = 60.0
    for p in ("x", "y"):
        h.events.insert(-1, {"k": "pub_sent", "p": p, "topic": "load/c", "seq": 1, "qos": 1,
                             "retain": False, "node": 2, "t": t})
    for c, order in (("s1", s1), ("s2", s2)):
        seen = set()
        for name in order:
            t += 0.1
            h.events.insert(-1, {"k": "deliver", "c": c, "conn": 1, "node": 1,
                                 "topic": "load/c", "p": name.lower(), "seq": 1, "qos": 1,
                                 "dup": name in seen, "retain": False, "t": t})
            seen.add(name)
    for p in ("x", "y"):
        h.events.insert(-1, {"k": "pub_ack", "p": p, "topic": "load/c", "seq": 1, "qos": 1,
                             "retain": False, "node": 2, "sent": 60.0, "t": t + 1})
    return h


def test_qos1_sequenced_twice_is_allowed():
    # X was sequenced, then sequenced again (its publisher resent it after a lost PUBACK); s2
    # lost the first copy, so by first copies it saw Y before X and s1 the reverse; s1's
    # second copy of X agrees with s2.
    assert check(_resequenced(["X", "Y", "X"], ["Y", "X"])) == []


def test_qos1_duplicates_that_do_not_agree():
    # s1 got X twice, both before Y; s2 saw Y before X: no choice of copies agrees.
    v = only(check(_resequenced(["X", "X", "Y"], ["Y", "X"])), "order")
    assert any("the reverse" in x for x in v), v
    # without a duplicate the pair is compared strictly, as before
    only(check(_resequenced(["X", "Y"], ["Y", "X"])), "order")


def test_stale_retained_read():
    h = edit(base(), lambda e: e["k"] == "retained_read" and e["node"] == 2,
             lambda e: e.update(p=None, seq=None))
    v = only(check(h), "retained")
    assert "node 2" in v[0]


def test_retained_sweep_skipping_a_node():
    h = edit(base(), lambda e: e["k"] == "retained_read" and e["node"] == 3, drop=True)
    v = only(check(h), "retained")
    assert "node 3 was not read" in v[0]


def test_subscription_no_longer_routes():
    h = edit(base(), lambda e: e["k"] == "deliver" and e["p"] == "probe" and e["c"] == "s2",
             drop=True)
    v = only(check(h), "route")
    assert "s2" in v[0]


def test_invented_message():
    h = base()
    h.events.insert(-1, {"k": "deliver", "c": "s1", "conn": 1, "node": 1, "topic": "load/a",
                         "p": "p", "seq": 77, "qos": 1, "dup": False, "retain": False,
                         "t": 99.0})
    only(check(h), "invented")


def test_persistent_session_lost_at_reconnect():
    h = base()
    h.events.insert(-1, {"k": "connack", "c": "s1", "conn": 2, "node": 3, "sp": False, "rc": 0,
                         "persistent": True, "sent": 98.0, "t": 99.0})
    v = only(check(h), "session")
    assert "s1" in v[0]


def test_connected_twice():
    h = base()
    # s1 connects on node 3 while its connection on node 1 stays up until the end
    h.events.insert(-1, {"k": "connack", "c": "s1", "conn": 2, "node": 3, "sp": True, "rc": 0,
                         "persistent": True, "sent": 1.0, "t": 2.5})
    v = only(check(h), "twice")
    assert "s1" in v[0]
    # closed by the broker in time (the takeover): fine
    h.events.insert(-1, {"k": "disc", "c": "s1", "conn": 1, "node": 1, "rc": checker.TAKEOVER,
                         "by": "broker", "t": 3.0})
    assert check(h) == []


def test_minority_acknowledges_a_subscribe():
    h = base()
    h.events.insert(-1, {"k": "minority", "nodes": [1], "t": 60.0, "until": 70.0})
    h.events.insert(-1, {"k": "suback", "c": "s1", "f": "x/#", "g": 1, "node": 1, "sent": 61.0,
                         "t": 62.0})
    v = only(check(h), "minority")
    assert "SUBACK" in v[0]
    # the same SUBACK on a majority node, or after the heal, is fine
    ok = edit(h, lambda e: e["k"] == "suback" and e["f"] == "x/#", lambda e: e.update(t=71.0))
    assert check(ok) == []


def test_clean_subscriber_owes_only_while_connected():
    h = History()
    h.add("subscriber", c="c1", persistent=False, t=1.0)
    h.add("connack", c="c1", conn=1, node=1, sp=False, rc=0, persistent=False, sent=1.0, t=1.5)
    h.add("suback", c="c1", f="load/#", g=1, node=1, sent=1.5, t=2.0)
    h.add("pub_sent", p="p", topic="load/a", seq=1, qos=1, retain=False, node=2, t=3.0)
    h.add("pub_ack", p="p", topic="load/a", seq=1, qos=1, retain=False, node=2, sent=3.0, t=4.0)
    h.add("end", t=10.0)
    only(check(h), "lost")  # stayed connected to the end: owed
    h2 = History(h.snapshot()[:-1])
    h2.add("disc", c="c1", conn=1, node=1, rc=7, by="broker", t=3.5)
    h2.add("end", t=10.0)
    assert check(h2) == []  # its node went away: nothing owed to a clean session


def test_history_roundtrip(tmp_path):
    p = tmp_path / "h.json"
    h = edit(base(), lambda e: e["k"] == "deliver" and e["c"] == "s1" and e["seq"] == 2,
             drop=True)
    h.dump(str(p))
    only(check(History.load(str(p))), "lost")


def test_topic_matching():
    m = checker.topic_matches
    assert m("load/#", "load/a/b") and m("load/#", "load")
    assert m("a/+/c", "a/b/c") and not m("a/+/c", "a/b/d")
    assert not m("a/b", "a/b/c") and m("$share/g/a/#", "a/x")


def test_refused_puback_is_not_an_acknowledgement():
    import struct
    rc = checker.RecClient(History(), "x", lambda: [], proto=checker.V5)
    rc.c._in_packet = {"remaining_length": 3, "packet": struct.pack("!HB", 7, 0x80)}
    rc.c._note_reason()
    rc.c._in_packet = {"remaining_length": 3, "packet": struct.pack("!HB", 8, 0x10)}
    rc.c._note_reason()
    assert rc.refusals == {7: 0x80}  # 0x10 (no matching subscribers) is a success
    rc.acked_mids.update({7, 8})
    assert rc.done(7) and not rc.acked(7)
    assert rc.acked(8)
