"""Shared helpers for the sctpt end-to-end tests (Python 3 standard library only).

Everything here talks to 127.0.0.0/8 or ::1 only.  Every wait is bounded; every
socket has a timeout; every process we start is killed in Env.close().

Pieces:
  Env            per-test temp dir, process list, cleanup; start_server/start_client;
                 one server identity key per Env (sctpt keygen), passed as --key / --cert
  Proc           one subprocess with its log file (stdout+stderr)
  socks_*        a small SOCKS4/4a/5 client that exposes the exact reply codes
  ExchangeServer target: each connection moves a random payload both ways, checked by SHA-256
  BulkServer     target: sink (reports SHA-256 of what it got), source, pause reading on command
  FakeDNS        tiny DNS server on a loopback address; the sctpt server runs in a private mount
                 namespace whose /etc/resolv.conf points at it, so no DNS query leaves the host
  UdpRelay       UDP relay between sctpt clients and a server (one upstream socket per client):
                 records each client's first datagrams, can drop/alter/delay/inject datagrams
  Capture        tshark capture on lo of one UDP port, started and confirmed running (bounded)
"""

import contextlib
import ctypes
import heapq
import hashlib
import os
import random
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("SCTPT_BIN") or str(ROOT / "build" / "sctpt")
LOOP = "127.0.0.1"
VERBOSE = os.environ.get("SCTPT_VERBOSE") == "1"

_libc = ctypes.CDLL(None, use_errno=True)


class TestFailure(AssertionError):
    pass


class TestTimeout(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def info(msg):
    print("INFO: " + msg, flush=True)


def timeout(secs):
    """Decorator: per-test time limit used by run.py (default 120 s)."""
    def deco(fn):
        fn.timeout = secs
        return fn
    return deco


def wait_until(pred, secs, what, interval=0.1):
    """Poll pred() until it returns a true value; raise TestFailure after secs."""
    end = time.monotonic() + secs
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise TestFailure(f"timed out after {secs}s waiting for {what}")
        time.sleep(interval)


def free_port(udp=False, host=LOOP):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def tcp_port_open(port, host=LOOP):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        d = sock.recv(n - len(buf))
        if not d:
            raise TestFailure(f"connection closed after {len(buf)} of {n} expected bytes")
        buf += d
    return bytes(buf)


def wait_closed(sock, secs):
    """Wait until the peer closes or resets sock, discarding data.
    Returns (kind, elapsed) with kind 'eof' or 'reset'; raises TestFailure on timeout."""
    t0 = time.monotonic()
    end = t0 + secs
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise TestFailure(f"socket not closed within {secs}s")
        sock.settimeout(min(left, 1.0))
        try:
            d = sock.recv(1 << 16)
        except socket.timeout:
            continue
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return "reset", time.monotonic() - t0
        if not d:
            return "eof", time.monotonic() - t0


def set_linger0(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


# ---------------------------------------------------------------- payloads

def gen(seed, n, chunk=1 << 16):
    """Deterministic pseudo-random stream of n bytes, in chunks."""
    r = random.Random(seed)
    while n > 0:
        k = min(chunk, n)
        yield r.randbytes(k)
        n -= k


def payload_digest(seed, n):
    h = hashlib.sha256()
    for c in gen(seed, n):
        h.update(c)
    return h.digest()


# ---------------------------------------------------------------- processes

def _child_setup():
    # Safety net: if the test process dies, its sctpt children die too.
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def clean_env():
    e = dict(os.environ)
    for k in list(e):
        if k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"):
            del e[k]
    return e


class Proc:
    def __init__(self, name, argv, log_path, cwd=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=self._log, start_new_session=True,
                                      preexec_fn=_child_setup, cwd=cwd, env=clean_env())
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def log_text(self):
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])

    def wait_log(self, needle, secs, start=0):
        """Wait for needle in the log (from character offset start). Returns True, or
        False on timeout; raises TestFailure if the process exits first."""
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if needle in self.log_text()[start:]:
                return True
            if not self.alive():
                if needle in self.log_text()[start:]:
                    return True
                raise TestFailure(f"{self.name} exited with status {self.popen.returncode} "
                                  f"before logging {needle!r}")
            time.sleep(0.1)
        return False

    def signal(self, sig):
        if self.alive():
            self.popen.send_signal(sig)

    def wait_exit(self, secs):
        try:
            return self.popen.wait(timeout=secs)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.wait_exit(5)
        self._log.close()


# ---------------------------------------------------------------- environment

_HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n"


class Env:
    """Per-test resources.  run.py creates one, passes it to the test and closes it."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"sctpt-{name}-")
        self.procs = []
        self.closers = []
        self._dns = None
        self._identity = None
        check(os.access(BIN, os.X_OK), f"sctpt binary not found or not executable: {BIN}")

    # -- generic
    def spawn(self, name, argv, cwd=None):
        log = os.path.join(self.dir, f"{name}.log")
        p = Proc(name, argv, log, cwd=cwd)
        self.procs.append(p)
        return p

    def add(self, obj):
        """Register something with a close() method for cleanup; returns it."""
        self.closers.append(obj)
        return obj

    def print_logs(self, n=40):
        for p in self.procs:
            print(f"--- last {n} lines of {p.name} ({p.log_path}, "
                  f"{'running' if p.alive() else 'exit %s' % p.popen.returncode}) ---")
            print(p.tail(n))

    # Log lines that mean a bug in sctpt even when the test's own checks passed.
    BUG_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "Epoll ",
                   "exceeds the MTU", "[err]")
    CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGFPE,
                     signal.SIGILL)

    def health_check(self):
        """Fail if any sctpt process crashed or logged a bug marker."""
        problems = []
        for p in self.procs:
            if p.argv[:1] != [BIN] and BIN not in p.argv:
                continue
            rc = p.popen.poll()
            if rc is not None and rc < 0 and -rc in self.CRASH_SIGNALS:
                problems.append(f"{p.name} died of signal {-rc}")
            text = p.log_text()
            for m in self.BUG_MARKERS:
                if m in text:
                    line = next(ln for ln in text.splitlines() if m in ln)
                    problems.append(f"{p.name} logged: {line.strip()[:160]}")
                    break
        check(not problems, "; ".join(problems))

    def close(self, failed=False):
        for c in reversed(self.closers):
            with contextlib.suppress(Exception):
                c.close()
        for p in self.procs:
            p.kill()
        if self._dns:
            self._dns.close()
        if failed:
            print(f"(logs kept in {self.dir})")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- DNS isolation
    def fake_dns(self):
        if self._dns is None:
            self._dns = FakeDNS()
            Path(self.dir, "resolv.conf").write_text(
                f"nameserver {self._dns.addr}\noptions timeout:2 attempts:2\n")
            Path(self.dir, "hosts").write_text(_HOSTS)
        return self._dns

    def _ns_wrap(self, argv):
        """Run argv in a private mount namespace with our resolv.conf and hosts."""
        self.fake_dns()
        script = ('mount --bind "$0/resolv.conf" /etc/resolv.conf && '
                  'mount --bind "$0/hosts" /etc/hosts && exec "$@"')
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, self.dir] + argv

    # -- keys
    def new_identity(self, name):
        """Run `sctpt keygen --key DIR/NAME.key`; returns (key path, cert without "cert=")."""
        path = os.path.join(self.dir, f"{name}.key")
        rc, out, err = run_cmd([BIN, "keygen", "--key", path], 10)
        check(rc == 0, f"sctpt keygen exited {rc}: {err.strip()[:200]!r}")
        m = re.search(r"^cert=([A-Za-z0-9+/]{64})$", out, re.M)
        check(m is not None, f"sctpt keygen printed no cert=<64 base64 chars>: {out!r}")
        return path, m.group(1)

    @property
    def key_path(self):
        """This Env's server identity key file (created on first use)."""
        if self._identity is None:
            self._identity = self.new_identity("server")
        return self._identity[0]

    @property
    def cert(self):
        """The cert= value (without the prefix) that goes with key_path."""
        self.key_path
        return self._identity[1]

    # -- sctpt
    def start_server(self, target=None, proxy=False, allow=(), extra=(), port=None,
                     name="server", wait=True, key=None):
        port = port or free_port(udp=True)
        argv = [BIN, "server", "--listen", f"udp://{LOOP}:{port}", "--key", key or self.key_path]
        if target:
            argv += ["--target", target]
        if proxy:
            argv += ["--proxy"]
        for a in allow:
            argv += ["--allow", a]
        argv += list(extra)
        if VERBOSE:
            argv.append("-v")
        p = self.spawn(name, self._ns_wrap(argv))
        p.port = port
        if wait and not p.wait_log("listening on udp://", 15):
            raise TestFailure(f"{name} did not log 'listening on udp://' within 15s")
        return p

    def start_client(self, server_port, extra=(), name="client", wait_assoc=True, socks_port=None,
                     cert=None):
        socks_port = socks_port or free_port()
        argv = [BIN, "client", "--server", f"udp://{LOOP}:{server_port}",
                "--cert", cert or self.cert, "--socks", f"{LOOP}:{socks_port}"] + list(extra)
        if VERBOSE:
            argv.append("-v")
        p = self.spawn(name, argv)
        p.socks = socks_port
        if not p.wait_log("SOCKS listening on", 15):
            raise TestFailure(f"{name} did not log 'SOCKS listening on' within 15s")
        wait_until(lambda: tcp_port_open(socks_port), 10, f"{name} SOCKS port {socks_port}")
        if wait_assoc and not p.wait_log("association up", 20):
            info(f"{name}: no 'association up' in log after 20s; continuing")
        return p

    def pair(self, proxy=True, allow=("127.0.0.0/8",), target=None, server_extra=(),
             client_extra=()):
        """Start a server (proxy mode with allow, or fixed target) and a client to it."""
        s = self.start_server(target=target, proxy=proxy and not target,
                              allow=allow if not target else (), extra=server_extra)
        c = self.start_client(s.port, extra=client_extra)
        return s, c

    def exchange_server(self, host=LOOP):
        return self.add(ExchangeServer(host))

    def bulk_server(self, **kw):
        return self.add(BulkServer(**kw))


# ---------------------------------------------------------------- SOCKS client

class SocksError(Exception):
    def __init__(self, code, msg=""):
        super().__init__(msg or f"SOCKS reply code 0x{code:02x}")
        self.code = code


def encode_addr(host):
    """SOCKS5 ATYP + address bytes for an IPv4/IPv6 literal or a name."""
    for fam, atyp in ((socket.AF_INET, 1), (socket.AF_INET6, 4)):
        try:
            return bytes([atyp]) + socket.inet_pton(fam, host)
        except OSError:
            pass
    h = host.encode()
    return b"\x03" + bytes([len(h)]) + h


def socks5_greet(sock, methods=(0,)):
    sock.sendall(bytes([5, len(methods)]) + bytes(methods))
    r = recv_exact(sock, 2)
    check(r[0] == 5, f"bad SOCKS5 method reply {r.hex()}")
    return r[1]


def socks5_auth(sock, user, pw):
    u, p = user.encode(), pw.encode()
    sock.sendall(bytes([1, len(u)]) + u + bytes([len(p)]) + p)
    r = recv_exact(sock, 2)
    return r[1]


def socks5_request_bytes(host, port, cmd=1):
    return bytes([5, cmd, 0]) + encode_addr(host) + struct.pack("!H", port)


def socks5_read_reply(sock):
    """Returns the REP code (reads the whole reply)."""
    h = recv_exact(sock, 4)
    check(h[0] == 5, f"bad SOCKS5 reply version: {h.hex()}")
    atyp = h[3]
    if atyp == 1:
        recv_exact(sock, 4 + 2)
    elif atyp == 4:
        recv_exact(sock, 16 + 2)
    elif atyp == 3:
        n = recv_exact(sock, 1)[0]
        recv_exact(sock, n + 2)
    else:
        raise TestFailure(f"bad ATYP {atyp} in SOCKS5 reply {h.hex()}")
    return h[1]


def socks4_request_bytes(host, port, cmd=1, userid=b""):
    try:
        ip = socket.inet_aton(host)
        tail = b""
    except OSError:  # SOCKS4a
        ip = b"\x00\x00\x00\x01"
        tail = host.encode() + b"\x00"
    return bytes([4, cmd]) + struct.pack("!H", port) + ip + userid + b"\x00" + tail


def socks4_read_reply(sock):
    r = recv_exact(sock, 8)
    check(r[0] == 0, f"bad SOCKS4 reply version: {r.hex()}")
    return r[1]


def proxy_socket(socks_port, timeout=30, rcvbuf=None, sndbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.settimeout(timeout)
    try:
        s.connect((LOOP, socks_port))
    except Exception:
        s.close()
        raise
    return s


def socks_open(socks_port, host, port, version=5, user=None, password=None, timeout=30,
               rcvbuf=None, sndbuf=None):
    """Connect through the SOCKS listener; returns the socket or raises SocksError."""
    s = proxy_socket(socks_port, timeout, rcvbuf, sndbuf)
    try:
        if version == 5:
            if user is not None:
                m = socks5_greet(s, (2,))
                check(m == 2, f"proxy chose method {m:#x}, wanted 0x02")
                st = socks5_auth(s, user, password)
                check(st == 0, f"username/password auth status {st:#x}")
            else:
                m = socks5_greet(s, (0,))
                check(m == 0, f"proxy chose method {m:#x}, wanted 0x00")
            s.sendall(socks5_request_bytes(host, port))
            rep = socks5_read_reply(s)
            ok = 0
        else:
            s.sendall(socks4_request_bytes(host, port, userid=(user or "").encode()))
            rep = socks4_read_reply(s)
            ok = 0x5A
        if rep != ok:
            raise SocksError(rep)
        return s
    except BaseException:
        s.close()
        raise


# ---------------------------------------------------------------- TCP target servers

class TCPServerThread:
    """Accept loop in a thread; each connection handled by handler(conn) in its own thread."""

    def __init__(self, handler, host=LOOP, conn_timeout=120, rcvbuf=None, sndbuf=None):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.sock.bind((host, 0))
        self.sock.listen(512)
        self.sock.settimeout(0.2)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.conn_timeout = conn_timeout
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.conns = []
        self.errors = []
        self.accepted = 0
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return (self.host, self.port)

    def _loop(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(self.conn_timeout)
            with self.lock:
                self.conns.append(c)
                self.accepted += 1
            threading.Thread(target=self._run, args=(c,), daemon=True).start()

    def _run(self, c):
        try:
            self.handler(c)
        except Exception as e:  # recorded; tests decide whether it matters
            with self.lock:
                self.errors.append(f"{type(e).__name__}: {e}")
        finally:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                c.close()

    def close(self):
        self.stop.set()
        with contextlib.suppress(OSError):
            self.sock.close()
        self.thread.join(2)
        with self.lock:
            for c in self.conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    c.close()


# Exchange protocol (client = app side, through the tunnel):
#   client -> server: header  !QQQ  (c2s_len, s2c_len, seed)
#   then both directions at once:
#     client -> server: c2s_len bytes of gen(2*seed)
#     server -> client: s2c_len bytes of gen(2*seed+1), then SHA-256 (32 bytes) of what it received
#   then the server closes; the client checks both hashes and the EOF.

class ExchangeServer(TCPServerThread):
    def __init__(self, host=LOOP):
        self.ok = 0
        super().__init__(self._handle, host)

    def _handle(self, c):
        c2s, s2c, seed = struct.unpack("!QQQ", recv_exact(c, 24))
        err = []

        def sender():
            try:
                for chunk in gen(2 * seed + 1, s2c):
                    c.sendall(chunk)
            except Exception as e:
                err.append(e)

        t = threading.Thread(target=sender, daemon=True)
        t.start()
        h = hashlib.sha256()
        got = 0
        while got < c2s:
            d = c.recv(min(1 << 20, c2s - got))
            if not d:
                raise TestFailure(f"exchange server: EOF after {got}/{c2s} bytes")
            h.update(d)
            got += len(d)
        t.join(self.conn_timeout)
        if err:
            raise err[0]
        c.sendall(h.digest())
        c.shutdown(socket.SHUT_WR)
        with self.lock:
            self.ok += 1


def exchange(sock_or_port, dest, c2s, s2c, seed, timeout=60, version=5):
    """Run one exchange over an open socket (or open one via SOCKS port + dest).
    Raises TestFailure/SocksError/OSError on any problem; closes the socket."""
    if isinstance(sock_or_port, int):
        s = socks_open(sock_or_port, dest[0], dest[1], version=version, timeout=timeout)
    else:
        s = sock_or_port
    s.settimeout(timeout)
    t = None
    try:
        s.sendall(struct.pack("!QQQ", c2s, s2c, seed))
        res = {}

        def sender():
            try:
                h = hashlib.sha256()
                for chunk in gen(2 * seed, c2s):
                    s.sendall(chunk)
                    h.update(chunk)
                res["digest"] = h.digest()
            except Exception as e:
                res["error"] = e

        t = threading.Thread(target=sender, daemon=True)
        t.start()
        h = hashlib.sha256()
        got = 0
        while got < s2c:
            d = s.recv(min(1 << 20, s2c - got))
            if not d:
                raise TestFailure(f"exchange seed={seed}: EOF after {got}/{s2c} bytes from target")
            h.update(d)
            got += len(d)
        their = recv_exact(s, 32)
        t.join(timeout)
        check(not t.is_alive(), f"exchange seed={seed}: sending {c2s} bytes did not finish")
        if "error" in res:
            raise res["error"]
        check(h.digest() == payload_digest(2 * seed + 1, s2c),
              f"exchange seed={seed}: target->app payload ({s2c} bytes) hash mismatch")
        check(their == res["digest"],
              f"exchange seed={seed}: app->target payload ({c2s} bytes) hash mismatch")
        check(s.recv(1) == b"", f"exchange seed={seed}: extra data after the payload")
    finally:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        if t is not None:
            t.join(2)
        s.close()


class BulkServer(TCPServerThread):
    """Sink/source target.  Per connection, a record dict in self.records:
       bytes, sha256 (hex, of what was received, set at EOF), sent, sent_sha256, error, done.
    Options:
      source=(seed, n)       send n bytes of gen(seed) (n=None: until the peer goes away)
                             concurrently with reading; then shutdown(SHUT_WR)
      respond=(seed, n)      after reading to EOF, send n bytes of gen(seed), then close
      paused=True            start with reading paused; resume()/pause() switch it
    """

    def __init__(self, source=None, respond=None, paused=False, rcvbuf=None, sndbuf=None,
                 host=LOOP, chunk=1 << 16):
        self.source, self.respond, self.chunk = source, respond, chunk
        self.reading = threading.Event()
        if not paused:
            self.reading.set()
        self.records = []
        super().__init__(self._handle, host, conn_timeout=300, rcvbuf=rcvbuf, sndbuf=sndbuf)

    def pause(self):
        self.reading.clear()

    def resume(self):
        self.reading.set()

    def _send(self, c, rec, seed, n):
        h = hashlib.sha256()
        try:
            if n is None:
                r = random.Random(seed)
                while not self.stop.is_set():
                    d = r.randbytes(self.chunk)
                    c.sendall(d)
                    rec["sent"] += len(d)
            else:
                for d in gen(seed, n, self.chunk):
                    c.sendall(d)
                    h.update(d)
                    rec["sent"] += len(d)
                rec["sent_sha256"] = h.hexdigest()
                c.shutdown(socket.SHUT_WR)
        except Exception as e:
            rec["send_error"] = f"{type(e).__name__}: {e}"

    def _handle(self, c):
        rec = {"bytes": 0, "sha256": None, "sent": 0, "sent_sha256": None, "error": None,
               "send_error": None, "done": threading.Event(), "sock": c}
        with self.lock:
            self.records.append(rec)
        t = None
        if self.source:
            t = threading.Thread(target=self._send, args=(c, rec) + tuple(self.source), daemon=True)
            t.start()
        try:
            h = hashlib.sha256()
            while True:
                while not self.reading.wait(0.2):
                    if self.stop.is_set():
                        return
                d = c.recv(1 << 20)
                if not d:
                    break
                h.update(d)
                rec["bytes"] += len(d)
            rec["sha256"] = h.hexdigest()
            if self.respond:
                self._send(c, rec, *self.respond)
            if t:
                t.join(self.conn_timeout)
        except Exception as e:
            rec["error"] = f"{type(e).__name__}: {e}"
        finally:
            rec["done"].set()

    def wait_records(self, n, secs):
        wait_until(lambda: len(self.records) >= n, secs, f"{n} connection(s) at the target")
        return self.records[:n]


def stalled(counter, quiet=1.5, secs=30):
    """Wait until counter() stops changing for `quiet` seconds; returns its value."""
    end = time.monotonic() + secs
    last, since = counter(), time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.1)
        v = counter()
        if v != last:
            last, since = v, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return v
    raise TestFailure(f"transfer did not stall within {secs}s (at {last} bytes)")


def run_parallel(fn, args_list, secs):
    """Run fn(*args) for each args in threads; wait at most secs in total.
    Returns list of exceptions (None for success), in order."""
    results = [TestFailure("did not finish in time")] * len(args_list)

    def wrap(i, a):
        try:
            fn(*a)
            results[i] = None
        except BaseException as e:
            results[i] = e

    ts = [threading.Thread(target=wrap, args=(i, a), daemon=True) for i, a in enumerate(args_list)]
    for t in ts:
        t.start()
    end = time.monotonic() + secs
    for t in ts:
        t.join(max(0.0, end - time.monotonic()))
    return results


def summarize_errors(results, limit=5):
    errs = [(i, e) for i, e in enumerate(results) if e is not None]
    lines = [f"#{i}: {type(e).__name__}: {e}" for i, e in errs[:limit]]
    return f"{len(errs)} of {len(results)} failed; " + "; ".join(lines)


# ---------------------------------------------------------------- fake DNS

class FakeDNS:
    """Answers on a random 127.x.y.z:53.  'sctpt-test.example' -> A 127.0.0.1 (no AAAA);
    'blackhole.example' gets no answer at all; everything else NXDOMAIN.
    Records the names asked."""

    NAMES = {"sctpt-test.example": "127.0.0.1"}
    SILENT = {"blackhole.example"}

    def __init__(self):
        self.sock = None
        for _ in range(20):
            addr = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((addr, 53))
            except OSError:
                s.close()
                continue
            self.sock, self.addr = s, addr
            break
        check(self.sock is not None, "could not bind a fake DNS server on 127.x.y.z:53")
        self.sock.settimeout(0.2)
        self.queries = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop.is_set():
            try:
                q, peer = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            with contextlib.suppress(Exception):
                r = self._answer(q)
                if r:
                    self.sock.sendto(r, peer)

    def _answer(self, q):
        if len(q) < 12:
            return None
        qid, flags, qd = struct.unpack("!HHH", q[:6])
        if qd != 1:
            return None
        i, labels = 12, []
        while q[i]:
            n = q[i]
            labels.append(q[i + 1:i + 1 + n].decode(errors="replace"))
            i += 1 + n
        qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
        question = q[12:i + 5]
        name = ".".join(labels).lower()
        self.queries.append((name, qtype))
        if name in self.SILENT:
            return None
        ip = self.NAMES.get(name)
        rflags = 0x8180 | (flags & 0x0100)
        answers = b""
        an = 0
        if ip is None:
            rflags |= 3  # NXDOMAIN
        elif qtype == 1:
            answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(ip)
            an = 1
        return struct.pack("!HHHHHH", qid, rflags, 1, an, 0, 0) + question + answers

    def close(self):
        self.stop.set()
        with contextlib.suppress(OSError):
            self.sock.close()
        self.thread.join(2)


# ---------------------------------------------------------------- misc

def run_cmd(argv, secs=5):
    """Run a short command; returns (rc, stdout, stderr) or raises TestFailure on timeout."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True,
                         preexec_fn=_child_setup, env=clean_env())
    try:
        out, err = p.communicate(timeout=secs)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise TestFailure(f"{' '.join(argv[1:])!r} did not exit within {secs}s; "
                          f"stderr: {err.decode(errors='replace')[-300:]!r}")
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


# ---------------------------------------------------------------- UDP relay

class RelayFlow:
    """One client address seen by a UdpRelay, with its own upstream socket."""

    def __init__(self, idx, addr, up):
        self.idx, self.addr, self.up = idx, addr, up
        self.c2s_first = self.s2c_first = None    # first datagram each way (bytes)
        self.c2s = self.s2c = 0                   # datagrams received from each side
        self.c2s_bytes = self.s2c_bytes = 0


class UdpRelay:
    """UDP relay on LOOP:port -> LOOP:server_port, in a thread.

    Each client address gets its own upstream socket (connected to the server), so the server
    sees one address per client, as through a NAT.  Hooks c2s(flow, data) and s2c(flow, data)
    return the datagram to forward (possibly altered) or None to drop it; they run in the relay
    thread.  delay_c2s/delay_s2c hold datagrams back (seconds).  inject(flow, data) sends a
    datagram to the server from that flow's upstream socket."""

    MAX_FLOWS = 1000

    def __init__(self, server_port, host=LOOP, c2s=None, s2c=None, delay_c2s=0.0,
                 delay_s2c=0.0, bufsize=4 << 20):
        self.server = (host, server_port)
        self.host = host
        self.c2s_hook, self.s2c_hook = c2s, s2c
        self.delay_c2s, self.delay_s2c = delay_c2s, delay_s2c
        self.bufsize = bufsize
        self.sock = self._socket()
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.flows = []
        self._by_addr = {}
        self.lock = threading.Lock()
        self.errors = []
        self._delayed = []        # heap of (due, seq, sock, data, addr or None)
        self._rebind_req = []
        self._seq = 0
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ, None)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _socket(self):
        s = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET,
                          socket.SOCK_DGRAM)
        for opt in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
            if opt is not None:
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, opt, self.bufsize)
                    break
        s.setblocking(False)
        return s

    def flow(self, idx, secs=15):
        """The idx-th client flow (waits until it exists)."""
        wait_until(lambda: len(self.flows) > idx, secs, f"relay flow #{idx}")
        return self.flows[idx]

    def inject(self, flow, data):
        with contextlib.suppress(OSError):
            flow.up.send(data)

    def rebind(self, flow, secs=5):
        """Move flow to a new upstream socket (a new source port towards the server), as
        a NAT rebinding does; the old socket is closed.  Done by the relay thread; returns
        (old port, new port) once it has happened."""
        old = flow.up.getsockname()[1]
        with self.lock:
            self._rebind_req.append(flow)
        wait_until(lambda: flow.up.getsockname()[1] != old, secs, "relay rebind")
        return old, flow.up.getsockname()[1]

    def _do_rebinds(self):
        with self.lock:
            reqs, self._rebind_req = self._rebind_req, []
        for f in reqs:
            up = self._socket()
            up.connect(self.server)
            self.sel.unregister(f.up)
            f.up.close()
            f.up = up
            self.sel.register(up, selectors.EVENT_READ, f)

    def _new_flow(self, addr):
        if len(self.flows) >= self.MAX_FLOWS:
            return None
        up = self._socket()
        up.connect(self.server)
        with self.lock:
            f = RelayFlow(len(self.flows), addr, up)
            self.flows.append(f)
            self._by_addr[addr] = f
        self.sel.register(up, selectors.EVENT_READ, f)
        return f

    def _send(self, sock, data, addr, delay):
        if delay > 0:
            self._seq += 1
            heapq.heappush(self._delayed, (time.monotonic() + delay, self._seq, sock, data, addr))
            return
        with contextlib.suppress(OSError):   # full buffer, server gone: a lost datagram
            if addr is None:
                sock.send(data)
            else:
                sock.sendto(data, addr)

    def _from_client(self):
        for _ in range(256):
            try:
                data, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            f = self._by_addr.get(addr) or self._new_flow(addr)
            if f is None:
                continue
            f.c2s += 1
            f.c2s_bytes += len(data)
            if f.c2s_first is None:
                f.c2s_first = data
            if self.c2s_hook:
                data = self.c2s_hook(f, data)
            if data is not None:
                self._send(f.up, data, None, self.delay_c2s)

    def _from_server(self, f):
        for _ in range(256):
            try:
                data = f.up.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:     # e.g. ICMP port unreachable while the server is down
                continue
            f.s2c += 1
            f.s2c_bytes += len(data)
            if f.s2c_first is None:
                f.s2c_first = data
            if self.s2c_hook:
                data = self.s2c_hook(f, data)
            if data is not None:
                self._send(self.sock, data, f.addr, self.delay_s2c)

    def _loop(self):
        try:
            while not self.stop.is_set():
                tmo = 0.1
                if self._delayed:
                    tmo = max(0.0, min(tmo, self._delayed[0][0] - time.monotonic()))
                for key, _ in self.sel.select(tmo):
                    if key.data is None:
                        self._from_client()
                    else:
                        self._from_server(key.data)
                if self._rebind_req:
                    self._do_rebinds()
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    _, _, sock, data, addr = heapq.heappop(self._delayed)
                    self._send(sock, data, addr, 0)
        except Exception as e:
            self.errors.append(f"{type(e).__name__}: {e}")

    def close(self):
        self.stop.set()
        self.thread.join(2)
        with contextlib.suppress(Exception):
            self.sel.close()
        for s in [self.sock] + [f.up for f in self.flows]:
            with contextlib.suppress(OSError):
                s.close()


# ---------------------------------------------------------------- packet capture

class Capture:
    """tshark on lo, capturing UDP port(s) `ports` (an int or a list) into DIR/NAME.pcapng.

    Running means proven running: we send marker datagrams to a second, unused port (also in
    the capture filter) until tshark prints one (-P -l), bounded by `secs`.  stop() ends it
    with SIGINT so the file is complete.  Read it back with tshark_fields().

    On lo, sctpt's UDP GSO sends show up as one frame per GSO batch (up to ~64 KB); on a real
    link they leave as separate datagrams.  Capture datagrams a UdpRelay sends to see those."""

    def __init__(self, env, ports, name="capture", secs=20):
        self.ports = [ports] if isinstance(ports, int) else list(ports)
        self.marker = free_port(udp=True)
        self.path = os.path.join(env.dir, f"{name}.pcapng")
        tshark = shutil.which("tshark")
        check(tshark is not None, "tshark not installed (apt-get install -y tshark)")
        bpf = " or ".join(f"udp port {p}" for p in self.ports + [self.marker])
        # -B: a 64 MiB kernel buffer (2 by default): on a loaded machine (the sanitizer
        # pass) tshark, printing each frame for the marker, fell behind and lo dropped frames.
        self.proc = env.spawn(name, [tshark, "-n", "-i", "lo", "-B", "64", "-f", bpf,
                                     "-w", self.path, "-P", "-l"])
        self.dropped = 0
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            end = time.monotonic() + secs
            while True:
                check(self.proc.alive(), f"tshark exited: {self.proc.tail(5)!r}")
                with contextlib.suppress(OSError):
                    s.sendto(b"capture-marker", (LOOP, self.marker))
                if re.search(rf"\b{self.marker}\b", self.proc.log_text()):
                    break
                check(time.monotonic() < end,
                      f"tshark not capturing within {secs}s: {self.proc.tail(5)!r}")
                time.sleep(0.2)
        finally:
            s.close()

    def stop(self, secs=15):
        self.proc.signal(signal.SIGINT)
        rc = self.proc.wait_exit(secs)
        check(rc is not None, f"tshark did not stop within {secs}s of SIGINT")
        check(os.path.exists(self.path), f"tshark wrote no {self.path}")
        # What the kernel dropped before tshark read it ("N packets dropped from lo").
        m = re.findall(r"(\d+) packets? dropped", self.proc.log_text())
        self.dropped = sum(int(x) for x in m)
        return rc


def tshark_fields(path, fields, display_filter=None, opts=(), secs=120):
    """tshark -r path -T fields: returns a list of rows (lists of strings, one per field)."""
    argv = ["tshark", "-n", "-r", path] + list(opts)
    if display_filter:
        argv += ["-Y", display_filter]
    argv += ["-T", "fields", "-E", "separator=/t"]
    for f in fields:
        argv += ["-e", f]
    rc, out, err = run_cmd(argv, secs)
    check(rc == 0, f"tshark -r exited {rc}: {err.strip()[-300:]!r}")
    return [ln.split("\t") for ln in out.splitlines() if ln.strip()]
