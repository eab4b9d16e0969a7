#!/usr/bin/env bash
# Installs what is needed, builds Starling and starts one node in the foreground.
# Usage: tools/run.sh [starling options...]   (e.g. -c /etc/starling/starling.conf, -p 1883, -v)
# With no options the node listens on 127.0.0.1 and ::1 port 1883 with anonymous access and
# keeps its data in ./starling-data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/bin/starling "$@"
