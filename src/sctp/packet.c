/*
 * SCTP packet and chunk parsers; see packet.h.
 *
 * Every read is preceded by a length check against the bytes the caller
 * handed in, and every check uses subtraction from a length already known
 * to be larger (n - off), never addition that could wrap.  Minimum
 * lengths follow the chunk definitions of RFC 9260 §3.3; bytes a chunk
 * carries past the fields it defines are ignored, as Linux and usrsctp do,
 * except where the fields say how much must be there (SACK counts).
 */
#include "sctp/packet.h"

#include <string.h>

#include "sctp/crc32c.h"
#include "util/bytes.h"

#define PAD4(x) (((x) + 3) & ~(size_t)3)

const char *sctp_perr_str(int err)
{
	switch (err) {
	case 0: return "ok";
	case SCTP_PERR_SHORT_PACKET: return "packet too short";
	case SCTP_PERR_CHUNK_LEN: return "chunk length under 4";
	case SCTP_PERR_CHUNK_PAST_END: return "chunk past the end of the packet";
	case SCTP_PERR_TRAILING: return "stray bytes after the last chunk";
	case SCTP_PERR_BUNDLING: return "INIT, INIT-ACK or SHUTDOWN-COMPLETE bundled";
	case SCTP_PERR_CHECKSUM: return "bad checksum";
	case SCTP_PERR_WRONG_TYPE: return "wrong chunk type";
	case SCTP_PERR_SHORT_CHUNK: return "chunk shorter than its fields";
	case SCTP_PERR_NO_USER_DATA: return "DATA without user data";
	case SCTP_PERR_TLV_LEN: return "bad parameter or cause length";
	case SCTP_PERR_INIT_TAG: return "initiate tag 0";
	case SCTP_PERR_INIT_STREAMS: return "zero streams in INIT";
	case SCTP_PERR_PARAM_DUP: return "duplicate parameter";
	case SCTP_PERR_PARAM_INVALID: return "invalid parameter";
	case SCTP_PERR_NO_COOKIE: return "missing or empty state cookie";
	case SCTP_PERR_COOKIE_IN_INIT: return "state cookie in INIT";
	case SCTP_PERR_SACK_COUNT: return "SACK counts over the limit";
	case SCTP_PERR_SACK_GAP: return "invalid SACK gap block";
	case SCTP_PERR_HB_INFO: return "HEARTBEAT without heartbeat info";
	case SCTP_PERR_CAUSE_INVALID: return "invalid error cause";
	case SCTP_PERR_NOSPACE: return "no space in packet";
	case SCTP_PERR_TOO_BIG: return "chunk too big";
	case SCTP_PERR_BUILDER_STATE: return "builder call out of order";
	}
	return "unknown error";
}

/* ---- checksum ---- */

uint32_t sctp_packet_crc(const uint8_t *p, size_t n)
{
	static const uint8_t zero[4];
	uint32_t c;

	if (n < SCTP_HEADER_LEN)
		return crc32c(0, p, n);
	c = crc32c(0, p, 8);
	c = crc32c(c, zero, sizeof(zero));
	return crc32c(c, p + SCTP_HEADER_LEN, n - SCTP_HEADER_LEN);
}

/* The CRC goes on the wire least significant byte first (RFC 9260 App. A). */
static uint32_t get_u32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 |
	       (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int sctp_packet_check_crc(const uint8_t *p, size_t n)
{
	if (n < SCTP_HEADER_LEN)
		return SCTP_PERR_SHORT_PACKET;
	return get_u32le(p + 8) == sctp_packet_crc(p, n) ? 0 : SCTP_PERR_CHECKSUM;
}

void sctp_packet_set_crc(uint8_t *p, size_t n)
{
	uint32_t c;

	if (n < SCTP_HEADER_LEN)
		return;
	c = sctp_packet_crc(p, n);
	p[8] = (uint8_t)c;
	p[9] = (uint8_t)(c >> 8);
	p[10] = (uint8_t)(c >> 16);
	p[11] = (uint8_t)(c >> 24);
}

/* ---- chunk framing ---- */

/*
 * Reads the chunk at off and sets *next past it and its padding.  The
 * last chunk of a packet may lack its padding: the RFC says the sender
 * MUST pad, but Linux and usrsctp both accept it unpadded, and so do we.
 */
static int chunk_at(const uint8_t *p, size_t n, size_t off,
                    struct sctp_chunk *c, size_t *next)
{
	size_t room = n - off, len;

	if (room < SCTP_CHUNK_HEADER_LEN)
		return SCTP_PERR_TRAILING;
	len = get_u16be(p + off + 2);
	if (len < SCTP_CHUNK_HEADER_LEN)
		return SCTP_PERR_CHUNK_LEN;
	if (len > room)
		return SCTP_PERR_CHUNK_PAST_END;
	c->type = p[off];
	c->flags = p[off + 1];
	c->length = (uint16_t)len;
	c->value = p + off + SCTP_CHUNK_HEADER_LEN;
	c->value_len = len - SCTP_CHUNK_HEADER_LEN;
	*next = PAD4(len) <= room ? off + PAD4(len) : n;
	return 0;
}

int sctp_packet_parse(const uint8_t *p, size_t n, struct sctp_packet *out)
{
	struct sctp_chunk c;
	size_t off = SCTP_HEADER_LEN, next;
	int lonely = 0, rc;

	memset(out, 0, sizeof(*out));
	if (n < SCTP_HEADER_LEN + SCTP_CHUNK_HEADER_LEN || n > SCTP_PACKET_MAX)
		return SCTP_PERR_SHORT_PACKET;
	out->hdr.src_port = get_u16be(p);
	out->hdr.dst_port = get_u16be(p + 2);
	out->hdr.vtag = get_u32be(p + 4);
	out->hdr.checksum = get_u32le(p + 8);
	while (off < n) {
		if ((rc = chunk_at(p, n, off, &c, &next)) != 0)
			return rc;
		if (out->nchunks == 0)
			out->first_type = c.type;
		if (c.type == SCTP_CT_INIT || c.type == SCTP_CT_INIT_ACK ||
		    c.type == SCTP_CT_SHUTDOWN_COMPLETE)
			lonely = 1;
		out->nchunks++;
		off = next;
	}
	/* §6.10: these three must travel alone. */
	if (lonely && out->nchunks > 1)
		return SCTP_PERR_BUNDLING;
	out->chunks = p + SCTP_HEADER_LEN;
	out->chunks_len = n - SCTP_HEADER_LEN;
	return 0;
}

void sctp_chunk_iter_init(struct sctp_chunk_iter *it, const struct sctp_packet *pkt)
{
	it->p = pkt->chunks;
	it->n = pkt->chunks_len;
	it->off = 0;
}

int sctp_chunk_next(struct sctp_chunk_iter *it, struct sctp_chunk *c)
{
	size_t next;
	int rc;

	if (it->p == NULL || it->off >= it->n)
		return 0;
	if ((rc = chunk_at(it->p, it->n, it->off, c, &next)) != 0)
		return rc;
	it->off = next;
	return 1;
}

int sctp_chunk_type_known(uint8_t type)
{
	switch (type) {
	case SCTP_CT_DATA: case SCTP_CT_INIT: case SCTP_CT_INIT_ACK: case SCTP_CT_SACK:
	case SCTP_CT_HEARTBEAT: case SCTP_CT_HEARTBEAT_ACK: case SCTP_CT_ABORT:
	case SCTP_CT_SHUTDOWN: case SCTP_CT_SHUTDOWN_ACK: case SCTP_CT_ERROR:
	case SCTP_CT_COOKIE_ECHO: case SCTP_CT_COOKIE_ACK:
	case SCTP_CT_SHUTDOWN_COMPLETE: case SCTP_CT_I_DATA:
		return 1;
	}
	return 0;
}

/* ---- TLVs ---- */

void sctp_tlv_iter_init(struct sctp_tlv_iter *it, const uint8_t *p, size_t n)
{
	it->p = p;
	it->n = p != NULL ? n : 0;
	it->off = 0;
}

int sctp_tlv_next(struct sctp_tlv_iter *it, struct sctp_tlv_ref *t)
{
	size_t room, len;

	if (it->off >= it->n)
		return 0;
	room = it->n - it->off;
	if (room < SCTP_TLV_HEADER_LEN)
		return SCTP_PERR_TLV_LEN;
	len = get_u16be(it->p + it->off + 2);
	if (len < SCTP_TLV_HEADER_LEN || len > room)
		return SCTP_PERR_TLV_LEN;
	t->raw = it->p + it->off;
	t->type = get_u16be(t->raw);
	t->length = (uint16_t)len;
	t->value = t->raw + SCTP_TLV_HEADER_LEN;
	t->value_len = len - SCTP_TLV_HEADER_LEN;
	it->off = PAD4(len) <= room ? it->off + PAD4(len) : it->n;
	return 1;
}

/* ---- chunks ---- */

static int check_type(const struct sctp_chunk *c, uint8_t type, size_t min)
{
	if (c->type != type)
		return SCTP_PERR_WRONG_TYPE;
	if (c->value_len < min)
		return SCTP_PERR_SHORT_CHUNK;
	return 0;
}

int sctp_data_parse(const struct sctp_chunk *c, struct sctp_data *out)
{
	const uint8_t *v = c->value;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = check_type(c, SCTP_CT_DATA, 12)) != 0)
		return rc;
	out->flags = c->flags;
	out->tsn = get_u32be(v);
	out->sid = get_u16be(v + 4);
	out->ssn = get_u16be(v + 6);
	out->ppid = get_u32be(v + 8);
	out->payload = v + 12;
	out->payload_len = c->value_len - 12;
	return out->payload_len > 0 ? 0 : SCTP_PERR_NO_USER_DATA;
}

int sctp_idata_parse(const struct sctp_chunk *c, struct sctp_data *out)
{
	const uint8_t *v = c->value;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = check_type(c, SCTP_CT_I_DATA, 16)) != 0)
		return rc;
	out->flags = c->flags;
	out->tsn = get_u32be(v);
	out->sid = get_u16be(v + 4);
	/* v + 6: reserved */
	out->mid = get_u32be(v + 8);
	/* RFC 8260 §2.1: one field, PPID in a first fragment, FSN after. */
	if (c->flags & SCTP_CF_B)
		out->ppid = get_u32be(v + 12);
	else
		out->fsn = get_u32be(v + 12);
	out->payload = v + 16;
	out->payload_len = c->value_len - 16;
	return out->payload_len > 0 ? 0 : SCTP_PERR_NO_USER_DATA;
}

/* A parameter the engine knows; returns 0 or an error. */
static int init_known_param(uint8_t type, const struct sctp_tlv_ref *t,
                            struct sctp_init *out, int *known)
{
	*known = 1;
	switch (t->type) {
	case SCTP_P_STATE_COOKIE:
		if (type == SCTP_CT_INIT)
			return SCTP_PERR_COOKIE_IN_INIT;
		if (out->cookie != NULL)
			return SCTP_PERR_PARAM_DUP;
		if (t->value_len == 0)
			return SCTP_PERR_NO_COOKIE;
		out->cookie = t->value;
		out->cookie_len = t->value_len;
		return 0;
	case SCTP_P_SUPPORTED_EXT:
		if (out->ext != NULL)
			return SCTP_PERR_PARAM_DUP;
		out->ext = t->value;
		out->ext_len = t->value_len;
		return 0;
	case SCTP_P_FORWARD_TSN:
		out->forward_tsn = 1;
		return 0;
	case SCTP_P_ECN_CAPABLE:
		out->ecn = 1;
		return 0;
	case SCTP_P_ZERO_CHECKSUM:
		if (t->value_len < 4)
			return SCTP_PERR_PARAM_INVALID;
		out->zero_checksum = 1;
		return 0;
	case SCTP_P_HOST_NAME:
		out->host_name = 1;
		return 0;
	case SCTP_P_COOKIE_PRESERVATIVE:
		if (t->value_len < 4)
			return SCTP_PERR_PARAM_INVALID;
		out->cookie_preservative_ms = get_u32be(t->value);
		return 0;
	case SCTP_P_IPV4:
		return t->value_len == 4 ? 0 : SCTP_PERR_PARAM_INVALID;
	case SCTP_P_IPV6:
		return t->value_len == 16 ? 0 : SCTP_PERR_PARAM_INVALID;
	case SCTP_P_SUPPORTED_ADDR_TYPES:
	case SCTP_P_ADAPTATION:
		return 0;                  /* understood, nothing to keep */
	case SCTP_P_UNRECOGNIZED:
		if (type == SCTP_CT_INIT_ACK)
			return 0;          /* the peer's report about our INIT */
		break;
	}
	*known = 0;
	return 0;
}

int sctp_init_parse(const struct sctp_chunk *c, struct sctp_init *out)
{
	const uint8_t *v = c->value;
	struct sctp_tlv_iter it;
	struct sctp_tlv_ref t;
	int rc, known;

	memset(out, 0, sizeof(*out));
	if (c->type != SCTP_CT_INIT && c->type != SCTP_CT_INIT_ACK)
		return SCTP_PERR_WRONG_TYPE;
	if (c->value_len < 16)
		return SCTP_PERR_SHORT_CHUNK;
	out->initiate_tag = get_u32be(v);
	out->a_rwnd = get_u32be(v + 4);
	out->os = get_u16be(v + 8);
	out->mis = get_u16be(v + 10);
	out->initial_tsn = get_u32be(v + 12);
	out->params = v + 16;
	out->params_len = c->value_len - 16;
	if (out->initiate_tag == 0)
		return SCTP_PERR_INIT_TAG;
	if (out->os == 0 || out->mis == 0)
		return SCTP_PERR_INIT_STREAMS;
	sctp_tlv_iter_init(&it, out->params, out->params_len);
	while ((rc = sctp_tlv_next(&it, &t)) == 1) {
		enum sctp_unknown_action act;

		if (out->stopped)
			continue;          /* framing is still checked */
		if ((rc = init_known_param(c->type, &t, out, &known)) != 0)
			return rc;
		if (known)
			continue;
		act = sctp_unknown_param_action(t.type);
		if (act == SCTP_UNKNOWN_STOP_REPORT ||
		    act == SCTP_UNKNOWN_SKIP_REPORT) {
			if (out->n_unrecognized < SCTP_INIT_MAX_UNRECOGNIZED)
				out->unrecognized[out->n_unrecognized++] = t;
			out->n_unrecognized_total++;
		}
		if (act == SCTP_UNKNOWN_STOP || act == SCTP_UNKNOWN_STOP_REPORT)
			out->stopped = 1;
	}
	if (rc < 0)
		return rc;
	if (c->type == SCTP_CT_INIT_ACK && out->cookie == NULL)
		return SCTP_PERR_NO_COOKIE;
	return 0;
}

int sctp_init_supports(const struct sctp_init *in, uint8_t chunk_type)
{
	return in->ext != NULL && in->ext_len > 0 &&
	       memchr(in->ext, chunk_type, in->ext_len) != NULL;
}

int sctp_sack_parse(const struct sctp_chunk *c, struct sctp_sack *out)
{
	const uint8_t *v = c->value;
	size_t need;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = check_type(c, SCTP_CT_SACK, 12)) != 0)
		return rc;
	out->cum_tsn = get_u32be(v);
	out->a_rwnd = get_u32be(v + 4);
	out->ngaps = get_u16be(v + 8);
	out->ndups = get_u16be(v + 10);
	if (out->ngaps > SCTP_SACK_MAX_GAPS || out->ndups > SCTP_SACK_MAX_DUPS)
		return SCTP_PERR_SACK_COUNT;
	/* Both counts are at most 1024 here: no overflow. */
	need = 12 + 4 * (size_t)out->ngaps + 4 * (size_t)out->ndups;
	if (c->value_len < need)
		return SCTP_PERR_SHORT_CHUNK;
	out->gaps = v + 12;
	out->dups = out->gaps + 4 * (size_t)out->ngaps;
	for (unsigned i = 0; i < out->ngaps; i++) {
		uint16_t s, e;

		sctp_sack_gap(out, i, &s, &e);
		if (s == 0 || s > e)
			return SCTP_PERR_SACK_GAP;
	}
	return 0;
}

void sctp_sack_gap(const struct sctp_sack *s, unsigned i, uint16_t *start,
                   uint16_t *end)
{
	*start = get_u16be(s->gaps + 4 * (size_t)i);
	*end = get_u16be(s->gaps + 4 * (size_t)i + 2);
}

uint32_t sctp_sack_dup(const struct sctp_sack *s, unsigned i)
{
	return get_u32be(s->dups + 4 * (size_t)i);
}

int sctp_heartbeat_parse(const struct sctp_chunk *c, struct sctp_heartbeat *out)
{
	struct sctp_tlv_iter it;
	struct sctp_tlv_ref t;
	int rc;

	memset(out, 0, sizeof(*out));
	if (c->type != SCTP_CT_HEARTBEAT && c->type != SCTP_CT_HEARTBEAT_ACK)
		return SCTP_PERR_WRONG_TYPE;
	sctp_tlv_iter_init(&it, c->value, c->value_len);
	rc = sctp_tlv_next(&it, &t);
	if (rc < 0)
		return rc;
	if (rc == 0 || t.type != SCTP_P_HEARTBEAT_INFO)
		return SCTP_PERR_HB_INFO;
	out->info = t.value;
	out->info_len = t.value_len;
	out->param = t.raw;
	out->param_len = t.length;
	return 0;
}

/* Causes with fixed fields must carry them (§3.3.10). */
static int check_cause(const struct sctp_tlv_ref *t)
{
	switch (t->type) {
	case SCTP_C_INVALID_STREAM:
	case SCTP_C_STALE_COOKIE:
	case SCTP_C_NO_USER_DATA:
		return t->value_len >= 4 ? 0 : SCTP_PERR_CAUSE_INVALID;
	case SCTP_C_MISSING_PARAM:
		if (t->value_len < 4 ||
		    get_u32be(t->value) > (t->value_len - 4) / 2)
			return SCTP_PERR_CAUSE_INVALID;
		return 0;
	case SCTP_C_UNRECOGNIZED_CHUNK:
		return t->value_len >= SCTP_CHUNK_HEADER_LEN ?
		       0 : SCTP_PERR_CAUSE_INVALID;
	}
	return 0;
}

static int causes_parse(const struct sctp_chunk *c, uint8_t type,
                        struct sctp_causes *out)
{
	struct sctp_tlv_iter it;
	struct sctp_tlv_ref t;
	int rc;

	memset(out, 0, sizeof(*out));
	if (c->type != type)
		return SCTP_PERR_WRONG_TYPE;
	out->t = type == SCTP_CT_ABORT && (c->flags & SCTP_CF_T);
	out->causes = c->value;
	out->causes_len = c->value_len;
	sctp_tlv_iter_init(&it, c->value, c->value_len);
	while ((rc = sctp_tlv_next(&it, &t)) == 1) {
		if ((rc = check_cause(&t)) != 0)
			return rc;
		if (out->ncauses++ == 0)
			out->first_code = t.type;
	}
	return rc;
}

int sctp_abort_parse(const struct sctp_chunk *c, struct sctp_causes *out)
{
	return causes_parse(c, SCTP_CT_ABORT, out);
}

int sctp_error_parse(const struct sctp_chunk *c, struct sctp_causes *out)
{
	return causes_parse(c, SCTP_CT_ERROR, out);
}

int sctp_shutdown_parse(const struct sctp_chunk *c, uint32_t *cum_tsn)
{
	int rc;

	*cum_tsn = 0;
	if ((rc = check_type(c, SCTP_CT_SHUTDOWN, 4)) != 0)
		return rc;
	*cum_tsn = get_u32be(c->value);
	return 0;
}

int sctp_cookie_echo_parse(const struct sctp_chunk *c, const uint8_t **cookie,
                           size_t *len)
{
	*cookie = NULL;
	*len = 0;
	if (c->type != SCTP_CT_COOKIE_ECHO)
		return SCTP_PERR_WRONG_TYPE;
	if (c->value_len == 0)
		return SCTP_PERR_NO_COOKIE;
	*cookie = c->value;
	*len = c->value_len;
	return 0;
}

int sctp_empty_chunk_parse(const struct sctp_chunk *c, uint8_t type, int *t)
{
	if (t != NULL)
		*t = 0;
	if (c->type != type)
		return SCTP_PERR_WRONG_TYPE;
	if (t != NULL && type == SCTP_CT_SHUTDOWN_COMPLETE)
		*t = (c->flags & SCTP_CF_T) != 0;
	return 0;
}
