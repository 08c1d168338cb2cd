/*
 * `sctpt-lab impair` command line: options, help, and wiring of the engine,
 * one relay (datagram, stream or IP-level) and the REST API on one
 * libevent loop.
 */
#include "lab/impair/impair.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <event2/event.h>

#include "lab/impair/impair_internal.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/opt.h"
#include "util/sig.h"

static void usage(FILE *f)
{
	fprintf(f,
	"Usage: sctpt-lab impair --listen udp://ADDR:PORT --upstream udp://HOST:PORT [OPTIONS]\n"
	"       sctpt-lab impair --listen tcp://ADDR:PORT --upstream tcp://HOST:PORT [OPTIONS]\n"
	"       sctpt-lab impair --tun NS_A:ADDR/PREFIX --tun NS_B:ADDR/PREFIX [OPTIONS]\n"
	"\n"
	"A man-in-the-middle for studying a protocol under a bad network.  It\n"
	"impairs each direction on its own: c2s (client side -> upstream, or\n"
	"namespace A -> B) and s2c (back).\n"
	"\n"
	"Modes:\n"
	"  --listen udp://ADDR:PORT --upstream udp://HOST:PORT\n"
	"                       datagram relay.  Each client address gets its own\n"
	"                       upstream socket (source port), like a NAT; flows\n"
	"                       expire after --flow-idle.  All impairments apply.\n"
	"  --listen tcp://ADDR:PORT --upstream tcp://HOST:PORT\n"
	"                       stream relay: delay (+ jitter, order kept), rate\n"
	"                       and blackhole (stop forwarding, lose nothing) per\n"
	"                       direction; loss, dup and reorder do not apply.\n"
	"  --tun NS_A:ADDR/PREFIX --tun NS_B:ADDR/PREFIX\n"
	"                       IP level: create a TUN device in each existing\n"
	"                       network namespace (/var/run/netns/NAME, e.g. from\n"
	"                       'ip netns add'), give it ADDR/PREFIX and bring it\n"
	"                       up; packets from A's TUN are impaired (c2s) and\n"
	"                       written to B's, and back (s2c).  Any protocol.\n"
	"                       The devices disappear when impair exits.\n"
	"  --tun-dev NAME       name of both TUN devices (default impair0)\n"
	"  --tun-mtu BYTES      their MTU (576..65535, default 1500)\n"
	"\n"
	"Impairments (both directions; --c2s-OPTION / --s2c-OPTION for one):\n"
	"  --loss P             drop each packet with probability P (0..1)\n"
	"  --delay MS           add MS milliseconds one way (0..60000)\n"
	"  --jitter MS          vary the delay of each packet: uniform within\n"
	"                       +-MS, or with --jitter-dist normal a normal\n"
	"                       deviate of standard deviation MS (bounded at 6 MS);\n"
	"                       never below 0.  Packets are delayed independently,\n"
	"                       so jitter larger than their spacing reorders them\n"
	"  --jitter-dist uniform|normal  (default uniform)\n"
	"  --dup P              send each packet twice with probability P\n"
	"  --reorder P          hold each packet back by --reorder-delay with\n"
	"                       probability P, so later ones overtake it\n"
	"  --reorder-delay MS   (default 20)\n"
	"  --rate BPS           bottleneck of BPS bits/s (k, M, G: x1000), 0 for\n"
	"                       none (default); packets wait in a queue of\n"
	"  --queue BYTES        bytes (k, M: x1024; default 128k, 1500..64M) and\n"
	"                       are dropped when it is full (queue_drops)\n"
	"  --blackhole          drop everything (stream mode: stall)\n"
	"  --burst LOSS:LENGTH  bursty loss (Gilbert model): mean loss rate LOSS,\n"
	"                       bursts of LENGTH packets on average (0.02:4)\n"
	"  --ge-p P --ge-r R --ge-loss-good K --ge-loss-bad H\n"
	"                       the Gilbert-Elliott model itself: good->bad P,\n"
	"                       bad->good R per packet, loss K in the good state,\n"
	"                       H in the bad one (defaults 0, 1, 0, 1: off)\n"
	"  Order per packet: blackhole, loss, bursty loss, rules that drop, dup,\n"
	"  then per copy rate, delay + jitter, reorder (rules add to each).\n"
	"\n"
	"Presets and rules:\n"
	"  --preset NAME        start from a typical link, in both directions:\n"
	"                       none, 3g, lte, dsl, satellite, lossy-wifi (GET\n"
	"                       /presets shows the numbers); other options change\n"
	"                       it, wherever they stand\n"
	"  --rule JSON          a named rule, as POST /rules takes it; repeat for\n"
	"                       more (at most 32), e.g. '{\"name\": \"slow\",\n"
	"                       \"kind\": \"delay\", \"params\": {\"delay_ms\": 200},\n"
	"                       \"toxicity\": 0.5}'\n"
	"\n"
	"Control:\n"
	"  --api ADDR:PORT      serve the REST API here (port 0: any free port,\n"
	"                       logged).  Loopback only unless --api-public\n"
	"  --api-public         allow a non-loopback --api address (give --api-token)\n"
	"  --api-token FILE     require \"Authorization: Bearer TOKEN\" on every API\n"
	"                       request, TOKEN being FILE's first line (16..256\n"
	"                       printable characters); without it, the API relies\n"
	"                       on the Host, Origin and Content-Type checks alone\n"
	"  --seed N             seed of the random choices (default: random, and\n"
	"                       logged); the same seed, settings and input give\n"
	"                       the same losses, duplicates and delays\n"
	"\n"
	"Limits:\n"
	"  --max-flows N        datagram flows or TCP connections at once\n"
	"                       (1..65536, default 1024); beyond, new clients'\n"
	"                       datagrams are dropped / connections reset\n"
	"  --flow-idle SECS     a datagram flow without traffic either way for\n"
	"                       this long is forgotten, like a NAT binding\n"
	"                       (1..86400, default 60)\n"
	"  --max-pending N      packets held in the delay line at once (16..10^6,\n"
	"                       default 100000); beyond, dropped_overflow\n"
	"  --max-pending-bytes BYTES  the same in bytes (k, M, G: x1024;\n"
	"                       default 64M, at most 1G)\n"
	"  --tcp-buffer BYTES   bytes held per TCP connection and direction\n"
	"                       (4k..16M, default 256k); when full, impair stops\n"
	"                       reading that side\n"
	"  -v, --verbose        more log output (-vv debug)\n"
	"  -q, --quiet          less log output\n"
	"  -h, --help           this help\n"
	"\n"
	"REST API (JSON; errors are 400 with {\"error\": \"...\"} and change nothing).\n"
	"Refused, against web pages in a browser: a Host other than the API's\n"
	"ADDR:PORT (or localhost:PORT on loopback), or a foreign Origin (403); a\n"
	"PUT/POST body without Content-Type: application/json (415); with\n"
	"--api-token, no \"Authorization: Bearer TOKEN\" (401).\n"
	"  GET  /settings       {\"c2s\": {...}, \"s2c\": {...}} with the fields\n"
	"                       loss, dup, reorder (0..1), delay_ms, jitter_ms,\n"
	"                       reorder_ms (0..60000), jitter (\"uniform\"|\"normal\"),\n"
	"                       rate_bps (0..1e11), queue_bytes, blackhole (bool)\n"
	"  PUT  /settings       (or POST) a partial update, applied at once:\n"
	"                       {\"c2s\": {\"loss\": 0.05}, \"both\": {\"delay_ms\": 20}}\n"
	"  GET  /stats          per direction: seen, forwarded, dropped,\n"
	"                       duplicated, delayed, reordered, pending, bytes_seen,\n"
	"                       bytes_forwarded, dropped_loss, dropped_blackhole,\n"
	"                       queue_drops, dropped_overflow, dropped_other;\n"
	"                       seen + duplicated = forwarded + dropped + pending\n"
	"  GET  /flows          datagram flows: id, client, upstream_port, ...\n"
	"  POST /rebind         {\"flow\": ID}, or {} for every flow: switch to a\n"
	"                       new upstream socket (a NAT rebinding)\n"
	"  GET  /rules          the named rules with their counters\n"
	"  POST /rules          add one: {\"name\", \"direction\": c2s|s2c|both,\n"
	"                       \"kind\": loss|delay|duplicate|reorder|rate|\n"
	"                       blackhole|burst|corrupt, \"params\": {...},\n"
	"                       \"toxicity\": 0..1, \"scope\": flow|packet}; 409 if\n"
	"                       the name exists\n"
	"  GET|PUT|DELETE /rules/NAME  read, create or replace, remove one rule\n"
	"  POST /reset          remove every rule and impairment; {\"counters\":\n"
	"                       true} zeroes the counters too (else they stay)\n"
	"  GET  /presets        the presets and their settings\n"
	"  POST /preset         {\"name\": NAME}: the settings of a preset (rules stay)\n"
	"  GET  /metrics        Prometheus text format: the counters per direction\n"
	"                       and per rule\n"
	"  Rules add to the settings; docs/impair.md says exactly how.\n"
	"\n"
	"Examples:\n"
	"  sctpt-lab impair --listen udp://127.0.0.1:5000 --upstream udp://127.0.0.1:4433 \\\n"
	"      --loss 0.05 --delay 20 --jitter 5 --api 127.0.0.1:8080\n"
	"  curl -X PUT -d '{\"s2c\": {\"blackhole\": true}}' http://127.0.0.1:8080/settings\n"
	"  ip netns add A; ip netns add B\n"
	"  sctpt-lab impair --tun A:10.77.0.1/24 --tun B:10.77.0.2/24 --loss 0.02 --delay 25\n"
	"  ip netns exec A ping 10.77.0.2\n");
}

/* Per-direction options: name on the command line, JSON field. */
static const struct {
	const char *opt;
	const char *key;
	int flag;
} dir_opts[] = {
	{ "loss", "loss", 0 },
	{ "delay", "delay_ms", 0 },
	{ "jitter", "jitter_ms", 0 },
	{ "jitter-dist", "jitter", 0 },
	{ "dup", "dup", 0 },
	{ "reorder", "reorder", 0 },
	{ "reorder-delay", "reorder_ms", 0 },
	{ "rate", "rate_bps", 0 },
	{ "queue", "queue_bytes", 0 },
	{ "blackhole", "blackhole", 1 },
	{ "burst", "burst", 0 },
	{ "ge-p", "ge_p", 0 },
	{ "ge-r", "ge_r", 0 },
	{ "ge-loss-good", "ge_loss_good", 0 },
	{ "ge-loss-bad", "ge_loss_bad", 0 },
};
#define NDIR_OPTS (sizeof(dir_opts) / sizeof(dir_opts[0]))
#define OPT_DIR_BASE 2000        /* + 3 * index + (0 both, 1 c2s, 2 s2c) */

enum {
	OPT_LISTEN = 1000,        /* above every short option character */
	OPT_UPSTREAM,
	OPT_TUN,
	OPT_TUN_DEV,
	OPT_TUN_MTU,
	OPT_API,
	OPT_API_PUBLIC,
	OPT_API_TOKEN,
	OPT_SEED,
	OPT_MAX_FLOWS,
	OPT_FLOW_IDLE,
	OPT_MAX_PENDING,
	OPT_MAX_PENDING_BYTES,
	OPT_TCP_BUFFER,
	OPT_PRESET,
	OPT_RULE,
};

struct impair_opts {
	const char *listen, *upstream, *api, *api_token;
	int api_public;
	struct impair_tun_config tun;
	int ntun;
	int have_seed;
	uint64_t seed;
	unsigned long max_flows, flow_idle, max_pending;
	uint64_t max_pending_bytes, tcp_buffer;
	struct impair_settings set;
	struct impair_rules rules;        /* --rule, in order */
	int verbose, quiet;
};

struct impair_run {
	struct event_base *base;
	struct impair_engine *engine;
	struct impair_udp *udp;
	struct impair_tcp *tcp;
	struct impair_tun *tun;
	struct impair_api *api;
	struct impair_api_ctx ctx;
	char token[IMPAIR_TOKEN_MAX + 1];
};

static struct option *build_longopts(void)
{
	static const struct option fixed[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "upstream", required_argument, NULL, OPT_UPSTREAM },
		{ "tun", required_argument, NULL, OPT_TUN },
		{ "tun-dev", required_argument, NULL, OPT_TUN_DEV },
		{ "tun-mtu", required_argument, NULL, OPT_TUN_MTU },
		{ "api", required_argument, NULL, OPT_API },
		{ "api-public", no_argument, NULL, OPT_API_PUBLIC },
		{ "api-token", required_argument, NULL, OPT_API_TOKEN },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "max-flows", required_argument, NULL, OPT_MAX_FLOWS },
		{ "flow-idle", required_argument, NULL, OPT_FLOW_IDLE },
		{ "max-pending", required_argument, NULL, OPT_MAX_PENDING },
		{ "max-pending-bytes", required_argument, NULL, OPT_MAX_PENDING_BYTES },
		{ "tcp-buffer", required_argument, NULL, OPT_TCP_BUFFER },
		{ "preset", required_argument, NULL, OPT_PRESET },
		{ "rule", required_argument, NULL, OPT_RULE },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
	};
	static char names[NDIR_OPTS * 3][32];
	size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
	struct option *o = calloc(nfixed + NDIR_OPTS * 3 + 1, sizeof(*o));
	size_t k = nfixed;

	if (o == NULL)
		return NULL;
	memcpy(o, fixed, sizeof(fixed));
	for (size_t i = 0; i < NDIR_OPTS; i++) {
		static const char *const prefix[] = { "", "c2s-", "s2c-" };

		for (int d = 0; d < 3; d++) {
			snprintf(names[i * 3 + d], sizeof(names[0]), "%s%s", prefix[d], dir_opts[i].opt);
			o[k].name = names[i * 3 + d];
			o[k].has_arg = dir_opts[i].flag ? no_argument : required_argument;
			o[k].flag = NULL;
			o[k].val = OPT_DIR_BASE + (int)(i * 3) + d;
			k++;
		}
	}
	return o;
}

static int dir_option(struct impair_opts *o, int val, const char *arg)
{
	size_t i = (size_t)(val - OPT_DIR_BASE) / 3;
	int which = (val - OPT_DIR_BASE) % 3;
	json_t *v = impair_option_value(dir_opts[i].key, arg);
	char err[200];
	int r = 0;

	if (v == NULL) {
		fprintf(stderr, "sctpt-lab impair: bad value '%s' for --%s\n", arg ? arg : "",
		        dir_opts[i].opt);
		return -1;
	}
	for (int d = 0; d < 2; d++) {
		if (which != 0 && which != d + 1)
			continue;
		if (impair_dir_set(&o->set.dir[d], dir_opts[i].key, v, err, sizeof(err)) < 0) {
			fprintf(stderr, "sctpt-lab impair: --%s%s: %s\n",
			        which ? (d == IMPAIR_C2S ? "c2s-" : "s2c-") : "", dir_opts[i].opt, err);
			r = -1;
			break;
		}
	}
	json_decref(v);
	return r;
}

/* One option that is not a per-direction impairment: 0, 1 for --help, -1 bad (printed). */
static int fixed_option(struct impair_opts *o, int opt, const char *arg)
{
	char err[200];

	switch (opt) {
	case OPT_LISTEN:
		o->listen = arg;
		return 0;
	case OPT_UPSTREAM:
		o->upstream = arg;
		return 0;
	case OPT_TUN:
		if (o->ntun >= 2) {
			fprintf(stderr, "sctpt-lab impair: --tun is given exactly twice\n");
			return -1;
		}
		if (impair_tun_parse(arg, &o->tun.end[o->ntun], err, sizeof(err)) < 0) {
			fprintf(stderr, "sctpt-lab impair: %s\n", err);
			return -1;
		}
		o->ntun++;
		return 0;
	case OPT_TUN_DEV:
		if (strlen(arg) == 0 || strlen(arg) >= sizeof(o->tun.dev) ||
		    strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                "0123456789-_.") != strlen(arg)) {
			fprintf(stderr, "sctpt-lab impair: bad --tun-dev name (1..15 of [A-Za-z0-9-_.])\n");
			return -1;
		}
		strcpy(o->tun.dev, arg);
		return 0;
	case OPT_TUN_MTU: {
		unsigned long v;

		if (opt_parse_uint(arg, 576, 65535, &v) < 0)
			goto bad;
		o->tun.mtu = (unsigned)v;
		return 0;
	}
	case OPT_API:
		o->api = arg;
		return 0;
	case OPT_API_PUBLIC:
		o->api_public = 1;
		return 0;
	case OPT_API_TOKEN:
		o->api_token = arg;
		return 0;
	case OPT_SEED: {
		char *end;

		errno = 0;
		if (arg[0] < '0' || arg[0] > '9')
			goto bad;
		o->seed = strtoull(arg, &end, 10);
		if (errno != 0 || *end != '\0' || o->seed > 0x7fffffffffffffffULL)
			goto bad;
		o->have_seed = 1;
		return 0;
	}
	case OPT_MAX_FLOWS:
		return opt_parse_uint(arg, 1, 65536, &o->max_flows) < 0 ? -2 : 0;
	case OPT_FLOW_IDLE:
		return opt_parse_uint(arg, 1, 86400, &o->flow_idle) < 0 ? -2 : 0;
	case OPT_MAX_PENDING:
		return opt_parse_uint(arg, 16, 1000000, &o->max_pending) < 0 ? -2 : 0;
	case OPT_MAX_PENDING_BYTES:
		if (impair_parse_scaled(arg, 1024, &o->max_pending_bytes) < 0 ||
		    o->max_pending_bytes < 65536 || o->max_pending_bytes > (1ULL << 30))
			goto bad;
		return 0;
	case OPT_TCP_BUFFER:
		if (impair_parse_scaled(arg, 1024, &o->tcp_buffer) < 0 ||
		    o->tcp_buffer < 4096 || o->tcp_buffer > (16ULL << 20))
			goto bad;
		return 0;
	case OPT_PRESET:
		return 0;               /* the first pass applied it */
	case OPT_RULE: {
		struct impair_rule r;

		if (impair_rule_parse_text(arg, strlen(arg), NULL, &r, err, sizeof(err)) < 0) {
			fprintf(stderr, "sctpt-lab impair: --rule: %s\n", err);
			return -1;
		}
		if (impair_rules_put(&o->rules, &r, 0, 0) < 0) {
			fprintf(stderr, "sctpt-lab impair: --rule %s: the name is taken or there are "
			        "%d rules already\n", r.name, IMPAIR_MAX_RULES);
			return -1;
		}
		return 0;
	}
	case 'v':
		o->verbose++;
		return 0;
	case 'q':
		o->quiet++;
		return 0;
	case 'h':
		usage(stdout);
		return 1;
	default:
		if (opt >= OPT_DIR_BASE && opt < OPT_DIR_BASE + (int)NDIR_OPTS * 3)
			return dir_option(o, opt, arg);
		fprintf(stderr, "Run 'sctpt-lab impair --help' for the options.\n");
		return -1;
	}
bad:
	return -2;
}

static void opts_defaults(struct impair_opts *o)
{
	memset(o, 0, sizeof(*o));
	impair_settings_defaults(&o->set);
	impair_rules_init(&o->rules);
	snprintf(o->tun.dev, sizeof(o->tun.dev), "impair0");
	o->tun.mtu = 1500;
	o->max_flows = 1024;
	o->flow_idle = 60;
	o->max_pending = 100000;
	o->max_pending_bytes = 64u << 20;
	o->tcp_buffer = 256u << 10;
}

/* Which mode the options ask for, and are they coherent?  0 or -1 (printed). */
static int opts_check(const struct impair_opts *o)
{
	if (o->ntun == 0 && (o->listen == NULL || o->upstream == NULL)) {
		fprintf(stderr, "sctpt-lab impair: give --listen and --upstream, or --tun twice "
		        "(see --help)\n");
		return -1;
	}
	if (o->ntun != 0 && (o->ntun != 2 || o->listen || o->upstream)) {
		fprintf(stderr, "sctpt-lab impair: IP-level mode takes --tun twice and no "
		        "--listen/--upstream\n");
		return -1;
	}
	if (o->ntun == 2 && strcmp(o->tun.end[0].ns, o->tun.end[1].ns) == 0) {
		fprintf(stderr, "sctpt-lab impair: the two --tun need different namespaces\n");
		return -1;
	}
	return 0;
}

/* 0 to run, 1 after --help, -1 on a bad command line (printed). */
static int parse_opts(int argc, char **argv, struct impair_opts *o)
{
	struct option *longopts = build_longopts();
	int opt, r = 0;

	if (longopts == NULL)
		return -1;
	opts_defaults(o);
	/*
	 * First pass: --preset, so that it is the base every other option
	 * changes, wherever it stands on the line.  Errors wait for the second.
	 */
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "vqh", longopts, NULL)) != -1) {
		if (opt == OPT_PRESET && impair_preset_apply(optarg, &o->set) < 0) {
			fprintf(stderr, "sctpt-lab impair: no preset '%s' (there are: %s)\n", optarg,
			        impair_preset_names());
			free(longopts);
			return -1;
		}
	}
	optind = 0;
	opterr = 1;
	while (r == 0 && (opt = getopt_long(argc, argv, "vqh", longopts, NULL)) != -1) {
		r = fixed_option(o, opt, optarg);
		if (r == -2) {
			fprintf(stderr, "sctpt-lab impair: bad value '%s' for an option\n", optarg);
			r = -1;
		}
	}
	free(longopts);
	if (r != 0)
		return r;
	if (optind < argc) {
		fprintf(stderr, "sctpt-lab impair: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return opts_check(o);
}

/* "udp://host:port" into scheme and address.  0 or -1 (message printed). */
static int parse_endpoint(const char *what, const char *url, char *scheme, size_t schemelen,
                          struct sockaddr_storage *ss, socklen_t *len)
{
	char host[NETADDR_HOST_MAX];
	uint16_t port;

	if (netaddr_parse_url(url, scheme, schemelen, host, sizeof(host), &port) < 0 ||
	    (strcmp(scheme, "udp") != 0 && strcmp(scheme, "tcp") != 0)) {
		fprintf(stderr, "sctpt-lab impair: %s wants udp://HOST:PORT or tcp://HOST:PORT, not '%s'\n",
		        what, url);
		return -1;
	}
	return opt_resolve(host, port, ss, len);
}

static int is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return 0;
}

static void on_signal(int sig, void *arg)
{
	struct impair_run *run = arg;

	log_notice("impair: signal %d, exiting", sig);
	event_base_loopexit(run->base, NULL);
}

static struct event_base *base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg == NULL)
		return NULL;
	/* Delays are the product here: timerfd-precise timers, not 1 ms epoll ticks. */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

static void log_settings(const struct impair_settings *s)
{
	json_t *j = impair_settings_to_json(s);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (text)
		log_info("impair: settings %s", text);
	free(text);
	json_decref(j);
}

/*
 * Read the --api-token file: at most a few KiB, its first line is the
 * token.  0, or -1 (logged).
 */
static int load_token(const char *path, char *out, size_t outlen)
{
	char text[4096], err[160];
	struct stat st;
	ssize_t n;
	int fd;

	/* Non-blocking: a FIFO named by mistake must not hang the start. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		log_err("impair: cannot read --api-token %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		log_err("impair: --api-token %s is not a regular file", path);
		return -1;
	}
	if ((st.st_mode & 0044) != 0)
		log_warn("impair: --api-token %s can be read by other users (chmod 600 it)", path);
	n = read(fd, text, sizeof(text));
	close(fd);
	if (n < 0) {
		log_err("impair: cannot read --api-token %s: %s", path, strerror(errno));
		return -1;
	}
	if (impair_access_token_parse(text, (size_t)n, out, outlen, err, sizeof(err)) < 0) {
		explicit_bzero(text, sizeof(text));
		log_err("impair: --api-token %s: %s", path, err);
		return -1;
	}
	explicit_bzero(text, sizeof(text));
	return 0;
}

static int start(struct impair_run *run, struct impair_opts *o)
{
	char buf[128], scheme[16], scheme2[16];
	struct sockaddr_storage ss;
	socklen_t len;

	if (!o->have_seed) {
		if (getrandom(&o->seed, sizeof(o->seed), 0) != (ssize_t)sizeof(o->seed))
			o->seed = (uint64_t)impair_now_us();
		o->seed &= 0x7fffffffffffffffULL;
	}
	run->engine = impair_engine_new(run->base, &o->set, o->seed, o->max_pending,
	                                o->max_pending_bytes);
	if (run->engine == NULL)
		return -1;
	log_notice("impair: seed %llu (--seed %llu repeats this run's random choices)",
	           (unsigned long long)o->seed, (unsigned long long)o->seed);
	log_settings(&o->set);
	/* --rule: seeded now that the seed is known */
	for (size_t i = 0; i < o->rules.n; i++) {
		(void)impair_rules_put(impair_engine_rules(run->engine), &o->rules.r[i], 0, o->seed);
		log_info("impair: rule %s (%s)", o->rules.r[i].name,
		         impair_rule_kind_name(o->rules.r[i].kind));
	}
	if (o->ntun == 2) {
		run->tun = impair_tun_new(run->base, run->engine, &o->tun);
		if (run->tun == NULL)
			return -1;
		run->ctx.mode = "tun";
		log_notice("impair: IP level between namespace %s (%s) and %s (%s) on TUN %s",
		           o->tun.end[0].ns, o->tun.end[0].addr, o->tun.end[1].ns, o->tun.end[1].addr,
		           o->tun.dev);
	} else {
		struct impair_udp_config uc;
		struct impair_tcp_config tc;

		memset(&uc, 0, sizeof(uc));
		memset(&tc, 0, sizeof(tc));
		if (parse_endpoint("--listen", o->listen, scheme, sizeof(scheme), &uc.listen,
		                   &uc.listenlen) < 0 ||
		    parse_endpoint("--upstream", o->upstream, scheme2, sizeof(scheme2), &uc.upstream,
		                   &uc.upstreamlen) < 0)
			return -1;
		if (strcmp(scheme, scheme2) != 0) {
			log_err("impair: --listen and --upstream must both be udp:// or both tcp://");
			return -1;
		}
		if (strcmp(scheme, "udp") == 0) {
			uc.max_flows = (unsigned)o->max_flows;
			uc.flow_idle_s = (unsigned)o->flow_idle;
			run->udp = impair_udp_new(run->base, run->engine, &uc);
			if (run->udp == NULL)
				return -1;
			impair_udp_local(run->udp, &ss, &len);
			run->ctx.mode = "udp";
		} else {
			tc.listen = uc.listen;
			tc.listenlen = uc.listenlen;
			tc.upstream = uc.upstream;
			tc.upstreamlen = uc.upstreamlen;
			tc.max_conns = (unsigned)o->max_flows;
			tc.buffer = (size_t)o->tcp_buffer;
			run->tcp = impair_tcp_new(run->base, run->engine, &tc);
			if (run->tcp == NULL)
				return -1;
			impair_tcp_local(run->tcp, &ss, &len);
			run->ctx.mode = "tcp";
		}
		log_notice("impair: relaying %s://%s -> %s", scheme,
		           netaddr_format((struct sockaddr *)&ss, buf, sizeof(buf)), o->upstream);
	}
	run->ctx.engine = run->engine;
	run->ctx.udp = run->udp;
	run->ctx.tcp = run->tcp;
	run->ctx.tun = run->tun;
	if (o->api != NULL) {
		char host[NETADDR_HOST_MAX];
		uint16_t port;

		if (netaddr_parse_hostport(o->api, host, sizeof(host), &port, 1) < 0 ||
		    netaddr_from_numeric(host, port, &ss, &len) < 0) {
			log_err("impair: --api wants a numeric ADDR:PORT, not '%s'", o->api);
			return -1;
		}
		if (!o->api_public && !is_loopback((struct sockaddr *)&ss)) {
			log_err("impair: --api %s is not a loopback address (add --api-public, and "
			        "--api-token, to insist)", o->api);
			return -1;
		}
		if (o->api_token != NULL) {
			if (load_token(o->api_token, run->token, sizeof(run->token)) < 0)
				return -1;
			run->ctx.token = run->token;
		} else if (o->api_public) {
			log_warn("impair: the API on %s takes requests from anyone who can reach "
			         "it; give --api-token FILE", o->api);
		}
		run->api = impair_api_new(run->base, (struct sockaddr *)&ss, len, &run->ctx);
		if (run->api == NULL) {
			log_err("impair: cannot serve the API on %s: %s", o->api, strerror(errno));
			return -1;
		}
		if (ss.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&ss)->sin6_port = htons(impair_api_port(run->api));
		else
			((struct sockaddr_in *)&ss)->sin_port = htons(impair_api_port(run->api));
		log_notice("impair: API on http://%s/",
		           netaddr_format((struct sockaddr *)&ss, buf, sizeof(buf)));
	}
	return 0;
}

int impair_main(int argc, char **argv)
{
	struct impair_opts o;
	struct impair_run run;
	int r;

	r = parse_opts(argc, argv, &o);
	if (r != 0)
		return r > 0 ? 0 : 2;
	opt_set_verbosity(o.verbose, o.quiet);
	memset(&run, 0, sizeof(run));
	run.base = base_new();
	if (run.base == NULL) {
		log_err("impair: cannot create the event loop");
		return 1;
	}
	r = 1;
	if (start(&run, &o) == 0 && sig_on_exit(run.base, on_signal, &run) == 0) {
		log_notice("impair: ready");
		event_base_dispatch(run.base);
		r = 0;
	}
	impair_api_free(run.api);
	explicit_bzero(run.token, sizeof(run.token));
	impair_udp_free(run.udp);
	impair_tcp_free(run.tcp);
	impair_tun_free(run.tun);
	impair_engine_free(run.engine);
	event_base_free(run.base);
	return r;
}
