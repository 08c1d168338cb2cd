/*
 * SOCKS4, SOCKS4a and SOCKS5 (RFC 1928, RFC 1929) server-side negotiation
 * as a pure state machine: bytes in, bytes to reply and a parsed request
 * out.  No I/O happens here, so every path is unit-testable with raw bytes
 * and fuzzable.
 *
 * Usage: socks_state_init(); then feed whatever bytes have arrived to
 * socks_step() until it returns SOCKS_DONE or SOCKS_ERROR.  After each call,
 * send the `reply` bytes (if *replylen > 0) to the client.  On SOCKS_DONE
 * the request is in st->req, and any bytes past it (pipelined application
 * data) are the input after *used.  On SOCKS_ERROR send the reply (which may
 * be empty, e.g. for an unknown version) and close.
 */
#ifndef SCTPT_FRONT_SOCKS_H
#define SCTPT_FRONT_SOCKS_H

#include <stddef.h>
#include <stdint.h>

enum socks_result {
	SOCKS_ERROR = -1,
	SOCKS_NEED_MORE = 0,  /* consumed what it could; call again with more */
	SOCKS_DONE = 1,       /* request complete: st->req is valid */
};

enum socks_atyp {
	SOCKS_ATYP_IPV4 = 1,
	SOCKS_ATYP_DOMAIN = 3,
	SOCKS_ATYP_IPV6 = 4,
};

/* SOCKS5 reply codes (RFC 1928 section 6). */
enum socks5_rep {
	SOCKS5_SUCCEEDED = 0x00,
	SOCKS5_GENERAL_FAILURE = 0x01,
	SOCKS5_NOT_ALLOWED = 0x02,
	SOCKS5_NET_UNREACHABLE = 0x03,
	SOCKS5_HOST_UNREACHABLE = 0x04,
	SOCKS5_CONN_REFUSED = 0x05,
	SOCKS5_TTL_EXPIRED = 0x06,
	SOCKS5_CMD_NOT_SUPPORTED = 0x07,
	SOCKS5_ATYP_NOT_SUPPORTED = 0x08,
};

#define SOCKS_CMD_CONNECT 0x01
#define SOCKS_CMD_UDP_ASSOCIATE 0x03   /* SOCKS5 only (RFC 1928 section 7) */
#define SOCKS_USER_MAX 512   /* SOCKS4 user id may exceed 255 (tor args) */
#define SOCKS_PASS_MAX 255
#define SOCKS_REPLY_MAX 32   /* largest reply socks_step/socks_reply make */

struct socks_dest {
	uint8_t atyp;          /* enum socks_atyp */
	uint8_t ipv4[4];
	uint8_t ipv6[16];
	char domain[256];      /* NUL-terminated, 1..255 bytes, no NUL inside */
	uint16_t port;
};

struct socks_request {
	int version;           /* 4 or 5 */
	uint8_t cmd;           /* SOCKS_CMD_CONNECT or SOCKS_CMD_UDP_ASSOCIATE */
	struct socks_dest dest;
	int has_auth;          /* SOCKS5 user/pass used, or SOCKS4 user id non-empty */
	uint8_t user[SOCKS_USER_MAX];
	size_t user_len;       /* bytes may be any value, including NUL */
	uint8_t pass[SOCKS_PASS_MAX];
	size_t pass_len;
};

enum socks_phase {
	SOCKS_PHASE_START = 0,   /* expecting the version byte */
	SOCKS_PHASE_V5_AUTH,     /* expecting RFC 1929 sub-negotiation */
	SOCKS_PHASE_V5_REQUEST,  /* expecting the SOCKS5 request */
	SOCKS_PHASE_DONE,
	SOCKS_PHASE_FAILED,
};

struct socks_state {
	enum socks_phase phase;
	int allow_noauth;        /* accept method 0x00 (default 1) */
	int allow_userpass;      /* accept method 0x02 (default 1) */
	struct socks_request req;
	const char *error;       /* static description on SOCKS_ERROR */
};

/* Reset st to the beginning of a negotiation, both auth methods allowed. */
void socks_state_init(struct socks_state *st);

/*
 * Feed input.  *used receives how many bytes of `in` were consumed (only
 * whole messages are consumed).  reply (at least SOCKS_REPLY_MAX bytes)
 * receives bytes to send now, *replylen their count.  Returns enum
 * socks_result.  Method selection prefers username/password when offered,
 * so per-connection arguments sent there are kept.
 */
int socks_step(struct socks_state *st, const uint8_t *in, size_t n,
               size_t *used, uint8_t *reply, size_t *replylen);

/*
 * Build the final reply to a completed request: rep is a SOCKS5 code
 * (SOCKS5_SUCCEEDED or a failure).  For SOCKS4 it maps to 0x5A / 0x5B.
 * Returns the reply length (at most SOCKS_REPLY_MAX).
 */
size_t socks_reply(const struct socks_state *st, uint8_t rep, uint8_t *out);

struct sockaddr;

/*
 * The final SOCKS5 reply with a bound address (UDP ASSOCIATE: where the
 * client sends its datagrams).  bnd is AF_INET or AF_INET6; its length.
 */
size_t socks_reply_bound(uint8_t rep, const struct sockaddr *bnd, uint8_t *out);

/* RFC 1928 section 7: RSV (2) FRAG (1) ATYP DST.ADDR DST.PORT, then data. */
#define SOCKS_UDP_HDR_MAX (3 + 1 + 1 + 255 + 2)
enum socks_udp_result {
	SOCKS_UDP_OK = 0,
	SOCKS_UDP_BAD = -1,    /* truncated, RSV not zero, port 0, bad name */
	SOCKS_UDP_FRAG = -2,   /* FRAG != 0: fragmentation is not supported */
	SOCKS_UDP_ATYP = -3,   /* unknown address type */
};
/*
 * Parse the header of a datagram from the client strictly.  On
 * SOCKS_UDP_OK *dest is set and the data starts at p + *hdrlen.
 */
int socks_udp_decode(const uint8_t *p, size_t n, struct socks_dest *dest, size_t *hdrlen);
/* Write the header for a datagram to the client; its length, or 0 if dest
 * is invalid or out (at least SOCKS_UDP_HDR_MAX bytes) too small. */
size_t socks_udp_encode(const struct socks_dest *dest, uint8_t *out, size_t outlen);

/* Human-readable destination "host:port" / "[v6]:port" for logs. */
const char *socks_dest_format(const struct socks_dest *d, char *buf, size_t len);

#endif
