/*
 * Congestion control behind struct sctp_cc_ops: NewReno (RFC 9260 §7.2:
 * slow start, congestion avoidance with partial_bytes_acked, halving on
 * fast retransmit, one MTU after a T3 timeout), CUBIC (RFC 9438) and the
 * opt-in fixed rate.  The delivery-rate model is in assoc_bbr.c.
 *
 * Pacing (assoc_send.c sends at cc->pacing_rate): NewReno is not paced,
 * it is the RFC baseline and stays exactly that.  CUBIC paces at
 * 2·cwnd/srtt in slow start and 1.25·cwnd/srtt after, as Linux does:
 * fast enough that the window, not the pacer, is the limit, slow enough
 * that a window's worth does not leave as one burst.
 */
#include "sctp/assoc_internal.h"

#include <string.h>

static uint32_t max32(uint32_t x, uint32_t y)
{
	return x > y ? x : y;
}

static uint32_t min32(uint32_t x, uint32_t y)
{
	return x < y ? x : y;
}

/* Forgets the controller's state; keeps what the core set (the fixed
 * rate, the lost-bytes count). */
static void cc_clear(struct sctp_cc *cc, uint32_t mtu)
{
	uint64_t fixed = cc->fixed_rate, lost = cc->lost_bytes;
	uint32_t cwnd = cc->carrier_wnd;

	memset(cc, 0, sizeof(*cc));
	cc->fixed_rate = fixed;
	cc->carrier_wnd = cwnd;
	cc->lost_bytes = lost;
	cc->lost_seen = lost;
	cc->mtu = mtu;
}

/* ---- NewReno ---- */

static void reno_init(struct sctp_cc *cc, uint32_t mtu, uint32_t peer_rwnd)
{
	cc_clear(cc, mtu);
	cc->cwnd = min32(4 * mtu, max32(2 * mtu, 4380));     /* §7.2.1 */
	cc->ssthresh = peer_rwnd;
}

static void reno_on_ack(struct sctp_cc *cc, const struct sctp_cc_ack *k)
{
	cc->rate_sample = k->rate ? k->rate : cc->rate_sample;
	if (!k->advanced || k->in_recovery)
		return;
	if (k->flight_before < cc->cwnd)
		return;                 /* the window was not the limit */
	if (cc->cwnd <= cc->ssthresh) {
		cc->cwnd += min32(k->acked, cc->mtu);             /* §7.2.1 */
		return;
	}
	cc->partial_bytes_acked += k->acked;                     /* §7.2.2 */
	if (cc->partial_bytes_acked >= cc->cwnd) {
		cc->partial_bytes_acked -= cc->cwnd;
		cc->cwnd += cc->mtu;
	}
}

static void reno_on_fast_retransmit(struct sctp_cc *cc, uint32_t flight)
{
	(void)flight;
	cc->ssthresh = max32(cc->cwnd / 2, 4 * cc->mtu);         /* §7.2.3 */
	cc->cwnd = cc->ssthresh;
	cc->partial_bytes_acked = 0;
}

static void reno_on_rto(struct sctp_cc *cc, uint32_t flight)
{
	(void)flight;
	cc->ssthresh = max32(cc->cwnd / 2, 4 * cc->mtu);
	cc->cwnd = cc->mtu;
	cc->partial_bytes_acked = 0;
}

static void reno_undo(struct sctp_cc *cc, uint32_t prior_cwnd,
                      uint32_t prior_ssthresh)
{
	cc->cwnd = max32(cc->cwnd, prior_cwnd);
	cc->ssthresh = max32(cc->ssthresh, prior_ssthresh);
	cc->partial_bytes_acked = 0;
}

const struct sctp_cc_ops core_cc_newreno = {
	.name = "newreno",
	.init = reno_init,
	.on_ack = reno_on_ack,
	.on_fast_retransmit = reno_on_fast_retransmit,
	.on_rto = reno_on_rto,
	.undo = reno_undo,
};

/* ---- CUBIC (RFC 9438) ---- */

#define CUBIC_C 0.4                /* §4.6, in MSS / s^3 */
#define CUBIC_BETA 0.7             /* §4.6 */
#define CUBIC_ALPHA (3.0 * (1.0 - CUBIC_BETA) / (1.0 + CUBIC_BETA))

static void cubic_pace(struct sctp_cc *cc)
{
	double gain = cc->cwnd < cc->ssthresh ? 2.0 : 1.25;

	cc->pacing_rate = cc->srtt == 0 ? 0 :
	    (uint64_t)(gain * cc->cwnd * 1000.0 / cc->srtt);
}

static void cubic_init(struct sctp_cc *cc, uint32_t mtu, uint32_t peer_rwnd)
{
	reno_init(cc, mtu, peer_rwnd);
}

/* x^(1/3) for x >= 0 by Newton's method (no libm in the core). */
static double cube_root(double x)
{
	double r = x > 1 ? x / 3 : 1;

	if (x <= 0)
		return 0;
	for (int i = 0; i < 60; i++) {
		double n = r - (r * r * r - x) / (3 * r * r);

		if (n == r)
			break;
		r = n;
	}
	return r;
}

/* §4.2: W_cubic(t) = C (t - K)^3 + W_max, in MSS units. */
static double cubic_w(const struct sctp_cc *cc, double t_s)
{
	double d = t_s - cc->k_s;

	return CUBIC_C * d * d * d + cc->w_max;
}

static void cubic_on_ack(struct sctp_cc *cc, const struct sctp_cc_ack *k)
{
	double mss = cc->mtu, cwnd_seg, target, t_s;

	cc->rate_sample = k->rate ? k->rate : cc->rate_sample;
	if (k->srtt)
		cc->srtt = k->srtt;
	if (!k->advanced || k->in_recovery || k->flight_before < cc->cwnd) {
		cubic_pace(cc);
		return;
	}
	if (cc->cwnd < cc->ssthresh) {
		cc->cwnd += min32(k->acked, cc->mtu);   /* §4.10: slow start */
		cubic_pace(cc);
		return;
	}
	cwnd_seg = cc->cwnd / mss;
	if (cc->epoch_start == 0) {     /* §4.8: a new epoch */
		cc->epoch_start = k->now ? k->now : 1;
		if (cc->w_max < cwnd_seg) {
			cc->w_max = cwnd_seg;
			cc->k_s = 0;
		} else {
			cc->k_s = cube_root((cc->w_max - cwnd_seg) / CUBIC_C);
		}
		cc->w_est = cwnd_seg;
	}
	t_s = (double)(k->now - cc->epoch_start) / 1000.0;
	/* §4.2: aim one RTT ahead. */
	target = cubic_w(cc, t_s + cc->srtt / 1000.0);
	if (target < cwnd_seg)
		target = cwnd_seg;
	if (target > 1.5 * cwnd_seg)
		target = 1.5 * cwnd_seg;
	/* §4.3: the Reno-friendly estimate. */
	cc->w_est += CUBIC_ALPHA * (k->acked / mss) / cwnd_seg;
	if (cc->w_est > target)
		target = cc->w_est;
	cc->partial_bytes_acked += k->acked;
	/* (target - cwnd) / cwnd MSS per MSS acked. */
	{
		double inc = (target - cwnd_seg) / cwnd_seg *
		             (cc->partial_bytes_acked / mss);

		if (inc >= 1.0 / mss) {
			cc->cwnd += (uint32_t)(inc * mss);
			cc->partial_bytes_acked = 0;
		}
		if (cc->partial_bytes_acked > 4 * cc->cwnd)
			cc->partial_bytes_acked = 0;
	}
	cubic_pace(cc);
}

static void cubic_reduce(struct sctp_cc *cc)
{
	double cwnd_seg = cc->cwnd / (double)cc->mtu;

	cc->prior_w_max = cc->w_max;
	/* §4.7 fast convergence. */
	if (cwnd_seg < cc->w_max)
		cc->w_max = cwnd_seg * (1.0 + CUBIC_BETA) / 2.0;
	else
		cc->w_max = cwnd_seg;
	/* RFC 9260 §7.2.3's floor of 4 MTU, as NewReno here. */
	cc->ssthresh = max32((uint32_t)(cc->cwnd * CUBIC_BETA), 4 * cc->mtu);
	cc->epoch_start = 0;
	cc->partial_bytes_acked = 0;
}

static void cubic_on_fast_retransmit(struct sctp_cc *cc, uint32_t flight)
{
	(void)flight;
	cubic_reduce(cc);
	cc->cwnd = cc->ssthresh;
	cubic_pace(cc);
}

static void cubic_on_rto(struct sctp_cc *cc, uint32_t flight)
{
	(void)flight;
	cubic_reduce(cc);
	cc->cwnd = cc->mtu;
	cubic_pace(cc);
}

static void cubic_undo(struct sctp_cc *cc, uint32_t prior_cwnd,
                       uint32_t prior_ssthresh)
{
	reno_undo(cc, prior_cwnd, prior_ssthresh);
	if (cc->prior_w_max > cc->w_max)
		cc->w_max = cc->prior_w_max;
	cc->epoch_start = 0;
	cubic_pace(cc);
}

const struct sctp_cc_ops core_cc_cubic = {
	.name = "cubic",
	.init = cubic_init,
	.on_ack = cubic_on_ack,
	.on_fast_retransmit = cubic_on_fast_retransmit,
	.on_rto = cubic_on_rto,
	.undo = cubic_undo,
};

/*
 * ---- Fixed rate (--bandwidth; Hysteria's Brutal in spirit) ----
 *
 * The user says what the path carries.  Loss is not congestion here: the
 * sending rate is the asked rate divided by the delivered fraction (so
 * the goodput holds under random loss), bounded to 2x, and the window is
 * twice what that rate fills in an RTT.  Never the default: on a path
 * slower than asked it overruns the queue and starves everyone else.
 */
static void fixed_update(struct sctp_cc *cc)
{
	double keep = 1.0 - cc->loss_ratio;
	uint32_t rtt = cc->srtt ? cc->srtt : 100;
	uint64_t bdp;

	if (keep < 0.5)
		keep = 0.5;
	cc->pacing_rate = (uint64_t)(cc->fixed_rate / keep);
	if (rtt < 5)
		rtt = 5;
	bdp = cc->pacing_rate * rtt / 1000;
	cc->cwnd = (uint32_t)(2 * bdp < 4 * cc->mtu ? 4 * cc->mtu :
	                      2 * bdp > UINT32_MAX / 2 ? UINT32_MAX / 2 :
	                      2 * bdp);
	cc->ssthresh = cc->cwnd;
}

static void fixed_init(struct sctp_cc *cc, uint32_t mtu, uint32_t peer_rwnd)
{
	(void)peer_rwnd;
	cc_clear(cc, mtu);
	fixed_update(cc);
}

static void fixed_on_ack(struct sctp_cc *cc, const struct sctp_cc_ack *k)
{
	cc->rate_sample = k->rate ? k->rate : cc->rate_sample;
	if (k->srtt)
		cc->srtt = k->srtt;
	cc->round_delivered += k->newly;
	cc->round_lost += cc->lost_bytes - cc->lost_seen;
	cc->lost_seen = cc->lost_bytes;
	/* Per round trip: fold the round's loss into the average. */
	if (k->prior_delivered >= cc->next_round_delivered) {
		uint64_t tot = cc->round_delivered + cc->round_lost;

		cc->next_round_delivered = k->delivered;
		if (tot >= 4 * cc->mtu) {
			double r = (double)cc->round_lost / tot;

			cc->loss_ratio = 0.75 * cc->loss_ratio + 0.25 * r;
			cc->round_delivered = cc->round_lost = 0;
		}
	}
	fixed_update(cc);
}

static void fixed_on_loss(struct sctp_cc *cc, uint32_t flight)
{
	(void)flight;
	fixed_update(cc);
}

static void fixed_undo(struct sctp_cc *cc, uint32_t prior_cwnd,
                       uint32_t prior_ssthresh)
{
	(void)prior_cwnd;
	(void)prior_ssthresh;
	fixed_update(cc);
}

const struct sctp_cc_ops core_cc_fixed = {
	.name = "fixed",
	.init = fixed_init,
	.on_ack = fixed_on_ack,
	.on_fast_retransmit = fixed_on_loss,
	.on_rto = fixed_on_loss,
	.undo = fixed_undo,
};

/*
 * ---- Over a reliable carrier (sctp_core_set_reliable) ----
 *
 * TCP under us already runs congestion control and retransmits: a
 * second window on top only halves the rate whenever a stall in TCP
 * looks like loss, and pacing only adds timer wake-ups.  The window is
 * fixed at what the carrier can queue without dropping (the core sets
 * carrier_wnd); the peer's rwnd bounds it too, in the send path.  A
 * loss here is a frame the carrier dropped past its cap: it is resent,
 * but it says nothing about the network, so the window stays.
 */
static void carrier_init(struct sctp_cc *cc, uint32_t mtu, uint32_t peer_rwnd)
{
	(void)peer_rwnd;
	cc_clear(cc, mtu);
	cc->cwnd = max32(cc->carrier_wnd, 4 * mtu);
	cc->ssthresh = cc->cwnd;
}

static void carrier_on_ack(struct sctp_cc *cc, const struct sctp_cc_ack *k)
{
	cc->rate_sample = k->rate ? k->rate : cc->rate_sample;
	if (k->srtt)
		cc->srtt = k->srtt;
}

static void carrier_on_loss(struct sctp_cc *cc, uint32_t flight)
{
	(void)cc;
	(void)flight;
}

static void carrier_undo(struct sctp_cc *cc, uint32_t prior_cwnd,
                         uint32_t prior_ssthresh)
{
	(void)cc;
	(void)prior_cwnd;
	(void)prior_ssthresh;
}

const struct sctp_cc_ops core_cc_carrier = {
	.name = "carrier",
	.init = carrier_init,
	.on_ack = carrier_on_ack,
	.on_fast_retransmit = carrier_on_loss,
	.on_rto = carrier_on_loss,
	.undo = carrier_undo,
};

const char *sctp_core_cc_name(int algo)
{
	const struct sctp_cc_ops *o = core_cc_select(algo);

	return o != NULL ? o->name : "?";
}

const struct sctp_cc_ops *core_cc_select(int algo)
{
	switch (algo) {
	case SCTP_CC_NEWRENO:
		return &core_cc_newreno;
	case SCTP_CC_CUBIC:
		return &core_cc_cubic;
	case SCTP_CC_BBR:
		return &core_cc_bbr;
	case SCTP_CC_FIXED:
		return &core_cc_fixed;
	}
	return NULL;
}
