#!/usr/bin/env bash
# hostile_figures.sh - the figures of docs/reliability.md's "Hostile load"
# section for one resnetd binary (run it for the old and the new one, one after
# the other): what the crafted scan-heavy JPEGs of test_hostile_load.py cost
# (status, time, peak RSS growth), /readyz and a normal /classify while two
# requests of 4 of them run, and a 32-image request of accepted but slow JPEGs
# whose client leaves after 1 s, or that SIGTERM interrupts (drain_timeout_s 3).
#
#   tools/hostile_figures.sh RESNETD_BIN [MODEL]   (MODEL: models/resnet50.safetensors)
#
# Needs curl, jpegtran and /usr/bin/python3 with PIL; loopback only. Prints
# figures, asserts nothing.
set -euo pipefail
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
model=${2:-$here/../models/resnet50.safetensors}
dir=$(mktemp -d /tmp/resnetd-hostile-figures.XXXXXX)
log=$dir/server.log
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"' EXIT

/usr/bin/python3 "$here/../tests/integration/test_hostile_load.py" --make "$dir"
/usr/bin/python3 -c "from PIL import Image; Image.new('RGB', (6000, 6000), (120, 130, 140)).save('$dir/flat.jpg', quality=90, subsampling=0)"
# a standard progressive file (10 scans), arithmetic-coded: accepted, ~0.5 s to decode
jpegtran -progressive -arithmetic -outfile "$dir/prog.jpg" "$dir/flat.jpg"

start() {
    : >"$log"
    "$bin" serve --port 0 --http-threads 2 --drain-timeout-s 3 --model "$model" 2>"$log" &
    pid=$!
    for _ in $(seq 600); do grep -q "ready: listening" "$log" && break; sleep 0.1; done
    port=$(grep -o 'ready: listening on [0-9.]*:[0-9]*' "$log" | grep -o '[0-9]*$')
}
stop() { kill -TERM "$pid"; wait "$pid" || true; pid=; }
hwm() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status"; }
post() { curl -s -o /dev/null -m 120 -w "$1 %{http_code} in %{time_total} s" "${@:2}"; }

start
post warm --data-binary @/usr/share/darknet/data/dog.jpg -H 'Content-Type: image/jpeg' \
    "localhost:$port/classify" >/dev/null
for f in arith-ycc-481 huff-ycc-481 arith-cmyk-481 huff-ycc-61; do
    h0=$(hwm)
    post "$f:" --data-binary "@$dir/$f.jpg" -H 'Content-Type: image/jpeg' "localhost:$port/classify"
    echo ", peak RSS $h0 -> $(hwm) MB"
done
four=()
for _ in 1 2 3 4; do four+=(-F "img=@$dir/arith-ycc-481.jpg;type=image/jpeg"); done
{ post "4 x arith-ycc-481 (1):" "${four[@]}" "localhost:$port/classify"; echo; } & b1=$!
sleep 1
{ post "4 x arith-ycc-481 (2):" "${four[@]}" "localhost:$port/classify"; echo; } & b2=$!
sleep 0.5
post "/readyz meanwhile:" "localhost:$port/readyz"; echo
post "/classify dog.jpg meanwhile:" --data-binary @/usr/share/darknet/data/dog.jpg \
    -H 'Content-Type: image/jpeg' "localhost:$port/classify"; echo
wait "$b1" "$b2" || true
stop

many=()
for i in $(seq 32); do many+=(-F "img$i=@$dir/prog.jpg;type=image/jpeg"); done
start
curl -s -o /dev/null -m 1 "${many[@]}" "localhost:$port/classify" || true
sleep 30
echo "client left after 1 s: logged $(grep '"path":"/classify"' "$log" |
    grep -o '"status":[0-9]*\|"total_ms":[0-9.]*' | tr '\n' ' ')"
stop
start
curl -s -o /dev/null -m 120 "${many[@]}" "localhost:$port/classify" & c=$!
sleep 1
t0=$(date +%s%N)
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
echo "SIGTERM 1 s into it (drain_timeout_s 3): exit $rc after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
wait "$c" || true
