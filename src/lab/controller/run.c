/*
 * The state machine of one run: iterations (repeat x variants) of a
 * workload under the scenario's timeline.  Pure: the caller passes the time
 * and the workload's state, performs the action asked for (an HTTP call to a
 * node) and reports how it went.  Whatever happens -- an abort, a node that
 * fails, a workload that dies -- the machine goes through CLEANUP, which
 * stops the workload and puts impair back to the settings it had before
 * the run.
 *
 *   PENDING -> SETUP -> RUNNING -> COLLECT -> (SETUP ...) -> CLEANUP -> DONE
 *                 \________\__________\________________________/-> ABORTED/FAILED
 */
#include "lab/controller/controller_internal.h"

#include <stdio.h>
#include <string.h>

static const char *phase_names[] = {
	"pending", "setup", "running", "collect", "cleanup", "done", "aborted", "failed",
};

const char *run_phase_name(enum run_phase p)
{
	return p <= RUN_FAILED ? phase_names[p] : "?";
}

int run_finished(const struct run_sm *r)
{
	return r->phase == RUN_DONE || r->phase == RUN_ABORTED || r->phase == RUN_FAILED;
}

void run_init(struct run_sm *r, const struct scenario *sc, int has_impair, int has_recv)
{
	memset(r, 0, sizeof(*r));
	r->sc = sc;
	r->has_impair = has_impair;
	r->has_recv = has_recv;
	r->iters = sc->repeat * sc->nvariants;
	r->phase = RUN_PENDING;
}

void run_abort(struct run_sm *r, const char *why)
{
	if (run_finished(r) || r->abort_req)
		return;
	r->abort_req = 1;
	snprintf(r->why, sizeof(r->why), "%s", why ? why : "stopped");
}

static enum run_act ask(struct run_sm *r, enum run_act a)
{
	r->pending = 1;
	r->pending_act = a;
	return a;
}

static void to_cleanup(struct run_sm *r)
{
	r->phase = RUN_CLEANUP;
	r->step = 0;
}

void run_action_done(struct run_sm *r, int ok, const char *why)
{
	enum run_act a = r->pending_act;

	if (!r->pending)
		return;
	r->pending = 0;
	r->pending_act = ACT_NONE;
	if (ok) {
		if (a == ACT_SAVE_BASELINE)
			r->baseline_saved = 1;
		else if (a == ACT_APPLY_EVENT)
			r->impair_touched = 1;
		else if (a == ACT_START)
			r->started = 1;
		else if (a == ACT_STOP)
			r->started = 0;
		return;
	}
	if (!r->failed) {
		r->failed = 1;
		snprintf(r->why, sizeof(r->why), "%s", why ? why : "a node did not answer");
	}
	if (a == ACT_STOP)
		r->started = 0;    /* tried: do not loop on a dead sender */
	if (r->phase != RUN_CLEANUP)
		to_cleanup(r);
}

static enum run_act setup(struct run_sm *r, uint64_t now_ms, unsigned *arg)
{
	const struct scenario *sc = r->sc;

	switch (r->step) {
	case 0:
		r->step = 1;
		r->next_event = 0;
		if (r->has_impair || r->has_recv)
			return ask(r, ACT_RESTORE);
		/* fall through */
	case 1:
		r->step = 2;
		if (r->has_impair)
			return ask(r, ACT_COUNTERS_BEFORE);
		/* fall through */
	case 2:
		/* Statements "at 0" hold from the first byte on. */
		if (r->next_event < sc->nevents && sc->ev[r->next_event].at_ms == 0) {
			*arg = r->next_event++;
			return ask(r, ACT_APPLY_EVENT);
		}
		r->step = 3;
		/* fall through */
	default:
		*arg = r->iter % sc->nvariants;
		r->t0_ms = now_ms;
		r->phase = RUN_RUNNING;
		return ask(r, ACT_START);
	}
}

static enum run_act collect(struct run_sm *r, unsigned *arg)
{
	switch (r->step) {
	case 0:
		r->step = 1;
		if (r->started)
			return ask(r, ACT_STOP);
		/* fall through */
	case 1:
		r->step = 2;
		return ask(r, ACT_COLLECT);
	case 2:
		r->step = 3;
		if (r->has_impair)
			return ask(r, ACT_COUNTERS_AFTER);
		/* fall through */
	default:
		r->iter++;
		r->step = 0;
		if (r->iter < r->iters && !r->abort_req) {
			r->phase = RUN_SETUP;
			return ACT_NONE;
		}
		to_cleanup(r);
		return ACT_NONE;
	}
}

enum run_act run_next(struct run_sm *r, uint64_t now_ms, enum run_wl wl, unsigned *arg)
{
	const struct scenario *sc = r->sc;
	unsigned dummy;

	if (arg == NULL)
		arg = &dummy;
	*arg = 0;
	if (r->pending)
		return ACT_WAIT;
	/* Bounded: each pass either asks for an action or moves the phase on. */
	for (int guard = 0; guard < 16; guard++) {
		enum run_act a;

		switch (r->phase) {
		case RUN_PENDING:
			if (r->abort_req) {
				r->phase = RUN_ABORTED;
				return ACT_FINISH;
			}
			r->phase = RUN_SETUP;
			r->step = 0;
			if ((r->has_impair || r->has_recv) && !r->baseline_saved)
				return ask(r, ACT_SAVE_BASELINE);
			continue;
		case RUN_SETUP:
			if (r->abort_req) {
				to_cleanup(r);
				continue;
			}
			return setup(r, now_ms, arg);
		case RUN_RUNNING: {
			uint64_t el = now_ms >= r->t0_ms ? now_ms - r->t0_ms : 0;

			if (r->abort_req) {
				to_cleanup(r);
				continue;
			}
			if (r->next_event < sc->nevents && sc->ev[r->next_event].at_ms <= el) {
				*arg = r->next_event++;
				return ask(r, ACT_APPLY_EVENT);
			}
			if (wl == WL_ENDED)
				r->started = 0;
			/* The workload is told the same duration; it gets a grace period to
			 * finish its last calls and take recv's trailers before it is stopped. */
			if (wl == WL_ENDED || el >= (uint64_t)sc->duration_ms + RUN_GRACE_MS) {
				r->phase = RUN_COLLECT;
				r->step = 0;
				continue;
			}
			return ACT_NONE;
		}
		case RUN_COLLECT:
			a = collect(r, arg);
			if (a != ACT_NONE)
				return a;
			continue;
		case RUN_CLEANUP:
			if (r->step == 0) {
				r->step = 1;
				if (r->started)
					return ask(r, ACT_STOP);
			}
			if (r->step == 1) {
				r->step = 2;
				if ((r->has_impair || r->has_recv) && r->baseline_saved)
					return ask(r, ACT_RESTORE);
			}
			r->phase = r->failed ? RUN_FAILED : r->abort_req ? RUN_ABORTED : RUN_DONE;
			return ACT_FINISH;
		default:
			return ACT_FINISH;
		}
	}
	return ACT_NONE;
}
