/*
 * Unit tests for the pure parts of `sctpt-lab impair`'s engine: the random
 * generator, the per-packet shaper (loss, duplication, rate limit, delay,
 * jitter, reordering, counters) and the delay line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lab/impair/pktq.h"
#include "lab/impair/rng.h"
#include "lab/impair/shaper.h"

static void test_rng_deterministic(void **state)
{
	struct impair_rng a, b, c;
	int differ = 0;

	impair_rng_seed(&a, 42);
	impair_rng_seed(&b, 42);
	impair_rng_seed(&c, 43);
	for (int i = 0; i < 1000; i++) {
		uint64_t x = impair_rng_next(&a);

		assert_int_equal(x, impair_rng_next(&b));
		differ |= x != impair_rng_next(&c);
	}
	assert_true(differ);
}

static void test_rng_distributions(void **state)
{
	struct impair_rng r;
	double sum = 0, sumsq = 0, nsum = 0, nsumsq = 0;
	const int n = 200000;

	impair_rng_seed(&r, 0);
	for (int i = 0; i < n; i++) {
		double u = impair_rng_uniform(&r);
		double g = impair_rng_normal(&r);

		assert_true(u >= 0.0 && u < 1.0);
		assert_true(g >= -6.0 && g <= 6.0);
		sum += u;
		sumsq += u * u;
		nsum += g;
		nsumsq += g * g;
	}
	assert_true(sum / n > 0.49 && sum / n < 0.51);
	assert_true(sumsq / n - (sum / n) * (sum / n) > 0.08 && sumsq / n < 0.34);
	assert_true(nsum / n > -0.02 && nsum / n < 0.02);
	assert_true(nsumsq / n > 0.97 && nsumsq / n < 1.03);
}

static void check_invariant(const struct impair_counters *c)
{
	assert_int_equal(c->dropped, c->dropped_loss + c->dropped_blackhole + c->queue_drops +
	                 c->dropped_overflow + c->dropped_other);
}

static void test_loss_and_dup_rates(void **state)
{
	struct impair_shaper sh;
	struct impair_dir_settings s;
	struct impair_fate f;
	const int n = 100000;
	uint64_t copies = 0;

	memset(&s, 0, sizeof(s));
	s.loss = 0.1;
	s.dup = 0.2;
	s.queue_bytes = 1 << 20;
	impair_shaper_init(&sh, 7);
	for (int i = 0; i < n; i++) {
		impair_shape(&sh, &s, 1000, 100, &f);
		assert_true(f.ncopies >= 0 && f.ncopies <= 2);
		for (int k = 0; k < f.ncopies; k++)
			assert_int_equal(f.due_us[k], 1000);   /* no delay: due at once */
		copies += (uint64_t)f.ncopies;
	}
	assert_int_equal(sh.c.seen, n);
	assert_int_equal(sh.c.bytes_seen, (uint64_t)n * 100);
	assert_true(sh.c.dropped_loss > 9500 && sh.c.dropped_loss < 10500);
	/* dup applies to the 90 % that survive loss */
	assert_true(sh.c.duplicated > 17400 && sh.c.duplicated < 18600);
	assert_int_equal(copies + sh.c.dropped, sh.c.seen + sh.c.duplicated);
	check_invariant(&sh.c);
}

static void test_same_seed_same_fates(void **state)
{
	struct impair_shaper a, b;
	struct impair_dir_settings s;
	struct impair_fate fa, fb;

	memset(&s, 0, sizeof(s));
	s.loss = 0.3;
	s.dup = 0.3;
	s.reorder = 0.3;
	s.reorder_ms = 10;
	s.delay_ms = 5;
	s.jitter_ms = 3;
	s.queue_bytes = 1 << 20;
	impair_shaper_init(&a, 99);
	impair_shaper_init(&b, 99);
	for (int i = 0; i < 10000; i++) {
		impair_shape(&a, &s, (uint64_t)i * 10, 200, &fa);
		impair_shape(&b, &s, (uint64_t)i * 10, 200, &fb);
		assert_int_equal(fa.ncopies, fb.ncopies);
		for (int k = 0; k < fa.ncopies; k++)
			assert_int_equal(fa.due_us[k], fb.due_us[k]);
	}
}

static void test_blackhole(void **state)
{
	struct impair_shaper sh;
	struct impair_dir_settings s;
	struct impair_fate f;

	memset(&s, 0, sizeof(s));
	s.blackhole = 1;
	s.dup = 1.0;
	impair_shaper_init(&sh, 1);
	for (int i = 0; i < 100; i++) {
		impair_shape(&sh, &s, 0, 10, &f);
		assert_int_equal(f.ncopies, 0);
	}
	assert_int_equal(sh.c.dropped_blackhole, 100);
	assert_int_equal(sh.c.duplicated, 0);
	check_invariant(&sh.c);
}

static void test_rate_limit_and_queue(void **state)
{
	struct impair_shaper sh;
	struct impair_dir_settings s;
	struct impair_fate f;

	memset(&s, 0, sizeof(s));
	s.rate_bps = 8000;          /* 1000 bytes per second */
	s.queue_bytes = 3000;
	impair_shaper_init(&sh, 1);
	/* four 1000-byte packets at t=0: three fit (done at 1, 2, 3 s), one drops */
	for (int i = 0; i < 4; i++) {
		impair_shape(&sh, &s, 0, 1000, &f);
		if (i < 3) {
			assert_int_equal(f.ncopies, 1);
			assert_int_equal(f.due_us[0], (uint64_t)(i + 1) * 1000000);
		} else {
			assert_int_equal(f.ncopies, 0);
		}
	}
	assert_int_equal(sh.c.queue_drops, 1);
	/* at t=2.5 s, 500 bytes are still ahead: a 1000-byte packet fits again */
	impair_shape(&sh, &s, 2500000, 1000, &f);
	assert_int_equal(f.ncopies, 1);
	assert_int_equal(f.due_us[0], 4000000);
	/* idle link: a packet leaves after its own transmission time only */
	impair_shape(&sh, &s, 10000000, 500, &f);
	assert_int_equal(f.due_us[0], 10500000);
	check_invariant(&sh.c);
}

static void test_delay_jitter_reorder(void **state)
{
	struct impair_shaper sh;
	struct impair_dir_settings s;
	struct impair_fate f;
	double sum = 0;
	const int n = 50000;
	uint64_t lo = UINT64_MAX, hi = 0;

	memset(&s, 0, sizeof(s));
	s.delay_ms = 20;
	s.jitter_ms = 5;
	s.queue_bytes = 1 << 20;
	impair_shaper_init(&sh, 3);
	for (int i = 0; i < n; i++) {
		impair_shape(&sh, &s, 1000000, 100, &f);
		assert_int_equal(f.ncopies, 1);
		sum += (double)(f.due_us[0] - 1000000);
		lo = f.due_us[0] - 1000000 < lo ? f.due_us[0] - 1000000 : lo;
		hi = f.due_us[0] - 1000000 > hi ? f.due_us[0] - 1000000 : hi;
	}
	assert_true(lo >= 15000 && lo < 15200);        /* uniform in [15, 25] ms */
	assert_true(hi <= 25000 && hi > 24800);
	assert_true(sum / n > 19900 && sum / n < 20100);

	/* normal: mean 20 ms, bounded at 6 sigma, never negative */
	s.jitter_dist = IMPAIR_JITTER_NORMAL;
	s.jitter_ms = 10;
	sum = 0;
	for (int i = 0; i < n; i++) {
		impair_shape(&sh, &s, 0, 100, &f);
		assert_true(f.due_us[0] <= 80000);
		sum += (double)f.due_us[0];
	}
	/* clamping at 0 raises the mean a little (P(X<0) = 2.3 %) */
	assert_true(sum / n > 19900 && sum / n < 20600);

	/* reorder: every packet held back by reorder_ms */
	memset(&s, 0, sizeof(s));
	s.reorder = 1.0;
	s.reorder_ms = 10;
	s.delay_ms = 1;
	impair_shape(&sh, &s, 0, 100, &f);
	assert_int_equal(f.due_us[0], 11000);
	assert_true(sh.c.reordered >= 1);
}

static void test_pktq_order_and_bounds(void **state)
{
	struct impair_pktq q;
	static const uint64_t dues[] = { 50, 10, 30, 10, 20, 50, 0, 40 };
	struct impair_pkt *p;
	uint64_t last_due = 0;
	uint8_t last_tag = 0;

	impair_pktq_init(&q, 8, 1000);
	for (size_t i = 0; i < 8; i++) {
		p = impair_pkt_new(10);
		assert_non_null(p);
		p->due_us = dues[i];
		p->data[0] = (uint8_t)i;
		assert_int_equal(impair_pktq_push(&q, p), 0);
	}
	p = impair_pkt_new(10);
	assert_int_equal(impair_pktq_push(&q, p), -1);     /* count bound */
	free(p);
	assert_int_equal(q.bytes, 80);
	for (size_t i = 0; i < 8; i++) {
		p = impair_pktq_pop(&q);
		assert_non_null(p);
		assert_true(p->due_us >= last_due);
		if (i > 0 && p->due_us == last_due)
			assert_true(p->data[0] > last_tag);      /* equal times keep arrival order */
		last_due = p->due_us;
		last_tag = p->data[0];
		free(p);
	}
	assert_null(impair_pktq_pop(&q));
	assert_int_equal(q.bytes, 0);
	/* byte bound */
	p = impair_pkt_new(999);
	assert_int_equal(impair_pktq_push(&q, p), 0);
	p = impair_pkt_new(2);
	assert_int_equal(impair_pktq_push(&q, p), -1);
	free(p);
	impair_pktq_clear(&q);
	assert_null(impair_pktq_peek(&q));
}

static void test_pktq_random_heap(void **state)
{
	struct impair_pktq q;
	struct impair_rng r;
	uint64_t last = 0;

	impair_rng_seed(&r, 5);
	impair_pktq_init(&q, 10000, 1 << 20);
	for (int i = 0; i < 5000; i++) {
		struct impair_pkt *p = impair_pkt_new(1);

		p->due_us = impair_rng_next(&r) % 1000;
		assert_int_equal(impair_pktq_push(&q, p), 0);
		if (i % 3 == 0) {
			/* interleave pops: each is the minimum of what is queued */
			struct impair_pkt *m = impair_pktq_pop(&q);

			for (size_t k = 0; k < q.n; k++)
				assert_true(q.heap[k]->due_us >= m->due_us);
			free(m);
		}
	}
	while (q.n > 0) {
		struct impair_pkt *p = impair_pktq_pop(&q);

		assert_true(p->due_us >= last);
		last = p->due_us;
		free(p);
	}
	impair_pktq_clear(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rng_deterministic),
		cmocka_unit_test(test_rng_distributions),
		cmocka_unit_test(test_loss_and_dup_rates),
		cmocka_unit_test(test_same_seed_same_fates),
		cmocka_unit_test(test_blackhole),
		cmocka_unit_test(test_rate_limit_and_queue),
		cmocka_unit_test(test_delay_jitter_reorder),
		cmocka_unit_test(test_pktq_order_and_bounds),
		cmocka_unit_test(test_pktq_random_heap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
