/*
 * Unit tests for `sctpt-lab impair`'s named rules (parser and validator
 * against hostile JSON, list operations, flow toxicity, the rule stages
 * of the shaper), the Gilbert-Elliott bursty loss model (its long-run
 * loss rate and mean burst length on a virtual run with a fixed seed)
 * and the link presets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lab/impair/rules.h"
#include "lab/impair/settings.h"
#include "lab/impair/shaper.h"

static int parse(const char *text, const char *path_name, struct impair_rule *r)
{
	char err[256];

	err[0] = '\0';
	if (impair_rule_parse_text(text, strlen(text), path_name, r, err, sizeof(err)) < 0) {
		assert_true(err[0] != '\0');       /* every refusal says why */
		return -1;
	}
	return 0;
}

static void test_rule_parse_good(void **state)
{
	struct impair_rule r;

	assert_int_equal(parse("{\"name\": \"up-delay\", \"direction\": \"c2s\", \"kind\": "
	                       "\"delay\", \"params\": {\"delay_ms\": 100, \"jitter_ms\": 10.5, "
	                       "\"jitter\": \"normal\"}, \"toxicity\": 0.5}", NULL, &r), 0);
	assert_string_equal(r.name, "up-delay");
	assert_int_equal(r.dirs, IMPAIR_RULE_C2S);
	assert_int_equal(r.kind, IMPAIR_RULE_DELAY);
	assert_true(r.delay_ms == 100.0 && r.jitter_ms == 10.5);
	assert_int_equal(r.jitter_dist, IMPAIR_JITTER_NORMAL);
	assert_true(r.toxicity == 0.5);
	assert_int_equal(r.per_packet, 0);

	/* defaults: both directions, toxicity 1, reorder hold 20 ms */
	assert_int_equal(parse("{\"name\": \"r\", \"kind\": \"reorder\", \"params\": {\"p\": 0.1}}",
	                       NULL, &r), 0);
	assert_int_equal(r.dirs, IMPAIR_RULE_C2S | IMPAIR_RULE_S2C);
	assert_true(r.toxicity == 1.0 && r.delay_ms == 20.0 && r.p == 0.1);

	/* the name from the URL; the body may repeat it */
	assert_int_equal(parse("{\"kind\": \"blackhole\", \"scope\": \"packet\"}", "bh", &r), 0);
	assert_string_equal(r.name, "bh");
	assert_int_equal(r.per_packet, 1);
	assert_int_equal(parse("{\"name\": \"bh\", \"kind\": \"blackhole\"}", "bh", &r), 0);

	/* burst: the four parameters, or mean loss and burst length */
	assert_int_equal(parse("{\"name\": \"b\", \"kind\": \"burst\", \"params\": {\"p\": 0.01, "
	                       "\"r\": 0.25, \"loss_good\": 0, \"loss_bad\": 0.9}}", NULL, &r), 0);
	assert_true(r.ge.p == 0.01 && r.ge.r == 0.25 && r.ge.loss_bad == 0.9);
	assert_int_equal(parse("{\"name\": \"b\", \"kind\": \"burst\", \"params\": {\"loss\": 0.05, "
	                       "\"length\": 4}}", NULL, &r), 0);
	assert_true(fabs(r.ge.r - 0.25) < 1e-12);
	assert_true(fabs(impair_ge_mean_loss(&r.ge) - 0.05) < 1e-12);

	assert_int_equal(parse("{\"name\": \"rt\", \"kind\": \"rate\", \"params\": {\"rate_bps\": "
	                       "1000000, \"queue_bytes\": 65536}}", NULL, &r), 0);
	assert_true(r.rate_bps == 1000000 && r.queue_bytes == 65536);
	/* a rule read back (with its counters) can be sent again */
	assert_int_equal(parse("{\"name\": \"c\", \"kind\": \"corrupt\", \"params\": {\"p\": 1}, "
	                       "\"counters\": {}}", NULL, &r), 0);
}

static void test_rule_parse_hostile(void **state)
{
	static const char *const bad[] = {
		"",
		"null",
		"[]",
		"\"loss\"",
		"{",
		"{\"name\": \"x\"}",                                         /* no kind */
		"{\"kind\": \"loss\"}",                                      /* no name */
		"{\"name\": \"\", \"kind\": \"loss\"}",
		"{\"name\": \"a b\", \"kind\": \"loss\"}",
		"{\"name\": \"a/b\", \"kind\": \"loss\"}",
		"{\"name\": \"%41\", \"kind\": \"loss\"}",
		"{\"name\": \"x\\u0000y\", \"kind\": \"loss\"}",
		"{\"name\": 5, \"kind\": \"loss\"}",
		"{\"name\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", "
		"\"kind\": \"loss\"}",                                       /* 65 chars */
		"{\"name\": \"x\", \"kind\": \"Loss\"}",
		"{\"name\": \"x\", \"kind\": \"latency\"}",
		"{\"name\": \"x\", \"kind\": null}",
		"{\"name\": \"x\", \"kind\": \"loss\", \"direction\": \"up\"}",
		"{\"name\": \"x\", \"kind\": \"loss\", \"direction\": 1}",
		"{\"name\": \"x\", \"kind\": \"loss\", \"toxicity\": 1.5}",
		"{\"name\": \"x\", \"kind\": \"loss\", \"toxicity\": -0.1}",
		"{\"name\": \"x\", \"kind\": \"loss\", \"toxicity\": \"1\"}",
		"{\"name\": \"x\", \"kind\": \"loss\", \"scope\": \"connection\"}",
		"{\"name\": \"x\", \"kind\": \"loss\", \"stream\": \"upstream\"}",
		"{\"name\": \"x\", \"kind\": \"loss\", \"name\": \"y\"}",    /* duplicate key */
		"{\"name\": \"x\", \"kind\": \"loss\", \"params\": []}",
		"{\"name\": \"x\", \"kind\": \"loss\", \"params\": {\"p\": 2}}",
		"{\"name\": \"x\", \"kind\": \"loss\", \"params\": {\"p\": true}}",
		"{\"name\": \"x\", \"kind\": \"loss\", \"params\": {\"p\": 1e999}}",
		"{\"name\": \"x\", \"kind\": \"loss\", \"params\": {\"delay_ms\": 5}}",
		"{\"name\": \"x\", \"kind\": \"delay\", \"params\": {\"delay_ms\": 60001}}",
		"{\"name\": \"x\", \"kind\": \"delay\", \"params\": {\"delay_ms\": -1}}",
		"{\"name\": \"x\", \"kind\": \"delay\", \"params\": {\"jitter\": \"pareto\"}}",
		"{\"name\": \"x\", \"kind\": \"rate\"}",                     /* needs rate_bps */
		"{\"name\": \"x\", \"kind\": \"rate\", \"params\": {\"rate_bps\": 0}}",
		"{\"name\": \"x\", \"kind\": \"rate\", \"params\": {\"rate_bps\": 1.5}}",
		"{\"name\": \"x\", \"kind\": \"rate\", \"params\": {\"rate_bps\": 1e12}}",
		"{\"name\": \"x\", \"kind\": \"rate\", \"params\": {\"rate_bps\": 1000, "
		"\"queue_bytes\": 100}}",
		"{\"name\": \"x\", \"kind\": \"blackhole\", \"params\": {\"p\": 1}}",
		"{\"name\": \"x\", \"kind\": \"burst\", \"params\": {\"loss\": 0.1}}",
		"{\"name\": \"x\", \"kind\": \"burst\", \"params\": {\"loss\": 0.1, \"length\": 4, "
		"\"p\": 0.1}}",
		"{\"name\": \"x\", \"kind\": \"burst\", \"params\": {\"loss\": 1, \"length\": 4}}",
		"{\"name\": \"x\", \"kind\": \"burst\", \"params\": {\"loss\": 0.9, \"length\": 1}}",
		"{\"name\": \"x\", \"kind\": \"burst\", \"params\": {\"loss\": 0.1, \"length\": 0.5}}",
		"{\"name\": \"x\", \"kind\": \"burst\", \"params\": {\"loss\": \"a\", \"length\": 2}}",
		"{\"name\": \"x\", \"kind\": \"corrupt\", \"params\": {\"p\": null}}",
		"{\"name\": \"x\", \"kind\": \"loss\"} trailing",
	};
	struct impair_rule r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], NULL, &r) == 0)
			fail_msg("accepted: %s", bad[i]);
	}
	/* the body names another rule than the URL; a bad name in the URL */
	assert_int_equal(parse("{\"name\": \"a\", \"kind\": \"loss\"}", "b", &r), -1);
	assert_int_equal(parse("{\"kind\": \"loss\"}", "a b", &r), -1);
	assert_int_equal(parse("{\"kind\": \"loss\"}", "", &r), -1);
}

static void test_rules_list(void **state)
{
	struct impair_rules rs;
	struct impair_rule r;
	char name[16];
	json_t *j;

	impair_rules_init(&rs);
	assert_int_equal(parse("{\"name\": \"a\", \"kind\": \"loss\", \"params\": {\"p\": 0.1}}",
	                       NULL, &r), 0);
	assert_int_equal(impair_rules_put(&rs, &r, 0, 1), 0);
	assert_int_equal(impair_rules_put(&rs, &r, 0, 1), -1);     /* exists */
	rs.r[0].st[0].c.packets = 7;
	r.p = 0.2;
	assert_int_equal(impair_rules_put(&rs, &r, 1, 1), 1);      /* replaced */
	assert_true(rs.r[0].p == 0.2);
	assert_int_equal(rs.r[0].st[0].c.packets, 7);              /* counters kept */
	for (int i = 1; i < IMPAIR_MAX_RULES; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		snprintf(r.name, sizeof(r.name), "%s", name);
		assert_int_equal(impair_rules_put(&rs, &r, 0, 1), 0);
	}
	snprintf(r.name, sizeof(r.name), "one-too-many");
	assert_int_equal(impair_rules_put(&rs, &r, 1, 1), -1);     /* full */
	assert_int_equal(impair_rules_del(&rs, "r5"), 0);
	assert_int_equal(impair_rules_del(&rs, "r5"), -1);
	assert_null(impair_rules_find(&rs, "r5"));
	assert_non_null(impair_rules_find(&rs, "r6"));
	assert_int_equal(rs.n, IMPAIR_MAX_RULES - 1);
	j = impair_rules_to_json(&rs);
	assert_int_equal(json_array_size(j), IMPAIR_MAX_RULES - 1);
	/* what GET returns parses again as the same rule */
	{
		char *text = json_dumps(json_array_get(j, 0), 0);
		struct impair_rule back;

		assert_int_equal(parse(text, NULL, &back), 0);
		assert_string_equal(back.name, "a");
		assert_true(back.p == 0.2 && back.kind == IMPAIR_RULE_LOSS);
		free(text);
	}
	json_decref(j);
	impair_rules_zero(&rs);
	assert_int_equal(rs.r[0].st[0].c.packets, 0);
}

/* Flow toxicity: the share of flows hit is close to t, fixed per flow and seed. */
static void test_rule_flow_toxicity(void **state)
{
	struct impair_rule r;
	int hit = 0, again = 0, other_seed_differs = 0;
	const int n = 20000;

	assert_int_equal(parse("{\"name\": \"t\", \"kind\": \"loss\", \"toxicity\": 0.3}", NULL,
	                       &r), 0);
	for (int f = 1; f <= n; f++) {
		int a = impair_rule_applies(&r, IMPAIR_C2S, (uint64_t)f, 42);

		hit += a;
		again += a == impair_rule_applies(&r, IMPAIR_S2C, (uint64_t)f, 42);
		other_seed_differs |= a != impair_rule_applies(&r, IMPAIR_C2S, (uint64_t)f, 43);
	}
	assert_true(hit > 0.28 * n && hit < 0.32 * n);
	assert_int_equal(again, n);               /* both directions agree */
	assert_true(other_seed_differs);
	/* a one-way rule does not apply the other way */
	r.dirs = IMPAIR_RULE_C2S;
	r.toxicity = 1.0;
	assert_true(impair_rule_applies(&r, IMPAIR_C2S, 1, 1));
	assert_false(impair_rule_applies(&r, IMPAIR_S2C, 1, 1));
}

static void check_invariant(const struct impair_counters *c)
{
	assert_int_equal(c->seen + c->duplicated, c->forwarded + c->dropped + c->pending);
	assert_int_equal(c->dropped, c->dropped_loss + c->dropped_blackhole + c->dropped_burst +
	                 c->dropped_rule + c->queue_drops + c->dropped_overflow +
	                 c->dropped_other);
}

/* Rules through the shaper: loss at its rate on the flows it hits only, delay added. */
static void test_rules_in_shaper(void **state)
{
	struct impair_rules rs;
	struct impair_rule r;
	struct impair_dir_settings s;
	struct impair_settings all;
	struct impair_shaper sh;
	struct impair_fate f;
	uint64_t lost_hit = 0, n_hit = 0, lost_miss = 0, n_miss = 0;

	impair_settings_defaults(&all);
	s = all.dir[IMPAIR_C2S];
	impair_rules_init(&rs);
	assert_int_equal(parse("{\"name\": \"l\", \"kind\": \"loss\", \"params\": {\"p\": 0.2}, "
	                       "\"toxicity\": 0.5}", NULL, &r), 0);
	assert_int_equal(impair_rules_put(&rs, &r, 0, 9), 0);
	assert_int_equal(parse("{\"name\": \"d\", \"kind\": \"delay\", \"params\": "
	                       "{\"delay_ms\": 10}}", NULL, &r), 0);
	assert_int_equal(impair_rules_put(&rs, &r, 0, 9), 0);
	impair_shaper_init(&sh, 5);
	for (int i = 0; i < 100000; i++) {
		uint64_t flow = (uint64_t)(i % 100);
		int selected = impair_rule_selects_flow(&rs.r[0], flow, 9);

		impair_shape_rules(&sh, &s, &rs, IMPAIR_C2S, flow, 9, 1000, 100, &f);
		if (selected) {
			n_hit++;
			lost_hit += f.ncopies == 0;
		} else {
			n_miss++;
			lost_miss += f.ncopies == 0;
		}
		if (f.ncopies == 1) {
			assert_int_equal(f.due_us[0], 1000 + 10000);
			sh.c.forwarded++;
		}
	}
	check_invariant(&sh.c);
	assert_int_equal(lost_miss, 0);
	assert_true(n_hit > 20000 && n_miss > 20000);
	assert_true(lost_hit > 0.18 * (double)n_hit && lost_hit < 0.22 * (double)n_hit);
	assert_int_equal(sh.c.dropped_rule, lost_hit);
	assert_int_equal(rs.r[0].st[0].c.packets, n_hit);
	assert_int_equal(rs.r[0].st[0].c.dropped, lost_hit);
	assert_int_equal(rs.r[1].st[0].c.delayed, 100000 - lost_hit);

	/* blackhole rule for s2c only; duplicate and corrupt rules */
	impair_rules_init(&rs);
	assert_int_equal(parse("{\"name\": \"bh\", \"kind\": \"blackhole\", \"direction\": "
	                       "\"s2c\"}", NULL, &r), 0);
	assert_int_equal(impair_rules_put(&rs, &r, 0, 9), 0);
	assert_int_equal(parse("{\"name\": \"dup\", \"kind\": \"duplicate\", \"params\": {\"p\": 1}}",
	                       NULL, &r), 0);
	assert_int_equal(impair_rules_put(&rs, &r, 0, 9), 0);
	assert_int_equal(parse("{\"name\": \"cor\", \"kind\": \"corrupt\", \"params\": {\"p\": 1}}",
	                       NULL, &r), 0);
	assert_int_equal(impair_rules_put(&rs, &r, 0, 9), 0);
	impair_shaper_init(&sh, 5);
	impair_shape_rules(&sh, &s, &rs, IMPAIR_S2C, 1, 9, 0, 100, &f);
	assert_int_equal(f.ncopies, 0);
	assert_int_equal(sh.c.dropped_rule, 1);
	impair_shape_rules(&sh, &s, &rs, IMPAIR_C2S, 1, 9, 0, 100, &f);
	assert_int_equal(f.ncopies, 2);
	assert_true(f.corrupt_bit >= 0 && f.corrupt_bit < 800);
	assert_int_equal(sh.c.corrupted, 1);
	assert_int_equal(sh.c.duplicated, 1);
}

/* A rate rule is its own bottleneck, shared by the flows it hits. */
static void test_rule_rate(void **state)
{
	struct impair_rules rs;
	struct impair_rule r;
	struct impair_settings all;
	struct impair_shaper sh;
	struct impair_fate f;
	int drops = 0;

	impair_settings_defaults(&all);
	impair_rules_init(&rs);
	/* 8 Mbit/s: 1000 bytes take 1 ms; queue of 4000 bytes */
	assert_int_equal(parse("{\"name\": \"r\", \"kind\": \"rate\", \"params\": {\"rate_bps\": "
	                       "8000000, \"queue_bytes\": 4000}}", NULL, &r), 0);
	assert_int_equal(impair_rules_put(&rs, &r, 0, 1), 0);
	impair_shaper_init(&sh, 1);
	for (int i = 0; i < 10; i++) {
		impair_shape_rules(&sh, &all.dir[0], &rs, IMPAIR_C2S, 1, 1, 0, 1000, &f);
		if (f.ncopies == 0)
			drops++;
		else
			assert_int_equal(f.due_us[0], (uint64_t)(i + 1) * 1000);
	}
	assert_int_equal(drops, 6);
	assert_int_equal(sh.c.queue_drops, 6);
	assert_int_equal(rs.r[0].st[0].c.queue_drops, 6);
}

/*
 * Gilbert-Elliott on a virtual run of 2 million packets: the loss rate is
 * p / (p + r) and loss bursts last 1 / r on average (Gilbert's model,
 * loss_good 0, loss_bad 1).  With a fixed seed the numbers are fixed;
 * the bounds are what the statistics allow (several standard errors)
 * so that any seed would pass them.
 */
static void ge_run(const struct impair_ge *g, uint64_t seed, long n, double *loss,
                   double *burst)
{
	struct impair_rng rng;
	int bad = 0, prev = 0;
	long lost = 0, bursts = 0;

	impair_rng_seed(&rng, seed);
	for (long i = 0; i < n; i++) {
		int l = impair_ge_step(&rng, &bad, g);

		lost += l;
		if (l && !prev)
			bursts++;
		prev = l;
	}
	*loss = (double)lost / (double)n;
	*burst = bursts ? (double)lost / (double)bursts : 0.0;
}

static void test_ge_statistics(void **state)
{
	struct impair_ge g;
	char err[128];
	double loss, burst;

	/* mean loss 2%, mean burst 4 packets */
	assert_int_equal(impair_ge_from_burst(0.02, 4, &g, err, sizeof(err)), 0);
	assert_true(fabs(g.r - 0.25) < 1e-12);
	assert_true(fabs(g.p - 0.02 * 0.25 / 0.98) < 1e-12);
	ge_run(&g, 1, 2000000, &loss, &burst);
	print_message("GE 2%%/4: loss %.4f, mean burst %.3f\n", loss, burst);
	assert_true(loss > 0.019 && loss < 0.021);
	assert_true(burst > 3.85 && burst < 4.15);

	/* mean loss 10%, mean burst 1.5 */
	assert_int_equal(impair_ge_from_burst(0.1, 1.5, &g, err, sizeof(err)), 0);
	ge_run(&g, 2, 2000000, &loss, &burst);
	print_message("GE 10%%/1.5: loss %.4f, mean burst %.3f\n", loss, burst);
	assert_true(loss > 0.098 && loss < 0.102);
	assert_true(burst > 1.47 && burst < 1.53);

	/* the general model: losses in both states */
	g.p = 0.05;
	g.r = 0.2;
	g.loss_good = 0.01;
	g.loss_bad = 0.5;
	assert_true(fabs(impair_ge_mean_loss(&g) - (0.8 * 0.01 + 0.2 * 0.5)) < 1e-12);
	ge_run(&g, 3, 2000000, &loss, &burst);
	print_message("GE p .05 r .2 k .01 h .5: loss %.4f\n", loss);
	assert_true(loss > 0.105 && loss < 0.111);

	/* reproducible: the same seed gives the same run */
	{
		double l2, b2;

		ge_run(&g, 3, 100000, &loss, &burst);
		ge_run(&g, 3, 100000, &l2, &b2);
		assert_true(loss == l2 && burst == b2);
	}

	/* convenience form: bounds */
	assert_int_equal(impair_ge_from_burst(0, 5, &g, err, sizeof(err)), 0);
	assert_false(impair_ge_enabled(&g));
	assert_int_equal(impair_ge_from_burst(1, 5, &g, err, sizeof(err)), -1);
	assert_int_equal(impair_ge_from_burst(0.6, 1, &g, err, sizeof(err)), -1);   /* p > 1 */
	assert_int_equal(impair_ge_from_burst(0.5, 1, &g, err, sizeof(err)), 0);    /* p = 1 */
	assert_int_equal(impair_ge_from_burst(0.1, 0.9, &g, err, sizeof(err)), -1);
	assert_int_equal(impair_ge_from_burst(NAN, 2, &g, err, sizeof(err)), -1);
}

/* The settings' GE through the shaper, and its JSON forms. */
static void test_ge_settings(void **state)
{
	struct impair_settings s;
	struct impair_shaper sh;
	struct impair_fate f;
	char err[256];
	const char *upd = "{\"c2s\": {\"burst\": {\"loss\": 0.05, \"length\": 5}}}";
	long lost = 0;
	const long n = 400000;

	impair_settings_defaults(&s);
	assert_int_equal(impair_settings_update_text(&s, upd, strlen(upd), err, sizeof(err)), 0);
	assert_true(fabs(s.dir[IMPAIR_C2S].ge.r - 0.2) < 1e-12);
	assert_false(impair_ge_enabled(&s.dir[IMPAIR_S2C].ge));
	impair_shaper_init(&sh, 11);
	for (long i = 0; i < n; i++) {
		impair_shape(&sh, &s.dir[IMPAIR_C2S], 0, 100, &f);
		lost += f.ncopies == 0;
		sh.c.forwarded += (uint64_t)f.ncopies;
	}
	check_invariant(&sh.c);
	assert_int_equal(sh.c.dropped_burst, lost);
	assert_true(lost > 0.046 * n && lost < 0.054 * n);

	/* hostile forms refused, nothing changed */
	{
		static const char *const bad[] = {
			"{\"c2s\": {\"burst\": {\"loss\": 0.05}}}",
			"{\"c2s\": {\"burst\": {\"loss\": 0.05, \"length\": 5, \"x\": 1}}}",
			"{\"c2s\": {\"burst\": [0.05, 5]}}",
			"{\"c2s\": {\"burst\": {\"loss\": 0.05, \"length\": 5}, \"ge_p\": 0.1}}",
			"{\"c2s\": {\"ge_p\": 1.5}}",
			"{\"c2s\": {\"ge_loss_bad\": -1}}",
			"{\"both\": {\"burst\": {\"loss\": 0.99, \"length\": 2}}}",
		};
		struct impair_settings before = s;

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			if (impair_settings_update_text(&s, bad[i], strlen(bad[i]), err, sizeof(err)) == 0)
				fail_msg("accepted: %s", bad[i]);
			assert_memory_equal(&s, &before, sizeof(s));
		}
	}
	/* the command-line form LOSS:LENGTH */
	{
		json_t *v = impair_option_value("burst", "0.02:4");
		struct impair_dir_settings d = s.dir[IMPAIR_S2C];

		assert_non_null(v);
		assert_int_equal(impair_dir_set(&d, "burst", v, err, sizeof(err)), 0);
		assert_true(fabs(d.ge.r - 0.25) < 1e-12);
		json_decref(v);
		assert_null(impair_option_value("burst", "0.02"));
		assert_null(impair_option_value("burst", "0.02:"));
		assert_null(impair_option_value("burst", ":4"));
		assert_null(impair_option_value("burst", "0.02:4x"));
	}
}

static void test_presets(void **state)
{
	static const char *const names[] = { "none", "3g", "lte", "dsl", "satellite",
	                                      "lossy-wifi" };
	struct impair_settings s, def;
	json_t *all = impair_presets_to_json();

	impair_settings_defaults(&def);
	assert_int_equal(json_array_size(all), sizeof(names) / sizeof(names[0]));
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		json_t *p = json_array_get(all, i);
		json_t *set = json_object_get(p, "settings");
		struct impair_settings again;
		char err[256], *text;

		assert_string_equal(json_string_value(json_object_get(p, "name")), names[i]);
		assert_int_equal(impair_preset_apply(names[i], &s), 0);
		/* every preset passes the same validation as an API update */
		text = json_dumps(set, 0);
		impair_settings_defaults(&again);
		assert_int_equal(impair_settings_update_text(&again, text, strlen(text), err,
		                                             sizeof(err)), 0);
		free(text);
		for (int d = 0; d < 2; d++) {
			assert_true(fabs(again.dir[d].delay_ms - s.dir[d].delay_ms) < 1e-9);
			assert_int_equal(again.dir[d].rate_bps, s.dir[d].rate_bps);
			assert_true(fabs(again.dir[d].ge.p - s.dir[d].ge.p) < 1e-9);
		}
	}
	json_decref(all);
	assert_int_equal(impair_preset_apply("none", &s), 0);
	assert_memory_equal(&s, &def, sizeof(s));
	assert_int_equal(impair_preset_apply("3g", &s), 0);
	assert_true(s.dir[IMPAIR_C2S].rate_bps < s.dir[IMPAIR_S2C].rate_bps);   /* uplink slower */
	assert_true(s.dir[IMPAIR_C2S].delay_ms == 150.0);
	assert_int_equal(impair_preset_apply("satellite", &s), 0);
	assert_true(2 * s.dir[IMPAIR_C2S].delay_ms >= 500.0);                    /* GEO RTT */
	assert_true(fabs(impair_ge_mean_loss(&s.dir[IMPAIR_S2C].ge) - 0.005) < 1e-12);
	assert_int_equal(impair_preset_apply("lossy-wifi", &s), 0);
	assert_true(fabs(impair_ge_mean_loss(&s.dir[IMPAIR_C2S].ge) - 0.02) < 1e-12);
	assert_int_equal(impair_preset_apply("4g", &s), -1);
	assert_int_equal(impair_preset_apply("", &s), -1);
	assert_int_equal(impair_preset_apply(NULL, &s), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_parse_good),
		cmocka_unit_test(test_rule_parse_hostile),
		cmocka_unit_test(test_rules_list),
		cmocka_unit_test(test_rule_flow_toxicity),
		cmocka_unit_test(test_rules_in_shaper),
		cmocka_unit_test(test_rule_rate),
		cmocka_unit_test(test_ge_statistics),
		cmocka_unit_test(test_ge_settings),
		cmocka_unit_test(test_presets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
