/*
 * Per-source limits of the server's handshake path (docs/PROTOCOL.md,
 * "Server processing of a HELLO").  A pure core: addresses and the time
 * come in, decisions come out; no sockets, no clock, no global state.
 *
 * Two jobs:
 *   - handshake token buckets per source prefix, /32 and /24 for IPv4,
 *     /64 and /48 for IPv6, checked before the listener's global bucket,
 *     so one network cannot spend every handshake the server is willing to
 *     verify.  The buckets live in a fixed-size set-associative table: a
 *     flood from spoofed sources evicts old entries (an evicted source
 *     starts again with a full bucket), it never grows memory.
 *   - pending sessions (REPLY sent, no authentic data yet): at most a few
 *     per prefix, each expiring quickly; when every peer slot is taken, the
 *     oldest pending session old enough to have had its chance gives way to
 *     a new one.  So a cert holder opening handshakes from many ports can
 *     neither hold the peer slots nor lock new clients out.
 */
#ifndef SCTPT_WIRE_SRCLIMIT_H
#define SCTPT_WIRE_SRCLIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct srclimit;

struct srclimit_config {
	double host_rate, host_burst;   /* handshakes per s per /32 or /64, and burst */
	double net_rate, net_burst;     /* per /24 or /48 */
	size_t table_size;              /* bucket entries (rounded down to whole sets) */
	unsigned pending_max;           /* pending sessions tracked at most (the peer limit) */
	unsigned pending_host;          /* pending sessions per /32 or /64 */
	unsigned pending_net;           /* per /24 or /48 */
	uint64_t pending_ttl_ms;        /* a pending session ends after this */
	uint64_t pending_grace_ms;      /* and cannot be displaced before this */
};

/* The defaults (docs/PROTOCOL.md); pending_max is the peer limit. */
void srclimit_config_defaults(struct srclimit_config *c, unsigned max_peers);

/* A limiter; seed keys the table's hash.  NULL on allocation failure. */
struct srclimit *srclimit_new(const struct srclimit_config *c, uint64_t seed);
/* NULL is fine. */
void srclimit_free(struct srclimit *sl);

/*
 * One handshake from sa at now_ms: 1 if both its host and its network
 * bucket had a token (both are then spent), 0 if either is empty (neither
 * is spent).  Addresses of other families share one bucket pair.
 */
int srclimit_hs_take(struct srclimit *sl, const struct sockaddr *sa, uint64_t now_ms);

enum srclimit_verdict {
	SRCLIMIT_REFUSE = 0,            /* too many pending from its prefix, or no slot */
	SRCLIMIT_ADMIT,                 /* admitted as pending */
	SRCLIMIT_ADMIT_EVICT,           /* admitted; *evicted must end first */
};

/*
 * A new pending session `owner` from sa at now_ms, while in_use of
 * max_in_use peer slots are taken.  On SRCLIMIT_ADMIT_EVICT, *evicted is
 * the owner of the pending session that gives way (already forgotten
 * here; the caller ends it).
 */
enum srclimit_verdict srclimit_pending_add(struct srclimit *sl, const struct sockaddr *sa,
                                           uint64_t now_ms, unsigned in_use,
                                           unsigned max_in_use, void *owner, void **evicted);
/* owner is pending no more (authenticated, or gone).  Unknown owners are fine. */
void srclimit_pending_del(struct srclimit *sl, const void *owner);
/* One pending session past its ttl at now_ms (forgotten here), or NULL. */
void *srclimit_pending_expired(struct srclimit *sl, uint64_t now_ms);
/* Pending sessions tracked. */
unsigned srclimit_pending_count(const struct srclimit *sl);
/* Bucket entries in use (at most the table size). */
size_t srclimit_table_used(const struct srclimit *sl);

#endif
