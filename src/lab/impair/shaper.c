/*
 * Per-packet decisions of `sctpt-lab impair`; see shaper.h for the order of
 * the stages.  Random draws are made only for stages that are switched
 * on, so a run is reproducible for a given --seed, settings and input.
 */
#include "lab/impair/shaper.h"

#include <string.h>

#include "lab/impair/rules.h"

void impair_shaper_init(struct impair_shaper *sh, uint64_t seed)
{
	memset(sh, 0, sizeof(*sh));
	impair_rng_seed(&sh->rng, seed);
}

static int chance_rng(struct impair_rng *rng, double p)
{
	if (p <= 0.0)
		return 0;
	if (p >= 1.0)
		return 1;
	return impair_rng_uniform(rng) < p;
}

static int chance(struct impair_shaper *sh, double p)
{
	return chance_rng(&sh->rng, p);
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

/* A bottleneck whose link is idle from *link_free on; see impair_rate_admit(). */
static int link_admit(uint64_t *link_free, uint64_t rate_bps, uint64_t queue_bytes,
                      uint64_t start_us, size_t len, uint64_t *done_us)
{
	uint64_t begin, tx_us;
	double backlog;

	if (rate_bps == 0) {
		*done_us = start_us;
		return 0;
	}
	begin = *link_free > start_us ? *link_free : start_us;
	/* Bytes still ahead of this packet on the link. */
	backlog = (double)(begin - start_us) * (double)rate_bps / 8e6;
	if (backlog + (double)len > (double)queue_bytes)
		return -1;
	tx_us = (uint64_t)((double)len * 8e6 / (double)rate_bps + 0.5);
	*link_free = begin + tx_us;
	*done_us = *link_free;
	return 0;
}

int impair_rate_admit(struct impair_shaper *sh, const struct impair_dir_settings *s,
                      uint64_t start_us, size_t len, uint64_t *done_us)
{
	return link_admit(&sh->link_free_us, s->rate_bps, s->queue_bytes, start_us, len, done_us);
}

int impair_ge_step(struct impair_rng *rng, int *bad, const struct impair_ge *g)
{
	int lost = *bad ? chance_rng(rng, g->loss_bad) : chance_rng(rng, g->loss_good);

	if (*bad)
		*bad = !chance_rng(rng, g->r);
	else
		*bad = chance_rng(rng, g->p);
	return lost;
}

static void drop(struct impair_counters *c, uint64_t *reason)
{
	c->dropped++;
	(*reason)++;
}

/* The rules that apply to this packet, in list order: up to IMPAIR_MAX_RULES. */
static size_t rules_hit(struct impair_rules *rs, int dir, uint64_t flow, uint64_t seed,
                        struct impair_rule **hit)
{
	size_t n = 0;

	for (size_t i = 0; rs != NULL && i < rs->n; i++) {
		if (impair_rule_applies(&rs->r[i], dir, flow, seed)) {
			rs->r[i].st[dir].c.packets++;
			hit[n++] = &rs->r[i];
		}
	}
	return n;
}

/* Whether a dropping rule takes the packet (counted). */
static int rules_drop(struct impair_rule **hit, size_t n, int dir)
{
	for (size_t i = 0; i < n; i++) {
		struct impair_rule_state *st = &hit[i]->st[dir];
		int lost = 0;

		switch (hit[i]->kind) {
		case IMPAIR_RULE_BLACKHOLE:
			lost = 1;
			break;
		case IMPAIR_RULE_LOSS:
			lost = chance_rng(&st->rng, hit[i]->p);
			break;
		case IMPAIR_RULE_BURST:
			lost = impair_ge_step(&st->rng, &st->ge_bad, &hit[i]->ge);
			break;
		default:
			break;
		}
		if (lost) {
			st->c.dropped++;
			return 1;
		}
	}
	return 0;
}

static uint64_t rule_delay(struct impair_rule *r, int dir)
{
	struct impair_dir_settings d;
	struct impair_shaper tmp;
	uint64_t us;

	/* impair_delay_sample() on the rule's own stream */
	memset(&d, 0, sizeof(d));
	d.delay_ms = r->delay_ms;
	d.jitter_ms = r->jitter_ms;
	d.jitter_dist = r->jitter_dist;
	tmp.rng = r->st[dir].rng;
	us = impair_delay_sample(&tmp, &d);
	r->st[dir].rng = tmp.rng;
	return us;
}

/* One copy through rates, delays and holds.  0 and *due, or -1: queue drop (counted). */
static int copy_schedule(struct impair_shaper *sh, const struct impair_dir_settings *s,
                         struct impair_rule **hit, size_t n, int dir, uint64_t now_us,
                         size_t len, uint64_t *due_out)
{
	struct impair_counters *c = &sh->c;
	uint64_t due;
	int reordered;

	if (impair_rate_admit(sh, s, now_us, len, &due) < 0) {
		drop(c, &c->queue_drops);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct impair_rule_state *st = &hit[i]->st[dir];

		if (hit[i]->kind != IMPAIR_RULE_RATE)
			continue;
		if (link_admit(&st->link_free_us, hit[i]->rate_bps, hit[i]->queue_bytes, due, len,
		               &due) < 0) {
			st->c.queue_drops++;
			drop(c, &c->queue_drops);
			return -1;
		}
	}
	due += impair_delay_sample(sh, s);
	reordered = chance(sh, s->reorder);
	if (reordered)
		due += (uint64_t)(s->reorder_ms * 1000.0 + 0.5);
	for (size_t i = 0; i < n; i++) {
		struct impair_rule_state *st = &hit[i]->st[dir];

		if (hit[i]->kind == IMPAIR_RULE_DELAY) {
			due += rule_delay(hit[i], dir);
			st->c.delayed++;
		} else if (hit[i]->kind == IMPAIR_RULE_REORDER && chance_rng(&st->rng, hit[i]->p)) {
			due += (uint64_t)(hit[i]->delay_ms * 1000.0 + 0.5);
			st->c.delayed++;
			reordered = 1;
		}
	}
	if (reordered)
		c->reordered++;
	*due_out = due;
	return 0;
}

void impair_shape_rules(struct impair_shaper *sh, const struct impair_dir_settings *s,
                        struct impair_rules *rs, int dir, uint64_t flow, uint64_t seed,
                        uint64_t now_us, size_t len, struct impair_fate *out)
{
	struct impair_counters *c = &sh->c;
	struct impair_rule *hit[IMPAIR_MAX_RULES];
	size_t n;
	int copies;

	out->ncopies = 0;
	out->corrupt_bit = -1;
	c->seen++;
	c->bytes_seen += len;
	if (s->blackhole) {
		drop(c, &c->dropped_blackhole);
		return;
	}
	if (chance(sh, s->loss)) {
		drop(c, &c->dropped_loss);
		return;
	}
	if (impair_ge_enabled(&s->ge)) {
		if (impair_ge_step(&sh->rng, &sh->ge_bad, &s->ge)) {
			drop(c, &c->dropped_burst);
			return;
		}
	} else {
		sh->ge_bad = 0;
	}
	n = rules_hit(rs, dir, flow, seed, hit);
	if (rules_drop(hit, n, dir)) {
		drop(c, &c->dropped_rule);
		return;
	}
	copies = chance(sh, s->dup) ? 2 : 1;
	for (size_t i = 0; i < n; i++) {
		struct impair_rule_state *st = &hit[i]->st[dir];

		if (hit[i]->kind == IMPAIR_RULE_DUPLICATE && chance_rng(&st->rng, hit[i]->p)) {
			st->c.duplicated++;
			copies = 2;
		} else if (hit[i]->kind == IMPAIR_RULE_CORRUPT && len > 0 &&
		           chance_rng(&st->rng, hit[i]->p)) {
			st->c.corrupted++;
			if (out->corrupt_bit < 0) {
				out->corrupt_bit = (int64_t)(impair_rng_uniform(&st->rng) * (double)len * 8.0);
				c->corrupted++;
			}
		}
	}
	if (copies == 2)
		c->duplicated++;
	for (int i = 0; i < copies; i++) {
		uint64_t due;

		if (copy_schedule(sh, s, hit, n, dir, now_us, len, &due) == 0)
			out->due_us[out->ncopies++] = due;
	}
}

void impair_shape(struct impair_shaper *sh, const struct impair_dir_settings *s,
                  uint64_t now_us, size_t len, struct impair_fate *out)
{
	impair_shape_rules(sh, s, NULL, IMPAIR_C2S, 0, 0, now_us, len, out);
}

uint64_t impair_rules_stream_delay(struct impair_rules *rs, int dir, uint64_t flow,
                                   uint64_t seed)
{
	uint64_t us = 0;

	for (size_t i = 0; rs != NULL && i < rs->n; i++) {
		struct impair_rule *r = &rs->r[i];

		if (r->kind != IMPAIR_RULE_DELAY || !impair_rule_applies(r, dir, flow, seed))
			continue;
		r->st[dir].c.packets++;
		r->st[dir].c.delayed++;
		us += rule_delay(r, dir);
	}
	return us;
}

int impair_rules_stall(const struct impair_rules *rs, int dir, uint64_t flow, uint64_t seed)
{
	unsigned bit = dir == IMPAIR_C2S ? IMPAIR_RULE_C2S : IMPAIR_RULE_S2C;

	for (size_t i = 0; rs != NULL && i < rs->n; i++) {
		const struct impair_rule *r = &rs->r[i];

		if (r->kind == IMPAIR_RULE_BLACKHOLE && (r->dirs & bit) &&
		    impair_rule_selects_flow(r, flow, seed))
			return 1;
	}
	return 0;
}
