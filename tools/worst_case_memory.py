#!/usr/bin/python3
"""worst_case_memory.py - the README's worst-case memory with the defaults,
measured rather than added up: one resnetd serve (the default ResNet-50) gets
every memory-hungry request the limits allow, all at once, and the process's
peak RSS (VmHWM) is printed against its idle RSS. A benchmark, not a test.

  tools/worst_case_memory.py [--bin build/server/resnetd] [--model M]
      [--decodes N] [--trees N] [--held-mib 208] [--flag=VALUE ...]

At once, on 127.0.0.1:
  - uploads that stop one byte short hold --held-mib MiB of buffered bodies
    (16 MiB each; default 208: the 256 MiB max_buffered_body_bytes less what
    the bodies below need, so that they are accepted, not refused 503);
  - --decodes requests (default 4, more than there are decoding threads) each
    send one JPEG at max_pixels that costs a decode the most memory: 6324 x
    6324 CMYK, progressive (PIL writes it), so libjpeg holds a whole-image
    coefficient buffer of 4 components;
  - --trees KServe JSON requests (default 2: one per HTTP thread) with as many
    FP32 values as max_images_per_request images can need, so the jansson tree
    is built in full before the shape check answers 422;
  - enough /classify requests to fill the queue (max_queue_length images).
Prints VmHWM and VmRSS before, the peak during, and what each part answered.
Loopback only; every wait is bounded; needs PIL (/usr/bin/python3)."""
import argparse
import http.client
import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

PHOTO = "/usr/share/darknet/data/dog.jpg"


def status_kb(pid, field):
    return int(re.search(field + r":\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1))


def post(port, path, body, ctype, results, timeout=120):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("POST", path, body=body, headers={"Content-Type": ctype})
        r = c.getresponse()
        results.append((r.status, r.read()[:160]))
        c.close()
    except (OSError, http.client.HTTPException) as e:
        results.append((0, str(e).encode()))


def big_cmyk_jpeg():
    from PIL import Image
    img = Image.linear_gradient("L").resize((6324, 6324))
    cmyk = Image.merge("CMYK", (img, img.rotate(90), img.rotate(180), img.rotate(270)))
    out = io.BytesIO()
    cmyk.save(out, "JPEG", quality=80, progressive=True)
    return out.getvalue()


def held_uploads(port, mib):
    socks, refused = [], 0
    for _ in range(mib // 16):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                  b"Content-Length: %d\r\n\r\n" % (16 << 20))
        try:
            for k in range(16):
                s.sendall(b"\0" * ((1 << 20) - (k == 15)))
        except OSError:
            refused += 1
        socks.append(s)
    return socks, refused


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="build/server/resnetd")
    ap.add_argument("--model", default="models/resnet50.safetensors")
    ap.add_argument("--decodes", type=int, default=4)
    ap.add_argument("--trees", type=int, default=2)
    ap.add_argument("--held-mib", type=int, default=208)
    args, flags = ap.parse_known_args()
    jpeg = big_cmyk_jpeg()
    log = tempfile.NamedTemporaryFile(prefix="resnetd-worst.", suffix=".log")
    env = dict(os.environ, GOMP_SPINCOUNT="10000")
    proc = subprocess.Popen([args.bin, "serve", "--bind", "127.0.0.1", "--port", "0",
                             "--model", args.model, "--access-log", "false", *flags],
                            stdout=subprocess.DEVNULL, stderr=log, env=env)
    try:
        port = None
        for _ in range(3000):
            m = re.search(r'ready: listening on \S*:(\d+)"', open(log.name).read())
            if m:
                port = int(m.group(1))
                break
            time.sleep(0.1)
        if not port:
            sys.exit(f"worst_case_memory.py: resnetd did not start:\n{open(log.name).read()}")
        model = re.search(r"model (\S+) \(", open(log.name).read()).group(1)
        idle_rss, idle_hwm = status_kb(proc.pid, "VmRSS"), status_kb(proc.pid, "VmHWM")
        socks, refused = held_uploads(port, args.held_mib)
        n = 32 * 3 * 224 * 224
        tree = (b'{"inputs":[{"name":"input","datatype":"FP32","shape":[32,3,224,224],"data":[' +
                b"0," * n + b"0]}]}")  # one value too many: 422 after the tree is built
        photo = open(PHOTO, "rb").read()
        parts = {"decode": [], "tree": [], "queue": []}
        threads = [threading.Thread(target=post, args=(port, "/classify", jpeg, "image/jpeg",
                                                       parts["decode"]))
                   for _ in range(args.decodes)]
        threads += [threading.Thread(target=post, args=(port, f"/v2/models/{model}/infer", tree,
                                                        "application/json", parts["tree"]))
                    for _ in range(args.trees)]
        threads += [threading.Thread(target=post, args=(port, "/classify", photo, "image/jpeg",
                                                        parts["queue"]))
                    for _ in range(64)]
        for t in threads:
            t.start()
        peak_rss = 0
        while any(t.is_alive() for t in threads):
            peak_rss = max(peak_rss, status_kb(proc.pid, "VmRSS"))
            time.sleep(0.01)
        for t in threads:
            t.join(300)
        hwm = status_kb(proc.pid, "VmHWM")
        for s in socks:
            s.close()
        print(f"resnetd {' '.join(flags) or '(defaults)'}: {args.held_mib // 16} held uploads of "
              f"16 MiB ({refused} refused), {args.decodes} max-pixel CMYK progressive decodes, "
              f"{args.trees} full KServe trees, 64 photos")
        for name, res in parts.items():
            codes = sorted({st for st, _ in res})
            print(f"  {name}: {len(res)} answered, statuses {codes}, e.g. {res[0][1][:100]!r}")
        print(f"  RSS idle {idle_rss / 1024:.0f} MB (peak so far {idle_hwm / 1024:.0f} MB); "
              f"peak during {max(peak_rss, hwm) / 1024:.0f} MB (VmHWM {hwm / 1024:.0f} MB)")
    finally:
        proc.terminate()
        proc.wait(60)


if __name__ == "__main__":
    main()
