#!/usr/bin/env bash
# Randomized fault schedules against a local cluster under client load (tests/lib/chaos.py).
#   tools/chaos.sh --schedules 100 --seed 42 [--nodes 5] [--save /tmp/chaos]
# The broker is $STARLING_BIN, default build/bin/starling. Prints the seeds; exit 1 when a
# schedule breaks a guarantee. --help lists every option.
set -euo pipefail
cd "$(dirname "$0")/.."
export STARLING_BIN="${STARLING_BIN:-$PWD/build/bin/starling}"
if [ ! -x "$STARLING_BIN" ] && [[ " $* " != *" --help "* && " $* " != *" -h "* ]]; then
    echo "chaos.sh: no broker binary at $STARLING_BIN (build first or set STARLING_BIN)" >&2
    exit 2
fi
exec /usr/bin/python3 tests/lib/chaos.py "$@"
