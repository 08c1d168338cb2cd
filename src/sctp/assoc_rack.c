/*
 * Loss recovery beyond RFC 9260's baseline: RACK-TLP (RFC 8985) adapted
 * to TSNs, and the detection and undo of needless retransmissions.
 *
 * RACK: every chunk remembers when it was last sent (sent_at).  When a
 * SACK newly acknowledges a chunk (cum or gap), the send time and RTT of
 * the most recently *sent* chunk delivered so far become RACK.xmit_ts and
 * RACK.rtt; an ack of a retransmitted chunk that comes sooner than min_rtt
 * after the retransmission is for the original: skipped (RFC 8985 §6.2
 * step 2), or, with two copies, taken with the first copy's send time
 * (core_rack_acked_send).  min_rtt is the least RTT of the unambiguous
 * samples, renewed when it is older than 10 s.  A chunk sent before RACK.xmit_ts and still unacked is
 * lost once RACK.rtt + reo_wnd has passed since it was sent; until then
 * the reordering timer (SCTP_T_RACK) waits for it.  reo_wnd starts at
 * min_rtt / 4, grows by that step (at most once a round trip) each time a
 * retransmission proves needless, never exceeds SRTT, and falls back
 * after 16 loss episodes without more.  Because the send time is per
 * transmission, a lost retransmission is found the same way, without T3.
 *
 * The 3-miss rule of §7.2.4 stays as a fallback while no reordering has
 * been seen on the association: it is RFC 8985's DupThresh, and it is
 * quicker than reo_wnd only when SACKs arrive faster than min_rtt / 4.
 * Once a chunk sent once is acked below the highest TSN delivered
 * (reordering), only RACK's clock decides.
 *
 * TLP: with data outstanding and no loss being repaired, a probe timeout
 * PTO = 2 SRTT (plus the peer's delayed-SACK time when one packet is in
 * flight, at least SCTP_TLP_MIN_MS) sends one new chunk beyond cwnd if
 * any is queued and the peer's window takes it, else resends the highest
 * outstanding chunk.  Its SACK lets RACK see a lost tail.  One probe per
 * episode; then T3, restarted when the probe goes out.
 *
 * Undo: SCTP's SACK reports duplicate TSNs (like TCP's D-SACK, RFC 3708).
 * A duplicate report of a TSN we retransmitted means the original had
 * arrived: that retransmission was needless.  When every retransmission
 * of a loss episode is so proven, the episode's cwnd/ssthresh reduction
 * is undone.  A T3 whose first resent chunk is acked sooner than min_rtt
 * after the resend was spurious (the original was acked, RFC 4015's idea
 * with a timing test instead of timestamps): its reduction is undone and
 * the chunks it marked but has not resent yet go back in flight.
 */
#include "sctp/assoc_data_internal.h"

#define SCTP_TLP_MIN_MS 10
#define RACK_REO_MULT_MAX 16
#define RACK_REO_PERSIST 16
/* min_rtt is the minimum over this long: a path that got longer (the
 * wire layer moved to another carrier) is learnt within it. */
#define RACK_MIN_RTT_WIN_MS 10000

static uint64_t min64(uint64_t x, uint64_t y)
{
	return x < y ? x : y;
}

static int may_send_data(const struct sctp_core *a)
{
	return a->state == SCTP_S_ESTABLISHED ||
	       a->state == SCTP_S_SHUTDOWN_PENDING ||
	       a->state == SCTP_S_SHUTDOWN_RECEIVED;
}

uint32_t core_rack_reo_wnd(const struct sctp_core *a)
{
	const struct core_data *d = a->d;
	uint64_t w;

	if (d->rack.min_rtt == UINT32_MAX)
		return 0;
	w = (uint64_t)(d->rack.reo_mult ? d->rack.reo_mult : 1) *
	    d->rack.min_rtt / 4;
	if (a->have_rtt && w > a->srtt)
		w = a->srtt;
	/* The clock has 1 ms steps: a window of 0 would call every chunk
	 * sent in the same ms as the latest one delivered lost. */
	return w < 1 ? 1 : (uint32_t)w;
}

/* Reordering was seen (or a retransmission proved needless): widen. */
static void reo_widen(struct sctp_core *a)
{
	struct core_data *d = a->d;

	d->rack.reordering_seen = 1;
	d->rack.reo_persist = RACK_REO_PERSIST;
	if (d->rack.reo_mult == 0)
		d->rack.reo_mult = 1;
	if (d->rack.reo_incr_at != 0 && a->have_rtt &&
	    a->now < d->rack.reo_incr_at + a->srtt)
		return;                 /* once a round trip */
	if (d->rack.reo_mult < RACK_REO_MULT_MAX)
		d->rack.reo_mult++;
	d->rack.reo_incr_at = a->now ? a->now : 1;
}

/*
 * A chunk sent once: its send.  Resent and acked sooner than min_rtt
 * after the last copy left: not that copy's ack (RFC 8985 §6.2 step 2);
 * if there were only two copies it is the first's, and its send time
 * gives a true sample.  Without that, a probe or a T3 that fires before
 * a path that got longer answers would take away every sample and keep
 * SRTT stale forever (Karn).  Otherwise ambiguous: 0.
 */
uint64_t core_rack_acked_send(const struct sctp_core *a,
                              const struct core_chunk *ck)
{
	const struct core_data *d = a->d;

	if (ck->tx <= 1)
		return ck->sent_at;
	if (ck->tx == 2 && a->now - ck->sent_at < d->rack.min_rtt &&
	    d->rack.min_rtt != UINT32_MAX)
		return ck->first_sent_at;
	return UINT64_MAX;
}

void core_rack_on_ack(struct sctp_core *a, struct core_chunk *ck)
{
	struct core_data *d = a->d;
	uint64_t sent = core_rack_acked_send(a, ck);

	/* The original was acked, not the copy T3 sent: it fired for
	 * nothing. */
	if (ck->tx > 1 && a->now - ck->sent_at < d->rack.min_rtt &&
	    (ck->state & CORE_CK_T3))
		d->spurious_rto = 1;
	if (sent != UINT64_MAX) {
		uint64_t age = a->now >= sent ? a->now - sent : 0;
		uint32_t rtt = age > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)age;

		if (rtt <= d->rack.min_rtt || d->rack.min_rtt_stale ||
		    a->now - d->rack.min_rtt_at > RACK_MIN_RTT_WIN_MS) {
			d->rack.min_rtt = rtt;
			d->rack.min_rtt_at = a->now;
			d->rack.min_rtt_stale = 0;
		}
		if (!d->rack.have || sent > d->rack.xmit_ts ||
		    (sent == d->rack.xmit_ts &&
		     tsn_lt(d->rack.end_tsn, ck->tsn))) {
			d->rack.xmit_ts = sent;
			d->rack.end_tsn = ck->tsn;
			d->rack.rtt = rtt;
			d->rack.have = 1;
		}
	}
	/* Sent once and delivered below a higher TSN already delivered, or
	 * declared lost and then acked before the resend: reordering. */
	if ((ck->tx == 1 && d->rack.have_fack && tsn_lt(ck->tsn, d->rack.fack)) ||
	    (ck->state & (CORE_CK_RTX | CORE_CK_LOST)) ==
	    (CORE_CK_RTX | CORE_CK_LOST))
		reo_widen(a);
	if (!d->rack.have_fack || tsn_lt(d->rack.fack, ck->tsn)) {
		d->rack.fack = ck->tsn;
		d->rack.have_fack = 1;
	}
}

static void undo(struct sctp_core *a)
{
	struct core_data *d = a->d;

	if (a->cc_ops->undo != NULL)
		a->cc_ops->undo(&a->cc, d->undo.cwnd, d->undo.ssthresh);
	d->in_recovery = 0;
	d->undo.active = 0;
	d->undos++;
}

static int undo_remove(struct core_data *d, uint32_t tsn)
{
	for (unsigned i = 0; i < d->undo.n; i++)
		if (d->undo.tsn[i] == tsn) {
			d->undo.tsn[i] = d->undo.tsn[--d->undo.n];
			return 1;
		}
	return 0;
}

void core_rack_dups(struct sctp_core *a, const struct sctp_sack *s)
{
	struct core_data *d = a->d;

	for (unsigned i = 0; i < s->ndups; i++) {
		uint32_t tsn = sctp_sack_dup(s, i);

		if (d->undo.active && undo_remove(d, tsn)) {
			d->spurious_rtx++;
			reo_widen(a);
			if (d->undo.n == 0 && !d->undo.broken &&
			    d->undo.sent > 0)
				undo(a);
		} else if (d->tlp.is_rtx && d->tlp.tsn == tsn &&
		           d->tlp.out) {
			d->spurious_rtx++;      /* the probe resent a delivered chunk */
			d->tlp.is_rtx = 0;
		}
	}
}

void core_loss_episode(struct sctp_core *a, int rto)
{
	struct core_data *d = a->d;

	if (d->undo.active && tsn_le(d->una, d->undo.recover)) {
		d->undo.recover = a->next_tsn - 1;      /* the same episode */
		return;
	}
	d->undo.active = 1;
	d->undo.broken = 0;
	d->undo.cwnd = a->cc.cwnd;
	d->undo.ssthresh = a->cc.ssthresh;
	d->undo.recover = a->next_tsn - 1;
	d->undo.n = 0;
	d->undo.sent = 0;
	d->undo.from_rto = rto;
	if (d->rack.reo_persist > 0 && --d->rack.reo_persist == 0)
		d->rack.reo_mult = 1;
}

static void undo_add(struct core_data *d, uint32_t tsn)
{
	d->undo.sent++;
	for (unsigned i = 0; i < d->undo.n; i++)
		if (d->undo.tsn[i] == tsn)
			return;
	if (d->undo.n == sizeof(d->undo.tsn) / sizeof(d->undo.tsn[0]))
		d->undo.broken = 1;     /* too many to prove: keep the cut */
	else
		d->undo.tsn[d->undo.n++] = tsn;
}

void core_loss_note_rtx(struct sctp_core *a, const struct core_chunk *ck)
{
	struct core_data *d = a->d;

	/* Only while the episode lasts: an ended one still takes proofs
	 * (duplicate reports come an RTT late) but no new resends. */
	if (!d->undo.active || tsn_lt(d->undo.recover, d->una))
		return;
	undo_add(d, ck->tsn);
}

static void enter_recovery(struct sctp_core *a)
{
	struct core_data *d = a->d;

	if (d->in_recovery)
		return;
	core_loss_episode(a, 0);
	d->in_recovery = 1;
	d->recover = a->next_tsn - 1;
	a->cc_ops->on_fast_retransmit(&a->cc, d->flight);
}

void core_loss_mark(struct sctp_core *a, struct core_chunk *ck,
                    enum core_loss_by by)
{
	struct core_data *d = a->d;

	core_rtx_mark(a, ck);
	a->cc.lost_bytes += ck->len;    /* the controllers' loss rate */
	ck->state |= CORE_CK_LOST;
	ck->state &= (uint8_t)~CORE_CK_T3;
	if (by == CORE_LOSS_RACK) {
		d->lost_rack++;
	} else {
		ck->state |= CORE_CK_FAST;
		d->fast_retransmits++;
	}
	if (ck->tsn == d->una)
		d->rtx_first = 1;
	/* One packet now whatever cwnd says (§7.2.4 3). */
	d->t3_fired = 1;
	enter_recovery(a);
}

/* Sent before the latest delivered chunk (ties by TSN in the ms clock). */
static int sent_before_rack(const struct core_data *d,
                            const struct core_chunk *ck)
{
	return ck->sent_at < d->rack.xmit_ts ||
	       (ck->sent_at == d->rack.xmit_ts &&
	        tsn_lt(ck->tsn, d->rack.end_tsn));
}

void core_rack_detect(struct sctp_core *a)
{
	struct core_data *d = a->d;
	uint64_t next = SCTP_CORE_NO_DEADLINE;
	uint32_t reo;

	/* Over a reliable carrier nothing is reordered or late, only
	 * dropped at the carrier's cap, which the SACK's gaps show
	 * (assoc_sack.c); a clock would fire on TCP's queueing alone. */
	if (!d->rack.have || d->una == a->next_tsn || !may_send_data(a) ||
	    a->reliable) {
		core_timer_stop(a, SCTP_T_RACK);
		return;
	}
	reo = core_rack_reo_wnd(a);
	for (uint32_t t = d->una; t != a->next_tsn; t++) {
		struct core_chunk *ck = core_ring_at(d, t);
		uint64_t due;

		/* New chunks go out in TSN order: from the first one sent
		 * once and not before the latest delivered, nothing further
		 * was (a resent chunk went out after its first send). */
		if (ck->tx == 1 && !sent_before_rack(d, ck))
			break;
		if ((ck->state & (CORE_CK_GAP | CORE_CK_RTX)) ||
		    !(ck->state & CORE_CK_INFLIGHT) || !sent_before_rack(d, ck))
			continue;
		due = ck->sent_at + d->rack.rtt + reo;
		if (due <= a->now)
			core_loss_mark(a, ck, CORE_LOSS_RACK);
		else
			next = min64(next, due);
	}
	if (next == SCTP_CORE_NO_DEADLINE)
		core_timer_stop(a, SCTP_T_RACK);
	else
		core_timer_start(a, SCTP_T_RACK, (uint32_t)(next - a->now));
}

void core_rack_timer(struct sctp_core *a)
{
	struct core_data *d = a->d;

	core_rack_detect(a);
	if (d->rtx_first) {
		d->rtx_first = 0;
		core_rtx_t3_update(a, 1);   /* §7.2.4 4 */
	}
	if (d->n_rtx > 0)
		core_send_flush(a);
}

static int dup_reported(const struct sctp_sack *s, uint32_t tsn)
{
	for (unsigned i = 0; i < s->ndups; i++)
		if (sctp_sack_dup(s, i) == tsn)
			return 1;
	return 0;
}

/* A spurious T3: undo, and what it marked but has not resent goes back
 * in flight (RACK still watches it, by its original send time). */
static void spurious_rto(struct sctp_core *a)
{
	struct core_data *d = a->d;

	d->spurious_rto = 0;
	d->spurious_rtos++;
	d->spurious_rtx++;
	if (d->undo.active && d->undo.from_rto)
		undo(a);
	for (uint32_t t = d->una; t != a->next_tsn; t++) {
		struct core_chunk *ck = core_ring_at(d, t);

		if (!(ck->state & CORE_CK_T3))
			continue;
		ck->state &= (uint8_t)~CORE_CK_T3;
		if ((ck->state & CORE_CK_RTX) && !(ck->state & CORE_CK_LOST)) {
			ck->state &= (uint8_t)~CORE_CK_RTX;
			d->n_rtx--;
			ck->state |= CORE_CK_INFLIGHT;
			d->flight += (uint32_t)ck->len;
		}
	}
}

void core_rack_after_sack(struct sctp_core *a, const struct sctp_sack *s)
{
	struct core_data *d = a->d;

	if (d->spurious_rto)
		spurious_rto(a);
	if (!d->tlp.out)
		return;
	if (tsn_le(d->una, d->tlp.tsn) && tsn_lt(d->tlp.tsn, a->next_tsn) &&
	    !(core_ring_at(d, d->tlp.tsn)->state & CORE_CK_GAP))
		return;                 /* the probe is not acked yet */
	d->tlp.out = 0;
	/* Acked sooner than min_rtt after the probe: the original's ack,
	 * the probe was needless (its duplicate report comes later). */
	if (d->tlp.is_rtx && a->now - d->tlp.sent_at < d->rack.min_rtt) {
		d->spurious_rtx++;
		d->tlp.is_rtx = 0;
		return;
	}
	/* A resent chunk acked, and no duplicate report: the probe repaired
	 * a real loss, and congestion control must hear of it (§7.4.2). */
	if (d->tlp.is_rtx && !dup_reported(s, d->tlp.tsn)) {
		d->tlp_losses++;
		enter_recovery(a);
		if (d->undo.active)
			undo_add(d, d->tlp.tsn);
	}
	d->tlp.is_rtx = 0;
}

void core_tlp_update(struct sctp_core *a, int restart)
{
	struct core_data *d = a->d;
	uint64_t pto;

	if (!may_send_data(a) || d->una == a->next_tsn || d->flight == 0 ||
	    !a->have_rtt || d->tlp.out || d->in_recovery || d->n_rtx > 0 ||
	    a->reliable) {
		core_timer_stop(a, SCTP_T_TLP);
		return;
	}
	if (!restart && core_timer_running(a, SCTP_T_TLP))
		return;
	pto = 2 * (uint64_t)a->srtt;
	if (d->flight <= a->cfg.mtu)
		pto += a->cfg.peer_sack_delay_ms;       /* a lone packet waits */
	if (pto < SCTP_TLP_MIN_MS)
		pto = SCTP_TLP_MIN_MS;
	/* Not after the RTO: T3 would resend anyway. */
	if (core_timer_running(a, SCTP_T3_RTX) &&
	    a->now + pto >= a->deadline[SCTP_T3_RTX]) {
		core_timer_stop(a, SCTP_T_TLP);
		return;
	}
	core_timer_start(a, SCTP_T_TLP, (uint32_t)pto);
}

/* The highest outstanding chunk not gap-acked, or NULL. */
static struct core_chunk *highest_outstanding(struct sctp_core *a)
{
	struct core_data *d = a->d;

	for (uint32_t t = a->next_tsn - 1; tsn_le(d->una, t); t--) {
		struct core_chunk *ck = core_ring_at(d, t);

		if (!(ck->state & CORE_CK_GAP) && (ck->state & CORE_CK_INFLIGHT))
			return ck;
	}
	return NULL;
}

void core_tlp_timer(struct sctp_core *a)
{
	struct core_data *d = a->d;
	uint32_t before = a->next_tsn;
	struct core_chunk *ck;

	if (!may_send_data(a) || d->una == a->next_tsn || d->tlp.out ||
	    d->in_recovery || d->n_rtx > 0 || a->reliable)
		return;
	/* New data first: it probes and makes progress at once. */
	d->tlp.want_new = 1;
	core_send_flush(a);
	d->tlp.want_new = 0;
	if (a->next_tsn != before) {
		d->tlp.is_rtx = 0;
		d->tlp.tsn = a->next_tsn - 1;
	} else if ((ck = highest_outstanding(a)) != NULL) {
		core_rtx_mark(a, ck);
		d->t3_fired = 1;        /* one packet whatever cwnd says */
		d->tlp.is_rtx = 1;
		d->tlp.tsn = ck->tsn;
		core_send_flush(a);
	} else {
		return;
	}
	d->tlp.out = 1;
	d->tlp.sent_at = a->now;
	d->tlp_probes++;
	core_timer_stop(a, SCTP_T_TLP);
	/* RFC 8985 §7.3: the RTO counts from the probe. */
	core_timer_start(a, SCTP_T3_RTX, a->rto);
}
