/*
 * Unit tests for util/fdbudget.h: the descriptor budget keeps its reserve
 * and sees closes at the next scan; a listener out of descriptors pauses
 * with a growing interval instead of spinning, and serves again once
 * descriptors are free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <cmocka.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "util/fdbudget.h"
#include "util/log.h"

static unsigned long count_open(void)
{
	unsigned long n = 0;

	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

static void set_nofile(rlim_t cur)
{
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = cur;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static void test_budget_reserve(void **state)
{
	struct rlimit saved;
	unsigned long used;
	int n = 0;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	usleep(60 * 1000);            /* the next take rescans */
	used = count_open();
	set_nofile(used + 40);
	/* 40 free, 32 reserved: 8 can be taken, then no more. */
	while (n < 100 && fd_budget_take(1, 32))
		n++;
	assert_int_equal(n, 8);
	assert_int_equal(fd_budget_take(1, 32), 0);
	assert_true(fd_budget_take(1, 16));    /* a smaller reserve still has room */
	/* Nothing was really opened: the next scan (after 50 ms) sees that. */
	usleep(60 * 1000);
	assert_true(fd_budget_take(1, 32));
	assert_true(fd_budget_limit() == used + 40);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

struct lstate {
	struct accept_pause pause;
	int accepted, errors;
};

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
	struct lstate *ls = arg;

	accept_pause_ok(&ls->pause);
	ls->accepted++;
	close(fd);
}

static void on_error(struct evconnlistener *l, void *arg)
{
	struct lstate *ls = arg;

	ls->errors++;
	accept_pause_error(&ls->pause, EVUTIL_SOCKET_ERROR());
}

static void run_for(struct event_base *base, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static void test_accept_pause(void **state)
{
	static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10.0, 3);
	struct event_base *base = event_base_new();
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	struct evconnlistener *l;
	struct lstate ls;
	struct rlimit saved;
	int fill[200], nfill = 0, c;

	(void)state;
	assert_non_null(base);
	memset(&ls, 0, sizeof(ls));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = evconnlistener_new_bind(base, on_accept, &ls, LEV_OPT_CLOSE_ON_FREE, 16,
	                            (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(l);
	assert_int_equal(accept_pause_init(&ls.pause, base, l, &rl, "test: "), 0);
	evconnlistener_set_error_cb(l, on_error);
	assert_int_equal(getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &sl), 0);
	c = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c >= 0);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	/* No descriptor left: accept() fails with EMFILE. */
	set_nofile(count_open() + 20);
	while (nfill < 200 && (fill[nfill] = dup(0)) >= 0)
		nfill++;
	assert_int_equal(errno, EMFILE);
	log_set_level(LOG_LEVEL_NONE);
	assert_int_equal(connect(c, (struct sockaddr *)&sin, sl), 0);   /* in the backlog */
	run_for(base, 1000);
	/* 50, 100, 200, 400 ms pauses fit in a second: a handful of tries, no spin. */
	assert_int_equal(ls.accepted, 0);
	assert_true(ls.errors >= 2);
	assert_true(ls.errors <= 8);
	while (nfill > 0)
		close(fill[--nfill]);
	for (int i = 0; i < 30 && ls.accepted == 0; i++)
		run_for(base, 100);
	assert_int_equal(ls.accepted, 1);
	assert_int_equal(ls.pause.ms, 0);
	log_set_level(LOG_LEVEL_NOTICE);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
	close(c);
	accept_pause_clear(&ls.pause);
	evconnlistener_free(l);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_reserve),
		cmocka_unit_test(test_accept_pause),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
