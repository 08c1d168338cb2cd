"""Unreachable server, garbage datagrams, the client's connection limit."""

import contextlib
import hashlib
import os
import random
import socket
import threading
import time

import lib
from lib import LOOP, check

MiB = 1 << 20


def test_unreachable_server(env):
    """Nothing listens on the server's UDP port: SOCKS requests fail within ~8 s."""
    c = env.start_client(lib.free_port(udp=True), wait_assoc=False)
    for version in (5, 4):
        t0 = time.monotonic()
        s = lib.proxy_socket(c.socks, timeout=8)
        try:
            if version == 5:
                check(lib.socks5_greet(s) == 0, "method 0x00 not accepted")
                s.sendall(lib.socks5_request_bytes(LOOP, 9))
                rep, ok = lib.socks5_read_reply(s), 0
            else:
                s.sendall(lib.socks4_request_bytes(LOOP, 9))
                rep, ok = lib.socks4_read_reply(s), 0x5A
        except TimeoutError:
            raise lib.TestFailure(f"SOCKS{version}: no reply within 8s with the server unreachable")
        finally:
            s.close()
        dt = time.monotonic() - t0
        check(rep != ok, f"SOCKS{version}: success reply with no server")
        lib.info(f"SOCKS{version}: reply 0x{rep:02x} after {dt:.1f}s")
    check(c.alive(), "client died")


@lib.timeout(180)
def test_garbage_datagrams(env):
    """2000 random datagrams to the server's port during a transfer change nothing."""
    size = 256 * MiB
    srv, c = env.pair()
    sink = env.bulk_server()
    s = lib.socks_open(c.socks, LOOP, sink.port, timeout=60)
    prog = {"sent": 0, "sha": None, "err": None}

    def sender():
        try:
            h = hashlib.sha256()
            for d in lib.gen(3, size, 1 << 20):
                s.sendall(d)
                h.update(d)
                prog["sent"] += len(d)
            prog["sha"] = h.hexdigest()
            s.shutdown(socket.SHUT_WR)
        except Exception as e:
            prog["err"] = e

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    socks = []
    try:
        rec = sink.wait_records(1, 15)[0]
        lib.wait_until(lambda: rec["bytes"] > 4 * MiB, 30, "the transfer to start")
        r = random.Random(4)
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(5)]
        for g in socks:
            g.bind((LOOP, 0))
            g.setblocking(False)
        sent_during = 0
        for i in range(2000):
            with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                socks[i % 5].sendto(os.urandom(r.randint(1, 1500)), (LOOP, srv.port))
            if prog["sha"] is None:
                sent_during += 1
            if i % 100 == 99:
                time.sleep(0.01)
        lib.info(f"{sent_during} of 2000 garbage datagrams sent while the transfer was running")
        t.join(120)
        check(not t.is_alive(), f"transfer stuck at {prog['sent']} bytes")
        check(prog["err"] is None, f"app sender failed: {prog['err']}")
        check(rec["done"].wait(60), f"target saw no EOF (got {rec['bytes']} bytes)")
        check(rec["bytes"] == size and rec["sha256"] == prog["sha"],
              f"target got {rec['bytes']} of {size} bytes (or hash mismatch)")
        replies = 0
        for g in socks:
            with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                while g.recv(2048):
                    replies += 1
        lib.info(f"server answered {replies} datagrams to the garbage senders")
        check(srv.alive(), "server died")
        ex = env.exchange_server()
        lib.exchange(c.socks, ex.addr, MiB, MiB, 1)
        c2 = env.start_client(srv.port, name="client2")
        lib.exchange(c2.socks, ex.addr, MiB, MiB, 2)
    finally:
        s.close()
        for g in socks:
            g.close()


def _try_open(c, ex, secs=10):
    """Returns a SOCKS5-connected socket, or None if the client refused the connection."""
    try:
        return lib.socks_open(c.socks, LOOP, ex.port, timeout=secs)
    except lib.SocksError:
        return None
    except TimeoutError:
        raise lib.TestFailure(f"connection over the limit not refused within {secs}s")
    except (ConnectionError, lib.TestFailure):   # closed, reset, EOF mid-handshake
        return None


@lib.timeout(180)
def test_client_max_conns(env):
    limit = 20
    _, c = env.pair(client_extra=("--max-conns", str(limit)))
    ex = env.exchange_server()
    held, refused = [], 0
    try:
        for i in range(30):
            t0 = time.monotonic()
            s = _try_open(c, ex)
            if s is None:
                refused += 1
                check(time.monotonic() - t0 < 10, "refusal was not prompt")
            else:
                held.append(s)
        lib.info(f"{len(held)} accepted, {refused} refused")
        check(len(held) <= limit, f"{len(held)} connections accepted with --max-conns {limit}")
        check(len(held) == limit, f"only {len(held)} connections accepted with --max-conns {limit}")
        res = lib.run_parallel(lib.exchange, [(s, None, 4096, 4096, i) for i, s in enumerate(held)], 60)
        check(all(e is None for e in res), "held connections: " + lib.summarize_errors(res))
        held = []
        # after closing them, new connections succeed (allow time for the streams to close)
        end = time.monotonic() + 30
        while len(held) < limit:
            s = _try_open(c, ex)
            if s is None:
                check(time.monotonic() < end, f"only {len(held)} new connections accepted "
                                              "30s after closing the old ones")
                time.sleep(0.5)
                continue
            held.append(s)
        res = lib.run_parallel(lib.exchange, [(s, None, 4096, 4096, 50 + i) for i, s in enumerate(held)], 60)
        check(all(e is None for e in res), "new connections: " + lib.summarize_errors(res))
        held = []
        check(c.alive(), "client died")
    finally:
        for s in held:
            s.close()
