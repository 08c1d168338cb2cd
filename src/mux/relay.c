/*
 * The TCP side of a stream: reading its socket into DATA, writing received
 * DATA to it.
 *
 * Ownership: while a stream holds its TCP connection, the relay owns the
 * socket outright, with two plain events (readable, writable) and two
 * queues of its own (`in`: read but not yet sent, `out`: received but not
 * yet written).  The bufferevent the callers hand us is only the envelope
 * the connection travels in: at attach we take whatever its buffers hold
 * (bytes read with the SOCKS request, a SOCKS or ExtORPort reply being
 * written), disable it and never touch its buffers again; when the stream
 * lets go (a failed open hands it back, a close lingers to flush) the queues
 * go back into it and the bufferevent takes over again.
 *
 * Why not the bufferevent throughout: libevent 2.1 reads at most 4096 bytes
 * per call (after an ioctl), so every 64 KiB relayed would cost sixteen
 * reads, sixteen ioctls and sixteen 4 KiB SCTP messages (commit 8620fd8).
 * And writing through it always waits a loop turn for EPOLLOUT, where a
 * direct send() when nothing is queued saves three system calls and that
 * turn's latency on every delivery (9c793f9).  Doing both beside a live
 * bufferevent meant unfreezing its input and writing behind its back; one
 * owner at a time keeps each rule simple.
 *
 * Bounds: `in` never holds more than max_msg (reading stops there), `out`
 * never more than the window this side granted, since the peer may not send
 * more and grants come back only as `out` drains.
 *
 * Idle cost: the queues exist only while they hold bytes and the write
 * event only once something had to wait for EPOLLOUT, so an idle stream
 * carries one read event beyond its bufferevent (docs/internals.md, "Mux:
 * memory bounds"; bench/ measures memory per idle connection).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "mux/mux_internal.h"
#include "util/fault.h"

static void relay_read_cb(evutil_socket_t fd, short what, void *arg);
static void relay_write_cb(evutil_socket_t fd, short what, void *arg);

/* ---------- closing the bufferevent after the relay let go ---------- */

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
	if (bufferevent_enable(bev, EV_WRITE) < 0)
		bufferevent_free(bev);
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

/* ---------- the queues, allocated while they hold bytes ---------- */

static size_t qlen(const struct evbuffer *b)
{
	return b != NULL ? evbuffer_get_length(b) : 0;
}

/* The queue *b, made if it does not exist yet; NULL when out of memory. */
static struct evbuffer *qget(struct evbuffer **b)
{
	if (*b == NULL)
		*b = FAULT("mux_evbuffer_new") ? NULL : evbuffer_new();
	return *b;
}

/* Free the queue *b once it is empty. */
void relay_qtrim(struct evbuffer **b)
{
	if (*b != NULL && evbuffer_get_length(*b) == 0) {
		evbuffer_free(*b);
		*b = NULL;
	}
}

/* Move all of src (if any) to the end of the queue *b.  0 or -1. */
static int qadd_buffer(struct evbuffer **b, struct evbuffer *src)
{
	if (evbuffer_get_length(src) == 0)
		return 0;
	if (qget(b) == NULL)
		return -1;
	return evbuffer_add_buffer(*b, src);
}

/* ---------- taking and giving back the connection ---------- */

static void relay_free_parts(struct mux_relay *r)
{
	if (r->rd_ev != NULL)
		event_free(r->rd_ev);
	if (r->wr_ev != NULL)
		event_free(r->wr_ev);
	if (r->in != NULL)
		evbuffer_free(r->in);
	if (r->out != NULL)
		evbuffer_free(r->out);
	r->rd_ev = r->wr_ev = NULL;
	r->in = r->out = NULL;
	r->reading = r->writing = 0;
}

/* Watch for writability while out holds data.  0, or -1 if that failed. */
static int relay_want_write(struct mux_stream *s)
{
	struct mux_relay *r = &s->r;

	if (r->writing || qlen(r->out) == 0)
		return 0;
	if (r->wr_ev == NULL)
		r->wr_ev = FAULT("mux_event_new") ? NULL :
		    event_new(r->base, r->fd, EV_WRITE | EV_PERSIST, relay_write_cb, s);
	if (r->wr_ev == NULL)
		return -1;
	if (FAULT("mux_event_add") || event_add(r->wr_ev, NULL) < 0)
		return -1;
	r->writing = 1;
	return 0;
}

/*
 * Take over bev's connection.  0, or -1 when out of memory: then bev is as
 * it was and still the caller's.
 */
int relay_attach(struct mux_stream *s, struct bufferevent *bev)
{
	struct mux_relay *r = &s->r;
	struct event_base *base = bufferevent_get_base(bev);
	struct evbuffer *bin = bufferevent_get_input(bev);
	struct evbuffer *bout = bufferevent_get_output(bev);

	r->fd = bufferevent_getfd(bev);
	r->base = base;
	r->rd_ev = FAULT("mux_event_new") ? NULL :
	    event_new(base, r->fd, EV_READ | EV_PERSIST, relay_read_cb, s);
	if (r->rd_ev == NULL || r->fd < 0)
		goto fail;
	/*
	 * bufferevent_socket freezes the front of its output (it alone
	 * drains it); we take what is queued there, so thaw it meanwhile.
	 */
	evbuffer_unfreeze(bout, 1);
	if (FAULT("mux_evbuffer_add") || qadd_buffer(&r->in, bin) < 0 ||
	    qadd_buffer(&r->out, bout) < 0) {
		/* Put back what moved: the caller gets bev as it was. */
		if (r->in != NULL)
			(void)evbuffer_prepend_buffer(bin, r->in);
		if (r->out != NULL)
			(void)evbuffer_prepend_buffer(bout, r->out);
		evbuffer_freeze(bout, 1);
		goto fail;
	}
	evbuffer_freeze(bout, 1);
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_set_timeouts(bev, NULL, NULL);
	r->bev = bev;
	r->out_skip = qlen(r->out);   /* a reply, not stream data */
	r->reading = r->writing = r->shut_wr = 0;
	if (relay_want_write(s) < 0) {
		/* bev goes back with everything in it, disabled. */
		(void)relay_take(s);
		log_warn("stream %u: cannot watch its connection", s->sid);
		return -1;
	}
	return 0;
fail:
	log_warn("stream %u: out of memory attaching its connection", s->sid);
	relay_free_parts(r);
	return -1;
}

/*
 * Let go of the connection and return its bufferevent (or NULL) with what
 * the relay still held: unsent input back in its input, unwritten output
 * in its output.
 */
struct bufferevent *relay_take(struct mux_stream *s)
{
	struct mux_relay *r = &s->r;
	struct bufferevent *bev = r->bev;

	if (bev == NULL)
		return NULL;
	r->bev = NULL;
	/* Stop our events before bev's own can see the socket again. */
	if (r->reading)
		event_del(r->rd_ev);
	if (r->writing)
		event_del(r->wr_ev);
	r->reading = r->writing = 0;
	if (r->in != NULL)
		(void)evbuffer_prepend_buffer(bufferevent_get_input(bev), r->in);
	if (r->out != NULL) {
		evbuffer_unfreeze(bufferevent_get_output(bev), 1);
		(void)evbuffer_prepend_buffer(bufferevent_get_output(bev), r->out);
		evbuffer_freeze(bufferevent_get_output(bev), 1);
	}
	relay_free_parts(r);
	return bev;
}

/* Close the TCP side: hard with a TCP RST, or after flushing what is queued. */
void relay_close(struct mux_stream *s, int hard)
{
	struct bufferevent *bev = relay_take(s);

	if (bev == NULL)
		return;
	if (hard)
		bev_close_hard(bev);
	else
		bev_close_gently(bev);
}

/*
 * What the open callback wrote into bev (the SOCKS reply) joins out, ahead
 * of any stream data.  0, or -1 when out of memory.
 */
int relay_adopt_output(struct mux_stream *s)
{
	struct mux_relay *r = &s->r;
	struct evbuffer *bout;
	size_t n;
	int rc;

	if (r->bev == NULL)
		return 0;
	bout = bufferevent_get_output(r->bev);
	n = evbuffer_get_length(bout);
	if (n == 0)
		return 0;
	evbuffer_unfreeze(bout, 1);
	rc = qadd_buffer(&r->out, bout);
	evbuffer_freeze(bout, 1);
	if (rc < 0)
		return -1;
	r->out_skip += n;
	return relay_want_write(s);
}

/*
 * Before the open callback answers through bev: what the relay still holds
 * for the socket (the SOCKS method reply) goes back to the front of bev's
 * output, so the callback's reply queues behind it.  Otherwise the reply,
 * seeing bev's output empty, is sent straight to the socket ahead of it
 * (a fast peer answers OPEN before the relay's first write turn).
 * relay_adopt_output() takes the lot back.  0, or -1 when out of memory.
 */
int relay_lend_output(struct mux_stream *s)
{
	struct mux_relay *r = &s->r;
	struct evbuffer *bout;
	size_t n = qlen(r->out);
	int rc;

	/* Only reply bytes are ever lent: stream data stays with the relay. */
	if (r->bev == NULL || n == 0 || n > r->out_skip)
		return 0;
	bout = bufferevent_get_output(r->bev);
	evbuffer_unfreeze(bout, 1);
	rc = FAULT("mux_evbuffer_add") ? -1 : evbuffer_prepend_buffer(bout, r->out);
	evbuffer_freeze(bout, 1);
	if (rc < 0)
		return -1;
	r->out_skip -= n;   /* relay_adopt_output() counts them again */
	if (r->writing) {
		event_del(r->wr_ev);
		r->writing = 0;
	}
	relay_qtrim(&r->out);
	return 0;
}

size_t relay_in_len(const struct mux_stream *s)
{
	return qlen(s->r.in);
}

size_t relay_out_len(const struct mux_stream *s)
{
	return qlen(s->r.out);
}

/* After the peer's FIN, once everything is written, half-close TCP. */
void relay_shut_wr_if_done(struct mux_stream *s)
{
	struct mux_relay *r = &s->r;

	if (r->bev != NULL && s->rx_fin && !r->shut_wr && qlen(r->out) == 0) {
		r->shut_wr = 1;
		(void)shutdown(r->fd, SHUT_WR);
	}
}

/* ---------- TCP -> stream ---------- */

/*
 * Read the socket only while the stream can send: it has credit, the
 * association is not blocked and less than max_msg sits read but unsent.
 * 0, or -1 if the read event could not be added (the caller fails the
 * stream: otherwise it would silently never read again).
 */
int relay_update_read(struct mux_stream *s)
{
	struct mux_relay *r = &s->r;
	int want;

	if (r->bev == NULL)
		return 0;
	want = !(s->tx_eof || s->tx_fin || s->tx_term || s->blocked || s->cr.tx == 0 ||
	         qlen(r->in) >= s->m->cfg.max_msg);
	if (want && !session_may_read(s->m)) {
		/* Over the session budget: wait until it has room (session.c). */
		want = 0;
		s->m->reads_held = 1;
	}
	if (want && !r->reading) {
		if (FAULT("mux_event_add") || event_add(r->rd_ev, NULL) < 0)
			return -1;
	} else if (!want && r->reading) {
		event_del(r->rd_ev);
	}
	r->reading = want;
	return 0;
}

/*
 * One read of up to max_msg (64 KiB) through a scratch buffer: reserving
 * space in the stream's own queue would leave idle streams holding empty
 * 64 KiB chunks.
 */
static void relay_read_cb(evutil_socket_t fd, short what, void *arg)
{
	static uint8_t scratch[256 * 1024];
	struct mux_stream *s = arg;
	struct mux_relay *r = &s->r;
	size_t have = qlen(r->in);
	size_t want = s->m->cfg.max_msg > have ? s->m->cfg.max_msg - have : 0;
	ssize_t n;

	if (want > sizeof(scratch))
		want = sizeof(scratch);
	if (!session_may_read(s->m))
		want = 0;
	else if (want > s->m->cfg.mem_budget - s->m->mem)
		want = s->m->cfg.mem_budget - s->m->mem;
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
		event_del(r->rd_ev);   /* nothing more to read, whatever happens next */
		r->reading = 0;
	} else {
		size_t sent = stream_send_direct(s, scratch, (size_t)n);

		if (sent < (size_t)n &&
		    (qget(&r->in) == NULL ||
		     evbuffer_add(r->in, scratch + sent, (size_t)n - sent) < 0)) {
			stream_abort(s, MUX_ERR_GENERAL);   /* out of memory */
			return;
		}
	}
	stream_flush(s);
}

/* ---------- stream -> TCP ---------- */

/* n bytes of out were written: grant the stream-data part back. */
static void relay_written(struct mux_stream *s, size_t n)
{
	struct mux_relay *r = &s->r;

	if (r->out_skip > 0) {
		size_t d = n < r->out_skip ? n : r->out_skip;

		r->out_skip -= d;
		n -= d;
	}
	/* The caller flushes: a grown window's CREDIT goes with the grant. */
	(void)session_consumed(s, n);
	/* After FIN or our terminal message the peer sends no more DATA. */
	if (!s->rx_fin && !s->tx_term)
		(void)credit_grant(&s->cr, 0);
}

static void relay_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mux_stream *s = arg;
	struct mux_session *m = s->m;
	struct mux_relay *r = &s->r;
	int n = evbuffer_write_atmost(r->out, fd, (ev_ssize_t)s->cr.window);

	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		log_debug("stream %u: TCP write error: %s", s->sid, strerror(errno));
		stream_abort(s, MUX_ERR_RESET);
		return;
	}
	relay_written(s, (size_t)n);
	if (qlen(r->out) == 0) {
		event_del(r->wr_ev);
		r->writing = 0;
		relay_qtrim(&r->out);
		relay_shut_wr_if_done(s);
	}
	stream_flush(s);   /* may free s */
	/* What was written left the budget: streams held back may read again. */
	session_resume_reads(m);
}

/*
 * Write received data to the TCP side.  When nothing is queued we write at
 * once instead of waiting a loop turn for EPOLLOUT.  0; 1 if the stream is
 * gone; -1 when out of memory (the caller fails the stream).
 */
int relay_deliver(struct mux_stream *s, const uint8_t *p, size_t n)
{
	struct mux_relay *r = &s->r;

	if (qlen(r->out) == 0 && !r->shut_wr) {
		ssize_t w = send(r->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);

		/* On error, queue it all: the write callback reports the error. */
		if (w > 0) {
			int grew = session_consumed(s, (size_t)w);

			p += w;
			n -= (size_t)w;
			if ((credit_grant(&s->cr, 0) || grew) && stream_flush(s))
				return 1;
			if (r->bev == NULL)
				return 0;   /* the flush failed the TCP side */
		}
	}
	if (n == 0)
		return 0;
	if (FAULT("mux_evbuffer_add") || qget(&r->out) == NULL || evbuffer_add(r->out, p, n) < 0)
		return -1;
	return relay_want_write(s);
}

/* Queue what arrived before the connection existed (moves it all).  0 or -1. */
int relay_queue(struct mux_stream *s, struct evbuffer *buf)
{
	if (qadd_buffer(&s->r.out, buf) < 0)
		return -1;
	return relay_want_write(s);
}
