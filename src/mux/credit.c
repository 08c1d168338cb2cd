/*
 * Credit accounting; see credit.h.
 */
#include "mux/credit.h"

void credit_init(struct mux_credit *c, uint32_t initial, uint32_t extra)
{
	c->tx = initial;
	c->rx_allowed = initial;   /* the extra counts once its CREDIT is sent */
	c->rx_consumed = 0;
	c->pending = extra;
	c->window = initial + extra;
	c->epoch_bytes = 0;
	c->epoch_ms = 0;
}

int credit_receive(struct mux_credit *c, size_t n)
{
	if (n > c->rx_allowed)
		return -1;
	c->rx_allowed -= (uint32_t)n;
	return 0;
}

void credit_consumed(struct mux_credit *c, size_t n)
{
	c->rx_consumed += (uint32_t)n;
}

int credit_grant(struct mux_credit *c, int force)
{
	if (c->rx_consumed == 0)
		return 0;
	if (!force && c->rx_consumed < c->window / 4)
		return 0;
	c->pending += c->rx_consumed;
	c->rx_consumed = 0;
	return 1;
}

uint32_t credit_autotune(struct mux_credit *c, size_t n, uint64_t now_ms,
                         uint32_t rtt_ms, uint32_t max)
{
	uint64_t took;

	if (c->epoch_ms == 0) {
		/* The first bytes start the clock; they took no time. */
		c->epoch_ms = now_ms ? now_ms : 1;
		c->epoch_bytes = 0;
		return 0;
	}
	c->epoch_bytes = n > c->window - c->epoch_bytes ? c->window
	                                                : c->epoch_bytes + (uint32_t)n;
	if (c->epoch_bytes < c->window)
		return 0;
	took = now_ms > c->epoch_ms ? now_ms - c->epoch_ms : 0;
	c->epoch_ms = now_ms ? now_ms : 1;
	c->epoch_bytes = 0;
	/* The ms clock: a path under 1 ms counts as 1 ms. */
	if (rtt_ms == 0)
		rtt_ms = 1;
	if (c->window >= max || took >= 4 * (uint64_t)rtt_ms)
		return 0;
	return max - c->window < c->window ? max - c->window : c->window;
}

void credit_grow(struct mux_credit *c, uint32_t n)
{
	c->window += n;
	c->pending += n;
}

/*
 * Only now may the peer spend it: until the CREDIT message is on its way
 * the peer cannot know of it, so DATA beyond what was sent is a violation
 * (docs/streams.md), however much we meant to grant.
 */
void credit_grant_sent(struct mux_credit *c)
{
	c->rx_allowed += c->pending;
	c->pending = 0;
}

int credit_add(struct mux_credit *c, uint32_t inc)
{
	if (inc == 0 || (uint64_t)c->tx + inc > CREDIT_MAX)
		return -1;
	c->tx += inc;
	return 0;
}

size_t credit_sendable(const struct mux_credit *c, size_t avail, size_t max_msg)
{
	size_t n = avail;

	if (n > c->tx)
		n = c->tx;
	if (n > max_msg)
		n = max_msg;
	return n;
}

void credit_sent(struct mux_credit *c, size_t n)
{
	c->tx -= (uint32_t)n;
}
