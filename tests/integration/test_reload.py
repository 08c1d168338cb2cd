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
