/*
 * Client side of the upstream proxy protocols, as pure state machines:
 * bytes in, bytes to send out, no I/O (private to src/carrier; tcp.c and
 * udp.c drive them over real connections).
 *
 *   SOCKS5   RFC 1928 CONNECT and UDP ASSOCIATE, with no authentication or
 *            RFC 1929 user/password when the proxy URL has credentials
 *   SOCKS4   CONNECT to an IPv4 address with a user id (our destination is
 *            always numeric, so the SOCKS4a name form is never needed)
 *   HTTP     CONNECT host:port, optional Proxy-Authorization: Basic
 *
 * Usage: proxy_neg_init() gives the first bytes to send; then feed what
 * the proxy has sent to proxy_neg_step() (always from the first byte not
 * yet consumed) until it returns PROXY_DONE or PROXY_ERROR, sending the
 * out bytes after each call.  A message is consumed only when it is whole;
 * on PROXY_DONE, bytes after *used belong to the tunnelled connection.  On
 * PROXY_ERROR, n->error is a static sentence saying what went wrong.
 */
#ifndef SCTPT_CARRIER_PROXY_H
#define SCTPT_CARRIER_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "carrier/carrier.h"

enum proxy_result {
	PROXY_ERROR = -1,
	PROXY_NEED_MORE = 0,
	PROXY_DONE = 1,
};

enum proxy_cmd {
	PROXY_CMD_CONNECT = 1,
	PROXY_CMD_UDP_ASSOCIATE = 3,    /* SOCKS5 only */
};

enum proxy_phase {
	PROXY_PHASE_START = 0,          /* proxy_neg_init not called or failed */
	PROXY_PHASE_S5_METHOD,          /* waiting for the SOCKS5 method choice */
	PROXY_PHASE_S5_AUTH,            /* waiting for the RFC 1929 status */
	PROXY_PHASE_S5_REPLY,           /* waiting for the SOCKS5 reply */
	PROXY_PHASE_S4_REPLY,           /* waiting for the 8-byte SOCKS4 reply */
	PROXY_PHASE_HTTP_REPLY,         /* waiting for the HTTP status and headers */
	PROXY_PHASE_DONE,
	PROXY_PHASE_FAILED,
};

/* Largest output of one call (an HTTP request with 511 bytes of credentials). */
#define PROXY_OUT_MAX 1024
/* An HTTP answer's status line and headers must end within this many bytes. */
#define PROXY_HTTP_HEAD_MAX 8192
/* Input a caller needs to make linear at most before a call can decide. */
#define PROXY_IN_MAX (PROXY_HTTP_HEAD_MAX + 1)

struct proxy_neg {
	enum proxy_phase phase;
	enum carrier_proxy_type type;
	enum proxy_cmd cmd;
	struct carrier_proxy proxy;     /* copy: credentials and the proxy's address */
	struct sockaddr_storage dest;   /* CONNECT: the destination */
	socklen_t destlen;
	/*
	 * SOCKS5 on PROXY_DONE: BND.ADDR/BND.PORT.  For UDP ASSOCIATE this
	 * is the relay to send datagrams to, with an unspecified address
	 * (0.0.0.0, ::) replaced by the proxy's own.  bound_len is 0 when
	 * the proxy named itself by a host name (fine for CONNECT only).
	 */
	struct sockaddr_storage bound;
	socklen_t bound_len;
	int http_status;                /* HTTP: the status code once known */
	const char *error;              /* static; set on PROXY_ERROR */
};

/*
 * Start a negotiation with proxy p for cmd to dest (UDP ASSOCIATE: dest
 * is ignored and all zeros are sent, as RFC 1928 allows when the client's
 * UDP address is not known yet).  Writes the first bytes to send to out
 * (PROXY_OUT_MAX bytes).  PROXY_NEED_MORE, or PROXY_ERROR with n->error
 * (e.g. an IPv6 destination through a SOCKS4 proxy).
 */
int proxy_neg_init(struct proxy_neg *n, const struct carrier_proxy *p, enum proxy_cmd cmd,
                   const struct sockaddr *dest, socklen_t destlen,
                   uint8_t *out, size_t *outlen);

/*
 * Feed the proxy's bytes (in, len: everything received and not consumed
 * yet).  Sets *used (bytes consumed) and *outlen (bytes to send now, into
 * out of PROXY_OUT_MAX bytes).  The end (DONE or ERROR) is sticky.
 */
int proxy_neg_step(struct proxy_neg *n, const uint8_t *in, size_t len, size_t *used,
                   uint8_t *out, size_t *outlen);

/* Wipe the credentials kept in n; NULL is fine. */
void proxy_neg_clear(struct proxy_neg *n);

/* Short name of a phase, for debug logs. */
const char *proxy_phase_name(enum proxy_phase ph);

/*
 * SOCKS5 UDP request header (RFC 1928 section 7) for datagrams to dst:
 * RSV RSV FRAG=0 ATYP DST.ADDR DST.PORT.  Returns its length (10 or 22),
 * or 0 if dst is neither IPv4 nor IPv6.
 */
#define SOCKS5_UDP_HDR_MAX 22
size_t socks5_udp_header(const struct sockaddr *dst, uint8_t out[SOCKS5_UDP_HDR_MAX]);

enum socks5_udp_result {
	SOCKS5_UDP_OK = 0,
	SOCKS5_UDP_SHORT = -1,          /* truncated header */
	SOCKS5_UDP_BAD = -2,            /* RSV not zero or unknown ATYP */
	SOCKS5_UDP_FRAG = -3,           /* a fragment: we never ask for them */
	SOCKS5_UDP_NAME = -4,           /* source given as a host name */
};

/*
 * Parse the header of a datagram from a SOCKS5 UDP relay: its source in
 * *from (IPv4 or IPv6) and the header length in *hdrlen.  One of
 * enum socks5_udp_result.
 */
int socks5_udp_parse(const uint8_t *p, size_t n, struct sockaddr_storage *from,
                     socklen_t *fromlen, size_t *hdrlen);

/* Whether a and b are the same IP address and port (IPv4-mapped IPv6 equals IPv4). */
int proxy_same_addr(const struct sockaddr *a, const struct sockaddr *b);

#endif
