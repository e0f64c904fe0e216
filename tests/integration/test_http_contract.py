#!/usr/bin/python3
"""test_http_contract.py - the documented bodies of the probe and metadata
endpoints, asserted value by value, against the real resnetd on 127.0.0.1
with the seeded 2-class ResNet-18 (labels cat, dog):

1. /healthz, /readyz, /v2, /v2/health/live, /v2/health/ready: exactly the
   README's JSON (GET; HEAD gives the status and no body); /v2's version is
   what `resnetd --version` prints.
2. KServe's version segment over HTTP: /v2/models/{name}/versions/1 (and
   /ready, /infer) answer as the plain URLs do; versions/2 is 404.
3. The 2-class model's answers can fail: the FP32 inputs that tools/reference.py
   wrote are sent through KServe, and the probabilities must be PyTorch's
   softmax within 1e-5 and the labels PyTorch's argmax named by the model's
   labels; and /classify of three photos names PyTorch's top class (from the
   golden fixtures' float64 logits for the same photos) with probabilities
   within 1e-5, so a swapped label list or a wrong class order fails.
4. Draining: after SIGTERM, while an accepted request still sends its body,
   /readyz on a kept-alive connection answers 503 {"status":"draining"} and
   /v2/health/ready 503 {"ready":false}; the request is then answered 200 and
   the server exits 0.

   test_http_contract.py RESNETD_BIN SERVER_MODELS_DIR GOLDEN_DIR
Standard library only; loopback only.
"""
import http.client
import json
import math
import os
import signal
import struct
import subprocess
import sys
import time

from server_harness import check, failures, start_or_exit

PHOTO = "/usr/share/darknet/data/dog.jpg"
# the photos tools/reference.py --photos was given (tests/integration/meson.build)
GOLDEN_PHOTOS = ["/usr/share/darknet/data/" + p + ".jpg" for p in ("dog", "eagle", "scream")]


def get(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    return r.status, data


def json_of(data):
    try:
        return json.loads(data)
    except ValueError:
        return None


def check_bodies(conn, version):
    print("probe and metadata bodies", flush=True)
    want = {"/healthz": (200, {"status": "ok"}), "/readyz": (200, {"status": "ready"}),
            "/v2/health/live": (200, {"live": True}), "/v2/health/ready": (200, {"ready": True}),
            "/v2": (200, {"name": "resnetd", "version": version,
                          "extensions": ["binary_tensor_data", "model_repository",
                                         "statistics"]})}
    for path, (status, body) in want.items():
        st, data = get(conn, "GET", path)
        check(st == status and json_of(data) == body, f"GET {path}: {st} {data!r}, want {body}")
        st, data = get(conn, "HEAD", path)
        check(st == status and data == b"", f"HEAD {path}: {st} {data!r}")


def check_versions(conn, name, ref):
    print("the /versions/1 segment", flush=True)
    st, plain = get(conn, "GET", f"/v2/models/{name}")
    st1, versioned = get(conn, "GET", f"/v2/models/{name}/versions/1")
    meta = json_of(plain)
    check(st == 200 and st1 == 200 and meta and json_of(versioned) == meta,
          f"metadata plain {st} vs versions/1 {st1}: {plain!r} {versioned!r}")
    check(meta and meta.get("name") == name and meta.get("versions") == ["1"],
          f"metadata name/versions: {plain!r}")
    st, data = get(conn, "GET", f"/v2/models/{name}/versions/1/ready")
    check(st == 200 and json_of(data) == {"name": name, "ready": True},
          f"versions/1/ready: {st} {data!r}")
    for path in [f"/v2/models/{name}/versions/2", f"/v2/models/{name}/versions/2/ready"]:
        st, data = get(conn, "GET", path)
        check(st == 404, f"{path}: {st}, want 404")
    body = infer_body(ref, 0, 1)
    st, data = get(conn, "POST", f"/v2/models/{name}/versions/1/infer", body,
                   {"Content-Type": "application/json"})
    doc = json_of(data)
    check(st == 200 and doc and doc.get("model_version") == "1",
          f"versions/1/infer: {st} {data[:200]!r}")


def read_reference(models_dir):
    base = os.path.join(models_dir, "resnet18_c2_128")
    with open(base + ".json") as f:
        info = json.load(f)
    n, c, h, w, k = info["n"], info["c"], info["h"], info["w"], info["classes"]
    with open(base + ".input.f32", "rb") as f:
        x = struct.unpack(f"<{n * c * h * w}f", f.read())
    with open(base + ".logits.f32", "rb") as f:
        logits = struct.unpack(f"<{n * k}f", f.read())
    return {"info": info, "x": x, "logits": logits, "per": c * h * w}


def infer_body(ref, first, count):
    info, per = ref["info"], ref["per"]
    data = list(ref["x"][first * per:(first + count) * per])
    return json.dumps({"inputs": [{"name": "input", "datatype": "FP32",
                                   "shape": [count, 3, info["h"], info["w"]], "data": data}],
                       "outputs": [{"name": "probabilities"}]})


def check_two_classes(conn, name, ref):
    print("the 2-class model against PyTorch", flush=True)
    info = ref["info"]
    k, n = info["classes"], info["n"]
    st, data = get(conn, "POST", f"/v2/models/{name}/infer", infer_body(ref, 0, n),
                   {"Content-Type": "application/json"})
    doc = json_of(data)
    if not check(st == 200 and doc, f"infer: {st} {data[:200]!r}"):
        return
    probs = doc["outputs"][0]["data"]
    check(len(probs) == n * k, f"{len(probs)} probabilities for {n}x{k}")
    worst, winners = 0.0, []
    for i in range(n):
        row = ref["logits"][i * k:(i + 1) * k]
        top = max(row)
        e = [math.exp(v - top) for v in row]
        want = [v / sum(e) for v in e]
        worst = max(worst, max(abs(a - b) for a, b in zip(probs[i * k:(i + 1) * k], want)))
        winners.append(info["labels"][row.index(top)])
    print(f"  max |dprob| {worst:.2e}; PyTorch's top-1 labels {winners}")
    check(worst <= 1e-5, f"probabilities differ from PyTorch's softmax by {worst:.3g}")
    # /classify names the classes with the model's labels, in the model's order
    for i in range(n):
        body = infer_body(ref, i, 1)
        st, data = get(conn, "POST", f"/v2/models/{name}/infer", body,
                       {"Content-Type": "application/json"})
        p = json_of(data)["outputs"][0]["data"] if st == 200 else None
        got = info["labels"][p.index(max(p))] if p else None
        check(got == winners[i], f"input {i}: class {got}, PyTorch {winners[i]}")


def check_photo_labels(conn, golden_dir, info):
    """/classify of real photos names PyTorch's class with the model's label:
    tools/reference.py wrote this model's float64 logits for the photos as
    torchvision preprocesses them, which the server matches exactly."""
    print("the 2-class model's labels on photos, against PyTorch", flush=True)
    base = os.path.join(golden_dir, "resnet18_c2_128")
    with open(base + ".json") as f:
        n = json.load(f)["n_photos"]
    with open(base + ".photos_logits.f32", "rb") as f:
        logits = struct.unpack(f"<{2 * n}f", f.read())
    seen = []
    for i, photo in enumerate(GOLDEN_PHOTOS[:n]):
        row = logits[2 * i:2 * i + 2]
        e = [math.exp(v - max(row)) for v in row]
        want = {info["labels"][k]: e[k] / sum(e) for k in range(2)}
        st, data = get(conn, "POST", "/classify?topk=2", open(photo, "rb").read(),
                       {"Content-Type": "image/jpeg"})
        preds = json_of(data)["results"][0]["predictions"] if st == 200 else []
        got = {p["label"]: p["probability"] for p in preds}
        top = preds[0]["label"] if preds else None
        seen.append(top)
        ok = set(got) == set(want) and top == max(want, key=want.get) and \
            all(abs(got[k] - want[k]) <= 1e-5 for k in want)
        check(ok, f"{os.path.basename(photo)}: server {got}, PyTorch {want}")
    print(f"  top-1 labels {seen}")


def check_draining(proc, port):
    print("draining", flush=True)
    # kept-alive connections from before SIGTERM, one per probe: a 503 closes
    # its connection, and the listening socket is closed by then
    probes = {"/readyz": ({"status": "draining"}, None), "/v2/health/ready": ({"ready": False}, None)}
    for path in probes:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        st, _ = get(conn, "GET", path)
        check(st == 200, f"{path} before SIGTERM: {st}")
        probes[path] = (probes[path][0], conn)
    jpeg = open(PHOTO, "rb").read()
    slow = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    slow.putrequest("POST", "/classify")
    slow.putheader("Content-Type", "image/jpeg")
    slow.putheader("Content-Length", str(len(jpeg)))
    slow.endheaders(jpeg[:100])  # headers read: an accepted request
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    # at once, as test_server's drain test does: the server closes idle
    # kept-alive connections soon after the signal
    for path, (want, conn) in probes.items():
        st, data = 200, b""
        try:
            for _ in range(200):
                st, data = get(conn, "GET", path)
                if st != 200:
                    break
                time.sleep(0.005)
        except (OSError, http.client.HTTPException) as e:
            data += f" ({e!r})".encode()
        check(st == 503 and json_of(data) == want, f"{path} draining: {st} {data!r}, want {want}")
    slow.send(jpeg[100:])
    r = slow.getresponse()
    body = r.read()
    check(r.status == 200, f"the accepted request after SIGTERM: {r.status} {body[:200]!r}")
    try:
        rc = proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = None
    check(rc == 0, f"exit status after the drain: {rc}")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    binary, models_dir, golden_dir = sys.argv[1:]
    model = os.path.join(models_dir, "resnet18_c2_128.safetensors")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             check=True).stdout.split()[-1]
    ref = read_reference(models_dir)
    srv = start_or_exit("test_http_contract.py", binary, model, "--drain-timeout-s", "20",
                        name="contract", wait_s=60)
    proc, port = srv.proc, srv.port
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        name = ref["info"].get("name", "resnet18_c2_128")
        check_bodies(conn, version)
        check_versions(conn, name, ref)
        check_two_classes(conn, name, ref)
        check_photo_labels(conn, golden_dir, ref["info"])
        conn.close()
        check_draining(proc, port)
    finally:
        srv.kill()
        if failures:
            print("server log (end):\n" + srv.text()[-3000:])
        srv.remove_log()
    if failures:
        sys.exit(f"test_http_contract.py: {len(failures)} failure(s)")
    print("test_http_contract.py: all checks passed")


if __name__ == "__main__":
    main()
