#!/usr/bin/python3
"""test_bad_requests.py - the bad-request suite: hundreds of generated hostile or
malformed requests against the real `resnetd serve` and the real default model
(models/resnet50.safetensors) on 127.0.0.1.

Usage: test_bad_requests.py RESNETD_BINARY [MODEL]

Each case states the status the README documents and checks the error body's
shape: {"error":{"code","message"}} on /classify and routing errors, KServe's
flat {"error":"message"} on the /v2 routes, and for the few protocol errors that
libmicrohttpd answers itself before resnetd sees the request (414, 431, 505,
malformed Content-Length or chunked encoding), the status only (README, "HTTP
API"). Every HEALTH_EVERY cases /healthz must answer. At the end a real request
(dog.jpg -> top-1 "malamute") must answer correctly, VmRSS must be within 10% of
where it stood after the warm-up, and SIGTERM must end the server with status 0
and no sanitizer report. Standard library only, plus PIL (python3-pil) and
jpegtran/cjpeg/djpeg (libjpeg-turbo-progs) to make CMYK and arithmetic-coded
JPEGs at test time. Every socket has a timeout and the server is killed on any
failure, so the test always stops by itself.

The cases live in bad_requests_images.py, bad_requests_kserve.py and
bad_requests_http.py, the raw HTTP they share in bad_requests_wire.py, and the
server start and stop in server_harness.py.
"""
import collections
import os
import random
import shutil
import signal
import sys
import tempfile
import time

import server_harness
from bad_requests_http import (framing, keepalive_abuse, methods_and_paths, oversized,
                               pipelining)
from bad_requests_images import (content_types, load_photos, multipart_cases, odd_images,
                                 patched_headers, random_bytes, read, topk_cases,
                                 truncated_jpegs, wrong_formats)
from bad_requests_kserve import kserve_binary, kserve_json, kserve_tensors, model_names
from bad_requests_wire import Case, Fail, MAX_BODY, MAX_IMAGES, NONE, PHOTOS, T, check_resp, request

HEALTH_EVERY = 10
START_TIMEOUT = 300.0    # model load (ASan is several times slower)


class Server(server_harness.Server):
    """resnetd serve with the cases' limits; under ASan, with a small
    quarantine."""

    def __init__(self, binary, model, args):
        env = server_harness.clean_env()
        self.asan = b"__asan_init" in open(binary, "rb").read()
        if self.asan:
            # ASan keeps freed blocks in a quarantine of up to 256 MB by default,
            # so RSS would climb by that much with no leak at all; a small one
            # keeps the RSS check meaningful while still catching use-after-free.
            prev = env.get("ASAN_OPTIONS", "")
            env["ASAN_OPTIONS"] = (prev + ":" if prev else "") + \
                "quarantine_size_mb=8:thread_local_quarantine_size_kb=256:allocator_release_to_os_interval_ms=100"
        super().__init__(binary, model, *args, env=env, name="bad", wait_s=START_TIMEOUT,
                         ready=r"(?:listening|accepting connections) on \S*:(\d+)")

    def wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Fail("resnetd exited with %d while loading:\n%s" % (self.proc.returncode, self.tail()))
            try:
                if request("GET", "/readyz", timeout=5).status == 200:
                    return
            except (OSError, Fail):
                pass
            time.sleep(0.2)
        raise Fail("/readyz never answered 200")


def build_cases(tools):
    """Every case, category by category; the order is fixed (the seeded generator depends on it)."""
    photos = load_photos(tools)
    rng = random.Random(20261127)
    cases = []

    def add(cat, name, status, shape, send, check=None):
        cases.append(Case(cat, name, status, shape, send, check))

    truncated_jpegs(add, photos)
    random_bytes(add, rng)
    wrong_formats(add, photos)
    odd_images(add, photos, tools)
    patched_headers(add, photos)
    content_types(add, photos)
    multipart_cases(add, photos)
    topk_cases(add, photos)
    methods_and_paths(add, photos)
    model_names(add)
    kserve_json(add, photos)
    kserve_tensors(add, photos)
    kserve_binary(add, photos)
    oversized(add, photos)
    framing(add)
    pipelining(add, photos)
    keepalive_abuse(add, photos, rng)
    return cases




def run_case(case):
    resp = case.send()
    if case.shape == NONE:
        return None
    if resp is None:
        raise Fail("no response")
    check_resp(resp, case.status, case.shape)
    if case.check:
        case.check(resp)
    return resp.status


def healthz():
    r = request("GET", "/healthz", timeout=30)
    if r.status != 200 or r.json() != {"status": "ok"}:
        raise Fail("/healthz answered %d %r" % (r.status, r.body[:200]))


def real_request(dog):
    r = request("POST", "/classify?topk=3", dog, {"Content-Type": "image/jpeg"})
    if r.status != 200:
        raise Fail("real request: %d %r" % (r.status, r.body[:300]))
    doc = r.json()
    label = doc["results"][0]["predictions"][0]["label"]
    if label != "malamute" or len(doc["results"][0]["predictions"]) != 3:
        raise Fail("real request: top-1 %r (wanted malamute): %r" % (label, r.body[:300]))
    return doc


def main():
    if len(sys.argv) < 2:
        print("usage: test_bad_requests.py RESNETD_BINARY [MODEL]", file=sys.stderr)
        return 2
    binary = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    model = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "..", "models", "resnet50.safetensors")
    if not os.path.isfile(model):
        print("FAIL: %s is missing; make it with: tools/fetch_model.sh --resnetd %s" % (model, binary),
              file=sys.stderr)
        return 1
    if not os.path.isfile(os.path.join(PHOTOS, "dog.jpg")):
        print("FAIL: %s/dog.jpg is missing (apt-get install darknet)" % PHOTOS, file=sys.stderr)
        return 1
    for tool in ("jpegtran", "cjpeg", "djpeg"):
        if not shutil.which(tool):
            print("FAIL: %s is missing (apt-get install libjpeg-turbo-progs)" % tool, file=sys.stderr)
            return 1

    # meson's timeout sends SIGTERM: unwind through the finally that kills the server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    srv = None
    tools = tempfile.mkdtemp(prefix="resnetd_bad_tools_")
    try:
        srv = Server(binary, model, ["--max-body-bytes", str(MAX_BODY),
                                     "--max-images-per-request", str(MAX_IMAGES),
                                     "--http-threads", "2", "--request-timeout-ms", "120000",
                                     "--connection-timeout-s", "10", "--max-queue-length", "16"])
        T.port = srv.port
        srv.wait_ready()
        dog = read(os.path.join(PHOTOS, "dog.jpg"))
        # warm-up: oneDNN builds the batch-1 plan and the allocators settle on the
        # first real requests, so the RSS baseline is taken after a few of them.
        T.model = real_request(dog)["model"]
        meta = request("GET", "/v2/models/%s" % T.model).json()
        T.input_hw = tuple(meta["inputs"][0]["shape"][2:4])
        for _ in range(3):
            real_request(dog)
        rss_start = srv.rss_kb()

        t0 = time.monotonic()
        cases = build_cases(tools)
        print("%d cases generated in %.1f s; server pid %d on port %d%s" %
              (len(cases), time.monotonic() - t0, srv.proc.pid, T.port, " (ASan build)" if srv.asan else ""))
        if len(cases) < 200:
            raise Fail("only %d cases generated" % len(cases))
        failures = []
        by_cat = collections.defaultdict(collections.Counter)
        t0 = time.monotonic()
        for i, case in enumerate(cases):
            try:
                got = run_case(case)
                by_cat[case.category][got if got is not None else "no answer"] += 1
            except (Fail, OSError, ValueError, KeyError) as e:
                failures.append("%s / %s: %s: %s" % (case.category, case.name, type(e).__name__, e))
                by_cat[case.category]["FAILED"] += 1
            if not srv.alive():
                raise Fail("resnetd died during case %s / %s:\n%s" % (case.category, case.name, srv.tail()))
            if (i + 1) % HEALTH_EVERY == 0:
                healthz()
        elapsed = time.monotonic() - t0

        healthz()
        real_request(dog)
        rss_end = srv.rss_kb()
        print("\n%-16s %5s  statuses" % ("category", "cases"))
        for cat, counts in by_cat.items():
            print("%-16s %5d  %s" % (cat, sum(counts.values()),
                                     ", ".join("%s x%d" % (k, v) for k, v in sorted(counts.items(), key=str))))
        print("%d cases in %.1f s; VmRSS %d kB after warm-up, %d kB at the end (%+.1f%%)" %
              (len(cases), elapsed, rss_start, rss_end, 100.0 * (rss_end - rss_start) / rss_start))
        if failures:
            print("\n%d FAILED:" % len(failures))
            for f in failures:
                print("  " + f)
        if rss_end > rss_start * 1.10:
            failures.append("VmRSS grew from %d kB to %d kB (> 10%%)" % (rss_start, rss_end))
            print("FAIL: " + failures[-1])

        status = srv.stop()
        log = srv.tail(100000)
        if status != 0:
            failures.append("resnetd exited with %r after SIGTERM" % status)
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in log:
                failures.append("sanitizer report in the server log: %s" % marker)
        if failures:
            print("FAIL: %d problems; server log %s, last lines:\n%s" % (len(failures), srv.log_path, srv.tail(30)))
            return 1
        print("PASS")
        os.unlink(srv.log_path)
        return 0
    except (Fail, server_harness.StartError) as e:
        print("FAIL: %s" % e)
        if srv:
            print("server log %s, last lines:\n%s" % (srv.log_path, srv.tail(30)))
        return 1
    finally:
        if srv:
            srv.kill()
        shutil.rmtree(tools, ignore_errors=True)




if __name__ == "__main__":
    sys.exit(main())
