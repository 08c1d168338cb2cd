/*
 * The engine: both directions' shapers and one delay line, driven by a
 * single libevent timer armed for the packet due first.  A relay hands
 * every packet to impair_engine_submit() and gets the copies back, on
 * time, through its emit callback.  A copy due now is sent at once without
 * being copied.
 */
#include "lab/impair/impair_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/event.h>

#include "util/clock.h"
#include "util/log.h"

/* A timer that fires this close before a packet is due sends it. */
#define ENGINE_SLACK_US 100

struct impair_engine {
	struct event_base *base;
	struct event *timer;
	uint64_t armed_for;        /* due time the timer is set for, 0: not armed */
	struct impair_settings set;
	struct impair_shaper sh[2];
	struct impair_pktq q;
	struct impair_rules rules;
	uint64_t seed;
	uint8_t scratch[65536];    /* a corrupted copy sent at once */
	impair_emit_fn emit;
	void *emit_ctx;
	void (*changed)(void *arg);
	void *changed_arg;
};

static struct log_ratelimit oom_rl = LOG_RATELIMIT_INIT(10.0, 3);

uint64_t impair_now_us(void)
{
	return clock_now_us();
}

static void send_copy(struct impair_engine *e, int dir, uint32_t sink, uint32_t gen,
                      const uint8_t *p, size_t n)
{
	struct impair_counters *c = &e->sh[dir].c;

	if (e->emit != NULL && e->emit(e->emit_ctx, dir, sink, gen, p, n) == 0) {
		c->forwarded++;
		c->bytes_forwarded += n;
	} else {
		c->dropped++;
		c->dropped_other++;
	}
}

static void arm(struct impair_engine *e)
{
	struct impair_pkt *head = impair_pktq_peek(&e->q);
	uint64_t now, wait;
	struct timeval tv;

	if (head == NULL) {
		if (e->armed_for) {
			event_del(e->timer);
			e->armed_for = 0;
		}
		return;
	}
	if (e->armed_for == head->due_us)
		return;
	now = impair_now_us();
	wait = head->due_us > now ? head->due_us - now : 0;
	tv.tv_sec = (time_t)(wait / 1000000u);
	tv.tv_usec = (suseconds_t)(wait % 1000000u);
	event_add(e->timer, &tv);
	e->armed_for = head->due_us;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct impair_engine *e = arg;
	uint64_t now = impair_now_us();
	struct impair_pkt *p;
	unsigned budget = 4096;    /* then yield to I/O; the timer comes back at once */

	e->armed_for = 0;
	while (budget-- > 0 && (p = impair_pktq_peek(&e->q)) != NULL &&
	       p->due_us <= now + ENGINE_SLACK_US) {
		impair_pktq_pop(&e->q);
		e->sh[p->dir].c.pending--;
		send_copy(e, p->dir, p->sink, p->gen, p->data, p->len);
		free(p);
	}
	arm(e);
}

struct impair_engine *impair_engine_new(struct event_base *base, const struct impair_settings *s,
                                        uint64_t seed, size_t max_pkts, size_t max_bytes)
{
	struct impair_engine *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NULL;
	e->base = base;
	e->set = *s;
	e->seed = seed;
	/* Independent streams per direction: c2s traffic does not shift s2c's draws. */
	impair_shaper_init(&e->sh[IMPAIR_C2S], seed * 2 + 1);
	impair_shaper_init(&e->sh[IMPAIR_S2C], seed * 2 + 2);
	impair_pktq_init(&e->q, max_pkts, max_bytes);
	impair_rules_init(&e->rules);
	e->timer = evtimer_new(base, timer_cb, e);
	if (e->timer == NULL) {
		free(e);
		return NULL;
	}
	return e;
}

void impair_engine_free(struct impair_engine *e)
{
	if (e == NULL)
		return;
	event_free(e->timer);
	impair_pktq_clear(&e->q);
	free(e);
}

void impair_engine_set_emit(struct impair_engine *e, impair_emit_fn fn, void *ctx)
{
	e->emit = fn;
	e->emit_ctx = ctx;
}

void impair_engine_on_change(struct impair_engine *e, void (*fn)(void *arg), void *arg)
{
	e->changed = fn;
	e->changed_arg = arg;
}

static void flip(uint8_t *p, size_t n, int64_t bit)
{
	if (bit >= 0 && (uint64_t)bit / 8 < n)
		p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
}

void impair_engine_submit(struct impair_engine *e, int dir, uint32_t sink, uint32_t gen,
                          uint64_t flow, const uint8_t *p, size_t n)
{
	struct impair_shaper *sh = &e->sh[dir];
	struct impair_fate fate;
	uint64_t now = impair_now_us();

	impair_shape_rules(sh, &e->set.dir[dir], &e->rules, dir, flow, e->seed, now, n, &fate);
	for (int i = 0; i < fate.ncopies; i++) {
		struct impair_pkt *pkt;

		if (fate.due_us[i] <= now) {
			if (fate.corrupt_bit >= 0 && n <= sizeof(e->scratch)) {
				memcpy(e->scratch, p, n);
				flip(e->scratch, n, fate.corrupt_bit);
				send_copy(e, dir, sink, gen, e->scratch, n);
			} else {
				send_copy(e, dir, sink, gen, p, n);
			}
			continue;
		}
		pkt = impair_pkt_new(n);
		if (pkt == NULL) {
			log_ratelimited(&oom_rl, LOG_LEVEL_WARN, "impair: out of memory, packet dropped");
			sh->c.dropped++;
			sh->c.dropped_other++;
			continue;
		}
		pkt->due_us = fate.due_us[i];
		pkt->sink = sink;
		pkt->gen = gen;
		pkt->dir = (uint8_t)dir;
		memcpy(pkt->data, p, n);
		flip(pkt->data, n, fate.corrupt_bit);
		if (impair_pktq_push(&e->q, pkt) < 0) {
			free(pkt);
			sh->c.dropped++;
			sh->c.dropped_overflow++;
			continue;
		}
		sh->c.delayed++;
		sh->c.pending++;
	}
	arm(e);
}

struct impair_rules *impair_engine_rules(struct impair_engine *e)
{
	return &e->rules;
}

void impair_engine_rules_changed(struct impair_engine *e)
{
	if (e->changed != NULL)
		e->changed(e->changed_arg);
}

void impair_engine_zero_counters(struct impair_engine *e)
{
	for (int d = 0; d < 2; d++) {
		struct impair_counters *c = &e->sh[d].c;
		uint64_t pending = c->pending;

		/* What is still held is carried over as seen: the invariant holds at once. */
		memset(c, 0, sizeof(*c));
		c->seen = pending;
		c->pending = pending;
	}
	impair_rules_zero(&e->rules);
}

void impair_engine_reset(struct impair_engine *e)
{
	struct impair_settings s;

	impair_settings_defaults(&s);
	impair_rules_init(&e->rules);
	for (int d = 0; d < 2; d++)
		e->sh[d].ge_bad = 0;
	impair_engine_set_settings(e, &s);
}

const struct impair_settings *impair_engine_settings(const struct impair_engine *e)
{
	return &e->set;
}

void impair_engine_set_settings(struct impair_engine *e, const struct impair_settings *s)
{
	e->set = *s;
	if (e->changed != NULL)
		e->changed(e->changed_arg);
}

struct impair_shaper *impair_engine_shaper(struct impair_engine *e, int dir)
{
	return &e->sh[dir];
}

uint64_t impair_engine_seed(const struct impair_engine *e)
{
	return e->seed;
}

json_t *impair_counters_to_json(const struct impair_counters *c)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
	                 " s:I, s:I, s:I}",
	                 "seen", (json_int_t)c->seen,
	                 "forwarded", (json_int_t)c->forwarded,
	                 "dropped", (json_int_t)c->dropped,
	                 "duplicated", (json_int_t)c->duplicated,
	                 "delayed", (json_int_t)c->delayed,
	                 "reordered", (json_int_t)c->reordered,
	                 "pending", (json_int_t)c->pending,
	                 "bytes_seen", (json_int_t)c->bytes_seen,
	                 "bytes_forwarded", (json_int_t)c->bytes_forwarded,
	                 "dropped_loss", (json_int_t)c->dropped_loss,
	                 "dropped_blackhole", (json_int_t)c->dropped_blackhole,
	                 "queue_drops", (json_int_t)c->queue_drops,
	                 "dropped_overflow", (json_int_t)c->dropped_overflow,
	                 "dropped_other", (json_int_t)c->dropped_other,
	                 "dropped_burst", (json_int_t)c->dropped_burst,
	                 "dropped_rule", (json_int_t)c->dropped_rule,
	                 "corrupted", (json_int_t)c->corrupted);
}
