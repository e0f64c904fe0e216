#!/usr/bin/env python3
"""precision_agreement.py - do BF16 and INT8 give the answers FP32 gives?

Calibrates MODEL on the JPEGs in --calib (`resnetd calibrate`, which holds out
every second image to measure the INT8 and BF16 error bounds), then classifies
the JPEGs in --eval (a disjoint set) with `resnetd classify` in FP32 and in
each fast mode:
  bf16        pure BF16 (no recheck)
  bf16+r      BF16 with the FP32 recheck, on the uncalibrated MODEL (the bound
              relative to each image's logits that ships with resnetd; what
              `--precision auto` runs on an AMX machine)
  bf16+rc     BF16 with the recheck, on the calibrated copy (measured bound)
  int8        pure INT8
  int8+r      INT8 with the recheck (calibrated bound)
For each it prints top-1 agreement with FP32, the largest |p - p_fp32| over
FP32's top-5 classes, and the share of images rechecked in FP32; it exits 1
when a pure mode's top-1 agreement is under its floor (--min-top1-bf16,
--min-top1-int8), a recheck mode reruns more images than its ceiling
(--max-recheck-bf16, --max-recheck-int8), or a mode named in --faithful misses
the faithful tier (top-1 equal to FP32 on every photo, every top-5
probability within --max-dp). It also checks that `resnetd bench --precision
auto` chose bf16 exactly when the effective ISA it reports has AMX. Where it
has not, oneDNN's BF16 convolutions may be its reference code (~20x slower
than FP32 with ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI), so the BF16 modes run on
the first --slow-bf16-photos photos only, and bf16+rc not at all.
--serve-check then serves MODEL with --precision bf16 and the calibrated copy
with --precision int8 on 127.0.0.1 (max_batch_size 1), posts --serve-photos
photos one by one, and checks that every /classify top-1 is FP32's, that
resnetd_{bf16,int8}_rechecked_total equals what `resnetd classify` rechecked
on the same photos one at a time (and the other counter stays 0), that
/v2/models/{name} and /metrics name the precision and the ISA, and that
calibrate and INT8 without calibration fail as documented.

  tools/precision_agreement.py --resnetd build/server/resnetd --model models/resnet50.safetensors \\
      --calib PHOTOS/calib --eval PHOTOS/eval [--work DIR] [--method percentile] [--count N]
      [--min-top1-bf16 F] [--min-top1-int8 F] [--max-recheck-bf16 S] [--max-recheck-int8 S]
      [--faithful bf16+r,bf16+rc] [--serve-check] [--report-only] [--json OUT]
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import types
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import soak  # noqa: E402  (its Server class runs resnetd serve)

MODES = {  # name: (precision, recheck, calibrated file)
    "bf16": ("bf16", 0, False), "bf16+r": ("bf16", 2, False), "bf16+rc": ("bf16", 2, True),
    "int8": ("int8", 0, True), "int8+r": ("int8", 2, True)}


def jpegs(folder):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.lower().endswith((".jpg", ".jpeg")) and not f.startswith("."))


def classify(resnetd, model, precision, files, recheck, extra=()):
    """{basename: {class index: probability}} over every class from `resnetd
    classify`, and how many images it rechecked in FP32."""
    out = subprocess.run([resnetd, "classify", "--model", model, "--precision", precision,
                          "--topk", "100000", "--int8-recheck", str(recheck), *extra] + files,
                         check=False, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"precision_agreement: classify {precision} failed: {out.stderr.strip()}")
    doc = json.loads(out.stdout)
    m = re.search(r"(int8|bf16): (\d+) of \d+ images rechecked", out.stderr)
    got = {}
    for r in doc["results"]:
        if "predictions" not in r:
            sys.exit(f"precision_agreement: {precision}: {r.get('filename')}: {r.get('error')}")
        got[os.path.basename(r["filename"])] = {p["index"]: p["probability"]
                                                for p in r["predictions"]}
    return got, int(m.group(2)) if m else 0


def auto_choice(resnetd, model):
    """(isa, what auto chose) from one `resnetd bench --precision auto` batch."""
    out = subprocess.run([resnetd, "bench", "--model", model, "--precision", "auto", "--batch",
                          "1", "--seconds", "0", "--warmup", "0"], check=True,
                         capture_output=True, text=True)
    doc = json.loads(out.stdout)
    return doc["isa"], doc["precision"]


def top(probs, k):
    return sorted(probs, key=lambda c: -probs[c])[:k]


def compare(fp32, fast):
    """Top-1 agreements, the photos that differ, and max |dp| over FP32's top 5."""
    agree, differ, max_dp = 0, [], 0.0
    for name, ref in fp32.items():
        got = fast[name]
        if top(ref, 1) == top(got, 1):
            agree += 1
        else:
            differ.append(name)
        for c in top(ref, 5):
            max_dp = max(max_dp, abs(ref[c] - got.get(c, 0.0)))
    return agree, differ, max_dp


def get(port, path, body=None, ctype=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                 headers={"Content-Type": ctype} if ctype else {})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read().decode()


def metric(text, name):
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else math.nan


def serve_check(resnetd, model, precision, photos, fp32, work):
    """The real server in a fast precision, max_batch_size 1, photos posted one
    by one: every top-1 is FP32's, and the rechecked counter equals what
    classify rechecked on the same photos one at a time."""
    _, want_rechecked = classify(resnetd, model, precision, photos, 2,
                                 ["--max-batch-size", "1"])
    args = types.SimpleNamespace(bin=resnetd, model=model, max_batch_size=1, startup_timeout=120,
                                 serve_extra=["--precision", precision])
    srv = soak.Server(args, work)
    problems = []
    try:
        for photo in photos:
            with open(photo, "rb") as f:
                doc = json.loads(get(srv.port, "/classify", f.read(), "image/jpeg"))
            got = doc["results"][0]["predictions"][0]["index"]
            want = top(fp32[os.path.basename(photo)], 1)[0]
            if got != want:
                problems.append(f"/classify {os.path.basename(photo)}: top-1 {got}, fp32 {want}")
        name = doc["model"]
        params = json.loads(get(srv.port, f"/v2/models/{name}")).get("parameters", {})
        metrics = get(srv.port, "/metrics")
        other = "int8" if precision == "bf16" else "bf16"
        counted = metric(metrics, f"resnetd_{precision}_rechecked_total")
        if want_rechecked == 0 and len(photos) >= 32:
            problems.append(f"classify rechecked none of {len(photos)} photos: nothing to count")
        if counted != want_rechecked:
            problems.append(f"resnetd_{precision}_rechecked_total {counted:g}, classify "
                            f"rechecked {want_rechecked} of the same {len(photos)} photos")
        if metric(metrics, f"resnetd_{other}_rechecked_total") != 0:
            problems.append(f"resnetd_{other}_rechecked_total is not 0")
        if params.get("precision") != precision or not params.get("isa"):
            problems.append(f"/v2/models/{name} parameters {params}")
        if f'precision="{precision}"' not in metrics:
            problems.append(f"/metrics has no resnetd_model_info with precision=\"{precision}\"")
        if f'resnetd_cpu_info{{isa="{params.get("isa")}"}} 1' not in metrics:
            problems.append("/metrics has no resnetd_cpu_info with the /v2 isa")
        if srv.stop(30) != 0:
            problems.append("the server did not exit 0 on SIGTERM")
        print(f"  serve --precision {precision} ({len(photos)} photos, {want_rechecked} "
              f"rechecked, isa {params.get('isa')}): "
              + ("; ".join(problems) if problems else "top-1 = fp32, counters, /v2 and /metrics agree"))
        return not problems
    finally:
        srv.kill()


def cli_checks(resnetd, model, work):
    """Usage errors of calibrate (exit 2), an empty folder (1), INT8 on a model
    without calibration (1, pointing at resnetd calibrate), and the warning of
    a calibration on too few images."""
    empty = os.path.join(work, "empty")
    os.makedirs(empty, exist_ok=True)
    cases = [([resnetd, "calibrate", "--model", model], 2, "required"),
             ([resnetd, "calibrate", "--model", model, "--images", empty, "--out",
               os.path.join(work, "x.safetensors")], 1, "no .jpg or .jpeg files"),
             ([resnetd, "calibrate", "--model", model, "--images", empty, "--out", "x",
               "--method", "kl"], 2, "bad value 'kl' for --method"),
             ([resnetd, "classify", "--model", model, "--precision", "int8", "x.jpg"], 1,
              "resnetd calibrate"),
             ([resnetd, "calibrate", "--model", model, "--images", "/usr/share/darknet/data",
               "--count", "7", "--out", os.path.join(work, "few.safetensors")], 0,
              "warning: only 3 images held out (7 used in all)")]
    problems = []
    for cmd, want_rc, want_text in cases:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode != want_rc or want_text not in r.stderr:
            problems.append(f"{' '.join(cmd[1:3])}: exit {r.returncode}, stderr {r.stderr.strip()!r}")
    print("  command-line errors: " + ("; ".join(problems) if problems else "as documented"))
    return not problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--resnetd", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--calib", required=True, help="folder of calibration JPEGs")
    ap.add_argument("--eval", required=True, help="folder of evaluation JPEGs")
    ap.add_argument("--work", help="folder for the calibrated model (default: a temporary one)")
    ap.add_argument("--method", default="percentile")
    ap.add_argument("--count", type=int, default=1000, help="calibration images at most")
    ap.add_argument("--modes", default=",".join(MODES), help="fast modes to run")
    ap.add_argument("--min-top1-bf16", type=float, default=0)
    ap.add_argument("--min-top1-int8", type=float, default=0)
    ap.add_argument("--max-recheck-bf16", type=float, default=1)
    ap.add_argument("--max-recheck-int8", type=float, default=1)
    ap.add_argument("--faithful", default="", help="modes that must meet the faithful tier")
    ap.add_argument("--max-dp", type=float, default=0.02)
    ap.add_argument("--serve-check", action="store_true", help="then check the real server")
    ap.add_argument("--serve-photos", type=int, default=48)
    ap.add_argument("--slow-bf16-photos", type=int, default=2)
    ap.add_argument("--report-only", action="store_true", help="print, never fail")
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()

    calib, evals = jpegs(a.calib), jpegs(a.eval)
    if not calib or not evals:
        sys.exit(f"precision_agreement: no JPEGs in {a.calib if not calib else a.eval}")
    shared = {os.path.basename(f) for f in calib} & {os.path.basename(f) for f in evals}
    if shared:
        sys.exit(f"precision_agreement: calibration and evaluation share {sorted(shared)[:3]}")
    modes = [m for m in a.modes.split(",") if m]
    faithful = [m for m in a.faithful.split(",") if m]
    for m in modes + faithful:
        if m not in MODES:
            sys.exit(f"precision_agreement: unknown mode {m} (know {', '.join(MODES)})")
    ok, figures = True, {"model": a.model, "method": a.method, "evaluation_images": len(evals),
                         "modes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or tmp
        os.makedirs(work, exist_ok=True)
        name = os.path.splitext(os.path.basename(a.model))[0]
        calibrated = os.path.join(work, f"{name}-int8-{a.method}.safetensors")
        cal = subprocess.run([a.resnetd, "calibrate", "--model", a.model, "--images", a.calib,
                              "--count", str(a.count), "--method", a.method, "--out", calibrated],
                             check=True, capture_output=True, text=True)
        print(cal.stderr.strip())
        fp32_all, _ = classify(a.resnetd, a.model, "fp32", evals, 0)
        isa, auto = auto_choice(a.resnetd, a.model)
        amx = isa.startswith("avx512_core_amx")
        print(f"{name}: {len(evals)} evaluation photos against FP32; effective ISA {isa}, "
              f"auto chose {auto}")
        if auto != ("bf16" if amx else "fp32"):
            print(f"  FAIL: auto chose {auto} on {isa}")
            ok = False
        figures["isa"] = isa
        for mode in modes:
            precision, recheck, use_cal = MODES[mode]
            if mode == "bf16+rc" and not amx:
                print(f"  {mode:8s} skipped: no AMX BF16 here, and bf16+r checks the same code")
                continue
            files = evals if amx or precision != "bf16" else evals[:a.slow_bf16_photos]
            fp32 = {os.path.basename(f): fp32_all[os.path.basename(f)] for f in files}
            n = len(fp32)
            got, rechecked = classify(a.resnetd, calibrated if use_cal else a.model, precision,
                                      files, recheck)
            agree, differ, max_dp = compare(fp32, got)
            share = rechecked / n
            problems = []
            floor = a.min_top1_bf16 if precision == "bf16" else a.min_top1_int8
            ceiling = a.max_recheck_bf16 if precision == "bf16" else a.max_recheck_int8
            if not recheck and agree / n < floor:
                problems.append(f"top-1 under the floor {100 * floor:g}%")
            if recheck and share > ceiling:
                problems.append(f"recheck share over the ceiling {100 * ceiling:g}%")
            if mode in faithful and (agree != n or max_dp > a.max_dp):
                problems.append(f"not faithful (top-1 must be {n}/{n}, max |dp| <= {a.max_dp:g})")
            print(f"  {mode:8s} top-1 {agree}/{n} = {100 * agree / n:5.1f}%  max |dp| {max_dp:.4f}  "
                  f"rechecked {rechecked} ({100 * share:.1f}%)"
                  + ("  FAIL: " + "; ".join(problems) if problems else "")
                  + (f"  differs on: {', '.join(differ[:6])}" if differ else ""))
            ok = ok and not problems
            figures["modes"][mode] = {"top1_agree": agree, "top1_rate": agree / n,
                                      "max_dp_top5": max_dp, "rechecked": rechecked,
                                      "rechecked_share": share, "top1_differ": differ}
        if a.serve_check:
            photos = evals[:a.serve_photos]
            bf16_photos = photos if amx else photos[:a.slow_bf16_photos]
            ok = serve_check(a.resnetd, a.model, "bf16", bf16_photos, fp32_all, work) and ok
            ok = serve_check(a.resnetd, calibrated, "int8", photos, fp32_all, work) and ok
            ok = cli_checks(a.resnetd, a.model, work) and ok
    if a.json:
        with open(a.json, "w") as f:
            json.dump(figures, f, indent=1)
    return 0 if ok or a.report_only else 1


if __name__ == "__main__":
    sys.exit(main())
