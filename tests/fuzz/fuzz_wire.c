/*
 * libFuzzer harness for the parsers that see hostile input: every datagram
 * the wire layer receives (a candidate HELLO at the server, a candidate
 * REPLY at the client, a data packet of a session), cert= values, and the
 * address parsers (command line, later bridge arguments).
 *
 * Raw input can never authenticate, so the first byte also selects a mode
 * that XORs the rest onto a genuine HELLO, REPLY or data packet, or seals
 * the rest and opens it again: the fuzzer then works next to the accepting
 * paths, and the invariant is exact (accepted if and only if unchanged).
 * The fixed state is the one of tools/gen_vectors.c, built once.
 *
 * Every input is also read as a replay filter file (wire/replay.h) and as
 * lengths and a draw for the padding functions (wire/pad.h), whose bounds
 * are checked.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/netaddr.h"
#include "wire/handshake.h"
#include "wire/pad.h"
#include "wire/replay.h"
#include "wire/seal.h"

#define SHIFT 2   /* rekey every 4 packets, so epochs are reachable */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct wire_identity id;
static struct hs_client cst;
static struct wire_session_keys keys;
static struct wire_dir rx;           /* opener for raw input */
static uint8_t hello[HS_MAX], reply[HS_MAX], sctp[28];
static size_t hello_len, reply_len;
static uint8_t mac_key[WC_KEY_LEN];  /* the HELLO's MAC key for id */
static uint8_t pkt[3][128];          /* c2s packets 0, 1 and 4 */
static size_t pkt_len[3];

static void fill(uint8_t *p, size_t n, uint8_t start)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(start + i);
}

static void setup(void)
{
	struct hs_server sst;
	struct wire_session_keys kc;
	struct wire_dir tx;
	uint8_t spriv[32], secret[16], epriv[32], rc[16], fpriv[32], rs[16], pad[5] = { 0 };
	int hl, rl;
	ssize_t n;

	fill(spriv, 32, 0x01);
	fill(secret, 16, 0x40);
	fill(epriv, 32, 0x21);
	fill(rc, 16, 0x60);
	fill(fpriv, 32, 0x81);
	fill(rs, 16, 0xa0);
	fill(sctp, sizeof(sctp), 0xc0);
	if (wire_identity_from_priv(&id, spriv, secret) < 0 || hs_mac_key(&id.cert, mac_key) < 0)
		abort();
	hl = hs_client_hello(&id.cert, &cst, epriv, rc, 29876543, pad, 5, hello);
	if (hl < 0 || hs_server_parse(&id, hello, (size_t)hl, &sst) < 0)
		abort();
	hello_len = (size_t)hl;
	rl = hs_server_reply(&id, &sst, fpriv, rs, pad, 3, hello, hello_len, reply, &keys);
	if (rl < 0 || hs_client_finish(&id.cert, &cst, reply, (size_t)rl, &kc) < 0 ||
	    memcmp(&keys, &kc, sizeof(kc)) != 0)
		abort();
	reply_len = (size_t)rl;
	if (wire_dir_init(&tx, &keys.c2s, SHIFT) < 0 || wire_dir_init(&rx, &keys.c2s, SHIFT) < 0)
		abort();
	for (int i = 0; i < 3; i++) {
		tx.next_seq = i == 2 ? 4 : (uint64_t)i;
		n = wire_seal_packet(&tx, sctp, sizeof(sctp), (size_t)(4 * i), pkt[i]);
		if (n < 0)
			abort();
		pkt_len[i] = (size_t)n;
	}
	wire_dir_clear(&tx);
}

/* Put an opener back to its initial state if an input moved it. */
static void dir_reset(struct wire_dir *d)
{
	if (d->top == 0 && d->epoch == 0)
		return;
	wire_dir_clear(d);
	if (wire_dir_init(d, &keys.c2s, SHIFT) < 0)
		abort();
}

static void raw_parsers(const uint8_t *data, size_t size, uint8_t *out)
{
	struct hs_server s;
	struct wire_session_keys k;
	ssize_t r;

	if (hs_server_parse(&id, data, size, &s) == 0)
		assert(size >= HS_HELLO_MIN && size <= HS_MAX &&
		       (hs_hello_mac_ok(mac_key, data, size) || size >= HS_HELLO_MIN + 2));
	if (hs_client_finish(&id.cert, &cst, data, size, &k) == 0)
		assert(size >= HS_REPLY_MIN && size <= HS_MAX);
	r = wire_open_packet(&rx, data, size, out);
	assert(r == -1 || r == WIRE_REPLAY || r >= 0);
	if (r >= 0)
		assert(size >= WIRE_DATA_OVERHEAD && (size_t)r <= size - WIRE_DATA_OVERHEAD);
	dir_reset(&rx);
}

/* buf = orig XOR data, as long as data; returns whether it equals orig. */
static int xor_onto(const uint8_t *orig, size_t olen, const uint8_t *data, size_t size,
                    uint8_t *buf)
{
	int same = size == olen;

	for (size_t i = 0; i < size; i++) {
		buf[i] = (i < olen ? orig[i] : 0) ^ data[i];
		same &= data[i] == 0;
	}
	return same;
}

/* Only the genuine bytes authenticate: any change is refused. */
static void near_genuine(unsigned mode, const uint8_t *data, size_t size, uint8_t *buf)
{
	struct hs_server s;
	struct wire_session_keys k;
	struct wire_dir d;
	int same, i;
	ssize_t r;

	switch (mode) {
	case 0:
		same = xor_onto(hello, hello_len, data, size, buf);
		assert((hs_server_parse(&id, buf, size, &s) == 0) == same);
		if (same)
			assert(s.minutes == 29876543);
		break;
	case 1:
		same = xor_onto(reply, reply_len, data, size, buf);
		assert((hs_client_finish(&id.cert, &cst, buf, size, &k) == 0) == same);
		if (same)
			assert(memcmp(&k, &keys, sizeof(k)) == 0);
		break;
	case 2:
		if (size == 0)
			return;
		i = data[0] % 3;
		same = xor_onto(pkt[i], pkt_len[i], data + 1, size - 1, buf);
		if (wire_dir_init(&d, &keys.c2s, SHIFT) < 0)
			abort();
		r = wire_open_packet(&d, buf, size - 1, buf + size);
		assert(same ? r == (ssize_t)sizeof(sctp) : r == -1);
		if (same)
			assert(memcmp(buf + size, sctp, sizeof(sctp)) == 0);
		wire_dir_clear(&d);
		/* In place: the same verdict, and a rejected datagram left as it came. */
		if (wire_dir_init(&d, &keys.c2s, SHIFT) < 0)
			abort();
		memcpy(buf + size, buf, size - 1);
		{
			const uint8_t *p;

			r = wire_open_packet_inplace(&d, buf, size - 1, &p);
			assert(same ? r == (ssize_t)sizeof(sctp) : r == -1);
			if (same)
				assert(p == buf + 8 && memcmp(p, sctp, sizeof(sctp)) == 0);
			else
				assert(memcmp(buf, buf + size, size - 1) == 0);
		}
		wire_dir_clear(&d);
		break;
	}
}

/* Seal data[3..] and open it: it comes back intact, once. */
static void round_trip(const uint8_t *data, size_t size, uint8_t *buf)
{
	struct wire_dir tx, d;
	size_t padlen, len;
	uint8_t *sealed, *opened;
	ssize_t n, r;

	if (size < 4)
		return;
	padlen = (size_t)data[0] << 2 | data[1] >> 6;    /* up to 1023 */
	len = size - 3;
	sealed = buf;
	opened = buf + len + padlen + WIRE_DATA_OVERHEAD;
	if (wire_dir_init(&tx, &keys.s2c, SHIFT) < 0 || wire_dir_init(&d, &keys.s2c, SHIFT) < 0)
		abort();
	tx.next_seq = data[1] & 7;                       /* epoch 0 or 1 */
	n = wire_seal_packet(&tx, data + 3, len, padlen, sealed);
	assert(n == (ssize_t)(len + padlen + WIRE_DATA_OVERHEAD));
	r = wire_open_packet(&d, sealed, (size_t)n, opened);
	assert(r == (ssize_t)len && memcmp(opened, data + 3, len) == 0);
	assert(wire_open_packet(&d, sealed, (size_t)n, opened) == WIRE_REPLAY);
	sealed[(size_t)data[2] % (size_t)n] ^= (uint8_t)(1 << (data[2] & 7));
	r = wire_open_packet(&d, sealed, (size_t)n, opened);
	assert(r == -1 || r == WIRE_REPLAY);
	wire_dir_clear(&tx);
	wire_dir_clear(&d);
}

static void cert_and_addresses(const uint8_t *data, size_t size)
{
	char *str, host[NETADDR_HOST_MAX], scheme[16], enc[WIRE_CERT_B64_MAX];
	uint16_t port;
	struct netaddr_cidr cidr;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct wire_cert c;

	str = malloc(size + 1);
	if (str == NULL)
		return;
	memcpy(str, data, size);
	str[size] = '\0';
	if (wire_cert_decode(str, &c) == 0) {
		size_t n = strlen(str);

		/* 48 bytes fill 64 characters: a decoded cert has one spelling. */
		assert(n == 64 || (n == 66 && memcmp(str + 64, "==", 2) == 0));
		assert(wire_cert_encode(&c, enc, sizeof(enc)) == 64);
		assert(memcmp(enc, str, 64) == 0);
	}
	if (netaddr_parse_hostport(str, host, sizeof(host), &port, 0) == 0) {
		assert(port != 0 && strlen(host) > 0);
		(void)netaddr_from_numeric(host, port, &ss, &sslen);
	}
	if (netaddr_parse_url(str, scheme, sizeof(scheme), host, sizeof(host), &port) == 0)
		assert(strlen(scheme) > 0 && strlen(host) > 0);
	if (netaddr_parse_cidr(str, &cidr) == 0) {
		assert(cidr.family == AF_INET ? cidr.prefix <= 32 : cidr.prefix <= 128);
		if (netaddr_from_numeric("192.0.2.1", 80, &ss, &sslen) == 0)
			(void)netaddr_cidr_match(&cidr, (struct sockaddr *)&ss);
	}
	free(str);
}

/* The replay file loader: whole records only, each then seen as a replay. */
static void replay_file_bytes(const uint8_t *data, size_t size)
{
	struct replay_filter *rf = replay_new(300000, 64, 0);
	size_t n;

	if (rf == NULL)
		return;
	n = replay_load_prev(rf, data, size);
	assert(n <= size / REPLAY_HASH_LEN && n <= 64);
	assert(replay_count_prev(rf) <= n && replay_count(rf) == 0);
	for (size_t i = 0; i < n; i++)
		assert(replay_check(rf, data + i * REPLAY_HASH_LEN, 1) == REPLAY_SEEN);
	assert(replay_count(rf) == 0);
	replay_free(rf);
}

static uint32_t pad_draw_value;

static uint32_t pad_draw(uint32_t lo, uint32_t hi)
{
	if (hi <= lo)
		return lo;
	return lo + pad_draw_value % (hi - lo + 1);
}

/* Padding never passes the datagram; data packets end full or on a bucket. */
static void pad_lengths(const uint8_t *data, size_t size)
{
	size_t sealed, maxd, pad;
	unsigned lo, hi;

	if (size < 12)
		return;
	sealed = (size_t)(data[0] << 8 | data[1]) % 4096;
	maxd = (size_t)(data[2] << 8 | data[3]) % 4096;
	lo = (unsigned)(data[4] << 8 | data[5]);
	hi = (unsigned)(data[6] << 8 | data[7]);
	pad_draw_value = (uint32_t)data[8] << 24 | (uint32_t)data[9] << 16 |
	                 (uint32_t)data[10] << 8 | data[11];
	pad = wire_pad_data(sealed, maxd, lo, hi, pad_draw);
	if (sealed >= maxd) {
		assert(pad == 0);
	} else {
		assert(sealed + pad <= maxd);
		if (maxd - sealed <= WIRE_FILL_THRESHOLD)
			assert(sealed + pad == maxd);
		else
			assert(sealed + pad == maxd || (sealed + pad) % WIRE_PAD_BUCKET == 0);
	}
	pad = wire_pad_handshake(sealed, HS_MAX, maxd, lo, hi, pad_draw);
	assert(pad == 0 || (sealed + pad <= HS_MAX && sealed + pad <= maxd));
	/* A bridge's distribution from the input's bytes: targets, buckets or full. */
	if (size >= 12 + WIRE_DIST_SEED_LEN) {
		struct wire_pad_dist d;
		int ok = 0;

		wire_pad_dist_derive(data + 12, maxd, &d);
		assert(d.n == 0 || d.n == WIRE_DIST_N);
		pad = wire_pad_shaped(&d, sealed, maxd, lo, hi, pad_draw);
		if (sealed >= maxd) {
			assert(pad == 0);
		} else {
			assert(sealed + pad <= maxd);
			for (unsigned i = 0; i < d.n; i++) {
				assert(d.len[i] + WIRE_FILL_THRESHOLD < maxd);
				ok |= sealed + pad == d.len[i];
			}
			assert(ok || sealed + pad == maxd || (sealed + pad) % WIRE_PAD_BUCKET == 0);
		}
		/* Runs: whatever state they are in, the same bounds. */
		{
			struct wire_pad_run run = {
				.len = (uint16_t)(data[0] << 8 | data[3]),
				.left = data[1] % 40,
				.fresh = data[2] % (WIRE_RUN_FRESH + 2),
			};

			pad = wire_pad_shaped_run(&d, &run, data[4] % 8, sealed, maxd, lo, hi,
			                          pad_draw);
			assert(sealed >= maxd ? pad == 0 : sealed + pad <= maxd);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	uint8_t *buf;

	if (!ready) {
		setup();
		ready = 1;
	}
	/* Room for any output: size bytes, plus padding and overhead when sealing. */
	buf = malloc(2 * size + 4096);
	if (buf == NULL)
		return 0;
	raw_parsers(data, size, buf);
	if (size > 0) {
		unsigned mode = data[0] % 4;

		if (mode < 3)
			near_genuine(mode, data + 1, size - 1, buf);
		else
			round_trip(data + 1, size - 1, buf);
	}
	free(buf);
	cert_and_addresses(data, size);
	replay_file_bytes(data, size);
	pad_lengths(data, size);
	return 0;
}
