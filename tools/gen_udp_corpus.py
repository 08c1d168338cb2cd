#!/usr/bin/env python3
"""Write the seed corpus of fuzz_udp (tests/fuzz/corpus/udp/seed-*).

The first byte selects the harness mode (fuzz_udp.c): 0 a SOCKS5 UDP request
header (RFC 1928 section 7), 1 a tunnel datagram header (docs/streams.md), 2/3
a server/client mux session driven by records.  Standard library only; run
from anywhere:  python3 tools/gen_udp_corpus.py
"""
import os
import struct

OPEN, RST, CLOSE, CREDIT = 1, 6, 7, 5
UDP_OPEN, UDP_OK, UDP_DGRAM = 12, 13, 14
SOCKS, TUNNEL, SERVER, CLIENT = b"\x00", b"\x01", b"\x02", b"\x03"


def socks_hdr(atyp, addr, port, frag=0, rsv=b"\x00\x00"):
    return rsv + bytes([frag, atyp]) + addr + struct.pack(">H", port)


def tun_hdr(atyp, addr, port):
    return bytes([atyp]) + addr + struct.pack(">H", port)


def name(s):
    return bytes([len(s)]) + s


def msg(sid, ppid, payload):
    return bytes([0x00, sid, ppid]) + struct.pack(">H", len(payload)) + payload


def part(sid, ppid, payload):
    return bytes([0x08, sid, ppid, len(payload)]) + payload


def seeds():
    v4, v6 = b"\x7f\x00\x00\x01", b"\x00" * 15 + b"\x01"
    out = {}
    # SOCKS headers: valid, fragments, bad RSV, types, truncations, port 0.
    out["socks-v4"] = SOCKS + socks_hdr(1, v4, 53) + b"query"
    out["socks-v6"] = SOCKS + socks_hdr(4, v6, 53) + b"q"
    out["socks-name"] = SOCKS + socks_hdr(3, name(b"example.org"), 443)
    out["socks-name255"] = SOCKS + socks_hdr(3, name(b"a" * 255), 1)
    out["socks-frag1"] = SOCKS + socks_hdr(1, v4, 53, frag=1) + b"x"
    out["socks-frag-end"] = SOCKS + socks_hdr(1, v4, 53, frag=0x81) + b"x"
    out["socks-rsv"] = SOCKS + socks_hdr(1, v4, 53, rsv=b"\x00\x01")
    out["socks-atyp2"] = SOCKS + socks_hdr(2, v4, 53)
    out["socks-port0"] = SOCKS + socks_hdr(1, v4, 0)
    out["socks-name0"] = SOCKS + socks_hdr(3, name(b""), 53)
    out["socks-name-nul"] = SOCKS + socks_hdr(3, name(b"a\x00b"), 53)
    out["socks-short"] = SOCKS + socks_hdr(1, v4, 53)[:7]
    # Tunnel headers.
    out["tun-v4"] = TUNNEL + tun_hdr(1, v4, 53) + b"abc"
    out["tun-v6"] = TUNNEL + tun_hdr(4, v6, 5353)
    out["tun-name"] = TUNNEL + tun_hdr(3, name(b"dns.example"), 53) + b"\x12\x34"
    out["tun-none"] = TUNNEL + b"\x00\x00\x00"
    out["tun-port0"] = TUNNEL + tun_hdr(1, v4, 0)
    out["tun-name-long"] = TUNNEL + b"\x03\xff" + b"abc" + b"\x00\x35"
    # Server sessions.
    d = tun_hdr(1, v4, 53)
    out["srv-life"] = SERVER + (msg(1, UDP_OPEN, b"\x01\x00") + msg(1, UDP_DGRAM, d + b"q") +
                                bytes([0x02, 1, 4]) + msg(1, CLOSE, b"\x00"))
    out["srv-cap"] = SERVER + b"".join(msg(i, UDP_OPEN, b"\x01\x00") for i in (1, 3, 5, 7, 9))
    out["srv-bad-open"] = SERVER + msg(1, UDP_OPEN, b"\x01\x00\x00") + msg(1, RST, b"\x11")
    out["srv-parts"] = SERVER + (msg(1, UDP_OPEN, b"\x01\x00") + part(1, UDP_DGRAM, d[:3]) +
                                 msg(1, UDP_DGRAM, d[3:] + b"zz"))
    out["srv-full"] = SERVER + (msg(1, UDP_OPEN, b"\x01\x00") + b"\x04" +
                                b"".join(bytes([0x02, 1, 200]) for _ in range(40)) + b"\x04")
    out["srv-tcp-on-udp"] = SERVER + msg(1, UDP_OPEN, b"\x01\x00") + msg(1, CREDIT, b"\0\0\1\0")
    out["srv-rst-reuse"] = SERVER + (msg(1, UDP_OPEN, b"\x01\x00") + bytes([0x03, 1]) +
                                     msg(1, CLOSE, b"\x00") + msg(1, UDP_OPEN, b"\x01\x00"))
    out["srv-dgram-idle"] = SERVER + msg(3, UDP_DGRAM, d + b"x") + msg(2, UDP_OPEN, b"\x01\x00")
    # Client sessions.
    out["cli-life"] = CLIENT + (b"\x01" + msg(1, UDP_OK, b"\x00") + bytes([0x02, 1, 3]) +
                                msg(1, UDP_DGRAM, d + b"reply") + bytes([0x03, 1]) +
                                msg(1, CLOSE, b"\x00"))
    out["cli-refused"] = CLIENT + b"\x01" + msg(1, RST, b"\x07")
    out["cli-early-dgram"] = CLIENT + b"\x01" + msg(1, UDP_DGRAM, d)
    out["cli-name-src"] = CLIENT + (b"\x01" + msg(1, UDP_OK, b"\x00") +
                                    msg(1, UDP_DGRAM, tun_hdr(3, name(b"x"), 53)))
    out["cli-server-close"] = CLIENT + (b"\x01\x01" + msg(1, UDP_OK, b"\x00") +
                                        msg(3, UDP_OK, b"\x00") + msg(1, CLOSE, b"\x00") +
                                        msg(3, RST, b"\x04"))
    return out


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz",
                        "corpus", "udp")
    os.makedirs(root, exist_ok=True)
    for f in os.listdir(root):
        if f.startswith("seed-"):
            os.remove(os.path.join(root, f))
    for k, v in sorted(seeds().items()):
        with open(os.path.join(root, f"seed-{k}"), "wb") as f:
            f.write(v)
    print(f"wrote {len(seeds())} seeds to {os.path.normpath(root)}")


if __name__ == "__main__":
    main()
