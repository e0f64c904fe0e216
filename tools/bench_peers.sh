#!/bin/sh
# bench_peers.sh - resnetd and its FastAPI + PyTorch peer (tools/peer_fastapi.py)
# side by side: a benchmark, not a test. Starts every server once, on its own
# loopback port, then for each client count runs wrk against each server in
# turn (interleaved, so that a slow minute on the shared machine hits all of
# them), POSTing the same photos in rotation to /classify. Prints per row:
# img/s, p50 ms, and images per server CPU-second (utime + stime of the server
# process from /proc/PID/stat, all its threads, before and after the row).
#
#   tools/bench_peers.sh [--model FILE] [--bin build/server/resnetd] [--duration 12s]
#                        [--clients "1 4 16"] [--photos "A.jpg B.jpg ..."]
#                        [--int8 CALIBRATED.safetensors | --calibrate DIR]
#                        [--no-bf16]
# Servers: resnetd FP32; resnetd INT8 (recheck on, default 3.0, and off) when a
# calibrated model is given or made (--calibrate DIR runs `resnetd calibrate
# --count 16` on DIR first, ~30 s); the peer FP32 and, unless --no-bf16, BF16
# autocast. About 4 min with the defaults and no INT8.
# GOMP_SPINCOUNT defaults to 10000 for every server (resnetd's deployments set
# it; PyTorch uses the same libgomp): with the default spin-wait, idle OpenMP
# threads burn the cores the others need (docs/performance.md, "OpenMP spinning").
# Needs wrk, curl and the packages of tools/peer_fastapi.py (install_deps.sh).
# wrk runs on the same cores (1 thread for 1 client, 2 otherwise): its CPU is
# not in the server's CPU time, but it competes with the server for the cores.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench_common.sh"
model=models/resnet50.safetensors
bin=build/server/resnetd
duration=12s
clients="1 4 16"
int8=
calib_dir=
bf16=1
photos="/usr/share/darknet/data/dog.jpg /usr/share/darknet/data/eagle.jpg /usr/share/darknet/data/giraffe.jpg /usr/share/darknet/data/horses.jpg /usr/share/darknet/data/kite.jpg /usr/share/darknet/data/person.jpg /usr/share/darknet/data/scream.jpg"
while [ $# -gt 0 ]; do
    case "$1" in
    --model) model=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --photos) photos=$2; shift 2 ;;
    --int8) int8=$2; shift 2 ;;
    --calibrate) calib_dir=$2; shift 2 ;;
    --no-bf16) bf16=; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "bench_peers.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
for tool in wrk curl /usr/bin/python3; do
    command -v "$tool" >/dev/null || { echo "bench_peers.sh: $tool not found (tools/install_deps.sh)" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "bench_peers.sh: $bin not built" >&2; exit 1; }
[ -r "$model" ] || { echo "bench_peers.sh: model $model missing (tools/fetch_model.sh)" >&2; exit 1; }

work=$(mktemp -d)
pids=
cleanup() {
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ -n "$calib_dir" ]; then
    int8="$work/int8.safetensors"
    "$bin" calibrate --model "$model" --images "$calib_dir" --count 16 --out "$int8" >/dev/null 2>"$work/calibrate.log" ||
        { cat "$work/calibrate.log" >&2; exit 1; }
fi

wrk_rotation_lua "$work/post.lua"
cat >>"$work/post.lua" <<'LUA'
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT %d %.6f %.2f %d\n", summary.requests, summary.duration / 1e6,
        latency:percentile(50) / 1e3, e.connect + e.read + e.write + e.status + e.timeout))
end
LUA
export LOAD_PHOTOS="$photos"
export GOMP_SPINCOUNT="${GOMP_SPINCOUNT:-10000}"

free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start NAME PORT COMMAND...: runs the server, waits for /healthz (up to 3 min).
names=
start() {
    name=$1 port=$2; shift 2
    "$@" >"$work/$name.log" 2>&1 &
    pid=$!
    pids="$pids $pid"
    for _ in $(seq 1 1800); do
        curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || { cat "$work/$name.log" >&2; exit 1; }
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { echo "bench_peers.sh: $name did not start" >&2; exit 1; }
    wrk -t 1 -c 1 -d 3s -s "$work/post.lua" "http://127.0.0.1:$port" >/dev/null 2>&1 || true # warm-up
    eval "pid_$name=$pid port_$name=$port"
    names="$names $name"
}

p=$(free_port); start resnetd_fp32 "$p" "$bin" serve --model "$model" --port "$p" --access-log false
if [ -n "$int8" ]; then
    p=$(free_port); start resnetd_int8 "$p" "$bin" serve --model "$int8" --port "$p" --access-log false --precision int8
    p=$(free_port); start resnetd_int8_norecheck "$p" "$bin" serve --model "$int8" --port "$p" --access-log false --precision int8 --int8-recheck 0
fi
p=$(free_port); start torch_fp32 "$p" /usr/bin/python3 "$here/peer_fastapi.py" --model "$model" --port "$p"
if [ -n "$bf16" ]; then
    p=$(free_port); start torch_bf16 "$p" /usr/bin/python3 "$here/peer_fastapi.py" --model "$model" --port "$p" --bf16
fi

cpu_ticks() { # utime + stime of a process, in clock ticks
    stat_ticks "/proc/$1/stat"
}
hz=$(getconf CLK_TCK)

echo "model: $model; wrk $duration per row; photos: $(echo $photos | wc -w) in rotation; $(nproc) cores; GOMP_SPINCOUNT=$GOMP_SPINCOUNT; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "isa: $(grep -o 'amx[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')${ONEDNN_MAX_CPU_ISA:+(ONEDNN_MAX_CPU_ISA=$ONEDNN_MAX_CPU_ISA)}"
echo
echo "| server | clients | img/s | p50 ms | img per server CPU-s | server CPU ms/img | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for c in $clients; do
    t=2; [ "$c" -lt 2 ] && t=1
    for name in $names; do
        eval "pid=\$pid_$name port=\$port_$name"
        c0=$(cpu_ticks "$pid")
        line=$(wrk -t "$t" -c "$c" -d "$duration" --timeout 30s -s "$work/post.lua" "http://127.0.0.1:$port" | grep '^RESULT')
        c1=$(cpu_ticks "$pid")
        echo "$line" | awk -v n="$name" -v c="$c" -v t0="$c0" -v t1="$c1" -v hz="$hz" '{
            cpu = (t1 - t0) / hz
            per_s = "-"; ms = "-"
            if (cpu > 0) per_s = sprintf("%.1f", $2 / cpu)
            if ($2 > 0) ms = sprintf("%.1f", 1000 * cpu / $2)
            printf "| %s | %s | %.1f | %.1f | %s | %s | %d |\n", n, c, $2 / $3, $4, per_s, ms, $5 }'
    done
done
