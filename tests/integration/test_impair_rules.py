"""`sctpt-lab impair`'s named rules, bursty loss, presets and Prometheus metrics: the rules API
(hostile input refused, nothing changed), rules applied to real UDP traffic with exactly the
flows the seed selects hit and every counter consistent, /reset restoring clean forwarding,
a real sctpt transfer under Gilbert-Elliott burst loss with every hash intact, and /metrics
parsed strictly and checked against /stats.

Helpers come from test_impair (the impair process, the UDP sink); every run uses --seed."""

import json
import math
import random
import re
import time

import lib
from lib import LOOP, check
from test_impair import (UdpSink, check_invariants, drain, sctpt_through, send_seq,
                         udp_impair, udp_socket)

MiB = 1 << 20
M64 = (1 << 64) - 1


# ------------------------------------------------- the flow toxicity, as rules.h defines it

def mix64(x):
    """splitmix64's step and finalizer (impair_mix64)."""
    z = (x + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def fnv1a(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def flow_selected(seed, name, flow, toxicity):
    """Whether a rule of scope "flow" hits flow: H(seed, name, flow) < toxicity."""
    if toxicity >= 1:
        return True
    if toxicity <= 0:
        return False
    h = mix64(mix64(seed ^ fnv1a(name)) ^ mix64(flow))
    return (h >> 11) * 2.0 ** -53 < toxicity


def ip_flow_key(proto, src, sport, dst, dport):
    """tun.c's flow key of an IPv4 packet: the two (address, port) ends sorted, hashed with
    the protocol."""
    import socket
    import struct
    a = socket.inet_aton(src) + struct.pack("!H", sport)
    b = socket.inet_aton(dst) + struct.pack("!H", dport)
    if a > b:
        a, b = b, a
    h = mix64(proto)
    for x, y in zip(a, b):
        h = mix64(h ^ x) ^ y
    return mix64(h)


# ------------------------------------------------------------------ strict Prometheus parser

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{({LABEL}(?:,{LABEL})*)\}})? (\S+)$")


def parse_metrics(text):
    """Prometheus text format 0.0.4, strictly: every sample's family has HELP and TYPE before
    it, each once; counters end in _total; label sets unique; values are numbers; ends with a
    newline.  Returns {(name, frozenset(labels)): value}."""
    check(text.endswith("\n"), "metrics do not end with a newline")
    helps, types, out = {}, {}, {}
    for ln, line in enumerate(text.split("\n")[:-1], 1):
        check(line != "", f"metrics line {ln}: empty line")
        if line.startswith("#"):
            m = re.match(rf"^# (HELP|TYPE) ({NAME}) (.+)$", line)
            check(m is not None, f"metrics line {ln}: bad comment {line!r}")
            kind, name, rest = m.groups()
            table = helps if kind == "HELP" else types
            check(name not in table, f"metrics line {ln}: second {kind} for {name}")
            if kind == "TYPE":
                check(rest in ("counter", "gauge"), f"metrics line {ln}: type {rest}")
                check(name not in {n for n, _ in out}, f"{name}: TYPE after its samples")
            table[name] = rest
            continue
        m = SAMPLE.match(line)
        check(m is not None, f"metrics line {ln}: bad sample {line!r}")
        name, labels, value = m.groups()
        check(name in helps and name in types, f"metrics line {ln}: {name} without HELP/TYPE")
        if types[name] == "counter":
            check(name.endswith("_total"), f"counter {name} does not end in _total")
        lab = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels or ""))
        check(len(lab) == len(re.findall(LABEL, labels or "")), f"line {ln}: repeated label")
        check((name, lab) not in out, f"metrics line {ln}: duplicate series {line!r}")
        v = float(value)
        check(math.isfinite(v) and v >= 0, f"metrics line {ln}: value {value}")
        out[(name, lab)] = v
    check(set(helps) == set(types), f"HELP without TYPE or back: {set(helps) ^ set(types)}")
    return out


def metric(m, name, **labels):
    return m[("sctpt_impair_" + name, frozenset(labels.items()))]


def get_metrics(imp):
    import http.client
    conn = http.client.HTTPConnection(LOOP, imp.api_port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        body = r.read().decode()
        check(r.status == 200, f"/metrics: HTTP {r.status}")
        ct = r.getheader("Content-Type", "")
        check(ct.startswith("text/plain") and "version=0.0.4" in ct, f"/metrics type {ct}")
        return parse_metrics(body)
    finally:
        conn.close()


def check_metrics_match(m, st, rules):
    """/metrics says what /stats and /rules say, and the invariant holds in it."""
    for d in ("c2s", "s2c"):
        c = st[d]
        pairs = (("seen_packets_total", "seen"), ("seen_bytes_total", "bytes_seen"),
                 ("forwarded_packets_total", "forwarded"),
                 ("forwarded_bytes_total", "bytes_forwarded"),
                 ("duplicated_packets_total", "duplicated"), ("dropped_packets_total", "dropped"),
                 ("pending_packets", "pending"), ("delayed_packets_total", "delayed"),
                 ("reordered_packets_total", "reordered"),
                 ("corrupted_packets_total", "corrupted"))
        for mname, jname in pairs:
            check(metric(m, mname, direction=d) == c[jname],
                  f"{d}: metric {mname} {metric(m, mname, direction=d)} != /stats {jname} "
                  f"{c[jname]}")
        check(metric(m, "seen_packets_total", direction=d) +
              metric(m, "duplicated_packets_total", direction=d) ==
              metric(m, "forwarded_packets_total", direction=d) +
              metric(m, "dropped_packets_total", direction=d) +
              metric(m, "pending_packets", direction=d), f"{d}: invariant broken in /metrics")
        reasons = {"loss": "dropped_loss", "blackhole": "dropped_blackhole",
                   "burst": "dropped_burst", "rule": "dropped_rule", "queue": "queue_drops",
                   "overflow": "dropped_overflow", "other": "dropped_other"}
        total = 0
        for reason, jname in reasons.items():
            v = metric(m, "dropped_by_reason_packets_total", direction=d, reason=reason)
            check(v == c[jname], f"{d}: dropped reason {reason} {v} != {c[jname]}")
            total += v
        check(total == c["dropped"], f"{d}: reasons add up to {total}, dropped {c['dropped']}")
    for r in rules:
        for d in ("c2s", "s2c"):
            for k in ("packets", "dropped", "duplicated", "delayed", "corrupted"):
                mname = "rule_packets_total" if k == "packets" else f"rule_{k}_packets_total"
                v = metric(m, mname, rule=r["name"], kind=r["kind"], direction=d)
                check(v == r["counters"][d][k], f"rule {r['name']} {d} {k}: metric {v} != "
                                                f"{r['counters'][d][k]}")
    check(metric(m, "rules") == len(rules), "sctpt_impair_rules")


# ------------------------------------------------------------------------------------ tests

@lib.timeout(60)
def test_impair_rules_api_hostile(env):
    """The rules API: create, read, replace, delete; 409/404/405/415; hostile bodies get 400
    with a reason and change nothing; presets listed and applied; /settings unchanged in
    form (the old fields are all there)."""
    sink = env.add(UdpSink(echo=True))
    imp = udp_impair(env, sink.port, "--seed", "1", "--delay", "2",
                     "--rule", '{"name": "boot", "kind": "duplicate", "params": {"p": 0.1}}')
    rules = imp.get("/rules")
    check([r["name"] for r in rules] == ["boot"], f"--rule not in place: {rules}")
    s0 = imp.get("/settings")
    for k in ("loss", "dup", "reorder", "delay_ms", "jitter_ms", "reorder_ms", "jitter",
              "rate_bps", "queue_bytes", "blackhole"):
        check(k in s0["c2s"], f"/settings lost field {k}")

    body = {"name": "slow-up", "direction": "c2s", "kind": "delay",
            "params": {"delay_ms": 30, "jitter_ms": 2}, "toxicity": 0.5, "scope": "packet"}
    st, j = imp.call("POST", "/rules", body)
    check(st == 201 and j["name"] == "slow-up" and j["params"]["delay_ms"] == 30 and
          j["direction"] == "c2s" and j["scope"] == "packet", f"POST /rules: {st} {j}")
    st, j = imp.call("POST", "/rules", body)
    check(st == 409, f"second POST of the same name: {st} {j}")
    st, j = imp.call("GET", "/rules/slow-up")
    check(st == 200 and j["toxicity"] == 0.5, f"GET /rules/slow-up: {st} {j}")
    st, j = imp.call("PUT", "/rules/slow-up", {"kind": "loss", "params": {"p": 0.2}})
    check(st == 200 and j["kind"] == "loss" and j["direction"] == "both", f"replace: {st} {j}")
    st, j = imp.call("PUT", "/rules/new.one_2", {"kind": "blackhole", "direction": "s2c"})
    check(st == 201, f"PUT creates: {st} {j}")
    before = imp.get("/rules")
    check([r["name"] for r in before] == ["boot", "slow-up", "new.one_2"], f"order: {before}")

    hostile = [
        b"", b"{", b"null", b"[]", b'"x"', b"\xff\xfe", b"[" * 5000,
        b'{"name": "a"}', b'{"kind": "loss"}', b'{"name": "a b", "kind": "loss"}',
        b'{"name": "' + b"a" * 65 + b'", "kind": "loss"}', b'{"name": "a/b", "kind": "loss"}',
        b'{"name": "a", "kind": "latency"}', b'{"name": "a", "kind": "loss", "x": 1}',
        b'{"name": "a", "kind": "loss", "direction": "up"}',
        b'{"name": "a", "kind": "loss", "toxicity": 2}',
        b'{"name": "a", "kind": "loss", "toxicity": "1"}',
        b'{"name": "a", "kind": "loss", "params": {"p": 1.5}}',
        b'{"name": "a", "kind": "loss", "params": {"delay_ms": 1}}',
        b'{"name": "a", "kind": "rate", "params": {}}',
        b'{"name": "a", "kind": "burst", "params": {"loss": 0.9, "length": 1}}',
        b'{"name": "a", "kind": "loss", "name": "b"}',
        b'{"name": "a", "kind": "loss", "params": {"p": NaN}}',
    ]
    for raw in hostile:
        st, j = imp.call("POST", "/rules", raw=raw)
        check(st == 400 and isinstance(j, dict) and j.get("error"),
              f"POST /rules {raw[:50]!r}: HTTP {st} {j}, want 400 with an error")
    st, j = imp.call("PUT", "/rules/other", {"name": "slow-up", "kind": "loss"})
    check(st == 400, f"PUT with a body naming another rule: {st} {j}")
    st, j = imp.call("PUT", "/rules/bad%20name", {"kind": "loss"})
    check(st == 400, f"PUT /rules/bad%20name: {st} {j}")
    for method, path, want in (("GET", "/rules/nope", 404), ("DELETE", "/rules/nope", 404),
                               ("DELETE", "/rules", 405), ("PATCH", "/rules/boot", 405),
                               ("GET", "/reset", 405), ("GET", "/preset", 405),
                               ("POST", "/presets", 405), ("POST", "/metrics", 405)):
        st, j = imp.call(method, path, {} if method in ("POST", "PATCH") else None)
        check(st == want, f"{method} {path}: HTTP {st}, want {want}")
    st, j = imp.call("POST", "/rules", raw=json.dumps(body).encode(),
                     headers={"Content-Type": "text/plain"})
    check(st == 415, f"POST /rules as text/plain: {st}")
    for i in range(29):                        # 3 + 29 = 32, the bound
        st, j = imp.call("POST", "/rules", {"name": f"r{i}", "kind": "loss"})
        check(st == 201, f"rule {i}: {st} {j}")
    st, j = imp.call("POST", "/rules", {"name": "r99", "kind": "loss"})
    check(st == 409 and "32" in j["error"], f"33rd rule: {st} {j}")
    check([r["name"] for r in imp.get("/rules")][:3] == ["boot", "slow-up", "new.one_2"],
          "refused requests changed the rules")
    st, j = imp.call("DELETE", "/rules/slow-up")
    check(st == 200 and j["deleted"]["name"] == "slow-up", f"DELETE: {st} {j}")
    check("slow-up" not in [r["name"] for r in imp.get("/rules")], "DELETE did not remove it")

    presets = imp.get("/presets")
    names = [p["name"] for p in presets]
    check({"3g", "lte", "dsl", "satellite", "lossy-wifi", "none"} <= set(names), f"{names}")
    for p in presets:
        check(p["description"] and p["source"] and set(p["settings"]) == {"c2s", "s2c"}, f"{p}")
    st, j = imp.call("POST", "/preset", {"name": "satellite"})
    check(st == 200 and j["c2s"]["delay_ms"] >= 250 and j["s2c"]["ge_p"] > 0, f"{st} {j}")
    check(imp.get("/settings") == j, "POST /preset answer differs from GET /settings")
    for raw in (b'{"name": "5g"}', b"{}", b'{"name": 3}', b'{"name": "3g", "x": 1}', b"[]"):
        st, j = imp.call("POST", "/preset", raw=raw)
        check(st == 400, f"POST /preset {raw!r}: {st}")
    check(imp.get("/settings")["c2s"]["delay_ms"] >= 250, "a refused preset changed settings")
    st, j = imp.call("PUT", "/settings", {"c2s": {"burst": {"loss": 0.02, "length": 4}}})
    check(st == 200 and abs(j["c2s"]["ge_r"] - 0.25) < 1e-9, f"settings burst: {st} {j}")
    for raw in (b'{"c2s": {"burst": {"loss": 0.02}}}', b'{"c2s": {"ge_p": 2}}',
                b'{"c2s": {"burst": {"loss": 0.02, "length": 4}, "ge_r": 1}}'):
        st, j = imp.call("PUT", "/settings", raw=raw)
        check(st == 400, f"PUT /settings {raw!r}: {st} {j}")
    for raw in (b"[]", b'{"counters": 1}', b'{"x": true}', b"{"):
        st, j = imp.call("POST", "/reset", raw=raw)
        check(st == 400, f"POST /reset {raw!r}: {st}")
    check(len(imp.get("/rules")) == 31, "a refused reset removed rules")
    check(imp.proc.alive(), "impair died")


@lib.timeout(60)
def test_impair_rules_udp_traffic_and_reset(env):
    """Rules on real UDP traffic from 8 clients: a c2s loss rule of toxicity 0.5 hits exactly
    the flows the seed selects (all their datagrams lost, the others none), a duplicate rule
    doubles every s2c datagram, a delay rule delays; counters agree with both ends and keep the
    invariant; /metrics says the same.  POST /reset restores clean forwarding with counters
    kept; a corrupt rule flips exactly one bit of each datagram; {"counters": true} zeroes
    the counters with the invariant intact."""
    seed, nflows, n = 11, 8, 60
    sink = env.add(UdpSink(echo=True))
    imp = udp_impair(env, sink.port, "--seed", str(seed))
    socks = []
    for _ in range(nflows):                     # flows get ids 1..8 in this order
        s = udp_socket()
        env.add(s)
        send_seq(s, (LOOP, imp.port), 1)
        check(len(drain(s, quiet=0.3)) == 1, "echo through impair failed")
        socks.append(s)
    flows = imp.get("/flows")
    by_port = {int(f["client"].rsplit(":", 1)[1]): f["id"] for f in flows}
    ids = [by_port[s.getsockname()[1]] for s in socks]
    rules = [{"name": "half-dead", "direction": "c2s", "kind": "loss", "params": {"p": 1},
              "toxicity": 0.5},
             {"name": "twice", "direction": "s2c", "kind": "duplicate", "params": {"p": 1}},
             {"name": "lag", "kind": "delay", "params": {"delay_ms": 15}}]
    for r in rules:
        st, j = imp.call("POST", "/rules", r)
        check(st == 201, f"POST /rules {r}: {st} {j}")
    base = imp.settle()
    hit = [flow_selected(seed, "half-dead", fid, 0.5) for fid in ids]
    check(0 < sum(hit) < nflows, f"seed {seed} selects {sum(hit)} of {nflows} flows; pick "
                                 "another seed so that the test shows both kinds")
    t0 = time.monotonic()
    for s in socks:
        send_seq(s, (LOOP, imp.port), n, start=1)
    got = [drain(s, quiet=0.5) for s in socks]
    dt = time.monotonic() - t0
    for i, g in enumerate(got):
        want = 0 if hit[i] else 2 * n
        check(len(g) == want, f"flow {ids[i]} (hit {hit[i]}): got back {len(g)}, want {want}")
    check(dt >= 0.03, f"two 15 ms delays each way took only {dt:.3f}s")
    st = imp.settle()
    check_invariants(st)
    lost = n * sum(hit)
    c2s, s2c = st["c2s"], st["s2c"]
    check(c2s["dropped_rule"] == lost and c2s["dropped"] == lost,
          f"c2s dropped_rule {c2s['dropped_rule']}, want {lost}")
    seen_since = s2c["seen"] - base["s2c"]["seen"]
    check(seen_since == n * (nflows - sum(hit)) and s2c["duplicated"] == seen_since and
          s2c["forwarded"] - base["s2c"]["forwarded"] == 2 * seen_since,
          f"s2c: every datagram since the rules should leave twice: {base['s2c']} -> {s2c}")
    check(len(sink.got) == c2s["forwarded"], f"upstream got {len(sink.got)}, forwarded "
                                            f"{c2s['forwarded']}")
    rs = {r["name"]: r for r in imp.get("/rules")}
    check(rs["half-dead"]["counters"]["c2s"]["packets"] == lost and
          rs["half-dead"]["counters"]["c2s"]["dropped"] == lost and
          rs["half-dead"]["counters"]["s2c"]["packets"] == 0, f"half-dead: {rs['half-dead']}")
    check(rs["twice"]["counters"]["s2c"]["duplicated"] == seen_since, f"twice: {rs['twice']}")
    back = n * (nflows - sum(hit))
    check(rs["lag"]["counters"]["c2s"]["delayed"] == n * nflows - lost and
          rs["lag"]["counters"]["s2c"]["delayed"] == 2 * back, f"lag: {rs['lag']}")
    check_metrics_match(get_metrics(imp), imp.stats(), imp.get("/rules"))

    # /reset: no rules, no impairment, clean forwarding; counters kept
    imp.put({"both": {"loss": 0.3, "delay_ms": 5}})
    st, j = imp.call("POST", "/reset", {})
    check(st == 200 and j["rules"] == [] and not j["counters_zeroed"], f"/reset: {st} {j}")
    check(imp.get("/rules") == [] and j["settings"] == imp.get("/settings"), "reset state")
    check(j["settings"]["c2s"]["loss"] == 0 and j["settings"]["s2c"]["delay_ms"] == 0, f"{j}")
    before = imp.stats()
    for s in socks:
        send_seq(s, (LOOP, imp.port), 20, start=1000)
    for i, s in enumerate(socks):
        g = drain(s, quiet=0.4)
        check(len(g) == 20, f"after /reset flow {ids[i]} got back {len(g)} of 20")
    after = imp.settle()
    check_invariants(after)
    check(after["c2s"]["seen"] == before["c2s"]["seen"] + 20 * nflows and
          after["c2s"]["dropped"] == before["c2s"]["dropped"],
          f"counters after /reset: {before['c2s']} -> {after['c2s']}")

    # corrupt: every datagram arrives with exactly one bit flipped
    st, j = imp.call("POST", "/rules", {"name": "flip", "direction": "c2s", "kind": "corrupt",
                                        "params": {"p": 1}})
    check(st == 201, f"corrupt rule: {st} {j}")
    sink.got.clear()
    for _ in range(20):
        socks[0].sendto(bytes(200), (LOOP, imp.port))
    drain(socks[0], quiet=0.4)
    flips = [sum(bin(x).count("1") for x in d) for d, _, _ in sink.got]
    check(len(flips) == 20 and all(f == 1 for f in flips), f"bits flipped per datagram: {flips}")
    check(imp.get("/rules/flip")["counters"]["c2s"]["corrupted"] == 20 and
          imp.stats()["c2s"]["corrupted"] >= 20, "corrupted counters")
    imp.call("DELETE", "/rules/flip")

    # {"counters": true}: all zero, the invariant holds, counting resumes from there
    imp.put({"s2c": {"delay_ms": 2000}})       # something held while counters are zeroed
    send_seq(socks[0], (LOOP, imp.port), 5, start=2000)
    lib.wait_until(lambda: imp.stats()["s2c"]["pending"] >= 5, 5, "s2c copies to be held")
    st, j = imp.call("POST", "/reset", {"counters": True})
    check(st == 200 and j["counters_zeroed"], f"/reset counters: {st} {j}")
    z = imp.stats()
    check_invariants(z, "after zeroing: ")
    check(z["c2s"]["seen"] == 0 and z["c2s"]["forwarded"] == 0 and z["s2c"]["dropped"] == 0,
          f"counters not zeroed: {z}")
    check(z["s2c"]["pending"] == z["s2c"]["seen"] >= 5,
          f"held copies should be carried over as seen: {z['s2c']}")
    z = imp.settle(5)
    check_invariants(z, "after the held copies left: ")
    check_metrics_match(get_metrics(imp), imp.stats(), [])


@lib.timeout(120)
def test_impair_ge_burst_sctpt_transfer(env):
    """A real sctpt client/server transfer through Gilbert-Elliott burst loss (3% mean, bursts
    of 4 packets on average, both ways): every exchange completes with its SHA-256 intact;
    the burst drops are near 3% and the counters keep the invariant."""
    _, imp, c = sctpt_through(env, "--seed", "21", "--burst", "0.03:4")
    s = imp.get("/settings")
    check(abs(s["c2s"]["ge_r"] - 0.25) < 1e-9 and s["s2c"]["ge_p"] > 0, f"--burst: {s}")
    ex = env.exchange_server()
    r = random.Random(7)
    jobs = [(c.socks, ex.addr, r.randint(64 << 10, 512 << 10), r.randint(256 << 10, MiB), i, 90)
            for i in range(8)]
    t0 = time.monotonic()
    res = lib.run_parallel(lib.exchange, jobs, 100)
    dt = time.monotonic() - t0
    check(all(e is None for e in res), lib.summarize_errors(res) + f"; target: {ex.errors[:3]}")
    st = imp.settle()
    check_invariants(st)
    for d in ("c2s", "s2c"):
        cd = st[d]
        frac = cd["dropped_burst"] / max(1, cd["seen"])
        check(cd["seen"] > 300 and 0.01 < frac < 0.06 and cd["dropped"] == cd["dropped_burst"],
              f"{d}: burst loss not applied as set: {cd}")
    total = sum(j[2] + j[3] for j in jobs)
    lib.info(f"8 exchanges, {total / MiB:.1f} MiB, hashes intact in {dt:.1f}s under GE loss; "
             f"c2s {st['c2s']['dropped_burst']}/{st['c2s']['seen']}, s2c "
             f"{st['s2c']['dropped_burst']}/{st['s2c']['seen']} dropped in bursts")
    check_metrics_match(get_metrics(imp), imp.stats(), [])
    check(c.alive(), "client died")


@lib.timeout(60)
def test_impair_rules_tcp_mode(env):
    """TCP mode: a delay rule adds to every read's delay; a blackhole rule of toxicity 0.5
    stalls exactly the connections the seed selects (by connection id) and loses nothing:
    deleting it delivers what it held."""
    import contextlib
    import socket
    from test_impair import Impair, TcpEcho
    seed = 5
    echo = env.add(TcpEcho())
    port = lib.free_port()
    imp = Impair(env, ["--listen", f"tcp://{LOOP}:{port}", "--upstream",
                       f"tcp://{LOOP}:{echo.port}", "--seed", str(seed),
                       "--rule", '{"name": "lag", "direction": "s2c", "kind": "delay", '
                                 '"params": {"delay_ms": 40}}'])
    conns = []
    for _ in range(6):                         # connection ids 1..6
        s = socket.create_connection((LOOP, port), timeout=10)
        env.add(s)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns.append(s)
        lib.wait_until(lambda: imp.stats()["flows"] == len(conns), 5, "impair to accept")
    t0 = time.monotonic()
    conns[0].sendall(b"ping")
    check(lib.recv_exact(conns[0], 4) == b"ping", "echo through the delay rule")
    rtt = time.monotonic() - t0
    check(rtt >= 0.039, f"round trip {rtt * 1000:.1f} ms under a 40 ms delay rule")

    hit = [flow_selected(seed, "cut", i + 1, 0.5) for i in range(len(conns))]
    check(0 < sum(hit) < len(conns), f"seed {seed} selects {sum(hit)} of {len(conns)}")
    st, j = imp.call("POST", "/rules", {"name": "cut", "direction": "c2s", "kind": "blackhole",
                                        "toxicity": 0.5})
    check(st == 201, f"POST /rules: {st} {j}")
    for i, s in enumerate(conns):
        s.sendall(b"data%02d" % i)
    for i, s in enumerate(conns):
        if hit[i]:
            continue
        s.settimeout(5)
        check(lib.recv_exact(s, 6) == b"data%02d" % i, f"connection {i + 1} not selected but "
                                                       "did not pass")
    for i, s in enumerate(conns):
        if not hit[i]:
            continue
        s.settimeout(0.3)
        with contextlib.suppress(socket.timeout):
            d = s.recv(100)
            check(False, f"connection {i + 1} is blackholed but data came back: {d!r}")
    st, j = imp.call("DELETE", "/rules/cut")
    check(st == 200, f"DELETE: {st} {j}")
    for i, s in enumerate(conns):
        if hit[i]:
            s.settimeout(5)
            check(lib.recv_exact(s, 6) == b"data%02d" % i, f"held data of connection {i + 1} "
                                                           "not delivered")
    st = imp.stats()
    check_invariants(st)
    lag = imp.get("/rules/lag")
    check(lag["counters"]["s2c"]["delayed"] >= 1 + len(conns) and
          lag["counters"]["c2s"]["packets"] == 0, f"lag counters: {lag}")
    check_metrics_match(get_metrics(imp), imp.stats(), imp.get("/rules"))
    lib.info(f"{sum(hit)} of {len(conns)} connections stalled by the rule as the seed "
             f"predicted; RTT under the 40 ms rule {rtt * 1000:.1f} ms")


UDP_COUNTER = r"""
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
s.settimeout(1.5); got = {}; end = time.monotonic() + 15
while time.monotonic() < end:
    try:
        d, a = s.recvfrom(2048)
    except socket.timeout:
        if got: break
        continue
    got[a[1]] = got.get(a[1], 0) + 1
print(json.dumps(got), flush=True)
"""

UDP_SENDER = r"""
import json, socket, sys
ports = []
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 40000 + i))
    for k in range(3):
        s.sendto(b"x" * 100, (sys.argv[1], 5002))
    ports.append(s.getsockname()[1])
print(json.dumps(ports))
"""


@lib.timeout(60)
def test_impair_rules_ip_level_flows(env):
    """IP level: a flow is (protocol, addresses, ports).  A c2s blackhole rule of toxicity 0.5
    drops all or nothing of each of 16 UDP flows from namespace A to B (fixed source ports in
    a fresh namespace, so the seed decides which), some of each kind, and the counters say
    exactly how many."""
    import subprocess
    from test_impair import Impair, Netns
    ns = env.add(Netns("rl"))
    a, b = ns.names
    imp = Impair(env, ["--tun", f"{a}:10.77.1.1/24", "--tun", f"{b}:10.77.1.2/24",
                       "--seed", "3", "--rule", '{"name": "cut", "direction": "c2s", '
                                                '"kind": "blackhole", "toxicity": 0.5}'])
    srv = env.spawn("udp-in-b", ["ip", "netns", "exec", b, "python3", "-c", UDP_COUNTER,
                                 "10.77.1.2", "5002"])
    check(srv.wait_log("listening", 10), "UDP counter in namespace B did not start")
    n = 16
    p = subprocess.run(["ip", "netns", "exec", a, "python3", "-c", UDP_SENDER, "10.77.1.2",
                        str(n)], capture_output=True, timeout=20)
    check(p.returncode == 0, f"sender in A failed: {p.stderr.decode()[-300:]}")
    ports = json.loads(p.stdout)
    check(srv.wait_exit(20) is not None, "UDP counter did not finish")
    lines = [ln for ln in srv.log_text().splitlines() if ln.startswith("{")]
    got = {int(k): v for k, v in json.loads(lines[-1]).items()} if lines else {}
    counts = [got.get(pt, 0) for pt in ports]
    check(all(c in (0, 3) for c in counts), f"a flow was cut in part: {counts}")
    cut = counts.count(0)
    check(0 < cut < n, f"{cut} of {n} flows cut; toxicity 0.5 should cut some, not all")
    want = [not flow_selected(3, "cut", ip_flow_key(17, "10.77.1.1", pt, "10.77.1.2", 5002), 0.5)
            for pt in ports]
    check([c == 3 for c in counts] == want, f"flows cut {counts}, the seed says passing {want}")
    st = imp.settle()
    check_invariants(st)
    rule = imp.get("/rules/cut")
    check(st["c2s"]["dropped_rule"] == 3 * cut and rule["counters"]["c2s"]["dropped"] == 3 * cut
          and rule["counters"]["c2s"]["packets"] == 3 * cut, f"counters: {st['c2s']} {rule}")
    lib.info(f"IP level: {cut} of {n} UDP flows cut by a 0.5 blackhole rule, the rest intact")
