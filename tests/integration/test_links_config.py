"""Share links and config files: keygen --uri prints a link (and --qr a QR code), a client
given only the link moves hashed data, the server logs its own link (and not with
--no-share-link), client and server run from JSON config files with the command line
overriding them, broken files fail with the file, line and key named, and SIGHUP changes
the log level of a running server that keeps serving."""

import json
import os
import re
import signal
import time

import lib
from lib import BIN, LOOP, check

MiB = 1 << 20
LINK_RE = re.compile(r"sctpt://[A-Za-z0-9_-]{64}\?[^\s]+")


def transfer(env, socks_port, seeds=(1, 2)):
    ex = env.exchange_server()
    for seed in seeds:
        lib.exchange(socks_port, ex.addr, MiB, MiB, seed, 60)
    # the target counts an exchange once its side finished, which may be just after ours
    lib.wait_until(lambda: ex.ok == len(seeds), 10,
                   f"{len(seeds)} exchanges completed at the target (errors {ex.errors})")


def spawn_server(env, argv, name="server", wait="listening on udp://"):
    p = env.spawn(name, [BIN, "server"] + argv)
    check(p.wait_log(wait, 15), f"{name} did not log {wait!r}: {p.tail(10)}")
    return p


def spawn_client(env, argv, socks_port, name="client"):
    p = env.spawn(name, [BIN, "client"] + argv)
    check(p.wait_log("SOCKS listening on", 15), f"{name} did not start: {p.tail(10)}")
    lib.wait_until(lambda: lib.tcp_port_open(socks_port), 10, f"{name} SOCKS port")
    check(p.wait_log("association up", 20), f"{name}: no association: {p.tail(10)}")
    return p


@lib.timeout(90)
def test_keygen_link_client_transfer(env):
    """keygen --show --uri (UDP and an IPv6 TCP path, a name) prints one link holding the
    cert; a client started with only that link (and a SOCKS port) moves hashed data."""
    port = lib.free_port(udp=True)
    rc, out, err = lib.run_cmd([BIN, "keygen", "--key", env.key_path, "--show",
                                "--uri", f"udp://{LOOP}:{port}", "--uri", "tcp://[::1]:9",
                                "--name", "test bridge \u2713"], 10)
    check(rc == 0, f"keygen --uri exited {rc}: {err!r}")
    links = LINK_RE.findall(out)
    check(len(links) == 1, f"want one link in keygen's output: {out!r}")
    link = links[0]
    cert_url = env.cert.replace("+", "-").replace("/", "_")
    check(link.startswith(f"sctpt://{cert_url}?udp={LOOP}:{port}&tcp=[::1]:9#"),
          f"unexpected link {link!r}")
    check(link.endswith("#test%20bridge%20%E2%9C%93"), f"name not percent-encoded: {link!r}")
    spawn_server(env, ["--listen", f"udp://{LOOP}:{port}", "--key", env.key_path, "--proxy",
                       "--allow", "127.0.0.0/8"])
    socks = lib.free_port()
    c = spawn_client(env, [link, "--socks", f"{LOOP}:{socks}"], socks)
    check("test bridge" in c.log_text(), "the client did not log the link's name")
    transfer(env, socks)
    # A link that is one byte wrong is refused with a reason, before anything starts.
    rc, _, err = lib.run_cmd([BIN, "client", link.replace("?udp=", "?udpx="), "--socks",
                              f"{LOOP}:{lib.free_port()}"], 10)
    check(rc == 2 and "bad link: unknown parameter" in err, f"rc {rc}, stderr {err!r}")


@lib.timeout(30)
def test_keygen_qr(env):
    """--qr prints the link and a QR code of Unicode blocks, or, in a build without
    libqrencode, says so and exits non-zero.  --qr without --uri is a usage error."""
    rc, out, err = lib.run_cmd([BIN, "keygen", "--key", env.key_path, "--show", "--uri",
                                f"udp://{LOOP}:4433", "--qr"], 10)
    if rc != 0:
        check("libqrencode" in err, f"--qr failed without naming libqrencode: {err!r}")
        lib.info("built without libqrencode: --qr reports it")
    else:
        lines = out.splitlines()
        check(LINK_RE.fullmatch(lines[1]) is not None, f"no link before the QR code: {out!r}")
        qr = lines[2:]
        check(len(qr) >= 12, f"QR code too short: {len(qr)} lines")
        width = {len(ln) for ln in qr}
        check(len(width) == 1 and width.pop() >= 25, "QR lines of unequal or small width")
        check(all(set(ln) <= set(" \u2580\u2584\u2588") for ln in qr),
              "QR code has characters other than half blocks")
        check(any("\u2584" in ln or "\u2580" in ln for ln in qr), "QR code has no modules")
    rc, _, err = lib.run_cmd([BIN, "keygen", "--key", env.key_path, "--show", "--qr"], 10)
    check(rc == 2 and "need --uri" in err, f"--qr without --uri: rc {rc}, {err!r}")


@lib.timeout(90)
def test_server_prints_link(env):
    """The server logs a share link for its concrete listen addresses at start, with a
    keygen hint for a wildcard one; a client given that link works; --no-share-link keeps
    the link (a credential) out of the log."""
    port, tport = lib.free_port(udp=True), lib.free_port()
    s = spawn_server(env, ["--listen", f"udp://{LOOP}:{port}", "--listen",
                           f"tcp://0.0.0.0:{tport}", "--key", env.key_path, "--proxy",
                           "--allow", "127.0.0.0/8"], wait="share link")
    check(s.wait_log("for a share link with the public address", 5), "no wildcard hint")
    links = LINK_RE.findall(s.log_text())
    check(len(links) == 1, f"want one link in the server log: {s.tail(10)}")
    check(links[0].endswith(f"?udp={LOOP}:{port}"), f"link {links[0]!r}")
    check(f"--uri tcp://PUBLIC_IP:{tport}" in s.log_text(), "hint lacks the TCP port")
    socks = lib.free_port()
    spawn_client(env, [links[0], "--socks", f"{LOOP}:{socks}"], socks)
    transfer(env, socks, seeds=(3,))
    s2 = spawn_server(env, ["--listen", f"udp://{LOOP}:{lib.free_port(udp=True)}", "--key",
                            env.key_path, "--proxy", "--no-share-link"], name="server2")
    time.sleep(0.5)
    check("sctpt://" not in s2.log_text(), "--no-share-link still logged the link")


def write_json(env, name, obj):
    path = os.path.join(env.dir, name)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
    return path


@lib.timeout(90)
def test_config_files(env):
    """Server and client run from JSON files (lists, numbers, booleans); a command-line
    option replaces the file's key (the client listens on the command line's port)."""
    port = lib.free_port(udp=True)
    scfg = write_json(env, "server.json", {
        "listen": [f"udp://{LOOP}:{port}"], "key": env.key_path, "proxy": True,
        "allow": ["127.0.0.0/8", "::1/128"], "max-conns": 64, "no-share-link": True})
    s = spawn_server(env, ["-c", scfg])
    check("sctpt://" not in s.log_text(), "no-share-link: true in the file was ignored")
    file_socks, cmd_socks = lib.free_port(), lib.free_port()
    ccfg = write_json(env, "client.json", {
        "server": [f"udp://{LOOP}:{port}"], "cert": env.cert,
        "socks": f"{LOOP}:{file_socks}", "max-conns": 32, "open-timeout": 5,
        "no-http": False})
    c = spawn_client(env, ["--config", ccfg, "--socks", f"{LOOP}:{cmd_socks}"], cmd_socks)
    check(f"SOCKS listening on {LOOP}:{cmd_socks}" in c.log_text(),
          "the command line's --socks did not override the file")
    check(not lib.tcp_port_open(file_socks), "the file's socks port is open too")
    transfer(env, cmd_socks, seeds=(4,))
    # A link on the command line replaces the file's link, cert and servers.
    _, other_cert = env.new_identity("other")
    rc, out, err = lib.run_cmd([BIN, "keygen", "--key", env.key_path, "--show", "--uri",
                                f"udp://{LOOP}:{port}"], 10)
    link = LINK_RE.findall(out)[0]
    socks2 = lib.free_port()
    ccfg2 = write_json(env, "client2.json", {
        "server": [f"udp://{LOOP}:1"], "cert": other_cert, "socks": f"{LOOP}:{socks2}"})
    spawn_client(env, ["-c", ccfg2, link], socks2, name="client2")
    transfer(env, socks2, seeds=(8,))


@lib.timeout(60)
def test_config_errors(env):
    """Broken JSON, an unknown key, a wrong type, a list for a single option, a bad value
    and a missing file: each exits 2 without starting, naming the file, line and key."""
    key = env.key_path
    cases = [
        ("broken.json", '{\n  "listen": "udp://127.0.0.1:1",\n  "proxy": true,,\n}\n',
         r"broken\.json:3:\d+: "),
        ("unknown.json", '{\n  "key": "%s",\n  "listn": "udp://127.0.0.1:1"\n}\n' % key,
         r'unknown\.json:3: key "listn": unknown key'),
        ("type.json", '{\n  "key": "%s",\n\n  "proxy": "yes"\n}\n' % key,
         r'type\.json:4: key "proxy": wrong type'),
        ("list.json", '{\n  "key": "%s",\n  "target": ["a:1", "b:2"]\n}\n' % key,
         r'list\.json:3: key "target": wrong type'),
        ("value.json", '{\n  "key": "%s",\n  "listen": "udp://127.0.0.1:1",\n  "proxy": true,'
         '\n  "max-clients": 0\n}\n' % key, r'value\.json:5, key "max-clients"'),
        ("array.json", '["--proxy"]\n', r"array\.json: the file must hold one JSON object"),
        ("dup.json", '{\n  "proxy": true,\n  "proxy": false\n}\n', r"dup\.json:\d+:\d+: .*dup"),
    ]
    for name, text, want in cases:
        path = os.path.join(env.dir, name)
        with open(path, "w") as f:
            f.write(text)
        rc, _, err = lib.run_cmd([BIN, "server", "-c", path], 10)
        check(rc == 2, f"{name}: exit {rc}, want 2 ({err!r})")
        check(re.search(want, err) is not None, f"{name}: stderr {err!r} lacks /{want}/")
    rc, _, err = lib.run_cmd([BIN, "client", "-c", os.path.join(env.dir, "none.json")], 10)
    check(rc == 2 and "cannot open config file" in err, f"missing file: rc {rc}, {err!r}")


@lib.timeout(90)
def test_sighup_log_level(env):
    """SIGHUP re-reads the file: verbose 0 -> 2 turns on debug lines (logged as a change),
    an edited restart-only key is reported as such, a broken file changes nothing, and the
    server keeps serving throughout."""
    port = lib.free_port(udp=True)
    conf = {"listen": [f"udp://{LOOP}:{port}"], "key": env.key_path, "proxy": True,
            "allow": ["127.0.0.0/8"]}
    scfg = write_json(env, "server.json", conf)
    s = spawn_server(env, ["-c", scfg])
    socks = lib.free_port()
    spawn_client(env, ["--server", f"udp://{LOOP}:{port}", "--cert", env.cert, "--socks",
                       f"{LOOP}:{socks}"], socks)
    transfer(env, socks, seeds=(5,))
    check("[debug]" not in s.log_text(), "debug lines before the reload")
    write_json(env, "server.json", dict(conf, verbose=2, **{"max-conns": 10}))
    mark = len(s.log_text())
    s.signal(signal.SIGHUP)
    check(s.wait_log("reload: log level notice -> debug", 10, mark), f"no change: {s.tail(5)}")
    check(s.wait_log('"max-conns" changed', 5, mark), "restart-only change not reported")
    transfer(env, socks, seeds=(6,))
    check(s.wait_log("[debug]", 10, mark), "no debug lines after the reload")
    with open(scfg, "w") as f:
        f.write("{ broken")
    mark = len(s.log_text())
    s.signal(signal.SIGHUP)
    check(s.wait_log("not reloaded", 10, mark), f"broken file not reported: {s.tail(5)}")
    check(s.alive(), "the server died on a broken reload")
    transfer(env, socks, seeds=(7,))
