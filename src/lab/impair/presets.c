/*
 * Link presets of `sctpt-lab impair`: the settings of both directions for
 * a few typical links, so that "a 3G phone" means the same numbers in
 * every run and every paper.  c2s is the uplink (the client is the phone
 * or the home), s2c the downlink.  docs/impair.md gives each number's
 * source and reasoning; keep the two in step.  Pure: no I/O.
 */
#include "lab/impair/settings.h"

#include <string.h>

struct preset {
	const char *name;
	const char *description;
	const char *source;
	/* per direction: c2s (up), s2c (down) */
	double delay_ms, jitter_ms;
	enum impair_jitter_dist dist;
	uint64_t rate_bps[2];
	uint64_t queue_bytes;
	double loss;                 /* uniform loss, each way */
	double burst_loss, burst_len;    /* Gilbert model, each way; 0: none */
};

static const struct preset presets[] = {
	{ "none", "no impairment (the defaults)", "-",
	  0, 0, IMPAIR_JITTER_UNIFORM, { 0, 0 }, IMPAIR_DEFAULT_QUEUE, 0, 0, 0 },
	{ "3g", "UMTS/HSPA phone: 300 ms RTT, 1.6 Mbit/s down, 768 kbit/s up",
	  "WebPageTest '3G' profile (rates, RTT); jitter and residual loss: RLC "
	  "acknowledged mode repairs most radio loss with delay",
	  150, 20, IMPAIR_JITTER_NORMAL, { 768000, 1600000 }, 64 << 10, 0.002, 0, 0 },
	{ "lte", "LTE phone: 70 ms RTT, 12 Mbit/s each way",
	  "WebPageTest 'LTE' profile (rates, RTT); jitter and residual loss as for 3g, smaller",
	  35, 5, IMPAIR_JITTER_NORMAL, { 12000000, 12000000 }, 256 << 10, 0.001, 0, 0 },
	{ "dsl", "ADSL line: 50 ms RTT, 1.5 Mbit/s down, 384 kbit/s up",
	  "WebPageTest 'DSL' profile (rates, RTT); a wired line: no jitter, no loss",
	  25, 0, IMPAIR_JITTER_UNIFORM, { 384000, 1500000 }, 64 << 10, 0, 0, 0 },
	{ "satellite", "geostationary satellite: 560 ms RTT, 25 Mbit/s down, 3 Mbit/s up, "
	  "bursty loss",
	  "physics: ground-satellite-ground is >= 2 x 35786 km = 239 ms at the speed of "
	  "light, about 280 ms at low elevation with ground segment; rates of consumer GEO "
	  "plans; loss in short bursts (fades, FEC failures)",
	  280, 10, IMPAIR_JITTER_NORMAL, { 3000000, 25000000 }, 512 << 10, 0, 0.005, 3 },
	{ "lossy-wifi", "congested or weak-signal Wi-Fi: a few ms, bursty loss of 2%",
	  "802.11 retries hide isolated losses but not runs of them (interference, "
	  "rate adaptation): residual loss comes in bursts; jitter from contention",
	  2, 4, IMPAIR_JITTER_NORMAL, { 20000000, 20000000 }, 256 << 10, 0, 0.02, 4 },
};
#define NPRESETS (sizeof(presets) / sizeof(presets[0]))

static const struct preset *preset_find(const char *name)
{
	for (size_t i = 0; i < NPRESETS; i++)
		if (name != NULL && strcmp(presets[i].name, name) == 0)
			return &presets[i];
	return NULL;
}

static void preset_fill(const struct preset *p, struct impair_settings *s)
{
	char err[128];

	impair_settings_defaults(s);
	for (int d = 0; d < 2; d++) {
		struct impair_dir_settings *ds = &s->dir[d];

		ds->delay_ms = p->delay_ms;
		ds->jitter_ms = p->jitter_ms;
		ds->jitter_dist = p->dist;
		ds->rate_bps = p->rate_bps[d];
		ds->queue_bytes = p->queue_bytes;
		ds->loss = p->loss;
		if (p->burst_loss > 0.0)
			(void)impair_ge_from_burst(p->burst_loss, p->burst_len, &ds->ge, err,
			                           sizeof(err));
	}
}

int impair_preset_apply(const char *name, struct impair_settings *s)
{
	const struct preset *p = preset_find(name);

	if (p == NULL)
		return -1;
	preset_fill(p, s);
	return 0;
}

json_t *impair_presets_to_json(void)
{
	json_t *a = json_array();

	if (a == NULL)
		return NULL;
	for (size_t i = 0; i < NPRESETS; i++) {
		struct impair_settings s;
		json_t *o;

		preset_fill(&presets[i], &s);
		o = json_pack("{s:s, s:s, s:s, s:o}", "name", presets[i].name,
		              "description", presets[i].description, "source", presets[i].source,
		              "settings", impair_settings_to_json(&s));
		if (o == NULL || json_array_append_new(a, o) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

const char *impair_preset_names(void)
{
	return "none, 3g, lte, dsl, satellite, lossy-wifi";
}
