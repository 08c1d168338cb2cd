/*
 * Address helpers: the parsers here see strings from the command line and
 * from peers (CONNECT targets), so every one of them is strict, writes its
 * outputs only on success, and never resolves names.  netaddr_is_internal is
 * the SSRF guard of the egress side; when in doubt it says "internal".
 */
#include "util/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Scheme characters per RFC 3986, upper case accepted and folded. */
static int is_scheme_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '.' || c == '-';
}

/* Deliberately narrow: no '%', '@', '/', spaces or ':' can sneak through. */
static int is_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

/*
 * Parse a whole decimal string into 0..max.  Stops as soon as the value
 * passes max, so arbitrarily long digit strings cannot overflow.
 */
static int parse_decimal(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return -1;
	}
	*out = v;
	return 0;
}

static int parse_port(const char *s, int allow_zero, uint16_t *port)
{
	unsigned long v;

	if (parse_decimal(s, 65535, &v) < 0)
		return -1;
	if (v == 0 && !allow_zero)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* "[v6]:port": brackets only make sense around a real IPv6 literal. */
static int split_bracketed(const char *s, const char **host, size_t *hlen,
                           const char **portstr)
{
	char tmp[INET6_ADDRSTRLEN];
	struct in6_addr a6;
	const char *close = strchr(s + 1, ']');

	if (close == NULL || close[1] != ':')
		return -1;
	*host = s + 1;
	*hlen = (size_t)(close - *host);
	if (*hlen == 0 || *hlen >= sizeof(tmp))
		return -1;
	memcpy(tmp, *host, *hlen);
	tmp[*hlen] = '\0';
	if (inet_pton(AF_INET6, tmp, &a6) != 1)
		return -1;
	*portstr = close + 2;
	return 0;
}

/* "host:port": exactly one ':' so that a bare IPv6 literal is refused. */
static int split_plain(const char *s, const char **host, size_t *hlen,
                       const char **portstr)
{
	const char *colon = strchr(s, ':');
	size_t i;

	if (colon == NULL || strchr(colon + 1, ':') != NULL)
		return -1;
	*host = s;
	*hlen = (size_t)(colon - s);
	if (*hlen == 0)
		return -1;
	for (i = 0; i < *hlen; i++)
		if (!is_host_char(s[i]))
			return -1;
	*portstr = colon + 1;
	return 0;
}

int netaddr_parse_hostport(const char *s, char *host, size_t hostlen,
                           uint16_t *port, int allow_zero)
{
	const char *h, *portstr;
	size_t hlen;
	uint16_t p;
	int r;

	if (s == NULL || host == NULL || port == NULL || hostlen == 0)
		return -1;
	if (s[0] == '[')
		r = split_bracketed(s, &h, &hlen, &portstr);
	else
		r = split_plain(s, &h, &hlen, &portstr);
	if (r < 0 || hlen >= hostlen)
		return -1;
	/* The port runs to the end of s, so trailing garbage fails here. */
	if (parse_port(portstr, allow_zero, &p) < 0)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = p;
	return 0;
}

int netaddr_parse_url(const char *s, char *scheme, size_t schemelen,
                      char *host, size_t hostlen, uint16_t *port)
{
	size_t n = 0, i;

	if (s == NULL || scheme == NULL || schemelen == 0)
		return -1;
	while (is_scheme_char(s[n]))
		n++;
	if (n == 0 || n >= schemelen || strncmp(s + n, "://", 3) != 0)
		return -1;
	/* Parse the authority before touching scheme: outputs only on success. */
	if (netaddr_parse_hostport(s + n + 3, host, hostlen, port, 0) < 0)
		return -1;
	for (i = 0; i < n; i++)
		scheme[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a')
		                                          : s[i];
	scheme[n] = '\0';
	return 0;
}

int netaddr_from_numeric(const char *host, uint16_t port,
                         struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (host == NULL || ss == NULL || len == NULL)
		return -1;
	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		sin.sin_port = htons(port);
		memset(ss, 0, sizeof(*ss));
		memcpy(ss, &sin, sizeof(sin));
		*len = (socklen_t)sizeof(sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons(port);
		memset(ss, 0, sizeof(*ss));
		memcpy(ss, &sin6, sizeof(sin6));
		*len = (socklen_t)sizeof(sin6);
		return 0;
	}
	return -1;
}

int netaddr_from_raw(const uint8_t *addr, size_t alen, uint16_t port,
                     struct sockaddr_storage *ss, socklen_t *len)
{
	if (addr == NULL || ss == NULL || len == NULL)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (alen == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, addr, 4);
		*len = (socklen_t)sizeof(*sin);
		return 0;
	}
	if (alen == 16) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, addr, 16);
		*len = (socklen_t)sizeof(*sin6);
		return 0;
	}
	return -1;
}

uint16_t netaddr_port(const struct sockaddr *sa)
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

/* Zero every bit past prefix so that matching can compare whole bytes. */
static void clear_host_bits(uint8_t *addr, size_t alen, int prefix)
{
	size_t i;

	for (i = 0; i < alen; i++) {
		int keep = prefix - (int)i * 8;

		if (keep >= 8)
			continue;
		addr[i] = keep <= 0 ? 0 : (uint8_t)(addr[i] & (0xff << (8 - keep)));
	}
}

int netaddr_parse_cidr(const char *s, struct netaddr_cidr *out)
{
	char tmp[INET6_ADDRSTRLEN];
	struct netaddr_cidr c;
	const char *slash;
	size_t alen;
	unsigned long prefix;
	int maxprefix;

	if (s == NULL || out == NULL)
		return -1;
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, alen);
	tmp[alen] = '\0';

	memset(&c, 0, sizeof(c));
	if (inet_pton(AF_INET, tmp, c.addr) == 1) {
		c.family = AF_INET;
		maxprefix = 32;
	} else if (inet_pton(AF_INET6, tmp, c.addr) == 1) {
		c.family = AF_INET6;
		maxprefix = 128;
	} else {
		return -1;
	}
	if (slash == NULL)
		prefix = (unsigned long)maxprefix;
	else if (parse_decimal(slash + 1, (unsigned long)maxprefix, &prefix) < 0)
		return -1;
	c.prefix = (int)prefix;
	clear_host_bits(c.addr, maxprefix / 8, c.prefix);
	*out = c;
	return 0;
}

static const uint8_t v4mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/*
 * Pull the address bytes out of sa without casting: callers may hand us a
 * struct sockaddr that is only as large as its own family needs.
 * Returns the address length (4 or 16), or 0 for any other family.
 */
static size_t sa_addr(const struct sockaddr *sa, uint8_t out[16])
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		memcpy(&sin, sa, sizeof(sin));
		memcpy(out, &sin.sin_addr, 4);
		return 4;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(&sin6, sa, sizeof(sin6));
		memcpy(out, &sin6.sin6_addr, 16);
		return 16;
	}
	return 0;
}

static int prefix_equal(const uint8_t *a, const uint8_t *b, int prefix)
{
	int full = prefix / 8, rest = prefix % 8;
	uint8_t mask;

	if (memcmp(a, b, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

int netaddr_cidr_match(const struct netaddr_cidr *c, const struct sockaddr *sa)
{
	uint8_t a[16];
	size_t alen;

	if (c == NULL || c->prefix < 0)
		return 0;
	alen = sa_addr(sa, a);
	/*
	 * A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; IPv4 rules
	 * must still apply to them or "deny 10/8" is trivially bypassed.
	 */
	if (c->family == AF_INET && alen == 16 &&
	    memcmp(a, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
		memmove(a, a + 12, 4);
		alen = 4;
	}
	if (c->family == AF_INET && alen == 4 && c->prefix <= 32)
		return prefix_equal(a, c->addr, c->prefix);
	if (c->family == AF_INET6 && alen == 16 && c->prefix <= 128)
		return prefix_equal(a, c->addr, c->prefix);
	return 0;
}

struct range {
	uint8_t addr[16];
	int prefix;
};

/* Ranges from the contract in netaddr.h; 240/4 also covers broadcast. */
static const struct range internal_v4[] = {
	{ { 0 }, 8 },                 /* "this network" */
	{ { 10 }, 8 },                /* RFC 1918 */
	{ { 100, 64 }, 10 },          /* CGNAT */
	{ { 127 }, 8 },               /* loopback */
	{ { 169, 254 }, 16 },         /* link-local */
	{ { 172, 16 }, 12 },          /* RFC 1918 */
	{ { 192, 0, 0 }, 24 },        /* IETF protocol assignments */
	{ { 192, 168 }, 16 },         /* RFC 1918 */
	{ { 198, 18 }, 15 },          /* benchmarking */
	{ { 224 }, 4 },               /* multicast */
	{ { 240 }, 4 },               /* reserved + limited broadcast */
};

static const struct range internal_v6[] = {
	{ { 0 }, 128 },                               /* unspecified */
	{ { [15] = 1 }, 128 },                        /* loopback */
	{ { 0xfc }, 7 },                              /* ULA */
	{ { 0xfe, 0x80 }, 10 },                       /* link-local */
	{ { 0xfe, 0xc0 }, 10 },                       /* site-local (deprecated) */
	{ { 0xff }, 8 },                              /* multicast */
	{ { 0x01, 0x00 }, 64 },                       /* discard-only */
	{ { 0x20, 0x01, 0x0d, 0xb8 }, 32 },           /* documentation */
	{ { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 }, 48 }, /* local-use NAT64 */
};

/*
 * IPv6 forms that carry an IPv4 address a host or gateway may reach
 * natively; the embedded address decides.  Offset is where it sits.
 */
static const struct {
	struct range r;
	int v4_offset;
} embeds_v4[] = {
	{ { { [10] = 0xff, [11] = 0xff }, 96 }, 12 },          /* v4-mapped */
	{ { { 0 }, 96 }, 12 },                                 /* v4-compatible */
	{ { { [8] = 0xff, [9] = 0xff }, 96 }, 12 },            /* v4-translated */
	{ { { 0x00, 0x64, 0xff, 0x9b }, 96 }, 12 },            /* NAT64 WKP */
	{ { { 0x20, 0x02 }, 16 }, 2 },                         /* 6to4 */
};

static int in_ranges(const uint8_t *a, const struct range *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (prefix_equal(a, r[i].addr, r[i].prefix))
			return 1;
	return 0;
}

static int v4_is_internal(const uint8_t *a)
{
	return in_ranges(a, internal_v4,
	                 sizeof(internal_v4) / sizeof(internal_v4[0]));
}

static int v6_is_internal(const uint8_t *a)
{
	size_t i;

	if (in_ranges(a, internal_v6,
	              sizeof(internal_v6) / sizeof(internal_v6[0])))
		return 1;
	for (i = 0; i < sizeof(embeds_v4) / sizeof(embeds_v4[0]); i++)
		if (prefix_equal(a, embeds_v4[i].r.addr, embeds_v4[i].r.prefix))
			return v4_is_internal(a + embeds_v4[i].v4_offset);
	return 0;
}

int netaddr_is_internal(const struct sockaddr *sa)
{
	uint8_t a[16];

	switch (sa_addr(sa, a)) {
	case 4:
		return v4_is_internal(a);
	case 16:
		return v6_is_internal(a);
	default:
		return 1;   /* unknown family: refuse rather than guess */
	}
}

const char *netaddr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	int n = -1;

	if (buf == NULL || len == 0)
		return buf;
	if (sa != NULL && sa->sa_family == AF_INET) {
		memcpy(&sin, sa, sizeof(sin));
		if (inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof(ip)) != NULL)
			n = snprintf(buf, len, "%s:%u", ip, ntohs(sin.sin_port));
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		memcpy(&sin6, sa, sizeof(sin6));
		if (inet_ntop(AF_INET6, &sin6.sin6_addr, ip, sizeof(ip)) != NULL)
			n = snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6.sin6_port));
	}
	/* A cut-off address reads like a different address: show "?" instead. */
	if (n < 0 || (size_t)n >= len)
		snprintf(buf, len, "?");
	return buf;
}

size_t netaddr_key(const struct sockaddr *sa, uint8_t key[NETADDR_KEY_MAX])
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		key[0] = 4;
		memcpy(key + 1, &in->sin_port, 2);
		memcpy(key + 3, &in->sin_addr, 4);
		return 7;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		key[0] = 6;
		memcpy(key + 1, &in6->sin6_port, 2);
		memcpy(key + 3, &in6->sin6_addr, 16);
		memcpy(key + 19, &in6->sin6_scope_id, 4);
		return 23;
	}
	return 0;
}
