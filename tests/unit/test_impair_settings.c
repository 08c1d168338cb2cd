/*
 * Unit tests for the settings of `sctpt-lab impair`: defaults, partial
 * updates, and hostile input (bad JSON, wrong types, out-of-range values,
 * unknown keys) that must be refused without changing anything.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "lab/impair/settings.h"

static void assert_same(const struct impair_settings *a, const struct impair_settings *b)
{
	for (int d = 0; d < 2; d++) {
		const struct impair_dir_settings *x = &a->dir[d], *y = &b->dir[d];

		assert_true(x->loss == y->loss && x->dup == y->dup && x->reorder == y->reorder);
		assert_true(x->delay_ms == y->delay_ms && x->jitter_ms == y->jitter_ms);
		assert_true(x->reorder_ms == y->reorder_ms);
		assert_int_equal(x->jitter_dist, y->jitter_dist);
		assert_int_equal(x->rate_bps, y->rate_bps);
		assert_int_equal(x->queue_bytes, y->queue_bytes);
		assert_int_equal(x->blackhole, y->blackhole);
	}
}

static int update(struct impair_settings *s, const char *text, char *err, size_t errlen)
{
	return impair_settings_update_text(s, text, strlen(text), err, errlen);
}

static void test_defaults(void **state)
{
	struct impair_settings s;

	impair_settings_defaults(&s);
	for (int d = 0; d < 2; d++) {
		assert_true(s.dir[d].loss == 0.0 && s.dir[d].dup == 0.0 && s.dir[d].reorder == 0.0);
		assert_true(s.dir[d].delay_ms == 0.0 && s.dir[d].jitter_ms == 0.0);
		assert_true(s.dir[d].reorder_ms == IMPAIR_DEFAULT_REORDER_MS);
		assert_int_equal(s.dir[d].rate_bps, 0);
		assert_int_equal(s.dir[d].queue_bytes, IMPAIR_DEFAULT_QUEUE);
		assert_int_equal(s.dir[d].blackhole, 0);
		assert_int_equal(s.dir[d].jitter_dist, IMPAIR_JITTER_UNIFORM);
	}
	assert_string_equal(impair_dir_name(IMPAIR_C2S), "c2s");
	assert_string_equal(impair_dir_name(IMPAIR_S2C), "s2c");
}

static void test_partial_update(void **state)
{
	struct impair_settings s;
	char err[200];

	impair_settings_defaults(&s);
	assert_int_equal(update(&s, "{\"c2s\": {\"loss\": 0.05, \"delay_ms\": 20, \"jitter_ms\": 5,"
	                            " \"dup\": 0.01, \"reorder\": 0.05, \"rate_bps\": 1000000,"
	                            " \"blackhole\": false, \"jitter\": \"normal\"}}",
	                     err, sizeof(err)), 0);
	assert_true(s.dir[0].loss == 0.05 && s.dir[0].delay_ms == 20 && s.dir[0].jitter_ms == 5);
	assert_true(s.dir[0].dup == 0.01 && s.dir[0].reorder == 0.05);
	assert_int_equal(s.dir[0].rate_bps, 1000000);
	assert_int_equal(s.dir[0].jitter_dist, IMPAIR_JITTER_NORMAL);
	/* s2c untouched */
	assert_true(s.dir[1].loss == 0.0 && s.dir[1].delay_ms == 0.0);
	/* a later partial update keeps the other fields */
	assert_int_equal(update(&s, "{\"s2c\": {\"blackhole\": true}, \"c2s\": {\"loss\": 1}}",
	                        err, sizeof(err)), 0);
	assert_true(s.dir[0].loss == 1.0 && s.dir[0].delay_ms == 20);
	assert_int_equal(s.dir[1].blackhole, 1);
	/* "both" first, then a direction overrides */
	assert_int_equal(update(&s, "{\"both\": {\"delay_ms\": 7}, \"s2c\": {\"delay_ms\": 9}}",
	                        err, sizeof(err)), 0);
	assert_true(s.dir[0].delay_ms == 7 && s.dir[1].delay_ms == 9);
	/* empty update: nothing changes, no error */
	assert_int_equal(update(&s, "{}", err, sizeof(err)), 0);
	assert_int_equal(update(&s, "{\"c2s\": {}}", err, sizeof(err)), 0);
	assert_true(s.dir[0].delay_ms == 7);
}

static void test_round_trip(void **state)
{
	struct impair_settings a, b;
	char err[200];
	json_t *j;

	impair_settings_defaults(&a);
	assert_int_equal(update(&a, "{\"c2s\": {\"loss\": 0.25, \"rate_bps\": 5000,"
	                            " \"queue_bytes\": 3000}, \"s2c\": {\"reorder_ms\": 3.5,"
	                            " \"jitter\": \"normal\", \"blackhole\": true}}",
	                     err, sizeof(err)), 0);
	j = impair_settings_to_json(&a);
	assert_non_null(j);
	impair_settings_defaults(&b);
	assert_int_equal(impair_settings_update(&b, j, err, sizeof(err)), 0);
	assert_same(&a, &b);
	json_decref(j);
}

static void test_hostile_input_changes_nothing(void **state)
{
	static const char *const bad[] = {
		"", "{", "null", "[]", "42", "\"c2s\"", "{\"c2s\": 1}", "{\"c2s\": []}",
		"{\"x\": {}}", "{\"c2s\": {\"loss\": -0.1}}", "{\"c2s\": {\"loss\": 1.5}}",
		"{\"c2s\": {\"loss\": \"0.1\"}}", "{\"c2s\": {\"loss\": null}}",
		"{\"c2s\": {\"loss\": true}}", "{\"c2s\": {\"delay_ms\": 60001}}",
		"{\"c2s\": {\"delay_ms\": -1}}", "{\"c2s\": {\"jitter_ms\": 1e300}}",
		"{\"c2s\": {\"rate_bps\": -1}}", "{\"c2s\": {\"rate_bps\": 1.5}}",
		"{\"c2s\": {\"rate_bps\": 1e12}}", "{\"c2s\": {\"queue_bytes\": 10}}",
		"{\"c2s\": {\"blackhole\": 1}}", "{\"c2s\": {\"blackhole\": \"true\"}}",
		"{\"c2s\": {\"jitter\": \"pareto\"}}", "{\"c2s\": {\"jitter\": 1}}",
		"{\"c2s\": {\"nonsense\": 1}}", "{\"c2s\": {\"loss\": 0.1}, \"c2s\": {\"loss\": 0.2}}",
		/* a good field before a bad one must not be applied */
		"{\"c2s\": {\"delay_ms\": 5, \"loss\": 2}}",
		"{\"both\": {\"loss\": 0.5}, \"s2c\": {\"dup\": 7}}",
		"{\"c2s\": {\"loss\": 0.1}} trailing",
		"{\"c2s\": {\"loss\": NaN}}",
	};
	struct impair_settings s, before;
	char err[200];

	impair_settings_defaults(&s);
	assert_int_equal(update(&s, "{\"c2s\": {\"loss\": 0.5}}", err, sizeof(err)), 0);
	before = s;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(update(&s, bad[i], err, sizeof(err)), -1);
		assert_true(err[0] != '\0');
		assert_same(&s, &before);
	}
	/* embedded NUL and binary junk */
	assert_int_equal(impair_settings_update_text(&s, "{\"c2s\"\0:{}}", 11, err, sizeof(err)),
	                 -1);
	assert_int_equal(impair_settings_update_text(&s, "\xff\xfe\x00\x01", 4, err, sizeof(err)),
	                 -1);
	assert_same(&s, &before);
}

static void test_limits_accepted(void **state)
{
	struct impair_settings s;
	char err[200];

	impair_settings_defaults(&s);
	assert_int_equal(update(&s, "{\"both\": {\"loss\": 0, \"dup\": 1, \"delay_ms\": 60000,"
	                            " \"rate_bps\": 100000000000, \"queue_bytes\": 67108864,"
	                            " \"reorder_ms\": 0}}", err, sizeof(err)), 0);
	assert_int_equal(s.dir[1].rate_bps, 100000000000ULL);
	assert_int_equal(s.dir[1].queue_bytes, 64u << 20);
	/* integral reals are fine for whole-number fields */
	assert_int_equal(update(&s, "{\"c2s\": {\"rate_bps\": 2000.0}}", err, sizeof(err)), 0);
	assert_int_equal(s.dir[0].rate_bps, 2000);
}

static void test_option_values(void **state)
{
	struct impair_dir_settings d;
	char err[200];
	json_t *v;
	uint64_t u;

	memset(&d, 0, sizeof(d));
	v = impair_option_value("loss", "0.05");
	assert_non_null(v);
	assert_int_equal(impair_dir_set(&d, "loss", v, err, sizeof(err)), 0);
	json_decref(v);
	assert_true(d.loss == 0.05);
	v = impair_option_value("rate_bps", "10M");
	assert_int_equal(impair_dir_set(&d, "rate_bps", v, err, sizeof(err)), 0);
	json_decref(v);
	assert_int_equal(d.rate_bps, 10000000);
	v = impair_option_value("queue_bytes", "64k");
	assert_int_equal(impair_dir_set(&d, "queue_bytes", v, err, sizeof(err)), 0);
	json_decref(v);
	assert_int_equal(d.queue_bytes, 65536);
	v = impair_option_value("blackhole", NULL);
	assert_int_equal(impair_dir_set(&d, "blackhole", v, err, sizeof(err)), 0);
	json_decref(v);
	assert_int_equal(d.blackhole, 1);
	assert_null(impair_option_value("loss", "abc"));
	assert_null(impair_option_value("loss", ""));
	assert_null(impair_option_value("loss", "0.1x"));
	assert_null(impair_option_value("loss", "inf"));
	assert_null(impair_option_value("rate_bps", "-5"));
	assert_null(impair_option_value("rate_bps", "5T"));
	assert_null(impair_option_value("nope", "1"));
	v = impair_option_value("loss", "3");     /* parses; range is checked by dir_set */
	assert_int_equal(impair_dir_set(&d, "loss", v, err, sizeof(err)), -1);
	json_decref(v);
	assert_int_equal(impair_parse_scaled("1G", 1000, &u), 0);
	assert_int_equal(u, 1000000000ULL);
	assert_int_equal(impair_parse_scaled("99999999999999999999", 1000, &u), -1);
	assert_int_equal(impair_parse_scaled("9000000000G", 1024, &u), -1);
	assert_int_equal(impair_parse_scaled("", 1000, &u), -1);
	assert_int_equal(impair_parse_scaled("k", 1000, &u), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_partial_update),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_hostile_input_changes_nothing),
		cmocka_unit_test(test_limits_accepted),
		cmocka_unit_test(test_option_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
