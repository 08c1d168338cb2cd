/*
 * Unit tests for the native engine's packet layer (src/sctp/crc32c.c,
 * packet.c, packet_build.c).
 *
 * Three kinds of input: raw byte strings written by hand from RFC 9260
 * (each chunk type, then every malformed case we know of), packets made
 * by our builders (round trips), and packets made by the real usrsctp
 * library in this process over AF_CONN (interoperability: our parser must
 * accept all of them and our CRC32c must equal the one usrsctp wrote).
 *
 * SCTPT_SCTP_CORPUS=DIR writes the usrsctp packets and the hand-built ones
 * into DIR as seeds for tests/fuzz/fuzz_sctp_packet.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>
#include <usrsctp.h>

#include "sctp/crc32c.h"
#include "sctp/packet.h"
#include "util/bytes.h"
#include "../common/sctp_rebuild.h"

#define UNUSED __attribute__((unused))

/* A byte-string literal and its length, without the literal's own NUL. */
#define B(s) (const uint8_t *)(s), (sizeof(s) - 1)

/* ---- seed corpus output ---- */

static void corpus_write(const char *tag, const uint8_t *p, size_t n)
{
	static unsigned seq;
	const char *dir = getenv("SCTPT_SCTP_CORPUS");
	char path[512];
	FILE *f;

	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%s-%03u", dir, tag, seq++);
	if ((f = fopen(path, "wb")) == NULL)
		return;
	fwrite(p, 1, n, f);
	fclose(f);
}

/* ---- CRC32c ---- */

/* Bit-at-a-time reference, straight from the definition. */
static uint32_t crc_ref(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffff;

	while (n-- > 0) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
	}
	return ~c;
}

static void check_crc(const uint8_t *p, size_t n, uint32_t want)
{
	assert_int_equal(crc32c(0, p, n), want);
	assert_int_equal(crc32c_sw(0, p, n), want);
	assert_int_equal(crc_ref(p, n), want);
}

/* RFC 3720 Appendix B.4, with the CRC read as the bytes go on the wire. */
static void test_crc_rfc3720(void **state UNUSED)
{
	static const uint8_t pdu[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
		0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	uint8_t buf[32];

	memset(buf, 0, sizeof(buf));
	check_crc(buf, 32, 0x8a9136aa);          /* aa 36 91 8a */
	memset(buf, 0xff, sizeof(buf));
	check_crc(buf, 32, 0x62a8ab43);          /* 43 ab a8 62 */
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	check_crc(buf, 32, 0x46dd794e);          /* 4e 79 dd 46 */
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	check_crc(buf, 32, 0x113fdb5c);          /* 5c db 3f 11 */
	check_crc(pdu, sizeof(pdu), 0xd9963a56); /* 56 3a 96 d9 */
	check_crc(B("123456789"), 0xe3069283);
	check_crc(NULL, 0, 0);
}

/* Every alignment and length, both paths, and chaining. */
static void test_crc_paths(void **state UNUSED)
{
	uint8_t buf[300];
	uint32_t x = 12345;

	for (size_t i = 0; i < sizeof(buf); i++) {
		x = x * 1103515245 + 12345;
		buf[i] = (uint8_t)(x >> 16);
	}
	for (size_t off = 0; off < 9; off++) {
		for (size_t n = 0; n + off <= sizeof(buf); n += 7) {
			uint32_t want = crc_ref(buf + off, n);
			size_t half = n / 3;

			assert_int_equal(crc32c(0, buf + off, n), want);
			assert_int_equal(crc32c_sw(0, buf + off, n), want);
			assert_int_equal(crc32c(crc32c(0, buf + off, half),
			                        buf + off + half, n - half), want);
		}
	}
	print_message("crc32c: %s\n", crc32c_hw_available() ?
	              "SSE4.2 instruction" : "slicing-by-8 tables");
}

/* ---- hand-built packets ---- */

#define VTAG 0x01020304u

/* Header (ports 5001 -> 5000, VTAG) + chunk bytes + checksum. */
static size_t mk(uint8_t *out, const uint8_t *chunks, size_t n)
{
	put_u16be(out, 5001);
	put_u16be(out + 2, 5000);
	put_u32be(out + 4, VTAG);
	memset(out + 8, 0, 4);
	memcpy(out + 12, chunks, n);
	sctp_packet_set_crc(out, 12 + n);
	return 12 + n;
}

/* Parses a one-chunk packet and returns its chunk. */
static struct sctp_chunk one_chunk(const uint8_t *chunk, size_t n,
                                   uint8_t *buf)
{
	struct sctp_packet pkt;
	struct sctp_chunk_iter it;
	struct sctp_chunk c;
	size_t len = mk(buf, chunk, n);

	assert_int_equal(sctp_packet_parse(buf, len, &pkt), 0);
	assert_int_equal(sctp_packet_check_crc(buf, len), 0);
	assert_int_equal(pkt.nchunks, 1);
	sctp_chunk_iter_init(&it, &pkt);
	assert_int_equal(sctp_chunk_next(&it, &c), 1);
	corpus_write("hand", buf, len);
	return c;
}

static int packet_rc(const uint8_t *chunks, size_t n)
{
	uint8_t buf[256];
	struct sctp_packet pkt;

	assert_true(n + 12 <= sizeof(buf));
	return sctp_packet_parse(buf, mk(buf, chunks, n), &pkt);
}

static void test_header(void **state UNUSED)
{
	uint8_t buf[64];
	struct sctp_packet pkt;
	size_t n = mk(buf, B("\x0b\x00\x00\x04"));   /* COOKIE-ACK */

	assert_int_equal(sctp_packet_parse(buf, n, &pkt), 0);
	assert_int_equal(pkt.hdr.src_port, 5001);
	assert_int_equal(pkt.hdr.dst_port, 5000);
	assert_int_equal(pkt.hdr.vtag, VTAG);
	assert_int_equal(pkt.hdr.checksum, sctp_packet_crc(buf, n));
	assert_int_equal(pkt.nchunks, 1);
	assert_int_equal(pkt.first_type, SCTP_CT_COOKIE_ACK);
	/* Every truncation of the header is short. */
	for (size_t k = 0; k < 16; k++)
		assert_int_equal(sctp_packet_parse(buf, k, &pkt),
		                 SCTP_PERR_SHORT_PACKET);
	/* A header alone carries no chunk. */
	assert_int_equal(sctp_packet_parse(buf, 12, &pkt), SCTP_PERR_SHORT_PACKET);
	/* The checksum covers every byte. */
	for (size_t k = 0; k < n; k++) {
		if (k >= 8 && k < 12)
			continue;
		buf[k] ^= 0x20;
		assert_int_equal(sctp_packet_check_crc(buf, n), SCTP_PERR_CHECKSUM);
		buf[k] ^= 0x20;
	}
	buf[9] ^= 1;
	assert_int_equal(sctp_packet_check_crc(buf, n), SCTP_PERR_CHECKSUM);
	buf[9] ^= 1;
	assert_int_equal(sctp_packet_check_crc(buf, n), 0);
	assert_int_equal(sctp_packet_check_crc(buf, 11), SCTP_PERR_SHORT_PACKET);
}

static void test_framing(void **state UNUSED)
{
	/* Chunk length under 4. */
	assert_int_equal(packet_rc(B("\x0b\x00\x00\x03")), SCTP_PERR_CHUNK_LEN);
	assert_int_equal(packet_rc(B("\x0b\x00\x00\x00")), SCTP_PERR_CHUNK_LEN);
	/* Length past the end. */
	assert_int_equal(packet_rc(B("\x0b\x00\x00\x08")), SCTP_PERR_CHUNK_PAST_END);
	assert_int_equal(packet_rc(B("\x0b\x00\xff\xff")), SCTP_PERR_CHUNK_PAST_END);
	/* Second chunk truncated. */
	assert_int_equal(packet_rc(B("\x0b\x00\x00\x04\x0b\x00\x00\x08\x00")),
	                 SCTP_PERR_CHUNK_PAST_END);
	/* 1..3 stray bytes after the last chunk. */
	assert_int_equal(packet_rc(B("\x0b\x00\x00\x04\x00")), SCTP_PERR_TRAILING);
	assert_int_equal(packet_rc(B("\x0b\x00\x00\x04\x00\x00\x00")),
	                 SCTP_PERR_TRAILING);
	/* Padding: a 5-byte chunk padded to 8 and followed by another. */
	assert_int_equal(packet_rc(B("\x80\x00\x00\x05\xaa\x00\x00\x00"
	                             "\x0b\x00\x00\x04")), 0);
	/* Padding bytes are ignored, whatever they hold. */
	assert_int_equal(packet_rc(B("\x80\x00\x00\x05\xaa\xff\xff\xff"
	                             "\x0b\x00\x00\x04")), 0);
	/* Missing padding is tolerated on the last chunk only. */
	assert_int_equal(packet_rc(B("\x80\x00\x00\x05\xaa")), 0);
	assert_int_equal(packet_rc(B("\x80\x00\x00\x05\xaa\x00")), 0);
	/* (here the next chunk's first three bytes are taken as padding) */
	assert_int_equal(packet_rc(B("\x80\x00\x00\x05\xaa\x0b\x00\x00\x04")),
	                 SCTP_PERR_TRAILING);
	/* Bundling: INIT, INIT-ACK, SHUTDOWN-COMPLETE travel alone. */
	assert_int_equal(packet_rc(B("\x0e\x00\x00\x04\x0b\x00\x00\x04")),
	                 SCTP_PERR_BUNDLING);
	assert_int_equal(packet_rc(B("\x0b\x00\x00\x04\x0e\x00\x00\x04")),
	                 SCTP_PERR_BUNDLING);
	assert_int_equal(packet_rc(B("\x0e\x01\x00\x04")), 0);
}

static void test_chunk_iter(void **state UNUSED)
{
	uint8_t buf[128];
	struct sctp_packet pkt;
	struct sctp_chunk_iter it;
	struct sctp_chunk c;
	size_t n = mk(buf, B("\x0b\x00\x00\x04"                /* COOKIE-ACK */
	                     "\x07\x00\x00\x08\x00\x00\x00\x2a" /* SHUTDOWN */
	                     "\xc1\x80\x00\x06\x01\x02\x00\x00" /* unknown */
	                     "\x08\x00\x00\x04"));              /* SHUTDOWN-ACK */

	assert_int_equal(sctp_packet_parse(buf, n, &pkt), 0);
	assert_int_equal(pkt.nchunks, 4);
	sctp_chunk_iter_init(&it, &pkt);
	assert_int_equal(sctp_chunk_next(&it, &c), 1);
	assert_int_equal(c.type, SCTP_CT_COOKIE_ACK);
	assert_int_equal(c.value_len, 0);
	assert_int_equal(sctp_chunk_next(&it, &c), 1);
	assert_int_equal(c.type, SCTP_CT_SHUTDOWN);
	assert_int_equal(c.length, 8);
	assert_int_equal(sctp_chunk_next(&it, &c), 1);
	assert_int_equal(c.type, 0xc1);
	assert_int_equal(c.flags, 0x80);
	assert_int_equal(c.value_len, 2);
	assert_memory_equal(c.value, "\x01\x02", 2);
	assert_false(sctp_chunk_type_known(c.type));
	assert_int_equal(sctp_unknown_chunk_action(c.type), SCTP_UNKNOWN_SKIP_REPORT);
	assert_int_equal(sctp_chunk_next(&it, &c), 1);
	assert_int_equal(c.type, SCTP_CT_SHUTDOWN_ACK);
	assert_int_equal(sctp_chunk_next(&it, &c), 0);
	assert_int_equal(sctp_chunk_next(&it, &c), 0);
	corpus_write("hand", buf, n);
}

static void test_unknown_actions(void **state UNUSED)
{
	assert_int_equal(sctp_unknown_chunk_action(0x3f), SCTP_UNKNOWN_STOP);
	assert_int_equal(sctp_unknown_chunk_action(0x4a), SCTP_UNKNOWN_STOP_REPORT);
	assert_int_equal(sctp_unknown_chunk_action(0x84), SCTP_UNKNOWN_SKIP);
	assert_int_equal(sctp_unknown_chunk_action(0xc0), SCTP_UNKNOWN_SKIP_REPORT);
	assert_int_equal(sctp_unknown_param_action(0x0100), SCTP_UNKNOWN_STOP);
	assert_int_equal(sctp_unknown_param_action(0x4100), SCTP_UNKNOWN_STOP_REPORT);
	assert_int_equal(sctp_unknown_param_action(0x8005), SCTP_UNKNOWN_SKIP);
	assert_int_equal(sctp_unknown_param_action(0xc006), SCTP_UNKNOWN_SKIP_REPORT);
	for (int t = 0; t < 256; t++) {
		int want = t <= 11 || t == 14 || t == 64;

		assert_int_equal(sctp_chunk_type_known((uint8_t)t), want);
	}
	for (int e = -30; e <= 0; e++)
		assert_non_null(sctp_perr_str(e));
}

static void test_data(void **state UNUSED)
{
	uint8_t buf[128];
	struct sctp_data d;
	struct sctp_chunk c = one_chunk(B(
		"\x00\x03\x00\x13"                  /* DATA, B|E, len 19 */
		"\x11\x22\x33\x44\x00\x07\x00\x09"  /* TSN, SID 7, SSN 9 */
		"\x00\x00\x00\x33" "abc\x00"),      /* PPID 51, data, pad */
		buf);

	assert_int_equal(sctp_data_parse(&c, &d), 0);
	assert_int_equal(d.flags, SCTP_CF_B | SCTP_CF_E);
	assert_int_equal(d.tsn, 0x11223344);
	assert_int_equal(d.sid, 7);
	assert_int_equal(d.ssn, 9);
	assert_int_equal(d.ppid, 51);
	assert_int_equal(d.payload_len, 3);
	assert_memory_equal(d.payload, "abc", 3);
	assert_int_equal(sctp_idata_parse(&c, &d), SCTP_PERR_WRONG_TYPE);

	/* Zero-length DATA: the error names the TSN for the ABORT. */
	c = one_chunk(B("\x00\x03\x00\x10\x00\x00\x00\x05\x00\x00\x00\x00"
	                "\x00\x00\x00\x00"), buf);
	assert_int_equal(sctp_data_parse(&c, &d), SCTP_PERR_NO_USER_DATA);
	assert_int_equal(d.tsn, 5);
	/* Under the fixed fields. */
	c = one_chunk(B("\x00\x03\x00\x0c\x00\x00\x00\x05\x00\x00\x00\x00"), buf);
	assert_int_equal(sctp_data_parse(&c, &d), SCTP_PERR_SHORT_CHUNK);
}

static void test_idata(void **state UNUSED)
{
	uint8_t buf[128];
	struct sctp_data d;
	struct sctp_chunk c = one_chunk(B(
		"\x40\x06\x00\x15"                  /* I-DATA, U|B, len 21 */
		"\x00\x00\x00\x10\x00\x02\x00\x00"  /* TSN 16, SID 2 */
		"\x00\x00\x01\x00\x00\x00\x00\x2a"  /* MID 256, PPID 42 */
		"x\x00\x00\x00"), buf);

	assert_int_equal(sctp_idata_parse(&c, &d), 0);
	assert_int_equal(d.flags, SCTP_CF_U | SCTP_CF_B);
	assert_int_equal(d.tsn, 16);
	assert_int_equal(d.sid, 2);
	assert_int_equal(d.mid, 256);
	assert_int_equal(d.ppid, 42);
	assert_int_equal(d.fsn, 0);
	assert_int_equal(d.payload_len, 1);
	/* Without B the same field is the fragment sequence number. */
	c = one_chunk(B("\x40\x01\x00\x15\x00\x00\x00\x11\x00\x02\x00\x00"
	                "\x00\x00\x01\x00\x00\x00\x00\x03" "y\x00\x00\x00"), buf);
	assert_int_equal(sctp_idata_parse(&c, &d), 0);
	assert_int_equal(d.fsn, 3);
	assert_int_equal(d.ppid, 0);
	c = one_chunk(B("\x40\x03\x00\x14\x00\x00\x00\x11\x00\x02\x00\x00"
	                "\x00\x00\x01\x00\x00\x00\x00\x03"), buf);
	assert_int_equal(sctp_idata_parse(&c, &d), SCTP_PERR_NO_USER_DATA);
	assert_int_equal(d.tsn, 17);
	c = one_chunk(B("\x40\x03\x00\x10\x00\x00\x00\x11\x00\x02\x00\x00"
	                "\x00\x00\x01\x00"), buf);
	assert_int_equal(sctp_idata_parse(&c, &d), SCTP_PERR_SHORT_CHUNK);
}

/* INIT-ACK with a cookie, extensions, Forward-TSN and unknown params. */
static void test_init_ack(void **state UNUSED)
{
	uint8_t buf[256];
	struct sctp_init in;
	struct sctp_chunk c = one_chunk(B(
		"\x02\x00\x00\x4c"
		"\xde\xad\xbe\xef\x00\x01\x00\x00"  /* tag, a_rwnd 65536 */
		"\x00\x0a\x00\x05\x00\x00\x00\x64"  /* OS 10, MIS 5, TSN 100 */
		"\x00\x07\x00\x09" "COOKI\x00\x00\x00"   /* State Cookie, padded */
		"\x80\x08\x00\x07\x40\xc0\x82\x00"  /* Supported Ext: I-DATA, FWD, RECONF */
		"\xc0\x00\x00\x04"                  /* Forward-TSN-Supported */
		"\x80\x05\x00\x05\x00\x00\x00\x00"  /* PADDING (unknown, skip) */
		"\xc0\x99\x00\x06\x01\x02\x00\x00"  /* unknown, skip + report */
		"\x00\x09\x00\x08\x00\x00\x03\xe8"  /* Cookie Preservative 1000 */
		"\x00\x05\x00\x08\x0a\x00\x00\x01"),/* IPv4 10.0.0.1 */
		buf);

	assert_int_equal(sctp_init_parse(&c, &in), 0);
	assert_int_equal(in.initiate_tag, 0xdeadbeef);
	assert_int_equal(in.a_rwnd, 65536);
	assert_int_equal(in.os, 10);
	assert_int_equal(in.mis, 5);
	assert_int_equal(in.initial_tsn, 100);
	assert_int_equal(in.cookie_len, 5);
	assert_memory_equal(in.cookie, "COOKI", 5);
	assert_int_equal(in.ext_len, 3);
	assert_true(sctp_init_supports(&in, SCTP_CT_I_DATA));
	assert_true(sctp_init_supports(&in, SCTP_CT_FORWARD_TSN));
	assert_false(sctp_init_supports(&in, SCTP_CT_ASCONF));
	assert_true(in.forward_tsn);
	assert_false(in.ecn);
	assert_false(in.stopped);
	assert_int_equal(in.cookie_preservative_ms, 1000);
	assert_int_equal(in.n_unrecognized, 1);
	assert_int_equal(in.n_unrecognized_total, 1);
	assert_int_equal(in.unrecognized[0].type, 0xc099);
	assert_int_equal(in.unrecognized[0].length, 6);
	assert_memory_equal(in.unrecognized[0].raw, "\xc0\x99\x00\x06\x01\x02", 6);
}

static int init_rc(const uint8_t *chunk, size_t n, struct sctp_init *in)
{
	uint8_t buf[256];
	struct sctp_chunk c = one_chunk(chunk, n, buf);

	return sctp_init_parse(&c, in);
}

#define INIT_HDR "\xde\xad\xbe\xef\x00\x01\x00\x00\x00\x0a\x00\x05\x00\x00\x00\x64"

static void test_init_odd(void **state UNUSED)
{
	struct sctp_init in;

	/* Bare INIT: no parameters at all. */
	assert_int_equal(init_rc(B("\x01\x00\x00\x14" INIT_HDR), &in), 0);
	assert_null(in.cookie);
	assert_false(sctp_init_supports(&in, SCTP_CT_I_DATA));
	/* Fixed part truncated. */
	assert_int_equal(init_rc(B("\x01\x00\x00\x10\xde\xad\xbe\xef\x00\x01"
	                           "\x00\x00\x00\x0a\x00\x05"), &in),
	                 SCTP_PERR_SHORT_CHUNK);
	/* Initiate tag 0, zero streams. */
	assert_int_equal(init_rc(B("\x01\x00\x00\x14\x00\x00\x00\x00\x00\x01"
	                           "\x00\x00\x00\x0a\x00\x05\x00\x00\x00\x64"), &in),
	                 SCTP_PERR_INIT_TAG);
	assert_int_equal(init_rc(B("\x01\x00\x00\x14\x00\x00\x00\x01\x00\x01"
	                           "\x00\x00\x00\x00\x00\x05\x00\x00\x00\x64"), &in),
	                 SCTP_PERR_INIT_STREAMS);
	assert_int_equal(init_rc(B("\x01\x00\x00\x14\x00\x00\x00\x01\x00\x01"
	                           "\x00\x00\x00\x05\x00\x00\x00\x00\x00\x64"), &in),
	                 SCTP_PERR_INIT_STREAMS);
	/* Parameter length under 4, past the chunk, stray bytes. */
	assert_int_equal(init_rc(B("\x01\x00\x00\x18" INIT_HDR "\xc0\x00\x00\x03"),
	                         &in), SCTP_PERR_TLV_LEN);
	assert_int_equal(init_rc(B("\x01\x00\x00\x18" INIT_HDR "\xc0\x00\x00\x08"),
	                         &in), SCTP_PERR_TLV_LEN);
	assert_int_equal(init_rc(B("\x01\x00\x00\x16" INIT_HDR "\xc0\x00\x00\x00"),
	                         &in), SCTP_PERR_TLV_LEN);
	/* The last parameter's padding may be in or out of the chunk length. */
	assert_int_equal(init_rc(B("\x01\x00\x00\x19" INIT_HDR
	                           "\x80\x08\x00\x05\x40\x00\x00\x00"), &in), 0);
	assert_true(sctp_init_supports(&in, SCTP_CT_I_DATA));
	assert_int_equal(init_rc(B("\x01\x00\x00\x1c" INIT_HDR
	                           "\x80\x08\x00\x05\x40\x00\x00\x00"), &in), 0);
	assert_true(sctp_init_supports(&in, SCTP_CT_I_DATA));
	/* ... but a parameter in the middle must be padded. */
	assert_int_equal(init_rc(B("\x01\x00\x00\x1d" INIT_HDR
	                           "\x80\x08\x00\x05\x40\xc0\x00\x00\x04\x00\x00\x00"),
	                         &in), SCTP_PERR_TLV_LEN);
	/* A State Cookie in an INIT; an INIT-ACK without or with an empty one. */
	assert_int_equal(init_rc(B("\x01\x00\x00\x1c" INIT_HDR
	                           "\x00\x07\x00\x08\x01\x02\x03\x04"), &in),
	                 SCTP_PERR_COOKIE_IN_INIT);
	assert_int_equal(init_rc(B("\x02\x00\x00\x14" INIT_HDR), &in),
	                 SCTP_PERR_NO_COOKIE);
	assert_int_equal(init_rc(B("\x02\x00\x00\x18" INIT_HDR "\x00\x07\x00\x04"),
	                         &in), SCTP_PERR_NO_COOKIE);
	assert_int_equal(init_rc(B("\x02\x00\x00\x24" INIT_HDR
	                           "\x00\x07\x00\x05\x01\x00\x00\x00"
	                           "\x00\x07\x00\x05\x02\x00\x00\x00"), &in),
	                 SCTP_PERR_PARAM_DUP);
	/* Duplicate Supported Extensions; malformed known parameters. */
	assert_int_equal(init_rc(B("\x01\x00\x00\x24" INIT_HDR
	                           "\x80\x08\x00\x05\x40\x00\x00\x00"
	                           "\x80\x08\x00\x05\x40\x00\x00\x00"), &in),
	                 SCTP_PERR_PARAM_DUP);
	assert_int_equal(init_rc(B("\x01\x00\x00\x1c" INIT_HDR
	                           "\x00\x05\x00\x07\x0a\x00\x00\x00"), &in),
	                 SCTP_PERR_PARAM_INVALID);
	assert_int_equal(init_rc(B("\x01\x00\x00\x1c" INIT_HDR
	                           "\x00\x06\x00\x08\x00\x00\x00\x00"), &in),
	                 SCTP_PERR_PARAM_INVALID);
	assert_int_equal(init_rc(B("\x01\x00\x00\x18" INIT_HDR "\x00\x09\x00\x04"),
	                         &in), SCTP_PERR_PARAM_INVALID);
	/* Upper bits 00: stop at the parameter, report nothing; later
	 * parameters are not used (but still framed). */
	assert_int_equal(init_rc(B("\x01\x00\x00\x20" INIT_HDR
	                           "\x00\x63\x00\x04"
	                           "\xc0\x00\x00\x04" "\x80\x08\x00\x04"), &in), 0);
	assert_true(in.stopped);
	assert_false(in.forward_tsn);
	assert_null(in.ext);
	assert_int_equal(in.n_unrecognized_total, 0);
	/* Upper bits 01: stop and report. */
	assert_int_equal(init_rc(B("\x01\x00\x00\x20" INIT_HDR
	                           "\xc0\x00\x00\x04"
	                           "\x40\x63\x00\x05\x07\x00\x00\x00"), &in), 0);
	assert_true(in.stopped);
	assert_true(in.forward_tsn);
	assert_int_equal(in.n_unrecognized, 1);
	assert_int_equal(in.unrecognized[0].type, 0x4063);
	/* Even after a stop, a broken frame is an error. */
	assert_int_equal(init_rc(B("\x01\x00\x00\x1c" INIT_HDR
	                           "\x00\x63\x00\x04" "\x80\x08\x00\x09"), &in),
	                 SCTP_PERR_TLV_LEN);
	/* Host Name Address, ECN, zero checksum: noted. */
	assert_int_equal(init_rc(B("\x01\x00\x00\x28" INIT_HDR
	                           "\x00\x0b\x00\x08" "abcd"
	                           "\x80\x00\x00\x04"
	                           "\x80\x01\x00\x08\x00\x00\x00\x01"), &in), 0);
	assert_true(in.host_name);
	assert_true(in.ecn);
	assert_true(in.zero_checksum);
	/* INIT-ACK reports about our INIT are accepted there. */
	assert_int_equal(init_rc(B("\x02\x00\x00\x24" INIT_HDR
	                           "\x00\x07\x00\x05\x01\x00\x00\x00"
	                           "\x00\x08\x00\x08\xc0\x99\x00\x04"), &in), 0);
	assert_int_equal(in.n_unrecognized_total, 0);
}

/* More unknown-to-report parameters than the array: all counted. */
static void test_init_many_unrecognized(void **state UNUSED)
{
	uint8_t chunk[256], buf[300];
	struct sctp_builder b;
	struct sctp_packet pkt;
	struct sctp_chunk_iter it;
	struct sctp_chunk c;
	struct sctp_init in;
	size_t n;

	assert_int_equal(sctp_build_start(&b, buf, sizeof(buf), 1, 2, 3), 0);
	assert_int_equal(sctp_chunk_open(&b, SCTP_CT_INIT, 0), 0);
	assert_int_equal(sctp_chunk_put(&b, INIT_HDR, 16), 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(sctp_chunk_put_tlv(&b, (uint16_t)(0xc100 + i),
		                                    "z", 1), 0);
	assert_int_equal(sctp_chunk_close(&b), 0);
	n = sctp_build_finish(&b, 0);
	memcpy(chunk, buf, n);
	assert_int_equal(sctp_packet_parse(chunk, n, &pkt), 0);
	sctp_chunk_iter_init(&it, &pkt);
	assert_int_equal(sctp_chunk_next(&it, &c), 1);
	assert_int_equal(sctp_init_parse(&c, &in), 0);
	assert_int_equal(in.n_unrecognized, SCTP_INIT_MAX_UNRECOGNIZED);
	assert_int_equal(in.n_unrecognized_total, 20);
	assert_int_equal(in.unrecognized[7].type, 0xc107);
}

static void test_sack(void **state UNUSED)
{
	uint8_t buf[256];
	struct sctp_sack s;
	uint16_t st, en;
	struct sctp_chunk c = one_chunk(B(
		"\x03\x00\x00\x24"
		"\x00\x00\x10\x00\x00\x00\x80\x00"  /* cum 4096, a_rwnd 32768 */
		"\x00\x02\x00\x03"                  /* 2 gaps, 3 dups */
		"\x00\x02\x00\x03\x00\x05\x00\x05"  /* 2-3, 5-5 */
		"\x00\x00\x0f\xff\x00\x00\x0f\xfe\x00\x00\x0f\xfd"), buf);

	assert_int_equal(sctp_sack_parse(&c, &s), 0);
	assert_int_equal(s.cum_tsn, 4096);
	assert_int_equal(s.a_rwnd, 32768);
	assert_int_equal(s.ngaps, 2);
	assert_int_equal(s.ndups, 3);
	sctp_sack_gap(&s, 0, &st, &en);
	assert_int_equal(st, 2);
	assert_int_equal(en, 3);
	sctp_sack_gap(&s, 1, &st, &en);
	assert_int_equal(st, 5);
	assert_int_equal(en, 5);
	assert_int_equal(sctp_sack_dup(&s, 0), 4095);
	assert_int_equal(sctp_sack_dup(&s, 2), 4093);

	/* Gap count larger than the chunk. */
	c = one_chunk(B("\x03\x00\x00\x14\x00\x00\x10\x00\x00\x00\x80\x00"
	                "\x00\x02\x00\x00\x00\x02\x00\x03"), buf);
	assert_int_equal(sctp_sack_parse(&c, &s), SCTP_PERR_SHORT_CHUNK);
	/* Dup count larger than the chunk. */
	c = one_chunk(B("\x03\x00\x00\x14\x00\x00\x10\x00\x00\x00\x80\x00"
	                "\x00\x00\x00\x02\x00\x02\x00\x03"), buf);
	assert_int_equal(sctp_sack_parse(&c, &s), SCTP_PERR_SHORT_CHUNK);
	/* Counts over the caps, however long the chunk claims to be. */
	c = one_chunk(B("\x03\x00\x00\x10\x00\x00\x10\x00\x00\x00\x80\x00"
	                "\xff\xff\x00\x00"), buf);
	assert_int_equal(sctp_sack_parse(&c, &s), SCTP_PERR_SACK_COUNT);
	c = one_chunk(B("\x03\x00\x00\x10\x00\x00\x10\x00\x00\x00\x80\x00"
	                "\x00\x00\x04\x01"), buf);
	assert_int_equal(sctp_sack_parse(&c, &s), SCTP_PERR_SACK_COUNT);
	/* Bad gap blocks: start 0, start after end. */
	c = one_chunk(B("\x03\x00\x00\x14\x00\x00\x10\x00\x00\x00\x80\x00"
	                "\x00\x01\x00\x00\x00\x00\x00\x03"), buf);
	assert_int_equal(sctp_sack_parse(&c, &s), SCTP_PERR_SACK_GAP);
	c = one_chunk(B("\x03\x00\x00\x14\x00\x00\x10\x00\x00\x00\x80\x00"
	                "\x00\x01\x00\x00\x00\x04\x00\x03"), buf);
	assert_int_equal(sctp_sack_parse(&c, &s), SCTP_PERR_SACK_GAP);
	/* Truncated fixed part. */
	c = one_chunk(B("\x03\x00\x00\x0c\x00\x00\x10\x00\x00\x00\x80\x00"), buf);
	assert_int_equal(sctp_sack_parse(&c, &s), SCTP_PERR_SHORT_CHUNK);
}

static void test_heartbeat(void **state UNUSED)
{
	uint8_t buf[128];
	struct sctp_heartbeat hb;
	struct sctp_chunk c = one_chunk(B("\x04\x00\x00\x0e\x00\x01\x00\x0a"
	                                  "hello\x01\x00\x00"), buf);

	assert_int_equal(sctp_heartbeat_parse(&c, &hb), 0);
	assert_int_equal(hb.info_len, 6);
	assert_memory_equal(hb.info, "hello\x01", 6);
	assert_int_equal(hb.param_len, 10);
	c = one_chunk(B("\x05\x00\x00\x08\x00\x01\x00\x04"), buf);
	assert_int_equal(sctp_heartbeat_parse(&c, &hb), 0);
	assert_int_equal(hb.info_len, 0);
	/* No parameter, the wrong parameter, a broken one. */
	c = one_chunk(B("\x04\x00\x00\x04"), buf);
	assert_int_equal(sctp_heartbeat_parse(&c, &hb), SCTP_PERR_HB_INFO);
	c = one_chunk(B("\x04\x00\x00\x08\x00\x02\x00\x04"), buf);
	assert_int_equal(sctp_heartbeat_parse(&c, &hb), SCTP_PERR_HB_INFO);
	c = one_chunk(B("\x04\x00\x00\x08\x00\x01\x00\x09"), buf);
	assert_int_equal(sctp_heartbeat_parse(&c, &hb), SCTP_PERR_TLV_LEN);
}

static void test_abort_error(void **state UNUSED)
{
	uint8_t buf[128];
	struct sctp_causes ca;
	struct sctp_chunk c;

	/* ABORT, T bit, User-Initiated Abort with a reason. */
	c = one_chunk(B("\x06\x01\x00\x0b\x00\x0c\x00\x07" "bye\x00"), buf);
	assert_int_equal(sctp_abort_parse(&c, &ca), 0);
	assert_true(ca.t);
	assert_int_equal(ca.ncauses, 1);
	assert_int_equal(ca.first_code, SCTP_C_USER_ABORT);
	/* ABORT without causes is allowed. */
	c = one_chunk(B("\x06\x00\x00\x04"), buf);
	assert_int_equal(sctp_abort_parse(&c, &ca), 0);
	assert_false(ca.t);
	assert_int_equal(ca.ncauses, 0);
	assert_int_equal(sctp_error_parse(&c, &ca), SCTP_PERR_WRONG_TYPE);
	/* ERROR: Unrecognized Chunk Type then Invalid Stream Identifier. */
	c = one_chunk(B("\x09\x00\x00\x18\x00\x06\x00\x0c\xc1\x00\x00\x06"
	                "\x01\x02\x00\x00\x00\x01\x00\x08\x00\x07\x00\x00"), buf);
	assert_int_equal(sctp_error_parse(&c, &ca), 0);
	assert_int_equal(ca.ncauses, 2);
	assert_int_equal(ca.first_code, SCTP_C_UNRECOGNIZED_CHUNK);
	/* Causes whose fixed fields are missing. */
	c = one_chunk(B("\x09\x00\x00\x08\x00\x01\x00\x04"), buf);
	assert_int_equal(sctp_error_parse(&c, &ca), SCTP_PERR_CAUSE_INVALID);
	c = one_chunk(B("\x06\x00\x00\x0a\x00\x09\x00\x06\x00\x00"), buf);
	assert_int_equal(sctp_abort_parse(&c, &ca), SCTP_PERR_CAUSE_INVALID);
	/* Missing Mandatory Parameter: count past the list. */
	c = one_chunk(B("\x06\x00\x00\x10\x00\x02\x00\x0a\x00\x00\x00\x02"
	                "\x00\x07\x00\x00"), buf);
	assert_int_equal(sctp_abort_parse(&c, &ca), SCTP_PERR_CAUSE_INVALID);
	c = one_chunk(B("\x06\x00\x00\x10\x00\x02\x00\x0c\x00\x00\x00\x02"
	                "\x00\x07\x00\x08"), buf);
	assert_int_equal(sctp_abort_parse(&c, &ca), 0);
	c = one_chunk(B("\x06\x00\x00\x10\x00\x02\x00\x0c\xff\xff\xff\xff"
	                "\x00\x07\x00\x08"), buf);
	assert_int_equal(sctp_abort_parse(&c, &ca), SCTP_PERR_CAUSE_INVALID);
	/* Cause length past the chunk. */
	c = one_chunk(B("\x09\x00\x00\x08\x00\x0c\x00\x09"), buf);
	assert_int_equal(sctp_error_parse(&c, &ca), SCTP_PERR_TLV_LEN);
	/* ERROR has no T bit. */
	c = one_chunk(B("\x09\x01\x00\x08\x00\x0c\x00\x04"), buf);
	assert_int_equal(sctp_error_parse(&c, &ca), 0);
	assert_false(ca.t);
}

static void test_small_chunks(void **state UNUSED)
{
	uint8_t buf[128];
	struct sctp_chunk c;
	const uint8_t *ck;
	size_t len;
	uint32_t tsn;
	int t;

	c = one_chunk(B("\x07\x00\x00\x08\x12\x34\x56\x78"), buf);
	assert_int_equal(sctp_shutdown_parse(&c, &tsn), 0);
	assert_int_equal(tsn, 0x12345678);
	c = one_chunk(B("\x07\x00\x00\x06\x12\x34\x00\x00"), buf);
	assert_int_equal(sctp_shutdown_parse(&c, &tsn), SCTP_PERR_SHORT_CHUNK);
	c = one_chunk(B("\x0a\x00\x00\x07" "ck\x01\x00"), buf);
	assert_int_equal(sctp_cookie_echo_parse(&c, &ck, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(ck, "ck\x01", 3);
	c = one_chunk(B("\x0a\x00\x00\x04"), buf);
	assert_int_equal(sctp_cookie_echo_parse(&c, &ck, &len), SCTP_PERR_NO_COOKIE);
	c = one_chunk(B("\x0b\x00\x00\x04"), buf);
	assert_int_equal(sctp_empty_chunk_parse(&c, SCTP_CT_COOKIE_ACK, &t), 0);
	assert_int_equal(sctp_empty_chunk_parse(&c, SCTP_CT_SHUTDOWN_ACK, &t),
	                 SCTP_PERR_WRONG_TYPE);
	c = one_chunk(B("\x08\x00\x00\x04"), buf);
	assert_int_equal(sctp_empty_chunk_parse(&c, SCTP_CT_SHUTDOWN_ACK, NULL), 0);
	c = one_chunk(B("\x0e\x01\x00\x04"), buf);
	assert_int_equal(sctp_empty_chunk_parse(&c, SCTP_CT_SHUTDOWN_COMPLETE, &t), 0);
	assert_true(t);
	c = one_chunk(B("\x0e\x00\x00\x04"), buf);
	assert_int_equal(sctp_empty_chunk_parse(&c, SCTP_CT_SHUTDOWN_COMPLETE, &t), 0);
	assert_false(t);
	assert_int_equal(sctp_shutdown_parse(&c, &tsn), SCTP_PERR_WRONG_TYPE);
}

/* ---- builders and round trips ---- */

static void parse_first(const uint8_t *p, size_t n, struct sctp_chunk *c)
{
	struct sctp_packet pkt;
	struct sctp_chunk_iter it;

	assert_int_equal(sctp_packet_parse(p, n, &pkt), 0);
	assert_int_equal(sctp_packet_check_crc(p, n), 0);
	sctp_chunk_iter_init(&it, &pkt);
	assert_int_equal(sctp_chunk_next(&it, c), 1);
}

/* A canonical packet must rebuild to the same bytes. */
static void assert_canonical(const uint8_t *p, size_t n)
{
	static uint8_t out[SCTP_PACKET_MAX];
	size_t len = 0;

	assert_int_equal(sctp_rebuild(p, n, out, sizeof(out), &len), 0);
	assert_int_equal(len, n);
	assert_memory_equal(out, p, n);
}

static void test_build_roundtrip(void **state UNUSED)
{
	static const uint8_t ext[] = { SCTP_CT_I_DATA, SCTP_CT_FORWARD_TSN };
	static const uint16_t gaps[2][2] = { { 2, 4 }, { 7, 9 } };
	static const uint32_t dups[1] = { 77 };
	uint8_t buf[512];
	struct sctp_builder b;
	struct sctp_chunk_iter it;
	struct sctp_packet pkt;
	struct sctp_chunk c;
	struct sctp_data d, d2;
	struct sctp_init_params ip;
	struct sctp_init in;
	struct sctp_sack s;
	struct sctp_heartbeat hb;
	struct sctp_causes ca;
	uint32_t tsn;
	size_t n;

	/* DATA + I-DATA + SACK + HEARTBEAT + SHUTDOWN bundled. */
	assert_int_equal(sctp_build_start(&b, buf, sizeof(buf), 5000, 5001,
	                                  0xa1b2c3d4), 0);
	memset(&d, 0, sizeof(d));
	d.flags = SCTP_CF_B | SCTP_CF_E | SCTP_CF_I;
	d.tsn = 0xfffffffe;
	d.sid = 3;
	d.ssn = 65535;
	d.ppid = 99;
	d.payload = (const uint8_t *)"hello";
	d.payload_len = 5;
	assert_int_equal(sctp_build_data(&b, &d), 0);
	assert_int_equal(b.len % 4, 0);
	d.flags = SCTP_CF_E;
	d.mid = 0x01000000;
	d.fsn = 4;
	assert_int_equal(sctp_build_idata(&b, &d), 0);
	assert_int_equal(sctp_build_sack(&b, 100, 1 << 20, gaps, 2, dups, 1), 0);
	assert_int_equal(sctp_build_heartbeat(&b, SCTP_CT_HEARTBEAT, "abc", 3), 0);
	assert_int_equal(sctp_build_shutdown(&b, 42), 0);
	assert_int_equal(sctp_build_cause(&b, SCTP_CT_ERROR, 1,
	                                  SCTP_C_INVALID_STREAM, "\x00\x05\x00\x00",
	                                  4), 0);
	assert_int_equal(sctp_build_empty(&b, SCTP_CT_COOKIE_ACK, 0), 0);
	n = sctp_build_finish(&b, 0);
	corpus_write("hand", buf, n);

	assert_int_equal(sctp_packet_parse(buf, n, &pkt), 0);
	assert_int_equal(sctp_packet_check_crc(buf, n), 0);
	assert_int_equal(pkt.nchunks, 7);
	assert_int_equal(pkt.hdr.vtag, 0xa1b2c3d4);
	sctp_chunk_iter_init(&it, &pkt);
	assert_int_equal(sctp_chunk_next(&it, &c), 1);
	assert_int_equal(c.length, 16 + 5);
	assert_int_equal(sctp_data_parse(&c, &d2), 0);
	assert_int_equal(d2.flags, SCTP_CF_B | SCTP_CF_E | SCTP_CF_I);
	assert_int_equal(d2.tsn, 0xfffffffe);
	assert_int_equal(d2.ssn, 65535);
	assert_int_equal(d2.ppid, 99);
	assert_memory_equal(d2.payload, "hello", 5);
	assert_int_equal(sctp_chunk_next(&it, &c), 1);
	assert_int_equal(sctp_idata_parse(&c, &d2), 0);
	assert_int_equal(d2.flags, SCTP_CF_E);
	assert_int_equal(d2.mid, 0x01000000);
	assert_int_equal(d2.fsn, 4);
	assert_int_equal(d2.ppid, 0);
	assert_int_equal(sctp_chunk_next(&it, &c), 1);
	assert_int_equal(sctp_sack_parse(&c, &s), 0);
	assert_int_equal(s.cum_tsn, 100);
	assert_int_equal(s.a_rwnd, 1 << 20);
	assert_int_equal(s.ngaps, 2);
	assert_int_equal(sctp_sack_dup(&s, 0), 77);
	assert_int_equal(sctp_chunk_next(&it, &c), 1);
	assert_int_equal(sctp_heartbeat_parse(&c, &hb), 0);
	assert_int_equal(hb.info_len, 3);
	/* The chunk length leaves out the parameter's padding (§3.2.1). */
	assert_int_equal(c.length, 4 + 4 + 3);
	assert_int_equal(sctp_chunk_next(&it, &c), 1);
	assert_int_equal(sctp_shutdown_parse(&c, &tsn), 0);
	assert_int_equal(tsn, 42);
	assert_int_equal(sctp_chunk_next(&it, &c), 1);
	assert_int_equal(sctp_error_parse(&c, &ca), 0);
	assert_int_equal(c.flags, 0);          /* no T bit on ERROR */
	assert_int_equal(ca.first_code, SCTP_C_INVALID_STREAM);
	assert_int_equal(sctp_chunk_next(&it, &c), 1);
	assert_int_equal(c.type, SCTP_CT_COOKIE_ACK);
	assert_int_equal(sctp_chunk_next(&it, &c), 0);
	assert_canonical(buf, n);

	/* INIT-ACK with every typed parameter and an extra one. */
	memset(&ip, 0, sizeof(ip));
	ip.initiate_tag = 0x5555aaaa;
	ip.a_rwnd = 131072;
	ip.os = 65535;
	ip.mis = 1;
	ip.initial_tsn = 0x80000000;
	ip.cookie = (const uint8_t *)"0123456789";
	ip.cookie_len = 10;
	ip.ext = ext;
	ip.ext_len = sizeof(ext);
	ip.forward_tsn = 1;
	ip.extra = (const uint8_t *)"\x00\x08\x00\x08\xc0\x99\x00\x04";
	ip.extra_len = 8;
	assert_int_equal(sctp_build_start(&b, buf, sizeof(buf), 5000, 5001, 9), 0);
	assert_int_equal(sctp_build_init(&b, SCTP_CT_INIT_ACK, &ip), 0);
	n = sctp_build_finish(&b, 0);
	corpus_write("hand", buf, n);
	parse_first(buf, n, &c);
	assert_int_equal(sctp_init_parse(&c, &in), 0);
	assert_int_equal(in.initiate_tag, 0x5555aaaa);
	assert_int_equal(in.os, 65535);
	assert_int_equal(in.mis, 1);
	assert_int_equal(in.initial_tsn, 0x80000000);
	assert_int_equal(in.cookie_len, 10);
	assert_memory_equal(in.cookie, "0123456789", 10);
	assert_true(sctp_init_supports(&in, SCTP_CT_I_DATA));
	assert_true(in.forward_tsn);
	assert_canonical(buf, n);

	/* INIT without a cookie; a cookie is refused in INIT and required
	 * in INIT-ACK. */
	ip.cookie = NULL;
	ip.cookie_len = 0;
	ip.extra = NULL;
	ip.extra_len = 0;
	assert_int_equal(sctp_build_start(&b, buf, sizeof(buf), 5000, 5001, 0), 0);
	assert_int_equal(sctp_build_init(&b, SCTP_CT_INIT_ACK, &ip), SCTP_PERR_NO_COOKIE);
	assert_int_equal(sctp_build_init(&b, SCTP_CT_INIT, &ip), 0);
	n = sctp_build_finish(&b, 0);
	corpus_write("hand", buf, n);
	parse_first(buf, n, &c);
	assert_int_equal(sctp_init_parse(&c, &in), 0);
	assert_null(in.cookie);
	assert_canonical(buf, n);
	ip.cookie_len = 1;
	ip.cookie = (const uint8_t *)"x";
	assert_int_equal(sctp_build_start(&b, buf, sizeof(buf), 5000, 5001, 0), 0);
	assert_int_equal(sctp_build_init(&b, SCTP_CT_INIT, &ip), SCTP_PERR_COOKIE_IN_INIT);
	assert_int_equal(sctp_build_init(&b, SCTP_CT_DATA, &ip), SCTP_PERR_WRONG_TYPE);

	/* ABORT with the T bit and two causes; COOKIE-ECHO; SHUTDOWN-COMPLETE. */
	assert_int_equal(sctp_build_start(&b, buf, sizeof(buf), 1, 2, 3), 0);
	assert_int_equal(sctp_chunk_open(&b, SCTP_CT_ABORT, SCTP_CF_T), 0);
	assert_int_equal(sctp_chunk_put_tlv(&b, SCTP_C_NO_USER_DATA,
	                                    "\x00\x00\x00\x07", 4), 0);
	assert_int_equal(sctp_chunk_put_tlv(&b, SCTP_C_PROTOCOL_VIOLATION, "x", 1), 0);
	assert_int_equal(sctp_chunk_close(&b), 0);
	n = sctp_build_finish(&b, 0);
	corpus_write("hand", buf, n);
	parse_first(buf, n, &c);
	assert_int_equal(c.length, 4 + 8 + 5);
	assert_int_equal(sctp_abort_parse(&c, &ca), 0);
	assert_true(ca.t);
	assert_int_equal(ca.ncauses, 2);
	assert_int_equal(ca.first_code, SCTP_C_NO_USER_DATA);
	assert_canonical(buf, n);
	assert_int_equal(sctp_build_start(&b, buf, sizeof(buf), 1, 2, 3), 0);
	assert_int_equal(sctp_build_cookie_echo(&b, "cookie!", 7), 0);
	assert_int_equal(sctp_build_cookie_echo(&b, "", 0), SCTP_PERR_NO_COOKIE);
	assert_int_equal(sctp_build_causes(&b, SCTP_CT_ABORT, 0, NULL, 0), 0);
	n = sctp_build_finish(&b, 0);
	assert_canonical(buf, n);
	assert_int_equal(sctp_build_start(&b, buf, sizeof(buf), 1, 2, 3), 0);
	assert_int_equal(sctp_build_empty(&b, SCTP_CT_SHUTDOWN_COMPLETE, 1), 0);
	assert_int_equal(sctp_build_empty(&b, SCTP_CT_DATA, 1), SCTP_PERR_WRONG_TYPE);
	n = sctp_build_finish(&b, 0);
	parse_first(buf, n, &c);
	assert_int_equal(c.flags, SCTP_CF_T);
	assert_canonical(buf, n);
	/* RFC 9653: no checksum wanted. */
	assert_int_equal(sctp_build_start(&b, buf, sizeof(buf), 1, 2, 3), 0);
	assert_int_equal(sctp_build_empty(&b, SCTP_CT_SHUTDOWN_ACK, 0), 0);
	n = sctp_build_finish(&b, 1);
	assert_memory_equal(buf + 8, "\0\0\0\0", 4);
}

/* A chunk that does not fit leaves the packet exactly as it was. */
static void test_build_capacity(void **state UNUSED)
{
	uint8_t buf[64], copy[64];
	struct sctp_builder b;
	struct sctp_data d;
	uint16_t gaps[SCTP_SACK_MAX_GAPS + 1][2];
	size_t before;

	assert_int_equal(sctp_build_start(&b, buf, 11, 1, 2, 3), SCTP_PERR_NOSPACE);
	assert_int_equal(sctp_build_empty(&b, SCTP_CT_COOKIE_ACK, 0),
	                 SCTP_PERR_BUILDER_STATE);
	assert_int_equal(sctp_build_finish(&b, 0), 0);
	assert_int_equal(sctp_build_start(&b, buf, 12, 1, 2, 3), 0);
	assert_int_equal(sctp_build_empty(&b, SCTP_CT_COOKIE_ACK, 0), SCTP_PERR_NOSPACE);
	assert_int_equal(b.len, 12);

	memset(&d, 0, sizeof(d));
	d.payload = (const uint8_t *)"0123456789abcdef0123456789abcdef";
	for (size_t cap = 12; cap <= 64; cap++) {
		int rc;

		memset(buf, 0xee, sizeof(buf));
		assert_int_equal(sctp_build_start(&b, buf, cap, 1, 2, 3), 0);
		assert_int_equal(sctp_build_shutdown(&b, 1) == 0, cap >= 20);
		before = b.len;
		memcpy(copy, buf, sizeof(copy));
		d.payload_len = 13;          /* 16 + 13, padded to 32 */
		rc = sctp_build_data(&b, &d);
		if (before + 32 <= cap) {
			assert_int_equal(rc, 0);
			assert_int_equal(b.len, before + 32);
		} else {
			assert_int_equal(rc, SCTP_PERR_NOSPACE);
			assert_int_equal(b.len, before);
			assert_int_equal(b.chunk, 0);
			/* The packet itself is untouched. */
			assert_memory_equal(buf, copy, before);
		}
		/* The packet as it stands is always valid. */
		if (b.len > 12) {
			struct sctp_packet pkt;
			size_t n = sctp_build_finish(&b, 0);

			assert_true(n <= cap);
			assert_int_equal(sctp_packet_parse(buf, n, &pkt), 0);
		}
	}
	/* Zero-length DATA is never built. */
	d.payload_len = 0;
	assert_int_equal(sctp_build_start(&b, buf, sizeof(buf), 1, 2, 3), 0);
	assert_int_equal(sctp_build_data(&b, &d), SCTP_PERR_NO_USER_DATA);
	assert_int_equal(sctp_build_idata(&b, &d), SCTP_PERR_NO_USER_DATA);
	/* SACK counts over the caps are refused. */
	memset(gaps, 0, sizeof(gaps));
	assert_int_equal(sctp_build_sack(&b, 1, 1, gaps, SCTP_SACK_MAX_GAPS + 1,
	                                 NULL, 0), SCTP_PERR_SACK_COUNT);
	/* Incremental calls out of order. */
	assert_int_equal(sctp_chunk_put(&b, "x", 1), SCTP_PERR_BUILDER_STATE);
	assert_int_equal(sctp_chunk_close(&b), SCTP_PERR_BUILDER_STATE);
	assert_int_equal(sctp_chunk_open(&b, 0x80, 0), 0);
	assert_int_equal(sctp_chunk_open(&b, 0x80, 0), SCTP_PERR_BUILDER_STATE);
	assert_int_equal(sctp_build_shutdown(&b, 1), SCTP_PERR_BUILDER_STATE);
	assert_int_equal(sctp_chunk_put(&b, "x", 1), 0);
	/* finish drops an open chunk */
	assert_int_equal(sctp_build_finish(&b, 0), 12);
}

/* A chunk of 65535 bytes is the most a length field holds. */
static void test_build_limits(void **state UNUSED)
{
	static uint8_t buf[SCTP_PACKET_MAX + 100], big[SCTP_PACKET_MAX];
	struct sctp_builder b;
	struct sctp_data d;

	memset(&d, 0, sizeof(d));
	d.payload = big;
	d.payload_len = 65535 - 16 + 1;
	assert_int_equal(sctp_build_start(&b, buf, sizeof(buf), 1, 2, 3), 0);
	assert_int_equal(b.cap, SCTP_PACKET_MAX);
	assert_int_equal(sctp_build_data(&b, &d), SCTP_PERR_TOO_BIG);
	assert_int_equal(b.len, 12);
	d.payload_len = SCTP_PACKET_MAX - 12 - 16 - 3;
	assert_int_equal(sctp_build_data(&b, &d), 0);
	assert_true(b.len <= SCTP_PACKET_MAX);
	assert_int_equal(sctp_chunk_put_tlv(&b, 1, big, 65535), SCTP_PERR_BUILDER_STATE);
}

/* ---- interoperability with usrsctp ---- */

#define QCAP 2048
#define QBUF 4096

static struct {
	uint8_t buf[QCAP][QBUF];
	size_t len[QCAP];
	size_t head, tail;
	unsigned total;
	unsigned bad_parse, bad_crc, not_canonical, too_big;
	int first_bad_rc;
	uint32_t seen[8];          /* chunk types seen, a 256-bit set */
	unsigned per_type_written[256];
	uint16_t cport, sport;     /* the association under way */
	uint32_t c2s_vtag;         /* the tag the server expects */
	unsigned hb_echoed;        /* HEARTBEAT-ACKs echoing our probe */
	unsigned unrec_reported;   /* ERRORs reporting our unknown chunk */
} Q;

/* What we inject into usrsctp: a probe it must echo, and a chunk of an
 * unknown type whose upper bits (11) ask for skip-and-report. */
#define PROBE_INFO "sctpt-probe"
#define UNKNOWN_TYPE 0xc5

static void seen_add(uint8_t t)
{
	Q.seen[t / 32] |= 1u << (t % 32);
}

static int seen_has(uint8_t t)
{
	return (Q.seen[t / 32] >> (t % 32)) & 1;
}

/* Everything usrsctp sends passes through here; no cmocka asserts in
 * this callback, as a longjmp would unwind through usrsctp. */
static int capture_output(void *addr, void *buffer, size_t length,
                          uint8_t tos, uint8_t set_df)
{
	static uint8_t rebuilt[SCTP_PACKET_MAX];
	const uint8_t *p = buffer;
	struct sctp_packet pkt;
	struct sctp_chunk_iter it;
	struct sctp_chunk c;
	size_t rlen = 0;
	int rc;

	Q.total++;
	if ((rc = sctp_packet_parse(p, length, &pkt)) != 0) {
		Q.bad_parse++;
		Q.first_bad_rc = rc;
		return 0;
	}
	if (sctp_packet_check_crc(p, length) != 0)
		Q.bad_crc++;
	if (sctp_rebuild(p, length, rebuilt, sizeof(rebuilt), &rlen) != 0 ||
	    rlen != length || memcmp(rebuilt, p, length) != 0)
		Q.not_canonical++;
	if (pkt.hdr.src_port == Q.cport && pkt.first_type != SCTP_CT_INIT)
		Q.c2s_vtag = pkt.hdr.vtag;
	sctp_chunk_iter_init(&it, &pkt);
	while (sctp_chunk_next(&it, &c) == 1) {
		struct sctp_heartbeat hb;
		struct sctp_causes ca;

		seen_add(c.type);
		if (!sctp_chunk_type_known(c.type))
			Q.bad_parse++;
		if (c.type == SCTP_CT_HEARTBEAT_ACK &&
		    sctp_heartbeat_parse(&c, &hb) == 0 &&
		    hb.info_len == strlen(PROBE_INFO) &&
		    memcmp(hb.info, PROBE_INFO, hb.info_len) == 0)
			Q.hb_echoed++;
		/* The report carries our chunk, header first. */
		if (c.type == SCTP_CT_ERROR && sctp_error_parse(&c, &ca) == 0 &&
		    ca.first_code == SCTP_C_UNRECOGNIZED_CHUNK &&
		    ca.causes[4] == UNKNOWN_TYPE)
			Q.unrec_reported++;
	}
	/* A few seeds of each leading chunk type are enough. */
	if (Q.per_type_written[pkt.first_type]++ < 3)
		corpus_write("usrsctp", p, length);
	if (length > QBUF || Q.tail - Q.head >= QCAP) {
		Q.too_big++;
		return 0;
	}
	memcpy(Q.buf[Q.tail % QCAP], p, length);
	Q.len[Q.tail % QCAP] = length;
	Q.tail++;
	return 0;
}

/* Hands every queued packet to usrsctp (which may queue more). */
static void pump(void)
{
	while (Q.head != Q.tail) {
		size_t i = Q.head++ % QCAP;

		usrsctp_conninput((void *)1, Q.buf[i], Q.len[i], 0);
	}
}

static struct socket *mk_socket(uint16_t port, int idata)
{
	struct socket *s = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP,
	                                  NULL, NULL, 0, NULL);
	struct sockaddr_conn sc;
	int one = 1;

	assert_non_null(s);
	assert_int_equal(usrsctp_set_non_blocking(s, 1), 0);
	assert_int_equal(usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_NODELAY,
	                                    &one, sizeof(one)), 0);
	if (idata) {
		struct sctp_assoc_value av;
		int level = 2;

		assert_int_equal(usrsctp_setsockopt(s, IPPROTO_SCTP,
		                 SCTP_FRAGMENT_INTERLEAVE, &level, sizeof(level)), 0);
		memset(&av, 0, sizeof(av));
		av.assoc_id = SCTP_FUTURE_ASSOC;
		av.assoc_value = 1;
		assert_int_equal(usrsctp_setsockopt(s, IPPROTO_SCTP,
		                 0x00001206 /* SCTP_INTERLEAVING_SUPPORTED */,
		                 &av, sizeof(av)), 0);
	}
	memset(&sc, 0, sizeof(sc));
	sc.sconn_family = AF_CONN;
	sc.sconn_port = htons(port);
	sc.sconn_addr = (void *)1;
	assert_int_equal(usrsctp_bind(s, (struct sockaddr *)&sc, sizeof(sc)), 0);
	return s;
}

/* Reads what is there; returns bytes read (0 if nothing). */
static size_t drain(struct socket *s)
{
	static uint8_t buf[65536];
	size_t total = 0;

	for (;;) {
		struct sockaddr_conn from;
		socklen_t fromlen = sizeof(from);
		struct sctp_rcvinfo info;
		socklen_t infolen = sizeof(info);
		unsigned int infotype = 0;
		int flags = 0;
		ssize_t n = usrsctp_recvv(s, buf, sizeof(buf),
		                          (struct sockaddr *)&from, &fromlen,
		                          &info, &infolen, &infotype, &flags);

		if (n <= 0)
			return total;
		total += (size_t)n;
	}
}

/*
 * The other direction: packets our builders make must be accepted by
 * usrsctp, checksum included.  To the server, as if from the client: a
 * HEARTBEAT (usrsctp answers any heartbeat with an ACK echoing the info)
 * bundled with an unknown chunk it must skip and report in an ERROR.
 */
static void inject_probe(void)
{
	uint8_t buf[128];
	struct sctp_builder b;
	size_t n;

	assert_int_not_equal(Q.c2s_vtag, 0);
	assert_int_equal(sctp_build_start(&b, buf, sizeof(buf), Q.cport, Q.sport,
	                                  Q.c2s_vtag), 0);
	assert_int_equal(sctp_build_heartbeat(&b, SCTP_CT_HEARTBEAT, PROBE_INFO,
	                                      strlen(PROBE_INFO)), 0);
	assert_int_equal(sctp_build_raw(&b, UNKNOWN_TYPE, 0, "xyz", 3), 0);
	n = sctp_build_finish(&b, 0);
	corpus_write("hand", buf, n);
	usrsctp_conninput((void *)1, buf, n, 0);
}

static int send_msg(struct socket *s, size_t len, uint16_t sid)
{
	static uint8_t msg[20000];
	struct sctp_sndinfo snd;

	memset(msg, 'm', sizeof(msg));
	memset(&snd, 0, sizeof(snd));
	snd.snd_sid = sid;
	return usrsctp_sendv(s, msg, len, NULL, 0, &snd, sizeof(snd),
	                     SCTP_SENDV_SNDINFO, 0) == (ssize_t)len;
}

/*
 * One association from connect to close: the client sends messages of
 * several sizes (fragmented ones too) on a few streams, the server
 * answers, then the client closes gracefully, or aborts.
 */
static void run_assoc(uint16_t cport, uint16_t sport, int idata, int abort_close)
{
	static const size_t sizes[] = { 1, 100, 1400, 3000, 17000, 500 };
	struct socket *srv = mk_socket(sport, idata), *cli = mk_socket(cport, idata);
	struct socket *acc = NULL;
	struct sockaddr_conn sc;
	size_t want = 0, got = 0, back = 0;
	unsigned sent = 0, echoed = Q.hb_echoed, reported = Q.unrec_reported;
	int closed = 0, replied = 0, probed = 0;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		want += sizes[i];
	Q.cport = cport;
	Q.sport = sport;
	Q.c2s_vtag = 0;
	assert_int_equal(usrsctp_listen(srv, 1), 0);
	memset(&sc, 0, sizeof(sc));
	sc.sconn_family = AF_CONN;
	sc.sconn_port = htons(sport);
	sc.sconn_addr = (void *)1;
	assert_true(usrsctp_connect(cli, (struct sockaddr *)&sc, sizeof(sc)) == 0 ||
	            errno == EINPROGRESS);
	/* Bounded: 3000 rounds of at most 10 ms of usrsctp time. */
	for (int round = 0; round < 3000; round++) {
		pump();
		if (acc == NULL)
			acc = usrsctp_accept(srv, NULL, NULL);
		if (sent < sizeof(sizes) / sizeof(sizes[0]) &&
		    (usrsctp_get_events(cli) & SCTP_EVENT_WRITE) &&
		    send_msg(cli, sizes[sent], (uint16_t)(sent % 3)))
			sent++;
		if (acc != NULL)
			got += drain(acc);
		if (acc != NULL && got == want && !replied &&
		    send_msg(acc, 2000, 1))
			replied = 1;
		back += drain(cli);
		if (replied && back == 2000 && !probed) {
			inject_probe();
			probed = 1;
			continue;
		}
		if (probed && back == 2000 && !closed) {
			if (abort_close) {
				struct linger lg = { 1, 0 };

				assert_int_equal(usrsctp_setsockopt(cli, SOL_SOCKET,
				                 SO_LINGER, &lg, sizeof(lg)), 0);
			}
			usrsctp_close(cli);
			closed = 1;
		}
		if (closed && (seen_has(SCTP_CT_SHUTDOWN_COMPLETE) ||
		               (abort_close && seen_has(SCTP_CT_ABORT))) &&
		    Q.head == Q.tail)
			break;
		if (Q.head == Q.tail)
			usrsctp_handle_timers(10);
	}
	assert_int_equal(got, want);
	assert_int_equal(back, 2000);
	assert_true(closed);
	assert_int_equal(Q.hb_echoed, echoed + 1);
	assert_int_equal(Q.unrec_reported, reported + 1);
	if (acc != NULL)
		usrsctp_close(acc);
	usrsctp_close(srv);
	for (int i = 0; i < 50; i++) {
		pump();
		usrsctp_handle_timers(10);
	}
}

static void test_usrsctp_interop(void **state UNUSED)
{
	static const uint8_t need[] = {
		SCTP_CT_INIT, SCTP_CT_INIT_ACK, SCTP_CT_COOKIE_ECHO, SCTP_CT_COOKIE_ACK,
		SCTP_CT_DATA, SCTP_CT_I_DATA, SCTP_CT_SACK, SCTP_CT_SHUTDOWN,
		SCTP_CT_SHUTDOWN_ACK, SCTP_CT_SHUTDOWN_COMPLETE, SCTP_CT_ABORT,
		SCTP_CT_HEARTBEAT_ACK, SCTP_CT_ERROR,
	};

	memset(&Q, 0, sizeof(Q));
	/* No CRC offload here: usrsctp must write real checksums. */
	usrsctp_init_nothreads(0, capture_output, NULL);
	usrsctp_sysctl_set_sctp_blackhole(2);
	usrsctp_register_address((void *)1);
	run_assoc(5001, 5000, 0, 0);      /* DATA, SHUTDOWN */
	run_assoc(5003, 5002, 1, 1);      /* I-DATA, ABORT */
	usrsctp_deregister_address((void *)1);
	for (int i = 0; i < 50 && usrsctp_finish() != 0; i++) {
		pump();
		usrsctp_handle_timers(100);
	}
	print_message("usrsctp: %u packets, %u not byte-identical after rebuild\n",
	              Q.total, Q.not_canonical);
	assert_true(Q.total > 20);
	assert_int_equal(Q.bad_parse, 0);
	assert_int_equal(Q.first_bad_rc, 0);
	assert_int_equal(Q.bad_crc, 0);
	assert_int_equal(Q.too_big, 0);
	assert_int_equal(Q.not_canonical, 0);
	for (size_t i = 0; i < sizeof(need); i++) {
		if (!seen_has(need[i]))
			print_message("chunk type %u never seen\n", need[i]);
		assert_true(seen_has(need[i]));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_rfc3720),
		cmocka_unit_test(test_crc_paths),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_chunk_iter),
		cmocka_unit_test(test_unknown_actions),
		cmocka_unit_test(test_data),
		cmocka_unit_test(test_idata),
		cmocka_unit_test(test_init_ack),
		cmocka_unit_test(test_init_odd),
		cmocka_unit_test(test_init_many_unrecognized),
		cmocka_unit_test(test_sack),
		cmocka_unit_test(test_heartbeat),
		cmocka_unit_test(test_abort_error),
		cmocka_unit_test(test_small_chunks),
		cmocka_unit_test(test_build_roundtrip),
		cmocka_unit_test(test_build_capacity),
		cmocka_unit_test(test_build_limits),
		cmocka_unit_test(test_usrsctp_interop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
