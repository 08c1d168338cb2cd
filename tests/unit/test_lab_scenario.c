/*
 * Unit tests for the controller's scenario format and run state machine
 * (src/lab/controller/scenario.c, run.c): statements and whole scenarios,
 * good and hostile, and runs driven through every ending -- done, a node
 * that fails, an abort at each phase -- checking that impair is always
 * restored when the run touched it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "lab/controller/controller_internal.h"

static int parse(const char *text, struct scenario *sc, char *err, size_t len)
{
	return sc_parse(text, strlen(text), sc, err, len);
}

static void test_statement(void **state)
{
	struct sc_event ev[8];
	char err[200];
	int n;

	(void)state;
	n = sc_parse_statement("at 0 s loss 2%", ev, 8, err, sizeof(err));
	assert_int_equal(n, -1);     /* "0 s": the unit belongs to the number */
	n = sc_parse_statement("at 0s loss 2%", ev, 8, err, sizeof(err));
	assert_int_equal(n, 1);
	assert_int_equal(ev[0].at_ms, 0);
	assert_int_equal(ev[0].kind, SC_EV_IMPAIR);
	assert_int_equal(ev[0].field, SC_F_LOSS);
	assert_int_equal(ev[0].dir, SC_BOTH);
	assert_true(ev[0].value > 0.0199 && ev[0].value < 0.0201);
	n = sc_parse_statement("  at 30s blackhole c2s", ev, 8, err, sizeof(err));
	assert_int_equal(n, 1);
	assert_int_equal(ev[0].at_ms, 30000);
	assert_int_equal(ev[0].field, SC_F_BLACKHOLE);
	assert_int_equal(ev[0].dir, SC_C2S);
	assert_true(ev[0].value == 1);
	n = sc_parse_statement("at 1.5m delay 25ms s2c, jitter 5, rate 10M, recv-delay 3ms",
	                       ev, 8, err, sizeof(err));
	assert_int_equal(n, 4);
	assert_int_equal(ev[0].at_ms, 90000);
	assert_true(ev[0].value == 25 && ev[0].dir == SC_S2C);
	assert_true(ev[1].field == SC_F_JITTER && ev[1].value == 5);
	assert_true(ev[2].field == SC_F_RATE && ev[2].value == 10e6);
	assert_true(ev[3].kind == SC_EV_RECV_DELAY && ev[3].value == 3);
	n = sc_parse_statement("at 500ms restore", ev, 8, err, sizeof(err));
	assert_int_equal(n, 1);
	assert_int_equal(ev[0].kind, SC_EV_RESTORE);
	assert_int_equal(ev[0].at_ms, 500);
	n = sc_parse_statement("at 2s unblackhole", ev, 8, err, sizeof(err));
	assert_int_equal(n, 1);
	assert_true(ev[0].value == 0);
}

static void test_statement_hostile(void **state)
{
	static const char *bad[] = {
		"", "at", "at 5s", "loss 2%", "at -1s loss 1%", "at 1x loss 1%",
		"at 1s loss 101%", "at 1s loss 1.5", "at 1s loss -0.1", "at 1s loss nan",
		"at 1s loss inf", "at 1s loss 1e999", "at 1s delay 60001", "at 1s delay 1h",
		"at 1s rate 1T", "at 1s rate 200G", "at 1s blackhole up", "at 1s loss 1% c2s s2c",
		"at 1s restore now", "at 1s explode", "at 1s loss 1%,", "at 1s ,loss 1%",
		"at 99999999999s loss 1%", "at 3601s loss 1%", "at 1s recv-delay", "at 1s loss",
		"at 1s loss 0x10", "at1s loss 1%", "at 1s loss 1% both extra words here too many",
	};
	struct sc_event ev[4];
	char err[200];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (sc_parse_statement(bad[i], ev, 4, err, sizeof(err)) != -1)
			fail_msg("accepted '%s'", bad[i]);
		assert_true(err[0] != '\0');
	}
	/* More actions than room. */
	assert_int_equal(sc_parse_statement("at 1s loss 1%, dup 1%, reorder 1%", ev, 2, err,
	                                    sizeof(err)), -1);
	/* Over-long statements are refused, not cut. */
	{
		char big[600];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		memcpy(big, "at 1s loss 1% ", 14);
		assert_int_equal(sc_parse_statement(big, ev, 4, err, sizeof(err)), -1);
	}
}

static void test_scenario(void **state)
{
	struct scenario sc;
	char err[300];
	json_t *j;

	(void)state;
	assert_int_equal(parse("{\"name\": \"loss vs ssh\", \"duration_s\": 60, \"seed\": 7,"
	        "\"repeat\": 3, \"workload\": {\"mode\": \"rpc\", \"streams\": 4, \"rpc_req\": 200},"
	        "\"timeline\": [\"at 45s restore\", \"at 0s loss 2%\", \"at 30s blackhole c2s\"],"
	        "\"variants\": [{\"name\": \"sctpt\", \"socks\": \"127.0.0.1:1080\"},"
	        "{\"name\": \"ssh\", \"socks\": \"127.0.0.1:1081\"}],"
	        "\"nodes\": {\"impair\": \"imp-1\"}}", &sc, err, sizeof(err)), 0);
	assert_string_equal(sc.name, "loss vs ssh");
	assert_int_equal(sc.duration_ms, 60000);
	assert_int_equal(sc.seed, 7);
	assert_int_equal(sc.repeat, 3);
	assert_int_equal(sc.nvariants, 2);
	assert_string_equal(sc.var[1].socks, "127.0.0.1:1081");
	assert_int_equal(sc.w.rpc, 1);
	assert_int_equal(sc.w.rpc_resp, 200);   /* defaults to the request size */
	assert_string_equal(sc.impair, "imp-1");
	/* Sorted by time. */
	assert_int_equal(sc.nevents, 3);
	assert_int_equal(sc.ev[0].at_ms, 0);
	assert_int_equal(sc.ev[1].at_ms, 30000);
	assert_int_equal(sc.ev[2].kind, SC_EV_RESTORE);
	j = sc_to_json(&sc);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "timeline")), 3);
	json_decref(j);
	/* A timeline as one string, ';' or newlines between statements. */
	assert_int_equal(parse("{\"duration_s\": 10, \"timeline\": \"at 0s loss 1%; at 5s restore\\n"
	                       "\\n at 6s dup 1%\"}", &sc, err, sizeof(err)), 0);
	assert_int_equal(sc.nevents, 3);
	assert_int_equal(sc.nvariants, 1);
	assert_string_equal(sc.var[0].name, "default");
	j = sc_event_impair_json(&sc.ev[0]);
	assert_true(json_real_value(json_object_get(json_object_get(j, "both"), "loss")) > 0.0099);
	json_decref(j);
}

static void test_scenario_hostile(void **state)
{
	static const char *bad[] = {
		"", "null", "[]", "42", "{", "{\"duration_s\": 10,}", "{}",
		"{\"duration_s\": 0}", "{\"duration_s\": 3601}", "{\"duration_s\": \"10\"}",
		"{\"duration_s\": 10, \"duration_s\": 20}",
		"{\"duration_s\": 10, \"extra\": 1}",
		"{\"duration_s\": 10, \"repeat\": 0}", "{\"duration_s\": 10, \"repeat\": 21}",
		"{\"duration_s\": 10, \"repeat\": -1}", "{\"duration_s\": 10, \"seed\": -5}",
		"{\"duration_s\": 10, \"seed\": 1.5}",
		"{\"duration_s\": 10, \"name\": \"\"}", "{\"duration_s\": 10, \"name\": \"a\\nb\"}",
		"{\"duration_s\": 10, \"name\": \"a\\u0000b\"}",
		"{\"duration_s\": 10, \"timeline\": [\"at 11s loss 1%\"]}",
		"{\"duration_s\": 10, \"timeline\": [1]}", "{\"duration_s\": 10, \"timeline\": 1}",
		"{\"duration_s\": 10, \"timeline\": [\"loss 1%\"]}",
		"{\"duration_s\": 10, \"workload\": []}",
		"{\"duration_s\": 10, \"workload\": {\"mode\": \"udp\"}}",
		"{\"duration_s\": 10, \"workload\": {\"streams\": 0}}",
		"{\"duration_s\": 10, \"workload\": {\"streams\": 1025}}",
		"{\"duration_s\": 10, \"workload\": {\"rpc_req\": 100}}",
		"{\"duration_s\": 10, \"workload\": {\"mode\": \"rpc\", \"bytes\": 100}}",
		"{\"duration_s\": 10, \"workload\": {\"mode\": \"rpc\", \"rpc_req\": 2000000}}",
		"{\"duration_s\": 10, \"workload\": {\"bytes\": 99999999999999999}}",
		"{\"duration_s\": 10, \"variants\": []}",
		"{\"duration_s\": 10, \"variants\": [{}]}",
		"{\"duration_s\": 10, \"variants\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}",
		"{\"duration_s\": 10, \"variants\": [{\"name\": \"a\", \"socks\": 5}]}",
		"{\"duration_s\": 10, \"variants\": [{\"name\": \"a\"},{\"name\": \"b\"},"
		"{\"name\": \"c\"},{\"name\": \"d\"},{\"name\": \"e\"}]}",
		"{\"duration_s\": 10, \"nodes\": {\"send\": \"../x\"}}",
		"{\"duration_s\": 10, \"nodes\": {\"proxy\": \"a\"}}",
		"{\"duration_s\": 10, \"nodes\": []}",
	};
	struct scenario sc;
	char err[300];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (parse(bad[i], &sc, err, sizeof(err)) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_true(err[0] != '\0');
	}
	/* Too many events in all. */
	{
		char big[SC_MAX_TEXT];
		size_t n = (size_t)snprintf(big, sizeof(big), "{\"duration_s\": 100, \"timeline\": [");

		for (int i = 0; i < SC_MAX_EVENTS + 1; i++)
			n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"at %ds loss 1%%\"",
			                      i ? "," : "", i);
		snprintf(big + n, sizeof(big) - n, "]}");
		assert_int_equal(parse(big, &sc, err, sizeof(err)), -1);
	}
	/* Too long a text. */
	{
		static char huge[SC_MAX_TEXT + 10];

		memset(huge, ' ', sizeof(huge) - 1);
		huge[0] = '{';
		huge[sizeof(huge) - 2] = '}';
		assert_int_equal(sc_parse(huge, sizeof(huge) - 1, &sc, err, sizeof(err)), -1);
	}
}

/* ---- the run state machine */

struct sim {
	int impair_dirty;          /* impair differs from its baseline */
	int restored, started, stopped, collected, applied;
	enum run_act failed;       /* the action made to fail */
};

/* Drive a run; fail_at: the n-th action fails (0: none); abort_at: abort at that step. */
static enum run_phase drive(const struct scenario *sc, int has_impair, int fail_at,
                            int abort_at, int wl_ends_early, struct sim *s)
{
	struct run_sm r;
	uint64_t now = 1000;
	int actions = 0;

	memset(s, 0, sizeof(*s));
	run_init(&r, sc, has_impair, 0);
	for (int step = 0; step < 100000; step++) {
		unsigned arg = 0;
		enum run_wl wl = s->started && wl_ends_early && now > 1500 ? WL_ENDED
		               : s->started ? WL_RUNNING : WL_UNKNOWN;
		enum run_act a;

		if (abort_at && step == abort_at)
			run_abort(&r, "test");
		a = run_next(&r, now, wl, &arg);
		if (a == ACT_FINISH)
			return r.phase;
		assert_int_not_equal(a, ACT_WAIT);
		if (a == ACT_NONE) {
			now += 100;
			continue;
		}
		actions++;
		assert_true(r.pending);
		assert_int_equal(run_next(&r, now, wl, &arg), ACT_WAIT);
		if (fail_at && actions == fail_at) {
			s->failed = a;
			run_action_done(&r, 0, "node down");
			continue;
		}
		switch (a) {
		case ACT_APPLY_EVENT:
			assert_true(arg < sc->nevents);
			s->applied++;
			if (sc->ev[arg].kind == SC_EV_IMPAIR)
				s->impair_dirty = 1;
			else if (sc->ev[arg].kind == SC_EV_RESTORE)
				s->impair_dirty = 0;
			break;
		case ACT_RESTORE:
			s->impair_dirty = 0;
			s->restored++;
			break;
		case ACT_START:
			assert_true(arg < sc->nvariants);
			s->started = 1;
			break;
		case ACT_STOP:
			s->started = 0;
			s->stopped++;
			break;
		case ACT_COLLECT:
			s->collected++;
			break;
		default:
			break;
		}
		run_action_done(&r, 1, NULL);
	}
	fail_msg("the run did not finish");
	return RUN_FAILED;
}

static void scenario_for_run(struct scenario *sc, int repeat)
{
	char err[200], text[400];

	snprintf(text, sizeof(text), "{\"duration_s\": 3, \"repeat\": %d, \"timeline\": "
	         "[\"at 0s loss 2%%\", \"at 1s blackhole c2s\", \"at 2s delay 10ms\"],"
	         "\"variants\": [{\"name\": \"a\"}, {\"name\": \"b\"}]}", repeat);
	assert_int_equal(sc_parse(text, strlen(text), sc, err, sizeof(err)), 0);
}

static void test_run_done(void **state)
{
	struct scenario sc;
	struct sim s;

	(void)state;
	scenario_for_run(&sc, 2);
	assert_int_equal(drive(&sc, 1, 0, 0, 0, &s), RUN_DONE);
	assert_int_equal(s.collected, 4);            /* 2 repeats x 2 variants */
	assert_int_equal(s.applied, 12);
	assert_false(s.impair_dirty);
	assert_false(s.started);
	/* A workload that ends before the duration ends its iteration. */
	assert_int_equal(drive(&sc, 1, 0, 0, 1, &s), RUN_DONE);
	assert_int_equal(s.collected, 4);
	assert_false(s.impair_dirty);
}

static void test_run_failures(void **state)
{
	struct scenario sc;
	struct sim s;

	(void)state;
	scenario_for_run(&sc, 1);
	/* Whichever action fails, the run ends FAILED, stopped and restored. */
	for (int k = 1; k <= 30; k++) {
		enum run_phase p = drive(&sc, 1, k, 0, 0, &s);

		if (p == RUN_DONE)
			break;           /* k is past the last action */
		assert_int_equal(p, RUN_FAILED);
		/* Only a failed stop may leave the sender running (it is not
		 * answering), only a failed restore may leave impair changed. */
		if (s.started && s.failed != ACT_STOP)
			fail_msg("the sender left running when action %d failed", k);
		if (s.impair_dirty && s.failed != ACT_RESTORE)
			fail_msg("impair left changed when action %d failed", k);
	}
}

static void test_run_abort(void **state)
{
	struct scenario sc;
	struct sim s;

	(void)state;
	scenario_for_run(&sc, 3);
	for (int at = 1; at < 200; at += 3) {
		enum run_phase p = drive(&sc, 1, 0, at, 0, &s);

		assert_true(p == RUN_ABORTED || p == RUN_DONE);
		assert_false(s.impair_dirty);
		assert_false(s.started);
	}
	/* Aborted before anything happened. */
	{
		struct run_sm r;

		run_init(&r, &sc, 1, 0);
		run_abort(&r, "early");
		assert_int_equal(run_next(&r, 0, WL_UNKNOWN, NULL), ACT_FINISH);
		assert_int_equal(r.phase, RUN_ABORTED);
		assert_string_equal(run_phase_name(r.phase), "aborted");
		/* Idempotent afterwards. */
		run_abort(&r, "again");
		run_action_done(&r, 0, "late");
		assert_int_equal(run_next(&r, 0, WL_UNKNOWN, NULL), ACT_FINISH);
		assert_int_equal(r.phase, RUN_ABORTED);
	}
}

static void test_run_no_impair(void **state)
{
	struct scenario sc;
	struct sim s;
	char err[200];
	const char *t = "{\"duration_s\": 2, \"workload\": {\"mode\": \"bulk\", \"bytes\": 1000}}";

	(void)state;
	assert_int_equal(sc_parse(t, strlen(t), &sc, err, sizeof(err)), 0);
	assert_int_equal(drive(&sc, 0, 0, 0, 0, &s), RUN_DONE);
	assert_int_equal(s.restored, 0);
	assert_int_equal(s.collected, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_statement),
		cmocka_unit_test(test_statement_hostile),
		cmocka_unit_test(test_scenario),
		cmocka_unit_test(test_scenario_hostile),
		cmocka_unit_test(test_run_done),
		cmocka_unit_test(test_run_failures),
		cmocka_unit_test(test_run_abort),
		cmocka_unit_test(test_run_no_impair),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
