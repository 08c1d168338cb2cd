/*
 * Share links: sctpt://CERT?udp=HOST:PORT&tcp=HOST:PORT#NAME, everything a
 * client needs in one string (docs/share-links.md is the specification).
 * Pure: bytes in, struct out; no DNS, no I/O, no allocation.
 */
#ifndef SCTPT_UTIL_SHARELINK_H
#define SCTPT_UTIL_SHARELINK_H

#include <stddef.h>
#include <stdint.h>

#define SHARELINK_MAX_LEN   2048  /* bytes of a whole link */
#define SHARELINK_MAX_PATHS 8     /* = WIRE_MAX_PATHS */
#define SHARELINK_HOST_MAX  254   /* 253 characters and the NUL */
#define SHARELINK_NAME_MAX  65    /* 64 decoded bytes and the NUL */
#define SHARELINK_CERT_LEN  64    /* characters of cert= (standard base64) */

struct sharelink_path {
	int tcp;                           /* 0 udp, 1 tcp */
	char host[SHARELINK_HOST_MAX];     /* name, IPv4 or IPv6 (no brackets) */
	uint16_t port;                     /* 1..65535 */
	uint16_t port_hi;                  /* udp only: last port of a range
	                                    * port..port_hi (port hopping), or 0 */
};

struct sharelink {
	char cert[SHARELINK_CERT_LEN + 1]; /* standard base64, as --cert takes it */
	unsigned npaths;
	struct sharelink_path paths[SHARELINK_MAX_PATHS];
	char name[SHARELINK_NAME_MAX];     /* "" when absent; UTF-8, no controls */
};

/*
 * Parse len bytes (no NUL needed; a NUL inside is an error).  0, or -1 with
 * a static English reason in *err.  out is zeroed first.
 */
int sharelink_parse(const char *s, size_t len, struct sharelink *out, const char **err);

/*
 * Format l into buf (NUL-terminated).  Returns the length, or -1 if l is
 * not a valid link (the same rules the parser applies) or buf is too small.
 */
int sharelink_format(const struct sharelink *l, char *buf, size_t buflen);

/* Whether host is a name, an IPv4 or an IPv6 literal a link may carry. */
int sharelink_host_ok(const char *host);

#endif
