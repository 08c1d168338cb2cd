#!/usr/bin/env python3
"""Fairness: one sctpt association and one plain TCP flow through the same bottleneck.

  python3 bench/fairness_bench.py --sctpt build-rel/sctpt --cc newreno,cubic,bbr
  python3 bench/fairness_bench.py --rate 20M --queue 128k --rtt 50 --duration 20

The two namespaces of bench/loss_bench.py (A clients, B servers) joined by `sctpt-lab impair`
(IP level) with a rate limit and a drop-tail queue on both directions.  In B a bulk server
streams bytes to whoever connects.  In A two downloads run at once for --duration seconds: one
through sctpt (SOCKS, the server end in B fetches from 127.0.0.1), one plain TCP straight to B
(the kernel's default controller, usually cubic).  Reports each one's goodput over the last
--duration seconds and the ratio sctpt / TCP (issue 11's target for the default controller:
0.5..2).  Needs root.  Everything is cleaned up at exit.
"""
import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loss_bench as lb  # noqa: E402

BULK_PORT = 7100


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

    srv = await asyncio.start_server(handle, "0.0.0.0", port)
    print("serving", flush=True)
    async with srv:
        await srv.serve_forever()


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
    ap.add_argument("--_serve", action="store_true", help=argparse.SUPPRESS)
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

    def units(s, k):
        m = {"k": k, "K": k, "M": k * k, "G": k * k * k}
        return int(float(s[:-1]) * m[s[-1]]) if s[-1] in m else int(s)

    rate, queue = units(a.rate, 1000), units(a.queue, 1024)
    print(f"fairness: one sctpt download and one TCP download at once through {a.rate}bit/s, "
          f"{a.queue}B drop-tail queue, {a.rtt:g} ms RTT, {a.duration:g} s measured")
    print(f"{'cc':>8} {'sctpt Mbit/s':>13} {'TCP Mbit/s':>11} {'ratio':>6}  queue drops")
    for cc in a.cc.split(","):
        with tempfile.TemporaryDirectory(prefix="sctpt-fair.") as tmp:
            lab = lb.Lab(a.sctpt, tmp)
            try:
                lab.up(0.0, 1)
                lab.api_put({"both": {"delay_ms": a.rtt / 2, "rate_bps": rate,
                                      "queue_bytes": queue}})
                srv = lab.spawn("bulk-server", [sys.executable, __file__, "--_serve"], ns=lab.b)
                lab.wait_log(srv, "serving")
                socks = lab.start_sctpt(0, ["--congestion-control", cc])
                common = ["ip", "netns", "exec", lab.a, sys.executable, __file__, "--_get",
                          "--duration", str(a.duration), "--warmup", str(a.warmup)]
                p1 = subprocess.Popen(common + ["--socks", str(socks)], stdout=subprocess.PIPE,
                                      text=True)
                p2 = subprocess.Popen(common, stdout=subprocess.PIPE, text=True)
                o1, _ = p1.communicate(timeout=a.duration + a.warmup + 60)
                o2, _ = p2.communicate(timeout=a.duration + a.warmup + 60)
                s1 = json.loads(o1.strip().splitlines()[-1])
                s2 = json.loads(o2.strip().splitlines()[-1])
                m1 = s1["bytes"] * 8 / s1["secs"] / 1e6
                m2 = s2["bytes"] * 8 / s2["secs"] / 1e6
                st = lab.stats()
                drops = json.dumps({k: v.get("queue_drops") for k, v in st.items()
                                    if isinstance(v, dict)})
                print(f"{cc:>8} {m1:13.2f} {m2:11.2f} {m1 / m2 if m2 else float('inf'):6.2f}  "
                      f"{drops}", flush=True)
            finally:
                lab.close()


if __name__ == "__main__":
    main()
