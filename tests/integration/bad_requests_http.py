"""bad_requests_http.py - test_bad_requests.py's protocol cases: methods and
paths, oversized and chunked bodies, broken framing, pipelining and
keep-alive abuse (idle, dripped and broken connections)."""
import json
import socket
import time

from bad_requests_kserve import fp32_in
from bad_requests_wire import (Fail, INFER, KSERVE, MAX_BODY, MHD, NESTED, NONE, OK, T, allow,
                               build, check_resp, connect, exchange, parse_one, post, recv_all,
                               request)


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
        lambda: parse_one(exchange(build("POST", INFER.format(model=T.model), None,
                                         {"Content-Type": "application/json", "Content-Length": str(MAX_BODY * 4)})))[0])
    add("oversized", "body over max_body_bytes, sent", 413, NESTED,
        post("/classify", b"\xff\xd8" + b"\0" * MAX_BODY))
    add("oversized", "chunked body over max_body_bytes", 413, NESTED, chunked("/classify", MAX_BODY * 3 // 2, "image/jpeg"))
    add("oversized", "chunked body over max_body_bytes (KServe)", 413, KSERVE,
        chunked(INFER.format(model=T.model), MAX_BODY * 3 // 2, "application/json"))
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
        lambda: parse_one(exchange(build("POST", INFER.format(model=T.model), None, {"Content-Type": "application/json"})))[0])
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
            keep("POST", INFER.format(model=T.model), b"{", {"Content-Type": "application/json"}))


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
                  keep("POST", INFER.format(model=T.model), json.dumps(fp32_in(name="x")).encode(),
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
