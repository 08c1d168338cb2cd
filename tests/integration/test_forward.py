"""Port forwards (docs/forwarding.md): -L and -R with hashed transfers both ways, reverse SOCKS
with curl, the server's --permit-listen / --gateway-ports / --max-listeners policy and the
client's --remote-allow, each refusal with its documented message, port 0 reporting, forwards
restored after a server restart and closed when the client goes away."""

import hashlib
import json
import os
import re
import signal
import socket
import threading
import time

import lib
from lib import BIN, LOOP, check
from test_curl import http_server

MiB = 1 << 20


def wait_listening(c, spec, secs=20, start=0):
    """The port the server reported for -R spec (from the client's log)."""
    pat = re.compile(r"remote forward -R " + re.escape(spec) +
                     r": the server listens on port (\d+)")
    found = {}

    def seen():
        m = pat.findall(c.log_text()[start:])
        if m:
            found["port"] = int(m[-1])
        return bool(m)

    lib.wait_until(seen, secs, f"the client to report -R {spec}")
    return found["port"]


def wait_log(p, needle, secs=20, start=0):
    check(p.wait_log(needle, secs, start), f"{p.name} did not log {needle!r} within {secs}s")


def fwd_exchange(port, ex, n, seed):
    """One hashed exchange of n bytes each way through a forward port."""
    s = socket.create_connection((LOOP, port), timeout=30)
    lib.exchange(s, ex.addr, n, n, seed)


def parallel_exchanges(port, ex, count, n, seed0):
    errs = []

    def one(i):
        try:
            fwd_exchange(port, ex, n, seed0 + i)
        except BaseException as e:      # reported below
            errs.append(e)

    ts = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    check(not any(t.is_alive() for t in ts), "parallel exchanges did not finish in 60s")
    check(not errs, f"{len(errs)} of {count} parallel exchanges failed: {errs[0]!r}"
          if errs else "")


def refused_at_once(port, secs=15):
    """Connect to a forward and expect it to be closed (reset or EOF) with no data."""
    try:
        s = socket.create_connection((LOOP, port), timeout=secs)
    except ConnectionResetError:
        return      # the refusal's reset came before connect() returned (a loaded machine)
    try:
        s.sendall(b"x" * 100)
        try:
            d = s.recv(100)
        except ConnectionResetError:
            return
        check(d == b"", f"expected the forward to close, got {d!r}")
    finally:
        s.close()


@lib.timeout(90)
def test_local_forward_transfers(env):
    """-L to a numeric host and to a name (resolved by the server), hashed both ways, one
    and four at once; the server's --proxy ACL applies as for SOCKS."""
    ex = env.exchange_server()
    p1, p2, p3 = lib.free_port(), lib.free_port(), lib.free_port()
    srv, c = env.pair(client_extra=["-L", f"{p1}:{LOOP}:{ex.port}",
                                    "--local-forward", f"{LOOP}:{p2}:localhost:{ex.port}",
                                    "-L", f"{p3}:10.255.255.1:{ex.port}", "-v"])
    wait_log(c, f"local forward -L {p1}:{LOOP}:{ex.port} listening on {LOOP}:{p1}")
    wait_log(c, f"listening on {LOOP}:{p2}")
    fwd_exchange(p1, ex, 4 * MiB, 1)
    fwd_exchange(p2, ex, 4 * MiB, 2)
    parallel_exchanges(p1, ex, 4, MiB, 10)
    check(ex.ok == 6, f"exchange server saw {ex.ok} complete exchanges, want 6")
    # 10.255.255.1 is private: the server's ACL (only 127.0.0.0/8 allowed) refuses it.
    start = len(c.log_text())
    refused_at_once(p3)
    wait_log(c, "connection failed at the server: not allowed by ruleset", start=start)


@lib.timeout(60)
def test_local_forward_target_mode(env):
    """With --target the server ignores the -L destination, as it does SOCKS's."""
    ex = env.exchange_server()
    p = lib.free_port()
    srv, c = env.pair(target=f"{LOOP}:{ex.port}",
                      client_extra=["-L", f"{p}:unused.invalid:9"])
    wait_log(c, f"listening on {LOOP}:{p}")
    fwd_exchange(p, ex, 2 * MiB, 3)


@lib.timeout(90)
def test_remote_forward_transfers_and_port0(env):
    """-R to a fixed port and to port 0; the allocated port is reported to the client and
    logged by the server, and both carry hashed transfers both ways."""
    ex = env.exchange_server()
    fixed = lib.free_port()
    srv, c = env.pair(server_extra=["--permit-listen", str(fixed), "--permit-listen", "0"],
                      client_extra=["-R", f"{fixed}:{LOOP}:{ex.port}",
                                    "--remote-forward", f"0:localhost:{ex.port}"])
    check(wait_listening(c, f"{fixed}:{LOOP}:{ex.port}") == fixed,
          "the fixed -R port was not the one asked for")
    p0 = wait_listening(c, f"0:localhost:{ex.port}")
    check(p0 != 0 and p0 != fixed, f"port 0 reported as {p0}")
    wait_log(srv, f"remote forward #1 listening on {LOOP}:{fixed}")
    wait_log(srv, f"remote forward #2 listening on {LOOP}:{p0}")
    fwd_exchange(fixed, ex, 4 * MiB, 4)
    fwd_exchange(p0, ex, 4 * MiB, 5)
    parallel_exchanges(p0, ex, 4, MiB, 20)
    check(ex.ok == 6, f"exchange server saw {ex.ok} complete exchanges, want 6")


@lib.timeout(90)
def test_reverse_socks_curl(env):
    """-R PORT without a destination: the server's port is a SOCKS/HTTP proxy whose
    connections this client makes; internal destinations need --remote-allow."""
    hport, sha = http_server(env)
    srv = env.start_server(proxy=True, extra=["--permit-listen", "0"])
    open_c = env.start_client(srv.port, extra=["-R", "0", "--remote-allow", "127.0.0.0/8"],
                              name="client-allow")
    strict_c = env.start_client(srv.port, extra=["-R", "0"], name="client-strict")
    p_open = wait_listening(open_c, "0")
    p_strict = wait_listening(strict_c, "0")
    url = f"http://{LOOP}:{hport}/data.bin"
    for args in (["--socks5-hostname", f"{LOOP}:{p_open}"], ["--socks5", f"{LOOP}:{p_open}"],
                 ["-x", f"http://{LOOP}:{p_open}"]):
        out = os.path.join(env.dir, "curl.out")
        rc, _, err = lib.run_cmd(["curl", "-sS", "--fail", "--max-time", "30", "-o", out]
                                 + args + [f"http://localhost:{hport}/data.bin"
                                           if "hostname" in args[0] else url], secs=45)
        check(rc == 0, f"curl {args} through reverse SOCKS failed (rc={rc}): {err[-300:]}")
        with open(out, "rb") as f:
            check(hashlib.sha256(f.read()).hexdigest() == sha, "reverse SOCKS download mismatch")
    # Without --remote-allow the client refuses loopback: SOCKS reply 0x02.
    s = socket.create_connection((LOOP, p_strict), timeout=15)
    try:
        lib.socks5_greet(s)
        s.sendall(lib.socks5_request_bytes(LOOP, hport))
        rep = lib.socks5_read_reply(s)
        check(rep == 2, f"want SOCKS reply 0x02 (not allowed by the client), got {rep}")
    finally:
        s.close()
    rc, _, err = lib.run_cmd(["curl", "-sS", "--fail", "--max-time", "20", "-o", os.devnull,
                              "-x", f"http://{LOOP}:{p_strict}", url], secs=30)
    check(rc != 0 and "403" in err, f"curl via the strict client: want HTTP 403, got rc={rc} "
          f"{err[-200:]!r}")


@lib.timeout(90)
def test_remote_forward_refusals(env):
    """Every refusal reaches the client with the documented message and code."""
    ex = env.exchange_server()
    permitted, other, busy_port = lib.free_port(), lib.free_port(), lib.free_port()
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind((LOOP, busy_port))
    holder.listen(1)
    env.add(holder)
    srv = env.start_server(proxy=True, allow=("127.0.0.0/8",),
                           extra=["--permit-listen", str(permitted),
                                  "--permit-listen", f"localhost:{busy_port}",
                                  "--permit-listen", "127.0.0.1:0", "--max-listeners", "2"])
    c = env.start_client(srv.port, extra=[
        "-R", f"{other}:{LOOP}:{ex.port}",              # no rule
        "-R", f"*:{permitted}:{LOOP}:{ex.port}",        # rule, but not loopback
        "-R", f"{busy_port}:{LOOP}:{ex.port}",          # rule, address in use
        "-R", f"{permitted}:{LOOP}:{ex.port}",          # allowed (1 of 2)
        "-R", f"127.0.0.1:0:{LOOP}:{ex.port}",          # allowed (2 of 2)
        "-R", f"localhost:0:{LOOP}:{ex.port}",          # over --max-listeners? no: no rule
    ])
    wait_log(c, f"-R {other}:{LOOP}:{ex.port} refused by the server: no --permit-listen rule "
                "of the server allows it (code 0x14)")
    wait_log(c, f"-R *:{permitted}:{LOOP}:{ex.port} refused by the server: the server only "
                "listens on loopback (no --gateway-ports) (code 0x15)")
    wait_log(c, f"-R {busy_port}:{LOOP}:{ex.port} refused by the server: the server cannot "
                "listen there (address in use?) (code 0x16)")
    wait_listening(c, f"{permitted}:{LOOP}:{ex.port}")
    wait_listening(c, f"127.0.0.1:0:{LOOP}:{ex.port}")
    # "localhost:0" matches the 127.0.0.1:0 rule too, and is the third listener.
    wait_log(c, f"-R localhost:0:{LOOP}:{ex.port} refused by the server: limit reached "
                "(code 0x12)")
    wait_log(srv, f"remote forward #1 on {LOOP}:{other} refused: no --permit-listen rule")
    wait_log(srv, "cannot listen on")
    check(not lib.tcp_port_open(other), "a refused port is open")
    fwd_exchange(permitted, ex, MiB, 6)


@lib.timeout(60)
def test_remote_forward_gateway_ports(env):
    """With --gateway-ports a client may ask for every interface."""
    ex = env.exchange_server()
    p = lib.free_port()
    srv, c = env.pair(server_extra=["--permit-listen", f"*:{p}", "--gateway-ports"],
                      client_extra=["-R", f"*:{p}:{LOOP}:{ex.port}"])
    wait_listening(c, f"*:{p}:{LOOP}:{ex.port}")
    wait_log(srv, f"listening on 0.0.0.0:{p}")
    fwd_exchange(p, ex, MiB, 7)


@lib.timeout(150)
def test_forwards_survive_server_restart(env):
    """-L and -R work again after the server is killed and restarted with the same key; the
    server closes a client's listeners when that client goes away."""
    ex = env.exchange_server()
    lp, rp = lib.free_port(), lib.free_port()
    srv_extra = ["--permit-listen", str(rp)]
    srv, c = env.pair(server_extra=srv_extra,
                      client_extra=["-L", f"{lp}:{LOOP}:{ex.port}",
                                    "-R", f"{rp}:{LOOP}:{ex.port}"])
    wait_listening(c, f"{rp}:{LOOP}:{ex.port}")
    fwd_exchange(lp, ex, MiB, 8)
    fwd_exchange(rp, ex, MiB, 9)
    start = len(c.log_text())
    srv.signal(signal.SIGKILL)
    check(srv.wait_exit(5) is not None, "server did not die on SIGKILL")
    srv2 = env.start_server(proxy=True, allow=("127.0.0.0/8",), port=srv.port, name="server2",
                            extra=srv_extra)
    t0 = time.monotonic()
    wait_listening(c, f"{rp}:{LOOP}:{ex.port}", secs=60, start=start)
    lib.info(f"-R restored {time.monotonic() - t0:.1f}s after the new server was up")
    fwd_exchange(lp, ex, MiB, 10)
    fwd_exchange(rp, ex, MiB, 11)
    # The client goes away: its listener on the server closes.
    c.signal(signal.SIGTERM)
    check(c.wait_exit(15) is not None, "client did not exit on SIGTERM")
    wait_log(srv2, f"remote forward #1 on {LOOP}:{rp} closed", secs=40)
    check(not lib.tcp_port_open(rp), "the server still listens after the client left")


@lib.timeout(60)
def test_forward_options_and_config(env):
    """Strict parsing with clear errors; the JSON config keys work like the options."""
    base = [BIN, "client", "--server", f"udp://{LOOP}:9", "--cert", env.cert]
    for bad, want in ((["-L", "8080:host"], "bad -L '8080:host': want [BIND:]PORT:HOST:HOSTPORT"),
                      (["-L", "8080:host:0"], "bad destination port"),
                      (["-L", "8080:2001:db8::1:22"], "IPv6 addresses go in brackets"),
                      (["-R", "example.org:80"], "bad listening address"),
                      (["--remote-allow", "10.0.0.0/8"], "--remote-allow only applies to -R"),
                      (["-R", "0", "--remote-allow", "nope"], "bad --remote-allow")):
        rc, _, err = lib.run_cmd(base + bad, 10)
        check(rc == 2 and want in err, f"{bad}: want exit 2 and {want!r}, got {rc} {err!r}")
    rc, _, err = lib.run_cmd([BIN, "server", "--listen", f"udp://{LOOP}:9", "--key",
                              env.key_path, "--proxy", "--permit-listen", "1:2:3"], 10)
    check(rc == 2 and "bad --permit-listen '1:2:3': want [ADDR:]PORT" in err,
          f"server --permit-listen 1:2:3: {rc} {err!r}")
    # The same forwards from a config file.
    ex = env.exchange_server()
    lp = lib.free_port()
    srv_cfg = os.path.join(env.dir, "server.json")
    with open(srv_cfg, "w") as f:
        json.dump({"permit-listen": ["0"], "gateway-ports": False, "max-listeners": 4}, f)
    srv = env.start_server(proxy=True, allow=("127.0.0.0/8",), extra=["-c", srv_cfg])
    cfg = os.path.join(env.dir, "client.json")
    with open(cfg, "w") as f:
        json.dump({"local-forward": [f"{lp}:{LOOP}:{ex.port}"],
                   "remote-forward": [f"0:{LOOP}:{ex.port}"],
                   "remote-allow": "127.0.0.0/8"}, f)
    c = env.start_client(srv.port, extra=["-c", cfg])
    rp = wait_listening(c, f"0:{LOOP}:{ex.port}")
    fwd_exchange(lp, ex, MiB, 12)
    fwd_exchange(rp, ex, MiB, 13)
    with open(cfg, "w") as f:
        json.dump({"local-forward": "nonsense"}, f)
    rc, _, err = lib.run_cmd(base + ["-c", cfg], 10)
    check(rc == 2 and "bad -L 'nonsense'" in err and 'key "local-forward"' in err,
          f"bad config -L: {rc} {err!r}")


@lib.timeout(120)
def test_remote_forward_port_taken_over(env):
    """A client killed without a goodbye leaves its listener on the server until that
    association times out; a new client asking for the same port is refused with 0x16 and
    asks again until it gets it."""
    ex = env.exchange_server()
    rp = lib.free_port()
    srv, c = env.pair(server_extra=["--permit-listen", str(rp)],
                      client_extra=["-R", f"{rp}:{LOOP}:{ex.port}"])
    wait_listening(c, f"{rp}:{LOOP}:{ex.port}")
    c.signal(signal.SIGKILL)
    check(c.wait_exit(5) is not None, "client did not die on SIGKILL")
    c2 = env.start_client(srv.port, extra=["-R", f"{rp}:{LOOP}:{ex.port}"], name="client2")
    wait_log(c2, f"-R {rp}:{LOOP}:{ex.port} refused by the server: the server cannot listen "
                 "there (address in use?) (code 0x16); asking again later")
    wait_listening(c2, f"{rp}:{LOOP}:{ex.port}", secs=90)
    wait_log(srv, f"remote forward #1 on {LOOP}:{rp} closed")
    fwd_exchange(rp, ex, MiB, 14)


@lib.timeout(60)
def test_remote_forward_old_server(env):
    """A server older than remote forwards ignores LISTEN (played by fault injection): the
    client says so after 10 s, and the association keeps working (-L)."""
    if os.environ.get("SCTPT_FAULT_BUILD") != "1":
        lib.info("needs a -Dfault_injection build (SCTPT_FAULT_BUILD=1); nothing to test")
        return
    ex = env.exchange_server()
    lp = lib.free_port()
    os.environ["SCTPT_FAULT"] = "mux_old_peer:1:0"
    try:
        srv = env.start_server(proxy=True, allow=("127.0.0.0/8",),
                               extra=["--permit-listen", "0"])
    finally:
        del os.environ["SCTPT_FAULT"]
    c = env.start_client(srv.port, extra=["-R", f"0:{LOOP}:{ex.port}",
                                          "-L", f"{lp}:{LOOP}:{ex.port}"])
    wait_log(c, f"remote forward -R 0:{LOOP}:{ex.port}: no answer from the server within 10 s; "
                "a server without remote-forward support ignores the request", secs=25)
    check("listens on port" not in c.log_text(), "the client reported a listener")
    fwd_exchange(lp, ex, MiB, 15)
