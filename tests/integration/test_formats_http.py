#!/usr/bin/python3
"""test_formats_http.py - PNG and WebP through the real `resnetd serve` on
127.0.0.1, and its /metrics through Prometheus's own linter.

Usage: test_formats_http.py RESNETD_BINARY MODEL FIXTURE_DIR

tools/format_fixtures.py writes the PNG/WebP fixtures (made by PIL in this run)
into FIXTURE_DIR. Checks that:
- a PNG and a lossless WebP of the same pixels get identical answers on
  /classify (raw body with image/png, image/webp, or a JPEG Content-Type: the
  bytes decide), in multipart parts, and as KServe v2 BYTES;
- the APNG, animated WebP, oversized and zlib-bomb files get their 4xx with a
  message that names the problem;
- accept_png=false (env RESNETD_ACCEPT_PNG) refuses PNG with 400 and still
  takes WebP;
- after that traffic, every metric family the server exports appears and
  `promtool check metrics` (Debian package prometheus) reports nothing.
SIGTERM must end each server with status 0 and no sanitizer report. Every
socket has a timeout and the server is killed on any failure."""
import base64
import json
import os
import re
import shutil
import subprocess
import sys

import server_harness

TIMEOUT = 120.0
BOUNDARY = "resnetdformats"


class Fail(Exception):
    pass


class Server(server_harness.Server):
    """The seeded model as "fmt", with env_extra added to the environment."""

    def __init__(self, binary, model, env_extra):
        try:
            super().__init__(binary, model, "--model-name", "fmt", "--max-pixels", "40000000",
                             env=server_harness.clean_env(**env_extra), name="formats")
        except server_harness.StartError as e:
            raise Fail(str(e))

    def request(self, method, path, body=None, headers=None):
        status, _, data = super().request(method, path, body, headers, timeout=TIMEOUT)
        return status, data

    def classify(self, data, content_type):
        status, body = self.request("POST", "/classify?topk=5", data,
                                    {"Content-Type": content_type})
        return status, json.loads(body)

    def stop_clean(self):
        """SIGTERM: exit 0 and no sanitizer report in the log."""
        rc = self.stop()
        log = self.text()
        self.remove_log()
        report = "Sanitizer" in log or "runtime error" in log
        check(rc == 0 and not report, "SIGTERM: exit 0, no sanitizer report (rc %s)" % rc)


def predictions(doc):
    """[(index, probability)] of each result of a /classify answer."""
    return [[(p["index"], p["probability"]) for p in r["predictions"]] for r in doc["results"]]


def multipart(files):
    """A multipart body of (file name, bytes, content type) files."""
    return server_harness.multipart([(f"image{i}", name, ctype, data)
                                     for i, (name, data, ctype) in enumerate(files)], BOUNDARY)


def check(cond, what):
    if not cond:
        raise Fail(what)
    print("ok:", what)


def formats_on(srv, fx):
    png, webp = fx["fx_png_rgb.png"], fx["fx_webp_lossless.webp"]
    status, ref = srv.classify(png, "image/png")
    check(status == 200, "PNG with image/png: 200 (%s)" % ref)
    want = predictions(ref)
    for data, ctype, what in ((webp, "image/webp", "lossless WebP, image/webp"),
                              (png, "image/jpeg", "PNG sent as image/jpeg"),
                              (webp, "application/octet-stream", "WebP as octet-stream"),
                              (fx["fx_png_rgba.png"], "image/png", "RGBA PNG (alpha dropped)"),
                              (fx["fx_png_palette.png"], "image/png", "palette PNG")):
        status, doc = srv.classify(data, ctype)
        check(status == 200, "%s: 200 (%s)" % (what, doc))
        if "RGBA" not in what and "palette" not in what:
            check(predictions(doc) == want, "%s answers as the PNG does" % what)
    status, doc = srv.classify(fx["fx_png_rgba.png"], "image/png")
    check(predictions(doc) == want, "RGBA PNG (alpha dropped, not composited) answers as RGB")
    body = multipart([("a.png", png, "image/png"), ("b.webp", webp, "image/webp"),
                      ("c.webp", fx["fx_webp_lossy.webp"], "image/webp")])
    status, doc = srv.classify(body, "multipart/form-data; boundary=" + BOUNDARY)
    got = predictions(doc) if status == 200 else []
    # one batch of 3, so the figures may differ from the batch of 1 in the last bits
    check(len(got) == 3 and got[0] == got[1] and [i for i, _ in got[0]] == [i for i, _ in want[0]]
          and all(abs(p - q) < 1e-5 for (_, p), (_, q) in zip(got[0], want[0])),
          "multipart PNG + WebP parts: 200, the same answer for both")
    req = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2],
                       "data": [base64.b64encode(png).decode(), base64.b64encode(webp).decode()]}]}
    status, body = srv.request("POST", "/v2/models/fmt/infer", json.dumps(req),
                               {"Content-Type": "application/json"})
    check(status == 200, "KServe BYTES PNG + WebP: 200 (%s)" % body[:200])
    out = json.loads(body)["outputs"][0]
    n = out["shape"][1]
    probs = out["data"]
    check(probs[:n] == probs[n:], "KServe: the PNG and the WebP get the same probabilities")
    for name, code, words in (("fx_apng.png", 400, "APNG"), ("fx_anim.webp", 400, "animated WebP"),
                              ("fx_huge.png", 413, "100000x100000"),
                              ("fx_huge.webp", 413, "16383x16383"),
                              ("fx_bomb.png", 400, "decompression bomb"),
                              ("fx_cut_png_rgb.png", 400, "PNG")):
        status, doc = srv.classify(fx[name], "image/png")
        msg = doc.get("error", {}).get("message", "")
        check(status == code and words in msg, "%s: %d naming %r (%d %s)" % (name, code, words,
                                                                               status, msg))


def formats_off(srv, fx):
    status, doc = srv.classify(fx["fx_png_rgb.png"], "image/png")
    msg = doc.get("error", {}).get("message", "")
    check(status == 400 and "PNG images are turned off" in msg,
          "accept_png=false: PNG 400 (%d %s)" % (status, msg))
    status, doc = srv.classify(fx["fx_webp_lossy.webp"], "image/webp")
    check(status == 200, "accept_png=false: WebP still 200")


def families(text):
    return set(re.findall(r"^# TYPE (\S+) ", text, re.M))


def metrics_lint(srv):
    status, body = srv.request("GET", "/metrics")
    check(status == 200, "/metrics 200")
    text = body.decode()
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    with open(os.path.join(src, "server", "core", "metrics.c")) as f:
        exported = set(re.findall(r'"(resnetd_[a-z0-9_]+)"', f.read()))
    missing = exported - families(text)
    check(exported and not missing, "every family of metrics.c is exported (missing %s)" % missing)
    for fam in ("resnetd_decode_duration_seconds", "resnetd_request_duration_seconds"):
        count = re.search(r"^%s_count (\d+)" % fam, text, re.M)
        check(count and int(count.group(1)) > 0, "%s has observations" % fam)
    promtool = shutil.which("promtool")
    if not promtool:
        raise Fail("promtool missing (apt-get install prometheus)")
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(),
          "promtool check metrics: clean (rc %d) %s %s" % (r.returncode, r.stdout, r.stderr))


def main():
    binary, model, fx_dir = sys.argv[1:4]
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                          "format_fixtures.py")
    subprocess.run(["/usr/bin/python3", script, "--out", fx_dir], check=True,
                   stdout=subprocess.DEVNULL)
    fx = {}
    for name in os.listdir(fx_dir):
        if name.endswith((".png", ".webp")):
            with open(os.path.join(fx_dir, name), "rb") as f:
                fx[name] = f.read()
    srv = None
    try:
        srv = Server(binary, model, {})
        formats_on(srv, fx)
        metrics_lint(srv)
        first, srv = srv, None
        first.stop_clean()
        srv = Server(binary, model, {"RESNETD_ACCEPT_PNG": "false"})
        formats_off(srv, fx)
        last, srv = srv, None
        last.stop_clean()
    except Fail as e:
        print("FAIL:", e)
        if srv:
            srv.stop()
            print(srv.tail())
        return 1
    print("all format and metrics checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
