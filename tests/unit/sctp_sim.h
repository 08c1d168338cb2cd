/*
 * A simulated network for the native SCTP association core: two
 * associations, a virtual clock, and a link that delays, loses,
 * duplicates and reorders packets from a fixed seed.  Header-only, shared
 * by tests/unit/test_sctp_assoc*.c.
 *
 * SCTPT_SCTP_ASSOC_CORPUS=DIR writes some delivered packets as seeds for
 * tests/fuzz/fuzz_sctp_assoc.c (its input format: a start-state byte,
 * then op 0x18 = "packet, fix tag and checksum", a 16-bit length, bytes).
 */
#ifndef SCTPT_TEST_SCTP_SIM_H
#define SCTPT_TEST_SCTP_SIM_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sctp/assoc.h"
#include "sctp/packet.h"

#define SIM_QCAP 512
#define SIM_PKT 2048
#define SIM_EVCAP 64
#define SIM_TRACE 512
#define SCTP_MTU_DEFAULT_TEST 1200

struct sim_ev {
	struct sctp_core_event ev;
	uint64_t at;
};

/* What went over the wire, for assertions. */
struct sim_trace {
	uint64_t at;
	int from;
	uint8_t first_type;
	uint8_t types[4];           /* first four chunk types */
	unsigned nchunks;
	int dropped;
};

struct sim;

struct sim_side {
	struct sim *sim;
	int id;
	struct sctp_core *a;
	uint64_t rng;
	struct sim_ev ev[SIM_EVCAP];
	unsigned nev;
};

struct sim_pkt {
	uint8_t buf[SIM_PKT];
	size_t len;
	uint64_t at;
	uint64_t seq;
	int to;
};

struct sim {
	uint64_t now;
	uint64_t rng;
	struct sim_side side[2];
	struct sim_pkt q[SIM_QCAP];
	unsigned nq;
	uint64_t seq;
	/* link */
	uint32_t delay_ms;
	uint32_t jitter_ms;          /* extra 0..jitter: reorders */
	unsigned loss_pct, dup_pct;
	/* return 1 to drop this packet (targeted losses), may edit it */
	int (*filter)(struct sim *s, int from, uint8_t *p, size_t *n);
	void *filter_arg;
	struct sim_trace trace[SIM_TRACE];
	unsigned ntrace;
	/* Data tests: every event (DATA and WRITABLE are not kept in ev[]),
	 * a check after every core call, and a bandwidth limit per
	 * direction in bytes per ms (0: none; the queue then fills and
	 * drops at its tail). */
	void (*event_hook)(struct sim *s, int id, const struct sctp_core_event *ev);
	void (*after_step)(struct sim *s);
	void *hook_arg;
	uint32_t bw_bytes_per_ms;
	uint64_t link_free_at[2];
	/* With a bandwidth limit: the bottleneck's drop-tail queue in bytes
	 * (0: unlimited, up to SIM_QCAP packets); drops counted. */
	uint32_t queue_bytes;
	unsigned queue_drops;
};

static uint64_t sim_rand(uint64_t *x)
{
	/* xorshift64* */
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 2685821657736338717ULL;
}

static void sim_random_cb(void *arg, uint8_t *p, size_t n)
{
	struct sim_side *sd = arg;

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(sim_rand(&sd->rng) >> 56);
}

static void sim_corpus(struct sim *s, int to, const uint8_t *p, size_t n)
{
	const char *dir = getenv("SCTPT_SCTP_ASSOC_CORPUS");
	struct sctp_packet pkt;
	char path[512];
	uint8_t state;
	FILE *f;

	static unsigned per_kind[4][256], written;

	(void)s;
	if (dir == NULL || written >= 100 || n > 1500 ||
	    sctp_packet_parse(p, n, &pkt) != 0)
		return;
	/* The fuzzer's start state where this packet means something. */
	if (pkt.first_type == SCTP_CT_INIT || pkt.first_type == SCTP_CT_COOKIE_ECHO)
		state = 0;
	else if (pkt.first_type == SCTP_CT_INIT_ACK)
		state = 1;
	else
		state = (uint8_t)(2 + (to & 1));
	/* A few of each kind: the corpus stays small and varied. */
	if (per_kind[state][pkt.first_type]++ >= 3)
		return;
	snprintf(path, sizeof(path), "%s/sim-%03u", dir, written++);
	if ((f = fopen(path, "wb")) == NULL)
		return;
	fputc(state, f);
	fputc(0x18, f);
	fputc((int)(n >> 8), f);
	fputc((int)(n & 0xff), f);
	fwrite(p, 1, n, f);
	fclose(f);
}

static void sim_enqueue(struct sim *s, int to, const uint8_t *p, size_t n,
                        uint64_t at)
{
	struct sim_pkt *q;

	if (s->nq >= SIM_QCAP || n > SIM_PKT)
		return;
	q = &s->q[s->nq++];
	memcpy(q->buf, p, n);
	q->len = n;
	q->at = at;
	q->seq = s->seq++;
	q->to = to;
}

static void sim_output_cb(void *arg, const uint8_t *p, size_t n)
{
	struct sim_side *sd = arg;
	struct sim *s = sd->sim;
	uint8_t buf[SIM_PKT];
	struct sim_trace *t = s->ntrace < SIM_TRACE ? &s->trace[s->ntrace++] : NULL;
	struct sctp_packet pkt;
	uint64_t at;
	int drop = 0;

	if (n > sizeof(buf))
		return;
	memcpy(buf, p, n);
	if (s->filter != NULL && s->filter(s, sd->id, buf, &n))
		drop = 1;
	if (!drop && s->loss_pct && sim_rand(&s->rng) % 100 < s->loss_pct)
		drop = 1;
	if (t != NULL) {
		memset(t, 0, sizeof(*t));
		t->at = s->now;
		t->from = sd->id;
		t->dropped = drop;
		if (sctp_packet_parse(p, n, &pkt) == 0) {
			struct sctp_chunk_iter it;
			struct sctp_chunk c;

			t->first_type = pkt.first_type;
			t->nchunks = pkt.nchunks;
			sctp_chunk_iter_init(&it, &pkt);
			for (unsigned i = 0; i < 4 && sctp_chunk_next(&it, &c) == 1; i++)
				t->types[i] = c.type;
		}
	}
	if (drop)
		return;
	at = s->now + s->delay_ms;
	if (s->bw_bytes_per_ms) {
		uint64_t start = s->link_free_at[sd->id] > s->now ?
		                 s->link_free_at[sd->id] : s->now;

		if (s->nq >= SIM_QCAP)
			return;
		if (s->queue_bytes &&
		    (start - s->now) * s->bw_bytes_per_ms + n > s->queue_bytes) {
			s->queue_drops++;
			if (t != NULL)
				t->dropped = 1;
			return;
		}
		s->link_free_at[sd->id] = start + (n + s->bw_bytes_per_ms - 1) /
		                                  s->bw_bytes_per_ms;
		at = s->link_free_at[sd->id] + s->delay_ms;
	}
	if (s->jitter_ms)
		at += sim_rand(&s->rng) % (s->jitter_ms + 1);
	sim_enqueue(s, !sd->id, buf, n, at);
	if (s->dup_pct && sim_rand(&s->rng) % 100 < s->dup_pct)
		sim_enqueue(s, !sd->id, buf, n,
		            at + sim_rand(&s->rng) % (s->delay_ms + 1));
}

static void sim_event_cb(void *arg, const struct sctp_core_event *ev)
{
	struct sim_side *sd = arg;

	if (sd->sim != NULL && sd->sim->event_hook != NULL)
		sd->sim->event_hook(sd->sim, sd->id, ev);
	if (ev->type == SCTP_EV_DATA || ev->type == SCTP_EV_WRITABLE)
		return;
	if (sd->nev < SIM_EVCAP) {
		sd->ev[sd->nev].ev = *ev;
		sd->ev[sd->nev].at = sd->sim != NULL ? sd->sim->now : 0;
		sd->nev++;
	}
}

static const uint8_t sim_secret[2][32] = {
	"secret of side A, 32 bytes long",
	"secret of side B, 32 bytes long",
};

/* A config both sides start from: ports 5000 (A) and 5001 (B). */
static struct sctp_core_config sim_config(int id)
{
	struct sctp_core_config c;

	memset(&c, 0, sizeof(c));
	c.local_port = id ? 5001 : 5000;
	c.remote_port = id ? 5000 : 5001;
	c.os = 10;
	c.mis = 10;
	c.idata = 1;
	c.listen = id == 1;
	return c;
}

static struct sctp_core *sim_attach(struct sim *s, int id,
                                     const struct sctp_core_config *cfg,
                                     uint64_t seed)
{
	struct sim_side *sd = &s->side[id];
	struct sctp_core_env env;

	sd->sim = s;
	sd->id = id;
	sd->rng = seed * 0x9e3779b97f4a7c15ULL + 1 + (uint64_t)id;
	sd->nev = 0;
	memset(&env, 0, sizeof(env));
	env.arg = sd;
	env.random = sim_random_cb;
	env.output = sim_output_cb;
	env.event = sim_event_cb;
	env.secret = sim_secret[id];
	env.secret_len = sizeof(sim_secret[id]);
	sctp_core_free(sd->a);
	sd->a = sctp_core_new(cfg, &env);
	return sd->a;
}

static void sim_init(struct sim *s, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->rng = seed * 0x2545f4914f6cdd1dULL + 7;
	s->delay_ms = 10;
}

static void sim_free(struct sim *s)
{
	sctp_core_free(s->side[0].a);
	sctp_core_free(s->side[1].a);
	s->side[0].a = s->side[1].a = NULL;
}

/* Runs the network until `until` (virtual ms) or nothing is left to do. */
static void sim_run(struct sim *s, uint64_t until)
{
	for (unsigned steps = 0; steps < 200000; steps++) {
		uint64_t next = UINT64_MAX;
		unsigned best = SIM_QCAP;

		for (unsigned i = 0; i < s->nq; i++)
			if (best == SIM_QCAP || s->q[i].at < s->q[best].at ||
			    (s->q[i].at == s->q[best].at &&
			     s->q[i].seq < s->q[best].seq))
				best = i;
		if (best != SIM_QCAP)
			next = s->q[best].at;
		for (int i = 0; i < 2; i++)
			if (s->side[i].a != NULL) {
				uint64_t d = sctp_core_next_deadline(s->side[i].a);

				if (d < next)
					next = d;
			}
		if (next == UINT64_MAX || next > until) {
			if (until != UINT64_MAX && s->now < until)
				s->now = until;
			return;
		}
		if (next > s->now)
			s->now = next;
		if (best != SIM_QCAP && s->q[best].at <= s->now) {
			struct sim_pkt p = s->q[best];

			s->q[best] = s->q[--s->nq];
			sim_corpus(s, p.to, p.buf, p.len);
			if (s->side[p.to].a != NULL)
				sctp_core_input(s->side[p.to].a, p.buf, p.len, s->now);
			if (s->after_step != NULL)
				s->after_step(s);
			continue;
		}
		for (int i = 0; i < 2; i++)
			if (s->side[i].a != NULL &&
			    sctp_core_next_deadline(s->side[i].a) <= s->now)
				sctp_core_timeout(s->side[i].a, s->now);
		if (s->after_step != NULL)
			s->after_step(s);
	}
}

static unsigned sim_count_ev(const struct sim_side *sd, enum sctp_event_type t)
{
	unsigned n = 0;

	for (unsigned i = 0; i < sd->nev; i++)
		n += sd->ev[i].ev.type == t;
	return n;
}

static const struct sim_ev *sim_last_ev(const struct sim_side *sd,
                                        enum sctp_event_type t)
{
	for (unsigned i = sd->nev; i-- > 0;)
		if (sd->ev[i].ev.type == t)
			return &sd->ev[i];
	return NULL;
}

/* Packets side `from` sent whose first chunk is `type` (dropped or not). */
static unsigned sim_count_sent(const struct sim *s, int from, uint8_t type)
{
	unsigned n = 0;

	for (unsigned i = 0; i < s->ntrace; i++)
		n += s->trace[i].from == from && s->trace[i].first_type == type;
	return n;
}

/* The i-th (0-based) send time of such a packet, or UINT64_MAX. */
static uint64_t sim_sent_at(const struct sim *s, int from, uint8_t type,
                            unsigned nth)
{
	for (unsigned i = 0; i < s->ntrace; i++)
		if (s->trace[i].from == from && s->trace[i].first_type == type &&
		    nth-- == 0)
			return s->trace[i].at;
	return UINT64_MAX;
}

/* Both sides up, and each writes the tag the other expects. */
static int sim_tags_consistent(const struct sim *s)
{
	struct sctp_core_info x, y;

	sctp_core_get_info(s->side[0].a, &x);
	sctp_core_get_info(s->side[1].a, &y);
	return x.local_vtag == y.peer_vtag && y.local_vtag == x.peer_vtag &&
	       x.local_vtag != 0 && y.local_vtag != 0;
}

#endif
