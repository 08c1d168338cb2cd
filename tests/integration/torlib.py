"""Real-tor harness for the sctpt integration tests (Python 3 standard library only).

Runs Debian's tor (/usr/sbin/tor, tor-gencert) as bridges, clients, relays and directory
authorities, with a managed pluggable transport on both sides of the bridge, all on loopback.

Isolation.  enter_private_netns() moves the *whole test process* into a new network namespace
with only `lo` (brought up) before anything starts; every process of the test (tor, the PTs
tor spawns, curl, the HTTP server thread) inherits it, so nothing a test starts can reach any
address outside that namespace (no route, no interface), and nothing else on the host can reach
in.  In addition every torrc points ServerDNSResolvConfFile at "nameserver 127.0.0.1" with
hijack detection off, and a private network uses explicit DirAuthority lines (no default
authorities, no fallback directories).  The test process also becomes a child subreaper, so
a PT that outlives its tor is re-parented to us and its exit status can be collected.

Pieces:
  enter_private_netns()  new netns with lo up (checked: only lo, no routes); child subreaper
  Transport              a managed PT: name, exec line, bridge-line args from pt_state;
                         obfs4() (obfs4proxy) and sctp() (SCTPT_BIN); transport_from_env()
  Tor                    one tor: its torrc, DataDirectory, notice log (stdout) and info/debug
                         log file, log waits, fingerprint, PT children, control port, stop
  start_bridge / start_client
                         a bridge serving a transport (ExtORPort auto) and a client using it;
                         with net=TorNetwork they join the private network
  TorNetwork             3 directory authorities (tor-gencert keys), relays, one or more exits
  check_extorport        the bridge's debug log shows a connection through the Extended ORPort
                         (SAFE_COOKIE ok, USERADDR, DONE) with the transport's name
  stop_all_and_check_pts stop tors as tor is normally stopped (SIGTERM), then require that every
                         PT process of this test has exited within a bound
  PageServer             HTTP server on 127.0.0.1 serving random bytes
  diagnose(env)          context manager: on failure print the PT-related lines of every tor log
                         (PT stderr, LOG/STATUS lines, ExtORPort, warnings) and bootstrap state

Tor 0.4.9 facts this relies on (measured with a fake PT that dumps what it gets):
  * client PT env: TOR_PT_MANAGED_TRANSPORT_VER=1, TOR_PT_CLIENT_TRANSPORTS=<names>,
    TOR_PT_STATE_LOCATION=<DataDirectory>/pt_state/, TOR_PT_EXIT_ON_STDIN_CLOSE=1
  * server PT env: TOR_PT_MANAGED_TRANSPORT_VER=1, TOR_PT_SERVER_TRANSPORTS=<names>,
    TOR_PT_SERVER_BINDADDR=<name>-<addr:port> (from ServerTransportListenAddr),
    TOR_PT_ORPORT=127.0.0.1:<ORPort>, TOR_PT_EXTENDED_SERVER_PORT=127.0.0.1:<auto port>,
    TOR_PT_AUTH_COOKIE_FILE=<DataDirectory>/extended_orport_auth_cookie,
    TOR_PT_STATE_LOCATION=<DataDirectory>/pt_state/, TOR_PT_EXIT_ON_STDIN_CLOSE=1
    (plus tor's own environment; cwd is tor's cwd; same process group and session as tor)
  * the PT's stdin/stdout/stderr are pipes to tor; stderr lines are logged by tor at info:
    "Managed proxy at '<path>' reported via standard error: <line>"
  * at shutdown tor sends SIGTERM and closes all three pipes at once (so later writes to
    stdout/stderr get EPIPE / SIGPIPE), does not wait for the PT and never sends SIGKILL;
    the PT also has PR_SET_PDEATHSIG=SIGTERM, so it gets a second SIGTERM when tor exits.
  * a bridge writes <DataDirectory>/bridgelines ("Bridge NAME ADDR:PORT FP ARGS...") built from
    the PT's SMETHOD line; obfs4proxy writes pt_state/obfs4_bridgeline.txt, sctpt
    pt_state/sctpt_bridgeline.txt.
"""

import contextlib
import ctypes
import hashlib
import http.server
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import lib
from lib import BIN, LOOP, TestFailure, check, info, run_cmd

TOR = shutil.which("tor") or "/usr/sbin/tor"
TOR_GENCERT = shutil.which("tor-gencert") or "/usr/bin/tor-gencert"
OBFS4PROXY = shutil.which("obfs4proxy") or "/usr/bin/obfs4proxy"
CURL = shutil.which("curl") or "/usr/bin/curl"

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
PR_SET_CHILD_SUBREAPER = 36

# Seconds a PT may take to exit after its tor has been told to stop.
PT_EXIT_SECS = 5.0

_NETNS = None          # readlink(/proc/self/ns/net) once inside our private namespace


# ---------------------------------------------------------------- network namespace

def enter_private_netns():
    """Move this (single-threaded) test process into a new network namespace with only lo.

    Everything started afterwards inherits it.  Idempotent.  Also makes this process a child
    subreaper so orphaned PTs are re-parented to it (see reap_status)."""
    global _NETNS
    if _NETNS is not None:
        return
    check(threading.active_count() == 1,
          "enter_private_netns() must run before any thread is started (the namespace is "
          "per thread; threads started later inherit it)")
    if _libc.unshare(CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise TestFailure(f"unshare(CLONE_NEWNET) failed: {os.strerror(e)} (tests run as root)")
    rc, out, err = run_cmd(["ip", "link", "set", "lo", "up"], 10)
    check(rc == 0, f"ip link set lo up failed: {err.strip()[:200]!r}")
    ifaces = [ln.split(":")[0].strip()
              for ln in Path("/proc/self/net/dev").read_text().splitlines()[2:] if ":" in ln]
    check(ifaces == ["lo"], f"private network namespace has interfaces {ifaces}, want only lo")
    routes = Path("/proc/self/net/route").read_text().splitlines()[1:]
    check(not [r for r in routes if r.strip()], f"private namespace has IPv4 routes: {routes}")
    _NETNS = os.readlink("/proc/self/ns/net")
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    # loopback really works
    s = socket.socket()
    try:
        s.bind((LOOP, 0))
    finally:
        s.close()


_next_port = 10000


def port(udp=False):
    """A loopback port for a listener of this test, below the kernel's ephemeral range.

    free_port() (bind to port 0, close) hands out an ephemeral port, and between that and the
    moment tor binds it, one of the tors' own outgoing connections can take it as its source
    port ("Could not bind ... Address already in use").  Ports below ip_local_port_range are
    never chosen for outgoing connections, and in our private namespace nobody else binds, so
    counting upwards from 10000 cannot collide."""
    global _next_port
    check(_NETNS is not None, "torlib.port() needs the private network namespace")
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    while True:
        p = _next_port
        _next_port += 1
        check(p < low, f"out of ports below the ephemeral range ({low})")
        ok = True
        for typ in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET, typ)
            try:
                s.bind((LOOP, p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return p


def netns_pids():
    """PIDs of live (non-zombie) processes other than us in our private network namespace."""
    check(_NETNS is not None, "not in a private network namespace")
    me, out = os.getpid(), []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{d}/ns/net") == _NETNS and proc_state(int(d)) not in ("Z", "X"):
                out.append(int(d))
    return out


def proc_stat(pid):
    """(state, ppid) of pid, or None if it does not exist."""
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def proc_state(pid):
    st = proc_stat(pid)
    return st[0] if st else None


def proc_exe(pid):
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
    return exe[:-len(" (deleted)")] if exe.endswith(" (deleted)") else exe


def proc_environ(pid):
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    env = {}
    for item in raw.split(b"\0"):
        k, sep, v = item.partition(b"=")
        if sep:
            env[k.decode(errors="replace")] = v.decode(errors="replace")
    return env


def reap_status(pid):
    """If pid is a zombie child of ours (a PT re-parented to us), reap it and return its
    decoded status ('exit N' or 'signal N'); None if not ours or still running."""
    try:
        rpid, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if rpid == 0:
        return None
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit {os.WEXITSTATUS(status)}"


class NetnsCleanup:
    """Env closer: SIGKILL whatever still runs in our namespace (PTs orphaned by a killed tor,
    stray curl), by pid; reap those that are ours but not Popen-managed."""

    def __init__(self, env):
        self.env = env

    def close(self):
        if _NETNS is None:
            return
        managed = {p.pid for p in self.env.procs}
        for _ in range(3):
            pids = netns_pids()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            for pid in pids:
                if pid not in managed:
                    reap_status(pid)


def setup(env):
    """Per-test setup: private netns, cleanup closer, tor list.  Returns env."""
    check(os.access(TOR, os.X_OK), f"tor not found ({TOR}); apt-get install -y tor")
    enter_private_netns()
    if not hasattr(env, "tors"):
        env.tors = []
        env.add(NetnsCleanup(env))
        Path(env.dir, "resolv.conf").write_text("nameserver 127.0.0.1\n")
        # tor hands its environment to the PTs.  A sanitizer build of sctpt writes its reports
        # to files here instead of stderr: tor closes the PT's stderr at shutdown, so a report
        # printed while the PT exits (e.g. a leak) would otherwise be lost.
        env.sanitizer_prefix = os.path.join(env.dir, "sanitizer")
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            cur = os.environ.get(var, "")
            os.environ[var] = (cur + ":" if cur else "") + f"log_path={env.sanitizer_prefix}"
    return env


def sanitizer_reports(env):
    """Contents of the sanitizer report files written by processes of this test."""
    d, base = os.path.split(env.sanitizer_prefix)
    return [Path(d, f).read_text(errors="replace") for f in sorted(os.listdir(d))
            if f.startswith(base + ".")]


def check_no_sanitizer_reports(env):
    reps = sanitizer_reports(env)
    check(not reps, f"{len(reps)} sanitizer report(s) from PT processes; first: "
                    f"{reps[0][:600] if reps else ''!r}")


# ---------------------------------------------------------------- transports

class Transport:
    """A managed pluggable transport as tor runs it.

    name        transport name in torrc and on the PT's CMETHOD/SMETHOD lines
    argv        the exec line (absolute path first)
    state_file  the bridge line the PT writes in <DataDirectory>/pt_state/
    udp         the server listens on UDP (ServerTransportListenAddr port is a UDP port)
    required    argument keys the bridge line must carry"""

    def __init__(self, name, argv, state_file, udp=False, required=("cert",)):
        self.name = name
        self.argv = [os.path.abspath(argv[0])] + list(argv[1:])
        self.exe = os.path.realpath(self.argv[0])
        self.state_file = state_file
        self.udp = udp
        self.required = tuple(required)

    def __repr__(self):
        return f"Transport({self.name})"

    def exec_line(self):
        return "exec " + " ".join(self.argv)

    def listen_port(self):
        return port(udp=self.udp)

    @staticmethod
    def args_of_bridge_line(line):
        """The k=v arguments of a "Bridge NAME ADDR FP k=v ..." line (placeholders such as
        "<IP ADDRESS>:PORT" have no '=' and are skipped)."""
        return [t for t in line.split()[2:] if re.fullmatch(r"[A-Za-z0-9_.-]+=\S*", t)]

    def pt_bridge_line(self, datadir):
        """The "Bridge NAME ..." line of the PT's own pt_state file, or None."""
        p = Path(datadir, "pt_state", self.state_file)
        try:
            text = p.read_text(errors="replace")
        except OSError:
            return None
        for ln in text.splitlines():
            if ln.startswith(f"Bridge {self.name} "):
                return ln.strip()
        return None

    def pt_bridge_args(self, datadir):
        ln = self.pt_bridge_line(datadir)
        return None if ln is None else self.args_of_bridge_line(ln)


def obfs4():
    return Transport("obfs4", [OBFS4PROXY], "obfs4_bridgeline.txt", udp=False,
                     required=("cert", "iat-mode"))


def sctp():
    argv = [BIN] + (["-vv"] if lib.VERBOSE else ["-v"])
    return Transport("sctp", argv, "sctpt_bridgeline.txt", udp=True, required=("cert",))


def transport_from_env(default="sctp"):
    """SCTPT_TOR_PT=obfs4 runs the sctp tests with obfs4proxy (harness self-check)."""
    name = os.environ.get("SCTPT_TOR_PT", default)
    if name == "obfs4":
        check(os.access(OBFS4PROXY, os.X_OK), f"obfs4proxy not found ({OBFS4PROXY})")
        return obfs4()
    check(name == "sctp", f"SCTPT_TOR_PT={name!r}: want sctp or obfs4")
    return sctp()


# ---------------------------------------------------------------- one tor

class LogFile:
    """A growing log file, read incrementally."""

    def __init__(self, path):
        self.path = path
        self._pos = 0
        self._buf = []

    def text(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self._pos)
                data = f.read()
        except OSError:
            data = b""
        if data:
            self._pos += len(data)
            self._buf.append(data.decode(errors="replace"))
            if len(self._buf) > 1:
                self._buf = ["".join(self._buf)]
        return self._buf[0] if self._buf else ""


class Tor:
    """One tor process.  `lines` is the role-specific part of its torrc; the common part
    (DataDirectory, logs, ControlPort, DNS isolation, fast shutdown) is added here."""

    def __init__(self, env, name, lines, level="info", wait_secs=30):
        self.env = env
        self.name = name
        self.dir = os.path.join(env.dir, name)
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.datadir = os.path.join(self.dir, "data")
        self.level = level
        self.log_path = os.path.join(self.dir, f"{level}.log")
        self.control_port = port()
        self.torrc = os.path.join(self.dir, "torrc")
        common = [
            f"DataDirectory {self.datadir}",
            "RunAsDaemon 0",
            f"Nickname {re.sub(r'[^A-Za-z0-9]', '', name)[:19]}",
            "Log notice stdout",
            f"Log {level} file {self.log_path}",
            "SafeLogging 0",
            "LogTimeGranularity 1",
            f"ControlPort {LOOP}:{self.control_port}",
            "CookieAuthentication 1",
            "ShutdownWaitLength 0",
            # relays/exits/bridges: never read /etc/resolv.conf, never probe DNS servers
            f"ServerDNSResolvConfFile {os.path.join(env.dir, 'resolv.conf')}",
            "ServerDNSDetectHijacking 0",
            "ServerDNSAllowBrokenConfig 1",
        ]
        Path(self.torrc).write_text("\n".join(common + list(lines)) + "\n")
        self.proc = env.spawn(name, [TOR, "-f", self.torrc, "--defaults-torrc", os.devnull],
                              cwd=self.dir)
        self.pid = self.proc.pid
        with contextlib.suppress(OSError):
            check(os.readlink(f"/proc/{self.pid}/ns/net") == _NETNS,
                  f"{name}: tor is not in this test's private network namespace")
        self.notice = LogFile(self.proc.log_path)
        self.log = LogFile(self.log_path)
        self.stopped_at = None
        env.tors.append(self)
        # tor prints this before opening any listener; a torrc error shows up here
        self.wait_notice(r"Read configuration file", wait_secs)
        self.wait_notice(r"Opened Control listener connection \(ready\)", wait_secs)

    # -- logs
    def alive(self):
        return self.proc.alive()

    def _wait(self, logfile, pattern, secs, what):
        rx = re.compile(pattern)
        end = time.monotonic() + secs
        while True:
            m = rx.search(logfile.text())
            if m:
                return m
            if not self.alive():
                m = rx.search(logfile.text())
                if m:
                    return m
                raise TestFailure(f"{self.name}: tor exited with status "
                                  f"{self.proc.popen.returncode} before {what} /{pattern}/; "
                                  f"last lines: {self.proc.tail(5)!r}")
            dead = self.pt_exits()
            if len(dead) >= self.PT_EXITS_FATAL:
                raise TestFailure(f"{self.name}: managed proxy exited {len(dead)} times while "
                                  f"waiting for {what} /{pattern}/ ({dead[-1]}); PT stderr: "
                                  f"{self.pt_stderr()[:8]!r}")
            if time.monotonic() > end:
                raise TestFailure(f"{self.name}: no {what} /{pattern}/ within {secs}s "
                                  f"(last bootstrap: {self.bootstrap_line()!r})")
            time.sleep(0.2)

    # tor restarts a managed proxy that exits (about once a second, forever); this many
    # exits make any wait fail at once.
    PT_EXITS_FATAL = 3

    def pt_exits(self):
        """tor's warnings that a managed proxy exited ("... having PID N terminated with
        status code S")."""
        return re.findall(r'Managed proxy "[^"]*" having PID \d+ terminated with status code '
                          r'-?\d+', self.notice.text())

    def wait_notice(self, pattern, secs):
        """Wait for a regex in the notice log (tor's stdout); returns the match."""
        return self._wait(self.notice, pattern, secs, "notice-log line")

    def wait_log(self, pattern, secs):
        """Wait for a regex in the info/debug log file; returns the match."""
        return self._wait(self.log, pattern, secs, f"{self.level}-log line")

    def bootstrap_line(self):
        lines = re.findall(r"Bootstrapped \d+%[^\n]*", self.notice.text())
        return lines[-1] if lines else None

    def wait_bootstrapped(self, secs, pct=100):
        return self.wait_notice(rf"Bootstrapped {pct}%", secs)

    # -- identity
    @property
    def fingerprint(self):
        """RSA identity fingerprint (40 hex digits) from <DataDirectory>/fingerprint."""
        text = lib.wait_until(lambda: _read(os.path.join(self.datadir, "fingerprint")), 20,
                              f"{self.name} fingerprint file")
        m = re.search(r"\b([0-9A-F]{40})\b", text)
        check(m is not None, f"{self.name}: no fingerprint in {text!r}")
        return m.group(1)

    # -- pluggable transports
    def pt_children(self, exe=None):
        """Live children of this tor (they are its managed PTs), optionally only with exe."""
        out = []
        for pid in netns_pids():
            st = proc_stat(pid)
            if st and st[1] == self.pid and (exe is None or proc_exe(pid) == exe):
                out.append(pid)
        return out

    def pt_lines(self):
        """Everything this tor logged about its managed proxies (PT stderr, LOG, STATUS,
        launch and exit), from the info/debug log."""
        keys = ("Managed proxy", "managed proxy", "Pluggable Transport", "pluggable transport",
                "Registered server transport")
        return [ln for ln in self.log.text().splitlines()
                if any(k in ln for k in keys) and "process_read_lines()" not in ln]

    def pt_trouble(self):
        """(errors, warnings) among pt_lines: errors are PT exits, *-ERROR lines and PT LOG
        lines at error severity; warnings are PT LOG lines at warning severity."""
        errs, warns = [], []
        for ln in self.pt_lines():
            if ("terminated with status code" in ln or re.search(r"\b[A-Z]+-ERROR\b", ln)
                    or ("[err]" in ln and "Managed proxy" in ln)):
                errs.append(ln)
            elif "[warn]" in ln and "Managed proxy" in ln:
                warns.append(ln)
        return errs, warns

    def pt_stderr(self):
        return [ln.split("reported via standard error: ", 1)[1]
                for ln in self.log.text().splitlines() if "reported via standard error: " in ln]

    # -- control port
    def control(self, *commands, secs=10):
        """Run control-port commands (cookie auth); returns the list of replies (each a list
        of lines without the status prefix).  Raises TestFailure on a non-250 reply."""
        cookie = Path(self.datadir, "control_auth_cookie").read_bytes().hex()
        with socket.create_connection((LOOP, self.control_port), timeout=secs) as s:
            f = s.makefile("rwb")

            def reply():
                lines = []
                while True:
                    ln = f.readline()
                    check(ln, f"{self.name}: control connection closed")
                    ln = ln.decode(errors="replace").rstrip("\r\n")
                    code, sep, rest = ln[:3], ln[3:4], ln[4:]
                    check(code == "250", f"{self.name}: control reply {ln!r}")
                    lines.append(rest)
                    if sep == "+":
                        while True:
                            d = f.readline().decode(errors="replace").rstrip("\r\n")
                            if d == ".":
                                break
                            lines.append(d)
                    elif sep == " ":
                        return lines

            f.write(f"AUTHENTICATE {cookie}\r\n".encode())
            f.flush()
            reply()
            out = []
            for c in commands:
                f.write(c.encode() + b"\r\n")
                f.flush()
                out.append(reply())
            f.write(b"QUIT\r\n")
            f.flush()
            return out

    # -- stop
    def stop(self, sig=signal.SIGTERM):
        """Signal tor to stop (SIGTERM: clean, immediate exit for clients and relays)."""
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
        self.proc.signal(sig)

    def wait_exit(self, secs):
        rc = self.proc.wait_exit(secs)
        check(rc is not None, f"{self.name}: tor did not exit within {secs}s")
        return rc

    def wait_exit_or_kill(self, secs):
        """For the private network's own relays and authorities (not what a test checks):
        a relay that is slow to exit on a loaded machine (the sanitizer pass: one took over
        15 s after "Catching signal TERM") is killed and noted, not a failure."""
        rc = self.proc.wait_exit(secs)
        if rc is None:
            info(f"{self.name}: tor still running {secs}s after SIGTERM; killed")
            self.proc.signal(signal.SIGKILL)
            rc = self.proc.wait_exit(5)
        return rc


def _read(path):
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


# ---------------------------------------------------------------- bridge and client

def start_bridge(env, transport, name="bridge", net=None, level="debug", wait_secs=60,
                 extra=()):
    """A bridge serving `transport` (ServerTransportPlugin, ExtORPort auto), ORPort on
    loopback, descriptor not published.  With net, it joins that private network.
    Waits until tor has registered the transport and both bridge-line files exist.
    Sets .pt_port, .bridge_line (for a client torrc) and .pt_args."""
    orport = port()
    pt_port = transport.listen_port()
    lines = [
        "SocksPort 0",
        f"ORPort {LOOP}:{orport}",
        f"Address {LOOP}",
        "BridgeRelay 1",
        "PublishServerDescriptor 0",
        "ExitPolicy reject *:*",
        "ExtORPort auto",
        f"ServerTransportPlugin {transport.name} {transport.exec_line()}",
        f"ServerTransportListenAddr {transport.name} {LOOP}:{pt_port}",
        f"ContactInfo {name}@test.invalid",
    ] + list(extra)
    lines += net.common_lines() if net is not None else ["AssumeReachable 1"]
    t0 = time.monotonic()
    b = Tor(env, name, lines, level=level)
    b.transport = transport
    b.orport = orport
    b.pt_port = pt_port
    b.wait_notice(rf"Registered server transport '{re.escape(transport.name)}' at "
                  rf"'{re.escape(LOOP)}:{pt_port}'", wait_secs)
    # tor's own bridge line (built from the SMETHOD line's ARGS) and the PT's pt_state file
    tor_line = lib.wait_until(
        lambda: next((ln.strip() for ln in (_read(os.path.join(b.datadir, "bridgelines")) or "")
                      .splitlines() if ln.startswith(f"Bridge {transport.name} ")), None),
        20, f"{name}: 'Bridge {transport.name} ...' in {b.datadir}/bridgelines")
    pt_args = lib.wait_until(lambda: transport.pt_bridge_args(b.datadir), 20,
                             f"{name}: 'Bridge {transport.name} ...' in pt_state/"
                             f"{transport.state_file}")
    tor_args = transport.args_of_bridge_line(tor_line)
    fp = b.fingerprint
    check(f" {LOOP}:{pt_port} {fp} " in tor_line + " ",
          f"{name}: tor's bridge line {tor_line!r} does not name {LOOP}:{pt_port} {fp}")
    for k in transport.required:
        check(any(a.startswith(k + "=") and len(a) > len(k) + 1 for a in pt_args),
              f"{name}: PT bridge line in pt_state/{transport.state_file} has no {k}=: {pt_args}")
    check(sorted(tor_args) == sorted(pt_args),
          f"{name}: SMETHOD ARGS as tor saw them {tor_args} differ from the PT's bridge line "
          f"{pt_args}")
    if transport.name == "sctp":
        m = re.search(r"cert=(\S+)", " ".join(pt_args))
        check(m and re.fullmatch(r"[A-Za-z0-9+/]{64}", m.group(1)),
              f"{name}: sctp cert= is not 64 base64 characters: {pt_args}")
    b.pt_args = pt_args
    b.bridge_line = f"{transport.name} {LOOP}:{pt_port} {fp} " + " ".join(pt_args)
    info(f"{name}: {transport.name} registered {time.monotonic() - t0:.1f}s after start; "
         f"Bridge {b.bridge_line}")
    return b


def start_client(env, transport, bridge_line, name="client", net=None, level="info"):
    """A tor client with UseBridges 1 and one bridge reached through `transport`."""
    socks = port()
    lines = [
        f"SocksPort {LOOP}:{socks}",
        "UseBridges 1",
        f"Bridge {bridge_line}",
        f"ClientTransportPlugin {transport.name} {transport.exec_line()}",
    ]
    if net is not None:
        lines += net.common_lines()
    c = Tor(env, name, lines, level=level)
    c.transport = transport
    c.socks = socks
    return c


FRESH_DESC = r"new bridge descriptor '([^']*)' \(fresh\)"


def check_extorport(bridge, transport_name, secs=20):
    """The bridge's debug log shows a connection that arrived through the Extended ORPort:
    SAFE_COOKIE authentication succeeded, USERADDR and DONE received, and tor counted the
    client under transport `transport_name` (geoip_note_client_seen).  Returns the lines."""
    check(bridge.level == "debug", f"{bridge.name}: ExtORPort lines need Log debug")
    pats = [
        r"connection_ext_or_auth_handle_client_hash\(\): Got client's hash and it was legit",
        r"connection_ext_or_handle_cmd_useraddr\(\): Received USERADDR\.[^\n]*",
        r"connection_ext_or_process_inbuf\(\): Received DONE",
        rf"Seen client from '[^']*' with transport '{re.escape(transport_name)}'",
    ]
    return [bridge.wait_log(p, secs).group(0) for p in pats]


def stop_all_and_check_pts(env, tors, transport, sigs=None, tor_secs=15,
                           pt_secs=PT_EXIT_SECS):
    """Record the PTs of `tors`, stop the tors (SIGTERM, or sigs[tor.name]), and require that
    each tor exits within tor_secs and that no process of this test running transport.exe is
    left pt_secs after the last tor exited.  Returns a report dict."""
    sigs = sigs or {}
    pts = {}
    for t in tors:
        kids = t.pt_children(transport.exe)
        check(kids, f"{t.name}: no running {transport.name} PT ({transport.exe}) under tor "
                    f"pid {t.pid}; children: {[(p, proc_exe(p)) for p in t.pt_children()]}")
        for pid in kids:
            env_pt = proc_environ(pid)
            check(env_pt.get("TOR_PT_STATE_LOCATION", "").startswith(t.datadir),
                  f"{t.name}: PT pid {pid} has TOR_PT_STATE_LOCATION="
                  f"{env_pt.get('TOR_PT_STATE_LOCATION')!r}, not under {t.datadir}")
            pts[pid] = t
    t0 = time.monotonic()
    for t in tors:
        t.stop(sigs.get(t.name, signal.SIGTERM))
    exited = {}
    for t in tors:
        t.wait_exit(max(1.0, tor_secs - (time.monotonic() - t0)))
        exited[t.name] = time.monotonic() - t0
    last_tor = time.monotonic()
    status = {}
    gone_at = {}

    def all_gone():
        for pid in pts:
            if pid in gone_at:
                continue
            st = proc_state(pid)
            if st in (None, "Z", "X"):
                s = reap_status(pid)
                if s:
                    status[pid] = s
                gone_at[pid] = time.monotonic() - t0
        return len(gone_at) == len(pts)

    end = last_tor + pt_secs
    while not all_gone() and time.monotonic() < end:
        time.sleep(0.05)
    left = [(pid, pts[pid].name) for pid in pts if pid not in gone_at]
    stray = [pid for pid in netns_pids() if proc_exe(pid) == transport.exe]
    check(not left, f"{transport.name} PT(s) still running {pt_secs}s after their tor exited "
                    f"(pid, tor): {left}")
    check(not stray, f"{transport.name} processes of this test still running: {stray}")
    check_no_sanitizer_reports(env)
    crashes = {pid: s for pid, s in status.items()
               if s.startswith("signal ") and int(s.split()[1]) in
               [int(x) for x in lib.Env.CRASH_SIGNALS]}
    check(not crashes, f"{transport.name} PT crashed at shutdown: {crashes}")
    report = {"tor_exit": exited,
              "pt_gone": {f"{pts[p].name}:{p}": round(gone_at[p], 2) for p in pts},
              "pt_status": {f"{pts[p].name}:{p}": status.get(p, "reaped by tor") for p in pts}}
    info(f"stop: tors exited after {', '.join(f'{k} {v:.2f}s' for k, v in exited.items())}; "
         f"{transport.name} PTs gone after {report['pt_gone']} (s since signal), "
         f"status {report['pt_status']}")
    return report


# ---------------------------------------------------------------- private network

class TorNetwork:
    """A private Tor network on loopback: n_auth directory authorities and relays
    (the first n_exits of them exits).  Voting every 10 s (5 s at start)."""

    def __init__(self, env, n_auth=3, n_relays=3, n_exits=1, level="info"):
        check(n_auth >= 1 and n_relays >= n_exits >= 1, "bad network shape")
        self.env = env
        self.level = level
        self.auths = []
        self.relays = []
        self._auth_specs = []
        self._lock = threading.Lock()
        self.dirauth = []
        res = lib.run_parallel(lambda i: self._auth_specs.append((i, self._make_authority(
            f"auth{i}"))), [(i,) for i in range(n_auth)], 120)
        bad = [e for e in res if e is not None]
        if bad:
            raise bad[0]
        self._auth_specs = [s for _, s in sorted(self._auth_specs, key=lambda x: x[0])]
        self.dirauth = [f"DirAuthority {s['nick']} orport={s['orport']} v3ident={s['v3ident']} "
                        f"{LOOP}:{s['dirport']} {s['fp']}" for s in self._auth_specs]
        self.n_relays, self.n_exits = n_relays, n_exits

    def _make_authority(self, nick):
        d = os.path.join(self.env.dir, nick)
        keys = os.path.join(d, "data", "keys")
        os.makedirs(keys, mode=0o700, exist_ok=True)
        os.chmod(os.path.join(d, "data"), 0o700)
        with self._lock:
            orport, dirport = port(), port()
        argv = [TOR_GENCERT, "--create-identity-key", "-m", "12",
                "-a", f"{LOOP}:{dirport}",
                "-i", os.path.join(keys, "authority_identity_key"),
                "-s", os.path.join(keys, "authority_signing_key"),
                "-c", os.path.join(keys, "authority_certificate"),
                "--passphrase-fd", "0"]
        rc, out, err = _run_input(argv, b"\n", 60)
        check(rc == 0, f"tor-gencert for {nick} exited {rc}: {err.strip()[-300:]!r}")
        cert = Path(keys, "authority_certificate").read_text()
        m = re.search(r"^fingerprint ([0-9A-F]{40})$", cert, re.M)
        check(m is not None, f"{nick}: no fingerprint line in authority_certificate")
        v3ident = m.group(1)
        rc, out, err = run_cmd([TOR, "--list-fingerprint", "--ignore-missing-torrc",
                                "-f", os.devnull, "--defaults-torrc", os.devnull,
                                "--DataDirectory", os.path.join(d, "data"),
                                "--ORPort", f"{LOOP}:{orport}", "--Nickname", nick,
                                "--Log", "err stderr"], 60)
        check(rc == 0, f"tor --list-fingerprint for {nick} exited {rc}: {err.strip()[-300:]!r}")
        m = re.search(rf"^{nick} ((?:[0-9A-F]{{4}} ?){{10}})$", out, re.M)
        check(m is not None, f"tor --list-fingerprint for {nick} printed {out!r}")
        fp = m.group(1).replace(" ", "")
        return {"nick": nick, "orport": orport, "dirport": dirport, "v3ident": v3ident, "fp": fp}

    def common_lines(self):
        """torrc lines every member of the network needs (also bridges and clients)."""
        return [
            "TestingTorNetwork 1",
            "UseDefaultFallbackDirs 0",
            *self.dirauth,
            "AssumeReachable 1",
            "PathsNeededToBuildCircuits 0.67",
            "TestingDirAuthVoteExit *",
            "TestingDirAuthVoteHSDir *",
            "TestingDirAuthVoteGuard *",
            "TestingMinExitFlagThreshold 0",
            "V3AuthNIntervalsValid 2",
        ]

    def start(self):
        for s in self._auth_specs:
            lines = [
                "SocksPort 0",
                f"ORPort {LOOP}:{s['orport']}",
                f"DirPort {LOOP}:{s['dirport']}",
                f"Address {LOOP}",
                "AuthoritativeDirectory 1",
                "V3AuthoritativeDirectory 1",
                f"ContactInfo {s['nick']}@test.invalid",
                "ExitPolicy reject *:*",
                "TestingV3AuthInitialVotingInterval 5",
                "TestingV3AuthInitialVoteDelay 2",
                "TestingV3AuthInitialDistDelay 2",
                "V3AuthVotingInterval 10",
                "V3AuthVoteDelay 2",
                "V3AuthDistDelay 2",
            ] + self.common_lines()
            self.auths.append(Tor(self.env, s["nick"], lines, level=self.level))
        for i in range(self.n_relays):
            exit_ = i < self.n_exits
            name = f"exit{i}" if exit_ else f"relay{i}"
            lines = [
                "SocksPort 0",
                f"ORPort {LOOP}:{port()}",
                f"DirPort {LOOP}:{port()}",
                f"Address {LOOP}",
                f"ContactInfo {name}@test.invalid",
            ]
            if exit_:
                # "accept 127.0.0.0/8:*" alone is summarised as "reject 1-65535" in the
                # microdescriptor, so clients would not pick this exit: accept everything
                # (nothing can leave the namespace anyway).
                # (tor 0.4.9 has no ExitPolicyRejectLocalAddresses; RejectPrivate 0 covers it)
                lines += ["ExitRelay 1", "ExitPolicyRejectPrivate 0", "ExitPolicy accept *:*"]
            else:
                lines += ["ExitRelay 0", "ExitPolicy reject *:*"]
            t = Tor(self.env, name, lines + self.common_lines(), level=self.level)
            t.is_exit = exit_
            self.relays.append(t)
        return self

    def wait_ready(self, secs):
        """Every authority and relay has bootstrapped (so a consensus with the relays exists)."""
        t0 = time.monotonic()
        for t in self.auths + self.relays:
            t.wait_bootstrapped(max(1.0, secs - (time.monotonic() - t0)))
        return time.monotonic() - t0

    @property
    def exits(self):
        return [r for r in self.relays if r.is_exit]


def _run_input(argv, data, secs):
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True,
                         preexec_fn=lib._child_setup, env=lib.clean_env())
    try:
        out, err = p.communicate(data, timeout=secs)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise TestFailure(f"{argv[0]} did not exit within {secs}s")
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


# ---------------------------------------------------------------- web page through tor

class PageServer:
    """HTTP/1.0 server on 127.0.0.1 serving /file: n random bytes (seeded)."""

    def __init__(self, n=300 * 1024, seed=1):
        self.body = random.Random(seed).randbytes(n)
        self.sha256 = hashlib.sha256(self.body).hexdigest()
        self.requests = []
        body, reqs = self.body, self.requests

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                reqs.append((self.client_address[0], self.path))
                if self.path != "/file":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer((LOOP, 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{LOOP}:{self.port}/file"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.2,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(2)


def curl_socks(socks_port, url, out_path, secs=60):
    """curl through a tor SOCKS port (name resolution at the exit); returns (rc, stderr, info)."""
    rc, out, err = run_cmd([CURL, "-sS", "--max-time", str(secs), "--socks5-hostname",
                            f"{LOOP}:{socks_port}", "-o", out_path, "-w",
                            "%{http_code} %{size_download} %{time_total}", url], secs + 10)
    return rc, err.strip(), out.strip()


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- diagnostics

def print_tor_diagnostics(env, n=25):
    for t in getattr(env, "tors", []):
        state = "running" if t.alive() else f"exit {t.proc.popen.returncode}"
        print(f"=== {t.name} ({state}) torrc {t.torrc}; {t.level} log {t.log_path}")
        print(f"    last bootstrap: {t.bootstrap_line()}")
        pl = t.pt_lines()
        if pl:
            print(f"--- {t.name}: last {n} managed-proxy lines (PT stderr, LOG, STATUS) ---")
            print("\n".join(pl[-n:]))
        ext = [ln for ln in t.log.text().splitlines()
               if "ext_or" in ln or "Extended OR" in ln or "with transport '" in ln]
        if ext:
            print(f"--- {t.name}: last {n} Extended ORPort lines ---")
            print("\n".join(ext[-n:]))
        warns = [ln for ln in t.log.text().splitlines() if "[warn]" in ln or "[err]" in ln]
        if warns:
            print(f"--- {t.name}: last {n} warnings ---")
            print("\n".join(warns[-n:]))


@contextlib.contextmanager
def diagnose(env):
    """Wrap a test body: on any exception print tor/PT diagnostics, then re-raise."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            print_tor_diagnostics(env)
        raise
