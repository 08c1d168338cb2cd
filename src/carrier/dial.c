/*
 * Dialling the server through an upstream proxy: a TCP connection to the
 * proxy, the negotiation of proxy.c's state machines over it (SOCKS5
 * CONNECT or UDP ASSOCIATE, SOCKS4a, HTTP CONNECT), a deadline, and one
 * report of the outcome.  Used by the TCP carrier for its connection and
 * by the UDP carrier for the UDP ASSOCIATE control connection.
 */
#include "carrier/carrier_internal.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "util/bytes.h"
#include "util/fault.h"
#include "util/log.h"


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
	d->timer = FAULT("dial_evtimer_new") ? NULL :
	           evtimer_new(bufferevent_get_base(bev), dial_timer_cb, d);
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

