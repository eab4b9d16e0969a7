"""Randomized fault schedules against a local cluster under client load, judged by checker.py.

    tools/chaos.sh --schedules 100 --seed 42            # or python3 tests/lib/chaos.py ...
    tools/chaos.sh --schedules 3 --steps 3 --nodes 3     # the short CI run

Schedule i uses seed S+i (printed first, so any schedule reruns alone with --seed S+i
--schedules 1). Each schedule starts a fresh cluster, starts the Workload, then applies
--steps faults drawn from: kill -9 (leader or follower) and restart, SIGSTOP / SIGCONT,
partition of a minority (with or without the leader) and heal, SIGTERM restart, leader
transfer. One fault at a time, each held for a random 0.5-3 s under traffic, then undone;
the majority stays up, so the guarantees must hold. At the end the checker reads the whole
history; a failing schedule's history is saved as JSON (--save DIR) for replay through
checker.check(History.load(path)).

Exit status: 0 every schedule held, 1 a guarantee was broken or a schedule failed, 2 usage.
"""

import argparse
import os
import random
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checker  # noqa: E402
from cluster_harness import Cluster  # noqa: E402

FAULTS = ["kill_leader", "kill_follower", "stop", "partition_leader", "partition_other",
          "restart", "transfer"]


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


def apply_fault(c, rnd, kind, hold, w):
    lead = c.leader()
    others = [x for x in c.running() if x.id != lead.id]
    n = len(c.running())
    if kind == "kill_leader" or (kind == "kill_follower" and not others):
        nd = lead
        nd.kill9()
        w.run_for(hold)
        nd.start(wait=False)
        return "kill -9 leader %d" % nd.id
    if kind == "kill_follower":
        nd = rnd.choice(others)
        nd.kill9()
        w.run_for(hold)
        nd.start(wait=False)
        return "kill -9 follower %d" % nd.id
    if kind == "stop":
        nd = rnd.choice(c.running())
        nd.sigstop()
        w.run_for(hold)
        nd.sigcont()
        return "SIGSTOP %d for %.1fs" % (nd.id, hold)
    if kind in ("partition_leader", "partition_other"):
        size = rnd.randint(1, (n - 1) // 2)
        pool = others[:]
        rnd.shuffle(pool)
        minority = ([lead] + pool[:size - 1]) if kind == "partition_leader" else pool[:size]
        majority = [x for x in c.running() if x not in minority]
        c.partition([x.id for x in minority], [x.id for x in majority])
        win = w.h.add("minority", nodes=[x.id for x in minority], until=None)
        w.run_for(hold)
        c.heal()
        win["until"] = time.monotonic()
        return "partition %s | %s for %.1fs" % ([x.id for x in minority],
                                               [x.id for x in majority], hold)
    if kind == "restart":
        nd = rnd.choice(c.running())
        nd.restart(wait=False)
        return "SIGTERM restart %d" % nd.id
    if kind == "transfer":
        if not others:
            return "transfer: no other node"
        nd = rnd.choice(others)
        c.transfer(nd.id)
        return "leader transfer %d -> %d" % (lead.id, nd.id)
    raise ValueError(kind)


def run_schedule(seed, args):
    rnd = random.Random(seed)
    faults = args.faults.split(",") if args.faults else FAULTS
    t0 = time.monotonic()
    done = []
    with Cluster(args.nodes) as c:
        w = checker.Workload(c, seed=seed, publishers=args.publishers,
                             subscribers=args.subscribers, clean=1, rate=args.rate)
        w.start()
        try:
            w.run_for(rnd.uniform(0.5, 2.0))
            for _ in range(args.steps):
                kind = rnd.choice(faults)
                hold = rnd.uniform(0.5, args.max_hold)
                done.append(apply_fault(c, rnd, kind, hold, w))
                log("  seed %d step %d: %s" % (seed, len(done), done[-1]))
                c.wait_ready()
                w.wait_acks(5, timeout=60)
                w.run_for(rnd.uniform(0.3, 1.5))
            h = w.finish()
        except BaseException:
            w.stop()
            raise
    bad = checker.check(h)
    return {"seed": seed, "faults": done, "violations": bad, "history": h,
            "acks": len(h.of("pub_ack")), "deliveries": len(h.of("deliver")),
            "secs": time.monotonic() - t0}


def main(argv=None):
    ap = argparse.ArgumentParser(description="randomized cluster fault schedules")
    ap.add_argument("--schedules", type=int, default=10)
    ap.add_argument("--seed", type=int, default=None, help="first seed (default: random)")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5, help="faults per schedule")
    ap.add_argument("--max-hold", type=float, default=3.0, help="longest fault, seconds")
    ap.add_argument("--faults", default="", help="comma list of: " + ",".join(FAULTS))
    ap.add_argument("--publishers", type=int, default=3)
    ap.add_argument("--subscribers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=20.0, help="messages/s per publisher")
    ap.add_argument("--save", default="", help="directory for failing histories (JSON)")
    ap.add_argument("--keep-going", action="store_true", help="run every schedule")
    args = ap.parse_args(argv)
    if args.nodes < 3:
        ap.error("--nodes must be at least 3")
    for f in (args.faults.split(",") if args.faults else []):
        if f not in FAULTS:
            ap.error("unknown fault %r" % f)
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    log("chaos: %d schedules, seeds %d..%d, %d nodes, %d faults each (rerun one: --seed N "
        "--schedules 1)" % (args.schedules, seed, seed + args.schedules - 1, args.nodes,
                            args.steps))
    failed = 0
    started = time.monotonic()
    for i in range(args.schedules):
        s = seed + i
        log("schedule %d/%d seed %d" % (i + 1, args.schedules, s))
        try:
            r = run_schedule(s, args)
        except KeyboardInterrupt:
            log("interrupted at seed %d" % s)
            return 1
        except BaseException as e:  # the cluster or workload failed: a failed schedule
            failed += 1
            log("seed %d FAILED to run: %s" % (s, e))
            traceback.print_exc(limit=3)
            if not args.keep_going:
                break
            continue
        log("seed %d: %s; %d acks, %d deliveries, %.1fs"
            % (s, "; ".join(r["faults"]), r["acks"], r["deliveries"], r["secs"]))
        if r["violations"]:
            failed += 1
            log("seed %d VIOLATES:\n  %s" % (s, "\n  ".join(r["violations"])))
            if args.save:
                os.makedirs(args.save, exist_ok=True)
                path = os.path.join(args.save, "chaos-%d.json" % s)
                r["history"].dump(path)
                log("history saved to %s" % path)
            if not args.keep_going:
                break
    log("chaos: %d of %d schedules failed (seed %d), %.0fs"
        % (failed, args.schedules, seed, time.monotonic() - started))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
