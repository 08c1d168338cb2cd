"""Paths: the session survives the client's address changing (NAT rebinding) and idle
periods (keepalives)."""

import threading
import time

import lib
from lib import check, info

MiB = 1 << 20


@lib.timeout(120)
def test_nat_rebinding_mid_transfer(env):
    """The client's source port changes (twice) in the middle of 8 transfers; the server
    follows the authenticated packets to the new address (once the old one has been quiet
    for 1.5 s, so that raced copies cannot redirect a live session) and every hash is
    intact."""
    srv = env.start_server(proxy=True, allow=("127.0.0.0/8",), extra=["-v"])
    relay = env.add(lib.UdpRelay(srv.port))
    c = env.start_client(relay.port)
    check("association up" in c.log_text(), "no association through the relay")
    ex = env.exchange_server()
    flow = relay.flow(0)
    jobs = [(c.socks, ex.addr, 8 * MiB, 8 * MiB, i, 90) for i in range(8)]
    res = {}

    def run():
        res["r"] = lib.run_parallel(lib.exchange, jobs, 100)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    moves = []
    for _ in range(2):
        time.sleep(0.7)
        t0 = time.monotonic()
        old, new = relay.rebind(flow)
        before = flow.s2c   # from here on only the new socket counts
        # The server answers the new port once the old one has been quiet for a moment
        # and an authentic packet arrived from the new one.
        lib.wait_until(lambda: flow.s2c > before, 10, "server traffic to the new port")
        moves.append((old, new, time.monotonic() - t0))
    t.join(100)
    check("r" in res, "transfers did not finish")
    check(all(e is None for e in res["r"]), lib.summarize_errors(res["r"]))
    check(srv.log_text().count("NAT rebinding") >= 2,
          "server did not log following the client twice")
    check("association up" in c.log_text() and c.log_text().count("association up") == 1,
          "the client had to make a new association")
    for old, new, dt in moves:
        info(f"source port {old} -> {new}: server followed in {dt * 1000:.0f} ms")


@lib.timeout(60)
def test_idle_beyond_keepalive(env):
    """An association idle for longer than several keepalive intervals (and than a
    short NAT timeout, simulated by the relay dropping nothing but counting) still
    carries new connections at once, with keepalive packets seen meanwhile."""
    srv = env.start_server(proxy=True, allow=("127.0.0.0/8",), extra=["--keepalive", "1"])
    relay = env.add(lib.UdpRelay(srv.port))
    c = env.start_client(relay.port, extra=["--keepalive", "1"])
    ex = env.exchange_server()
    lib.exchange(c.socks, ex.addr, 1000, 1000, 1)
    flow = relay.flow(0)
    c2s0, s2c0 = flow.c2s, flow.s2c
    time.sleep(6)
    kc2s, ks2c = flow.c2s - c2s0, flow.s2c - s2c0
    check(kc2s >= 3 and ks2c >= 3, f"too few keepalives over 6 s idle: {kc2s} up, {ks2c} down")
    t0 = time.monotonic()
    lib.exchange(c.socks, ex.addr, 1000, 1000, 2)
    info(f"6 s idle: {kc2s} datagrams up, {ks2c} down; next exchange took "
         f"{(time.monotonic() - t0) * 1000:.0f} ms")
    check(c.log_text().count("association up") == 1, "the association was re-made")


# ---------------------------------------------------------------- TCP carrier

import os
import socket
import subprocess
import uuid

from lib import BIN, LOOP


def start_server_at(env, listens, target=None, name="server", extra=()):
    argv = [BIN, "server", "--key", env.key_path] + list(extra)
    for url in listens:
        argv += ["--listen", url]
    argv += ["--target", target] if target else ["--proxy", "--allow", "127.0.0.0/8"]
    p = env.spawn(name, argv)   # IP destinations only: no DNS needed
    check(p.wait_log("listening on", 15), f"{name} did not start: {p.tail()}")
    return p


def start_client_paths(env, servers, name="client", extra=(), wait=True):
    socks = lib.free_port()
    argv = [BIN, "client", "--cert", env.cert, "--socks", f"{LOOP}:{socks}"] + list(extra)
    for url in servers:
        argv += ["--server", url]
    p = env.spawn(name, argv)
    p.socks = socks
    lib.wait_until(lambda: lib.tcp_port_open(socks), 10, f"{name} SOCKS port")
    if wait:
        check(p.wait_log("association up", 25), f"{name}: no association\n{p.tail()}")
    return p


class TcpRelay:
    """TCP relay LOOP:port -> LOOP:upstream; cut() closes every relayed connection."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOP, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.accepted = 0
        self.bytes = 0          # relayed, both ways (approximate: no lock)
        self.stop = False
        self.lock = threading.Lock()
        threading.Thread(target=self._loop, daemon=True).start()

    def _pipe(self, a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
                self.bytes += len(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.close()
            except OSError:
                pass

    def _loop(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            try:
                u = socket.create_connection((LOOP, self.upstream), timeout=5)
            except OSError:
                c.close()
                continue
            u.settimeout(None)
            c.settimeout(None)
            with self.lock:
                self.conns += [c, u]
                self.accepted += 1
            threading.Thread(target=self._pipe, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c), daemon=True).start()

    def cut(self):
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.cut()
        self.sock.close()


@lib.timeout(120)
def test_tcp_carrier_transfer_and_reconnect(env):
    """The TCP carrier carries 6 exchanges with hashes intact; when its TCP connection
    is cut mid-transfer the client connects again, the server follows the session to
    the new connection, and no stream is reset."""
    port = lib.free_port()
    start_server_at(env, [f"tcp://{LOOP}:{port}"], extra=["-v"])
    relay = env.add(TcpRelay(port))
    c = start_client_paths(env, [f"tcp://{LOOP}:{relay.port}"])
    ex = env.exchange_server()
    jobs = [(c.socks, ex.addr, 2 * MiB, 2 * MiB, i, 90) for i in range(6)]
    res = {}
    t = threading.Thread(target=lambda: res.update(r=lib.run_parallel(lib.exchange, jobs, 100)),
                         daemon=True)
    t.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    relay.cut()
    lib.wait_until(lambda: relay.accepted >= 2, 15, "the client's new TCP connection")
    info(f"new TCP connection {time.monotonic() - t0:.2f}s after the cut")
    t.join(100)
    check("r" in res and all(e is None for e in res["r"]),
          lib.summarize_errors(res.get("r", [TestFailure("no result")])))
    check(c.log_text().count("association up") == 1, "the association was re-made")


@lib.timeout(60)
def test_tcp_carrier_probe_resistance(env):
    """Connections that do not authenticate get no byte back and are closed after a
    random time: random junk, a replayed client stream, and silence."""
    port = lib.free_port()
    srv = start_server_at(env, [f"tcp://{LOOP}:{port}"])
    relay = env.add(TcpRelay(port))
    recorded = []
    # Record a real client's first bytes by sniffing through a relay of our own.
    c = start_client_paths(env, [f"tcp://{LOOP}:{relay.port}"])
    probes = []
    for kind in ("junk", "silent", "junk-small", "length-zero"):
        s = socket.create_connection((LOOP, port), timeout=5)
        if kind == "junk":
            s.sendall(os.urandom(5000))
        elif kind == "junk-small":
            s.sendall(os.urandom(20))
        elif kind == "length-zero":
            s.sendall(os.urandom(16))
        probes.append((kind, s, time.monotonic()))
    results = {}
    end = time.monotonic() + 40
    for kind, s, t0 in probes:
        s.settimeout(max(0.1, end - time.monotonic()))
        got = b""
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    break
                got += d
        except ConnectionResetError:
            pass
        except socket.timeout:
            check(False, f"probe '{kind}' still open after 40 s")
        results[kind] = (len(got), time.monotonic() - t0)
        s.close()
    for kind, (n, dt) in results.items():
        check(n == 0, f"probe '{kind}' got {n} bytes back")
    info("closed after: " + ", ".join(f"{k} {dt:.1f}s" for k, (n, dt) in results.items()))
    check(c.alive() and srv.alive(), "a process died")
    ex = env.exchange_server()
    lib.exchange(c.socks, ex.addr, 10000, 10000, 3)


@lib.timeout(90)
def test_tcp_carrier_fault_drain_timer(env):
    """Fault injection: the server cannot arm the drain timer of the first connection it
    drops (a probe sending junk). That connection is closed at once, from the loop, instead
    of being freed under the reader that is still using it (a use-after-free before), and
    the server goes on serving a real client over TCP."""
    if os.environ.get("SCTPT_FAULT_BUILD") != "1":
        info("needs a -Dfault_injection build (SCTPT_FAULT_BUILD=1); nothing to test")
        return
    port = lib.free_port()
    os.environ["SCTPT_FAULT"] = "tcp_evtimer_add:1"
    try:
        srv = start_server_at(env, [f"tcp://{LOOP}:{port}"], extra=["-v"])
    finally:
        del os.environ["SCTPT_FAULT"]
    s = socket.create_connection((LOOP, port), timeout=5)
    s.sendall(os.urandom(16 + 70000))   # a nonce, then at least one whole junk frame
    s.settimeout(10)
    got, closed = b"", False
    try:
        while True:
            d = s.recv(4096)
            if not d:
                closed = True
                break
            got += d
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        pass
    s.close()
    check(got == b"", f"the probe got {len(got)} bytes back")
    check(closed, "the probe whose drain timer failed was not closed")
    check(srv.alive(), f"the server died: {srv.tail()}")
    c = start_client_paths(env, [f"tcp://{LOOP}:{port}"])
    ex = env.exchange_server()
    for seed in (1, 2):
        lib.exchange(c.socks, ex.addr, 65536, 65536, seed)
    check(srv.alive() and c.alive(), "a process died")


@lib.timeout(120)
def test_udp_to_tcp_failover(env):
    """Server on UDP and TCP; the client's UDP path is blackholed mid-transfer: traffic
    moves to the TCP path, transfers finish with hashes intact, no stream is reset."""
    uport, tport = lib.free_port(udp=True), lib.free_port()
    srv = start_server_at(env, [f"udp://{LOOP}:{uport}", f"tcp://{LOOP}:{tport}"],
                          extra=["-v"])
    dead = {"on": False}
    relay = env.add(lib.UdpRelay(uport, c2s=lambda f, d: None if dead["on"] else d,
                                 s2c=lambda f, d: None if dead["on"] else d))
    c = start_client_paths(env, [f"udp://{LOOP}:{relay.port}", f"tcp://{LOOP}:{tport}"])
    ex = env.exchange_server()
    jobs = [(c.socks, ex.addr, 8 * MiB, 8 * MiB, i, 90) for i in range(6)]
    res = {}
    t = threading.Thread(target=lambda: res.update(r=lib.run_parallel(lib.exchange, jobs, 100)),
                         daemon=True)
    t.start()
    lib.wait_until(lambda: relay.flow(0).s2c_bytes > 4 * MiB, 30, "transfers under way")
    check(t.is_alive(), "transfers finished before the UDP path went dark")
    t0 = time.monotonic()
    dead["on"] = True
    check(c.wait_log("stopped delivering", 15), "client did not move off the dead path")
    moved = time.monotonic() - t0
    check(srv.wait_log("moved to another path (TCP", 15), "server did not follow to TCP")
    followed = time.monotonic() - t0
    t.join(100)
    check("r" in res and all(e is None for e in res["r"]),
          lib.summarize_errors(res.get("r", [TestFailure("no result")])))
    check(c.log_text().count("association up") == 1, "the association was re-made")
    info(f"UDP went dark: client moved after {moved:.2f}s, server followed after "
         f"{followed:.2f}s")



@lib.timeout(120)
def test_tcp_to_udp_failover(env):
    """The other way: the client starts on the TCP path (SCTP relaxed over it), the TCP
    path dies mid-transfer and cannot be re-made: traffic moves to the UDP path, where
    SCTP's own congestion control and loss recovery take over again; transfers finish
    with hashes intact, no stream is reset, and the association is not re-made."""
    uport, tport = lib.free_port(udp=True), lib.free_port()
    srv = start_server_at(env, [f"tcp://{LOOP}:{tport}", f"udp://{LOOP}:{uport}"],
                          extra=["-v"])
    relay = env.add(TcpRelay(tport))
    c = start_client_paths(env, [f"tcp://{LOOP}:{relay.port}", f"udp://{LOOP}:{uport}"],
                           extra=["-v"])
    ex = env.exchange_server()
    jobs = [(c.socks, ex.addr, 8 * MiB, 8 * MiB, i, 90) for i in range(6)]
    res = {}
    t = threading.Thread(target=lambda: res.update(r=lib.run_parallel(lib.exchange, jobs, 100)),
                         daemon=True)
    t.start()
    lib.wait_until(lambda: relay.bytes > 4 * MiB, 30, "transfers under way over TCP",
                   interval=0.02)
    check(t.is_alive(), "transfers finished before the TCP path died")
    t0 = time.monotonic()
    relay.close()   # no listener left: the TCP path cannot be re-made
    check(c.wait_log("path is datagrams now", 20), "client did not move to the UDP path")
    moved = time.monotonic() - t0
    check(srv.wait_log("moved to another path (UDP", 15), "server did not follow to UDP")
    t.join(100)
    done = time.monotonic() - t0
    check("r" in res and all(e is None for e in res["r"]),
          lib.summarize_errors(res.get("r", [lib.TestFailure("no result")])))
    check(c.log_text().count("association up") == 1, "the association was re-made")
    # 1-2 s on a quiet machine; 11-47 s when rate samples and min_rtt from the TCP
    # path misled the controller after the move (fixed): a loose bound catches that.
    check(done < 30, f"transfers took {done:.1f}s after the TCP path died")
    info(f"TCP died: the client's SCTP was back on datagram rules after {moved:.2f}s; "
         f"transfers done {done:.1f}s after the cut")

# ---------------------------------------------------------------- two paths in netns

class Netns:
    """A namespace for the server joined to ours by two veth pairs (two paths)."""

    def __init__(self):
        tag = uuid.uuid4().hex[:6]
        self.ns = f"sctpt-{tag}"
        self.veths = [f"st{tag}a", f"st{tag}b"]
        # Subnets of their own, so that a namespace left behind by a killed run (or a
        # concurrent one) cannot capture our packets.
        k = 2 * (int(tag, 16) % 120) + 8
        self.nets = [(f"10.231.{k}.1", f"10.231.{k}.2"),
                     (f"10.231.{k + 1}.1", f"10.231.{k + 1}.2")]
        self._run(["ip", "netns", "add", self.ns])
        try:
            self._run(["ip", "-n", self.ns, "link", "set", "lo", "up"])
            for v, (outer, inner) in zip(self.veths, self.nets):
                self._run(["ip", "link", "add", v, "type", "veth", "peer", "name", v + "p",
                           "netns", self.ns])
                self._run(["ip", "addr", "add", f"{outer}/24", "dev", v])
                self._run(["ip", "link", "set", v, "up"])
                self._run(["ip", "-n", self.ns, "addr", "add", f"{inner}/24", "dev", v + "p"])
                self._run(["ip", "-n", self.ns, "link", "set", v + "p", "up"])
        except Exception:
            self.close()
            raise

    @staticmethod
    def _run(argv):
        r = subprocess.run(argv, capture_output=True, timeout=10)
        check(r.returncode == 0, f"{' '.join(argv)}: {r.stderr.decode()[:200]}")

    def close(self):
        for v in self.veths:
            subprocess.run(["ip", "link", "del", v], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, timeout=10)


class Ticker(threading.Thread):
    """One connection through the tunnel to an echo target: a 1-byte ping every 20 ms;
    records the longest wait for an echo (the outage a user would see)."""

    def __init__(self, sock):
        super().__init__(daemon=True)
        self.s = sock
        self.s.settimeout(30)
        self.max_gap = 0.0
        self.stop = False
        self.error = None

    def run(self):
        try:
            while not self.stop:
                t0 = time.monotonic()
                self.s.sendall(b"x")
                check(self.s.recv(1) == b"x", "echo lost")
                self.max_gap = max(self.max_gap, time.monotonic() - t0)
                time.sleep(0.02)
        except Exception as e:
            self.error = e


@lib.timeout(150)
def test_two_paths_link_down_failover(env):
    """Server in a network namespace reached over two veth paths; the active one is cut
    with `ip link set ... down` mid-transfer: the session moves to the other path, every
    transfer completes with its hash intact, and the longest pause is reported."""
    ns = env.add(Netns())
    (a_out, a_in), (b_out, b_in) = ns.nets
    port = 4433
    ex = env.exchange_server(host=b_out)          # the server reaches it over path B
    echo = env.add(lib.TCPServerThread(lambda c: [c.sendall(d) for d in iter(
        lambda: c.recv(4096), b"")], host=b_out))
    srv = env.spawn("server", ["ip", "netns", "exec", ns.ns, BIN, "server", "--key",
                               env.key_path, "--listen", f"udp://0.0.0.0:{port}", "--proxy",
                               "--allow", "10.231.0.0/16", "-v"])
    check(srv.wait_log("listening on", 15), f"server did not start: {srv.tail()}")
    c = start_client_paths(env, [f"udp://{a_in}:{port}", f"udp://{b_in}:{port}"])
    tick = Ticker(lib.socks_open(c.socks, b_out, echo.addr[1]))
    tick.start()
    jobs = [(c.socks, ex.addr, 2 * MiB, 2 * MiB, i, 100) for i in range(6)]
    res = {}
    t = threading.Thread(target=lambda: res.update(r=lib.run_parallel(lib.exchange, jobs, 110)),
                         daemon=True)
    t.start()
    time.sleep(1.0)
    before = tick.max_gap
    t0 = time.monotonic()
    subprocess.run(["ip", "link", "set", ns.veths[0], "down"], check=True, timeout=10)
    check(c.wait_log("stopped delivering", 20), "client did not move off the cut path")
    detect = time.monotonic() - t0
    t.join(110)
    time.sleep(0.5)
    tick.stop = True
    tick.join(5)
    check(tick.error is None, f"the ping connection broke: {tick.error}")
    check("r" in res and all(e is None for e in res["r"]),
          lib.summarize_errors(res.get("r", [TestFailure("no result")])))
    check(c.log_text().count("association up") == 1, "the association was re-made")
    info(f"path cut: detected after {detect:.2f}s; longest ping wait {tick.max_gap:.2f}s "
         f"(before the cut {before * 1000:.0f} ms)")


from lib import TestFailure  # noqa: E402  (used in messages above)


@lib.timeout(90)
def test_copied_packets_do_not_redirect(env):
    """An on-path attacker copies every client datagram and races the copy to the server
    from its own address: the live session does not move, the attacker gets nothing back,
    and the transfers are intact."""
    srv = env.start_server(proxy=True, allow=("127.0.0.0/8",), extra=["-v"])
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attacker.bind((LOOP, 0))
    attacker.setblocking(False)
    env.add(type("C", (), {"close": lambda self: attacker.close()})())
    racing = {"on": False}

    def c2s(flow, data):
        if racing["on"]:
            try:
                attacker.sendto(data, (LOOP, srv.port))
            except OSError:
                pass
        return data
    relay = env.add(lib.UdpRelay(srv.port, c2s=c2s))
    c = env.start_client(relay.port)
    ex = env.exchange_server()
    racing["on"] = True
    res = lib.run_parallel(lib.exchange, [(c.socks, ex.addr, MiB, MiB, i, 60)
                                          for i in range(4)], 70)
    time.sleep(1.0)
    racing["on"] = False
    check(all(e is None for e in res), lib.summarize_errors(res))
    got = 0
    while True:
        try:
            attacker.recvfrom(65536)
            got += 1
        except (BlockingIOError, OSError):
            break
    check(got == 0, f"the server sent {got} datagrams to the attacker's address")
    check("following it" not in srv.log_text(), "the session moved to the copier's address")
