/*
 * Unit tests for the HTTP proxy request parser (src/front/http.c).  Every
 * request is a raw byte string as a client would send it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "front/http.h"

#define UNUSED __attribute__((unused))

/* A byte-string literal and its length, without the literal's own NUL. */
#define B(s) (const uint8_t *)(s), (sizeof(s) - 1)

static struct http_request req;

/* Find the head with http_head_end() and parse it; the status or 0. */
static int parse(const uint8_t *in, size_t n)
{
	size_t scan = 0;
	long end = http_head_end(in, n, &scan);

	if (end < 0)
		return 400;
	assert_true(end > 0);
	return http_parse(in, (size_t)end, &req);
}

static void assert_out(const char *want)
{
	assert_int_equal(req.out_len, strlen(want));
	assert_memory_equal(req.out, want, req.out_len);
}

static void test_connect_domain(void **state UNUSED)
{
	assert_int_equal(parse(B("CONNECT example.com:443 HTTP/1.1\r\n"
	                         "Host: example.com:443\r\n\r\n")), 0);
	assert_int_equal(req.connect, 1);
	assert_int_equal(req.dest.atyp, SOCKS_ATYP_DOMAIN);
	assert_string_equal(req.dest.domain, "example.com");
	assert_int_equal(req.dest.port, 443);
	assert_int_equal(req.out_len, 0);
	assert_int_equal(req.head_len, 59);
}

static void test_connect_literals(void **state UNUSED)
{
	static const uint8_t v6[16] = { [15] = 1 };

	assert_int_equal(parse(B("CONNECT 10.1.2.3:22 HTTP/1.0\r\n\r\n")), 0);
	assert_int_equal(req.dest.atyp, SOCKS_ATYP_IPV4);
	assert_memory_equal(req.dest.ipv4, "\x0a\x01\x02\x03", 4);
	assert_int_equal(req.dest.port, 22);
	assert_int_equal(req.minor, 0);
	assert_int_equal(parse(B("CONNECT [::1]:80 HTTP/1.1\r\n\r\n")), 0);
	assert_int_equal(req.dest.atyp, SOCKS_ATYP_IPV6);
	assert_memory_equal(req.dest.ipv6, v6, 16);
	assert_int_equal(req.dest.port, 80);
}

static void test_connect_bad(void **state UNUSED)
{
	assert_int_equal(parse(B("CONNECT example.com HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("CONNECT example.com: HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("CONNECT :443 HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("CONNECT h:0 HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("CONNECT h:65536 HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("CONNECT h:123456 HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("CONNECT h:-1 HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("CONNECT h:+80 HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("CONNECT u@h:80 HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("CONNECT ::1:80 HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("CONNECT [::1] HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("CONNECT [::1%eth0]:80 HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("CONNECT [1.2.3.4]:80 HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("CONNECT [::1]x:80 HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("CONNECT ex%41mple.com:80 HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("CONNECT http://h:80/ HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("CONNECT /x HTTP/1.1\r\n\r\n")), 400);
}

static void test_absolute_get(void **state UNUSED)
{
	assert_int_equal(parse(B("GET http://example.com/a/b%20c?x=%2F&y HTTP/1.1\r\n"
	                         "Host: wrong.example\r\n"
	                         "User-Agent: t\r\n"
	                         "Proxy-Connection: keep-alive\r\n"
	                         "Proxy-Authorization: Basic eDp5\r\n"
	                         "Accept:   */*  \r\n\r\n")), 0);
	assert_int_equal(req.connect, 0);
	assert_string_equal(req.method, "GET");
	assert_int_equal(req.dest.atyp, SOCKS_ATYP_DOMAIN);
	assert_string_equal(req.dest.domain, "example.com");
	assert_int_equal(req.dest.port, 80);
	/* Percent-encoding is the server's business: left alone. */
	assert_out("GET /a/b%20c?x=%2F&y HTTP/1.1\r\n"
	           "Host: example.com\r\n"
	           "User-Agent: t\r\n"
	           "Accept: */*\r\n"
	           "Connection: close\r\n\r\n");
}

static void test_absolute_forms(void **state UNUSED)
{
	assert_int_equal(parse(B("HEAD HTTP://h:8080 HTTP/1.0\n\n")), 0);
	assert_int_equal(req.dest.port, 8080);
	assert_out("HEAD / HTTP/1.0\r\nHost: h:8080\r\nConnection: close\r\n\r\n");
	assert_int_equal(parse(B("GET http://h?q=1 HTTP/1.1\r\n\r\n")), 0);
	assert_out("GET /?q=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
	assert_int_equal(parse(B("DELETE http://[::1]:81/x HTTP/1.1\r\n\r\n")), 0);
	assert_int_equal(req.dest.atyp, SOCKS_ATYP_IPV6);
	assert_int_equal(req.dest.port, 81);
	assert_out("DELETE /x HTTP/1.1\r\nHost: [::1]:81\r\nConnection: close\r\n\r\n");
	assert_int_equal(parse(B("GET http://127.0.0.1/ HTTP/1.1\r\n\r\n")), 0);
	assert_int_equal(req.dest.atyp, SOCKS_ATYP_IPV4);
}

static void test_post_framing_kept(void **state UNUSED)
{
	assert_int_equal(parse(B("POST http://h/p HTTP/1.1\r\n"
	                         "Content-Length: 5\r\n"
	                         "Connection: keep-alive, Content-Length, X-Drop, Upgrade\r\n"
	                         "X-Drop: 1\r\n"
	                         "Upgrade: websocket\r\n"
	                         "Keep-Alive: timeout=5\r\n"
	                         "TE: trailers\r\n"
	                         "Trailer: X\r\n"
	                         "x-keep: 2\r\n\r\nhello")), 0);
	/* Connection cannot remove the framing of the body we relay. */
	assert_out("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	           "x-keep: 2\r\nConnection: close\r\n\r\n");
	assert_int_equal(parse(B("POST http://h/p HTTP/1.1\r\n"
	                         "Transfer-Encoding: chunked\r\n\r\n")), 0);
	assert_out("POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	           "Connection: close\r\n\r\n");
}

static void test_content_length(void **state UNUSED)
{
	assert_int_equal(parse(B("POST http://h/ HTTP/1.1\r\n"
	                         "Content-Length: 999999999999999999\r\n\r\n")), 0);
	assert_int_equal(parse(B("POST http://h/ HTTP/1.1\r\n"
	                         "Content-Length: 9999999999999999999\r\n\r\n")), 400);
	assert_int_equal(parse(B("POST http://h/ HTTP/1.1\r\n"
	                         "Content-Length: 99999999999999999999999999999\r\n\r\n")), 400);
	assert_int_equal(parse(B("POST http://h/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n")), 400);
	assert_int_equal(parse(B("POST http://h/ HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n")), 400);
	assert_int_equal(parse(B("POST http://h/ HTTP/1.1\r\nContent-Length:\r\n\r\n")), 400);
	assert_int_equal(parse(B("POST http://h/ HTTP/1.1\r\nContent-Length: 1\r\n"
	                         "Content-Length: 2\r\n\r\n")), 400);
	assert_int_equal(parse(B("POST http://h/ HTTP/1.1\r\nContent-Length: 3\r\n"
	                         "Content-Length: 3\r\n\r\n")), 0);
	assert_int_equal(parse(B("POST http://h/ HTTP/1.1\r\nContent-Length: 3\r\n"
	                         "Transfer-Encoding: chunked\r\n\r\n")), 400);
}

static void test_hostile_bytes(void **state UNUSED)
{
	assert_int_equal(parse(B("GET http://h/ HTTP/1.1\r\nA: b\0c\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h/\0 HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h/ HTTP/1.1\rX: y\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h/ HTTP/1.1\r\nX: y\rz\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h/ HTTP/1.1\r\nX: \x01\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h/ HTTP/1.1\r\nX: \x7f\r\n\r\n")), 400);
	/* obs-text and HTAB in values are fine. */
	assert_int_equal(parse(B("GET http://h/ HTTP/1.1\r\nX: a\tb\xff\r\n\r\n")), 0);
	/* obs-fold, whitespace before the colon, empty or bad names. */
	assert_int_equal(parse(B("GET http://h/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h/ HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h/ HTTP/1.1\r\nX : a\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h/ HTTP/1.1\r\n: a\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h/ HTTP/1.1\r\nX\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h/ HTTP/1.1\r\nX(y): a\r\n\r\n")), 400);
}

static void test_request_line(void **state UNUSED)
{
	assert_int_equal(parse(B("\r\n\r\n")), 400);
	assert_int_equal(parse(B("hello\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h/\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET  http://h/ HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h/ HTTP/1.1 \r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h/ http/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h/ HTTP/2.0\r\n\r\n")), 505);
	assert_int_equal(parse(B("GET http://h/ HTTP/0.9\r\n\r\n")), 505);
	assert_int_equal(parse(B("G\"T http://h/ HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h/\x80 HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("ABCDEFGHIJABCDEFGHIJABCDEFGHIJABC http://h/ HTTP/1.1\r\n\r\n")),
	                 400);
	/* Unsupported forms: origin-form, asterisk, other schemes. */
	assert_int_equal(parse(B("GET / HTTP/1.1\r\nHost: h\r\n\r\n")), 501);
	assert_int_equal(parse(B("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")), 501);
	assert_int_equal(parse(B("GET https://h/ HTTP/1.1\r\n\r\n")), 501);
	assert_int_equal(parse(B("GET ftp://h/ HTTP/1.1\r\n\r\n")), 501);
	assert_int_equal(parse(B("GET h/x HTTP/1.1\r\n\r\n")), 400);
}

static void test_missing_or_bad_host(void **state UNUSED)
{
	assert_int_equal(parse(B("GET http:///x HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http:// HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://:80/ HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h:/ HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h:0/ HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h:65536/ HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h:8x/ HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://u:p@h/ HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h/#frag HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://[::1/ HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://[zz]/ HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse(B("GET http://h/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")), 400);
}

static void test_too_large(void **state UNUSED)
{
	size_t n = HTTP_HEAD_MAX + 100, scan = 0, i;
	uint8_t *buf = malloc(n);
	char *p;

	assert_non_null(buf);
	/* One overlong line: never ends within the limit. */
	memcpy(buf, "GET http://h/ HTTP/1.1\r\nX: ", 27);
	memset(buf + 27, 'a', n - 27);
	assert_int_equal(http_head_end(buf, HTTP_HEAD_MAX - 1, &scan), 0);
	assert_int_equal(http_head_end(buf, n, &scan), -1);
	/* Ends just past the limit. */
	memcpy(buf + HTTP_HEAD_MAX - 2, "\r\n\r\n", 4);
	scan = 0;
	assert_int_equal(http_head_end(buf, n, &scan), -1);
	/* Ends exactly at the limit: fine. */
	memcpy(buf + HTTP_HEAD_MAX - 4, "\r\n\r\n", 4);
	scan = 0;
	assert_int_equal(http_head_end(buf, n, &scan), HTTP_HEAD_MAX);
	assert_int_equal(http_parse(buf, HTTP_HEAD_MAX, &req), 0);
	assert_true(req.out_len < HTTP_OUT_MAX);
	free(buf);

	/* Too many fields, then exactly the limit. */
	p = malloc(HTTP_HEAD_MAX);
	assert_non_null(p);
	n = (size_t)sprintf(p, "GET http://h/ HTTP/1.1\r\n");
	for (i = 0; i < HTTP_HEADERS_MAX; i++)
		n += (size_t)sprintf(p + n, "X%zu: v\r\n", i);
	memcpy(p + n, "\r\n", 2);
	assert_int_equal(parse((uint8_t *)p, n + 2), 0);
	n += (size_t)sprintf(p + n, "Y: v\r\n\r\n");
	assert_int_equal(parse((uint8_t *)p, n), 400);
	free(p);
}

static void test_bare_lf_worst_case_fits(void **state UNUSED)
{
	/* Bare LFs become CRLFs: the most lines a head can have must still fit. */
	uint8_t *buf = malloc(HTTP_HEAD_MAX);
	size_t n, i;

	assert_non_null(buf);
	n = (size_t)sprintf((char *)buf, "GET http://h/ HTTP/1.1\n");
	for (i = 0; i < HTTP_HEADERS_MAX - 1; i++)
		n += (size_t)sprintf((char *)buf + n, "A:\n");
	memset(buf + n, 'b', HTTP_HEAD_MAX - n - 4);
	n = HTTP_HEAD_MAX - 4;
	buf[n++] = ':';
	buf[n++] = 'v';
	buf[n++] = '\n';
	buf[n++] = '\n';
	assert_int_equal(parse(buf, n), 0);
	assert_true(req.out_len > HTTP_HEAD_MAX);
	free(buf);
}

static void test_head_end_incremental(void **state UNUSED)
{
	static const char r[] = "GET http://h/ HTTP/1.1\r\nA: b\r\n\r\nBODY";
	size_t scan = 0, i;
	long end = 0;

	for (i = 0; i <= sizeof(r) - 1 && end == 0; i++)
		end = http_head_end((const uint8_t *)r, i, &scan);
	assert_int_equal(end, sizeof(r) - 1 - 4);
	assert_int_equal(i, (size_t)end + 1);
	scan = 0;
	assert_int_equal(http_head_end(B("GET http://h/ HTTP/1.1\n\nX"), &scan), 24);
	scan = 0;
	assert_int_equal(http_head_end(B("GET"), &scan), 0);
}

static void test_responses(void **state UNUSED)
{
	char out[HTTP_RESPONSE_MAX];
	size_t n;

	n = http_response(200, out);
	assert_int_equal(n, strlen("HTTP/1.1 200 Connection established\r\n\r\n"));
	assert_memory_equal(out, "HTTP/1.1 200 Connection established\r\n\r\n", n);
	n = http_response(502, out);
	out[n] = '\0';
	assert_non_null(strstr(out, "HTTP/1.1 502 Bad Gateway\r\n"));
	assert_non_null(strstr(out, "Connection: close\r\n"));
	assert_non_null(strstr(out, "Content-Length: 16\r\n"));
	assert_string_equal(out + n - 20, "\r\n\r\n502 Bad Gateway\n");
	assert_int_equal(http_status_for_socks(SOCKS5_NOT_ALLOWED), 403);
	assert_int_equal(http_status_for_socks(SOCKS5_TTL_EXPIRED), 504);
	assert_int_equal(http_status_for_socks(SOCKS5_CONN_REFUSED), 502);
	assert_int_equal(http_status_for_socks(SOCKS5_HOST_UNREACHABLE), 502);
	assert_int_equal(http_status_for_socks(SOCKS5_GENERAL_FAILURE), 502);
}

static void test_may_start(void **state UNUSED)
{
	const char *m = "GPCDHOTgpx0!~";
	unsigned c;

	for (; *m != '\0'; m++)
		assert_true(http_may_start((uint8_t)*m));
	for (c = 0; c < 256; c++)
		if (c <= 0x20 || c >= 0x7f || c == '(' || c == '"' || c == ':' || c == '@')
			assert_false(http_may_start((uint8_t)c));
}

static void test_random_garbage(void **state UNUSED)
{
	uint8_t buf[512];
	unsigned seed = 1;
	int i;
	size_t j;

	for (i = 0; i < 20000; i++) {
		size_t n = 1 + (size_t)(rand_r(&seed) % sizeof(buf)), scan = 0;
		long end;
		int st;

		memcpy(buf, "GET http://h/ HTTP/1.1\r\n", 24);
		for (j = (i & 1) ? 24 : 0; j < n; j++)
			buf[j] = (uint8_t)(rand_r(&seed) % 4 == 0 ? "\r\n: "[rand_r(&seed) % 4]
			                                          : rand_r(&seed));
		end = http_head_end(buf, n, &scan);
		if (end <= 0)
			continue;
		st = http_parse(buf, (size_t)end, &req);
		assert_true(st == 0 || st == 400 || st == 501 || st == 505);
		if (st == 0 && !req.connect)
			assert_true(req.out_len > 0 && req.out_len <= HTTP_OUT_MAX);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_domain),
		cmocka_unit_test(test_connect_literals),
		cmocka_unit_test(test_connect_bad),
		cmocka_unit_test(test_absolute_get),
		cmocka_unit_test(test_absolute_forms),
		cmocka_unit_test(test_post_framing_kept),
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_hostile_bytes),
		cmocka_unit_test(test_request_line),
		cmocka_unit_test(test_missing_or_bad_host),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_bare_lf_worst_case_fits),
		cmocka_unit_test(test_head_end_incremental),
		cmocka_unit_test(test_responses),
		cmocka_unit_test(test_may_start),
		cmocka_unit_test(test_random_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
