#!/usr/bin/env python3
"""int8_agreement.py - does INT8 give the same answers as FP32?

Calibrates MODEL on the JPEGs in --calib (`resnetd calibrate`), classifies the
JPEGs in --eval with both precisions (`resnetd classify --topk 5`), and prints
how often the top-1 classes agree and how often the top-5 sets share at least
4 classes. Exits 1 when either figure is below its threshold (--min-top1,
--min-top5), so that it serves as a test; the photo sets must be disjoint.
With --serve-check it then serves the calibrated model with --precision int8
on 127.0.0.1 and checks that POST /classify gives classify's INT8 answer and
that /v2/models/{name} and /metrics report the precision, and that calibrate
and INT8 without calibration fail as documented (MODEL must be uncalibrated).

  tools/int8_agreement.py --resnetd build/server/resnetd --model models/resnet50.safetensors \\
      --calib PHOTOS/calib --eval PHOTOS/eval [--work DIR] [--method mse] [--count N]
      [--min-top1 0.99] [--min-top5 0.97] [--report-only] [--json OUT]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import types
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import soak  # noqa: E402  (its Server class runs resnetd serve)


def jpegs(folder):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.lower().endswith((".jpg", ".jpeg")) and not f.startswith("."))


def classify(resnetd, model, precision, files, recheck):
    """{basename: [top-5 class indices]} from `resnetd classify`, and how many
    images INT8 rechecked in FP32."""
    out = subprocess.run([resnetd, "classify", "--model", model, "--precision", precision,
                          "--topk", "5", "--int8-recheck", str(recheck)] + files,
                         check=False, capture_output=True, text=True)
    doc = json.loads(out.stdout)
    m = re.search(r"int8: (\d+) of \d+ images rechecked", out.stderr)
    got = {}
    for r in doc["results"]:
        if "predictions" not in r:
            sys.exit(f"int8_agreement: {precision}: {r.get('filename')}: {r.get('error')}")
        got[os.path.basename(r["filename"])] = [p["index"] for p in r["predictions"]]
    return got, int(m.group(1)) if m else 0


def get(port, path, body=None, ctype=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                 headers={"Content-Type": ctype} if ctype else {})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read().decode()


def serve_check(resnetd, model, photo, want_top1, work):
    """The real server in INT8: /classify answers as classify did, and the
    precision shows in the model metadata and the metrics."""
    args = types.SimpleNamespace(bin=resnetd, model=model, max_batch_size=8, startup_timeout=60,
                                 serve_extra=["--precision", "int8"])
    srv = soak.Server(args, work)
    try:
        with open(photo, "rb") as f:
            doc = json.loads(get(srv.port, "/classify", f.read(), "image/jpeg"))
        top1 = doc["results"][0]["predictions"][0]["index"]
        meta = json.loads(get(srv.port, "/v2"))
        name = doc["model"]
        params = json.loads(get(srv.port, f"/v2/models/{name}")).get("parameters", {})
        metrics = get(srv.port, "/metrics")
        problems = []
        if top1 != want_top1:
            problems.append(f"/classify top-1 {top1}, classify said {want_top1}")
        if params.get("precision") != "int8":
            problems.append(f"/v2/models/{name} parameters {params}")
        if 'precision="int8"' not in metrics:
            problems.append("/metrics has no resnetd_model_info with precision=\"int8\"")
        if srv.stop(30) != 0:
            problems.append("the server did not exit 0 on SIGTERM")
        print(f"  serve --precision int8 ({meta['name']} {meta['version']}): "
              + ("; ".join(problems) if problems else "/classify, /v2/models and /metrics agree"))
        return not problems
    finally:
        srv.kill()


def cli_checks(resnetd, model, work):
    """Usage errors of calibrate (exit 2), an empty folder (1), and INT8 on a
    model without calibration (1, pointing at resnetd calibrate)."""
    empty = os.path.join(work, "empty")
    os.makedirs(empty, exist_ok=True)
    cases = [([resnetd, "calibrate", "--model", model], 2, "required"),
             ([resnetd, "calibrate", "--model", model, "--images", empty, "--out",
               os.path.join(work, "x.safetensors")], 1, "no .jpg or .jpeg files"),
             ([resnetd, "calibrate", "--model", model, "--images", empty, "--out", "x",
               "--method", "kl"], 2, "bad value 'kl' for --method"),
             ([resnetd, "classify", "--model", model, "--precision", "int8", "x.jpg"], 1,
              "resnetd calibrate")]
    problems = []
    for cmd, want_rc, want_text in cases:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
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
    ap.add_argument("--int8-recheck", type=float, default=3,
                    help="serve's int8_recheck (0 = pure INT8, no FP32 rechecks)")
    ap.add_argument("--min-top1", type=float, default=0.99)
    ap.add_argument("--min-top5", type=float, default=0.97)
    ap.add_argument("--report-only", action="store_true", help="print, never fail")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--serve-check", action="store_true",
                    help="then check the real server in INT8 (see above)")
    a = ap.parse_args()

    calib, evals = jpegs(a.calib), jpegs(a.eval)
    if not calib or not evals:
        sys.exit(f"int8_agreement: no JPEGs in {a.calib if not calib else a.eval}")
    shared = {os.path.basename(f) for f in calib} & {os.path.basename(f) for f in evals}
    if shared:
        sys.exit(f"int8_agreement: calibration and evaluation share {sorted(shared)[:3]}")
    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or tmp
        os.makedirs(work, exist_ok=True)
        name = os.path.splitext(os.path.basename(a.model))[0]
        calibrated = os.path.join(work, f"{name}-int8-{a.method}.safetensors")
        subprocess.run([a.resnetd, "calibrate", "--model", a.model, "--images", a.calib,
                        "--count", str(a.count), "--method", a.method, "--out", calibrated],
                       check=True)
        fp32, _ = classify(a.resnetd, calibrated, "fp32", evals, a.int8_recheck)
        int8, rechecked = classify(a.resnetd, calibrated, "int8", evals, a.int8_recheck)
        served = not a.serve_check or (
            serve_check(a.resnetd, calibrated, evals[0], int8[os.path.basename(evals[0])][0], work)
            and cli_checks(a.resnetd, a.model, work))

    n = len(fp32)
    top1 = sum(fp32[k][0] == int8[k][0] for k in fp32)
    top5 = sum(len(set(fp32[k]) & set(int8[k])) >= 4 for k in fp32)
    differ = sorted(k for k in fp32 if fp32[k][0] != int8[k][0])
    figures = {"model": a.model, "method": a.method, "calibration_images": min(len(calib), a.count),
               "evaluation_images": n, "top1_agree": top1, "top5_overlap_4of5": top5,
               "top1_rate": top1 / n, "top5_rate": top5 / n, "top1_differ": differ,
               "int8_recheck": a.int8_recheck, "rechecked_in_fp32": rechecked}
    print(f"{name}: {a.method} calibration on {figures['calibration_images']} images, "
          f"{n} evaluation images, int8_recheck {a.int8_recheck:g}: "
          f"{rechecked} rechecked in FP32 ({100 * rechecked / n:.1f}%)")
    print(f"  top-1 agrees          {top1}/{n} = {100 * top1 / n:.1f}%  (need {100 * a.min_top1:g}%)")
    print(f"  top-5 shares >= 4     {top5}/{n} = {100 * top5 / n:.1f}%  (need {100 * a.min_top5:g}%)")
    if differ:
        print("  top-1 differs on: " + ", ".join(differ))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(figures, f, indent=1)
    ok = top1 / n >= a.min_top1 and top5 / n >= a.min_top5
    return 0 if served and (ok or a.report_only) else 1


if __name__ == "__main__":
    sys.exit(main())
