/*
 * Unit tests for src/metrics: the request parser fed raw hostile bytes,
 * and the Prometheus and JSON renderers checked by strict readers (a
 * line-by-line check of the text exposition format here, jansson for the
 * JSON).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <jansson.h>

#include "metrics/metrics.h"

static int parse(const char *s, struct metrics_req *r)
{
	return metrics_http_parse(s, strlen(s), r);
}

/* ---------- request parser ---------- */

static void test_parse_good(void **state)
{
	struct metrics_req r;
	const char *q = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";

	assert_int_equal(parse(q, &r), (int)strlen(q));
	assert_int_equal(r.route, ROUTE_METRICS);
	assert_int_equal(r.head, 0);
	assert_int_equal(r.streams, 0);
	q = "GET /stats?streams=1 HTTP/1.0\n\n";
	assert_int_equal(parse(q, &r), (int)strlen(q));
	assert_int_equal(r.route, ROUTE_STATS);
	assert_int_equal(r.streams, 1);
	q = "HEAD /stats?x=y&streams=true HTTP/1.1\r\n\r\nGARBAGE AFTER";
	assert_int_equal(parse(q, &r), (int)(strstr(q, "GARBAGE") - q));
	assert_int_equal(r.head, 1);
	assert_int_equal(r.streams, 1);
	assert_true(parse("GET /stats?streams=10 HTTP/1.1\r\n\r\n", &r) > 0);
	assert_int_equal(r.streams, 0);
	/* Content-Length: 0 is no body. */
	assert_true(parse("GET /stats HTTP/1.1\r\nContent-Length:  0 \r\n\r\n", &r) > 0);
}

static void test_parse_incomplete(void **state)
{
	const char *q = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	struct metrics_req r;

	/* Every proper prefix needs more. */
	for (size_t n = 0; n < strlen(q); n++)
		assert_int_equal(metrics_http_parse(q, n, &r), 0);
	assert_int_equal(metrics_http_parse(q, strlen(q), &r), (int)strlen(q));
}

static void test_parse_errors(void **state)
{
	static const struct {
		const char *req;
		int want;
	} cases[] = {
		{ "POST /metrics HTTP/1.1\r\n\r\n", -405 },
		{ "DELETE /stats HTTP/1.1\r\n\r\n", -405 },
		{ "get /metrics HTTP/1.1\r\n\r\n", -405 },
		{ "GET /metricsx HTTP/1.1\r\n\r\n", -404 },
		{ "GET / HTTP/1.1\r\n\r\n", -404 },
		{ "GET /metrics/ HTTP/1.1\r\n\r\n", -404 },
		{ "GET /%2e%2e/metrics HTTP/1.1\r\n\r\n", -404 },
		{ "GET /metrics HTTP/2.0\r\n\r\n", -505 },
		{ "GET /metrics HTTP/1.2\r\n\r\n", -505 },
		{ "GET /metrics HTTX/1.1\r\n\r\n", -400 },
		{ "GET /metrics\r\n\r\n", -400 },
		{ "GET  /metrics HTTP/1.1\r\n\r\n", -400 },
		{ "GET /metrics  HTTP/1.1\r\n\r\n", -400 },
		{ " GET /metrics HTTP/1.1\r\n\r\n", -400 },
		{ "GET http://x/metrics HTTP/1.1\r\n\r\n", -400 },
		{ "GET * HTTP/1.1\r\n\r\n", -400 },
		{ "GET /metrics#x HTTP/1.1\r\n\r\n", -400 },
		{ "GET /met\x01rics HTTP/1.1\r\n\r\n", -400 },
		{ "GET /met\xffrics HTTP/1.1\r\n\r\n", -400 },
		{ "GET /metrics HTTP/1.1\rHost: x\r\n\r\n", -400 },
		{ "GET /metrics HTTP/1.1\r\nHost x\r\n\r\n", -400 },
		{ "GET /metrics HTTP/1.1\r\n: x\r\n\r\n", -400 },
		{ "GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", -400 },
		{ "GET /metrics HTTP/1.1\r\n folded\r\n\r\n", -400 },
		{ "GET /metrics HTTP/1.1\r\nX: a\x01b\r\n\r\n", -400 },
		{ "GET /metrics HTTP/1.1\r\nX: a\x7f\r\n\r\n", -400 },
		{ "GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", -400 },
		{ "GET /metrics HTTP/1.1\r\nContent-Length: 00\r\n\r\n", -400 },
		{ "GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", -400 },
		{ "\x16\x03\x01\x02\x05\x01\x05\x01\xfc\x03\x03\n", -400 },
		{ "\r\n\r\n\r\n\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n", -400 },
	};
	struct metrics_req r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = parse(cases[i].req, &r);

		if (got != cases[i].want)
			fail_msg("case %zu (%s): got %d, want %d", i, cases[i].req, got,
			         cases[i].want);
	}
	/* A NUL anywhere in the request line or a header. */
	{
		const char q[] = "GET /metrics HTTP/1.1\r\nX: a\0b\r\n\r\n";

		assert_int_equal(metrics_http_parse(q, sizeof(q) - 1, &r), -400);
	}
	{
		const char q[] = "GET /met\0rics HTTP/1.1\r\n\r\n";

		assert_int_equal(metrics_http_parse(q, sizeof(q) - 1, &r), -400);
	}
}

static void test_parse_limits(void **state)
{
	char *buf = malloc(METRICS_REQ_MAX * 2);
	struct metrics_req r;
	size_t n;

	assert_non_null(buf);
	/* Target one over the limit: 414; at the limit: a 404 (unknown path). */
	n = (size_t)sprintf(buf, "GET /");
	memset(buf + n, 'a', METRICS_TARGET_MAX);
	n += METRICS_TARGET_MAX;
	n += (size_t)sprintf(buf + n, " HTTP/1.1\r\n\r\n");
	assert_int_equal(metrics_http_parse(buf, n, &r), -414);
	n = (size_t)sprintf(buf, "GET /");
	memset(buf + n, 'a', METRICS_TARGET_MAX - 1);
	n += METRICS_TARGET_MAX - 1;
	n += (size_t)sprintf(buf + n, " HTTP/1.1\r\n\r\n");
	assert_int_equal(metrics_http_parse(buf, n, &r), -404);
	/* No line end within the limit: 413, not "need more" forever. */
	memset(buf, 'A', METRICS_REQ_MAX);
	assert_int_equal(metrics_http_parse(buf, METRICS_REQ_MAX, &r), -413);
	assert_int_equal(metrics_http_parse(buf, METRICS_REQ_MAX - 1, &r), 0);
	/* Headers that never end. */
	n = (size_t)sprintf(buf, "GET /metrics HTTP/1.1\r\n");
	while (n + 8 < METRICS_REQ_MAX)
		n += (size_t)sprintf(buf + n, "X: y\r\n");
	assert_int_equal(metrics_http_parse(buf, n, &r), -413);
	/* Too many header lines, small as they are. */
	n = (size_t)sprintf(buf, "GET /metrics HTTP/1.1\r\n");
	for (int i = 0; i <= METRICS_HEADERS_MAX; i++)
		n += (size_t)sprintf(buf + n, "X: y\r\n");
	n += (size_t)sprintf(buf + n, "\r\n");
	assert_int_equal(metrics_http_parse(buf, n, &r), -413);
	/* Exactly the maximum count is fine. */
	n = (size_t)sprintf(buf, "GET /metrics HTTP/1.1\r\n");
	for (int i = 0; i < METRICS_HEADERS_MAX; i++)
		n += (size_t)sprintf(buf + n, "X: y\r\n");
	n += (size_t)sprintf(buf + n, "\r\n");
	assert_int_equal(metrics_http_parse(buf, n, &r), (int)n);
	free(buf);
}

/* Random bytes never crash it, and a positive answer is within the input. */
static void test_parse_random(void **state)
{
	char buf[512];
	struct metrics_req r;
	unsigned seed = 12345;

	for (int i = 0; i < 20000; i++) {
		size_t n = (size_t)(rand_r(&seed) % sizeof(buf));
		int got;

		for (size_t k = 0; k < n; k++)
			buf[k] = (char)(rand_r(&seed) % 4 == 0 ? "\r\n :/GET"[rand_r(&seed) % 8]
			                                      : rand_r(&seed));
		got = metrics_http_parse(buf, n, &r);
		assert_true(got <= (int)n);
		assert_true(got >= 0 || got == -400 || got == -404 || got == -405 ||
		            got == -413 || got == -414 || got == -505);
	}
}

static void test_loopback(void **state)
{
	struct sockaddr_in a4;
	struct sockaddr_in6 a6;

	memset(&a4, 0, sizeof(a4));
	a4.sin_family = AF_INET;
	inet_pton(AF_INET, "127.3.4.5", &a4.sin_addr);
	assert_true(metrics_addr_is_loopback((struct sockaddr *)&a4));
	inet_pton(AF_INET, "0.0.0.0", &a4.sin_addr);
	assert_false(metrics_addr_is_loopback((struct sockaddr *)&a4));
	inet_pton(AF_INET, "10.0.0.1", &a4.sin_addr);
	assert_false(metrics_addr_is_loopback((struct sockaddr *)&a4));
	memset(&a6, 0, sizeof(a6));
	a6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::1", &a6.sin6_addr);
	assert_true(metrics_addr_is_loopback((struct sockaddr *)&a6));
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &a6.sin6_addr);
	assert_true(metrics_addr_is_loopback((struct sockaddr *)&a6));
	inet_pton(AF_INET6, "::", &a6.sin6_addr);
	assert_false(metrics_addr_is_loopback((struct sockaddr *)&a6));
	inet_pton(AF_INET6, "::ffff:10.0.0.1", &a6.sin6_addr);
	assert_false(metrics_addr_is_loopback((struct sockaddr *)&a6));
}

/* ---------- renderers ---------- */

static struct metrics_snapshot *sample_snapshot(int with_addresses)
{
	static struct metrics_snapshot s;
	struct metrics_session *ss;

	memset(&s, 0, sizeof(s));
	s.role = "server";
	s.engine = "native";
	s.cc = "newreno";
	s.version = "0.1.0";
	s.uptime_s = 42;
	s.c.conn_accepted = 7;
	s.c.conn_refused[MR_HOST_UNREACHABLE] = 2;
	s.c.sessions_established = 3;
	s.c.sessions_closed = 1;
	s.have_probes = 1;
	s.probes[MP_SOURCE_LIMITED] = 9;
	s.handshakes = 4;
	s.nsessions = 2;
	s.sessions = calloc(2, sizeof(*s.sessions));
	assert_non_null(s.sessions);
	ss = &s.sessions[0];
	ss->id = 5;
	ss->state = "up";
	ss->have = MS_HAVE_RTT | MS_HAVE_RTTVAR | MS_HAVE_CWND | MS_HAVE_FLIGHT |
	           MS_HAVE_RWND | MS_HAVE_RTX | MS_HAVE_RTX_KIND | MS_HAVE_SCTP_PKT;
	ss->srtt_ms = 1234;
	ss->rttvar_ms = 5;
	ss->rto_ms = 200;
	ss->cwnd = 100000;
	ss->flight = 4000;
	ss->retransmissions = 3;
	ss->have |= MS_HAVE_MIN_RTT | MS_HAVE_RACK | MS_HAVE_SPURIOUS | MS_HAVE_SACKS |
	            MS_HAVE_RCV | MS_HAVE_PACING | MS_HAVE_BTL_BW | MS_HAVE_DELIVERY;
	ss->cc = "bbr";
	ss->min_rtt_ms = 1007;
	ss->reo_wnd_ms = 12;
	ss->rack_losses = 21;
	ss->tlp_losses = 22;
	ss->spurious_rtx = 23;
	ss->spurious_rto = 24;
	ss->undos = 25;
	ss->sacks_sent = 26;
	ss->sacks_received = 27;
	ss->dup_tsns = 28;
	ss->data_dropped = 29;
	ss->pacing_rate = 12500000;
	ss->pace_waits = 30;
	ss->btl_bw = 11000000;
	ss->delivery_rate = 9000000;
	ss->bytes_in = 1000;
	ss->bytes_out = 2000;
	ss->packets_in = 10;
	ss->packets_out = 20;
	ss->npaths = 2;
	ss->paths[0].kind = "udp";
	ss->paths[0].state = "active";
	ss->paths[0].last_rx_ms = 15;
	ss->paths[1].kind = "tcp";
	ss->paths[1].state = "failed";
	ss->paths[1].last_rx_ms = -1;
	ss->streams = calloc(1, sizeof(*ss->streams));
	assert_non_null(ss->streams);
	ss->nstreams = 1;
	ss->streams[0].sid = 3;
	ss->streams[0].state = "open";
	ss->streams[0].bytes_in = 11;
	ss->streams[0].credit_tx = 32768;
	ss->streams[0].age_ms = 2500;
	/* usrsctp-like: only some fields. */
	ss = &s.sessions[1];
	ss->id = 6;
	ss->state = "connecting";
	ss->streams_truncated = 1;
	ss->have = MS_HAVE_RTT | MS_HAVE_CWND;
	if (with_addresses) {
		/* Hostile strings where addresses would go: escaping must hold. */
		snprintf(s.sessions[0].peer, sizeof(s.sessions[0].peer), "a\"b\\c\nd");
		snprintf(s.sessions[0].paths[0].addr, sizeof(s.sessions[0].paths[0].addr),
		         "x\"}\n# TYPE evil counter");
		snprintf(s.sessions[0].streams[0].dest, sizeof(s.sessions[0].streams[0].dest),
		         "\x01\xff\"");
	}
	return &s;
}

/*
 * A strict reader of the text format: every line is a HELP, a TYPE or a
 * sample; a family's HELP and TYPE come once, before its samples, and
 * its samples are contiguous; names and label names are valid; label
 * values use only the three escapes; values are numbers; counters end in
 * _total; no sample (name + labels) appears twice.
 */
static int valid_name(const char *p, size_t n, int label)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (!(isalpha((unsigned char)c) || c == '_' || (!label && c == ':') ||
		      (i > 0 && isdigit((unsigned char)c))))
			return 0;
	}
	return 1;
}

static const char *check_prom(const char *text)
{
	static char why[256];
	char fam_done[200][80], cur[80] = "", typed[80] = "", type[200] = "";
	char seen_keys[400][200];
	int nfam = 0, nseen = 0;
	const char *l = text;

	while (*l != '\0') {
		const char *e = strchr(l, '\n');
		size_t n;

		if (e == NULL)
			return "last line has no newline";
		n = (size_t)(e - l);
		if (n > 0 && l[0] == '#') {
			char kw[8], name[80], rest[200];

			if (sscanf(l, "# %7s %79s %199[^\n]", kw, name, rest) < 3)
				return "bad comment line";
			if (!valid_name(name, strlen(name), 0))
				return "bad metric name in HELP/TYPE";
			if (strcmp(kw, "HELP") == 0) {
				for (int i = 0; i < nfam; i++)
					if (strcmp(fam_done[i], name) == 0)
						return "family repeated";
				if (nfam < 200)
					snprintf(fam_done[nfam++], 80, "%s", name);
				snprintf(cur, sizeof(cur), "%s", name);
				typed[0] = '\0';
			} else if (strcmp(kw, "TYPE") == 0) {
				if (strcmp(name, cur) != 0)
					return "TYPE without its HELP";
				if (strcmp(rest, "counter") != 0 && strcmp(rest, "gauge") != 0)
					return "unknown type";
				if (strcmp(rest, "counter") == 0 &&
				    (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total") != 0))
					return "counter without _total";
				snprintf(typed, sizeof(typed), "%s", name);
				snprintf(type, sizeof(type), "%s", rest);
			} else {
				return "unknown comment keyword";
			}
		} else {
			const char *p = l, *name_end;
			char key[200];
			size_t klen;
			char *endnum;

			while (p < e && *p != '{' && *p != ' ')
				p++;
			name_end = p;
			if (!valid_name(l, (size_t)(name_end - l), 0))
				return "bad sample name";
			if ((size_t)(name_end - l) != strlen(typed) ||
			    strncmp(l, typed, strlen(typed)) != 0) {
				snprintf(why, sizeof(why), "sample %.*s outside its family %s",
				         (int)(name_end - l), l, typed);
				return why;
			}
			if (*p == '{') {
				p++;
				for (;;) {
					const char *ln = p;

					while (p < e && *p != '=')
						p++;
					if (!valid_name(ln, (size_t)(p - ln), 1))
						return "bad label name";
					if (p + 1 >= e || p[1] != '"')
						return "label value not quoted";
					p += 2;
					while (p < e && *p != '"') {
						if (*p == '\\') {
							if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
								return "bad escape";
							p++;
						}
						p++;
					}
					if (p >= e)
						return "unterminated label value";
					p++;
					if (*p == ',') {
						p++;
						continue;
					}
					if (*p == '}') {
						p++;
						break;
					}
					return "bad label separator";
				}
			}
			if (*p != ' ')
				return "no space before the value";
			klen = (size_t)(p - l);
			if (klen >= sizeof(key))
				return "sample key too long";
			memcpy(key, l, klen);
			key[klen] = '\0';
			for (int i = 0; i < nseen; i++)
				if (strcmp(seen_keys[i], key) == 0)
					return "duplicate sample";
			if (nseen < 400)
				snprintf(seen_keys[nseen++], 200, "%s", key);
			p++;
			strtod(p, &endnum);
			if (endnum == p || endnum != e)
				return "value is not a number";
			if (strcmp(type, "counter") == 0 && *p == '-')
				return "negative counter";
		}
		l = e + 1;
	}
	return NULL;
}

static void test_prometheus(void **state)
{
	struct metrics_snapshot *s = sample_snapshot(0);
	struct mbuf b;
	const char *why;

	mbuf_init(&b, 1 << 20);
	assert_int_equal(metrics_render_prometheus(s, 1, &b), 0);
	why = check_prom(b.p);
	if (why != NULL)
		fail_msg("%s\n%s", why, b.p);
	assert_non_null(strstr(b.p, "sctpt_session_srtt_seconds{session=\"5\"} 1.234\n"));
	assert_non_null(strstr(b.p, "sctpt_session_rttvar_seconds{session=\"5\"} 0.005\n"));
	/* Session 6 has no rttvar: no sample for it. */
	assert_null(strstr(b.p, "sctpt_session_rttvar_seconds{session=\"6\"}"));
	assert_non_null(strstr(b.p, "sctpt_session_cwnd_bytes{session=\"6\"} 0\n"));
	assert_non_null(strstr(b.p, "sctpt_session_bytes_total{session=\"5\",direction=\"out\"} 2000\n"));
	assert_non_null(strstr(b.p, "sctpt_connections_refused_total{reason=\"host_unreachable\"} 2\n"));
	assert_non_null(strstr(b.p, "sctpt_probes_dropped_total{reason=\"source_limited\"} 9\n"));
	assert_non_null(strstr(b.p, "sctpt_session_path_info{session=\"5\",path=\"1\","
	                            "kind=\"tcp\",state=\"failed\"} 1\n"));
	assert_non_null(strstr(b.p, "sctpt_stream_bytes_total{session=\"5\",stream=\"3\","
	                            "direction=\"in\"} 11\n"));
	assert_non_null(strstr(b.p, "sctpt_stream_age_seconds{session=\"5\",stream=\"3\"} 2.500\n"));
	/* Loss recovery and pacing: each family with its HELP and TYPE, the
	 * times in seconds, the rates in bytes per second. */
	{
		static const char *const want[] = {
			"# TYPE sctpt_session_cc_info gauge\n"
			"sctpt_session_cc_info{session=\"5\",cc=\"bbr\"} 1\n",
			"# TYPE sctpt_session_min_rtt_seconds gauge\n"
			"sctpt_session_min_rtt_seconds{session=\"5\"} 1.007\n",
			"# TYPE sctpt_session_reordering_window_seconds gauge\n"
			"sctpt_session_reordering_window_seconds{session=\"5\"} 0.012\n",
			"# TYPE sctpt_session_rack_losses_total counter\n"
			"sctpt_session_rack_losses_total{session=\"5\"} 21\n",
			"# TYPE sctpt_session_tlp_losses_total counter\n"
			"sctpt_session_tlp_losses_total{session=\"5\"} 22\n",
			"# TYPE sctpt_session_spurious_retransmissions_total counter\n"
			"sctpt_session_spurious_retransmissions_total{session=\"5\"} 23\n",
			"# TYPE sctpt_session_spurious_rtos_total counter\n"
			"sctpt_session_spurious_rtos_total{session=\"5\"} 24\n",
			"# TYPE sctpt_session_undos_total counter\n"
			"sctpt_session_undos_total{session=\"5\"} 25\n",
			"# TYPE sctpt_session_sacks_sent_total counter\n"
			"sctpt_session_sacks_sent_total{session=\"5\"} 26\n",
			"# TYPE sctpt_session_sacks_received_total counter\n"
			"sctpt_session_sacks_received_total{session=\"5\"} 27\n",
			"# TYPE sctpt_session_duplicate_tsns_total counter\n"
			"sctpt_session_duplicate_tsns_total{session=\"5\"} 28\n",
			"# TYPE sctpt_session_data_dropped_total counter\n"
			"sctpt_session_data_dropped_total{session=\"5\"} 29\n",
			"# TYPE sctpt_session_pacing_rate_bytes_per_second gauge\n"
			"sctpt_session_pacing_rate_bytes_per_second{session=\"5\"} 12500000\n",
			"# TYPE sctpt_session_pace_waits_total counter\n"
			"sctpt_session_pace_waits_total{session=\"5\"} 30\n",
			"# TYPE sctpt_session_bottleneck_bandwidth_bytes_per_second gauge\n"
			"sctpt_session_bottleneck_bandwidth_bytes_per_second{session=\"5\"} 11000000\n",
			"# TYPE sctpt_session_delivery_rate_bytes_per_second gauge\n"
			"sctpt_session_delivery_rate_bytes_per_second{session=\"5\"} 9000000\n",
		};

		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
			if (strstr(b.p, want[i]) == NULL)
				fail_msg("missing:\n%s\nin:\n%s", want[i], b.p);
	}
	assert_non_null(strstr(b.p, "# HELP sctpt_session_sacks_received_total SACK chunks received.\n"));
	/* Session 6 (usrsctp-like) has none of them: no sample, not a 0. */
	assert_null(strstr(b.p, "{session=\"6\",cc="));
	assert_null(strstr(b.p, "sctpt_session_min_rtt_seconds{session=\"6\"}"));
	assert_null(strstr(b.p, "sctpt_session_rack_losses_total{session=\"6\"}"));
	assert_null(strstr(b.p, "sctpt_session_sacks_sent_total{session=\"6\"}"));
	assert_null(strstr(b.p, "sctpt_session_pacing_rate_bytes_per_second{session=\"6\"}"));
	assert_null(strstr(b.p, "sctpt_session_delivery_rate_bytes_per_second{session=\"6\"}"));
	/* No address anywhere without the opt-in. */
	assert_null(strstr(b.p, "address="));
	mbuf_free(&b);
	/* Without ?streams=1, no stream families. */
	mbuf_init(&b, 1 << 20);
	assert_int_equal(metrics_render_prometheus(s, 0, &b), 0);
	assert_null(check_prom(b.p));
	assert_null(strstr(b.p, "sctpt_stream_"));
	mbuf_free(&b);
	metrics_snapshot_clear(s);
}

static void test_prometheus_escaping(void **state)
{
	struct metrics_snapshot *s = sample_snapshot(1);
	struct mbuf b;
	const char *why;

	mbuf_init(&b, 1 << 20);
	assert_int_equal(metrics_render_prometheus(s, 1, &b), 0);
	why = check_prom(b.p);
	if (why != NULL)
		fail_msg("%s\n%s", why, b.p);
	assert_non_null(strstr(b.p, "address=\"a\\\"b\\\\c\\nd\""));
	assert_non_null(strstr(b.p, "address=\"x\\\"}\\n# TYPE evil counter\""));
	mbuf_free(&b);
	metrics_snapshot_clear(s);
}

static void test_json(void **state)
{
	struct metrics_snapshot *s = sample_snapshot(1);
	struct mbuf b;
	json_error_t err;
	json_t *root, *ss, *st;

	mbuf_init(&b, 1 << 20);
	assert_int_equal(metrics_render_json(s, 1, &b), 0);
	root = json_loads(b.p, JSON_REJECT_DUPLICATES, &err);
	if (root == NULL)
		fail_msg("invalid JSON (%s at %d): %s", err.text, err.position, b.p);
	assert_int_equal(json_integer_value(json_object_get(root, "schema")), 1);
	assert_string_equal(json_string_value(json_object_get(
		json_object_get(root, "process"), "engine")), "native");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
		json_object_get(root, "process"), "connections_refused"), "host_unreachable")), 2);
	ss = json_array_get(json_object_get(root, "sessions"), 0);
	assert_int_equal(json_integer_value(json_object_get(ss, "id")), 5);
	assert_int_equal(json_integer_value(json_object_get(ss, "srtt_ms")), 1234);
	assert_int_equal(json_integer_value(json_object_get(ss, "bytes_out")), 2000);
	{
		static const struct { const char *key; json_int_t v; } want[] = {
			{ "min_rtt_ms", 1007 }, { "reo_wnd_ms", 12 }, { "rack_losses", 21 },
			{ "tlp_losses", 22 }, { "spurious_retransmissions", 23 },
			{ "spurious_rtos", 24 }, { "undos", 25 }, { "sacks_sent", 26 },
			{ "sacks_received", 27 }, { "dup_tsns", 28 }, { "data_dropped", 29 },
			{ "pacing_rate", 12500000 }, { "pace_waits", 30 },
			{ "btl_bw", 11000000 }, { "delivery_rate", 9000000 },
		};

		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
			json_t *v = json_object_get(ss, want[i].key);

			if (!json_is_integer(v) || json_integer_value(v) != want[i].v)
				fail_msg("session 5: %s is not %lld", want[i].key,
				         (long long)want[i].v);
			/* ... and absent from the usrsctp-like session. */
			if (json_object_get(json_array_get(json_object_get(root, "sessions"), 1),
			                    want[i].key) != NULL)
				fail_msg("session 6 claims %s", want[i].key);
		}
	}
	assert_string_equal(json_string_value(json_object_get(ss, "cc")), "bbr");
	assert_null(json_object_get(json_array_get(json_object_get(root, "sessions"), 1), "cc"));
	assert_string_equal(json_string_value(json_object_get(ss, "peer")), "a\"b\\c\nd");
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(json_object_get(ss, "paths"), 1), "state")), "failed");
	assert_null(json_object_get(json_array_get(json_object_get(ss, "paths"), 1),
	                            "last_rx_ms"));
	st = json_array_get(json_object_get(ss, "streams"), 0);
	assert_int_equal(json_integer_value(json_object_get(st, "credit_tx")), 32768);
	/* Control and non-ASCII bytes came out as \u escapes: valid JSON. */
	assert_string_equal(json_string_value(json_object_get(st, "destination")),
	                    "\x01\xc3\xbf\"");
	/* Fields the engine did not give are absent, not zero. */
	ss = json_array_get(json_object_get(root, "sessions"), 1);
	assert_null(json_object_get(ss, "rttvar_ms"));
	assert_null(json_object_get(ss, "flight"));
	assert_non_null(json_object_get(ss, "cwnd"));
	assert_null(json_object_get(ss, "peer"));
	assert_int_equal(json_array_size(json_object_get(ss, "streams")), 0);
	assert_true(json_is_true(json_object_get(ss, "streams_truncated")));
	assert_null(json_object_get(json_array_get(json_object_get(root, "sessions"), 0),
	                            "streams_truncated"));
	json_decref(root);
	mbuf_free(&b);
	metrics_snapshot_clear(s);
}

/* The output cap: rendering fails cleanly instead of growing without end. */
static void test_output_cap(void **state)
{
	struct metrics_snapshot *s = sample_snapshot(0);
	struct mbuf b;

	mbuf_init(&b, 512);
	assert_int_equal(metrics_render_prometheus(s, 1, &b), -1);
	assert_true(b.len < 512);
	mbuf_free(&b);
	mbuf_init(&b, 256);
	assert_int_equal(metrics_render_json(s, 1, &b), -1);
	mbuf_free(&b);
	metrics_snapshot_clear(s);
}

static void test_names(void **state)
{
	assert_string_equal(metrics_refusal_name(metrics_refusal_from_code(0x04)),
	                    "host_unreachable");
	assert_string_equal(metrics_refusal_name(metrics_refusal_from_code(0x12)), "limit");
	assert_string_equal(metrics_refusal_name(metrics_refusal_from_code(0x99)), "other");
	assert_string_equal(metrics_refusal_name(MR_COUNT), "other");
	for (int i = 0; i < MR_COUNT; i++)
		assert_true(valid_name(metrics_refusal_name(i), strlen(metrics_refusal_name(i)), 1));
	for (int i = 0; i < MP_COUNT; i++)
		assert_true(valid_name(metrics_probe_name(i), strlen(metrics_probe_name(i)), 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_incomplete),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_parse_random),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_prometheus),
		cmocka_unit_test(test_prometheus_escaping),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_output_cap),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
