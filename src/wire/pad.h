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
 * Padding for a handshake message of min_len bytes before padding:
 * rnd(pad_min, pad_max), capped so the message stays within hs_max and
 * max_datagram.
 */
size_t wire_pad_handshake(size_t min_len, size_t hs_max, size_t max_datagram,
                          unsigned pad_min, unsigned pad_max, wire_rand_fn rnd);

#endif
