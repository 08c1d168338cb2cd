/*
 * Command-line helpers; see opt.h.
 */
#include "util/opt.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/netaddr.h"

int opt_parse_uint(const char *s, unsigned long min, unsigned long max,
                   unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

void opt_set_verbosity(int verbose, int quiet)
{
	int level = LOG_LEVEL_NOTICE - verbose + quiet;

	if (level < LOG_LEVEL_DEBUG)
		level = LOG_LEVEL_DEBUG;
	if (level > LOG_LEVEL_NONE)
		level = LOG_LEVEL_NONE;
	log_set_level((enum log_level)level);
	log_set_unsafe(verbose >= 3);
}

int opt_resolve(const char *host, uint16_t port, struct sockaddr_storage *ss,
                socklen_t *len)
{
	struct addrinfo hints, *res = NULL;
	char portstr[8];
	int r;

	if (netaddr_from_numeric(host, port, ss, len) == 0)
		return 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	snprintf(portstr, sizeof(portstr), "%u", port);
	r = getaddrinfo(host, portstr, &hints, &res);
	if (r != 0 || res == NULL) {
		log_err("cannot resolve %s: %s", host, gai_strerror(r));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = (socklen_t)res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}
