#!/usr/bin/env python3
"""Write the seed corpus of fuzz_mux (tests/fuzz/corpus/mux/seed-*).

Each seed is a script in fuzz_mux.c's input format that follows the life of
a stream as docs/streams.md describes it, or one of its races.  Standard
library only; run from anywhere:  python3 tools/gen_mux_corpus.py
"""
import os
import struct

OPEN, OPEN_OK, DATA, FIN, CREDIT, RST, CLOSE = range(1, 8)
LISTEN, LISTEN_OK, FWD_OPEN = range(8, 11)   # remote forwards (docs/forwarding.md)
SERVER, CLIENT = b"\x00", b"\x01"


def msg(sid, ppid, payload):
    return bytes([0x00, sid, ppid]) + struct.pack(">H", len(payload)) + payload


def part(sid, ppid, payload):
    return bytes([0x08, sid, ppid, len(payload)]) + payload


def z(sid, ppid):
    return msg(sid, ppid, b"\x00")


def accept(sid):
    return bytes([0x01, sid])


def reject(sid, code):
    return bytes([0x02, sid, code])


def app_write(sid, n):
    return bytes([0x04, sid, n])


def app_eof(sid):
    return bytes([0x05, sid])


OPEN_FIXED = bytes([1, 0, 0, 0])
OPEN_V4 = bytes([1, 1, 127, 0, 0, 1]) + struct.pack(">H", 80)
OPEN_V6 = bytes([1, 4]) + bytes(15) + b"\x01" + struct.pack(">H", 443)
OPEN_DOMAIN = bytes([1, 3, 11]) + b"example.com" + struct.pack(">H", 443)
CLIENT_OPEN, TOGGLE_FULL, PUMP = b"\x03", b"\x06", b"\x07"


LISTEN_LO = bytes([1, 0, 0, 0, 1, 0, 0]) + struct.pack(">H", 8080)
FWD_NONE = bytes([0, 0, 0, 1, 1, 0, 0, 0])
FWD = b"\x09"   # client: LISTEN for PORT; server: FWD_OPEN (next two bytes: a port)


def credit(n):
    return struct.pack(">I", n)


SEEDS = {
    # server: the whole life, then CLOSE crossing CLOSE
    "server-life": SERVER + msg(1, OPEN, OPEN_V4) + accept(1) + msg(1, DATA, b"hello")
    + app_write(1, 5) + PUMP + z(1, FIN) + app_eof(1) + PUMP + z(1, CLOSE),
    "server-domain": SERVER + msg(1, OPEN, OPEN_DOMAIN) + msg(1, DATA, b"GET /")
    + accept(1) + PUMP + z(1, FIN) + app_eof(1) + PUMP + z(1, CLOSE),
    "server-v6-reject": SERVER + msg(3, OPEN, OPEN_V6) + reject(3, 0x05) + z(3, FIN)
    + msg(3, RST, b"\x10"),
    "server-fin-then-rst": SERVER + msg(1, OPEN, OPEN_FIXED) + accept(1) + z(1, FIN)
    + msg(1, RST, b"\x10"),
    "server-rst-while-queued": SERVER + msg(1, OPEN, OPEN_FIXED) + accept(1) + TOGGLE_FULL
    + app_write(1, 200) + PUMP + msg(1, RST, b"\x05") + TOGGLE_FULL,
    "server-close-blocked": SERVER + msg(1, OPEN, OPEN_FIXED) + accept(1) + z(1, FIN)
    + TOGGLE_FULL + app_eof(1) + PUMP + z(1, CLOSE) + TOGGLE_FULL,
    "server-data-after-fin": SERVER + msg(1, OPEN, OPEN_FIXED) + accept(1) + z(1, FIN)
    + msg(1, DATA, b"late") + msg(1, RST, b"\x10"),
    "server-credit-overrun": SERVER + msg(1, OPEN, OPEN_FIXED) + accept(1)
    + bytes([0x00, 1, DATA]) + struct.pack(">H", 65535),
    "server-pending-overrun": SERVER + msg(1, OPEN, OPEN_FIXED)
    + bytes([0x00, 1, DATA]) + struct.pack(">H", 32769) + accept(1),
    "server-credit": SERVER + msg(1, OPEN, OPEN_FIXED) + accept(1) + msg(1, CREDIT, credit(65536))
    + app_write(1, 255) + PUMP + msg(1, CREDIT, credit(0x7FFFFFFF)),
    "server-duplicate-open": SERVER + msg(1, OPEN, OPEN_FIXED) + msg(1, OPEN, OPEN_FIXED)
    + accept(1) + msg(1, RST, b"\x10"),
    "server-unknown-sid": SERVER + msg(0, OPEN, OPEN_FIXED) + msg(2, OPEN, OPEN_FIXED)
    + msg(200, DATA, b"x") + msg(5, FIN, b"\x00") + msg(7, 99, b"\x00"),
    "server-malformed-open": SERVER + msg(1, OPEN, bytes([1, 9, 0, 0])) + msg(3, OPEN, b"\x01")
    + msg(5, OPEN, bytes([1, 3, 0, 0, 80])),
    "server-reassembly": SERVER + part(1, OPEN, OPEN_V4[:3]) + msg(1, OPEN, OPEN_V4[3:])
    + accept(1) + part(1, CREDIT, b"\x00\x00") + z(1, CLOSE) + msg(1, RST, b"\x10"),
    "server-limit": SERVER + b"".join(msg(s, OPEN, OPEN_FIXED) for s in (1, 3, 5, 7, 9, 11, 13))
    + accept(1) + accept(3),
    # refusals before allocation, tombstones, the memory budget
    "server-refused-unanswered": SERVER + b"".join(msg(s, OPEN, OPEN_FIXED) for s in range(1, 16, 2))
    + msg(15, DATA, b"x") + msg(13, OPEN, OPEN_FIXED) + msg(15, RST, b"\x10")
    + msg(15, OPEN, OPEN_FIXED),
    "server-refused-owed": SERVER + b"".join(msg(s, OPEN, OPEN_FIXED) for s in range(1, 8, 2))
    + TOGGLE_FULL + b"".join(msg(s, OPEN, OPEN_FIXED) for s in range(9, 16, 2))
    + msg(11, RST, b"\x10") + TOGGLE_FULL + PUMP,
    "server-reset-unanswered": SERVER + msg(1, OPEN, OPEN_FIXED) + reject(1, 0x05)
    + msg(1, DATA, b"late") + msg(1, OPEN, OPEN_FIXED) + msg(1, RST, b"\x10")
    + msg(1, OPEN, OPEN_FIXED) + accept(1),
    "server-budget": SERVER + b"".join(msg(s, OPEN, OPEN_FIXED) + accept(s) for s in (1, 3, 5, 7))
    + b"".join(bytes([0x00, s, DATA]) + struct.pack(">H", 32768) for s in (1, 3, 5, 7))
    + msg(9, OPEN, OPEN_FIXED) + PUMP,
    # client: OPEN with early data, answers, races
    "client-life": CLIENT + CLIENT_OPEN + app_write(1, 10) + PUMP + z(1, OPEN_OK)
    + msg(1, DATA, b"response") + z(1, FIN) + app_eof(1) + PUMP + z(1, CLOSE),
    "client-refused": CLIENT + CLIENT_OPEN + msg(1, RST, b"\x05") + CLIENT_OPEN,
    "client-data-before-ok": CLIENT + CLIENT_OPEN + msg(1, DATA, b"early") + z(1, OPEN_OK)
    + msg(1, RST, b"\x10"),
    "client-blocked": CLIENT + TOGGLE_FULL + CLIENT_OPEN + CLIENT_OPEN + app_write(1, 100)
    + PUMP + TOGGLE_FULL + z(3, OPEN_OK) + z(1, OPEN_OK),
    "client-open-on-client": CLIENT + msg(1, OPEN, OPEN_FIXED) + z(1, OPEN_OK),
    # remote forwards: LISTEN answered or refused, FWD_OPEN both ways, unknown types
    "server-listen": SERVER + msg(1, LISTEN, LISTEN_LO) + accept(1) + msg(3, LISTEN, LISTEN_LO)
    + reject(3, 0x14) + msg(1, DATA, b"x") + msg(5, LISTEN, LISTEN_LO[:4]),
    "server-fwd-open": SERVER + msg(1, LISTEN, LISTEN_LO) + accept(1) + FWD + b"\x00\x00"
    + app_write(2, 20) + PUMP + z(2, OPEN_OK) + msg(2, DATA, b"back") + z(2, FIN)
    + app_eof(2) + PUMP + z(2, CLOSE) + msg(1, RST, b"\x10"),
    "client-listen": CLIENT + FWD + b"\x1f\x90" + msg(1, LISTEN_OK, b"\x1f\x90")
    + msg(2, FWD_OPEN, FWD_NONE) + accept(2) + msg(2, DATA, b"in") + app_write(2, 3) + PUMP
    + FWD + b"\x00\x00" + msg(3, RST, b"\x14") + msg(1, LISTEN_OK, b"\x00\x00"),
    "client-fwd-hostile": CLIENT + msg(2, FWD_OPEN, b"\x00\x00\x00") + msg(4, FWD_OPEN, FWD_NONE)
    + reject(4, 0x02) + msg(3, FWD_OPEN, FWD_NONE) + msg(6, 12, b"udp?") + msg(6, RST, b"\x10"),
    "server-unknown-type": SERVER + msg(1, 12, b"abc") + msg(1, 13, b"x") + msg(1, RST, b"\x10")
    + TOGGLE_FULL + msg(3, 15, b"x") + TOGGLE_FULL + part(5, 11, b"ab") + msg(5, 11, b"c"),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz", "corpus", "mux")
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        if f.startswith("seed-") and not f.startswith("seed-regress-"):  # regressions are kept
            os.remove(os.path.join(out, f))
    for name, data in SEEDS.items():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
