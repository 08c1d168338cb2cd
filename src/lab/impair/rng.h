/*
 * A small deterministic random number generator (xoshiro256**, seeded
 * through splitmix64) for `sctpt-lab impair`: the same --seed and the same
 * packets in the same order give the same losses, delays and duplicates.
 * Not for anything secret.  Pure: no I/O, no global state.
 */
#ifndef SCTPT_IMPAIR_RNG_H
#define SCTPT_IMPAIR_RNG_H

#include <stdint.h>

struct impair_rng {
	uint64_t s[4];
};

/* A 64-bit mixing function (splitmix64's finalizer): a hash of x. */
uint64_t impair_mix64(uint64_t x);
/* FNV-1a of a string, for names. */
uint64_t impair_hash_str(const char *s);

/* Seed the generator; any seed (including 0) gives a usable state. */
void impair_rng_seed(struct impair_rng *r, uint64_t seed);
/* The next 64 random bits. */
uint64_t impair_rng_next(struct impair_rng *r);
/* Uniform in [0, 1), 53 bits of precision. */
double impair_rng_uniform(struct impair_rng *r);
/*
 * Approximately standard normal (mean 0, deviation 1): the sum of twelve
 * uniforms minus six (Irwin-Hall), so it never leaves [-6, 6].
 */
double impair_rng_normal(struct impair_rng *r);

#endif
