"""hostile_connections.py - test_hostile_load.py's attacks on connections
rather than decoding (groups "memory" and "probes"): uploads held against
max_buffered_body_bytes, idle sockets holding max_connections while probes
come, and heads and bodies trickled past header/body_timeout_s."""
import json
import re
import socket
import time

from hostile_common import CRLF, start, held_upload, read_answer, request
from server_harness import check

TRICKLE_BOUND_S = 6   # header/body_timeout_s 2 + the sweep and slack; never, unbounded


def buffered_budget(binary, model):
    """max_buffered_body_bytes 8 MiB: two uploads of 3.5 MB held open reserve
    7 MB; a third (Content-Length 3.5 MB) is answered 503 + Retry-After at
    its headers; a chunked upload that passes the rest of the budget gets 503
    once its chunks do; after the held ones close, an upload is accepted
    again (it gets a 4xx for its zero bytes, not 503). Before the budget, all
    were buffered: 60 such uploads took RSS from 107 to 1,025 MB."""
    print("attack: held uploads against max_buffered_body_bytes", flush=True)
    srv = start(binary, model, "--max-buffered-body-bytes", str(8 << 20))
    try:
        held = [held_upload(srv.port, 3_500_000) for _ in range(2)]
        time.sleep(0.3)
        third = held_upload(srv.port, 3_500_000)
        ans = read_answer(third)
        print(f"  third upload: {ans.split(CRLF)[0]!r}", flush=True)
        check(ans.startswith(b"HTTP/1.1 503"), f"an upload over the budget got {ans[:60]!r}")
        check(b"\r\nRetry-After: " in ans, "the 503 over the budget has no Retry-After")
        check(b"max_buffered_body_bytes" in ans, "the 503 does not name max_buffered_body_bytes")
        third.close()
        ch = held_upload(srv.port, 0, sent=2_000_000, chunked=True)
        ch.sendall(b"0\r\n\r\n")  # the end of the body: the answer comes then
        ans = read_answer(ch)
        print(f"  chunked upload past the budget: {ans.split(CRLF)[0]!r}", flush=True)
        check(ans.startswith(b"HTTP/1.1 503"), f"a chunked upload past the budget got {ans[:60]!r}")
        ch.close()
        for s in held:
            s.close()
        time.sleep(0.5)
        status, data, _ = request(srv.port, "POST", "/classify", b"\0" * 3_500_000, "image/jpeg")
        print(f"  after they closed: {status}", flush=True)
        check(400 <= status < 500 and status != 503 or status == 200,
              f"an upload after the held ones closed got {status} {data[:100]!r}")
    finally:
        rc = srv.stop()
    check(rc == 0, f"resnetd exited {rc} after SIGTERM (budget)")


def probes_over_limit(binary, model):
    """max_connections 8, all 8 held by idle sockets: /healthz and /readyz
    must still answer 200 (from the slots above the limit), while /metrics
    gets the over-limit 503. Before, the probes got 503 too."""
    print("attack: max_connections idle sockets, then probes", flush=True)
    srv = start(binary, model, "--max-connections", "8")
    try:
        held = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(8)]
        time.sleep(0.3)
        for path, want in (("/healthz", 200), ("/readyz", 200), ("/metrics", 503)):
            status, _, dt = request(srv.port, "GET", path, timeout=10)
            print(f"  GET {path} with 8 of 8 slots held: {status} in {dt * 1000:.1f} ms", flush=True)
            check(status == want, f"GET {path} over max_connections answered {status}, not {want}")
        for s in held:
            s.close()
    finally:
        rc = srv.stop()
    check(rc == 0, f"resnetd exited {rc} after SIGTERM (probes)")


def trickled(binary, model):
    """header_timeout_s 2, body_timeout_s 2: a client that sends a header line
    every 0.5 s (each byte restarts connection_timeout_s, 30 s) is dropped
    within TRICKLE_BOUND_S of its connect, as is one that sends a body byte
    every 0.5 s after its head; a normal request meanwhile is answered, and
    resnetd_request_wait_seconds counts the requests. Before, neither was ever
    dropped (258 such connections kept every endpoint at 503)."""
    print("attack: trickling head and body", flush=True)
    srv = start(binary, model, "--header-timeout-s", "2", "--body-timeout-s", "2",
                 access_log=True)
    try:
        for what in ("head", "body"):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            t0 = time.monotonic()
            if what == "body":
                s.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                          b"Content-Length: 1000\r\n\r\n")
            else:
                s.sendall(b"GET /healthz HTTP/1.1\r\n")
            dropped = None
            for i in range(int(TRICKLE_BOUND_S * 4)):
                try:
                    s.sendall(b"X-Pad-%d: 1\r\n" % i if what == "head" else b"\0")
                    s.settimeout(0.25)
                    if s.recv(4096) == b"":
                        dropped = time.monotonic() - t0
                        break
                except socket.timeout:
                    continue
                except OSError:
                    dropped = time.monotonic() - t0
                    break
                time.sleep(0.25)
            s.close()
            print(f"  trickled {what}: dropped after "
                  f"{'never' if dropped is None else '%.1f s' % dropped}", flush=True)
            check(dropped is not None, f"a client trickling its {what} was not dropped within "
                                       f"{TRICKLE_BOUND_S} s")
        status, _, _ = request(srv.port, "GET", "/healthz")
        check(status == 200, f"/healthz after the trickling clients: {status}")
        # time counts from accept: a request sent 1 s after its connect logs >= 1 s
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        time.sleep(1.0)
        s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        read_answer(s)
        s.close()
        total = None
        for _ in range(50):
            lines = [ln for ln in srv.text().splitlines() if '"path":"/readyz"' in ln]
            if lines:
                total = json.loads(lines[-1])["total_ms"]
                break
            time.sleep(0.1)
        print(f"  /readyz sent 1 s after connect: total_ms {total}", flush=True)
        check(total is not None and total >= 900, f"total_ms {total} does not count from accept")
        # ... and a kept-alive connection's later request from its request line
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        read_answer(s)
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\n")
        time.sleep(1.0)
        s.sendall(b"Host: x\r\nConnection: close\r\n\r\n")
        read_answer(s)
        s.close()
        total = None
        for _ in range(50):
            lines = [ln for ln in srv.text().splitlines() if '"path":"/v2/health/live"' in ln]
            if lines:
                total = json.loads(lines[-1])["total_ms"]
                break
            time.sleep(0.1)
        print(f"  a kept-alive connection's second request, its head sent over 1 s: total_ms "
              f"{total}", flush=True)
        check(total is not None and total >= 900,
              f"total_ms {total} of a later request does not count from its request line")
        _, text, _ = request(srv.port, "GET", "/metrics")
        m = re.search(rb"^resnetd_request_wait_seconds_count (\d+)", text, re.M)
        print(f"  resnetd_request_wait_seconds_count {m and m.group(1)}", flush=True)
        check(m is not None and int(m.group(1)) >= 2, "resnetd_request_wait_seconds not counted")
    finally:
        rc = srv.stop()
    check(rc == 0, f"resnetd exited {rc} after SIGTERM (trickle)")
