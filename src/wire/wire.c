/*
 * Wire layer; see wire.h and docs/PROTOCOL.md.
 *
 * Server: peers are demultiplexed by carrier address (hash map bounded by
 * max_peers).  A datagram from an unknown address is checked as a HELLO:
 * rate-limited (each check costs an X25519), authentic, within the clock
 * window, and not seen before (replay filter).  Only then does the peer get
 * state and a REPLY.  Failures are silent on the wire.
 *
 * Client: HELLOs are sent with fresh keys and randomness every attempt
 * (a resent HELLO would be a replay) until a REPLY authenticates or the
 * handshake timeout passes.
 */
#include "wire/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <event2/event.h>

#include "carrier/carrier.h"
#include "util/bytes.h"
#include "util/hmap.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "wire/seal.h"

#define HS_ATTEMPTS_KEPT 4          /* client: HELLOs a REPLY may answer */
#define HS_FIRST_RETRY_MS 1000
#define REPLAY_MAX 200000           /* remembered HELLOs per generation */
#define WIRE_REBIND_RATE 2000.0     /* rebinding checks per second */
#define WIRE_REBIND_SILENCE_MS 1500 /* a session moves only after this much quiet */
#define WIRE_FILL_THRESHOLD 192     /* pad packets this close to the MTU to it
                                     * (usrsctp's bulk packets end ~140 short) */
#define WIRE_PAD_BUCKET 32          /* small packets are a multiple of this */

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
	struct timespec last_rx;
	struct timespec created;
	unsigned idx;
};

struct wire_listener {
	struct event_base *base;
	struct wire_lcarrier lc[WIRE_MAX_LISTEN];
	unsigned nlc;
	uint8_t frame_key[32];          /* TCP length masks */
	struct hmap *peers;            /* peer key -> struct wire_link */
	struct wire_config cfg;
	wire_accept_cb accept_cb;
	void *accept_arg;
	/* replay filter: two generations of HELLO hashes */
	struct hmap *seen, *seen_prev;
	time_t seen_rotated;
	FILE *replay_f;                /* append log of `seen`, if configured */
	/* handshake rate limit (token bucket) */
	double hs_tokens;
	struct timespec hs_last;
	/* rebinding attempts (unknown address, maybe a known session) */
	double rb_tokens;
	struct timespec rb_last;
	struct wire_stats stats;
};

struct wire_link {
	struct wire_listener *listener;   /* server side, else NULL */
	struct wire_lcarrier *lc;         /* server side: where the peer is */
	/* client side: the paths, and which one carries traffic */
	struct wire_path paths[WIRE_MAX_PATHS];
	unsigned npaths, active;
	struct event *path_timer;
	struct timespec last_tx, switched_at;
	uint8_t frame_key[32];
	wire_path_cb path_cb;
	void *path_arg;
	char last_path_err[300];          /* client: why a path's carrier last ended */
	struct timespec last_auth_rx;     /* server: last authentic packet from `peer` */
	int cb_depth;                     /* client: inside a carrier callback */
	int send_failed;                  /* server: the last send to `peer` failed
	                                   * (e.g. its TCP connection is gone) */
	int free_pending;                 /* wire_link_free() deferred until it returns */
	struct event_base *base;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	uint8_t key[HMAP_KEY_MAX];
	size_t keylen;
	struct wire_config cfg;
	enum link_state state;
	struct wire_dir tx, rx;
	struct wire_candidate cand[HS_ATTEMPTS_KEPT];   /* server, while pending */
	unsigned cand_next;
	wire_recv_cb recv_cb;
	void *recv_arg;
	wire_dead_cb dead_cb;
	void *dead_arg;
	/* client handshake */
	wire_ready_cb ready_cb;
	void *ready_arg;
	struct hs_client *hs[HS_ATTEMPTS_KEPT];
	unsigned hs_next;
	struct event *hs_timer;
	struct timespec hs_start;
	unsigned hs_retry_ms;
	uint8_t buf[CARRIER_MAX_DATAGRAM];   /* seal/open scratch */
};

/* Separate budgets, so noise from one cause never hides another. */
static struct log_ratelimit wire_rl = LOG_RATELIMIT_INIT(30.0, 3);        /* warnings */
static struct log_ratelimit wire_bad_rl = LOG_RATELIMIT_INIT(30.0, 2);    /* ignored datagrams */
static struct log_ratelimit wire_limit_rl = LOG_RATELIMIT_INIT(30.0, 1);  /* rate limit hit */

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

static uint32_t rand_range(unsigned lo, unsigned hi)
{
	uint32_t r;

	if (hi <= lo)
		return lo;
	if (wc_random((uint8_t *)&r, sizeof(r)) < 0)
		return lo;
	return lo + r % (hi - lo + 1);
}

static double ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) * 1000 + (double)(now.tv_nsec - t->tv_nsec) / 1e6;
}

/* The key of the TCP framing, from the bridge secret (docs/PROTOCOL.md). */
static int frame_key(const struct wire_cert *cert, uint8_t out[32])
{
	static const uint8_t salt[] = "sctpt tcp frame key";

	return wc_hkdf(salt, sizeof(salt) - 1, cert->secret, sizeof(cert->secret),
	               cert->pub, sizeof(cert->pub), out, 32);
}

/* A peer's key: which carrier, then the address. */
static size_t link_key(unsigned idx, const struct sockaddr *sa, uint8_t *key)
{
	size_t n = netaddr_key(sa, key + 1);

	key[0] = (uint8_t)idx;
	return n > 0 ? n + 1 : 0;
}


static struct wire_link *link_new(struct event_base *base, const struct wire_config *cfg)
{
	struct wire_link *l = calloc(1, sizeof(*l));

	if (l != NULL) {
		l->base = base;
		l->cfg = *cfg;
	}
	return l;
}

static int path_open(struct wire_path *pa);

static int link_send_raw(struct wire_link *l, const uint8_t *p, size_t n)
{
	if (l->listener != NULL && l->lc != NULL) {
		int r = carrier_send(l->lc->c, (const struct sockaddr *)&l->peer, l->peerlen, p, n);

		l->send_failed = r < 0;
		return r;
	}
	if (l->npaths > 0) {
		struct wire_path *pa = &l->paths[l->active];

		clock_gettime(CLOCK_MONOTONIC, &l->last_tx);
		if (pa->c == NULL && path_open(pa) < 0)
			return -1;
		return carrier_send(pa->c, NULL, 0, p, n);
	}
	return -1;
}

/* Open and hand up a data packet.  0, WIRE_REPLAY, or -1 (not authentic). */
static void cand_clear(struct wire_candidate *c)
{
	if (c->used) {
		wire_dir_clear(&c->tx);
		wire_dir_clear(&c->rx);
	}
	memset(c, 0, sizeof(*c));
}

/* Pending server link: the first candidate that opens p becomes the session. */
static ssize_t pending_open(struct wire_link *l, const uint8_t *p, size_t n)
{
	for (unsigned i = 0; i < HS_ATTEMPTS_KEPT; i++) {
		struct wire_candidate *c = &l->cand[i];
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
			cand_clear(&l->cand[k]);
		l->state = LINK_UP;
		return len;
	}
	return -1;
}

static int link_deliver(struct wire_link *l, const uint8_t *p, size_t n)
{
	ssize_t len;

	if (n > sizeof(l->buf))
		return -1;
	if (l->state == LINK_PENDING)
		len = pending_open(l, p, n);
	else if (l->state == LINK_UP)
		len = wire_open_packet(&l->rx, p, n, l->buf);
	else
		return -1;
	if (len < 0) {
		if (l->listener != NULL)
			l->listener->stats.data_bad++;
		return (int)len;   /* forged, damaged or replayed: dropped, nothing else */
	}
	if (l->listener != NULL) {
		clock_gettime(CLOCK_MONOTONIC, &l->last_auth_rx);
		if (l->lc != NULL)
			carrier_peer_ok(l->lc->c, (const struct sockaddr *)&l->peer);
	}
	if (l->recv_cb != NULL)
		l->recv_cb(l, l->buf, (size_t)len, l->recv_arg);
	return 0;
}

/* ---------- server ---------- */

/* Take one token from a bucket refilled at rate per second (burst rate). */
static int bucket_take(double *tokens, struct timespec *last, double rate)
{
	struct timespec now;
	double dt;

	clock_gettime(CLOCK_MONOTONIC, &now);
	dt = (double)(now.tv_sec - last->tv_sec) + (double)(now.tv_nsec - last->tv_nsec) / 1e9;
	*last = now;
	*tokens += dt * rate;
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

/*
 * The replay filter on disk: every remembered HELLO hash (16 bytes) is
 * appended to FILE; at each rotation FILE becomes FILE.prev.  A restarted
 * server loads both, so a HELLO captured before the restart cannot be
 * replayed within the clock window after it.
 */
static FILE *replay_file_open(const char *path, const char *mode)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (mode[0] == 'a' ? O_APPEND : O_TRUNC);
	int fd = open(path, flags, 0600);
	FILE *f;

	if (fd < 0)
		return NULL;
	f = fdopen(fd, mode);
	if (f == NULL)
		close(fd);
	return f;
}

static void replay_file_load(struct wire_listener *wl, const char *path, time_t max_age)
{
	uint8_t hash[16];
	struct stat st;
	FILE *f;
	size_t n = 0;

	if (stat(path, &st) < 0 || time(NULL) - st.st_mtime > max_age)
		return;
	f = fopen(path, "rb");
	if (f == NULL)
		return;
	/* Into the previous generation: it is forgotten at the next rotation,
	 * by when every HELLO from before the restart is out of the window,
	 * and it never fills the current one. */
	while (n < REPLAY_MAX && fread(hash, sizeof(hash), 1, f) == 1) {
		if (hmap_count(wl->seen_prev) >= REPLAY_MAX)
			break;
		(void)hmap_put(wl->seen_prev, hash, sizeof(hash), (void *)1);
		n++;
	}
	fclose(f);
}

static void replay_file_rotate(struct wire_listener *wl)
{
	char prev[1100];

	if (wl->cfg.replay_file == NULL)
		return;
	if (wl->replay_f != NULL)
		fclose(wl->replay_f);
	snprintf(prev, sizeof(prev), "%s.prev", wl->cfg.replay_file);
	(void)rename(wl->cfg.replay_file, prev);
	wl->replay_f = replay_file_open(wl->cfg.replay_file, "w");
	if (wl->replay_f == NULL)
		log_warn("wire: cannot write the replay filter file %s: %s; keeping it in "
		         "memory only", wl->cfg.replay_file, strerror(errno));
}

static void replay_file_init(struct wire_listener *wl)
{
	time_t period = (time_t)(2 * wl->cfg.clock_skew_min + 1) * 60;
	char prev[1100];

	if (wl->cfg.replay_file == NULL)
		return;
	snprintf(prev, sizeof(prev), "%s.prev", wl->cfg.replay_file);
	replay_file_load(wl, prev, 2 * period);
	replay_file_load(wl, wl->cfg.replay_file, 2 * period);
	if (hmap_count(wl->seen_prev) > 0)
		log_info("wire: %zu handshakes remembered from before the restart",
		         hmap_count(wl->seen_prev));
	{
		struct stat st;
		int fresh = stat(wl->cfg.replay_file, &st) == 0 &&
		            time(NULL) - st.st_mtime <= 2 * period;

		/* Keep appending to a current file; start over a stale one. */
		wl->replay_f = replay_file_open(wl->cfg.replay_file, fresh ? "a" : "w");
	}
	if (wl->replay_f == NULL)
		log_warn("wire: cannot write the replay filter file %s: %s; keeping it in "
		         "memory only", wl->cfg.replay_file, strerror(errno));
}

static int rb_rate_ok(struct wire_listener *wl)
{
	return bucket_take(&wl->rb_tokens, &wl->rb_last, WIRE_REBIND_RATE);
}

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
	for (unsigned i = 0; i < rs.nfound; i++) {
		struct wire_link *l = rs.found[i];
		ssize_t len = wire_open_packet(&l->rx, p, n, l->buf);

		if (len < 0)
			continue;
		/*
		 * Move only if the current address has gone quiet: a copy of an
		 * in-flight packet raced from elsewhere must not redirect a live
		 * session (nor make us answer the copier).
		 */
		if (rs.newest[i] &&
		    (ms_since(&l->last_auth_rx) >= WIRE_REBIND_SILENCE_MS || l->send_failed) &&
		    hmap_put(wl->peers, key, keylen, l) == 0) {
			hmap_del(wl->peers, l->key, l->keylen);
			int moved_carrier = l->lc != lc;

			memcpy(&l->peer, from, fromlen);
			l->peerlen = fromlen;
			memcpy(l->key, key, keylen);
			l->keylen = keylen;
			l->lc = lc;
			wl->stats.rebinds++;
			clock_gettime(CLOCK_MONOTONIC, &l->last_auth_rx);
			carrier_peer_ok(lc->c, from);
			if (moved_carrier)
				log_info("wire: a client moved to another path (%s); following it",
				         carrier_is_tcp(lc->c) ? "TCP" : "UDP");
			else
				log_info("wire: a client's address changed (NAT rebinding or a new "
				         "connection); following it");
		}
		if (l->recv_cb != NULL)
			l->recv_cb(l, l->buf, (size_t)len, l->recv_arg);
		return 1;
	}
	return 0;
}

/* 1 if hash was seen before (and remember it otherwise); -1 if full. */
static int replay_check(struct wire_listener *wl, const uint8_t hash[WC_HASH_LEN])
{
	time_t now = time(NULL);
	/* Entries must outlive the accepted clock window on both sides. */
	time_t period = (time_t)(2 * wl->cfg.clock_skew_min + 1) * 60;

	if (now - wl->seen_rotated >= period) {
		struct hmap *fresh = hmap_new();

		if (fresh != NULL) {
			hmap_free(wl->seen_prev);
			wl->seen_prev = wl->seen;
			wl->seen = fresh;
			wl->seen_rotated = now;
			replay_file_rotate(wl);
		}
	}
	if (hmap_get(wl->seen, hash, 16) != NULL || hmap_get(wl->seen_prev, hash, 16) != NULL)
		return 1;
	if (hmap_count(wl->seen) >= REPLAY_MAX)
		return -1;   /* fail closed: no new sessions until the next rotation */
	(void)hmap_put(wl->seen, hash, 16, (void *)1);
	if (wl->replay_f != NULL &&
	    (fwrite(hash, 16, 1, wl->replay_f) != 1 || fflush(wl->replay_f) != 0)) {
		log_warn("wire: cannot write the replay filter file %s: %s; keeping it in "
		         "memory only", wl->cfg.replay_file, strerror(errno));
		fclose(wl->replay_f);
		wl->replay_f = NULL;
	}
	return 0;
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
	uint64_t now_min = (uint64_t)time(NULL) / 60;
	struct wire_link *l, *old;
	int rlen, rc = -1;
	size_t padlen;

	if (n < HS_HELLO_MIN || n > HS_MAX)
		return -1;
	if (!hs_rate_ok(wl)) {
		wl->stats.hs_limited++;
		log_ratelimited(&wire_limit_rl, LOG_LEVEL_WARN,
		                "wire: handshake rate limit (%u/s) reached; ignoring some",
		                wl->cfg.hs_rate);
		return -1;
	}
	if (hs_server_parse(wl->cfg.identity, p, n, &hs) < 0) {
		wl->stats.hs_bad++;
		log_ratelimited(&wire_bad_rl, LOG_LEVEL_INFO,
		                "wire: ignored datagram(s) that are no valid handshake");
		return -1;
	}
	if (hs.minutes + wl->cfg.clock_skew_min < now_min ||
	    hs.minutes > now_min + wl->cfg.clock_skew_min) {
		wl->stats.hs_stale++;
		log_ratelimited(&wire_bad_rl, LOG_LEVEL_INFO,
		                "wire: ignored a handshake with a clock off by more than %u min",
		                wl->cfg.clock_skew_min);
		goto out;
	}
	if (replay_check(wl, hs.hello_hash) != 0) {
		wl->stats.hs_replay++;
		log_ratelimited(&wire_bad_rl, LOG_LEVEL_INFO, "wire: ignored a replayed handshake");
		goto out;
	}
	old = hmap_get(wl->peers, key, keylen);
	if (old == NULL && hmap_count(wl->peers) >= wl->cfg.max_peers) {
		log_ratelimited(&wire_rl, LOG_LEVEL_WARN,
		                "wire: peer limit (%u) reached, new peer ignored", wl->cfg.max_peers);
		goto out;
	}
	padlen = rand_range(wl->cfg.hs_pad_min, wl->cfg.hs_pad_max);
	if (padlen > HS_MAX - HS_REPLY_MIN)
		padlen = HS_MAX - HS_REPLY_MIN;
	if (padlen > wl->cfg.max_datagram - HS_REPLY_MIN)
		padlen = wl->cfg.max_datagram - HS_REPLY_MIN;
	memset(pad, 0, padlen);
	if (wc_random(f_priv, sizeof(f_priv)) < 0 || wc_random(r, sizeof(r)) < 0)
		goto out;
	rlen = hs_server_reply(wl->cfg.identity, &hs, f_priv, r, pad, padlen, p, n, reply, &keys);
	if (rlen < 0)
		goto out;
	if (old != NULL && old->state == LINK_PENDING) {
		/* Another attempt by a client that has not got a REPLY yet. */
		struct wire_candidate *c = &old->cand[old->cand_next++ % HS_ATTEMPTS_KEPT];

		cand_clear(c);
		if (wire_dir_init(&c->tx, &keys.s2c, wl->cfg.epoch_shift) < 0 ||
		    wire_dir_init(&c->rx, &keys.c2s, wl->cfg.epoch_shift) < 0) {
			wire_dir_clear(&c->tx);
			wire_dir_clear(&c->rx);
			goto out;
		}
		c->used = 1;
		wl->stats.hs_ok++;
		carrier_peer_ok(lc->c, from);
		(void)link_send_raw(old, reply, (size_t)rlen);
		rc = 0;
		goto out;
	}
	l = link_new(wl->base, &wl->cfg);
	if (l == NULL)
		goto out;
	if (wire_dir_init(&l->cand[0].tx, &keys.s2c, wl->cfg.epoch_shift) < 0 ||
	    wire_dir_init(&l->cand[0].rx, &keys.c2s, wl->cfg.epoch_shift) < 0) {
		wire_dir_clear(&l->cand[0].tx);
		wire_dir_clear(&l->cand[0].rx);
		free(l);
		goto out;
	}
	l->cand[0].used = 1;
	l->cand_next = 1;
	if (old != NULL) {
		/* The client started over from the same address: end the old one. */
		hmap_del(wl->peers, key, keylen);
		old->listener = NULL;
		old->state = LINK_FAILED;
		if (old->dead_cb != NULL)
			old->dead_cb(old, old->dead_arg);
	}
	l->listener = wl;
	l->lc = lc;
	l->state = LINK_PENDING;
	memcpy(&l->peer, from, fromlen);
	l->peerlen = fromlen;
	memcpy(l->key, key, keylen);
	l->keylen = keylen;
	if (hmap_put(wl->peers, key, keylen, l) < 0) {
		cand_clear(&l->cand[0]);
		free(l);
		goto out;
	}
	wl->stats.hs_ok++;
	clock_gettime(CLOCK_MONOTONIC, &l->last_auth_rx);
	carrier_peer_ok(lc->c, from);
	(void)link_send_raw(l, reply, (size_t)rlen);
	wl->accept_cb(wl, l, wl->accept_arg);
	rc = 0;
out:
	wc_wipe(f_priv, sizeof(f_priv));
	wc_wipe(&keys, sizeof(keys));
	wc_wipe(&hs, sizeof(hs));
	return rc;
}

static void listener_datagram(struct carrier *c, const struct sockaddr *from,
                              socklen_t fromlen, const uint8_t *buf, size_t len,
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
		if (link_deliver(l, buf, len) == -1 &&
		    listener_handshake(wl, lc, from, fromlen, key, keylen, buf, len) < 0)
			carrier_drop_peer(c, from);   /* TCP: only if never authenticated */
		return;
	}
	if (listener_rebind(wl, lc, from, fromlen, key, keylen, buf, len))
		return;
	if (listener_handshake(wl, lc, from, fromlen, key, keylen, buf, len) < 0)
		carrier_drop_peer(c, from);   /* TCP: a probe; drained, never answered */
}

int wire_listener_add(struct wire_listener *wl, const struct wire_endpoint *ep)
{
	struct wire_lcarrier *lc;

	if (wl->nlc >= WIRE_MAX_LISTEN) {
		log_err("wire: at most %d listen endpoints", WIRE_MAX_LISTEN);
		return -1;
	}
	lc = &wl->lc[wl->nlc];
	lc->wl = wl;
	lc->idx = wl->nlc;
	if (ep->tcp)
		lc->c = carrier_tcp_listen(wl->base, (const struct sockaddr *)&ep->addr, ep->len,
		                           wl->frame_key, listener_datagram, lc);
	else
		lc->c = carrier_udp_new(wl->base, (const struct sockaddr *)&ep->addr, ep->len,
		                        NULL, 0, listener_datagram, lc);
	if (lc->c == NULL)
		return -1;
	wl->nlc++;
	return 0;
}

struct wire_listener *wire_listener_new(struct event_base *base,
                                        const struct wire_endpoint *ep,
                                        const struct wire_config *cfg,
                                        wire_accept_cb cb, void *arg)
{
	struct wire_listener *wl = calloc(1, sizeof(*wl));

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
	clock_gettime(CLOCK_MONOTONIC, &wl->hs_last);
	wl->rb_tokens = WIRE_REBIND_RATE;
	wl->rb_last = wl->hs_last;
	wl->seen_rotated = time(NULL);
	wl->peers = hmap_new();
	wl->seen = hmap_new();
	wl->seen_prev = hmap_new();
	if (wl->peers == NULL || wl->seen == NULL || wl->seen_prev == NULL)
		goto fail;
	if (frame_key(&cfg->identity->cert, wl->frame_key) < 0 || wire_listener_add(wl, ep) < 0)
		goto fail;
	replay_file_init(wl);
	return wl;
fail:
	hmap_free(wl->peers);
	hmap_free(wl->seen);
	hmap_free(wl->seen_prev);
	free(wl);
	return NULL;
}

static void link_orphan(void *value, void *arg)
{
	struct wire_link *l = value;

	l->listener = NULL;
	l->lc = NULL;
}

void wire_listener_free(struct wire_listener *wl)
{
	if (wl == NULL)
		return;
	hmap_foreach(wl->peers, link_orphan, NULL);
	hmap_free(wl->peers);
	hmap_free(wl->seen);
	hmap_free(wl->seen_prev);
	if (wl->replay_f != NULL)
		fclose(wl->replay_f);
	for (unsigned i = 0; i < wl->nlc; i++)
		carrier_free(wl->lc[i].c);
	wc_wipe(wl->frame_key, sizeof(wl->frame_key));
	free(wl);
}

int wire_listener_local_addr(const struct wire_listener *wl, unsigned idx,
                             struct sockaddr_storage *ss, socklen_t *len)
{
	if (idx >= wl->nlc)
		return -1;
	return carrier_local_addr(wl->lc[idx].c, ss, len);
}

unsigned wire_listener_peers(const struct wire_listener *wl)
{
	return (unsigned)hmap_count(wl->peers);
}

void wire_listener_stats(const struct wire_listener *wl, struct wire_stats *st)
{
	*st = wl->stats;
}

/* ---------- client ---------- */

static void client_fail(struct wire_link *l, const char *why)
{
	l->state = LINK_FAILED;
	if (l->hs_timer != NULL)
		event_del(l->hs_timer);
	if (l->path_timer != NULL)
		event_del(l->path_timer);
	l->ready_cb(l, 0, why, l->ready_arg);   /* may free l */
}

static void client_send_hello(struct wire_link *l)
{
	struct hs_client *st;
	uint8_t e_priv[WC_KEY_LEN], r[WIRE_RAND_LEN], pad[HS_MAX], out[HS_MAX];
	size_t padlen = rand_range(l->cfg.hs_pad_min, l->cfg.hs_pad_max);
	unsigned slot = l->hs_next++ % HS_ATTEMPTS_KEPT;
	int n;

	if (padlen > HS_MAX - HS_HELLO_MIN)
		padlen = HS_MAX - HS_HELLO_MIN;
	if (padlen > l->cfg.max_datagram - HS_HELLO_MIN)
		padlen = l->cfg.max_datagram - HS_HELLO_MIN;
	if (l->hs[slot] == NULL)
		l->hs[slot] = calloc(1, sizeof(*l->hs[slot]));
	st = l->hs[slot];
	if (st == NULL || wc_random(e_priv, sizeof(e_priv)) < 0 || wc_random(r, sizeof(r)) < 0)
		return;
	memset(pad, 0, padlen);
	n = hs_client_hello(l->cfg.cert, st, e_priv, r, (uint64_t)time(NULL) / 60, pad,
	                    padlen, out);
	wc_wipe(e_priv, sizeof(e_priv));
	/* Attempts go round the paths: whichever answers carries the session. */
	l->active = (l->hs_next - 1) % l->npaths;
	if (n > 0)
		(void)link_send_raw(l, out, (size_t)n);
}

static void hs_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wire_link *l = arg;
	double elapsed_ms;
	struct timespec now;
	struct timeval tv;

	clock_gettime(CLOCK_MONOTONIC, &now);
	elapsed_ms = (double)(now.tv_sec - l->hs_start.tv_sec) * 1000 +
	             (double)(now.tv_nsec - l->hs_start.tv_nsec) / 1e6;
	if (elapsed_ms >= l->cfg.handshake_timeout_ms) {
		char why[400];

		if (l->last_path_err[0] != '\0')
			snprintf(why, sizeof(why), "no answer from server (last error: %s)",
			         l->last_path_err);
		else
			snprintf(why, sizeof(why), "%s",
			         "no answer from server: wrong cert= or the path is blocked");
		client_fail(l, why);
		return;
	}
	client_send_hello(l);
	l->hs_retry_ms = l->hs_retry_ms * 2 > 4000 ? 4000 : l->hs_retry_ms * 2;
	{
		/* Never wait past the deadline: the failure report is due then. */
		double left = l->cfg.handshake_timeout_ms - elapsed_ms;
		unsigned ms = l->hs_retry_ms < left ? l->hs_retry_ms : (unsigned)left + 1;

		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
	}
	event_add(l->hs_timer, &tv);
}

static void client_handshake_input(struct wire_link *l, const uint8_t *p, size_t n)
{
	struct wire_session_keys keys;

	for (unsigned i = 0; i < HS_ATTEMPTS_KEPT; i++) {
		struct hs_client *st = l->hs[i];

		if (st == NULL || st->hello_len == 0)
			continue;
		if (hs_client_finish(l->cfg.cert, st, p, n, &keys) == 0) {
			int ok = wire_dir_init(&l->tx, &keys.c2s, l->cfg.epoch_shift) == 0 &&
			         wire_dir_init(&l->rx, &keys.s2c, l->cfg.epoch_shift) == 0;

			wc_wipe(&keys, sizeof(keys));
			for (unsigned k = 0; k < HS_ATTEMPTS_KEPT; k++) {
				if (l->hs[k] != NULL)
					wc_wipe(l->hs[k], sizeof(*l->hs[k]));
				free(l->hs[k]);
				l->hs[k] = NULL;
			}
			event_del(l->hs_timer);
			if (!ok) {
				client_fail(l, "cannot set up session keys");
				return;
			}
			l->state = LINK_UP;
			l->ready_cb(l, 1, NULL, l->ready_arg);
			return;
		}
	}
	/* Not an answer to us: ignore, like everything unauthentic. */
}

static void client_datagram_in(struct wire_link *l, struct wire_path *pa,
                               const uint8_t *buf, size_t len);

static void client_datagram(struct carrier *c, const struct sockaddr *from,
                            socklen_t fromlen, const uint8_t *buf, size_t len,
                            void *arg)
{
	struct wire_path *pa = arg;
	struct wire_link *l = pa->l;

	if (l->free_pending)
		return;
	l->cb_depth++;
	client_datagram_in(l, pa, buf, len);
	l->cb_depth--;
}

static void client_datagram_in(struct wire_link *l, struct wire_path *pa,
                               const uint8_t *buf, size_t len)
{
	/* Connected carriers: the kernel already filtered the source. */
	if (l->state == LINK_HANDSHAKE) {
		client_handshake_input(l, buf, len);
		if (l->state == LINK_UP) {
			l->active = pa->idx;
			clock_gettime(CLOCK_MONOTONIC, &pa->last_rx);
			l->switched_at = pa->last_rx;
		}
	} else if (l->state == LINK_UP) {
		if (link_deliver(l, buf, len) == 0)
			clock_gettime(CLOCK_MONOTONIC, &pa->last_rx);
	}
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

	if (pa->c != c)
		return;
	path_label(pa, label, sizeof(label));
	snprintf(msg, sizeof(msg), "%s: %s", label, why);
	log_ratelimited(&wire_rl, LOG_LEVEL_WARN, "wire: %s", msg);
	snprintf(l->last_path_err, sizeof(l->last_path_err), "%s", msg);
	/* Freed from the timer: we are inside its callback. */
	carrier_free(pa->dead);
	pa->dead = c;
	pa->c = NULL;
	if (l->path_cb != NULL && l->state == LINK_UP)
		l->path_cb(l, msg, l->path_arg);
}

/* Create the path's carrier (again).  0 or -1. */
static int path_open(struct wire_path *pa)
{
	struct wire_link *l = pa->l;
	const struct sockaddr *bind = NULL;
	socklen_t bindlen = 0;

	/* A broken TCP or proxied path is re-tried at most once a second. */
	if (pa->created.tv_sec != 0 && ms_since(&pa->created) < 1000 &&
	    (pa->ep.tcp || l->cfg.proxy != NULL))
		return -1;
	if (l->cfg.bind_addr != NULL && l->cfg.bind_addr->sa_family == pa->ep.addr.ss_family) {
		bind = l->cfg.bind_addr;
		bindlen = l->cfg.bind_len;
	}
	clock_gettime(CLOCK_MONOTONIC, &pa->created);
	if (pa->ep.tcp)
		pa->c = carrier_tcp_connect(l->base, bind, bindlen,
		                            (const struct sockaddr *)&pa->ep.addr, pa->ep.len,
		                            l->cfg.proxy, l->frame_key, client_datagram, pa);
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

	for (unsigned i = 0; i < l->npaths; i++) {
		carrier_free(l->paths[i].dead);
		l->paths[i].dead = NULL;
	}
	if (l->state != LINK_UP)
		return;
	act = &l->paths[l->active];
	if (act->c == NULL)
		(void)path_open(act);   /* TCP broke: reconnect (the server follows) */
	if (l->npaths < 2)
		return;
	silent = (double)(l->last_tx.tv_sec - act->last_rx.tv_sec) * 1000 +
	         (double)(l->last_tx.tv_nsec - act->last_rx.tv_nsec) / 1e6;
	if ((silent > l->cfg.path_timeout_ms && ms_since(&l->switched_at) > l->cfg.path_timeout_ms)
	    || (act->c == NULL && act->ep.tcp && ms_since(&act->created) < 1000)) {
		char from[200], to[200], msg[500];
		struct wire_path *next = &l->paths[(l->active + 1) % l->npaths];

		path_label(act, from, sizeof(from));
		path_label(next, to, sizeof(to));
		snprintf(msg, sizeof(msg), "%s stopped delivering; moving to %s", from, to);
		log_warn("wire: %s", msg);
		l->active = next->idx;
		clock_gettime(CLOCK_MONOTONIC, &l->switched_at);
		next->last_rx = l->switched_at;    /* give it its own full timeout */
		if (next->c == NULL)
			(void)path_open(next);
		if (l->path_cb != NULL)
			l->path_cb(l, msg, l->path_arg);
	}
}

struct wire_link *wire_link_connect(struct event_base *base,
                                    const struct wire_endpoint *eps, unsigned n,
                                    const struct wire_config *cfg,
                                    wire_ready_cb cb, void *arg)
{
	struct wire_link *l;
	struct timeval tv = { HS_FIRST_RETRY_MS / 1000, (HS_FIRST_RETRY_MS % 1000) * 1000 };
	struct timeval tick = { 0, 200000 };

	if (cfg->cert == NULL) {
		log_err("wire: a client needs the server's cert");
		return NULL;
	}
	if (n == 0 || n > WIRE_MAX_PATHS)
		return NULL;
	l = link_new(base, cfg);
	if (l == NULL)
		return NULL;
	if (l->cfg.path_timeout_ms == 0)
		l->cfg.path_timeout_ms = 2000;
	memcpy(&l->peer, &eps[0].addr, eps[0].len);
	l->peerlen = eps[0].len;
	l->ready_cb = cb;
	l->ready_arg = arg;
	l->state = LINK_HANDSHAKE;
	l->hs_retry_ms = HS_FIRST_RETRY_MS;
	clock_gettime(CLOCK_MONOTONIC, &l->hs_start);
	l->npaths = n;
	for (unsigned i = 0; i < n; i++) {
		l->paths[i].l = l;
		l->paths[i].ep = eps[i];
		l->paths[i].idx = i;
	}
	l->hs_timer = evtimer_new(base, hs_timer_cb, l);
	l->path_timer = event_new(base, -1, EV_PERSIST, path_timer_cb, l);
	if (l->hs_timer == NULL || l->path_timer == NULL ||
	    frame_key(cfg->cert, l->frame_key) < 0 || path_open(&l->paths[0]) < 0 ||
	    event_add(l->path_timer, &tick) < 0) {
		wire_link_free(l);
		return NULL;
	}
	client_send_hello(l);
	event_add(l->hs_timer, &tv);
	return l;
}

void wire_link_set_path_cb(struct wire_link *l, wire_path_cb cb, void *arg)
{
	l->path_cb = cb;
	l->path_arg = arg;
}

/* ---------- both ---------- */

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
	size_t room, padlen;
	ssize_t n;

	if (l->state != LINK_UP || len + WIRE_DATA_OVERHEAD > l->cfg.max_datagram) {
		if (l->state == LINK_UP)
			log_ratelimited(&wire_rl, LOG_LEVEL_WARN,
			                "wire: packet of %zu bytes exceeds the MTU (%zu); dropped",
			                len, l->cfg.max_datagram);
		return -1;
	}
	room = l->cfg.max_datagram - len - WIRE_DATA_OVERHEAD;
	/*
	 * Near-full packets are filled to exactly the MTU: bulk traffic is
	 * then uniform full-size datagrams (nothing to learn from their
	 * lengths, and the carrier can batch them with GSO).  Smaller ones
	 * get random padding.
	 */
	if (room <= WIRE_FILL_THRESHOLD) {
		padlen = room;
	} else {
		/*
		 * Optional random padding, then round up to a bucket: exact
		 * lengths stay hidden while runs of small packets (SACKs) keep
		 * equal sizes, which GRO needs to batch them.
		 */
		size_t total;

		padlen = rand_range(l->cfg.pad_min, l->cfg.pad_max);
		total = len + WIRE_DATA_OVERHEAD + padlen;
		padlen += (WIRE_PAD_BUCKET - total % WIRE_PAD_BUCKET) % WIRE_PAD_BUCKET;
	}
	if (padlen > room)
		padlen = room;
	n = wire_seal_packet(&l->tx, pkt, len, padlen, l->buf);
	if (n < 0) {
		log_ratelimited(&wire_rl, LOG_LEVEL_WARN, "wire: cannot seal a packet");
		return -1;
	}
	return link_send_raw(l, l->buf, (size_t)n);
}

size_t wire_link_mtu(const struct wire_link *l)
{
	return l->cfg.max_datagram - WIRE_DATA_OVERHEAD;
}

const struct sockaddr *wire_link_peer(const struct wire_link *l, socklen_t *len)
{
	if (l->npaths > 0) {
		const struct wire_path *pa = &l->paths[l->active];

		if (len != NULL)
			*len = pa->ep.len;
		return (const struct sockaddr *)&pa->ep.addr;
	}
	if (len != NULL)
		*len = l->peerlen;
	return (const struct sockaddr *)&l->peer;
}

static void link_free_now(struct wire_link *l);

static void link_free_deferred(evutil_socket_t fd, short what, void *arg)
{
	link_free_now(arg);
}

void wire_link_free(struct wire_link *l)
{
	struct timeval zero = { 0, 0 };

	if (l == NULL || l->free_pending)
		return;
	/*
	 * Inside one of its carriers' callbacks (e.g. the handshake finished
	 * and the layer above gave up on the link at once): the carrier is
	 * still walking its batch, so free from the loop instead.
	 */
	if (l->cb_depth > 0) {
		l->free_pending = 1;
		if (event_base_once(l->base, -1, EV_TIMEOUT, link_free_deferred, l, &zero) == 0)
			return;
		l->free_pending = 0;   /* cannot defer: free now as before */
	}
	link_free_now(l);
}

static void link_free_now(struct wire_link *l)
{
	if (l->listener != NULL)
		hmap_del(l->listener->peers, l->key, l->keylen);
	for (unsigned i = 0; i < l->npaths; i++) {
		carrier_free(l->paths[i].c);
		carrier_free(l->paths[i].dead);
	}
	if (l->path_timer != NULL)
		event_free(l->path_timer);
	if (l->hs_timer != NULL)
		event_free(l->hs_timer);
	wc_wipe(l->frame_key, sizeof(l->frame_key));
	for (unsigned k = 0; k < HS_ATTEMPTS_KEPT; k++) {
		if (l->hs[k] != NULL)
			wc_wipe(l->hs[k], sizeof(*l->hs[k]));
		free(l->hs[k]);
	}
	wire_dir_clear(&l->tx);
	wire_dir_clear(&l->rx);
	for (unsigned k = 0; k < HS_ATTEMPTS_KEPT; k++)
		cand_clear(&l->cand[k]);
	free(l);
}
