/*
 * Unit tests for the wire layer's links (src/wire/wire.c, listener.c,
 * client.c) and its padding lengths (pad.c).
 *
 * Padding is pure and checked with a fixed "random" draw.  The link tests
 * run a real listener and client over loopback UDP and TCP: a link freed
 * from inside its own callbacks (the layer above gives up on it at once)
 * must outlive the callback, and the allocations of the link's events can
 * fail (util/fault.h, built with -Dfault_injection=true) without a crash,
 * a leak or a half-made link.  Under the sanitizer build a synchronous
 * free inside a callback would show up as a use after free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>
#include <event2/event.h>

#include "util/clock.h"
#include "util/fault.h"
#include "util/log.h"
#include "wire/pad.h"
#include "wire/seal.h"
#include "wire/wire.h"

/* ---------- padding ---------- */

static uint32_t draw_value;
static unsigned draws;
static uint32_t draw_lo, draw_hi;

/* A "random" draw that returns draw_value, clamped to the bounds like the real one. */
static uint32_t fixed_draw(uint32_t lo, uint32_t hi)
{
	draws++;
	draw_lo = lo;
	draw_hi = hi;
	if (hi <= lo)
		return lo;
	return draw_value < lo ? lo : draw_value > hi ? hi : draw_value;
}

static void test_pad_fill_near_full(void **state)
{
	draws = 0;
	/* Within WIRE_FILL_THRESHOLD of the MTU: filled to it, no draw. */
	assert_int_equal(wire_pad_data(1452 - 100, 1452, 0, 500, fixed_draw), 100);
	assert_int_equal(wire_pad_data(1452 - WIRE_FILL_THRESHOLD, 1452, 0, 500, fixed_draw),
	                 WIRE_FILL_THRESHOLD);
	assert_int_equal(wire_pad_data(1452, 1452, 0, 500, fixed_draw), 0);
	assert_int_equal(wire_pad_data(1453, 1452, 0, 500, fixed_draw), 0);
	assert_int_equal(draws, 0);
}

static void test_pad_buckets(void **state)
{
	draws = 0;
	draw_value = 0;
	/* No random padding configured: rounded up to a multiple of 32. */
	assert_int_equal(wire_pad_data(50, 1452, 0, 0, fixed_draw), 14);
	assert_int_equal(wire_pad_data(64, 1452, 0, 0, fixed_draw), 0);
	assert_int_equal(wire_pad_data(65, 1452, 0, 0, fixed_draw), 31);
	assert_int_equal(draws, 3);
	assert_int_equal(draw_lo, 0);
	assert_int_equal(draw_hi, 0);
	/* The draw comes from the configured bounds, then the bucket. */
	draw_value = 50;
	assert_int_equal(wire_pad_data(100, 1452, 10, 50, fixed_draw), 60);
	assert_int_equal(draw_lo, 10);
	assert_int_equal(draw_hi, 50);
	draw_value = 0;
	assert_int_equal(wire_pad_data(100, 1452, 10, 50, fixed_draw), 28);   /* 10, then to 128 */
	/* Just above the fill threshold: a large draw is cut to the room left. */
	draw_value = 1000;
	assert_int_equal(wire_pad_data(1452 - WIRE_FILL_THRESHOLD - 1, 1452, 0, 1000, fixed_draw),
	                 WIRE_FILL_THRESHOLD + 1);
}

/* Every length and draw: never past the MTU; full-size or a bucket multiple. */
static void test_pad_invariants(void **state)
{
	static const uint32_t values[] = { 0, 1, 31, 32, 200, 1400, 70000 };

	for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
		draw_value = values[v];
		for (size_t sealed = WIRE_DATA_OVERHEAD; sealed <= 1452; sealed++) {
			size_t pad = wire_pad_data(sealed, 1452, 0, 2000, fixed_draw);

			assert_true(sealed + pad <= 1452);
			assert_true(sealed + pad == 1452 || (sealed + pad) % WIRE_PAD_BUCKET == 0);
			if (1452 - sealed <= WIRE_FILL_THRESHOLD)
				assert_int_equal(sealed + pad, 1452);
		}
	}
}

static void test_pad_handshake(void **state)
{
	draw_value = 500;
	assert_int_equal(wire_pad_handshake(HS_HELLO_MIN, HS_MAX, 1452, 16, 900, fixed_draw), 500);
	assert_int_equal(draw_lo, 16);
	assert_int_equal(draw_hi, 900);
	draw_value = 5000;
	/* Capped by the handshake maximum ... */
	assert_int_equal(wire_pad_handshake(HS_HELLO_MIN, HS_MAX, 1452, 0, 5000, fixed_draw),
	                 HS_MAX - HS_HELLO_MIN);
	/* ... and by a smaller datagram size. */
	assert_int_equal(wire_pad_handshake(HS_REPLY_MIN, HS_MAX, 600, 0, 5000, fixed_draw),
	                 600 - HS_REPLY_MIN);
	/* A datagram too small for any padding. */
	assert_int_equal(wire_pad_handshake(HS_HELLO_MIN, HS_MAX, 50, 0, 5000, fixed_draw), 0);
	draw_value = 0;
	assert_int_equal(wire_pad_handshake(HS_HELLO_MIN, HS_MAX, 1452, 0, 0, fixed_draw), 0);
}

/* ---------- per-bridge size distribution ---------- */

static void seed_fill(uint8_t seed[WIRE_DIST_SEED_LEN], uint8_t v)
{
	for (size_t i = 0; i < WIRE_DIST_SEED_LEN; i++)
		seed[i] = (uint8_t)(v * 131 + i * 29 + (v ^ i));
}

/* Deterministic; targets distinct, ascending, in bounds; weights non-zero. */
static void test_dist_derive(void **state)
{
	uint8_t seed[WIRE_DIST_SEED_LEN];
	struct wire_pad_dist a, b;
	static const size_t mtus[] = { 1452, 1200, 576, 300 };

	for (size_t m = 0; m < sizeof(mtus) / sizeof(mtus[0]); m++) {
		for (unsigned v = 0; v < 64; v++) {
			seed_fill(seed, (uint8_t)v);
			wire_pad_dist_derive(seed, mtus[m], &a);
			wire_pad_dist_derive(seed, mtus[m], &b);
			assert_memory_equal(&a, &b, sizeof(a));
			assert_int_equal(a.n, WIRE_DIST_N);
			for (unsigned i = 0; i < a.n; i++) {
				assert_true(a.len[i] >= WIRE_DIST_LO && a.len[i] <= WIRE_DIST_HI);
				assert_true(mtus[m] - a.len[i] > WIRE_FILL_THRESHOLD);
				assert_true(i == 0 || a.len[i] > a.len[i - 1]);
				assert_true(a.weight[i] >= 1 && a.weight[i] <= 256);
			}
		}
	}
	/* No room below the fill threshold: no distribution. */
	wire_pad_dist_derive(seed, WIRE_FILL_THRESHOLD + 40, &a);
	assert_int_equal(a.n, 0);
}

/* Two keys give two different distributions; one key always the same. */
static void test_dist_per_bridge(void **state)
{
	struct wire_identity k1, k2;
	struct wire_pad_dist a, b, c;

	assert_int_equal(wire_identity_generate(&k1), 0);
	assert_int_equal(wire_identity_generate(&k2), 0);
	assert_int_equal(wire_size_dist(&k1.cert, 1452, &a), 0);
	assert_int_equal(wire_size_dist(&k1.cert, 1452, &c), 0);
	assert_int_equal(wire_size_dist(&k2.cert, 1452, &b), 0);
	assert_memory_equal(&a, &c, sizeof(a));
	assert_int_equal(a.n, WIRE_DIST_N);
	assert_true(memcmp(a.len, b.len, sizeof(a.len)) != 0);
}

/* The vector in docs/PROTOCOL.md ("Data packets"): the test-vector bridge. */
static void test_dist_vector(void **state)
{
	static const uint8_t pub[32] = {
		0x07, 0xa3, 0x7c, 0xbc, 0x14, 0x20, 0x93, 0xc8, 0xb7, 0x55, 0xdc, 0x1b, 0x10, 0xe8,
		0x6c, 0xb4, 0x26, 0x37, 0x4a, 0xd1, 0x6a, 0xa8, 0x53, 0xed, 0x0b, 0xdf, 0xc0, 0xb2,
		0xb8, 0x6d, 0x1c, 0x7c,
	};
	static const uint16_t lens[WIRE_DIST_N] = { 135, 150, 268, 280, 405, 448, 504, 604 };
	static const uint16_t weights[WIRE_DIST_N] = { 173, 176, 255, 62, 223, 99, 152, 203 };
	struct wire_cert cert;
	struct wire_pad_dist d;

	memset(&cert, 0, sizeof(cert));
	memcpy(cert.pub, pub, sizeof(pub));
	assert_int_equal(wire_size_dist(&cert, 1452, &d), 0);
	assert_memory_equal(d.len, lens, sizeof(lens));
	assert_memory_equal(d.weight, weights, sizeof(weights));
}

/* Shaped padding lands exactly on a target the packet fits, weighted. */
static void test_dist_shaped(void **state)
{
	uint8_t seed[WIRE_DIST_SEED_LEN];
	struct wire_pad_dist d;
	size_t pad;

	seed_fill(seed, 7);
	wire_pad_dist_derive(seed, 1452, &d);
	/* A draw of 0 picks the first target that fits. */
	draw_value = 0;
	assert_int_equal(54 + wire_pad_shaped(&d, 54, 1452, 0, 0, fixed_draw),
	                 d.len[0] >= 54 ? d.len[0] : d.len[1]);
	assert_int_equal(d.len[3] - 1 + wire_pad_shaped(&d, d.len[3] - 1, 1452, 0, 0, fixed_draw),
	                 d.len[3]);
	/* The largest draw picks the last target. */
	draw_value = 1u << 30;
	pad = wire_pad_shaped(&d, 54, 1452, 0, 0, fixed_draw);
	/* (the random padding draw also saturates: want is past every target) */
	assert_true(54 + pad == 1452 - WIRE_FILL_THRESHOLD - 1 || (54 + pad) % WIRE_PAD_BUCKET == 0 ||
	            54 + pad == d.len[WIRE_DIST_N - 1]);
	/* Past every target, near full, no distribution: as wire_pad_data. */
	draw_value = 0;
	assert_int_equal(wire_pad_shaped(&d, d.len[WIRE_DIST_N - 1] + 1, 1452, 0, 0, fixed_draw),
	                 wire_pad_data(d.len[WIRE_DIST_N - 1] + 1, 1452, 0, 0, fixed_draw));
	assert_int_equal(wire_pad_shaped(&d, 1400, 1452, 0, 0, fixed_draw), 52);
	assert_int_equal(wire_pad_shaped(NULL, 50, 1452, 0, 0, fixed_draw), 14);
	/* Every length and draw: within the datagram; a target, a bucket or full. */
	for (uint32_t v = 0; v < 2000; v += 97) {
		draw_value = v;
		for (size_t sealed = WIRE_DATA_OVERHEAD; sealed <= 1460; sealed++) {
			size_t t;
			int target = 0;

			pad = wire_pad_shaped(&d, sealed, 1452, 0, 300, fixed_draw);
			t = sealed + pad;
			if (sealed >= 1452) {
				assert_int_equal(pad, 0);
				continue;
			}
			assert_true(t <= 1452);
			for (unsigned i = 0; i < d.n; i++)
				target |= t == d.len[i];
			assert_true(target || t == 1452 || t % WIRE_PAD_BUCKET == 0);
		}
	}
}

/* Runs: the first packets drawn afresh, then one target kept for a run. */
static void test_dist_runs(void **state)
{
	uint8_t seed[WIRE_DIST_SEED_LEN];
	struct wire_pad_dist d;
	struct wire_pad_run run;
	size_t t, first;

	seed_fill(seed, 9);
	wire_pad_dist_derive(seed, 1452, &d);
	memset(&run, 0, sizeof(run));
	draws = 0;
	draw_value = 0;
	for (unsigned i = 0; i < WIRE_RUN_FRESH; i++)
		(void)wire_pad_shaped_run(&d, &run, 1000, 60, 1452, 0, 0, fixed_draw);
	assert_int_equal(run.fresh, WIRE_RUN_FRESH);
	assert_int_equal(run.left, 0);
	/* A draw: the target, then a run of WIRE_RUN_MIN - 1 more (the draw is 0 -> min). */
	draw_value = 0;
	first = 60 + wire_pad_shaped_run(&d, &run, 1000, 60, 1452, 0, 0, fixed_draw);
	assert_int_equal(first, d.len[0] >= 60 ? d.len[0] : d.len[1]);
	assert_int_equal(run.left, WIRE_RUN_MIN - 1);
	draws = 0;
	for (unsigned i = 0; i < WIRE_RUN_MIN - 1; i++) {
		t = 58 + wire_pad_shaped_run(&d, &run, 1000, 58, 1452, 0, 0, fixed_draw);
		assert_int_equal(t, first);
	}
	assert_int_equal(draws, 0);
	/* A packet larger than the kept target draws afresh. */
	t = d.len[5] + wire_pad_shaped_run(&d, &run, 1000, d.len[5], 1452, 0, 0, fixed_draw);
	assert_true(t >= d.len[5] && draws > 0);
	/* A packet after a pause draws afresh and starts a new run. */
	run.left = 5;
	draws = 0;
	(void)wire_pad_shaped_run(&d, &run, 1000 + WIRE_RUN_GAP_MS + 1, 60, 1452, 0, 0, fixed_draw);
	assert_true(draws > 0);
	run.last_ms = 1000;
	/* Near-full packets and --pad are not affected. */
	assert_int_equal(wire_pad_shaped_run(&d, &run, 1000, 1400, 1452, 0, 0, fixed_draw), 52);
	run.left = 5;
	run.len = d.len[7];
	draws = 0;
	draw_value = 0;
	(void)wire_pad_shaped_run(&d, &run, 1000, 50, 1452, 0, 10, fixed_draw);
	assert_true(draws > 0);
	assert_int_equal(run.left, 5);
}

/* ---------- links over loopback ---------- */

enum free_when { FREE_NEVER, FREE_IN_ACCEPT, FREE_IN_RECV, FREE_IN_READY };

struct lab {
	struct event_base *base;
	struct wire_identity id;
	struct wire_config scfg, ccfg;
	struct wire_listener *wl;
	struct wire_endpoint ep;
	struct wire_link *client, *server;
	enum free_when server_free, client_free;
	int ready, ready_ok, accepted, received;
	size_t mtu_after_free;
};

static void on_server_recv(struct wire_link *l, const uint8_t *pkt, size_t len, void *arg)
{
	struct lab *lab = arg;

	lab->received++;
	if (lab->server_free == FREE_IN_RECV) {
		wire_link_free(l);
		lab->server = NULL;
		/* Still valid memory until the loop runs again. */
		lab->mtu_after_free = wire_link_mtu(l);
	}
}

static void on_accept(struct wire_listener *wl, struct wire_link *l, void *arg)
{
	struct lab *lab = arg;

	lab->accepted++;
	if (lab->server_free == FREE_IN_ACCEPT) {
		wire_link_free(l);
		lab->mtu_after_free = wire_link_mtu(l);
		return;
	}
	lab->server = l;
	wire_link_set_recv(l, on_server_recv, lab);
}

static void on_ready(struct wire_link *l, int ok, const char *why, void *arg)
{
	struct lab *lab = arg;

	lab->ready = 1;
	lab->ready_ok = ok;
	if (lab->client_free == FREE_IN_READY || !ok) {
		/* Inside the carrier's receive callback (ok) or our timer (!ok). */
		wire_link_free(l);
		lab->client = NULL;
		lab->mtu_after_free = wire_link_mtu(l);
	}
}

static void lab_setup(struct lab *lab, int tcp)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&lab->ep.addr;

	memset(lab, 0, sizeof(*lab));
	log_set_level(LOG_LEVEL_ERR);
	fault_reset();
	lab->base = event_base_new();
	assert_non_null(lab->base);
	assert_int_equal(wire_identity_generate(&lab->id), 0);
	wire_config_defaults(&lab->scfg);
	lab->scfg.identity = &lab->id;
	wire_config_defaults(&lab->ccfg);
	lab->ccfg.cert = &lab->id.cert;
	lab->ccfg.handshake_timeout_ms = 1500;
	lab->ep.tcp = tcp;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lab->ep.len = sizeof(*sin);
	lab->wl = wire_listener_new(lab->base, &lab->ep, &lab->scfg, on_accept, lab);
	assert_non_null(lab->wl);
	assert_int_equal(wire_listener_local_addr(lab->wl, 0, &lab->ep.addr, &lab->ep.len), 0);
}

static void lab_teardown(struct lab *lab)
{
	wire_link_free(lab->client);
	wire_link_free(lab->server);
	wire_listener_free(lab->wl);
	/* Let deferred frees run before the base goes. */
	event_base_loop(lab->base, EVLOOP_NONBLOCK);
	event_base_free(lab->base);
	fault_reset();
	log_set_level(LOG_LEVEL_INFO);
}

static const int never;

/* Run the loop until *flag is set or ms pass. */
static void lab_run(struct lab *lab, const int *flag, unsigned ms)
{
	struct timespec start = clock_now();

	while (!*flag && clock_ms_since(&start) < ms)
		event_base_loop(lab->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	/* One more round, for deferred frees and packets in flight. */
	event_base_loop(lab->base, EVLOOP_NONBLOCK);
}

static void lab_connect(struct lab *lab)
{
	lab->client = wire_link_connect(lab->base, &lab->ep, 1, &lab->ccfg, on_ready, lab);
	assert_non_null(lab->client);
}

static void test_link_round_trip(void **state)
{
	struct lab lab;
	uint8_t pkt[100] = { 1, 2, 3 };

	lab_setup(&lab, 0);
	lab_connect(&lab);
	lab_run(&lab, &lab.ready, 3000);
	assert_true(lab.ready_ok);
	assert_int_equal(lab.accepted, 1);
	assert_int_equal(wire_link_send(lab.client, pkt, sizeof(pkt)), 0);
	lab_run(&lab, &lab.received, 2000);
	assert_int_equal(lab.received, 1);
	assert_int_equal(wire_listener_peers(lab.wl), 1);
	lab_teardown(&lab);
}

/*
 * The layer above frees the client link from inside its ready callback,
 * which runs inside the TCP carrier's receive callback: the carrier goes
 * on using its connection afterwards, so the free must wait for the loop.
 */
static void test_free_in_ready_over_tcp(void **state)
{
	struct lab lab;

	lab_setup(&lab, 1);
	lab.client_free = FREE_IN_READY;
	lab_connect(&lab);
	lab_run(&lab, &lab.ready, 3000);
	assert_true(lab.ready_ok);
	assert_null(lab.client);
	assert_int_equal(lab.mtu_after_free, 1452 - WIRE_DATA_OVERHEAD);
	lab_run(&lab, &lab.received, 300);   /* the server sees the connection end */
	lab_teardown(&lab);
}

/* The handshake fails (no answer) and the client link is freed in the report. */
static void test_free_in_failed_ready(void **state)
{
	struct lab lab;
	struct wire_cert wrong;

	lab_setup(&lab, 0);
	lab.ccfg.handshake_timeout_ms = 300;
	wrong = lab.id.cert;
	wrong.secret[0] ^= 1;   /* a cert the server does not answer */
	lab.ccfg.cert = &wrong;
	lab_connect(&lab);
	lab_run(&lab, &lab.ready, 3000);
	assert_true(lab.ready);
	assert_false(lab.ready_ok);
	assert_null(lab.client);
	assert_int_equal(lab.accepted, 0);
	lab_teardown(&lab);
}

/* A server frees a new link in its accept callback (e.g. shutting down). */
static void test_free_in_accept(void **state)
{
	struct lab lab;

	for (int tcp = 0; tcp <= 1; tcp++) {
		lab_setup(&lab, tcp);
		lab.server_free = FREE_IN_ACCEPT;
		lab_connect(&lab);
		lab_run(&lab, &lab.ready, 3000);
		assert_int_equal(lab.accepted, 1);
		assert_int_equal(wire_listener_peers(lab.wl), 0);
		assert_int_equal(lab.mtu_after_free, 1452 - WIRE_DATA_OVERHEAD);
		lab_teardown(&lab);
	}
}

/* A server frees its link from inside the link's receive callback. */
static void test_free_in_recv(void **state)
{
	struct lab lab;
	uint8_t pkt[64] = { 9 };

	for (int tcp = 0; tcp <= 1; tcp++) {
		lab_setup(&lab, tcp);
		lab.server_free = FREE_IN_RECV;
		lab_connect(&lab);
		lab_run(&lab, &lab.ready, 3000);
		assert_true(lab.ready_ok);
		/* Two packets, likely in one carrier batch: the second finds no link. */
		assert_int_equal(wire_link_send(lab.client, pkt, sizeof(pkt)), 0);
		assert_int_equal(wire_link_send(lab.client, pkt, sizeof(pkt)), 0);
		lab_run(&lab, &lab.received, 2000);
		assert_int_equal(lab.received, 1);
		assert_null(lab.server);
		assert_int_equal(wire_listener_peers(lab.wl), 0);
		lab_run(&lab, &never, 200);   /* nothing else arrives */
		assert_int_equal(lab.received, 1);
		lab_teardown(&lab);
	}
}

static void skip_without_faults(void)
{
	if (!FAULT_INJECTION_BUILT)
		skip();
}

/* Each event of a client link can fail to be allocated: no link, no leak. */
static void test_fault_client_events(void **state)
{
	static const char *sites[] = { "wire_free_ev", "wire_hs_timer", "wire_path_timer" };
	struct lab lab;

	skip_without_faults();
	for (size_t i = 0; i < sizeof(sites) / sizeof(sites[0]); i++) {
		lab_setup(&lab, 0);
		fault_arm(sites[i], 1, 1);
		assert_null(wire_link_connect(lab.base, &lab.ep, 1, &lab.ccfg, on_ready, &lab));
		assert_int_equal(fault_fired(sites[i]), 1);
		/* The next attempt works. */
		lab_connect(&lab);
		lab_run(&lab, &lab.ready, 3000);
		assert_true(lab.ready_ok);
		lab_teardown(&lab);
	}
}

/*
 * The server cannot allocate a new link's free event: the HELLO is not
 * answered, nothing is admitted, and the client reports no answer.
 */
static void test_fault_server_link(void **state)
{
	struct lab lab;
	struct wire_stats st;

	skip_without_faults();
	lab_setup(&lab, 0);
	lab.ccfg.handshake_timeout_ms = 1200;
	lab_connect(&lab);
	fault_arm("wire_free_ev", 1, 0);
	lab_run(&lab, &lab.ready, 3000);
	assert_true(lab.ready);
	assert_false(lab.ready_ok);
	assert_int_equal(lab.accepted, 0);
	assert_int_equal(wire_listener_peers(lab.wl), 0);
	assert_true(fault_fired("wire_free_ev") >= 1);
	wire_listener_stats(lab.wl, &st);
	assert_int_equal(st.hs_ok, 0);
	/* Memory back: the client's next attempt is admitted. */
	fault_reset();
	lab.ready = 0;
	lab_connect(&lab);
	lab_run(&lab, &lab.ready, 3000);
	assert_true(lab.ready_ok);
	assert_int_equal(lab.accepted, 1);
	lab_teardown(&lab);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pad_fill_near_full),
		cmocka_unit_test(test_pad_buckets),
		cmocka_unit_test(test_pad_invariants),
		cmocka_unit_test(test_pad_handshake),
		cmocka_unit_test(test_dist_derive),
		cmocka_unit_test(test_dist_per_bridge),
		cmocka_unit_test(test_dist_vector),
		cmocka_unit_test(test_dist_shaped),
		cmocka_unit_test(test_dist_runs),
		cmocka_unit_test(test_link_round_trip),
		cmocka_unit_test(test_free_in_ready_over_tcp),
		cmocka_unit_test(test_free_in_failed_ready),
		cmocka_unit_test(test_free_in_accept),
		cmocka_unit_test(test_free_in_recv),
		cmocka_unit_test(test_fault_client_events),
		cmocka_unit_test(test_fault_server_link),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
