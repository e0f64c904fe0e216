#!/usr/bin/python3
"""reference.py - golden fixtures for the engine tests, computed by PyTorch.

For each case it builds a torchvision ResNet with seeded random weights and
non-trivial BN statistics, and writes into --out:
  NAME.safetensors   the state_dict, torchvision key names (+ metadata)
  NAME.input.f32     5 seeded input images, float32 NCHW, little-endian
  NAME.logits.f32    PyTorch's eval-mode logits [5][classes], float32
  NAME.photos.f32    with --photos: those JPEGs preprocessed by PIL + torchvision
                     (Resize(round(256 max(h,w)/224)), CenterCrop(h,w), ToTensor,
                     ImageNet Normalize), float32 NCHW: real-image statistics,
                     which noise lacks (smooth regions, saturated channels)
  NAME.photos_logits.f32  PyTorch's float64 logits for them
  NAME.json          {"n":5,"c":3,"h":..,"w":..,"classes":.., and what the engine
                     should infer: "arch", "stage_blocks", "bottleneck", "conv_bias",
                     "stride", "bn_eps", optionally "labels" and "n_photos"}
The logits are computed in float64 from the float32 weights, so they are the
exact answer the engine's float32 arithmetic approximates.
Run with Debian's Python: /usr/bin/python3 tools/reference.py --out DIR
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

N_IMAGES = 5


def init_weights(model, seed):
    """Seeded weights that keep activations O(1) through any depth: He-normal
    convs, random BN statistics, and the last BN of every residual branch
    scaled down so that the residual sums grow slowly."""
    g = torch.Generator().manual_seed(seed)

    def normal(t, std, mean=0.0):
        t.copy_(torch.randn(t.shape, generator=g) * std + mean)

    def uniform(t, lo, hi):
        t.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
                normal(m.weight, (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    normal(m.bias, 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                uniform(m.weight, 0.5, 1.5)
                normal(m.bias, 0.1)
                normal(m.running_mean, 0.1)
                uniform(m.running_var, 0.5, 2.0)
                m.num_batches_tracked.fill_(1000)
            elif isinstance(m, nn.Linear):
                normal(m.weight, (1.0 / m.in_features) ** 0.5)
                normal(m.bias, 0.1)
        for m in model.modules():
            if isinstance(m, torchvision.models.resnet.Bottleneck):
                last_bn = m.bn3
            elif isinstance(m, torchvision.models.resnet.BasicBlock):
                last_bn = m.bn2
            else:
                continue
            last_bn.weight.mul_(0.3)
            last_bn.bias.mul_(0.3)


def with_conv_bias(module):
    """Replaces every Conv2d under module by the same conv with a bias."""
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d) and child.bias is None:
            setattr(module, name, nn.Conv2d(child.in_channels, child.out_channels,
                                            child.kernel_size, child.stride, child.padding,
                                            child.dilation, child.groups, bias=True))
        else:
            with_conv_bias(child)
    return module


def resnet50_v1_bias_eps():
    """ResNet-50 as Caffe/Keras build it: stride on the first 1x1 conv of each
    downsampling bottleneck, a bias on every conv, BN eps 1e-3."""
    model = with_conv_bias(torchvision.models.resnet50())
    for layer in (model.layer2, model.layer3, model.layer4):
        layer[0].conv1.stride = (2, 2)
        layer[0].conv2.stride = (1, 1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = 1e-3
    return model


# name -> (constructor, input (h, w), metadata or None, keep num_batches_tracked)
CASES = {
    "resnet18_c2_128": (lambda: torchvision.models.resnet18(num_classes=2), (128, 128),
                        {"name": "resnet18_c2_128", "arch": "resnet18", "input_size": "128x128",
                         "labels": '["cat","dog"]'}, False),
    # exactly what safetensors.torch.save_file(model.state_dict()) writes:
    # no metadata, and the int64 num_batches_tracked tensors the engine must skip
    "resnet18_c1000_224": (torchvision.models.resnet18, (224, 224), None, True),
    "resnet34_224": (torchvision.models.resnet34, (224, 224), {"arch": "resnet34"}, False),
    "resnet50_v15_224": (torchvision.models.resnet50, (224, 224),
                         {"arch": "resnet50", "stride": "v1.5", "bn_eps": "1e-05"}, False),
    "resnet50_v1_bias_eps": (resnet50_v1_bias_eps, (224, 224),
                             {"arch": "resnet50", "stride": "v1", "bn_eps": "0.001"}, False),
    # the deep ones at 128x128: depth is what they test, and it keeps the
    # float64 reference to seconds
    "resnet101_128": (torchvision.models.resnet101, (128, 128),
                      {"arch": "resnet101", "input_size": "128"}, False),
    "resnet152_128": (torchvision.models.resnet152, (128, 128),
                      {"arch": "resnet152", "input_size": "128"}, False),
}


def describe(model):
    """What the engine should infer from the model's tensors and metadata."""
    blocks = [len(getattr(model, f"layer{i}")) for i in range(1, 5)]
    bottleneck = isinstance(model.layer1[0], torchvision.models.resnet.Bottleneck)
    archs = {(2, 2, 2, 2, False): "resnet18", (3, 4, 6, 3, False): "resnet34",
             (3, 4, 6, 3, True): "resnet50", (3, 4, 23, 3, True): "resnet101",
             (3, 8, 36, 3, True): "resnet152"}
    v1 = bottleneck and model.layer2[0].conv1.stride == (2, 2)
    return {"arch": archs.get((*blocks, bottleneck), "resnet-custom"), "stage_blocks": blocks,
            "bottleneck": bottleneck, "conv_bias": model.conv1.bias is not None,
            "stride": "v1" if v1 else "v1.5", "bn_eps": model.bn1.eps}


def write_floats(path, t):
    with open(path, "wb") as f:
        f.write(t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes())


def photo_tensors(photos, h, w):
    """The photos as torchvision preprocesses them for an h x w ImageNet model."""
    from PIL import Image
    from torchvision import transforms
    tf = transforms.Compose([
        transforms.Resize(round(256 * max(h, w) / 224)), transforms.CenterCrop((h, w)),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    return torch.stack([tf(Image.open(p).convert("RGB")) for p in photos])


def write_fixture(out, name, model, h, w, seed, labels=None, photos=None):
    """Writes NAME.input.f32, NAME.logits.f32 and NAME.json (and the photo
    files) for an eval-mode model whose weights are already in
    out/NAME.safetensors. Returns the logits."""
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn((N_IMAGES, 3, h, w), generator=g)
    model = model.eval()
    with torch.no_grad():
        exact = model.double()(x.double())
        if photos:
            px = photo_tensors(photos, h, w)
            photo_logits = model(px.double())
        model.float()
        fast = model(x)
    scale = exact.abs().max().item()
    write_floats(os.path.join(out, name + ".input.f32"), x)
    write_floats(os.path.join(out, name + ".logits.f32"), exact)
    info = {"n": N_IMAGES, "c": 3, "h": h, "w": w, "classes": exact.shape[1], **describe(model)}
    if labels:
        info["labels"] = labels
    if photos:
        write_floats(os.path.join(out, name + ".photos.f32"), px)
        write_floats(os.path.join(out, name + ".photos_logits.f32"), photo_logits)
        info["n_photos"] = len(photos)
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(info, f)
        f.write("\n")
    rel = (fast.double() - exact).abs().max().item() / scale
    print(f"{name}: max|logit| {scale:.3f}, logit std {exact.std().item():.3f}, "
          f"PyTorch float32 vs float64 max diff {rel:.2e} x max|logit|")
    return exact


def make_case(out, name, seed, photos=None):
    ctor, (h, w), metadata, keep_nbt = CASES[name]
    torch.manual_seed(seed)
    model = ctor()
    init_weights(model, seed)
    state = model.state_dict()
    if not keep_nbt:
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    safetensors_io.save(os.path.join(out, name + ".safetensors"), state, metadata)
    labels = json.loads(metadata["labels"]) if metadata and "labels" in metadata else None
    write_fixture(out, name, model, h, w, seed, labels, photos)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--case", action="append", choices=sorted(CASES),
                    help="case to write (repeatable; default all)")
    ap.add_argument("--photos", nargs="*", default=[],
                    help="JPEGs to write as NAME.photos.f32 with their logits")
    ap.add_argument("--stamp", help="file to touch when every case is written (for meson)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(args.out, exist_ok=True)
    # seeds by name order, the cases added later after the first five, so
    # that adding a case never changes the weights of another
    later = ["resnet101_128", "resnet152_128"]
    order = sorted(n for n in CASES if n not in later) + later
    for i, name in enumerate(order):
        if not args.case or name in args.case:
            make_case(args.out, name, seed=1000 + i, photos=args.photos)
    if args.stamp:
        with open(args.stamp, "w") as f:
            f.write(args.out + "\n")


if __name__ == "__main__":
    main()
