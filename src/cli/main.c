/*
 * sctpt entry point: dispatches to a subcommand and holds the helpers they
 * share (number parsing, verbosity, signals, file limits).
 */
#include "cli/cli.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <event2/event.h>

#include "impair/impair.h"
#include "util/log.h"
#include "util/netaddr.h"

#ifndef SCTPT_VERSION
#error "SCTPT_VERSION comes from meson.build (project version)"
#endif

static void usage(FILE *f)
{
	fprintf(f,
	"sctpt %s - a censorship-circumvention tunnel over SCTP\n"
	"\n"
	"Usage: sctpt COMMAND [OPTIONS]\n"
	"\n"
	"Commands:\n"
	"  client    SOCKS4/4a/5 listener that tunnels every connection to a server\n"
	"  server    accept tunnels and connect out to a target or, as a proxy,\n"
	"            to the destination each client asks for\n"
	"  keygen    create a server's identity key and print the client's cert=\n"
	"  impair    a man-in-the-middle that adds loss, delay, duplication,\n"
	"            reordering and rate limits (UDP, TCP, or IP between two\n"
	"            network namespaces), controlled by a JSON REST API\n"
	"  version   print the version\n"
	"  help      this text\n"
	"\n"
	"Started by tor with TOR_PT_MANAGED_TRANSPORT_VER set (ClientTransportPlugin /\n"
	"ServerTransportPlugin sctp exec /usr/bin/sctpt), sctpt runs as a pluggable\n"
	"transport in managed mode; see docs/tor.md.\n"
	"\n"
	"Run 'sctpt COMMAND --help' for the options of a command.\n"
	"Example:\n"
	"  sctpt keygen --key /etc/sctpt/key        # prints cert=...\n"
	"  sctpt server --listen udp://0.0.0.0:4433 --key /etc/sctpt/key --proxy\n"
	"  sctpt client --server udp://203.0.113.5:4433 --cert CERT --socks 127.0.0.1:1080\n",
	SCTPT_VERSION);
}

unsigned cli_default_streams(unsigned max_conns)
{
	unsigned long want = 2ul * max_conns + 2;

	return want > 65535 ? 65535 : (unsigned)want;
}

void cli_tunnel_defaults(struct cli_tunnel_opts *t)
{
	memset(t, 0, sizeof(*t));
	mux_config_defaults(&t->mux);
	sctp_tuning_defaults(&t->sctp);
	wire_config_defaults(&t->wire);
}

int cli_tunnel_option(int opt, const char *arg, struct cli_tunnel_opts *t)
{
	unsigned long v;

	switch (opt) {
	case CLI_OPT_WINDOW:
		if (cli_parse_uint(arg, 32768, 64ul << 20, &v) < 0)
			goto bad;
		t->mux.window = (uint32_t)v;
		return 1;
	case CLI_OPT_MTU:
		if (cli_parse_uint(arg, 576, 65507, &v) < 0)
			goto bad;
		t->wire.max_datagram = v;
		return 1;
	case CLI_OPT_STREAMS:
		if (cli_parse_uint(arg, 16, 65535, &v) < 0)
			goto bad;
		t->sctp.streams = (unsigned)v;
		return 1;
	case CLI_OPT_RTO_MIN:
		if (cli_parse_uint(arg, 10, 60000, &v) < 0)
			goto bad;
		t->sctp.rto_min_ms = (unsigned)v;
		if (t->sctp.rto_max_ms < v)
			t->sctp.rto_max_ms = (unsigned)v;
		return 1;
	case CLI_OPT_KEEPALIVE:
		if (cli_parse_uint(arg, 1, 300, &v) < 0)
			goto bad;
		t->sctp.hb_interval_ms = (unsigned)v * 1000;
		return 1;
	case CLI_OPT_SACK_DELAY:
		if (cli_parse_uint(arg, 0, 500, &v) < 0)
			goto bad;
		t->sctp.sack_delay_ms = (unsigned)v;
		return 1;
	case CLI_OPT_PAD:
	case CLI_OPT_PAD_HANDSHAKE: {
		unsigned long lo, hi;
		char buf[32], *colon;

		if (strlen(arg) >= sizeof(buf))
			goto bad;
		strcpy(buf, arg);
		colon = strchr(buf, ':');
		if (colon == NULL)
			goto bad;
		*colon = '\0';
		if (cli_parse_uint(buf, 0, 1300, &lo) < 0 || cli_parse_uint(colon + 1, 0, 1300, &hi) < 0 ||
		    lo > hi)
			goto bad;
		if (opt == CLI_OPT_PAD) {
			t->wire.pad_min = (unsigned)lo;
			t->wire.pad_max = (unsigned)hi;
		} else {
			t->wire.hs_pad_min = (unsigned)lo;
			t->wire.hs_pad_max = (unsigned)hi;
		}
		return 1;
	}
	case 'v':
		t->verbose++;
		return 1;
	case 'q':
		t->quiet++;
		return 1;
	default:
		return 0;
	}
bad:
	fprintf(stderr, "sctpt: bad value '%s' for an option\n", arg);
	return -1;
}

struct event_base *cli_event_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg == NULL)
		return NULL;
	/* Merge enable/disable flips into one epoll_ctl per loop turn. */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

int cli_parse_uint(const char *s, unsigned long min, unsigned long max,
                   unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

void cli_set_verbosity(int verbose, int quiet)
{
	int level = LOG_LEVEL_NOTICE - verbose + quiet;

	if (level < LOG_LEVEL_DEBUG)
		level = LOG_LEVEL_DEBUG;
	if (level > LOG_LEVEL_NONE)
		level = LOG_LEVEL_NONE;
	log_set_level((enum log_level)level);
	log_set_unsafe(verbose >= 3);
}

unsigned long cli_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	return (unsigned long)rl.rlim_cur;
}

struct sig_ctx {
	void (*fn)(int sig, void *arg);
	void *arg;
};

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct sig_ctx *ctx = arg;

	ctx->fn((int)sig, ctx->arg);
}

int cli_on_signal(struct event_base *base, void (*fn)(int sig, void *arg), void *arg)
{
	static struct sig_ctx ctx;
	static const int sigs[] = { SIGINT, SIGTERM };

	ctx.fn = fn;
	ctx.arg = arg;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct event *ev = evsignal_new(base, sigs[i], signal_cb, &ctx);

		if (ev == NULL || event_add(ev, NULL) < 0)
			return -1;
		/* Freed with the process; one of each for the whole run. */
	}
	return 0;
}

int cli_parse_endpoint(const char *what, const char *url, int resolve, int allow_port0,
                       struct wire_endpoint *ep)
{
	char scheme[16], host[NETADDR_HOST_MAX];
	uint16_t port = 0;

	memset(ep, 0, sizeof(*ep));
	if (netaddr_parse_url(url, scheme, sizeof(scheme), host, sizeof(host), &port) < 0 ||
	    (port == 0 && !allow_port0)) {
		fprintf(stderr, "sctpt: bad %s '%s' (want udp://HOST:PORT or tcp://HOST:PORT)\n",
		        what, url);
		return -1;
	}
	if (strcmp(scheme, "udp") == 0) {
		ep->tcp = 0;
	} else if (strcmp(scheme, "tcp") == 0) {
		ep->tcp = 1;
	} else {
		fprintf(stderr, "sctpt: %s '%s': carrier '%s' is not supported (udp or tcp)\n",
		        what, url, scheme);
		return -1;
	}
	if (resolve ? cli_resolve(host, port, &ep->addr, &ep->len) < 0
	            : netaddr_from_numeric(host, port, &ep->addr, &ep->len) < 0) {
		fprintf(stderr, "sctpt: bad %s '%s' (the address must be numeric)\n", what, url);
		return -1;
	}
	return 0;
}

int cli_resolve(const char *host, uint16_t port, struct sockaddr_storage *ss,
                socklen_t *len)
{
	struct addrinfo hints, *res = NULL;
	char portstr[8];
	int r;

	if (netaddr_from_numeric(host, port, ss, len) == 0)
		return 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	snprintf(portstr, sizeof(portstr), "%u", port);
	r = getaddrinfo(host, portstr, &hints, &res);
	if (r != 0 || res == NULL) {
		log_err("cannot resolve %s: %s", host, gai_strerror(r));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = (socklen_t)res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd;

	signal(SIGPIPE, SIG_IGN);
	/* Started by tor as a managed transport: no subcommand, maybe options. */
	if (getenv("TOR_PT_MANAGED_TRANSPORT_VER") != NULL &&
	    (argc < 2 || argv[1][0] == '-'))
		return managed_main(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (strcmp(cmd, "client") == 0)
		return client_main(argc - 1, argv + 1);
	if (strcmp(cmd, "server") == 0)
		return server_main(argc - 1, argv + 1);
	if (strcmp(cmd, "keygen") == 0)
		return keygen_main(argc - 1, argv + 1);
	if (strcmp(cmd, "impair") == 0)
		return impair_main(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("sctpt %s\n", SCTPT_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "sctpt: unknown command '%s'\n\n", cmd);
	usage(stderr);
	return 2;
}
