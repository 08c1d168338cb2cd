/*
 * Tor managed mode, shared between its files (cli/ only): managed.c (the
 * pt-spec stdout protocol, lifecycle, the client side, the entry point)
 * and managed_server.c (the server side: state directory, SMETHOD).
 */
#ifndef SCTPT_CLI_MANAGED_INTERNAL_H
#define SCTPT_CLI_MANAGED_INTERNAL_H

#include <stdio.h>
#include <sys/types.h>

#include "app/app.h"
#include "cli/cli.h"
#include "front/front.h"
#include "pt/pt.h"

#define BRIDGELINE_FILE "sctpt_bridgeline.txt"

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
	int carrier_tcp;                  /* option carrier=tcp: the main listener is TCP */
	struct wire_endpoint tcp_listen;
	struct cli_metrics_opts metrics_opts;   /* option metrics=IP:PORT (loopback) */
	struct app_metrics metrics;
	struct sctp_tuning metrics_sctp;  /* what the server runs (engine, cc) */
	struct metrics_server *metrics_srv;

	/* Lifecycle. */
	struct event *stdin_ev, *parent_ev;
	pid_t ppid;
	struct app_shutdown sd;
};

/* One protocol line on stdout, written whole (tor reads line by line). */
void pt_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The server transport, when tor asked for one: 0 ready, 1 nothing to do,
 * -1 failed (tor has been told with SMETHOD-ERROR). */
int managed_server_setup(struct managed *m);

#endif
