/*
 * Unit tests for the native engine's association core (src/sctp/assoc*.c):
 * two pure associations on a simulated network with a virtual clock
 * (sctp_sim.h) for the handshake, its §5.2 edge cases, timers and
 * teardown; hand-made packets for the verification-tag and unknown-chunk
 * rules (sctp_assoc_hand.h); and interoperability with the real usrsctp
 * over AF_CONN in this process (sctp_assoc_interop.h).  Everything is
 * deterministic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <cmocka.h>

#include "sctp/assoc.h"
#include "sctp/packet.h"
#include "util/bytes.h"
#include "sctp_sim.h"

#define UNUSED __attribute__((unused))

static struct sim S;

/* A client (side 0) and a listener (side 1), default configs. */
static void pair(uint64_t seed)
{
	struct sctp_core_config a = sim_config(0), b = sim_config(1);

	sim_init(&S, seed);
	assert_non_null(sim_attach(&S, 0, &a, seed));
	assert_non_null(sim_attach(&S, 1, &b, seed));
}

static void establish(void)
{
	assert_int_equal(sctp_core_connect(S.side[0].a, S.now), 0);
	sim_run(&S, S.now + 1000);
	assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_ESTABLISHED);
	assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_ESTABLISHED);
	assert_true(sim_tags_consistent(&S));
}

/* ---- handshake ---- */

static void test_establish(void **state UNUSED)
{
	struct sctp_core_config a = sim_config(0), b = sim_config(1);
	const struct sim_ev *up;

	/* Stream counts: each side's outbound is min(its OS, peer's MIS). */
	a.os = 10; a.mis = 20; b.os = 5; b.mis = 7;
	sim_init(&S, 1);
	assert_non_null(sim_attach(&S, 0, &a, 1));
	assert_non_null(sim_attach(&S, 1, &b, 1));
	assert_int_equal(sctp_core_next_deadline(S.side[0].a), SCTP_CORE_NO_DEADLINE);
	establish();
	up = sim_last_ev(&S.side[0], SCTP_EV_UP);
	assert_non_null(up);
	assert_int_equal(up->ev.out_streams, 7);
	assert_int_equal(up->ev.in_streams, 5);
	assert_true(up->ev.idata);
	assert_int_equal(up->at, 40);                /* two round trips */
	up = sim_last_ev(&S.side[1], SCTP_EV_UP);
	assert_non_null(up);
	assert_int_equal(up->ev.out_streams, 5);
	assert_int_equal(up->ev.in_streams, 7);
	assert_int_equal(up->at, 30);
	assert_int_equal(sim_count_ev(&S.side[0], SCTP_EV_UP), 1);
	assert_int_equal(sim_count_ev(&S.side[1], SCTP_EV_UP), 1);
	/* Nothing runs when idle: no heartbeats configured. */
	assert_int_equal(sctp_core_next_deadline(S.side[0].a), SCTP_CORE_NO_DEADLINE);
	assert_int_equal(sctp_core_next_deadline(S.side[1].a), SCTP_CORE_NO_DEADLINE);
	assert_int_equal(sctp_core_connect(S.side[0].a, S.now), -1);
	sim_free(&S);

	/* I-DATA only when both offer it. */
	b = sim_config(1);
	b.idata = 0;
	sim_init(&S, 2);
	a = sim_config(0);
	assert_non_null(sim_attach(&S, 0, &a, 2));
	assert_non_null(sim_attach(&S, 1, &b, 2));
	establish();
	assert_false(sim_last_ev(&S.side[0], SCTP_EV_UP)->ev.idata);
	assert_false(sim_last_ev(&S.side[1], SCTP_EV_UP)->ev.idata);
	sim_free(&S);
}

/* Drops the first packet whose first chunk is S.filter_arg's type. */
static int drop_first_of(struct sim *s, int from, uint8_t *p, size_t *n)
{
	uint8_t *want = s->filter_arg;
	struct sctp_packet pkt;

	(void)from;
	if (*want != 0 && sctp_packet_parse(p, *n, &pkt) == 0 &&
	    pkt.first_type == *want) {
		*want = 0;
		return 1;
	}
	return 0;
}

static void test_handshake_loss(void **state UNUSED)
{
	static const uint8_t types[] = {
		SCTP_CT_INIT, SCTP_CT_INIT_ACK, SCTP_CT_COOKIE_ECHO, SCTP_CT_COOKIE_ACK,
	};

	for (size_t i = 0; i < sizeof(types); i++) {
		uint8_t want = types[i];

		pair(10 + i);
		S.filter = drop_first_of;
		S.filter_arg = &want;
		assert_int_equal(sctp_core_connect(S.side[0].a, 0), 0);
		sim_run(&S, 5000);
		assert_int_equal(want, 0);
		assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_ESTABLISHED);
		assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_ESTABLISHED);
		assert_true(sim_tags_consistent(&S));
		assert_int_equal(sim_count_ev(&S.side[0], SCTP_EV_UP), 1);
		assert_int_equal(sim_count_ev(&S.side[1], SCTP_EV_UP), 1);
		/* One T1 expiry (RTO.Initial 1 s) recovered the loss. */
		assert_true(sim_last_ev(&S.side[0], SCTP_EV_UP)->at >= 1000);
		assert_true(sim_last_ev(&S.side[0], SCTP_EV_UP)->at < 1100);
		sim_free(&S);
	}
}

static int drop_all_from_a(struct sim *s, int from, uint8_t *p, size_t *n)
{
	(void)s; (void)p; (void)n;
	return from == 0;
}

static int drop_cookie_echo(struct sim *s, int from, uint8_t *p, size_t *n)
{
	struct sctp_packet pkt;

	(void)s; (void)from;
	return sctp_packet_parse(p, *n, &pkt) == 0 &&
	       pkt.first_type == SCTP_CT_COOKIE_ECHO;
}

static void test_t1_backoff(void **state UNUSED)
{
	struct sctp_core_config a = sim_config(0), b = sim_config(1);
	static const uint64_t at[] = { 0, 1000, 3000, 7000, 15000 };
	const struct sim_ev *down;

	/* T1-init: RTO.Initial 1 s doubling to RTO.Max 8 s, 4 retransmits. */
	a.rto_max_ms = 8000;
	a.max_init_retrans = 4;
	sim_init(&S, 3);
	assert_non_null(sim_attach(&S, 0, &a, 3));
	assert_non_null(sim_attach(&S, 1, &b, 3));
	S.filter = drop_all_from_a;
	assert_int_equal(sctp_core_connect(S.side[0].a, 0), 0);
	assert_int_equal(sctp_core_next_deadline(S.side[0].a), 1000);
	sim_run(&S, 100000);
	assert_int_equal(sim_count_sent(&S, 0, SCTP_CT_INIT), 5);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(sim_sent_at(&S, 0, SCTP_CT_INIT, i), at[i]);
	down = sim_last_ev(&S.side[0], SCTP_EV_DOWN);
	assert_non_null(down);
	assert_int_equal(down->ev.reason, SCTP_DOWN_INIT_TIMEOUT);
	assert_int_equal(down->at, 15000 + 8000);
	assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_CLOSED);
	assert_int_equal(sctp_core_next_deadline(S.side[0].a), SCTP_CORE_NO_DEADLINE);
	sim_free(&S);

	/* T1-cookie: the INIT-ACK comes back, every COOKIE-ECHO is lost. */
	a = sim_config(0);
	a.max_init_retrans = 3;
	sim_init(&S, 4);
	assert_non_null(sim_attach(&S, 0, &a, 4));
	assert_non_null(sim_attach(&S, 1, &b, 4));
	S.filter = drop_cookie_echo;
	assert_int_equal(sctp_core_connect(S.side[0].a, 0), 0);
	sim_run(&S, 100000);
	assert_int_equal(sim_count_sent(&S, 0, SCTP_CT_INIT), 1);
	assert_int_equal(sim_count_sent(&S, 0, SCTP_CT_COOKIE_ECHO), 4);
	assert_int_equal(sim_sent_at(&S, 0, SCTP_CT_COOKIE_ECHO, 1) -
	                 sim_sent_at(&S, 0, SCTP_CT_COOKIE_ECHO, 0), 1000);
	assert_int_equal(sim_sent_at(&S, 0, SCTP_CT_COOKIE_ECHO, 2) -
	                 sim_sent_at(&S, 0, SCTP_CT_COOKIE_ECHO, 1), 2000);
	down = sim_last_ev(&S.side[0], SCTP_EV_DOWN);
	assert_non_null(down);
	assert_int_equal(down->ev.reason, SCTP_DOWN_INIT_TIMEOUT);
	/* The listener kept no state for the INIT. */
	assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_CLOSED);
	assert_int_equal(S.side[1].nev, 0);
	sim_free(&S);
}

static void test_init_collision(void **state UNUSED)
{
	for (uint64_t seed = 20; seed < 26; seed++) {
		struct sctp_core_config a = sim_config(0), b = sim_config(1);

		/* Neither listens: both connect at once, INITs cross. */
		b.listen = 0;
		sim_init(&S, seed);
		S.jitter_ms = (uint32_t)(seed - 20) * 4;
		assert_non_null(sim_attach(&S, 0, &a, seed));
		assert_non_null(sim_attach(&S, 1, &b, seed));
		assert_int_equal(sctp_core_connect(S.side[0].a, 0), 0);
		assert_int_equal(sctp_core_connect(S.side[1].a, 0), 0);
		sim_run(&S, 5000);
		assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_ESTABLISHED);
		assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_ESTABLISHED);
		assert_true(sim_tags_consistent(&S));
		assert_int_equal(sim_count_ev(&S.side[0], SCTP_EV_UP), 1);
		assert_int_equal(sim_count_ev(&S.side[1], SCTP_EV_UP), 1);
		assert_int_equal(sim_count_ev(&S.side[0], SCTP_EV_DOWN), 0);
		assert_int_equal(sim_count_ev(&S.side[1], SCTP_EV_DOWN), 0);
		/* Both answered the other's INIT (§5.2.1). */
		assert_true(sim_count_sent(&S, 0, SCTP_CT_INIT_ACK) >= 1);
		assert_true(sim_count_sent(&S, 1, SCTP_CT_INIT_ACK) >= 1);
		sim_free(&S);
	}
}

static void test_restart(void **state UNUSED)
{
	struct sctp_core_config b = sim_config(0);
	struct sctp_core_info before, after;
	const struct sim_ev *ev;

	pair(30);
	establish();
	sctp_core_get_info(S.side[1].a, &before);
	/* Side 0 "reboots": a fresh association with the same ports. */
	assert_non_null(sim_attach(&S, 0, &b, 31));
	assert_int_equal(sctp_core_connect(S.side[0].a, S.now), 0);
	sim_run(&S, S.now + 1000);
	assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_ESTABLISHED);
	assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_ESTABLISHED);
	assert_true(sim_tags_consistent(&S));
	assert_int_equal(sim_count_ev(&S.side[1], SCTP_EV_RESTART), 1);
	assert_int_equal(sim_count_ev(&S.side[1], SCTP_EV_DOWN), 0);
	ev = sim_last_ev(&S.side[1], SCTP_EV_RESTART);
	assert_int_equal(ev->ev.out_streams, 10);
	sctp_core_get_info(S.side[1].a, &after);
	assert_int_not_equal(after.local_vtag, before.local_vtag);
	assert_int_not_equal(after.peer_vtag, before.peer_vtag);
	sim_free(&S);
}

/* An INIT that arrives late at an established side is answered with a
 * new tag; the INIT-ACK dies at the other side (§5.2.2, §5.2.3). */
static void test_init_when_established(void **state UNUSED)
{
	uint8_t init[SIM_PKT];
	size_t init_len = 0;

	pair(32);
	assert_int_equal(sctp_core_connect(S.side[0].a, 0), 0);
	/* Keep a copy of the INIT from the queue. */
	assert_int_equal(S.nq, 1);
	memcpy(init, S.q[0].buf, S.q[0].len);
	init_len = S.q[0].len;
	sim_run(&S, 1000);
	sctp_core_input(S.side[1].a, init, init_len, S.now);
	assert_int_equal(sim_count_sent(&S, 1, SCTP_CT_INIT_ACK), 2);
	sim_run(&S, 2000);
	assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_ESTABLISHED);
	assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_ESTABLISHED);
	assert_true(sim_tags_consistent(&S));
	assert_int_equal(sim_count_ev(&S.side[1], SCTP_EV_RESTART), 0);
	sim_free(&S);
}

static void test_stale_cookie(void **state UNUSED)
{
	struct sctp_core_config a = sim_config(0), b = sim_config(1);

	/* The cookie lives 100 ms; it spends 400 ms in flight. */
	b.cookie_life_ms = 100;
	sim_init(&S, 40);
	S.delay_ms = 200;
	assert_non_null(sim_attach(&S, 0, &a, 40));
	assert_non_null(sim_attach(&S, 1, &b, 40));
	assert_int_equal(sctp_core_connect(S.side[0].a, 0), 0);
	sim_run(&S, 5000);
	/* ERROR (Stale Cookie), a new INIT with a Cookie Preservative, up. */
	assert_int_equal(sim_count_sent(&S, 1, SCTP_CT_ERROR), 1);
	assert_int_equal(sim_count_sent(&S, 0, SCTP_CT_INIT), 2);
	assert_int_equal(sim_count_sent(&S, 0, SCTP_CT_COOKIE_ECHO), 2);
	assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_ESTABLISHED);
	assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_ESTABLISHED);
	assert_int_equal(sim_count_ev(&S.side[1], SCTP_EV_UP), 1);
	assert_true(sim_tags_consistent(&S));
	sim_free(&S);
}

/* Flips a byte inside the first COOKIE-ECHO's cookie and fixes the CRC. */
static int corrupt_cookie(struct sim *s, int from, uint8_t *p, size_t *n)
{
	int *done = s->filter_arg;
	struct sctp_packet pkt;

	(void)from;
	if (!*done && sctp_packet_parse(p, *n, &pkt) == 0 &&
	    pkt.first_type == SCTP_CT_COOKIE_ECHO) {
		p[SCTP_HEADER_LEN + 4 + 20] ^= 0x01;
		sctp_packet_set_crc(p, *n);
		*done = 1;
	}
	return 0;
}

static void test_bad_cookie(void **state UNUSED)
{
	struct sctp_core_info info;
	int done = 0;

	pair(50);
	S.filter = corrupt_cookie;
	S.filter_arg = &done;
	assert_int_equal(sctp_core_connect(S.side[0].a, 0), 0);
	sim_run(&S, 500);
	assert_true(done);
	/* The bad HMAC was dropped without an answer or any state. */
	sctp_core_get_info(S.side[1].a, &info);
	assert_int_equal(info.dropped, 1);
	assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_CLOSED);
	assert_int_equal(sim_count_sent(&S, 1, SCTP_CT_COOKIE_ACK), 0);
	assert_int_equal(sim_count_sent(&S, 1, SCTP_CT_ABORT), 0);
	/* T1-cookie resends the good cookie. */
	sim_run(&S, 2000);
	assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_ESTABLISHED);
	assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_ESTABLISHED);
	sim_free(&S);

	/* A cookie under another secret: a second listener never accepts it. */
	{
		struct sctp_core_config b = sim_config(1);
		uint8_t ce[SIM_PKT];
		size_t ce_len = 0;

		pair(51);
		S.filter = drop_cookie_echo;
		assert_int_equal(sctp_core_connect(S.side[0].a, 0), 0);
		sim_run(&S, 30);
		S.filter = NULL;
		/* Rebuild the COOKIE-ECHO as side 0 would send it now. */
		S.now = sctp_core_next_deadline(S.side[0].a);
		sctp_core_timeout(S.side[0].a, S.now);
		assert_int_equal(S.nq, 1);
		memcpy(ce, S.q[0].buf, S.q[0].len);
		ce_len = S.q[0].len;
		S.nq = 0;
		/* Side 1 again, with side 0's secret instead of its own. */
		{
			struct sctp_core_env env;

			memset(&env, 0, sizeof(env));
			env.arg = &S.side[1];
			env.random = sim_random_cb;
			env.output = sim_output_cb;
			env.event = sim_event_cb;
			env.secret = sim_secret[0];
			env.secret_len = sizeof(sim_secret[0]);
			sctp_core_free(S.side[1].a);
			S.side[1].a = sctp_core_new(&b, &env);
		}
		sctp_core_input(S.side[1].a, ce, ce_len, S.now);
		sctp_core_get_info(S.side[1].a, &info);
		assert_int_equal(info.dropped, 1);
		assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_CLOSED);
		assert_int_equal(S.nq, 0);
		sim_free(&S);
	}
}

static int dup_cookie_echo(struct sim *s, int from, uint8_t *p, size_t *n)
{
	struct sctp_packet pkt;

	if (sctp_packet_parse(p, *n, &pkt) == 0 &&
	    pkt.first_type == SCTP_CT_COOKIE_ECHO) {
		sim_enqueue(s, !from, p, *n, s->now + 15);
		sim_enqueue(s, !from, p, *n, s->now + 300);
	}
	return 0;
}

static void test_duplicate_cookie_echo(void **state UNUSED)
{
	pair(60);
	S.filter = dup_cookie_echo;
	assert_int_equal(sctp_core_connect(S.side[0].a, 0), 0);
	sim_run(&S, 2000);
	assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_ESTABLISHED);
	assert_int_equal(sim_count_ev(&S.side[1], SCTP_EV_UP), 1);
	assert_int_equal(sim_count_ev(&S.side[0], SCTP_EV_UP), 1);
	assert_int_equal(sim_count_ev(&S.side[1], SCTP_EV_RESTART), 0);
	/* §5.2.4 D: every copy gets a COOKIE-ACK. */
	assert_int_equal(sim_count_sent(&S, 1, SCTP_CT_COOKIE_ACK), 3);
	assert_true(sim_tags_consistent(&S));
	sim_free(&S);
}

/* ---- teardown ---- */

static void check_closed_by(int side, enum sctp_down_reason why)
{
	const struct sim_ev *d = sim_last_ev(&S.side[side], SCTP_EV_DOWN);

	assert_int_equal(sctp_core_state(S.side[side].a), SCTP_S_CLOSED);
	assert_non_null(d);
	assert_int_equal(d->ev.reason, why);
	assert_int_equal(sim_count_ev(&S.side[side], SCTP_EV_DOWN), 1);
	assert_int_equal(sctp_core_next_deadline(S.side[side].a),
	                 SCTP_CORE_NO_DEADLINE);
}

static void test_shutdown(void **state UNUSED)
{
	for (int who = 0; who < 2; who++) {
		pair(70 + (uint64_t)who);
		establish();
		assert_int_equal(sctp_core_shutdown(S.side[who].a, S.now), 0);
		assert_int_equal(sctp_core_shutdown(S.side[who].a, S.now), -1);
		sim_run(&S, S.now + 1000);
		check_closed_by(0, SCTP_DOWN_SHUTDOWN);
		check_closed_by(1, SCTP_DOWN_SHUTDOWN);
		assert_int_equal(sim_count_ev(&S.side[!who], SCTP_EV_SHUTDOWN_RECEIVED), 1);
		assert_int_equal(sim_count_sent(&S, who, SCTP_CT_SHUTDOWN), 1);
		assert_int_equal(sim_count_sent(&S, !who, SCTP_CT_SHUTDOWN_ACK), 1);
		assert_int_equal(sim_count_sent(&S, who, SCTP_CT_SHUTDOWN_COMPLETE), 1);
		sim_free(&S);
	}
	/* Both at once: SHUTDOWNs cross, each answers with SHUTDOWN-ACK. */
	pair(72);
	establish();
	assert_int_equal(sctp_core_shutdown(S.side[0].a, S.now), 0);
	assert_int_equal(sctp_core_shutdown(S.side[1].a, S.now), 0);
	sim_run(&S, S.now + 1000);
	check_closed_by(0, SCTP_DOWN_SHUTDOWN);
	check_closed_by(1, SCTP_DOWN_SHUTDOWN);
	sim_free(&S);
	/* Lost SHUTDOWN-ACK: T2 resends SHUTDOWN after RTO. */
	{
		uint8_t want = SCTP_CT_SHUTDOWN_ACK;
		uint64_t t0;

		pair(73);
		establish();
		S.filter = drop_first_of;
		S.filter_arg = &want;
		t0 = S.now;
		assert_int_equal(sctp_core_shutdown(S.side[0].a, S.now), 0);
		sim_run(&S, S.now + 5000);
		assert_int_equal(want, 0);
		assert_int_equal(sim_count_sent(&S, 0, SCTP_CT_SHUTDOWN), 2);
		assert_int_equal(sim_sent_at(&S, 0, SCTP_CT_SHUTDOWN, 1) - t0, 1000);
		check_closed_by(0, SCTP_DOWN_SHUTDOWN);
		check_closed_by(1, SCTP_DOWN_SHUTDOWN);
		sim_free(&S);
	}
	/* The peer vanishes: T2 gives up after Max.Retrans, with backoff. */
	pair(74);
	establish();
	S.loss_pct = 100;
	assert_int_equal(sctp_core_shutdown(S.side[0].a, S.now), 0);
	{
		uint64_t t0 = S.now;

		sim_run(&S, S.now + 1000000);
		check_closed_by(0, SCTP_DOWN_PEER_UNREACHABLE);
		/* T2 backs off 1, 2, 4 ... 60 s; the T5 guard ends it at
		 * 5 RTO.Max before the 10th retransmission. */
		assert_int_equal(sim_last_ev(&S.side[0], SCTP_EV_DOWN)->at - t0, 300000);
		assert_int_equal(sim_count_sent(&S, 0, SCTP_CT_SHUTDOWN), 10);
		assert_int_equal(sim_sent_at(&S, 0, SCTP_CT_SHUTDOWN, 2) -
		                 sim_sent_at(&S, 0, SCTP_CT_SHUTDOWN, 1), 2000);
		assert_int_equal(sim_sent_at(&S, 0, SCTP_CT_SHUTDOWN, 9) -
		                 sim_sent_at(&S, 0, SCTP_CT_SHUTDOWN, 8), 60000);
	}
	sim_free(&S);
	/* shutdown() in COOKIE-ECHOED closes once up. */
	pair(75);
	assert_int_equal(sctp_core_connect(S.side[0].a, 0), 0);
	sim_run(&S, 25);
	assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_COOKIE_ECHOED);
	assert_int_equal(sctp_core_shutdown(S.side[0].a, S.now), 0);
	sim_run(&S, 2000);
	check_closed_by(0, SCTP_DOWN_SHUTDOWN);
	check_closed_by(1, SCTP_DOWN_SHUTDOWN);
	sim_free(&S);
}

static void test_abort(void **state UNUSED)
{
	for (int who = 0; who < 2; who++) {
		const struct sim_ev *d;

		pair(80 + (uint64_t)who);
		establish();
		sctp_core_abort(S.side[who].a, S.now);
		check_closed_by(who, SCTP_DOWN_LOCAL_ABORT);
		sim_run(&S, S.now + 1000);
		check_closed_by(!who, SCTP_DOWN_PEER_ABORT);
		d = sim_last_ev(&S.side[!who], SCTP_EV_DOWN);
		assert_int_equal(d->ev.cause, SCTP_C_USER_ABORT);
		sim_free(&S);
	}
	/* Abort in COOKIE-WAIT: no tag to write, nothing sent. */
	pair(82);
	assert_int_equal(sctp_core_connect(S.side[0].a, 0), 0);
	sctp_core_abort(S.side[0].a, 0);
	check_closed_by(0, SCTP_DOWN_LOCAL_ABORT);
	assert_int_equal(sim_count_sent(&S, 0, SCTP_CT_ABORT), 0);
	sim_free(&S);
}

/* ---- heartbeats ---- */

static void test_heartbeat(void **state UNUSED)
{
	struct sctp_core_config a = sim_config(0), b = sim_config(1);
	const struct sim_ev *ack;
	uint32_t id = 0, id2 = 0;

	pair(90);
	assert_int_equal(sctp_core_probe(S.side[0].a, 0, &id), -1);
	establish();
	assert_int_equal(sctp_core_probe(S.side[0].a, S.now, &id), 0);
	assert_int_equal(sctp_core_probe(S.side[0].a, S.now, &id2), 0);
	assert_int_not_equal(id, id2);
	sim_run(&S, S.now + 100);
	assert_int_equal(sim_count_ev(&S.side[0], SCTP_EV_HEARTBEAT_ACK), 2);
	ack = sim_last_ev(&S.side[0], SCTP_EV_HEARTBEAT_ACK);
	assert_int_equal(ack->ev.probe_id, id2);
	assert_int_equal(ack->ev.rtt_ms, 20);
	assert_int_equal(sctp_core_next_deadline(S.side[0].a), SCTP_CORE_NO_DEADLINE);
	sim_free(&S);

	/* Periodic probes; then the peer goes silent and is declared lost. */
	a.hb_interval_ms = 30000;
	a.max_retrans = 3;
	sim_init(&S, 91);
	assert_non_null(sim_attach(&S, 0, &a, 91));
	assert_non_null(sim_attach(&S, 1, &b, 91));
	establish();
	sim_run(&S, 200000);
	assert_true(sim_count_ev(&S.side[0], SCTP_EV_HEARTBEAT_ACK) >= 5);
	assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_ESTABLISHED);
	S.loss_pct = 100;
	sim_run(&S, 2000000);
	check_closed_by(0, SCTP_DOWN_PEER_UNREACHABLE);
	sim_free(&S);
}

/*
 * Idle probes have no fixed period: gaps within 0.95-1.05 x the interval
 * plus 0.5-1.5 x the RTO, several distinct gaps in one session, a different mean in
 * another session, and the same sequence again for the same seed.
 */
static void hb_gaps(uint64_t seed, uint64_t *gaps, unsigned n)
{
	struct sctp_core_config a = sim_config(0), b = sim_config(1);

	a.hb_interval_ms = 10000;
	sim_init(&S, seed);
	assert_non_null(sim_attach(&S, 0, &a, seed));
	assert_non_null(sim_attach(&S, 1, &b, seed));
	establish();
	sim_run(&S, S.now + (uint64_t)(n + 2) * 13000);
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = sim_sent_at(&S, 0, SCTP_CT_HEARTBEAT, i);
		uint64_t t1 = sim_sent_at(&S, 0, SCTP_CT_HEARTBEAT, i + 1);

		assert_true(t1 != UINT64_MAX);
		gaps[i] = t1 - t0;
	}
	sim_free(&S);
}

static void test_heartbeat_jitter(void **state UNUSED)
{
	uint64_t g1[12], g2[12], g3[12], sum1 = 0, sum3 = 0;
	unsigned distinct = 0;

	hb_gaps(300, g1, 12);
	hb_gaps(300, g2, 12);
	assert_memory_equal(g1, g2, sizeof(g1));
	for (unsigned i = 0; i < 12; i++) {
		/* the RTO here is the sim's (a few hundred ms, at most rto_max) */
		assert_true(g1[i] >= 9500 && g1[i] <= 10500 + 60000);
		distinct += i == 0 || g1[i] != g1[i - 1];
		sum1 += g1[i];
	}
	assert_true(distinct >= 8);
	/* Another session: another mean (the chance of a tie is nil). */
	for (uint64_t seed = 301; seed < 310; seed++) {
		hb_gaps(seed, g3, 12);
		sum3 = 0;
		for (unsigned i = 0; i < 12; i++)
			sum3 += g3[i];
		if (sum3 != sum1)
			break;
	}
	assert_int_not_equal(sum1, sum3);
}

#include "sctp_assoc_hand.h"

/* Loss, duplication and reordering on both ways, many seeds. */
static void test_random_network(void **state UNUSED)
{
	for (uint64_t seed = 200; seed < 260; seed++) {
		struct sctp_core_config a = sim_config(0), b = sim_config(1);

		a.max_init_retrans = 20;
		a.hb_interval_ms = 5000;
		b.hb_interval_ms = 5000;
		a.max_retrans = b.max_retrans = 30;
		a.rto_max_ms = b.rto_max_ms = 4000;
		sim_init(&S, seed);
		S.loss_pct = 25;
		S.dup_pct = 20;
		S.jitter_ms = 40;
		assert_non_null(sim_attach(&S, 0, &a, seed));
		assert_non_null(sim_attach(&S, 1, &b, seed));
		assert_int_equal(sctp_core_connect(S.side[0].a, 0), 0);
		sim_run(&S, 60000);
		assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_ESTABLISHED);
		assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_ESTABLISHED);
		assert_true(sim_tags_consistent(&S));
		assert_int_equal(sim_count_ev(&S.side[0], SCTP_EV_UP), 1);
		if (sim_count_ev(&S.side[1], SCTP_EV_UP) +
		    sim_count_ev(&S.side[1], SCTP_EV_RESTART) != 1) {
			for (unsigned i = 0; i < S.ntrace; i++)
				print_message("%llu %d type %u drop %d\n", (unsigned long long)S.trace[i].at, S.trace[i].from, S.trace[i].first_type, S.trace[i].dropped);
			for (int k = 0; k < 2; k++) for (unsigned i = 0; i < S.side[k].nev; i++)
				print_message("side %d ev %d at %llu\n", k, S.side[k].ev[i].ev.type, (unsigned long long)S.side[k].ev[i].at);
		}
		assert_int_equal(sim_count_ev(&S.side[1], SCTP_EV_UP) +
		                 sim_count_ev(&S.side[1], SCTP_EV_RESTART), 1);
		assert_int_equal(sctp_core_shutdown(S.side[seed & 1].a, S.now), 0);
		sim_run(&S, S.now + 600000);
		check_closed_by(0, SCTP_DOWN_SHUTDOWN);
		/* The side that sent SHUTDOWN-COMPLETE may have lost it: the
		 * other side then closes by T2 or gets it from a resend. */
		assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_CLOSED);
		sim_free(&S);
	}
}

#include "sctp_assoc_interop.h"

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_establish),
		cmocka_unit_test(test_handshake_loss),
		cmocka_unit_test(test_t1_backoff),
		cmocka_unit_test(test_init_collision),
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_init_when_established),
		cmocka_unit_test(test_stale_cookie),
		cmocka_unit_test(test_bad_cookie),
		cmocka_unit_test(test_duplicate_cookie_echo),
		cmocka_unit_test(test_shutdown),
		cmocka_unit_test(test_abort),
		cmocka_unit_test(test_heartbeat),
		cmocka_unit_test(test_heartbeat_jitter),
		cmocka_unit_test(test_tag_rules),
		cmocka_unit_test(test_unknown_chunks),
		cmocka_unit_test(test_unknown_params),
		cmocka_unit_test(test_out_of_the_blue),
		cmocka_unit_test(test_cookie_while_shutting_down),
		cmocka_unit_test(test_host_name_refused),
		cmocka_unit_test(test_data_kind_violation),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_random_network),
		cmocka_unit_test(test_usrsctp_interop_client),
		cmocka_unit_test(test_usrsctp_interop_data),
		cmocka_unit_test(test_usrsctp_bench),
		cmocka_unit_test(test_usrsctp_interop_server),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
