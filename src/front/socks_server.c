/*
 * SOCKS and HTTP proxy listener I/O around the pure parsers in socks.c
 * and http.c (the first byte tells which: 0x04 or 0x05 is SOCKS).  Each connection
 * has a negotiation deadline, absolute from accept (a client that trickles
 * one byte at a time is cut at it all the same); the parser bounds what is
 * buffered, so a client that trickles bytes or sends garbage costs little
 * and is closed.
 *
 * File descriptors: a connection accepted while fewer than
 * FD_BUDGET_RESERVE descriptors are left is still negotiated but answered
 * with a general failure (SOCKS4: rejected), so that the application sees
 * a clear error; with less than half that left it is closed at once.
 * accept() errors (EMFILE, ENFILE) pause the listener (util/fdbudget.h).
 */
#include "front/front.h"
#include "front/http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "metrics/metrics.h"
#include "util/bytes.h"
#include "util/fdbudget.h"
#include "util/log.h"
#include "util/netaddr.h"

/* Longest SOCKS negotiation we could need to see at once. */
#define FRONT_NEGOTIATION_MAX 2048

struct front {
	struct event_base *base;
	struct evconnlistener *listener;
	struct front_config cfg;
	front_request_cb cb;
	void *arg;
	unsigned active;
	struct accept_pause pause;
};

enum front_proto {
	FRONT_UNKNOWN = 0,      /* no byte seen yet */
	FRONT_SOCKS,
	FRONT_HTTP,
	FRONT_FIXED,            /* a port forward: no negotiation */
};

struct front_conn {
	struct front *f;
	struct bufferevent *bev;
	struct socks_state st;
	enum front_proto proto;
	size_t http_scan;               /* FRONT_HTTP: http_head_end() progress */
	int http_connect;               /* FRONT_HTTP: a CONNECT (answer 200 on success) */
	struct event *deadline;         /* the negotiation's, from accept */
	int refuse;                     /* out of descriptors: answer with an error */
	int handed_over;
};

static struct log_ratelimit front_rl = LOG_RATELIMIT_INIT(10.0, 3);

static void front_conn_free(struct front_conn *fc)
{
	if (fc->deadline != NULL)
		event_free(fc->deadline);
	free(fc);
}

static void release_slot(struct front *f)
{
	if (f != NULL && f->active > 0)
		f->active--;
}

/* Close a connection the front accepted (and counted in the fd budget). */
static void close_bev(struct bufferevent *bev)
{
	bufferevent_free(bev);
	fd_budget_release(1);
}

static void close_after_flush_writecb(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		release_slot(arg);
		close_bev(bev);
	}
}

static void close_after_flush_eventcb(struct bufferevent *bev, short what, void *arg)
{
	release_slot(arg);
	close_bev(bev);
}

/*
 * HTTP errors: after the response is flushed, half-close and read what the
 * client still sends (a request body, the rest of an oversized head) for a
 * little while, bounded in time and bytes.  Closing with unread bytes
 * would send a RST that can destroy the response before the client reads
 * it (RFC 9112 section 9.6).
 */
#define LINGER_BYTES (256 * 1024)
#define LINGER_SECONDS 2

struct front_linger {
	struct front *f;
	struct bufferevent *bev;
	struct event *timer;            /* absolute: LINGER_SECONDS after the flush */
	size_t drained;
	int shut;
};

static void linger_close(struct bufferevent *bev, struct front_linger *l)
{
	release_slot(l->f);
	close_bev(bev);
	if (l->timer != NULL)
		event_free(l->timer);
	free(l);
}

static void linger_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct front_linger *l = arg;

	linger_close(l->bev, l);
}

static void linger_readcb(struct bufferevent *bev, void *arg)
{
	struct front_linger *l = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	l->drained += evbuffer_get_length(in);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (l->drained > LINGER_BYTES)
		linger_close(bev, l);
}

static void linger_writecb(struct bufferevent *bev, void *arg)
{
	struct front_linger *l = arg;
	struct timeval tv = { LINGER_SECONDS, 0 };

	if (l->shut || evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	l->shut = 1;
	l->timer = evtimer_new(bufferevent_get_base(bev), linger_timer_cb, l);
	if (l->timer == NULL || evtimer_add(l->timer, &tv) < 0) {
		linger_close(bev, l);
		return;
	}
	(void)shutdown(bufferevent_getfd(bev), SHUT_WR);
	bufferevent_setwatermark(bev, EV_READ, 0, 0);
	bufferevent_set_timeouts(bev, &tv, NULL);
	bufferevent_disable(bev, EV_WRITE);
	bufferevent_enable(bev, EV_READ);
}

static void linger_eventcb(struct bufferevent *bev, short what, void *arg)
{
	linger_close(bev, arg);
}

static void close_lingering(struct front *f, struct bufferevent *bev)
{
	struct timeval tv = { 5, 0 };
	struct front_linger *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		release_slot(f);
		close_bev(bev);
		return;
	}
	l->f = f;
	l->bev = bev;
	/* Only what arrives from now on counts; what is buffered goes. */
	evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, linger_readcb, linger_writecb, linger_eventcb, l);
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(bev, NULL, &tv);
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		linger_writecb(bev, l);
	else
		bufferevent_enable(bev, EV_WRITE);
}

/* Answer an HTTP client with status, then close (lingering). */
static void http_fail(struct front *f, struct bufferevent *bev, int status)
{
	char resp[HTTP_RESPONSE_MAX];
	size_t n = http_response(status, resp);

	bufferevent_write(bev, resp, n);
	close_lingering(f, bev);
}

static void close_after_flush(struct front *f, struct bufferevent *bev)
{
	struct timeval tv = { 5, 0 };

	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, close_after_flush_writecb,
	                  close_after_flush_eventcb, f);
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(bev, NULL, &tv);
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		release_slot(f);
		close_bev(bev);
		return;
	}
	bufferevent_enable(bev, EV_WRITE);
}

/* Negotiation complete: stop reading until the owner decides. */
static void hand_over(struct front_conn *fc)
{
	bufferevent_disable(fc->bev, EV_READ);
	bufferevent_setcb(fc->bev, NULL, NULL, NULL, NULL);
	FREE_AND_NULL(event_free, fc->deadline);
	if (fc->refuse) {
		log_ratelimited(&front_rl, LOG_LEVEL_WARN, "%s: out of file descriptors "
		                "(%lu of %lu open); refusing a request",
		                fc->proto == FRONT_HTTP ? "HTTP" : "SOCKS", fd_budget_in_use(),
		                fd_budget_limit());
		metrics_count_refused(MR_FD_LIMIT);
		front_conn_failed(fc, fc->bev, SOCKS5_GENERAL_FAILURE);
		return;
	}
	fc->handed_over = 1;
	fc->f->cb(fc, &fc->st.req, fc->f->arg);
}

static void negotiate_socks(struct front_conn *fc)
{
	struct evbuffer *in = bufferevent_get_input(fc->bev);
	uint8_t reply[SOCKS_REPLY_MAX];
	size_t used = 0, replylen = 0;
	size_t n = evbuffer_get_length(in);
	uint8_t *p;
	int r;

	if (n > FRONT_NEGOTIATION_MAX)
		n = FRONT_NEGOTIATION_MAX;
	p = evbuffer_pullup(in, (ev_ssize_t)n);
	if (p == NULL && n > 0)
		return;
	r = socks_step(&fc->st, p, n, &used, reply, &replylen);
	evbuffer_drain(in, used);
	if (replylen > 0)
		bufferevent_write(fc->bev, reply, replylen);
	if (r == SOCKS_ERROR) {
		log_ratelimited(&front_rl, LOG_LEVEL_INFO, "SOCKS: %s",
		                fc->st.error != NULL ? fc->st.error : "bad request");
		metrics_count_refused(MR_BAD_REQUEST);
		close_after_flush(fc->f, fc->bev);
		front_conn_free(fc);
		return;
	}
	if (r == SOCKS_NEED_MORE) {
		if (evbuffer_get_length(in) >= FRONT_NEGOTIATION_MAX) {
			log_ratelimited(&front_rl, LOG_LEVEL_INFO, "SOCKS: request too long");
			metrics_count_refused(MR_BAD_REQUEST);
			close_after_flush(fc->f, fc->bev);
			front_conn_free(fc);
		}
		return;
	}
	/* Done; pipelined bytes stay in the input. */
	hand_over(fc);
}

/*
 * The head is complete: parse it, and leave in the input what goes
 * upstream.  The parsed request (about 17 KiB) lives only for this call.
 * Returns 0, or the HTTP status to refuse with.
 */
static int take_http_request(struct front_conn *fc, const uint8_t *head, size_t len)
{
	struct evbuffer *in = bufferevent_get_input(fc->bev);
	struct http_request *req = malloc(sizeof(*req));
	int status;

	if (req == NULL)
		return 502;
	if ((status = http_parse(head, len, req)) != 0) {
		log_ratelimited(&front_rl, LOG_LEVEL_INFO, "HTTP: %s (%d)",
		                req->error != NULL ? req->error : "bad request", status);
		free(req);
		return status;
	}
	/*
	 * The owner reads the request as a SOCKS5 CONNECT without
	 * authentication.  What follows the head stays in the input; an
	 * absolute-form request goes first in its rewritten form, so that the
	 * stream sends it with the OPEN.
	 */
	fc->st.req.version = 5;
	fc->st.req.cmd = SOCKS_CMD_CONNECT;
	fc->st.req.dest = req->dest;
	fc->http_connect = req->connect;
	evbuffer_drain(in, len);
	if (!req->connect && evbuffer_prepend(in, req->out, req->out_len) < 0)
		status = 502;
	free(req);
	return status;
}

static void negotiate_http(struct front_conn *fc)
{
	struct evbuffer *in = bufferevent_get_input(fc->bev);
	size_t n = evbuffer_get_length(in);
	uint8_t *p;
	long end;
	int status;

	if (n > HTTP_HEAD_MAX)
		n = HTTP_HEAD_MAX;
	p = evbuffer_pullup(in, (ev_ssize_t)n);
	if (p == NULL)
		return;
	end = http_head_end(p, n, &fc->http_scan);
	if (end == 0)
		return;
	if (end < 0) {
		log_ratelimited(&front_rl, LOG_LEVEL_INFO, "HTTP: request head too large");
		status = 400;
	} else {
		status = take_http_request(fc, p, (size_t)end);
	}
	if (status != 0) {
		metrics_count_refused(MR_BAD_REQUEST);
		FREE_AND_NULL(event_free, fc->deadline);
		http_fail(fc->f, fc->bev, status);
		front_conn_free(fc);
		return;
	}
	hand_over(fc);
}

/*
 * The first byte tells: SOCKS starts with its version, HTTP with a method
 * (a token character).  Anything else goes to the SOCKS parser, which
 * closes the connection without an answer, as before HTTP was added.
 */
static void negotiate(struct front_conn *fc)
{
	struct evbuffer *in = bufferevent_get_input(fc->bev);
	uint8_t first;

	if (fc->proto == FRONT_UNKNOWN) {
		if (evbuffer_copyout(in, &first, 1) != 1)
			return;
		fc->proto = FRONT_SOCKS;
		if (fc->f->cfg.http && first != 0x04 && first != 0x05 && http_may_start(first)) {
			fc->proto = FRONT_HTTP;
			bufferevent_setwatermark(fc->bev, EV_READ, 0, HTTP_HEAD_MAX);
		}
	}
	if (fc->proto == FRONT_HTTP)
		negotiate_http(fc);
	else
		negotiate_socks(fc);
}

static void conn_readcb(struct bufferevent *bev, void *arg)
{
	negotiate(arg);
}

static void conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct front_conn *fc = arg;

	release_slot(fc->f);
	close_bev(fc->bev);
	front_conn_free(fc);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct front_conn *fc = arg;

	if (fc->proto == FRONT_HTTP) {
		log_ratelimited(&front_rl, LOG_LEVEL_INFO, "HTTP: request timed out");
		metrics_count_refused(MR_BAD_REQUEST);
		FREE_AND_NULL(event_free, fc->deadline);
		http_fail(fc->f, fc->bev, 408);
		front_conn_free(fc);
		return;
	}
	log_ratelimited(&front_rl, LOG_LEVEL_INFO, "SOCKS: negotiation timed out");
	metrics_count_refused(MR_BAD_REQUEST);
	release_slot(fc->f);
	close_bev(fc->bev);
	front_conn_free(fc);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
	struct front *f = arg;
	struct front_conn *fc;
	struct timeval tv = { f->cfg.handshake_timeout, 0 };
	int one = 1, refuse = 0;
	unsigned busy = f->cfg.busy != NULL ? f->cfg.busy(f->arg) : 0;

	accept_pause_ok(&f->pause);
	if (f->active + busy >= f->cfg.max_conns) {
		log_ratelimited(&front_rl, LOG_LEVEL_WARN,
		                "connection limit (%u) reached; refusing new connections",
		                f->cfg.max_conns);
		metrics_count_refused(MR_CONN_LIMIT);
		evutil_closesocket(fd);
		return;
	}
	/* fd is open already: count it.  Refuse with an answer while we can. */
	if (!fd_budget_take(1, FD_BUDGET_RESERVE)) {
		if (!fd_budget_take(1, FD_BUDGET_RESERVE / 2)) {
			log_ratelimited(&front_rl, LOG_LEVEL_WARN, "out of file descriptors "
			                "(%lu of %lu open); closing a new connection",
			                fd_budget_in_use(), fd_budget_limit());
			metrics_count_refused(MR_FD_LIMIT);
			evutil_closesocket(fd);
			return;
		}
		refuse = 1;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fc = calloc(1, sizeof(*fc));
	if (fc == NULL) {
		evutil_closesocket(fd);
		return;
	}
	fc->f = f;
	fc->refuse = refuse;
	fc->deadline = evtimer_new(f->base, deadline_cb, fc);
	fc->bev = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (fc->bev == NULL || fc->deadline == NULL || evtimer_add(fc->deadline, &tv) < 0) {
		if (fc->bev != NULL)
			bufferevent_free(fc->bev);
		else
			evutil_closesocket(fd);
		fd_budget_release(1);
		front_conn_free(fc);
		return;
	}
	f->active++;
	socks_state_init(&fc->st);
	if (f->cfg.fixed) {
		fc->proto = FRONT_FIXED;
		fc->st.req.version = 5;
		fc->st.req.cmd = SOCKS_CMD_CONNECT;
		fc->st.req.dest = f->cfg.fixed_dest;
		hand_over(fc);
		return;
	}
	bufferevent_setcb(fc->bev, conn_readcb, NULL, conn_eventcb, fc);
	bufferevent_setwatermark(fc->bev, EV_READ, 0, FRONT_NEGOTIATION_MAX);
	bufferevent_enable(fc->bev, EV_READ | EV_WRITE);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct front *f = arg;

	/* EMFILE and friends: pause the listener, new connections wait. */
	accept_pause_error(&f->pause, EVUTIL_SOCKET_ERROR());
}

struct front *front_new(struct event_base *base, const struct sockaddr *addr,
                        socklen_t len, const struct front_config *cfg,
                        front_request_cb cb, void *arg)
{
	struct front *f = calloc(1, sizeof(*f));
	char abuf[128];

	if (f == NULL)
		return NULL;
	f->base = base;
	f->cfg = *cfg;
	f->cb = cb;
	f->arg = arg;
	f->listener = evconnlistener_new_bind(base, accept_cb, f,
	                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	                                      LEV_OPT_CLOSE_ON_EXEC, 1024, addr, (int)len);
	if (f->listener == NULL) {
		log_err("cannot listen on %s: %s", netaddr_format(addr, abuf, sizeof(abuf)),
		        strerror(errno));
		free(f);
		return NULL;
	}
	if (accept_pause_init(&f->pause, base, f->listener, &front_rl, "") < 0) {
		log_err("cannot listen on %s: out of memory", netaddr_format(addr, abuf, sizeof(abuf)));
		evconnlistener_free(f->listener);
		free(f);
		return NULL;
	}
	evconnlistener_set_error_cb(f->listener, accept_error_cb);
	return f;
}

struct front *front_new_fd(struct event_base *base, int fd, const struct front_config *cfg,
                           front_request_cb cb, void *arg)
{
	struct front *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		evutil_closesocket(fd);
		return NULL;
	}
	f->base = base;
	f->cfg = *cfg;
	f->cb = cb;
	f->arg = arg;
	f->listener = evconnlistener_new(base, accept_cb, f, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (f->listener == NULL) {
		evutil_closesocket(fd);
		free(f);
		return NULL;
	}
	if (accept_pause_init(&f->pause, base, f->listener, &front_rl, "") < 0) {
		evconnlistener_free(f->listener);
		free(f);
		return NULL;
	}
	evconnlistener_set_error_cb(f->listener, accept_error_cb);
	return f;
}

void front_stop(struct front *f)
{
	if (f != NULL && f->listener != NULL) {
		accept_pause_clear(&f->pause);
		evconnlistener_free(f->listener);
		f->listener = NULL;
	}
}

void front_free(struct front *f)
{
	if (f == NULL)
		return;
	front_stop(f);
	free(f);
}

unsigned front_active(const struct front *f)
{
	return f->active;
}

int front_local_addr(const struct front *f, struct sockaddr_storage *ss, socklen_t *len)
{
	*len = sizeof(*ss);
	if (f->listener == NULL)
		return -1;
	return getsockname(evconnlistener_get_fd(f->listener), (struct sockaddr *)ss, len);
}

struct bufferevent *front_conn_bev(struct front_conn *fc)
{
	return fc->bev;
}

/* The success reply: SOCKS's, CONNECT's 200, or nothing (the server answers, or a forward). */
static size_t success_reply(const struct front_conn *fc, uint8_t *out)
{
	if (fc->proto == FRONT_FIXED)
		return 0;
	if (fc->proto != FRONT_HTTP)
		return socks_reply(&fc->st, SOCKS5_SUCCEEDED, out);
	if (!fc->http_connect)
		return 0;
	return http_response(200, (char *)out);
}

void front_conn_succeeded(struct front_conn *fc, struct bufferevent *bev)
{
	uint8_t reply[HTTP_RESPONSE_MAX];
	size_t n = success_reply(fc, reply);
	ssize_t w = 0;

	/* Usually nothing is queued: answer now rather than next loop turn. */
	if (n > 0 && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		w = send(bufferevent_getfd(bev), reply, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w < 0)
		w = 0;
	if ((size_t)w < n)
		bufferevent_write(bev, reply + w, n - (size_t)w);
	release_slot(fc->f);
	front_conn_free(fc);
}

void front_conn_udp_succeeded(struct front_conn *fc, struct bufferevent *bev,
                              const struct sockaddr *bnd)
{
	uint8_t reply[SOCKS_REPLY_MAX];
	size_t n = socks_reply_bound(SOCKS5_SUCCEEDED, bnd, reply);

	bufferevent_write(bev, reply, n);
	release_slot(fc->f);
	front_conn_free(fc);
}

void front_conn_failed(struct front_conn *fc, struct bufferevent *bev, uint8_t rep)
{
	uint8_t reply[SOCKS_REPLY_MAX];
	struct front *f = fc->f;
	size_t n;

	if (bev == NULL) {
		release_slot(f);
	} else if (fc->proto == FRONT_FIXED) {
		/* A forward has no way to say why: the application sees a reset. */
		struct linger lg = { 1, 0 };

		(void)setsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		release_slot(f);
		close_bev(bev);
	} else if (fc->proto == FRONT_HTTP) {
		http_fail(f, bev, http_status_for_socks(rep));
	} else {
		n = socks_reply(&fc->st, rep, reply);
		bufferevent_write(bev, reply, n);
		close_after_flush(f, bev);
	}
	front_conn_free(fc);
}

int front_conn_is_http(const struct front_conn *fc)
{
	return fc->proto == FRONT_HTTP;
}
