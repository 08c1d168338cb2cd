/*
 * Wire layer, client side: the handshake and the paths.
 *
 * HELLOs are sent with fresh keys and randomness every attempt (a resent
 * HELLO would be a replay), going round the paths, until a REPLY
 * authenticates or the handshake timeout passes.  The path that answered
 * carries the session; a 200 ms timer then frees broken carriers and moves
 * traffic to the next path when the active one stops delivering.
 */
#include "wire/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/event.h>

#include "util/clock.h"
#include "util/fault.h"
#include "util/netaddr.h"
#include "wire/pad.h"
#include "wire/wire_internal.h"

#define HS_FIRST_RETRY_MS 1000
#define HS_MAX_RETRY_MS 4000
#define PATH_TICK_MS 200
#define PATH_RETRY_MS 1000          /* a broken TCP or proxied path, at most this often */
#define PATH_TIMEOUT_MS 2000        /* default path_timeout_ms */
/*
 * Port hopping: the carrier to the port we left is read this long (or
 * until the next hop), because the server keeps answering there until that
 * address has been quiet for WIRE_REBIND_SILENCE_MS (1.5 s).
 */
#define HOP_GRACE_MS 4000
/*
 * After the REPLY, the layer above (the SCTP INIT) hears of the session
 * after a uniform 0..READY_JITTER_MS: the gap between REPLY and the next
 * packet is no constant (issue 16), for at most this much more setup time.
 */
#define READY_JITTER_MS 40
/*
 * And 0..CHAFF_MAX empty packets (padding only, dropped by the receiver's
 * wire layer) go out at uniform times within CHAFF_SPREAD_MS of the REPLY,
 * so the SCTP handshake's fixed order (c, s, c, s) and count do not show
 * as such: a few hundred bytes once per session.
 */
#define CHAFF_MAX 3
#define CHAFF_SPREAD_MS 120

static int path_open(struct wire_path *pa);

struct carrier *wire_client_carrier(struct wire_link *l)
{
	struct wire_path *pa = &l->cli.paths[l->cli.active];

	l->cli.last_tx = clock_now();
	if (pa->c == NULL && path_open(pa) < 0)
		return NULL;
	return pa->c;
}

int wire_client_send(struct wire_link *l, const uint8_t *p, size_t n)
{
	struct carrier *c = wire_client_carrier(l);

	return c != NULL ? carrier_send(c, NULL, 0, p, n) : -1;
}

static void hs_states_clear(struct wire_link *l)
{
	for (unsigned k = 0; k < HS_ATTEMPTS_KEPT; k++) {
		if (l->cli.hs[k] != NULL)
			wc_wipe(l->cli.hs[k], sizeof(*l->cli.hs[k]));
		free(l->cli.hs[k]);
		l->cli.hs[k] = NULL;
	}
}

void wire_client_stop(struct wire_link *l)
{
	if (l->cli.hs_timer != NULL)
		event_del(l->cli.hs_timer);
	if (l->cli.path_timer != NULL)
		event_del(l->cli.path_timer);
	if (l->cli.chaff_timer != NULL)
		event_del(l->cli.chaff_timer);
}

void wire_client_clear(struct wire_link *l)
{
	for (unsigned i = 0; i < l->cli.npaths; i++) {
		carrier_free(l->cli.paths[i].c);
		carrier_free(l->cli.paths[i].dead);
		carrier_free(l->cli.paths[i].prev);
	}
	if (l->cli.path_timer != NULL)
		event_free(l->cli.path_timer);
	if (l->cli.hs_timer != NULL)
		event_free(l->cli.hs_timer);
	if (l->cli.chaff_timer != NULL)
		event_free(l->cli.chaff_timer);
	wc_wipe(l->cli.frame_key, sizeof(l->cli.frame_key));
	hs_states_clear(l);
}

/* ---------- handshake ---------- */

static void client_fail(struct wire_link *l, const char *why)
{
	l->state = LINK_FAILED;
	wire_client_stop(l);
	wire_link_hold(l);
	l->cli.ready_cb(l, 0, why, l->cli.ready_arg);   /* may free l */
	wire_link_unhold(l);
}

static void client_send_hello(struct wire_link *l)
{
	struct hs_client *st;
	uint8_t e_priv[WC_KEY_LEN], r[WIRE_RAND_LEN], pad[HS_MAX], out[HS_MAX];
	unsigned slot = l->cli.hs_next++ % HS_ATTEMPTS_KEPT;
	/* Attempts go round the paths: whichever answers carries the session. */
	unsigned path = (l->cli.hs_next - 1) % l->cli.npaths;
	/*
	 * The prefixed HELLO goes on UDP paths only: on a TCP path the carrier
	 * opens the stream with the prefix, and a second copy inside the first
	 * frame would only repeat it.
	 */
	size_t plen = l->cli.paths[path].ep.tcp ? 0 : l->cfg.prefix_len;
	size_t min = HS_HELLO_MIN + (plen > 0 ? plen + 1 : 0);
	size_t padlen = wire_pad_handshake(min, HS_MAX, l->cfg.max_datagram,
	                                   l->cfg.hs_pad_min, l->cfg.hs_pad_max, wc_random_range);
	int n;

	if (l->cli.hs[slot] == NULL)
		l->cli.hs[slot] = calloc(1, sizeof(*l->cli.hs[slot]));
	st = l->cli.hs[slot];
	if (st == NULL || wc_random(e_priv, sizeof(e_priv)) < 0 || wc_random(r, sizeof(r)) < 0)
		return;
	memset(pad, 0, padlen);
	/* The HELLO carries the wall clock: the server checks it against its own. */
	n = hs_client_hello_prefixed(l->cfg.cert, st, e_priv, r, (uint64_t)time(NULL) / 60,
	                             l->cfg.prefix, plen, pad, padlen, out);
	wc_wipe(e_priv, sizeof(e_priv));
	l->cli.active = path;
	if (n > 0)
		(void)wire_client_send(l, out, (size_t)n);
}

static void chaff_arm(struct wire_link *l)
{
	unsigned ms = wc_random_range(1, CHAFF_SPREAD_MS / (CHAFF_MAX > 0 ? CHAFF_MAX : 1));
	struct timeval tv = { 0, (suseconds_t)ms * 1000 };

	if (l->cli.chaff_left == 0 || l->cli.chaff_timer == NULL ||
	    event_add(l->cli.chaff_timer, &tv) < 0)
		l->cli.chaff_left = 0;
}

static void chaff_cb(evutil_socket_t fd, short what, void *arg)
{
	static const uint8_t none[1];
	struct wire_link *l = arg;

	if (l->state != LINK_UP || l->cli.chaff_left == 0)
		return;
	l->cli.chaff_left--;
	(void)wire_link_send(l, none, 0);
	chaff_arm(l);
}

static void client_ready(struct wire_link *l)
{
	l->cli.ready_pending = 0;
	wire_link_hold(l);
	l->cli.ready_cb(l, 1, NULL, l->cli.ready_arg);
	wire_link_unhold(l);
}

static void hs_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wire_link *l = arg;
	double elapsed_ms = clock_ms_since(&l->cli.hs_start);
	struct timeval tv;

	if (l->state == LINK_UP) {      /* the jittered report of success */
		if (l->cli.ready_pending)
			client_ready(l);
		return;
	}

	if (elapsed_ms >= l->cfg.handshake_timeout_ms) {
		char why[400];

		if (l->cli.last_path_err[0] != '\0')
			snprintf(why, sizeof(why), "no answer from server (last error: %s)",
			         l->cli.last_path_err);
		else
			snprintf(why, sizeof(why), "%s",
			         "no answer from server: wrong cert= or the path is blocked");
		client_fail(l, why);
		return;
	}
	client_send_hello(l);
	l->cli.hs_retry_ms = l->cli.hs_retry_ms * 2 > HS_MAX_RETRY_MS ? HS_MAX_RETRY_MS
	                                                               : l->cli.hs_retry_ms * 2;
	{
		/* Never wait past the deadline: the failure report is due then. */
		double left = l->cfg.handshake_timeout_ms - elapsed_ms;
		unsigned ms = l->cli.hs_retry_ms < left ? l->cli.hs_retry_ms : (unsigned)left + 1;

		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
	}
	if (event_add(l->cli.hs_timer, &tv) < 0)
		client_fail(l, "cannot schedule the next handshake attempt");
}

static void client_handshake_input(struct wire_link *l, const uint8_t *p, size_t n)
{
	struct wire_session_keys keys;

	for (unsigned i = 0; i < HS_ATTEMPTS_KEPT; i++) {
		struct hs_client *st = l->cli.hs[i];

		if (st == NULL || st->hello_len == 0)
			continue;
		if (hs_client_finish(l->cfg.cert, st, p, n, &keys) == 0) {
			int ok = wire_dir_init(&l->tx, &keys.c2s, l->cfg.epoch_shift) == 0 &&
			         wire_dir_init(&l->rx, &keys.s2c, l->cfg.epoch_shift) == 0;

			wc_wipe(&keys, sizeof(keys));
			hs_states_clear(l);
			event_del(l->cli.hs_timer);
			if (!ok) {
				client_fail(l, "cannot set up session keys");
				return;
			}
			l->state = LINK_UP;
			{
				unsigned ms = wc_random_range(0, READY_JITTER_MS);
				struct timeval tv = { 0, (suseconds_t)ms * 1000 };

				l->cli.ready_pending = 1;
				l->cli.chaff_left = wc_random_range(0, CHAFF_MAX);
				chaff_arm(l);
				if (ms == 0 || event_add(l->cli.hs_timer, &tv) < 0)
					client_ready(l);
			}
			return;
		}
	}
	/* Not an answer to us: ignore, like everything unauthentic. */
}

/* ---------- paths ---------- */

static void client_datagram_in(struct wire_link *l, struct wire_path *pa,
                               uint8_t *buf, size_t len)
{
	const uint8_t *pkt;
	ssize_t n;

	/* Connected carriers: the kernel already filtered the source. */
	if (l->state == LINK_HANDSHAKE) {
		client_handshake_input(l, buf, len);
		if (l->state == LINK_UP) {
			l->cli.active = pa->idx;
			pa->last_rx = clock_now();
			pa->failed = 0;
			l->cli.switched_at = pa->last_rx;
		}
	} else if (l->state == LINK_UP) {
		if (len > CARRIER_MAX_DATAGRAM)
			return;
		/* Opened in place in the carrier's receive buffer. */
		n = wire_open_packet_inplace(&l->rx, buf, len, &pkt);
		if (n < 0)
			return;   /* forged, damaged or replayed: dropped, nothing else */
		wire_link_hand_up(l, pkt, (size_t)n);
		pa->last_rx = clock_now();
		pa->failed = 0;
	}
}

static void client_datagram(struct carrier *c, const struct sockaddr *from,
                            socklen_t fromlen, uint8_t *buf, size_t len,
                            void *arg)
{
	struct wire_path *pa = arg;
	struct wire_link *l = pa->l;

	if (l->free_pending)
		return;
	wire_link_hold(l);
	client_datagram_in(l, pa, buf, len);
	wire_link_unhold(l);
}

static void path_label(const struct wire_path *pa, char *buf, size_t len)
{
	char abuf[128];

	snprintf(buf, len, "path %u (%s://%s)", pa->idx + 1, pa->ep.tcp ? "tcp" : "udp",
	         log_addr(netaddr_format((const struct sockaddr *)&pa->ep.addr, abuf,
	                                 sizeof(abuf))));
}

static void path_carrier_down(struct carrier *c, const char *why, void *arg)
{
	struct wire_path *pa = arg;
	struct wire_link *l = pa->l;
	char label[200], msg[300];

	if (pa->c != c || l->free_pending)
		return;
	path_label(pa, label, sizeof(label));
	snprintf(msg, sizeof(msg), "%s: %s", label, why);
	log_ratelimited(&wire_rl, LOG_LEVEL_WARN, "wire: %s", msg);
	snprintf(l->cli.last_path_err, sizeof(l->cli.last_path_err), "%s", msg);
	/* Freed from the timer: we are inside its callback. */
	carrier_free(pa->dead);
	pa->dead = c;
	pa->c = NULL;
	pa->failed = 1;
	if (l->cli.path_cb != NULL && l->state == LINK_UP) {
		wire_link_hold(l);
		l->cli.path_cb(l, msg, l->cli.path_arg);
		wire_link_unhold(l);
	}
}

/* Create the path's carrier (again).  0 or -1. */
static int path_open(struct wire_path *pa)
{
	struct wire_link *l = pa->l;
	const struct sockaddr *bind = NULL;
	socklen_t bindlen = 0;

	if (pa->created.tv_sec != 0 && clock_ms_since(&pa->created) < PATH_RETRY_MS &&
	    (pa->ep.tcp || l->cfg.proxy != NULL))
		return -1;
	if (l->cfg.bind_addr != NULL && l->cfg.bind_addr->sa_family == pa->ep.addr.ss_family) {
		bind = l->cfg.bind_addr;
		bindlen = l->cfg.bind_len;
	}
	pa->created = clock_now();
	if (pa->ep.tcp)
		pa->c = carrier_tcp_connect_prefixed(l->base, bind, bindlen,
		                                     (const struct sockaddr *)&pa->ep.addr,
		                                     pa->ep.len, l->cfg.proxy, l->cli.frame_key,
		                                     l->cfg.prefix, l->cfg.prefix_len,
		                                     client_datagram, pa);
	else if (l->cfg.proxy != NULL && l->cfg.proxy->type != CARRIER_PROXY_NONE)
		pa->c = carrier_udp_connect_proxy(l->base, bind, bindlen,
		                                  (const struct sockaddr *)&pa->ep.addr, pa->ep.len,
		                                  l->cfg.proxy, client_datagram, pa);
	else
		pa->c = carrier_udp_new(l->base, bind, bindlen,
		                        (const struct sockaddr *)&pa->ep.addr, pa->ep.len,
		                        client_datagram, pa);
	if (pa->c == NULL)
		return -1;
	carrier_set_down(pa->c, path_carrier_down, pa);
	return 0;
}

/* Move traffic from the active path to the next one. */
static void path_switch(struct wire_link *l)
{
	struct wire_path *act = &l->cli.paths[l->cli.active];
	struct wire_path *next = &l->cli.paths[(l->cli.active + 1) % l->cli.npaths];
	char from[200], to[200], msg[500];

	path_label(act, from, sizeof(from));
	path_label(next, to, sizeof(to));
	snprintf(msg, sizeof(msg), "%s stopped delivering; moving to %s", from, to);
	log_warn("wire: %s", msg);
	act->failed = 1;
	l->cli.active = next->idx;
	l->cli.switched_at = clock_now();
	next->last_rx = l->cli.switched_at;    /* give it its own full timeout */
	if (next->c == NULL)
		(void)path_open(next);
	if (l->cli.path_cb != NULL) {
		wire_link_hold(l);
		l->cli.path_cb(l, msg, l->cli.path_arg);
		wire_link_unhold(l);
	}
}

/*
 * The next hop in 1 to 1.5 intervals: no fixed period to spot, and never
 * sooner than the interval (at least WIRE_HOP_MIN_MS), so the server has
 * followed the last hop (1.5 s of quiet at the old port) before the next.
 */
static void hop_schedule(struct wire_link *l)
{
	unsigned iv = l->cfg.hop_interval_ms;
	uint64_t ms = wc_random_range(iv, iv + iv / 2);
	struct timespec now = clock_now();

	l->cli.next_hop.tv_sec = now.tv_sec + (time_t)(ms / 1000);
	l->cli.next_hop.tv_nsec = now.tv_nsec + (long)(ms % 1000) * 1000000L;
	if (l->cli.next_hop.tv_nsec >= 1000000000L) {
		l->cli.next_hop.tv_sec++;
		l->cli.next_hop.tv_nsec -= 1000000000L;
	}
}

/* A random port of pa's range other than the current one. */
static uint16_t hop_pick(const struct wire_path *pa)
{
	uint16_t cur = netaddr_port((const struct sockaddr *)&pa->ep.addr);
	unsigned n = (unsigned)pa->ep.port_hi - pa->port_lo + 1;
	unsigned port = pa->port_lo + wc_random_range(0, n - 2);

	if (port >= cur)
		port++;
	return (uint16_t)port;
}

/*
 * Move the active path to another port of its range: a new socket to the
 * new port carries our packets from now on (the server follows, as after a
 * NAT rebinding), while the old one is still read for what the server sends
 * there meanwhile.  Same session, same association: nothing is reset.
 */
static void path_hop(struct wire_link *l, struct wire_path *pa)
{
	struct sockaddr_storage old_addr = pa->ep.addr;
	struct carrier *old = pa->c;
	uint16_t port = hop_pick(pa);

	wire_set_port(&pa->ep.addr, port);
	pa->c = NULL;
	if (path_open(pa) < 0) {
		pa->ep.addr = old_addr;   /* try again at the next hop */
		pa->c = old;
		return;
	}
	carrier_free(pa->prev);
	pa->prev = old;
	pa->prev_since = clock_now();
	log_info("wire: port hopping: path %u now goes to port %u", pa->idx + 1, (unsigned)port);
}

/*
 * Every 200 ms while the session is up: free broken carriers, and move to
 * the next path when the active one has returned nothing for
 * path_timeout_ms while we kept sending (keepalives make sure we do).
 */
static void path_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wire_link *l = arg;
	struct wire_path *act;
	double silent;

	for (unsigned i = 0; i < l->cli.npaths; i++) {
		struct wire_path *pa = &l->cli.paths[i];

		carrier_free(pa->dead);
		pa->dead = NULL;
		if (pa->prev != NULL && clock_ms_since(&pa->prev_since) > HOP_GRACE_MS) {
			carrier_free(pa->prev);
			pa->prev = NULL;
		}
	}
	if (l->state != LINK_UP)
		return;
	act = &l->cli.paths[l->cli.active];
	if (act->c == NULL)
		(void)path_open(act);   /* TCP broke: reconnect (the server follows) */
	if (l->cfg.hop_interval_ms > 0 && act->ep.port_hi != 0 && act->c != NULL &&
	    clock_ms_since(&l->cli.next_hop) >= 0) {
		path_hop(l, act);
		hop_schedule(l);
	}
	if (l->cli.npaths < 2)
		return;
	silent = clock_diff_ms(&act->last_rx, &l->cli.last_tx);
	if ((silent > l->cfg.path_timeout_ms &&
	     clock_ms_since(&l->cli.switched_at) > l->cfg.path_timeout_ms) ||
	    (act->c == NULL && act->ep.tcp && clock_ms_since(&act->created) < PATH_RETRY_MS))
		path_switch(l);
}

struct wire_link *wire_link_connect(struct event_base *base,
                                    const struct wire_endpoint *eps, unsigned n,
                                    const struct wire_config *cfg,
                                    wire_ready_cb cb, void *arg)
{
	struct wire_link *l;
	struct timeval tv = { HS_FIRST_RETRY_MS / 1000, (HS_FIRST_RETRY_MS % 1000) * 1000 };
	struct timeval tick = { 0, PATH_TICK_MS * 1000 };

	if (cfg->cert == NULL) {
		log_err("wire: a client needs the server's cert");
		return NULL;
	}
	if (n == 0 || n > WIRE_MAX_PATHS)
		return NULL;
	l = wire_link_alloc(base, cfg, 1, cfg->cert);
	if (l == NULL)
		return NULL;
	if (l->cfg.path_timeout_ms == 0)
		l->cfg.path_timeout_ms = PATH_TIMEOUT_MS;
	l->cli.ready_cb = cb;
	l->cli.ready_arg = arg;
	l->state = LINK_HANDSHAKE;
	l->cli.hs_retry_ms = HS_FIRST_RETRY_MS;
	l->cli.hs_start = clock_now();
	l->cli.npaths = n;
	for (unsigned i = 0; i < n; i++) {
		struct wire_path *pa = &l->cli.paths[i];

		pa->l = l;
		pa->ep = eps[i];
		pa->idx = i;
		if (pa->ep.port_hi != 0) {
			/* A range: start at a random port of it. */
			pa->port_lo = netaddr_port((const struct sockaddr *)&pa->ep.addr);
			if (pa->ep.tcp || pa->port_lo == 0 || pa->ep.port_hi <= pa->port_lo) {
				wire_link_free(l);
				return NULL;
			}
			wire_set_port(&pa->ep.addr, (uint16_t)(pa->port_lo +
			              wc_random_range(0, (unsigned)pa->ep.port_hi - pa->port_lo)));
		}
	}
	if (l->cfg.hop_interval_ms > 0) {
		if (l->cfg.hop_interval_ms < WIRE_HOP_MIN_MS)
			l->cfg.hop_interval_ms = WIRE_HOP_MIN_MS;
		hop_schedule(l);
	}
	l->cli.hs_timer = FAULT("wire_hs_timer") ? NULL : evtimer_new(base, hs_timer_cb, l);
	l->cli.chaff_timer = evtimer_new(base, chaff_cb, l);   /* optional: NULL sends none */
	l->cli.path_timer = FAULT("wire_path_timer") ? NULL
	                    : event_new(base, -1, EV_PERSIST, path_timer_cb, l);
	if (l->cli.hs_timer == NULL || l->cli.path_timer == NULL ||
	    wire_frame_key(cfg->cert, l->cli.frame_key) < 0 || path_open(&l->cli.paths[0]) < 0 ||
	    event_add(l->cli.path_timer, &tick) < 0 || event_add(l->cli.hs_timer, &tv) < 0) {
		wire_link_free(l);
		return NULL;
	}
	client_send_hello(l);
	return l;
}

void wire_link_set_path_cb(struct wire_link *l, wire_path_cb cb, void *arg)
{
	l->cli.path_cb = cb;
	l->cli.path_arg = arg;
}
