#!/usr/bin/env python3
"""test_protocols.py - TorchServe's inference API and TF Serving's REST API
(KServe v1) against the real resnetd on 127.0.0.1 with the real default
ResNet-50. The requests are written byte for byte as those clients send them
(plus real curl), and every answer is judged against POST /classify's for the
same image in the same run: the same top-5 labels in the same order, and
probabilities equal to 1e-6. Errors must come in each protocol's own shape
(those the HTTP layer gives before any route runs too),
and the access log must name the model and version.

usage: test_protocols.py RESNETD MODEL"""
import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

from server_harness import check, failures, recv_until_closed, start_or_exit
from server_harness import multipart as harness_multipart

PHOTOS = "/usr/share/darknet/data"
TOL = 1e-6


def start(binary, model, *flags):
    return start_or_exit("test_protocols.py", binary, model, "--http-threads", "2",
                         "--access-log", "true", *flags, name="protocols")


def raw(port, head, body=b""):
    """Sends head (str, with {host} and {len} filled in) and body as they are;
    returns (status, headers dict, body bytes). The server closes after one
    answer because every request here says Connection: close."""
    data = head.format(host=f"127.0.0.1:{port}", len=len(body)).encode() + body
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    head_bytes, _, payload = out.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    return status, headers, payload


def jdoc(payload):
    try:
        return json.loads(payload)
    except ValueError:
        return None


def classify(port, jpeg):
    """/classify's answer for one JPEG: [(label, probability)] of all classes, best first."""
    st, _, body = raw(port, "POST /classify?topk=1000 HTTP/1.1\r\nHost: {host}\r\n"
                      "Content-Type: image/jpeg\r\nContent-Length: {len}\r\n"
                      "Connection: close\r\n\r\n", jpeg)
    doc = jdoc(body)
    assert st == 200, body
    preds = doc["results"][0]["predictions"]
    return doc["model"], preds


def same_top5(what, got, preds):
    """got: TorchServe's {"label": p} object; preds: /classify's predictions."""
    if not check(isinstance(got, dict), f"{what}: answer is not a JSON object: {got!r}"):
        return
    want = []
    for p in preds:  # a label met twice keeps its first (higher) probability
        if p["label"] not in [w[0] for w in want]:
            want.append((p["label"], p["probability"]))
        if len(want) == 5 or len(want) == len(preds):
            break
    got_items = list(got.items())
    check([k for k, _ in got_items] == [k for k, _ in want],
          f"{what}: labels {[k for k, _ in got_items]} != /classify's {[k for k, _ in want]}")
    for (k, v), (_, w) in zip(got_items, want):
        check(abs(v - w) <= TOL, f"{what}: {k} {v} != /classify's {w}")


def same_probs(what, got, preds, n_classes):
    if not check(isinstance(got, list) and len(got) == n_classes,
                 f"{what}: expected {n_classes} probabilities, got {str(got)[:80]}"):
        return
    for p in preds:
        if not check(abs(got[p["index"]] - p["probability"]) <= TOL,
                     f"{what}: class {p['index']} {got[p['index']]} != {p['probability']}"):
            return


def ts_error_shape(what, st, body, code, type_=None):
    doc = jdoc(body)
    check(st == code, f"{what}: status {st}, expected {code}: {body[:200]!r}")
    ok = (isinstance(doc, dict) and set(doc) == {"code", "type", "message"}
          and doc["code"] == code and isinstance(doc["type"], str)
          and isinstance(doc["message"], str) and doc["message"])
    check(ok, f"{what}: not TorchServe's error shape: {body[:200]!r}")
    if ok and type_:
        check(doc["type"] == type_, f"{what}: type {doc['type']}, expected {type_}")


def tf_error_shape(what, st, body, code):
    doc = jdoc(body)
    check(st == code, f"{what}: status {st}, expected {code}: {body[:200]!r}")
    check(isinstance(doc, dict) and list(doc) == ["error"] and isinstance(doc["error"], str)
          and doc["error"], f"{what}: not TF Serving's error shape: {body[:200]!r}")


def multipart(boundary, parts):
    """A multipart body of (field, file name, JPEG bytes) parts."""
    return harness_multipart([(name, filename, "image/jpeg", data) for name, filename, data in parts],
                             boundary)


def test_torchserve(port, model, dog, eagle, dog_preds, eagle_preds):
    # `curl http://127.0.0.1:8080/predictions/resnet50 -T dog.jpg` (curl 7.88.1): a PUT
    # without Content-Type
    st, _, body = raw(port, "PUT /predictions/" + model + " HTTP/1.1\r\nHost: {host}\r\n"
                      "User-Agent: curl/7.88.1\r\nAccept: */*\r\nContent-Length: {len}\r\n"
                      "Connection: close\r\n\r\n", dog)
    check(st == 200, f"TorchServe PUT: status {st}: {body[:200]!r}")
    same_top5("TorchServe PUT (curl -T)", jdoc(body), dog_preds)
    # the real curl, as TorchServe's README runs it
    out = subprocess.run(["curl", "-sS", f"http://127.0.0.1:{port}/predictions/{model}",
                          "-T", os.path.join(PHOTOS, "dog.jpg")],
                         capture_output=True, timeout=120)
    same_top5("curl -T dog.jpg", jdoc(out.stdout), dog_preds)
    # Python requests: requests.post(url, data=open("dog.jpg", "rb")) (requests 2.28),
    # with the version in the URL
    st, _, body = raw(port, "POST /predictions/" + model + "/1 HTTP/1.1\r\nHost: {host}\r\n"
                      "User-Agent: python-requests/2.28.1\r\nAccept-Encoding: gzip, deflate\r\n"
                      "Accept: */*\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n", eagle)
    same_top5("TorchServe POST /1 (requests)", jdoc(body), eagle_preds)
    # perf_analyzer --service-kind=torchserve and `curl -F data=@dog.jpg`: multipart, field "data"
    b = "------------------------d74496d66958873e"
    st, _, body = raw(port, "POST /predictions/" + model + " HTTP/1.1\r\nHost: {host}\r\n"
                      "User-Agent: curl/7.88.1\r\nAccept: */*\r\nContent-Length: {len}\r\n"
                      "Content-Type: multipart/form-data; boundary=" + b[2:] + "\r\n"
                      "Connection: close\r\n\r\n", multipart(b[2:], [("data", "dog.jpg", dog)]))
    same_top5("TorchServe multipart data", jdoc(body), dog_preds)
    # two "data" parts: a list, in order
    st, _, body = raw(port, "POST /predictions/" + model + " HTTP/1.1\r\nHost: {host}\r\n"
                      "Content-Length: {len}\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n"
                      "Connection: close\r\n\r\n",
                      multipart("XyZ", [("data", "dog.jpg", dog), ("data", "eagle.jpg", eagle)]))
    doc = jdoc(body)
    if check(isinstance(doc, list) and len(doc) == 2, f"TorchServe batch: {body[:200]!r}"):
        same_top5("TorchServe batch [0]", doc[0], dog_preds)
        same_top5("TorchServe batch [1]", doc[1], eagle_preds)
    # errors, in TorchServe's shape
    st, _, body = raw(port, "POST /predictions/no_such_model HTTP/1.1\r\nHost: {host}\r\n"
                      "Content-Length: {len}\r\nConnection: close\r\n\r\n", dog)
    ts_error_shape("TorchServe unknown model", st, body, 404, "ModelNotFoundException")
    st, _, body = raw(port, "POST /predictions/" + model + "/2 HTTP/1.1\r\nHost: {host}\r\n"
                      "Content-Length: {len}\r\nConnection: close\r\n\r\n", dog)
    ts_error_shape("TorchServe unknown version", st, body, 404, "ModelVersionNotFoundException")
    st, _, body = raw(port, "POST /predictions/" + model + " HTTP/1.1\r\nHost: {host}\r\n"
                      "Content-Length: {len}\r\nConnection: close\r\n\r\n", b"not a jpeg")
    ts_error_shape("TorchServe bad image", st, body, 400, "BadRequestException")
    st, _, body = raw(port, "POST /predictions/" + model + " HTTP/1.1\r\nHost: {host}\r\n"
                      "Content-Length: {len}\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n"
                      "Connection: close\r\n\r\n", multipart("XyZ", [("file", "dog.jpg", dog)]))
    ts_error_shape("TorchServe multipart without data", st, body, 400)
    # GET /ping, as TorchServe's `curl http://localhost:8080/ping`
    st, _, body = raw(port, "GET /ping HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/7.88.1\r\n"
                      "Accept: */*\r\nConnection: close\r\n\r\n")
    check(st == 200 and jdoc(body) == {"status": "Healthy"}, f"/ping: {st} {body!r}")


def tf_predict(port, path, doc):
    # tensorflow_serving/example/resnet_client.py: requests.post(SERVER_URL, data=predict_request)
    # with predict_request = '{"instances" : [{"b64": "%s"}]}'
    return raw(port, "POST " + path + " HTTP/1.1\r\nHost: {host}\r\n"
               "User-Agent: python-requests/2.28.1\r\nAccept-Encoding: gzip, deflate\r\n"
               "Accept: */*\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n",
               doc.encode() if isinstance(doc, str) else doc)


def test_tfserving(port, model, dog, eagle, dog_preds, eagle_preds):
    n = len(dog_preds)
    b64d, b64e = base64.b64encode(dog).decode(), base64.b64encode(eagle).decode()
    st, _, body = tf_predict(port, f"/v1/models/{model}:predict",
                             '{"instances" : [{"b64": "%s"}]}' % b64d)
    doc = jdoc(body)
    if check(st == 200 and isinstance(doc, dict) and list(doc) == ["predictions"],
             f"TF predict: {st} {body[:200]!r}"):
        same_probs("TF predict", doc["predictions"][0], dog_preds, n)
    # the real curl, as TF Serving's REST docs run it (-d: form-urlencoded Content-Type)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump({"instances": [{"b64": b64d}, {"b64": b64e}]}, f)
        f.flush()
        out = subprocess.run(["curl", "-sS", "-X", "POST", "-d", f"@{f.name}",
                              f"http://127.0.0.1:{port}/v1/models/{model}/versions/1:predict"],
                             capture_output=True, timeout=120)
    doc = jdoc(out.stdout)
    if check(isinstance(doc, dict) and len(doc.get("predictions", [])) == 2,
             f"curl TF predict: {out.stdout[:200]!r}"):
        same_probs("curl TF predict [0]", doc["predictions"][0], dog_preds, n)
        same_probs("curl TF predict [1]", doc["predictions"][1], eagle_preds, n)
    # a named input per instance, and the columnar form
    st, _, body = tf_predict(port, f"/v1/models/{model}:predict",
                             json.dumps({"instances": [{"image_bytes": {"b64": b64e}}]}))
    doc = jdoc(body)
    if check(st == 200 and doc and "predictions" in doc, f"TF named instance: {body[:200]!r}"):
        same_probs("TF named instance", doc["predictions"][0], eagle_preds, n)
    st, _, body = tf_predict(port, f"/v1/models/{model}:predict",
                             json.dumps({"inputs": {"image_bytes": [{"b64": b64d}]}}))
    doc = jdoc(body)
    if check(st == 200 and isinstance(doc, dict) and list(doc) == ["outputs"],
             f"TF columnar: {body[:200]!r}"):
        same_probs("TF columnar", doc["outputs"][0], dog_preds, n)
    # status
    want = {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                      "status": {"error_code": "OK", "error_message": ""}}]}
    for path in (f"/v1/models/{model}", f"/v1/models/{model}/versions/1"):
        st, _, body = raw(port, "GET " + path + " HTTP/1.1\r\nHost: {host}\r\n"
                          "User-Agent: curl/7.88.1\r\nAccept: */*\r\nConnection: close\r\n\r\n")
        check(st == 200 and jdoc(body) == want, f"GET {path}: {st} {body!r}")
    # errors, in TF Serving's shape
    st, _, body = tf_predict(port, "/v1/models/no_such_model:predict",
                             '{"instances": [{"b64": "%s"}]}' % b64d)
    tf_error_shape("TF unknown model", st, body, 404)
    st, _, body = tf_predict(port, f"/v1/models/{model}/versions/2:predict",
                             '{"instances": [{"b64": "%s"}]}' % b64d)
    tf_error_shape("TF unknown version", st, body, 404)
    st, _, body = raw(port, "GET /v1/models/" + model + "/versions/2 HTTP/1.1\r\nHost: {host}\r\n"
                      "Connection: close\r\n\r\n")
    tf_error_shape("TF status unknown version", st, body, 404)
    st, _, body = raw(port, "GET /v1/models/no_such_model HTTP/1.1\r\nHost: {host}\r\n"
                      "Connection: close\r\n\r\n")
    tf_error_shape("TF status unknown model", st, body, 404)
    st, _, body = tf_predict(port, f"/v1/models/{model}:predict", '{"instances": [')
    tf_error_shape("TF bad JSON", st, body, 400)
    st, _, body = tf_predict(port, f"/v1/models/{model}:predict", '{"instances": [{"b64": "@@"}]}')
    tf_error_shape("TF bad base64", st, body, 400)
    st, _, body = tf_predict(port, f"/v1/models/{model}:predict",
                             '{"instances": [{"b64": "%s"}]}' % base64.b64encode(b"no").decode())
    tf_error_shape("TF bad image", st, body, 400)
    st, _, body = tf_predict(port, f"/v1/models/{model}:predict", '{"signature_name": "x"}')
    tf_error_shape("TF neither instances nor inputs", st, body, 400)


def test_log_and_metrics(server, model):
    port = server.port
    st, _, body = raw(port, "GET /metrics HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    text = body.decode()
    for ep in ("/predictions/{name}", "/ping", "/v1/models/{name}:predict", "/v1/models/{name}"):
        check(f'endpoint="{ep}",code="200"' in text, f"/metrics lacks endpoint {ep} code 200")
    time.sleep(0.2)  # the access line is written as the response completes
    lines = [json.loads(l) for l in server.text().splitlines()
             if l.startswith("{") and '"type":"access"' in l]
    def find(method, path, status):
        return [l for l in lines if l["method"] == method and l["path"] == path
                and l["status"] == status]
    for method, path in (("PUT", f"/predictions/{model}"), ("POST", f"/predictions/{model}/1"),
                         ("POST", f"/v1/models/{model}:predict"), ("GET", f"/v1/models/{model}"),
                         ("POST", "/classify")):
        got = find(method, path, 200)
        if check(got, f"no access line for {method} {path} 200"):
            check(all(l.get("model") == model and l.get("version") == "1" for l in got),
                  f"access line for {method} {path} lacks model/version: {got[0]}")
    for method, path, status in (("POST", "/predictions/no_such_model", 404),
                                 ("GET", "/metrics", 200)):
        got = find(method, path, status)
        if check(got, f"no access line for {method} {path} {status}"):
            check(all("model" not in l and "version" not in l for l in got),
                  f"access line for {method} {path} names a model: {got[0]}")


def test_while_loading(binary):
    """A FIFO as the model path holds the load open (open() blocks until we open
    the other end; the loader then refuses it as not a regular file, exit 1), so
    /ping can be asked while the model is not loaded: 503 Unhealthy."""
    folder = tempfile.mkdtemp(prefix="resnetd-protocols.")
    fifo = os.path.join(folder, "model.safetensors")
    os.mkfifo(fifo)
    log_path = os.path.join(folder, "log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([binary, "serve", "--bind", "127.0.0.1", "--port", "0",
                                 "--model", fifo], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log)
    port = None
    for _ in range(600):
        with open(log_path, errors="replace") as f:
            m = re.search(r'accepting connections on \S*:(\d+)"', f.read())
        if m or proc.poll() is not None:
            port = m and int(m.group(1))
            break
        time.sleep(0.1)
    try:
        if check(port, "resnetd did not start accepting while loading"):
            st, _, body = raw(port, "GET /ping HTTP/1.1\r\nHost: {host}\r\n"
                              "Connection: close\r\n\r\n")
            check(st == 503 and jdoc(body) == {"status": "Unhealthy"},
                  f"/ping while loading: {st} {body!r}")
    finally:
        os.close(os.open(fifo, os.O_WRONLY))  # lets the loader go on, and fail
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.unlink(fifo)
        os.unlink(log_path)
        os.rmdir(folder)


def test_early_refusals(binary, model_path, dog):
    """What the HTTP layer refuses before any route runs (401 token, 411 no
    length, 413 max_body_bytes, 503 max_buffered_body_bytes, 400 framing)
    answers in the path's own protocol shape: TorchServe's
    {"code","type","message"}, TF Serving's {"error"}; /classify keeps the
    nested one. dog.jpg (164 KB) is over the 50 KB buffering budget, two of
    them over max_body_bytes."""
    token = "early-refusals-token"
    server = start(binary, model_path, "--auth-token", token, "--max-body-bytes", "200000",
                   "--max-buffered-body-bytes", "50000")
    auth = "Authorization: Bearer " + token + "\r\n"
    cases = [  # (what, head without Connection, body, status, TorchServe type)
        ("401 no token", "", dog, 401, "InvalidKeyException"),
        ("411 no length", auth + "X-No-Length: 1\r\n", None, 411, "BadRequestException"),
        ("413 max_body_bytes", auth, dog + dog, 413, "RequestEntityTooLargeException"),
        ("503 buffering budget", auth, dog, 503, "ServiceUnavailableException"),
        ("400 framing", auth + "Transfer-Encoding: chunked\r\n", b"", 400, "BadRequestException"),
    ]
    try:
        for what, extra, body, status, ts_type in cases:
            length = "" if body is None else "Content-Length: {len}\r\n"
            for method, path in (("PUT", "/predictions/" + "m"), ("POST", "/v1/models/m:predict"),
                                 ("POST", "/classify")):
                st, hdrs, payload = raw(server.port, method + " " + path + " HTTP/1.1\r\n"
                                        "Host: {host}\r\n" + extra + length +
                                        "Connection: close\r\n\r\n", body or b"")
                label = f"early {what} on {method} {path}"
                if path.startswith("/predictions"):
                    ts_error_shape(label, st, payload, status, ts_type)
                elif path.startswith("/v1"):
                    tf_error_shape(label, st, payload, status)
                else:
                    doc = jdoc(payload)
                    check(st == status and isinstance(doc, dict)
                          and isinstance(doc.get("error"), dict)
                          and doc["error"].get("code") and doc["error"].get("message"),
                          f"{label}: not resnetd's nested error: {st} {payload[:200]!r}")
                if status == 503:
                    check(hdrs.get("retry-after"), f"{label}: no Retry-After")
    finally:
        check(server.stop() == 0, "resnetd (early refusals) did not exit 0")


def main():
    binary, model_path = sys.argv[1], sys.argv[2]
    with open(os.path.join(PHOTOS, "dog.jpg"), "rb") as f:
        dog = f.read()
    with open(os.path.join(PHOTOS, "eagle.jpg"), "rb") as f:
        eagle = f.read()
    test_while_loading(binary)
    test_early_refusals(binary, model_path, dog)
    # with a bearer token: /ping stays open to probes, as /healthz and /readyz
    # do; the inference routes need the token
    token = "protocols-test-token"
    server = start(binary, model_path, "--auth-token", token)
    try:
        st, _, body = raw(server.port, "GET /ping HTTP/1.1\r\nHost: {host}\r\n"
                          "Connection: close\r\n\r\n")
        check(st == 200 and jdoc(body) == {"status": "Healthy"}, f"/ping with auth on: {st} {body!r}")
        st, _, body = raw(server.port, "PUT /predictions/x HTTP/1.1\r\nHost: {host}\r\n"
                          "Content-Length: {len}\r\nConnection: close\r\n\r\n", dog)
        check(st == 401, f"/predictions without the token: {st} {body[:100]!r}")
        # a refused upload's body is read, not left unread behind a close (whose
        # TCP reset can destroy the 401): the connection goes on to a probe
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as s:
            s.sendall(f"PUT /predictions/x HTTP/1.1\r\nHost: x\r\nContent-Length: {len(dog)}"
                      "\r\n\r\n".encode() + dog +
                      b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answers = re.findall(rb"HTTP/1\.1 (\d{3}) ", recv_until_closed(s))
        check(answers == [b"401", b"200"], f"401 then /ping on one connection: {answers}")
        st, _, body = raw(server.port, "GET /v1/models/x HTTP/1.1\r\nHost: {host}\r\n"
                          "Authorization: Bearer " + token + "\r\nConnection: close\r\n\r\n")
        tf_error_shape("TF status with the token, unknown model", st, body, 404)
    finally:
        check(server.stop() == 0, "resnetd (auth) did not exit 0")
    if not failures:
        os.unlink(server.log_path)
    server = start(binary, model_path)
    try:
        model, dog_preds = classify(server.port, dog)
        _, eagle_preds = classify(server.port, eagle)
        test_torchserve(server.port, model, dog, eagle, dog_preds, eagle_preds)
        test_tfserving(server.port, model, dog, eagle, dog_preds, eagle_preds)
        test_log_and_metrics(server, model)
    finally:
        rc = server.stop()
    check(rc == 0, f"resnetd exited {rc}")
    if failures:
        sys.exit(f"test_protocols.py: {len(failures)} failure(s)")
    os.unlink(server.log_path)
    print("test_protocols.py: OK")


if __name__ == "__main__":
    main()
