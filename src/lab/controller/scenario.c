/*
 * The scenario format (docs/lab.md): a JSON object with a workload, a
 * timeline of impairment statements, a seed, a repeat count and variants
 * (the same scenario through several SOCKS proxies: side by side).  Pure:
 * text in, struct scenario out, every bound checked, nothing trusted.
 */
#include "lab/controller/controller_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *field_names[SC_F_NFIELDS] = {
	"loss", "delay_ms", "jitter_ms", "dup", "reorder", "reorder_ms", "rate_bps", "blackhole",
};

const char *sc_field_name(enum sc_field f)
{
	return f < SC_F_NFIELDS ? field_names[f] : "?";
}

/* A finite number at the start of s; *end past it.  0 or -1. */
static int number(const char *s, double *v, const char **end)
{
	char *e;

	if (!isdigit((unsigned char)s[0]) && !(s[0] == '.' && isdigit((unsigned char)s[1])))
		return -1;
	*v = strtod(s, &e);
	if (e == s || !isfinite(*v) || *v < 0)
		return -1;
	*end = e;
	return 0;
}

/* "30s", "500ms", "2m", "30" (seconds) -> ms. */
static int parse_time(const char *s, uint32_t *ms)
{
	const char *e;
	double v, mult;

	if (number(s, &v, &e) < 0)
		return -1;
	if (*e == '\0' || strcmp(e, "s") == 0)
		mult = 1000;
	else if (strcmp(e, "ms") == 0)
		mult = 1;
	else if (strcmp(e, "m") == 0 || strcmp(e, "min") == 0)
		mult = 60000;
	else
		return -1;
	v *= mult;
	if (v > (double)SC_MAX_DURATION_S * 1000.0)
		return -1;
	*ms = (uint32_t)llround(v);
	return 0;
}

/* "25", "25ms", "1.5s" -> ms, at most 60000. */
static int parse_ms(const char *s, double *out)
{
	const char *e;
	double v;

	if (number(s, &v, &e) < 0)
		return -1;
	if (strcmp(e, "s") == 0)
		v *= 1000;
	else if (*e != '\0' && strcmp(e, "ms") != 0)
		return -1;
	if (v > 60000)
		return -1;
	*out = floor(v + 0.5);
	return 0;
}

/* "2%", "0.02" -> 0..1. */
static int parse_prob(const char *s, double *out)
{
	const char *e;
	double v;

	if (number(s, &v, &e) < 0)
		return -1;
	if (strcmp(e, "%") == 0)
		v /= 100;
	else if (*e != '\0')
		return -1;
	if (v > 1)
		return -1;
	*out = v;
	return 0;
}

/* "10M", "512k", "1.5Mbit", "0", "off" -> bits/s, at most 1e11. */
static int parse_rate(const char *s, double *out)
{
	const char *e;
	double v, mult = 1;

	if (strcmp(s, "off") == 0) {
		*out = 0;
		return 0;
	}
	if (number(s, &v, &e) < 0)
		return -1;
	if (*e == 'k' || *e == 'K') {
		mult = 1e3;
		e++;
	} else if (*e == 'M') {
		mult = 1e6;
		e++;
	} else if (*e == 'G') {
		mult = 1e9;
		e++;
	}
	if (*e != '\0' && strcmp(e, "bit") != 0 && strcmp(e, "bps") != 0 &&
	    strcmp(e, "bit/s") != 0)
		return -1;
	v *= mult;
	if (v > 1e11)
		return -1;
	*out = floor(v);
	return 0;
}

static int parse_dir(const char *s, enum sc_dir *d)
{
	if (strcmp(s, "c2s") == 0)
		*d = SC_C2S;
	else if (strcmp(s, "s2c") == 0)
		*d = SC_S2C;
	else if (strcmp(s, "both") == 0)
		*d = SC_BOTH;
	else
		return -1;
	return 0;
}

#define MAX_TOK 8

/* Split s in place at blanks; the number of tokens, or -1 if too many. */
static int tokens(char *s, char **tok)
{
	int n = 0;

	for (char *p = strtok(s, " \t\r\n"); p != NULL; p = strtok(NULL, " \t\r\n")) {
		if (n == MAX_TOK)
			return -1;
		tok[n++] = p;
	}
	return n;
}

static int parse_action(char *a, uint32_t at, struct sc_event *e, char *err, size_t errlen)
{
	static const struct {
		const char *word;
		enum sc_field f;
		int (*value)(const char *, double *);
	} acts[] = {
		{ "loss", SC_F_LOSS, parse_prob },
		{ "dup", SC_F_DUP, parse_prob },
		{ "reorder", SC_F_REORDER, parse_prob },
		{ "delay", SC_F_DELAY, parse_ms },
		{ "jitter", SC_F_JITTER, parse_ms },
		{ "reorder-delay", SC_F_REORDER_MS, parse_ms },
		{ "rate", SC_F_RATE, parse_rate },
	};
	char *tok[MAX_TOK];
	int n = tokens(a, tok);

	memset(e, 0, sizeof(*e));
	e->at_ms = at;
	if (n <= 0) {
		snprintf(err, errlen, n == 0 ? "an empty action" : "too many words in an action");
		return -1;
	}
	if (strcmp(tok[0], "restore") == 0 || strcmp(tok[0], "reset") == 0) {
		if (n != 1)
			goto extra;
		e->kind = SC_EV_RESTORE;
		return 0;
	}
	if (strcmp(tok[0], "recv-delay") == 0) {
		if (n != 2 || parse_ms(tok[1], &e->value) < 0) {
			snprintf(err, errlen, "recv-delay wants a time in ms (0..60000)");
			return -1;
		}
		e->kind = SC_EV_RECV_DELAY;
		return 0;
	}
	e->kind = SC_EV_IMPAIR;
	if (strcmp(tok[0], "blackhole") == 0 || strcmp(tok[0], "unblackhole") == 0) {
		e->field = SC_F_BLACKHOLE;
		e->value = tok[0][0] == 'b';
		if (n > 2 || (n == 2 && parse_dir(tok[1], &e->dir) < 0))
			goto baddir;
		return 0;
	}
	for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
		if (strcmp(tok[0], acts[i].word) != 0)
			continue;
		e->field = acts[i].f;
		if (n < 2 || acts[i].value(tok[1], &e->value) < 0) {
			snprintf(err, errlen, "bad value for %s%s%.20s%s", acts[i].word,
			         n < 2 ? "" : " ('", n < 2 ? "" : tok[1], n < 2 ? "" : "')");
			return -1;
		}
		if (n > 3 || (n == 3 && parse_dir(tok[2], &e->dir) < 0))
			goto baddir;
		return 0;
	}
	snprintf(err, errlen, "unknown action '%.24s' (loss, delay, jitter, dup, reorder, "
	         "reorder-delay, rate, blackhole, unblackhole, restore, recv-delay)", tok[0]);
	return -1;
extra:
	snprintf(err, errlen, "'%.24s' takes no argument", tok[0]);
	return -1;
baddir:
	snprintf(err, errlen, "the direction must be c2s, s2c or both");
	return -1;
}

int sc_parse_statement(const char *s, struct sc_event *ev, unsigned max, char *err,
                       size_t errlen)
{
	char buf[256], *p, *comma, *sp;
	uint32_t at;
	unsigned n = 0;
	size_t len = strlen(s);

	if (len >= sizeof(buf)) {
		snprintf(err, errlen, "a statement is at most %zu characters", sizeof(buf) - 1);
		return -1;
	}
	memcpy(buf, s, len + 1);
	for (p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			*p = ' ';
	p = buf + strspn(buf, " \t");
	if (strncmp(p, "at", 2) != 0 || (p[2] != ' ' && p[2] != '\t')) {
		snprintf(err, errlen, "a statement starts with 'at TIME', as in 'at 30s loss 2%%'");
		return -1;
	}
	p += 2;
	p += strspn(p, " \t");
	sp = p + strcspn(p, " \t");
	if (*sp == '\0') {
		snprintf(err, errlen, "'at TIME' needs an action after it");
		return -1;
	}
	*sp = '\0';
	if (parse_time(p, &at) < 0) {
		snprintf(err, errlen, "bad time '%.20s' (e.g. 30s, 500ms, 2m; at most %d s)", p,
		         SC_MAX_DURATION_S);
		return -1;
	}
	p = sp + 1;
	for (;;) {
		comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		if (n == max) {
			snprintf(err, errlen, "too many actions (at most %d in a scenario)",
			         SC_MAX_EVENTS);
			return -1;
		}
		if (parse_action(p, at, &ev[n], err, errlen) < 0)
			return -1;
		snprintf(ev[n].text, sizeof(ev[n].text), "%s", s + strspn(s, " \t"));
		n++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return (int)n;
}

json_t *sc_event_impair_json(const struct sc_event *e)
{
	json_t *v = e->field == SC_F_BLACKHOLE ? json_boolean(e->value != 0)
	          : (e->field == SC_F_LOSS || e->field == SC_F_DUP || e->field == SC_F_REORDER)
	          ? json_real(e->value) : json_integer((json_int_t)e->value);
	const char *dir = e->dir == SC_C2S ? "c2s" : e->dir == SC_S2C ? "s2c" : "both";

	return json_pack("{s:{s:o}}", dir, sc_field_name(e->field), v);
}

/* ---- the JSON object */

static int valid_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= SC_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
	return 1;
}

static int valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= SC_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

static int get_uint(json_t *v, uint64_t max, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

static int parse_workload(json_t *w, struct sc_workload *wl, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	uint64_t x;

	if (!json_is_object(w))
		FAIL("workload must be an object");
	json_object_foreach(w, key, v) {
		if (strcmp(key, "mode") == 0) {
			if (!json_is_string(v) || (strcmp(json_string_value(v), "bulk") != 0 &&
			                           strcmp(json_string_value(v), "rpc") != 0))
				FAIL("workload.mode must be \"bulk\" or \"rpc\"");
			wl->rpc = strcmp(json_string_value(v), "rpc") == 0;
		} else if (strcmp(key, "streams") == 0) {
			if (get_uint(v, 1024, &x) < 0 || x == 0)
				FAIL("workload.streams must be 1..1024");
			wl->streams = (unsigned)x;
		} else if (strcmp(key, "bytes") == 0) {
			if (get_uint(v, 1ULL << 40, &x) < 0)
				FAIL("workload.bytes must be 0..2^40");
			wl->bytes = x;
		} else if (strcmp(key, "rpc_req") == 0 || strcmp(key, "rpc_resp") == 0) {
			if (get_uint(v, 1u << 20, &x) < 0 || x == 0)
				FAIL("workload.%s must be 1..1048576", key);
			if (key[4] == 'r' && key[5] == 'e' && key[6] == 'q')
				wl->rpc_req = (uint32_t)x;
			else
				wl->rpc_resp = (uint32_t)x;
		} else if (strcmp(key, "rpc_gap_ms") == 0) {
			if (get_uint(v, 60000, &x) < 0)
				FAIL("workload.rpc_gap_ms must be 0..60000");
			wl->rpc_gap_ms = (uint32_t)x;
		} else if (strcmp(key, "rpc_count") == 0) {
			if (get_uint(v, 1000000000, &x) < 0)
				FAIL("workload.rpc_count must be 0..10^9");
			wl->rpc_count = x;
		} else {
			FAIL("unknown key workload.%.32s", key);
		}
	}
	return 0;
}

static int add_statements(struct scenario *sc, const char *text, char *err, size_t errlen)
{
	char line[256];
	const char *p = text;

	while (*p) {
		size_t n = strcspn(p, ";\n");
		int k;
		char e2[200];

		if (n >= sizeof(line))
			FAIL("a timeline statement is at most %zu characters", sizeof(line) - 1);
		memcpy(line, p, n);
		line[n] = '\0';
		p += n;
		if (*p)
			p++;
		if (strspn(line, " \t\r") == n)
			continue;      /* blank */
		k = sc_parse_statement(line, sc->ev + sc->nevents, SC_MAX_EVENTS - sc->nevents,
		                       e2, sizeof(e2));
		if (k < 0)
			FAIL("timeline: %s (in '%.60s')", e2, line);
		sc->nevents += (unsigned)k;
	}
	return 0;
}

static int parse_variants(json_t *a, struct scenario *sc, char *err, size_t errlen)
{
	size_t i;
	json_t *v;

	if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > SC_MAX_VARIANTS)
		FAIL("variants must be an array of 1..%d objects", SC_MAX_VARIANTS);
	json_array_foreach(a, i, v) {
		struct sc_variant *var = &sc->var[i];
		const char *key;
		json_t *x;

		if (!json_is_object(v))
			FAIL("variants[%zu] must be an object", i);
		json_object_foreach(v, key, x) {
			char *dst;
			size_t cap;

			if (strcmp(key, "name") == 0) {
				dst = var->name;
				cap = sizeof(var->name);
			} else if (strcmp(key, "socks") == 0) {
				dst = var->socks;
				cap = sizeof(var->socks);
			} else if (strcmp(key, "target") == 0) {
				dst = var->target;
				cap = sizeof(var->target);
			} else {
				FAIL("unknown key variants[%zu].%.32s", i, key);
			}
			if (!json_is_string(x) || strlen(json_string_value(x)) >= cap)
				FAIL("variants[%zu].%s must be a string shorter than %zu", i, key, cap);
			strcpy(dst, json_string_value(x));
		}
		if (!valid_name(var->name))
			FAIL("variants[%zu].name must be 1..%d printable characters", i,
			     SC_NAME_MAX - 1);
		for (size_t k = 0; k < i; k++)
			if (strcmp(sc->var[k].name, var->name) == 0)
				FAIL("two variants are named '%s'", var->name);
	}
	sc->nvariants = (unsigned)json_array_size(a);
	return 0;
}

static int cmp_event(const void *a, const void *b)
{
	const struct sc_event *x = a, *y = b;

	if (x->at_ms != y->at_ms)
		return x->at_ms < y->at_ms ? -1 : 1;
	return 0;
}

int sc_parse(const char *text, size_t len, struct scenario *sc, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *j, *v;
	const char *key;
	int have_duration = 0;
	uint64_t x = 0;

	memset(sc, 0, sizeof(*sc));
	sc->repeat = 1;
	sc->seed = 1;
	sc->w.streams = 1;
	if (len > SC_MAX_TEXT)
		FAIL("a scenario is at most %d bytes of JSON", SC_MAX_TEXT);
	j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL)
		FAIL("not JSON: %.100s (line %d)", jerr.text, jerr.line);
	if (!json_is_object(j)) {
		json_decref(j);
		FAIL("a scenario is a JSON object");
	}
	json_object_foreach(j, key, v) {
		int r = 0;

		if (strcmp(key, "name") == 0) {
			if (!json_is_string(v) || !valid_name(json_string_value(v))) {
				snprintf(err, errlen, "name must be 1..%d printable characters",
				         SC_NAME_MAX - 1);
				r = -1;
			} else {
				strcpy(sc->name, json_string_value(v));
			}
		} else if (strcmp(key, "seed") == 0) {
			if (get_uint(v, INT64_MAX, &sc->seed) < 0) {
				snprintf(err, errlen, "seed must be a non-negative integer");
				r = -1;
			}
		} else if (strcmp(key, "repeat") == 0) {
			if (get_uint(v, SC_MAX_REPEAT, &x) < 0 || x == 0) {
				snprintf(err, errlen, "repeat must be 1..%d", SC_MAX_REPEAT);
				r = -1;
			}
			sc->repeat = (unsigned)x;
		} else if (strcmp(key, "duration_s") == 0) {
			if (!json_is_number(v) || json_number_value(v) < 1 ||
			    json_number_value(v) > SC_MAX_DURATION_S) {
				snprintf(err, errlen, "duration_s must be 1..%d", SC_MAX_DURATION_S);
				r = -1;
			} else {
				sc->duration_ms = (uint32_t)llround(json_number_value(v) * 1000);
				have_duration = 1;
			}
		} else if (strcmp(key, "workload") == 0) {
			r = parse_workload(v, &sc->w, err, errlen);
		} else if (strcmp(key, "timeline") == 0) {
			size_t i;
			json_t *s;

			if (json_is_string(v)) {
				r = add_statements(sc, json_string_value(v), err, errlen);
			} else if (json_is_array(v)) {
				json_array_foreach(v, i, s) {
					if (!json_is_string(s)) {
						snprintf(err, errlen, "timeline[%zu] must be a string", i);
						r = -1;
						break;
					}
					if ((r = add_statements(sc, json_string_value(s), err, errlen)) < 0)
						break;
				}
			} else {
				snprintf(err, errlen, "timeline must be a string or an array of strings");
				r = -1;
			}
		} else if (strcmp(key, "variants") == 0) {
			r = parse_variants(v, sc, err, errlen);
		} else if (strcmp(key, "nodes") == 0) {
			const char *k2;
			json_t *v2;

			if (!json_is_object(v)) {
				snprintf(err, errlen, "nodes must be an object");
				r = -1;
			}
			json_object_foreach(v, k2, v2) {
				char *dst = strcmp(k2, "send") == 0 ? sc->send
				          : strcmp(k2, "recv") == 0 ? sc->recv
				          : strcmp(k2, "impair") == 0 ? sc->impair : NULL;

				if (r < 0)
					break;
				if (dst == NULL) {
					snprintf(err, errlen, "unknown key nodes.%.32s (send, recv, impair)",
					         k2);
					r = -1;
				} else if (!json_is_string(v2) || !valid_id(json_string_value(v2))) {
					snprintf(err, errlen, "nodes.%s must be a node id", k2);
					r = -1;
				} else {
					strcpy(dst, json_string_value(v2));
				}
			}
		} else {
			snprintf(err, errlen, "unknown key '%.32s'", key);
			r = -1;
		}
		if (r < 0) {
			json_decref(j);
			return -1;
		}
	}
	json_decref(j);
	if (!have_duration)
		FAIL("duration_s is required (the length of each run, 1..%d s)", SC_MAX_DURATION_S);
	if (sc->name[0] == '\0')
		strcpy(sc->name, "unnamed");
	if (sc->nvariants == 0) {
		sc->nvariants = 1;
		strcpy(sc->var[0].name, "default");
	}
	if (sc->repeat * sc->nvariants > SC_MAX_REPEAT * SC_MAX_VARIANTS)
		FAIL("too many iterations");
	if (sc->w.rpc) {
		if (sc->w.rpc_req == 0)
			sc->w.rpc_req = 64;
		if (sc->w.rpc_resp == 0)
			sc->w.rpc_resp = sc->w.rpc_req;
		if (sc->w.bytes != 0)
			FAIL("workload.bytes is for bulk; rpc uses rpc_count");
	} else if (sc->w.rpc_req || sc->w.rpc_resp || sc->w.rpc_count || sc->w.rpc_gap_ms) {
		FAIL("workload.rpc_* are for mode \"rpc\"");
	}
	for (unsigned i = 0; i < sc->nevents; i++)
		if (sc->ev[i].at_ms > sc->duration_ms)
			FAIL("timeline: '%.60s' is after the end (duration_s)", sc->ev[i].text);
	/* Stable: insertion sort keeps the order of statements at the same time. */
	for (unsigned i = 1; i < sc->nevents; i++) {
		struct sc_event e = sc->ev[i];
		unsigned k = i;

		while (k > 0 && cmp_event(&sc->ev[k - 1], &e) > 0) {
			sc->ev[k] = sc->ev[k - 1];
			k--;
		}
		sc->ev[k] = e;
	}
	return 0;
}

json_t *sc_to_json(const struct scenario *sc)
{
	json_t *tl = json_array(), *vars = json_array(), *w;

	for (unsigned i = 0; i < sc->nevents; i++) {
		const struct sc_event *e = &sc->ev[i];
		json_t *o = json_pack("{s:I, s:s, s:s}", "at_ms", (json_int_t)e->at_ms,
		        "kind", e->kind == SC_EV_IMPAIR ? "impair"
		              : e->kind == SC_EV_RESTORE ? "restore" : "recv-delay",
		        "text", e->text);

		if (e->kind == SC_EV_IMPAIR) {
			json_object_set_new(o, "set", sc_event_impair_json(e));
		} else if (e->kind == SC_EV_RECV_DELAY) {
			json_object_set_new(o, "delay_ms", json_integer((json_int_t)e->value));
		}
		json_array_append_new(tl, o);
	}
	for (unsigned i = 0; i < sc->nvariants; i++)
		json_array_append_new(vars, json_pack("{s:s, s:s, s:s}", "name", sc->var[i].name,
		        "socks", sc->var[i].socks, "target", sc->var[i].target));
	w = json_pack("{s:s, s:i, s:I}", "mode", sc->w.rpc ? "rpc" : "bulk",
	              "streams", (int)sc->w.streams, "bytes", (json_int_t)sc->w.bytes);
	if (sc->w.rpc) {
		json_object_set_new(w, "rpc_req", json_integer(sc->w.rpc_req));
		json_object_set_new(w, "rpc_resp", json_integer(sc->w.rpc_resp));
		json_object_set_new(w, "rpc_gap_ms", json_integer(sc->w.rpc_gap_ms));
		json_object_set_new(w, "rpc_count", json_integer((json_int_t)sc->w.rpc_count));
	}
	return json_pack("{s:s, s:I, s:i, s:f, s:o, s:o, s:o, s:{s:s, s:s, s:s}}",
	        "name", sc->name,
	        "seed", (json_int_t)sc->seed,
	        "repeat", (int)sc->repeat,
	        "duration_s", sc->duration_ms / 1000.0,
	        "workload", w,
	        "timeline", tl,
	        "variants", vars,
	        "nodes", "send", sc->send, "recv", sc->recv, "impair", sc->impair);
}
