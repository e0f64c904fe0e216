#!/usr/bin/python3
"""test_multi_image.py - one POST /classify with 32 images answers what 32
single-image requests answer, image by image, in order.

Usage: test_multi_image.py RESNETD_BINARY MODEL PHOTO_DIR...

Starts the real `resnetd serve` on 127.0.0.1 (port 0), sends the first 32
photos of the folders (name order) as one multipart/form-data request (curl -F,
a real client), then each photo alone as a raw JPEG body, and checks that entry
i of the big answer names file i and carries the same top-5 classes and labels
as the single answer for file i, with probabilities within PROB_TOL (the
batches differ, 32 images against one at a time, so oneDNN may add in another
order: observed up to 1.0e-6 on the real ResNet-50). Not timed. Standard library and curl only;
every wait is bounded and the server is killed on any failure.
"""
import json
import os
import subprocess
import sys

from server_harness import HOST, Server, StartError

N_IMAGES = 32
TOPK = 5
PROB_TOL = 1e-5
START_TIMEOUT = 300.0
REQUEST_TIMEOUT = 600


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def photos(dirs):
    files = []
    for d in dirs:
        if not os.path.isdir(d):
            fail(f"{d}: no such folder (tools/fetch_photos.sh)")
        files += sorted(os.path.join(d, f) for f in os.listdir(d)
                        if f.lower().endswith((".jpg", ".jpeg")))
    if len(files) < N_IMAGES:
        fail(f"{len(files)} photos in {dirs}, {N_IMAGES} needed")
    return files[:N_IMAGES]


def start(binary, model):
    try:
        return Server(binary, model, "--access-log", "false",
                      "--max-images-per-request", str(N_IMAGES), name="multi",
                      wait_s=START_TIMEOUT)
    except StartError as e:
        fail(f"server did not start: {e}")


def curl(args):
    out = subprocess.run(["curl", "-s", "-S", "--max-time", str(REQUEST_TIMEOUT),
                          "-w", "\n%{http_code}"] + args,
                         capture_output=True, text=True, timeout=REQUEST_TIMEOUT + 10)
    body, _, code = out.stdout.rpartition("\n")
    if out.returncode != 0 or code != "200":
        fail(f"curl {' '.join(args[-2:])}: exit {out.returncode}, HTTP {code}: {body[:300]}")
    return json.loads(body)


def same(i, path, many, one):
    if many.get("index") != i or many.get("filename") != os.path.basename(path):
        fail(f"entry {i}: index {many.get('index')}, filename {many.get('filename')!r}, "
             f"expected {i} and {os.path.basename(path)!r}")
    a, b = many.get("predictions"), one.get("predictions")
    if not a or not b or len(a) != TOPK or len(b) != TOPK:
        fail(f"{path}: predictions {a} / {b}")
    worst = 0.0
    for r, (pa, pb) in enumerate(zip(a, b)):
        d = abs(pa["probability"] - pb["probability"])
        worst = max(worst, d)
        # two near-equal classes may trade places; anything else must match
        if (pa["index"], pa["label"]) != (pb["index"], pb["label"]) and d > PROB_TOL:
            fail(f"{path}: rank {r} is {pa} in the 32-image answer, {pb} alone")
        if d > PROB_TOL:
            fail(f"{path}: rank {r} probability {pa['probability']} vs {pb['probability']}")
    return worst


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    binary, model, dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
    if not os.path.exists(model):
        fail(f"model {model} missing (tools/fetch_model.sh)")
    files = photos(dirs)
    srv = start(binary, model)
    url = f"http://{HOST}:{srv.port}"
    try:
        form = []
        for k, f in enumerate(files):
            form += ["-F", f"image{k}=@{f};type=image/jpeg"]
        many = curl(form + [f"{url}/classify?topk={TOPK}"])["results"]
        if len(many) != N_IMAGES:
            fail(f"{len(many)} results for {N_IMAGES} images")
        worst = 0.0
        for i, f in enumerate(files):
            one = curl(["-H", "Content-Type: image/jpeg", "--data-binary", f"@{f}",
                        f"{url}/classify?topk={TOPK}"])["results"]
            if len(one) != 1:
                fail(f"{f}: {len(one)} results for one image")
            worst = max(worst, same(i, f, many[i], one[0]))
        print(f"{N_IMAGES} images: the multipart answer equals the single answers "
              f"(largest probability difference {worst:.3g})")
    finally:
        rc = srv.stop()
        srv.remove_log()
        if rc is None:
            fail("server did not stop on SIGTERM")
    if rc != 0:
        fail(f"server exited with {rc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
