/*
 * Unit tests for loss recovery in the native association core
 * (src/sctp/assoc_rack.c, assoc_sack.c, assoc_rtx.c): RACK on TSNs, the
 * tail-loss probe, the 3-miss fallback, spurious retransmission and
 * spurious RTO detection with undo.  Two cores on the simulated network
 * of sctp_sim.h (virtual clock, 25 ms each way, fixed seeds); single
 * packets are dropped, delayed or held by a filter, and every DATA
 * transmission and delivery is timed, so each test bounds how soon a
 * loss is repaired and checks which detector did it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sctp/assoc.h"
#include "sctp/packet.h"
#include "sctp_sim.h"

#define UNUSED __attribute__((unused))
#define ONE_WAY 25                 /* ms */
#define RTT (2 * ONE_WAY)
#define MSG 1000                   /* one chunk, one packet at MTU 1200 */
#define MAXTX 4096
#define MAXHELD 64

static struct sim S;

/* Overrides of setup()'s configuration for the next test (0: keep). */
static struct {
	uint32_t rto_min, rto_max, fail_min, one_way, hb;
	unsigned max_retrans;
} T;

static struct {
	/* Every DATA chunk side 0 sent: TSN and time. */
	struct { uint32_t tsn; uint64_t at; } tx[MAXTX];
	unsigned ntx;
	/* Every message side 1 got: ppid and time. */
	struct { uint32_t ppid; uint64_t at; } rx[MAXTX];
	unsigned nrx;
	/* The filter: drop the next `drop_n` sends of drop_tsn, delay the
	 * first send of delay_tsn by delay_ms, hold side 1's packets. */
	uint32_t drop_tsn;
	unsigned drop_n;
	uint32_t range_lo;          /* first sends of range_lo .. +range_n */
	unsigned range_n;
	uint64_t range_done;        /* bit i: range_lo + i was dropped */
	uint32_t delay_tsn;
	uint32_t delay_ms;
	int delay_armed;
	int hold_1;
	struct { uint8_t buf[SIM_PKT]; size_t len; } held[MAXHELD];
	unsigned nheld;
	/* Request/response: side 1 answers every message. */
	int echo;
	unsigned echo_owed;
	unsigned req_owed;
	size_t unconsumed, unconsumed0;
} R;

static void hook(struct sim *s, int id, const struct sctp_core_event *ev)
{
	if (ev->type != SCTP_EV_DATA)
		return;
	if (id == 0) {
		R.unconsumed0 += ev->len;
		if (R.echo)
			R.req_owed++;
	}
	if (id == 1 && R.nrx < MAXTX) {
		R.rx[R.nrx].ppid = ev->ppid;
		R.rx[R.nrx].at = s->now;
		R.nrx++;
		R.unconsumed += ev->len;
		if (R.echo)
			R.echo_owed++;
	}
}

/* Answers owed by side 1 go out after the call that delivered them. */
static void after_step(struct sim *s)
{
	static uint8_t buf[MSG];

	if (R.unconsumed > 0) {
		size_t n = R.unconsumed;

		R.unconsumed = 0;
		sctp_core_consume(s->side[1].a, n, s->now);
	}
	if (R.unconsumed0 > 0) {
		size_t n = R.unconsumed0;

		R.unconsumed0 = 0;
		sctp_core_consume(s->side[0].a, n, s->now);
	}
	while (R.echo_owed > 0) {
		R.echo_owed--;
		assert_int_equal(sctp_core_send(s->side[1].a, 1, 7, 0, buf,
		                                 MSG, s->now), 0);
	}
	while (R.req_owed > 0) {
		R.req_owed--;
		assert_int_equal(sctp_core_send(s->side[0].a, 2, 8, 0, buf,
		                                 MSG, s->now), 0);
	}
}

static int filter(struct sim *s, int from, uint8_t *p, size_t *n)
{
	struct sctp_packet pkt;
	struct sctp_chunk_iter it;
	struct sctp_chunk c;
	int delay = 0;

	if (from == 1) {
		if (!R.hold_1)
			return 0;
		assert_true(R.nheld < MAXHELD);
		memcpy(R.held[R.nheld].buf, p, *n);
		R.held[R.nheld].len = *n;
		R.nheld++;
		return 1;
	}
	if (sctp_packet_parse(p, *n, &pkt) != 0)
		return 0;
	sctp_chunk_iter_init(&it, &pkt);
	while (sctp_chunk_next(&it, &c) == 1) {
		struct sctp_data d;

		if (c.type != SCTP_CT_I_DATA || sctp_idata_parse(&c, &d) != 0)
			continue;
		if (R.ntx < MAXTX) {
			R.tx[R.ntx].tsn = d.tsn;
			R.tx[R.ntx].at = s->now;
			R.ntx++;
		}
		if (R.drop_n > 0 && d.tsn == R.drop_tsn) {
			R.drop_n--;
			return 1;
		}
		if (d.tsn - R.range_lo < R.range_n &&
		    !(R.range_done >> (d.tsn - R.range_lo) & 1)) {
			R.range_done |= 1ull << (d.tsn - R.range_lo);
			return 1;
		}
		if (R.delay_armed && d.tsn == R.delay_tsn) {
			R.delay_armed = 0;
			delay = 1;
		}
	}
	if (delay) {
		sim_enqueue(s, 1, p, *n, s->now + s->delay_ms + R.delay_ms);
		return 1;
	}
	return 0;
}

static void release_held(void)
{
	for (unsigned i = 0; i < R.nheld; i++)
		sim_enqueue(&S, 0, R.held[i].buf, R.held[i].len, S.now + 1);
	R.nheld = 0;
	R.hold_1 = 0;
}

/* Sends of `tsn` by side 0 (the first is the original). */
static unsigned sends_of(uint32_t tsn, uint64_t *last_at)
{
	unsigned n = 0;

	for (unsigned i = 0; i < R.ntx; i++)
		if (R.tx[i].tsn == tsn) {
			n++;
			if (last_at != NULL)
				*last_at = R.tx[i].at;
		}
	return n;
}

static uint64_t delivered_at(uint32_t ppid)
{
	for (unsigned i = 0; i < R.nrx; i++)
		if (R.rx[i].ppid == ppid)
			return R.rx[i].at;
	return UINT64_MAX;
}

static struct sctp_core_info info(int id)
{
	struct sctp_core_info in;

	sctp_core_get_info(S.side[id].a, &in);
	return in;
}

static void send_msgs(unsigned n, uint32_t first_ppid)
{
	static uint8_t buf[MSG];

	for (unsigned i = 0; i < n; i++)
		assert_int_equal(sctp_core_send(S.side[0].a, 0, first_ppid + i, 0,
		                                buf, MSG, S.now), 0);
}

/*
 * Up, then a warm-up without loss: RTT samples (min_rtt = one RTT) and,
 * with bulk, a congestion window well above its 4-MTU minimum so that a
 * reduction and its undo show.  RTO floor 300 ms: far from what RACK
 * and TLP need, so each bound below tells the detectors apart.
 */
static void setup(uint64_t seed, int bulk)
{
	struct sctp_core_config a = sim_config(0), b = sim_config(1);

	memset(&R, 0, sizeof(R));
	a.rto_min_ms = b.rto_min_ms = T.rto_min ? T.rto_min : 300;
	a.rto_max_ms = b.rto_max_ms = T.rto_max;
	a.fail_min_ms = b.fail_min_ms = T.fail_min;
	a.max_retrans = b.max_retrans = T.max_retrans;
	a.hb_interval_ms = b.hb_interval_ms = T.hb;
	a.rto_initial_ms = b.rto_initial_ms = 1000;
	a.sndbuf = b.sndbuf = 1024 * 1024;
	a.a_rwnd = b.a_rwnd = 1024 * 1024;
	sim_init(&S, seed);
	S.delay_ms = T.one_way ? T.one_way : ONE_WAY;
	assert_non_null(sim_attach(&S, 0, &a, seed));
	assert_non_null(sim_attach(&S, 1, &b, seed));
	S.event_hook = hook;
	S.filter = filter;
	S.after_step = after_step;
	assert_int_equal(sctp_core_connect(S.side[0].a, S.now), 0);
	sim_run(&S, S.now + 2000);
	assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_ESTABLISHED);
	assert_true(sim_tags_consistent(&S));
	assert_int_equal(sim_count_ev(&S.side[0], SCTP_EV_UP), 1);
	assert_null(sim_last_ev(&S.side[0], SCTP_EV_DOWN));
	assert_int_equal(sim_count_sent(&S, 0, SCTP_CT_INIT), 1);
	assert_int_equal(sim_sent_at(&S, 0, SCTP_CT_INIT, 0), 0);
	for (int i = 0; i < 5; i++) {
		send_msgs(2, 1000);
		sim_run(&S, S.now + 300);
	}
	if (bulk) {
		send_msgs(300, 2000);
		sim_run(&S, S.now + 3000);
	}
	sim_run(&S, S.now + 1000);
	assert_int_equal(info(0).retransmits, 0);
	assert_int_equal(info(0).outstanding_tsns, 0);
	assert_int_equal(info(0).min_rtt_ms, 2 * S.delay_ms);
	R.ntx = 0;
	R.nrx = 0;
}

static void finish(void)
{
	memset(&T, 0, sizeof(T));
	S.after_step = NULL;
	S.event_hook = NULL;
	sim_free(&S);
}

/* A chunk lost in the middle: RACK resends it once RACK.rtt + reo_wnd
 * passed (one RTT + min_rtt / 4 here), long before any RTO. */
static void test_rack_middle(void **state UNUSED)
{
	struct sctp_core_info in;
	uint32_t base;
	uint64_t t0, at = 0;

	setup(1, 0);
	in = info(0);
	base = in.next_tsn;
	assert_int_equal(in.reo_wnd_ms, RTT / 4);
	R.drop_tsn = base + 1;
	R.drop_n = 1;
	t0 = S.now;
	send_msgs(4, 1);
	sim_run(&S, S.now + 2000);
	in = info(0);
	assert_int_equal(sends_of(base + 1, &at), 2);
	/* The gap SACK comes back after one RTT; then reo_wnd. */
	assert_true(at >= t0 + RTT + RTT / 4);
	assert_true(at <= t0 + RTT + RTT / 4 + 2);
	assert_true(delivered_at(2) <= t0 + 2 * RTT + RTT / 4 + ONE_WAY + 2);
	assert_int_equal(in.lost_rack, 1);
	assert_int_equal(in.fast_retransmits, 0);
	assert_int_equal(in.t3_expiries, 0);
	assert_int_equal(in.tlp_probes, 0);
	assert_int_equal(in.retransmits, 1);
	assert_int_equal(in.spurious_rtx, 0);
	assert_int_equal(in.undos, 0);
	assert_true(in.rto_ms >= 300);
	assert_int_equal(R.nrx, 4);
	finish();
}

/* A lost retransmission: RACK finds it by its own send time too (the
 * 3-miss rule resends a chunk only once, then waits for T3). */
static void test_rack_lost_retransmission(void **state UNUSED)
{
	struct sctp_core_info in;
	uint32_t base;
	uint64_t t0, at = 0;

	setup(2, 1);
	base = info(0).next_tsn;
	R.drop_tsn = base + 2;
	R.drop_n = 2;
	t0 = S.now;
	send_msgs(30, 1);
	/* More data after the resend: its SACK shows the resend lost.
	 * (With nothing sent after it, only T3 could tell: RFC 8985 sends
	 * no probe during recovery.) */
	sim_run(&S, t0 + RTT + 10);
	send_msgs(10, 31);
	sim_run(&S, S.now + 3000);
	in = info(0);
	if (getenv("SCTPT_RECOVERY_DEBUG")) {
		for (unsigned i = 0; i < R.ntx; i++)
			fprintf(stderr, "tx tsn +%u at +%llu\n", R.tx[i].tsn - base,
			        (unsigned long long)(R.tx[i].at - t0));
		fprintf(stderr, "rack %u fast %u tlp %u t3 %u rtx %u cwnd %u srtt %u reo %u\n",
		        in.lost_rack, in.fast_retransmits, in.tlp_probes,
		        in.t3_expiries, in.retransmits, in.cwnd, in.srtt_ms,
		        in.reo_wnd_ms);
	}
	assert_int_equal(sends_of(base + 2, &at), 3);
	/* Sent again at one RTT, lost; the next data's SACK an RTT after
	 * the resend plus reo_wnd. */
	assert_true(at <= t0 + 2 * RTT + 10 + RTT / 4 + 2);
	assert_int_equal(in.t3_expiries, 0);
	/* The first loss by the 3-miss fallback (30 SACKs arrive in the
	 * same ms), the lost resend by RACK. */
	assert_int_equal(in.fast_retransmits, 1);
	assert_int_equal(in.lost_rack, 1);
	assert_int_equal(R.nrx, 40);
	assert_true(delivered_at(3) <= at + ONE_WAY);
	finish();
}

/* The last chunk lost: no later chunk can reveal it, so the probe
 * (PTO = 2 SRTT + the peer's SACK delay with one packet in flight)
 * resends it, about 2 SRTT after the last SACK and before T3. */
static void test_tlp_tail(void **state UNUSED)
{
	struct sctp_core_info in;
	uint32_t base, srtt;
	uint64_t t0, at = 0;

	setup(3, 0);
	in = info(0);
	base = in.next_tsn;
	srtt = in.srtt_ms;
	R.drop_tsn = base + 2;
	R.drop_n = 1;
	t0 = S.now;
	send_msgs(3, 1);
	sim_run(&S, S.now + 2000);
	in = info(0);
	assert_int_equal(sends_of(base + 2, &at), 2);
	/* The SACK of the first two after one RTT, then the PTO. */
	assert_true(at <= t0 + RTT + 2 * srtt + 20 + 2);
	assert_true(at < t0 + RTT + in.rto_ms);
	assert_int_equal(in.tlp_probes, 1);
	assert_int_equal(in.tlp_losses, 1);
	assert_int_equal(in.t3_expiries, 0);
	assert_int_equal(in.retransmits, 1);
	assert_int_equal(R.nrx, 3);
	finish();
}

/* A whole window lost with more data queued: no SACK comes, cwnd is
 * full; the probe sends one new chunk beyond cwnd, its SACK shows every
 * earlier TSN missing, and RACK resends them, long before T3. */
static void test_tlp_new_data(void **state UNUSED)
{
	struct sctp_core_info in;
	uint32_t base, srtt;
	uint64_t t0, probe_at = 0, at = 0;

	setup(4, 0);
	in = info(0);
	base = in.next_tsn;
	srtt = in.srtt_ms;
	/* cwnd is 4 MTU: the first five chunks leave, all are lost. */
	R.range_lo = base;
	R.range_n = 5;
	t0 = S.now;
	send_msgs(10, 1);
	sim_run(&S, S.now + 3000);
	in = info(0);
	assert_int_equal(sends_of(base + 5, &probe_at), 1);
	assert_true(probe_at >= t0 + 2 * srtt);
	assert_true(probe_at <= t0 + 2 * srtt + 2);
	assert_int_equal(sends_of(base, &at), 2);
	assert_true(at <= probe_at + RTT + RTT / 4 + 2);
	assert_int_equal(in.tlp_probes, 1);
	assert_int_equal(in.tlp_losses, 0);
	assert_int_equal(in.lost_rack, 5);
	assert_int_equal(in.t3_expiries, 0);
	assert_int_equal(R.nrx, 10);
	finish();
}

/* Reordering within reo_wnd (a packet 5 ms late, reo_wnd 12 ms): no
 * retransmission. */
static void test_reorder_within(void **state UNUSED)
{
	struct sctp_core_info in;
	uint32_t base;

	setup(5, 0);
	base = info(0).next_tsn;
	R.delay_tsn = base + 1;
	R.delay_ms = 5;
	R.delay_armed = 1;
	send_msgs(4, 1);
	sim_run(&S, S.now + 2000);
	in = info(0);
	assert_int_equal(in.retransmits, 0);
	assert_int_equal(in.lost_rack, 0);
	assert_int_equal(in.spurious_rtx, 0);
	assert_int_equal(in.reordering_seen, 1);
	assert_int_equal(R.nrx, 4);
	finish();
}

/* Reordering beyond reo_wnd (40 ms late): RACK resends, the peer
 * reports the copy as a duplicate, the retransmission is counted
 * spurious, the cwnd reduction is undone and reo_wnd widens. */
static void test_reorder_beyond_undo(void **state UNUSED)
{
	struct sctp_core_info before, in;
	uint32_t base;

	setup(6, 1);
	before = info(0);
	assert_true(before.cwnd > 8 * 1200);
	base = before.next_tsn;
	R.delay_tsn = base + 1;
	R.delay_ms = 40;
	R.delay_armed = 1;
	send_msgs(4, 1);
	sim_run(&S, S.now + 2000);
	in = info(0);
	assert_int_equal(in.lost_rack, 1);
	assert_int_equal(in.retransmits, 1);
	assert_int_equal(in.spurious_rtx, 1);
	assert_int_equal(in.undos, 1);
	assert_true(in.cwnd >= before.cwnd);
	assert_int_equal(in.ssthresh, before.ssthresh);
	assert_int_equal(in.reordering_seen, 1);
	assert_true(in.reo_wnd_ms > RTT / 4);
	assert_true(in.reo_wnd_ms <= in.srtt_ms);
	assert_int_equal(R.nrx, 4);
	/* The same lateness again is now inside the wider window. */
	base = in.next_tsn;
	R.delay_tsn = base + 1;
	R.delay_ms = 20;
	R.delay_armed = 1;
	send_msgs(4, 100);
	sim_run(&S, S.now + 2000);
	assert_int_equal(info(0).retransmits, 1);
	finish();
}

/* A delay spike on the return path longer than the RTO: T3 fires, then
 * the held SACKs arrive sooner than min_rtt after the resend, so they
 * acked the original: a spurious RTO, undone. */
static void test_spurious_rto_undo(void **state UNUSED)
{
	struct sctp_core_info before, in;

	setup(7, 1);
	before = info(0);
	R.hold_1 = 1;
	send_msgs(3, 1);
	for (int i = 0; i < 4000 && info(0).t3_expiries == 0; i++)
		sim_run(&S, S.now + 1);
	in = info(0);
	assert_int_equal(in.t3_expiries, 1);
	assert_true(in.cwnd < before.cwnd);
	release_held();
	sim_run(&S, S.now + 3000);
	in = info(0);
	assert_int_equal(in.spurious_rto, 1);
	assert_true(in.spurious_rtx >= 1);
	assert_true(in.undos >= 1);
	assert_true(in.cwnd >= before.cwnd);
	assert_int_equal(in.ssthresh, before.ssthresh);
	assert_int_equal(in.t3_expiries, 1);
	assert_int_equal(R.nrx, 3);
	finish();
}

/* A stable path over many round trips, request/response (the probe
 * and RTO timers run on every request) and bulk: nothing is resent. */
static void test_stable_no_spurious(void **state UNUSED)
{
	struct sctp_core_info in;

	setup(8, 1);
	R.echo = 1;
	send_msgs(1, 1);
	sim_run(&S, S.now + 500 * RTT);
	if (getenv("SCTPT_RECOVERY_DEBUG"))
		fprintf(stderr, "nrx %u tlp %u %u\n", R.nrx, info(0).tlp_probes,
		        info(1).tlp_probes);
	assert_true(R.nrx > 400);
	R.echo = 0;
	send_msgs(500, 5000);
	sim_run(&S, S.now + 10000);
	for (int id = 0; id < 2; id++) {
		in = info(id);
		assert_int_equal(in.retransmits, 0);
		assert_int_equal(in.t3_expiries, 0);
		assert_int_equal(in.tlp_probes, 0);
		assert_int_equal(in.lost_rack, 0);
		assert_int_equal(in.spurious_rtx, 0);
		assert_true(in.rto_ms < 300 + 1);
	}
	finish();
}

/* min_rtt follows a path that got longer (10 s window), and with it
 * reo_wnd and the ambiguous-ack test. */
static void test_min_rtt_window(void **state UNUSED)
{
	struct sctp_core_info in;

	setup(10, 0);
	S.delay_ms = 3 * ONE_WAY;
	R.echo = 1;
	send_msgs(1, 1);
	sim_run(&S, S.now + 5000);
	assert_int_equal(info(0).min_rtt_ms, RTT);
	sim_run(&S, S.now + 8000);
	in = info(0);
	if (getenv("SCTPT_RECOVERY_DEBUG"))
		fprintf(stderr, "nrx %u srtt %u min %u tlp %u rack %u t3 %u spur %u fast %u rtx %u\n", R.nrx, in.srtt_ms,
		        in.min_rtt_ms, in.tlp_probes, in.lost_rack, in.t3_expiries, in.spurious_rtx, in.fast_retransmits, in.retransmits);
	assert_int_equal(in.min_rtt_ms, 3 * RTT);
	assert_true(in.srtt_ms >= 3 * RTT - 10);
	/* The probe timer still ran on the old SRTT for a few round trips:
	 * those probes were needless, known as such when the original's
	 * ack came sooner than min_rtt after them, and cost no cwnd.  Their
	 * acks still gave RTT samples (two copies, timed apart). */
	assert_true(in.tlp_probes >= 1 && in.tlp_probes <= 3);
	assert_int_equal(in.retransmits, in.tlp_probes);
	assert_int_equal(in.spurious_rtx, in.tlp_probes);
	assert_int_equal(in.tlp_losses, 0);
	assert_int_equal(in.undos, 0);
	assert_int_equal(in.t3_expiries, 0);
	assert_true(in.reo_wnd_ms >= 3 * RTT / 4 && in.reo_wnd_ms <= in.srtt_ms);
	finish();
}

/* The RTO from the samples: SRTT + max(4 RTTVAR, 10 ms) + the peer's
 * SACK delay, above the configured floor. */
static void test_rto_formula(void **state UNUSED)
{
	struct sctp_core_config a = sim_config(0), b = sim_config(1);
	struct sctp_core_info in;

	memset(&R, 0, sizeof(R));
	a.rto_min_ms = b.rto_min_ms = 50;
	sim_init(&S, 9);
	S.delay_ms = 100;
	assert_non_null(sim_attach(&S, 0, &a, 9));
	assert_non_null(sim_attach(&S, 1, &b, 9));
	S.event_hook = hook;
	S.after_step = after_step;
	assert_int_equal(sctp_core_connect(S.side[0].a, S.now), 0);
	sim_run(&S, S.now + 3000);
	for (int i = 0; i < 40; i++) {
		send_msgs(2, 1);
		sim_run(&S, S.now + 400);
	}
	in = info(0);
	assert_int_equal(in.srtt_ms, 200);
	assert_true(in.rttvar_ms < 3);
	assert_int_equal(in.rto_ms, 200 + 10 + 20);
	finish();
}

/*
 * Failure detection (docs/sctp-engine.md, "Failure detection").  The
 * glue's tuning: RTO floor 50 ms, RTO.Max 2 s, Max.Retrans 8; with
 * RTO.Max at 200 ms here the 9 expiries RFC 9260 needs come within
 * ~1.5 s of a cut, far before the failure time.
 */
#define FAIL_MIN 5000
static void fail_tuning(uint32_t fail_min)
{
	T.rto_min = 50;
	T.rto_max = 200;
	T.max_retrans = 8;
	T.fail_min = fail_min;
}

/* Time from now until side 0's DOWN (UINT64_MAX: none within `ms`). */
static uint64_t time_to_down(uint64_t ms)
{
	uint64_t t0 = S.now;
	const struct sim_ev *ev;

	sim_run(&S, S.now + ms);
	ev = sim_last_ev(&S.side[0], SCTP_EV_DOWN);
	if (ev == NULL)
		return UINT64_MAX;
	assert_int_equal(ev->ev.reason, SCTP_DOWN_PEER_UNREACHABLE);
	return ev->at - t0;
}

/* A path cut with data outstanding: without a failure time the count
 * alone ends the association within ~1.5 s (RFC 9260 as written)... */
static void test_fail_count_only(void **state UNUSED)
{
	uint64_t t;

	fail_tuning(0);
	setup(21, 0);
	S.loss_pct = 100;
	send_msgs(3, 1);
	t = time_to_down(20000);
	assert_true(t != UINT64_MAX);
	assert_true(t <= 2000);
	assert_int_equal(info(0).t3_expiries, 9);
	finish();
}

/* ...with one it takes the failure time, no less, and at most one
 * RTO.Max (plus the first RTO) more: time, not the RTO floor, decides. */
static void test_fail_time_min(void **state UNUSED)
{
	uint64_t t;

	fail_tuning(FAIL_MIN);
	setup(22, 0);
	S.loss_pct = 100;
	send_msgs(3, 1);
	t = time_to_down(30000);
	if (getenv("SCTPT_RECOVERY_DEBUG"))
		fprintf(stderr, "down after %llu ms, %u T3\n",
		        (unsigned long long)t, info(0).t3_expiries);
	assert_true(t != UINT64_MAX);
	assert_true(t >= FAIL_MIN);
	assert_true(t <= FAIL_MIN + 300 + 200 + 50);
	assert_true(info(0).t3_expiries > 9);
	finish();
}

/* A cut shorter than the failure time but longer than the count (a
 * path failover): the association lives on, everything is delivered
 * once the path is back, and the error count starts again. */
static void test_fail_outage_survived(void **state UNUSED)
{
	struct sctp_core_info in;

	fail_tuning(FAIL_MIN);
	setup(23, 0);
	S.loss_pct = 100;
	send_msgs(3, 1);
	sim_run(&S, S.now + 3000);
	assert_true(info(0).t3_expiries > 9);
	assert_null(sim_last_ev(&S.side[0], SCTP_EV_DOWN));
	S.loss_pct = 0;
	sim_run(&S, S.now + 1000);
	in = info(0);
	assert_null(sim_last_ev(&S.side[0], SCTP_EV_DOWN));
	assert_int_equal(R.nrx, 3);
	assert_int_equal(in.outstanding_tsns, 0);
	assert_int_equal(in.error_count, 0);
	/* A second cut is timed afresh from its own first expiry. */
	S.loss_pct = 100;
	send_msgs(1, 10);
	assert_true(time_to_down(30000) >= FAIL_MIN);
	finish();
}

/* Heartbeats on an idle association obey the same failure time. */
static void test_fail_time_heartbeat(void **state UNUSED)
{
	struct sctp_core_config a, b;
	const struct sim_ev *ev;
	uint64_t t0;

	memset(&R, 0, sizeof(R));
	a = sim_config(0);
	b = sim_config(1);
	a.rto_min_ms = b.rto_min_ms = 50;
	a.rto_max_ms = b.rto_max_ms = 200;
	a.max_retrans = b.max_retrans = 4;
	a.fail_min_ms = b.fail_min_ms = FAIL_MIN;
	a.hb_interval_ms = b.hb_interval_ms = 100;
	sim_init(&S, 24);
	S.delay_ms = ONE_WAY;
	assert_non_null(sim_attach(&S, 0, &a, 24));
	assert_non_null(sim_attach(&S, 1, &b, 24));
	assert_int_equal(sctp_core_connect(S.side[0].a, S.now), 0);
	sim_run(&S, S.now + 2000);
	assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_ESTABLISHED);
	S.loss_pct = 100;
	t0 = S.now;
	sim_run(&S, S.now + 30000);
	ev = sim_last_ev(&S.side[0], SCTP_EV_DOWN);
	assert_non_null(ev);
	assert_int_equal(ev->ev.reason, SCTP_DOWN_PEER_UNREACHABLE);
	/* The first probe goes out within interval + 1.5 RTO of the cut,
	 * unanswered after an RTO; then FAIL_MIN, then at most one more
	 * probe round. */
	assert_true(ev->at - t0 >= FAIL_MIN);
	assert_true(ev->at - t0 <= FAIL_MIN + 2 * (100 + 300 + 200));
	sim_free(&S);
}

/* The glue's 50 ms floor on a short path (1 ms each way, where the
 * formula gives ~32 ms and the floor decides): request/response and
 * bulk with no loss fire no RTO and no probe. */
static void test_stable_floor50(void **state UNUSED)
{
	struct sctp_core_info in;

	T.rto_min = 50;
	T.one_way = 1;
	setup(25, 1);
	R.echo = 1;
	send_msgs(1, 1);
	sim_run(&S, S.now + 5000);
	assert_true(R.nrx > 150);
	R.echo = 0;
	send_msgs(500, 5000);
	sim_run(&S, S.now + 5000);
	for (int id = 0; id < 2; id++) {
		in = info(id);
		assert_int_equal(in.retransmits, 0);
		assert_int_equal(in.t3_expiries, 0);
		assert_int_equal(in.spurious_rto, 0);
		assert_int_equal(in.rto_ms, 50);
	}
	finish();
}

/* Heartbeats run beside T3 in an outage; a probe's timeout backs off
 * the RTO it was sent with, and must never undo T3's further backoff:
 * through an outage the RTO only grows, and T3 fires no more often
 * than its own doubling allows. */
static void test_hb_keeps_t3_backoff(void **state UNUSED)
{
	uint32_t last = 0;

	T.rto_min = 50;
	T.rto_max = 4000;
	T.max_retrans = 30;
	T.hb = 300;
	setup(26, 0);
	S.loss_pct = 100;
	send_msgs(3, 1);
	for (int i = 0; i < 600; i++) {
		uint32_t r;

		sim_run(&S, S.now + 10);
		r = info(0).rto_ms;
		assert_true(r >= last);
		last = r;
	}
	assert_null(sim_last_ev(&S.side[0], SCTP_EV_DOWN));
	assert_true(last >= 1600);
	/* 6 s: 50+100+...+1600 = 3.15 s, then 3.2 s: at most 7 T3. */
	assert_true(info(0).t3_expiries <= 7);
	finish();
}

/* A path back after an outage, probed at once (what the glue does when
 * the wire layer moves to another path): the probe's answer brings T3,
 * backed off to seconds, forward to the fresh RTO, so the data waiting
 * goes within a few round trips instead of at the next backed-off T3. */
static void test_probe_answer_brings_t3_forward(void **state UNUSED)
{
	uint64_t back;
	uint32_t id;

	T.rto_min = 50;
	T.rto_max = 4000;
	T.max_retrans = 30;
	T.fail_min = 20000;
	setup(27, 0);
	S.loss_pct = 100;
	send_msgs(3, 1);
	sim_run(&S, S.now + 3000);     /* T3 backed off: 80, 160, ... 2560 ms */
	assert_true(info(0).rto_ms >= 2000);
	S.loss_pct = 0;
	back = S.now;
	assert_int_equal(sctp_core_probe(S.side[0].a, S.now, &id), 0);
	sim_run(&S, S.now + 1000);
	assert_int_equal(R.nrx, 3);
	/* Probe and answer (1 RTT), the fresh RTO (SRTT + 10 + 20 ms, at
	 * least 50), the resend's one way; well under the backed-off T3. */
	assert_true(delivered_at(3) - back <= 2 * RTT + 100 + ONE_WAY + 10);
	assert_null(sim_last_ev(&S.side[0], SCTP_EV_DOWN));
	finish();
}

/* ---- Over a reliable carrier (sctp_core_set_reliable) ---- */

#define REL_WND (384 * 1024)

static void set_reliable(int on)
{
	for (int id = 0; id < 2; id++)
		sctp_core_set_reliable(S.side[id].a, on, REL_WND, S.now);
}

/*
 * What TCP under us looks like to SCTP: no loss, no reordering, but a
 * delay that jumps with TCP's queues (here from 25 to 400 ms each way,
 * sixteen times min_rtt).  On a reliable carrier nothing goes out twice
 * and the whole burst leaves at once (no cwnd); on a datagram path the
 * same jump makes the probe and RACK resend (the scenario can fail).
 */
static void reliable_delay_jump(int reliable, struct sctp_core_info *out,
                                unsigned *sent_at_once)
{
	setup(31, 0);
	if (reliable)
		set_reliable(1);
	S.delay_ms = 400;
	send_msgs(300, 3000);
	sim_run(&S, S.now + 1);
	*sent_at_once = R.ntx;
	sim_run(&S, S.now + 20000);
	assert_int_equal(R.nrx, 300);
	*out = info(0);
	assert_int_equal(out->outstanding_tsns, 0);
	finish();
}

static void test_reliable_no_spurious_no_cwnd(void **state UNUSED)
{
	struct sctp_core_info in;
	unsigned at_once;

	reliable_delay_jump(1, &in, &at_once);
	assert_int_equal(in.reliable, 1);
	assert_string_equal(in.cc_name, "carrier");
	assert_int_equal(in.cwnd, REL_WND);
	assert_int_equal(at_once, 300);            /* 300 KB in one go */
	assert_int_equal(in.retransmits, 0);
	assert_int_equal(in.tlp_probes, 0);
	assert_int_equal(in.lost_rack, 0);
	assert_int_equal(in.t3_expiries, 0);
	assert_true(in.rto_ms >= SCTP_CORE_RELIABLE_RTO_MIN_MS ||
	            in.rto_ms >= in.srtt_ms);

	/* The control: the same path seen as datagrams. */
	reliable_delay_jump(0, &in, &at_once);
	assert_int_equal(in.reliable, 0);
	assert_true(at_once < 300);
	assert_true(in.retransmits > 0);
}

/* A frame the carrier dropped at its output cap: the SACK's gap shows
 * it (reordering seen before or not), it is resent within about a round
 * trip, without T3, and the window stays. */
static void test_reliable_carrier_drop(void **state UNUSED)
{
	struct sctp_core_info in;
	uint32_t lost;
	uint64_t t0, at = 0;

	setup(32, 0);
	set_reliable(1);
	lost = info(0).next_tsn + 5;
	R.drop_tsn = lost;
	R.drop_n = 1;
	t0 = S.now;
	send_msgs(40, 4000);
	sim_run(&S, S.now + 5000);
	assert_int_equal(R.nrx, 40);
	assert_int_equal(sends_of(lost, &at), 2);
	assert_true(at - t0 <= RTT + 20);
	in = info(0);
	assert_int_equal(in.fast_retransmits, 1);
	assert_int_equal(in.t3_expiries, 0);
	assert_int_equal(in.tlp_probes, 0);
	assert_int_equal(in.cwnd, REL_WND);
	assert_int_equal(in.outstanding_tsns, 0);
	finish();
}

/* SACKs: one per SCTP_RELIABLE_SACK_FREQ packets on a reliable carrier,
 * against one per two on datagrams. */
static void test_reliable_fewer_sacks(void **state UNUSED)
{
	unsigned before, rel, dgram;

	setup(33, 0);
	set_reliable(1);
	before = info(1).sacks_sent;
	send_msgs(320, 6000);
	sim_run(&S, S.now + 5000);
	assert_int_equal(R.nrx, 320);
	rel = info(1).sacks_sent - before;
	set_reliable(0);
	before = info(1).sacks_sent;
	send_msgs(320, 7000);
	sim_run(&S, S.now + 10000);
	assert_int_equal(R.nrx, 640);
	dgram = info(1).sacks_sent - before;
	assert_true(rel <= 320 / 16 + 10);
	assert_true(dgram >= 320 / 2 - 10);
	finish();
}

/* Back on datagrams: the configured controller again, from slow start;
 * the RACK, TLP and T3 rules of a datagram path (a tail loss is probed). */
static void test_reliable_back_to_datagrams(void **state UNUSED)
{
	struct sctp_core_info in;
	const char *name;
	uint32_t lost;

	setup(34, 0);
	name = info(0).cc_name;
	set_reliable(1);
	send_msgs(50, 8000);
	sim_run(&S, S.now + 2000);
	set_reliable(0);
	in = info(0);
	assert_int_equal(in.reliable, 0);
	assert_string_equal(in.cc_name, name);
	assert_true(in.cwnd <= 4 * 1200);
	/* A lost tail is found by the probe again. */
	lost = in.next_tsn + 2;
	R.drop_tsn = lost;
	R.drop_n = 1;
	send_msgs(3, 9000);
	sim_run(&S, S.now + 3000);
	assert_int_equal(R.nrx, 53);
	assert_int_equal(info(0).tlp_probes, 1);
	assert_int_equal(info(0).t3_expiries, 0);
	finish();
}

/* A slow TCP under us (10 KB/s here, the whole window queued in it):
 * T3 does not fire on the queueing delay, nothing goes out twice. */
static void test_reliable_slow_carrier(void **state UNUSED)
{
	struct sctp_core_info in;

	setup(35, 0);
	set_reliable(1);
	S.bw_bytes_per_ms = 10;
	send_msgs(100, 11000);
	sim_run(&S, S.now + 30000);
	assert_int_equal(R.nrx, 100);
	in = info(0);
	assert_int_equal(in.t3_expiries, 0);
	assert_int_equal(in.retransmits, 0);
	assert_int_equal(in.outstanding_tsns, 0);
	assert_int_equal(S.queue_drops, 0);
	finish();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rack_middle),
		cmocka_unit_test(test_rack_lost_retransmission),
		cmocka_unit_test(test_tlp_tail),
		cmocka_unit_test(test_tlp_new_data),
		cmocka_unit_test(test_reorder_within),
		cmocka_unit_test(test_reorder_beyond_undo),
		cmocka_unit_test(test_spurious_rto_undo),
		cmocka_unit_test(test_stable_no_spurious),
		cmocka_unit_test(test_min_rtt_window),
		cmocka_unit_test(test_rto_formula),
		cmocka_unit_test(test_fail_count_only),
		cmocka_unit_test(test_fail_time_min),
		cmocka_unit_test(test_fail_outage_survived),
		cmocka_unit_test(test_fail_time_heartbeat),
		cmocka_unit_test(test_stable_floor50),
		cmocka_unit_test(test_hb_keeps_t3_backoff),
		cmocka_unit_test(test_probe_answer_brings_t3_forward),
		cmocka_unit_test(test_reliable_no_spurious_no_cwnd),
		cmocka_unit_test(test_reliable_carrier_drop),
		cmocka_unit_test(test_reliable_fewer_sacks),
		cmocka_unit_test(test_reliable_back_to_datagrams),
		cmocka_unit_test(test_reliable_slow_carrier),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
