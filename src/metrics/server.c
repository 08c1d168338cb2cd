/*
 * The metrics listener: accepts scrapers on the event loop, reads one
 * request with a hard size and time limit, answers it and closes.
 *
 * It must never hurt the tunnel: at most METRICS_MAX_CONNS connections
 * (a new one evicts the oldest still sending its request, so a slowloris
 * cannot lock a scraper out), METRICS_REQ_MAX bytes read per connection,
 * METRICS_REQUEST_TIMEOUT_MS for the whole request and
 * METRICS_WRITE_TIMEOUT_MS for the answer, one answer per connection
 * (Connection: close), every error a short canned response.
 *
 * Closing: once the answer is written the write side is shut down and
 * whatever the client still sends is read and dropped (at most
 * METRICS_LINGER_BYTES for METRICS_LINGER_MS) before the socket closes.
 * Closing with unread bytes would send an RST, and the client's kernel
 * may then throw away the answer it has not read yet (a 413 to an
 * oversize request would never be seen).
 */
#include "metrics/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "util/fault.h"
#include "util/fdbudget.h"
#include "util/log.h"
#include "util/netaddr.h"

#define METRICS_LINGER_MS 2000
#define METRICS_LINGER_BYTES (256u << 10)

struct mconn {
	TAILQ_ENTRY(mconn) link;
	struct metrics_server *ms;
	struct bufferevent *bev;
	struct event *deadline;
	int answered;             /* an answer is queued */
	int lingering;            /* written, write side shut: draining */
	size_t drained;           /* bytes dropped after the request */
};

TAILQ_HEAD(mconn_list, mconn);

struct metrics_server {
	struct event_base *base;
	struct evconnlistener *lis;
	struct accept_pause pause;
	struct mconn_list conns;        /* oldest first */
	unsigned nconns;
	metrics_collect_cb cb;
	void *arg;
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

static struct log_ratelimit metrics_rl = LOG_RATELIMIT_INIT(10.0, 3);

int metrics_addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		const uint8_t *a = in6->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return 1;
		return memcmp(a, mapped, 12) == 0 && a[12] == 127;
	}
	return 0;
}

static void mconn_free(struct mconn *c)
{
	struct metrics_server *ms = c->ms;

	TAILQ_REMOVE(&ms->conns, c, link);
	ms->nconns--;
	if (c->deadline != NULL)
		event_free(c->deadline);
	bufferevent_free(c->bev);
	fd_budget_release(1);
	free(c);
}

static const char *status_text(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Request Header Fields Too Large";
	case 414: return "URI Too Long";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/* Queue the answer and close once it is written (or at the deadline). */
static void respond(struct mconn *c, int code, const char *ctype, const char *body,
                    size_t blen, int head)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct timeval tv = { METRICS_WRITE_TIMEOUT_MS / 1000,
	                      (METRICS_WRITE_TIMEOUT_MS % 1000) * 1000 };

	c->answered = 1;
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	                    "Content-Length: %zu\r\nConnection: close\r\n"
	                    "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s\r\n",
	                    code, status_text(code), ctype, blen,
	                    code == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!head && blen > 0)
		evbuffer_add(out, body, blen);
	(void)event_add(c->deadline, &tv);
	bufferevent_enable(c->bev, EV_WRITE);
}

static void respond_error(struct mconn *c, int code)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "%d %s\n", code, status_text(code));

	respond(c, code, "text/plain; charset=utf-8", body, (size_t)n, 0);
}

static void serve(struct mconn *c, const struct metrics_req *req)
{
	struct metrics_snapshot snap;
	struct mbuf b;
	int r;

	memset(&snap, 0, sizeof(snap));
	if (FAULT("metrics_snapshot") || c->ms->cb(&snap, req->streams, c->ms->arg) < 0) {
		metrics_snapshot_clear(&snap);
		respond_error(c, 503);
		return;
	}
	mbuf_init(&b, METRICS_OUTPUT_MAX);
	if (req->route == ROUTE_METRICS)
		r = metrics_render_prometheus(&snap, req->streams, &b);
	else
		r = metrics_render_json(&snap, req->streams, &b);
	metrics_snapshot_clear(&snap);
	if (r < 0) {
		log_ratelimited(&metrics_rl, LOG_LEVEL_WARN,
		                "metrics: answer too large or out of memory");
		respond_error(c, 500);
	} else if (req->route == ROUTE_METRICS) {
		respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len,
		        req->head);
	} else {
		respond(c, 200, "application/json", b.p, b.len, req->head);
	}
	mbuf_free(&b);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct mconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);
	struct metrics_req req;
	const char *p;
	int r;

	if (c->answered) {
		/* The rest of an oversize or refused request: dropped. */
		c->drained += len;
		evbuffer_drain(in, len);
		if (c->drained > METRICS_LINGER_BYTES)
			mconn_free(c);
		return;
	}
	if (len > METRICS_REQ_MAX)
		len = METRICS_REQ_MAX;
	p = (const char *)evbuffer_pullup(in, (ssize_t)len);
	if (p == NULL) {
		mconn_free(c);
		return;
	}
	r = metrics_http_parse(p, len, &req);
	if (r == 0)
		return;
	evbuffer_drain(in, evbuffer_get_length(in));
	if (r < 0)
		respond_error(c, -r);
	else
		serve(c, &req);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct mconn *c = arg;
	struct timeval tv = { METRICS_LINGER_MS / 1000, (METRICS_LINGER_MS % 1000) * 1000 };

	if (!c->answered || c->lingering ||
	    evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	/* Answer sent: FIN now, drop what still comes until the client closes. */
	c->lingering = 1;
	if (shutdown(bufferevent_getfd(bev), SHUT_WR) < 0 || event_add(c->deadline, &tv) < 0)
		mconn_free(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct mconn *c = arg;

	/* A client may shut its side once the request is out: still answer. */
	if ((what & BEV_EVENT_EOF) && c->answered && !c->lingering)
		return;
	mconn_free(c);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mconn *c = arg;

	if (!c->answered) {
		/* Too slow: say so if the socket takes it, then go. */
		respond_error(c, 408);
		return;
	}
	mconn_free(c);   /* the answer could not be written in time, or lingering ended */
}

/* Make room for one more: the oldest connection still reading (or only
 * lingering) goes; those writing an answer stay. */
static int make_room(struct metrics_server *ms)
{
	struct mconn *c;

	if (ms->nconns < METRICS_MAX_CONNS)
		return 0;
	TAILQ_FOREACH(c, &ms->conns, link) {
		if (!c->answered || c->lingering) {
			mconn_free(c);
			return 0;
		}
	}
	return -1;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
	struct metrics_server *ms = arg;
	struct timeval tv = { METRICS_REQUEST_TIMEOUT_MS / 1000,
	                      (METRICS_REQUEST_TIMEOUT_MS % 1000) * 1000 };
	struct mconn *c;

	accept_pause_ok(&ms->pause);
	if (make_room(ms) < 0 || !fd_budget_take(1, FD_BUDGET_RESERVE)) {
		log_ratelimited(&metrics_rl, LOG_LEVEL_WARN,
		                "metrics: too many connections; closing a new one");
		evutil_closesocket(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	c->ms = ms;
	c->bev = FAULT("metrics_bufferevent_new") ? NULL
	       : bufferevent_socket_new(ms->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		goto fail;
	fd = -1;
	c->deadline = FAULT("metrics_evtimer_new") ? NULL : evtimer_new(ms->base, deadline_cb, c);
	if (c->deadline == NULL || event_add(c->deadline, &tv) < 0) {
		if (c->deadline != NULL)
			event_free(c->deadline);
		bufferevent_free(c->bev);
		goto fail;
	}
	/* Read no more than a whole request can be: the rest is refused. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, METRICS_REQ_MAX + 1);
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	bufferevent_enable(c->bev, EV_READ);
	TAILQ_INSERT_TAIL(&ms->conns, c, link);
	ms->nconns++;
	return;
fail:
	free(c);
	if (fd >= 0)
		evutil_closesocket(fd);
	fd_budget_release(1);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct metrics_server *ms = arg;

	accept_pause_error(&ms->pause, EVUTIL_SOCKET_ERROR());
}

struct metrics_server *metrics_server_new(struct event_base *base, const struct sockaddr *sa,
                                          socklen_t salen, int allow_public,
                                          metrics_collect_cb cb, void *arg,
                                          char *err, size_t errlen)
{
	struct metrics_server *ms;
	char abuf[96];

	netaddr_format(sa, abuf, sizeof(abuf));
	if (!allow_public && !metrics_addr_is_loopback(sa)) {
		snprintf(err, errlen, "--metrics %s is not a loopback address; the metrics "
		         "describe every session: pass --metrics-public to serve them there", abuf);
		return NULL;
	}
	ms = calloc(1, sizeof(*ms));
	if (ms == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ms->base = base;
	ms->cb = cb;
	ms->arg = arg;
	TAILQ_INIT(&ms->conns);
	ms->lis = evconnlistener_new_bind(base, accept_cb, ms,
	                                  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	                                  LEV_OPT_CLOSE_ON_EXEC, 16, sa, (int)salen);
	if (ms->lis == NULL) {
		snprintf(err, errlen, "--metrics %s: cannot listen: %s", abuf, strerror(errno));
		free(ms);
		return NULL;
	}
	evconnlistener_set_error_cb(ms->lis, accept_error_cb);
	if (accept_pause_init(&ms->pause, base, ms->lis, &metrics_rl, "metrics: ") < 0) {
		snprintf(err, errlen, "out of memory");
		evconnlistener_free(ms->lis);
		free(ms);
		return NULL;
	}
	ms->addrlen = sizeof(ms->addr);
	if (getsockname(evconnlistener_get_fd(ms->lis), (struct sockaddr *)&ms->addr,
	                &ms->addrlen) < 0)
		ms->addrlen = 0;
	return ms;
}

int metrics_server_local_addr(const struct metrics_server *ms, struct sockaddr_storage *ss,
                              socklen_t *len)
{
	if (ms == NULL || ms->addrlen == 0)
		return -1;
	memcpy(ss, &ms->addr, ms->addrlen);
	*len = ms->addrlen;
	return 0;
}

void metrics_server_free(struct metrics_server *ms)
{
	if (ms == NULL)
		return;
	while (!TAILQ_EMPTY(&ms->conns))
		mconn_free(TAILQ_FIRST(&ms->conns));
	accept_pause_clear(&ms->pause);
	evconnlistener_free(ms->lis);
	free(ms);
}
