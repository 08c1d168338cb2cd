"""Client --prefix (docs/PROTOCOL.md "Prefix"): the first datagram of a session starts with the
configured bytes, the server needs no option for it, a transfer works, and a prober who copies
the prefix still gets no answer.  Prints the popcount and printable fraction of the first
datagram with and without a prefix (the "fully encrypted traffic" heuristic's inputs)."""

import collections
import contextlib
import socket
import threading
import time

import lib
from lib import check, info


class FirstBytes:
    """UdpRelay c2s hook that keeps the first datagram of each flow (and all of flow 0's)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.first = {}
        self.all = []

    def hook(self, flow, data):
        with self.lock:
            self.first.setdefault(flow.idx, bytes(data))
            self.all.append(bytes(data))
        return data


def stats(data, skip=0):
    """Mean popcount per byte and fraction of printable ASCII bytes (0x20-0x7e), and the length
    of the printable run at the start (what the GFW rules of Wu et al. 2023 look at)."""
    pop = sum(bin(b).count("1") for b in data) / len(data)
    printable = sum(1 for b in data if 0x20 <= b <= 0x7e) / len(data)
    run = 0
    while run < len(data) and 0x20 <= data[run] <= 0x7e:
        run += 1
    return pop, printable, run


def fet_exempt(data):
    """Which exemption of the "fully encrypted traffic" rules of Wu et al. (USENIX Security
    2023, Algorithm 1) the first payload meets, or None (it would be blocked):
    Ex1 popcount/byte <= 3.4 or >= 4.6; Ex2 the first 6 bytes printable; Ex3 more than half
    printable; Ex4 more than 20 contiguous printable bytes; Ex5 a TLS or HTTP start."""
    pop, pr, _ = stats(data)
    if pop <= 3.4 or pop >= 4.6:
        return "Ex1"
    if len(data) >= 6 and all(0x20 <= b <= 0x7e for b in data[:6]):
        return "Ex2"
    if pr > 0.5:
        return "Ex3"
    run = best = 0
    for b in data:
        run = run + 1 if 0x20 <= b <= 0x7e else 0
        best = max(best, run)
    if best > 20:
        return "Ex4"
    if (len(data) >= 3 and data[0] in (0x16, 0x17) and data[1] == 0x03 and data[2] <= 0x09) \
            or data[:4] in (b"GET ", b"PUT ", b"POST", b"HEAD"):
        return "Ex5"
    return None


def session(env, srv, prefix, label="x"):
    fb = FirstBytes()
    relay = env.add(lib.UdpRelay(srv.port, c2s=fb.hook))
    extra = ["--prefix", prefix] if prefix is not None else []
    c = env.start_client(relay.port, extra=extra, name=f"client-{label}",
                         wait_assoc=False)
    check(c.wait_log("association up", 20), f"client {prefix}: no association")
    ex = env.exchange_server()
    lib.exchange(c.socks, ex.addr, 300_000, 300_000, 7)
    return c, fb


@lib.timeout(120)
def test_prefix_on_the_wire_and_transfer(env):
    """--prefix http-get and a hex prefix: the HELLO on the wire starts with those bytes, hashed
    transfers both ways work; no prefix: nothing printable at the start."""
    srv = env.start_server(proxy=True, allow=("127.0.0.0/8",))
    want = {"http-get": b"GET / HTTP/1.1\r\n",
            "hex:160301020001": bytes.fromhex("160301020001"),
            r"POST /up HTTP/1.1\r\nHost: a\x2e": b"POST /up HTTP/1.1\r\nHost: a.",
            None: b""}
    for i, (spec, pfx) in enumerate(want.items()):
        c, fb = session(env, srv, spec, str(i))
        first = fb.first[0]
        check(first.startswith(pfx), f"{spec}: first datagram starts {first[:24]!r}")
        later = [d for d in fb.all[1:] if d.startswith(pfx)] if pfx else []
        pop, pr, run = stats(first)
        info(f"prefix {spec!s:30} first datagram {len(first)} bytes: popcount/byte {pop:.2f}, "
             f"printable {pr:.2f}, printable run at start {run}; later datagrams with the "
             f"prefix: {len(later)} of {len(fb.all) - 1}")
        if spec is None:
            check(run < 6, f"no prefix, yet a printable run of {run} at the start")
        c.signal(15)
        c.wait_exit(10)


@lib.timeout(120)
def test_prefix_exempts_first_datagram(env):
    """10 sessions each without a prefix and with --prefix tls / http-get / a template: how
    many first datagrams meet an exemption of the fully-encrypted-traffic rules (none without a
    prefix is expected: they look random; all with one)."""
    srv = env.start_server(proxy=True, allow=("127.0.0.0/8",))
    fb = FirstBytes()
    relay = env.add(lib.UdpRelay(srv.port, c2s=fb.hook))
    specs = [None, "tls", "http-get", r"\x17\x03\x03abc"]
    n = 10
    for j, spec in enumerate(specs):
        cs = []
        for i in range(n):
            extra = ["--prefix", spec] if spec is not None else []
            cs.append(env.start_client(relay.port, extra=extra, name=f"c{j}-{i}",
                                       wait_assoc=False))
        for c in cs:
            check(c.wait_log("association up", 25), f"{c.name}: no association")
        for c in cs:
            c.signal(15)
        for c in cs:
            if c.wait_exit(10) is None:
                c.kill()
    with fb.lock:
        firsts = [fb.first[k] for k in sorted(fb.first)]
    check(len(firsts) == n * len(specs), f"saw {len(firsts)} flows")
    for j, spec in enumerate(specs):
        group = firsts[j * n:(j + 1) * n]
        ex = collections.Counter(fet_exempt(d) for d in group)
        pops = [stats(d)[0] for d in group]
        prs = [stats(d)[1] for d in group]
        info(f"prefix {spec!s:16} first datagrams {min(map(len, group))}-"
             f"{max(map(len, group))} bytes: popcount/byte {min(pops):.2f}-{max(pops):.2f}, "
             f"printable {min(prs):.2f}-{max(prs):.2f}; exemptions {dict(ex)} "
             f"(None = would be blocked)")
        if spec is None:
            check(ex[None] >= n - 1, f"no prefix, yet exempt: {dict(ex)}")
        else:
            check(ex[None] == 0, f"--prefix {spec}: {ex[None]} of {n} would be blocked")


@lib.timeout(60)
def test_prefix_probes_get_no_answer(env):
    """The prefix is no password: the prefix followed by random bytes, and a captured
    prefixed HELLO with one prefix byte changed, get no answer."""
    srv = env.start_server(proxy=True, allow=("127.0.0.0/8",))
    c, fb = session(env, srv, "tls")
    hello = fb.first[0]
    probes = [hello[:11] + bytes(range(200)), bytearray(hello)]
    probes[1][3] ^= 0x01
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(2.0)
        for p in probes:
            s.sendto(bytes(p), (lib.LOOP, srv.port))
        try:
            data = s.recv(2048)
            check(False, f"the server answered a probe ({len(data)} bytes)")
        except socket.timeout:
            pass
    finally:
        s.close()
    check(srv.alive(), "server died")


class TcpTap:
    """A TCP relay LOOP:port -> LOOP:server_port that keeps the first bytes the client sent on
    each connection (the first recv() is, on loopback, the first segment)."""

    def __init__(self, server_port):
        self.server_port = server_port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind((lib.LOOP, 0))
        self.lsock.listen(16)
        self.lsock.settimeout(0.5)
        self.port = self.lsock.getsockname()[1]
        self.first = []
        self.socks = []
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _pump(self, a, b, keep):
        try:
            while True:
                d = a.recv(1 << 16)
                if not d:
                    break
                if keep:
                    self.first.append(d)
                    keep = False
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def _loop(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.lsock.accept()
            except OSError:
                continue
            u = socket.create_connection((lib.LOOP, self.server_port), timeout=5)
            u.settimeout(None)
            c.settimeout(None)
            self.socks += [c, u]
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def close(self):
        self.stop_ev.set()
        self.thread.join(2)
        for s in self.socks + [self.lsock]:
            with contextlib.suppress(OSError):
                s.close()


@lib.timeout(90)
def test_prefix_on_tcp(env):
    """Over the TCP carrier the connection's first bytes are the prefix (then the nonce and its
    tag); a hashed transfer works; a client without a prefix still gets in on the same port."""
    port = lib.free_port()
    srv = env.spawn("server", [lib.BIN, "server", "--key", env.key_path, "--listen",
                               f"tcp://{lib.LOOP}:{port}", "--proxy", "--allow", "127.0.0.0/8"])
    check(srv.wait_log("listening on", 15), "server did not start")
    tap = env.add(TcpTap(port))
    ex = env.exchange_server()
    for i, (spec, pfx) in enumerate([("http-get", b"GET / HTTP/1.1\r\n"),
                                     (r"\x16\x03\x01\x02\x00", b"\x16\x03\x01\x02\x00"),
                                     (None, b"")]):
        socks = lib.free_port()
        argv = [lib.BIN, "client", "--cert", env.cert, "--socks", f"{lib.LOOP}:{socks}",
                "--server", f"tcp://{lib.LOOP}:{tap.port}"]
        if spec is not None:
            argv += ["--prefix", spec]
        c = env.spawn(f"tcpclient{i}", argv)
        check(c.wait_log("association up", 20), f"tcp client {spec}: no association")
        lib.exchange(socks, ex.addr, 300_000, 300_000, 11 + i)
        first = tap.first[i]
        check(first.startswith(pfx), f"{spec}: TCP stream starts {first[:24]!r}")
        pop, pr, run = stats(first)
        info(f"tcp prefix {spec!s:22} first segment {len(first)} bytes: popcount/byte "
             f"{pop:.2f}, printable {pr:.2f}, printable run at start {run}, exemption "
             f"{fet_exempt(first)}")
        if spec is not None:
            check(fet_exempt(first) is not None, f"{spec}: the first segment would be blocked")
        c.signal(15)
        c.wait_exit(10)
