"""Stream lifecycle: half-close in each direction, abort (RST) in each direction."""

import hashlib
import os
import socket
import threading
import time

import lib
from lib import LOOP, check

MiB = 1 << 20


def test_half_close_app_first(env):
    """App sends a request and shuts down writing; the target reads to EOF, then answers 4 MiB."""
    req, resp = 100_000, 4 * MiB
    _, c = env.pair()
    srv = env.bulk_server(respond=(21, resp))
    s = lib.socks_open(c.socks, LOOP, srv.port, timeout=60)
    try:
        h = hashlib.sha256()
        for d in lib.gen(20, req):
            s.sendall(d)
            h.update(d)
        s.shutdown(socket.SHUT_WR)
        got, hr = 0, hashlib.sha256()
        while True:
            d = s.recv(MiB)
            if not d:
                break
            hr.update(d)
            got += len(d)
        rec = srv.wait_records(1, 5)[0]
        check(rec["done"].wait(10), "target handler did not finish")
        check(rec["error"] is None and rec["send_error"] is None,
              f"target error: {rec['error'] or rec['send_error']}")
        check(rec["bytes"] == req and rec["sha256"] == h.hexdigest(),
              f"target got {rec['bytes']} bytes of the {req}-byte request (or hash mismatch)")
        check(got == resp, f"app got {got} bytes of the {resp}-byte response before EOF")
        check(hr.digest() == lib.payload_digest(21, resp), "response sha256 mismatch")
    finally:
        s.close()


def test_half_close_target_first(env):
    """The target sends 1 MiB and shuts down writing; the app reads to EOF, then sends 4 MiB."""
    down, up = MiB, 4 * MiB
    _, c = env.pair()
    srv = env.bulk_server(source=(30, down))
    s = lib.socks_open(c.socks, LOOP, srv.port, timeout=60)
    try:
        got, hr = 0, hashlib.sha256()
        while True:
            d = s.recv(MiB)
            if not d:
                break
            hr.update(d)
            got += len(d)
        check(got == down and hr.digest() == lib.payload_digest(30, down),
              f"app got {got} of {down} bytes before EOF (or hash mismatch)")
        h = hashlib.sha256()
        for d in lib.gen(31, up):
            s.sendall(d)
            h.update(d)
        s.shutdown(socket.SHUT_WR)
        rec = srv.wait_records(1, 5)[0]
        check(rec["done"].wait(60), f"target did not see EOF (got {rec['bytes']} bytes)")
        check(rec["error"] is None, f"target error: {rec['error']}")
        check(rec["bytes"] == up and rec["sha256"] == h.hexdigest(),
              f"target got {rec['bytes']} of {up} bytes after its own FIN (or hash mismatch)")
    finally:
        s.close()


def test_abort_from_target(env):
    """The target resets (SO_LINGER 0 + close): the app sees the connection end promptly."""
    _, c = env.pair()
    reset_at = {}

    def handler(conn):
        check(lib.recv_exact(conn, 5) == b"hello", "target: bad greeting")
        conn.sendall(b"world")
        time.sleep(0.5)
        lib.set_linger0(conn)
        reset_at["t"] = time.monotonic()
        conn.close()

    srv = env.add(lib.TCPServerThread(handler))
    s = lib.socks_open(c.socks, LOOP, srv.port, timeout=30)
    try:
        s.sendall(b"hello")
        check(lib.recv_exact(s, 5) == b"world", "app: bad answer")
        kind, _ = lib.wait_closed(s, 15)
        dt = time.monotonic() - reset_at["t"]
        lib.info(f"app saw {kind} {dt:.2f}s after the target's reset")
        check(dt <= 5, f"app saw the target's reset only after {dt:.1f}s")
        check(not srv.errors, f"target handler errors: {srv.errors}")
    finally:
        s.close()
    check(c.alive(), "client died")


def test_abort_from_app(env):
    """The app resets: the target sees EOF or reset promptly."""
    _, c = env.pair()
    seen = {}
    got_hello = threading.Event()

    def handler(conn):
        check(lib.recv_exact(conn, 5) == b"hello", "target: bad greeting")
        got_hello.set()
        seen["kind"], _ = lib.wait_closed(conn, 30)
        seen["t"] = time.monotonic()

    srv = env.add(lib.TCPServerThread(handler))
    s = lib.socks_open(c.socks, LOOP, srv.port, timeout=30)
    s.sendall(b"hello")
    check(got_hello.wait(15), "target never got the greeting")
    lib.set_linger0(s)
    t0 = time.monotonic()
    s.close()
    lib.wait_until(lambda: "t" in seen or srv.errors, 15, "the target to see the app's reset")
    check(not srv.errors, f"target: {srv.errors}")
    dt = seen["t"] - t0
    lib.info(f"target saw {seen['kind']} {dt:.2f}s after the app's reset")
    check(dt <= 5, f"target saw the app's reset only after {dt:.1f}s")
    # the client keeps serving
    ex = env.exchange_server()
    lib.exchange(c.socks, ex.addr, 4096, 4096, 1)


def test_stream_fault_isolated(env):
    """Fault injection (-Dfault_injection): the server cannot create the events of its first
    stream. That stream fails with a SOCKS error instead of hanging; the next ones work."""
    os.environ["SCTPT_FAULT"] = "mux_event_new:1"
    try:
        srv = env.start_server(proxy=True, allow=("127.0.0.0/8",))
    finally:
        del os.environ["SCTPT_FAULT"]
    c = env.start_client(srv.port)
    ex = env.exchange_server()
    try:
        lib.exchange(c.socks, ex.addr, 4096, 4096, 1, timeout=15)
        lib.info("this sctpt is built without fault injection; nothing failed")
        return
    except lib.SocksError as e:
        check(e.code == 0x01, f"first stream: SOCKS reply {e.code:#x}, wanted 0x01")
    check(srv.wait_log("out of memory attaching its connection", 5), "server did not log the fault")
    for seed in (2, 3):
        lib.exchange(c.socks, ex.addr, 65536, 65536, seed)
    check(srv.alive() and c.alive(), "a process died")
