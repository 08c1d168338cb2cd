/*
 * Unit tests for util/netaddr: the parsers get raw, often hostile strings
 * (they see command-line input and CONNECT targets), and is_internal gets
 * the first and last address of every range it must refuse plus the
 * neighbours just outside, so an off-by-one in a prefix shows up here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "util/netaddr.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Build a sockaddr from a literal; the literal itself is known good. */
static void mk_sa(const char *ip, uint16_t port, struct sockaddr_storage *ss)
{
	socklen_t len;

	if (netaddr_from_numeric(ip, port, ss, &len) != 0)
		fail_msg("test bug: bad literal %s", ip);
}

/* ---- netaddr_parse_hostport ---- */

static const struct {
	const char *in;
	int allow_zero;
	const char *host;
	uint16_t port;
} hostport_ok[] = {
	{ "localhost:80", 0, "localhost", 80 },
	{ "example.com:443", 0, "example.com", 443 },
	{ "Example.COM:443", 0, "Example.COM", 443 },
	{ "1.2.3.4:1", 0, "1.2.3.4", 1 },
	{ "a:65535", 0, "a", 65535 },
	{ "my_host-1.example:8080", 0, "my_host-1.example", 8080 },
	{ "host:00080", 0, "host", 80 },        /* leading zeros are just zeros */
	{ "host:0", 1, "host", 0 },
	{ "[::1]:0", 1, "::1", 0 },
	{ "[::1]:80", 0, "::1", 80 },
	{ "[2001:db8::1]:443", 0, "2001:db8::1", 443 },
	{ "[::ffff:1.2.3.4]:5", 0, "::ffff:1.2.3.4", 5 },
	{ "[FE80::A:b:C]:65535", 0, "FE80::A:b:C", 65535 },
};

static const struct {
	const char *in;
	int allow_zero;
} hostport_bad[] = {
	{ "", 0 }, { "", 1 },
	{ ":80", 0 }, { ":0", 1 },
	{ "host:", 0 }, { "host:", 1 },
	{ "host", 0 }, { "host", 1 },
	{ "host:0", 0 },
	{ "host:65536", 0 }, { "host:65536", 1 },
	{ "host:99999999999999999999999", 1 },
	{ "host:-1", 1 },
	{ "host:+80", 0 },
	{ "host:0x50", 0 },
	{ "host:8o", 0 },
	{ "host: 80", 0 },
	{ "host:80 ", 0 },
	{ " host:80", 0 },
	{ "ho st:80", 0 },
	{ "host\t:80", 0 },
	{ "host:80\n", 0 },
	{ "host:80:90", 0 },
	{ "host::80", 0 },
	{ "user@host:80", 0 },
	{ "host/path:80", 0 },
	{ "host:80/", 0 },
	{ "host%eth0:80", 0 },
	{ "h\xc3\xb4st:80", 0 },               /* UTF-8, not IDNA */
	{ "::1:80", 0 },
	{ "::1", 0 },
	{ "fe80::1:80", 0 },
	{ "2001:db8::1:443", 0 },
	{ "[::1", 0 },
	{ "[::1]", 0 },
	{ "[::1]:", 0 },
	{ "[::1]80", 0 },
	{ "[::1]:80x", 0 },
	{ "[::1]:80]", 0 },
	{ "[::1]]:80", 0 },
	{ "[[::1]]:80", 0 },
	{ "[]:80", 0 },
	{ "[ ::1]:80", 0 },
	{ "[::1 ]:80", 0 },
	{ "[::1]:0", 0 },
	{ "[::1]:65536", 0 },
	{ "[1.2.3.4]:80", 0 },
	{ "[example.com]:80", 0 },
	{ "[fe80::1%eth0]:80", 0 },
	{ "[::1:80", 0 },
	{ "::1]:80", 0 },
	{ "host]:80", 0 },
	{ "x[::1]:80", 0 },
};

static void test_hostport_valid(void **state)
{
	size_t i;

	for (i = 0; i < N_ELEMS(hostport_ok); i++) {
		char host[NETADDR_HOST_MAX];
		uint16_t port = 12345;

		if (netaddr_parse_hostport(hostport_ok[i].in, host, sizeof(host),
		                           &port, hostport_ok[i].allow_zero) != 0)
			fail_msg("rejected \"%s\"", hostport_ok[i].in);
		assert_string_equal(host, hostport_ok[i].host);
		assert_int_equal(port, hostport_ok[i].port);
	}
}

static void test_hostport_invalid(void **state)
{
	size_t i;

	for (i = 0; i < N_ELEMS(hostport_bad); i++) {
		char host[NETADDR_HOST_MAX] = "untouched";
		uint16_t port = 4242;

		if (netaddr_parse_hostport(hostport_bad[i].in, host, sizeof(host),
		                           &port, hostport_bad[i].allow_zero) != -1)
			fail_msg("accepted \"%s\" (allow_zero=%d)",
			         hostport_bad[i].in, hostport_bad[i].allow_zero);
		/* Failure must not leave half-written outputs behind. */
		assert_string_equal(host, "untouched");
		assert_int_equal(port, 4242);
	}
}

static void test_hostport_lengths(void **state)
{
	char host[NETADDR_HOST_MAX];
	char in[NETADDR_HOST_MAX + 16];
	char small[4];
	uint16_t port;
	char *huge;

	/* 255 characters fit NETADDR_HOST_MAX with the NUL; 256 do not. */
	memset(in, 'a', NETADDR_HOST_MAX - 1);
	strcpy(in + NETADDR_HOST_MAX - 1, ":80");
	assert_int_equal(netaddr_parse_hostport(in, host, sizeof(host), &port, 0), 0);
	assert_int_equal(strlen(host), NETADDR_HOST_MAX - 1);
	memset(in, 'a', NETADDR_HOST_MAX);
	strcpy(in + NETADDR_HOST_MAX, ":80");
	assert_int_equal(netaddr_parse_hostport(in, host, sizeof(host), &port, 0), -1);

	/* hostlen is honoured exactly. */
	assert_int_equal(netaddr_parse_hostport("abcd:1", small, sizeof(small), &port, 0), -1);
	assert_int_equal(netaddr_parse_hostport("abc:1", small, sizeof(small), &port, 0), 0);
	assert_string_equal(small, "abc");
	assert_int_equal(netaddr_parse_hostport("[::1]:1", small, sizeof(small), &port, 0), 0);
	assert_string_equal(small, "::1");
	assert_int_equal(netaddr_parse_hostport("[::12]:1", small, sizeof(small), &port, 0), -1);
	assert_int_equal(netaddr_parse_hostport("a:1", small, 0, &port, 0), -1);

	/* Very long inputs of every shape. */
	huge = malloc(100000);
	assert_non_null(huge);
	memset(huge, 'a', 99999);
	huge[99999] = '\0';
	assert_int_equal(netaddr_parse_hostport(huge, host, sizeof(host), &port, 1), -1);
	huge[99990] = ':';
	assert_int_equal(netaddr_parse_hostport(huge, host, sizeof(host), &port, 1), -1);
	memset(huge, '1', 99999);
	huge[0] = 'h';
	huge[1] = ':';
	assert_int_equal(netaddr_parse_hostport(huge, host, sizeof(host), &port, 1), -1);
	memset(huge, ':', 99999);
	huge[0] = '[';
	strcpy(huge + 99990, "]:80");
	assert_int_equal(netaddr_parse_hostport(huge, host, sizeof(host), &port, 1), -1);
	free(huge);

	assert_int_equal(netaddr_parse_hostport(NULL, host, sizeof(host), &port, 0), -1);
}

/* ---- netaddr_parse_url ---- */

static const struct {
	const char *in;
	const char *scheme, *host;
	uint16_t port;
} url_ok[] = {
	{ "udp://example.com:443", "udp", "example.com", 443 },
	{ "UDP://X:1", "udp", "X", 1 },
	{ "Sctp+UDP://[::1]:5000", "sctp+udp", "::1", 5000 },
	{ "a.b-c://h:65535", "a.b-c", "h", 65535 },
	{ "tcp://10.0.0.1:9", "tcp", "10.0.0.1", 9 },
};

static const char *const url_bad[] = {
	"",
	"udp//x:1",
	"udp:/x:1",
	"udp:x:1",
	"udp:",
	"udp://",
	"://x:1",
	"//x:1",
	"x:1",
	"udp://x",
	"udp://x:",
	"udp://x:0",
	"udp://x:65536",
	"udp://x:1/",
	"udp://x:1/path",
	"udp://x:1?q",
	"udp:///x:1",
	"udp://user@x:1",
	"udp://[::1",
	"udp://::1:80",
	"udp://[::1]",
	"u_p://x:1",
	"u p://x:1",
	" udp://x:1",
	"udp ://x:1",
	"udp:// x:1",
	"ud\xc3\xbc://x:1",
};

static void test_url_valid(void **state)
{
	size_t i;

	for (i = 0; i < N_ELEMS(url_ok); i++) {
		char scheme[16], host[NETADDR_HOST_MAX];
		uint16_t port = 0;

		if (netaddr_parse_url(url_ok[i].in, scheme, sizeof(scheme), host,
		                      sizeof(host), &port) != 0)
			fail_msg("rejected \"%s\"", url_ok[i].in);
		assert_string_equal(scheme, url_ok[i].scheme);
		assert_string_equal(host, url_ok[i].host);
		assert_int_equal(port, url_ok[i].port);
	}
}

static void test_url_invalid(void **state)
{
	size_t i;

	for (i = 0; i < N_ELEMS(url_bad); i++) {
		char scheme[16] = "untouched", host[NETADDR_HOST_MAX] = "untouched";
		uint16_t port = 4242;

		if (netaddr_parse_url(url_bad[i], scheme, sizeof(scheme), host,
		                      sizeof(host), &port) != -1)
			fail_msg("accepted \"%s\"", url_bad[i]);
		assert_string_equal(scheme, "untouched");
		assert_string_equal(host, "untouched");
		assert_int_equal(port, 4242);
	}
}

static void test_url_buffers(void **state)
{
	char scheme[4], host[2];
	uint16_t port;
	char big[NETADDR_HOST_MAX];

	assert_int_equal(netaddr_parse_url("udp://x:1", scheme, 4, big, sizeof(big), &port), 0);
	assert_string_equal(scheme, "udp");
	assert_int_equal(netaddr_parse_url("udpx://x:1", scheme, 4, big, sizeof(big), &port), -1);
	assert_int_equal(netaddr_parse_url("udp://x:1", scheme, 0, big, sizeof(big), &port), -1);
	assert_int_equal(netaddr_parse_url("udp://x:1", scheme, 4, host, sizeof(host), &port), 0);
	assert_string_equal(host, "x");
	assert_int_equal(netaddr_parse_url("udp://xy:1", scheme, 4, host, sizeof(host), &port), -1);
	assert_int_equal(netaddr_parse_url(NULL, scheme, 4, big, sizeof(big), &port), -1);
}

/* ---- netaddr_from_numeric ---- */

static void test_from_numeric(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	socklen_t len = 0;
	static const uint8_t v4[4] = { 1, 2, 3, 4 };
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };

	assert_int_equal(netaddr_from_numeric("1.2.3.4", 80, &ss, &len), 0);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	memcpy(&sin, &ss, sizeof(sin));
	assert_int_equal(sin.sin_family, AF_INET);
	assert_memory_equal(&sin.sin_port, "\x00\x50", 2);   /* network order */
	assert_memory_equal(&sin.sin_addr, v4, 4);

	assert_int_equal(netaddr_from_numeric("2001:db8::1", 0x1234, &ss, &len), 0);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	memcpy(&sin6, &ss, sizeof(sin6));
	assert_int_equal(sin6.sin6_family, AF_INET6);
	assert_memory_equal(&sin6.sin6_port, "\x12\x34", 2);
	assert_memory_equal(&sin6.sin6_addr, v6, 16);
	assert_int_equal(sin6.sin6_scope_id, 0);
	assert_int_equal(sin6.sin6_flowinfo, 0);

	/* A mapped literal stays IPv6: conversion is the caller's choice. */
	assert_int_equal(netaddr_from_numeric("::ffff:1.2.3.4", 1, &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
}

static void test_from_numeric_invalid(void **state)
{
	static const char *const bad[] = {
		"", "localhost", "example.com", "1.2.3", "1.2.3.4.5", "1.2.3.256",
		" 1.2.3.4", "1.2.3.4 ", "1.2.3.4:80", "[::1]", "::1/128",
		"fe80::1%eth0", "0x7f.0.0.1", ":::", "1::2::3",
	};
	struct sockaddr_storage ss;
	socklen_t len = 77;
	size_t i;

	for (i = 0; i < N_ELEMS(bad); i++)
		if (netaddr_from_numeric(bad[i], 80, &ss, &len) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(len, 77);
	assert_int_equal(netaddr_from_numeric(NULL, 80, &ss, &len), -1);
}

/* ---- netaddr_parse_cidr ---- */

static const struct {
	const char *in;
	int family;
	const char *net;   /* expected address after host bits are cleared */
	int prefix;
} cidr_ok[] = {
	{ "10.0.0.0/8", AF_INET, "10.0.0.0", 8 },
	{ "10.1.2.3/8", AF_INET, "10.0.0.0", 8 },
	{ "127.0.0.1", AF_INET, "127.0.0.1", 32 },
	{ "1.2.3.4/32", AF_INET, "1.2.3.4", 32 },
	{ "1.2.3.4/0", AF_INET, "0.0.0.0", 0 },
	{ "0.0.0.0/0", AF_INET, "0.0.0.0", 0 },
	{ "172.31.1.1/12", AF_INET, "172.16.0.0", 12 },
	{ "192.168.1.255/31", AF_INET, "192.168.1.254", 31 },
	{ "255.255.255.255/1", AF_INET, "128.0.0.0", 1 },
	{ "fc00::/7", AF_INET6, "fc00::", 7 },
	{ "fdff::1/7", AF_INET6, "fc00::", 7 },
	{ "::1", AF_INET6, "::1", 128 },
	{ "::/0", AF_INET6, "::", 0 },
	{ "ffff::1/0", AF_INET6, "::", 0 },
	{ "ffff::/1", AF_INET6, "8000::", 1 },
	{ "2001:db8::1/128", AF_INET6, "2001:db8::1", 128 },
	{ "fe80::1:2:3:4/64", AF_INET6, "fe80::", 64 },
	{ "2001:db8:abcd:ef1f::/61", AF_INET6, "2001:db8:abcd:ef18::", 61 },
	{ "::ffff:10.9.8.7/104", AF_INET6, "::ffff:10.0.0.0", 104 },
};

static const char *const cidr_bad[] = {
	"", "/", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8",
	"10.0.0.0/8a", "10.0.0.0/ 8", "10.0.0.0/8 ", " 10.0.0.0/8", "10.0.0/8",
	"10.0.0.256/8", "10.0.0.0/8/8", "10.0.0.0//8", "10.0.0.0/0x8",
	"10.0.0.0/99999999999999999999999", "::/129", "::1/1000", "fc00::/7/8",
	"example.com/8", "localhost", "[::1]/128", "fe80::1%eth0/64",
	"1.2.3.4:80", "::1:::/64",
	"0000000000000000000000000000000000000000000000000000000000000000::/8",
};

static void test_cidr_valid(void **state)
{
	size_t i;

	for (i = 0; i < N_ELEMS(cidr_ok); i++) {
		struct netaddr_cidr c;
		uint8_t want[16] = { 0 };

		if (netaddr_parse_cidr(cidr_ok[i].in, &c) != 0)
			fail_msg("rejected \"%s\"", cidr_ok[i].in);
		assert_int_equal(inet_pton(cidr_ok[i].family, cidr_ok[i].net, want), 1);
		assert_int_equal(c.family, cidr_ok[i].family);
		assert_int_equal(c.prefix, cidr_ok[i].prefix);
		if (memcmp(c.addr, want, sizeof(want)) != 0)
			fail_msg("\"%s\": host bits not cleared", cidr_ok[i].in);
	}
}

static void test_cidr_invalid(void **state)
{
	size_t i;

	for (i = 0; i < N_ELEMS(cidr_bad); i++) {
		struct netaddr_cidr c = { .family = 99, .prefix = 77 };

		if (netaddr_parse_cidr(cidr_bad[i], &c) != -1)
			fail_msg("accepted \"%s\"", cidr_bad[i]);
		assert_int_equal(c.family, 99);
		assert_int_equal(c.prefix, 77);
	}
	assert_int_equal(netaddr_parse_cidr(NULL, &(struct netaddr_cidr){ 0 }), -1);
}

/* ---- netaddr_cidr_match ---- */

static const struct {
	const char *rule, *addr;
	int match;
} match_tab[] = {
	{ "10.0.0.0/8", "10.0.0.0", 1 },
	{ "10.0.0.0/8", "10.255.255.255", 1 },
	{ "10.0.0.0/8", "11.0.0.0", 0 },
	{ "10.0.0.0/8", "9.255.255.255", 0 },
	{ "10.0.0.0/8", "::ffff:10.1.2.3", 1 },      /* mapped -> IPv4 rule */
	{ "10.0.0.0/8", "::ffff:11.1.2.3", 0 },
	{ "10.0.0.0/8", "::10.1.2.3", 0 },           /* compatible is not mapped */
	{ "10.0.0.0/8", "::ffff:0:10.1.2.3", 0 },    /* nor is translated */
	{ "10.0.0.0/8", "64:ff9b::10.1.2.3", 0 },
	{ "10.0.0.0/8", "a00::", 0 },
	{ "127.0.0.1", "127.0.0.1", 1 },
	{ "127.0.0.1", "127.0.0.2", 0 },
	{ "127.0.0.1", "::ffff:127.0.0.1", 1 },
	{ "127.0.0.1", "::1", 0 },
	{ "172.16.0.0/12", "172.31.255.255", 1 },
	{ "172.16.0.0/12", "172.32.0.0", 0 },
	{ "172.16.0.0/12", "172.15.255.255", 0 },
	{ "0.0.0.0/0", "1.2.3.4", 1 },
	{ "0.0.0.0/0", "::ffff:1.2.3.4", 1 },
	{ "0.0.0.0/0", "::1", 0 },
	{ "0.0.0.0/0", "::", 0 },
	{ "::/0", "::1", 1 },
	{ "::/0", "1.2.3.4", 0 },                    /* family must match */
	{ "::/0", "::ffff:1.2.3.4", 1 },             /* still an IPv6 address */
	{ "::1", "::1", 1 },
	{ "::1", "::", 0 },
	{ "fc00::/7", "fc00::", 1 },
	{ "fc00::/7", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 },
	{ "fc00::/7", "fe00::", 0 },
	{ "fc00::/7", "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0 },
	{ "2001:db8::/127", "2001:db8::1", 1 },
	{ "2001:db8::/127", "2001:db8::2", 0 },
	{ "::ffff:10.0.0.0/104", "::ffff:10.1.2.3", 1 },
	{ "::ffff:10.0.0.0/104", "10.1.2.3", 0 },     /* family must match */
};

static void test_cidr_match(void **state)
{
	size_t i;

	for (i = 0; i < N_ELEMS(match_tab); i++) {
		struct netaddr_cidr c;
		struct sockaddr_storage ss;

		assert_int_equal(netaddr_parse_cidr(match_tab[i].rule, &c), 0);
		mk_sa(match_tab[i].addr, 80, &ss);
		if (netaddr_cidr_match(&c, (struct sockaddr *)&ss) != match_tab[i].match)
			fail_msg("%s in %s: expected %d", match_tab[i].addr,
			         match_tab[i].rule, match_tab[i].match);
	}
}

static void test_cidr_match_odd(void **state)
{
	struct netaddr_cidr c;
	struct sockaddr_storage ss;
	struct sockaddr_un sun;

	mk_sa("10.0.0.1", 1, &ss);
	assert_int_equal(netaddr_parse_cidr("0.0.0.0/0", &c), 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_int_equal(netaddr_cidr_match(&c, (struct sockaddr *)&sun), 0);
	assert_int_equal(netaddr_cidr_match(&c, NULL), 0);
	assert_int_equal(netaddr_cidr_match(NULL, (struct sockaddr *)&ss), 0);
	/* A hand-built rule with an impossible prefix matches nothing. */
	c.prefix = 33;
	assert_int_equal(netaddr_cidr_match(&c, (struct sockaddr *)&ss), 0);
	c.prefix = -1;
	assert_int_equal(netaddr_cidr_match(&c, (struct sockaddr *)&ss), 0);
}

/* ---- netaddr_is_internal ---- */

static const struct {
	const char *addr;
	int internal;
} internal_tab[] = {
	/* IPv4: first and last of each range, and the neighbours outside. */
	{ "0.0.0.0", 1 }, { "0.255.255.255", 1 }, { "1.0.0.0", 0 },
	{ "9.255.255.255", 0 }, { "10.0.0.0", 1 }, { "10.255.255.255", 1 },
	{ "11.0.0.0", 0 },
	{ "100.63.255.255", 0 }, { "100.64.0.0", 1 }, { "100.127.255.255", 1 },
	{ "100.128.0.0", 0 },
	{ "126.255.255.255", 0 }, { "127.0.0.0", 1 }, { "127.0.0.1", 1 },
	{ "127.255.255.255", 1 }, { "128.0.0.0", 0 },
	{ "169.253.255.255", 0 }, { "169.254.0.0", 1 }, { "169.254.169.254", 1 },
	{ "169.254.255.255", 1 }, { "169.255.0.0", 0 },
	{ "172.15.255.255", 0 }, { "172.16.0.0", 1 }, { "172.31.255.255", 1 },
	{ "172.32.0.0", 0 },
	{ "191.255.255.255", 0 }, { "192.0.0.0", 1 }, { "192.0.0.255", 1 },
	{ "192.0.1.0", 0 },
	{ "192.167.255.255", 0 }, { "192.168.0.0", 1 }, { "192.168.255.255", 1 },
	{ "192.169.0.0", 0 },
	{ "198.17.255.255", 0 }, { "198.18.0.0", 1 }, { "198.19.255.255", 1 },
	{ "198.20.0.0", 0 },
	{ "223.255.255.255", 0 }, { "224.0.0.0", 1 }, { "239.255.255.255", 1 },
	{ "240.0.0.0", 1 }, { "255.255.255.254", 1 }, { "255.255.255.255", 1 },
	{ "8.8.8.8", 0 }, { "1.1.1.1", 0 }, { "93.184.216.34", 0 },

	/* IPv6 native ranges. */
	{ "::", 1 }, { "::1", 1 },
	{ "fc00::", 1 }, { "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 },
	{ "fe80::", 1 }, { "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 },
	{ "fec0::", 1 }, { "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 },
	{ "ff00::", 1 }, { "ff02::1", 1 },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 },
	{ "100::", 1 }, { "100::ffff:ffff:ffff:ffff", 1 }, { "100:0:0:1::", 0 },
	{ "2001:db8::", 1 }, { "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 1 },
	{ "2001:db9::", 0 }, { "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", 0 },
	{ "2606:4700::1111", 0 }, { "2001:4860:4860::8888", 0 },
	{ "2a00:1450:4001:82a::200e", 0 },

	/* IPv6 forms embedding IPv4: the embedded address decides. */
	{ "::ffff:0.0.0.0", 1 }, { "::ffff:127.0.0.1", 1 },
	{ "::ffff:10.1.2.3", 1 }, { "::ffff:169.254.169.254", 1 },
	{ "::ffff:255.255.255.255", 1 }, { "::ffff:8.8.8.8", 0 },
	{ "::2", 1 }, { "::127.0.0.1", 1 }, { "::192.168.1.1", 1 },
	{ "::8.8.8.8", 0 },
	{ "::ffff:0:127.0.0.1", 1 }, { "::ffff:0:8.8.8.8", 0 },
	{ "64:ff9b::", 1 }, { "64:ff9b::10.0.0.1", 1 },
	{ "64:ff9b::192.168.1.1", 1 }, { "64:ff9b::255.255.255.255", 1 },
	{ "64:ff9b::8.8.8.8", 0 }, { "64:ff9b::1.1.1.1", 0 },
	{ "64:ff9b:1::", 1 }, { "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", 1 },
	{ "2002::", 1 }, { "2002:a00:1::", 1 }, { "2002:7f00:1::1", 1 },
	{ "2002:c0a8:101:1::1", 1 }, { "2002:ffff:ffff::", 1 },
	{ "2002:808:808::", 0 }, { "2002:101:101:ffff:ffff:ffff:ffff:ffff", 0 },
};

static void test_is_internal(void **state)
{
	size_t i;

	for (i = 0; i < N_ELEMS(internal_tab); i++) {
		struct sockaddr_storage ss;

		mk_sa(internal_tab[i].addr, 443, &ss);
		if (netaddr_is_internal((struct sockaddr *)&ss) != internal_tab[i].internal)
			fail_msg("%s: expected internal=%d", internal_tab[i].addr,
			         internal_tab[i].internal);
	}
}

static void test_is_internal_unknown(void **state)
{
	struct sockaddr_un sun;
	struct sockaddr_storage ss;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_int_equal(netaddr_is_internal((struct sockaddr *)&sun), 1);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNSPEC;
	assert_int_equal(netaddr_is_internal((struct sockaddr *)&ss), 1);
	assert_int_equal(netaddr_is_internal(NULL), 1);
}

/* ---- netaddr_format ---- */

static void test_format(void **state)
{
	static const struct {
		const char *ip;
		uint16_t port;
		const char *want;
	} tab[] = {
		{ "1.2.3.4", 80, "1.2.3.4:80" },
		{ "0.0.0.0", 0, "0.0.0.0:0" },
		{ "255.255.255.255", 65535, "255.255.255.255:65535" },
		{ "::1", 80, "[::1]:80" },
		{ "2001:db8::1", 443, "[2001:db8::1]:443" },
		{ "::ffff:1.2.3.4", 5, "[::ffff:1.2.3.4]:5" },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
		  "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535" },
	};
	char buf[80];
	size_t i;

	for (i = 0; i < N_ELEMS(tab); i++) {
		struct sockaddr_storage ss;

		mk_sa(tab[i].ip, tab[i].port, &ss);
		assert_ptr_equal(netaddr_format((struct sockaddr *)&ss, buf,
		                                sizeof(buf)), buf);
		assert_string_equal(buf, tab[i].want);
	}
}

static void test_format_edges(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_un sun;
	char buf[64], small[11];

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_string_equal(netaddr_format((struct sockaddr *)&sun, buf, sizeof(buf)), "?");
	assert_string_equal(netaddr_format(NULL, buf, sizeof(buf)), "?");

	/* Exactly fits, then one byte short: never a truncated address. */
	mk_sa("1.2.3.4", 80, &ss);
	assert_string_equal(netaddr_format((struct sockaddr *)&ss, small, 11), "1.2.3.4:80");
	assert_string_equal(netaddr_format((struct sockaddr *)&ss, small, 10), "?");
	assert_string_equal(netaddr_format((struct sockaddr *)&ss, small, 1), "");
	small[0] = 'x';
	assert_ptr_equal(netaddr_format((struct sockaddr *)&ss, small, 0), small);
	assert_int_equal(small[0], 'x');
}

/* Peer keys: length by family, and every field (port, address, family) tells peers apart. */
static void test_key(void **state)
{
	struct sockaddr_storage a, b;
	socklen_t la, lb;
	uint8_t ka[NETADDR_KEY_MAX], kb[NETADDR_KEY_MAX];
	struct sockaddr other = { .sa_family = AF_UNIX };

	(void)state;
	assert_int_equal(netaddr_from_numeric("192.0.2.1", 443, &a, &la), 0);
	assert_int_equal(netaddr_key((struct sockaddr *)&a, ka), 7);
	assert_int_equal(netaddr_from_numeric("192.0.2.1", 444, &b, &lb), 0);
	assert_int_equal(netaddr_key((struct sockaddr *)&b, kb), 7);
	assert_memory_not_equal(ka, kb, 7);
	assert_int_equal(netaddr_from_numeric("192.0.2.2", 443, &b, &lb), 0);
	netaddr_key((struct sockaddr *)&b, kb);
	assert_memory_not_equal(ka, kb, 7);
	assert_int_equal(netaddr_from_numeric("::ffff:192.0.2.1", 443, &b, &lb), 0);
	assert_int_equal(netaddr_key((struct sockaddr *)&b, kb), 23);
	assert_int_not_equal(ka[0], kb[0]);
	assert_int_equal(netaddr_from_numeric("192.0.2.1", 443, &b, &lb), 0);
	netaddr_key((struct sockaddr *)&b, kb);
	assert_memory_equal(ka, kb, 7);
	assert_int_equal(netaddr_key(&other, ka), 0);
}

static void test_from_raw(void **state)
{
	static const uint8_t v4[4] = { 192, 0, 2, 7 };
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	struct sockaddr_storage ss;
	socklen_t len = 0;
	char buf[64];

	(void)state;
	assert_int_equal(netaddr_from_raw(v4, 4, 8080, &ss, &len), 0);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_string_equal(netaddr_format((struct sockaddr *)&ss, buf, sizeof(buf)), "192.0.2.7:8080");
	assert_int_equal(netaddr_port((struct sockaddr *)&ss), 8080);
	assert_int_equal(netaddr_from_raw(v6, 16, 443, &ss, &len), 0);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_string_equal(netaddr_format((struct sockaddr *)&ss, buf, sizeof(buf)), "[2001:db8::1]:443");
	assert_int_equal(netaddr_port((struct sockaddr *)&ss), 443);
	/* Any other length is refused. */
	assert_int_equal(netaddr_from_raw(v6, 0, 1, &ss, &len), -1);
	assert_int_equal(netaddr_from_raw(v6, 5, 1, &ss, &len), -1);
	assert_int_equal(netaddr_from_raw(v6, 15, 1, &ss, &len), -1);
	assert_int_equal(netaddr_from_raw(NULL, 4, 1, &ss, &len), -1);
	/* Other families have no port. */
	struct sockaddr un = { .sa_family = AF_UNIX };
	assert_int_equal(netaddr_port(&un), 0);
	assert_int_equal(netaddr_port(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostport_valid),
		cmocka_unit_test(test_hostport_invalid),
		cmocka_unit_test(test_hostport_lengths),
		cmocka_unit_test(test_url_valid),
		cmocka_unit_test(test_url_invalid),
		cmocka_unit_test(test_url_buffers),
		cmocka_unit_test(test_from_numeric),
		cmocka_unit_test(test_from_numeric_invalid),
		cmocka_unit_test(test_cidr_valid),
		cmocka_unit_test(test_cidr_invalid),
		cmocka_unit_test(test_cidr_match),
		cmocka_unit_test(test_cidr_match_odd),
		cmocka_unit_test(test_is_internal),
		cmocka_unit_test(test_is_internal_unknown),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_edges),
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_from_raw),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
