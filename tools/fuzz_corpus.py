#!/usr/bin/python3
"""fuzz_corpus.py - writes the seed corpora of tests/fuzz/corpus/<target>/.

The seeds are committed; rerun this only to regenerate them
(/usr/bin/python3 tools/fuzz_corpus.py). Every seed is small and valid for
its parser, so the fuzzers start from the accepted paths; regression inputs
found by fuzzing are committed next to them under names starting "crash-".
Input formats of the harnesses (see tests/fuzz/fuzz_*.c):
  image:     one selector byte (preprocessing shape), then a JPEG, PNG or WebP
  multipart: the Content-Type value, '\\n', then the body
  kserve:    the Inference-Header-Content-Length value or "", '\\n', the body
  grpc:      the grpc-timeout value or "", '\\n', a ModelInferRequest message
"""
import base64
import io
import json
import os
import shutil
import struct
import sys

import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
# Unpacked by tools/fetch_model.sh; without it the real-topology seed is skipped.
TFJS_MODEL = os.path.join(ROOT, ".cache", "npm", "package", "ResNet50", "model.json")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def encoded(w, h, mode, fmt, **kw):
    img = Image.effect_mandelbrot((w, h), (-2, -1.2, 1, 1.2), 64).convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def image_format_seeds():
    """Small PNG and WebP seeds for the branches of their decoders: RGB,
    palette + tRNS and gray + alpha PNGs, lossy-with-alpha and lossless WebP."""
    put("image", "rgb_24x16.png", b"\x00" + encoded(24, 16, "RGB", "PNG"))
    put("image", "palette_trns.png", b"\x41" + encoded(20, 12, "P", "PNG", transparency=0))
    put("image", "gray_alpha.png", b"\x9a" + encoded(17, 9, "LA", "PNG"))
    put("image", "lossy_alpha.webp", b"\x12" + encoded(24, 16, "RGBA", "WEBP", quality=50))
    put("image", "lossless.webp", b"\x80" + encoded(16, 24, "RGB", "WEBP", lossless=True))


def jpeg(w, h, mode="RGB", **kw):
    g = torch.Generator().manual_seed(w * 1000 + h)
    px = (torch.rand(h, w, 3, generator=g) * 255).to(torch.uint8).numpy()
    img = Image.fromarray(px, "RGB").convert(mode)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=75, **kw)
    return buf.getvalue()


def tiny_resnet():
    """A basic-block ResNet with one block per stage and 2..4 channels."""
    g = torch.Generator().manual_seed(1)
    t = {}

    def bn(p, c):
        t[p + ".weight"] = torch.rand(c, generator=g) + 0.5
        t[p + ".bias"] = torch.rand(c, generator=g)
        t[p + ".running_mean"] = torch.rand(c, generator=g)
        t[p + ".running_var"] = torch.rand(c, generator=g) + 0.5

    t["conv1.weight"] = torch.rand(2, 3, 7, 7, generator=g)
    bn("bn1", 2)
    cin = 2
    for s, c in enumerate([2, 2, 4, 4]):
        p = f"layer{s + 1}.0."
        t[p + "conv1.weight"] = torch.rand(c, cin, 3, 3, generator=g)
        bn(p + "bn1", c)
        t[p + "conv2.weight"] = torch.rand(c, c, 3, 3, generator=g)
        bn(p + "bn2", c)
        if s > 0:  # stride 2 (and, past layer1, new widths) need a projection
            t[p + "downsample.0.weight"] = torch.rand(c, cin, 1, 1, generator=g)
            bn(p + "downsample.1", c)
        cin = c
    t["fc.weight"] = torch.rand(3, cin, generator=g)
    t["fc.bias"] = torch.rand(3, generator=g)
    return t


def safetensors_seeds(tmp):
    path = os.path.join(tmp, "a.safetensors")
    safetensors_io.save(path, {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3),
                               "h": torch.ones(2, dtype=torch.float16),
                               "b": torch.ones(3, dtype=torch.bfloat16),
                               "i": torch.zeros(1, dtype=torch.int64)},
                        {"name": "fuzz", "input_size": "32"})
    put("safetensors", "mixed.safetensors", open(path, "rb").read())
    safetensors_io.save(path, tiny_resnet(),
                        {"name": "tiny", "arch": "resnet18", "input_size": "32x32",
                         "channel_order": "BGR", "mean": "[1,2,3]", "std": "[1,1,1]",
                         "labels": '["a","b","c"]'})
    put("safetensors", "tiny_resnet.safetensors", open(path, "rb").read())


def tfjs_seeds():
    small_manifest = [{"paths": ["s.bin"], "weights": [
        {"name": "conv1/kernel", "shape": [2, 2, 3, 4], "dtype": "float32"},
        {"name": "conv1/bias", "shape": [4], "dtype": "float32"}]}]
    if os.path.exists(TFJS_MODEL):
        m = json.load(open(TFJS_MODEL))
        m["weightsManifest"] = small_manifest
        # The stem, the first residual block and the head: every layer class of
        # the model in 10 KB, so the fuzzer runs at thousands of inputs a second
        # (the whole 77 KB topology ran at 400).
        mc = m["modelTopology"]["model_config"]["config"]
        mc["layers"] = mc["layers"][:25] + mc["layers"][-3:]
        put("tfjs", "resnet50_topology.json", json.dumps(m, separators=(",", ":")).encode())
    layers = [{"name": "input_1", "class_name": "InputLayer",
               "config": {"batch_input_shape": [None, 64, 64, 3]}},
              {"name": "conv1", "class_name": "Conv2D",
               "config": {"filters": 4, "kernel_size": [2, 2], "use_bias": True}},
              {"name": "bn_conv1", "class_name": "BatchNormalization",
               "config": {"epsilon": 0.001}}]
    put("tfjs", "small.json", json.dumps({
        "modelTopology": {"model_config": {"class_name": "Model",
                                           "config": {"layers": layers}}},
        "weightsManifest": small_manifest}).encode())


def multipart_body(parts, boundary):
    out = b""
    for name, filename, ctype, data in parts:
        out += b"--" + boundary + b"\r\n"
        disp = b'Content-Disposition: form-data; name="' + name + b'"'
        if filename:
            disp += b'; filename="' + filename + b'"'
        out += disp + b"\r\n"
        if ctype:
            out += b"Content-Type: " + ctype + b"\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


def main():
    if os.path.isdir(CORPUS):
        for t in os.listdir(CORPUS):
            d = os.path.join(CORPUS, t)
            for f in os.listdir(d):
                if not f.startswith("crash-"):
                    os.remove(os.path.join(d, f))
    tmp = os.path.join(ROOT, "tests", "fuzz", ".tmp")
    os.makedirs(tmp, exist_ok=True)
    safetensors_seeds(tmp)
    shutil.rmtree(tmp)
    tfjs_seeds()
    put("config", "resnetd.json", open(os.path.join(ROOT, "config", "resnetd.json"), "rb").read())
    put("config", "overrides.json", json.dumps({
        "port": 0, "input_size": "128x96", "channel_order": "BGR", "scale": 1,
        "mean": [103.939, 116.779, 123.68], "std": [1, 1, 1], "log_level": "debug",
        "access_log": False, "max_queue_delay_us": 0}).encode())
    small = jpeg(64, 48)
    put("image", "rgb_64x48.jpg", b"\x00" + small)
    put("image", "gray_40x30_dct.jpg", b"\xc9" + jpeg(40, 30, "L"))
    put("image", "progressive_420.jpg", b"\x52" + jpeg(33, 47, progressive=True))
    put("image", "cmyk.jpg", b"\x10" + jpeg(24, 24, "CMYK"))
    put("image", "444.jpg", b"\x88" + jpeg(20, 36, subsampling=0))
    image_format_seeds()
    b = b"XyZfuzz42"
    ct = b"multipart/form-data; boundary=" + b + b"\n"
    put("multipart", "two_files", ct + multipart_body(
        [(b"image", b"a.jpg", b"image/jpeg", jpeg(8, 8)), (b"image", b"b.jpg", None, b"xyz")], b))
    put("multipart", "field_and_file", ct + multipart_body(
        [(b"topk", None, None, b"3"), (b"file", b"c.jpg", b"image/jpeg", b"\xff\xd8\xff")], b))
    put("multipart", "quoted_boundary",
        b'multipart/form-data; boundary="q q"\n' + multipart_body([(b"x", None, None, b"1")],
                                                                  b"q q"))
    fp32 = {"id": "r1", "inputs": [{"name": "input", "shape": [1, 3, 16, 16],
                                     "datatype": "FP32", "data": [0.5] * 768}],
            "outputs": [{"name": "probabilities"}, {"name": "logits",
                                                    "parameters": {"binary_data": True}}]}
    put("kserve", "fp32.json", b"\n" + json.dumps(fp32).encode())
    img = jpeg(24, 20)
    jb = {"inputs": [{"name": "image", "shape": [2], "datatype": "BYTES",
                      "data": [base64.b64encode(img).decode(), base64.b64encode(small).decode()]}]}
    put("kserve", "bytes_base64.json", b"\n" + json.dumps(jb).encode())
    hdr = json.dumps({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                                  "parameters": {"binary_data_size": 4 + len(img)}}],
                      "parameters": {"binary_data_output": True}}).encode()
    put("kserve", "bytes_binary", str(len(hdr)).encode() + b"\n" + hdr +
        struct.pack("<I", len(img)) + img)
    raw = struct.pack("<768f", *([0.25] * 768))
    hdr = json.dumps({"inputs": [{"name": "input", "shape": [1, 3, 16, 16], "datatype": "FP32",
                                  "parameters": {"binary_data_size": len(raw)}}]}).encode()
    put("kserve", "fp32_binary", str(len(hdr)).encode() + b"\n" + hdr + raw)
    grpc_seeds()


def pb_varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def pb_field(num, data):
    """A length-delimited protobuf field (string, bytes, message, packed)."""
    return pb_varint(num << 3 | 2) + pb_varint(len(data)) + data


def grpc_infer(model, tensor, outputs=(), raw=None, req_id=b""):
    """A ModelInferRequest (server/grpc/grpc_service.proto) on the wire."""
    out = pb_field(1, model) + (pb_field(3, req_id) if req_id else b"") + pb_field(5, tensor)
    for o in outputs:
        out += pb_field(6, pb_field(1, o))
    return out + (pb_field(7, raw) if raw is not None else b"")


def grpc_tensor(name, dtype, shape, contents=None):
    t = pb_field(1, name) + pb_field(2, dtype) + pb_field(3, b"".join(pb_varint(d) for d in shape))
    return t + (pb_field(5, contents) if contents is not None else b"")


def grpc_seeds():
    raw = struct.pack("<12f", *range(12))
    put("grpc", "fp32_raw", b"100m\n" + grpc_infer(b"m", grpc_tensor(b"input", b"FP32", [1, 3, 2, 2]),
                                                   [b"logits", b"probabilities"], raw, b"x"))
    put("grpc", "fp32_typed", b"5S\n" + grpc_infer(
        b"m", grpc_tensor(b"input", b"FP32", [1, 3, 2, 2], pb_field(6, raw))))
    put("grpc", "bytes_raw", b"99999999H\n" + grpc_infer(
        b"m", grpc_tensor(b"image", b"BYTES", [2]),
        raw=struct.pack("<I", 3) + b"abc" + struct.pack("<I", 2) + b"de"))
    put("grpc", "bytes_typed", b"\n" + grpc_infer(
        b"m", grpc_tensor(b"image", b"BYTES", [1], pb_field(8, jpeg(24, 20)))))


if __name__ == "__main__":
    main()
