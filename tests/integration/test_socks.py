"""SOCKS front end: variants that must work, malformed/unsupported requests, ACL and DNS errors."""

import struct
import time

import lib
from lib import LOOP, check


def _raw(c):
    return lib.proxy_socket(c.socks, timeout=15)


def _good(c, ex, seed):
    """A normal request still works (the client keeps serving)."""
    lib.exchange(c.socks, ex.addr, 8192, 8192, seed, timeout=30)


def _socks5_rep(c, request, methods=(0,)):
    s = _raw(c)
    try:
        check(lib.socks5_greet(s, methods) == 0, "method 0x00 not accepted")
        s.sendall(request)
        return lib.socks5_read_reply(s)
    finally:
        s.close()


def _socks4_rep(c, request):
    s = _raw(c)
    try:
        s.sendall(request)
        return lib.socks4_read_reply(s)
    finally:
        s.close()


def _closed_without_reply(c, data):
    s = _raw(c)
    try:
        s.sendall(data)
        s.settimeout(5)
        try:
            d = s.recv(64)
        except (ConnectionResetError, BrokenPipeError):
            return
        except TimeoutError:
            raise lib.TestFailure(f"sent {data.hex()}: connection not closed within 5s")
        check(d == b"", f"sent {data.hex()}: expected close without reply, got {d.hex()}")
    finally:
        s.close()


def test_socks_variants(env):
    """SOCKS4, SOCKS4a, SOCKS5 with user/pass, SOCKS5 with pipelined data, all carry data."""
    _, c = env.pair()
    ex = env.exchange_server()
    lib.exchange(lib.socks_open(c.socks, LOOP, ex.port, version=4, user="tester"),
                 None, 65536, 65536, 1)
    lib.exchange(lib.socks_open(c.socks, "sctpt-test.example", ex.port, version=4),
                 None, 65536, 65536, 2)
    lib.exchange(lib.socks_open(c.socks, LOOP, ex.port, user="u" * 200, password="p;=\\x"),
                 None, 65536, 65536, 3)
    lib.exchange(lib.socks_open(c.socks, "sctpt-test.example", ex.port), None, 65536, 65536, 4)
    # Greeting, request and the first application bytes in one write.
    s = _raw(c)
    s.sendall(b"\x05\x01\x00" + lib.socks5_request_bytes(LOOP, ex.port)
              + struct.pack("!QQQ", 0, 1000, 5))
    check(lib.recv_exact(s, 2) == b"\x05\x00", "pipelined: bad method reply")
    check(lib.socks5_read_reply(s) == 0, "pipelined: request failed")
    data = lib.recv_exact(s, 1000 + 32)
    s.close()
    check(data[:1000] == b"".join(lib.gen(11, 1000)), "pipelined: data mismatch")
    lib.wait_until(lambda: ex.ok == 5, 5, f"5 good exchanges at the target (errors {ex.errors})")


def test_socks5_ipv6_destination(env):
    _, c = env.pair(allow=("::1/128",))
    ex = env.exchange_server(host="::1")
    lib.exchange(lib.socks_open(c.socks, "::1", ex.port), None, 65536, 65536, 1)


def test_socks_protocol_errors(env):
    _, c = env.pair()
    ex = env.exchange_server()
    closed = lib.free_port()
    _good(c, ex, 1)

    _closed_without_reply(c, b"\x07\x01\x00")
    _good(c, ex, 2)

    s = _raw(c)
    try:
        m = lib.socks5_greet(s, (1,))       # GSSAPI only
        check(m == 0xFF, f"no acceptable method: got method 0x{m:02x}, want 0xff")
    finally:
        s.close()
    _good(c, ex, 3)

    # UDP ASSOCIATE (3) is relayed: test_udp.py
    for cmd, name in ((2, "BIND"), (4, "command 4")):
        rep = _socks5_rep(c, lib.socks5_request_bytes(LOOP, ex.port, cmd=cmd))
        check(rep == 0x07, f"SOCKS5 {name}: reply 0x{rep:02x}, want 0x07")
        _good(c, ex, 10 + cmd)

    rep = _socks5_rep(c, b"\x05\x01\x00\x05" + bytes(6))
    check(rep == 0x08, f"SOCKS5 bad ATYP: reply 0x{rep:02x}, want 0x08")
    _good(c, ex, 4)

    rep = _socks4_rep(c, lib.socks4_request_bytes(LOOP, ex.port, cmd=2))
    check(rep == 0x5B, f"SOCKS4 BIND: reply 0x{rep:02x}, want 0x5b")
    _good(c, ex, 5)

    rep = _socks5_rep(c, lib.socks5_request_bytes(LOOP, closed))
    check(rep == 0x05, f"SOCKS5 to a closed port: reply 0x{rep:02x}, want 0x05")
    _good(c, ex, 6)

    rep = _socks4_rep(c, lib.socks4_request_bytes(LOOP, closed))
    check(rep == 0x5B, f"SOCKS4 to a closed port: reply 0x{rep:02x}, want 0x5b")
    _good(c, ex, 7)

    # --allow 127.0.0.0/8 does not open other private ranges
    rep = _socks5_rep(c, lib.socks5_request_bytes("10.1.2.3", 80))
    check(rep == 0x02, f"SOCKS5 to 10.1.2.3 with --allow 127.0.0.0/8: reply 0x{rep:02x}, want 0x02")
    _good(c, ex, 8)
    check(c.alive(), "client died")


def test_socks_acl_refuses_internal(env):
    """Proxy mode refuses internal destinations unless allowed; nothing is connected."""
    _, c = env.pair(allow=("127.0.0.2/32",))
    allowed = env.exchange_server(host="127.0.0.2")
    denied = env.exchange_server()                   # 127.0.0.1
    _good(c, allowed, 1)
    for host, port in ((LOOP, denied.port), ("127.0.0.3", denied.port), ("10.1.2.3", 80),
                       ("192.168.1.1", 80), ("::1", denied.port), ("::ffff:127.0.0.1", denied.port),
                       ("localhost", denied.port)):
        t0 = time.monotonic()
        rep = _socks5_rep(c, lib.socks5_request_bytes(host, port))
        check(rep == 0x02, f"SOCKS5 to {host}:{port}: reply 0x{rep:02x}, want 0x02 (not allowed)")
        check(time.monotonic() - t0 < 10, f"ACL refusal for {host} took too long")
        _good(c, allowed, 2)
    rep = _socks4_rep(c, lib.socks4_request_bytes(LOOP, denied.port))
    check(rep == 0x5B, f"SOCKS4 to a denied destination: 0x{rep:02x}, want 0x5b")
    check(denied.accepted == 0, f"the server connected to a denied destination "
                                f"({denied.accepted} connection(s))")


def _name_rep(c, version, name, secs):
    """Reply code for a CONNECT to name:80, or TestFailure if none arrives within secs."""
    s = lib.proxy_socket(c.socks, timeout=secs)
    try:
        if version == 5:
            check(lib.socks5_greet(s) == 0, "method 0x00 not accepted")
            s.sendall(lib.socks5_request_bytes(name, 80))
            return lib.socks5_read_reply(s)
        s.sendall(lib.socks4_request_bytes(name, 80))
        return lib.socks4_read_reply(s)
    except TimeoutError:
        raise lib.TestFailure(f"SOCKS{version} to {name}: no reply within {secs}s")
    finally:
        s.close()


def test_socks_dns_failure(env):
    """Names that do not resolve give 0x04 (SOCKS4: 0x5b) promptly; the client keeps serving.
    The server's DNS goes to a fake resolver on loopback (see lib.FakeDNS)."""
    _, c = env.pair()
    ex = env.exchange_server()
    dns = env.fake_dns()
    for version, name in ((5, "nonexistent.invalid"), (4, "nonexistent.invalid"),
                          (5, "no-such-host.example"), (4, "no-such-host.example")):
        t0 = time.monotonic()
        rep = _name_rep(c, version, name, 15)
        want = 0x04 if version == 5 else 0x5B
        check(rep == want, f"SOCKS{version} to {name}: 0x{rep:02x}, want 0x{want:02x}")
        lib.info(f"SOCKS{version} {name}: reply 0x{rep:02x} after {time.monotonic() - t0:.2f}s")
        _good(c, ex, version)
    check(any(q[0] == "no-such-host.example" for q in dns.queries),
          f"the server never asked the fake DNS (queries: {dns.queries[:10]})")
    # a name that resolves through the fake DNS works
    lib.exchange(lib.socks_open(c.socks, "sctpt-test.example", ex.port), None, 8192, 8192, 9)


def test_socks_dns_timeout(env):
    """A resolver that never answers: failure reply within --connect-timeout (+ slack), no hang."""
    _, c = env.pair(server_extra=("--connect-timeout", "3"))
    ex = env.exchange_server()
    t0 = time.monotonic()
    rep = _name_rep(c, 5, "blackhole.example", 20)
    dt = time.monotonic() - t0
    lib.info(f"reply 0x{rep:02x} after {dt:.1f}s")
    check(rep in (0x04, 0x06), f"SOCKS5 to an unanswered name: 0x{rep:02x}, want 0x04 or 0x06")
    check(dt <= 10, f"reply took {dt:.1f}s with --connect-timeout 3")
    _good(c, ex, 1)
