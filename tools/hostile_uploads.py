#!/usr/bin/python3
"""hostile_uploads.py BIN N - docs/reliability.md's "Many held uploads" figure: N
connections each send the head of a 16 MiB POST /classify and all but one byte of
it, then wait; prints the server's VmRSS before and after and how many got 503.
Run from the repository root (models/resnet50.safetensors); loopback only."""
import socket, subprocess, re, time, sys, os, tempfile
binary = sys.argv[1]; n = int(sys.argv[2])
log = tempfile.mktemp()
p = subprocess.Popen([binary, "serve", "--bind", "127.0.0.1", "--port", "0", "--model", "models/resnet50.safetensors",
                      "--http-threads", "2", "--access-log", "false"], stderr=open(log, "wb"), stdout=subprocess.DEVNULL)
for _ in range(600):
    m = re.search(r'listening on \S*:(\d+)"', open(log).read())
    if m: break
    time.sleep(0.1)
port = int(m.group(1))
def rss():
    return int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{p.pid}/status").read()).group(1)) // 1024
r0 = rss(); socks = []; answered = 0
L = 16 * 1024 * 1024
chunk = b"\0" * (1 << 20)
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % L)
    try:
        for k in range(16):
            s.sendall(chunk if k < 15 else chunk[:-1])
    except OSError:
        answered += 1
    socks.append(s)
time.sleep(1)
r1 = rss()
n503 = 0
for s in socks:
    s.settimeout(0.2)
    try:
        if s.recv(100).startswith(b"HTTP/1.1 503"): n503 += 1
    except OSError: pass
print(f"{binary}: {n} uploads of 16 MiB stopped 1 byte short: RSS {r0} -> {r1} MB, {n503} answered 503")
p.terminate(); p.wait()
