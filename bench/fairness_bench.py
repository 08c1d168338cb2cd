#!/usr/bin/env python3
"""Fairness: one sctpt association and one plain TCP flow through the same bottleneck.

  python3 bench/fairness_bench.py --sctpt build-rel/sctpt --cc newreno,cubic,bbr
  python3 bench/fairness_bench.py --rate 20M --queue 128k --rtt 50 --duration 20
  python3 bench/fairness_bench.py --interactive --cc bbr,newreno

The two namespaces of bench/loss_bench.py (A clients, B servers) joined by `sctpt-lab impair`
(IP level) with a rate limit and a drop-tail queue on both directions.  In B a bulk server
streams bytes to whoever connects.  In A two downloads run at once for --duration seconds: one
through sctpt (SOCKS, the server end in B fetches from 127.0.0.1), one plain TCP straight to B
(the kernel's default controller, usually cubic).  Reports each one's goodput over the last
--duration seconds and the ratio sctpt / TCP (issue 11's target for the default controller:
0.5..2).  --alone: the sctpt download without the TCP flow (what the tunnel gets on its own).

--interactive: no TCP flow; on ONE sctpt association a bulk download saturates the bottleneck
while another SOCKS connection sends a 100-byte request every 50 ms to an echo server in B.
The echo round trip is measured first on the idle association (--warmup seconds; its median
is the base), then next to the bulk download; "added" is each round trip minus the base.
Issue 11's target: p99 added latency <= 1 RTT + 5 ms.

--keep-logs DIR copies every process's log (sctpt's counters at exit with -v) there.
Needs root.  Everything is cleaned up at exit.
"""
import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loss_bench as lb  # noqa: E402

BULK_PORT = 7100
ECHO_PORT = 7101


async def bulk_serve(port):
    chunk = b"\x5a" * 65536

    async def handle(r, w):
        try:
            while True:
                w.write(chunk)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    async def echo(r, w):
        try:
            while True:
                b = await r.read(4096)
                if not b:
                    break
                w.write(b)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    srv = await asyncio.start_server(handle, "0.0.0.0", port)
    esrv = await asyncio.start_server(echo, "0.0.0.0", ECHO_PORT)
    print("serving", flush=True)
    async with srv, esrv:
        await asyncio.gather(srv.serve_forever(), esrv.serve_forever())


async def ping(args):
    """100-byte requests every 50 ms through SOCKS to the echo server; prints the round
    trips (ms) of the first --warmup seconds (idle) and of the next --duration seconds."""
    r, w = await lb.socks_connect(args.socks, "127.0.0.1", ECHO_PORT, 30)
    msg = b"\x42" * 100
    t0 = time.monotonic()
    base, busy = [], []
    end = t0 + args.warmup + args.duration
    while time.monotonic() < end:
        t = time.monotonic()
        w.write(msg)
        await w.drain()
        got = 0
        while got < len(msg):
            b = await asyncio.wait_for(r.read(len(msg) - got), 30)
            if not b:
                raise ConnectionError("echo closed")
            got += len(b)
        rtt = (time.monotonic() - t) * 1000
        (base if t < t0 + args.warmup else busy).append(rtt)
        if t < t0 + args.warmup and time.monotonic() >= t0 + args.warmup - 0.05:
            print("base-done", flush=True)
        await asyncio.sleep(max(0, 0.05 - (time.monotonic() - t)))
    w.close()
    print(json.dumps({"base": base, "busy": busy}), flush=True)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


async def download(args):
    if args.socks:
        r, w = await lb.socks_connect(args.socks, "127.0.0.1", BULK_PORT, 30)
    else:
        r, w = await asyncio.wait_for(asyncio.open_connection(args.host, BULK_PORT), 30)
    t0 = time.monotonic()
    warm_end, end = t0 + args.warmup, t0 + args.warmup + args.duration
    n = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        try:
            b = await asyncio.wait_for(r.read(1 << 16), end - now)
        except asyncio.TimeoutError:
            break
        if not b:
            break
        if time.monotonic() >= warm_end:
            n += len(b)
    w.close()
    print(json.dumps({"bytes": n, "secs": args.duration}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sctpt", default=str(lb.ROOT / "build" / "sctpt"))
    ap.add_argument("--cc", default="newreno,cubic,bbr", help="controllers to try, one run each")
    ap.add_argument("--rate", default="20M", help="bottleneck bits/s, each direction (20M)")
    ap.add_argument("--queue", default="128k", help="drop-tail queue bytes (128k)")
    ap.add_argument("--rtt", type=float, default=50.0, help="added RTT, ms (50)")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--alone", action="store_true", help="the sctpt download only, no TCP flow")
    ap.add_argument("--interactive", action="store_true",
                    help="interactive echo next to a bulk download on one association")
    ap.add_argument("--repeat", type=int, default=1, help="runs per controller (1)")
    ap.add_argument("--keep-logs", default="", help="copy the process logs to this directory")
    ap.add_argument("--extra", default="", help="more sctpt options, space-separated")
    ap.add_argument("--_serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_ping", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_get", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--socks", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--host", default=lb.ADDR_B, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._serve:
        asyncio.run(bulk_serve(BULK_PORT))
        return
    if a._get:
        asyncio.run(download(a))
        return
    if a._ping:
        asyncio.run(ping(a))
        return

    def units(s, k):
        m = {"k": k, "K": k, "M": k * k, "G": k * k * k}
        return int(float(s[:-1]) * m[s[-1]]) if s[-1] in m else int(s)

    rate, queue = units(a.rate, 1000), units(a.queue, 1024)
    if a.interactive:
        print(f"interactive: 100 B echo every 50 ms next to a bulk download on one association, "
              f"{a.rate}bit/s, {a.queue}B drop-tail queue, {a.rtt:g} ms RTT, {a.warmup:g} s idle "
              f"base, {a.duration:g} s with bulk")
        print(f"{'cc':>8} {'base p50':>9} {'added p50':>10} {'p90':>7} {'p99':>7} {'max':>7} "
              f"{'target':>7} {'bulk Mbit/s':>12}")
    else:
        print(f"fairness: one sctpt download{'' if a.alone else ' and one TCP download at once'} "
              f"through {a.rate}bit/s, {a.queue}B drop-tail queue, {a.rtt:g} ms RTT, "
              f"{a.duration:g} s measured")
        print(f"{'cc':>8} {'sctpt Mbit/s':>13} {'TCP Mbit/s':>11} {'ratio':>6}  queue drops")
    for cc in a.cc.split(","):
        for rep in range(a.repeat):
            one_run(a, cc, rep, rate, queue)


def one_run(a, cc, rep, rate, queue):
    with tempfile.TemporaryDirectory(prefix="sctpt-fair.") as tmp:
        lab = lb.Lab(a.sctpt, tmp)
        try:
            lab.up(0.0, 1)
            lab.api_put({"both": {"delay_ms": a.rtt / 2, "rate_bps": rate,
                                  "queue_bytes": queue}})
            srv = lab.spawn("bulk-server", [sys.executable, __file__, "--_serve"], ns=lab.b)
            lab.wait_log(srv, "serving")
            socks = lab.start_sctpt(0, ["--congestion-control", cc, "-v"] + a.extra.split())
            if a.interactive:
                interactive_run(a, cc, lab, socks)
                return
            common = ["ip", "netns", "exec", lab.a, sys.executable, __file__, "--_get",
                      "--duration", str(a.duration), "--warmup", str(a.warmup)]
            p1 = subprocess.Popen(common + ["--socks", str(socks)], stdout=subprocess.PIPE,
                                  text=True)
            p2 = None if a.alone else subprocess.Popen(common, stdout=subprocess.PIPE, text=True)
            o1, _ = p1.communicate(timeout=a.duration + a.warmup + 60)
            s1 = json.loads(o1.strip().splitlines()[-1])
            m1 = s1["bytes"] * 8 / s1["secs"] / 1e6
            m2 = float("nan")
            if p2:
                o2, _ = p2.communicate(timeout=a.duration + a.warmup + 60)
                s2 = json.loads(o2.strip().splitlines()[-1])
                m2 = s2["bytes"] * 8 / s2["secs"] / 1e6
            st = lab.stats()
            drops = json.dumps({k: v.get("queue_drops") for k, v in st.items()
                                if isinstance(v, dict)})
            print(f"{cc:>8} {m1:13.2f} {m2:11.2f} {m1 / m2 if m2 else float('inf'):6.2f}  "
                  f"{drops}", flush=True)
        finally:
            lab.close()
            if a.keep_logs:
                d = os.path.join(a.keep_logs, f"{cc}-{rep}")
                os.makedirs(d, exist_ok=True)
                for f in os.listdir(tmp):
                    if f.endswith(".log"):
                        shutil.copy(os.path.join(tmp, f), d)


def interactive_run(a, cc, lab, socks):
    pp = subprocess.Popen(["ip", "netns", "exec", lab.a, sys.executable, __file__, "--_ping",
                           "--socks", str(socks), "--duration", str(a.duration),
                           "--warmup", str(a.warmup)], stdout=subprocess.PIPE, text=True)
    # the bulk download starts once the idle base is taken
    line = pp.stdout.readline()
    if "base-done" not in line:
        raise RuntimeError(f"ping: {line!r}")
    pb = subprocess.Popen(["ip", "netns", "exec", lab.a, sys.executable, __file__, "--_get",
                           "--socks", str(socks), "--duration", str(a.duration + 5),
                           "--warmup", "0"], stdout=subprocess.PIPE, text=True)
    o, _ = pp.communicate(timeout=a.duration + a.warmup + 60)
    ob, _ = pb.communicate(timeout=a.duration + 70)
    res = json.loads(o.strip().splitlines()[-1])
    sb = json.loads(ob.strip().splitlines()[-1])
    base = pct(res["base"], 0.5)
    added = [x - base for x in res["busy"]]
    target = a.rtt + 5
    print(f"{cc:>8} {base:9.1f} {pct(added, 0.5):10.1f} {pct(added, 0.9):7.1f} "
          f"{pct(added, 0.99):7.1f} {max(added):7.1f} {target:7.1f} "
          f"{sb['bytes'] * 8 / sb['secs'] / 1e6:12.2f}", flush=True)

if __name__ == "__main__":
    main()
