"""Cover (issue 16, docs/PROTOCOL.md "What an observer sees"): no fixed packet sequence after
the handshake, per-bridge size distributions, no fixed idle period, varying TCP segments.

Sizes are taken from a UdpRelay's view (what a link carries: sctpt's GSO batches split into
datagrams) and TCP segments from tshark on lo."""

import collections
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import threading
import time

import lib
from lib import BIN, LOOP, check, info


class Recorder:
    """UdpRelay hooks that note (time, direction, length) of every datagram of each flow."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seq = collections.defaultdict(list)

    def hook(self, d):
        def f(flow, data):
            with self.lock:
                self.seq[flow.idx].append((time.monotonic(), d, len(data)))
            return data
        return f

    def flows(self):
        with self.lock:
            return {k: list(v) for k, v in self.seq.items()}


def sessions(env, n, key, cert, label, batch=10, extra=()):
    """n clients through one relay to a server with key; returns each flow's datagrams.
    label names the processes (a cert may hold a '/')."""
    rec = Recorder()
    srv = env.start_server(proxy=True, allow=("127.0.0.0/8",), key=key,
                           name=f"server-{label}")
    relay = env.add(lib.UdpRelay(srv.port, c2s=rec.hook("c"), s2c=rec.hook("s")))
    cs = []
    for b in range(0, n, batch):
        cs += [env.start_client(relay.port, name=f"c{label}{i:02d}", wait_assoc=False,
                                cert=cert, extra=list(extra))
               for i in range(b, min(n, b + batch))]
        for p in cs[b:]:
            check(p.wait_log("association up", 25), f"{p.name}: no association within 25s")
    time.sleep(0.5)
    for p in cs:
        p.signal(signal.SIGTERM)
    for p in cs:
        if p.wait_exit(10) is None:
            p.kill()
    srv.signal(signal.SIGTERM)
    srv.wait_exit(10)
    flows = rec.flows()
    check(len(flows) == n, f"relay saw {len(flows)} flows, want {n}")
    return flows


def reply_gap(dgrams):
    """Seconds from the first REPLY to the next client datagram (the SCTP INIT), or None."""
    for i, (t, d, _) in enumerate(dgrams):
        if d == "s":
            nxt = next((tt for tt, dd, _ in dgrams[i + 1:] if dd == "c"), None)
            return None if nxt is None else nxt - t
    return None


def after_handshake(dgrams, k=5):
    """The (direction, length) of the first k datagrams after the first HELLO and REPLY
    (a retried HELLO would be in the sequence: none on loopback)."""
    seq = [(d, n) for _, d, n in dgrams]
    try:
        i = seq.index(next(x for x in seq if x[0] == "s"))
    except StopIteration:
        return ()
    rest = seq[1:i] + seq[i + 1:]
    return tuple(rest[:k])


@lib.timeout(300)
def test_first_packets_vary_per_session_and_bridge(env):
    """30 sessions to each of two bridges: the post-handshake (direction, length) sequence of
    the first 5 datagrams takes many values (the commonest at most 3 times), so does their
    order of directions (empty chaff packets), the gap from the REPLY to the SCTP INIT varies
    (0-40 ms of jitter); within a bridge
    the control-packet lengths come from a few bridge-specific values; the two bridges'
    sets differ."""
    keys = [env.new_identity("bridge-a"), env.new_identity("bridge-b")]
    sizes = []
    for label, (key, cert) in zip("ab", keys):
        flows = sessions(env, 30, key, cert, label)
        seqs = collections.Counter(after_handshake(v) for v in flows.values())
        top, cnt = seqs.most_common(1)[0]
        info(f"bridge {cert[:8]}: {len(seqs)} distinct first-5 sequences of 30; "
             f"commonest {cnt}x {top}")
        check(all(len(s) == 5 for s in seqs), f"a session with fewer than 5 datagrams: {seqs}")
        check(cnt <= 3, f"a first-5 sequence repeats {cnt} times: {top}")
        check(len(seqs) >= 20, f"only {len(seqs)} distinct first-5 sequences of 30")
        dirs = collections.Counter(p for p in ("".join(d for d, _ in after_handshake(v, 6))
                                               for v in flows.values()) if len(p) == 6)
        info(f"bridge {cert[:8]}: directions of the first 6 datagrams after the REPLY: "
             f"{dict(dirs.most_common())}")
        check(len(dirs) >= 3, f"only {len(dirs)} direction patterns: {dict(dirs)}")
        gaps = sorted(g for g in (reply_gap(v) for v in flows.values()) if g is not None)
        bins = {int(g / 0.005) for g in gaps}
        info(f"bridge {cert[:8]}: REPLY -> next client datagram {gaps[0] * 1000:.1f}-"
             f"{gaps[-1] * 1000:.1f} ms (median {gaps[len(gaps) // 2] * 1000:.1f}), "
             f"{len(bins)} distinct 5 ms bins")
        check(len(bins) >= 4, f"the gap after the REPLY takes only {len(bins)} 5 ms bins: "
              f"{[round(g * 1000, 1) for g in gaps]}")
        small = collections.Counter(n for v in flows.values() for _, _, n in v[2:]
                                    if n < 1452 - 192)
        info(f"bridge {cert[:8]}: small datagram lengths {sorted(small.items())}")
        sizes.append(small)
    a, b = set(sizes[0]), set(sizes[1])
    info(f"small lengths: {len(a)} on bridge A, {len(b)} on B, {len(a & b)} in common")
    check(a != b, "two bridges use the same set of small datagram lengths")
    check(len(a & b) <= max(len(a), len(b)) // 2,
          f"two bridges share most small lengths: {sorted(a & b)}")


@lib.timeout(120)
def test_idle_traffic_has_no_fixed_period(env):
    """An idle session with --keepalive 1: the gaps between datagrams and their lengths vary
    (they were 96-byte heartbeats every 1.1-1.3 s; the gaps still centre on the keepalive
    plus the RTO, see src/sctp/assoc_heartbeat.c for why)."""
    rec = Recorder()
    srv = env.start_server(proxy=True, allow=("127.0.0.0/8",), extra=["--keepalive", "1"])
    relay = env.add(lib.UdpRelay(srv.port, c2s=rec.hook("c"), s2c=rec.hook("s")))
    c = env.start_client(relay.port, extra=["--keepalive", "1"])
    ex = env.exchange_server()
    lib.exchange(c.socks, ex.addr, 1000, 1000, 1)
    time.sleep(1.0)
    t0 = time.monotonic()
    time.sleep(12)
    flows = rec.flows()
    idle = [x for x in flows[0] if x[0] >= t0]
    for d in ("c", "s"):
        ts = [t for t, dd, _ in idle if dd == d]
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        lens = collections.Counter(n for _, dd, n in idle if dd == d)
        check(len(gaps) >= 6, f"{d}: only {len(gaps) + 1} datagrams in 12 s idle")
        bins = {round(g / 0.05) for g in gaps}
        info(f"idle {d}: {len(ts)} datagrams, gaps {min(gaps):.2f}-{max(gaps):.2f} s "
             f"(stdev {statistics.pstdev(gaps):.2f}), {len(bins)} distinct 50 ms bins; "
             f"lengths {sorted(lens.items())}")
        check(len(bins) >= 5, f"{d}: idle gaps fall in only {len(bins)} 50 ms bins")
        check(len(lens) >= 3, f"{d}: idle datagrams have only {len(lens)} lengths")
        check(max(gaps) <= 1.05 + 1.5, f"{d}: an idle gap of {max(gaps):.2f} s")


class TcpCapture:
    """tshark on lo for one TCP port; proven running by a marker datagram (as lib.Capture)."""

    def __init__(self, env, port, name="tcpcap", secs=20):
        self.marker = lib.free_port(udp=True)
        self.path = os.path.join(env.dir, f"{name}.pcapng")
        tshark = shutil.which("tshark")
        check(tshark is not None, "tshark not installed")
        self.proc = env.spawn(name, [tshark, "-n", "-i", "lo", "-f",
                                     f"tcp port {port} or udp port {self.marker}",
                                     "-w", self.path, "-P", "-l"])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            end = time.monotonic() + secs
            while not re.search(rf"\b{self.marker}\b", self.proc.log_text()):
                check(self.proc.alive() and time.monotonic() < end, "tshark not capturing")
                with contextlib.suppress(OSError):
                    s.sendto(b"capture-marker", (LOOP, self.marker))
                time.sleep(0.2)
        finally:
            s.close()

    def stop(self):
        self.proc.signal(signal.SIGINT)
        check(self.proc.wait_exit(15) is not None, "tshark did not stop")


@lib.timeout(240)
def test_tcp_first_segments_vary(env):
    """12 sessions over the TCP carrier: the payload lengths of the first 5 data segments of
    each connection (both directions, in order) are not one fixed sequence."""
    port = lib.free_port()
    srv = env.spawn("server", [BIN, "server", "--key", env.key_path, "--listen",
                               f"tcp://{LOOP}:{port}", "--proxy", "--allow", "127.0.0.0/8"])
    check(srv.wait_log("listening on", 15), "server did not start")
    cap = TcpCapture(env, port)
    n = 12
    for i in range(n):
        socks = lib.free_port()
        c = env.spawn(f"client{i}", [BIN, "client", "--cert", env.cert, "--socks",
                                     f"{LOOP}:{socks}", "--server", f"tcp://{LOOP}:{port}"])
        check(c.wait_log("association up", 25), f"client{i}: no association")
        time.sleep(0.3)
        c.signal(signal.SIGTERM)
        if c.wait_exit(10) is None:
            c.kill()
    time.sleep(0.5)
    cap.stop()
    rows = lib.tshark_fields(cap.path, ["tcp.stream", "tcp.srcport", "tcp.len"],
                             "tcp.len > 0")
    per = collections.defaultdict(list)
    for st, sport, ln in rows:
        per[st].append(("s" if sport == str(port) else "c", int(ln)))
    seqs = collections.Counter(tuple(v[:5]) for v in per.values())
    firsts = {v[0][1] for v in per.values()}
    top, cnt = seqs.most_common(1)[0]
    info(f"{len(per)} TCP connections: {len(seqs)} distinct first-5 segment sequences, "
         f"commonest {cnt}x {top}; {len(firsts)} distinct first-segment lengths")
    check(len(per) == n, f"captured {len(per)} connections, want {n}")
    check(cnt <= 2, f"a first-5 TCP segment sequence repeats {cnt} times: {top}")
    check(len(firsts) >= n - 2, f"only {len(firsts)} distinct first segments")


@lib.timeout(120)
def test_decoy_serves_probers_and_clients_still_work(env):
    """--decoy: curl to the bridge's TCP port gets the decoy web server's page (its request
    arrives whole, first bytes included); a real client over the same port still gets its
    session; a probe to another host name still reaches only the decoy."""
    import http.server
    page = b"<html><body>an ordinary site 7c1f</body></html>\n"
    seen = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Host")))
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *a):
            pass

    web = http.server.ThreadingHTTPServer((LOOP, 0), H)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        port = lib.free_port()
        srv = env.spawn("server", [BIN, "server", "--key", env.key_path, "--listen",
                                   f"tcp://{LOOP}:{port}", "--proxy", "--allow", "127.0.0.0/8",
                                   "--decoy", f"{LOOP}:{web.server_address[1]}"])
        check(srv.wait_log("listening on", 15), "server did not start")
        curl = shutil.which("curl")
        check(curl is not None, "curl not installed")
        for i, host in enumerate(["", "example.org"]):
            argv = [curl, "-s", "-m", "20", "-o", "-", "-w", "\n%{http_code} %{time_total}",
                    f"http://{LOOP}:{port}/probe{i}"]
            if host:
                argv += ["-H", f"Host: {host}"]
            rc, out, err = lib.run_cmd(argv, 30)
            body, _, tail = out.rpartition("\n")
            info(f"curl {'(Host: ' + host + ') ' if host else ''}-> rc {rc}, {tail}")
            check(rc == 0 and tail.startswith("200") and body.encode() == page,
                  f"curl did not get the decoy page: rc {rc} {out[-200:]!r} {err[-200:]!r}")
            check(float(tail.split()[1]) < 5, f"the decoy page took {tail.split()[1]} s")
        check([p for p, _ in seen] == ["/probe0", "/probe1"],
              f"the decoy saw requests {seen}, want /probe0 and /probe1 whole")
        check(seen[1][1] == "example.org", "the Host header did not arrive unchanged")
        # A real client over the same port.
        socks = lib.free_port()
        c = env.spawn("client", [BIN, "client", "--cert", env.cert, "--socks",
                                 f"{LOOP}:{socks}", "--server", f"tcp://{LOOP}:{port}"])
        check(c.wait_log("association up", 25), "client: no association with --decoy set")
        lib.wait_until(lambda: lib.tcp_port_open(socks), 10, "client SOCKS port")
        ex = env.exchange_server()
        lib.exchange(socks, ex.addr, 200000, 300000, 3)
        check(len(seen) == 2, f"the client's session touched the decoy: {seen}")
        check(srv.alive(), "server died")
    finally:
        web.shutdown()
        web.server_close()


@lib.timeout(90)
def test_decoy_down_or_flooded(env):
    """--decoy pointing at a closed port: probes are closed, the server keeps serving; a probe
    that sends 1 MiB of junk at once is spliced with bounded queues and the server's memory
    stays small."""
    port = lib.free_port()
    dead = lib.free_port()
    srv = env.spawn("server", [BIN, "server", "--key", env.key_path, "--listen",
                               f"tcp://{LOOP}:{port}", "--proxy", "--allow", "127.0.0.0/8",
                               "--decoy", f"{LOOP}:{dead}"])
    check(srv.wait_log("listening on", 15), "server did not start")
    for i in range(5):
        s = socket.create_connection((LOOP, port), timeout=10)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        t0 = time.monotonic()
        with contextlib.suppress(OSError):
            data = s.recv(100)
            check(data == b"", f"a probe got bytes with the decoy down: {data!r}")
        dt = time.monotonic() - t0
        s.close()
        check(dt < 8, f"a probe stayed open {dt:.1f} s with the decoy down")
    info(f"decoy down: probes closed after {dt:.2f} s")
    # A flood into a decoy that accepts but never reads.
    sink = socket.socket()
    sink.bind((LOOP, 0))
    sink.listen(8)
    srv.kill()
    port2 = lib.free_port()
    srv = env.spawn("server2", [BIN, "server", "--key", env.key_path, "--listen",
                                f"tcp://{LOOP}:{port2}", "--proxy", "--allow", "127.0.0.0/8",
                                "--decoy", f"{LOOP}:{sink.getsockname()[1]}"])
    check(srv.wait_log("listening on", 15), "server2 did not start")
    s = socket.create_connection((LOOP, port2), timeout=10)
    s.setblocking(False)
    sent, junk, end = 0, os.urandom(65536), time.monotonic() + 6
    while time.monotonic() < end and sent < (1 << 20):
        try:
            sent += s.send(junk)
        except BlockingIOError:
            time.sleep(0.05)
        except OSError:
            break
    rss = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{srv.pid}/status").read()).group(1))
    info(f"flood into a decoy that does not read: {sent} bytes accepted, server RSS {rss} KiB")
    check(rss < 40000, f"server RSS {rss} KiB under a decoy flood")
    s.close()
    sink.close()
    check(srv.alive(), "server died")
