/*
 * Tor managed mode (pt-spec v1): tor starts sctpt with TOR_PT_* variables
 * and reads our answers on stdout.
 *
 * Client: a SOCKS5 listener for tor; each Bridge line's arguments arrive
 * as the SOCKS credentials (k=v;k=v) and name the bridge's cert=.  One
 * association per distinct bridge (address plus arguments), made on
 * demand and shared by every connection tor makes to that bridge: the
 * bridge pool of app/bridge.c.
 *
 * Server: the same engine as `sctpt server` (app/server.c), in fixed-target
 * mode towards tor's Extended ORPort (or plain ORPort); see
 * managed_server.c.
 *
 * stdout carries protocol lines only; log lines reach tor as LOG messages.
 */
#include "cli/cli.h"
#include "cli/managed_internal.h"
#include "metrics/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <netinet/in.h>
#include <event2/event.h>

#include "app/app.h"
#include "front/front.h"
#include "pt/pt.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/opt.h"
#include "util/sig.h"

static struct log_ratelimit args_rl = LOG_RATELIMIT_INIT(10.0, 5);

/* ---------- stdout protocol ---------- */

/* One protocol line, written whole (tor reads line by line). */
void pt_line(const char *fmt, ...)
{
	char buf[PT_LINE_MAX + 1];
	va_list ap;
	int n;
	size_t off = 0;

	va_start(ap, fmt);
	n = vsnprintf(buf, PT_LINE_MAX, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= PT_LINE_MAX)
		n = PT_LINE_MAX - 1;
	buf[n++] = '\n';
	while (off < (size_t)n) {
		ssize_t w = write(STDOUT_FILENO, buf + off, (size_t)n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;   /* tor is gone; stdin or parent checks end us */
		off += (size_t)w;
	}
}

static void log_to_tor(enum log_level level, const char *msg)
{
	static const char *const sev[] = { "debug", "info", "notice", "warning", "error" };
	static int busy;
	char q[PT_LINE_MAX - 64];

	if (busy || level >= LOG_LEVEL_NONE)
		return;
	busy = 1;
	pt_line("LOG SEVERITY=%s MESSAGE=%s", sev[level], pt_quote(msg, q, sizeof(q)));
	busy = 0;
}

/* ---------- lifecycle ---------- */

static unsigned managed_busy(void *arg)
{
	struct managed *m = arg;

	return server_busy(m->srv) + bridge_pool_busy(m->pool);
}

/* Take no more connections from tor nor clients; tor's stdin no longer matters. */
static void stop_intake(void *arg)
{
	struct managed *m = arg;

	if (m->front != NULL)
		front_stop(m->front);
	bridge_pool_stop(m->pool);
	server_drain(m->srv);
	if (m->stdin_ev != NULL)
		event_del(m->stdin_ev);
}

static void close_everything(void *arg)
{
	struct managed *m = arg;

	bridge_pool_close(m->pool);
	server_close_clients(m->srv);
}

static void begin_shutdown(struct managed *m, const char *why)
{
	if (app_shutdown_begin(&m->sd, why) > 0)
		log_notice("%s again: exiting now", why);
}

static void on_signal(int sig, void *arg)
{
	begin_shutdown(arg, sig == SIGINT ? "SIGINT" : "SIGTERM");
}

static void stdin_cb(evutil_socket_t fd, short what, void *arg)
{
	struct managed *m = arg;
	char buf[512];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
		return;   /* tor sends nothing on stdin; ignore whatever comes */
	event_del(m->stdin_ev);
	begin_shutdown(m, "stdin closed (tor has gone)");
}

static void parent_cb(evutil_socket_t fd, short what, void *arg)
{
	struct managed *m = arg;

	if (getppid() == m->ppid)
		return;
	event_del(m->parent_ev);
	begin_shutdown(m, "parent process has gone");
}

static int watch_lifecycle(struct managed *m)
{
	struct timeval sec = { 1, 0 };

	app_shutdown_init(&m->sd, m->base, managed_busy, stop_intake, close_everything, m);
	if (sig_on_exit(m->base, on_signal, m) < 0)
		return -1;
	/* tor going away: the kernel tells us, and we also poll (PDEATHSIG
	 * fires when the parent *thread* exits, and may race our start). */
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	m->parent_ev = FAULT("managed_parent_event_new") ? NULL
	               : event_new(m->base, -1, EV_PERSIST, parent_cb, m);
	if (m->parent_ev == NULL || event_add(m->parent_ev, &sec) < 0)
		return -1;
	if (getppid() != m->ppid)
		return -1;
	if (m->env.exit_on_stdin_close) {
		int fl = fcntl(STDIN_FILENO, F_GETFL);

		if (fl >= 0)
			(void)fcntl(STDIN_FILENO, F_SETFL, fl | O_NONBLOCK);
		m->stdin_ev = FAULT("managed_stdin_event_new") ? NULL
		              : event_new(m->base, STDIN_FILENO, EV_READ | EV_PERSIST, stdin_cb, m);
		if (m->stdin_ev == NULL || event_add(m->stdin_ev, NULL) < 0)
			return -1;
	}
	return 0;
}

/* mkdir -p with mode 0700 for what we create. */
static int make_dirs(const char *path)
{
	char buf[PT_PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* ---------- client ---------- */

static void bridge_status(const char *addr, int ok, const char *why, void *arg)
{
	char q[512];

	if (ok)
		pt_line("STATUS TRANSPORT=" PT_TRANSPORT " ADDRESS=%s CONNECT=Success", addr);
	else
		pt_line("STATUS TRANSPORT=" PT_TRANSPORT " ADDRESS=%s CONNECT=Failed ERRSTR=%s",
		        addr, pt_quote(why != NULL ? why : "unknown", q, sizeof(q)));
}

static void bridge_path_event(const char *addr, const char *what, void *arg)
{
	char q[512];

	pt_line("STATUS TRANSPORT=" PT_TRANSPORT " ADDRESS=%s PATH=%s", addr,
	        pt_quote(what, q, sizeof(q)));
}

/*
 * Extra paths from the bridge arguments: tcp=IP:PORT[,IP:PORT...] and
 * udp=... (numeric addresses).  Returns how many, or -1.
 */
static int extra_paths(const struct pt_kvlist *kv, struct wire_endpoint *eps, unsigned max)
{
	static const char *const keys[] = { "udp", "tcp" };
	unsigned n = 0;

	for (int t = 0; t < 2; t++) {
		const char *v = pt_kv_get(kv, keys[t]);
		char buf[PT_VALUE_MAX], *save = NULL;

		if (v == NULL)
			continue;
		snprintf(buf, sizeof(buf), "%s", v);
		for (char *tok = strtok_r(buf, ",", &save); tok != NULL;
		     tok = strtok_r(NULL, ",", &save)) {
			if (n >= max)
				return -1;
			memset(&eps[n], 0, sizeof(eps[n]));
			eps[n].tcp = t;
			if (pt_parse_addr(tok, 0, &eps[n].addr, &eps[n].len) < 0)
				return -1;
			n++;
		}
	}
	return (int)n;
}

static void refuse(struct front_conn *fc, uint8_t code, const char *why)
{
	log_ratelimited(&args_rl, LOG_LEVEL_WARN, "refusing a connection from tor: %s", why);
	front_conn_failed(fc, front_conn_bev(fc), code);
}

static void client_request(struct front_conn *fc, const struct socks_request *req, void *arg)
{
	struct managed *m = arg;
	uint8_t args[SOCKS_USER_MAX + SOCKS_PASS_MAX + 1];
	struct pt_kvlist kv;
	struct wire_cert cert;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct mux_dest d;
	struct upstream *up;
	const char *err, *certstr, *carrier;
	struct wire_endpoint extra[WIRE_MAX_PATHS - 1];
	int alen, nextra;

	if (req->cmd != SOCKS_CMD_CONNECT) {
		/* tor only CONNECTs to bridges; UDP ASSOCIATE is the client's (udp-relay.md). */
		refuse(fc, SOCKS5_CMD_NOT_SUPPORTED, "only CONNECT is supported in managed mode");
		return;
	}
	if (app_shutdown_started(&m->sd)) {
		front_conn_failed(fc, front_conn_bev(fc), SOCKS5_GENERAL_FAILURE);
		return;
	}
	upstream_dest_from_socks(req, &d);
	memset(&ss, 0, sizeof(ss));
	if (d.type == MUX_DEST_IPV4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, d.addr, 4);
		sin->sin_port = htons(d.port);
		sslen = sizeof(*sin);
	} else if (d.type == MUX_DEST_IPV6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, d.addr, 16);
		sin6->sin6_port = htons(d.port);
		sslen = sizeof(*sin6);
	} else {
		refuse(fc, SOCKS5_ATYP_NOT_SUPPORTED, "the bridge address must be an IP address");
		return;
	}
	if (d.port == 0) {
		refuse(fc, SOCKS5_NOT_ALLOWED, "bridge port 0");
		return;
	}
	if (!req->has_auth) {
		refuse(fc, SOCKS5_GENERAL_FAILURE,
		       "no bridge arguments (the Bridge line needs cert=...)");
		return;
	}
	alen = pt_args_join(req->user, req->user_len, req->pass, req->pass_len,
	                    args, sizeof(args));
	if (alen < 0 || pt_args_parse(args, (size_t)alen, &kv, &err) < 0) {
		char why[128];

		snprintf(why, sizeof(why), "malformed bridge arguments: %s",
		         alen < 0 ? "too long" : err);
		refuse(fc, SOCKS5_GENERAL_FAILURE, why);
		return;
	}
	certstr = pt_kv_get(&kv, "cert");
	if (certstr == NULL) {
		refuse(fc, SOCKS5_GENERAL_FAILURE, "the Bridge line has no cert= argument");
		return;
	}
	if (wire_cert_decode(certstr, &cert) < 0) {
		refuse(fc, SOCKS5_GENERAL_FAILURE,
		       "bad cert= in the Bridge line (want the 64-character value)");
		return;
	}
	nextra = extra_paths(&kv, extra, WIRE_MAX_PATHS - 1);
	if (nextra < 0) {
		refuse(fc, SOCKS5_GENERAL_FAILURE, "bad tcp= or udp= in the Bridge line (want "
		       "IP:PORT[,IP:PORT...], at most 7 extra paths)");
		return;
	}
	carrier = pt_kv_get(&kv, "carrier");
	if (carrier != NULL && strcmp(carrier, "tcp") != 0 && strcmp(carrier, "udp") != 0) {
		refuse(fc, SOCKS5_GENERAL_FAILURE, "bad carrier= in the Bridge line (want tcp or udp)");
		return;
	}
	for (size_t i = 0; i < kv.n; i++)
		if (strcmp(kv.kv[i].key, "cert") != 0 && strcmp(kv.kv[i].key, "tcp") != 0 &&
		    strcmp(kv.kv[i].key, "udp") != 0 && strcmp(kv.kv[i].key, "carrier") != 0)
			log_ratelimited(&args_rl, LOG_LEVEL_INFO,
			                "ignoring unknown bridge argument '%s'", kv.kv[i].key);
	up = bridge_pool_get(m->pool, (struct sockaddr *)&ss, sslen, (const char *)args, &cert,
	                     extra, (unsigned)nextra, carrier != NULL && strcmp(carrier, "tcp") == 0);
	if (up == NULL) {
		front_conn_failed(fc, front_conn_bev(fc), SOCKS5_GENERAL_FAILURE);
		return;
	}
	upstream_request(up, fc, &d);
}

static unsigned client_busy(void *arg)
{
	struct managed *m = arg;

	return bridge_pool_busy(m->pool);
}

/* The pool takes the tunnel settings as they are now: call after the last change. */
static int pool_setup(struct managed *m)
{
	struct bridge_pool_config bc;

	memset(&bc, 0, sizeof(bc));
	bc.tun = m->tun;
	bc.open_timeout = m->open_timeout;
	bc.proxy = m->proxy;
	bc.has_bind_v4 = m->env.has_bind_v4;
	bc.bind_v4 = m->env.bind_v4;
	bc.has_bind_v6 = m->env.has_bind_v6;
	bc.bind_v6 = m->env.bind_v6;
	bc.status = bridge_status;
	bc.path_event = bridge_path_event;
	bc.arg = m;
	m->pool = bridge_pool_new(m->base, &bc);
	return m->pool != NULL ? 0 : -1;
}

static int client_setup(struct managed *m)
{
	struct sockaddr_storage ss, bound;
	socklen_t sslen, blen = sizeof(bound);
	char abuf[128];

	if (m->env.has_proxy) {
		const char *err;

		/* pt-spec: a PT that cannot use the proxy says so and exits. */
		if (carrier_proxy_parse(m->env.proxy, &m->proxy, &err) < 0) {
			pt_line("PROXY-ERROR %s", err);
			log_err("TOR_PT_PROXY: %s", err);
			return -1;
		}
		pt_line("PROXY DONE");
		if (m->proxy.type != CARRIER_PROXY_SOCKS5)
			log_notice("through a %s proxy only tcp= paths of a bridge can be used "
			           "(UDP needs socks5)", carrier_proxy_name(m->proxy.type));
	}
	if (!m->env.client) {
		pt_line("CMETHODS DONE");
		return 1;   /* nothing for us to do */
	}
	if (!m->streams_set)
		m->tun.sctp.streams = cli_default_streams(m->front_cfg.max_conns);
	m->tun.mux.max_streams = m->front_cfg.max_conns;
	m->front_cfg.busy = client_busy;
	if (sctp_global_init(m->base, &m->tun.sctp) < 0) {
		pt_line("CMETHOD-ERROR " PT_TRANSPORT " cannot initialise SCTP");
		pt_line("CMETHODS DONE");
		return -1;
	}
	(void)netaddr_from_numeric("127.0.0.1", 0, &ss, &sslen);
	m->front = front_new(m->base, (struct sockaddr *)&ss, sslen, &m->front_cfg,
	                     client_request, m);
	if (m->front == NULL || front_local_addr(m->front, &bound, &blen) < 0) {
		pt_line("CMETHOD-ERROR " PT_TRANSPORT " cannot listen for SOCKS on 127.0.0.1");
		pt_line("CMETHODS DONE");
		return -1;
	}
	if (pool_setup(m) < 0)
		return -1;
	pt_line("CMETHOD " PT_TRANSPORT " socks5 %s",
	        netaddr_format((struct sockaddr *)&bound, abuf, sizeof(abuf)));
	pt_line("CMETHODS DONE");
	log_notice("managed client ready: SOCKS5 on %s", abuf);
	return 0;
}

/* ---------- entry ---------- */

static void managed_usage(FILE *f)
{
	fprintf(f,
	"Usage (from tor's torrc):\n"
	"  ClientTransportPlugin " PT_TRANSPORT " exec /usr/bin/sctpt [OPTIONS]\n"
	"  ServerTransportPlugin " PT_TRANSPORT " exec /usr/bin/sctpt [OPTIONS]\n"
	"\n"
	"Tor managed mode (pt-spec v1), chosen when TOR_PT_MANAGED_TRANSPORT_VER is\n"
	"set.  The client takes each bridge's cert= from its Bridge line; the\n"
	"server keeps its key in tor's pluggable-transport state directory and\n"
	"writes the bridge line to " BRIDGELINE_FILE " there.  See docs/tor.md.\n"
	"\n"
	"  --log FILE           also append log lines to FILE (they always reach tor\n"
	"                       as LOG messages)\n"
	"  --open-timeout SECS  client: how long tor's connection waits for the\n"
	"                       association to its bridge (default 15)\n"
	"  --max-conns N        client: connections at once (default 1024)\n"
	CLI_TUNNEL_HELP);
}

enum {
	OPT_LOG = CLI_OPT_FIRST_OWN,
	OPT_OPEN_TIMEOUT,
	OPT_MAX_CONNS,
};

static const char *getenv_cb(const char *name, void *arg)
{
	return getenv(name);
}

static int managed_parse(struct managed *m, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, OPT_LOG },
		{ "open-timeout", required_argument, NULL, OPT_OPEN_TIMEOUT },
		{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
		{ "help", no_argument, NULL, 'h' },
		CLI_TUNNEL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	unsigned long v;
	int opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
		if (opt == CLI_OPT_STREAMS)
			m->streams_set = 1;
		r = cli_tunnel_option(opt, optarg, &m->tun, &m->log);
		if (r < 0)
			return -1;
		if (r > 0)
			continue;
		switch (opt) {
		case OPT_LOG:
			if (m->logf != NULL)
				fclose(m->logf);
			m->logf = fopen(optarg, "a");
			if (m->logf == NULL) {
				fprintf(stderr, "sctpt: cannot open --log %s: %s\n", optarg,
				        strerror(errno));
				return -1;
			}
			break;
		case OPT_OPEN_TIMEOUT:
			if (opt_parse_uint(optarg, 1, 3600, &v) < 0)
				goto bad;
			m->open_timeout = (unsigned)v;
			break;
		case OPT_MAX_CONNS:
			if (opt_parse_uint(optarg, 1, 100000, &v) < 0)
				goto bad;
			m->front_cfg.max_conns = (unsigned)v;
			break;
		case 'h':
			managed_usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sctpt: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "sctpt: bad value '%s'\n", optarg);
	return -1;
}

int managed_main(int argc, char **argv)
{
	struct managed *m;
	char err[256];
	int r, rc = 1;

	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return 1;
	app_tunnel_defaults(&m->tun);
	m->open_timeout = 15;
	m->front_cfg.max_conns = 1024;
	m->front_cfg.handshake_timeout = 30;
	m->ppid = getppid();
	if (managed_parse(m, argc, argv) < 0) {
		pt_line("ENV-ERROR bad sctpt command line in the torrc (see 'sctpt --help')");
		goto out;
	}
	/* From here on stdout is tor's: logs go out as LOG lines (and --log). */
	log_set_output(m->logf);
	log_set_sink(log_to_tor);
	opt_set_verbosity(m->log.verbose, m->log.quiet);

	r = pt_env_parse(getenv_cb, NULL, &m->env, err, sizeof(err));
	if (r == PT_VERSION_ERROR) {
		pt_line("VERSION-ERROR no-version");
		goto out;
	}
	if (r != PT_ENV_OK) {
		pt_line("ENV-ERROR %s", err);
		goto out;
	}
	if (make_dirs(m->env.state_dir) < 0) {
		pt_line("ENV-ERROR cannot create TOR_PT_STATE_LOCATION %s: %s",
		        m->env.state_dir, strerror(errno));
		goto out;
	}
	pt_line("VERSION 1");
	(void)cli_raise_nofile();
	m->base = cli_event_base_new();
	if (m->base == NULL || watch_lifecycle(m) < 0) {
		log_err("cannot set up the event loop");
		goto out;
	}
	r = m->env.client_listed ? client_setup(m) : managed_server_setup(m);
	if (r != 0) {
		rc = r > 0 ? 0 : 1;
		goto out;
	}
	event_base_dispatch(m->base);
	rc = 0;
out:
	metrics_server_free(m->metrics_srv);
	bridge_pool_free(m->pool);
	front_free(m->front);
	server_free(m->srv);
	if (m->base != NULL) {
		sctp_global_shutdown();
		log_notice("sctpt stopped");
	}
	log_set_sink(NULL);
	if (m->stdin_ev != NULL)
		event_free(m->stdin_ev);
	if (m->parent_ev != NULL)
		event_free(m->parent_ev);
	app_shutdown_release(&m->sd);
	if (m->logf != NULL)
		fclose(m->logf);
	free(m);
	return rc;
}
