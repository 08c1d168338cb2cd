/* Padding lengths; see pad.h. */
#include "wire/pad.h"

#include <string.h>

size_t wire_pad_data(size_t sealed, size_t max_datagram, unsigned pad_min, unsigned pad_max,
                     wire_rand_fn rnd)
{
	size_t room, padlen, total;

	if (sealed >= max_datagram)
		return 0;
	room = max_datagram - sealed;
	/*
	 * Near-full packets are filled to exactly the MTU: bulk traffic is
	 * then uniform full-size datagrams (nothing to learn from their
	 * lengths, and the carrier can batch them with GSO).
	 */
	if (room <= WIRE_FILL_THRESHOLD)
		return room;
	/*
	 * Smaller ones get optional random padding, then are rounded up to a
	 * bucket: exact lengths stay hidden while runs of small packets
	 * (SACKs) keep equal sizes, which GRO needs to batch them.
	 */
	padlen = rnd(pad_min, pad_max);
	total = sealed + padlen;
	padlen += (WIRE_PAD_BUCKET - total % WIRE_PAD_BUCKET) % WIRE_PAD_BUCKET;
	return padlen < room ? padlen : room;
}

size_t wire_pad_handshake(size_t min_len, size_t hs_max, size_t max_datagram,
                          unsigned pad_min, unsigned pad_max, wire_rand_fn rnd)
{
	size_t padlen = rnd(pad_min, pad_max);

	if (min_len >= hs_max || min_len >= max_datagram)
		return 0;
	if (padlen > hs_max - min_len)
		padlen = hs_max - min_len;
	if (padlen > max_datagram - min_len)
		padlen = max_datagram - min_len;
	return padlen;
}

/*
 * Targets are spread over [WIRE_DIST_LO, hi] in WIRE_DIST_N equal bands,
 * one per band at a seed-chosen offset, so they are distinct and both
 * small and larger ones exist; the weights are seed bytes + 1.  Keeping
 * the upper bound well below the MTU bounds what padded SACKs cost the
 * reverse direction (docs/PROTOCOL.md has the numbers).
 */
void wire_pad_dist_derive(const uint8_t seed[WIRE_DIST_SEED_LEN], size_t max_datagram,
                          struct wire_pad_dist *d)
{
	size_t hi, band;

	memset(d, 0, sizeof(*d));
	if (max_datagram <= WIRE_FILL_THRESHOLD + 1)
		return;
	hi = max_datagram - WIRE_FILL_THRESHOLD - 1;
	if (hi > WIRE_DIST_HI)
		hi = WIRE_DIST_HI;
	if (hi < WIRE_DIST_LO + WIRE_DIST_N)
		return;
	band = (hi - WIRE_DIST_LO + 1) / WIRE_DIST_N;
	for (unsigned i = 0; i < WIRE_DIST_N; i++) {
		uint16_t r = (uint16_t)(seed[2 * i] << 8 | seed[2 * i + 1]);

		d->len[i] = (uint16_t)(WIRE_DIST_LO + i * band + r % band);
		d->weight[i] = (uint16_t)(seed[2 * WIRE_DIST_N + i] + 1);
	}
	d->n = WIRE_DIST_N;
}

size_t wire_pad_shaped(const struct wire_pad_dist *d, size_t sealed, size_t max_datagram,
                       unsigned pad_min, unsigned pad_max, wire_rand_fn rnd)
{
	size_t want, padlen;
	uint32_t total = 0, pick;
	unsigned first;

	if (d == NULL || d->n == 0 || sealed >= max_datagram ||
	    max_datagram - sealed <= WIRE_FILL_THRESHOLD)
		return wire_pad_data(sealed, max_datagram, pad_min, pad_max, rnd);
	padlen = rnd(pad_min, pad_max);
	want = sealed + padlen;
	for (first = 0; first < d->n && d->len[first] < want; first++)
		;
	if (first == d->n)
		return wire_pad_data(sealed, max_datagram, pad_min, pad_max, rnd);
	for (unsigned i = first; i < d->n; i++)
		total += d->weight[i];
	pick = rnd(0, total - 1);
	for (unsigned i = first; i < d->n; i++) {
		if (pick < d->weight[i])
			return d->len[i] <= max_datagram ? d->len[i] - sealed : max_datagram - sealed;
		pick -= d->weight[i];
	}
	return wire_pad_data(sealed, max_datagram, pad_min, pad_max, rnd);   /* rnd out of range */
}

size_t wire_pad_shaped_run(const struct wire_pad_dist *d, struct wire_pad_run *run,
                           uint64_t now_ms, size_t sealed, size_t max_datagram,
                           unsigned pad_min, unsigned pad_max, wire_rand_fn rnd)
{
	size_t pad, total;
	uint64_t gap;
	unsigned i;

	if (d == NULL || d->n == 0 || pad_max > 0 || sealed >= max_datagram ||
	    max_datagram - sealed <= WIRE_FILL_THRESHOLD)
		return wire_pad_shaped(d, sealed, max_datagram, pad_min, pad_max, rnd);
	gap = now_ms - run->last_ms;
	run->last_ms = now_ms;
	if (gap > WIRE_RUN_GAP_MS)
		run->left = 0;          /* not a burst: draw */
	if (run->fresh < WIRE_RUN_FRESH) {
		run->fresh++;
		return wire_pad_shaped(d, sealed, max_datagram, pad_min, pad_max, rnd);
	}
	if (run->left > 0 && run->len >= sealed && run->len <= max_datagram) {
		run->left--;
		return run->len - sealed;
	}
	pad = wire_pad_shaped(d, sealed, max_datagram, pad_min, pad_max, rnd);
	total = sealed + pad;
	for (i = 0; i < d->n && d->len[i] != total; i++)
		;
	if (i < d->n) {
		run->len = (uint16_t)total;
		run->left = (uint16_t)(rnd(WIRE_RUN_MIN, WIRE_RUN_MAX) - 1);
	}
	return pad;
}
