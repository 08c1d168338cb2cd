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
 * mode towards
 * tor's Extended ORPort (or plain ORPort).  The identity key lives in the
 * state directory, next to a ready bridge line.
 *
 * stdout carries protocol lines only; log lines reach tor as LOG messages.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
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
#include "crypto/crypto.h"

#define KEY_FILE "sctpt_identity.key"
#define BRIDGELINE_FILE "sctpt_bridgeline.txt"
#define REPLAY_FILE "sctpt_replay"

struct managed {
	struct event_base *base;
	struct pt_env env;
	struct app_tunnel tun;
	struct cli_log_opts log;
	int streams_set;
	unsigned open_timeout;
	FILE *logf;

	/* Client. */
	struct carrier_proxy proxy;       /* TOR_PT_PROXY, type NONE if unset */
	struct front *front;
	struct front_config front_cfg;
	struct bridge_pool *pool;

	/* Server. */
	struct server *srv;
	char replay_file[PT_PATH_MAX + 64];
	int has_tcp;                      /* option tcp=IP:PORT: also listen on TCP */
	struct wire_endpoint tcp_listen;

	/* Lifecycle. */
	struct event *stdin_ev, *parent_ev;
	pid_t ppid;
	struct app_shutdown sd;
};

static struct log_ratelimit args_rl = LOG_RATELIMIT_INIT(10.0, 5);

/* ---------- stdout protocol ---------- */

/* One protocol line, written whole (tor reads line by line). */
static void pt_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void pt_line(const char *fmt, ...)
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
	const char *err, *certstr;
	struct wire_endpoint extra[WIRE_MAX_PATHS - 1];
	int alen, nextra;

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
	for (size_t i = 0; i < kv.n; i++)
		if (strcmp(kv.kv[i].key, "cert") != 0 && strcmp(kv.kv[i].key, "tcp") != 0 &&
		    strcmp(kv.kv[i].key, "udp") != 0)
			log_ratelimited(&args_rl, LOG_LEVEL_INFO,
			                "ignoring unknown bridge argument '%s'", kv.kv[i].key);
	up = bridge_pool_get(m->pool, (struct sockaddr *)&ss, sslen, (const char *)args, &cert,
	                     extra, (unsigned)nextra);
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

/* ---------- server ---------- */

static int smethod_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int smethod_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *p = msg; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	log_err("%s", msg);
	pt_line("SMETHOD-ERROR " PT_TRANSPORT " %s", msg);
	pt_line("SMETHODS DONE");
	return -1;
}

/* Load the identity from the state directory, creating it the first time. */
static int load_identity(const char *dir, struct wire_identity *id)
{
	char path[PT_PATH_MAX + 64], err[300];

	snprintf(path, sizeof(path), "%s/%s", dir, KEY_FILE);
	if (access(path, F_OK) == 0) {
		if (cli_key_load(path, id, err, sizeof(err)) < 0)
			return smethod_error("%s (move it away to create a new identity; "
			                     "clients then need the new cert=)", err);
		return 0;
	}
	if (wire_identity_generate(id) < 0 || cli_key_save(path, id, 0, err, sizeof(err)) < 0)
		return smethod_error("cannot create the identity key %s: %s", path,
		                     err[0] != '\0' ? err : "key generation failed");
	log_notice("created a new identity key in %s", path);
	return 0;
}

/* Write <state>/sctpt_bridgeline.txt atomically, mode 0600. */
static void write_bridgeline(const char *dir, uint16_t port, uint16_t tcp_port,
                             const char *cert)
{
	char tcp[64] = "";

	char path[PT_PATH_MAX + 64], tmp[PT_PATH_MAX + 80];
	FILE *f;
	int fd;

	if (tcp_port != 0)
		snprintf(tcp, sizeof(tcp), " tcp=<IP ADDRESS>:%u", tcp_port);
	snprintf(path, sizeof(path), "%s/%s", dir, BRIDGELINE_FILE);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		if (fd >= 0)
			close(fd);
		log_warn("cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	fprintf(f,
	        "# sctpt bridge line for this bridge, for the torrc of its users.\n"
	        "# Replace <IP ADDRESS> with the bridge's public address and\n"
	        "# <FINGERPRINT> with its fingerprint (DataDirectory/fingerprint).\n"
	        "# The port is the UDP port sctpt listens on (ServerTransportListenAddr).\n"
	        "\n"
	        "Bridge " PT_TRANSPORT " <IP ADDRESS>:%u <FINGERPRINT> cert=%s%s\n", port, cert, tcp);
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		log_warn("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
}

static int apply_server_option(struct managed *m, struct server_params *p,
                               const struct pt_kv *kv)
{
	unsigned long v;

	if (strcmp(kv->key, "mtu") == 0)
		return cli_tunnel_option(CLI_OPT_MTU, kv->value, &p->tun, NULL) == 1 ? 0 : -1;
	if (strcmp(kv->key, "pad") == 0)
		return cli_tunnel_option(CLI_OPT_PAD, kv->value, &p->tun, NULL) == 1 ? 0 : -1;
	if (strcmp(kv->key, "tcp") == 0) {
		char url[PT_VALUE_MAX + 8];

		snprintf(url, sizeof(url), "tcp://%s", kv->value);
		if (cli_parse_endpoint("tcp option", url, 0, 1, &m->tcp_listen) < 0)
			return -1;
		m->has_tcp = 1;
		return 0;
	}
	if (strcmp(kv->key, "max-clients") == 0) {
		if (opt_parse_uint(kv->value, 1, 100000, &v) < 0)
			return -1;
		p->tun.wire.max_peers = (unsigned)v;
		return 0;
	}
	log_warn("ignoring unknown server transport option '%s'", kv->key);
	return 0;
}

static int server_setup(struct managed *m)
{
	struct server_params *p;
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	const struct sockaddr_storage *target;
	char abuf[128], cert[128], escaped[256];
	uint16_t port, tcp_port = 0;
	int rc = -1;

	if (!m->env.server) {
		pt_line("SMETHODS DONE");
		return 1;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return smethod_error("out of memory");
	p->tun = m->tun;
	p->tun.mux.max_streams = 4096;
	p->egress.mode = EGRESS_TARGET;
	p->egress.connect_timeout = 10;
	for (size_t i = 0; i < m->env.options.n; i++)
		if (apply_server_option(m, p, &m->env.options.kv[i]) < 0) {
			smethod_error("bad value '%s' for server transport option %s",
			              m->env.options.kv[i].value, m->env.options.kv[i].key);
			goto out;
		}
	if (m->env.has_extorport) {
		target = &m->env.extorport;
		p->egress.extor = 1;
		snprintf(p->egress.extor_cookie_file, sizeof(p->egress.extor_cookie_file),
		         "%s", m->env.cookie_file);
		snprintf(p->egress.extor_transport, sizeof(p->egress.extor_transport),
		         "%s", PT_TRANSPORT);
	} else {
		target = &m->env.orport;
	}
	if (target->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)target;

		inet_ntop(AF_INET, &sin->sin_addr, p->egress.target_host,
		          sizeof(p->egress.target_host));
		p->egress.target_port = ntohs(sin->sin_port);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)target;

		inet_ntop(AF_INET6, &sin6->sin6_addr, p->egress.target_host,
		          sizeof(p->egress.target_host));
		p->egress.target_port = ntohs(sin6->sin6_port);
	}
	if (load_identity(m->env.state_dir, &p->identity) < 0)
		goto out;
	snprintf(m->replay_file, sizeof(m->replay_file), "%s/%s", m->env.state_dir, REPLAY_FILE);
	p->tun.wire.replay_file = m->replay_file;
	if (m->env.has_bindaddr) {
		p->listen[0].addr = m->env.bindaddr;
		p->listen[0].len = m->env.bindaddr_len;
	} else {
		log_warn("no TOR_PT_SERVER_BINDADDR for " PT_TRANSPORT "; listening on 0.0.0.0 "
		         "on a random port (set ServerTransportListenAddr)");
		(void)netaddr_from_numeric("0.0.0.0", 0, &p->listen[0].addr, &p->listen[0].len);
	}
	p->nlisten = 1;
	if (m->has_tcp) {
		p->listen[1] = m->tcp_listen;
		p->nlisten = 2;
	}
	if (sctp_global_init(m->base, &p->tun.sctp) < 0) {
		smethod_error("cannot initialise SCTP");
		goto out;
	}
	m->srv = server_start(m->base, p);
	if (m->srv == NULL || server_local_addr(m->srv, 0, &bound, &blen) < 0) {
		smethod_error("cannot listen on udp://%s%s",
		              netaddr_format((struct sockaddr *)&p->listen[0].addr, abuf, sizeof(abuf)),
		              m->has_tcp ? " or on the tcp= address" : "");
		goto out;
	}
	if (m->has_tcp) {
		struct sockaddr_storage tb;
		socklen_t tblen = sizeof(tb);

		if (server_local_addr(m->srv, 1, &tb, &tblen) == 0)
			tcp_port = ntohs(tb.ss_family == AF_INET ? ((struct sockaddr_in *)&tb)->sin_port
			                                         : ((struct sockaddr_in6 *)&tb)->sin6_port);
	}
	if (wire_cert_encode(&p->identity.cert, cert, sizeof(cert)) < 0 ||
	    pt_escape_smethod_arg(cert, escaped, sizeof(escaped)) < 0) {
		smethod_error("cannot encode the cert");
		goto out;
	}
	port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
	                                        : ((struct sockaddr_in6 *)&bound)->sin6_port);
	write_bridgeline(m->env.state_dir, port, tcp_port, cert);
	netaddr_format((struct sockaddr *)&bound, abuf, sizeof(abuf));
	pt_line("SMETHOD " PT_TRANSPORT " %s ARGS:cert=%s", abuf, escaped);
	pt_line("SMETHODS DONE");
	log_notice("managed server ready on udp://%s, relaying to tor's %s", abuf,
	           m->env.has_extorport ? "Extended ORPort" : "ORPort");
	rc = 0;
out:
	wc_wipe(p, sizeof(*p));
	free(p);
	return rc;
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
	r = m->env.client_listed ? client_setup(m) : server_setup(m);
	if (r != 0) {
		rc = r > 0 ? 0 : 1;
		goto out;
	}
	event_base_dispatch(m->base);
	rc = 0;
out:
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
