/*
 * Typed big-endian getters and putters.  Wire bytes are never cast to
 * structs; every field is read through one of these.
 */
#ifndef SCTPT_UTIL_BYTES_H
#define SCTPT_UTIL_BYTES_H

#include <stdint.h>

static inline uint16_t get_u16be(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t get_u32be(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void put_u16be(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put_u32be(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#define FREE_AND_NULL(fn, p) do { fn(p); (p) = NULL; } while (0)

#endif
