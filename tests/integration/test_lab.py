"""`sctpt-lab send`, `recv` and `controller`: the CLI tools on their own (patterns, files,
stdin, rpc, hostile peers and API calls), the controller driving send -> sctpt client ->
impair (datagram mode) -> sctpt server -> recv through its REST API (hashes, impair's
counters, a scenario run with its reports, an aborted run that restores impair, state kept
across a restart), the dashboard in Debian's headless Chromium driven by playwright-core
(tests/browser/dashboard.mjs), and the controller's testbeds (sctpt, ssh -D, shadowsocks
side by side in two namespaces it builds and removes itself).

The lab binary is SCTPT_LAB_BIN, by default sctpt-lab next to SCTPT_BIN.  SCTPT_LAB_SCREENSHOT
names where the browser test saves its screenshot (default: the test's directory; the one in
docs/lab-dashboard.png was made with SCTPT_LAB_SCREENSHOT=docs/lab-dashboard.png);
SCTPT_LAB_SBS_SCREENSHOT, where it saves the Runs section after the Side by side panel's
comparison (docs/lab-side-by-side.png)."""

import contextlib
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import lib
from lib import LOOP, check
from test_impair import Impair, check_invariants, sctpt_through

LAB_BIN = os.environ.get("SCTPT_LAB_BIN") or os.path.join(os.path.dirname(lib.BIN), "sctpt-lab")
WEB = lib.ROOT / "src" / "lab" / "web"
MiB = 1 << 20


# ---------------------------------------------------------------- helpers

def call(port, method, path, body=None, raw=None, headers=None, timeout=10):
    """(status, parsed JSON or text) from a lab API on LOOP:port."""
    conn = http.client.HTTPConnection(LOOP, port, timeout=timeout)
    try:
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        h = {"Content-Type": "application/json"} if data is not None else {}
        h.update(headers or {})
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        text = r.read()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text.decode(errors="replace")
    finally:
        conn.close()


class Tool:
    """One sctpt-lab send/recv/controller process with an API port."""

    def __init__(self, env, tool, args, name=None):
        self.api = lib.free_port()
        self.url = f"http://{LOOP}:{self.api}"
        self.proc = env.spawn(name or tool, [LAB_BIN, tool] + list(args) +
                              ["--" + ("listen" if tool == "controller" else "api"),
                               f"{LOOP}:{self.api}"])
        check(self.proc.wait_log("ready", 15), f"{name or tool} did not get ready")

    def call(self, method, path, body=None, **kw):
        return call(self.api, method, path, body, **kw)


def start_recv(env, *extra, name="recv"):
    port = lib.free_port()
    r = Tool(env, "recv", ["--listen", f"{LOOP}:{port}", "-q"] + list(extra), name=name)
    r.port = port
    return r


def run_lab(args, secs=60, stdin=None):
    p = subprocess.run([LAB_BIN] + args, input=stdin, capture_output=True, timeout=secs)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def register(ctl, nid, kind, url):
    st, body = ctl.call("POST", "/api/nodes", {"id": nid, "kind": kind, "url": url})
    check(st == 201, f"register {nid}: {st} {body}")


def node_last(ctl, nid):
    st, body = ctl.call("GET", f"/api/nodes/{nid}")
    check(st == 200, f"node {nid}: {st} {body}")
    return body.get("last") or {}


def wait_run(ctl, rid, secs):
    def done():
        st, body = ctl.call("GET", f"/api/runs/{rid}")
        return body if st == 200 and body["state"] in ("done", "failed", "aborted") else None
    return lib.wait_until(done, secs, f"run {rid} to end", interval=0.3)


# ---------------------------------------------------------------- the CLI tools

@lib.timeout(60)
def test_lab_send_recv_cli_and_hostile_input(env):
    """send/recv on their own: 4 pattern streams verified, a file and stdin with SHA-256, rpc
    with latency percentiles, --json summaries; bad arguments exit 2; a peer sending garbage
    and abusive API calls are refused while recv keeps serving."""
    r = start_recv(env)
    to = f"{LOOP}:{r.port}"
    rc, out, err = run_lab(["send", "--to", to, "--streams", "4", "--size", "3MiB", "--json"])
    check(rc == 0, f"send exited {rc}: {err[-500:]}")
    s = json.loads(out)
    check(s["streams_ok"] == 4 and s["bytes"] == 4 * 3 * MiB and s["state"] == "done",
          f"pattern transfer: {s}")
    # A file, and the same bytes on stdin (a pipe): recv logs the SHA-256, send checks it.
    path = os.path.join(env.dir, "blob")
    data = os.urandom(700 * 1024 + 13)
    with open(path, "wb") as f:
        f.write(data)
    want = hashlib.sha256(data).hexdigest()
    rc, out, err = run_lab(["send", "--to", to, "--file", path])
    check(rc == 0 and f"sha256 {want} verified" in err, f"file: {rc} {err[-400:]}")
    rc, out, err = run_lab(["send", "--to", to, "--file", "-"], stdin=data)
    check(rc == 0 and f"sha256 {want} verified" in err, f"stdin: {rc} {err[-400:]}")
    st, stats = r.call("GET", "/stats")
    check(st == 200 and any(x.get("sha256") == want for x in stats["finished"]),
          f"recv did not report the file's hash: {stats['finished'][-2:]}")
    # rpc: request/response latency.
    rc, out, err = run_lab(["send", "--to", to, "--rpc", "100:1000", "--rpc-count", "300",
                            "--streams", "2", "--json"])
    s = json.loads(out)
    check(rc == 0 and s["rpc"]["count"] == 600 and 0 < s["rpc"]["p50_ms"] <= s["rpc"]["p99_ms"],
          f"rpc: {rc} {s.get('rpc')}")
    # The processing delay, changed at run time, slows a transfer down.
    st, body = r.call("PUT", "/settings", {"delay_ms": 20})
    check(st == 200 and body["delay_ms"] == 20, f"delay: {st} {body}")
    t0 = time.monotonic()
    rc, out, err = run_lab(["send", "--to", to, "--size", "512KiB", "-q"])
    slow = time.monotonic() - t0
    check(rc == 0 and slow > 0.12, f"20 ms per 64 KiB read should take > 0.16 s, took {slow:.2f}")
    r.call("PUT", "/settings", {"delay_ms": 0})
    # Bad arguments: usage errors, exit 2, no hang.
    for args in (["send"], ["send", "--to", to, "--streams", "0", "--size", "1"],
                 ["send", "--to", to, "--size", "1Q"], ["send", "--to", to],
                 ["send", "--to", to, "--file", "/nonexistent"],
                 ["send", "--to", to, "--rpc", "0"], ["send", "--to", to, "--idle", "--size", "1"],
                 ["send", "--to", "name.example:1", "--size", "1"],
                 ["recv"], ["recv", "--listen", "127.0.0.1:1", "--delay", "60001"],
                 ["recv", "--listen", "x:y"], ["controller"],
                 ["controller", "--listen", "0.0.0.0:0"], ["controller", "--listen", "127.0.0.1:1",
                                                           "--poll", "5"]):
        rc, out, err = run_lab(args, secs=10)
        check(rc in (1, 2) and ("Usage" in err or "sctpt-lab" in err or "controller" in err),
              f"{args}: exit {rc}, {err[-200:]}")
    # A peer that is not send: garbage, an idle connection, a half header.
    before = r.call("GET", "/stats")[1]
    for payload in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"A" * 100, b"\x00" * 40,
                    b"SLB1" + b"\xff" * 36):
        with socket.create_connection((LOOP, r.port), timeout=5) as sock:
            sock.sendall(payload)
            sock.settimeout(5)
            try:
                check(sock.recv(100) == b"", "recv answered garbage")
            except ConnectionResetError:
                pass
    after = r.call("GET", "/stats")[1]
    check(after["garbage"] == before["garbage"] + 3, f"garbage not counted: {after['garbage']}")
    # API abuse.
    for method, path, kw, want in (
            ("PUT", "/settings", {"raw": "{"}, 400),
            ("PUT", "/settings", {"body": {"delay_ms": -1}}, 400),
            ("PUT", "/settings", {"body": {"delay_ms": 1, "x": 2}}, 400),
            ("PUT", "/settings", {"body": {"delay_ms": "5"}}, 400),
            ("PUT", "/settings", {"raw": '{"delay_ms":1,"delay_ms":2}'}, 400),
            ("PUT", "/settings", {"raw": '{"delay_ms":1}',
                                  "headers": {"Content-Type": "text/plain"}}, 415),
            ("PUT", "/settings", {"raw": "x" * 70000}, 413),
            ("GET", "/stats", {"headers": {"Host": "evil.example"}}, 403),
            ("GET", "/stats", {"headers": {"Origin": "http://evil.example"}}, 403),
            ("DELETE", "/stats", {}, 405),
            ("GET", "/../etc/passwd", {}, 404)):
        st, body = r.call(method, path, **kw)
        check(st == want, f"{method} {path} {kw}: {st} (want {want}) {body}")
    check(r.call("GET", "/settings")[1]["delay_ms"] == 0, "a refused request changed recv")
    # A hostile "recv" (garbage for a trailer, or an early close) and a SOCKS proxy that
    # refuses or speaks garbage: send fails those streams with a reason, and exits 1.
    def fake(reply, socks=False):
        srv = socket.socket()
        srv.bind((LOOP, 0))
        srv.listen(4)

        def serve():
            with contextlib.suppress(OSError):
                c, _ = srv.accept()
                with c:
                    c.settimeout(5)
                    if socks:
                        c.recv(3)
                        c.sendall(b"\x05\x00")
                        c.recv(300)
                    else:
                        lib.recv_exact(c, 40)
                    c.sendall(reply)
                    with contextlib.suppress(OSError):
                        c.recv(1 << 20)
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        return srv
    for reply, socks, args, want in (
            (b"X" * 56, False, ["--size", "1000"], "garbage"),
            (b"", False, ["--rpc", "10", "--rpc-count", "3"], "closed"),
            (b"\x05\x05\x00\x01" + b"\x00" * 6, True, ["--size", "10"], "refused"),
            (b"HTTP/1.1 400 Bad\r\n\r\n", True, ["--size", "10"], "SOCKS")):
        srv = fake(reply, socks)
        port = srv.getsockname()[1]
        extra = ["--socks", f"{LOOP}:{port}", "--to", to] if socks else ["--to", f"{LOOP}:{port}"]
        rc, out, err = run_lab(["send", "--timeout", "5", "-q"] + extra + args, secs=20)
        srv.close()
        check(rc == 1 and want in err, f"hostile peer {reply[:8]!r}: exit {rc}, {err[-300:]}")

    # send's API: bad starts are refused, one transfer at a time, stop works.
    snd = Tool(env, "send", ["--to", to, "--idle", "-q"])
    for body, want in (({"action": "go"}, 400), ({"streams": 2}, 400),
                       ({"action": "start"}, 400),          # no size nor duration
                       ({"action": "start", "streams": 5000, "bytes": 1}, 400),
                       ({"action": "start", "bytes": -1}, 400),
                       ({"action": "start", "bytes": 1, "socks": "name.example:1"}, 400),
                       ({"action": "start", "mode": "rpc", "rpc_req": 0, "rpc_count": 1}, 400),
                       ({"action": "start", "bytes": 1, "extra": 1}, 400)):
        st, b = snd.call("PUT", "/settings", body)
        check(st == want, f"send {body}: {st} (want {want}) {b}")
    st, b = snd.call("PUT", "/settings", {"action": "start", "duration_s": 30, "streams": 2})
    check(st == 200 and b["state"] == "running", f"start: {st} {b}")
    st, b = snd.call("PUT", "/settings", {"action": "start", "bytes": 10})
    check(st == 409, f"a second start: {st} {b}")
    time.sleep(0.5)
    st, b = snd.call("PUT", "/settings", {"action": "stop"})
    check(st == 200 and b["state"] == "stopped", f"stop: {st} {b}")
    st, b = snd.call("PUT", "/settings", {"action": "start", "bytes": 100000, "streams": 3})
    lib.wait_until(lambda: snd.call("GET", "/stats")[1]["state"] == "done", 10, "transfer 3")
    rc, out, err = run_lab(["send", "--to", to, "--size", "1MiB", "--streams", "2", "-q"])
    check(rc == 0, "recv stopped serving after the abuse")


# ---------------------------------------------------------------- the controller

def lab_through_sctpt(env, *impair_args, client_extra=()):
    """sctpt server <- impair (UDP) <- sctpt client; recv, send (via the client's SOCKS) and
    a controller with all registered.  Returns (ctl, send, recv, impair, client)."""
    _, imp, cl = sctpt_through(env, "--seed", "11", *impair_args, client_extra=client_extra)
    r = start_recv(env)
    snd = Tool(env, "send", ["--to", f"{LOOP}:{r.port}", "--socks", f"{LOOP}:{cl.socks}",
                             "--idle", "-q"])
    state = os.path.join(env.dir, "state")
    ctl = Tool(env, "controller", ["--state-dir", state, "--poll", "250"])
    ctl.state = state
    register(ctl, "recv", "recv", r.url)
    register(ctl, "imp", "impair", f"http://{LOOP}:{imp.api_port}")
    register(ctl, "send", "send", snd.url)
    return ctl, snd, r, imp, cl


@lib.timeout(100)
def test_lab_controller_drives_transfer_and_scenarios(env):
    """Through the controller's API only: impair set to 2% loss, a bulk transfer of 4 streams
    through sctpt verified end to end (recv's SHA-256s, send's trailers), impair's counters
    consistent; a scenario (loss, blackhole, restore) runs to completion with JSON and CSV
    reports; a stopped run puts impair back; hostile API input is refused; runs survive a
    controller restart."""
    ctl, snd, r, imp, cl = lab_through_sctpt(env)
    lib.wait_until(lambda: all(n["ok"] for n in ctl.call("GET", "/api/nodes")[1]), 10,
                   "all nodes polled")
    # A tolerant scrape: an "sctpt" node whose /stats has other fields still polls fine.
    register(ctl, "metrics", "sctpt", r.url)
    st, body = ctl.call("PUT", "/api/nodes/imp/settings", {"both": {"loss": 0.02, "delay_ms": 5}})
    check(st == 200 and body["c2s"]["loss"] == 0.02, f"impair through the controller: {body}")
    st, body = ctl.call("PUT", "/api/nodes/recv/settings", {"delay_ms": 1})
    check(st == 200 and body["delay_ms"] == 1, f"recv delay: {st} {body}")
    st, body = ctl.call("PUT", "/api/nodes/send/settings",
                        {"action": "start", "streams": 4, "bytes": 2 * MiB})
    check(st == 200, f"start: {st} {body}")
    tr = body["transfer"]
    last = lib.wait_until(lambda: (lambda s: s if s.get("transfer") == tr and
                                   s.get("state") != "running" else None)(node_last(ctl, "send")),
                          60, "the transfer to end")
    check(last["state"] == "done" and last["streams_ok"] == 4, f"transfer: {last}")
    rs = r.call("GET", "/stats")[1]
    fin = [x for x in rs["finished"] if x["bytes"] == 2 * MiB]
    check(len(fin) >= 4 and all(x["status"] == "ok" and len(x["sha256"]) == 64 for x in fin),
          f"recv: {rs['finished'][-4:]}")
    ist = imp.settle()
    check_invariants(ist)
    check(ist["c2s"]["dropped_loss"] > 0 and ist["s2c"]["dropped_loss"] > 0,
          f"no loss injected: {ist}")
    lib.info(f"4 x 2 MiB through sctpt at 2% loss in {last['elapsed_s']:.1f}s, impair c2s lost "
             f"{ist['c2s']['dropped_loss']} of {ist['c2s']['seen']}")
    st, series = ctl.call("GET", "/api/nodes/metrics/series?since=0")
    check(st == 200 and len(series["samples"]) > 0, f"sctpt-kind series: {st}")

    # A scenario: rpc under a loss / blackhole / restore timeline, 2 iterations.
    sc = {"name": "it", "duration_s": 4, "seed": 5, "repeat": 1,
          "workload": {"mode": "rpc", "streams": 2, "rpc_req": 200, "rpc_resp": 2000},
          "timeline": ["at 0s loss 1%", "at 1500ms blackhole c2s", "at 2500ms restore"],
          "variants": [{"name": "sctpt-a", "socks": f"{LOOP}:{cl.socks}"},
                       {"name": "sctpt-b", "socks": f"{LOOP}:{cl.socks}"}]}
    st, body = ctl.call("POST", "/api/scenarios/check", sc)
    check(st == 200 and len(body["timeline"]) == 3, f"check: {st} {body}")
    st, body = ctl.call("POST", "/api/runs", sc)
    check(st == 201, f"run: {st} {body}")
    rid = body["id"]
    st, body = ctl.call("POST", "/api/runs", sc)
    check(st == 409, f"a second run at once: {st} {body}")
    rec = wait_run(ctl, rid, 40)
    check(rec["state"] == "done", f"run ended {rec['state']}: {rec.get('error')} {rec['log'][-4:]}")
    check(len(rec["iterations"]) == 2 and all(i["send"]["rpc"]["count"] > 0 and
                                              i["send"]["streams_failed"] == 0
                                              for i in rec["iterations"]),
          f"iterations: {[(i['send']['streams_ok'], i['send']['errors']) for i in rec['iterations']]}")
    check(rec["versions"]["controller"] and "send" in rec["versions"]["nodes"], "versions")
    evs = [e["text"] for e in rec["iterations"][0]["events"]]
    check(evs == sc["timeline"], f"events applied: {evs}")
    s = imp.call("GET", "/settings")[1]
    check(s["c2s"]["loss"] == 0.02 and s["c2s"]["blackhole"] is False and
          s["c2s"]["delay_ms"] == 5, f"impair not restored after the run: {s['c2s']}")
    st, csv = ctl.call("GET", f"/api/runs/{rid}/report.csv")
    lines = csv.strip().splitlines()
    check(st == 200 and len(lines) == 3 and lines[0].startswith("run,iteration,variant"),
          f"csv: {csv[:300]}")
    st, csv = ctl.call("GET", f"/api/runs/{rid}/report.csv?what=samples")
    check(st == 200 and len(csv.splitlines()) > 5, "samples csv")
    st, rep = ctl.call("GET", f"/api/runs/{rid}/report.json")
    check(st == 200 and rep["id"] == rid, "report.json")

    # A run stopped half-way resets what it set.
    long = dict(sc, duration_s=60, timeline=["at 0s loss 30%, delay 40ms c2s"],
                variants=[{"name": "x", "socks": f"{LOOP}:{cl.socks}"}])
    st, body = ctl.call("POST", "/api/runs", long)
    check(st == 201, f"long run: {st} {body}")
    lib.wait_until(lambda: imp.call("GET", "/settings")[1]["c2s"]["loss"] == 0.3, 10,
                   "the run's loss in impair")
    st, body = ctl.call("POST", f"/api/runs/{body['id']}/stop")
    check(st == 202, f"stop: {st} {body}")
    rec = wait_run(ctl, body["id"], 20)
    s = imp.call("GET", "/settings")[1]
    check(rec["state"] == "aborted" and s["c2s"]["loss"] == 0.02 and s["c2s"]["delay_ms"] == 5,
          f"after stop: {rec['state']} impair {s['c2s']}")
    check(snd.call("GET", "/stats")[1]["state"] == "stopped", "the run did not stop the sender")

    # Hostile input to the controller changes nothing.
    for method, path, kw, want in (
            ("POST", "/api/nodes", {"body": {"id": "x", "kind": "impair",
                                             "url": "http://10.0.0.1:80"}}, 400),
            ("POST", "/api/nodes", {"body": {"id": "x", "kind": "impair",
                                             "url": "http://localhost:80"}}, 400),
            ("POST", "/api/nodes", {"body": {"id": "x", "kind": "router",
                                             "url": "http://127.0.0.1:80"}}, 400),
            ("POST", "/api/nodes", {"body": {"id": "../x", "kind": "send",
                                             "url": "http://127.0.0.1:80"}}, 400),
            ("POST", "/api/nodes", {"body": {"id": "recv", "kind": "recv",
                                             "url": "http://127.0.0.1:80"}}, 409),
            ("POST", "/api/nodes", {"body": {"id": "y", "kind": "recv",
                                             "url": "http://127.0.0.1:80/\r\nX: y"}}, 400),
            ("POST", "/api/runs", {"body": {"duration_s": 5, "timeline": ["at 9s loss 1%"]}}, 400),
            ("POST", "/api/runs", {"body": {"duration_s": 5, "nodes": {"impair": "nope"},
                                            "timeline": ["at 1s loss 1%"]}}, 400),
            ("POST", "/api/runs", {"raw": "[1,2]"}, 400),
            ("POST", "/api/runs", {"raw": "{\"a\":" * 2500}, 400),
            ("POST", "/api/runs", {"raw": "x" * 100000}, 413),
            ("PUT", "/api/nodes/imp/settings", {"body": {"c2s": {"loss": 7}}}, 400),
            ("PUT", "/api/nodes/metrics/settings", {"body": {}}, 400),
            ("GET", "/api/nodes/nope/series", {}, 404),
            ("GET", "/api/nodes/imp/series?since=-1", {}, 400),
            ("GET", "/api/runs/r999999", {}, 404),
            ("GET", "/api/runs/" + "a" * 300, {}, 404),
            ("POST", "/api/nodes", {"body": {"id": "z", "kind": "send", "url": "http://127.0.0.1:9"},
                                    "headers": {"Origin": "http://evil.example"}}, 403),
            ("POST", "/api/nodes", {"raw": '{"id":"z","kind":"send","url":"http://127.0.0.1:9"}',
                                    "headers": {"Content-Type": "text/plain"}}, 415),
            ("GET", "/api/info", {"headers": {"Host": "rebound.example:80"}}, 403),
            ("GET", "/../../etc/passwd", {}, 404),
            ("DELETE", "/api/nodes/send", {}, 200)):
        st, body = ctl.call(method, path, **kw)
        check(st == want, f"{method} {path}: {st} (want {want}) {str(body)[:200]}")
    check(imp.call("GET", "/settings")[1]["c2s"]["loss"] == 0.02, "a refused request changed impair")
    nodes = sorted(n["id"] for n in ctl.call("GET", "/api/nodes")[1])
    check(nodes == ["imp", "metrics", "recv"], f"nodes: {nodes}")
    # Restart: nodes and runs are kept.
    ctl.proc.signal(15)
    check(ctl.proc.wait_exit(15) == 0, "controller did not exit cleanly")
    ctl2 = Tool(env, "controller", ["--state-dir", ctl.state], name="controller2")
    runs = ctl2.call("GET", "/api/runs")[1]
    check([x["id"] for x in runs][:1] == [rid] and len(runs) == 2, f"runs after restart: {runs}")
    check(sorted(n["id"] for n in ctl2.call("GET", "/api/nodes")[1]) == nodes, "nodes kept")
    # A controller killed mid-run: the next one stops the workload and restores impair.
    register(ctl2, "send", "send", snd.url)
    st, body = ctl2.call("POST", "/api/runs", long)
    check(st == 201, f"run under ctl2: {st} {body}")
    lib.wait_until(lambda: imp.call("GET", "/settings")[1]["c2s"]["loss"] == 0.3, 10,
                   "the run's loss in impair")
    ctl2.proc.kill()
    ctl3 = Tool(env, "controller", ["--state-dir", ctl.state], name="controller3")
    lib.wait_until(lambda: imp.call("GET", "/settings")[1]["c2s"] == s["c2s"], 10,
                   "impair restored by the next controller")
    lib.wait_until(lambda: snd.call("GET", "/stats")[1]["state"] == "stopped", 10,
                   "the workload stopped by the next controller")
    st, rec = ctl3.call("GET", f"/api/runs/{body['id']}")
    check(rec["state"] == "aborted", f"the killed run: {rec['state']}")


class FakeMetrics:
    """A stand-in for a server's `--metrics` GET /stats in the JSON schema of docs/metrics.md:
    one session whose paths fail over after a few polls (which a short real run would not
    show), for checking that the dashboard marks the failover on its path timeline."""

    def __init__(self):
        import http.server
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                fake.n += 1
                n = fake.n
                body = json.dumps({"schema": 1, "process": {"role": "server"}, "sessions": [{
                    "id": 1, "state": "up", "srtt_ms": 20 + n % 7, "rttvar_ms": 3 + n % 3,
                    "cwnd": 4380 * (1 + n % 10), "flight": 1000, "retransmissions": 2 * n,
                    "paths": [
                        {"index": 0, "kind": "udp", "state": "active" if n < 6 else "failed"},
                        {"index": 1, "kind": "tcp",
                         "state": "standby" if n < 6 else "active"}]}]}).encode()
                self.send_response(200 if self.path == "/stats" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.n = 0
        self.srv = http.server.ThreadingHTTPServer((LOOP, 0), H)
        self.url = f"http://{LOOP}:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@lib.timeout(180)
def test_lab_dashboard_in_chromium(env):
    """The dashboard in headless Chromium: loads without console errors, charts live data of a
    send -> sctpt -> impair -> recv transfer started from the page, an impair change made in
    the page reaches impair, a scenario runs to completion from the runner and its JSON report
    downloads; a screenshot is taken during the transfer."""
    node = shutil.which("node")
    check(node is not None, "node is missing: run scripts/setup.sh")
    check((WEB / "node_modules" / "playwright-core").is_dir() and
          (WEB / "node_modules" / "uplot" / "dist" / "uPlot.iife.min.js").is_file(),
          "npm packages missing in src/lab/web: run scripts/setup.sh (npm ci)")
    check(os.path.exists("/usr/bin/chromium"), "chromium is missing: run scripts/setup.sh")
    mport = lib.free_port()
    ctl, snd, r, imp, cl = lab_through_sctpt(env, "--delay", "10", "--jitter", "2",
                                             "--loss", "0.01",
                                             client_extra=("--metrics", f"{LOOP}:{mport}"))
    register(ctl, "sctpt-client", "sctpt", f"http://{LOOP}:{mport}")
    shot = os.environ.get("SCTPT_LAB_SCREENSHOT") or os.path.join(env.dir, "dashboard.png")
    metrics = env.add(FakeMetrics())
    sbs = os.geteuid() == 0 and all(shutil.which(t) for t in
                                    ("ip", "/usr/sbin/sshd", "ssh", "ss-server", "ss-local"))
    env.add(TestbedGuard(ctl.proc))
    p = subprocess.run([node, str(lib.ROOT / "tests" / "browser" / "dashboard.mjs"),
                        ctl.url + "/", f"http://{LOOP}:{imp.api_port}", shot,
                        f"{LOOP}:{cl.socks}", metrics.url] + (["sbs"] if sbs else []),
                       capture_output=True, timeout=170, cwd=env.dir,
                       env=dict(os.environ, HOME=env.dir))
    out = p.stdout.decode(errors="replace").strip().splitlines()
    res = json.loads(out[-1]) if out and out[-1].startswith("{") else {}
    check(p.returncode == 0 and res.get("ok"),
          f"browser test failed ({p.returncode}): {res or p.stderr.decode()[-800:]}")
    check(res["console_errors"] == [], f"console errors: {res['console_errors']}")
    check(res["impair_after_form"] == {"c2s_delay_ms": 7, "s2c_loss": 0.001},
          f"the form's change did not reach impair: {res['impair_after_form']}")
    rep = res["report"]
    check(rep["state"] == "done" and rep["iterations"] == 2 and all(c > 0 for c in rep["calls"]),
          f"report: {rep}")
    check(res["impair_after_run"]["c2s_delay_ms"] == 7, "the run did not restore impair")
    real = res["sctpt"]
    check(real["srtt_ms"] >= 15 and real["cwnd"] > 0 and "sctpt-client: udp 0 active" in
          real["paths"], f"the real sctpt client's metrics not charted: {real}")
    check("metrics" in res["steps"] and "metrics: udp 0 failed | tcp 1 active" in res["paths"],
          f"the path failover not shown: {res.get('paths')}")
    if sbs:
        v = {x["name"]: x for x in res["sbs"]["variants"]}
        check(sorted(v) == ["sctpt", "shadowsocks", "ssh -D"] and res["sbs"]["canvas"] >= 1 and
              all(x["calls"] > 10 and x["failed"] == 0 and x["p50_ms"] >= 15 for x in v.values()),
              f"side by side in the page: {res['sbs']}")
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        check(f"sctptlab-{ctl.proc.pid}-" not in left, f"namespaces left: {left}")
    else:
        lib.info("side by side in the page skipped (not root, or ssh/shadowsocks missing)")
    check(os.path.getsize(shot) > 20000, "no screenshot")
    check_invariants(imp.settle())
    lib.info(f"browser: {res['steps']}, charts {res['charts']}, report {rep}")


class TestbedGuard:
    """Whatever a controller's testbeds leave if the test fails half-way: the controller is
    stopped (it tears its testbeds down), then any namespace named after it is emptied and
    removed."""

    def __init__(self, proc):
        self.proc = proc

    def close(self):
        self.proc.signal(signal.SIGTERM)
        self.proc.wait_exit(25)
        self.proc.kill()
        for ns in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                 text=True).stdout.split():
            if ns.startswith(f"sctptlab-{self.proc.pid}-"):
                pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                      text=True).stdout.split()
                for pid in pids:
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def testbed_gone(ctl_pid, tb):
    """Nothing of testbed tb (its GET answer) is left: no process, namespace or directory."""
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    left = [n for n in ns.split() if n.startswith(f"sctptlab-{ctl_pid}-")]
    procs = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if tb["dir"].encode() in f.read():
                    procs.append(int(d))
    for p in tb["processes"]:
        with contextlib.suppress(OSError):
            with open(f"/proc/{p['pid']}/stat") as f:
                if f.read().split()[2] != "Z":
                    procs.append(p["pid"])
    return left, sorted(set(procs)), os.path.exists(tb["dir"])


def wait_testbed(ctl, tid, secs=40):
    def ready():
        st, body = ctl.call("GET", f"/api/testbeds/{tid}")
        check(st == 200 and body["state"] != "failed", f"testbed {tid}: {st} {body}")
        return body if body["state"] == "ready" else None
    return lib.wait_until(ready, secs, f"testbed {tid} to be ready", interval=0.2)


@lib.timeout(110)
def test_lab_testbed_side_by_side(env):
    """The controller's own testbed (POST /api/testbeds): two namespaces joined by impair's
    TUN mode, sctpt, ssh -D and shadowsocks-libev between send and recv, built, supervised and
    registered by the controller; sctpt's --metrics reach the controller (srtt_ms, cwnd);
    the comparison scenario it proposes runs 3 s per variant under 2% loss with every stream
    verified and a latency summary per variant; DELETE leaves no process, namespace or
    directory.  Then a second testbed whose controller gets SIGTERM in the middle of a run,
    and a third whose controller is killed outright and cleaned up at its next start.
    Refused with 403 when the controller is not root; hostile specs are 400."""
    for tool in ("ip", "/usr/sbin/sshd", "ssh", "ss-server", "ss-local"):
        check(shutil.which(tool) is not None, f"{tool} is missing: run scripts/setup.sh")
    state = os.path.join(env.dir, "state")
    ctl = Tool(env, "controller", ["--state-dir", state, "--poll", "250",
                                   "--sctpt-bin", lib.BIN])
    env.add(TestbedGuard(ctl.proc))
    for bad in ({"peers": ["telnet"]}, {"peers": ["ssh", "ssh"]}, {"loss": 2},
                {"delay_ms": -1}, {"peers": []}, {"colour": 1}):
        st, body = ctl.call("POST", "/api/testbeds", bad)
        check(st == 400, f"{bad}: {st} {body}")
    st, tb = ctl.call("POST", "/api/testbeds", {"peers": ["sctpt", "ssh", "shadowsocks"],
                                                "loss": 0.02, "delay_ms": 10, "seed": 7})
    check(st == 201, f"create: {st} {tb}")
    t0 = time.monotonic()
    tb = wait_testbed(ctl, tb["id"])
    setup_s = time.monotonic() - t0
    check(sorted(tb["nodes"]) == sorted(f"{tb['id']}-{n}" for n in
          ("impair", "recv", "send", "sctpt-server", "sctpt-client")), f"nodes: {tb['nodes']}")

    def sctpt_live():
        s = node_last(ctl, f"{tb['id']}-sctpt-client")
        sess = s.get("sessions") or []
        return sess[0] if s.get("schema") == 1 and sess and sess[0].get("srtt_ms") else None
    sess = lib.wait_until(sctpt_live, 10, "sctpt's metrics in the controller")
    check(sess["srtt_ms"] >= 15 and sess["cwnd"] > 0, f"sctpt client's session: {sess}")
    sc = tb["scenario"]
    sc["duration_s"] = 3
    sc["workload"]["streams"] = 4
    check([v["name"] for v in sc["variants"]] == ["sctpt", "ssh -D", "shadowsocks"],
          f"variants: {sc['variants']}")
    st, body = ctl.call("POST", "/api/runs", sc)
    check(st == 201, f"run: {st} {body}")
    rec = wait_run(ctl, body["id"], 60)
    check(rec["state"] == "done", f"run {rec['state']}: {rec.get('error')}")
    its = {i["variant"]: i["send"] for i in rec["iterations"]}
    check(sorted(its) == ["sctpt", "shadowsocks", "ssh -D"], f"variants run: {sorted(its)}")
    for v, s in its.items():
        r = s["rpc"]
        check(s["streams_ok"] == 4 and s["streams_failed"] == 0,
              f"{v}: {s['streams_ok']} verified, {s['streams_failed']} failed {s['errors']}")
        check(r["count"] > 30 and 15 <= r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"],
              f"{v}: latency summary {r}")
    st, body = ctl.call("GET", f"/api/nodes/{tb['id']}-impair")
    check(body["last"]["c2s"]["dropped"] > 0, "impair dropped nothing at 2% loss")
    # The run's samples carry sctpt's own view (both ends' srtt_ms, cwnd) next to send's.
    st, csv = ctl.call("GET", f"/api/runs/{rec['id']}/report.csv?what=samples")
    lines = csv.strip().splitlines()
    hdr = lines[0].split(",")
    srtt = [float(r[hdr.index("srtt_ms")]) for r in (ln.split(",") for ln in lines[1:])
            if r[hdr.index("node")] == "sctpt" and r[hdr.index("node_id")].endswith("-client")]
    check(st == 200 and srtt and max(srtt) >= 15, f"no sctpt samples in the run: {lines[:3]}")
    # ... and the engine's own counters: SACKs both ways, a pacing rate (bbr), losses found.
    rows = [dict(zip(hdr, ln.split(","))) for ln in lines[1:]]
    eng = [r for r in rows if r["node"] == "sctpt"]
    check(all(len(r) == len(hdr) for r in rows), "samples CSV: ragged rows")
    check(eng and max(float(r["sacks_sent"]) for r in eng) > 0 and
          max(float(r["sacks_received"]) for r in eng) > 0 and
          max(float(r["pacing_rate"]) for r in eng) > 0 and
          max(float(r["rack_losses"]) + float(r["fast_retransmissions"]) +
              float(r["tlp_losses"]) + float(r["t3_expiries"]) for r in eng) > 0,
          f"engine counters missing from the samples: {eng[-1:]}")
    st, body = ctl.call("DELETE", f"/api/testbeds/{tb['id']}")
    check(st == 200, f"delete: {st} {body}")
    left = testbed_gone(ctl.proc.pid, tb)
    check(left == ([], [], False), f"left after DELETE (namespaces, processes, dir): {left}")
    st, nodes = ctl.call("GET", "/api/nodes")
    check(nodes == [], f"nodes left: {nodes}")
    lib.info(f"testbed ready in {setup_s:.1f} s; " + ", ".join(
        f"{v} p50 {s['rpc']['p50_ms']:.1f} p99 {s['rpc']['p99_ms']:.1f} ms"
        for v, s in its.items()))

    # SIGTERM in the middle of a run: the run is aborted, the testbed torn down.
    st, tb = ctl.call("POST", "/api/testbeds", {"peers": ["sctpt", "direct"], "loss": 0.02})
    check(st == 201, f"create 2: {st} {tb}")
    tb = wait_testbed(ctl, tb["id"])
    sc = tb["scenario"]
    sc["duration_s"] = 30
    st, body = ctl.call("POST", "/api/runs", sc)
    check(st == 201, f"run 2: {st} {body}")
    time.sleep(1.5)
    ctl.proc.signal(signal.SIGTERM)
    check(ctl.proc.wait_exit(25) == 0, "the controller did not exit on SIGTERM")
    left = testbed_gone(ctl.proc.pid, tb)
    check(left == ([], [], False), f"left after SIGTERM (namespaces, processes, dir): {left}")

    # Killed outright: the children die with it (PDEATHSIG); the namespaces and the record
    # stay until the next start, which removes them.
    ctl2 = Tool(env, "controller", ["--state-dir", state, "--sctpt-bin", lib.BIN],
                name="controller2")
    env.add(TestbedGuard(ctl2.proc))
    st, tb = ctl2.call("POST", "/api/testbeds", {"peers": ["direct"]})
    check(st == 201, f"create 3: {st} {tb}")
    tb = wait_testbed(ctl2, tb["id"])
    ctl2.proc.signal(signal.SIGKILL)
    ctl2.proc.wait_exit(5)
    check(os.path.exists(os.path.join(state, "testbeds.json")), "no record of the testbed")
    ctl3 = Tool(env, "controller", ["--state-dir", state], name="controller3")
    env.add(TestbedGuard(ctl3.proc))
    left = lib.wait_until(lambda: (lambda x: x if x == ([], [], False) else None)(
        testbed_gone(ctl2.proc.pid, tb)), 10, "the crashed controller's testbed to go")
    check(not os.path.exists(os.path.join(state, "testbeds.json")), "the record stayed")

    # Not root: refused, clearly.
    if shutil.which("setpriv"):
        port = lib.free_port()
        p = env.spawn("controller-nobody", ["setpriv", "--reuid=65534", "--regid=65534",
                                            "--clear-groups", LAB_BIN, "controller",
                                            "--listen", f"{LOOP}:{port}"])
        check(p.wait_log("ready", 10), "the unprivileged controller did not start")
        st, body = call(port, "POST", "/api/testbeds", {})
        check(st == 403 and "root" in body["error"], f"not root: {st} {body}")
