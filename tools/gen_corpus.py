#!/usr/bin/env python3
"""Write the seed corpora of the fuzz harnesses: tests/fuzz/corpus/NAME/.

Seeds come from the documents and the unit tests, so that each harness
starts next to the inputs that matter instead of from nothing:

  - docs/PROTOCOL.md's test vectors (HELLO, REPLY, data packets, cert=);
  - docs/streams.md's message layouts (OPEN of every address type, CREDIT,
    RST, OPEN_OK);
  - the byte strings the unit tests feed the same parsers (tests/unit/*.c),
    read from their C string literals.

Each seed is shaped for its harness: where a harness reads a selector byte
first (fuzz_pt, fuzz_proxy, fuzz_wire's mode), the seed carries the right
one.  The output is deterministic.  Files this script writes are named
gen-*; it removes its old gen-* files first and leaves every other file
alone (inputs kept from fuzzing runs, crash reproducers).

Usage: tools/gen_corpus.py [--out tests/fuzz/corpus] [--check]
  --check   write nothing; exit 1 if the committed corpus differs.
Python 3 standard library only.
"""

import argparse
import hashlib
import os
import random
import re
import struct
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     os.pardir))
MAX_SEED = 4096          # bytes per seed
MAX_SEEDS = 400          # seeds per harness

# --------------------------------------------------------------- C literals

ESCAPES = {"n": 10, "t": 9, "r": 13, "0": 0, "a": 7, "b": 8, "f": 12, "v": 11,
           "\\": 92, '"': 34, "'": 39, "?": 63, "e": 27}


def c_unescape(body):
    """The bytes of one C string literal's body (between the quotes)."""
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        i += 1
        e = body[i]
        if e == "x":
            j = i + 1
            while j < len(body) and body[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(int(body[i + 1:j], 16) & 0xff)
            i = j
        elif e in "01234567":
            j = i
            while j < len(body) and j < i + 3 and body[j] in "01234567":
                j += 1
            out.append(int(body[i:j], 8) & 0xff)
            i = j
        else:
            out.append(ESCAPES.get(e, ord(e)))
            i += 1
    return bytes(out)


TOKEN_RE = re.compile(r'''
    (?P<comment>/\*.*?\*/|//[^\n]*)
  | (?P<pp>^[ \t]*\#[^\n]*(?:\\\n[^\n]*)*)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<char>'(?:[^'\\\n]|\\.)*')
  | (?P<id>[A-Za-z_]\w*)
  | (?P<punct>[(){};,])
  | (?P<other>\S)
''', re.X | re.S | re.M)

DEFINE_RE = re.compile(r'^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+((?:"(?:[^"\\\n]|\\.)*"[ \t]*)+)',
                       re.M)
WRAPPERS = {"B", "S", "sizeof", "strlen", "U8", "(cast)"}


def literals(path):
    """(function, call, bytes) for each run of adjacent string literals in a
    C file: call is the innermost call the literal is an argument of
    (wrapper macros such as B() skipped), function the one it is in."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    macros = {}
    for m in DEFINE_RE.finditer(text):
        macros[m.group(1)] = b"".join(c_unescape(s) for s in
                                      re.findall(r'"((?:[^"\\\n]|\\.)*)"', m.group(2)))
    out = []
    stack = []
    depth = 0
    func = None
    last_id = None
    pending = None          # the run of literals being collected
    for m in TOKEN_RE.finditer(text):
        kind = m.lastgroup
        tok = m.group(kind)
        if kind in ("comment", "pp"):
            continue
        if kind == "str" or (kind == "id" and tok in macros):
            piece = c_unescape(tok[1:-1]) if kind == "str" else macros[tok]
            pending = (pending or b"") + piece
            continue
        if pending is not None:
            owner = next((c for c in reversed(stack) if c not in WRAPPERS), None)
            out.append((func, owner, pending))
            pending = None
        if kind == "id":
            last_id = tok
            continue
        if tok == "(":
            stack.append(last_id if last_id else "(cast)")
            if depth == 0 and len(stack) == 1:
                func = last_id
        elif tok == ")":
            if stack:
                stack.pop()
        elif tok == "{":
            depth += 1
        elif tok == "}":
            depth = max(0, depth - 1)
        last_id = None
    return out


def unit(name):
    return literals(os.path.join(ROOT, "tests", "unit", name))


# ---------------------------------------------------------------- documents

def protocol_vectors():
    """name -> value of the test-vector block of docs/PROTOCOL.md."""
    with open(os.path.join(ROOT, "docs", "PROTOCOL.md"), encoding="utf-8") as f:
        text = f.read()
    block = text.split("## Test vectors", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    vec = {}
    for line in block.strip().splitlines():
        k, v = line.split(":", 1)
        vec[k.strip()] = v.strip()
    return vec


def stream_messages():
    """Control payloads laid out as docs/streams.md describes them."""
    with open(os.path.join(ROOT, "docs", "streams.md"), encoding="utf-8") as f:
        text = f.read()
    # The table must still say what this builds; fail loudly if it moved.
    for needle in ("`ver=1` (1) · `type` (1) · address · `port` (2)",
                   "`increment` (4), non-zero", "`code` (1)"):
        if needle not in text:
            sys.exit("gen_corpus: docs/streams.md no longer has %r" % needle)
    port = struct.pack(">H", 443)
    msgs = [
        b"\x01\x00\x00\x00",                                    # OPEN, fixed target
        b"\x01\x01" + bytes([192, 0, 2, 1]) + port,             # IPv4
        b"\x01\x04" + bytes(range(0x20, 0x30)) + port,          # IPv6
        b"\x01\x03\x0bexample.com" + port,                      # domain
        b"\x01\x03\x01a" + port,
        b"\x01\x03\xff" + b"a" * 255 + port,
        b"\x01\x02\x00\x00",                                    # unknown type
        b"\x01\x01\x7f\x00\x00\x01\x00\x00",                    # port 0
        b"\x02\x01\x7f\x00\x00\x01\x00\x50",                    # version 2
        b"\x00",                                                # OPEN_OK, CLOSE
        b"\x00\x00\x80\x00", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x00",  # CREDIT
        b"\x01", b"\x08", b"\x11",                              # RST codes
    ]
    return msgs


# ---------------------------------------------------------------- harnesses

def socks_seeds():
    seeds = []
    by_func = {}
    for func, call, data in unit("test_socks.c"):
        if call in ("step", "expect_error", "memcpy"):
            seeds.append(data)
            if call == "step":
                by_func.setdefault(func, []).append(data)
    # A whole negotiation as one client sends it.
    seeds += [b"".join(parts) for parts in by_func.values() if len(parts) > 1]
    seeds += [
        b"\x05\x01\x00" b"\x05\x01\x00\x03\x0bexample.com\x01\xbb",
        b"\x05\x01\x00" b"\x05\x01\x00\x04" + bytes(15) + b"\x01\x00\x50",
        b"\x05\x01\x02" b"\x01\x04user\x04pass" b"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50",
        b"\x04\x01\x00\x50\x7f\x00\x00\x01user\x00",
        b"\x04\x01\x00\x50\x00\x00\x00\x01\x00example.com\x00",
    ]
    return seeds


def proto_seeds():
    seeds = [d for _, call, d in unit("test_proto.c")
             if call and call.startswith(("decode_", "proto_"))]
    seeds += stream_messages()
    # Runs of the credit accounting: an operation byte, then its arguments.
    rng = random.Random(9)
    for n in (8, 32, 128):
        for _ in range(4):
            seeds.append(bytes(rng.randrange(256) for _ in range(n)))
    seeds.append(bytes([0, 0xff, 0xff, 0xff, 0x05, 0xb4] + [1, 0x00, 0x10, 0x00] +
                       [2, 0x00, 0x08, 0x00] + [3] + [4] + [5]))
    return seeds


def wire_seeds():
    vec = protocol_vectors()
    hello = bytes.fromhex(vec["hello"])
    reply = bytes.fromhex(vec["reply"])
    pkts = [bytes.fromhex(vec[k]) for k in
            ("c2s_packet_0_pad4", "c2s_packet_1_pad0", "c2s_packet_4_shift2")]
    sctp = bytes.fromhex(vec["sctp_packet"])
    seeds = [hello, reply] + pkts
    # Mode 0/1/2: XORed onto the genuine HELLO, REPLY, packet i; all zeros
    # is the genuine one (accepted), one flipped bit must be refused.
    for mode, orig in ((0, hello), (1, reply)):
        seeds.append(bytes([mode]) + bytes(len(orig)))
        flip = bytearray(len(orig))
        flip[len(orig) // 2] = 0x01
        seeds.append(bytes([mode]) + bytes(flip))
        seeds.append(bytes([mode]) + bytes(len(orig) - 1))
    for i, p in enumerate(pkts):
        seeds.append(bytes([2, i]) + bytes(len(p)))
        seeds.append(bytes([2, i]) + bytes(len(p) - 1) + b"\x80")
    # Mode 3: seal and open; two bytes of padding length and epoch, one of
    # where to flip a bit, then the plaintext.
    seeds.append(bytes([3, 0x01, 0x41, 0x07]) + sctp)
    seeds.append(bytes([3, 0x00, 0x05, 0x10]) + sctp[:1])
    # The whole input is also read as cert= and as addresses.
    seeds.append(vec["cert"].encode())
    seeds.append(vec["cert"].encode() + b"==")
    for _, call, d in unit("test_netaddr.c"):
        if d and all(32 <= b < 127 for b in d) and any(c in d for c in b":./"):
            seeds.append(d)
    seeds += [b"udp://127.0.0.1:4433", b"tcp://[::1]:443", b"10.0.0.0/8",
              b"2001:db8::/32", b"example.com:443"]
    return seeds


def pt_env_tables():
    """The client and server TOR_PT_* tables of test_pt.c, and its overrides."""
    with open(os.path.join(ROOT, "tests", "unit", "test_pt.c"), encoding="utf-8") as f:
        text = f.read()
    pair = re.compile(r'\{\s*"(TOR_PT_\w+)",\s*((?:"(?:[^"\\\n]|\\.)*"\s*)+|UNSET)\s*\}')

    def val(v):
        if v == "UNSET":
            return None
        return b"".join(c_unescape(s) for s in re.findall(r'"((?:[^"\\\n]|\\.)*)"', v))

    pairs = [(m.group(1), val(m.group(2))) for m in pair.finditer(text)]
    return pairs


ENV_NAMES = ["TOR_PT_MANAGED_TRANSPORT_VER", "TOR_PT_STATE_LOCATION",
             "TOR_PT_CLIENT_TRANSPORTS", "TOR_PT_SERVER_TRANSPORTS",
             "TOR_PT_EXIT_ON_STDIN_CLOSE", "TOR_PT_PROXY",
             "TOR_PT_OUTBOUND_BIND_ADDRESS_V4", "TOR_PT_OUTBOUND_BIND_ADDRESS_V6",
             "TOR_PT_SERVER_BINDADDR", "TOR_PT_ORPORT", "TOR_PT_EXTENDED_SERVER_PORT",
             "TOR_PT_AUTH_COOKIE_FILE", "TOR_PT_SERVER_TRANSPORT_OPTIONS"]


def env_seed(env):
    """fuzz_pt target 1: error-buffer byte, then the values in ENV_NAMES
    order, NUL-separated, "\\xff" for unset."""
    vals = [env.get(n) for n in ENV_NAMES]
    return b"\x01\x0f" + b"\0".join(b"\xff" if v is None else v for v in vals)


def pt_seeds():
    seeds = []
    # 0: per-bridge arguments (a length byte splits user and password).
    args = [d for _, call, d in unit("test_pt.c") if call == "args"]
    args += [b"cert=AAAA;iat-mode=0", b"a=1;b=\\;;c=\\\\"]
    for a in args:
        seeds.append(b"\x00" + bytes([min(len(a), 255)]) + a)
        seeds.append(b"\x00" + bytes([len(a) // 2]) + a)
    # 1: the environment tor gives a managed transport.
    pairs = pt_env_tables()
    client, server = {}, {}
    for k, v in pairs[:4]:
        client[k] = v
    for k, v in pairs[4:11]:
        server[k] = v
    seeds.append(env_seed(client))
    seeds.append(env_seed(server))
    for k, v in pairs[11:]:
        base = client if "SERVER" not in k and "ORPORT" not in k else server
        seeds.append(env_seed(dict(base, **{k: v})))
    # 2: quoting for SMETHOD lines, with the output size first.
    for s in (b"simple", b'with "quotes" and \\ back', b"new\nline\ttab",
              b"cert=AAAA,iat-mode=0", b"\xff\x01\x7f"):
        seeds.append(b"\x02\x08" + s)
        seeds.append(b"\x02\xff" + s)
    # 3: what tor's Extended ORPort sends, and cookie files.
    seeds.append(b"\x03\x01\x00" + bytes(range(64)) + b"\x01")
    seeds.append(b"\x03\x02\x00")
    seeds.append(b"\x03! Extended ORPort Auth Cookie !\n" + bytes(range(32)))
    for _, call, d in unit("test_extor.c"):
        if call in ("add", "checked_step", "step") and d:
            seeds.append(b"\x03" + d)
    # 4: replies after a good SAFE_COOKIE exchange (OKAY, DENY, others).
    for r in (b"\x10\x00\x00\x00", b"\x10\x01\x00\x00", b"\x10\x00\x00\x02ab",
              b"\x10\x02\x00\x00", b"\x10", b"\x00\x00\x00\x00"):
        seeds.append(b"\x04" + r)
    return seeds


def proxy_seeds():
    seeds = []
    replies = []
    for _, call, d in unit("test_proxy.c"):
        if call in ("both", "expect_fail", "proxy_neg_step") and d:
            replies.append(d)
        elif call == "socks5_udp_parse" and d:
            seeds.append(d)
        elif d.startswith(b"HTTP/"):
            replies.append(d)
    replies += [b"\x05\x00\x05\x00\x00\x01\x7f\x00\x00\x01\x1f\x90",
                b"\x05\x02\x01\x00\x05\x00\x00\x01\x7f\x00\x00\x01\x1f\x90",
                b"\x00\x5a\x00\x00\x00\x00\x00\x00",
                b"HTTP/1.1 200 Connection established\r\n\r\n",
                b"HTTP/1.0 200 OK\r\nProxy-Agent: x\r\n\r\n"]
    # Selector: bits 0-2 the proxy URL (0/1 socks5, 2/3 socks4a, 4/5 http,
    # 6 socks5 v6 proxy, 7 http v6 proxy), 0x10 UDP ASSOCIATE, 0x20 an IPv6
    # destination.
    for r in replies:
        if r[:1] == b"\x05":
            sels = (0x00, 0x01, 0x10, 0x26)
        elif r[:1] in (b"\x00", b"\x04"):
            sels = (0x02, 0x03)
        elif r[:1] == b"H":
            sels = (0x04, 0x05, 0x27)
        else:
            sels = (0x00, 0x04)
        for s in sels:
            seeds.append(bytes([s]) + r)
    return seeds


def srclimit_seeds():
    """Op sequences for fuzz_srclimit (its header comment has the format)."""
    def v4(a, b, c, d):
        return bytes([0, a, b, c, d])

    def v6(prefix48, sub, iid):
        return bytes([1]) + struct.pack("!6sH8s", prefix48, sub, iid)

    seeds = []
    # one host, many ports: pending caps, then expiry
    s = b"".join(b"\x01" + v4(192, 0, 2, 1) + bytes([o, 0]) for o in range(8))
    seeds.append(s + b"\x05\x03" + s)
    # every slot pending from different /24s, then a newcomer once they had their grace
    s = b"".join(b"\x01" + v4(10, i, 0, 1) + bytes([i, 0]) for i in range(30))
    seeds.append(s + b"\x04\x16" + b"\x01" + v4(203, 0, 113, 9) + bytes([40, 0]) + b"\x03")
    # some authenticate, some are established peers
    s = b"".join(b"\x01" + v4(10, i, 1, 1) + bytes([i, i % 8]) for i in range(20))
    seeds.append(s + b"".join(bytes([2, i]) for i in range(0, 20, 3)) + b"\x04\xff\x03")
    # handshake buckets: one host, one /24, IPv6 /64 and /48, mapped, AF_UNIX
    seeds.append((b"\x00" + v4(198, 51, 100, 7)) * 40 + b"\x04\x0a" +
                 (b"\x00" + v4(198, 51, 100, 7)) * 5)
    seeds.append(b"".join(b"\x00" + v4(198, 51, 100, h) for h in range(1, 140)))
    seeds.append(b"".join(b"\x00" + v6(b"\x20\x01\x0d\xb8\x00\x01", h, b"\0" * 7 + b"\x01")
                          for h in range(1, 60)))
    seeds.append((b"\x00\x02\xc0\x00\x02\x09" + b"\x00" + v4(192, 0, 2, 9)) * 20)
    seeds.append(b"\x00\x03" * 40 + b"\x01\x03\x05\x00")
    # a spoofed flood through the small table, then the first host again
    seeds.append(b"\x00" + v4(203, 0, 113, 5) + b"\x06" * 300 + b"\x04\x20" +
                 b"\x00" + v4(203, 0, 113, 5))
    return seeds


def http_seeds():
    seeds = [data for _, call, data in unit("test_http.c") if call == "parse"]
    seeds += [
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
        b"Proxy-Authorization: Basic eDp5\r\n\r\n\x16\x03\x01",
        b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/7.88.1\r\n"
        b"Accept: */*\r\nProxy-Connection: Keep-Alive\r\n\r\n",
        b"POST http://[2001:db8::1]:8080/up?x=1 HTTP/1.1\r\nContent-Length: 4\r\n"
        b"Connection: keep-alive, X-A\r\nX-A: 1\r\n\r\nbody",
        b"GET http://h/ HTTP/1.1\r\n" + b"".join(b"X%d: v\r\n" % i for i in range(99)) + b"\r\n",
        b"GET http://h/ HTTP/1.1\n" + b"A:\n" * 99 + b"\n",
    ]
    return seeds


def sharelink_seeds():
    """Share links (docs/share-links.md): good ones of every shape, and the
    rejections of tests/unit/test_sharelink.c that sit one byte from good."""
    c = b"sctpt://B6N8vBQgk8i3VdwbEOhstCY3StFqqFPtC9_AsrhtHHxAQUJDREVGR0hJSktMTU5P"
    tails = [
        b"?udp=203.0.113.5:4433&tcp=[2001:db8::1]:443&udp=bridge.example.org:53"
        b"#my%20bridge%20%E2%9C%93",
        b"?udp=1.2.3.4:1", b"/?tcp=1.2.3.4:65535", b"?udp=%5B::1%5D:9", b"?udp=1.2.3.4:9#",
        b"?udp=1.2.3.4:9&x-future=a%20b", b"?udp=1.2.3.4:9#a/b?c:d@e!$&'()*+,;=",
        b"?udp=1.2.3.4:9&udp=1.2.3.4:9", b"?udp=[fe80::1%25eth0]:9", b"?udp=1.2.3.4:9#%C0%AF",
        b"?udp=1.2.3.4:65536", b"?udp=1.2.3.999:9", b"?udp=1.2.3.4:9%4", b"?UDP=1.2.3.4:9",
        b"?" + b"&".join(b"udp=1.2.3.4:%d" % i for i in range(1, 10)), b"",
        # port ranges (port hopping, issue 16)
        b"?udp=203.0.113.5:4000-4100&tcp=203.0.113.5:443", b"?udp=[::1]:1-1024",
        b"?udp=1.2.3.4:1-1025", b"?tcp=1.2.3.4:5-9", b"?udp=1.2.3.4:9-5",
        b"?udp=1.2.3.4:5-9&udp=1.2.3.4:5", b"?udp=1.2.3.4:05-9",
    ]
    return [c + t for t in tails] + [b"sctpt://", b"SCTPT://" + c[8:] + b"?tcp=a-b.c:9"]


def fwd_seeds():
    """Forwards (docs/forwarding.md): selector byte 0 LISTEN, 1 FWD_OPEN,
    2 LISTEN_OK, 3 a -L/-R/--permit-listen string (its first byte the kind)."""
    listen = [b"\x01\x00\x00\x00\x07\x00\x00\x1f\x90",
              b"\x01\xde\xad\xbe\xef\x01\x01\x00\x00\x00\x00\x00\x00",
              b"\x01\x00\x00\x00\x01\x00\x04" + b"\x00" * 15 + b"\x01\x00\x01",
              b"\x01\x00\x00\x00\x01\x02\x00\x1f\x90", b"\x01\x00\x00\x00\x01\x00\x03\x1f\x90"]
    fwd_open = [b"\x00\x00\x00\x03\x01\x00\x00\x00",
                b"\x00\x00\x00\x01\x01\x03\x0bexample.org\x01\xbb",
                b"\x00\x00\x00\x01\x01\x01\x7f\x00\x00\x01\x1f\x90",
                b"\x00\x00\x00\x01\x01\x04" + b"\x00" * 15 + b"\x01\x00\x16",
                b"\x00\x00\x00\x01\x01\x09\x00\x01"]
    specs = [b"\x008080:example.org:80", b"\x00[::1]:2222:[2001:db8::1]:22",
             b"\x00*:0:localhost:22", b"\x00127.0.0.2:1:10.0.0.1:65535", b"\x008080:host:0",
             b"\x010", b"\x01*:1080", b"\x01[::]:1080", b"\x010.0.0.0:8080:127.0.0.1:80",
             b"\x028080", b"\x02*", b"\x02localhost:*", b"\x02[::1]:0", b"\x01[::1:80:h:80"]
    return ([b"\x00" + m for m in listen] + [b"\x01" + m for m in fwd_open] +
            [b"\x02\x9c\x40", b"\x02\x00\x00"] + [b"\x03" + m for m in specs])


def prefix_seeds():
    """--prefix (fuzz_prefix.c): mode 0 specs good and one byte from good, mode 1 a few
    datagram shapes, mode 2 XOR masks onto the genuine prefixed HELLO (all zero: accepted;
    flips in the prefix, the length byte and the MAC)."""
    specs = [b"tls", b"http-get", b"http-post", b"dns", b"ssh", b"hex:160301", b"hex:0",
             b"hex:" + b"ab" * 64, b"hex:" + b"ab" * 65, b"GET / HTTP/1.1\\r\\n",
             b"a\\x00b\\\\c\\t", b"a\\x4", b"a\\q", b"a\\", b"x" * 64, b"x" * 65,
             b"\\x41" * 64, b"caf\xc3\xa9", b"tls1", b""]
    seeds = [b"\x00" + sp for sp in specs]
    seeds += [b"\x01" + bytes(n) for n in (0, 88, 90, 200, 1400, 1401)]
    hello_len = 11 + 88 + 9 + 1
    seeds.append(b"\x02" + bytes(hello_len))
    for i in (0, 10, 11, hello_len - 17, hello_len - 1):
        m = bytearray(hello_len)
        m[i] = 1
        seeds.append(b"\x02" + bytes(m))
    seeds.append(b"\x02" + bytes(hello_len - 1))
    seeds += [b"\x03" + r for r in (b"4000-4100", b"1-1024", b"1-1025", b"5-5", b"6-5",
                                      b"01-5", b"5-", b"-5", b"1-65535", b"65534-65535",
                                      b"65535-65536", b"5-6-7")]
    seeds += [b"\x04" + r for r in (b"GET / HTTP/1.1\r\n", b"\x16\x03\x01", bytes(84),
                                      bytes(range(100)), b"x")]
    return seeds


HARNESSES = {
    "socks": socks_seeds,
    "http": http_seeds,
    "proto": proto_seeds,
    "wire": wire_seeds,
    "pt": pt_seeds,
    "proxy": proxy_seeds,
    "srclimit": srclimit_seeds,
    "sharelink": sharelink_seeds,
    "fwd": fwd_seeds,
    "prefix": prefix_seeds,
}


# ---------------------------------------------------------------- output

def unique(seeds):
    seen = set()
    out = []
    for s in seeds:
        s = bytes(s[:MAX_SEED])
        if s and s not in seen:
            seen.add(s)
            out.append(s)
    return out[:MAX_SEEDS]


def planned():
    """dir name -> {file name: bytes}."""
    plan = {}
    for name, fn in HARNESSES.items():
        files = {}
        for i, s in enumerate(unique(fn())):
            files["gen-%03d-%s" % (i, hashlib.sha1(s).hexdigest()[:8])] = s
        plan[name] = files
    return plan


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fuzz", "corpus"))
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if the committed corpus is not what this writes")
    args = ap.parse_args(argv)
    plan = planned()
    differ = []
    total = 0
    for name, files in sorted(plan.items()):
        d = os.path.join(args.out, name)
        old = {f for f in os.listdir(d) if f.startswith("gen-")} if os.path.isdir(d) else set()
        for f, data in files.items():
            path = os.path.join(d, f)
            try:
                with open(path, "rb") as fh:
                    same = fh.read() == data
            except OSError:
                same = False
            if not same:
                differ.append(path)
        differ += [os.path.join(d, f) for f in sorted(old - set(files))]
        size = sum(len(v) for v in files.values())
        total += size
        print("%-6s %4d seeds, %6d bytes" % (name, len(files), size))
        if args.check:
            continue
        os.makedirs(d, exist_ok=True)
        for f in old - set(files):
            os.remove(os.path.join(d, f))
        for f, data in files.items():
            with open(os.path.join(d, f), "wb") as fh:
                fh.write(data)
    print("total  %d bytes" % total)
    if args.check and differ:
        for p in differ[:20]:
            print("differs: %s" % os.path.relpath(p), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
