/*
 * SOCKS4, SOCKS4a and SOCKS5 (RFC 1928, RFC 1929) server-side negotiation.
 *
 * Each phase has one parser that looks at the unconsumed input, and either
 * says the message is still incomplete, or takes the whole message, appends
 * what must be sent back and moves to the next phase.  socks_step() runs
 * parsers until input runs out or the negotiation ends, so a client that
 * pipelines greeting, auth and request gets them all handled in one call.
 * Nothing here does I/O or allocates; the front end owns the sockets.
 */
#include "front/socks.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "util/bytes.h"
#include "util/log.h"

#define SOCKS4_VERSION 0x04
#define SOCKS5_VERSION 0x05
#define SOCKS4_HDR_LEN 8          /* VN CD DSTPORT(2) DSTIP(4) */
#define SOCKS4_GRANTED 0x5a
#define SOCKS4_REJECTED 0x5b
#define SOCKS4A_HOST_MAX 255

#define SOCKS5_METHOD_NOAUTH 0x00
#define SOCKS5_METHOD_USERPASS 0x02
#define SOCKS5_METHOD_NONE 0xff
#define SOCKS5_REQ_HDR_LEN 4      /* VER CMD RSV ATYP */

#define USERPASS_VERSION 0x01
#define USERPASS_OK 0x00
#define USERPASS_FAIL 0x01

/* What a parser made of the input it was given. */
enum msg_result {
	MSG_FAIL = -1,        /* negotiation over; st->error is set */
	MSG_INCOMPLETE = 0,   /* the message is not all there yet */
	MSG_OK = 1,           /* one whole message consumed */
};

/* Replies of one socks_step() call accumulate here, in order. */
struct reply_buf {
	uint8_t *p;
	size_t len;
};

static const char *phase_name(enum socks_phase phase)
{
	switch (phase) {
	case SOCKS_PHASE_START: return "start";
	case SOCKS_PHASE_V5_AUTH: return "v5-auth";
	case SOCKS_PHASE_V5_REQUEST: return "v5-request";
	case SOCKS_PHASE_DONE: return "done";
	case SOCKS_PHASE_FAILED: return "failed";
	}
	return "?";
}

static void set_phase(struct socks_state *st, enum socks_phase phase)
{
	log_debug("%s -> %s", phase_name(st->phase), phase_name(phase));
	st->phase = phase;
}

static enum msg_result fail(struct socks_state *st, const char *why)
{
	st->error = why;
	set_phase(st, SOCKS_PHASE_FAILED);
	return MSG_FAIL;
}

static void reply_put(struct reply_buf *rb, const uint8_t *bytes, size_t k)
{
	/* One negotiation sends at most 2 + 2 + 10 bytes; more is our bug. */
	assert(rb->len + k <= SOCKS_REPLY_MAX);
	memcpy(rb->p + rb->len, bytes, k);
	rb->len += k;
}

static void reply_put2(struct reply_buf *rb, uint8_t a, uint8_t b)
{
	const uint8_t two[2] = { a, b };

	reply_put(rb, two, sizeof(two));
}

/*
 * The final reply to a request.  The bound address is always 0.0.0.0:0:
 * clients of a CONNECT ignore it, and the real one would leak where the
 * server side connected from.
 */
static size_t build_final_reply(int version, uint8_t rep, uint8_t *out)
{
	if (version == SOCKS4_VERSION) {
		memset(out, 0, 8);
		out[1] = rep == SOCKS5_SUCCEEDED ? SOCKS4_GRANTED : SOCKS4_REJECTED;
		return 8;
	}
	memset(out, 0, 10);
	out[0] = SOCKS5_VERSION;
	out[1] = rep;
	out[3] = SOCKS_ATYP_IPV4;
	return 10;
}

static enum msg_result fail_final(struct socks_state *st, struct reply_buf *rb,
                                  int version, uint8_t rep, const char *why)
{
	uint8_t tmp[SOCKS_REPLY_MAX];

	reply_put(rb, tmp, build_final_reply(version, rep, tmp));
	return fail(st, why);
}

/*
 * Find a NUL-terminated string of at most maxlen bytes at p.  Decides
 * "too long" only once maxlen + 1 bytes without a NUL are there, so the
 * outcome does not depend on how the input was split.
 */
static enum msg_result take_cstring(const uint8_t *p, size_t n, size_t maxlen,
                                    size_t *len)
{
	size_t span = n < maxlen + 1 ? n : maxlen + 1;
	const uint8_t *nul = memchr(p, 0, span);

	if (nul != NULL) {
		*len = (size_t)(nul - p);
		return MSG_OK;
	}
	return n > maxlen ? MSG_FAIL : MSG_INCOMPLETE;
}

/* SOCKS4 and 4a: VN CD DSTPORT DSTIP USERID NUL [HOST NUL]. */
static enum msg_result parse_v4(struct socks_state *st, const uint8_t *p,
                                size_t n, size_t *msglen, struct reply_buf *rb)
{
	struct socks_request *req = &st->req;
	size_t off = SOCKS4_HDR_LEN, ulen, hlen = 0;
	const uint8_t *ip;
	int is_4a;
	enum msg_result r;

	if (n <= off)
		return MSG_INCOMPLETE;
	ip = p + 4;
	r = take_cstring(p + off, n - off, SOCKS_USER_MAX - 1, &ulen);
	if (r == MSG_FAIL)
		return fail_final(st, rb, SOCKS4_VERSION, SOCKS5_GENERAL_FAILURE,
		                  "SOCKS4 user id too long");
	if (r == MSG_INCOMPLETE)
		return r;
	off += ulen + 1;

	/* 0.0.0.x with x != 0 is the SOCKS4a marker for "hostname follows". */
	is_4a = ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0;
	if (is_4a) {
		r = take_cstring(p + off, n - off, SOCKS4A_HOST_MAX, &hlen);
		if (r == MSG_FAIL)
			return fail_final(st, rb, SOCKS4_VERSION,
			                  SOCKS5_GENERAL_FAILURE,
			                  "SOCKS4a hostname too long");
		if (r == MSG_INCOMPLETE)
			return r;
		if (hlen == 0)
			return fail_final(st, rb, SOCKS4_VERSION,
			                  SOCKS5_GENERAL_FAILURE,
			                  "SOCKS4a hostname empty");
	}

	req->version = SOCKS4_VERSION;
	req->cmd = p[1];
	if (req->cmd != SOCKS_CMD_CONNECT)
		return fail_final(st, rb, SOCKS4_VERSION, SOCKS5_CMD_NOT_SUPPORTED,
		                  "unsupported SOCKS4 command");

	req->dest.port = get_u16be(p + 2);
	if (is_4a) {
		req->dest.atyp = SOCKS_ATYP_DOMAIN;
		memcpy(req->dest.domain, p + off, hlen);
		req->dest.domain[hlen] = '\0';
		off += hlen + 1;
	} else {
		req->dest.atyp = SOCKS_ATYP_IPV4;
		memcpy(req->dest.ipv4, ip, 4);
	}
	memcpy(req->user, p + SOCKS4_HDR_LEN, ulen);
	req->user_len = ulen;
	req->pass_len = 0;
	req->has_auth = ulen > 0;

	*msglen = off;
	set_phase(st, SOCKS_PHASE_DONE);
	return MSG_OK;
}

/* Username/password first, so per-connection tor arguments are not lost. */
static uint8_t choose_method(const struct socks_state *st,
                             const uint8_t *methods, size_t count)
{
	int has_noauth = 0, has_userpass = 0;

	for (size_t i = 0; i < count; i++) {
		has_noauth |= methods[i] == SOCKS5_METHOD_NOAUTH;
		has_userpass |= methods[i] == SOCKS5_METHOD_USERPASS;
	}
	if (has_userpass && st->allow_userpass)
		return SOCKS5_METHOD_USERPASS;
	if (has_noauth && st->allow_noauth)
		return SOCKS5_METHOD_NOAUTH;
	return SOCKS5_METHOD_NONE;
}

/* SOCKS5 greeting: VER NMETHODS METHODS. */
static enum msg_result parse_v5_greeting(struct socks_state *st,
                                         const uint8_t *p, size_t n,
                                         size_t *msglen, struct reply_buf *rb)
{
	size_t nmethods;
	uint8_t method;

	if (n < 2)
		return MSG_INCOMPLETE;
	nmethods = p[1];
	if (nmethods == 0) {
		reply_put2(rb, SOCKS5_VERSION, SOCKS5_METHOD_NONE);
		return fail(st, "no auth methods offered");
	}
	if (n < 2 + nmethods)
		return MSG_INCOMPLETE;

	method = choose_method(st, p + 2, nmethods);
	reply_put2(rb, SOCKS5_VERSION, method);
	if (method == SOCKS5_METHOD_NONE)
		return fail(st, "no acceptable auth method");

	st->req.version = SOCKS5_VERSION;
	*msglen = 2 + nmethods;
	set_phase(st, method == SOCKS5_METHOD_USERPASS ?
	              SOCKS_PHASE_V5_AUTH : SOCKS_PHASE_V5_REQUEST);
	return MSG_OK;
}

/*
 * RFC 1929: VER ULEN UNAME PLEN PASSWD.  Any credentials are accepted:
 * they carry arguments (tor's "k=v;k=v"), the tunnel authenticates itself.
 */
static enum msg_result parse_v5_auth(struct socks_state *st, const uint8_t *p,
                                     size_t n, size_t *msglen,
                                     struct reply_buf *rb)
{
	struct socks_request *req = &st->req;
	size_t ulen, plen;

	if (n < 1)
		return MSG_INCOMPLETE;
	if (p[0] != USERPASS_VERSION) {
		reply_put2(rb, USERPASS_VERSION, USERPASS_FAIL);
		return fail(st, "unsupported auth sub-negotiation version");
	}
	if (n < 2)
		return MSG_INCOMPLETE;
	ulen = p[1];
	if (n < 2 + ulen + 1)
		return MSG_INCOMPLETE;
	plen = p[2 + ulen];
	if (n < 3 + ulen + plen)
		return MSG_INCOMPLETE;

	memcpy(req->user, p + 2, ulen);
	req->user_len = ulen;
	memcpy(req->pass, p + 3 + ulen, plen);
	req->pass_len = plen;
	req->has_auth = 1;

	reply_put2(rb, USERPASS_VERSION, USERPASS_OK);
	*msglen = 3 + ulen + plen;
	set_phase(st, SOCKS_PHASE_V5_REQUEST);
	return MSG_OK;
}

/* Bytes of DST.ADDR for atyp, 0 if unknown; needs the byte after ATYP. */
static size_t v5_addr_len(uint8_t atyp, const uint8_t *after_atyp)
{
	switch (atyp) {
	case SOCKS_ATYP_IPV4: return 4;
	case SOCKS_ATYP_IPV6: return 16;
	case SOCKS_ATYP_DOMAIN: return 1 + (size_t)after_atyp[0];
	}
	return 0;
}

/* SOCKS5 request: VER CMD RSV ATYP DST.ADDR DST.PORT.  RSV is ignored. */
static enum msg_result parse_v5_request(struct socks_state *st,
                                        const uint8_t *p, size_t n,
                                        size_t *msglen, struct reply_buf *rb)
{
	struct socks_dest *dest = &st->req.dest;
	const uint8_t *addr;
	uint8_t atyp;
	size_t alen;

	if (n < SOCKS5_REQ_HDR_LEN)
		return MSG_INCOMPLETE;
	addr = p + SOCKS5_REQ_HDR_LEN;
	/* Without the right version the rest cannot be framed at all. */
	if (p[0] != SOCKS5_VERSION)
		return fail_final(st, rb, SOCKS5_VERSION, SOCKS5_GENERAL_FAILURE,
		                  "bad SOCKS5 request version");
	atyp = p[3];
	if (atyp == SOCKS_ATYP_DOMAIN && n < SOCKS5_REQ_HDR_LEN + 1)
		return MSG_INCOMPLETE;
	alen = v5_addr_len(atyp, addr);
	if (alen == 0)
		return fail_final(st, rb, SOCKS5_VERSION, SOCKS5_ATYP_NOT_SUPPORTED,
		                  "unsupported address type");
	if (n < SOCKS5_REQ_HDR_LEN + alen + 2)
		return MSG_INCOMPLETE;

	st->req.cmd = p[1];
	if (st->req.cmd != SOCKS_CMD_CONNECT && st->req.cmd != SOCKS_CMD_UDP_ASSOCIATE)
		return fail_final(st, rb, SOCKS5_VERSION, SOCKS5_CMD_NOT_SUPPORTED,
		                  "unsupported SOCKS5 command");

	dest->atyp = atyp;
	if (atyp == SOCKS_ATYP_IPV4) {
		memcpy(dest->ipv4, addr, 4);
	} else if (atyp == SOCKS_ATYP_IPV6) {
		memcpy(dest->ipv6, addr, 16);
	} else {
		size_t dlen = addr[0];

		/* A NUL would silently cut the name short when resolved. */
		if (dlen == 0 || memchr(addr + 1, 0, dlen) != NULL)
			return fail_final(st, rb, SOCKS5_VERSION,
			                  SOCKS5_GENERAL_FAILURE,
			                  "bad SOCKS5 hostname");
		memcpy(dest->domain, addr + 1, dlen);
		dest->domain[dlen] = '\0';
	}
	dest->port = get_u16be(addr + alen);

	*msglen = SOCKS5_REQ_HDR_LEN + alen + 2;
	set_phase(st, SOCKS_PHASE_DONE);
	return MSG_OK;
}

static enum msg_result parse_message(struct socks_state *st, const uint8_t *p,
                                     size_t n, size_t *msglen,
                                     struct reply_buf *rb)
{
	switch (st->phase) {
	case SOCKS_PHASE_START:
		if (n < 1)
			return MSG_INCOMPLETE;
		if (p[0] == SOCKS4_VERSION)
			return parse_v4(st, p, n, msglen, rb);
		if (p[0] == SOCKS5_VERSION)
			return parse_v5_greeting(st, p, n, msglen, rb);
		/* No reply: we cannot know what an unknown version expects. */
		return fail(st, "unsupported SOCKS version");
	case SOCKS_PHASE_V5_AUTH:
		return parse_v5_auth(st, p, n, msglen, rb);
	case SOCKS_PHASE_V5_REQUEST:
		return parse_v5_request(st, p, n, msglen, rb);
	case SOCKS_PHASE_DONE:
	case SOCKS_PHASE_FAILED:
		break;
	}
	return MSG_INCOMPLETE;
}

void socks_state_init(struct socks_state *st)
{
	memset(st, 0, sizeof(*st));
	st->phase = SOCKS_PHASE_START;
	st->allow_noauth = 1;
	st->allow_userpass = 1;
}

int socks_step(struct socks_state *st, const uint8_t *in, size_t n,
               size_t *used, uint8_t *reply, size_t *replylen)
{
	static const uint8_t empty[1];
	struct reply_buf rb = { reply, 0 };
	size_t off = 0;

	assert(in != NULL || n == 0);
	/* Keeps the pointer arithmetic below defined for (NULL, 0). */
	if (in == NULL)
		in = empty;

	while (st->phase != SOCKS_PHASE_DONE &&
	       st->phase != SOCKS_PHASE_FAILED) {
		size_t msglen = 0;

		if (parse_message(st, in + off, n - off, &msglen, &rb) != MSG_OK)
			break;
		off += msglen;
	}

	*used = off;
	*replylen = rb.len;
	if (st->phase == SOCKS_PHASE_DONE)
		return SOCKS_DONE;
	if (st->phase == SOCKS_PHASE_FAILED)
		return SOCKS_ERROR;
	return SOCKS_NEED_MORE;
}

size_t socks_reply(const struct socks_state *st, uint8_t rep, uint8_t *out)
{
	return build_final_reply(st->req.version, rep, out);
}

size_t socks_reply_bound(uint8_t rep, const struct sockaddr *bnd, uint8_t *out)
{
	size_t n = 4;

	out[0] = SOCKS5_VERSION;
	out[1] = rep;
	out[2] = 0;
	if (bnd->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)bnd;

		out[3] = SOCKS_ATYP_IPV6;
		memcpy(out + n, &sin6->sin6_addr, 16);
		n += 16;
		memcpy(out + n, &sin6->sin6_port, 2);
	} else if (bnd->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)bnd;

		out[3] = SOCKS_ATYP_IPV4;
		memcpy(out + n, &sin->sin_addr, 4);
		n += 4;
		memcpy(out + n, &sin->sin_port, 2);
	} else {
		return build_final_reply(SOCKS5_VERSION, rep, out);
	}
	return n + 2;
}

int socks_udp_decode(const uint8_t *p, size_t n, struct socks_dest *dest, size_t *hdrlen)
{
	size_t alen;

	memset(dest, 0, sizeof(*dest));
	*hdrlen = 0;
	if (n < 4)
		return SOCKS_UDP_BAD;
	if (p[0] != 0 || p[1] != 0)
		return SOCKS_UDP_BAD;
	/* A fragment (or the end of one, 0x80 set) cannot be reassembled here. */
	if (p[2] != 0)
		return SOCKS_UDP_FRAG;
	if (p[3] == SOCKS_ATYP_DOMAIN && n < 5)
		return SOCKS_UDP_BAD;
	alen = v5_addr_len(p[3], p + 4);
	if (alen == 0)
		return SOCKS_UDP_ATYP;
	if (n < 4 + alen + 2)
		return SOCKS_UDP_BAD;
	dest->atyp = p[3];
	if (p[3] == SOCKS_ATYP_IPV4) {
		memcpy(dest->ipv4, p + 4, 4);
	} else if (p[3] == SOCKS_ATYP_IPV6) {
		memcpy(dest->ipv6, p + 4, 16);
	} else {
		size_t dlen = p[4];

		if (dlen == 0 || memchr(p + 5, 0, dlen) != NULL)
			return SOCKS_UDP_BAD;
		memcpy(dest->domain, p + 5, dlen);
		dest->domain[dlen] = '\0';
	}
	dest->port = get_u16be(p + 4 + alen);
	if (dest->port == 0)
		return SOCKS_UDP_BAD;
	*hdrlen = 4 + alen + 2;
	return SOCKS_UDP_OK;
}

size_t socks_udp_encode(const struct socks_dest *dest, uint8_t *out, size_t outlen)
{
	size_t n = 4, alen;

	switch (dest->atyp) {
	case SOCKS_ATYP_IPV4: alen = 4; break;
	case SOCKS_ATYP_IPV6: alen = 16; break;
	case SOCKS_ATYP_DOMAIN:
		alen = strnlen(dest->domain, sizeof(dest->domain));
		if (alen == 0 || alen > 255)
			return 0;
		alen++;
		break;
	default:
		return 0;
	}
	if (outlen < 4 + alen + 2)
		return 0;
	out[0] = out[1] = out[2] = 0;
	out[3] = dest->atyp;
	if (dest->atyp == SOCKS_ATYP_IPV4) {
		memcpy(out + n, dest->ipv4, 4);
	} else if (dest->atyp == SOCKS_ATYP_IPV6) {
		memcpy(out + n, dest->ipv6, 16);
	} else {
		out[n] = (uint8_t)(alen - 1);
		memcpy(out + n + 1, dest->domain, alen - 1);
	}
	n += alen;
	put_u16be(out + n, dest->port);
	return n + 2;
}

/* Peer-chosen hostnames go to logs: keep control bytes out of them. */
static void sanitize_host(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

const char *socks_dest_format(const struct socks_dest *d, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN > 256 ? INET6_ADDRSTRLEN : 256];

	if (len == 0)
		return buf;
	switch (d->atyp) {
	case SOCKS_ATYP_IPV4:
		inet_ntop(AF_INET, d->ipv4, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, (unsigned)d->port);
		break;
	case SOCKS_ATYP_IPV6:
		inet_ntop(AF_INET6, d->ipv6, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, (unsigned)d->port);
		break;
	case SOCKS_ATYP_DOMAIN:
		snprintf(host, sizeof(host), "%.255s", d->domain);
		sanitize_host(host);
		snprintf(buf, len, "%s:%u", host, (unsigned)d->port);
		break;
	default:
		snprintf(buf, len, "?:%u", (unsigned)d->port);
		break;
	}
	return buf;
}
