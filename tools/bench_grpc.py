#!/usr/bin/python3
"""bench_grpc.py - binary FP32 tensor infer over gRPC against the same over
REST with KServe's binary-data extension (issue 18's benchmark), on one real
`resnetd serve --grpc-port -1`, with 1 and 16 concurrent streams: images/s,
p50 and p99 latency of each, and gRPC / REST. Both protocols run against the
same server in the same window, one after the other per concurrency, so only
their ratios mean anything on a busy machine. Say the ISA (the server logs
it; ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI caps oneDNN to the non-AMX path).

Usage: tools/bench_grpc.py RESNETD MODEL [--seconds 10] [--concurrency 1,16]
gRPC: Debian's python3-grpcio, one channel (one HTTP/2 connection), messages
generated from server/grpc/grpc_service.proto by protoc. REST: one
keep-alive http.client connection per client thread.
"""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import grpc
import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def start(binary, model):
    log = tempfile.NamedTemporaryFile(prefix="bench-grpc.", suffix=".log", delete=False)
    proc = subprocess.Popen([binary, "serve", "--bind", "127.0.0.1", "--port", "0",
                             "--grpc-port", "-1", "--model", model, "--max-queue-length", "1024"],
                            stderr=log, stdout=subprocess.DEVNULL)
    for _ in range(3000):
        text = open(log.name).read()
        ready = re.search(r'ready: listening on \S*:(\d+)"', text)
        g = re.search(r'grpc: listening on \S*:(\d+)"', text)
        isa = re.search(r'runs in (\S+) on (\S+)"', text)
        if ready and g:
            return proc, int(ready.group(1)), int(g.group(1)), isa.groups() if isa else ("?", "?")
        if proc.poll() is not None:
            sys.exit(f"resnetd exited: {text[-2000:]}")
        time.sleep(0.1)
    proc.kill()
    sys.exit("resnetd did not get ready")


def run_clients(n, seconds, one_call):
    """n threads calling one_call(state) until seconds pass: (images/s, latencies)."""
    lat, lock = [], threading.Lock()
    stop = time.monotonic() + seconds

    def worker():
        state = {}
        mine = []
        while time.monotonic() < stop:
            t0 = time.monotonic()
            one_call(state)
            mine.append(time.monotonic() - t0)
        with lock:
            lat.extend(mine)
    threads = [threading.Thread(target=worker) for _ in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(lat) / (time.monotonic() - t0), lat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("resnetd")
    ap.add_argument("model")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", default="1,16")
    args = ap.parse_args()
    out = tempfile.mkdtemp(prefix="bench-grpc-pb.")
    proto = os.path.join(ROOT, "server", "grpc", "grpc_service.proto")
    subprocess.run(["protoc", f"--proto_path={os.path.dirname(proto)}", f"--python_out={out}",
                    proto], check=True)
    sys.path.insert(0, out)
    import grpc_service_pb2 as pb

    proc, port, gport, (precision, isa) = start(args.resnetd, args.model)
    try:
        x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype("<f4")
        raw = x.tobytes()
        channel = grpc.insecure_channel(f"127.0.0.1:{gport}")
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("POST", "/classify", body=open("/usr/share/darknet/data/dog.jpg", "rb").read(),
                  headers={"Content-Type": "image/jpeg"})
        model = json.loads(c.getresponse().read())["model"]
        c.close()
        req = pb.ModelInferRequest(model_name=model)
        t = req.inputs.add(name="input", datatype="FP32", shape=[1, 3, 224, 224])
        req.raw_input_contents.append(raw)
        req.outputs.add(name="logits")
        infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                    request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=pb.ModelInferResponse.FromString)
        head = json.dumps({"inputs": [{"name": "input", "shape": [1, 3, 224, 224],
                                       "datatype": "FP32",
                                       "parameters": {"binary_data_size": len(raw)}}],
                           "outputs": [{"name": "logits",
                                        "parameters": {"binary_data": True}}]}).encode()
        body = head + raw

        def grpc_call(state):
            infer(req, timeout=120)

        def rest_call(state):
            if "c" not in state:
                state["c"] = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            state["c"].request("POST", f"/v2/models/{model}/infer", body=body, headers={
                "Content-Type": "application/octet-stream",
                "Inference-Header-Content-Length": str(len(head))})
            resp = state["c"].getresponse()
            resp.read()
            assert resp.status == 200, resp.status
        grpc_call({})
        rest_call({})
        print(f"model {model}, {precision} on {isa}; {args.seconds:g} s per run")
        for n in (int(v) for v in args.concurrency.split(",")):
            res = {}
            for name, fn in (("rest", rest_call), ("grpc", grpc_call)):
                ips, lat = run_clients(n, args.seconds, fn)
                res[name] = ips
                p50, p99 = np.percentile(lat, 50) * 1e3, np.percentile(lat, 99) * 1e3
                print(f"  {n:3d} streams {name:5s}: {ips:7.1f} images/s  p50 {p50:7.1f} ms  "
                      f"p99 {p99:7.1f} ms")
            print(f"  {n:3d} streams grpc/rest images/s: {res['grpc'] / res['rest']:.3f}")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
