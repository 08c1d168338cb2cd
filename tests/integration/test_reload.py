"""SIGHUP reload of a server's config file (-c): the --allow list and --target/--proxy change
for new streams (a refused destination then works and back), each change is logged, open
connections keep going, and a file with any error (JSON syntax, a bad value, an unknown key)
is logged with its line and key while the running configuration stays."""

import contextlib
import json
import os
import signal
import socket
import threading
import time

import lib
from lib import BIN, LOOP, check

KiB = 1 << 10
NOT_ALLOWED = 2   # SOCKS5 reply: connection not allowed by ruleset


def write_conf(env, conf, raw=None):
    path = os.path.join(env.dir, "server.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(raw if raw is not None else json.dumps(conf, indent=2) + "\n")
    os.replace(tmp, path)     # as an editor or config manager would
    return path


def hup(server, needles, secs=10):
    """SIGHUP the server and wait for every needle in the log lines that follow."""
    mark = len(server.log_text())
    server.signal(signal.SIGHUP)
    for n in needles:
        check(server.wait_log(n, secs, mark), f"no {n!r} after SIGHUP: {server.tail(8)}")
    return server.log_text()[mark:]


def refused(socks, dest):
    try:
        s = lib.socks_open(socks, dest[0], dest[1], timeout=20)
    except lib.SocksError as e:
        check(e.code == NOT_ALLOWED, f"refused with SOCKS code {e.code}, want {NOT_ALLOWED}")
        return
    s.close()
    raise lib.TestFailure(f"{dest} was reached, want refused by the ACL")


def works(socks, dest, seed):
    lib.exchange(socks, dest, 64 * KiB, 64 * KiB, seed, 30)


@lib.timeout(90)
def test_sighup_reload_acl(env):
    ex = env.exchange_server()
    port = lib.free_port(udp=True)
    base = {"listen": [f"udp://{LOOP}:{port}"], "key": env.key_path, "proxy": True}
    path = write_conf(env, base)
    s = env.spawn("server", [BIN, "server", "-c", path])
    check(s.wait_log("listening on udp://", 15), f"server did not start: {s.tail(10)}")
    socks = lib.free_port()
    c = env.spawn("client", [BIN, "client", "--server", f"udp://{LOOP}:{port}", "--cert",
                             env.cert, "--socks", f"{LOOP}:{socks}"])
    check(c.wait_log("association up", 20), f"no association: {c.tail(10)}")

    # Loopback is internal: refused until the file admits it.
    refused(socks, ex.addr)
    write_conf(env, dict(base, allow=["127.0.0.1/32", "10.0.0.0/8"]))
    hup(s, ["reload: allow list 0 -> 2 entries (+127.0.0.1/32 +10.0.0.0/8)",
            "reload: log level unchanged"])
    works(socks, ex.addr, 1)
    # A connection opened now must outlive the later revocation.
    held = lib.socks_open(socks, ex.addr[0], ex.addr[1], timeout=30)

    # Broken files: each error named with its place; the allow list stays in force.
    write_conf(env, None, raw='{\n  "listen": ["udp://x"],\n  broken\n')
    hup(s, ["server.json:3:", "not reloaded", "the running configuration stays"])
    works(socks, ex.addr, 2)
    write_conf(env, dict(base, allow=["127.0.0.1/32", "999.0.0.0/8"]))
    text = hup(s, ["bad --allow '999.0.0.0/8'", 'key "allow"', "not reloaded"])
    check("server.json:" in text and "reload: allow list" not in text,
          f"a bad value must name the line and change nothing: {text!r}")
    works(socks, ex.addr, 3)
    write_conf(env, dict(base, allow=["127.0.0.1/32"], allw=["10.0.0.0/8"]))
    hup(s, ['key "allw": unknown key', "not reloaded"])
    write_conf(env, dict(base, allow=["127.0.0.1/32"], **{"max-conns": 7}))
    text = hup(s, ["reload: allow list 2 -> 1 entries (-10.0.0.0/8)",
                   '"max-conns" changed'])
    works(socks, ex.addr, 4)

    # And back: without the rule the destination is refused again ...
    write_conf(env, base)
    hup(s, ["reload: allow list 1 -> 0 entries (-127.0.0.1/32)"])
    refused(socks, ex.addr)
    # ... while the connection opened before keeps working.
    lib.exchange(held, ex.addr, 64 * KiB, 64 * KiB, 5, 30)

    # Proxy -> fixed target: every stream now goes to the target, whatever was asked.
    tgt = {k: v for k, v in base.items() if k != "proxy"}
    tgt["target"] = f"{ex.addr[0]}:{ex.addr[1]}"
    write_conf(env, tgt)
    hup(s, [f"reload: egress proxy mode -> target {ex.addr[0]}:{ex.addr[1]}"])
    works(socks, ("192.0.2.1", 9), 6)
    # Both modes in one file is the same error as on the command line.
    write_conf(env, dict(tgt, proxy=True))
    hup(s, ["exactly one of --target or --proxy", "not reloaded"])
    works(socks, ("192.0.2.1", 9), 7)
    write_conf(env, base)
    hup(s, [f"reload: egress target {ex.addr[0]}:{ex.addr[1]} -> proxy mode"])
    refused(socks, ex.addr)
    lib.wait_until(lambda: ex.ok == 7, 10, f"7 exchanges at the target (errors {ex.errors})")
    check(s.alive() and c.alive(), "a process died during the reloads")


@lib.timeout(60)
def test_sighup_reload_cmdline_wins(env):
    """An --allow on the command line replaces the file's list, at start and at reload: a
    reload that changes only the file's allow list changes nothing."""
    ex = env.exchange_server()
    port = lib.free_port(udp=True)
    base = {"listen": [f"udp://{LOOP}:{port}"], "key": env.key_path, "proxy": True,
            "allow": ["10.0.0.0/8"]}
    path = write_conf(env, base)
    s = env.spawn("server", [BIN, "server", "-c", path, "--allow", "127.0.0.0/8"])
    check(s.wait_log("listening on udp://", 15), f"server did not start: {s.tail(10)}")
    socks = lib.free_port()
    c = env.spawn("client", [BIN, "client", "--server", f"udp://{LOOP}:{port}", "--cert",
                             env.cert, "--socks", f"{LOOP}:{socks}"])
    check(c.wait_log("association up", 20), f"no association: {c.tail(10)}")
    works(socks, ex.addr, 1)
    write_conf(env, dict(base, allow=[]))
    text = hup(s, ["reload: egress rules unchanged (proxy mode, allow list 1 entries)"])
    check("takes effect at restart" not in text, f"command-line key reported: {text!r}")
    works(socks, ex.addr, 2)


class SlowDNS(lib.FakeDNS):
    """FakeDNS whose answers for 'slow.example' (-> 127.0.0.1) come `delay` seconds late."""

    NAMES = {"slow.example": "127.0.0.1"}

    def __init__(self, delay):
        self.delay = delay
        self.timers = []
        super().__init__()

    def _loop(self):
        while not self.stop.is_set():
            try:
                q, peer = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            r = self._answer(q)
            if r:
                t = threading.Timer(self.delay, self._send, (r, peer))
                self.timers.append(t)
                t.start()

    def _send(self, r, peer):
        with contextlib.suppress(OSError):
            self.sock.sendto(r, peer)

    def close(self):
        for t in self.timers:
            t.cancel()
        super().close()


@lib.timeout(60)
def test_sighup_reload_resolving_stream_keeps_mode(env):
    """A proxy stream whose name is still resolving when a reload switches the server to
    target mode is judged as a proxy stream: its internal answer is refused by the ACL, not
    let through because target mode has no ACL."""
    ex = env.exchange_server()
    dns = env.add(SlowDNS(2.0))
    resolv = os.path.join(env.dir, "slow-resolv.conf")
    with open(resolv, "w") as f:
        f.write(f"nameserver {dns.addr}\noptions timeout:10 attempts:1\n")
    port = lib.free_port(udp=True)
    base = {"listen": [f"udp://{LOOP}:{port}"], "key": env.key_path, "proxy": True,
            "resolv-conf": resolv}
    path = write_conf(env, base)
    s = env.spawn("server", [BIN, "server", "-c", path])
    check(s.wait_log("listening on udp://", 15), f"server did not start: {s.tail(10)}")
    socks = lib.free_port()
    c = env.spawn("client", [BIN, "client", "--server", f"udp://{LOOP}:{port}", "--cert",
                             env.cert, "--socks", f"{LOOP}:{socks}"])
    check(c.wait_log("association up", 20), f"no association: {c.tail(10)}")
    result = {}

    def ask():
        try:
            lib.socks_open(socks, "slow.example", ex.addr[1], timeout=20).close()
            result["reached"] = True
        except lib.SocksError as e:
            result["code"] = e.code
        except OSError as e:
            result["error"] = repr(e)

    t = threading.Thread(target=ask, daemon=True)
    t.start()
    lib.wait_until(lambda: any(n == "slow.example" for n, _ in dns.queries), 10,
                   "the server's query for slow.example")
    tgt = {k: v for k, v in base.items() if k != "proxy"}
    tgt["target"] = f"{ex.addr[0]}:{ex.addr[1]}"
    write_conf(env, tgt)
    hup(s, ["reload: egress proxy mode -> target"])
    t.join(20)
    check(not t.is_alive(), "the SOCKS request did not finish")
    check(result.get("code") == NOT_ALLOWED,
          f"the proxy stream opened before the reload: {result}, want refused by the ACL")
    # New streams are target streams now.
    works(socks, ("192.0.2.1", 9), 1)


# ---------- remote-forward policy (server) and forwards (client) ----------

def fwd_works(port, ex, seed, n=256 * KiB):
    """A hashed exchange both ways through a forward port."""
    s = socket.create_connection((LOOP, port), timeout=20)
    lib.exchange(s, ex.addr, n, n, seed, 30)


def fwd_port_for(c, spec, start, secs=20):
    """The port the server reported for -R spec in the client's log after start."""
    needle = f"remote forward -R {spec}: the server listens on port "
    check(c.wait_log(needle, secs, start), f"-R {spec} not listening: {c.tail(8)}")
    text = c.log_text()[start:]
    return int(text[text.rindex(needle) + len(needle):].split()[0])


@lib.timeout(60)
def test_sighup_reload_permit_listen(env):
    """A reload that drops a --permit-listen rule closes the listener it permitted (the client
    logs the refusal code and keeps asking, and is refused), one that turns --gateway-ports off
    closes the wildcard listener, the still-permitted one is left alone; restoring the rules
    lets the client's next requests succeed."""
    ex = env.exchange_server()
    port = lib.free_port(udp=True)
    p1, p2, p3 = lib.free_port(), lib.free_port(), lib.free_port()
    base = {"listen": [f"udp://{LOOP}:{port}"], "key": env.key_path, "proxy": True,
            "allow": ["127.0.0.0/8"], "permit-listen": [f"{LOOP}:{p1}", str(p2), f"*:{p3}"],
            "gateway-ports": True}
    path = write_conf(env, base)
    s = env.spawn("server", [BIN, "server", "-c", path])
    check(s.wait_log("listening on udp://", 15), f"server did not start: {s.tail(10)}")
    r1, r2, r3 = f"{p1}:{LOOP}:{ex.port}", f"{p2}:{LOOP}:{ex.port}", f"*:{p3}:{LOOP}:{ex.port}"
    c = env.spawn("client", [BIN, "client", "--server", f"udp://{LOOP}:{port}", "--cert",
                             env.cert, "--socks", f"{LOOP}:{lib.free_port()}", "-R", r1,
                             "-R", r2, "-R", r3])
    check(fwd_port_for(c, r1, 0) == p1 and fwd_port_for(c, r2, 0) == p2 and
          fwd_port_for(c, r3, 0) == p3, "wrong -R ports")
    fwd_works(p1, ex, 1)
    fwd_works(p2, ex, 2)

    # Without its rule, #1 is closed: the client hears why and asks again, in vain.
    write_conf(env, dict(base, **{"permit-listen": [str(p2), f"*:{p3}"], "max-listeners": 4,
                                  "gateway-ports": False}))
    cmark, smark = len(c.log_text()), len(s.log_text())
    text = hup(s, [f"reload: permit-listen 3 -> 2 rules (-{LOOP}:{p1})",
                   "reload: gateway-ports on -> off", "reload: max-listeners 16 -> 4",
                   f"reload: closed remote forward #1 on {LOOP}:{p1}: no longer permitted",
                   f"reload: closed remote forward #3 on 0.0.0.0:{p3}: no longer permitted",
                   "reload: 2 remote forwards closed"])
    check("remote forward #2" not in text, f"the permitted listener was touched: {text!r}")
    check(c.wait_log(f"-R {r1}: the server closed its listener: no --permit-listen rule of "
                     "the server allows it (code 0x14); asking again later", 10, cmark),
          f"the client did not log the refusal: {c.tail(8)}")
    check(c.wait_log(f"-R {r3}: the server closed its listener: the server only listens on "
                     "loopback (no --gateway-ports) (code 0x15)", 10, cmark),
          f"the client did not log the gateway refusal: {c.tail(8)}")
    lib.wait_until(lambda: not lib.tcp_port_open(p1) and not lib.tcp_port_open(p3), 5,
                   f"ports {p1} and {p3} to close")
    fwd_works(p2, ex, 3)
    check(c.wait_log(f"-R {r1} refused by the server: no --permit-listen rule of the server "
                     "allows it (code 0x14); asking again later", 10, cmark),
          f"the client's new request was not refused: {c.tail(8)}")
    check(s.wait_log(f"remote forward #1 on {LOOP}:{p1} refused", 5, smark),
          f"the server did not refuse the new request: {s.tail(8)}")

    # The rule back: the client's next attempt (backoff 2, 4 s) gets the port again.
    cmark = len(c.log_text())
    write_conf(env, base)
    t0 = time.monotonic()
    hup(s, [f"reload: permit-listen 2 -> 3 rules (+{LOOP}:{p1})", "reload: gateway-ports off -> on",
            "reload: max-listeners 4 -> 16"])
    check(fwd_port_for(c, r1, cmark, 15) == p1, "the restored -R got another port")
    check(fwd_port_for(c, r3, cmark, 15) == p3, "the restored wildcard -R got another port")
    lib.info(f"-R back {time.monotonic() - t0:.1f}s after the reload that restored its rule")
    fwd_works(p1, ex, 4)
    fwd_works(p2, ex, 5)
    fwd_works(p3, ex, 6)
    lib.wait_until(lambda: ex.ok == 6, 10, f"6 exchanges (errors {ex.errors})")
    check(s.alive() and c.alive(), "a process died during the reloads")


def write_client_conf(env, conf, raw=None):
    path = os.path.join(env.dir, "client.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(raw if raw is not None else json.dumps(conf, indent=2) + "\n")
    os.replace(tmp, path)
    return path


@lib.timeout(60)
def test_sighup_reload_client_forwards(env):
    """The client's SIGHUP: an -L added by reload carries a hashed transfer, one removed stops
    listening while its open connection keeps going, an -R added is asked for and used, one
    removed has its server port closed, --remote-allow is replaced for new reverse-SOCKS
    connections, and a broken file (syntax, bad value, unknown key) changes nothing."""
    ex = env.exchange_server()
    srv = env.start_server(proxy=True, allow=("127.0.0.0/8",), extra=["--permit-listen", "*"])
    la, lb, rp, rs = lib.free_port(), lib.free_port(), lib.free_port(), lib.free_port()
    l_a, l_b = f"{la}:{LOOP}:{ex.port}", f"{lb}:localhost:{ex.port}"
    r_p = f"{rp}:{LOOP}:{ex.port}"
    base = {"server": [f"udp://{LOOP}:{srv.port}"], "cert": env.cert,
            "socks": f"{LOOP}:{lib.free_port()}", "local-forward": [l_a]}
    path = write_client_conf(env, base)
    c = env.spawn("client", [BIN, "client", "-c", path])
    check(c.wait_log(f"local forward -L {l_a} listening on {LOOP}:{la}", 15),
          f"client did not start: {c.tail(10)}")
    check(c.wait_log("association up", 20), f"no association: {c.tail(10)}")
    fwd_works(la, ex, 1)

    # Add -L b; remove -L a while a connection through it is open.
    held = socket.create_connection((LOOP, la), timeout=20)
    write_client_conf(env, dict(base, **{"local-forward": [l_b]}))
    text = hup(c, [f"reload: local forward -L {l_a} removed (its connections keep going",
                   f"reload: local forward -L {l_b} listening on {LOOP}:{lb}",
                   "reload: forwards now: 1 local (-L), 0 remote (-R)"])
    check("takes effect at restart" not in text, f"a reloaded key reported as not: {text!r}")
    fwd_works(lb, ex, 2)
    check(not lib.tcp_port_open(la), f"-L port {la} still open after its removal")
    lib.exchange(held, ex.addr, 128 * KiB, 128 * KiB, 3, 30)

    # Add -R (to a destination) and a reverse-SOCKS -R, with a --remote-allow for the latter.
    write_client_conf(env, dict(base, **{"local-forward": [l_b], "remote-forward": [r_p, str(rs)],
                                         "remote-allow": ["127.0.0.0/8"]}))
    mark = len(c.log_text())
    hup(c, [f"reload: remote forward -R {r_p} added; asking the server",
            "reload: remote-allow 0 -> 1 entries (+127.0.0.0/8)"])
    check(fwd_port_for(c, r_p, mark) == rp and fwd_port_for(c, str(rs), mark) == rs,
          "wrong -R ports")
    fwd_works(rp, ex, 4)
    works(rs, ex.addr, 5)       # reverse SOCKS to loopback: admitted by --remote-allow

    # Broken files: each one named, nothing changes.
    for raw, needles in (('{\n  "local-forward": [\n', ["client.json:3:"]),
                         (json.dumps(dict(base, **{"local-forward": ["nonsense"]}), indent=2),
                          ["bad -L 'nonsense'", 'key "local-forward"']),
                         (json.dumps(dict(base, **{"remote-forwrd": [r_p]}), indent=2),
                          ['key "remote-forwrd": unknown key'])):
        write_client_conf(env, None, raw=raw)
        text = hup(c, needles + ["not reloaded", "the running configuration stays"])
        check("reload: local forward" not in text and "reload: remote" not in text,
              f"a broken file changed something: {text!r}")
    fwd_works(lb, ex, 6)
    fwd_works(rp, ex, 7)

    # Remove the -R forwards and --remote-allow: the server closes its listeners.
    smark = len(srv.log_text())
    write_client_conf(env, dict(base, **{"local-forward": [l_b]}))
    hup(c, [f"reload: remote forward -R {r_p} removed (the server closes its listener)",
            "reload: remote-allow 1 -> 0 entries (-127.0.0.0/8)",
            "reload: forwards now: 1 local (-L), 0 remote (-R)"])
    check(srv.wait_log(f"on {LOOP}:{rp} closed (its stream ended)", 10, smark),
          f"the server kept the listener: {srv.tail(8)}")
    lib.wait_until(lambda: not lib.tcp_port_open(rp) and not lib.tcp_port_open(rs), 10,
                   "the removed -R ports to close")
    fwd_works(lb, ex, 8)
    lib.wait_until(lambda: ex.ok == 8, 10, f"8 exchanges (errors {ex.errors})")
    check(srv.alive() and c.alive(), "a process died during the reloads")


@lib.timeout(40)
def test_sighup_reload_client_cmdline_wins(env):
    """An -L on the command line replaces the file's list at start and at every reload."""
    ex = env.exchange_server()
    srv = env.start_server(proxy=True, allow=("127.0.0.0/8",))
    lx, ly = lib.free_port(), lib.free_port()
    base = {"server": [f"udp://{LOOP}:{srv.port}"], "cert": env.cert,
            "socks": f"{LOOP}:{lib.free_port()}", "local-forward": [f"{ly}:{LOOP}:{ex.port}"]}
    path = write_client_conf(env, base)
    c = env.spawn("client", [BIN, "client", "-c", path, "-L", f"{lx}:{LOOP}:{ex.port}"])
    check(c.wait_log(f"listening on {LOOP}:{lx}", 15), f"client did not start: {c.tail(10)}")
    write_client_conf(env, dict(base, **{"local-forward": [f"{ly + 0}:{LOOP}:{ex.port}",
                                                           f"{lx}:{LOOP}:9"]}))
    text = hup(c, ["reload: forwards now: 1 local (-L), 0 remote (-R)"])
    check("reload: local forward" not in text and "takes effect at restart" not in text,
          f"the command line's -L was overridden: {text!r}")
    check(not lib.tcp_port_open(ly), f"the file's -L {ly} is listening")
    fwd_works(lx, ex, 1)
