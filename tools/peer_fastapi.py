#!/usr/bin/python3
"""peer_fastapi.py - a FastAPI + PyTorch peer of `resnetd serve`, for benchmarks.

It does the job of resnetd's POST /classify the way a Python user would:
PIL decodes, torchvision's Resize + CenterCrop preprocess, the model is
traced with torch.jit.trace, frozen and run channels_last, one request at a
time on the event loop (no batching across requests; PyTorch uses its intra-op
threads inside each call). It reads the same safetensors file as resnetd (the
metadata gives the architecture, stride, BN epsilon, preprocessing, labels).

    /usr/bin/python3 tools/peer_fastapi.py --model models/resnet50.safetensors \
        --port 8081 [--bf16] [--threads N]

--bf16 runs the model under torch.cpu.amp.autocast(dtype=torch.bfloat16), traced
with torch._C._jit_set_autocast_mode(False) and check_trace=False (PyTorch 1.13
cannot trace autocast otherwise; docs/NOTES). Endpoints: POST /classify (raw
JPEG body, or multipart/form-data whose file parts are images; ?topk=K),
GET /healthz. Answers {"model", "results": [{"index", "filename",
"predictions": [{"index", "label", "probability"}]}]} as resnetd does.
A benchmark peer, not a product: errors are plain 400s.

Debian packages: python3-fastapi python3-uvicorn python3-multipart
python3-torch python3-torchvision python3-pil (tools/install_deps.sh).
"""
import argparse
import io
import json
import os
import sys

import torch
import torch.nn as nn
import torchvision
from PIL import Image
from torchvision import transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

ARCHS = {"resnet18": torchvision.models.resnet18, "resnet34": torchvision.models.resnet34,
         "resnet50": torchvision.models.resnet50, "resnet101": torchvision.models.resnet101,
         "resnet152": torchvision.models.resnet152}


def with_conv_bias(module):
    """Every Conv2d under module gets a bias (Keras/Caffe ports have them)."""
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d) and child.bias is None:
            setattr(module, name, nn.Conv2d(child.in_channels, child.out_channels,
                                            child.kernel_size, child.stride, child.padding,
                                            child.dilation, child.groups, bias=True))
        else:
            with_conv_bias(child)


def build_model(path):
    """(model in eval mode, metadata dict) from a resnetd safetensors file."""
    tensors, meta = safetensors_io.load(path)
    arch = meta.get("arch", "resnet50")
    classes = tensors["fc.weight"].shape[0]
    model = ARCHS[arch](num_classes=classes)
    if "conv1.bias" in tensors:
        with_conv_bias(model)
    if meta.get("stride") == "v1" and arch in ("resnet50", "resnet101", "resnet152"):
        for layer in (model.layer2, model.layer3, model.layer4):
            layer[0].conv1.stride = (2, 2)
            layer[0].conv2.stride = (1, 1)
    eps = float(meta.get("bn_eps", "1e-5"))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = eps
    state = {k: v for k, v in tensors.items() if not k.endswith("num_batches_tracked")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"{path}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval(), meta


def preprocessing(meta):
    """A function PIL image -> [3,H,W] float tensor, as the model's metadata says."""
    size = meta.get("input_size", "224")
    h, w = (int(v) for v in size.split("x")) if "x" in size else (int(size), int(size))
    resize = int(meta.get("resize", "256"))
    scale = float(meta.get("scale", str(1 / 255)))
    mean = torch.tensor(json.loads(meta.get("mean", "[0.485,0.456,0.406]"))).view(3, 1, 1)
    std = torch.tensor(json.loads(meta.get("std", "[0.229,0.224,0.225]"))).view(3, 1, 1)
    bgr = meta.get("channel_order", "RGB").upper() == "BGR"
    crop = transforms.Compose([transforms.Resize(resize), transforms.CenterCrop((h, w)),
                               transforms.PILToTensor()])

    def run(img):
        x = crop(img).float()
        if bgr:
            x = x.flip(0)
        return (x * scale - mean) / std
    return run, (h, w)


def compile_model(model, hw, bf16):
    """torch.jit.trace + freeze, channels_last; under BF16 autocast when asked."""
    model = model.to(memory_format=torch.channels_last)
    example = torch.zeros(1, 3, *hw).to(memory_format=torch.channels_last)
    with torch.no_grad():
        if bf16:
            torch._C._jit_set_autocast_mode(False)
            with torch.cpu.amp.autocast(dtype=torch.bfloat16):
                traced = torch.jit.trace(model, example, check_trace=False)
        else:
            traced = torch.jit.trace(model, example)
        traced = torch.jit.freeze(traced)
        for _ in range(3):  # let the profiling executor settle
            forward(traced, example, bf16)
    return traced


def forward(traced, x, bf16):
    with torch.no_grad():
        if bf16:
            with torch.cpu.amp.autocast(dtype=torch.bfloat16):
                return traced(x).float()
        return traced(x)


def make_app(args):
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import JSONResponse

    model, meta = build_model(args.model)
    prep, hw = preprocessing(meta)
    traced = compile_model(model, hw, args.bf16)
    labels = json.loads(meta["labels"]) if "labels" in meta else None
    name = meta.get("name", os.path.basename(args.model))
    app = FastAPI()

    def classify_images(images, topk):
        batch = torch.stack([prep(Image.open(io.BytesIO(b)).convert("RGB")) for _, b in images])
        probs = forward(traced, batch.contiguous(memory_format=torch.channels_last),
                        args.bf16).softmax(1)
        top = probs.topk(min(topk, probs.shape[1]), dim=1)
        results = []
        for i, (fname, _) in enumerate(images):
            preds = [{"index": int(j), "label": labels[j] if labels else str(int(j)),
                      "probability": float(p)}
                     for p, j in zip(top.values[i].tolist(), top.indices[i].tolist())]
            results.append({"index": i, "filename": fname, "predictions": preds})
        return {"model": name, "results": results}

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.post("/classify")
    async def classify(request: Request, topk: int = 5):
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            form = await request.form()
            images = [(v.filename, await v.read()) for _, v in form.multi_items()
                      if hasattr(v, "read")]
        else:
            images = [("", await request.body())]
        if not images or topk < 1:
            raise HTTPException(400, "no image or bad topk")
        try:
            return JSONResponse(classify_images(images, topk))
        except (OSError, ValueError) as e:
            raise HTTPException(400, f"bad image: {e}")

    return app


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="models/resnet50.safetensors")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--bf16", action="store_true", help="BF16 autocast")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads; 0 = cores")
    args = ap.parse_args()
    # Debian's torch starts with one OpenMP thread here; use every core as resnetd does
    torch.set_num_threads(args.threads if args.threads > 0 else len(os.sched_getaffinity(0)))
    import uvicorn
    app = make_app(args)
    print(f"peer_fastapi: {args.model} {'bf16' if args.bf16 else 'fp32'}, "
          f"{torch.get_num_threads()} threads, listening on {args.bind}:{args.port}", flush=True)
    uvicorn.run(app, host=args.bind, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
