/*
 * Unit tests for the proxy-mode ACL and the mapping of connect errors to
 * the stream error codes the client turns into SOCKS replies.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "egress/egress.h"

static struct sockaddr_storage addr(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;

	assert_int_equal(netaddr_from_numeric(ip, port, &ss, &len), 0);
	return ss;
}

static int allows(const struct egress_config *cfg, const char *ip, uint16_t port)
{
	struct sockaddr_storage ss = addr(ip, port);

	return egress_acl_allows(cfg, (struct sockaddr *)&ss);
}

static void test_proxy_refuses_internal_by_default(void **state)
{
	struct egress_config cfg;
	static const char *const internal[] = {
		"127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.5", "169.254.1.1",
		"100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255",
		"::1", "::", "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1",
		"::ffff:10.0.0.1",
	};

	memset(&cfg, 0, sizeof(cfg));
	cfg.mode = EGRESS_PROXY;
	for (size_t i = 0; i < sizeof(internal) / sizeof(internal[0]); i++)
		assert_false(allows(&cfg, internal[i], 80));
	assert_true(allows(&cfg, "8.8.8.8", 53));
	assert_true(allows(&cfg, "2606:4700::1111", 443));
}

static void test_allow_rules_admit_only_their_range(void **state)
{
	struct egress_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.mode = EGRESS_PROXY;
	assert_int_equal(netaddr_parse_cidr("127.0.0.0/8", &cfg.allow[0]), 0);
	assert_int_equal(netaddr_parse_cidr("fd00::/8", &cfg.allow[1]), 0);
	cfg.nallow = 2;
	assert_true(allows(&cfg, "127.0.0.1", 80));
	assert_true(allows(&cfg, "127.255.255.254", 80));
	assert_true(allows(&cfg, "fd12::1", 80));
	assert_false(allows(&cfg, "10.0.0.1", 80));
	assert_false(allows(&cfg, "fc00::1", 80));
	assert_false(allows(&cfg, "::1", 80));
}

static void test_port_zero_refused_and_target_mode_trusted(void **state)
{
	struct egress_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.mode = EGRESS_PROXY;
	assert_false(allows(&cfg, "8.8.8.8", 0));
	assert_false(allows(&cfg, "2606:4700::1111", 0));
	cfg.mode = EGRESS_TARGET;   /* the operator chose the target */
	assert_true(allows(&cfg, "127.0.0.1", 8080));
}

static void test_errno_mapping(void **state)
{
	assert_int_equal(egress_errno_to_code(ECONNREFUSED), MUX_ERR_REFUSED);
	assert_int_equal(egress_errno_to_code(EHOSTUNREACH), MUX_ERR_HOST_UNREACH);
	assert_int_equal(egress_errno_to_code(ENETUNREACH), MUX_ERR_NET_UNREACH);
	assert_int_equal(egress_errno_to_code(ETIMEDOUT), MUX_ERR_TIMEOUT);
	assert_int_equal(egress_errno_to_code(EACCES), MUX_ERR_NOT_ALLOWED);
	assert_int_equal(egress_errno_to_code(EIO), MUX_ERR_GENERAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proxy_refuses_internal_by_default),
		cmocka_unit_test(test_allow_rules_admit_only_their_range),
		cmocka_unit_test(test_port_zero_refused_and_target_mode_trusted),
		cmocka_unit_test(test_errno_mapping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
