/*
 * Egress implementation; see egress.h.  One struct egress_conn per stream
 * being connected: resolve (evdns, never blocking), filter by ACL, try the
 * addresses in order, all under one deadline.  A stream the client resets
 * meanwhile cancels the attempt through mux_stream_set_cancel().
 */
#include "egress/egress.h"
#include "egress/egress_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "crypto/crypto.h"
#include "pt/extor.h"
#include "util/fdbudget.h"
#include "util/log.h"
#include "util/netaddr.h"

#define EGRESS_MAX_ADDRS 8


struct egress_conn {
	struct egress *e;
	struct mux_stream *s;
	struct evdns_getaddrinfo_request *dns_req;
	struct event *deadline;
	struct bufferevent *bev;
	struct sockaddr_storage addrs[EGRESS_MAX_ADDRS];
	socklen_t addrlens[EGRESS_MAX_ADDRS];
	size_t naddrs, next;
	int refused_by_acl;
	enum egress_mode mode; /* at open: a reload must not turn a proxy stream into a target one */
	int last_err;
	int cancelled;     /* set while a DNS callback is still to come */
	char useraddr[64]; /* the client's address for the Extended ORPort */
	struct extor_client *extor;
};

#define EXTOR_INPUT_MAX 70000

static struct log_ratelimit egress_rl = LOG_RATELIMIT_INIT(10.0, 5);

/* The ACL for a stream opened in mode (a reload may have changed cfg->mode since). */
static int acl_allows(const struct egress_config *cfg, enum egress_mode mode,
                      const struct sockaddr *sa)
{
	if (mode == EGRESS_TARGET)
		return 1;   /* the operator chose the target */
	if ((sa->sa_family == AF_INET || sa->sa_family == AF_INET6) && netaddr_port(sa) == 0)
		return 0;
	for (size_t i = 0; i < cfg->nallow; i++)
		if (netaddr_cidr_match(&cfg->allow[i], sa))
			return 1;
	return !netaddr_is_internal(sa);
}

int egress_acl_allows(const struct egress_config *cfg, const struct sockaddr *sa)
{
	return acl_allows(cfg, cfg->mode, sa);
}

uint8_t egress_errno_to_code(int err)
{
	switch (err) {
	case ECONNREFUSED: return MUX_ERR_REFUSED;
	case EHOSTUNREACH: case EHOSTDOWN: return MUX_ERR_HOST_UNREACH;
	case ENETUNREACH: case ENETDOWN: case EADDRNOTAVAIL: return MUX_ERR_NET_UNREACH;
	case ETIMEDOUT: return MUX_ERR_TIMEOUT;
	case EACCES: case EPERM: return MUX_ERR_NOT_ALLOWED;
	case EMFILE: case ENFILE: return MUX_ERR_LIMIT;
	default: return MUX_ERR_GENERAL;
	}
}

static void conn_free(struct egress_conn *c)
{
	if (c->extor != NULL) {
		wc_wipe(c->extor, sizeof(*c->extor));
		free(c->extor);
	}
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		fd_budget_release(1);
	}
	free(c);
}

/* Finish with a refusal to the client. */
static void conn_fail(struct egress_conn *c, uint8_t code)
{
	struct mux_stream *s = c->s;

	c->s = NULL;
	if (s != NULL)
		mux_stream_reject(s, code);
	if (c->dns_req != NULL) {
		/* The callback will run with EVUTIL_EAI_CANCEL and free c. */
		c->cancelled = 1;
		evdns_getaddrinfo_cancel(c->dns_req);
		return;
	}
	conn_free(c);
}

/* The stream died before we finished (client reset, session down). */
static void conn_cancel(void *arg)
{
	struct egress_conn *c = arg;

	c->s = NULL;
	if (c->dns_req != NULL) {
		c->cancelled = 1;
		evdns_getaddrinfo_cancel(c->dns_req);
		return;
	}
	conn_free(c);
}

static void try_next(struct egress_conn *c);

/* Names under .invalid (RFC 6761) can never resolve. */
int egress_name_is_invalid(const char *host)
{
	size_t n = strlen(host);

	while (n > 0 && host[n - 1] == '.')
		n--;
	if (n == 7 && strncasecmp(host, "invalid", 7) == 0)
		return 1;
	return n > 8 && strncasecmp(host + n - 8, ".invalid", 8) == 0;
}

/* Hand the connected bev to the stream and finish. */
static void conn_done(struct egress_conn *c, struct bufferevent *bev)
{
	struct mux_stream *s = c->s;

	c->bev = NULL;
	c->s = NULL;
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	mux_stream_accept(s, bev);
	conn_free(c);
}

static struct log_ratelimit extor_rl = LOG_RATELIMIT_INIT(10.0, 5);

/* Read tor's auth cookie file afresh (tor rewrites it when it restarts). */
static int read_cookie(const char *path, uint8_t cookie[EXTOR_COOKIE_LEN])
{
	uint8_t buf[EXTOR_COOKIE_FILE_LEN + 1];
	size_t n;
	FILE *f = fopen(path, "rb");
	int r;

	if (f == NULL) {
		log_ratelimited(&extor_rl, LOG_LEVEL_WARN,
		                "Extended ORPort: cannot read auth cookie file %s: %s",
		                path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	r = extor_cookie_parse(buf, n, cookie);
	wc_wipe(buf, sizeof(buf));
	if (r < 0)
		log_ratelimited(&extor_rl, LOG_LEVEL_WARN,
		                "Extended ORPort: %s is not a tor auth cookie file", path);
	return r;
}

static void extor_readcb(struct bufferevent *bev, void *arg)
{
	struct egress_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t out[EXTOR_OUT_MAX];
	size_t used, outlen, n = evbuffer_get_length(in);
	int r;

	r = extor_client_step(c->extor, evbuffer_pullup(in, (ev_ssize_t)n), n,
	                      &used, out, &outlen);
	evbuffer_drain(in, used);
	if (outlen > 0)
		bufferevent_write(bev, out, outlen);
	if (r == EXTOR_NEED_MORE && evbuffer_get_length(in) > EXTOR_INPUT_MAX) {
		c->extor->error = "oversized Extended ORPort message";
		r = EXTOR_ERROR;
	}
	switch (r) {
	case EXTOR_NEED_MORE:
		return;
	case EXTOR_OKAY:
		log_debug("Extended ORPort accepted the connection");
		conn_done(c, bev);
		return;
	default:
		log_ratelimited(&extor_rl, LOG_LEVEL_WARN, "Extended ORPort: %s; "
		                "closing that connection", c->extor->error);
		c->next = c->naddrs;
		conn_fail(c, r == EXTOR_DENIED ? MUX_ERR_NOT_ALLOWED : MUX_ERR_GENERAL);
		return;
	}
}

static void extor_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct egress_conn *c = arg;

	log_ratelimited(&extor_rl, LOG_LEVEL_WARN, "Extended ORPort closed the "
	                "connection during authentication");
	c->next = c->naddrs;
	conn_fail(c, MUX_ERR_GENERAL);
}

/* Connected to the Extended ORPort: authenticate before relaying. */
static void extor_start(struct egress_conn *c, struct bufferevent *bev)
{
	uint8_t cookie[EXTOR_COOKIE_LEN], nonce[EXTOR_NONCE_LEN];
	int r;

	c->extor = calloc(1, sizeof(*c->extor));
	if (c->extor == NULL || read_cookie(c->e->cfg.extor_cookie_file, cookie) < 0) {
		c->next = c->naddrs;
		conn_fail(c, MUX_ERR_GENERAL);
		return;
	}
	r = wc_random(nonce, sizeof(nonce));
	if (r == 0)
		r = extor_client_init(c->extor, cookie, nonce, c->useraddr,
		                      c->e->cfg.extor_transport);
	wc_wipe(cookie, sizeof(cookie));
	if (r < 0) {
		log_warn("Extended ORPort: cannot start authentication");
		c->next = c->naddrs;
		conn_fail(c, MUX_ERR_GENERAL);
		return;
	}
	bufferevent_setcb(bev, extor_readcb, NULL, extor_eventcb, c);
	bufferevent_enable(bev, EV_READ);
}

static void connect_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct egress_conn *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		struct mux_stream *s = c->s;
		int one = 1;

		(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY,
		                 &one, sizeof(one));
		if (c->e->cfg.extor) {
			extor_start(c, bev);
			return;
		}
		c->bev = NULL;
		c->s = NULL;
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		mux_stream_accept(s, bev);
		conn_free(c);
		return;
	}
	c->last_err = EVUTIL_SOCKET_ERROR();
	bufferevent_free(c->bev);
	fd_budget_release(1);
	c->bev = NULL;
	try_next(c);
}

static void try_next(struct egress_conn *c)
{
	while (c->next < c->naddrs) {
		size_t i = c->next++;
		struct bufferevent *bev;

		/* Refused with a LIMIT reset while the process keeps its reserve. */
		if (!fd_budget_take(1, FD_BUDGET_RESERVE)) {
			log_ratelimited(&egress_rl, LOG_LEVEL_WARN, "out of file descriptors (%lu "
			                "of %lu open); refusing a stream", fd_budget_in_use(),
			                fd_budget_limit());
			c->last_err = EMFILE;
			c->next = c->naddrs;
			break;
		}
		bev = bufferevent_socket_new(c->e->base, -1, BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL) {
			fd_budget_release(1);
			c->last_err = ENOMEM;
			continue;
		}
		c->bev = bev;
		bufferevent_setcb(bev, NULL, NULL, connect_eventcb, c);
		if (bufferevent_socket_connect(bev, (struct sockaddr *)&c->addrs[i],
		                               (int)c->addrlens[i]) == 0)
			return;   /* connect_eventcb follows */
		c->last_err = EVUTIL_SOCKET_ERROR();
		/* connect_eventcb may already have run and moved on */
		if (c->bev == bev) {
			bufferevent_free(bev);
			fd_budget_release(1);
			c->bev = NULL;
		} else {
			return;
		}
	}
	if (c->refused_by_acl && c->naddrs == 0) {
		log_ratelimited(&egress_rl, LOG_LEVEL_INFO,
		                "destination refused: internal address not admitted by --allow");
		conn_fail(c, MUX_ERR_NOT_ALLOWED);
	}
	else
		conn_fail(c, egress_errno_to_code(c->last_err));
}

static void add_addr(struct egress_conn *c, const struct sockaddr *sa, socklen_t len)
{
	char abuf[128];

	if (c->naddrs >= EGRESS_MAX_ADDRS)
		return;
	if (!acl_allows(&c->e->cfg, c->mode, sa)) {
		c->refused_by_acl = 1;
		log_debug("refused by ACL: %s", log_addr(netaddr_format(sa, abuf, sizeof(abuf))));
		return;
	}
	memcpy(&c->addrs[c->naddrs], sa, len);
	c->addrlens[c->naddrs] = len;
	c->naddrs++;
}

static void dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct egress_conn *c = arg;

	c->dns_req = NULL;
	if (c->cancelled || result == EVUTIL_EAI_CANCEL) {
		if (res != NULL)
			evutil_freeaddrinfo(res);
		conn_free(c);
		return;
	}
	if (result != 0 || res == NULL) {
		log_ratelimited(&egress_rl, LOG_LEVEL_INFO, "name resolution failed: %s",
		                evutil_gai_strerror(result));
		if (res != NULL)
			evutil_freeaddrinfo(res);
		conn_fail(c, MUX_ERR_HOST_UNREACH);
		return;
	}
	for (struct evutil_addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
		if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
			add_addr(c, ai->ai_addr, (socklen_t)ai->ai_addrlen);
	evutil_freeaddrinfo(res);
	try_next(c);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct egress_conn *c = arg;

	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		fd_budget_release(1);
		c->bev = NULL;
	}
	c->next = c->naddrs;
	conn_fail(c, MUX_ERR_TIMEOUT);
}

void egress_open(struct egress *e, struct mux_stream *s, const struct mux_dest *dest,
                 const struct sockaddr *client)
{
	struct egress_conn *c = calloc(1, sizeof(*c));
	struct timeval tv = { e->cfg.connect_timeout, 0 };
	const char *host;
	uint16_t port;
	char portstr[8];
	struct sockaddr_storage ss;
	socklen_t sslen;

	if (c == NULL) {
		mux_stream_reject(s, MUX_ERR_GENERAL);
		return;
	}
	c->e = e;
	c->s = s;
	c->mode = e->cfg.mode;
	c->last_err = ECONNREFUSED;
	if (client != NULL)
		netaddr_format(client, c->useraddr, sizeof(c->useraddr));
	c->deadline = evtimer_new(e->base, deadline_cb, c);
	if (c->deadline == NULL || evtimer_add(c->deadline, &tv) < 0) {
		conn_fail(c, MUX_ERR_GENERAL);
		return;
	}
	mux_stream_set_cancel(s, conn_cancel, c);

	if (e->cfg.mode == EGRESS_TARGET) {
		host = e->cfg.target_host;
		port = e->cfg.target_port;
	} else {
		switch (dest->type) {
		case MUX_DEST_IPV4:
		case MUX_DEST_IPV6:
			(void)netaddr_from_raw(dest->addr, dest->type == MUX_DEST_IPV4 ? 4 : 16,
			                       dest->port, &ss, &sslen);
			add_addr(c, (struct sockaddr *)&ss, sslen);
			try_next(c);
			return;
		case MUX_DEST_DOMAIN:
			host = dest->domain;
			port = dest->port;
			break;
		default:
			conn_fail(c, MUX_ERR_ATYP);   /* proxy mode needs a destination */
			return;
		}
	}
	if (netaddr_from_numeric(host, port, &ss, &sslen) == 0) {
		add_addr(c, (struct sockaddr *)&ss, sslen);
		try_next(c);
		return;
	}
	{
		struct evutil_addrinfo hints;

		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_protocol = IPPROTO_TCP;
		struct evdns_getaddrinfo_request *req;

		if (egress_name_is_invalid(host)) {
			/* RFC 6761: never send these to a resolver. */
			conn_fail(c, MUX_ERR_HOST_UNREACH);
			return;
		}
		snprintf(portstr, sizeof(portstr), "%u", port);
		req = evdns_getaddrinfo(e->dns, host, portstr, &hints, dns_cb, c);
		/* NULL means dns_cb already ran and may have freed c. */
		if (req != NULL)
			c->dns_req = req;
	}
}

struct egress *egress_new(struct event_base *base, struct evdns_base *dns,
                          const struct egress_config *cfg)
{
	struct egress *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NULL;
	e->base = base;
	e->dns = dns;
	e->cfg = *cfg;
	return e;
}

void egress_reconfigure(struct egress *e, const struct egress_config *cfg)
{
	/*
	 * A connect in flight reads only the ACL (for names still resolving)
	 * and nothing else from cfg, so a copy between two events is safe:
	 * such a stream is judged by the rules in force when its answer comes.
	 */
	e->cfg.mode = cfg->mode;
	memcpy(e->cfg.target_host, cfg->target_host, sizeof(e->cfg.target_host));
	e->cfg.target_port = cfg->target_port;
	memcpy(e->cfg.allow, cfg->allow, sizeof(e->cfg.allow));
	e->cfg.nallow = cfg->nallow;
	e->cfg.connect_timeout = cfg->connect_timeout;
}

void egress_free(struct egress *e)
{
	free(e);
}
