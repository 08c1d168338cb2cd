"""Data integrity and fairness: many concurrent streams, a paused stream, one big stream."""

import hashlib
import random
import socket
import threading
import time

import lib
from lib import LOOP, check

MiB = 1 << 20


@lib.timeout(300)
def test_100_concurrent_exchanges(env):
    _, c = env.pair()
    ex = env.exchange_server()
    r = random.Random(100)
    jobs = [(c.socks, ex.addr, r.randint(1024, MiB), r.randint(1024, MiB), i, 180)
            for i in range(100)]
    t0 = time.monotonic()
    res = lib.run_parallel(lib.exchange, jobs, 240)
    dt = time.monotonic() - t0
    check(all(e is None for e in res), lib.summarize_errors(res) + f"; server errors: {ex.errors[:3]}")
    total = sum(j[2] + j[3] for j in jobs)
    lib.info(f"100 exchanges, {total / MiB:.0f} MiB total, in {dt:.1f}s ({total / MiB / dt:.1f} MiB/s)")
    check(c.alive(), "client died")


def _others_finish(env, c, ex, n=20, size=MiB, bound=30):
    jobs = [(c.socks, ex.addr, size, size, 1000 + i, 60) for i in range(n)]
    t0 = time.monotonic()
    res = lib.run_parallel(lib.exchange, jobs, bound + 30)
    dt = time.monotonic() - t0
    check(all(e is None for e in res), "while one stream was paused: " + lib.summarize_errors(res))
    check(dt <= bound, f"{n} exchanges took {dt:.1f}s while one stream was paused (bound {bound}s)")
    lib.info(f"{n} other exchanges of {size // 1024} KiB each way finished in {dt:.1f}s")


@lib.timeout(180)
def test_paused_app_reader(env):
    """The app stops reading one connection while the target sends 32 MiB on it."""
    size = 32 * MiB
    _, c = env.pair()
    ex = env.exchange_server()
    src = env.bulk_server(source=(7, size), sndbuf=64 * 1024)
    s = lib.socks_open(c.socks, LOOP, src.port, rcvbuf=64 * 1024, timeout=60)
    try:
        rec = src.wait_records(1, 15)[0]
        stuck = lib.stalled(lambda: rec["sent"], quiet=2, secs=60)
        lib.info(f"paused stream: target got {stuck / MiB:.1f} MiB out before blocking")
        check(stuck < size, f"the target sent all {size} bytes to an app that does not read: "
                            "the tunnel buffered everything (no per-stream flow control?)")
        _others_finish(env, c, ex)
        check(rec["sent"] < size, "paused stream finished while paused?")
        # resume: read everything and check it
        h = hashlib.sha256()
        got = 0
        s.settimeout(60)
        while True:
            d = s.recv(MiB)
            if not d:
                break
            h.update(d)
            got += len(d)
        check(got == size, f"resumed stream: got {got} bytes, want {size}")
        check(h.hexdigest() == lib.payload_digest(7, size).hex(), "resumed stream: sha256 mismatch")
    finally:
        s.close()


@lib.timeout(180)
def test_paused_target_reader(env):
    """The target stops reading one connection while the app sends 32 MiB on it."""
    size = 32 * MiB
    _, c = env.pair()
    ex = env.exchange_server()
    sink = env.bulk_server(paused=True, rcvbuf=64 * 1024)
    s = lib.socks_open(c.socks, LOOP, sink.port, sndbuf=64 * 1024, timeout=120)
    prog = {"sent": 0, "sha": None, "err": None}

    def sender():
        try:
            h = hashlib.sha256()
            for d in lib.gen(8, size):
                s.sendall(d)
                h.update(d)
                prog["sent"] += len(d)
            prog["sha"] = h.hexdigest()
            s.shutdown(socket.SHUT_WR)
        except Exception as e:
            prog["err"] = e

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    try:
        rec = sink.wait_records(1, 15)[0]
        stuck = lib.stalled(lambda: prog["sent"], quiet=2, secs=60)
        lib.info(f"paused stream: app got {stuck / MiB:.1f} MiB out before blocking")
        check(stuck < size, "the app sent all 32 MiB to a target that does not read: "
                            "the tunnel buffered everything (no per-stream flow control?)")
        _others_finish(env, c, ex)
        check(rec["bytes"] == 0, "paused target read data?")
        sink.resume()
        t.join(90)
        check(not t.is_alive(), "app sender did not finish after resume")
        check(prog["err"] is None, f"app sender failed: {prog['err']}")
        check(rec["done"].wait(60), "target did not see EOF after resume")
        check(rec["error"] is None, f"target error: {rec['error']}")
        check(rec["bytes"] == size, f"target got {rec['bytes']} bytes, want {size}")
        check(rec["sha256"] == prog["sha"], "resumed stream: sha256 mismatch")
    finally:
        s.close()


@lib.timeout(300)
def test_1gib_one_stream(env):
    """1 GiB app -> target on one stream, hashed on both ends."""
    n_blocks = 1024
    _, c = env.pair()
    sink = env.bulk_server()
    r = random.Random(1)
    pool = [r.randbytes(MiB) for _ in range(32)]
    s = lib.socks_open(c.socks, LOOP, sink.port, timeout=120)
    try:
        h = hashlib.sha256()
        t0 = time.monotonic()
        for _ in range(n_blocks):
            b = pool[r.randrange(len(pool))]
            s.sendall(b)
            h.update(b)
        s.shutdown(socket.SHUT_WR)
        rec = sink.wait_records(1, 10)[0]
        check(rec["done"].wait(120), f"target saw no EOF (got {rec['bytes']} bytes)")
        dt = time.monotonic() - t0
        check(rec["error"] is None, f"target error: {rec['error']}")
        check(rec["bytes"] == n_blocks * MiB, f"target got {rec['bytes']} bytes, want {n_blocks * MiB}")
        check(rec["sha256"] == h.hexdigest(), "1 GiB sha256 mismatch")
        lib.info(f"1 GiB in {dt:.1f}s: {n_blocks * MiB / 1e6 / dt:.1f} MB/s")
        s.settimeout(10)
        check(s.recv(1) == b"", "expected EOF from the target side")
    finally:
        s.close()


@lib.timeout(180)
def test_tcp_carrier_bulk_and_exchanges(env):
    """Over the TCP carrier (SCTP's window and loss recovery relaxed there): 128 MiB on
    one stream hashed at the target, while 20 exchanges run next to it, hashes intact."""
    port = lib.free_port()
    srv = env.spawn("server", [lib.BIN, "server", "--listen", f"tcp://{LOOP}:{port}",
                               "--key", env.key_path, "--proxy", "--allow", "127.0.0.0/8"])
    check(srv.wait_log("listening on tcp://", 15), f"server did not start: {srv.tail()}")
    socks = lib.free_port()
    c = env.spawn("client", [lib.BIN, "client", "--server", f"tcp://{LOOP}:{port}",
                             "--cert", env.cert, "--socks", f"{LOOP}:{socks}"])
    c.socks = socks
    lib.wait_until(lambda: lib.tcp_port_open(socks), 10, "client SOCKS port")
    check(c.wait_log("association up", 20), f"no association over TCP: {c.tail()}")
    ex = env.exchange_server()
    sink = env.bulk_server()
    r = random.Random(11)
    jobs = [(c.socks, ex.addr, r.randint(1024, MiB), r.randint(1024, MiB), i, 120)
            for i in range(20)]
    res = {}
    t = threading.Thread(target=lambda: res.update(r=lib.run_parallel(lib.exchange, jobs, 150)),
                         daemon=True)
    t.start()
    n_blocks = 128
    pool = [r.randbytes(MiB) for _ in range(8)]
    s = lib.socks_open(c.socks, LOOP, sink.port, timeout=120)
    try:
        h = hashlib.sha256()
        t0 = time.monotonic()
        for _ in range(n_blocks):
            b = pool[r.randrange(len(pool))]
            s.sendall(b)
            h.update(b)
        s.shutdown(socket.SHUT_WR)
        rec = sink.wait_records(1, 10)[0]
        check(rec["done"].wait(120), f"target saw no EOF (got {rec['bytes']} bytes)")
        dt = time.monotonic() - t0
        check(rec["error"] is None, f"target error: {rec['error']}")
        check(rec["bytes"] == n_blocks * MiB, f"target got {rec['bytes']} bytes")
        check(rec["sha256"] == h.hexdigest(), "sha256 mismatch over the TCP carrier")
        lib.info(f"{n_blocks} MiB over the TCP carrier in {dt:.1f}s: "
                 f"{n_blocks * MiB / 1e6 / dt:.1f} MB/s")
    finally:
        s.close()
    t.join(150)
    check("r" in res and all(e is None for e in res["r"]),
          lib.summarize_errors(res.get("r", [lib.TestFailure("no result")])))
    check(c.alive() and srv.alive(), "a process died")
