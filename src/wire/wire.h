/*
 * Wire layer: turns SCTP packets into what goes on the carrier and back,
 * and decides which remote peers get a session at all (docs/PROTOCOL.md).
 *
 * A client link first runs the handshake with the server (HELLO/REPLY),
 * then seals every SCTP packet with the session keys.  The server admits a
 * new peer only for an authentic, fresh, non-replayed HELLO; anything else
 * from anyone gets no answer at all.
 */
#ifndef SCTPT_WIRE_WIRE_H
#define SCTPT_WIRE_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "wire/handshake.h"

struct event_base;
struct carrier_proxy;
struct wire_link;
struct wire_listener;
struct wire_pad_dist;

#define WIRE_MAX_PATHS 8        /* client: server endpoints of one session */
#define WIRE_MAX_LISTEN 8       /* server: endpoints of one listener */
#define WIRE_MAX_HOP_PORTS 1024 /* server: ports of all its UDP ranges together */
#define WIRE_MAX_CARRIERS (WIRE_MAX_LISTEN + WIRE_MAX_HOP_PORTS)
#define WIRE_HOP_MIN_MS 2000    /* client: shortest --hop-interval */

/*
 * One carrier endpoint: udp:// or tcp:// and an address.  A UDP endpoint
 * may be a port range (port hopping): addr holds its first port and
 * port_hi its last (0: a single port).
 */
struct wire_endpoint {
	int tcp;
	struct sockaddr_storage addr;
	socklen_t len;
	uint16_t port_hi;
};

struct wire_config {
	size_t max_datagram;        /* largest carrier payload we send (e.g. 1452) */
	unsigned max_peers;         /* listener: concurrent peers admitted */
	const struct wire_identity *identity;   /* server */
	const struct wire_cert *cert;           /* client */
	unsigned pad_min, pad_max;              /* data padding, uniform, bytes */
	unsigned hs_pad_min, hs_pad_max;        /* handshake padding, uniform */
	unsigned handshake_timeout_ms;          /* client: give up after this */
	unsigned clock_skew_min;                /* server: accepted clock offset */
	unsigned hs_rate;                       /* server: handshakes checked per s */
	unsigned epoch_shift;                   /* rekey interval (tests), 0 = default */
	struct sockaddr_storage decoy;          /* server: TCP probes are spliced here */
	socklen_t decoy_len;                    /* (0: none, probes are drained) */
	const char *replay_file;                /* server: replay filter kept on disk
	                                         * (FILE and FILE.prev), or NULL */
	const struct sockaddr *bind_addr;       /* client: local address, or NULL */
	socklen_t bind_len;
	const struct carrier_proxy *proxy;      /* client: upstream proxy, or NULL */
	unsigned path_timeout_ms;               /* client: a path that got nothing back
	                                         * this long while we sent is abandoned */
	unsigned hop_interval_ms;               /* client: move to another port of a
	                                         * range path about this often (0: never) */
	uint8_t prefix[HS_PREFIX_MAX];          /* client: every HELLO starts with these */
	unsigned prefix_len;                    /* (0: none, the plain form) */
};

/* Defaults for everything but the keys and sizes. */
void wire_config_defaults(struct wire_config *cfg);

/*
 * The size distribution of a bridge's small packets (wire/pad.h), derived
 * from its public key: what both ends of every link to it use.  0 or -1.
 */
int wire_size_dist(const struct wire_cert *cert, size_t max_datagram, struct wire_pad_dist *d);

/* A packet for the layer above; pkt is valid only during the call. */
typedef void (*wire_recv_cb)(struct wire_link *l, const uint8_t *pkt,
                             size_t len, void *arg);
/* A new peer was admitted; the callee must set a recv callback or free l. */
typedef void (*wire_accept_cb)(struct wire_listener *wl, struct wire_link *l,
                               void *arg);
/* Client: the handshake finished (ok = 1) or failed for good (why). */
typedef void (*wire_ready_cb)(struct wire_link *l, int ok, const char *why, void *arg);
/* The link is dead (why: its peer started a new session, it sent no data
 * after the handshake, or it gave way to a new client); free it soon. */
typedef void (*wire_dead_cb)(struct wire_link *l, const char *why, void *arg);

/* Listen on a carrier endpoint.  NULL on failure (logged). */
struct wire_listener *wire_listener_new(struct event_base *base,
                                        const struct wire_endpoint *ep,
                                        const struct wire_config *cfg,
                                        wire_accept_cb cb, void *arg);
/*
 * Listen on another endpoint too (e.g. TCP next to UDP): a session can
 * move between them.  A UDP port range gets one socket per port (at most
 * WIRE_MAX_HOP_PORTS over all ranges, and only while the descriptor budget
 * has room).  0, or -1 (logged).
 */
int wire_listener_add(struct wire_listener *wl, const struct wire_endpoint *ep);
/* Stop listening.  Links still alive become unable to send.  NULL is fine. */
void wire_listener_free(struct wire_listener *wl);
/*
 * The address the idx-th endpoint actually bound (port 0 resolved; a range:
 * its first port).  0 or -1.
 */
int wire_listener_local_addr(const struct wire_listener *wl, unsigned idx,
                             struct sockaddr_storage *ss, socklen_t *len);
/* Number of links currently admitted. */
unsigned wire_listener_peers(const struct wire_listener *wl);

struct wire_stats {
	uint64_t hs_ok, hs_bad, hs_replay, hs_stale, hs_limited, data_bad, rebinds;
	uint64_t hs_nomac;              /* candidate HELLOs without a valid MAC */
	uint64_t hs_src_limited;        /* refused by a per-source bucket */
	uint64_t pending_refused;       /* valid HELLOs refused: pending or peer limit */
	uint64_t pending_evicted;       /* pending sessions that gave way to a new one */
	uint64_t pending_expired;       /* pending sessions that sent no data in time */
};
void wire_listener_stats(const struct wire_listener *wl, struct wire_stats *st);

/*
 * Client side: a link to one server reachable over n endpoints (paths of
 * the same session, tried in turn for the handshake; traffic then moves to
 * the next one whenever the active one stops delivering).  The handshake
 * starts at once and ends with cb.  NULL on failure.
 */
struct wire_link *wire_link_connect(struct event_base *base,
                                    const struct wire_endpoint *eps, unsigned n,
                                    const struct wire_config *cfg,
                                    wire_ready_cb cb, void *arg);

/* Client: a path stopped delivering and traffic moved (or a TCP path broke). */
typedef void (*wire_path_cb)(struct wire_link *l, const char *what, void *arg);
void wire_link_set_path_cb(struct wire_link *l, wire_path_cb cb, void *arg);

void wire_link_set_recv(struct wire_link *l, wire_recv_cb cb, void *arg);
void wire_link_set_dead(struct wire_link *l, wire_dead_cb cb, void *arg);
/* Seal and send one packet.  0, or -1 if dropped (the protocol recovers). */
int wire_link_send(struct wire_link *l, const uint8_t *pkt, size_t len);
/*
 * The packets go over a reliable, in-order carrier (TCP) now: how many
 * bytes the carrier can queue before it drops; 0 on UDP (or no carrier).
 * Client: the active path; server: the carrier the peer is on.
 */
size_t wire_link_reliable_cap(const struct wire_link *l);
/* Largest SCTP packet that fits in one carrier datagram after sealing. */
size_t wire_link_mtu(const struct wire_link *l);
/* The peer's carrier address. */
const struct sockaddr *wire_link_peer(const struct wire_link *l, socklen_t *len);
/* What the metrics endpoint shows of a link. */
enum wire_path_state { WIRE_PATH_ACTIVE, WIRE_PATH_STANDBY, WIRE_PATH_FAILED };

struct wire_path_stats {
	int tcp;
	enum wire_path_state state;
	int64_t last_rx_ms;             /* since its last authentic packet; -1 never */
	struct sockaddr_storage addr;   /* the server's endpoint, or the client's address */
	socklen_t addrlen;
};

struct wire_link_stats {
	/* SCTP packets carried once the session is up (opened / before sealing). */
	uint64_t packets_in, packets_out, bytes_in, bytes_out;
	uint64_t send_drops;            /* packets the carrier could not take */
	unsigned hello_attempts;        /* client: HELLOs this link sent */
	unsigned npaths;                /* client: its paths; server: 1 */
	struct wire_path_stats paths[WIRE_MAX_PATHS];
};
void wire_link_get_stats(const struct wire_link *l, struct wire_link_stats *st);

/* Close the link (and, client side, its carrier).  NULL is fine. */
void wire_link_free(struct wire_link *l);

#endif
