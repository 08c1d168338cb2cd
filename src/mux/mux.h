/*
 * Mux layer: one session = one SCTP association carrying many proxied
 * connections, one per SCTP stream.  It owns the stream table, the stream
 * protocol state machine (docs/streams.md), per-stream credit flow control,
 * and the relay between each stream and its TCP bufferevent, which is the
 * same on the client and the server.
 */
#ifndef SCTPT_MUX_MUX_H
#define SCTPT_MUX_MUX_H

#include <stddef.h>
#include <stdint.h>

#include "mux/proto.h"

struct bufferevent;
struct wire_link;
struct mux_session;
struct mux_stream;

struct mux_config {
	uint32_t window;          /* per-stream receive window, largest (>= MUX_INITIAL_WINDOW):
	                           * starts at MUX_START_WINDOW and doubles while the
	                           * peer fills it within two round trips */
	size_t rx_budget;         /* session-wide bytes of window beyond the initial
	                           * (at most half of mem_budget is used) */
	size_t mem_budget;        /* per session: stream state plus queued data */
	unsigned max_streams;     /* concurrent streams per session */
	size_t max_msg;           /* largest DATA message we send */
	unsigned max_udp;         /* UDP associations per session (0: none) */
	size_t udp_budget;        /* per session: datagram bytes queued for sending */
	unsigned udp_rate;        /* per session and direction: datagrams/s relayed
	                           * (0: no limit; the server sets it) */
};

#define MUX_MEM_BUDGET_DEFAULT (32u << 20)

void mux_config_defaults(struct mux_config *c);

struct mux_session_cbs {
	/* The association is up: streams can be opened. */
	void (*up)(struct mux_session *m, void *arg);
	/* It is gone; every stream has been failed.  The owner frees m. */
	void (*down)(struct mux_session *m, const char *why, void *arg);
	/*
	 * Server: the peer opened stream s to dest.  Answer later with
	 * mux_stream_accept() or mux_stream_reject().
	 */
	void (*stream_open)(struct mux_session *m, struct mux_stream *s,
	                    const struct mux_dest *dest, void *arg);
	/*
	 * Remote forwards (docs/forwarding.md); NULL refuses them with RST
	 * 0x07.  Server: the client asks to listen (stream s carries the
	 * request): answer with mux_listen_accept() or mux_stream_reject(),
	 * and watch s with mux_stream_set_gone().
	 */
	void (*listen)(struct mux_session *m, struct mux_stream *s,
	               const struct mux_listen_req *req, void *arg);
	/*
	 * Client: the server opened stream s for a connection to forward id;
	 * dest has type MUX_DEST_NONE for the forward's own destination.
	 * Answer with mux_stream_accept() or mux_stream_reject().
	 */
	void (*fwd_open)(struct mux_session *m, struct mux_stream *s, uint32_t id,
	                 const struct mux_dest *dest, void *arg);
	/*
	 * Server: the peer opened a UDP association on s.  Answer later with
	 * mux_udp_accept() or mux_stream_reject().  NULL: the UDP relay is
	 * off and every UDP_OPEN is refused with RST 0x07.
	 */
	void (*udp_open)(struct mux_session *m, struct mux_stream *s, void *arg);
};

/* Client session over link (ownership taken).  NULL on failure. */
struct mux_session *mux_session_connect(struct wire_link *link,
                                        const struct mux_config *cfg,
                                        const struct mux_session_cbs *cbs, void *arg);
/* Server session for a newly admitted peer (ownership of link taken). */
struct mux_session *mux_session_accept(struct wire_link *link,
                                       const struct mux_config *cfg,
                                       const struct mux_session_cbs *cbs, void *arg);
/* Abort every stream and the association; deferred free.  NULL is fine. */
void mux_session_free(struct mux_session *m);
int mux_session_is_up(const struct mux_session *m);
unsigned mux_session_streams(const struct mux_session *m);

/*
 * Result of mux_stream_open(): err 0 means the server connected (the
 * callback may write the SOCKS success reply into bev before data flows);
 * otherwise err is an enum mux_err and bev is handed back to the caller,
 * who must free it.  Called exactly once unless the stream was opened
 * with a NULL return.
 */
typedef void (*mux_open_cb)(struct mux_stream *s, int err,
                            struct bufferevent *bev, void *arg);

/*
 * Client: open a stream to dest and relay bev over it.  Bytes already in
 * bev's input are sent at once with the OPEN (no extra round trip).  On
 * NULL (no free stream id, session down, invalid dest) bev still belongs to
 * the caller.
 */
struct mux_stream *mux_stream_open(struct mux_session *m, const struct mux_dest *dest,
                                   struct bufferevent *bev, mux_open_cb cb, void *arg);

/* Server: the outbound connection succeeded; relay bev over s. */
void mux_stream_accept(struct mux_stream *s, struct bufferevent *bev);
/* Server: the outbound connection failed with code (enum mux_err). */
void mux_stream_reject(struct mux_stream *s, uint8_t code);
/*
 * Server: called if s dies before accept/reject (peer reset, protocol
 * violation, session down), so the owner can cancel its pending connect.
 * s is freed right after: the owner must not accept or reject it then.
 */
void mux_stream_set_cancel(struct mux_stream *s, void (*cancel)(void *arg), void *arg);

/* ---------- remote forwards (docs/forwarding.md) ---------- */

/*
 * Client: the answer to a LISTEN: err 0 and the port the server listens
 * on, or an RST code (enum mux_err).  Called exactly once unless the
 * request was not sent (NULL return); after an error s is gone.
 */
typedef void (*mux_listen_cb)(struct mux_stream *s, int err, uint16_t port, void *arg);

/* Client: ask the server to listen.  The stream lives as long as the listener. */
struct mux_stream *mux_listen_open(struct mux_session *m, const struct mux_listen_req *req,
                                   mux_listen_cb cb, void *arg);
/* Server: the listener for s is up on port. */
void mux_listen_accept(struct mux_stream *s, uint16_t port);
/* Either side: end a listener's stream (RST code); gone callbacks follow. */
void mux_listen_close(struct mux_stream *s, uint8_t code);
/*
 * Called once when s is released, for whatever reason (peer RST, session
 * down, protocol error, mux_listen_close); s is freed right after.
 */
void mux_stream_set_gone(struct mux_stream *s, void (*gone)(void *arg), void *arg);
/*
 * The code of the RST the peer ended s with, 0 if it did not (yet); valid
 * in the gone callback, e.g. why the server closed a remote forward.
 */
uint8_t mux_stream_peer_code(const struct mux_stream *s);
/*
 * Server: open an even stream towards the client for a connection that
 * came in on forward id (dest type NONE for the forward's destination, or
 * the address a reverse-SOCKS request named).  As mux_stream_open().
 */
struct mux_stream *mux_stream_open_fwd(struct mux_session *m, uint32_t id,
                                       const struct mux_dest *dest, struct bufferevent *bev,
                                       mux_open_cb cb, void *arg);
/* ---------- UDP relay (docs/udp-relay.md) ---------- */

struct mux_udp_cbs {
	/*
	 * Client: the server answered UDP_OPEN; err 0 is success, otherwise
	 * an enum mux_err and s is gone once this returns.
	 */
	void (*opened)(struct mux_stream *s, int err, void *arg);
	/* A datagram: from the client, addr is its destination (IPv4, IPv6
	 * or a name); from the server, the source of a reply. */
	void (*dgram)(struct mux_stream *s, const struct mux_dest *addr,
	              const uint8_t *p, size_t n, void *arg);
	/* The association ended under the owner (peer CLOSE or RST, session
	 * down, protocol error): code 0 for a CLOSE.  s is gone after. */
	void (*closed)(struct mux_stream *s, uint8_t code, void *arg);
};

/* Client: open a UDP association.  NULL when the session is not up, or a
 * limit (UDP associations, streams, budget) is reached. */
struct mux_stream *mux_udp_open(struct mux_session *m, const struct mux_udp_cbs *cbs,
                                void *arg);
/* Server: take the association s the peer opened. */
void mux_udp_accept(struct mux_stream *s, const struct mux_udp_cbs *cbs, void *arg);
/*
 * Send one datagram to addr (client: destination; server: the source of
 * a reply).  Unordered; queued within the association's and the
 * session's bounds while the association is busy, the oldest dropped
 * (and counted) when they are full.  0 sent or queued, -1 dropped.
 */
int mux_udp_send(struct mux_stream *s, const struct mux_dest *addr, const void *p, size_t n);
/* Datagrams this association dropped on the way out (full, stale). */
unsigned long mux_udp_dropped(const struct mux_stream *s);
/* The owner ends the association (CLOSE); no callbacks follow.  s is gone. */
void mux_udp_close(struct mux_stream *s);

/* The link under the session moved to another path (see sctp_assoc_path_changed). */
void mux_session_path_changed(struct mux_session *m);

/* Counters for tests and diagnostics. */
struct mux_stats {
	unsigned long streams_opened, streams_closed, streams_active;
	unsigned long streams_refused;     /* OPENs refused before any allocation */
	unsigned long budget_resets;       /* streams reset for the memory budget */
	unsigned long protocol_errors;
	unsigned long windows_grown;       /* receive windows auto-tuning doubled */
	uint64_t bytes_in, bytes_out;
	size_t mem, mem_peak;              /* bytes counted against mem_budget */
	unsigned tombs;                    /* ids waiting only for the peer's last message */
	unsigned long udp_active;          /* UDP associations open */
	unsigned long udp_refused;         /* UDP_OPENs refused for the per-session cap */
	unsigned long udp_dgrams_in, udp_dgrams_out;
	unsigned long udp_dropped;         /* queue or budget full, stale, rate, send failed */
	unsigned long udp_rate_dropped;    /* of which over cfg.udp_rate */
	unsigned long udp_bad;             /* malformed datagram messages from the peer */
	size_t udp_queued;                 /* bytes queued against udp_budget */
};
void mux_session_stats(const struct mux_session *m, struct mux_stats *st);

struct sctp_assoc_stats;
/* The association's own numbers (sctp_assoc_get_stats); have 0 if none. */
void mux_session_assoc_stats(const struct mux_session *m, struct sctp_assoc_stats *st);

/* One stream, for the metrics endpoint's per-stream view. */
struct mux_stream_info {
	uint16_t sid;
	const char *state;          /* "opening", "pending", "open", "half-closed", "closing" */
	uint64_t bytes_in, bytes_out;
	uint32_t credit_tx;         /* bytes we may still send */
	uint32_t credit_rx;         /* bytes the peer may still send us */
	uint32_t window;
	size_t queued;
	uint64_t age_ms;
	struct mux_dest dest;       /* client side only (type 0 on the server) */
};
/* Up to max streams of m into out (lowest ids first); how many. */
size_t mux_session_stream_info(const struct mux_session *m, struct mux_stream_info *out,
                               size_t max);

#endif
