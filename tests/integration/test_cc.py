"""Congestion control through a real bottleneck (issue 11): two network namespaces joined by
`sctpt-lab impair` at the IP level (TUN devices) with a rate limit, a drop-tail queue and
25 ms each way.  A: the sctpt client and the measuring script; B: the sctpt server and a bulk
and an echo server.  The default controller is used (no --congestion-control).

These are the loose versions of bench/fairness_bench.py's figures (the strict ones, 0.5-2x
and 1 RTT + 5 ms, are measured there, repeated, on a quiet machine): they fail when a
controller starves next to TCP or takes the whole link, or when a bulk stream's queue sits in
front of an interactive stream's messages on the same association."""
import json
import os
import subprocess

import lib
from lib import BIN, check
from test_impair import Impair, Netns

ADDR_A, ADDR_B = "10.78.0.1", "10.78.0.2"
BULK_PORT, ECHO_PORT = 7100, 7101
RATE = 20_000_000                  # bits/s each way
QUEUE = 128 * 1024                 # drop-tail queue bytes
ONE_WAY = 25                       # ms
RTT = 2 * ONE_WAY

# B: a bulk server (bytes for as long as the reader reads) and an echo server.
SERVERS = r"""
import socket, sys, threading
def serve(port, fn):
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port)); ls.listen(8)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=fn, args=(c,), daemon=True).start()
def bulk(c):
    b = b"\x5a" * 65536
    try:
        while True: c.sendall(b)
    except OSError: pass
    finally: c.close()
def echo(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            d = c.recv(4096)
            if not d: break
            c.sendall(d)
    except OSError: pass
    finally: c.close()
threading.Thread(target=serve, args=(%d, bulk), daemon=True).start()
threading.Thread(target=serve, args=(%d, echo), daemon=True).start()
print("serving", flush=True)
threading.Event().wait()
""" % (BULK_PORT, ECHO_PORT)

# A: the measurements.  argv: mode socks_port warm secs.  Prints one JSON line.
MEASURE = r"""
import json, socket, sys, threading, time
mode, socks, warm, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
B = sys.argv[5]
def via_socks(port):
    s = socket.create_connection(("127.0.0.1", socks), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"\x05\x01\x00"); assert s.recv(2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + port.to_bytes(2, "big"))
    r = b""
    while len(r) < 10:
        x = s.recv(10 - len(r))
        assert x, "SOCKS closed"
        r += x
    assert r[1] == 0, "SOCKS refused"
    return s
def download(s, t_from, t_to, out, key):
    n = 0
    s.settimeout(5)
    while True:
        now = time.monotonic()
        if now >= t_to: break
        try: d = s.recv(65536)
        except socket.timeout: continue
        if not d: break
        if time.monotonic() >= t_from: n += len(d)
    out[key] = n * 8 / (t_to - t_from) / 1e6
    s.close()
def ping(s, n_s):
    s.settimeout(10)
    t = time.monotonic()
    s.sendall(b"\x42" * 100)
    got = 0
    while got < 100:
        d = s.recv(100 - got)
        assert d, "echo closed"
        got += len(d)
    return (time.monotonic() - t) * 1000
out = {}
t0 = time.monotonic()
if mode == "fair":
    a = via_socks(%d)
    b = socket.create_connection((B, %d), timeout=30)
    th = [threading.Thread(target=download, args=(x, t0 + warm, t0 + warm + secs, out, k))
          for x, k in ((a, "sctpt"), (b, "tcp"))]
    for x in th: x.start()
    for x in th: x.join(warm + secs + 30)
else:
    e = via_socks(%d)
    base, busy = [], []
    while time.monotonic() < t0 + warm:
        base.append(ping(e, 0)); time.sleep(0.02)
    a = via_socks(%d)
    t1 = time.monotonic()
    th = threading.Thread(target=download, args=(a, t1 + 1, t1 + 1 + secs, out, "bulk"))
    th.start()
    time.sleep(1)             # the bulk stream fills the path first
    while time.monotonic() < t1 + 1 + secs:
        busy.append(ping(e, 0)); time.sleep(0.02)
    th.join(30)
    out["base"], out["busy"] = base, busy
print(json.dumps(out), flush=True)
""" % (BULK_PORT, BULK_PORT, ECHO_PORT, BULK_PORT)


def bottleneck(env, tag):
    """Namespaces, the impaired link, the servers in B and sctpt across.  Returns
    (namespace A, SOCKS port in A, the impair)."""
    ns = env.add(Netns(tag))
    a, b = ns.names
    imp = Impair(env, ["--tun", f"{a}:{ADDR_A}/24", "--tun", f"{b}:{ADDR_B}/24", "--seed", "7"])
    imp.put({"both": {"delay_ms": ONE_WAY, "rate_bps": RATE, "queue_bytes": QUEUE}})
    srv = env.spawn("servers-b", ["ip", "netns", "exec", b, "python3", "-c", SERVERS])
    check(srv.wait_log("serving", 10), f"servers in B: {srv.tail()}")
    port = 4470
    sc = env.spawn("server", ["ip", "netns", "exec", b, BIN, "server", "--key", env.key_path,
                              "--listen", f"udp://{ADDR_B}:{port}", "--proxy",
                              "--allow", "127.0.0.0/8", "-v"])
    check(sc.wait_log("listening on", 15), f"server did not start: {sc.tail()}")
    socks = 11090
    cl = env.spawn("client", ["ip", "netns", "exec", a, BIN, "client", "--cert", env.cert,
                              "--server", f"udp://{ADDR_B}:{port}", "--socks",
                              f"127.0.0.1:{socks}", "-v"])
    check(cl.wait_log("association up", 25), f"client: no association\n{cl.tail()}")
    return a, socks, imp


def measure(a, mode, socks, warm, secs):
    p = subprocess.run(["ip", "netns", "exec", a, "python3", "-c", MEASURE, mode, str(socks),
                        str(warm), str(secs), ADDR_B],
                       capture_output=True, text=True, timeout=warm + secs + 60)
    check(p.returncode == 0, f"measurement in A failed: {p.stderr[-500:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


@lib.timeout(60)
def test_cc_fairness_with_tcp(env):
    """One sctpt download and one plain TCP download (the kernel's CUBIC) at once through a
    20 Mbit/s bottleneck with a 128 KiB queue and 50 ms RTT: neither starves the other.
    Loose bounds (0.1-10x; bench/fairness_bench.py measures against 0.5-2x), and together
    they fill most of the link."""
    a, socks, imp = bottleneck(env, "ccfair")
    r = measure(a, "fair", socks, 3, 10)
    ratio = r["sctpt"] / r["tcp"] if r["tcp"] else float("inf")
    st = imp.stats()
    lib.info(f"sctpt {r['sctpt']:.2f} Mbit/s, TCP {r['tcp']:.2f} Mbit/s, ratio {ratio:.2f}; "
             f"queue drops {st.get('s2c', {}).get('queue_drops')}")
    check(0.1 <= ratio <= 10, f"sctpt / TCP = {ratio:.2f} (sctpt {r['sctpt']:.2f}, TCP "
                              f"{r['tcp']:.2f} Mbit/s): one starves the other")
    check(r["sctpt"] + r["tcp"] >= 0.5 * RATE / 1e6,
          f"together {r['sctpt'] + r['tcp']:.2f} Mbit/s of a {RATE / 1e6:g} Mbit/s link")


@lib.timeout(60)
def test_cc_interactive_next_to_bulk(env):
    """On one association, a 100-byte echo 20 ms after the previous answer, next to a bulk
    download that fills the 20 Mbit/s bottleneck: the echo's added round trip (over its idle
    median) stays small.  Loose bounds (bench/fairness_bench.py --interactive measures p99
    against 1 RTT + 5 ms): p95 <= 2 RTT + 20 ms over ~100 echoes and none over 10 RTT.  Not
    p99: 2 of 5 runs on a loaded machine had one echo of the ~100 at +180-220 ms (the rest
    under 53 ms), which would be the p99 of 100 (docs/sctp-engine.md, "Planned next").  A bulk
    queue in front of the echo would put p95 at the queue's delay (seconds with the 2 MiB send
    buffer); the bulk stream gets most of the link meanwhile."""
    a, socks, _ = bottleneck(env, "ccint")
    r = measure(a, "interactive", socks, 2, 8)
    base = pct(r["base"], 0.5)
    added = [x - base for x in r["busy"]]
    p50, p95, p99 = pct(added, 0.5), pct(added, 0.95), pct(added, 0.99)
    lib.info(f"echo idle median {base:.1f} ms; next to bulk ({r['bulk']:.2f} Mbit/s): added "
             f"p50 {p50:.1f} p95 {p95:.1f} p99 {p99:.1f} max {max(added):.1f} ms over "
             f"{len(added)} echoes")
    check(base >= RTT - 1, f"idle echo {base:.1f} ms is below the path's {RTT} ms RTT")
    check(len(added) >= 80, f"only {len(added)} echoes next to bulk")
    check(r["bulk"] >= 0.4 * RATE / 1e6, f"bulk got {r['bulk']:.2f} Mbit/s of "
                                        f"{RATE / 1e6:g}: not saturating")
    check(p95 <= 2 * RTT + 20, f"p95 added latency {p95:.1f} ms next to bulk (bound "
                               f"{2 * RTT + 20} ms)")
    check(max(added) <= 10 * RTT, f"an echo waited {max(added):.1f} ms more next to bulk "
                                  f"(bound {10 * RTT} ms)")
