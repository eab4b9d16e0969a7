#!/usr/bin/env bash
# Installs what is needed, builds Starling twice (release, and AddressSanitizer +
# UndefinedBehaviorSanitizer) and runs every ctest label on both builds, then runs each
# libFuzzer target for a short campaign, and checks the Helm chart. Usage: tools/test.sh [FUZZ_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_seconds="${1:-60}"
jobs="$(nproc)"

bash tools/install-deps.sh
ulimit -n 65536 2>/dev/null || true

run_suite() {
    local dir="$1"
    shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$dir" -j"$jobs"
    for label in unit fuzz integration cluster; do
        echo "== $dir: ctest -L $label"
        ctest --test-dir "$dir" -L "$label" --output-on-failure -j"$jobs" --no-tests=ignore
    done
}

cmake -S . -B build >/dev/null
cmake --build build --target format-check
run_suite build
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    run_suite build-asan -DSTARLING_SANITIZE=address,undefined

echo "== helm chart: lint, render, schema validation, structural tests"
STARLING_BIN="$PWD/build/bin/starling" bash tools/helm-test.sh

if [ "$fuzz_seconds" -gt 0 ]; then
    for target in $(tools/fuzz.sh --list); do
        tools/fuzz.sh "$target" "$fuzz_seconds"
    done
fi
echo "tools/test.sh: all suites passed"
