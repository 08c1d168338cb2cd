/*
 * Command-line front end of the sctpt binary: subcommands that parse their
 * options, wire the engines of app/ together and run the event loop.
 */
#ifndef SCTPT_CLI_CLI_H
#define SCTPT_CLI_CLI_H

#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "app/app.h"
#include "wire/wire.h"

struct event_base;

/* -v and -q counts, for opt_set_verbosity (util/opt.h). */
struct cli_log_opts {
	int verbose, quiet;
};

enum {
	CLI_OPT_WINDOW = 1000,
	CLI_OPT_MTU,
	CLI_OPT_STREAMS,
	CLI_OPT_RTO_MIN,
	CLI_OPT_SACK_DELAY,
	CLI_OPT_PAD,
	CLI_OPT_PAD_HANDSHAKE,
	CLI_OPT_KEEPALIVE,
	CLI_OPT_SCTP_ENGINE,
	CLI_OPT_SESSION_MEMORY,
	CLI_OPT_CC,
	CLI_OPT_BANDWIDTH,
	CLI_OPT_FIRST_OWN = 1100,   /* subcommands number theirs from here */
};

/* ---------- the metrics endpoint (metrics.c): client and server ---------- */

enum {
	CLI_OPT_METRICS = 1050,
	CLI_OPT_METRICS_PUBLIC,
	CLI_OPT_METRICS_ADDRESSES,
};

#define CLI_METRICS_LONGOPTS \
	{ "metrics", required_argument, NULL, CLI_OPT_METRICS }, \
	{ "metrics-public", no_argument, NULL, CLI_OPT_METRICS_PUBLIC }, \
	{ "metrics-addresses", no_argument, NULL, CLI_OPT_METRICS_ADDRESSES }

#define CLI_METRICS_HELP \
	"  --metrics ADDR:PORT  serve metrics over HTTP: Prometheus text at /metrics,\n" \
	"                       JSON at /stats (?streams=1 adds every stream;\n" \
	"                       docs/metrics.md).  Loopback addresses only, unless\n" \
	"                       --metrics-public.  Sessions are numbered, never named\n" \
	"  --metrics-public     allow --metrics on a non-loopback address (anyone who\n" \
	"                       reaches it sees traffic volumes and timings)\n" \
	"  --metrics-addresses  DANGEROUS: also show client, server and destination\n" \
	"                       addresses in the metrics\n"

struct metrics_server;

struct cli_metrics_opts {
	struct sockaddr_storage addr;
	socklen_t addrlen;              /* 0: no --metrics */
	int public_ok, addresses;
	const char *arg;                /* as given, for messages */
};

/* Handle a CLI_METRICS_LONGOPTS option: 1 handled, 0 not ours, -1 bad
 * value (printed).  cmd names the subcommand in messages. */
int cli_metrics_option(const char *cmd, int opt, const char *arg, struct cli_metrics_opts *m);
/* After parsing: a non-loopback address without --metrics-public is an
 * error (printed).  0 or -1. */
int cli_metrics_check(const char *cmd, const struct cli_metrics_opts *m);
/* Start the endpoint if --metrics was given; am must outlive it.  0 (also
 * when there is none: *out NULL) or -1 (logged). */
int cli_metrics_start(struct event_base *base, const struct cli_metrics_opts *m,
                      struct app_metrics *am, struct metrics_server **out);

#define CLI_TUNNEL_LONGOPTS \
	{ "window", required_argument, NULL, CLI_OPT_WINDOW }, \
	{ "mtu", required_argument, NULL, CLI_OPT_MTU }, \
	{ "streams", required_argument, NULL, CLI_OPT_STREAMS }, \
	{ "rto-min", required_argument, NULL, CLI_OPT_RTO_MIN }, \
	{ "sack-delay", required_argument, NULL, CLI_OPT_SACK_DELAY }, \
	{ "pad", required_argument, NULL, CLI_OPT_PAD }, \
	{ "pad-handshake", required_argument, NULL, CLI_OPT_PAD_HANDSHAKE }, \
	{ "keepalive", required_argument, NULL, CLI_OPT_KEEPALIVE }, \
	{ "sctp-engine", required_argument, NULL, CLI_OPT_SCTP_ENGINE }, \
	{ "session-memory", required_argument, NULL, CLI_OPT_SESSION_MEMORY }, \
	{ "congestion-control", required_argument, NULL, CLI_OPT_CC }, \
	{ "bandwidth", required_argument, NULL, CLI_OPT_BANDWIDTH }, \
	{ "verbose", no_argument, NULL, 'v' }, \
	{ "quiet", no_argument, NULL, 'q' }

#define CLI_TUNNEL_HELP \
	"  --window BYTES       largest per-connection receive window: 262144 (or BYTES\n" \
	"                       if less) at first, doubled while a connection moves a\n" \
	"                       whole window in under four round trips (default 2097152)\n" \
	"  --session-memory MIB memory for the connections of one association: their\n" \
	"                       state and queued data (default 32).  When full, new\n" \
	"                       connections are refused and those holding the most\n" \
	"                       unread data are reset; half of it may enlarge windows\n" \
	"  --mtu BYTES          largest UDP payload sent (576..65507, default 1452)\n" \
	"  --streams N          SCTP streams requested (16..65535); the client's default\n" \
	"                       is 2 x --max-conns + 2, the server's 65535 (it accepts\n" \
	"                       what the client asks for).  More streams cost memory\n" \
	"                       and CPU per packet in usrsctp\n" \
	"  --rto-min MS         SCTP minimum retransmission timeout (default: the\n" \
	"                       engine's own floor: native 50, usrsctp 200)\n" \
	"  --sack-delay MS      SCTP delayed-SACK time (default 20)\n" \
	"  --pad MIN:MAX        extra random padding of small packets, uniform in\n" \
	"                       bytes (default 0:0).  Small packets are then padded\n" \
	"                       to one of the bridge's 8 lengths (from its key) or\n" \
	"                       rounded up to 32 bytes, and packets near the MTU are\n" \
	"                       filled to it; random sizes cost CPU (no GRO batching)\n" \
	"  --pad-handshake MIN:MAX  padding of handshake packets (default 16:900)\n" \
	"  --keepalive SECS     idle-path heartbeat interval (1..300, default 1); keeps\n" \
	"                       NAT bindings open.  A dead path is noticed after about\n" \
	"                       8 of them\n" \
	"  --sctp-engine NAME   SCTP implementation: native (default; our own,\n" \
	"                       docs/sctp-engine.md) or usrsctp; the two ends need\n" \
	"                       not match\n" \
	"  --congestion-control NAME  native engine: bbr (default; a paced\n" \
	"                       delivery-rate model that does not take random loss\n" \
	"                       for congestion), newreno or cubic; see\n" \
	"                       docs/sctp-engine.md\n" \
	"  --bandwidth MBIT/S   native engine: send paced at this rate whatever the\n" \
	"                       loss (1..100000; overrides --congestion-control).\n" \
	"                       Only for a path you know: set above its capacity it\n" \
	"                       floods the bottleneck and starves other traffic\n" \
	"  -v, --verbose        more log output (repeat: -vv debug, -vvv also logs\n" \
	"                       client and destination addresses)\n" \
	"  -q, --quiet          less log output (repeat for errors only)\n" \
	"  -h, --help           this help\n"

/*
 * Handle one option every tunnel endpoint has (client and server): 1
 * handled, 0 not ours, -1 bad value (printed).  log may be NULL when -v/-q
 * cannot occur (tor's server transport options).
 */
int cli_tunnel_option(int opt, const char *arg, struct app_tunnel *t, struct cli_log_opts *log);

int client_main(int argc, char **argv);
int server_main(int argc, char **argv);
int keygen_main(int argc, char **argv);
/* Tor managed mode (TOR_PT_MANAGED_TRANSPORT_VER set). */
int managed_main(int argc, char **argv);
/* sctpt chain: the pluggable-transport combiner (chain.c). */
int chain_main(int argc, char **argv);

/* Identity key files (keys.c).  0, or -1 with a message in err. */
int cli_key_save(const char *path, const struct wire_identity *id, int force,
                 char *err, size_t errlen);
int cli_key_load(const char *path, struct wire_identity *id, char *err, size_t errlen);

/* Shared helpers (main.c). */
/* An event base tuned for many socket changes per loop iteration. */
struct event_base *cli_event_base_new(void);
/* Raise the open-file limit as far as allowed; returns the new soft limit. */
unsigned long cli_raise_nofile(void);
/* SCTP streams a client asks for: 2 x max_conns + 2, at most 65535. */
unsigned cli_default_streams(unsigned max_conns);
/*
 * Parse udp://HOST:PORT or tcp://HOST:PORT into ep, resolving HOST
 * (blocking, startup only) when resolve is set, else numeric only.
 * 0, or -1 with a message on stderr naming what.
 */
int cli_parse_endpoint(const char *what, const char *url, int resolve, int allow_port0,
                       struct wire_endpoint *ep);

/* Share links (qr.c, keys.c; the format is util/sharelink.h). */
/* Print text as a QR code of Unicode half blocks.  0, or -1 with err. */
int cli_qr_print(FILE *f, const char *text, char *err, size_t errlen);
/*
 * Add the udp:// or tcp:// URL (HOST:PORT, resolvable) to link's paths.
 * 0, or -1 with a message on stderr naming what.
 */
struct sharelink;
int cli_link_add_url(struct sharelink *link, const char *what, const char *url);
/* udp://HOST:PORT or tcp://[V6]:PORT of a link's path into buf. */
void cli_link_path_url(const struct sharelink *link, unsigned i, char *buf, size_t len);

/*
 * Config files (config.c, docs/config.md).  cli_config_expand finds -c FILE
 * in *argvp and, if given, replaces the vector with the file's options as
 * "--key=value" followed by the command line's (minus -c and minus file keys
 * the command line also gives).  opts is the command's getopt table: keys
 * are its long options.  1 expanded, 0 no file, -1 error (printed).
 */
struct option;
int cli_config_expand(const char *cmd, const struct option *opts, int *argcp, char ***argvp);
/* Called with optind in the parser's loop, and -1 after it. */
void cli_config_at(int optind_now);
/* After a failed parse: name the file line and key the bad option came from. */
void cli_config_blame(void);
/*
 * Re-read the file on SIGHUP.  fn (may be NULL) gets the vector the file
 * and the command line make now, as at start; it checks all of it with the
 * command's own parser and, only if nothing is wrong, applies what it can
 * at once and logs each change: 0, or -1 when the file has an error
 * (printed) and nothing was changed.  live_keys (NULL-terminated, may be
 * NULL) are the keys fn applies; other changed keys are logged as needing
 * a restart.  The log level is applied here after fn succeeded.  0 or -1.
 */
typedef int (*cli_reload_fn)(int argc, char **argv, void *arg);
int cli_config_sighup(struct event_base *base, cli_reload_fn fn, void *arg,
                      const char *const *live_keys);
/* "+a/n -b/m": the ranges of to not in from, then those of from not in to
 * (for reload logs); cut with "..." at len. */
struct netaddr_cidr;
void cli_cidr_diff(const struct netaddr_cidr *from, size_t nfrom, const struct netaddr_cidr *to,
                   size_t nto, char *buf, size_t len);

#endif
