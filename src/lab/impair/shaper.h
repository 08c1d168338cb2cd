/*
 * The fate of one packet in one direction: dropped (and why), or sent as
 * one or two copies, each at a time in the future.  Pure: the caller
 * passes the clock (microseconds, monotonic) and owns the queueing; the
 * counters here are the ones the REST API reports.
 *
 * Order of the stages, per packet:
 *   blackhole -> loss -> bursty loss (Gilbert-Elliott) -> the rules that
 *   apply, in list order, for dropping (blackhole, loss, burst) ->
 *   duplication (settings, then duplicate rules; at most one extra copy)
 *   -> corruption (corrupt rules) -> per copy: rate limit (the settings'
 *   bottleneck, then each rate rule's, in list order; a full queue drops
 *   the copy) -> delay + jitter (the settings' sample plus each delay
 *   rule's) -> reorder (the settings' hold plus each reorder rule's).
 * Every rule has its own random stream, so adding or removing one rule
 * does not change the draws of the settings or of the other rules.
 */
#ifndef SCTPT_IMPAIR_SHAPER_H
#define SCTPT_IMPAIR_SHAPER_H

#include <stddef.h>
#include <stdint.h>

#include "lab/impair/rng.h"
#include "lab/impair/rules.h"
#include "lab/impair/settings.h"

/*
 * Per-direction counters.  Every packet seen, plus every duplicate made,
 * ends up in exactly one of forwarded, dropped or pending:
 *   seen + duplicated == forwarded + dropped + pending
 *   dropped == dropped_loss + dropped_blackhole + dropped_burst
 *              + dropped_rule + queue_drops + dropped_overflow
 *              + dropped_other
 */
struct impair_counters {
	uint64_t seen;              /* packets (TCP: reads) that arrived */
	uint64_t bytes_seen;
	uint64_t forwarded;         /* copies handed to the next hop */
	uint64_t bytes_forwarded;
	uint64_t duplicated;        /* extra copies made */
	uint64_t delayed;           /* copies held for any time before sending */
	uint64_t reordered;         /* copies held back by reorder_ms */
	uint64_t dropped;
	uint64_t dropped_loss;
	uint64_t dropped_blackhole;
	uint64_t dropped_burst;     /* the settings' Gilbert-Elliott model */
	uint64_t dropped_rule;      /* a rule's loss, burst or blackhole */
	uint64_t queue_drops;       /* the rate limiter's queue was full */
	uint64_t dropped_overflow;  /* the delay line was full (--max-pending) */
	uint64_t dropped_other;     /* send failed, flow gone, flow table full */
	uint64_t pending;           /* copies waiting to be sent now */
	uint64_t corrupted;         /* packets a corrupt rule changed (not a fate) */
};

struct impair_shaper {
	struct impair_rng rng;
	uint64_t link_free_us;      /* when the rate-limited link is idle again */
	int ge_bad;                 /* the Gilbert-Elliott chain is in its bad state */
	struct impair_counters c;
};

#define IMPAIR_MAX_COPIES 2

struct impair_fate {
	int ncopies;                        /* 0: dropped */
	uint64_t due_us[IMPAIR_MAX_COPIES]; /* when each copy leaves */
	int64_t corrupt_bit;                /* flip this bit of every copy; -1: none */
};

void impair_shaper_init(struct impair_shaper *sh, uint64_t seed);

/*
 * Decide what happens to a packet of len bytes arriving at now_us under
 * settings s, and count it (seen, drops, duplicates, reorders; not
 * forwarded/delayed/pending, which the caller counts as it queues and
 * sends each copy).
 */
void impair_shape(struct impair_shaper *sh, const struct impair_dir_settings *s,
                  uint64_t now_us, size_t len, struct impair_fate *out);

/*
 * The same with rules: rs (NULL: none) are tried for this packet of flow
 * (a relay's stable flow key) with the run's seed; their counters are
 * kept in each rule.
 */
void impair_shape_rules(struct impair_shaper *sh, const struct impair_dir_settings *s,
                        struct impair_rules *rs, int dir, uint64_t flow, uint64_t seed,
                        uint64_t now_us, size_t len, struct impair_fate *out);

/*
 * One step of a Gilbert-Elliott chain: whether this packet is lost in
 * the current state, then the state moves on.  *bad is the state.
 */
int impair_ge_step(struct impair_rng *rng, int *bad, const struct impair_ge *g);

/*
 * Stream (TCP) mode: the rules a chunk of flow meets.  Returns the delay
 * (microseconds) that delay rules add and counts them; blackhole rules
 * are left to impair_rules_stall().
 */
uint64_t impair_rules_stream_delay(struct impair_rules *rs, int dir, uint64_t flow,
                                   uint64_t seed);
/* Whether a blackhole rule selects this flow (by flow, whatever its scope). */
int impair_rules_stall(const struct impair_rules *rs, int dir, uint64_t flow, uint64_t seed);

/* A delay sample in microseconds: delay_ms plus jitter, never negative. */
uint64_t impair_delay_sample(struct impair_shaper *sh, const struct impair_dir_settings *s);

/*
 * The rate limiter alone: when a packet of len bytes that may start at
 * start_us has left the link.  Returns 0 and sets *done_us, or -1 if the
 * queue (bytes waiting ahead of it, plus it) would exceed queue_bytes.
 * rate_bps 0 means no limit: *done_us = start_us.
 */
int impair_rate_admit(struct impair_shaper *sh, const struct impair_dir_settings *s,
                      uint64_t start_us, size_t len, uint64_t *done_us);

#endif
