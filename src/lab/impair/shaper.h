/*
 * The fate of one packet in one direction: dropped (and why), or sent as
 * one or two copies, each at a time in the future.  Pure: the caller
 * passes the clock (microseconds, monotonic) and owns the queueing; the
 * counters here are the ones the REST API reports.
 *
 * Order of the stages, per packet:
 *   blackhole -> loss -> duplication -> per copy: rate limit (bottleneck
 *   queue of queue_bytes, else queue drop) -> delay + jitter -> reorder
 *   (extra hold of reorder_ms).
 */
#ifndef SCTPT_IMPAIR_SHAPER_H
#define SCTPT_IMPAIR_SHAPER_H

#include <stddef.h>
#include <stdint.h>

#include "lab/impair/rng.h"
#include "lab/impair/settings.h"

/*
 * Per-direction counters.  Every packet seen, plus every duplicate made,
 * ends up in exactly one of forwarded, dropped or pending:
 *   seen + duplicated == forwarded + dropped + pending
 *   dropped == dropped_loss + dropped_blackhole + queue_drops
 *              + dropped_overflow + dropped_other
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
	uint64_t queue_drops;       /* the rate limiter's queue was full */
	uint64_t dropped_overflow;  /* the delay line was full (--max-pending) */
	uint64_t dropped_other;     /* send failed, flow gone, flow table full */
	uint64_t pending;           /* copies waiting to be sent now */
};

struct impair_shaper {
	struct impair_rng rng;
	uint64_t link_free_us;      /* when the rate-limited link is idle again */
	struct impair_counters c;
};

#define IMPAIR_MAX_COPIES 2

struct impair_fate {
	int ncopies;                        /* 0: dropped */
	uint64_t due_us[IMPAIR_MAX_COPIES]; /* when each copy leaves */
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
