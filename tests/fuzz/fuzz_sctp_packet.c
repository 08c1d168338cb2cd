/*
 * libFuzzer harness for the native engine's SCTP packet layer
 * (src/sctp/packet.c, packet_build.c, crc32c.c).
 *
 * Each input is parsed as a packet.  Besides the sanitizers' memory
 * checks, the harness holds the layer to its contract:
 *  - every view a parser returns lies inside the input;
 *  - every chunk is also fed to every typed parser under every known
 *    type, so each parser sees arbitrary bytes, not only what the packet
 *    framing lets through;
 *  - a packet that parses is rebuilt through the builders; the rebuild
 *    parses, means the same (tests/common/sctp_rebuild.h sctp_summary),
 *    and rebuilding it again gives the same bytes (canonical form);
 *  - rebuilding into any smaller buffer fails cleanly, never writes past
 *    it (the buffer is allocated to the exact size, so ASan would see);
 *  - both CRC32c routines agree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sctp/crc32c.h"
#include "sctp/packet.h"
#include "../common/sctp_rebuild.h"

/* Fails in release builds too, unlike assert(). */
#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *lo, *hi;

static void in_input(const void *p, size_t n)
{
	if (n == 0)
		return;
	CHECK((const uint8_t *)p >= lo && (const uint8_t *)p <= hi);
	CHECK(n <= (size_t)(hi - (const uint8_t *)p));
}

static void check_rc(int rc)
{
	CHECK(rc <= 0 && rc >= SCTP_PERR_BUILDER_STATE);
	CHECK(sctp_perr_str(rc) != NULL);
}

/* Every typed parser on this chunk's bytes, as if it were each type. */
static void parse_as_each(const struct sctp_chunk *orig)
{
	static const uint8_t types[] = {
		SCTP_CT_DATA, SCTP_CT_I_DATA, SCTP_CT_INIT, SCTP_CT_INIT_ACK,
		SCTP_CT_SACK, SCTP_CT_HEARTBEAT, SCTP_CT_HEARTBEAT_ACK,
		SCTP_CT_ABORT, SCTP_CT_ERROR, SCTP_CT_SHUTDOWN,
		SCTP_CT_COOKIE_ECHO, SCTP_CT_COOKIE_ACK,
	};
	struct sctp_chunk c = *orig;
	struct sctp_data d;
	struct sctp_init in;
	struct sctp_sack s;
	struct sctp_heartbeat hb;
	struct sctp_causes ca;
	const uint8_t *ck;
	size_t len;
	uint32_t tsn;
	int rc;

	for (size_t i = 0; i < sizeof(types); i++) {
		c.type = types[i];
		switch (c.type) {
		case SCTP_CT_DATA:
		case SCTP_CT_I_DATA:
			rc = c.type == SCTP_CT_DATA ? sctp_data_parse(&c, &d) :
			                              sctp_idata_parse(&c, &d);
			check_rc(rc);
			if (rc == 0) {
				CHECK(d.payload_len > 0);
				in_input(d.payload, d.payload_len);
			}
			break;
		case SCTP_CT_INIT:
		case SCTP_CT_INIT_ACK:
			rc = sctp_init_parse(&c, &in);
			check_rc(rc);
			if (rc != 0)
				break;
			in_input(in.params, in.params_len);
			in_input(in.cookie, in.cookie_len);
			in_input(in.ext, in.ext_len);
			CHECK(c.type == SCTP_CT_INIT || in.cookie_len > 0);
			CHECK(in.initiate_tag != 0 && in.os != 0 && in.mis != 0);
			CHECK(in.n_unrecognized <= SCTP_INIT_MAX_UNRECOGNIZED);
			CHECK(in.n_unrecognized <= in.n_unrecognized_total);
			for (unsigned k = 0; k < in.n_unrecognized; k++) {
				in_input(in.unrecognized[k].raw,
				         in.unrecognized[k].length);
				CHECK(in.unrecognized[k].type & 0x4000);
			}
			(void)sctp_init_supports(&in, SCTP_CT_I_DATA);
			break;
		case SCTP_CT_SACK:
			rc = sctp_sack_parse(&c, &s);
			check_rc(rc);
			if (rc != 0)
				break;
			CHECK(s.ngaps <= SCTP_SACK_MAX_GAPS);
			CHECK(s.ndups <= SCTP_SACK_MAX_DUPS);
			in_input(s.gaps, 4 * (size_t)s.ngaps);
			in_input(s.dups, 4 * (size_t)s.ndups);
			for (unsigned k = 0; k < s.ngaps; k++) {
				uint16_t a, b;

				sctp_sack_gap(&s, k, &a, &b);
				CHECK(a >= 1 && a <= b);
			}
			for (unsigned k = 0; k < s.ndups; k++)
				(void)sctp_sack_dup(&s, k);
			break;
		case SCTP_CT_HEARTBEAT:
		case SCTP_CT_HEARTBEAT_ACK:
			rc = sctp_heartbeat_parse(&c, &hb);
			check_rc(rc);
			if (rc == 0) {
				in_input(hb.param, hb.param_len);
				in_input(hb.info, hb.info_len);
				CHECK(hb.param_len == hb.info_len + 4);
			}
			break;
		case SCTP_CT_ABORT:
		case SCTP_CT_ERROR:
			rc = c.type == SCTP_CT_ABORT ? sctp_abort_parse(&c, &ca) :
			                               sctp_error_parse(&c, &ca);
			check_rc(rc);
			if (rc == 0) {
				in_input(ca.causes, ca.causes_len);
				CHECK(ca.ncauses > 0 || ca.causes_len == 0);
			}
			break;
		case SCTP_CT_SHUTDOWN:
			check_rc(sctp_shutdown_parse(&c, &tsn));
			break;
		case SCTP_CT_COOKIE_ECHO:
			rc = sctp_cookie_echo_parse(&c, &ck, &len);
			check_rc(rc);
			if (rc == 0)
				in_input(ck, len);
			break;
		default:
			check_rc(sctp_empty_chunk_parse(&c, c.type, NULL));
			break;
		}
	}
}

static void check_rebuild(const uint8_t *data, size_t size)
{
	static uint8_t y[SCTP_PACKET_MAX], z[SCTP_PACKET_MAX];
	static uint32_t sx[1 << 16], sy[1 << 16];
	size_t ylen = 0, zlen = 0;
	long nx, ny;
	uint8_t *tight;
	int rc;

	rc = sctp_rebuild(data, size, y, sizeof(y), &ylen);
	if (rc == SCTP_PERR_NOSPACE && size > SCTP_PACKET_MAX - 3)
		return;   /* the last chunk's padding no longer fits */
	CHECK(rc == 0);
	CHECK(ylen >= SCTP_HEADER_LEN && ylen % 4 == 0);
	CHECK(sctp_packet_check_crc(y, ylen) == 0);
	nx = sctp_summary(data, size, sx, sizeof(sx) / sizeof(sx[0]));
	ny = sctp_summary(y, ylen, sy, sizeof(sy) / sizeof(sy[0]));
	CHECK(nx >= 0 && nx == ny);
	CHECK(memcmp(sx, sy, (size_t)nx * sizeof(sx[0])) == 0);
	CHECK(sctp_rebuild(y, ylen, z, sizeof(z), &zlen) == 0);
	CHECK(zlen == ylen && memcmp(y, z, ylen) == 0);

	/* Too small a buffer, by a size the input picks. */
	{
		size_t cap = ylen - 1 - (size > 0 ? data[size - 1] % ylen : 0);

		tight = malloc(cap > 0 ? cap : 1);
		CHECK(tight != NULL);
		rc = sctp_rebuild(y, ylen, tight, cap, &zlen);
		CHECK(rc == SCTP_PERR_NOSPACE);
		free(tight);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sctp_packet pkt;
	struct sctp_chunk_iter it;
	struct sctp_chunk c;
	unsigned n = 0;
	int rc;

	lo = data;
	hi = data + size;
	CHECK(crc32c(0, data, size) == crc32c_sw(0, data, size));
	rc = sctp_packet_parse(data, size, &pkt);
	check_rc(rc);
	if (rc != 0)
		return 0;
	CHECK(pkt.nchunks >= 1);
	in_input(pkt.chunks, pkt.chunks_len);
	sctp_chunk_iter_init(&it, &pkt);
	while ((rc = sctp_chunk_next(&it, &c)) == 1) {
		CHECK(c.length == c.value_len + 4);
		in_input(c.value - 4, c.length);
		if (n++ == 0)
			CHECK(c.type == pkt.first_type);
		parse_as_each(&c);
	}
	/* The framing was checked once; the walk agrees with it. */
	CHECK(rc == 0 && n == pkt.nchunks);
	check_rebuild(data, size);
	return 0;
}
