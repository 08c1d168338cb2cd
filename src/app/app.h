/*
 * The application layer: the engines that `sctpt client`, `sctpt server`
 * and Tor managed mode wire together.  cli/ parses options and talks to
 * the user (or to tor); everything that runs on the event loop afterwards
 * lives here:
 *
 *   server.c    the server engine: a wire listener, one mux session per
 *               client, egress for the streams (`sctpt server`, tor server)
 *   upstream.c  one client association and the SOCKS connections waiting
 *               for it, with reconnect (`sctpt client`, one per tor bridge)
 *   bridge.c    the managed client's pool of upstreams, one per bridge,
 *               made on demand and closed when idle
 *   shutdown.c  the graceful shutdown all three share
 */
#ifndef SCTPT_APP_APP_H
#define SCTPT_APP_APP_H

#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "carrier/carrier.h"
#include "egress/egress.h"
#include "metrics/metrics.h"
#include "mux/mux.h"
#include "sctp/sctp.h"
#include "util/fwdspec.h"
#include "wire/wire.h"

struct event;
struct event_base;
struct front_conn;
struct socks_request;
struct socks_dest;

/* The settings of one tunnel endpoint, client or server. */
struct app_tunnel {
	struct mux_config mux;
	struct wire_config wire;
	struct sctp_tuning sctp;
};

void app_tunnel_defaults(struct app_tunnel *t);

/* ---------- remote forwards, server side (listen.c) ---------- */

/*
 * What clients may ask the server to listen on (-R, docs/forwarding.md):
 * nothing unless a --permit-listen rule matches; loopback only unless
 * gateway_ports.  Every association gets a listen_set holding its
 * listeners, closed with it.
 */
#define LISTEN_MAX_PERMIT 64
#define LISTEN_MAX_PER_CLIENT_DEFAULT 16
#define LISTEN_MAX_PENDING_DEFAULT 64

struct listen_permit {
	char addr[NETADDR_HOST_MAX];   /* "" or "*": any; "localhost"; or numeric */
	uint16_t port;
	int any_port;                  /* PORT was "*" */
};

struct listen_policy {
	struct listen_permit permit[LISTEN_MAX_PERMIT];
	unsigned npermit;
	int gateway_ports;             /* non-loopback addresses may be asked for */
	unsigned max_listeners;        /* per association */
	unsigned max_pending;          /* connections waiting for the client's answer, per association */
	unsigned max_conns;            /* connections at once per listener */
};

void listen_policy_defaults(struct listen_policy *p);
/* Parse a --permit-listen value into p (appended).  0, or -1 with *err. */
int listen_policy_add_permit(struct listen_policy *p, const char *spec, const char **err);
/*
 * Whether req may listen, given n listeners already: 0, or the RST code
 * of the refusal (MUX_ERR_NO_PERMIT, MUX_ERR_GATEWAY, MUX_ERR_LIMIT).
 * Pure; for unit tests.
 */
uint8_t listen_policy_check(const struct listen_policy *p, const struct mux_listen_req *req,
                            unsigned n);

struct listen_set;
struct listen_set *listen_set_new(struct event_base *base, const struct listen_policy *p,
                                  struct mux_session *m, const char *peer);
/* The client's LISTEN on stream s: refuse, or listen and answer. */
void listen_set_request(struct listen_set *ls, struct mux_stream *s,
                        const struct mux_listen_req *req);
/* Listeners open.  NULL is fine (0). */
unsigned listen_set_count(const struct listen_set *ls);
/* Close every listener (the association is gone).  NULL is fine. */
void listen_set_free(struct listen_set *ls);
/*
 * The policy changed (SIGHUP): close, with the refusal's code on their
 * streams, the listeners it no longer permits (oldest kept first when
 * max_listeners went down), each logged.  Returns how many.  NULL is fine.
 */
unsigned listen_set_recheck(struct listen_set *ls);
/*
 * Free the closed listeners still waiting for connections in their SOCKS
 * negotiation (process exit, after every association is gone).
 */
void listen_reap_all(void);

/* ---------- server engine (server.c) ---------- */

struct server;
struct server_params {
	struct app_tunnel tun;
	struct egress_config egress;
	struct listen_policy listen_policy;   /* remote forwards (-R) */
	struct wire_identity identity;
	const char *resolv_conf;
	struct wire_endpoint listen[WIRE_MAX_LISTEN];
	unsigned nlisten;
};
/* Listen and serve on base.  NULL on failure (logged). */
struct server *server_start(struct event_base *base, const struct server_params *p);
/* The address the idx-th --listen endpoint bound. 0 or -1. */
int server_local_addr(const struct server *srv, unsigned idx, struct sockaddr_storage *ss,
                      socklen_t *len);
/* Refuse new clients and streams from now on. */
void server_drain(struct server *srv);
/* Streams open across all clients.  NULL is fine (0). */
unsigned server_busy(const struct server *srv);
/* End every client's association.  NULL is fine. */
void server_close_clients(struct server *srv);
void server_free(struct server *srv);
/* New egress rules (SIGHUP reload) for the streams opened from now on. */
void server_set_egress(struct server *srv, const struct egress_config *e);
/*
 * New remote-forward rules (SIGHUP reload): --permit-listen, --gateway-ports
 * and --max-listeners of p for requests from now on; listeners they no
 * longer permit are closed (listen_set_recheck).  Returns how many.
 */
unsigned server_set_listen_policy(struct server *srv, const struct listen_policy *p);
/* The metrics view: the listener's probe counters and one session per
 * client into snap (sessions malloc'd).  0 or -1. */
int server_metrics(const struct server *srv, int streams, int addresses, size_t *budget,
                   struct metrics_snapshot *snap);

/* ---------- client association (upstream.c) ---------- */

/*
 * An upstream: the client's association with one server, and the SOCKS
 * connections that ride it.  It connects (handshake, then SCTP), queues
 * requests that arrive while it is down for up to open_timeout, and
 * reconnects with backoff.  The standalone client has one, kept up at all
 * times; the managed (tor) client has one per bridge, connected on demand.
 */
struct upstream;

struct upstream_config {
	char label[160];              /* for logs: URL, or "bridge #n" */
	struct wire_endpoint eps[WIRE_MAX_PATHS];   /* paths to the server */
	unsigned neps;
	struct wire_cert cert;
	struct app_tunnel tun;        /* copied; wire.cert is set by upstream_new */
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
	struct rfwd_client *rfwd;     /* remote forwards to ask for (NULL: none) */
};

struct upstream *upstream_new(struct event_base *base, const struct upstream_config *cfg);
/* Fail waiting requests, abort streams and the association. NULL is fine. */
void upstream_free(struct upstream *u);

/* Carry fc to d: open a stream now, or queue it until the association is up. */
void upstream_request(struct upstream *u, struct front_conn *fc, const struct mux_dest *d);
/* Carry a SOCKS5 UDP ASSOCIATE (the client announced `announced`). */
void upstream_udp_request(struct upstream *u, struct front_conn *fc,
                          const struct socks_dest *announced);
/* Connections relayed or waiting. */
unsigned upstream_busy(const struct upstream *u);
/* Stop reconnecting and fail queued requests (shutdown). */
void upstream_stop(struct upstream *u);
/* Drop the association now (streams are reset); queued requests fail. */
void upstream_close(struct upstream *u);
const char *upstream_label(const struct upstream *u);
/* The metrics view of u's session into out: 1 filled, 0 no session, -1
 * out of memory. */
int upstream_metrics(const struct upstream *u, int streams, int addresses, size_t *budget,
                     struct metrics_session *out);

/* Convert a SOCKS destination to a stream destination. */
void upstream_dest_from_socks(const struct socks_request *req, struct mux_dest *d);

/* ---------- remote forwards, client side (rforward.c) ---------- */

/*
 * The client's -R forwards: asked for (LISTEN) each time the association
 * comes up; connections the server sends back (FWD_OPEN) go to the
 * forward's HOST:HOSTPORT, or for reverse SOCKS wherever the request
 * said, if --remote-allow (egress's ACL: no internal address unless
 * allowed) admits it.
 */
#define RFWD_MAX 32
#define RFWD_ANSWER_TIMEOUT 10   /* seconds to wait for LISTEN_OK */

struct rfwd_config {
	struct fwd_spec spec[RFWD_MAX];
	char text[RFWD_MAX][FWD_SPEC_MAX + 1];   /* as given, for logs */
	unsigned n;
	struct netaddr_cidr allow[EGRESS_MAX_ALLOW];   /* reverse SOCKS may reach these */
	size_t nallow;
	unsigned connect_timeout;                       /* seconds */
	const char *resolv_conf;                        /* NULL: /etc/resolv.conf */
};

struct rfwd_client;
struct rfwd_client *rfwd_client_new(struct event_base *base, const struct rfwd_config *cfg);
void rfwd_client_free(struct rfwd_client *rc);
/* The association is up (ask for every listener) or gone. */
void rfwd_client_up(struct rfwd_client *rc, struct mux_session *m);
void rfwd_client_down(struct rfwd_client *rc);
/* The server opened s for forward id (mux_session_cbs.fwd_open). */
void rfwd_client_open(struct rfwd_client *rc, struct mux_stream *s, uint32_t id,
                      const struct mux_dest *dest);
/* The port the server listens on for forward i, 0 if none now. */
uint16_t rfwd_client_port(const struct rfwd_client *rc, unsigned i);
/*
 * SIGHUP: cfg's -R list and --remote-allow replace the running ones.
 * Forwards still listed are not touched; removed ones have their listener
 * stream closed (the server closes the listener; connections already made
 * keep going); new ones are asked for at once if the association is up.
 * Reverse-SOCKS connections from now on use the new --remote-allow.  Each
 * change is logged.
 */
void rfwd_client_reconfigure(struct rfwd_client *rc, const struct rfwd_config *cfg);

/* ---------- UDP relay, client side (udp_assoc.c) ---------- */

/* Start a UDP association for fc on m (up): the SOCKS reply follows the
 * server's answer; it lives as long as fc's control connection. */
void udp_assoc_start(struct event_base *base, struct mux_session *m, struct front_conn *fc,
                     const struct socks_dest *announced);

/* ---------- bridge pool of the managed client (bridge.c) ---------- */

/*
 * One upstream per distinct bridge (address plus Bridge-line arguments),
 * shared by every connection tor makes to it.  At most BRIDGE_MAX at once;
 * an association unused for BRIDGE_IDLE_SECS is closed.
 */
#define BRIDGE_MAX 64
#define BRIDGE_IDLE_SECS 900

struct bridge_pool;

struct bridge_pool_config {
	struct app_tunnel tun;
	unsigned open_timeout;                  /* upstream_config.open_timeout */
	struct carrier_proxy proxy;             /* type NONE: direct */
	int has_bind_v4, has_bind_v6;           /* outbound bind addresses (port 0) */
	struct sockaddr_storage bind_v4, bind_v6;
	/* Per bridge, named by its numeric address: connection outcomes and
	 * path changes (tor's STATUS lines). */
	void (*status)(const char *addr, int ok, const char *why, void *arg);
	void (*path_event)(const char *addr, const char *what, void *arg);
	void *arg;
};

struct bridge_pool *bridge_pool_new(struct event_base *base, const struct bridge_pool_config *cfg);
/* Close every association.  NULL is fine. */
void bridge_pool_free(struct bridge_pool *bp);
/*
 * The upstream for the bridge at sa with these arguments (the key), made
 * if new: eps[0] is sa over UDP (TCP with primary_tcp: the bridge line's
 * carrier=tcp, for sctpt as an inner hop of a chain), then the extra
 * paths.  NULL when the pool is full of busy bridges or out of memory
 * (logged).
 */
struct upstream *bridge_pool_get(struct bridge_pool *bp, const struct sockaddr *sa,
                                 socklen_t salen, const char *args,
                                 const struct wire_cert *cert,
                                 const struct wire_endpoint *extra, unsigned nextra,
                                 int primary_tcp);
/* Connections relayed or waiting across all bridges.  NULL is fine (0). */
unsigned bridge_pool_busy(const struct bridge_pool *bp);
/* upstream_stop / upstream_close on every bridge.  NULL is fine. */
void bridge_pool_stop(struct bridge_pool *bp);
void bridge_pool_close(struct bridge_pool *bp);

/* ---------- the metrics endpoint (metrics.c) ---------- */

/* What the endpoint of `sctpt client` or `sctpt server` reports. */
struct app_metrics {
	const char *role;                /* "client" or "server" */
	const struct sctp_tuning *sctp;  /* engine and controller */
	const struct server *srv;        /* server, or NULL */
	const struct upstream *up;       /* client, or NULL */
	int addresses;                   /* --metrics-addresses */
	uint64_t start_ms;
};

/*
 * Fill out from one mux session: 0, or -1 (out of memory; out is clean).
 * With streams, at most *budget streams are listed (the rest is marked
 * truncated) and *budget goes down by those listed.
 */
int app_metrics_session(const struct mux_session *m, uint64_t id, uint64_t start_ms,
                        const struct sockaddr *peer, int streams, int addresses,
                        size_t *budget, struct metrics_session *out);
/* The metrics_collect_cb of the endpoint; arg is a struct app_metrics. */
int app_metrics_collect(struct metrics_snapshot *s, int streams, void *arg);

/* ---------- graceful shutdown (shutdown.c) ---------- */

/*
 * On the first signal the caller stops taking new work; open connections
 * then get up to APP_SHUTDOWN_GRACE_MS (monotonic clock) to finish before
 * everything is closed and the loop exits.  A second signal exits at once.
 */
#define APP_SHUTDOWN_GRACE_MS 3000

struct app_shutdown {
	/* Set by app_shutdown_init; the rest is private. */
	struct event_base *base;
	unsigned (*busy)(void *arg);          /* connections still open */
	void (*stop)(void *arg);              /* stop taking new work */
	void (*close_all)(void *arg);         /* end what is left, now */
	void *arg;
	struct event *tick;
	struct timespec start;
	int started;
};

void app_shutdown_init(struct app_shutdown *sd, struct event_base *base,
                       unsigned (*busy)(void *arg), void (*stop)(void *arg),
                       void (*close_all)(void *arg), void *arg);
/*
 * First call: log "<why>: closing (waiting up to 3 s for open connections)",
 * call stop() and start the grace period; returns 0.  Later calls make the
 * loop exit now and return 1 (the caller says why).
 */
int app_shutdown_begin(struct app_shutdown *sd, const char *why);
/* Has app_shutdown_begin been called? */
int app_shutdown_started(const struct app_shutdown *sd);
void app_shutdown_release(struct app_shutdown *sd);

#endif
