/*
 * Wire layer: turns SCTP packets into what goes on the carrier and back,
 * and decides which remote peers get a session at all.
 *
 * This is the seam where the handshake, AEAD sealing, padding and the replay
 * filter live.  In this version packets pass through unencrypted; a new
 * peer is admitted only when its first datagram is a well-formed SCTP INIT,
 * so garbage from unknown addresses never creates state.
 */
#ifndef SCTPT_WIRE_WIRE_H
#define SCTPT_WIRE_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct wire_link;
struct wire_listener;

struct wire_config {
	size_t max_datagram;   /* largest carrier payload we send (e.g. 1452) */
	unsigned max_peers;    /* listener: concurrent peers admitted */
};

/* A packet for the layer above; pkt is valid only during the call. */
typedef void (*wire_recv_cb)(struct wire_link *l, const uint8_t *pkt,
                             size_t len, void *arg);
/* A new peer was admitted; the callee must set a recv callback or free l. */
typedef void (*wire_accept_cb)(struct wire_listener *wl, struct wire_link *l,
                               void *arg);

/* Listen on a carrier address.  NULL on failure (logged). */
struct wire_listener *wire_listener_new(struct event_base *base,
                                        const struct sockaddr *addr, socklen_t len,
                                        const struct wire_config *cfg,
                                        wire_accept_cb cb, void *arg);
/* Stop listening.  Links still alive become unable to send.  NULL is fine. */
void wire_listener_free(struct wire_listener *wl);
/* The carrier address actually bound (port 0 resolved). 0 or -1. */
int wire_listener_local_addr(const struct wire_listener *wl,
                             struct sockaddr_storage *ss, socklen_t *len);
/* Number of links currently admitted. */
unsigned wire_listener_peers(const struct wire_listener *wl);

/* Client side: a link to one server over a fresh carrier.  NULL on failure. */
struct wire_link *wire_link_connect(struct event_base *base,
                                    const struct sockaddr *server, socklen_t len,
                                    const struct wire_config *cfg);

void wire_link_set_recv(struct wire_link *l, wire_recv_cb cb, void *arg);
/* Seal and send one packet.  0, or -1 if dropped (the protocol recovers). */
int wire_link_send(struct wire_link *l, const uint8_t *pkt, size_t len);
/* Largest SCTP packet that fits in one carrier datagram after sealing. */
size_t wire_link_mtu(const struct wire_link *l);
/* The peer's carrier address. */
const struct sockaddr *wire_link_peer(const struct wire_link *l, socklen_t *len);
/* Close the link (and, client side, its carrier).  NULL is fine. */
void wire_link_free(struct wire_link *l);

/*
 * Whether a datagram from an unknown peer may open a session.  Pure; exposed
 * for unit tests and the fuzz harness.
 */
int wire_is_session_start(const uint8_t *pkt, size_t len);

#endif
