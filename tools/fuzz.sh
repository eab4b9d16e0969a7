#!/usr/bin/env bash
# Builds a libFuzzer target with clang (ASan + UBSan) into build-fuzz/ and runs a campaign.
#
#   tools/fuzz.sh --list                  target names, one per line
#   tools/fuzz.sh TARGET SECONDS [--merge] campaign seeded from tests/fuzz/corpus/TARGET/;
#                                          new inputs go to tests/fuzz/scratch/TARGET/
#                                          (git-ignored), crashes to tests/fuzz/scratch/TARGET-crashes/;
#                                          --merge then merges the interesting new inputs into
#                                          the corpus (-merge=1)
#   tools/fuzz.sh --merge TARGET          merge the scratch dir into the corpus only
#
# Prints executions and coverage; exits non-zero if the target crashed.
#
# A target is tests/fuzz/fuzz_<name>.c (defining LLVMFuzzerTestOneInput) plus one row below:
# the sources compiled with it (globs, relative to the repository) and extra compiler/linker
# flags (include dirs, pkg-config libraries). The main CMake build replays the same target's
# corpus with gcc under `ctest -L fuzz` (tests/fuzz/CMakeLists.txt).
set -euo pipefail
shopt -s extglob
cd "$(dirname "$0")/.."

declare -A SOURCES=(
    [parse]="proto/*.c"
    [command]="cluster/command.c proto/*.c"
    [config]=""
    [session]="broker/!(main).c cluster/*.c storage/*.c proto/*.c"
)
declare -A FLAGS=(
    [parse]="-Iproto/include -Iproto"
    [command]="-Icluster/include -Icluster -Istorage/include -Iproto/include"
    [config]="-Ibroker/include -Ibroker -Icluster/include -Istorage/include -Iproto/include"
    [session]="-DSTARLING_VERSION=\"fuzz\" -Ibroker/include -Ibroker -Icluster/include -Icluster -Istorage/include -Istorage
               -Iproto/include -Iproto $(pkg-config --cflags --libs libuv raft wolfssl lmdb libxxhash)
               -lwslay -lhttp_parser -lpthread"
)

usage() {
    sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

list_targets() {
    local t
    for t in "${!SOURCES[@]}"; do
        [ -f "tests/fuzz/fuzz_$t.c" ] && echo "$t"
    done | sort
}

build_target() {
    local t="$1"
    mkdir -p build-fuzz
    # shellcheck disable=SC2086 # globs and flag lists are meant to split
    clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
        ${FLAGS[$t]} "tests/fuzz/fuzz_$t.c" ${SOURCES[$t]} -o "build-fuzz/fuzz_$t"
}

merge_target() {
    local t="$1"
    local scratch="tests/fuzz/scratch/$t"
    [ -d "$scratch" ] || { echo "fuzz.sh: nothing to merge in $scratch" >&2; return 0; }
    local before after
    before=$(find "tests/fuzz/corpus/$t" -type f | wc -l)
    "build-fuzz/fuzz_$t" -merge=1 "tests/fuzz/corpus/$t" "$scratch" >"$scratch.merge.log" 2>&1
    after=$(find "tests/fuzz/corpus/$t" -type f | wc -l)
    echo "fuzz.sh: $t: merged $((after - before)) new inputs into tests/fuzz/corpus/$t ($after files)"
}

# The whole run is one function, read before it starts: editing this file during a campaign
# cannot derail the running script.
main() {
    merge=0
    args=()
    for a in "$@"; do
        case "$a" in
        --list) list_targets; exit 0 ;;
        --merge) merge=1 ;;
        -h | --help) usage ;;
        *) args+=("$a") ;;
        esac
    done

    target="${args[0]:-}"
    [ -n "$target" ] || usage
    if [ -z "${SOURCES[$target]+x}" ] || [ ! -f "tests/fuzz/fuzz_$target.c" ]; then
        echo "fuzz.sh: unknown target '$target' (see --list)" >&2
        exit 2
    fi

    build_target "$target"

    if [ "${#args[@]}" -lt 2 ]; then
        [ "$merge" = 1 ] || usage
        merge_target "$target"
        exit 0
    fi
    seconds="${args[1]}"

    scratch="tests/fuzz/scratch/$target"
    crashes="tests/fuzz/scratch/$target-crashes"
    log="tests/fuzz/scratch/$target.log"
    # Crashes of an earlier campaign were reported then; this one starts with none.
    rm -rf "$crashes"
    mkdir -p "$scratch" "$crashes" "tests/fuzz/corpus/$target"

    status=0
    "build-fuzz/fuzz_$target" "$scratch" "tests/fuzz/corpus/$target" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 -artifact_prefix="$crashes/" >"$log" 2>&1 || status=$?

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n1 || true)
    corpus=$(grep -Eo 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -n1 || true)
    found=$(find "$crashes" -type f | wc -l)
    echo "fuzz.sh: $target: ${seconds}s, executions ${execs:-?}, ${cov:-cov: ?}, ${corpus:-corp: ?}, crashes $found (log $log)"

    if [ "$status" -ne 0 ] || [ "$found" -gt 0 ]; then
        echo "fuzz.sh: $target: CRASH (exit $status); inputs in $crashes:" >&2
        find "$crashes" -type f >&2
        grep -E -m5 'ERROR|SUMMARY|check failed|runtime error' "$log" >&2 || true
        exit 1
    fi
    if [ "$merge" = 1 ]; then
        merge_target "$target"
    fi
}

main "$@"
