#!/usr/bin/python3
"""test_repository.py - the model repository of the real `resnetd serve` on
127.0.0.1 (issue 14), with seeded 2-class ResNet-18s at 128x128 written by
tools/reference.py (PyTorch) in this run, each with its own seed, so every
model and version has its own PyTorch logits.

Usage: test_repository.py RESNETD_BINARY WORKDIR [two|poll|explicit]...

two:      models alpha and beta in one process, 8 clients on both at once
          through KServe infer (FP32 tensors): every answer equals the
          PyTorch logits of the model it asked for (within 1e-5 x max|logit|),
          none is the other model's; per-model counters, Triton stats and
          config; max_models_memory_mb refusing a load before and after it.
poll:     model_control_mode poll; alpha/2 appears while 8 clients send to
          alpha: zero failed requests, every answer is version 1's or version
          2's logits, none sent after the log says version 2 serves is version
          1's; RSS under load comes back within 10% of one version's once
          version 1 is freed; then beta's folder is removed: beta turns 404.
explicit: model_control_mode explicit with a bearer token: the repository API
          without it is 401; load beta, then unload it while 4 clients send
          (only 200s with beta's logits, then 503s, then 404s; after the
          unload returns, 404 only); a corrupt alpha/2 fails to load (400, the
          error in the index) and alpha version 1 still serves.
Standard library plus torch (through tools/reference.py); every request has a
timeout and the server is killed on any failure.
"""
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

HOST = "127.0.0.1"
TIMEOUT = 60.0
CASE = "resnet18_c2_128"
TOKEN = "s3cret-token-for-tests"
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")


def make_models(workdir, seeds):
    """Seeded models: workdir/seedS/{CASE}.safetensors, .input.f32, .logits.f32,
    weights seeded with S, the same 5 inputs for all (so that an answer's
    logits say which model computed it)."""
    sys.path.insert(0, TOOLS)
    import torch
    import reference
    torch.set_num_threads(2)
    ctor, (h, w), metadata, keep_nbt = reference.CASES[CASE]
    labels = json.loads(metadata["labels"]) if metadata and "labels" in metadata else None
    refs = {}
    for s in seeds:
        out = os.path.join(workdir, "seed%d" % s)
        os.makedirs(out, exist_ok=True)
        torch.manual_seed(s)
        model = ctor()
        reference.init_weights(model, s)
        state = {k: v for k, v in model.state_dict().items()
                 if keep_nbt or not k.endswith("num_batches_tracked")}
        reference.safetensors_io.save(os.path.join(out, CASE + ".safetensors"), state, metadata)
        reference.write_fixture(out, CASE, model, h, w, 100, labels)
        refs[s] = read_reference(out)
    return refs


def read_reference(out):
    base = os.path.join(out, CASE)
    info = json.load(open(base + ".json"))
    n, h, w, k = info["n"], info["h"], info["w"], info["classes"]
    x = struct.unpack("<%df" % (n * 3 * h * w), open(base + ".input.f32", "rb").read())
    logits = struct.unpack("<%df" % (n * k), open(base + ".logits.f32", "rb").read())
    per = 3 * h * w
    bodies = [json.dumps({"inputs": [{"name": "input", "datatype": "FP32",
                                      "shape": [1, 3, h, w], "data": list(x[i * per:(i + 1) * per])}],
                          "outputs": [{"name": "logits"}]}).encode() for i in range(n)]
    return {"file": base + ".safetensors", "n": n, "k": k, "bodies": bodies,
            "logits": [logits[i * k:(i + 1) * k] for i in range(n)],
            "scale": max(abs(v) for v in logits)}


def put_version(repo, name, version, src):
    """Installs src as repo/name/version/model.safetensors the way a deployment
    does: written aside, then renamed into place."""
    d = os.path.join(repo, name, str(version))
    os.makedirs(d, exist_ok=True)
    shutil.copyfile(src, os.path.join(d, ".tmp"))
    os.rename(os.path.join(d, ".tmp"), os.path.join(d, "model.safetensors"))


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, workdir, repo, *flags):
        self.port = free_port()
        self.log_path = os.path.join(workdir, "server-%d.log" % self.port)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "--model-repository", repo, "--port", str(self.port),
             "--http-threads", "4", "--access-log", "false", "--max-queue-delay-us", "500",
             "--max-batch-size", "2"]
            + list(flags), stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "resnetd exited with %d: %s" % (
                self.proc.returncode, open(self.log_path).read()[-2000:])
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("not ready within 120 s")

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(HOST, self.port, timeout=TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def log_lines(self):
        return [json.loads(l) for l in open(self.log_path) if l.startswith("{")]

    def wait_log(self, text, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rec in self.log_lines():
                if text in rec["msg"]:
                    return rec
            time.sleep(0.05)
        raise AssertionError("no log line '%s' within %d s" % (text, timeout))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        assert self.proc.returncode == 0, "resnetd exited with %d: %s" % (
            self.proc.returncode, open(self.log_path).read()[-3000:])


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(next(l for l in f if l.startswith("VmRSS:")).split()[1]) / 1024


def sanitized(pid):
    """True for an ASan/TSan build: freed memory waits in the sanitizer's
    quarantine, so RSS says nothing about what was freed."""
    with open("/proc/%d/maps" % pid) as f:
        return any("libasan" in l or "libtsan" in l for l in f)


def log_time(rec):
    """A log record's wall-clock time (its "ts", millisecond precision)."""
    t = time.strptime(rec["ts"][:19], "%Y-%m-%dT%H:%M:%S")
    return time.mktime(t) - time.timezone + float("0." + rec["ts"][20:23])


WORST = [0.0]  # the largest error of a matched answer, in max|logit| units


def which(logits, refs, i):
    """The key of refs whose i-th PyTorch logits these are, or None."""
    for key, ref in refs.items():
        err = max(abs(a - b) for a, b in zip(logits, ref["logits"][i])) / ref["scale"]
        if err <= 1e-5:  # observed 1.2e-6 (FP32, avx512_core_amx)
            WORST[0] = max(WORST[0], err)
            return key
    return None


def infer(srv, path, ref, i, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    st, data = srv.request("POST", path, ref["bodies"][i], h)
    if st != 200:
        return st, None
    return st, json.loads(data)["outputs"][0]["data"]


def clients(n, fn, stop):
    """n threads calling fn(thread, count) until stop is set; their exceptions re-raised."""
    errors = []

    def loop(t):
        count = 0
        try:
            while not stop.is_set():
                fn(t, count)
                count += 1
        except BaseException as e:  # noqa: B902 - reported below
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=loop, args=(t,)) for t in range(n)]
    for t in threads:
        t.start()
    return threads, errors


def join(threads, errors):
    for t in threads:
        t.join(timeout=TIMEOUT * 2)
    if errors:
        raise errors[0]


def test_two(binary, workdir, refs):
    print("two models in one process, 8 clients on both", flush=True)
    repo = os.path.join(workdir, "repo-two")
    put_version(repo, "alpha", 1, refs[1]["file"])
    put_version(repo, "beta", 1, refs[2]["file"])
    srv = Server(binary, workdir, repo)
    try:
        counts = {"alpha": 0, "beta": 0}
        lock = threading.Lock()
        stop = threading.Event()

        def one(t, count):
            name, key = (("alpha", 1), ("beta", 2))[(t + count) % 2]
            i = count % refs[key]["n"]
            st, logits = infer(srv, "/v2/models/%s/infer" % name, refs[key], i)
            assert st == 200, "%s: %d" % (name, st)
            got = which(logits, refs, i)
            assert got == key, "%s answered %s's logits (%s)" % (name, got, logits)
            with lock:
                counts[name] += 1
                if counts["alpha"] >= 40 and counts["beta"] >= 40:
                    stop.set()

        join(*clients(8, one, stop))
        print("  %d alpha and %d beta answers, each its own model's PyTorch logits" %
              (counts["alpha"], counts["beta"]))
        st, body = srv.request("GET", "/metrics")
        for name in ("alpha", "beta"):
            line = 'resnetd_model_images_total{model="%s",version="1",outcome="success"} ' % name
            got = [l for l in body.decode().splitlines() if l.startswith(line)]
            assert got and int(float(got[0].split()[-1])) == counts[name], (name, got, counts)
            line = 'resnetd_model_version_memory_bytes{model="%s",version="1"} ' % name
            got = [l for l in body.decode().splitlines() if l.startswith(line)]
            assert got and float(got[0].split()[-1]) > 1e6, (name, got)  # 11 M weights at least
            print("  %s%s" % (line, got[0].split()[-1]))
        st, body = srv.request("POST", "/classify?model=gamma", b"x", {"Content-Type": "image/jpeg"})
        assert st == 404 and b"'alpha', 'beta'" in body, (st, body)
        st, body = srv.request("GET", "/v2/models/beta/stats")
        row = json.loads(body)["model_stats"][0]
        assert st == 200 and row["version"] == "1" and row["inference_count"] == counts["beta"], row
        assert row["inference_stats"]["compute_infer"]["ns"] > 0, row
        st, body = srv.request("GET", "/v2/models/alpha/versions/1/config")
        cfg = json.loads(body)
        assert st == 200 and cfg["max_batch_size"] == 2 and cfg["input"][0]["dims"] == [3, 128, 128], cfg
        assert cfg["output"][0]["dims"] == [2] and cfg["instance_group"][0]["count"] == 1, cfg
    finally:
        srv.stop()
    test_memory_limit(binary, workdir, repo)


def test_memory_limit(binary, workdir, repo):
    """max_models_memory_mb refuses, with a clear error and no crash: 1 MB
    before loading (the file alone passes it), 60 MB after alpha's warm-up
    (a 2-class ResNet-18 takes about 110 MB resident here)."""
    for limit, when in ((1, "before"), (60, "after")):
        r = subprocess.run([binary, "serve", "--model-repository", repo, "--port", "0",
                            "--max-batch-size", "2", "--max-models-memory-mb", str(limit)],
                           capture_output=True, text=True, timeout=120)
        last = r.stderr.strip().splitlines()[-1]
        print("  max_models_memory_mb %d (%s the load): exit %d, %s" % (limit, when, r.returncode, last))
        assert r.returncode == 1 and "over max_models_memory_mb %d" % limit in last, r.stderr[-2000:]
        assert "alpha/1/model.safetensors" in last, last
        loaded = " loaded in " in r.stderr  # refused before the load: never loaded
        assert loaded == (when == "after"), "refused %s the load? %s" % (when, r.stderr[-2000:])


def test_poll(binary, workdir, refs):
    print("poll mode: version 2 replaces version 1 under load", flush=True)
    repo = os.path.join(workdir, "repo-poll")
    put_version(repo, "alpha", 1, refs[1]["file"])
    put_version(repo, "beta", 1, refs[2]["file"])
    srv = Server(binary, workdir, repo, "--model-control-mode", "poll", "--repository-poll-s", "1")
    try:
        answers, failures = [], []
        lock = threading.Lock()
        stop = threading.Event()
        v12 = {1: refs[1], 3: refs[3]}

        def one(t, count):
            i = (t + count) % refs[1]["n"]
            sent = time.time()
            st, logits = infer(srv, "/v2/models/alpha/infer", refs[1], i)
            with lock:
                if st != 200:
                    failures.append(st)
                else:
                    answers.append((sent, which(logits, v12, i)))

        threads, errors = clients(8, one, stop)
        time.sleep(1.5)
        rss_one = rss_mb(srv.proc.pid)
        put_version(repo, "alpha", 2, refs[3]["file"])
        switch = log_time(srv.wait_log("model alpha version 2 is serving"))
        rss_two = rss_mb(srv.proc.pid)
        srv.wait_log("model alpha version 1 retired")
        time.sleep(1.5)
        rss_after = rss_mb(srv.proc.pid)
        stop.set()
        join(threads, errors)
        print("  RSS under load: %.0f MB with version 1, %.0f MB with both, %.0f MB after "
              "version 1 was freed" % (rss_one, rss_two, rss_after))
        if sanitized(srv.proc.pid):
            print("  (a sanitizer build: RSS not checked)")
        else:
            assert rss_after <= rss_one * 1.10, "RSS did not come back within 10%"
        before = sum(1 for s, k in answers if s <= switch)
        after = [k for s, k in answers if s > switch + 0.002]
        print("  %d answers before the switch, %d after; failures %s" %
              (before, len(after), failures))
        assert not failures, "failed requests: %s" % failures[:10]
        assert all(k in (1, 3) for s, k in answers), "an answer is neither version's logits"
        assert before > 0 and after, "no load on one side of the switch"
        assert all(k == 3 for k in after), "version 1 answered after version 2 was serving"
        srv.wait_log("model alpha version 1 retired")
        st, _ = infer(srv, "/v2/models/alpha/versions/1/infer", refs[1], 0)
        assert st == 404, "version 1 still reachable: %d" % st
        shutil.rmtree(os.path.join(repo, "beta"))
        srv.wait_log("model beta unloaded")
        st, _ = infer(srv, "/v2/models/beta/infer", refs[2], 0)
        assert st == 404, "beta after its folder was removed: %d" % st
    finally:
        srv.stop()


def test_explicit(binary, workdir, refs):
    print("explicit mode: load, unload under load, a corrupt file, the token", flush=True)
    repo = os.path.join(workdir, "repo-explicit")
    put_version(repo, "alpha", 1, refs[1]["file"])
    srv = Server(binary, workdir, repo, "--model-control-mode", "explicit",
                 "--auth-token", TOKEN)
    auth = {"Authorization": "Bearer " + TOKEN}
    try:
        for path in ("/v2/repository/index", "/v2/repository/models/alpha/unload"):
            st, _ = srv.request("POST", path, b"")
            assert st == 401, "%s without the token: %d" % (path, st)
        put_version(repo, "beta", 1, refs[2]["file"])
        st, body = srv.request("POST", "/v2/repository/models/beta/load", b"", auth)
        assert st == 200, (st, body)
        st, logits = infer(srv, "/v2/models/beta/infer", refs[2], 0, auth)
        assert st == 200 and which(logits, refs, 0) == 2, (st, logits)

        seen, lock, stop = [], threading.Lock(), threading.Event()

        def one(t, count):
            sent = time.monotonic()
            st, logits = infer(srv, "/v2/models/beta/infer", refs[2], count % refs[2]["n"], auth)
            ok = st != 200 or which(logits, refs, count % refs[2]["n"]) == 2
            with lock:
                seen.append((sent, st, ok))

        threads, errors = clients(4, one, stop)
        time.sleep(1.0)
        st, body = srv.request("POST", "/v2/repository/models/beta/unload", b"", auth)
        unloaded = time.monotonic()
        time.sleep(0.5)
        stop.set()
        join(threads, errors)
        assert st == 200, (st, body)
        statuses = [s for _, s, _ in seen]
        print("  during the unload: %d x 200, %d x 503, %d x 404" %
              (statuses.count(200), statuses.count(503), statuses.count(404)))
        assert set(statuses) <= {200, 503, 404}, "unexpected statuses %s" % set(statuses)
        assert all(ok for _, _, ok in seen), "a 200 with logits other than beta's"
        assert all(s == 404 for t, s, _ in seen if t > unloaded), "sent after the unload, not 404"
        assert statuses.count(200) > 0 and statuses.count(404) > 0

        os.makedirs(os.path.join(repo, "alpha", "2"))
        with open(os.path.join(repo, "alpha", "2", "model.safetensors"), "wb") as f:
            f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"x\":1}        ")
        st, body = srv.request("POST", "/v2/repository/models/alpha/load", b"", auth)
        assert st == 400 and b"alpha/2/model.safetensors" in body, (st, body)
        st, body = srv.request("POST", "/v2/repository/index", b"", auth)
        rows = json.loads(body)
        alpha = [r for r in rows if r["name"] == "alpha"]
        print("  index after the corrupt load: %s" % alpha)
        assert alpha and "alpha/2/model.safetensors" in alpha[0].get("reason", ""), rows
        assert alpha[0]["state"] == "READY" and alpha[0]["version"] == "1", rows
        st, logits = infer(srv, "/v2/models/alpha/infer", refs[1], 1, auth)
        assert st == 200 and which(logits, refs, 1) == 1, "alpha v1 after the failed load"
    finally:
        srv.stop()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binary, workdir = sys.argv[1], sys.argv[2]
    which_tests = sys.argv[3:] or ["two", "poll", "explicit"]
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    refs = make_models(workdir, [1, 2, 3])
    for name in which_tests:
        {"two": test_two, "poll": test_poll, "explicit": test_explicit}[name](binary, workdir, refs)
    print("largest |logit - PyTorch| of an answer: %.2e x max|logit|" % WORST[0])
    print("ok")


if __name__ == "__main__":
    main()
