/*
 * The metrics endpoint (--metrics ADDR:PORT): a small HTTP/1.1 server on
 * the event loop answering GET /metrics (Prometheus text format) and
 * GET /stats (JSON), both rendered from one snapshot the owner fills on
 * every request (app/metrics.c).  docs/metrics.md lists every metric.
 *
 * Sessions are named by an opaque counter; addresses appear only when the
 * owner copies them into the snapshot (--metrics-addresses).
 */
#ifndef SCTPT_METRICS_METRICS_H
#define SCTPT_METRICS_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;

#define METRICS_MAX_PATHS 8
#define METRICS_ADDR_MAX 64     /* a formatted address, opt-in only */

/* Reasons a connection (client: SOCKS/HTTP request; server: stream) was
 * refused.  The names are the values of the "reason" label. */
enum metrics_refusal {
	MR_CONN_LIMIT,          /* client: --max-conns reached */
	MR_FD_LIMIT,            /* out of file descriptors */
	MR_NO_ASSOCIATION,      /* client: no association within --open-timeout */
	MR_NO_STREAM,           /* client: no free stream id */
	MR_BAD_REQUEST,         /* client: SOCKS/HTTP negotiation failed or timed out */
	MR_GENERAL,             /* stream error codes (docs/streams.md) */
	MR_NOT_ALLOWED,
	MR_NET_UNREACHABLE,
	MR_HOST_UNREACHABLE,
	MR_CONN_REFUSED,
	MR_TIMEOUT,
	MR_ADDRESS_TYPE,
	MR_RESET,
	MR_PROTOCOL,
	MR_LIMIT,
	MR_SHUTDOWN,
	MR_OTHER,
	MR_COUNT
};
const char *metrics_refusal_name(enum metrics_refusal r);
/* A stream error code (enum mux_err, SOCKS5 reply codes 1..8) to a reason. */
enum metrics_refusal metrics_refusal_from_code(unsigned code);

/* Probes the server dropped without an answer (wire_stats). */
enum metrics_probe {
	MP_BAD_HELLO,           /* not a HELLO for this bridge */
	MP_NO_MAC,              /* candidate HELLO with a wrong MAC */
	MP_REPLAY,
	MP_STALE,               /* clock outside the accepted skew */
	MP_RATE_LIMITED,        /* global handshake rate */
	MP_SOURCE_LIMITED,      /* per-source bucket (srclimit) */
	MP_PENDING_REFUSED,     /* valid HELLO, no room for a session */
	MP_BAD_DATA,            /* data packets that did not open */
	MP_COUNT
};
const char *metrics_probe_name(enum metrics_probe p);

/*
 * Process-wide counters.  The layers that see the events bump them
 * (app/, through metrics_count); the snapshot copies them.
 */
struct metrics_counters {
	uint64_t conn_accepted;          /* client: requests relayed; server: streams connected */
	uint64_t conn_refused[MR_COUNT];
	uint64_t sessions_established, sessions_closed;
	uint64_t handshake_failures;     /* client: connection attempts that failed */
	uint64_t session_ids;            /* the last session id handed out */
};

/* The process's counters (one event loop, one thread: plain increments). */
extern struct metrics_counters metrics_counters;

/* A new opaque session id: 1, 2, 3, ... never reused in a process. */
static inline uint64_t metrics_new_session_id(void)
{
	return ++metrics_counters.session_ids;
}

static inline void metrics_count_refused(enum metrics_refusal r)
{
	metrics_counters.conn_refused[r < MR_COUNT ? r : MR_OTHER]++;
}

/* Which of the optional session fields the engine filled. */
#define MS_HAVE_RTT      0x01   /* srtt, rto */
#define MS_HAVE_RTTVAR   0x02   /* rttvar */
#define MS_HAVE_CWND     0x04   /* cwnd */
#define MS_HAVE_FLIGHT   0x08   /* flight, ssthresh */
#define MS_HAVE_RWND     0x10   /* peer_rwnd */
#define MS_HAVE_RTX      0x20   /* retransmissions */
#define MS_HAVE_RTX_KIND 0x40   /* fast, t3, tlp (native) */
#define MS_HAVE_SCTP_PKT 0x80   /* sctp_packets_sent */
#define MS_HAVE_MIN_RTT  0x100  /* min_rtt */
#define MS_HAVE_RACK     0x200  /* rack_losses, tlp_losses, reo_wnd */
#define MS_HAVE_SPURIOUS 0x400  /* spurious_rtx, spurious_rto, undos */
#define MS_HAVE_SACKS    0x800  /* sacks_sent, sacks_received */
#define MS_HAVE_RCV      0x1000 /* dup_tsns, data_dropped */
#define MS_HAVE_PACING   0x2000 /* pacing_rate, pace_waits */
#define MS_HAVE_BTL_BW   0x4000 /* btl_bw (bbr) */
#define MS_HAVE_DELIVERY 0x8000 /* delivery_rate */

struct metrics_path {
	const char *kind;            /* "udp" or "tcp" */
	const char *state;           /* "active", "standby" or "failed" */
	int64_t last_rx_ms;          /* since the last authentic packet; -1 never */
	char addr[METRICS_ADDR_MAX]; /* "" unless addresses are opted in */
};

struct metrics_stream {
	unsigned sid;
	const char *state;           /* "opening", "pending", "open", "closing" */
	uint64_t bytes_in, bytes_out;
	uint64_t credit_tx;          /* bytes we may still send */
	uint64_t credit_rx;          /* bytes the peer may still send us */
	uint64_t window;             /* our receive window */
	uint64_t queued;             /* bytes held in its queues */
	uint64_t age_ms;
	char dest[METRICS_ADDR_MAX + 8];   /* "" unless addresses are opted in */
};

struct metrics_session {
	uint64_t id;                 /* opaque, per process, never reused */
	const char *state;           /* "connecting", "up" */
	uint64_t age_ms;
	char peer[METRICS_ADDR_MAX]; /* "" unless addresses are opted in */
	unsigned have;               /* MS_HAVE_* */
	uint32_t srtt_ms, rttvar_ms, rto_ms;
	uint64_t cwnd, ssthresh, flight, peer_rwnd;
	uint64_t retransmissions, fast_retransmissions, t3_expiries, tlp_probes;
	uint64_t sctp_packets_sent;
	uint32_t min_rtt_ms, reo_wnd_ms;
	uint64_t rack_losses, tlp_losses;
	uint64_t spurious_rtx, spurious_rto, undos;
	uint64_t sacks_sent, sacks_received;
	uint64_t dup_tsns, data_dropped;
	uint64_t pacing_rate, btl_bw, delivery_rate;   /* bytes/s */
	uint64_t pace_waits;
	const char *cc;              /* the session's controller (static), or NULL */
	uint64_t bytes_in, bytes_out, packets_in, packets_out;   /* carrier datagrams */
	uint64_t handshake_failures;
	uint64_t streams_active, streams_opened, streams_refused;
	uint64_t mux_mem;
	struct metrics_path paths[METRICS_MAX_PATHS];
	unsigned npaths;
	struct metrics_stream *streams;   /* with ?streams=1; malloc'd */
	size_t nstreams;
	int streams_truncated;            /* more streams than one answer lists */
};

struct metrics_snapshot {
	const char *role;            /* "client" or "server" */
	const char *engine;          /* "native" or "usrsctp" */
	const char *cc;              /* congestion controller, or NULL */
	const char *version;
	uint64_t uptime_s;
	struct metrics_counters c;
	int have_probes;             /* server: probes[] and handshakes are set */
	uint64_t probes[MP_COUNT];
	uint64_t handshakes;         /* server: HELLOs answered */
	uint64_t rebinds;            /* server: sessions that moved address */
	struct metrics_session *sessions;   /* malloc'd */
	size_t nsessions;
};

/* Free the arrays of a snapshot (not s itself).  NULL is fine. */
void metrics_snapshot_clear(struct metrics_snapshot *s);

/* ---------- rendering (render.c, pure) ---------- */

/* A growing output buffer with a hard cap; err is set once it overflows. */
struct mbuf {
	char *p;
	size_t len, cap, max;
	int err;
};
void mbuf_init(struct mbuf *b, size_t max);
void mbuf_free(struct mbuf *b);
void mbuf_printf(struct mbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prometheus text exposition format 0.0.4.  0, or -1 (too large / no memory). */
int metrics_render_prometheus(const struct metrics_snapshot *s, int streams, struct mbuf *out);
/* The JSON of docs/metrics.md.  0 or -1. */
int metrics_render_json(const struct metrics_snapshot *s, int streams, struct mbuf *out);

/* ---------- the request parser (http.c, pure) ---------- */

#define METRICS_REQ_MAX 4096        /* request line and headers */
#define METRICS_TARGET_MAX 256
#define METRICS_HEADERS_MAX 32

enum metrics_route { ROUTE_METRICS, ROUTE_STATS };

struct metrics_req {
	int head;                   /* HEAD rather than GET */
	enum metrics_route route;
	int streams;                /* ?streams=1 */
};

/*
 * Parse one request from buf[0..len).  Returns a positive byte count (the
 * request is complete: request line and headers), 0 if more bytes are
 * needed, or a negative HTTP status to answer with: -400 malformed, -404
 * unknown path, -405 method other than GET/HEAD, -413 header section over
 * METRICS_REQ_MAX or too many headers, -414 target too long, -505 not
 * HTTP/1.x.
 */
int metrics_http_parse(const char *buf, size_t len, struct metrics_req *out);

/* ---------- the listener (server.c) ---------- */

#define METRICS_MAX_CONNS 16
#define METRICS_REQUEST_TIMEOUT_MS 3000   /* whole request must arrive by then */
#define METRICS_WRITE_TIMEOUT_MS 10000
#define METRICS_OUTPUT_MAX (32u << 20)

/* Fill s (zeroed by the caller) for one request.  0, or -1 (answer 503). */
typedef int (*metrics_collect_cb)(struct metrics_snapshot *s, int streams, void *arg);

struct metrics_server;

/*
 * Listen on sa.  Refuses a non-loopback address unless allow_public.
 * NULL on failure, with the reason in err.
 */
struct metrics_server *metrics_server_new(struct event_base *base, const struct sockaddr *sa,
                                          socklen_t salen, int allow_public,
                                          metrics_collect_cb cb, void *arg,
                                          char *err, size_t errlen);
/* The address actually bound (port 0 resolved).  0 or -1. */
int metrics_server_local_addr(const struct metrics_server *ms, struct sockaddr_storage *ss,
                              socklen_t *len);
void metrics_server_free(struct metrics_server *ms);

/* Is sa a loopback address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104)? */
int metrics_addr_is_loopback(const struct sockaddr *sa);

#endif
