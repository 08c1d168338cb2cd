/*
 * Unit tests for small shared helpers: util/fault.h (the failure switch of
 * test builds), util/clock.h and crypto's wc_random_range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crypto/crypto.h"
#include "util/clock.h"
#include "util/fault.h"

static void test_fault_arm(void **state)
{
	(void)state;
	if (!FAULT_INJECTION_BUILT) {
		fault_arm("x", 1, 1);
		assert_int_equal(fault_fire("x"), 0);
		skip();
	}
	fault_reset();
	assert_int_equal(FAULT("a"), 0); /* unarmed */
	fault_arm("a", 3, 2);
	assert_int_equal(FAULT("a"), 0);
	assert_int_equal(FAULT("a"), 0);
	assert_int_equal(FAULT("a"), 1);
	assert_int_equal(FAULT("a"), 1);
	assert_int_equal(FAULT("a"), 0);
	assert_int_equal(fault_fired("a"), 2);
	assert_int_equal(FAULT("b"), 0);
	fault_arm("b", 1, 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(FAULT("b"), 1);
	fault_reset();
	assert_int_equal(FAULT("b"), 0);
	assert_int_equal(fault_fired("b"), 0);
}

static void test_fault_env(void **state)
{
	(void)state;
	if (!FAULT_INJECTION_BUILT)
		skip();
	/* fault_reset marks the environment as read; re-arm by hand the way
	 * env_load would, through the same parser: a fresh process is needed
	 * to read SCTPT_FAULT, which the integration tests do. */
	fault_reset();
	fault_arm("evtimer_new", 2, 1);
	assert_int_equal(FAULT("evtimer_new"), 0);
	assert_int_equal(FAULT("evtimer_new"), 1);
	assert_int_equal(FAULT("evtimer_new"), 0);
	/* Names too long for the table are never armed. */
	char longname[128];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	fault_arm(longname, 1, 0);
	assert_int_equal(FAULT(longname), 0);
	fault_reset();
}

static void test_clock(void **state)
{
	struct timespec a = { 10, 500000000 }, b = { 12, 250000000 };

	(void)state;
	assert_true(clock_diff_ms(&a, &b) > 1749.999 && clock_diff_ms(&a, &b) < 1750.001);
	assert_true(clock_diff_ms(&b, &a) < -1749.999);
	struct timespec now = clock_now();
	assert_true(clock_ms_since(&now) >= 0.0);
	uint64_t m1 = clock_now_ms(), m2 = clock_now_ms();
	assert_true(m2 >= m1);
}

static void test_random_range(void **state)
{
	unsigned hist[5] = { 0 };

	(void)state;
	assert_int_equal(wc_random_range(7, 7), 7);
	assert_int_equal(wc_random_range(9, 3), 9);
	for (int i = 0; i < 5000; i++) {
		uint32_t r = wc_random_range(10, 14);

		assert_true(r >= 10 && r <= 14);
		hist[r - 10]++;
	}
	/* Each bucket expects 1000; 700 is > 10 sigma away. */
	for (int i = 0; i < 5; i++)
		assert_true(hist[i] > 700 && hist[i] < 1300);
	uint32_t big = wc_random_range(0, UINT32_MAX);
	(void)big;
	assert_true(wc_random_range(UINT32_MAX - 1, UINT32_MAX) >= UINT32_MAX - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fault_arm),
		cmocka_unit_test(test_fault_env),
		cmocka_unit_test(test_clock),
		cmocka_unit_test(test_random_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
