/*
 * Upstream proxies for the carriers: URL parsing here; the negotiation
 * state machines follow.  Pure: no I/O.
 */
#include "carrier/carrier.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

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
