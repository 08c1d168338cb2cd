/*
 * Who may call a lab tool's API (http.h has the why), and the parsing of
 * the addresses the tools listen on and poll.  Strings in, verdicts out;
 * unit-tested in tests/unit/test_lab_http.c.
 */
#include "lab/http/http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "util/netaddr.h"

int lab_access_json(const char *content_type)
{
	static const char want[] = "application/json";
	const char *p = content_type;
	size_t n = sizeof(want) - 1;

	if (p == NULL)
		return 0;
	p += strspn(p, " \t");
	if (strncasecmp(p, want, n) != 0)
		return 0;
	p += n;
	p += strspn(p, " \t");
	return *p == '\0' || *p == ';';
}

int lab_access_host(const char *host, const char *local, uint16_t port, int loopback)
{
	const char *colon = strrchr(local, ':');
	size_t n = colon ? (size_t)(colon - local) : strlen(local);
	char alt[32];

	if (host == NULL)
		return 0;
	if (strcasecmp(host, local) == 0)
		return 1;
	if (port == 80 && strlen(host) == n && strncasecmp(host, local, n) == 0)
		return 1;
	if (!loopback)
		return 0;
	/* No page can make "localhost" name another host; a rebound name is refused. */
	snprintf(alt, sizeof(alt), "localhost:%u", port);
	return strcasecmp(host, alt) == 0 || (port == 80 && strcasecmp(host, "localhost") == 0);
}

int lab_access_origin(const char *origin, const char *local, uint16_t port, int loopback)
{
	if (origin == NULL)
		return 1;   /* not a browser's cross-origin request */
	return strncasecmp(origin, "http://", 7) == 0 &&
	       lab_access_host(origin + 7, local, port, loopback);
}

int lab_access_loopback_hostport(const char *s, char *host, size_t hostlen, uint16_t *port,
                                 int allow_zero)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (s == NULL || netaddr_parse_hostport(s, host, hostlen, port, allow_zero) < 0 ||
	    netaddr_from_numeric(host, *port, &ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
}

int lab_http_parse_url(const char *url, char *host, size_t hostlen, uint16_t *port,
                       char *path, size_t pathlen)
{
	char hp[NETADDR_HOST_MAX + 8];
	struct sockaddr_storage ss;
	socklen_t len;
	const char *p, *slash;
	size_t n;

	if (url == NULL || strncasecmp(url, "http://", 7) != 0)
		return -1;
	p = url + 7;
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	if (n == 0 || n >= sizeof(hp))
		return -1;
	memcpy(hp, p, n);
	hp[n] = '\0';
	if (netaddr_parse_hostport(hp, host, hostlen, port, 0) < 0 ||
	    netaddr_from_numeric(host, *port, &ss, &len) < 0)
		return -1;
	if (path != NULL) {
		const char *rest = slash ? slash : "";

		if (strlen(rest) >= pathlen)
			return -1;
		for (const char *c = rest; *c; c++)
			if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f ||
			    *c == '?' || *c == '#')
				return -1;
		strcpy(path, rest);
		/* No trailing slash: the callers append "/stats". */
		n = strlen(path);
		while (n > 0 && path[n - 1] == '/')
			path[--n] = '\0';
	}
	return 0;
}
