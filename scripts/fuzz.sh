#!/usr/bin/env bash
# fuzz.sh -- run the libFuzzer harnesses of tests/fuzz (built in build-fuzz), two at a time.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]    default: 300 s each, every target
#
# Each harness first runs the inputs of tests/fuzz/regressions/<target>/ once (inputs that
# crashed it before a fix: they must pass), then fuzzes for SECONDS from a copy of its seed
# corpus tests/fuzz/corpus/<target>/ (so the committed seeds do not grow), with the dictionary
# tests/fuzz/<target>.dict when there is one. What it finds (crash-*, leak-*, timeout-*, oom-*)
# lands in build-fuzz/fuzz/<target>/, with the log; the run fails if anything was found. Called
# by `make test` (20 s each) and `make fuzz` (FUZZ_SECONDS).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(http params json_pointer merge_patch arrow spec journal
                                     s3_list credentials)
out="build-fuzz/fuzz"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# One target: regressions, then fuzzing. Prints one line; exit status 1 if anything was found.
run_one() {
    local target=$1 seconds=$2 out=$3
    local program="build-fuzz/tests/fuzz/fuzz_$target" dir="$out/$target"
    rm -rf "$dir"
    mkdir -p "$dir/corpus"
    local log="$dir/log"
    if [ ! -x "$program" ]; then
        echo "fuzz $target: $program is missing (make build-fuzz)"
        return 1
    fi
    local regressions=(tests/fuzz/regressions/"$target"/*)
    if [ -e "${regressions[0]}" ] &&
        ! "$program" -rss_limit_mb=2048 "${regressions[@]}" >"$dir/regressions.log" 2>&1; then
        echo "fuzz $target: a regression input fails again (see $dir/regressions.log)"
        tail -20 "$dir/regressions.log"
        return 1
    fi
    cp tests/fuzz/corpus/"$target"/* "$dir/corpus/"
    local dict=()
    [ -f "tests/fuzz/$target.dict" ] && dict=("-dict=tests/fuzz/$target.dict")
    local status=0
    "$program" "$dir/corpus" "${dict[@]}" -max_total_time="$seconds" -rss_limit_mb=2048 \
        -timeout=30 -artifact_prefix="$dir/" -print_final_stats=1 >"$log" 2>&1 || status=$?
    local stats
    stats=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | awk '{print $1, $3, $4, $5, $6}')
    local found
    found=$(find "$dir" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'leak-*' \
                 -o -maxdepth 1 -name 'timeout-*' -o -maxdepth 1 -name 'oom-*' | head -5)
    if [ $status -ne 0 ] || [ -n "$found" ]; then
        echo "fuzz $target: FOUND (exit $status) ${found:-} -- log: $log"
        grep -E 'ERROR|SUMMARY|runtime error' "$log" | head -5
        return 1
    fi
    echo "fuzz $target: ok ${seconds}s ${stats#\#} (runs, cov, ft, corpus)"
}
export -f run_one

start=$(date +%s)
status=0
printf '%s\n' "${targets[@]}" | xargs -P 2 -I{} bash -c 'run_one "$@"' _ {} "$seconds" "$out" ||
    status=1
echo "fuzz: ${#targets[@]} targets in $(( $(date +%s) - start )) s"
exit $status
