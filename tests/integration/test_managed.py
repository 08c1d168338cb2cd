"""Tor managed mode (pt-spec v1) without tor: sctpt is started the way tor starts
it (TOR_PT_* environment, stdin a pipe, protocol lines on stdout), and the tests
play tor's parts: the SOCKS client with per-bridge arguments, and an Extended
ORPort server (ExtOrServer) that checks SAFE_COOKIE, USERADDR and TRANSPORT.
The real-tor tests are in test_tor.py."""

import hashlib
import hmac
import os
import re
import secrets
import signal
import socket
import stat
import struct
import subprocess
import threading
import time
from pathlib import Path

from lib import (BIN, LOOP, Proc, TestFailure, check, clean_env, free_port, info,
                 recv_exact, socks5_auth, socks5_greet, socks5_read_reply,
                 socks5_request_bytes, timeout, wait_until, _child_setup)

COOKIE_HEADER = b"! Extended ORPort Auth Cookie !\x0a"
S2C = b"ExtORPort authentication server-to-client hash"
C2S = b"ExtORPort authentication client-to-server hash"
PROTO_KEYWORDS = ("VERSION", "VERSION-ERROR", "ENV-ERROR", "CMETHOD", "CMETHOD-ERROR",
                  "CMETHODS", "SMETHOD", "SMETHOD-ERROR", "SMETHODS", "PROXY", "PROXY-ERROR",
                  "LOG", "STATUS")


class ManagedProc(Proc):
    """sctpt started as tor starts it: env vars, stdin a pipe we can close, stdout
    (protocol) to NAME.out, sctpt's own log (--log) to NAME.log."""

    def __init__(self, env, name, pt_env, args=()):
        self.name = name
        self.out_path = os.path.join(env.dir, f"{name}.out")
        self.log_path = os.path.join(env.dir, f"{name}.log")
        self.argv = [BIN, "--log", self.log_path, "-v"] + list(args)
        e = clean_env()
        for k in list(e):
            if k.startswith("TOR_PT_"):
                del e[k]
        e.update(pt_env)
        self._out = open(self.out_path, "ab")
        self._log = self._out
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=self._out,
                                      stderr=self._out, start_new_session=True,
                                      preexec_fn=_child_setup, env=e)
        self.pid = self.popen.pid
        env.procs.append(self)

    def out_text(self):
        try:
            return Path(self.out_path).read_text(errors="replace")
        except OSError:
            return ""

    def log_text(self):
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, n=40):
        return ("stdout:\n" + "\n".join(self.out_text().splitlines()[-n:]) +
                "\nlog:\n" + "\n".join(self.log_text().splitlines()[-n:]))

    def wait_out(self, needle, secs):
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if needle in self.out_text():
                return True
            if not self.alive():
                return needle in self.out_text()
            time.sleep(0.05)
        return False

    def close_stdin(self):
        try:
            self.popen.stdin.close()
        except OSError:
            pass

    def kill(self):
        self.close_stdin()
        super().kill()


def protocol_lines(text):
    return [ln for ln in text.splitlines() if ln.strip()]


def nolog(out):
    return [ln for ln in out.splitlines() if not ln.startswith("LOG ")]


def check_only_protocol(p):
    for ln in protocol_lines(p.out_text()):
        check(ln.split(" ", 1)[0] in PROTO_KEYWORDS,
              f"{p.name} wrote a non-protocol line on stdout: {ln[:120]!r}")


def run_once(env_vars, args=(), secs=10, stdin_data=b""):
    """Run sctpt in managed mode to completion (error cases). Returns (rc, stdout)."""
    e = clean_env()
    for k in list(e):
        if k.startswith("TOR_PT_"):
            del e[k]
    e.update(env_vars)
    r = subprocess.run([BIN] + list(args), env=e, input=stdin_data, capture_output=True,
                       timeout=secs)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


class ExtOrServer:
    """A minimal Extended ORPort server: SAFE_COOKIE auth, then commands until DONE,
    then OKAY (and echo) or DENY.  `deny` is a callable(index) -> bool."""

    def __init__(self, cookie_path, deny=lambda i: False):
        self.cookie = secrets.token_bytes(32)
        self.cookie_path = cookie_path
        Path(cookie_path).write_bytes(COOKIE_HEADER + self.cookie)
        os.chmod(cookie_path, 0o600)
        self.deny = deny
        self.events = []            # dicts: auth ok?, useraddr, transport, verdict
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOP, 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.count = 0
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            with self.lock:
                idx = self.count
                self.count += 1
            threading.Thread(target=self._serve, args=(c, idx), daemon=True).start()

    def _serve(self, c, idx):
        ev = {"idx": idx}
        c.settimeout(20)
        try:
            c.sendall(b"\x01\x00")
            if recv_exact(c, 1) != b"\x01":
                ev["error"] = "auth type"
                return
            cn = recv_exact(c, 32)
            sn = secrets.token_bytes(32)
            c.sendall(hmac.new(self.cookie, S2C + cn + sn, hashlib.sha256).digest() + sn)
            ch = recv_exact(c, 32)
            if not hmac.compare_digest(ch, hmac.new(self.cookie, C2S + cn + sn,
                                                    hashlib.sha256).digest()):
                ev["auth"] = False
                c.sendall(b"\x00")
                return
            ev["auth"] = True
            c.sendall(b"\x01")
            for _ in range(16):
                typ, ln = struct.unpack(">HH", recv_exact(c, 4))
                body = recv_exact(c, ln) if ln else b""
                if typ == 0x0000:
                    break
                if typ == 0x0001:
                    ev["useraddr"] = body.decode()
                elif typ == 0x0002:
                    ev["transport"] = body.decode()
            else:
                ev["error"] = "no DONE"
                return
            if self.deny(idx):
                ev["verdict"] = "deny"
                c.sendall(struct.pack(">HH", 0x1001, 0))
                return
            ev["verdict"] = "okay"
            c.sendall(struct.pack(">HH", 0x1000, 0))
            while True:          # echo, as the "ORPort"
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
        except (OSError, TestFailure) as e:
            ev.setdefault("error", str(e))
        finally:
            with self.lock:
                self.events.append(ev)
            c.close()

    def wait_events(self, n, secs=10):
        wait_until(lambda: len(self.events) >= n, secs, f"{n} Extended ORPort connections")
        with self.lock:
            return sorted(self.events, key=lambda e: e["idx"])

    def close(self):
        self.stop = True
        self.sock.close()


def pt_server_env(env, state, bindport, orport=None, extor=None, cookie=None, options=None):
    e = {"TOR_PT_MANAGED_TRANSPORT_VER": "1", "TOR_PT_STATE_LOCATION": state,
         "TOR_PT_SERVER_TRANSPORTS": "obfs4,sctp", "TOR_PT_EXIT_ON_STDIN_CLOSE": "1",
         "TOR_PT_SERVER_BINDADDR": f"obfs4-127.0.0.1:1,sctp-{LOOP}:{bindport}",
         "TOR_PT_ORPORT": f"{LOOP}:{orport or 1}",
         "TOR_PT_EXTENDED_SERVER_PORT": f"{LOOP}:{extor}" if extor else ""}
    if cookie:
        e["TOR_PT_AUTH_COOKIE_FILE"] = cookie
    if options is not None:
        e["TOR_PT_SERVER_TRANSPORT_OPTIONS"] = options
    return e


def pt_client_env(env, state):
    return {"TOR_PT_MANAGED_TRANSPORT_VER": "1", "TOR_PT_STATE_LOCATION": state,
            "TOR_PT_CLIENT_TRANSPORTS": "obfs4,sctp,meek", "TOR_PT_EXIT_ON_STDIN_CLOSE": "1"}


def start_pt_server(env, name="ptserver", **kw):
    state = kw.pop("state", os.path.join(env.dir, name + "-state", "pt_state"))
    port = free_port(udp=True)
    p = ManagedProc(env, name, pt_server_env(env, state, port, **kw))
    check(p.wait_out("SMETHODS DONE", 15), f"{name}: no SMETHODS DONE:\n{p.tail()}")
    m = re.search(r"^SMETHOD sctp (\S+):(\d+) ARGS:cert=(\S+)$", p.out_text(), re.M)
    check(m is not None, f"{name}: no SMETHOD line with ARGS:cert=: {p.out_text()!r}")
    p.state = state
    p.port = int(m.group(2))
    p.cert = m.group(3)
    check(p.port == port, f"SMETHOD port {p.port} is not TOR_PT_SERVER_BINDADDR's {port}")
    return p


def start_pt_client(env, name="ptclient"):
    state = os.path.join(env.dir, name + "-state")
    p = ManagedProc(env, name, pt_client_env(env, state))
    check(p.wait_out("CMETHODS DONE", 15), f"{name}: no CMETHODS DONE:\n{p.tail()}")
    m = re.search(r"^CMETHOD sctp socks5 127\.0\.0\.1:(\d+)$", p.out_text(), re.M)
    check(m is not None, f"{name}: no 'CMETHOD sctp socks5' line: {p.out_text()!r}")
    check("obfs4" not in p.out_text() and "meek" not in p.out_text(),
          f"{name}: answered for transports that are not ours: {p.out_text()!r}")
    p.socks = int(m.group(1))
    return p


def tor_socks(socks_port, bridge_port, args, timeout_s=20):
    """Connect like tor: SOCKS5 user/pass carrying the bridge arguments (split at 255
    bytes, or password "\\0"), CONNECT to the bridge address.  Returns (sock, code)."""
    a = args.encode()
    user, pw = (a[:255], a[255:]) if len(a) > 255 else (a, b"\x00")
    s = socket.create_connection((LOOP, socks_port), timeout=timeout_s)
    check(socks5_greet(s, methods=(2,)) == 2, "SOCKS server did not pick user/pass")
    s.sendall(bytes([1, len(user)]) + user + bytes([len(pw)]) + pw)
    check(recv_exact(s, 2) == b"\x01\x00", "user/pass sub-negotiation failed")
    return socks_finish(s, LOOP, bridge_port)


def socks_finish(s, host, port):
    s.sendall(socks5_request_bytes(host, port))
    code = socks5_read_reply(s)
    if code != 0:
        s.close()
        return None, code
    return s, 0


def echo_check(s, n=50000):
    data = os.urandom(n)
    s.sendall(data)
    got = b""
    while len(got) < n:
        d = s.recv(65536)
        check(d, "connection closed before the echo came back")
        got += d
    check(got == data, "echo through the bridge differs")


@timeout(60)
def test_managed_env_errors(env):
    st = os.path.join(env.dir, "st")
    base = {"TOR_PT_MANAGED_TRANSPORT_VER": "1", "TOR_PT_STATE_LOCATION": st,
            "TOR_PT_CLIENT_TRANSPORTS": "sctp"}
    cases = [
        ({**base, "TOR_PT_MANAGED_TRANSPORT_VER": "2"}, "VERSION-ERROR no-version"),
        ({**base, "TOR_PT_MANAGED_TRANSPORT_VER": ""}, "VERSION-ERROR no-version"),
        ({k: v for k, v in base.items() if k != "TOR_PT_STATE_LOCATION"},
         "ENV-ERROR TOR_PT_STATE_LOCATION"),
        ({**base, "TOR_PT_SERVER_TRANSPORTS": "sctp"}, "ENV-ERROR both"),
        ({k: v for k, v in base.items() if k != "TOR_PT_CLIENT_TRANSPORTS"}, "ENV-ERROR neither"),
        ({**base, "TOR_PT_EXIT_ON_STDIN_CLOSE": "yes"}, "ENV-ERROR TOR_PT_EXIT_ON_STDIN_CLOSE"),
        ({**base, "TOR_PT_OUTBOUND_BIND_ADDRESS_V4": "::1"},
         "ENV-ERROR TOR_PT_OUTBOUND_BIND_ADDRESS_V4"),
        ({**{k: v for k, v in base.items() if k != "TOR_PT_CLIENT_TRANSPORTS"},
          "TOR_PT_SERVER_TRANSPORTS": "sctp", "TOR_PT_SERVER_BINDADDR": "sctp127.0.0.1:5",
          "TOR_PT_ORPORT": "127.0.0.1:9"}, "ENV-ERROR malformed TOR_PT_SERVER_BINDADDR"),
        ({**{k: v for k, v in base.items() if k != "TOR_PT_CLIENT_TRANSPORTS"},
          "TOR_PT_SERVER_TRANSPORTS": "sctp", "TOR_PT_ORPORT": "nowhere"},
         "ENV-ERROR TOR_PT_ORPORT"),
        ({**{k: v for k, v in base.items() if k != "TOR_PT_CLIENT_TRANSPORTS"},
          "TOR_PT_SERVER_TRANSPORTS": "sctp", "TOR_PT_ORPORT": "127.0.0.1:9",
          "TOR_PT_EXTENDED_SERVER_PORT": "127.0.0.1:10"}, "ENV-ERROR TOR_PT_EXTENDED_SERVER_PORT"),
        ({**{k: v for k, v in base.items() if k != "TOR_PT_CLIENT_TRANSPORTS"},
          "TOR_PT_SERVER_TRANSPORTS": "sctp", "TOR_PT_ORPORT": "127.0.0.1:9",
          "TOR_PT_SERVER_TRANSPORT_OPTIONS": "sctp:mtu"},
         "ENV-ERROR malformed TOR_PT_SERVER_TRANSPORT_OPTIONS"),
    ]
    for envv, want in cases:
        rc, out, err = run_once(envv)
        first = out.splitlines()[0] if out else ""
        check(rc != 0, f"exit status 0 for {want!r}: {out!r}")
        check(first.startswith(want), f"want a line starting {want!r}, got {out!r} / {err!r}")
        check("VERSION 1" not in out, f"VERSION 1 printed before {want!r}: {out!r}")
    # A bad command line in the torrc is also reported on stdout.
    rc, out, err = run_once(base, args=["--mtu", "12"])
    check(rc != 0 and out.startswith("ENV-ERROR"), f"bad option: rc={rc} out={out!r}")
    # TOR_PT_PROXY: a usable proxy is acknowledged before the methods ...
    rc, out, err = run_once({**base, "TOR_PT_PROXY": "socks5://u:p@127.0.0.1:1080",
                             "TOR_PT_EXIT_ON_STDIN_CLOSE": "1"})
    lines = nolog(out)
    check(rc == 0 and lines[:2] == ["VERSION 1", "PROXY DONE"] and
          any(ln.startswith("CMETHOD sctp socks5 ") for ln in lines),
          f"TOR_PT_PROXY socks5: rc={rc} out={out!r}")
    # ... and one it cannot use is a PROXY-ERROR and an exit, never a silent direct path.
    for bad in ("ftp://127.0.0.1:21", "socks5://proxy.example:1080", "http://127.0.0.1",
                "socks5://@127.0.0.1:1080"):
        rc, out, err = run_once({**base, "TOR_PT_PROXY": bad})
        lines = nolog(out)
        check(rc != 0 and lines[:1] == ["VERSION 1"] and
              any(ln.startswith("PROXY-ERROR ") for ln in lines) and
              not any(ln.startswith("CMETHOD ") for ln in lines),
              f"TOR_PT_PROXY {bad}: rc={rc} out={out!r}")
    # Only transports that are not ours: nothing to offer, clean exit.
    rc, out, err = run_once({**base, "TOR_PT_CLIENT_TRANSPORTS": "obfs4,meek"})
    check(rc == 0 and nolog(out) == ["VERSION 1", "CMETHODS DONE"],
          f"unknown transports only: rc={rc} out={out!r}")
    rc, out, err = run_once({**{k: v for k, v in base.items() if k != "TOR_PT_CLIENT_TRANSPORTS"},
                             "TOR_PT_SERVER_TRANSPORTS": "obfs4", "TOR_PT_ORPORT": "127.0.0.1:9"})
    check(rc == 0 and nolog(out) == ["VERSION 1", "SMETHODS DONE"],
          f"unknown server transports only: rc={rc} out={out!r}")
    # A bad server transport option value is an SMETHOD-ERROR.
    rc, out, err = run_once({**{k: v for k, v in base.items() if k != "TOR_PT_CLIENT_TRANSPORTS"},
                             "TOR_PT_SERVER_TRANSPORTS": "sctp", "TOR_PT_ORPORT": "127.0.0.1:9",
                             "TOR_PT_SERVER_BINDADDR": f"sctp-127.0.0.1:{free_port(udp=True)}",
                             "TOR_PT_SERVER_TRANSPORT_OPTIONS": "sctp:mtu=abc"})
    check(rc != 0 and "SMETHOD-ERROR sctp" in out and "SMETHODS DONE" in out,
          f"bad option value: rc={rc} out={out!r}")


@timeout(90)
def test_managed_extor_end_to_end(env):
    """Client and server in managed mode; the server reaches an Extended ORPort that
    checks SAFE_COOKIE and records USERADDR/TRANSPORT; connections to one bridge share
    one association; different arguments make a second one."""
    ext = env.add(ExtOrServer(os.path.join(env.dir, "cookie")))
    srv = start_pt_server(env, extor=ext.port, cookie=ext.cookie_path,
                          options="sctp:mtu=1400;obfs4:iat-mode=1")
    cli = start_pt_client(env)
    line = Path(srv.state, "sctpt_bridgeline.txt").read_text()
    check(re.search(rf"^Bridge sctp <IP ADDRESS>:{srv.port} <FINGERPRINT> cert={re.escape(srv.cert)}$",
                    line, re.M), f"bridge line file: {line!r}")
    conns = []
    for i in range(4):
        s, code = tor_socks(cli.socks, srv.port, f"cert={srv.cert}")
        check(code == 0, f"connection {i}: SOCKS code {code}\n{cli.tail()}")
        echo_check(s)
        conns.append(s)
    # Events are recorded when a connection ends; close and collect.
    for s in conns:
        s.close()
    evs = ext.wait_events(4)
    for e in evs:
        check(e.get("auth") is True and e.get("verdict") == "okay", f"extor event {e}")
        check(e.get("transport") == "sctp", f"TRANSPORT was {e.get('transport')!r}")
        check(re.fullmatch(r"127\.0\.0\.1:\d+", e.get("useraddr", "")),
              f"USERADDR was {e.get('useraddr')!r}")
    ports = {e["useraddr"] for e in evs}
    check(len(ports) == 1, f"connections to one bridge used {len(ports)} associations: {ports}")
    check(cli.out_text().count("STATUS TRANSPORT=sctp ADDRESS=127.0.0.1:%d CONNECT=Success"
                               % srv.port) == 1, f"STATUS lines:\n{cli.out_text()}")
    # Other arguments (a long one that tor splits over username and password): a
    # second association to the same address.
    long_args = f"cert={srv.cert};note=" + "x\\;y\\\\" * 60
    check(len(long_args) > 255, "test arguments should exceed 255 bytes")
    s, code = tor_socks(cli.socks, srv.port, long_args)
    check(code == 0, f"long arguments: SOCKS code {code}\n{cli.tail()}")
    echo_check(s)
    s.close()
    evs = ext.wait_events(5)
    check(evs[4]["useraddr"] not in ports, "different bridge arguments shared the association")
    check_only_protocol(cli)
    check_only_protocol(srv)
    check("LOG SEVERITY=" in cli.out_text(), "client sent no LOG lines to tor")
    info(f"5 connections over 2 associations; USERADDR {evs[0]['useraddr']}")


@timeout(90)
def test_managed_bad_bridge_args(env):
    """Malformed per-bridge arguments fail that SOCKS request only."""
    ext = env.add(ExtOrServer(os.path.join(env.dir, "cookie")))
    srv = start_pt_server(env, extor=ext.port, cookie=ext.cookie_path)
    cli = start_pt_client(env)
    bad = ["", "cert", "=x", f"cert={srv.cert};cert={srv.cert}", f"cert={srv.cert}\\",
           "cert=AAAA", "cert=" + "A" * 63 + "!", "iat-mode=0", "k=" + "v" * 500]
    for a in bad:
        if a == "":
            # No credentials at all: SOCKS5 without auth.
            sk = socket.create_connection((LOOP, cli.socks), timeout=10)
            socks5_greet(sk, methods=(0,))
            s, code = socks_finish(sk, LOOP, srv.port)
        else:
            s, code = tor_socks(cli.socks, srv.port, a)
            if s:
                s.close()
        check(code not in (0, None), f"arguments {a[:40]!r} were accepted (code {code})")
    # A domain name instead of the bridge's IP address.
    sk = socket.create_connection((LOOP, cli.socks), timeout=10)
    socks5_greet(sk, methods=(2,))
    socks5_auth(sk, f"cert={srv.cert}", "\x00")
    s, code = socks_finish(sk, "bridge.example", srv.port)
    check(s is None and code == 8, f"domain-name bridge address: code {code}")
    check(cli.alive(), "client died on bad arguments")
    s, code = tor_socks(cli.socks, srv.port, f"cert={srv.cert}")
    check(code == 0, f"good arguments after bad ones: code {code}")
    echo_check(s)
    s.close()
    check("malformed bridge arguments" in cli.out_text(), "no LOG line about malformed arguments")
    check_only_protocol(cli)


@timeout(90)
def test_managed_extor_deny_and_cookie(env):
    """DENY, a wrong cookie and a missing cookie file fail one connection each, with a
    LOG line; the cookie is re-read for every connection, so later ones work."""
    ext = env.add(ExtOrServer(os.path.join(env.dir, "cookie"), deny=lambda i: i == 0))
    srv = start_pt_server(env, extor=ext.port, cookie=ext.cookie_path)
    cli = start_pt_client(env)
    args = f"cert={srv.cert}"
    # 1. Extended ORPort says DENY: that connection fails (not allowed).
    s, code = tor_socks(cli.socks, srv.port, args)
    check(s is None and code == 2, f"denied connection: SOCKS code {code}")
    check(srv.wait_out("denied the connection", 5), "no LOG line for DENY")
    # 2. Works right after.
    s, code = tor_socks(cli.socks, srv.port, args)
    check(code == 0, f"after DENY: code {code}")
    echo_check(s)
    s.close()
    # 3. Wrong cookie in the file (tor restarted with a new one, say).
    good = Path(ext.cookie_path).read_bytes()
    Path(ext.cookie_path).write_bytes(COOKIE_HEADER + secrets.token_bytes(32))
    s, code = tor_socks(cli.socks, srv.port, args)
    check(s is None and code == 1, f"wrong cookie: code {code}")
    check(srv.wait_out("does not match our cookie", 5), "no LOG line for a wrong cookie")
    # 4. Missing cookie file, then a malformed one.
    os.unlink(ext.cookie_path)
    s, code = tor_socks(cli.socks, srv.port, args)
    check(s is None and code == 1, f"missing cookie: code {code}")
    check(srv.wait_out("cannot read auth cookie file", 5), "no LOG line for a missing cookie")
    Path(ext.cookie_path).write_bytes(b"garbage")
    s, code = tor_socks(cli.socks, srv.port, args)
    check(s is None and code == 1, f"malformed cookie: code {code}")
    # 5. Restored: works again, on the same association.
    Path(ext.cookie_path).write_bytes(good)
    s, code = tor_socks(cli.socks, srv.port, args)
    check(code == 0, f"restored cookie: code {code}\n{srv.tail()}")
    echo_check(s)
    s.close()
    check(srv.alive() and cli.alive(), "a process died")
    check(cli.out_text().count("CONNECT=Success") == 1,
          "the association was re-made; failures should affect one connection only")


@timeout(60)
def test_managed_orport_only(env):
    """Without an Extended ORPort the server relays to the plain ORPort."""
    echo = socket.socket()
    echo.bind((LOOP, 0))
    echo.listen(8)
    port = echo.getsockname()[1]

    def serve():
        try:
            c, _ = echo.accept()
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
            c.close()
        except OSError:
            pass
    threading.Thread(target=serve, daemon=True).start()
    srv = start_pt_server(env, orport=port)
    cli = start_pt_client(env)
    s, code = tor_socks(cli.socks, srv.port, f"cert={srv.cert}")
    check(code == 0, f"code {code}")
    echo_check(s)
    s.close()
    echo.close()
    check("relaying to tor's ORPort" in srv.out_text(), "server did not say it uses the ORPort")


@timeout(60)
def test_managed_state_dir(env):
    """The state directory is created (0700); the key persists across restarts, so
    the cert stays the same; the bridge line file is 0600."""
    state = os.path.join(env.dir, "a", "b", "pt_state")
    srv = start_pt_server(env, name="s1", state=state, orport=9)
    mode = stat.S_IMODE(os.stat(state).st_mode)
    check(mode == 0o700, f"state dir mode {oct(mode)}")
    for f in ("sctpt_identity.key", "sctpt_bridgeline.txt"):
        m = stat.S_IMODE(os.stat(os.path.join(state, f)).st_mode)
        check(m == 0o600, f"{f} mode {oct(m)}")
    cert1 = srv.cert
    srv.close_stdin()
    check(srv.wait_exit(8) is not None, "server did not exit on stdin close")
    srv2 = start_pt_server(env, name="s2", state=state, orport=9)
    check(srv2.cert == cert1, "the cert changed across a restart with the same state dir")
    # A corrupt key is reported, never silently replaced.
    srv2.close_stdin()
    srv2.wait_exit(8)
    Path(state, "sctpt_identity.key").write_text("garbage\n")
    rc, out, err = run_once(pt_server_env(env, state, free_port(udp=True), orport=9))
    check(rc != 0 and "SMETHOD-ERROR sctp" in out, f"corrupt key: rc={rc} out={out!r}")
    check(Path(state, "sctpt_identity.key").read_text() == "garbage\n", "corrupt key was replaced")


@timeout(60)
def test_managed_lifecycle(env):
    """Exit on stdin close, on SIGTERM, on SIGINT, and when the parent process dies."""
    # stdin close, with an open connection: exits within the grace period.
    echo_port = free_port()
    srv = start_pt_server(env, name="s-stdin", orport=echo_port)
    t0 = time.monotonic()
    srv.close_stdin()
    rc = srv.wait_exit(8)
    check(rc == 0, f"stdin close: exit status {rc}")
    info(f"exit {time.monotonic() - t0:.2f}s after stdin closed")
    check("stdin closed" in srv.out_text(), "no LOG line about stdin")
    for sig in (signal.SIGTERM, signal.SIGINT):
        c = start_pt_client(env, name=f"c-{sig.name}")
        c.signal(sig)
        rc = c.wait_exit(8)
        check(rc == 0, f"{sig.name}: exit status {rc}")
    # Parent death: a shell parent that is killed; sctpt must notice and exit.
    state = os.path.join(env.dir, "pstate")
    e = clean_env()
    e.update(pt_client_env(env, state))
    e["TOR_PT_EXIT_ON_STDIN_CLOSE"] = "0"
    pidfile = os.path.join(env.dir, "child.pid")
    parent = subprocess.Popen(["sh", "-c", f'"{BIN}" </dev/null >/dev/null 2>&1 & '
                               f'echo $! > "{pidfile}"; wait'],
                              env=e, start_new_session=True)
    wait_until(lambda: os.path.exists(pidfile) and Path(pidfile).read_text().strip(), 5,
               "child pid")
    child = int(Path(pidfile).read_text())
    time.sleep(0.5)
    check(os.path.exists(f"/proc/{child}"), "sctpt exited early")
    parent.kill()
    parent.wait(5)

    def gone():
        try:
            st = Path(f"/proc/{child}/stat").read_text()
            return st.split(") ", 1)[1][0] in "ZX"
        except OSError:
            return True
    wait_until(gone, 8, "sctpt to exit after its parent died")


@timeout(90)
def test_managed_replay_filter_survives_restart(env):
    """A HELLO the bridge answered before a restart gets no answer after it (the replay
    filter is kept in the state directory); a HELLO it never saw still does (control)."""
    import lib
    state = os.path.join(env.dir, "rstate", "pt_state")
    srv = start_pt_server(env, name="r1", state=state, orport=9)
    relay = env.add(lib.UdpRelay(srv.port))
    c = env.start_client(relay.port, cert=srv.cert, name="seen")
    check("association up" in c.log_text(), "no association through the relay")
    seen_hello = relay.flow(0).c2s_first
    blackhole = env.add(lib.UdpRelay(srv.port, c2s=lambda f, d: None))
    env.start_client(blackhole.port, cert=srv.cert, name="unseen", wait_assoc=False)
    unseen_hello = blackhole.flow(0).c2s_first
    check(seen_hello and unseen_hello, "no HELLOs captured")
    srv.close_stdin()
    check(srv.wait_exit(8) == 0, "bridge did not exit on stdin close")
    check(os.path.getsize(os.path.join(state, "sctpt_replay")) >= 16, "replay file is empty")
    srv2 = ManagedProc(env, "r2", pt_server_env(env, state, srv.port, orport=9))
    check(srv2.wait_out("SMETHODS DONE", 15), f"restart failed: {srv2.tail()}")

    def answered(hello):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2.0)
        s.sendto(hello, (LOOP, srv.port))
        try:
            s.recvfrom(65536)
            return True
        except socket.timeout:
            return False
        finally:
            s.close()
    check(not answered(seen_hello), "a HELLO from before the restart was answered after it")
    check(answered(unseen_hello), "control: a fresh, never-seen HELLO got no answer")
    check("remembered from before the restart" in srv2.log_text(),
          "restarted bridge did not load its replay filter")


@timeout(90)
def test_managed_tcp_path(env):
    """A bridge that also listens on TCP (server option tcp=) and a Bridge line with
    tcp=: with the UDP path dead the client's handshake goes round to the TCP path and
    tor's connection works; STATUS reports success."""
    ext = env.add(ExtOrServer(os.path.join(env.dir, "cookie")))
    tport = free_port()
    srv = start_pt_server(env, extor=ext.port, cookie=ext.cookie_path,
                          options=f"sctp:tcp=127.0.0.1:{tport}")
    line = Path(srv.state, "sctpt_bridgeline.txt").read_text()
    check(f"tcp=<IP ADDRESS>:{tport}" in line, f"bridge line lacks tcp=: {line!r}")
    cli = start_pt_client(env)
    dead_udp = free_port(udp=True)         # nothing listens there: UDP path is dead
    s = socket.create_connection((LOOP, cli.socks), timeout=30)
    check(socks5_greet(s, methods=(2,)) == 2, "no user/pass method")
    a = f"cert={srv.cert};tcp=127.0.0.1:{tport}".encode()
    s.sendall(bytes([1, len(a)]) + a + b"\x01\x00")
    check(recv_exact(s, 2) == b"\x01\x00", "auth failed")
    s, code = socks_finish(s, LOOP, dead_udp)
    check(code == 0, f"SOCKS code {code}\n{cli.tail()}")
    echo_check(s)
    s.close()
    check("CONNECT=Success" in cli.out_text(), "no STATUS success line")
    evs = ext.wait_events(1)
    check(evs[0].get("transport") == "sctp", f"extor event {evs[0]}")
    # A malformed tcp= fails that request only.
    bad, code = tor_socks(cli.socks, srv.port, f"cert={srv.cert};tcp=nowhere")
    check(bad is None and code == 1, f"bad tcp= accepted (code {code})")
