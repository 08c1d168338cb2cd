/*
 * Unit tests for wire/srclimit: per-source handshake buckets and pending
 * sessions, fed raw addresses and a virtual clock (milliseconds).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "wire/srclimit.h"

/* An address from text ("1.2.3.4" or "2001:db8::1") and a port. */
static struct sockaddr_storage addr(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

/* A limiter with small, round numbers. */
static struct srclimit *small(unsigned max_peers)
{
	struct srclimit_config c;
	struct srclimit *sl;

	srclimit_config_defaults(&c, max_peers);
	c.host_rate = 2;
	c.host_burst = 4;
	c.net_rate = 5;
	c.net_burst = 10;
	c.table_size = 64;
	c.pending_host = 2;
	c.pending_net = 3;
	c.pending_ttl_ms = 10000;
	c.pending_grace_ms = 2000;
	sl = srclimit_new(&c, 12345);
	assert_non_null(sl);
	return sl;
}

/* How many of n handshakes from ip are allowed at time t. */
static unsigned takes(struct srclimit *sl, const char *ip, unsigned n, uint64_t t)
{
	struct sockaddr_storage ss = addr(ip, 1000);
	unsigned ok = 0;

	for (unsigned i = 0; i < n; i++)
		ok += (unsigned)srclimit_hs_take(sl, SA(ss), t);
	return ok;
}

static void test_defaults(void **state)
{
	struct srclimit_config c;

	srclimit_config_defaults(&c, 256);
	assert_int_equal(c.pending_max, 256);
	assert_true(c.host_rate > 0 && c.host_burst >= c.host_rate);
	assert_true(c.net_rate >= c.host_rate && c.net_burst >= c.host_burst);
	assert_true(c.pending_net >= c.pending_host && c.pending_host > 0);
	assert_true(c.pending_grace_ms < c.pending_ttl_ms);
}

/* One host: the burst, then the rate; ports do not matter. */
static void test_host_bucket(void **state)
{
	struct srclimit *sl = small(16);
	struct sockaddr_storage a = addr("192.0.2.1", 1), b = addr("192.0.2.1", 2);
	uint64_t t = 1000;

	assert_int_equal(srclimit_hs_take(sl, SA(a), t), 1);
	assert_int_equal(srclimit_hs_take(sl, SA(b), t), 1);
	assert_int_equal(takes(sl, "192.0.2.1", 10, t), 2);   /* burst 4 in all */
	assert_int_equal(takes(sl, "192.0.2.1", 10, t + 499), 0);
	assert_int_equal(takes(sl, "192.0.2.1", 10, t + 500), 1);   /* 2/s */
	assert_int_equal(takes(sl, "192.0.2.1", 10, t + 1500), 2);
	/* long idle: back to the burst, not more */
	assert_int_equal(takes(sl, "192.0.2.1", 100, t + 100000), 4);
	/* a clock that goes back adds nothing and breaks nothing */
	assert_int_equal(takes(sl, "192.0.2.1", 10, t), 0);
	srclimit_free(sl);
}

/* The /24 is shared: other hosts of it run out together; other /24s do not. */
static void test_net_bucket(void **state)
{
	struct srclimit *sl = small(16);
	unsigned ok = 0;
	char ip[32];

	for (int h = 1; h <= 20; h++) {
		snprintf(ip, sizeof(ip), "198.51.100.%d", h);
		ok += takes(sl, ip, 1, 0);
	}
	assert_int_equal(ok, 10);   /* the /24's burst */
	assert_int_equal(takes(sl, "198.51.101.1", 1, 0), 1);
	/* refused by the /24: the host's own bucket was not spent */
	assert_int_equal(takes(sl, "198.51.100.77", 1, 0), 0);
	assert_int_equal(takes(sl, "198.51.100.77", 10, 200), 1);   /* net refilled 1 */
	srclimit_free(sl);
}

/* IPv6: /64 is the host, /48 the network; a v4-mapped address is IPv4. */
static void test_ipv6_prefixes(void **state)
{
	struct srclimit *sl = small(16);
	unsigned ok = 0;
	char ip[64];

	/* one /64, any interface id: one host */
	for (int i = 1; i <= 10; i++) {
		snprintf(ip, sizeof(ip), "2001:db8:1:1::%x", i * 977);
		ok += takes(sl, ip, 1, 0);
	}
	assert_int_equal(ok, 4);
	/* other /64s of the same /48 share its bucket (10, 4 spent) */
	ok = 0;
	for (int i = 2; i <= 20; i++) {
		snprintf(ip, sizeof(ip), "2001:db8:1:%x::1", i);
		ok += takes(sl, ip, 1, 0);
	}
	assert_int_equal(ok, 6);
	assert_int_equal(takes(sl, "2001:db8:2::1", 1, 0), 1);   /* another /48 */
	/* ::ffff:192.0.2.9 and 192.0.2.9 are one host */
	assert_int_equal(takes(sl, "::ffff:192.0.2.9", 3, 0), 3);
	assert_int_equal(takes(sl, "192.0.2.9", 3, 0), 1);
	srclimit_free(sl);
}

/* Other families (none today) share one bucket pair and do not crash. */
static void test_other_family(void **state)
{
	struct srclimit *sl = small(16);
	struct sockaddr_un un;
	unsigned ok = 0;

	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	for (int i = 0; i < 10; i++)
		ok += (unsigned)srclimit_hs_take(sl, (const struct sockaddr *)&un, 0);
	assert_int_equal(ok, 4);
	assert_int_equal(srclimit_hs_take(sl, NULL, 0), 0);
	srclimit_free(sl);
}

/*
 * A flood from 100,000 spoofed sources: the table stays at its size, and
 * a host that was limited before is evicted and starts again full (the
 * global bucket is the backstop), never refused forever.
 */
static void test_table_bounded(void **state)
{
	struct srclimit *sl = small(16);
	char ip[32];

	assert_int_equal(takes(sl, "203.0.113.5", 10, 0), 4);
	for (unsigned i = 0; i < 100000; i++) {
		snprintf(ip, sizeof(ip), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		(void)takes(sl, ip, 1, 1 + i / 100);
		assert_true(srclimit_table_used(sl) <= 64);
	}
	assert_int_equal(srclimit_table_used(sl), 64);
	assert_int_equal(takes(sl, "203.0.113.5", 10, 1001), 4);
	srclimit_free(sl);
}

/* The least recently used entry of a set is the one evicted. */
static void test_lru_keeps_active(void **state)
{
	struct srclimit_config c;
	struct srclimit *sl;
	char ip[32];

	srclimit_config_defaults(&c, 16);
	c.host_rate = 0.001;
	c.host_burst = 1;
	c.net_rate = 1000;
	c.net_burst = 1000;
	c.table_size = 16;   /* one set of 8 per table */
	sl = srclimit_new(&c, 1);
	assert_non_null(sl);
	assert_int_equal(takes(sl, "192.0.2.1", 1, 0), 1);
	for (unsigned i = 0; i < 1000; i++) {
		/* 192.0.2.1 keeps coming back (refused: its bucket is empty) ... */
		assert_int_equal(takes(sl, "192.0.2.1", 1, 10 + 2 * i), 0);
		/* ... while new hosts come and go */
		snprintf(ip, sizeof(ip), "10.0.%u.%u", i / 250, i % 250);
		(void)takes(sl, ip, 1, 11 + 2 * i);
	}
	srclimit_free(sl);
}

/* ---------- pending sessions ---------- */

static int owners[64];
#define OWNER(i) ((void *)&owners[i])

static enum srclimit_verdict padd(struct srclimit *sl, const char *ip, uint16_t port,
                                  uint64_t t, unsigned in_use, unsigned max, int i,
                                  void **ev)
{
	struct sockaddr_storage ss = addr(ip, port);

	return srclimit_pending_add(sl, SA(ss), t, in_use, max, OWNER(i), ev);
}

/* Per-host and per-network caps; ending one frees its place. */
static void test_pending_per_source(void **state)
{
	struct srclimit *sl = small(16);
	void *ev;

	assert_int_equal(padd(sl, "192.0.2.1", 1, 0, 0, 16, 0, &ev), SRCLIMIT_ADMIT);
	assert_null(ev);
	assert_int_equal(padd(sl, "192.0.2.1", 2, 0, 1, 16, 1, &ev), SRCLIMIT_ADMIT);
	/* a third from the same host, any port: refused */
	assert_int_equal(padd(sl, "192.0.2.1", 3, 0, 2, 16, 2, &ev), SRCLIMIT_REFUSE);
	assert_null(ev);
	/* another host of the /24: one more fits the /24's 3 */
	assert_int_equal(padd(sl, "192.0.2.2", 1, 0, 2, 16, 2, &ev), SRCLIMIT_ADMIT);
	assert_int_equal(padd(sl, "192.0.2.3", 1, 0, 3, 16, 3, &ev), SRCLIMIT_REFUSE);
	/* another /24 is not affected */
	assert_int_equal(padd(sl, "192.0.3.1", 1, 0, 3, 16, 3, &ev), SRCLIMIT_ADMIT);
	assert_int_equal(srclimit_pending_count(sl), 4);
	/* the first authenticated: the host has room again */
	srclimit_pending_del(sl, OWNER(0));
	srclimit_pending_del(sl, OWNER(0));      /* twice is harmless */
	srclimit_pending_del(sl, OWNER(40));     /* unknown is harmless */
	assert_int_equal(srclimit_pending_count(sl), 3);
	assert_int_equal(padd(sl, "192.0.2.1", 9, 1, 3, 16, 5, &ev), SRCLIMIT_ADMIT);
	{
		struct sockaddr_storage ss = addr("192.0.4.1", 9);

		/* no owner: a caller's bug, refused rather than tracked */
		assert_int_equal(srclimit_pending_add(sl, SA(ss), 1, 4, 16, NULL, &ev),
		                 SRCLIMIT_REFUSE);
	}
	srclimit_free(sl);
}

/* Expiry after the ttl, in order of age, one at a time. */
static void test_pending_expiry(void **state)
{
	struct srclimit *sl = small(16);
	void *ev;

	assert_int_equal(padd(sl, "192.0.2.1", 1, 1000, 0, 16, 0, &ev), SRCLIMIT_ADMIT);
	assert_int_equal(padd(sl, "192.0.3.1", 1, 4000, 1, 16, 1, &ev), SRCLIMIT_ADMIT);
	assert_null(srclimit_pending_expired(sl, 10999));
	assert_ptr_equal(srclimit_pending_expired(sl, 11000), OWNER(0));
	assert_null(srclimit_pending_expired(sl, 11000));
	assert_int_equal(srclimit_pending_count(sl), 1);
	assert_null(srclimit_pending_expired(sl, 13999));
	assert_ptr_equal(srclimit_pending_expired(sl, 14000), OWNER(1));
	assert_int_equal(srclimit_pending_count(sl), 0);
	/* a clock that went back expires nothing */
	assert_int_equal(padd(sl, "192.0.2.1", 1, 50000, 0, 16, 2, &ev), SRCLIMIT_ADMIT);
	assert_null(srclimit_pending_expired(sl, 100));
	srclimit_free(sl);
}

/*
 * Every slot taken: a new session displaces the oldest pending one that
 * had its grace time; none old enough means refused.  Established peers
 * (in_use beyond the pending count) are never displaced.
 */
static void test_pending_full_evicts_oldest(void **state)
{
	struct srclimit *sl = small(4);
	void *ev;

	/* 2 established peers, 2 pending from different /24s: full */
	assert_int_equal(padd(sl, "192.0.2.1", 1, 0, 2, 4, 0, &ev), SRCLIMIT_ADMIT);
	assert_int_equal(padd(sl, "192.0.3.1", 1, 500, 3, 4, 1, &ev), SRCLIMIT_ADMIT);
	/* too young to give way */
	assert_int_equal(padd(sl, "192.0.4.1", 1, 1999, 4, 4, 2, &ev), SRCLIMIT_REFUSE);
	assert_null(ev);
	/* the oldest (owner 0) is 2 s old: it gives way */
	assert_int_equal(padd(sl, "192.0.4.1", 1, 2000, 4, 4, 2, &ev), SRCLIMIT_ADMIT_EVICT);
	assert_ptr_equal(ev, OWNER(0));
	assert_int_equal(srclimit_pending_count(sl), 2);
	/* next: owner 1 (since 500), once it is 2 s old */
	assert_int_equal(padd(sl, "192.0.5.1", 1, 2499, 4, 4, 3, &ev), SRCLIMIT_REFUSE);
	assert_int_equal(padd(sl, "192.0.5.1", 1, 2500, 4, 4, 3, &ev), SRCLIMIT_ADMIT_EVICT);
	assert_ptr_equal(ev, OWNER(1));
	/* all slots established: nothing to displace */
	srclimit_pending_del(sl, OWNER(2));
	srclimit_pending_del(sl, OWNER(3));
	assert_int_equal(padd(sl, "192.0.6.1", 1, 99999, 4, 4, 4, &ev), SRCLIMIT_REFUSE);
	assert_null(ev);
	srclimit_free(sl);
}

/*
 * One holder of the cert on one address, opening handshakes from 1000
 * ports as fast as it likes, holds at most pending_host slots; a client
 * elsewhere still gets in.
 */
static void test_pending_many_ports(void **state)
{
	struct srclimit *sl = small(16);
	unsigned admitted = 0, in_use = 0;
	void *ev;

	for (int port = 1; port <= 1000; port++) {
		struct sockaddr_storage ss = addr("192.0.2.66", (uint16_t)port);
		enum srclimit_verdict v = srclimit_pending_add(sl, SA(ss), (uint64_t)port, in_use,
		                                               16, &owners[port % 64], &ev);

		if (v != SRCLIMIT_REFUSE) {
			admitted++;
			in_use++;
		}
	}
	assert_int_equal(admitted, 2);
	assert_int_equal(padd(sl, "203.0.113.1", 1, 1001, in_use, 16, 63, &ev), SRCLIMIT_ADMIT);
	srclimit_free(sl);
}

/* No pending table at all (a peer limit of 0): always refused, no crash. */
static void test_pending_zero(void **state)
{
	struct srclimit *sl = small(0);
	void *ev;

	assert_int_equal(padd(sl, "192.0.2.1", 1, 0, 0, 0, 0, &ev), SRCLIMIT_REFUSE);
	assert_null(srclimit_pending_expired(sl, 1000000));
	srclimit_free(sl);
	srclimit_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_host_bucket),
		cmocka_unit_test(test_net_bucket),
		cmocka_unit_test(test_ipv6_prefixes),
		cmocka_unit_test(test_other_family),
		cmocka_unit_test(test_table_bounded),
		cmocka_unit_test(test_lru_keeps_active),
		cmocka_unit_test(test_pending_per_source),
		cmocka_unit_test(test_pending_expiry),
		cmocka_unit_test(test_pending_full_evicts_oldest),
		cmocka_unit_test(test_pending_many_ports),
		cmocka_unit_test(test_pending_zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
