"""server_harness.py - what the Python integration tests share, as
server_harness.c is for the C ones: `resnetd serve` on a free loopback port
with a clean environment, waiting for its ready line, its log and memory,
stopping it with SIGTERM, and small HTTP helpers on the standard library.

    srv = Server(binary, model, "--max-batch-size", "4", name="protocols")
    status, headers, body = srv.request("GET", "/readyz")
    rc = srv.stop()     # the exit status; None when it had to be killed

Each test script imports it from its own folder (python3 puts the script's
folder first on sys.path). Loopback only; every wait is bounded."""
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"
# The line resnetd logs once the model is loaded and it answers /readyz 200.
READY_LINE = r'ready: listening on \S*:(\d+)"'
START_TIMEOUT_S = 300  # model load, several times slower under the sanitizers


# The failures check() has seen, for a test's exit status.
failures = []


def check(cond, msg):
    """Records and prints a failure when cond is false, and goes on (one run
    shows every failure); returns cond."""
    if not cond:
        failures.append(msg)
        print(f"  FAIL: {msg}", flush=True)
    return cond


class StartError(Exception):
    """resnetd exited, or never logged the line waited for; the message ends
    with its log."""


def clean_env(**extra):
    """os.environ without RESNETD_* (a developer's own settings must not reach
    the server under test), with GOMP_SPINCOUNT=10000 unless set (OpenMP
    threads spinning at the end of each batch starve the HTTP threads of a
    2-core machine), then extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESNETD_")}
    env.setdefault("GOMP_SPINCOUNT", "10000")
    env.update(extra)
    return env


def proc_status_kb(pid, field):
    """A /proc/PID/status figure in kB: VmRSS (now) or VmHWM (peak)."""
    with open(f"/proc/{pid}/status") as f:
        m = re.search(field + r":\s+(\d+) kB", f.read())
    if not m:
        raise StartError(f"no {field} in /proc/{pid}/status")
    return int(m.group(1))


class Server:
    """resnetd serve --bind 127.0.0.1 --port 0 --model MODEL FLAGS..., its
    stderr in a log file; the constructor returns once the log has `ready`
    (the port it names is self.port) and raises StartError otherwise."""

    def __init__(self, binary, model, *flags, env=None, name="test", wait_s=START_TIMEOUT_S,
                 ready=READY_LINE):
        self.log_path = tempfile.mktemp(prefix=f"resnetd-{name}.", suffix=".log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary, "serve", "--bind", HOST, "--port", "0",
                                      "--model", model, *flags],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log, env=env or clean_env())
        self.port = None
        self.port = self.wait_log(ready, wait_s)

    def wait_log(self, pattern, wait_s):
        """int(group 1) of the first match of pattern in the log, waiting at
        most wait_s; kills the server and raises StartError when it exits or
        the time runs out first."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.kill()
        raise StartError(f"resnetd (exit {self.proc.returncode}) did not log {pattern!r} "
                         f"within {wait_s} s; log:\n{self.text()[-4000:]}")

    def text(self):
        """The whole log so far."""
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def tail(self, n=40):
        """The log's last n lines."""
        return "".join(self.text().splitlines(keepends=True)[-n:])

    def alive(self):
        return self.proc.poll() is None

    def rss_kb(self):
        return proc_status_kb(self.proc.pid, "VmRSS")

    def peak_rss_kb(self):
        return proc_status_kb(self.proc.pid, "VmHWM")

    def sanitized(self):
        """Whether the server runs under ASan (its RSS then says less)."""
        with open(f"/proc/{self.proc.pid}/maps") as f:
            return "libasan" in f.read()

    def stop(self, timeout=60):
        """SIGTERM and wait: the exit status, or None when it had to be
        killed. Closes the log (text() still reads it)."""
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                rc = None
        self.log.close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def remove_log(self):
        try:
            os.unlink(self.log_path)
        except OSError:
            pass

    def connect(self, timeout=60):
        return socket.create_connection((HOST, self.port), timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=60):
        """One request on a fresh connection: (status, headers dict, body)."""
        return request(self.port, method, path, body, headers, timeout)


def start_or_exit(script, binary, model, *flags, **kw):
    """Server(binary, model, *flags, **kw), or the test's exit with the
    reason and the log when it does not start."""
    try:
        return Server(binary, model, *flags, **kw)
    except StartError as e:
        sys.exit(f"{script}: FAIL: {e}")


def request(port, method, path, body=None, headers=None, timeout=60):
    """One request with http.client on a fresh connection: (status, headers
    dict, body bytes). Raises OSError / http.client.HTTPException."""
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def multipart(parts, boundary, close=True):
    """A multipart/form-data body from (field name, file name or None,
    content type or None, bytes) tuples; close=False leaves out the final
    delimiter. Names are encoded with surrogateescape, so that a test can put
    raw bytes in them."""
    out = b""
    for name, filename, ctype, data in parts:
        out += b"--" + boundary.encode() + b"\r\n"
        disp = 'Content-Disposition: form-data; name="%s"' % name
        if filename:
            disp += '; filename="%s"' % filename
        out += disp.encode("utf-8", "surrogateescape") + b"\r\n"
        if ctype:
            out += ("Content-Type: %s\r\n" % ctype).encode()
        out += b"\r\n" + data + b"\r\n"
    if close:
        out += b"--" + boundary.encode() + b"--\r\n"
    return out


def recv_until_closed(sock):
    """Everything the peer sends until it closes (or the socket times out, or
    the connection is reset)."""
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        out += chunk
    return out
