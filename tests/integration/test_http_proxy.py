"""The HTTP proxy front on the SOCKS port: curl -x http://, CONNECT with hashed bytes both
ways (pipelined after the head), every bad request's status, refusals, SOCKS on the same
port, --no-http, and headless Chromium when it is installed."""

import hashlib
import os
import shutil
import socket
import struct
import subprocess
import threading
import time

import lib
import test_curl
from lib import LOOP, check

# GET /data.bin: 1 MiB of random bytes; GET /echo: the request line and headers as
# received; POST: the body's sha256.  On 127.0.0.1 and [::1].
HTTP_SERVER = r"""
import hashlib, http.server, os, socket, sys, threading
d, port = sys.argv[1], int(sys.argv[2])
data = open(os.path.join(d, "data.bin"), "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def reply(self, body, ctype="application/octet-stream"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    def do_GET(self):
        if self.path == "/data.bin":
            self.reply(data)
        elif self.path.startswith("/echo"):
            self.reply((self.requestline + "\n" + str(self.headers)).encode())
        else:
            self.reply(b"<html><body><p id=x>hello through sctpt</p></body></html>", "text/html")
    do_HEAD = do_GET
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        h = hashlib.sha256()
        while n > 0:
            b = self.rfile.read(min(n, 1 << 16))
            if not b:
                break
            h.update(b)
            n -= len(b)
        self.reply(h.hexdigest().encode(), "text/plain")
class S6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
threading.Thread(target=S6(("::1", port), H).serve_forever, daemon=True).start()
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def http_server(env):
    return test_curl.http_server(env, HTTP_SERVER)


def curl(args, secs=60):
    rc, out, err = lib.run_cmd(["curl", "-sS", "--max-time", str(secs)] + args, secs=secs + 15)
    return rc, out, err


def curl_body(args, secs=60):
    """curl with --fail, the body as bytes."""
    p = subprocess.run(["curl", "-sS", "--fail", "--max-time", str(secs)] + args,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=secs + 15)
    check(p.returncode == 0, f"curl {' '.join(args)} failed (rc={p.returncode}): "
          f"{p.stderr.decode(errors='replace').strip()[-300:]}")
    return p.stdout


def raw_request(port, data, secs=10):
    """Send raw bytes to the front; return everything read until EOF."""
    s = socket.create_connection((LOOP, port), timeout=secs)
    try:
        s.sendall(data)
        got = b""
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                break
            if not d:
                break
            got += d
            check(len(got) < 1 << 20, "too much data in an error response")
        return got
    finally:
        s.close()


def status_of(resp):
    check(resp.startswith(b"HTTP/1.1 "), f"not an HTTP response: {resp[:80]!r}")
    return int(resp[9:12])


def read_head(s, limit=4096):
    """Read a response head byte by byte (what follows stays in the socket)."""
    got = b""
    while not got.endswith(b"\r\n\r\n"):
        d = s.recv(1)
        if not d:
            raise lib.TestFailure(f"EOF in the response head: {got!r}")
        got += d
        check(len(got) < limit, "response head too long")
    return got


def _setup(env, client_extra=(), allow=("127.0.0.0/8", "::1/128")):
    hport, sha = http_server(env)
    _, c = env.pair(proxy=True, allow=allow, client_extra=client_extra)
    return c, hport, sha


def test_http_get_post(env):
    c, hport, sha = _setup(env)
    proxy = f"http://{LOOP}:{c.socks}"
    for host in ("127.0.0.1", "localhost", "[::1]"):
        body = curl_body(["-x", proxy, f"http://{host}:{hport}/data.bin"])
        check(hashlib.sha256(body).hexdigest() == sha, f"GET via {host}: sha256 mismatch")
    # Several URLs in one curl run: curl would reuse the connection, which the
    # server closes after each response (Connection: close), so each request
    # must still reach its own host.
    outs = [os.path.join(env.dir, f"multi{i}.out") for i in range(3)]
    rc, _, err = curl(["--fail", "-x", proxy,
                       f"http://127.0.0.1:{hport}/data.bin", "-o", outs[0],
                       f"http://localhost:{hport}/echo", "-o", outs[1],
                       f"http://[::1]:{hport}/data.bin", "-o", outs[2]])
    check(rc == 0, f"curl with three URLs failed: {err.strip()[-300:]}")
    for i in (0, 2):
        with open(outs[i], "rb") as f:
            check(hashlib.sha256(f.read()).hexdigest() == sha, f"URL {i}: sha256 mismatch")
    with open(outs[1], "rb") as f:
        echo = f.read().decode().lower()
    check(echo.startswith("get /echo http/1.1") and f"host: localhost:{hport}" in echo,
          f"second URL reached the server as {echo[:200]!r}")
    post = os.urandom(3 << 20)
    path = os.path.join(env.dir, "post.bin")
    with open(path, "wb") as f:
        f.write(post)
    body = curl_body(["-x", proxy, "--data-binary", f"@{path}",
                      f"http://127.0.0.1:{hport}/upload"])
    check(body.decode() == hashlib.sha256(post).hexdigest(), "POST body sha256 mismatch")
    # What the server saw: origin-form, its own Host, no hop-by-hop headers.
    echo = curl_body(["-x", proxy, "-H", "Proxy-Connection: keep-alive",
                      "-H", "Connection: X-Secret", "-H", "X-Secret: 1", "-H", "X-Kept: 2",
                      "-H", "Keep-Alive: 5",
                      f"http://127.0.0.1:{hport}/echo?a=%2F"]).decode()
    lines = echo.lower().splitlines()
    check(lines[0] == "get /echo?a=%2f http/1.1", f"request line upstream: {lines[0]!r}")
    check(f"host: 127.0.0.1:{hport}" in lines, f"Host upstream: {echo!r}")
    check("connection: close" in lines, f"no Connection: close upstream: {echo!r}")
    check("x-kept: 2" in lines, f"X-Kept was dropped: {echo!r}")
    for h in ("proxy-connection", "x-secret", "keep-alive"):
        check(not any(l.startswith(h + ":") for l in lines), f"{h} reached the server: {echo!r}")


def test_http_connect_curl(env):
    c, hport, sha = _setup(env)
    body = curl_body(["-p", "-x", f"http://{LOOP}:{c.socks}", f"http://127.0.0.1:{hport}/data.bin"])
    check(hashlib.sha256(body).hexdigest() == sha, "GET through CONNECT: sha256 mismatch")
    # HTTP/1.0 CONNECT too.
    body = curl_body(["-p", "--proxy1.0", f"{LOOP}:{c.socks}", f"http://localhost:{hport}/data.bin"])
    check(hashlib.sha256(body).hexdigest() == sha, "GET through CONNECT/1.0: sha256 mismatch")


def connect_exchange(port, dest, c2s, s2c, seed, timeout=60):
    """CONNECT, with the exchange header and the first bytes pipelined after the head."""
    s = socket.create_connection((LOOP, port), timeout=timeout)
    gen = lib.gen(2 * seed, c2s)
    first = next(gen, b"")
    hsend = hashlib.sha256(first)
    head = (f"CONNECT {dest[0]}:{dest[1]} HTTP/1.1\r\nHost: {dest[0]}:{dest[1]}\r\n"
            "User-Agent: t\r\n\r\n").encode()
    res = {}
    t = None
    try:
        s.sendall(head + struct.pack("!QQQ", c2s, s2c, seed) + first)
        resp = read_head(s)
        check(resp.startswith(b"HTTP/1.1 200 "), f"CONNECT answered {resp!r}")

        def sender():
            try:
                for chunk in gen:
                    s.sendall(chunk)
                    hsend.update(chunk)
            except Exception as e:
                res["error"] = e

        t = threading.Thread(target=sender, daemon=True)
        t.start()
        h = hashlib.sha256()
        got = 0
        while got < s2c:
            d = s.recv(min(1 << 20, s2c - got))
            if not d:
                raise lib.TestFailure(f"EOF after {got}/{s2c} bytes")
            h.update(d)
            got += len(d)
        their = lib.recv_exact(s, 32)
        t.join(timeout)
        check("error" not in res, f"sending failed: {res.get('error')}")
        check(h.digest() == lib.payload_digest(2 * seed + 1, s2c), "target->app hash mismatch")
        check(their == hsend.digest(), "app->target hash mismatch (pipelined bytes lost?)")
        check(s.recv(1) == b"", "extra data after the payload")
    finally:
        s.close()
        if t is not None:
            t.join(2)


def test_http_connect_raw(env):
    _, c = env.pair(proxy=True, allow=("127.0.0.0/8", "::1/128"))
    ex = env.exchange_server()
    connect_exchange(c.socks, (LOOP, ex.addr[1]), 5 << 20, 5 << 20, 7)
    ex6 = env.exchange_server(host="::1")
    connect_exchange(c.socks, ("[::1]", ex6.addr[1]), 1 << 20, 2 << 20, 8)
    connect_exchange(c.socks, ("localhost", ex.addr[1]), 0, 1000, 9)


BAD = [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 501, "origin-form"),
    (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 501, "asterisk-form"),
    (b"GET ftp://x/ HTTP/1.1\r\n\r\n", 501, "other scheme"),
    (b"GET http://x/ HTTP/2.0\r\n\r\n", 505, "HTTP/2.0"),
    (b"hello\r\n\r\n", 400, "garbage"),
    (b"GET http://127.0.0.1:0/ HTTP/1.1\r\n\r\n", 400, "port 0"),
    (b"GET http://127.0.0.1:99999/ HTTP/1.1\r\n\r\n", 400, "port too big"),
    (b"GET http:///x HTTP/1.1\r\n\r\n", 400, "no host"),
    (b"GET http://u:p@127.0.0.1/ HTTP/1.1\r\n\r\n", 400, "userinfo"),
    (b"CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n", 400, "CONNECT without port"),
    (b"CONNECT [::1 HTTP/1.1\r\n\r\n", 400, "bad IPv6 literal"),
    (b"GET http://x/ HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400, "obs-fold"),
    (b"GET http://x/ HTTP/1.1\r\nA: b\0c\r\n\r\n", 400, "NUL"),
    (b"GET http://x/ HTTP/1.1\rA: b\r\n\r\n", 400, "CR without LF"),
    (b"GET http://x/ HTTP/1.1\r\nA : b\r\n\r\n", 400, "space before colon"),
    (b"GET http://x/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "two Host"),
    (b"POST http://x/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400,
     "conflicting Content-Length"),
    (b"POST http://x/ HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400,
     "huge Content-Length"),
    (b"POST http://x/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
     400, "Content-Length and Transfer-Encoding"),
    (b"GET http://x/ HTTP/1.1\r\nA: " + b"a" * 40000 + b"\r\n\r\n", 400, "head too large"),
    (b"GET http://x/ HTTP/1.1\r\n" + b"".join(b"X%d: v\r\n" % i for i in range(150)) + b"\r\n",
     400, "too many headers"),
]


def test_http_bad_requests(env):
    _, c = env.pair(proxy=True, client_extra=("--socks-timeout", "3"))
    for data, want, what in BAD:
        t0 = time.monotonic()
        resp = raw_request(c.socks, data)
        check(resp, f"{what}: no response")
        got = status_of(resp)
        check(got == want, f"{what}: status {got}, want {want}: {resp[:200]!r}")
        check(b"Connection: close\r\n" in resp, f"{what}: no Connection: close")
        check(time.monotonic() - t0 < 5, f"{what}: the connection was not closed promptly")
    # A head that never ends: 408 at the --socks-timeout deadline, from accept.
    t0 = time.monotonic()
    s = socket.create_connection((LOOP, c.socks), timeout=15)
    s.sendall(b"GET http://127.0.0.1/ HTTP/1.1\r\n")
    got = b""
    for _ in range(8):
        time.sleep(0.5)
        try:
            s.sendall(b"X: y\r\n")
        except OSError:
            break
    while True:
        try:
            d = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            break
        if not d:
            break
        got += d
    s.close()
    dt = time.monotonic() - t0
    check(got and status_of(got) == 408, f"slow head: got {got[:100]!r}")
    check(2.5 < dt < 10, f"slow head answered after {dt:.1f} s, want about 3")
    # A first byte that is neither SOCKS nor an HTTP method: closed without an answer.
    check(raw_request(c.socks, b"\x07\x01\x00") == b"", "0x07 got an answer")
    # The client serves on.
    check(status_of(raw_request(c.socks, b"GET / HTTP/1.1\r\n\r\n")) == 501,
          "the front stopped answering")


def test_http_refusals(env):
    # The server allows only 127.0.0.0/8: [::1] is refused by its ACL (403), a
    # closed port on 127.0.0.1 by the kernel (502).
    _, c = env.pair(proxy=True, allow=("127.0.0.0/8",))
    closed = lib.free_port()
    cases = [
        (b"GET http://[::1]:%d/ HTTP/1.1\r\n\r\n" % closed, 403, "ACL, absolute-form"),
        (b"CONNECT [::1]:%d HTTP/1.1\r\n\r\n" % closed, 403, "ACL, CONNECT"),
        (b"GET http://127.0.0.1:%d/ HTTP/1.1\r\n\r\n" % closed, 502, "refused, absolute-form"),
        (b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n" % closed, 502, "refused, CONNECT"),
    ]
    for data, want, what in cases:
        resp = raw_request(c.socks, data, secs=20)
        check(resp, f"{what}: no response")
        check(status_of(resp) == want, f"{what}: {resp[:100]!r}, want {want}")
    rc, out, _ = curl(["-o", "/dev/null", "-w", "%{http_code}", "-x", f"http://{LOOP}:{c.socks}",
                       f"http://127.0.0.1:{closed}/"])
    check(out.strip() == "502", f"curl to a closed port: {out!r}")


def test_http_socks_same_port(env):
    _, c = env.pair(proxy=True)
    ex = env.exchange_server()
    lib.exchange(c.socks, (LOOP, ex.addr[1]), 1 << 20, 1 << 20, 11, version=5)
    lib.exchange(c.socks, (LOOP, ex.addr[1]), 1 << 20, 1 << 20, 12, version=4)
    connect_exchange(c.socks, (LOOP, ex.addr[1]), 1 << 20, 1 << 20, 13)


def test_http_no_http(env):
    _, c = env.pair(proxy=True, client_extra=("--no-http",))
    check("also an HTTP proxy" not in c.log_text(), "--no-http still announces HTTP")
    resp = raw_request(c.socks, b"GET http://127.0.0.1/ HTTP/1.1\r\n\r\n")
    check(resp == b"", f"--no-http answered HTTP: {resp[:100]!r}")
    ex = env.exchange_server()
    lib.exchange(c.socks, (LOOP, ex.addr[1]), 1 << 16, 1 << 16, 21, version=5)


def ttfb(args, n):
    """Median time to first byte over n curl runs."""
    times = []
    for _ in range(n):
        rc, out, err = curl(["-o", "/dev/null", "-w", "%{time_starttransfer}"] + args, secs=20)
        check(rc == 0, f"curl {args}: {err.strip()[-200:]}")
        times.append(float(out))
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.9)]


def test_http_ttfb(env):
    """Time to first byte through each protocol of the front (100 requests each)."""
    c, hport, _ = _setup(env)
    url = f"http://127.0.0.1:{hport}/small"
    res = {}
    for name, args in (("http", ["-x", f"http://{LOOP}:{c.socks}"]),
                       ("connect", ["-p", "-x", f"http://{LOOP}:{c.socks}"]),
                       ("socks5h", ["-x", f"socks5h://{LOOP}:{c.socks}"]),
                       ("direct", [])):
        res[name] = ttfb(args + [url], 100)
    lib.info("TTFB median / p90 ms over 100 requests: " + ", ".join(
        f"{k} {v[0] * 1000:.2f}/{v[1] * 1000:.2f}" for k, v in res.items()))
    check(res["http"][0] < res["socks5h"][0] * 3 + 0.01, "HTTP front much slower than SOCKS")


def test_http_chromium(env):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        lib.info("chromium is not installed (scripts/setup.sh installs it); skipped")
        return
    c, hport, _ = _setup(env)
    prof = os.path.join(env.dir, "chromium-profile")
    for url in (f"http://127.0.0.1:{hport}/page", f"http://localhost:{hport}/page"):
        p = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu",
                            "--no-first-run", f"--user-data-dir={prof}",
                            f"--proxy-server=http://{LOOP}:{c.socks}",
                            "--proxy-bypass-list=<-loopback>", "--dump-dom", url],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90)
        out = p.stdout.decode(errors="replace")
        check("hello through sctpt" in out,
              f"chromium via the HTTP front ({url}): rc={p.returncode} {out[:200]!r} "
              f"{p.stderr.decode(errors='replace')[-300:]!r}")
    # Control: the same run with the proxy on a closed port gets no page, so the
    # page above really came through the front (loopback is not bypassed).
    closed = lib.free_port()
    p = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        f"--user-data-dir={prof}", f"--proxy-server=http://{LOOP}:{closed}",
                        "--proxy-bypass-list=<-loopback>", "--dump-dom",
                        f"http://127.0.0.1:{hport}/page"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90)
    check("hello through sctpt" not in p.stdout.decode(errors="replace"),
          "chromium bypassed the proxy: the control run got the page")


def _hold(conn):
    """Target that keeps each connection open until the other side closes it."""
    while conn.recv(4096):
        pass


def test_http_fd_budget(env):
    """The client under `prlimit --nofile=96`: CONNECTs beyond its descriptor budget get
    502 (never a hang); once they are closed it serves again."""
    prlimit = shutil.which("prlimit")
    check(prlimit is not None, "prlimit not installed")
    srv = env.start_server(proxy=True, allow=("127.0.0.0/8",))
    port = lib.free_port()
    c = env.spawn("client", [prlimit, "--nofile=96", lib.BIN, "client", "--server",
                             f"udp://{LOOP}:{srv.port}", "--cert", env.cert,
                             "--socks", f"{LOOP}:{port}", "--socks-timeout", "3"])
    check(c.wait_log("association up", 20), f"client: no association\n{c.tail()}")
    sink = env.add(lib.TCPServerThread(_hold))
    held, codes = [], []
    try:
        for _ in range(120):
            s = socket.create_connection((LOOP, port), timeout=10)
            s.sendall(f"CONNECT {LOOP}:{sink.port} HTTP/1.1\r\n\r\n".encode())
            try:
                head = read_head(s)
            except (lib.TestFailure, OSError) as e:
                s.close()
                codes.append(str(e)[:60])
                continue
            if head.startswith(b"HTTP/1.1 200 "):
                held.append(s)
            else:
                codes.append(status_of(head))
                s.close()
        lib.info(f"client: {len(held)} CONNECTs held, {len(codes)} refused "
                 f"(statuses {sorted(set(map(str, codes)))})")
        check(codes and set(codes) == {502}, f"refusals {sorted(set(map(str, codes)))}, want 502")
        check(len(held) >= 40, f"only {len(held)} tunnels under a 96-descriptor limit")
    finally:
        for s in held:
            s.close()
    ex = env.exchange_server()
    t0 = time.monotonic()
    while True:
        try:
            connect_exchange(port, ex.addr, 4096, 4096, 31, timeout=10)
            break
        except Exception as e:   # noqa: BLE001 - until the closes are seen
            check(time.monotonic() - t0 < 15, f"no tunnel 15 s after the fds were freed: {e}")
            time.sleep(0.5)
    check(c.alive() and srv.alive(), "a process died")
