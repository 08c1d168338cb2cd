/*
 * Monotonic time.  Timeouts, rate limits, grace periods and RTT samples are
 * measured on CLOCK_MONOTONIC, never on the wall clock, so a clock step
 * (NTP, a suspended laptop, an operator's `date -s`) cannot fire or stall
 * them.  Pure cores take time as an argument instead of calling these.
 */
#ifndef SCTPT_UTIL_CLOCK_H
#define SCTPT_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline struct timespec clock_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

/* Milliseconds from a to b (negative if b is earlier). */
static inline double clock_diff_ms(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1000.0 +
	       (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* Milliseconds elapsed since t. */
static inline double clock_ms_since(const struct timespec *t)
{
	struct timespec now = clock_now();

	return clock_diff_ms(t, &now);
}

/* Monotonic time in whole milliseconds (for pure cores that take a uint64_t clock). */
static inline uint64_t clock_now_ms(void)
{
	struct timespec now = clock_now();

	return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* Monotonic time in microseconds. */
static inline uint64_t clock_now_us(void)
{
	struct timespec now = clock_now();

	return (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
}

#endif
