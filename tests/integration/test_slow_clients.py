#!/usr/bin/python3
"""test_slow_clients.py - slow and greedy clients against the real resnetd.

1. With --connection-timeout-s 2: slowloris connections (the start of a
   request line, then the rest one byte at a time, each later than the timeout), connections that
   send POST /classify headers with a Content-Length and never the body, and
   connections that send nothing at all. The server must close every one of
   them (EOF or reset) before a generous bound, while other clients get correct
   200 answers meanwhile; the bodiless requests are logged as 499 and nothing
   stays in flight. Times are printed, never asserted beyond the bound.
2. With --max-connections 4: four keep-alive connections hold every slot;
   a fifth connection gets a clear refusal (503, Retry-After, Connection:
   close, a JSON error naming max_connections) and is closed, a POST over the
   limit likewise; the holders are still served; once one closes, a new
   connection is served again; resnetd_connections_refused_total counts the
   refusals and the log has the (rate-limited) warning.

   test_slow_clients.py RESNETD_BIN [MODEL]    (MODEL: models/resnet50.safetensors)
Standard library only; loopback only. Fails clearly when the model is missing.
"""
import http.client
import json
import os
import re
import socket
import sys
import threading
import time

from server_harness import check, failures, start_or_exit

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHOTO = "/usr/share/darknet/data/dog.jpg"
BOUND_S = 30  # "closed before a generous bound": 15x the timeout, for slow and sanitized builds


def start(binary, model, *flags):
    return start_or_exit("test_slow_clients.py", binary, model, "--http-threads", "2", *flags,
                         name="slow")


def classify(srv, body):
    """POST dog.jpg on a fresh connection: (status, top-1 label or None)."""
    status, _, data = srv.request("POST", "/classify?topk=1", body,
                                  {"Content-Type": "image/jpeg"}, timeout=120)
    label = json.loads(data)["results"][0]["predictions"][0]["label"] if status == 200 else None
    return status, label


def wait_closed(sock, t0):
    """Reads until the server closes: (seconds since t0, bytes read), or
    (None, bytes) if still open at the bound."""
    got = b""
    sock.settimeout(0.5)
    while time.monotonic() - t0 < BOUND_S:
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0, got
        if not chunk:
            return time.monotonic() - t0, got
        got += chunk
    return None, got


def slowloris(srv, interval, results, i):
    """Headers one byte at a time, `interval` s apart (> the timeout)."""
    request = b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nContent-Length: 10\r\n\r\n"
    s = srv.connect(BOUND_S)
    t0 = time.monotonic()
    sent = 20  # the start of the request line at once, the rest a byte at a time
    s.sendall(request[:sent])
    closed_at = None
    try:
        while time.monotonic() - t0 < BOUND_S and sent < len(request):
            try:
                s.sendall(request[sent:sent + 1])
            except (ConnectionResetError, BrokenPipeError):
                closed_at = time.monotonic() - t0
                break
            sent += 1
            s.settimeout(interval)
            try:
                if s.recv(4096) == b"":
                    closed_at = time.monotonic() - t0
                    break
            except socket.timeout:
                continue  # still open: trickle the next byte
            except ConnectionResetError:
                closed_at = time.monotonic() - t0
                break
    finally:
        s.close()
    results[i] = ("slowloris", closed_at, sent)


def no_body(srv, results, i):
    """Complete headers announcing a body that never comes."""
    s = srv.connect(BOUND_S)
    t0 = time.monotonic()
    s.sendall(b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
              b"Content-Length: 100000\r\n\r\n")
    closed_at, got = wait_closed(s, t0)
    s.close()
    results[i] = ("no body", closed_at, got)


def silent(srv, results, i):
    """Connects and sends nothing."""
    s = srv.connect(BOUND_S)
    closed_at, got = wait_closed(s, time.monotonic())
    s.close()
    results[i] = ("silent", closed_at, got)


def metric(srv, name):
    # a 503 means the slot of a connection that just closed is not counted
    # free yet (libmicrohttpd closes the socket before its CLOSED callback):
    # asked again, at most 20 times
    for _ in range(20):
        status, _, data = srv.request("GET", "/metrics", timeout=30)
        text = data.decode()
        if status != 503:
            break
        time.sleep(0.1)
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def part_timeouts(binary, model, body):
    print("== 1. connection_timeout_s 2: slowloris, no body, silent; other clients meanwhile", flush=True)
    timeout = 2
    srv = start(binary, model, "--connection-timeout-s", str(timeout))
    n_slow, n_nobody, n_silent = 3, 3, 2
    results = [None] * (n_slow + n_nobody + n_silent)
    threads = [threading.Thread(target=slowloris, args=(srv, timeout * 1.75, results, i))
               for i in range(n_slow)]
    threads += [threading.Thread(target=no_body, args=(srv, results, n_slow + i)) for i in range(n_nobody)]
    threads += [threading.Thread(target=silent, args=(srv, results, n_slow + n_nobody + i))
                for i in range(n_silent)]
    for t in threads:
        t.start()
    served = []
    while any(t.is_alive() for t in threads) or len(served) < 3:
        served.append(classify(srv, body))
    for t in threads:
        t.join()
    for kind, closed_at, detail in results:
        extra = f"{detail} bytes sent" if kind == "slowloris" else f"{len(detail)} bytes received"
        if check(closed_at is not None, f"{kind} connection still open after {BOUND_S} s"):
            print(f"   {kind}: closed by the server after {closed_at:.1f} s ({extra})")
        if kind != "slowloris":
            check(b" 200 " not in detail[:16], f"{kind} connection got a 200: {detail[:60]!r}")
    bad = [s for s in served if s != (200, "malamute")]
    print(f"   meanwhile: {len(served)} other requests, {len(served) - len(bad)} answered 200 malamute")
    check(not bad, f"other clients were not served normally: {bad[:5]}")
    # the server may complete a request just after its client saw the close: poll, bounded
    deadline = time.monotonic() + BOUND_S
    while (inflight := metric(srv, "resnetd_inflight_requests")) != 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    check(inflight == 1, f"resnetd_inflight_requests is {inflight} afterwards (only the scrape expected)")
    rc = srv.stop()
    log = srv.text()
    n499 = len(re.findall(r'"method":"POST","path":"/classify","status":499', log))
    print(f"   access log: {n499} bodiless POST /classify logged 499; exit {rc}")
    check(n499 == n_nobody, f"{n499} requests logged 499, expected {n_nobody} (the bodiless ones)")
    check(rc == 0, f"resnetd exited {rc} after SIGTERM; log {srv.log_path}")
    if rc == 0 and not failures:
        os.unlink(srv.log_path)


def http_on_socket(s, request):
    """Sends a raw request; reads until the server closes. (status, headers, body, closed)."""
    s.sendall(request)
    closed_at, data = wait_closed(s, time.monotonic())
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0]) if lines else None
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return (int(m.group(1)) if m else None), headers, body, closed_at is not None


def part_limit(binary, model, body):
    print("== 2. max_connections 4: the fifth connection is refused clearly", flush=True)
    limit = 4
    srv = start(binary, model, "--max-connections", str(limit), "--connection-timeout-s", "60")
    holders = []
    for _ in range(limit):
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        check(r.status == 200, f"holder got {r.status} on /healthz")
        holders.append(c)  # kept open (keep-alive): it holds a slot
    # /metrics, not a probe: /healthz and /readyz are answered over the limit
    # too (the probe reserve; test_hostile_load.py), every other path is refused
    s = srv.connect(BOUND_S)
    status, headers, resp, closed = http_on_socket(s, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    s.close()
    print(f"   connection {limit + 1}: {status}, Retry-After {headers.get('retry-after')}, "
          f"Connection {headers.get('connection')}, closed {closed}: {resp.decode(errors='replace')}")
    check(status == 503, f"connection {limit + 1} got {status}, expected 503")
    check(headers.get("retry-after", "").isdigit(), "no Retry-After on the refusal")
    check(headers.get("connection", "").lower() == "close", "no Connection: close on the refusal")
    check(closed, "the refused connection was not closed")
    try:
        err = json.loads(resp)["error"]
        check(err["code"] == "unavailable" and "max_connections" in err["message"],
              f"refusal body {err}")
    except (ValueError, KeyError, TypeError):
        check(False, f"refusal body is not a JSON error: {resp[:200]!r}")
    # a POST over the limit: refused before its body is used, body discarded
    s = srv.connect(BOUND_S)
    status, headers, resp, closed = http_on_socket(
        s, b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    s.close()
    print(f"   a POST /classify over the limit: {status}, closed {closed}")
    check(status == 503 and closed, f"POST over the limit got {status}, closed {closed}")
    # the holders are served normally meanwhile
    holders[0].request("GET", "/readyz")
    r = holders[0].getresponse()
    r.read()
    check(r.status == 200, f"a holder got {r.status} on /readyz while others were refused")
    holders.pop().close()
    status = None
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline and status != 200:
        s = srv.connect(BOUND_S)
        status, _, _, _ = http_on_socket(s, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        s.close()
        if status != 200:
            time.sleep(0.1)
    print(f"   after a holder closed: a new connection got {status}")
    check(status == 200, f"a new connection got {status} once a slot was free")
    refused = metric(srv, "resnetd_connections_refused_total")
    print(f"   resnetd_connections_refused_total {refused}")
    check(refused is not None and refused >= 2, f"resnetd_connections_refused_total is {refused}")
    for c in holders:
        c.close()
    rc = srv.stop()
    warned = re.search(r'"level":"warn","msg":"max_connections \(4\) reached', srv.text())
    check(warned is not None, "no max_connections warning in the log")
    check(rc == 0, f"resnetd exited {rc} after SIGTERM; log {srv.log_path}")
    if rc == 0 and not failures:
        os.unlink(srv.log_path)


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: test_slow_clients.py RESNETD_BIN [MODEL]")
    binary = sys.argv[1]
    model = sys.argv[2] if len(sys.argv) > 2 else os.path.join(SRC, "models/resnet50.safetensors")
    for f in (binary, model, PHOTO):
        if not os.access(f, os.R_OK):
            sys.exit(f"test_slow_clients.py: FAIL: {f} missing (tools/fetch_model.sh; darknet)")
    with open(PHOTO, "rb") as f:
        body = f.read()
    part_timeouts(binary, model, body)
    part_limit(binary, model, body)
    if failures:
        print("test_slow_clients.py: FAIL: " + "; ".join(failures))
        return 1
    print("test_slow_clients.py: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
