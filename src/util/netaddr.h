/*
 * Address helpers: parsing of HOST:PORT, [V6]:PORT and scheme://HOST:PORT
 * strings from the command line, CIDR rules, and the classification of
 * destinations that a proxy must not relay into (loopback, private, ...).
 * All functions are pure: no DNS, no I/O.
 */
#ifndef SCTPT_UTIL_NETADDR_H
#define SCTPT_UTIL_NETADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NETADDR_HOST_MAX 256   /* including the terminating NUL */

/*
 * Parse "host:port", "[v6addr]:port" or "v6addr" is NOT accepted without
 * brackets.  host is copied without brackets.  The port must be 1..65535
 * (or 0..65535 when allow_zero is set).  Returns 0 or -1.
 */
int netaddr_parse_hostport(const char *s, char *host, size_t hostlen,
                           uint16_t *port, int allow_zero);

/*
 * Parse "scheme://host:port".  scheme receives the lower-cased scheme
 * (e.g. "udp").  Returns 0 or -1.
 */
int netaddr_parse_url(const char *s, char *scheme, size_t schemelen,
                      char *host, size_t hostlen, uint16_t *port);

/*
 * Convert a numeric IPv4/IPv6 literal and a port into a sockaddr.
 * Returns 0, or -1 if host is not a numeric address.
 */
int netaddr_from_numeric(const char *host, uint16_t port,
                         struct sockaddr_storage *ss, socklen_t *len);

/*
 * Build a sockaddr from raw network-order address bytes: alen 4 (IPv4) or
 * 16 (IPv6), as they arrive in SOCKS requests and stream OPEN messages.
 * Returns 0, or -1 for any other length.
 */
int netaddr_from_raw(const uint8_t *addr, size_t alen, uint16_t port,
                     struct sockaddr_storage *ss, socklen_t *len);

/* The port of an AF_INET/AF_INET6 address in host order; 0 for other families. */
uint16_t netaddr_port(const struct sockaddr *sa);

struct netaddr_cidr {
	int family;          /* AF_INET or AF_INET6 */
	uint8_t addr[16];    /* network bytes, host bits cleared */
	int prefix;          /* 0..32 or 0..128 */
};

/* Parse "a.b.c.d/n", "v6/n" or a bare address (full-length prefix). 0 or -1. */
int netaddr_parse_cidr(const char *s, struct netaddr_cidr *out);

/*
 * Whether sa (AF_INET or AF_INET6) lies in c.  An IPv4-mapped IPv6
 * address (::ffff:a.b.c.d) matches IPv4 rules as its IPv4 address.
 */
int netaddr_cidr_match(const struct netaddr_cidr *c, const struct sockaddr *sa);

/*
 * Whether sa is a destination a public proxy must refuse by default:
 * unspecified, loopback, RFC 1918 / ULA private, link-local, multicast,
 * broadcast, CGNAT (100.64/10), "this network" (0/8), reserved (240/4),
 * and the IPv6 forms of these (including IPv4-mapped and NAT64 well-known
 * prefix embedding them).  Returns 1 if internal, 0 if public.
 */
int netaddr_is_internal(const struct sockaddr *sa);

#define NETADDR_KEY_MAX 23   /* bytes netaddr_key() writes at most */

/*
 * A canonical byte key for an address (family, port, address, IPv6 scope),
 * for hash maps of peers.  Returns its length, or 0 for other families.
 */
size_t netaddr_key(const struct sockaddr *sa, uint8_t key[NETADDR_KEY_MAX]);

/* Format "1.2.3.4:80" or "[::1]:80" into buf; returns buf. */
const char *netaddr_format(const struct sockaddr *sa, char *buf, size_t len);

#endif
