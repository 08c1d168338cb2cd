/*
 * Tor managed mode, server side: the sctpt server engine (app/server.c) in
 * fixed-target mode towards tor's Extended ORPort (or plain ORPort).  The
 * identity key lives in tor's state directory for this transport, next to
 * a ready bridge line and the replay filter's file.
 */
#include "cli/managed_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "crypto/crypto.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/opt.h"

#define KEY_FILE "sctpt_identity.key"
#define REPLAY_FILE "sctpt_replay"

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
                             const char *cert, int carrier_tcp)
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
	        "# The port is the %s port sctpt listens on (ServerTransportListenAddr).\n"
	        "\n"
	        "Bridge " PT_TRANSPORT " <IP ADDRESS>:%u <FINGERPRINT> cert=%s%s%s\n",
	        carrier_tcp ? "TCP" : "UDP", port, cert, tcp, carrier_tcp ? " carrier=tcp" : "");
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
	if (strcmp(kv->key, "sctp-engine") == 0)
		return cli_tunnel_option(CLI_OPT_SCTP_ENGINE, kv->value, &p->tun, NULL) == 1 ? 0 : -1;
	if (strcmp(kv->key, "congestion-control") == 0)
		return cli_tunnel_option(CLI_OPT_CC, kv->value, &p->tun, NULL) == 1 ? 0 : -1;
	if (strcmp(kv->key, "tcp") == 0) {
		char url[PT_VALUE_MAX + 8];

		snprintf(url, sizeof(url), "tcp://%s", kv->value);
		if (cli_parse_endpoint("tcp option", url, 0, 1, &m->tcp_listen) < 0)
			return -1;
		m->has_tcp = 1;
		return 0;
	}
	if (strcmp(kv->key, "carrier") == 0) {
		if (strcmp(kv->value, "tcp") != 0 && strcmp(kv->value, "udp") != 0)
			return -1;
		m->carrier_tcp = strcmp(kv->value, "tcp") == 0;
		return 0;
	}
	if (strcmp(kv->key, "metrics") == 0) {
		/* Loopback only: tor's options have no --metrics-public. */
		if (cli_metrics_option("server", CLI_OPT_METRICS, kv->value, &m->metrics_opts) < 0 ||
		    cli_metrics_check("server", &m->metrics_opts) < 0)
			return -1;
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

int managed_server_setup(struct managed *m)
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
	p->egress.udp_idle = 120;
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
	p->listen[0].tcp = m->carrier_tcp;
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
		smethod_error("cannot listen on %s://%s%s", m->carrier_tcp ? "tcp" : "udp",
		              netaddr_format((struct sockaddr *)&p->listen[0].addr, abuf, sizeof(abuf)),
		              m->has_tcp ? " or on the tcp= address" : "");
		goto out;
	}
	m->metrics.role = "server";
	m->metrics_sctp = p->tun.sctp;
	m->metrics.sctp = &m->metrics_sctp;
	m->metrics.srv = m->srv;
	if (cli_metrics_start(m->base, &m->metrics_opts, &m->metrics, &m->metrics_srv) < 0) {
		smethod_error("cannot serve metrics=%s", m->metrics_opts.arg);
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
	write_bridgeline(m->env.state_dir, port, tcp_port, cert, m->carrier_tcp);
	netaddr_format((struct sockaddr *)&bound, abuf, sizeof(abuf));
	pt_line("SMETHOD " PT_TRANSPORT " %s ARGS:cert=%s%s", abuf, escaped,
	        m->carrier_tcp ? ",carrier=tcp" : "");
	pt_line("SMETHODS DONE");
	log_notice("managed server ready on %s://%s, relaying to tor's %s",
	           m->carrier_tcp ? "tcp" : "udp", abuf,
	           m->env.has_extorport ? "Extended ORPort" : "ORPort");
	rc = 0;
out:
	wc_wipe(p, sizeof(*p));
	free(p);
	return rc;
}
