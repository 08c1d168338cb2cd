/*
 * libFuzzer harness for the metrics endpoint's request parser
 * (src/metrics/http.c).
 *
 * The input is what a scraper (or anyone who reaches the port) sends.  It
 * is parsed whole and then as the server sees it, growing in pieces whose
 * sizes come from the input: a prefix may only ever need more bytes or
 * give the same answer as the whole (no answer changes once given), a
 * complete request's length lies within the input and ends in an empty
 * line, and the result is one of the documented statuses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int known(int r)
{
	return r >= 0 || r == -400 || r == -404 || r == -405 || r == -413 || r == -414 ||
	       r == -505;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct metrics_req whole, part;
	size_t have = 0, i = 0;
	int rw, rp = 0;

	if (size > METRICS_REQ_MAX + 64)
		size = METRICS_REQ_MAX + 64;
	rw = metrics_http_parse(p, size, &whole);
	CHECK(known(rw));
	if (rw > 0) {
		CHECK((size_t)rw <= size);
		CHECK(data[rw - 1] == '\n');
		CHECK(whole.route == ROUTE_METRICS || whole.route == ROUTE_STATS);
		CHECK(whole.streams == 0 || whole.streams == 1);
	}
	/* The server reads at most METRICS_REQ_MAX bytes: the same answer
	 * from the pieces once it is given. */
	while (have < size) {
		size_t step = 1 + (size ? data[i++ % size] & 0x1f : 0);

		have = have + step > size ? size : have + step;
		rp = metrics_http_parse(p, have, &part);
		CHECK(known(rp));
		if (rp != 0)
			break;
	}
	if (rp > 0) {
		CHECK(rp == rw);
		CHECK(part.route == whole.route && part.head == whole.head &&
		      part.streams == whole.streams);
	} else if (rp < 0) {
		/* An error seen early is the error of the whole. */
		CHECK(rw == rp);
	}
	return 0;
}
