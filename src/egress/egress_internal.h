/*
 * Private to src/egress/: what the TCP egress (egress.c) and the UDP
 * relay (udp.c) share.
 */
#ifndef SCTPT_EGRESS_EGRESS_INTERNAL_H
#define SCTPT_EGRESS_EGRESS_INTERNAL_H

#include "egress/egress.h"

struct egress {
	struct event_base *base;
	struct evdns_base *dns;
	struct egress_config cfg;
};

/* Names under .invalid (RFC 6761): never sent to a resolver. */
int egress_name_is_invalid(const char *host);

#endif
