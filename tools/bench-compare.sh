#!/usr/bin/env bash
# Side-by-side benchmark: Debian's mosquitto and Starling with equivalent settings on loopback.
# Each scenario runs against each broker, interleaved (rep 1: A B, rep 2: B A, ...), several
# times, each run on a freshly started broker; the markdown table has the medians and the
# ratios Starling / Mosquitto.
#
# Usage: tools/bench-compare.sh [options]
#   -n REPS        runs per scenario and broker (3)
#   -d SEC         measurement window per run (5); warm-up 1 s
#   -c CONNS       connections in the storm (10000; capped by the open-file limit)
#   -s LIST        scenarios, comma-separated (fanin-q0,fanin-q1,fanout-q0,pairwise-q2,
#                  latency-q1,storm by default; fanout-q1 too)
#   -b LIST        brokers, comma-separated (mosquitto,starling; starling is skipped with a
#                  note when its binary is missing)
#   -o FILE        write the markdown there too (stdout always)
#   -r DIR         keep the raw JSON lines and broker logs in DIR (a temporary folder)
#   --persistence  persistence true, in a fresh folder per run, and subscribers with
#                  persistent sessions (Mosquitto writes its file only at exit with its
#                  default autosave_interval; Starling writes through)
#   --pin          pin the broker to CPU 0 and the bench to CPU 1 (for a machine nobody
#                  else is using; on a shared one pinning adds the neighbours' noise)
#   --tls          MQTT over TLS: a CA and a server certificate (P-256) are made with openssl
#                  in the raw folder, both brokers get cafile/certfile/keyfile on their
#                  listener, the bench runs with --tls --cafile (the broker is verified)
# Environment: STARLING_BIN (build/bin/starling), STARLING_BENCH (build/bin/starling-bench),
# MOSQUITTO_BIN (/usr/sbin/mosquitto).
set -euo pipefail
cd "$(dirname "$0")/.."

reps=3
dur=5
storm_conns=10000
scenarios="fanin-q0,fanin-q1,fanout-q0,pairwise-q2,latency-q1,storm"
brokers="mosquitto,starling"
out=""
raw=""
pin=0
persist=0
tls=0
while [ $# -gt 0 ]; do
    case "$1" in
    -n) reps="$2"; shift 2 ;;
    -d) dur="$2"; shift 2 ;;
    -c) storm_conns="$2"; shift 2 ;;
    -s) scenarios="$2"; shift 2 ;;
    -b) brokers="$2"; shift 2 ;;
    -o) out="$2"; shift 2 ;;
    -r) raw="$2"; shift 2 ;;
    --pin) pin=1; shift ;;
    --persistence) persist=1; shift ;;
    --tls) tls=1; shift ;;
    -h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-compare: unknown option $1" >&2; exit 1 ;;
    esac
done

starling_bin="${STARLING_BIN:-build/bin/starling}"
bench_bin="${STARLING_BENCH:-build/bin/starling-bench}"
mosquitto_bin="${MOSQUITTO_BIN:-/usr/sbin/mosquitto}"
[ -x "$bench_bin" ] || { echo "bench-compare: $bench_bin not found (build first)" >&2; exit 1; }

notes=()
list=()
IFS=',' read -r -a want <<<"$brokers"
for b in "${want[@]}"; do
    case "$b" in
    mosquitto) [ -x "$mosquitto_bin" ] && list+=(mosquitto) ||
        notes+=("mosquitto not found at $mosquitto_bin: skipped") ;;
    starling) [ -x "$starling_bin" ] && list+=(starling) ||
        notes+=("starling not found at $starling_bin: skipped") ;;
    *) echo "bench-compare: unknown broker $b" >&2; exit 1 ;;
    esac
done
[ ${#list[@]} -gt 0 ] || { echo "bench-compare: no broker to run" >&2; exit 1; }

# Connections need file descriptors on both sides; raise the soft limit as far as allowed.
hard=$(ulimit -Hn)
ulimit -n "$hard" 2>/dev/null || true
if [ "$hard" != unlimited ] && [ "$storm_conns" -gt $((hard - 200)) ]; then
    notes+=("storm: $storm_conns connections asked, open-file limit $hard: using $((hard - 200))")
    storm_conns=$((hard - 200))
fi

if [ -z "$raw" ]; then
    raw=$(mktemp -d /tmp/bench-compare-XXXXXX)
fi
mkdir -p "$raw"
results="$raw/results.jsonl"
: >"$results"

if [ "$tls" = 1 ]; then
    # One CA and one server certificate for 127.0.0.1 for every run.
    (
        cd "$raw"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
            -out ca.crt -days 30 -subj /CN=bench-ca
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key \
            -out server.csr -subj /CN=localhost
        echo "subjectAltName=IP:127.0.0.1,DNS:localhost" >server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
            -extfile server.ext -out server.crt
    ) >"$raw/openssl.log" 2>&1 || { echo "bench-compare: openssl failed, see $raw/openssl.log" >&2; exit 1; }
    notes+=("TLS: both listeners with a P-256 server certificate, the bench verifies it (--tls --cafile)")
fi

pin_broker=()
pin_bench=()
if [ "$pin" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    pin_broker=(taskset -c 0)
    pin_bench=(taskset -c 1)
fi

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The same settings for both: loopback listener, anonymous, no persistence, no per-client
# in-flight limit (mosquitto 2.0.11 leaves queued QoS 1/2 messages unsent with its default of
# 20, see docs/benchmarks.md), the default queue of 1000 messages.
write_conf() { # broker port file [data dir]
    {
        echo "listener $2 127.0.0.1"
        if [ "$tls" = 1 ]; then
            echo "cafile $raw/ca.crt"
            echo "certfile $raw/server.crt"
            echo "keyfile $raw/server.key"
        fi
        echo "allow_anonymous true"
        if [ -n "${4:-}" ]; then
            echo "persistence true"
            echo "persistence_location $4/"
        else
            echo "persistence false"
        fi
        echo "max_inflight_messages 0"
        echo "max_queued_messages 1000"
        echo "log_dest none"
        if [ "$1" = mosquitto ] && [ "$(id -u)" = 0 ]; then
            echo "user root" # mosquitto would otherwise switch to the mosquitto user
        fi
    } >"$3"
}

broker_pid=""
cleanup() {
    if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM

start_broker() { # broker port conf log
    local bin="$mosquitto_bin"
    [ "$1" = starling ] && bin="$starling_bin"
    "${pin_broker[@]}" "$bin" -c "$3" >"$4" 2>&1 &
    broker_pid=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then
            return 0
        fi
        kill -0 "$broker_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "bench-compare: $1 did not start, see $4" >&2
    return 1
}

stop_broker() {
    kill "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=""
}

scenario_args() {
    case "$1" in
    fanin-q0) echo "fanin -q 0 -c 8" ;;
    fanin-q1) echo "fanin -q 1 -c 8" ;;
    fanout-q0) echo "fanout -q 0 -c 16" ;;
    fanout-q1) echo "fanout -q 1 -c 16" ;;
    pairwise-q2) echo "pairwise -q 2 -c 8" ;;
    latency-q1) echo "latency -q 1 -c 10 -r 10000" ;;
    storm) echo "storm -c $storm_conns -d 2" ;;
    *) echo "bench-compare: unknown scenario $1" >&2; return 1 ;;
    esac
}

IFS=',' read -r -a scen <<<"$scenarios"
commands=()
for rep in $(seq "$reps"); do
    order=("${list[@]}")
    if [ $((rep % 2)) = 0 ] && [ ${#list[@]} = 2 ]; then
        order=("${list[1]}" "${list[0]}")
    fi
    for s in "${scen[@]}"; do
        read -r -a args <<<"$(scenario_args "$s")"
        for b in "${order[@]}"; do
            port=$(free_port)
            conf="$raw/$b.conf"
            log="$raw/$b-$s-$rep.log"
            data=""
            if [ "$persist" = 1 ]; then
                data="$raw/data-$b-$s-$rep"
                rm -rf "$data" && mkdir -p "$data"
            fi
            write_conf "$b" "$port" "$conf" "$data"
            start_broker "$b" "$port" "$conf" "$log"
            extra=(-d "$dur" -w 1)
            [ "$persist" = 1 ] && extra+=(--persistent)
            [ "$s" = storm ] && extra=()
            [ "$tls" = 1 ] && extra+=(--tls --cafile "$raw/ca.crt")
            cmd=("$bench_bin" "${args[@]}" "${extra[@]}" -p "$port" --pid "$broker_pid" --json --quiet
                --label "$b/$s")
            [ "$rep" = 1 ] && [ "$b" = "${list[0]}" ] && commands+=("${cmd[*]}")
            echo "bench-compare: rep $rep/$reps $s on $b" >&2
            line=$("${pin_bench[@]}" "${cmd[@]}" 2>>"$raw/bench-stderr.log" | tail -n 1) || true
            stop_broker
            if [ -z "$line" ]; then
                line="{\"label\":\"$b/$s\",\"exit\":1,\"error\":\"no output\"}"
            fi
            echo "$line" >>"$results"
            case "$line" in
            *'"exit":0}'*) ;;
            *) echo "bench-compare: $b $s did not pass: ${line: -160}" >&2 ;;
            esac
        done
    done
done

machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPUs, $(uname -sr)"
mosq_version="$("$mosquitto_bin" -h 2>/dev/null | head -n 1 || true)"

[ "$persist" = 1 ] && notes+=("persistence true for both brokers (fresh data folder per run), subscribers with persistent sessions")
/usr/bin/python3 - "$results" "$machine" "$mosq_version" "$reps" "$dur" "${pin_broker[*]:-no pinning}" \
    "${notes[@]+"${notes[@]}"}" <<'EOF' | tee ${out:+"$out"}
import json, statistics, sys, datetime

results, machine, mosq_version, reps, dur, pin = sys.argv[1:7]
notes = sys.argv[7:]
runs = {}
for line in open(results):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line)
    broker, _, scen = r.get("label", "?/?").partition("/")
    runs.setdefault((scen, broker), []).append(r)

def med(rs, key, sub=None):
    vals = []
    for r in rs:
        v = r.get(key)
        if sub is not None and isinstance(v, dict):
            v = v.get(sub)
        if isinstance(v, (int, float)) and r.get("exit") in (0, 2):
            vals.append(v)
    return statistics.median(vals) if vals else None

def fmt(v, unit):
    if v is None:
        return "n/a"
    if unit == "msgs/s" or unit == "conn/s":
        return "{:,.0f}".format(v)
    if unit == "B":
        return "{:,.0f}".format(v)
    return "{:.2f}".format(v) if v < 100 else "{:,.0f}".format(v)

metrics = {
    "storm": [("connects/s", "connects_per_s", None, "conn/s", "higher"),
              ("RSS per idle connection (B)", "rss_bytes_per_conn", None, "B", "lower"),
              ("CPU per connect (us)", "cpu_us_per_connect", None, "us", "lower")],
}
msg_metrics = [("CPU per delivered msg (us)", "cpu_us_per_msg", None, "us", "lower"),
               ("msgs/s delivered", "msgs_per_s", None, "msgs/s", "higher"),
               ("latency p50 (ms)", "latency_us", "p50", "ms", "lower"),
               ("latency p99 (ms)", "latency_us", "p99", "ms", "lower")]

scens = []
for (s, b) in runs:
    if s not in scens:
        scens.append(s)
print("# Starling vs Mosquitto, medians of %s run(s) per cell" % reps)
print()
print("- date: %s UTC" % datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"))
print("- machine: %s" % machine)
print("- mosquitto: %s" % (mosq_version or "?"))
print("- window %s s after 1 s warm-up; fresh broker per run; broker pinned: %s" % (dur, pin))
for n in notes:
    print("- note: %s" % n)
print()
print("| scenario | metric | Mosquitto | Starling | Starling / Mosquitto |")
print("|---|---|---:|---:|---:|")
for s in scens:
    for (name, key, sub, unit, better) in metrics.get(s, msg_metrics):
        m = med(runs.get((s, "mosquitto"), []), key, sub)
        st = med(runs.get((s, "starling"), []), key, sub)
        if unit == "ms":
            m = m / 1000.0 if m is not None else None
            st = st / 1000.0 if st is not None else None
        ratio = "n/a"
        if m and st is not None:
            ratio = "%.2fx" % (st / m)
        print("| %s | %s | %s | %s | %s |" % (s, name, fmt(m, unit), fmt(st, unit), ratio))
print()
print("| scenario | broker | runs | exit statuses | lost | duplicated | misrouted | errors |")
print("|---|---|---:|---|---:|---:|---:|---:|")
for s in scens:
    for b in ("mosquitto", "starling"):
        rs = runs.get((s, b), [])
        if not rs:
            continue
        print("| %s | %s | %d | %s | %d | %d | %d | %d |" % (
            s, b, len(rs), ",".join(str(r.get("exit")) for r in rs),
            sum(r.get("lost", 0) for r in rs), sum(r.get("duplicated", 0) for r in rs),
            sum(r.get("misrouted", 0) for r in rs), sum(r.get("errors", 0) for r in rs)))
EOF
echo >&2
echo "bench-compare: raw results in $raw" >&2
printf 'bench-compare: commands (first rep):\n' >&2
printf '  %s\n' "${commands[@]}" >&2
