#!/usr/bin/env bash
# bench_onnxruntime.sh - resnetd against ONNX Runtime on the same model, same run.
# Builds a seeded torchvision ResNet (tools/reference.py's weights), writes it as
# safetensors for resnetd and as ONNX (torch.onnx.export, opset 13, dynamic
# batch) for ORT, installs onnxruntime-node once into .cache/ort, then runs
# `resnetd bench` and ORT (2 intra-op threads) interleaved, round after round,
# because this machine's speed drifts between minutes. Prints medians and ratios.
# With --precisions "fp32 int8", resnetd runs in both precisions each round; for
# int8 the model is first calibrated (`resnetd calibrate`) on --calib-images,
# and runs pure INT8 (--int8-recheck 0).
#
#   tools/bench_onnxruntime.sh [--arch resnet18|resnet50] [--rounds 3] [--size 224]
#                              [--batches "1 8 32"] [--seconds 3] [--resnetd build/server/resnetd]
#                              [--precisions "fp32"] [--calib-images .cache/photos/calib]
set -euo pipefail
cd "$(dirname "$0")/.."

arch=resnet18 rounds=3 size=224 batches="1 8 32" seconds=3 resnetd=build/server/resnetd
precisions=fp32 calib_images=.cache/photos/calib
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) arch=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --batches) batches=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --resnetd) resnetd=$2; shift 2 ;;
        --precisions) precisions=$2; shift 2 ;;
        --calib-images) calib_images=$2; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "bench_onnxruntime.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

cache=.cache/ort
model=$cache/${arch}_${size}
mkdir -p "$cache"

# onnxruntime-node's install script would download GPU binaries; the CPU ones
# are in the tarball, so --ignore-scripts is enough.
if [ ! -d "$cache/node_modules/onnxruntime-node" ]; then
    echo "installing onnxruntime-node into $cache ..." >&2
    (cd "$cache" && npm install --ignore-scripts --no-audit --no-fund --silent onnxruntime-node >&2)
fi

if [ ! -f "$model.onnx" ] || [ ! -f "$model.safetensors" ]; then
    echo "exporting $arch at ${size}x$size ..." >&2
    /usr/bin/python3 - "$arch" "$size" "$model" <<'EOF'
import sys, torch, torchvision
sys.path.insert(0, "tools")
import reference, safetensors_io
arch, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
torch.manual_seed(0)
model = getattr(torchvision.models, arch)()
reference.init_weights(model, 0)
model.eval()
state = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
safetensors_io.save(out + ".safetensors", state, {"arch": arch, "input_size": str(size)})
torch.onnx.export(model, torch.randn(1, 3, size, size), out + ".onnx", opset_version=13,
                  input_names=["input"], output_names=["output"],
                  dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
EOF
fi

# One JSON line -> images_per_second, or "" when the run failed.
ips() { sed -n 's/.*"images_per_second": *\([0-9.eE+-]*\).*/\1/p' | tail -n 1; }
median() { tr ' ' '\n' | awk NF | sort -g | awk '{v[NR]=$1} END {if (NR) print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }

have_resnetd=1
[ -x "$resnetd" ] || { echo "no $resnetd: ONNX Runtime only" >&2; have_resnetd=0; precisions=""; }
case " $precisions " in
    *" int8 "*)
        if [ ! -f "$model-int8.safetensors" ]; then
            echo "calibrating on $calib_images ..." >&2
            "$resnetd" calibrate --model "$model.safetensors" --images "$calib_images" \
                --out "$model-int8.safetensors" >&2
        fi ;;
esac
declare -A rd ort
for round in $(seq "$rounds"); do
    for b in $batches; do
        line="round $round batch $b:"
        for p in $precisions; do
            file=$model.safetensors
            [ "$p" = int8 ] && file=$model-int8.safetensors
            # Pure INT8: the seeded random inputs make many close calls that
            # int8_recheck would rerun in FP32 (real photos: docs/performance.md).
            r=$("$resnetd" bench --model "$file" --precision "$p" --int8-recheck 0 --batch "$b" --seconds "$seconds" \
                --size "$size" | ips || true)
            rd[$p,$b]="${rd[$p,$b]:-} $r"
            line="$line resnetd $p ${r:-n/a} img/s,"
        done
        o=$(NODE_PATH="$cache/node_modules" node tools/bench_ort.js "$model.onnx" "$b" "$seconds" "$size" | ips)
        ort[$b]="${ort[$b]:-} $o"
        echo "$line ORT $o img/s" >&2
    done
done

echo "$arch ${size}x$size, $(nproc) cores, median of $rounds interleaved rounds (images/s)"
printf '%6s' batch
for p in $precisions; do printf ' %14s %9s' "resnetd_$p" "x_ORT"; done
printf ' %10s\n' ORT_fp32
for b in $batches; do
    m_ort=$(echo "${ort[$b]}" | median)
    printf '%6s' "$b"
    for p in $precisions; do
        m_rd=$(echo "${rd[$p,$b]:-}" | median)
        ratio=$( [ -n "$m_rd" ] && awk -v a="$m_rd" -v b="$m_ort" 'BEGIN {printf "%.2f", a / b}' || echo n/a)
        printf ' %14s %9s' "${m_rd:-n/a}" "$ratio"
    done
    printf ' %10s\n' "$m_ort"
done
