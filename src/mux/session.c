/*
 * Mux session: one SCTP association carrying many streams.  The stream
 * table, association up and down, the dispatch of incoming messages to
 * streams (reassembling control messages), the round-robin flush of
 * streams blocked on send space, and the wiring to the SCTP layer.
 *
 * The session reaches the association only through struct mux_sctp_ops
 * (mux_internal.h): the real one below wraps sctp_assoc_*; the unit test
 * and the fuzz harness pass a fake and call the mux_session_on_* entry
 * points directly.
 *
 * Memory is bounded per session (docs/internals.md, "Mux: memory
 * bounds"): every stream's state and queued bytes count against
 * cfg.mem_budget; an OPEN that does not fit, or one beyond max_streams, is
 * refused before anything is allocated; a stream whose side is over is
 * freed at once (tombstones, mux_internal.h); when queued data goes over
 * the budget the streams holding the most are reset.  Extra window beyond
 * the initial one comes from at most half the budget, and we always drain
 * usrsctp, so one stalled reader never stalls the association.
 */
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "metrics/metrics.h"
#include "mux/mux_internal.h"
#include "sctp/sctp.h"
#include "util/clock.h"
#include "util/fault.h"

struct log_ratelimit mux_rl = LOG_RATELIMIT_INIT(10.0, 5);

void mux_config_defaults(struct mux_config *c)
{
	c->window = 2 * 1024 * 1024;
	c->rx_budget = 64 * 1024 * 1024;
	c->mem_budget = MUX_MEM_BUDGET_DEFAULT;
	c->max_streams = 16000;
	c->max_msg = 64 * 1024;
	c->max_udp = 64;
	c->udp_budget = 1u << 20;
	c->udp_rate = 0;   /* sctpt client and server set 20000 (--udp-rate) */
}

/* ---------- the memory budget ---------- */

static void mem_add(struct mux_session *m, size_t n)
{
	m->mem += n;
	if (m->mem > m->stats.mem_peak)
		m->stats.mem_peak = m->mem;
}

int session_may_read(const struct mux_session *m)
{
	return m->mem < m->cfg.mem_budget;
}

/*
 * Streams that stopped reading their TCP side for the budget start again
 * once it has room (with some slack, so they do not flap at the edge).
 */
void session_resume_reads(struct mux_session *m)
{
	if (!m->reads_held || m->mem > m->cfg.mem_budget / 8 * 7 || m->down)
		return;
	m->reads_held = 0;
	for (unsigned i = 1; i < m->st.n; i++) {
		struct mux_stream *s = sidtable_get(&m->st, i);

		if (s != NULL && relay_update_read(s) < 0)
			stream_abort(s, MUX_ERR_GENERAL);
	}
}

static size_t rx_queued(const struct mux_stream *s)
{
	return relay_out_len(s) + (s->pending_rx != NULL ? evbuffer_get_length(s->pending_rx) : 0);
}

struct victim {
	size_t q;
	uint16_t sid;
};

static int victim_cmp(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;

	return x->q < y->q ? 1 : x->q > y->q ? -1 : 0;
}

/*
 * The session is over its budget: reset the streams holding the most
 * received data until it is back under seven eighths of it.  One sorted
 * pass per round, so a peer that keeps refilling pays a budget's eighth
 * of data for each scan of the table.
 */
static void session_enforce_budget(struct mux_session *m)
{
	size_t target = m->cfg.mem_budget / 8 * 7, freed = 0;
	struct victim *v;
	unsigned nv = 0, nreset = 0;

	v = malloc(((size_t)m->stats.streams_active + 1) * sizeof(*v));
	if (v == NULL)
		return;   /* reads are held and OPENs refused meanwhile */
	for (unsigned i = 1; i < m->st.n && nv < m->stats.streams_active; i++) {
		struct mux_stream *s = sidtable_get(&m->st, i);
		size_t q;

		if (s != NULL && (q = rx_queued(s)) > 0) {
			v[nv].q = q;
			v[nv].sid = (uint16_t)i;
			nv++;
		}
	}
	qsort(v, nv, sizeof(*v), victim_cmp);
	for (unsigned k = 0; k < nv && m->mem > target && !m->down; k++) {
		struct mux_stream *s = sidtable_get(&m->st, v[k].sid);

		if (s == NULL)
			continue;
		freed += v[k].q;
		nreset++;
		m->stats.budget_resets++;
		stream_abort(s, MUX_ERR_LIMIT);
	}
	free(v);
	if (nreset > 0)
		log_ratelimited(&mux_rl, LOG_LEVEL_WARN,
		                "session memory budget (%zu KiB) exceeded: reset %u stream(s) "
		                "holding the most unread data (%zu KiB)",
		                m->cfg.mem_budget >> 10, nreset, freed >> 10);
}

/*
 * Recount what s has queued.  With enforce (data from the peer just
 * arrived), a session over its budget resets the streams holding the most
 * received data: a peer filling many windows towards applications that do
 * not read loses those streams, not the server its memory.  1 if s is gone.
 */
int stream_account(struct mux_stream *s, int enforce)
{
	struct mux_session *m = s->m;
	uint16_t sid = s->sid;
	size_t q;

	q = relay_in_len(s) + rx_queued(s);
	if (q >= s->queued)
		mem_add(m, q - s->queued);
	else
		m->mem -= s->queued - q;
	s->queued = q;
	if (!enforce || m->mem <= m->cfg.mem_budget)
		return 0;
	session_enforce_budget(m);
	return sidtable_get(&m->st, sid) != s;
}

/* ---------- stream table ---------- */

/* A stream's window starts here and auto-tuning may double it up to
 * cfg.window (docs/streams.md, "Credit"). */
static uint32_t session_start_window(const struct mux_session *m)
{
	return m->cfg.window < MUX_START_WINDOW ? m->cfg.window : MUX_START_WINDOW;
}

int session_consumed(struct mux_stream *s, size_t n)
{
	struct mux_session *m = s->m;
	struct sctp_assoc_stats st;
	uint32_t grow;

	credit_consumed(&s->cr, n);
	if (n == 0 || s->cr.window >= m->cfg.window)
		return 0;
	mux_session_assoc_stats(m, &st);
	if (!(st.have & SCTP_STATS_RTT))
		return 0;
	grow = credit_autotune(&s->cr, n, clock_now_ms(), st.srtt_ms, m->cfg.window);
	if (grow > m->extra_max - m->extra_used)
		grow = (uint32_t)(m->extra_max - m->extra_used);
	if (grow == 0)
		return 0;
	credit_grow(&s->cr, grow);
	s->extra += grow;
	m->extra_used += grow;
	m->stats.windows_grown++;
	log_debug("stream %u: window grown to %u bytes", s->sid, s->cr.window);
	return 1;
}

struct mux_stream *stream_new(struct mux_session *m, uint16_t sid)
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
	s->r.fd = -1;
	s->created_ms = clock_now_ms();
	m->stats.streams_opened++;
	m->stats.streams_active++;
	mem_add(m, MUX_STREAM_COST);
	/* Enlarge our receive window to where auto-tuning starts, if the
	 * session budget allows. */
	if (session_start_window(m) > MUX_INITIAL_WINDOW &&
	    m->extra_used + (session_start_window(m) - MUX_INITIAL_WINDOW) <= m->extra_max) {
		s->extra = session_start_window(m) - MUX_INITIAL_WINDOW;
		m->extra_used += s->extra;
	}
	credit_init(&s->cr, MUX_INITIAL_WINDOW, s->extra);
	return s;
}

void stream_release(struct mux_stream *s)
{
	struct mux_session *m = s->m;
	void (*gone)(void *) = s->gone;

	if (s->udp != NULL)
		udp_release(s);
	if (s->blocked)
		TAILQ_REMOVE(&m->blocked, s, blocked_link);
	s->gone = NULL;
	if (gone != NULL)
		gone(s->gone_arg);   /* the owner forgets s; nothing else may happen to it */
	relay_close(s, 0);
	if (s->pending_rx != NULL)
		evbuffer_free(s->pending_rx);
	m->extra_used -= s->extra;
	m->mem -= s->queued + MUX_STREAM_COST;
	sidtable_clear(&m->st, s->sid);
	/* The peer still owes its last message: keep the id, not the stream. */
	if (!s->rx_term && !m->down)
		(void)sidtable_set_tomb(&m->st, s->sid, TOMB_TX);
	m->stats.streams_closed++;
	m->stats.streams_active--;
	log_debug("stream %u released", s->sid);
	free(s);
}

/*
 * Once our terminal message is sent, nothing more happens on our side of
 * the stream: free it now, whether or not the peer ever answers.
 */
int stream_maybe_release(struct mux_stream *s)
{
	if (s->tx_term && !s->opening && !s->pending && !s->listening) {
		stream_release(s);
		return 1;
	}
	return 0;
}

/* ---------- tombstones and refusals ---------- */

static void tomb_set(struct mux_session *m, uint16_t sid, uint8_t v)
{
	uint8_t old = sidtable_tomb(&m->st, sid);

	if ((old & TOMB_OWED) && !(v & TOMB_OWED))
		m->owed--;
	else if (!(old & TOMB_OWED) && (v & TOMB_OWED))
		m->owed++;
	/* Both terminal messages are done: the id is free again. */
	if ((v & TOMB_TX) && (v & TOMB_RX))
		v = 0;
	(void)sidtable_set_tomb(&m->st, sid, v);
}

/* Send an owed refusal.  0 sent (or the association is failing), or MUX_SEND_AGAIN. */
static int tomb_send_rst(struct mux_session *m, uint16_t sid)
{
	uint8_t t = sidtable_tomb(&m->st, sid);
	uint8_t code = (t & TOMB_UNSUP) ? MUX_ERR_UNSUPPORTED : MUX_ERR_LIMIT;
	int r = m->ops->send(m->ops_ctx, sid, MUX_RST, &code, 1);

	if (r == MUX_SEND_AGAIN) {
		tomb_set(m, sid, (uint8_t)(t | TOMB_OWED));
		return r;
	}
	tomb_set(m, sid, (uint8_t)((t & ~(TOMB_OWED | TOMB_UNSUP)) | TOMB_TX));
	return 0;
}

/* Refusals owed since the association was full; stops when it is again. */
static void session_flush_owed(struct mux_session *m)
{
	for (unsigned i = 1; i < m->st.n && m->owed > 0 && !m->down; i++)
		if ((sidtable_tomb(&m->st, i) & TOMB_OWED) &&
		    tomb_send_rst(m, (uint16_t)i) == MUX_SEND_AGAIN)
			return;
}

/*
 * Refuse an OPEN before allocating anything for it: the stream limit is
 * reached or the budget could not hold one more stream and its initial
 * window.  The id becomes a tombstone until the peer answers our RST.
 */
static void session_refuse(struct mux_session *m, uint16_t sid)
{
	m->stats.streams_refused++;
	metrics_count_refused(MR_LIMIT);
	if (m->stats.streams_active >= m->cfg.max_streams)
		log_ratelimited(&mux_rl, LOG_LEVEL_WARN,
		                "stream limit (%u per client) reached; refusing", m->cfg.max_streams);
	else
		log_ratelimited(&mux_rl, LOG_LEVEL_WARN,
		                "session memory budget (%zu KiB) full; refusing new streams",
		                m->cfg.mem_budget >> 10);
	if (m->owed > 0)
		tomb_set(m, sid, TOMB_OWED);   /* keep the order: after the others */
	else
		(void)tomb_send_rst(m, sid);
}

/*
 * The peer opened a stream with a message type we do not know (a newer
 * peer): refuse it with RST 0x07 before allocating anything, so that its
 * user gets a clear "not supported" instead of silence.
 */
static void session_refuse_unknown(struct mux_session *m, uint16_t sid, uint32_t ppid)
{
	m->stats.protocol_errors++;
	log_ratelimited(&mux_rl, LOG_LEVEL_INFO,
	                "stream %u: unknown message type %u; refused as not supported", sid, ppid);
	if (m->owed > 0)
		tomb_set(m, sid, TOMB_OWED | TOMB_UNSUP);
	else {
		tomb_set(m, sid, TOMB_UNSUP);
		(void)tomb_send_rst(m, sid);
	}
}

/* Message types this version knows (docs/streams.md). */
static int ppid_known(uint32_t ppid)
{
	return (ppid >= MUX_OPEN && ppid <= MUX_FWD_OPEN) ||
	       (ppid >= MUX_UDP_OPEN && ppid <= MUX_UDP_DGRAM);
}

/* May the peer start a stream on sid with ppid: OPEN, LISTEN and UDP_OPEN on
 * odd ids to the server, FWD_OPEN on even ids to the client? */
static int peer_may_open(const struct mux_session *m, uint16_t sid, uint32_t ppid)
{
	if (m->client)
		return (sid & 1) == 0 && ppid == MUX_FWD_OPEN;
	/* Tests play a server older than remote forwards, which ignored LISTEN. */
	if (ppid == MUX_LISTEN && FAULT("mux_old_peer"))
		return 0;
	return (sid & 1) == 1 && (ppid == MUX_OPEN || ppid == MUX_LISTEN || ppid == MUX_UDP_OPEN);
}

int session_admits(const struct mux_session *m)
{
	return m->stats.streams_active < m->cfg.max_streams &&
	       m->mem + MUX_STREAM_COST + MUX_INITIAL_WINDOW <= m->cfg.mem_budget;
}

/*
 * A message for an id that only has a tombstone: what is still in flight
 * from the life we ended is dropped; the peer's RST or CLOSE ends the wait.
 */
static void tomb_on_message(struct mux_session *m, uint16_t sid, uint32_t ppid, int eor)
{
	uint8_t t = sidtable_tomb(&m->st, sid);

	if ((ppid == MUX_RST || ppid == MUX_CLOSE) && eor && !(t & TOMB_RX)) {
		tomb_set(m, sid, (uint8_t)(t | TOMB_RX));
		return;
	}
	if (ppid == MUX_OPEN && eor) {
		/* Reusing an id before answering our RST (docs/streams.md). */
		m->stats.protocol_errors++;
		log_ratelimited(&mux_rl, LOG_LEVEL_INFO,
		                "stream %u: OPEN before the previous stream's RST was answered; "
		                "ignored", sid);
	}
}

/* ---------- from the association ---------- */

static void session_on_message(struct mux_session *m, uint16_t sid, uint32_t ppid,
                               const uint8_t *data, size_t len, int eor)
{
	struct mux_stream *s;

	if (sid == 0 || sid >= m->st.n) {
		m->stats.protocol_errors++;
		return;
	}
	s = sidtable_get(&m->st, sid);
	if (s == NULL && sidtable_tomb(&m->st, sid) != 0) {
		tomb_on_message(m, sid, ppid, eor);
		return;
	}
	if (ppid == MUX_DATA) {
		if (s == NULL || s->ctl_busy) {
			m->stats.protocol_errors++;
			log_ratelimited(&mux_rl, LOG_LEVEL_INFO, "stream %u: DATA on an idle stream ignored", sid);
			return;
		}
		stream_on_data(s, data, len);
		return;
	}
	/* UDP relay: datagrams are not control messages (docs/udp-relay.md). */
	if (ppid == MUX_UDP_DGRAM) {
		if (s == NULL || s->udp == NULL || s->ctl_busy) {
			m->stats.protocol_errors++;
			log_ratelimited(&mux_rl, LOG_LEVEL_INFO,
			                "stream %u: UDP datagram outside a UDP association ignored", sid);
			return;
		}
		udp_on_dgram(s, data, len, eor);
		return;
	}
	if (s == NULL && ppid == MUX_UDP_OPEN && !m->client && (sid & 1) == 1 &&
	    m->cbs.udp_open != NULL && m->cfg.max_udp > 0 &&
	    m->stats.udp_active >= m->cfg.max_udp) {
		/* The per-session cap on UDP associations: refused like a full session. */
		m->stats.udp_refused++;
		log_ratelimited(&mux_rl, LOG_LEVEL_WARN,
		                "UDP association limit (%u per client) reached; refusing",
		                m->cfg.max_udp);
		if (m->owed > 0)
			tomb_set(m, sid, TOMB_OWED);
		else
			(void)tomb_send_rst(m, sid);
		return;
	}
	if (s == NULL) {
		if (!peer_may_open(m, sid, ppid)) {
			/* Ids of the peer's parity: a newer message type is refused. */
			if (!ppid_known(ppid) && (sid & 1) == (m->client ? 0 : 1) && eor) {
				session_refuse_unknown(m, sid, ppid);
				return;
			}
			m->stats.protocol_errors++;
			log_ratelimited(&mux_rl, LOG_LEVEL_INFO,
			                "stream %u: message type %u on an idle stream ignored", sid, ppid);
			return;
		}
		/* Limits first: a refused OPEN costs one byte, not a stream. */
		if (!session_admits(m)) {
			session_refuse(m, sid);
			return;
		}
		s = stream_new(m, sid);
		if (s == NULL)
			return;
	}
	if (s->ctl_busy && s->ctl_ppid != ppid) {
		/* Forget the partial one, or the peer's RST could never be heard. */
		s->ctl_len = 0;
		s->ctl_busy = 0;
		stream_protocol_error(s, "interleaved control message");
		return;
	}
	if ((size_t)s->ctl_len + len > MUX_CTRL_MAX) {
		s->ctl_len = 0;
		s->ctl_busy = 0;
		stream_protocol_error(s, "control message too long");
		return;
	}
	memcpy(s->ctl + s->ctl_len, data, len);
	s->ctl_len = (uint16_t)(s->ctl_len + len);
	s->ctl_ppid = ppid;
	s->ctl_busy = 1;
	if (!eor)
		return;
	stream_on_control(s, ppid);
	/* s may be gone now; only clear if it is still the same stream. */
	if (sidtable_get(&m->st, sid) == s) {
		s->ctl_len = 0;
		s->ctl_busy = 0;
	}
}

void mux_session_on_message(struct mux_session *m, uint16_t sid, uint32_t ppid,
                            const uint8_t *data, size_t len, int eor)
{
	session_on_message(m, sid, ppid, data, len, eor);
	session_resume_reads(m);
}

void mux_session_on_up(struct mux_session *m)
{
	unsigned n = m->ops->streams(m->ops_ctx);

	if (n < 2) {
		mux_session_on_down(m, "peer offers no usable streams");
		return;
	}
	if (sidtable_init(&m->st, n) < 0) {
		mux_session_on_down(m, "out of memory for the stream table");
		return;
	}
	m->up = 1;
	m->cbs.up(m, m->arg);
}

void mux_session_on_writable(struct mux_session *m)
{
	unsigned budget = m->stats.streams_active + 1;
	int udp_first;

	session_flush_owed(m);
	if (m->owed > 0)
		return;   /* full again */
	/* Datagrams and TCP streams take turns (udp.c, "fair"). */
	udp_first = udp_goes_first(m);
	if (udp_first)
		udp_on_writable(m);

	while (!TAILQ_EMPTY(&m->blocked) && budget-- > 0 && !m->down) {
		struct mux_stream *s = TAILQ_FIRST(&m->blocked);

		TAILQ_REMOVE(&m->blocked, s, blocked_link);
		s->blocked = 0;
		if (stream_flush(s))
			continue;   /* it sent its last message and is gone */
		if (s->blocked)
			break;      /* full again; it went to the back of the queue */
	}
	if (!udp_first)
		udp_on_writable(m);
	session_resume_reads(m);
}

static void session_fail_streams(struct mux_session *m)
{
	for (unsigned i = 1; i < m->st.n; i++) {
		struct mux_stream *s = sidtable_get(&m->st, i);

		if (s == NULL)
			continue;
		if (s->blocked) {
			TAILQ_REMOVE(s->udp != NULL ? &m->udp_blocked : &m->blocked, s, blocked_link);
			s->blocked = 0;
		}
		s->tx_term = s->rx_term = 1;
		s->need_rst = 0;
		if (s->opening)
			stream_open_failed(s, MUX_ERR_GENERAL);
		if (s->listening) {
			mux_listen_cb cb = s->listen_cb;

			s->listening = 0;
			s->listen_cb = NULL;
			if (cb != NULL)
				cb(s, MUX_ERR_GENERAL, 0, s->listen_arg);
		}
		if (s->pending) {
			s->pending = 0;
			if (s->cancel != NULL)
				s->cancel(s->cancel_arg);
		}
		relay_close(s, 1);
		stream_release(s);
	}
}

void mux_session_on_down(struct mux_session *m, const char *why)
{
	if (m->down)
		return;
	m->down = 1;
	m->up = 0;
	session_fail_streams(m);
	m->cbs.down(m, why, m->arg);   /* may free m: nothing after this */
}

/* ---------- the real association ---------- */

static int assoc_send(void *ctx, uint16_t sid, uint32_t ppid, const void *p, size_t n)
{
	return sctp_assoc_send(ctx, sid, ppid, p, n);
}

static unsigned assoc_streams(void *ctx)
{
	return sctp_assoc_streams(ctx);
}

static int assoc_send_unordered(void *ctx, uint16_t sid, uint32_t ppid, const void *p,
                                size_t n)
{
	return sctp_assoc_send_unordered(ctx, sid, ppid, p, n);
}

static void assoc_path_changed(void *ctx)
{
	sctp_assoc_path_changed(ctx);
}

static void assoc_free(void *ctx)
{
	sctp_assoc_free(ctx);
}

static void assoc_get_stats(void *ctx, struct sctp_assoc_stats *st)
{
	sctp_assoc_get_stats(ctx, st);
}

static const struct mux_sctp_ops assoc_ops = {
	.send = assoc_send,
	.streams = assoc_streams,
	.path_changed = assoc_path_changed,
	.get_stats = assoc_get_stats,
	.free = assoc_free,
	.send_unordered = assoc_send_unordered,
};

static void on_up(struct sctp_assoc *a, void *arg)
{
	mux_session_on_up(arg);
}

static void on_down(struct sctp_assoc *a, const char *why, void *arg)
{
	mux_session_on_down(arg, why);
}

static void on_message(struct sctp_assoc *a, uint16_t sid, uint32_t ppid,
                       const uint8_t *data, size_t len, int eor, void *arg)
{
	mux_session_on_message(arg, sid, ppid, data, len, eor);
}

static void on_writable(struct sctp_assoc *a, void *arg)
{
	mux_session_on_writable(arg);
}

static const struct sctp_assoc_cbs mux_sctp_cbs = {
	.up = on_up,
	.down = on_down,
	.message = on_message,
	.writable = on_writable,
};

_Static_assert(MUX_SEND_AGAIN == SCTP_AGAIN, "the ops seam passes SCTP_AGAIN through");

/* ---------- public session API ---------- */

struct mux_session *mux_session_new_ops(const struct mux_config *cfg,
                                        const struct mux_session_cbs *cbs, void *arg,
                                        int client, const struct mux_sctp_ops *ops,
                                        void *ops_ctx)
{
	struct mux_session *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->cfg = *cfg;
	if (m->cfg.window < MUX_INITIAL_WINDOW)
		m->cfg.window = MUX_INITIAL_WINDOW;
	m->extra_max = m->cfg.rx_budget < m->cfg.mem_budget / 2 ? m->cfg.rx_budget
	                                                        : m->cfg.mem_budget / 2;
	m->cbs = *cbs;
	m->arg = arg;
	m->client = client;
	m->ops = ops;
	m->ops_ctx = ops_ctx;
	TAILQ_INIT(&m->blocked);
	TAILQ_INIT(&m->udp_blocked);
	return m;
}

struct mux_session *mux_session_connect(struct wire_link *link,
                                        const struct mux_config *cfg,
                                        const struct mux_session_cbs *cbs, void *arg)
{
	struct mux_session *m = mux_session_new_ops(cfg, cbs, arg, 1, &assoc_ops, NULL);

	if (m == NULL) {
		sctp_link_discard(link);
		return NULL;
	}
	m->ops_ctx = sctp_assoc_connect(link, &mux_sctp_cbs, m);
	if (m->ops_ctx == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

struct mux_session *mux_session_accept(struct wire_link *link,
                                       const struct mux_config *cfg,
                                       const struct mux_session_cbs *cbs, void *arg)
{
	struct mux_session *m = mux_session_new_ops(cfg, cbs, arg, 0, &assoc_ops, NULL);

	if (m == NULL) {
		sctp_link_discard(link);
		return NULL;
	}
	m->ops_ctx = sctp_assoc_accept(link, &mux_sctp_cbs, m);
	if (m->ops_ctx == NULL) {
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
	if (m->ops_ctx != NULL)
		m->ops->free(m->ops_ctx);
	sidtable_free(&m->st);
	free(m);
}

void mux_session_path_changed(struct mux_session *m)
{
	if (m != NULL && m->ops_ctx != NULL && m->ops->path_changed != NULL)
		m->ops->path_changed(m->ops_ctx);
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
	st->mem = m->mem;
	st->tombs = m->st.tombs;
}

/* ---------- the metrics endpoint's view ---------- */

void mux_session_assoc_stats(const struct mux_session *m, struct sctp_assoc_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (m != NULL && m->ops_ctx != NULL && m->ops->get_stats != NULL)
		m->ops->get_stats(m->ops_ctx, st);
}

static const char *stream_state(const struct mux_stream *s)
{
	if (s->opening)
		return "opening";
	if (s->pending)
		return "pending";
	if (s->tx_term || s->rx_term || s->need_rst)
		return "closing";
	if (s->tx_fin || s->rx_fin)
		return "half-closed";
	return "open";
}

size_t mux_session_stream_info(const struct mux_session *m, struct mux_stream_info *out,
                               size_t max)
{
	uint64_t now = clock_now_ms();
	size_t k = 0;

	/* Stops once every live stream is found: ids are sparse. */
	for (unsigned sid = 1; sid < m->st.n && k < max && k < m->stats.streams_active; sid++) {
		const struct mux_stream *s = sidtable_get(&m->st, sid);
		struct mux_stream_info *i = &out[k];

		if (s == NULL)
			continue;
		memset(i, 0, sizeof(*i));
		i->sid = s->sid;
		i->state = stream_state(s);
		i->bytes_in = s->bytes_in;
		i->bytes_out = s->bytes_out;
		i->credit_tx = s->cr.tx;
		i->credit_rx = s->cr.rx_allowed;
		i->window = s->cr.window;
		i->queued = s->queued;
		i->age_ms = now >= s->created_ms ? now - s->created_ms : 0;
		if (m->client)
			i->dest = s->dest;
		k++;
	}
	return k;
}
