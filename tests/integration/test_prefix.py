"""Client --prefix (docs/PROTOCOL.md "Prefix"): the first datagram of a session starts with the
configured bytes, the server needs no option for it, a transfer works, and a prober who copies
the prefix still gets no answer.  Prints the popcount and printable fraction of the first
datagram with and without a prefix (the "fully encrypted traffic" heuristic's inputs)."""

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
