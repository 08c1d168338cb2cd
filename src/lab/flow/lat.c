/*
 * Latency histogram of the rpc mode: log-spaced buckets (2% apart), so
 * memory and cost per sample are fixed however long a run is, and the
 * quantiles are within 2% of the truth.  Pure (flow_internal.h).
 */
#include "lab/flow/flow_internal.h"

#include <math.h>
#include <string.h>

#define LAT_GROWTH 1.02

void lat_reset(struct lat_hist *h)
{
	memset(h, 0, sizeof(*h));
}

static unsigned bucket_of(uint64_t us)
{
	double b;

	if (us <= 1)
		return 0;
	b = ceil(log((double)us) / log(LAT_GROWTH));
	return b >= LAT_BUCKETS - 1 ? LAT_BUCKETS - 1 : (unsigned)b;
}

static uint64_t bucket_top(unsigned b)
{
	return (uint64_t)floor(pow(LAT_GROWTH, b) + 1e-9);
}

void lat_add(struct lat_hist *h, uint64_t us)
{
	unsigned b = bucket_of(us);

	if (h->b[b] == UINT32_MAX)
		return;      /* 4 billion samples in one bucket: stop counting there */
	h->b[b]++;
	if (h->n == 0 || us < h->min_us)
		h->min_us = us;
	if (us > h->max_us)
		h->max_us = us;
	h->n++;
	h->sum_us += us;
}

uint64_t lat_quantile(const struct lat_hist *h, double q)
{
	uint64_t want, seen = 0;

	if (h->n == 0)
		return 0;
	if (!(q > 0))
		return h->min_us;
	if (q >= 1)
		return h->max_us;
	want = (uint64_t)ceil(q * (double)h->n);
	if (want == 0)
		want = 1;
	for (unsigned b = 0; b < LAT_BUCKETS; b++) {
		seen += h->b[b];
		if (seen >= want) {
			uint64_t top = bucket_top(b);

			if (top > h->max_us)
				top = h->max_us;
			if (top < h->min_us)
				top = h->min_us;
			return top;
		}
	}
	return h->max_us;
}

static double ms(uint64_t us)
{
	return (double)us / 1000.0;
}

json_t *lat_to_json(const struct lat_hist *h)
{
	static const double qs[] = { 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9,
	                             0.95, 0.98, 0.99, 0.995, 0.999, 1.0 };
	json_t *cdf = json_array();

	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]) && h->n > 0; i++)
		json_array_append_new(cdf, json_pack("[f,f]", ms(lat_quantile(h, qs[i])), qs[i]));
	return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:o}",
	        "count", (json_int_t)h->n,
	        "mean_ms", h->n ? ms(h->sum_us) / (double)h->n : 0.0,
	        "min_ms", ms(h->n ? h->min_us : 0),
	        "p50_ms", ms(lat_quantile(h, 0.5)),
	        "p90_ms", ms(lat_quantile(h, 0.9)),
	        "p99_ms", ms(lat_quantile(h, 0.99)),
	        "p999_ms", ms(lat_quantile(h, 0.999)),
	        "max_ms", ms(h->max_us),
	        "cdf", cdf);
}
