"""Process lifecycle: SIGTERM handling and the command line."""

import signal
import time

import lib
from lib import BIN, LOOP, check


def _term(p, what):
    t0 = time.monotonic()
    p.signal(signal.SIGTERM)
    rc = p.wait_exit(5)
    check(rc is not None, f"{what} did not exit within 5s of SIGTERM")
    lib.info(f"{what} exited {time.monotonic() - t0:.2f}s after SIGTERM")
    check(rc == 0, f"{what} exited with status {rc} after SIGTERM, want 0")


def test_graceful_shutdown_client_first(env):
    srv, c = env.pair()
    ex = env.exchange_server()
    lib.exchange(c.socks, ex.addr, 65536, 65536, 1)
    idle = lib.socks_open(c.socks, LOOP, ex.port)   # an open stream during shutdown
    try:
        _term(c, "client")
        _term(srv, "server")
    finally:
        idle.close()


def test_graceful_shutdown_server_first(env):
    srv, c = env.pair()
    ex = env.exchange_server()
    idle = lib.socks_open(c.socks, LOOP, ex.port)
    try:
        _term(srv, "server")
        check(c.alive(), "client exited when the server shut down")
        _term(c, "client")
    finally:
        idle.close()


def test_cli_help(env):
    for sub, opts in (("server", ("--listen", "--target", "--proxy", "--allow", "--max-clients",
                                  "--max-conns", "--connect-timeout")),
                      ("client", ("--server", "--socks", "--max-conns", "--open-timeout"))):
        rc, out, err = lib.run_cmd([BIN, sub, "--help"])
        check(rc == 0, f"sctpt {sub} --help exited {rc}")
        missing = [o for o in opts if o not in out + err]
        check(not missing, f"sctpt {sub} --help does not mention {missing}")


def test_cli_bad_args(env):
    up, tp = lib.free_port(udp=True), lib.free_port()
    listen = f"udp://{LOOP}:{up}"
    cases = [
        [],
        ["no-such-command"],
        ["server", "--listen", listen, "--target", f"{LOOP}:{tp}", "--bogus"],
        ["server", "--listen", "udp://x", "--target", f"{LOOP}:{tp}"],
        ["server", "--listen", listen],
        ["server", "--target", f"{LOOP}:{tp}"],
        ["server", "--listen", listen, "--target", LOOP],
        ["server", "--listen", listen, "--proxy", "--allow", "not-a-cidr"],
        ["client", "--server", listen, "--socks", f"{LOOP}:{tp}", "--bogus"],
        ["client", "--server", "udp://x", "--socks", f"{LOOP}:{tp}"],
        ["client", "--socks", f"{LOOP}:{tp}"],
        ["client", "--server", listen, "--socks", f"{LOOP}:{tp}", "--max-conns", "lots"],
    ]
    bad = []
    for args in cases:
        rc, out, err = lib.run_cmd([BIN] + args)
        if rc <= 0 or not err.strip():
            bad.append(f"{' '.join(args) or '(no args)'} -> rc={rc}, stderr={err.strip()[:80]!r}")
    check(not bad, "bad command lines not rejected with a message: " + "; ".join(bad))
