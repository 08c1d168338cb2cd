"""sctpt as a Tor pluggable transport, with a real tor (Debian tor 0.4.9) on both sides.

Each test runs in its own network namespace with only lo (torlib.enter_private_netns), so no
tor can reach a directory authority or anything else outside.  SCTPT_TOR_PT=obfs4 runs the
sctp tests with obfs4proxy instead (a check of the harness itself).
"""

import os
import re
import signal
import time

import lib
import torlib
from lib import check, info


def _bridge_client(env, transport):
    torlib.setup(env)
    t0 = time.monotonic()
    with torlib.diagnose(env):
        bridge = torlib.start_bridge(env, transport)
        t_bridge = time.monotonic() - t0
        client = torlib.start_client(env, transport, bridge.bridge_line)
        m = client.wait_notice(torlib.FRESH_DESC, 60)
        t_desc = time.monotonic() - t0
        check(m.group(1) == bridge.name,
              f"client got a descriptor for {m.group(1)!r}, want {bridge.name!r}")
        check(bridge.fingerprint in client.notice.text()[m.start():m.start() + 300],
              "client's 'new bridge descriptor' line does not name the bridge's fingerprint")
        ext = torlib.check_extorport(bridge, transport.name)
        info(f"bridge ExtORPort: {ext[1][:120]} ... {ext[3]}")
        # Both PTs must have configured with tor (no "PT failed" noise, no early exit).
        for t in (bridge, client):
            errs, warns = t.pt_trouble()
            check(not errs, f"{t.name}: managed proxy trouble: {errs[:3]}")
            if warns:
                info(f"{t.name}: managed proxy warnings: {warns[:3]}")
            for mark in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
                hit = [ln for ln in t.pt_stderr() if mark in ln]
                check(not hit, f"{t.name}: PT stderr: {hit[:1]}")
        info(f"{transport.name}: bridge ready {t_bridge:.1f}s, client has fresh bridge "
             f"descriptor {t_desc:.1f}s after start")
        # as tor is usually stopped: the client with SIGTERM, the bridge with SIGINT (a relay
        # then waits ShutdownWaitLength, 0 here)
        torlib.stop_all_and_check_pts(env, [client, bridge], transport,
                                      sigs={bridge.name: signal.SIGINT})


@lib.timeout(120)
def test_tor_bridge_client(env):
    """A tor bridge and a tor client on loopback with sctpt as the managed transport on both
    sides: the client gets the bridge's descriptor through sctpt, the connection reaches the
    bridge through the Extended ORPort as transport "sctp", and after tor stops no sctpt
    process of this test is left."""
    _bridge_client(env, torlib.transport_from_env("sctp"))


@lib.timeout(60)
def test_tor_obfs4_baseline(env):
    """The same with obfs4proxy: the harness works independently of sctpt."""
    check(os.access(torlib.OBFS4PROXY, os.X_OK), "obfs4proxy not installed")
    _bridge_client(env, torlib.obfs4())


@lib.timeout(240)
def test_tor_private_network(env):
    """A private Tor network (3 authorities, 3 relays, one an exit), a bridge with sctpt and a
    client using it: the client bootstraps to 100% and fetches a page from a local web server
    through Tor; the circuit starts at the bridge."""
    transport = torlib.transport_from_env("sctp")
    torlib.setup(env)
    t0 = time.monotonic()
    with torlib.diagnose(env):
        net = torlib.TorNetwork(env, n_auth=3, n_relays=3, n_exits=1)
        t_keys = time.monotonic() - t0
        net.start()
        net.wait_ready(120)
        t_net = time.monotonic() - t0
        info(f"network: keys {t_keys:.1f}s, 3 authorities + 3 relays bootstrapped "
             f"{t_net:.1f}s after start")

        bridge = torlib.start_bridge(env, transport, net=net)
        bridge.wait_bootstrapped(60)
        t_bridge = time.monotonic() - t0
        client = torlib.start_client(env, transport, bridge.bridge_line, net=net)
        client.wait_notice(torlib.FRESH_DESC, 60)
        client.wait_bootstrapped(90)
        t_client = time.monotonic() - t0
        info(f"bridge bootstrapped {t_bridge:.1f}s, client bootstrapped {t_client:.1f}s "
             f"after start")
        torlib.check_extorport(bridge, transport.name)

        web = env.add(torlib.PageServer(n=300 * 1024))
        out = os.path.join(env.dir, "page.bin")
        tries = []
        for _ in range(4):
            rc, err, meta = torlib.curl_socks(client.socks, web.url, out, secs=45)
            tries.append((rc, err[-160:], meta))
            if rc == 0:
                break
            time.sleep(2)
        check(rc == 0, f"curl through tor failed: {tries}")
        code, size, secs = meta.split()
        check(code == "200", f"HTTP status {code}")
        got = torlib.file_sha256(out)
        check(got == web.sha256, f"page through tor: {size} bytes, sha256 {got}, "
                                 f"want {len(web.body)} bytes {web.sha256}")
        t_fetch = time.monotonic() - t0
        info(f"fetched {size} bytes through tor in {float(secs):.2f}s (sha256 ok, "
             f"{len(tries)} attempt(s)); {t_fetch:.1f}s after start")

        # A general-purpose circuit bridge -> ... -> exit was built (the page went through the
        # PT), and the exit opened the connection to the web server.
        exit_fps = {e.fingerprint for e in net.exits}
        paths = []
        for c in client.control("GETINFO circuit-status")[0]:
            f = c.split()
            if len(f) > 2 and f[1] == "BUILT" and "PURPOSE=GENERAL" in c:
                paths.append([h[1:41] for h in f[2].split(",")])
        full = [p for p in paths if len(p) >= 3 and p[0] == bridge.fingerprint
                and p[-1] in exit_fps]
        check(full, f"no built circuit bridge ${bridge.fingerprint} -> ... -> exit {exit_fps}: "
                    f"{paths[:6]}")
        info(f"client circuit: {' -> '.join(full[0])}")
        rx = rf"Exit connection \(connecting\) to 127\.0\.0\.1:{web.port} established"
        check(any(re.search(rx, e.log.text()) for e in net.exits),
              f"no exit logged /{rx}/")
        # as tor is usually stopped: the client with SIGTERM, the bridge with SIGINT (a relay
        # then waits ShutdownWaitLength, 0 here)
        torlib.stop_all_and_check_pts(env, [client, bridge], transport,
                                      sigs={bridge.name: signal.SIGINT})
        for t in net.relays + net.auths:
            t.stop()
        for t in net.relays + net.auths:
            t.wait_exit_or_kill(15)
        info(f"whole test {time.monotonic() - t0:.1f}s")
