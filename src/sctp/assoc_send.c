/*
 * The send side of data transfer: per-stream message queues under one
 * byte limit (cfg.sndbuf), a round-robin scheduler over the streams that
 * have data (a ring, so idle streams cost nothing), fragmentation to the
 * MTU when a chunk is cut (DATA: the fragments of one message take
 * consecutive TSNs, so a stream keeps the turn until its message ends;
 * I-DATA: MID/FSN, RFC 8260, the turn passes after every fragment), TSN
 * assignment, and bundling into packets with the SACK first.
 *
 * What goes out is decided in core_send_flush(): the SACK we owe,
 * chunks marked for retransmission, then new chunks while the congestion
 * window and the peer's receive window allow.
 */
#include "sctp/assoc_data_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- queues and the scheduler ring ---- */

static struct core_ostream *ostream_get(struct sctp_core *a, uint16_t sid)
{
	struct core_data *d = a->d;
	struct core_ostream *s;

	if (d->os == NULL) {
		d->os = calloc(a->p.out_streams, sizeof(*d->os));
		if (d->os == NULL)
			return NULL;
		d->n_os = a->p.out_streams;
	}
	if (sid >= d->n_os)
		return NULL;
	if ((s = d->os[sid]) == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return NULL;
		s->sid = sid;
		d->os[sid] = s;
	}
	return s;
}

static void sched_add(struct core_data *d, struct core_ostream *s)
{
	if (s->scheduled)
		return;
	s->scheduled = 1;
	if (d->sched == NULL) {
		s->sched_next = s;
		d->sched = s;
		return;
	}
	/* Insert just behind the current one: served last in this round. */
	{
		struct core_ostream *p = d->sched;

		while (p->sched_next != d->sched)
			p = p->sched_next;
		s->sched_next = d->sched;
		p->sched_next = s;
	}
}

static void sched_remove_current(struct core_data *d)
{
	struct core_ostream *s = d->sched, *p = s;

	s->scheduled = 0;
	if (s->sched_next == s) {
		d->sched = NULL;
		return;
	}
	while (p->sched_next != s)
		p = p->sched_next;
	p->sched_next = s->sched_next;
	d->sched = s->sched_next;
}

int core_send_queue(struct sctp_core *a, uint16_t sid, uint32_t ppid,
                    int unordered, const void *buf, size_t len)
{
	struct core_data *d = a->d;
	struct core_ostream *s;
	struct core_msg *m;

	if (d->sndbuf_used + len > a->cfg.sndbuf) {
		d->want_writable = 1;
		return SCTP_CORE_WOULD_BLOCK;
	}
	if ((s = ostream_get(a, sid)) == NULL)
		return -1;
	if ((m = malloc(sizeof(*m) + len)) == NULL)
		return -1;
	memset(m, 0, sizeof(*m));
	m->ppid = ppid;
	m->len = len;
	m->unordered = unordered != 0;
	memcpy(m->data, buf, len);
	if (s->tail != NULL)
		s->tail->next = m;
	else
		s->head = m;
	s->tail = m;
	d->sndbuf_used += len;
	sched_add(d, s);
	return 0;
}

void core_send_free_streams(struct core_data *d)
{
	for (unsigned i = 0; d->os != NULL && i < d->n_os; i++) {
		struct core_ostream *s = d->os[i];

		if (s == NULL)
			continue;
		while (s->head != NULL) {
			struct core_msg *m = s->head;

			s->head = m->next;
			free(m);
		}
		free(s);
	}
	free(d->os);
	d->os = NULL;
	d->n_os = 0;
	d->sched = NULL;
	d->sticky = NULL;
}

void core_send_released(struct sctp_core *a, size_t n)
{
	struct core_data *d = a->d;
	struct sctp_core_event ev = { .type = SCTP_EV_WRITABLE };

	d->sndbuf_used -= n < d->sndbuf_used ? n : d->sndbuf_used;
	if (d->want_writable && d->sndbuf_used <= a->cfg.sndbuf / 2) {
		d->want_writable = 0;
		core_emit(a, &ev);
	}
}

size_t core_send_frag_size(const struct sctp_core *a)
{
	size_t hdr = SCTP_HEADER_LEN + (a->p.idata ? 20 : 16);

	return ((size_t)a->cfg.mtu - hdr) & ~(size_t)3;
}

/*
 * I-DATA interleaves messages, and a receiver can only deliver whole
 * ones: if the messages begun but not finished add up to more than its
 * window, neither side can move.  So a new message starts only while
 * those in progress (and it) fit half the peer's initial window; past
 * that, streams in the middle of a message are served first.
 */
static int may_start(const struct sctp_core *a, const struct core_msg *m)
{
	const struct core_data *d = a->d;
	size_t limit = a->p.peer_rwnd / 2;

	if (m->off > 0 || d->inprog == 0)
		return 1;
	return d->inprog + m->len <= limit;
}

static struct core_ostream *pick_stream(struct sctp_core *a)
{
	struct core_data *d = a->d;
	struct core_ostream *s = d->sched;

	if (d->sticky != NULL)
		return d->sticky;
	if (s == NULL || !a->p.idata)
		return s;
	do {
		if (may_start(a, s->head)) {
			d->sched = s;
			return s;
		}
		s = s->sched_next;
	} while (s != d->sched);
	return d->sched;        /* cannot happen: inprog > 0 has a stream */
}

/* Cuts the next chunk from the scheduled streams; NULL if none (or no
 * memory: it stays queued and is tried again on the next flush). */
static struct core_chunk *next_chunk(struct sctp_core *a)
{
	struct core_data *d = a->d;
	struct core_ostream *s = pick_stream(a);
	struct core_msg *m;
	struct core_chunk *ck;
	size_t n;

	if (s == NULL)
		return NULL;
	m = s->head;
	n = m->len - m->off;
	if (n > core_send_frag_size(a))
		n = core_send_frag_size(a);
	if ((ck = malloc(sizeof(*ck) + n)) == NULL)
		return NULL;
	memset(ck, 0, sizeof(*ck));
	if (m->off == 0) {
		if (!a->p.idata)
			m->mid = m->unordered ? 0 : s->next_ssn++;
		else
			m->mid = m->unordered ? s->next_umid++ : s->next_mid++;
		m->fsn = 0;
		ck->flags |= SCTP_CF_B;
	}
	if (m->unordered)
		ck->flags |= SCTP_CF_U;
	if (m->off + n == m->len)
		ck->flags |= SCTP_CF_E;
	ck->sid = s->sid;
	ck->ppid = m->ppid;
	ck->mid = m->mid;
	ck->fsn = m->fsn++;
	ck->len = n;
	memcpy(ck->data, m->data + m->off, n);
	if (m->off == 0 && !(ck->flags & SCTP_CF_E))
		d->inprog += m->len;
	else if (m->off > 0 && (ck->flags & SCTP_CF_E))
		d->inprog -= m->len;
	m->off += n;
	if (ck->flags & SCTP_CF_E) {
		s->head = m->next;
		if (s->head == NULL)
			s->tail = NULL;
		free(m);
		d->sticky = NULL;
		if (s->head == NULL)
			sched_remove_current(d);
		else
			d->sched = s->sched_next;
	} else if (!a->p.idata) {
		d->sticky = s;          /* consecutive TSNs for this message */
	} else {
		d->sched = s->sched_next;
	}
	return ck;
}

/* ---- packets ---- */

struct flush_ctx {
	struct sctp_builder b;
	int open;
	unsigned packets;
	int paced;                 /* the pacer stopped data that could go */
};

static void pkt_send(struct sctp_core *a, struct flush_ctx *f)
{
	if (!f->open)
		return;
	core_out_send(a, &f->b);
	f->open = 0;
	f->packets++;
	a->d->packets_sent++;
}

static void pkt_open(struct sctp_core *a, struct flush_ctx *f)
{
	if (f->open)
		return;
	core_out_start(a, &f->b, a->p.peer_vtag);
	f->open = 1;
	/* SACK first: it may open the peer's window for what follows. */
	if (a->d->sack_needed)
		(void)core_sack_build(a, &f->b);
}

static int put_chunk(struct sctp_core *a, struct sctp_builder *b,
                     const struct core_chunk *ck)
{
	struct sctp_data dc;

	memset(&dc, 0, sizeof(dc));
	dc.flags = ck->flags;
	dc.tsn = ck->tsn;
	dc.sid = ck->sid;
	dc.ppid = ck->ppid;
	dc.payload = ck->data;
	dc.payload_len = ck->len;
	if (a->p.idata) {
		dc.mid = ck->mid;
		dc.fsn = ck->fsn;
		return sctp_build_idata(b, &dc);
	}
	dc.ssn = (uint16_t)ck->mid;
	return sctp_build_data(b, &dc);
}

/* Adds a chunk, starting a new packet when this one is full.  0, or -1
 * if the packet budget is spent (the chunk was not sent). */
static int add_chunk(struct sctp_core *a, struct flush_ctx *f,
                     struct core_chunk *ck, unsigned max_packets)
{
	pkt_open(a, f);
	if (put_chunk(a, &f->b, ck) == 0)
		return 0;
	/* Full (or a SACK left no room): the next packet has no SACK, and
	 * a chunk of frag_size always fits a packet of its own. */
	pkt_send(a, f);
	if (f->packets >= max_packets)
		return -1;
	pkt_open(a, f);
	return put_chunk(a, &f->b, ck) == 0 ? 0 : -1;
}

/*
 * The pacer: a token bucket in bytes, refilled at cc.pacing_rate, one
 * chunk may go while the bucket is not empty (it may go below zero by
 * that chunk).  The bucket holds at most PACE_BURST_PKTS packets or
 * PACE_BURST_MS of the rate, whichever is more: the clock counts
 * milliseconds and the carrier batches packets (GSO), so a few packets
 * leave together and the pacer wakes at most once a millisecond.  A
 * controller with no rate (NewReno; any before its first estimate) is
 * not paced.
 */
#define PACE_BURST_PKTS 4
#define PACE_BURST_MS 2
#define PACE_CHUNK_OVERHEAD 48     /* headers a chunk costs on the wire */

static int64_t pace_cap(const struct sctp_core *a)
{
	uint64_t by_rate = a->cc.pacing_rate * PACE_BURST_MS / 1000;
	uint64_t by_pkts = (uint64_t)PACE_BURST_PKTS * a->cfg.mtu;

	return (int64_t)(by_rate > by_pkts ? by_rate : by_pkts);
}

static void pace_refill(struct sctp_core *a)
{
	struct core_data *d = a->d;
	uint64_t rate = a->cc.pacing_rate;
	int64_t cap = pace_cap(a);

	if (rate == 0) {
		d->pace_on = 0;
		return;
	}
	if (!d->pace_on) {
		d->pace_on = 1;
		d->pace_at = a->now;
		d->pace_tokens = cap;
		return;
	}
	if (a->now > d->pace_at) {
		uint64_t dt = a->now - d->pace_at;
		uint64_t add = dt >= 1000 ? (uint64_t)cap : rate * dt / 1000;

		d->pace_tokens += add > (uint64_t)cap ? cap : (int64_t)add;
		d->pace_at = a->now;
	}
	if (d->pace_tokens > cap)
		d->pace_tokens = cap;
}

static int pace_allows(const struct sctp_core *a)
{
	return a->cc.pacing_rate == 0 || a->d->pace_tokens > 0;
}

/* The pacer held data back: wake when the bucket has a packet again. */
static void pace_arm(struct sctp_core *a)
{
	struct core_data *d = a->d;
	uint64_t rate = a->cc.pacing_rate, need, ms;

	need = (uint64_t)(a->cfg.mtu - (d->pace_tokens > 0 ? 0 :
	                                d->pace_tokens));
	ms = rate == 0 ? 1 : (need * 1000 + rate - 1) / rate;
	if (ms < 1)
		ms = 1;
	if (ms > 1000)
		ms = 1000;
	d->pace_waits++;
	core_timer_start(a, SCTP_T_PACE, (uint32_t)ms);
}

void core_pace_timer(struct sctp_core *a)
{
	if (a->state < SCTP_S_ESTABLISHED)
		return;
	core_send_flush(a);
}

static void mark_sent(struct sctp_core *a, struct core_chunk *ck)
{
	struct core_data *d = a->d;

	/* Delivery-rate state at send (assoc_sack.c). */
	if (d->flight == 0) {
		d->rs.first_sent = a->now;
		d->rs.delivered_at = a->now;
	}
	ck->rs_delivered = d->rs.delivered;
	ck->rs_delivered_at = d->rs.delivered_at;
	ck->rs_first_sent = d->rs.first_sent;
	ck->rs_app_limited = d->rs.app_limited != 0;
	if (a->cc.pacing_rate != 0)
		d->pace_tokens -= (int64_t)(ck->len + PACE_CHUNK_OVERHEAD);
	ck->state |= CORE_CK_INFLIGHT;
	if (ck->tx++ == 0)
		ck->first_sent_at = a->now;
	ck->sent_at = a->now;
	d->flight += (uint32_t)ck->len;
}

static int may_send_data(const struct sctp_core *a)
{
	return a->state == SCTP_S_ESTABLISHED ||
	       a->state == SCTP_S_SHUTDOWN_PENDING ||
	       a->state == SCTP_S_SHUTDOWN_RECEIVED;
}

/* Retransmissions in TSN order.  After a T3 or a fast retransmit one
 * packet goes out whatever the window (§6.3.3 E3, §7.2.4); the rest
 * waits for the congestion window. */
static void flush_rtx(struct sctp_core *a, struct flush_ctx *f)
{
	struct core_data *d = a->d;
	/* A packet that goes out with only our SACK does not count. */
	unsigned budget = !d->t3_fired ? UINT32_MAX :
	                  f->packets + 1 + (f->open || d->sack_needed);

	for (uint32_t t = d->una; d->n_rtx > 0 && t != a->next_tsn; t++) {
		struct core_chunk *ck = core_ring_at(d, t);

		if (!(ck->state & CORE_CK_RTX))
			continue;
		if (!d->t3_fired && d->flight >= a->cc.cwnd)
			break;
		if (!d->t3_fired && !pace_allows(a)) {
			f->paced = 1;
			break;
		}
		if (add_chunk(a, f, ck, budget) != 0)
			break;
		ck->state &= (uint8_t)~CORE_CK_RTX;
		d->n_rtx--;
		d->retransmits++;
		mark_sent(a, ck);
		core_loss_note_rtx(a, ck);
	}
	if (d->t3_fired) {
		d->t3_fired = 0;
		pkt_send(a, f);
	}
}

/* The size of the chunk next_chunk() would cut, or 0 if none. */
static size_t next_len(struct sctp_core *a)
{
	const struct core_ostream *s = pick_stream(a);
	size_t n;

	if (s == NULL)
		return 0;
	n = s->head->len - s->head->off;
	return n < core_send_frag_size(a) ? n : core_send_frag_size(a);
}

static int window_open(struct sctp_core *a)
{
	const struct core_data *d = a->d;
	size_t n = next_len(a);

	/* A tail-loss probe may take one chunk beyond cwnd. */
	if (n == 0 || (d->flight >= a->cc.cwnd && !d->tlp.want_new))
		return 0;
	/* §6.1 A: nothing new beyond the peer's window, except one probe
	 * when nothing is in flight (T3 then retransmits it). */
	if (d->peer_rwnd_raw < d->flight || d->peer_rwnd_raw - d->flight < n)
		return d->flight == 0;
	return 1;
}

static void flush_new(struct sctp_core *a, struct flush_ctx *f)
{
	struct core_data *d = a->d;

	while (d->n_rtx == 0 && may_send_data(a) && window_open(a) &&
	       a->next_tsn - d->una < CORE_OUT_RING) {
		struct core_chunk *ck;

		/* A tail-loss probe is not held back. */
		if (!d->tlp.want_new && !pace_allows(a)) {
			f->paced = 1;
			break;
		}
		if ((ck = next_chunk(a)) == NULL)
			break;
		ck->tsn = a->next_tsn++;
		d->ring[ck->tsn & (CORE_OUT_RING - 1)] = ck;
		d->highest_sent = ck->tsn;
		if (add_chunk(a, f, ck, UINT32_MAX) != 0)
			break;          /* cannot happen: no budget */
		mark_sent(a, ck);
		d->tlp.restart = 1;
		d->tlp.want_new = 0;
		/* A zero-window probe goes alone. */
		if (d->peer_rwnd_raw < d->flight)
			break;
	}
	/* Nothing more to send while the window had room: samples taken
	 * until this flight is delivered may show the application's rate,
	 * not the path's. */
	if (!f->paced && next_len(a) == 0 && d->flight < a->cc.cwnd)
		d->rs.app_limited = d->rs.delivered + d->flight ?
		                    d->rs.delivered + d->flight : 1;
}

void core_send_flush(struct sctp_core *a)
{
	struct core_data *d = a->d;
	struct flush_ctx f;

	if (a->state < SCTP_S_ESTABLISHED || a->p.peer_vtag == 0)
		return;
	memset(&f, 0, sizeof(f));
	if (d->ring == NULL &&
	    (d->ring = calloc(CORE_OUT_RING, sizeof(*d->ring))) == NULL)
		return;
	if (d->sack_now)
		pkt_open(a, &f);
	pace_refill(a);
	if (a->state != SCTP_S_SHUTDOWN_ACK_SENT) {
		if (d->n_rtx > 0)
			flush_rtx(a, &f);
		flush_new(a, &f);
	}
	pkt_send(a, &f);
	if (f.paced)
		pace_arm(a);
	else
		core_timer_stop(a, SCTP_T_PACE);
	core_rtx_t3_update(a, 0);
	core_tlp_update(a, d->tlp.restart);
	d->tlp.restart = 0;
}
