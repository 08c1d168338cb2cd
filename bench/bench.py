#!/usr/bin/env python3
"""sctpt benchmarks, on loopback, against shadowsocks-libev and plain TCP in the same run.

  python3 bench/bench.py            # everything (a few minutes)
  python3 bench/bench.py --quick    # smaller transfers, fewer repetitions
  python3 bench/bench.py --only throughput,ttfb,memory,concurrent,profile
  python3 bench/bench.py --engines native,usrsctp   # sctpt with each SCTP engine, same run

Prints absolute numbers and, more usefully, ratios (machines are noisy). Only 127.0.0.1 is used.
"""
import argparse
import asyncio
import hashlib
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SS_METHOD = "chacha20-ietf-poly1305"
SS_KEY = "bench-password"
BLOCK = 1 << 20


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_tcp(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


class Procs:
    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []

    def start(self, name, argv):
        log = open(os.path.join(self.tmp, name + ".log"), "wb")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.procs = []


# ---------- target servers (separate processes so Python's GIL is not in the way) ----------

def sink_server(port, ready):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)
    ready.set()
    while True:
        c, _ = ls.accept()
        hdr = c.recv(1)
        if hdr == b"U":        # upload: length, then that many bytes; answer with the count
            want = struct.unpack(">Q", c.recv(8, socket.MSG_WAITALL))[0]
            n = 0
            while n < want:
                d = c.recv(min(BLOCK, want - n))
                if not d:
                    break
                n += len(d)
            c.sendall(struct.pack(">Q", n))
        elif hdr == b"D":      # download: send the requested number of bytes
            want = struct.unpack(">Q", c.recv(8, socket.MSG_WAITALL))[0]
            blk = b"\xa5" * BLOCK
            while want > 0:
                k = min(want, BLOCK)
                c.sendall(blk[:k])
                want -= k
        c.close()


def echo_server(port, ready):
    async def handle(r, w):
        try:
            while True:
                d = await r.read(65536)
                if not d:
                    break
                w.write(d)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    async def main():
        srv = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096, limit=65536)
        ready.set()
        async with srv:
            await srv.serve_forever()

    asyncio.run(main())


def start_target(fn, port):
    ready = mp.Event()
    p = mp.Process(target=fn, args=(port, ready), daemon=True)
    p.start()
    ready.wait(10)
    return p


# ---------- SOCKS5 client ----------

def socks5_connect(proxy_port, dst_port, timeout=30):
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"\x05\x01\x00" + b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") +
              struct.pack(">H", dst_port))
    got = b""
    while len(got) < 12:
        d = s.recv(12 - len(got))
        if not d:
            raise RuntimeError("SOCKS proxy closed")
        got += d
    if got[:2] != b"\x05\x00" or got[3] != 0:
        raise RuntimeError(f"SOCKS failure {got!r}")
    return s


# ---------- the tunnels under test ----------

class Tunnel:
    """Something that gets us a TCP connection to 127.0.0.1:dst_port."""
    name = "?"

    def connect(self, dst_port):
        raise NotImplementedError


class Direct(Tunnel):
    name = "plain TCP"

    def connect(self, dst_port):
        s = socket.create_connection(("127.0.0.1", dst_port), 30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s


class Sctpt(Tunnel):
    """sctpt server + client with a fresh identity key (keygen): the encrypted tunnel."""
    count = 0

    def __init__(self, procs, binary, mtu=1452, extra=(), engine=None, carrier="udp"):
        self.engine = engine
        what = f"mtu {mtu}" if carrier == "udp" else f"{carrier}, mtu {mtu}"
        self.name = f"sctpt {engine} ({what})" if engine else f"sctpt ({what})"
        Sctpt.count += 1
        tag = f"{mtu}-{Sctpt.count}"
        if engine:
            extra = ("--sctp-engine", engine, *extra)
        key = os.path.join(procs.tmp, f"sctpt-{tag}.key")
        kg = subprocess.run([binary, "keygen", "--key", key], capture_output=True, text=True,
                            timeout=10)
        cert = kg.stdout.strip()
        if kg.returncode != 0 or not cert.startswith("cert="):
            raise RuntimeError(f"sctpt keygen failed ({kg.returncode}): {kg.stderr.strip()}")
        port = free_port(socket.SOCK_DGRAM if carrier == "udp" else socket.SOCK_STREAM)
        self.socks = free_port()
        self.server = procs.start(f"sctpt-server-{tag}", [
            binary, "server", "--listen", f"{carrier}://127.0.0.1:{port}", "--key", key, "--proxy",
            "--allow", "127.0.0.0/8", "--mtu", str(mtu), *extra])
        time.sleep(0.2)
        self.client_log = os.path.join(procs.tmp, f"sctpt-client-{tag}.log")
        self.client = procs.start(f"sctpt-client-{tag}", [
            binary, "client", "--server", f"{carrier}://127.0.0.1:{port}", "--cert", cert, "--socks",
            f"127.0.0.1:{self.socks}", "--mtu", str(mtu), *extra])
        wait_tcp(self.socks)
        self._warm()

    def _warm(self):
        """Wait (at most 15 s) until the client has its association (handshake done)."""
        end = time.time() + 15
        while time.time() < end:
            try:
                if "association up" in Path(self.client_log).read_text(errors="replace"):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: no association within 15s (see {self.client_log})")

    def connect(self, dst_port):
        return socks5_connect(self.socks, dst_port)

    def pids(self):
        return [self.client.pid, self.server.pid]


class SsTunnel(Tunnel):
    """ss-tunnel (fixed destination) + ss-server: the issue's comparison for bulk transfer."""

    def __init__(self, procs, dst_port):
        self.name = "shadowsocks-libev"
        sp = free_port()
        self.port = free_port()
        self.dst = dst_port
        self.server = procs.start(f"ss-server-{dst_port}", [
            "ss-server", "-s", "127.0.0.1", "-p", str(sp), "-k", SS_KEY, "-m", SS_METHOD])
        time.sleep(0.2)
        self.local = procs.start(f"ss-tunnel-{dst_port}", [
            "ss-tunnel", "-s", "127.0.0.1", "-p", str(sp), "-l", str(self.port), "-k", SS_KEY,
            "-m", SS_METHOD, "-L", f"127.0.0.1:{dst_port}"])
        wait_tcp(self.port)

    def connect(self, dst_port):
        assert dst_port == self.dst
        s = socket.create_connection(("127.0.0.1", self.port), 30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def pids(self):
        return [self.local.pid, self.server.pid]


class SsLocal(Tunnel):
    """ss-local (SOCKS5) + ss-server: same interface as sctpt client for latency and memory."""

    def __init__(self, procs):
        self.name = "shadowsocks-libev"
        sp = free_port()
        self.socks = free_port()
        self.server = procs.start("ss-server-socks", [
            "ss-server", "-s", "127.0.0.1", "-p", str(sp), "-k", SS_KEY, "-m", SS_METHOD])
        time.sleep(0.2)
        self.local = procs.start("ss-local", [
            "ss-local", "-s", "127.0.0.1", "-p", str(sp), "-l", str(self.socks), "-k", SS_KEY,
            "-m", SS_METHOD])
        wait_tcp(self.socks)

    def connect(self, dst_port):
        return socks5_connect(self.socks, dst_port)

    def pids(self):
        return [self.local.pid, self.server.pid]


# ---------- measurements ----------

def upload(t, port, nbytes):
    s = t.connect(port)
    # no half-close: shadowsocks-libev does not carry one
    s.sendall(b"U" + struct.pack(">Q", nbytes))
    blk = b"\x5a" * BLOCK
    t0 = time.perf_counter()
    left = nbytes
    while left > 0:
        k = min(left, BLOCK)
        s.sendall(blk[:k])
        left -= k
    got = b""
    while len(got) < 8:
        d = s.recv(8 - len(got))
        if not d:
            break
        got += d
    dt = time.perf_counter() - t0
    s.close()
    if len(got) != 8 or struct.unpack(">Q", got)[0] != nbytes:
        raise RuntimeError(f"{t.name}: upload incomplete")
    return nbytes / dt / 1e6


def download(t, port, nbytes):
    s = t.connect(port)
    t0 = time.perf_counter()
    s.sendall(b"D" + struct.pack(">Q", nbytes))
    n = 0
    while n < nbytes:
        d = s.recv(BLOCK)
        if not d:
            break
        n += len(d)
    dt = time.perf_counter() - t0
    s.close()
    if n != nbytes:
        raise RuntimeError(f"{t.name}: download incomplete ({n} of {nbytes})")
    return nbytes / dt / 1e6


def cpu_seconds(pids):
    tot = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            tot += (int(f[11]) + int(f[12])) / tick
        except (OSError, IndexError):
            pass
    return tot


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def bench_throughput(binary, procs, reps, mb, extra_mtus, engines, carriers=("udp",)):
    print(f"\n== Bulk throughput, one connection, {mb} MiB each way, median of {reps}")
    port = free_port()
    start_target(sink_server, port)
    nbytes = mb * BLOCK
    tunnels = [Direct(), SsTunnel(procs, port)]
    tunnels += [Sctpt(procs, binary, 1452, engine=e) for e in engines if "udp" in carriers]
    # The TCP carrier (issue 11, item 5): SCTP on top of TCP, against the same ss-libev.
    tunnels += [Sctpt(procs, binary, 1452, engine=e, carrier=c) for e in engines
                for c in carriers if c != "udp"]
    for m in extra_mtus:
        tunnels += [Sctpt(procs, binary, m, engine=e) for e in engines]
    res = {}
    for t in tunnels:
        ups, downs = [], []
        pids = t.pids() if hasattr(t, "pids") else []
        cpu0 = [cpu_seconds([p]) for p in pids]
        for _ in range(reps):
            ups.append(upload(t, port, nbytes))
            downs.append(download(t, port, nbytes))
        gb = 2 * reps * nbytes / 1e9
        per_side = [(cpu_seconds([p]) - c0) / gb for p, c0 in zip(pids, cpu0)]
        res[t.name] = (statistics.median(ups), statistics.median(downs), sum(per_side))
        side = (f"   CPU s/GB: client {per_side[0]:5.2f} + server {per_side[1]:5.2f}"
                f" = {sum(per_side):5.2f}" if per_side else "")
        print(f"  {t.name:22s} upload {res[t.name][0]:8.1f} MB/s   download {res[t.name][1]:8.1f} MB/s"
              + side)
    ss = res["shadowsocks-libev"]
    for name, v in res.items():
        if name.startswith("sctpt"):
            print(f"  ratio {name} / shadowsocks-libev: upload {v[0] / ss[0]:.2f}x, "
                  f"download {v[1] / ss[1]:.2f}x, CPU per GB {v[2] / ss[2]:.2f}x")
    pt = res["plain TCP"]
    print(f"  ratio shadowsocks-libev / plain TCP: upload {ss[0] / pt[0]:.2f}x")
    engine_ratios(res, engines, [(0, "upload", True), (1, "download", True),
                                 (2, "CPU per GB", False)])
    return res


def engine_ratios(res, engines, figures):
    """With two engines, print the first against the second for each figure, e.g.
    native / usrsctp upload 1.20x (better).  figures: (index, label, higher_is_better)."""
    if len(engines) != 2:
        return
    a, b = engines
    for name, v in res.items():
        if not name.startswith(f"sctpt {a} "):
            continue
        other = res.get(name.replace(f"sctpt {a} ", f"sctpt {b} ", 1))
        if other is None:
            continue
        for i, label, higher in figures:
            r = v[i] / other[i] if other[i] else float("inf")
            good = r >= 1 if higher else r <= 1
            print(f"  engines {name.split('(')[1].rstrip(')')}: {a} / {b} {label} {r:.2f}x"
                  f" ({'at least as good' if good else 'worse'})")


def ttfb_once(t, port):
    t0 = time.perf_counter()
    s = t.connect(port)
    s.sendall(b"x" * 64)
    d = s.recv(64)
    dt = time.perf_counter() - t0
    s.close()
    if not d:
        raise RuntimeError("no answer")
    return dt * 1000


def bench_ttfb(binary, procs, n, engines):
    print(f"\n== Time to first byte over an established tunnel (connect, send 64 B, first byte"
          f" of the echo), {n} requests")
    port = free_port()
    start_target(echo_server, port)
    res = {}
    for t in [Direct(), SsLocal(procs)] + [Sctpt(procs, binary, 1452, engine=e) for e in engines]:
        for _ in range(5):
            ttfb_once(t, port)
        xs = sorted(ttfb_once(t, port) for _ in range(n))
        res[t.name] = (statistics.median(xs), xs[int(len(xs) * 0.9)], xs[int(len(xs) * 0.99)])
        print(f"  {t.name:22s} median {res[t.name][0]:6.3f} ms   p90 {res[t.name][1]:6.3f} ms"
              f"   p99 {res[t.name][2]:6.3f} ms")
    ss = res["shadowsocks-libev"]
    for name, s in res.items():
        if name.startswith("sctpt"):
            print(f"  ratio {name} / shadowsocks-libev: median {s[0] / ss[0]:.2f}x,"
                  f" p90 {s[1] / ss[1]:.2f}x, p99 {s[2] / ss[2]:.2f}x")
    engine_ratios(res, engines, [(0, "TTFB median", False), (2, "TTFB p99", False)])
    return res


async def open_many(proxy_port, dst_port, n, parallel=200, check=True):
    sem = asyncio.Semaphore(parallel)
    conns, errors = [], []

    async def one(i):
        async with sem:
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", proxy_port), 30)
                w.write(b"\x05\x01\x00\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") +
                        struct.pack(">H", dst_port))
                rep = await asyncio.wait_for(r.readexactly(12), 30)
                if rep[:2] != b"\x05\x00" or rep[3] != 0:
                    raise RuntimeError(f"SOCKS reply {rep!r}")
                if check:
                    msg = b"%08d" % i
                    w.write(msg)
                    got = await asyncio.wait_for(r.readexactly(8), 30)
                    if got != msg:
                        raise RuntimeError("echo mismatch")
                conns.append((r, w))
            except Exception as e:   # counted, reported
                errors.append(repr(e))

    await asyncio.gather(*(one(i) for i in range(n)))
    return conns, errors


async def close_all(conns):
    for _, w in conns:
        w.close()
    await asyncio.sleep(0.5)


async def hold_many(proxy_port, dst_port, n, measure):
    """Open n verified connections, call measure() while all are open, close them."""
    conns, errors = await open_many(proxy_port, dst_port, n)
    await asyncio.sleep(1.0)
    result = measure(len(conns))
    await close_all(conns)
    return len(conns), errors, result


def bench_memory(binary, procs, n, engines):
    print(f"\n== Memory per idle open connection ({n} idle connections, RSS of both tunnel ends)")
    port = free_port()
    start_target(echo_server, port)
    res = {}
    for t in [Sctpt(procs, binary, 1452, engine=e) for e in engines] + [SsLocal(procs)]:
        pids = t.pids()
        # a first batch warms up allocator pools; then measure a second one on top
        asyncio.run(hold_many(t.socks, port, 200, lambda k: None))
        before = sum(rss_kib(p) for p in pids)
        ok, errors, after = asyncio.run(hold_many(t.socks, port, n,
                                                  lambda k: sum(rss_kib(p) for p in pids)))
        per = (after - before) * 1024 / max(1, ok)
        res[t.name] = (per,)
        print(f"  {t.name:22s} {per / 1024:6.2f} KiB per connection (both ends together),"
              f" errors {len(errors)}")
    engine_ratios(res, engines, [(0, "memory per idle connection", False)])
    return res


def bench_concurrent(binary, procs, n, engines):
    print(f"\n== {n} concurrent connections on one association (echo checked on each)")
    port = free_port()
    start_target(echo_server, port)
    res = {}
    for e in engines:
        res[e] = concurrent_once(binary, procs, n, port, e)
        procs.stop_all()
    return res


def concurrent_once(binary, procs, n, port, engine):
    # the defaults allow 4096 connections; raise the limits on both ends for this test
    t = Sctpt(procs, binary, 1452, extra=("--max-conns", str(n + 100)), engine=engine)
    print(f"  {t.name}:")
    t0 = time.time()
    ok, errors, rss = asyncio.run(hold_many(t.socks, port, n,
                                            lambda k: [rss_kib(p) for p in t.pids()]))
    dt = time.time() - t0
    print(f"  opened, verified and held {ok} of {n} at once in {dt:.1f} s, errors {len(errors)}"
          f" {errors[:3] if errors else ''}")
    print(f"  RSS with all open: client {rss[0] / 1024:.1f} MiB, server {rss[1] / 1024:.1f} MiB")
    alive = all(p.poll() is None for p in (t.client, t.server))
    print(f"  both sctpt processes still running: {alive}")
    return ok, len(errors), dt, rss


def bench_profile(binary, procs, mb, engine):
    if shutil.which("perf") is None:
        print("\n== Profile: perf not installed (apt-get install linux-perf)")
        return
    print(f"\n== Where the time goes: perf profile of the sctpt client during a {mb} MiB upload")
    port = free_port()
    start_target(sink_server, port)
    t = Sctpt(procs, binary, 1452, engine=engine)
    print(f"  {t.name}")
    out = os.path.join(procs.tmp, "perf.data")
    rec = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-o", out, "-p",
                            str(t.client.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    upload(t, port, mb * BLOCK)
    rec.send_signal(signal.SIGINT)
    rec.wait(30)
    for sort in ("dso", "dso,sym"):
        rep = subprocess.run(["perf", "report", "-i", out, "--no-children", "--sort", sort,
                              "--stdio", "--percent-limit", "2", "-g", "none"],
                             capture_output=True, text=True)
        lines = [ln for ln in rep.stdout.splitlines() if ln.strip() and not ln.startswith("#")]
        print(f"  by {sort}:")
        for ln in lines[:14]:
            print("   ", ln.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sctpt", default=str(ROOT / "build" / "sctpt"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="throughput,ttfb,memory,concurrent,profile")
    ap.add_argument("--engines", default="",
                    help="comma-separated SCTP engines to run sctpt with (native,usrsctp);"
                         " default: the binary's default engine only")
    ap.add_argument("--carriers", default="udp",
                    help="comma-separated carriers for the throughput runs (udp,tcp);"
                         " the MTU 9000/16000 runs are UDP only")
    ap.add_argument("--no-big-mtu", action="store_true",
                    help="throughput: skip the MTU 9000 and 16000 runs")
    ap.add_argument("--reps", type=int, default=0, help="throughput: runs each way (median)")
    ap.add_argument("--mb", type=int, default=0, help="throughput: MiB per run")
    a = ap.parse_args()
    only = set(a.only.split(","))
    carriers = [c for c in a.carriers.split(",") if c]
    for c in carriers:
        if c not in ("udp", "tcp"):
            sys.exit(f"bench: unknown carrier {c!r} (udp, tcp)")
    engines = [e for e in a.engines.split(",") if e] or [None]
    for e in engines:
        if e not in (None, "native", "usrsctp"):
            sys.exit(f"bench: unknown engine {e!r} (native, usrsctp)")
    reps, mb = (1, 128) if a.quick else (3, 512)
    reps, mb = a.reps or reps, a.mb or mb
    tmp = tempfile.mkdtemp(prefix="sctpt-bench.")
    procs = Procs(tmp)
    print(f"sctpt benchmark on {os.cpu_count()} CPUs; logs in {tmp}")
    try:
        if "throughput" in only:
            bench_throughput(a.sctpt, procs, reps, mb, [] if a.no_big_mtu else [9000, 16000],
                             engines, carriers)
            procs.stop_all()
        if "ttfb" in only:
            bench_ttfb(a.sctpt, procs, 100 if a.quick else 300, engines)
            procs.stop_all()
        if "memory" in only:
            bench_memory(a.sctpt, procs, 1000 if a.quick else 2000, engines)
            procs.stop_all()
        if "concurrent" in only:
            bench_concurrent(a.sctpt, procs, 2000 if a.quick else 10000, engines)
            procs.stop_all()
        if "profile" in only:
            for e in engines:
                bench_profile(a.sctpt, procs, 256, e)
                procs.stop_all()
    finally:
        procs.stop_all()
        for p in mp.active_children():
            p.kill()


if __name__ == "__main__":
    main()
