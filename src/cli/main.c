/*
 * sctpt entry point: dispatches to a subcommand and holds the helpers they
 * share (tunnel options, endpoints, file limits).  Number parsing,
 * verbosity and signals are in util/ (opt.h, sig.h), shared with sctpt-lab.
 */
#include "cli/cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <event2/event.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "util/log.h"
#include "util/netaddr.h"
#include "util/opt.h"
#include "util/portrange.h"

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
	"            (and ssh-style -L / -R port forwards, docs/forwarding.md)\n"
	"  server    accept tunnels and connect out to a target or, as a proxy,\n"
	"            to the destination each client asks for\n"
	"  keygen    create a server's identity key and print the client's cert=\n"
	"            (and with --uri a share link, sctpt://..., for the client)\n"
	"  chain     pluggable-transport combiner, started by tor: stacks transports\n"
	"            (obfs4|sctp) under one name; see 'sctpt chain --help'\n"
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
	"  sctpt client --server udp://203.0.113.5:4433 --cert CERT --socks 127.0.0.1:1080\n"
	"  sctpt client 'sctpt://...'                # a share link instead of the two\n"
	"  sctpt server -c /etc/sctpt/server.json    # options from a JSON file\n"
	"  sctpt server -c server.json --metrics 127.0.0.1:9100  # Prometheus /metrics,\n"
	"                                            # JSON /stats (docs/metrics.md)\n",
	SCTPT_VERSION);
}

unsigned cli_default_streams(unsigned max_conns)
{
	unsigned long want = 2ul * max_conns + 2;

	return want > 65535 ? 65535 : (unsigned)want;
}

int cli_tunnel_option(int opt, const char *arg, struct app_tunnel *t, struct cli_log_opts *log)
{
	unsigned long v;

	switch (opt) {
	case CLI_OPT_WINDOW:
		if (opt_parse_uint(arg, 32768, 64ul << 20, &v) < 0)
			goto bad;
		t->mux.window = (uint32_t)v;
		return 1;
	case CLI_OPT_SESSION_MEMORY:
		if (opt_parse_uint(arg, 1, 16384, &v) < 0)
			goto bad;
		t->mux.mem_budget = (size_t)v << 20;
		return 1;
	case CLI_OPT_MTU:
		if (opt_parse_uint(arg, 576, 65507, &v) < 0)
			goto bad;
		t->wire.max_datagram = v;
		return 1;
	case CLI_OPT_STREAMS:
		if (opt_parse_uint(arg, 16, 65535, &v) < 0)
			goto bad;
		t->sctp.streams = (unsigned)v;
		return 1;
	case CLI_OPT_RTO_MIN:
		if (opt_parse_uint(arg, 10, 60000, &v) < 0)
			goto bad;
		t->sctp.rto_min_ms = (unsigned)v;
		if (t->sctp.rto_max_ms < v)
			t->sctp.rto_max_ms = (unsigned)v;
		return 1;
	case CLI_OPT_KEEPALIVE:
		if (opt_parse_uint(arg, 1, 300, &v) < 0)
			goto bad;
		t->sctp.hb_interval_ms = (unsigned)v * 1000;
		return 1;
	case CLI_OPT_SACK_DELAY:
		if (opt_parse_uint(arg, 0, 500, &v) < 0)
			goto bad;
		t->sctp.sack_delay_ms = (unsigned)v;
		return 1;
	case CLI_OPT_SCTP_ENGINE:
		if (sctp_engine_parse(arg, &t->sctp.engine) < 0) {
			fprintf(stderr, "sctpt: bad --sctp-engine '%s': use native or usrsctp\n",
			        arg);
			return -1;
		}
		return 1;
	case CLI_OPT_CC:
		if (sctp_cc_parse(arg, &t->sctp.cc) < 0) {
			fprintf(stderr, "sctpt: bad --congestion-control '%s': use newreno, cubic or bbr\n",
			        arg);
			return -1;
		}
		return 1;
	case CLI_OPT_BANDWIDTH:
		if (opt_parse_uint(arg, 1, 100000, &v) < 0)
			goto bad;
		t->sctp.bandwidth = (uint64_t)v * 125000;     /* Mbit/s to bytes/s */
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
		if (opt_parse_uint(buf, 0, 1300, &lo) < 0 || opt_parse_uint(colon + 1, 0, 1300, &hi) < 0 ||
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
		if (log == NULL)
			return 0;
		log->verbose++;
		return 1;
	case 'q':
		if (log == NULL)
			return 0;
		log->quiet++;
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

int cli_parse_endpoint(const char *what, const char *url, int resolve, int allow_port0,
                       struct wire_endpoint *ep)
{
	char scheme[16], host[NETADDR_HOST_MAX];
	uint16_t port = 0;
	/* issue 16: a UDP port range, udp://HOST:P1-P2 (port hopping) */
	const char *colon = strrchr(url, ':'), *given = url;
	char first[NETADDR_HOST_MAX + 32];
	uint16_t lo = 0, hi = 0;

	memset(ep, 0, sizeof(*ep));
	if (colon != NULL && strchr(colon, '-') != NULL) {
		const char *err = "address too long";

		if (portrange_parse(colon + 1, strlen(colon + 1), &lo, &hi, &err) < 0 ||
		    (size_t)(colon - url) > NETADDR_HOST_MAX + 16) {
			fprintf(stderr, "sctpt: bad %s '%s': %s\n", what, url, err);
			return -1;
		}
		snprintf(first, sizeof(first), "%.*s:%u", (int)(colon - url), url, (unsigned)lo);
		url = first;
	}
	if (netaddr_parse_url(url, scheme, sizeof(scheme), host, sizeof(host), &port) < 0 ||
	    (port == 0 && !allow_port0)) {
		fprintf(stderr, "sctpt: bad %s '%s' (want udp://HOST:PORT or tcp://HOST:PORT)\n",
		        what, url);
		return -1;
	}
	if (strcmp(scheme, "udp") == 0) {
		ep->tcp = 0;
		ep->port_hi = hi;
	} else if (strcmp(scheme, "tcp") == 0 && hi != 0) {
		fprintf(stderr, "sctpt: bad %s '%s': port ranges are for udp:// only\n", what,
		        given);
		return -1;
	} else if (strcmp(scheme, "tcp") == 0) {
		ep->tcp = 1;
	} else {
		fprintf(stderr, "sctpt: %s '%s': carrier '%s' is not supported (udp or tcp)\n",
		        what, url, scheme);
		return -1;
	}
	if (resolve ? opt_resolve(host, port, &ep->addr, &ep->len) < 0
	            : netaddr_from_numeric(host, port, &ep->addr, &ep->len) < 0) {
		fprintf(stderr, "sctpt: bad %s '%s' (the address must be numeric)\n", what, url);
		return -1;
	}
	return 0;
}

/*
 * Issue 11, datapath: glibc's adaptive thresholds let the heap top shrink
 * and grow again under the 64 KiB messages a bulk transfer allocates and
 * frees, so in some runs every byte sent landed in a freshly faulted,
 * zeroed page (240 page faults per MB, a quarter of the client's CPU on
 * an upload; docs/internals.md, "Performance").  Fixed thresholds keep up
 * to 4 MiB of free heap and put only allocations of 1 MiB or more in
 * their own mappings.  GLIBC_TUNABLES, if set, wins.
 */
static void malloc_tune(void)
{
#ifdef __GLIBC__
	if (getenv("GLIBC_TUNABLES") != NULL)
		return;
	(void)mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	(void)mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);
#endif
}

int main(int argc, char **argv)
{
	const char *cmd;

	malloc_tune();
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
	if (strcmp(cmd, "chain") == 0)
		return chain_main(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("sctpt %s\n", SCTPT_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "sctpt: unknown command '%s'\n", cmd);
	if (strcmp(cmd, "impair") == 0)
		fprintf(stderr, "(the impairment lab is the other binary: sctpt-lab impair)\n");
	fputc('\n', stderr);
	usage(stderr);
	return 2;
}
