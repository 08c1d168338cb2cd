/*
 * Settings validation and their JSON form.  Every value passes through
 * impair_dir_set(); updates are applied to a copy and committed only when
 * every field of the request was accepted.
 */
#include "lab/impair/settings.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *impair_dir_name(int dir)
{
	return dir == IMPAIR_C2S ? "c2s" : "s2c";
}

void impair_settings_defaults(struct impair_settings *s)
{
	memset(s, 0, sizeof(*s));
	for (int d = 0; d < 2; d++) {
		s->dir[d].reorder_ms = IMPAIR_DEFAULT_REORDER_MS;
		s->dir[d].queue_bytes = IMPAIR_DEFAULT_QUEUE;
		s->dir[d].jitter_dist = IMPAIR_JITTER_UNIFORM;
		s->dir[d].ge.r = 1.0;
		s->dir[d].ge.loss_bad = 1.0;
	}
}

enum field_kind { F_PROB, F_MS, F_RATE, F_QUEUE, F_BOOL, F_DIST, F_BURST };

struct field {
	const char *name;
	enum field_kind kind;
	size_t off;
};

#define FIELD(n, k, m) { n, k, offsetof(struct impair_dir_settings, m) }
static const struct field fields[] = {
	FIELD("loss", F_PROB, loss),
	FIELD("dup", F_PROB, dup),
	FIELD("reorder", F_PROB, reorder),
	FIELD("delay_ms", F_MS, delay_ms),
	FIELD("jitter_ms", F_MS, jitter_ms),
	FIELD("reorder_ms", F_MS, reorder_ms),
	FIELD("jitter", F_DIST, jitter_dist),
	FIELD("rate_bps", F_RATE, rate_bps),
	FIELD("queue_bytes", F_QUEUE, queue_bytes),
	FIELD("blackhole", F_BOOL, blackhole),
	FIELD("ge_p", F_PROB, ge.p),
	FIELD("ge_r", F_PROB, ge.r),
	FIELD("ge_loss_good", F_PROB, ge.loss_good),
	FIELD("ge_loss_bad", F_PROB, ge.loss_bad),
	/* write-only: {"loss": L, "length": B} sets the four ge_ fields */
	FIELD("burst", F_BURST, ge),
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static const struct field *field_find(const char *key)
{
	for (size_t i = 0; i < NFIELDS; i++)
		if (strcmp(fields[i].name, key) == 0)
			return &fields[i];
	return NULL;
}

/* A JSON number as a double; integers beyond 2^53 lose precision, which
 * no field here cares about. */
static int json_num(const json_t *v, double *out)
{
	if (json_is_integer(v))
		*out = (double)json_integer_value(v);
	else if (json_is_real(v))
		*out = json_real_value(v);
	else
		return -1;
	return isfinite(*out) ? 0 : -1;
}

int impair_json_number(const json_t *v, double *out)
{
	return json_num(v, out);
}

int impair_ge_from_burst(double loss, double length, struct impair_ge *out,
                         char *err, size_t errlen)
{
	struct impair_ge g = { 0.0, 1.0, 0.0, 1.0 };

	if (!isfinite(loss) || loss < 0.0 || loss >= 1.0) {
		snprintf(err, errlen, "burst loss must be a number from 0 to below 1");
		return -1;
	}
	if (!isfinite(length) || length < 1.0 || length > IMPAIR_GE_MAX_BURST) {
		snprintf(err, errlen, "burst length must be a number of packets from 1 to %.0f",
		         IMPAIR_GE_MAX_BURST);
		return -1;
	}
	g.r = 1.0 / length;
	g.p = loss * g.r / (1.0 - loss);
	if (g.p > 1.0) {
		snprintf(err, errlen, "a mean loss of %g needs bursts longer than %g packets",
		         loss, loss / (1.0 - loss));
		return -1;
	}
	*out = g;
	return 0;
}

int impair_ge_enabled(const struct impair_ge *g)
{
	return g->p > 0.0 || g->loss_good > 0.0;
}

double impair_ge_mean_loss(const struct impair_ge *g)
{
	double bad;

	if (!impair_ge_enabled(g))
		return 0.0;
	if (g->p + g->r <= 0.0)     /* p 0, r 0: stays in the good state */
		return g->loss_good;
	bad = g->p / (g->p + g->r);
	return (1.0 - bad) * g->loss_good + bad * g->loss_bad;
}

/* {"loss": L, "length": B}: both keys, nothing else. */
static int burst_set(struct impair_ge *g, const json_t *val, char *err, size_t errlen)
{
	const json_t *l = json_object_get(val, "loss"), *b = json_object_get(val, "length");
	double loss, len;

	if (!json_is_object(val) || json_object_size(val) != 2 || l == NULL || b == NULL ||
	    json_num(l, &loss) < 0 || json_num(b, &len) < 0) {
		snprintf(err, errlen, "burst must be {\"loss\": MEAN_LOSS, \"length\": MEAN_BURST}");
		return -1;
	}
	return impair_ge_from_burst(loss, len, g, err, errlen);
}

int impair_dir_set(struct impair_dir_settings *d, const char *key, const json_t *val,
                   char *err, size_t errlen)
{
	const struct field *f = field_find(key);
	char *p;
	double x;

	if (f == NULL) {
		snprintf(err, errlen, "unknown setting '%.40s'", key);
		return -1;
	}
	p = (char *)d + f->off;
	switch (f->kind) {
	case F_PROB:
		if (json_num(val, &x) < 0 || x < 0.0 || x > 1.0)
			goto range;
		*(double *)p = x;
		return 0;
	case F_MS:
		if (json_num(val, &x) < 0 || x < 0.0 || x > IMPAIR_MAX_MS)
			goto range;
		*(double *)p = x;
		return 0;
	case F_RATE:
	case F_QUEUE: {
		uint64_t lo = f->kind == F_RATE ? 0 : IMPAIR_MIN_QUEUE;
		uint64_t hi = f->kind == F_RATE ? IMPAIR_MAX_RATE : IMPAIR_MAX_QUEUE;

		if (json_num(val, &x) < 0 || x < (double)lo || x > (double)hi ||
		    (double)(uint64_t)x != x)
			goto range;
		*(uint64_t *)p = (uint64_t)x;
		return 0;
	}
	case F_BOOL:
		if (!json_is_boolean(val))
			goto range;
		*(int *)p = json_is_true(val);
		return 0;
	case F_DIST: {
		const char *s = json_string_value(val);

		if (s != NULL && strcmp(s, "uniform") == 0)
			*(enum impair_jitter_dist *)p = IMPAIR_JITTER_UNIFORM;
		else if (s != NULL && strcmp(s, "normal") == 0)
			*(enum impair_jitter_dist *)p = IMPAIR_JITTER_NORMAL;
		else
			goto range;
		return 0;
	}
	case F_BURST: {
		char sub[128];

		if (burst_set((struct impair_ge *)p, val, sub, sizeof(sub)) < 0) {
			snprintf(err, errlen, "%s", sub);
			return -1;
		}
		return 0;
	}
	}
range:
	switch (f->kind) {
	case F_PROB:
		snprintf(err, errlen, "%s must be a number from 0 to 1", key);
		break;
	case F_MS:
		snprintf(err, errlen, "%s must be a number of milliseconds from 0 to %.0f",
		         key, IMPAIR_MAX_MS);
		break;
	case F_RATE:
		snprintf(err, errlen, "%s must be a whole number of bits/s from 0 (no limit) to %llu",
		         key, (unsigned long long)IMPAIR_MAX_RATE);
		break;
	case F_QUEUE:
		snprintf(err, errlen, "%s must be a whole number of bytes from %llu to %llu", key,
		         (unsigned long long)IMPAIR_MIN_QUEUE, (unsigned long long)IMPAIR_MAX_QUEUE);
		break;
	case F_BOOL:
		snprintf(err, errlen, "%s must be true or false", key);
		break;
	case F_DIST:
		snprintf(err, errlen, "%s must be \"uniform\" or \"normal\"", key);
		break;
	case F_BURST:
		break;
	}
	return -1;
}

static int dir_update(struct impair_dir_settings *d, const char *where, const json_t *obj,
                      char *err, size_t errlen)
{
	const char *key;
	json_t *val;
	char sub[160];

	if (!json_is_object(obj)) {
		snprintf(err, errlen, "\"%s\" must be an object", where);
		return -1;
	}
	/* Objects may come in any order: "burst" and its ge_ fields together are ambiguous. */
	if (json_object_get(obj, "burst") != NULL) {
		json_object_foreach((json_t *)obj, key, val) {
			if (strncmp(key, "ge_", 3) == 0) {
				snprintf(err, errlen, "%s: give either burst or the ge_ fields", where);
				return -1;
			}
		}
	}
	json_object_foreach((json_t *)obj, key, val) {
		if (impair_dir_set(d, key, val, sub, sizeof(sub)) < 0) {
			snprintf(err, errlen, "%s: %s", where, sub);
			return -1;
		}
	}
	return 0;
}

int impair_settings_update(struct impair_settings *s, const json_t *update,
                           char *err, size_t errlen)
{
	struct impair_settings next = *s;
	const char *key;
	json_t *val;
	const json_t *both;

	if (!json_is_object(update)) {
		snprintf(err, errlen, "settings must be a JSON object");
		return -1;
	}
	json_object_foreach((json_t *)update, key, val) {
		if (strcmp(key, "c2s") != 0 && strcmp(key, "s2c") != 0 && strcmp(key, "both") != 0) {
			snprintf(err, errlen, "unknown key '%.40s' (want \"c2s\", \"s2c\" or \"both\")",
			         key);
			return -1;
		}
	}
	both = json_object_get(update, "both");
	if (both != NULL) {
		if (dir_update(&next.dir[IMPAIR_C2S], "both", both, err, errlen) < 0 ||
		    dir_update(&next.dir[IMPAIR_S2C], "both", both, err, errlen) < 0)
			return -1;
	}
	for (int d = 0; d < 2; d++) {
		const json_t *o = json_object_get(update, impair_dir_name(d));

		if (o != NULL && dir_update(&next.dir[d], impair_dir_name(d), o, err, errlen) < 0)
			return -1;
	}
	*s = next;
	return 0;
}

int impair_settings_update_text(struct impair_settings *s, const char *text, size_t len,
                                char *err, size_t errlen)
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
	r = impair_settings_update(s, j, err, errlen);
	json_decref(j);
	return r;
}

static json_t *dir_to_json(const struct impair_dir_settings *d)
{
	return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:s, s:I, s:I, s:b, s:f, s:f, s:f, s:f}",
	                 "loss", d->loss, "dup", d->dup, "reorder", d->reorder,
	                 "delay_ms", d->delay_ms, "jitter_ms", d->jitter_ms,
	                 "reorder_ms", d->reorder_ms,
	                 "jitter", d->jitter_dist == IMPAIR_JITTER_NORMAL ? "normal" : "uniform",
	                 "rate_bps", (json_int_t)d->rate_bps,
	                 "queue_bytes", (json_int_t)d->queue_bytes,
	                 "blackhole", d->blackhole,
	                 "ge_p", d->ge.p, "ge_r", d->ge.r,
	                 "ge_loss_good", d->ge.loss_good, "ge_loss_bad", d->ge.loss_bad);
}

json_t *impair_settings_to_json(const struct impair_settings *s)
{
	return json_pack("{s:o, s:o}", "c2s", dir_to_json(&s->dir[IMPAIR_C2S]),
	                 "s2c", dir_to_json(&s->dir[IMPAIR_S2C]));
}

int impair_parse_scaled(const char *text, uint64_t unit, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (text == NULL || *text < '0' || *text > '9')
		return -1;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == 'k' || *end == 'K')
		mul = unit, end++;
	else if (*end == 'M')
		mul = unit * unit, end++;
	else if (*end == 'G')
		mul = unit * unit * unit, end++;
	if (*end != '\0' || v > (1ULL << 63) / mul)
		return -1;
	*out = (uint64_t)v * mul;
	return 0;
}

json_t *impair_option_value(const char *key, const char *text)
{
	const struct field *f = field_find(key);
	char *end;
	double x;
	uint64_t u;

	if (f == NULL)
		return NULL;
	switch (f->kind) {
	case F_BOOL:
		return json_true();
	case F_DIST:
		return text ? json_string(text) : NULL;
	case F_BURST: {
		/* LOSS:LENGTH, e.g. 0.02:4 */
		double l, b;

		if (text == NULL || *text == '\0')
			return NULL;
		errno = 0;
		l = strtod(text, &end);
		if (errno != 0 || *end != ':' || end == text)
			return NULL;
		text = end + 1;
		b = strtod(text, &end);
		if (errno != 0 || *end != '\0' || end == text || !isfinite(l) || !isfinite(b))
			return NULL;
		return json_pack("{s:f, s:f}", "loss", l, "length", b);
	}
	case F_RATE:
	case F_QUEUE:
		if (impair_parse_scaled(text, f->kind == F_RATE ? 1000 : 1024, &u) < 0 ||
		    u > (uint64_t)INT64_MAX)
			return NULL;
		return json_integer((json_int_t)u);
	default:
		if (text == NULL || *text == '\0')
			return NULL;
		errno = 0;
		x = strtod(text, &end);
		if (errno != 0 || *end != '\0' || !isfinite(x))
			return NULL;
		return json_real(x);
	}
}
