#!/usr/bin/python3
"""hostile_trickle.py BIN - docs/reliability.md's "Trickled heads" figure: one
header line a second on one connection, watched for 25 s; prints when the
server dropped it. Run from the repository root; loopback only."""
import socket, subprocess, re, time, sys, tempfile
binary = sys.argv[1]
log = tempfile.mktemp()
p = subprocess.Popen([binary, "serve", "--bind", "127.0.0.1", "--port", "0", "--model", "models/resnet50.safetensors",
                      "--access-log", "false"], stderr=open(log, "wb"), stdout=subprocess.DEVNULL)
for _ in range(600):
    m = re.search(r'listening on \S*:(\d+)"', open(log).read())
    if m: break
    time.sleep(0.1)
port = int(m.group(1))
s = socket.create_connection(("127.0.0.1", port)); t0 = time.monotonic()
s.sendall(b"GET /healthz HTTP/1.1\r\n"); s.settimeout(1); dropped = None
for i in range(25):
    try:
        s.sendall(b"X-Pad-%d: 1\r\n" % i)
        if s.recv(100) == b"": dropped = time.monotonic() - t0; break
    except socket.timeout: pass
    except OSError: dropped = time.monotonic() - t0; break
print(f"{binary}: a header line a second: dropped after {dropped and round(dropped, 1)} s (watched 25 s)")
p.terminate(); p.wait()
