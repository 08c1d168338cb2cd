/*
 * Outstanding data and its timer.  Chunks we sent live in a ring indexed
 * by TSN from the lowest unacked one (d->una) to a->next_tsn - 1, so a
 * SACK finds any TSN in one step.  T3-rtx runs if and only if a TSN is
 * outstanding, and is restarted when the earliest outstanding TSN is
 * acknowledged (RFC 9260 §6.3.2 R2, R3), not on every SACK: a timer
 * re-armed on every SACK never fires on a lost tail, and one never
 * restarted fires under steady flow (usrsctp 0.9.5 misses R3 in its fast
 * path).
 */
#include "sctp/assoc_data_internal.h"

#include <stdlib.h>

void core_rtx_free_ring(struct sctp_core *a)
{
	struct core_data *d = a->d;

	if (d->ring == NULL)
		return;
	for (uint32_t i = 0; i < CORE_OUT_RING; i++)
		free(d->ring[i]);
	free(d->ring);
	d->ring = NULL;
}

void core_rtx_t3_update(struct sctp_core *a, int cum_advanced)
{
	struct core_data *d = a->d;

	if (d->una == a->next_tsn || a->state < SCTP_S_ESTABLISHED) {
		core_timer_stop(a, SCTP_T3_RTX);
		return;
	}
	if (cum_advanced || !core_timer_running(a, SCTP_T3_RTX))
		core_timer_start(a, SCTP_T3_RTX, a->rto);
}

/* Takes a chunk out of flight for retransmission. */
void core_rtx_mark(struct sctp_core *a, struct core_chunk *ck)
{
	struct core_data *d = a->d;

	if (ck->state & CORE_CK_RTX)
		return;
	if (ck->state & CORE_CK_INFLIGHT) {
		d->flight -= (uint32_t)ck->len;
		ck->state &= (uint8_t)~CORE_CK_INFLIGHT;
	}
	ck->state |= CORE_CK_RTX;
	d->n_rtx++;
}

/*
 * T3-rtx (§6.3.3): count an error toward Association.Max.Retrans, back
 * off the RTO, collapse the window, mark every chunk not gap-acked for
 * retransmission and send one packet of them.  If every outstanding chunk
 * was gap-acked the peer is sitting on them (or reneged): resend those.
 */
void core_t3_expired(struct sctp_core *a)
{
	struct core_data *d = a->d;
	unsigned marked = 0;

	if (a->state < SCTP_S_ESTABLISHED || d->una == a->next_tsn)
		return;
	d->t3_expiries++;
	if (core_error_count(a)) {
		core_send_cause(a, a->p.peer_vtag, SCTP_CT_ABORT, 0,
		                SCTP_C_USER_ABORT, NULL, 0);
		core_down(a, SCTP_DOWN_PEER_UNREACHABLE, 0);
		return;
	}
	a->rto = core_rto_backoff(a, a->rto);
	core_loss_episode(a, 1);
	a->cc_ops->on_rto(&a->cc, d->flight);
	d->in_recovery = 0;
	d->tlp.out = 0;
	core_timer_stop(a, SCTP_T_TLP);
	for (uint32_t t = d->una; t != a->next_tsn; t++) {
		struct core_chunk *ck = core_ring_at(d, t);

		if (!(ck->state & CORE_CK_GAP)) {
			/* Already-lost chunks keep CORE_CK_LOST: those do
			 * not come back if the RTO proves spurious. */
			if (!(ck->state & CORE_CK_RTX))
				ck->state |= CORE_CK_T3;
			core_rtx_mark(a, ck);
			marked++;
		}
	}
	if (marked == 0) {
		for (uint32_t t = d->una; t != a->next_tsn; t++) {
			struct core_chunk *ck = core_ring_at(d, t);

			ck->state &= (uint8_t)~CORE_CK_GAP;
			core_rtx_mark(a, ck);
		}
	}
	d->t3_fired = 1;
	core_timer_start(a, SCTP_T3_RTX, a->rto);
	core_send_flush(a);
}
