#!/usr/bin/env python3
"""The lab's headline comparison: one scenario through sctpt, ssh -D and shadowsocks-libev
under identical IP-level loss, run by `sctpt-lab controller`, latency distributions side by side.

  sudo python3 tools/lab_side_by_side.py                           # 2% loss, 25 ms each way
  sudo python3 tools/lab_side_by_side.py --loss 0.05 --delay 50 --duration 30 --repeat 3
  sudo python3 tools/lab_side_by_side.py --keep    # then open the dashboard it prints

Two network namespaces joined only by `sctpt-lab impair --tun` (as bench/loss_bench.py does):
B holds recv and each tunnel's server end (sctpt server, sshd, ss-server) on 10.77.0.2; A
holds each tunnel's SOCKS end (sctpt client, ssh -D, ss-local), send, impair and the
controller.  The scenario's variants are the three SOCKS ports; its timeline sets the loss
and delay at 0 s, and the run restores impair afterwards.  The controller's port (and recv's
API, for the goodput chart) are bridged to the host's loopback with socat, so the dashboard
opens in the host's browser.  A tunnel whose programs are missing is left out.

Prints a table (variant, calls, p50/p90/p99/max ms, goodput) and where the reports are; the
run stays in --state-dir.  Needs root, ip, socat; sshd/ssh (openssh) and ss-server/ss-local
(shadowsocks-libev) for those variants.  Everything it starts is stopped and the namespaces
deleted at exit.  Python 3 standard library only.
"""
import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADDR_A, ADDR_B = "10.77.0.1", "10.77.0.2"
RECV_PORT, RECV_API, SEND_API, IMPAIR_API = 9000, 9001, 9101, 9201
SCTPT_PORT, SSHD_PORT, SS_PORT = 4433, 2222, 8388
SOCKS = {"sctpt": 1080, "ssh -D": 1081, "shadowsocks": 1082}
SS_KEY, SS_METHOD = "lab-side-by-side", "chacha20-ietf-poly1305"


def run(argv, check=True, timeout=30):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()[-300:]}")
    return p


class Lab:
    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp
        self.procs, self.ns = [], []
        self.a, self.b = f"slab-{os.getpid()}-a", f"slab-{os.getpid()}-b"
        build = Path(args.build)
        self.sctpt, self.lab = str(build / "sctpt"), str(build / "sctpt-lab")

    def spawn(self, name, argv, ns=None):
        if ns:
            argv = ["ip", "netns", "exec", ns] + argv
        log = os.path.join(self.tmp, name.replace(" ", "_") + ".log")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(log, "wb"),
                             stderr=subprocess.STDOUT, start_new_session=True)
        p.name, p.log = name, log
        self.procs.append(p)
        return p

    def wait_log(self, p, needle, secs=20):
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if needle in Path(p.log).read_text(errors="replace"):
                return
            if p.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{p.name}: no {needle!r} within {secs}s:\n"
                           + Path(p.log).read_text(errors="replace")[-1200:])

    def wait_port(self, ns, host, port, secs=20):
        probe = f"import socket; socket.create_connection(('{host}', {port}), 1).close()"
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if run(["ip", "netns", "exec", ns, sys.executable, "-c", probe],
                   check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{host}:{port} in {ns} did not open within {secs}s")

    def up(self):
        for n in (self.a, self.b):
            run(["ip", "netns", "add", n])
            self.ns.append(n)
            run(["ip", "-n", n, "link", "set", "lo", "up"])
            for k in ("all", "default"):
                run(["ip", "netns", "exec", n, "sysctl", "-qw",
                     f"net.ipv6.conf.{k}.disable_ipv6=1"])
        imp = self.spawn("impair", [self.lab, "impair", "--tun", f"{self.a}:{ADDR_A}/24",
                                    "--tun", f"{self.b}:{ADDR_B}/24", "--seed", str(self.args.seed),
                                    "--api", f"127.0.0.1:{IMPAIR_API}"], ns=self.a)
        self.wait_log(imp, "impair: ready")
        rcv = self.spawn("recv", [self.lab, "recv", "--listen", f"127.0.0.1:{RECV_PORT}",
                                  "--api", f"127.0.0.1:{RECV_API}", "-q"], ns=self.b)
        self.wait_log(rcv, "ready")
        # recv's API into A, the controller's to the host (same port: the Host check holds).
        self.bridge("bridge-recv", self.a, self.b, RECV_API)
        self.bridge("bridge-controller", None, self.a, self.args.port)

    def bridge(self, name, from_ns, to_ns, port):
        # socat splits its address at ':' unless escaped.
        inner = f"ip netns exec {to_ns} socat STDIO TCP\\:127.0.0.1\\:{port}"
        self.spawn(name, ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
                          f"EXEC:{inner}"], ns=from_ns)

    def start_sctpt(self):
        key = os.path.join(self.tmp, "sctpt.key")
        out = run([self.sctpt, "keygen", "--key", key]).stdout
        cert = [ln.split("=", 1)[1] for ln in out.splitlines() if ln.startswith("cert=")][0]
        srv = self.spawn("sctpt-server", [self.sctpt, "server", "--listen",
                                          f"udp://{ADDR_B}:{SCTPT_PORT}", "--key", key,
                                          "--proxy", "--allow", "127.0.0.0/8"], ns=self.b)
        self.wait_log(srv, "listening on")
        cl = self.spawn("sctpt-client", [self.sctpt, "client", "--server",
                                         f"udp://{ADDR_B}:{SCTPT_PORT}", "--cert", cert,
                                         "--socks", f"127.0.0.1:{SOCKS['sctpt']}"], ns=self.a)
        self.wait_log(cl, "association up", 30)

    def start_ssh(self):
        d = os.path.join(self.tmp, "ssh")
        os.makedirs(d, mode=0o700)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/host"])
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/id"])
        shutil.copy(f"{d}/id.pub", f"{d}/authorized_keys")
        Path(f"{d}/sshd_config").write_text(
            f"Port {SSHD_PORT}\nListenAddress {ADDR_B}\nHostKey {d}/host\n"
            f"AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            f"StrictModes no\nPidFile {d}/sshd.pid\nAllowTcpForwarding yes\n"
            "MaxSessions 1000\nMaxStartups 100\nLogLevel ERROR\n")
        os.makedirs("/run/sshd", exist_ok=True)
        self.spawn("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", f"{d}/sshd_config"], ns=self.b)
        self.wait_port(self.b, ADDR_B, SSHD_PORT)
        self.spawn("ssh -D", ["ssh", "-N", "-D", f"127.0.0.1:{SOCKS['ssh -D']}", "-i", f"{d}/id",
                              "-o", "StrictHostKeyChecking=no",
                              "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                              "-o", "ExitOnForwardFailure=yes", "-p", str(SSHD_PORT),
                              f"root@{ADDR_B}"], ns=self.a)
        self.wait_port(self.a, "127.0.0.1", SOCKS["ssh -D"], 30)

    def start_ss(self):
        self.spawn("ss-server", ["ss-server", "-s", ADDR_B, "-p", str(SS_PORT), "-k", SS_KEY,
                                 "-m", SS_METHOD, "--no-delay"], ns=self.b)
        self.wait_port(self.b, ADDR_B, SS_PORT)
        self.spawn("ss-local", ["ss-local", "-s", ADDR_B, "-p", str(SS_PORT), "-b", "127.0.0.1",
                                "-l", str(SOCKS["shadowsocks"]), "-k", SS_KEY, "-m", SS_METHOD,
                                "--no-delay"], ns=self.a)
        self.wait_port(self.a, "127.0.0.1", SOCKS["shadowsocks"])

    def start_lab(self):
        snd = self.spawn("send", [self.lab, "send", "--to", f"127.0.0.1:{RECV_PORT}",
                                  "--api", f"127.0.0.1:{SEND_API}", "--idle", "-q"], ns=self.a)
        self.wait_log(snd, "ready")
        argv = [self.lab, "controller", "--listen", f"127.0.0.1:{self.args.port}",
                "--state-dir", self.args.state_dir]
        ctl = self.spawn("controller", argv, ns=self.a)
        self.wait_log(ctl, "controller: ready")

    def close(self):
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGTERM)
        end = time.monotonic() + 8          # the controller restores impair on SIGTERM
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.1, end - time.monotonic()))
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(5)
        for n in self.ns:
            run(["ip", "netns", "del", n], check=False)


def api(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        data = json.dumps(body) if body is not None else None
        conn.request(method, path, body=data,
                     headers={"Content-Type": "application/json"} if data else {})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loss", type=float, default=0.02, help="loss each way (default 0.02)")
    ap.add_argument("--delay", type=int, default=25, help="one-way delay ms (default 25)")
    ap.add_argument("--duration", type=int, default=20, help="seconds per iteration")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--streams", type=int, default=8, help="concurrent request streams")
    ap.add_argument("--req", type=int, default=1000, help="request bytes")
    ap.add_argument("--resp", type=int, default=1000, help="response bytes")
    ap.add_argument("--gap-ms", type=int, default=10, help="think time between requests")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", default="sctpt,ssh -D,shadowsocks",
                    help="comma-separated variants (default all three)")
    ap.add_argument("--port", type=int, default=8090, help="the controller's port")
    ap.add_argument("--state-dir", default=None, help="the controller's runs (default: a temp dir)")
    ap.add_argument("--build", default=str(ROOT / "build"), help="where sctpt and sctpt-lab are")
    ap.add_argument("--keep", action="store_true", help="keep everything up until Ctrl-C")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    for tool in ("ip", "socat"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing")
    want = [v.strip() for v in args.only.split(",") if v.strip()]
    need = {"sctpt": [], "ssh -D": ["/usr/sbin/sshd", "ssh", "ssh-keygen"],
            "shadowsocks": ["ss-server", "ss-local"]}
    variants = []
    for v in want:
        if v not in need:
            sys.exit(f"unknown variant {v!r} (sctpt, ssh -D, shadowsocks)")
        missing = [t for t in need[v] if shutil.which(t) is None]
        if missing:
            print(f"side-by-side: leaving out {v}: {', '.join(missing)} missing", file=sys.stderr)
        else:
            variants.append(v)
    tmp = tempfile.mkdtemp(prefix="sctpt-lab-sbs-")
    args.state_dir = args.state_dir or os.path.join(tmp, "state")
    lab = Lab(args, tmp)
    try:
        lab.up()
        starts = {"sctpt": lab.start_sctpt, "ssh -D": lab.start_ssh, "shadowsocks": lab.start_ss}
        for v in variants:
            starts[v]()
        lab.start_lab()
        for nid, kind, port in (("imp", "impair", IMPAIR_API), ("recv", "recv", RECV_API),
                                ("send", "send", SEND_API)):
            # Registered inside A (where their ports are), through the controller's bridge.
            st, body = api(args.port, "POST", "/api/nodes",
                           {"id": nid, "kind": kind, "url": f"http://127.0.0.1:{port}"})
            if st != 201:
                raise RuntimeError(f"register {nid}: {st} {body}")
        sc = {"name": f"side by side: loss {args.loss:g}, {args.delay} ms each way",
              "duration_s": args.duration, "seed": args.seed, "repeat": args.repeat,
              "workload": {"mode": "rpc", "streams": args.streams, "rpc_req": args.req,
                           "rpc_resp": args.resp, "rpc_gap_ms": args.gap_ms},
              "timeline": [f"at 0s loss {args.loss:g}, delay {args.delay}ms"],
              "variants": [{"name": v, "socks": f"127.0.0.1:{SOCKS[v]}"} for v in variants]}
        st, body = api(args.port, "POST", "/api/runs", sc)
        if st != 201:
            raise RuntimeError(f"run: {st} {body}")
        rid = body["id"]
        print(f"side-by-side: run {rid}: dashboard on http://127.0.0.1:{args.port}/", flush=True)
        end = time.monotonic() + len(variants) * args.repeat * (args.duration + 15) + 30
        while time.monotonic() < end:
            st, rec = api(args.port, "GET", f"/api/runs/{rid}")
            if rec["state"] in ("done", "failed", "aborted"):
                break
            time.sleep(1)
        else:
            raise RuntimeError("the run did not finish in time")
        print(f"\nrun {rid} {rec['state']}{': ' + rec['error'] if rec.get('error') else ''}; "
              f"loss {args.loss:g} each way, {args.delay} ms one way, {args.streams} streams of "
              f"{args.req}/{args.resp}-byte requests, {args.gap_ms} ms apart")
        print(f"{'variant':<12} {'iter':>4} {'calls':>8} {'p50 ms':>8} {'p90 ms':>8} "
              f"{'p99 ms':>8} {'max ms':>9} {'failed':>6}")
        for it in rec["iterations"]:
            s = it.get("send") or {}
            r = s.get("rpc") or {}
            print(f"{it['variant']:<12} {it['index']:>4} {r.get('count', 0):>8} "
                  f"{r.get('p50_ms', 0):>8.1f} {r.get('p90_ms', 0):>8.1f} {r.get('p99_ms', 0):>8.1f} "
                  f"{r.get('max_ms', 0):>9.1f} {s.get('streams_failed', 0):>6}")
        print(f"\nreports: {args.state_dir}/runs/{rid}.json; CSV: "
              f"http://127.0.0.1:{args.port}/api/runs/{rid}/report.csv")
        if args.keep:
            print("side-by-side: up until Ctrl-C (Runs -> Compare in the dashboard)", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
        return 0 if rec["state"] == "done" else 1
    finally:
        lab.close()


if __name__ == "__main__":
    sys.exit(main())
