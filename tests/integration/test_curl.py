"""curl through the SOCKS listener to a local HTTP server (python http.server, 1 MiB file)."""

import hashlib
import os
import sys

import lib
from lib import LOOP, check

# Serves a directory on 127.0.0.1:PORT and [::1]:PORT (so "localhost" works either way).
HTTP_SERVER = r"""
import functools, http.server, socket, sys, threading
d, port = sys.argv[1], int(sys.argv[2])
H = functools.partial(http.server.SimpleHTTPRequestHandler, directory=d)
class S6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
s6 = S6(("::1", port), H)
threading.Thread(target=s6.serve_forever, daemon=True).start()
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def http_server(env, script=HTTP_SERVER):
    """Serve 1 MiB of random data.bin (and whatever else script serves) on 127.0.0.1 and ::1;
    returns (port, sha256 of data.bin)."""
    d = os.path.join(env.dir, "www")
    os.makedirs(d)
    data = os.urandom(1 << 20)
    with open(os.path.join(d, "data.bin"), "wb") as f:
        f.write(data)
    port = lib.free_port()
    env.spawn("http", [sys.executable, "-c", script, d, str(port)])
    lib.wait_until(lambda: lib.tcp_port_open(port), 15, "the HTTP server")
    return port, hashlib.sha256(data).hexdigest()


def curl(env, args, url, want_sha):
    out = os.path.join(env.dir, "curl.out")
    if os.path.exists(out):
        os.unlink(out)
    rc, _, err = lib.run_cmd(["curl", "-sS", "--fail", "--max-time", "60", "-o", out]
                             + args + [url], secs=75)
    check(rc == 0, f"curl {' '.join(args)} {url} failed (rc={rc}): {err.strip()[-300:]}")
    with open(out, "rb") as f:
        data = f.read()
    check(len(data) == 1 << 20, f"curl got {len(data)} bytes, want {1 << 20}")
    check(hashlib.sha256(data).hexdigest() == want_sha, "curl download sha256 mismatch")


def _proxy_setup(env):
    hport, sha = http_server(env)
    _, c = env.pair(proxy=True, allow=("127.0.0.0/8", "::1/128"))
    return c, hport, sha


def test_curl_socks5_hostname(env):
    c, hport, sha = _proxy_setup(env)
    for host in ("localhost", "127.0.0.1"):
        curl(env, ["--socks5-hostname", f"{LOOP}:{c.socks}"],
             f"http://{host}:{hport}/data.bin", sha)


def test_curl_socks5h_userpass(env):
    c, hport, sha = _proxy_setup(env)
    curl(env, ["--proxy", f"socks5h://user:pass@{LOOP}:{c.socks}"],
         f"http://localhost:{hport}/data.bin", sha)


def test_curl_socks4a(env):
    c, hport, sha = _proxy_setup(env)
    curl(env, ["--socks4a", f"{LOOP}:{c.socks}"], f"http://localhost:{hport}/data.bin", sha)


def test_curl_target_mode(env):
    hport, sha = http_server(env)
    _, c = env.pair(target=f"{LOOP}:{hport}")
    # The destination is ignored in --target mode: port 1 is closed, yet we get the file.
    curl(env, ["--socks5", f"{LOOP}:{c.socks}"], f"http://127.0.0.1:1/data.bin", sha)
    curl(env, ["--socks4", f"{LOOP}:{c.socks}"], f"http://127.0.0.1:{hport}/data.bin", sha)
