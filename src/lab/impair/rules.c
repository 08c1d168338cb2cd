/*
 * Rule validation, the rule list and flow selection; see rules.h.  Every
 * rule the API or a test builds passes through impair_rule_parse(), which
 * is strict: a rule is either entirely valid or refused with a reason.
 */
#include "lab/impair/rules.h"

#include <stdio.h>
#include <string.h>

static const char *const kind_names[] = {
	[IMPAIR_RULE_LOSS] = "loss",
	[IMPAIR_RULE_DELAY] = "delay",
	[IMPAIR_RULE_DUPLICATE] = "duplicate",
	[IMPAIR_RULE_REORDER] = "reorder",
	[IMPAIR_RULE_RATE] = "rate",
	[IMPAIR_RULE_BLACKHOLE] = "blackhole",
	[IMPAIR_RULE_BURST] = "burst",
	[IMPAIR_RULE_CORRUPT] = "corrupt",
};
#define NKINDS (sizeof(kind_names) / sizeof(kind_names[0]))

/* The params each kind takes, space-separated. */
static const char *const kind_params[] = {
	[IMPAIR_RULE_LOSS] = " p ",
	[IMPAIR_RULE_DELAY] = " delay_ms jitter_ms jitter ",
	[IMPAIR_RULE_DUPLICATE] = " p ",
	[IMPAIR_RULE_REORDER] = " p delay_ms ",
	[IMPAIR_RULE_RATE] = " rate_bps queue_bytes ",
	[IMPAIR_RULE_BLACKHOLE] = " ",
	[IMPAIR_RULE_BURST] = " p r loss_good loss_bad loss length ",
	[IMPAIR_RULE_CORRUPT] = " p ",
};

const char *impair_rule_kind_name(enum impair_rule_kind k)
{
	return (size_t)k < NKINDS ? kind_names[k] : "?";
}

int impair_rule_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	return n >= 1 && n <= IMPAIR_RULE_NAME_MAX &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                    "0123456789_.-") == n;
}

static int param_known(enum impair_rule_kind k, const char *key)
{
	char pat[40];

	if (strlen(key) > 20)
		return 0;
	snprintf(pat, sizeof(pat), " %s ", key);
	return strstr(kind_params[k], pat) != NULL;
}

/* A number in [lo, hi] (and whole, if whole): 0, or -1 with err. */
static int num_in(const json_t *v, const char *what, double lo, double hi, int whole,
                  double *out, char *err, size_t errlen)
{
	double x;

	/* (in range first: the cast is then defined) */
	if (impair_json_number(v, &x) < 0 || x < lo || x > hi ||
	    (whole && (double)(uint64_t)x != x)) {
		snprintf(err, errlen, "%s must be a%s number from %g to %g", what,
		         whole ? " whole" : "", lo, hi);
		return -1;
	}
	*out = x;
	return 0;
}

static int parse_params(struct impair_rule *r, const json_t *params, char *err, size_t errlen)
{
	const char *key;
	json_t *val;
	int ge_fields = 0;
	double x;

	if (params != NULL && !json_is_object(params)) {
		snprintf(err, errlen, "params must be an object");
		return -1;
	}
	json_object_foreach((json_t *)params, key, val) {     /* NULL: no iterations */
		char what[48];

		if (!param_known(r->kind, key)) {
			snprintf(err, errlen, "a %s rule takes no param '%.40s' (it takes:%s)",
			         kind_names[r->kind], key, kind_params[r->kind]);
			return -1;
		}
		snprintf(what, sizeof(what), "params.%s", key);
		if (strcmp(key, "jitter") == 0) {
			const char *s = json_string_value(val);

			if (s != NULL && strcmp(s, "uniform") == 0)
				r->jitter_dist = IMPAIR_JITTER_UNIFORM;
			else if (s != NULL && strcmp(s, "normal") == 0)
				r->jitter_dist = IMPAIR_JITTER_NORMAL;
			else {
				snprintf(err, errlen, "params.jitter must be \"uniform\" or \"normal\"");
				return -1;
			}
		} else if (strcmp(key, "delay_ms") == 0 || strcmp(key, "jitter_ms") == 0) {
			if (num_in(val, what, 0, IMPAIR_MAX_MS, 0, &x, err, errlen) < 0)
				return -1;
			*(key[0] == 'd' ? &r->delay_ms : &r->jitter_ms) = x;
		} else if (strcmp(key, "rate_bps") == 0) {
			if (num_in(val, what, 1, (double)IMPAIR_MAX_RATE, 1, &x, err, errlen) < 0)
				return -1;
			r->rate_bps = (uint64_t)x;
		} else if (strcmp(key, "queue_bytes") == 0) {
			if (num_in(val, what, (double)IMPAIR_MIN_QUEUE, (double)IMPAIR_MAX_QUEUE, 1, &x,
			           err, errlen) < 0)
				return -1;
			r->queue_bytes = (uint64_t)x;
		} else if (strcmp(key, "length") == 0 || strcmp(key, "loss") == 0) {
			ge_fields |= 2;         /* handled below, together */
		} else {
			/* p, r, loss_good, loss_bad: probabilities */
			if (num_in(val, what, 0, 1, 0, &x, err, errlen) < 0)
				return -1;
			if (r->kind != IMPAIR_RULE_BURST)
				r->p = x;
			else {
				ge_fields |= 1;
				if (strcmp(key, "p") == 0)
					r->ge.p = x;
				else if (strcmp(key, "r") == 0)
					r->ge.r = x;
				else if (strcmp(key, "loss_good") == 0)
					r->ge.loss_good = x;
				else
					r->ge.loss_bad = x;
			}
		}
	}
	if (r->kind == IMPAIR_RULE_BURST) {
		const json_t *l = json_object_get(params, "loss"), *b = json_object_get(params, "length");
		double loss, len;

		if (ge_fields == 3) {
			snprintf(err, errlen, "a burst rule takes either p, r, loss_good, loss_bad or "
			         "loss and length");
			return -1;
		}
		if (ge_fields == 2) {
			if (l == NULL || b == NULL) {
				snprintf(err, errlen, "params.loss and params.length go together");
				return -1;
			}
			if (impair_json_number(l, &loss) < 0 || impair_json_number(b, &len) < 0) {
				snprintf(err, errlen, "params.loss and params.length must be numbers");
				return -1;
			}
			if (impair_ge_from_burst(loss, len, &r->ge, err, errlen) < 0)
				return -1;
		}
	}
	if (r->kind == IMPAIR_RULE_RATE && r->rate_bps == 0) {
		snprintf(err, errlen, "a rate rule needs params.rate_bps");
		return -1;
	}
	return 0;
}

static int parse_top(struct impair_rule *r, const json_t *j, const char *path_name,
                     const json_t **params, char *err, size_t errlen)
{
	const char *key;
	json_t *val;
	const char *s;
	double x;

	json_object_foreach((json_t *)j, key, val) {
		if (strcmp(key, "name") == 0) {
			s = json_string_value(val);
			if (!impair_rule_name_ok(s)) {
				snprintf(err, errlen, "name must be 1 to %d of A-Z a-z 0-9 _ . -",
				         IMPAIR_RULE_NAME_MAX);
				return -1;
			}
			if (path_name != NULL && strcmp(s, path_name) != 0) {
				snprintf(err, errlen, "the body names another rule than the URL");
				return -1;
			}
			snprintf(r->name, sizeof(r->name), "%s", s);
		} else if (strcmp(key, "direction") == 0) {
			s = json_string_value(val);
			if (s != NULL && strcmp(s, "c2s") == 0)
				r->dirs = IMPAIR_RULE_C2S;
			else if (s != NULL && strcmp(s, "s2c") == 0)
				r->dirs = IMPAIR_RULE_S2C;
			else if (s != NULL && strcmp(s, "both") == 0)
				r->dirs = IMPAIR_RULE_C2S | IMPAIR_RULE_S2C;
			else {
				snprintf(err, errlen, "direction must be \"c2s\", \"s2c\" or \"both\"");
				return -1;
			}
		} else if (strcmp(key, "kind") == 0) {
			size_t k;

			s = json_string_value(val);
			for (k = 0; s != NULL && k < NKINDS; k++)
				if (strcmp(s, kind_names[k]) == 0)
					break;
			if (s == NULL || k == NKINDS) {
				snprintf(err, errlen, "kind must be one of loss, delay, duplicate, reorder, "
				         "rate, blackhole, burst, corrupt");
				return -1;
			}
			r->kind = (enum impair_rule_kind)k;
		} else if (strcmp(key, "toxicity") == 0) {
			if (num_in(val, "toxicity", 0, 1, 0, &x, err, errlen) < 0)
				return -1;
			r->toxicity = x;
		} else if (strcmp(key, "scope") == 0) {
			s = json_string_value(val);
			if (s != NULL && strcmp(s, "flow") == 0)
				r->per_packet = 0;
			else if (s != NULL && strcmp(s, "packet") == 0)
				r->per_packet = 1;
			else {
				snprintf(err, errlen, "scope must be \"flow\" or \"packet\"");
				return -1;
			}
		} else if (strcmp(key, "params") == 0) {
			*params = val;
		} else if (strcmp(key, "counters") != 0) {
			/* "counters" is what GET returns: a rule read back may be sent again */
			snprintf(err, errlen, "unknown key '%.40s' (want name, direction, kind, params, "
			         "toxicity, scope)", key);
			return -1;
		}
	}
	return 0;
}

int impair_rule_parse(const json_t *j, const char *path_name, struct impair_rule *out,
                      char *err, size_t errlen)
{
	struct impair_rule r;
	const json_t *params = NULL;

	memset(&r, 0, sizeof(r));
	r.dirs = IMPAIR_RULE_C2S | IMPAIR_RULE_S2C;
	r.toxicity = 1.0;
	r.kind = (enum impair_rule_kind)NKINDS;     /* unset */
	r.delay_ms = 0;
	r.jitter_dist = IMPAIR_JITTER_UNIFORM;
	r.queue_bytes = IMPAIR_DEFAULT_QUEUE;
	r.ge.r = 1.0;
	r.ge.loss_bad = 1.0;
	if (!json_is_object(j)) {
		snprintf(err, errlen, "a rule must be a JSON object");
		return -1;
	}
	if (path_name != NULL && !impair_rule_name_ok(path_name)) {
		snprintf(err, errlen, "bad rule name in the URL (1 to %d of A-Z a-z 0-9 _ . -)",
		         IMPAIR_RULE_NAME_MAX);
		return -1;
	}
	if (parse_top(&r, j, path_name, &params, err, errlen) < 0)
		return -1;
	if (r.name[0] == '\0') {
		if (path_name == NULL) {
			snprintf(err, errlen, "a rule needs a name");
			return -1;
		}
		snprintf(r.name, sizeof(r.name), "%s", path_name);
	}
	if ((size_t)r.kind >= NKINDS) {
		snprintf(err, errlen, "a rule needs a kind");
		return -1;
	}
	if (r.kind == IMPAIR_RULE_REORDER)
		r.delay_ms = IMPAIR_DEFAULT_REORDER_MS;
	if (parse_params(&r, params, err, errlen) < 0)
		return -1;
	r.name_hash = impair_hash_str(r.name);
	*out = r;
	return 0;
}

int impair_rule_parse_text(const char *text, size_t len, const char *path_name,
                           struct impair_rule *out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *j;
	int r;

	j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL) {
		snprintf(err, errlen, "bad JSON at line %d column %d: %.80s", jerr.line, jerr.column,
		         jerr.text);
		return -1;
	}
	r = impair_rule_parse(j, path_name, out, err, errlen);
	json_decref(j);
	return r;
}

static json_t *counters_json(const struct impair_rule_counters *c)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
	                 "packets", (json_int_t)c->packets, "dropped", (json_int_t)c->dropped,
	                 "duplicated", (json_int_t)c->duplicated,
	                 "delayed", (json_int_t)c->delayed,
	                 "corrupted", (json_int_t)c->corrupted,
	                 "queue_drops", (json_int_t)c->queue_drops);
}

static json_t *params_json(const struct impair_rule *r)
{
	switch (r->kind) {
	case IMPAIR_RULE_LOSS:
	case IMPAIR_RULE_DUPLICATE:
	case IMPAIR_RULE_CORRUPT:
		return json_pack("{s:f}", "p", r->p);
	case IMPAIR_RULE_DELAY:
		return json_pack("{s:f, s:f, s:s}", "delay_ms", r->delay_ms, "jitter_ms", r->jitter_ms,
		                 "jitter", r->jitter_dist == IMPAIR_JITTER_NORMAL ? "normal" : "uniform");
	case IMPAIR_RULE_REORDER:
		return json_pack("{s:f, s:f}", "p", r->p, "delay_ms", r->delay_ms);
	case IMPAIR_RULE_RATE:
		return json_pack("{s:I, s:I}", "rate_bps", (json_int_t)r->rate_bps,
		                 "queue_bytes", (json_int_t)r->queue_bytes);
	case IMPAIR_RULE_BURST:
		return json_pack("{s:f, s:f, s:f, s:f}", "p", r->ge.p, "r", r->ge.r,
		                 "loss_good", r->ge.loss_good, "loss_bad", r->ge.loss_bad);
	case IMPAIR_RULE_BLACKHOLE:
	default:
		return json_object();
	}
}

json_t *impair_rule_to_json(const struct impair_rule *r)
{
	const char *dir = r->dirs == IMPAIR_RULE_C2S ? "c2s" :
	                  r->dirs == IMPAIR_RULE_S2C ? "s2c" : "both";

	return json_pack("{s:s, s:s, s:s, s:o, s:f, s:s, s:{s:o, s:o}}",
	                 "name", r->name, "direction", dir, "kind", impair_rule_kind_name(r->kind),
	                 "params", params_json(r), "toxicity", r->toxicity,
	                 "scope", r->per_packet ? "packet" : "flow",
	                 "counters", "c2s", counters_json(&r->st[0].c),
	                 "s2c", counters_json(&r->st[1].c));
}

json_t *impair_rules_to_json(const struct impair_rules *rs)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < rs->n; i++) {
		json_t *o = impair_rule_to_json(&rs->r[i]);

		if (o == NULL || json_array_append_new(a, o) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

void impair_rules_init(struct impair_rules *rs)
{
	memset(rs, 0, sizeof(*rs));
}

struct impair_rule *impair_rules_find(struct impair_rules *rs, const char *name)
{
	for (size_t i = 0; i < rs->n; i++)
		if (strcmp(rs->r[i].name, name) == 0)
			return &rs->r[i];
	return NULL;
}

static void rule_seed(struct impair_rule *r, uint64_t seed)
{
	for (int d = 0; d < 2; d++) {
		impair_rng_seed(&r->st[d].rng, impair_mix64(impair_mix64(seed) ^ r->name_hash) +
		                (uint64_t)d + 1);
		r->st[d].ge_bad = 0;
		r->st[d].link_free_us = 0;
	}
}

int impair_rules_put(struct impair_rules *rs, const struct impair_rule *r, int replace,
                     uint64_t seed)
{
	struct impair_rule *old = impair_rules_find(rs, r->name);
	struct impair_rule_counters keep[2];

	if (old != NULL) {
		if (!replace)
			return -1;
		keep[0] = old->st[0].c;
		keep[1] = old->st[1].c;
		*old = *r;
		rule_seed(old, seed);
		old->st[0].c = keep[0];
		old->st[1].c = keep[1];
		return 1;
	}
	if (rs->n >= IMPAIR_MAX_RULES)
		return -1;
	rs->r[rs->n] = *r;
	memset(rs->r[rs->n].st, 0, sizeof(rs->r[rs->n].st));
	rule_seed(&rs->r[rs->n], seed);
	rs->n++;
	return 0;
}

int impair_rules_del(struct impair_rules *rs, const char *name)
{
	struct impair_rule *r = impair_rules_find(rs, name);
	size_t i;

	if (r == NULL)
		return -1;
	i = (size_t)(r - rs->r);
	memmove(&rs->r[i], &rs->r[i + 1], (rs->n - i - 1) * sizeof(rs->r[0]));
	rs->n--;
	return 0;
}

void impair_rules_zero(struct impair_rules *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		for (int d = 0; d < 2; d++)
			memset(&rs->r[i].st[d].c, 0, sizeof(rs->r[i].st[d].c));
}

int impair_rule_selects_flow(const struct impair_rule *r, uint64_t flow, uint64_t seed)
{
	uint64_t h;

	if (r->toxicity >= 1.0)
		return 1;
	if (r->toxicity <= 0.0)
		return 0;
	h = impair_mix64(impair_mix64(seed ^ r->name_hash) ^ impair_mix64(flow));
	return (double)(h >> 11) * 0x1.0p-53 < r->toxicity;
}

int impair_rule_applies(struct impair_rule *r, int dir, uint64_t flow, uint64_t seed)
{
	if (!(r->dirs & (dir == IMPAIR_C2S ? IMPAIR_RULE_C2S : IMPAIR_RULE_S2C)))
		return 0;
	if (r->toxicity >= 1.0)
		return 1;
	if (r->toxicity <= 0.0)
		return 0;
	if (r->per_packet)
		return impair_rng_uniform(&r->st[dir].rng) < r->toxicity;
	return impair_rule_selects_flow(r, flow, seed);
}
