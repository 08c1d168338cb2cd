/*
 * The State Cookie (RFC 9260 §5.1.3): everything a listening endpoint
 * needs to create the association from a COOKIE-ECHO, so it keeps no
 * state between INIT and COOKIE-ECHO.  The cookie is ours alone; the peer
 * only echoes it.  It is authenticated with HMAC-SHA256 under the
 * caller's secret and checked in constant time before any field is used.
 *
 * Layout (big-endian):
 *   0  version (1), reserved (3)
 *   4  created, ms (8)
 *  12  lifetime, ms (4)
 *  16  local tag, peer tag, local initial TSN, peer initial TSN, peer
 *      a_rwnd (4 each)
 *  36  outbound streams, inbound streams (2 each)
 *  40  I-DATA (1), reserved (3)
 *  44  local tie-tag, peer tie-tag (4 each)
 *  52  local port, peer port (2 each)
 *  56  HMAC-SHA256 of bytes 0..55 (32)
 */
#include "sctp/assoc_internal.h"

#include <string.h>

#include "crypto/crypto.h"
#include "util/bytes.h"

#define COOKIE_VERSION 1
#define COOKIE_BODY 56

static void put_u64be(uint8_t *p, uint64_t v)
{
	put_u32be(p, (uint32_t)(v >> 32));
	put_u32be(p + 4, (uint32_t)v);
}

static uint64_t get_u64be(const uint8_t *p)
{
	return ((uint64_t)get_u32be(p) << 32) | get_u32be(p + 4);
}

/* Constant time: the time taken says nothing about where a MAC differs. */
static int ct_equal(const uint8_t *x, const uint8_t *y, size_t n)
{
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

void core_cookie_make(const struct sctp_core *a, const struct core_cookie *c,
                      uint8_t out[SCTP_COOKIE_LEN])
{
	memset(out, 0, SCTP_COOKIE_LEN);
	out[0] = COOKIE_VERSION;
	put_u64be(out + 4, c->created_ms);
	put_u32be(out + 12, c->life_ms);
	put_u32be(out + 16, c->p.local_vtag);
	put_u32be(out + 20, c->p.peer_vtag);
	put_u32be(out + 24, c->p.local_tsn);
	put_u32be(out + 28, c->p.peer_tsn);
	put_u32be(out + 32, c->p.peer_rwnd);
	put_u16be(out + 36, c->p.out_streams);
	put_u16be(out + 38, c->p.in_streams);
	out[40] = c->p.idata ? 1 : 0;
	put_u32be(out + 44, c->local_tie_tag);
	put_u32be(out + 48, c->peer_tie_tag);
	put_u16be(out + 52, a->cfg.local_port);
	put_u16be(out + 54, a->cfg.remote_port);
	/* A failed HMAC leaves zeros, which no cookie will verify against. */
	if (wc_hmac_sha256(a->secret, a->secret_len, out, COOKIE_BODY,
	                   out + COOKIE_BODY) != 0)
		memset(out + COOKIE_BODY, 0, SCTP_COOKIE_LEN - COOKIE_BODY);
}

int core_cookie_open(const struct sctp_core *a, const uint8_t *p, size_t n,
                     struct core_cookie *c, uint32_t *stale_us)
{
	uint8_t mac[WC_HASH_LEN];
	uint64_t age;

	*stale_us = 0;
	if (n != SCTP_COOKIE_LEN)
		return -1;
	if (wc_hmac_sha256(a->secret, a->secret_len, p, COOKIE_BODY, mac) != 0)
		return -1;
	if (!ct_equal(mac, p + COOKIE_BODY, sizeof(mac)))
		return -1;
	/* Authentic from here on: the fields are ours. */
	if (p[0] != COOKIE_VERSION || get_u16be(p + 52) != a->cfg.local_port ||
	    get_u16be(p + 54) != a->cfg.remote_port)
		return -1;
	memset(c, 0, sizeof(*c));
	c->created_ms = get_u64be(p + 4);
	c->life_ms = get_u32be(p + 12);
	c->p.local_vtag = get_u32be(p + 16);
	c->p.peer_vtag = get_u32be(p + 20);
	c->p.local_tsn = get_u32be(p + 24);
	c->p.peer_tsn = get_u32be(p + 28);
	c->p.peer_rwnd = get_u32be(p + 32);
	c->p.out_streams = get_u16be(p + 36);
	c->p.in_streams = get_u16be(p + 38);
	c->p.idata = p[40] != 0;
	c->local_tie_tag = get_u32be(p + 44);
	c->peer_tie_tag = get_u32be(p + 48);
	/* A cookie from the future came from another clock: not ours now. */
	if (c->created_ms > a->now)
		return -1;
	age = a->now - c->created_ms;
	if (age > c->life_ms) {
		uint64_t us = (age - c->life_ms) * 1000;

		*stale_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
		return 1;
	}
	return 0;
}
