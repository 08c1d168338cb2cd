/*
 * The server side of the UDP relay (docs/udp-relay.md).  Each UDP
 * association a client opens gets its own UDP socket per address family
 * (made on first use, bound to the wildcard address and an ephemeral
 * port), full-cone: a reply from any remote address reaches the client
 * with that address in the datagram header -- as long as the ACL would let
 * the client send there, so the relay is no way into internal addresses in
 * either direction.
 *
 * Destinations get the TCP policy (egress_acl_allows: internal addresses
 * refused unless --allow admits them).  Names are resolved with evdns,
 * never blocking, and cached per association for a short while; datagrams
 * waiting for a name are bounded.  Nothing here blocks or queues without
 * bound: a datagram the kernel will not take right now is dropped and
 * counted, as UDP would.  An association without datagrams for udp_idle
 * seconds ends (the client closes the SOCKS control connection).
 */
#include "egress/egress_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "util/clock.h"
#include "util/fault.h"
#include "util/fdbudget.h"
#include "util/log.h"
#include "util/udprecv.h"
#include "util/netaddr.h"

#define EUDP_READ_BURST 64          /* datagrams per readable event */
#define EUDP_SOCKBUF (1 << 20)
#define EUDP_CACHE 8                /* names remembered per association */
#define EUDP_CACHE_MS 30000         /* for this long */
#define EUDP_LOOKUPS_MAX 4          /* names being resolved at once */
#define EUDP_WAIT_MAX 16            /* datagrams waiting for those names */
#define EUDP_WAIT_BYTES (64 * 1024)

struct eudp;

struct eudp_name {
	char name[256];
	uint64_t expires;
	int ok;                          /* 0: failed or refused (negative entry) */
	struct sockaddr_storage sa;      /* port 0 */
	socklen_t salen;
};

struct eudp_wait {
	STAILQ_ENTRY(eudp_wait) link;
	struct eudp_lookup *lk;
	uint16_t port;
	size_t len;
	uint8_t data[];
};

struct eudp_lookup {
	LIST_ENTRY(eudp_lookup) link;
	struct eudp *u;                  /* NULL once the association is gone */
	struct evdns_getaddrinfo_request *req;
	char name[256];
};

struct eudp {
	struct egress *e;
	struct mux_stream *s;
	char client[64];
	int fd[2];                       /* IPv4, IPv6; -1 until needed */
	struct event *ev[2];
	uint32_t ovfl[2];
	struct event *idle;
	uint64_t last_ms;
	struct eudp_name cache[EUDP_CACHE];
	unsigned cache_next;
	LIST_HEAD(, eudp_lookup) lookups;
	unsigned nlookups;
	STAILQ_HEAD(, eudp_wait) waiting;
	unsigned nwait;
	size_t wait_bytes;
	unsigned long out, in, dropped, refused;
};

static struct log_ratelimit eudp_rl = LOG_RATELIMIT_INIT(10.0, 5);
/* A client decides how often associations open and close: 20 lines/s at most. */
static struct log_ratelimit life_rl = LOG_RATELIMIT_INIT(0.05, 100);
static uint8_t rxbuf[65536];

/*
 * At the end, what still waits in the sockets is dropped; reading it also
 * brings the kernel's final drop count (it only comes with a datagram).
 */
static void eudp_drain(struct eudp *u)
{
	for (int i = 0; i < 2; i++) {
		for (int k = 0; k < 4096 && u->fd[i] >= 0; k++) {
			if (udp_recv_counted(u->fd[i], rxbuf, sizeof(rxbuf), NULL, NULL, &u->ovfl[i],
			                     &u->dropped) < 0)
				break;
			u->dropped++;
		}
	}
}

static void eudp_free(struct eudp *u)
{
	struct eudp_lookup *lk;

	eudp_drain(u);
	log_ratelimited(&life_rl, LOG_LEVEL_INFO, "client %s: UDP association closed: %lu "
	                "datagrams out, %lu in; %lu dropped, %lu refused by policy", u->client,
	                u->out, u->in, u->dropped + (u->s != NULL ? mux_udp_dropped(u->s) : 0),
	                u->refused);
	while (!STAILQ_EMPTY(&u->waiting)) {
		struct eudp_wait *w = STAILQ_FIRST(&u->waiting);

		STAILQ_REMOVE_HEAD(&u->waiting, link);
		free(w);
	}
	/* Lookups in flight finish on their own; they just find no owner. */
	while ((lk = LIST_FIRST(&u->lookups)) != NULL) {
		LIST_REMOVE(lk, link);
		lk->u = NULL;
		if (lk->req != NULL)
			evdns_getaddrinfo_cancel(lk->req);
	}
	for (int i = 0; i < 2; i++) {
		if (u->ev[i] != NULL)
			event_free(u->ev[i]);
		if (u->fd[i] >= 0) {
			close(u->fd[i]);
			fd_budget_release(1);
		}
	}
	if (u->idle != NULL)
		event_free(u->idle);
	free(u);
}

/* We end it (idle): CLOSE to the client, who closes its control connection. */
static void eudp_close(struct eudp *u, const char *why)
{
	struct mux_stream *s = u->s;

	log_ratelimited(&life_rl, LOG_LEVEL_INFO, "client %s: UDP association %s", u->client, why);
	u->dropped += mux_udp_dropped(s);
	u->s = NULL;
	mux_udp_close(s);
	eudp_free(u);
}

/* ---------- replies: remote -> client ---------- */

static int dest_from_sa(const struct sockaddr *sa, struct mux_dest *d)
{
	memset(d, 0, sizeof(*d));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		d->type = MUX_DEST_IPV4;
		memcpy(d->addr, &sin->sin_addr, 4);
		d->port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		d->type = MUX_DEST_IPV6;
		memcpy(d->addr, &sin6->sin6_addr, 16);
		d->port = ntohs(sin6->sin6_port);
	} else {
		return -1;
	}
	return d->port != 0 ? 0 : -1;
}

static void readable(evutil_socket_t fd, short what, void *arg)
{
	struct eudp *u = arg;
	int i = u->fd[0] == fd ? 0 : 1;

	for (int k = 0; k < EUDP_READ_BURST; k++) {
		struct sockaddr_storage src;
		struct mux_dest d;
		ssize_t n = udp_recv_counted(fd, rxbuf, sizeof(rxbuf), &src, NULL, &u->ovfl[i],
		                             &u->dropped);

		if (n < 0)
			return;
		if (dest_from_sa((struct sockaddr *)&src, &d) < 0 ||
		    !egress_acl_allows(&u->e->cfg, (struct sockaddr *)&src)) {
			u->refused++;
			continue;
		}
		u->last_ms = clock_now_ms();
		if (mux_udp_send(u->s, &d, rxbuf, (size_t)n) == 0)
			u->in++;
	}
}

/* ---------- datagrams: client -> remote ---------- */

/* The socket for family (made on first use). */
static int sock_for(struct eudp *u, int family)
{
	int i = family == AF_INET ? 0 : 1, one = 1, buf = EUDP_SOCKBUF;
	struct sockaddr_storage any;
	socklen_t anylen;

	if (u->fd[i] >= 0)
		return u->fd[i];
	if (!fd_budget_take(1, FD_BUDGET_RESERVE)) {
		log_ratelimited(&eudp_rl, LOG_LEVEL_WARN, "UDP relay: out of file descriptors");
		return -1;
	}
	u->fd[i] = FAULT("egress_udp_socket") ? -1
	         : socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd[i] < 0) {
		log_ratelimited(&eudp_rl, LOG_LEVEL_WARN, "UDP relay: cannot open a socket: %s",
		                strerror(errno));
		fd_budget_release(1);
		return -1;
	}
	(void)setsockopt(u->fd[i], SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
	(void)setsockopt(u->fd[i], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	(void)setsockopt(u->fd[i], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	if (family == AF_INET6)
		(void)setsockopt(u->fd[i], IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	memset(&any, 0, sizeof(any));
	any.ss_family = (sa_family_t)family;
	anylen = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	u->ev[i] = event_new(u->e->base, u->fd[i], EV_READ | EV_PERSIST, readable, u);
	if (bind(u->fd[i], (struct sockaddr *)&any, anylen) < 0 || u->ev[i] == NULL ||
	    event_add(u->ev[i], NULL) < 0) {
		log_ratelimited(&eudp_rl, LOG_LEVEL_WARN, "UDP relay: cannot open a socket: %s",
		                strerror(errno));
		if (u->ev[i] != NULL)
			event_free(u->ev[i]);
		u->ev[i] = NULL;
		close(u->fd[i]);
		u->fd[i] = -1;
		fd_budget_release(1);
		return -1;
	}
	return u->fd[i];
}

static void send_to(struct eudp *u, const struct sockaddr *sa, socklen_t salen,
                    const uint8_t *p, size_t n)
{
	char abuf[128];
	int fd;

	if (!egress_acl_allows(&u->e->cfg, sa)) {
		u->refused++;
		log_ratelimited(&eudp_rl, LOG_LEVEL_INFO, "UDP relay: destination %s refused: "
		                "internal address not admitted by --allow",
		                log_addr(netaddr_format(sa, abuf, sizeof(abuf))));
		return;
	}
	fd = sock_for(u, sa->sa_family);
	if (fd < 0 || sendto(fd, p, n, MSG_DONTWAIT, sa, salen) < 0) {
		u->dropped++;
		return;
	}
	u->out++;
}

static void send_to_named(struct eudp *u, const struct eudp_name *c, uint16_t port,
                          const uint8_t *p, size_t n)
{
	struct sockaddr_storage sa = c->sa;

	if (!c->ok) {
		u->dropped++;
		return;
	}
	if (sa.ss_family == AF_INET)
		((struct sockaddr_in *)&sa)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&sa)->sin6_port = htons(port);
	send_to(u, (struct sockaddr *)&sa, c->salen, p, n);
}

static struct eudp_name *cache_find(struct eudp *u, const char *name)
{
	uint64_t now = clock_now_ms();

	for (unsigned i = 0; i < EUDP_CACHE; i++)
		if (u->cache[i].expires > now && strcmp(u->cache[i].name, name) == 0)
			return &u->cache[i];
	return NULL;
}

static struct eudp_name *cache_put(struct eudp *u, const char *name)
{
	struct eudp_name *c = &u->cache[u->cache_next++ % EUDP_CACHE];

	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->expires = clock_now_ms() + EUDP_CACHE_MS;
	return c;
}

static void lookup_done(struct eudp *u, struct eudp_lookup *lk, struct evutil_addrinfo *res)
{
	struct eudp_name *c = cache_put(u, lk->name);
	struct eudp_wait *w, *next;
	int refused = 0;

	/* The first address the policy allows. */
	for (struct evutil_addrinfo *ai = res; ai != NULL && !c->ok; ai = ai->ai_next) {
		struct sockaddr_storage probe;

		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(probe))
			continue;
		memcpy(&probe, ai->ai_addr, ai->ai_addrlen);
		/* The policy wants a port; any non-zero one judges the address. */
		if (ai->ai_family == AF_INET)
			((struct sockaddr_in *)&probe)->sin_port = htons(9);
		else
			((struct sockaddr_in6 *)&probe)->sin6_port = htons(9);
		if (!egress_acl_allows(&u->e->cfg, (struct sockaddr *)&probe)) {
			refused = 1;
			continue;
		}
		c->sa = probe;
		c->salen = (socklen_t)ai->ai_addrlen;
		c->ok = 1;
	}
	if (!c->ok && refused)
		log_ratelimited(&eudp_rl, LOG_LEVEL_INFO, "UDP relay: a name resolved only to "
		                "internal addresses not admitted by --allow; refused");
	for (w = STAILQ_FIRST(&u->waiting); w != NULL; w = next) {
		next = STAILQ_NEXT(w, link);
		if (w->lk != lk)
			continue;
		STAILQ_REMOVE(&u->waiting, w, eudp_wait, link);
		u->nwait--;
		u->wait_bytes -= w->len;
		if (!c->ok && refused)
			u->refused++;
		else
			send_to_named(u, c, w->port, w->data, w->len);
		free(w);
	}
}

static void dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct eudp_lookup *lk = arg;
	struct eudp *u = lk->u;

	lk->req = NULL;
	if (u != NULL) {
		LIST_REMOVE(lk, link);
		u->nlookups--;
		if (result != 0)
			log_ratelimited(&eudp_rl, LOG_LEVEL_INFO, "UDP relay: name resolution "
			                "failed: %s", evutil_gai_strerror(result));
		lookup_done(u, lk, result == 0 ? res : NULL);
	}
	if (res != NULL)
		evutil_freeaddrinfo(res);
	free(lk);
}

/* A datagram to a name: from the cache, or after resolving it. */
static void send_named(struct eudp *u, const struct mux_dest *d, const uint8_t *p, size_t n)
{
	struct eudp_name *c = cache_find(u, d->domain);
	struct eudp_lookup *lk;
	struct eudp_wait *w;
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;

	if (c != NULL) {
		send_to_named(u, c, d->port, p, n);
		return;
	}
	if (egress_name_is_invalid(d->domain)) {
		u->dropped++;
		return;
	}
	if (u->nwait >= EUDP_WAIT_MAX || u->wait_bytes + n > EUDP_WAIT_BYTES) {
		u->dropped++;
		return;
	}
	LIST_FOREACH(lk, &u->lookups, link)
		if (strcmp(lk->name, d->domain) == 0)
			break;
	if (lk == NULL) {
		if (u->nlookups >= EUDP_LOOKUPS_MAX) {
			u->dropped++;
			return;
		}
		lk = calloc(1, sizeof(*lk));
		if (lk == NULL) {
			u->dropped++;
			return;
		}
		lk->u = u;
		snprintf(lk->name, sizeof(lk->name), "%s", d->domain);
		LIST_INSERT_HEAD(&u->lookups, lk, link);
		u->nlookups++;
	}
	w = malloc(sizeof(*w) + n);
	if (w == NULL) {
		u->dropped++;
		return;
	}
	w->lk = lk;
	w->port = d->port;
	w->len = n;
	if (n > 0)
		memcpy(w->data, p, n);
	STAILQ_INSERT_TAIL(&u->waiting, w, link);
	u->nwait++;
	u->wait_bytes += n;
	if (lk->req != NULL)
		return;   /* already being resolved */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_protocol = IPPROTO_UDP;
	req = evdns_getaddrinfo(u->e->dns, lk->name, NULL, &hints, dns_cb, lk);
	/* NULL: dns_cb already ran (and freed lk). */
	if (req != NULL)
		lk->req = req;
}

static void on_dgram(struct mux_stream *s, const struct mux_dest *d, const uint8_t *p,
                     size_t n, void *arg)
{
	struct eudp *u = arg;
	struct sockaddr_storage ss;
	socklen_t sslen;

	u->last_ms = clock_now_ms();
	switch (d->type) {
	case MUX_DEST_IPV4:
	case MUX_DEST_IPV6:
		if (netaddr_from_raw(d->addr, d->type == MUX_DEST_IPV4 ? 4 : 16, d->port,
		                     &ss, &sslen) < 0) {
			u->dropped++;
			return;
		}
		send_to(u, (struct sockaddr *)&ss, sslen, p, n);
		return;
	case MUX_DEST_DOMAIN:
		send_named(u, d, p, n);
		return;
	default:
		u->dropped++;
		return;
	}
}

static void on_closed(struct mux_stream *s, uint8_t code, void *arg)
{
	struct eudp *u = arg;

	u->dropped += mux_udp_dropped(s);
	u->s = NULL;
	eudp_free(u);
}

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct eudp *u = arg;
	uint64_t idle_ms = (uint64_t)u->e->cfg.udp_idle * 1000, quiet;
	struct timeval tv;

	quiet = clock_now_ms() - u->last_ms;
	if (quiet >= idle_ms) {
		eudp_close(u, "idle: closed");
		return;
	}
	tv.tv_sec = (time_t)((idle_ms - quiet) / 1000);
	tv.tv_usec = (suseconds_t)((idle_ms - quiet) % 1000) * 1000 + 1000;
	evtimer_add(u->idle, &tv);
}

static const struct mux_udp_cbs eudp_cbs = {
	.dgram = on_dgram,
	.closed = on_closed,
};

void egress_udp_open(struct egress *e, struct mux_stream *s, const char *client)
{
	struct eudp *u = calloc(1, sizeof(*u));
	struct timeval tv = { e->cfg.udp_idle > 0 ? e->cfg.udp_idle : 1, 0 };

	if (u == NULL) {
		mux_stream_reject(s, MUX_ERR_GENERAL);
		return;
	}
	u->e = e;
	u->s = s;
	u->fd[0] = u->fd[1] = -1;
	u->last_ms = clock_now_ms();
	snprintf(u->client, sizeof(u->client), "%s", client);
	LIST_INIT(&u->lookups);
	STAILQ_INIT(&u->waiting);
	u->idle = evtimer_new(e->base, idle_cb, u);
	if (u->idle == NULL || evtimer_add(u->idle, &tv) < 0) {
		if (u->idle != NULL)
			event_free(u->idle);
		free(u);
		mux_stream_reject(s, MUX_ERR_GENERAL);
		return;
	}
	log_ratelimited(&life_rl, LOG_LEVEL_INFO, "client %s: UDP association open", client);
	mux_udp_accept(s, &eudp_cbs, u);
}
