#!/usr/bin/env bash
# bench_decode_ab.sh - two builds' decode + preprocess as served, interleaved
# (a benchmark, not a test): for each round, each binary's tools/bench_decode
# over every .jpg of DIR (--cpu 1: thread CPU time, best of --runs), summed.
#   tools/bench_decode_ab.sh BEFORE/bench_decode AFTER/bench_decode DIR [ROUNDS] [RUNS]
# Build the baseline from another worktree (git worktree add /tmp/base REV;
# meson setup /tmp/base/build /tmp/base && ninja -C /tmp/base/build server/bench_decode).
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,7p' "$0"; exit 2; }
before=$1 after=$2 dir=$3 rounds=${4:-2} runs=${5:-3}
files=("$dir"/*.jpg)
for r in $(seq "$rounds"); do
    for b in "$before" "$after"; do
        "$b" --cpu 1 --runs "$runs" "${files[@]}" 2>/dev/null |
            awk -F'|' -v b="$b" -v r="$r" 'NR > 2 { s += $8; n++ }
                END { printf "round %d %s: %d files, pipeline total %.1f ms\n", r, b, n, s }'
    done
done
