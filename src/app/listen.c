/*
 * Remote forwards, the server's side (docs/forwarding.md): a client asks
 * with LISTEN on a stream of its own; if the policy allows it the server
 * listens and keeps the listener as long as that stream lives.  Every
 * connection accepted there goes back to the client on a stream the server
 * opens (FWD_OPEN, even ids), straight for a forward with a destination, or
 * after a SOCKS or HTTP proxy negotiation here for reverse SOCKS (so the
 * application's SOCKS reply tells what the client's connect did, as with
 * the client's own SOCKS port).
 *
 * Lifetimes: a listener belongs to its listen stream; when the stream
 * ends (the client closed it, the association went down, a protocol
 * error) the gone callback stops the listening socket at once.  The front
 * underneath is freed once its connections still negotiating or waiting
 * for the client's answer are over (front_active() == 0): they point at it.
 */
#include "app/app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "front/front.h"
#include "util/fwdspec.h"
#include "util/log.h"
#include "util/netaddr.h"

#define REAP_INTERVAL_MS 500

struct rlistener {
	TAILQ_ENTRY(rlistener) node;   /* in its set's listeners, oldest first */
	LIST_ENTRY(rlistener) link;    /* in closing, once closed */
	struct listen_set *ls;         /* NULL once closed */
	struct mux_stream *s;          /* the listen stream; NULL once gone */
	struct front *front;
	struct event *reaper;          /* closed, waiting for its connections */
	struct mux_listen_req req;     /* as asked: a reload checks it again */
	uint32_t id;
	int socks;
	char where[80];
};

struct listen_set {
	struct event_base *base;
	const struct listen_policy *p;
	struct mux_session *m;
	char peer[128];
	TAILQ_HEAD(, rlistener) listeners;
	unsigned n;
	unsigned pending;              /* FWD_OPENs waiting for the client's answer */
};

/* One connection waiting for the client's answer. */
struct pending_conn {
	struct listen_set *ls;
	struct front_conn *fc;
};

static struct log_ratelimit listen_rl = LOG_RATELIMIT_INIT(10.0, 5);

/* Closed listeners whose front still has connections (all servers of the process). */
static LIST_HEAD(, rlistener) closing = LIST_HEAD_INITIALIZER(closing);

/* ---------- policy ---------- */

void listen_policy_defaults(struct listen_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->max_listeners = LISTEN_MAX_PER_CLIENT_DEFAULT;
	p->max_pending = LISTEN_MAX_PENDING_DEFAULT;
	p->max_conns = 1024;
}

int listen_policy_add_permit(struct listen_policy *p, const char *spec, const char **err)
{
	struct fwd_spec f;
	struct listen_permit *r;

	if (fwd_spec_parse(spec, FWD_SPEC_PERMIT, &f, err) < 0)
		return -1;
	if (p->npermit >= LISTEN_MAX_PERMIT) {
		*err = "too many --permit-listen rules";
		return -1;
	}
	r = &p->permit[p->npermit++];
	memset(r, 0, sizeof(*r));
	snprintf(r->addr, sizeof(r->addr), "%s", f.bind);
	r->port = f.port;
	r->any_port = f.any_port;
	return 0;
}

/* The request's address as a sockaddr (no address: 127.0.0.1). */
static void req_addr(const struct mux_listen_req *req, struct sockaddr_storage *ss,
                     socklen_t *len)
{
	static const uint8_t lo[4] = { 127, 0, 0, 1 };

	if (req->atyp == MUX_DEST_IPV6)
		(void)netaddr_from_raw(req->addr, 16, req->port, ss, len);
	else
		(void)netaddr_from_raw(req->atyp == MUX_DEST_IPV4 ? req->addr : lo, 4, req->port,
		                       ss, len);
}

static int req_is_loopback(const struct mux_listen_req *req)
{
	static const uint8_t v6lo[16] = { [15] = 1 };

	switch (req->atyp) {
	case MUX_DEST_NONE: return 1;
	case MUX_DEST_IPV4: return req->addr[0] == 127;
	case MUX_DEST_IPV6: return memcmp(req->addr, v6lo, 16) == 0;
	default: return 0;
	}
}

static int permit_matches(const struct listen_permit *r, const struct mux_listen_req *req)
{
	struct sockaddr_storage want, have;
	socklen_t wl, hl;

	if (!r->any_port && r->port != req->port)
		return 0;
	if (r->addr[0] == '\0' || strcmp(r->addr, "*") == 0)
		return 1;
	if (strcmp(r->addr, "localhost") == 0)
		return req_is_loopback(req);
	if (netaddr_from_numeric(r->addr, req->port, &want, &wl) < 0)
		return 0;
	req_addr(req, &have, &hl);
	return wl == hl && want.ss_family == have.ss_family &&
	       (want.ss_family == AF_INET ?
	        memcmp(&((struct sockaddr_in *)&want)->sin_addr,
	               &((struct sockaddr_in *)&have)->sin_addr, 4) == 0 :
	        memcmp(&((struct sockaddr_in6 *)&want)->sin6_addr,
	               &((struct sockaddr_in6 *)&have)->sin6_addr, 16) == 0);
}

uint8_t listen_policy_check(const struct listen_policy *p, const struct mux_listen_req *req,
                            unsigned n)
{
	unsigned i;

	for (i = 0; i < p->npermit; i++)
		if (permit_matches(&p->permit[i], req))
			break;
	if (i == p->npermit)
		return MUX_ERR_NO_PERMIT;
	if (!p->gateway_ports && !req_is_loopback(req))
		return MUX_ERR_GATEWAY;
	if (n >= p->max_listeners)
		return MUX_ERR_LIMIT;
	return 0;
}

/* ---------- connections coming in ---------- */

static void fwd_open_result(struct mux_stream *s, int err, struct bufferevent *bev, void *arg)
{
	struct pending_conn *pc = arg;

	pc->ls->pending--;
	if (err == 0) {
		front_conn_succeeded(pc->fc, bev);
	} else {
		log_ratelimited(&listen_rl, LOG_LEVEL_INFO,
		                "client %s: forwarded connection refused by the client: %s",
		                pc->ls->peer, proto_err_str((uint8_t)err));
		front_conn_failed(pc->fc, bev, err >= 1 && err <= 8 ? (uint8_t)err
		                                                    : SOCKS5_GENERAL_FAILURE);
	}
	free(pc);
}

static void on_conn(struct front_conn *fc, const struct socks_request *req, void *arg)
{
	struct rlistener *l = arg;
	struct listen_set *ls = l->ls;
	struct bufferevent *bev = front_conn_bev(fc);
	struct pending_conn *pc;
	struct mux_dest d;

	if (ls == NULL || !mux_session_is_up(ls->m)) {
		front_conn_failed(fc, bev, SOCKS5_GENERAL_FAILURE);
		return;
	}
	if (ls->pending >= ls->p->max_pending) {
		log_ratelimited(&listen_rl, LOG_LEVEL_WARN,
		                "client %s: %u forwarded connections already wait for the client; "
		                "refusing one on %s", ls->peer, ls->pending, l->where);
		front_conn_failed(fc, bev, SOCKS5_GENERAL_FAILURE);
		return;
	}
	memset(&d, 0, sizeof(d));
	if (l->socks) {
		upstream_dest_from_socks(req, &d);
		if (d.port == 0) {
			front_conn_failed(fc, bev, SOCKS5_NOT_ALLOWED);
			return;
		}
	}
	pc = calloc(1, sizeof(*pc));
	if (pc == NULL) {
		front_conn_failed(fc, bev, SOCKS5_GENERAL_FAILURE);
		return;
	}
	pc->ls = ls;
	pc->fc = fc;
	if (mux_stream_open_fwd(ls->m, l->id, &d, bev, fwd_open_result, pc) == NULL) {
		free(pc);
		log_ratelimited(&listen_rl, LOG_LEVEL_WARN,
		                "client %s: no free stream for a connection on %s", ls->peer, l->where);
		front_conn_failed(fc, bev, SOCKS5_GENERAL_FAILURE);
		return;
	}
	ls->pending++;
}

/* ---------- listeners ---------- */

static void rlistener_free(struct rlistener *l)
{
	if (l->reaper != NULL) {
		LIST_REMOVE(l, link);
		event_free(l->reaper);
	}
	front_free(l->front);
	free(l);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rlistener *l = arg;

	if (front_active(l->front) == 0)
		rlistener_free(l);
}

/*
 * Stop listening now; free once no connection points at the front.  why
 * NULL: the caller logged it.
 */
static void rlistener_close(struct rlistener *l, const char *why)
{
	struct listen_set *ls = l->ls;
	struct timeval tv = { 0, REAP_INTERVAL_MS * 1000 };

	if (ls == NULL)
		return;
	if (why != NULL)
		log_notice("client %s: remote forward #%u on %s closed (%s)", ls->peer, l->id,
		           l->where, why);
	TAILQ_REMOVE(&ls->listeners, l, node);
	ls->n--;
	l->ls = NULL;
	if (l->s != NULL) {
		mux_stream_set_gone(l->s, NULL, NULL);
		l->s = NULL;
	}
	front_stop(l->front);
	if (front_active(l->front) == 0) {
		rlistener_free(l);
		return;
	}
	l->reaper = event_new(ls->base, -1, EV_PERSIST, reap_cb, l);
	if (l->reaper == NULL || event_add(l->reaper, &tv) < 0) {
		/* Cannot wait: leak the small front rather than free it under its connections. */
		log_warn("remote forward #%u: cannot schedule its cleanup", l->id);
		if (l->reaper != NULL)
			event_free(l->reaper);
		l->reaper = NULL;
		return;
	}
	LIST_INSERT_HEAD(&closing, l, link);
}

void listen_reap_all(void)
{
	while (!LIST_EMPTY(&closing))
		rlistener_free(LIST_FIRST(&closing));
}

/* The listen stream ended: the client closed it or the association went. */
static void on_stream_gone(void *arg)
{
	struct rlistener *l = arg;

	l->s = NULL;
	rlistener_close(l, "its stream ended");
}

/* A listening TCP socket for req; -1 with errno. */
static int bind_listener(const struct mux_listen_req *req)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, saved;

	req_addr(req, &ss, &len);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 128) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

void listen_set_request(struct listen_set *ls, struct mux_stream *s,
                        const struct mux_listen_req *req)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct front_config fcfg;
	struct rlistener *l;
	char abuf[80];
	uint8_t code;
	int fd;

	req_addr(req, &ss, &len);
	netaddr_format((struct sockaddr *)&ss, abuf, sizeof(abuf));
	code = listen_policy_check(ls->p, req, ls->n);
	if (code != 0) {
		log_ratelimited(&listen_rl, LOG_LEVEL_WARN,
		                "client %s: remote forward #%u on %s refused: %s", ls->peer, req->id,
		                abuf, proto_err_str(code));
		mux_stream_reject(s, code);
		return;
	}
	fd = bind_listener(req);
	if (fd < 0) {
		log_ratelimited(&listen_rl, LOG_LEVEL_WARN,
		                "client %s: remote forward #%u: cannot listen on %s: %s", ls->peer,
		                req->id, abuf, strerror(errno));
		mux_stream_reject(s, MUX_ERR_BIND);
		return;
	}
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		close(fd);
		mux_stream_reject(s, MUX_ERR_BIND);
		return;
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		close(fd);
		mux_stream_reject(s, MUX_ERR_GENERAL);
		return;
	}
	memset(&fcfg, 0, sizeof(fcfg));
	fcfg.max_conns = ls->p->max_conns;
	fcfg.handshake_timeout = 30;
	fcfg.http = 1;
	fcfg.fixed = !(req->flags & MUX_LISTEN_SOCKS);
	l->socks = !fcfg.fixed;
	l->id = req->id;
	l->req = *req;
	l->front = front_new_fd(ls->base, fd, &fcfg, on_conn, l);
	if (l->front == NULL) {
		free(l);
		mux_stream_reject(s, MUX_ERR_GENERAL);
		return;
	}
	netaddr_format((struct sockaddr *)&ss, l->where, sizeof(l->where));
	l->ls = ls;
	l->s = s;
	TAILQ_INSERT_TAIL(&ls->listeners, l, node);
	ls->n++;
	mux_stream_set_gone(s, on_stream_gone, l);
	log_notice("client %s: remote forward #%u listening on %s (%s)", ls->peer, l->id, l->where,
	           l->socks ? "reverse SOCKS" : "to the client's destination");
	mux_listen_accept(s, netaddr_port((struct sockaddr *)&ss));
}

struct listen_set *listen_set_new(struct event_base *base, const struct listen_policy *p,
                                  struct mux_session *m, const char *peer)
{
	struct listen_set *ls = calloc(1, sizeof(*ls));

	if (ls == NULL)
		return NULL;
	ls->base = base;
	ls->p = p;
	ls->m = m;
	snprintf(ls->peer, sizeof(ls->peer), "%s", peer);
	TAILQ_INIT(&ls->listeners);
	return ls;
}

unsigned listen_set_count(const struct listen_set *ls)
{
	return ls != NULL ? ls->n : 0;
}

void listen_set_free(struct listen_set *ls)
{
	if (ls == NULL)
		return;
	while (!TAILQ_EMPTY(&ls->listeners))
		rlistener_close(TAILQ_FIRST(&ls->listeners), "the association ended");
	free(ls);
}

/*
 * The policy changed (SIGHUP): each listener is judged again as its request
 * would be now, oldest first, so that a lower --max-listeners keeps the
 * oldest ones.  One no longer permitted is closed with the refusal's code
 * on its stream: the client logs why and asks again later.  The others are
 * not touched, nor are connections already accepted on a closed one.
 */
unsigned listen_set_recheck(struct listen_set *ls)
{
	struct rlistener *l, *next;
	unsigned kept = 0, closed = 0;

	if (ls == NULL)
		return 0;
	for (l = TAILQ_FIRST(&ls->listeners); l != NULL; l = next) {
		struct mux_stream *s = l->s;
		uint8_t code;

		next = TAILQ_NEXT(l, node);
		code = listen_policy_check(ls->p, &l->req, kept);
		if (code == 0) {
			kept++;
			continue;
		}
		log_notice("reload: closed remote forward #%u on %s: no longer permitted "
		           "(client %s: %s)", l->id, l->where, ls->peer, proto_err_str(code));
		rlistener_close(l, NULL);   /* forgets s first: no gone callback */
		if (s != NULL)
			mux_listen_close(s, code);
		closed++;
	}
	return closed;
}
