/*
 * The controller's parts.  scenario.c (the scenario format) and run.c (the
 * state machine of one run) are pure: no I/O, no clock, no libevent; they
 * are unit-tested and fuzzed (tests/unit/test_lab_scenario.c,
 * tests/fuzz/fuzz_lab_scenario.c).  controller.c does the I/O: the API,
 * polling, executing a run's actions, and the state directory.
 */
#ifndef SCTPT_LAB_CONTROLLER_INTERNAL_H
#define SCTPT_LAB_CONTROLLER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define SC_MAX_EVENTS 64
#define SC_MAX_VARIANTS 4
#define SC_MAX_REPEAT 20
#define SC_MAX_DURATION_S 3600
#define SC_NAME_MAX 64
#define SC_ID_MAX 33                   /* node ids: [A-Za-z0-9_-]{1,32} */
#define SC_ADDR_MAX 280
#define SC_MAX_TEXT 16384              /* a scenario's JSON text */

enum sc_dir { SC_BOTH = 0, SC_C2S = 1, SC_S2C = 2 };

enum sc_kind {
	SC_EV_IMPAIR,                      /* set field = value in dir */
	SC_EV_RESTORE,                     /* impair back to the settings before the run */
	SC_EV_RECV_DELAY,                  /* recv's processing delay, ms */
};

enum sc_field {
	SC_F_LOSS, SC_F_DELAY, SC_F_JITTER, SC_F_DUP, SC_F_REORDER, SC_F_REORDER_MS,
	SC_F_RATE, SC_F_BLACKHOLE, SC_F_NFIELDS
};

struct sc_event {
	uint32_t at_ms;
	enum sc_kind kind;
	enum sc_dir dir;
	enum sc_field field;
	double value;
	char text[96];                     /* the statement, for the run log */
};

struct sc_variant {
	char name[SC_NAME_MAX];
	char socks[SC_ADDR_MAX];           /* "" = direct */
	char target[SC_ADDR_MAX];          /* "" = send's own --to */
};

struct sc_workload {
	int rpc;                           /* 0 bulk, 1 rpc */
	unsigned streams;
	uint64_t bytes;                    /* per stream; 0 = until the duration */
	uint32_t rpc_req, rpc_resp, rpc_gap_ms;
	uint64_t rpc_count;                /* 0 = until the duration */
};

struct scenario {
	char name[SC_NAME_MAX];
	uint64_t seed;
	unsigned repeat;
	uint32_t duration_ms;
	struct sc_workload w;
	unsigned nevents;
	struct sc_event ev[SC_MAX_EVENTS];
	unsigned nvariants;                /* at least 1 */
	struct sc_variant var[SC_MAX_VARIANTS];
	char send[SC_ID_MAX], recv[SC_ID_MAX], impair[SC_ID_MAX];   /* node ids, "" = any */
};

/* The impair JSON name of a field ("loss", "delay_ms", ...). */
const char *sc_field_name(enum sc_field f);

/*
 * Parse one timeline statement, "at 30s blackhole c2s" or
 * "at 0 loss 2%, delay 25ms": up to max events appended to ev.  Returns the
 * number of events, or -1 with err.
 */
int sc_parse_statement(const char *s, struct sc_event *ev, unsigned max, char *err,
                       size_t errlen);
/* A whole scenario from its JSON text (docs/lab.md).  0, or -1 with err. */
int sc_parse(const char *text, size_t len, struct scenario *sc, char *err, size_t errlen);
/* The impair PUT /settings body of an SC_EV_IMPAIR event (new reference). */
json_t *sc_event_impair_json(const struct sc_event *e);
/* The scenario back as JSON (normalised; for run records and the UI). */
json_t *sc_to_json(const struct scenario *sc);

/* ---- run.c: the state machine of a run */

enum run_phase {
	RUN_PENDING, RUN_SETUP, RUN_RUNNING, RUN_COLLECT, RUN_CLEANUP,
	RUN_DONE, RUN_ABORTED, RUN_FAILED
};

enum run_act {
	ACT_NONE,              /* nothing to do now */
	ACT_WAIT,              /* an action is outstanding: call run_action_done first */
	ACT_SAVE_BASELINE,     /* GET impair's and recv's /settings: what to restore */
	ACT_RESTORE,           /* PUT that baseline back */
	ACT_COUNTERS_BEFORE,   /* GET impair /stats */
	ACT_APPLY_EVENT,       /* arg: event index */
	ACT_START,             /* arg: variant index; PUT send /settings start */
	ACT_STOP,              /* PUT send /settings stop */
	ACT_COLLECT,           /* GET send /stats (and recv) into the iteration's result */
	ACT_COUNTERS_AFTER,    /* GET impair /stats */
	ACT_FINISH,            /* the run is over: phase says how */
};

enum run_wl { WL_UNKNOWN, WL_RUNNING, WL_ENDED };

/* After the duration, a workload still running is stopped this much later. */
#define RUN_GRACE_MS 10000

struct run_sm {
	enum run_phase phase;
	const struct scenario *sc;
	int has_impair, has_recv;
	unsigned iter, iters;              /* iteration i runs variant i % nvariants */
	unsigned next_event;
	unsigned step;                     /* position within a phase's sequence */
	uint64_t t0_ms;                    /* start of the current iteration */
	int pending;                       /* an action is outstanding */
	enum run_act pending_act;
	int baseline_saved, impair_touched, started, abort_req, failed;
	char why[160];
};

void run_init(struct run_sm *r, const struct scenario *sc, int has_impair, int has_recv);
/*
 * The next action at time now_ms (monotonic), given the workload's state
 * (from send's /stats).  *arg receives an event or variant index.  After any
 * action other than NONE, WAIT and FINISH the caller must report
 * run_action_done before asking again.
 */
enum run_act run_next(struct run_sm *r, uint64_t now_ms, enum run_wl wl, unsigned *arg);
void run_action_done(struct run_sm *r, int ok, const char *why);
/* Ask to stop: the run stops its workload, restores impair, ends ABORTED. */
void run_abort(struct run_sm *r, const char *why);
const char *run_phase_name(enum run_phase p);
int run_finished(const struct run_sm *r);

/* ---- testbed.c: namespaces and processes for the side-by-side view (I/O) */

struct event_base;
/* At start: remember the binaries, clean up what a crashed controller left. */
int tb_init(struct event_base *base, const char *state_dir, const char *sctpt_bin);
void tb_tick(void);                    /* advance testbeds that are starting */
void tb_shutdown(void);                /* tear every testbed down (at exit) */
int tb_create(json_t *spec, json_t **out, char *err, size_t errlen);   /* HTTP status */
int tb_find(const char *id);
json_t *tb_json(int i);
json_t *tb_list(void);
int tb_owns_node(int i, const char *node_id);
void tb_delete(int i);

/* What controller.c lends testbed.c. */
void ctl_event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
double ctl_now_s(void);
int ctl_write_atomic(const char *path, json_t *j);
json_t *ctl_read_json_file(const char *path, size_t max);
/* A node that lives as long as its testbed (never saved in nodes.json). */
int ctl_node_register(const char *id, const char *kind, const char *url, char *err,
                      size_t errlen);
void ctl_node_unregister(const char *id);

#endif
