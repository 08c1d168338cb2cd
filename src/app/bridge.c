/*
 * The managed client's bridge pool; see app.h.  One upstream per bridge
 * (address plus Bridge-line arguments): tor opens many connections to the
 * same bridge, and they all ride one association.  Idle associations are
 * closed after BRIDGE_IDLE_SECS, and when the pool is full the one unused
 * the longest makes room.
 */
#include "app/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <event2/event.h>

#include "util/clock.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/netaddr.h"

#define BRIDGE_KEY_MAX 2048     /* "addr|arguments": as long as a tor protocol line */
#define REAP_SECS 60

struct bridge {
	TAILQ_ENTRY(bridge) link;
	struct bridge_pool *bp;
	char key[BRIDGE_KEY_MAX];
	char addr[64];                  /* for STATUS lines */
	struct upstream *up;
	uint64_t last_used_ms;          /* monotonic */
};

struct bridge_pool {
	struct event_base *base;
	struct bridge_pool_config cfg;
	TAILQ_HEAD(, bridge) bridges;
	unsigned nbridges, next_id;
	struct event *reap_ev;
};

static void bridge_status(struct upstream *u, int ok, const char *why, void *arg)
{
	struct bridge *b = arg;

	if (b->bp->cfg.status != NULL)
		b->bp->cfg.status(b->addr, ok, why, b->bp->cfg.arg);
}

static void bridge_path_event(struct upstream *u, const char *what, void *arg)
{
	struct bridge *b = arg;

	if (b->bp->cfg.path_event != NULL)
		b->bp->cfg.path_event(b->addr, what, b->bp->cfg.arg);
}

static void bridge_free(struct bridge_pool *bp, struct bridge *b)
{
	TAILQ_REMOVE(&bp->bridges, b, link);
	bp->nbridges--;
	upstream_free(b->up);
	free(b);
}

/* Close associations nobody has used for a while. */
static void reap_idle(struct bridge_pool *bp, int force_one)
{
	uint64_t now = clock_now_ms();
	struct bridge *b, *next, *oldest = NULL;

	for (b = TAILQ_FIRST(&bp->bridges); b != NULL; b = next) {
		next = TAILQ_NEXT(b, link);
		if (upstream_busy(b->up) > 0) {
			b->last_used_ms = now;
			continue;
		}
		if (now - b->last_used_ms >= (uint64_t)BRIDGE_IDLE_SECS * 1000) {
			log_info("closing the idle association with %s", upstream_label(b->up));
			bridge_free(bp, b);
			continue;
		}
		if (oldest == NULL || b->last_used_ms < oldest->last_used_ms)
			oldest = b;
	}
	if (force_one && bp->nbridges >= BRIDGE_MAX && oldest != NULL)
		bridge_free(bp, oldest);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	reap_idle(arg, 0);
}

static struct bridge *bridge_new(struct bridge_pool *bp, const char *key, const char *addr,
                                 const struct sockaddr *sa, socklen_t salen,
                                 const struct wire_cert *cert,
                                 const struct wire_endpoint *extra, unsigned nextra,
                                 int primary_tcp)
{
	struct upstream_config cfg;
	struct bridge *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->bp = bp;
	snprintf(b->key, sizeof(b->key), "%s", key);
	snprintf(b->addr, sizeof(b->addr), "%s", addr);
	memset(&cfg, 0, sizeof(cfg));
	bp->next_id++;
	if (log_safe_addresses())
		snprintf(cfg.label, sizeof(cfg.label), "bridge #%u", bp->next_id);
	else
		snprintf(cfg.label, sizeof(cfg.label), "bridge %s://%s",
		         primary_tcp ? "tcp" : "udp", addr);
	cfg.eps[0].tcp = primary_tcp;
	memcpy(&cfg.eps[0].addr, sa, salen);
	cfg.eps[0].len = salen;
	cfg.neps = 1;
	for (unsigned i = 0; i < nextra && cfg.neps < WIRE_MAX_PATHS; i++)
		cfg.eps[cfg.neps++] = extra[i];
	cfg.cert = *cert;
	cfg.tun = bp->cfg.tun;
	if (sa->sa_family == AF_INET && bp->cfg.has_bind_v4) {
		cfg.bind = bp->cfg.bind_v4;
		cfg.bindlen = sizeof(struct sockaddr_in);
	} else if (sa->sa_family == AF_INET6 && bp->cfg.has_bind_v6) {
		cfg.bind = bp->cfg.bind_v6;
		cfg.bindlen = sizeof(struct sockaddr_in6);
	}
	cfg.open_timeout = bp->cfg.open_timeout;
	cfg.proxy = bp->cfg.proxy;
	cfg.persistent = 0;
	cfg.status = bridge_status;
	cfg.path_event = bridge_path_event;
	cfg.arg = b;
	b->up = upstream_new(bp->base, &cfg);
	if (b->up == NULL) {
		free(b);
		return NULL;
	}
	log_info("new %s", cfg.label);
	return b;
}

struct upstream *bridge_pool_get(struct bridge_pool *bp, const struct sockaddr *sa,
                                 socklen_t salen, const char *args,
                                 const struct wire_cert *cert,
                                 const struct wire_endpoint *extra, unsigned nextra,
                                 int primary_tcp)
{
	struct bridge *b;
	char key[BRIDGE_KEY_MAX], addr[64];

	netaddr_format(sa, addr, sizeof(addr));
	if ((size_t)snprintf(key, sizeof(key), "%s|%s", addr, args) >= sizeof(key))
		return NULL;
	TAILQ_FOREACH(b, &bp->bridges, link)
		if (strcmp(b->key, key) == 0)
			goto found;
	if (bp->nbridges >= BRIDGE_MAX)
		reap_idle(bp, 1);
	if (bp->nbridges >= BRIDGE_MAX) {
		log_warn("already %d bridges in use; refusing another", BRIDGE_MAX);
		return NULL;
	}
	b = bridge_new(bp, key, addr, sa, salen, cert, extra, nextra, primary_tcp);
	if (b == NULL)
		return NULL;
	TAILQ_INSERT_TAIL(&bp->bridges, b, link);
	bp->nbridges++;
found:
	b->last_used_ms = clock_now_ms();
	return b->up;
}

unsigned bridge_pool_busy(const struct bridge_pool *bp)
{
	const struct bridge *b;
	unsigned n = 0;

	if (bp == NULL)
		return 0;
	TAILQ_FOREACH(b, &bp->bridges, link)
		n += upstream_busy(b->up);
	return n;
}

void bridge_pool_stop(struct bridge_pool *bp)
{
	struct bridge *b;

	if (bp == NULL)
		return;
	TAILQ_FOREACH(b, &bp->bridges, link)
		upstream_stop(b->up);
}

void bridge_pool_close(struct bridge_pool *bp)
{
	struct bridge *b;

	if (bp == NULL)
		return;
	TAILQ_FOREACH(b, &bp->bridges, link)
		upstream_close(b->up);
}

struct bridge_pool *bridge_pool_new(struct event_base *base, const struct bridge_pool_config *cfg)
{
	struct bridge_pool *bp = calloc(1, sizeof(*bp));
	struct timeval reap = { REAP_SECS, 0 };

	if (bp == NULL)
		return NULL;
	bp->base = base;
	bp->cfg = *cfg;
	TAILQ_INIT(&bp->bridges);
	bp->reap_ev = FAULT("bridge_reap_event_new") ? NULL
	                                             : event_new(base, -1, EV_PERSIST, reap_cb, bp);
	if (bp->reap_ev == NULL || event_add(bp->reap_ev, &reap) < 0) {
		bridge_pool_free(bp);
		return NULL;
	}
	return bp;
}

void bridge_pool_free(struct bridge_pool *bp)
{
	if (bp == NULL)
		return;
	while (!TAILQ_EMPTY(&bp->bridges))
		bridge_free(bp, TAILQ_FIRST(&bp->bridges));
	if (bp->reap_ev != NULL)
		event_free(bp->reap_ev);
	free(bp);
}
