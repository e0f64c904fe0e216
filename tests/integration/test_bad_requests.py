#!/usr/bin/python3
"""test_bad_requests.py - the bad-request suite: hundreds of generated hostile or
malformed requests against the real `resnetd serve` and the real default model
(models/resnet50.safetensors) on 127.0.0.1.

Usage: test_bad_requests.py RESNETD_BINARY [MODEL]

Each case states the status the README documents and checks the error body's
shape: {"error":{"code","message"}} on /classify and routing errors, KServe's
flat {"error":"message"} on the /v2 routes, and for the few protocol errors that
libmicrohttpd answers itself before resnetd sees the request (414, 431, 505,
malformed Content-Length or chunked encoding), the status only (README, "HTTP
API"). Every HEALTH_EVERY cases /healthz must answer. At the end a real request
(dog.jpg -> top-1 "malamute") must answer correctly, VmRSS must be within 10% of
where it stood after the warm-up, and SIGTERM must end the server with status 0
and no sanitizer report. Standard library only, plus PIL (python3-pil) and
jpegtran/cjpeg/djpeg (libjpeg-turbo-progs) to make CMYK and arithmetic-coded
JPEGs at test time. Every socket has a timeout and the server is killed on any
failure, so the test always stops by itself.
"""
import base64
import collections
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

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
    return socket.create_connection((HOST, PORT), timeout=timeout)


def recv_all(s):
    """Everything until the server closes (or the timeout, or a reset)."""
    out = b""
    try:
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            out += b
    except (socket.timeout, ConnectionResetError):
        pass
    return out


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
    h = [("Host", "%s:%d" % (HOST, PORT))]
    if body is not None:
        h.append(("Content-Length", str(len(body))))
    if close:
        h.append(("Connection", "close"))
    h += list((headers or {}).items())
    head = "%s %s %s\r\n" % (method, path, version) + "".join("%s: %s\r\n" % kv for kv in h)
    return head.encode("latin-1") + b"\r\n" + (body or b"")


def request(method, path, body=None, headers=None, timeout=SOCK_TIMEOUT):
    path = path.replace("{model}", MODEL)
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

class Server:
    def __init__(self, binary, model, args):
        self.log = tempfile.NamedTemporaryFile(prefix="resnetd_bad_", suffix=".log", delete=False)
        env = dict(os.environ)
        self.asan = b"__asan_init" in open(binary, "rb").read()
        if self.asan:
            # ASan keeps freed blocks in a quarantine of up to 256 MB by default,
            # so RSS would climb by that much with no leak at all; a small one
            # keeps the RSS check meaningful while still catching use-after-free.
            prev = env.get("ASAN_OPTIONS", "")
            env["ASAN_OPTIONS"] = (prev + ":" if prev else "") + \
                "quarantine_size_mb=8:thread_local_quarantine_size_kb=256:allocator_release_to_os_interval_ms=100"
        env.setdefault("GOMP_SPINCOUNT", "10000")
        cmd = [binary, "serve", "--port", "0", "--bind", HOST, "--model", model] + args
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log, env=env)
        self.port = self._wait_port()

    def _wait_port(self):
        deadline = time.monotonic() + START_TIMEOUT
        pat = re.compile(r"(?:listening|accepting connections) on \S*:(\d+)")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Fail("resnetd exited with %d before listening:\n%s" % (self.proc.returncode, self.tail()))
            with open(self.log.name, "r", errors="replace") as f:
                for line in f:
                    m = pat.search(line)
                    if m:
                        return int(m.group(1))
            time.sleep(0.1)
        raise Fail("resnetd did not log 'listening on' within %.0f s" % START_TIMEOUT)

    def wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Fail("resnetd exited with %d while loading:\n%s" % (self.proc.returncode, self.tail()))
            try:
                if request("GET", "/readyz", timeout=5).status == 200:
                    return
            except (OSError, Fail):
                pass
            time.sleep(0.2)
        raise Fail("/readyz never answered 200")

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise Fail("no VmRSS")

    def tail(self, n=40):
        try:
            with open(self.log.name, "r", errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=60):
        """SIGTERM and wait: the exit status (None if it had to be killed)."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass


# ---------------------------------------------------------------- JPEG material

def read(path):
    with open(path, "rb") as f:
        return f.read()


def sof_offset(jpeg):
    """Offset of the first SOFn marker's segment (the FF byte)."""
    i = 2
    while i + 4 <= len(jpeg):
        if jpeg[i] != 0xFF:
            raise Fail("JPEG marker walk lost at %d" % i)
        marker = jpeg[i + 1]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC9, 0xCA, 0xCB):
            return i
        i += 2 + struct.unpack(">H", jpeg[i + 2:i + 4])[0]
    raise Fail("no SOF marker")


def sos_end(jpeg):
    """Offset just past the first SOS marker's segment (where the scan data starts)."""
    i = 2
    while i + 4 <= len(jpeg):
        length = struct.unpack(">H", jpeg[i + 2:i + 4])[0]
        if jpeg[i + 1] == 0xDA:
            return i + 2 + length
        i += 2 + length
    raise Fail("no SOS marker")


def patch_sof(jpeg, width=None, height=None, precision=None, components=None):
    i = sof_offset(jpeg)
    b = bytearray(jpeg)
    if precision is not None:
        b[i + 4] = precision
    if height is not None:
        b[i + 5:i + 7] = struct.pack(">H", height)
    if width is not None:
        b[i + 7:i + 9] = struct.pack(">H", width)
    if components is not None:
        b[i + 9] = components
    return bytes(b)


def pil_image(mode, size, fmt, **kw):
    from PIL import Image
    img = Image.open(os.path.join(PHOTOS, "dog.jpg")).convert("RGB")
    if size:
        img = img.resize(size)
    if mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def jpeg_tool(args, data, tmp):
    """Runs jpegtran/cjpeg/djpeg on data (a file in tmp) and returns stdout."""
    src = os.path.join(tmp, "in.bin")
    with open(src, "wb") as f:
        f.write(data)
    out = subprocess.run(args + [src], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if out.returncode != 0:
        raise Fail("%s failed: %s" % (args[0], out.stderr.decode(errors="replace")))
    return out.stdout


# ---------------------------------------------------------------- cases

Case = collections.namedtuple("Case", "category name status shape send check")

# The JPEG material the cases share: three photos and a few re-encodings of dog.jpg.
Photos = collections.namedtuple("Photos", "dog eagle person progressive arith gif")

INFER = "/v2/models/{model}/infer"


def load_photos(tools):
    """Reads the photos and makes the progressive and arithmetic-coded versions of dog.jpg and a
    GIF (a format resnetd does not decode; PNG and WebP it does)."""
    dog, eagle, person = (read(os.path.join(PHOTOS, p + ".jpg")) for p in ("dog", "eagle", "person"))
    return Photos(dog, eagle, person,
                  progressive=jpeg_tool(["jpegtran", "-progressive"], dog, tools),
                  arith=jpeg_tool(["jpegtran", "-arithmetic"], dog, tools),
                  gif=pil_image("P", (64, 48), "GIF"))


def multipart(parts, boundary="bAdReQuEsT-b0undary", close=True):
    """parts: (name, filename or None, content type or None, bytes)."""
    out = b""
    for name, filename, ctype, data in parts:
        out += b"--" + boundary.encode() + b"\r\n"
        disp = 'Content-Disposition: form-data; name="%s"' % name
        if filename:
            disp += '; filename="%s"' % filename
        out += disp.encode("utf-8", "surrogateescape") + b"\r\n"  # lets a name carry raw bytes
        if ctype:
            out += ("Content-Type: %s\r\n" % ctype).encode()
        out += b"\r\n" + data + b"\r\n"
    if close:
        out += b"--" + boundary.encode() + b"--\r\n"
    return out


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


def build_cases(tools):
    """Every case, category by category; the order is fixed (the seeded generator depends on it)."""
    photos = load_photos(tools)
    rng = random.Random(20261127)
    cases = []

    def add(cat, name, status, shape, send, check=None):
        cases.append(Case(cat, name, status, shape, send, check))

    truncated_jpegs(add, photos)
    random_bytes(add, rng)
    wrong_formats(add, photos)
    odd_images(add, photos, tools)
    patched_headers(add, photos)
    content_types(add, photos)
    multipart_cases(add, photos)
    topk_cases(add, photos)
    methods_and_paths(add, photos)
    model_names(add)
    kserve_json(add, photos)
    kserve_tensors(add, photos)
    kserve_binary(add, photos)
    oversized(add, photos)
    framing(add)
    pipelining(add, photos)
    keepalive_abuse(add, photos, rng)
    return cases


def truncated_jpegs(add, photos):
    """Truncated JPEGs at many offsets (baseline and progressive): 400."""
    for label, img in (("dog", photos.dog), ("eagle", photos.eagle), ("person", photos.person),
                       ("dog-progressive", photos.progressive)):
        n = len(img)
        offsets = sorted({1, 2, 3, 4, 11, 20, 100, 300, 600, 1000, n // 8, n // 3, n // 2, 2 * n // 3,
                          n - 1000, n - 3})
        for off in offsets:
            add("truncated_jpeg", "%s[:%d]" % (label, off), 400, NESTED, post("/classify", img[:off]))


def random_bytes(add, rng):
    """Seeded random bytes, bare and behind a JPEG SOI: 400."""
    for length in (1, 2, 5, 16, 100, 1000, 4096, 20000, 100000, 1000000):
        blob = bytes(rng.getrandbits(8) for _ in range(min(length, 4096)))
        blob = (blob * (length // len(blob) + 1))[:length]
        add("random_bytes", "random %d" % length, 400, NESTED, post("/classify", blob))
    for length in (2, 3, 10, 500, 5000):
        blob = b"\xff\xd8" + bytes(rng.getrandbits(8) for _ in range(length))
        add("random_bytes", "SOI + random %d" % length, 400, NESTED, post("/classify", blob))
    for length in (1, 64, 3000):
        blob = bytes(rng.getrandbits(8) for _ in range(length))
        add("random_bytes", "random %d as octet-stream" % length, 400, NESTED,
            post("/classify", blob, "application/octet-stream"))


def wrong_formats(add, photos):
    """Other formats labelled JPEG, and empty bodies: 400."""
    formats = {
        "PNG with a zeroed IHDR": b"\x89PNG\r\n\x1a\n" + bytes(25),
        "GIF": pil_image("P", (64, 48), "GIF"),
        "BMP": pil_image("RGB", (64, 48), "BMP"),
        "TIFF": pil_image("RGB", (64, 48), "TIFF"),
        "PPM": pil_image("RGB", (64, 48), "PPM"),
        "PNG signature only": b"\x89PNG\r\n\x1a\n",
        "GIF89a header only": b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
        "JSON": b'{"image":"dog.jpg"}',
        "HTML": b"<html><body>not a jpeg</body></html>",
        "JPEG base64 text": base64.b64encode(photos.dog[:3000]),
    }
    for name, data in formats.items():
        for ctype in ("image/jpeg", "image/pjpeg"):
            add("wrong_format", "%s as %s" % (name, ctype), 400, NESTED, post("/classify", data, ctype))
    add("empty_body", "zero-length image/jpeg", 400, NESTED, post("/classify", b""))
    add("empty_body", "zero-length octet-stream", 400, NESTED, post("/classify", b"", "application/octet-stream"))
    add("empty_body", "zero-length KServe infer", 400, KSERVE, post(INFER, b"", "application/json"))
    add("empty_body", "zero-length multipart", 400, NESTED,
        post("/classify", b"", "multipart/form-data; boundary=xyz"))


def odd_images(add, photos, tools):
    """Odd but valid images (the README documents them as supported: 200)."""
    dog, arith = photos.dog, photos.arith
    add("odd_image", "1x1 RGB", 200, OK, post("/classify", pil_image("RGB", (1, 1), "JPEG")), classify_ok)
    add("odd_image", "1x1 grayscale", 200, OK, post("/classify", pil_image("L", (1, 1), "JPEG")), classify_ok)
    add("odd_image", "1x1 CMYK", 200, OK, post("/classify", pil_image("CMYK", (1, 1), "JPEG")), classify_ok)
    add("odd_image", "CMYK (PIL, Adobe-inverted)", 200, OK,
        post("/classify", pil_image("CMYK", None, "JPEG", quality=95)), classify_ok)
    add("odd_image", "2000x1 strip", 200, OK, post("/classify", pil_image("RGB", (2000, 1), "JPEG")), classify_ok)
    arith_prog = jpeg_tool(["jpegtran", "-arithmetic", "-progressive"], dog, tools)
    ppm = jpeg_tool(["djpeg", "-ppm"], dog, tools)
    arith_cjpeg = jpeg_tool(["cjpeg", "-arithmetic", "-quality", "90"], ppm, tools)
    # jpegtran transcodes losslessly (same DCT coefficients), so the answer must not change.
    add("odd_image", "arithmetic-coded (jpegtran)", 200, OK, post("/classify", arith), top1("malamute"))
    add("odd_image", "arithmetic progressive (jpegtran)", 200, OK, post("/classify", arith_prog), top1("malamute"))
    add("odd_image", "arithmetic-coded (cjpeg)", 200, OK, post("/classify", arith_cjpeg), classify_ok)
    for frac in (3, 2):
        add("odd_image", "arithmetic truncated at 1/%d" % frac, 400, NESTED,
            post("/classify", arith[:len(arith) // frac]))


def patched_headers(add, photos):
    """JPEGs with patched headers: huge frames (413) and broken markers (400)."""
    dog = photos.dog
    for w, h in ((65500, 65500), (65500, 1000), (1000, 65500), (10000, 5000)):
        add("patched_header", "SOF %dx%d" % (w, h), 413, NESTED, post("/classify", patch_sof(dog, w, h)))
        # the header is complete up to the scan data: the size check comes first
        add("patched_header", "SOF %dx%d, no scan data" % (w, h), 413, NESTED,
            post("/classify", patch_sof(dog, w, h)[:sos_end(dog)]))
    # cut before the scan header: a truncated JPEG, whatever its frame says
    add("patched_header", "SOF 65500x65500, cut before SOS", 400, NESTED,
        post("/classify", patch_sof(dog, 65500, 65500)[:sof_offset(dog) + 40]))
    add("patched_header", "SOF 65500x65500 progressive", 413, NESTED,
        post("/classify", patch_sof(photos.progressive, 65500, 65500)))
    add("patched_header", "SOF 65500x65500 arithmetic", 413, NESTED,
        post("/classify", patch_sof(photos.arith, 65500, 65500)))
    for p in (12, 16, 0, 7):
        add("patched_header", "SOF precision %d" % p, 400, NESTED, post("/classify", patch_sof(dog, precision=p)))
    add("patched_header", "SOF 0x0", 400, NESTED, post("/classify", patch_sof(dog, 0, 0)))
    add("patched_header", "SOF 0 components", 400, NESTED, post("/classify", patch_sof(dog, components=0)))
    add("patched_header", "SOF 7 components", 400, NESTED, post("/classify", patch_sof(dog, components=7)))
    add("patched_header", "SOI only", 400, NESTED, post("/classify", b"\xff\xd8"))
    add("patched_header", "SOI + EOI", 400, NESTED, post("/classify", b"\xff\xd8\xff\xd9"))
    add("patched_header", "no SOI", 400, NESTED, post("/classify", dog[2:]))
    add("patched_header", "SOF marker length 0", 400, NESTED,
        post("/classify", dog[:sof_offset(dog) + 2] + b"\x00\x00" + dog[sof_offset(dog) + 4:]))


def content_types(add, photos):
    """Wrong or missing Content-Type on /classify: 415."""
    for ctype in ("text/plain", "application/json", "image/bmp", "image/gif", "image/jpegx",
                  "multipart/mixed; boundary=x", "application/x-www-form-urlencoded", "*/*", "", ";"):
        add("content_type", "Content-Type %r" % ctype, 415, NESTED, post("/classify", photos.dog, ctype))
    add("content_type", "no Content-Type", 415, NESTED, post("/classify", photos.dog, None))


def multipart_cases(add, photos):
    """Multipart: broken or missing boundaries, bad parts, thousands of parts."""
    mp = "multipart/form-data; boundary=bAdReQuEsT-b0undary"
    dog, gif = photos.dog, photos.gif
    add("multipart", "no boundary parameter", 415, NESTED,
        post("/classify", multipart([("a", "a.jpg", "image/jpeg", dog)]), "multipart/form-data"))
    add("multipart", "empty boundary parameter", 415, NESTED,
        post("/classify", multipart([("a", "a.jpg", "image/jpeg", dog)]), "multipart/form-data; boundary="))
    add("multipart", "boundary not in the body", 400, NESTED,
        post("/classify", multipart([("a", "a.jpg", "image/jpeg", dog)]), "multipart/form-data; boundary=other"))
    add("multipart", "body is junk", 400, NESTED, post("/classify", b"junk junk junk", mp))
    add("multipart", "body is a bare JPEG", 400, NESTED, post("/classify", dog, mp))
    add("multipart", "only a topk field", 400, NESTED, post("/classify", multipart([("topk", None, None, b"3")]), mp))
    add("multipart", "one GIF part", 400, NESTED, post("/classify", multipart([("a", "a.gif", "image/gif", gif)]), mp))
    add("multipart", "one truncated JPEG part", 400, NESTED,
        post("/classify", multipart([("a", "a.jpg", "image/jpeg", dog[:5000])]), mp))
    add("multipart", "empty part", 400, NESTED, post("/classify", multipart([("a", "a.jpg", "image/jpeg", b"")]), mp))
    add("multipart", "two bad parts", 400, NESTED,
        post("/classify", multipart([("a", "a.gif", None, gif), ("b", "b.jpg", None, b"\xff\xd8")]), mp))
    add("multipart", "plain text field", 400, NESTED, post("/classify", multipart([("note", None, None, b"hello")]), mp))
    add("multipart", "five images > max 4", 413, NESTED,
        post("/classify", multipart([("i%d" % i, "%d.jpg" % i, "image/jpeg", b"\xff\xd8") for i in range(5)]), mp))
    for n in (1000, 5000):
        add("multipart", "%d tiny parts" % n, 413, NESTED,
            post("/classify", multipart([("p", "p.jpg", None, b"x")] * n), mp))
    add("multipart", "3000 topk fields", 413, NESTED,
        post("/classify", multipart([("topk", None, None, b"1")] * 3000), mp))
    add("multipart", "3000 empty parts", 413, NESTED,
        post("/classify", multipart([("p", None, None, b"")] * 3000), mp))
    # issue 15: parameter names are case-insensitive, the media type is matched whole,
    # an empty part gets a message naming it, a non-UTF-8 file name is shown with U+FFFD
    one = multipart([("a", "a.jpg", "image/jpeg", dog)])
    add("multipart", "BOUNDARY= in upper case", 200, OK,
        post("/classify", one, "Multipart/Form-Data; BOUNDARY=bAdReQuEsT-b0undary"), top1("malamute"))
    add("multipart", "multipart/form-dataX", 415, NESTED,
        post("/classify", one, "multipart/form-dataX; boundary=bAdReQuEsT-b0undary"))

    def says_empty(resp):
        msg = resp.json()["results"][0]["error"]["message"]
        if "empty" not in msg or "NULL" in msg:
            raise Fail("empty part answered %r" % msg)
    add("multipart", "empty part says so", 400, NESTED,
        post("/classify", multipart([("a", "a.jpg", "image/jpeg", b"")]), mp), says_empty)

    def replaced_name(resp):
        top1("malamute")(resp)
        got = resp.json()["results"][0].get("filename")
        if got != "\ufffdt\ufffd.jpg":
            raise Fail("non-UTF-8 filename came back as %r" % (got,))
    add("multipart", "non-UTF-8 filename", 200, OK,
        post("/classify", multipart([("a", "\udce9t\udcff.jpg", "image/jpeg", dog)]), mp), replaced_name)
    for v in (b"0", b"-1", b"1001", b"abc", b"9" * 40, b"1.5"):
        add("multipart", "topk field %r" % v, 400, NESTED,
            post("/classify", multipart([("topk", None, None, v), ("a", "a.jpg", "image/jpeg", dog)]), mp))


def topk_cases(add, photos):
    """Invalid topk in the query string: 400."""
    for q in ("0", "-1", "-99999999999", "1001", "99999999999999999999999", "abc", "", "1.5", "1e3",
              "0x10", "%205", "%2B5", "5%20", "3abc", "%00"):
        add("topk", "topk=%s" % q, 400, NESTED, post("/classify?topk=" + q, photos.dog))


def methods_and_paths(add, photos):
    """Wrong methods (405 + Allow) and unknown paths (404)."""
    for m in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW", "HEAD"):
        add("method", "%s /classify" % m, 405, MHD if m == "HEAD" else NESTED,
            lambda m=m: request(m, "/classify"), allow("POST"))
    for m, p in (("POST", "/healthz"), ("PUT", "/readyz"), ("DELETE", "/metrics"), ("POST", "/v2"),
                 ("POST", "/v2/health/live"), ("POST", "/v2/models/{model}"), ("PUT", "/v2/models/{model}/ready")):
        add("method", "%s %s" % (m, p), 405, NESTED, lambda m=m, p=p: request(m, p, b""), allow("GET, HEAD"))
    for m in ("GET", "PUT", "DELETE"):
        add("method", "%s infer" % m, 405, NESTED, lambda m=m: request(m, INFER), allow("POST"))
    # libmicrohttpd percent-decodes the path, and one trailing slash is tolerated
    add("method", "GET /classify%2F", 405, NESTED, lambda: request("GET", "/classify%2F"), allow("POST"))
    # ("/" is the page; "/x%00" is decoded to "/x", so "/%00" would be the page too)
    for p in ("/ui/", "/ui/nope.js", "/ui/index.html", "/ui/app.js/x", "/classify/x", "/CLASSIFY",
              "//classify", "/v2/models", "/v2/models/", "/v2/models/{model}/infer/extra",
              "/v2/health", "/x%00", "/..%2f..%2fetc%2fpasswd", "/v2/models//infer"):
        add("path", "GET %s" % p, 404, NESTED, lambda p=p: request("GET", p))
    add("path", "POST /nope with a body", 404, NESTED, post("/nope", photos.dog))


def model_names(add):
    """Unknown model names on the KServe routes: 404."""
    for name in ("nope", "resnet50", "RESNET50-IMAGENET", "{model}x", "x" * 120):
        add("model_name", "infer on %s" % name[:20], 404, KSERVE,
            post("/v2/models/%s/infer" % name, b'{"inputs":[]}', "application/json"))
    add("model_name", "metadata of nope", 404, KSERVE, lambda: request("GET", "/v2/models/nope"))
    add("model_name", "ready of nope", 404, KSERVE, lambda: request("GET", "/v2/models/nope/ready"))
    # A name longer than the route's segment buffer matches no route: a routing 404.
    add("model_name", "infer on a 300-character name", 404, NESTED,
        post("/v2/models/%s/infer" % ("y" * 300), b"{}", "application/json"))


# ---------------------------------------------------------------- KServe cases

def kjson(add, doc, status, name, cat="kserve_json"):
    """Adds a KServe JSON infer case; doc is raw bytes or a document to serialize."""
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    add(cat, name, status, KSERVE, post(INFER, body, "application/json"))


def shape4():
    """The model's NCHW input shape for one image."""
    return [1, 3, INPUT_HW[0], INPUT_HW[1]]


def image_in(dog, **kw):
    """A KServe document with one BYTES "image" input (100 bytes of dog.jpg), fields overridden by kw."""
    return {"inputs": [dict({"name": "image", "datatype": "BYTES", "shape": [1],
                             "data": [base64.b64encode(dog[:100]).decode()]}, **kw)]}


def fp32_in(**kw):
    """A KServe document with one FP32 "input" tensor (data [0]), fields overridden by kw."""
    return {"inputs": [dict({"name": "input", "datatype": "FP32", "shape": shape4(), "data": [0]}, **kw)]}


def kserve_json(add, photos):
    """KServe JSON: malformed, truncated or badly structured documents (400) and oversized batches (413)."""
    malformed_json(add, photos.gif)
    dog, gif, size = photos.dog, photos.gif, INPUT_HW
    kjson(add, {}, 400, "{}")
    kjson(add, {"inputs": {}}, 400, "inputs is an object")
    kjson(add, {"inputs": []}, 400, "inputs empty")
    kjson(add, {"inputs": image_in(dog)["inputs"] * 2}, 400, "two inputs")
    kjson(add, {"inputs": [{"datatype": "BYTES", "shape": [1], "data": []}]}, 400, "input without name")
    kjson(add, {"inputs": [{"name": "image", "shape": [1], "data": []}]}, 400, "input without datatype")
    kjson(add, image_in(dog, datatype=7), 400, "datatype is a number")
    kjson(add, {"inputs": [5]}, 400, "input is a number")
    kjson(add, dict(image_in(dog), outputs={}), 400, "outputs is an object")
    kjson(add, dict(image_in(dog), outputs=[]), 400, "outputs empty")
    kjson(add, dict(image_in(dog), outputs=[{"name": "logits"}] * 3), 400, "three outputs")
    kjson(add, dict(image_in(dog), outputs=[{"name": "probabilities"}] * 2), 400, "output twice")
    kjson(add, dict(image_in(dog), outputs=[{"name": "softmax"}]), 400, "unknown output")
    kjson(add, dict(image_in(dog), outputs=[{}]), 400, "output without name")
    kjson(add, fp32_in(data=None), 400, "FP32 without data")
    kjson(add, fp32_in(data="AAAA"), 400, "FP32 data is a string")
    kjson(add, image_in(dog, data=[base64.b64encode(gif).decode()]), 400, "BYTES: a GIF")
    kjson(add, image_in(dog, data=[base64.b64encode(dog[:2000]).decode()]), 400, "BYTES: truncated JPEG")
    kjson(add, image_in(dog, data=["!!!not base64!!!"]), 400, "BYTES: invalid base64")
    kjson(add, image_in(dog, data=["QUJD="]), 400, "BYTES: bad base64 padding")
    kjson(add, image_in(dog, data=[""]), 400, "BYTES: empty string")
    kjson(add, image_in(dog, data=[{"b64": "####"}]), 400, "BYTES: {b64} invalid")
    kjson(add, image_in(dog, data=[base64.b64encode(patch_sof(dog, 65500, 65500)).decode()]), 413,
          "BYTES: 65500x65500", "kserve_json")
    kjson(add, image_in(dog, shape=[MAX_IMAGES + 1], data=["AA=="] * (MAX_IMAGES + 1)), 413, "BYTES: 5 images > max")
    kjson(add, image_in(dog, shape=[2 ** 62], data=[]), 413, "BYTES: shape 2^62")
    kjson(add, fp32_in(shape=[MAX_IMAGES + 1, 3, size[0], size[1]]), 413, "FP32: 5 images > max")
    kjson(add, fp32_in(shape=[2 ** 62, 3, size[0], size[1]]), 413, "FP32: batch 2^62")


def malformed_json(add, gif):
    """KServe JSON bodies that are not valid JSON, or are cut short: 400."""
    for i, bad in enumerate((b"{", b"[]", b"null", b"1", b'"str"', b"{'inputs':[]}", b'{"inputs":[]}x',
                             b'{"inputs":[{"name":"input","datatype":"FP32","shape":[1],"data":[NaN]}]}',
                             b'{"inputs":[{"name":"input","datatype":"FP32","shape":[1],"data":[Infinity]}]}',
                             b'{"inputs":[{"name":"input","datatype":"FP32","shape":[1],"data":[1e99999]}]}',
                             b"\xef\xbb\xbf{}", b'{"a":"\xff\xfe"}', b"[" * 5000 + b"]" * 5000,
                             b'{"inputs":' + b"[" * 3000 + b"]" * 3000 + b"}", b"\x00" * 16,
                             b'{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["\\ud800"]}]}')):
        kjson(add, bad, 400, "malformed JSON #%d %r" % (i, bad[:24]))
    valid = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                    "data": [base64.b64encode(gif).decode()]}]}).encode()
    for cut in (1, 10, len(valid) // 2, len(valid) - 1):
        kjson(add, valid[:cut], 400, "JSON truncated at %d" % cut)


def kserve_tensors(add, photos):
    """KServe JSON with wrong tensor names, datatypes, shapes or data: 422."""
    dog, size = photos.dog, INPUT_HW
    for name, doc in (
            ("unknown input name", fp32_in(name="pixels")),
            ("input name empty", fp32_in(name="")),
            ("FP32 input as INT64", fp32_in(datatype="INT64")),
            ("FP32 input as FP16", fp32_in(datatype="FP16")),
            ("FP32 input as BYTES", fp32_in(datatype="BYTES")),
            ("FP32 input as fp32", fp32_in(datatype="fp32")),
            ("image input as FP32", image_in(dog, datatype="FP32")),
            ("image input as UINT8", image_in(dog, datatype="UINT8")),
            ("shape [1,3,H]", fp32_in(shape=[1, 3, size[0]])),
            ("shape [1,3,H,W+1]", fp32_in(shape=[1, 3, size[0], size[1] + 1])),
            ("shape [1,4,H,W]", fp32_in(shape=[1, 4, size[0], size[1]])),
            ("shape [1,H,W,3] (NHWC)", fp32_in(shape=[1, size[0], size[1], 3])),
            ("shape [0,3,H,W]", fp32_in(shape=[0, 3, size[0], size[1]])),
            ("shape [-1,3,H,W]", fp32_in(shape=[-1, 3, size[0], size[1]])),
            ("shape [1.5,3,H,W]", fp32_in(shape=[1.5, 3, size[0], size[1]])),
            ("shape is a string", fp32_in(shape="1,3,224,224")),
            ("shape []", fp32_in(shape=[])),
            ("shape with 5 dims", fp32_in(shape=[1, 1, 3, size[0], size[1]])),
            ("FP32 data too short", fp32_in(data=[0.5] * 10)),
            ("FP32 data nested too deep", fp32_in(data=[[[[[[[[[[0]]]]]]]]]])),
            ("FP32 data strings", fp32_in(data=["0"] * 4)),
            ("FP32 data null", fp32_in(data=[None])),
            ("FP32 data booleans", fp32_in(data=[True])),
            ("FP32 data objects", fp32_in(data=[{}])),
            ("BYTES shape [1,2]", image_in(dog, shape=[1, 2])),
            ("BYTES shape [1,1,1]", image_in(dog, shape=[1, 1, 1])),
            ("BYTES shape [0]", image_in(dog, shape=[0], data=[])),
            ("BYTES shape [2], one element", image_in(dog, shape=[2])),
            ("BYTES data missing", image_in(dog, data=None)),
            ("BYTES element a number", image_in(dog, data=[5])),
            ("BYTES element null", image_in(dog, data=[None])),
            ("BYTES {b64} not a string", image_in(dog, data=[{"b64": 5}])),
            ("BYTES data is a string", image_in(dog, data="AAAA")),
    ):
        kjson(add, doc, 422, name, "kserve_tensor")
    fp32_values(add)


def fp32_values(add):
    """Full-length FP32 JSON data with one value that is not a finite float32, or one value too many: 422."""
    count = 3 * INPUT_HW[0] * INPUT_HW[1]
    for label, token in (("1e39 (float32 +Inf)", "1e39"), ("-1e39 (float32 -Inf)", "-1e39"),
                         ("1e308", "1e308"), ("-3.5e38", "-3.5e38")):
        for where in (0, count - 1):
            vals = ["0"] * count
            vals[where] = token
            body = ('{"inputs":[{"name":"input","datatype":"FP32","shape":%s,"data":[%s]}]}'
                    % (json.dumps(shape4()), ",".join(vals))).encode()
            kjson(add, body, 422, "FP32 %s at %d" % (label, where), "kserve_tensor")
    vals = ",".join(["0"] * (count + 1))
    kjson(add, ('{"inputs":[{"name":"input","datatype":"FP32","shape":%s,"data":[%s]}]}'
                % (json.dumps(shape4()), vals)).encode(), 422, "FP32 data one too long", "kserve_tensor")


def kbin(add, header, tail, status, name, ihcl=None, shape=KSERVE):
    """Adds a binary-data extension case: JSON header (dict or bytes) + tail, with this IHCL."""
    hj = json.dumps(header).encode() if isinstance(header, dict) else header
    h = {"Content-Type": "application/octet-stream",
         "Inference-Header-Content-Length": str(len(hj)) if ihcl is None else ihcl}
    add("kserve_binary", name, status, shape, post(INFER, hj + tail, None, h))


def fp32_nbytes():
    """Bytes of one image's FP32 tensor."""
    return 3 * INPUT_HW[0] * INPUT_HW[1] * 4


def fp32_hdr(bds=None, **kw):
    """A binary-data header for one FP32 "input" tensor of bds bytes (default: the right size)."""
    bds = fp32_nbytes() if bds is None else bds
    return {"inputs": [dict({"name": "input", "datatype": "FP32", "shape": shape4(),
                             "parameters": {"binary_data_size": bds}}, **kw)]}


def bytes_hdr(bds, n=1):
    """A binary-data header for n BYTES "image" elements in bds bytes."""
    return {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [n],
                        "parameters": {"binary_data_size": bds}}]}


def elem(data):
    """One BYTES element of the binary-data extension: a 4-byte length, then the data."""
    return struct.pack("<I", len(data)) + data


def kserve_binary(add, photos):
    """KServe binary-data extension: bad IHCL and sizes (400), bad tensors (422), huge image (413)."""
    nbytes, size = fp32_nbytes(), INPUT_HW
    zeros = b"\0" * nbytes
    kbin(add, fp32_hdr(), zeros, 400, "IHCL past the end", ihcl=str(len(json.dumps(fp32_hdr())) + nbytes + 1))
    for ihcl, name in (("abc", "IHCL not a number"), ("-1", "IHCL negative"), ("", "IHCL empty"),
                       ("18446744073709551616", "IHCL 2^64"), ("0", "IHCL 0"), ("10", "IHCL cuts the JSON")):
        kbin(add, fp32_hdr(), zeros, 400, name, ihcl=ihcl)
    kbin(add, fp32_hdr(), zeros[:-4], 400, "FP32 binary 4 bytes short")
    kbin(add, fp32_hdr(), zeros + b"\0" * 4, 400, "FP32 binary 4 bytes over")
    kbin(add, fp32_hdr(), b"", 400, "FP32 binary missing")
    kbin(add, fp32_hdr(nbytes - 4), zeros[:-4], 422, "FP32 binary_data_size wrong")
    kbin(add, fp32_hdr(-4), zeros, 422, "FP32 binary_data_size negative")
    kbin(add, fp32_hdr("602112"), zeros, 422, "FP32 binary_data_size a string")
    kbin(add, fp32_hdr(datatype="FP16"), zeros, 422, "FP32 binary labelled FP16")
    kbin(add, fp32_hdr(shape=[1, 3, size[0], size[1] - 1]), zeros, 422, "FP32 binary wrong shape")
    for label, bits in (("NaN", 0x7FC00000), ("+Inf", 0x7F800000), ("-Inf", 0xFF800000), ("signalling NaN", 0x7F800001)):
        for where in (0, nbytes // 4 - 1):
            data = bytearray(zeros)
            data[where * 4:where * 4 + 4] = struct.pack("<I", bits)
            kbin(add, fp32_hdr(), bytes(data), 422, "FP32 binary %s at %d" % (label, where))
    kserve_binary_bytes(add, photos)


def kserve_binary_bytes(add, photos):
    """KServe binary-data extension, BYTES input: broken length prefixes and bad images."""
    dog, gif = photos.dog, photos.gif
    kbin(add, bytes_hdr(3), b"\x05\0\0", 400, "BYTES length prefix truncated")
    kbin(add, bytes_hdr(4 + 100), struct.pack("<I", 1000) + dog[:100], 400, "BYTES element longer than the data")
    kbin(add, bytes_hdr(4 + 100), struct.pack("<I", 0xFFFFFFFF) + dog[:100], 400, "BYTES element length 2^32-1")
    kbin(add, bytes_hdr(len(elem(gif))), elem(gif), 400, "BYTES binary GIF")
    kbin(add, bytes_hdr(len(elem(b""))), elem(b""), 400, "BYTES binary empty element")
    kbin(add, bytes_hdr(len(elem(dog[:3000]))), elem(dog[:3000]), 400, "BYTES binary truncated JPEG")
    kbin(add, bytes_hdr(2 * len(elem(gif)), 2), elem(gif), 400, "BYTES binary second element missing")
    kbin(add, bytes_hdr(len(elem(gif)) + 1), elem(gif) + b"\0", 400, "BYTES binary trailing byte")
    big = patch_sof(dog, 65500, 65500)
    kbin(add, bytes_hdr(len(elem(big))), elem(big), 413, "BYTES binary 65500x65500")


# ---------------------------------------------------------------- protocol cases

def raw(method, path, headers, tail=b"", version="HTTP/1.1"):
    """A send() that writes a hand-built request (no body unless tail) and parses the answer."""
    return lambda: parse_one(exchange(build(method, path, None, headers, version=version) + tail))[0]


def chunked(path, total, ctype):
    """A send() that posts `total` zero bytes with chunked encoding."""
    def send():
        piece = b"\0" * 65536
        data = build("POST", path, None, {"Content-Type": ctype, "Transfer-Encoding": "chunked"})
        n = 0
        while n < total:
            data += b"%x\r\n" % len(piece) + piece + b"\r\n"
            n += len(piece)
        return parse_one(exchange(data + b"0\r\n\r\n"))[0]
    return send


def oversized(add, photos):
    """Oversized bodies (413), URLs (414) and headers (431); just-within sizes that resnetd answers."""
    dog = photos.dog
    add("oversized", "Content-Length over max_body_bytes", 413, NESTED,
        raw("POST", "/classify", {"Content-Type": "image/jpeg", "Content-Length": str(MAX_BODY + 1)}))
    add("oversized", "Content-Length over max_body_bytes (KServe)", 413, KSERVE,
        lambda: parse_one(exchange(build("POST", INFER.format(model=MODEL), None,
                                         {"Content-Type": "application/json", "Content-Length": str(MAX_BODY * 4)})))[0])
    add("oversized", "body over max_body_bytes, sent", 413, NESTED,
        post("/classify", b"\xff\xd8" + b"\0" * MAX_BODY))
    add("oversized", "chunked body over max_body_bytes", 413, NESTED, chunked("/classify", MAX_BODY * 3 // 2, "image/jpeg"))
    add("oversized", "chunked body over max_body_bytes (KServe)", 413, KSERVE,
        chunked(INFER.format(model=MODEL), MAX_BODY * 3 // 2, "application/json"))
    add("oversized", "Expect: 100-continue with an oversized body", 413, NESTED,
        raw("POST", "/classify", {"Content-Type": "image/jpeg", "Content-Length": str(MAX_BODY + 1),
                                  "Expect": "100-continue"}))
    # libmicrohttpd answers these itself, before resnetd sees the request (README).
    add("oversized", "100 KB URL", 414, MHD, lambda: request("GET", "/" + "a" * 100000))
    add("oversized", "40 KB query", 414, MHD, lambda: request("POST", "/classify?topk=" + "9" * 40000, dog,
                                                              {"Content-Type": "image/jpeg"}))
    add("oversized", "100 KB header", 431, MHD, lambda: request("GET", "/healthz", None, {"X-Big": "b" * 100000}))
    add("oversized", "5000 headers", 431, MHD,
        lambda: parse_one(exchange(build("GET", "/healthz", None, {"X-H%d" % i: "v" for i in range(5000)})))[0])
    # within libmicrohttpd's 32 KiB: resnetd answers
    add("oversized", "8 KB path", 404, NESTED, lambda: request("GET", "/" + "a" * 8000))
    add("oversized", "8 KB topk", 400, NESTED, post("/classify?topk=" + "9" * 8000, dog))
    add("oversized", "8 KB header on a bad request", 415, NESTED, post("/classify", dog, "text/plain", {"X-Big": "b" * 8000}))


def framing(add):
    """HTTP framing errors: missing or malformed Content-Length, bad chunks, bad versions."""
    jpeg = {"Content-Type": "image/jpeg"}
    add("framing", "POST without Content-Length", 411, NESTED, raw("POST", "/classify", jpeg))
    add("framing", "KServe POST without Content-Length", 411, KSERVE,
        lambda: parse_one(exchange(build("POST", INFER.format(model=MODEL), None, {"Content-Type": "application/json"})))[0])
    add("framing", "HTTP/1.0 POST without Content-Length", 411, NESTED,
        raw("POST", "/classify", jpeg, version="HTTP/1.0"))
    add("framing", "Content-Length -5", 400, MHD, raw("POST", "/classify", dict(jpeg, **{"Content-Length": "-5"})))
    add("framing", "Content-Length abc", 400, MHD, raw("POST", "/classify", dict(jpeg, **{"Content-Length": "abc"})))
    add("framing", "Content-Length 10^23", 413, MHD,
        raw("POST", "/classify", dict(jpeg, **{"Content-Length": "9" * 23})))
    add("framing", "bad chunk size", 400, MHD,
        raw("POST", "/classify", dict(jpeg, **{"Transfer-Encoding": "chunked"}), b"ZZZ\r\nabc\r\n0\r\n\r\n"))
    add("framing", "HTTP/9.9", 505, MHD, lambda: parse_one(exchange(build("GET", "/healthz", version="HTTP/9.9")))[0])
    add("framing", "two Content-Lengths, short first", 400, NESTED,
        raw("POST", "/classify", dict(jpeg, **{"Content-Length": "3"}), b"abcde"))
    add("framing", "Transfer-Encoding and Content-Length", 400, NESTED,
        raw("POST", "/classify", dict(jpeg, **{"Content-Length": "3", "Transfer-Encoding": "chunked"}),
            b"3\r\nabc\r\n0\r\n\r\n"))
    # request smuggling and RFC 9112 framing (issue 15): refused on the headers, connection closed
    def closed(data, tail=b""):
        def send():
            s = connect()
            try:
                s.sendall(data + tail)
                out = recv_all(s)
            finally:
                s.close()
            resp, rest = parse_one(out)
            if resp is not None and (resp.headers.get("connection", "").lower() != "close" or rest):
                raise Fail("connection not closed after the refusal (%d more bytes): %r" % (len(rest), rest[:80]))
            return resp
        return send
    post_head = "POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    add("framing", "Content-Length + chunked, second request behind", 400, NESTED,
        closed((post_head + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n").encode(),
               b"3\r\nabc\r\n0\r\n\r\n" + smuggled))
    add("framing", "two different Content-Lengths", 400, NESTED,
        closed((post_head + "Content-Length: 3\r\nContent-Length: 5\r\n\r\n").encode(), b"abcde" + smuggled))
    add("framing", "Content-Length list 3, 5", 400, MHD,  # libmicrohttpd answers this one itself
        lambda: parse_one(exchange((post_head + "Content-Length: 3, 5\r\n\r\n").encode() + b"abcde"))[0])
    for te, status in (("gzip, chunked", 501), ("identity", 501), ("chunkedX", 501), ("chunked, gzip", 501),
                       ("chunked, chunked", 400)):
        add("framing", "Transfer-Encoding %r" % te, status, NESTED,
            closed((post_head + "Transfer-Encoding: %s\r\n\r\n" % te).encode(), b"3\r\nabc\r\n0\r\n\r\n"))
    add("framing", "two Transfer-Encoding: chunked fields", 400, NESTED,
        closed((post_head + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n").encode(),
               b"0\r\n\r\n"))
    add("framing", "HTTP/1.9", 505, NESTED, closed(b"GET /healthz HTTP/1.9\r\nHost: x\r\n\r\n"))
    add("framing", "HTTP/1.1 without Host", 400, NESTED, closed(b"GET /healthz HTTP/1.1\r\n\r\n"))
    add("framing", "HTTP/1.1 with two Hosts", 400, NESTED, closed(b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"))
    add("framing", "HTTP/1.0 without Host", 200, OK,
        lambda: parse_one(exchange(b"GET /healthz HTTP/1.0\r\n\r\n"))[0])
    add("framing", "bare CR in a header value", 400, NESTED,
        closed(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n"))
    add("framing", "bare LF line ends", 404, NESTED,
        lambda: parse_one(exchange(b"GET /nope HTTP/1.1\nHost: x\nConnection: close\n\n"))[0])


# ---------------------------------------------------------------- pipelining and keep-alive

def pipeline(reqs, want):
    """A send() that writes every request in one go; wants len(want) answers with these
    (status, shape) in order."""
    def send():
        s = connect()
        try:
            s.sendall(b"".join(reqs))
            buf, got = b"", []
            while len(got) < len(want):
                resp, buf = parse_one(buf)
                if resp is not None:
                    got.append(resp)
                    continue
                b = s.recv(1 << 16)
                if not b:
                    break
                buf += b
            if len(got) != len(want):
                raise Fail("%d answers to %d pipelined requests: %r" % (len(got), len(want), [r.status for r in got]))
            for r, (status, shape) in zip(got, want):
                check_resp(r, status, shape)
            return got[-1]
        finally:
            s.close()
    return send


def keep(method, path, body=None, headers=None):
    """A keep-alive request's bytes."""
    return build(method, path, body, headers, close=False)


def bad_keepalive_requests(photos):
    """Bad keep-alive requests: (404, text/plain 415, GIF-as-JPEG 400, malformed KServe JSON 400)."""
    return (keep("GET", "/nope"), keep("POST", "/classify", b"abc", {"Content-Type": "text/plain"}),
            keep("POST", "/classify", photos.gif, {"Content-Type": "image/jpeg"}),
            keep("POST", INFER.format(model=MODEL), b"{", {"Content-Type": "application/json"}))


def pipelining(add, photos):
    """Pipelined bad requests on one connection: each must get its answer, in order."""
    nope, bad_ct, gifreq, kbad = bad_keepalive_requests(photos)
    add("pipelining", "3 x bad /classify bodies", 400, NESTED, pipeline([gifreq] * 3, [(400, NESTED)] * 3))
    add("pipelining", "text/plain, GIF, truncated", 400, NESTED,
        pipeline([bad_ct, gifreq, keep("POST", "/classify", photos.dog[:999], {"Content-Type": "image/jpeg"})],
                 [(415, NESTED), (400, NESTED), (400, NESTED)]))
    add("pipelining", "20 x 404", 404, NESTED, pipeline([nope] * 20, [(404, NESTED)] * 20))
    add("pipelining", "404, 405, 415, healthz", 200, OK,
        pipeline([nope, keep("GET", "/classify"), bad_ct, keep("GET", "/healthz")],
                 [(404, NESTED), (405, NESTED), (415, NESTED), (200, OK)]))
    add("pipelining", "5 x malformed KServe JSON", 400, KSERVE, pipeline([kbad] * 5, [(400, KSERVE)] * 5))
    add("pipelining", "KServe 404 model then 422", 422, KSERVE,
        pipeline([keep("POST", "/v2/models/nope/infer", b"{}", {"Content-Type": "application/json"}),
                  keep("POST", INFER.format(model=MODEL), json.dumps(fp32_in(name="x")).encode(),
                       {"Content-Type": "application/json"})],
                 [(404, KSERVE), (422, KSERVE)]))


def keepalive_many(n, photos):
    """A send() that sends n bad requests one after the other on one keep-alive connection."""
    def send():
        nope, bad_ct, gifreq, kbad = bad_keepalive_requests(photos)
        s = connect()
        try:
            buf = b""
            plan = [(bad_ct, 415), (nope, 404), (gifreq, 400), (kbad, 400), (keep("DELETE", "/classify"), 405)]
            last = None
            for i in range(n):
                data, status = plan[i % len(plan)]
                s.sendall(data)
                while True:
                    resp, buf = parse_one(buf)
                    if resp is not None:
                        break
                    b = s.recv(1 << 16)
                    if not b:
                        raise Fail("server closed the keep-alive connection after %d requests" % i)
                    buf += b
                check_resp(resp, status, KSERVE if data is kbad else NESTED)
                last = resp
            return last
        finally:
            s.close()
    return send


def broken(data, shut=False, linger=0.0):
    """The client breaks the exchange: no answer is owed; the server must live on."""
    def send():
        s = connect(10)
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
            if linger:
                time.sleep(linger)
        finally:
            s.close()
        return None
    return send


def many_idle(n):
    """A send() that opens n connections and closes them without a request."""
    def send():
        socks = [connect(10) for _ in range(n)]
        for s in socks:
            s.close()
        return None
    return send


def drip():
    """Sends a 404 request a byte at a time."""
    data = build("GET", "/nope")
    s = connect(30)
    try:
        for i in range(len(data)):
            s.sendall(data[i:i + 1])
            time.sleep(0.005)
        return parse_one(recv_all(s))[0]
    finally:
        s.close()


def keepalive_abuse(add, photos, rng):
    """Keep-alive abuse: many requests on one connection, broken exchanges, idle connections, dripping."""
    dog = photos.dog
    add("keepalive", "100 bad requests on one connection", 405, NESTED, keepalive_many(100, photos))
    add("keepalive", "Content-Length 100000, 10 bytes, close", None, NONE,
        broken(build("POST", "/classify", None, {"Content-Type": "image/jpeg", "Content-Length": "100000"}) + b"\xff\xd8" * 5))
    add("keepalive", "headers cut mid-line, close", None, NONE, broken(b"POST /classify HTTP/1.1\r\nContent-Ty"))
    add("keepalive", "half a body then SHUT_WR", None, NONE,
        broken(build("POST", "/classify", None, {"Content-Type": "image/jpeg", "Content-Length": str(len(dog))}) + dog[:5000],
               shut=True, linger=0.2))
    add("keepalive", "request then close before the answer", None, NONE, broken(build("POST", "/classify", dog[:5000],
                                                                               {"Content-Type": "image/jpeg"})))
    add("keepalive", "binary garbage then close", None, NONE, broken(bytes(rng.getrandbits(8) for _ in range(3000))))
    add("keepalive", "50 connections opened and closed", None, NONE, many_idle(50))
    add("keepalive", "404 request sent a byte at a time", 404, NESTED, drip)


# ---------------------------------------------------------------- main

def run_case(case):
    resp = case.send()
    if case.shape == NONE:
        return None
    if resp is None:
        raise Fail("no response")
    check_resp(resp, case.status, case.shape)
    if case.check:
        case.check(resp)
    return resp.status


def healthz():
    r = request("GET", "/healthz", timeout=30)
    if r.status != 200 or r.json() != {"status": "ok"}:
        raise Fail("/healthz answered %d %r" % (r.status, r.body[:200]))


def real_request(dog):
    r = request("POST", "/classify?topk=3", dog, {"Content-Type": "image/jpeg"})
    if r.status != 200:
        raise Fail("real request: %d %r" % (r.status, r.body[:300]))
    doc = r.json()
    label = doc["results"][0]["predictions"][0]["label"]
    if label != "malamute" or len(doc["results"][0]["predictions"]) != 3:
        raise Fail("real request: top-1 %r (wanted malamute): %r" % (label, r.body[:300]))
    return doc


def main():
    global PORT, MODEL, INPUT_HW
    if len(sys.argv) < 2:
        print("usage: test_bad_requests.py RESNETD_BINARY [MODEL]", file=sys.stderr)
        return 2
    binary = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    model = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "..", "models", "resnet50.safetensors")
    if not os.path.isfile(model):
        print("FAIL: %s is missing; make it with: tools/fetch_model.sh --resnetd %s" % (model, binary),
              file=sys.stderr)
        return 1
    if not os.path.isfile(os.path.join(PHOTOS, "dog.jpg")):
        print("FAIL: %s/dog.jpg is missing (apt-get install darknet)" % PHOTOS, file=sys.stderr)
        return 1
    for tool in ("jpegtran", "cjpeg", "djpeg"):
        if not shutil.which(tool):
            print("FAIL: %s is missing (apt-get install libjpeg-turbo-progs)" % tool, file=sys.stderr)
            return 1

    # meson's timeout sends SIGTERM: unwind through the finally that kills the server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    srv = None
    tools = tempfile.mkdtemp(prefix="resnetd_bad_tools_")
    try:
        srv = Server(binary, model, ["--max-body-bytes", str(MAX_BODY),
                                     "--max-images-per-request", str(MAX_IMAGES),
                                     "--http-threads", "2", "--request-timeout-ms", "120000",
                                     "--connection-timeout-s", "10", "--max-queue-length", "16"])
        PORT = srv.port
        srv.wait_ready()
        dog = read(os.path.join(PHOTOS, "dog.jpg"))
        # warm-up: oneDNN builds the batch-1 plan and the allocators settle on the
        # first real requests, so the RSS baseline is taken after a few of them.
        MODEL = real_request(dog)["model"]
        meta = request("GET", "/v2/models/%s" % MODEL).json()
        INPUT_HW = tuple(meta["inputs"][0]["shape"][2:4])
        for _ in range(3):
            real_request(dog)
        rss_start = srv.rss_kb()

        t0 = time.monotonic()
        cases = build_cases(tools)
        print("%d cases generated in %.1f s; server pid %d on port %d%s" %
              (len(cases), time.monotonic() - t0, srv.proc.pid, PORT, " (ASan build)" if srv.asan else ""))
        if len(cases) < 200:
            raise Fail("only %d cases generated" % len(cases))
        failures = []
        by_cat = collections.defaultdict(collections.Counter)
        t0 = time.monotonic()
        for i, case in enumerate(cases):
            try:
                got = run_case(case)
                by_cat[case.category][got if got is not None else "no answer"] += 1
            except (Fail, OSError, ValueError, KeyError) as e:
                failures.append("%s / %s: %s: %s" % (case.category, case.name, type(e).__name__, e))
                by_cat[case.category]["FAILED"] += 1
            if not srv.alive():
                raise Fail("resnetd died during case %s / %s:\n%s" % (case.category, case.name, srv.tail()))
            if (i + 1) % HEALTH_EVERY == 0:
                healthz()
        elapsed = time.monotonic() - t0

        healthz()
        real_request(dog)
        rss_end = srv.rss_kb()
        print("\n%-16s %5s  statuses" % ("category", "cases"))
        for cat, counts in by_cat.items():
            print("%-16s %5d  %s" % (cat, sum(counts.values()),
                                     ", ".join("%s x%d" % (k, v) for k, v in sorted(counts.items(), key=str))))
        print("%d cases in %.1f s; VmRSS %d kB after warm-up, %d kB at the end (%+.1f%%)" %
              (len(cases), elapsed, rss_start, rss_end, 100.0 * (rss_end - rss_start) / rss_start))
        if failures:
            print("\n%d FAILED:" % len(failures))
            for f in failures:
                print("  " + f)
        if rss_end > rss_start * 1.10:
            failures.append("VmRSS grew from %d kB to %d kB (> 10%%)" % (rss_start, rss_end))
            print("FAIL: " + failures[-1])

        status = srv.stop()
        log = srv.tail(100000)
        if status != 0:
            failures.append("resnetd exited with %r after SIGTERM" % status)
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in log:
                failures.append("sanitizer report in the server log: %s" % marker)
        if failures:
            print("FAIL: %d problems; server log %s, last lines:\n%s" % (len(failures), srv.log.name, srv.tail(30)))
            return 1
        print("PASS")
        os.unlink(srv.log.name)
        return 0
    except Fail as e:
        print("FAIL: %s" % e)
        if srv:
            print("server log %s, last lines:\n%s" % (srv.log.name, srv.tail(30)))
        return 1
    finally:
        if srv:
            srv.kill()
        shutil.rmtree(tools, ignore_errors=True)


PORT = 0
MODEL = ""
INPUT_HW = (224, 224)

if __name__ == "__main__":
    sys.exit(main())
