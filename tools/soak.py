#!/usr/bin/python3
"""soak.py - hold resnetd at saturation with real JPEGs, then report and judge.

Starts `resnetd serve` on 127.0.0.1 port 0 (or drives --url), warms it up,
then keeps --clients keep-alive clients (default twice max_batch_size, so the
batcher always has a full batch waiting) POSTing the darknet photos in rotation
to /classify for --duration seconds. It samples the server's VmRSS
(/proc/PID/status) when the measured phase starts, every --sample-every
seconds, and when it ends, and prints: requests, img/s, statuses, p50/p99
latency, mean batch size (from /metrics), RSS start/end/growth.

Fails (exit 1) when
  - a response is not 2xx, except 503 (documented: queue full or draining);
  - a request gets no answer (refused, reset, timeout, cut short) while the
    server is not draining;
  - RSS grows by --rss-margin percent (default 5) or more from the start of
    the measured phase to its end;
  - the server does not exit 0 after SIGTERM;
  - an accepted request is lost (below).

--sigterm-at S sends SIGTERM S seconds into the measured phase, with every
client mid-request, and lets the clients carry on until the server has exited.
Accepted and lost are counted against the server's access log, which has
exactly one line per request whose headers the server parsed (libmicrohttpd
called the handler for it), written when the request completes, answered or
not (status 499 when the client could not be answered):
  accepted = access-log lines for POST /classify;
  answered = responses the clients read in full, by status;
  lost     = for each status, log lines minus responses the clients read
             (never negative), plus every 499 line.
A request that the clients sent but that has no log line was never accepted:
its connection was refused (the listening socket is closed on SIGTERM), or
reset before the server read it. The reset happens in two ways: a connection
still in the kernel's accept backlog when the listening socket closes, and
the HTTP/1.1 keep-alive race (RFC 9112 section 9.6), a request sent on an idle
connection just as the server closes it. Both are reported as "not accepted";
a client may retry them, knowing that the server never saw them. A response
that a client read but the log does not have (or the reverse, per status) is
an accounting error and fails the run too. So the drain passes only when
lost = 0, accounting is exact, and the server exits 0.

  /usr/bin/python3 tools/soak.py [--bin build/server/resnetd] [--model models/resnet50.safetensors]
      [--duration 600] [--warmup 30] [--clients N] [--max-batch-size 8]
      [--sigterm-at S] [--rss-margin 5] [--sample-every 10] [--url URL [--pid PID]]
      [-- SERVE_OPTIONS...]
Standard library only; loopback only.
"""
import argparse
import collections
import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

PHOTOS = ["dog", "eagle", "giraffe", "horses", "kite", "person", "scream"]

# Outcomes other than an HTTP status.
REFUSED = "refused"            # connect() failed: nothing was sent
NO_RESPONSE = "no_response"    # sent (maybe partly), connection closed or reset before a status line
TIMEOUT = "timeout"            # no answer within --request-timeout
TRUNCATED = "truncated"        # status line read, body cut short
BAD_BODY = "bad_body"          # a 200 whose body is not a classification


def parse_args():
    argv = sys.argv[1:]
    serve_extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, serve_extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default="build/server/resnetd")
    p.add_argument("--model", default="models/resnet50.safetensors")
    p.add_argument("--url", help="drive this server instead of starting one")
    p.add_argument("--pid", type=int, help="with --url: the server's PID, for RSS and --sigterm-at")
    p.add_argument("--duration", type=float, default=600, help="measured seconds (default 600)")
    p.add_argument("--warmup", type=float, default=30, help="seconds at full load first (default 30)")
    p.add_argument("--clients", type=int, help="concurrent clients (default 2 x max batch size)")
    p.add_argument("--max-batch-size", type=int, default=8, help="passed to serve (default 8)")
    p.add_argument("--sigterm-at", type=float, help="SIGTERM this many seconds into the measured phase")
    p.add_argument("--rss-margin", type=float, default=5.0, help="fail when RSS grows by this %% (default 5)")
    p.add_argument("--sample-every", type=float, default=10, help="RSS sample period, s (default 10)")
    p.add_argument("--request-timeout", type=float, default=120, help="per request, s (default 120)")
    p.add_argument("--startup-timeout", type=float, default=300, help="s to wait for ready (default 300)")
    p.add_argument("--photos", nargs="+", default=[f"/usr/share/darknet/data/{n}.jpg" for n in PHOTOS])
    p.add_argument("--keep-log", action="store_true", help="keep the server's log file")
    args = p.parse_args(argv)
    args.serve_extra = serve_extra
    if args.clients is None:
        args.clients = 2 * args.max_batch_size
    if args.sigterm_at is not None and args.sigterm_at >= args.duration:
        p.error("--sigterm-at must fall inside --duration")
    if args.url and args.sigterm_at is not None and not args.pid:
        p.error("--sigterm-at with --url needs --pid")
    return args


def rss_kib(pid, key="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    k = math.ceil(q / 100.0 * len(sorted_values)) - 1  # nearest rank
    return sorted_values[min(len(sorted_values) - 1, max(0, k))]


class Server:
    """resnetd serve as a child process, stderr (log + access log) in a file."""

    def __init__(self, args, workdir):
        self.log_path = os.path.join(workdir, "server.log")
        # RESNETD_* variables of the caller would override the flags: drop them.
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESNETD_")}
        env.setdefault("GOMP_SPINCOUNT", "10000")  # as deployed (README, Threads)
        cmd = [args.bin, "serve", "--bind", "127.0.0.1", "--port", "0", "--model", args.model,
               "--max-batch-size", str(args.max_batch_size), "--access-log", "true"] + args.serve_extra
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log, env=env)
        self.pid = self.proc.pid
        self.port = None
        deadline = time.monotonic() + args.startup_timeout
        while time.monotonic() < deadline:
            with open(self.log_path, errors="replace") as f:
                m = re.search(r'ready: listening on \S*:(\d+)"', f.read())
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"resnetd exited with {self.proc.returncode} at start; see {self.log_path}")
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"resnetd not ready within {args.startup_timeout} s; see {self.log_path}")

    def stop(self, timeout):
        """SIGTERM (if still running) and the exit status, or None after timeout."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Load:
    """The clients. Each keeps one keep-alive connection, reconnecting after a
    close, and records (start, seconds, outcome, phase) for every request."""

    def __init__(self, args, host, port, bodies):
        self.args, self.host, self.port, self.bodies = args, host, port, bodies
        self.records = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.phase = "warmup"          # then "measure", then "drain" once SIGTERM is sent
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True)
                        for i in range(args.clients)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)

    def one(self, conn, body):
        """One POST; returns (outcome, connection still usable)."""
        if conn.sock is None:
            try:
                conn.connect()
            except (ConnectionRefusedError, ConnectionResetError, socket.timeout, OSError):
                return REFUSED, False
        try:
            conn.request("POST", "/classify?topk=1", body=body, headers={"Content-Type": "image/jpeg"})
        except socket.timeout:
            return TIMEOUT, False
        except (ConnectionError, OSError):
            # the server closed or reset while we were sending; it may still
            # have answered (an early refusal), so try to read a status
            pass
        try:
            resp = conn.getresponse()
        except socket.timeout:
            return TIMEOUT, False
        except (http.client.HTTPException, ConnectionError, OSError):
            return NO_RESPONSE, False
        try:
            data = resp.read()
        except socket.timeout:
            return TIMEOUT, False
        except (http.client.HTTPException, ConnectionError, OSError):
            return TRUNCATED, False
        if resp.status == 200:
            try:
                doc = json.loads(data)
                if not doc["results"][0]["predictions"]:
                    return BAD_BODY, not resp.will_close
            except (ValueError, KeyError, IndexError, TypeError):
                return BAD_BODY, not resp.will_close
        return resp.status, not resp.will_close

    def client(self, idx):
        conn = None
        i = idx
        while not self.stop.is_set():
            body = self.bodies[i % len(self.bodies)]
            i += 1
            if conn is None:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.args.request_timeout)
            phase = self.phase
            t0 = time.monotonic()
            outcome, reusable = self.one(conn, body)
            seconds = time.monotonic() - t0
            with self.lock:
                self.records.append((t0, seconds, outcome, phase))
            if not reusable:
                conn.close()
                conn = None
            if outcome == REFUSED:
                if self.phase == "drain":
                    return  # the server has stopped listening: this client is done
                time.sleep(0.1)  # a failure anyway; do not spin


def scrape(url):
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=30) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def read_access_log(path):
    """Statuses of the POST /classify access-log lines; other warn/error lines."""
    statuses = collections.Counter()
    notes = []
    draining_inflight = None
    drained = False
    with open(path, errors="replace") as f:
        for line in f:
            try:
                doc = json.loads(line)
            except ValueError:
                notes.append(line.rstrip())  # e.g. a sanitizer report
                continue
            if doc.get("type") == "access":
                if doc.get("method") == "POST" and doc.get("path") == "/classify":
                    statuses[doc.get("status")] += 1
                continue
            msg = doc.get("msg", "")
            m = re.match(r"draining: (\d+) requests in flight", msg)
            if m:
                draining_inflight = int(m.group(1))
            if msg == "drained":
                drained = True
            if doc.get("level") in ("warn", "error"):
                notes.append(line.rstrip())
    return statuses, notes, draining_inflight, drained


def main():
    args = parse_args()
    bodies = []
    for p in args.photos:
        with open(p, "rb") as f:
            bodies.append(f.read())
    workdir = tempfile.mkdtemp(prefix="resnetd-soak.")
    server = None
    failures = []
    try:
        if args.url:
            u = urllib.parse.urlsplit(args.url)
            host, port, pid = u.hostname, u.port or 80, args.pid
            url = args.url.rstrip("/")
        else:
            server = Server(args, workdir)
            host, port, pid = "127.0.0.1", server.port, server.pid
            url = f"http://127.0.0.1:{port}"
        print(f"soak: {url} pid {pid or '-'}; model {args.model}; {args.clients} clients, "
              f"max_batch_size {args.max_batch_size}; warm-up {args.warmup:g} s, measured "
              f"{args.duration:g} s" + (f", SIGTERM at {args.sigterm_at:g} s" if args.sigterm_at is not None else "")
              + (f"; serve {' '.join(args.serve_extra)}" if args.serve_extra else ""), flush=True)

        load = Load(args, host, port, bodies)
        load.start()
        time.sleep(args.warmup)
        m0 = scrape(url)
        load.phase = "measure"
        t_start = time.monotonic()
        samples = [(0.0, rss_kib(pid))] if pid else []
        t_end = t_start + (args.sigterm_at if args.sigterm_at is not None else args.duration)
        next_sample = t_start + args.sample_every
        next_progress = t_start + 60
        while time.monotonic() < t_end:
            time.sleep(max(0.0, min(t_end, next_sample) - time.monotonic()))
            now = time.monotonic()
            if pid and now >= next_sample:
                samples.append((now - t_start, rss_kib(pid)))
                next_sample += args.sample_every
            if now >= next_progress:
                n = sum(1 for r in load.records if r[3] == "measure")
                print(f"  {now - t_start:5.0f} s: {n} requests, {n / (now - t_start):.2f}/s, "
                      f"RSS {samples[-1][1] / 1024 if samples and samples[-1][1] else 0:.1f} MiB", flush=True)
                next_progress += 60
        if pid:
            samples.append((time.monotonic() - t_start, rss_kib(pid)))
        hwm = rss_kib(pid, "VmHWM") if pid else None
        m1 = scrape(url)
        measured_s = time.monotonic() - t_start

        exit_code = None
        if args.sigterm_at is not None:
            load.phase = "drain"
            t_term = time.monotonic()
            os.kill(pid, signal.SIGTERM)
            if server:
                try:
                    exit_code = server.proc.wait(args.request_timeout)
                except subprocess.TimeoutExpired:
                    failures.append(f"the server did not exit within {args.request_timeout:g} s of SIGTERM")
            else:
                while os.path.exists(f"/proc/{pid}") and time.monotonic() - t_term < args.request_timeout:
                    time.sleep(0.1)
            drain_s = time.monotonic() - t_term
        load.stop.set()
        if not load.join(args.request_timeout + 10):
            failures.append("a client is still waiting for an answer")
        if server and args.sigterm_at is None:
            exit_code = server.stop(args.request_timeout)
            if exit_code is None:
                failures.append("the server did not exit after SIGTERM")

        # --- figures ---
        with load.lock:
            records = list(load.records)
        measured = [r for r in records if r[3] == "measure"]
        status_all = collections.Counter(r[2] for r in records)
        status_measured = collections.Counter(r[2] for r in measured)
        lat = sorted(r[1] for r in measured if isinstance(r[2], int))
        ok = status_measured.get(200, 0)
        print(f"requests (measured phase): {len(measured)} in {measured_s:.1f} s; "
              f"{ok / measured_s:.2f} img/s answered 200")
        print(f"statuses (measured phase): {dict(sorted(status_measured.items(), key=str))}")
        print(f"statuses (whole run, warm-up{' and drain' if args.sigterm_at is not None else ''}): "
              f"{dict(sorted(status_all.items(), key=str))}")
        print(f"latency (measured phase): p50 {percentile(lat, 50) * 1000:.0f} ms, "
              f"p99 {percentile(lat, 99) * 1000:.0f} ms, max {lat[-1] * 1000 if lat else 0:.0f} ms")
        n_batches = m1.get("resnetd_batch_size_count", 0) - m0.get("resnetd_batch_size_count", 0)
        if n_batches > 0:
            mean_batch = (m1["resnetd_batch_size_sum"] - m0["resnetd_batch_size_sum"]) / n_batches
            print(f"batches (measured phase): {n_batches:.0f}, mean size {mean_batch:.2f} "
                  f"(max_batch_size {args.max_batch_size})")
        if not measured:
            failures.append("no request ran in the measured phase")
        for outcome, n in sorted(status_all.items(), key=str):
            if isinstance(outcome, int) and not (200 <= outcome < 300 or outcome == 503):
                failures.append(f"{n} responses with status {outcome}")
        for outcome, n in collections.Counter(r[2] for r in records if r[3] != "drain").items():
            if not isinstance(outcome, int):
                failures.append(f"{n} requests {outcome} while the server was not draining")
        for outcome, n in collections.Counter(r[2] for r in records if r[3] == "drain").items():
            if outcome in (TIMEOUT, TRUNCATED, BAD_BODY):
                failures.append(f"{n} requests {outcome} during the drain")

        if pid and samples and samples[0][1] and samples[-1][1]:
            start, end = samples[0][1], samples[-1][1]
            growth = 100.0 * (end - start) / start
            peak = max(s[1] for s in samples if s[1])
            print(f"RSS (measured phase): start {start / 1024:.1f} MiB, end {end / 1024:.1f} MiB, "
                  f"growth {growth:+.2f}% (limit {args.rss_margin:g}%), max sample {peak / 1024:.1f} MiB"
                  + (f", VmHWM {hwm / 1024:.1f} MiB" if hwm else "") + f"; {len(samples)} samples")
            print("RSS samples (s: MiB): " + ", ".join(
                f"{t:.0f}: {kib / 1024:.1f}" for t, kib in samples if kib))
            if growth >= args.rss_margin:
                failures.append(f"RSS grew {growth:.2f}% (limit {args.rss_margin:g}%)")
        else:
            print("RSS: not measured (no server PID: --url without --pid)")

        if server:
            statuses, notes, draining_inflight, drained = read_access_log(server.log_path)
            client_answered = collections.Counter(
                200 if r[2] == BAD_BODY else r[2] for r in records if isinstance(r[2], int) or r[2] == BAD_BODY)
            accepted = sum(statuses.values())
            lost = statuses.get(499, 0)
            mismatch = []
            for s in set(statuses) | set(client_answered):
                if s == 499:
                    continue
                d = statuses.get(s, 0) - client_answered.get(s, 0)
                if d > 0:
                    lost += d
                elif d < 0:
                    mismatch.append(f"clients read {-d} more {s} responses than the access log has")
            not_accepted = sum(n for o, n in status_all.items() if o in (REFUSED, NO_RESPONSE))
            print(f"accounting (whole run): accepted {accepted} (access-log lines), answered "
                  f"{sum(client_answered.values())} (responses the clients read), lost {lost}; "
                  f"not accepted {not_accepted} (refused {status_all.get(REFUSED, 0)}, reset before "
                  f"the server read them {status_all.get(NO_RESPONSE, 0)})")
            if lost:
                failures.append(f"{lost} accepted requests lost (access-log statuses {dict(statuses)})")
            failures.extend(mismatch)
            if args.sigterm_at is not None:
                spanning = collections.Counter(r[2] for r in records if r[0] < t_term < r[0] + r[1])
                after = collections.Counter(r[2] for r in records if r[3] == "drain")
                print(f"drain: the server logged {draining_inflight} requests in flight at SIGTERM; "
                      f"the clients' requests in flight then ended {dict(spanning)}; those sent after "
                      f"it ended {dict(after)}; exit {exit_code} {drain_s:.1f} s after SIGTERM")
                if not draining_inflight:
                    failures.append("SIGTERM found no request in flight: the drain was not exercised")
                if not drained:
                    failures.append('the server did not log "drained"')
            if exit_code is not None and exit_code != 0:
                failures.append(f"the server exited {exit_code} after SIGTERM")
            for n in notes[:10]:
                print(f"server log: {n}")
    except (RuntimeError, OSError) as e:
        failures.append(str(e))
    finally:
        if server:
            server.kill()
    if failures:
        print("soak: FAIL: " + "; ".join(failures))
        if server:
            print(f"soak: server log kept in {server.log_path}")
        return 1
    if server and not args.keep_log:
        os.unlink(server.log_path)
        os.rmdir(workdir)
    elif server:
        print(f"soak: server log in {server.log_path}")
    print("soak: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
