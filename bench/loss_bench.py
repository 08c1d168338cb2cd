#!/usr/bin/env python3
"""Request/response latency under packet loss: sctpt against ssh -D and shadowsocks-libev.

  python3 bench/loss_bench.py                       # 2% loss each way, 0 and 50 ms RTT
  python3 bench/loss_bench.py --duration 10 --rtt 0,50 --loss 0.02
  python3 bench/loss_bench.py --sctpt-variant 'rto50=--rto-min 50 --sack-delay 5'
  python3 bench/loss_bench.py --engines native,usrsctp   # sctpt with each SCTP engine

Two network namespaces, A (clients) and B (servers), joined only by `sctpt-lab impair` in IP-level
mode (TUN devices), which drops `--loss` of the packets in each direction and adds half the RTT
each way.  In B: a request/response server on 127.0.0.1 and each tunnel's server end (sctpt
server, sshd, ss-server) on 10.77.0.2.  In A: each tunnel's SOCKS end (sctpt client, ssh -D,
ss-local) and a load generator: `--conns` connections through the SOCKS port, each sending
1 KB requests and reading 1 KB responses one after another (`--think-ms` apart) for
`--duration` seconds.  Latency is per request (write to last byte of the response).

The comparison: sctpt carries all connections on streams of one SCTP association over UDP;
ssh -D carries them as channels of one TCP connection; shadowsocks-libev uses one TCP
connection per proxied connection (run with --no-delay).  "plain TCP" is a direct connection
A -> B without a tunnel.  Issue 5's target: sctpt p99 at most half the better of ssh -D and
shadowsocks at every RTT.

Needs root (namespaces), ip, sshd/ssh/ssh-keygen (openssh-server, openssh-client) and
ss-server/ss-local (shadowsocks-libev).  Everything is cleaned up at exit.  Traffic stays
inside the two namespaces created here.
"""
import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADDR_A, ADDR_B = "10.77.0.1", "10.77.0.2"
SS_METHOD = "chacha20-ietf-poly1305"
SS_KEY = "loss-bench-password"
APP_PORT = 7000           # request/response server, in B on 0.0.0.0 (127.0.0.1 for tunnels)
SCTPT_PORT = 4433         # + variant index
SSHD_PORT = 2222
SS_PORT = 8388
SIZE = 1024


# ---------------------------------------------------------------- inside the namespaces

async def serve(port):
    async def handle(r, w):
        w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                req = await r.readexactly(SIZE)
                w.write(req[:8] + b"\x5a" * (SIZE - 8))
                await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            w.close()

    srv = await asyncio.start_server(handle, "0.0.0.0", port, backlog=1024)
    print("serving", flush=True)
    async with srv:
        await srv.serve_forever()


async def socks_connect(socks_port, dst_host, dst_port, timeout):
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", socks_port), timeout)
    w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    w.write(b"\x05\x01\x00\x05\x01\x00\x01" + socket.inet_aton(dst_host) +
            struct.pack(">H", dst_port))
    rep = await asyncio.wait_for(r.readexactly(6), timeout)
    if rep[:2] != b"\x05\x00" or rep[3] != 0:
        raise RuntimeError(f"SOCKS reply {rep.hex()}")
    rest = {1: 4 + 2, 4: 16 + 2}.get(rep[5])
    if rest is None:           # a domain name: its length byte first
        rest = (await asyncio.wait_for(r.readexactly(1), timeout))[0] + 2
    await asyncio.wait_for(r.readexactly(rest), timeout)
    return r, w


async def load(args):
    """Open --conns connections, then request/response on each until the deadline."""
    lat, errors, trace = [], [], []

    async def conn(i):
        try:
            if args.socks:
                r, w = await socks_connect(args.socks, "127.0.0.1", args.port, 30)
            else:
                r, w = await asyncio.wait_for(asyncio.open_connection(args.host, args.port), 30)
                w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except Exception as e:          # counted and reported
            errors.append(f"connect: {e!r}")
            return None
        return r, w

    conns = await asyncio.gather(*(conn(i) for i in range(args.conns)))
    conns = [c for c in conns if c]
    start = time.monotonic()
    warm_until = start + args.warmup
    end = warm_until + args.duration

    async def run(idx, r, w):
        n = 0
        # spread the first requests over one think time
        await asyncio.sleep(args.think_ms / 1000 * idx / max(1, len(conns)))
        try:
            while time.monotonic() < end:
                tag = struct.pack(">II", idx, n)
                t0 = time.perf_counter()
                w.write(tag + b"\xa5" * (SIZE - 8))
                resp = await asyncio.wait_for(r.readexactly(SIZE), 30)
                dt = (time.perf_counter() - t0) * 1000
                if resp[:8] != tag:
                    raise RuntimeError("response out of order")
                if time.monotonic() >= warm_until:
                    lat.append(dt)
                    if args.dump:
                        trace.append((round(t0, 4), round(dt, 2), idx))
                n += 1
                if args.think_ms:
                    await asyncio.sleep(args.think_ms / 1000)
        except Exception as e:
            errors.append(f"request: {e!r}")
        finally:
            w.close()

    await asyncio.gather(*(run(i, r, w) for i, (r, w) in enumerate(conns)))
    lat.sort()
    if args.dump:
        Path(args.dump).write_text(json.dumps(sorted(trace)))
    print(json.dumps({"conns": len(conns), "n": len(lat), "errors": errors[:5],
                      "nerrors": len(errors), "lat": summarize(lat)}), flush=True)


def pct(xs, p):
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def summarize(xs):
    return {"p50": pct(xs, 50), "p90": pct(xs, 90), "p99": pct(xs, 99), "p999": pct(xs, 99.9),
            "max": xs[-1] if xs else float("nan"), "over200": sum(1 for x in xs if x > 200),
            "hist": {t: sum(1 for x in xs if x > t) for t in (10, 20, 40, 60, 80, 110, 160, 260)}}


# ---------------------------------------------------------------- orchestration

def run(argv, timeout=30, check=True):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()[-300:]}")
    return p


class Lab:
    def __init__(self, sctpt, tmp, lab=None):
        self.sctpt = sctpt
        # The impairment lab is the second binary, built next to sctpt.
        self.lab = lab or os.path.join(os.path.dirname(sctpt), "sctpt-lab")
        self.tmp = tmp
        self.procs = []
        tag = f"{os.getpid()}"
        self.a, self.b = f"lossb-{tag}-a", f"lossb-{tag}-b"
        self.ns = []

    def spawn(self, name, argv, ns=None):
        if ns:
            argv = ["ip", "netns", "exec", ns] + argv
        log = open(os.path.join(self.tmp, name + ".log"), "wb")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        p.name, p.log = name, os.path.join(self.tmp, name + ".log")
        self.procs.append(p)
        return p

    def wait_log(self, p, needle, secs=15):
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if needle in Path(p.log).read_text(errors="replace"):
                return
            if p.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{p.name}: no {needle!r} within {secs}s; log:\n"
                           + Path(p.log).read_text(errors="replace")[-1500:])

    def wait_port(self, ns, host, port, secs=15):
        end = time.monotonic() + secs
        probe = (f"import socket; socket.create_connection(('{host}', {port}), 1).close()")
        while time.monotonic() < end:
            if run(["ip", "netns", "exec", ns, sys.executable, "-c", probe], check=False
                   ).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{host}:{port} in {ns} not open within {secs}s")

    def up(self, loss, seed):
        for n in (self.a, self.b):
            run(["ip", "netns", "add", n])
            self.ns.append(n)
            run(["ip", "-n", n, "link", "set", "lo", "up"])
            for k in ("all", "default"):
                run(["ip", "netns", "exec", n, "sysctl", "-qw", f"net.ipv6.conf.{k}.disable_ipv6=1"])
        self.api = free_port()
        self.impair = self.spawn("impair", [self.lab, "impair", "--tun", f"{self.a}:{ADDR_A}/24",
                                            "--tun", f"{self.b}:{ADDR_B}/24", "--loss", str(loss),
                                            "--seed", str(seed), "--api", f"127.0.0.1:{self.api}"])
        self.wait_log(self.impair, "impair: ready")
        self.app = self.spawn("app-server", [sys.executable, __file__, "--_serve",
                                             "--port", str(APP_PORT)], ns=self.b)
        self.wait_log(self.app, "serving")

    def set_delay(self, one_way_ms):
        self.api_put({"both": {"delay_ms": one_way_ms}})

    def api_put(self, body):
        req = urllib.request.Request(f"http://127.0.0.1:{self.api}/settings",
                                     data=json.dumps(body).encode(), method="PUT",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def stats(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api}/stats", timeout=5) as r:
            return json.loads(r.read())

    # -- tunnels: each returns the SOCKS port in A
    def start_sctpt(self, idx, extra):
        key = os.path.join(self.tmp, f"sctpt{idx}.key")
        kg = run([self.sctpt, "keygen", "--key", key])
        cert = kg.stdout.strip().split("=", 1)[1]
        port, socks = SCTPT_PORT + idx, 11080 + idx
        srv = self.spawn(f"sctpt-server{idx}", [self.sctpt, "server", "--listen",
                                                f"udp://{ADDR_B}:{port}", "--key", key, "--proxy",
                                                "--allow", "127.0.0.0/8"] + extra, ns=self.b)
        self.wait_log(srv, "listening on")
        cl = self.spawn(f"sctpt-client{idx}", [self.sctpt, "client", "--server",
                                               f"udp://{ADDR_B}:{port}", "--cert", cert,
                                               "--socks", f"127.0.0.1:{socks}"] + extra,
                        ns=self.a)
        self.wait_log(cl, "association up", 30)
        return socks

    def start_ssh(self):
        d = os.path.join(self.tmp, "ssh")
        os.makedirs(d, mode=0o700)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/host"])
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/id"])
        shutil.copy(f"{d}/id.pub", f"{d}/authorized_keys")
        Path(f"{d}/sshd_config").write_text(
            f"Port {SSHD_PORT}\nListenAddress {ADDR_B}\nHostKey {d}/host\n"
            f"AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            f"StrictModes no\nPidFile {d}/sshd.pid\nAllowTcpForwarding yes\n"
            "MaxSessions 1000\nMaxStartups 100\nLogLevel ERROR\n")
        os.makedirs("/run/sshd", exist_ok=True)           # privilege separation directory
        self.spawn("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", f"{d}/sshd_config"], ns=self.b)
        self.wait_port(self.b, ADDR_B, SSHD_PORT)
        socks = 12080
        self.spawn("ssh-D", ["ssh", "-N", "-D", f"127.0.0.1:{socks}", "-i", f"{d}/id",
                             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                             "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
                             "-o", "ServerAliveInterval=0", "-p", str(SSHD_PORT),
                             f"root@{ADDR_B}"], ns=self.a)
        self.wait_port(self.a, "127.0.0.1", socks, 30)
        return socks

    def start_ss(self):
        socks = 13080
        self.spawn("ss-server", ["ss-server", "-s", ADDR_B, "-p", str(SS_PORT), "-k", SS_KEY,
                                 "-m", SS_METHOD, "--no-delay"], ns=self.b)
        self.wait_port(self.b, ADDR_B, SS_PORT)
        self.spawn("ss-local", ["ss-local", "-s", ADDR_B, "-p", str(SS_PORT), "-b", "127.0.0.1",
                                "-l", str(socks), "-k", SS_KEY, "-m", SS_METHOD, "--no-delay"],
                   ns=self.a)
        self.wait_port(self.a, "127.0.0.1", socks)
        return socks

    def measure(self, socks, a, tag=""):
        argv = ["ip", "netns", "exec", self.a, sys.executable, __file__, "--_load",
                "--port", str(APP_PORT), "--conns", str(a.conns), "--duration", str(a.duration),
                "--warmup", str(a.warmup), "--think-ms", str(a.think_ms)]
        argv += ["--socks", str(socks)] if socks else ["--host", ADDR_B]
        if a.trace_dir:
            argv += ["--dump", os.path.join(a.trace_dir, re.sub(r"[^A-Za-z0-9]+", "_", tag) + ".json")]
        p = run(argv, timeout=a.duration + a.warmup + 120)
        return json.loads(p.stdout.strip().splitlines()[-1])

    def close(self):
        # SIGTERM first so the tunnels log their counters at exit; then SIGKILL
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGTERM)
        end = time.monotonic() + 5
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.1, end - time.monotonic()))
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(5)
        for n in self.ns:
            run(["ip", "netns", "del", n], check=False)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sctpt", default=str(ROOT / "build" / "sctpt"))
    ap.add_argument("--sctpt-lab", default=None,
                    help="the lab binary (default: sctpt-lab next to --sctpt)")
    ap.add_argument("--loss", type=float, default=0.02, help="loss in each direction (0.02)")
    ap.add_argument("--rtt", default="0,50", help="added round-trip times, ms (0,50)")
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds measured per run")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--think-ms", type=float, default=500.0,
                    help="pause between a response and the next request")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--trace-dir", default="",
                    help="write each run's (start, latency ms, connection) list here as JSON")
    ap.add_argument("-v", "--verbose", action="store_true", help="print a latency histogram")
    ap.add_argument("--only", default="tcp,sctpt,ssh,ss")
    ap.add_argument("--engines", default="",
                    help="comma-separated SCTP engines for the sctpt pair (native,usrsctp);\n"
                         "default: the binary's default engine only")
    ap.add_argument("--sctpt-variant", action="append", default=[],
                    help="NAME=OPTIONS: another sctpt pair with these client+server options")
    ap.add_argument("--_serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_load", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=APP_PORT, help=argparse.SUPPRESS)
    ap.add_argument("--socks", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--host", default=ADDR_B, help=argparse.SUPPRESS)
    ap.add_argument("--dump", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._serve:
        asyncio.run(serve(a.port))
        return
    if a._load:
        asyncio.run(load(a))
        return
    if os.geteuid() != 0:
        sys.exit("loss_bench: needs root (network namespaces)")
    only = set(a.only.split(","))
    engines = [e for e in a.engines.split(",") if e]
    for e in engines:
        if e not in ("native", "usrsctp"):
            sys.exit(f"loss_bench: unknown engine {e!r} (native, usrsctp)")
    rtts = [float(x) for x in a.rtt.split(",")]
    tmp = tempfile.mkdtemp(prefix="sctpt-lossbench.")
    lab = Lab(a.sctpt, tmp, a.sctpt_lab)
    print(f"loss bench: {a.loss:.1%} loss each way (sctpt-lab impair, IP level), {a.conns} connections,"
          f" 1 KB request / 1 KB response, {a.think_ms:g} ms think time, {a.duration:g} s per run;"
          f" {os.cpu_count()} CPUs; logs in {tmp}", flush=True)
    results = {}
    try:
        lab.up(a.loss, a.seed)
        tunnels = []
        if "tcp" in only:
            tunnels.append(("plain TCP", 0))
        idx = 0
        if "sctpt" in only:
            for e in engines or [None]:
                tunnels.append((f"sctpt {e}" if e else "sctpt",
                                lab.start_sctpt(idx, ["--sctp-engine", e] if e else [])))
                idx += 1
        for v in a.sctpt_variant:
            name, _, opts = v.partition("=")
            tunnels.append((f"sctpt {name}", lab.start_sctpt(idx, opts.split())))
            idx += 1
        if "ssh" in only:
            tunnels.append(("ssh -D", lab.start_ssh()))
        if "ss" in only:
            tunnels.append(("shadowsocks-libev", lab.start_ss()))
        print(f"\n{'RTT':>6} {'tunnel':22} {'requests':>9} {'p50 ms':>8} {'p90':>8} {'p99':>8}"
              f" {'p99.9':>8} {'max':>8} {'>200ms':>7}", flush=True)
        for rtt in rtts:
            lab.set_delay(rtt / 2)
            for name, socks in tunnels:
                s0 = lab.stats()
                r = lab.measure(socks, a, f"{rtt:g}ms-{name}")
                s1 = lab.stats()
                lat = r["lat"]
                results[(rtt, name)] = lat
                drop = [(s1[d]["dropped_loss"] - s0[d]["dropped_loss"]) /
                        max(1, s1[d]["seen"] - s0[d]["seen"]) for d in ("c2s", "s2c")]
                err = f"  errors {r['nerrors']}: {r['errors'][:2]}" if r["nerrors"] else ""
                print(f"{rtt:>4g}ms {name:22} {r['n']:>9} {lat['p50']:>8.2f} {lat['p90']:>8.2f}"
                      f" {lat['p99']:>8.2f} {lat['p999']:>8.2f} {lat['max']:>8.1f}"
                      f" {lat['over200']:>7}   (impair dropped {drop[0]:.2%} / {drop[1]:.2%})"
                      + err, flush=True)
                if a.verbose:
                    print(f"{'':30} requests slower than N ms: {lat['hist']}", flush=True)
        print()
        for rtt in rtts:
            others = [results[(rtt, n)]["p99"] for n in ("ssh -D", "shadowsocks-libev")
                      if (rtt, n) in results]
            if not others:
                continue
            best = min(others)
            for name, _ in tunnels:
                if name.startswith("sctpt"):
                    p99 = results[(rtt, name)]["p99"]
                    ok = "meets" if p99 <= best / 2 else "misses"
                    print(f"RTT {rtt:g} ms: {name} p99 {p99:.1f} ms = {p99 / best:.2f} x the better"
                          f" of ssh -D / shadowsocks ({best:.1f} ms): {ok} the target (<= 0.5 x)")
        if len(engines) == 2:
            x, y = engines
            for rtt in rtts:
                px, py = results[(rtt, f"sctpt {x}")], results[(rtt, f"sctpt {y}")]
                for q in ("p50", "p99"):
                    r = px[q] / py[q] if py[q] else float("inf")
                    print(f"RTT {rtt:g} ms: {x} / {y} {q} {r:.2f}x"
                          f" ({'at least as good' if r <= 1 else 'worse'})")
    finally:
        lab.close()


if __name__ == "__main__":
    main()
