/*
 * Share links (docs/share-links.md).  The parser is strict on purpose: a
 * link arrives by chat, mail or a QR code from someone the user may not
 * fully trust, so anything not in the grammar is an error rather than a
 * guess, and nothing is left for a later layer to re-interpret.
 */
#include "util/sharelink.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "util/portrange.h"

#define SCHEME "sctpt://"

static int is_alpha(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int is_unreserved(int c)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int hexval(int c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decode s[0..len) into out (outlen bytes with the NUL).  Raw bytes
 * must satisfy raw_ok; a decoded byte may be anything but NUL (the caller
 * checks what it may be).  0 or -1.
 */
static int pct_decode(const char *s, size_t len, int (*raw_ok)(int), char *out,
                      size_t outlen, size_t *outn)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return -1;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi << 4 | lo;
			if (c == 0)
				return -1;
			i += 2;
		} else if (!raw_ok(c)) {
			return -1;
		}
		if (n + 1 >= outlen)
			return -1;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	*outn = n;
	return 0;
}

static int raw_ok_value(int c)
{
	return is_unreserved(c) || c == ':' || c == '[' || c == ']';
}

/* RFC 3986 fragment characters (pchar / "/" / "?"), '%' handled apart. */
static int raw_ok_fragment(int c)
{
	return is_unreserved(c) || strchr("!$&'()*+,;=:@/?", c) != NULL;
}

/* Well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF), no controls. */
static int name_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], cp, need, k;

		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return 0;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (i + need >= n)
			return 0;
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
			return 0;
		i += need + 1;
	}
	return 1;
}

static int dns_name_ok(const char *h)
{
	size_t len = strlen(h), label = 0, i;
	int last_numeric = 1;

	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i <= len; i++) {
		int c = (unsigned char)h[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || h[i - 1] == '-')
				return 0;
			if (c == '\0')
				break;
			label = 0;
			last_numeric = 1;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '-')
			return 0;
		if (label == 0 && c == '-')
			return 0;
		if (!is_digit(c))
			last_numeric = 0;
		label++;
	}
	/* "1.2.3.999" is a broken address, not a name. */
	return !last_numeric;
}

int sharelink_host_ok(const char *host)
{
	unsigned char buf[16];

	if (host == NULL || strlen(host) >= SHARELINK_HOST_MAX)
		return 0;
	if (strchr(host, ':') != NULL)
		return inet_pton(AF_INET6, host, buf) == 1;
	if (inet_pton(AF_INET, host, buf) == 1)
		return 1;
	return dns_name_ok(host);
}

static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t i, n = strlen(s);

	if (n == 0 || n > 5 || s[0] == '0')
		return -1;
	for (i = 0; i < n; i++) {
		if (!is_digit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* "host:port" or "[v6]:port", already percent-decoded. */
static int parse_hostport(char *v, struct sharelink_path *p)
{
	char *colon, *host;

	if (v[0] == '[') {
		char *close = strchr(v, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		*close = '\0';
		host = v + 1;
		colon = close + 1;
		if (strchr(host, ':') == NULL)
			return -1;
	} else {
		colon = strrchr(v, ':');
		if (colon == NULL || strchr(v, ':') != colon || strchr(v, '[') || strchr(v, ']'))
			return -1;
		*colon = '\0';
		host = v;
	}
	if (!sharelink_host_ok(host))
		return -1;
	if (strchr(colon + 1, '-') != NULL) {
		const char *err;

		/* A UDP port range: port hopping (issue 16). */
		if (p->tcp || portrange_parse(colon + 1, strlen(colon + 1), &p->port, &p->port_hi,
		                              &err) < 0)
			return -1;
	} else if (parse_port(colon + 1, &p->port) < 0) {
		return -1;
	}
	memcpy(p->host, host, strlen(host) + 1);
	return 0;
}

static int same_path(const struct sharelink_path *a, const struct sharelink_path *b)
{
	return a->tcp == b->tcp && a->port == b->port && a->port_hi == b->port_hi &&
	       strcmp(a->host, b->host) == 0;
}

static int parse_param(const char *s, size_t len, struct sharelink *out, const char **err)
{
	const char *eq = memchr(s, '=', len);
	char val[SHARELINK_HOST_MAX + 16];
	struct sharelink_path *p;
	size_t klen, vn;
	int tcp;

	if (len == 0) {
		*err = "empty parameter ('&&' or a trailing '&')";
		return -1;
	}
	if (eq == NULL) {
		*err = "parameter without '='";
		return -1;
	}
	klen = (size_t)(eq - s);
	if (klen == 3 && memcmp(s, "udp", 3) == 0) {
		tcp = 0;
	} else if (klen == 3 && memcmp(s, "tcp", 3) == 0) {
		tcp = 1;
	} else if (klen > 2 && memcmp(s, "x-", 2) == 0) {
		/* Extensions: ignored, but still well-formed. */
		for (size_t i = 0; i < len; i++)
			if (!raw_ok_value((unsigned char)s[i]) && s[i] != '=' && s[i] != '%')
				goto badchar;
		return 0;
	} else {
		*err = "unknown parameter (only udp, tcp and x-*)";
		return -1;
	}
	if (out->npaths >= SHARELINK_MAX_PATHS) {
		*err = "too many paths (at most 8)";
		return -1;
	}
	if (pct_decode(eq + 1, len - klen - 1, raw_ok_value, val, sizeof(val), &vn) < 0)
		goto badchar;
	p = &out->paths[out->npaths];
	p->tcp = tcp;
	if (vn == 0 || parse_hostport(val, p) < 0) {
		*err = "bad path (want HOST:PORT or [IPv6]:PORT, port 1..65535)";
		return -1;
	}
	for (unsigned i = 0; i < out->npaths; i++) {
		if (same_path(&out->paths[i], p)) {
			*err = "the same path twice";
			return -1;
		}
	}
	out->npaths++;
	return 0;
badchar:
	*err = "bad character or percent-encoding in a parameter";
	return -1;
}

int sharelink_parse(const char *s, size_t len, struct sharelink *out, const char **err)
{
	const char *p, *end = s + len, *q, *hash;
	size_t i, n;

	memset(out, 0, sizeof(*out));
	*err = "bad link";
	if (len > SHARELINK_MAX_LEN) {
		*err = "link too long";
		return -1;
	}
	if (memchr(s, '\0', len) != NULL) {
		*err = "NUL byte in link";
		return -1;
	}
	if (len < sizeof(SCHEME) - 1 || strncasecmp(s, SCHEME, sizeof(SCHEME) - 1) != 0) {
		*err = "not an sctpt:// link";
		return -1;
	}
	p = s + sizeof(SCHEME) - 1;
	/* The cert, in base64url. */
	for (i = 0; p + i < end && (is_alpha(p[i]) || is_digit(p[i]) || p[i] == '-' ||
	                            p[i] == '_'); i++)
		;
	if (i != SHARELINK_CERT_LEN) {
		*err = "bad cert (want 64 base64url characters after sctpt://)";
		return -1;
	}
	for (i = 0; i < SHARELINK_CERT_LEN; i++)
		out->cert[i] = p[i] == '-' ? '+' : p[i] == '_' ? '/' : p[i];
	p += SHARELINK_CERT_LEN;
	if (p < end && *p == '/')
		p++;
	hash = memchr(p, '#', (size_t)(end - p));
	if (hash == NULL)
		hash = end;
	if (p < hash) {
		if (*p != '?') {
			*err = "unexpected text after the cert (want '?' or '#')";
			return -1;
		}
		p++;
		for (;;) {
			q = memchr(p, '&', (size_t)(hash - p));
			if (q == NULL)
				q = hash;
			if (parse_param(p, (size_t)(q - p), out, err) < 0)
				return -1;
			if (q == hash)
				break;
			p = q + 1;
		}
	}
	if (out->npaths == 0) {
		*err = "no path (want ?udp=HOST:PORT or ?tcp=HOST:PORT)";
		return -1;
	}
	if (hash < end) {
		if (pct_decode(hash + 1, (size_t)(end - hash - 1), raw_ok_fragment, out->name,
		               sizeof(out->name), &n) < 0) {
			*err = "bad name (bad character or percent-encoding, or over 64 bytes)";
			return -1;
		}
		if (!name_ok((const unsigned char *)out->name, n)) {
			*err = "bad name (not UTF-8, or control characters)";
			return -1;
		}
	}
	*err = NULL;
	return 0;
}

static int cert_ok(const char *c)
{
	size_t i;

	if (strlen(c) != SHARELINK_CERT_LEN)
		return 0;
	for (i = 0; i < SHARELINK_CERT_LEN; i++)
		if (!is_alpha(c[i]) && !is_digit(c[i]) && c[i] != '+' && c[i] != '/')
			return 0;
	return 1;
}

int sharelink_format(const struct sharelink *l, char *buf, size_t buflen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0, i;
	unsigned k;
	int w;

#define PUT(c) do { if (n + 1 >= buflen) return -1; buf[n++] = (char)(c); } while (0)
	if (buflen == 0 || !cert_ok(l->cert) || l->npaths == 0 ||
	    l->npaths > SHARELINK_MAX_PATHS ||
	    !name_ok((const unsigned char *)l->name, strnlen(l->name, sizeof(l->name))) ||
	    strnlen(l->name, sizeof(l->name)) >= sizeof(l->name))
		return -1;
	for (i = 0; i < sizeof(SCHEME) - 1; i++)
		PUT(SCHEME[i]);
	for (i = 0; i < SHARELINK_CERT_LEN; i++)
		PUT(l->cert[i] == '+' ? '-' : l->cert[i] == '/' ? '_' : l->cert[i]);
	for (k = 0; k < l->npaths; k++) {
		const struct sharelink_path *p = &l->paths[k];
		int v6 = strchr(p->host, ':') != NULL;

		if (!sharelink_host_ok(p->host) || p->port == 0 ||
		    (p->port_hi != 0 && (p->tcp || p->port_hi <= p->port ||
		                         p->port_hi - p->port >= PORTRANGE_MAX)))
			return -1;
		for (unsigned j = 0; j < k; j++)
			if (same_path(&l->paths[j], p))
				return -1;
		w = snprintf(buf + n, buflen - n, "%c%s=%s%s%s:%u", k == 0 ? '?' : '&',
		             p->tcp ? "tcp" : "udp", v6 ? "[" : "", p->host, v6 ? "]" : "",
		             (unsigned)p->port);
		if (w < 0 || (size_t)w >= buflen - n)
			return -1;
		n += (size_t)w;
		if (p->port_hi != 0) {
			w = snprintf(buf + n, buflen - n, "-%u", (unsigned)p->port_hi);
			if (w < 0 || (size_t)w >= buflen - n)
				return -1;
			n += (size_t)w;
		}
	}
	if (l->name[0] != '\0') {
		PUT('#');
		for (i = 0; l->name[i] != '\0'; i++) {
			unsigned char c = (unsigned char)l->name[i];

			if (is_unreserved(c)) {
				PUT(c);
			} else {
				PUT('%');
				PUT(hex[c >> 4]);
				PUT(hex[c & 15]);
			}
		}
	}
#undef PUT
	buf[n] = '\0';
	return n > SHARELINK_MAX_LEN ? -1 : (int)n;
}
