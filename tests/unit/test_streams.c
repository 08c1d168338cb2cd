/*
 * Unit tests for the two pure pieces of the stream multiplexer: the stream
 * table (src/mux/sidtable.c: which ids are taken, which to hand out next)
 * and the per-stream credit accounting (src/mux/credit.c, docs/streams.md
 * "Credit").  The last tests run a sender and a receiver against each other
 * through the accounting alone and check the promise the protocol makes:
 * a receiver never holds more than its window, and every byte arrives.
 *
 * Randomised tests use a fixed seed so a failure reproduces; set
 * SCTPT_TEST_SEED to try others.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>

#include <cmocka.h>

#include "mux/credit.h"
#include "mux/proto.h"
#include "mux/sidtable.h"

#define UNUSED __attribute__((unused))

/* ---- a small deterministic PRNG (splitmix64) ---- */

static uint64_t rng_state;

static void rng_seed(uint64_t def)
{
	const char *s = getenv("SCTPT_TEST_SEED");

	rng_state = s != NULL ? strtoull(s, NULL, 0) : def;
}

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in 0..n-1 (n > 0); the bias is irrelevant here. */
static size_t rnd(size_t n)
{
	return (size_t)(rng() % n);
}

/* Distinct non-NULL values to store in a table. */
static char values[4];
#define V0 ((void *)&values[0])
#define V1 ((void *)&values[1])
#define V2 ((void *)&values[2])

/* ======================= stream table ======================= */

static void test_sid_init(void **state UNUSED)
{
	struct sidtable t;

	assert_int_equal(sidtable_init(&t, 16), 0);
	assert_int_equal(t.n, 16);
	assert_int_equal(t.used, 0);
	for (unsigned sid = 0; sid <= 16; sid++)
		assert_null(sidtable_get(&t, sid));
	/* The first ids of each parity; stream 0 is reserved. */
	assert_int_equal(sidtable_alloc(&t, 1), 1);
	assert_int_equal(sidtable_alloc(&t, 0), 2);
	/* Any odd/even parity value is just its low bit. */
	assert_int_equal(sidtable_alloc(&t, 3), 1);
	assert_int_equal(sidtable_alloc(&t, 2), 2);
	/* alloc only proposes; it does not take the id. */
	assert_int_equal(sidtable_alloc(&t, 1), 1);
	assert_int_equal(t.used, 0);
	sidtable_free(&t);
	assert_null(t.slot);
	assert_int_equal(t.n, 0);
	assert_int_equal(t.used, 0);
	/* Freeing twice is harmless. */
	sidtable_free(&t);
}

static void test_sid_set_get_clear(void **state UNUSED)
{
	struct sidtable t;

	assert_int_equal(sidtable_init(&t, 16), 0);
	assert_int_equal(sidtable_set(&t, 3, V0), 0);
	assert_int_equal(sidtable_set(&t, 4, V1), 0);
	assert_ptr_equal(sidtable_get(&t, 3), V0);
	assert_ptr_equal(sidtable_get(&t, 4), V1);
	assert_null(sidtable_get(&t, 2));
	assert_null(sidtable_get(&t, 5));
	assert_int_equal(t.used, 2);

	sidtable_clear(&t, 3);
	assert_null(sidtable_get(&t, 3));
	assert_ptr_equal(sidtable_get(&t, 4), V1);
	assert_int_equal(t.used, 1);
	/* Clearing a free id changes nothing (no underflow of used). */
	sidtable_clear(&t, 3);
	sidtable_clear(&t, 7);
	assert_int_equal(t.used, 1);
	/* A cleared id can be taken again. */
	assert_int_equal(sidtable_set(&t, 3, V2), 0);
	assert_ptr_equal(sidtable_get(&t, 3), V2);
	assert_int_equal(t.used, 2);
	/* Storing NULL would make a taken id look free. */
	assert_int_equal(sidtable_set(&t, 5, NULL), -1);
	assert_null(sidtable_get(&t, 5));
	assert_int_equal(t.used, 2);
	sidtable_free(&t);
}

static void test_sid_out_of_range(void **state UNUSED)
{
	static const unsigned bad[] = { 0, 16, 17, 1000, UINT_MAX };
	struct sidtable t;

	assert_int_equal(sidtable_init(&t, 16), 0);
	assert_int_equal(sidtable_set(&t, 15, V0), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(sidtable_set(&t, bad[i], V1), -1);
		assert_null(sidtable_get(&t, bad[i]));
		sidtable_clear(&t, bad[i]);
		assert_int_equal(t.used, 1);
	}
	/* n-1 is the last usable id. */
	assert_ptr_equal(sidtable_get(&t, 15), V0);
	assert_null(t.slot[0]);
	sidtable_free(&t);
}

static void test_sid_double_set(void **state UNUSED)
{
	struct sidtable t;

	assert_int_equal(sidtable_init(&t, 16), 0);
	assert_int_equal(sidtable_set(&t, 5, V0), 0);
	assert_int_equal(sidtable_set(&t, 5, V1), -1);
	assert_int_equal(sidtable_set(&t, 5, V0), -1);
	assert_ptr_equal(sidtable_get(&t, 5), V0);
	assert_int_equal(t.used, 1);
	sidtable_free(&t);
}

static void test_sid_exhaustion(void **state UNUSED)
{
	struct sidtable t;
	int sid;

	/* Odd ids 1..15 and even ids 2..14. */
	assert_int_equal(sidtable_init(&t, 16), 0);
	for (unsigned i = 0; i < 8; i++) {
		sid = sidtable_alloc(&t, 1);
		assert_int_equal(sid, 1 + 2 * (int)i);
		assert_int_equal(sidtable_set(&t, (unsigned)sid, V0), 0);
	}
	assert_int_equal(t.used, 8);
	assert_int_equal(sidtable_alloc(&t, 1), -1);
	/* The other parity is unaffected. */
	assert_int_equal(sidtable_alloc(&t, 0), 2);

	sidtable_clear(&t, 7);
	assert_int_equal(sidtable_alloc(&t, 1), 7);
	assert_int_equal(sidtable_set(&t, 7, V1), 0);
	assert_int_equal(sidtable_alloc(&t, 1), -1);

	for (unsigned i = 0; i < 7; i++) {
		sid = sidtable_alloc(&t, 0);
		assert_true(sid > 0 && sid % 2 == 0 && sid < 16);
		assert_int_equal(sidtable_set(&t, (unsigned)sid, V0), 0);
	}
	assert_int_equal(sidtable_alloc(&t, 0), -1);
	assert_int_equal(t.used, 15);
	sidtable_free(&t);
}

static void test_sid_round_robin(void **state UNUSED)
{
	struct sidtable t;

	assert_int_equal(sidtable_init(&t, 16), 0);
	assert_int_equal(sidtable_set(&t, 1, V0), 0);
	assert_int_equal(sidtable_alloc(&t, 1), 3);
	assert_int_equal(sidtable_set(&t, 3, V0), 0);
	assert_int_equal(sidtable_alloc(&t, 1), 5);
	/* A just-freed id is not handed out again at once. */
	sidtable_clear(&t, 3);
	sidtable_clear(&t, 1);
	assert_int_equal(sidtable_alloc(&t, 1), 5);
	/* Clearing does not move the search position back. */
	assert_int_equal(sidtable_set(&t, 5, V0), 0);
	sidtable_clear(&t, 5);
	assert_int_equal(sidtable_alloc(&t, 1), 7);
	/* Setting an id of the other parity moves it too. */
	assert_int_equal(sidtable_set(&t, 10, V0), 0);
	assert_int_equal(sidtable_alloc(&t, 1), 11);
	assert_int_equal(sidtable_alloc(&t, 0), 12);
	sidtable_free(&t);
}

static void test_sid_wrap(void **state UNUSED)
{
	struct sidtable t;

	/* n even: the last id n-1 is odd. */
	assert_int_equal(sidtable_init(&t, 10), 0);
	assert_int_equal(sidtable_set(&t, 9, V0), 0);
	assert_int_equal(sidtable_alloc(&t, 1), 1);
	assert_int_equal(sidtable_alloc(&t, 0), 2);
	assert_int_equal(sidtable_set(&t, 1, V0), 0);
	assert_int_equal(sidtable_set(&t, 3, V0), 0);
	assert_int_equal(sidtable_set(&t, 5, V0), 0);
	assert_int_equal(sidtable_set(&t, 7, V0), 0);
	sidtable_clear(&t, 3);
	assert_int_equal(sidtable_alloc(&t, 1), 3);
	/* From 9 the search wraps to 1, never to 0. */
	assert_int_equal(sidtable_set(&t, 8, V1), 0);
	assert_int_equal(sidtable_alloc(&t, 1), 3);
	assert_int_equal(sidtable_alloc(&t, 0), 2);
	sidtable_free(&t);

	/* n odd: the last id n-1 is even. */
	assert_int_equal(sidtable_init(&t, 11), 0);
	assert_int_equal(sidtable_set(&t, 10, V0), 0);
	assert_int_equal(sidtable_alloc(&t, 0), 2);
	assert_int_equal(sidtable_alloc(&t, 1), 1);
	assert_int_equal(sidtable_set(&t, 9, V0), 0);
	assert_int_equal(sidtable_alloc(&t, 0), 2);
	assert_int_equal(sidtable_alloc(&t, 1), 1);
	/* The only free id is the last one a search from 10 reaches. */
	for (unsigned sid = 1; sid < 9; sid += 2)
		assert_int_equal(sidtable_set(&t, sid, V0), 0);
	sidtable_clear(&t, 9);
	assert_int_equal(sidtable_set(&t, 9, V0), 0);   /* next is now 10 */
	sidtable_clear(&t, 9);
	assert_int_equal(sidtable_alloc(&t, 1), 9);
	assert_int_equal(sidtable_alloc(&t, 0), 2);
	sidtable_free(&t);
}

static void test_sid_tiny(void **state UNUSED)
{
	struct sidtable t;

	for (unsigned n = 0; n < 2; n++) {
		assert_int_equal(sidtable_init(&t, n), 0);
		assert_int_equal(sidtable_alloc(&t, 0), -1);
		assert_int_equal(sidtable_alloc(&t, 1), -1);
		assert_int_equal(sidtable_set(&t, 0, V0), -1);
		assert_int_equal(sidtable_set(&t, 1, V0), -1);
		assert_null(sidtable_get(&t, 0));
		assert_null(sidtable_get(&t, 1));
		sidtable_clear(&t, 0);
		sidtable_clear(&t, 1);
		assert_int_equal(t.used, 0);
		sidtable_free(&t);
	}

	/* n = 2: the single usable id is 1. */
	assert_int_equal(sidtable_init(&t, 2), 0);
	assert_int_equal(sidtable_alloc(&t, 0), -1);
	assert_int_equal(sidtable_alloc(&t, 1), 1);
	assert_int_equal(sidtable_set(&t, 2, V0), -1);
	assert_int_equal(sidtable_set(&t, 1, V0), 0);
	assert_int_equal(sidtable_alloc(&t, 1), -1);
	sidtable_clear(&t, 1);
	assert_int_equal(sidtable_alloc(&t, 1), 1);
	assert_int_equal(t.used, 0);
	sidtable_free(&t);

	/* n = 3: one id of each parity. */
	assert_int_equal(sidtable_init(&t, 3), 0);
	assert_int_equal(sidtable_set(&t, 2, V0), 0);
	assert_int_equal(sidtable_alloc(&t, 1), 1);
	assert_int_equal(sidtable_alloc(&t, 0), -1);
	sidtable_free(&t);
}

/*
 * The first free id of the parity at or after start, going round 1..n-1:
 * what a round-robin allocator must return, computed the slow way.
 */
static int model_alloc(const unsigned char *taken, unsigned n, unsigned start,
                       unsigned parity)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned sid = 1 + (start - 1 + i) % (n - 1);

		if (sid % 2 == parity && !taken[sid])
			return (int)sid;
	}
	return -1;
}

/* 10000 odd ids, taken and released in random order against a model. */
static void test_sid_random(void **state UNUSED)
{
	enum { IDS = 10000, N = 2 * IDS + 1 };  /* odd ids 1..19999 */
	struct sidtable t;
	unsigned char *taken = calloc(N, 1);
	unsigned *held = calloc(IDS, sizeof(*held));
	unsigned nheld = 0, next = 1;

	assert_non_null(taken);
	assert_non_null(held);
	rng_seed(1);
	assert_int_equal(sidtable_init(&t, N), 0);

	/* Fill every odd id: round robin hands them out in order. */
	for (unsigned i = 0; i < IDS; i++) {
		int sid = sidtable_alloc(&t, 1);

		assert_int_equal(sid, 1 + 2 * (int)i);
		assert_int_equal(sidtable_set(&t, (unsigned)sid, &taken[sid]), 0);
		taken[sid] = 1;
		held[nheld++] = (unsigned)sid;
		next = (unsigned)sid + 1;
		assert_int_equal(t.used, nheld);
	}
	assert_int_equal(sidtable_alloc(&t, 1), -1);
	assert_int_equal(sidtable_alloc(&t, 0), model_alloc(taken, N, next, 0));
	assert_int_equal(sidtable_alloc(&t, 0), N - 1);

	/* Release all in random order. */
	for (unsigned i = nheld; i > 1; i--) {
		unsigned j = (unsigned)rnd(i), tmp = held[i - 1];

		held[i - 1] = held[j];
		held[j] = tmp;
	}
	while (nheld > 0) {
		unsigned sid = held[--nheld];

		assert_ptr_equal(sidtable_get(&t, sid), &taken[sid]);
		sidtable_clear(&t, sid);
		taken[sid] = 0;
		assert_null(sidtable_get(&t, sid));
		assert_int_equal(t.used, nheld);
		assert_int_equal(sidtable_alloc(&t, 1),
		                 model_alloc(taken, N, next, 1));
	}

	/* Then churn: take and release at random, mostly near full. */
	for (unsigned step = 0; step < 200000; step++) {
		int take = nheld == 0 || (nheld < IDS && rnd(100) < 55);

		if (take) {
			int sid = sidtable_alloc(&t, 1);

			assert_int_equal(sid, model_alloc(taken, N, next, 1));
			assert_true(sid > 0 && sid % 2 == 1 && sid < N);
			assert_false(taken[sid]);
			assert_int_equal(sidtable_set(&t, (unsigned)sid, &taken[sid]), 0);
			taken[sid] = 1;
			held[nheld++] = (unsigned)sid;
			next = (unsigned)sid + 1;
		} else {
			unsigned j = (unsigned)rnd(nheld), sid = held[j];

			held[j] = held[--nheld];
			assert_ptr_equal(sidtable_get(&t, sid), &taken[sid]);
			sidtable_clear(&t, sid);
			taken[sid] = 0;
		}
		assert_int_equal(t.used, nheld);
		if (nheld == IDS)
			assert_int_equal(sidtable_alloc(&t, 1), -1);
	}
	/* Every entry agrees with the model. */
	for (unsigned sid = 0; sid < N; sid++)
		assert_int_equal(sidtable_get(&t, sid) != NULL, taken[sid]);

	sidtable_free(&t);
	free(taken);
	free(held);
}

/* ======================= credit ======================= */

#define WINDOW (256u * 1024)
#define EXTRA (WINDOW - MUX_INITIAL_WINDOW)

static void assert_credit(const struct mux_credit *c, uint32_t tx, uint32_t rx_allowed,
                          uint32_t rx_consumed, uint32_t pending, uint32_t window)
{
	assert_int_equal(c->tx, tx);
	assert_int_equal(c->rx_allowed, rx_allowed);
	assert_int_equal(c->rx_consumed, rx_consumed);
	assert_int_equal(c->pending, pending);
	assert_int_equal(c->window, window);
}

static void test_credit_init(void **state UNUSED)
{
	struct mux_credit c;

	memset(&c, 0xaa, sizeof(c));
	credit_init(&c, MUX_INITIAL_WINDOW, 0);
	assert_credit(&c, 32768, 32768, 0, 0, 32768);

	/* The extra window is ours to grant, not the peer's to spend yet. */
	memset(&c, 0xaa, sizeof(c));
	credit_init(&c, MUX_INITIAL_WINDOW, EXTRA);
	assert_credit(&c, 32768, 32768, 0, EXTRA, WINDOW);
	credit_grant_sent(&c);
	assert_credit(&c, 32768, WINDOW, 0, 0, WINDOW);
}

static void test_credit_receive(void **state UNUSED)
{
	struct mux_credit c, before;

	credit_init(&c, MUX_INITIAL_WINDOW, 0);
	assert_int_equal(credit_receive(&c, 0), 0);
	assert_int_equal(credit_receive(&c, 1000), 0);
	assert_int_equal(c.rx_allowed, 32768 - 1000);
	/* One byte too many is refused and changes nothing. */
	before = c;
	assert_int_equal(credit_receive(&c, 32768 - 1000 + 1), -1);
	assert_memory_equal(&c, &before, sizeof(c));
	assert_int_equal(credit_receive(&c, SIZE_MAX), -1);
#if SIZE_MAX > UINT32_MAX
	/* Not cut to 32 bits before the comparison. */
	assert_int_equal(credit_receive(&c, ((size_t)1 << 32) + 1), -1);
#endif
	assert_memory_equal(&c, &before, sizeof(c));
	/* Exactly the rest is fine; then nothing more. */
	assert_int_equal(credit_receive(&c, 32768 - 1000), 0);
	assert_int_equal(c.rx_allowed, 0);
	assert_int_equal(credit_receive(&c, 1), -1);
	assert_int_equal(credit_receive(&c, 0), 0);
	assert_credit(&c, 32768, 0, 0, 0, 32768);

	/*
	 * The enlarged window is not the peer's before its CREDIT is sent
	 * (the issue-15 hole: 2 MB right after OPEN against 32 KiB).
	 */
	credit_init(&c, MUX_INITIAL_WINDOW, EXTRA);
	assert_int_equal(credit_receive(&c, WINDOW), -1);
	assert_int_equal(credit_receive(&c, MUX_INITIAL_WINDOW + 1), -1);
	assert_int_equal(credit_receive(&c, MUX_INITIAL_WINDOW), 0);
	assert_int_equal(credit_receive(&c, 1), -1);
	credit_grant_sent(&c);
	assert_int_equal(credit_receive(&c, EXTRA + 1), -1);
	assert_int_equal(credit_receive(&c, EXTRA), 0);
	assert_int_equal(credit_receive(&c, 1), -1);
}

/* A refill decided but not sent is not spendable either; sending makes it so. */
static void test_credit_refill_unsent(void **state UNUSED)
{
	struct mux_credit c;

	credit_init(&c, MUX_INITIAL_WINDOW, 0);
	assert_int_equal(credit_receive(&c, MUX_INITIAL_WINDOW), 0);
	credit_consumed(&c, MUX_INITIAL_WINDOW);
	assert_int_equal(credit_grant(&c, 0), 1);
	assert_credit(&c, 32768, 0, 0, 32768, 32768);
	assert_int_equal(credit_receive(&c, 1), -1);
	/* Grants pile up while the association is full; still nothing to spend. */
	assert_int_equal(credit_grant(&c, 1), 0);
	assert_int_equal(credit_receive(&c, 1), -1);
	credit_grant_sent(&c);
	assert_credit(&c, 32768, 32768, 0, 0, 32768);
	assert_int_equal(credit_receive(&c, 32769), -1);
	assert_int_equal(credit_receive(&c, 32768), 0);
}

static void test_credit_grant_threshold(void **state UNUSED)
{
	struct mux_credit c, before;

	credit_init(&c, MUX_INITIAL_WINDOW, 0);
	/* Nothing consumed: nothing to grant, even when forced. */
	assert_int_equal(credit_grant(&c, 0), 0);
	assert_int_equal(credit_grant(&c, 1), 0);

	assert_int_equal(credit_receive(&c, 10000), 0);
	credit_consumed(&c, 8191);
	assert_int_equal(c.rx_consumed, 8191);
	before = c;
	assert_int_equal(credit_grant(&c, 0), 0);       /* < window/4 */
	assert_memory_equal(&c, &before, sizeof(c));
	credit_consumed(&c, 1);                          /* = window/4 */
	assert_int_equal(credit_grant(&c, 0), 1);
	assert_credit(&c, 32768, 32768 - 10000, 0, 8192, 32768);
	assert_int_equal(credit_grant(&c, 0), 0);

	/* Forced: any amount; grants accumulate until sent. */
	credit_consumed(&c, 1);
	assert_int_equal(credit_grant(&c, 1), 1);
	assert_credit(&c, 32768, 32768 - 10000, 0, 8193, 32768);
	credit_grant_sent(&c);
	assert_credit(&c, 32768, 32768 - 10000 + 8193, 0, 0, 32768);
	credit_consumed(&c, 1807);
	assert_int_equal(credit_grant(&c, 1), 1);
	assert_credit(&c, 32768, 32768 - 1807, 0, 1807, 32768);

	/* The threshold is a quarter of the whole window, extra included. */
	credit_init(&c, MUX_INITIAL_WINDOW, EXTRA);
	credit_grant_sent(&c);
	assert_int_equal(credit_receive(&c, WINDOW), 0);
	credit_consumed(&c, WINDOW / 4 - 1);
	assert_int_equal(credit_grant(&c, 0), 0);
	credit_consumed(&c, 1);
	assert_int_equal(credit_grant(&c, 0), 1);
	assert_credit(&c, 32768, 0, 0, WINDOW / 4, WINDOW);
}

static void test_credit_grant_sent(void **state UNUSED)
{
	struct mux_credit c;

	credit_init(&c, MUX_INITIAL_WINDOW, EXTRA);
	assert_int_equal(credit_receive(&c, 32768), 0);
	credit_consumed(&c, 32768);
	assert_int_equal(credit_grant(&c, 1), 1);
	assert_int_equal(c.pending, EXTRA + 32768);
	assert_int_equal(c.rx_allowed, 0);
	credit_grant_sent(&c);
	assert_credit(&c, 32768, WINDOW, 0, 0, WINDOW);
	assert_int_equal(credit_receive(&c, 100000), 0);
	credit_consumed(&c, 70000);
	assert_int_equal(credit_grant(&c, 0), 1);
	credit_grant_sent(&c);
	assert_credit(&c, 32768, WINDOW - 100000 + 70000, 0, 0, WINDOW);
	credit_grant_sent(&c);
	assert_int_equal(c.pending, 0);
}

static void test_credit_add(void **state UNUSED)
{
	struct mux_credit c, before;

	credit_init(&c, MUX_INITIAL_WINDOW, 0);
	before = c;
	assert_int_equal(credit_add(&c, 0), -1);
	assert_memory_equal(&c, &before, sizeof(c));

	assert_int_equal(credit_add(&c, EXTRA), 0);
	assert_int_equal(c.tx, WINDOW);
	/* Up to exactly CREDIT_MAX, not one more. */
	assert_int_equal(credit_add(&c, CREDIT_MAX - WINDOW), 0);
	assert_int_equal(c.tx, CREDIT_MAX);
	before = c;
	assert_int_equal(credit_add(&c, 1), -1);
	assert_memory_equal(&c, &before, sizeof(c));

	/* Increments that would wrap 32 bits are caught too. */
	credit_init(&c, MUX_INITIAL_WINDOW, 0);
	before = c;
	assert_int_equal(credit_add(&c, UINT32_MAX), -1);
	assert_int_equal(credit_add(&c, UINT32_MAX - 32768 + 1), -1);
	assert_int_equal(credit_add(&c, CREDIT_MAX - 32768 + 1), -1);
	assert_int_equal(credit_add(&c, 0x80000000u), -1);
	assert_memory_equal(&c, &before, sizeof(c));
	/* Only tx moves. */
	assert_int_equal(credit_add(&c, 5), 0);
	assert_credit(&c, 32773, 32768, 0, 0, 32768);
}

static void test_credit_sendable(void **state UNUSED)
{
	struct mux_credit c;

	credit_init(&c, 100, 0);
	assert_int_equal(credit_sendable(&c, 50, 1000), 50);
	assert_int_equal(credit_sendable(&c, 500, 1000), 100);
	assert_int_equal(credit_sendable(&c, 500, 30), 30);
	assert_int_equal(credit_sendable(&c, 100, 100), 100);
	assert_int_equal(credit_sendable(&c, 0, 1000), 0);
	assert_int_equal(credit_sendable(&c, 1000, 0), 0);
	assert_int_equal(credit_sendable(&c, SIZE_MAX, SIZE_MAX), 100);

	credit_sent(&c, 60);
	assert_int_equal(c.tx, 40);
	assert_int_equal(credit_sendable(&c, 500, 1000), 40);
	credit_sent(&c, 40);
	assert_int_equal(credit_sendable(&c, 500, 1000), 0);
	assert_credit(&c, 0, 100, 0, 0, 100);

	assert_int_equal(credit_add(&c, CREDIT_MAX), 0);
	assert_int_equal(credit_sendable(&c, SIZE_MAX, SIZE_MAX), CREDIT_MAX);
	assert_int_equal(credit_sendable(&c, SIZE_MAX, 65536), 65536);
}

/*
 * Auto-tuning: a window consumed within four round trips doubles (up to
 * the largest), one that took longer does not; the growth is the peer's
 * only once granted, and the invariant holds through it.
 */
static void test_credit_autotune(void **state UNUSED)
{
	struct mux_credit c;
	const uint32_t max = 1024 * 1024, rtt = 50;
	uint64_t now = 1000;

	credit_init(&c, MUX_INITIAL_WINDOW, WINDOW - MUX_INITIAL_WINDOW);
	credit_grant_sent(&c);
	/* The first bytes start the clock. */
	assert_int_equal(credit_autotune(&c, 1000, now, rtt, max), 0);
	/* Slow: a whole window in 4 round trips: no growth. */
	assert_int_equal(credit_autotune(&c, WINDOW - 1, now + 150, rtt, max), 0);
	assert_int_equal(credit_autotune(&c, 1, now + 200, rtt, max), 0);
	assert_int_equal(c.window, WINDOW);
	/* Fast: a whole window within 4 round trips: it doubles. */
	now += 200;
	assert_int_equal(credit_autotune(&c, WINDOW / 2, now + 100, rtt, max), 0);
	assert_int_equal(credit_autotune(&c, WINDOW / 2, now + 199, rtt, max), WINDOW);
	credit_grow(&c, WINDOW);
	assert_int_equal(c.window, 2 * WINDOW);
	assert_int_equal(c.pending, WINDOW);         /* the peer's once granted */
	assert_int_equal(c.rx_allowed, WINDOW);
	/* Once more: only up to the largest window. */
	now += 199;
	assert_int_equal(credit_autotune(&c, SIZE_MAX, now + 10, rtt, max), max - 2 * WINDOW);
	credit_grow(&c, max - 2 * WINDOW);
	assert_int_equal(c.window, max);
	now += 10;
	assert_int_equal(credit_autotune(&c, SIZE_MAX, now + 1, rtt, max), 0);
	assert_int_equal(c.window, max);
	/* An srtt of 0 (under a millisecond on the ms clock) counts as 1 ms. */
	credit_init(&c, MUX_INITIAL_WINDOW, 0);
	assert_int_equal(credit_autotune(&c, 1, 5, 0, max), 0);
	assert_int_equal(credit_autotune(&c, MUX_INITIAL_WINDOW, 9, 0, max), 0);
	assert_int_equal(credit_autotune(&c, MUX_INITIAL_WINDOW, 12, 0, max), MUX_INITIAL_WINDOW);
}

/* ---- a sender and a receiver through the accounting ---- */

/* FIFO of message sizes (DATA lengths or CREDIT increments) in flight. */
struct fifo {
	uint32_t *v;
	size_t cap, head, len;
	uint64_t sum;
};

static void fifo_init(struct fifo *f, size_t cap)
{
	f->v = calloc(cap, sizeof(*f->v));
	assert_non_null(f->v);
	f->cap = cap;
	f->head = f->len = 0;
	f->sum = 0;
}

static void fifo_push(struct fifo *f, uint32_t x)
{
	assert_true(f->len < f->cap);
	f->v[(f->head + f->len++) % f->cap] = x;
	f->sum += x;
}

static uint32_t fifo_pop(struct fifo *f)
{
	uint32_t x;

	assert_true(f->len > 0);
	x = f->v[f->head];
	f->head = (f->head + 1) % f->cap;
	f->len--;
	f->sum -= x;
	return x;
}

/* Byte off of the transfer: not periodic at any small distance. */
static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 131 ^ off >> 9 ^ off >> 17 ^ off >> 25);
}

struct sim {
	struct mux_credit snd, rcv;   /* the two ends' accounting */
	struct fifo data, credit;     /* DATA and CREDIT in flight */
	uint8_t *buf;                 /* receiver's TCP output, window bytes */
	size_t buffered, rpos;        /* in buf, and where the oldest is */
	uint64_t total, sent, received, drained;
	size_t max_buffered;
	int speed;                    /* receiver's TCP: 0 stalled .. 3 fast */
};

/* Every time: the accounting adds up and the buffer is within the window. */
static void sim_check(const struct sim *s)
{
	const struct mux_credit *r = &s->rcv;

	assert_true(s->buffered <= r->window);
	assert_int_equal((uint64_t)r->rx_allowed + r->pending + s->buffered + r->rx_consumed,
	                 r->window);
	/* What the receiver allows (sent grants only) is with the sender or on the way. */
	assert_int_equal((uint64_t)s->snd.tx + s->data.sum + s->credit.sum, r->rx_allowed);
	assert_int_equal(s->sent, s->received + s->data.sum);
	assert_int_equal(s->received, s->drained + s->buffered);
	assert_true(s->snd.tx <= CREDIT_MAX);
}

static void sim_send(struct sim *s)
{
	static const size_t scale[] = { 16, 1500, 65536, 1 << 20 };
	size_t avail = 1 + rnd(scale[rnd(4)]), max_msg = 1 + rnd(scale[rnd(3)]);
	size_t n;
	uint32_t tx = s->snd.tx;

	if (avail > s->total - s->sent)
		avail = (size_t)(s->total - s->sent);
	n = credit_sendable(&s->snd, avail, max_msg);
	assert_true(n <= avail && n <= max_msg && n <= tx);
	assert_true(n == avail || n == max_msg || n == tx);
	if (n == 0)
		return;
	credit_sent(&s->snd, n);
	assert_int_equal(s->snd.tx, tx - n);
	fifo_push(&s->data, (uint32_t)n);
	s->sent += n;
}

static void sim_deliver_data(struct sim *s)
{
	for (size_t k = 1 + rnd(4); k > 0 && s->data.len > 0; k--) {
		uint32_t n = fifo_pop(&s->data);
		size_t wpos = (s->rpos + s->buffered) % s->rcv.window;

		/* An honest sender never exceeds its credit. */
		assert_int_equal(credit_receive(&s->rcv, n), 0);
		assert_true(s->buffered + n <= s->rcv.window);
		for (uint32_t i = 0; i < n; i++) {
			s->buf[wpos] = pattern(s->received + i);
			if (++wpos == s->rcv.window)
				wpos = 0;
		}
		s->buffered += n;
		s->received += n;
		if (s->buffered > s->max_buffered)
			s->max_buffered = s->buffered;
	}
}

/* The receiver's TCP connection takes some bytes; grant as the relay (src/mux/relay.c) does. */
static void sim_drain(struct sim *s)
{
	static const size_t rate[] = { 0, 64, 4096, SIZE_MAX };
	size_t d;

	if (rnd(64) == 0)
		s->speed = (int)rnd(4);
	d = rate[s->speed] == SIZE_MAX ? s->buffered : rnd(rate[s->speed] + 1);
	if (d > s->buffered)
		d = s->buffered;
	for (size_t i = 0; i < d; i++) {
		if (s->buf[s->rpos] != pattern(s->drained + i))
			fail_msg("byte %llu corrupted",
			         (unsigned long long)(s->drained + i));
		if (++s->rpos == s->rcv.window)
			s->rpos = 0;
	}
	s->buffered -= d;
	s->drained += d;
	credit_consumed(&s->rcv, d);
	/* All of it once the output buffer is empty, else in batches. */
	(void)credit_grant(&s->rcv, s->buffered == 0);
	if (s->buffered == 0)
		assert_int_equal(s->rcv.rx_consumed, 0);
	assert_true(s->rcv.rx_consumed < s->rcv.window / 4 || s->rcv.window / 4 == 0);
}

static void sim_flush_grant(struct sim *s)
{
	if (s->rcv.pending == 0)
		return;
	fifo_push(&s->credit, s->rcv.pending);
	credit_grant_sent(&s->rcv);
	assert_int_equal(s->rcv.pending, 0);
}

static void sim_deliver_credit(struct sim *s)
{
	for (size_t k = 1 + rnd(2); k > 0 && s->credit.len > 0; k--) {
		uint32_t inc = fifo_pop(&s->credit);

		assert_true(inc > 0);
		/* A receiver that keeps its window never overflows the sender. */
		assert_int_equal(credit_add(&s->snd, inc), 0);
	}
}

static void simulate(uint32_t extra, uint64_t total, uint64_t seed)
{
	struct sim s;
	uint64_t before[6] = { 0 };
	unsigned idle = 0;

	memset(&s, 0, sizeof(s));
	rng_seed(seed);
	credit_init(&s.snd, MUX_INITIAL_WINDOW, 0);
	credit_init(&s.rcv, MUX_INITIAL_WINDOW, extra);
	s.buf = malloc(s.rcv.window);
	assert_non_null(s.buf);
	/* Every message in flight carries at least one byte of credit. */
	fifo_init(&s.data, s.rcv.window + 1);
	fifo_init(&s.credit, s.rcv.window + 1);
	s.total = total;
	s.speed = 3;
	sim_check(&s);

	while (s.drained < s.total) {
		size_t r = rnd(100);
		uint64_t now[6];

		if (r < 30)
			sim_send(&s);
		else if (r < 55)
			sim_deliver_data(&s);
		else if (r < 80)
			sim_drain(&s);
		else if (r < 90)
			sim_flush_grant(&s);
		else
			sim_deliver_credit(&s);
		sim_check(&s);

		/* Something must keep moving: a stall here is a deadlock. */
		now[0] = s.sent;
		now[1] = s.received;
		now[2] = s.drained;
		now[3] = s.credit.sum;
		now[4] = s.rcv.pending;
		now[5] = s.snd.tx;
		idle = memcmp(now, before, sizeof(now)) == 0 ? idle + 1 : 0;
		memcpy(before, now, sizeof(now));
		if (idle > 100000)
			fail_msg("stalled at %llu of %llu bytes",
			         (unsigned long long)s.drained,
			         (unsigned long long)s.total);
	}

	assert_int_equal(s.sent, total);
	assert_int_equal(s.received, total);
	assert_int_equal(s.data.len, 0);
	/* The window was really filled while the receiver's TCP was slow. */
	assert_int_equal(s.max_buffered, s.rcv.window);
	/* Once the last grants arrive, the sender holds the whole window again. */
	sim_flush_grant(&s);
	while (s.credit.len > 0)
		sim_deliver_credit(&s);
	sim_check(&s);
	assert_int_equal(s.snd.tx, s.rcv.window);
	assert_int_equal(s.rcv.rx_allowed, s.rcv.window);

	free(s.buf);
	free(s.data.v);
	free(s.credit.v);
}

/* 100 MiB through the default 256 KiB window. */
static void test_credit_sim_100mb(void **state UNUSED)
{
	simulate(EXTRA, 100ull << 20, 42);
}

/* The initial window only, as when the session's budget is spent. */
static void test_credit_sim_initial_window(void **state UNUSED)
{
	simulate(0, 16ull << 20, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sid_init),
		cmocka_unit_test(test_sid_set_get_clear),
		cmocka_unit_test(test_sid_out_of_range),
		cmocka_unit_test(test_sid_double_set),
		cmocka_unit_test(test_sid_exhaustion),
		cmocka_unit_test(test_sid_round_robin),
		cmocka_unit_test(test_sid_wrap),
		cmocka_unit_test(test_sid_tiny),
		cmocka_unit_test(test_sid_random),
		cmocka_unit_test(test_credit_init),
		cmocka_unit_test(test_credit_receive),
		cmocka_unit_test(test_credit_refill_unsent),
		cmocka_unit_test(test_credit_grant_threshold),
		cmocka_unit_test(test_credit_grant_sent),
		cmocka_unit_test(test_credit_add),
		cmocka_unit_test(test_credit_sendable),
		cmocka_unit_test(test_credit_autotune),
		cmocka_unit_test(test_credit_sim_100mb),
		cmocka_unit_test(test_credit_sim_initial_window),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
