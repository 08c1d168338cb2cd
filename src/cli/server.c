/*
 * `sctpt server`: options, then the server engine (app/server.c) on an
 * event loop until a signal ends it gracefully.
 */
#include "cli/cli.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "app/app.h"
#include "metrics/metrics.h"
#include "crypto/crypto.h"
#include "egress/egress.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/opt.h"
#include "util/sharelink.h"
#include "util/sig.h"
#include "wire/replay.h"
#include "wire/wire.h"

/* The standalone command's state around the shared server. */
struct server_cmd {
	struct event_base *base;
	struct server_params p;
	struct cli_log_opts log;
	struct server *srv;
	struct app_shutdown sd;
	int no_share_link;             /* --no-share-link */
	struct cli_metrics_opts metrics_opts;
	struct app_metrics metrics;
	struct metrics_server *metrics_srv;
	char cert[WIRE_CERT_B64_MAX];  /* for the share link at start */
	char replay_default[REPLAY_PATH_MAX];   /* KEY.replay; the wire layer keeps a pointer */
};

static unsigned cmd_busy(void *arg)
{
	struct server_cmd *cmd = arg;

	return server_busy(cmd->srv);
}

static void cmd_stop(void *arg)
{
	struct server_cmd *cmd = arg;

	server_drain(cmd->srv);
}

static void cmd_close(void *arg)
{
	struct server_cmd *cmd = arg;

	server_close_clients(cmd->srv);
}

static void on_signal(int sig, void *arg)
{
	struct server_cmd *cmd = arg;
	char why[32];

	snprintf(why, sizeof(why), "signal %d", sig);
	if (app_shutdown_begin(&cmd->sd, why) > 0)
		log_notice("second signal: exiting now");
}

static void server_usage(FILE *f)
{
	fprintf(f,
	"Usage: sctpt server --listen URL... --key FILE (--target HOST:PORT |\n"
	"                    --proxy [--allow CIDR]...) [OPTIONS]\n"
	"       sctpt server -c FILE [OPTIONS]\n"
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
	"                       client's session can move between them).\n"
	"                       udp://ADDR:P1-P2 listens on every port of the range\n"
	"                       (one socket each, at most 1024 ports in all) for\n"
	"                       clients that hop between them (--hop-interval)\n"
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
	"  --max-udp N          UDP relay (SOCKS5 UDP ASSOCIATE, proxy mode): UDP\n"
	"                       associations at once per client (default 64; 0 turns\n"
	"                       the UDP relay off)\n"
	"  --udp-idle SECS      end a UDP association after this long without a\n"
	"                       datagram either way (default 120)\n"
	"  --udp-rate N         datagrams per second relayed per client and direction;\n"
	"                       beyond, they are dropped and counted (default 20000;\n"
	"                       0: no limit)\n"
	"  --resolv-conf FILE   name servers for proxy mode (default /etc/resolv.conf)\n"
	"  --replay-file FILE   keep the handshake replay filter in FILE and FILE.prev\n"
	"                       (replaced through FILE.tmp, FILE.prev.tmp), so that\n"
	"                       a handshake captured before a restart gets no answer\n"
	"                       after it (default: KEY.replay, next to the --key file)\n"
	"  --no-replay-file     keep it in memory only: a restart forgets it\n"
	"  --no-share-link      do not log the share link at start (it holds the\n"
	"                       cert=, which lets its holder use this server)\n"
	"  -c, --config FILE    read options from a JSON file (docs/config.md); the\n"
	"                       command line overrides it.  SIGHUP re-reads it and\n"
	"                       applies the log level, --allow, --target/--proxy,\n"
	"                       --connect-timeout, --permit-listen, --gateway-ports\n"
	"                       and --max-listeners (listeners no longer permitted\n"
	"                       are closed; a file with an error changes nothing)\n"
	"  --decoy IP:PORT      a tcp:// connection that does not authenticate is\n"
	"                       spliced, bytes so far included, to this web server\n"
	"                       (a prober sees that site) instead of being drained\n"
	CLI_METRICS_HELP
	"  --permit-listen [ADDR:]PORT  let clients ask this server to listen there\n"
	"                       for them (their -R; docs/forwarding.md).  Repeatable;\n"
	"                       nothing is allowed without it.  PORT 0 allows a port\n"
	"                       the server picks, * any port; ADDR (an IP, [IPv6],\n"
	"                       localhost or *) limits the listening address\n"
	"  --gateway-ports      let -R listen on non-loopback addresses (default:\n"
	"                       loopback only; other requests are refused)\n"
	"  --max-listeners N    remote-forward listeners per client (default 16)\n"
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
	OPT_NO_REPLAY_FILE,
	OPT_NO_SHARE_LINK,
	OPT_DECOY,
	OPT_PERMIT_LISTEN,
	OPT_GATEWAY_PORTS,
	OPT_MAX_LISTENERS,
	/* UDP relay */
	OPT_MAX_UDP,
	OPT_UDP_IDLE,
	OPT_UDP_RATE,
};

static const struct option server_opts[] = {
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
	{ "no-replay-file", no_argument, NULL, OPT_NO_REPLAY_FILE },
	{ "no-share-link", no_argument, NULL, OPT_NO_SHARE_LINK },
	{ "decoy", required_argument, NULL, OPT_DECOY },
	{ "permit-listen", required_argument, NULL, OPT_PERMIT_LISTEN },
	{ "gateway-ports", no_argument, NULL, OPT_GATEWAY_PORTS },
	{ "max-listeners", required_argument, NULL, OPT_MAX_LISTENERS },
	{ "max-udp", required_argument, NULL, OPT_MAX_UDP },
	{ "udp-idle", required_argument, NULL, OPT_UDP_IDLE },
	{ "udp-rate", required_argument, NULL, OPT_UDP_RATE },
	{ "config", required_argument, NULL, 'c' },
	{ "help", no_argument, NULL, 'h' },
	CLI_METRICS_LONGOPTS,
	CLI_TUNNEL_LONGOPTS,
	{ NULL, 0, NULL, 0 }
};

/*
 * The share link of this server at start: the cert= and every listen
 * address clients can use as it is.  A wildcard address (0.0.0.0, ::) is
 * no address a client can dial, and the server does not know its public
 * one, so those paths are left out and the operator is told how to make
 * the full link with keygen --uri.  The link is a credential (it holds
 * cert=), so --no-share-link keeps it out of logs that travel further than
 * the key file does.
 */
static void log_share_link(struct server_cmd *cmd)
{
	struct server_params *p = &cmd->p;
	struct sharelink link;
	struct sockaddr_storage bound;
	char abuf[128], hint[512], buf[SHARELINK_MAX_LEN + 1];
	size_t hn = 0;
	socklen_t blen;

	memset(&link, 0, sizeof(link));
	hint[0] = '\0';
	if (strlen(cmd->cert) != SHARELINK_CERT_LEN)
		return;
	memcpy(link.cert, cmd->cert, SHARELINK_CERT_LEN + 1);
	for (unsigned i = 0; i < p->nlisten && link.npaths < SHARELINK_MAX_PATHS; i++) {
		struct sharelink_path *lp = &link.paths[link.npaths];
		char host[NETADDR_HOST_MAX];

		blen = sizeof(bound);
		if (server_local_addr(cmd->srv, i, &bound, &blen) != 0 ||
		    netaddr_parse_hostport(netaddr_format((struct sockaddr *)&bound, abuf,
		                                          sizeof(abuf)),
		                           host, sizeof(host), &lp->port, 0) < 0)
			continue;
		if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) {
			int w = snprintf(hint + hn, sizeof(hint) - hn, " --uri %s://PUBLIC_IP:%u",
			                 p->listen[i].tcp ? "tcp" : "udp", (unsigned)lp->port);

			if (w > 0 && (size_t)w < sizeof(hint) - hn)
				hn += (size_t)w;
			continue;
		}
		if (strlen(host) >= sizeof(lp->host))
			continue;
		strcpy(lp->host, host);
		lp->tcp = p->listen[i].tcp;
		lp->port_hi = p->listen[i].port_hi;
		link.npaths++;
	}
	if (link.npaths > 0 && sharelink_format(&link, buf, sizeof(buf)) > 0)
		log_notice("share link%s: %s", hn > 0 ? " (without the wildcard listen "
		           "addresses)" : "", buf);
	if (hn > 0)
		log_notice("for a share link with the public address: sctpt keygen --key KEY "
		           "--show%s", hint);
}

static int server_parse(struct server_cmd *cmd, struct server_params *srv,
                        struct cli_log_opts *log, int argc, char **argv)
{
	struct egress_config *e = &srv->egress;
	const char *target = NULL, *key = NULL, *replay = NULL;
	char err[300];
	int proxy = 0, no_replay = 0;
	unsigned long v;
	int opt, r;

	optind = 0;     /* full getopt reset: a SIGHUP reload parses again */
	while ((opt = getopt_long(argc, argv, "hvqc:", server_opts, NULL)) != -1) {
		cli_config_at(optind);
		r = cli_tunnel_option(opt, optarg, &srv->tun, log);
		if (r == 0)
			r = cli_metrics_option("server", opt, optarg, &cmd->metrics_opts);
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
			if (opt_parse_uint(optarg, 1, 100000, &v) < 0)
				goto bad;
			srv->tun.wire.max_peers = (unsigned)v;
			break;
		case OPT_MAX_CONNS:
			if (opt_parse_uint(optarg, 1, 65535, &v) < 0)
				goto bad;
			srv->tun.mux.max_streams = (unsigned)v;
			break;
		case OPT_CONNECT_TIMEOUT:
			if (opt_parse_uint(optarg, 1, 600, &v) < 0)
				goto bad;
			e->connect_timeout = (unsigned)v;
			break;
		case OPT_MAX_UDP:
			if (opt_parse_uint(optarg, 0, 4096, &v) < 0)
				goto bad;
			srv->tun.mux.max_udp = (unsigned)v;
			break;
		case OPT_UDP_IDLE:
			if (opt_parse_uint(optarg, 1, 86400, &v) < 0)
				goto bad;
			e->udp_idle = (unsigned)v;
			break;
		case OPT_UDP_RATE:
			if (opt_parse_uint(optarg, 0, 10000000, &v) < 0)
				goto bad;
			srv->tun.mux.udp_rate = (unsigned)v;
			break;
		case OPT_RESOLV_CONF: srv->resolv_conf = optarg; break;
		case OPT_KEY: key = optarg; break;
		case OPT_PERMIT_LISTEN: {
			const char *perr;

			if (listen_policy_add_permit(&srv->listen_policy, optarg, &perr) < 0) {
				fprintf(stderr, "sctpt server: bad --permit-listen '%s': %s\n", optarg,
				        perr);
				return -1;
			}
			break;
		}
		case OPT_GATEWAY_PORTS: srv->listen_policy.gateway_ports = 1; break;
		case OPT_MAX_LISTENERS:
			if (opt_parse_uint(optarg, 1, 1024, &v) < 0)
				goto bad;
			srv->listen_policy.max_listeners = (unsigned)v;
			break;
		case OPT_REPLAY_FILE: replay = optarg; break;
		case OPT_NO_REPLAY_FILE: no_replay = 1; break;
		case OPT_NO_SHARE_LINK: cmd->no_share_link = 1; break;
		case 'c': break;     /* read by cli_config_expand */
		case OPT_DECOY: {
			char host[256];
			uint16_t port;

			/* A numeric address: no name lookup that could go elsewhere later. */
			if (netaddr_parse_hostport(optarg, host, sizeof(host), &port, 0) < 0 ||
			    netaddr_from_numeric(host, port, &srv->tun.wire.decoy,
			                         &srv->tun.wire.decoy_len) < 0) {
				fprintf(stderr, "sctpt server: --decoy wants IP:PORT or [IPv6]:PORT, "
				        "got '%s'\n", optarg);
				return -1;
			}
			break;
		}
		case 'h':
			server_usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "Try 'sctpt server --help'.\n");
			return -1;
		}
	}
	cli_config_at(-1);
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
	if (wire_cert_encode(&srv->identity.cert, cmd->cert, sizeof(cmd->cert)) < 0)
		cmd->cert[0] = '\0';
	if (replay != NULL && no_replay) {
		fprintf(stderr, "sctpt server: give --replay-file or --no-replay-file, not both\n");
		return -1;
	}
	if (replay == NULL && !no_replay) {
		/* Where the operator keeps the key is where the server may keep state. */
		if ((size_t)snprintf(cmd->replay_default, sizeof(cmd->replay_default), "%s.replay",
		                     key) >= sizeof(cmd->replay_default)) {
			fprintf(stderr, "sctpt server: --key path too long for its replay file; give "
			        "--replay-file\n");
			return -1;
		}
		replay = cmd->replay_default;
	}
	srv->tun.wire.replay_file = replay;
	if (cli_metrics_check("server", &cmd->metrics_opts) < 0)
		return -1;
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

/* Defaults of the options, before the command line (and at every reload). */
static void server_defaults(struct server_params *p)
{
	app_tunnel_defaults(&p->tun);
	p->tun.mux.max_streams = 4096;
	p->egress.connect_timeout = 10;
	listen_policy_defaults(&p->listen_policy);
	p->egress.udp_idle = 120;
	p->tun.mux.udp_rate = 20000;
}

static const char *egress_str(const struct egress_config *e, char *buf, size_t len)
{
	if (e->mode == EGRESS_PROXY)
		snprintf(buf, len, "proxy mode");
	else
		snprintf(buf, len, "target %s:%u", e->target_host, (unsigned)e->target_port);
	return buf;
}

/*
 * SIGHUP: the file and the command line, parsed again in full exactly as at
 * start (every value checked, the key file read), into a scratch copy.  Only
 * if all of it is good are the egress rules swapped in: --allow, --target or
 * --proxy and --connect-timeout, for streams opened from now on.  Whatever
 * else changed is reported by config.c as needing a restart.
 */
static const char *const server_live_keys[] = {
	"allow", "target", "proxy", "connect-timeout",
	"permit-listen", "gateway-ports", "max-listeners", NULL
};

/* A --permit-listen rule as the operator would write it. */
static const char *permit_str(const struct listen_permit *r, char *buf, size_t len)
{
	char port[8];

	snprintf(port, sizeof(port), "%u", (unsigned)r->port);
	if (r->addr[0] == '\0')
		snprintf(buf, len, "%s", r->any_port ? "*" : port);
	else
		snprintf(buf, len, strchr(r->addr, ':') != NULL ? "[%s]:%s" : "%s:%s", r->addr,
		         r->any_port ? "*" : port);
	return buf;
}

static int permit_in(const struct listen_permit *r, const struct listen_policy *p)
{
	for (unsigned i = 0; i < p->npermit; i++)
		if (strcmp(p->permit[i].addr, r->addr) == 0 && p->permit[i].port == r->port &&
		    p->permit[i].any_port == r->any_port)
			return 1;
	return 0;
}

/* "+rule -rule" between two permit lists, as cli_cidr_diff. */
static void permit_diff(const struct listen_policy *from, const struct listen_policy *to,
                        char *buf, size_t len)
{
	char one[NETADDR_HOST_MAX + 16];
	size_t n = 0;
	int w;

	buf[0] = '\0';
	for (int pass = 0; pass < 2; pass++) {
		const struct listen_policy *a = pass == 0 ? to : from, *b = pass == 0 ? from : to;

		for (unsigned i = 0; i < a->npermit; i++) {
			if (permit_in(&a->permit[i], b))
				continue;
			w = snprintf(buf + n, len - n, "%s%c%s", n > 0 ? " " : "",
			             pass == 0 ? '+' : '-', permit_str(&a->permit[i], one, sizeof(one)));
			if (w < 0 || (size_t)w >= len - n) {
				if (len > 4)
					memcpy(buf + len - 4, "...", 4);
				return;
			}
			n += (size_t)w;
		}
	}
}

/*
 * The remote-forward policy part of a reload: log what changed and apply
 * it (new requests, and the listeners it no longer permits are closed).
 * 1 if anything changed.
 */
static int reload_listen_policy(struct server_cmd *cmd, const struct listen_policy *new)
{
	struct listen_policy *old = &cmd->p.listen_policy;
	char diff[512];
	unsigned closed;
	int changed = 0;

	permit_diff(old, new, diff, sizeof(diff));
	if (new->npermit != old->npermit || diff[0] != '\0') {
		log_notice("reload: permit-listen %u -> %u rules (%s)", old->npermit, new->npermit,
		           diff[0] != '\0' ? diff : "same rules");
		changed = 1;
	}
	if (new->gateway_ports != old->gateway_ports) {
		log_notice("reload: gateway-ports %s -> %s", old->gateway_ports ? "on" : "off",
		           new->gateway_ports ? "on" : "off");
		changed = 1;
	}
	if (new->max_listeners != old->max_listeners) {
		log_notice("reload: max-listeners %u -> %u", old->max_listeners, new->max_listeners);
		changed = 1;
	}
	if (!changed)
		return 0;
	closed = server_set_listen_policy(cmd->srv, new);
	if (closed > 0)
		log_notice("reload: %u remote forward%s closed", closed, closed == 1 ? "" : "s");
	memcpy(old->permit, new->permit, sizeof(old->permit));
	old->npermit = new->npermit;
	old->gateway_ports = new->gateway_ports;
	old->max_listeners = new->max_listeners;
	return 1;
}

static int server_reload(int argc, char **argv, void *arg)
{
	struct server_cmd *cmd = arg;
	struct server_cmd *scratch = calloc(1, sizeof(*scratch));
	struct egress_config *old = &cmd->p.egress, *new;
	char a[NETADDR_HOST_MAX + 16], b[NETADDR_HOST_MAX + 16], diff[512];
	int rc, changed = 0;

	if (scratch == NULL) {
		log_warn("reload: out of memory");
		return -1;
	}
	server_defaults(&scratch->p);
	rc = server_parse(scratch, &scratch->p, &scratch->log, argc, argv);
	wc_wipe(&scratch->p.identity, sizeof(scratch->p.identity));
	wc_wipe(scratch->cert, sizeof(scratch->cert));
	if (rc < 0) {
		cli_config_blame();
		free(scratch);
		return -1;
	}
	new = &scratch->p.egress;
	if (new->mode != old->mode || (new->mode == EGRESS_TARGET &&
	    (strcmp(new->target_host, old->target_host) != 0 ||
	     new->target_port != old->target_port))) {
		log_notice("reload: egress %s -> %s", egress_str(old, a, sizeof(a)),
		           egress_str(new, b, sizeof(b)));
		changed = 1;
	}
	cli_cidr_diff(old->allow, old->nallow, new->allow, new->nallow, diff, sizeof(diff));
	if (new->nallow != old->nallow || diff[0] != '\0') {
		log_notice("reload: allow list %zu -> %zu entries (%s)", old->nallow, new->nallow,
		           diff[0] != '\0' ? diff : "same ranges");
		changed = 1;
	}
	if (new->connect_timeout != old->connect_timeout) {
		log_notice("reload: connect timeout %u -> %u s", old->connect_timeout,
		           new->connect_timeout);
		changed = 1;
	}
	if (changed)
		server_set_egress(cmd->srv, new);
	else
		log_notice("reload: egress rules unchanged (%s, allow list %zu entries)",
		           egress_str(old, a, sizeof(a)), old->nallow);
	if (!reload_listen_policy(cmd, &scratch->p.listen_policy))
		log_notice("reload: remote-forward rules unchanged (%u permit-listen rules, "
		           "gateway-ports %s, max-listeners %u)", cmd->p.listen_policy.npermit,
		           cmd->p.listen_policy.gateway_ports ? "on" : "off",
		           cmd->p.listen_policy.max_listeners);
	/* Keep what runs in cmd->p too: the next reload compares with it. */
	old->mode = new->mode;
	memcpy(old->target_host, new->target_host, sizeof(old->target_host));
	old->target_port = new->target_port;
	memcpy(old->allow, new->allow, sizeof(old->allow));
	old->nallow = new->nallow;
	old->connect_timeout = new->connect_timeout;
	free(scratch);
	return 0;
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
	server_defaults(p);
	if (cli_config_expand("server", server_opts, &argc, &argv) < 0)
		return 2;
	if (server_parse(&cmd, p, &cmd.log, argc, argv) < 0) {
		cli_config_blame();
		return 2;
	}
	opt_set_verbosity(cmd.log.verbose, cmd.log.quiet);
	(void)cli_raise_nofile();
	p->listen_policy.max_conns = p->tun.mux.max_streams;

	cmd.base = cli_event_base_new();
	if (cmd.base == NULL || sctp_global_init(cmd.base, &p->tun.sctp) < 0) {
		log_err("cannot initialise the event loop or SCTP");
		return 1;
	}
	cmd.srv = server_start(cmd.base, p);
	wc_wipe(&p->identity, sizeof(p->identity));
	if (cmd.srv == NULL)
		goto out;
	app_shutdown_init(&cmd.sd, cmd.base, cmd_busy, cmd_stop, cmd_close, &cmd);
	if (sig_on_exit(cmd.base, on_signal, &cmd) < 0 ||
	    cli_config_sighup(cmd.base, server_reload, &cmd, server_live_keys) < 0)
		goto out;
	for (unsigned i = 0; i < p->nlisten; i++) {
		blen = sizeof(bound);
		if (server_local_addr(cmd.srv, i, &bound, &blen) != 0)
			continue;
		if (p->listen[i].port_hi != 0)
			log_notice("listening on %s://%s-%u (%s, %u ports)",
			           p->listen[i].tcp ? "tcp" : "udp",
			           netaddr_format((struct sockaddr *)&bound, abuf, sizeof(abuf)),
			           (unsigned)p->listen[i].port_hi,
			           p->egress.mode == EGRESS_PROXY ? "proxy mode" : "fixed target",
			           (unsigned)p->listen[i].port_hi -
			           netaddr_port((struct sockaddr *)&bound) + 1);
		else
			log_notice("listening on %s://%s (%s)", p->listen[i].tcp ? "tcp" : "udp",
			           netaddr_format((struct sockaddr *)&bound, abuf, sizeof(abuf)),
			           p->egress.mode == EGRESS_PROXY ? "proxy mode" : "fixed target");
	}
	cmd.metrics.role = "server";
	cmd.metrics.sctp = &p->tun.sctp;
	cmd.metrics.srv = cmd.srv;
	if (cli_metrics_start(cmd.base, &cmd.metrics_opts, &cmd.metrics, &cmd.metrics_srv) < 0)
		goto out;
	if (!cmd.no_share_link)
		log_share_link(&cmd);
	wc_wipe(cmd.cert, sizeof(cmd.cert));
	event_base_dispatch(cmd.base);
	rc = 0;
out:
	metrics_server_free(cmd.metrics_srv);
	server_free(cmd.srv);
	app_shutdown_release(&cmd.sd);
	sctp_global_shutdown();
	log_notice("server stopped");
	return rc;
}
