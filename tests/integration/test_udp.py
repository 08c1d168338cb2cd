"""UDP relay: SOCKS5 UDP ASSOCIATE (RFC 1928 section 7) on the client's SOCKS listener,
datagrams through the tunnel, one UDP socket per association at the server
(docs/udp-relay.md).

The SOCKS5 UDP client here is Python; the echo server hashes nothing itself, the client
checks every datagram it gets back by SHA-256 against what it sent.  The DNS test runs a
real resolver (dnsmasq, Debian's dnsmasq-base) on loopback and asks it with dig (bind9-
dnsutils) through a small SOCKS UDP shim.

Needs: apt-get install dnsmasq-base bind9-dnsutils"""

import contextlib
import hashlib
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time

import lib
from lib import LOOP, check, info


# ---------------------------------------------------------------- helpers

ECHO_SCRIPT = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
n = 0
while True:
    d, peer = s.recvfrom(65535)
    n += 1
    try:
        s.sendto(d, peer)
    except OSError:
        pass
"""


class UdpEcho:
    """A UDP echo server in its own process (no GIL shared with the test's sender)."""

    def __init__(self, env):
        path = os.path.join(env.dir, "udp_echo.py")
        with open(path, "w") as f:
            f.write(ECHO_SCRIPT)
        self.proc = env.spawn("udp_echo", ["python3", "-u", path])
        lib.wait_until(lambda: self.proc.log_text().strip().isdigit() or not self.proc.alive(),
                       10, "the UDP echo server to start")
        check(self.proc.alive(), "UDP echo server died")
        self.addr = (LOOP, int(self.proc.log_text().strip()))

    def drops(self):
        return udp_sock_drops(self.addr[1])


def udp_sock_drops(port):
    """Datagrams the kernel dropped at the UDP socket bound to 127.0.0.1:port
    (the drops column of /proc/net/udp); 0 if it is gone."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if cols[1] == want:
                return int(cols[-1])
    return 0


def udp_port_bound(port):
    want = f":{port:04X}"
    with open("/proc/net/udp") as f:
        return any(line.split()[1].endswith(want) for line in f.readlines()[1:])


def socks_udp_header(host, port, frag=0):
    return b"\x00\x00" + bytes([frag]) + lib.encode_addr(host) + struct.pack("!H", port)


def parse_udp_header(d):
    """(host, port, payload) of a datagram from the relay; raises on a bad header."""
    check(len(d) >= 10 and d[:3] == b"\x00\x00\x00", f"bad relay header {d[:8]!r}")
    atyp = d[3]
    if atyp == 1:
        host, i = socket.inet_ntop(socket.AF_INET, d[4:8]), 8
    elif atyp == 4:
        host, i = socket.inet_ntop(socket.AF_INET6, d[4:20]), 20
    else:
        raise lib.TestFailure(f"relay sent address type {atyp}")
    port = struct.unpack("!H", d[i:i + 2])[0]
    return host, port, d[i + 2:]


class Assoc:
    """A SOCKS5 UDP ASSOCIATE: the control connection and a UDP socket bound beside it."""

    def __init__(self, socks_port, announce_port=True, timeout=15):
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.udp.bind((LOOP, 0))
        self.ctl = socket.create_connection((LOOP, socks_port), timeout=timeout)
        lib.socks5_greet(self.ctl)
        port = self.udp.getsockname()[1] if announce_port else 0
        self.ctl.sendall(lib.socks5_request_bytes("0.0.0.0", port, cmd=3))
        self.rep, self.bnd = read_reply_addr(self.ctl)
        self.relay = self.bnd

    def send(self, host, port, payload, frag=0):
        self.udp.sendto(socks_udp_header(host, port, frag) + payload, self.relay)

    def recv(self, secs):
        self.udp.settimeout(secs)
        try:
            d, src = self.udp.recvfrom(70000)
        except socket.timeout:
            return None
        check(src == tuple(self.relay), f"datagram from {src}, not the relay {self.relay}")
        return parse_udp_header(d)

    def close(self):
        for s in (self.ctl, self.udp):
            with contextlib.suppress(OSError):
                s.close()


def read_reply_addr(sock):
    """SOCKS5 reply: (code, (host, port))."""
    h = lib.recv_exact(sock, 4)
    check(h[0] == 5, f"bad SOCKS version in reply {h!r}")
    if h[3] == 1:
        a = socket.inet_ntop(socket.AF_INET, lib.recv_exact(sock, 4))
    elif h[3] == 4:
        a = socket.inet_ntop(socket.AF_INET6, lib.recv_exact(sock, 16))
    else:
        raise lib.TestFailure(f"reply address type {h[3]}")
    port = struct.unpack("!H", lib.recv_exact(sock, 2))[0]
    return h[1], (a, port)


def associate(env, socks_port, **kw):
    a = env.add(Assoc(socks_port, **kw))
    check(a.rep == 0, f"UDP ASSOCIATE refused with code {a.rep}")
    check(a.bnd[0] == LOOP and a.bnd[1] != 0, f"relay address {a.bnd}")
    return a


def udp_pair(env, server_extra=(), client_extra=(), allow=("127.0.0.0/8",)):
    """Server (proxy mode) and client, both at info level: the tests read the UDP
    association summaries they log."""
    return env.pair(allow=allow, server_extra=("-v",) + tuple(server_extra),
                    client_extra=("-v",) + tuple(client_extra))


def summary(proc, side):
    """The last UDP association summary line of proc's log, as a dict of counts."""
    if side == "client":
        pat = (r"UDP association closed \(.*?\): (\d+) datagrams sent, (\d+) received; "
               r"dropped: (\d+) fragments, (\d+) malformed, (\d+) foreign, (\d+) queue full, "
               r"(\d+) kernel, (\d+) tunnel")
        keys = ("sent", "received", "frag", "bad", "foreign", "full", "kernel", "tunnel")
    else:
        pat = (r"UDP association closed: (\d+) datagrams out, (\d+) in; (\d+) dropped, "
               r"(\d+) refused by policy")
        keys = ("out", "in", "dropped", "refused")
    m = re.findall(pat, proc.log_text())
    return dict(zip(keys, map(int, m[-1]))) if m else None


def wait_summary(proc, side, n=1, secs=10):
    lib.wait_until(lambda: len(re.findall("UDP association closed", proc.log_text())) >= n,
                   secs, f"{proc.name} to log the UDP association's summary")
    return summary(proc, side)


def sanitized():
    """A sanitizer build: its RSS (shadow memory, quarantine) says nothing about ours."""
    with open(lib.BIN, "rb") as f:
        return b"__asan_init" in f.read()


def rss_kb(proc):
    """VmRSS of the sctpt process behind proc (the server runs under unshare/sh -> exec)."""
    with open(f"/proc/{proc.popen.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise lib.TestFailure("no VmRSS")


# ---------------------------------------------------------------- tests

@lib.timeout(60)
def test_udp_echo_hashed(env):
    """Hashed datagrams of many sizes to a UDP echo server and back; every one accounted
    for: sent = received + drops counted by sctpt."""
    echo = UdpEcho(env)
    s, c = udp_pair(env)
    a = associate(env, c.socks)
    sizes = [0, 1, 7, 100, 512, 1200, 1400, 4000, 9000, 30000, 65000]
    sent, got = {}, {}
    for i in range(300):
        n = sizes[i % len(sizes)]
        payload = struct.pack("!I", i) + os.urandom(n)
        sent[i] = hashlib.sha256(payload).hexdigest()
        a.send(LOOP, echo.addr[1], payload)
        if i % 20 == 19:
            time.sleep(0.02)
    deadline = time.time() + 10
    while len(got) < len(sent) and time.time() < deadline:
        r = a.recv(1.0)
        if r is None:
            continue
        host, port, payload = r
        check((host, port) == (LOOP, echo.addr[1]), f"reply source {host}:{port}")
        i = struct.unpack("!I", payload[:4])[0]
        check(sent.get(i) == hashlib.sha256(payload).hexdigest(), f"datagram {i} corrupted")
        got[i] = True
    a.close()
    cs = wait_summary(c, "client")
    ss = wait_summary(s, "server")
    info(f"sent {len(sent)}, received {len(got)}; client {cs}; server {ss}")
    check(cs["sent"] == len(sent), f"client relayed {cs['sent']} of {len(sent)}")
    drops = cs["full"] + cs["kernel"] + cs["tunnel"] + ss["dropped"]
    # Each echoed datagram crosses the relay twice; any loss must show in a counter.
    check(len(got) + drops >= len(sent), f"{len(sent) - len(got)} lost, {drops} counted")
    check(len(got) >= len(sent) * 0.95, f"only {len(got)} of {len(sent)} came back")


def counted_drops(cs, ss):
    """Every drop sctpt counted on the way out and back."""
    return (cs["full"] + cs["kernel"] + cs["tunnel"] + cs["bad"] + cs["foreign"] +
            ss["dropped"])


@lib.timeout(60)
def test_udp_names_and_ipv6(env):
    """A datagram to a name is resolved at the server (async, via /etc/hosts there); the reply
    carries the address it came from.  A SOCKS client on IPv6 gets an IPv6 relay socket."""
    echo = UdpEcho(env)
    s, c = udp_pair(env)
    a = associate(env, c.socks, announce_port=False)
    a.send("localhost", echo.addr[1], b"by name")
    r = a.recv(5)
    check(r is not None, "no reply to a datagram sent to localhost by name")
    check(r == (LOOP, echo.addr[1], b"by name"), f"reply {r}")
    # A name that does not resolve costs one counted drop, nothing else.
    a.send("nonexistent.invalid", 53, b"x")
    a.send(LOOP, echo.addr[1], b"after")
    r = a.recv(5)
    check(r is not None and r[2] == b"after", f"reply after a bad name: {r}")
    # Announced as port 0: the first datagram fixed the port; another one is foreign.
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind((LOOP, 0))
    other.sendto(socks_udp_header(LOOP, echo.addr[1]) + b"foreign", a.relay)
    other.close()
    check(a.recv(1) is None, "a datagram from another port was relayed")
    a.close()
    cs = wait_summary(c, "client")
    check(cs["foreign"] == 1 and cs["sent"] == 3, f"client summary {cs}")
    ss = wait_summary(s, "server")
    check(ss["dropped"] >= 1, f"the unresolvable name was not counted: {ss}")
    # The relay socket follows the control connection's local address: ::1 here.
    port = lib.free_port()
    c6 = env.spawn("client6", [lib.BIN, "client", "--server", f"udp://{LOOP}:{s.port}",
                               "--cert", env.cert, "--socks", f"[::1]:{port}", "-v"])
    check(c6.wait_log("association up", 15), "IPv6 client: no association")
    ctl = socket.create_connection(("::1", port), timeout=10)
    env.add(ctl)
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    env.add(u)
    u.bind(("::1", 0))
    lib.socks5_greet(ctl)
    ctl.sendall(lib.socks5_request_bytes("::", u.getsockname()[1], cmd=3))
    rep, bnd = read_reply_addr(ctl)
    check(rep == 0 and bnd[0] == "::1" and bnd[1] != 0, f"IPv6 UDP ASSOCIATE: {rep} {bnd}")
    u.sendto(socks_udp_header(LOOP, echo.addr[1]) + b"v6", bnd)
    u.settimeout(5)
    d, src = u.recvfrom(1000)
    check(src[:2] == bnd and parse_udp_header(d) == (LOOP, echo.addr[1], b"v6"),
          f"IPv6 relay reply {d!r} from {src}")


@lib.timeout(60)
def test_udp_refusals_and_hostile_datagrams(env):
    """Internal destinations are refused without --allow (and counted); FRAG != 0, bad ATYP,
    bad RSV and datagrams from another port are dropped and counted at the client; closing
    the control connection frees the association on both sides."""
    echo = UdpEcho(env)
    s, c = udp_pair(env, allow=())
    a = associate(env, c.socks)
    a.send(LOOP, echo.addr[1], b"internal")
    a.send("::1", echo.addr[1], b"internal6")
    a.send(LOOP, echo.addr[1], b"frag", frag=1)
    a.send(LOOP, echo.addr[1], b"frag-end", frag=0x81)
    a.udp.sendto(b"\x00\x00\x00\x02\x7f\x00\x00\x01\x00\x35x", a.relay)      # ATYP 2
    a.udp.sendto(b"\x00\x01\x00\x01\x7f\x00\x00\x01\x00\x35x", a.relay)      # RSV != 0
    a.udp.sendto(b"\x00\x00\x00", a.relay)                                     # truncated
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind((LOOP, 0))
    other.sendto(socks_udp_header(LOOP, echo.addr[1]) + b"foreign", a.relay)
    other.close()
    check(a.recv(1.5) is None, "a refused or malformed datagram got an answer")
    relay_port = a.relay[1]
    check(udp_port_bound(relay_port), "the relay socket is not bound")
    a.ctl.close()   # ends the association
    cs = wait_summary(c, "client")
    ss = wait_summary(s, "server")
    info(f"client {cs}; server {ss}")
    check(cs["frag"] == 2, f"fragments counted: {cs}")
    check(cs["bad"] == 3, f"malformed counted: {cs}")
    check(cs["foreign"] == 1, f"foreign counted: {cs}")
    check(cs["sent"] == 2, f"relayed: {cs}")
    check(ss["refused"] == 2 and ss["out"] == 0, f"internal destinations not refused: {ss}")
    lib.wait_until(lambda: not udp_port_bound(relay_port), 5, "the relay socket to close")
    check("destination" in s.log_text() and "refused" in s.log_text(),
          "the server did not log the refusal")
    # The tunnel is fine and has room for a new association.
    b = associate(env, c.socks)
    b.close()


@lib.timeout(60)
def test_udp_refused_cleanly(env):
    """A server that does not offer the relay (fixed target, or --max-udp 0) answers
    UDP_OPEN with RST 0x07: the SOCKS reply is 0x07.  Beyond --max-udp the reply is a
    failure; an association idle for --udp-idle ends and the client closes the control
    connection."""
    s1 = env.start_server(target=f"{LOOP}:9", name="server_target")
    c1 = env.start_client(s1.port, name="client_target")
    a = env.add(Assoc(c1.socks))
    check(a.rep == 7, f"fixed-target server: SOCKS reply {a.rep}, want 7")
    s2, c2 = udp_pair(env, server_extra=("--max-udp", "1", "--udp-idle", "2"))
    a = associate(env, c2.socks)
    b = env.add(Assoc(c2.socks))
    check(b.rep == 1, f"beyond --max-udp: SOCKS reply {b.rep}, want 1")
    check("UDP association limit" in s2.log_text(), "the server did not log its limit")
    t0 = time.time()
    a.ctl.settimeout(10)
    with contextlib.suppress(OSError):
        check(a.ctl.recv(1) == b"", "data on the control connection")
    idle = time.time() - t0
    check(1.5 < idle < 6, f"idle association ended after {idle:.1f}s (want ~2s)")
    check(re.search(r"UDP association idle", s2.log_text()), "no idle log line")
    s3, c3 = env.start_server(proxy=True, extra=("--max-udp", "0"), name="server_noudp"), None
    c3 = env.start_client(s3.port, name="client_noudp")
    d = env.add(Assoc(c3.socks))
    check(d.rep == 7, f"--max-udp 0: SOCKS reply {d.rep}, want 7")


DIG_SHIM = r"""
import socket, struct, sys, select
relay = (sys.argv[1], int(sys.argv[2]))
dns = (sys.argv[3], int(sys.argv[4]))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
out.bind(("127.0.0.1", int(sys.argv[5])))
print(s.getsockname()[1], flush=True)
hdr = b"\0\0\0\1" + socket.inet_aton(dns[0]) + struct.pack("!H", dns[1])
peer = None
while True:
    r, _, _ = select.select([s, out], [], [], 30)
    if not r:
        break
    if s in r:
        q, peer = s.recvfrom(65535)
        out.sendto(hdr + q, relay)
    if out in r:
        d, _ = out.recvfrom(65535)
        if peer and d[:4] == b"\0\0\0\1":
            s.sendto(d[10:], peer)
"""


def need(binary, package):
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if os.path.exists(p)), None)
    check(path is not None, f"{binary} not installed (apt-get install {package})")
    return path


@lib.timeout(60)
def test_udp_dns_real_resolver(env):
    """A real DNS query through the relay: dig asks dnsmasq (on loopback) through a SOCKS
    UDP shim; the answer comes back intact."""
    dnsmasq = need("dnsmasq", "dnsmasq-base")
    dig = need("dig", "bind9-dnsutils")
    port = lib.free_port(udp=True)
    env.spawn("dnsmasq", [dnsmasq, "--no-daemon", "--conf-file=/dev/null", "--no-resolv",
                          "--no-hosts", "--bind-interfaces", f"--listen-address={LOOP}",
                          f"--port={port}", "--pid-file=", "--user=root", "--log-queries",
                          "--address=/sctpt-udp.example/192.0.2.53"])
    lib.wait_until(lambda: udp_port_bound(port), 10, "dnsmasq to listen")
    s, c = udp_pair(env)
    # The shim's relay-facing socket is announced, as an application would.
    shim_out = lib.free_port(udp=True)
    a = env.add(Assoc.__new__(Assoc))
    a.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.ctl = socket.create_connection((LOOP, c.socks), timeout=15)
    lib.socks5_greet(a.ctl)
    a.ctl.sendall(lib.socks5_request_bytes(LOOP, shim_out, cmd=3))
    rep, bnd = read_reply_addr(a.ctl)
    check(rep == 0, f"UDP ASSOCIATE refused: {rep}")
    path = os.path.join(env.dir, "dig_shim.py")
    with open(path, "w") as f:
        f.write(DIG_SHIM)
    shim = env.spawn("dig_shim", ["python3", "-u", path, bnd[0], str(bnd[1]), LOOP, str(port),
                                  str(shim_out)])
    lib.wait_until(lambda: shim.log_text().strip().isdigit(), 10, "the shim to start")
    shim_port = int(shim.log_text().strip())
    rc, out, err = lib.run_cmd([dig, "@127.0.0.1", "-p", str(shim_port), "+tries=2", "+time=3",
                                "sctpt-udp.example", "A"], 20)
    info(out.strip().splitlines()[-1] if out.strip() else err)
    check(rc == 0, f"dig failed ({rc}): {err.strip()[:200]} {out[-300:]}")
    check("status: NOERROR" in out and re.search(r"sctpt-udp\.example\.\s+\d+\s+IN\s+A\s+"
                                                 r"192\.0\.2\.53", out),
          f"no answer from dnsmasq through the relay:\n{out}")
    # dig with a TCP fallback would not prove anything: the query was UDP.
    check(";; SERVER: 127.0.0.1#%d(127.0.0.1) (UDP)" % shim_port in out,
          f"dig not over UDP:\n{out}")


@lib.timeout(90)
def test_udp_flood_memory_and_tcp(env):
    """1,000 datagrams/s for 10 s through one association while a TCP transfer runs on
    the same tunnel: every datagram is accounted for (received, or dropped and counted by
    sctpt or the kernel), sctpt's RSS stays bounded, and the TCP transfer completes at a
    reasonable rate."""
    echo = UdpEcho(env)
    tcp = env.exchange_server()
    s, c = udp_pair(env)
    size = 16 << 20
    t0 = time.time()
    lib.exchange(c.socks, tcp.addr, size, size, 1)
    base_rate = 2 * size / (time.time() - t0)
    rss0 = {p.name: rss_kb(p) for p in (s, c)}
    a = associate(env, c.socks)
    a.udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    rate, secs, plen = 1000, 10, 1000
    state = {"sent": 0, "got": 0, "bad": 0, "peak": dict(rss0)}
    sent_hash = {}
    stop = threading.Event()

    def receiver():
        a.udp.settimeout(0.2)
        while not stop.is_set():
            try:
                d, _ = a.udp.recvfrom(70000)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                _, _, payload = parse_udp_header(d)
                i = struct.unpack("!I", payload[:4])[0]
                if sent_hash.get(i) == hashlib.sha256(payload).digest():
                    state["got"] += 1
                else:
                    state["bad"] += 1
            except Exception:
                state["bad"] += 1

    def sampler():
        while not stop.is_set():
            for p in (s, c):
                with contextlib.suppress(Exception):
                    state["peak"][p.name] = max(state["peak"][p.name], rss_kb(p))
            stop.wait(0.25)

    threads = [threading.Thread(target=f, daemon=True) for f in (receiver, sampler)]
    for t in threads:
        t.start()
    tcp_res = {}

    def tcp_run():
        t1 = time.time()
        try:
            lib.exchange(c.socks, tcp.addr, size, size, 2, timeout=60)
            tcp_res["rate"] = 2 * size / (time.time() - t1)
        except Exception as e:
            tcp_res["error"] = e

    tt = threading.Thread(target=tcp_run, daemon=True)
    hdr = socks_udp_header(LOOP, echo.addr[1])
    start = time.time()
    tt.start()
    i = 0
    while i < rate * secs:
        due = start + i / rate
        now = time.time()
        if due > now:
            time.sleep(due - now)
        payload = struct.pack("!I", i) + os.urandom(plen - 4)
        sent_hash[i] = hashlib.sha256(payload).digest()
        a.udp.sendto(hdr + payload, a.relay)
        i += 1
    state["sent"] = i
    send_secs = time.time() - start
    tt.join(60)
    lib.stalled(lambda: state["got"], quiet=1.5, secs=15)
    echo_drops = echo.drops()
    my_drops = udp_sock_drops(a.udp.getsockname()[1])
    stop.set()
    for t in threads:
        t.join(2)
    a.close()
    cs = wait_summary(c, "client")
    ss = wait_summary(s, "server")
    counted = counted_drops(cs, ss) + echo_drops + my_drops
    growth = {k: state["peak"][k] - rss0[k] for k in rss0}
    info(f"sent {state['sent']} in {send_secs:.1f}s, received {state['got']}, corrupt "
         f"{state['bad']}; counted drops {counted} (client {cs}, server {ss}, echo socket "
         f"{echo_drops}, test socket {my_drops}); RSS before {rss0} KiB, peak growth "
         f"{growth} KiB; TCP {base_rate / 1e6:.1f} MB/s alone, "
         f"{tcp_res.get('rate', 0) / 1e6:.1f} MB/s beside the flood")
    check("error" not in tcp_res, f"TCP transfer beside the flood failed: {tcp_res.get('error')}")
    check(state["bad"] == 0, f"{state['bad']} corrupt datagrams")
    check(state["sent"] == state["got"] + counted,
          f"loss not accounted: sent {state['sent']} = received {state['got']} + counted "
          f"{counted}?")
    check(state["got"] >= state["sent"] * 0.5, f"only {state['got']} of {state['sent']} back")
    if sanitized():
        info("sanitizer build: RSS bound not checked")
    else:
        for k, g in growth.items():
            check(g < 48 * 1024, f"{k} RSS grew by {g} KiB during the flood")
    check(tcp_res["rate"] > min(2e6, base_rate * 0.1),
          f"TCP beside the flood at {tcp_res['rate'] / 1e6:.2f} MB/s "
          f"(alone {base_rate / 1e6:.1f} MB/s)")


@lib.timeout(60)
def test_udp_faults_isolated(env):
    """Fault injection (-Dfault_injection): the client cannot open the UDP socket of its
    first association, the server cannot make its first UDP socket, the mux cannot make
    the state of one association.  Each fails alone, with an answer, and the next work."""
    if os.environ.get("SCTPT_FAULT_BUILD") != "1":
        info("needs a -Dfault_injection build (SCTPT_FAULT_BUILD=1); nothing to test")
        return
    echo = UdpEcho(env)
    os.environ["SCTPT_FAULT"] = "egress_udp_socket:1"
    try:
        s = env.start_server(proxy=True, allow=("127.0.0.0/8",), extra=("-v",))
    finally:
        del os.environ["SCTPT_FAULT"]
    os.environ["SCTPT_FAULT"] = "udp_assoc_socket:1"
    try:
        c = env.start_client(s.port, extra=("-v",))
    finally:
        del os.environ["SCTPT_FAULT"]
    a = env.add(Assoc(c.socks))
    check(a.rep == 1, f"client without a UDP socket: SOCKS reply {a.rep}, want 1")
    check(c.wait_log("cannot open a UDP socket", 5), "the client did not log the fault")
    b = associate(env, c.socks)
    b.send(LOOP, echo.addr[1], b"lost")        # the server's socket fails: dropped, counted
    check(b.recv(1.5) is None, "a datagram went out without a socket")
    b.send(LOOP, echo.addr[1], b"second")
    r = b.recv(5)
    check(r is not None and r[2] == b"second", f"no reply after the fault: {r}")
    check(s.wait_log("UDP relay: cannot open a socket", 5), "the server did not log the fault")
    b.close()
    ss = wait_summary(s, "server")
    check(ss["dropped"] == 1 and ss["out"] == 1, f"server summary {ss}")
    lib.exchange(c.socks, env.exchange_server().addr, 4096, 4096, 1)
    check(s.alive() and c.alive(), "a process died")


@lib.timeout(60)
def test_udp_rate_limit(env):
    """--udp-rate bounds what one client can push through the server: beyond it datagrams
    are dropped and counted (a flood costs the server per datagram, whatever the size)."""
    echo = UdpEcho(env)
    s, c = udp_pair(env, server_extra=("--udp-rate", "200"), client_extra=("--udp-rate", "0"))
    a = associate(env, c.socks)
    hdr = socks_udp_header(LOOP, echo.addr[1])
    t0 = time.time()
    for i in range(2000):
        a.udp.sendto(hdr + struct.pack("!I", i), a.relay)
    secs = time.time() - t0
    got = 0
    while a.recv(1.0) is not None:
        got += 1
    a.close()
    cs = wait_summary(c, "client")
    ss = wait_summary(s, "server")
    info(f"2000 sent in {secs:.2f}s, {got} back; client {cs}; server {ss}")
    # The server's bucket: 64 at once, then 200/s while the burst lasts.
    check(ss["out"] <= 64 + 200 * (secs + 1.5) + 10, f"server relayed {ss['out']}")
    check(ss["out"] >= 64, f"server relayed only {ss['out']}")
    check(re.search(r"rate limit \(200 datagrams/s per client\)", s.log_text()),
          "no rate-limit warning")
    check(cs["sent"] == 2000 and got + counted_drops(cs, ss) == 2000,
          f"loss not accounted: {got} back, client {cs}, server {ss}")


FLOOD_SCRIPT = r"""
import os, socket, sys, time
relay, secs, hdr = (sys.argv[1], int(sys.argv[2])), float(sys.argv[3]), bytes.fromhex(sys.argv[4])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", int(sys.argv[5])))
p, n, t0 = hdr + os.urandom(1000), 0, time.time()
while time.time() - t0 < secs:
    for _ in range(64):
        try:
            u.sendto(p, relay)
            n += 1
        except OSError:
            pass
print(n, flush=True)
"""


@lib.timeout(90)
def test_udp_flood_does_not_starve(env):
    """An unpaced UDP flood (as fast as a separate process can send) from one client to a
    sink: a TCP exchange of that client and one of a second client of the same server keep
    a fair part of their rate (default --udp-rate on both sides; docs/udp-relay.md).  A
    sanitizer build costs several times the CPU per datagram: it gets a rate to match."""
    sink = env.add(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    sink.bind((LOOP, 0))
    tcp = env.exchange_server()
    limit = ("--udp-rate", "4000") if sanitized() else ()
    s, c = udp_pair(env, server_extra=limit, client_extra=limit)
    c2 = env.start_client(s.port, name="client2", extra=limit)
    size = 8 << 20

    def rate(port, seed):
        t0 = time.time()
        lib.exchange(port, tcp.addr, size, size, seed, timeout=60)
        return 2 * size / (time.time() - t0)

    base = (rate(c.socks, 1), rate(c2.socks, 2))
    port = lib.free_port(udp=True)
    ctl = env.add(socket.create_connection((LOOP, c.socks), timeout=10))
    lib.socks5_greet(ctl)
    ctl.sendall(lib.socks5_request_bytes(LOOP, port, cmd=3))
    rep, bnd = read_reply_addr(ctl)
    check(rep == 0, f"UDP ASSOCIATE refused: {rep}")
    path = os.path.join(env.dir, "flood.py")
    with open(path, "w") as f:
        f.write(FLOOD_SCRIPT)
    hdr = socks_udp_header(LOOP, sink.getsockname()[1]).hex()
    fl = env.spawn("flood", ["python3", path, bnd[0], str(bnd[1]), "10", hdr, str(port)])
    time.sleep(1)
    during = (rate(c.socks, 3), rate(c2.socks, 4))
    lib.wait_until(lambda: not fl.alive(), 20, "the flood to end")
    ctl.close()
    ss = wait_summary(s, "server")
    info(f"flood {fl.log_text().strip()} datagrams offered in 10 s, server relayed {ss['out']}; "
         f"TCP flooding client {base[0] / 1e6:.1f} -> {during[0] / 1e6:.1f} MB/s, other client "
         f"{base[1] / 1e6:.1f} -> {during[1] / 1e6:.1f} MB/s")
    for name, b, d in (("flooding client", base[0], during[0]),
                       ("other client", base[1], during[1])):
        check(d >= b * 0.2, f"{name}: TCP at {d / 1e6:.1f} MB/s beside the flood, "
                            f"{b / 1e6:.1f} alone")
