/*
 * SACK in both directions (RFC 9260 §3.3.4, §6.2, §6.2.1, §7.2.4).
 *
 * Ours: the cumulative TSN, gap blocks read off the TSN map (at most
 * CORE_SACK_GAPS), the duplicates seen since the last SACK (at most
 * CORE_SACK_DUPS) and the window left.
 *
 * The peer's: checked before anything is freed.  A cumulative ack or a
 * gap block above the highest TSN we sent is a protocol violation and
 * costs the association (ABORT): acknowledging what was never sent is
 * either a broken or a lying peer, and believing it would free data the
 * peer never got.  Gap blocks must come in order and disjoint, so a SACK
 * costs at most one pass over the outstanding ring.  Then: free what the
 * cumulative ack covers (an RTT sample from a chunk sent once, Karn, or
 * sent twice and acked too soon for the second copy: the first's),
 * mark gap-acked chunks (each newly acked chunk feeds RACK,
 * assoc_rack.c), read the duplicate reports (needless retransmissions),
 * declare losses (RACK, then the 3-miss fallback), drive congestion
 * control, restart T3 when the earliest outstanding TSN was acked.
 */
#include "sctp/assoc_data_internal.h"

#include <string.h>

#include <stdlib.h>

int core_sack_build(struct sctp_core *a, struct sctp_builder *b)
{
	struct core_data *d = a->d;
	uint16_t gaps[CORE_SACK_GAPS][2];
	unsigned ngaps = 0;
	uint32_t rwnd = core_recv_rwnd(a);
	int rc;

	for (uint32_t t = d->cum + 1; tsn_le(t, d->highest) &&
	     ngaps < CORE_SACK_GAPS; t++) {
		if (!core_recv_map_has(d, t))
			continue;
		gaps[ngaps][0] = (uint16_t)(t - d->cum);
		while (tsn_lt(t, d->highest) && core_recv_map_has(d, t + 1))
			t++;
		gaps[ngaps][1] = (uint16_t)(t - d->cum);
		ngaps++;
	}
	rc = sctp_build_sack(b, d->cum, rwnd, (const uint16_t (*)[2])gaps,
	                     ngaps, d->dups, d->ndups);
	if (rc != 0)
		return rc;
	d->sack_needed = 0;
	d->sack_now = 0;
	d->pkts_unacked = 0;
	d->ndups = 0;
	d->rwnd_advertised = rwnd;
	d->sacks_sent++;
	core_timer_stop(a, SCTP_T_SACK);
	return 0;
}

/* 0 if the SACK acknowledges only TSNs we sent, in a shape we walk. */
static int sack_check(struct sctp_core *a, const struct sctp_sack *s,
                      unsigned *usable)
{
	uint32_t last = a->next_tsn - 1;
	uint32_t prev_end = 0;

	if (tsn_lt(last, s->cum_tsn))
		return -1;
	*usable = 0;
	for (unsigned i = 0; i < s->ngaps; i++) {
		uint16_t st, en;

		sctp_sack_gap(s, i, &st, &en);
		if (tsn_lt(last, s->cum_tsn + en))
			return -1;
		/* Out of order or overlapping: use the blocks before it. */
		if (i > 0 && st <= prev_end)
			break;
		prev_end = en;
		(*usable)++;
	}
	return 0;
}

struct sack_walk {
	uint32_t newly_cum;        /* bytes freed by the cumulative ack */
	uint32_t newly;            /* bytes newly acked, cum or gap */
	size_t released;
	uint32_t htna;             /* highest TSN newly acked */
	int have_htna;
	uint64_t rtt_sent_at;
	int rtt_ok;
};

/*
 * Delivery rate, per chunk (after draft-cheng-iccrg-delivery-rate-
 * estimation): each chunk remembers, when sent, how much had been
 * delivered by then and when.  Its ack yields bytes delivered since over
 * the longer of the send and the ack intervals; a SACK's sample comes
 * from its most recently sent chunk.
 */
static void rs_on_ack(struct sctp_core *a, const struct core_chunk *ck)
{
	struct core_data *d = a->d;

	d->rs.delivered += ck->len;
	d->rs.delivered_at = a->now;
	if (d->rs.have && ck->rs_delivered < d->rs.prior_delivered)
		return;
	d->rs.have = 1;
	d->rs.prior_delivered = ck->rs_delivered;
	d->rs.prior_at = ck->rs_delivered_at;
	d->rs.send_elapsed = ck->sent_at - ck->rs_first_sent;
	d->rs.sample_app_limited = ck->rs_app_limited;
	d->rs.first_sent = ck->sent_at;
}

static void rs_sample(struct sctp_core *a, struct sctp_cc_ack *k)
{
	struct core_data *d = a->d;
	uint64_t ack_elapsed, iv;

	k->delivered = d->rs.delivered;
	if (d->rs.app_limited && d->rs.delivered > d->rs.app_limited)
		d->rs.app_limited = 0;
	if (!d->rs.have)
		return;
	/* An interval that began on the path before a switch (a reliable
	 * carrier and back) measures neither path. */
	if (d->rs.prior_at < d->rs.epoch ||
	    d->rs.first_sent - d->rs.send_elapsed < d->rs.epoch)
		return;
	k->prior_delivered = d->rs.prior_delivered;
	k->app_limited = d->rs.sample_app_limited;
	ack_elapsed = a->now - d->rs.prior_at;
	iv = d->rs.send_elapsed > ack_elapsed ? d->rs.send_elapsed : ack_elapsed;
	/* The clock counts ms: an interval under one is one. */
	if (iv < 1)
		iv = 1;
	/* Shorter than the path's RTT: acks compressed, not a rate. */
	if (d->rack.min_rtt != UINT32_MAX && iv < d->rack.min_rtt)
		return;
	k->rate = (d->rs.delivered - d->rs.prior_delivered) * 1000 / iv;
}

static void ack_cum(struct sctp_core *a, uint32_t cum, struct sack_walk *w)
{
	struct core_data *d = a->d;

	for (; tsn_le(d->una, cum); d->una++) {
		uint32_t slot = d->una & (CORE_OUT_RING - 1);
		struct core_chunk *ck = d->ring[slot];

		if (!(ck->state & CORE_CK_GAP)) {
			uint64_t sent = core_rack_acked_send(a, ck);

			core_rack_on_ack(a, ck);
			rs_on_ack(a, ck);
			w->newly += (uint32_t)ck->len;
			w->newly_cum += (uint32_t)ck->len;
			w->htna = ck->tsn;
			w->have_htna = 1;
			/* Karn, except where timing tells the copies apart. */
			if (sent != UINT64_MAX) {
				w->rtt_sent_at = sent;
				w->rtt_ok = 1;
			}
		}
		if (ck->state & CORE_CK_INFLIGHT)
			d->flight -= (uint32_t)ck->len;
		if (ck->state & CORE_CK_RTX)
			d->n_rtx--;
		w->released += ck->len;
		free(ck);
		d->ring[slot] = NULL;
	}
}

static void ack_gaps(struct sctp_core *a, const struct sctp_sack *s,
                     unsigned ngaps, struct sack_walk *w)
{
	struct core_data *d = a->d;

	for (unsigned i = 0; i < ngaps; i++) {
		uint16_t st, en;

		sctp_sack_gap(s, i, &st, &en);
		for (uint32_t off = st; off <= en; off++) {
			uint32_t t = s->cum_tsn + off;
			struct core_chunk *ck;

			if (tsn_lt(t, d->una))
				continue;       /* an old SACK's cum was behind */
			ck = core_ring_at(d, t);
			ck->sack_seq = d->sack_seq;
			if (ck->state & CORE_CK_GAP)
				continue;
			core_rack_on_ack(a, ck);
			rs_on_ack(a, ck);
			ck->state |= CORE_CK_GAP;
			w->newly += (uint32_t)ck->len;
			if (!w->have_htna || tsn_lt(w->htna, t)) {
				w->htna = t;
				w->have_htna = 1;
			}
			if (ck->state & CORE_CK_INFLIGHT) {
				d->flight -= (uint32_t)ck->len;
				ck->state &= (uint8_t)~CORE_CK_INFLIGHT;
			}
			if (ck->state & CORE_CK_RTX) {
				ck->state &= (uint8_t)~CORE_CK_RTX;
				d->n_rtx--;
			}
		}
	}
}

/*
 * Below the highest TSN newly acked, every chunk still missing gets a
 * miss indication; the third one declares it lost (§7.2.4), unless
 * reordering has been seen on this association: then RACK's clock alone
 * decides (assoc_rack.c) -- except over a reliable carrier, where RACK's
 * clock is off and a gap can only be a frame the carrier dropped.  A
 * chunk is lost this way at most once.  A gap-acked chunk this SACK no
 * longer covers was reneged: it waits for T3 like any unacked chunk.
 */
static void misses(struct sctp_core *a, const struct sack_walk *w)
{
	struct core_data *d = a->d;

	if (!w->have_htna)
		return;
	for (uint32_t t = d->una; tsn_lt(t, w->htna); t++) {
		struct core_chunk *ck = core_ring_at(d, t);

		if (ck->state & CORE_CK_GAP) {
			if (ck->sack_seq != d->sack_seq)
				ck->state &= (uint8_t)~CORE_CK_GAP;
			continue;
		}
		/* Reordering seen on an earlier path does not matter
		 * over a reliable carrier: a gap there is a drop. */
		if ((d->rack.reordering_seen && !a->reliable) ||
		    ck->state & (CORE_CK_RTX | CORE_CK_FAST) ||
		    !(ck->state & CORE_CK_INFLIGHT))
			continue;
		if (++ck->misses >= 3)
			core_loss_mark(a, ck, CORE_LOSS_DUPTHRESH);
	}
}

static void cc_ack(struct sctp_core *a, const struct sack_walk *w,
                   uint32_t flight_before, int advanced)
{
	struct sctp_cc_ack k;

	memset(&k, 0, sizeof(k));
	k.acked = w->newly_cum;
	k.newly = w->newly;
	k.flight_before = flight_before;
	k.flight = a->d->flight;
	k.advanced = advanced;
	k.in_recovery = a->d->in_recovery;
	k.now = a->now;
	k.srtt = a->have_rtt ? a->srtt : 0;
	k.rtt = UINT32_MAX;
	if (w->rtt_ok && a->now >= w->rtt_sent_at &&
	    a->now - w->rtt_sent_at < UINT32_MAX / 2)
		k.rtt = (uint32_t)(a->now - w->rtt_sent_at);
	rs_sample(a, &k);
	a->cc_ops->on_ack(&a->cc, &k);
}

static void sack_apply(struct sctp_core *a, const struct sctp_sack *s,
                       unsigned ngaps, uint32_t a_rwnd)
{
	struct core_data *d = a->d;
	struct sack_walk w = { 0 };
	uint32_t flight_before = d->flight;
	int advanced, first;

	/* §6.2.1 D i: an older cumulative ack is out of date. */
	if (tsn_lt(s->cum_tsn, d->una - 1))
		return;
	d->sack_seq++;
	d->rs.have = 0;
	advanced = tsn_le(d->una, s->cum_tsn);
	ack_cum(a, s->cum_tsn, &w);
	ack_gaps(a, s, ngaps, &w);
	core_rack_dups(a, s);
	core_rack_after_sack(a, s);
	core_rack_detect(a);
	misses(a, &w);
	first = d->rtx_first;
	d->rtx_first = 0;
	if (w.newly > 0)
		d->tlp.restart = 1;
	d->peer_rwnd_raw = a_rwnd;
	/*
	 * §8.3: the error counter restarts "each time a DATA chunk sent to
	 * that peer endpoint is acknowledged" -- gap-acked ones included.
	 * Counting only cum advances let a chunk lost again and again (its
	 * T3 firing at an RTO that new RTT samples keep small) end a path
	 * that was plainly delivering, in under 2 s after a NAT rebinding.
	 */
	if (advanced || w.newly > 0)
		a->error_count = 0;
	if (advanced) {
		if (w.rtt_ok && a->now >= w.rtt_sent_at)
			core_rto_sample(a, (uint32_t)(a->now - w.rtt_sent_at));
		if (d->in_recovery && tsn_le(d->recover, s->cum_tsn))
			d->in_recovery = 0;
	}
	if (advanced || w.newly > 0)
		cc_ack(a, &w, flight_before, advanced);
	/* A peer that answers with a closed window is alive, not lost:
	 * zero-window probes do not count toward Max.Retrans. */
	if (a_rwnd == 0)
		a->error_count = 0;
	/* §7.2.4 4: T3 restarts when the earliest outstanding TSN was acked
	 * or is being retransmitted now. */
	core_rtx_t3_update(a, advanced || first);
	if (w.released > 0)
		core_send_released(a, w.released);
	if ((a->state == SCTP_S_SHUTDOWN_PENDING ||
	     a->state == SCTP_S_SHUTDOWN_RECEIVED) &&
	    !core_data_outstanding(a))
		core_shutdown_progress(a);
}

void core_sack_process(struct sctp_core *a, const struct sctp_sack *s)
{
	unsigned usable;

	if (sack_check(a, s, &usable) != 0) {
		core_abort_violation(a, SCTP_C_PROTOCOL_VIOLATION,
		                     "SACK for TSN never sent");
		return;
	}
	/* Counted before sack_apply: an out-of-date SACK (reordered by the
	 * path) still arrived, and the lab compares this with the peer's
	 * sacks_sent to see SACK loss and reordering. */
	a->d->sacks_received++;
	sack_apply(a, s, usable, s->a_rwnd);
}

void core_sack_cum_only(struct sctp_core *a, uint32_t cum)
{
	struct sctp_sack s = { .cum_tsn = cum };

	if (tsn_lt(a->next_tsn - 1, cum))
		return;             /* a SHUTDOWN cannot abort us for this */
	sack_apply(a, &s, 0, a->d->peer_rwnd_raw);
}
