"""bad_requests_wire.py - test_bad_requests.py's raw HTTP: building requests
byte by byte, sending them on fresh sockets, parsing what comes back, and
checking statuses and error bodies against the README; plus the case record
and the checks the case modules share. T holds the server under test (port,
model name, input size), set once by test_bad_requests.main."""
import collections
import json
import re
import socket
import types

import server_harness

PHOTOS = "/usr/share/darknet/data"
HOST = "127.0.0.1"
HEALTH_EVERY = 10
SOCK_TIMEOUT = 120.0     # one request, inference included, under ASan on 2 busy cores
START_TIMEOUT = 300.0    # model load (ASan is several times slower)
MAX_BODY = 2 * 1024 * 1024
MAX_IMAGES = 4
CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found",
         405: "method_not_allowed", 411: "length_required", 413: "payload_too_large",
         415: "unsupported_media_type", 422: "invalid_tensor", 503: "unavailable",
         504: "deadline_exceeded", 501: "not_implemented", 505: "http_version_not_supported"}

# Error body shapes: NESTED {"error":{"code","message"}}, KSERVE {"error":"..."},
# MHD libmicrohttpd's own short HTML answer (status only), NONE no answer at all
# (the client broke the connection; the server just has to survive it).
NESTED, KSERVE, MHD, NONE, OK = "nested", "kserve", "mhd", "none", "ok"


# The server under test, set by test_bad_requests.main once it has answered.
T = types.SimpleNamespace(port=0, model="", input_hw=(224, 224))


class Fail(Exception):
    pass


# ---------------------------------------------------------------- raw HTTP

class Resp:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def parse_one(buf, head=False):
    """One response from the front of buf: (Resp, rest) or (None, buf) if incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None, buf
    lines = buf[:end].decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3}) ?(.*)", lines[0])
    if not m:
        raise Fail("not an HTTP status line: %r" % lines[0][:80])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = 0 if head else int(headers.get("content-length", "0"))
    if len(buf) < end + 4 + length:
        return None, buf
    body = buf[end + 4:end + 4 + length]
    return Resp(int(m.group(1)), m.group(2), headers, body), buf[end + 4 + length:]


def connect(timeout=SOCK_TIMEOUT):
    return socket.create_connection((HOST, T.port), timeout=timeout)


def recv_all(s):
    """Everything until the server closes (or the timeout, or a reset)."""
    return server_harness.recv_until_closed(s)


def exchange(data, timeout=SOCK_TIMEOUT):
    """Sends raw bytes on a fresh connection, returns all that came back until close."""
    s = connect(timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # an early answer (413) may close before the whole body went out
        return recv_all(s)
    finally:
        s.close()


def build(method, path, body=None, headers=None, close=True, version="HTTP/1.1"):
    h = [("Host", "%s:%d" % (HOST, T.port))]
    if body is not None:
        h.append(("Content-Length", str(len(body))))
    if close:
        h.append(("Connection", "close"))
    h += list((headers or {}).items())
    head = "%s %s %s\r\n" % (method, path, version) + "".join("%s: %s\r\n" % kv for kv in h)
    return head.encode("latin-1") + b"\r\n" + (body or b"")


def request(method, path, body=None, headers=None, timeout=SOCK_TIMEOUT):
    path = path.replace("{model}", T.model)
    raw = exchange(build(method, path, body, headers), timeout)
    resp, _ = parse_one(raw, head=method == "HEAD")
    if resp is None:
        raise Fail("no complete response to %s %s (%d bytes: %r)" % (method, path[:60], len(raw), raw[:120]))
    return resp


def post(path, body, ctype="image/jpeg", headers=None):
    h = dict(headers or {})
    if ctype is not None:
        h["Content-Type"] = ctype
    return lambda: request("POST", path, body, h)


# ---------------------------------------------------------------- checks

def check_error_body(resp, shape, status):
    if shape in (MHD, NONE, OK):
        return
    if not resp.headers.get("content-type", "").startswith("application/json"):
        raise Fail("Content-Type %r, not JSON" % resp.headers.get("content-type"))
    try:
        doc = resp.json()
    except ValueError as e:
        raise Fail("body is not JSON (%s): %r" % (e, resp.body[:200]))
    err = doc.get("error") if isinstance(doc, dict) else None
    if shape == KSERVE:
        if not isinstance(err, str) or not err:
            raise Fail("KServe error body wanted, got %r" % resp.body[:200])
        return
    if not isinstance(err, dict) or not isinstance(err.get("message"), str) or not err["message"]:
        raise Fail("{\"error\":{code,message}} wanted, got %r" % resp.body[:200])
    if err.get("code") != CODES.get(status):
        raise Fail("error code %r for status %d (wanted %r)" % (err.get("code"), status, CODES.get(status)))


def check_resp(resp, status, shape):
    if resp.status != status:
        raise Fail("status %d (wanted %d): %r" % (resp.status, status, resp.body[:300]))
    if status in (503,) and "retry-after" not in resp.headers:
        raise Fail("503 without Retry-After")
    check_error_body(resp, shape, status)


# ---------------------------------------------------------------- server


Case = collections.namedtuple("Case", "category name status shape send check")

# The JPEG material the cases share: three photos and a few re-encodings of dog.jpg.
Photos = collections.namedtuple("Photos", "dog eagle person progressive arith gif")

INFER = "/v2/models/{model}/infer"


def multipart(parts, boundary="bAdReQuEsT-b0undary", close=True):
    """parts: (name, filename or None, content type or None, bytes)."""
    return server_harness.multipart(parts, boundary, close)


def classify_ok(resp):
    """Check: the /classify answer has a labelled first prediction."""
    doc = resp.json()
    preds = doc["results"][0]["predictions"]
    if not preds or not isinstance(preds[0].get("label"), str):
        raise Fail("no predictions: %r" % resp.body[:200])


def top1(label):
    """Check: the /classify answer's top-1 label is `label`."""
    def check(resp):
        classify_ok(resp)
        got = resp.json()["results"][0]["predictions"][0]["label"]
        if got != label:
            raise Fail("top-1 %r, wanted %r" % (got, label))
    return check


def allow(value):
    """Check: the Allow header is `value`."""
    def check(resp):
        if resp.headers.get("allow") != value:
            raise Fail("Allow %r, wanted %r" % (resp.headers.get("allow"), value))
    return check
