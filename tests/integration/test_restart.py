"""The server dies mid-transfer; the client survives and reconnects to a new server."""

import contextlib
import signal
import socket
import threading
import time

import lib
from lib import LOOP, check

MiB = 1 << 20


@lib.timeout(240)
def test_server_killed_and_restarted(env):
    srv, c = env.pair()
    source = env.bulk_server(source=(5, None))   # endless download
    idle = env.bulk_server()
    socks = [lib.socks_open(c.socks, LOOP, source.port, timeout=30) for _ in range(2)]
    socks.append(lib.socks_open(c.socks, LOOP, idle.port, timeout=30))
    ended = {}
    got = [0, 0]

    def reader(i):
        s = socks[i]
        try:
            while True:
                s.settimeout(5)
                try:
                    d = s.recv(MiB)
                except TimeoutError:
                    if "kill" in ended and time.monotonic() - ended["kill"] > 60:
                        ended[i] = ("timeout", None)
                        return
                    continue
                if not d:
                    ended[i] = ("eof", time.monotonic())
                    return
                if i < 2:
                    got[i] += len(d)
        except OSError as e:
            ended[i] = (type(e).__name__, time.monotonic())

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    try:
        lib.wait_until(lambda: min(got) > 2 * MiB, 30, "both downloads to be flowing")
        srv.signal(signal.SIGKILL)
        ended["kill"] = time.monotonic()
        check(srv.wait_exit(5) is not None, "server did not die on SIGKILL")
        lib.wait_until(lambda: all(i in ended for i in range(3)), 65,
                       "the app sockets to be closed after the server died")
        for i in range(3):
            kind, t = ended[i]
            check(t is not None, f"app socket {i} still open 60s after the server died")
            dt = t - ended["kill"]
            lib.info(f"app socket {i} ({'download' if i < 2 else 'idle'}): {kind} {dt:.1f}s after kill")
            check(dt <= 40, f"app socket {i} closed only {dt:.1f}s after the server died")
        check(c.alive(), "client exited after the server died")

        env.start_server(proxy=True, allow=("127.0.0.0/8",), port=srv.port, name="server2")
        t0 = time.monotonic()
        ex = env.exchange_server()
        last, tries = None, 0
        while time.monotonic() - t0 < 60:
            tries += 1
            try:
                lib.exchange(c.socks, ex.addr, 4096, 4096, tries, timeout=10)
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
    finally:
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
