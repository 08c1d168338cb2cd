/*
 * Congestion control behind struct sctp_cc_ops.  The baseline is RFC 9260
 * §7.2: slow start, congestion avoidance with partial_bytes_acked, halving
 * on fast retransmit, one MTU after a T3 timeout.  assoc_sack.c and
 * assoc_rtx.c call these; the next issue adds other controllers beside
 * this one.
 */
#include "sctp/assoc_internal.h"

static uint32_t max32(uint32_t x, uint32_t y)
{
	return x > y ? x : y;
}

static uint32_t min32(uint32_t x, uint32_t y)
{
	return x < y ? x : y;
}

static void reno_init(struct sctp_cc *cc, uint32_t mtu, uint32_t peer_rwnd)
{
	cc->mtu = mtu;
	cc->cwnd = min32(4 * mtu, max32(2 * mtu, 4380));     /* §7.2.1 */
	cc->ssthresh = peer_rwnd;
	cc->partial_bytes_acked = 0;
}

static void reno_on_ack(struct sctp_cc *cc, uint32_t acked, uint32_t flight,
                        uint64_t now_ms)
{
	(void)now_ms;
	if (flight < cc->cwnd)
		return;                 /* the window was not the limit */
	if (cc->cwnd <= cc->ssthresh) {
		cc->cwnd += min32(acked, cc->mtu);                /* §7.2.1 */
		return;
	}
	cc->partial_bytes_acked += acked;                        /* §7.2.2 */
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
