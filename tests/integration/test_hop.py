"""UDP port hopping (issue 16; docs/PROTOCOL.md "Port hopping"): the server listens on a port
range, the client moves to another random port of it every --hop-interval, through the path
migration, and no connection is reset: one long-lived connection carries hashed data across all
hops while new connections come and go."""

import hashlib
import random
import re
import socket
import threading
import time

import lib
from lib import LOOP, check, info

NPORTS = 64


def free_range(n):
    """n consecutive free UDP ports on LOOP (checked by binding; bounded retries)."""
    for _ in range(50):
        base = random.randint(20000, 60000 - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((LOOP, p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise lib.TestFailure("no free UDP port range")


class Echo(lib.TCPServerThread):
    """Echoes everything back until EOF."""

    def __init__(self):
        super().__init__(self._handle)

    def _handle(self, c):
        while True:
            d = c.recv(1 << 16)
            if not d:
                break
            c.sendall(d)
        c.shutdown(socket.SHUT_WR)


def long_echo(socks_port, dest, secs, res):
    """One connection for secs: 32 KiB every 40 ms, each checked as it comes back."""
    sent = got = 0
    try:
        s = lib.socks_open(socks_port, dest[0], dest[1], timeout=30)
        s.settimeout(30)
        hs, hr = hashlib.sha256(), hashlib.sha256()
        end = time.monotonic() + secs
        rng = random.Random(5)
        while time.monotonic() < end:
            chunk = rng.randbytes(32 << 10)
            s.sendall(chunk)
            hs.update(chunk)
            sent += len(chunk)
            while got < sent:
                d = s.recv(min(1 << 16, sent - got))
                if not d:
                    raise lib.TestFailure(f"echo connection ended after {got} bytes")
                hr.update(d)
                got += len(d)
            time.sleep(0.04)
        s.shutdown(socket.SHUT_WR)
        check(s.recv(1) == b"", "extra bytes after the echo")
        s.close()
        res["ok"] = hs.digest() == hr.digest()
    except Exception as e:      # reported by the test thread
        res["error"] = e
    res["bytes"] = got


@lib.timeout(120)
def test_port_hopping_keeps_connections(env):
    """Server on 64 ports, client --hop-interval 2: over ~20 s the server follows the client to
    at least 5 distinct ports of the range; a connection open the whole time echoes every byte
    intact, and fresh hashed exchanges succeed along the way."""
    base = free_range(NPORTS)
    rng = f"{base}-{base + NPORTS - 1}"
    srv = env.spawn("server", [lib.BIN, "server", "--listen", f"udp://{LOOP}:{rng}",
                               "--key", env.key_path, "--proxy", "--allow", "127.0.0.0/8",
                               "-v"])
    check(srv.wait_log(f"listening on udp://{LOOP}:{rng}", 15), "server did not listen")
    socks_port = lib.free_port()
    c = env.spawn("client", [lib.BIN, "client", "--server", f"udp://{LOOP}:{rng}",
                             "--cert", env.cert, "--socks", f"{LOOP}:{socks_port}",
                             "--hop-interval", "2", "-v"])
    check(c.wait_log("association up", 20), "client: no association")
    echo = env.add(Echo())
    ex = env.exchange_server()
    res = {}
    t = threading.Thread(target=long_echo, args=(socks_port, echo.addr, 20, res), daemon=True)
    t.start()
    n_ex = 0
    t_end = time.monotonic() + 20
    while time.monotonic() < t_end:
        lib.exchange(socks_port, ex.addr, 200_000, 400_000, 100 + n_ex)
        n_ex += 1
        time.sleep(1.0)
    t.join(40)
    check(not t.is_alive(), "the long connection did not finish")
    if "error" in res:
        raise res["error"]
    check(res.get("ok"), "the long connection's echo differs from what was sent")
    hops = re.findall(r"port hopping: path 1 now goes to port (\d+)", c.log_text())
    moved = set(re.findall(r"moved to another path \(UDP, our port (\d+)\)", srv.log_text()))
    info(f"{len(hops)} hops by the client; the server followed it to {len(moved)} distinct "
         f"ports {sorted(moved)}; long connection {res['bytes']} bytes echoed intact; "
         f"{n_ex} exchanges ok")
    check(len(hops) >= 5, f"only {len(hops)} hops in 20 s at --hop-interval 2")
    check(len(moved) >= 5, f"the server saw the client on only {len(moved)} new ports")
    check(all(base <= int(p) < base + NPORTS for p in moved), "a port outside the range")
    check(srv.alive() and c.alive(), "a process died")


@lib.timeout(30)
def test_port_range_syntax(env):
    """Strict range syntax on both sides: descending, too long, TCP ranges, junk are refused
    with a message, and so is --hop-interval 1."""
    bad = ["udp://127.0.0.1:5000-4000", "udp://127.0.0.1:1000-2024", "tcp://127.0.0.1:1-2",
           "udp://127.0.0.1:01-5", "udp://127.0.0.1:5-", "udp://127.0.0.1:-5",
           "udp://127.0.0.1:5-6-7", "udp://127.0.0.1:5 -6", "udp://127.0.0.1:0-5"]
    for url in bad:
        rc, _, out = lib.run_cmd([lib.BIN, "server", "--listen", url, "--key", env.key_path,
                                  "--proxy"], 5)
        check(rc != 0 and "bad --listen" in out, f"server accepted --listen {url}: {out}")
        rc, _, out = lib.run_cmd([lib.BIN, "client", "--server", url, "--cert", env.cert,
                                  "--socks", f"{LOOP}:0"], 5)
        check(rc != 0 and "bad --server" in out, f"client accepted --server {url}: {out}")
    rc, _, _ = lib.run_cmd([lib.BIN, "client", "--server", "udp://127.0.0.1:5-9", "--cert",
                            env.cert, "--hop-interval", "1"], 5)
    check(rc != 0, "--hop-interval 1 accepted")
