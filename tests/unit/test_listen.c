/*
 * Unit tests for the server's remote-forward policy (app/listen.c,
 * docs/forwarding.md): nothing may listen without a --permit-listen rule,
 * non-loopback addresses need --gateway-ports, and a client has at most
 * max_listeners.  The order of the checks decides which refusal a client
 * sees, so it is tested too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "app/app.h"

#define UNUSED __attribute__((unused))

static struct mux_listen_req req(const char *addr, uint16_t port)
{
	struct mux_listen_req r;

	memset(&r, 0, sizeof(r));
	r.port = port;
	if (addr == NULL)
		r.atyp = MUX_DEST_NONE;
	else if (inet_pton(AF_INET, addr, r.addr) == 1)
		r.atyp = MUX_DEST_IPV4;
	else if (inet_pton(AF_INET6, addr, r.addr) == 1)
		r.atyp = MUX_DEST_IPV6;
	else
		fail_msg("bad test address %s", addr);
	return r;
}

static uint8_t check(const struct listen_policy *p, const char *addr, uint16_t port, unsigned n)
{
	struct mux_listen_req r = req(addr, port);

	return listen_policy_check(p, &r, n);
}

static void add(struct listen_policy *p, const char *spec)
{
	const char *err = NULL;

	assert_int_equal(listen_policy_add_permit(p, spec, &err), 0);
}

static void test_default_denies(void **state UNUSED)
{
	struct listen_policy p;

	listen_policy_defaults(&p);
	assert_int_equal(check(&p, NULL, 8080, 0), MUX_ERR_NO_PERMIT);
	assert_int_equal(check(&p, NULL, 0, 0), MUX_ERR_NO_PERMIT);
	assert_int_equal(check(&p, "0.0.0.0", 8080, 0), MUX_ERR_NO_PERMIT);
	/* A zeroed policy (tor's managed server) denies too. */
	memset(&p, 0, sizeof(p));
	assert_int_equal(check(&p, NULL, 8080, 0), MUX_ERR_NO_PERMIT);
}

static void test_ports(void **state UNUSED)
{
	struct listen_policy p;

	listen_policy_defaults(&p);
	add(&p, "8080");
	add(&p, "0");
	assert_int_equal(check(&p, NULL, 8080, 0), 0);
	assert_int_equal(check(&p, "127.0.0.1", 8080, 0), 0);
	assert_int_equal(check(&p, "127.1.2.3", 8080, 0), 0);
	assert_int_equal(check(&p, "::1", 8080, 0), 0);
	assert_int_equal(check(&p, NULL, 0, 0), 0);
	assert_int_equal(check(&p, NULL, 8081, 0), MUX_ERR_NO_PERMIT);
	/* Rule matches, but not loopback and no --gateway-ports. */
	assert_int_equal(check(&p, "0.0.0.0", 8080, 0), MUX_ERR_GATEWAY);
	assert_int_equal(check(&p, "::", 8080, 0), MUX_ERR_GATEWAY);
	assert_int_equal(check(&p, "192.0.2.1", 0, 0), MUX_ERR_GATEWAY);
	assert_int_equal(check(&p, "::2", 0, 0), MUX_ERR_GATEWAY);
	p.gateway_ports = 1;
	assert_int_equal(check(&p, "0.0.0.0", 8080, 0), 0);
	/* No rule beats gateway ports: the client learns about the rule first. */
	assert_int_equal(check(&p, "0.0.0.0", 9, 0), MUX_ERR_NO_PERMIT);
}

static void test_addresses(void **state UNUSED)
{
	struct listen_policy p;

	listen_policy_defaults(&p);
	p.gateway_ports = 1;
	add(&p, "localhost:*");
	add(&p, "192.0.2.7:443");
	add(&p, "[2001:db8::1]:0");
	add(&p, "*:22");
	assert_int_equal(check(&p, NULL, 1, 0), 0);
	assert_int_equal(check(&p, "127.0.0.1", 65535, 0), 0);
	assert_int_equal(check(&p, "::1", 5, 0), 0);
	assert_int_equal(check(&p, "0.0.0.0", 5, 0), MUX_ERR_NO_PERMIT);
	assert_int_equal(check(&p, "192.0.2.7", 443, 0), 0);
	assert_int_equal(check(&p, "192.0.2.8", 443, 0), MUX_ERR_NO_PERMIT);
	assert_int_equal(check(&p, "192.0.2.7", 444, 0), MUX_ERR_NO_PERMIT);
	assert_int_equal(check(&p, "2001:db8::1", 0, 0), 0);
	assert_int_equal(check(&p, "2001:db8::1", 1, 0), MUX_ERR_NO_PERMIT);
	assert_int_equal(check(&p, "::ffff:192.0.2.7", 443, 0), MUX_ERR_NO_PERMIT);
	assert_int_equal(check(&p, "0.0.0.0", 22, 0), 0);
	assert_int_equal(check(&p, "::", 22, 0), 0);
	/* A numeric loopback rule matches the default (no address) request. */
	listen_policy_defaults(&p);
	add(&p, "127.0.0.1:0");
	assert_int_equal(check(&p, NULL, 0, 0), 0);
	assert_int_equal(check(&p, "::1", 0, 0), MUX_ERR_NO_PERMIT);
}

static void test_limit_and_rules(void **state UNUSED)
{
	struct listen_policy p;
	const char *err = NULL;
	char spec[16];

	listen_policy_defaults(&p);
	add(&p, "*");
	p.max_listeners = 2;
	assert_int_equal(check(&p, NULL, 1, 0), 0);
	assert_int_equal(check(&p, NULL, 1, 1), 0);
	assert_int_equal(check(&p, NULL, 1, 2), MUX_ERR_LIMIT);
	/* Rules are bounded and strictly parsed. */
	listen_policy_defaults(&p);
	for (unsigned i = 0; i < LISTEN_MAX_PERMIT; i++) {
		snprintf(spec, sizeof(spec), "%u", i + 1);
		add(&p, spec);
	}
	assert_int_equal(listen_policy_add_permit(&p, "9", &err), -1);
	assert_string_equal(err, "too many --permit-listen rules");
	listen_policy_defaults(&p);
	assert_int_equal(listen_policy_add_permit(&p, "host:80", &err), -1);
	assert_int_equal(listen_policy_add_permit(&p, "1:2:3", &err), -1);
	assert_int_equal(listen_policy_add_permit(&p, "65536", &err), -1);
	assert_int_equal(p.npermit, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_denies),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_limit_and_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
