#!/usr/bin/python3
"""test_faults_http.py - the server paths that no request can provoke, made
to happen with an LD_PRELOAD shim (fault_dnnl.c) in a real server on
127.0.0.1, with the seeded 2-class ResNet-18:

1. The 500 path: while oneDNN fails, POST /classify answers 500 with the
   JSON error {"code": "internal_error"} naming the failing oneDNN call, and
   counts it in resnetd_http_requests_total{code="500"}; once oneDNN works
   again the same photo is answered 200 with the answer it had before.
2. A drain that times out: with oneDNN slowed to 20 ms a primitive, 64
   images queued by two requests, then SIGTERM with drain_timeout_s 1: the
   images the engine did not reach are answered 503 "server shutting down",
   and resnetd_queue_dropped_total{reason="shutdown"} (read on a kept-alive
   connection while a never-ending upload keeps the draining server up)
   equals their number.

   test_faults_http.py RESNETD_BIN FAULT_SHIM SMALL_MODEL
Standard library only; every wait is bounded.
"""
import http.client
import json
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time

import server_harness
from server_harness import check, failures

PHOTO = "/usr/share/darknet/data/dog.jpg"


class Server(server_harness.Server):
    """resnetd serve on a free loopback port with the shim preloaded."""

    def __init__(self, binary, shim, model, fault_dir, *flags):
        env = server_harness.clean_env(LD_PRELOAD=shim, RESNETD_FAULT_DIR=fault_dir)
        # the shim comes before ASan's runtime in a sanitized build
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
        try:
            super().__init__(binary, model, *flags, env=env, name="faults", wait_s=120)
        except server_harness.StartError as e:
            sys.exit(f"test_faults_http.py: FAIL: {e}")

    def http_connection(self):
        return http.client.HTTPConnection(server_harness.HOST, self.port, timeout=120)


def call(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.read()


def classify(srv, body, ctype="image/jpeg"):
    c = srv.http_connection()
    try:
        return call(c, "POST", "/classify?topk=2", body, {"Content-Type": ctype})
    finally:
        c.close()


def metric(text, name, labels):
    m = re.search(re.escape(name + "{" + labels + "}") + r" (\S+)", text)
    return float(m.group(1)) if m else None


def check_500(binary, shim, model, faults):
    print("oneDNN failing: the 500 path", flush=True)
    srv = Server(binary, shim, model, faults)
    try:
        photo = open(PHOTO, "rb").read()
        st, good = classify(srv, photo)
        check(st == 200, f"before the fault: {st} {good[:200]!r}")
        open(os.path.join(faults, "fail"), "w").close()
        st, data = classify(srv, photo)
        os.unlink(os.path.join(faults, "fail"))
        err = json.loads(data).get("results", [{}])[0].get("error", {}) if st == 500 else {}
        print(f"  while failing: {st} {data[:240]!r}", flush=True)
        check(st == 500 and err.get("code") == "internal_error"
              and "dnnl_primitive_execute" in err.get("message", ""),
              f"oneDNN failure answered {st} {data[:300]!r}")
        c = srv.http_connection()
        text = call(c, "GET", "/metrics")[1].decode()
        c.close()
        n = metric(text, "resnetd_http_requests_total", 'endpoint="/classify",code="500"')
        check(n == 1, f'resnetd_http_requests_total{{code="500"}} is {n}, not 1')
        st, again = classify(srv, photo)
        check(st == 200 and [r["predictions"] for r in json.loads(again)["results"]] ==
              [r["predictions"] for r in json.loads(good)["results"]],
              f"after the fault: {st} {again[:200]!r}")
    finally:
        rc = srv.stop()
    check(rc == 0, f"exit status {rc} after the 500s")


def multipart(photo, n):
    boundary = "faultsboundary"
    parts = [(f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
              f"filename=\"{i}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode() + photo + b"\r\n"
             for i in range(n)]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), \
        f"multipart/form-data; boundary={boundary}"


def check_drain_drops(binary, shim, model, faults):
    print("a drain that times out: images dropped with reason shutdown", flush=True)
    srv = Server(binary, shim, model, faults, "--drain-timeout-s", "1",
                 "--max-queue-length", "64", "--max-images-per-request", "32")
    answers = []
    try:
        body, ctype = multipart(open(PHOTO, "rb").read(), 32)
        kept = srv.http_connection()
        check(call(kept, "GET", "/metrics")[0] == 200, "/metrics before the drain")
        open(os.path.join(faults, "slow"), "w").close()
        senders = [threading.Thread(target=lambda: answers.append(classify(srv, body, ctype)))
                   for _ in range(2)]
        for t in senders:
            t.start()
        deadline = time.monotonic() + 30  # until both requests' images are queued
        while time.monotonic() < deadline:
            text = call(kept, "GET", "/metrics")[1].decode()
            depth = max(float(v) for v in
                        re.findall(r"^resnetd_queue_depth(?:\{[^}]*\})? (\S+)$", text, re.M))
            if depth >= 48:
                break
            time.sleep(0.05)
        # an upload that never ends keeps the draining server up after the
        # drop (it waits for in-flight requests up to a second past the
        # drain timeout), so the counter can be read once the answers are in
        held = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        held.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                     b"Content-Length: 1000\r\n\r\n" + b"\xff" * 10)
        time.sleep(0.2)
        srv.proc.send_signal(signal.SIGTERM)
        for t in senders:
            t.join(60)
        text = call(kept, "GET", "/metrics")[1].decode()
        kept.close()
        held.close()
    finally:
        try:
            os.unlink(os.path.join(faults, "slow"))
        except FileNotFoundError:
            pass
        srv.stop()
    results = [r for st, data in answers if st in (200, 503)
               for r in json.loads(data).get("results", [])]
    shut = [r for r in results if "server shutting down" in r.get("error", {}).get("message", "")]
    ran = [r for r in results if "predictions" in r]
    print(f"  {len(ran)} images answered, {len(shut)} dropped by the drain", flush=True)
    check(len(results) == 64 and len(ran) + len(shut) == 64,
          f"answers: {[(st, data[:120]) for st, data in answers]}")
    check(len(shut) > 0, "no image was left to drop: the drain did not time out")
    n = metric(text, "resnetd_queue_dropped_total", 'reason="shutdown"')
    check(n == len(shut), f'resnetd_queue_dropped_total{{reason="shutdown"}} is {n}, '
                          f"{len(shut)} images were answered so")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    binary, shim, model = sys.argv[1:]
    for path in (binary, shim, model, PHOTO):
        if not os.path.exists(path):
            sys.exit(f"test_faults_http.py: FAIL: {path} is missing")
    with tempfile.TemporaryDirectory(prefix="resnetd-faults.") as faults:
        check_500(binary, shim, model, faults)
        check_drain_drops(binary, shim, model, faults)
    if failures:
        sys.exit(f"test_faults_http.py: {len(failures)} failure(s)")
    print("test_faults_http.py: all checks passed")


if __name__ == "__main__":
    main()
