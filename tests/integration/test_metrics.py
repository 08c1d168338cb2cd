"""The metrics endpoint (--metrics ADDR:PORT, docs/metrics.md): Prometheus text at /metrics and
JSON at /stats, scraped from a client and a server during and after a hashed transfer; the
per-stream view; refusal of a non-loopback address; hostile requests (garbage, oversize,
slowloris) answered or closed while the tunnel keeps working; addresses only with
--metrics-addresses; the usrsctp engine's subset."""

import json
import os
import re
import socket
import threading
import time

import struct

import lib
from lib import LOOP, check
from test_impair import udp_impair

MiB = 1 << 20

# ---------------------------------------------------------------- HTTP and format helpers


def http_get(port, path, method="GET", timeout=10):
    """One request, one answer (the server closes): (status, headers dict, body bytes)."""
    with socket.create_connection((LOOP, port), timeout=timeout) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: {LOOP}:{port}\r\n\r\n".encode())
        return read_response(s, timeout, head=method == "HEAD")


def read_response(s, timeout=10, head=False):
    """Read to EOF (bounded in time): (status, headers, body); checks Content-Length."""
    s.settimeout(timeout)
    data = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        d = s.recv(1 << 16)
        if not d:
            break
        data += d
    head, sep, body = data.partition(b"\r\n\r\n")
    check(sep, f"no complete HTTP head in {data[:200]!r}")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.1 (\d{3}) ", lines[0])
    check(m, f"bad status line {lines[0]!r}")
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    check(head and not body or int(headers.get("content-length", -1)) == len(body),
          f"Content-Length {headers.get('content-length')} but {len(body)} body bytes")
    check(headers.get("connection") == "close", f"no Connection: close in {headers}")
    return int(m.group(1)), headers, body


def stats(port, streams=False):
    st, h, body = http_get(port, "/stats?streams=1" if streams else "/stats")
    check(st == 200, f"/stats answered {st}: {body[:200]!r}")
    check(h.get("content-type") == "application/json", f"/stats content type {h}")
    return json.loads(body)


NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
LVALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{({LABEL}={LVALUE}(?:,{LABEL}={LVALUE})*)\}})? (\S+)$")


def parse_prom(text):
    """A strict reader of the text exposition format 0.0.4: every line a HELP, TYPE or sample;
    one HELP then one TYPE per family, before its samples, which are contiguous; valid names,
    quoted label values with only the three escapes, numeric values, counters named _total and
    not negative, no sample twice.  Returns {(name, frozenset(labels)): value}."""
    check(text.endswith("\n"), "exposition does not end in a newline")
    families, samples = {}, {}
    cur = None
    for n, ln in enumerate(text[:-1].split("\n"), 1):
        if ln.startswith("# HELP "):
            name = ln.split(" ", 3)[2]
            check(re.fullmatch(NAME, name), f"line {n}: bad name {name!r}")
            check(name not in families, f"line {n}: family {name} appears twice")
            families[name] = None
            cur = name
        elif ln.startswith("# TYPE "):
            _, _, name, typ = ln.split(" ", 3)
            check(name == cur and families[name] is None, f"line {n}: TYPE without its HELP")
            check(typ in ("counter", "gauge"), f"line {n}: type {typ!r}")
            check(typ != "counter" or name.endswith("_total"), f"line {n}: counter {name}")
            families[name] = typ
        else:
            m = SAMPLE.match(ln)
            check(m, f"line {n}: not a sample: {ln!r}")
            name, labels, value = m.groups()
            check(name == cur and families.get(name), f"line {n}: {name} outside its family")
            v = float(value)
            check(families[name] != "counter" or v >= 0, f"line {n}: negative counter")
            # The three escapes of the format are JSON escapes too.
            lab = frozenset((k, json.loads(v2))
                            for k, v2 in re.findall(rf"({LABEL})=({LVALUE})", labels or ""))
            key = (name, lab)
            check(key not in samples, f"line {n}: sample repeated")
            samples[key] = v
    return samples


def prom(port, streams=False):
    st, h, body = http_get(port, "/metrics?streams=1" if streams else "/metrics")
    check(st == 200, f"/metrics answered {st}")
    check(h.get("content-type", "").startswith("text/plain; version=0.0.4"),
          f"/metrics content type {h.get('content-type')!r}")
    return body.decode(), parse_prom(body.decode())


def sample(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def metrics_args(port, *more):
    return ["--metrics", f"{LOOP}:{port}"] + list(more)


def start_pair(env, server_more=(), client_more=(), engine=()):
    sport, cport = lib.free_port(), lib.free_port()
    s = env.start_server(proxy=True, allow=("127.0.0.0/8",),
                         extra=metrics_args(sport, *server_more) + list(engine))
    c = env.start_client(s.port, extra=metrics_args(cport, *client_more) + list(engine))
    lib.wait_until(lambda: lib.tcp_port_open(cport) and lib.tcp_port_open(sport), 10,
                   "metrics ports")
    lib.wait_until(lambda: len(stats(cport)["sessions"]) == 1 and
                   stats(cport)["sessions"][0]["state"] == "up", 20, "the client's session up")
    return s, c, sport, cport


# Loss recovery, SACK and pacing fields of a native session (docs/metrics.md); min_rtt_ms,
# btl_bw (bbr only) and delivery_rate appear once they have a value.
RECOVERY = ("cc", "min_rtt_ms", "reo_wnd_ms", "rack_losses", "tlp_losses",
            "spurious_retransmissions", "spurious_rtos", "undos", "sacks_sent", "sacks_received",
            "dup_tsns", "data_dropped", "pacing_rate", "pace_waits", "delivery_rate")


def check_recovery(ss, sm, role, cc, rtt_ms):
    """A native session's recovery and pacing numbers after a transfer both ways: present in
    both formats, integers where counted, and plausible for controller cc and a path whose
    round trip is at least rtt_ms."""
    for k in RECOVERY:
        check(k in ss, f"{role}: native session lacks {k}: {ss}")
        check(k == "cc" or isinstance(ss[k], int) and ss[k] >= 0, f"{role}: {k} = {ss[k]!r}")
    check(ss["cc"] == cc, f"{role}: session cc {ss['cc']!r}, want {cc}")
    # It sent data and received data: SACKs went both ways.
    check(ss["sacks_sent"] > 0 and ss["sacks_received"] > 0,
          f"{role}: SACKs sent {ss['sacks_sent']}, received {ss['sacks_received']}")
    check(rtt_ms <= ss["min_rtt_ms"] <= max(ss["srtt_ms"], rtt_ms) + 1000,
          f"{role}: min_rtt {ss['min_rtt_ms']} ms, srtt {ss['srtt_ms']} ms, path {rtt_ms} ms")
    check(ss["delivery_rate"] > 0, f"{role}: delivery rate {ss['delivery_rate']}")
    if cc == "newreno":
        check(ss["pacing_rate"] == 0, f"{role}: newreno paced at {ss['pacing_rate']}")
    else:
        check(ss["pacing_rate"] > 0, f"{role}: {cc} not paced")
    check(("btl_bw" in ss) == (cc == "bbr"), f"{role}: btl_bw with {cc}: {ss.get('btl_bw')}")
    check(cc != "bbr" or ss["btl_bw"] > 0, f"{role}: btl_bw {ss.get('btl_bw')}")
    # The same numbers in /metrics, in seconds and bytes per second.
    sid = str(ss["id"])
    check(sample(sm, "sctpt_session_cc_info", session=sid, cc=cc) == 1, f"{role}: cc_info")
    for name, key in (("sctpt_session_sacks_sent_total", "sacks_sent"),
                      ("sctpt_session_sacks_received_total", "sacks_received"),
                      ("sctpt_session_rack_losses_total", "rack_losses"),
                      ("sctpt_session_tlp_losses_total", "tlp_losses"),
                      ("sctpt_session_spurious_retransmissions_total",
                       "spurious_retransmissions"),
                      ("sctpt_session_spurious_rtos_total", "spurious_rtos"),
                      ("sctpt_session_undos_total", "undos"),
                      ("sctpt_session_duplicate_tsns_total", "dup_tsns"),
                      ("sctpt_session_data_dropped_total", "data_dropped"),
                      ("sctpt_session_pace_waits_total", "pace_waits"),
                      ("sctpt_session_pacing_rate_bytes_per_second", "pacing_rate"),
                      ("sctpt_session_delivery_rate_bytes_per_second", "delivery_rate")):
        v = sample(sm, name, session=sid)
        # scraped a moment after /stats: counters only grow, idle SACKs are few
        check(v is not None and v >= 0, f"{role}: no {name}")
        check(not name.endswith("_total") or ss[key] <= v <= ss[key] + 50,
              f"{role}: {name} {v} but /stats {key} {ss[key]}")
    check(sample(sm, "sctpt_session_min_rtt_seconds", session=sid) >= rtt_ms / 1000,
          f"{role}: sctpt_session_min_rtt_seconds")
    check(sample(sm, "sctpt_session_reordering_window_seconds", session=sid) is not None,
          f"{role}: no sctpt_session_reordering_window_seconds")
    btl = sample(sm, "sctpt_session_bottleneck_bandwidth_bytes_per_second", session=sid)
    check((btl is not None) == (cc == "bbr"), f"{role}: bottleneck bandwidth sample {btl}")


def no_addresses(text, what):
    """No address, and none of the fields or labels that hold one."""
    check(LOOP not in text and '"peer"' not in text and '"address"' not in text
          and '"destination"' not in text and "address=" not in text
          and "sctpt_session_peer_info" not in text,
          f"{what} shows an address without the opt-in")


# ---------------------------------------------------------------- tests


@lib.timeout(90)
def test_metrics_transfer(env):
    """Counters move consistently through a hashed transfer over a lossy, delayed path
    (sctpt-lab impair: 5 ms each way, 1% loss), on both ends, in both formats."""
    sport, cport = lib.free_port(), lib.free_port()
    s = env.start_server(proxy=True, allow=("127.0.0.0/8",), extra=metrics_args(sport))
    imp = udp_impair(env, s.port, "--seed", "14", "--delay", "5", "--loss", "0.01")
    c = env.start_client(imp.port, extra=metrics_args(cport))
    lib.wait_until(lambda: lib.tcp_port_open(cport) and lib.tcp_port_open(sport), 10,
                   "metrics ports")
    lib.wait_until(lambda: len(stats(cport)["sessions"]) == 1 and
                   stats(cport)["sessions"][0]["state"] == "up", 20, "the client's session up")
    ex = env.exchange_server()
    size = 4 * MiB

    # During: one stream half way through its request shows in the per-stream views.
    so = lib.socks_open(c.socks, LOOP, ex.addr[1], timeout=30)
    try:
        so.sendall(struct.pack("!QQQ", MiB, 0, 3))
        so.sendall(b"x" * (256 << 10))

        def moving(port, key):
            j = stats(port, streams=True)
            hit = [x for x in j["sessions"][0].get("streams", [])
                   if x[key] >= 256 << 10 and x["state"] == "open"]
            return hit and hit[0]
        st = lib.wait_until(lambda: moving(cport, "bytes_out"), 20,
                            "the stream's bytes out in the client's /stats?streams=1")
        for k in ("id", "state", "bytes_in", "bytes_out", "credit_tx", "credit_rx", "window",
                  "queued", "age_ms"):
            check(k in st, f"stream entry lacks {k}: {st}")
        check(st["id"] % 2 == 1 and st["state"] == "open", f"client stream {st}")
        sst = lib.wait_until(lambda: moving(sport, "bytes_in"), 20,
                             "the stream's bytes in in the server's /stats?streams=1")
        check(sst["id"] == st["id"] and sst["credit_rx"] >= 0, f"server stream {sst}")
        text, sm = prom(cport, streams=True)
        check(sample(sm, "sctpt_stream_bytes_total", session=str(stats(cport)["sessions"][0]["id"]),
                     stream=str(st["id"]), direction="out") >= 256 << 10,
              "no stream bytes in /metrics?streams=1")
        check(not any(k[0].startswith("sctpt_stream_") for k in prom(cport)[1]),
              "stream samples without ?streams=1")
    finally:
        so.close()
    t0 = time.monotonic()
    lib.exchange(c.socks, ex.addr, size, size, 77, timeout=60)
    lib.info(f"{size // MiB} MiB each way through impair in {time.monotonic() - t0:.1f}s")

    # After: one session each side, bytes and packets at least what was carried.
    for port, role, out_min, in_min in ((cport, "client", size, size),
                                        (sport, "server", size, size)):
        j = stats(port)
        p = j["process"]
        check(j["schema"] == 1, f"{role}: schema {j.get('schema')}")
        check(p["role"] == role and p["engine"] == "native", f"{role}: process {p}")
        check(len(j["sessions"]) == 1, f"{role}: {len(j['sessions'])} sessions")
        check(p["sessions"] == 1 and p["sessions_established"] == 1 and p["sessions_closed"] == 0,
              f"{role}: session counters {p}")
        check(p["connections_accepted"] == 2, f"{role}: connections_accepted {p}")
        ss = j["sessions"][0]
        check(ss["state"] == "up" and ss["id"] >= 1, f"{role}: session {ss}")
        check(ss["bytes_out"] >= out_min and ss["bytes_in"] >= in_min,
              f"{role}: bytes in/out {ss['bytes_in']}/{ss['bytes_out']} < {size}")
        check(ss["packets_out"] >= size // 1500 and ss["packets_in"] >= size // 1500,
              f"{role}: packets in/out {ss['packets_in']}/{ss['packets_out']}")
        for k in ("srtt_ms", "rttvar_ms", "rto_ms", "cwnd", "flight", "retransmissions",
                  "fast_retransmissions", "t3_expiries", "tlp_probes", "peer_rwnd"):
            check(k in ss, f"{role}: native session lacks {k}")
        check(ss["rto_ms"] >= 50 and ss["cwnd"] > 0, f"{role}: rto/cwnd {ss}")
        check(ss["srtt_ms"] >= 8, f"{role}: srtt {ss['srtt_ms']} ms over a 10 ms round trip")
        check(len(ss["paths"]) == 1 and ss["paths"][0] ["kind"] == "udp" and
              ss["paths"][0]["state"] == "active", f"{role}: paths {ss['paths']}")
        check(ss["streams_opened"] >= 1, f"{role}: streams_opened {ss}")
        no_addresses(json.dumps(j), f"{role} /stats")
        text, sm = prom(port)
        no_addresses(text, f"{role} /metrics")
        sid = str(ss["id"])
        check(sample(sm, "sctpt_sessions") == 1, f"{role}: sctpt_sessions")
        check(sample(sm, "sctpt_session_bytes_total", session=sid, direction="out") >= size,
              f"{role}: sctpt_session_bytes_total out")
        # the native engine's RTO floor is 50 ms, its default controller bbr
        check(sample(sm, "sctpt_session_rto_seconds", session=sid) >= 0.05, f"{role}: rto")
        check(sample(sm, "sctpt_info", role=role, engine="native", cc="bbr",
                     version=p["version"]) == 1, f"{role}: sctpt_info")
        check_recovery(ss, sm, role, "bbr", 8)
        # The two formats agree on counters that do not move while idle.
        check(sample(sm, "sctpt_connections_accepted_total") == p["connections_accepted"],
              f"{role}: accepted differs between formats")
    # The server's probe counters are there (zero here: nobody probed).
    p = stats(sport)["process"]
    check(p["handshakes"] >= 1 and set(p["probes_dropped"]) >= {"bad_hello", "source_limited"},
          f"server probe counters {p}")
    # The client's sent bytes are the server's received ones (same packets, lossless loopback).
    cs, ss = stats(cport)["sessions"][0], stats(sport)["sessions"][0]
    check(cs["packets_out"] // 2 <= ss["packets_in"] <= cs["packets_out"],
          f"client sent {cs['packets_out']} packets, server got {ss['packets_in']}")
    # 1% loss each way: somebody had to repair something.
    rep = sum(x["retransmissions"] + x["tlp_probes"] for x in (cs, ss))
    check(rep >= 1, f"no retransmission or probe under 1% loss: {cs} {ss}")
    # ... and some detector found the loss first: RACK, the 3-miss rule, a probe or T3.
    det = sum(x["rack_losses"] + x["fast_retransmissions"] + x["tlp_losses"] + x["t3_expiries"]
              for x in (cs, ss))
    check(det >= 1, f"no loss detected under 1% loss: {cs} {ss}")
    # Every SACK one end counted is one the other sent (impair drops, never duplicates); the
    # sender is read last, so its count cannot be behind.  At 1% loss most get through.
    for rx, txport, what in ((cs, sport, "server"), (ss, cport, "client")):
        sent = stats(txport)["sessions"][0]["sacks_sent"]
        check(sent // 2 <= rx["sacks_received"] <= sent,
              f"the {what} sent {sent} SACKs, the other end received {rx['sacks_received']}")
    imps = imp.stats()
    check(imps["c2s"]["dropped"] >= 1 and imps["s2c"]["dropped"] >= 1, f"impair dropped nothing: {imps}")
    lib.info(f"client session: srtt {cs['srtt_ms']} ms, rttvar {cs['rttvar_ms']} ms, rto "
             f"{cs['rto_ms']} ms, cwnd {cs['cwnd']}, {cs['packets_out']} packets out, "
             f"{cs['retransmissions']} retransmissions ({cs['tlp_probes']} TLP, "
             f"{cs['t3_expiries']} T3); server {ss['retransmissions']} retransmissions; impair "
             f"dropped {imps['c2s']['dropped']} c2s, {imps['s2c']['dropped']} s2c")
    for who, x in (("client", cs), ("server", ss)):
        lib.info(f"{who}: min_rtt {x['min_rtt_ms']} ms, reo_wnd {x['reo_wnd_ms']} ms; lost by "
                 f"rack {x['rack_losses']}, 3-miss {x['fast_retransmissions']}, tlp "
                 f"{x['tlp_losses']}, t3 {x['t3_expiries']}; spurious "
                 f"{x['spurious_retransmissions']} (rto {x['spurious_rtos']}), undos {x['undos']}; SACKs {x['sacks_sent']} sent, "
                 f"{x['sacks_received']} received; pacing {x['pacing_rate']} B/s, btl_bw "
                 f"{x['btl_bw']} B/s, delivery {x['delivery_rate']} B/s")


@lib.timeout(30)
def test_metrics_refuses_public_address(env):
    port = lib.free_port()
    for cmd in (["client", "--server", f"udp://{LOOP}:9", "--cert", env.cert],
                ["server", "--listen", f"udp://{LOOP}:{lib.free_port(udp=True)}",
                 "--key", env.key_path, "--proxy"]):
        rc, out, err = lib.run_cmd([lib.BIN] + cmd + ["--metrics", f"0.0.0.0:{port}"], 5)
        check(rc == 2 and "not a loopback address" in err and "--metrics-public" in err,
              f"{cmd[0]}: non-loopback --metrics: rc {rc}, {err.strip()[:200]!r}")
        rc, out, err = lib.run_cmd([lib.BIN] + cmd + ["--metrics", "10.1.2.3:9100"], 5)
        check(rc == 2 and "not a loopback address" in err, f"{cmd[0]}: 10.1.2.3: rc {rc}")
        rc, out, err = lib.run_cmd([lib.BIN] + cmd + ["--metrics", "localhost:x"], 5)
        check(rc == 2 and "bad --metrics" in err, f"{cmd[0]}: bad value: rc {rc}, {err!r}")
        rc, out, err = lib.run_cmd([lib.BIN] + cmd + ["--metrics-addresses"], 5)
        check(rc == 2 and "need --metrics" in err, f"{cmd[0]}: opt-in alone: rc {rc}, {err!r}")
    # The config file key is the long option's name.
    cfg = f"{env.dir}/c.json"
    with open(cfg, "w") as f:
        json.dump({"server": f"udp://{LOOP}:9", "cert": env.cert, "metrics": f"0.0.0.0:{port}"}, f)
    rc, out, err = lib.run_cmd([lib.BIN, "client", "-c", cfg], 5)
    check(rc == 2 and "not a loopback address" in err, f"config \"metrics\": rc {rc} {err!r}")


@lib.timeout(60)
def test_metrics_bad_requests(env):
    """Hostile requests get 4xx or are closed; the endpoint and the tunnel keep working."""
    s, c, sport, cport = start_pair(env)
    ex = env.exchange_server()
    cases = [
        (b"GARBAGE\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) + b"\n", 400),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 405),
        (b"GET /../etc/passwd HTTP/1.1\r\n\r\n", 404),
        (b"GET /metrics HTTP/1.1\r\n" + b"X-Big: " + b"a" * 8000 + b"\r\n\r\n", 413),
        (b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 100 + b"\r\n", 413),
        (b"GET /" + b"a" * 1000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET /metrics HTTP/3\r\n\r\n", 505),
    ]
    for req, want in cases:
        with socket.create_connection((LOOP, cport), timeout=10) as so:
            so.sendall(req)
            st, _, _ = read_response(so)
            check(st == want, f"{req[:40]!r}...: status {st}, want {want}")
    # An endless request line is cut off at the limit and answered.
    with socket.create_connection((LOOP, sport), timeout=10) as so:
        so.sendall(b"A" * 65536)
        st, _, _ = read_response(so)
        check(st == 413, f"endless request line: status {st}")
    # A flood beyond what is drained ends in a closed connection, not in memory use.
    with socket.create_connection((LOOP, sport), timeout=10) as so:
        sent = 0
        try:
            while sent < 64 * MiB:
                so.sendall(b"A" * 65536)
                sent += 65536
        except OSError:
            pass
        check(sent < 64 * MiB, "the endpoint swallowed 64 MiB of one request")
    # Slowloris: many connections that never finish their request.
    slow = []
    try:
        for _ in range(48):
            so = socket.create_connection((LOOP, cport), timeout=5)
            so.sendall(b"GET /metr")
            slow.append(so)
        # Scrapes still get through (the oldest unfinished connection gives way) ...
        for _ in range(5):
            check(stats(cport)["process"]["role"] == "client", "scrape during slowloris")
        # ... and the tunnel carries data as before.
        lib.exchange(c.socks, ex.addr, MiB, MiB, 5, timeout=30)
        # Every slow connection is closed within the request deadline (3 s) plus margin.
        t0 = time.monotonic()
        for so in slow:
            left = max(0.5, 10 - (time.monotonic() - t0))
            so.settimeout(left)
            try:
                while so.recv(4096):
                    pass
            except ConnectionResetError:
                pass
            except socket.timeout:
                raise lib.TestFailure("a slowloris connection was still open after 10 s")
    finally:
        for so in slow:
            so.close()
    check(c.alive() and s.alive(), "a process died")
    j = stats(cport)
    check(j["process"]["sessions_established"] == 1 and len(j["sessions"]) == 1,
          f"the session changed under the abuse: {j['process']}")
    st, _, body = http_get(cport, "/metrics", method="HEAD")
    check(st == 200 and body == b"", f"HEAD: {st}, {len(body)} body bytes")


@lib.timeout(40)
def test_metrics_addresses_opt_in(env):
    s, c, sport, cport = start_pair(env, server_more=("--metrics-addresses",),
                                    client_more=("--metrics-addresses",))
    ex = env.exchange_server()
    so = lib.socks_open(c.socks, LOOP, ex.addr[1], timeout=20)
    try:
        j = stats(cport, streams=True)
        ss = j["sessions"][0]
        check(ss["paths"][0].get("address") == f"{LOOP}:{s.port}",
              f"client path address with the opt-in: {ss['paths']}")
        check(any(x.get("destination") == f"{LOOP}:{ex.addr[1]}" for x in ss["streams"]),
              f"client stream destination with the opt-in: {ss['streams']}")
        js = stats(sport)
        check(js["sessions"][0].get("peer", "").startswith(LOOP + ":"),
              f"server peer with the opt-in: {js['sessions'][0]}")
        text, sm = prom(sport)
        check(any(k[0] == "sctpt_session_peer_info" for k in sm), "no sctpt_session_peer_info")
    finally:
        so.close()


@lib.timeout(40)
def test_metrics_usrsctp(env):
    """usrsctp fills what its socket API gives (srtt, rto, cwnd, peer window) and omits the rest."""
    s, c, sport, cport = start_pair(env, engine=("--sctp-engine", "usrsctp"))
    ex = env.exchange_server()
    lib.exchange(c.socks, ex.addr, MiB, MiB, 9, timeout=30)
    for port, role in ((cport, "client"), (sport, "server")):
        j = stats(port)
        check(j["process"]["engine"] == "usrsctp" and "cc" not in j["process"],
              f"{role}: process {j['process']}")
        ss = j["sessions"][0]
        for k in ("srtt_ms", "rto_ms", "cwnd", "peer_rwnd"):
            check(k in ss, f"{role}: usrsctp session lacks {k}: {ss}")
        for k in ("rttvar_ms", "flight", "retransmissions", "t3_expiries", "btl_bw") + RECOVERY:
            check(k not in ss, f"{role}: usrsctp session claims {k}")
        check(ss["bytes_out"] >= MiB and ss["bytes_in"] >= MiB, f"{role}: bytes {ss}")
        text, sm = prom(port)
        check(not any(k[0] == "sctpt_session_rttvar_seconds" for k in sm),
              f"{role}: rttvar sample from usrsctp")
        for fam in ("sctpt_session_cc_info", "sctpt_session_sacks_sent_total",
                    "sctpt_session_rack_losses_total", "sctpt_session_min_rtt_seconds",
                    "sctpt_session_pacing_rate_bytes_per_second",
                    "sctpt_session_delivery_rate_bytes_per_second"):
            check(fam not in text, f"{role}: {fam} from usrsctp")


@lib.timeout(40)
def test_metrics_controllers(env):
    """Each session names the controller it runs; the rates follow it: cubic paces and has no
    bottleneck estimate, newreno is not paced (pacing rate 0), both keep delivery samples.
    Through impair with 3 ms each way: cubic paces at a multiple of cwnd/srtt, and on bare
    loopback srtt is 0 ms (no rate to pace at)."""
    sport, cport = lib.free_port(), lib.free_port()
    s = env.start_server(proxy=True, allow=("127.0.0.0/8",),
                         extra=metrics_args(sport, "--congestion-control", "newreno"))
    imp = udp_impair(env, s.port, "--seed", "15", "--delay", "3")
    c = env.start_client(imp.port, extra=metrics_args(cport, "--congestion-control", "cubic"))
    lib.wait_until(lambda: lib.tcp_port_open(cport) and lib.tcp_port_open(sport), 10,
                   "metrics ports")
    lib.wait_until(lambda: len(stats(cport)["sessions"]) == 1 and
                   stats(cport)["sessions"][0]["state"] == "up", 20, "the client's session up")
    ex = env.exchange_server()
    lib.exchange(c.socks, ex.addr, 2 * MiB, 2 * MiB, 12, timeout=30)
    for port, role, cc in ((cport, "client", "cubic"), (sport, "server", "newreno")):
        j = stats(port)
        check(j["process"]["cc"] == cc, f"{role}: process cc {j['process']}")
        text, sm = prom(port)
        check_recovery(j["sessions"][0], sm, role, cc, 5)


@lib.timeout(40)
def test_metrics_faults(env):
    """Fault injection: a snapshot that cannot be taken is a 503, a connection that cannot get
    its timer or buffer is closed; the next scrape and the tunnel are fine."""
    if os.environ.get("SCTPT_FAULT_BUILD") != "1":
        lib.info("needs a -Dfault_injection build (SCTPT_FAULT_BUILD=1); nothing to test")
        return
    s = env.start_server(proxy=True, allow=("127.0.0.0/8",))
    cport = lib.free_port()
    os.environ["SCTPT_FAULT"] = ("metrics_snapshot:1,metrics_evtimer_new:2,"
                                 "metrics_bufferevent_new:3")
    try:
        c = env.start_client(s.port, extra=metrics_args(cport))
    finally:
        del os.environ["SCTPT_FAULT"]
    check(c.wait_log("metrics on http://", 10), "no metrics endpoint")
    st, _, body = http_get(cport, "/stats")
    check(st == 503, f"failed snapshot: status {st}")
    for what in ("timer", "buffer"):
        with socket.create_connection((LOOP, cport), timeout=5) as so:
            try:
                so.sendall(b"GET /stats HTTP/1.1\r\n\r\n")
                got = so.recv(100)
            except (ConnectionResetError, BrokenPipeError):
                got = b""
            check(got == b"", f"no {what}: the connection got an answer {got!r}")
    check(stats(cport)["process"]["role"] == "client", "scrape after the faults")
    ex = env.exchange_server()
    lib.exchange(c.socks, ex.addr, MiB, MiB, 11, timeout=30)
    check(c.alive(), "client died")


@lib.timeout(60)
def test_metrics_path_failover(env):
    """Path states follow a failover: UDP active and TCP standby, then the UDP path goes dark
    and the client's view shows it failed and TCP active; the server's session is on TCP."""
    uport, tport = lib.free_port(udp=True), lib.free_port()
    sport, cport = lib.free_port(), lib.free_port()
    srv = env.spawn("server", [lib.BIN, "server", "--key", env.key_path, "--proxy", "--allow",
                               "127.0.0.0/8", "--listen", f"udp://{LOOP}:{uport}",
                               "--listen", f"tcp://{LOOP}:{tport}"] + metrics_args(sport))
    check(srv.wait_log("metrics on", 15), f"server did not start: {srv.tail()}")
    dead = {"on": False}
    relay = env.add(lib.UdpRelay(uport, c2s=lambda f, d: None if dead["on"] else d,
                                 s2c=lambda f, d: None if dead["on"] else d))
    socks = lib.free_port()
    c = env.spawn("client", [lib.BIN, "client", "--cert", env.cert, "--socks", f"{LOOP}:{socks}",
                             "--server", f"udp://{LOOP}:{relay.port}",
                             "--server", f"tcp://{LOOP}:{tport}", "--path-timeout", "1000"]
                  + metrics_args(cport))
    check(c.wait_log("association up", 20), f"client: no association\n{c.tail()}")
    lib.wait_until(lambda: lib.tcp_port_open(cport), 10, "client metrics port")

    def states(port):
        ss = stats(port)["sessions"]
        return [(p["kind"], p["state"]) for p in ss[0]["paths"]] if ss else []
    check(states(cport) == [("udp", "active"), ("tcp", "standby")], f"at start: {states(cport)}")
    check(states(sport) == [("udp", "active")], f"server at start: {states(sport)}")
    dead["on"] = True
    lib.wait_until(lambda: states(cport) == [("udp", "failed"), ("tcp", "active")], 20,
                   "the client's view: UDP failed, TCP active")
    lib.wait_until(lambda: states(sport) == [("tcp", "active")], 20,
                   "the server's session on TCP")
    text, sm = prom(cport)
    sid = str(stats(cport)["sessions"][0]["id"])
    check(sample(sm, "sctpt_session_path_info", session=sid, path="0", kind="udp",
                 state="failed") == 1, "Prometheus: path 0 not failed")
    check(sample(sm, "sctpt_session_path_info", session=sid, path="1", kind="tcp",
                 state="active") == 1, "Prometheus: path 1 not active")
    ex = env.exchange_server()
    lib.exchange(socks, ex.addr, MiB, MiB, 21, timeout=30)
    check(stats(cport)["process"]["sessions_established"] == 1, "the association was re-made")


@lib.timeout(40)
def test_metrics_refusal_counters(env):
    """Refusals and probes are counted by reason, on the side that saw them."""
    s, c, sport, cport = start_pair(env)
    closed = lib.free_port()
    try:
        lib.socks_open(c.socks, LOOP, closed, timeout=10).close()
        raise lib.TestFailure("a connection to a closed port succeeded")
    except lib.SocksError as e:
        check(e.code == 5, f"closed port: SOCKS reply {e.code}")
    try:
        lib.socks_open(c.socks, LOOP, 0, timeout=10).close()
        raise lib.TestFailure("a connection to port 0 succeeded")
    except lib.SocksError as e:
        check(e.code == 2, f"port 0: SOCKS reply {e.code}")
    with socket.create_connection((LOOP, c.socks), timeout=5) as so:
        so.sendall(b"\x09garbage\r\n\r\n")
        so.settimeout(5)
        try:
            while so.recv(100):
                pass
        except OSError:
            pass
    # A probe: junk at the server's UDP port gets no answer and is counted.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        for _ in range(3):
            u.sendto(bytes(range(200)), (LOOP, s.port))
    lib.wait_until(lambda: sum(stats(sport)["process"]["probes_dropped"].values()) >= 3, 10,
                   "three probes counted by the server")
    rc = lib.wait_until(lambda: (lambda r: r if r["bad_request"] >= 1 else None)(
        stats(cport)["process"]["connections_refused"]), 10, "the client's bad_request")
    check(rc["connection_refused"] == 1 and rc["not_allowed"] == 1 and rc["bad_request"] == 1
          and sum(rc.values()) == 3, f"client refusals {rc}")
    rs = stats(sport)["process"]["connections_refused"]
    check(rs["connection_refused"] == 1 and sum(rs.values()) == 1, f"server refusals {rs}")
    text, sm = prom(cport)
    check(sample(sm, "sctpt_connections_refused_total", reason="bad_request") == 1,
          "Prometheus: bad_request")
    check(stats(cport)["process"]["connections_accepted"] == 0, "accepted counted a refusal")


@lib.timeout(40)
def test_metrics_managed_server(env):
    """A tor bridge: `ServerTransportOptions sctp metrics=127.0.0.1:PORT` serves the same
    endpoint; a non-loopback address is an SMETHOD-ERROR."""
    import test_managed as tm

    mport = lib.free_port()
    ext = env.add(tm.ExtOrServer(os.path.join(env.dir, "cookie")))
    srv = tm.start_pt_server(env, extor=ext.port, cookie=ext.cookie_path,
                             options=f"sctp:metrics={LOOP}:{mport}")
    cli = tm.start_pt_client(env)
    s, code = tm.tor_socks(cli.socks, srv.port, f"cert={srv.cert}")
    check(code == 0, f"SOCKS code {code}\n{cli.tail()}")
    tm.echo_check(s)
    j = stats(mport)
    check(j["process"]["role"] == "server" and len(j["sessions"]) == 1 and
          j["process"]["connections_accepted"] == 1, f"managed server stats {j['process']}")
    no_addresses(json.dumps(j), "managed /stats")
    s.close()
    rc, out, err = tm.run_once({"TOR_PT_MANAGED_TRANSPORT_VER": "1",
                                "TOR_PT_STATE_LOCATION": os.path.join(env.dir, "st"),
                                "TOR_PT_SERVER_TRANSPORTS": "sctp", "TOR_PT_ORPORT": "127.0.0.1:9",
                                "TOR_PT_SERVER_BINDADDR": f"sctp-127.0.0.1:{lib.free_port(udp=True)}",
                                "TOR_PT_SERVER_TRANSPORT_OPTIONS": f"sctp:metrics=0.0.0.0:{mport}"})
    check(rc != 0 and "SMETHOD-ERROR sctp" in out and "metrics" in out,
          f"public metrics= accepted: rc={rc} out={out!r}")
