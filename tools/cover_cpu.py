#!/usr/bin/env python3
"""CPU per GB of bulk through sctpt (issue 16 measurements; docs/PROTOCOL.md "What an observer
sees").  Starts a server and a client on loopback, moves MiB through the client's SOCKS port to
a local target in each direction, and reports the user+sys CPU seconds of the two sctpt
processes per GB moved (from /proc/PID/stat), which a shared machine disturbs far less than wall
time.  Several builds alternate run by run so that load drifts hit them alike.

    python3 tools/cover_cpu.py --bin build/sctpt --bin /tmp/base/build/sctpt --mib 512 --runs 3

--junk N instead sends N random datagrams (100-1400 bytes) to the server and reports its CPU
per datagram: the cost of what probes and floods make it check (the HELLO MAC, plain and
prefixed forms).

--hop-range N listens on N consecutive UDP ports and gives the client the range (add
--client-arg=--hop-interval --client-arg=2 to hop during the transfer).
"""

import argparse
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

LOOP = "127.0.0.1"
TICK = os.sysconf("SC_CLK_TCK")


def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK      # utime + stime


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind((LOOP, 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Target:
    """Per connection: 9-byte header (direction, n); 'd' sends n bytes, 'u' reads n bytes."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind((LOOP, 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            c, _ = self.ls.accept()
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        hdr = b""
        while len(hdr) < 9:
            hdr += c.recv(9 - len(hdr))
        d, n = hdr[:1], struct.unpack("!Q", hdr[1:])[0]
        buf = bytes(1 << 16)
        if d == b"d":
            left = n
            while left > 0:
                left -= c.send(buf[:min(left, len(buf))])
        else:
            left = n
            while left > 0:
                left -= len(c.recv(min(left, 1 << 20)))
            c.sendall(b"k")
        c.close()


def socks(port, dst):
    s = socket.create_connection((LOOP, port), timeout=60)
    s.sendall(b"\x05\x01\x00")
    assert s.recv(2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(dst[0]) + struct.pack("!H", dst[1]))
    r = s.recv(10)
    assert r[1] == 0, r
    return s


def wait_log(path, needle, secs):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        with open(path, errors="replace") as f:
            if needle in f.read():
                return True
        time.sleep(0.05)
    return False


def free_range(n):
    import random
    for _ in range(50):
        base = random.randint(20000, 60000 - n)
        ok = True
        for p in range(base, base + n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((LOOP, p))
            except OSError:
                ok = False
            s.close()
            if not ok:
                break
        if ok:
            return base
    raise RuntimeError("no free port range")


def one(binary, tmp, target, mib, extra, hop_range=0):
    key = os.path.join(tmp, "key")
    if not os.path.exists(key):
        subprocess.run([binary, "keygen", "--key", key], check=True, capture_output=True)
    cert = subprocess.run([binary, "keygen", "--key", key, "--show"], check=True,
                          capture_output=True, text=True).stdout
    cert = next(w[5:] for w in cert.split() if w.startswith("cert="))
    sport, cport = free_port(socket.SOCK_DGRAM), free_port()
    ports = str(sport)
    if hop_range > 1:
        sport = free_range(hop_range)
        ports = f"{sport}-{sport + hop_range - 1}"
    slog, clog = os.path.join(tmp, "s.log"), os.path.join(tmp, "c.log")
    srv = subprocess.Popen([binary, "server", "--listen", f"udp://{LOOP}:{ports}", "--key", key,
                            "--proxy", "--allow", "127.0.0.0/8", "--no-replay-file"],
                           stdout=open(slog, "w"), stderr=subprocess.STDOUT)
    cli = None
    try:
        assert wait_log(slog, "listening on", 10), "server did not start"
        cli = subprocess.Popen([binary, "client", "--server", f"udp://{LOOP}:{ports}",
                                "--cert", cert, "--socks", f"{LOOP}:{cport}"] + extra,
                               stdout=open(clog, "w"), stderr=subprocess.STDOUT)
        assert wait_log(clog, "association up", 15), "no association"
        n = mib << 20
        res = {}
        for d in "du":
            s = socks(cport, (LOOP, target.port))
            c0, t0 = cpu(srv.pid) + cpu(cli.pid), time.monotonic()
            s.sendall(d.encode() + struct.pack("!Q", n))
            if d == "d":
                left = n
                while left > 0:
                    got = s.recv(1 << 20)
                    assert got, "download ended early"
                    left -= len(got)
            else:
                buf = bytes(1 << 16)
                left = n
                while left > 0:
                    left -= s.send(buf[:min(left, len(buf))])
                assert s.recv(1) == b"k"
            dt = time.monotonic() - t0
            dc = cpu(srv.pid) + cpu(cli.pid) - c0
            s.close()
            res[d] = (dc / (n / 1e9), n / dt / 1e6)
        return res
    finally:
        for p in (cli, srv):
            if p is not None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


def junk(binary, tmp, count):
    import random
    key = os.path.join(tmp, "key")
    if not os.path.exists(key):
        subprocess.run([binary, "keygen", "--key", key], check=True, capture_output=True)
    sport = free_port(socket.SOCK_DGRAM)
    slog = os.path.join(tmp, "s.log")
    srv = subprocess.Popen([binary, "server", "--listen", f"udp://{LOOP}:{sport}", "--key", key,
                            "--proxy", "--no-replay-file", "-q"],
                           stdout=open(slog, "w"), stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        rng = random.Random(1)
        pool = [rng.randbytes(rng.randint(100, 1400)) for _ in range(256)]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c0 = cpu(srv.pid)
        for i in range(count):
            s.sendto(pool[i & 255], (LOOP, sport))
            if i % 2000 == 1999:
                time.sleep(0.002)       # stay below the socket buffer: every one is read
        time.sleep(1.0)
        return (cpu(srv.pid) - c0) / count * 1e6
    finally:
        srv.terminate()
        srv.wait(10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", required=True)
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--client-arg", action="append", default=[])
    ap.add_argument("--hop-range", type=int, default=0)
    ap.add_argument("--junk", type=int, default=0)
    a = ap.parse_args()
    if a.junk > 0:
        with tempfile.TemporaryDirectory(prefix="sctpt-cpu-") as tmp:
            res = {b: [] for b in a.bin}
            for r in range(a.runs):
                for b in a.bin:
                    res[b].append(junk(b, tmp, a.junk))
                    print(f"run {r} {b}: {res[b][-1]:.2f} us CPU per junk datagram", flush=True)
            for b, v in res.items():
                v.sort()
                print(f"{b}: median {v[len(v) // 2]:.2f} us CPU per junk datagram")
        return 0
    target = Target()
    out = {b: [] for b in a.bin}
    with tempfile.TemporaryDirectory(prefix="sctpt-cpu-") as tmp:
        for r in range(a.runs):
            for b in a.bin:
                res = one(b, tmp, target, a.mib, a.client_arg, a.hop_range)
                out[b].append(res)
                print(f"run {r} {b}: down {res['d'][0]:.2f} CPU s/GB at {res['d'][1]:.0f} MB/s, "
                      f"up {res['u'][0]:.2f} CPU s/GB at {res['u'][1]:.0f} MB/s", flush=True)
    for b, rs in out.items():
        for d, name in (("d", "down"), ("u", "up")):
            v = sorted(x[d][0] for x in rs)
            print(f"{b} {name}: CPU s/GB (client+server, user+sys) median {v[len(v) // 2]:.2f}, "
                  f"all {', '.join(f'{x:.2f}' for x in v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
