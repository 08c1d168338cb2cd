/*
 * UDP carrier.  Reads are batched with recvmmsg() so one wakeup drains many
 * datagrams; the per-wakeup budget is bounded so a flood on one socket
 * cannot starve the rest of the event loop.
 *
 * Through a SOCKS5 proxy (UDP ASSOCIATE): a TCP control connection to the
 * proxy negotiates the association and stays open (its end is the
 * carrier's end); the UDP socket is then connected to the proxy's relay,
 * and every datagram carries the SOCKS5 UDP header naming the real server,
 * added on send and checked and removed on receive.
 */
#include "carrier/carrier_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "util/bytes.h"
#include "util/clock.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/netaddr.h"

#define UDP_BATCH 32
#define UDP_SLOT 2048              /* datagrams above this use the big slot */
#define UDP_BUDGET 512             /* datagrams per wakeup */
#define UDP_SOCKBUF (4 * 1024 * 1024)
#define UDP_TX_BATCH 64            /* datagrams per sendmmsg() */
#define UDP_TX_SLOT 2048           /* larger datagrams are sent at once */
#define UDP_GSO_MAX_BYTES 65000    /* one GSO send stays below 64 KiB */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#define UDP_PX_MIN_LIFE_MS 1000    /* a proxied path reports its end no sooner */
#define UDP_PX_CTRL_MAX 4096       /* bytes the control connection may send us */

/* A UDP carrier's SOCKS5 UDP ASSOCIATE state. */
struct udp_px {
	struct event_base *base;
	struct sockaddr_storage peer;  /* the real server */
	socklen_t peerlen;
	struct sockaddr_storage bind;  /* where to bind the UDP socket, if bindlen */
	socklen_t bindlen;
	uint8_t hdr[SOCKS5_UDP_HDR_MAX];
	size_t hdrlen;
	struct bufferevent *ctrl;      /* control connection to the proxy */
	struct proxy_dial *dial;       /* while negotiating */
	int ready;                     /* the relay is known and the socket set up */
	struct timespec created;
	struct event *down_ev;
	const char *down_why;
	uint64_t rx_dropped;           /* malformed, fragments, wrong source */
};

struct carrier {
	struct carrier_hdr h;          /* first: see carrier_internal.h */
	int fd;
	int connected;
	struct event *ev;
	struct carrier_stats stats;
	uint8_t *slots;                /* UDP_BATCH * slot_size */
	size_t slot_size;

	/*
	 * Outgoing datagrams are queued and sent with one sendmmsg() when the
	 * current loop iteration's work is done (or the batch is full): on
	 * loopback and in sandboxes the per-syscall cost dominates.
	 */
	struct event *flush_ev;
	uint8_t *tx_slots;             /* UDP_TX_BATCH * UDP_TX_SLOT */
	size_t tx_len[UDP_TX_BATCH];
	struct sockaddr_storage tx_to[UDP_TX_BATCH];
	socklen_t tx_tolen[UDP_TX_BATCH];
	unsigned tx_count;
	size_t tx_room;                /* a slot was taken for this many bytes, or 0 */
	/*
	 * UDP GSO/GRO: runs of equal-sized datagrams to one peer leave in one
	 * send and arrive in one receive, split by the kernel.  Turned off
	 * for good if the kernel refuses it.
	 */
	int gso;
	struct udp_px *px;             /* through a SOCKS5 proxy, else NULL */
};

static int udp_send(struct carrier *c, const struct sockaddr *to, socklen_t tolen,
                    const uint8_t *buf, size_t len);
static uint8_t *udp_tx_slot(struct carrier *c, size_t len);
static int udp_tx_commit(struct carrier *c, const struct sockaddr *to, socklen_t tolen,
                         size_t len);
static int udp_local_addr(const struct carrier *c, struct sockaddr_storage *ss,
                          socklen_t *len);
static void udp_get_stats(const struct carrier *c, struct carrier_stats *st);
static void udp_free(struct carrier *c);

/* No connections: nothing to drop or keep (carrier_drop_peer is a no-op). */
static const struct carrier_ops udp_ops = {
	.name = "udp",
	.is_tcp = 0,
	.send = udp_send,
	.tx_slot = udp_tx_slot,
	.tx_commit = udp_tx_commit,
	.local_addr = udp_local_addr,
	.get_stats = udp_get_stats,
	.free = udp_free,
};

static struct log_ratelimit udp_err_rl = LOG_RATELIMIT_INIT(10.0, 3);

/* Segment size of a GRO-coalesced receive, or 0. */
static size_t gro_segment(struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
			int seg;

			memcpy(&seg, CMSG_DATA(cm), sizeof(seg));
			return seg > 0 ? (size_t)seg : 0;
		}
	}
	return 0;
}

/*
 * A datagram from the SOCKS5 relay: only whole datagrams (FRAG 0) from
 * the server itself go up, without the header and as if from the server.
 */
static int px_deliver(struct carrier *c, uint8_t *p, size_t len)
{
	struct sockaddr_storage from;
	socklen_t fromlen = 0;
	size_t hl = 0;
	int r = socks5_udp_parse(p, len, &from, &fromlen, &hl);

	if (r != SOCKS5_UDP_OK || !proxy_same_addr((struct sockaddr *)&from,
	                                           (struct sockaddr *)&c->px->peer)) {
		c->px->rx_dropped++;
		log_ratelimited(&udp_err_rl, LOG_LEVEL_INFO, "udp carrier: dropped a datagram from "
		                "the SOCKS5 relay (%s)",
		                r == SOCKS5_UDP_FRAG ? "a fragment" :
		                r == SOCKS5_UDP_OK ? "not from the server" : "bad header");
		return 0;
	}
	c->stats.rx_packets++;
	c->stats.rx_bytes += len;      /* bytes on the wire, as for sending */
	return carrier_deliver(c, (struct sockaddr *)&c->px->peer, c->px->peerlen, p + hl,
	                       len - hl);
}

/*
 * Hand each datagram (each GRO segment) to the layer above.  -1 if the
 * layer above freed the carrier meanwhile (then touch nothing more).
 */
static int deliver(struct carrier *c, struct msghdr *mh, uint8_t *p, size_t len)
{
	size_t seg = gro_segment(mh);

	if (seg == 0 || seg >= len)
		seg = len;
	while (len > 0) {
		size_t k = len < seg ? len : seg;

		if (c->px != NULL) {
			if (px_deliver(c, p, k) < 0)
				return -1;
		} else {
			c->stats.rx_packets++;
			c->stats.rx_bytes += k;
			if (carrier_deliver(c, (struct sockaddr *)mh->msg_name, mh->msg_namelen,
			                    p, k) < 0)
				return -1;
		}
		p += k;
		len -= k;
	}
	return 0;
}

static void carrier_udp_read(evutil_socket_t fd, short what, void *arg)
{
	struct carrier *c = arg;
	struct mmsghdr msgs[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	struct sockaddr_storage from[UDP_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl[UDP_BATCH];
	int total = 0;

	while (total < UDP_BUDGET) {
		int n;

		for (int i = 0; i < UDP_BATCH; i++) {
			iov[i].iov_base = c->slots + (size_t)i * c->slot_size;
			iov[i].iov_len = c->slot_size;
			memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &from[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
			msgs[i].msg_hdr.msg_control = ctl[i].buf;
			msgs[i].msg_hdr.msg_controllen = sizeof(ctl[i].buf);
		}
		n = recvmmsg(fd, msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				/* ICMP errors on a connected socket land here. */
				log_ratelimited(&udp_err_rl, LOG_LEVEL_INFO,
				                "udp carrier: receive error: %s",
				                strerror(errno));
			return;
		}
		for (int i = 0; i < n; i++) {
			if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
				continue;   /* larger than any packet we send */
			if (deliver(c, &msgs[i].msg_hdr, iov[i].iov_base, msgs[i].msg_len) < 0)
				return;   /* freed by the layer above */
		}
		total += n;
		if (n < UDP_BATCH)
			return;
	}
}

static void carrier_flush_cb(evutil_socket_t fd, short what, void *arg);

/*
 * One receive area for all UDP carriers of the process (issue 16: a server
 * port range has up to 1024 of them, 2 MB each otherwise).  Sharing is
 * safe: a read callback fills it and hands every datagram up before it
 * returns, nothing keeps a pointer into it, and no callback runs inside
 * another carrier's.
 */
static uint8_t *rx_shared;
static unsigned rx_users;

static uint8_t *rx_area_get(size_t size)
{
	if (rx_shared == NULL && (rx_shared = malloc(size)) == NULL)
		return NULL;
	rx_users++;
	return rx_shared;
}

static void rx_area_put(uint8_t *p)
{
	if (p == NULL || p != rx_shared)
		return;
	if (--rx_users == 0) {
		free(rx_shared);
		rx_shared = NULL;
	}
}

static int udp_socket_setup(int fd)
{
	int sz = UDP_SOCKBUF;

	if (evutil_make_socket_nonblocking(fd) < 0 ||
	    evutil_make_socket_closeonexec(fd) < 0)
		return -1;
	int one = 1;

	/* Coalesced receives; harmless where the kernel lacks it. */
	(void)setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
	/* Best effort: the kernel caps these at net.core.*mem_max. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
	return 0;
}

static struct carrier *udp_alloc(struct event_base *base, carrier_recv_cb cb, void *arg)
{
	struct carrier *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	carrier_hdr_init(&c->h, &udp_ops, cb, arg);
	c->fd = -1;
	c->slot_size = CARRIER_MAX_DATAGRAM;
	c->gso = 1;
	c->flush_ev = FAULT("udp_event_new") ? NULL : event_new(base, -1, 0, carrier_flush_cb, c);
	if (c->flush_ev == NULL) {
		udp_free(c);
		return NULL;
	}
	return c;
}

/* The socket: bound to bind_addr and/or connected to peer.  0 or -1 (logged). */
static int udp_open(struct carrier *c, struct event_base *base,
                    const struct sockaddr *bind_addr, socklen_t bindlen,
                    const struct sockaddr *peer, socklen_t peerlen)
{
	int family = bind_addr != NULL ? bind_addr->sa_family : peer->sa_family;
	char abuf[128];

	/* Buffers only once there is a socket: a proxied path may never get one. */
	c->slots = rx_area_get(UDP_BATCH * c->slot_size);
	c->tx_slots = malloc(UDP_TX_BATCH * UDP_TX_SLOT);
	if (c->slots == NULL || c->tx_slots == NULL)
		return -1;
	c->fd = socket(family, SOCK_DGRAM, IPPROTO_UDP);
	if (c->fd < 0 || udp_socket_setup(c->fd) < 0) {
		log_err("udp carrier: socket: %s", strerror(errno));
		return -1;
	}
	if (bind_addr != NULL) {
		int one = 1;

		if (family == AF_INET6)
			(void)setsockopt(c->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(c->fd, bind_addr, bindlen) < 0) {
			log_err("udp carrier: cannot bind %s: %s",
			        netaddr_format(bind_addr, abuf, sizeof(abuf)), strerror(errno));
			return -1;
		}
	}
	if (peer != NULL) {
		if (connect(c->fd, peer, peerlen) < 0) {
			log_err("udp carrier: cannot connect to %s: %s",
			        log_addr(netaddr_format(peer, abuf, sizeof(abuf))), strerror(errno));
			return -1;
		}
		c->connected = 1;
	}
	c->ev = FAULT("udp_event_new") ? NULL :
	        event_new(base, c->fd, EV_READ | EV_PERSIST, carrier_udp_read, c);
	if (c->ev == NULL || event_add(c->ev, NULL) < 0)
		return -1;
	return 0;
}

struct carrier *carrier_udp_new(struct event_base *base,
                                const struct sockaddr *bind_addr, socklen_t bindlen,
                                const struct sockaddr *peer, socklen_t peerlen,
                                carrier_recv_cb cb, void *arg)
{
	struct carrier *c = udp_alloc(base, cb, arg);

	if (c != NULL && udp_open(c, base, bind_addr, bindlen, peer, peerlen) < 0)
		FREE_AND_NULL(udp_free, c);
	return c;
}

/* ---------- through a SOCKS5 proxy ---------- */

static void px_down_cb(evutil_socket_t fd, short what, void *arg)
{
	struct carrier *c = arg;

	carrier_report_down(c, c->px->down_why);
}

/*
 * Report the end from the loop, once, and no sooner than a second after
 * the carrier was made: the wire layer re-opens a UDP path as soon as it
 * has a packet to send, so a proxy that refuses at once is then retried
 * about once a second, like a TCP path, and not for every packet.
 */
static void px_down(struct carrier *c, const char *why)
{
	struct udp_px *px = c->px;
	struct timeval tv = { 0, 0 };
	double age;

	if (px->down_why != NULL)
		return;
	px->down_why = why;
	px->ready = 0;
	age = clock_ms_since(&px->created);
	if (age < UDP_PX_MIN_LIFE_MS) {
		long ms = (long)(UDP_PX_MIN_LIFE_MS - age) + 1;

		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
	}
	if (evtimer_add(px->down_ev, &tv) < 0)
		event_active(px->down_ev, EV_TIMEOUT, 0);   /* at once rather than never */
}

static void px_ctrl_readcb(struct bufferevent *bev, void *arg)
{
	struct carrier *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	/* The proxy has nothing more to say on it; a flood ends the path. */
	if (evbuffer_get_length(in) > UDP_PX_CTRL_MAX)
		px_down(c, "SOCKS5 proxy sent unexpected data on the UDP ASSOCIATE control "
		        "connection");
	evbuffer_drain(in, evbuffer_get_length(in));
}

static void px_ctrl_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct carrier *c = arg;

	bufferevent_disable(bev, EV_READ | EV_WRITE);
	px_down(c, (what & BEV_EVENT_EOF) ?
	        "SOCKS5 proxy closed the UDP ASSOCIATE control connection (the association "
	        "ends with it)" :
	        "the UDP ASSOCIATE control connection to the SOCKS5 proxy failed");
}

static void px_dial_done(struct proxy_dial *d, const char *why, void *arg)
{
	struct carrier *c = arg;
	struct udp_px *px = c->px;
	const struct sockaddr *relay = (const struct sockaddr *)&d->neg.bound;
	const struct sockaddr *bind = NULL;
	char abuf[128];

	if (why != NULL) {
		px_down(c, why);
		return;
	}
	if (px->bindlen > 0 && px->bind.ss_family == relay->sa_family)
		bind = (const struct sockaddr *)&px->bind;
	if (udp_open(c, px->base, bind, bind != NULL ? px->bindlen : 0, relay,
	             d->neg.bound_len) < 0) {
		px_down(c, "cannot set up the UDP socket to the SOCKS5 relay");
		return;
	}
	log_info("udp carrier: SOCKS5 UDP ASSOCIATE ready (relay %s)",
	         log_addr(netaddr_format(relay, abuf, sizeof(abuf))));
	proxy_dial_clear(px->dial);
	FREE_AND_NULL(free, px->dial);
	bufferevent_setcb(px->ctrl, px_ctrl_readcb, NULL, px_ctrl_eventcb, c);
	bufferevent_enable(px->ctrl, EV_READ);
	px_ctrl_readcb(px->ctrl, c);
	if (px->down_why == NULL)
		px->ready = 1;
}

struct carrier *carrier_udp_connect_proxy(struct event_base *base,
                                          const struct sockaddr *bind_addr, socklen_t bindlen,
                                          const struct sockaddr *peer, socklen_t peerlen,
                                          const struct carrier_proxy *proxy,
                                          carrier_recv_cb cb, void *arg)
{
	struct carrier *c = udp_alloc(base, cb, arg);
	struct udp_px *px;
	evutil_socket_t fd = -1;
	static struct log_ratelimit type_rl = LOG_RATELIMIT_INIT(60.0, 1);

	if (c == NULL)
		return NULL;
	px = c->px = calloc(1, sizeof(*px));
	if (px == NULL || peerlen > sizeof(px->peer) || bindlen > sizeof(px->bind))
		goto fail;
	px->base = base;
	px->created = clock_now();
	memcpy(&px->peer, peer, peerlen);
	px->peerlen = peerlen;
	if (bind_addr != NULL) {
		memcpy(&px->bind, bind_addr, bindlen);
		px->bindlen = bindlen;
	}
	px->hdrlen = socks5_udp_header(peer, px->hdr);
	px->down_ev = FAULT("udp_evtimer_new") ? NULL : evtimer_new(base, px_down_cb, c);
	if (px->down_ev == NULL || px->hdrlen == 0)
		goto fail;
	if (proxy->type != CARRIER_PROXY_SOCKS5) {
		const char *why = proxy->type == CARRIER_PROXY_HTTP ?
		                  "UDP paths need a socks5 proxy (this one is http)" :
		                  "UDP paths need a socks5 proxy (this one is socks4a)";

		/* Nothing to try: this path stays unused, other paths may work. */
		log_ratelimited(&type_rl, LOG_LEVEL_WARN, "udp carrier: %s", why);
		px_down(c, why);
		return c;
	}
	fd = socket(proxy->addr.ss_family, SOCK_STREAM, IPPROTO_TCP);
	if (fd < 0 || evutil_make_socket_nonblocking(fd) < 0) {
		log_err("udp carrier: socket: %s", strerror(errno));
		goto fail;
	}
	(void)evutil_make_socket_closeonexec(fd);
	if (bind_addr != NULL && bind_addr->sa_family == proxy->addr.ss_family) {
		struct sockaddr_storage any;

		/* Same address as the UDP socket will have, any port. */
		memcpy(&any, bind_addr, bindlen);
		if (any.ss_family == AF_INET)
			((struct sockaddr_in *)&any)->sin_port = 0;
		else if (any.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&any)->sin6_port = 0;
		if (bind(fd, (struct sockaddr *)&any, bindlen) < 0) {
			char abuf[128];

			log_err("udp carrier: cannot bind %s: %s",
			        netaddr_format(bind_addr, abuf, sizeof(abuf)), strerror(errno));
			goto fail;
		}
	}
	px->ctrl = FAULT("udp_bufferevent_new") ? NULL :
	           bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (px->ctrl == NULL)
		goto fail;
	fd = -1;
	px->dial = calloc(1, sizeof(*px->dial));
	if (px->dial == NULL ||
	    proxy_dial_start(px->dial, px->ctrl, proxy, PROXY_CMD_UDP_ASSOCIATE, NULL, 0,
	                     px_dial_done, c) < 0)
		goto fail;
	return c;
fail:
	if (fd >= 0)
		close(fd);
	udp_free(c);
	return NULL;
}

static void count_send_error(struct carrier *c, int err)
{
	c->stats.tx_dropped++;
	if (err != EAGAIN && err != EWOULDBLOCK && err != ECONNREFUSED)
		log_ratelimited(&udp_err_rl, LOG_LEVEL_INFO,
		                "udp carrier: send error: %s", strerror(err));
}

static int same_peer(const struct carrier *c, unsigned a, unsigned b)
{
	return c->connected ||
	       (c->tx_tolen[a] == c->tx_tolen[b] &&
	        memcmp(&c->tx_to[a], &c->tx_to[b], c->tx_tolen[a]) == 0);
}

/*
 * Length of the run of queued datagrams starting at `first` that can go as
 * one GSO send: same peer, all of the first one's size except possibly a
 * shorter last one, at most UDP_GSO_MAX_BYTES in total.
 */
static unsigned gso_run(const struct carrier *c, unsigned first)
{
	size_t seg = c->tx_len[first], total = seg;
	unsigned n = 1;

	if (!c->gso)
		return 1;
	while (first + n < c->tx_count) {
		unsigned k = first + n;

		if (!same_peer(c, first, k) || c->tx_len[k] > seg ||
		    total + c->tx_len[k] > UDP_GSO_MAX_BYTES)
			break;
		total += c->tx_len[k];
		n++;
		if (c->tx_len[k] < seg)
			break;   /* a short one ends the run */
	}
	return n;
}

/* Forget the first n queued datagrams (already sent or dropped). */
static void tx_shift(struct carrier *c, unsigned n)
{
	unsigned rest = c->tx_count - n;

	memmove(c->tx_slots, c->tx_slots + (size_t)n * UDP_TX_SLOT, (size_t)rest * UDP_TX_SLOT);
	memmove(c->tx_len, c->tx_len + n, rest * sizeof(c->tx_len[0]));
	memmove(c->tx_to, c->tx_to + n, rest * sizeof(c->tx_to[0]));
	memmove(c->tx_tolen, c->tx_tolen + n, rest * sizeof(c->tx_tolen[0]));
	c->tx_count = rest;
}

static void carrier_flush(struct carrier *c)
{
	struct mmsghdr msgs[UDP_TX_BATCH];
	struct iovec iov[UDP_TX_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl[UDP_TX_BATCH];
	unsigned first[UDP_TX_BATCH], count[UDP_TX_BATCH];
	unsigned nmsg = 0, done = 0;

	for (unsigned i = 0; i < c->tx_count; i++) {
		iov[i].iov_base = c->tx_slots + (size_t)i * UDP_TX_SLOT;
		iov[i].iov_len = c->tx_len[i];
	}
	for (unsigned i = 0; i < c->tx_count; nmsg++) {
		unsigned n = gso_run(c, i);
		struct msghdr *mh = &msgs[nmsg].msg_hdr;

		memset(&msgs[nmsg], 0, sizeof(msgs[nmsg]));
		mh->msg_iov = &iov[i];
		mh->msg_iovlen = n;
		if (!c->connected) {
			mh->msg_name = &c->tx_to[i];
			mh->msg_namelen = c->tx_tolen[i];
		}
		if (n > 1) {
			struct cmsghdr *cm;
			uint16_t seg = (uint16_t)c->tx_len[i];

			mh->msg_control = ctl[nmsg].buf;
			mh->msg_controllen = sizeof(ctl[nmsg].buf);
			cm = CMSG_FIRSTHDR(mh);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(seg));
			memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
		}
		first[nmsg] = i;
		count[nmsg] = n;
		i += n;
	}
	while (done < nmsg) {
		int n = sendmmsg(c->fd, msgs + done, nmsg - done, MSG_DONTWAIT);

		if (n <= 0) {
			int err = n < 0 ? errno : EAGAIN;

			if (err == EINTR)
				continue;
			if ((err == EIO || err == EINVAL || err == ENOPROTOOPT) &&
			    count[done] > 1 && c->gso) {
				/* No GSO on this path: resend the rest one by one. */
				log_info("udp carrier: kernel refused UDP GSO (%s); not using it",
				         strerror(err));
				c->gso = 0;
				tx_shift(c, first[done]);
				carrier_flush(c);
				return;
			}
			/* Drop it (the network may lose packets) and go on. */
			for (unsigned d = 0; d < count[done]; d++)
				count_send_error(c, err);
			done++;
			continue;
		}
		for (int k = 0; k < n; k++) {
			unsigned m = done + (unsigned)k;

			for (unsigned d = 0; d < count[m]; d++) {
				c->stats.tx_packets++;
				c->stats.tx_bytes += c->tx_len[first[m] + d];
			}
		}
		done += (unsigned)n;
	}
	c->tx_count = 0;
}

static void carrier_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	carrier_flush(arg);
}

/*
 * The next slot of the send batch (after the SOCKS5 UDP header, if any).
 * The batch never stays full: the commit that fills it sends it.
 */
static uint8_t *udp_tx_slot(struct carrier *c, size_t len)
{
	size_t hl = c->px != NULL ? c->px->hdrlen : 0;
	uint8_t *slot;

	c->tx_room = 0;
	if (c->tx_slots == NULL || c->fd < 0 || (c->px != NULL && !c->px->ready) ||
	    len == 0 || hl + len > UDP_TX_SLOT || c->tx_count >= UDP_TX_BATCH ||
	    FAULT("udp_tx_slot"))
		return NULL;
	slot = c->tx_slots + (size_t)c->tx_count * UDP_TX_SLOT;
	if (hl > 0)
		memcpy(slot, c->px->hdr, hl);
	c->tx_room = len;
	return slot + hl;
}

static int udp_tx_commit(struct carrier *c, const struct sockaddr *to, socklen_t tolen,
                         size_t len)
{
	size_t hl = c->px != NULL ? c->px->hdrlen : 0;
	unsigned i = c->tx_count;

	if (c->tx_room == 0 || len == 0 || len > c->tx_room || i >= UDP_TX_BATCH ||
	    (!c->connected && (to == NULL || tolen > sizeof(c->tx_to[i])))) {
		c->tx_room = 0;
		c->stats.tx_dropped++;
		return -1;
	}
	c->tx_room = 0;
	c->tx_len[i] = hl + len;
	if (!c->connected) {
		memcpy(&c->tx_to[i], to, tolen);
		c->tx_tolen[i] = tolen;
	}
	if (++c->tx_count == UDP_TX_BATCH)
		carrier_flush(c);
	else if (i == 0)
		event_active(c->flush_ev, EV_WRITE, 0);
	return 0;
}

static int udp_send(struct carrier *c, const struct sockaddr *to, socklen_t tolen,
                    const uint8_t *buf, size_t len)
{
	ssize_t r;
	size_t hl = 0;
	if (c->px != NULL) {
		/* Before the association is ready the path is simply not up. */
		if (!c->px->ready) {
			c->stats.tx_dropped++;
			return -1;
		}
		hl = c->px->hdrlen;
	}
	if (hl + len <= UDP_TX_SLOT && c->tx_slots != NULL) {
		uint8_t *slot = udp_tx_slot(c, len);

		if (slot == NULL) {
			c->stats.tx_dropped++;
			return -1;
		}
		memcpy(slot, buf, len);
		return udp_tx_commit(c, to, tolen, len);
	}
	/* Keep order with what is queued, then send the big one directly. */
	carrier_flush(c);
	if (hl > 0) {
		struct iovec iov[2] = { { c->px->hdr, hl }, { (void *)buf, len } };
		struct msghdr mh;

		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = 2;
		r = sendmsg(c->fd, &mh, MSG_DONTWAIT);
	} else if (c->connected) {
		r = send(c->fd, buf, len, MSG_DONTWAIT);
	} else {
		r = sendto(c->fd, buf, len, MSG_DONTWAIT, to, tolen);
	}
	if (r < 0) {
		count_send_error(c, errno);
		return -1;
	}
	c->stats.tx_packets++;
	c->stats.tx_bytes += (uint64_t)r;
	return 0;
}

static int udp_local_addr(const struct carrier *c, struct sockaddr_storage *ss,
                          socklen_t *len)
{
	*len = sizeof(*ss);
	return c->fd >= 0 ? getsockname(c->fd, (struct sockaddr *)ss, len) : -1;
}

static void udp_get_stats(const struct carrier *c, struct carrier_stats *st)
{
	*st = c->stats;
}

static void udp_free(struct carrier *c)
{
	if (c == NULL)
		return;
	if (c->tx_count > 0 && c->fd >= 0)
		carrier_flush(c);
	if (c->ev != NULL)
		event_free(c->ev);
	if (c->flush_ev != NULL)
		event_free(c->flush_ev);
	if (c->px != NULL) {
		if (c->px->dial != NULL) {
			proxy_dial_clear(c->px->dial);
			free(c->px->dial);
		}
		if (c->px->ctrl != NULL)
			bufferevent_free(c->px->ctrl);
		if (c->px->down_ev != NULL)
			event_free(c->px->down_ev);
		free(c->px);
	}
	free(c->tx_slots);
	if (c->fd >= 0)
		close(c->fd);
	rx_area_put(c->slots);
	free(c);
}
