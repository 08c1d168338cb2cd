"""`sctpt chain`, the pluggable-transport combiner (docs/chain.md), with real processes.

The tor tests run a real tor bridge and a real tor client (Debian tor) in a private network
namespace (torlib), with `sctpt chain` as the managed transport on both sides and obfs4proxy
and sctpt as its children.  The address test drives the bridge-side combiner directly, with a
Python Extended ORPort server standing in for tor, so that it can check USERADDR for every
single connection.
"""

import hashlib
import os
import re
import signal
import socket
import time

import lib
import torlib
from lib import BIN, LOOP, check, info

SCTPT = os.path.realpath(BIN)


def chain_config(env, name="chain.conf", extra="", aliases=True):
    """The config file: obfs4proxy and sctpt as hops, both aliases (lines 5 and 6), then
    extra."""
    sctp_args = " -vv" if lib.VERBOSE else " -v"
    text = (f"ClientTransportPlugin obfs4 exec {torlib.OBFS4PROXY}\n"
            f"ServerTransportPlugin obfs4 exec {torlib.OBFS4PROXY}\n"
            f"ClientTransportPlugin sctp exec {SCTPT}{sctp_args}\n"
            f"ServerTransportPlugin sctp exec {SCTPT}{sctp_args}\n"
            + ("Alias obfs4_sctp obfs4|sctp\nAlias sctp_obfs4 sctp|obfs4\n" if aliases
               else "#\n#\n") + extra)
    path = os.path.join(env.dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def chain_transport(conf, alias, udp):
    required = ("obfs4.cert", "obfs4.iat-mode", "sctp.cert")
    return torlib.Transport(alias, [BIN, "chain", "--config", conf], "sctpt_chain_bridgelines.txt",
                            udp=udp, required=required)


def obfs4_procs():
    return [p for p in torlib.netns_pids() if torlib.proc_exe(p) == os.path.realpath(torlib.OBFS4PROXY)]


def _tor_chain(env, alias, udp, extra=()):
    check(os.access(torlib.OBFS4PROXY, os.X_OK), "obfs4proxy not installed")
    torlib.setup(env)
    conf = chain_config(env)
    transport = chain_transport(conf, alias, udp)
    t0 = time.monotonic()
    with torlib.diagnose(env):
        bridge = torlib.start_bridge(env, transport, extra=extra)
        client = torlib.start_client(env, transport, bridge.bridge_line)
        m = client.wait_notice(torlib.FRESH_DESC, 60)
        check(m.group(1) == bridge.name, f"descriptor for {m.group(1)!r}")
        ext = torlib.check_extorport(bridge, alias)
        info(f"{alias}: fresh descriptor {time.monotonic() - t0:.1f}s after start; bridge "
             f"ExtORPort: {ext[1][:100]} ... {ext[3]}")
        return bridge, client, transport


@lib.timeout(120)
def test_chain_tor_obfs4_sctp(env):
    """obfs4|sctp between a real tor client and a real tor bridge: the client gets a fresh
    bridge descriptor, the bridge's tor sees the connection on its Extended ORPort with
    TRANSPORT obfs4_sctp, and after both tors stop no sctpt or obfs4proxy process is left."""
    bridge, client, transport = _tor_chain(env, "obfs4_sctp", udp=True)
    torlib.stop_all_and_check_pts(env, [client, bridge], transport,
                                  sigs={bridge.name: signal.SIGINT})
    check(not obfs4_procs(), f"obfs4proxy left: {obfs4_procs()}")


@lib.timeout(120)
def test_chain_tor_sctp_obfs4(env):
    """sctp|obfs4 between a real tor client and bridge: sctp's TCP carrier (the bridge's
    ServerTransportOptions sctp_obfs4 sctp.carrier=tcp, which sctpt republishes as
    carrier=tcp in its ARGS) travels inside obfs4; fresh descriptor at the client, ExtORPort
    with TRANSPORT sctp_obfs4 at the bridge, no process left."""
    bridge, client, transport = _tor_chain(
        env, "sctp_obfs4", udp=False, extra=["ServerTransportOptions sctp_obfs4 sctp.carrier=tcp"])
    check("sctp.carrier=tcp" in bridge.pt_args, f"bridge args {bridge.pt_args}")
    torlib.stop_all_and_check_pts(env, [client, bridge], transport,
                                  sigs={bridge.name: signal.SIGINT})
    check(not obfs4_procs(), f"obfs4proxy left: {obfs4_procs()}")


# ---------------------------------------------------------------- the combiner without tor

class ManagedPT:
    """`sctpt chain` started the way tor starts it: TOR_PT_* environment, stdin a pipe we
    hold (closing it asks for exit), stdout read line by line (kept in .lines and a file)."""

    def __init__(self, env, name, conf, tor_env, prefix=()):
        import subprocess
        import threading
        self.name = name
        self.dir = os.path.join(env.dir, name)
        os.makedirs(self.dir, exist_ok=True)
        e = lib.clean_env()
        for k in list(e):
            if k.startswith("TOR_PT_"):
                del e[k]
        e.update({"TOR_PT_MANAGED_TRANSPORT_VER": "1",
                  "TOR_PT_STATE_LOCATION": os.path.join(self.dir, "pt_state"),
                  "TOR_PT_EXIT_ON_STDIN_CLOSE": "1"})
        e.update(tor_env)
        self.stderr = open(os.path.join(self.dir, "stderr.log"), "ab")
        self.out_path = os.path.join(self.dir, "stdout.log")
        self.lines = []
        self.popen = subprocess.Popen(list(prefix) + [BIN, "chain", "--config", conf],
                                      stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self.stderr,
                                      start_new_session=True, preexec_fn=lib._child_setup,
                                      env=e)
        self.pid = self.popen.pid
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        env.add(self)

    def _read(self):
        with open(self.out_path, "a") as log:
            for raw in self.popen.stdout:
                ln = raw.decode(errors="replace").rstrip("\n")
                self.lines.append(ln)
                log.write(ln + "\n")
                log.flush()

    def wait_line(self, pattern, secs):
        """The first stdout line matching the regex (a match object), waiting up to secs."""
        rx = re.compile(pattern)

        def find():
            for ln in list(self.lines):
                m = rx.search(ln)
                if m:
                    return m
            return None
        return lib.wait_until(find, secs, f"{self.name}: stdout line /{pattern}/; got "
                                          f"{self.lines[-8:]}")

    def text(self):
        return "\n".join(self.lines)

    def children(self):
        return [p for p in torlib.netns_pids() if _ppid(p) == self.pid]

    def close(self):
        import contextlib
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.popen.wait(5)
        self.stderr.close()


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def stop_clean(*pts):
    """Stop combiners as tor does (stdin closed), require exit 0, no child left and no
    sanitizer report (a sanitizer build writes them at exit)."""
    kids = [k for pt in pts for k in pt.children()]
    for pt in pts:
        pt.popen.stdin.close()
    for pt in pts:
        rc = pt.popen.wait(10)
        check(rc == 0, f"{pt.name}: exit status {rc} after stdin closed")
    _no_process_left(kids, 10, "children after their combiner stopped")


def _alive(pid):
    return torlib.proc_state(pid) not in (None, "Z", "X")


class ExtORServer(lib.TCPServerThread):
    """A stand-in for tor's Extended ORPort: SAFE_COOKIE, then it records USERADDR and
    TRANSPORT of every connection, answers OKAY (or DENY for an address in .deny), reads
    the client's first line ("NAME SEQ") and answers "ok NAME SEQ USERADDR"."""

    def __init__(self, cookie_path):
        import secrets
        self.cookie = secrets.token_bytes(32)
        with open(cookie_path, "wb") as f:
            f.write(b"! Extended ORPort Auth Cookie !\x0a" + self.cookie)
        self.records = []
        self.deny = set()
        super().__init__(self._handle, conn_timeout=60)

    def _handle(self, c):
        import hmac
        import secrets
        import struct
        c.sendall(b"\x01\x00")
        msg = lib.recv_exact(c, 33)
        check(msg[0] == 1, "child chose no SAFE_COOKIE")
        cnonce, snonce = msg[1:], secrets.token_bytes(32)
        h = lambda label: hmac.new(self.cookie, label + cnonce + snonce, hashlib.sha256).digest()
        c.sendall(h(b"ExtORPort authentication server-to-client hash") + snonce)
        ok = hmac.compare_digest(lib.recv_exact(c, 32),
                                 h(b"ExtORPort authentication client-to-server hash"))
        c.sendall(b"\x01" if ok else b"\x00")
        if not ok:
            self.records.append(("badauth", None, None))
            return
        useraddr = transport = None
        while True:
            t, n = struct.unpack(">HH", lib.recv_exact(c, 4))
            body = lib.recv_exact(c, n) if n else b""
            if t == 1:
                useraddr = body.decode()
            elif t == 2:
                transport = body.decode()
            elif t == 0:
                break
        ip = useraddr.rsplit(":", 1)[0] if useraddr else None
        if ip in self.deny:
            c.sendall(struct.pack(">HH", 0x1001, 0))
            self.records.append(("denied", useraddr, transport))
            return
        c.sendall(struct.pack(">HH", 0x1000, 0))
        line = b""
        while not line.endswith(b"\n") and len(line) < 200:
            b = c.recv(1)
            if not b:
                break
            line += b
        text = line.decode(errors="replace").strip()
        self.records.append((text, useraddr, transport))
        if text.startswith("BULK "):
            # "BULK N": N bytes follow; the answer is their SHA-256.
            left, h = int(text.split()[1]), hashlib.sha256()
            while left > 0:
                b = c.recv(min(left, 1 << 16))
                if not b:
                    break
                h.update(b)
                left -= len(b)
            c.sendall(f"sha {h.hexdigest()}\n".encode())
        else:
            c.sendall(f"ok {text} {useraddr}\n".encode())
        lib.wait_closed(c, 30)


def bridge_without_tor(env, conf, alias="obfs4_sctp", name="bridge", options=None,
                       host=LOOP, udp=True):
    """The bridge-side combiner with ExtORServer as its tor.  Returns (pt, extor, port, args)."""
    ext = env.add(ExtORServer(os.path.join(env.dir, f"{name}-cookie")))
    port = torlib.port(udp=udp)
    tor_env = {"TOR_PT_SERVER_TRANSPORTS": alias,
               "TOR_PT_SERVER_BINDADDR": f"{alias}-{host}:{port}",
               "TOR_PT_ORPORT": f"{LOOP}:{torlib.port()}",
               "TOR_PT_EXTENDED_SERVER_PORT": f"{LOOP}:{ext.addr[1]}",
               "TOR_PT_AUTH_COOKIE_FILE": os.path.join(env.dir, f"{name}-cookie")}
    if options:
        tor_env["TOR_PT_SERVER_TRANSPORT_OPTIONS"] = options
    pt = ManagedPT(env, name, conf, tor_env)
    m = pt.wait_line(rf"^SMETHOD {alias} (\S+) ARGS:(\S+)$", 30)
    pt.wait_line(r"^SMETHODS DONE$", 10)
    args = _unescape_smethod(m.group(2))
    return pt, ext, port, args


def _unescape_smethod(s):
    """SMETHOD ARGS text -> [(k, v)]."""
    out, cur, key, i = [], "", None, 0
    while i <= len(s):
        ch = s[i] if i < len(s) else ","
        if ch == "\\" and i + 1 < len(s):
            cur += s[i + 1]
            i += 2
            continue
        if ch == "=" and key is None:
            key, cur = cur, ""
        elif ch == ",":
            out.append((key, cur))
            key, cur = None, ""
        else:
            cur += ch
        i += 1
    return out


def socks_user(args):
    """tor's SOCKS5 username/password for a bridge's arguments (';' and '\\' escaped)."""
    esc = lambda x: x.replace("\\", "\\\\").replace(";", "\\;")
    s = ";".join(f"{esc(k)}={esc(v)}" for k, v in args).encode()
    return s[:255], (s[255:] or b"\x00")


def client_without_tor(env, conf, alias="obfs4_sctp", name="client", bind=None, prefix=()):
    tor_env = {"TOR_PT_CLIENT_TRANSPORTS": alias}
    if bind:
        tor_env["TOR_PT_OUTBOUND_BIND_ADDRESS_V4"] = bind
    pt = ManagedPT(env, name, conf, tor_env, prefix=prefix)
    m = pt.wait_line(rf"^CMETHOD {alias} socks5 {re.escape(LOOP)}:(\d+)$", 30)
    pt.wait_line(r"^CMETHODS DONE$", 10)
    return pt, int(m.group(1))


def chain_request(socks_port, bridge_port, args, name, seq, secs=40, netns=None,
                  bridge_host=LOOP, payload=b""):
    """One connection through the chain; returns the ExtORServer's answer line.  With netns
    (an open /proc/PID/ns/net file), this thread first moves into that network namespace."""
    if netns is not None:
        check(torlib._libc.setns(netns.fileno(), torlib.CLONE_NEWNET) == 0, "setns failed")
    user, pw = socks_user(args)
    s = lib.proxy_socket(socks_port, secs)
    try:
        check(lib.socks5_greet(s, (2,)) == 2, "no user/pass method")
        s.sendall(bytes([1, len(user)]) + user + bytes([len(pw)]) + pw)
        check(lib.recv_exact(s, 2)[1] == 0, "auth refused")
        s.sendall(lib.socks5_request_bytes(bridge_host, bridge_port))
        rep = lib.socks5_read_reply(s)
        if rep != 0:
            raise lib.SocksError(rep)
        s.sendall(f"{name} {seq}\n".encode() + payload)
        buf = b""
        while not buf.endswith(b"\n"):
            b = s.recv(4096)
            if not b:
                break
            buf += b
        return buf.decode(errors="replace").strip()
    finally:
        s.close()


@lib.timeout(120)
def test_chain_useraddr_exact(env):
    """Two clients with different source addresses (127.0.0.2 and 127.0.0.3, given to their
    outermost hop as TOR_PT_OUTBOUND_BIND_ADDRESS_V4) open 40 connections each, all at once,
    through obfs4|sctp to a bridge-side combiner whose "tor" is a test Extended ORPort server:
    every connection reaches it with TRANSPORT obfs4_sctp and the USERADDR of the client that
    opened it (inner hop obfs4 only ever sees 127.42.x.y sources; the combiner maps them
    back).  A client whose address the ExtORPort DENYs gets its connection closed through the
    whole chain, and the others keep working."""
    torlib.setup(env)
    conf = chain_config(env)
    bridge, ext, bport, args = bridge_without_tor(env, conf)
    keys = sorted(k for k, _ in args)
    check(keys == ["obfs4.cert", "obfs4.iat-mode", "sctp.cert"], f"SMETHOD ARGS keys {keys}")
    line = open(os.path.join(bridge.dir, "pt_state", "sctpt_chain_bridgelines.txt")).read()
    check(re.search(rf"^Bridge obfs4_sctp <IP ADDRESS>:{bport} <FINGERPRINT> obfs4\.cert=\S+ "
                    r"obfs4\.iat-mode=0 sctp\.cert=\S+$", line, re.M),
          f"bridge line file: {line!r}")
    clients = {}
    for name, ip in (("A", "127.0.0.2"), ("B", "127.0.0.3"), ("D", "127.0.0.4")):
        clients[name] = (ip,) + client_without_tor(env, conf, name=f"client{name}", bind=ip)
    ext.deny.add("127.0.0.4")
    n = 40
    t0 = time.monotonic()
    jobs = [(name, i) for i in range(n) for name in ("A", "B")]

    answers = {}

    def one(name, i):
        answers[(name, i)] = chain_request(clients[name][2], bport, args, name, i)

    errs = lib.run_parallel(one, jobs, 90)
    results = [answers.get(j, e) for j, e in zip(jobs, errs)]
    t_par = time.monotonic() - t0
    bad = [(j, r) for j, r in zip(jobs, results) if not (isinstance(r, str) and r.startswith(
        f"ok {j[0]} {j[1]} {clients[j[0]][0]}:"))]
    check(not bad, f"{len(bad)} of {len(jobs)} connections wrong: {bad[:4]}")
    recs = [r for r in ext.records if r[0] not in ("denied", "badauth")]
    check(len(recs) == len(jobs), f"ExtORPort saw {len(recs)} connections, want {len(jobs)}")
    wrong = [r for r in recs if r[2] != "obfs4_sctp" or
             r[1].rsplit(":", 1)[0] != clients[r[0].split()[0]][0]]
    check(not wrong, f"mislabeled at the ExtORPort: {wrong[:4]}")
    ports = {name: {r[1] for r in recs if r[0].startswith(name + " ")} for name in ("A", "B")}
    info(f"{len(jobs)} concurrent connections from 2 clients mapped exactly in {t_par:.1f}s; "
         f"USERADDRs {ports}")
    # A denied client: its connection closes without an answer.
    try:
        r = chain_request(clients["D"][2], bport, args, "D", 0, secs=30)
    except (lib.SocksError, OSError) as e:
        r = f"closed ({type(e).__name__})"
    check(not r.startswith("ok"), f"denied client got an answer: {r!r}")
    lib.wait_until(lambda: any(x[0] == "denied" and x[1].startswith("127.0.0.4:")
                               for x in ext.records), 10, "DENY recorded")
    check("tor denied a connection" in bridge.text(), "bridge did not log the DENY")
    check(chain_request(clients["A"][2], bport, args, "A", 99).startswith("ok A 99 127.0.0.2:"),
          "client A after the DENY")
    # Bytes arrive intact through both hops (8 MiB, checked by SHA-256).
    data = os.urandom(8 << 20)
    t0 = time.monotonic()
    rb = chain_request(clients["B"][2], bport, args, "BULK", len(data), payload=data)
    secs = time.monotonic() - t0
    check(rb == f"sha {hashlib.sha256(data).hexdigest()}", f"bulk through the chain: {rb[:80]!r}")
    info(f"8 MiB through obfs4|sctp intact in {secs:.2f}s ({8 / secs:.1f} MiB/s)")
    info(f"denied client 127.0.0.4: {r}")
    stop_clean(bridge, *(c[1] for c in clients.values()))
    torlib.check_no_sanitizer_reports(env)


def _no_process_left(pids, secs, what):
    lib.wait_until(lambda: not [p for p in pids if _alive(p)], secs,
                   f"{what}: processes {[(p, torlib.proc_exe(p)) for p in pids if _alive(p)]} "
                   f"still running")


def _chain_exes():
    exes = {SCTPT, os.path.realpath(torlib.OBFS4PROXY)}
    return [p for p in torlib.netns_pids() if torlib.proc_exe(p) in exes]


@lib.timeout(60)
def test_chain_bad_config_and_child_error(env):
    """A config naming an unknown transport is refused with the documented CMETHOD-ERROR line
    (file, line number, what is wrong) and the combiner exits; a non-identifier alias, a loop
    and a missing binary likewise; a child answering CMETHOD-ERROR makes the alias's
    CMETHOD-ERROR name the hop and repeat the child's words; nothing is left running."""
    torlib.setup(env)
    cases = [
        ("Alias obfs4_sctp obfs4|meek\n",
         r"^CMETHOD-ERROR obfs4_sctp \S+/unknown\.conf: line 7: Alias obfs4_sctp: unknown "
         r"transport 'meek' \(no ClientTransportPlugin line for it\)$", "unknown"),
        ("Alias obfs4_sctp obfs4|sctp|obfs4\n",
         r"^CMETHOD-ERROR obfs4_sctp \S+/loop\.conf: line 7: Alias obfs4_sctp: transport 'obfs4' "
         r"appears twice \(a chain may not loop through a transport\)$", "loop"),
        ("Alias obfs4-sctp obfs4|sctp\n",
         r"^CMETHOD-ERROR obfs4_sctp \S+/name\.conf: line 7: Alias: name 'obfs4-sctp' is not "
         r"a C identifier", "name"),
        ("ClientTransportPlugin gone exec /nonexistent/pt\nAlias x gone|sctp\n",
         r"^CMETHOD-ERROR obfs4_sctp \S+/missing\.conf: line 7: transport gone: cannot run "
         r"/nonexistent/pt: No such file or directory$", "missing"),
    ]
    for extra, rx, name in cases:
        conf = chain_config(env, f"{name}.conf", extra, aliases=False)
        pt = ManagedPT(env, f"client-{name}", conf, {"TOR_PT_CLIENT_TRANSPORTS": "obfs4_sctp"})
        pt.wait_line(r"^VERSION 1$", 10)
        pt.wait_line(rx, 10)
        pt.wait_line(r"^CMETHODS DONE$", 10)
        check(pt.popen.wait(10) is not None, f"{name}: combiner still running")
    # An alias the file does not have.
    conf = chain_config(env, "ok.conf")
    pt = ManagedPT(env, "client-noalias", conf, {"TOR_PT_CLIENT_TRANSPORTS": "nope"})
    pt.wait_line(r"^CMETHOD-ERROR nope no Alias nope in \S+/ok\.conf$", 10)
    # A child that refuses.
    bad = os.path.join(env.dir, "refuser.sh")
    with open(bad, "w") as f:
        f.write("#!/bin/sh\necho 'VERSION 1'\necho 'CMETHOD-ERROR bad no network today'\n"
                "echo 'CMETHODS DONE'\nexec sleep 30\n")
    os.chmod(bad, 0o755)
    conf = chain_config(env, "refuse.conf", f"ClientTransportPlugin bad exec {bad}\n"
                                            "Alias obfs4_sctp obfs4|sctp\nAlias obfs4_bad obfs4|bad\n",
                        aliases=False)
    pt = ManagedPT(env, "client-refuse", conf,
                   {"TOR_PT_CLIENT_TRANSPORTS": "obfs4_sctp,obfs4_bad"})
    pt.wait_line(r"^CMETHOD obfs4_sctp socks5 127\.0\.0\.1:\d+$", 30)
    m = pt.wait_line(r"^CMETHOD-ERROR obfs4_bad .*$", 30)
    check(m.group(0) == "CMETHOD-ERROR obfs4_bad hop 1 (bad): CMETHOD-ERROR no network today",
          f"refusing child: {m.group(0)!r}")
    pt.wait_line(r"^CMETHODS DONE$", 10)
    kids = pt.children()
    check(not [p for p in kids if "sleep" in (torlib.proc_exe(p) or "")],
          "the refusing child was not stopped")
    pt.popen.stdin.close()
    check(pt.popen.wait(10) == 0, "combiner did not exit 0 after stdin closed")
    _no_process_left(kids, 10, "after stdin closed")
    torlib.check_no_sanitizer_reports(env)
    info(f"refused as documented: {m.group(0)}")


@lib.timeout(90)
def test_chain_restart_and_shutdown(env):
    """Children killed mid-session are restarted with backoff and tor is told (STATUS
    TRANSPORT=<alias> HOP=<n> ... STATE=restarting, then STATE=running, and a LOG line);
    connections work again afterwards.  Shutdown: closing the bridge combiner's stdin stops it
    and its children (pt-spec order); SIGKILL of the client combiner (tor crashing) leaves no
    orphan either (PR_SET_PDEATHSIG)."""
    torlib.setup(env)
    conf = chain_config(env)
    bridge, ext, bport, args = bridge_without_tor(env, conf)
    client, sport = client_without_tor(env, conf)
    check(chain_request(sport, bport, args, "A", 0).startswith("ok A 0 "), "first request")
    # Mid-session: a connection is open while hop 0 (obfs4) dies on both sides.
    user, pw = socks_user(args)
    s = lib.proxy_socket(sport, 30)
    check(lib.socks5_greet(s, (2,)) == 2, "greet")
    s.sendall(bytes([1, len(user)]) + user + bytes([len(pw)]) + pw)
    check(lib.recv_exact(s, 2)[1] == 0, "auth")
    s.sendall(lib.socks5_request_bytes(LOOP, bport))
    check(lib.socks5_read_reply(s) == 0, "connect")
    for pt in (client, bridge):
        kids = [p for p in pt.children() if torlib.proc_exe(p) ==
                os.path.realpath(torlib.OBFS4PROXY)]
        check(len(kids) == 1, f"{pt.name}: obfs4 children {kids}")
        os.kill(kids[0], signal.SIGKILL)
        pt.wait_line(r"^STATUS TRANSPORT=obfs4_sctp HOP=0 CHILD=obfs4 STATE=restarting "
                     r"DETAIL=\"killed by signal 9\"$", 10)
        pt.wait_line(r"^STATUS TRANSPORT=obfs4_sctp HOP=0 CHILD=obfs4 STATE=running", 15)
        check(re.search(r"LOG SEVERITY=warning MESSAGE=\"obfs4_sctp: hop 0 \(obfs4\) killed by "
                        r"signal 9; restarting it in 1 s\"", pt.text()), f"{pt.name}: no LOG")
    check(lib.wait_closed(s, 15), "the connection through the killed child stayed open")
    check(re.search(r'^LOG SEVERITY=\w+ MESSAGE="\[obfs4_sctp hop 1 sctp\] ', client.text(), re.M),
          "no LOG line of the sctp child tagged with its hop")
    check(re.search(r"^STATUS TRANSPORT=obfs4_sctp HOP=1 CHILD=sctp ADDRESS=127\.0\.0\.1:"
                    rf"{bport} CONNECT=Success$", client.text(), re.M),
          "the sctp child's STATUS line was not relayed with alias and hop")
    s.close()
    check(chain_request(sport, bport, args, "A", 1).startswith("ok A 1 "),
          "request after the restarts")
    # Shutdown by stdin (tor's way), then the client combiner dies hard.
    bkids, ckids = bridge.children(), client.children()
    t0 = time.monotonic()
    bridge.popen.stdin.close()
    check(bridge.popen.wait(10) == 0, "bridge combiner: no clean exit after stdin closed")
    t_stop = time.monotonic() - t0
    _no_process_left(bkids, 5, "bridge children")
    os.kill(client.pid, signal.SIGKILL)
    client.popen.wait(5)
    _no_process_left(ckids, 5, "client children after SIGKILL of the combiner")
    check(not _chain_exes(), f"left: {_chain_exes()}")
    torlib.check_no_sanitizer_reports(env)
    info(f"restarts reported and working; bridge stopped in {t_stop:.2f}s after stdin closed")


class NetnsHost:
    """A network namespace of this test joined to ours by a veth pair: 10.201.N.1 on our
    side, 10.201.N.2 inside.  Held open by a sleeping process; everything goes when it does."""

    def __init__(self, env, n):
        import subprocess
        self.ours, self.theirs = f"10.201.{n}.1", f"10.201.{n}.2"
        self.holder = env.spawn(f"netns{n}", ["unshare", "-n", "sleep", "300"])
        pid = self.holder.pid
        lib.wait_until(lambda: os.readlink(f"/proc/{pid}/ns/net") !=
                       os.readlink("/proc/self/ns/net"), 5, "holder in its own netns")
        a, b = f"vch{n}a", f"vch{n}b"
        cmds = [["ip", "link", "add", a, "type", "veth", "peer", "name", b],
                ["ip", "link", "set", b, "netns", str(pid)],
                ["ip", "addr", "add", f"{self.ours}/24", "dev", a],
                ["ip", "link", "set", a, "up"],
                ["nsenter", "-t", str(pid), "-n", "ip", "addr", "add", f"{self.theirs}/24",
                 "dev", b],
                ["nsenter", "-t", str(pid), "-n", "ip", "link", "set", b, "up"],
                ["nsenter", "-t", str(pid), "-n", "ip", "link", "set", "lo", "up"]]
        for c in cmds:
            r = subprocess.run(c, capture_output=True, timeout=10)
            check(r.returncode == 0, f"{' '.join(c)}: {r.stderr.decode()[:200]}")
        self.prefix = ["nsenter", "-t", str(pid), "-n", "--"]
        self.ns = open(f"/proc/{pid}/ns/net", "rb")
        env.add(self)

    def close(self):
        self.ns.close()
        self.holder.kill()


@lib.timeout(90)
def test_chain_useraddr_netns(env):
    """sctp|obfs4 with two clients in two network namespaces of their own (10.201.1.2 and
    10.201.2.2), 30 connections each at once: obfs4 is outermost, so every connection is its
    own TCP connection from the client, and the test Extended ORPort must see, for each one,
    the address of the namespace it came from and a source port no other connection had
    (sctp, the inner hop, only ever sees 127.42.x.y sources)."""
    torlib.setup(env)
    conf = chain_config(env)
    bridge, ext, bport, args = bridge_without_tor(env, conf, alias="sctp_obfs4", host="0.0.0.0",
                                                  udp=False,
                                                  options="sctp_obfs4:sctp.carrier=tcp")
    check(("sctp.carrier", "tcp") in args, f"args {args}")
    hosts = {"A": NetnsHost(env, 1), "B": NetnsHost(env, 2)}
    socks = {name: client_without_tor(env, conf, alias="sctp_obfs4", name=f"client{name}",
                                      prefix=h.prefix)[1] for name, h in hosts.items()}
    n = 30
    jobs = [(name, i) for i in range(n) for name in hosts]
    answers = {}

    def one(name, i):
        h = hosts[name]
        answers[(name, i)] = chain_request(socks[name], bport, args, name, i, netns=h.ns,
                                           bridge_host=h.ours)

    t0 = time.monotonic()
    errs = lib.run_parallel(one, jobs, 75)
    t_par = time.monotonic() - t0
    bad = [(j, answers.get(j, e)) for j, e in zip(jobs, errs)
           if not answers.get(j, "").startswith(f"ok {j[0]} {j[1]} {hosts[j[0]].theirs}:")]
    check(not bad, f"{len(bad)} of {len(jobs)} wrong: {bad[:4]}")
    addrs = [answers[j].split()[3] for j in jobs]
    check(len(set(addrs)) == len(addrs), f"USERADDRs repeat: {len(set(addrs))} distinct of "
                                         f"{len(addrs)}")
    recs = [r for r in ext.records if r[2] == "sctp_obfs4"]
    check(len(recs) == len(jobs), f"ExtORPort saw {len(recs)} with TRANSPORT sctp_obfs4")
    info(f"{len(jobs)} connections from 2 namespaces, each with its own exact USERADDR, in "
         f"{t_par:.1f}s (e.g. {addrs[0]}, {addrs[1]})")
    stop_clean(bridge)
    torlib.check_no_sanitizer_reports(env)


@lib.timeout(240)
def test_chain_tor_private_network(env):
    """A private Tor network (3 authorities, 2 relays, one an exit) and a bridge whose only
    transport is obfs4|sctp through `sctpt chain`: a client bootstraps to 100% through it and
    fetches a page; its circuits start at the bridge."""
    check(os.access(torlib.OBFS4PROXY, os.X_OK), "obfs4proxy not installed")
    torlib.setup(env)
    transport = chain_transport(chain_config(env), "obfs4_sctp", udp=True)
    t0 = time.monotonic()
    with torlib.diagnose(env):
        net = torlib.TorNetwork(env, n_auth=3, n_relays=2, n_exits=1)
        net.start()
        net.wait_ready(120)
        t_net = time.monotonic() - t0
        bridge = torlib.start_bridge(env, transport, net=net)
        bridge.wait_bootstrapped(60)
        client = torlib.start_client(env, transport, bridge.bridge_line, net=net)
        client.wait_notice(torlib.FRESH_DESC, 60)
        client.wait_bootstrapped(90)
        t_client = time.monotonic() - t0
        torlib.check_extorport(bridge, transport.name)
        web = env.add(torlib.PageServer(n=100 * 1024))
        out = os.path.join(env.dir, "page.bin")
        tries = []
        for _ in range(4):
            rc, err, meta = torlib.curl_socks(client.socks, web.url, out, secs=45)
            tries.append((rc, err[-160:], meta))
            if rc == 0:
                break
            time.sleep(2)
        check(rc == 0, f"curl through tor failed: {tries}")
        check(torlib.file_sha256(out) == web.sha256, "page corrupted")
        paths = []
        for c in client.control("GETINFO circuit-status")[0]:
            f = c.split()
            if len(f) > 2 and f[1] == "BUILT":
                paths.append([h[1:41] for h in f[2].split(",")])
        check(any(p and p[0] == bridge.fingerprint for p in paths),
              f"no circuit starts at the bridge: {paths[:4]}")
        info(f"network {t_net:.1f}s, client bootstrapped through obfs4|sctp {t_client:.1f}s, "
             f"page fetched {time.monotonic() - t0:.1f}s after start")
        torlib.stop_all_and_check_pts(env, [client, bridge], transport,
                                      sigs={bridge.name: signal.SIGINT})
        for t in net.relays + net.auths:
            t.stop()
        for t in net.relays + net.auths:
            t.wait_exit_or_kill(15)
        check(not obfs4_procs(), f"obfs4proxy left: {obfs4_procs()}")


# A minimal pt-spec v1 transport that does not know the Extended ORPort: the client side is a
# SOCKS5 server that connects straight to the destination, the server side forwards each
# connection to TOR_PT_ORPORT.  Bytes pass unchanged.
PLAIN_PT = r'''#!/usr/bin/env python3
import os, socket, struct, sys, threading

def splice(a, b):
    def pump(x, y):
        try:
            while True:
                d = x.recv(65536)
                if not d:
                    break
                y.sendall(d)
        except OSError:
            pass
        for s in (x, y):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    threading.Thread(target=pump, args=(a, b), daemon=True).start()
    threading.Thread(target=pump, args=(b, a), daemon=True).start()

def exact(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise OSError("eof")
        b += d
    return b

def socks(c):
    try:
        v, n = exact(c, 2)
        methods = exact(c, n)
        m = 2 if 2 in methods else 0
        c.sendall(bytes([5, m]))
        if m == 2:
            exact(c, 1); u = exact(c, exact(c, 1)[0]); p = exact(c, exact(c, 1)[0])
            c.sendall(b"\x01\x00")
        h = exact(c, 4)
        ip = socket.inet_ntoa(exact(c, 4)); port = struct.unpack(">H", exact(c, 2))[0]
        up = socket.create_connection((ip, port), 10)
        c.sendall(b"\x05\x00\x00\x01" + bytes(4) + b"\x00\x00")
        splice(c, up)
    except OSError:
        c.close()

def server(c):
    host, port = os.environ["TOR_PT_ORPORT"].rsplit(":", 1)
    try:
        splice(c, socket.create_connection((host, int(port)), 10))
    except OSError:
        c.close()

def main():
    client = "TOR_PT_CLIENT_TRANSPORTS" in os.environ
    lis = socket.socket()
    lis.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if client:
        lis.bind(("127.0.0.1", 0))
    else:
        host, port = os.environ["TOR_PT_SERVER_BINDADDR"].split("-", 1)[1].rsplit(":", 1)
        lis.bind((host, int(port)))
    lis.listen(128)
    a = "%s:%d" % lis.getsockname()
    print("VERSION 1")
    print(("CMETHOD plain socks5 %s\nCMETHODS DONE" if client else
           "SMETHOD plain %s\nSMETHODS DONE") % a, flush=True)
    def stdin_watch():
        sys.stdin.read()
        os._exit(0)
    threading.Thread(target=stdin_watch, daemon=True).start()
    while True:
        c, _ = lis.accept()
        threading.Thread(target=socks if client else server, args=(c,), daemon=True).start()

main()
'''


@lib.timeout(60)
def test_chain_plain_orport_child(env):
    """An inner hop that knows only the plain ORPort (a minimal pt-spec transport written for
    this test) still works in plain|sctp: connections from two clients (127.0.0.2 and
    127.0.0.3) reach the Extended ORPort with the address of the oldest connection waiting at
    that hop, which is right when they come one at a time, and the bridge's log says the
    address is approximate there.  A three-hop chain obfs4|plain|sctp works end to end.
    Also: TOR_PT_PROXY goes to the outermost client hop only
    (the combiner answers PROXY DONE), and the bridge's children get our Extended ORPort and
    cookie, not tor's."""
    torlib.setup(env)
    plain = os.path.join(env.dir, "plainpt.py")
    with open(plain, "w") as f:
        f.write(PLAIN_PT)
    os.chmod(plain, 0o755)
    conf = chain_config(env, "plain.conf",
                        f"ClientTransportPlugin plain exec {plain}\n"
                        f"ServerTransportPlugin plain exec {plain}\n"
                        "Alias plain_sctp plain|sctp\n"
                        "Alias three obfs4|plain|sctp\n", aliases=False)
    bridge, ext, bport, args = bridge_without_tor(env, conf, alias="plain_sctp")
    check([k for k, _ in args] == ["sctp.cert"], f"args {args}")
    for kid in bridge.children():
        e = torlib.proc_environ(kid)
        check(e.get("TOR_PT_AUTH_COOKIE_FILE", "").endswith("/sctpt_chain_extor_cookie") and
              e.get("TOR_PT_EXTENDED_SERVER_PORT") != f"{LOOP}:{ext.addr[1]}",
              f"bridge child {kid} has tor's Extended ORPort or cookie: {e}")
    answers = []
    for i in range(6):
        name, ip = ("A", "127.0.0.2") if i % 2 == 0 else ("B", "127.0.0.3")
        c, sport = client_without_tor(env, conf, alias="plain_sctp", name=f"client{i}", bind=ip)
        r = chain_request(sport, bport, args, name, i)
        check(r.startswith(f"ok {name} {i} {ip}:"), f"connection {i}: {r!r}")
        answers.append(r)
        if i > 0:
            stop_clean(c)
            continue
        # The first client also checks what each hop was given.
        kids = {torlib.proc_exe(k): torlib.proc_environ(k) for k in c.children()}
        check(len(kids) == 2, f"client children {list(kids)}")
    check("does not speak the Extended ORPort: client addresses at this hop are approximate"
          in bridge.text(), "no 'approximate' log line on the bridge")
    # TOR_PT_PROXY: to the outermost hop only.
    pt = ManagedPT(env, "client-proxy", conf, {"TOR_PT_CLIENT_TRANSPORTS": "plain_sctp",
                                               "TOR_PT_PROXY": "socks5://127.0.0.1:9"})
    pt.wait_line(r"^PROXY DONE$", 10)
    pt.wait_line(r"^CMETHODS DONE$", 30)
    envs = {}
    for k in pt.children():
        e = torlib.proc_environ(k)
        envs[e.get("TOR_PT_CLIENT_TRANSPORTS")] = e
    check(envs["sctp"].get("TOR_PT_PROXY") == "socks5://127.0.0.1:9" and
          "TOR_PT_PROXY" not in envs["plain"], "TOR_PT_PROXY not (only) at the outermost hop")
    check(all(e.get("TOR_PT_EXIT_ON_STDIN_CLOSE") == "1" for e in envs.values()),
          "TOR_PT_EXIT_ON_STDIN_CLOSE not passed on")
    check(envs["plain"]["TOR_PT_STATE_LOCATION"].endswith("/chain/plain_sctp/0_plain"),
          f"state dir {envs['plain']['TOR_PT_STATE_LOCATION']}")
    # Three hops: obfs4 inside plain inside sctp, each hop's arguments where they belong.
    bridge3, ext3, bport3, args3 = bridge_without_tor(env, conf, alias="three", name="bridge3")
    check(sorted(k for k, _ in args3) == ["obfs4.cert", "obfs4.iat-mode", "sctp.cert"],
          f"three-hop args {args3}")
    c3, sport3 = client_without_tor(env, conf, alias="three", name="client3", bind="127.0.0.5")
    for i in range(3):
        r = chain_request(sport3, bport3, args3, "T", i)
        check(r.startswith(f"ok T {i} 127.0.0.5:"), f"three hops, connection {i}: {r!r}")
    check(len(c3.children()) == 3 and len(bridge3.children()) == 3, "three children each side")
    stop_clean(pt, bridge, c3, bridge3)
    torlib.check_no_sanitizer_reports(env)
    info(f"plain ORPort hop: {len(answers)} connections labelled right, one at a time; "
         f"e.g. {answers[0]}; three hops obfs4|plain|sctp: {r}")
