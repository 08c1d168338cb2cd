/* Padding lengths; see pad.h. */
#include "wire/pad.h"

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
