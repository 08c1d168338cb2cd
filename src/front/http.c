/*
 * HTTP proxy request parser; see http.h.  Strict where leniency would let
 * the proxy and the server read one request differently (request
 * smuggling): bare CR, NUL and other control bytes, obs-fold, whitespace
 * before the colon, duplicate Host, conflicting Content-Length or
 * Content-Length with Transfer-Encoding are all 400.  A bare LF ends a
 * line as RFC 9112 section 2.2 allows; the rewritten request uses CRLF.
 */
#include "front/http.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define HTTP_CONN_TOKENS_MAX 32

struct span {
	const char *p;
	size_t n;
};

struct out {
	uint8_t *p;
	size_t len, cap;
	int overflow;
};

static int is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field values: VCHAR, obs-text, SP and HTAB; no other control bytes. */
static int is_field_byte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int span_ieq(struct span s, const char *lit)
{
	return strlen(lit) == s.n && strncasecmp(s.p, lit, s.n) == 0;
}

static void out_put(struct out *o, const void *p, size_t n)
{
	if (o->overflow || n > o->cap - o->len) {
		o->overflow = 1;
		return;
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

static void out_str(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

int http_may_start(uint8_t c)
{
	return is_tchar(c);
}

long http_head_end(const uint8_t *in, size_t n, size_t *scan)
{
	size_t i = *scan;

	/* *scan is the start of the line not yet ended. */
	while (i < n && i < HTTP_HEAD_MAX) {
		const uint8_t *lf = memchr(in + i, '\n', n - i);
		size_t linelen;

		if (lf == NULL)
			break;
		linelen = (size_t)(lf - (in + i));
		if (linelen == 0 || (linelen == 1 && in[i] == '\r')) {
			size_t end = i + linelen + 1;

			return end <= HTTP_HEAD_MAX ? (long)end : -1;
		}
		i += linelen + 1;
		*scan = i;
	}
	return n >= HTTP_HEAD_MAX ? -1 : 0;
}

static int fail(struct http_request *req, int status, const char *why)
{
	req->error = why;
	return status;
}

/* Port: 1 to 5 digits, 1..65535. */
static int parse_port(struct span s, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	if (s.n == 0 || s.n > 5)
		return -1;
	for (i = 0; i < s.n; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s.p[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

static int is_host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/*
 * host[:port] or [v6][:port]; no userinfo, no percent-encoding, no zone.
 * need_port: CONNECT's authority must name the port.
 */
static int parse_authority(struct span a, int need_port, uint16_t defport,
                           struct socks_dest *d)
{
	struct span host, port = { NULL, 0 };
	char buf[256];
	size_t i;
	int has_port = 0;

	memset(d, 0, sizeof(*d));
	if (a.n == 0)
		return -1;
	if (a.p[0] == '[') {
		const char *close = memchr(a.p, ']', a.n);

		if (close == NULL)
			return -1;
		host.p = a.p + 1;
		host.n = (size_t)(close - host.p);
		i = (size_t)(close - a.p) + 1;
		if (i < a.n) {
			if (a.p[i] != ':')
				return -1;
			port.p = a.p + i + 1;
			port.n = a.n - i - 1;
			has_port = 1;
		}
		if (host.n == 0 || host.n >= INET6_ADDRSTRLEN)
			return -1;
		memcpy(buf, host.p, host.n);
		buf[host.n] = '\0';
		if (inet_pton(AF_INET6, buf, d->ipv6) != 1)
			return -1;
		d->atyp = SOCKS_ATYP_IPV6;
	} else {
		const char *colon = memchr(a.p, ':', a.n);

		host.p = a.p;
		host.n = colon != NULL ? (size_t)(colon - a.p) : a.n;
		if (colon != NULL) {
			port.p = colon + 1;
			port.n = a.n - host.n - 1;
			has_port = 1;
		}
		if (host.n == 0 || host.n > 255)
			return -1;
		for (i = 0; i < host.n; i++)
			if (!is_host_char((unsigned char)host.p[i]))
				return -1;
		memcpy(buf, host.p, host.n);
		buf[host.n] = '\0';
		if (inet_pton(AF_INET, buf, d->ipv4) == 1) {
			d->atyp = SOCKS_ATYP_IPV4;
		} else {
			d->atyp = SOCKS_ATYP_DOMAIN;
			memcpy(d->domain, buf, host.n + 1);
		}
	}
	if (has_port)
		return parse_port(port, &d->port);
	if (need_port)
		return -1;
	d->port = defport;
	return 0;
}

/* Content-Length: digits only, below 2^63 (we relay the body, never hold it). */
static int parse_length(struct span v, unsigned long long *len)
{
	unsigned long long x = 0;
	size_t i;

	if (v.n == 0 || v.n > 18)
		return -1;
	for (i = 0; i < v.n; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return -1;
		x = x * 10 + (unsigned long long)(v.p[i] - '0');
	}
	*len = x;
	return 0;
}

static struct span trim(const char *p, size_t n)
{
	struct span s = { p, n };

	while (s.n > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
		s.p++;
		s.n--;
	}
	while (s.n > 0 && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
		s.n--;
	return s;
}

/* Collect the comma-separated tokens of a Connection header.  0 or -1. */
static int connection_tokens(struct span v, struct span *tok, size_t *ntok)
{
	size_t i = 0;

	while (i <= v.n) {
		size_t j = i;
		struct span t;

		while (j < v.n && v.p[j] != ',')
			j++;
		t = trim(v.p + i, j - i);
		if (t.n > 0) {
			size_t k;

			for (k = 0; k < t.n; k++)
				if (!is_tchar((unsigned char)t.p[k]))
					return -1;
			if (*ntok >= HTTP_CONN_TOKENS_MAX)
				return -1;
			tok[(*ntok)++] = t;
		}
		i = j + 1;
	}
	return 0;
}

/* Headers never forwarded: hop-by-hop (RFC 9110 section 7.6.1) and ours. */
static int is_hop_by_hop(struct span name)
{
	static const char *const hop[] = {
		"Connection", "Proxy-Connection", "Keep-Alive", "TE", "Trailer",
		"Upgrade", "Proxy-Authorization", "Proxy-Authenticate", "Host",
	};
	size_t i;

	for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (span_ieq(name, hop[i]))
			return 1;
	return 0;
}

/* Framing headers stay even when Connection names them. */
static int is_framing(struct span name)
{
	return span_ieq(name, "Content-Length") || span_ieq(name, "Transfer-Encoding") ||
	       span_ieq(name, "Host");
}

struct field {
	struct span name, value;
};

/* The request line: method SP target SP HTTP-version.  0 or a status. */
static int parse_request_line(struct span line, struct http_request *req,
                              struct span *target)
{
	const char *sp1, *sp2;
	struct span method, version;
	size_t i;

	sp1 = memchr(line.p, ' ', line.n);
	if (sp1 == NULL)
		return fail(req, 400, "malformed request line");
	method.p = line.p;
	method.n = (size_t)(sp1 - line.p);
	sp2 = memchr(sp1 + 1, ' ', line.n - method.n - 1);
	if (sp2 == NULL)
		return fail(req, 400, "malformed request line");
	target->p = sp1 + 1;
	target->n = (size_t)(sp2 - target->p);
	version.p = sp2 + 1;
	version.n = line.n - (size_t)(version.p - line.p);
	if (method.n == 0 || method.n > HTTP_METHOD_MAX || target->n == 0)
		return fail(req, 400, "malformed request line");
	for (i = 0; i < method.n; i++)
		if (!is_tchar((unsigned char)method.p[i]))
			return fail(req, 400, "bad method");
	for (i = 0; i < target->n; i++) {
		unsigned char c = (unsigned char)target->p[i];

		if (c <= 0x20 || c >= 0x7f)
			return fail(req, 400, "bad request target");
	}
	memcpy(req->method, method.p, method.n);
	req->method[method.n] = '\0';
	if (version.n == 8 && memcmp(version.p, "HTTP/1.", 7) == 0 &&
	    (version.p[7] == '0' || version.p[7] == '1')) {
		req->minor = version.p[7] - '0';
		return 0;
	}
	if (version.n == 8 && memcmp(version.p, "HTTP/", 5) == 0 &&
	    version.p[5] >= '0' && version.p[5] <= '9' && version.p[6] == '.' &&
	    version.p[7] >= '0' && version.p[7] <= '9')
		return fail(req, 505, "HTTP version not supported");
	return fail(req, 400, "malformed request line");
}

/*
 * The target: CONNECT's authority, or http://authority[/path][?query].
 * Sets *path to what follows the authority (may be empty).
 */
static int parse_target(struct span target, struct http_request *req,
                        struct span *authority, struct span *path)
{
	size_t i;

	if (strcmp(req->method, "CONNECT") == 0) {
		req->connect = 1;
		*authority = target;
		path->p = target.p + target.n;
		path->n = 0;
		if (memchr(target.p, '@', target.n) != NULL ||
		    parse_authority(target, 1, 0, &req->dest) < 0)
			return fail(req, 400, "bad CONNECT target (want host:port)");
		return 0;
	}
	if (target.p[0] == '/' || (target.n == 1 && target.p[0] == '*'))
		return fail(req, 501, "not a proxy request (origin-form target)");
	if (target.n < 7 || strncasecmp(target.p, "http://", 7) != 0) {
		for (i = 0; i < target.n && target.p[i] != ':'; i++)
			;
		if (i + 2 < target.n && target.p[i + 1] == '/' && target.p[i + 2] == '/')
			return fail(req, 501, "unsupported URI scheme (use CONNECT)");
		return fail(req, 400, "bad request target");
	}
	authority->p = target.p + 7;
	for (i = 7; i < target.n; i++)
		if (target.p[i] == '/' || target.p[i] == '?' || target.p[i] == '#')
			break;
	authority->n = i - 7;
	path->p = target.p + i;
	path->n = target.n - i;
	if (memchr(path->p, '#', path->n) != NULL)
		return fail(req, 400, "fragment in request target");
	if (memchr(authority->p, '@', authority->n) != NULL)
		return fail(req, 400, "user information in request target");
	if (parse_authority(*authority, 0, 80, &req->dest) < 0)
		return fail(req, 400, "bad host or port in request target");
	return 0;
}

/* Split the head into lines; check bytes.  Returns the line count or -1. */
static int split_lines(const uint8_t *head, size_t len, struct span *lines,
                       size_t maxlines, struct http_request *req)
{
	size_t i, start = 0, n = 0;

	for (i = 0; i < len; i++) {
		if (head[i] == '\0') {
			fail(req, 400, "NUL byte in request head");
			return -1;
		}
		if (head[i] == '\r' && (i + 1 >= len || head[i + 1] != '\n')) {
			fail(req, 400, "CR without LF in request head");
			return -1;
		}
		if (head[i] != '\n')
			continue;
		if (n >= maxlines) {
			fail(req, 400, "too many header fields");
			return -1;
		}
		lines[n].p = (const char *)head + start;
		lines[n].n = i - start;
		if (lines[n].n > 0 && lines[n].p[lines[n].n - 1] == '\r')
			lines[n].n--;
		n++;
		start = i + 1;
	}
	if (start != len || n < 2 || lines[n - 1].n != 0) {
		fail(req, 400, "incomplete request head");
		return -1;
	}
	return (int)n - 1;   /* without the blank line */
}

static int parse_field(struct span line, struct field *f, struct http_request *req)
{
	const char *colon;
	size_t i;

	if (line.p[0] == ' ' || line.p[0] == '\t')
		return fail(req, 400, "obsolete line folding");
	colon = memchr(line.p, ':', line.n);
	if (colon == NULL || colon == line.p)
		return fail(req, 400, "malformed header field");
	f->name.p = line.p;
	f->name.n = (size_t)(colon - line.p);
	for (i = 0; i < f->name.n; i++)
		if (!is_tchar((unsigned char)f->name.p[i]))
			return fail(req, 400, "bad header field name");
	f->value = trim(colon + 1, line.n - f->name.n - 1);
	for (i = 0; i < f->value.n; i++)
		if (!is_field_byte((unsigned char)f->value.p[i]))
			return fail(req, 400, "control byte in header field");
	return 0;
}

/* Host, Content-Length, Transfer-Encoding and Connection checks. */
static int check_fields(const struct field *f, size_t nf, struct span *tok,
                        size_t *ntok, struct http_request *req)
{
	unsigned long long cl = 0, v;
	int nhost = 0, has_cl = 0, has_te = 0;
	size_t i;

	for (i = 0; i < nf; i++) {
		if (span_ieq(f[i].name, "Host")) {
			nhost++;
		} else if (span_ieq(f[i].name, "Content-Length")) {
			if (parse_length(f[i].value, &v) < 0 || (has_cl && v != cl))
				return fail(req, 400, "bad Content-Length");
			cl = v;
			has_cl = 1;
		} else if (span_ieq(f[i].name, "Transfer-Encoding")) {
			has_te = 1;
		} else if (span_ieq(f[i].name, "Connection")) {
			if (connection_tokens(f[i].value, tok, ntok) < 0)
				return fail(req, 400, "bad Connection header");
		}
	}
	if (nhost > 1)
		return fail(req, 400, "more than one Host header");
	if (has_cl && has_te)
		return fail(req, 400, "both Content-Length and Transfer-Encoding");
	return 0;
}

static int dropped(struct span name, const struct span *tok, size_t ntok)
{
	size_t i;

	if (is_hop_by_hop(name))
		return 1;
	if (is_framing(name))
		return 0;
	for (i = 0; i < ntok; i++)
		if (tok[i].n == name.n && strncasecmp(tok[i].p, name.p, name.n) == 0)
			return 1;
	return 0;
}

static int rewrite(struct http_request *req, struct span authority, struct span path,
                   const struct field *f, size_t nf, const struct span *tok, size_t ntok)
{
	struct out o = { req->out, 0, sizeof(req->out), 0 };
	char ver[16];
	size_t i;

	out_str(&o, req->method);
	out_str(&o, " ");
	if (path.n == 0 || path.p[0] != '/')
		out_str(&o, "/");
	out_put(&o, path.p, path.n);
	snprintf(ver, sizeof(ver), " HTTP/1.%d\r\n", req->minor);
	out_str(&o, ver);
	out_str(&o, "Host: ");
	out_put(&o, authority.p, authority.n);
	out_str(&o, "\r\n");
	for (i = 0; i < nf; i++) {
		if (dropped(f[i].name, tok, ntok))
			continue;
		out_put(&o, f[i].name.p, f[i].name.n);
		out_str(&o, ": ");
		out_put(&o, f[i].value.p, f[i].value.n);
		out_str(&o, "\r\n");
	}
	out_str(&o, "Connection: close\r\n\r\n");
	if (o.overflow)
		return fail(req, 400, "request head too large");
	req->out_len = o.len;
	return 0;
}

int http_parse(const uint8_t *head, size_t len, struct http_request *req)
{
	struct span lines[HTTP_HEADERS_MAX + 2];
	struct field fields[HTTP_HEADERS_MAX];
	struct span tok[HTTP_CONN_TOKENS_MAX];
	struct span target, authority, path;
	size_t ntok = 0, nf, i;
	int nlines, st;

	memset(req, 0, offsetof(struct http_request, out));
	req->out_len = 0;
	req->error = NULL;
	if (len > HTTP_HEAD_MAX)
		return fail(req, 400, "request head too large");
	nlines = split_lines(head, len, lines, HTTP_HEADERS_MAX + 2, req);
	if (nlines < 0)
		return 400;
	if (lines[0].n == 0)
		return fail(req, 400, "empty request line");
	if ((st = parse_request_line(lines[0], req, &target)) != 0)
		return st;
	nf = (size_t)nlines - 1;
	for (i = 0; i < nf; i++)
		if ((st = parse_field(lines[i + 1], &fields[i], req)) != 0)
			return st;
	if ((st = check_fields(fields, nf, tok, &ntok, req)) != 0)
		return st;
	if ((st = parse_target(target, req, &authority, &path)) != 0)
		return st;
	req->head_len = len;
	if (req->connect)
		return 0;
	return rewrite(req, authority, path, fields, nf, tok, ntok);
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "Connection established";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 408: return "Request Timeout";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

size_t http_response(int status, char *out)
{
	char body[64];
	int bl, n;

	if (status == 200)
		n = snprintf(out, HTTP_RESPONSE_MAX, "HTTP/1.1 200 %s\r\n\r\n", reason(200));
	else {
		bl = snprintf(body, sizeof(body), "%d %s\n", status, reason(status));
		n = snprintf(out, HTTP_RESPONSE_MAX, "HTTP/1.1 %d %s\r\n"
		             "Content-Type: text/plain\r\nContent-Length: %d\r\n"
		             "Connection: close\r\n\r\n%s", status, reason(status), bl, body);
	}
	return n > 0 && n < HTTP_RESPONSE_MAX ? (size_t)n : 0;
}

int http_status_for_socks(uint8_t rep)
{
	switch (rep) {
	case SOCKS5_SUCCEEDED: return 200;
	case SOCKS5_NOT_ALLOWED: return 403;
	case SOCKS5_TTL_EXPIRED: return 504;
	default: return 502;
	}
}
