/*
 * Forward specification parser; see fwdspec.h.  The string is split on the
 * colons outside brackets, then each part is checked on its own, so that a
 * message can say which part is wrong.
 */
#include "util/fwdspec.h"

#include <arpa/inet.h>
#include <string.h>

#define FWD_MAX_PARTS 4

struct part {
	const char *p;
	size_t n;
	int bracketed;
};

/* Split at ':' outside "[...]".  Number of parts, or -1. */
static int split(const char *s, struct part *parts, const char **err)
{
	int np = 0;

	for (;;) {
		struct part *pt;

		if (np == FWD_MAX_PARTS) {
			*err = "too many ':'-separated parts (IPv6 addresses go in brackets)";
			return -1;
		}
		pt = &parts[np++];
		pt->bracketed = 0;
		if (*s == '[') {
			const char *close = strchr(s, ']');

			if (close == NULL) {
				*err = "'[' without ']'";
				return -1;
			}
			pt->p = s + 1;
			pt->n = (size_t)(close - s - 1);
			pt->bracketed = 1;
			s = close + 1;
			if (*s != '\0' && *s != ':') {
				*err = "']' must be followed by ':'";
				return -1;
			}
		} else {
			pt->p = s;
			pt->n = strcspn(s, ":[]");
			s += pt->n;
			if (*s == '[' || *s == ']') {
				*err = "brackets are only allowed around a whole IPv6 address";
				return -1;
			}
		}
		if (*s == '\0')
			return np;
		s++;   /* the ':' */
	}
}

static int parse_port(const struct part *pt, int allow_zero, uint16_t *port)
{
	unsigned long v = 0;

	if (pt->bracketed || pt->n == 0 || pt->n > 5)
		return -1;
	for (size_t i = 0; i < pt->n; i++) {
		if (pt->p[i] < '0' || pt->p[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(pt->p[i] - '0');
	}
	if (v > 65535 || (v == 0 && !allow_zero))
		return -1;
	*port = (uint16_t)v;
	return 0;
}

static int copy_part(const struct part *pt, char *out, size_t outlen)
{
	if (pt->n == 0 || pt->n >= outlen)
		return -1;
	memcpy(out, pt->p, pt->n);
	out[pt->n] = '\0';
	return 0;
}

static int is_v6(const char *s)
{
	struct in6_addr a;

	return inet_pton(AF_INET6, s, &a) == 1;
}

static int is_v4(const char *s)
{
	struct in_addr a;

	return inet_pton(AF_INET, s, &a) == 1;
}

int fwd_host_valid(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > 253)
		return 0;
	if (is_v6(h))
		return 1;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
			return 0;
	}
	return h[0] != '-' && h[0] != '.';
}

/* A listening address: numeric, "localhost" or "*"; v6 only in brackets. */
static int parse_bind(const struct part *pt, char *out, size_t outlen, const char **err)
{
	char tmp[NETADDR_HOST_MAX];

	if (copy_part(pt, tmp, sizeof(tmp)) < 0) {
		*err = "empty or too long listening address";
		return -1;
	}
	if (pt->bracketed ? !is_v6(tmp) :
	    !(is_v4(tmp) || strcmp(tmp, "localhost") == 0 || strcmp(tmp, "*") == 0)) {
		*err = pt->bracketed ? "bad IPv6 listening address" :
		       "bad listening address (want an IP address, [IPv6], localhost or *)";
		return -1;
	}
	strcpy(out, tmp);
	(void)outlen;
	return 0;
}

static int parse_host(const struct part *pt, char *out, size_t outlen, const char **err)
{
	char tmp[NETADDR_HOST_MAX];

	if (copy_part(pt, tmp, sizeof(tmp)) < 0) {
		*err = "empty or too long destination host";
		return -1;
	}
	if (pt->bracketed ? !is_v6(tmp) : (is_v6(tmp) || !fwd_host_valid(tmp))) {
		*err = pt->bracketed ? "bad IPv6 destination address" :
		       "bad destination host (a name, an IPv4 address or [IPv6])";
		return -1;
	}
	strcpy(out, tmp);
	(void)outlen;
	return 0;
}

int fwd_spec_parse(const char *s, enum fwd_spec_kind kind, struct fwd_spec *out,
                   const char **err)
{
	struct part parts[FWD_MAX_PARTS];
	struct fwd_spec f;
	int np, i = 0;

	memset(&f, 0, sizeof(f));
	if (s == NULL || *s == '\0') {
		*err = "empty specification";
		return -1;
	}
	if (strlen(s) > FWD_SPEC_MAX) {
		*err = "specification too long";
		return -1;
	}
	if ((np = split(s, parts, err)) < 0)
		return -1;
	switch (kind) {
	case FWD_SPEC_LOCAL:
		if (np != 3 && np != 4) {
			*err = "want [BIND:]PORT:HOST:HOSTPORT";
			return -1;
		}
		break;
	case FWD_SPEC_REMOTE:
		if (np < 1) {
			*err = "want [BIND:]PORT[:HOST:HOSTPORT]";
			return -1;
		}
		break;
	case FWD_SPEC_PERMIT:
		if (np != 1 && np != 2) {
			*err = "want [ADDR:]PORT";
			return -1;
		}
		break;
	}
	/* Which parts are there: BIND? PORT (HOST HOSTPORT)? */
	if (np == 4 || np == 2) {
		if (parse_bind(&parts[i++], f.bind, sizeof(f.bind), err) < 0)
			return -1;
	}
	if (kind == FWD_SPEC_PERMIT && parts[i].n == 1 && parts[i].p[0] == '*' &&
	    !parts[i].bracketed) {
		f.any_port = 1;
		i++;
	} else if (parse_port(&parts[i++], 1, &f.port) < 0) {
		*err = "bad listening port (want 0..65535)";
		return -1;
	}
	if (np >= 3) {
		if (parse_host(&parts[i++], f.host, sizeof(f.host), err) < 0)
			return -1;
		if (parse_port(&parts[i++], 0, &f.hostport) < 0) {
			*err = "bad destination port (want 1..65535)";
			return -1;
		}
	}
	*out = f;
	return 0;
}
