/*
 * Datagram mode: a UDP relay that behaves like a NAT in front of the
 * upstream.  Each client address gets a flow with its own upstream socket
 * (its own source port), so the upstream sees one address per client.
 * Flows are bounded (--max-flows) and expire after --flow-idle seconds
 * without a datagram either way, as NAT bindings do.  Every datagram goes
 * through the engine; the engine calls udp_emit() when a copy is due.
 */
#include "lab/impair/impair_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <event2/event.h>

#include "util/hmap.h"
#include "util/log.h"
#include "util/netaddr.h"

#define UDP_BUDGET 256                 /* datagrams read per wakeup and socket */
#define UDP_LISTEN_BUF (4 << 20)
#define UDP_FLOW_BUF (1 << 20)
#define UDP_MAX_DGRAM 65535

struct udp_flow {
	struct impair_udp *u;
	uint32_t slot, gen;
	int in_use;
	long long id;                  /* shown by the API, never reused */
	struct sockaddr_storage client;
	socklen_t clen;
	uint8_t key[HMAP_KEY_MAX];
	size_t keylen;
	int fd;                        /* upstream socket, connected */
	struct event *ev;
	uint16_t up_port;
	uint64_t last_us;
	uint64_t c2s, s2c;
	unsigned rebinds;
};

struct impair_udp {
	struct event_base *base;
	struct impair_engine *e;
	struct impair_udp_config cfg;
	int fd;
	struct event *ev;
	struct event *sweep;
	struct udp_flow *flows;        /* cfg.max_flows slots */
	uint32_t *free_slots;
	unsigned nfree;
	struct hmap *by_addr;
	long long next_id;
	uint8_t buf[UDP_MAX_DGRAM];
};

static struct log_ratelimit flows_rl = LOG_RATELIMIT_INIT(10.0, 3);
static struct log_ratelimit sock_rl = LOG_RATELIMIT_INIT(10.0, 3);

/* family, port and address: the same client always gives the same key */
static size_t addr_key(const struct sockaddr_storage *ss, uint8_t *key)
{
	memset(key, 0, HMAP_KEY_MAX);
	memcpy(key, &ss->ss_family, sizeof(ss->ss_family));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		memcpy(key + 2, &s4->sin_port, 2);
		memcpy(key + 4, &s4->sin_addr, 4);
		return 8;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		memcpy(key + 2, &s6->sin6_port, 2);
		memcpy(key + 4, &s6->sin6_addr, 16);
		memcpy(key + 20, &s6->sin6_scope_id, 4);
		return 24;
	}
	return 0;
}

static void set_bufs(int fd, int bytes)
{
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

static uint16_t local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

static void upstream_read_cb(evutil_socket_t fd, short what, void *arg);

/* A new socket connected to the upstream, with its read event. 0 or -1. */
static int flow_socket(struct udp_flow *f, int *fd_out, struct event **ev_out)
{
	struct impair_udp *u = f->u;
	int fd = socket(u->cfg.upstream.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct event *ev;

	if (fd < 0)
		return -1;
	set_bufs(fd, UDP_FLOW_BUF);
	if (connect(fd, (struct sockaddr *)&u->cfg.upstream, u->cfg.upstreamlen) < 0)
		goto fail;
	ev = event_new(u->base, fd, EV_READ | EV_PERSIST, upstream_read_cb, f);
	if (ev == NULL || event_add(ev, NULL) < 0) {
		event_free(ev);
		goto fail;
	}
	*fd_out = fd;
	*ev_out = ev;
	return 0;
fail:
	close(fd);
	return -1;
}

static void flow_free(struct udp_flow *f)
{
	struct impair_udp *u = f->u;

	hmap_del(u->by_addr, f->key, f->keylen);
	event_free(f->ev);
	close(f->fd);
	f->ev = NULL;
	f->fd = -1;
	f->in_use = 0;
	f->gen++;                       /* copies still queued for it are dropped */
	u->free_slots[u->nfree++] = f->slot;
}

static struct udp_flow *flow_new(struct impair_udp *u, const struct sockaddr_storage *from,
                                 socklen_t fromlen, const uint8_t *key, size_t keylen)
{
	struct udp_flow *f;

	if (u->nfree == 0) {
		log_ratelimited(&flows_rl, LOG_LEVEL_WARN,
		                "impair: %u flows open (--max-flows), datagram from a new client dropped",
		                u->cfg.max_flows);
		return NULL;
	}
	f = &u->flows[u->free_slots[u->nfree - 1]];
	if (flow_socket(f, &f->fd, &f->ev) < 0) {
		log_ratelimited(&sock_rl, LOG_LEVEL_WARN, "impair: upstream socket: %s",
		                strerror(errno));
		return NULL;
	}
	if (hmap_put(u->by_addr, key, keylen, f) < 0) {
		event_free(f->ev);
		close(f->fd);
		f->ev = NULL;
		f->fd = -1;
		return NULL;
	}
	u->nfree--;
	f->in_use = 1;
	f->id = u->next_id++;
	memcpy(&f->client, from, fromlen);
	f->clen = fromlen;
	memcpy(f->key, key, keylen);
	f->keylen = keylen;
	f->up_port = local_port(f->fd);
	f->c2s = f->s2c = 0;
	f->rebinds = 0;
	f->last_us = impair_now_us();
	log_info("impair: flow %lld opened, upstream source port %u", f->id, f->up_port);
	return f;
}

static void listen_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct impair_udp *u = arg;

	for (int i = 0; i < UDP_BUDGET; i++) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		uint8_t key[HMAP_KEY_MAX];
		size_t keylen;
		struct udp_flow *f;
		ssize_t n = recvfrom(fd, u->buf, sizeof(u->buf), 0, (struct sockaddr *)&from,
		                     &fromlen);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			continue;       /* e.g. an ICMP error for an earlier send */
		}
		keylen = addr_key(&from, key);
		if (keylen == 0)
			continue;
		f = hmap_get(u->by_addr, key, keylen);
		if (f == NULL)
			f = flow_new(u, &from, fromlen, key, keylen);
		if (f == NULL) {
			struct impair_counters *c = &impair_engine_shaper(u->e, IMPAIR_C2S)->c;

			c->seen++;
			c->bytes_seen += (uint64_t)n;
			c->dropped++;
			c->dropped_other++;
			continue;
		}
		f->last_us = impair_now_us();
		f->c2s++;
		impair_engine_submit(u->e, IMPAIR_C2S, f->slot, f->gen, (uint64_t)f->id, u->buf,
		                     (size_t)n);
	}
}

static void upstream_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct udp_flow *f = arg;
	struct impair_udp *u = f->u;

	for (int i = 0; i < UDP_BUDGET; i++) {
		ssize_t n = recv(fd, u->buf, sizeof(u->buf), 0);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			continue;       /* ECONNREFUSED: the upstream is not there (yet) */
		}
		f->last_us = impair_now_us();
		f->s2c++;
		impair_engine_submit(u->e, IMPAIR_S2C, f->slot, f->gen, (uint64_t)f->id, u->buf,
		                     (size_t)n);
	}
}

static int udp_emit(void *ctx, int dir, uint32_t sink, uint32_t gen, const uint8_t *p, size_t n)
{
	struct impair_udp *u = ctx;
	struct udp_flow *f;
	ssize_t r;

	if (sink >= u->cfg.max_flows)
		return -1;
	f = &u->flows[sink];
	if (!f->in_use || f->gen != gen)
		return -1;
	if (dir == IMPAIR_C2S)
		r = send(f->fd, p, n, 0);
	else
		r = sendto(u->fd, p, n, 0, (struct sockaddr *)&f->client, f->clen);
	return r == (ssize_t)n ? 0 : -1;
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct impair_udp *u = arg;
	uint64_t now = impair_now_us();
	uint64_t idle = (uint64_t)u->cfg.flow_idle_s * 1000000u;

	for (unsigned i = 0; i < u->cfg.max_flows; i++) {
		struct udp_flow *f = &u->flows[i];

		if (f->in_use && now - f->last_us > idle) {
			log_info("impair: flow %lld expired after %u s idle", f->id, u->cfg.flow_idle_s);
			flow_free(f);
		}
	}
}

struct impair_udp *impair_udp_new(struct event_base *base, struct impair_engine *e,
                                  const struct impair_udp_config *cfg)
{
	struct impair_udp *u = calloc(1, sizeof(*u));
	struct timeval sec = { 1, 0 };
	char buf[128];

	if (u == NULL)
		return NULL;
	u->base = base;
	u->e = e;
	u->cfg = *cfg;
	u->fd = -1;
	u->next_id = 1;
	u->flows = calloc(cfg->max_flows, sizeof(*u->flows));
	u->free_slots = calloc(cfg->max_flows, sizeof(*u->free_slots));
	u->by_addr = hmap_new();
	if (u->flows == NULL || u->free_slots == NULL || u->by_addr == NULL)
		goto fail;
	for (unsigned i = 0; i < cfg->max_flows; i++) {
		u->flows[i].u = u;
		u->flows[i].slot = i;
		u->flows[i].fd = -1;
		/* hand out low slots first */
		u->free_slots[i] = cfg->max_flows - 1 - i;
	}
	u->nfree = cfg->max_flows;
	u->fd = socket(cfg->listen.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd < 0)
		goto fail;
	set_bufs(u->fd, UDP_LISTEN_BUF);
	if (bind(u->fd, (struct sockaddr *)&cfg->listen, cfg->listenlen) < 0) {
		log_err("impair: cannot listen on udp://%s: %s",
		        netaddr_format((struct sockaddr *)&cfg->listen, buf, sizeof(buf)),
		        strerror(errno));
		goto fail;
	}
	u->ev = event_new(base, u->fd, EV_READ | EV_PERSIST, listen_read_cb, u);
	u->sweep = event_new(base, -1, EV_PERSIST, sweep_cb, u);
	if (u->ev == NULL || u->sweep == NULL || event_add(u->ev, NULL) < 0 ||
	    event_add(u->sweep, &sec) < 0)
		goto fail;
	impair_engine_set_emit(e, udp_emit, u);
	return u;
fail:
	impair_udp_free(u);
	return NULL;
}

void impair_udp_free(struct impair_udp *u)
{
	if (u == NULL)
		return;
	if (u->flows != NULL && u->free_slots != NULL && u->by_addr != NULL) {
		for (unsigned i = 0; i < u->cfg.max_flows; i++)
			if (u->flows[i].in_use)
				flow_free(&u->flows[i]);
	}
	if (u->ev != NULL)
		event_free(u->ev);
	if (u->sweep != NULL)
		event_free(u->sweep);
	if (u->fd >= 0)
		close(u->fd);
	hmap_free(u->by_addr);
	free(u->flows);
	free(u->free_slots);
	free(u);
}

void impair_udp_local(const struct impair_udp *u, struct sockaddr_storage *ss, socklen_t *len)
{
	*len = sizeof(*ss);
	if (getsockname(u->fd, (struct sockaddr *)ss, len) < 0) {
		*ss = u->cfg.listen;
		*len = u->cfg.listenlen;
	}
}

json_t *impair_udp_flows(const struct impair_udp *u)
{
	json_t *arr = json_array();
	uint64_t now = impair_now_us();
	char buf[128];

	if (arr == NULL)
		return NULL;
	for (unsigned i = 0; i < u->cfg.max_flows; i++) {
		const struct udp_flow *f = &u->flows[i];

		if (!f->in_use)
			continue;
		netaddr_format((const struct sockaddr *)&f->client, buf, sizeof(buf));
		if (json_array_append_new(arr, json_pack("{s:I, s:s, s:i, s:I, s:I, s:I, s:i}",
		        "id", (json_int_t)f->id, "client", buf, "upstream_port", (int)f->up_port,
		        "idle_ms", (json_int_t)((now - f->last_us) / 1000u),
		        "c2s", (json_int_t)f->c2s, "s2c", (json_int_t)f->s2c,
		        "rebinds", (int)f->rebinds)) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static int flow_rebind(struct udp_flow *f, uint16_t *old_port)
{
	int fd;
	struct event *ev;

	/* The new socket exists before the old one closes, so its port differs. */
	if (flow_socket(f, &fd, &ev) < 0)
		return -1;
	*old_port = f->up_port;
	event_free(f->ev);
	close(f->fd);
	f->fd = fd;
	f->ev = ev;
	f->up_port = local_port(fd);
	f->rebinds++;
	log_info("impair: flow %lld rebound: upstream source port %u -> %u", f->id, *old_port,
	         f->up_port);
	return 0;
}

json_t *impair_udp_rebind(struct impair_udp *u, long long id, char *err, size_t errlen)
{
	json_t *arr = json_array();
	int found = 0;

	if (arr == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (unsigned i = 0; i < u->cfg.max_flows; i++) {
		struct udp_flow *f = &u->flows[i];
		uint16_t old;

		if (!f->in_use || (id >= 0 && f->id != id))
			continue;
		found = 1;
		if (flow_rebind(f, &old) < 0) {
			snprintf(err, errlen, "flow %lld: new upstream socket: %s", f->id,
			         strerror(errno));
			json_decref(arr);
			return NULL;
		}
		json_array_append_new(arr, json_pack("{s:I, s:i, s:i}", "id", (json_int_t)f->id,
		                                     "old_port", (int)old, "new_port", (int)f->up_port));
	}
	if (id >= 0 && !found) {
		snprintf(err, errlen, "no flow %lld", id);
		json_decref(arr);
		return NULL;
	}
	return arr;
}
