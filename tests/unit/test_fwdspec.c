/*
 * Unit tests for util/fwdspec: the -L / -R / --permit-listen parsers see
 * strings from the command line and config files; every rule of
 * docs/forwarding.md has a case here, and hostile strings (no NUL past
 * the limit, brackets in odd places, huge numbers) are refused with a
 * message and leave the output untouched.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fwdspec.h"

#define UNUSED __attribute__((unused))

static int parse(const char *s, enum fwd_spec_kind k, struct fwd_spec *f)
{
	const char *err = NULL;
	char *copy = strdup(s);   /* heap: ASan sees any over-read */
	int rc;

	assert_non_null(copy);
	rc = fwd_spec_parse(copy, k, f, &err);
	if (rc < 0)
		assert_non_null(err);
	free(copy);
	return rc;
}

static void test_local_good(void **state UNUSED)
{
	struct fwd_spec f;

	assert_int_equal(parse("8080:example.org:80", FWD_SPEC_LOCAL, &f), 0);
	assert_string_equal(f.bind, "");
	assert_int_equal(f.port, 8080);
	assert_string_equal(f.host, "example.org");
	assert_int_equal(f.hostport, 80);

	assert_int_equal(parse("127.0.0.2:1:10.0.0.1:65535", FWD_SPEC_LOCAL, &f), 0);
	assert_string_equal(f.bind, "127.0.0.2");
	assert_int_equal(f.port, 1);
	assert_string_equal(f.host, "10.0.0.1");
	assert_int_equal(f.hostport, 65535);

	assert_int_equal(parse("[::1]:2222:[2001:db8::1]:22", FWD_SPEC_LOCAL, &f), 0);
	assert_string_equal(f.bind, "::1");
	assert_string_equal(f.host, "2001:db8::1");
	assert_int_equal(f.hostport, 22);

	assert_int_equal(parse("*:0:localhost:22", FWD_SPEC_LOCAL, &f), 0);
	assert_string_equal(f.bind, "*");
	assert_int_equal(f.port, 0);
	assert_int_equal(parse("localhost:9:a_b-c.d:1", FWD_SPEC_LOCAL, &f), 0);
	assert_string_equal(f.bind, "localhost");
	assert_string_equal(f.host, "a_b-c.d");
}

static void test_local_bad(void **state UNUSED)
{
	static const char *const bad[] = {
		"", "8080", "8080:host", ":8080:host:80", "8080::80", "8080:host:", "8080:host:0",
		"8080:host:65536", "65536:host:80", "-1:host:80", "+80:host:80", "80 :host:80",
		"8080:host:80:x", "a:b:c:d:e", "8080:2001:db8::1:22", "[::1:80:h:80",
		"::1]:80:h:80", "[::1]x:80:h:80", "[]:80:h:80", "[1.2.3.4]:80:h:80",
		"8080:[example.org]:80", "8080:ho st:80", "8080:ho%st:80", "8080:-host:80",
		"8080:.host:80", "example.org:80:h:80", "1.2.3:80:h:80", "8080:h[x]:80",
		"0x50:h:80", "8080:h:0080000",
	};
	struct fwd_spec f;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&f, 0x5a, sizeof(f));
		if (parse(bad[i], FWD_SPEC_LOCAL, &f) == 0)
			fail_msg("accepted -L '%s'", bad[i]);
		assert_int_equal(((uint8_t *)&f)[0], 0x5a);   /* untouched */
	}
}

static void test_remote(void **state UNUSED)
{
	struct fwd_spec f;

	assert_int_equal(parse("0", FWD_SPEC_REMOTE, &f), 0);
	assert_int_equal(f.port, 0);
	assert_string_equal(f.host, "");
	assert_int_equal(parse("*:1080", FWD_SPEC_REMOTE, &f), 0);
	assert_string_equal(f.bind, "*");
	assert_int_equal(f.port, 1080);
	assert_string_equal(f.host, "");
	assert_int_equal(parse("[::]:1080", FWD_SPEC_REMOTE, &f), 0);
	assert_string_equal(f.bind, "::");
	assert_int_equal(parse("8080:localhost:80", FWD_SPEC_REMOTE, &f), 0);
	assert_string_equal(f.host, "localhost");
	assert_int_equal(parse("0.0.0.0:8080:127.0.0.1:80", FWD_SPEC_REMOTE, &f), 0);
	assert_int_equal(parse("*", FWD_SPEC_REMOTE, &f), -1);     /* "*" port: permit only */
	assert_int_equal(parse("host:80", FWD_SPEC_REMOTE, &f), -1);
	assert_int_equal(parse("", FWD_SPEC_REMOTE, &f), -1);
	assert_int_equal(parse("1:2:3:4:5", FWD_SPEC_REMOTE, &f), -1);
}

static void test_permit(void **state UNUSED)
{
	struct fwd_spec f;

	assert_int_equal(parse("8080", FWD_SPEC_PERMIT, &f), 0);
	assert_int_equal(f.port, 8080);
	assert_int_equal(f.any_port, 0);
	assert_int_equal(parse("*", FWD_SPEC_PERMIT, &f), 0);
	assert_int_equal(f.any_port, 1);
	assert_int_equal(parse("localhost:*", FWD_SPEC_PERMIT, &f), 0);
	assert_string_equal(f.bind, "localhost");
	assert_int_equal(parse("[::1]:0", FWD_SPEC_PERMIT, &f), 0);
	assert_int_equal(parse("8080:h:80", FWD_SPEC_PERMIT, &f), -1);
	assert_int_equal(parse("**", FWD_SPEC_PERMIT, &f), -1);
	assert_int_equal(parse("[*]", FWD_SPEC_PERMIT, &f), -1);
}

/* Long and random strings: refused or accepted, never a crash or over-read. */
static void test_hostile(void **state UNUSED)
{
	static const char alphabet[] = "0123456789:[]*.abz_-% \x01\xff";
	struct fwd_spec f;
	char *big = malloc(5000);
	unsigned seed = 1;

	assert_non_null(big);
	memset(big, '1', 4999);
	big[4999] = '\0';
	assert_int_equal(parse(big, FWD_SPEC_LOCAL, &f), -1);
	memset(big, ':', 4999);
	assert_int_equal(parse(big, FWD_SPEC_REMOTE, &f), -1);
	memset(big, '[', 4999);
	assert_int_equal(parse(big, FWD_SPEC_PERMIT, &f), -1);
	/* A host of 254 characters is too long, 253 is fine. */
	memset(big, 'a', 256);
	memcpy(big, "1:", 2);
	memcpy(big + 2 + 254, ":1", 3);
	assert_int_equal(parse(big, FWD_SPEC_LOCAL, &f), -1);
	memcpy(big + 2 + 253, ":1", 3);
	assert_int_equal(parse(big, FWD_SPEC_LOCAL, &f), 0);
	assert_int_equal(strlen(f.host), 253);
	for (int i = 0; i < 20000; i++) {
		size_t n = (size_t)(rand_r(&seed) % 40);

		for (size_t j = 0; j < n; j++)
			big[j] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
		big[n] = '\0';
		(void)parse(big, (enum fwd_spec_kind)(i % 3), &f);
	}
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_local_good),
		cmocka_unit_test(test_local_bad),
		cmocka_unit_test(test_remote),
		cmocka_unit_test(test_permit),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
