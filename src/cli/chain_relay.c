/*
 * Byte relaying for the combiner, and the SOCKS5 client it uses to ask a
 * child transport for a connection (pt-spec: the per-hop arguments ride in
 * the username and password).
 *
 * A spliced pair lives until one side ends; the other side then gets what
 * is still queued (bounded in time) and is closed, so an end travels
 * along the chain hop by hop as each child sees its connection close.
 */
#include "cli/chain_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "util/bytes.h"
#include "util/fdbudget.h"
#include "util/log.h"

#define RELAY_HIGH_WATER (256 * 1024)
#define RELAY_FLUSH_SECS 10
#define SOCKS_TIMEOUT_SECS 60

static unsigned active_pairs;

struct pair {
	struct bufferevent *b[2];
	int budget[2];          /* the side's descriptor counts in the fd budget */
	int closing;
};

static void bev_close(struct pair *p, int i)
{
	if (p->b[i] == NULL)
		return;
	bufferevent_free(p->b[i]);
	p->b[i] = NULL;
	if (p->budget[i])
		fd_budget_release(1);
}

static void pair_free(struct pair *p)
{
	bev_close(p, 0);
	bev_close(p, 1);
	active_pairs--;
	free(p);
}

static int side_of(struct pair *p, struct bufferevent *bev)
{
	return p->b[0] == bev ? 0 : 1;
}

static void relay_read(struct bufferevent *bev, void *arg)
{
	struct pair *p = arg;
	int i = side_of(p, bev), o = !i;
	struct evbuffer *out;

	if (p->b[o] == NULL)
		return;
	out = bufferevent_get_output(p->b[o]);
	evbuffer_add_buffer(out, bufferevent_get_input(bev));
	if (evbuffer_get_length(out) >= RELAY_HIGH_WATER)
		bufferevent_disable(bev, EV_READ);
}

static void relay_write(struct bufferevent *bev, void *arg)
{
	struct pair *p = arg;
	int i = side_of(p, bev), o = !i;

	if (p->closing) {
		pair_free(p);
		return;
	}
	/* Output drained below the low-water mark: read the other side again. */
	if (p->b[o] != NULL)
		bufferevent_enable(p->b[o], EV_READ);
}

static void relay_event(struct bufferevent *bev, short what, void *arg)
{
	struct pair *p = arg;
	int i = side_of(p, bev), o = !i;
	struct timeval t = { RELAY_FLUSH_SECS, 0 };

	if (p->closing || !(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))) {
		if (p->closing)
			pair_free(p);
		return;
	}
	/* Pass on what this side still had, then let the other side flush. */
	if (p->b[o] != NULL)
		evbuffer_add_buffer(bufferevent_get_output(p->b[o]), bufferevent_get_input(bev));
	bev_close(p, i);
	if (p->b[o] == NULL || evbuffer_get_length(bufferevent_get_output(p->b[o])) == 0) {
		pair_free(p);
		return;
	}
	p->closing = 1;
	bufferevent_disable(p->b[o], EV_READ);
	bufferevent_setwatermark(p->b[o], EV_WRITE, 0, 0);
	bufferevent_set_timeouts(p->b[o], NULL, &t);
	bufferevent_enable(p->b[o], EV_WRITE);
}

void relay_splice(struct bufferevent *a, struct bufferevent *b, int a_budget, int b_budget)
{
	struct pair *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		bufferevent_free(a);
		bufferevent_free(b);
		if (a_budget)
			fd_budget_release(1);
		if (b_budget)
			fd_budget_release(1);
		return;
	}
	active_pairs++;
	p->b[0] = a;
	p->b[1] = b;
	p->budget[0] = a_budget;
	p->budget[1] = b_budget;
	for (int i = 0; i < 2; i++) {
		bufferevent_setcb(p->b[i], relay_read, relay_write, relay_event, p);
		bufferevent_setwatermark(p->b[i], EV_WRITE, RELAY_HIGH_WATER / 2, 0);
		bufferevent_set_timeouts(p->b[i], NULL, NULL);
		bufferevent_enable(p->b[i], EV_READ | EV_WRITE);
	}
	/* Bytes that arrived before the splice. */
	for (int i = 0; i < 2; i++)
		if (p->b[i] != NULL && evbuffer_get_length(bufferevent_get_input(p->b[i])) > 0)
			relay_read(p->b[i], p);
}

unsigned relay_active(void)
{
	return active_pairs;
}

/* ---------- SOCKS5 client ---------- */

enum { S_GREETING, S_AUTH, S_CONNECT, };

struct socks_client {
	struct bufferevent *bev;
	int stage;
	uint8_t user[255], pass[255];
	size_t ulen, plen;
	struct sockaddr_storage dest;
	socks_done_fn done;
	void *arg;
};

static void socks_finish(struct socks_client *sc, const char *why)
{
	struct bufferevent *bev = sc->bev;
	socks_done_fn done = sc->done;
	void *arg = sc->arg;

	free(sc);
	if (why != NULL) {
		bufferevent_free(bev);
		done(arg, NULL, why);
		return;
	}
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_set_timeouts(bev, NULL, NULL);
	done(arg, bev, NULL);
}

static void socks_send_connect(struct socks_client *sc)
{
	uint8_t req[4 + 16 + 2];
	size_t n = 4;

	req[0] = 5;
	req[1] = 1;
	req[2] = 0;
	if (sc->dest.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&sc->dest;

		req[3] = 1;
		memcpy(req + 4, &sin->sin_addr, 4);
		memcpy(req + 8, &sin->sin_port, 2);
		n = 10;
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&sc->dest;

		req[3] = 4;
		memcpy(req + 4, &sin6->sin6_addr, 16);
		memcpy(req + 20, &sin6->sin6_port, 2);
		n = 22;
	}
	bufferevent_write(sc->bev, req, n);
	sc->stage = S_CONNECT;
}

static const char *socks_rep_text(uint8_t rep)
{
	static const char *const t[] = { "succeeded", "general failure", "not allowed",
		"network unreachable", "host unreachable", "connection refused", "TTL expired",
		"command not supported", "address type not supported" };

	return rep < sizeof(t) / sizeof(t[0]) ? t[rep] : "unknown reply";
}

static void socks_read(struct bufferevent *bev, void *arg)
{
	struct socks_client *sc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t *p;
	size_t need;

	for (;;) {
		size_t n = evbuffer_get_length(in);

		switch (sc->stage) {
		case S_GREETING: {
			uint8_t method;

			if (n < 2)
				return;
			p = evbuffer_pullup(in, 2);
			method = p[1];
			if (p[0] != 5 || (method != 0 && method != 2) || (method == 2 && sc->ulen == 0)) {
				socks_finish(sc, "the child's SOCKS server refused our methods");
				return;
			}
			evbuffer_drain(in, 2);
			if (method == 0 && sc->ulen > 0) {
				/* It did not ask for the arguments: they would be lost. */
				socks_finish(sc, "the child's SOCKS server does not take arguments");
				return;
			}
			if (sc->ulen > 0) {
				uint8_t a[1 + 1 + 255 + 1 + 255];
				size_t o = 0;

				a[o++] = 1;
				a[o++] = (uint8_t)sc->ulen;
				memcpy(a + o, sc->user, sc->ulen);
				o += sc->ulen;
				a[o++] = (uint8_t)sc->plen;
				memcpy(a + o, sc->pass, sc->plen);
				o += sc->plen;
				bufferevent_write(bev, a, o);
				sc->stage = S_AUTH;
			} else {
				socks_send_connect(sc);
			}
			continue;
		}
		case S_AUTH:
			if (n < 2)
				return;
			p = evbuffer_pullup(in, 2);
			if (p[1] != 0) {
				socks_finish(sc, "the child refused the bridge arguments");
				return;
			}
			evbuffer_drain(in, 2);
			socks_send_connect(sc);
			continue;
		default:
			if (n < 5)
				return;
			p = evbuffer_pullup(in, 5);
			if (p[0] != 5 || p[1] != 0) {
				char why[96];

				snprintf(why, sizeof(why), "the child's SOCKS reply: %s",
				         p[0] != 5 ? "not SOCKS5" : socks_rep_text(p[1]));
				socks_finish(sc, why);
				return;
			}
			need = p[3] == 1 ? 10 : p[3] == 4 ? 22 : p[3] == 3 ? 7 + (size_t)p[4] : 0;
			if (need == 0) {
				socks_finish(sc, "the child's SOCKS reply has a bad address type");
				return;
			}
			if (n < need)
				return;
			evbuffer_drain(in, need);
			socks_finish(sc, NULL);
			return;
		}
	}
}

static void socks_event(struct bufferevent *bev, short what, void *arg)
{
	struct socks_client *sc = arg;

	if (what & BEV_EVENT_CONNECTED) {
		uint8_t g[3] = { 5, 1, sc->ulen > 0 ? 2 : 0 };

		bufferevent_write(bev, g, 3);
		return;
	}
	socks_finish(sc, what & BEV_EVENT_TIMEOUT ? "the child's SOCKS server timed out"
	             : what & BEV_EVENT_EOF ? "the child closed the connection (its bridge "
	                                      "connection failed)"
	             : "cannot reach the child's SOCKS port");
}

int socks_connect(struct event_base *base, const struct sockaddr *proxy, socklen_t plen,
                  const uint8_t *user, size_t ulen, const uint8_t *pass, size_t plen2,
                  const struct sockaddr *dest, socks_done_fn done, void *arg)
{
	struct socks_client *sc = calloc(1, sizeof(*sc));
	struct timeval t = { SOCKS_TIMEOUT_SECS, 0 };

	if (sc == NULL)
		return -1;
	sc->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (sc->bev == NULL) {
		free(sc);
		return -1;
	}
	memcpy(sc->user, user, ulen);
	sc->ulen = ulen;
	memcpy(sc->pass, pass, plen2);
	sc->plen = plen2;
	memcpy(&sc->dest, dest, dest->sa_family == AF_INET ? sizeof(struct sockaddr_in)
	                                                   : sizeof(struct sockaddr_in6));
	sc->done = done;
	sc->arg = arg;
	bufferevent_setcb(sc->bev, socks_read, NULL, socks_event, sc);
	bufferevent_set_timeouts(sc->bev, &t, &t);
	bufferevent_enable(sc->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(sc->bev, proxy, (int)plen) < 0) {
		bufferevent_free(sc->bev);
		free(sc);
		return -1;
	}
	return 0;
}
