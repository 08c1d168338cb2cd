/*
 * The per-stream protocol state machine (docs/streams.md): what a stream
 * owes the peer (stream_flush), what each incoming message does to it, and
 * the stream half of the public API (open, accept, reject).
 *
 * All sending goes through the session's SCTP ops, in protocol order; the
 * TCP side is reached only through relay.c.  A function that may free the
 * stream says so by returning 1 (gone), so callers never touch it after.
 */
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "metrics/metrics.h"
#include "mux/mux_internal.h"
#include "util/fault.h"

static int send_msg(struct mux_stream *s, uint32_t ppid, const void *p, size_t n)
{
	struct mux_session *m = s->m;

	return m->ops->send(m->ops_ctx, s->sid, ppid, p, n);
}

/*
 * Give the TCP side back to whoever opened the stream, with the outcome.
 * A peer's RST code 0 must not read as success (err 0) to the opener.
 */
void stream_open_failed(struct mux_stream *s, uint8_t code)
{
	if (s->udp != NULL) {
		udp_open_failed(s, code);
		return;
	}
	if (code == 0)
		code = MUX_ERR_GENERAL;
	s->opening = 0;
	s->open_cb(s, code, relay_take(s), s->open_arg);
}

int stream_is_local(const struct mux_stream *s)
{
	return (s->sid & 1) == (s->m->client ? 1 : 0);
}

/* A LISTEN was refused or its stream failed before the answer. */
static void listen_failed(struct mux_stream *s, uint8_t code)
{
	mux_listen_cb cb = s->listen_cb;

	s->listening = 0;
	s->listen_cb = NULL;
	if (cb != NULL)
		cb(s, code != 0 ? code : MUX_ERR_GENERAL, 0, s->listen_arg);
}

/* Read or not per the stream's state; 1 if that failed and s is gone. */
static int stream_settle(struct mux_stream *s)
{
	struct mux_session *m = s->m;
	uint16_t sid = s->sid;

	if (relay_update_read(s) == 0)
		return 0;
	log_warn("stream %u: cannot watch its connection; failing it", sid);
	stream_abort(s, MUX_ERR_GENERAL);
	return sidtable_get(&m->st, sid) != s;
}

static int stream_block(struct mux_stream *s)
{
	log_debug("stream %u: blocked on association send space", s->sid);
	if (!s->blocked) {
		s->blocked = 1;
		TAILQ_INSERT_TAIL(&s->m->blocked, s, blocked_link);
	}
	return stream_settle(s);
}

/* Send DATA from what the relay read, then FIN after the TCP EOF. */
static int stream_flush_data(struct mux_stream *s)
{
	static const uint8_t zero = 0;
	struct mux_session *m = s->m;
	struct evbuffer *in = s->r.in;
	size_t len;
	int r;

	while (in != NULL && (len = evbuffer_get_length(in)) > 0 && s->cr.tx > 0) {
		size_t n = credit_sendable(&s->cr, len, m->cfg.max_msg);
		uint8_t *p;

		p = evbuffer_pullup(in, (ev_ssize_t)n);
		if (p == NULL)
			return -1;
		r = send_msg(s, MUX_DATA, p, n);
		if (r != 0)
			return r;
		evbuffer_drain(in, n);
		credit_sent(&s->cr, n);
		m->stats.bytes_out += n;
		s->bytes_out += n;
		fair_tcp_sent(m, n);
	}
	relay_qtrim(&s->r.in);
	if (s->tx_eof && relay_in_len(s) == 0) {
		r = send_msg(s, MUX_FIN, &zero, 1);
		if (r != 0)
			return r;
		s->tx_fin = 1;
		log_debug("stream %u: sent FIN", s->sid);
	}
	return 0;
}

/*
 * Issue 11: bytes the relay just read go out as DATA straight from its
 * read buffer when nothing is queued or owed ahead of them (the order
 * stream_flush_owed keeps), instead of being copied into the stream's
 * queue and out again.  Returns how many were sent; the caller queues the
 * rest, and stream_flush() then blocks the stream if the association is
 * full, as usual.
 */
size_t stream_send_direct(struct mux_stream *s, const uint8_t *p, size_t len)
{
	struct mux_session *m = s->m;
	size_t done = 0;

	if (s->blocked || !m->up || m->down || s->need_open || s->need_listen ||
	    s->need_open_ok || s->need_listen_ok || s->need_rst || s->tx_term ||
	    s->lstream || s->tx_fin || s->tx_eof || s->r.bev == NULL ||
	    relay_in_len(s) != 0 || (s->cr.pending > 0 && !s->rx_fin && !s->pending))
		return 0;
	while (done < len && s->cr.tx > 0) {
		size_t n = credit_sendable(&s->cr, len - done, m->cfg.max_msg);

		if (n == 0 || send_msg(s, MUX_DATA, p + done, n) != 0)
			break;
		done += n;
		credit_sent(&s->cr, n);
		m->stats.bytes_out += n;
		s->bytes_out += n;
	}
	return done;
}

/*
 * Send whatever this stream owes the peer, in protocol order: OPEN or
 * OPEN_OK, RST, CREDIT, DATA, FIN, CLOSE.  Stops when the association's
 * send buffer is full and resumes from the writable callback.  Returns 1
 * if the stream is gone.
 */
static int stream_flush_owed(struct mux_stream *s)
{
	static const uint8_t zero = 0;
	struct mux_session *m = s->m;
	uint16_t sid = s->sid;
	int r;

	if (s->blocked || !m->up || m->down)
		return 0;
	if (s->need_open || s->need_listen) {
		uint8_t buf[MUX_FWD_OPEN_MAX];
		uint32_t ppid = s->need_listen ? MUX_LISTEN : s->fwd ? MUX_FWD_OPEN : MUX_OPEN;
		int n = s->need_listen ? proto_encode_listen(&s->lreq, buf, sizeof(buf)) :
		        s->fwd ? proto_encode_fwd_open(s->fwd_id, &s->dest, buf, sizeof(buf)) :
		        proto_encode_open(&s->dest, buf, sizeof(buf));

		if (n < 0) {
			/* The open functions validated it; this is our bug. */
			log_err("stream %u: cannot encode message type %u", s->sid, ppid);
			s->need_open = s->need_listen = 0;
			stream_abort(s, MUX_ERR_GENERAL);
			return sidtable_get(&m->st, sid) != s;
		}
		if ((r = send_msg(s, ppid, buf, (size_t)n)) != 0)
			goto out;
		s->need_open = s->need_listen = 0;
	}
	if (s->need_open_ok) {
		if ((r = send_msg(s, MUX_OPEN_OK, &zero, 1)) != 0)
			goto out;
		s->need_open_ok = 0;
	}
	if (s->need_listen_ok) {
		uint8_t buf[2];

		proto_encode_listen_ok(s->listen_port, buf);
		if ((r = send_msg(s, MUX_LISTEN_OK, buf, sizeof(buf))) != 0)
			goto out;
		s->need_listen_ok = 0;
	}
	if (s->need_rst) {
		if ((r = send_msg(s, MUX_RST, &s->rst_code, 1)) != 0)
			goto out;
		s->need_rst = 0;
		s->tx_term = 1;
		return stream_maybe_release(s);
	}
	if (s->tx_term || s->lstream)
		return 0;
	/* No window beyond the initial one until the server side connected. */
	if (s->cr.pending > 0 && !s->rx_fin && !s->pending) {
		uint8_t buf[4];

		proto_encode_credit(s->cr.pending, buf);
		if ((r = send_msg(s, MUX_CREDIT, buf, sizeof(buf))) != 0)
			goto out;
		credit_grant_sent(&s->cr);
	}
	if (s->r.bev != NULL && !s->tx_fin && (r = stream_flush_data(s)) != 0)
		goto out;
	/*
	 * CLOSE only once what we received has reached the TCP side: until
	 * then the connection stays a stream, counted against the limits.
	 */
	if (s->tx_fin && s->rx_fin && !s->tx_term && relay_out_len(s) == 0) {
		if ((r = send_msg(s, MUX_CLOSE, &zero, 1)) != 0)
			goto out;
		s->tx_term = 1;
		if (stream_maybe_release(s))
			return 1;
	}
	return stream_settle(s);
out:
	if (r == MUX_SEND_AGAIN)
		return stream_block(s);
	/* The association is failing; it will go down and take s with it. */
	return stream_settle(s);
}

int stream_flush(struct mux_stream *s)
{
	if (s->udp != NULL)
		return udp_flush(s);
	if (stream_flush_owed(s))
		return 1;
	(void)stream_account(s, 0);   /* queues moved: TCP reads and writes, sends */
	return 0;
}

/* ---------- aborts ---------- */

/* Abort locally: close the TCP side with RST and tell the peer. */
void stream_abort(struct mux_stream *s, uint8_t code)
{
	if (s->udp != NULL) {
		udp_abort(s, code);
		return;
	}
	if (s->pending && s->cancel != NULL) {
		s->cancel(s->cancel_arg);
		s->cancel = NULL;
	}
	s->pending = 0;
	if (s->pending_rx != NULL) {
		evbuffer_free(s->pending_rx);
		s->pending_rx = NULL;
	}
	if (s->opening)
		stream_open_failed(s, code);
	if (s->listening)
		listen_failed(s, code);
	relay_close(s, 1);
	if (!s->tx_term && !s->need_rst) {
		s->need_rst = 1;
		s->rst_code = code;
	}
	if (!stream_maybe_release(s))
		stream_flush(s);
}

void stream_protocol_error(struct mux_stream *s, const char *what)
{
	s->m->stats.protocol_errors++;
	log_ratelimited(&mux_rl, LOG_LEVEL_WARN, "stream %u: protocol error: %s",
	                s->sid, what);
	stream_abort(s, MUX_ERR_PROTOCOL);
}

/* ---------- receiving ---------- */

void stream_on_data(struct mux_stream *s, const uint8_t *p, size_t n)
{
	if (s->tx_term && s->need_rst == 0 && s->r.bev == NULL)
		return;   /* we aborted; drain what was in flight */
	if (s->lstream) {
		stream_protocol_error(s, "DATA on a listener's stream");
		return;
	}
	if (s->rx_fin || s->rx_term) {
		stream_protocol_error(s, "DATA after FIN");
		return;
	}
	if (s->opening) {
		stream_protocol_error(s, "DATA before OPEN_OK");
		return;
	}
	if (s->need_rst || s->tx_term)
		return;
	if (credit_receive(&s->cr, n) < 0) {
		stream_protocol_error(s, "peer exceeded its credit");
		return;
	}
	s->m->stats.bytes_in += n;
	s->bytes_in += n;
	if (s->r.bev != NULL) {
		int r = relay_deliver(s, p, n);

		if (r < 0)
			stream_abort(s, MUX_ERR_GENERAL);   /* out of memory */
		else if (r == 0)
			(void)stream_account(s, 1);
	} else if (s->pending) {
		/*
		 * Before the connection exists no grant goes out (stream_flush),
		 * so the credit check above holds this to the initial window.
		 */
		if (s->pending_rx == NULL && !FAULT("mux_evbuffer_new"))
			s->pending_rx = evbuffer_new();
		if (s->pending_rx == NULL || evbuffer_add(s->pending_rx, p, n) < 0)
			stream_abort(s, MUX_ERR_GENERAL);
		else
			(void)stream_account(s, 1);
	}
}

static void on_fin(struct mux_stream *s)
{
	s->rx_fin = 1;
	log_debug("stream %u: received FIN", s->sid);
	relay_shut_wr_if_done(s);
	stream_flush(s);
}

static void on_open_ok(struct mux_stream *s)
{
	if (!s->opening) {
		if (!s->tx_term && !s->need_rst)   /* not just a race with our abort */
			stream_protocol_error(s, "unexpected OPEN_OK");
		return;
	}
	if (relay_lend_output(s) < 0) {
		stream_abort(s, MUX_ERR_GENERAL);   /* the opener gets a failure */
		return;
	}
	s->opening = 0;
	s->open_cb(s, 0, s->r.bev, s->open_arg);
	/* The callback wrote its reply into bev; it goes out before any DATA. */
	if (relay_adopt_output(s) < 0) {
		stream_abort(s, MUX_ERR_GENERAL);
		return;
	}
	stream_flush(s);
}

static void on_rst(struct mux_stream *s, uint8_t code)
{
	log_debug("stream %u: received RST (%s)", s->sid, proto_err_str(code));
	s->rx_term = 1;
	s->rx_rst_code = code;
	if (s->opening)
		stream_open_failed(s, code);
	if (s->listening)
		listen_failed(s, code);
	if (s->pending) {
		s->pending = 0;
		if (s->cancel != NULL)
			s->cancel(s->cancel_arg);
		s->cancel = NULL;
	}
	relay_close(s, 1);
	if (!s->tx_term && !s->need_rst) {
		s->need_rst = 1;
		s->rst_code = MUX_ERR_RESET;
	}
	if (!stream_maybe_release(s))
		stream_flush(s);
}

static void on_open(struct mux_stream *s)
{
	struct mux_session *m = s->m;
	struct mux_dest dest;
	int r = proto_decode_open(s->ctl, s->ctl_len, &dest);
	char dbuf[300];

	s->open_seen = 1;
	s->pending = 1;
	if (r < 0) {
		m->stats.protocol_errors++;
		log_ratelimited(&mux_rl, LOG_LEVEL_WARN, "stream %u: malformed OPEN", s->sid);
		mux_stream_reject(s, r == -2 ? MUX_ERR_ATYP : MUX_ERR_PROTOCOL);
		return;
	}
	log_debug("stream %u: OPEN %s", s->sid,
	          log_addr(proto_dest_str(&dest, dbuf, sizeof(dbuf))));
	m->cbs.stream_open(m, s, &dest, m->arg);
}

/* A stream the peer opened: the accepting side's setup, common to all kinds. */
static void opened_by_peer(struct mux_stream *s)
{
	s->open_seen = 1;
	s->pending = 1;
}

/* Server: the client asks for a listener (a remote forward). */
static void on_listen(struct mux_stream *s)
{
	struct mux_session *m = s->m;
	struct mux_listen_req req;

	opened_by_peer(s);
	s->lstream = 1;
	/* No data ever flows here: give back the window enlargement. */
	m->extra_used -= s->extra;
	s->extra = 0;
	credit_init(&s->cr, MUX_INITIAL_WINDOW, 0);
	if (proto_decode_listen(s->ctl, s->ctl_len, &req) < 0) {
		m->stats.protocol_errors++;
		log_ratelimited(&mux_rl, LOG_LEVEL_WARN, "stream %u: malformed LISTEN", s->sid);
		mux_stream_reject(s, MUX_ERR_PROTOCOL);
		return;
	}
	if (m->cbs.listen == NULL) {
		mux_stream_reject(s, MUX_ERR_UNSUPPORTED);
		return;
	}
	m->cbs.listen(m, s, &req, m->arg);
}

/* Client: the server opened a stream for a connection to one of our forwards. */
static void on_fwd_open(struct mux_stream *s)
{
	struct mux_session *m = s->m;
	struct mux_dest dest;
	uint32_t id;
	int r = proto_decode_fwd_open(s->ctl, s->ctl_len, &id, &dest);

	opened_by_peer(s);
	if (r < 0) {
		m->stats.protocol_errors++;
		log_ratelimited(&mux_rl, LOG_LEVEL_WARN, "stream %u: malformed FWD_OPEN", s->sid);
		mux_stream_reject(s, r == -2 ? MUX_ERR_ATYP : MUX_ERR_PROTOCOL);
		return;
	}
	if (m->cbs.fwd_open == NULL) {
		mux_stream_reject(s, MUX_ERR_UNSUPPORTED);
		return;
	}
	m->cbs.fwd_open(m, s, id, &dest, m->arg);
}

static void on_listen_ok(struct mux_stream *s)
{
	uint16_t port;

	if (!s->listening) {
		if (!s->tx_term && !s->need_rst)
			stream_protocol_error(s, "unexpected LISTEN_OK");
		return;
	}
	if (proto_decode_listen_ok(s->ctl, s->ctl_len, &port) < 0) {
		stream_protocol_error(s, "malformed LISTEN_OK");
		return;
	}
	s->listening = 0;
	s->listen_cb(s, 0, port, s->listen_arg);
	s->listen_cb = NULL;
}

/* A whole control message (s->ctl) of type ppid arrived. */
void stream_on_control(struct mux_stream *s, uint32_t ppid)
{
	struct mux_session *m = s->m;
	uint32_t inc;
	uint8_t code;

	if (s->udp != NULL || ppid == MUX_UDP_OPEN) {
		udp_on_control(s, ppid);
		return;
	}
	/* On the accepting side a stream's life starts with a whole OPEN (or
	 * LISTEN, FWD_OPEN); one begun by a fragment of it takes nothing else
	 * until that completes. */
	if (!stream_is_local(s) && !s->open_seen && ppid != MUX_OPEN && ppid != MUX_LISTEN &&
	    ppid != MUX_FWD_OPEN && ppid != MUX_RST) {
		stream_protocol_error(s, "message before OPEN");
		return;
	}
	/* A listener's stream carries its request, the answer and the end. */
	if (s->lstream && ppid != MUX_LISTEN_OK && ppid != MUX_RST) {
		stream_protocol_error(s, "unexpected message on a listener's stream");
		return;
	}
	switch (ppid) {
	case MUX_OPEN:
	case MUX_LISTEN:
	case MUX_FWD_OPEN:
		/* A sid we reset is not free until the peer answers our RST
		 * (docs/streams.md): once the RST is sent only a tombstone is
		 * left (session.c); before that an OPEN is a protocol error.
		 * OPEN and LISTEN go to the server, FWD_OPEN to the client. */
		if (stream_is_local(s) || s->open_seen || s->tx_term || s->need_rst ||
		    (ppid == MUX_FWD_OPEN) != (m->client != 0)) {
			stream_protocol_error(s, "unexpected OPEN");
			return;
		}
		if (ppid == MUX_OPEN)
			on_open(s);
		else if (ppid == MUX_LISTEN)
			on_listen(s);
		else
			on_fwd_open(s);
		return;
	case MUX_LISTEN_OK:
		on_listen_ok(s);
		return;
	case MUX_OPEN_OK:
		if (proto_decode_empty(s->ctl, s->ctl_len) < 0)
			stream_protocol_error(s, "malformed OPEN_OK");
		else
			on_open_ok(s);
		return;
	case MUX_FIN:
		if (proto_decode_empty(s->ctl, s->ctl_len) < 0 || s->rx_fin || s->rx_term ||
		    s->opening)
			stream_protocol_error(s, "unexpected FIN");
		else
			on_fin(s);
		return;
	case MUX_CREDIT:
		if (proto_decode_credit(s->ctl, s->ctl_len, &inc) < 0 ||
		    credit_add(&s->cr, inc) < 0) {
			stream_protocol_error(s, "bad CREDIT");
			return;
		}
		stream_flush(s);
		return;
	case MUX_RST:
		if (proto_decode_rst(s->ctl, s->ctl_len, &code) < 0)
			code = MUX_ERR_PROTOCOL;
		on_rst(s, code);
		return;
	case MUX_CLOSE:
		if (proto_decode_empty(s->ctl, s->ctl_len) < 0 || !s->rx_fin || !s->tx_fin) {
			stream_protocol_error(s, "unexpected CLOSE");
			return;
		}
		s->rx_term = 1;
		if (!stream_flush(s))
			stream_maybe_release(s);
		return;
	default:
		stream_protocol_error(s, "unknown message type");
		return;
	}
}

/* ---------- stream API ---------- */

static int sid_alloc(struct mux_session *m)
{
	/* The client opens odd ids, the server even ones. */
	unsigned parity = m->client ? 1 : 0;

	if (!session_admits(m)) {
		if (m->stats.streams_active < m->cfg.max_streams)
			log_ratelimited(&mux_rl, LOG_LEVEL_WARN,
			                "session memory budget (%zu KiB) full; no new streams",
			                m->cfg.mem_budget >> 10);
		return -1;
	}
	return sidtable_alloc(&m->st, parity);
}

static struct mux_stream *stream_open(struct mux_session *m, int fwd, uint32_t id,
                                      const struct mux_dest *dest, struct bufferevent *bev,
                                      mux_open_cb cb, void *arg)
{
	uint8_t probe[MUX_OPEN_MAX];
	struct mux_stream *s;
	int sid;

	if (!mux_session_is_up(m) || proto_encode_open(dest, probe, sizeof(probe)) < 0)
		return NULL;
	if (fwd == m->client)
		return NULL;   /* OPEN is the client's, FWD_OPEN the server's */
	sid = sid_alloc(m);
	if (sid < 0)
		return NULL;
	s = stream_new(m, (uint16_t)sid);
	if (s == NULL)
		return NULL;
	if (relay_attach(s, bev) < 0) {
		/* Nothing was sent: the id is free again, bev still the caller's. */
		stream_release(s);
		return NULL;
	}
	s->dest = *dest;
	s->fwd = fwd != 0;
	s->fwd_id = id;
	s->opening = 1;
	s->need_open = 1;
	s->open_cb = cb;
	s->open_arg = arg;
	stream_flush(s);   /* OPEN, window grant and any bytes already read */
	return s;
}

struct mux_stream *mux_stream_open(struct mux_session *m, const struct mux_dest *dest,
                                   struct bufferevent *bev, mux_open_cb cb, void *arg)
{
	return stream_open(m, 0, 0, dest, bev, cb, arg);
}

struct mux_stream *mux_stream_open_fwd(struct mux_session *m, uint32_t id,
                                       const struct mux_dest *dest, struct bufferevent *bev,
                                       mux_open_cb cb, void *arg)
{
	return stream_open(m, 1, id, dest, bev, cb, arg);
}

struct mux_stream *mux_listen_open(struct mux_session *m, const struct mux_listen_req *req,
                                   mux_listen_cb cb, void *arg)
{
	uint8_t probe[MUX_LISTEN_MAX];
	struct mux_stream *s;
	int sid;

	if (!mux_session_is_up(m) || !m->client ||
	    proto_encode_listen(req, probe, sizeof(probe)) < 0)
		return NULL;
	sid = sid_alloc(m);
	if (sid < 0)
		return NULL;
	s = stream_new(m, (uint16_t)sid);
	if (s == NULL)
		return NULL;
	m->extra_used -= s->extra;
	s->extra = 0;
	credit_init(&s->cr, MUX_INITIAL_WINDOW, 0);
	s->lstream = 1;
	s->lreq = *req;
	s->listening = 1;
	s->need_listen = 1;
	s->listen_cb = cb;
	s->listen_arg = arg;
	stream_flush(s);
	return s;
}

void mux_listen_accept(struct mux_stream *s, uint16_t port)
{
	if (!s->pending || !s->lstream)
		return;
	s->pending = 0;
	s->cancel = NULL;
	s->listen_port = port;
	s->need_listen_ok = 1;
	stream_flush(s);
}

void mux_listen_close(struct mux_stream *s, uint8_t code)
{
	stream_abort(s, code);
}

uint8_t mux_stream_peer_code(const struct mux_stream *s)
{
	return s->rx_rst_code;
}

void mux_stream_set_gone(struct mux_stream *s, void (*gone)(void *arg), void *arg)
{
	s->gone = gone;
	s->gone_arg = arg;
}

void mux_stream_accept(struct mux_stream *s, struct bufferevent *bev)
{
	if (!s->pending) {
		bufferevent_free(bev);
		return;
	}
	s->pending = 0;
	s->cancel = NULL;
	if (relay_attach(s, bev) < 0) {
		bufferevent_free(bev);
		stream_abort(s, MUX_ERR_GENERAL);
		return;
	}
	s->need_open_ok = 1;
	metrics_counters.conn_accepted++;
	if (s->pending_rx != NULL) {
		int rc = relay_queue(s, s->pending_rx);

		evbuffer_free(s->pending_rx);
		s->pending_rx = NULL;
		if (rc < 0) {
			s->need_open_ok = 0;
			stream_abort(s, MUX_ERR_GENERAL);
			return;
		}
	}
	relay_shut_wr_if_done(s);
	stream_flush(s);
}

void mux_stream_reject(struct mux_stream *s, uint8_t code)
{
	if (!s->pending)
		return;
	metrics_count_refused(metrics_refusal_from_code(code));
	s->pending = 0;
	s->cancel = NULL;
	if (s->pending_rx != NULL) {
		evbuffer_free(s->pending_rx);
		s->pending_rx = NULL;
	}
	if (!s->tx_term && !s->need_rst) {
		s->need_rst = 1;
		s->rst_code = code;
	}
	if (!stream_maybe_release(s))
		stream_flush(s);
}

void mux_stream_set_cancel(struct mux_stream *s, void (*cancel)(void *arg), void *arg)
{
	s->cancel = cancel;
	s->cancel_arg = arg;
}
