/*
 * Unit tests for the application layer's event-loop helpers: the one
 * graceful shutdown (app/shutdown.c) with its grace period, early end and
 * timer failure; the exit signals (util/sig.h); and the managed client's
 * bridge pool (app/bridge.c): sharing, the size limit, and a failed timer.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>
#include <event2/event.h>

#include "app/app.h"
#include "util/clock.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/sig.h"

struct fake {
	unsigned busy;
	int stops, closes;
	double close_at_ms;         /* since the test's start */
	struct timespec t0;
};

static unsigned fake_busy(void *arg)
{
	return ((struct fake *)arg)->busy;
}

static void fake_stop(void *arg)
{
	((struct fake *)arg)->stops++;
}

static void fake_close(void *arg)
{
	struct fake *f = arg;

	f->closes++;
	f->close_at_ms = clock_ms_since(&f->t0);
}

static int setup(void **state)
{
	log_set_level(LOG_LEVEL_NONE);
	fault_reset();
	*state = event_base_new();
	return *state == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	fault_reset();
	event_base_free(*state);
	return 0;
}

/* Nothing open: close at once, exit the loop shortly after; a second call exits now. */
static void test_shutdown_idle(void **state)
{
	struct event_base *base = *state;
	struct app_shutdown sd;
	struct fake f = { 0 };

	f.t0 = clock_now();
	app_shutdown_init(&sd, base, fake_busy, fake_stop, fake_close, &f);
	assert_false(app_shutdown_started(&sd));
	assert_int_equal(app_shutdown_begin(&sd, "test"), 0);
	assert_true(app_shutdown_started(&sd));
	assert_int_equal(f.stops, 1);
	assert_int_equal(f.closes, 1);
	event_base_dispatch(base);
	assert_true(clock_ms_since(&f.t0) < 1000);
	assert_int_equal(app_shutdown_begin(&sd, "test"), 1);
	assert_int_equal(f.stops, 1);
	app_shutdown_release(&sd);
}

static void become_idle(evutil_socket_t fd, short what, void *arg)
{
	((struct fake *)arg)->busy = 0;
}

/* Connections that finish within the grace period end it early. */
static void test_shutdown_ends_when_idle(void **state)
{
	struct event_base *base = *state;
	struct app_shutdown sd;
	struct fake f = { .busy = 2 };
	struct timeval later = { 0, 300000 };

	f.t0 = clock_now();
	app_shutdown_init(&sd, base, fake_busy, fake_stop, fake_close, &f);
	assert_int_equal(event_base_once(base, -1, EV_TIMEOUT, become_idle, &f, &later), 0);
	assert_int_equal(app_shutdown_begin(&sd, "test"), 0);
	assert_int_equal(f.closes, 0);
	event_base_dispatch(base);
	assert_int_equal(f.closes, 1);
	assert_true(f.close_at_ms >= 290 && f.close_at_ms < 1500);
	app_shutdown_release(&sd);
}

/* Connections that never finish are closed when the grace period is over. */
static void test_shutdown_grace_expires(void **state)
{
	struct event_base *base = *state;
	struct app_shutdown sd;
	struct fake f = { .busy = 1 };

	f.t0 = clock_now();
	app_shutdown_init(&sd, base, fake_busy, fake_stop, fake_close, &f);
	assert_int_equal(app_shutdown_begin(&sd, "test"), 0);
	event_base_dispatch(base);
	assert_int_equal(f.closes, 1);
	assert_true(f.close_at_ms >= APP_SHUTDOWN_GRACE_MS - 10);
	assert_true(f.close_at_ms < APP_SHUTDOWN_GRACE_MS + 1500);
	app_shutdown_release(&sd);
}

/* Without its timer the shutdown cannot wait: it closes now instead of hanging. */
static void test_shutdown_timer_fails(void **state)
{
	struct event_base *base = *state;
	struct app_shutdown sd;
	struct fake f = { .busy = 5 };

	if (!FAULT_INJECTION_BUILT)
		skip();
	f.t0 = clock_now();
	app_shutdown_init(&sd, base, fake_busy, fake_stop, fake_close, &f);
	fault_arm("shutdown_event_new", 1, 1);
	assert_int_equal(app_shutdown_begin(&sd, "test"), 0);
	assert_int_equal(f.stops, 1);
	assert_int_equal(f.closes, 1);
	event_base_dispatch(base);
	assert_true(clock_ms_since(&f.t0) < 1000);
	app_shutdown_release(&sd);
}

static void on_sig(int sig, void *arg)
{
	*(int *)arg = sig;
}

static void send_term(evutil_socket_t fd, short what, void *arg)
{
	raise(SIGTERM);
}

static void test_signal(void **state)
{
	struct event_base *base = *state;
	struct timeval soon = { 0, 10000 }, stop = { 1, 0 };
	int got = 0;

	if (FAULT_INJECTION_BUILT) {
		fault_arm("sig_evsignal_new", 1, 1);
		assert_int_equal(sig_on_exit(base, on_sig, &got), -1);
	}
	assert_int_equal(sig_on_exit(base, on_sig, &got), 0);
	assert_int_equal(event_base_once(base, -1, EV_TIMEOUT, send_term, NULL, &soon), 0);
	event_base_loopexit(base, &stop);
	while (got == 0 && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	assert_int_equal(got, SIGTERM);
}

static struct bridge_pool *pool_new(struct event_base *base)
{
	struct bridge_pool_config bc;

	memset(&bc, 0, sizeof(bc));
	app_tunnel_defaults(&bc.tun);
	bc.open_timeout = 5;
	return bridge_pool_new(base, &bc);
}

static void bridge_addr(struct sockaddr_in *sin, unsigned i)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(0xc0000200u + (i & 0xff));   /* 192.0.2.x */
	sin->sin_port = htons((uint16_t)(4000 + i));
}

static void test_bridge_pool(void **state)
{
	struct event_base *base = *state;
	struct bridge_pool *bp = pool_new(base);
	struct wire_cert cert;
	struct sockaddr_in sin;
	struct upstream *a, *b, *c;

	assert_non_null(bp);
	memset(&cert, 0x11, sizeof(cert));
	bridge_addr(&sin, 1);
	a = bridge_pool_get(bp, (struct sockaddr *)&sin, sizeof(sin), "cert=A", &cert, NULL, 0, 0);
	b = bridge_pool_get(bp, (struct sockaddr *)&sin, sizeof(sin), "cert=A", &cert, NULL, 0, 0);
	c = bridge_pool_get(bp, (struct sockaddr *)&sin, sizeof(sin), "cert=B", &cert, NULL, 0, 0);
	assert_non_null(a);
	assert_ptr_equal(a, b);          /* same bridge line: one association */
	assert_non_null(c);
	assert_ptr_not_equal(a, c);      /* other arguments: another one */
	assert_int_equal(bridge_pool_busy(bp), 0);
	/* Full of idle bridges: the one unused the longest makes room. */
	for (unsigned i = 2; i < BRIDGE_MAX + 10; i++) {
		bridge_addr(&sin, i);
		assert_non_null(bridge_pool_get(bp, (struct sockaddr *)&sin, sizeof(sin), "cert=A",
		                                &cert, NULL, 0, 0));
	}
	bridge_pool_stop(bp);
	bridge_pool_close(bp);
	bridge_pool_free(bp);
	assert_int_equal(bridge_pool_busy(NULL), 0);
	bridge_pool_free(NULL);
}

static void test_bridge_pool_timer_fails(void **state)
{
	if (!FAULT_INJECTION_BUILT)
		skip();
	fault_arm("bridge_reap_event_new", 1, 1);
	assert_null(pool_new(*state));
	assert_non_null(*state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shutdown_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_ends_when_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_grace_expires, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_timer_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bridge_pool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bridge_pool_timer_fails, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
