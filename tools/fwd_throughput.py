#!/usr/bin/env python3
"""Download throughput through a port forward or a SOCKS port (docs/forwarding.md).

A source on 127.0.0.1:SRC sends MIB mebibytes per connection; we fetch it three times
through PORT, either a forward that leads to SRC (-L PORT:127.0.0.1:SRC, or -R PORT:...:SRC)
or, with mode "socks", a SOCKS5 port asked for 127.0.0.1:SRC.

  tools/fwd_throughput.py socks|forward PORT MIB SRC
"""
import socket, sys, threading, time, struct
N = int(sys.argv[3]) << 20
def source(port):
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port)); ls.listen(8)
    buf = b"x" * (1 << 20)
    while True:
        c, _ = ls.accept()
        def run(c=c):
            left = N
            while left > 0:
                n = c.send(buf[:min(left, len(buf))]); left -= n
            c.close()
        threading.Thread(target=run, daemon=True).start()
def fetch(sock):
    got = 0; t = time.monotonic()
    while True:
        d = sock.recv(1 << 20)
        if not d: break
        got += len(d)
    return got, time.monotonic() - t
mode, port = sys.argv[1], int(sys.argv[2])
src = int(sys.argv[4])
threading.Thread(target=source, args=(src,), daemon=True).start(); time.sleep(0.3)
res = []
for i in range(3):
    if mode == "socks":
        s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"\x05\x01\x00"); s.recv(2)
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", src)); s.recv(10)
    else:
        s = socket.create_connection(("127.0.0.1", port))
    got, dt = fetch(s)
    assert got == N, got
    res.append(got * 8 / dt / 1e6)
print(f"{mode} port {port}: {N >> 20} MiB x3: " + ", ".join(f"{r:.0f}" for r in res) + " Mbit/s")
