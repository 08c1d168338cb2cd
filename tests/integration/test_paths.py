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
    follows the authenticated packets to the new address and every hash is intact."""
    srv = env.start_server(proxy=True, allow=("127.0.0.0/8",), extra=["-v"])
    relay = env.add(lib.UdpRelay(srv.port))
    c = env.start_client(relay.port)
    check("association up" in c.log_text(), "no association through the relay")
    ex = env.exchange_server()
    flow = relay.flow(0)
    jobs = [(c.socks, ex.addr, 3 * MiB, 3 * MiB, i, 90) for i in range(8)]
    res = {}

    def run():
        res["r"] = lib.run_parallel(lib.exchange, jobs, 100)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    moves = []
    for _ in range(2):
        time.sleep(0.7)
        before = flow.s2c
        t0 = time.monotonic()
        old, new = relay.rebind(flow)
        # The server answers the new port once it has seen an authentic packet there.
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
