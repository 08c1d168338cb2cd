/*
 * Wire layer, server side: who gets a session.
 *
 * Peers are demultiplexed by carrier address (hash map bounded by
 * max_peers).  A datagram from an unknown address is either a known
 * session that moved (NAT rebinding, another path) or a HELLO, checked in
 * order of cost: its MAC (one HMAC: junk stops here and spends nothing),
 * not a replay, within the per-source and global rate limits (each later
 * check costs an X25519), authentic, within the clock window.  Only then
 * does the peer get state and a REPLY, and a pending slot (srclimit.c)
 * until its first authentic data packet.  Failures are silent on the wire.
 */
#include "wire/wire.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/event.h>

#include "util/clock.h"
#include "util/fdbudget.h"
#include "util/netaddr.h"
#include "wire/pad.h"
#include "wire/replay.h"
#include "wire/srclimit.h"
#include "wire/wire_internal.h"

#define WIRE_REBIND_RATE 2000.0     /* rebinding checks per second */
#define WIRE_REBIND_SILENCE_MS 1500 /* a session moves only after this much quiet */
#define WIRE_PENDING_TICK_MS 500    /* how often expired pending sessions are ended */

struct wire_listener {
	struct event_base *base;
	struct wire_lcarrier lc[WIRE_MAX_CARRIERS];
	unsigned nlc;
	unsigned ep_first[WIRE_MAX_LISTEN];     /* endpoint -> its first carrier */
	unsigned nep;
	unsigned hop_ports;                     /* carriers of UDP ranges */
	uint8_t frame_key[32];          /* TCP length masks */
	struct hmap *peers;             /* peer key -> struct wire_link */
	struct wire_config cfg;
	wire_accept_cb accept_cb;
	void *accept_arg;
	struct replay_filter *replay;
	struct wc_hmac *mac;            /* the HELLO's MAC, checked before all else */
	struct wc_hmac *mac_p;          /* the same for the prefixed form */
	struct hmap *moving;            /* address -> link it sent authentic packets
	                                 * for, while the link has not moved there */
	struct srclimit *srclimit;      /* per-source buckets and pending sessions */
	struct event *pending_timer;
	/* handshake rate limit (token bucket) */
	double hs_tokens;
	struct timespec hs_last;
	/* rebinding attempts (unknown address, maybe a known session) */
	double rb_tokens;
	struct timespec rb_last;
	struct wire_stats stats;
};

static struct log_ratelimit wire_bad_rl = LOG_RATELIMIT_INIT(30.0, 2);    /* ignored datagrams */
static struct log_ratelimit wire_limit_rl = LOG_RATELIMIT_INIT(30.0, 1);  /* rate limit hit */
static struct log_ratelimit wire_src_rl = LOG_RATELIMIT_INIT(30.0, 2);    /* per-source limits */

/* Wall clock: HELLOs carry wall-clock minutes, the replay file an mtime. */
static uint64_t wall_ms(void)
{
	return (uint64_t)time(NULL) * 1000;
}

/* A peer's key: which carrier, then the address. */
static size_t link_key(unsigned idx, const struct sockaddr *sa, uint8_t *key)
{
	size_t n = netaddr_key(sa, key + 1);

	key[0] = (uint8_t)idx;
	return n > 0 ? n + 1 : 0;
}

/* ---------- server links ---------- */

struct carrier *wire_server_carrier(struct wire_link *l)
{
	if (l->srv.listener == NULL || l->srv.lc == NULL)
		return NULL;
	return l->srv.lc->c;
}

int wire_server_send(struct wire_link *l, const uint8_t *p, size_t n)
{
	struct carrier *c = wire_server_carrier(l);
	int r;

	if (c == NULL)
		return -1;
	r = carrier_send(c, (const struct sockaddr *)&l->srv.peer, l->srv.peerlen, p, n);
	l->srv.send_failed = r < 0;
	return r;
}

/* Forget the address l was seen at but has not moved to. */
static void moving_clear(struct wire_listener *wl, struct wire_link *l)
{
	if (l->srv.mv_keylen > 0 && hmap_get(wl->moving, l->srv.mv_key, l->srv.mv_keylen) == l)
		hmap_del(wl->moving, l->srv.mv_key, l->srv.mv_keylen);
	l->srv.mv_keylen = 0;
}

/*
 * l got an authentic, new packet from key's address without moving there
 * (its current address is not quiet yet): until it moves, that address's
 * packets go straight to l, not through the rate-limited search (port
 * hopping: a bulk upload would lose most packets meanwhile).  One address
 * per link; an address another link holds stays with it.
 */
static void moving_set(struct wire_listener *wl, struct wire_link *l,
                       const uint8_t *key, size_t keylen)
{
	if (hmap_get(wl->moving, key, keylen) != NULL)
		return;
	moving_clear(wl, l);
	if (keylen > sizeof(l->srv.mv_key) || hmap_put(wl->moving, key, keylen, l) < 0)
		return;
	memcpy(l->srv.mv_key, key, keylen);
	l->srv.mv_keylen = keylen;
}

void wire_server_detach(struct wire_link *l)
{
	if (l->srv.listener != NULL) {
		moving_clear(l->srv.listener, l);
		hmap_del(l->srv.listener->peers, l->srv.key, l->srv.keylen);
		if (l->state == LINK_PENDING)
			srclimit_pending_del(l->srv.listener->srclimit, l);
	}
	l->srv.listener = NULL;
	l->srv.lc = NULL;
}

static void cand_clear(struct wire_candidate *c)
{
	if (c->used) {
		wire_dir_clear(&c->tx);
		wire_dir_clear(&c->rx);
	}
	memset(c, 0, sizeof(*c));
}

void wire_server_clear(struct wire_link *l)
{
	wire_server_detach(l);
	for (unsigned k = 0; k < HS_ATTEMPTS_KEPT; k++)
		cand_clear(&l->srv.cand[k]);
}

/* Pending link: the first candidate that opens p becomes the session. */
static ssize_t pending_open(struct wire_link *l, const uint8_t *p, size_t n)
{
	for (unsigned i = 0; i < HS_ATTEMPTS_KEPT; i++) {
		struct wire_candidate *c = &l->srv.cand[i];
		ssize_t len;

		if (!c->used)
			continue;
		len = wire_open_packet(&c->rx, p, n, l->buf);
		if (len < 0)
			continue;
		l->tx = c->tx;
		l->rx = c->rx;
		memset(c, 0, sizeof(*c));   /* moved, not freed */
		for (unsigned k = 0; k < HS_ATTEMPTS_KEPT; k++)
			cand_clear(&l->srv.cand[k]);
		if (l->srv.listener != NULL)
			srclimit_pending_del(l->srv.listener->srclimit, l);
		l->state = LINK_UP;
		return len;
	}
	return -1;
}

/*
 * Open and hand up a data packet.  0, WIRE_REPLAY, or -1 (not authentic:
 * p is then as it came, for the caller to try as a HELLO).
 */
static int server_deliver(struct wire_link *l, uint8_t *p, size_t n)
{
	const uint8_t *pkt = l->buf;
	ssize_t len;

	if (n > sizeof(l->buf))
		return -1;
	if (l->state == LINK_PENDING)
		len = pending_open(l, p, n);
	else if (l->state == LINK_UP)
		len = wire_open_packet_inplace(&l->rx, p, n, &pkt);   /* no copy */
	else
		return -1;
	if (len == WIRE_REPLAY && l->state == LINK_UP && l->srv.mv_keylen > 0 &&
	    wire_packet_authentic(&l->rx, p, n, l->buf)) {
		/*
		 * A copy of this packet came first from another address (it is
		 * in `moving`): this address is alive all the same, so the
		 * session must not move there (an on-path copier racing the
		 * client's packets; a hop leaves the old address silent).
		 */
		l->srv.last_auth_rx = clock_now();
		return WIRE_REPLAY;
	}
	if (len < 0) {
		if (l->srv.listener != NULL)
			l->srv.listener->stats.data_bad++;
		return (int)len;   /* forged, damaged or replayed: dropped, nothing else */
	}
	if (l->srv.listener != NULL) {
		l->srv.last_auth_rx = clock_now();
		if (l->srv.lc != NULL)
			carrier_peer_ok(l->srv.lc->c, (const struct sockaddr *)&l->srv.peer);
	}
	wire_link_hand_up(l, pkt, (size_t)len);
	return 0;
}

/* ---------- rate limits ---------- */

/* Take one token from a bucket refilled at rate per second (burst rate). */
static int bucket_take(double *tokens, struct timespec *last, double rate)
{
	struct timespec now = clock_now();

	*tokens += clock_diff_ms(last, &now) / 1000.0 * rate;
	*last = now;
	if (*tokens > rate)
		*tokens = rate;
	if (*tokens < 1.0)
		return 0;
	*tokens -= 1.0;
	return 1;
}

static int hs_rate_ok(struct wire_listener *wl)
{
	return bucket_take(&wl->hs_tokens, &wl->hs_last, wl->cfg.hs_rate);
}

static int rb_rate_ok(struct wire_listener *wl)
{
	return bucket_take(&wl->rb_tokens, &wl->rb_last, WIRE_REBIND_RATE);
}

/* ---------- rebinding ---------- */

struct rebind_search {
	const uint8_t *p;
	size_t n;
	struct wire_link *found[4];
	int newest[4];
	unsigned nfound;
};

static void rebind_scan(void *value, void *arg)
{
	struct wire_link *l = value;
	struct rebind_search *rs = arg;
	int newest;

	if (rs->nfound >= 4 || l->state != LINK_UP)
		return;
	if (wire_packet_plausible(&l->rx, rs->p, rs->n, &newest)) {
		rs->found[rs->nfound] = l;
		rs->newest[rs->nfound] = newest;
		rs->nfound++;
	}
}

/* Point l at its new address (and carrier). */
static void rebind_move(struct wire_listener *wl, struct wire_link *l, struct wire_lcarrier *lc,
                        const struct sockaddr *from, socklen_t fromlen,
                        const uint8_t *key, size_t keylen)
{
	int moved_carrier = l->srv.lc != lc;

	moving_clear(wl, l);
	hmap_del(wl->peers, l->srv.key, l->srv.keylen);
	memcpy(&l->srv.peer, from, fromlen);
	l->srv.peerlen = fromlen;
	memcpy(l->srv.key, key, keylen);
	l->srv.keylen = keylen;
	l->srv.lc = lc;
	wl->stats.rebinds++;
	l->srv.last_auth_rx = clock_now();
	carrier_peer_ok(lc->c, from);
	if (moved_carrier) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		unsigned port = carrier_local_addr(lc->c, &ss, &sl) == 0 ?
		                netaddr_port((const struct sockaddr *)&ss) : 0;

		log_info("wire: a client moved to another path (%s, our port %u); following it",
		         carrier_is_tcp(lc->c) ? "TCP" : "UDP", port);
	}
	else
		log_info("wire: a client's address changed (NAT rebinding or a new "
		         "connection); following it");
}

/*
 * p from an address without a session, tried under l's keys: 1 if it
 * authenticated (and was delivered).  newest: its number is beyond all
 * that l accepted so far.
 */
static int rebind_try(struct wire_listener *wl, struct wire_link *l, struct wire_lcarrier *lc,
                      const struct sockaddr *from, socklen_t fromlen,
                      const uint8_t *key, size_t keylen, const uint8_t *p, size_t n,
                      int newest)
{
	ssize_t len = wire_open_packet(&l->rx, p, n, l->buf);

	if (len < 0)
		return 0;
	/*
	 * Move only if the current address has gone quiet: a copy of an
	 * in-flight packet raced from elsewhere must not redirect a live
	 * session (nor make us answer the copier).
	 */
	if (newest && (clock_ms_since(&l->srv.last_auth_rx) >= WIRE_REBIND_SILENCE_MS ||
	               l->srv.send_failed) &&
	    hmap_put(wl->peers, key, keylen, l) == 0)
		rebind_move(wl, l, lc, from, fromlen, key, keylen);
	else if (newest)
		moving_set(wl, l, key, keylen);
	wire_link_hand_up(l, l->buf, (size_t)len);
	return 1;
}

/*
 * A datagram from an address with no session: perhaps a client whose NAT
 * gave it a new address or port.  If it opens under an established
 * session's keys, the session follows it (when it is the newest packet
 * seen, so late packets from the old address do not pull it back).
 * Returns 1 if the datagram belonged to a session.
 */
static int listener_rebind(struct wire_listener *wl, struct wire_lcarrier *lc,
                           const struct sockaddr *from,
                           socklen_t fromlen, const uint8_t *key, size_t keylen,
                           const uint8_t *p, size_t n)
{
	struct rebind_search rs;

	if (n < WIRE_DATA_OVERHEAD + 1 || n > CARRIER_MAX_DATAGRAM || !rb_rate_ok(wl))
		return 0;
	memset(&rs, 0, sizeof(rs));
	rs.p = p;
	rs.n = n;
	hmap_foreach(wl->peers, rebind_scan, &rs);
	for (unsigned i = 0; i < rs.nfound; i++)
		if (rebind_try(wl, rs.found[i], lc, from, fromlen, key, keylen, p, n, rs.newest[i]))
			return 1;
	return 0;
}

/* ---------- admission ---------- */

/* Whether a parsed HELLO is fresh: in the clock window, never seen. */
static int hello_fresh(struct wire_listener *wl, const struct hs_server *hs)
{
	uint64_t now = wall_ms(), now_min = now / 60000;

	if (hs->minutes + wl->cfg.clock_skew_min < now_min ||
	    hs->minutes > now_min + wl->cfg.clock_skew_min) {
		wl->stats.hs_stale++;
		log_ratelimited(&wire_bad_rl, LOG_LEVEL_INFO,
		                "wire: ignored a handshake with a clock off by more than %u min",
		                wl->cfg.clock_skew_min);
		return 0;
	}
	if (replay_check(wl->replay, hs->replay_hash, now) != REPLAY_FRESH) {
		wl->stats.hs_replay++;
		log_ratelimited(&wire_bad_rl, LOG_LEVEL_INFO, "wire: ignored a replayed handshake");
		return 0;
	}
	return 1;
}

/* Another attempt by a client whose link is pending: one more candidate. */
static int admit_candidate(struct wire_listener *wl, struct wire_link *old,
                           const struct wire_session_keys *keys)
{
	struct wire_candidate *c = &old->srv.cand[old->srv.cand_next++ % HS_ATTEMPTS_KEPT];

	cand_clear(c);
	if (wire_dir_init(&c->tx, &keys->s2c, wl->cfg.epoch_shift) < 0 ||
	    wire_dir_init(&c->rx, &keys->c2s, wl->cfg.epoch_shift) < 0) {
		wire_dir_clear(&c->tx);
		wire_dir_clear(&c->rx);
		return -1;
	}
	c->used = 1;
	return 0;
}

/* A new pending link for a peer, with its first candidate; NULL on failure. */
static struct wire_link *admit_new(struct wire_listener *wl, struct wire_lcarrier *lc,
                                   const struct sockaddr *from, socklen_t fromlen,
                                   const uint8_t *key, size_t keylen,
                                   const struct wire_session_keys *keys)
{
	struct wire_link *l = wire_link_alloc(wl->base, &wl->cfg, 0, &wl->cfg.identity->cert);

	if (l == NULL)
		return NULL;
	if (wire_dir_init(&l->srv.cand[0].tx, &keys->s2c, wl->cfg.epoch_shift) < 0 ||
	    wire_dir_init(&l->srv.cand[0].rx, &keys->c2s, wl->cfg.epoch_shift) < 0) {
		wire_dir_clear(&l->srv.cand[0].tx);
		wire_dir_clear(&l->srv.cand[0].rx);
		wire_link_free(l);
		return NULL;
	}
	l->srv.cand[0].used = 1;
	l->srv.cand_next = 1;
	l->srv.lc = lc;
	l->state = LINK_PENDING;
	memcpy(&l->srv.peer, from, fromlen);
	l->srv.peerlen = fromlen;
	memcpy(l->srv.key, key, keylen);
	l->srv.keylen = keylen;
	return l;
}

/*
 * End a link the listener gives up on: the client started over from the
 * same address, or it stayed pending too long, or it gave way to a new
 * client.  The layer above hears of it through dead_cb.
 */
static void link_end(struct wire_listener *wl, struct wire_link *old, const char *why)
{
	if (old->state == LINK_PENDING)
		srclimit_pending_del(wl->srclimit, old);
	moving_clear(wl, old);
	hmap_del(wl->peers, old->srv.key, old->srv.keylen);
	old->srv.listener = NULL;
	old->state = LINK_FAILED;
	if (old->dead_cb != NULL) {
		wire_link_hold(old);
		old->dead_cb(old, why, old->dead_arg);
		wire_link_unhold(old);
	}
}

/*
 * The checks that cost no public-key work, cheapest first: the MAC (junk
 * and probes without the cert stop here, having cost one HMAC and spent no
 * token), a replayed HELLO, then the per-source buckets and the global
 * one.  0 if the HELLO may be verified.
 */
static int hello_precheck(struct wire_listener *wl, const struct sockaddr *from,
                          const uint8_t *p, size_t n, size_t *off, size_t *blen)
{
	uint8_t hash[WC_HASH_LEN];

	if (!hs_hello_locate(wl->mac, wl->mac_p, p, n, off, blen)) {
		wl->stats.hs_nomac++;
		log_ratelimited(&wire_bad_rl, LOG_LEVEL_INFO,
		                "wire: ignored datagram(s) that are no valid handshake");
		return -1;
	}
	if (hs_hello_replay_hash(wl->mac, p, n, *off, *blen, hash) < 0)
		return -1;
	if (replay_seen(wl->replay, hash)) {
		wl->stats.hs_replay++;
		log_ratelimited(&wire_bad_rl, LOG_LEVEL_INFO, "wire: ignored a replayed handshake");
		return -1;
	}
	if (!srclimit_hs_take(wl->srclimit, from, clock_now_ms())) {
		wl->stats.hs_src_limited++;
		log_ratelimited(&wire_src_rl, LOG_LEVEL_WARN,
		                "wire: handshakes from one source network over its rate limit; "
		                "ignoring some");
		return -1;
	}
	if (!hs_rate_ok(wl)) {
		wl->stats.hs_limited++;
		log_ratelimited(&wire_limit_rl, LOG_LEVEL_WARN,
		                "wire: handshake rate limit (%u/s) reached; ignoring some",
		                wl->cfg.hs_rate);
		return -1;
	}
	return 0;
}

/*
 * A pending slot for the new link l: refused when its source has too many
 * pending already, or every peer slot is taken and no pending session is
 * old enough to give way.  replaces: l takes over an established link of
 * the same address, whose slot it reuses.  0, or -1 (refused).
 */
static int admit_pending(struct wire_listener *wl, struct wire_link *l,
                         const struct sockaddr *from, int replaces)
{
	unsigned in_use = (unsigned)hmap_count(wl->peers) - (replaces ? 1 : 0);
	void *evicted = NULL;

	switch (srclimit_pending_add(wl->srclimit, from, clock_now_ms(), in_use,
	                             wl->cfg.max_peers, l, &evicted)) {
	case SRCLIMIT_ADMIT:
		return 0;
	case SRCLIMIT_ADMIT_EVICT:
		wl->stats.pending_evicted++;
		log_ratelimited(&wire_src_rl, LOG_LEVEL_INFO,
		                "wire: peer limit (%u) reached; a handshake that sent no data "
		                "gave way to a new one", wl->cfg.max_peers);
		link_end(wl, evicted, "it sent no data yet and gave way to a new client (server full)");
		return 0;
	case SRCLIMIT_REFUSE:
	default:
		break;
	}
	wl->stats.pending_refused++;
	if (in_use >= wl->cfg.max_peers)
		log_ratelimited(&wire_rl, LOG_LEVEL_WARN,
		                "wire: peer limit (%u) reached, new peer ignored", wl->cfg.max_peers);
	else
		log_ratelimited(&wire_src_rl, LOG_LEVEL_WARN,
		                "wire: too many unfinished handshakes from one source network; "
		                "new peer ignored");
	return -1;
}

/* Try to admit the sender of p as a new peer; 0 if it became one. */
static int listener_handshake(struct wire_listener *wl, struct wire_lcarrier *lc,
                              const struct sockaddr *from,
                              socklen_t fromlen, const uint8_t *key, size_t keylen,
                              const uint8_t *p, size_t n)
{
	struct hs_server hs;
	struct wire_session_keys keys;
	uint8_t f_priv[WC_KEY_LEN], r[WIRE_RAND_LEN], pad[HS_MAX], reply[HS_MAX];
	struct wire_link *l, *old;
	int rlen, rc = -1;
	size_t padlen, off, blen;

	if (n < HS_HELLO_MIN || n > HS_MAX)
		return -1;
	if (hello_precheck(wl, from, p, n, &off, &blen) < 0)
		return -1;
	if (hs_server_parse_body(wl->cfg.identity, p, n, off, blen, &hs) < 0) {
		wl->stats.hs_bad++;
		log_ratelimited(&wire_bad_rl, LOG_LEVEL_INFO,
		                "wire: ignored datagram(s) that are no valid handshake");
		return -1;
	}
	memset(&keys, 0, sizeof(keys));
	memset(f_priv, 0, sizeof(f_priv));
	if (!hello_fresh(wl, &hs))
		goto out;
	old = hmap_get(wl->peers, key, keylen);
	padlen = wire_pad_handshake(HS_REPLY_MIN, HS_MAX, wl->cfg.max_datagram,
	                            wl->cfg.hs_pad_min, wl->cfg.hs_pad_max, wc_random_range);
	memset(pad, 0, padlen);
	if (wc_random(f_priv, sizeof(f_priv)) < 0 || wc_random(r, sizeof(r)) < 0)
		goto out;
	rlen = hs_server_reply(wl->cfg.identity, &hs, f_priv, r, pad, padlen, p, n, reply, &keys);
	if (rlen < 0)
		goto out;
	if (old != NULL && old->state == LINK_PENDING) {
		if (admit_candidate(wl, old, &keys) < 0)
			goto out;
		wl->stats.hs_ok++;
		carrier_peer_ok(lc->c, from);
		(void)wire_server_send(old, reply, (size_t)rlen);
		rc = 0;
		goto out;
	}
	l = admit_new(wl, lc, from, fromlen, key, keylen, &keys);
	if (l == NULL)
		goto out;
	if (admit_pending(wl, l, from, old != NULL) < 0) {
		wire_link_free(l);   /* never attached: nothing else knows of it */
		goto out;
	}
	if (old != NULL)
		link_end(wl, old, "the peer started a new session");
	if (hmap_put(wl->peers, key, keylen, l) < 0) {
		srclimit_pending_del(wl->srclimit, l);
		wire_link_free(l);
		goto out;
	}
	l->srv.listener = wl;
	wl->stats.hs_ok++;
	l->srv.last_auth_rx = clock_now();
	carrier_peer_ok(lc->c, from);
	(void)wire_server_send(l, reply, (size_t)rlen);
	wire_link_hold(l);
	wl->accept_cb(wl, l, wl->accept_arg);
	wire_link_unhold(l);
	rc = 0;
out:
	wc_wipe(f_priv, sizeof(f_priv));
	wc_wipe(&keys, sizeof(keys));
	wc_wipe(&hs, sizeof(hs));
	return rc;
}

/* Pending sessions that sent no authentic data in time are ended. */
static void pending_tick(evutil_socket_t fd, short what, void *arg)
{
	struct wire_listener *wl = arg;
	struct wire_link *l;
	unsigned n = 0;

	/* Bounded: each call forgets one of at most max_peers entries. */
	while ((l = srclimit_pending_expired(wl->srclimit, clock_now_ms())) != NULL) {
		link_end(wl, l, "no data after the handshake");
		wl->stats.pending_expired++;
		n++;
	}
	if (n > 0)
		log_ratelimited(&wire_bad_rl, LOG_LEVEL_INFO,
		                "wire: ended %u session(s) that sent no data after the handshake", n);
}

static void listener_datagram(struct carrier *c, const struct sockaddr *from,
                              socklen_t fromlen, uint8_t *buf, size_t len,
                              void *arg)
{
	struct wire_lcarrier *lc = arg;
	struct wire_listener *wl = lc->wl;
	uint8_t key[HMAP_KEY_MAX];
	size_t keylen = link_key(lc->idx, from, key);
	struct wire_link *l;

	if (keylen == 0)
		return;
	l = hmap_get(wl->peers, key, keylen);
	if (l != NULL) {
		/*
		 * Not a packet of that session (and not a duplicate of one):
		 * perhaps the client starting over from the same address.
		 */
		if (server_deliver(l, buf, len) == -1 &&
		    listener_handshake(wl, lc, from, fromlen, key, keylen, buf, len) < 0)
			carrier_drop_peer(c, from);   /* TCP: only if never authenticated */
		return;
	}
	l = hmap_get(wl->moving, key, keylen);
	if (l != NULL && l->state == LINK_UP && len >= WIRE_DATA_OVERHEAD + 1) {
		int newest;

		/* An address l was seen at: its packets skip the search. */
		if (wire_packet_plausible(&l->rx, buf, len, &newest) &&
		    rebind_try(wl, l, lc, from, fromlen, key, keylen, buf, len, newest))
			return;
	}
	if (listener_rebind(wl, lc, from, fromlen, key, keylen, buf, len))
		return;
	if (listener_handshake(wl, lc, from, fromlen, key, keylen, buf, len) < 0)
		carrier_drop_peer(c, from);   /* TCP: a probe; drained, never answered */
}

/* ---------- the listener ---------- */

/* One carrier for ep (at port, when it is a range). 0 or -1. */
static int listener_add_one(struct wire_listener *wl, const struct wire_endpoint *ep,
                            uint16_t port)
{
	struct wire_lcarrier *lc = &wl->lc[wl->nlc];
	struct sockaddr_storage ss = ep->addr;

	if (ep->port_hi != 0)
		wire_set_port(&ss, port);
	lc->wl = wl;
	lc->idx = wl->nlc;
	if (ep->tcp)
		lc->c = carrier_tcp_listen(wl->base, (const struct sockaddr *)&ss, ep->len,
		                           wl->frame_key, listener_datagram, lc);
	else
		lc->c = carrier_udp_new(wl->base, (const struct sockaddr *)&ss, ep->len,
		                        NULL, 0, listener_datagram, lc);
	if (lc->c == NULL)
		return -1;
	if (ep->tcp && wl->cfg.decoy_len > 0)
		carrier_tcp_set_decoy(lc->c, (const struct sockaddr *)&wl->cfg.decoy,
		                      wl->cfg.decoy_len);
	wl->nlc++;
	return 0;
}

int wire_listener_add(struct wire_listener *wl, const struct wire_endpoint *ep)
{
	unsigned lo = netaddr_port((const struct sockaddr *)&ep->addr), hi = lo, first;

	if (wl->nep >= WIRE_MAX_LISTEN) {
		log_err("wire: at most %d listen endpoints", WIRE_MAX_LISTEN);
		return -1;
	}
	if (ep->port_hi != 0) {
		hi = ep->port_hi;
		if (ep->tcp || lo == 0 || hi <= lo ||
		    wl->hop_ports + (hi - lo + 1) > WIRE_MAX_HOP_PORTS) {
			log_err("wire: UDP port ranges hold at most %d ports together",
			        WIRE_MAX_HOP_PORTS);
			return -1;
		}
		/* One descriptor per port: refuse rather than starve streams. */
		if (!fd_budget_take(hi - lo + 1, FD_BUDGET_RESERVE + 64)) {
			log_err("wire: not enough file descriptors for %u ports (raise ulimit -n "
			        "or use a smaller range)", hi - lo + 1);
			return -1;
		}
	}
	first = wl->nlc;
	for (unsigned port = lo; port <= hi; port++) {
		if (listener_add_one(wl, ep, (uint16_t)port) < 0) {
			while (wl->nlc > first)
				carrier_free(wl->lc[--wl->nlc].c);
			if (ep->port_hi != 0)
				fd_budget_release(hi - lo + 1);
			return -1;
		}
	}
	if (ep->port_hi != 0)
		wl->hop_ports += hi - lo + 1;
	wl->ep_first[wl->nep++] = first;
	return 0;
}

struct wire_listener *wire_listener_new(struct event_base *base,
                                        const struct wire_endpoint *ep,
                                        const struct wire_config *cfg,
                                        wire_accept_cb cb, void *arg)
{
	struct wire_listener *wl = calloc(1, sizeof(*wl));
	/* Replay entries must outlive the accepted clock window on both sides. */
	uint64_t period_ms = (uint64_t)(2 * cfg->clock_skew_min + 1) * 60 * 1000;
	struct timeval tick = { 0, WIRE_PENDING_TICK_MS * 1000 };
	struct srclimit_config slc;
	uint8_t mac_key[WC_KEY_LEN];
	uint64_t seed;

	if (wl == NULL)
		return NULL;
	if (cfg->identity == NULL) {
		log_err("wire: a server needs its identity key");
		free(wl);
		return NULL;
	}
	wl->base = base;
	wl->cfg = *cfg;
	wl->accept_cb = cb;
	wl->accept_arg = arg;
	wl->hs_tokens = cfg->hs_rate;
	wl->hs_last = clock_now();
	wl->rb_tokens = WIRE_REBIND_RATE;
	wl->rb_last = wl->hs_last;
	wl->peers = hmap_new();
	wl->moving = hmap_new();
	wl->replay = replay_new(period_ms, REPLAY_MAX, wall_ms());
	srclimit_config_defaults(&slc, cfg->max_peers);
	if (wc_random((uint8_t *)&seed, sizeof(seed)) < 0)
		goto fail;
	wl->srclimit = srclimit_new(&slc, seed);
	wl->pending_timer = event_new(base, -1, EV_PERSIST, pending_tick, wl);
	if (wl->peers == NULL || wl->moving == NULL || wl->replay == NULL || wl->srclimit == NULL ||
	    wl->pending_timer == NULL || event_add(wl->pending_timer, &tick) < 0)
		goto fail;
	if (hs_mac_key(&cfg->identity->cert, mac_key) < 0)
		goto fail;
	wl->mac = wc_hmac_new(mac_key, sizeof(mac_key));
	if (hs_mac_key_prefixed(&cfg->identity->cert, mac_key) == 0)
		wl->mac_p = wc_hmac_new(mac_key, sizeof(mac_key));
	wc_wipe(mac_key, sizeof(mac_key));
	if (wl->mac == NULL || wl->mac_p == NULL || wire_frame_key(&cfg->identity->cert, wl->frame_key) < 0 ||
	    wire_listener_add(wl, ep) < 0)
		goto fail;
	if (cfg->replay_file != NULL)
		(void)replay_file_attach(wl->replay, cfg->replay_file, wall_ms());   /* logged */
	return wl;
fail:
	if (wl->pending_timer != NULL)
		event_free(wl->pending_timer);
	srclimit_free(wl->srclimit);
	hmap_free(wl->peers);
	hmap_free(wl->moving);
	replay_free(wl->replay);
	wc_hmac_free(wl->mac);
	wc_hmac_free(wl->mac_p);
	wc_wipe(wl->frame_key, sizeof(wl->frame_key));
	free(wl);
	return NULL;
}

static void link_orphan(void *value, void *arg)
{
	struct wire_link *l = value;

	l->srv.listener = NULL;
	l->srv.lc = NULL;
}

void wire_listener_free(struct wire_listener *wl)
{
	if (wl == NULL)
		return;
	hmap_foreach(wl->peers, link_orphan, NULL);
	hmap_free(wl->peers);
	hmap_free(wl->moving);
	replay_free(wl->replay);
	event_free(wl->pending_timer);
	srclimit_free(wl->srclimit);
	for (unsigned i = 0; i < wl->nlc; i++)
		carrier_free(wl->lc[i].c);
	wc_hmac_free(wl->mac);
	wc_hmac_free(wl->mac_p);
	wc_wipe(wl->frame_key, sizeof(wl->frame_key));
	free(wl);
}

int wire_listener_local_addr(const struct wire_listener *wl, unsigned idx,
                             struct sockaddr_storage *ss, socklen_t *len)
{
	if (idx >= wl->nep)
		return -1;
	return carrier_local_addr(wl->lc[wl->ep_first[idx]].c, ss, len);
}

unsigned wire_listener_peers(const struct wire_listener *wl)
{
	return (unsigned)hmap_count(wl->peers);
}

void wire_listener_stats(const struct wire_listener *wl, struct wire_stats *st)
{
	*st = wl->stats;
}
