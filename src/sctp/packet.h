/*
 * SCTP packet layer of the native engine: parse and build packets and
 * chunks (RFC 9260, I-DATA from RFC 8260).
 *
 * Pure code: no allocation, no I/O, no state between calls.  Parsers take
 * (const uint8_t *, size_t), check every length against the bytes really
 * there and fill views that point into the caller's buffer, so a parsed
 * chunk lives as long as the packet it came from.  Every malformed input
 * gets its own negative error code; what to do about it (discard, ABORT,
 * ERROR) is the association's decision, not the parser's.  Builders
 * append to a caller buffer and, when a chunk does not fit, leave the
 * packet as it was so the caller can send it and start the next one.
 *
 * Nothing here is wired into the running binary yet; see
 * docs/sctp-engine.md.
 */
#ifndef SCTPT_SCTP_PACKET_H
#define SCTPT_SCTP_PACKET_H

#include <stddef.h>
#include <stdint.h>

#define SCTP_HEADER_LEN 12
#define SCTP_CHUNK_HEADER_LEN 4
#define SCTP_TLV_HEADER_LEN 4
/* The IP length field bounds every packet; chunk lengths are 16-bit. */
#define SCTP_PACKET_MAX 65535
/*
 * Hard caps on SACK counts.  The wire layer's MTU is at most a few
 * kilobytes, where no honest SACK carries more than a few hundred gap
 * blocks (usrsctp reports at most 20 duplicates); a peer above the caps
 * is violating the protocol, not unlucky.  They bound what the core
 * iterates over per SACK.
 */
#define SCTP_SACK_MAX_GAPS 1024
#define SCTP_SACK_MAX_DUPS 1024
/* Unrecognized INIT parameters remembered for the report (more are counted). */
#define SCTP_INIT_MAX_UNRECOGNIZED 8

enum sctp_chunk_type {
	SCTP_CT_DATA = 0,
	SCTP_CT_INIT = 1,
	SCTP_CT_INIT_ACK = 2,
	SCTP_CT_SACK = 3,
	SCTP_CT_HEARTBEAT = 4,
	SCTP_CT_HEARTBEAT_ACK = 5,
	SCTP_CT_ABORT = 6,
	SCTP_CT_SHUTDOWN = 7,
	SCTP_CT_SHUTDOWN_ACK = 8,
	SCTP_CT_ERROR = 9,
	SCTP_CT_COOKIE_ECHO = 10,
	SCTP_CT_COOKIE_ACK = 11,
	SCTP_CT_ECNE = 12,
	SCTP_CT_CWR = 13,
	SCTP_CT_SHUTDOWN_COMPLETE = 14,
	SCTP_CT_AUTH = 15,
	SCTP_CT_I_DATA = 64,
	SCTP_CT_ASCONF_ACK = 128,
	SCTP_CT_RE_CONFIG = 130,
	SCTP_CT_PAD = 132,
	SCTP_CT_FORWARD_TSN = 192,
	SCTP_CT_ASCONF = 193,
	SCTP_CT_I_FORWARD_TSN = 194,
};

/* Chunk flags. */
#define SCTP_CF_E 0x01      /* last fragment */
#define SCTP_CF_B 0x02      /* first fragment */
#define SCTP_CF_U 0x04      /* unordered */
#define SCTP_CF_I 0x08      /* SACK immediately (RFC 7053) */
#define SCTP_CF_T 0x01      /* ABORT, SHUTDOWN-COMPLETE: tag reflected */

/* Parameter types (INIT, INIT-ACK). */
enum sctp_param_type {
	SCTP_P_HEARTBEAT_INFO = 1,
	SCTP_P_IPV4 = 5,
	SCTP_P_IPV6 = 6,
	SCTP_P_STATE_COOKIE = 7,
	SCTP_P_UNRECOGNIZED = 8,
	SCTP_P_COOKIE_PRESERVATIVE = 9,
	SCTP_P_HOST_NAME = 11,
	SCTP_P_SUPPORTED_ADDR_TYPES = 12,
	SCTP_P_ECN_CAPABLE = 0x8000,
	SCTP_P_ZERO_CHECKSUM = 0x8001,
	SCTP_P_RANDOM = 0x8002,
	SCTP_P_CHUNK_LIST = 0x8003,
	SCTP_P_HMAC_ALGO = 0x8004,
	SCTP_P_PADDING = 0x8005,
	SCTP_P_SUPPORTED_EXT = 0x8008,
	SCTP_P_FORWARD_TSN = 0xc000,
	SCTP_P_ADAPTATION = 0xc006,
};

/* Error cause codes (ERROR, ABORT). */
enum sctp_cause_code {
	SCTP_C_INVALID_STREAM = 1,
	SCTP_C_MISSING_PARAM = 2,
	SCTP_C_STALE_COOKIE = 3,
	SCTP_C_OUT_OF_RESOURCE = 4,
	SCTP_C_UNRESOLVABLE_ADDR = 5,
	SCTP_C_UNRECOGNIZED_CHUNK = 6,
	SCTP_C_INVALID_PARAM = 7,
	SCTP_C_UNRECOGNIZED_PARAMS = 8,
	SCTP_C_NO_USER_DATA = 9,
	SCTP_C_COOKIE_WHILE_SHUTDOWN = 10,
	SCTP_C_RESTART_NEW_ADDRS = 11,
	SCTP_C_USER_ABORT = 12,
	SCTP_C_PROTOCOL_VIOLATION = 13,
};

/* Everything a parser or builder can report.  0 is success. */
enum sctp_perr {
	SCTP_PERR_SHORT_PACKET = -1,     /* under 12 + 4 bytes, or over 65535 */
	SCTP_PERR_CHUNK_LEN = -2,        /* chunk length < 4 */
	SCTP_PERR_CHUNK_PAST_END = -3,   /* chunk length past the end */
	SCTP_PERR_TRAILING = -4,         /* 1..3 stray bytes after the last chunk */
	SCTP_PERR_BUNDLING = -5,         /* INIT, INIT-ACK or SHUTDOWN-COMPLETE not alone */
	SCTP_PERR_CHECKSUM = -6,         /* CRC32c mismatch */
	SCTP_PERR_WRONG_TYPE = -7,       /* chunk parser given another type */
	SCTP_PERR_SHORT_CHUNK = -8,      /* under the chunk type's fixed fields */
	SCTP_PERR_NO_USER_DATA = -9,     /* DATA / I-DATA without payload */
	SCTP_PERR_TLV_LEN = -10,         /* parameter or cause length < 4 or past end */
	SCTP_PERR_INIT_TAG = -11,        /* INIT(-ACK) initiate tag 0 */
	SCTP_PERR_INIT_STREAMS = -12,    /* INIT(-ACK) 0 outbound or inbound streams */
	SCTP_PERR_PARAM_DUP = -13,       /* a parameter that may appear once did twice */
	SCTP_PERR_PARAM_INVALID = -14,   /* a known parameter with a bad body */
	SCTP_PERR_NO_COOKIE = -15,       /* INIT-ACK without State Cookie, empty cookie */
	SCTP_PERR_COOKIE_IN_INIT = -16,  /* State Cookie in an INIT */
	SCTP_PERR_SACK_COUNT = -17,      /* gap or dup count over the cap */
	SCTP_PERR_SACK_GAP = -18,        /* gap block start 0 or start > end */
	SCTP_PERR_HB_INFO = -19,         /* HEARTBEAT without a Heartbeat Info param */
	SCTP_PERR_CAUSE_INVALID = -20,   /* a known error cause with a bad body */
	SCTP_PERR_NOSPACE = -21,         /* builder: the chunk does not fit */
	SCTP_PERR_TOO_BIG = -22,         /* builder: over a 16-bit length */
	SCTP_PERR_BUILDER_STATE = -23,   /* builder: call out of order */
};

/* A human-readable name for an sctp_perr code (for logs). */
const char *sctp_perr_str(int err);

/* ---- packets and chunks ---- */

struct sctp_header {
	uint16_t src_port;
	uint16_t dst_port;
	uint32_t vtag;
	uint32_t checksum;     /* as the 32-bit CRC value (stored little-endian) */
};

/* A packet whose chunk framing has been checked. */
struct sctp_packet {
	struct sctp_header hdr;
	const uint8_t *chunks;     /* first chunk header */
	size_t chunks_len;         /* to the end of the packet */
	unsigned nchunks;
	uint8_t first_type;        /* type of the first chunk */
};

/* A chunk view: value points into the packet. */
struct sctp_chunk {
	uint8_t type;
	uint8_t flags;
	uint16_t length;           /* the header's length: 4 + value, no padding */
	const uint8_t *value;
	size_t value_len;
};

/*
 * Checks the common header and the framing of every chunk (length >= 4,
 * chunk inside the packet, padded to 4 bytes unless it is the last one,
 * no stray bytes after the last chunk) and the bundling rule for INIT,
 * INIT-ACK and SHUTDOWN-COMPLETE.  Does not check the checksum.
 * Returns 0 or an sctp_perr code.
 */
int sctp_packet_parse(const uint8_t *p, size_t n, struct sctp_packet *out);

/* The CRC32c of a packet as if its checksum field were zero. */
uint32_t sctp_packet_crc(const uint8_t *p, size_t n);

/* 0 if the packet's checksum field matches, else SCTP_PERR_CHECKSUM. */
int sctp_packet_check_crc(const uint8_t *p, size_t n);

/* Writes the checksum of a whole packet into its header (no-op if n < 12). */
void sctp_packet_set_crc(uint8_t *p, size_t n);

/* Walks the chunks of a packet sctp_packet_parse() accepted. */
struct sctp_chunk_iter {
	const uint8_t *p;
	size_t n;
	size_t off;
};

void sctp_chunk_iter_init(struct sctp_chunk_iter *it, const struct sctp_packet *pkt);

/* 1 and a chunk, 0 at the end, or an sctp_perr code on bad framing. */
int sctp_chunk_next(struct sctp_chunk_iter *it, struct sctp_chunk *c);

/* What the upper two bits of an unknown chunk's type ask for (§3.2). */
enum sctp_unknown_action {
	SCTP_UNKNOWN_STOP = 0,          /* 00: discard the rest of the packet */
	SCTP_UNKNOWN_STOP_REPORT = 1,   /* 01: same, and report it in an ERROR */
	SCTP_UNKNOWN_SKIP = 2,          /* 10: skip the chunk */
	SCTP_UNKNOWN_SKIP_REPORT = 3,   /* 11: skip it, and report it */
};

static inline enum sctp_unknown_action sctp_unknown_chunk_action(uint8_t type)
{
	return (enum sctp_unknown_action)(type >> 6);
}

/* Same encoding for parameters (§3.2.1): stop means no further params. */
static inline enum sctp_unknown_action sctp_unknown_param_action(uint16_t type)
{
	return (enum sctp_unknown_action)(type >> 14);
}

/* 1 for the chunk types the native engine implements, else 0. */
int sctp_chunk_type_known(uint8_t type);

/* ---- TLVs: parameters and error causes ---- */

struct sctp_tlv_ref {
	uint16_t type;
	uint16_t length;           /* 4 + value, no padding */
	const uint8_t *value;
	size_t value_len;
	const uint8_t *raw;        /* the whole TLV, header included */
};

struct sctp_tlv_iter {
	const uint8_t *p;
	size_t n;
	size_t off;
};

void sctp_tlv_iter_init(struct sctp_tlv_iter *it, const uint8_t *p, size_t n);

/*
 * 1 and a TLV, 0 at the end, or SCTP_PERR_TLV_LEN.  Every TLV but the
 * last is padded to 4 bytes inside the chunk; the last one's padding, if
 * any, may lie outside the chunk length (both are seen in the wild).
 */
int sctp_tlv_next(struct sctp_tlv_iter *it, struct sctp_tlv_ref *t);

/* ---- per-chunk views ---- */

/* DATA and I-DATA. */
struct sctp_data {
	uint8_t flags;             /* SCTP_DATA_* */
	uint32_t tsn;
	uint16_t sid;
	uint16_t ssn;              /* DATA only */
	uint32_t mid;              /* I-DATA only */
	uint32_t ppid;             /* DATA; I-DATA when B is set */
	uint32_t fsn;              /* I-DATA when B is clear */
	const uint8_t *payload;
	size_t payload_len;
};

/*
 * On SCTP_PERR_NO_USER_DATA the tsn is filled in: the ABORT the peer is
 * owed names it (§6.2 "No User Data").
 */
int sctp_data_parse(const struct sctp_chunk *c, struct sctp_data *out);
int sctp_idata_parse(const struct sctp_chunk *c, struct sctp_data *out);

/* INIT and INIT-ACK, with the parameters the engine uses picked out. */
struct sctp_init {
	uint32_t initiate_tag;
	uint32_t a_rwnd;
	uint16_t os;               /* outbound streams */
	uint16_t mis;              /* maximum inbound streams */
	uint32_t initial_tsn;
	const uint8_t *params;     /* all parameters, for a second walk */
	size_t params_len;
	const uint8_t *cookie;     /* INIT-ACK: State Cookie (required) */
	size_t cookie_len;
	const uint8_t *ext;        /* Supported Extensions: chunk types */
	size_t ext_len;
	int forward_tsn;           /* Forward-TSN-Supported present */
	int ecn;                   /* ECN Capable present (we never use it) */
	int zero_checksum;         /* RFC 9653 parameter present */
	int host_name;             /* Host Name Address present (deprecated) */
	uint32_t cookie_preservative_ms;  /* 0 if absent */
	/*
	 * A parameter of unknown type whose upper bits are 00 or 01 stopped
	 * the walk; params after it were not looked at (§3.2.1).
	 */
	int stopped;
	/* Unknown parameters to report (upper bits 01 or 11): views of the
	 * whole TLVs, the first few kept, all counted. */
	struct sctp_tlv_ref unrecognized[SCTP_INIT_MAX_UNRECOGNIZED];
	unsigned n_unrecognized;
	unsigned n_unrecognized_total;
};

int sctp_init_parse(const struct sctp_chunk *c, struct sctp_init *out);

/* 1 if the Supported Extensions parameter lists this chunk type. */
int sctp_init_supports(const struct sctp_init *in, uint8_t chunk_type);

struct sctp_sack {
	uint32_t cum_tsn;
	uint32_t a_rwnd;
	uint16_t ngaps;
	uint16_t ndups;
	const uint8_t *gaps;       /* ngaps * (start, end), 16-bit each */
	const uint8_t *dups;       /* ndups * TSN */
};

int sctp_sack_parse(const struct sctp_chunk *c, struct sctp_sack *out);

/* Gap block i (< ngaps): offsets from cum_tsn, 1 <= start <= end. */
void sctp_sack_gap(const struct sctp_sack *s, unsigned i, uint16_t *start,
                   uint16_t *end);

/* Duplicate TSN i (< ndups). */
uint32_t sctp_sack_dup(const struct sctp_sack *s, unsigned i);

/* HEARTBEAT / HEARTBEAT-ACK: the Heartbeat Info parameter. */
struct sctp_heartbeat {
	const uint8_t *info;       /* the parameter's value (sender-specific) */
	size_t info_len;
	const uint8_t *param;      /* the whole parameter, to echo back */
	size_t param_len;
};

int sctp_heartbeat_parse(const struct sctp_chunk *c, struct sctp_heartbeat *out);

/* ABORT and ERROR: a T bit (ABORT) and error causes. */
struct sctp_causes {
	int t;                     /* ABORT: T bit */
	const uint8_t *causes;     /* walk with sctp_tlv_iter */
	size_t causes_len;
	unsigned ncauses;
	uint16_t first_code;       /* 0 if there are no causes */
};

/* Checks every cause's framing and the body of the known ones. */
int sctp_abort_parse(const struct sctp_chunk *c, struct sctp_causes *out);
int sctp_error_parse(const struct sctp_chunk *c, struct sctp_causes *out);

/* SHUTDOWN: the cumulative TSN ack. */
int sctp_shutdown_parse(const struct sctp_chunk *c, uint32_t *cum_tsn);

/* COOKIE-ECHO: the cookie (non-empty) as a view. */
int sctp_cookie_echo_parse(const struct sctp_chunk *c, const uint8_t **cookie,
                           size_t *len);

/*
 * SHUTDOWN-ACK, SHUTDOWN-COMPLETE, COOKIE-ACK: type check only; *t gets
 * the T bit (only SHUTDOWN-COMPLETE defines one; may be NULL).
 */
int sctp_empty_chunk_parse(const struct sctp_chunk *c, uint8_t type, int *t);

/* ---- building ---- */

/*
 * Appends chunks to a caller buffer.  A call that fails leaves the packet
 * as it was before the call; finish it and put the chunk in the next one.
 */
struct sctp_builder {
	uint8_t *buf;
	size_t cap;
	size_t len;
	size_t chunk;              /* start of the open chunk, 0 if none */
	size_t tlv_pad;            /* padding after the open chunk's last TLV */
	size_t saved;              /* len before the open chunk */
};

/* Writes the common header (checksum 0).  Fails if cap < 12. */
int sctp_build_start(struct sctp_builder *b, uint8_t *buf, size_t cap,
                     uint16_t src_port, uint16_t dst_port, uint32_t vtag);

/* Sets the checksum unless no_crc (RFC 9653 peers); returns the length. */
size_t sctp_build_finish(struct sctp_builder *b, int no_crc);

/* Incremental chunk: open, add value bytes and TLVs, close or abandon. */
int sctp_chunk_open(struct sctp_builder *b, uint8_t type, uint8_t flags);
int sctp_chunk_put(struct sctp_builder *b, const void *p, size_t n);
int sctp_chunk_put_u16(struct sctp_builder *b, uint16_t v);
int sctp_chunk_put_u32(struct sctp_builder *b, uint32_t v);
/* A parameter or error cause, padded; the last one's padding is left
 * out of the chunk length, as RFC 9260 §3.2.1 asks. */
int sctp_chunk_put_tlv(struct sctp_builder *b, uint16_t type, const void *v,
                       size_t n);
int sctp_chunk_close(struct sctp_builder *b);
/* Drops the open chunk; the packet is as before sctp_chunk_open(). */
void sctp_chunk_abandon(struct sctp_builder *b);

/* One-call builders; each returns 0 or an sctp_perr code. */
int sctp_build_raw(struct sctp_builder *b, uint8_t type, uint8_t flags,
                   const void *value, size_t n);
int sctp_build_data(struct sctp_builder *b, const struct sctp_data *d);
int sctp_build_idata(struct sctp_builder *b, const struct sctp_data *d);

/* What an INIT or INIT-ACK we send carries. */
struct sctp_init_params {
	uint32_t initiate_tag;
	uint32_t a_rwnd;
	uint16_t os;
	uint16_t mis;
	uint32_t initial_tsn;
	const uint8_t *cookie;     /* INIT-ACK only */
	size_t cookie_len;
	const uint8_t *ext;        /* Supported Extensions list, or NULL */
	size_t ext_len;
	int forward_tsn;
	/* Further encoded parameters appended as they are (for instance the
	 * Unrecognized Parameter reports of an INIT-ACK). */
	const uint8_t *extra;
	size_t extra_len;
};

int sctp_build_init(struct sctp_builder *b, uint8_t type,
                    const struct sctp_init_params *ip);
int sctp_build_sack(struct sctp_builder *b, uint32_t cum_tsn, uint32_t a_rwnd,
                    const uint16_t (*gaps)[2], unsigned ngaps,
                    const uint32_t *dups, unsigned ndups);
int sctp_build_heartbeat(struct sctp_builder *b, uint8_t type,
                         const void *info, size_t n);
/* ABORT or ERROR from already encoded causes (may be empty for ABORT). */
int sctp_build_causes(struct sctp_builder *b, uint8_t type, int t,
                      const uint8_t *causes, size_t n);
/* ABORT or ERROR with a single cause. */
int sctp_build_cause(struct sctp_builder *b, uint8_t type, int t,
                     uint16_t code, const void *info, size_t n);
int sctp_build_shutdown(struct sctp_builder *b, uint32_t cum_tsn);
int sctp_build_cookie_echo(struct sctp_builder *b, const void *cookie, size_t n);
/* SHUTDOWN-ACK, SHUTDOWN-COMPLETE (t), COOKIE-ACK. */
int sctp_build_empty(struct sctp_builder *b, uint8_t type, int t);

#endif
