/*
 * `sctpt server`: admits clients over the UDP carrier, one association
 * each, and turns every stream a client opens into a TCP connection to the
 * fixed target or, in proxy mode, to the destination it asked for.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "egress/egress.h"
#include "mux/mux.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "crypto/crypto.h"
#include "wire/wire.h"

#define SHUTDOWN_GRACE_MS 3000

struct server_client {
	TAILQ_ENTRY(server_client) link;
	struct server *srv;
	struct mux_session *m;
	char peer[128];
	struct sockaddr_storage addr;   /* the client's carrier address */
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

/* The standalone command's state around the shared server. */
struct server_cmd {
	struct event_base *base;
	struct server_params p;
	struct server *srv;
	struct event *shutdown_ev;
	int shutting_down;
	struct timeval shutdown_start;
};

static void client_remove(struct server_client *sc)
{
	struct server *srv = sc->srv;

	TAILQ_REMOVE(&srv->clients, sc, link);
	srv->nclients--;
	mux_session_free(sc->m);
	free(sc);
}

static void on_up(struct mux_session *m, void *arg)
{
	struct server_client *sc = arg;

	log_info("client %s: association up", sc->peer);
}

static void on_down(struct mux_session *m, const char *why, void *arg)
{
	struct server_client *sc = arg;

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

static const struct mux_session_cbs server_cbs = {
	.up = on_up,
	.down = on_down,
	.stream_open = on_stream_open,
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
	srv->shutting_down = 1;
}

static void shutdown_tick(evutil_socket_t fd, short what, void *arg)
{
	struct server_cmd *cmd = arg;
	struct timeval now, d;

	evutil_gettimeofday(&now, NULL);
	evutil_timersub(&now, &cmd->shutdown_start, &d);
	if (server_busy(cmd->srv) > 0 && d.tv_sec * 1000 + d.tv_usec / 1000 < SHUTDOWN_GRACE_MS)
		return;
	server_close_clients(cmd->srv);
	event_del(cmd->shutdown_ev);
	{
		struct timeval tv = { 0, 100000 };

		event_base_loopexit(cmd->base, &tv);
	}
}

static void on_signal(int sig, void *arg)
{
	struct server_cmd *cmd = arg;
	struct timeval tick = { 0, 100000 };

	if (cmd->shutting_down) {
		log_notice("second signal: exiting now");
		event_base_loopexit(cmd->base, NULL);
		return;
	}
	log_notice("signal %d: closing (waiting up to %d s for open connections)",
	           sig, SHUTDOWN_GRACE_MS / 1000);
	cmd->shutting_down = 1;
	server_drain(cmd->srv);
	cmd->shutdown_ev = event_new(cmd->base, -1, EV_PERSIST, shutdown_tick, cmd);
	evutil_gettimeofday(&cmd->shutdown_start, NULL);
	event_add(cmd->shutdown_ev, &tick);
	shutdown_tick(-1, 0, cmd);
}

static void server_usage(FILE *f)
{
	fprintf(f,
	"Usage: sctpt server --listen URL... --key FILE (--target HOST:PORT |\n"
	"                    --proxy [--allow CIDR]...) [OPTIONS]\n"
	"\n"
	"Accepts SCTP associations from sctpt clients over UDP.  Every stream a\n"
	"client opens becomes a TCP connection to the fixed --target, or with\n"
	"--proxy to the destination the client asked for.  Proxy mode refuses\n"
	"loopback, private, link-local, multicast, reserved and unspecified\n"
	"destinations unless an --allow rule admits them.\n"
	"\n"
	"  --listen URL         where to accept clients: udp://ADDR:PORT, or\n"
	"                       tcp://ADDR:PORT for networks that block UDP (required;\n"
	"                       repeat to listen on several, e.g. UDP and TCP: a\n"
	"                       client's session can move between them)\n"
	"  --key FILE           identity key from 'sctpt keygen' (required); only\n"
	"                       clients with its cert= get any answer\n"
	"  --target HOST:PORT   send every stream to this address\n"
	"  --proxy              connect to the destination each client asks for\n"
	"  --allow CIDR         admit an internal range in proxy mode (repeatable,\n"
	"                       e.g. --allow 127.0.0.0/8 --allow ::1/128)\n"
	"  --max-clients N      associations at once (default 256)\n"
	"  --max-conns N        streams at once per client; beyond, new streams are\n"
	"                       refused and a warning is logged (default 4096)\n"
	"  --connect-timeout SECS  name resolution plus TCP connect (default 10)\n"
	"  --resolv-conf FILE   name servers for proxy mode (default /etc/resolv.conf)\n"
	"  --replay-file FILE   keep the handshake replay filter in FILE (and FILE.prev)\n"
	"                       so that it survives a restart (default: memory only)\n"
	CLI_TUNNEL_HELP);
}

enum {
	OPT_LISTEN = CLI_OPT_FIRST_OWN,
	OPT_TARGET,
	OPT_PROXY,
	OPT_ALLOW,
	OPT_MAX_CLIENTS,
	OPT_MAX_CONNS,
	OPT_CONNECT_TIMEOUT,
	OPT_RESOLV_CONF,
	OPT_KEY,
	OPT_REPLAY_FILE,
};

static int server_parse(struct server_params *srv, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "proxy", no_argument, NULL, OPT_PROXY },
		{ "allow", required_argument, NULL, OPT_ALLOW },
		{ "max-clients", required_argument, NULL, OPT_MAX_CLIENTS },
		{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
		{ "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
		{ "resolv-conf", required_argument, NULL, OPT_RESOLV_CONF },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "replay-file", required_argument, NULL, OPT_REPLAY_FILE },
		{ "help", no_argument, NULL, 'h' },
		CLI_TUNNEL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	struct egress_config *e = &srv->egress;
	const char *target = NULL, *key = NULL;
	char err[300];
	int proxy = 0;
	unsigned long v;
	int opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
		r = cli_tunnel_option(opt, optarg, &srv->tun);
		if (r < 0)
			return -1;
		if (r > 0)
			continue;
		switch (opt) {
		case OPT_LISTEN:
			if (srv->nlisten >= WIRE_MAX_LISTEN) {
				fprintf(stderr, "sctpt server: at most %d --listen\n", WIRE_MAX_LISTEN);
				return -1;
			}
			if (cli_parse_endpoint("--listen", optarg, 0, 1, &srv->listen[srv->nlisten]) < 0)
				return -1;
			srv->nlisten++;
			break;
		case OPT_TARGET: target = optarg; break;
		case OPT_PROXY: proxy = 1; break;
		case OPT_ALLOW:
			if (e->nallow >= EGRESS_MAX_ALLOW) {
				fprintf(stderr, "sctpt server: at most %d --allow rules\n",
				        EGRESS_MAX_ALLOW);
				return -1;
			}
			if (netaddr_parse_cidr(optarg, &e->allow[e->nallow]) < 0) {
				fprintf(stderr, "sctpt server: bad --allow '%s' (want CIDR)\n", optarg);
				return -1;
			}
			e->nallow++;
			break;
		case OPT_MAX_CLIENTS:
			if (cli_parse_uint(optarg, 1, 100000, &v) < 0)
				goto bad;
			srv->tun.wire.max_peers = (unsigned)v;
			break;
		case OPT_MAX_CONNS:
			if (cli_parse_uint(optarg, 1, 65535, &v) < 0)
				goto bad;
			srv->tun.mux.max_streams = (unsigned)v;
			break;
		case OPT_CONNECT_TIMEOUT:
			if (cli_parse_uint(optarg, 1, 600, &v) < 0)
				goto bad;
			e->connect_timeout = (unsigned)v;
			break;
		case OPT_RESOLV_CONF: srv->resolv_conf = optarg; break;
		case OPT_KEY: key = optarg; break;
		case OPT_REPLAY_FILE: srv->tun.wire.replay_file = optarg; break;
		case 'h':
			server_usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "Try 'sctpt server --help'.\n");
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sctpt server: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (srv->nlisten == 0) {
		fprintf(stderr, "sctpt server: --listen is required\n");
		return -1;
	}
	if (key == NULL) {
		fprintf(stderr, "sctpt server: --key is required (create one with 'sctpt keygen')\n");
		return -1;
	}
	if (cli_key_load(key, &srv->identity, err, sizeof(err)) < 0) {
		fprintf(stderr, "sctpt server: %s\n", err);
		return -1;
	}
	srv->tun.wire.identity = &srv->identity;
	if ((target != NULL) == proxy) {
		fprintf(stderr, "sctpt server: give exactly one of --target or --proxy\n");
		return -1;
	}
	if (target != NULL) {
		e->mode = EGRESS_TARGET;
		if (netaddr_parse_hostport(target, e->target_host, sizeof(e->target_host),
		                           &e->target_port, 0) < 0) {
			fprintf(stderr, "sctpt server: bad --target '%s' (want HOST:PORT)\n", target);
			return -1;
		}
	} else {
		e->mode = EGRESS_PROXY;
	}
	if (e->nallow > 0 && e->mode != EGRESS_PROXY) {
		fprintf(stderr, "sctpt server: --allow only applies to --proxy\n");
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "sctpt server: bad value '%s'\n", optarg);
	return -1;
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
	wire_listener_free(srv->wl);
	egress_free(srv->egress);
	if (srv->dns != NULL)
		evdns_base_free(srv->dns, 1);
	wc_wipe(&srv->p.identity, sizeof(srv->p.identity));
	free(srv);
}

int server_main(int argc, char **argv)
{
	struct server_cmd cmd;
	struct server_params *p = &cmd.p;
	struct sockaddr_storage bound;
	socklen_t blen;
	char abuf[128];
	int rc = 1;

	memset(&cmd, 0, sizeof(cmd));
	cli_tunnel_defaults(&p->tun);
	p->tun.mux.max_streams = 4096;
	p->egress.connect_timeout = 10;
	if (server_parse(p, argc, argv) < 0)
		return 2;
	cli_set_verbosity(p->tun.verbose, p->tun.quiet);
	(void)cli_raise_nofile();

	cmd.base = cli_event_base_new();
	if (cmd.base == NULL || sctp_global_init(cmd.base, &p->tun.sctp) < 0) {
		log_err("cannot initialise the event loop or SCTP");
		return 1;
	}
	cmd.srv = server_start(cmd.base, p);
	wc_wipe(&p->identity, sizeof(p->identity));
	if (cmd.srv == NULL)
		goto out;
	if (cli_on_signal(cmd.base, on_signal, &cmd) < 0)
		goto out;
	for (unsigned i = 0; i < p->nlisten; i++) {
		blen = sizeof(bound);
		if (server_local_addr(cmd.srv, i, &bound, &blen) == 0)
			log_notice("listening on %s://%s (%s)", p->listen[i].tcp ? "tcp" : "udp",
			           netaddr_format((struct sockaddr *)&bound, abuf, sizeof(abuf)),
			           p->egress.mode == EGRESS_PROXY ? "proxy mode" : "fixed target");
	}
	event_base_dispatch(cmd.base);
	rc = 0;
out:
	server_free(cmd.srv);
	if (cmd.shutdown_ev != NULL)
		event_free(cmd.shutdown_ev);
	sctp_global_shutdown();
	log_notice("server stopped");
	return rc;
}
