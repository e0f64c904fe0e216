#!/usr/bin/env bash
# bench_precision.sh - how fast each precision is, against PyTorch BF16 and
# the per-layer roofline, in one interleaved run (a benchmark, not a test).
# For ResNet-18 (seeded weights, tools/reference.py) and ResNet-50 (the real
# default model, models/resnet50.safetensors) at each batch size, round after
# round so that the machine's drift hits every figure alike:
#   - resnetd bench in fp32, bf16 and int8 (pure: --int8-recheck 0; the
#     model calibrated once on --calib-images);
#   - PyTorch BF16 as in docs/NOTES (jit.trace + freeze, channels_last,
#     torch.cpu.amp.autocast(bfloat16)), same architecture, random weights;
#   - build/engine/bench_convs: every conv of the net alone, summed
#     (the per-layer roofline), in f32, bf16 and int8.
# Then, for ResNet-50 on the --eval-images photos, `resnetd classify` with
# --precision auto against fp32 (decode included in both; faithful recheck on).
# Prints medians, the ratio of BF16 to PyTorch BF16, whole-net time over the
# roofline, and the effective ISA. ~4 minutes with the defaults.
#
#   tools/bench_precision.sh [--rounds 2] [--batches "1 8 32"] [--seconds 2]
#       [--nets "resnet18 resnet50"] [--calib-images .cache/photos/calib]
#       [--eval-images .cache/photos/eval] [--resnetd build/server/resnetd] [--no-torch]
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=2 batches="1 8 32" seconds=2 nets="resnet18 resnet50" torch=1
calib=.cache/photos/calib evals=.cache/photos/eval resnetd=build/server/resnetd
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --batches) batches=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --nets) nets=$2; shift 2 ;;
        --calib-images) calib=$2; shift 2 ;;
        --eval-images) evals=$2; shift 2 ;;
        --resnetd) resnetd=$2; shift 2 ;;
        --no-torch) torch=0; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "bench_precision.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
convs=$(dirname "$(dirname "$resnetd")")/engine/bench_convs
for f in "$resnetd" "$convs"; do
    [ -x "$f" ] || { echo "bench_precision.sh: $f missing (ninja -C build)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/bench_precision.XXXXXX)
trap 'rm -rf "$work"' EXIT
py=/usr/bin/python3

model_of() { # net -> safetensors path (resnet18: seeded, written once into $work)
    if [ "$1" = resnet50 ]; then echo models/resnet50.safetensors; return; fi
    [ -f "$work/golden/resnet18_c1000_224.safetensors" ] ||
        $py tools/reference.py --out "$work/golden" --case resnet18_c1000_224 >/dev/null
    echo "$work/golden/resnet18_c1000_224.safetensors"
}
field() { $py -c "import json,sys; print(json.loads(sys.stdin.readlines()[-1])['$1'])"; }

for net in $nets; do
    m=$(model_of "$net")
    "$resnetd" calibrate --model "$m" --images "$calib" --out "$work/$net-cal.safetensors" 2>/dev/null
done

cat > "$work/torch_bench.py" <<'PYEOF'
import sys, time, torch, torchvision
arch, batch, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
torch.set_num_threads(2)
torch._C._jit_set_autocast_mode(False)
model = getattr(torchvision.models, arch)().eval().to(memory_format=torch.channels_last)
x = torch.randn(batch, 3, 224, 224).to(memory_format=torch.channels_last)
with torch.no_grad(), torch.cpu.amp.autocast(dtype=torch.bfloat16):
    traced = torch.jit.freeze(torch.jit.trace(model, x, check_trace=False))
    for _ in range(3):
        traced(x)
    times, start = [], time.monotonic()
    while len(times) < 3 or time.monotonic() - start < seconds:
        t0 = time.monotonic(); traced(x); times.append(time.monotonic() - t0)
times.sort()
print(batch / times[len(times) // 2])
PYEOF

results=$work/results.tsv
: > "$results"
for r in $(seq "$rounds"); do
    for net in $nets; do
        m=$(model_of "$net")
        v1=""; [ "$net" = resnet50 ] && v1=--v1
        for b in $batches; do
            for p in fp32 bf16 int8; do
                mm=$m; [ "$p" = int8 ] && mm=$work/$net-cal.safetensors
                ips=$("$resnetd" bench --model "$mm" --batch "$b" --seconds "$seconds" \
                      --precision "$p" --int8-recheck 0 2>/dev/null | field images_per_second)
                printf '%s\t%s\t%s\tresnetd\t%s\n' "$net" "$b" "$p" "$ips" >> "$results"
                cp=$p; [ "$p" = fp32 ] && cp=f32
                ips=$("$convs" --arch "$net" $v1 --batch "$b" --precision "$cp" --iters 5 |
                      field images_per_second)
                printf '%s\t%s\t%s\troofline\t%s\n' "$net" "$b" "$p" "$ips" >> "$results"
            done
            if [ "$torch" = 1 ]; then
                ips=$($py "$work/torch_bench.py" "$net" "$b" "$seconds" 2>/dev/null || echo nan)
                printf '%s\t%s\tbf16\tpytorch\t%s\n' "$net" "$b" "$ips" >> "$results"
            fi
        done
    done
done

# auto against fp32 on real photos (ResNet-50, classify: decode + inference).
autofile=$work/auto.tsv
: > "$autofile"
if [[ " $nets " == *" resnet50 "* ]]; then
    photos=$(ls "$evals"/*.jpg)
    for r in $(seq "$rounds"); do
        for p in fp32 auto; do
            t0=$(date +%s.%N)
            rc=$("$resnetd" classify --model models/resnet50.safetensors --precision "$p" \
                 $photos 2>&1 >/dev/null | grep -o '[0-9]* of [0-9]* images rechecked' || true)
            t1=$(date +%s.%N)
            printf '%s\t%s\t%s\n' "$p" "$(echo "$t1 - $t0" | bc)" "$rc" >> "$autofile"
        done
    done
fi

isa=$("$resnetd" bench --model "$(model_of resnet18)" --batch 1 --seconds 0 --warmup 0 | field isa)
$py - "$results" "$autofile" "$isa" <<'PYEOF'
import statistics, sys
from collections import defaultdict
res, auto, isa = sys.argv[1], sys.argv[2], sys.argv[3]
d = defaultdict(list)
for line in open(res):
    net, b, p, who, ips = line.rstrip("\n").split("\t")
    try:
        d[(net, int(b), p, who)].append(float(ips))
    except ValueError:
        pass
med = {k: statistics.median(v) for k, v in d.items() if v}
print(f"effective ISA: {isa}; images/s, medians of the rounds")
print("| net | batch | fp32 | bf16 | int8 | PyTorch bf16 | bf16 / PyTorch | bf16 / roofline | int8 / roofline | fp32 / roofline |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for net, b in sorted({(k[0], k[1]) for k in med}):
    g = lambda p, w: med.get((net, b, p, w), float("nan"))
    # whole-net time over the roofline = roofline img/s / resnetd img/s
    print(f"| {net} | {b} | {g('fp32','resnetd'):.0f} | {g('bf16','resnetd'):.0f} | "
          f"{g('int8','resnetd'):.0f} | {g('bf16','pytorch'):.0f} | "
          f"{g('bf16','resnetd') / g('bf16','pytorch'):.2f}x | "
          f"{g('bf16','roofline') / g('bf16','resnetd'):.2f} | "
          f"{g('int8','roofline') / g('int8','resnetd'):.2f} | "
          f"{g('fp32','roofline') / g('fp32','resnetd'):.2f} |")
t = defaultdict(list)
notes = {}
for line in open(auto):
    p, s, rc = line.rstrip("\n").split("\t")
    t[p].append(float(s))
    notes[p] = rc
if t:
    f, a = statistics.median(t["fp32"]), statistics.median(t["auto"])
    print(f"ResNet-50 classify on the evaluation photos: fp32 {f:.1f} s, auto {a:.1f} s "
          f"({notes.get('auto') or 'no recheck line'}): auto = {f / a:.2f}x fp32")
PYEOF
