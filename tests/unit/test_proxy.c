/*
 * Unit tests for the upstream proxy client (src/carrier/proxy.c): URL
 * parsing, the SOCKS5 / SOCKS4 / HTTP CONNECT state machines and the
 * SOCKS5 UDP header.  Every exchange is written out as the raw bytes a
 * real proxy would see and send, and each conversation is replayed with
 * the proxy's bytes arriving all at once and one by one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "carrier/proxy.h"
#include "util/netaddr.h"

#define UNUSED __attribute__((unused))

/* A byte-string literal and its length, without the literal's own NUL. */
#define B(s) (const uint8_t *)(s), (sizeof(s) - 1)

static struct carrier_proxy px(const char *url)
{
	struct carrier_proxy p;
	const char *err = "unset";

	assert_int_equal(carrier_proxy_parse(url, &p, &err), 0);
	assert_null(err);
	return p;
}

static struct sockaddr_storage addr(const char *host, uint16_t port, socklen_t *len)
{
	struct sockaddr_storage ss;
	socklen_t l;

	assert_int_equal(netaddr_from_numeric(host, port, &ss, &l), 0);
	if (len != NULL)
		*len = l;
	return ss;
}

static const char *fmt(const struct sockaddr_storage *ss)
{
	static char buf[128];

	return netaddr_format((const struct sockaddr *)ss, buf, sizeof(buf));
}

/* ---- URL parsing ---- */

static void test_parse_forms(void **state UNUSED)
{
	struct carrier_proxy p;

	p = px("socks5://127.0.0.1:1080");
	assert_int_equal(p.type, CARRIER_PROXY_SOCKS5);
	assert_false(p.has_auth);
	assert_string_equal(fmt(&p.addr), "127.0.0.1:1080");
	assert_int_equal(p.len, sizeof(struct sockaddr_in));

	p = px("socks5://alice:s3cret@10.0.0.1:9050");
	assert_true(p.has_auth);
	assert_string_equal(p.user, "alice");
	assert_string_equal(p.pass, "s3cret");
	assert_string_equal(fmt(&p.addr), "10.0.0.1:9050");

	p = px("socks5://alice@10.0.0.1:9050");         /* user, no password */
	assert_true(p.has_auth);
	assert_string_equal(p.user, "alice");
	assert_string_equal(p.pass, "");

	p = px("socks5://a:p@ss@10.0.0.1:1");           /* the last '@' ends the credentials */
	assert_string_equal(p.user, "a");
	assert_string_equal(p.pass, "p@ss");

	p = px("socks5://a:b:c@10.0.0.1:1");            /* the first ':' splits them */
	assert_string_equal(p.user, "a");
	assert_string_equal(p.pass, "b:c");

	p = px("socks4a://tor@192.0.2.7:1080");
	assert_int_equal(p.type, CARRIER_PROXY_SOCKS4A);
	assert_string_equal(p.user, "tor");
	p = px("socks4://192.0.2.7:1080");
	assert_int_equal(p.type, CARRIER_PROXY_SOCKS4A);
	assert_false(p.has_auth);

	p = px("http://[::1]:3128");
	assert_int_equal(p.type, CARRIER_PROXY_HTTP);
	assert_int_equal(p.addr.ss_family, AF_INET6);
	assert_string_equal(fmt(&p.addr), "[::1]:3128");
	p = px("http://u:p@[2001:db8::7]:8080");
	assert_string_equal(fmt(&p.addr), "[2001:db8::7]:8080");
	assert_string_equal(p.user, "u");

	p = px("SOCKS5://127.0.0.1:1");                 /* schemes are case-insensitive */
	assert_int_equal(p.type, CARRIER_PROXY_SOCKS5);
	p = px("HTTP://127.0.0.1:65535");
	assert_int_equal(p.type, CARRIER_PROXY_HTTP);

	assert_string_equal(carrier_proxy_name(CARRIER_PROXY_SOCKS5), "socks5");
	assert_string_equal(carrier_proxy_name(CARRIER_PROXY_SOCKS4A), "socks4a");
	assert_string_equal(carrier_proxy_name(CARRIER_PROXY_HTTP), "http");
	assert_string_equal(carrier_proxy_name(CARRIER_PROXY_NONE), "none");
}

static void parse_fails(const char *url, const char *want)
{
	struct carrier_proxy p;
	const char *err = NULL;

	assert_int_equal(carrier_proxy_parse(url, &p, &err), -1);
	assert_non_null(err);
	if (want != NULL && strstr(err, want) == NULL)
		fail_msg("'%s': error '%s' does not mention '%s'", url, err, want);
}

static void test_parse_bad(void **state UNUSED)
{
	char lng[600];

	parse_fails("", "unsupported proxy type");
	parse_fails("ftp://127.0.0.1:21", "unsupported proxy type");
	parse_fails("https://127.0.0.1:443", "unsupported proxy type");
	parse_fails("socks5:/127.0.0.1:1080", "unsupported proxy type");
	parse_fails("127.0.0.1:1080", "unsupported proxy type");
	parse_fails("socks5://", "bad proxy address");
	parse_fails("socks5://127.0.0.1", "bad proxy address");
	parse_fails("socks5://127.0.0.1:", "bad proxy address");
	parse_fails("socks5://127.0.0.1:0", "bad proxy address");
	parse_fails("socks5://127.0.0.1:65536", "bad proxy address");
	parse_fails("socks5://127.0.0.1:80x", "bad proxy address");
	parse_fails("socks5://localhost:1080", "numeric");
	parse_fails("socks5://proxy.example:1080", "numeric");
	parse_fails("http://::1:3128", "bad proxy address");
	parse_fails("http://[::1]", "bad proxy address");
	parse_fails("http://[::1:3128", "bad proxy address");
	parse_fails("socks5://@127.0.0.1:1080", "empty proxy user name");
	parse_fails("socks5://:pw@127.0.0.1:1080", "empty proxy user name");
	parse_fails("socks5://u:p@", "bad proxy address");
	parse_fails("socks5://u:p@127.0.0.1:1080/", "bad proxy address");
	/* 256 bytes of user name or password do not fit CARRIER_PROXY_CRED_MAX. */
	memcpy(lng, "socks5://", 9);
	memset(lng + 9, 'u', 256);
	snprintf(lng + 265, sizeof(lng) - 265, "@127.0.0.1:1");
	parse_fails(lng, "too long");
	memcpy(lng, "socks5://u:", 11);
	memset(lng + 11, 'p', 256);
	snprintf(lng + 267, sizeof(lng) - 267, "@127.0.0.1:1");
	parse_fails(lng, "too long");
	/* 255 bytes do. */
	memset(lng + 11, 'p', 255);
	snprintf(lng + 266, sizeof(lng) - 266, "@127.0.0.1:1");
	assert_int_equal(strlen(px(lng).pass), 255);
}

/* ---- driving a negotiation ---- */

/* Everything a whole conversation produced. */
struct convo {
	int rc;
	uint8_t sent[4 * PROXY_OUT_MAX];   /* what we sent, init included */
	size_t sentlen;
	size_t used;                       /* proxy bytes consumed in total */
	int steps;
};

static void add_out(struct convo *c, const uint8_t *out, size_t outlen)
{
	assert_true(outlen <= PROXY_OUT_MAX);
	assert_true(c->sentlen + outlen <= sizeof(c->sent));
	memcpy(c->sent + c->sentlen, out, outlen);
	c->sentlen += outlen;
}

/*
 * Run a negotiation against the proxy's bytes, which become available
 * `chunk` at a time (0: all at once).  Each call gets every byte that has
 * arrived and was not consumed, as tcp.c does.
 */
static struct convo run(struct proxy_neg *n, const struct carrier_proxy *p, enum proxy_cmd cmd,
                        const struct sockaddr_storage *dest, socklen_t destlen,
                        const uint8_t *in, size_t len, size_t chunk)
{
	struct convo c;
	uint8_t out[PROXY_OUT_MAX];
	size_t outlen = 0, avail = chunk == 0 ? len : (chunk < len ? chunk : len);

	memset(&c, 0, sizeof(c));
	c.rc = proxy_neg_init(n, p, cmd, (const struct sockaddr *)dest, destlen, out, &outlen);
	add_out(&c, out, outlen);
	while (c.rc == PROXY_NEED_MORE) {
		size_t used = 12345;

		outlen = 12345;
		c.rc = proxy_neg_step(n, in + c.used, avail - c.used, &used, out, &outlen);
		c.steps++;
		assert_true(used <= avail - c.used);
		if (c.rc == PROXY_ERROR) {
			assert_int_equal(used, 0);
			assert_int_equal(outlen, 0);
		}
		add_out(&c, out, outlen);
		c.used += used;
		if (c.rc == PROXY_NEED_MORE && used == 0) {
			if (avail == len)
				break;
			avail = chunk == 0 || avail + chunk > len ? len : avail + chunk;
		}
	}
	if (c.rc == PROXY_ERROR) {
		assert_non_null(n->error);
		assert_int_equal(n->phase, PROXY_PHASE_FAILED);
	}
	if (c.rc == PROXY_DONE)
		assert_int_equal(n->phase, PROXY_PHASE_DONE);
	/* The end is sticky and consumes nothing. */
	if (c.rc != PROXY_NEED_MORE) {
		size_t used = 1, ol = 1;

		assert_int_equal(proxy_neg_step(n, B("\x05\x00\x00\x01"), &used, out, &ol), c.rc);
		assert_int_equal(used, 0);
		assert_int_equal(ol, 0);
	}
	return c;
}

/*
 * The conversation must come out the same whether the proxy's bytes
 * arrive at once or one by one; returns the all-at-once run.
 */
static struct convo both(struct proxy_neg *n, const struct carrier_proxy *p,
                         enum proxy_cmd cmd, const struct sockaddr_storage *dest,
                         socklen_t destlen, const uint8_t *in, size_t len)
{
	struct proxy_neg n1;
	struct convo whole = run(n, p, cmd, dest, destlen, in, len, 0);
	size_t chunks[] = { 1, 2, 3, 7 };

	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		struct convo piece = run(&n1, p, cmd, dest, destlen, in, len, chunks[i]);

		assert_int_equal(piece.rc, whole.rc);
		assert_int_equal(piece.used, whole.used);
		assert_int_equal(piece.sentlen, whole.sentlen);
		assert_memory_equal(piece.sent, whole.sent, whole.sentlen);
		assert_int_equal(n1.phase, n->phase);
		if (whole.rc == PROXY_ERROR)
			assert_string_equal(n1.error, n->error);
		if (whole.rc == PROXY_DONE) {
			assert_int_equal(n1.bound_len, n->bound_len);
			assert_memory_equal(&n1.bound, &n->bound, n->bound_len);
		}
	}
	return whole;
}

static void assert_sent(const struct convo *c, const uint8_t *want, size_t n)
{
	if (c->sentlen != n || memcmp(c->sent, want, n) != 0) {
		print_error("sent %zu bytes:", c->sentlen);
		for (size_t i = 0; i < c->sentlen; i++)
			print_error(" %02x", c->sent[i]);
		print_error("\n");
	}
	assert_int_equal(c->sentlen, n);
	assert_memory_equal(c->sent, want, n);
}

static void expect_fail(const struct carrier_proxy *p, enum proxy_cmd cmd,
                        const uint8_t *in, size_t len, const char *error)
{
	struct proxy_neg n;
	socklen_t dl;
	struct sockaddr_storage d = addr("127.0.0.1", 8080, &dl);
	struct convo c = both(&n, p, cmd, &d, dl, in, len);

	assert_int_equal(c.rc, PROXY_ERROR);
	assert_string_equal(n.error, error);
}

/* ---- SOCKS5 ---- */

#define S5_CONNECT_V4 "\x05\x01\x00\x01\x7f\x00\x00\x01\x1f\x90"   /* 127.0.0.1:8080 */
#define S5_OK_V4 "\x05\x00\x00\x01\x7f\x00\x00\x01\xc3\x50"        /* bound 127.0.0.1:50000 */

static void test_socks5_connect_noauth(void **state UNUSED)
{
	struct carrier_proxy p = px("socks5://127.0.0.1:1080");
	struct proxy_neg n;
	socklen_t dl;
	struct sockaddr_storage d = addr("127.0.0.1", 8080, &dl);
	/* The proxy's bytes, and two bytes of tunnelled data after them. */
	struct convo c = both(&n, &p, PROXY_CMD_CONNECT, &d, dl,
	                      B("\x05\x00" S5_OK_V4 "\xaa\xbb"));

	assert_int_equal(c.rc, PROXY_DONE);
	assert_sent(&c, B("\x05\x01\x00" S5_CONNECT_V4));
	assert_int_equal(c.used, 12);        /* not the data after the reply */
	assert_string_equal(fmt(&n.bound), "127.0.0.1:50000");
	proxy_neg_clear(&n);
}

static void test_socks5_connect_userpass(void **state UNUSED)
{
	struct carrier_proxy p = px("socks5://alice:s3cret@127.0.0.1:1080");
	struct proxy_neg n;
	socklen_t dl;
	struct sockaddr_storage d = addr("2001:db8::1", 443, &dl);
	struct convo c = both(&n, &p, PROXY_CMD_CONNECT, &d, dl,
	                      B("\x05\x02" "\x01\x00"
	                        "\x05\x00\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00"
	                        "\x00\x00\x00\x00\x00\x00\x00\x09\x01\xbb"));

	assert_int_equal(c.rc, PROXY_DONE);
	assert_sent(&c, B("\x05\x02\x00\x02"
	                  "\x01\x05" "alice" "\x06" "s3cret"
	                  "\x05\x01\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00"
	                  "\x00\x00\x00\x00\x00\x00\x00\x01\x01\xbb"));
	assert_string_equal(fmt(&n.bound), "[2001:db8::9]:443");
	proxy_neg_clear(&n);
	assert_string_equal(n.proxy.pass, "");
}

static void test_socks5_creds_but_noauth_chosen(void **state UNUSED)
{
	struct carrier_proxy p = px("socks5://alice:s3cret@127.0.0.1:1080");
	struct proxy_neg n;
	socklen_t dl;
	struct sockaddr_storage d = addr("127.0.0.1", 8080, &dl);
	struct convo c = both(&n, &p, PROXY_CMD_CONNECT, &d, dl, B("\x05\x00" S5_OK_V4));

	assert_int_equal(c.rc, PROXY_DONE);
	assert_sent(&c, B("\x05\x02\x00\x02" S5_CONNECT_V4));
}

static void test_socks5_user_no_password(void **state UNUSED)
{
	struct carrier_proxy p = px("socks5://bob@127.0.0.1:1080");
	struct proxy_neg n;
	socklen_t dl;
	struct sockaddr_storage d = addr("127.0.0.1", 8080, &dl);
	/* Some servers answer the RFC 1929 status with version 5. */
	struct convo c = both(&n, &p, PROXY_CMD_CONNECT, &d, dl,
	                      B("\x05\x02" "\x05\x00" S5_OK_V4));

	assert_int_equal(c.rc, PROXY_DONE);
	assert_sent(&c, B("\x05\x02\x00\x02" "\x01\x03" "bob" "\x00" S5_CONNECT_V4));
}

static void test_socks5_v4mapped_dest(void **state UNUSED)
{
	struct carrier_proxy p = px("socks5://127.0.0.1:1080");
	struct proxy_neg n;
	socklen_t dl;
	struct sockaddr_storage d = addr("::ffff:127.0.0.1", 8080, &dl);
	struct convo c = both(&n, &p, PROXY_CMD_CONNECT, &d, dl, B("\x05\x00" S5_OK_V4));

	assert_int_equal(c.rc, PROXY_DONE);
	assert_sent(&c, B("\x05\x01\x00" S5_CONNECT_V4));
}

static void test_socks5_bound_domain(void **state UNUSED)
{
	struct carrier_proxy p = px("socks5://127.0.0.1:1080");
	struct proxy_neg n;
	socklen_t dl;
	struct sockaddr_storage d = addr("127.0.0.1", 8080, &dl);
	struct convo c;

	/* CONNECT: a name as BND.ADDR is fine (we do not use it). */
	c = both(&n, &p, PROXY_CMD_CONNECT, &d, dl,
	         B("\x05\x00" "\x05\x00\x00\x03\x0cproxy.example\x00\x50" "tail"));
	/* "proxy.example" is 13 bytes, the length says 12: 'e' is a port byte. */
	assert_int_equal(c.rc, PROXY_DONE);
	assert_int_equal(c.used, 2 + 4 + 1 + 12 + 2);
	assert_int_equal(n.bound_len, 0);

	c = both(&n, &p, PROXY_CMD_CONNECT, &d, dl,
	         B("\x05\x00" "\x05\x00\x00\x03\x08" "10.1.2.3" "\x00\x50"));
	assert_int_equal(c.rc, PROXY_DONE);
	assert_string_equal(fmt(&n.bound), "10.1.2.3:80");
}

static void test_socks5_udp_associate(void **state UNUSED)
{
	struct carrier_proxy p = px("socks5://127.0.0.1:1080");
	struct proxy_neg n;
	struct convo c;

	/* Relay at a given address. */
	c = both(&n, &p, PROXY_CMD_UDP_ASSOCIATE, NULL, 0,
	         B("\x05\x00" "\x05\x00\x00\x01\x7f\x00\x00\x02\x13\x88"));
	assert_int_equal(c.rc, PROXY_DONE);
	assert_sent(&c, B("\x05\x01\x00" "\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00"));
	assert_string_equal(fmt(&n.bound), "127.0.0.2:5000");

	/* 0.0.0.0 means the proxy's own address. */
	c = both(&n, &p, PROXY_CMD_UDP_ASSOCIATE, NULL, 0,
	         B("\x05\x00" "\x05\x00\x00\x01\x00\x00\x00\x00\x0f\xa0"));
	assert_int_equal(c.rc, PROXY_DONE);
	assert_string_equal(fmt(&n.bound), "127.0.0.1:4000");

	/* So does "::", even from an IPv4 proxy. */
	c = both(&n, &p, PROXY_CMD_UDP_ASSOCIATE, NULL, 0,
	         B("\x05\x00" "\x05\x00\x00\x04" "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0" "\x0f\xa1"));
	assert_int_equal(c.rc, PROXY_DONE);
	assert_string_equal(fmt(&n.bound), "127.0.0.1:4001");

	/* A numeric address written as a name. */
	c = both(&n, &p, PROXY_CMD_UDP_ASSOCIATE, NULL, 0,
	         B("\x05\x00" "\x05\x00\x00\x03\x09" "127.0.0.9" "\x0f\xa2"));
	assert_int_equal(c.rc, PROXY_DONE);
	assert_string_equal(fmt(&n.bound), "127.0.0.9:4002");

	/* An IPv6 proxy: the request's zeros are IPv6, "::" is the proxy. */
	p = px("socks5://u:p@[::1]:1080");
	c = both(&n, &p, PROXY_CMD_UDP_ASSOCIATE, NULL, 0,
	         B("\x05\x02" "\x01\x00"
	           "\x05\x00\x00\x04" "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0" "\x0f\xa3"));
	assert_int_equal(c.rc, PROXY_DONE);
	assert_sent(&c, B("\x05\x02\x00\x02" "\x01\x01u\x01p"
	                  "\x05\x03\x00\x04" "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0" "\0\0"));
	assert_string_equal(fmt(&n.bound), "[::1]:4003");
}

static void test_socks5_udp_bad_relay(void **state UNUSED)
{
	struct carrier_proxy p = px("socks5://127.0.0.1:1080");

	expect_fail(&p, PROXY_CMD_UDP_ASSOCIATE,
	            B("\x05\x00" "\x05\x00\x00\x03\x0d" "relay.example" "\x0f\xa0"),
	            "SOCKS5 proxy named its UDP relay by a host name, which we cannot use");
	expect_fail(&p, PROXY_CMD_UDP_ASSOCIATE,
	            B("\x05\x00" "\x05\x00\x00\x01\x7f\x00\x00\x02\x00\x00"),
	            "SOCKS5 proxy gave no UDP relay port (0)");
	expect_fail(&p, PROXY_CMD_UDP_ASSOCIATE, B("\x05\x00" "\x05\x07\x00\x01"),
	            "SOCKS5 proxy refused UDP ASSOCIATE (reply 7: command not supported)");
	expect_fail(&p, PROXY_CMD_UDP_ASSOCIATE, B("\x05\x00" "\x05\x02"),
	            "SOCKS5 proxy refused UDP ASSOCIATE (reply 2: not allowed by its rules)");
	expect_fail(&p, PROXY_CMD_UDP_ASSOCIATE, B("\x05\x00" "\x05\x42"),
	            "SOCKS5 proxy refused UDP ASSOCIATE (unknown reply code)");
}

static void test_socks5_method_refusals(void **state UNUSED)
{
	struct carrier_proxy p = px("socks5://127.0.0.1:1080");
	struct carrier_proxy pa = px("socks5://alice:x@127.0.0.1:1080");

	expect_fail(&p, PROXY_CMD_CONNECT, B("\x05\xff"),
	            "SOCKS5 proxy requires authentication (put USER:PASS@ in the proxy URL)");
	expect_fail(&pa, PROXY_CMD_CONNECT, B("\x05\xff"),
	            "SOCKS5 proxy accepts none of our authentication methods (none, "
	            "user/password)");
	expect_fail(&p, PROXY_CMD_CONNECT, B("\x05\x02"),
	            "SOCKS5 proxy chose user/password authentication, which we did not offer");
	expect_fail(&p, PROXY_CMD_CONNECT, B("\x05\x01"),
	            "SOCKS5 proxy chose an authentication method we did not offer");
	expect_fail(&pa, PROXY_CMD_CONNECT, B("\x05\x80"),
	            "SOCKS5 proxy chose an authentication method we did not offer");
	expect_fail(&pa, PROXY_CMD_CONNECT, B("\x05\x02" "\x01\x01"),
	            "SOCKS5 proxy rejected the user name or password");
	expect_fail(&pa, PROXY_CMD_CONNECT, B("\x05\x02" "\x01\xff"),
	            "SOCKS5 proxy rejected the user name or password");
	expect_fail(&pa, PROXY_CMD_CONNECT, B("\x05\x02" "\x02\x00"),
	            "SOCKS5 proxy sent a malformed authentication answer");
}

static void test_socks5_reply_codes(void **state UNUSED)
{
	static const char *const want[] = {
		NULL,
		"SOCKS5 proxy refused the connection (reply 1: general failure)",
		"SOCKS5 proxy refused the connection (reply 2: not allowed by its rules)",
		"SOCKS5 proxy refused the connection (reply 3: network unreachable)",
		"SOCKS5 proxy refused the connection (reply 4: host unreachable)",
		"SOCKS5 proxy refused the connection (reply 5: connection refused)",
		"SOCKS5 proxy refused the connection (reply 6: TTL expired)",
		"SOCKS5 proxy refused the connection (reply 7: command not supported)",
		"SOCKS5 proxy refused the connection (reply 8: address type not supported)",
	};
	struct carrier_proxy p = px("socks5://127.0.0.1:1080");

	for (uint8_t code = 1; code <= 8; code++) {
		uint8_t in[] = { 5, 0, 5, code, 0, 1, 0, 0, 0, 0, 0, 0 };

		/* Decided on the first two reply bytes, and with the whole reply. */
		expect_fail(&p, PROXY_CMD_CONNECT, in, 4, want[code]);
		expect_fail(&p, PROXY_CMD_CONNECT, in, sizeof(in), want[code]);
	}
	expect_fail(&p, PROXY_CMD_CONNECT, B("\x05\x00\x05\x09"),
	            "SOCKS5 proxy refused the connection (unknown reply code)");
	expect_fail(&p, PROXY_CMD_CONNECT, B("\x05\x00\x05\xff"),
	            "SOCKS5 proxy refused the connection (unknown reply code)");
}

static void test_socks5_garbage(void **state UNUSED)
{
	struct carrier_proxy p = px("socks5://127.0.0.1:1080");
	struct proxy_neg n;
	socklen_t dl;
	struct sockaddr_storage d = addr("127.0.0.1", 8080, &dl);
	struct convo c;

	/* An HTTP server where a SOCKS5 proxy was expected. */
	expect_fail(&p, PROXY_CMD_CONNECT, B("HTTP/1.1 400 Bad Request\r\n\r\n"),
	            "SOCKS5 proxy answered the greeting with a wrong version byte "
	            "(not a SOCKS5 proxy?)");
	expect_fail(&p, PROXY_CMD_CONNECT, B("\x04\x5a"),
	            "SOCKS5 proxy answered the greeting with a wrong version byte "
	            "(not a SOCKS5 proxy?)");
	expect_fail(&p, PROXY_CMD_CONNECT, B("\x05\x00" "\x04\x00\x00\x01"),
	            "SOCKS5 proxy sent a malformed reply (wrong version byte)");
	expect_fail(&p, PROXY_CMD_CONNECT, B("\x05\x00" "\x05\x00\x00\x02\x00\x00"),
	            "SOCKS5 proxy sent a malformed reply (unknown address type)");
	expect_fail(&p, PROXY_CMD_CONNECT, B("\x05\x00" "\x05\x00\x00\x00"),
	            "SOCKS5 proxy sent a malformed reply (unknown address type)");
	expect_fail(&p, PROXY_CMD_CONNECT, B("\x05\x00" "\x05\x00\x00\x03\x00\x00\x00"),
	            "SOCKS5 proxy sent a malformed reply (empty host name)");

	/* Truncated replies wait for more, consuming nothing of the partial one. */
	c = both(&n, &p, PROXY_CMD_CONNECT, &d, dl, B("\x05\x00" "\x05\x00\x00\x01\x7f\x00\x00"));
	assert_int_equal(c.rc, PROXY_NEED_MORE);
	assert_int_equal(c.used, 2);
	assert_int_equal(n.phase, PROXY_PHASE_S5_REPLY);
	c = both(&n, &p, PROXY_CMD_CONNECT, &d, dl, B("\x05"));
	assert_int_equal(c.rc, PROXY_NEED_MORE);
	assert_int_equal(c.used, 0);
	assert_int_equal(n.phase, PROXY_PHASE_S5_METHOD);
	c = both(&n, &p, PROXY_CMD_CONNECT, &d, dl, B("\x05\x00\x05\x00\x00\x03\xff" "abc"));
	assert_int_equal(c.rc, PROXY_NEED_MORE);
	assert_int_equal(c.used, 2);
}

/* ---- SOCKS4 ---- */

static void test_socks4_connect(void **state UNUSED)
{
	struct carrier_proxy p = px("socks4a://127.0.0.1:1080");
	struct proxy_neg n;
	socklen_t dl;
	struct sockaddr_storage d = addr("192.0.2.1", 443, &dl);
	struct convo c;

	c = both(&n, &p, PROXY_CMD_CONNECT, &d, dl, B("\x00\x5a\x00\x00\x00\x00\x00\x00" "data"));
	assert_int_equal(c.rc, PROXY_DONE);
	assert_sent(&c, B("\x04\x01\x01\xbb\xc0\x00\x02\x01\x00"));
	assert_int_equal(c.used, 8);

	p = px("socks4a://tor-user@127.0.0.1:1080");
	d = addr("::ffff:192.0.2.1", 443, &dl);
	c = both(&n, &p, PROXY_CMD_CONNECT, &d, dl, B("\x00\x5a\x01\xbb\xc0\x00\x02\x01"));
	assert_int_equal(c.rc, PROXY_DONE);
	assert_sent(&c, B("\x04\x01\x01\xbb\xc0\x00\x02\x01" "tor-user" "\x00"));
}

static void test_socks4_refusals(void **state UNUSED)
{
	struct carrier_proxy p = px("socks4a://127.0.0.1:1080");
	struct proxy_neg n;
	socklen_t dl;
	struct sockaddr_storage d = addr("2001:db8::1", 443, &dl);
	struct convo c;

	expect_fail(&p, PROXY_CMD_CONNECT, B("\x00\x5b\x00\x00\x00\x00\x00\x00"),
	            "SOCKS4 proxy refused the connection (reply 91: rejected or failed)");
	expect_fail(&p, PROXY_CMD_CONNECT, B("\x00\x5c\x00\x00\x00\x00\x00\x00"),
	            "SOCKS4 proxy refused the connection (reply 92: it cannot reach our identd)");
	expect_fail(&p, PROXY_CMD_CONNECT, B("\x00\x5d\x00\x00\x00\x00\x00\x00"),
	            "SOCKS4 proxy refused the connection (reply 93: user id not confirmed)");
	expect_fail(&p, PROXY_CMD_CONNECT, B("\x00\x00\x00\x00\x00\x00\x00\x00"),
	            "SOCKS4 proxy sent a malformed reply (unknown reply code)");
	expect_fail(&p, PROXY_CMD_CONNECT, B("\x04\x5a\x00\x00\x00\x00\x00\x00"),
	            "SOCKS4 proxy sent a malformed reply (wrong version byte)");
	expect_fail(&p, PROXY_CMD_CONNECT, B("\x05\x00\x00\x00\x00\x00\x00\x00"),
	            "SOCKS4 proxy sent a malformed reply (wrong version byte)");
	/* A destination that is no IP address is our bug, but still no crash. */
	c = run(&n, &p, PROXY_CMD_CONNECT, &(struct sockaddr_storage){ 0 }, 0, B(""), 0);
	assert_int_equal(c.rc, PROXY_ERROR);
	assert_string_equal(n.error, "proxy destination is not an IP address");

	/* IPv6 destinations and UDP cannot go through SOCKS4, said at once. */
	c = run(&n, &p, PROXY_CMD_CONNECT, &d, dl, B(""), 0);
	assert_int_equal(c.rc, PROXY_ERROR);
	assert_int_equal(c.sentlen, 0);
	assert_string_equal(n.error, "SOCKS4 proxies cannot reach IPv6 addresses (use a socks5 "
	                    "or http proxy)");
	c = run(&n, &p, PROXY_CMD_UDP_ASSOCIATE, NULL, 0, B(""), 0);
	assert_int_equal(c.rc, PROXY_ERROR);
	assert_string_equal(n.error, "UDP paths need a socks5 proxy, not socks4a");
}

static void test_socks4_partial(void **state UNUSED)
{
	struct carrier_proxy p = px("socks4a://127.0.0.1:1080");
	struct proxy_neg n;
	socklen_t dl;
	struct sockaddr_storage d = addr("192.0.2.1", 443, &dl);
	struct convo c = both(&n, &p, PROXY_CMD_CONNECT, &d, dl, B("\x00\x5a\x00\x00\x00\x00\x00"));

	assert_int_equal(c.rc, PROXY_NEED_MORE);
	assert_int_equal(c.used, 0);
}

/* ---- HTTP CONNECT ---- */

static void test_http_request(void **state UNUSED)
{
	static const struct {
		const char *url, *host;
		uint16_t port;
		const char *want;
	} cases[] = {
		{ "http://127.0.0.1:3128", "127.0.0.1", 8080,
		  "CONNECT 127.0.0.1:8080 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n" },
		{ "http://127.0.0.1:3128", "2001:db8::1", 443,
		  "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n" },
		{ "http://alice:s3cret@127.0.0.1:3128", "10.0.0.1", 80,
		  "CONNECT 10.0.0.1:80 HTTP/1.1\r\nHost: 10.0.0.1:80\r\n"
		  "Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n\r\n" },
		/* Base64 padding: 3, 4 and 5 bytes of "user:pass". */
		{ "http://a:b@127.0.0.1:3128", "10.0.0.1", 80,
		  "CONNECT 10.0.0.1:80 HTTP/1.1\r\nHost: 10.0.0.1:80\r\n"
		  "Proxy-Authorization: Basic YTpi\r\n\r\n" },
		{ "http://ab:c@127.0.0.1:3128", "10.0.0.1", 80,
		  "CONNECT 10.0.0.1:80 HTTP/1.1\r\nHost: 10.0.0.1:80\r\n"
		  "Proxy-Authorization: Basic YWI6Yw==\r\n\r\n" },
		{ "http://abc:d@127.0.0.1:3128", "10.0.0.1", 80,
		  "CONNECT 10.0.0.1:80 HTTP/1.1\r\nHost: 10.0.0.1:80\r\n"
		  "Proxy-Authorization: Basic YWJjOmQ=\r\n\r\n" },
		{ "http://user@127.0.0.1:3128", "10.0.0.1", 80,
		  "CONNECT 10.0.0.1:80 HTTP/1.1\r\nHost: 10.0.0.1:80\r\n"
		  "Proxy-Authorization: Basic dXNlcjo=\r\n\r\n" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct carrier_proxy p = px(cases[i].url);
		struct proxy_neg n;
		uint8_t out[PROXY_OUT_MAX];
		size_t outlen = 0;
		socklen_t dl;
		struct sockaddr_storage d = addr(cases[i].host, cases[i].port, &dl);

		assert_int_equal(proxy_neg_init(&n, &p, PROXY_CMD_CONNECT,
		                                (struct sockaddr *)&d, dl, out, &outlen),
		                 PROXY_NEED_MORE);
		assert_int_equal(outlen, strlen(cases[i].want));
		assert_memory_equal(out, cases[i].want, outlen);
		assert_int_equal(n.phase, PROXY_PHASE_HTTP_REPLY);
	}
}

static void test_http_request_longest(void **state UNUSED)
{
	struct carrier_proxy p = px("http://127.0.0.1:3128");
	struct proxy_neg n;
	uint8_t out[PROXY_OUT_MAX];
	size_t outlen = 0;
	socklen_t dl;
	struct sockaddr_storage d = addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535, &dl);

	/* The longest credentials the URL parser lets through still fit. */
	p.has_auth = 1;
	memset(p.user, 'u', sizeof(p.user) - 1);
	memset(p.pass, 'p', sizeof(p.pass) - 1);
	assert_int_equal(proxy_neg_init(&n, &p, PROXY_CMD_CONNECT, (struct sockaddr *)&d, dl,
	                                out, &outlen), PROXY_NEED_MORE);
	assert_true(outlen > 700 && outlen < PROXY_OUT_MAX);
	assert_memory_equal(out + outlen - 4, "\r\n\r\n", 4);
}

/* A 2xx answer: exactly head is consumed, tail (the tunnel's first bytes) is not. */
static void http_ok(const char *head, const char *tail)
{
	struct carrier_proxy p = px("http://127.0.0.1:3128");
	struct proxy_neg n;
	socklen_t dl;
	struct sockaddr_storage d = addr("127.0.0.1", 8080, &dl);
	char reply[512];
	struct convo c;

	snprintf(reply, sizeof(reply), "%s%s", head, tail);
	c = both(&n, &p, PROXY_CMD_CONNECT, &d, dl, (const uint8_t *)reply, strlen(reply));
	assert_int_equal(c.rc, PROXY_DONE);
	assert_int_equal(c.used, strlen(head));
	assert_int_equal(n.http_status / 100, 2);
}

static void test_http_success(void **state UNUSED)
{
	http_ok("HTTP/1.1 200 Connection established\r\n\r\n", "");
	http_ok("HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n",
	        "");
	http_ok("HTTP/1.1 200 OK\r\nVia: x\r\n\r\n", "\x16\x03\x01 tunnelled\r\n\r\n");
	http_ok("HTTP/1.1 200\r\n\r\n", "X");
	http_ok("HTTP/1.1 204 No Content\r\n\r\n", "");
	http_ok("HTTP/1.1 299 Whatever\r\n\r\n", "");
	http_ok("HTTP/1.1 200 OK\n\n", "X");                 /* bare LF line ends */
	http_ok("HTTP/1.1 200 OK\r\nA: b\n\r\n", "\n");
}

static void test_http_refusals(void **state UNUSED)
{
	struct carrier_proxy p = px("http://127.0.0.1:3128");
	static const struct {
		const char *reply, *error;
	} cases[] = {
		{ "HTTP/1.1 407 Proxy Authentication Required\r\n",
		  "HTTP proxy answered 407 Proxy Authentication Required" },
		{ "HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
		  "HTTP proxy answered 407 Proxy Authentication Required" },
		{ "HTTP/1.1 403 Forbidden\r\n",
		  "HTTP proxy answered 403 Forbidden (CONNECT to this address or port is not "
		  "allowed)" },
		{ "HTTP/1.0 401 Unauthorized\r\n", "HTTP proxy answered 401 Unauthorized" },
		{ "HTTP/1.1 405 Method Not Allowed\r\n",
		  "HTTP proxy answered 405 Method Not Allowed (no CONNECT support)" },
		{ "HTTP/1.1 502 Bad Gateway\r\n",
		  "HTTP proxy answered 502 Bad Gateway (it could not connect onwards)" },
		{ "HTTP/1.1 503 Service Unavailable\r\n", "HTTP proxy answered 503 Service Unavailable" },
		{ "HTTP/1.1 504 Gateway Timeout\r\n", "HTTP proxy answered 504 Gateway Timeout" },
		{ "HTTP/1.1 500 Internal Server Error\r\n",
		  "HTTP proxy answered 500 Internal Server Error" },
		{ "HTTP/1.1 400 Bad Request\r\n", "HTTP proxy answered 400 Bad Request" },
		{ "HTTP/1.1 418 I'm a teapot\r\n", "HTTP proxy refused the CONNECT (a 4xx status)" },
		{ "HTTP/1.1 599 x\r\n", "HTTP proxy failed the CONNECT (a 5xx status)" },
		{ "HTTP/1.1 302 Found\r\n", "HTTP proxy answered a redirect (3xx) instead of 2xx" },
		{ "HTTP/1.1 100 Continue\r\n",
		  "HTTP proxy answered an informational 1xx status instead of 2xx" },
		{ "HTTP/1.1 600 x\r\n",
		  "HTTP proxy sent a malformed status line (status code out of range)" },
		{ "HTTP/1.1 000\r\n",
		  "HTTP proxy sent a malformed status line (status code out of range)" },
	};

	/* The status line alone decides: no need to wait for the headers. */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_fail(&p, PROXY_CMD_CONNECT, (const uint8_t *)cases[i].reply,
		            strlen(cases[i].reply), cases[i].error);
}

static void test_http_status_kept(void **state UNUSED)
{
	struct carrier_proxy p = px("http://127.0.0.1:3128");
	struct proxy_neg n;
	socklen_t dl;
	struct sockaddr_storage d = addr("127.0.0.1", 8080, &dl);
	struct convo c = both(&n, &p, PROXY_CMD_CONNECT, &d, dl,
	                      B("HTTP/1.1 407 Proxy Authentication Required\r\n"));

	assert_int_equal(c.rc, PROXY_ERROR);
	assert_int_equal(n.http_status, 407);
}

static void test_http_garbage(void **state UNUSED)
{
	struct carrier_proxy p = px("http://127.0.0.1:3128");
	static const char *const bad[] = {
		"HTTP/2 200 OK\r\n",
		"HTTP/1.1 2x0 OK\r\n",
		"HTTP/1.1 20 OK\r\n",
		"HTTP/1.1 2000 OK\r\n",
		"HTTP/1.1  200 OK\r\n",
		"HTTP/1.x 200 OK\r\n",
		"http/1.1 200 OK\r\n",
		"HTTP/1.1\r\n",
		"\r\n",
		"\n",
		"SSH-2.0-OpenSSH_9.2\r\n",
		"\x05\x00",                    /* a SOCKS5 proxy where HTTP was expected */
		"X",                           /* decided on the first byte */
		"HTTP/1.",
	};
	const char *err = "HTTP proxy sent a malformed status line (not an HTTP proxy?)";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct proxy_neg n;
		socklen_t dl;
		struct sockaddr_storage d = addr("127.0.0.1", 8080, &dl);
		struct convo c = both(&n, &p, PROXY_CMD_CONNECT, &d, dl, (const uint8_t *)bad[i],
		                      strlen(bad[i]));

		if (strcmp(bad[i], "HTTP/1.") == 0) {
			/* Could still become a status line. */
			assert_int_equal(c.rc, PROXY_NEED_MORE);
			continue;
		}
		if (c.rc != PROXY_ERROR || strcmp(n.error, err) != 0)
			fail_msg("reply %zu: rc %d error %s", i, c.rc, n.error ? n.error : "-");
	}
	expect_fail(&p, PROXY_CMD_CONNECT, B("\x05\x00"), err);
}

static void test_http_sizes(void **state UNUSED)
{
	static char buf[3 * PROXY_HTTP_HEAD_MAX];
	struct carrier_proxy p = px("http://127.0.0.1:3128");
	struct proxy_neg n;
	socklen_t dl;
	struct sockaddr_storage d = addr("127.0.0.1", 8080, &dl);
	uint8_t out[PROXY_OUT_MAX];
	size_t used, outlen, k;
	const char *head = "HTTP/1.1 200 OK\r\n";
	struct convo c;

	/* Status line without an end, 8 KB long. */
	memcpy(buf, head, 9);
	memset(buf + 9, 'a', PROXY_HTTP_HEAD_MAX);
	c = run(&n, &p, PROXY_CMD_CONNECT, &d, dl, (uint8_t *)buf, PROXY_HTTP_HEAD_MAX - 1, 0);
	assert_int_equal(c.rc, PROXY_NEED_MORE);
	c = run(&n, &p, PROXY_CMD_CONNECT, &d, dl, (uint8_t *)buf, PROXY_HTTP_HEAD_MAX, 0);
	assert_int_equal(c.rc, PROXY_ERROR);
	assert_string_equal(n.error, "HTTP proxy's status line is longer than 8 KB");

	/* Headers that end exactly at 8 KB are fine; one byte more is not. */
	for (int extra = 0; extra <= 1; extra++) {
		size_t total = PROXY_HTTP_HEAD_MAX + (size_t)extra;
		size_t line = total - strlen(head) - 2;   /* one long "X: aaa...\r\n" */

		k = strlen(head);
		memcpy(buf, head, k);
		memcpy(buf + k, "X: ", 3);
		memset(buf + k + 3, 'a', line - 5);
		memcpy(buf + k + line - 2, "\r\n\r\n" "tail", 8);
		c = run(&n, &p, PROXY_CMD_CONNECT, &d, dl, (uint8_t *)buf, total + 4, 0);
		if (extra == 0) {
			assert_int_equal(c.rc, PROXY_DONE);
			assert_int_equal(c.used, total);
		} else {
			assert_int_equal(c.rc, PROXY_ERROR);
			assert_string_equal(n.error, "HTTP proxy's answer headers are longer than 8 KB");
		}
	}
	/* Endless headers in one big read. */
	memcpy(buf, head, strlen(head));
	for (k = strlen(head); k + 10 < sizeof(buf); k += 10)
		memcpy(buf + k, "X-A: bbb\r\n", 10);
	c = run(&n, &p, PROXY_CMD_CONNECT, &d, dl, (uint8_t *)buf, k, 0);
	assert_int_equal(c.rc, PROXY_ERROR);
	assert_string_equal(n.error, "HTTP proxy's answer headers are longer than 8 KB");
	/* ...and arriving a little at a time. */
	c = run(&n, &p, PROXY_CMD_CONNECT, &d, dl, (uint8_t *)buf, k, 1000);
	assert_int_equal(c.rc, PROXY_ERROR);

	/* Before init, a step is an error, not a crash. */
	memset(&n, 0, sizeof(n));
	assert_int_equal(proxy_neg_step(&n, B("x"), &used, out, &outlen), PROXY_ERROR);
	assert_non_null(n.error);
	proxy_neg_clear(NULL);
}

static void test_phase_names(void **state UNUSED)
{
	for (int ph = PROXY_PHASE_START; ph <= PROXY_PHASE_FAILED; ph++)
		assert_string_not_equal(proxy_phase_name((enum proxy_phase)ph), "?");
}

/* ---- SOCKS5 UDP header ---- */

static void test_udp_header(void **state UNUSED)
{
	uint8_t h[SOCKS5_UDP_HDR_MAX];
	struct sockaddr_storage d, from;
	socklen_t fl;
	size_t hl;

	d = addr("192.0.2.5", 4433, NULL);
	assert_int_equal(socks5_udp_header((struct sockaddr *)&d, h), 10);
	assert_memory_equal(h, "\x00\x00\x00\x01\xc0\x00\x02\x05\x11\x51", 10);
	d = addr("::ffff:192.0.2.5", 4433, NULL);
	assert_int_equal(socks5_udp_header((struct sockaddr *)&d, h), 10);
	assert_memory_equal(h, "\x00\x00\x00\x01\xc0\x00\x02\x05\x11\x51", 10);
	d = addr("2001:db8::5", 4433, NULL);
	assert_int_equal(socks5_udp_header((struct sockaddr *)&d, h), 22);
	assert_memory_equal(h, "\x00\x00\x00\x04\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x05"
	                       "\x11\x51", 22);
	memset(&d, 0, sizeof(d));
	d.ss_family = AF_UNIX;
	assert_int_equal(socks5_udp_header((struct sockaddr *)&d, h), 0);

	assert_int_equal(socks5_udp_parse(B("\x00\x00\x00\x01\xc0\x00\x02\x05\x11\x51" "data"),
	                                  &from, &fl, &hl), SOCKS5_UDP_OK);
	assert_int_equal(hl, 10);
	assert_int_equal(fl, sizeof(struct sockaddr_in));
	assert_string_equal(fmt(&from), "192.0.2.5:4433");
	d = addr("192.0.2.5", 4433, NULL);
	assert_true(proxy_same_addr((struct sockaddr *)&from, (struct sockaddr *)&d));
	d = addr("::ffff:192.0.2.5", 4433, NULL);
	assert_true(proxy_same_addr((struct sockaddr *)&from, (struct sockaddr *)&d));
	d = addr("192.0.2.5", 4434, NULL);
	assert_false(proxy_same_addr((struct sockaddr *)&from, (struct sockaddr *)&d));
	d = addr("192.0.2.6", 4433, NULL);
	assert_false(proxy_same_addr((struct sockaddr *)&from, (struct sockaddr *)&d));

	assert_int_equal(socks5_udp_parse(B("\x00\x00\x00\x04\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0"
	                                    "\0\0\0\x05\x11\x51"), &from, &fl, &hl),
	                 SOCKS5_UDP_OK);
	assert_int_equal(hl, 22);
	assert_string_equal(fmt(&from), "[2001:db8::5]:4433");
	d = addr("2001:db8::5", 4433, NULL);
	assert_true(proxy_same_addr((struct sockaddr *)&from, (struct sockaddr *)&d));
	d = addr("192.0.2.5", 4433, NULL);
	assert_false(proxy_same_addr((struct sockaddr *)&from, (struct sockaddr *)&d));

	assert_int_equal(socks5_udp_parse(B(""), &from, &fl, &hl), SOCKS5_UDP_SHORT);
	assert_int_equal(socks5_udp_parse(B("\x00\x00\x00"), &from, &fl, &hl), SOCKS5_UDP_SHORT);
	assert_int_equal(socks5_udp_parse(B("\x00\x00\x00\x01\xc0\x00\x02\x05\x11"), &from, &fl,
	                                  &hl), SOCKS5_UDP_SHORT);
	assert_int_equal(socks5_udp_parse(B("\x00\x00\x00\x04\x20\x01"), &from, &fl, &hl),
	                 SOCKS5_UDP_SHORT);
	assert_int_equal(socks5_udp_parse(B("\x00\x00\x01\x01\xc0\x00\x02\x05\x11\x51"), &from,
	                                  &fl, &hl), SOCKS5_UDP_FRAG);
	assert_int_equal(socks5_udp_parse(B("\x00\x00\x81\x01\xc0\x00\x02\x05\x11\x51"), &from,
	                                  &fl, &hl), SOCKS5_UDP_FRAG);
	assert_int_equal(socks5_udp_parse(B("\x00\x01\x00\x01\xc0\x00\x02\x05\x11\x51"), &from,
	                                  &fl, &hl), SOCKS5_UDP_BAD);
	assert_int_equal(socks5_udp_parse(B("\x00\x00\x00\x02\xc0\x00\x02\x05\x11\x51"), &from,
	                                  &fl, &hl), SOCKS5_UDP_BAD);
	assert_int_equal(socks5_udp_parse(B("\x00\x00\x00\x03\x03" "abc" "\x11\x51"), &from,
	                                  &fl, &hl), SOCKS5_UDP_NAME);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_forms),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_socks5_connect_noauth),
		cmocka_unit_test(test_socks5_connect_userpass),
		cmocka_unit_test(test_socks5_creds_but_noauth_chosen),
		cmocka_unit_test(test_socks5_user_no_password),
		cmocka_unit_test(test_socks5_v4mapped_dest),
		cmocka_unit_test(test_socks5_bound_domain),
		cmocka_unit_test(test_socks5_udp_associate),
		cmocka_unit_test(test_socks5_udp_bad_relay),
		cmocka_unit_test(test_socks5_method_refusals),
		cmocka_unit_test(test_socks5_reply_codes),
		cmocka_unit_test(test_socks5_garbage),
		cmocka_unit_test(test_socks4_connect),
		cmocka_unit_test(test_socks4_refusals),
		cmocka_unit_test(test_socks4_partial),
		cmocka_unit_test(test_http_request),
		cmocka_unit_test(test_http_request_longest),
		cmocka_unit_test(test_http_success),
		cmocka_unit_test(test_http_refusals),
		cmocka_unit_test(test_http_status_kept),
		cmocka_unit_test(test_http_garbage),
		cmocka_unit_test(test_http_sizes),
		cmocka_unit_test(test_phase_names),
		cmocka_unit_test(test_udp_header),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
