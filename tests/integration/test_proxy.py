"""Upstream proxies: the client reaches the server through a proxy given with
--upstream-proxy (or tor's TOR_PT_PROXY).  The proxies are the real Debian packages,
configured by the test in its temp dir and listening on loopback: tinyproxy (HTTP
CONNECT, with and without Basic auth), microsocks (SOCKS5 with user/password), and
dante's danted (SOCKS4, and SOCKS5 UDP ASSOCIATE for the UDP carrier).  Broken
proxies are Python fakes: each failure must be logged with its reason, retried, and
must not crash anything.

Needs: apt-get install tinyproxy dante-server microsocks"""

import os
import re
import shutil
import socket
import struct
import threading
import time

import lib
from lib import LOOP, check, info
from test_managed import (ExtOrServer, ManagedProc, echo_check, pt_client_env,
                          start_pt_server, tor_socks)
from test_paths import start_client_paths, start_server_at

KiB = 1 << 10
MiB = 1 << 20


# ---------------------------------------------------------------- real proxies

def need(binary, package):
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if os.path.exists(p)), None)
    check(path is not None, f"{binary} not installed (apt-get install {package})")
    return path


def wait_port(port, proc, what):
    lib.wait_until(lambda: lib.tcp_port_open(port) or not proc.alive(), 10, f"{what} to listen")
    check(proc.alive(), f"{what} exited at start:\n{proc.tail()}")


def tinyproxy(env, auth=None, name="tinyproxy"):
    """tinyproxy in the foreground on LOOP; CONNECT to any port; optional Basic auth."""
    port = lib.free_port()
    conf = os.path.join(env.dir, f"{name}.conf")
    lines = ["User nobody", "Group nogroup", f"Port {port}", f"Listen {LOOP}", "Timeout 60",
             "LogLevel Info", "MaxClients 50", f"Allow {LOOP}"]
    if auth:
        lines.append(f"BasicAuth {auth[0]} {auth[1]}")
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = env.spawn(name, [need("tinyproxy", "tinyproxy"), "-d", "-c", conf])
    wait_port(port, p, name)
    p.port = port
    return p


def microsocks(env, user, password, name="microsocks"):
    port = lib.free_port()
    p = env.spawn(name, [need("microsocks", "microsocks"), "-i", LOOP, "-p", str(port),
                         "-u", user, "-P", password])
    wait_port(port, p, name)
    p.port = port
    return p


def danted(env, name="danted"):
    """dante: SOCKS4 and SOCKS5 without authentication, CONNECT and UDP ASSOCIATE,
    loopback only, logging every connect and UDP association to its stderr."""
    port = lib.free_port()
    conf = os.path.join(env.dir, f"{name}.conf")
    with open(conf, "w") as f:
        f.write(f"""logoutput: stderr
internal: {LOOP} port = {port}
external: {LOOP}
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{
  from: 127.0.0.0/8 to: 0.0.0.0/0
}}
socks pass {{
  from: 127.0.0.0/8 to: 127.0.0.0/8
  command: connect udpassociate udpreply
  log: error connect
}}
""")
    p = env.spawn(name, [need("danted", "dante-server"), "-f", conf, "-N", "1"])
    wait_port(port, p, name)
    p.port = port
    return p


def established_by(process_name, dport):
    """Whether a process called process_name has a TCP connection to LOOP:dport."""
    rc, out, _ = lib.run_cmd(["ss", "-Htnp", "state", "established", "dst", f"{LOOP}:{dport}"])
    return rc == 0 and f'"{process_name}"' in out


def exchanges(c, ex, n, size, first_seed=1):
    jobs = [(c.socks, ex.addr, size, size, first_seed + i, 60) for i in range(n)]
    res = lib.run_parallel(lib.exchange, jobs, 90)
    check(all(e is None for e in res), lib.summarize_errors(res))


def sctpt_server(env):
    """One server on TCP and UDP (same port number), proxy mode for 127.0.0.0/8."""
    port = lib.free_port()
    srv = start_server_at(env, [f"tcp://{LOOP}:{port}", f"udp://{LOOP}:{port}"], extra=["-v"])
    srv.port = port
    return srv


def proxied_client(env, srv, proxy_url, name, paths=("tcp",), wait=True):
    return start_client_paths(env, [f"{p}://{LOOP}:{srv.port}" for p in paths], name=name,
                              extra=["--upstream-proxy", proxy_url, "-v"], wait=wait)


# ---------------------------------------------------------------- carriers through proxies

@lib.timeout(60)
def test_proxy_http_connect(env):
    """The TCP carrier through tinyproxy's HTTP CONNECT, without and with Basic auth:
    hashed exchanges pass, tinyproxy logs the CONNECTs, and a UDP path given to the
    same client (UDP needs socks5) fails with a clear reason without disturbing the
    TCP path."""
    srv = sctpt_server(env)
    ex = env.exchange_server()
    open_tp = tinyproxy(env, name="tinyproxy-open")
    auth_tp = tinyproxy(env, auth=("alice", "s3cret"), name="tinyproxy-auth")
    t0 = time.monotonic()
    c1 = proxied_client(env, srv, f"http://{LOOP}:{open_tp.port}", "client-open",
                        paths=("udp", "tcp"))
    up1 = time.monotonic() - t0
    c2 = proxied_client(env, srv, f"http://alice:s3cret@{LOOP}:{auth_tp.port}", "client-auth")
    exchanges(c1, ex, 4, 1 * MiB)
    exchanges(c2, ex, 4, 1 * MiB, first_seed=10)
    for c in (c1, c2):
        check("connected to the server through the http proxy" in c.log_text(),
              f"{c.name}: no proxied connection logged\n{c.tail()}")
    for tp in (open_tp, auth_tp):
        check(re.search(rf'Established connection to host "{LOOP}".*|CONNECT.*:{srv.port}',
                        tp.log_text()), f"{tp.name} logged no CONNECT:\n{tp.tail()}")
    check("UDP paths need a socks5 proxy (this one is http)" in c1.log_text(),
          f"the UDP path's failure was not explained:\n{c1.tail()}")
    check(c1.log_text().count("association up") == 1 and
          c2.log_text().count("association up") == 1, "an association was re-made")
    info(f"through tinyproxy: association up after {up1:.2f}s (UDP path refused, TCP path "
         f"via CONNECT); 8 x 1 MiB exchanges hashed")


@lib.timeout(60)
def test_proxy_socks_connect(env):
    """The TCP carrier through SOCKS5 with user/password (microsocks) and through
    SOCKS4 (danted): hashed exchanges pass, and the proxies hold the connections to
    the server."""
    srv = sctpt_server(env)
    ex = env.exchange_server()
    ms = microsocks(env, "bob", "pa55word")
    dd = danted(env)
    c5 = proxied_client(env, srv, f"socks5://bob:pa55word@{LOOP}:{ms.port}", "client-socks5")
    c4 = proxied_client(env, srv, f"socks4a://tor@{LOOP}:{dd.port}", "client-socks4")
    exchanges(c5, ex, 4, 1 * MiB)
    exchanges(c4, ex, 4, 1 * MiB, first_seed=10)
    check("connected to the server through the socks5 proxy" in c5.log_text(), c5.tail())
    check("connected to the server through the socks4a proxy" in c4.log_text(), c4.tail())
    check(established_by("microsocks", srv.port), "microsocks holds no connection to the server")
    check(re.search(rf"tcp/connect \[: .*-> .* {re.escape(LOOP)}\.{srv.port}\b", dd.log_text()),
          f"danted logged no CONNECT to the server:\n{dd.tail()}")


@lib.timeout(60)
def test_proxy_socks5_udp_associate(env):
    """The UDP carrier through danted's SOCKS5 UDP ASSOCIATE: every datagram goes to
    dante's relay with a SOCKS5 header; hashed exchanges (bulk, so GSO batches too)
    pass, and danted logs the association."""
    srv = sctpt_server(env)
    ex = env.exchange_server()
    dd = danted(env)
    t0 = time.monotonic()
    c = proxied_client(env, srv, f"socks5://{LOOP}:{dd.port}", "client", paths=("udp",))
    up = time.monotonic() - t0
    t1 = time.monotonic()
    exchanges(c, ex, 4, 2 * MiB)
    dt = time.monotonic() - t1
    check("SOCKS5 UDP ASSOCIATE ready" in c.log_text(), f"no UDP ASSOCIATE:\n{c.tail()}")
    check(re.search(r"udp/udpassociate", dd.log_text()),
          f"danted logged no UDP association:\n{dd.tail()}")
    check(c.log_text().count("association up") == 1, "the association was re-made")
    info(f"through danted's UDP relay: association up after {up:.2f}s; 4 x 2 MiB each way "
         f"in {dt:.2f}s")


# ---------------------------------------------------------------- broken proxies

class FakeProxy(lib.TCPServerThread):
    """A misbehaving proxy on LOOP.  mode: close (read, then close), garbage (answer
    random bytes), bighttp (200 then endless headers), silent (never answer), udpclose
    (grant UDP ASSOCIATE, then close the control connection after a moment)."""

    def __init__(self, mode):
        self.mode = mode
        super().__init__(self._handle, conn_timeout=30)

    def _handle(self, c):
        if self.mode == "close":
            c.recv(1024)
        elif self.mode == "garbage":
            c.recv(1024)
            c.sendall(os.urandom(64).replace(b"\x05", b"\x06"))
            time.sleep(1)
        elif self.mode == "bighttp":
            c.recv(1024)
            c.sendall(b"HTTP/1.1 200 Connection established\r\n")
            for _ in range(200):
                c.sendall(b"X-Padding: " + b"a" * 100 + b"\r\n")
            time.sleep(1)
        elif self.mode == "silent":
            while c.recv(1024):
                pass
        elif self.mode == "udpclose":
            lib.recv_exact(c, 3)
            c.sendall(b"\x05\x00")
            lib.recv_exact(c, 10)
            c.sendall(b"\x05\x00\x00\x01" + socket.inet_aton(LOOP) + struct.pack("!H", 9))
            time.sleep(0.5)


@lib.timeout(90)
def test_proxy_failures_reported(env):
    """Each broken proxy is reported with its own reason in the client's log, the
    client keeps retrying (the proxy sees new connections), nothing crashes, and a
    client through a working proxy is not disturbed meanwhile."""
    srv = sctpt_server(env)
    ex = env.exchange_server()
    auth_tp = tinyproxy(env, auth=("alice", "s3cret"))
    ms = microsocks(env, "bob", "pa55word")
    fakes = {m: env.add(FakeProxy(m)) for m in ("close", "garbage", "bighttp", "silent",
                                                "udpclose")}
    dead = lib.free_port()          # nothing listens there
    cases = [  # name, proxy URL, paths, expected reason (regex), fake or None
        ("http-wrong-pass", f"http://alice:wrong@{LOOP}:{auth_tp.port}", ("tcp",),
         r"HTTP proxy answered 40[17] (Unauthorized|Proxy Authentication Required)", None),
        ("socks5-wrong-pass", f"socks5://bob:wrong@{LOOP}:{ms.port}", ("tcp",),
         r"SOCKS5 proxy rejected the user name or password", None),
        ("socks5-no-creds", f"socks5://{LOOP}:{ms.port}", ("tcp",),
         r"SOCKS5 proxy requires authentication", None),
        ("socks5-udp-refused", f"socks5://bob:pa55word@{LOOP}:{ms.port}", ("udp",),
         re.escape("SOCKS5 proxy refused UDP ASSOCIATE (reply 7: command not supported)"), None),
        ("not-listening", f"socks5://{LOOP}:{dead}", ("tcp",),
         r"cannot connect to the socks5 proxy: connection refused", None),
        ("not-listening-udp", f"socks5://{LOOP}:{dead}", ("udp",),
         r"cannot connect to the socks5 proxy: connection refused", None),
        ("closes", f"http://{LOOP}:{fakes['close'].port}", ("tcp",),
         r"the http proxy closed the connection before answering the CONNECT", "close"),
        ("garbage", f"socks5://{LOOP}:{fakes['garbage'].port}", ("tcp",),
         r"SOCKS5 proxy answered the greeting with a wrong version byte", "garbage"),
        ("oversized", f"http://{LOOP}:{fakes['bighttp'].port}", ("tcp",),
         r"HTTP proxy's answer headers are longer than 8 KB", "bighttp"),
        ("udp-control-closed", f"socks5://{LOOP}:{fakes['udpclose'].port}", ("udp",),
         r"SOCKS5 proxy closed the UDP ASSOCIATE control connection", "udpclose"),
        ("silent", f"socks5://{LOOP}:{fakes['silent'].port}", ("tcp",),
         r"the socks5 proxy did not complete the negotiation within 10 s", "silent"),
    ]
    t0 = time.monotonic()
    clients = [(name, proxied_client(env, srv, url, name, paths=paths, wait=False), want, fake)
               for name, url, paths, want, fake in cases]
    good = proxied_client(env, srv, f"http://alice:s3cret@{LOOP}:{auth_tp.port}", "good")
    stop = threading.Event()
    good_err = []

    def keep_busy():
        seed = 100
        while not stop.is_set():
            try:
                lib.exchange(good.socks, ex.addr, 200 * KiB, 200 * KiB, seed, timeout=30)
            except Exception as e:  # noqa: BLE001 - reported below
                good_err.append(f"{type(e).__name__}: {e}")
                return
            seed += 1
    t = threading.Thread(target=keep_busy, daemon=True)
    t.start()
    seen = {}
    for name, c, want, fake in clients:
        lib.wait_until(lambda: re.search(want, c.log_text()), 20,
                       f"{name}: a log line matching {want!r}\n{c.tail()}")
        seen[name] = time.monotonic() - t0
    # Retried: each fake proxy sees a second connection, and each client logs again.
    for name, c, want, fake in clients:
        if fake is not None:
            lib.wait_until(lambda: fakes[fake].accepted >= 2, 30, f"{name}: a retry")
        else:
            lib.wait_until(lambda: len(re.findall(want, c.log_text())) >= 2, 20,
                           f"{name}: a second attempt\n{c.tail()}")
    stop.set()
    t.join(40)
    check(not good_err, f"the working client was disturbed: {good_err}")
    for name, c, want, fake in clients:
        check(c.alive(), f"{name}: the client exited\n{c.tail()}")
        check("association up" not in c.log_text(), f"{name}: an association came up?")
    check(srv.alive() and good.alive(), "the server or the working client died")
    info("reasons logged after: " + ", ".join(f"{k} {v:.1f}s" for k, v in seen.items()))


# ---------------------------------------------------------------- tor managed mode

def pt_client_with_proxy(env, name, proxy_url):
    state = os.path.join(env.dir, name + "-state")
    p = ManagedProc(env, name, {**pt_client_env(env, state), "TOR_PT_PROXY": proxy_url})
    check(p.wait_out("CMETHODS DONE", 15), f"{name}: no CMETHODS DONE:\n{p.tail()}")
    out = [ln for ln in p.out_text().splitlines() if not ln.startswith("LOG ")]
    check(out[:2] == ["VERSION 1", "PROXY DONE"], f"{name}: want PROXY DONE first: {out}")
    m = re.search(r"^CMETHOD sctp socks5 127\.0\.0\.1:(\d+)$", p.out_text(), re.M)
    check(m is not None, f"{name}: no CMETHOD line: {p.out_text()!r}")
    p.socks = int(m.group(1))
    return p


@lib.timeout(60)
def test_proxy_managed_tor_pt_proxy(env):
    """TOR_PT_PROXY in managed mode: a bridge with a UDP address and tcp= argument.
    Through an HTTP proxy only the tcp= path can work (the UDP path says why); through
    danted (socks5) the bridge is reached too.  An echo through the Extended ORPort
    proves the bridge was reached, and the proxies' logs show they carried it."""
    ext = env.add(ExtOrServer(os.path.join(env.dir, "cookie")))
    tport = lib.free_port()
    srv = start_pt_server(env, extor=ext.port, cookie=ext.cookie_path,
                          options=f"sctp:tcp={LOOP}:{tport}")
    args = f"cert={srv.cert};tcp={LOOP}:{tport}"
    tp = tinyproxy(env)
    dd = danted(env)
    results = []
    for name, url, proxy in (("ptclient-http", f"http://{LOOP}:{tp.port}", tp),
                             ("ptclient-socks5", f"socks5://{LOOP}:{dd.port}", dd)):
        cli = pt_client_with_proxy(env, name, url)
        t0 = time.monotonic()
        s, code = tor_socks(cli.socks, srv.port, args)
        check(code == 0, f"{name}: SOCKS code {code}\n{cli.tail()}")
        echo_check(s)
        results.append(f"{name} {time.monotonic() - t0:.2f}s")
        s.close()
        check(f"STATUS TRANSPORT=sctp ADDRESS={LOOP}:{srv.port} CONNECT=Success"
              in cli.out_text(), f"{name}: no STATUS CONNECT=Success\n{cli.out_text()}")
    check("UDP paths need a socks5 proxy (this one is http)" in
          open(os.path.join(env.dir, "ptclient-http.log")).read(),
          "the managed client did not say why the UDP path is unused")
    check(re.search(rf"CONNECT.*{tport}|Established connection to host \"{re.escape(LOOP)}\"",
                    tp.log_text()), f"tinyproxy carried nothing:\n{tp.tail()}")
    check(re.search(rf"udp/udpassociate|tcp/connect \[: .*-> .* {re.escape(LOOP)}\.{tport}\b",
                    dd.log_text()), f"danted carried nothing:\n{dd.tail()}")
    evs = ext.wait_events(2)
    check(all(e.get("verdict") == "okay" and e.get("transport") == "sctp" for e in evs),
          f"Extended ORPort events: {evs}")
    info("echo through the bridge via TOR_PT_PROXY: " + ", ".join(results))
