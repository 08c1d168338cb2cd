/*
 * Unit tests for who may call the impair REST API (src/lab/impair/access.c):
 * Host and Origin against the address a request reached, Content-Type,
 * the bearer token, and the --api-token file's parser, on raw strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lab/impair/impair_internal.h"

static void test_host(void **state)
{
	(void)state;
	assert_true(impair_access_host("127.0.0.1:8080", "127.0.0.1:8080", 8080, 1));
	assert_true(impair_access_host("localhost:8080", "127.0.0.1:8080", 8080, 1));
	assert_true(impair_access_host("LocalHost:8080", "127.0.0.1:8080", 8080, 1));
	assert_true(impair_access_host("[::1]:8080", "[::1]:8080", 8080, 1));
	assert_true(impair_access_host("localhost:8080", "[::1]:8080", 8080, 1));
	/* DNS rebinding: a name of the attacker's, resolving to us. */
	assert_false(impair_access_host("evil.example:8080", "127.0.0.1:8080", 8080, 1));
	assert_false(impair_access_host("evil.example", "127.0.0.1:8080", 8080, 1));
	assert_false(impair_access_host("127.0.0.1", "127.0.0.1:8080", 8080, 1));
	assert_false(impair_access_host("127.0.0.1:8081", "127.0.0.1:8080", 8080, 1));
	assert_false(impair_access_host("127.0.0.1:80800", "127.0.0.1:8080", 8080, 1));
	assert_false(impair_access_host("127.0.0.1:8080 ", "127.0.0.1:8080", 8080, 1));
	assert_false(impair_access_host("127.0.0.2:8080", "127.0.0.1:8080", 8080, 1));
	assert_false(impair_access_host("localhost.evil.example:8080", "127.0.0.1:8080", 8080, 1));
	assert_false(impair_access_host("", "127.0.0.1:8080", 8080, 1));
	assert_false(impair_access_host(NULL, "127.0.0.1:8080", 8080, 1));
	/* Not loopback: only the address itself. */
	assert_true(impair_access_host("192.0.2.7:8080", "192.0.2.7:8080", 8080, 0));
	assert_false(impair_access_host("localhost:8080", "192.0.2.7:8080", 8080, 0));
	/* Port 80 may be left out. */
	assert_true(impair_access_host("127.0.0.1", "127.0.0.1:80", 80, 1));
	assert_true(impair_access_host("localhost", "127.0.0.1:80", 80, 1));
	assert_true(impair_access_host("[::1]", "[::1]:80", 80, 1));
	assert_false(impair_access_host("127.0.0.1:", "127.0.0.1:80", 80, 1));
}

static void test_origin(void **state)
{
	(void)state;
	assert_true(impair_access_origin(NULL, "127.0.0.1:8080", 8080, 1));
	assert_true(impair_access_origin("http://127.0.0.1:8080", "127.0.0.1:8080", 8080, 1));
	assert_true(impair_access_origin("http://localhost:8080", "127.0.0.1:8080", 8080, 1));
	assert_false(impair_access_origin("https://127.0.0.1:8080", "127.0.0.1:8080", 8080, 1));
	assert_false(impair_access_origin("http://evil.example", "127.0.0.1:8080", 8080, 1));
	assert_false(impair_access_origin("http://evil.example:8080", "127.0.0.1:8080", 8080, 1));
	assert_false(impair_access_origin("null", "127.0.0.1:8080", 8080, 1));
	assert_false(impair_access_origin("", "127.0.0.1:8080", 8080, 1));
	assert_false(impair_access_origin("http://", "127.0.0.1:8080", 8080, 1));
	assert_false(impair_access_origin("http://127.0.0.1:8080/", "127.0.0.1:8080", 8080, 1));
}

static void test_json(void **state)
{
	(void)state;
	assert_true(impair_access_json("application/json"));
	assert_true(impair_access_json("Application/JSON"));
	assert_true(impair_access_json("application/json; charset=utf-8"));
	assert_true(impair_access_json("application/json;charset=utf-8"));
	assert_true(impair_access_json(" application/json "));
	assert_false(impair_access_json(NULL));
	assert_false(impair_access_json(""));
	assert_false(impair_access_json("text/plain"));
	assert_false(impair_access_json("text/plain; x=application/json"));
	assert_false(impair_access_json("application/x-www-form-urlencoded"));
	assert_false(impair_access_json("multipart/form-data; boundary=x"));
	assert_false(impair_access_json("application/jsonp"));
	assert_false(impair_access_json("application/json-seq"));
	assert_false(impair_access_json("application/jso"));
}

static void test_bearer(void **state)
{
	static const char tok[] = "0123456789abcdef-token";

	(void)state;
	assert_true(impair_access_bearer(NULL, NULL));        /* no token required */
	assert_true(impair_access_bearer("anything", NULL));
	assert_true(impair_access_bearer("Bearer 0123456789abcdef-token", tok));
	assert_true(impair_access_bearer("bearer 0123456789abcdef-token", tok));
	assert_false(impair_access_bearer(NULL, tok));
	assert_false(impair_access_bearer("", tok));
	assert_false(impair_access_bearer("Bearer", tok));
	assert_false(impair_access_bearer("Bearer ", tok));
	assert_false(impair_access_bearer("Basic 0123456789abcdef-token", tok));
	assert_false(impair_access_bearer("Bearer 0123456789abcdef-toke", tok));
	assert_false(impair_access_bearer("Bearer 0123456789abcdef-tokenX", tok));
	assert_false(impair_access_bearer("Bearer 0123456789abcdef-tokeN", tok));
	assert_false(impair_access_bearer("0123456789abcdef-token", tok));
}

static void test_token_file(void **state)
{
	char out[IMPAIR_TOKEN_MAX + 1], err[160], big[IMPAIR_TOKEN_MAX + 2];

	(void)state;
#define PARSE(s) impair_access_token_parse((s), sizeof(s) - 1, out, sizeof(out), err, sizeof(err))
	assert_int_equal(PARSE("0123456789abcdef\n"), 0);
	assert_string_equal(out, "0123456789abcdef");
	assert_int_equal(PARSE("0123456789abcdef"), 0);
	assert_int_equal(PARSE("0123456789abcdef \r\nsecond line ignored\n"), 0);
	assert_string_equal(out, "0123456789abcdef");
	assert_int_equal(PARSE("0123456789abcde\n"), -1);        /* 15: too short */
	assert_non_null(strstr(err, "at least"));
	assert_int_equal(PARSE(""), -1);
	assert_int_equal(PARSE("\n0123456789abcdef\n"), -1);     /* the first line is the token */
	assert_int_equal(PARSE("0123456789 abcdef\n"), -1);      /* no spaces inside */
	assert_int_equal(PARSE("0123456789abcdef\x01\n"), -1);
	assert_int_equal(PARSE("0123456789abcdef\xc3\xa9\n"), -1);
	assert_int_equal(PARSE("0123456789\0abcdef\n"), -1);
#undef PARSE
	memset(big, 'a', sizeof(big));
	assert_int_equal(impair_access_token_parse(big, IMPAIR_TOKEN_MAX, out, sizeof(out),
	                                           err, sizeof(err)), 0);
	assert_int_equal(strlen(out), IMPAIR_TOKEN_MAX);
	assert_int_equal(impair_access_token_parse(big, IMPAIR_TOKEN_MAX + 1, out, sizeof(out),
	                                           err, sizeof(err)), -1);
	assert_int_equal(impair_access_token_parse(big, 20, out, 17, err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_origin),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_bearer),
		cmocka_unit_test(test_token_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
