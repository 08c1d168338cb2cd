/*
 * The combiner's client side.  Tor connects to our SOCKS5 port for an
 * alias with the Bridge line's arguments; for hops h0 (nearest tor) ..
 * hN-1 (outermost) we make one SOCKS5 connection through each child:
 *
 *   tor -> [us] -SOCKS(h0 args, dest L1)-> h0 -> L1 [us] -SOCKS(h1 args,
 *   dest L2)-> h1 -> ... -> L(N-1) [us] -SOCKS(hN-1 args, dest bridge)-> hN-1 -> bridge
 *
 * Each Li is a one-shot loopback listener made for this connection only,
 * so every connection a child makes to us is known for certain; nothing is
 * guessed from arrival order.  Tor gets its SOCKS reply when h0 reports
 * success (h0 has then reached L1, and the rest of the chain follows the
 * bytes h0 sends).
 */
#include "cli/chain_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "front/front.h"
#include "util/log.h"
#include "util/netaddr.h"

#define LISTENER_TIMEOUT_SECS 60

static struct log_ratelimit client_rl = LOG_RATELIMIT_INIT(10.0, 5);

/* What the rest of one connection needs: every hop's credentials, the bridge. */
struct plan {
	struct alias_rt *ar;
	struct sockaddr_storage bridge;
	uint8_t user[CHAIN_MAX_HOPS][255], pass[CHAIN_MAX_HOPS][255];
	size_t ulen[CHAIN_MAX_HOPS], plen[CHAIN_MAX_HOPS];
	unsigned refs;
};

struct shim;

/* One step: our connection up (tor's or a shim's) and the SOCKS one down. */
struct link {
	struct plan *plan;
	unsigned hop;
	struct front_conn *fc;          /* hop 0: tor's pending SOCKS request */
	struct bufferevent *up;
	struct shim *next;              /* the listener hop+1 will reach */
};

/* A one-shot listener for one connection of one hop. */
struct shim {
	struct plan *plan;
	unsigned hop;                   /* the hop whose SOCKS we then use */
	int fd;
	struct event *ev;
	struct link *owner;             /* the link that waits for it, if any */
};

static void plan_unref(struct plan *p)
{
	if (p != NULL && --p->refs == 0)
		free(p);
}

static void link_start(struct plan *plan, unsigned hop, struct bufferevent *up,
                       struct front_conn *fc);

static void shim_free(struct shim *s)
{
	if (s->owner != NULL)
		s->owner->next = NULL;
	if (s->ev != NULL)
		event_free(s->ev);
	if (s->fd >= 0)
		close(s->fd);
	plan_unref(s->plan);
	free(s);
}

static void shim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct shim *s = arg;
	struct plan *plan = s->plan;
	struct bufferevent *bev;
	unsigned hop = s->hop;
	int c;

	if (what & EV_TIMEOUT) {
		log_ratelimited(&client_rl, LOG_LEVEL_WARN, "%s: hop %u (%s) never connected "
		                "onward within %d s", plan->ar->a->name, hop - 1,
		                plan->ar->a->hop[hop - 1], LISTENER_TIMEOUT_SECS);
		shim_free(s);
		return;
	}
	c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c < 0) {
		if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
			return;
		shim_free(s);
		return;
	}
	s->plan = NULL;         /* its reference is ours now */
	if (s->owner != NULL)
		s->owner->next = NULL;
	s->owner = NULL;
	shim_free(s);
	bev = bufferevent_socket_new(plan->ar->rt->base, c, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(c);
		plan_unref(plan);
		return;
	}
	link_start(plan, hop, bev, NULL);
	plan_unref(plan);
}

/* A listener on 127.0.0.1, port chosen by the kernel, for hop's traffic. */
static struct shim *shim_new(struct plan *plan, unsigned hop, struct sockaddr_storage *addr)
{
	struct shim *s = calloc(1, sizeof(*s));
	struct sockaddr_in sin;
	socklen_t len = sizeof(*addr);
	struct timeval t = { LISTENER_TIMEOUT_SECS, 0 };

	if (s == NULL)
		return NULL;
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(s->fd, 1) < 0 || getsockname(s->fd, (struct sockaddr *)addr, &len) < 0)
		goto fail;
	s->ev = event_new(plan->ar->rt->base, s->fd, EV_READ | EV_PERSIST, shim_cb, s);
	if (s->ev == NULL || event_add(s->ev, &t) < 0)
		goto fail;
	s->plan = plan;
	plan->refs++;
	s->hop = hop;
	return s;
fail:
	if (s->ev != NULL)
		event_free(s->ev);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
	return NULL;
}

static void link_free(struct link *l)
{
	if (l->next != NULL) {
		l->next->owner = NULL;
		shim_free(l->next);
	}
	plan_unref(l->plan);
	free(l);
}

static void link_done(void *arg, struct bufferevent *down, const char *why)
{
	struct link *l = arg;
	struct alias_rt *ar = l->plan->ar;

	if (down == NULL) {
		log_ratelimited(&client_rl, LOG_LEVEL_WARN, "%s: hop %u (%s) failed: %s",
		                ar->a->name, l->hop, ar->a->hop[l->hop], why);
		if (l->fc != NULL)
			front_conn_failed(l->fc, l->up, SOCKS5_GENERAL_FAILURE);
		else
			bufferevent_free(l->up);
		link_free(l);
		return;
	}
	/* The shim for the next hop stays until that hop connects (or times out). */
	if (l->next != NULL)
		l->next->owner = NULL;
	l->next = NULL;
	if (l->fc != NULL) {
		front_conn_succeeded(l->fc, l->up);
		relay_splice(l->up, down, 1, 0);
	} else {
		relay_splice(l->up, down, 0, 0);
	}
	link_free(l);
}

static void link_start(struct plan *plan, unsigned hop, struct bufferevent *up,
                       struct front_conn *fc)
{
	struct alias_rt *ar = plan->ar;
	struct hop_rt *h = &ar->hop[hop];
	struct link *l = calloc(1, sizeof(*l));
	struct sockaddr_storage dest;
	const char *why = "out of memory";

	if (l == NULL)
		goto fail;
	l->plan = plan;
	plan->refs++;
	l->hop = hop;
	l->fc = fc;
	l->up = up;
	if (!chain_hop_usable(h)) {
		why = "the child is not running (restarting)";
		goto fail_link;
	}
	if (hop + 1 < ar->a->nhops) {
		l->next = shim_new(plan, hop + 1, &dest);
		if (l->next == NULL) {
			why = "cannot listen on 127.0.0.1";
			goto fail_link;
		}
		l->next->owner = l;
	} else {
		dest = plan->bridge;
	}
	/* Reading waits for the splice: bytes stay queued in the kernel. */
	bufferevent_disable(up, EV_READ);
	if (socks_connect(ar->rt->base, (struct sockaddr *)&h->addr, h->addrlen,
	                  plan->user[hop], plan->ulen[hop], plan->pass[hop], plan->plen[hop],
	                  (struct sockaddr *)&dest, link_done, l) < 0) {
		why = "cannot connect to the child";
		goto fail_link;
	}
	return;
fail_link:
	link_free(l);
fail:
	log_ratelimited(&client_rl, LOG_LEVEL_WARN, "%s: hop %u (%s): %s", ar->a->name, hop,
	                ar->a->hop[hop], why);
	if (fc != NULL)
		front_conn_failed(fc, up, SOCKS5_GENERAL_FAILURE);
	else
		bufferevent_free(up);
}

static void refuse(struct alias_rt *ar, struct front_conn *fc, uint8_t code, const char *why)
{
	log_ratelimited(&client_rl, LOG_LEVEL_WARN, "%s: refusing a connection from tor: %s",
	                ar->a->name, why);
	front_conn_failed(fc, front_conn_bev(fc), code);
}

static void client_request(struct front_conn *fc, const struct socks_request *req, void *arg)
{
	struct alias_rt *ar = arg;
	uint8_t args[SOCKS_USER_MAX + SOCKS_PASS_MAX + 1];
	struct pt_kvlist kv, per[CHAIN_MAX_HOPS];
	struct plan *plan;
	const char *err;
	int alen;

	if (ar->rt->stopping) {
		front_conn_failed(fc, front_conn_bev(fc), SOCKS5_GENERAL_FAILURE);
		return;
	}
	plan = calloc(1, sizeof(*plan));
	if (plan == NULL) {
		front_conn_failed(fc, front_conn_bev(fc), SOCKS5_GENERAL_FAILURE);
		return;
	}
	plan->ar = ar;
	plan->refs = 1;
	if (req->dest.atyp == SOCKS_ATYP_IPV4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&plan->bridge;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, req->dest.ipv4, 4);
		sin->sin_port = htons(req->dest.port);
	} else if (req->dest.atyp == SOCKS_ATYP_IPV6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&plan->bridge;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, req->dest.ipv6, 16);
		sin6->sin6_port = htons(req->dest.port);
	} else {
		refuse(ar, fc, SOCKS5_ATYP_NOT_SUPPORTED, "the bridge address must be an IP address");
		goto out;
	}
	kv.n = 0;
	if (req->has_auth) {
		alen = pt_args_join(req->user, req->user_len, req->pass, req->pass_len, args,
		                    sizeof(args));
		if (alen < 0 || (alen > 0 && pt_args_parse(args, (size_t)alen, &kv, &err) < 0)) {
			char why[128];

			snprintf(why, sizeof(why), "malformed bridge arguments: %s",
			         alen < 0 ? "too long" : err);
			refuse(ar, fc, SOCKS5_GENERAL_FAILURE, why);
			goto out;
		}
	}
	if (chain_args_split(&kv, ar->a->hop, ar->a->nhops, per, &err) < 0) {
		refuse(ar, fc, SOCKS5_GENERAL_FAILURE, err);
		goto out;
	}
	for (unsigned h = 0; h < ar->a->nhops; h++)
		if (chain_args_socks(&per[h], plan->user[h], &plan->ulen[h], plan->pass[h],
		                     &plan->plen[h]) < 0) {
			refuse(ar, fc, SOCKS5_GENERAL_FAILURE, "one hop's arguments are longer than "
			       "SOCKS5 can carry (510 bytes)");
			goto out;
		}
	link_start(plan, 0, front_conn_bev(fc), fc);
out:
	plan_unref(plan);
}

static unsigned client_busy(void *arg)
{
	return relay_active();
}

int chain_client_alias_start(struct alias_rt *ar, char *err, size_t errlen)
{
	struct front_config fcfg;
	struct sockaddr_storage ss, bound;
	socklen_t sslen, blen = sizeof(bound);
	char abuf[64];

	memset(&fcfg, 0, sizeof(fcfg));
	fcfg.max_conns = 1024;
	fcfg.handshake_timeout = 30;
	fcfg.busy = client_busy;
	(void)netaddr_from_numeric("127.0.0.1", 0, &ss, &sslen);
	ar->front = front_new(ar->rt->base, (struct sockaddr *)&ss, sslen, &fcfg, client_request, ar);
	if (ar->front == NULL || front_local_addr(ar->front, &bound, &blen) < 0) {
		snprintf(err, errlen, "cannot listen for SOCKS on 127.0.0.1");
		return -1;
	}
	chain_line("CMETHOD %s socks5 %s", ar->a->name,
	           netaddr_format((struct sockaddr *)&bound, abuf, sizeof(abuf)));
	log_notice("%s: SOCKS5 on %s, through %u hops", ar->a->name, abuf, ar->a->nhops);
	return 0;
}

void chain_client_alias_stop(struct alias_rt *ar, int free_it)
{
	if (ar->front == NULL)
		return;
	/* Connections in negotiation still point at the front: free it only
	 * once the loop has stopped. */
	if (!free_it) {
		front_stop(ar->front);
		return;
	}
	front_free(ar->front);
	ar->front = NULL;
}
