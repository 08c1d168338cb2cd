/*
 * xoshiro256** by Blackman and Vigna (public domain reference algorithm),
 * seeded with splitmix64 so that nearby seeds give unrelated streams.
 */
#include "lab/impair/rng.h"

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t impair_mix64(uint64_t x)
{
	return splitmix64(&x);
}

uint64_t impair_hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*s != '\0') {
		h ^= (unsigned char)*s++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void impair_rng_seed(struct impair_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

uint64_t impair_rng_next(struct impair_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double impair_rng_uniform(struct impair_rng *r)
{
	return (double)(impair_rng_next(r) >> 11) * 0x1.0p-53;
}

double impair_rng_normal(struct impair_rng *r)
{
	double sum = 0.0;

	for (int i = 0; i < 12; i++)
		sum += impair_rng_uniform(r);
	return sum - 6.0;
}
