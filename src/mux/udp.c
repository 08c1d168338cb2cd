/*
 * UDP associations on the mux (docs/udp-relay.md): one SCTP stream per
 * SOCKS5 UDP ASSOCIATE, opened by the client with UDP_OPEN, answered with
 * UDP_OK or RST, ended by CLOSE or RST like any stream (tombstones and id
 * reuse as in docs/streams.md).  Datagrams travel as UDP_DGRAM messages,
 * unordered, outside the per-stream credit: a lost datagram is not
 * retransmitted by anyone above SCTP, and a datagram waits for nothing.
 *
 * What keeps a flood in check: a per-session rate in datagrams
 * (cfg.udp_rate, each direction); datagrams and TCP streams take turns for
 * send space by a byte balance (m->fair), so neither starves the other;
 * the queues are bounded per association and per session (cfg.udp_budget,
 * apart from the TCP budget), the oldest datagram goes first when they are
 * full, and one older than MUX_UDP_STALE_MS is dropped rather than sent
 * late.
 */
#include <stdlib.h>
#include <string.h>

#include "mux/mux_internal.h"
#include "util/clock.h"
#include "util/fault.h"

struct udp_dgram {
	STAILQ_ENTRY(udp_dgram) link;
	uint64_t t_ms;             /* when it was queued */
	size_t len;                /* header and datagram */
	uint8_t msg[];
};

struct mux_udp {
	const struct mux_udp_cbs *cbs;
	void *arg;
	STAILQ_HEAD(, udp_dgram) q;
	unsigned qn;
	size_t qbytes;
	uint8_t *rx;               /* a message SCTP delivers in parts */
	size_t rxlen;
	unsigned long dropped;     /* this association's share of stats.udp_dropped */
	unsigned rx_bad : 1;       /* the rest of this message is dropped */
	unsigned detached : 1;     /* the owner heard the end, or ended it */
};

/* One message at a time is built here (single-threaded loop). */
static uint8_t txbuf[MUX_UDP_MSG_MAX];

int udp_admits(const struct mux_session *m)
{
	return m->stats.udp_active < m->cfg.max_udp && session_admits(m);
}

/* ---------- the send queue ---------- */

static void drop(struct mux_stream *s)
{
	s->m->stats.udp_dropped++;
	if (s->udp != NULL)
		s->udp->dropped++;
}

/*
 * The per-session rate (cfg.udp_rate, one bucket per direction, 100 ms of
 * burst): datagrams cost per packet, whatever their size, so a client's
 * flood is bounded in datagrams.  1 if this one may go.
 */
static int rate_take(struct mux_stream *s, struct mux_udp_rate *r)
{
	struct mux_session *m = s->m;
	double rate = m->cfg.udp_rate, burst = rate / 10 > 64 ? rate / 10 : 64;
	uint64_t now;

	if (m->cfg.udp_rate == 0)
		return 1;
	now = clock_now_ms();
	if (r->last_ms == 0)
		r->tokens = burst;
	else
		r->tokens += (double)(now - r->last_ms) * rate / 1000.0;
	if (r->tokens > burst)
		r->tokens = burst;
	r->last_ms = now;
	if (r->tokens >= 1) {
		r->tokens -= 1;
		return 1;
	}
	m->stats.udp_rate_dropped++;
	drop(s);
	log_ratelimited(&mux_rl, LOG_LEVEL_WARN, "UDP relay: rate limit (%u datagrams/s per "
	                "client) reached; dropping", m->cfg.udp_rate);
	return 0;
}

unsigned long mux_udp_dropped(const struct mux_stream *s)
{
	return s->udp != NULL ? s->udp->dropped : 0;
}

static void q_drop_head(struct mux_stream *s)
{
	struct mux_udp *u = s->udp;
	struct udp_dgram *d = STAILQ_FIRST(&u->q);

	STAILQ_REMOVE_HEAD(&u->q, link);
	u->qn--;
	u->qbytes -= d->len;
	s->m->stats.udp_queued -= d->len;
	free(d);
}

static void q_clear(struct mux_stream *s)
{
	while (!STAILQ_EMPTY(&s->udp->q))
		q_drop_head(s);
}

/*
 * Queue one message.  The oldest of this association go first to make
 * room (a fresh datagram is worth more than a stale one); if the session
 * budget is used up by others, the new one is dropped.  0 or -1.
 */
static int q_add(struct mux_stream *s, const uint8_t *msg, size_t len)
{
	struct mux_session *m = s->m;
	struct mux_udp *u = s->udp;
	struct udp_dgram *d;

	while (!STAILQ_EMPTY(&u->q) &&
	       (u->qn >= MUX_UDP_QUEUE_MAX || u->qbytes + len > MUX_UDP_QUEUE_BYTES ||
	        m->stats.udp_queued + len > m->cfg.udp_budget)) {
		q_drop_head(s);
		drop(s);
	}
	if (m->stats.udp_queued + len > m->cfg.udp_budget || len > MUX_UDP_QUEUE_BYTES)
		return -1;
	d = FAULT("mux_udp_queue") ? NULL : malloc(sizeof(*d) + len);
	if (d == NULL)
		return -1;
	d->t_ms = clock_now_ms();
	d->len = len;
	memcpy(d->msg, msg, len);
	STAILQ_INSERT_TAIL(&u->q, d, link);
	u->qn++;
	u->qbytes += len;
	m->stats.udp_queued += len;
	return 0;
}

static int send_ctl(struct mux_stream *s, uint32_t ppid, const void *p, size_t n)
{
	struct mux_session *m = s->m;

	return m->ops->send(m->ops_ctx, s->sid, ppid, p, n);
}

static int send_dgram(struct mux_stream *s, const void *p, size_t n)
{
	struct mux_session *m = s->m;

	if (m->ops->send_unordered != NULL)
		return m->ops->send_unordered(m->ops_ctx, s->sid, MUX_UDP_DGRAM, p, n);
	return m->ops->send(m->ops_ctx, s->sid, MUX_UDP_DGRAM, p, n);
}

static void udp_block(struct mux_stream *s)
{
	if (!s->blocked) {
		s->blocked = 1;
		TAILQ_INSERT_TAIL(&s->m->udp_blocked, s, blocked_link);
	}
}

/* Send the queue until empty or the association is full. */
static void q_flush(struct mux_stream *s)
{
	struct mux_session *m = s->m;
	struct mux_udp *u = s->udp;
	uint64_t now = clock_now_ms();

	while (!STAILQ_EMPTY(&u->q)) {
		struct udp_dgram *d = STAILQ_FIRST(&u->q);
		int r;

		if (now - d->t_ms > MUX_UDP_STALE_MS) {
			q_drop_head(s);
			drop(s);
			continue;
		}
		r = send_dgram(s, d->msg, d->len);
		if (r == MUX_SEND_AGAIN) {
			udp_block(s);
			return;
		}
		if (r == 0) {
			m->stats.udp_dgrams_out++;
			fair_udp_sent(m, d->len);
		}
		else
			drop(s);   /* the association is failing */
		q_drop_head(s);
	}
}

/* ---------- what the association owes the peer ---------- */

/* Does s owe the peer a control message (tiny, never held behind TCP)? */
static int owes_control(const struct mux_stream *s)
{
	return s->need_open || s->need_open_ok || s->need_rst || s->need_close;
}

/* Send what s owes: control messages, then (unless ctl_only) datagrams. */
static int udp_flush_ex(struct mux_stream *s, int ctl_only)
{
	static const uint8_t zero = 0;
	struct mux_session *m = s->m;
	int r;

	if (s->blocked || !m->up || m->down)
		return 0;
	if (s->need_open) {
		uint8_t buf[2];

		(void)proto_encode_udp_open(buf);
		if ((r = send_ctl(s, MUX_UDP_OPEN, buf, sizeof(buf))) != 0)
			goto out;
		s->need_open = 0;
	}
	if (s->need_open_ok) {
		if ((r = send_ctl(s, MUX_UDP_OK, &zero, 1)) != 0)
			goto out;
		s->need_open_ok = 0;
	}
	if (s->need_rst || s->need_close) {
		if (s->need_rst)
			r = send_ctl(s, MUX_RST, &s->rst_code, 1);
		else
			r = send_ctl(s, MUX_CLOSE, &zero, 1);
		if (r != 0)
			goto out;
		s->need_rst = s->need_close = 0;
		s->tx_term = 1;
		return stream_maybe_release(s);
	}
	if (s->tx_term || s->opening || s->pending)
		return 0;
	if (ctl_only) {
		if (!STAILQ_EMPTY(&s->udp->q))
			udp_block(s);   /* its datagrams wait for their turn */
		return 0;
	}
	q_flush(s);
	return 0;
out:
	if (r == MUX_SEND_AGAIN)
		udp_block(s);
	/* Otherwise the association is failing and takes s with it. */
	return 0;
}

int udp_flush(struct mux_stream *s)
{
	return udp_flush_ex(s, 0);
}

int udp_goes_first(const struct mux_session *m)
{
	return !TAILQ_EMPTY(&m->udp_blocked) && m->fair >= 0;
}

void udp_on_writable(struct mux_session *m)
{
	unsigned budget = (unsigned)m->stats.udp_active + 1;
	unsigned n = 0;
	struct mux_stream *s, *next;

	/* Control messages first, whatever waits: opening or ending an
	 * association must not wait for a busy TCP stream to go quiet. */
	for (s = TAILQ_FIRST(&m->udp_blocked); s != NULL && n < budget && !m->down; s = next, n++) {
		next = TAILQ_NEXT(s, blocked_link);
		if (!owes_control(s))
			continue;
		TAILQ_REMOVE(&m->udp_blocked, s, blocked_link);
		s->blocked = 0;
		if (udp_flush_ex(s, 1))
			continue;
		if (s->blocked && owes_control(s))
			return;   /* full again */
	}
	/* Datagrams: when no TCP stream waits, or when it is their turn. */
	while ((TAILQ_EMPTY(&m->blocked) || m->fair >= 0) && !TAILQ_EMPTY(&m->udp_blocked) &&
	       budget-- > 0 && !m->down) {
		s = TAILQ_FIRST(&m->udp_blocked);
		TAILQ_REMOVE(&m->udp_blocked, s, blocked_link);
		s->blocked = 0;
		if (udp_flush(s))
			continue;
		if (s->blocked)
			break;   /* full again */
	}
}

/* ---------- the end, and telling the owner ---------- */

/* Tell the owner (once) that s ends with code; it forgets s. */
static void udp_notify_end(struct mux_stream *s, uint8_t code)
{
	struct mux_udp *u = s->udp;

	if (u->detached)
		return;
	u->detached = 1;
	if (s->opening) {
		s->opening = 0;
		if (u->cbs != NULL && u->cbs->opened != NULL)
			u->cbs->opened(s, code != 0 ? code : MUX_ERR_GENERAL, u->arg);
		return;
	}
	if (s->pending) {
		s->pending = 0;
		if (s->cancel != NULL)
			s->cancel(s->cancel_arg);
		s->cancel = NULL;
		return;
	}
	if (u->cbs != NULL && u->cbs->closed != NULL)
		u->cbs->closed(s, code, u->arg);
}

void udp_open_failed(struct mux_stream *s, uint8_t code)
{
	udp_notify_end(s, code);
}

void udp_release(struct mux_stream *s)
{
	struct mux_session *m = s->m;
	struct mux_udp *u = s->udp;

	udp_notify_end(s, MUX_ERR_GENERAL);
	if (s->blocked) {
		TAILQ_REMOVE(&m->udp_blocked, s, blocked_link);
		s->blocked = 0;
	}
	q_clear(s);
	free(u->rx);
	free(u);
	s->udp = NULL;
	m->stats.udp_active--;
}

void udp_abort(struct mux_stream *s, uint8_t code)
{
	udp_notify_end(s, code);
	q_clear(s);
	if (!s->tx_term && !s->need_rst && !s->need_close) {
		s->need_rst = 1;
		s->rst_code = code;
	}
	if (!stream_maybe_release(s))
		(void)udp_flush(s);
}

static void udp_protocol_error(struct mux_stream *s, const char *what)
{
	s->m->stats.protocol_errors++;
	log_ratelimited(&mux_rl, LOG_LEVEL_WARN, "stream %u (UDP): protocol error: %s",
	                s->sid, what);
	udp_abort(s, MUX_ERR_PROTOCOL);
}

/* The peer's CLOSE or RST: tell the owner, answer unless we ended first. */
static void udp_on_term(struct mux_stream *s, int is_rst, uint8_t code)
{
	s->rx_term = 1;
	udp_notify_end(s, is_rst ? (code != 0 ? code : MUX_ERR_GENERAL) : 0);
	q_clear(s);
	if (!s->tx_term && !s->need_rst && !s->need_close) {
		if (is_rst) {
			s->need_rst = 1;
			s->rst_code = MUX_ERR_RESET;
		} else {
			s->need_close = 1;
		}
	}
	if (!stream_maybe_release(s))
		(void)udp_flush(s);
}

/*
 * A UDP association has no credit: give back the window enlargement
 * stream_new() took from the session for it.
 */
static void udp_no_window(struct mux_stream *s)
{
	s->m->extra_used -= s->extra;
	s->extra = 0;
}

/* Server: a whole UDP_OPEN arrived on the idle id s was made for. */
static void udp_on_open(struct mux_stream *s)
{
	struct mux_session *m = s->m;

	s->open_seen = 1;
	s->pending = 1;
	/* Checked before allocation (session.c) unless the UDP_OPEN came in
	 * parts: several may then be under way at once. */
	if (m->cfg.max_udp > 0 && m->cbs.udp_open != NULL &&
	    m->stats.udp_active >= m->cfg.max_udp) {
		m->stats.udp_refused++;
		mux_stream_reject(s, MUX_ERR_LIMIT);
		return;
	}
	s->udp = FAULT("mux_udp_new") ? NULL : calloc(1, sizeof(*s->udp));
	if (s->udp == NULL) {
		mux_stream_reject(s, MUX_ERR_GENERAL);
		return;
	}
	STAILQ_INIT(&s->udp->q);
	m->stats.udp_active++;
	udp_no_window(s);
	if (proto_decode_udp_open(s->ctl, s->ctl_len) < 0) {
		m->stats.protocol_errors++;
		log_ratelimited(&mux_rl, LOG_LEVEL_WARN, "stream %u: malformed UDP_OPEN", s->sid);
		mux_stream_reject(s, MUX_ERR_PROTOCOL);
		return;
	}
	log_debug("stream %u: UDP_OPEN", s->sid);
	if (m->cbs.udp_open == NULL) {
		mux_stream_reject(s, MUX_ERR_UNSUPPORTED);
		return;
	}
	m->cbs.udp_open(m, s, m->arg);
}

void udp_on_control(struct mux_stream *s, uint32_t ppid)
{
	uint8_t code;

	if (ppid == MUX_UDP_OPEN) {
		/* Only on an id of the peer's that nothing else opened: on one
		 * of ours (a FWD_OPEN under way) it would turn our stream into
		 * a UDP association that still owes an open. */
		if (s->m->client || stream_is_local(s) || s->open_seen || s->udp != NULL ||
		    s->tx_term || s->need_rst) {
			if (s->udp != NULL)
				udp_protocol_error(s, "unexpected UDP_OPEN");
			else
				stream_protocol_error(s, "unexpected UDP_OPEN");
			return;
		}
		udp_on_open(s);
		return;
	}
	switch (ppid) {
	case MUX_UDP_OK:
		if (proto_decode_empty(s->ctl, s->ctl_len) < 0 || !s->opening) {
			if (!s->tx_term && !s->need_rst && !s->need_close)
				udp_protocol_error(s, "unexpected UDP_OK");
			return;
		}
		s->opening = 0;
		if (s->udp->cbs->opened != NULL)
			s->udp->cbs->opened(s, 0, s->udp->arg);
		return;
	case MUX_RST:
		if (proto_decode_rst(s->ctl, s->ctl_len, &code) < 0)
			code = MUX_ERR_PROTOCOL;
		udp_on_term(s, 1, code);
		return;
	case MUX_CLOSE:
		if (proto_decode_empty(s->ctl, s->ctl_len) < 0 || s->opening) {
			udp_protocol_error(s, "unexpected CLOSE");
			return;
		}
		udp_on_term(s, 0, 0);
		return;
	default:
		udp_protocol_error(s, "message type not valid on a UDP association");
		return;
	}
}

/* ---------- datagrams from the peer ---------- */

static void udp_deliver(struct mux_stream *s, const uint8_t *p, size_t n)
{
	struct mux_session *m = s->m;
	struct mux_udp *u = s->udp;
	struct mux_dest addr;
	size_t hl;

	if (s->tx_term || s->need_rst || s->need_close || u->detached)
		return;   /* in flight when we ended it */
	if (s->opening || s->pending) {
		udp_protocol_error(s, "datagram before the association was ready");
		return;
	}
	if (!rate_take(s, &m->udp_rate_in))
		return;
	if (proto_decode_udp_hdr(p, n, &addr, &hl) < 0 ||
	    (m->client && addr.type == MUX_DEST_DOMAIN)) {
		m->stats.udp_bad++;
		log_ratelimited(&mux_rl, LOG_LEVEL_INFO,
		                "stream %u: malformed UDP datagram header; dropped", s->sid);
		return;
	}
	m->stats.udp_dgrams_in++;
	if (u->cbs->dgram != NULL)
		u->cbs->dgram(s, &addr, p + hl, n - hl, u->arg);
}

void udp_on_dgram(struct mux_stream *s, const uint8_t *p, size_t n, int eor)
{
	struct mux_udp *u = s->udp;

	if (u->rxlen == 0 && !u->rx_bad && eor) {
		udp_deliver(s, p, n);
		return;
	}
	/* Delivered in parts: gather, bounded by the largest valid message. */
	if (!u->rx_bad) {
		if (u->rxlen + n > MUX_UDP_MSG_MAX) {
			u->rx_bad = 1;
		} else {
			if (u->rx == NULL)
				u->rx = malloc(MUX_UDP_MSG_MAX);
			if (u->rx == NULL) {
				u->rx_bad = 1;
			} else {
				memcpy(u->rx + u->rxlen, p, n);
				u->rxlen += n;
			}
		}
	}
	if (!eor)
		return;
	if (u->rx_bad) {
		s->m->stats.udp_bad++;
		log_ratelimited(&mux_rl, LOG_LEVEL_INFO,
		                "stream %u: oversized UDP datagram message; dropped", s->sid);
		u->rx_bad = 0;
		u->rxlen = 0;
		return;
	}
	n = u->rxlen;
	u->rxlen = 0;
	/* The owner may end s in the callback; the buffer goes with it then. */
	udp_deliver(s, u->rx, n);
}

/* ---------- API ---------- */

struct mux_stream *mux_udp_open(struct mux_session *m, const struct mux_udp_cbs *cbs,
                                void *arg)
{
	struct mux_stream *s;
	int sid;

	if (!mux_session_is_up(m) || !udp_admits(m))
		return NULL;
	sid = sidtable_alloc(&m->st, 1);   /* the client opens odd ids */
	if (sid < 0)
		return NULL;
	s = stream_new(m, (uint16_t)sid);
	if (s == NULL)
		return NULL;
	s->udp = FAULT("mux_udp_new") ? NULL : calloc(1, sizeof(*s->udp));
	if (s->udp == NULL) {
		s->tx_term = s->rx_term = 1;   /* nothing was sent: the id is free */
		stream_release(s);
		return NULL;
	}
	STAILQ_INIT(&s->udp->q);
	m->stats.udp_active++;
	udp_no_window(s);
	s->udp->cbs = cbs;
	s->udp->arg = arg;
	s->opening = 1;
	s->need_open = 1;
	(void)udp_flush(s);
	return s;
}

void mux_udp_accept(struct mux_stream *s, const struct mux_udp_cbs *cbs, void *arg)
{
	if (!s->pending || s->udp == NULL)
		return;
	s->pending = 0;
	s->cancel = NULL;
	s->udp->cbs = cbs;
	s->udp->arg = arg;
	s->need_open_ok = 1;
	(void)udp_flush(s);
}

int mux_udp_send(struct mux_stream *s, const struct mux_dest *addr, const void *p, size_t n)
{
	struct mux_session *m = s->m;
	int hl, r;

	if (s->udp == NULL || s->opening || s->pending || s->tx_term || s->need_rst ||
	    s->need_close || s->udp->detached || m->down || n > MUX_UDP_PAYLOAD_MAX) {
		drop(s);
		return -1;
	}
	if (!rate_take(s, &m->udp_rate_out))
		return -1;
	hl = proto_encode_udp_hdr(addr, txbuf, sizeof(txbuf));
	if (hl < 0) {
		drop(s);
		return -1;
	}
	if (n > 0)
		memcpy(txbuf + hl, p, n);
	/*
	 * Straight out unless something waits for send space before it: its
	 * own queue, or TCP streams while datagrams have had more than their
	 * share ("fair").
	 */
	if (STAILQ_EMPTY(&s->udp->q) && !s->blocked &&
	    (TAILQ_EMPTY(&m->blocked) || m->fair >= 0)) {
		r = send_dgram(s, txbuf, (size_t)hl + n);
		if (r == 0) {
			m->stats.udp_dgrams_out++;
			fair_udp_sent(m, (size_t)hl + n);
			return 0;
		}
		if (r != MUX_SEND_AGAIN) {
			drop(s);
			return -1;
		}
	}
	if (q_add(s, txbuf, (size_t)hl + n) < 0) {
		drop(s);
		return -1;
	}
	udp_block(s);
	return 0;
}

void mux_udp_close(struct mux_stream *s)
{
	struct mux_udp *u = s->udp;

	u->detached = 1;
	q_clear(s);
	if (s->need_open) {
		/* The peer never heard of it: the id is simply free again. */
		s->need_open = 0;
		s->opening = 0;
		s->tx_term = s->rx_term = 1;
		stream_release(s);
		return;
	}
	s->opening = 0;
	s->pending = 0;
	if (!s->tx_term && !s->need_rst && !s->need_close)
		s->need_close = 1;
	if (!stream_maybe_release(s))
		(void)udp_flush(s);
}
