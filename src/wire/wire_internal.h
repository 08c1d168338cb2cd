/*
 * Wire layer internals, shared by its files only:
 *
 *   wire.c      what both sides of a link do: seal and send, hand packets
 *               up, free (deferred when inside a callback);
 *   listener.c  server: admission of new peers (HELLO checks), pending
 *               links, NAT rebinding;
 *   client.c    client: HELLO retries, the paths and their switching;
 *   replay.c    the server's HELLO replay filter (pure, clock passed in);
 *   pad.c       padding lengths (pure, randomness passed in).
 *
 * A link is either a server link (made by a listener) or a client link
 * (wire_link_connect); the fields only one side uses are in `srv` or `cli`.
 */
#ifndef SCTPT_WIRE_WIRE_INTERNAL_H
#define SCTPT_WIRE_WIRE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "carrier/carrier.h"
#include "util/hmap.h"
#include "util/log.h"
#include "wire/pad.h"
#include "wire/seal.h"
#include "wire/wire.h"

struct event;

#define HS_ATTEMPTS_KEPT 4          /* HELLOs a REPLY may answer (both sides) */

/*
 * LINK_PENDING (server): HELLO(s) answered, no authentic data yet.  Up to
 * HS_ATTEMPTS_KEPT candidate key sets are kept, because on a slow path the
 * client may send a new HELLO before our REPLY reaches it and then finish
 * with either; its first authentic packet decides.
 */
enum link_state { LINK_HANDSHAKE, LINK_PENDING, LINK_UP, LINK_FAILED };

struct wire_candidate {
	struct wire_dir tx, rx;
	int used;
};

/* One of a listener's carriers (UDP or TCP endpoint). */
struct wire_lcarrier {
	struct wire_listener *wl;
	struct carrier *c;
	unsigned idx;
};

/* One of a client link's paths to the server. */
struct wire_path {
	struct wire_link *l;
	struct wire_endpoint ep;
	struct carrier *c;              /* NULL until used, or after it broke */
	struct carrier *dead;           /* broken carrier, freed from the timer */
	struct carrier *prev;           /* port hopping: the carrier to the port we
	                                 * left, still read until the server follows */
	struct timespec prev_since;
	uint16_t port_lo;               /* a range path: its first port (ep.port_hi the last) */
	struct timespec last_rx;
	struct timespec created;
	unsigned idx;
	int failed;                     /* broke or stopped delivering; cleared by
	                                 * the next authentic packet over it */
};

/* Server side of a link: where the peer is and how it got in. */
struct wire_link_srv {
	struct wire_listener *listener;   /* NULL once the listener is gone */
	struct wire_lcarrier *lc;         /* the carrier the peer is on */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	uint8_t key[HMAP_KEY_MAX];        /* in listener->peers under this key */
	size_t keylen;
	struct timespec last_auth_rx;     /* last authentic packet from `peer` */
	uint8_t mv_key[HMAP_KEY_MAX];     /* an address that sent an authentic new
	                                   * packet, not followed yet (listener->moving) */
	size_t mv_keylen;                 /* 0: none */
	int send_failed;                  /* the last send to `peer` failed
	                                   * (e.g. its TCP connection is gone) */
	struct wire_candidate cand[HS_ATTEMPTS_KEPT];   /* while LINK_PENDING */
	unsigned cand_next;
};

/* Client side of a link: the handshake and the paths. */
struct wire_link_cli {
	struct wire_path paths[WIRE_MAX_PATHS];
	unsigned npaths, active;          /* active: the path carrying traffic */
	struct event *path_timer;
	struct timespec last_tx, switched_at;
	struct timespec next_hop;         /* port hopping: when to move next */
	uint8_t frame_key[32];
	wire_path_cb path_cb;
	void *path_arg;
	char last_path_err[300];          /* why a path's carrier last ended */
	wire_ready_cb ready_cb;
	void *ready_arg;
	struct hs_client *hs[HS_ATTEMPTS_KEPT];
	unsigned hs_next;
	struct event *hs_timer;
	struct timespec hs_start;
	unsigned hs_retry_ms;
	int ready_pending;                /* up; ready_cb due from hs_timer */
	struct event *chaff_timer;        /* empty packets around the SCTP handshake */
	unsigned chaff_left;
};

struct wire_link {
	int client;                       /* which of srv, cli is in use */
	struct event_base *base;
	struct wire_config cfg;
	enum link_state state;
	struct wire_dir tx, rx;
	struct wire_pad_dist pad_dist;    /* the bridge's small-packet sizes */
	struct wire_pad_run pad_run;      /* the current run of one of them */
	wire_recv_cb recv_cb;
	void *recv_arg;
	wire_dead_cb dead_cb;
	void *dead_arg;
	/*
	 * A link is never freed while wire code for it is on the stack (the
	 * carrier below may still be walking a batch): cb_depth counts those
	 * frames, and wire_link_free() inside one only marks the link and
	 * activates free_ev, allocated with the link so that this cannot fail.
	 */
	int cb_depth;
	int free_pending;
	struct event *free_ev;
	struct wire_link_srv srv;
	struct wire_link_cli cli;
	/* Counters for the metrics endpoint (wire_link_get_stats). */
	uint64_t pkts_in, pkts_out, bytes_in, bytes_out, send_drops;
	uint8_t buf[CARRIER_MAX_DATAGRAM];   /* seal/open scratch */
};

/* Warnings both sides can log; one budget (wire.c). */
extern struct log_ratelimit wire_rl;

/* wire.c */
struct wire_link *wire_link_alloc(struct event_base *base, const struct wire_config *cfg,
                                  int client, const struct wire_cert *cert);
/* Hand an opened packet (in l->buf or the carrier's buffer) to the layer above. */
void wire_link_hand_up(struct wire_link *l, const uint8_t *pkt, size_t len);
/* The TCP framing key of a bridge (docs/PROTOCOL.md).  0 or -1. */
int wire_frame_key(const struct wire_cert *cert, uint8_t out[32]);

/* Bracket calls into the layer above, which may call wire_link_free(l). */
static inline void wire_link_hold(struct wire_link *l)
{
	l->cb_depth++;
}

static inline void wire_link_unhold(struct wire_link *l)
{
	l->cb_depth--;
}

/* listener.c: server side of sending and freeing. */
int wire_server_send(struct wire_link *l, const uint8_t *p, size_t n);
/* The carrier the peer is on, or NULL (the listener is gone). */
struct carrier *wire_server_carrier(struct wire_link *l);
/* Leave the listener's peer map (no more datagrams reach l). */
void wire_server_detach(struct wire_link *l);
/* Wipe and free the server-side state. */
void wire_server_clear(struct wire_link *l);

/* client.c: client side of sending and freeing. */
int wire_client_send(struct wire_link *l, const uint8_t *p, size_t n);
/* The active path's carrier, opened if need be, or NULL; counts as sending. */
struct carrier *wire_client_carrier(struct wire_link *l);
/* Stop the timers (the link is going away). */
void wire_client_stop(struct wire_link *l);
/* Free the carriers, timers and handshake state. */
void wire_client_clear(struct wire_link *l);

/* Set the port of an AF_INET/AF_INET6 address (port hopping). */
static inline void wire_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

#endif
