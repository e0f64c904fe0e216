#!/usr/bin/python3
"""test_export_pytorch.py - tools/export_pytorch.py as a PyTorch user runs it.

Saves a seeded 2-class ResNet-18 (the seed notebook's model, 128x128) the ways
people save models, exports it, checks every tensor and metadata key, then runs
the exported files through the golden engine test against PyTorch's logits,
once stored as float32 and once as float16.
Usage: test_export_pytorch.py TEST_GOLDEN_EXE WORK_DIR
"""
import json
import os
import shutil
import subprocess
import sys

import torch
import torchvision

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import reference  # noqa: E402
import safetensors_io  # noqa: E402

EXPORT = os.path.join(ROOT, "tools", "export_pytorch.py")


def export(*args, ok=True):
    r = subprocess.run([sys.executable, EXPORT, *args], capture_output=True, text=True)
    print("export_pytorch.py", " ".join(args), "->", r.returncode, r.stdout.strip(), r.stderr.strip()[-300:])
    assert (r.returncode == 0) == ok, f"exit status {r.returncode}, expected {'0' if ok else 'non-zero'}"


def check_file(path, model, dtype, labels):
    tensors, meta = safetensors_io.load(path)
    want = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    assert sorted(tensors) == sorted(want), "tensor names differ from the state_dict"
    for k, v in want.items():
        assert tensors[k].dtype == dtype, f"{k}: {tensors[k].dtype}"
        assert torch.equal(tensors[k], v.to(dtype)), f"{k}: values differ"
    assert meta["input_size"] == "128"
    assert json.loads(meta["labels"]) == labels
    assert meta["arch"] == "resnet18" and meta["stride"] == "v1.5"


def main():
    golden_exe, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    torch.set_num_threads(2)
    torch.manual_seed(7)
    model = torchvision.models.resnet18(num_classes=2)
    reference.init_weights(model, 7)
    model.eval()
    labels = ["cat", "dog"]

    # the ways a notebook saves a model: state_dict, whole model, DataParallel checkpoint
    sd_pt, whole_pt, ckpt_pt = (os.path.join(work, n) for n in ("sd.pt", "whole.pt", "ckpt.pt"))
    torch.save(model.state_dict(), sd_pt)
    torch.save(model, whole_pt)
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in model.state_dict().items()}},
               ckpt_pt)
    golden = os.path.join(work, "golden")
    os.makedirs(golden)
    f32 = os.path.join(golden, "pets.safetensors")
    export("--arch", "resnet18", "--weights", sd_pt, "--out", f32, "--input-size", "128",
           "--labels", "cat,dog")
    check_file(f32, model, torch.float32, labels)
    for src in (whole_pt, ckpt_pt):
        other = os.path.join(work, "other.safetensors")
        export("--arch", "resnet18", "--weights", src, "--out", other, "--input-size", "128",
               "--labels", "cat,dog", "--name", "pets")
        with open(other, "rb") as a, open(f32, "rb") as b:
            assert a.read() == b.read(), f"{src}: export differs from the state_dict's"

    labels_txt = os.path.join(work, "labels.txt")
    with open(labels_txt, "w") as f:
        f.write("cat\ndog\n")
    f16 = os.path.join(golden, "pets_f16.safetensors")
    export("--arch", "resnet18", "--weights", sd_pt, "--out", f16, "--input-size", "128",
           "--labels", labels_txt, "--dtype", "f16")
    check_file(f16, model, torch.float16, labels)

    # refusals: wrong architecture, wrong label count
    export("--arch", "resnet34", "--weights", sd_pt, "--out", os.path.join(work, "x.safetensors"), ok=False)
    export("--arch", "resnet18", "--weights", sd_pt, "--out", os.path.join(work, "x.safetensors"),
           "--labels", "a,b,c", ok=False)

    # PyTorch's logits for each file's own weights (f16 rounding included)
    reference.write_fixture(golden, "pets", model, 128, 128, 7, labels)
    with torch.no_grad():
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.copy_(p.half().float())
    reference.write_fixture(golden, "pets_f16", model, 128, 128, 7, labels)
    r = subprocess.run([golden_exe], env=dict(os.environ, GOLDEN_DIR=golden))
    assert r.returncode == 0, "the engine's logits differ from PyTorch's on the exported model"
    print("test_export_pytorch: ok")


if __name__ == "__main__":
    main()
