"""hostile_common.py - what test_hostile_load.py's attacks share: the
server (server_harness.Server with two HTTP threads and the access log off
unless asked), a timed request that never raises, and half-sent uploads."""
import http.client
import socket
import sys
import time

import server_harness

CRLF = b"\r\n"


class Server(server_harness.Server):
    def __init__(self, binary, model, *flags, access_log=False):
        super().__init__(binary, model, "--http-threads", "2",
                         "--access-log", "true" if access_log else "false", *flags,
                         name="hostile")

    def peak_rss_mb(self):
        return self.peak_rss_kb() / 1024

    def rss_mb(self):
        return self.rss_kb() / 1024


def start(binary, model, *flags, access_log=False):
    """A Server, or the test's exit when it does not start."""
    try:
        return Server(binary, model, *flags, access_log=access_log)
    except server_harness.StartError as e:
        sys.exit(f"test_hostile_load.py: FAIL: {e}")


def request(port, method, path, body=None, ctype=None, timeout=60):
    """(status, body bytes, seconds); status 0 when the exchange failed."""
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request(method, path, body=body, headers={"Content-Type": ctype} if ctype else {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data, time.monotonic() - t0
    except (OSError, http.client.HTTPException):
        return 0, b"", time.monotonic() - t0


def held_upload(port, length, sent=100, chunked=False):
    """A socket that sent the head of a POST /classify of `length` bytes and
    `sent` of them, and then waits."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    te = b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: %d\r\n" % length
    s.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n" + te + b"\r\n")
    if chunked:
        s.sendall(b"%x\r\n" % sent + b"\0" * sent + b"\r\n")
    else:
        s.sendall(b"\0" * sent)
    return s


def read_answer(s, timeout=10):
    """The bytes the server sent on s until it closed or went quiet (bounded)."""
    s.settimeout(timeout)
    out = b""
    try:
        while len(out) < 65536:
            d = s.recv(4096)
            if not d:
                break
            out += d
            if b"\r\n\r\n" in out and b"}" in out.split(b"\r\n\r\n", 1)[1]:
                break
    except OSError:
        pass
    return out
