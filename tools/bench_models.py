#!/usr/bin/python3
"""bench_models.py - images/s of one model alone against two models in one
process under the same load (issue 14's "two models under mixed load"), on
the real server. Both runs use the same binary, model file, clients and
duration, in the same window, so only their ratio means anything on a busy
machine.

Usage: tools/bench_models.py RESNETD MODEL [--clients 8] [--seconds 15] [--photo JPEG]

Run 1: repository {a}, every client on /models/a/classify.
Run 2: repository {a, b} (the same file twice), half the clients on a, half on b.
Prints images/s of each and run 2 / run 1. Each model version has its own
inference worker with inference_threads threads, so run 2 has twice the
busy threads (instances sharing the cores are not built yet).
"""
import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(binary, repo, extra):
    port = free_port()
    proc = subprocess.Popen([binary, "serve", "--model-repository", repo, "--port", str(port),
                             "--access-log", "false"] + extra,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=5) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server not ready")


def load(port, names, clients, seconds, jpeg):
    done = [0] * clients
    stop = time.monotonic() + seconds

    def client(i):
        url = "http://127.0.0.1:%d/models/%s/classify" % (port, names[i % len(names)])
        while time.monotonic() < stop:
            req = urllib.request.Request(url, data=jpeg, headers={"Content-Type": "image/jpeg"})
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
                done[i] += r.status == 200

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - t0)


def run(binary, model, names, args, jpeg):
    repo = tempfile.mkdtemp(prefix="bench_models_")
    try:
        for n in names:
            os.makedirs(os.path.join(repo, n, "1"))
            os.symlink(os.path.abspath(model), os.path.join(repo, n, "1", "model.safetensors"))
        proc, port = serve(binary, repo, args.extra)
        try:
            load(port, names, args.clients, 2, jpeg)  # warm the connections and caches
            return load(port, names, args.clients, args.seconds, jpeg)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    finally:
        shutil.rmtree(repo)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("model")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--photo", default="/usr/share/darknet/data/dog.jpg")
    ap.add_argument("extra", nargs="*", help="more resnetd serve flags (after --)")
    args = ap.parse_args()
    jpeg = open(args.photo, "rb").read()
    one = run(args.binary, args.model, ["a"], args, jpeg)
    two = run(args.binary, args.model, ["a", "b"], args, jpeg)
    print("one model: %.1f img/s; two models: %.1f img/s; ratio %.3f (%d clients, %g s, ISA %s)"
          % (one, two, two / one, args.clients, args.seconds,
             os.environ.get("ONEDNN_MAX_CPU_ISA", "default")))


if __name__ == "__main__":
    main()
