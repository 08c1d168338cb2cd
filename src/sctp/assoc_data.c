/*
 * Data transfer in the association core: the lifecycle of the data state,
 * the hooks the rest of the core calls (assoc_internal.h), and the API
 * (sctp_core_send, sctp_core_consume).  The work is in the role files:
 * assoc_send.c (queues, scheduler, fragmentation, bundling),
 * assoc_rtx.c (outstanding TSNs, T3-rtx), assoc_recv.c (TSN map,
 * reassembly, delivery), assoc_sack.c (SACK both ways), assoc_cc.c.
 */
#include "sctp/assoc_data_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"

int core_data_new(struct sctp_core *a)
{
	a->d = calloc(1, sizeof(*a->d));
	if (a->d == NULL)
		return -1;
	a->d->rack.min_rtt = UINT32_MAX;
	return 0;
}

void core_data_clear(struct sctp_core *a)
{
	struct core_data *d = a->d;
	struct core_data keep;

	if (d == NULL)
		return;
	core_rtx_free_ring(a);
	core_send_free_streams(d);
	core_recv_free_streams(d);
	/* The counters outlive an association, for the caller's stats. */
	keep = *d;
	memset(d, 0, sizeof(*d));
	d->retransmits = keep.retransmits;
	d->fast_retransmits = keep.fast_retransmits;
	d->t3_expiries = keep.t3_expiries;
	d->dup_tsns = keep.dup_tsns;
	d->rcv_dropped = keep.rcv_dropped;
	d->sacks_sent = keep.sacks_sent;
	d->sacks_received = keep.sacks_received;
	d->packets_sent = keep.packets_sent;
	d->lost_rack = keep.lost_rack;
	d->tlp_probes = keep.tlp_probes;
	d->tlp_losses = keep.tlp_losses;
	d->spurious_rtx = keep.spurious_rtx;
	d->spurious_rtos = keep.spurious_rtos;
	d->undos = keep.undos;
	d->pace_waits = keep.pace_waits;
	d->rack.min_rtt = UINT32_MAX;
}

void core_data_free(struct sctp_core *a)
{
	if (a->d == NULL)
		return;
	core_data_clear(a);
	free(a->d);
	a->d = NULL;
}

void core_data_reset(struct sctp_core *a)
{
	struct core_data *d = a->d;

	core_data_clear(a);
	d->una = a->next_tsn;
	d->highest_sent = a->next_tsn - 1;
	d->cum = a->cum_tsn_rcvd;
	d->highest = d->cum;
	d->peer_rwnd_raw = a->p.peer_rwnd;
	d->rwnd_advertised = a->cfg.a_rwnd;
	core_timer_stop(a, SCTP_T3_RTX);
	core_timer_stop(a, SCTP_T_SACK);
	core_timer_stop(a, SCTP_T_RACK);
	core_timer_stop(a, SCTP_T_TLP);
	core_timer_stop(a, SCTP_T_PACE);
}

int core_data_input(struct sctp_core *a, const struct sctp_chunk *c)
{
	struct sctp_data dc;
	uint8_t tsn[4];
	int rc;

	/* RFC 8260 §2.1: once I-DATA is agreed, DATA is a violation, and
	 * I-DATA without agreement too. */
	if ((c->type == SCTP_CT_I_DATA) != (a->p.idata != 0)) {
		core_abort_violation(a, SCTP_C_PROTOCOL_VIOLATION,
		                     "DATA kind not negotiated");
		return -1;
	}
	rc = c->type == SCTP_CT_I_DATA ? sctp_idata_parse(c, &dc) :
	                                 sctp_data_parse(c, &dc);
	if (rc == SCTP_PERR_NO_USER_DATA) {
		put_u32be(tsn, dc.tsn);
		if (a->p.peer_vtag != 0)
			core_send_cause(a, a->p.peer_vtag, SCTP_CT_ABORT, 0,
			                SCTP_C_NO_USER_DATA, tsn, sizeof(tsn));
		core_down(a, SCTP_DOWN_PROTOCOL, SCTP_C_NO_USER_DATA);
		return -1;
	}
	if (rc != 0) {
		core_abort_violation(a, SCTP_C_PROTOCOL_VIOLATION, "short DATA");
		return -1;
	}
	a->data_chunks++;
	return core_recv_chunk(a, &dc, a->p.idata);
}

void core_sack_input(struct sctp_core *a, const struct sctp_chunk *c)
{
	struct sctp_sack s;

	if (sctp_sack_parse(c, &s) != 0) {
		core_abort_violation(a, SCTP_C_PROTOCOL_VIOLATION, "bad SACK");
		return;
	}
	core_sack_process(a, &s);
}

void core_data_shutdown_ack_point(struct sctp_core *a, uint32_t cum_tsn)
{
	core_sack_cum_only(a, cum_tsn);
}

int core_data_outstanding(const struct sctp_core *a)
{
	const struct core_data *d = a->d;

	return d->sndbuf_used != 0 || d->una != a->next_tsn;
}

uint32_t core_data_cum_tsn(const struct sctp_core *a)
{
	return a->d->cum;
}

static void after_packet_flush(struct sctp_core *a);

/*
 * After each packet: a SACK now if something calls for it (a gap, a
 * duplicate, every sack_freq-th packet, a closing peer), else the delayed
 * SACK timer; then whatever the windows allow goes out.
 */
void core_data_after_packet(struct sctp_core *a)
{
	struct core_data *d = a->d;

	if (a->state < SCTP_S_ESTABLISHED)
		return;
	if (d->pkt_data) {
		d->pkt_data = 0;
		d->pkts_unacked++;
	}
	/*
	 * Inside a receive batch only what cannot wait goes now (a gap, a
	 * duplicate, a closing peer, CORE_BATCH_SACK_MAX packets unacked);
	 * the rest is decided once, at the batch end: one SACK and one flush
	 * per batch instead of one SACK per sack_freq packets.
	 */
	if (d->in_batch && !d->sack_now && a->state != SCTP_S_SHUTDOWN_SENT &&
	    d->pkts_unacked < (a->reliable ? SCTP_RELIABLE_SACK_FREQ
	                                   : CORE_BATCH_SACK_MAX)) {
		d->batch_dirty = 1;
		return;
	}
	d->batch_dirty = 0;
	after_packet_flush(a);
}

static void after_packet_flush(struct sctp_core *a)
{
	struct core_data *d = a->d;

	if (d->sack_needed) {
		if (d->pkts_unacked >= (a->reliable ? SCTP_RELIABLE_SACK_FREQ
		                                    : a->cfg.sack_freq) ||
		    a->state == SCTP_S_SHUTDOWN_SENT)
			d->sack_now = 1;
		else if (!core_timer_running(a, SCTP_T_SACK))
			core_timer_start(a, SCTP_T_SACK, a->cfg.sack_delay_ms);
	}
	core_send_flush(a);
}

void core_data_batch_begin(struct sctp_core *a)
{
	a->d->in_batch = 1;
}

void core_data_batch_end(struct sctp_core *a)
{
	struct core_data *d = a->d;

	d->in_batch = 0;
	if (!d->batch_dirty)
		return;
	d->batch_dirty = 0;
	if (a->state >= SCTP_S_ESTABLISHED)
		after_packet_flush(a);
}

void core_sack_timer(struct sctp_core *a)
{
	if (a->state < SCTP_S_ESTABLISHED || !a->d->sack_needed)
		return;
	a->d->sack_now = 1;
	core_send_flush(a);
}

void core_data_info(const struct sctp_core *a, struct sctp_core_info *o)
{
	const struct core_data *d = a->d;

	o->cwnd = a->cc.cwnd;
	o->ssthresh = a->cc.ssthresh;
	o->flight = d->flight;
	o->outstanding_tsns = a->state >= SCTP_S_ESTABLISHED ?
	                      a->next_tsn - d->una : 0;
	o->next_tsn = a->next_tsn;
	if (a->state >= SCTP_S_ESTABLISHED)
		o->peer_rwnd = d->peer_rwnd_raw > d->flight ?
		               d->peer_rwnd_raw - d->flight : 0;
	o->t3_running = core_timer_running(a, SCTP_T3_RTX);
	o->sndbuf_used = d->sndbuf_used;
	o->rcv_buffered = d->rcv_queued + d->rcv_unconsumed;
	o->rcv_overhead = d->rcv_overhead;
	o->rwnd = a->state >= SCTP_S_ESTABLISHED ? core_recv_rwnd(a) : 0;
	o->retransmits = d->retransmits;
	o->fast_retransmits = d->fast_retransmits;
	o->t3_expiries = d->t3_expiries;
	o->dup_tsns = d->dup_tsns;
	o->rcv_dropped = d->rcv_dropped;
	o->sacks_sent = d->sacks_sent;
	o->sacks_received = d->sacks_received;
	o->packets_sent = d->packets_sent;
	o->srtt_ms = a->srtt;
	o->rttvar_ms = a->rttvar;
	o->min_rtt_ms = d->rack.min_rtt;
	o->reo_wnd_ms = core_rack_reo_wnd(a);
	o->cc_name = a->cc_ops->name;
	o->pacing_rate = a->cc.pacing_rate;
	o->btl_bw = a->cc.btl_bw;
	o->delivery_rate = a->cc.rate_sample;
	o->pace_waits = d->pace_waits;
	o->lost_rack = d->lost_rack;
	o->tlp_probes = d->tlp_probes;
	o->tlp_losses = d->tlp_losses;
	o->spurious_rtx = d->spurious_rtx;
	o->spurious_rto = d->spurious_rtos;
	o->undos = d->undos;
	o->reordering_seen = d->rack.reordering_seen;
	o->reliable = a->reliable;
}

/* ---- API ---- */

/*
 * The switch itself: the controller, and the loss state that belongs to
 * the old path.  An episode in progress ends (its cut, if any, is not
 * undone into the new path's window); the RACK and TLP timers re-arm
 * from the next SACK under the new rules, and T3 with the new floor.
 */
void sctp_core_set_reliable(struct sctp_core *a, int reliable, uint32_t wnd,
                            uint64_t now)
{
	struct core_data *d = a->d;

	reliable = reliable != 0;
	if (now > a->now)
		a->now = now;
	if (reliable == a->reliable && (!reliable || wnd == a->cc.carrier_wnd))
		return;
	if (reliable && !a->reliable)
		a->cc_base = a->cc_ops;
	a->reliable = reliable;
	a->cc.carrier_wnd = wnd;
	a->cc_ops = reliable ? &core_cc_carrier : a->cc_base;
	a->cc_ops->init(&a->cc, a->cfg.mtu, a->p.peer_rwnd);
	d->in_recovery = 0;
	d->undo.active = 0;
	/*
	 * min_rtt belongs to the old path.  Kept, it would misjudge the new
	 * one: a T3 resend acked sooner than a TCP path's queue-inflated
	 * min_rtt reads as "the original was acked" (a spurious RTO), puts
	 * chunks lost with the dead connection back in flight and leaves
	 * them to the next, backed-off T3.  1 ms until the next sample
	 * replaces it: nothing looks spurious meanwhile.
	 */
	if (d->rack.min_rtt != UINT32_MAX) {
		d->rack.min_rtt = 1;
		d->rack.min_rtt_stale = 1;
	}
	/* Likewise delivery-rate samples that span the switch: a chunk sent
	 * on the dead TCP connection and resent here would read as a rate
	 * of its bytes over seconds, and hold the new controller there. */
	d->rs.epoch = a->now;
	core_timer_stop(a, SCTP_T_TLP);
	core_timer_stop(a, SCTP_T_RACK);
	if (a->state < SCTP_S_ESTABLISHED)
		return;
	if (core_timer_running(a, SCTP_T3_RTX))
		core_timer_start(a, SCTP_T3_RTX, a->rto);
	core_send_flush(a);
}

int sctp_core_send(struct sctp_core *a, uint16_t sid, uint32_t ppid,
                   int unordered, const void *buf, size_t len, uint64_t now)
{
	int rc;

	if (now > a->now)
		a->now = now;
	if (a->state != SCTP_S_ESTABLISHED || sid >= a->p.out_streams ||
	    len == 0 || len > a->cfg.sndbuf || (buf == NULL))
		return -1;
	rc = core_send_queue(a, sid, ppid, unordered, buf, len);
	if (rc == 0)
		core_send_flush(a);
	return rc;
}

void sctp_core_consume(struct sctp_core *a, size_t n, uint64_t now)
{
	struct core_data *d = a->d;
	uint32_t before, after;

	if (now > a->now)
		a->now = now;
	if (n > d->rcv_unconsumed)
		n = d->rcv_unconsumed;
	if (n == 0 || a->state < SCTP_S_ESTABLISHED) {
		d->rcv_unconsumed -= n;
		return;
	}
	before = d->rwnd_advertised;
	d->rcv_unconsumed -= n;
	after = core_recv_rwnd(a);
	/* A window update when the window opened by an MTU from what the
	 * peer last heard (it may be probing a zero window), §6.2. */
	if (after > before && after - before >= a->cfg.mtu &&
	    before < a->cfg.a_rwnd / 2) {
		d->sack_now = 1;
		core_send_flush(a);
	}
}
