/*
 * libFuzzer harness for the rules JSON parser of `sctpt-lab impair`
 * (src/lab/impair/rules.c) and the settings updates it sits beside
 * (settings.c: "burst" and the ge_ fields).
 *
 * Input: byte 0 selects what the rest is: 0 a POST /rules body, 1 a
 * PUT /rules/NAME body with NAME up to the first newline, 2 a PUT
 * /settings body, 3 a sequence of rule bodies separated by newlines, put
 * into one list, then packets shaped through it.  Properties: a refusal
 * always says why; an accepted rule has a valid name, values in range,
 * and its JSON form parses again to the same rule; a refused settings
 * update changes nothing; the list never holds more than its bound, and
 * the shaper's counters keep their invariant.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lab/impair/rules.h"
#include "lab/impair/settings.h"
#include "lab/impair/shaper.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rule(const struct impair_rule *r)
{
	struct impair_rule back;
	char err[256];
	json_t *j;
	char *text;

	CHECK(impair_rule_name_ok(r->name));
	CHECK(r->dirs >= 1 && r->dirs <= 3);
	CHECK(r->toxicity >= 0.0 && r->toxicity <= 1.0);
	CHECK(r->p >= 0.0 && r->p <= 1.0);
	CHECK(r->delay_ms >= 0.0 && r->delay_ms <= IMPAIR_MAX_MS);
	CHECK(r->jitter_ms >= 0.0 && r->jitter_ms <= IMPAIR_MAX_MS);
	CHECK(r->rate_bps <= IMPAIR_MAX_RATE);
	CHECK(r->kind != IMPAIR_RULE_RATE || r->rate_bps > 0);
	CHECK(r->queue_bytes >= IMPAIR_MIN_QUEUE && r->queue_bytes <= IMPAIR_MAX_QUEUE);
	CHECK(r->ge.p >= 0.0 && r->ge.p <= 1.0 && r->ge.r >= 0.0 && r->ge.r <= 1.0);
	CHECK(r->ge.loss_good >= 0.0 && r->ge.loss_good <= 1.0);
	CHECK(r->ge.loss_bad >= 0.0 && r->ge.loss_bad <= 1.0);
	j = impair_rule_to_json(r);
	CHECK(j != NULL);
	text = json_dumps(j, 0);
	json_decref(j);
	CHECK(text != NULL);
	CHECK(impair_rule_parse_text(text, strlen(text), NULL, &back, err, sizeof(err)) == 0);
	free(text);
	CHECK(strcmp(back.name, r->name) == 0 && back.kind == r->kind && back.dirs == r->dirs);
	CHECK(back.per_packet == r->per_packet && back.rate_bps == r->rate_bps);
}

static void one_rule(const char *text, size_t n, const char *path_name)
{
	struct impair_rule r;
	char err[256];

	err[0] = '\0';
	if (impair_rule_parse_text(text, n, path_name, &r, err, sizeof(err)) < 0) {
		CHECK(err[0] != '\0');
		return;
	}
	if (path_name != NULL)
		CHECK(strcmp(r.name, path_name) == 0);
	check_rule(&r);
}

static void settings(const char *text, size_t n)
{
	struct impair_settings s, before;
	char err[256];

	impair_settings_defaults(&s);
	before = s;
	if (impair_settings_update_text(&s, text, n, err, sizeof(err)) < 0) {
		CHECK(memcmp(&s, &before, sizeof(s)) == 0);
		return;
	}
	for (int d = 0; d < 2; d++) {
		CHECK(s.dir[d].ge.p >= 0.0 && s.dir[d].ge.p <= 1.0);
		CHECK(impair_ge_mean_loss(&s.dir[d].ge) >= 0.0);
		CHECK(impair_ge_mean_loss(&s.dir[d].ge) <= 1.0 + 1e-12);
	}
}

static void list_and_shape(const char *text, size_t n)
{
	static struct impair_rules rs;
	struct impair_settings s;
	struct impair_shaper sh;
	struct impair_fate f;
	size_t start = 0;

	impair_rules_init(&rs);
	impair_settings_defaults(&s);
	for (size_t i = 0; i <= n; i++) {
		struct impair_rule r;
		char err[256];

		if (i < n && text[i] != '\n')
			continue;
		if (impair_rule_parse_text(text + start, i - start, NULL, &r, err, sizeof(err)) == 0)
			(void)impair_rules_put(&rs, &r, (i & 1) != 0, 7);
		CHECK(rs.n <= IMPAIR_MAX_RULES);
		start = i + 1;
	}
	impair_shaper_init(&sh, 1);
	for (int i = 0; i < 64; i++) {
		int dir = i & 1;

		impair_shape_rules(&sh, &s.dir[dir], &rs, dir, (uint64_t)(i % 5), 7,
		                   (uint64_t)i * 100, 100, &f);
		CHECK(f.ncopies >= 0 && f.ncopies <= IMPAIR_MAX_COPIES);
		CHECK(f.corrupt_bit < 800);
		sh.c.forwarded += (uint64_t)f.ncopies;
	}
	CHECK(sh.c.seen + sh.c.duplicated == sh.c.forwarded + sh.c.dropped + sh.c.pending);
	CHECK(sh.c.dropped == sh.c.dropped_loss + sh.c.dropped_blackhole + sh.c.dropped_burst +
	      sh.c.dropped_rule + sh.c.queue_drops + sh.c.dropped_overflow + sh.c.dropped_other);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data + 1;
	size_t n = size ? size - 1 : 0;

	if (size == 0 || size > 8192)     /* the API refuses bodies over 8 KiB */
		return 0;
	switch (data[0] % 4) {
	case 0:
		one_rule(text, n, NULL);
		break;
	case 1: {
		const char *nl = memchr(text, '\n', n);
		char name[128];
		size_t nlen;

		if (nl == NULL)
			return 0;
		nlen = (size_t)(nl - text);
		if (nlen >= sizeof(name) || memchr(text, '\0', nlen) != NULL)
			return 0;
		memcpy(name, text, nlen);
		name[nlen] = '\0';
		one_rule(nl + 1, n - nlen - 1, name);
		break;
	}
	case 2:
		settings(text, n);
		break;
	default:
		list_and_shape(text, n);
		break;
	}
	return 0;
}
