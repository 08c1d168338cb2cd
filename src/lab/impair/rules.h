/*
 * Named rules of `sctpt-lab impair` (toxiproxy calls them toxics): each has
 * a name, a direction, a kind with its parameters, and a toxicity, the
 * share of flows (or packets) it applies to.  Rules come on top of the
 * per-direction settings; shaper.c applies both.  This file validates
 * rules from JSON and keeps the list.  Pure: no I/O, no clock.
 *
 * JSON form:
 *   {"name": "slow-up", "direction": "c2s", "kind": "delay",
 *    "params": {"delay_ms": 100, "jitter_ms": 10}, "toxicity": 0.5,
 *    "scope": "flow"}
 * kind and params:
 *   loss       {"p"}                           drop with probability p
 *   delay      {"delay_ms", "jitter_ms", "jitter"}   added delay
 *   duplicate  {"p"}                           one extra copy
 *   reorder    {"p", "delay_ms"}               hold back by delay_ms
 *   rate       {"rate_bps", "queue_bytes"}     a bottleneck of its own
 *   blackhole  {}                              drop everything (TCP: stall)
 *   burst      {"p", "r", "loss_good", "loss_bad"} or {"loss", "length"}
 *                                              Gilbert-Elliott loss
 *   corrupt    {"p"}                           flip one random bit
 * Missing params take defaults (p 0, delay_ms 0, reorder delay_ms 20,
 * queue_bytes 128k, burst as in settings.h); rate needs rate_bps.
 *
 * Toxicity t (0..1, default 1), scope "flow" (default): a flow is hit
 * when H(seed, rule name, flow) < t, H a 64-bit hash taken as a fraction
 * in [0, 1): fixed for the flow's life, the same in every run with the
 * same seed, independent of arrival order and of other rules.  Scope
 * "packet": each packet is hit with probability t, drawn from the rule's
 * own random stream (seeded from the seed, the name and the direction).
 */
#ifndef SCTPT_IMPAIR_RULES_H
#define SCTPT_IMPAIR_RULES_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "lab/impair/rng.h"
#include "lab/impair/settings.h"

#define IMPAIR_MAX_RULES 32
#define IMPAIR_RULE_NAME_MAX 64

enum impair_rule_kind {
	IMPAIR_RULE_LOSS = 0,
	IMPAIR_RULE_DELAY,
	IMPAIR_RULE_DUPLICATE,
	IMPAIR_RULE_REORDER,
	IMPAIR_RULE_RATE,
	IMPAIR_RULE_BLACKHOLE,
	IMPAIR_RULE_BURST,
	IMPAIR_RULE_CORRUPT,
};

#define IMPAIR_RULE_C2S 1u
#define IMPAIR_RULE_S2C 2u

struct impair_rule_counters {
	uint64_t packets;          /* packets the rule applied to */
	uint64_t dropped;          /* by loss, burst or blackhole */
	uint64_t duplicated;
	uint64_t delayed;          /* copies it added delay or a hold to */
	uint64_t corrupted;
	uint64_t queue_drops;      /* its rate limiter's queue was full */
};

/* Per direction: the rule's random stream, model and link state. */
struct impair_rule_state {
	struct impair_rng rng;
	int ge_bad;
	uint64_t link_free_us;
	struct impair_rule_counters c;
};

struct impair_rule {
	char name[IMPAIR_RULE_NAME_MAX + 1];
	unsigned dirs;                      /* IMPAIR_RULE_C2S | IMPAIR_RULE_S2C */
	enum impair_rule_kind kind;
	double toxicity;
	int per_packet;                     /* scope "packet" */
	/* parameters: the kind uses some of these */
	double p;
	double delay_ms, jitter_ms;
	enum impair_jitter_dist jitter_dist;
	uint64_t rate_bps, queue_bytes;
	struct impair_ge ge;
	/* state */
	uint64_t name_hash;
	struct impair_rule_state st[2];
};

struct impair_rules {
	struct impair_rule r[IMPAIR_MAX_RULES];
	size_t n;
};

/*
 * A rule from JSON.  path_name, if not NULL, is the name from the URL
 * (PUT /rules/NAME): the body may then leave "name" out, or must repeat
 * it.  Unknown keys, wrong types, out-of-range values, a bad name
 * (1..64 of A-Z a-z 0-9 _ . -) or params the kind does not take: -1 with
 * a message in err, *out unspecified.  State and counters are zero.
 */
int impair_rule_parse(const json_t *j, const char *path_name, struct impair_rule *out,
                      char *err, size_t errlen);
/* The same from text (duplicate keys refused). */
int impair_rule_parse_text(const char *text, size_t len, const char *path_name,
                           struct impair_rule *out, char *err, size_t errlen);
/* Whether name is a valid rule name. */
int impair_rule_name_ok(const char *name);

/* The rule as JSON, with "counters": {"c2s": {...}, "s2c": {...}}. */
json_t *impair_rule_to_json(const struct impair_rule *r);
json_t *impair_rules_to_json(const struct impair_rules *rs);
const char *impair_rule_kind_name(enum impair_rule_kind k);

void impair_rules_init(struct impair_rules *rs);
struct impair_rule *impair_rules_find(struct impair_rules *rs, const char *name);
/*
 * Add r, or replace the rule of the same name if replace is set (it keeps
 * its place and its counters; its random streams and model restart).
 * Seeds the rule's streams from seed.  0 added, 1 replaced, -1 the name
 * exists (and !replace) or the list is full.
 */
int impair_rules_put(struct impair_rules *rs, const struct impair_rule *r, int replace,
                     uint64_t seed);
/* 0, or -1 if there is no such rule. */
int impair_rules_del(struct impair_rules *rs, const char *name);
/* Zero every rule's counters. */
void impair_rules_zero(struct impair_rules *rs);

/* Whether rule r applies to this packet of flow in direction dir (draws for scope packet). */
int impair_rule_applies(struct impair_rule *r, int dir, uint64_t flow, uint64_t seed);
/* The flow-scope choice alone (whatever the rule's scope): H(seed, name, flow) < toxicity. */
int impair_rule_selects_flow(const struct impair_rule *r, uint64_t flow, uint64_t seed);

#endif
