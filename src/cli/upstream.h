/*
 * An upstream: the client's association with one server, and the SOCKS
 * connections that ride it.  It connects (handshake, then SCTP), queues
 * requests that arrive while it is down for up to open_timeout, and
 * reconnects with backoff.  The standalone client has one, kept up at all
 * times; the managed (tor) client has one per bridge, connected on demand.
 */
#ifndef SCTPT_CLI_UPSTREAM_H
#define SCTPT_CLI_UPSTREAM_H

#include <sys/socket.h>

#include "carrier/carrier.h"
#include "cli/cli.h"

struct front_conn;
struct socks_request;
struct upstream;

struct upstream_config {
	char label[160];              /* for logs: URL, or "bridge #n" */
	struct wire_endpoint eps[WIRE_MAX_PATHS];   /* paths to the server */
	unsigned neps;
	struct wire_cert cert;
	struct cli_tunnel_opts tun;   /* copied; wire.cert is set by upstream_new */
	struct sockaddr_storage bind; /* outbound bind address (port 0) */
	socklen_t bindlen;            /* 0: none */
	struct carrier_proxy proxy;   /* upstream proxy (type NONE: direct) */
	unsigned open_timeout;        /* seconds a request waits for the association */
	int persistent;               /* reconnect even with nothing waiting */
	/* Each connection attempt's outcome (ok, or why it failed). */
	void (*status)(struct upstream *u, int ok, const char *why, void *arg);
	/* A path of the association broke or traffic moved to another one. */
	void (*path_event)(struct upstream *u, const char *what, void *arg);
	void *arg;
};

struct upstream *upstream_new(struct event_base *base, const struct upstream_config *cfg);
/* Fail waiting requests, abort streams and the association. NULL is fine. */
void upstream_free(struct upstream *u);

/* Carry fc to d: open a stream now, or queue it until the association is up. */
void upstream_request(struct upstream *u, struct front_conn *fc, const struct mux_dest *d);
/* Connections relayed or waiting. */
unsigned upstream_busy(const struct upstream *u);
/* Stop reconnecting and fail queued requests (shutdown). */
void upstream_stop(struct upstream *u);
/* Drop the association now (streams are reset); queued requests fail. */
void upstream_close(struct upstream *u);
const char *upstream_label(const struct upstream *u);

/* Convert a SOCKS destination to a stream destination. */
void upstream_dest_from_socks(const struct socks_request *req, struct mux_dest *d);

#endif
