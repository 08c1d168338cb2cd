#!/usr/bin/env python3
"""What the --metrics endpoint costs (docs/metrics.md): answer time and size of /metrics and
/stats with one session, then with --streams open streams (?streams=1 on both ends), and the
throughput of a --size MiB upload with and without scraping both ends 10 times a second.

  SCTPT_BIN=build/sctpt python3 bench/metrics_cost.py [--streams 1000] [--size 64] [--runs 3]

Loopback only; uses the integration tests' helpers (tests/integration/lib.py) and cleans up
every process it starts.
"""
import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
import lib  # noqa: E402
import test_metrics as tm  # noqa: E402


def answer_times(port, path, n):
    ts, size = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        st, _, body = tm.http_get(port, path)
        ts.append((time.perf_counter() - t0) * 1000)
        size = len(body)
        lib.check(st == 200, f"{path}: {st}")
    return statistics.median(ts), max(ts), size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64, help="MiB per upload")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    env = lib.Env("metrics-cost")
    try:
        s, c, sport, cport = tm.start_pair(env, client_more=("--max-conns", str(a.streams + 64)))
        ex = env.exchange_server()
        bulk = env.bulk_server()
        for path in ("/metrics", "/stats"):
            print("1 session, no streams  %-20s client: median %.2f ms, max %.2f ms, %d bytes"
                  % ((path,) + answer_times(cport, path, 50)))
        socks = [lib.socks_open(c.socks, lib.LOOP, bulk.port, timeout=30)
                 for _ in range(a.streams)]
        for path in ("/stats", "/stats?streams=1", "/metrics?streams=1"):
            for port, who in ((cport, "client"), (sport, "server")):
                print("%d streams  %-20s %s: median %.2f ms, max %.2f ms, %d bytes"
                      % ((a.streams, path, who) + answer_times(port, path, 20)))
        for so in socks:
            so.close()
        size = a.size << 20

        def upload(scrape):
            stop = threading.Event()

            def scraper():
                while not stop.is_set():
                    tm.http_get(cport, "/stats?streams=1")
                    tm.http_get(sport, "/metrics?streams=1")
                    time.sleep(0.1)
            t = threading.Thread(target=scraper, daemon=True)
            if scrape:
                t.start()
            t0 = time.monotonic()
            lib.exchange(c.socks, ex.addr, size, 0, 5, timeout=300)
            dt = time.monotonic() - t0
            stop.set()
            return size / dt / (1 << 20)
        for _ in range(a.runs):
            print("%d MiB upload: no scraping %.0f MiB/s, scraping both ends 10/s %.0f MiB/s"
                  % (a.size, upload(False), upload(True)))
    finally:
        env.close()


if __name__ == "__main__":
    main()
