/*
 * `sctpt client`: a SOCKS listener whose connections ride one long-lived
 * association to the server, one stream each.  The association is set up at
 * start and re-established with backoff whenever it dies; requests that
 * arrive while it is down wait up to --open-timeout for it.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "front/front.h"
#include "mux/mux.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "wire/wire.h"

#define RECONNECT_MIN_MS 250
#define RECONNECT_MAX_MS 5000
#define SHUTDOWN_GRACE_MS 3000

struct waiting {
	TAILQ_ENTRY(waiting) link;
	struct client *c;
	struct front_conn *fc;
	struct mux_dest dest;
	struct event *timer;
};

struct client {
	struct event_base *base;
	struct cli_tunnel_opts tun;
	struct front_config front_cfg;
	unsigned open_timeout;
	char server_url[300];
	struct sockaddr_storage server;
	socklen_t serverlen;
	struct sockaddr_storage socks;
	socklen_t sockslen;

	struct front *front;
	struct mux_session *m;
	struct event *reconnect_ev;
	unsigned backoff_ms;
	int was_up;
	TAILQ_HEAD(, waiting) waiting;
	struct event *shutdown_ev;
	int shutting_down;
	struct timeval shutdown_start;
	int streams_set;               /* --streams given explicitly */
	struct wire_cert cert;
	struct wire_link *link_pending;   /* handshake under way */
	struct wire_link *link_failed;    /* freed from the reconnect timer */
};

static void client_connect(struct client *c);

static void dest_from_socks(const struct socks_dest *sd, struct mux_dest *d)
{
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
		front_conn_succeeded(fc, bev);
		return;
	}
	log_info("connection failed at the server: %s", proto_err_str((uint8_t)err));
	front_conn_failed(fc, bev, socks_code(err));
}

static void open_stream(struct client *c, struct front_conn *fc, const struct mux_dest *d)
{
	struct bufferevent *bev = front_conn_bev(fc);

	if (mux_stream_open(c->m, d, bev, open_result, fc) == NULL) {
		log_warn("no free stream on the association; refusing a connection");
		front_conn_failed(fc, bev, SOCKS5_GENERAL_FAILURE);
	}
}

static void waiting_free(struct client *c, struct waiting *w)
{
	TAILQ_REMOVE(&c->waiting, w, link);
	event_free(w->timer);
	free(w);
}

static void waiting_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct waiting *w = arg;
	struct client *c = w->c;

	log_info("no association to the server within %u s; refusing a connection",
	         c->open_timeout);
	front_conn_failed(w->fc, front_conn_bev(w->fc), SOCKS5_GENERAL_FAILURE);
	waiting_free(c, w);
}

static void on_request(struct front_conn *fc, const struct socks_request *req, void *arg)
{
	struct client *c = arg;
	struct mux_dest d;
	struct waiting *w;
	struct timeval tv = { c->open_timeout, 0 };

	dest_from_socks(&req->dest, &d);
	if (d.port == 0) {
		log_info("SOCKS request for port 0 refused");
		front_conn_failed(fc, front_conn_bev(fc), SOCKS5_NOT_ALLOWED);
		return;
	}
	if (mux_session_is_up(c->m)) {
		open_stream(c, fc, &d);
		return;
	}
	if (c->shutting_down)
		goto fail;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		goto fail;
	w->c = c;
	w->fc = fc;
	w->dest = d;
	w->timer = evtimer_new(c->base, waiting_timeout, w);
	if (w->timer == NULL || evtimer_add(w->timer, &tv) < 0) {
		if (w->timer != NULL)
			event_free(w->timer);
		free(w);
		goto fail;
	}
	TAILQ_INSERT_TAIL(&c->waiting, w, link);
	return;
fail:
	front_conn_failed(fc, front_conn_bev(fc), SOCKS5_GENERAL_FAILURE);
}

static unsigned client_busy(void *arg)
{
	struct client *c = arg;

	return c->m != NULL ? mux_session_streams(c->m) : 0;
}

static void on_up(struct mux_session *m, void *arg)
{
	struct client *c = arg;

	log_notice("association up with %s", c->server_url);
	c->backoff_ms = RECONNECT_MIN_MS;
	c->was_up = 1;
	while (!TAILQ_EMPTY(&c->waiting)) {
		struct waiting *w = TAILQ_FIRST(&c->waiting);
		struct front_conn *fc = w->fc;
		struct mux_dest d = w->dest;

		waiting_free(c, w);
		open_stream(c, fc, &d);
	}
}

static void schedule_reconnect(struct client *c)
{
	struct timeval tv;

	if (c->shutting_down)
		return;
	tv.tv_sec = c->backoff_ms / 1000;
	tv.tv_usec = (c->backoff_ms % 1000) * 1000;
	evtimer_add(c->reconnect_ev, &tv);
	c->backoff_ms *= 2;
	if (c->backoff_ms > RECONNECT_MAX_MS)
		c->backoff_ms = RECONNECT_MAX_MS;
}

static void on_down(struct mux_session *m, const char *why, void *arg)
{
	struct client *c = arg;

	if (c->was_up)
		log_warn("association with the server lost: %s; reconnecting", why);
	else
		log_warn("cannot reach the server at %s: %s; retrying", c->server_url, why);
	c->was_up = 0;
	mux_session_free(m);
	c->m = NULL;
	schedule_reconnect(c);
}

static void on_stream_open(struct mux_session *m, struct mux_stream *s,
                           const struct mux_dest *dest, void *arg)
{
	/* The server does not open streams towards clients in this version. */
	mux_stream_reject(s, MUX_ERR_NOT_ALLOWED);
}

static const struct mux_session_cbs client_cbs = {
	.up = on_up,
	.down = on_down,
	.stream_open = on_stream_open,
};

static void on_link_ready(struct wire_link *l, int ok, const char *why, void *arg)
{
	struct client *c = arg;

	c->link_pending = NULL;
	if (!ok) {
		log_warn("%s (%s); retrying", why, c->server_url);
		c->link_failed = l;   /* we are inside its callback: free it later */
		schedule_reconnect(c);
		return;
	}
	log_info("handshake with %s done", c->server_url);
	c->m = mux_session_connect(l, &c->tun.mux, &client_cbs, c);
	if (c->m == NULL)
		schedule_reconnect(c);
}

static void client_connect(struct client *c)
{
	c->link_pending = wire_link_connect(c->base, (struct sockaddr *)&c->server,
	                                    c->serverlen, &c->tun.wire, on_link_ready, c);
	if (c->link_pending == NULL)
		schedule_reconnect(c);
}

static void reconnect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	wire_link_free(c->link_failed);
	c->link_failed = NULL;
	if (c->m == NULL && c->link_pending == NULL && !c->shutting_down)
		client_connect(c);
}

static void shutdown_tick(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	struct timeval now, d;

	evutil_gettimeofday(&now, NULL);
	evutil_timersub(&now, &c->shutdown_start, &d);
	if (client_busy(c) > 0 && d.tv_sec * 1000 + d.tv_usec / 1000 < SHUTDOWN_GRACE_MS)
		return;
	while (!TAILQ_EMPTY(&c->waiting)) {
		struct waiting *w = TAILQ_FIRST(&c->waiting);

		front_conn_failed(w->fc, front_conn_bev(w->fc), SOCKS5_GENERAL_FAILURE);
		waiting_free(c, w);
	}
	if (c->m != NULL) {
		mux_session_free(c->m);
		c->m = NULL;
	}
	event_del(c->shutdown_ev);
	/* Let the deferred closes (ABORT to the server) run, then stop. */
	{
		struct timeval tv = { 0, 100000 };

		event_base_loopexit(c->base, &tv);
	}
}

static void on_signal(int sig, void *arg)
{
	struct client *c = arg;
	struct timeval tick = { 0, 100000 };

	if (c->shutting_down) {
		log_notice("second signal: exiting now");
		event_base_loopexit(c->base, NULL);
		return;
	}
	log_notice("signal %d: closing (waiting up to %d s for open connections)",
	           sig, SHUTDOWN_GRACE_MS / 1000);
	c->shutting_down = 1;
	front_stop(c->front);
	evutil_gettimeofday(&c->shutdown_start, NULL);
	c->shutdown_ev = event_new(c->base, -1, EV_PERSIST, shutdown_tick, c);
	event_add(c->shutdown_ev, &tick);
	shutdown_tick(-1, 0, c);
}

static void client_usage(FILE *f)
{
	fprintf(f,
	"Usage: sctpt client --server udp://HOST:PORT --cert CERT [--socks ADDR:PORT]\n"
	"                    [OPTIONS]\n"
	"\n"
	"Offers a SOCKS4, SOCKS4a and SOCKS5 listener (CONNECT; no auth or RFC 1929\n"
	"username/password) and carries every accepted connection on its own stream\n"
	"of one SCTP association to the server.\n"
	"\n"
	"  --server URL         the sctpt server, udp://HOST:PORT (required)\n"
	"  --cert CERT          the server's cert= value from 'sctpt keygen' or its\n"
	"                       bridge line (required)\n"
	"  --socks ADDR:PORT    SOCKS listen address (default 127.0.0.1:1080;\n"
	"                       port 0 picks a free port, logged at start)\n"
	"  --max-conns N        connections at once, beyond which new ones are\n"
	"                       closed at accept and a warning is logged\n"
	"                       (default 4096)\n"
	"  --open-timeout SECS  how long a connection waits for the association\n"
	"                       before it gets a SOCKS failure reply (default 5)\n"
	"  --socks-timeout SECS time allowed for the SOCKS negotiation (default 30)\n"
	"  --handshake-timeout SECS  time to wait for the server's answer to the\n"
	"                       encrypted handshake before reporting it (default 10)\n"
	CLI_TUNNEL_HELP);
}

enum {
	OPT_SERVER = CLI_OPT_FIRST_OWN,
	OPT_SOCKS,
	OPT_MAX_CONNS,
	OPT_OPEN_TIMEOUT,
	OPT_HANDSHAKE_TIMEOUT,
	OPT_CERT,
	OPT_SOCKS_TIMEOUT,
};

static int client_parse(struct client *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, OPT_SERVER },
		{ "socks", required_argument, NULL, OPT_SOCKS },
		{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
		{ "open-timeout", required_argument, NULL, OPT_OPEN_TIMEOUT },
		{ "handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT },
		{ "socks-timeout", required_argument, NULL, OPT_SOCKS_TIMEOUT },
		{ "cert", required_argument, NULL, OPT_CERT },
		{ "help", no_argument, NULL, 'h' },
		CLI_TUNNEL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	const char *server = NULL, *socks = "127.0.0.1:1080", *cert = NULL;
	char scheme[16], host[NETADDR_HOST_MAX];
	uint16_t port;
	unsigned long v;
	int opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
		if (opt == CLI_OPT_STREAMS)
			c->streams_set = 1;
		r = cli_tunnel_option(opt, optarg, &c->tun);
		if (r < 0)
			return -1;
		if (r > 0)
			continue;
		switch (opt) {
		case OPT_SERVER: server = optarg; break;
		case OPT_SOCKS: socks = optarg; break;
		case OPT_CERT: cert = optarg; break;
		case OPT_MAX_CONNS:
			if (cli_parse_uint(optarg, 1, 1000000, &v) < 0)
				goto bad;
			c->front_cfg.max_conns = (unsigned)v;
			break;
		case OPT_OPEN_TIMEOUT:
			if (cli_parse_uint(optarg, 1, 3600, &v) < 0)
				goto bad;
			c->open_timeout = (unsigned)v;
			break;
		case OPT_SOCKS_TIMEOUT:
			if (cli_parse_uint(optarg, 1, 3600, &v) < 0)
				goto bad;
			c->front_cfg.handshake_timeout = (unsigned)v;
			break;
		case OPT_HANDSHAKE_TIMEOUT:
			if (cli_parse_uint(optarg, 1, 600, &v) < 0)
				goto bad;
			c->tun.wire.handshake_timeout_ms = (unsigned)v * 1000;
			break;
		case 'h':
			client_usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "Try 'sctpt client --help'.\n");
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sctpt client: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (server == NULL) {
		fprintf(stderr, "sctpt client: --server is required\n");
		return -1;
	}
	if (cert == NULL) {
		fprintf(stderr, "sctpt client: --cert is required (the server's cert= value)\n");
		return -1;
	}
	if (strncmp(cert, "cert=", 5) == 0)
		cert += 5;
	if (wire_cert_decode(cert, &c->cert) < 0) {
		fprintf(stderr, "sctpt client: bad --cert (want the 64-character cert= value)\n");
		return -1;
	}
	c->tun.wire.cert = &c->cert;
	if (netaddr_parse_url(server, scheme, sizeof(scheme), host, sizeof(host), &port) < 0) {
		fprintf(stderr, "sctpt client: bad --server '%s' (want udp://HOST:PORT)\n", server);
		return -1;
	}
	if (strcmp(scheme, "udp") != 0) {
		fprintf(stderr, "sctpt client: carrier '%s' is not supported (only udp)\n", scheme);
		return -1;
	}
	snprintf(c->server_url, sizeof(c->server_url), "%s", server);
	if (cli_resolve(host, port, &c->server, &c->serverlen) < 0)
		return -1;
	if (netaddr_parse_hostport(socks, host, sizeof(host), &port, 1) < 0 ||
	    netaddr_from_numeric(host, port, &c->socks, &c->sockslen) < 0) {
		fprintf(stderr, "sctpt client: bad --socks '%s' (want IP:PORT)\n", socks);
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "sctpt client: bad value '%s'\n", optarg);
	return -1;
}

int client_main(int argc, char **argv)
{
	struct client c;
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	char abuf[128];
	int rc = 1;

	memset(&c, 0, sizeof(c));
	cli_tunnel_defaults(&c.tun);
	c.front_cfg.max_conns = 4096;
	c.front_cfg.handshake_timeout = 30;
	c.open_timeout = 5;
	TAILQ_INIT(&c.waiting);
	if (client_parse(&c, argc, argv) < 0)
		return 2;
	cli_set_verbosity(c.tun.verbose, c.tun.quiet);
	if (cli_raise_nofile() < (unsigned long)c.front_cfg.max_conns + 64)
		log_warn("open-file limit is below --max-conns; connections may fail");
	c.tun.mux.max_streams = c.front_cfg.max_conns;
	/*
	 * Ask for only the streams we can use (odd ids for --max-conns
	 * connections): usrsctp 0.9.5 walks every outgoing stream on each
	 * output pass, which cost 17% of the sender's CPU at 65535 streams.
	 */
	if (!c.streams_set) {
		unsigned long want = 2ul * c.front_cfg.max_conns + 2;

		c.tun.sctp.streams = want > 65535 ? 65535 : (unsigned)want;
	}
	c.front_cfg.busy = client_busy;

	c.base = cli_event_base_new();
	if (c.base == NULL || sctp_global_init(c.base, &c.tun.sctp) < 0) {
		log_err("cannot initialise the event loop or SCTP");
		return 1;
	}
	c.front = front_new(c.base, (struct sockaddr *)&c.socks, c.sockslen,
	                    &c.front_cfg, on_request, &c);
	if (c.front == NULL)
		goto out;
	if (front_local_addr(c.front, &bound, &blen) == 0)
		log_notice("SOCKS listening on %s", netaddr_format((struct sockaddr *)&bound, abuf, sizeof(abuf)));
	c.reconnect_ev = evtimer_new(c.base, reconnect_cb, &c);
	c.backoff_ms = RECONNECT_MIN_MS;
	if (c.reconnect_ev == NULL || cli_on_signal(c.base, on_signal, &c) < 0)
		goto out;
	client_connect(&c);
	event_base_dispatch(c.base);
	rc = 0;
out:
	/* Streams and waiting requests first: failing them touches the front. */
	while (!TAILQ_EMPTY(&c.waiting)) {
		struct waiting *w = TAILQ_FIRST(&c.waiting);

		front_conn_failed(w->fc, front_conn_bev(w->fc), SOCKS5_GENERAL_FAILURE);
		waiting_free(&c, w);
	}
	if (c.m != NULL)
		mux_session_free(c.m);
	c.m = NULL;
	wire_link_free(c.link_pending);
	wire_link_free(c.link_failed);
	front_free(c.front);
	if (c.reconnect_ev != NULL)
		event_free(c.reconnect_ev);
	if (c.shutdown_ev != NULL)
		event_free(c.shutdown_ev);
	sctp_global_shutdown();
	log_notice("client stopped");
	return rc;
}
