/*
 * Test helpers for the SCTP packet layer, shared by tests/unit/
 * test_sctp_packet.c and tests/fuzz/fuzz_sctp_packet.c.
 *
 * sctp_rebuild() takes a packet apart with the parsers and writes it again
 * with the builders: known chunks that parse go through their typed
 * builder, everything else is copied as a raw chunk.  The result is the
 * packet's canonical form (padding as the RFC asks, bytes past a chunk's
 * fields dropped, reserved flags cleared), so rebuilding it again must
 * give the same bytes, and a packet already canonical (as usrsctp writes
 * them) must come back unchanged.
 *
 * sctp_summary() reduces a packet to the fields the engine acts on, so a
 * packet and its rebuild can be compared for meaning.
 */
#ifndef SCTPT_TESTS_SCTP_REBUILD_H
#define SCTPT_TESTS_SCTP_REBUILD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sctp/crc32c.h"
#include "sctp/packet.h"

static inline int rebuild_tlvs(struct sctp_builder *b, const struct sctp_chunk *c,
                        const uint8_t *p, size_t n, uint8_t flags)
{
	struct sctp_tlv_iter it;
	struct sctp_tlv_ref t;
	int rc;

	if ((rc = sctp_chunk_open(b, c->type, flags)) != 0)
		return rc;
	if (p > c->value)
		rc = sctp_chunk_put(b, c->value, (size_t)(p - c->value));
	sctp_tlv_iter_init(&it, p, n);
	while (rc == 0 && (rc = sctp_tlv_next(&it, &t)) == 1)
		rc = sctp_chunk_put_tlv(b, t.type, t.value, t.value_len);
	if (rc == 0)
		rc = sctp_chunk_close(b);
	if (rc != 0)
		sctp_chunk_abandon(b);
	return rc;
}

/* One chunk through its typed parser and builder; -1: copy it raw. */
static inline int rebuild_chunk(struct sctp_builder *b, const struct sctp_chunk *c)
{
	static uint16_t gaps[SCTP_SACK_MAX_GAPS][2];
	static uint32_t dups[SCTP_SACK_MAX_DUPS];
	struct sctp_data d;
	struct sctp_init in;
	struct sctp_sack s;
	struct sctp_heartbeat hb;
	struct sctp_causes ca;
	const uint8_t *cookie;
	size_t len;
	uint32_t tsn;
	int t;

	switch (c->type) {
	case SCTP_CT_DATA:
		if (sctp_data_parse(c, &d) != 0)
			return -1;
		return sctp_build_data(b, &d);
	case SCTP_CT_I_DATA:
		if (sctp_idata_parse(c, &d) != 0)
			return -1;
		return sctp_build_idata(b, &d);
	case SCTP_CT_INIT:
	case SCTP_CT_INIT_ACK:
		if (sctp_init_parse(c, &in) != 0)
			return -1;
		return rebuild_tlvs(b, c, in.params, in.params_len, 0);
	case SCTP_CT_SACK:
		if (sctp_sack_parse(c, &s) != 0)
			return -1;
		for (unsigned i = 0; i < s.ngaps; i++)
			sctp_sack_gap(&s, i, &gaps[i][0], &gaps[i][1]);
		for (unsigned i = 0; i < s.ndups; i++)
			dups[i] = sctp_sack_dup(&s, i);
		return sctp_build_sack(b, s.cum_tsn, s.a_rwnd, gaps, s.ngaps,
		                       dups, s.ndups);
	case SCTP_CT_HEARTBEAT:
	case SCTP_CT_HEARTBEAT_ACK:
		if (sctp_heartbeat_parse(c, &hb) != 0)
			return -1;
		return sctp_build_heartbeat(b, c->type, hb.info, hb.info_len);
	case SCTP_CT_ABORT:
	case SCTP_CT_ERROR:
		if (c->type == SCTP_CT_ABORT ? sctp_abort_parse(c, &ca) != 0 :
		                            sctp_error_parse(c, &ca) != 0)
			return -1;
		return rebuild_tlvs(b, c, ca.causes, ca.causes_len,
		                    ca.t ? SCTP_CF_T : 0);
	case SCTP_CT_SHUTDOWN:
		if (sctp_shutdown_parse(c, &tsn) != 0)
			return -1;
		return sctp_build_shutdown(b, tsn);
	case SCTP_CT_COOKIE_ECHO:
		if (sctp_cookie_echo_parse(c, &cookie, &len) != 0)
			return -1;
		return sctp_build_cookie_echo(b, cookie, len);
	case SCTP_CT_SHUTDOWN_ACK:
	case SCTP_CT_SHUTDOWN_COMPLETE:
	case SCTP_CT_COOKIE_ACK:
		if (sctp_empty_chunk_parse(c, c->type, &t) != 0)
			return -1;
		return sctp_build_empty(b, c->type, t);
	}
	return -1;
}

/* Returns 0 and the rebuilt length, or the first error. */
static inline int sctp_rebuild(const uint8_t *p, size_t n, uint8_t *out, size_t cap,
                        size_t *outlen)
{
	struct sctp_packet pkt;
	struct sctp_chunk_iter it;
	struct sctp_chunk c;
	struct sctp_builder b;
	int rc;

	if ((rc = sctp_packet_parse(p, n, &pkt)) != 0)
		return rc;
	if ((rc = sctp_build_start(&b, out, cap, pkt.hdr.src_port,
	                           pkt.hdr.dst_port, pkt.hdr.vtag)) != 0)
		return rc;
	sctp_chunk_iter_init(&it, &pkt);
	while ((rc = sctp_chunk_next(&it, &c)) == 1) {
		rc = rebuild_chunk(&b, &c);
		if (rc == -1)
			rc = sctp_build_raw(&b, c.type, c.flags, c.value,
			                    c.value_len);
		if (rc != 0)
			return rc;
	}
	if (rc < 0)
		return rc;
	*outlen = sctp_build_finish(&b, 0);
	return 0;
}

/* Appends v to a summary; stops quietly when it is full. */
static inline void sum_put(uint32_t *sum, size_t cap, size_t *n, uint32_t v)
{
	if (*n < cap)
		sum[(*n)++] = v;
}

static inline uint32_t sum_bytes(const uint8_t *p, size_t n)
{
	return crc32c(0, p, n) ^ (uint32_t)n;
}

/*
 * The packet as numbers: header, then per chunk its type, its typed
 * parse result and the fields that result exposes.  Returns the count
 * used, or a negative parse error.
 */
static inline long sctp_summary(const uint8_t *p, size_t n, uint32_t *sum, size_t cap)
{
	struct sctp_packet pkt;
	struct sctp_chunk_iter it;
	struct sctp_chunk c;
	size_t k = 0;
	int rc;

	if ((rc = sctp_packet_parse(p, n, &pkt)) != 0)
		return rc;
	sum_put(sum, cap, &k, pkt.hdr.src_port);
	sum_put(sum, cap, &k, pkt.hdr.dst_port);
	sum_put(sum, cap, &k, pkt.hdr.vtag);
	sum_put(sum, cap, &k, pkt.nchunks);
	sctp_chunk_iter_init(&it, &pkt);
	while ((rc = sctp_chunk_next(&it, &c)) == 1) {
		struct sctp_data d;
		struct sctp_init in;
		struct sctp_sack s;
		struct sctp_heartbeat hb;
		struct sctp_causes ca;
		const uint8_t *ck;
		size_t len;
		uint32_t tsn;
		int t;

		sum_put(sum, cap, &k, c.type);
		switch (c.type) {
		case SCTP_CT_DATA:
		case SCTP_CT_I_DATA:
			rc = c.type == SCTP_CT_DATA ? sctp_data_parse(&c, &d) :
			                           sctp_idata_parse(&c, &d);
			sum_put(sum, cap, &k, (uint32_t)rc);
			if (rc != 0)
				break;
			sum_put(sum, cap, &k, d.flags);
			sum_put(sum, cap, &k, d.tsn);
			sum_put(sum, cap, &k, d.sid);
			sum_put(sum, cap, &k, d.ssn);
			sum_put(sum, cap, &k, d.mid);
			sum_put(sum, cap, &k, d.ppid);
			sum_put(sum, cap, &k, d.fsn);
			sum_put(sum, cap, &k, sum_bytes(d.payload, d.payload_len));
			break;
		case SCTP_CT_INIT:
		case SCTP_CT_INIT_ACK:
			rc = sctp_init_parse(&c, &in);
			sum_put(sum, cap, &k, (uint32_t)rc);
			if (rc != 0)
				break;
			sum_put(sum, cap, &k, in.initiate_tag);
			sum_put(sum, cap, &k, in.a_rwnd);
			sum_put(sum, cap, &k, (uint32_t)in.os << 16 | in.mis);
			sum_put(sum, cap, &k, in.initial_tsn);
			sum_put(sum, cap, &k, in.cookie != NULL ?
			        sum_bytes(in.cookie, in.cookie_len) : 0);
			sum_put(sum, cap, &k, in.ext != NULL ?
			        sum_bytes(in.ext, in.ext_len) : 0);
			sum_put(sum, cap, &k, (uint32_t)(in.forward_tsn |
			        in.ecn << 1 | in.zero_checksum << 2 |
			        in.host_name << 3 | in.stopped << 4));
			sum_put(sum, cap, &k, in.cookie_preservative_ms);
			sum_put(sum, cap, &k, in.n_unrecognized_total);
			for (unsigned i = 0; i < in.n_unrecognized; i++)
				sum_put(sum, cap, &k, sum_bytes(
				        in.unrecognized[i].value,
				        in.unrecognized[i].value_len));
			break;
		case SCTP_CT_SACK:
			rc = sctp_sack_parse(&c, &s);
			sum_put(sum, cap, &k, (uint32_t)rc);
			if (rc != 0)
				break;
			sum_put(sum, cap, &k, s.cum_tsn);
			sum_put(sum, cap, &k, s.a_rwnd);
			sum_put(sum, cap, &k, sum_bytes(s.gaps, 4 * (size_t)s.ngaps));
			sum_put(sum, cap, &k, sum_bytes(s.dups, 4 * (size_t)s.ndups));
			break;
		case SCTP_CT_HEARTBEAT:
		case SCTP_CT_HEARTBEAT_ACK:
			rc = sctp_heartbeat_parse(&c, &hb);
			sum_put(sum, cap, &k, (uint32_t)rc);
			if (rc == 0)
				sum_put(sum, cap, &k, sum_bytes(hb.info, hb.info_len));
			break;
		case SCTP_CT_ABORT:
		case SCTP_CT_ERROR:
			rc = c.type == SCTP_CT_ABORT ? sctp_abort_parse(&c, &ca) :
			                            sctp_error_parse(&c, &ca);
			sum_put(sum, cap, &k, (uint32_t)rc);
			if (rc != 0)
				break;
			sum_put(sum, cap, &k, (uint32_t)ca.t);
			sum_put(sum, cap, &k, ca.ncauses);
			sum_put(sum, cap, &k, ca.first_code);
			break;
		case SCTP_CT_SHUTDOWN:
			rc = sctp_shutdown_parse(&c, &tsn);
			sum_put(sum, cap, &k, (uint32_t)rc);
			sum_put(sum, cap, &k, tsn);
			break;
		case SCTP_CT_COOKIE_ECHO:
			rc = sctp_cookie_echo_parse(&c, &ck, &len);
			sum_put(sum, cap, &k, (uint32_t)rc);
			if (rc == 0)
				sum_put(sum, cap, &k, sum_bytes(ck, len));
			break;
		case SCTP_CT_SHUTDOWN_ACK:
		case SCTP_CT_SHUTDOWN_COMPLETE:
		case SCTP_CT_COOKIE_ACK:
			rc = sctp_empty_chunk_parse(&c, c.type, &t);
			sum_put(sum, cap, &k, (uint32_t)rc);
			sum_put(sum, cap, &k, (uint32_t)t);
			break;
		default:
			sum_put(sum, cap, &k, c.flags);
			sum_put(sum, cap, &k, sum_bytes(c.value, c.value_len));
			break;
		}
	}
	if (rc < 0)
		return rc;
	return (long)k;
}

#endif
