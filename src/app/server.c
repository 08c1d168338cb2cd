/*
 * The server engine, shared by `sctpt server` and the managed (tor) server:
 * admits clients over the carriers, one association each, and turns every
 * stream a client opens into a TCP connection to the fixed target or, in
 * proxy mode, to the destination it asked for.
 */
#include "app/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "crypto/crypto.h"
#include "egress/egress.h"
#include "metrics/metrics.h"
#include "mux/mux.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "wire/wire.h"

struct server_client {
	TAILQ_ENTRY(server_client) link;
	struct server *srv;
	struct mux_session *m;
	struct listen_set *listeners;   /* remote forwards; made on the first LISTEN */
	char peer[128];
	struct sockaddr_storage addr;   /* the client's carrier address */
	uint64_t id;                    /* opaque, for the metrics endpoint */
	uint64_t start_ms;
	int up;
};

struct server {
	struct event_base *base;
	struct evdns_base *dns;
	struct server_params p;
	struct wire_listener *wl;
	struct egress *egress;
	TAILQ_HEAD(, server_client) clients;
	unsigned nclients;
	int shutting_down;
};

static struct log_ratelimit udp_rl = LOG_RATELIMIT_INIT(10.0, 5);

static void client_remove(struct server_client *sc)
{
	struct server *srv = sc->srv;

	TAILQ_REMOVE(&srv->clients, sc, link);
	srv->nclients--;
	mux_session_free(sc->m);        /* first: its streams point into the listen set */
	listen_set_free(sc->listeners);
	free(sc);
}

static void on_up(struct mux_session *m, void *arg)
{
	struct server_client *sc = arg;

	sc->up = 1;
	metrics_counters.sessions_established++;
	log_info("client %s: association up", sc->peer);
}

static void on_down(struct mux_session *m, const char *why, void *arg)
{
	struct server_client *sc = arg;

	if (sc->up)
		metrics_counters.sessions_closed++;
	log_info("client %s: association ended: %s", sc->peer, why);
	client_remove(sc);
}

static void on_stream_open(struct mux_session *m, struct mux_stream *s,
                           const struct mux_dest *dest, void *arg)
{
	struct server_client *sc = arg;

	if (sc->srv->shutting_down) {
		mux_stream_reject(s, MUX_ERR_SHUTDOWN);
		return;
	}
	egress_open(sc->srv->egress, s, dest, (struct sockaddr *)&sc->addr);
}

static void on_listen(struct mux_session *m, struct mux_stream *s,
                      const struct mux_listen_req *req, void *arg)
{
	struct server_client *sc = arg;

	if (sc->srv->shutting_down) {
		mux_stream_reject(s, MUX_ERR_SHUTDOWN);
		return;
	}
	if (sc->listeners == NULL)
		sc->listeners = listen_set_new(sc->srv->base, &sc->srv->p.listen_policy, m, sc->peer);
	if (sc->listeners == NULL) {
		mux_stream_reject(s, MUX_ERR_GENERAL);
		return;
	}
	listen_set_request(sc->listeners, s, req);
}

/* UDP relay: proxy mode only (a fixed target takes TCP). */
static void on_udp_open(struct mux_session *m, struct mux_stream *s, void *arg)
{
	struct server_client *sc = arg;
	struct server *srv = sc->srv;

	if (srv->shutting_down) {
		mux_stream_reject(s, MUX_ERR_SHUTDOWN);
		return;
	}
	if (srv->p.egress.mode != EGRESS_PROXY || srv->p.tun.mux.max_udp == 0) {
		log_ratelimited(&udp_rl, LOG_LEVEL_INFO, "client %s: UDP relay refused (it needs "
		                "--proxy and --max-udp > 0)", sc->peer);
		mux_stream_reject(s, MUX_ERR_UNSUPPORTED);
		return;
	}
	egress_udp_open(srv->egress, s, sc->peer);
}

static const struct mux_session_cbs server_cbs = {
	.up = on_up,
	.down = on_down,
	.stream_open = on_stream_open,
	.listen = on_listen,
	.udp_open = on_udp_open,
};

static void on_accept(struct wire_listener *wl, struct wire_link *link, void *arg)
{
	struct server *srv = arg;
	struct server_client *sc;
	socklen_t plen;
	const struct sockaddr *peer = wire_link_peer(link, &plen);

	if (srv->shutting_down) {
		wire_link_free(link);
		return;
	}
	sc = calloc(1, sizeof(*sc));
	if (sc == NULL) {
		wire_link_free(link);
		return;
	}
	sc->srv = srv;
	memcpy(&sc->addr, peer, plen < sizeof(sc->addr) ? plen : sizeof(sc->addr));
	if (log_safe_addresses())
		snprintf(sc->peer, sizeof(sc->peer), "#%u", srv->nclients + 1);
	else
		netaddr_format(peer, sc->peer, sizeof(sc->peer));
	sc->m = mux_session_accept(link, &srv->p.tun.mux, &server_cbs, sc);
	if (sc->m == NULL) {
		free(sc);
		return;
	}
	sc->id = metrics_new_session_id();
	sc->start_ms = clock_now_ms();
	TAILQ_INSERT_TAIL(&srv->clients, sc, link);
	srv->nclients++;
	log_info("client %s: new association", sc->peer);
}

unsigned server_busy(const struct server *srv)
{
	unsigned n = 0;
	const struct server_client *sc;

	if (srv == NULL)
		return 0;
	TAILQ_FOREACH(sc, &srv->clients, link)
		n += mux_session_streams(sc->m);
	return n;
}

void server_drain(struct server *srv)
{
	if (srv != NULL)
		srv->shutting_down = 1;
}

static struct evdns_base *dns_new(struct event_base *base, const char *resolv_conf)
{
	struct evdns_base *dns = evdns_base_new(base, 0);
	int r;

	if (dns == NULL)
		return NULL;
	r = evdns_base_resolv_conf_parse(dns, DNS_OPTIONS_ALL,
	                                 resolv_conf != NULL ? resolv_conf : "/etc/resolv.conf");
	if (r != 0)
		log_warn("name servers from %s not usable (code %d); only /etc/hosts names "
		         "will resolve", resolv_conf != NULL ? resolv_conf : "/etc/resolv.conf", r);
	(void)evdns_base_load_hosts(dns, NULL);
	(void)evdns_base_set_option(dns, "timeout:", "3");
	(void)evdns_base_set_option(dns, "attempts:", "2");
	return dns;
}

void server_close_clients(struct server *srv)
{
	if (srv == NULL)
		return;
	while (!TAILQ_EMPTY(&srv->clients))
		client_remove(TAILQ_FIRST(&srv->clients));
}

int server_local_addr(const struct server *srv, unsigned idx, struct sockaddr_storage *ss,
                      socklen_t *len)
{
	return wire_listener_local_addr(srv->wl, idx, ss, len);
}

struct server *server_start(struct event_base *base, const struct server_params *p)
{
	struct server *srv = calloc(1, sizeof(*srv));

	if (srv == NULL)
		return NULL;
	srv->base = base;
	srv->p = *p;
	srv->p.tun.wire.identity = &srv->p.identity;
	TAILQ_INIT(&srv->clients);
	srv->dns = dns_new(base, srv->p.resolv_conf);
	srv->egress = egress_new(base, srv->dns, &srv->p.egress);
	if (srv->dns == NULL || srv->egress == NULL)
		goto fail;
	srv->wl = wire_listener_new(base, &srv->p.listen[0], &srv->p.tun.wire, on_accept, srv);
	if (srv->wl == NULL)
		goto fail;
	for (unsigned i = 1; i < srv->p.nlisten; i++)
		if (wire_listener_add(srv->wl, &srv->p.listen[i]) < 0)
			goto fail;
	return srv;
fail:
	server_free(srv);
	return NULL;
}

void server_free(struct server *srv)
{
	if (srv == NULL)
		return;
	server_close_clients(srv);
	listen_reap_all();
	wire_listener_free(srv->wl);
	egress_free(srv->egress);
	if (srv->dns != NULL)
		evdns_base_free(srv->dns, 1);
	wc_wipe(&srv->p.identity, sizeof(srv->p.identity));
	free(srv);
}

void server_set_egress(struct server *srv, const struct egress_config *e)
{
	struct egress_config *cur = &srv->p.egress;

	egress_reconfigure(srv->egress, e);
	/* The same fields as egress_reconfigure; the Extended ORPort ones stay. */
	cur->mode = e->mode;
	memcpy(cur->target_host, e->target_host, sizeof(cur->target_host));
	cur->target_port = e->target_port;
	memcpy(cur->allow, e->allow, sizeof(cur->allow));
	cur->nallow = e->nallow;
	cur->connect_timeout = e->connect_timeout;
}

unsigned server_set_listen_policy(struct server *srv, const struct listen_policy *p)
{
	struct listen_policy *cur = &srv->p.listen_policy;
	struct server_client *sc;
	unsigned closed = 0;

	/* max_pending and max_conns come from other options: they stay. */
	memcpy(cur->permit, p->permit, sizeof(cur->permit));
	cur->npermit = p->npermit;
	cur->gateway_ports = p->gateway_ports;
	cur->max_listeners = p->max_listeners;
	TAILQ_FOREACH(sc, &srv->clients, link)
		closed += listen_set_recheck(sc->listeners);
	return closed;
}

int server_metrics(const struct server *srv, int streams, int addresses, size_t *budget,
                   struct metrics_snapshot *snap)
{
	const struct server_client *sc;
	struct wire_stats ws;
	size_t n = 0;

	wire_listener_stats(srv->wl, &ws);
	snap->have_probes = 1;
	snap->handshakes = ws.hs_ok;
	snap->rebinds = ws.rebinds;
	snap->probes[MP_BAD_HELLO] = ws.hs_bad;
	snap->probes[MP_NO_MAC] = ws.hs_nomac;
	snap->probes[MP_REPLAY] = ws.hs_replay;
	snap->probes[MP_STALE] = ws.hs_stale;
	snap->probes[MP_RATE_LIMITED] = ws.hs_limited;
	snap->probes[MP_SOURCE_LIMITED] = ws.hs_src_limited;
	snap->probes[MP_PENDING_REFUSED] = ws.pending_refused;
	snap->probes[MP_BAD_DATA] = ws.data_bad;
	if (srv->nclients == 0)
		return 0;
	snap->sessions = calloc(srv->nclients, sizeof(*snap->sessions));
	if (snap->sessions == NULL)
		return -1;
	TAILQ_FOREACH(sc, &srv->clients, link) {
		if (n == srv->nclients)
			break;
		if (app_metrics_session(sc->m, sc->id, sc->start_ms,
		                        (const struct sockaddr *)&sc->addr, streams, addresses,
		                        budget, &snap->sessions[n]) < 0) {
			snap->nsessions = n;
			return -1;
		}
		n++;
	}
	snap->nsessions = n;
	return 0;
}
