/*
 * libFuzzer harness for the controller's scenario format and run state
 * machine (src/lab/controller/scenario.c, run.c).
 *
 * The input is a scenario's JSON text, and also (up to its first NUL) one
 * timeline statement.  A scenario that parses is turned back into JSON and
 * then run through the state machine with outcomes (success, failure,
 * abort, workload end) drawn from the input's bytes.  Properties: events
 * are sorted and within the duration, every run finishes within a bounded
 * number of steps, and a run that did not fail a restore leaves impair as
 * it found it and the sender stopped unless a stop failed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lab/controller/controller_internal.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void statement(const uint8_t *data, size_t size)
{
	struct sc_event ev[SC_MAX_EVENTS];
	char buf[512], err[256];
	size_t n = size < sizeof(buf) - 1 ? size : sizeof(buf) - 1;
	int k;

	memcpy(buf, data, n);
	buf[n] = '\0';
	k = sc_parse_statement(buf, ev, SC_MAX_EVENTS, err, sizeof(err));
	CHECK(k == -1 || (k >= 1 && k <= SC_MAX_EVENTS));
	for (int i = 0; i < k; i++) {
		CHECK(ev[i].at_ms <= SC_MAX_DURATION_S * 1000u);
		if (ev[i].kind == SC_EV_IMPAIR) {
			json_t *j = sc_event_impair_json(&ev[i]);

			CHECK(j != NULL);
			json_decref(j);
		}
	}
}

static void run(const struct scenario *sc, const uint8_t *data, size_t size)
{
	struct run_sm r;
	uint64_t now = 0;
	size_t pos = 0;
	int dirty = 0, started = 0, failed_restore = 0, failed_stop = 0;

	run_init(&r, sc, data[0] & 1, (data[0] >> 1) & 1);
	for (int step = 0; step < 200000; step++) {
		uint8_t b = data[pos++ % size];
		unsigned arg;
		enum run_act a;

		if (b == 0xa5)
			run_abort(&r, "fuzz");
		a = run_next(&r, now, started && (b & 0x40) ? WL_ENDED : started ? WL_RUNNING
		             : WL_UNKNOWN, &arg);
		if (a == ACT_FINISH) {
			CHECK(run_finished(&r));
			if (r.has_impair && !failed_restore)
				CHECK(!dirty);
			if (!failed_stop && r.phase != RUN_DONE)
				CHECK(!started || !r.started);
			return;
		}
		CHECK(a != ACT_WAIT);
		if (a == ACT_NONE) {
			now += 1 + (b & 0x3f) * 50;
			continue;
		}
		if (b == 0x5a) {
			if (a == ACT_RESTORE)
				failed_restore = 1;
			if (a == ACT_STOP)
				failed_stop = 1;
			run_action_done(&r, 0, "fuzz");
			continue;
		}
		if (a == ACT_APPLY_EVENT) {
			CHECK(arg < sc->nevents);
			if (sc->ev[arg].kind == SC_EV_IMPAIR)
				dirty = 1;
			else if (sc->ev[arg].kind == SC_EV_RESTORE)
				dirty = 0;
		} else if (a == ACT_RESTORE) {
			dirty = 0;
		} else if (a == ACT_START) {
			CHECK(arg < sc->nvariants);
			started = 1;
		} else if (a == ACT_STOP) {
			started = 0;
		}
		run_action_done(&r, 1, NULL);
	}
	abort();   /* never finished */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct scenario sc;
	char err[256];
	json_t *j;

	if (size == 0)
		return 0;
	statement(data, size);
	if (sc_parse((const char *)data, size, &sc, err, sizeof(err)) < 0)
		return 0;
	CHECK(sc.nvariants >= 1 && sc.nvariants <= SC_MAX_VARIANTS);
	CHECK(sc.repeat >= 1 && sc.repeat <= SC_MAX_REPEAT);
	CHECK(sc.nevents <= SC_MAX_EVENTS);
	for (unsigned i = 0; i < sc.nevents; i++) {
		CHECK(sc.ev[i].at_ms <= sc.duration_ms);
		CHECK(i == 0 || sc.ev[i - 1].at_ms <= sc.ev[i].at_ms);
	}
	j = sc_to_json(&sc);
	CHECK(j != NULL);
	json_decref(j);
	/* Long durations would make the clock loop slow; the machine is the same. */
	if (sc.duration_ms > 20000)
		sc.duration_ms = 20000;
	for (unsigned i = 0; i < sc.nevents; i++)
		if (sc.ev[i].at_ms > sc.duration_ms)
			sc.ev[i].at_ms = sc.duration_ms;
	run(&sc, data, size);
	return 0;
}
