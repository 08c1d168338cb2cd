/*
 * SOCKS listener I/O around the pure parser in socks.c.  Each connection
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

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

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

struct front_conn {
	struct front *f;
	struct bufferevent *bev;
	struct socks_state st;
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

static void negotiate(struct front_conn *fc)
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
		close_after_flush(fc->f, fc->bev);
		front_conn_free(fc);
		return;
	}
	if (r == SOCKS_NEED_MORE) {
		if (evbuffer_get_length(in) >= FRONT_NEGOTIATION_MAX) {
			log_ratelimited(&front_rl, LOG_LEVEL_INFO, "SOCKS: request too long");
			close_after_flush(fc->f, fc->bev);
			front_conn_free(fc);
		}
		return;
	}
	/* Done: stop reading until the owner decides; keep pipelined bytes. */
	bufferevent_disable(fc->bev, EV_READ);
	bufferevent_setcb(fc->bev, NULL, NULL, NULL, NULL);
	FREE_AND_NULL(event_free, fc->deadline);
	if (fc->refuse) {
		log_ratelimited(&front_rl, LOG_LEVEL_WARN, "SOCKS: out of file descriptors "
		                "(%lu of %lu open); refusing a request", fd_budget_in_use(),
		                fd_budget_limit());
		front_conn_failed(fc, fc->bev, SOCKS5_GENERAL_FAILURE);
		return;
	}
	fc->handed_over = 1;
	fc->f->cb(fc, &fc->st.req, fc->f->arg);
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

	log_ratelimited(&front_rl, LOG_LEVEL_INFO, "SOCKS: negotiation timed out");
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
		evutil_closesocket(fd);
		return;
	}
	/* fd is open already: count it.  Refuse with an answer while we can. */
	if (!fd_budget_take(1, FD_BUDGET_RESERVE)) {
		if (!fd_budget_take(1, FD_BUDGET_RESERVE / 2)) {
			log_ratelimited(&front_rl, LOG_LEVEL_WARN, "out of file descriptors "
			                "(%lu of %lu open); closing a new connection",
			                fd_budget_in_use(), fd_budget_limit());
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

void front_conn_succeeded(struct front_conn *fc, struct bufferevent *bev)
{
	uint8_t reply[SOCKS_REPLY_MAX];
	size_t n = socks_reply(&fc->st, SOCKS5_SUCCEEDED, reply);
	ssize_t w = 0;

	/* Usually nothing is queued: answer now rather than next loop turn. */
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		w = send(bufferevent_getfd(bev), reply, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w < 0)
		w = 0;
	if ((size_t)w < n)
		bufferevent_write(bev, reply + w, n - (size_t)w);
	release_slot(fc->f);
	front_conn_free(fc);
}

void front_conn_failed(struct front_conn *fc, struct bufferevent *bev, uint8_t rep)
{
	uint8_t reply[SOCKS_REPLY_MAX];
	size_t n = socks_reply(&fc->st, rep, reply);
	struct front *f = fc->f;

	if (bev != NULL) {
		bufferevent_write(bev, reply, n);
		close_after_flush(f, bev);
	} else {
		release_slot(f);
	}
	front_conn_free(fc);
}
