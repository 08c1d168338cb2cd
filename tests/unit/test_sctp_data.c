/*
 * Unit tests for data transfer in the native association core
 * (src/sctp/assoc_send.c, assoc_recv.c, assoc_sack.c, assoc_rtx.c): two
 * cores on the simulated network of sctp_sim.h with a virtual clock and
 * fixed seeds.  Many messages on many streams both ways through loss,
 * duplication, reordering, delay and a bandwidth limit, with invariants
 * checked after every call into a core:
 *   - every message delivered exactly once, whole, and in order per
 *     stream (unordered ones exactly once);
 *   - T3-rtx running if and only if a TSN is outstanding;
 *   - no SACK acknowledges a TSN that was never sent;
 *   - the send buffer and the receive buffer within their limits.
 * Also: large messages (DATA and I-DATA), a stalled receiver (zero
 * window) that resumes, back-pressure (WOULD_BLOCK, WRITABLE), a peer
 * acking TSNs never sent (ABORT), Association.Max.Retrans.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "sctp/assoc.h"
#include "sctp/packet.h"
#include "util/bytes.h"
#include "sctp_sim.h"

#define UNUSED __attribute__((unused))
#define NSTREAMS 10
#define MAXU 4096                  /* unordered messages tracked per side */

static struct sim S;

struct xside {
	/* sending */
	uint32_t total, sent;
	uint32_t next_idx[NSTREAMS];
	uint32_t next_uidx;
	int have_pending;
	uint16_t p_sid;
	uint32_t p_idx;
	int p_unord;
	size_t p_len;
	uint64_t rng;
	unsigned blocked, writable;
	/* receiving */
	uint32_t expect_idx[NSTREAMS];
	uint8_t useen[MAXU];
	uint32_t rcvd;
	uint64_t rcvd_bytes;
	size_t unconsumed;
	int consume;
	uint32_t hi_tsn;            /* highest TSN this side sent */
	int have_hi;
	unsigned bad_sacks;
};

static struct {
	struct xside x[2];
	size_t min_len, max_len;
	unsigned unord_pct;
	uint32_t sndbuf, a_rwnd;
	uint16_t mtu;
	unsigned steps;
} X;

static uint8_t pattern(uint16_t sid, uint32_t idx, size_t len, size_t j)
{
	return (uint8_t)(sid * 31u + idx * 7u + j * 13u + len * 3u + (j >> 8));
}

static void on_data(int id, const struct sctp_core_event *ev)
{
	struct xside *x = &X.x[id];
	uint32_t idx = ev->ppid & 0x7fffffffu;
	int unord = (ev->ppid >> 31) != 0;

	assert_true(ev->sid < NSTREAMS);
	assert_int_equal(unord, ev->unordered);
	for (size_t j = 0; j < ev->len; j++)
		if (ev->data[j] != pattern(ev->sid, idx, ev->len, j))
			fail_msg("side %d sid %u idx %u: byte %zu of %zu wrong",
			         id, ev->sid, idx, j, ev->len);
	if (unord) {
		assert_true(idx < MAXU);
		assert_int_equal(x->useen[idx], 0);
		x->useen[idx] = 1;
	} else {
		assert_int_equal(idx, x->expect_idx[ev->sid]);
		x->expect_idx[ev->sid]++;
	}
	x->rcvd++;
	x->rcvd_bytes += ev->len;
	x->unconsumed += ev->len;
}

static void hook(struct sim *s, int id, const struct sctp_core_event *ev)
{
	(void)s;
	if (ev->type == SCTP_EV_DATA)
		on_data(id, ev);
	else if (ev->type == SCTP_EV_WRITABLE)
		X.x[id].writable++;
}

static void fill(int id)
{
	struct xside *x = &X.x[id];
	struct sctp_core *a = S.side[id].a;
	uint8_t buf[256 * 1024];

	while (a != NULL && sctp_core_state(a) == SCTP_S_ESTABLISHED &&
	       x->sent < x->total) {
		struct sctp_core_info in;
		int rc;

		if (!x->have_pending) {
			uint64_t r = sim_rand(&x->rng);

			x->p_len = X.min_len + r % (X.max_len - X.min_len + 1);
			x->p_unord = (r >> 32) % 100 < X.unord_pct &&
			             x->next_uidx < MAXU;
			x->p_sid = (uint16_t)((r >> 40) % NSTREAMS);
			x->p_idx = x->p_unord ? x->next_uidx :
			                        x->next_idx[x->p_sid];
			x->have_pending = 1;
		}
		/* Writing the payload takes long: not when it would block
		 * (the core refuses before reading it). */
		sctp_core_get_info(a, &in);
		if (in.sndbuf_used + x->p_len <= X.sndbuf)
			for (size_t j = 0; j < x->p_len; j++)
				buf[j] = pattern(x->p_sid, x->p_idx, x->p_len, j);
		rc = sctp_core_send(a, x->p_sid,
		                    x->p_idx | (x->p_unord ? 0x80000000u : 0),
		                    x->p_unord, buf, x->p_len, S.now);
		if (rc == SCTP_CORE_WOULD_BLOCK) {
			x->blocked++;
			return;
		}
		assert_int_equal(rc, 0);
		x->have_pending = 0;
		if (x->p_unord)
			x->next_uidx++;
		else
			x->next_idx[x->p_sid]++;
		x->sent++;
	}
}

static void check_side(int id)
{
	struct sctp_core *a = S.side[id].a;
	struct sctp_core_info in;

	if (a == NULL)
		return;
	sctp_core_get_info(a, &in);
	if (sctp_core_state(a) >= SCTP_S_ESTABLISHED)
		assert_int_equal(in.t3_running, in.outstanding_tsns != 0);
	assert_true(in.sndbuf_used <= X.sndbuf);
	assert_true(in.rcv_buffered <= (size_t)X.a_rwnd + 4 * X.mtu);
	assert_true(in.rcv_overhead <= (size_t)X.a_rwnd);
	assert_true(in.outstanding_tsns <= 4096);
	assert_int_equal(X.x[id].bad_sacks, 0);
}

static void after_step(struct sim *s)
{
	(void)s;
	X.steps++;
	for (int id = 0; id < 2; id++) {
		check_side(id);
		if (X.x[id].consume && X.x[id].unconsumed > 0 &&
		    S.side[id].a != NULL) {
			size_t n = X.x[id].unconsumed;

			X.x[id].unconsumed = 0;
			sctp_core_consume(S.side[id].a, n, S.now);
		}
		fill(id);
	}
}

/* Sees every packet before the link: records TSNs sent, checks SACKs. */
static int watch(struct sim *s, int from, uint8_t *p, size_t *n)
{
	struct sctp_packet pkt;
	struct sctp_chunk_iter it;
	struct sctp_chunk c;
	struct xside *me = &X.x[from], *peer = &X.x[!from];

	(void)s;
	assert_true(*n <= X.mtu);
	if (sctp_packet_parse(p, *n, &pkt) != 0)
		return 0;
	sctp_chunk_iter_init(&it, &pkt);
	while (sctp_chunk_next(&it, &c) == 1) {
		struct sctp_data d;
		struct sctp_sack sk;

		if ((c.type == SCTP_CT_DATA && sctp_data_parse(&c, &d) == 0) ||
		    (c.type == SCTP_CT_I_DATA && sctp_idata_parse(&c, &d) == 0)) {
			if (!me->have_hi || (int32_t)(d.tsn - me->hi_tsn) > 0)
				me->hi_tsn = d.tsn;
			me->have_hi = 1;
		} else if (c.type == SCTP_CT_SACK &&
		           sctp_sack_parse(&c, &sk) == 0 && peer->have_hi) {
			uint32_t top = sk.cum_tsn;

			for (unsigned i = 0; i < sk.ngaps; i++) {
				uint16_t st, en;

				sctp_sack_gap(&sk, i, &st, &en);
				if ((int32_t)(sk.cum_tsn + en - top) > 0)
					top = sk.cum_tsn + en;
			}
			if ((int32_t)(top - peer->hi_tsn) > 0)
				me->bad_sacks++;
		}
	}
	return 0;
}

static struct sctp_core_config cfg(int id, int idata)
{
	struct sctp_core_config c = sim_config(id);

	c.idata = idata;
	c.rto_initial_ms = 300;
	c.rto_min_ms = 100;
	c.rto_max_ms = 2000;
	c.sndbuf = X.sndbuf;
	c.a_rwnd = X.a_rwnd;
	c.mtu = X.mtu;
	return c;
}

/* A test may set this before setup(): the MTU of both sides (0: 1200). */
static uint16_t mtu_override;

static void setup(uint64_t seed, int idata)
{
	struct sctp_core_config a, b;

	memset(&X, 0, sizeof(X));
	X.min_len = 1;
	X.max_len = 3000;
	X.unord_pct = 20;
	X.sndbuf = 256 * 1024;
	X.a_rwnd = 128 * 1024;
	X.mtu = mtu_override != 0 ? mtu_override : 1200;
	for (int i = 0; i < 2; i++) {
		X.x[i].rng = seed * 977 + 13 + (uint64_t)i;
		X.x[i].consume = 1;
	}
	a = cfg(0, idata);
	b = cfg(1, idata);
	sim_init(&S, seed);
	assert_non_null(sim_attach(&S, 0, &a, seed));
	assert_non_null(sim_attach(&S, 1, &b, seed));
	S.event_hook = hook;
	S.filter = watch;
	assert_int_equal(sctp_core_connect(S.side[0].a, S.now), 0);
	sim_run(&S, S.now + 5000);
	assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_ESTABLISHED);
	assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_ESTABLISHED);
	assert_true(sim_tags_consistent(&S));
	assert_int_equal(sim_count_ev(&S.side[0], SCTP_EV_UP), 1);
	assert_true(sim_sent_at(&S, 0, SCTP_CT_INIT, 0) != UINT64_MAX);
	S.after_step = after_step;
}

static int all_done(void)
{
	return X.x[0].rcvd == X.x[1].total && X.x[1].rcvd == X.x[0].total;
}

/* Runs until every message arrived, then closes gracefully. */
static void run_and_close(uint64_t limit_ms)
{
	uint64_t end = S.now + limit_ms;

	fill(0);
	fill(1);
	while (!all_done() && S.now < end) {
		sim_run(&S, S.now + 50);
		if (getenv("SCTPT_DATA_DEBUG") && S.now % 5000 == 0)
			for (int i = 0; i < 2; i++) {
				struct sctp_core_info in;

				sctp_core_get_info(S.side[i].a, &in);
				fprintf(stderr, "t=%llu side %d st %d cwnd %u flight %u out %u t3 %u/%d rtx %u fast %u rto %u peer_rwnd %u rwnd %u buf %zu snd %zu rcvd %u drop %u\n",
				        (unsigned long long)S.now, i, sctp_core_state(S.side[i].a), in.cwnd, in.flight, in.outstanding_tsns, in.t3_expiries, in.t3_running, in.retransmits, in.fast_retransmits, in.rto_ms, in.peer_rwnd, in.rwnd, in.rcv_buffered, in.sndbuf_used, X.x[i].rcvd, in.rcv_dropped);
			}
	}
	if (!all_done())
		fail_msg("after %llu ms: side 0 got %u of %u, side 1 got %u of %u",
		         (unsigned long long)limit_ms, X.x[0].rcvd, X.x[1].total,
		         X.x[1].rcvd, X.x[0].total);
	if (getenv("SCTPT_DATA_DEBUG"))
		for (int i = 0; i < 2; i++) {
			struct sctp_core_info in;

			sctp_core_get_info(S.side[i].a, &in);
			fprintf(stderr, "done t=%llu side %d rtx %u rack %u 3-miss %u tlp %u/%u t3 %u spurious %u (rto %u) undos %u srtt %u min %u reo %u\n",
			        (unsigned long long)S.now, i, in.retransmits, in.lost_rack, in.fast_retransmits, in.tlp_probes, in.tlp_losses, in.t3_expiries, in.spurious_rtx, in.spurious_rto, in.undos, in.srtt_ms, in.min_rtt_ms, in.reo_wnd_ms);
		}
	assert_int_equal(sctp_core_shutdown(S.side[0].a, S.now), 0);
	sim_run(&S, S.now + 60000);
	for (int i = 0; i < 2; i++) {
		const struct sim_ev *ev = sim_last_ev(&S.side[i], SCTP_EV_DOWN);

		assert_non_null(ev);
		assert_int_equal(ev->ev.reason, SCTP_DOWN_SHUTDOWN);
	}
}

static void finish(void)
{
	S.after_step = NULL;
	S.event_hook = NULL;
	sim_free(&S);
}

static void test_basic(void **state UNUSED)
{
	for (int idata = 0; idata < 2; idata++) {
		struct sctp_core_info in;

		setup(1, idata);
		X.x[0].total = 50;
		X.x[1].total = 50;
		run_and_close(10000);
		sctp_core_get_info(S.side[0].a, &in);
		assert_int_equal(in.retransmits, 0);
		assert_int_equal(in.t3_expiries, 0);
		/* Lossless and without duplicates: every SACK one side sent
		 * is one the other side counted, both ways. */
		for (int i = 0; i < 2; i++) {
			struct sctp_core_info me, peer;

			sctp_core_get_info(S.side[i].a, &me);
			sctp_core_get_info(S.side[1 - i].a, &peer);
			assert_true(me.sacks_received > 0);
			assert_int_equal(me.sacks_received, peer.sacks_sent);
		}
		finish();
	}
}

/* Loss, duplication, reordering: both kinds of DATA, several seeds. */
static void lossy(unsigned loss, unsigned dup, unsigned jitter, unsigned seeds,
                  uint32_t msgs)
{
	for (int idata = 0; idata < 2; idata++)
		for (unsigned seed = 1; seed <= seeds; seed++) {
			setup(seed * 100 + loss, idata);
			S.loss_pct = loss;
			S.dup_pct = dup;
			S.jitter_ms = jitter;
			X.x[0].total = msgs;
			X.x[1].total = msgs;
			run_and_close(600000);
			finish();
		}
}

static void test_loss_1(void **state UNUSED)
{
	lossy(1, 1, 5, 3, 1500);
}

static void test_loss_5(void **state UNUSED)
{
	lossy(5, 2, 10, 3, 1000);
}

static void test_loss_20(void **state UNUSED)
{
	lossy(20, 5, 20, 2, 300);
}

/*
 * `sctpt --mtu 576` leaves 550 bytes for an SCTP packet once the wire
 * layer's 26 are taken: the core must run there (every packet within it,
 * messages fragmented), with loss.
 */
static void test_small_mtu(void **state UNUSED)
{
	mtu_override = 550;
	lossy(2, 1, 5, 2, 500);
}

static int reset_mtu(void **state UNUSED)
{
	mtu_override = 0;
	return 0;
}

/* A narrow link: the queue at the bottleneck drops when full. */
static void test_bandwidth(void **state UNUSED)
{
	for (int idata = 0; idata < 2; idata++) {
		setup(7, idata);
		S.bw_bytes_per_ms = 500;        /* 500 kB/s */
		S.delay_ms = 25;
		X.min_len = 500;
		X.max_len = 4000;
		X.x[0].total = 800;             /* ~1.8 MB */
		X.x[1].total = 20;
		run_and_close(120000);
		finish();
	}
}

/* Messages far above the MTU, fragmented and reassembled. */
static void test_large_messages(void **state UNUSED)
{
	for (int idata = 0; idata < 2; idata++) {
		setup(11, idata);
		X.a_rwnd = 256 * 1024;
		X.sndbuf = 512 * 1024;
		sctp_core_free(S.side[0].a);    /* again, with the bigger limits */
		sctp_core_free(S.side[1].a);
		S.side[0].a = S.side[1].a = NULL;
		{
			struct sctp_core_config a = cfg(0, idata), b = cfg(1, idata);

			S.after_step = NULL;
			assert_non_null(sim_attach(&S, 0, &a, 11));
			assert_non_null(sim_attach(&S, 1, &b, 11));
			assert_int_equal(sctp_core_connect(S.side[0].a, S.now), 0);
			sim_run(&S, S.now + 5000);
			S.after_step = after_step;
		}
		S.loss_pct = 3;
		S.jitter_ms = 5;
		X.min_len = 20000;
		X.max_len = 200000;
		X.unord_pct = 30;
		X.x[0].total = 25;
		X.x[1].total = 25;
		run_and_close(600000);
		finish();
	}
}

/* The receiver stops reading: the window closes, the sender probes, and
 * nothing is lost or aborted; then it reads again. */
static void test_zero_window(void **state UNUSED)
{
	for (int idata = 0; idata < 2; idata++) {
		struct sctp_core_info in;
		uint32_t before;

		setup(21, idata);
		X.min_len = 1000;
		X.max_len = 3000;
		X.x[1].consume = 0;
		X.x[0].total = 400;             /* ~800 kB, 6x the window */
		fill(0);
		sim_run(&S, S.now + 20000);
		sctp_core_get_info(S.side[1].a, &in);
		assert_true(in.rwnd < X.mtu);
		assert_true(in.rcv_buffered <= (size_t)X.a_rwnd + 4 * X.mtu);
		before = X.x[1].rcvd;
		assert_true(before < 400);
		assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_ESTABLISHED);
		sim_run(&S, S.now + 20000);
		assert_true(X.x[1].rcvd - before <= 3);
		X.x[1].consume = 1;
		run_and_close(600000);
		finish();
	}
}

/* A small send buffer: WOULD_BLOCK, then WRITABLE. */
static void test_would_block(void **state UNUSED)
{
	uint8_t buf[4000];

	setup(31, 1);
	X.sndbuf = 16 * 1024;
	memset(buf, 0, sizeof(buf));
	/* The cores keep their own copies of the limit: rebuild. */
	finish();
	memset(&X, 0, sizeof(X));
	X.sndbuf = 16 * 1024;
	X.a_rwnd = 128 * 1024;
	X.mtu = 1200;
	X.min_len = 3000;
	X.max_len = 4000;
	for (int i = 0; i < 2; i++) {
		X.x[i].rng = 5 + (uint64_t)i;
		X.x[i].consume = 1;
	}
	{
		struct sctp_core_config a = cfg(0, 1), b = cfg(1, 1);

		sim_init(&S, 31);
		assert_non_null(sim_attach(&S, 0, &a, 31));
		assert_non_null(sim_attach(&S, 1, &b, 31));
		S.event_hook = hook;
		S.filter = watch;
		assert_int_equal(sctp_core_connect(S.side[0].a, S.now), 0);
		sim_run(&S, S.now + 5000);
	}
	assert_int_equal(sctp_core_send(S.side[0].a, 0, 0, 0, buf, 20000, S.now), -1);
	assert_int_equal(sctp_core_send(S.side[0].a, 99, 0, 0, buf, 10, S.now), -1);
	assert_int_equal(sctp_core_send(S.side[0].a, 0, 0, 0, buf, 0, S.now), -1);
	S.after_step = after_step;
	X.x[0].total = 200;
	run_and_close(60000);
	assert_true(X.x[0].blocked > 0);
	assert_true(X.x[0].writable > 0);
	finish();
}

static void inject_sack(int to, uint32_t cum, uint16_t gap_end)
{
	struct sctp_core_info in;
	struct sctp_builder b;
	uint8_t pkt[256];
	uint16_t gaps[1][2] = { { 1, gap_end } };
	size_t n;

	sctp_core_get_info(S.side[to].a, &in);
	assert_int_equal(sctp_build_start(&b, pkt, sizeof(pkt),
	                 to ? 5000 : 5001, to ? 5001 : 5000, in.local_vtag), 0);
	assert_int_equal(sctp_build_sack(&b, cum, 65536,
	                 (const uint16_t (*)[2])gaps, gap_end ? 1 : 0, NULL, 0), 0);
	n = sctp_build_finish(&b, 0);
	sctp_core_input(S.side[to].a, pkt, n, S.now);
}

/* A SACK for TSNs never sent ends the association with an ABORT. */
static void test_sack_unsent(void **state UNUSED)
{
	for (int variant = 0; variant < 3; variant++) {
		const struct sim_ev *ev;
		unsigned aborts;

		setup(41 + (uint64_t)variant, variant & 1);
		S.after_step = NULL;
		if (variant > 0) {
			X.x[0].total = 5;
			fill(0);
			sim_run(&S, S.now + 1000);
			assert_true(X.x[0].have_hi);
		}
		aborts = sim_count_sent(&S, 0, SCTP_CT_ABORT);
		if (variant == 0) {             /* nothing sent yet */
			struct sctp_core_info in;

			sctp_core_get_info(S.side[0].a, &in);
			inject_sack(0, in.next_tsn, 0);
		}
		else if (variant == 1)          /* cum beyond the highest */
			inject_sack(0, X.x[0].hi_tsn + 1, 0);
		else                            /* a gap block beyond it */
			inject_sack(0, X.x[0].hi_tsn, 2);
		assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_CLOSED);
		ev = sim_last_ev(&S.side[0], SCTP_EV_DOWN);
		assert_non_null(ev);
		assert_int_equal(ev->ev.reason, SCTP_DOWN_PROTOCOL);
		assert_int_equal(sim_count_sent(&S, 0, SCTP_CT_ABORT), aborts + 1);
		finish();
	}
}

/* Every SACK lost: T3 backs off and Association.Max.Retrans ends it. */
static int drop_from_1(struct sim *s, int from, uint8_t *p, size_t *n)
{
	(void)s; (void)p; (void)n;
	return from == 1;
}

static void test_max_retrans(void **state UNUSED)
{
	struct sctp_core_info in;
	const struct sim_ev *ev;

	setup(51, 1);
	S.filter = drop_from_1;
	X.x[0].total = 3;
	fill(0);
	sim_run(&S, S.now + 600000);
	ev = sim_last_ev(&S.side[0], SCTP_EV_DOWN);
	assert_non_null(ev);
	assert_int_equal(ev->ev.reason, SCTP_DOWN_PEER_UNREACHABLE);
	sctp_core_get_info(S.side[0].a, &in);
	assert_int_equal(in.t3_expiries, 11);
	assert_int_equal(in.outstanding_tsns, 0);
	finish();
}

/* Steady flow without loss for 30 s: T3 never fires (it is restarted
 * when the earliest outstanding TSN is acked), nothing is resent. */
static void test_no_spurious_t3(void **state UNUSED)
{
	struct sctp_core_info in;

	setup(61, 1);
	X.min_len = 100;
	X.max_len = 1500;
	X.x[0].total = 30000;
	fill(0);
	for (int i = 0; i < 30; i++) {
		sim_run(&S, S.now + 1000);
		sctp_core_get_info(S.side[0].a, &in);
		if (getenv("SCTPT_DATA_DEBUG"))
			fprintf(stderr, "t=%llu cwnd %u flight %u out %u t3 %u rtx %u fast %u rto %u peer_rwnd %u rcvd %u b.drop %u\n",
			        (unsigned long long)S.now, in.cwnd, in.flight, in.outstanding_tsns, in.t3_expiries, in.retransmits, in.fast_retransmits, in.rto_ms, in.peer_rwnd, X.x[1].rcvd, 0u);
	}
	sctp_core_get_info(S.side[0].a, &in);
	assert_int_equal(in.t3_expiries, 0);
	assert_int_equal(in.retransmits, 0);
	assert_true(X.x[1].rcvd > 1000);
	assert_true(in.cwnd > 4 * 1200);
	finish();
}

/*
 * Not a test but a measurement: two cores wired to each other in memory
 * (no simulated network, no loss), 1100-byte messages one way, time per
 * packet either core handles.  It runs briefly in every test run; set
 * SCTPT_SCTP_BENCH=N to move N MB and print the figure.
 */
static struct {
	uint8_t q[2][512][1300];
	size_t len[2][512];
	unsigned n[2];
	uint64_t packets;
	size_t got;
	struct sctp_core *a[2];
	uint64_t rng[2];
	/* test_batch_sack: the receiver (side 1) takes each pump as a batch */
	int batch, in_batch;
	unsigned sacks, sacks_in_batch, data_pkts;
	unsigned drop_nth;              /* drop the Nth DATA packet (1-based) */
} BN;

/* Side 1's packet carries a SACK (first chunk or bundled). */
static int bn_has_sack(const uint8_t *p, size_t n)
{
	struct sctp_packet pkt;
	struct sctp_chunk_iter it;
	struct sctp_chunk c;

	if (sctp_packet_parse(p, n, &pkt) != 0)
		return 0;
	sctp_chunk_iter_init(&it, &pkt);
	while (sctp_chunk_next(&it, &c) == 1)
		if (c.type == SCTP_CT_SACK)
			return 1;
	return 0;
}

static void bn_out0(void *arg, const uint8_t *p, size_t n)
{
	(void)arg;
	if (BN.n[0] < 512 && n <= 1300) {
		memcpy(BN.q[0][BN.n[0]], p, n);
		BN.len[0][BN.n[0]++] = n;
	}
}

static void bn_out1(void *arg, const uint8_t *p, size_t n)
{
	(void)arg;
	if (bn_has_sack(p, n)) {
		BN.sacks++;
		BN.sacks_in_batch += BN.in_batch;
	}
	if (BN.n[1] < 512 && n <= 1300) {
		memcpy(BN.q[1][BN.n[1]], p, n);
		BN.len[1][BN.n[1]++] = n;
	}
}

static void bn_rand(void *arg, uint8_t *p, size_t n)
{
	uint64_t *r = arg;

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(sim_rand(r) >> 56);
}

static void bn_event(void *arg, const struct sctp_core_event *ev)
{
	(void)arg;
	if (ev->type == SCTP_EV_DATA)
		BN.got += ev->len;
}

static void bn_pump(uint64_t now)
{
	static uint8_t batch[512][1300];
	static size_t blen[512];

	for (int from = 0; from < 2; from++) {
		unsigned n = BN.n[from];

		memcpy(batch, BN.q[from], n * sizeof(batch[0]));
		memcpy(blen, BN.len[from], n * sizeof(blen[0]));
		BN.n[from] = 0;
		if (BN.batch && from == 0) {
			sctp_core_batch_begin(BN.a[1]);
			BN.in_batch = 1;
		}
		for (unsigned i = 0; i < n; i++) {
			if (from == 0 && blen[i] > 200 &&
			    ++BN.data_pkts == BN.drop_nth)
				continue;
			sctp_core_input(BN.a[!from], batch[i], blen[i], now);
		}
		if (BN.batch && from == 0) {
			BN.in_batch = 0;
			sctp_core_batch_end(BN.a[1], now);
		}
		BN.packets += n;
	}
}

static uint64_t bn_setup(int batch, unsigned drop_nth)
{
	uint64_t now = 1;

	memset(&BN, 0, sizeof(BN));
	for (int i = 0; i < 2; i++) {
		struct sctp_core_config c = sim_config(i);
		struct sctp_core_env e;

		c.mtu = 1200;
		c.a_rwnd = 1024 * 1024;
		memset(&e, 0, sizeof(e));
		BN.rng[i] = 99 + (uint64_t)i;
		e.arg = &BN.rng[i];
		e.random = bn_rand;
		e.output = i ? bn_out1 : bn_out0;
		e.event = bn_event;
		e.secret = sim_secret[i];
		e.secret_len = sizeof(sim_secret[i]);
		assert_non_null(BN.a[i] = sctp_core_new(&c, &e));
	}
	assert_int_equal(sctp_core_connect(BN.a[0], now), 0);
	for (int i = 0; i < 4; i++)
		bn_pump(now);
	assert_int_equal(sctp_core_state(BN.a[0]), SCTP_S_ESTABLISHED);
	BN.batch = batch;
	BN.drop_nth = drop_nth;
	BN.sacks = BN.sacks_in_batch = BN.data_pkts = 0;
	return now;
}

/* Moves total bytes from side 0 to side 1; returns the clock after. */
static uint64_t bn_transfer(size_t total, uint64_t now)
{
	static uint8_t msg[1100];
	size_t sent = 0;

	while (BN.got < total) {
		while (sent < total &&
		       sctp_core_send(BN.a[0], (uint16_t)(sent % 7), 0, 0, msg,
		                      sizeof(msg), now) == 0)
			sent += sizeof(msg);
		bn_pump(now);
		sctp_core_consume(BN.a[1], BN.got, now);
		now++;
		if (sctp_core_next_deadline(BN.a[0]) <= now)
			sctp_core_timeout(BN.a[0], now);
		if (sctp_core_next_deadline(BN.a[1]) <= now)
			sctp_core_timeout(BN.a[1], now);
		if (sent >= total && BN.got < total && now > 1000000)
			fail_msg("transfer stalled at %zu of %zu", BN.got, total);
	}
	return now;
}

/*
 * Receive batches (sctp_core_batch_begin/end, one per carrier read): the
 * same transfer completes with at most 60 % of the SACKs of one per two
 * packets and in at most twice the round trips (slow start grows per
 * SACK, and here a whole flight is one batch, the worst case: 21 against
 * 15 today); a gap inside a batch is still reported at once, not at the
 * batch end.
 */
static void test_batch_sack(void **state UNUSED)
{
	const size_t total = 2 * 1024 * 1024;
	uint64_t t_plain, t_batch;
	unsigned s_plain, s_batch;

	t_plain = bn_transfer(total, bn_setup(0, 0));
	s_plain = BN.sacks;
	sctp_core_free(BN.a[0]);
	sctp_core_free(BN.a[1]);
	t_batch = bn_transfer(total, bn_setup(1, 0));
	s_batch = BN.sacks;
	sctp_core_free(BN.a[0]);
	sctp_core_free(BN.a[1]);
	if (getenv("SCTPT_DATA_DEBUG"))
		fprintf(stderr, "plain: %u SACKs, %llu ms; batched: %u SACKs, %llu ms\n",
		        s_plain, (unsigned long long)t_plain, s_batch,
		        (unsigned long long)t_batch);
	assert_true(s_plain > 0 && s_batch > 0);
	assert_true(5 * s_batch <= 3 * s_plain);
	assert_true(t_batch <= 2 * t_plain);

	/* One DATA packet lost mid-batch: the gap's SACK leaves inside it. */
	(void)bn_transfer(64 * 1100, bn_setup(1, 20));
	assert_true(BN.sacks_in_batch > 0);
	sctp_core_free(BN.a[0]);
	sctp_core_free(BN.a[1]);
}

static void test_bench(void **state UNUSED)
{
	const char *env = getenv("SCTPT_SCTP_BENCH");
	size_t total = (env != NULL ? (size_t)atoi(env) : 2) * 1024 * 1024;
	struct timespec t0, t1;
	uint64_t now, ns;

	now = bn_setup(0, 0);
	BN.packets = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	now = bn_transfer(total, now);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ULL +
	     (uint64_t)t1.tv_nsec - (uint64_t)t0.tv_nsec;
	if (env != NULL)
		printf("bench: %zu bytes, %llu packets, %.0f ns per packet, %.1f MB/s\n",
		       total, (unsigned long long)BN.packets,
		       (double)ns / (double)(BN.packets ? BN.packets : 1),
		       (double)total / ((double)ns / 1e9) / 1e6);
	sctp_core_free(BN.a[0]);
	sctp_core_free(BN.a[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_loss_1),
		cmocka_unit_test(test_loss_5),
		cmocka_unit_test(test_loss_20),
		cmocka_unit_test_teardown(test_small_mtu, reset_mtu),
		cmocka_unit_test(test_bandwidth),
		cmocka_unit_test(test_large_messages),
		cmocka_unit_test(test_zero_window),
		cmocka_unit_test(test_would_block),
		cmocka_unit_test(test_sack_unsent),
		cmocka_unit_test(test_max_retrans),
		cmocka_unit_test(test_no_spurious_t3),
		cmocka_unit_test(test_batch_sack),
		cmocka_unit_test(test_bench),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
