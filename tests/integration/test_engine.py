"""The native SCTP engine (--sctp-engine native) against itself and against usrsctp, in both
roles: hashed transfers both ways, 100 concurrent streams, half-close, abort of one stream while
others run, a restarted server; then the same transfers through `sctpt-lab impair` at 2% loss."""

import contextlib
import hashlib
import random
import signal
import socket
import struct
import time

import lib
from lib import LOOP, check
from test_impair import udp_impair

MiB = 1 << 20

COMBOS = (("native", "native"), ("native", "usrsctp"), ("usrsctp", "native"))


def _eng(name):
    return ["--sctp-engine", name]


def _transfers(c, ex, big=4 * MiB, n=100, seed=0, secs=120):
    """Two big exchanges both ways and n-2 small ones at once: n streams."""
    r = random.Random(seed)
    jobs = [(c.socks, ex.addr, big, big, seed + 1, secs), (c.socks, ex.addr, big, big, seed + 2, secs)]
    jobs += [(c.socks, ex.addr, r.randint(1, 64 << 10), r.randint(1, 64 << 10), seed + 3 + i, secs)
             for i in range(n - 2)]
    t0 = time.monotonic()
    res = lib.run_parallel(lib.exchange, jobs, secs + 30)
    dt = time.monotonic() - t0
    check(all(e is None for e in res), lib.summarize_errors(res) + f"; server errors: {ex.errors[:3]}")
    total = sum(j[2] + j[3] for j in jobs)
    lib.info(f"{n} exchanges, {total / MiB:.1f} MiB, {dt:.1f}s")


def _half_close_app_first(c, ex, seed):
    """The app sends, shuts its write side, and still gets the whole answer."""
    n, m = 256 << 10, 512 << 10
    s = lib.socks_open(c.socks, ex.addr[0], ex.addr[1], timeout=30)
    try:
        s.settimeout(30)
        s.sendall(struct.pack("!QQQ", n, m, seed))
        h = hashlib.sha256()
        for chunk in lib.gen(2 * seed, n):
            s.sendall(chunk)
            h.update(chunk)
        s.shutdown(socket.SHUT_WR)
        got = lib.recv_exact(s, m)
        check(hashlib.sha256(got).digest() == lib.payload_digest(2 * seed + 1, m),
              "half-close: answer hash mismatch")
        check(lib.recv_exact(s, 32) == h.digest(), "half-close: the target got other bytes")
        check(s.recv(1) == b"", "half-close: no EOF after the answer")
    finally:
        s.close()


def _abort_one(env, c, ex, seed):
    """RST one downloading stream while 20 exchanges run; they all finish."""
    src = env.bulk_server(source=(seed, None))
    s = lib.socks_open(c.socks, LOOP, src.port, timeout=30)
    s.settimeout(30)
    lib.recv_exact(s, MiB)
    jobs = [(c.socks, ex.addr, 256 << 10, 256 << 10, seed + 10 + i, 60) for i in range(20)]
    lib.set_linger0(s)
    s.close()
    res = lib.run_parallel(lib.exchange, jobs, 90)
    check(all(e is None for e in res), "after an abort: " + lib.summarize_errors(res))


def _restart(env, srv, c, ex, server_engine):
    srv.signal(signal.SIGKILL)
    check(srv.wait_exit(5) is not None, "server did not die on SIGKILL")
    env.start_server(proxy=True, allow=("127.0.0.0/8",), port=srv.port, name="server2",
                     extra=_eng(server_engine))
    t0 = time.monotonic()
    last, tries = None, 0
    while time.monotonic() - t0 < 60:
        tries += 1
        try:
            lib.exchange(c.socks, ex.addr, 4096, 4096, 500 + tries, timeout=10)
            break
        except (lib.TestFailure, lib.SocksError, OSError) as e:
            last = e
            time.sleep(1)
    else:
        raise lib.TestFailure(f"no working connection 60s after the server restart "
                              f"({tries} tries, last: {type(last).__name__}: {last})")
    dt = time.monotonic() - t0
    lib.info(f"first good connection {dt:.1f}s after the restart ({tries} tries)")
    check(dt <= 45, f"client needed {dt:.1f}s to use the restarted server")
    lib.exchange(c.socks, ex.addr, MiB, MiB, 999)


def _check_engine(p, engine):
    native = "sctp: native engine" in p.log_text()
    check(native == (engine == "native"), f"{p.name}: runs the wrong engine (want {engine})")


def _combo(env, client_engine, server_engine):
    srv, c = env.pair(server_extra=_eng(server_engine), client_extra=_eng(client_engine))
    _check_engine(srv, server_engine)
    _check_engine(c, client_engine)
    ex = env.exchange_server()
    _transfers(c, ex, seed=1000)
    _half_close_app_first(c, ex, 77)
    _abort_one(env, c, ex, 2000)
    _restart(env, srv, c, ex, server_engine)
    check(c.alive(), "client died")


@lib.timeout(150)
def test_native_client_native_server(env):
    _combo(env, "native", "native")


@lib.timeout(150)
def test_native_client_usrsctp_server(env):
    _combo(env, "native", "usrsctp")


@lib.timeout(150)
def test_usrsctp_client_native_server(env):
    _combo(env, "usrsctp", "native")


@lib.timeout(200)
def test_engines_under_loss(env):
    """Each pairing through impair at 2% loss each way: hashed transfers on 30 streams."""
    for ce, se in COMBOS:
        srv = env.start_server(proxy=True, allow=("127.0.0.0/8",), extra=_eng(se),
                               name=f"server-{ce}-{se}")
        imp = udp_impair(env, srv.port, "--seed", "3", "--c2s-loss", "0.02", "--s2c-loss", "0.02",
                         name=f"impair-{ce}-{se}")
        c = env.start_client(imp.port, extra=_eng(ce), name=f"client-{ce}-{se}")
        _check_engine(srv, se)
        _check_engine(c, ce)
        ex = env.exchange_server()
        _transfers(c, ex, big=2 * MiB, n=30, seed=3000, secs=90)
        st = imp.stats()
        check(st["c2s"]["dropped_loss"] > 0 and st["s2c"]["dropped_loss"] > 0,
              f"impair dropped nothing: {st['c2s']['dropped_loss']} / {st['s2c']['dropped_loss']}")
        check(c.alive() and srv.alive(), f"{ce} client / {se} server died under loss")


def test_bad_engine_refused(env):
    rc, _, err = lib.run_cmd([lib.BIN, "client", "--server", f"udp://{LOOP}:9",
                              "--cert", env.cert, "--sctp-engine", "bogus"], 5)
    check(rc != 0 and "sctp-engine" in err, f"bad engine accepted: rc {rc} {err!r}")


@lib.timeout(60)
def test_managed_engine_options(env):
    """Managed mode: `sctp-engine=native` as a server transport option, `--sctp-engine native`
    as a client plugin argument; a bad value is an SMETHOD-ERROR."""
    import os
    import re

    import test_managed as tm

    ext = env.add(tm.ExtOrServer(os.path.join(env.dir, "cookie")))
    srv = tm.start_pt_server(env, extor=ext.port, cookie=ext.cookie_path,
                             options="sctp:sctp-engine=native")
    cli = tm.ManagedProc(env, "ptclient", tm.pt_client_env(env, os.path.join(env.dir, "cst")),
                         args=["--sctp-engine", "native"])
    check(cli.wait_out("CMETHODS DONE", 15), f"ptclient: no CMETHODS DONE:\n{cli.tail()}")
    m = re.search(r"^CMETHOD sctp socks5 127\.0\.0\.1:(\d+)$", cli.out_text(), re.M)
    check(m is not None, f"no CMETHOD line: {cli.out_text()!r}")
    s, code = tm.tor_socks(int(m.group(1)), srv.port, f"cert={srv.cert}")
    check(code == 0, f"SOCKS code {code}\n{cli.tail()}")
    tm.echo_check(s)
    s.close()
    for p in (srv, cli):
        check("sctp: native engine" in p.log_text(), f"{p.name} does not run the native engine")
    rc, out, err = tm.run_once({"TOR_PT_MANAGED_TRANSPORT_VER": "1",
                                "TOR_PT_STATE_LOCATION": os.path.join(env.dir, "st"),
                                "TOR_PT_SERVER_TRANSPORTS": "sctp", "TOR_PT_ORPORT": "127.0.0.1:9",
                                "TOR_PT_SERVER_BINDADDR": f"sctp-127.0.0.1:{lib.free_port(udp=True)}",
                                "TOR_PT_SERVER_TRANSPORT_OPTIONS": "sctp:sctp-engine=bogus"})
    check(rc != 0 and "SMETHOD-ERROR sctp" in out, f"bad sctp-engine=: rc={rc} out={out!r}")


@lib.timeout(60)
def test_native_smallest_mtu(env):
    """--mtu 576 (the smallest sctpt takes) with the native engine at both ends and mixed."""
    for ce, se in COMBOS:
        _, c = env.pair(server_extra=_eng(se) + ["--mtu", "576"],
                        client_extra=_eng(ce) + ["--mtu", "576"])
        ex = env.exchange_server()
        lib.exchange(c.socks, ex.addr, MiB, MiB, 4000)


@lib.timeout(90)
def test_pipelined_socks_reply_order(env):
    """Greeting and CONNECT in one write: the method reply must precede the CONNECT reply.  The
    native engine answers OPEN fast enough that the reply once overtook the method reply still
    queued in the relay (1 in ~50 connections on loopback)."""
    _, c = env.pair(server_extra=_eng("native"), client_extra=_eng("native"))
    ex = env.exchange_server()
    req = (b"\x05\x01\x00" + b"\x05\x01\x00\x01" + socket.inet_aton(ex.addr[0]) +
           struct.pack(">H", ex.addr[1]))
    want = b"\x05\x00\x05\x00\x00\x01"
    t0, n = time.monotonic(), 0
    while n < 600 and time.monotonic() - t0 < 40:
        s = socket.create_connection((LOOP, c.socks), 10)
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(req)
            got = lib.recv_exact(s, 12)
            check(got[:6] == want, f"connection {n}: replies out of order: {got.hex()}")
        finally:
            s.close()
        n += 1
    lib.info(f"{n} pipelined connections, replies in order")
    check(n >= 100, f"only {n} connections in 40 s")


@lib.timeout(280)
def test_congestion_controllers_under_loss(env):
    """Each native controller (and the fixed rate) carries hashed transfers on 20 streams through
    impair at 2% loss each way, and logs its name in the association summary; a bad name is
    refused."""
    for name, opt in (("newreno", ["--congestion-control", "newreno"]),
                      ("cubic", ["--congestion-control", "cubic"]),
                      ("bbr", ["--congestion-control", "bbr"]),
                      ("fixed", ["--bandwidth", "50"])):
        extra = _eng("native") + opt
        srv = env.start_server(proxy=True, allow=("127.0.0.0/8",), extra=extra + ["-v"],
                               name=f"server-{name}")
        imp = udp_impair(env, srv.port, "--seed", "5", "--c2s-loss", "0.02", "--s2c-loss", "0.02",
                         name=f"impair-{name}")
        c = env.start_client(imp.port, extra=extra + ["-v"], name=f"client-{name}")
        ex = env.exchange_server()
        _transfers(c, ex, big=1 * MiB, n=20, seed=4000, secs=90)
        check(c.alive() and srv.alive(), f"{name}: died under loss")
        for p in (c, srv):
            check(f"congestion control {name}" in p.log_text(), f"{p.name}: not running {name}")
    rc, _, err = lib.run_cmd([lib.BIN, "client", "--server", f"udp://{LOOP}:9",
                              "--cert", env.cert, "--congestion-control", "vegas"], 5)
    check(rc != 0 and "congestion-control" in err, f"bad controller accepted: rc {rc} {err!r}")
