#!/usr/bin/env bash
# Runs an N-node Starling cluster on this machine, node i on 127.0.0.i, with the configuration
# of docs/bare-metal.md (the same ports on every node; only the addresses differ).
#
#   tools/local-cluster.sh up [N]        write the confs (first time), start nodes 1..N and every
#                                        node added with `join`, wait for /readyz (default N=3)
#   tools/local-cluster.sh status [ID]   the processes, then `starling-ctl status` and `members`
#                                        asked of node ID (default: the first running node)
#   tools/local-cluster.sh down          SIGTERM every node, wait (bounded), then SIGKILL
#   tools/local-cluster.sh join ID       add node ID (conf with cluster_join), start it, wait
#                                        until it is a voter and ready
#   tools/local-cluster.sh remove ID     `starling-ctl remove ID` on the leader, then stop it
#   tools/local-cluster.sh restart ID    SIGTERM node ID, start it again, wait for /readyz
#                                        (one step of a rolling upgrade)
#   tools/local-cluster.sh conf ID       print node ID's configuration file
#   tools/local-cluster.sh clean         down, then delete the state dir
#
# The state dir ($STARLING_LOCAL_CLUSTER_DIR, default ./local-cluster) holds cluster.secret and
# node-ID/{starling.conf,data/,starling.log,starling.pid}. `down` keeps the data: `up` again
# restarts the same cluster (an existing data dir is never bootstrapped again).
#
# Environment: STARLING_BIN, STARLING_CTL (default build/bin/ of this checkout),
# STARLING_LOCAL_CLUSTER_MQTT_PORT (1883), ..._CLUSTER_PORT (7700), ..._ADMIN_PORT (8088),
# STARLING_LOCAL_CLUSTER_WAIT (seconds to wait for readiness, 60), ..._STOP_WAIT (30).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
STATE="${STARLING_LOCAL_CLUSTER_DIR:-./local-cluster}"
BIN="${STARLING_BIN:-$root/build/bin/starling}"
CTL="${STARLING_CTL:-$(dirname "$BIN")/starling-ctl}"
MQTT_PORT="${STARLING_LOCAL_CLUSTER_MQTT_PORT:-1883}"
CLUSTER_PORT="${STARLING_LOCAL_CLUSTER_CLUSTER_PORT:-7700}"
ADMIN_PORT="${STARLING_LOCAL_CLUSTER_ADMIN_PORT:-8088}"
WAIT="${STARLING_LOCAL_CLUSTER_WAIT:-60}"
STOP_WAIT="${STARLING_LOCAL_CLUSTER_STOP_WAIT:-30}"

die() {
    echo "local-cluster: $*" >&2
    exit 1
}

say() { echo "local-cluster: $*"; }

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

check_id() {
    [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 254 ] ||
        die "node ids are 1..254 (node i runs on 127.0.0.i), not '$1'"
}

host_of() { echo "127.0.0.$1"; }
node_dir() { echo "$STATE/node-$1"; }

# Node ids with a conf, in order.
node_ids() {
    local d
    for d in "$STATE"/node-*; do
        [ -f "$d/starling.conf" ] || continue
        echo "${d##*/node-}"
    done | sort -n
}

pid_of() {
    local f
    f="$(node_dir "$1")/starling.pid"
    [ -f "$f" ] && cat "$f"
}

# True when the pid file names a live starling process of this node (a recycled pid is not).
running() {
    local pid conf
    pid="$(pid_of "$1")" || return 1
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    conf="$(cd "$(node_dir "$1")" && pwd)/starling.conf"
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$conf"
}

# HTTP GET on a node's admin listener; prints the status code (000 when unreachable).
http_status() {
    curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$(host_of "$1"):$ADMIN_PORT$2" || true
}

ready() { [ "$(http_status "$1" /readyz)" = 200 ]; }

ctl() {
    local id="$1"
    shift
    [ -x "$CTL" ] || die "starling-ctl not found at $CTL (build it, or set STARLING_CTL)"
    "$CTL" -H "$(host_of "$id"):$ADMIN_PORT" "$@"
}

# The leader's id as node $1 sees it (empty when there is none).
leader_seen_by() {
    ctl "$1" --json status 2>/dev/null |
        sed -n 's/.*"leader"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' | head -n 1
}

write_secret() {
    local f="$STATE/cluster.secret"
    [ -s "$f" ] && return 0
    (umask 077 && head -c 32 /dev/urandom | base64 >"$f")
}

# The conf of node $1; $2 is "peers LIST" or "join HOST:PORT". The same text as the
# walkthrough's, with the loopback addresses in place of the hosts' addresses.
write_conf() {
    local id="$1" how="$2" arg="$3" dir host
    dir="$(node_dir "$id")"
    host="$(host_of "$id")"
    mkdir -p "$dir/data"
    chmod 700 "$dir/data"
    {
        echo "# node $id of a local cluster (tools/local-cluster.sh; see docs/bare-metal.md)"
        echo "node_id $id"
        echo "listener $MQTT_PORT $host"
        echo "allow_anonymous true"
        echo "persistence true"
        echo "persistence_location $(cd "$dir" && pwd)/data/"
        echo "log_dest stderr"
        echo "log_type error"
        echo "log_type warning"
        echo "log_type notice"
        echo "log_type information"
        echo "log_timestamp true"
        echo "cluster_listen $CLUSTER_PORT $host"
        echo "cluster_advertise $host:$CLUSTER_PORT"
        if [ "$how" = peers ]; then
            echo "cluster_peers $arg"
        else
            echo "cluster_join $arg"
        fi
        echo "cluster_secret_file $(cd "$STATE" && pwd)/cluster.secret"
        echo "admin_listener $ADMIN_PORT $host"
        # As root the broker would switch to the user `mosquitto`; stay who we are.
        if [ "$(id -u)" -eq 0 ]; then echo "user $(id -un)"; fi
    } >"$dir/starling.conf.tmp"
    mv "$dir/starling.conf.tmp" "$dir/starling.conf"
}

start_node() {
    local id="$1" dir conf
    dir="$(node_dir "$id")"
    [ -f "$dir/removed" ] && return 0
    if running "$id"; then
        say "node $id already running (pid $(pid_of "$id"))"
        return 0
    fi
    [ -x "$BIN" ] || die "broker not found at $BIN (build it, or set STARLING_BIN)"
    conf="$(cd "$dir" && pwd)/starling.conf"
    (cd "$dir" && exec nohup "$BIN" -c "$conf" </dev/null >>starling.log 2>&1) &
    echo $! >"$dir/starling.pid"
    say "node $id started: pid $!, mqtt $(host_of "$id"):$MQTT_PORT," \
        "admin $(host_of "$id"):$ADMIN_PORT, log $dir/starling.log"
}

wait_ready() {
    local deadline=$((SECONDS + WAIT)) id pending
    while :; do
        pending=""
        for id in "$@"; do
            running "$id" || die "node $id is not running; the end of its log:
$(tail -n 20 "$(node_dir "$id")/starling.log" 2>/dev/null)"
            ready "$id" || pending="$pending $id"
        done
        [ -z "$pending" ] && break
        [ "$SECONDS" -ge "$deadline" ] && die "not ready after ${WAIT}s:$pending (see their logs)"
        sleep 0.2
    done
    say "ready: $*"
}

# SIGTERM the given nodes, wait up to STOP_WAIT for them, then SIGKILL what is left.
stop_nodes() {
    local id pid live=() deadline
    for id in "$@"; do
        if running "$id"; then
            pid="$(pid_of "$id")"
            kill -TERM "$pid" 2>/dev/null || true
            live+=("$id")
        fi
    done
    deadline=$((SECONDS + STOP_WAIT))
    while :; do
        local left=()
        for id in "${live[@]+"${live[@]}"}"; do
            running "$id" && left+=("$id")
        done
        live=("${left[@]+"${left[@]}"}")
        [ ${#live[@]} -eq 0 ] && break
        if [ "$SECONDS" -ge "$deadline" ]; then
            for id in "${live[@]}"; do
                say "node $id did not stop within ${STOP_WAIT}s: SIGKILL"
                kill -KILL "$(pid_of "$id")" 2>/dev/null || true
            done
            sleep 0.2
            break
        fi
        sleep 0.1
    done
    for id in "$@"; do
        running "$id" || rm -f "$(node_dir "$id")/starling.pid"
    done
}

first_running() {
    local id
    for id in $(node_ids); do
        if running "$id"; then
            echo "$id"
            return 0
        fi
    done
    return 1
}

cmd_up() {
    local n="${1:-}" i peers="" ids=() id want
    if [ -z "$n" ]; then
        # the size it was bootstrapped with, else 3
        n=3
        [ -f "$STATE/peers" ] && n="$(wc -w <"$STATE/peers")"
    fi
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 254 ] || die "N is 1..254, not '$n'"
    mkdir -p "$STATE"
    for ((i = 1; i <= n; i++)); do
        peers="$peers${peers:+ }$i@$(host_of "$i"):$CLUSTER_PORT"
    done
    if [ -f "$STATE/peers" ] && [ "$(cat "$STATE/peers")" != "$peers" ]; then
        die "$STATE holds a cluster bootstrapped as '$(cat "$STATE/peers")'; run \`$0 clean\` first"
    fi
    echo "$peers" >"$STATE/peers"
    write_secret
    for ((i = 1; i <= n; i++)); do
        [ -f "$(node_dir "$i")/starling.conf" ] || write_conf "$i" peers "$peers"
    done
    for id in $(node_ids); do
        [ -f "$(node_dir "$id")/removed" ] && continue
        start_node "$id"
        ids+=("$id")
    done
    wait_ready "${ids[@]}"
    want="$(leader_seen_by "${ids[0]}")"
    say "leader: node ${want:-none}"
}

cmd_status() {
    local ask="${1:-}" id state
    [ -d "$STATE" ] || die "no cluster in $STATE (run \`$0 up\`)"
    for id in $(node_ids); do
        if [ -f "$(node_dir "$id")/removed" ]; then
            state="removed"
        elif running "$id"; then
            state="running pid $(pid_of "$id"), $(ready "$id" && echo ready || echo 'not ready')"
        else
            state="stopped"
        fi
        printf 'node %-3s %-9s %s\n' "$id" "$(host_of "$id")" "$state"
    done
    if [ -z "$ask" ]; then
        ask="$(first_running)" || die "no node is running"
    else
        check_id "$ask"
    fi
    echo
    ctl "$ask" status
    echo
    ctl "$ask" members
}

cmd_down() {
    [ -d "$STATE" ] || return 0
    # shellcheck disable=SC2046
    stop_nodes $(node_ids)
    say "stopped"
}

cmd_join() {
    local id="$1" via lead
    check_id "$id"
    [ -d "$STATE" ] || die "no cluster in $STATE (run \`$0 up\`)"
    [ -f "$(node_dir "$id")/starling.conf" ] && die "node $id exists already"
    via="$(first_running)" || die "no node is running to join through"
    lead="$(leader_seen_by "$via")"
    [ -n "$lead" ] || lead="$via"
    write_conf "$id" join "$(host_of "$lead"):$CLUSTER_PORT"
    start_node "$id"
    wait_ready "$id"
    ctl "$id" members
}

cmd_remove() {
    local id="$1" via lead deadline
    check_id "$id"
    [ -f "$(node_dir "$id")/starling.conf" ] || die "no node $id"
    deadline=$((SECONDS + WAIT))
    while :; do
        via=""
        for v in $(node_ids); do
            [ "$v" != "$id" ] && running "$v" && via="$v" && break
        done
        [ -n "$via" ] || die "no other node is running to ask"
        lead="$(leader_seen_by "$via")"
        if [ -n "$lead" ] && ctl "$lead" remove "$id"; then
            break
        fi
        [ "$SECONDS" -ge "$deadline" ] && die "could not remove node $id within ${WAIT}s"
        sleep 0.5
    done
    touch "$(node_dir "$id")/removed"
    stop_nodes "$id"
    say "node $id removed and stopped (its data stays in $(node_dir "$id"))"
}

cmd_restart() {
    local id="$1"
    check_id "$id"
    [ -f "$(node_dir "$id")/starling.conf" ] || die "no node $id"
    stop_nodes "$id"
    start_node "$id"
    wait_ready "$id"
}

cmd_clean() {
    cmd_down
    rm -rf "$STATE"
    say "removed $STATE"
}

[ $# -ge 1 ] || usage
cmd="$1"
shift
case "$cmd" in
up) cmd_up "$@" ;;
status) cmd_status "$@" ;;
down) cmd_down ;;
join) [ $# -eq 1 ] || usage && cmd_join "$1" ;;
remove) [ $# -eq 1 ] || usage && cmd_remove "$1" ;;
restart) [ $# -eq 1 ] || usage && cmd_restart "$1" ;;
conf)
    [ $# -eq 1 ] || usage
    cat "$(node_dir "$1")/starling.conf"
    ;;
clean) cmd_clean ;;
-h | --help | help) usage ;;
*) usage ;;
esac
