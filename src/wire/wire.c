/*
 * Wire layer; see wire.h and docs/PROTOCOL.md.  This file holds what both
 * sides of a link share: sealing and padding outgoing packets, handing
 * opened ones up, and freeing.  Admission of new peers is in listener.c,
 * the client's handshake and paths in client.c (wire_internal.h has the
 * map).
 */
#include "wire/wire.h"

#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "util/clock.h"
#include "util/fault.h"
#include "wire/pad.h"
#include "wire/wire_internal.h"

/* Warnings; listener.c has budgets of its own, so one cause never hides another. */
struct log_ratelimit wire_rl = LOG_RATELIMIT_INIT(30.0, 3);

void wire_config_defaults(struct wire_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_datagram = 1452;
	cfg->max_peers = 256;
	cfg->pad_min = 0;
	cfg->pad_max = 0;
	cfg->hs_pad_min = 16;
	cfg->hs_pad_max = 900;
	cfg->handshake_timeout_ms = 10000;
	cfg->clock_skew_min = 2;
	cfg->hs_rate = 500;
}

/* The key of the TCP framing, from the bridge secret (docs/PROTOCOL.md). */
int wire_frame_key(const struct wire_cert *cert, uint8_t out[32])
{
	static const uint8_t salt[] = "sctpt tcp frame key";

	return wc_hkdf(salt, sizeof(salt) - 1, cert->secret, sizeof(cert->secret),
	               cert->pub, sizeof(cert->pub), out, 32);
}

/*
 * The seed of a bridge's size distribution: from the public key alone, so
 * that a client knows it from cert= and every link to one bridge looks
 * alike while bridges differ (docs/PROTOCOL.md).
 */
int wire_size_dist(const struct wire_cert *cert, size_t max_datagram, struct wire_pad_dist *d)
{
	static const uint8_t salt[] = "sctpt size distribution";
	uint8_t seed[WIRE_DIST_SEED_LEN];

	memset(d, 0, sizeof(*d));
	if (wc_hkdf(salt, sizeof(salt) - 1, cert->pub, sizeof(cert->pub), NULL, 0,
	            seed, sizeof(seed)) < 0)
		return -1;
	wire_pad_dist_derive(seed, max_datagram, d);
	wc_wipe(seed, sizeof(seed));
	return 0;
}

static void link_free_deferred(evutil_socket_t fd, short what, void *arg);

struct wire_link *wire_link_alloc(struct event_base *base, const struct wire_config *cfg,
                                  int client, const struct wire_cert *cert)
{
	struct wire_link *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->base = base;
	l->cfg = *cfg;
	l->client = client;
	if (wire_size_dist(cert, cfg->max_datagram, &l->pad_dist) < 0)
		memset(&l->pad_dist, 0, sizeof(l->pad_dist));   /* buckets only */
	/* Now, so that a later wire_link_free() never needs to allocate. */
	l->free_ev = FAULT("wire_free_ev") ? NULL : evtimer_new(base, link_free_deferred, l);
	if (l->free_ev == NULL) {
		free(l);
		return NULL;
	}
	return l;
}

void wire_link_hand_up(struct wire_link *l, const uint8_t *pkt, size_t len)
{
	/* An empty packet is padding (chaff, issue 16): authentic, nothing to say. */
	if (l->recv_cb == NULL || len == 0)
		return;
	l->pkts_in++;
	l->bytes_in += len;
	wire_link_hold(l);
	l->recv_cb(l, pkt, len, l->recv_arg);
	wire_link_unhold(l);
}

void wire_link_set_recv(struct wire_link *l, wire_recv_cb cb, void *arg)
{
	l->recv_cb = cb;
	l->recv_arg = arg;
}

void wire_link_set_dead(struct wire_link *l, wire_dead_cb cb, void *arg)
{
	l->dead_cb = cb;
	l->dead_arg = arg;
}

int wire_link_send(struct wire_link *l, const uint8_t *pkt, size_t len)
{
	const struct sockaddr *to = NULL;
	socklen_t tolen = 0;
	struct carrier *c;
	uint8_t *slot;
	size_t padlen;
	ssize_t n;
	int r;

	if (l->state != LINK_UP || len + WIRE_DATA_OVERHEAD > l->cfg.max_datagram) {
		if (l->state == LINK_UP)
			log_ratelimited(&wire_rl, LOG_LEVEL_WARN,
			                "wire: packet of %zu bytes exceeds the MTU (%zu); dropped",
			                len, l->cfg.max_datagram);
		return -1;
	}
	padlen = wire_pad_shaped_run(&l->pad_dist, &l->pad_run, clock_now_ms(),
	                             len + WIRE_DATA_OVERHEAD, l->cfg.max_datagram,
	                             l->cfg.pad_min, l->cfg.pad_max, wc_random_range);
	c = l->client ? wire_client_carrier(l) : wire_server_carrier(l);
	if (c == NULL)
		return -1;
	if (!l->client) {
		to = (const struct sockaddr *)&l->srv.peer;
		tolen = l->srv.peerlen;
	}
	/*
	 * Straight into the carrier's send batch, sealed in place: the
	 * packet is copied once, from the layer above's buffer.  Where the
	 * carrier has no batch (TCP), through our own buffer.
	 */
	slot = carrier_tx_slot(c, len + padlen + WIRE_DATA_OVERHEAD);
	n = wire_seal_packet(&l->tx, pkt, len, padlen, slot != NULL ? slot : l->buf);
	if (n < 0) {
		log_ratelimited(&wire_rl, LOG_LEVEL_WARN, "wire: cannot seal a packet");
		return -1;   /* an uncommitted slot is just reused */
	}
	if (slot != NULL)
		r = carrier_tx_commit(c, to, tolen, (size_t)n);
	else
		r = carrier_send(c, to, tolen, l->buf, (size_t)n);
	if (!l->client)
		l->srv.send_failed = r < 0;
	if (r == 0) {
		l->pkts_out++;
		l->bytes_out += len;
	} else {
		l->send_drops++;
	}
	return r;
}

static int64_t ms_since_or_never(const struct timespec *t)
{
	if (t->tv_sec == 0 && t->tv_nsec == 0)
		return -1;
	return (int64_t)clock_ms_since(t);
}

void wire_link_get_stats(const struct wire_link *l, struct wire_link_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->packets_in = l->pkts_in;
	st->packets_out = l->pkts_out;
	st->bytes_in = l->bytes_in;
	st->bytes_out = l->bytes_out;
	st->send_drops = l->send_drops;
	if (l->client) {
		st->hello_attempts = l->cli.hs_next;
		st->npaths = l->cli.npaths;
		for (unsigned i = 0; i < l->cli.npaths && i < WIRE_MAX_PATHS; i++) {
			const struct wire_path *pa = &l->cli.paths[i];
			struct wire_path_stats *ps = &st->paths[i];

			ps->tcp = pa->ep.tcp;
			ps->state = pa->failed ? WIRE_PATH_FAILED
			          : i == l->cli.active ? WIRE_PATH_ACTIVE : WIRE_PATH_STANDBY;
			ps->last_rx_ms = ms_since_or_never(&pa->last_rx);
			ps->addrlen = pa->ep.len <= sizeof(ps->addr) ? pa->ep.len : 0;
			memcpy(&ps->addr, &pa->ep.addr, ps->addrlen);
		}
		return;
	}
	st->npaths = 1;
	st->paths[0].tcp = l->srv.lc != NULL && l->srv.lc->c != NULL &&
	                   carrier_is_tcp(l->srv.lc->c);
	st->paths[0].state = l->srv.lc == NULL || l->srv.send_failed ? WIRE_PATH_FAILED
	                                                             : WIRE_PATH_ACTIVE;
	st->paths[0].last_rx_ms = ms_since_or_never(&l->srv.last_auth_rx);
	st->paths[0].addrlen = l->srv.peerlen <= sizeof(st->paths[0].addr) ? l->srv.peerlen : 0;
	memcpy(&st->paths[0].addr, &l->srv.peer, st->paths[0].addrlen);
}

size_t wire_link_reliable_cap(const struct wire_link *l)
{
	if (l->client) {
		if (l->cli.active >= l->cli.npaths)
			return 0;
		return l->cli.paths[l->cli.active].ep.tcp ? CARRIER_TCP_OUT_CAP : 0;
	}
	if (l->srv.lc == NULL || l->srv.lc->c == NULL)
		return 0;
	return carrier_is_tcp(l->srv.lc->c) ? CARRIER_TCP_OUT_CAP : 0;
}

size_t wire_link_mtu(const struct wire_link *l)
{
	return l->cfg.max_datagram - WIRE_DATA_OVERHEAD;
}

const struct sockaddr *wire_link_peer(const struct wire_link *l, socklen_t *len)
{
	if (l->client) {
		const struct wire_path *pa = &l->cli.paths[l->cli.active];

		if (len != NULL)
			*len = pa->ep.len;
		return (const struct sockaddr *)&pa->ep.addr;
	}
	if (len != NULL)
		*len = l->srv.peerlen;
	return (const struct sockaddr *)&l->srv.peer;
}

static void link_free_now(struct wire_link *l)
{
	if (l->client)
		wire_client_clear(l);
	else
		wire_server_clear(l);
	event_free(l->free_ev);
	wire_dir_clear(&l->tx);
	wire_dir_clear(&l->rx);
	free(l);
}

static void link_free_deferred(evutil_socket_t fd, short what, void *arg)
{
	link_free_now(arg);
}

void wire_link_free(struct wire_link *l)
{
	if (l == NULL || l->free_pending)
		return;
	if (l->cb_depth == 0) {
		link_free_now(l);
		return;
	}
	/*
	 * Inside a callback of this link (e.g. the handshake finished and the
	 * layer above gave up on the link at once): wire code and the carrier
	 * below are still using it.  Cut it off now, free it from the loop.
	 */
	l->free_pending = 1;
	if (l->client)
		wire_client_stop(l);
	else
		wire_server_detach(l);
	event_active(l->free_ev, EV_TIMEOUT, 1);
}
