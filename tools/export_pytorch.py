#!/usr/bin/python3
"""export_pytorch.py - export a trained torchvision ResNet to resnetd's format.

Takes a state_dict saved with torch.save(model.state_dict(), "model.pt") (a
pickled whole model, a TorchScript file, a {"state_dict": ...} checkpoint or a
DataParallel "module." prefix also work), checks it against torchvision's
architecture, and writes safetensors with torchvision key names plus the
__metadata__ resnetd reads (input size, preprocessing, labels).

    /usr/bin/python3 tools/export_pytorch.py --arch resnet18 --weights model.pt \\
        --input-size 128 --labels cat,dog --out models/pets.safetensors
    resnetd serve --model models/pets.safetensors
"""
import argparse
import json
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def read_state_dict(path):
    """The float tensors of whatever model.pt holds, torchvision names."""
    try:
        obj = torch.load(path, map_location="cpu")
    except RuntimeError:  # TorchScript archives need torch.jit.load
        obj = torch.jit.load(path, map_location="cpu")
    if hasattr(obj, "state_dict"):
        obj = obj.state_dict()
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        sys.exit(f"{path}: neither a state_dict nor a model")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def read_labels(arg):
    """labels.txt (one per line), a JSON array file, or "a,b,c"."""
    if not os.path.isfile(arg):
        return [s.strip() for s in arg.split(",")]
    with open(arg, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        return [str(s) for s in json.loads(text)]
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_args():
    ap = argparse.ArgumentParser(description="Export a torchvision ResNet to resnetd safetensors.")
    ap.add_argument("--arch", required=True, choices=ARCHS)
    ap.add_argument("--weights", required=True, help="model.pt: state_dict, model or checkpoint")
    ap.add_argument("--out", required=True, help="output .safetensors file")
    ap.add_argument("--num-classes", type=int, help="default: from fc.weight")
    ap.add_argument("--input-size", help='training crop: "224" or "HxW" (default 224)')
    ap.add_argument("--resize", type=int, help="shorter side before the crop (default size*256/224)")
    ap.add_argument("--labels", help="labels.txt, a JSON array file, or a,b,c")
    ap.add_argument("--mean", type=float, nargs=3, help="default ImageNet 0.485 0.456 0.406")
    ap.add_argument("--std", type=float, nargs=3, help="default ImageNet 0.229 0.224 0.225")
    ap.add_argument("--name", help="model name (default: output file name)")
    ap.add_argument("--dtype", choices=DTYPES, default="f32", help="stored precision (default f32)")
    return ap.parse_args()


def main():
    args = parse_args()
    state = read_state_dict(args.weights)
    if "fc.weight" not in state:
        sys.exit(f"{args.weights}: no fc.weight: not a torchvision ResNet state_dict")
    n_classes = args.num_classes or state["fc.weight"].shape[0]
    model = getattr(torchvision.models, args.arch)(num_classes=n_classes)
    try:  # refuses missing, unexpected or misshapen tensors, naming them
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        sys.exit(f"{args.weights} is not a {args.arch} with {n_classes} classes:\n{e}")

    tensors = {k: v.to(DTYPES[args.dtype]) for k, v in model.state_dict().items()
               if v.is_floating_point()}  # num_batches_tracked is not needed
    meta = {"arch": args.arch, "stride": "v1.5", "bn_eps": "1e-05",
            "name": args.name or os.path.splitext(os.path.basename(args.out))[0]}
    if args.input_size:
        meta["input_size"] = args.input_size
    if args.resize:
        meta["resize"] = str(args.resize)
    if args.mean:
        meta["mean"] = json.dumps(args.mean)
    if args.std:
        meta["std"] = json.dumps(args.std)
    if args.labels:
        labels = read_labels(args.labels)
        if len(labels) != n_classes:
            sys.exit(f"{len(labels)} labels for {n_classes} classes")
        meta["labels"] = json.dumps(labels)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    safetensors_io.save(args.out, tensors, meta)
    print(f"{args.out}: {args.arch}, {n_classes} classes, {len(tensors)} tensors, "
          f"input {meta.get('input_size', '224')}")


if __name__ == "__main__":
    main()
