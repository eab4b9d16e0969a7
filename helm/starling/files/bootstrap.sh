#!/bin/sh
# Writes this pod's starling.conf: the node-specific directives derived from the pod's ordinal,
# followed by the configuration shared by every pod.
#   node_id            ordinal + 1 (stable for the life of the pod's data dir)
#   cluster_advertise  the pod's stable DNS name and the cluster port
#   cluster_peers      for ordinals below STARLING_INITIAL_MEMBERS: the static initial member
#                      list, identical in every pod (peers.conf)
#   cluster_join       for higher ordinals: the headless Service, any member (join.conf)
# The broker bootstraps from cluster_peers only with a pristine data dir; an existing data dir
# keeps its Raft configuration, so restarting a pod never changes the membership.
#
# Usage: bootstrap.sh SRC_DIR OUT_FILE
# Environment: POD_NAME (<statefulset>-<ordinal>), STARLING_STATEFULSET, STARLING_INITIAL_MEMBERS,
# STARLING_PEER_DOMAIN (<headless service>.<namespace>.svc.<cluster domain>),
# STARLING_CLUSTER_PORT.
set -eu

src="${1:?usage: bootstrap.sh SRC_DIR OUT_FILE}"
out="${2:?usage: bootstrap.sh SRC_DIR OUT_FILE}"
pod="${POD_NAME:?POD_NAME is not set}"
sts="${STARLING_STATEFULSET:?STARLING_STATEFULSET is not set}"
initial="${STARLING_INITIAL_MEMBERS:?STARLING_INITIAL_MEMBERS is not set}"
domain="${STARLING_PEER_DOMAIN:?STARLING_PEER_DOMAIN is not set}"
port="${STARLING_CLUSTER_PORT:?STARLING_CLUSTER_PORT is not set}"

ordinal="${pod#"$sts"-}"
case "$ordinal" in
"$pod" | "" | *[!0-9]* | 0?*)
    echo "bootstrap: pod name '$pod' is not $sts-<ordinal>" >&2
    exit 1
    ;;
esac
case "$initial" in
"" | *[!0-9]* | 0*)
    echo "bootstrap: STARLING_INITIAL_MEMBERS='$initial' is not a positive integer" >&2
    exit 1
    ;;
esac

node_id=$((ordinal + 1))
tmp="$out.tmp.$$"
{
    echo "# Written by bootstrap.sh for pod $pod (ordinal $ordinal)."
    echo "node_id $node_id"
    echo "cluster_advertise $pod.$domain:$port"
    if [ "$ordinal" -lt "$initial" ]; then
        cat "$src/peers.conf"
    else
        cat "$src/join.conf"
    fi
    echo
    cat "$src/starling.conf"
} >"$tmp"
mv "$tmp" "$out"
echo "bootstrap: $pod: node_id $node_id, $([ "$ordinal" -lt "$initial" ] && echo "initial member" || echo "joins the cluster")"
