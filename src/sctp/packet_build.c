/*
 * SCTP packet builders; see packet.h.
 *
 * A chunk is written in place: open writes its header, puts append to its
 * value, close fills in the length and the padding.  Every put checks that
 * the bytes and the padding the chunk will need still fit, so close never
 * fails for want of space, and a failed put leaves the builder for the
 * caller to abandon the chunk, restoring the packet to what it was.
 */
#include "sctp/packet.h"

#include <string.h>

#include "util/bytes.h"

#define PAD4(x) (((x) + 3) & ~(size_t)3)

int sctp_build_start(struct sctp_builder *b, uint8_t *buf, size_t cap,
                     uint16_t src_port, uint16_t dst_port, uint32_t vtag)
{
	memset(b, 0, sizeof(*b));
	if (cap < SCTP_HEADER_LEN)
		return SCTP_PERR_NOSPACE;
	b->buf = buf;
	b->cap = cap < SCTP_PACKET_MAX ? cap : SCTP_PACKET_MAX;
	put_u16be(buf, src_port);
	put_u16be(buf + 2, dst_port);
	put_u32be(buf + 4, vtag);
	memset(buf + 8, 0, 4);
	b->len = SCTP_HEADER_LEN;
	return 0;
}

size_t sctp_build_finish(struct sctp_builder *b, int no_crc)
{
	if (b->buf == NULL)
		return 0;
	if (b->chunk != 0)
		sctp_chunk_abandon(b);
	if (!no_crc)
		sctp_packet_set_crc(b->buf, b->len);
	return b->len;
}

int sctp_chunk_open(struct sctp_builder *b, uint8_t type, uint8_t flags)
{
	if (b->buf == NULL || b->chunk != 0)
		return SCTP_PERR_BUILDER_STATE;
	if (b->cap - b->len < SCTP_CHUNK_HEADER_LEN)
		return SCTP_PERR_NOSPACE;
	b->saved = b->len;
	b->chunk = b->len;
	b->tlv_pad = 0;
	b->buf[b->len] = type;
	b->buf[b->len + 1] = flags;
	put_u16be(b->buf + b->len + 2, 0);
	b->len += SCTP_CHUNK_HEADER_LEN;
	return 0;
}

/* Room for n more value bytes plus the chunk padding they lead to? */
static int room_for(const struct sctp_builder *b, size_t n)
{
	if (b->buf == NULL || b->chunk == 0)
		return SCTP_PERR_BUILDER_STATE;
	if (n > SCTP_PACKET_MAX || b->len - b->chunk + n > UINT16_MAX)
		return SCTP_PERR_TOO_BIG;
	if (PAD4(b->len + n) > b->cap)
		return SCTP_PERR_NOSPACE;
	return 0;
}

int sctp_chunk_put(struct sctp_builder *b, const void *p, size_t n)
{
	int rc;

	if ((rc = room_for(b, n)) != 0)
		return rc;
	if (n > 0)
		memcpy(b->buf + b->len, p, n);
	b->len += n;
	/* Bytes after a TLV make its padding part of the chunk. */
	b->tlv_pad = 0;
	return 0;
}

int sctp_chunk_put_u16(struct sctp_builder *b, uint16_t v)
{
	uint8_t x[2];

	put_u16be(x, v);
	return sctp_chunk_put(b, x, sizeof(x));
}

int sctp_chunk_put_u32(struct sctp_builder *b, uint32_t v)
{
	uint8_t x[4];

	put_u32be(x, v);
	return sctp_chunk_put(b, x, sizeof(x));
}

int sctp_chunk_put_tlv(struct sctp_builder *b, uint16_t type, const void *v,
                       size_t n)
{
	size_t len = SCTP_TLV_HEADER_LEN + n;
	uint8_t *p;
	int rc;

	if (b->buf == NULL || b->chunk == 0)
		return SCTP_PERR_BUILDER_STATE;
	if (n > UINT16_MAX - SCTP_TLV_HEADER_LEN)
		return SCTP_PERR_TOO_BIG;
	if ((rc = room_for(b, PAD4(len))) != 0)
		return rc;
	p = b->buf + b->len;
	put_u16be(p, type);
	put_u16be(p + 2, (uint16_t)len);
	if (n > 0)
		memcpy(p + SCTP_TLV_HEADER_LEN, v, n);
	memset(p + len, 0, PAD4(len) - len);
	b->len += PAD4(len);
	b->tlv_pad = PAD4(len) - len;
	return 0;
}

int sctp_chunk_close(struct sctp_builder *b)
{
	size_t len;

	if (b->buf == NULL || b->chunk == 0)
		return SCTP_PERR_BUILDER_STATE;
	len = b->len - b->chunk - b->tlv_pad;
	put_u16be(b->buf + b->chunk + 2, (uint16_t)len);
	/* room_for() reserved the padding; a TLV's is already written. */
	memset(b->buf + b->chunk + len, 0, PAD4(len) - len);
	b->len = b->chunk + PAD4(len);
	b->chunk = 0;
	b->tlv_pad = 0;
	return 0;
}

void sctp_chunk_abandon(struct sctp_builder *b)
{
	if (b->chunk == 0)
		return;
	b->len = b->saved;
	b->chunk = 0;
	b->tlv_pad = 0;
}

/* Ends a one-call builder: close on success, undo on failure. */
static int chunk_end(struct sctp_builder *b, int rc)
{
	if (rc == 0)
		rc = sctp_chunk_close(b);
	if (rc != 0)
		sctp_chunk_abandon(b);
	return rc;
}

int sctp_build_raw(struct sctp_builder *b, uint8_t type, uint8_t flags,
                   const void *value, size_t n)
{
	int rc;

	if ((rc = sctp_chunk_open(b, type, flags)) != 0)
		return rc;
	return chunk_end(b, sctp_chunk_put(b, value, n));
}

int sctp_build_data(struct sctp_builder *b, const struct sctp_data *d)
{
	uint8_t h[12];
	int rc;

	if (d->payload_len == 0)
		return SCTP_PERR_NO_USER_DATA;
	put_u32be(h, d->tsn);
	put_u16be(h + 4, d->sid);
	put_u16be(h + 6, d->ssn);
	put_u32be(h + 8, d->ppid);
	if ((rc = sctp_chunk_open(b, SCTP_CT_DATA, d->flags)) != 0)
		return rc;
	rc = sctp_chunk_put(b, h, sizeof(h));
	if (rc == 0)
		rc = sctp_chunk_put(b, d->payload, d->payload_len);
	return chunk_end(b, rc);
}

int sctp_build_idata(struct sctp_builder *b, const struct sctp_data *d)
{
	uint8_t h[16];
	int rc;

	if (d->payload_len == 0)
		return SCTP_PERR_NO_USER_DATA;
	put_u32be(h, d->tsn);
	put_u16be(h + 4, d->sid);
	put_u16be(h + 6, 0);
	put_u32be(h + 8, d->mid);
	put_u32be(h + 12, (d->flags & SCTP_CF_B) ? d->ppid : d->fsn);
	if ((rc = sctp_chunk_open(b, SCTP_CT_I_DATA, d->flags)) != 0)
		return rc;
	rc = sctp_chunk_put(b, h, sizeof(h));
	if (rc == 0)
		rc = sctp_chunk_put(b, d->payload, d->payload_len);
	return chunk_end(b, rc);
}

int sctp_build_init(struct sctp_builder *b, uint8_t type,
                    const struct sctp_init_params *ip)
{
	uint8_t h[16];
	int rc;

	if (type != SCTP_CT_INIT && type != SCTP_CT_INIT_ACK)
		return SCTP_PERR_WRONG_TYPE;
	if ((type == SCTP_CT_INIT_ACK) != (ip->cookie_len > 0))
		return type == SCTP_CT_INIT ? SCTP_PERR_COOKIE_IN_INIT :
		                           SCTP_PERR_NO_COOKIE;
	put_u32be(h, ip->initiate_tag);
	put_u32be(h + 4, ip->a_rwnd);
	put_u16be(h + 8, ip->os);
	put_u16be(h + 10, ip->mis);
	put_u32be(h + 12, ip->initial_tsn);
	if ((rc = sctp_chunk_open(b, type, 0)) != 0)
		return rc;
	rc = sctp_chunk_put(b, h, sizeof(h));
	if (rc == 0 && ip->cookie_len > 0)
		rc = sctp_chunk_put_tlv(b, SCTP_P_STATE_COOKIE, ip->cookie,
		                        ip->cookie_len);
	if (rc == 0 && ip->ext != NULL)
		rc = sctp_chunk_put_tlv(b, SCTP_P_SUPPORTED_EXT, ip->ext,
		                        ip->ext_len);
	if (rc == 0 && ip->forward_tsn)
		rc = sctp_chunk_put_tlv(b, SCTP_P_FORWARD_TSN, NULL, 0);
	if (rc == 0 && ip->extra_len > 0)
		rc = sctp_chunk_put(b, ip->extra, ip->extra_len);
	return chunk_end(b, rc);
}

int sctp_build_sack(struct sctp_builder *b, uint32_t cum_tsn, uint32_t a_rwnd,
                    const uint16_t (*gaps)[2], unsigned ngaps,
                    const uint32_t *dups, unsigned ndups)
{
	int rc;

	if (ngaps > SCTP_SACK_MAX_GAPS || ndups > SCTP_SACK_MAX_DUPS)
		return SCTP_PERR_SACK_COUNT;
	if ((rc = sctp_chunk_open(b, SCTP_CT_SACK, 0)) != 0)
		return rc;
	/* One check up front, so the puts below cannot fail halfway. */
	rc = room_for(b, 12 + 4 * (size_t)ngaps + 4 * (size_t)ndups);
	if (rc == 0)
		rc = sctp_chunk_put_u32(b, cum_tsn);
	if (rc == 0)
		rc = sctp_chunk_put_u32(b, a_rwnd);
	if (rc == 0)
		rc = sctp_chunk_put_u16(b, (uint16_t)ngaps);
	if (rc == 0)
		rc = sctp_chunk_put_u16(b, (uint16_t)ndups);
	for (unsigned i = 0; rc == 0 && i < ngaps; i++) {
		rc = sctp_chunk_put_u16(b, gaps[i][0]);
		if (rc == 0)
			rc = sctp_chunk_put_u16(b, gaps[i][1]);
	}
	for (unsigned i = 0; rc == 0 && i < ndups; i++)
		rc = sctp_chunk_put_u32(b, dups[i]);
	return chunk_end(b, rc);
}

int sctp_build_heartbeat(struct sctp_builder *b, uint8_t type,
                         const void *info, size_t n)
{
	int rc;

	if (type != SCTP_CT_HEARTBEAT && type != SCTP_CT_HEARTBEAT_ACK)
		return SCTP_PERR_WRONG_TYPE;
	if ((rc = sctp_chunk_open(b, type, 0)) != 0)
		return rc;
	return chunk_end(b, sctp_chunk_put_tlv(b, SCTP_P_HEARTBEAT_INFO, info, n));
}

static uint8_t causes_flags(uint8_t type, int t)
{
	return type == SCTP_CT_ABORT && t ? SCTP_CF_T : 0;
}

int sctp_build_causes(struct sctp_builder *b, uint8_t type, int t,
                      const uint8_t *causes, size_t n)
{
	int rc;

	if (type != SCTP_CT_ABORT && type != SCTP_CT_ERROR)
		return SCTP_PERR_WRONG_TYPE;
	if ((rc = sctp_chunk_open(b, type, causes_flags(type, t))) != 0)
		return rc;
	return chunk_end(b, sctp_chunk_put(b, causes, n));
}

int sctp_build_cause(struct sctp_builder *b, uint8_t type, int t,
                     uint16_t code, const void *info, size_t n)
{
	int rc;

	if (type != SCTP_CT_ABORT && type != SCTP_CT_ERROR)
		return SCTP_PERR_WRONG_TYPE;
	if ((rc = sctp_chunk_open(b, type, causes_flags(type, t))) != 0)
		return rc;
	return chunk_end(b, sctp_chunk_put_tlv(b, code, info, n));
}

int sctp_build_shutdown(struct sctp_builder *b, uint32_t cum_tsn)
{
	int rc;

	if ((rc = sctp_chunk_open(b, SCTP_CT_SHUTDOWN, 0)) != 0)
		return rc;
	return chunk_end(b, sctp_chunk_put_u32(b, cum_tsn));
}

int sctp_build_cookie_echo(struct sctp_builder *b, const void *cookie, size_t n)
{
	if (n == 0)
		return SCTP_PERR_NO_COOKIE;
	return sctp_build_raw(b, SCTP_CT_COOKIE_ECHO, 0, cookie, n);
}

int sctp_build_empty(struct sctp_builder *b, uint8_t type, int t)
{
	int rc;

	if (type != SCTP_CT_SHUTDOWN_ACK && type != SCTP_CT_SHUTDOWN_COMPLETE &&
	    type != SCTP_CT_COOKIE_ACK)
		return SCTP_PERR_WRONG_TYPE;
	rc = sctp_chunk_open(b, type,
	                     type == SCTP_CT_SHUTDOWN_COMPLETE && t ? SCTP_CF_T : 0);
	if (rc != 0)
		return rc;
	return chunk_end(b, 0);
}
