/*
 * The client side of the UDP relay (docs/udp-relay.md): one SOCKS5 UDP
 * ASSOCIATE (RFC 1928 section 7) is one UDP socket here and one UDP
 * association (stream) on the mux.
 *
 * The socket is bound to the address the control connection came in on
 * (same family and interface), port 0, and that address is the reply.  It
 * accepts datagrams only from the control connection's peer IP, and only
 * from the port the client announced (or, if it announced port 0, the
 * port of the first datagram, which is then fixed).  Headers are parsed
 * strictly: a fragment (FRAG != 0), an unknown address type or any other
 * malformed header is dropped and counted.  The association lives exactly
 * as long as the TCP control connection: when either ends, both do.
 */
#include "app/app.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "front/front.h"
#include "mux/mux.h"
#include "util/fault.h"
#include "util/fdbudget.h"
#include "util/log.h"
#include "util/udprecv.h"
#include "util/netaddr.h"

#define UDP_ASSOC_OPEN_TIMEOUT 10      /* seconds for the server's answer */
#define UDP_ASSOC_READ_BURST 64        /* datagrams per readable event */
#define UDP_ASSOC_CTL_MAX 4096         /* bytes a control connection may send */
#define UDP_ASSOC_SOCKBUF (1 << 20)

struct udp_assoc {
	struct event_base *base;
	struct front_conn *fc;          /* until the SOCKS reply */
	struct bufferevent *ctl;        /* the control connection */
	struct mux_stream *s;
	int fd;
	struct event *rd_ev;
	struct event *open_timer;
	struct sockaddr_storage bound;  /* reply address (our UDP socket) */
	socklen_t boundlen;
	struct sockaddr_storage client; /* where datagrams come from and go to */
	socklen_t clientlen;
	int port_known;                 /* client's UDP port announced or learnt */
	size_t ctl_bytes;
	uint32_t ovfl_last;             /* kernel receive drops seen so far */
	unsigned long sent, received;   /* datagrams client->tunnel, tunnel->client */
	unsigned long drop_frag, drop_bad, drop_foreign, drop_full, drop_kernel;
	unsigned long drop_tunnel;      /* the mux's, read before it forgets s */
};

static struct log_ratelimit ua_rl = LOG_RATELIMIT_INIT(10.0, 5);
/* Applications decide how often associations end: 20 summary lines/s at most. */
static struct log_ratelimit life_rl = LOG_RATELIMIT_INIT(0.05, 100);
static uint8_t dgbuf[65536 + SOCKS_UDP_HDR_MAX];

static uint8_t socks_code(int err)
{
	return err >= 1 && err <= 8 ? (uint8_t)err : SOCKS5_GENERAL_FAILURE;
}

/* ::ffff:a.b.c.d becomes a.b.c.d (dual-stack listeners hand those out). */
static void unmap_v4(struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in sin;

	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
		return;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = sin6->sin6_port;
	memcpy(&sin.sin_addr, sin6->sin6_addr.s6_addr + 12, 4);
	memcpy(ss, &sin, sizeof(sin));
	*len = sizeof(sin);
}

static int same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return 0;
	if (a->sa_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		              &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		              &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
	return 0;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static void log_summary(const struct udp_assoc *ua, const char *why)
{
	log_ratelimited(&life_rl, LOG_LEVEL_INFO, "UDP association closed (%s): %lu datagrams "
	                "sent, %lu received; dropped: %lu fragments, %lu malformed, %lu foreign, "
	                "%lu queue full, %lu kernel, %lu tunnel", why, ua->sent, ua->received,
	                ua->drop_frag, ua->drop_bad, ua->drop_foreign, ua->drop_full,
	                ua->drop_kernel,
	                ua->drop_tunnel + (ua->s != NULL ? mux_udp_dropped(ua->s) : 0UL));
}

static void ua_free(struct udp_assoc *ua)
{
	if (ua->rd_ev != NULL)
		event_free(ua->rd_ev);
	if (ua->open_timer != NULL)
		event_free(ua->open_timer);
	if (ua->fd >= 0) {
		close(ua->fd);
		fd_budget_release(1);
	}
	if (ua->ctl != NULL) {
		bufferevent_free(ua->ctl);
		fd_budget_release(1);   /* the front counted it at accept */
	}
	free(ua);
}

/*
 * At the end, what still waits in the socket is dropped; reading it also
 * brings the kernel's final drop count (it only comes with a datagram).
 */
static void ua_drain(struct udp_assoc *ua)
{
	for (int i = 0; i < 4096 && ua->fd >= 0; i++) {
		if (udp_recv_counted(ua->fd, dgbuf, sizeof(dgbuf), NULL, NULL, &ua->ovfl_last,
		                     &ua->drop_kernel) < 0)
			return;
		ua->drop_full++;
	}
}

/* The end of the association, whoever started it. */
static void ua_close(struct udp_assoc *ua, const char *why)
{
	ua_drain(ua);
	log_summary(ua, why);
	if (ua->s != NULL)
		mux_udp_close(ua->s);
	ua->s = NULL;
	ua_free(ua);
}

/* Before the SOCKS reply: answer with a failure, then free. */
static void ua_fail(struct udp_assoc *ua, uint8_t rep)
{
	struct front_conn *fc = ua->fc;
	struct bufferevent *bev = ua->ctl;

	ua->fc = NULL;
	ua->ctl = NULL;   /* front_conn_failed closes it */
	if (ua->s != NULL)
		mux_udp_close(ua->s);
	ua->s = NULL;
	front_conn_failed(fc, bev, rep);
	ua_free(ua);
}

/* ---------- client -> tunnel ---------- */

static void dest_from_socks(const struct socks_dest *sd, struct mux_dest *d)
{
	memset(d, 0, sizeof(*d));
	d->port = sd->port;
	if (sd->atyp == SOCKS_ATYP_IPV4) {
		d->type = MUX_DEST_IPV4;
		memcpy(d->addr, sd->ipv4, 4);
	} else if (sd->atyp == SOCKS_ATYP_IPV6) {
		d->type = MUX_DEST_IPV6;
		memcpy(d->addr, sd->ipv6, 16);
	} else {
		d->type = MUX_DEST_DOMAIN;
		memcpy(d->domain, sd->domain, sizeof(d->domain));
	}
}

static void from_client(struct udp_assoc *ua, const struct sockaddr *src, socklen_t srclen,
                        const uint8_t *p, size_t n)
{
	struct sockaddr_storage from;
	socklen_t fromlen = srclen;
	struct socks_dest sd;
	struct mux_dest d;
	size_t hl;
	int r;

	memcpy(&from, src, srclen);
	unmap_v4(&from, &fromlen);
	if (!same_ip((struct sockaddr *)&from, (struct sockaddr *)&ua->client) ||
	    (ua->port_known && netaddr_port((struct sockaddr *)&from) !=
	                       netaddr_port((struct sockaddr *)&ua->client))) {
		ua->drop_foreign++;
		log_ratelimited(&ua_rl, LOG_LEVEL_INFO,
		                "UDP relay: datagram from another address than the client's; dropped");
		return;
	}
	r = socks_udp_decode(p, n, &sd, &hl);
	if (r == SOCKS_UDP_FRAG) {
		ua->drop_frag++;
		log_ratelimited(&ua_rl, LOG_LEVEL_INFO,
		                "UDP relay: fragmented datagram (FRAG != 0) dropped");
		return;
	}
	if (r != SOCKS_UDP_OK) {
		ua->drop_bad++;
		log_ratelimited(&ua_rl, LOG_LEVEL_INFO, "UDP relay: malformed %s; dropped",
		                r == SOCKS_UDP_ATYP ? "address type" : "datagram header");
		return;
	}
	if (!ua->port_known) {
		/* Announced as 0: the first valid datagram fixes the port. */
		set_port(&ua->client, netaddr_port((struct sockaddr *)&from));
		ua->port_known = 1;
	}
	dest_from_socks(&sd, &d);
	/* What the mux cannot take (full, over the rate) it counts: "tunnel". */
	ua->sent++;
	(void)mux_udp_send(ua->s, &d, p + hl, n - hl);
}

static void udp_readable(evutil_socket_t fd, short what, void *arg)
{
	struct udp_assoc *ua = arg;

	for (int i = 0; i < UDP_ASSOC_READ_BURST && ua->s != NULL; i++) {
		struct sockaddr_storage src;
		socklen_t srclen;
		ssize_t n = udp_recv_counted(fd, dgbuf, sizeof(dgbuf), &src, &srclen,
		                             &ua->ovfl_last, &ua->drop_kernel);

		if (n < 0)
			return;   /* EAGAIN, or an error the next datagram may not have */
		from_client(ua, (struct sockaddr *)&src, srclen, dgbuf, (size_t)n);
	}
}

/* ---------- tunnel -> client ---------- */

static void on_dgram(struct mux_stream *s, const struct mux_dest *addr, const uint8_t *p,
                     size_t n, void *arg)
{
	struct udp_assoc *ua = arg;
	struct socks_dest sd;
	size_t hl;

	if (!ua->port_known) {
		ua->drop_foreign++;   /* nowhere to send it yet */
		return;
	}
	memset(&sd, 0, sizeof(sd));
	sd.port = addr->port;
	if (addr->type == MUX_DEST_IPV4) {
		sd.atyp = SOCKS_ATYP_IPV4;
		memcpy(sd.ipv4, addr->addr, 4);
	} else {
		sd.atyp = SOCKS_ATYP_IPV6;
		memcpy(sd.ipv6, addr->addr, 16);
	}
	hl = socks_udp_encode(&sd, dgbuf, SOCKS_UDP_HDR_MAX);
	if (hl == 0 || n > sizeof(dgbuf) - hl) {
		ua->drop_bad++;
		return;
	}
	memcpy(dgbuf + hl, p, n);
	if (sendto(ua->fd, dgbuf, hl + n, MSG_DONTWAIT, (struct sockaddr *)&ua->client,
	           ua->clientlen) < 0) {
		ua->drop_full++;
		return;
	}
	ua->received++;
}

static void on_closed(struct mux_stream *s, uint8_t code, void *arg)
{
	struct udp_assoc *ua = arg;

	ua->drop_tunnel = mux_udp_dropped(s);
	ua->s = NULL;
	if (code != 0)
		log_ratelimited(&ua_rl, LOG_LEVEL_INFO, "UDP association ended by the server: %s",
		                proto_err_str(code));
	ua_close(ua, code == 0 ? "ended by the server" : "reset by the server");
}

/* ---------- the control connection ---------- */

static void ctl_readcb(struct bufferevent *bev, void *arg)
{
	struct udp_assoc *ua = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	/* Nothing is expected on it; a client that talks much is cut. */
	ua->ctl_bytes += evbuffer_get_length(in);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (ua->ctl_bytes > UDP_ASSOC_CTL_MAX)
		ua_close(ua, "control connection sent data");
}

static void ctl_eventcb(struct bufferevent *bev, short what, void *arg)
{
	ua_close(arg, "control connection closed");
}

static void on_opened(struct mux_stream *s, int err, void *arg)
{
	struct udp_assoc *ua = arg;
	struct front_conn *fc = ua->fc;

	event_del(ua->open_timer);
	if (err != 0) {
		ua->s = NULL;
		log_ratelimited(&ua_rl, LOG_LEVEL_INFO, "UDP ASSOCIATE refused by the server: %s",
		                proto_err_str((uint8_t)err));
		ua_fail(ua, socks_code(err));
		return;
	}
	if (event_add(ua->rd_ev, NULL) < 0) {
		ua_fail(ua, SOCKS5_GENERAL_FAILURE);
		return;
	}
	ua->fc = NULL;
	front_conn_udp_succeeded(fc, ua->ctl, (struct sockaddr *)&ua->bound);
	bufferevent_setcb(ua->ctl, ctl_readcb, NULL, ctl_eventcb, ua);
	bufferevent_enable(ua->ctl, EV_READ);
	log_debug("UDP association open");
}

static void open_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct udp_assoc *ua = arg;

	log_ratelimited(&ua_rl, LOG_LEVEL_INFO, "no answer to UDP ASSOCIATE from the server "
	                "within %d s (an older server does not offer the UDP relay); refusing",
	                UDP_ASSOC_OPEN_TIMEOUT);
	ua_fail(ua, SOCKS5_GENERAL_FAILURE);
}

static const struct mux_udp_cbs ua_cbs = {
	.opened = on_opened,
	.dgram = on_dgram,
	.closed = on_closed,
};

/* Bind the UDP socket beside the control connection's local address. */
static int ua_bind(struct udp_assoc *ua, int ctlfd)
{
	int one = 1, buf = UDP_ASSOC_SOCKBUF;

	ua->boundlen = sizeof(ua->bound);
	if (getsockname(ctlfd, (struct sockaddr *)&ua->bound, &ua->boundlen) < 0)
		return -1;
	unmap_v4(&ua->bound, &ua->boundlen);
	if (ua->bound.ss_family != AF_INET && ua->bound.ss_family != AF_INET6)
		return -1;
	set_port(&ua->bound, 0);
	if (!fd_budget_take(1, FD_BUDGET_RESERVE))
		return -1;
	ua->fd = FAULT("udp_assoc_socket") ? -1
	       : socket(ua->bound.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ua->fd < 0) {
		fd_budget_release(1);
		return -1;
	}
	(void)setsockopt(ua->fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
	(void)setsockopt(ua->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	(void)setsockopt(ua->fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	if (bind(ua->fd, (struct sockaddr *)&ua->bound, ua->boundlen) < 0)
		return -1;
	ua->boundlen = sizeof(ua->bound);
	return getsockname(ua->fd, (struct sockaddr *)&ua->bound, &ua->boundlen);
}

/* Where datagrams may come from: the control peer's IP, the announced port. */
static int ua_client(struct udp_assoc *ua, int ctlfd, const struct socks_dest *announced)
{
	ua->clientlen = sizeof(ua->client);
	if (getpeername(ctlfd, (struct sockaddr *)&ua->client, &ua->clientlen) < 0)
		return -1;
	unmap_v4(&ua->client, &ua->clientlen);
	set_port(&ua->client, announced->port);
	ua->port_known = announced->port != 0;
	return 0;
}

void udp_assoc_start(struct event_base *base, struct mux_session *m, struct front_conn *fc,
                     const struct socks_dest *announced)
{
	struct udp_assoc *ua = calloc(1, sizeof(*ua));
	struct timeval tv = { UDP_ASSOC_OPEN_TIMEOUT, 0 };
	struct bufferevent *bev = front_conn_bev(fc);
	int ctlfd = bufferevent_getfd(bev);

	if (ua == NULL) {
		front_conn_failed(fc, bev, SOCKS5_GENERAL_FAILURE);
		return;
	}
	ua->base = base;
	ua->fc = fc;
	ua->ctl = bev;
	ua->fd = -1;
	if (ua_client(ua, ctlfd, announced) < 0 || ua_bind(ua, ctlfd) < 0) {
		log_ratelimited(&ua_rl, LOG_LEVEL_WARN, "UDP ASSOCIATE: cannot open a UDP socket: %s",
		                strerror(errno));
		ua_fail(ua, SOCKS5_GENERAL_FAILURE);
		return;
	}
	ua->rd_ev = event_new(base, ua->fd, EV_READ | EV_PERSIST, udp_readable, ua);
	ua->open_timer = evtimer_new(base, open_timeout_cb, ua);
	if (ua->rd_ev == NULL || ua->open_timer == NULL || evtimer_add(ua->open_timer, &tv) < 0) {
		ua_fail(ua, SOCKS5_GENERAL_FAILURE);
		return;
	}
	ua->s = mux_udp_open(m, &ua_cbs, ua);
	if (ua->s == NULL) {
		log_ratelimited(&ua_rl, LOG_LEVEL_WARN, "UDP ASSOCIATE: no room for another UDP "
		                "association on the tunnel; refusing");
		ua_fail(ua, SOCKS5_GENERAL_FAILURE);
	}
}
