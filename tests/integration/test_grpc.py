#!/usr/bin/env python3
"""test_grpc.py - the KServe v2 gRPC front end (server/grpc) against a client
nobody here wrote: Debian's python3-grpcio, with the message classes
generated in this run from our server/grpc/grpc_service.proto by protoc
(protobuf-compiler), every call made through grpcio's generic
channel.unary_unary. One real `resnetd serve --grpc-port -1` with the real
default ResNet-50 and a bearer token; every answer is judged against the
REST server's answer for the same input in the same run:
  - ServerLive/ServerReady/ServerMetadata/ModelMetadata/ModelReady against
    GET /v2, /v2/models/NAME and /v2/models/NAME/ready;
  - ModelInfer FP32 (raw_input_contents and typed fp32_contents) logits and
    features equal to the REST KServe infer's (which the REST tests hold equal to
    PyTorch) within 1e-6 of max|logit|;
  - BYTES JPEG/PNG (typed bytes_contents and the raw 4-byte-length layout)
    probabilities equal to POST /classify's within 1e-6;
  - 8 concurrent calls on one channel, each answer its own;
  - NOT_FOUND, INVALID_ARGUMENT (malformed message, wrong shape, unknown
    output), UNAUTHENTICATED (no token, wrong token), UNIMPLEMENTED (unknown
    method), RESOURCE_EXHAUSTED (message over max_body_bytes),
    DEADLINE_EXCEEDED and a cancelled call, their queued images dropped unrun,
    and grpc-timeout honoured by the server alone (a hand-framed HTTP/2 call); non-HTTP/2 bytes
    and connections over grpc_max_connections closed, an idle connection
    closed after connection_timeout_s; the server stays
    healthy after all of it.
Skips (77) when grpcio or protoc is missing, but fails under CI=true.

usage: test_grpc.py RESNETD MODEL PROTO"""
import concurrent.futures
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from server_harness import check, failures, start_or_exit

PHOTOS = "/usr/share/darknet/data"
TOKEN = "grpc-test-token.42"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SERVICE = "/inference.GRPCInferenceService/"
MAX_CONNS = 4
MAX_BODY = 24 * 1024 * 1024  # 32 FP32 images fit (19 MB)
TOL = 1e-6
# Images batched with others: the kernels' summation order differs from a
# lone run's by ~1e-6 of the largest value (observed up to 1.1e-6)
TOL_BATCHED = 5e-6


def missing(what):
    if os.environ.get("CI") == "true":
        sys.exit(f"test_grpc.py: FAIL: {what} is missing under CI=true")
    print(f"test_grpc.py: SKIP: {what} is missing")
    sys.exit(77)


try:
    import grpc
    import numpy as np
except ImportError as e:
    missing(f"python3-grpcio/numpy ({e})")
if not shutil.which("protoc"):
    missing("protoc (protobuf-compiler)")


def generate(proto, out_dir):
    """grpc_service_pb2 compiled from our .proto now, imported."""
    subprocess.run(["protoc", f"--proto_path={os.path.dirname(proto)}", f"--python_out={out_dir}",
                    proto], check=True)
    sys.path.insert(0, out_dir)
    import grpc_service_pb2
    return grpc_service_pb2


class Client:
    def __init__(self, pb, port, token=TOKEN):
        self.pb = pb
        self.port = port
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.meta = [("authorization", f"Bearer {token}")] if token else []

    def stub(self, method, resp_cls, serialize=None):
        return self.channel.unary_unary(
            SERVICE + method, request_serializer=serialize or (lambda m: m.SerializeToString()),
            response_deserializer=resp_cls.FromString)

    def call(self, method, req, resp_cls, timeout=120, meta=None):
        return self.stub(method, resp_cls)(req, timeout=timeout,
                                           metadata=self.meta if meta is None else meta)

    def code(self, method, req, resp_cls, **kw):
        """The status code a failing call ends with (None when it succeeded)."""
        try:
            self.call(method, req, resp_cls, **kw)
            return None, ""
        except grpc.RpcError as e:
            return e.code(), e.details()


def infer_request(pb, model, x=None, images=None, raw=True, outputs=("logits",), req_id=""):
    r = pb.ModelInferRequest(model_name=model, id=req_id)
    t = r.inputs.add()
    if x is not None:
        t.name, t.datatype = "input", "FP32"
        t.shape.extend(x.shape)
        if raw:
            r.raw_input_contents.append(x.astype("<f4").tobytes())
        else:
            t.contents.fp32_contents.extend(x.ravel().tolist())
    else:
        t.name, t.datatype = "image", "BYTES"
        t.shape.append(len(images))
        if raw:
            r.raw_input_contents.append(b"".join(len(b).to_bytes(4, "little") + b for b in images))
        else:
            t.contents.bytes_contents.extend(images)
    for o in outputs:
        r.outputs.add().name = o
    return r


def output(resp, name):
    for i, o in enumerate(resp.outputs):
        if o.name == name:
            return np.frombuffer(resp.raw_output_contents[i], dtype="<f4").reshape(tuple(o.shape))
    return None


def rest_json(srv, method, path, body=None):
    st, _, data = srv.request(method, path, body=body,
                              headers=dict(AUTH, **({"Content-Type": "application/json"}
                                                    if body else {})), timeout=120)
    return st, json.loads(data)


def rest_outputs(srv, model, x, names):
    """The REST KServe infer's outputs for tensor x: {name: array}."""
    body = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": list(x.shape),
                                   "data": [float(v) for v in x.ravel()]}],
                       "outputs": [{"name": n} for n in names]}).encode()
    st, doc = rest_json(srv, "POST", f"/v2/models/{model}/infer", body)
    assert st == 200, doc
    return {o["name"]: np.array(o["data"], dtype=np.float32).reshape(o["shape"])
            for o in doc["outputs"]}


def classify_probs(srv, image, n_classes):
    st, _, data = srv.request("POST", "/classify?topk=1000", body=image,
                              headers=dict(AUTH, **{"Content-Type": "image/jpeg"}), timeout=120)
    assert st == 200, data
    p = np.zeros(n_classes)
    for pred in json.loads(data)["results"][0]["predictions"]:
        p[pred["index"]] = pred["probability"]
    return p


def close(what, got, want, tol):
    if not check(got is not None and got.shape == want.shape,
                 f"{what}: shape {None if got is None else got.shape} != {want.shape}"):
        return
    err = float(np.max(np.abs(got.astype(np.float64) - want)) / max(np.max(np.abs(want)), 1e-30))
    print(f"  {what}: max error {err:.2e} of max|value|")
    check(err <= tol, f"{what}: error {err:.3g} > {tol}")


def test_health_and_metadata(c, srv, model):
    pb = c.pb
    check(c.call("ServerLive", pb.ServerLiveRequest(), pb.ServerLiveResponse).live, "ServerLive")
    check(c.call("ServerReady", pb.ServerReadyRequest(), pb.ServerReadyResponse).ready,
          "ServerReady")
    _, rest = rest_json(srv, "GET", "/v2")
    meta = c.call("ServerMetadata", pb.ServerMetadataRequest(), pb.ServerMetadataResponse)
    check((meta.name, meta.version) == (rest["name"], rest["version"]),
          f"ServerMetadata {meta} != GET /v2 {rest}")
    _, rest = rest_json(srv, "GET", f"/v2/models/{model}")
    mm = c.call("ModelMetadata", pb.ModelMetadataRequest(name=model), pb.ModelMetadataResponse)
    as_list = lambda ts: [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
                          for t in ts]
    # gRPC's ModelInfer serves probabilities, logits and features (REST also cam)
    rest_outputs = [o for o in rest["outputs"] if o["name"] != "cam"]
    check((mm.name, list(mm.versions), mm.platform, as_list(mm.inputs), as_list(mm.outputs)) ==
          (rest["name"], rest["versions"], rest["platform"], rest["inputs"], rest_outputs),
          f"ModelMetadata {mm} != REST {rest}")
    st, rest = rest_json(srv, "GET", f"/v2/models/{model}/ready")
    ready = c.call("ModelReady", pb.ModelReadyRequest(name=model), pb.ModelReadyResponse)
    check(ready.ready == rest["ready"] == True, f"ModelReady {ready} vs REST {st} {rest}")
    newest = mm.versions[-1]  # equal to REST's (above)
    ready = c.call("ModelReady", pb.ModelReadyRequest(name=model, version=newest),
                   pb.ModelReadyResponse)
    check(ready.ready, f"ModelReady of version {newest}: {ready}")
    for method, req, resp in (("ModelReady", pb.ModelReadyRequest(name="nope"),
                               pb.ModelReadyResponse),
                              ("ModelReady", pb.ModelReadyRequest(name=model, version="777"),
                               pb.ModelReadyResponse),
                              ("ModelReady", pb.ModelReadyRequest(name=model, version="x1"),
                               pb.ModelReadyResponse),
                              ("ModelMetadata", pb.ModelMetadataRequest(name="nope"),
                               pb.ModelMetadataResponse)):
        code, msg = c.code(method, req, resp)
        check(code == grpc.StatusCode.NOT_FOUND and msg,
              f"{method} of an unknown model or version: {code} {msg!r}")


def test_fp32(c, srv, model):
    pb = c.pb
    x = np.random.default_rng(18).standard_normal((2, 3, 224, 224)).astype(np.float32)
    rest = rest_outputs(srv, model, x, ["logits", "features"])
    want = rest["logits"].astype(np.float64)
    _, meta = rest_json(srv, "GET", f"/v2/models/{model}")
    for raw in (True, False):
        what = "FP32 " + ("raw_input_contents" if raw else "contents.fp32_contents")
        resp = c.call("ModelInfer", infer_request(pb, model, x, raw=raw, req_id="r-18",
                                                  outputs=("features", "logits")),
                      pb.ModelInferResponse)
        check([o.name for o in resp.outputs] == ["features", "logits"],
              f"{what}: outputs {[o.name for o in resp.outputs]} not in the order asked")
        close(what + " features vs REST", output(resp, "features"),
              rest["features"].astype(np.float64), TOL)
        check(resp.model_name == model and resp.id == "r-18" and
              resp.model_version == meta["versions"][-1],
              f"{what}: model_name {resp.model_name!r} version {resp.model_version!r} "
              f"id {resp.id!r}")
        close(what + " logits vs REST", output(resp, "logits"), want, TOL)
    return x, want


def test_bytes(c, srv, model, n_classes):
    pb = c.pb
    from PIL import Image
    dog = open(f"{PHOTOS}/dog.jpg", "rb").read()
    eagle = open(f"{PHOTOS}/eagle.jpg", "rb").read()
    buf = io.BytesIO()
    Image.open(f"{PHOTOS}/scream.jpg").convert("RGB").save(buf, "PNG")
    png = buf.getvalue()
    want = {name: classify_probs(srv, data, n_classes)
            for name, data in (("dog", dog), ("eagle", eagle), ("scream.png", png))}
    resp = c.call("ModelInfer", infer_request(pb, model, images=[dog], raw=False,
                                              outputs=("probabilities",)), pb.ModelInferResponse)
    p = output(resp, "probabilities")
    check(p is not None and abs(float(p.sum()) - 1) < 1e-4, "dog probabilities do not sum to 1")
    close("BYTES dog.jpg vs /classify", p[0] if p is not None else None, want["dog"], TOL)
    resp = c.call("ModelInfer", infer_request(pb, model, images=[eagle, png, dog], raw=True,
                                              outputs=()), pb.ModelInferResponse)
    p = output(resp, "probabilities")
    check(p is not None and p.shape == (3, n_classes), "raw BYTES: probabilities [3, C] by default")
    if p is not None and p.shape == (3, n_classes):
        for i, name in enumerate(("eagle", "scream.png", "dog")):
            close(f"raw BYTES {name} vs /classify", p[i], want[name], TOL_BATCHED)
    return dog


def test_concurrent(c, model):
    """8 calls in flight on one channel (one HTTP/2 connection), different
    images each: every answer must be its own request's."""
    pb = c.pb
    rng = np.random.default_rng(8)
    xs = [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(8)]
    alone = [output(c.call("ModelInfer", infer_request(pb, model, x), pb.ModelInferResponse),
                    "logits") for x in xs]
    stub = c.stub("ModelInfer", pb.ModelInferResponse)
    futs = [stub.future(infer_request(pb, model, x, req_id=f"c{i}"), timeout=120,
                        metadata=c.meta) for i, x in enumerate(xs)]
    for i, f in enumerate(futs):
        resp = f.result()
        check(resp.id == f"c{i}", f"concurrent call {i}: id {resp.id!r}")
        # a mix-up would differ by the whole logit scale
        close(f"concurrent call {i} vs alone", output(resp, "logits"),
              alone[i].astype(np.float64), TOL_BATCHED)


def test_errors(c, srv, model, pb, port, dog):
    x = np.zeros((1, 3, 224, 224), np.float32)
    cases = [
        ("wrong model", "ModelInfer", infer_request(pb, "nope", x), {}, grpc.StatusCode.NOT_FOUND),
        ("wrong shape", "ModelInfer", infer_request(pb, model, np.zeros((1, 3, 8, 8), np.float32)),
         {}, grpc.StatusCode.INVALID_ARGUMENT),
        ("unknown output", "ModelInfer", infer_request(pb, model, x, outputs=("nope",)), {},
         grpc.StatusCode.INVALID_ARGUMENT),
        ("an output asked twice", "ModelInfer", infer_request(pb, model, x, outputs=("logits", "logits")),
         {}, grpc.StatusCode.INVALID_ARGUMENT),
        ("not an image", "ModelInfer", infer_request(pb, model, images=[b"not a jpeg"]), {},
         grpc.StatusCode.INVALID_ARGUMENT),
        ("no token", "ModelInfer", infer_request(pb, model, x), {"meta": []},
         grpc.StatusCode.UNAUTHENTICATED),
        ("wrong token", "ServerLive", pb.ServerLiveRequest(),
         {"meta": [("authorization", "Bearer wrong")]}, grpc.StatusCode.UNAUTHENTICATED),
    ]
    for what, method, req, kw, want in cases:
        resp_cls = pb.ModelInferResponse if method == "ModelInfer" else pb.ServerLiveResponse
        code, msg = c.code(method, req, resp_cls, **kw)
        check(code == want and msg, f"{what}: {code} {msg!r}, expected {want}")
    raw = lambda b: b
    for what, method, payload, want in (
            ("malformed message", "ModelInfer", b"\x0a\xff\xff\xff\xff\x0f",
             grpc.StatusCode.INVALID_ARGUMENT),
            ("unknown method", "ModelExplain", b"", grpc.StatusCode.UNIMPLEMENTED),
            ("message over max_body_bytes", "ModelInfer", b"\x3a" + b"\x80" * 1 + b"\x00" * (MAX_BODY + 16),
             grpc.StatusCode.RESOURCE_EXHAUSTED)):
        try:
            c.stub(method, pb.ModelInferResponse, raw)(payload, timeout=120, metadata=c.meta)
            code, msg = None, ""
        except grpc.RpcError as e:
            code, msg = e.code(), e.details()
        check(code == want, f"{what}: {code} {msg!r}, expected {want}")


def closed_within(sock, seconds):
    """True when the server closes sock (EOF or reset) within seconds."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_hostile_connections(c, port):
    """Bytes that are not HTTP/2 get the connection closed; connections over
    grpc_max_connections are closed at once; the server answers afterwards."""
    pb = c.pb
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 64)
        check(closed_within(s, 10), "HTTP/1.1 on the gRPC port: connection not closed")
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 4096)
        check(closed_within(s, 10), "a preface then garbage frames: connection not closed")
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(MAX_CONNS)]
    try:
        time.sleep(0.5)  # the server has accepted them all
        with socket.create_connection(("127.0.0.1", port)) as extra:
            check(closed_within(extra, 10),
                  f"connection {MAX_CONNS + 1} over grpc_max_connections was not closed")
    finally:
        for h in held:
            h.close()
    for _ in range(50):  # the held ones' threads notice the close within a tick
        code, msg = c.code("ServerLive", pb.ServerLiveRequest(), pb.ServerLiveResponse, timeout=10)
        if code is None:
            break
        time.sleep(0.2)
    check(code is None, f"ServerLive after hostile connections: {code} {msg!r}")


def dropped(srv):
    """resnetd_queue_dropped_total by reason: {"deadline": n, "cancelled": n, ...}."""
    st, _, data = srv.request("GET", "/metrics", headers=AUTH)
    n = {}
    for line in data.decode().splitlines():
        if line.startswith("resnetd_queue_dropped_total{reason=\""):
            n[line.split('"')[1]] = int(float(line.split()[-1]))
    return n


def queue_depth(srv):
    st, _, data = srv.request("GET", "/metrics", headers=AUTH)
    for line in data.decode().splitlines():
        if line.startswith("resnetd_queue_depth "):
            return int(float(line.split()[-1]))
    return 0


def h2_frame(ftype, flags, stream, payload):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + \
        stream.to_bytes(4, "big") + payload


def hpack_literal(name, value):
    """A header as HPACK's literal without indexing, new name, no Huffman."""
    def string(b):
        assert len(b) < 127
        return bytes([len(b)]) + b
    return b"\x00" + string(name) + string(value)


class RawH2Call:
    """One gRPC call over a plain socket, frames written here, so that no
    client library cancels at the deadline: the call sends grpc-timeout and
    then only waits, and whatever drops its image is the server's doing."""

    def __init__(self, port, path, message, headers):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        block = b"".join(hpack_literal(k.encode(), v.encode()) for k, v in [
            (":method", "POST"), (":scheme", "http"), (":path", path),
            (":authority", f"127.0.0.1:{port}"), ("content-type", "application/grpc"),
            ("te", "trailers")] + headers)
        body = b"\x00" + len(message).to_bytes(4, "big") + message
        assert len(body) < 16384  # one DATA frame, inside the initial windows
        self.sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0, b"") +
                          h2_frame(1, 0x4, 1, block) + h2_frame(0, 0x1, 1, body))

    def wait_end(self):
        """Reads frames until stream 1 ends; True when it did."""
        buf = b""
        while True:
            while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                n = int.from_bytes(buf[:3], "big")
                ftype, flags, stream = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                buf = buf[9 + n:]
                if ftype == 4 and not flags & 1:  # their SETTINGS: acknowledge
                    self.sock.sendall(h2_frame(4, 1, 0, b""))
                if stream == 1 and ftype in (0, 1) and flags & 1:
                    return True
                if ftype == 7 or (stream == 1 and ftype == 3):  # GOAWAY, RST_STREAM
                    return False
            chunk = self.sock.recv(65536)
            if not chunk:
                return False
            buf += chunk

    def close(self):
        self.sock.close()


def test_deadline_and_cancel(c, srv, model):
    """Behind at least 64 of 4 x 32 queued images (seconds here, well over a
    second on any CPU): a call with a 300 ms deadline ends DEADLINE_EXCEEDED, a call the
    client cancels ends CANCELLED, and both images are dropped unrun (grpcio
    resets the stream at its deadline: "cancelled"); a raw call whose client
    sends grpc-timeout: 100m and then just waits has its image dropped for the
    deadline by the server itself. Each has its own connection, not behind
    the big messages' frames."""
    pb = c.pb
    before = dropped(srv)
    big = np.random.default_rng(32).standard_normal((32, 3, 224, 224)).astype(np.float32)
    stub = c.stub("ModelInfer", pb.ModelInferResponse)
    ahead = [stub.future(infer_request(pb, model, big), timeout=600, metadata=c.meta)
             for _ in range(4)]
    # the three calls behind must find most of them queued (receiving and
    # parsing 77 MB takes a while under the sanitizers)
    for _ in range(600):
        if queue_depth(srv) >= 64:
            break
        time.sleep(0.05)
    check(queue_depth(srv) >= 64, f"the 4 x 32 images were not queued in 30 s")
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 40, 90)).save(buf, "JPEG")
    tiny = buf.getvalue()  # small messages: each arrives in one frame, at once
    raw = RawH2Call(c.port, SERVICE + "ModelInfer",
                    infer_request(pb, model, images=[tiny]).SerializeToString(),
                    [("authorization", f"Bearer {TOKEN}"), ("grpc-timeout", "100m")])
    to_cancel = Client(pb, c.port)
    cancelled = to_cancel.stub("ModelInfer", pb.ModelInferResponse).future(
        infer_request(pb, model, images=[tiny]), timeout=600, metadata=c.meta)
    late = Client(pb, c.port)
    code, msg = late.code("ModelInfer", infer_request(pb, model, images=[tiny]),
                          pb.ModelInferResponse, timeout=0.3)
    check(code == grpc.StatusCode.DEADLINE_EXCEEDED, f"deadline: {code} {msg!r}")
    cancelled.cancel()
    check(cancelled.cancelled(), "the call to cancel had already ended")
    for f in ahead:
        check(f.result().outputs[0].shape[0] == 32, "a call ahead of them failed")
    check(raw.wait_end(), "the raw call with grpc-timeout: its stream did not end")
    raw.close()
    total = lambda d: d.get("deadline", 0) + d.get("cancelled", 0)
    for _ in range(100):
        if total(dropped(srv)) >= total(before) + 3:
            break
        time.sleep(0.1)
    after = dropped(srv)
    check(total(after) == total(before) + 3,
          f"the late, the cancelled and the raw call's images were not all dropped unrun "
          f"({before} -> {after})")
    check(after.get("deadline", 0) >= before.get("deadline", 0) + 1,
          f"no image dropped for the deadline: grpc-timeout ignored? ({before} -> {after})")
    late.channel.close()
    to_cancel.channel.close()


def test_idle_timeout(binary, model_path):
    """A connection that has said hello and then nothing is closed after
    connection_timeout_s (here 1 s): a GOAWAY, then the close."""
    srv = start_or_exit("test_grpc.py", binary, model_path, "--grpc-port", "-1",
                        "--connection-timeout-s", "1", name="grpc-idle")
    try:
        port = srv.wait_log(r'grpc: listening on \S*:(\d+)"', 10)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0, b""))
            t0 = time.monotonic()
            closed = closed_within(s, 20)
            took = time.monotonic() - t0
        check(closed and 0.9 <= took <= 10,
              f"idle connection: closed {closed} after {took:.1f} s (connection_timeout_s 1)")
        check(srv.stop() == 0, "the idle-timeout server did not exit cleanly")
    finally:
        if srv.alive():
            srv.kill()


def main():
    binary, model_path, proto = sys.argv[1:4]
    out_dir = tempfile.mkdtemp(prefix="resnetd-grpc-pb.")
    pb = generate(proto, out_dir)
    srv = start_or_exit("test_grpc.py", binary, model_path, "--grpc-port", "-1",
                        "--auth-token", TOKEN, "--max-body-bytes", str(MAX_BODY),
                        "--grpc-max-connections", str(MAX_CONNS), "--max-queue-length", "256",
                        "--request-timeout-ms", "300000",
                        name="grpc")
    try:
        port = srv.wait_log(r'grpc: listening on \S*:(\d+)"', 10)
        c = Client(pb, port)
        st, _, data = srv.request("POST", "/classify", body=open(f"{PHOTOS}/dog.jpg", "rb").read(),
                                  headers=dict(AUTH, **{"Content-Type": "image/jpeg"}))
        model = json.loads(data)["model"]
        _, meta = rest_json(srv, "GET", f"/v2/models/{model}")
        n_classes = meta["outputs"][0]["shape"][1]
        print("health and metadata", flush=True)
        test_health_and_metadata(c, srv, model)
        print("FP32 infer", flush=True)
        test_fp32(c, srv, model)
        print("BYTES infer", flush=True)
        dog = test_bytes(c, srv, model, n_classes)
        print("8 concurrent calls", flush=True)
        test_concurrent(c, model)
        print("errors", flush=True)
        test_errors(c, srv, model, pb, port, dog)
        print("hostile connections", flush=True)
        c.channel.close()
        test_hostile_connections(Client(pb, port), port)
        c = Client(pb, port)
        print("deadline and cancellation", flush=True)
        test_deadline_and_cancel(c, srv, model)
        check(c.call("ServerLive", pb.ServerLiveRequest(), pb.ServerLiveResponse).live,
              "ServerLive after the errors")
        c.channel.close()
        rc = srv.stop()
        check(rc == 0, f"resnetd exited {rc}")
        print("idle connection timeout", flush=True)
        test_idle_timeout(binary, model_path)
    finally:
        if srv.alive():
            srv.kill()
        shutil.rmtree(out_dir, ignore_errors=True)
    if failures:
        print(f"test_grpc.py: {len(failures)} failure(s); server log: {srv.log_path}")
        sys.exit(1)
    srv.remove_log()
    print("test_grpc.py: OK")


if __name__ == "__main__":
    main()
