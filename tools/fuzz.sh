#!/bin/sh
# fuzz.sh - builds the libFuzzer harnesses (build-fuzz, clang, ASan+UBSan) if
# needed and runs each for SECONDS (default 60), or for N inputs with --runs N,
# from its committed seed corpus. Fails on any crash, leak, sanitizer report or
# timeout; prints execs, exec/s and wall time per harness.
#   tools/fuzz.sh [SECONDS | --runs N] [TARGET...]   e.g. tools/fuzz.sh 10 kserve image
#   tools/fuzz.sh --runs 10000000                     the long run of docs/reliability.md
# New corpus entries go to a scratch folder (FUZZ_WORK, default build-fuzz/corpus),
# never into tests/fuzz/corpus; crash inputs go to FUZZ_WORK/<target>/crash-*.
set -eu
cd "$(dirname "$0")/.."
limit="-max_total_time=${1:-60}"
if [ "${1:-}" = --runs ]; then
    limit="-runs=$2"
    shift 2
elif [ $# -gt 0 ]; then
    shift
fi
targets=${*:-safetensors tfjs config image multipart kserve grpc}
build=${FUZZ_BUILD:-build-fuzz}
work=${FUZZ_WORK:-$build/corpus}

if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" -Dfuzz=true -Dtests=false \
        -Db_sanitize=address,undefined -Db_lundef=false
fi
ninja -C "$build" >/dev/null

# UBSan reports fail the run like ASan's; leaks are on by default in libFuzzer.
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export OMP_NUM_THREADS=1
failed=0
for t in $targets; do
    bin="$build/tests/fuzz/fuzz_$t"
    mkdir -p "$work/$t"
    log="$work/$t.log"
    start=$(date +%s)
    if "$bin" "$limit" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/$t/crash-" \
        "$work/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
        failed=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    printf '%-12s %-6s execs %-10s exec/s %-7s %5ss  %s\n' "$t" "$result" "${execs:-?}" \
        "${rate:-?}" "$(($(date +%s) - start))" "$cov"
    if [ "$result" = FAILED ]; then
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -n 8 || true
        echo "  full log: $log"
    fi
done
exit $failed
