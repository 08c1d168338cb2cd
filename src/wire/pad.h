/*
 * How much padding a datagram gets.  Pure: the random draw comes in as a
 * function (wc_random_range in the product, a fixed one in tests), so the
 * choice is exact under test and the fuzzer can check its bounds.
 */
#ifndef SCTPT_WIRE_PAD_H
#define SCTPT_WIRE_PAD_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_FILL_THRESHOLD 192     /* pad packets this close to the MTU to it
                                     * (usrsctp's bulk packets end ~140 short) */
#define WIRE_PAD_BUCKET 32          /* small packets are a multiple of this */

/* A uniform draw from [lo, hi] (lo if hi <= lo). */
typedef uint32_t (*wire_rand_fn)(uint32_t lo, uint32_t hi);

/*
 * Padding for a data packet whose sealed length without padding is
 * sealed (at most max_datagram): near-full packets are filled to exactly
 * max_datagram, smaller ones get rnd(pad_min, pad_max) bytes and are then
 * rounded up to a multiple of WIRE_PAD_BUCKET.  Never more than fits.
 */
size_t wire_pad_data(size_t sealed, size_t max_datagram, unsigned pad_min, unsigned pad_max,
                     wire_rand_fn rnd);

/*
 * A bridge's size distribution for small packets (docs/PROTOCOL.md, "What
 * an observer sees"): WIRE_DIST_N target datagram lengths with weights,
 * derived from bytes that both ends compute from the bridge's public key,
 * so one bridge is stable and no length is common to all bridges.
 */
#define WIRE_DIST_N 8
#define WIRE_DIST_SEED_LEN 32
#define WIRE_DIST_LO 64             /* targets lie in [LO, min(HI, room)] */
#define WIRE_DIST_HI 640

struct wire_pad_dist {
	uint16_t len[WIRE_DIST_N];      /* target lengths, ascending, distinct */
	uint16_t weight[WIRE_DIST_N];   /* 1..256 each */
	unsigned n;                     /* 0: no distribution, buckets only */
};

/*
 * Derive the distribution for datagrams of at most max_datagram bytes
 * from WIRE_DIST_SEED_LEN seed bytes.  Deterministic; n is 0 if
 * max_datagram leaves no room for targets below the fill threshold.
 */
void wire_pad_dist_derive(const uint8_t seed[WIRE_DIST_SEED_LEN], size_t max_datagram,
                          struct wire_pad_dist *d);

/*
 * Like wire_pad_data, but a small packet is padded to a target length drawn
 * from d (weighted, among the targets it fits in; the rnd(pad_min, pad_max)
 * bytes are added first).  Near-full packets are filled to max_datagram as
 * before; a packet larger than every target, or d NULL or empty, falls back
 * to wire_pad_data's buckets.
 */
size_t wire_pad_shaped(const struct wire_pad_dist *d, size_t sealed, size_t max_datagram,
                       unsigned pad_min, unsigned pad_max, wire_rand_fn rnd);

/*
 * A run of small packets sharing one target length: SACKs of a bulk
 * transfer leave in bursts, and GSO (send) and GRO (receive) batch only
 * equal-sized datagrams, so a fresh draw per packet costs a syscall and a
 * receive pass per SACK.  After each draw the same target is kept for the
 * next WIRE_RUN_MIN..WIRE_RUN_MAX - 1 small packets that fit it, as long as
 * they follow each other within WIRE_RUN_GAP_MS (a burst); spaced packets
 * such as idle heartbeats draw every time.
 */
#define WIRE_RUN_MIN 4
#define WIRE_RUN_MAX 32
#define WIRE_RUN_GAP_MS 5
#define WIRE_RUN_FRESH 16           /* a link's first packets: a draw each
                                     * (the SCTP handshake, first SACKs) */

struct wire_pad_run {
	uint16_t len;                   /* the kept target */
	uint16_t left;                  /* packets it is still used for */
	uint16_t fresh;                 /* small packets drawn so far, up to
	                                 * WIRE_RUN_FRESH */
	uint64_t last_ms;               /* when the last small packet went */
};

/*
 * wire_pad_shaped with runs (run is per link and direction).  Without
 * --pad only: configured random padding draws every packet afresh.
 */
size_t wire_pad_shaped_run(const struct wire_pad_dist *d, struct wire_pad_run *run,
                           uint64_t now_ms, size_t sealed, size_t max_datagram,
                           unsigned pad_min, unsigned pad_max, wire_rand_fn rnd);

/*
 * Padding for a handshake message of min_len bytes before padding:
 * rnd(pad_min, pad_max), capped so the message stays within hs_max and
 * max_datagram.
 */
size_t wire_pad_handshake(size_t min_len, size_t hs_max, size_t max_datagram,
                          unsigned pad_min, unsigned pad_max, wire_rand_fn rnd);

#endif
