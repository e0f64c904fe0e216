#!/bin/sh
# load_test.sh - server throughput and latency under load: a benchmark, not a test.
# Starts `resnetd serve` on a free loopback port, POSTs real JPEGs (the darknet
# photos, in rotation) to /classify with wrk at each concurrency, and prints a
# markdown table of img/s, p50/p95/p99 latency and the mean batch size the
# server used (from /metrics), next to `resnetd bench` engine figures for the
# same model at batch 1 and at the batch sizes the server ended up using.
# Per row it also measures the server's cost: images per server CPU-second
# (utime + stime of every server thread from /proc/PID/task/*/stat, before and
# after the row), and the parts per image that the server counts itself
# (resnetd_cpu_seconds_total{part}, thread CPU clocks): decode + preprocess on
# the decode pool, inference (each image's share of its batch's OpenMP team
# CPU), the HTTP threads' callbacks, and the server CPU in neither decode nor
# inference (all threads' CPU minus those two: HTTP work, idle spinning,
# wake-ups, the sweeper). Wall ms per image from /metrics: decode + preprocess,
# inference (batch wall ms / images) and queue wait. bench_decode's decode +
# preprocess of the same photos (thread CPU, best of 20, run after the load) is
# printed as the reference for the decode part; the engine table gives the
# engine's own core-ms per image at the same batch sizes, the reference for
# the inference part. On a busy machine wall times exceed CPU times: compare
# rows of one run.
#
# Needs wrk (Debian package). Uses 2 wrk threads (the machine is small; wrk's own
# CPU use is part of what the server competes with, so say so with the figures).
set -eu
. "$(dirname "$0")/bench_common.sh"

model=models/resnet50.safetensors
bin=build/server/resnetd
duration=20s
concurrency="1 4 16 64"
bench_seconds=10
precision=fp32
photos="/usr/share/darknet/data/dog.jpg /usr/share/darknet/data/eagle.jpg /usr/share/darknet/data/giraffe.jpg /usr/share/darknet/data/horses.jpg /usr/share/darknet/data/kite.jpg /usr/share/darknet/data/person.jpg /usr/share/darknet/data/scream.jpg"
while [ $# -gt 0 ]; do
    case "$1" in
    --model) model=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --bench-seconds) bench_seconds=$2; shift 2 ;;
    --photos) photos=$2; shift 2 ;;
    --precision) precision=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "load_test.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
command -v wrk >/dev/null || { echo "load_test.sh: wrk not found (apt-get install wrk)" >&2; exit 1; }
[ -x "$bin" ] || { echo "load_test.sh: $bin not built" >&2; exit 1; }
[ -r "$model" ] || { echo "load_test.sh: model $model missing (tools/fetch_model.sh)" >&2; exit 1; }

work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# wrk script: rotate the photos, report the figures at the end.
wrk_rotation_lua "$work/post.lua"
cat >>"$work/post.lua" <<'LUA'
done = function(summary, latency, requests)
    local s = summary.duration / 1e6
    local e = summary.errors
    io.write(string.format("RESULT %.2f %.2f %.2f %.2f %d %d\n", summary.requests / s,
        latency:percentile(50) / 1e3, latency:percentile(95) / 1e3, latency:percentile(99) / 1e3,
        summary.requests, e.connect + e.read + e.write + e.status + e.timeout))
end
LUA

"$bin" serve --model "$model" --port 0 --access-log false --precision "$precision" "$@" 2>"$work/server.log" &
server_pid=$!
port=
for _ in $(seq 1 600); do
    port=$(sed -n 's/.*listening on [^"]*:\([0-9][0-9]*\)".*/\1/p' "$work/server.log" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$port" ] || { echo "load_test.sh: server did not start" >&2; exit 1; }
url="http://127.0.0.1:$port"

metric() { # name -> value from /metrics
    curl -s "$url/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}
snapshot() { # the counters one row needs, on one line (10 values)
    curl -s "$url/metrics" | awk '
        { v[$1] = $2 }
        END { printf "%s %s %s %s %s %s %s %s %s %s\n", v["resnetd_images_classified_total"] + 0,
              v["resnetd_decode_duration_seconds_sum"] + 0, v["resnetd_decode_duration_seconds_count"] + 0,
              v["resnetd_queue_duration_seconds_sum"] + 0, v["resnetd_queue_duration_seconds_count"] + 0,
              v["resnetd_inference_duration_seconds_sum"] + 0, v["resnetd_batch_size_count"] + 0,
              v["resnetd_cpu_seconds_total{part=\"http\"}"] + 0,
              v["resnetd_cpu_seconds_total{part=\"decode\"}"] + 0,
              v["resnetd_cpu_seconds_total{part=\"inference\"}"] + 0 }'
}
cpu_ticks() { # utime + stime (fields 14, 15) of every server thread
    for t in /proc/"$server_pid"/task/*; do
        stat_ticks "$t/stat"
    done | awk '{ s += $NF } END { printf "%d\n", s }'
}
hz=$(getconf CLK_TCK)
threads=$(nproc) # inference threads: one per core unless the serve options say otherwise
prev=
for a in "$@"; do
    [ "$prev" = --inference-threads ] && [ "$a" -gt 0 ] 2>/dev/null && threads=$a
    prev=$a
done

echo "model: $model; server options: ${*:-(defaults)}; wrk: 2 threads, $duration per row"
echo
echo "| clients | img/s | p50 ms | p95 ms | p99 ms | requests | errors | mean batch |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
batches=""
export LOAD_PHOTOS="$photos"
wrk -t 1 -c 1 -d 3s -s "$work/post.lua" "$url" >/dev/null 2>&1 || true # warm-up (plans)
for c in $concurrency; do
    t=2; [ "$c" -lt 2 ] && t=1
    s0=$(metric resnetd_batch_size_sum); n0=$(metric resnetd_batch_size_count)
    m0=$(snapshot); c0=$(cpu_ticks)
    line=$(wrk -t "$t" -c "$c" -d "$duration" --timeout 30s -s "$work/post.lua" "$url" | grep '^RESULT')
    c1=$(cpu_ticks); m1=$(snapshot)
    s1=$(metric resnetd_batch_size_sum); n1=$(metric resnetd_batch_size_count)
    echo "$c $m0 $m1 $c0 $c1" >>"$work/costs"
    mean=$(awk -v a="$s0" -v b="$s1" -v x="$n0" -v y="$n1" 'BEGIN { if (y > x) printf "%.2f", (b - a) / (y - x); else print "-" }')
    echo "$line" | awk -v c="$c" -v m="$mean" '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", c, $2, $3, $4, $5, $6, $7, m }'
    batches="$batches $(awk -v m="$mean" 'BEGIN { if (m == "-") print 1; else printf "%d", m + 0.5 }')"
done
# Decode + preprocess of the same photos, thread CPU time, best of 20
# (tools/bench_decode.c; Resize 256 + CenterCrop 224), as the baseline the
# HTTP threads' CPU is set against.
pre=-
bench_decode="$(dirname "$bin")/bench_decode"
if [ -x "$bench_decode" ]; then
    # shellcheck disable=SC2086
    pre=$("$bench_decode" --cpu 1 $photos | awk -F'|' 'NR > 2 { s += $8; n++ } END { if (n) printf "%.2f", s / n; else print "-" }')
fi
echo
echo "Server cost per image: server CPU = every server thread from /proc/$server_pid/task/*/stat;"
echo "decode, inference and HTTP CPU are the server's own counts (resnetd_cpu_seconds_total{part});"
echo "other = server CPU - decode - inference (HTTP work, spinning, wake-ups); bench_decode's decode +"
echo "preprocess of the same photos: $pre thread CPU ms/img. Wall times from /metrics."
echo
echo "| clients | img per server CPU-s | server CPU ms/img | decode CPU ms/img | inference CPU ms/img | other CPU ms/img | of which HTTP threads | decode wall ms/img | inference wall ms/img | queue ms/img |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -v hz="$hz" '{
    c = $1; n = $12 - $2; cpu = ($23 - $22) / hz
    if (n <= 0 || cpu <= 0) { printf "| %s | - | - | - | - | - | - | - | - | - |\n", c; next }
    dec = 1000 * ($13 - $3) / ($14 - $4); q = 1000 * ($15 - $5) / ($16 - $6)
    inf = 1000 * ($17 - $7) / n; ms = 1000 * cpu / n
    http = 1000 * ($19 - $9) / n; dcpu = 1000 * ($20 - $10) / n; icpu = 1000 * ($21 - $11) / n
    printf "| %s | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", c, n / cpu, ms,
        dcpu, icpu, ms - dcpu - icpu, http, dec, inf, q }' "$work/costs"
if [ "$precision" = int8 ]; then
    echo
    echo "Rechecked in FP32 (int8_recheck): $(metric resnetd_int8_rechecked_total) of $(metric resnetd_images_classified_total) images"
fi
kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=

echo
echo "Engine only (\`resnetd bench\`, same model, same machine, right after):"
echo
echo "| batch | img/s | ms/batch (median) | core-ms/img ($threads threads) |"
echo "|---:|---:|---:|---:|"
for b in $(echo 1 $batches | tr ' ' '\n' | sort -n | uniq); do
    "$bin" bench --model "$model" --precision "$precision" --int8-recheck 0 --batch "$b" --seconds "$bench_seconds" |
        awk -v b="$b" -v th="$threads" '{
            ips = $0; sub(/.*"images_per_second": */, "", ips); sub(/[,}].*/, "", ips)
            ms = $0; sub(/.*"ms_per_batch": */, "", ms); sub(/[,}].*/, "", ms)
            printf "| %s | %.2f | %.2f | %.2f |\n", b, ips, ms, ms * th / b }'
done
