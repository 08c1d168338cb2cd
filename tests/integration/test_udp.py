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

class UdpEcho:
    """Echoes every datagram back to its sender, from its own socket; counts them."""

    def __init__(self, host=LOOP):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.2)
        self.addr = self.sock.getsockname()
        self.count = 0
        self.peers = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop.is_set():
            try:
                d, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            self.count += 1
            self.peers.add(peer)
            with contextlib.suppress(OSError):
                self.sock.sendto(d, peer)

    def close(self):
        self.stop.set()
        with contextlib.suppress(OSError):
            self.sock.close()
        self.thread.join(2)


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
    echo = env.add(UdpEcho())
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
