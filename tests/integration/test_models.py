#!/usr/bin/python3
"""test_models.py - model-server behaviour of the real `resnetd serve` on
127.0.0.1: warm-up before ready (issue 14).

Usage: test_models.py RESNETD_BINARY MODEL

Warm-up: the server is polled until /readyz answers 200; the very first
/classify after that must report an inference time (timings_ms.inference)
within 3x the median of the next 20 plus 5 ms (without the warm-up the first
request builds the oneDNN plans and takes several times longer), and
/metrics must export resnetd_model_warmup_seconds > 0. The figures are
printed. Standard library only; every request has a timeout and the server is
killed on any failure.
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

HOST = "127.0.0.1"
PHOTO = "/usr/share/darknet/data/dog.jpg"
TIMEOUT = 120.0
START_TIMEOUT = 300.0


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def get(port, path):
    try:
        with urllib.request.urlopen("http://%s:%d%s" % (HOST, port, path), timeout=TIMEOUT) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def post(port, path, body, ctype):
    req = urllib.request.Request("http://%s:%d%s" % (HOST, port, path), data=body,
                                 headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def start(binary, model, extra=()):
    port = free_port()
    proc = subprocess.Popen([binary, "serve", "--model", model, "--port", str(port),
                             "--http-threads", "2"] + list(extra),
                            stdout=subprocess.DEVNULL, stderr=sys.stderr)
    return proc, port


def wait_ready(proc, port):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("resnetd exited with %d before ready" % proc.returncode)
        try:
            status, _ = get(port, "/readyz")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError("not ready within %d s" % START_TIMEOUT)


def classify_ms(port, jpeg):
    status, body = post(port, "/classify", jpeg, "image/jpeg")
    assert status == 200, (status, body[:200])
    doc = json.loads(body)
    t = doc["results"][0]["timings_ms"]
    return float(t["inference"])


def test_warmup(binary, model):
    jpeg = open(PHOTO, "rb").read()
    proc, port = start(binary, model)
    try:
        wait_ready(proc, port)
        first = classify_ms(port, jpeg)
        rest = [classify_ms(port, jpeg) for _ in range(20)]
        med = statistics.median(rest)
        print("warm-up: first inference %.2f ms, median of next 20 %.2f ms (max %.2f)"
              % (first, med, max(rest)))
        status, metrics = get(port, "/metrics")
        assert status == 200
        line = [l for l in metrics.decode().splitlines()
                if l.startswith("resnetd_model_warmup_seconds ")]
        assert line, "resnetd_model_warmup_seconds missing from /metrics"
        warm = float(line[0].split()[1])
        print("resnetd_model_warmup_seconds %.3f" % warm)
        assert warm > 0, "warm-up gauge is 0"
        assert first <= 3 * med + 5, "first request %.2f ms > 3 x %.2f + 5 ms" % (first, med)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "exit status %d" % proc.returncode


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    binary, model = sys.argv[1], sys.argv[2]
    test_warmup(binary, model)
    print("ok")


if __name__ == "__main__":
    main()
