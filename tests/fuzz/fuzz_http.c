/*
 * libFuzzer harness for the HTTP proxy request parser (src/front/http.c).
 *
 * The input is what a client sends.  The end of the head is searched for
 * as the front does, with the bytes arriving in pieces whose sizes come
 * from the input itself, and must be found at the same place as in one
 * piece.  A parsed request must be well formed: a valid destination and,
 * for absolute-form, a rewritten head that is itself one complete head
 * in CRLF lines with no NUL, ending in "Connection: close".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "front/http.h"

/* Fails in release builds too, unlike assert(). */
#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct http_request req;

static long head_end_in_pieces(const uint8_t *data, size_t size)
{
	size_t scan = 0, have = 0, i = 0;
	long end = 0;

	while (end == 0 && have < size) {
		size_t step = 1 + (data[i++ % size] & 0x3f);

		have = have + step > size ? size : have + step;
		end = http_head_end(data, have, &scan);
		CHECK(scan <= have);
	}
	return end;
}

static void check_request(void)
{
	const struct socks_dest *d = &req.dest;
	size_t i, scan = 0;

	CHECK(d->port != 0);
	CHECK(d->atyp == SOCKS_ATYP_IPV4 || d->atyp == SOCKS_ATYP_IPV6 ||
	      d->atyp == SOCKS_ATYP_DOMAIN);
	if (d->atyp == SOCKS_ATYP_DOMAIN) {
		size_t n = strnlen(d->domain, sizeof(d->domain));

		CHECK(n > 0 && n < sizeof(d->domain));
	}
	CHECK(req.method[0] != '\0');
	if (req.connect) {
		CHECK(req.out_len == 0);
		return;
	}
	CHECK(req.out_len > 0 && req.out_len <= HTTP_OUT_MAX);
	for (i = 0; i < req.out_len; i++) {
		CHECK(req.out[i] != '\0');
		if (req.out[i] == '\n')
			CHECK(i > 0 && req.out[i - 1] == '\r');
		if (req.out[i] == '\r')
			CHECK(i + 1 < req.out_len && req.out[i + 1] == '\n');
	}
	CHECK(req.out_len > 23 && memcmp(req.out + req.out_len - 23,
	                                 "\r\nConnection: close\r\n\r\n", 23) == 0);
	/* One head, ending exactly where the output ends (unless it is long). */
	if (req.out_len <= HTTP_HEAD_MAX)
		CHECK(http_head_end(req.out, req.out_len, &scan) == (long)req.out_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t scan = 0;
	long end = http_head_end(data, size, &scan);
	int st;

	CHECK(end >= -1 && end <= (long)size && end <= HTTP_HEAD_MAX);
	if (size > 0)
		CHECK(head_end_in_pieces(data, size) == end);
	if (end <= 0)
		return 0;
	st = http_parse(data, (size_t)end, &req);
	CHECK(st == 0 || st == 400 || st == 501 || st == 505);
	if (st == 0) {
		CHECK(req.head_len == (size_t)end);
		check_request();
	} else {
		CHECK(req.error != NULL);
	}
	return 0;
}
