#!/usr/bin/python3
"""test_hostile_load.py - attacks that once took resnetd away from everyone, in
small, against the real binary on 127.0.0.1 (docs/reliability.md has the
figures before and after).

1. Scan-heavy JPEGs, made in this run: a flat 6000x6000 4:4:4 picture
   (36 Mpixel, inside max_pixels) re-coded by jpegtran -scans as one DC scan
   and one AC scan per component, whose AC scans are then repeated: 481 scans
   (arithmetic and Huffman, 3 and 4 components; libjpeg warns about none of
   them) and 61 scans that code the image 21 times over. Each must be refused
   with 413 and a message naming max_jpeg_scans / max_jpeg_scan_work, and the
   server's peak RSS must grow by less than RSS_BUDGET_MB over the attack
   (a decode of one of them pre-zeroes 210-290 MB of coefficients). The
   first is also sent as a KServe v2 BYTES input: 413 too.
2. Half-sent-and-closed connections: 600 clients send part of a request
   (the head of a POST with a Content-Length, or the head and part of the
   body) and close at once, in about 30 ms. In epoll mode libmicrohttpd left
   up to ~250 of them in CLOSE-WAIT until connection_timeout_s, over
   max_connections (256) when enough were stuck. /healthz must answer 200 again within SETTLE_S, then every
   endpoint does: /healthz, /readyz, /metrics, /v2/health/ready, and
   POST /classify 200.
3. During attack 1 and after attack 2's connections closed, a prober asks
   /healthz every 50 ms: every answer 200 (while 300 connections hold every
   slot, a probe is refused like the rest until a probe reserve exists: that
   is printed, not asserted). A normal client (dog.jpg on /classify, sequential) measures its p50 idle
   and during attack 1; the p50 under attack must stay within P50_FACTOR
   times the idle one. Latencies are printed.
4. Decodes nobody will read stop: a request of 32 accepted but slow images (a
   standard 10-scan arithmetic progressive 6000x6000, ~0.5 s each, ~16 s in
   all) whose client leaves after 1 s ends (access log) within STOP_BOUND_S
   of its start; the same request interrupted by SIGTERM 1 s in, with
   drain_timeout_s 2, lets the process exit within STOP_BOUND_S.

5. Token-dense KServe JSON (15.9 MB of `{},`, `[],`, `0,`): 413 before any
   tree, peak RSS growth under TREE_BUDGET_MB; a large body inside the count
   leaves the idle RSS within IDLE_BUDGET_MB (malloc_trim; printed only under
   ASan).
6. Held uploads against max_buffered_body_bytes 8 MiB: the upload past the
   budget gets 503 + Retry-After at its headers, a chunked one when it ends,
   and uploads are accepted again once the held ones close.
7. max_connections 8 held by idle sockets: /healthz and /readyz 200, /metrics 503.
8. header_timeout_s / body_timeout_s 2: a trickled head and a trickled body are
   dropped within TRICKLE_BOUND_S; a request sent 1 s after its connect logs
   total_ms >= 900 (counted from accept), and so does a kept-alive
   connection's second request whose head takes 1 s (counted from its request
   line); resnetd_request_wait_seconds counts.

   HOSTILE_ONLY=decode|memory|probes runs one group (1-4 | 5-6 | 7-8).

   test_hostile_load.py RESNETD_BIN [MODEL]   (MODEL: models/resnet50.safetensors)
   test_hostile_load.py --make DIR            (only write the crafted JPEGs)
The crafted JPEGs are made in hostile_fixtures.py, attacks 6-8 are in
hostile_connections.py, and the server and requests they share in
hostile_common.py and server_harness.py.
Needs /usr/bin/python3 with PIL and jpegtran (libjpeg-turbo-progs). Loopback only;
every loop and wait is bounded.
"""
import base64
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time

from hostile_common import request, start
from hostile_connections import buffered_budget, probes_over_limit, trickled
from hostile_fixtures import make_all, make_slow, multipart
from server_harness import check, failures

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHOTO = "/usr/share/darknet/data/dog.jpg"
RSS_BUDGET_MB = 100   # peak RSS growth over attack 1 (one baseline decode: +210..290 MB)
TREE_BUDGET_MB = 100  # peak RSS growth over a token-dense KServe JSON body (was +319..945 MB)
IDLE_BUDGET_MB = 64   # RSS held after a large request is freed
P50_FACTOR = 4        # normal client's p50 under attack vs idle
SETTLE_S = 2.0        # /healthz 200 again after the half-sent connections close
                      # (epoll mode: after connection_timeout_s, 30 s)
RECOVER_WAIT_S = 40   # how long to wait for it at most, to print the figure
N_HALF = 600          # over max_connections (256); 300 left too few stuck here
N_NORMAL = 15         # normal requests measured under attack
MAX_ROUNDS = 2000
N_SLOW = 32           # images of the slow request (max_images_per_request)
STOP_BOUND_S = 8      # 1 s + drain/decode_budget_ms headroom; unstopped it takes ~16 s or more


class Prober(threading.Thread):
    """GET /healthz every 50 ms until stopped; keeps every (status, seconds)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.answers, self.halt = port, [], threading.Event()

    def run(self):
        while not self.halt.is_set():
            status, _, dt = request(self.port, "GET", "/healthz", timeout=30)
            self.answers.append((status, dt))
            self.halt.wait(0.05)

    def finish(self, what):
        self.halt.set()
        self.join(60)
        bad = [a for a in self.answers if a[0] != 200]
        worst = max((dt for _, dt in self.answers), default=0)
        print(f"  /healthz during {what}: {len(self.answers)} probes, {len(bad)} not 200, "
              f"slowest {worst * 1000:.1f} ms", flush=True)
        check(self.answers and not bad, f"/healthz during {what}: {bad[:5]} of "
                                        f"{len(self.answers)} probes were not 200")


def normal_p50(port, jpeg, n):
    times = []
    for _ in range(n):
        status, _, dt = request(port, "POST", "/classify", jpeg, "image/jpeg")
        check(status == 200, f"a normal /classify answered {status}")
        times.append(dt)
    return statistics.median(times)


# ---- the attacks -----------------------------------------------------------

def scan_heavy(srv, crafted, photo):
    print("scan-heavy JPEGs", flush=True)
    idle = normal_p50(srv.port, photo, 15)
    rss0 = srv.peak_rss_mb()
    prober = Prober(srv.port)
    prober.start()
    stop = threading.Event()
    normal = []

    def normal_client():
        while not stop.is_set():
            status, _, dt = request(srv.port, "POST", "/classify", photo, "image/jpeg")
            normal.append((status, dt))

    client = threading.Thread(target=normal_client, daemon=True)
    client.start()
    bodies = [(name, open(path, "rb").read(), limit) for name, path, limit in crafted]
    # rounds until the normal client has N_NORMAL answers (bounded: MAX_ROUNDS)
    for round_no in range(MAX_ROUNDS):
        for name, body, limit in bodies:
            status, data, dt = request(srv.port, "POST", "/classify", body, "image/jpeg")
            text = data.decode(errors="replace")
            if round_no == 0:
                print(f"  {name}: {status} in {dt * 1000:.0f} ms: {text[:200]}", flush=True)
            check(status == 413 and limit in text,
                  f"{name}: expected 413 naming {limit}, got {status} {text[:200]}")
        if len(normal) >= N_NORMAL:
            break
    print(f"  {round_no + 1} rounds of {len(bodies)} crafted JPEGs", flush=True)
    # the same through KServe v2 BYTES
    status, data, _ = request(srv.port, "POST", "/classify", photo, "image/jpeg")
    model = json.loads(data)["model"]
    doc = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                       "data": [base64.b64encode(bodies[0][1]).decode()]}]}
    status, data, dt = request(srv.port, "POST", f"/v2/models/{model}/infer",
                               json.dumps(doc).encode(), "application/json")
    text = data.decode(errors="replace")
    print(f"  KServe BYTES {bodies[0][0]}: {status} in {dt * 1000:.0f} ms: {text[:160]}", flush=True)
    check(status == 413 and "max_jpeg_scans" in text,
          f"KServe BYTES {bodies[0][0]}: expected 413 naming max_jpeg_scans, got {status} {text[:200]}")
    stop.set()
    client.join(120)
    prober.finish("the scan-heavy JPEGs")
    rss1 = srv.peak_rss_mb()
    print(f"  peak RSS {rss0:.0f} -> {rss1:.0f} MB (budget +{RSS_BUDGET_MB} MB)", flush=True)
    check(rss1 - rss0 < RSS_BUDGET_MB,
          f"peak RSS grew by {rss1 - rss0:.0f} MB over the attack (budget {RSS_BUDGET_MB})")
    check(all(s == 200 for s, _ in normal), f"normal client under attack: {normal[:5]}")
    under = statistics.median(dt for _, dt in normal) if normal else float("inf")
    print(f"  normal client p50: idle {idle * 1000:.1f} ms, under attack {under * 1000:.1f} ms "
          f"({len(normal)} requests; bound x{P50_FACTOR})", flush=True)
    check(under <= P50_FACTOR * idle,
          f"normal p50 under attack {under * 1000:.1f} ms > {P50_FACTOR} x idle "
          f"{idle * 1000:.1f} ms")


def close_wait(port):
    """Server-side sockets of port in CLOSE-WAIT (/proc/net/tcp state 08)."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            n += cols[3] == "08" and int(cols[1].split(":")[1], 16) == port
    return n


def half_sent(srv, photo):
    print(f"{N_HALF} half-sent-and-closed connections", flush=True)
    head = (b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
            b"Content-Length: 100000\r\n\r\n")
    t0 = time.monotonic()
    for i in range(N_HALF):
        # the whole head, or the head and part of the body; closed at once, so
        # that the rest of the request and the FIN arrive together
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(head if i % 2 == 0 else head + photo[:5000])
    print(f"  sent and closed in {time.monotonic() - t0:.3f} s; {close_wait(srv.port)} server "
          f"sockets in CLOSE-WAIT", flush=True)
    t0 = time.monotonic()
    recovered = None
    while time.monotonic() - t0 < RECOVER_WAIT_S:
        status, _, _ = request(srv.port, "GET", "/healthz", timeout=10)
        if status == 200:
            recovered = time.monotonic() - t0
            break
        time.sleep(0.01)
    print(f"  /healthz 200 again {recovered if recovered is None else round(recovered, 3)} s "
          f"after they closed (bound {SETTLE_S} s)", flush=True)
    check(recovered is not None and recovered <= SETTLE_S,
          f"/healthz not 200 within {SETTLE_S} s of {N_HALF} half-sent connections closing "
          f"(recovered after {recovered} s)")
    prober = Prober(srv.port)
    prober.start()
    for method, path, body, want in [("GET", "/healthz", None, 200), ("GET", "/readyz", None, 200),
                                     ("GET", "/metrics", None, 200),
                                     ("GET", "/v2/health/ready", None, 200),
                                     ("POST", "/classify", photo, 200)]:
        status, data, dt = request(srv.port, method, path, body,
                                   "image/jpeg" if body else None, timeout=30)
        print(f"  {method} {path}: {status} in {dt * 1000:.1f} ms", flush=True)
        check(status == want, f"{method} {path} after {N_HALF} half-sent connections closed: "
                              f"{status} {data[:120]!r}")
    time.sleep(0.5)
    prober.finish("the time after the half-sent connections")


def send_and_leave(port, body, ctype, after_s):
    """Sends the whole request, then closes the socket after after_s."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + ctype.encode() +
              b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    time.sleep(after_s)
    s.close()


def stopped_decodes(binary, model, slow):
    print(f"a request of {N_SLOW} slow images: its client leaves; SIGTERM", flush=True)
    body, ctype = multipart([slow] * N_SLOW)
    srv = start(binary, model, access_log=True)
    try:
        send_and_leave(srv.port, body, ctype, 1.0)
        line, deadline = None, time.monotonic() + 120
        while line is None and time.monotonic() < deadline:
            line = next((l for l in srv.text().splitlines() if '"path":"/classify"' in l), None)
            time.sleep(0.1)
        total = json.loads(line)["total_ms"] / 1000 if line else None
        print(f"  the client left after 1 s; the request ended after {total} s "
              f"(bound {STOP_BOUND_S} s): {line}", flush=True)
        check(total is not None and total < STOP_BOUND_S,
              f"a request whose client left after 1 s ran {total} s (bound {STOP_BOUND_S} s)")
    finally:
        srv.stop()
    srv = start(binary, model, "--drain-timeout-s", "2")
    client = threading.Thread(target=request, args=(srv.port, "POST", "/classify", body, ctype, 120),
                              daemon=True)
    client.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    rc = srv.stop()
    took = time.monotonic() - t0
    print(f"  SIGTERM 1 s into it (drain_timeout_s 2): exit {rc} after {took:.2f} s "
          f"(bound {STOP_BOUND_S} s)", flush=True)
    check(rc is not None and took < STOP_BOUND_S,
          f"SIGTERM during the slow request: exit {rc} after {took:.1f} s (bound {STOP_BOUND_S} s)")
    client.join(60)


# ---- memory one request or many uploads can take -------------------------

def token_dense(srv, photo):
    """KServe JSON bodies of 15.9 MB that are all `{},`, `[],` or `0,`: each
    must be refused (4xx) with the peak RSS growing by less than
    TREE_BUDGET_MB (a jansson tree of them took +945, +703 and +319 MB). Then
    a body just inside the token bound (32 images' worth of `0,` less one
    value, 422): its tree is built and freed, and the idle RSS must come back
    within IDLE_BUDGET_MB of where it was before these bodies (malloc_trim)."""
    print("attack: token-dense KServe JSON bodies", flush=True)
    status, data, _ = request(srv.port, "POST", "/classify", photo, "image/jpeg")
    model = json.loads(data)["model"]
    path = f"/v2/models/{model}/infer"
    idle = srv.rss_mb()
    head = b'{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,224,224],"data":['
    for pattern in (b"{},", b"[],", b"0,"):
        body = head + pattern * ((15_900_000 - len(head)) // len(pattern)) + b"0]}]}"
        before = srv.peak_rss_mb()
        status, data, dt = request(srv.port, "POST", path, body, "application/json")
        grew = srv.peak_rss_mb() - before
        print(f"  {pattern.decode()!r} x {len(body) // len(pattern)}: {status} in {dt:.2f} s, "
              f"peak RSS +{grew:.0f} MB: {data[:160]!r}", flush=True)
        check(400 <= status < 500, f"token-dense {pattern!r} body answered {status}")
        check(grew < TREE_BUDGET_MB,
              f"token-dense {pattern!r} body grew peak RSS by {grew:.0f} MB (budget {TREE_BUDGET_MB})")
    n = 32 * 3 * 224 * 224 - 1
    body = (b'{"inputs":[{"name":"input","datatype":"FP32","shape":[32,3,224,224],"data":[' +
            b"0," * (n - 1) + b"0]}]}")
    status, data, dt = request(srv.port, "POST", path, body, "application/json")
    time.sleep(0.5)  # the request is freed after its answer is sent
    after = srv.rss_mb()
    print(f"  {n} values for a shape of {n + 1}: {status} in {dt:.2f} s; RSS {idle:.0f} MB "
          f"before, {after:.0f} MB after", flush=True)
    check(status == 422, f"{n} values for shape of {n + 1} answered {status}")
    if srv.sanitized():  # ASan's allocator keeps a quarantine and ignores malloc_trim
        print("  (sanitized build: the idle RSS is printed, not asserted)", flush=True)
    else:
        check(after - idle < IDLE_BUDGET_MB,
              f"RSS held {after - idle:.0f} MB after a large request (budget {IDLE_BUDGET_MB})")

def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--make":
        make_all(sys.argv[2])
        return 0
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    binary = sys.argv[1]
    model = sys.argv[2] if len(sys.argv) == 3 else os.path.join(SRC, "models/resnet50.safetensors")
    if not os.path.exists(model):
        sys.exit(f"test_hostile_load.py: FAIL: {model} is missing (run tools/fetch_model.sh)")
    photo = open(PHOTO, "rb").read()
    with tempfile.TemporaryDirectory(prefix="resnetd-hostile.") as folder:
        only = os.environ.get("HOSTILE_ONLY", "")  # e.g. "memory": run one group (development)
        if only in ("", "decode"):
            print("crafting JPEGs", flush=True)
            crafted = make_all(folder)
            slow = make_slow(folder)
        srv = start(binary, model)
        try:
            if only in ("", "decode"):
                scan_heavy(srv, crafted, photo)
                half_sent(srv, photo)
            if only in ("", "memory"):
                token_dense(srv, photo)
        finally:
            rc = srv.stop()
        check(rc == 0, f"resnetd exited {rc} after SIGTERM")
        if only in ("", "decode"):
            stopped_decodes(binary, model, slow)
        if only in ("", "memory"):
            buffered_budget(binary, model)
        if only in ("", "probes"):
            probes_over_limit(binary, model)
            trickled(binary, model)
    if failures:
        print(f"test_hostile_load.py: {len(failures)} failure(s)")
        return 1
    print("test_hostile_load.py: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
