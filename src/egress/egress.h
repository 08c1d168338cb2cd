/*
 * Egress: the server side's way out.  For every stream a client opens it
 * connects to the fixed target, or in proxy mode to the destination the
 * client named, after resolving it asynchronously (evdns) and checking it
 * against the ACL: internal addresses (loopback, private, link-local, ...)
 * are refused unless an --allow rule admits them.
 */
#ifndef SCTPT_EGRESS_EGRESS_H
#define SCTPT_EGRESS_EGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "mux/mux.h"
#include "util/netaddr.h"

struct event_base;
struct evdns_base;
struct egress;

enum egress_mode { EGRESS_TARGET, EGRESS_PROXY };

#define EGRESS_MAX_ALLOW 64

struct egress_config {
	enum egress_mode mode;
	char target_host[NETADDR_HOST_MAX];
	uint16_t target_port;
	struct netaddr_cidr allow[EGRESS_MAX_ALLOW];
	size_t nallow;
	unsigned connect_timeout;    /* seconds, resolution included */
	/*
	 * Target mode towards tor's Extended ORPort: authenticate with the
	 * cookie in extor_cookie_file (re-read for every connection) and
	 * announce the client's address and extor_transport before relaying.
	 */
	int extor;
	char extor_cookie_file[1024];
	char extor_transport[32];
	/* UDP relay (docs/udp-relay.md): proxy mode only. */
	unsigned udp_idle;           /* seconds without a datagram before it ends */
};

struct egress *egress_new(struct event_base *base, struct evdns_base *dns,
                          const struct egress_config *cfg);
void egress_free(struct egress *e);

/*
 * Replace the rules for streams opened from now on (SIGHUP reload): mode,
 * target, --allow list and connect timeout.  Connections already open or
 * connecting keep going; the Extended ORPort settings stay as they were.
 */
void egress_reconfigure(struct egress *e, const struct egress_config *cfg);

/*
 * Start connecting for stream s; ends in mux_stream_accept/reject.  client
 * (may be NULL) is the client's carrier address, told to the Extended
 * ORPort.
 */
void egress_open(struct egress *e, struct mux_stream *s, const struct mux_dest *dest,
                 const struct sockaddr *client);

/*
 * Serve the UDP association s the client opened (proxy mode): accepts it
 * with mux_udp_accept(), or refuses it.  client names it in logs.
 */
void egress_udp_open(struct egress *e, struct mux_stream *s, const char *client);

/*
 * Whether the ACL lets proxy mode connect to sa.  Pure; for unit tests.
 * Returns 1 if allowed.
 */
int egress_acl_allows(const struct egress_config *cfg, const struct sockaddr *sa);

/* Map a connect() errno to the stream error code sent to the client. */
uint8_t egress_errno_to_code(int err);

#endif
