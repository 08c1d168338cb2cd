/*
 * Impairment settings of `sctpt-lab impair`, one set per direction (c2s: from
 * the client side towards the upstream, s2c: back), and their JSON form.
 * The REST API and the command line both go through impair_dir_set(), so
 * a value is checked the same way wherever it comes from.  Pure: no I/O.
 */
#ifndef SCTPT_IMPAIR_SETTINGS_H
#define SCTPT_IMPAIR_SETTINGS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

enum impair_dirn {
	IMPAIR_C2S = 0,
	IMPAIR_S2C = 1,
};

enum impair_jitter_dist {
	IMPAIR_JITTER_UNIFORM = 0,   /* delay + U(-jitter, +jitter) */
	IMPAIR_JITTER_NORMAL,        /* delay + jitter * N(0, 1), within +-6 jitter */
};

#define IMPAIR_MAX_MS 60000.0                 /* delay, jitter, reorder hold */
#define IMPAIR_MAX_RATE 100000000000ULL       /* 100 Gbit/s */
#define IMPAIR_MIN_QUEUE 1500ULL
#define IMPAIR_MAX_QUEUE (64ULL << 20)
#define IMPAIR_DEFAULT_QUEUE (128ULL << 10)
#define IMPAIR_DEFAULT_REORDER_MS 20.0

/*
 * Gilbert-Elliott bursty loss: a two-state Markov chain stepped once per
 * packet.  In the good state a packet is lost with probability loss_good,
 * in the bad state with loss_bad; after each packet the chain moves good
 * -> bad with probability p and bad -> good with probability r.  With
 * loss_good 0 and loss_bad 1 (Gilbert's model) the long-run loss rate is
 * p / (p + r) and a loss burst lasts 1 / r packets on average.  Off while
 * p and loss_good are both 0 (the defaults: p 0, r 1, loss_good 0,
 * loss_bad 1).
 */
struct impair_ge {
	double p;                    /* good -> bad, per packet */
	double r;                    /* bad -> good, per packet */
	double loss_good;            /* loss probability in the good state */
	double loss_bad;             /* loss probability in the bad state */
};

#define IMPAIR_GE_MAX_BURST 1000000.0

struct impair_dir_settings {
	double loss;                 /* probability a packet is dropped, 0..1 */
	double dup;                  /* probability a packet is sent twice, 0..1 */
	double reorder;              /* probability a packet is held back, 0..1 */
	double delay_ms;             /* added one-way delay */
	double jitter_ms;            /* see enum impair_jitter_dist */
	double reorder_ms;           /* extra hold of a reordered packet */
	enum impair_jitter_dist jitter_dist;
	uint64_t rate_bps;           /* bottleneck rate in bits/s, 0: none */
	uint64_t queue_bytes;        /* bottleneck queue; beyond it packets drop */
	int blackhole;               /* drop (datagrams) or stall (TCP) everything */
	struct impair_ge ge;         /* bursty loss, after loss */
};

struct impair_settings {
	struct impair_dir_settings dir[2];
};

/* Direction names used in JSON and options: "c2s", "s2c". */
const char *impair_dir_name(int dir);

/* No impairment at all: everything passes at once. */
void impair_settings_defaults(struct impair_settings *s);

/*
 * Set one field of d by its JSON name ("loss", "delay_ms", ...) from a JSON
 * value.  Numbers may be integers or reals; probabilities must lie in
 * [0, 1], times in [0, 60000] ms, rate_bps in [0, 1e11] and be whole,
 * queue_bytes in [1500, 64 MiB], blackhole must be true or false, jitter
 * "uniform" or "normal".  Returns 0, or -1 with a message in err and d
 * unchanged.
 */
int impair_dir_set(struct impair_dir_settings *d, const char *key, const json_t *val,
                   char *err, size_t errlen);

/*
 * Apply a partial update: a JSON object with any of "c2s", "s2c" and
 * "both" (applied first, to each direction), each an object of fields as
 * in impair_dir_set().  All or nothing: on any error (bad JSON, unknown
 * key, wrong type, out of range) returns -1 with a message in err and s
 * is unchanged.
 */
int impair_settings_update(struct impair_settings *s, const json_t *update,
                           char *err, size_t errlen);
/* The same from JSON text of len bytes. */
int impair_settings_update_text(struct impair_settings *s, const char *text, size_t len,
                                char *err, size_t errlen);

/*
 * Gilbert's model from a mean loss rate (0 <= loss < 1) and a mean burst
 * length in packets (1 .. 1e6): r = 1 / length, p = loss * r / (1 - loss),
 * loss_good 0, loss_bad 1.  loss 0 switches the model off.  Fails (-1,
 * err) when p would exceed 1, i.e. loss > length / (length + 1).
 */
int impair_ge_from_burst(double loss, double length, struct impair_ge *out,
                         char *err, size_t errlen);
/* Whether the model draws at all. */
int impair_ge_enabled(const struct impair_ge *g);
/* The long-run loss rate the model gives. */
double impair_ge_mean_loss(const struct impair_ge *g);

/*
 * Named link presets (presets.c): the settings of both directions for a
 * typical link.  impair_preset_apply() replaces *s wholly (defaults, then
 * the preset); -1 if there is no such preset.
 */
int impair_preset_apply(const char *name, struct impair_settings *s);
/* [{"name", "description", "source", "settings": {"c2s", "s2c"}}, ...] */
json_t *impair_presets_to_json(void);
/* "3g, lte, ..." for messages and --help. */
const char *impair_preset_names(void);

/* A JSON integer or real as a finite double: 0, or -1. */
int impair_json_number(const json_t *v, double *out);

/* {"c2s": {...}, "s2c": {...}} with every field; NULL on allocation failure. */
json_t *impair_settings_to_json(const struct impair_settings *s);

/*
 * Turn a command-line value for field key into the JSON value that
 * impair_dir_set() takes: a number for most fields ("0.05", "20";
 * rate_bps takes k/M/G suffixes in powers of 1000, queue_bytes in powers
 * of 1024), a string for "jitter", and true for "blackhole" (text
 * ignored).  NULL if the text is not a number.  The caller json_decref()s
 * the result.
 */
json_t *impair_option_value(const char *key, const char *text);

/*
 * Parse an unsigned number with an optional suffix k, M or G (times
 * unit, unit^2, unit^3; unit is 1000 or 1024).  0, or -1 if malformed or
 * above 2^63.
 */
int impair_parse_scaled(const char *text, uint64_t unit, uint64_t *out);

#endif
