"""Process lifecycle: SIGTERM handling and the command line."""

import os
import re
import signal
import stat
import time
from pathlib import Path

import lib
from lib import BIN, LOOP, check


def _term(p, what):
    t0 = time.monotonic()
    p.signal(signal.SIGTERM)
    rc = p.wait_exit(5)
    check(rc is not None, f"{what} did not exit within 5s of SIGTERM")
    lib.info(f"{what} exited {time.monotonic() - t0:.2f}s after SIGTERM")
    check(rc == 0, f"{what} exited with status {rc} after SIGTERM, want 0")


def test_graceful_shutdown_client_first(env):
    srv, c = env.pair()
    ex = env.exchange_server()
    lib.exchange(c.socks, ex.addr, 65536, 65536, 1)
    idle = lib.socks_open(c.socks, LOOP, ex.port)   # an open stream during shutdown
    try:
        _term(c, "client")
        _term(srv, "server")
    finally:
        idle.close()


def test_graceful_shutdown_server_first(env):
    srv, c = env.pair()
    ex = env.exchange_server()
    idle = lib.socks_open(c.socks, LOOP, ex.port)
    try:
        _term(srv, "server")
        check(c.alive(), "client exited when the server shut down")
        _term(c, "client")
    finally:
        idle.close()


def test_cli_help(env):
    for sub, opts in (("server", ("--listen", "--key", "--target", "--proxy", "--allow",
                                  "--max-clients", "--max-conns", "--connect-timeout", "--pad",
                                  "--pad-handshake")),
                      ("client", ("--server", "--cert", "--socks", "--max-conns", "--open-timeout",
                                  "--handshake-timeout", "--pad")),
                      ("keygen", ("--key", "--force", "--show"))):
        rc, out, err = lib.run_cmd([BIN, sub, "--help"])
        check(rc == 0, f"sctpt {sub} --help exited {rc}")
        missing = [o for o in opts if o not in out + err]
        check(not missing, f"sctpt {sub} --help does not mention {missing}")
    rc, out, err = lib.run_cmd([BIN, "help"])
    check(rc == 0 and "keygen" in out + err, f"sctpt help exited {rc} or does not mention keygen")


def test_cli_bad_args(env):
    up, tp = lib.free_port(udp=True), lib.free_port()
    listen = f"udp://{LOOP}:{up}"
    key, cert = env.key_path, env.cert
    Path(env.dir, "empty.key").write_text("")
    Path(env.dir, "junk.key").write_text("private-key AAAA\nbridge-secret !!!!\n")
    os.chmod(Path(env.dir, "empty.key"), 0o600)
    os.chmod(Path(env.dir, "junk.key"), 0o600)
    srv = ["server", "--listen", listen, "--key", key]
    cli = ["client", "--server", listen, "--cert", cert]
    cases = [
        [],
        ["no-such-command"],
        srv + ["--target", f"{LOOP}:{tp}", "--bogus"],
        ["server", "--listen", "udp://x", "--key", key, "--target", f"{LOOP}:{tp}"],
        srv,
        ["server", "--key", key, "--target", f"{LOOP}:{tp}"],
        srv + ["--target", LOOP],
        srv + ["--proxy", "--allow", "not-a-cidr"],
        srv + ["--target", f"{LOOP}:{tp}", "--pad", "9:3"],
        srv + ["--target", f"{LOOP}:{tp}", "--pad-handshake", "lots"],
        # the identity key
        ["server", "--listen", listen, "--target", f"{LOOP}:{tp}"],
        ["server", "--listen", listen, "--key", os.path.join(env.dir, "no-such.key"),
         "--target", f"{LOOP}:{tp}"],
        ["server", "--listen", listen, "--key", os.path.join(env.dir, "empty.key"),
         "--target", f"{LOOP}:{tp}"],
        ["server", "--listen", listen, "--key", os.path.join(env.dir, "junk.key"),
         "--target", f"{LOOP}:{tp}"],
        cli + ["--socks", f"{LOOP}:{tp}", "--bogus"],
        ["client", "--server", "udp://x", "--cert", cert, "--socks", f"{LOOP}:{tp}"],
        ["client", "--cert", cert, "--socks", f"{LOOP}:{tp}"],
        cli + ["--socks", f"{LOOP}:{tp}", "--max-conns", "lots"],
        cli + ["--socks", f"{LOOP}:{tp}", "--handshake-timeout", "0"],
        # the cert
        ["client", "--server", listen, "--socks", f"{LOOP}:{tp}"],
        ["client", "--server", listen, "--cert", cert[:-1], "--socks", f"{LOOP}:{tp}"],
        ["client", "--server", listen, "--cert", cert + "A", "--socks", f"{LOOP}:{tp}"],
        ["client", "--server", listen, "--cert", cert[:-1] + "!", "--socks", f"{LOOP}:{tp}"],
        ["client", "--server", listen, "--cert", "cert=", "--socks", f"{LOOP}:{tp}"],
        ["client", "--server", listen, "--cert", "", "--socks", f"{LOOP}:{tp}"],
        ["client", "--server", listen, "--cert", "cert=" + cert[:40], "--socks", f"{LOOP}:{tp}"],
        # keygen
        ["keygen"],
        ["keygen", "--force"],
        ["keygen", "--key", key],                       # exists, no --force
        ["keygen", "--key", key, "--force", "--show"],
        ["keygen", "--key", os.path.join(env.dir, "no-such.key"), "--show"],
        ["keygen", "--key", os.path.join(env.dir, "no-such-dir", "x.key")],
        ["keygen", "--key", os.path.join(env.dir, "k2.key"), "extra-arg"],
    ]
    bad = []
    for args in cases:
        rc, out, err = lib.run_cmd([BIN] + args)
        if rc <= 0 or not err.strip():
            bad.append(f"{' '.join(args) or '(no args)'} -> rc={rc}, stderr={err.strip()[:80]!r}")
    check(not bad, "bad command lines not rejected with a message: " + "; ".join(bad))
    rc, out, _ = lib.run_cmd([BIN, "keygen", "--key", key, "--show"])
    check(rc == 0 and out.strip() == f"cert={cert}",
          f"the refused keygen runs changed the key: --show gives {out.strip()!r}, rc={rc}")


def test_cli_keygen(env):
    """keygen: mode 0600, cert= format, --show, --force; the client takes cert with or without
    the cert= prefix; a server restarted with a new key is not reachable with the old cert."""
    path, cert = env.key_path, env.cert
    st = os.stat(path)
    check(stat.S_IMODE(st.st_mode) == 0o600, f"key file mode {oct(stat.S_IMODE(st.st_mode))}, want 0600")
    check(cert not in Path(path).read_text(), "the key file contains the cert= value verbatim")
    rc, out, _ = lib.run_cmd([BIN, "keygen", "--key", path, "--show"])
    check(rc == 0 and out.strip() == f"cert={cert}", f"--show printed {out.strip()!r}, want cert={cert}")
    _, other = env.new_identity("other")
    check(other != cert, "two keygen runs gave the same cert")
    # both spellings of the cert work
    srv = env.start_server(proxy=True, allow=("127.0.0.0/8",))
    ex = env.exchange_server()
    for i, spelled in enumerate((cert, "cert=" + cert)):
        c = env.start_client(srv.port, cert=spelled, name=f"client{i}", wait_assoc=False)
        check(c.wait_log("association up", 20), f"no association with --cert {spelled[:10]}...")
        lib.exchange(c.socks, ex.addr, 4096, 4096, i)
        c.kill()
    # --force replaces the key: the old cert is then useless
    rc, out, err = lib.run_cmd([BIN, "keygen", "--key", path, "--force"])
    m = re.search(r"^cert=(\S+)$", out, re.M)
    check(rc == 0 and m and m.group(1) != cert, f"keygen --force: rc={rc}, out={out!r}")
    check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, "key file not 0600 after --force")
    _term(srv, "server")
    srv2 = env.start_server(proxy=True, allow=("127.0.0.0/8",), port=srv.port, name="server2")
    c = env.start_client(srv2.port, cert=m.group(1), name="client-new")
    check(c.wait_log("association up", 1), "no association with the new cert")
    old = env.start_client(srv2.port, cert=cert, name="client-old", wait_assoc=False,
                           extra=("--handshake-timeout", "2"))
    check(old.wait_log("no answer from server", 10), "client with the old cert did not report "
                                                     "'no answer from server' within 10s")
    check("association up" not in old.log_text(), "client with the old cert got an association")
