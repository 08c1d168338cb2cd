#!/usr/bin/env python3
"""The lab's headline comparison from the command line: a thin client of a running
`sctpt-lab controller` (as root), which builds the testbed itself (POST /api/testbeds).

  sudo build/sctpt-lab controller --listen 127.0.0.1:8090 --state-dir /tmp/lab &
  python3 tools/lab_side_by_side.py                          # 2% loss, 25 ms each way
  python3 tools/lab_side_by_side.py --loss 0.05 --delay 50 --duration 30 --repeat 3
  python3 tools/lab_side_by_side.py --keep    # leave the testbed up for the dashboard

It asks the controller for a testbed (two namespaces joined by impair's TUN mode; recv and
the tunnels' servers in one, send and their SOCKS ends in the other), waits until it is
ready, runs the comparison scenario the testbed proposes with this command's workload,
prints a table (variant, calls, p50/p90/p99/max ms, failed streams) and deletes the testbed
(unless --keep).  The run stays in the controller (Runs -> Compare in the dashboard).
Python 3 standard library only.
"""
import argparse
import http.client
import json
import sys
import time


def api(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = json.dumps(body) if body is not None else None
        conn.request(method, path, body=data,
                     headers={"Content-Type": "application/json"} if data else {})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8090, help="the controller's port")
    ap.add_argument("--loss", type=float, default=0.02, help="loss each way (default 0.02)")
    ap.add_argument("--delay", type=int, default=25, help="one-way delay ms (default 25)")
    ap.add_argument("--duration", type=int, default=20, help="seconds per iteration")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--streams", type=int, default=8, help="concurrent request streams")
    ap.add_argument("--req", type=int, default=1000, help="request bytes")
    ap.add_argument("--resp", type=int, default=1000, help="response bytes")
    ap.add_argument("--gap-ms", type=int, default=10, help="think time between requests")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--peers", default="sctpt,ssh,shadowsocks",
                    help="comma-separated: sctpt, ssh, shadowsocks, direct (default the first 3)")
    ap.add_argument("--keep", action="store_true", help="leave the testbed up")
    args = ap.parse_args()
    port = args.port
    try:
        st, tb = api(port, "POST", "/api/testbeds",
                     {"peers": [p.strip() for p in args.peers.split(",") if p.strip()],
                      "loss": args.loss, "delay_ms": args.delay, "seed": args.seed})
    except OSError as e:
        sys.exit(f"side-by-side: no controller on 127.0.0.1:{port} ({e}); start one as root")
    if st != 201:
        sys.exit(f"side-by-side: testbed: {st} {tb.get('error') if tb else ''}")
    tid, rid = tb["id"], None
    try:
        end = time.monotonic() + 120
        while tb["state"] == "starting" and time.monotonic() < end:
            time.sleep(0.5)
            st, tb = api(port, "GET", f"/api/testbeds/{tid}")
        if tb["state"] != "ready":
            sys.exit(f"side-by-side: testbed {tid} {tb['state']}: {tb['error']}")
        sc = tb["scenario"]
        sc.update(duration_s=args.duration, repeat=args.repeat)
        sc["workload"].update(streams=args.streams, rpc_req=args.req, rpc_resp=args.resp,
                              rpc_gap_ms=args.gap_ms)
        st, body = api(port, "POST", "/api/runs", sc)
        if st != 201:
            sys.exit(f"side-by-side: run: {st} {body}")
        rid = body["id"]
        print(f"side-by-side: testbed {tid}, run {rid}: dashboard on http://127.0.0.1:{port}/",
              flush=True)
        end = time.monotonic() + len(sc["variants"]) * args.repeat * (args.duration + 15) + 30
        while time.monotonic() < end:
            st, rec = api(port, "GET", f"/api/runs/{rid}")
            if rec["state"] in ("done", "failed", "aborted"):
                break
            time.sleep(1)
        else:
            api(port, "POST", f"/api/runs/{rid}/stop")
            sys.exit("side-by-side: the run did not finish in time (stopped)")
        print(f"\nrun {rid} {rec['state']}{': ' + rec['error'] if rec.get('error') else ''}; "
              f"loss {args.loss:g} each way, {args.delay} ms one way, {args.streams} streams of "
              f"{args.req}/{args.resp}-byte requests, {args.gap_ms} ms apart")
        print(f"{'variant':<12} {'iter':>4} {'calls':>8} {'p50 ms':>8} {'p90 ms':>8} "
              f"{'p99 ms':>8} {'max ms':>9} {'failed':>6}")
        for it in rec["iterations"]:
            s = it.get("send") or {}
            r = s.get("rpc") or {}
            print(f"{it['variant']:<12} {it['index']:>4} {r.get('count', 0):>8} "
                  f"{r.get('p50_ms', 0):>8.1f} {r.get('p90_ms', 0):>8.1f} {r.get('p99_ms', 0):>8.1f} "
                  f"{r.get('max_ms', 0):>9.1f} {s.get('streams_failed', 0):>6}")
        print(f"\nreports: http://127.0.0.1:{port}/api/runs/{rid}/report.json and report.csv")
        return 0 if rec["state"] == "done" else 1
    finally:
        if not args.keep:
            st, _ = api(port, "DELETE", f"/api/testbeds/{tid}")
            if st == 409 and rid:            # interrupted during the run: stop it first
                api(port, "POST", f"/api/runs/{rid}/stop")
                for _ in range(60):
                    time.sleep(0.5)
                    if api(port, "DELETE", f"/api/testbeds/{tid}")[0] != 409:
                        break
        else:
            print(f"side-by-side: testbed {tid} left up (DELETE /api/testbeds/{tid})")


if __name__ == "__main__":
    sys.exit(main())
