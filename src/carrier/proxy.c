/*
 * Upstream proxies for the carriers: URL parsing, and the client side of
 * SOCKS5, SOCKS4 and HTTP CONNECT as pure state machines (proxy.h).  No
 * I/O: tcp.c and udp.c feed these with what the proxy sent.
 */
#include "carrier/proxy.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>

#include "util/bytes.h"
#include "util/log.h"
#include "util/netaddr.h"

const char *carrier_proxy_name(enum carrier_proxy_type t)
{
	switch (t) {
	case CARRIER_PROXY_SOCKS5: return "socks5";
	case CARRIER_PROXY_SOCKS4A: return "socks4a";
	case CARRIER_PROXY_HTTP: return "http";
	default: return "none";
	}
}

int carrier_proxy_parse(const char *url, struct carrier_proxy *p, const char **err)
{
	const char *rest, *at, *colon;
	char host[NETADDR_HOST_MAX];
	uint16_t port;
	size_t n;

	memset(p, 0, sizeof(*p));
	if (strncasecmp(url, "socks5://", 9) == 0) {
		p->type = CARRIER_PROXY_SOCKS5;
		rest = url + 9;
	} else if (strncasecmp(url, "socks4a://", 10) == 0) {
		p->type = CARRIER_PROXY_SOCKS4A;
		rest = url + 10;
	} else if (strncasecmp(url, "socks4://", 9) == 0) {
		p->type = CARRIER_PROXY_SOCKS4A;
		rest = url + 9;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		p->type = CARRIER_PROXY_HTTP;
		rest = url + 7;
	} else {
		*err = "unsupported proxy type (want socks5://, socks4a:// or http://)";
		return -1;
	}
	at = strrchr(rest, '@');
	if (at != NULL) {
		n = (size_t)(at - rest);
		colon = memchr(rest, ':', n);
		if (colon != NULL) {
			if ((size_t)(colon - rest) >= sizeof(p->user) ||
			    n - (size_t)(colon - rest) - 1 >= sizeof(p->pass)) {
				*err = "proxy user name or password too long";
				return -1;
			}
			memcpy(p->user, rest, (size_t)(colon - rest));
			memcpy(p->pass, colon + 1, n - (size_t)(colon - rest) - 1);
		} else {
			if (n >= sizeof(p->user)) {
				*err = "proxy user name too long";
				return -1;
			}
			memcpy(p->user, rest, n);
		}
		if (p->user[0] == '\0') {
			*err = "empty proxy user name";
			return -1;
		}
		p->has_auth = 1;
		rest = at + 1;
	}
	if (netaddr_parse_hostport(rest, host, sizeof(host), &port, 0) < 0 ||
	    netaddr_from_numeric(host, port, &p->addr, &p->len) < 0) {
		*err = "bad proxy address (want a numeric IP:PORT or [IPv6]:PORT)";
		return -1;
	}
	if (p->type == CARRIER_PROXY_SOCKS5 && p->has_auth &&
	    (strlen(p->user) > 255 || strlen(p->pass) > 255)) {
		*err = "SOCKS5 user name and password are limited to 255 bytes";
		return -1;
	}
	*err = NULL;
	return 0;
}

/* ---------- negotiation ---------- */

const char *proxy_phase_name(enum proxy_phase ph)
{
	switch (ph) {
	case PROXY_PHASE_START: return "start";
	case PROXY_PHASE_S5_METHOD: return "socks5-method";
	case PROXY_PHASE_S5_AUTH: return "socks5-auth";
	case PROXY_PHASE_S5_REPLY: return "socks5-reply";
	case PROXY_PHASE_S4_REPLY: return "socks4-reply";
	case PROXY_PHASE_HTTP_REPLY: return "http-reply";
	case PROXY_PHASE_DONE: return "done";
	case PROXY_PHASE_FAILED: return "failed";
	}
	return "?";
}

static void set_phase(struct proxy_neg *n, enum proxy_phase ph)
{
	log_debug("%s proxy: %s -> %s", carrier_proxy_name(n->type),
	          proxy_phase_name(n->phase), proxy_phase_name(ph));
	n->phase = ph;
}

static int fail(struct proxy_neg *n, const char *why)
{
	n->error = why;
	set_phase(n, PROXY_PHASE_FAILED);
	return PROXY_ERROR;
}

/* IPv4-mapped IPv6 (::ffff:a.b.c.d) as plain IPv4; others unchanged. */
static void unmap(const struct sockaddr *sa, struct sockaddr_storage *out)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		if (memcmp(in6->sin6_addr.s6_addr, prefix, 12) == 0) {
			struct sockaddr_in *in = (struct sockaddr_in *)out;

			in->sin_family = AF_INET;
			in->sin_port = in6->sin6_port;
			memcpy(&in->sin_addr, in6->sin6_addr.s6_addr + 12, 4);
			return;
		}
		memcpy(out, sa, sizeof(struct sockaddr_in6));
	} else if (sa->sa_family == AF_INET) {
		memcpy(out, sa, sizeof(struct sockaddr_in));
	}
}

int proxy_same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	struct sockaddr_storage x, y;

	unmap(a, &x);
	unmap(b, &y);
	if (x.ss_family != y.ss_family)
		return 0;
	if (x.ss_family == AF_INET) {
		const struct sockaddr_in *p = (const struct sockaddr_in *)&x;
		const struct sockaddr_in *q = (const struct sockaddr_in *)&y;

		return p->sin_port == q->sin_port &&
		       memcmp(&p->sin_addr, &q->sin_addr, 4) == 0;
	}
	if (x.ss_family == AF_INET6) {
		const struct sockaddr_in6 *p = (const struct sockaddr_in6 *)&x;
		const struct sockaddr_in6 *q = (const struct sockaddr_in6 *)&y;

		return p->sin6_port == q->sin6_port &&
		       memcmp(&p->sin6_addr, &q->sin6_addr, 16) == 0;
	}
	return 0;
}

/* SOCKS5 ATYP | ADDR | PORT of sa into out; its length, or 0. */
static size_t s5_addr(const struct sockaddr *sa, uint8_t *out)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		out[0] = 1;
		memcpy(out + 1, &in->sin_addr, 4);
		memcpy(out + 5, &in->sin_port, 2);
		return 7;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		out[0] = 4;
		memcpy(out + 1, &in6->sin6_addr, 16);
		memcpy(out + 17, &in6->sin6_port, 2);
		return 19;
	}
	return 0;
}

static size_t s5_request(const struct proxy_neg *n, uint8_t *out)
{
	size_t k;

	out[0] = 5;
	out[1] = (uint8_t)n->cmd;
	out[2] = 0;
	if (n->cmd == PROXY_CMD_UDP_ASSOCIATE) {
		/* Our UDP address is not known yet: all zeros (RFC 1928 section 7). */
		if (n->proxy.addr.ss_family == AF_INET6) {
			out[3] = 4;
			memset(out + 4, 0, 18);
			return 22;
		}
		out[3] = 1;
		memset(out + 4, 0, 6);
		return 10;
	}
	k = s5_addr((const struct sockaddr *)&n->dest, out + 3);
	return k > 0 ? 3 + k : 0;
}

static size_t s5_auth(const struct proxy_neg *n, uint8_t *out)
{
	size_t ul = strlen(n->proxy.user), pl = strlen(n->proxy.pass);

	out[0] = 1;
	out[1] = (uint8_t)ul;
	memcpy(out + 2, n->proxy.user, ul);
	out[2 + ul] = (uint8_t)pl;
	memcpy(out + 3 + ul, n->proxy.pass, pl);
	return 3 + ul + pl;
}

static const char *const s5_connect_err[9] = {
	NULL,
	"SOCKS5 proxy refused the connection (reply 1: general failure)",
	"SOCKS5 proxy refused the connection (reply 2: not allowed by its rules)",
	"SOCKS5 proxy refused the connection (reply 3: network unreachable)",
	"SOCKS5 proxy refused the connection (reply 4: host unreachable)",
	"SOCKS5 proxy refused the connection (reply 5: connection refused)",
	"SOCKS5 proxy refused the connection (reply 6: TTL expired)",
	"SOCKS5 proxy refused the connection (reply 7: command not supported)",
	"SOCKS5 proxy refused the connection (reply 8: address type not supported)",
};

static const char *const s5_udp_err[9] = {
	NULL,
	"SOCKS5 proxy refused UDP ASSOCIATE (reply 1: general failure)",
	"SOCKS5 proxy refused UDP ASSOCIATE (reply 2: not allowed by its rules)",
	"SOCKS5 proxy refused UDP ASSOCIATE (reply 3: network unreachable)",
	"SOCKS5 proxy refused UDP ASSOCIATE (reply 4: host unreachable)",
	"SOCKS5 proxy refused UDP ASSOCIATE (reply 5: connection refused)",
	"SOCKS5 proxy refused UDP ASSOCIATE (reply 6: TTL expired)",
	"SOCKS5 proxy refused UDP ASSOCIATE (reply 7: command not supported)",
	"SOCKS5 proxy refused UDP ASSOCIATE (reply 8: address type not supported)",
};

static int s5_method(struct proxy_neg *n, const uint8_t *in, size_t len, size_t *used,
                     uint8_t *out, size_t *outlen)
{
	if (len < 2)
		return PROXY_NEED_MORE;
	if (in[0] != 5)
		return fail(n, "SOCKS5 proxy answered the greeting with a wrong version byte "
		            "(not a SOCKS5 proxy?)");
	switch (in[1]) {
	case 0x00:
		*outlen = s5_request(n, out);
		set_phase(n, PROXY_PHASE_S5_REPLY);
		break;
	case 0x02:
		if (!n->proxy.has_auth)
			return fail(n, "SOCKS5 proxy chose user/password authentication, which "
			            "we did not offer");
		*outlen = s5_auth(n, out);
		set_phase(n, PROXY_PHASE_S5_AUTH);
		break;
	case 0xff:
		return fail(n, n->proxy.has_auth ?
		            "SOCKS5 proxy accepts none of our authentication methods "
		            "(none, user/password)" :
		            "SOCKS5 proxy requires authentication (put USER:PASS@ in the proxy URL)");
	default:
		return fail(n, "SOCKS5 proxy chose an authentication method we did not offer");
	}
	*used = 2;
	return PROXY_NEED_MORE;
}

static int s5_auth_reply(struct proxy_neg *n, const uint8_t *in, size_t len, size_t *used,
                         uint8_t *out, size_t *outlen)
{
	if (len < 2)
		return PROXY_NEED_MORE;
	/* RFC 1929 says version 1; some servers echo 5.  Both are harmless. */
	if (in[0] != 1 && in[0] != 5)
		return fail(n, "SOCKS5 proxy sent a malformed authentication answer");
	if (in[1] != 0)
		return fail(n, "SOCKS5 proxy rejected the user name or password");
	*outlen = s5_request(n, out);
	*used = 2;
	set_phase(n, PROXY_PHASE_S5_REPLY);
	return PROXY_NEED_MORE;
}

static int s5_reply(struct proxy_neg *n, const uint8_t *in, size_t len, size_t *used)
{
	int udp = n->cmd == PROXY_CMD_UDP_ASSOCIATE;
	size_t need;
	uint16_t port;

	if (len < 2)
		return PROXY_NEED_MORE;
	if (in[0] != 5)
		return fail(n, "SOCKS5 proxy sent a malformed reply (wrong version byte)");
	if (in[1] != 0) {
		if (in[1] < 9)
			return fail(n, udp ? s5_udp_err[in[1]] : s5_connect_err[in[1]]);
		return fail(n, udp ? "SOCKS5 proxy refused UDP ASSOCIATE (unknown reply code)" :
		            "SOCKS5 proxy refused the connection (unknown reply code)");
	}
	if (len < 4)
		return PROXY_NEED_MORE;
	switch (in[3]) {
	case 1: need = 4 + 4 + 2; break;
	case 4: need = 4 + 16 + 2; break;
	case 3:
		if (len < 5)
			return PROXY_NEED_MORE;
		if (in[4] == 0)
			return fail(n, "SOCKS5 proxy sent a malformed reply (empty host name)");
		need = 4 + 1 + in[4] + 2;
		break;
	default:
		return fail(n, "SOCKS5 proxy sent a malformed reply (unknown address type)");
	}
	if (len < need)
		return PROXY_NEED_MORE;
	port = get_u16be(in + need - 2);
	memset(&n->bound, 0, sizeof(n->bound));
	n->bound_len = 0;
	if (in[3] == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&n->bound;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, in + 4, 4);
		sin->sin_port = htons(port);
		n->bound_len = sizeof(*sin);
	} else if (in[3] == 4) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&n->bound;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, in + 4, 16);
		sin6->sin6_port = htons(port);
		n->bound_len = sizeof(*sin6);
	} else {
		char host[256];

		/* Some proxies write their address as text: take it if numeric. */
		memcpy(host, in + 5, in[4]);
		host[in[4]] = '\0';
		if (memchr(host, '\0', in[4]) != NULL ||
		    netaddr_from_numeric(host, port, &n->bound, &n->bound_len) < 0)
			n->bound_len = 0;
	}
	if (udp) {
		if (n->bound_len == 0)
			return fail(n, "SOCKS5 proxy named its UDP relay by a host name, which we "
			            "cannot use");
		if (port == 0)
			return fail(n, "SOCKS5 proxy gave no UDP relay port (0)");
		if (n->bound.ss_family == AF_INET ?
		    ((struct sockaddr_in *)&n->bound)->sin_addr.s_addr == htonl(INADDR_ANY) :
		    memcmp(&((struct sockaddr_in6 *)&n->bound)->sin6_addr, &in6addr_any, 16) == 0) {
			/* "Same host as the control connection", as clients read it. */
			memcpy(&n->bound, &n->proxy.addr, n->proxy.len);
			n->bound_len = n->proxy.len;
			if (n->bound.ss_family == AF_INET)
				((struct sockaddr_in *)&n->bound)->sin_port = htons(port);
			else
				((struct sockaddr_in6 *)&n->bound)->sin6_port = htons(port);
		}
	}
	*used = need;
	set_phase(n, PROXY_PHASE_DONE);
	return PROXY_DONE;
}

static int s4_reply(struct proxy_neg *n, const uint8_t *in, size_t len, size_t *used)
{
	if (len < 8)
		return PROXY_NEED_MORE;
	if (in[0] != 0)
		return fail(n, "SOCKS4 proxy sent a malformed reply (wrong version byte)");
	switch (in[1]) {
	case 90:
		break;
	case 91:
		return fail(n, "SOCKS4 proxy refused the connection (reply 91: rejected or failed)");
	case 92:
		return fail(n, "SOCKS4 proxy refused the connection (reply 92: it cannot reach "
		            "our identd)");
	case 93:
		return fail(n, "SOCKS4 proxy refused the connection (reply 93: user id not "
		            "confirmed)");
	default:
		return fail(n, "SOCKS4 proxy sent a malformed reply (unknown reply code)");
	}
	*used = 8;
	set_phase(n, PROXY_PHASE_DONE);
	return PROXY_DONE;
}

static const struct {
	int code;
	const char *msg;
} http_errs[] = {
	{ 400, "HTTP proxy answered 400 Bad Request" },
	{ 401, "HTTP proxy answered 401 Unauthorized" },
	{ 403, "HTTP proxy answered 403 Forbidden (CONNECT to this address or port is "
	       "not allowed)" },
	{ 404, "HTTP proxy answered 404 Not Found" },
	{ 405, "HTTP proxy answered 405 Method Not Allowed (no CONNECT support)" },
	{ 407, "HTTP proxy answered 407 Proxy Authentication Required" },
	{ 408, "HTTP proxy answered 408 Request Timeout" },
	{ 429, "HTTP proxy answered 429 Too Many Requests" },
	{ 500, "HTTP proxy answered 500 Internal Server Error" },
	{ 501, "HTTP proxy answered 501 Not Implemented (no CONNECT support)" },
	{ 502, "HTTP proxy answered 502 Bad Gateway (it could not connect onwards)" },
	{ 503, "HTTP proxy answered 503 Service Unavailable" },
	{ 504, "HTTP proxy answered 504 Gateway Timeout" },
};

static const char *http_error(int code)
{
	for (size_t i = 0; i < sizeof(http_errs) / sizeof(http_errs[0]); i++)
		if (http_errs[i].code == code)
			return http_errs[i].msg;
	switch (code / 100) {
	case 1: return "HTTP proxy answered an informational 1xx status instead of 2xx";
	case 3: return "HTTP proxy answered a redirect (3xx) instead of 2xx";
	case 4: return "HTTP proxy refused the CONNECT (a 4xx status)";
	case 5: return "HTTP proxy failed the CONNECT (a 5xx status)";
	}
	return "HTTP proxy sent a malformed status line (status code out of range)";
}

/* Index of the first '\n' in p[from, n), or n. */
static size_t find_lf(const uint8_t *p, size_t from, size_t n)
{
	const uint8_t *q = from < n ? memchr(p + from, '\n', n - from) : NULL;

	return q != NULL ? (size_t)(q - p) : n;
}

static int http_reply(struct proxy_neg *n, const uint8_t *in, size_t len, size_t *used)
{
	size_t lim = len < PROXY_HTTP_HEAD_MAX ? len : PROXY_HTTP_HEAD_MAX;
	size_t lf = find_lf(in, 0, lim), pos, end;
	int code;

	if (lf == lim) {
		if (len >= PROXY_HTTP_HEAD_MAX)
			return fail(n, "HTTP proxy's status line is longer than 8 KB");
		/* Reject what cannot become a status line before it is whole. */
		if (memcmp(in, "HTTP/1.", len < 7 ? len : 7) != 0)
			return fail(n, "HTTP proxy sent a malformed status line (not an HTTP "
			            "proxy?)");
		return PROXY_NEED_MORE;
	}
	/* "HTTP/1.x SSS" then a space (and a reason) or the line end. */
	end = lf > 0 && in[lf - 1] == '\r' ? lf - 1 : lf;
	if (end < 12 || memcmp(in, "HTTP/1.", 7) != 0 || in[7] < '0' || in[7] > '9' ||
	    in[8] != ' ' || in[9] < '0' || in[9] > '9' || in[10] < '0' || in[10] > '9' ||
	    in[11] < '0' || in[11] > '9' || (end > 12 && in[12] != ' '))
		return fail(n, "HTTP proxy sent a malformed status line (not an HTTP proxy?)");
	code = (in[9] - '0') * 100 + (in[10] - '0') * 10 + (in[11] - '0');
	n->http_status = code;
	if (code < 200 || code > 299)
		return fail(n, http_error(code));
	/* Headers, up to an empty line; nothing after it is ours. */
	for (pos = lf + 1;; pos = lf + 1) {
		lf = find_lf(in, pos, lim);
		if (lf == lim) {
			if (len >= PROXY_HTTP_HEAD_MAX)
				return fail(n, "HTTP proxy's answer headers are longer than 8 KB");
			return PROXY_NEED_MORE;
		}
		if (lf == pos || (lf == pos + 1 && in[pos] == '\r'))
			break;
	}
	*used = lf + 1;
	set_phase(n, PROXY_PHASE_DONE);
	return PROXY_DONE;
}

static size_t base64(const uint8_t *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

static int http_request(struct proxy_neg *n, uint8_t *out, size_t *outlen)
{
	char addr[128], cred[2 * CARRIER_PROXY_CRED_MAX], b64[4 * CARRIER_PROXY_CRED_MAX];
	int k;

	netaddr_format((const struct sockaddr *)&n->dest, addr, sizeof(addr));
	if (n->proxy.has_auth) {
		int cl = snprintf(cred, sizeof(cred), "%s:%s", n->proxy.user, n->proxy.pass);

		base64((const uint8_t *)cred, (size_t)cl, b64);
		explicit_bzero(cred, sizeof(cred));
		k = snprintf((char *)out, PROXY_OUT_MAX,
		             "CONNECT %s HTTP/1.1\r\nHost: %s\r\n"
		             "Proxy-Authorization: Basic %s\r\n\r\n", addr, addr, b64);
		explicit_bzero(b64, sizeof(b64));
	} else {
		k = snprintf((char *)out, PROXY_OUT_MAX, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n",
		             addr, addr);
	}
	if (k < 0 || k >= PROXY_OUT_MAX)
		return fail(n, "HTTP CONNECT request too long");
	*outlen = (size_t)k;
	return PROXY_NEED_MORE;
}

int proxy_neg_init(struct proxy_neg *n, const struct carrier_proxy *p, enum proxy_cmd cmd,
                   const struct sockaddr *dest, socklen_t destlen,
                   uint8_t *out, size_t *outlen)
{
	memset(n, 0, sizeof(*n));
	*outlen = 0;
	n->type = p->type;
	n->cmd = cmd;
	n->proxy = *p;
	if (cmd == PROXY_CMD_CONNECT) {
		if (dest == NULL || (dest->sa_family != AF_INET && dest->sa_family != AF_INET6) ||
		    destlen > sizeof(n->dest))
			return fail(n, "proxy destination is not an IP address");
		unmap(dest, &n->dest);
		n->destlen = n->dest.ss_family == AF_INET ? sizeof(struct sockaddr_in) :
		             sizeof(struct sockaddr_in6);
	}
	switch (p->type) {
	case CARRIER_PROXY_SOCKS5:
		if (cmd != PROXY_CMD_CONNECT && cmd != PROXY_CMD_UDP_ASSOCIATE)
			return fail(n, "unknown SOCKS5 command");
		if (p->has_auth && (strlen(p->user) > 255 || strlen(p->pass) > 255))
			return fail(n, "SOCKS5 user name and password are limited to 255 bytes");
		out[0] = 5;
		if (p->has_auth) {
			out[1] = 2;
			out[2] = 0x00;
			out[3] = 0x02;
			*outlen = 4;
		} else {
			out[1] = 1;
			out[2] = 0x00;
			*outlen = 3;
		}
		set_phase(n, PROXY_PHASE_S5_METHOD);
		return PROXY_NEED_MORE;
	case CARRIER_PROXY_SOCKS4A: {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&n->dest;
		size_t ul = p->has_auth ? strlen(p->user) : 0;

		if (cmd != PROXY_CMD_CONNECT)
			return fail(n, "UDP paths need a socks5 proxy, not socks4a");
		if (n->dest.ss_family != AF_INET)
			return fail(n, "SOCKS4 proxies cannot reach IPv6 addresses (use a socks5 or "
			            "http proxy)");
		if (ul > 255)
			return fail(n, "SOCKS4 user id is limited to 255 bytes");
		out[0] = 4;
		out[1] = 1;
		memcpy(out + 2, &in->sin_port, 2);
		memcpy(out + 4, &in->sin_addr, 4);
		memcpy(out + 8, p->user, ul);
		out[8 + ul] = 0;
		*outlen = 9 + ul;
		set_phase(n, PROXY_PHASE_S4_REPLY);
		return PROXY_NEED_MORE;
	}
	case CARRIER_PROXY_HTTP:
		if (cmd != PROXY_CMD_CONNECT)
			return fail(n, "UDP paths need a socks5 proxy, not http");
		if (http_request(n, out, outlen) < 0)
			return PROXY_ERROR;
		set_phase(n, PROXY_PHASE_HTTP_REPLY);
		return PROXY_NEED_MORE;
	default:
		return fail(n, "no proxy type");
	}
}

int proxy_neg_step(struct proxy_neg *n, const uint8_t *in, size_t len, size_t *used,
                   uint8_t *out, size_t *outlen)
{
	*used = 0;
	*outlen = 0;
	switch (n->phase) {
	case PROXY_PHASE_S5_METHOD: return s5_method(n, in, len, used, out, outlen);
	case PROXY_PHASE_S5_AUTH: return s5_auth_reply(n, in, len, used, out, outlen);
	case PROXY_PHASE_S5_REPLY: return s5_reply(n, in, len, used);
	case PROXY_PHASE_S4_REPLY: return s4_reply(n, in, len, used);
	case PROXY_PHASE_HTTP_REPLY: return http_reply(n, in, len, used);
	case PROXY_PHASE_DONE: return PROXY_DONE;
	case PROXY_PHASE_FAILED: return PROXY_ERROR;
	case PROXY_PHASE_START: break;
	}
	if (n->error == NULL)
		n->error = "proxy negotiation was not started";
	return PROXY_ERROR;
}

void proxy_neg_clear(struct proxy_neg *n)
{
	if (n == NULL)
		return;
	explicit_bzero(n->proxy.user, sizeof(n->proxy.user));
	explicit_bzero(n->proxy.pass, sizeof(n->proxy.pass));
}

/* ---------- SOCKS5 UDP datagrams ---------- */

size_t socks5_udp_header(const struct sockaddr *dst, uint8_t out[SOCKS5_UDP_HDR_MAX])
{
	struct sockaddr_storage d;
	size_t k;

	unmap(dst, &d);
	out[0] = 0;
	out[1] = 0;
	out[2] = 0;     /* FRAG: whole datagrams only */
	k = s5_addr((const struct sockaddr *)&d, out + 3);
	return k > 0 ? 3 + k : 0;
}

int socks5_udp_parse(const uint8_t *p, size_t n, struct sockaddr_storage *from,
                     socklen_t *fromlen, size_t *hdrlen)
{
	if (n < 4)
		return SOCKS5_UDP_SHORT;
	if (p[0] != 0 || p[1] != 0)
		return SOCKS5_UDP_BAD;
	if (p[2] != 0)
		return SOCKS5_UDP_FRAG;
	memset(from, 0, sizeof(*from));
	switch (p[3]) {
	case 1: {
		struct sockaddr_in *in = (struct sockaddr_in *)from;

		if (n < 10)
			return SOCKS5_UDP_SHORT;
		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, p + 4, 4);
		memcpy(&in->sin_port, p + 8, 2);
		*fromlen = sizeof(*in);
		*hdrlen = 10;
		return SOCKS5_UDP_OK;
	}
	case 4: {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)from;

		if (n < 22)
			return SOCKS5_UDP_SHORT;
		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, p + 4, 16);
		memcpy(&in6->sin6_port, p + 20, 2);
		*fromlen = sizeof(*in6);
		*hdrlen = 22;
		return SOCKS5_UDP_OK;
	}
	case 3:
		return SOCKS5_UDP_NAME;
	default:
		return SOCKS5_UDP_BAD;
	}
}
