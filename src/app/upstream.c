/*
 * One client association and its waiting requests; see app.h.
 */
#include "app/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "front/front.h"
#include "metrics/metrics.h"
#include "mux/mux.h"
#include "util/clock.h"
#include "util/fault.h"
#include "util/log.h"

#define RECONNECT_MIN_MS 250
#define RECONNECT_MAX_MS 5000

struct waiting {
	TAILQ_ENTRY(waiting) link;
	struct upstream *u;
	struct front_conn *fc;
	struct mux_dest dest;
	struct event *timer;
	int udp;                      /* a UDP ASSOCIATE */
	struct socks_dest announced;  /* its client address */
};

struct upstream {
	struct event_base *base;
	struct upstream_config cfg;
	struct mux_session *m;
	struct wire_link *link_pending;   /* handshake under way */
	struct wire_link *link_failed;    /* freed from the reconnect timer */
	struct wire_link *link;           /* the session's link (path callbacks) */
	struct event *reconnect_ev;
	unsigned backoff_ms;
	int was_up;
	int stopped;
	/* The metrics endpoint's view (app/metrics.c). */
	uint64_t session_id;              /* of u->m; 0 while there is none */
	uint64_t session_start_ms;
	unsigned fails;                   /* attempts failed since the last up */
	unsigned fails_before_up;         /* ... before the current session came up */
	TAILQ_HEAD(, waiting) waiting;
	unsigned nwaiting;
};

static void upstream_connect(struct upstream *u);
static void unhook_link(struct upstream *u);

void upstream_dest_from_socks(const struct socks_request *req, struct mux_dest *d)
{
	const struct socks_dest *sd = &req->dest;

	memset(d, 0, sizeof(*d));
	d->port = sd->port;
	switch (sd->atyp) {
	case SOCKS_ATYP_IPV4:
		d->type = MUX_DEST_IPV4;
		memcpy(d->addr, sd->ipv4, 4);
		break;
	case SOCKS_ATYP_IPV6:
		d->type = MUX_DEST_IPV6;
		memcpy(d->addr, sd->ipv6, 16);
		break;
	default:
		d->type = MUX_DEST_DOMAIN;
		memcpy(d->domain, sd->domain, sizeof(d->domain));
		break;
	}
}

static uint8_t socks_code(int err)
{
	/* Stream errors 1..8 are SOCKS5 reply codes; the rest are failures. */
	return err >= 1 && err <= 8 ? (uint8_t)err : SOCKS5_GENERAL_FAILURE;
}

static void open_result(struct mux_stream *s, int err, struct bufferevent *bev, void *arg)
{
	struct front_conn *fc = arg;

	if (err == 0) {
		metrics_counters.conn_accepted++;
		front_conn_succeeded(fc, bev);
		return;
	}
	metrics_count_refused(metrics_refusal_from_code((unsigned)err));
	log_info("connection failed at the server: %s", proto_err_str((uint8_t)err));
	front_conn_failed(fc, bev, socks_code(err));
}

static void open_stream(struct upstream *u, struct front_conn *fc, const struct mux_dest *d)
{
	struct bufferevent *bev = front_conn_bev(fc);

	if (mux_stream_open(u->m, d, bev, open_result, fc) == NULL) {
		log_warn("no free stream on the association; refusing a connection");
		metrics_count_refused(MR_NO_STREAM);
		front_conn_failed(fc, bev, SOCKS5_GENERAL_FAILURE);
	}
}

static void waiting_free(struct upstream *u, struct waiting *w)
{
	TAILQ_REMOVE(&u->waiting, w, link);
	u->nwaiting--;
	event_free(w->timer);
	free(w);
}

static void fail_waiting(struct upstream *u)
{
	while (!TAILQ_EMPTY(&u->waiting)) {
		struct waiting *w = TAILQ_FIRST(&u->waiting);

		metrics_count_refused(MR_NO_ASSOCIATION);
		front_conn_failed(w->fc, front_conn_bev(w->fc), SOCKS5_GENERAL_FAILURE);
		waiting_free(u, w);
	}
}

static void waiting_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct waiting *w = arg;
	struct upstream *u = w->u;

	log_info("no association to %s within %u s; refusing a connection",
	         u->cfg.label, u->cfg.open_timeout);
	metrics_count_refused(MR_NO_ASSOCIATION);
	front_conn_failed(w->fc, front_conn_bev(w->fc), SOCKS5_GENERAL_FAILURE);
	waiting_free(u, w);
}

/* Now if the association is up; a UDP ASSOCIATE when announced is set. */
static void start_request(struct upstream *u, struct front_conn *fc, const struct mux_dest *d,
                          const struct socks_dest *announced)
{
	if (announced != NULL)
		udp_assoc_start(u->base, u->m, fc, announced);
	else
		open_stream(u, fc, d);
}

static void request(struct upstream *u, struct front_conn *fc, const struct mux_dest *d,
                    const struct socks_dest *announced)
{
	struct waiting *w;
	struct timeval tv = { u->cfg.open_timeout, 0 };

	if (mux_session_is_up(u->m)) {
		start_request(u, fc, d, announced);
		return;
	}
	if (u->stopped)
		goto fail;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		goto fail;
	w->u = u;
	w->fc = fc;
	if (announced != NULL) {
		w->udp = 1;
		w->announced = *announced;
	} else {
		w->dest = *d;
	}
	w->timer = FAULT("upstream_wait_timer") ? NULL : evtimer_new(u->base, waiting_timeout, w);
	if (w->timer == NULL || evtimer_add(w->timer, &tv) < 0) {
		if (w->timer != NULL)
			event_free(w->timer);
		free(w);
		goto fail;
	}
	TAILQ_INSERT_TAIL(&u->waiting, w, link);
	u->nwaiting++;
	/* On demand: start connecting unless an attempt or a retry is pending. */
	if (u->m == NULL && u->link_pending == NULL && !evtimer_pending(u->reconnect_ev, NULL))
		upstream_connect(u);
	return;
fail:
	metrics_count_refused(u->stopped ? MR_SHUTDOWN : MR_OTHER);
	front_conn_failed(fc, front_conn_bev(fc), SOCKS5_GENERAL_FAILURE);
}

void upstream_request(struct upstream *u, struct front_conn *fc, const struct mux_dest *d)
{
	request(u, fc, d, NULL);
}

void upstream_udp_request(struct upstream *u, struct front_conn *fc,
                          const struct socks_dest *announced)
{
	request(u, fc, NULL, announced);
}

unsigned upstream_busy(const struct upstream *u)
{
	return (u->m != NULL ? mux_session_streams(u->m) : 0) + u->nwaiting;
}

const char *upstream_label(const struct upstream *u)
{
	return u->cfg.label;
}

static void on_up(struct mux_session *m, void *arg)
{
	struct upstream *u = arg;

	log_notice("association up with %s", u->cfg.label);
	u->backoff_ms = RECONNECT_MIN_MS;
	u->was_up = 1;
	metrics_counters.sessions_established++;
	u->fails_before_up = u->fails;
	u->fails = 0;
	if (u->cfg.status != NULL)
		u->cfg.status(u, 1, NULL, u->cfg.arg);
	rfwd_client_up(u->cfg.rfwd, m);
	while (!TAILQ_EMPTY(&u->waiting)) {
		struct waiting *w = TAILQ_FIRST(&u->waiting);
		struct front_conn *fc = w->fc;
		struct mux_dest d = w->dest;
		struct socks_dest a = w->announced;
		int udp = w->udp;

		waiting_free(u, w);
		start_request(u, fc, &d, udp ? &a : NULL);
	}
}

static void schedule_reconnect(struct upstream *u)
{
	struct timeval tv;

	if (u->stopped)
		return;
	/* On-demand upstreams retry only for requests that are waiting. */
	if (!u->cfg.persistent && TAILQ_EMPTY(&u->waiting)) {
		u->backoff_ms = RECONNECT_MIN_MS;
		return;
	}
	tv.tv_sec = u->backoff_ms / 1000;
	tv.tv_usec = (u->backoff_ms % 1000) * 1000;
	evtimer_add(u->reconnect_ev, &tv);
	u->backoff_ms *= 2;
	if (u->backoff_ms > RECONNECT_MAX_MS)
		u->backoff_ms = RECONNECT_MAX_MS;
}

static void on_down(struct mux_session *m, const char *why, void *arg)
{
	struct upstream *u = arg;

	if (u->was_up) {
		metrics_counters.sessions_closed++;
		log_warn("association with %s lost: %s%s", u->cfg.label, why,
		         u->cfg.persistent ? "; reconnecting" : "");
	} else {
		metrics_counters.handshake_failures++;
		u->fails++;
		log_warn("cannot reach %s: %s; retrying", u->cfg.label, why);
		if (u->cfg.status != NULL)
			u->cfg.status(u, 0, why, u->cfg.arg);
	}
	u->was_up = 0;
	rfwd_client_down(u->cfg.rfwd);
	unhook_link(u);
	mux_session_free(m);
	u->m = NULL;
	u->session_id = 0;
	schedule_reconnect(u);
}

static void on_stream_open(struct mux_session *m, struct mux_stream *s,
                           const struct mux_dest *dest, void *arg)
{
	/* The server does not open streams towards clients in this version. */
	mux_stream_reject(s, MUX_ERR_NOT_ALLOWED);
}

/* The server opened s for one of our remote forwards (-R). */
static void on_fwd_open(struct mux_session *m, struct mux_stream *s, uint32_t id,
                        const struct mux_dest *dest, void *arg)
{
	struct upstream *u = arg;

	if (u->cfg.rfwd == NULL) {
		mux_stream_reject(s, MUX_ERR_UNSUPPORTED);
		return;
	}
	rfwd_client_open(u->cfg.rfwd, s, id, dest);
}

static const struct mux_session_cbs upstream_cbs = {
	.up = on_up,
	.down = on_down,
	.stream_open = on_stream_open,
	.fwd_open = on_fwd_open,
};

/* The link outlives us by a little (the association is freed later). */
static void unhook_link(struct upstream *u)
{
	if (u->link != NULL)
		wire_link_set_path_cb(u->link, NULL, NULL);
	u->link = NULL;
}

static void on_path_event(struct wire_link *l, const char *what, void *arg)
{
	struct upstream *u = arg;

	mux_session_path_changed(u->m);
	if (u->cfg.path_event != NULL)
		u->cfg.path_event(u, what, u->cfg.arg);
}

static void on_link_ready(struct wire_link *l, int ok, const char *why, void *arg)
{
	struct upstream *u = arg;

	u->link_pending = NULL;
	if (!ok) {
		metrics_counters.handshake_failures++;
		u->fails++;
		log_warn("%s (%s); retrying", why, u->cfg.label);
		if (u->cfg.status != NULL)
			u->cfg.status(u, 0, why, u->cfg.arg);
		/* We are inside l's callback: free it later (and an older one now). */
		wire_link_free(u->link_failed);
		u->link_failed = l;
		schedule_reconnect(u);
		return;
	}
	log_info("handshake with %s done", u->cfg.label);
	u->link = l;
	wire_link_set_path_cb(l, on_path_event, u);
	u->m = mux_session_connect(l, &u->cfg.tun.mux, &upstream_cbs, u);
	if (u->m == NULL) {
		schedule_reconnect(u);
		return;
	}
	u->session_id = metrics_new_session_id();
	u->session_start_ms = clock_now_ms();
}

static void upstream_connect(struct upstream *u)
{
	u->link_pending = wire_link_connect(u->base, u->cfg.eps, u->cfg.neps, &u->cfg.tun.wire,
	                                    on_link_ready, u);
	if (u->link_pending == NULL) {
		metrics_counters.handshake_failures++;
		u->fails++;
		if (u->cfg.status != NULL)
			u->cfg.status(u, 0, "cannot open a carrier socket", u->cfg.arg);
		schedule_reconnect(u);
	}
}

static void reconnect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *u = arg;

	wire_link_free(u->link_failed);
	u->link_failed = NULL;
	if (u->m == NULL && u->link_pending == NULL && !u->stopped &&
	    (u->cfg.persistent || !TAILQ_EMPTY(&u->waiting)))
		upstream_connect(u);
}

struct upstream *upstream_new(struct event_base *base, const struct upstream_config *cfg)
{
	struct upstream *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return NULL;
	u->base = base;
	u->cfg = *cfg;
	u->cfg.tun.wire.cert = &u->cfg.cert;
	u->cfg.tun.wire.proxy = u->cfg.proxy.type != CARRIER_PROXY_NONE ? &u->cfg.proxy : NULL;
	if (u->cfg.bindlen > 0) {
		u->cfg.tun.wire.bind_addr = (struct sockaddr *)&u->cfg.bind;
		u->cfg.tun.wire.bind_len = u->cfg.bindlen;
	} else {
		u->cfg.tun.wire.bind_addr = NULL;
		u->cfg.tun.wire.bind_len = 0;
	}
	u->backoff_ms = RECONNECT_MIN_MS;
	TAILQ_INIT(&u->waiting);
	u->reconnect_ev = FAULT("upstream_reconnect_timer") ? NULL
	                                                     : evtimer_new(base, reconnect_cb, u);
	if (u->reconnect_ev == NULL) {
		free(u);
		return NULL;
	}
	if (u->cfg.persistent)
		upstream_connect(u);
	return u;
}

void upstream_stop(struct upstream *u)
{
	u->stopped = 1;
	evtimer_del(u->reconnect_ev);
	fail_waiting(u);
}

void upstream_close(struct upstream *u)
{
	fail_waiting(u);
	unhook_link(u);
	if (u->m != NULL)
		mux_session_free(u->m);
	u->m = NULL;
	rfwd_client_down(u->cfg.rfwd);
	wire_link_free(u->link_pending);
	u->link_pending = NULL;
}

void upstream_free(struct upstream *u)
{
	if (u == NULL)
		return;
	u->stopped = 1;
	upstream_close(u);
	wire_link_free(u->link_failed);
	event_free(u->reconnect_ev);
	free(u);
}

int upstream_metrics(const struct upstream *u, int streams, int addresses, size_t *budget,
                     struct metrics_session *out)
{
	if (u == NULL || u->m == NULL || u->session_id == 0)
		return 0;
	if (app_metrics_session(u->m, u->session_id, u->session_start_ms, NULL, streams,
	                        addresses, budget, out) < 0)
		return -1;
	out->handshake_failures = u->was_up ? u->fails_before_up : u->fails;
	return 1;
}
