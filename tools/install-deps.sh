#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and running Starling needs.
# Idempotent: quiet when everything is already present.
set -euo pipefail

PACKAGES=(
    # build
    build-essential cmake pkg-config clang-format
    libuv1-dev libraft-dev libwolfssl-dev liblmdb-dev libxxhash-dev
    libwslay-dev libhttp-parser-dev
    # tests
    libcmocka-dev clang libclang-rt-14-dev
    python3 python3-pytest python3-paho-mqtt python3-yaml python3-prometheus-client
    mosquitto mosquitto-clients
    openssl lmdb-utils procps iproute2 gnuplot-nox curl
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root)" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
