/*
 * The metrics endpoint's request parser: pure, strict, small.
 *
 * Only what a scraper sends is accepted: "GET" or "HEAD", an origin-form
 * target, HTTP/1.0 or 1.1, at most METRICS_HEADERS_MAX header lines of
 * visible ASCII within METRICS_REQ_MAX bytes, and no body.  Lines end in
 * CRLF (a bare LF is accepted, as RFC 9112 §2.2 allows; a bare CR is not).
 * Everything else gets a 4xx and the connection is closed.
 */
#include "metrics/metrics.h"

#include <string.h>
#include <strings.h>

static int is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Visible ASCII only: no controls, no spaces, nothing above 0x7e. */
static int is_vchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/* The end of the line starting at p (the index of its LF), or -1. */
static long line_end(const char *buf, size_t len, size_t p)
{
	const char *lf = memchr(buf + p, '\n', len - p);

	return lf == NULL ? -1 : (long)(lf - buf);
}

/* Length of the line [p, lf) without a trailing CR; -1 if a CR is elsewhere. */
static long line_len(const char *buf, size_t p, size_t lf)
{
	size_t n = lf - p;

	if (n > 0 && buf[lf - 1] == '\r')
		n--;
	if (memchr(buf + p, '\r', n) != NULL)
		return -1;
	return (long)n;
}

/* "streams=1" (or true/yes) anywhere in the query turns the stream view on;
 * other parameters are ignored. */
static int parse_query(const char *q, size_t n, struct metrics_req *out)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i;

		while (j < n && q[j] != '&')
			j++;
		if (j - i == 9 && memcmp(q + i, "streams=1", 9) == 0)
			out->streams = 1;
		else if (j - i == 12 && memcmp(q + i, "streams=true", 12) == 0)
			out->streams = 1;
		else if (j - i == 9 && memcmp(q + i, "streams=0", 9) == 0)
			out->streams = 0;
		i = j + 1;
	}
	return 0;
}

static int parse_target(const char *t, size_t n, struct metrics_req *out)
{
	const char *q = memchr(t, '?', n);
	size_t plen = q != NULL ? (size_t)(q - t) : n;

	if (n == 0 || t[0] != '/')
		return -400;
	for (size_t i = 0; i < n; i++)
		if (!is_vchar((unsigned char)t[i]) || t[i] == '#')
			return -400;
	if (plen == 8 && memcmp(t, "/metrics", 8) == 0)
		out->route = ROUTE_METRICS;
	else if (plen == 6 && memcmp(t, "/stats", 6) == 0)
		out->route = ROUTE_STATS;
	else
		return -404;
	if (q != NULL)
		parse_query(q + 1, n - plen - 1, out);
	return 0;
}

static int parse_request_line(const char *l, size_t n, struct metrics_req *out)
{
	const char *sp1 = memchr(l, ' ', n), *sp2;
	size_t mlen, tlen, vlen;
	int r;

	if (sp1 == NULL || sp1 == l)
		return -400;
	mlen = (size_t)(sp1 - l);
	for (size_t i = 0; i < mlen; i++)
		if (!is_tchar((unsigned char)l[i]))
			return -400;
	sp2 = memchr(sp1 + 1, ' ', n - mlen - 1);
	if (sp2 == NULL)
		return -400;
	tlen = (size_t)(sp2 - sp1 - 1);
	vlen = n - mlen - tlen - 2;
	if (vlen != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return memcmp(sp2 + 1, "HTTP/", vlen < 5 ? vlen : 5) == 0 && vlen >= 5 ? -505 : -400;
	if (sp2[8] != '0' && sp2[8] != '1')
		return -505;
	if (tlen > METRICS_TARGET_MAX)
		return -414;
	/* The target is checked before the method, so that a bad target is a
	 * 400 whatever the method; an unknown method on a good one is a 405. */
	r = parse_target(sp1 + 1, tlen, out);
	if (r == -400)
		return r;
	if (mlen == 3 && memcmp(l, "GET", 3) == 0)
		out->head = 0;
	else if (mlen == 4 && memcmp(l, "HEAD", 4) == 0)
		out->head = 1;
	else
		return -405;
	return r;
}

/* One header line: name ":" OWS value OWS.  Bodies are refused. */
static int parse_header(const char *l, size_t n)
{
	const char *colon = memchr(l, ':', n);
	size_t nlen;

	if (colon == NULL || colon == l)
		return -400;
	nlen = (size_t)(colon - l);
	for (size_t i = 0; i < nlen; i++)
		if (!is_tchar((unsigned char)l[i]))
			return -400;   /* also: whitespace before the colon, obs-fold */
	for (size_t i = nlen + 1; i < n; i++) {
		unsigned char c = (unsigned char)l[i];

		if (c != ' ' && c != '\t' && !is_vchar(c) && c < 0x80)
			return -400;
		if (c == 0x7f)
			return -400;
	}
	if (nlen == 17 && strncasecmp(l, "transfer-encoding", 17) == 0)
		return -400;
	if (nlen == 14 && strncasecmp(l, "content-length", 14) == 0) {
		const char *v = colon + 1, *e = l + n;

		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e - v != 1 || *v != '0')
			return -400;
	}
	return 0;
}

int metrics_http_parse(const char *buf, size_t len, struct metrics_req *out)
{
	size_t p = 0;
	unsigned headers = 0;
	long lf, n;
	int r, status = 0;

	memset(out, 0, sizeof(*out));
	/* Leading empty lines are tolerated (RFC 9112 §2.2), a few of them. */
	while (p < len && p < 4 && (buf[p] == '\r' || buf[p] == '\n'))
		p++;
	lf = line_end(buf, len, p);
	if (lf < 0)
		return len >= METRICS_REQ_MAX ? -413 : 0;
	if (lf >= METRICS_REQ_MAX)
		return -413;
	n = line_len(buf, p, (size_t)lf);
	if (n < 0)
		return -400;
	r = parse_request_line(buf + p, (size_t)n, out);
	if (r == -400 || r == -505 || r == -414 || r == -405)
		return r;    /* a refused method needs no headers: answered at once */
	status = r;          /* 404: still read the headers first */
	p = (size_t)lf + 1;
	for (;;) {
		lf = line_end(buf, len, p);
		if (lf < 0)
			return len >= METRICS_REQ_MAX ? -413 : 0;
		if (lf >= METRICS_REQ_MAX)
			return -413;
		n = line_len(buf, p, (size_t)lf);
		if (n < 0)
			return -400;
		if (n == 0)
			break;
		if (++headers > METRICS_HEADERS_MAX)
			return -413;
		r = parse_header(buf + p, (size_t)n);
		if (r < 0)
			return r;
		p = (size_t)lf + 1;
	}
	if (status < 0)
		return status;
	return (int)lf + 1;
}

const char *metrics_refusal_name(enum metrics_refusal r)
{
	static const char *const names[MR_COUNT] = {
		[MR_CONN_LIMIT] = "conn_limit",
		[MR_FD_LIMIT] = "fd_limit",
		[MR_NO_ASSOCIATION] = "no_association",
		[MR_NO_STREAM] = "no_stream",
		[MR_BAD_REQUEST] = "bad_request",
		[MR_GENERAL] = "general_failure",
		[MR_NOT_ALLOWED] = "not_allowed",
		[MR_NET_UNREACHABLE] = "network_unreachable",
		[MR_HOST_UNREACHABLE] = "host_unreachable",
		[MR_CONN_REFUSED] = "connection_refused",
		[MR_TIMEOUT] = "timeout",
		[MR_ADDRESS_TYPE] = "address_type",
		[MR_RESET] = "reset",
		[MR_PROTOCOL] = "protocol",
		[MR_LIMIT] = "limit",
		[MR_SHUTDOWN] = "shutdown",
		[MR_OTHER] = "other",
	};

	return (unsigned)r < MR_COUNT ? names[r] : "other";
}

/* The codes of docs/streams.md (mux/proto.h enum mux_err); kept here by
 * number because this layer sits below mux. */
enum metrics_refusal metrics_refusal_from_code(unsigned code)
{
	switch (code) {
	case 0x01: return MR_GENERAL;
	case 0x02: return MR_NOT_ALLOWED;
	case 0x03: return MR_NET_UNREACHABLE;
	case 0x04: return MR_HOST_UNREACHABLE;
	case 0x05: return MR_CONN_REFUSED;
	case 0x06: return MR_TIMEOUT;
	case 0x08: return MR_ADDRESS_TYPE;
	case 0x10: return MR_RESET;
	case 0x11: return MR_PROTOCOL;
	case 0x12: return MR_LIMIT;
	case 0x13: return MR_SHUTDOWN;
	default: return MR_OTHER;
	}
}

const char *metrics_probe_name(enum metrics_probe p)
{
	static const char *const names[MP_COUNT] = {
		[MP_BAD_HELLO] = "bad_hello",
		[MP_NO_MAC] = "bad_mac",
		[MP_REPLAY] = "replay",
		[MP_STALE] = "stale",
		[MP_RATE_LIMITED] = "rate_limited",
		[MP_SOURCE_LIMITED] = "source_limited",
		[MP_PENDING_REFUSED] = "no_room",
		[MP_BAD_DATA] = "bad_data",
	};

	return (unsigned)p < MP_COUNT ? names[p] : "other";
}
