/*
 * libFuzzer harness for the TCP carrier's framing (src/carrier/tcpframe.c).
 *
 * Input: byte 0 is the size of the pieces the stream arrives in (0 = all
 * at once), byte 1 the frame limit in units of 256 bytes (0 = none), the
 * rest a client's stream as the server reads it (nonce, then frames).  It
 * is decoded twice, at once and in pieces, as tcp.c does (unconsumed bytes
 * kept and offered again), and both runs must find the same frames and end
 * alike.  Every frame found is re-encoded by a client keyed with the same
 * nonce, which must give back the exact bytes of the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "carrier/tcpframe.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The frame key of the unit test's vectors (00..1f), so the seeds parse. */
static const uint8_t key[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};

struct run {
	size_t ends[512];       /* stream offset after each frame */
	size_t nframes;
	int error;
	size_t consumed;
};

static void decode(const uint8_t *s, size_t n, size_t piece, size_t max, struct run *r)
{
	struct tcpframe f = { 0 };
	size_t start = 0, got = 0;   /* s[start..got) is held, unconsumed */

	memset(r, 0, sizeof(*r));
	while (got < n && !r->error) {
		size_t step = piece == 0 ? n - got : piece;

		got += step < n - got ? step : n - got;
		for (;;) {
			enum tcpframe_rc rc;
			size_t off = 0, len = 0;

			if (!f.keyed) {
				rc = tcpframe_accept_nonce(&f, key, s + start, got - start, max);
				if (rc == TCPFRAME_MORE)
					break;
				CHECK(rc == TCPFRAME_FRAME);
				start += TCPFRAME_NONCE_LEN;
				continue;
			}
			rc = tcpframe_decode(&f, s + start, got - start, &off, &len);
			if (rc == TCPFRAME_MORE)
				break;
			if (rc == TCPFRAME_ERROR) {
				r->error = 1;
				break;
			}
			CHECK(rc == TCPFRAME_FRAME);
			CHECK(off == TCPFRAME_HDR_LEN && len >= 1 && len <= f.max);
			CHECK(start + off + len <= got);
			start += off + len;
			if (r->nframes < 512)
				r->ends[r->nframes] = start;
			r->nframes++;
		}
	}
	r->consumed = start;
	tcpframe_clear(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run whole, pieces;
	struct tcpframe cl;
	size_t max, prev;

	if (size < 2)
		return 0;
	max = (size_t)data[1] * 256;
	decode(data + 2, size - 2, 0, max, &whole);
	decode(data + 2, size - 2, data[0], max, &pieces);
	CHECK(whole.nframes == pieces.nframes && whole.error == pieces.error &&
	      whole.consumed == pieces.consumed);
	CHECK(memcmp(whole.ends, pieces.ends,
	             (whole.nframes < 512 ? whole.nframes : 512) * sizeof(size_t)) == 0);
	if (size - 2 < TCPFRAME_NONCE_LEN)
		return 0;
	/* The client side of the same nonce writes exactly these frames. */
	CHECK(tcpframe_init(&cl, key, data + 2, 0, 0) == 0);
	prev = TCPFRAME_NONCE_LEN;
	for (size_t i = 0; i < whole.nframes && i < 512; i++) {
		const uint8_t *fr = data + 2 + prev;
		size_t len = whole.ends[i] - prev - TCPFRAME_HDR_LEN;
		uint8_t hdr[TCPFRAME_HDR_LEN];

		CHECK(tcpframe_tx_header(&cl, len, hdr) == 0);
		CHECK(memcmp(hdr, fr, sizeof(hdr)) == 0);
		tcpframe_tx_commit(&cl);
		prev = whole.ends[i];
	}
	tcpframe_clear(&cl);
	return 0;
}
