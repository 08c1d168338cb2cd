/*
 * The --metrics options shared by `sctpt client` and `sctpt server`, and
 * starting the endpoint (metrics/metrics.h) with the app's collector.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "metrics/metrics.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/netaddr.h"

int cli_metrics_option(const char *cmd, int opt, const char *arg, struct cli_metrics_opts *m)
{
	char host[NETADDR_HOST_MAX];
	uint16_t port;

	switch (opt) {
	case CLI_OPT_METRICS:
		if (netaddr_parse_hostport(arg, host, sizeof(host), &port, 1) < 0 ||
		    netaddr_from_numeric(host, port, &m->addr, &m->addrlen) < 0) {
			fprintf(stderr, "sctpt %s: bad --metrics '%s' (want IP:PORT, e.g. "
			        "127.0.0.1:9100)\n", cmd, arg);
			m->addrlen = 0;
			return -1;
		}
		m->arg = arg;
		return 1;
	case CLI_OPT_METRICS_PUBLIC:
		m->public_ok = 1;
		return 1;
	case CLI_OPT_METRICS_ADDRESSES:
		m->addresses = 1;
		return 1;
	default:
		return 0;
	}
}

int cli_metrics_check(const char *cmd, const struct cli_metrics_opts *m)
{
	if (m->addrlen == 0) {
		if (m->public_ok || m->addresses)
			fprintf(stderr, "sctpt %s: --metrics-public and --metrics-addresses "
			        "need --metrics\n", cmd);
		return m->public_ok || m->addresses ? -1 : 0;
	}
	if (!m->public_ok && !metrics_addr_is_loopback((const struct sockaddr *)&m->addr)) {
		fprintf(stderr, "sctpt %s: --metrics %s is not a loopback address; the "
		        "metrics describe every session, so they are served elsewhere only "
		        "with --metrics-public\n", cmd, m->arg);
		return -1;
	}
	return 0;
}

int cli_metrics_start(struct event_base *base, const struct cli_metrics_opts *m,
                      struct app_metrics *am, struct metrics_server **out)
{
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	char err[256], abuf[128];

	*out = NULL;
	if (m->addrlen == 0)
		return 0;
	am->addresses = m->addresses;
	am->start_ms = clock_now_ms();
	*out = metrics_server_new(base, (const struct sockaddr *)&m->addr, m->addrlen,
	                          m->public_ok, app_metrics_collect, am, err, sizeof(err));
	if (*out == NULL) {
		log_err("%s", err);
		return -1;
	}
	if (metrics_server_local_addr(*out, &bound, &blen) == 0)
		log_notice("metrics on http://%s/metrics and /stats%s",
		           netaddr_format((struct sockaddr *)&bound, abuf, sizeof(abuf)),
		           m->addresses ? " (with addresses: --metrics-addresses)" : "");
	return 0;
}
