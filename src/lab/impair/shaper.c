/*
 * Per-packet decisions of `sctpt-lab impair`; see shaper.h for the order of
 * the stages.  Random draws are made only for stages that are switched
 * on, so a run is reproducible for a given --seed, settings and input.
 */
#include "lab/impair/shaper.h"

#include <string.h>

void impair_shaper_init(struct impair_shaper *sh, uint64_t seed)
{
	memset(sh, 0, sizeof(*sh));
	impair_rng_seed(&sh->rng, seed);
}

static int chance(struct impair_shaper *sh, double p)
{
	if (p <= 0.0)
		return 0;
	if (p >= 1.0)
		return 1;
	return impair_rng_uniform(&sh->rng) < p;
}

uint64_t impair_delay_sample(struct impair_shaper *sh, const struct impair_dir_settings *s)
{
	double ms = s->delay_ms;

	if (s->jitter_ms > 0.0) {
		if (s->jitter_dist == IMPAIR_JITTER_NORMAL)
			ms += s->jitter_ms * impair_rng_normal(&sh->rng);
		else
			ms += s->jitter_ms * (2.0 * impair_rng_uniform(&sh->rng) - 1.0);
	}
	if (ms <= 0.0)
		return 0;
	return (uint64_t)(ms * 1000.0 + 0.5);
}

int impair_rate_admit(struct impair_shaper *sh, const struct impair_dir_settings *s,
                      uint64_t start_us, size_t len, uint64_t *done_us)
{
	uint64_t begin, tx_us;
	double backlog;

	if (s->rate_bps == 0) {
		*done_us = start_us;
		return 0;
	}
	begin = sh->link_free_us > start_us ? sh->link_free_us : start_us;
	/* Bytes still ahead of this packet on the link. */
	backlog = (double)(begin - start_us) * (double)s->rate_bps / 8e6;
	if (backlog + (double)len > (double)s->queue_bytes)
		return -1;
	tx_us = (uint64_t)((double)len * 8e6 / (double)s->rate_bps + 0.5);
	sh->link_free_us = begin + tx_us;
	*done_us = sh->link_free_us;
	return 0;
}

void impair_shape(struct impair_shaper *sh, const struct impair_dir_settings *s,
                  uint64_t now_us, size_t len, struct impair_fate *out)
{
	struct impair_counters *c = &sh->c;
	int copies;

	out->ncopies = 0;
	c->seen++;
	c->bytes_seen += len;
	if (s->blackhole) {
		c->dropped++;
		c->dropped_blackhole++;
		return;
	}
	if (chance(sh, s->loss)) {
		c->dropped++;
		c->dropped_loss++;
		return;
	}
	copies = 1;
	if (chance(sh, s->dup)) {
		copies = 2;
		c->duplicated++;
	}
	for (int i = 0; i < copies; i++) {
		uint64_t due;

		if (impair_rate_admit(sh, s, now_us, len, &due) < 0) {
			c->dropped++;
			c->queue_drops++;
			continue;
		}
		due += impair_delay_sample(sh, s);
		if (chance(sh, s->reorder)) {
			due += (uint64_t)(s->reorder_ms * 1000.0 + 0.5);
			c->reordered++;
		}
		out->due_us[out->ncopies++] = due;
	}
}
