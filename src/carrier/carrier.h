/*
 * Carrier layer: moves opaque datagrams between two hosts.  This issue has
 * the UDP carrier; a TCP carrier with hidden framing comes later behind the
 * same interface.  A carrier knows nothing about sessions: the wire layer
 * above demultiplexes peers by address.
 */
#ifndef SCTPT_CARRIER_CARRIER_H
#define SCTPT_CARRIER_CARRIER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct carrier;

#define CARRIER_MAX_DATAGRAM 65535

/* Called for every datagram received; buf is valid only during the call. */
typedef void (*carrier_recv_cb)(struct carrier *c, const struct sockaddr *from,
                                socklen_t fromlen, const uint8_t *buf,
                                size_t len, void *arg);

/*
 * Open a UDP carrier.  With bind_addr it listens there (server); with
 * peer it is connected to that one peer (client) and bound to an
 * ephemeral port.  Returns NULL with a logged reason on failure.
 */
struct carrier *carrier_udp_new(struct event_base *base,
                                const struct sockaddr *bind_addr, socklen_t bindlen,
                                const struct sockaddr *peer, socklen_t peerlen,
                                carrier_recv_cb cb, void *arg);

/*
 * Send one datagram (to may be NULL on a connected carrier).  Returns 0, or
 * -1 if it was dropped (full socket buffer, unreachable): like the network,
 * the carrier may lose packets and the protocol above recovers.
 */
int carrier_send(struct carrier *c, const struct sockaddr *to, socklen_t tolen,
                 const uint8_t *buf, size_t len);

/* Local address the carrier is bound to (for logs and tests). */
int carrier_local_addr(const struct carrier *c, struct sockaddr_storage *ss,
                       socklen_t *len);

/* Counters for diagnostics. */
struct carrier_stats {
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, tx_dropped;
};
void carrier_get_stats(const struct carrier *c, struct carrier_stats *st);

/* Close and free; NULL is fine. */
void carrier_free(struct carrier *c);

#endif
