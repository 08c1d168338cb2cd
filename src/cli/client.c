/*
 * `sctpt client`: a SOCKS listener whose connections ride one long-lived
 * association to the server, one stream each.  The association is set up at
 * start and re-established with backoff whenever it dies; requests that
 * arrive while it is down wait up to --open-timeout for it.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "app/app.h"
#include "metrics/metrics.h"
#include "front/front.h"
#include "mux/mux.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/opt.h"
#include "util/fwdspec.h"
#include "util/prefix.h"
#include "util/sharelink.h"
#include "util/sig.h"
#include "wire/wire.h"

#define CLIENT_MAX_LFWD 64
#define REAP_INTERVAL_MS 500

/* The forwards of the options: read at start, and again at each SIGHUP. */
struct fwd_lists {
	struct fwd_spec lfwd[CLIENT_MAX_LFWD];
	char lfwd_text[CLIENT_MAX_LFWD][FWD_SPEC_MAX + 1];
	unsigned nlfwd;
	struct rfwd_config rcfg;       /* -R and --remote-allow */
};

/* An -L listener a reload removed, freed once no connection points at it. */
struct retired_front {
	struct retired_front *next;
	struct front *front;
};

struct client {
	struct event_base *base;
	struct front_config front_cfg;
	struct upstream_config up_cfg;
	struct sockaddr_storage socks;
	socklen_t sockslen;
	struct front *front;
	struct upstream *up;
	struct cli_log_opts log;
	struct app_shutdown sd;
	int streams_set;               /* --streams given explicitly */
	struct cli_metrics_opts metrics_opts;
	struct app_metrics metrics;
	struct metrics_server *metrics_srv;
	/* -L (one listener each, connections carried like SOCKS CONNECTs), -R */
	struct fwd_lists fw;
	struct front *lfront[CLIENT_MAX_LFWD];
	struct retired_front *retired;
	struct event *reaper;
};

static void on_request(struct front_conn *fc, const struct socks_request *req, void *arg)
{
	struct client *c = arg;
	struct mux_dest d;

	if (req->cmd == SOCKS_CMD_UDP_ASSOCIATE) {
		if (app_shutdown_started(&c->sd))
			front_conn_failed(fc, front_conn_bev(fc), SOCKS5_GENERAL_FAILURE);
		else
			upstream_udp_request(c->up, fc, &req->dest);
		return;
	}
	upstream_dest_from_socks(req, &d);
	if (d.port == 0) {
		log_info("%s request for port 0 refused", front_conn_is_http(fc) ? "HTTP" : "SOCKS");
		metrics_count_refused(MR_NOT_ALLOWED);
		front_conn_failed(fc, front_conn_bev(fc), SOCKS5_NOT_ALLOWED);
		return;
	}
	if (app_shutdown_started(&c->sd)) {
		metrics_count_refused(MR_SHUTDOWN);
		front_conn_failed(fc, front_conn_bev(fc), SOCKS5_GENERAL_FAILURE);
		return;
	}
	upstream_request(c->up, fc, &d);
}

/* An -L connection: a CONNECT to the forward's HOST:HOSTPORT. */
static void on_forward(struct front_conn *fc, const struct socks_request *req, void *arg)
{
	on_request(fc, req, arg);
}

static unsigned client_busy(void *arg)
{
	struct client *c = arg;

	return c->up != NULL ? upstream_busy(c->up) : 0;
}

static void client_stop(void *arg)
{
	struct client *c = arg;

	front_stop(c->front);
	for (unsigned i = 0; i < c->fw.nlfwd; i++)
		front_stop(c->lfront[i]);
	upstream_stop(c->up);
}

static void client_close(void *arg)
{
	struct client *c = arg;

	upstream_close(c->up);
}

static void on_signal(int sig, void *arg)
{
	struct client *c = arg;
	char why[32];

	snprintf(why, sizeof(why), "signal %d", sig);
	if (app_shutdown_begin(&c->sd, why) > 0)
		log_notice("second signal: exiting now");
}

static void client_usage(FILE *f)
{
	fprintf(f,
	"Usage: sctpt client --server URL... --cert CERT [--socks ADDR:PORT]\n"
	"                    [OPTIONS]\n"
	"       sctpt client LINK [OPTIONS]\n"
	"       sctpt client -c FILE [OPTIONS]\n"
	"\n"
	"Offers a SOCKS4, SOCKS4a and SOCKS5 listener (CONNECT; no auth or RFC 1929\n"
	"username/password) that is also an HTTP proxy on the same port (CONNECT\n"
	"and http:// requests, one request per connection), and carries every\n"
	"accepted connection on its own stream of one SCTP association to the server.\n"
	"SOCKS5 UDP ASSOCIATE is relayed too (the server needs --proxy;\n"
	"docs/udp-relay.md): the UDP socket is bound beside the control connection's\n"
	"local address and lives as long as that connection.\n"
	"\n"
	"  LINK, --link LINK    a share link, sctpt://... (docs/share-links.md): the\n"
	"                       server's cert and paths in one string.  --cert\n"
	"                       replaces its cert; --server adds paths after its own\n"
	"  -c, --config FILE    read options from a JSON file (docs/config.md); the\n"
	"                       command line overrides it.  SIGHUP re-reads its log\n"
	"                       level, -L, -R and --remote-allow (connections of a\n"
	"                       removed forward keep going; a file with an error\n"
	"                       changes nothing)\n"
	"  --server URL         the sctpt server, udp://HOST:PORT or tcp://HOST:PORT,\n"
	"                       or udp://HOST:P1-P2 for a server that listens on a\n"
	"                       port range (see --hop-interval) (required).  Repeat it to give several paths to the\n"
	"                       same server: they are tried in turn for the handshake,\n"
	"                       and traffic moves to the next one, without resetting\n"
	"                       any connection, when the active one stops delivering\n"
	"  --upstream-proxy URL reach the server through a proxy:\n"
	"                       socks5://[USER[:PASS]@]IP:PORT (TCP paths via CONNECT,\n"
	"                       UDP paths via UDP ASSOCIATE), socks4a://[USER@]IP:PORT\n"
	"                       or http://[USER[:PASS]@]IP:PORT (CONNECT; TCP paths only)\n"
	"  --prefix SPEC        start every UDP handshake datagram and every TCP\n"
	"                       connection with these bytes (at most 64), so the\n"
	"                       first packet does not look\n"
	"                       fully encrypted: a preset (tls, http-get,\n"
	"                       http-post, dns, ssh), hex:HEX, or printable text\n"
	"                       with \\xHH \\r \\n \\t \\\\ escapes.  The server needs\n"
	"                       no option for it (docs/PROTOCOL.md, \"Prefix\")\n"
	"  --hop-interval SECS  port hopping: on a udp://HOST:P1-P2 path, move to\n"
	"                       another random port of the range every 1 to 1.5\n"
	"                       times SECS (at least 2), without resetting any\n"
	"                       connection (default 0: stay on one random port)\n"
	"  --path-timeout MS    a path that returns nothing this long while we send is\n"
	"                       abandoned for the next one (default 2000)\n"
	"  --cert CERT          the server's cert= value from 'sctpt keygen' or its\n"
	"                       bridge line (required)\n"
	"  --socks ADDR:PORT    SOCKS and HTTP proxy listen address (default\n"
	"                       127.0.0.1:1080; port 0 picks a free port, logged\n"
	"                       at start)\n"
	"  --max-conns N        connections at once, beyond which new ones are\n"
	"                       closed at accept and a warning is logged\n"
	"                       (default 4096)\n"
	"  --open-timeout SECS  how long a connection waits for the association\n"
	"                       before it gets a SOCKS failure reply or HTTP 502\n"
	"                       (default 5)\n"
	"  --socks-timeout SECS time allowed for the SOCKS negotiation or the HTTP\n"
	"                       request head, counted from accept (default 30)\n"
	"  --no-http            SOCKS only: close connections that do not start\n"
	"                       with a SOCKS version byte\n"
	"  --handshake-timeout SECS  time to wait for the server's answer to the\n"
	"                       encrypted handshake before reporting it (default 10)\n"
	CLI_METRICS_HELP
	"  -L, --local-forward [BIND:]PORT:HOST:HOSTPORT  listen on BIND:PORT (default\n"
	"                       loopback; IPv6 in brackets, * for every interface)\n"
	"                       and carry each connection to HOST:HOSTPORT as seen\n"
	"                       from the server, as a SOCKS CONNECT would (its\n"
	"                       --proxy rules or --target apply).  Repeatable\n"
	"  -R, --remote-forward [BIND:]PORT[:HOST:HOSTPORT]  ask the server to listen\n"
	"                       on BIND:PORT (its loopback unless BIND; port 0: it\n"
	"                       picks one, logged) and send each connection back\n"
	"                       here, to HOST:HOSTPORT as seen from this client; with\n"
	"                       no HOST:HOSTPORT it is a SOCKS/HTTP proxy port whose\n"
	"                       connections this client makes.  The server must\n"
	"                       allow it (--permit-listen).  Repeatable; restored\n"
	"                       when the association is re-established\n"
	"  --remote-allow CIDR  let reverse-SOCKS (-R PORT) connections reach this\n"
	"                       internal range; by default loopback, private and other\n"
	"                       internal addresses are refused (repeatable)\n"
	"  --udp-rate N         UDP relay: datagrams per second sent into the tunnel\n"
	"                       and relayed back; beyond, they are dropped and counted\n"
	"                       (default 20000, the server's default; 0: no limit)\n"
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
	OPT_PATH_TIMEOUT,
	OPT_UPSTREAM_PROXY,
	OPT_NO_HTTP,
	OPT_LINK,
	OPT_REMOTE_ALLOW,
	OPT_PREFIX,
	OPT_HOP_INTERVAL,
	/* UDP relay */
	OPT_UDP_RATE,
};

_Static_assert(PREFIX_MAX == HS_PREFIX_MAX, "--prefix fits in a HELLO");

static const struct option client_opts[] = {
	{ "server", required_argument, NULL, OPT_SERVER },
	{ "link", required_argument, NULL, OPT_LINK },
	{ "path-timeout", required_argument, NULL, OPT_PATH_TIMEOUT },
	{ "prefix", required_argument, NULL, OPT_PREFIX },
	{ "hop-interval", required_argument, NULL, OPT_HOP_INTERVAL },
	{ "upstream-proxy", required_argument, NULL, OPT_UPSTREAM_PROXY },
	{ "socks", required_argument, NULL, OPT_SOCKS },
	{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
	{ "open-timeout", required_argument, NULL, OPT_OPEN_TIMEOUT },
	{ "handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT },
	{ "socks-timeout", required_argument, NULL, OPT_SOCKS_TIMEOUT },
	{ "no-http", no_argument, NULL, OPT_NO_HTTP },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "local-forward", required_argument, NULL, 'L' },
	{ "remote-forward", required_argument, NULL, 'R' },
	{ "remote-allow", required_argument, NULL, OPT_REMOTE_ALLOW },
	{ "udp-rate", required_argument, NULL, OPT_UDP_RATE },
	{ "config", required_argument, NULL, 'c' },
	{ "help", no_argument, NULL, 'h' },
	CLI_METRICS_LONGOPTS,
	CLI_TUNNEL_LONGOPTS,
	{ NULL, 0, NULL, 0 }
};

/*
 * Put the link's paths before those of --server (the link is the server's
 * own list, in its order) and take its cert unless --cert gave one.
 */
static int client_apply_link(struct client *c, const char *s, const char **cert,
                             const char **first_server)
{
	static struct sharelink link;
	static char first[128];        /* for the log label only */
	struct upstream_config *u = &c->up_cfg;
	char url[NETADDR_HOST_MAX + 16];
	const char *err;

	if (sharelink_parse(s, strlen(s), &link, &err) < 0) {
		fprintf(stderr, "sctpt client: bad link: %s\n", err);
		return -1;
	}
	if (u->neps + link.npaths > WIRE_MAX_PATHS) {
		fprintf(stderr, "sctpt client: at most %d paths (link and --server)\n",
		        WIRE_MAX_PATHS);
		return -1;
	}
	memmove(&u->eps[link.npaths], &u->eps[0], u->neps * sizeof(u->eps[0]));
	for (unsigned i = 0; i < link.npaths; i++) {
		cli_link_path_url(&link, i, url, sizeof(url));
		if (cli_parse_endpoint("path in the link", url, 1, 0, &u->eps[i]) < 0)
			return -1;
	}
	u->neps += link.npaths;
	cli_link_path_url(&link, 0, first, sizeof(first));
	*first_server = first;
	if (*cert == NULL)
		*cert = link.cert;
	if (link.name[0] != '\0')
		log_notice("using the share link \"%s\"", link.name);
	return 0;
}

/* -L, -R and --remote-allow into fw: 1 handled, 0 not one of them, -1 bad (printed). */
static int fwd_option(struct fwd_lists *fw, int opt, const char *arg)
{
	struct rfwd_config *rc = &fw->rcfg;
	const char *err;

	switch (opt) {
	case 'L':
		if (fw->nlfwd >= CLIENT_MAX_LFWD) {
			fprintf(stderr, "sctpt client: at most %d -L\n", CLIENT_MAX_LFWD);
			return -1;
		}
		if (fwd_spec_parse(arg, FWD_SPEC_LOCAL, &fw->lfwd[fw->nlfwd], &err) < 0) {
			fprintf(stderr, "sctpt client: bad -L '%s': %s\n", arg, err);
			return -1;
		}
		snprintf(fw->lfwd_text[fw->nlfwd++], sizeof(fw->lfwd_text[0]), "%s", arg);
		return 1;
	case 'R':
		if (rc->n >= RFWD_MAX) {
			fprintf(stderr, "sctpt client: at most %d -R\n", RFWD_MAX);
			return -1;
		}
		if (fwd_spec_parse(arg, FWD_SPEC_REMOTE, &rc->spec[rc->n], &err) < 0) {
			fprintf(stderr, "sctpt client: bad -R '%s': %s\n", arg, err);
			return -1;
		}
		snprintf(rc->text[rc->n], sizeof(rc->text[rc->n]), "%s", arg);
		rc->n++;
		return 1;
	case OPT_REMOTE_ALLOW:
		if (rc->nallow >= EGRESS_MAX_ALLOW) {
			fprintf(stderr, "sctpt client: at most %d --remote-allow\n", EGRESS_MAX_ALLOW);
			return -1;
		}
		if (netaddr_parse_cidr(arg, &rc->allow[rc->nallow]) < 0) {
			fprintf(stderr, "sctpt client: bad --remote-allow '%s' (want CIDR)\n", arg);
			return -1;
		}
		rc->nallow++;
		return 1;
	default:
		return 0;
	}
}

static int client_parse(struct client *c, int argc, char **argv)
{
	const char *socks = "127.0.0.1:1080", *cert = NULL, *first_server = NULL;
	const char *link = NULL;
	char host[NETADDR_HOST_MAX];
	uint16_t port;
	unsigned long v;
	int opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "hvqc:L:R:", client_opts, NULL)) != -1) {
		cli_config_at(optind);
		if (opt == CLI_OPT_STREAMS)
			c->streams_set = 1;
		r = cli_tunnel_option(opt, optarg, &c->up_cfg.tun, &c->log);
		if (r == 0)
			r = cli_metrics_option("client", opt, optarg, &c->metrics_opts);
		if (r == 0)
			r = fwd_option(&c->fw, opt, optarg);
		if (r < 0)
			return -1;
		if (r > 0)
			continue;
		switch (opt) {
		case OPT_SERVER:
			if (c->up_cfg.neps >= WIRE_MAX_PATHS) {
				fprintf(stderr, "sctpt client: at most %d --server\n", WIRE_MAX_PATHS);
				return -1;
			}
			if (cli_parse_endpoint("--server", optarg, 1, 0,
			                       &c->up_cfg.eps[c->up_cfg.neps]) < 0)
				return -1;
			if (first_server == NULL)
				first_server = optarg;
			c->up_cfg.neps++;
			break;
		case OPT_UPSTREAM_PROXY: {
			const char *err;

			if (carrier_proxy_parse(optarg, &c->up_cfg.proxy, &err) < 0) {
				fprintf(stderr, "sctpt client: bad --upstream-proxy: %s\n", err);
				return -1;
			}
			break;
		}
		case OPT_PATH_TIMEOUT:
			if (opt_parse_uint(optarg, 200, 600000, &v) < 0)
				goto bad;
			c->up_cfg.tun.wire.path_timeout_ms = (unsigned)v;
			break;
		case OPT_PREFIX: {
			const char *err;
			int n = prefix_parse(optarg, strlen(optarg), c->up_cfg.tun.wire.prefix, &err);

			if (n < 0) {
				fprintf(stderr, "sctpt client: bad --prefix: %s\n", err);
				return -1;
			}
			c->up_cfg.tun.wire.prefix_len = (unsigned)n;
			break;
		}
		case OPT_HOP_INTERVAL:
			if (opt_parse_uint(optarg, 0, 86400, &v) < 0 || v == 1)
				goto bad;
			c->up_cfg.tun.wire.hop_interval_ms = (unsigned)v * 1000;
			break;
		case OPT_SOCKS: socks = optarg; break;
		case OPT_NO_HTTP: c->front_cfg.http = 0; break;
		case OPT_CERT: cert = optarg; break;
		case OPT_LINK: link = optarg; break;
		case 'c': break;     /* read by cli_config_expand */
		case OPT_MAX_CONNS:
			if (opt_parse_uint(optarg, 1, 1000000, &v) < 0)
				goto bad;
			c->front_cfg.max_conns = (unsigned)v;
			break;
		case OPT_OPEN_TIMEOUT:
			if (opt_parse_uint(optarg, 1, 3600, &v) < 0)
				goto bad;
			c->up_cfg.open_timeout = (unsigned)v;
			break;
		case OPT_SOCKS_TIMEOUT:
			if (opt_parse_uint(optarg, 1, 3600, &v) < 0)
				goto bad;
			c->front_cfg.handshake_timeout = (unsigned)v;
			break;
		case OPT_HANDSHAKE_TIMEOUT:
			if (opt_parse_uint(optarg, 1, 600, &v) < 0)
				goto bad;
			c->up_cfg.tun.wire.handshake_timeout_ms = (unsigned)v * 1000;
			break;
		case OPT_UDP_RATE:
			if (opt_parse_uint(optarg, 0, 10000000, &v) < 0)
				goto bad;
			c->up_cfg.tun.mux.udp_rate = (unsigned)v;
			break;
		case 'h':
			client_usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "Try 'sctpt client --help'.\n");
			return -1;
		}
	}
	cli_config_at(-1);
	if (optind < argc && link == NULL && strncasecmp(argv[optind], "sctpt:", 6) == 0)
		link = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "sctpt client: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (link != NULL && client_apply_link(c, link, &cert, &first_server) < 0)
		return -1;
	if (cli_metrics_check("client", &c->metrics_opts) < 0)
		return -1;
	if (c->up_cfg.neps == 0) {
		fprintf(stderr, "sctpt client: --server or a share link is required\n");
		return -1;
	}
	if (c->up_cfg.tun.wire.hop_interval_ms > 0) {
		unsigned ranges = 0;

		for (unsigned i = 0; i < c->up_cfg.neps; i++)
			ranges += c->up_cfg.eps[i].port_hi != 0;
		if (ranges == 0)
			log_warn("--hop-interval has no effect: no path is a port range "
			         "(udp://HOST:P1-P2)");
	}
	if (cert == NULL) {
		fprintf(stderr, "sctpt client: --cert is required (the server's cert= value)\n");
		return -1;
	}
	if (strncmp(cert, "cert=", 5) == 0)
		cert += 5;
	if (wire_cert_decode(cert, &c->up_cfg.cert) < 0) {
		fprintf(stderr, "sctpt client: bad --cert (want the 64-character cert= value)\n");
		return -1;
	}
	if (c->up_cfg.neps > 1)
		snprintf(c->up_cfg.label, sizeof(c->up_cfg.label), "%s (+%u more paths)",
		         first_server, c->up_cfg.neps - 1);
	else
		snprintf(c->up_cfg.label, sizeof(c->up_cfg.label), "%s", first_server);
	if (c->fw.rcfg.nallow > 0 && c->fw.rcfg.n == 0) {
		fprintf(stderr, "sctpt client: --remote-allow only applies to -R\n");
		return -1;
	}
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

/* The SOCKS form of an -L destination. */
static void lfwd_dest(const struct fwd_spec *f, struct socks_dest *d)
{
	memset(d, 0, sizeof(*d));
	d->port = f->hostport;
	if (inet_pton(AF_INET, f->host, d->ipv4) == 1) {
		d->atyp = SOCKS_ATYP_IPV4;
	} else if (inet_pton(AF_INET6, f->host, d->ipv6) == 1) {
		d->atyp = SOCKS_ATYP_IPV6;
	} else {
		d->atyp = SOCKS_ATYP_DOMAIN;
		snprintf(d->domain, sizeof(d->domain), "%s", f->host);
	}
}

/* Listen for -L i into c->lfront[i]; its connections count against --max-conns too.
 * 0, or -1 (logged). */
static int lfwd_start(struct client *c, unsigned i, const char *what)
{
	const struct fwd_spec *f = &c->fw.lfwd[i];
	const char *bind = f->bind[0] == '\0' || strcmp(f->bind, "localhost") == 0 ?
	                   "127.0.0.1" : strcmp(f->bind, "*") == 0 ? "0.0.0.0" : f->bind;
	struct front_config fcfg = c->front_cfg;
	struct sockaddr_storage ss, bound;
	socklen_t len, blen = sizeof(bound);
	char abuf[128];

	c->lfront[i] = NULL;
	if (netaddr_from_numeric(bind, f->port, &ss, &len) < 0) {
		log_err("%s-L %s: bad listening address", what, c->fw.lfwd_text[i]);
		return -1;
	}
	fcfg.fixed = 1;
	fcfg.http = 0;
	lfwd_dest(f, &fcfg.fixed_dest);
	c->lfront[i] = front_new(c->base, (struct sockaddr *)&ss, len, &fcfg, on_forward, c);
	if (c->lfront[i] == NULL)
		return -1;   /* logged */
	if (front_local_addr(c->lfront[i], &bound, &blen) == 0)
		log_notice("%slocal forward -L %s listening on %s", what, c->fw.lfwd_text[i],
		           netaddr_format((struct sockaddr *)&bound, abuf, sizeof(abuf)));
	return 0;
}

static int start_local_forwards(struct client *c)
{
	for (unsigned i = 0; i < c->fw.nlfwd; i++)
		if (lfwd_start(c, i, "") < 0)
			return -1;
	return 0;
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	struct retired_front **pp = &c->retired;

	while (*pp != NULL) {
		struct retired_front *r = *pp;

		if (front_active(r->front) == 0) {
			*pp = r->next;
			front_free(r->front);
			free(r);
		} else {
			pp = &r->next;
		}
	}
	if (c->retired == NULL)
		event_del(c->reaper);
}

/*
 * A removed -L: stop listening now.  Its connections already carried are
 * the tunnel's, not the listener's, and keep going; those still waiting
 * for the association point at the front, which is freed once they are
 * over.
 */
static void lfwd_retire(struct client *c, struct front *f)
{
	struct timeval tv = { 0, REAP_INTERVAL_MS * 1000 };
	struct retired_front *r;

	front_stop(f);
	if (front_active(f) == 0) {
		front_free(f);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (c->reaper == NULL)
		c->reaper = event_new(c->base, -1, EV_PERSIST, reap_cb, c);
	if (r == NULL || c->reaper == NULL || event_add(c->reaper, &tv) < 0) {
		/* Cannot wait: leak the small front rather than free it under its connections. */
		log_warn("reload: cannot schedule the cleanup of a removed local forward");
		free(r);
		return;
	}
	r->front = f;
	r->next = c->retired;
	c->retired = r;
}

static int same_lfwd(const struct fwd_spec *a, const struct fwd_spec *b)
{
	return strcmp(a->bind, b->bind) == 0 && a->port == b->port &&
	       strcmp(a->host, b->host) == 0 && a->hostport == b->hostport;
}

/*
 * The -L part of a reload: those gone are closed first (a port may move
 * to another forward), then the new ones listen.  One that cannot listen
 * is logged and left out; the rest apply.
 */
static void reload_local_forwards(struct client *c, const struct fwd_lists *nf)
{
	struct fwd_lists *cur = &c->fw;
	struct front *nfront[CLIENT_MAX_LFWD] = { NULL };
	int kept[CLIENT_MAX_LFWD] = { 0 }, from[CLIENT_MAX_LFWD];
	unsigned i, j, n = 0;

	for (j = 0; j < nf->nlfwd; j++) {
		from[j] = -1;
		for (i = 0; i < cur->nlfwd; i++)
			if (!kept[i] && c->lfront[i] != NULL && same_lfwd(&cur->lfwd[i], &nf->lfwd[j])) {
				kept[i] = 1;
				from[j] = (int)i;
				break;
			}
	}
	for (i = 0; i < cur->nlfwd; i++) {
		if (kept[i] || c->lfront[i] == NULL)
			continue;
		log_notice("reload: local forward -L %s removed (its connections keep going until "
		           "they end)", cur->lfwd_text[i]);
		lfwd_retire(c, c->lfront[i]);
		c->lfront[i] = NULL;
	}
	/* Compact: the kept ones in the new order, then the new ones as they come. */
	for (j = 0; j < nf->nlfwd; j++) {
		if (from[j] < 0)
			continue;
		nfront[n] = c->lfront[from[j]];
		cur->lfwd[n] = cur->lfwd[from[j]];
		memcpy(cur->lfwd_text[n], cur->lfwd_text[from[j]], sizeof(cur->lfwd_text[0]));
		n++;
	}
	for (j = 0; j < nf->nlfwd; j++) {
		if (from[j] >= 0)
			continue;
		cur->lfwd[n] = nf->lfwd[j];
		memcpy(cur->lfwd_text[n], nf->lfwd_text[j], sizeof(cur->lfwd_text[0]));
		if (lfwd_start(c, n, "reload: ") < 0) {
			log_warn("reload: local forward -L %s not added", nf->lfwd_text[j]);
			continue;
		}
		nfront[n] = c->lfront[n];
		n++;
	}
	memcpy(c->lfront, nfront, sizeof(c->lfront));
	cur->nlfwd = n;
}

/*
 * SIGHUP: the forwards (-L, -R, --remote-allow) of the file and the command
 * line, parsed again as at start into a scratch copy, and applied only if
 * all of them are good.  Nothing else is parsed: the other options (the
 * server's name above all, whose resolution would block the tunnel) take
 * effect at restart, as config.c reports.  The file's syntax and keys have
 * been checked in full by then.
 */
static const char *const client_live_keys[] = {
	"local-forward", "remote-forward", "remote-allow", NULL
};

static int client_reload(int argc, char **argv, void *arg)
{
	struct client *c = arg;
	struct fwd_lists *nf = calloc(1, sizeof(*nf));
	struct rfwd_config *old = &c->fw.rcfg, *nr;
	char diff[512];
	int opt, r, rc = -1;

	if (nf == NULL) {
		log_warn("reload: out of memory");
		return -1;
	}
	nr = &nf->rcfg;
	optind = 0;     /* full getopt reset */
	opterr = 1;
	while ((opt = getopt_long(argc, argv, "hvqc:L:R:", client_opts, NULL)) != -1) {
		cli_config_at(optind);
		if (opt == '?')
			goto out;   /* printed by getopt */
		r = fwd_option(nf, opt, optarg);
		if (r < 0) {
			cli_config_blame();
			goto out;
		}
	}
	cli_config_at(-1);
	if (nr->nallow > 0 && nr->n == 0) {
		fprintf(stderr, "sctpt client: --remote-allow only applies to -R\n");
		goto out;
	}
	reload_local_forwards(c, nf);
	nr->connect_timeout = old->connect_timeout;
	nr->resolv_conf = old->resolv_conf;
	cli_cidr_diff(old->allow, old->nallow, nr->allow, nr->nallow, diff, sizeof(diff));
	if (nr->nallow != old->nallow || diff[0] != '\0')
		log_notice("reload: remote-allow %zu -> %zu entries (%s)", old->nallow, nr->nallow,
		           diff[0] != '\0' ? diff : "same ranges");
	rfwd_client_reconfigure(c->up_cfg.rfwd, nr);
	memcpy(old->spec, nr->spec, sizeof(old->spec));
	memcpy(old->text, nr->text, sizeof(old->text));
	old->n = nr->n;
	memcpy(old->allow, nr->allow, sizeof(old->allow));
	old->nallow = nr->nallow;
	log_notice("reload: forwards now: %u local (-L), %u remote (-R), %zu remote-allow "
	           "entries", c->fw.nlfwd, old->n, old->nallow);
	rc = 0;
out:
	cli_config_at(-1);
	free(nf);
	return rc;
}

int client_main(int argc, char **argv)
{
	struct client c;
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	char abuf[128];
	int rc = 1;

	memset(&c, 0, sizeof(c));
	app_tunnel_defaults(&c.up_cfg.tun);
	c.front_cfg.max_conns = 4096;
	c.front_cfg.handshake_timeout = 30;
	c.front_cfg.http = 1;
	c.up_cfg.open_timeout = 5;
	c.up_cfg.tun.mux.udp_rate = 20000;
	c.up_cfg.persistent = 1;
	if (cli_config_expand("client", client_opts, &argc, &argv) < 0)
		return 2;
	if (client_parse(&c, argc, argv) < 0) {
		cli_config_blame();
		return 2;
	}
	opt_set_verbosity(c.log.verbose, c.log.quiet);
	/* The server's address stays out of the logs unless -vvv. */
	if (log_safe_addresses()) {
		if (c.up_cfg.neps > 1)
			snprintf(c.up_cfg.label, sizeof(c.up_cfg.label), "the server (%u paths)",
			         c.up_cfg.neps);
		else
			snprintf(c.up_cfg.label, sizeof(c.up_cfg.label), "the server");
	}
	if (cli_raise_nofile() < (unsigned long)c.front_cfg.max_conns + 64)
		log_warn("open-file limit is below --max-conns; connections may fail");
	c.up_cfg.tun.mux.max_streams = c.front_cfg.max_conns;
	/*
	 * Ask for only the streams we can use (odd ids for --max-conns
	 * connections): usrsctp 0.9.5 walks every outgoing stream on each
	 * output pass, which cost 17% of the sender's CPU at 65535 streams.
	 */
	if (!c.streams_set)
		c.up_cfg.tun.sctp.streams = cli_default_streams(c.front_cfg.max_conns);
	c.front_cfg.busy = client_busy;

	c.base = cli_event_base_new();
	if (c.base == NULL || sctp_global_init(c.base, &c.up_cfg.tun.sctp) < 0) {
		log_err("cannot initialise the event loop or SCTP");
		return 1;
	}
	c.front = front_new(c.base, (struct sockaddr *)&c.socks, c.sockslen,
	                    &c.front_cfg, on_request, &c);
	if (c.front == NULL)
		goto out;
	if (front_local_addr(c.front, &bound, &blen) == 0)
		log_notice("SOCKS listening on %s%s",
		           netaddr_format((struct sockaddr *)&bound, abuf, sizeof(abuf)),
		           c.front_cfg.http ? " (also an HTTP proxy)" : "");
	app_shutdown_init(&c.sd, c.base, client_busy, client_stop, client_close, &c);
	if (start_local_forwards(&c) < 0)
		goto out;
	/* Always: a reload may add -R forwards. */
	c.fw.rcfg.connect_timeout = 10;
	c.up_cfg.rfwd = rfwd_client_new(c.base, &c.fw.rcfg);
	if (c.up_cfg.rfwd == NULL) {
		log_err("cannot set up the remote forwards");
		goto out;
	}
	if (sig_on_exit(c.base, on_signal, &c) < 0 ||
	    cli_config_sighup(c.base, client_reload, &c, client_live_keys) < 0)
		goto out;
	c.up = upstream_new(c.base, &c.up_cfg);
	if (c.up == NULL)
		goto out;
	c.metrics.role = "client";
	c.metrics.sctp = &c.up_cfg.tun.sctp;
	c.metrics.up = c.up;
	if (cli_metrics_start(c.base, &c.metrics_opts, &c.metrics, &c.metrics_srv) < 0)
		goto out;
	event_base_dispatch(c.base);
	rc = 0;
out:
	metrics_server_free(c.metrics_srv);
	/* Streams and waiting requests first: failing them touches the front. */
	upstream_free(c.up);
	rfwd_client_free(c.up_cfg.rfwd);
	front_free(c.front);
	for (unsigned i = 0; i < c.fw.nlfwd; i++)
		front_free(c.lfront[i]);
	while (c.retired != NULL) {
		struct retired_front *r = c.retired;

		c.retired = r->next;
		front_free(r->front);
		free(r);
	}
	if (c.reaper != NULL)
		event_free(c.reaper);
	app_shutdown_release(&c.sd);
	sctp_global_shutdown();
	log_notice("client stopped");
	return rc;
}
