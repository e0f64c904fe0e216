#!/bin/sh
# bench_multi_image.sh - one request of N images (N copies of a photo, one
# multipart/form-data body) against two resnetd binaries, interleaved: a
# benchmark, not a test. Both servers run side by side on loopback with the
# same model and options; each round sends the request to A, then to B (then
# B, A in the next round, so neither always goes first), and the script prints
# each one's median and best wall time and the ratio A / B of the medians.
#
#   tools/bench_multi_image.sh --a OLD_BIN --b NEW_BIN [--model M] [--photo JPEG]
#                              [--images N] [--rounds R] [-- SERVE_OPTIONS...]
#
# Used for issue 17's "a 32-image request >= 1.7x faster" (docs/performance.md):
# A = the build before the decode pool, B = this one.
set -eu

a=
b=build/server/resnetd
model=models/resnet50.safetensors
photo=/usr/share/darknet/data/dog.jpg
images=32
rounds=10
while [ $# -gt 0 ]; do
    case "$1" in
    --a) a=$2; shift 2 ;;
    --b) b=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --photo) photo=$2; shift 2 ;;
    --images) images=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "bench_multi_image.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -x "$a" ] && [ -x "$b" ] || { echo "bench_multi_image.sh: --a and --b must be binaries" >&2; exit 2; }

work=$(mktemp -d)
pids=
cleanup() {
    for p in $pids; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

boundary=resnetdbench9f3
{
    i=0
    while [ "$i" -lt "$images" ]; do
        printf -- '--%s\r\nContent-Disposition: form-data; name="image"; filename="%d.jpg"\r\nContent-Type: image/jpeg\r\n\r\n' "$boundary" "$i"
        cat "$photo"
        printf '\r\n'
        i=$((i + 1))
    done
    printf -- '--%s--\r\n' "$boundary"
} >"$work/body"

for side in a b; do
    eval "bin=\$$side"
    GOMP_SPINCOUNT=10000 "$bin" serve --model "$model" --port 0 --access-log false "$@" \
        2>"$work/$side.log" &
    pids="$pids $!"
done
port_of() {
    for _ in $(seq 1 900); do
        p=$(sed -n 's/.*ready: listening on [^"]*:\([0-9][0-9]*\)".*/\1/p' "$work/$1.log" | head -n 1)
        if [ -n "$p" ]; then echo "$p"; return; fi
        sleep 0.1
    done
    echo "bench_multi_image.sh: server $1 did not become ready" >&2
    cat "$work/$1.log" >&2
    exit 1
}
pa=$(port_of a)
pb=$(port_of b)
post() { # PORT -> seconds
    curl -s -o "$work/answer" -w '%{time_total}\n' -H "Content-Type: multipart/form-data; boundary=$boundary" \
        --data-binary @"$work/body" "http://127.0.0.1:$1/classify"
    grep -q '"error"' "$work/answer" && { echo "bench_multi_image.sh: an image failed:" >&2; head -c 300 "$work/answer" >&2; exit 1; }
    return 0
}
post "$pa" >/dev/null; post "$pb" >/dev/null # warm-up
r=0
while [ "$r" -lt "$rounds" ]; do
    if [ $((r % 2)) -eq 0 ]; then
        echo "a $(post "$pa")" >>"$work/times"; echo "b $(post "$pb")" >>"$work/times"
    else
        echo "b $(post "$pb")" >>"$work/times"; echo "a $(post "$pa")" >>"$work/times"
    fi
    r=$((r + 1))
done
stats() { # side -> "median best"
    awk -v s="$1" '$1 == s { print $2 }' "$work/times" | sort -n |
        awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f %.3f", m, v[1] }'
}
sa=$(stats a)
sb=$(stats b)
echo "$images x $(basename "$photo") in one multipart request, $rounds rounds interleaved; serve options: ${*:-(defaults)}"
echo
echo "| binary | median s | best s |"
echo "|---|---:|---:|"
echo "| A $a | ${sa% *} | ${sa#* } |"
echo "| B $b | ${sb% *} | ${sb#* } |"
echo
awk -v x="${sa% *}" -v y="${sb% *}" 'BEGIN { printf "A / B (medians): %.2fx\n", x / y }'
