/*
 * `sctpt server`: options, then the server engine (app/server.c) on an
 * event loop until a signal ends it gracefully.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "app/app.h"
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
	char cert[WIRE_CERT_B64_MAX];  /* for the share link at start */
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
	"                       command line overrides it.  SIGHUP re-reads its log\n"
	"                       level\n"
	"  --decoy IP:PORT      a tcp:// connection that does not authenticate is\n"
	"                       spliced, bytes so far included, to this web server\n"
	"                       (a prober sees that site) instead of being drained\n"
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
	{ "max-udp", required_argument, NULL, OPT_MAX_UDP },
	{ "udp-idle", required_argument, NULL, OPT_UDP_IDLE },
	{ "udp-rate", required_argument, NULL, OPT_UDP_RATE },
	{ "config", required_argument, NULL, 'c' },
	{ "help", no_argument, NULL, 'h' },
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
	static char replay_default[REPLAY_PATH_MAX];
	const char *target = NULL, *key = NULL, *replay = NULL;
	char err[300];
	int proxy = 0, no_replay = 0;
	unsigned long v;
	int opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "hvqc:", server_opts, NULL)) != -1) {
		cli_config_at(optind);
		r = cli_tunnel_option(opt, optarg, &srv->tun, log);
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
		if ((size_t)snprintf(replay_default, sizeof(replay_default), "%s.replay", key) >=
		    sizeof(replay_default)) {
			fprintf(stderr, "sctpt server: --key path too long for its replay file; give "
			        "--replay-file\n");
			return -1;
		}
		replay = replay_default;
	}
	srv->tun.wire.replay_file = replay;
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

int server_main(int argc, char **argv)
{
	struct server_cmd cmd;
	struct server_params *p = &cmd.p;
	struct sockaddr_storage bound;
	socklen_t blen;
	char abuf[128];
	int rc = 1;

	memset(&cmd, 0, sizeof(cmd));
	app_tunnel_defaults(&p->tun);
	p->tun.mux.max_streams = 4096;
	p->egress.connect_timeout = 10;
	p->egress.udp_idle = 120;
	p->tun.mux.udp_rate = 20000;
	if (cli_config_expand("server", server_opts, &argc, &argv) < 0)
		return 2;
	if (server_parse(&cmd, p, &cmd.log, argc, argv) < 0) {
		cli_config_blame();
		return 2;
	}
	opt_set_verbosity(cmd.log.verbose, cmd.log.quiet);
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
	app_shutdown_init(&cmd.sd, cmd.base, cmd_busy, cmd_stop, cmd_close, &cmd);
	if (sig_on_exit(cmd.base, on_signal, &cmd) < 0 || cli_config_sighup(cmd.base) < 0)
		goto out;
	for (unsigned i = 0; i < p->nlisten; i++) {
		blen = sizeof(bound);
		if (server_local_addr(cmd.srv, i, &bound, &blen) == 0)
			log_notice("listening on %s://%s (%s)", p->listen[i].tcp ? "tcp" : "udp",
			           netaddr_format((struct sockaddr *)&bound, abuf, sizeof(abuf)),
			           p->egress.mode == EGRESS_PROXY ? "proxy mode" : "fixed target");
	}
	if (!cmd.no_share_link)
		log_share_link(&cmd);
	wc_wipe(cmd.cert, sizeof(cmd.cert));
	event_base_dispatch(cmd.base);
	rc = 0;
out:
	server_free(cmd.srv);
	app_shutdown_release(&cmd.sd);
	sctp_global_shutdown();
	log_notice("server stopped");
	return rc;
}
