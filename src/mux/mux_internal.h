/*
 * Mux internals shared by its three parts; included only from src/mux/ and
 * from the mux unit test and fuzz harness.
 *
 *   session.c  the stream table, association up/down, the dispatch of
 *              incoming messages to streams, and the SCTP ops seam;
 *   stream.c   the per-stream protocol state machine (docs/streams.md):
 *              OPEN/OPEN_OK/DATA/FIN/CLOSE/RST and credit;
 *   relay.c    the TCP side of a stream (reading and writing its socket).
 *
 * Lifetimes: a stream is released only when both sides have sent a
 * terminal message (CLOSE or RST), so a stream id is never reused while
 * messages of its previous life can still arrive.
 */
#ifndef SCTPT_MUX_MUX_INTERNAL_H
#define SCTPT_MUX_MUX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "mux/credit.h"
#include "mux/mux.h"
#include "mux/proto.h"
#include "mux/sidtable.h"
#include "util/log.h"

struct event;
struct evbuffer;
struct sctp_assoc_stats;

/*
 * What the mux needs from the association below it.  The session calls
 * nothing else of the SCTP layer, so the state machine can be driven by a
 * unit test or a fuzzer with a fake in place of usrsctp.
 */
struct mux_sctp_ops {
	/* Send one whole message: 0, MUX_SEND_AGAIN (writable follows), or -1. */
	int (*send)(void *ctx, uint16_t sid, uint32_t ppid, const void *p, size_t n);
	/* Usable stream count once up. */
	unsigned (*streams)(void *ctx);
	/* The carrier path changed (may be NULL). */
	void (*path_changed)(void *ctx);
	/* Abort and free the association (deferred). */
	void (*free)(void *ctx);
	/* The association's numbers for the metrics endpoint (may be NULL). */
	void (*get_stats)(void *ctx, struct sctp_assoc_stats *st);
	/* send, unordered (datagrams); NULL: send is used. */
	int (*send_unordered)(void *ctx, uint16_t sid, uint32_t ppid, const void *p, size_t n);
};

#define MUX_SEND_AGAIN (-2)   /* == SCTP_AGAIN */

/*
 * The TCP side of a stream (relay.c).  While attached the relay owns the
 * socket; bev only carries it in and out (see relay.c).
 */
struct mux_relay {
	struct bufferevent *bev;   /* the envelope: disabled while attached */
	int fd;
	struct event_base *base;
	struct event *rd_ev;       /* readable: TCP -> stream */
	struct event *wr_ev;       /* writable, while out is not empty; made on first need */
	struct evbuffer *in;       /* read, not yet sent as DATA (<= max_msg); NULL if empty */
	struct evbuffer *out;      /* received, not yet written (<= window); NULL if empty */
	size_t out_skip;           /* leading bytes of out that are not stream data */
	unsigned reading : 1;      /* rd_ev is added */
	unsigned writing : 1;      /* wr_ev is added */
	unsigned shut_wr : 1;      /* TCP write side shut down */
};

struct mux_udp;

struct mux_stream {
	struct mux_session *m;
	uint16_t sid;
	struct mux_udp *udp;           /* a UDP association (udp.c), not a TCP relay */
	struct mux_relay r;
	struct evbuffer *pending_rx;   /* server: data that came before accept */

	mux_open_cb open_cb;           /* client, until OPEN_OK or RST */
	void *open_arg;
	void (*cancel)(void *);        /* server, until accept or reject */
	void *cancel_arg;
	mux_listen_cb listen_cb;       /* client, until LISTEN_OK or RST */
	void *listen_arg;
	void (*gone)(void *);          /* called at release */
	void *gone_arg;
	uint32_t fwd_id;               /* server: FWD_OPEN of this forward */
	struct mux_listen_req lreq;    /* client: the LISTEN to send */
	uint16_t listen_port;          /* server: LISTEN_OK to send */

	unsigned opening : 1;      /* client: OPEN sent, no answer yet */
	unsigned pending : 1;      /* server: OPEN received, not accepted yet */
	unsigned open_seen : 1;    /* server: the OPEN of this life was decoded */
	unsigned need_open : 1;
	unsigned need_open_ok : 1;
	unsigned need_rst : 1;
	unsigned need_close : 1;   /* UDP association: CLOSE owed */
	unsigned tx_eof : 1;       /* the TCP side sent EOF */
	unsigned tx_fin : 1;       /* we sent FIN */
	unsigned rx_fin : 1;       /* peer sent FIN */
	unsigned tx_term : 1;      /* we sent CLOSE or RST */
	unsigned rx_term : 1;      /* peer sent CLOSE or RST */
	unsigned blocked : 1;      /* waiting for association send space */
	unsigned lstream : 1;      /* a listener's stream: LISTEN, LISTEN_OK, RST only */
	unsigned listening : 1;    /* client: LISTEN sent, no answer yet */
	unsigned need_listen : 1;
	unsigned need_listen_ok : 1;
	unsigned fwd : 1;          /* server: opened with FWD_OPEN (even id) */
	uint8_t rst_code;
	uint8_t rx_rst_code;       /* the code of the peer's RST, 0 if none */

	struct mux_credit cr;
	uint32_t extra;            /* part of window taken from the budget */
	size_t queued;             /* bytes of its queues counted in m->mem */

	uint32_t ctl_ppid;         /* control message being reassembled */
	uint16_t ctl_len;
	uint8_t ctl_busy;          /* a fragment of it came (even an empty one) */
	uint8_t ctl[MUX_CTRL_MAX];

	TAILQ_ENTRY(mux_stream) blocked_link;
	struct mux_dest dest;      /* client: where it goes, for logs */
	uint64_t bytes_in, bytes_out;   /* payload, for the metrics endpoint */
	uint64_t created_ms;            /* clock_now_ms() when it was made */
};

TAILQ_HEAD(mux_stream_list, mux_stream);

struct mux_session {
	const struct mux_sctp_ops *ops;
	void *ops_ctx;                 /* the struct sctp_assoc */
	struct mux_config cfg;
	struct mux_session_cbs cbs;
	void *arg;
	int client;
	int up;
	int down;
	struct sidtable st;            /* sid -> struct mux_stream, and tombstones */
	size_t extra_used;
	size_t extra_max;              /* min(rx_budget, mem_budget / 2) */
	size_t mem;                    /* stream state and queued bytes (the budget) */
	unsigned owed;                 /* tombstones with TOMB_OWED */
	int reads_held;                /* some stream stopped reading for the budget */
	struct mux_stream_list blocked;
	struct mux_stream_list udp_blocked;   /* UDP associations waiting for send space */
	int64_t fair;                  /* TCP DATA bytes sent less datagram bytes, clamped */
	struct mux_udp_rate {          /* token buckets for cfg.udp_rate */
		double tokens;
		uint64_t last_ms;
	} udp_rate_in, udp_rate_out;
	struct mux_stats stats;
};

/*
 * Tombstones (sidtable.h): a stream whose terminal message we sent is
 * freed at once, even if the peer never answers; its id keeps one byte
 * until the peer's terminal message arrives, so the id is not reused
 * early and late messages of that life are dropped quietly.  An OPEN we
 * refuse before allocating anything (limits, budget) is a tombstone from
 * the start.
 */
#define TOMB_TX   0x01   /* we sent our terminal message */
#define TOMB_OWED 0x02   /* we owe RST 0x12: refused while the association was full */
#define TOMB_RX   0x04   /* the peer's terminal message arrived */
#define TOMB_UNSUP 0x08  /* the owed RST is 0x07 (unknown message type), not 0x12 */

/*
 * What a stream costs the session budget besides its queued bytes: the
 * struct and, beyond it, its read event, the disabled bufferevent, the
 * server's egress state and allocator slack.  Measured: 4,096 accepted
 * idle streams add 14 MB to a server's RSS, 3.5 KB each
 * (docs/internals.md, "Mux: memory bounds").
 */
#define MUX_STREAM_COST (sizeof(struct mux_stream) + 3072)

extern struct log_ratelimit mux_rl;

/* session.c */
struct mux_session *mux_session_new_ops(const struct mux_config *cfg,
                                        const struct mux_session_cbs *cbs, void *arg,
                                        int client, const struct mux_sctp_ops *ops,
                                        void *ops_ctx);
void mux_session_on_up(struct mux_session *m);
void mux_session_on_down(struct mux_session *m, const char *why);
void mux_session_on_message(struct mux_session *m, uint16_t sid, uint32_t ppid,
                            const uint8_t *data, size_t len, int eor);
void mux_session_on_writable(struct mux_session *m);
struct mux_stream *stream_new(struct mux_session *m, uint16_t sid);
void stream_release(struct mux_stream *s);
int stream_maybe_release(struct mux_stream *s);
/* Recount s's queued bytes into the budget; 1 if that reset s and it is gone. */
int stream_account(struct mux_stream *s, int enforce);
/* Is there room for one more stream (limit, and budget for it and its initial window)? */
int session_admits(const struct mux_session *m);
/* May streams read their TCP side (the budget is not exhausted)? */
int session_may_read(const struct mux_session *m);
/*
 * Let streams held back by the budget read again once it has room.  Only
 * from the top of a callback: it may fail (and free) any stream.
 */
void session_resume_reads(struct mux_session *m);
/*
 * n received bytes of s were written to its TCP side: count them, and
 * grow s's window while a whole one goes through in under four round
 * trips, as far as --window and the session's budget for windows allow.
 * 1 if it grew: a CREDIT is owed.
 */
int session_consumed(struct mux_stream *s, size_t n);

/* stream.c */
int stream_flush(struct mux_stream *s);
size_t stream_send_direct(struct mux_stream *s, const uint8_t *p, size_t len);
void stream_abort(struct mux_stream *s, uint8_t code);
void stream_protocol_error(struct mux_stream *s, const char *what);
void stream_on_control(struct mux_stream *s, uint32_t ppid);
void stream_on_data(struct mux_stream *s, const uint8_t *p, size_t n);
void stream_open_failed(struct mux_stream *s, uint8_t code);
/* Did this side open s (client: odd ids, server: even)? */
int stream_is_local(const struct mux_stream *s);

/*
 * Send space between TCP streams and datagrams (udp.c): when both wait,
 * the class that sent fewer bytes lately goes first, so neither starves the
 * other; the balance forgets beyond MUX_FAIR_CAP.
 */
#define MUX_FAIR_CAP (256 * 1024)
static inline void fair_tcp_sent(struct mux_session *m, size_t n)
{
	m->fair = m->fair + (int64_t)n > MUX_FAIR_CAP ? MUX_FAIR_CAP : m->fair + (int64_t)n;
}

static inline void fair_udp_sent(struct mux_session *m, size_t n)
{
	m->fair = m->fair - (int64_t)n < -MUX_FAIR_CAP ? -MUX_FAIR_CAP : m->fair - (int64_t)n;
}

/* udp.c */
/* Bounds of one association's send queue; stale datagrams are dropped. */
#define MUX_UDP_QUEUE_MAX 128
#define MUX_UDP_QUEUE_BYTES (256 * 1024)
#define MUX_UDP_STALE_MS 500
int udp_flush(struct mux_stream *s);
void udp_abort(struct mux_stream *s, uint8_t code);
void udp_on_control(struct mux_stream *s, uint32_t ppid);
void udp_on_dgram(struct mux_stream *s, const uint8_t *p, size_t n, int eor);
void udp_open_failed(struct mux_stream *s, uint8_t code);
void udp_release(struct mux_stream *s);
/* Serve UDP associations waiting for send space (their control messages
 * always; datagrams when it is their turn). */
void udp_on_writable(struct mux_session *m);
/* Should datagrams go before the TCP streams in this round? */
int udp_goes_first(const struct mux_session *m);
/* Server: admit a UDP_OPEN on an idle id (cap), before allocating. */
int udp_admits(const struct mux_session *m);

/* relay.c */
int relay_attach(struct mux_stream *s, struct bufferevent *bev);
struct bufferevent *relay_take(struct mux_stream *s);
void relay_close(struct mux_stream *s, int hard);
int relay_update_read(struct mux_stream *s);
size_t relay_in_len(const struct mux_stream *s);
size_t relay_out_len(const struct mux_stream *s);
/* Free a relay queue once it is empty (queues exist only while they hold bytes). */
void relay_qtrim(struct evbuffer **b);
int relay_lend_output(struct mux_stream *s);
int relay_adopt_output(struct mux_stream *s);
int relay_deliver(struct mux_stream *s, const uint8_t *p, size_t n);
int relay_queue(struct mux_stream *s, struct evbuffer *buf);
void relay_shut_wr_if_done(struct mux_stream *s);

#endif
