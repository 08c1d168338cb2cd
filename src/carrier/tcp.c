/*
 * TCP carrier: the wire layer's datagrams over a TCP connection, for
 * networks that block UDP (docs/PROTOCOL.md, "TCP carrier").
 *
 *   client -> server   N (16 random bytes), then frames
 *   frame              LEN (2 bytes, XOR a keystream) | datagram (LEN bytes)
 *
 * The keystream of each direction is ChaCha20 under
 * HKDF(frame_key, "sctpt tcp frame v1", N | direction), frame_key being
 * derived from the bridge secret, so without the cert the byte stream has
 * no visible structure: a random nonce, then lengths and sealed datagrams
 * that all look random.  A server connection that sends no plausible
 * first frame in time, or whose first datagram the wire layer rejects, is
 * read from for a random time and closed, never answered.
 *
 * Through an upstream proxy the client connects to the proxy, negotiates a
 * CONNECT to the server (proxy_dial, below; the protocols are in proxy.c)
 * and only then sends the nonce: frames sent meanwhile wait, framed, in a
 * bounded queue.
 */
#include "carrier/carrier_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "util/bytes.h"
#include "util/hmap.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "crypto/crypto.h"

#define TCP_NONCE_LEN 16
#define TCP_MAX_CONNS 1024          /* server: connections at once */
#define TCP_OUT_CAP (512 * 1024)    /* queued bytes beyond which datagrams drop */
#define TCP_IN_CAP (256 * 1024)     /* read high-water mark */
#define TCP_FIRST_MIN_MS 3000       /* first frame must be complete by then... */
#define TCP_FIRST_MAX_MS 10000      /* ...a random time in this range */
#define TCP_DRAIN_MIN_MS 2000       /* probes are read from this long... */
#define TCP_DRAIN_MAX_MS 20000
#define TCP_FRAMES_PER_READ 256
#define TCP_PEND_CAP (64 * 1024)    /* framed bytes waiting for the proxy */

struct tcp_carrier;

struct tcp_conn {
	struct tcp_carrier *tc;
	struct bufferevent *bev;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	uint8_t key[HMAP_KEY_MAX];
	size_t keylen;
	int have_nonce;
	struct wc_mask *rx_mask, *tx_mask;
	uint64_t rx_pos, tx_pos;        /* keystream bytes used */
	uint8_t rx_ks[64], tx_ks[64];
	uint64_t rx_block, tx_block;    /* which 64-byte block is cached, +1 */
	int got_frame;                  /* server: a whole frame arrived */
	int authed;                     /* server: the wire layer authenticated a datagram */
	int draining;
	int connected;                  /* client */
	struct event *timer;
	struct proxy_dial *dial;        /* client: negotiating with a proxy */
	struct evbuffer *pend;          /* client: nonce and frames held meanwhile */
};

struct tcp_carrier {
	struct carrier_hdr h;           /* first: see carrier_impl.h */
	struct event_base *base;
	int server;
	uint8_t frame_key[32];
	carrier_recv_cb cb;
	void *arg;
	struct carrier_stats stats;
	struct evconnlistener *lev;     /* server */
	struct hmap *conns;             /* server: peer key -> struct tcp_conn */
	unsigned nconns;
	struct tcp_conn *conn;          /* client */
	struct event *down_ev;          /* client: report the end from the loop */
	const char *down_why;
	uint8_t buf[CARRIER_MAX_DATAGRAM];
};

static struct log_ratelimit tcp_rl = LOG_RATELIMIT_INIT(30.0, 3);


/* Server: the connection whose remote address is peer, or NULL. */
static struct tcp_conn *server_conn(struct tcp_carrier *tc, const struct sockaddr *peer)
{
	uint8_t key[NETADDR_KEY_MAX];
	size_t kl;

	if (!tc->server || peer == NULL)
		return NULL;
	kl = netaddr_key(peer, key);
	return kl > 0 ? hmap_get(tc->conns, key, kl) : NULL;
}

static uint32_t rand_between(uint32_t lo, uint32_t hi)
{
	uint32_t r = 0;

	(void)wc_random((uint8_t *)&r, sizeof(r));
	return hi > lo ? lo + r % (hi - lo + 1) : lo;
}

/* Direction keys from the nonce: "c2s" for client->server, "s2c" back. */
static int conn_keys(struct tcp_conn *k, const uint8_t nonce[TCP_NONCE_LEN], int server)
{
	static const uint8_t salt[] = "sctpt tcp frame v1";
	uint8_t info[TCP_NONCE_LEN + 3], c2s[32], s2c[32];
	int r;

	memcpy(info, nonce, TCP_NONCE_LEN);
	memcpy(info + TCP_NONCE_LEN, "c2s", 3);
	r = wc_hkdf(salt, sizeof(salt) - 1, k->tc->frame_key, 32, info, sizeof(info), c2s, 32);
	memcpy(info + TCP_NONCE_LEN, "s2c", 3);
	if (r == 0)
		r = wc_hkdf(salt, sizeof(salt) - 1, k->tc->frame_key, 32, info, sizeof(info),
		            s2c, 32);
	if (r == 0) {
		k->rx_mask = wc_mask_new(server ? c2s : s2c);
		k->tx_mask = wc_mask_new(server ? s2c : c2s);
		if (k->rx_mask == NULL || k->tx_mask == NULL)
			r = -1;
	}
	wc_wipe(c2s, sizeof(c2s));
	wc_wipe(s2c, sizeof(s2c));
	k->have_nonce = r == 0;
	return r;
}

/* The next two keystream bytes of one direction. */
static int ks_next(struct wc_mask *m, uint64_t *pos, uint8_t *cache, uint64_t *cached,
                   uint8_t out[2])
{
	for (int i = 0; i < 2; i++) {
		uint64_t block = *pos / 64;

		if (*cached != block + 1) {
			uint8_t sample[16] = { 0 };

			put_u32be(sample, (uint32_t)block);         /* counter */
			put_u32be(sample + 4, (uint32_t)(block >> 32));
			if (wc_mask_get(m, sample, cache, 64) < 0)
				return -1;
			*cached = block + 1;
		}
		out[i] = cache[*pos % 64];
		(*pos)++;
	}
	return 0;
}

static void conn_free(struct tcp_conn *k)
{
	struct tcp_carrier *tc = k->tc;

	log_debug("tcp carrier: closing a connection");
	if (tc->server && k->keylen > 0 && hmap_get(tc->conns, k->key, k->keylen) == k) {
		hmap_del(tc->conns, k->key, k->keylen);
		tc->nconns--;
	}
	if (tc->conn == k)
		tc->conn = NULL;
	if (k->timer != NULL)
		event_free(k->timer);
	if (k->dial != NULL) {
		proxy_dial_clear(k->dial);
		free(k->dial);
	}
	if (k->pend != NULL)
		evbuffer_free(k->pend);
	if (k->bev != NULL)
		bufferevent_free(k->bev);
	wc_mask_free(k->rx_mask);
	wc_mask_free(k->tx_mask);
	free(k);
}

static void drain_readcb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	evbuffer_drain(in, evbuffer_get_length(in));
}

static void drain_eventcb(struct bufferevent *bev, short what, void *arg)
{
	conn_free(arg);
}

static void drain_done(evutil_socket_t fd, short what, void *arg)
{
	conn_free(arg);
}

/* Never answer: read and discard for a random time, then close. */
static void conn_drain(struct tcp_conn *k)
{
	struct timeval tv;
	uint32_t ms = rand_between(TCP_DRAIN_MIN_MS, TCP_DRAIN_MAX_MS);

	log_debug("tcp carrier: draining a connection for %u ms", ms);
	if (k->draining)
		return;
	k->draining = 1;
	bufferevent_setcb(k->bev, drain_readcb, NULL, drain_eventcb, k);
	bufferevent_setwatermark(k->bev, EV_READ, 0, 0);
	bufferevent_disable(k->bev, EV_WRITE);
	evbuffer_drain(bufferevent_get_output(k->bev),
	               evbuffer_get_length(bufferevent_get_output(k->bev)));
	drain_readcb(k->bev, k);
	bufferevent_enable(k->bev, EV_READ);
	if (k->timer != NULL)
		event_free(k->timer);
	k->timer = evtimer_new(k->tc->base, drain_done, k);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (k->timer == NULL || evtimer_add(k->timer, &tv) < 0)
		conn_free(k);
}

static void client_down(struct tcp_carrier *tc, const char *why)
{
	tc->down_why = why;
	if (tc->down_ev != NULL)
		event_active(tc->down_ev, EV_TIMEOUT, 0);
}

/* The connection is unusable: a probe is drained, a client reports it. */
static void conn_fail(struct tcp_conn *k, const char *why)
{
	struct tcp_carrier *tc = k->tc;

	log_debug("tcp carrier: %s (%s side, %s)", why, tc->server ? "server" : "client",
	          k->got_frame ? "after a frame" : "before any frame");
	if (tc->server) {
		if (!k->got_frame) {
			conn_drain(k);
			return;
		}
		conn_free(k);
		return;
	}
	conn_free(k);
	client_down(tc, why);
}

static void conn_readcb(struct bufferevent *bev, void *arg)
{
	struct tcp_conn *k = arg;
	struct tcp_carrier *tc = k->tc;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (!k->have_nonce) {
		uint8_t nonce[TCP_NONCE_LEN];

		if (evbuffer_get_length(in) < TCP_NONCE_LEN)
			return;
		evbuffer_remove(in, nonce, TCP_NONCE_LEN);
		if (conn_keys(k, nonce, 1) < 0) {
			conn_fail(k, "key setup failed");
			return;
		}
	}
	for (int n = 0; n < TCP_FRAMES_PER_READ; n++) {
		uint8_t hdr[2], ks[2];
		size_t len;
		uint64_t save_pos = k->rx_pos;

		if (evbuffer_get_length(in) < 2)
			return;
		evbuffer_copyout(in, hdr, 2);
		if (ks_next(k->rx_mask, &k->rx_pos, k->rx_ks, &k->rx_block, ks) < 0) {
			conn_fail(k, "keystream failure");
			return;
		}
		len = (size_t)((hdr[0] ^ ks[0]) << 8 | (hdr[1] ^ ks[1]));
		if (len == 0) {
			conn_fail(k, "malformed frame");
			return;
		}
		if (evbuffer_get_length(in) < 2 + len) {
			k->rx_pos = save_pos;   /* read the length again next time */
			return;
		}
		evbuffer_drain(in, 2);
		evbuffer_remove(in, tc->buf, len);
		tc->stats.rx_packets++;
		tc->stats.rx_bytes += len;
		k->got_frame = 1;   /* the first-frame timer runs until authenticated */
		/* The callback may drop this peer (drain) or free the carrier. */
		tc->cb((struct carrier *)tc, (struct sockaddr *)&k->peer, k->peerlen,
		       tc->buf, len, tc->arg);
		if (tc->server && (hmap_get(tc->conns, k->key, k->keylen) != k || k->draining))
			return;
		if (!tc->server && tc->conn != k)
			return;
	}
	/* More is buffered: come back after other events had their turn. */
	if (evbuffer_get_length(in) >= 2)
		bufferevent_trigger(bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

static void conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct tcp_conn *k = arg;

	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;

		(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		k->connected = 1;
		return;
	}
	if (what & BEV_EVENT_EOF)
		conn_fail(k, "connection closed by the peer");
	else
		conn_fail(k, "connection failed");
}

static void first_frame_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_conn *k = arg;

	log_ratelimited(&tcp_rl, LOG_LEVEL_INFO, "tcp: a connection sent no valid frame in "
	                "time; draining it");
	conn_drain(k);
}

int tcp_carrier_send(struct carrier *c, const struct sockaddr *to, socklen_t tolen,
                     const uint8_t *buf, size_t len)
{
	struct tcp_carrier *tc = (struct tcp_carrier *)c;
	struct tcp_conn *k;
	struct evbuffer *out;
	uint8_t hdr[2], ks[2];

	if (len == 0 || len > 0xffff)
		return -1;
	k = tc->server ? server_conn(tc, to) : tc->conn;
	/* The server never writes to a connection that has not authenticated. */
	if (k == NULL || k->draining || !k->have_nonce || (tc->server && !k->authed)) {
		tc->stats.tx_dropped++;
		return -1;
	}
	/* Nothing reaches the proxy's connection before its handshake is done. */
	out = k->dial != NULL ? k->pend : bufferevent_get_output(k->bev);
	if (evbuffer_get_length(out) > (k->dial != NULL ? TCP_PEND_CAP : TCP_OUT_CAP)) {
		tc->stats.tx_dropped++;   /* like a full queue on a path: SCTP recovers */
		return -1;
	}
	if (ks_next(k->tx_mask, &k->tx_pos, k->tx_ks, &k->tx_block, ks) < 0)
		return -1;
	hdr[0] = (uint8_t)(len >> 8) ^ ks[0];
	hdr[1] = (uint8_t)len ^ ks[1];
	if (evbuffer_add(out, hdr, 2) < 0 || evbuffer_add(out, buf, len) < 0)
		return -1;
	tc->stats.tx_packets++;
	tc->stats.tx_bytes += len;
	return 0;
}

static struct tcp_carrier *tc_new(struct event_base *base, const uint8_t frame_key[32],
                                  carrier_recv_cb cb, void *arg)
{
	struct tcp_carrier *tc = calloc(1, sizeof(*tc));

	if (tc == NULL)
		return NULL;
	tc->h.kind = CARRIER_KIND_TCP;
	tc->base = base;
	memcpy(tc->frame_key, frame_key, 32);
	tc->cb = cb;
	tc->arg = arg;
	return tc;
}

static struct tcp_conn *conn_new(struct tcp_carrier *tc, struct bufferevent *bev)
{
	struct tcp_conn *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return NULL;
	k->tc = tc;
	k->bev = bev;
	bufferevent_setcb(bev, conn_readcb, NULL, conn_eventcb, k);
	bufferevent_setwatermark(bev, EV_READ, 0, TCP_IN_CAP);
	return k;
}

/* ---------- client ---------- */

static void down_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_carrier *tc = arg;

	if (tc->h.down_cb != NULL)
		tc->h.down_cb((struct carrier *)tc, tc->down_why, tc->h.down_arg);
}

/* The proxy connected us to the server: the framed stream starts now. */
static void conn_dial_done(struct proxy_dial *d, const char *why, void *arg)
{
	struct tcp_conn *k = arg;
	struct evbuffer *in;

	if (why != NULL) {
		conn_fail(k, why);
		return;
	}
	log_info("tcp carrier: connected to the server through the %s proxy",
	         carrier_proxy_name(d->neg.type));
	proxy_dial_clear(k->dial);
	FREE_AND_NULL(free, k->dial);
	k->connected = 1;
	bufferevent_setcb(k->bev, conn_readcb, NULL, conn_eventcb, k);
	if (evbuffer_add_buffer(bufferevent_get_output(k->bev), k->pend) < 0) {
		conn_fail(k, "out of memory");
		return;
	}
	FREE_AND_NULL(evbuffer_free, k->pend);
	in = bufferevent_get_input(k->bev);
	if (evbuffer_get_length(in) > 0)
		bufferevent_trigger(k->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

struct carrier *carrier_tcp_connect(struct event_base *base,
                                    const struct sockaddr *bind_addr, socklen_t bindlen,
                                    const struct sockaddr *peer, socklen_t peerlen,
                                    const struct carrier_proxy *proxy,
                                    const uint8_t frame_key[32],
                                    carrier_recv_cb cb, void *arg)
{
	struct tcp_carrier *tc = tc_new(base, frame_key, cb, arg);
	struct bufferevent *bev = NULL;
	uint8_t nonce[TCP_NONCE_LEN];
	evutil_socket_t fd = -1;
	int proxied = proxy != NULL && proxy->type != CARRIER_PROXY_NONE;
	/* Through a proxy the TCP connection goes to the proxy. */
	const struct sockaddr *to = proxied ? (const struct sockaddr *)&proxy->addr : peer;
	char abuf[128];

	if (tc == NULL)
		return NULL;
	tc->down_ev = event_new(base, -1, 0, down_cb, tc);
	fd = socket(to->sa_family, SOCK_STREAM, IPPROTO_TCP);
	if (tc->down_ev == NULL || fd < 0 || evutil_make_socket_nonblocking(fd) < 0)
		goto fail;
	(void)evutil_make_socket_closeonexec(fd);
	if (bind_addr != NULL && bind_addr->sa_family == to->sa_family &&
	    bind(fd, bind_addr, bindlen) < 0) {
		log_err("tcp carrier: cannot bind %s: %s",
		        netaddr_format(bind_addr, abuf, sizeof(abuf)), strerror(errno));
		goto fail;
	}
	bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		goto fail;
	fd = -1;
	tc->conn = conn_new(tc, bev);
	if (tc->conn == NULL)
		goto fail;
	memcpy(&tc->conn->peer, peer, peerlen);
	tc->conn->peerlen = peerlen;
	if (wc_random(nonce, sizeof(nonce)) < 0 || conn_keys(tc->conn, nonce, 0) < 0)
		goto fail;
	if (proxied) {
		tc->conn->pend = evbuffer_new();
		tc->conn->dial = calloc(1, sizeof(*tc->conn->dial));
		if (tc->conn->pend == NULL || tc->conn->dial == NULL ||
		    evbuffer_add(tc->conn->pend, nonce, sizeof(nonce)) < 0 ||
		    proxy_dial_start(tc->conn->dial, bev, proxy, PROXY_CMD_CONNECT, peer, peerlen,
		                     conn_dial_done, tc->conn) < 0)
			goto fail;
		return (struct carrier *)tc;
	}
	bufferevent_write(bev, nonce, sizeof(nonce));
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(bev, peer, (int)peerlen) < 0) {
		/* Reported from the loop like any later failure. */
		client_down(tc, "cannot connect");
	}
	return (struct carrier *)tc;
fail:
	if (fd >= 0)
		close(fd);
	if (tc->conn != NULL)
		conn_free(tc->conn);
	else if (bev != NULL)
		bufferevent_free(bev);
	tcp_carrier_free((struct carrier *)tc);
	return NULL;
}

/* ---------- through an upstream proxy ---------- */

/* One static sentence per proxy type: { socks5, socks4a, http }. */
static const char *by_type(enum carrier_proxy_type t, const char *s5, const char *s4,
                           const char *http)
{
	return t == CARRIER_PROXY_SOCKS5 ? s5 : t == CARRIER_PROXY_SOCKS4A ? s4 : http;
}

static const char *dial_connect_error(enum carrier_proxy_type t, int err)
{
	switch (err) {
	case ECONNREFUSED:
		return by_type(t, "cannot connect to the socks5 proxy: connection refused",
		               "cannot connect to the socks4a proxy: connection refused",
		               "cannot connect to the http proxy: connection refused");
	case ETIMEDOUT:
		return by_type(t, "cannot connect to the socks5 proxy: timed out",
		               "cannot connect to the socks4a proxy: timed out",
		               "cannot connect to the http proxy: timed out");
	case ENETUNREACH:
	case EHOSTUNREACH:
		return by_type(t, "cannot connect to the socks5 proxy: unreachable",
		               "cannot connect to the socks4a proxy: unreachable",
		               "cannot connect to the http proxy: unreachable");
	default:
		return by_type(t, "cannot connect to the socks5 proxy",
		               "cannot connect to the socks4a proxy",
		               "cannot connect to the http proxy");
	}
}

/* Report once; the callback may free d. */
static void dial_finish(struct proxy_dial *d, const char *why)
{
	if (d->finished)
		return;
	d->finished = 1;
	if (d->timer != NULL)
		event_del(d->timer);
	if (why != NULL) {
		/* Quiet until the owner frees it. */
		bufferevent_disable(d->bev, EV_READ | EV_WRITE);
		bufferevent_setcb(d->bev, NULL, NULL, NULL, NULL);
	}
	d->cb(d, why, d->arg);
}

static void dial_readcb(struct bufferevent *bev, void *arg)
{
	struct proxy_dial *d = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		uint8_t out[PROXY_OUT_MAX], none = 0;
		size_t len = evbuffer_get_length(in), used = 0, outlen = 0;
		size_t take = len < PROXY_IN_MAX ? len : PROXY_IN_MAX;
		const uint8_t *p = take > 0 ? evbuffer_pullup(in, (ev_ssize_t)take) : &none;
		int rc;

		if (p == NULL) {
			dial_finish(d, "out of memory");
			return;
		}
		rc = proxy_neg_step(&d->neg, p, take, &used, out, &outlen);
		evbuffer_drain(in, used);
		if (outlen > 0 && bufferevent_write(bev, out, outlen) < 0) {
			rc = PROXY_ERROR;
			d->neg.error = "out of memory";
		}
		explicit_bzero(out, sizeof(out));    /* may hold the password */
		if (rc == PROXY_ERROR) {
			dial_finish(d, d->neg.error);
			return;
		}
		if (rc == PROXY_DONE) {
			dial_finish(d, NULL);
			return;
		}
		if (used == 0)
			return;    /* the rest of the message is still on its way */
	}
}

static void dial_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct proxy_dial *d = arg;
	enum carrier_proxy_type t = d->neg.type;

	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;

		(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
		                 sizeof(one));
		d->connected = 1;
		log_debug("%s proxy: connected; negotiating", carrier_proxy_name(t));
		return;
	}
	if (!d->connected) {
		int err = EVUTIL_SOCKET_ERROR(), soerr = 0;
		socklen_t sl = sizeof(soerr);

		/* A refusal found at connect() is reported later: errno is stale. */
		if (getsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
		    soerr != 0)
			err = soerr;
		dial_finish(d, dial_connect_error(t, err));
	} else if (what & BEV_EVENT_EOF) {
		dial_finish(d, by_type(t, "the socks5 proxy closed the connection during the "
		                       "negotiation",
		                       "the socks4a proxy closed the connection before answering",
		                       "the http proxy closed the connection before answering "
		                       "the CONNECT"));
	} else {
		dial_finish(d, by_type(t, "the connection to the socks5 proxy failed during the "
		                       "negotiation",
		                       "the connection to the socks4a proxy failed before it "
		                       "answered",
		                       "the connection to the http proxy failed before it answered"));
	}
}

static void dial_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_dial *d = arg;
	enum carrier_proxy_type t = d->neg.type;

	if (d->why != NULL)
		dial_finish(d, d->why);
	else if (!d->connected)
		dial_finish(d, by_type(t, "cannot connect to the socks5 proxy: no answer within 10 s",
		                       "cannot connect to the socks4a proxy: no answer within 10 s",
		                       "cannot connect to the http proxy: no answer within 10 s"));
	else
		dial_finish(d, by_type(t, "the socks5 proxy did not complete the negotiation "
		                       "within 10 s",
		                       "the socks4a proxy did not answer within 10 s",
		                       "the http proxy did not answer the CONNECT within 10 s"));
}

int proxy_dial_start(struct proxy_dial *d, struct bufferevent *bev,
                     const struct carrier_proxy *p, enum proxy_cmd cmd,
                     const struct sockaddr *dest, socklen_t destlen,
                     proxy_dial_cb cb, void *arg)
{
	struct timeval tv = { PROXY_DIAL_TIMEOUT_MS / 1000, (PROXY_DIAL_TIMEOUT_MS % 1000) * 1000 };
	uint8_t out[PROXY_OUT_MAX];
	size_t outlen = 0;
	int r;

	memset(d, 0, sizeof(*d));
	d->bev = bev;
	d->cb = cb;
	d->arg = arg;
	d->timer = evtimer_new(bufferevent_get_base(bev), dial_timer_cb, d);
	if (d->timer == NULL)
		return -1;
	bufferevent_setcb(bev, dial_readcb, NULL, dial_eventcb, d);
	log_debug("%s proxy: connecting", carrier_proxy_name(p->type));
	if (proxy_neg_init(&d->neg, p, cmd, dest, destlen, out, &outlen) < 0) {
		/* Misconfigured for this path: said from the loop, like a refusal. */
		d->why = d->neg.error;
		event_active(d->timer, EV_TIMEOUT, 0);
		return 0;
	}
	r = bufferevent_write(bev, out, outlen);
	explicit_bzero(out, sizeof(out));    /* may hold the password */
	if (r < 0)
		return -1;
	/*
	 * connect() here rather than in libevent, which reports a refusal
	 * found at once later, when errno no longer says what it was.
	 */
	if ((connect(bufferevent_getfd(bev), (const struct sockaddr *)&p->addr, p->len) < 0 &&
	     errno != EINPROGRESS) || bufferevent_socket_connect(bev, NULL, 0) < 0) {
		d->why = dial_connect_error(p->type, errno);
		event_active(d->timer, EV_TIMEOUT, 0);
		return 0;
	}
	if (bufferevent_enable(bev, EV_READ | EV_WRITE) < 0 || evtimer_add(d->timer, &tv) < 0)
		return -1;
	return 0;
}

void proxy_dial_clear(struct proxy_dial *d)
{
	if (d == NULL)
		return;
	if (d->timer != NULL)
		FREE_AND_NULL(event_free, d->timer);
	proxy_neg_clear(&d->neg);
}

/* ---------- server ---------- */

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
	struct tcp_carrier *tc = arg;
	struct bufferevent *bev;
	struct tcp_conn *k;
	struct timeval tv;
	uint32_t ms;
	int one = 1;

	if (tc->nconns >= TCP_MAX_CONNS) {
		log_ratelimited(&tcp_rl, LOG_LEVEL_WARN, "tcp: %d connections open; refusing more",
		                TCP_MAX_CONNS);
		close(fd);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bev = bufferevent_socket_new(tc->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return;
	}
	k = conn_new(tc, bev);
	if (k == NULL) {
		bufferevent_free(bev);
		return;
	}
	memcpy(&k->peer, sa, (size_t)salen);
	k->peerlen = (socklen_t)salen;
	k->keylen = netaddr_key(sa, k->key);
	if (k->keylen == 0 || hmap_get(tc->conns, k->key, k->keylen) != NULL ||
	    hmap_put(tc->conns, k->key, k->keylen, k) < 0) {
		log_debug("tcp carrier: cannot track a new connection; closing it");
		k->keylen = 0;
		conn_free(k);
		return;
	}
	tc->nconns++;
	log_debug("tcp carrier: accepted a connection (%u open)", tc->nconns);
	ms = rand_between(TCP_FIRST_MIN_MS, TCP_FIRST_MAX_MS);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	k->timer = evtimer_new(tc->base, first_frame_timeout, k);
	if (k->timer == NULL || evtimer_add(k->timer, &tv) < 0) {
		conn_free(k);
		return;
	}
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

struct carrier *carrier_tcp_listen(struct event_base *base,
                                   const struct sockaddr *addr, socklen_t len,
                                   const uint8_t frame_key[32],
                                   carrier_recv_cb cb, void *arg)
{
	struct tcp_carrier *tc = tc_new(base, frame_key, cb, arg);
	char abuf[128];

	if (tc == NULL)
		return NULL;
	tc->server = 1;
	tc->conns = hmap_new();
	if (tc->conns == NULL)
		goto fail;
	tc->lev = evconnlistener_new_bind(base, accept_cb, tc,
	                                  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	                                  LEV_OPT_CLOSE_ON_EXEC, 128, addr, (int)len);
	if (tc->lev == NULL) {
		log_err("tcp carrier: cannot listen on %s: %s",
		        netaddr_format(addr, abuf, sizeof(abuf)), strerror(errno));
		goto fail;
	}
	return (struct carrier *)tc;
fail:
	tcp_carrier_free((struct carrier *)tc);
	return NULL;
}

void tcp_carrier_drop_peer(struct carrier *c, const struct sockaddr *peer)
{
	struct tcp_conn *k = server_conn((struct tcp_carrier *)c, peer);

	/* An authenticated connection keeps its session; a probe is drained. */
	if (k != NULL && !k->authed)
		conn_drain(k);
}

void tcp_carrier_peer_ok(struct carrier *c, const struct sockaddr *peer)
{
	struct tcp_conn *k = server_conn((struct tcp_carrier *)c, peer);

	if (k != NULL && !k->authed && !k->draining) {
		k->authed = 1;
		if (k->timer != NULL)
			evtimer_del(k->timer);
	}
}

int tcp_carrier_local_addr(const struct carrier *c, struct sockaddr_storage *ss,
                           socklen_t *len)
{
	const struct tcp_carrier *tc = (const struct tcp_carrier *)c;
	evutil_socket_t fd = -1;

	if (tc->lev != NULL)
		fd = evconnlistener_get_fd(tc->lev);
	else if (tc->conn != NULL)
		fd = bufferevent_getfd(tc->conn->bev);
	*len = sizeof(*ss);
	return fd >= 0 ? getsockname(fd, (struct sockaddr *)ss, len) : -1;
}

void tcp_carrier_get_stats(const struct carrier *c, struct carrier_stats *st)
{
	*st = ((const struct tcp_carrier *)c)->stats;
}

static void conn_free_cb(void *value, void *arg)
{
	struct tcp_conn *k = value;

	k->keylen = 0;    /* the map is being freed as a whole */
	conn_free(k);
}

void tcp_carrier_free(struct carrier *c)
{
	struct tcp_carrier *tc = (struct tcp_carrier *)c;

	if (tc == NULL)
		return;
	if (tc->lev != NULL)
		evconnlistener_free(tc->lev);
	if (tc->conns != NULL) {
		hmap_foreach(tc->conns, conn_free_cb, NULL);
		hmap_free(tc->conns);
	}
	if (tc->conn != NULL)
		conn_free(tc->conn);
	if (tc->down_ev != NULL)
		event_free(tc->down_ev);
	wc_wipe(tc->frame_key, sizeof(tc->frame_key));
	free(tc);
}
