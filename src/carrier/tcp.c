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
 * Slots (server): at most TCP_MAX_CONNS connections.  Connections that
 * have not authenticated yet (no datagram accepted by the wire layer) are
 * kept in accept order and counted per source address (/32, IPv6 /64) and
 * per network (/24, IPv6 /48).  A new connection is always accepted and
 * read from; to make room, the oldest unauthenticated connection of its own
 * address (over TCP_UNAUTH_PER_ADDR), else of the busiest address in its
 * network (over TCP_UNAUTH_PER_NET), else, when all slots or the file
 * descriptors are taken, of the busiest address overall is closed.  So one
 * source can hold only a few slots, a flood mostly evicts itself, and a
 * prober sees the same thing at accept whether the server is full or not.
 * Only if there is no unauthenticated connection to close (every slot
 * authenticated, or the descriptors all held by streams) is the newcomer
 * the one drained; beyond TCP_HARD_CONNS, or with less than a quarter of
 * the descriptor reserve left, it is closed at once.
 *
 * Deadlines: an unauthenticated connection must send its first frame and be
 * authenticated within the bridge's first-frame time of accept (absolute,
 * whatever it trickles), then it is drained: read and discarded until the
 * bridge's drain time has passed or its read limit was read, then closed
 * with a FIN.  The three numbers are fixed per bridge, derived from its
 * frame key (3-10 s, 2-20 s, 1-16 KiB; struct tcp_policy), so every probe
 * of one bridge sees the same server, as it would with any one real
 * server software, while no constant is common to all sctpt bridges; an authenticated one is closed
 * after TCP_IDLE_MS without an authenticated datagram (keepalives come at
 * least every 300 s), so a session that ended does not keep its slot.  accept() errors pause the listener (util/fdbudget.h) after
 * closing one unauthenticated connection to make room, never spin.
 *
 * Through an upstream proxy the client connects to the proxy, negotiates a
 * CONNECT to the server (proxy_dial, dial.c; the protocols are in proxy.c)
 * and only then sends the nonce: frames sent meanwhile wait, framed, in a
 * bounded queue.  The framing itself is tcpframe.c.
 *
 * Lifetime: a connection is freed only from a libevent callback of its own
 * (or with the carrier), never from a function the wire layer calls, and
 * the datagrams go up through carrier_deliver, which says whether the
 * carrier survived the callback; nothing is read after it if not.
 */
#include "carrier/carrier_internal.h"
#include "carrier/tcpframe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "util/bytes.h"
#include "util/clock.h"
#include "util/fault.h"
#include "util/fdbudget.h"
#include "util/hmap.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "crypto/crypto.h"

#define TCP_NONCE_LEN TCPFRAME_NONCE_LEN
#define TCP_MAX_CONNS 1024          /* server: connections at once */
#define TCP_HARD_CONNS (TCP_MAX_CONNS + 64)  /* beyond this closed at accept */
#define TCP_UNAUTH_PER_ADDR 16      /* unauthenticated per /32 or /64 */
#define TCP_UNAUTH_PER_NET 64       /* unauthenticated per /24 or /48 */
#define TCP_IDLE_MS (900 * 1000)    /* authenticated, without a frame */
#define SRC_KEY_MAX 12
#define TCP_OUT_CAP CARRIER_TCP_OUT_CAP  /* queued bytes beyond which datagrams drop */
#define TCP_IN_CAP (256 * 1024)     /* read high-water mark */
#define TCP_IO_MAX (128 * 1024)     /* bytes per read or writev syscall */
#define TCP_FIRST_MIN_MS 3000       /* first frame must be complete by then... */
#define TCP_FIRST_MAX_MS 10000      /* ...a per-bridge time in this range */
#define TCP_DRAIN_MIN_MS 2000       /* probes are read from this long... */
#define TCP_DRAIN_MAX_MS 20000
#define TCP_DRAIN_MIN_BYTES 1024    /* ...or until this many bytes were read */
#define TCP_DRAIN_MAX_BYTES 16384

/* How this bridge treats connections that do not authenticate (server). */
struct tcp_policy {
	uint32_t first_ms;              /* authenticate within this of accept */
	uint32_t drain_ms;              /* then read and discard this long */
	uint32_t drain_bytes;           /* or until this much was read */
};
#define TCP_FRAMES_PER_READ 256
#define TCP_PEND_CAP (64 * 1024)    /* framed bytes waiting for the proxy */
#define DECOY_KEEP (16 * 1024)      /* bytes kept for the decoy before auth */
#define DECOY_BUF (64 * 1024)       /* queued towards either side, at most */
#define DECOY_IDLE_MS 60000         /* a decoy splice with no traffic ends */

struct tcp_carrier;

struct tcp_conn {
	struct tcp_carrier *tc;
	struct bufferevent *bev;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	uint8_t key[HMAP_KEY_MAX];
	size_t keylen;
	uint8_t akey[SRC_KEY_MAX], nkey[SRC_KEY_MAX];  /* source address, network */
	size_t akeylen, nkeylen;
	TAILQ_ENTRY(tcp_conn) unauth_link;  /* server, while in tc->unauth */
	int in_unauth;
	uint64_t last_rx_ms;            /* server: last authenticated datagram */
	struct tcpframe frame;          /* keyed once the nonce is known */
	int got_frame;                  /* server: a whole frame arrived */
	int authed;                     /* server: the wire layer authenticated a datagram */
	int draining;
	size_t drained;                 /* bytes discarded while draining */
	int connected;                  /* client */
	struct event *timer;            /* first frame deadline, then drain; made with k */
	struct proxy_dial *dial;        /* client: negotiating with a proxy */
	struct evbuffer *seen;          /* server with a decoy: bytes received
	                                 * before auth (at most DECOY_KEEP) */
	size_t consumed;                /* bytes taken out of the input so far */
	struct bufferevent *decoy;      /* spliced to the decoy (draining too) */
	int decoy_eof;                  /* one side ended: close once flushed */
	struct evbuffer *pend;          /* client: nonce and frames held meanwhile */
};


struct tcp_carrier {
	struct carrier_hdr h;           /* first: see carrier_internal.h */
	struct event_base *base;
	int server;
	uint8_t frame_key[32];
	struct carrier_stats stats;
	struct evconnlistener *lev;     /* server */
	struct hmap *conns;             /* server: peer key -> struct tcp_conn */
	unsigned nconns;
	TAILQ_HEAD(, tcp_conn) unauth;  /* server: not yet authenticated, oldest first */
	struct hmap *src_count;         /* server: src key -> count in unauth (as a pointer) */
	struct accept_pause pause;
	struct tcp_policy policy;       /* server */
	struct wc_hmac *prefix_mac;     /* server: finds a client's --prefix */
	struct sockaddr_storage decoy;  /* server: where probes are spliced */
	socklen_t decoylen;             /* 0: no decoy */
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

/*
 * The key a source is counted under: its address (IPv4 /32, IPv6 /64) or
 * its network (IPv4 /24, IPv6 /48).  IPv4-mapped IPv6 counts as IPv4.
 */
static size_t src_key(const struct sockaddr *sa, int net, uint8_t key[SRC_KEY_MAX])
{
	const uint8_t *a;
	size_t n;

	key[0] = net ? 'n' : 'a';
	if (sa->sa_family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
		n = net ? 3 : 4;
		key[1] = 4;
	} else if (sa->sa_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a)) {
			a += 12;
			n = net ? 3 : 4;
			key[1] = 4;
		} else {
			n = net ? 6 : 8;
			key[1] = 6;
		}
	} else {
		return 0;
	}
	memcpy(key + 2, a, n);
	return n + 2;
}

static unsigned src_count_get(struct tcp_carrier *tc, const uint8_t *key, size_t len)
{
	return (unsigned)(uintptr_t)hmap_get(tc->src_count, key, len);
}

/* 0, or -1 if the count cannot be stored (out of memory). */
static int src_count_add(struct tcp_carrier *tc, const uint8_t *key, size_t len, int d)
{
	unsigned n = src_count_get(tc, key, len);

	if (d < 0 && n <= 1) {
		hmap_del(tc->src_count, key, len);
		return 0;
	}
	return hmap_put(tc->src_count, key, len, (void *)(uintptr_t)(n + (unsigned)d));
}

/* k leaves the unauthenticated list (authenticated or freed). */
static void unauth_remove(struct tcp_conn *k)
{
	struct tcp_carrier *tc = k->tc;

	if (!k->in_unauth)
		return;
	TAILQ_REMOVE(&tc->unauth, k, unauth_link);
	k->in_unauth = 0;
	(void)src_count_add(tc, k->akey, k->akeylen, -1);
	(void)src_count_add(tc, k->nkey, k->nkeylen, -1);
}

static int unauth_insert(struct tcp_conn *k)
{
	struct tcp_carrier *tc = k->tc;

	if (src_count_add(tc, k->akey, k->akeylen, 1) < 0)
		return -1;
	if (src_count_add(tc, k->nkey, k->nkeylen, 1) < 0) {
		(void)src_count_add(tc, k->akey, k->akeylen, -1);
		return -1;
	}
	TAILQ_INSERT_TAIL(&tc->unauth, k, unauth_link);
	k->in_unauth = 1;
	return 0;
}

/*
 * The unauthenticated connection to close so that one more from the
 * source (akey, nkey) fits, or NULL if none needs to go: the oldest of the
 * same address if it is over its share, else the oldest of the busiest
 * address of the same network if that is over its share, else, when the
 * carrier is full, the oldest of the busiest address of all.
 */
static struct tcp_conn *pick_victim(struct tcp_carrier *tc, const uint8_t *akey, size_t alen,
                                    const uint8_t *nkey, size_t nlen, int full)
{
	struct tcp_conn *k, *best = NULL;
	unsigned bestn = 0;
	int same_net;

	if (src_count_get(tc, akey, alen) >= TCP_UNAUTH_PER_ADDR) {
		TAILQ_FOREACH(k, &tc->unauth, unauth_link)
			if (k->akeylen == alen && memcmp(k->akey, akey, alen) == 0)
				return k;
		return NULL;
	}
	same_net = src_count_get(tc, nkey, nlen) >= TCP_UNAUTH_PER_NET;
	if (!same_net && !full)
		return NULL;
	TAILQ_FOREACH(k, &tc->unauth, unauth_link) {
		unsigned n;

		if (same_net && (k->nkeylen != nlen || memcmp(k->nkey, nkey, nlen) != 0))
			continue;
		n = src_count_get(tc, k->akey, k->akeylen);
		if (n > bestn) {    /* strictly: the oldest among equals */
			best = k;
			bestn = n;
		}
	}
	return best;
}

static void conn_free(struct tcp_conn *k)
{
	struct tcp_carrier *tc = k->tc;

	log_debug("tcp carrier: closing a connection");
	unauth_remove(k);
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
	if (k->bev != NULL) {
		bufferevent_free(k->bev);
		if (tc->server)
			fd_budget_release(1);
	}
	if (k->seen != NULL)
		evbuffer_free(k->seen);
	if (k->decoy != NULL) {
		bufferevent_free(k->decoy);
		fd_budget_release(1);
	}
	tcpframe_clear(&k->frame);
	free(k);
}

static void conn_drain(struct tcp_conn *k);
static void conn_reject(struct tcp_conn *k);
static void decoy_note(struct tcp_conn *k);

static int tc_decoy_on(const struct tcp_carrier *tc)
{
	return tc->decoylen > 0;
}

/*
 * Past the read limit the connection is closed from the loop (this also
 * runs inside conn_drain, which the wire layer may call).
 */
static void drain_readcb(struct bufferevent *bev, void *arg)
{
	struct tcp_conn *k = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);

	evbuffer_drain(in, n);
	k->drained += n;
	if (k->drained >= k->tc->policy.drain_bytes) {
		bufferevent_disable(bev, EV_READ);
		evtimer_del(k->timer);
		event_active(k->timer, EV_TIMEOUT, 0);
	}
}

static void drain_eventcb(struct bufferevent *bev, short what, void *arg)
{
	conn_free(arg);
}

/* (Re)start k's timer for ms; if that fails, it fires from the loop now. */
static void conn_arm(struct tcp_conn *k, uint32_t ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_del(k->timer);
	if (evtimer_add(k->timer, &tv) < 0)
		event_active(k->timer, EV_TIMEOUT, 0);
}

/*
 * A connection's one timer: the first-frame deadline of a server
 * connection, then the end of its drain; once authenticated, the idle
 * check.  Made with the connection, so
 * that draining needs no allocation and cannot fail into a synchronous
 * free under a caller's feet.
 */
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_conn *k = arg;

	if (k->draining) {
		conn_free(k);
		return;
	}
	if (k->authed) {
		uint64_t idle = clock_now_ms() - k->last_rx_ms;

		if (idle >= TCP_IDLE_MS) {
			log_debug("tcp carrier: closing a connection idle for %llu s",
			          (unsigned long long)(idle / 1000));
			conn_free(k);
		} else {
			conn_arm(k, TCP_IDLE_MS - (uint32_t)idle);
		}
		return;
	}
	log_ratelimited(&tcp_rl, LOG_LEVEL_INFO, "tcp carrier: a connection sent no valid frame in "
	                "time; %s", tc_decoy_on(k->tc) ? "handing it to the decoy" : "draining it");
	conn_reject(k);
}

/*
 * Never answer: read and discard for the bridge's drain time or read
 * limit, then close.  Called
 * from the wire layer too (carrier_drop_peer, inside the receive
 * callback), so it never frees k itself: the timer does, from the loop.
 */
static void conn_drain(struct tcp_conn *k)
{
	uint32_t ms = k->tc->policy.drain_ms;

	log_debug("tcp carrier: draining a connection for %u ms", ms);
	if (k->draining)
		return;
	k->draining = 1;
	bufferevent_setcb(k->bev, drain_readcb, NULL, drain_eventcb, k);
	bufferevent_setwatermark(k->bev, EV_READ, 0, 0);
	bufferevent_disable(k->bev, EV_WRITE);
	evbuffer_drain(bufferevent_get_output(k->bev),
	               evbuffer_get_length(bufferevent_get_output(k->bev)));
	bufferevent_enable(k->bev, EV_READ);
	drain_readcb(k->bev, k);
	/* Closed from the loop even if the timer fails. */
	if (FAULT("tcp_evtimer_add")) {
		evtimer_del(k->timer);
		event_active(k->timer, EV_TIMEOUT, 0);
	} else {
		conn_arm(k, ms);
	}
}

/* ---------- decoy (server, --decoy) ---------- */

/*
 * Keep a copy of what an unauthenticated connection sent, so that a probe
 * handed to the decoy gets there whole.  The bytes of the input already
 * copied are those of `seen` not yet consumed by the framing.
 */
static void decoy_note(struct tcp_conn *k)
{
	struct evbuffer *in;
	struct evbuffer_ptr p;
	uint8_t tmp[2048];
	size_t have, old, kept;

	if (k->seen == NULL || k->authed)
		return;
	in = bufferevent_get_input(k->bev);
	have = evbuffer_get_length(in);
	kept = evbuffer_get_length(k->seen);
	old = kept - k->consumed;
	while (have > old && kept < DECOY_KEEP) {
		size_t n = have - old;

		if (n > sizeof(tmp))
			n = sizeof(tmp);
		if (n > DECOY_KEEP - kept)
			n = DECOY_KEEP - kept;
		if (evbuffer_ptr_set(in, &p, old, EVBUFFER_PTR_SET) < 0 ||
		    evbuffer_copyout_from(in, &p, tmp, n) != (ev_ssize_t)n ||
		    evbuffer_add(k->seen, tmp, n) < 0) {
			FREE_AND_NULL(evbuffer_free, k->seen);   /* no decoy for it then */
			return;
		}
		old += n;
		kept += n;
	}
}

/* Bytes one side has for the other: moved while the other's queue has room. */
static void decoy_pump(struct tcp_conn *k, struct bufferevent *from, struct bufferevent *to)
{
	struct evbuffer *out = bufferevent_get_output(to);
	size_t room;

	if (evbuffer_get_length(out) >= DECOY_BUF) {
		bufferevent_disable(from, EV_READ);     /* on again from to's write callback */
		return;
	}
	room = DECOY_BUF - evbuffer_get_length(out);
	(void)evbuffer_remove_buffer(bufferevent_get_input(from), out, room);
	if (evbuffer_get_length(bufferevent_get_input(from)) > 0)
		bufferevent_disable(from, EV_READ);     /* the rest waits for room */
	conn_arm(k, DECOY_IDLE_MS);
}

static void decoy_client_readcb(struct bufferevent *bev, void *arg)
{
	struct tcp_conn *k = arg;

	decoy_pump(k, k->bev, k->decoy);
}

static void decoy_up_readcb(struct bufferevent *bev, void *arg)
{
	struct tcp_conn *k = arg;

	decoy_pump(k, k->decoy, k->bev);
}

/* A queue drained: resume the side feeding it, or finish a half-closed splice. */
static void decoy_writecb(struct bufferevent *bev, void *arg)
{
	struct tcp_conn *k = arg;
	struct bufferevent *other = bev == k->bev ? k->decoy : k->bev;

	if (k->decoy_eof) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_free(k);
		return;
	}
	bufferevent_enable(other, EV_READ);
	decoy_pump(k, other, bev);
}

static void decoy_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct tcp_conn *k = arg;
	struct bufferevent *other = bev == k->bev ? k->decoy : k->bev;

	if (what & BEV_EVENT_CONNECTED)
		return;
	/* One side ended: hand over what it sent, then close once it is out. */
	if (what & BEV_EVENT_EOF) {
		decoy_pump(k, bev, other);
		if (evbuffer_get_length(bufferevent_get_output(other)) > 0) {
			k->decoy_eof = 1;
			bufferevent_disable(bev, EV_READ);
			bufferevent_disable(other, EV_READ);
			return;
		}
	}
	conn_free(k);
}

/*
 * Splice k to the decoy: everything it sent so far first, then both ways
 * with DECOY_BUF queued at most per direction.  Only the one configured
 * address is ever dialled.  0, or -1 (no decoy, no descriptor, no memory):
 * then the caller drains as without a decoy.  Never frees k (the wire
 * layer may be calling); k stays counted as unauthenticated and "draining"
 * (nothing of the tunnel reaches it), and its timer ends an idle splice.
 */
static int decoy_start(struct tcp_conn *k)
{
	struct tcp_carrier *tc = k->tc;
	struct evbuffer *in, *out;
	size_t old;

	if (!tc_decoy_on(tc) || k->seen == NULL || k->draining)
		return -1;
	decoy_note(k);
	if (k->seen == NULL || !fd_budget_take(1, FD_BUDGET_RESERVE * 2))
		return -1;
	k->decoy = FAULT("tcp_decoy_bev") ? NULL :
	           bufferevent_socket_new(tc->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (k->decoy == NULL || bufferevent_socket_connect(k->decoy, (struct sockaddr *)&tc->decoy,
	                                                   (int)tc->decoylen) < 0) {
		if (k->decoy != NULL)
			bufferevent_free(k->decoy);
		k->decoy = NULL;
		fd_budget_release(1);
		return -1;
	}
	/* What was received: the kept copy, then the input beyond it. */
	in = bufferevent_get_input(k->bev);
	out = bufferevent_get_output(k->decoy);
	old = evbuffer_get_length(k->seen) - k->consumed;
	if (evbuffer_add_buffer(out, k->seen) < 0) {
		bufferevent_free(k->decoy);
		k->decoy = NULL;
		fd_budget_release(1);
		return -1;
	}
	if (old > evbuffer_get_length(in))
		old = evbuffer_get_length(in);
	evbuffer_drain(in, old);        /* in the kept copy already */
	FREE_AND_NULL(evbuffer_free, k->seen);
	k->draining = 1;
	evbuffer_drain(bufferevent_get_output(k->bev),
	               evbuffer_get_length(bufferevent_get_output(k->bev)));
	bufferevent_setwatermark(k->bev, EV_READ, 0, 0);
	bufferevent_setwatermark(k->bev, EV_WRITE, DECOY_BUF / 2, 0);
	bufferevent_setwatermark(k->decoy, EV_WRITE, DECOY_BUF / 2, 0);
	bufferevent_setcb(k->bev, decoy_client_readcb, decoy_writecb, decoy_eventcb, k);
	bufferevent_setcb(k->decoy, decoy_up_readcb, decoy_writecb, decoy_eventcb, k);
	bufferevent_enable(k->bev, EV_READ | EV_WRITE);
	bufferevent_enable(k->decoy, EV_READ | EV_WRITE);
	if (evbuffer_get_length(in) > 0)
		bufferevent_trigger(k->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
	conn_arm(k, DECOY_IDLE_MS);
	log_debug("tcp carrier: a connection that did not authenticate goes to the decoy");
	return 0;
}

/* A connection that did not authenticate: to the decoy if there is one, else drained. */
static void conn_reject(struct tcp_conn *k)
{
	if (decoy_start(k) == 0)
		return;
	conn_drain(k);
}

void carrier_tcp_set_decoy(struct carrier *c, const struct sockaddr *sa, socklen_t len)
{
	struct tcp_carrier *tc = (struct tcp_carrier *)c;

	if (!tc->server || sa == NULL || len == 0 || len > sizeof(tc->decoy)) {
		tc->decoylen = 0;
		return;
	}
	memcpy(&tc->decoy, sa, len);
	tc->decoylen = len;
	/*
	 * A web server answers at once, so a prober should not wait 3-10 s
	 * for the page: with a decoy the first frame is due within 1-2.5 s
	 * (still per bridge).  A client sends its nonce and HELLO in one write
	 * as soon as it is connected, so this only costs clients whose path
	 * takes over a second for that.
	 */
	tc->policy.first_ms = 1000 + (tc->policy.first_ms - TCP_FIRST_MIN_MS) * 1500 /
	                      (TCP_FIRST_MAX_MS - TCP_FIRST_MIN_MS);
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
			conn_reject(k);
			return;
		}
		conn_free(k);
		return;
	}
	conn_free(k);
	client_down(tc, why);
}

/*
 * Server, before the nonce: how many bytes of prefix (and then a tag) to
 * skip (issue 16).  0 while too few bytes are in to decide (waiting), else
 * 1 with *prefix set (0: a plain stream).
 */
static int conn_prefix_skip(struct tcp_conn *k, struct evbuffer *in, size_t *prefix)
{
	size_t avail = evbuffer_get_length(in), n = avail, len = 0;
	const uint8_t *p;
	struct tcpframe tmp;
	int whole;

	if (n > TCPFRAME_PREFIX_SCAN)
		n = TCPFRAME_PREFIX_SCAN;
	if (n < TCP_NONCE_LEN + TCPFRAME_HDR_LEN || (p = evbuffer_pullup(in, n)) == NULL)
		return 0;
	*prefix = tcpframe_prefix_find(k->tc->prefix_mac, p, n);
	if (*prefix > 0 || n == TCPFRAME_PREFIX_SCAN)
		return 1;
	/*
	 * Fewer bytes than the longest prefixed head and no tag among them:
	 * plain if they already hold a whole plain first frame.  sctpt's first
	 * write (nonce and HELLO frame, with or without a prefix) is longer
	 * than that head, so this only matters for short frames and split
	 * first segments; a prefixed head taken for a plain frame here (its
	 * bytes decode to a length this short, about 1 in 1000) fails like any
	 * bad frame, and the client connects again.
	 */
	memset(&tmp, 0, sizeof(tmp));
	whole = tcpframe_accept_nonce(&tmp, k->tc->frame_key, p, n, CARRIER_MAX_DATAGRAM) ==
	        TCPFRAME_FRAME &&
	        tcpframe_rx_length(&tmp, p + TCP_NONCE_LEN, &len) == TCPFRAME_FRAME &&
	        TCP_NONCE_LEN + TCPFRAME_HDR_LEN + len <= avail;
	tcpframe_clear(&tmp);
	return whole;
}

/*
 * libevent 2.1 reads at most 4096 bytes per call whatever the read limit
 * (EVBUFFER_MAX_READ), under three 1452-byte frames: at full rate the
 * receiving end woke, read, and answered with a SACK every three frames
 * (17,000 wakeups per 64 MiB, measured).  On an authenticated connection
 * take what the socket holds, up to TCP_IO_MAX and the read cap, in one
 * more readv; errors and EOF are left to the bufferevent's next read.
 */
static void read_more(struct tcp_conn *k, struct bufferevent *bev, struct evbuffer *in)
{
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	size_t have = evbuffer_get_length(in);
	size_t want, got;
	ssize_t r;
	int n;

	if ((k->tc->server && !k->authed) || k->dial != NULL || have >= TCP_IN_CAP)
		return;
	want = TCP_IN_CAP - have < TCP_IO_MAX ? TCP_IN_CAP - have : TCP_IO_MAX;
	/* A bufferevent keeps its input's end frozen to everyone but itself. */
	if (evbuffer_unfreeze(in, 0) < 0)
		return;
	n = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
	if (n <= 0) {
		(void)evbuffer_freeze(in, 0);
		return;
	}
	for (int i = 0; i < n; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	r = readv(bufferevent_getfd(bev), iov, n);
	got = r > 0 ? (size_t)r : 0;
	for (int i = 0; i < n; i++) {
		v[i].iov_len = got < v[i].iov_len ? got : v[i].iov_len;
		got -= v[i].iov_len;
	}
	(void)evbuffer_commit_space(in, v, n);
	(void)evbuffer_freeze(in, 0);
}

static void conn_readcb(struct bufferevent *bev, void *arg)
{
	struct tcp_conn *k = arg;
	struct tcp_carrier *tc = k->tc;
	struct evbuffer *in = bufferevent_get_input(bev);

	decoy_note(k);
	read_more(k, bev, in);
	if (!k->frame.keyed) {
		uint8_t nonce[TCP_NONCE_LEN];
		size_t prefix = 0;

		if (tc->server && tc->prefix_mac != NULL && !conn_prefix_skip(k, in, &prefix))
			return;
		if (prefix > 0) {
			evbuffer_drain(in, prefix);
			k->consumed += prefix;
		}
		if (evbuffer_copyout(in, nonce, sizeof(nonce)) < (ev_ssize_t)sizeof(nonce))
			return;
		if (tcpframe_accept_nonce(&k->frame, tc->frame_key, nonce, sizeof(nonce),
		                          CARRIER_MAX_DATAGRAM) != TCPFRAME_FRAME) {
			conn_fail(k, "key setup failed");
			return;
		}
		evbuffer_drain(in, sizeof(nonce) + (prefix > 0 ? TCPFRAME_TAG_LEN : 0));
		k->consumed += sizeof(nonce) + (prefix > 0 ? TCPFRAME_TAG_LEN : 0);
	}
	for (int n = 0; n < TCP_FRAMES_PER_READ; n++) {
		uint8_t hdr[TCPFRAME_HDR_LEN];
		size_t len = 0;

		if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
			return;
		if (tcpframe_rx_length(&k->frame, hdr, &len) != TCPFRAME_FRAME) {
			conn_fail(k, "malformed frame");
			return;
		}
		if (evbuffer_get_length(in) < sizeof(hdr) + len)
			return;     /* the length is read again when the rest is in */
		tcpframe_rx_commit(&k->frame);
		evbuffer_drain(in, sizeof(hdr));
		evbuffer_remove(in, tc->buf, len);
		k->consumed += sizeof(hdr) + len;
		tc->stats.rx_packets++;
		tc->stats.rx_bytes += len;
		k->got_frame = 1;   /* the first-frame timer runs until authenticated */
		/*
		 * The callback may drop this peer (a drain, which frees nothing
		 * now) or free the carrier (then it is gone, k with it).
		 */
		if (carrier_deliver((struct carrier *)tc, (struct sockaddr *)&k->peer, k->peerlen,
		                    tc->buf, len) < 0)
			return;
		if (k->draining)
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

static int tcp_carrier_send(struct carrier *c, const struct sockaddr *to, socklen_t tolen,
                            const uint8_t *buf, size_t len)
{
	struct tcp_carrier *tc = (struct tcp_carrier *)c;
	struct tcp_conn *k;
	struct evbuffer *out;
	struct evbuffer_iovec v;
	uint8_t hdr[TCPFRAME_HDR_LEN];

	if (len == 0 || len > TCPFRAME_MAX)
		return -1;
	k = tc->server ? server_conn(tc, to) : tc->conn;
	/* The server never writes to a connection that has not authenticated. */
	if (k == NULL || k->draining || !k->frame.keyed || (tc->server && !k->authed)) {
		tc->stats.tx_dropped++;
		return -1;
	}
	/* Nothing reaches the proxy's connection before its handshake is done. */
	out = k->dial != NULL ? k->pend : bufferevent_get_output(k->bev);
	if (evbuffer_get_length(out) > (k->dial != NULL ? TCP_PEND_CAP : TCP_OUT_CAP)) {
		tc->stats.tx_dropped++;   /* like a full queue on a path: SCTP recovers */
		return -1;
	}
	/*
	 * The frame goes in as one piece or not at all, and only then is
	 * the keystream used up: a header queued without its datagram, or a
	 * keystream ahead of the stream, would garble every later frame.
	 */
	if (tcpframe_tx_header(&k->frame, len, hdr) < 0 || FAULT("tcp_frame_add") ||
	    evbuffer_reserve_space(out, (ev_ssize_t)(sizeof(hdr) + len), &v, 1) != 1) {
		tc->stats.tx_dropped++;
		return -1;
	}
	memcpy(v.iov_base, hdr, sizeof(hdr));
	memcpy((uint8_t *)v.iov_base + sizeof(hdr), buf, len);
	v.iov_len = sizeof(hdr) + len;
	if (evbuffer_commit_space(out, &v, 1) < 0) {
		tc->stats.tx_dropped++;
		return -1;
	}
	tcpframe_tx_commit(&k->frame);
	tc->stats.tx_packets++;
	tc->stats.tx_bytes += len;
	return 0;
}

static void tcp_carrier_free(struct carrier *c);
static int tcp_carrier_send(struct carrier *c, const struct sockaddr *to, socklen_t tolen,
                            const uint8_t *buf, size_t len);
static int tcp_carrier_local_addr(const struct carrier *c, struct sockaddr_storage *ss,
                                  socklen_t *len);
static void tcp_carrier_get_stats(const struct carrier *c, struct carrier_stats *st);
static void tcp_carrier_drop_peer(struct carrier *c, const struct sockaddr *peer);
static void tcp_carrier_peer_ok(struct carrier *c, const struct sockaddr *peer);

static const struct carrier_ops tcp_ops = {
	.name = "tcp",
	.is_tcp = 1,
	.send = tcp_carrier_send,
	.local_addr = tcp_carrier_local_addr,
	.get_stats = tcp_carrier_get_stats,
	.drop_peer = tcp_carrier_drop_peer,
	.peer_ok = tcp_carrier_peer_ok,
	.free = tcp_carrier_free,
};

static struct tcp_carrier *tc_new(struct event_base *base, const uint8_t frame_key[32],
                                  carrier_recv_cb cb, void *arg)
{
	struct tcp_carrier *tc = calloc(1, sizeof(*tc));

	if (tc == NULL)
		return NULL;
	carrier_hdr_init(&tc->h, &tcp_ops, cb, arg);
	tc->base = base;
	memcpy(tc->frame_key, frame_key, 32);
	return tc;
}

static struct tcp_conn *conn_new(struct tcp_carrier *tc, struct bufferevent *bev)
{
	struct tcp_conn *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return NULL;
	k->tc = tc;
	k->timer = FAULT("tcp_evtimer_new") ? NULL : evtimer_new(tc->base, conn_timer_cb, k);
	if (k->timer == NULL) {
		free(k);
		return NULL;
	}
	k->bev = bev;
	bufferevent_setcb(bev, conn_readcb, NULL, conn_eventcb, k);
	bufferevent_setwatermark(bev, EV_READ, 0, TCP_IN_CAP);
	/*
	 * libevent moves at most 16 KiB per read or writev by default, about
	 * eleven 1452-byte frames: let one syscall take a whole batch.
	 */
	(void)bufferevent_set_max_single_write(bev, TCP_IO_MAX);
	(void)bufferevent_set_max_single_read(bev, TCP_IO_MAX);
	return k;
}

/*
 * The bridge's policy for unauthenticated connections, from its frame key
 * (a secret of the bridge: a prober cannot compute it, but it is the same
 * at every restart and for every probe).
 */
static int tcp_policy_derive(const uint8_t frame_key[32], struct tcp_policy *p)
{
	static const uint8_t salt[] = "sctpt tcp close policy";
	uint8_t r[12];

	if (wc_hkdf(salt, sizeof(salt) - 1, frame_key, 32, NULL, 0, r, sizeof(r)) < 0)
		return -1;
	p->first_ms = TCP_FIRST_MIN_MS + get_u32be(r) % (TCP_FIRST_MAX_MS - TCP_FIRST_MIN_MS + 1);
	p->drain_ms = TCP_DRAIN_MIN_MS + get_u32be(r + 4) % (TCP_DRAIN_MAX_MS - TCP_DRAIN_MIN_MS + 1);
	p->drain_bytes = TCP_DRAIN_MIN_BYTES +
	                 get_u32be(r + 8) % (TCP_DRAIN_MAX_BYTES - TCP_DRAIN_MIN_BYTES + 1);
	wc_wipe(r, sizeof(r));
	return 0;
}

/* ---------- client ---------- */

static void down_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_carrier *tc = arg;

	carrier_report_down((struct carrier *)tc, tc->down_why);
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
	return carrier_tcp_connect_prefixed(base, bind_addr, bindlen, peer, peerlen, proxy,
	                                    frame_key, NULL, 0, cb, arg);
}

struct carrier *carrier_tcp_connect_prefixed(struct event_base *base,
                                             const struct sockaddr *bind_addr,
                                             socklen_t bindlen,
                                             const struct sockaddr *peer, socklen_t peerlen,
                                             const struct carrier_proxy *proxy,
                                             const uint8_t frame_key[32],
                                             const uint8_t *prefix, size_t plen,
                                             carrier_recv_cb cb, void *arg)
{
	struct tcp_carrier *tc = tc_new(base, frame_key, cb, arg);
	struct bufferevent *bev = NULL;
	uint8_t nonce[TCP_NONCE_LEN], head[TCPFRAME_PREFIX_SCAN];
	size_t headlen = TCP_NONCE_LEN;
	evutil_socket_t fd = -1;
	int proxied = proxy != NULL && proxy->type != CARRIER_PROXY_NONE;
	/* Through a proxy the TCP connection goes to the proxy. */
	const struct sockaddr *to = proxied ? (const struct sockaddr *)&proxy->addr : peer;
	char abuf[128];

	if (tc == NULL)
		return NULL;
	tc->down_ev = FAULT("tcp_event_new") ? NULL : event_new(base, -1, 0, down_cb, tc);
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
	bev = FAULT("tcp_bufferevent_new") ? NULL :
	      bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		goto fail;
	fd = -1;
	tc->conn = conn_new(tc, bev);
	if (tc->conn == NULL)
		goto fail;
	memcpy(&tc->conn->peer, peer, peerlen);
	tc->conn->peerlen = peerlen;
	if (wc_random(nonce, sizeof(nonce)) < 0 || 
	    tcpframe_init(&tc->conn->frame, frame_key, nonce, 0, CARRIER_MAX_DATAGRAM) < 0)
		goto fail;
	memcpy(head, nonce, sizeof(nonce));
	if (plen > 0) {
		/* The stream starts with the prefix, then the nonce and its tag. */
		struct wc_hmac *h = tcpframe_prefix_mac(frame_key);
		int n = h == NULL ? -1 : tcpframe_prefix_head(h, prefix, plen, nonce, head);

		wc_hmac_free(h);
		if (n < 0)
			goto fail;
		headlen = (size_t)n;
	}
	if (proxied) {
		tc->conn->pend = evbuffer_new();
		tc->conn->dial = calloc(1, sizeof(*tc->conn->dial));
		if (tc->conn->pend == NULL || tc->conn->dial == NULL ||
		    evbuffer_add(tc->conn->pend, head, headlen) < 0 ||
		    proxy_dial_start(tc->conn->dial, bev, proxy, PROXY_CMD_CONNECT, peer, peerlen,
		                     conn_dial_done, tc->conn) < 0)
			goto fail;
		return (struct carrier *)tc;
	}
	bufferevent_write(bev, head, headlen);
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

/* ---------- server ---------- */

/*
 * Make room for a connection from sa: close the unauthenticated connection
 * pick_victim() names.  Returns whether the carrier is still over its
 * slots or descriptors (no one could be closed).
 */
static int make_room(struct tcp_carrier *tc, const uint8_t *akey, size_t alen,
                     const uint8_t *nkey, size_t nlen)
{
	int full = tc->nconns >= TCP_MAX_CONNS;
	struct tcp_conn *victim;

	/* The new descriptor is open already: it counts, room or not. */
	if (!fd_budget_take(1, FD_BUDGET_RESERVE / 2)) {
		fd_budget_opened(1);
		full = 1;
	}
	victim = pick_victim(tc, akey, alen, nkey, nlen, full);

	if (victim == NULL)
		return full;
	log_ratelimited(&tcp_rl, LOG_LEVEL_INFO, "tcp carrier: %s; closing the oldest "
	                "unauthenticated connection of the busiest source",
	                full ? "all slots taken" : "a source is over its share of slots");
	conn_free(victim);
	return 0;
}

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
	struct tcp_carrier *tc = arg;
	struct bufferevent *bev;
	struct tcp_conn *k;
	uint8_t akey[SRC_KEY_MAX], nkey[SRC_KEY_MAX];
	size_t alen, nlen;
	int full;
	int one = 1;

	accept_pause_ok(&tc->pause);
	alen = src_key(sa, 0, akey);
	nlen = src_key(sa, 1, nkey);
	if (alen == 0 || nlen == 0) {
		close(fd);    /* not IP: cannot be counted */
		return;
	}
	full = make_room(tc, akey, alen, nkey, nlen);
	/*
	 * Nothing could be closed: every slot is authenticated, or the
	 * descriptors went elsewhere (streams).  Hold the newcomer until its
	 * drain ends, unless that would eat the process's own reserve.
	 */
	if (full && (tc->nconns >= TCP_HARD_CONNS || !fd_budget_take(0, FD_BUDGET_RESERVE / 4))) {
		log_ratelimited(&tcp_rl, LOG_LEVEL_WARN, "tcp carrier: no slot and no "
		                "unauthenticated connection to close (%u open, %lu of %lu "
		                "descriptors); closing a new one", tc->nconns, fd_budget_in_use(),
		                fd_budget_limit());
		close(fd);
		fd_budget_release(1);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bev = FAULT("tcp_bufferevent_new") ? NULL :
	      bufferevent_socket_new(tc->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		fd_budget_release(1);
		return;
	}
	k = conn_new(tc, bev);
	if (k == NULL) {
		bufferevent_free(bev);
		fd_budget_release(1);
		return;
	}
	memcpy(&k->peer, sa, (size_t)salen);
	k->peerlen = (socklen_t)salen;
	memcpy(k->akey, akey, alen);
	k->akeylen = alen;
	memcpy(k->nkey, nkey, nlen);
	k->nkeylen = nlen;
	k->keylen = netaddr_key(sa, k->key);
	if (k->keylen == 0 || hmap_get(tc->conns, k->key, k->keylen) != NULL ||
	    hmap_put(tc->conns, k->key, k->keylen, k) < 0) {
		log_debug("tcp carrier: cannot track a new connection; closing it");
		k->keylen = 0;
		conn_free(k);
		return;
	}
	tc->nconns++;
	if (unauth_insert(k) < 0) {
		conn_free(k);
		return;
	}
	log_debug("tcp carrier: accepted a connection (%u open)", tc->nconns);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	if (full) {
		log_ratelimited(&tcp_rl, LOG_LEVEL_WARN, "tcp carrier: no slot and no "
		                "unauthenticated connection to close (%u open); holding a new one "
		                "until its drain ends", tc->nconns);
		conn_drain(k);
		return;
	}
	if (tc_decoy_on(tc))
		k->seen = evbuffer_new();   /* without it, no decoy for this one */
	conn_arm(k, tc->policy.first_ms);
}

/*
 * accept() failed, most likely out of descriptors: close one
 * unauthenticated connection so the next try can succeed, and pause.
 */
static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct tcp_carrier *tc = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct tcp_conn *victim = NULL;

	if (err == EMFILE || err == ENFILE)
		victim = pick_victim(tc, (const uint8_t *)"", 0, (const uint8_t *)"", 0, 1);
	if (victim != NULL)
		conn_free(victim);
	accept_pause_error(&tc->pause, err);
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
	if (tcp_policy_derive(frame_key, &tc->policy) < 0 ||
	    (tc->prefix_mac = tcpframe_prefix_mac(frame_key)) == NULL)
		goto fail;
	TAILQ_INIT(&tc->unauth);
	tc->conns = hmap_new();
	tc->src_count = hmap_new();
	if (tc->conns == NULL || tc->src_count == NULL)
		goto fail;
	tc->lev = evconnlistener_new_bind(base, accept_cb, tc,
	                                  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	                                  LEV_OPT_CLOSE_ON_EXEC, 128, addr, (int)len);
	if (tc->lev == NULL) {
		log_err("tcp carrier: cannot listen on %s: %s",
		        netaddr_format(addr, abuf, sizeof(abuf)), strerror(errno));
		goto fail;
	}
	if (accept_pause_init(&tc->pause, base, tc->lev, &tcp_rl, "tcp carrier: ") < 0)
		goto fail;
	evconnlistener_set_error_cb(tc->lev, accept_error_cb);
	return (struct carrier *)tc;
fail:
	tcp_carrier_free((struct carrier *)tc);
	return NULL;
}

static void tcp_carrier_drop_peer(struct carrier *c, const struct sockaddr *peer)
{
	struct tcp_conn *k = server_conn((struct tcp_carrier *)c, peer);

	/* An authenticated connection keeps its session; a probe is drained. */
	if (k != NULL && !k->authed)
		conn_reject(k);
}

static void tcp_carrier_peer_ok(struct carrier *c, const struct sockaddr *peer)
{
	struct tcp_conn *k = server_conn((struct tcp_carrier *)c, peer);

	if (k == NULL || k->draining)
		return;
	/* Only authenticated datagrams keep the connection: junk frames do not. */
	k->last_rx_ms = clock_now_ms();
	if (!k->authed) {
		k->authed = 1;
		if (k->seen != NULL)
			FREE_AND_NULL(evbuffer_free, k->seen);
		unauth_remove(k);
		conn_arm(k, TCP_IDLE_MS);
	}
}

static int tcp_carrier_local_addr(const struct carrier *c, struct sockaddr_storage *ss,
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

static void tcp_carrier_get_stats(const struct carrier *c, struct carrier_stats *st)
{
	*st = ((const struct tcp_carrier *)c)->stats;
}

static void conn_free_cb(void *value, void *arg)
{
	struct tcp_conn *k = value;

	k->keylen = 0;    /* the map is being freed as a whole */
	conn_free(k);
}

static void tcp_carrier_free(struct carrier *c)
{
	struct tcp_carrier *tc = (struct tcp_carrier *)c;

	if (tc == NULL)
		return;
	accept_pause_clear(&tc->pause);
	if (tc->lev != NULL)
		evconnlistener_free(tc->lev);
	if (tc->conns != NULL) {
		hmap_foreach(tc->conns, conn_free_cb, NULL);
		hmap_free(tc->conns);
	}
	if (tc->src_count != NULL)
		hmap_free(tc->src_count);
	if (tc->conn != NULL)
		conn_free(tc->conn);
	if (tc->down_ev != NULL)
		event_free(tc->down_ev);
	wc_hmac_free(tc->prefix_mac);
	wc_wipe(tc->frame_key, sizeof(tc->frame_key));
	free(tc);
}
