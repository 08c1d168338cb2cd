/*
 * Mux: stream table, stream protocol state machine, credit flow control and
 * the TCP <-> stream relay.  See mux.h and docs/streams.md.
 *
 * Memory is bounded by construction: a stream's TCP output buffer can hold
 * at most what we granted the peer (its window), the TCP input buffer is
 * capped by a read high-watermark, and extra window beyond the initial one
 * comes from a per-session budget.  We always drain usrsctp, so one stalled
 * reader never stalls the association.
 *
 * Lifetimes: a stream is released only when both sides have sent a terminal
 * message (CLOSE or RST), so a stream id is never reused while messages of
 * its previous life can still arrive.
 */
#include "mux/mux.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "mux/credit.h"
#include "mux/sidtable.h"
#include "sctp/sctp.h"
#include "util/log.h"

struct mux_stream {
	struct mux_session *m;
	uint16_t sid;
	struct bufferevent *bev;       /* the TCP side; used for writing */
	struct event *rd_ev;           /* our own reads of bev's socket */
	int reading;                   /* rd_ev is added */
	struct evbuffer *pending_rx;   /* server: data that came before accept */
	struct evbuffer_cb_entry *out_cb;

	mux_open_cb open_cb;           /* client, until OPEN_OK or RST */
	void *open_arg;
	void (*cancel)(void *);        /* server, until accept or reject */
	void *cancel_arg;

	unsigned opening : 1;      /* client: OPEN sent, no answer yet */
	unsigned pending : 1;      /* server: OPEN received, not accepted yet */
	unsigned open_seen : 1;    /* server: the OPEN of this life was decoded */
	unsigned need_open : 1;
	unsigned need_open_ok : 1;
	unsigned need_rst : 1;
	unsigned tx_eof : 1;       /* the TCP side sent EOF */
	unsigned tx_fin : 1;       /* we sent FIN */
	unsigned rx_fin : 1;       /* peer sent FIN */
	unsigned tx_term : 1;      /* we sent CLOSE or RST */
	unsigned rx_term : 1;      /* peer sent CLOSE or RST */
	unsigned shut_wr : 1;      /* TCP write side shut down */
	unsigned blocked : 1;      /* waiting for association send space */
	uint8_t rst_code;

	struct mux_credit cr;
	uint32_t extra;            /* part of window taken from the budget */
	size_t out_skip;           /* output bytes that are not stream data */

	uint32_t ctl_ppid;         /* control message being reassembled */
	uint16_t ctl_len;
	uint8_t ctl[MUX_CTRL_MAX];

	TAILQ_ENTRY(mux_stream) blocked_link;
	struct mux_dest dest;      /* client: where it goes, for logs */
};

TAILQ_HEAD(stream_list, mux_stream);

struct mux_session {
	struct sctp_assoc *a;
	struct mux_config cfg;
	struct mux_session_cbs cbs;
	void *arg;
	int client;
	int up;
	int down;
	struct sidtable st;            /* sid -> struct mux_stream */
	size_t extra_used;
	struct stream_list blocked;
	struct mux_stats stats;
};

static struct log_ratelimit mux_rl = LOG_RATELIMIT_INIT(10.0, 5);

static int stream_flush(struct mux_stream *s);
static void stream_abort(struct mux_stream *s, uint8_t code);

void mux_config_defaults(struct mux_config *c)
{
	c->window = 256 * 1024;
	c->rx_budget = 64 * 1024 * 1024;
	c->max_streams = 16000;
	c->max_msg = 64 * 1024;
}

/* ---------- TCP side helpers ---------- */

static void bev_linger_writecb(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void bev_linger_eventcb(struct bufferevent *bev, short what, void *arg)
{
	bufferevent_free(bev);
}

/* Close after the remaining output is written (bounded by a timeout). */
static void bev_close_gently(struct bufferevent *bev)
{
	struct timeval tv = { 30, 0 };

	bufferevent_disable(bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		bufferevent_free(bev);
		return;
	}
	bufferevent_setcb(bev, NULL, bev_linger_writecb, bev_linger_eventcb, NULL);
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(bev, NULL, &tv);
	bufferevent_enable(bev, EV_WRITE);
}

/* Close at once with a TCP RST so the application sees the abort. */
static void bev_close_hard(struct bufferevent *bev)
{
	evutil_socket_t fd = bufferevent_getfd(bev);

	if (fd >= 0) {
		struct linger lg = { 1, 0 };

		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	bufferevent_free(bev);
}

/* Unhook the TCP side from the stream and return it (or NULL). */
static struct bufferevent *stream_take_bev(struct mux_stream *s)
{
	struct bufferevent *bev = s->bev;

	if (bev == NULL)
		return NULL;
	s->bev = NULL;
	if (s->rd_ev != NULL) {
		event_free(s->rd_ev);
		s->rd_ev = NULL;
		s->reading = 0;
	}
	if (s->out_cb != NULL) {
		evbuffer_remove_cb_entry(bufferevent_get_output(bev), s->out_cb);
		s->out_cb = NULL;
	}
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	return bev;
}

/* Give the TCP side back to whoever opened the stream, with the outcome. */
static void stream_open_failed(struct mux_stream *s, uint8_t code)
{
	s->opening = 0;
	s->open_cb(s, code, stream_take_bev(s), s->open_arg);
}

static void stream_detach_bev(struct mux_stream *s, int hard)
{
	struct bufferevent *bev = stream_take_bev(s);

	if (bev == NULL)
		return;
	if (hard)
		bev_close_hard(bev);
	else
		bev_close_gently(bev);
}

/* ---------- stream table ---------- */

static struct mux_stream *stream_new(struct mux_session *m, uint16_t sid)
{
	struct mux_stream *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if (sidtable_set(&m->st, sid, s) < 0) {
		free(s);
		return NULL;
	}
	s->m = m;
	s->sid = sid;
	m->stats.streams_opened++;
	m->stats.streams_active++;
	/* Enlarge our receive window if the session budget allows. */
	if (m->cfg.window > MUX_INITIAL_WINDOW &&
	    m->extra_used + (m->cfg.window - MUX_INITIAL_WINDOW) <= m->cfg.rx_budget) {
		s->extra = m->cfg.window - MUX_INITIAL_WINDOW;
		m->extra_used += s->extra;
	}
	credit_init(&s->cr, MUX_INITIAL_WINDOW, s->extra);
	return s;
}

static void stream_release(struct mux_stream *s)
{
	struct mux_session *m = s->m;

	if (s->blocked)
		TAILQ_REMOVE(&m->blocked, s, blocked_link);
	stream_detach_bev(s, 0);
	if (s->pending_rx != NULL)
		evbuffer_free(s->pending_rx);
	m->extra_used -= s->extra;
	sidtable_clear(&m->st, s->sid);
	m->stats.streams_closed++;
	m->stats.streams_active--;
	log_debug("stream %u released", s->sid);
	free(s);
}

static int stream_maybe_release(struct mux_stream *s)
{
	if (s->tx_term && s->rx_term && !s->opening && !s->pending) {
		stream_release(s);
		return 1;
	}
	return 0;
}

/* ---------- sending ---------- */

static int send_msg(struct mux_stream *s, uint32_t ppid, const void *p, size_t n)
{
	return sctp_assoc_send(s->m->a, s->sid, ppid, p, n);
}

static void stream_update_read(struct mux_stream *s)
{
	int want;

	if (s->bev == NULL || s->rd_ev == NULL)
		return;
	want = !(s->tx_eof || s->tx_fin || s->tx_term || s->blocked || s->cr.tx == 0 ||
	         evbuffer_get_length(bufferevent_get_input(s->bev)) >= s->m->cfg.max_msg);
	if (want && !s->reading)
		event_add(s->rd_ev, NULL);
	else if (!want && s->reading)
		event_del(s->rd_ev);
	s->reading = want;
}

static void stream_block(struct mux_stream *s)
{
	if (!s->blocked) {
		s->blocked = 1;
		TAILQ_INSERT_TAIL(&s->m->blocked, s, blocked_link);
	}
	stream_update_read(s);
}

/*
 * Send whatever this stream owes the peer, in protocol order: OPEN or
 * OPEN_OK, RST, CREDIT, DATA, FIN, CLOSE.  Stops when the association's
 * send buffer is full and resumes from the writable callback.
 */
static int stream_flush(struct mux_stream *s)
{
	static const uint8_t zero = 0;
	struct mux_session *m = s->m;
	uint16_t sid = s->sid;
	int r;

	if (s->blocked || !m->up || m->down)
		return 0;
	if (s->need_open) {
		uint8_t buf[MUX_OPEN_MAX];
		int n = proto_encode_open(&s->dest, buf, sizeof(buf));

		if (n < 0) {
			/* mux_stream_open() validated it; this is our bug. */
			log_err("stream %u: cannot encode OPEN", s->sid);
			s->need_open = 0;
			stream_abort(s, MUX_ERR_GENERAL);
			return sidtable_get(&m->st, sid) != s;
		}
		r = send_msg(s, MUX_OPEN, buf, (size_t)n);
		if (r == SCTP_AGAIN)
			goto blocked;
		if (r < 0)
			goto failed;
		s->need_open = 0;
	}
	if (s->need_open_ok) {
		r = send_msg(s, MUX_OPEN_OK, &zero, 1);
		if (r == SCTP_AGAIN)
			goto blocked;
		if (r < 0)
			goto failed;
		s->need_open_ok = 0;
	}
	if (s->need_rst) {
		r = send_msg(s, MUX_RST, &s->rst_code, 1);
		if (r == SCTP_AGAIN)
			goto blocked;
		if (r < 0)
			goto failed;
		s->need_rst = 0;
		s->tx_term = 1;
		return stream_maybe_release(s);
	}
	if (s->tx_term)
		return 0;
	/* No window beyond the initial one until the server side connected. */
	if (s->cr.pending > 0 && !s->rx_fin && !s->pending) {
		uint8_t buf[4];

		proto_encode_credit(s->cr.pending, buf);
		r = send_msg(s, MUX_CREDIT, buf, sizeof(buf));
		if (r == SCTP_AGAIN)
			goto blocked;
		if (r < 0)
			goto failed;
		credit_grant_sent(&s->cr);
	}
	if (s->bev != NULL && !s->tx_fin) {
		struct evbuffer *in = bufferevent_get_input(s->bev);
		size_t len;

		while ((len = evbuffer_get_length(in)) > 0 && s->cr.tx > 0) {
			size_t n = credit_sendable(&s->cr, len, m->cfg.max_msg);
			uint8_t *p;

			p = evbuffer_pullup(in, (ev_ssize_t)n);
			if (p == NULL)
				goto failed;
			r = send_msg(s, MUX_DATA, p, n);
			if (r == SCTP_AGAIN)
				goto blocked;
			if (r < 0)
				goto failed;
			evbuffer_drain(in, n);
			credit_sent(&s->cr, n);
			m->stats.bytes_out += n;
		}
		if (s->tx_eof && evbuffer_get_length(in) == 0) {
			r = send_msg(s, MUX_FIN, &zero, 1);
			if (r == SCTP_AGAIN)
				goto blocked;
			if (r < 0)
				goto failed;
			s->tx_fin = 1;
			log_debug("stream %u: sent FIN", s->sid);
		}
	}
	/*
	 * CLOSE only once what we received has reached the TCP side: until
	 * then the connection stays a stream, counted against the limits.
	 */
	if (s->tx_fin && s->rx_fin && !s->tx_term &&
	    (s->bev == NULL || evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)) {
		r = send_msg(s, MUX_CLOSE, &zero, 1);
		if (r == SCTP_AGAIN)
			goto blocked;
		if (r < 0)
			goto failed;
		s->tx_term = 1;
		if (stream_maybe_release(s))
			return 1;
	}
	stream_update_read(s);
	return 0;
failed:
	/* The association is failing; it will go down and take s with it. */
	stream_update_read(s);
	return 0;
blocked:
	log_debug("stream %u: blocked on association send space", s->sid);
	stream_block(s);
	return 0;
}

/* ---------- relay callbacks (TCP side) ---------- */

static void stream_grant(struct mux_stream *s)
{
	/* After FIN or our terminal message the peer sends no more DATA. */
	if (!s->rx_fin && !s->tx_term)
		(void)credit_grant(&s->cr, 0);
}

static void relay_out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                         void *arg)
{
	struct mux_stream *s = arg;
	size_t n = info->n_deleted;

	if (n == 0)
		return;
	if (s->out_skip > 0) {
		size_t d = n < s->out_skip ? n : s->out_skip;

		s->out_skip -= d;
		n -= d;
	}
	credit_consumed(&s->cr, n);
}

/*
 * Read the TCP side ourselves: libevent 2.1 reads at most 4096 bytes per
 * call (after an ioctl), which would mean four syscalls and a 4 KiB SCTP
 * message for every 16 KiB relayed.  Reading through one scratch buffer
 * (rather than reserving space in the stream's buffer) keeps idle streams
 * from holding empty 64 KiB chunks.
 */
static void relay_read_cb(evutil_socket_t fd, short what, void *arg)
{
	static uint8_t scratch[256 * 1024];
	struct mux_stream *s = arg;
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t have = evbuffer_get_length(in);
	size_t want = s->m->cfg.max_msg > have ? s->m->cfg.max_msg - have : 0;
	ssize_t n;

	if (want > sizeof(scratch))
		want = sizeof(scratch);
	if (want == 0) {
		stream_flush(s);
		return;
	}
	n = read(fd, scratch, want);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		log_debug("stream %u: TCP read error: %s", s->sid, strerror(errno));
		stream_abort(s, MUX_ERR_RESET);
		return;
	}
	if (n == 0) {
		log_debug("stream %u: TCP EOF", s->sid);
		s->tx_eof = 1;
		event_del(s->rd_ev);   /* nothing more to read, whatever happens next */
		s->reading = 0;
	} else if (evbuffer_add(in, scratch, (size_t)n) < 0) {
		stream_abort(s, MUX_ERR_GENERAL);   /* out of memory */
		return;
	}
	stream_flush(s);
}

static void relay_writecb(struct bufferevent *bev, void *arg)
{
	struct mux_stream *s = arg;
	int empty = evbuffer_get_length(bufferevent_get_output(bev)) == 0;

	stream_grant(s);
	if (s->rx_fin && empty && !s->shut_wr) {
		s->shut_wr = 1;
		(void)shutdown(bufferevent_getfd(bev), SHUT_WR);
	}
	stream_flush(s);
}

static void relay_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct mux_stream *s = arg;

	if (what & BEV_EVENT_ERROR) {
		log_debug("stream %u: TCP error: %s", s->sid,
		          evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		stream_abort(s, MUX_ERR_RESET);
		return;
	}
	if (what & BEV_EVENT_EOF) {   /* not expected: we do the reading */
		s->tx_eof = 1;
		stream_flush(s);
	}
}

static void stream_attach(struct mux_stream *s, struct bufferevent *bev)
{
	s->bev = bev;
	bufferevent_disable(bev, EV_READ);
	/* bufferevent_socket freezes its input's end; we fill it now. */
	evbuffer_unfreeze(bufferevent_get_input(bev), 0);
	bufferevent_setcb(bev, NULL, relay_writecb, relay_eventcb, s);
	/* Wake the writer at half a window; write in large pieces. */
	bufferevent_setwatermark(bev, EV_WRITE, s->cr.window / 2, 0);
	bufferevent_set_max_single_write(bev, s->cr.window);
	bufferevent_enable(bev, EV_WRITE);
	s->rd_ev = event_new(bufferevent_get_base(bev), bufferevent_getfd(bev),
	                     EV_READ | EV_PERSIST, relay_read_cb, s);
	s->reading = 0;
}

static void stream_install_out_cb(struct mux_stream *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);

	s->out_skip = evbuffer_get_length(out);
	s->out_cb = evbuffer_add_cb(out, relay_out_cb, s);
}

/* ---------- aborts and terminal messages ---------- */

/* Abort locally: close the TCP side with RST and tell the peer. */
static void stream_abort(struct mux_stream *s, uint8_t code)
{
	if (s->pending && s->cancel != NULL) {
		s->cancel(s->cancel_arg);
		s->cancel = NULL;
	}
	s->pending = 0;
	if (s->opening)
		stream_open_failed(s, code);
	stream_detach_bev(s, 1);
	if (!s->tx_term && !s->need_rst) {
		s->need_rst = 1;
		s->rst_code = code;
	}
	if (!stream_maybe_release(s))
		stream_flush(s);
}

static void stream_protocol_error(struct mux_stream *s, const char *what)
{
	s->m->stats.protocol_errors++;
	log_ratelimited(&mux_rl, LOG_LEVEL_WARN, "stream %u: protocol error: %s",
	                s->sid, what);
	stream_abort(s, MUX_ERR_PROTOCOL);
}

/* ---------- receiving ---------- */

/*
 * Write received data to the TCP side.  When nothing is queued we write at
 * once instead of waiting a loop turn for EPOLLOUT: it saves three system
 * calls and that turn's latency on every delivery.
 */
static void stream_deliver(struct mux_stream *s, const uint8_t *p, size_t n)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);

	if (evbuffer_get_length(out) == 0 && !s->shut_wr) {
		ssize_t w = send(bufferevent_getfd(s->bev), p, n, MSG_DONTWAIT | MSG_NOSIGNAL);

		/* On error, queue it all: the bufferevent reports the error. */
		if (w > 0) {
			credit_consumed(&s->cr, (size_t)w);
			p += w;
			n -= (size_t)w;
			if (credit_grant(&s->cr, 0))
				stream_flush(s);
		}
	}
	if (n > 0 && s->bev != NULL)
		bufferevent_write(s->bev, p, n);
}

static void on_data(struct mux_stream *s, const uint8_t *p, size_t n)
{
	if (s->tx_term && s->need_rst == 0 && !s->bev)
		return;   /* we aborted; drain what was in flight */
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
	if (s->bev != NULL) {
		stream_deliver(s, p, n);
	} else if (s->pending) {
		/* Before the connection exists only the initial window applies. */
		if ((s->pending_rx != NULL ? evbuffer_get_length(s->pending_rx) : 0) + n >
		    MUX_INITIAL_WINDOW) {
			stream_protocol_error(s, "peer exceeded the initial window");
			return;
		}
		if (s->pending_rx == NULL)
			s->pending_rx = evbuffer_new();
		if (s->pending_rx == NULL || evbuffer_add(s->pending_rx, p, n) < 0)
			stream_abort(s, MUX_ERR_GENERAL);
	}
}

static void on_fin(struct mux_stream *s)
{
	s->rx_fin = 1;
	log_debug("stream %u: received FIN", s->sid);
	if (s->bev != NULL && !s->shut_wr &&
	    evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
		s->shut_wr = 1;
		(void)shutdown(bufferevent_getfd(s->bev), SHUT_WR);
	}
	stream_flush(s);
}

static void on_open_ok(struct mux_stream *s)
{
	struct bufferevent *bev = s->bev;

	if (!s->opening) {
		if (!s->tx_term && !s->need_rst)   /* not just a race with our abort */
			stream_protocol_error(s, "unexpected OPEN_OK");
		return;
	}
	s->opening = 0;
	s->open_cb(s, 0, bev, s->open_arg);
	if (s->bev != NULL)
		stream_install_out_cb(s);
	stream_flush(s);
}

static void on_rst(struct mux_stream *s, uint8_t code)
{
	log_debug("stream %u: received RST (%s)", s->sid, proto_err_str(code));
	s->rx_term = 1;
	if (s->opening)
		stream_open_failed(s, code);
	if (s->pending) {
		s->pending = 0;
		if (s->cancel != NULL)
			s->cancel(s->cancel_arg);
		s->cancel = NULL;
	}
	stream_detach_bev(s, 1);
	if (!s->tx_term && !s->need_rst) {
		s->need_rst = 1;
		s->rst_code = MUX_ERR_RESET;
	}
	if (!stream_maybe_release(s))
		stream_flush(s);
}

static void on_open(struct mux_session *m, struct mux_stream *s)
{
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
	if (m->stats.streams_active > m->cfg.max_streams) {
		log_ratelimited(&mux_rl, LOG_LEVEL_WARN,
		                "stream limit (%u per client) reached; refusing",
		                m->cfg.max_streams);
		mux_stream_reject(s, MUX_ERR_LIMIT);
		return;
	}
	log_debug("stream %u: OPEN %s", s->sid,
	          log_addr(proto_dest_str(&dest, dbuf, sizeof(dbuf))));
	m->cbs.stream_open(m, s, &dest, m->arg);
}

static void on_control(struct mux_session *m, struct mux_stream *s, uint32_t ppid)
{
	uint32_t inc;
	uint8_t code;

	switch (ppid) {
	case MUX_OPEN:
		if (m->client || s->open_seen) {
			stream_protocol_error(s, "unexpected OPEN");
			return;
		}
		on_open(m, s);
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

static void on_message(struct sctp_assoc *a, uint16_t sid, uint32_t ppid,
                       const uint8_t *data, size_t len, int eor, void *arg)
{
	struct mux_session *m = arg;
	struct mux_stream *s;

	if (sid == 0 || sid >= m->st.n) {
		m->stats.protocol_errors++;
		return;
	}
	s = sidtable_get(&m->st, sid);
	if (ppid == MUX_DATA) {
		if (s == NULL || s->ctl_len > 0) {
			m->stats.protocol_errors++;
			log_ratelimited(&mux_rl, LOG_LEVEL_INFO, "DATA on idle stream %u ignored", sid);
			return;
		}
		on_data(s, data, len);
		return;
	}
	if (s == NULL) {
		/* Only the client opens streams (odd ids) in this version. */
		if (ppid != MUX_OPEN || m->client || (sid & 1) == 0) {
			m->stats.protocol_errors++;
			log_ratelimited(&mux_rl, LOG_LEVEL_INFO,
			                "message type %u on idle stream %u ignored", ppid, sid);
			return;
		}
		s = stream_new(m, sid);
		if (s == NULL)
			return;
	}
	if (s->ctl_len > 0 && s->ctl_ppid != ppid) {
		stream_protocol_error(s, "interleaved control message");
		return;
	}
	if ((size_t)s->ctl_len + len > MUX_CTRL_MAX) {
		s->ctl_len = 0;
		stream_protocol_error(s, "control message too long");
		return;
	}
	memcpy(s->ctl + s->ctl_len, data, len);
	s->ctl_len = (uint16_t)(s->ctl_len + len);
	s->ctl_ppid = ppid;
	if (!eor)
		return;
	on_control(m, s, ppid);
	/* s may be gone now; only clear if it is still the same stream. */
	if (sidtable_get(&m->st, sid) == s)
		s->ctl_len = 0;
}

/* ---------- session ---------- */

static void on_down(struct sctp_assoc *a, const char *why, void *arg);

static void on_up(struct sctp_assoc *a, void *arg)
{
	struct mux_session *m = arg;
	unsigned n = sctp_assoc_streams(a);

	if (n < 2) {
		on_down(a, "peer offers no usable streams", m);
		return;
	}
	if (sidtable_init(&m->st, n) < 0) {
		on_down(a, "out of memory for the stream table", m);
		return;
	}
	m->up = 1;
	m->cbs.up(m, m->arg);
}

static void on_writable(struct sctp_assoc *a, void *arg)
{
	struct mux_session *m = arg;
	unsigned budget = m->stats.streams_active + 1;

	while (!TAILQ_EMPTY(&m->blocked) && budget-- > 0 && !m->down) {
		struct mux_stream *s = TAILQ_FIRST(&m->blocked);

		TAILQ_REMOVE(&m->blocked, s, blocked_link);
		s->blocked = 0;
		if (stream_flush(s))
			continue;   /* it sent its last message and is gone */
		if (s->blocked)
			break;      /* full again; it went to the back of the queue */
	}
}

static void session_fail_streams(struct mux_session *m)
{
	for (unsigned i = 1; i < m->st.n; i++) {
		struct mux_stream *s = sidtable_get(&m->st, i);

		if (s == NULL)
			continue;
		if (s->blocked) {
			TAILQ_REMOVE(&m->blocked, s, blocked_link);
			s->blocked = 0;
		}
		s->tx_term = s->rx_term = 1;
		s->need_rst = 0;
		if (s->opening)
			stream_open_failed(s, MUX_ERR_GENERAL);
		if (s->pending) {
			s->pending = 0;
			if (s->cancel != NULL)
				s->cancel(s->cancel_arg);
		}
		stream_detach_bev(s, 1);
		stream_release(s);
	}
}

static void on_down(struct sctp_assoc *a, const char *why, void *arg)
{
	struct mux_session *m = arg;

	if (m->down)
		return;
	m->down = 1;
	m->up = 0;
	session_fail_streams(m);
	m->cbs.down(m, why, m->arg);   /* may free m: nothing after this */
}

static const struct sctp_assoc_cbs mux_sctp_cbs = {
	.up = on_up,
	.down = on_down,
	.message = on_message,
	.writable = on_writable,
};

static struct mux_session *session_new(const struct mux_config *cfg,
                                       const struct mux_session_cbs *cbs, void *arg)
{
	struct mux_session *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->cfg = *cfg;
	if (m->cfg.window < MUX_INITIAL_WINDOW)
		m->cfg.window = MUX_INITIAL_WINDOW;
	m->cbs = *cbs;
	m->arg = arg;
	TAILQ_INIT(&m->blocked);
	return m;
}

struct mux_session *mux_session_connect(struct wire_link *link,
                                        const struct mux_config *cfg,
                                        const struct mux_session_cbs *cbs, void *arg)
{
	struct mux_session *m = session_new(cfg, cbs, arg);

	if (m == NULL) {
		sctp_link_discard(link);
		return NULL;
	}
	m->client = 1;
	m->a = sctp_assoc_connect(link, &mux_sctp_cbs, m);
	if (m->a == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

struct mux_session *mux_session_accept(struct wire_link *link,
                                       const struct mux_config *cfg,
                                       const struct mux_session_cbs *cbs, void *arg)
{
	struct mux_session *m = session_new(cfg, cbs, arg);

	if (m == NULL) {
		sctp_link_discard(link);
		return NULL;
	}
	m->a = sctp_assoc_accept(link, &mux_sctp_cbs, m);
	if (m->a == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

void mux_session_free(struct mux_session *m)
{
	if (m == NULL)
		return;
	m->down = 1;
	m->up = 0;
	session_fail_streams(m);
	sctp_assoc_free(m->a);
	sidtable_free(&m->st);
	free(m);
}

void mux_session_path_changed(struct mux_session *m)
{
	if (m != NULL && m->a != NULL)
		sctp_assoc_path_changed(m->a);
}

int mux_session_is_up(const struct mux_session *m)
{
	return m != NULL && m->up && !m->down;
}

unsigned mux_session_streams(const struct mux_session *m)
{
	return (unsigned)m->stats.streams_active;
}

void mux_session_stats(const struct mux_session *m, struct mux_stats *st)
{
	*st = m->stats;
}

/* ---------- stream API ---------- */

static int sid_alloc(struct mux_session *m)
{
	if (m->stats.streams_active >= m->cfg.max_streams)
		return -1;
	return sidtable_alloc(&m->st, 1);   /* the client opens odd ids */
}

struct mux_stream *mux_stream_open(struct mux_session *m, const struct mux_dest *dest,
                                   struct bufferevent *bev, mux_open_cb cb, void *arg)
{
	struct mux_stream *s;
	int sid;

	uint8_t probe[MUX_OPEN_MAX];

	if (!mux_session_is_up(m) || proto_encode_open(dest, probe, sizeof(probe)) < 0)
		return NULL;
	sid = sid_alloc(m);
	if (sid < 0)
		return NULL;
	s = stream_new(m, (uint16_t)sid);
	if (s == NULL)
		return NULL;
	s->dest = *dest;
	s->opening = 1;
	s->need_open = 1;
	s->open_cb = cb;
	s->open_arg = arg;
	stream_attach(s, bev);
	stream_flush(s);   /* OPEN, window grant and any bytes already read */
	return s;
}

void mux_stream_accept(struct mux_stream *s, struct bufferevent *bev)
{
	if (!s->pending) {
		bufferevent_free(bev);
		return;
	}
	s->pending = 0;
	s->cancel = NULL;
	s->need_open_ok = 1;
	stream_attach(s, bev);
	stream_install_out_cb(s);
	if (s->pending_rx != NULL) {
		bufferevent_write_buffer(bev, s->pending_rx);
		evbuffer_free(s->pending_rx);
		s->pending_rx = NULL;
	}
	if (s->rx_fin && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		s->shut_wr = 1;
		(void)shutdown(bufferevent_getfd(bev), SHUT_WR);
	}
	stream_flush(s);
}

void mux_stream_reject(struct mux_stream *s, uint8_t code)
{
	if (!s->pending)
		return;
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
