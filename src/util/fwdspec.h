/*
 * ssh-style forward specifications (docs/forwarding.md):
 *
 *   -L [BIND:]PORT:HOST:HOSTPORT          (destination required)
 *   -R [BIND:]PORT:HOST:HOSTPORT
 *   -R [BIND:]PORT                         (reverse SOCKS: no destination)
 *   --permit-listen [ADDR:]PORT            (server: what -R may ask for)
 *
 * IPv6 addresses are written in brackets ([::1]:8080:[2001:db8::1]:22).
 * BIND is a numeric address, "localhost" (loopback) or "*" (every
 * interface); --permit-listen also takes "*" as PORT (any).  Pure and strict: no DNS, outputs written only on success.
 */
#ifndef SCTPT_UTIL_FWDSPEC_H
#define SCTPT_UTIL_FWDSPEC_H

#include <stdint.h>

#include "util/netaddr.h"

struct fwd_spec {
	char bind[NETADDR_HOST_MAX];   /* "" = not given (loopback); "*" = any */
	uint16_t port;                 /* listening port; 0 = pick one */
	int any_port;                  /* --permit-listen: PORT was "*" */
	char host[NETADDR_HOST_MAX];   /* "" = none (reverse SOCKS) */
	uint16_t hostport;
};

#define FWD_SPEC_MAX 600   /* longest specification string accepted */

enum fwd_spec_kind {
	FWD_SPEC_LOCAL,    /* -L: destination required */
	FWD_SPEC_REMOTE,   /* -R: destination optional */
	FWD_SPEC_PERMIT,   /* --permit-listen [ADDR:]PORT, ADDR may be "*" */
};

/* 0, or -1 with *err set to a static message saying what is wrong. */
int fwd_spec_parse(const char *s, enum fwd_spec_kind kind, struct fwd_spec *out,
                   const char **err);

/*
 * A domain name or a numeric address (no brackets) a forward may name as
 * its destination: 1..253 characters of letters, digits, '.', '-', '_'.
 */
int fwd_host_valid(const char *h);

#endif
