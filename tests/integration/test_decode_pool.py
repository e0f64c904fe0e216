#!/usr/bin/python3
"""test_decode_pool.py - images decode on the decode pool, not on the HTTP
threads, one request bounded to max_decodes_per_request decoders; and each
request's server CPU time is counted. Against the real binary on 127.0.0.1.

1. Expensive images do not hold the server: with --decode-threads 3
   --max-decodes-per-request 1 and one HTTP thread (so that where the
   decodes run decides, not how libmicrohttpd spreads connections), two clients each send a multipart request of
   N_SLOW slow but accepted JPEGs (test_hostile_load.py's standard 10-scan
   arithmetic progressive 6000x6000, ~0.5 s of decoding each, made in this
   run). While both decode, /healthz is asked every 50 ms (every answer 200,
   the slowest under PROBE_BOUND_S) and a normal client sends dog.jpg to
   /classify one after another: its p50 must stay within P50_FACTOR (5) times its
   idle p50 and its slowest within MAX_FACTOR times, and the two slow
   requests must still answer 200. Decoding on the
   HTTP threads (the pool bypassed) holds both of them for seconds; without
   the per-request bound the two slow requests take every decoder, and the
   normal request waits for a slow image to finish.
2. CPU time per request: N_CPU sequential dog.jpg requests each log cpu_ms
   > 0; resnetd_cpu_seconds_total{part} grows in every part, by the sum of
   the logged cpu_ms (within CPU_SUM_TOL), and that sum is between
   CPU_MIN_SHARE and 1.0 (plus slack) of the process's CPU time over the same
   requests (/proc/PID/stat), so no part is lost or counted twice; the
   resnetd_request_cpu_seconds histogram counts every request.

   test_decode_pool.py RESNETD_BIN MODEL
Needs /usr/bin/python3 with PIL, and jpegtran. Loopback only; every wait is
bounded.
"""
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile_common as hc  # noqa: E402  (the server, timed requests)
import hostile_fixtures as hf  # noqa: E402  (the slow JPEG, multipart)
import test_hostile_load as hl  # noqa: E402  (the prober, a normal client's p50)

N_SLOW = 4            # slow images per expensive request
P50_FACTOR = 5        # normal client's p50 while two expensive requests decode, vs idle:
                      # 2-3.1x observed (the two slow decodes share the 2 cores; 3.1 under
                      # ASan), 10-12x with the per-request bound removed, 100x+ with no pool
MAX_FACTOR = 6        # its slowest request, vs the idle p50 (waiting for a slow decode: ~12)
PROBE_BOUND_S = 1.0   # slowest /healthz meanwhile (HTTP threads held: seconds)
N_NORMAL = 8          # normal requests measured under load
N_CPU = 20            # requests of the CPU-time check
CPU_SUM_TOL = 0.02    # counters vs the logged cpu_ms, relative
CPU_MIN_SHARE = 0.8   # counted CPU vs the process's CPU over the same requests
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print(f"  FAIL: {msg}", flush=True)
    return cond


def metric(text, name, labels=""):
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


def metrics(port):
    status, data, _ = hc.request(port, "GET", "/metrics")
    return data.decode() if status == 200 else ""


def process_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def expensive_requests(binary, model, slow, photo):
    print(f"two requests of {N_SLOW} slow images; /healthz and a normal client meanwhile",
          flush=True)
    srv = hc.Server(binary, model, "--decode-threads", "3", "--max-decodes-per-request", "1",
                    "--http-threads", "1", "--request-timeout-ms", "60000")
    try:
        hc.request(srv.port, "POST", "/classify", photo, "image/jpeg")  # warm
        idle = hl.normal_p50(srv.port, photo, 9)
        body, ctype = hf.multipart([slow] * N_SLOW)
        slow_answers = []

        def slow_client():
            status, data, dt = hc.request(srv.port, "POST", "/classify", body, ctype, timeout=120)
            slow_answers.append((status, dt, data[:200]))

        clients = [threading.Thread(target=slow_client, daemon=True) for _ in range(2)]
        for c in clients:
            c.start()
        time.sleep(0.5)  # both are decoding now
        prober = hl.Prober(srv.port)
        prober.start()
        normal = []
        for _ in range(N_NORMAL):
            if not any(c.is_alive() for c in clients):
                break
            status, _, dt = hc.request(srv.port, "POST", "/classify", photo, "image/jpeg")
            normal.append((status, dt))
        still = sum(c.is_alive() for c in clients)
        prober.finish("two expensive requests")
        for c in clients:
            c.join(120)
        worst = max((dt for _, dt in prober.answers), default=0)
        check(worst < PROBE_BOUND_S, f"slowest /healthz {worst:.2f} s (bound {PROBE_BOUND_S} s)")
        print(f"  slow requests: {[(s, round(dt, 2)) for s, dt, _ in slow_answers]}; "
              f"{still} still decoding after the normal client's {len(normal)} requests",
              flush=True)
        check(len(slow_answers) == 2 and all(s == 200 for s, _, _ in slow_answers),
              f"the slow requests answered {slow_answers}")
        check(len(normal) >= 3, f"only {len(normal)} normal requests while the slow ones decoded")
        check(all(s == 200 for s, _ in normal), f"normal client: {normal}")
        under = statistics.median(dt for _, dt in normal) if normal else float("inf")
        print(f"  normal client p50: idle {idle * 1000:.1f} ms, during {under * 1000:.1f} ms "
              f"(bound x{P50_FACTOR}); all: {[round(dt * 1000) for _, dt in normal]}", flush=True)
        check(under <= P50_FACTOR * idle,
              f"normal p50 {under * 1000:.1f} ms > {P50_FACTOR} x idle {idle * 1000:.1f} ms")
        slowest = max((dt for _, dt in normal), default=float("inf"))
        check(slowest <= MAX_FACTOR * idle,
              f"slowest normal request {slowest * 1000:.1f} ms > {MAX_FACTOR} x idle p50 "
              f"{idle * 1000:.1f} ms")
    finally:
        rc = srv.stop()
    check(rc == 0, f"resnetd exited {rc} after SIGTERM")


def cpu_time(binary, model, photo):
    print(f"CPU time of {N_CPU} requests", flush=True)
    srv = hc.Server(binary, model, access_log=True)
    parts = ("http", "decode", "inference")
    try:
        hc.request(srv.port, "POST", "/classify", photo, "image/jpeg")  # warm
        time.sleep(0.2)
        before = metrics(srv.port)
        lines0 = len(srv.text().splitlines())
        cpu0 = process_cpu_s(srv.proc.pid)
        for _ in range(N_CPU):
            status, _, _ = hc.request(srv.port, "POST", "/classify", photo, "image/jpeg")
            check(status == 200, f"/classify answered {status}")
        time.sleep(0.2)  # the last access line is written after the answer
        cpu1 = process_cpu_s(srv.proc.pid)
        after = metrics(srv.port)
        recs = [json.loads(l) for l in srv.text().splitlines()[lines0:]
                if '"path":"/classify"' in l]
        check(len(recs) == N_CPU, f"{len(recs)} access lines for {N_CPU} requests")
        cpu_ms = [r.get("cpu_ms", 0) for r in recs]
        check(all(c > 0 for c in cpu_ms), f"cpu_ms not > 0: {cpu_ms}")
        logged = sum(cpu_ms) / 1000
        grown = {p: metric(after, "resnetd_cpu_seconds_total", '{part="%s"}' % p) -
                 metric(before, "resnetd_cpu_seconds_total", '{part="%s"}' % p) for p in parts}
        counted = sum(grown.values())
        hist = (metric(after, "resnetd_request_cpu_seconds_count") -
                metric(before, "resnetd_request_cpu_seconds_count"))
        proc = cpu1 - cpu0
        print(f"  per request: cpu_ms median {statistics.median(cpu_ms):.1f}; parts "
              + ", ".join(f"{p} {grown[p] / N_CPU * 1000:.2f} ms" for p in parts)
              + f"; counted {counted:.3f} s, logged {logged:.3f} s, process {proc:.3f} s "
              f"(share {counted / proc if proc else 0:.2f})", flush=True)
        for p in parts:
            check(grown[p] > 0, f"resnetd_cpu_seconds_total{{part={p}}} did not grow")
        check(abs(counted - logged) <= CPU_SUM_TOL * logged + 0.002,
              f"counters grew {counted:.4f} s, access log says {logged:.4f} s")
        check(hist >= N_CPU, f"resnetd_request_cpu_seconds_count grew by {hist}")
        tick = 1 / os.sysconf("SC_CLK_TCK")
        check(CPU_MIN_SHARE * proc <= counted <= proc + 2 * tick,
              f"counted CPU {counted:.3f} s vs the process's {proc:.3f} s "
              f"(expected {CPU_MIN_SHARE}..1 of it)")
    finally:
        rc = srv.stop()
    check(rc == 0, f"resnetd exited {rc} after SIGTERM")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    binary, model = sys.argv[1], sys.argv[2]
    photo = open(hl.PHOTO, "rb").read()
    with tempfile.TemporaryDirectory(prefix="resnetd-pool.") as folder:
        slow = hf.make_slow(folder)
    only = os.environ.get("POOL_ONLY", "")
    if only in ("", "decode"):
        expensive_requests(binary, model, slow, photo)
    if only in ("", "cpu"):
        cpu_time(binary, model, photo)
    if failures:
        print(f"test_decode_pool.py: {len(failures)} failure(s)")
        return 1
    print("test_decode_pool.py: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
