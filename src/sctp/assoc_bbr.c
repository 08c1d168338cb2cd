/*
 * The delivery-rate model: a simplified BBR (v1's state machine with
 * v2's loss guard).  Its estimate of the path is two numbers: the
 * bottleneck bandwidth (btl_bw, the largest delivery-rate sample of the
 * last CC_BW_ROUNDS round trips) and the round-trip propagation time
 * (min_rtt, the least RTT of the last 10 s).  It sends paced at
 * pacing_gain·btl_bw and keeps at most cwnd_gain·btl_bw·min_rtt in
 * flight.
 *
 *   STARTUP    gains 2.89 until btl_bw grows less than 25% in 3 rounds
 *   DRAIN      pacing 1/2.89 until the queue it built is gone
 *   PROBE_BW   pacing cycles 1.25, 0.75, 1 x6 (one phase per min_rtt),
 *              cwnd gain 2
 *   PROBE_RTT  every 10 s without a new min_rtt: half the BDP (at least
 *              4 MTU) for 200 ms; never while min_rtt is under the RTT
 *              floor the window is sized with
 *
 * min_rtt also expires early when the path's delay rose for good (a
 * route or NAT change, an emulator's new setting): every RTT sample of
 * a whole second (and of 8 min_rtt) over twice the minimum and 5 ms.
 * A window sized with the old, short delay measures only what it lets
 * through, and BBR would sit at 4 MTU per round trip until the 10 s
 * expiry (loss_bench at 50 ms right after 0 ms: 2,100 requests instead
 * of 9,000).
 *
 * Random loss does not lower the estimate: a lost chunk simply delivers
 * nothing.  A round that loses more than CC_BBR_LOSS_THRESH of what it
 * sent (judged over at least 20 packets) means a full queue only if even
 * the least RTT sample of the round grew past min_rtt (BBR_QUEUE_RTT_MS):
 * loss at the propagation delay is the path's, and costs nothing (the
 * least sample: delayed SACKs and repaired losses inflate single ones).
 * A full queue ends startup (btl_bw capped at 0.85 until DRAIN is over,
 * lifted 5% per clean round), and in PROBE_BW ends the probe-up phase
 * and caps the window (BBRv2's inflight_hi), never the rate: the cap is
 * 0.85 of the flight, but not under what keeps the current rate at the
 * current RTT.  A queue a loss-based flow keeps full is then shared, not
 * ceded to it.
 */
#include "sctp/assoc_internal.h"

#include <string.h>

#define BBR_STARTUP 0
#define BBR_DRAIN 1
#define BBR_PROBE_BW 2
#define BBR_PROBE_RTT 3

#define BBR_HIGH_GAIN 2.885        /* 2/ln 2 */
#define BBR_MIN_RTT_WIN_MS 10000
#define BBR_PROBE_RTT_MS 200
#define CC_BBR_LOSS_THRESH 0.15
#define BBR_LOSS_MIN_PKTS 20
/* A round's RTT shows a queue when it exceeds min_rtt by a quarter, and
 * by at least this (the ms clock and a loaded event loop add a few ms
 * to every sample of a short path). */
#define BBR_QUEUE_RTT_MS 5
/*
 * The RTT the window is sized with is at least this.  The core's clock
 * counts ms and the event loop of a loaded host adds milliseconds of its
 * own to every ack: a 0-1 ms min_rtt on such a path would hold the window
 * to a tenth of what the acks need.  The cost is up to 10 ms of the rate
 * queued at the bottleneck of a very short path.
 */
#define BBR_RTT_FLOOR_MS 10
/* The early expiry's window (at least 8 min_rtt) and least sample count. */
#define BBR_STALE_WIN_MS 1000
#define BBR_STALE_MIN_SAMPLES 8

static const double probe_bw_gain[8] = {
	1.25, 0.75, 1, 1, 1, 1, 1, 1,
};

static uint64_t bbr_bdp(const struct sctp_cc *cc, double gain)
{
	uint32_t rtt = cc->min_rtt == UINT32_MAX ? 0 : cc->min_rtt;

	if (rtt < BBR_RTT_FLOOR_MS)
		rtt = BBR_RTT_FLOOR_MS;
	return (uint64_t)(gain * (double)cc->btl_bw * rtt / 1000.0);
}

/* PROBE_RTT's window: BBRv2's half BDP, not v1's 4 packets.  The tunnel
 * carries every connection on this one window, and 4 MTU for 200 ms was
 * a latency spike for all of them (loss_bench's p99). */
static uint32_t bbr_probe_rtt_cwnd(const struct sctp_cc *cc)
{
	uint64_t w = bbr_bdp(cc, 0.5);

	if (w < 4 * (uint64_t)cc->mtu)
		w = 4 * (uint64_t)cc->mtu;
	return w > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)w;
}

static void bbr_set_rate_cwnd(struct sctp_cc *cc, uint32_t flight)
{
	uint64_t w;

	(void)flight;
	if (cc->btl_bw == 0) {
		cc->pacing_rate = 0;       /* no estimate yet: the window rules */
		return;
	}
	cc->pacing_rate = (uint64_t)(cc->pacing_gain * (double)cc->btl_bw);
	/*
	 * Never slower than the smallest window per round trip (4 MTU, as
	 * the window's own floor): lossy rounds cap the estimate by 15 %
	 * each, and a flow of small control messages (a server's OPEN_OKs
	 * and credits while the peer floods it) then measured only what the
	 * collapsed rate let through, and trickled at a few messages per
	 * second (test_abuse_never_reading_sink).
	 */
	{
		uint32_t rtt = cc->min_rtt == UINT32_MAX ? 100 : cc->min_rtt;
		uint64_t least;

		if (rtt < BBR_RTT_FLOOR_MS)
			rtt = BBR_RTT_FLOOR_MS;
		least = 4ull * cc->mtu * 1000 / rtt;
		if (cc->pacing_rate < least)
			cc->pacing_rate = least;
	}
	/* An app-limited flow (requests with think time) measures little
	 * of the path: pace it no slower than an initial window per RTT,
	 * what any sender does in its first round trip.  A flow that fills
	 * the path is paced at what it measures, however slow. */
	if (cc->app_limited) {
		uint32_t rtt = cc->min_rtt == UINT32_MAX ? 100 : cc->min_rtt;
		uint64_t floor;

		if (rtt < BBR_RTT_FLOOR_MS)
			rtt = BBR_RTT_FLOOR_MS;
		floor = 10ull * cc->mtu * 1000 / rtt;
		if (cc->pacing_rate < floor)
			cc->pacing_rate = floor;
	}
	if (cc->mode == BBR_PROBE_RTT) {
		cc->cwnd = bbr_probe_rtt_cwnd(cc);
		return;
	}
	w = bbr_bdp(cc, cc->cwnd_gain) + 3 * (uint64_t)cc->mtu;
	if (w < 4 * (uint64_t)cc->mtu)
		w = 4 * (uint64_t)cc->mtu;
	if (w > UINT32_MAX / 2)
		w = UINT32_MAX / 2;
	/* The loss guard's cap is for a flow that fills the path; an
	 * app-limited one (requests) keeps its window. */
	if (w > cc->inflight_hi && !cc->app_limited)
		w = cc->inflight_hi;
	if (w < 4 * (uint64_t)cc->mtu)
		w = 4 * (uint64_t)cc->mtu;
	/* In startup the window only grows, as the estimate does. */
	if (!cc->filled_pipe && w < cc->cwnd)
		return;
	cc->cwnd = (uint32_t)w;
}

static void bbr_init(struct sctp_cc *cc, uint32_t mtu, uint32_t peer_rwnd)
{
	uint64_t fixed = cc->fixed_rate, lost = cc->lost_bytes;

	memset(cc, 0, sizeof(*cc));
	cc->fixed_rate = fixed;
	cc->lost_bytes = cc->lost_seen = lost;
	cc->mtu = mtu;
	cc->cwnd = 10 * mtu;            /* RFC 6928's initial window */
	cc->ssthresh = peer_rwnd;
	cc->min_rtt = UINT32_MAX;
	cc->recent_min_rtt = UINT32_MAX;
	cc->bw_hi = UINT64_MAX;
	cc->inflight_hi = UINT64_MAX;
	cc->round_min_rtt = UINT32_MAX;
	cc->mode = BBR_STARTUP;
	cc->pacing_gain = BBR_HIGH_GAIN;
	cc->cwnd_gain = BBR_HIGH_GAIN;
}

static void bbr_update_bw(struct sctp_cc *cc, const struct sctp_cc_ack *k,
                          int new_round)
{
	uint64_t m = 0;

	if (new_round) {
		cc->round++;
		cc->bw[cc->round % CC_BW_ROUNDS] = 0;
	}
	/* An app-limited sample counts only if it raises the estimate. */
	if (k->rate && (!k->app_limited || k->rate > cc->btl_bw)) {
		uint64_t *slot = &cc->bw[cc->round % CC_BW_ROUNDS];

		if (k->rate > *slot)
			*slot = k->rate;
	}
	for (int i = 0; i < CC_BW_ROUNDS; i++)
		if (cc->bw[i] > m)
			m = cc->bw[i];
	cc->btl_bw = m < cc->bw_hi ? m : cc->bw_hi;
}

/* Did this round's RTT rise above the propagation delay (a queue)? */
static int bbr_round_queued(const struct sctp_cc *cc)
{
	uint32_t base = cc->min_rtt, margin;

	if (base == UINT32_MAX || cc->round_min_rtt == UINT32_MAX)
		return 0;
	margin = base / 4;
	if (margin < BBR_QUEUE_RTT_MS)
		margin = BBR_QUEUE_RTT_MS;
	return cc->round_min_rtt > base + margin;
}

/* A full queue in PROBE_BW: cap the window at 0.85 of the flight, but
 * never under what the current rate needs at the current RTT, so the
 * rate is kept and only the window's headroom (gain 2) goes. */
static void bbr_cap_inflight(struct sctp_cc *cc, uint32_t flight)
{
	uint64_t cap = (uint64_t)flight * 85 / 100;
	uint64_t keep = (uint64_t)((double)cc->btl_bw * cc->round_min_rtt /
	                           1000.0) + 3 * (uint64_t)cc->mtu;

	if (cap < keep)
		cap = keep;
	if (cap < cc->inflight_hi)
		cc->inflight_hi = cap;
	/* Stop probing up: drain what the probe queued. */
	if (cc->mode == BBR_PROBE_BW && cc->pacing_gain > 1) {
		cc->cycle = 1;
		cc->pacing_gain = probe_bw_gain[1];
	}
}

/* At a round's end: was it lossy enough to mean a full queue? */
static void bbr_loss_guard(struct sctp_cc *cc, const struct sctp_cc_ack *k)
{
	uint64_t tot = cc->round_delivered + cc->round_lost;
	int lossy;

	/* Judge at least BBR_LOSS_MIN_PKTS packets' worth (gathered over
	 * as many rounds as it takes): with fewer, two random losses in a
	 * row of a light flow would look like a full queue. */
	if (tot < BBR_LOSS_MIN_PKTS * (uint64_t)cc->mtu)
		return;
	lossy = (double)cc->round_lost > CC_BBR_LOSS_THRESH * (double)tot;
	if (lossy && bbr_round_queued(cc)) {
		if (!cc->filled_pipe) {
			uint64_t cap = cc->btl_bw * 85 / 100;

			if (cap < cc->bw_hi)
				cc->bw_hi = cap;
			cc->filled_pipe = 1;
		} else {
			bbr_cap_inflight(cc, k->flight_before);
		}
		if (cc->mode == BBR_STARTUP) {
			cc->mode = BBR_DRAIN;
			cc->pacing_gain = 1 / BBR_HIGH_GAIN;
		}
	} else if (!lossy) {
		if (cc->bw_hi != UINT64_MAX) {
			cc->bw_hi += cc->bw_hi / 20 + cc->mtu;
			if (cc->bw_hi > 4 * cc->btl_bw + 1)
				cc->bw_hi = UINT64_MAX; /* far above: no cap */
		}
		if (cc->inflight_hi != UINT64_MAX) {
			cc->inflight_hi += cc->inflight_hi / 20 + cc->mtu;
			if (cc->inflight_hi > bbr_bdp(cc, 4))
				cc->inflight_hi = UINT64_MAX;
		}
	}
	cc->round_delivered = cc->round_lost = 0;
	cc->round_min_rtt = UINT32_MAX;
}

static void bbr_check_full_pipe(struct sctp_cc *cc, const struct sctp_cc_ack *k)
{
	if (cc->filled_pipe || k->app_limited)
		return;
	if (cc->btl_bw >= cc->full_bw + cc->full_bw / 4) {
		cc->full_bw = cc->btl_bw;
		cc->full_bw_count = 0;
		return;
	}
	if (++cc->full_bw_count >= 3)
		cc->filled_pipe = 1;
}

static void bbr_enter_probe_bw(struct sctp_cc *cc, uint64_t now)
{
	cc->mode = BBR_PROBE_BW;
	cc->cwnd_gain = 2;
	/* Startup's loss cap was for its overshoot, which DRAIN has now
	 * undone.  Kept, it held the rate next to a loss-based flow: it
	 * rises only in clean rounds, and in a queue that flow keeps full
	 * many rounds lose over 15%.  PROBE_BW caps the window instead. */
	cc->bw_hi = UINT64_MAX;
	/* Start anywhere but the drain phase (v1 picks at random; the core
	 * is deterministic, so the round counter picks). */
	cc->cycle = 2 + (unsigned)(cc->round % 6);
	cc->pacing_gain = probe_bw_gain[cc->cycle];
	cc->cycle_at = now;
}

/* Search for the bandwidth again from what is measured now. */
static void bbr_restart_startup(struct sctp_cc *cc)
{
	cc->restart_after_probe = 0;
	cc->mode = BBR_STARTUP;
	cc->filled_pipe = 0;
	cc->full_bw = 0;
	cc->full_bw_count = 0;
	cc->bw_hi = UINT64_MAX;
	cc->inflight_hi = UINT64_MAX;
	cc->pacing_gain = BBR_HIGH_GAIN;
	cc->cwnd_gain = BBR_HIGH_GAIN;
}

static void bbr_advance_cycle(struct sctp_cc *cc, const struct sctp_cc_ack *k)
{
	uint32_t rtt = cc->min_rtt == UINT32_MAX ? 100 : cc->min_rtt;
	int next = k->now - cc->cycle_at > (rtt ? rtt : 1);

	/* Probing up lasts until the flight reached 1.25 BDP (or a loss);
	 * draining down ends as soon as the flight is back at 1 BDP. */
	if (cc->pacing_gain > 1 && k->flight < bbr_bdp(cc, 1.25) &&
	    cc->lost_bytes == cc->lost_seen)
		next = 0;
	if (cc->pacing_gain < 1 && k->flight <= bbr_bdp(cc, 1))
		next = 1;
	if (!next)
		return;
	cc->cycle = (cc->cycle + 1) % 8;
	cc->pacing_gain = probe_bw_gain[cc->cycle];
	cc->cycle_at = k->now;
}

/*
 * Has the path's delay risen for good?  Judged once per window: stale if
 * the window had enough samples and even its least was over twice the
 * minimum (the floor, if that is more) and 5 ms.  BBR's own queue cannot
 * do that for a second: it is paced at the measured rate, and its window
 * of twice the BDP holds at most one BDP queued.  A loss-based flow's
 * standing queue can; then a fresh measure, PROBE_RTT's, is what BBR
 * would take at the 10 s expiry anyway.
 */
static uint32_t bbr_min_rtt_stale(struct sctp_cc *cc, const struct sctp_cc_ack *k)
{
	uint32_t base, win, least = UINT32_MAX;

	if (k->rtt != UINT32_MAX) {
		if (k->rtt < cc->recent_min_rtt)
			cc->recent_min_rtt = k->rtt;
		cc->recent_samples++;
	}
	if (cc->min_rtt == UINT32_MAX) {
		cc->recent_at = k->now;
		return UINT32_MAX;
	}
	base = cc->min_rtt < BBR_RTT_FLOOR_MS ? BBR_RTT_FLOOR_MS : cc->min_rtt;
	win = 8 * base > BBR_STALE_WIN_MS ? 8 * base : BBR_STALE_WIN_MS;
	if (k->now - cc->recent_at < win)
		return UINT32_MAX;
	if (cc->recent_samples >= BBR_STALE_MIN_SAMPLES &&
	    cc->recent_min_rtt != UINT32_MAX &&
	    cc->recent_min_rtt > 2 * base + BBR_QUEUE_RTT_MS)
		least = cc->recent_min_rtt;
	cc->recent_min_rtt = UINT32_MAX;
	cc->recent_samples = 0;
	cc->recent_at = k->now;
	return least;
}

static void bbr_update_min_rtt(struct sctp_cc *cc, const struct sctp_cc_ack *k)
{
	uint32_t stale = bbr_min_rtt_stale(cc, k);
	int expired = cc->min_rtt != UINT32_MAX &&
	              k->now - cc->min_rtt_at > BBR_MIN_RTT_WIN_MS;
	uint32_t prev = cc->min_rtt;

	if (k->rtt != UINT32_MAX && (k->rtt <= cc->min_rtt || expired)) {
		cc->min_rtt = k->rtt;
		cc->min_rtt_at = k->now;
	}
	/* The delay rose for good: the window's least sample is the new
	 * minimum until PROBE_RTT (below) measures it afresh, and then the
	 * bandwidth is searched for anew, as on a new path (PROBE_BW's
	 * 25 % per cycle took 4 s to refill a 50 ms path). */
	if (stale != UINT32_MAX) {
		cc->min_rtt = stale;
		cc->min_rtt_at = k->now;
		cc->restart_after_probe = 1;
		expired = 1;
	}
	/*
	 * A min_rtt under the floor is not worth draining the queue for:
	 * the window is sized with the floor anyway, so a fresh measure
	 * cannot change it, while the 200 ms of PROBE_RTT delay every
	 * connection in the tunnel.  The expired minimum is replaced by
	 * the next sample above; once that is at or over the floor, the
	 * next expiry probes as usual.  A stale minimum is replaced by one
	 * at least 2.5 times the floor, which does change the window: that
	 * is measured (our own queue on a slow short path would otherwise
	 * grow the window it came from, round after round).
	 */
	if (expired && prev < BBR_RTT_FLOOR_MS && stale == UINT32_MAX)
		expired = 0;
	if (expired && cc->mode != BBR_PROBE_RTT &&
	    (cc->filled_pipe || cc->restart_after_probe)) {
		cc->mode = BBR_PROBE_RTT;
		cc->pacing_gain = 1;
		cc->probe_rtt_done = 0;
	}
	if (cc->mode != BBR_PROBE_RTT)
		return;
	if (cc->probe_rtt_done == 0 && k->flight <= bbr_probe_rtt_cwnd(cc))
		cc->probe_rtt_done = k->now + BBR_PROBE_RTT_MS;
	else if (cc->probe_rtt_done != 0 && k->now >= cc->probe_rtt_done) {
		cc->min_rtt_at = k->now;
		if (cc->restart_after_probe)
			bbr_restart_startup(cc);
		else
			bbr_enter_probe_bw(cc, k->now);
	}
}

static void bbr_on_ack(struct sctp_cc *cc, const struct sctp_cc_ack *k)
{
	int new_round = 0;

	if (k->rate) {
		cc->rate_sample = k->rate;
		cc->app_limited = k->app_limited;
	}
	cc->round_delivered += k->newly;
	cc->round_lost += cc->lost_bytes - cc->lost_seen;
	if (k->rtt < cc->round_min_rtt)
		cc->round_min_rtt = k->rtt;
	if (k->prior_delivered >= cc->next_round_delivered) {
		cc->next_round_delivered = k->delivered;
		new_round = 1;
	}
	bbr_update_bw(cc, k, new_round);
	if (new_round) {
		bbr_loss_guard(cc, k);
		bbr_check_full_pipe(cc, k);
		cc->btl_bw = cc->btl_bw < cc->bw_hi ? cc->btl_bw : cc->bw_hi;
	}
	if (cc->mode == BBR_STARTUP && cc->filled_pipe) {
		cc->mode = BBR_DRAIN;
		cc->pacing_gain = 1 / BBR_HIGH_GAIN;
		cc->cwnd_gain = BBR_HIGH_GAIN;
	}
	if (cc->mode == BBR_DRAIN && k->flight <= bbr_bdp(cc, 1))
		bbr_enter_probe_bw(cc, k->now);
	if (cc->mode == BBR_PROBE_BW)
		bbr_advance_cycle(cc, k);
	bbr_update_min_rtt(cc, k);
	cc->lost_seen = cc->lost_bytes;
	bbr_set_rate_cwnd(cc, k->flight);
}

/* Loss is not congestion: the model already stops counting what did
 * not arrive.  The loss guard (per round) does the rest. */
static void bbr_on_fast_retransmit(struct sctp_cc *cc, uint32_t flight)
{
	(void)cc;
	(void)flight;
}

/* A T3 expiry: the path went silent.  Back to one packet's window until
 * acks flow again; the estimate stays (they refill the window). */
static void bbr_on_rto(struct sctp_cc *cc, uint32_t flight)
{
	(void)flight;
	cc->ssthresh = cc->cwnd;
	cc->cwnd = 4 * cc->mtu;
}

static void bbr_undo(struct sctp_cc *cc, uint32_t prior_cwnd,
                     uint32_t prior_ssthresh)
{
	(void)prior_ssthresh;
	if (prior_cwnd > cc->cwnd)
		cc->cwnd = prior_cwnd;
}

const struct sctp_cc_ops core_cc_bbr = {
	.name = "bbr",
	.init = bbr_init,
	.on_ack = bbr_on_ack,
	.on_fast_retransmit = bbr_on_fast_retransmit,
	.on_rto = bbr_on_rto,
	.undo = bbr_undo,
};
