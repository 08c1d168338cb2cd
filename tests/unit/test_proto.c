/*
 * Unit tests for the stream protocol codec (src/mux/proto.c).  Payloads are
 * written out as raw byte strings, as they travel in an SCTP user message,
 * so these tests double as a record of the wire format in docs/streams.md.
 * Decoders are fed heap copies of exactly the bytes under test, so that
 * AddressSanitizer catches a read one byte past a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mux/proto.h"

#define UNUSED __attribute__((unused))

/* A byte-string literal and its length, without the literal's own NUL. */
#define B(s) (const uint8_t *)(s), (sizeof(s) - 1)

/* ---- helpers ---- */

/* Decode a heap copy of exactly n bytes, so over-reads are caught. */
static int decode_open(const uint8_t *p, size_t n, struct mux_dest *out)
{
	uint8_t *copy = malloc(n > 0 ? n : 1);
	int r;

	assert_non_null(copy);
	if (n > 0)
		memcpy(copy, p, n);
	r = proto_decode_open(copy, n, out);
	free(copy);
	return r;
}

static int decode_credit(const uint8_t *p, size_t n, uint32_t *inc)
{
	uint8_t *copy = malloc(n > 0 ? n : 1);
	int r;

	assert_non_null(copy);
	if (n > 0)
		memcpy(copy, p, n);
	r = proto_decode_credit(copy, n, inc);
	free(copy);
	return r;
}

static int decode_rst(const uint8_t *p, size_t n, uint8_t *code)
{
	uint8_t *copy = malloc(n > 0 ? n : 1);
	int r;

	assert_non_null(copy);
	if (n > 0)
		memcpy(copy, p, n);
	r = proto_decode_rst(copy, n, code);
	free(copy);
	return r;
}

static int decode_empty(const uint8_t *p, size_t n)
{
	uint8_t *copy = malloc(n > 0 ? n : 1);
	int r;

	assert_non_null(copy);
	if (n > 0)
		memcpy(copy, p, n);
	r = proto_decode_empty(copy, n);
	free(copy);
	return r;
}

static struct mux_dest dest_none(void)
{
	struct mux_dest d;

	memset(&d, 0, sizeof(d));
	d.type = MUX_DEST_NONE;
	return d;
}

static struct mux_dest dest_addr(uint8_t type, const uint8_t *addr, size_t alen,
                                 uint16_t port)
{
	struct mux_dest d;

	memset(&d, 0, sizeof(d));
	d.type = type;
	memcpy(d.addr, addr, alen);
	d.port = port;
	return d;
}

static struct mux_dest dest_domain(const char *name, uint16_t port)
{
	struct mux_dest d;

	memset(&d, 0, sizeof(d));
	d.type = MUX_DEST_DOMAIN;
	assert_true(strlen(name) < sizeof(d.domain));
	strcpy(d.domain, name);
	d.port = port;
	return d;
}

/* The fields a destination of its type carries are equal. */
static void assert_dest_equal(const struct mux_dest *a, const struct mux_dest *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->port, b->port);
	switch (a->type) {
	case MUX_DEST_IPV4:
		assert_memory_equal(a->addr, b->addr, 4);
		break;
	case MUX_DEST_IPV6:
		assert_memory_equal(a->addr, b->addr, 16);
		break;
	case MUX_DEST_DOMAIN:
		assert_string_equal(a->domain, b->domain);
		break;
	default:
		break;
	}
}

/*
 * Encode d, expect exactly the bytes want, decode them back into a struct
 * full of junk and expect d again.
 */
static void roundtrip(const struct mux_dest *d, const uint8_t *want, size_t wantlen)
{
	uint8_t buf[MUX_OPEN_MAX + 8];
	struct mux_dest back;
	int n;

	memset(buf, 0xaa, sizeof(buf));
	n = proto_encode_open(d, buf, MUX_OPEN_MAX);
	assert_int_equal(n, (int)wantlen);
	assert_true(n <= MUX_OPEN_MAX);
	assert_memory_equal(buf, want, wantlen);
	/* Nothing written past the message. */
	for (size_t i = wantlen; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xaa);

	memset(&back, 0xaa, sizeof(back));
	assert_int_equal(decode_open(buf, (size_t)n, &back), 0);
	assert_dest_equal(&back, d);
	if (d->type == MUX_DEST_DOMAIN)
		assert_int_equal(strnlen(back.domain, sizeof(back.domain)),
		                 strlen(d->domain));
}

/* Every strict prefix of a valid OPEN is malformed (never "unknown type"). */
static void assert_prefixes_rejected(const uint8_t *p, size_t n)
{
	struct mux_dest d;

	for (size_t k = 0; k < n; k++)
		assert_int_equal(decode_open(p, k, &d), -1);
	assert_int_equal(decode_open(p, n, &d), 0);
}

/* A valid OPEN with any byte appended is malformed. */
static void assert_trailing_rejected(const uint8_t *p, size_t n)
{
	static const uint8_t extra[] = { 0x00, 0x01, 0xff };
	uint8_t buf[MUX_OPEN_MAX + 2];
	struct mux_dest d;

	assert_true(n + 2 <= sizeof(buf));
	memcpy(buf, p, n);
	for (size_t i = 0; i < sizeof(extra); i++) {
		buf[n] = extra[i];
		buf[n + 1] = extra[i];
		assert_int_equal(decode_open(buf, n + 1, &d), -1);
		assert_int_equal(decode_open(buf, n + 2, &d), -1);
	}
}

/* The OPEN of every valid type used below, as raw bytes. */
static const uint8_t open_none[] = { 0x01, 0x00, 0x00, 0x00 };
static const uint8_t open_v4[] = {
	0x01, 0x01, 192, 0, 2, 1, 0x01, 0xbb,
};
static const uint8_t open_v6[] = {
	0x01, 0x04,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
	0xff, 0xff,
};
static const uint8_t open_localhost[] = {
	0x01, 0x03, 0x09, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 0x1f, 0x90,
};
static const uint8_t open_a[] = { 0x01, 0x03, 0x01, 'a', 0x00, 0x01 };

static const uint8_t v4_addr[4] = { 192, 0, 2, 1 };
static const uint8_t v6_addr[16] = {
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
};

/* The OPEN of a 255-byte name (a, b, c, ... repeating) to port 0x1234. */
static size_t open_long(uint8_t *buf, size_t len, char name[256])
{
	assert_true(len >= 2 + 1 + 255 + 2);
	for (int i = 0; i < 255; i++)
		name[i] = (char)('a' + i % 26);
	name[255] = '\0';
	buf[0] = 0x01;
	buf[1] = 0x03;
	buf[2] = 0xff;
	memcpy(buf + 3, name, 255);
	buf[258] = 0x12;
	buf[259] = 0x34;
	return 260;
}

/* ---- OPEN: round trips and exact bytes ---- */

static void test_open_none(void **state UNUSED)
{
	struct mux_dest d = dest_none();

	roundtrip(&d, open_none, sizeof(open_none));
}

static void test_open_ipv4(void **state UNUSED)
{
	struct mux_dest d = dest_addr(MUX_DEST_IPV4, v4_addr, 4, 443);

	roundtrip(&d, open_v4, sizeof(open_v4));
}

static void test_open_ipv6(void **state UNUSED)
{
	struct mux_dest d = dest_addr(MUX_DEST_IPV6, v6_addr, 16, 65535);

	roundtrip(&d, open_v6, sizeof(open_v6));
}

/* The example of docs/streams.md. */
static void test_open_localhost(void **state UNUSED)
{
	struct mux_dest d = dest_domain("localhost", 8080);

	roundtrip(&d, open_localhost, sizeof(open_localhost));
}

static void test_open_domain_len1(void **state UNUSED)
{
	struct mux_dest d = dest_domain("a", 1);

	roundtrip(&d, open_a, sizeof(open_a));
}

static void test_open_domain_len255(void **state UNUSED)
{
	uint8_t want[MUX_OPEN_MAX];
	char name[256];
	size_t n = open_long(want, sizeof(want), name);
	struct mux_dest d = dest_domain(name, 0x1234);

	assert_int_equal(n, MUX_OPEN_MAX);
	roundtrip(&d, want, n);
}

/* Bytes after the address in the struct do not leak onto the wire. */
static void test_open_encode_ignores_unused_fields(void **state UNUSED)
{
	struct mux_dest d = dest_addr(MUX_DEST_IPV4, v4_addr, 4, 443);

	memset(d.addr + 4, 0x55, sizeof(d.addr) - 4);
	memset(d.domain, 'x', sizeof(d.domain));
	roundtrip(&d, open_v4, sizeof(open_v4));

	d = dest_none();
	memset(d.addr, 0x55, sizeof(d.addr));
	roundtrip(&d, open_none, sizeof(open_none));
}

static void test_open_encode_invalid(void **state UNUSED)
{
	uint8_t buf[MUX_OPEN_MAX];
	struct mux_dest d;

	d = dest_domain("", 80);
	assert_int_equal(proto_encode_open(&d, buf, sizeof(buf)), -1);

	/* A name that fills the whole field leaves no room for the NUL. */
	d = dest_domain("x", 80);
	memset(d.domain, 'a', sizeof(d.domain));
	assert_int_equal(proto_encode_open(&d, buf, sizeof(buf)), -1);

	for (unsigned t = 0; t < 256; t++) {
		if (t == MUX_DEST_NONE || t == MUX_DEST_IPV4 ||
		    t == MUX_DEST_DOMAIN || t == MUX_DEST_IPV6)
			continue;
		d = dest_addr((uint8_t)t, v4_addr, 4, 80);
		assert_int_equal(proto_encode_open(&d, buf, sizeof(buf)), -1);
	}
}

/* One byte short of room fails, without writing past outlen. */
static void expect_outlen_too_small(const struct mux_dest *d, size_t need)
{
	uint8_t buf[MUX_OPEN_MAX + 8];

	for (size_t outlen = 0; outlen < need; outlen++) {
		memset(buf, 0xaa, sizeof(buf));
		assert_int_equal(proto_encode_open(d, buf, outlen), -1);
		for (size_t i = outlen; i < sizeof(buf); i++)
			assert_int_equal(buf[i], 0xaa);
	}
	assert_int_equal(proto_encode_open(d, buf, need), (int)need);
}

static void test_open_encode_outlen(void **state UNUSED)
{
	struct mux_dest d;
	char name[256];
	uint8_t tmp[MUX_OPEN_MAX];

	d = dest_none();
	expect_outlen_too_small(&d, 4);
	d = dest_addr(MUX_DEST_IPV4, v4_addr, 4, 443);
	expect_outlen_too_small(&d, 8);
	d = dest_addr(MUX_DEST_IPV6, v6_addr, 16, 443);
	expect_outlen_too_small(&d, 20);
	d = dest_domain("localhost", 8080);
	expect_outlen_too_small(&d, 14);
	open_long(tmp, sizeof(tmp), name);
	d = dest_domain(name, 80);
	expect_outlen_too_small(&d, MUX_OPEN_MAX);
}

/* ---- OPEN: rejection ---- */

static void test_open_bad_version(void **state UNUSED)
{
	const uint8_t *valid[] = { open_none, open_v4, open_v6, open_localhost };
	const size_t len[] = { sizeof(open_none), sizeof(open_v4),
	                       sizeof(open_v6), sizeof(open_localhost) };
	uint8_t buf[MUX_OPEN_MAX];
	struct mux_dest d;

	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		memcpy(buf, valid[i], len[i]);
		for (unsigned v = 0; v < 256; v++) {
			if (v == MUX_PROTO_VERSION)
				continue;
			buf[0] = (uint8_t)v;
			assert_int_equal(decode_open(buf, len[i], &d), -1);
		}
	}
	/* The version is checked before the type. */
	assert_int_equal(decode_open(B("\x02\x02\x00\x50"), &d), -1);
}

static void test_open_truncated(void **state UNUSED)
{
	uint8_t buf[MUX_OPEN_MAX];
	char name[256];
	size_t n;

	assert_prefixes_rejected(open_none, sizeof(open_none));
	assert_prefixes_rejected(open_v4, sizeof(open_v4));
	assert_prefixes_rejected(open_v6, sizeof(open_v6));
	assert_prefixes_rejected(open_localhost, sizeof(open_localhost));
	assert_prefixes_rejected(open_a, sizeof(open_a));
	n = open_long(buf, sizeof(buf), name);
	assert_prefixes_rejected(buf, n);
}

static void test_open_trailing(void **state UNUSED)
{
	uint8_t buf[MUX_OPEN_MAX];
	char name[256];
	size_t n;
	struct mux_dest d;

	assert_trailing_rejected(open_none, sizeof(open_none));
	assert_trailing_rejected(open_v4, sizeof(open_v4));
	assert_trailing_rejected(open_v6, sizeof(open_v6));
	assert_trailing_rejected(open_localhost, sizeof(open_localhost));
	assert_trailing_rejected(open_a, sizeof(open_a));
	n = open_long(buf, sizeof(buf), name);
	assert_trailing_rejected(buf, n);

	/* A name length that disagrees with the message length, both ways. */
	assert_int_equal(decode_open(B("\x01\x03\x08localhost\x1f\x90"), &d), -1);
	assert_int_equal(decode_open(B("\x01\x03\x0alocalhost\x1f\x90"), &d), -1);
}

static void test_open_domain_len0(void **state UNUSED)
{
	struct mux_dest d;

	assert_int_equal(decode_open(B("\x01\x03\x00\x1f\x90"), &d), -1);
	assert_int_equal(decode_open(B("\x01\x03\x00\x00\x50"), &d), -1);
	assert_int_equal(decode_open(B("\x01\x03\x00\x1f"), &d), -1);
	assert_int_equal(decode_open(B("\x01\x03\x00\x1f\x90\x00"), &d), -1);
}

static void test_open_domain_nul(void **state UNUSED)
{
	uint8_t buf[MUX_OPEN_MAX];
	char name[256];
	size_t n;
	struct mux_dest d;

	assert_int_equal(decode_open(B("\x01\x03\x01\x00\x00\x50"), &d), -1);
	assert_int_equal(decode_open(B("\x01\x03\x09\x00ocalhost\x1f\x90"), &d), -1);
	assert_int_equal(decode_open(B("\x01\x03\x09loca\x00host\x1f\x90"), &d), -1);
	assert_int_equal(decode_open(B("\x01\x03\x09localhos\x00\x1f\x90"), &d), -1);

	/* A NUL at every position of the longest name. */
	n = open_long(buf, sizeof(buf), name);
	for (size_t i = 3; i < 3 + 255; i++) {
		uint8_t saved = buf[i];

		buf[i] = 0;
		assert_int_equal(decode_open(buf, n, &d), -1);
		buf[i] = saved;
	}
	assert_int_equal(decode_open(buf, n, &d), 0);
}

static void test_open_port(void **state UNUSED)
{
	struct mux_dest d;

	/* Port 0 is invalid for a real destination... */
	assert_int_equal(decode_open(B("\x01\x01\xc0\x00\x02\x01\x00\x00"), &d), -1);
	assert_int_equal(decode_open(B("\x01\x04"
	                               "\x20\x01\x0d\xb8\x00\x00\x00\x00"
	                               "\x00\x00\x00\x00\x00\x00\x00\x01"
	                               "\x00\x00"), &d), -1);
	assert_int_equal(decode_open(B("\x01\x03\x09localhost\x00\x00"), &d), -1);
	/* ...and required for the fixed target. */
	assert_int_equal(decode_open(B("\x01\x00\x00\x01"), &d), -1);
	assert_int_equal(decode_open(B("\x01\x00\x01\x00"), &d), -1);
	assert_int_equal(decode_open(B("\x01\x00\xff\xff"), &d), -1);

	/* Both bytes of the port count, big-endian. */
	assert_int_equal(decode_open(B("\x01\x01\xc0\x00\x02\x01\x00\x01"), &d), 0);
	assert_int_equal(d.port, 1);
	assert_int_equal(decode_open(B("\x01\x01\xc0\x00\x02\x01\x01\x00"), &d), 0);
	assert_int_equal(d.port, 256);
}

static void test_open_unknown_type(void **state UNUSED)
{
	uint8_t buf[8] = { 0x01, 0x00, 0x00, 0x50, 0x00, 0x50, 0x00, 0x50 };
	struct mux_dest d;

	for (unsigned t = 0; t < 256; t++) {
		if (t == MUX_DEST_NONE || t == MUX_DEST_IPV4 ||
		    t == MUX_DEST_DOMAIN || t == MUX_DEST_IPV6)
			continue;
		buf[1] = (uint8_t)t;
		/* Whatever follows, if the message is long enough to be an OPEN. */
		for (size_t n = 4; n <= sizeof(buf); n++)
			assert_int_equal(decode_open(buf, n, &d), -2);
		for (size_t n = 0; n < 4; n++)
			assert_int_equal(decode_open(buf, n, &d), -1);
	}
	/* 2 lies between the known types. */
	assert_int_equal(decode_open(B("\x01\x02\x00\x50"), &d), -2);
}

/* A decoded name is NUL-terminated even when the struct held junk. */
static void test_open_domain_terminated(void **state UNUSED)
{
	struct mux_dest d;

	memset(&d, 0xaa, sizeof(d));
	assert_int_equal(decode_open(open_a, sizeof(open_a), &d), 0);
	assert_string_equal(d.domain, "a");
	assert_int_equal(d.port, 1);
}

/* ---- CREDIT, RST and the empty messages ---- */

static void test_credit(void **state UNUSED)
{
	uint32_t inc;
	uint8_t buf[4];

	assert_int_equal(decode_credit(B("\x00\x00\x00\x01"), &inc), 0);
	assert_int_equal(inc, 1);
	/* The grant of docs/streams.md's example: 256 KiB - 32 KiB. */
	assert_int_equal(decode_credit(B("\x00\x03\x80\x00"), &inc), 0);
	assert_int_equal(inc, 256 * 1024 - 32 * 1024);
	assert_int_equal(decode_credit(B("\x12\x34\x56\x78"), &inc), 0);
	assert_int_equal(inc, 0x12345678);
	/* The codec takes any non-zero value; credit_add enforces the cap. */
	assert_int_equal(decode_credit(B("\xff\xff\xff\xff"), &inc), 0);
	assert_int_equal(inc, 0xffffffffu);

	proto_encode_credit(256 * 1024 - 32 * 1024, buf);
	assert_memory_equal(buf, "\x00\x03\x80\x00", 4);
	proto_encode_credit(0x12345678, buf);
	assert_memory_equal(buf, "\x12\x34\x56\x78", 4);
	assert_int_equal(decode_credit(buf, 4, &inc), 0);
	assert_int_equal(inc, 0x12345678);
}

static void test_credit_rejected(void **state UNUSED)
{
	static const uint8_t ones[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
	uint32_t inc;

	assert_int_equal(decode_credit(B("\x00\x00\x00\x00"), &inc), -1);
	for (size_t n = 0; n <= sizeof(ones); n++) {
		if (n != 4)
			assert_int_equal(decode_credit(ones, n, &inc), -1);
	}
	/* A longer message is not read as its first four bytes. */
	assert_int_equal(decode_credit(B("\x00\x00\x00\x01\x00"), &inc), -1);
}

static void test_rst(void **state UNUSED)
{
	uint8_t code, buf[1];

	for (unsigned c = 0; c < 256; c++) {
		buf[0] = (uint8_t)c;
		code = (uint8_t)~c;
		assert_int_equal(decode_rst(buf, 1, &code), 0);
		assert_int_equal(code, c);
	}
	assert_int_equal(decode_rst(B(""), &code), -1);
	assert_int_equal(decode_rst(B("\x11\x00"), &code), -1);
	assert_int_equal(decode_rst(B("\x11\x11\x11"), &code), -1);
}

static void test_empty(void **state UNUSED)
{
	assert_int_equal(decode_empty(B("\x00")), 0);
	assert_int_equal(decode_empty(B("")), -1);
	assert_int_equal(decode_empty(B("\x00\x00")), -1);
	for (unsigned c = 1; c < 256; c++) {
		uint8_t b = (uint8_t)c;

		assert_int_equal(decode_empty(&b, 1), -1);
	}
}

/* ---- strings for logs ---- */

static void test_err_str(void **state UNUSED)
{
	static const struct {
		uint8_t code;
		const char *str;
	} want[] = {
		{ MUX_ERR_GENERAL, "general failure" },
		{ MUX_ERR_NOT_ALLOWED, "not allowed by ruleset" },
		{ MUX_ERR_NET_UNREACH, "network unreachable" },
		{ MUX_ERR_HOST_UNREACH, "host unreachable" },
		{ MUX_ERR_REFUSED, "connection refused" },
		{ MUX_ERR_TIMEOUT, "timed out" },
		{ MUX_ERR_ATYP, "address type not supported" },
		{ MUX_ERR_RESET, "reset by application" },
		{ MUX_ERR_PROTOCOL, "protocol violation" },
		{ MUX_ERR_LIMIT, "limit reached" },
		{ MUX_ERR_SHUTDOWN, "peer shutting down" },
		{ MUX_ERR_UNSUPPORTED, "message not supported by the peer" },
		{ MUX_ERR_NO_PERMIT, "no --permit-listen rule of the server allows it" },
		{ MUX_ERR_GATEWAY, "the server only listens on loopback (no --gateway-ports)" },
		{ MUX_ERR_BIND, "the server cannot listen there (address in use?)" },
	};
	const size_t nwant = sizeof(want) / sizeof(want[0]);
	/* The SOCKS5 values docs/streams.md keeps for codes 1..8. */
	static const uint8_t socks5[] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	assert_int_equal(MUX_ERR_GENERAL, socks5[0]);
	assert_int_equal(MUX_ERR_NOT_ALLOWED, socks5[1]);
	assert_int_equal(MUX_ERR_NET_UNREACH, socks5[2]);
	assert_int_equal(MUX_ERR_HOST_UNREACH, socks5[3]);
	assert_int_equal(MUX_ERR_REFUSED, socks5[4]);
	assert_int_equal(MUX_ERR_TIMEOUT, socks5[5]);
	assert_int_equal(MUX_ERR_UNSUPPORTED, socks5[6]);
	assert_int_equal(MUX_ERR_ATYP, socks5[7]);

	for (size_t i = 0; i < nwant; i++) {
		assert_string_equal(proto_err_str(want[i].code), want[i].str);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(want[i].str, want[j].str);
	}
	/* Every other byte value is unknown. */
	for (unsigned c = 0; c < 256; c++) {
		int known = 0;

		for (size_t i = 0; i < nwant; i++)
			known |= want[i].code == c;
		if (!known)
			assert_string_equal(proto_err_str((uint8_t)c), "unknown error");
	}
}

static void test_dest_str(void **state UNUSED)
{
	char buf[300], small[8];
	struct mux_dest d;
	static const uint8_t v4_max[4] = { 255, 255, 255, 255 };
	static const uint8_t v4_mapped[16] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1,
	};
	char name[256];
	uint8_t tmp[MUX_OPEN_MAX];

	d = dest_none();
	assert_ptr_equal(proto_dest_str(&d, buf, sizeof(buf)), buf);
	assert_string_equal(buf, "(fixed target)");

	d = dest_addr(MUX_DEST_IPV4, v4_addr, 4, 443);
	assert_ptr_equal(proto_dest_str(&d, buf, sizeof(buf)), buf);
	assert_string_equal(buf, "192.0.2.1:443");
	d = dest_addr(MUX_DEST_IPV4, v4_max, 4, 65535);
	assert_string_equal(proto_dest_str(&d, buf, sizeof(buf)), "255.255.255.255:65535");

	d = dest_addr(MUX_DEST_IPV6, v6_addr, 16, 8080);
	assert_string_equal(proto_dest_str(&d, buf, sizeof(buf)), "[2001:db8::1]:8080");
	d = dest_addr(MUX_DEST_IPV6, v4_mapped, 16, 1);
	assert_string_equal(proto_dest_str(&d, buf, sizeof(buf)), "[::ffff:192.0.2.1]:1");

	d = dest_domain("localhost", 8080);
	assert_string_equal(proto_dest_str(&d, buf, sizeof(buf)), "localhost:8080");

	/* The longest name with the longest port still fits 300 bytes. */
	open_long(tmp, sizeof(tmp), name);
	d = dest_domain(name, 65535);
	proto_dest_str(&d, buf, sizeof(buf));
	assert_int_equal(strlen(buf), 255 + 6);
	assert_memory_equal(buf, name, 255);
	assert_string_equal(buf + 255, ":65535");

	/* A short buffer is cut, still NUL-terminated, and not overrun. */
	memset(small, 'z', sizeof(small));
	d = dest_domain("localhost", 8080);
	proto_dest_str(&d, small, 5);
	assert_string_equal(small, "loca");
	assert_int_equal(small[5], 'z');
	d = dest_addr(MUX_DEST_IPV6, v6_addr, 16, 8080);
	proto_dest_str(&d, small, sizeof(small));
	assert_string_equal(small, "[2001:d");
}

/* ---- remote forwards: LISTEN, LISTEN_OK, FWD_OPEN (docs/forwarding.md) ---- */

static uint8_t *heap_copy(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n > 0 ? n : 1);

	assert_non_null(c);
	if (n > 0)
		memcpy(c, p, n);
	return c;
}

static int decode_listen(const uint8_t *p, size_t n, struct mux_listen_req *r)
{
	uint8_t *c = heap_copy(p, n);
	int rc = proto_decode_listen(c, n, r);

	free(c);
	return rc;
}

static int decode_fwd_open(const uint8_t *p, size_t n, uint32_t *id, struct mux_dest *d)
{
	uint8_t *c = heap_copy(p, n);
	int rc = proto_decode_fwd_open(c, n, id, d);

	free(c);
	return rc;
}

static void test_listen_roundtrip(void **state UNUSED)
{
	struct mux_listen_req r, back;
	uint8_t buf[MUX_LISTEN_MAX];
	int n;

	/* Loopback (no address), port 8080, forward #1, not SOCKS. */
	memset(&r, 0, sizeof(r));
	r.id = 1;
	r.port = 8080;
	n = proto_encode_listen(&r, buf, sizeof(buf));
	assert_int_equal(n, 9);
	assert_memory_equal(buf, "\x01\x00\x00\x00\x01\x00\x00\x1f\x90", 9);
	assert_int_equal(decode_listen(buf, (size_t)n, &back), 0);
	assert_int_equal(back.id, 1);
	assert_int_equal(back.flags, 0);
	assert_int_equal(back.atyp, MUX_DEST_NONE);
	assert_int_equal(back.port, 8080);

	/* IPv4 0.0.0.0, port 0 (any), reverse SOCKS, id 0xdeadbeef. */
	memset(&r, 0, sizeof(r));
	r.id = 0xdeadbeef;
	r.flags = MUX_LISTEN_SOCKS;
	r.atyp = MUX_DEST_IPV4;
	n = proto_encode_listen(&r, buf, sizeof(buf));
	assert_int_equal(n, 13);
	assert_memory_equal(buf, "\x01\xde\xad\xbe\xef\x01\x01\x00\x00\x00\x00\x00\x00", 13);
	assert_int_equal(decode_listen(buf, (size_t)n, &back), 0);
	assert_int_equal(back.id, 0xdeadbeef);
	assert_int_equal(back.flags, MUX_LISTEN_SOCKS);
	assert_int_equal(back.atyp, MUX_DEST_IPV4);

	/* IPv6 ::1. */
	memset(&r, 0, sizeof(r));
	r.atyp = MUX_DEST_IPV6;
	r.addr[15] = 1;
	r.port = 1;
	n = proto_encode_listen(&r, buf, sizeof(buf));
	assert_int_equal(n, MUX_LISTEN_MAX);
	assert_int_equal(decode_listen(buf, (size_t)n, &back), 0);
	assert_memory_equal(back.addr, r.addr, 16);
	assert_int_equal(back.port, 1);

	/* The encoder refuses what the decoder would. */
	r.atyp = MUX_DEST_DOMAIN;
	assert_int_equal(proto_encode_listen(&r, buf, sizeof(buf)), -1);
	r.atyp = MUX_DEST_NONE;
	r.flags = 0x02;
	assert_int_equal(proto_encode_listen(&r, buf, sizeof(buf)), -1);
	r.flags = 0;
	assert_int_equal(proto_encode_listen(&r, buf, 8), -1);
}

static void test_listen_rejected(void **state UNUSED)
{
	struct mux_listen_req r;

	assert_int_equal(decode_listen(B(""), &r), -1);
	assert_int_equal(decode_listen(B("\x01"), &r), -1);
	assert_int_equal(decode_listen(B("\x01\x00\x00\x00\x01\x00\x00\x1f"), &r), -1);    /* short */
	assert_int_equal(decode_listen(B("\x02\x00\x00\x00\x01\x00\x00\x1f\x90"), &r), -1); /* version */
	assert_int_equal(decode_listen(B("\x01\x00\x00\x00\x01\x02\x00\x1f\x90"), &r), -1); /* flags */
	assert_int_equal(decode_listen(B("\x01\x00\x00\x00\x01\x80\x00\x1f\x90"), &r), -1);
	assert_int_equal(decode_listen(B("\x01\x00\x00\x00\x01\x00\x03\x1f\x90"), &r), -1); /* domain */
	assert_int_equal(decode_listen(B("\x01\x00\x00\x00\x01\x00\x05\x1f\x90"), &r), -1); /* atyp */
	assert_int_equal(decode_listen(B("\x01\x00\x00\x00\x01\x00\x00\x1f\x90\x00"), &r), -1); /* trailing */
	assert_int_equal(decode_listen(B("\x01\x00\x00\x00\x01\x00\x01\x7f\x00\x00\x01\x1f"), &r), -1);
	assert_int_equal(decode_listen(B("\x01\x00\x00\x00\x01\x00\x04\x00"), &r), -1);
}

static void test_listen_ok(void **state UNUSED)
{
	uint8_t b[2];
	uint16_t port = 7;

	proto_encode_listen_ok(40000, b);
	assert_memory_equal(b, "\x9c\x40", 2);
	assert_int_equal(proto_decode_listen_ok(b, 2, &port), 0);
	assert_int_equal(port, 40000);
	assert_int_equal(proto_decode_listen_ok(B("\x00\x00"), &port), -1);   /* port 0 */
	assert_int_equal(proto_decode_listen_ok(B("\x00"), &port), -1);
	assert_int_equal(proto_decode_listen_ok(B("\x00\x01\x00"), &port), -1);
	assert_int_equal(proto_decode_listen_ok(B(""), &port), -1);
}

static void test_fwd_open(void **state UNUSED)
{
	struct mux_dest d, back;
	uint8_t buf[MUX_FWD_OPEN_MAX];
	uint32_t id = 0;
	int n;

	/* The forward's own destination: no address. */
	memset(&d, 0, sizeof(d));
	n = proto_encode_fwd_open(3, &d, buf, sizeof(buf));
	assert_int_equal(n, 8);
	assert_memory_equal(buf, "\x00\x00\x00\x03\x01\x00\x00\x00", 8);
	assert_int_equal(decode_fwd_open(buf, (size_t)n, &id, &back), 0);
	assert_int_equal(id, 3);
	assert_int_equal(back.type, MUX_DEST_NONE);

	/* Reverse SOCKS: a name. */
	d = dest_domain("example.org", 443);
	n = proto_encode_fwd_open(0x01020304, &d, buf, sizeof(buf));
	assert_int_equal(n, 4 + 2 + 1 + 11 + 2);
	assert_int_equal(decode_fwd_open(buf, (size_t)n, &id, &back), 0);
	assert_int_equal(id, 0x01020304);
	assert_string_equal(back.domain, "example.org");
	assert_int_equal(back.port, 443);
	assert_int_equal(proto_encode_fwd_open(1, &d, buf, 10), -1);

	/* The OPEN rules hold for the part after the id. */
	assert_int_equal(decode_fwd_open(B(""), &id, &back), -1);
	assert_int_equal(decode_fwd_open(B("\x00\x00\x00"), &id, &back), -1);
	assert_int_equal(decode_fwd_open(B("\x00\x00\x00\x01"), &id, &back), -1);
	assert_int_equal(decode_fwd_open(B("\x00\x00\x00\x01\x01\x00\x00\x01"), &id, &back), -1);
	assert_int_equal(decode_fwd_open(B("\x00\x00\x00\x01\x01\x07\x00\x01"), &id, &back), -2);
	assert_int_equal(decode_fwd_open(B("\x00\x00\x00\x01\x01\x01\x7f\x00\x00\x01\x00\x00"),
	                                 &id, &back), -1);   /* port 0 */
}

/* Every prefix and every single-byte change of valid messages: no crash, no over-read. */
static void test_forward_hostile_bytes(void **state UNUSED)
{
	static const uint8_t msgs[][24] = {
		"\x01\x00\x00\x00\x01\x01\x01\x7f\x00\x00\x01\x1f\x90",
		"\x00\x00\x00\x01\x01\x03\x03""abc\x00\x50",
	};
	static const size_t lens[] = { 13, 12 };
	struct mux_listen_req r;
	struct mux_dest d;
	uint32_t id;
	uint16_t port;

	for (size_t k = 0; k < 2; k++) {
		for (size_t n = 0; n <= lens[k]; n++) {
			for (unsigned pos = 0; pos < n; pos++) {
				for (unsigned v = 0; v < 256; v += 17) {
					uint8_t *c = heap_copy(msgs[k], n);

					c[pos] = (uint8_t)v;
					(void)proto_decode_listen(c, n, &r);
					(void)proto_decode_fwd_open(c, n, &id, &d);
					(void)proto_decode_listen_ok(c, n, &port);
					free(c);
				}
			}
		}
	}
	/* The valid ones decode. */
	assert_int_equal(decode_listen(msgs[0], lens[0], &r), 0);
	assert_int_equal(decode_fwd_open(msgs[1], lens[1], &id, &d), 0);
	assert_string_equal(d.domain, "abc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_none),
		cmocka_unit_test(test_open_ipv4),
		cmocka_unit_test(test_open_ipv6),
		cmocka_unit_test(test_open_localhost),
		cmocka_unit_test(test_open_domain_len1),
		cmocka_unit_test(test_open_domain_len255),
		cmocka_unit_test(test_open_encode_ignores_unused_fields),
		cmocka_unit_test(test_open_encode_invalid),
		cmocka_unit_test(test_open_encode_outlen),
		cmocka_unit_test(test_open_bad_version),
		cmocka_unit_test(test_open_truncated),
		cmocka_unit_test(test_open_trailing),
		cmocka_unit_test(test_open_domain_len0),
		cmocka_unit_test(test_open_domain_nul),
		cmocka_unit_test(test_open_port),
		cmocka_unit_test(test_open_unknown_type),
		cmocka_unit_test(test_open_domain_terminated),
		cmocka_unit_test(test_credit),
		cmocka_unit_test(test_credit_rejected),
		cmocka_unit_test(test_rst),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_err_str),
		cmocka_unit_test(test_dest_str),
		cmocka_unit_test(test_listen_roundtrip),
		cmocka_unit_test(test_listen_rejected),
		cmocka_unit_test(test_listen_ok),
		cmocka_unit_test(test_fwd_open),
		cmocka_unit_test(test_forward_hostile_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
