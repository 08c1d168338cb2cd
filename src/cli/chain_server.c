/*
 * The combiner's bridge side.  For an alias with hops h0 (nearest tor) ..
 * hN-1 (outermost), hN-1 binds the public address; every child gets its
 * own Extended ORPort from us (SAFE_COOKIE with our cookie file), so each
 * connection it hands on comes with the USERADDR it saw:
 *
 *   client -> hN-1 -ExtOR(USERADDR=client)-> [us] -from 127.a.b.c:p-> hN-2
 *          -ExtOR(USERADDR=127.a.b.c:p)-> [us] -> ... -> h0
 *          -ExtOR(USERADDR=...)-> [us] -ExtOR(USERADDR=client, TRANSPORT=alias)-> tor
 *
 * We note each loopback source we connect from, and the USERADDR the next
 * child reports names it again: the real address follows every connection
 * exactly, however many arrive at once.  Tor's DENY closes our connection
 * to h0, h0 closes its client (us), and so on out to the client.  A child
 * that only knows the plain ORPort still works; its connections get the
 * oldest address waiting at that hop, and the log says it is approximate.
 */
#include "cli/chain_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "crypto/crypto.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/netaddr.h"

#define ADDRMAP_CAP 4096
#define HANDSHAKE_SECS 30

static struct log_ratelimit server_rl = LOG_RATELIMIT_INIT(10.0, 5);
static struct log_ratelimit approx_rl = LOG_RATELIMIT_INIT(60.0, 2);

enum sconn_stage {
	SC_CHILD_AUTH = 0,      /* Extended ORPort with the child */
	SC_CONNECTING,          /* to the next hop in, or to tor */
	SC_TOR_AUTH,            /* Extended ORPort with tor */
};

struct sconn {
	struct hop_rt *h;
	enum sconn_stage stage;
	int child_extor;                /* the child came in on our Extended ORPort */
	struct bufferevent *child, *out;
	struct extor_server srv;
	struct extor_client cli;
	char real[64];
	struct sockaddr_storage src;    /* our source towards the next hop in */
	int has_src;
};

static void sconn_free(struct sconn *c)
{
	if (c->has_src)
		chain_addrmap_remove(&c->h->ar->hop[c->h->idx - 1].map, (struct sockaddr *)&c->src);
	if (c->child != NULL)
		bufferevent_free(c->child);
	if (c->out != NULL)
		bufferevent_free(c->out);
	wc_wipe(&c->srv, sizeof(c->srv));
	wc_wipe(&c->cli, sizeof(c->cli));
	free(c);
}

/* ---------- closing after a last reply ---------- */

static void flush_close_cb(struct bufferevent *bev, void *arg)
{
	bufferevent_free(bev);
}

static void flush_close_event(struct bufferevent *bev, short what, void *arg)
{
	bufferevent_free(bev);
}

/* Send reply (may be NULL) to the child and close once it is out. */
static void close_child_with(struct sconn *c, uint16_t reply)
{
	struct bufferevent *bev = c->child;
	struct timeval t = { 5, 0 };
	uint8_t r[4];

	c->child = NULL;
	if (bev == NULL)
		return;
	if (!c->child_extor || reply == 0) {
		bufferevent_free(bev);
		return;
	}
	extor_command(reply, NULL, 0, r, sizeof(r));
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, flush_close_cb, flush_close_event, NULL);
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(bev, NULL, &t);
	bufferevent_write(bev, r, 4);
	bufferevent_enable(bev, EV_WRITE);
}

static void sconn_fail(struct sconn *c, uint16_t reply, const char *why)
{
	struct alias_rt *ar = c->h->ar;

	if (why != NULL)
		log_ratelimited(&server_rl, LOG_LEVEL_WARN, "%s: hop %u (%s): %s", ar->a->name,
		                c->h->idx, c->h->name, why);
	close_child_with(c, reply);
	sconn_free(c);
}

/* Both ends ready: tell the child OKAY (if it asked) and relay. */
static void sconn_splice(struct sconn *c)
{
	struct bufferevent *a = c->child, *b = c->out;

	if (c->child_extor) {
		uint8_t r[4];

		extor_command(EXTOR_REPLY_OKAY, NULL, 0, r, sizeof(r));
		bufferevent_write(a, r, 4);
	}
	c->child = c->out = NULL;
	c->has_src = 0;         /* the entry is the next child's to claim now */
	sconn_free(c);
	relay_splice(a, b, 0, 0);
}

/* ---------- towards tor ---------- */

static int read_tor_cookie(const char *path, uint8_t cookie[EXTOR_COOKIE_LEN])
{
	uint8_t buf[EXTOR_COOKIE_FILE_LEN + 1];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return -1;
	return extor_cookie_parse(buf, (size_t)n, cookie);
}

static void tor_read(struct bufferevent *bev, void *arg)
{
	struct sconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t out[EXTOR_OUT_MAX], *p;
	size_t n = evbuffer_get_length(in), used, outlen;
	int r;

	if (c->stage != SC_TOR_AUTH)
		return;
	if (n > 4096)
		n = 4096;
	p = evbuffer_pullup(in, (ev_ssize_t)n);
	r = extor_client_step(&c->cli, p, n, &used, out, &outlen);
	evbuffer_drain(in, used);
	if (outlen > 0)
		bufferevent_write(bev, out, outlen);
	if (r == EXTOR_NEED_MORE)
		return;
	if (r == EXTOR_DENIED) {
		log_notice("%s: tor denied a connection (client %s); closing it through the chain",
		           c->h->ar->a->name, c->real[0] != '\0' ? log_addr(c->real) : "unknown");
		sconn_fail(c, EXTOR_REPLY_DENY, NULL);
		return;
	}
	if (r == EXTOR_ERROR) {
		sconn_fail(c, EXTOR_REPLY_DENY, c->cli.error);
		return;
	}
	sconn_splice(c);
}

static void out_event(struct bufferevent *bev, short what, void *arg)
{
	struct sconn *c = arg;
	struct chain_rt *rt = c->h->ar->rt;

	if (!(what & BEV_EVENT_CONNECTED)) {
		sconn_fail(c, EXTOR_REPLY_DENY, c->h->idx == 0
		           ? "cannot reach tor's ORPort or Extended ORPort"
		           : "the next hop in closed or refused the connection");
		return;
	}
	if (c->h->idx > 0 || !rt->tor_extor) {
		sconn_splice(c);
		return;
	}
	{
		uint8_t cookie[EXTOR_COOKIE_LEN], nonce[EXTOR_NONCE_LEN];

		if (read_tor_cookie(rt->tor_cookie_file, cookie) < 0) {
			sconn_fail(c, EXTOR_REPLY_DENY, "cannot read tor's Extended ORPort cookie file");
			return;
		}
		if (wc_random(nonce, sizeof(nonce)) < 0 ||
		    extor_client_init(&c->cli, cookie, nonce, c->real, c->h->ar->a->name) < 0) {
			wc_wipe(cookie, sizeof(cookie));
			sconn_fail(c, EXTOR_REPLY_DENY, "cannot start the Extended ORPort handshake");
			return;
		}
		wc_wipe(cookie, sizeof(cookie));
	}
	c->stage = SC_TOR_AUTH;
	tor_read(bev, c);
}

/* Our source for the next connection in: 127.42.x.y, rotating, port by the kernel. */
static int bind_source(struct chain_rt *rt, int fd, struct sockaddr_storage *src)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(*src);
	int one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	for (int tries = 0; tries < 2; tries++) {
		uint16_t n;

		do
			n = ++rt->next_src;
		while ((n & 0xff) == 0 || (n & 0xff) == 0xff || n < 0x100);
		sin.sin_addr.s_addr = htonl(0x7f2a0000u | n);
		if (tries == 1)
			sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			break;
		if (tries == 1)
			return -1;
	}
	(void)len;
	return 0;
}

static void go_out(struct sconn *c)
{
	struct hop_rt *h = c->h;
	struct alias_rt *ar = h->ar;
	struct chain_rt *rt = ar->rt;
	struct sockaddr_storage dest;
	struct timeval t = { HANDSHAKE_SECS, 0 };
	socklen_t dlen;
	int fd = -1;

	bufferevent_disable(c->child, EV_READ);
	c->stage = SC_CONNECTING;
	if (h->idx == 0) {
		dest = rt->tor_addr;
		dlen = rt->tor_addrlen;
	} else {
		struct hop_rt *in = &ar->hop[h->idx - 1];
		socklen_t slen = sizeof(c->src);

		if (!chain_hop_usable(in)) {
			sconn_fail(c, EXTOR_REPLY_DENY, "the next hop in is not running (restarting)");
			return;
		}
		dest = in->addr;
		dlen = in->addrlen;
		fd = socket(dest.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 || (dest.ss_family == AF_INET && bind_source(rt, fd, &c->src) < 0)) {
			if (fd >= 0)
				close(fd);
			sconn_fail(c, EXTOR_REPLY_DENY, "cannot make a loopback socket");
			return;
		}
		/* With IP_BIND_ADDRESS_NO_PORT the port comes at connect(); so connect first. */
		if (connect(fd, (struct sockaddr *)&dest, dlen) < 0 && errno != EINPROGRESS) {
			close(fd);
			sconn_fail(c, EXTOR_REPLY_DENY, "cannot connect to the next hop in");
			return;
		}
		if (getsockname(fd, (struct sockaddr *)&c->src, &slen) < 0 ||
		    chain_addrmap_put(&in->map, (struct sockaddr *)&c->src, c->real[0] != '\0'
		                      ? c->real : "", clock_now_ms()) < 0) {
			close(fd);
			sconn_fail(c, EXTOR_REPLY_DENY, "too many connections in set-up at once");
			return;
		}
		c->has_src = 1;
	}
	c->out = bufferevent_socket_new(rt->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->out == NULL) {
		if (fd >= 0)
			close(fd);
		sconn_fail(c, EXTOR_REPLY_DENY, "out of memory");
		return;
	}
	bufferevent_setcb(c->out, tor_read, NULL, out_event, c);
	bufferevent_set_timeouts(c->out, &t, &t);
	bufferevent_enable(c->out, EV_READ | EV_WRITE);
	if (fd >= 0) {
		/* Already connecting: libevent reports the outcome as a write event. */
		if (bufferevent_socket_connect(c->out, NULL, 0) < 0) {
			sconn_fail(c, EXTOR_REPLY_DENY, "cannot connect to the next hop in");
			return;
		}
	} else if (bufferevent_socket_connect(c->out, (struct sockaddr *)&dest, (int)dlen) < 0) {
		sconn_fail(c, EXTOR_REPLY_DENY, "cannot connect to tor");
	}
}

/* The child's USERADDR (or none) -> the real client address. */
static int resolve_real(struct sconn *c, const char *useraddr)
{
	struct hop_rt *h = c->h;
	unsigned last = h->ar->a->nhops - 1;
	uint64_t now = clock_now_ms();

	if (h->idx == last) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (useraddr[0] != '\0' && pt_parse_addr(useraddr, 0, &ss, &len) < 0) {
			log_ratelimited(&server_rl, LOG_LEVEL_WARN, "%s: hop %u (%s) sent a USERADDR "
			                "that is not IP:PORT; tor gets none", h->ar->a->name, h->idx,
			                h->name);
			useraddr = "";
		}
		if (useraddr[0] == '\0')
			log_ratelimited(&approx_rl, LOG_LEVEL_WARN, "%s: hop %u (%s) gives no "
			                "client address (no Extended ORPort USERADDR): tor sees none",
			                h->ar->a->name, h->idx, h->name);
		snprintf(c->real, sizeof(c->real), "%s", useraddr);
		return 0;
	}
	if (c->child_extor && useraddr[0] != '\0') {
		if (chain_addrmap_take(&h->map, useraddr, c->real, sizeof(c->real), now) == 1)
			return 0;
		log_ratelimited(&server_rl, LOG_LEVEL_WARN, "%s: hop %u (%s) reported a connection "
		                "from %s, which is not one we made (or it waited over %d s); "
		                "refusing it", h->ar->a->name, h->idx, h->name,
		                log_addr(useraddr), CHAIN_ADDRMAP_TTL_MS / 1000);
		return -1;
	}
	if (chain_addrmap_take_oldest(&h->map, c->real, sizeof(c->real), now) != 1) {
		log_ratelimited(&server_rl, LOG_LEVEL_WARN, "%s: hop %u (%s): a connection nobody "
		                "is waiting for; refusing it", h->ar->a->name, h->idx, h->name);
		return -1;
	}
	log_ratelimited(&approx_rl, LOG_LEVEL_WARN, "%s: hop %u (%s) does not speak the Extended "
	                "ORPort: client addresses at this hop are approximate (oldest waiting)",
	                h->ar->a->name, h->idx, h->name);
	return 0;
}

static void child_read(struct bufferevent *bev, void *arg)
{
	struct sconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t out[EXTOR_OUT_MAX], *p;
	size_t n = evbuffer_get_length(in), used, outlen;
	int r;

	if (c->stage != SC_CHILD_AUTH)
		return;
	if (n > 4096)
		n = 4096;
	p = evbuffer_pullup(in, (ev_ssize_t)n);
	r = extor_server_step(&c->srv, p, n, &used, out, &outlen);
	evbuffer_drain(in, used);
	if (outlen > 0)
		bufferevent_write(bev, out, outlen);
	if (r == EXTOR_NEED_MORE)
		return;
	if (r == EXTOR_ERROR) {
		sconn_fail(c, 0, c->srv.error);
		return;
	}
	if (c->srv.transport[0] != '\0' && strcmp(c->srv.transport, c->h->name) != 0)
		log_ratelimited(&server_rl, LOG_LEVEL_INFO, "%s: hop %u says TRANSPORT %s",
		                c->h->ar->a->name, c->h->idx, c->srv.transport);
	if (resolve_real(c, c->srv.useraddr) < 0) {
		sconn_fail(c, EXTOR_REPLY_DENY, NULL);
		return;
	}
	go_out(c);
}

static void child_event(struct bufferevent *bev, short what, void *arg)
{
	struct sconn *c = arg;

	sconn_fail(c, 0, what & BEV_EVENT_TIMEOUT ? "the child's Extended ORPort handshake "
	           "timed out" : NULL);
}

static void accept_common(struct hop_rt *h, evutil_socket_t fd, int extor)
{
	struct sconn *c;
	struct timeval t = { HANDSHAKE_SECS, 0 };
	uint8_t nonce[EXTOR_NONCE_LEN], greet[2];

	if (h->ar->rt->stopping || (c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->h = h;
	c->child_extor = extor;
	c->child = bufferevent_socket_new(h->ar->rt->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->child == NULL) {
		close(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->child, child_read, NULL, child_event, c);
	bufferevent_set_timeouts(c->child, &t, NULL);
	bufferevent_enable(c->child, EV_READ | EV_WRITE);
	if (!extor) {
		if (resolve_real(c, "") < 0) {
			sconn_fail(c, 0, NULL);
			return;
		}
		go_out(c);
		return;
	}
	if (wc_random(nonce, sizeof(nonce)) < 0) {
		sconn_fail(c, 0, "no randomness");
		return;
	}
	extor_server_init(&c->srv, h->ar->rt->cookie, nonce, greet);
	bufferevent_write(c->child, greet, sizeof(greet));
}

static void extor_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                         int len, void *arg)
{
	accept_common(arg, fd, 1);
}

static void or_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int len, void *arg)
{
	accept_common(arg, fd, 0);
}

/* ---------- set-up ---------- */

static struct evconnlistener *loopback_listener(struct chain_rt *rt, evconnlistener_cb cb,
                                                void *arg, struct sockaddr_storage *bound)
{
	struct sockaddr_in sin;
	struct evconnlistener *l;
	socklen_t len = sizeof(*bound);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = evconnlistener_new_bind(rt->base, cb, arg, LEV_OPT_CLOSE_ON_FREE |
	                            LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE, 128,
	                            (struct sockaddr *)&sin, sizeof(sin));
	if (l == NULL || getsockname(evconnlistener_get_fd(l), (struct sockaddr *)bound, &len) < 0) {
		if (l != NULL)
			evconnlistener_free(l);
		return NULL;
	}
	return l;
}

int chain_server_prepare(struct chain_rt *rt, char *err, size_t errlen)
{
	uint8_t file[EXTOR_COOKIE_FILE_LEN];
	char tmp[PT_PATH_MAX + 80];
	int fd;

	if (rt->env.has_extorport) {
		rt->tor_extor = 1;
		rt->tor_addr = rt->env.extorport;
		rt->tor_addrlen = rt->env.extorport_len;
		snprintf(rt->tor_cookie_file, sizeof(rt->tor_cookie_file), "%s", rt->env.cookie_file);
	} else {
		rt->tor_addr = rt->env.orport;
		rt->tor_addrlen = rt->env.orport_len;
		log_warn("tor gave no Extended ORPort (ExtORPort in the torrc): tor will not learn "
		         "client addresses");
	}
	/* Our own cookie for the children, new at every start. */
	memcpy(file, "! Extended ORPort Auth Cookie !\x0a", 32);
	if (wc_random(rt->cookie, sizeof(rt->cookie)) < 0) {
		snprintf(err, errlen, "no randomness for the Extended ORPort cookie");
		return -1;
	}
	memcpy(file + 32, rt->cookie, EXTOR_COOKIE_LEN);
	snprintf(rt->cookie_path, sizeof(rt->cookie_path), "%s/%s", rt->env.state_dir,
	         CHAIN_COOKIE_FILE);
	snprintf(tmp, sizeof(tmp), "%s.tmp", rt->cookie_path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, file, sizeof(file)) != (ssize_t)sizeof(file) || close(fd) < 0 ||
	    rename(tmp, rt->cookie_path) < 0) {
		snprintf(err, errlen, "cannot write %s: %s", rt->cookie_path, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
		wc_wipe(file, sizeof(file));
		return -1;
	}
	wc_wipe(file, sizeof(file));
	return 0;
}

int chain_server_alias_prepare(struct alias_rt *ar, char *err, size_t errlen)
{
	struct chain_rt *rt = ar->rt;
	const char *v = getenv("TOR_PT_SERVER_BINDADDR");
	char opts[CHAIN_MAX_HOPS][PT_LINE_MAX];
	unsigned last = ar->a->nhops - 1;
	int r = 0;

	if (v != NULL)
		r = chain_bindaddr_find(v, ar->a->name, ar->public_addr, sizeof(ar->public_addr));
	if (r < 0) {
		snprintf(err, errlen, "malformed TOR_PT_SERVER_BINDADDR");
		return -1;
	}
	if (r == 0) {
		snprintf(ar->public_addr, sizeof(ar->public_addr), "0.0.0.0:0");
		log_warn("%s: no ServerTransportListenAddr; the outermost hop picks a port",
		         ar->a->name);
	}
	v = getenv("TOR_PT_SERVER_TRANSPORT_OPTIONS");
	if (v != NULL && chain_server_options_split(v, ar->a->name, ar->a->hop, ar->a->nhops,
	                                            opts, err, errlen) < 0)
		return -1;
	for (unsigned i = 0; i < ar->a->nhops; i++) {
		struct hop_rt *h = &ar->hop[i];

		if (v != NULL)
			memcpy(h->options, opts[i], sizeof(h->options));
		else
			h->options[0] = '\0';
		snprintf(h->bindaddr, sizeof(h->bindaddr), "%s-%s", h->name,
		         i == last ? ar->public_addr : "127.0.0.1:0");
		if (chain_addrmap_init(&h->map, ADDRMAP_CAP, CHAIN_ADDRMAP_TTL_MS) < 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		h->extor_lis = loopback_listener(rt, extor_accept, h, &h->extor_addr);
		h->or_lis = loopback_listener(rt, or_accept, h, &h->or_addr);
		if (h->extor_lis == NULL || h->or_lis == NULL) {
			snprintf(err, errlen, "cannot listen on 127.0.0.1 for hop %u", i);
			return -1;
		}
	}
	return 0;
}

/* Rewrite the file of bridge lines with every alias offered so far. */
static void write_bridgelines(struct chain_rt *rt)
{
	char path[PT_PATH_MAX + 64], tmp[PT_PATH_MAX + 80];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", rt->env.state_dir, CHAIN_BRIDGELINE_FILE);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		if (fd >= 0)
			close(fd);
		log_warn("cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	fprintf(f, "# sctpt chain: bridge lines for the torrc of this bridge's users.\n"
	        "# Replace <IP ADDRESS> with the bridge's public address and <FINGERPRINT>\n"
	        "# with its fingerprint (DataDirectory/fingerprint).  Arguments are\n"
	        "# namespaced by hop: obfs4.cert=... goes to obfs4 as cert=...\n\n");
	for (unsigned i = 0; i < rt->naliases; i++) {
		struct alias_rt *ar = &rt->alias[i];
		struct pt_kvlist per[CHAIN_MAX_HOPS], all;
		char words[PT_LINE_MAX];
		const char *e;
		int ok = ar->offered;

		for (unsigned h = 0; ok && h < ar->a->nhops; h++)
			ok = chain_smethod_args_parse(ar->hop[h].args, &per[h], &e) == 0;
		if (!ok || chain_args_combine(ar->a->hop, per, ar->a->nhops, &all, &e) < 0 ||
		    chain_args_format_bridge(&all, words, sizeof(words)) < 0)
			continue;
		fprintf(f, "Bridge %s <IP ADDRESS>:%u <FINGERPRINT>%s%s\n", ar->a->name,
		        netaddr_port((struct sockaddr *)&ar->hop[ar->a->nhops - 1].addr),
		        words[0] != '\0' ? " " : "", words);
	}
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		log_warn("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
}

void chain_server_alias_offer(struct alias_rt *ar)
{
	struct pt_kvlist per[CHAIN_MAX_HOPS], all;
	char args[PT_LINE_MAX], abuf[96];
	const struct hop_rt *outer = &ar->hop[ar->a->nhops - 1];
	const char *e = NULL;

	for (unsigned h = 0; h < ar->a->nhops; h++)
		if (chain_smethod_args_parse(ar->hop[h].args, &per[h], &e) < 0) {
			chain_line("SMETHOD-ERROR %s hop %u (%s) gave malformed ARGS: %s", ar->a->name,
			           h, ar->a->hop[h], e);
			return;
		}
	if (chain_args_combine(ar->a->hop, per, ar->a->nhops, &all, &e) < 0 ||
	    chain_args_format_smethod(&all, args, sizeof(args)) < 0) {
		chain_line("SMETHOD-ERROR %s the hops' arguments do not fit one bridge line: %s",
		           ar->a->name, e != NULL ? e : "too long");
		return;
	}
	netaddr_format((const struct sockaddr *)&outer->addr, abuf, sizeof(abuf));
	if (args[0] != '\0')
		chain_line("SMETHOD %s %s ARGS:%s", ar->a->name, abuf, args);
	else
		chain_line("SMETHOD %s %s", ar->a->name, abuf);
	ar->offered = 1;
	write_bridgelines(ar->rt);
	log_notice("%s: serving on %s through %u hops (bridge line in %s)", ar->a->name, abuf,
	           ar->a->nhops, CHAIN_BRIDGELINE_FILE);
}

void chain_server_alias_stop(struct alias_rt *ar)
{
	for (unsigned i = 0; i < ar->a->nhops; i++) {
		struct hop_rt *h = &ar->hop[i];

		if (h->extor_lis != NULL)
			evconnlistener_free(h->extor_lis);
		if (h->or_lis != NULL)
			evconnlistener_free(h->or_lis);
		h->extor_lis = h->or_lis = NULL;
	}
}
