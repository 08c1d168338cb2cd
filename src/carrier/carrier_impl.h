/*
 * What every carrier struct starts with, so carrier.h's functions can
 * dispatch to the UDP or TCP implementation.  Private to src/carrier.
 */
#ifndef SCTPT_CARRIER_IMPL_H
#define SCTPT_CARRIER_IMPL_H

#include "carrier/carrier.h"

enum carrier_kind { CARRIER_KIND_UDP = 1, CARRIER_KIND_TCP };

struct carrier_hdr {
	enum carrier_kind kind;
	carrier_down_cb down_cb;
	void *down_arg;
};

/* tcp.c */
int tcp_carrier_send(struct carrier *c, const struct sockaddr *to, socklen_t tolen,
                     const uint8_t *buf, size_t len);
int tcp_carrier_local_addr(const struct carrier *c, struct sockaddr_storage *ss,
                           socklen_t *len);
void tcp_carrier_get_stats(const struct carrier *c, struct carrier_stats *st);
void tcp_carrier_drop_peer(struct carrier *c, const struct sockaddr *peer);
void tcp_carrier_free(struct carrier *c);

#endif
