/*
 * Unit tests for what sctpt-lab send and recv share (src/lab/flow/proto.c,
 * lat.c) and the lab HTTP access checks (src/lab/http/access.c): the stream
 * header and trailer (round trip and hostile bytes), the pattern, SOCKS5
 * messages, sizes, latency quantiles, Host/Origin/URL parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "lab/flow/flow_internal.h"
#include "lab/http/http.h"

static void test_header(void **state)
{
	struct flow_hdr h = { FLOW_RPC, FLOW_F_PATTERN, 7, 0x1122334455667788ULL,
	                      FLOW_LEN_UNKNOWN, 100, 2000 }, g;
	uint8_t b[FLOW_HDR_LEN];
	char err[120];

	(void)state;
	flow_hdr_encode(&h, b);
	assert_int_equal(flow_hdr_decode(b, &g, err, sizeof(err)), 0);
	assert_int_equal(g.mode, FLOW_RPC);
	assert_int_equal(g.stream, 7);
	assert_true(g.seed == h.seed && g.length == h.length);
	assert_int_equal(g.rpc_req, 100);
	assert_int_equal(g.rpc_resp, 2000);
	/* Hostile headers: every single-byte change outside the free fields is refused
	 * or decodes to something within bounds. */
	for (size_t i = 0; i < FLOW_HDR_LEN; i++) {
		for (int v = 0; v < 256; v += 17) {
			uint8_t c[FLOW_HDR_LEN];

			memcpy(c, b, sizeof(c));
			c[i] = (uint8_t)v;
			if (flow_hdr_decode(c, &g, err, sizeof(err)) == 0) {
				assert_true(g.mode == FLOW_BULK || g.mode == FLOW_RPC);
				if (g.mode == FLOW_RPC)
					assert_true(g.rpc_req >= 1 && g.rpc_req <= FLOW_RPC_MAX &&
					            g.rpc_resp >= 1 && g.rpc_resp <= FLOW_RPC_MAX);
			}
		}
	}
	memcpy(b, "GET ", 4);
	assert_int_equal(flow_hdr_decode(b, &g, err, sizeof(err)), -1);
	/* Bulk with rpc sizes is refused. */
	h.mode = FLOW_BULK;
	flow_hdr_encode(&h, b);
	assert_int_equal(flow_hdr_decode(b, &g, err, sizeof(err)), -1);
}

static void test_trailer(void **state)
{
	struct flow_trailer t = { FLOW_BAD_PATTERN, 12345, 77, { 1, 2, 3 } }, u;
	uint8_t b[FLOW_TRAILER_LEN];

	(void)state;
	flow_trailer_encode(&t, b);
	assert_int_equal(flow_trailer_decode(b, &u), 0);
	assert_int_equal(u.status, FLOW_BAD_PATTERN);
	assert_true(u.bytes == 12345 && u.bad_offset == 77);
	assert_memory_equal(u.sha256, t.sha256, 32);
	b[7] = 9;      /* unknown status */
	assert_int_equal(flow_trailer_decode(b, &u), -1);
	b[0] = 'X';
	assert_int_equal(flow_trailer_decode(b, &u), -1);
}

static void test_pattern(void **state)
{
	uint8_t a[10000], b[10000];

	(void)state;
	flow_pattern(1, 0, 0, a, sizeof(a));
	/* Any offset and length gives the same bytes as one piece. */
	flow_pattern(1, 0, 3, b, 5);
	assert_memory_equal(a + 3, b, 5);
	flow_pattern(1, 0, 4093, b, 1007);
	assert_memory_equal(a + 4093, b, 1007);
	assert_int_equal(flow_pattern_check(1, 0, 0, a, sizeof(a)), sizeof(a));
	assert_int_equal(flow_pattern_check(1, 0, 4093, b, 1007), 1007);
	b[500] ^= 1;
	assert_int_equal(flow_pattern_check(1, 0, 4093, b, 1007), 500);
	/* Other streams and seeds differ. */
	flow_pattern(1, 1, 0, b, 64);
	assert_memory_not_equal(a, b, 64);
	flow_pattern(2, 0, 0, b, 64);
	assert_memory_not_equal(a, b, 64);
}

static void test_socks(void **state)
{
	uint8_t b[300];
	char err[120];
	int n;

	(void)state;
	n = flow_socks5_request("127.0.0.1", 9000, b, sizeof(b));
	assert_int_equal(n, 10);
	assert_int_equal(b[3], 1);
	assert_int_equal(b[8] << 8 | b[9], 9000);
	n = flow_socks5_request("::1", 1, b, sizeof(b));
	assert_int_equal(n, 22);
	n = flow_socks5_request("recv.example", 80, b, sizeof(b));
	assert_int_equal(n, 4 + 1 + 12 + 2);
	assert_int_equal(b[3], 3);
	{
		char longname[300];

		memset(longname, 'a', 256);
		longname[256] = '\0';
		assert_int_equal(flow_socks5_request(longname, 80, b, sizeof(b)), -1);
	}
	assert_int_equal(flow_socks5_request("", 80, b, sizeof(b)), -1);
	{
		static const uint8_t ok4[] = { 5, 0, 0, 1, 1, 2, 3, 4, 0, 80 };
		static const uint8_t okname[] = { 5, 0, 0, 3, 3, 'a', 'b', 'c', 0, 80 };
		static const uint8_t refused[] = { 5, 5, 0, 1 };
		static const uint8_t v4[] = { 4, 90 };
		static const uint8_t badtype[] = { 5, 0, 0, 9, 0 };

		assert_int_equal(flow_socks5_reply_len(ok4, 1, err, sizeof(err)), 0);
		assert_int_equal(flow_socks5_reply_len(ok4, 9, err, sizeof(err)), 0);
		assert_int_equal(flow_socks5_reply_len(ok4, 10, err, sizeof(err)), 10);
		assert_int_equal(flow_socks5_reply_len(okname, 10, err, sizeof(err)), 10);
		assert_int_equal(flow_socks5_reply_len(refused, 4, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "refused"));
		assert_int_equal(flow_socks5_reply_len(v4, 2, err, sizeof(err)), -1);
		assert_int_equal(flow_socks5_reply_len(badtype, 5, err, sizeof(err)), -1);
	}
}

static void test_size(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(flow_parse_size("10", 100, &v), 0);
	assert_true(v == 10);
	assert_int_equal(flow_parse_size("2MiB", 1ULL << 40, &v), 0);
	assert_true(v == 2u << 20);
	assert_int_equal(flow_parse_size("3k", 1ULL << 40, &v), 0);
	assert_true(v == 3000);
	assert_int_equal(flow_parse_size("1G", 1ULL << 40, &v), 0);
	assert_int_equal(flow_parse_size("2KiB", 1000, &v), -1);
	assert_int_equal(flow_parse_size("-1", 1000, &v), -1);
	assert_int_equal(flow_parse_size("1.5M", 1ULL << 40, &v), -1);
	assert_int_equal(flow_parse_size("1 M", 1ULL << 40, &v), -1);
	assert_int_equal(flow_parse_size("", 10, &v), -1);
	assert_int_equal(flow_parse_size("99999999999999999999999", UINT64_MAX, &v), -1);
	assert_int_equal(flow_parse_size("18446744073709551615GiB", UINT64_MAX, &v), -1);
}

static void test_latency(void **state)
{
	static struct lat_hist h;
	json_t *j;

	(void)state;
	lat_reset(&h);
	assert_true(lat_quantile(&h, 0.5) == 0);
	for (uint64_t us = 1; us <= 10000; us++)
		lat_add(&h, us);
	/* Within the 2% bucket width. */
	assert_in_range(lat_quantile(&h, 0.5), 4900, 5200);
	assert_in_range(lat_quantile(&h, 0.99), 9700, 10000);
	assert_true(lat_quantile(&h, 1.0) == 10000);
	assert_true(lat_quantile(&h, 0.0) == 1);
	lat_add(&h, UINT64_MAX);           /* absurd samples land in the last bucket */
	assert_true(lat_quantile(&h, 1.0) == UINT64_MAX);
	j = lat_to_json(&h);
	assert_int_equal(json_integer_value(json_object_get(j, "count")), 10001);
	assert_true(json_array_size(json_object_get(j, "cdf")) > 10);
	json_decref(j);
}

static void test_access(void **state)
{
	char host[256], path[64];
	uint16_t port;

	(void)state;
	assert_true(lab_access_host("127.0.0.1:8090", "127.0.0.1:8090", 8090, 1));
	assert_true(lab_access_host("localhost:8090", "127.0.0.1:8090", 8090, 1));
	assert_false(lab_access_host("evil.example:8090", "127.0.0.1:8090", 8090, 1));
	assert_false(lab_access_host(NULL, "127.0.0.1:8090", 8090, 1));
	assert_true(lab_access_origin(NULL, "127.0.0.1:8090", 8090, 1));
	assert_true(lab_access_origin("http://127.0.0.1:8090", "127.0.0.1:8090", 8090, 1));
	assert_false(lab_access_origin("null", "127.0.0.1:8090", 8090, 1));
	assert_false(lab_access_origin("https://127.0.0.1:8090", "127.0.0.1:8090", 8090, 1));
	assert_true(lab_access_json("application/json; charset=utf-8"));
	assert_false(lab_access_json("text/plain"));
	assert_false(lab_access_json("application/jsonx"));
	assert_true(lab_access_loopback_hostport("127.0.0.1:0", host, sizeof(host), &port, 1));
	assert_true(lab_access_loopback_hostport("[::1]:80", host, sizeof(host), &port, 0));
	assert_false(lab_access_loopback_hostport("0.0.0.0:80", host, sizeof(host), &port, 0));
	assert_false(lab_access_loopback_hostport("10.0.0.1:80", host, sizeof(host), &port, 0));
	assert_false(lab_access_loopback_hostport("localhost:80", host, sizeof(host), &port, 0));
	assert_int_equal(lab_http_parse_url("http://127.0.0.1:8080/", host, sizeof(host), &port,
	                                    path, sizeof(path)), 0);
	assert_string_equal(path, "");
	assert_int_equal(port, 8080);
	assert_int_equal(lab_http_parse_url("http://[::1]:9/a/b", host, sizeof(host), &port,
	                                    path, sizeof(path)), 0);
	assert_string_equal(path, "/a/b");
	assert_int_equal(lab_http_parse_url("https://127.0.0.1:1", host, sizeof(host), &port,
	                                    path, sizeof(path)), -1);
	assert_int_equal(lab_http_parse_url("http://evil.example:80", host, sizeof(host), &port,
	                                    path, sizeof(path)), -1);
	assert_int_equal(lab_http_parse_url("http://127.0.0.1:80/a b", host, sizeof(host), &port,
	                                    path, sizeof(path)), -1);
	assert_int_equal(lab_http_parse_url("http://127.0.0.1:80/a\r\nX: y", host, sizeof(host),
	                                    &port, path, sizeof(path)), -1);
	assert_int_equal(lab_http_parse_url("http://127.0.0.1:80?q", host, sizeof(host), &port,
	                                    path, sizeof(path)), -1);
	assert_int_equal(lab_http_parse_url("http://127.0.0.1", host, sizeof(host), &port,
	                                    path, sizeof(path)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_trailer),
		cmocka_unit_test(test_pattern),
		cmocka_unit_test(test_socks),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_latency),
		cmocka_unit_test(test_access),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
