#!/usr/bin/python3
"""reference_explain.py - PyTorch references for the engine's features and
class activation maps (tests/integration/test_explain.c).

For each case (reference.py's seeded nets) it writes into --out:
  NAME.safetensors     the weights (reference.py's make_case)
  NAME.input.f32       the images, float32 NCHW: 2 seeded noise images, then
                       the --photos as PIL + torchvision preprocess them
  NAME.features.f32    the model with fc = Identity, in float64: the globally
                       pooled vector [n][C]
  NAME.fmap.f32        layer4's output (a forward hook), float64 [n][C][h][w]
  NAME.cam.f32         per image, the CAM of each class of "cam_classes" (its
                       float64 top-1 class, then the last class), computed in
                       float64 as sum_k fc.weight[c][k] * layer4[k] [n][2][h][w]
  NAME.json            {"n","c","h","w","classes","channels","map_h","map_w",
                        "cam_classes":[[top1, last], ...]}
The files hold float32 roundings of float64 values (rel. error <= 6e-8).
Run with Debian's Python: /usr/bin/python3 tools/reference_explain.py --out DIR
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402
import safetensors_io  # noqa: E402

# a basic-block net, a bottleneck one, and a non-square, non-224 map (4x4)
CASES = ["resnet18_c1000_224", "resnet50_v15_224", "resnet18_c2_128"]
N_NOISE = 2


def explain_case(out, name, seed, photos):
    ctor, (h, w), metadata, _ = reference.CASES[name]
    torch.manual_seed(seed)
    model = ctor()
    reference.init_weights(model, seed)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    safetensors_io.save(os.path.join(out, name + ".safetensors"), state, metadata)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn((N_NOISE, 3, h, w), generator=g)
    if photos:
        x = torch.cat([x, reference.photo_tensors(photos, h, w)])
    model = model.eval().double()
    maps = []
    hook = model.layer4.register_forward_hook(lambda m, i, o: maps.append(o))
    with torch.no_grad():
        logits = model(x.double())
        fmap = maps[0]
        weight = model.fc.weight.double()
        model.fc = nn.Identity()
        features = model(x.double())
    hook.remove()
    last = logits.shape[1] - 1
    classes = [[int(logits[i].argmax()), last] for i in range(x.shape[0])]
    cam = torch.stack([torch.stack([torch.einsum("k,khw->hw", weight[c], fmap[i]) for c in cs])
                       for i, cs in enumerate(classes)])
    reference.write_floats(os.path.join(out, name + ".input.f32"), x)
    reference.write_floats(os.path.join(out, name + ".features.f32"), features)
    reference.write_floats(os.path.join(out, name + ".fmap.f32"), fmap)
    reference.write_floats(os.path.join(out, name + ".cam.f32"), cam)
    info = {"n": x.shape[0], "c": 3, "h": h, "w": w, "classes": logits.shape[1],
            "channels": fmap.shape[1], "map_h": fmap.shape[2], "map_w": fmap.shape[3],
            "cam_classes": classes}
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(info, f)
        f.write("\n")
    print(f"{name}: features {tuple(features.shape)}, map {tuple(fmap.shape)}, "
          f"max|feature| {features.abs().max().item():.3f}, max|cam| {cam.abs().max().item():.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--photos", nargs="*", default=[], help="JPEGs to add to the noise images")
    ap.add_argument("--stamp", help="file to touch when every case is written (for meson)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(args.out, exist_ok=True)
    for i, name in enumerate(CASES):
        explain_case(args.out, name, seed=2000 + i, photos=args.photos)
    if args.stamp:
        with open(args.stamp, "w") as f:
            f.write(args.out + "\n")


if __name__ == "__main__":
    main()
