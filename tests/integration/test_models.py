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
import statistics
import sys
import time

from server_harness import Server, request

PHOTO = "/usr/share/darknet/data/dog.jpg"
TIMEOUT = 120.0
START_TIMEOUT = 300.0
# Logged once the port is open, before the model is loaded and warmed up.
LISTENING = r"(?:listening|accepting connections) on \S*:(\d+)"


def get(port, path):
    status, _, body = request(port, "GET", path, timeout=TIMEOUT)
    return status, body


def post(port, path, body, ctype):
    status, _, data = request(port, "POST", path, body, {"Content-Type": ctype}, timeout=TIMEOUT)
    return status, data


def wait_ready(srv):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not srv.alive():
            raise AssertionError("resnetd exited with %d before ready" % srv.proc.returncode)
        try:
            status, _ = get(srv.port, "/readyz")
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
    srv = Server(binary, model, "--http-threads", "2", name="models", ready=LISTENING)
    port = srv.port
    try:
        wait_ready(srv)
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
        rc = srv.stop()
        srv.remove_log()
    assert rc == 0, "exit status %s" % rc


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    binary, model = sys.argv[1], sys.argv[2]
    test_warmup(binary, model)
    print("ok")


if __name__ == "__main__":
    main()
