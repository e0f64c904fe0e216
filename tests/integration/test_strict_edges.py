#!/usr/bin/python3
"""test_strict_edges.py - outputs and files that must not surprise (issue 15,
section 2), against the real resnetd on 127.0.0.1.

1. Model files crafted at test time from a real one (the seeded ResNet-18
   with 2 classes): a NaN weight, a labels_file of /etc/passwd, "../" or a
   symlink out of the folder, a model name with '/' or of 128 bytes, and a
   --model-name with '/'. `resnetd serve` must exit 1 with a message naming the
   tensor, the key or the rule; the same model with a labels_file inside its
   folder serves those labels.
2. The ready line at --log-level error and warn; with RESNETD_AUTH_TOKEN=""
   and RESNETD_TOKEN set, a warning that says auth is off (and never the
   token), and no warning when the two agree.
3. The access log stays JSON for a path with non-UTF-8 bytes (/r%E9adyz%FF).
4. A client that half-closes after its request (shutdown(SHUT_WR), as
   `nc -N` does): its images dropped and logged 499 by default, answered 200 with the
   same predictions as a plain client under --ignore-client-abort true.
5. With the real ResNet-50: KServe FP32 inputs of 3.4e38 overflow inside the
   net; the answer is 422 with a clear error (JSON and binary outputs), never
   a 200 with "data":[], and the server still answers a photo correctly.

   test_strict_edges.py RESNETD_BIN SMALL_MODEL RESNET50_MODEL
Standard library only; loopback only. Fails clearly when a model is missing.
"""
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

import server_harness
from server_harness import check, clean_env, failures


class Server(server_harness.Server):
    """server_harness.Server that, when resnetd does not get ready, says so
    and leaves port None for the caller's check; stop() removes the log."""

    def __init__(self, binary, model, *flags, env=None, wait_s=60):
        try:  # loading takes seconds, even sanitized
            super().__init__(binary, model, *flags, env=env, name="strict", wait_s=wait_s)
        except server_harness.StartError as e:
            print(f"  resnetd {' '.join(flags)} did not print its ready line: {e}")

    def stop(self):
        rc = super().stop()
        self.remove_log()
        return rc


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), bytearray(data[8 + n:])


def write_safetensors(path, header, blob):
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + bytes(blob))


def crafted(src, dst, metadata=None, poison=None):
    """Copies src to dst with metadata entries replaced and element 5 of
    tensor `poison` set to NaN."""
    header, blob = read_safetensors(src)
    meta = header.get("__metadata__", {}) or {}
    for k, v in (metadata or {}).items():
        if v is None:
            meta.pop(k, None)
        else:
            meta[k] = v
    header["__metadata__"] = meta
    if poison:
        t = header[poison]
        assert t["dtype"] == "F32", t
        begin = t["data_offsets"][0] + 5 * 4
        blob[begin:begin + 4] = struct.pack("<f", float("nan"))
    write_safetensors(dst, header, blob)
    return dst


def refused(binary, model, want, *flags):
    """serve must exit 1 before getting ready, with want in its message."""
    try:
        p = subprocess.run([binary, "serve", "--bind", "127.0.0.1", "--port", "0", "--model",
                            model, *flags], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, errors="replace", timeout=60, env=clean_env())
    except subprocess.TimeoutExpired:
        check(False, f"{os.path.basename(model)} {flags}: served for 60 s instead of refusing "
                     f"({want!r})")
        return
    ok = check(p.returncode == 1, f"{os.path.basename(model)} {flags}: exit {p.returncode}, want 1")
    ok &= check(want in p.stderr, f"{os.path.basename(model)} {flags}: stderr lacks {want!r}:\n"
                                  f"{p.stderr[-1500:]}")
    ok &= check("ready: listening" not in p.stderr, f"{model}: got ready")
    if ok:
        print(f"  ok: refused: {want}")


def check_model_files(binary, small, work):
    print("model files that must be refused", flush=True)
    refused(binary, crafted(small, f"{work}/nan.safetensors", poison="layer1.0.conv1.weight"),
            "tensor layer1.0.conv1.weight: element 5 is NaN (weights must be finite)")
    refused(binary, crafted(small, f"{work}/nanfc.safetensors", poison="fc.weight"),
            "tensor fc.weight: element 5 is NaN")
    # /etc/passwd has far more than 2 lines; a 2-line file outside the folder
    # shows that the path is refused, not the line count
    outside = f"{work}.outside.txt"
    with open(outside, "w") as f:
        f.write("root\ndaemon\n")
    try:
        for bad in ["/etc/passwd", outside, "../" + os.path.basename(outside),
                    "sub/../../" + os.path.basename(outside)]:
            refused(binary, crafted(small, f"{work}/labels.safetensors",
                                    {"labels_file": bad, "labels": None}),
                    "must be a path inside the model's folder")
        os.symlink(outside, f"{work}/link.txt")
        refused(binary, crafted(small, f"{work}/labels.safetensors",
                                {"labels_file": "link.txt", "labels": None}),
                "outside the model's folder")
        refused(binary, crafted(small, f"{work}/slash.safetensors", {"name": "team/pets"}),
                "byte 4 is '/'")
        refused(binary, crafted(small, f"{work}/long.safetensors", {"name": "n" * 128}),
                "128 bytes, must be 1..127")
        refused(binary, small, "model_name: model name \"a/b\": byte 1 is '/'", "--model-name", "a/b")
        # inside the folder: served, with exactly those labels
        with open(f"{work}/pets.txt", "w") as f:
            f.write("kitten\npuppy\n")
        inside = crafted(small, f"{work}/inside.safetensors",
                         {"labels_file": "pets.txt", "labels": None, "name": "n" * 127})
        srv = Server(binary, inside)
        if check(srv.port, "the model with labels_file inside its folder did not start"):
            st, _, body = srv.request("POST", "/classify?topk=2", open(PHOTO, "rb").read(),
                                      {"Content-Type": "image/jpeg"})
            got = sorted(p["label"] for p in json.loads(body)["results"][0]["predictions"]) \
                if st == 200 else None
            check(got == ["kitten", "puppy"], f"labels_file inside: {st} {got}")
            st, _, body = srv.request("GET", "/v2/models/" + "n" * 127 + "/ready")
            check(st == 200 and json.loads(body)["ready"] is True,
                  f"a 127-byte name is reachable: {st} {body[:200]}")
        check(srv.stop() == 0, "inside: exit status")
    finally:
        os.unlink(outside)


def check_logging(binary, small):
    print("ready line at every level, the auth warning, non-UTF-8 paths", flush=True)
    for level in ["error", "warn"]:
        srv = Server(binary, small, "--log-level", level)
        check(srv.port, f"no ready line at --log-level {level}")
        if srv.port and level == "error":
            st, _, _ = srv.request("GET", "/r%E9adyz%FF")
            check(st == 404, f"/r%E9adyz%FF: {st}")
            st, _, _ = srv.request("GET", "/caf%C3%A9")
            time.sleep(0.2)
            lines = [ln for ln in srv.text().splitlines() if '"type":"access"' in ln]
            paths = []
            for ln in lines:
                try:
                    paths.append(json.loads(ln)["path"])
                except ValueError as e:
                    check(False, f"access line is not JSON ({e}): {ln!r}")
            check("/r%e9adyz%ff" in paths and "/caf\u00e9" in paths,
                  f"access log paths: {paths}")
        srv.stop()
    env = clean_env(RESNETD_AUTH_TOKEN="", RESNETD_TOKEN="s3cr3t-token")
    srv = Server(binary, small, "--log-level", "warn", env=env)
    if check(srv.port, "no ready line with two tokens"):
        log = srv.text()
        check(re.search(r'"level":"warn","msg":"auth: RESNETD_AUTH_TOKEN and RESNETD_TOKEN are '
                        r'both set and differ \(one is empty\); RESNETD_AUTH_TOKEN wins, so auth '
                        r'is OFF', log), f"no auth warning:\n{log}")
        check("s3cr3t" not in log, "the token reached the log")
        st, _, _ = srv.request("GET", "/metrics")
        check(st == 200, f"auth is off as warned, /metrics: {st}")
    srv.stop()
    env = clean_env(RESNETD_AUTH_TOKEN="same-token", RESNETD_TOKEN="same-token")
    srv = Server(binary, small, "--log-level", "warn", env=env)
    if check(srv.port, "no ready line with two equal tokens"):
        check("RESNETD_TOKEN are both set" not in srv.text(), "warned about equal tokens")
        st, _, _ = srv.request("GET", "/metrics", headers={"Authorization": "Bearer same-token"})
        check(st == 200, f"/metrics with the token: {st}")
    srv.stop()


def check_non_finite(binary, resnet50):
    print("KServe FP32 inputs that overflow inside ResNet-50", flush=True)
    srv = Server(binary, resnet50, "--log-level", "error", wait_s=180)
    if not check(srv.port, "resnet50 did not start"):
        return
    name = json.loads(srv.request("GET", "/v2/models/resnet50-imagenet")[2])["name"]
    n = 3 * 224 * 224
    for params, what in [({}, "json"), ({"binary_data_output": True}, "binary")]:
        body = json.dumps({"inputs": [{"name": "input", "datatype": "FP32",
                                       "shape": [1, 3, 224, 224], "data": [3.4e38] * n}],
                           "outputs": [{"name": "logits"}], "parameters": params})
        st, hdr, data = srv.request("POST", f"/v2/models/{name}/infer", body,
                                    {"Content-Type": "application/json"})
        try:
            err = json.loads(data)["error"]
        except (ValueError, KeyError, TypeError):
            err = None
        check(st == 422 and err and "the model's output is not finite" in err,
              f"3.4e38 ({what} output): {st} {data[:300]!r}")
    # one image overflows, its batch mate does not: only the first fails
    st, _, data = srv.request("POST", "/classify?topk=1", open(PHOTO, "rb").read(),
                              {"Content-Type": "image/jpeg"})
    check(st == 200 and json.loads(data)["results"][0]["predictions"][0]["label"] == "malamute",
          f"a photo after the overflow: {st} {data[:200]!r}")
    m = re.search(r'resnetd_http_requests_total\{endpoint="/v2/models/\{name\}/infer",'
                  r'code="422"\} (\d+)', srv.request("GET", "/metrics")[2].decode())
    check(m and int(m.group(1)) == 2, f"422s counted: {m and m.group(0)}")
    check(srv.stop() == 0, "resnet50: exit status")


PHOTO = "/usr/share/darknet/data/dog.jpg"


def half_closed_classify(port):
    """POST /classify, then shutdown(SHUT_WR) as `nc -N` does; the raw reply."""
    body = open(PHOTO, "rb").read()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(b"POST /classify?topk=2 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: image/jpeg\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while len(reply) < 1 << 20:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply


def check_half_close(binary, small):
    print("a client that half-closes after its request", flush=True)
    for flags, answered in [((), False), (("--ignore-client-abort", "true"), True)]:
        srv = Server(binary, small, *flags)
        if not check(srv.port, f"{flags} did not start"):
            continue
        plain = json.loads(srv.request("POST", "/classify?topk=2", open(PHOTO, "rb").read(),
                                       {"Content-Type": "image/jpeg"})[2])
        reply = half_closed_classify(srv.port)
        head, _, body = reply.partition(b"\r\n\r\n")
        if answered:
            preds = [r["predictions"] for r in plain["results"]]
            check(head.startswith(b"HTTP/1.1 200 ") and
                  [r["predictions"] for r in json.loads(body)["results"]] == preds,
                  f"ignore_client_abort: the half-closed client's answer {reply[:300]!r}")
        else:
            # its images are dropped; the 499 reaches it only if it still reads
            check(reply == b"" or head.startswith(b"HTTP/1.1 499 "),
                  f"default: a half-closed client was answered {reply[:200]!r}")
            time.sleep(0.2)  # the access line is written when the request completes
            check('"status":499' in srv.text(), "default: the half-closed request not logged 499")
        check(srv.stop() == 0, f"{flags}: exit status")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    binary, small, resnet50 = sys.argv[1:]
    for path in (small, resnet50, PHOTO):
        if not os.path.exists(path):
            sys.exit(f"test_strict_edges.py: FAIL: {path} is missing (tools/fetch_model.sh, "
                     "apt-get install darknet)")
    work = tempfile.mkdtemp(prefix="resnetd-strict.")
    try:
        check_model_files(binary, small, work)
        check_logging(binary, small)
        check_half_close(binary, small)
        check_non_finite(binary, resnet50)
    finally:
        shutil.rmtree(work)
    if failures:
        sys.exit(f"test_strict_edges.py: {len(failures)} failure(s)")
    print("test_strict_edges.py: all checks passed")


if __name__ == "__main__":
    main()
