/*
 * Unit tests for the SOCKS negotiation state machine (src/front/socks.c).
 * Every message is a raw byte string as a client would send it, so these
 * tests double as a record of the wire format we accept and reply with.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "front/socks.h"

#define UNUSED __attribute__((unused))

/* A byte-string literal and its length, without the literal's own NUL. */
#define B(s) (const uint8_t *)(s), (sizeof(s) - 1)

/* Result of one socks_step() call, kept together for assertions. */
struct step {
	int rc;
	size_t used;
	uint8_t reply[SOCKS_REPLY_MAX];
	size_t replylen;
};

static struct step step(struct socks_state *st, const uint8_t *in, size_t n)
{
	struct step s;

	memset(&s, 0xaa, sizeof(s));
	s.rc = socks_step(st, in, n, &s.used, s.reply, &s.replylen);
	assert_true(s.used <= n);
	assert_true(s.replylen <= SOCKS_REPLY_MAX);
	return s;
}

static void assert_reply(const struct step *s, const uint8_t *want, size_t n)
{
	assert_int_equal(s->replylen, n);
	if (n > 0)
		assert_memory_equal(s->reply, want, n);
}

/* After the end, more calls change nothing and consume nothing. */
static void assert_sticky(struct socks_state *st, int rc)
{
	struct step s = step(st, B("\x05\x01\x00"));

	assert_int_equal(s.rc, rc);
	assert_int_equal(s.used, 0);
	assert_int_equal(s.replylen, 0);
}

/* Run one buffer through a fresh state and expect an error with reply. */
static void expect_error(const uint8_t *in, size_t n, const uint8_t *reply,
                         size_t replylen)
{
	struct socks_state st;
	struct step s;

	socks_state_init(&st);
	s = step(&st, in, n);
	assert_int_equal(s.rc, SOCKS_ERROR);
	assert_reply(&s, reply, replylen);
	assert_non_null(st.error);
	assert_int_equal(st.phase, SOCKS_PHASE_FAILED);
	assert_sticky(&st, SOCKS_ERROR);
}

/* ---- SOCKS4 / 4a ---- */

static void test_v4_ipv4(void **state UNUSED)
{
	struct socks_state st;
	struct step s;

	socks_state_init(&st);
	s = step(&st, B("\x04\x01\x00\x50\x01\x02\x03\x04" "user" "\x00"));
	assert_int_equal(s.rc, SOCKS_DONE);
	assert_int_equal(s.used, 13);
	assert_int_equal(s.replylen, 0);
	assert_int_equal(st.req.version, 4);
	assert_int_equal(st.req.cmd, SOCKS_CMD_CONNECT);
	assert_int_equal(st.req.dest.atyp, SOCKS_ATYP_IPV4);
	assert_memory_equal(st.req.dest.ipv4, "\x01\x02\x03\x04", 4);
	assert_int_equal(st.req.dest.port, 80);
	assert_int_equal(st.req.has_auth, 1);
	assert_int_equal(st.req.user_len, 4);
	assert_memory_equal(st.req.user, "user", 4);
	assert_sticky(&st, SOCKS_DONE);
}

static void test_v4_empty_user(void **state UNUSED)
{
	struct socks_state st;
	struct step s;

	socks_state_init(&st);
	s = step(&st, B("\x04\x01\x1f\x90\x0a\x00\x00\x01" "\x00"));
	assert_int_equal(s.rc, SOCKS_DONE);
	assert_int_equal(s.used, 9);
	assert_int_equal(st.req.dest.port, 8080);
	assert_int_equal(st.req.has_auth, 0);
	assert_int_equal(st.req.user_len, 0);
}

static void test_v4a_domain(void **state UNUSED)
{
	struct socks_state st;
	struct step s;

	socks_state_init(&st);
	s = step(&st, B("\x04\x01\x01\xbb\x00\x00\x00\x07" "\x00"
	                "example.com\x00"));
	assert_int_equal(s.rc, SOCKS_DONE);
	assert_int_equal(s.used, 21);
	assert_int_equal(st.req.version, 4);
	assert_int_equal(st.req.dest.atyp, SOCKS_ATYP_DOMAIN);
	assert_string_equal(st.req.dest.domain, "example.com");
	assert_int_equal(st.req.dest.port, 443);
	assert_int_equal(st.req.has_auth, 0);
}

/* 0.0.0.0 is plain SOCKS4, not 4a: no hostname follows. */
static void test_v4_zero_ip_is_not_4a(void **state UNUSED)
{
	struct socks_state st;
	struct step s;

	socks_state_init(&st);
	s = step(&st, B("\x04\x01\x00\x00\x00\x00\x00\x00" "\x00" "rest"));
	assert_int_equal(s.rc, SOCKS_DONE);
	assert_int_equal(s.used, 9);
	assert_int_equal(st.req.dest.atyp, SOCKS_ATYP_IPV4);
	assert_int_equal(st.req.dest.port, 0);
}

/* Tor passes arguments in the user id, and they may exceed 255 bytes. */
static void test_v4_user_limits(void **state UNUSED)
{
	uint8_t buf[8 + SOCKS_USER_MAX + 1];
	struct socks_state st;
	struct step s;
	const size_t max = SOCKS_USER_MAX - 1;

	memcpy(buf, "\x04\x01\x00\x50\x01\x02\x03\x04", 8);
	memset(buf + 8, 'a', sizeof(buf) - 8);

	/* Longest allowed user id, NUL not yet there: wait. */
	socks_state_init(&st);
	s = step(&st, buf, 8 + max);
	assert_int_equal(s.rc, SOCKS_NEED_MORE);
	assert_int_equal(s.used, 0);
	buf[8 + max] = 0;
	s = step(&st, buf, 8 + max + 1);
	assert_int_equal(s.rc, SOCKS_DONE);
	assert_int_equal(s.used, 8 + max + 1);
	assert_int_equal(st.req.user_len, max);

	/* One byte more without a NUL: too long. */
	buf[8 + max] = 'a';
	expect_error(buf, 8 + max + 1, B("\x00\x5b\x00\x00\x00\x00\x00\x00"));
}

static void test_v4_not_connect(void **state UNUSED)
{
	/* BIND */
	expect_error(B("\x04\x02\x00\x50\x01\x02\x03\x04" "\x00"),
	             B("\x00\x5b\x00\x00\x00\x00\x00\x00"));
	expect_error(B("\x04\x00\x00\x50\x01\x02\x03\x04" "\x00"),
	             B("\x00\x5b\x00\x00\x00\x00\x00\x00"));
}

static void test_v4a_host_limits(void **state UNUSED)
{
	uint8_t buf[9 + 256];
	struct socks_state st;
	struct step s;

	memcpy(buf, "\x04\x01\x00\x50\x00\x00\x00\x01" "\x00", 9);
	memset(buf + 9, 'h', 256);

	/* 255 bytes without NUL may still be a valid hostname. */
	socks_state_init(&st);
	s = step(&st, buf, 9 + 255);
	assert_int_equal(s.rc, SOCKS_NEED_MORE);
	assert_int_equal(s.used, 0);
	buf[9 + 255] = 0;
	s = step(&st, buf, 9 + 256);
	assert_int_equal(s.rc, SOCKS_DONE);
	assert_int_equal(strlen(st.req.dest.domain), 255);

	/* 256 bytes without NUL cannot be. */
	buf[9 + 255] = 'h';
	expect_error(buf, 9 + 256, B("\x00\x5b\x00\x00\x00\x00\x00\x00"));

	/* An empty hostname names nothing. */
	expect_error(B("\x04\x01\x00\x50\x00\x00\x00\x01" "\x00" "\x00"),
	             B("\x00\x5b\x00\x00\x00\x00\x00\x00"));
}

/* ---- SOCKS5 ---- */

static void test_v5_noauth_ipv4(void **state UNUSED)
{
	struct socks_state st;
	struct step s;

	socks_state_init(&st);
	s = step(&st, B("\x05\x01\x00"));
	assert_int_equal(s.rc, SOCKS_NEED_MORE);
	assert_int_equal(s.used, 3);
	assert_reply(&s, B("\x05\x00"));
	assert_int_equal(st.phase, SOCKS_PHASE_V5_REQUEST);

	s = step(&st, B("\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50"));
	assert_int_equal(s.rc, SOCKS_DONE);
	assert_int_equal(s.used, 10);
	assert_int_equal(s.replylen, 0);
	assert_int_equal(st.req.version, 5);
	assert_int_equal(st.req.cmd, SOCKS_CMD_CONNECT);
	assert_int_equal(st.req.dest.atyp, SOCKS_ATYP_IPV4);
	assert_memory_equal(st.req.dest.ipv4, "\x7f\x00\x00\x01", 4);
	assert_int_equal(st.req.dest.port, 80);
	assert_int_equal(st.req.has_auth, 0);
	assert_sticky(&st, SOCKS_DONE);
}

static void test_v5_noauth_ipv6(void **state UNUSED)
{
	struct socks_state st;
	struct step s;

	socks_state_init(&st);
	s = step(&st, B("\x05\x01\x00"));
	assert_int_equal(s.rc, SOCKS_NEED_MORE);
	/* RSV is ignored, whatever its value. */
	s = step(&st, B("\x05\x01\x7f\x04"
	                "\x20\x01\x0d\xb8\x00\x00\x00\x00"
	                "\x00\x00\x00\x00\x00\x00\x00\x01" "\x01\xbb"));
	assert_int_equal(s.rc, SOCKS_DONE);
	assert_int_equal(s.used, 22);
	assert_int_equal(st.req.dest.atyp, SOCKS_ATYP_IPV6);
	assert_memory_equal(st.req.dest.ipv6,
	                    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
	assert_int_equal(st.req.dest.port, 443);
}

static void test_v5_noauth_domain(void **state UNUSED)
{
	struct socks_state st;
	struct step s;

	socks_state_init(&st);
	s = step(&st, B("\x05\x01\x00"));
	s = step(&st, B("\x05\x01\x00\x03\x0b" "example.com" "\x00\x50"));
	assert_int_equal(s.rc, SOCKS_DONE);
	assert_int_equal(s.used, 18);
	assert_int_equal(st.req.dest.atyp, SOCKS_ATYP_DOMAIN);
	assert_string_equal(st.req.dest.domain, "example.com");
	assert_int_equal(st.req.dest.port, 80);
}

static void test_v5_userpass_binary(void **state UNUSED)
{
	struct socks_state st;
	struct step s;

	socks_state_init(&st);
	s = step(&st, B("\x05\x02\x00\x02"));
	assert_int_equal(s.rc, SOCKS_NEED_MORE);
	assert_reply(&s, B("\x05\x02"));
	assert_int_equal(st.phase, SOCKS_PHASE_V5_AUTH);

	s = step(&st, B("\x01\x03\x00\xff\x01" "\x02\x00\x80"));
	assert_int_equal(s.rc, SOCKS_NEED_MORE);
	assert_int_equal(s.used, 8);
	assert_reply(&s, B("\x01\x00"));
	assert_int_equal(st.req.has_auth, 1);
	assert_int_equal(st.req.user_len, 3);
	assert_memory_equal(st.req.user, "\x00\xff\x01", 3);
	assert_int_equal(st.req.pass_len, 2);
	assert_memory_equal(st.req.pass, "\x00\x80", 2);

	s = step(&st, B("\x05\x01\x00\x01\x0a\x00\x00\x01\x00\x16"));
	assert_int_equal(s.rc, SOCKS_DONE);
	assert_int_equal(st.req.dest.port, 22);
	assert_int_equal(st.req.user_len, 3);
}

static void test_v5_userpass_empty(void **state UNUSED)
{
	struct socks_state st;
	struct step s;

	socks_state_init(&st);
	s = step(&st, B("\x05\x01\x02" "\x01\x00\x00"));
	assert_int_equal(s.rc, SOCKS_NEED_MORE);
	assert_int_equal(s.used, 6);
	assert_reply(&s, B("\x05\x02\x01\x00"));
	assert_int_equal(st.req.has_auth, 1);
	assert_int_equal(st.req.user_len, 0);
	assert_int_equal(st.req.pass_len, 0);
}

/* Tor sends per-bridge arguments as the username, a NUL as password. */
static void test_v5_tor_args(void **state UNUSED)
{
	struct socks_state st;
	struct step s;

	socks_state_init(&st);
	s = step(&st, B("\x05\x02\x00\x02" "\x01\x07" "a=b;c=d" "\x01\x00"
	                "\x05\x01\x00\x01\xc0\x00\x02\x01\x23\x28"));
	assert_int_equal(s.rc, SOCKS_DONE);
	assert_int_equal(s.used, 4 + 11 + 10);
	assert_reply(&s, B("\x05\x02\x01\x00"));
	assert_int_equal(st.req.user_len, 7);
	assert_memory_equal(st.req.user, "a=b;c=d", 7);
	assert_int_equal(st.req.pass_len, 1);
	assert_int_equal(st.req.pass[0], 0);
	assert_int_equal(st.req.dest.port, 9000);
}

static void test_v5_longest_credentials(void **state UNUSED)
{
	uint8_t buf[2 + 1 + 255 + 1 + 255];
	struct socks_state st;
	struct step s;

	buf[0] = 0x01;
	buf[1] = 255;
	memset(buf + 2, 'u', 255);
	buf[257] = 255;
	memset(buf + 258, 'p', 255);
	socks_state_init(&st);
	s = step(&st, B("\x05\x01\x02"));
	s = step(&st, buf, 2 + 255 + 1 + 255);
	assert_int_equal(s.rc, SOCKS_NEED_MORE);
	assert_int_equal(s.used, 513);
	assert_int_equal(st.req.user_len, 255);
	assert_int_equal(st.req.pass_len, 255);
	assert_int_equal(st.req.pass[254], 'p');
}

static void test_v5_method_choice(void **state UNUSED)
{
	struct socks_state st;
	struct step s;

	/* User/pass is preferred, wherever it appears in the list. */
	socks_state_init(&st);
	s = step(&st, B("\x05\x03\x00\x01\x02"));
	assert_reply(&s, B("\x05\x02"));

	/* Offered but not allowed: fall back to no auth. */
	socks_state_init(&st);
	st.allow_userpass = 0;
	s = step(&st, B("\x05\x02\x02\x00"));
	assert_int_equal(s.rc, SOCKS_NEED_MORE);
	assert_reply(&s, B("\x05\x00"));
	assert_int_equal(st.phase, SOCKS_PHASE_V5_REQUEST);
}

static void test_v5_noauth_not_allowed(void **state UNUSED)
{
	struct socks_state st;
	struct step s;

	socks_state_init(&st);
	st.allow_noauth = 0;
	s = step(&st, B("\x05\x01\x00"));
	assert_int_equal(s.rc, SOCKS_ERROR);
	assert_reply(&s, B("\x05\xff"));
	assert_non_null(st.error);
	assert_sticky(&st, SOCKS_ERROR);
}

static void test_pipelined(void **state UNUSED)
{
	struct socks_state st;
	struct step s;

	socks_state_init(&st);
	s = step(&st, B("\x05\x01\x02" "\x01\x01" "u" "\x01" "p"
	                "\x05\x01\x00\x03\x03" "a.b" "\x00\x50"));
	assert_int_equal(s.rc, SOCKS_DONE);
	assert_int_equal(s.used, 3 + 5 + 10);
	assert_reply(&s, B("\x05\x02\x01\x00"));
	assert_string_equal(st.req.dest.domain, "a.b");
}

/* Application data sent before our final reply stays with the caller. */
static void test_trailing_data(void **state UNUSED)
{
	struct socks_state st;
	struct step s;

	socks_state_init(&st);
	s = step(&st, B("\x05\x01\x00" "\x05\x01\x00\x01\x01\x01\x01\x01\x00\x50"
	                "GET / HTTP/1.0\r\n\r\n"));
	assert_int_equal(s.rc, SOCKS_DONE);
	assert_int_equal(s.used, 13);
	assert_reply(&s, B("\x05\x00"));

	socks_state_init(&st);
	s = step(&st, B("\x04\x01\x00\x50\x00\x00\x00\x01" "\x00" "h\x00" "\x16\x03"));
	assert_int_equal(s.rc, SOCKS_DONE);
	assert_int_equal(s.used, 11);

	/* Greeting plus part of the request: only the greeting is taken. */
	socks_state_init(&st);
	s = step(&st, B("\x05\x01\x00" "\x05\x01\x00\x03\x05" "exa"));
	assert_int_equal(s.rc, SOCKS_NEED_MORE);
	assert_int_equal(s.used, 3);
	assert_reply(&s, B("\x05\x00"));
}

/* ---- input split at every byte boundary ---- */

struct exchange {
	const uint8_t *bytes;
	size_t len;
	const size_t *msglens;  /* lengths of the messages in bytes, in order */
	size_t nmsg;
	const uint8_t *replies; /* concatenation of all intermediate replies */
	size_t replylen;
};

/* Bytes consumable from the first `avail` bytes: whole messages only. */
static size_t whole_prefix(const struct exchange *x, size_t avail)
{
	size_t sum = 0;

	for (size_t i = 0; i < x->nmsg && sum + x->msglens[i] <= avail; i++)
		sum += x->msglens[i];
	return sum;
}

static void check_done_like(const struct socks_state *st,
                            const struct socks_state *ref)
{
	assert_int_equal(st->req.version, ref->req.version);
	assert_int_equal(st->req.cmd, ref->req.cmd);
	assert_int_equal(st->req.dest.atyp, ref->req.dest.atyp);
	assert_int_equal(st->req.dest.port, ref->req.dest.port);
	assert_memory_equal(&st->req.dest, &ref->req.dest,
	                    sizeof(st->req.dest));
	assert_int_equal(st->req.has_auth, ref->req.has_auth);
	assert_int_equal(st->req.user_len, ref->req.user_len);
	assert_memory_equal(st->req.user, ref->req.user, st->req.user_len);
	assert_int_equal(st->req.pass_len, ref->req.pass_len);
	assert_memory_equal(st->req.pass, ref->req.pass, st->req.pass_len);
}

/* Two calls: the first `cut` bytes, then everything not yet consumed. */
static void split_once(const struct exchange *x, size_t cut,
                       const struct socks_state *ref)
{
	struct socks_state st;
	uint8_t replies[2 * SOCKS_REPLY_MAX];
	size_t rlen = 0;
	struct step s;

	socks_state_init(&st);
	s = step(&st, x->bytes, cut);
	assert_int_equal(s.rc, SOCKS_NEED_MORE);
	assert_int_equal(s.used, whole_prefix(x, cut));
	memcpy(replies, s.reply, s.replylen);
	rlen = s.replylen;

	s = step(&st, x->bytes + whole_prefix(x, cut), x->len - whole_prefix(x, cut));
	assert_int_equal(s.rc, SOCKS_DONE);
	assert_int_equal(s.used, x->len - whole_prefix(x, cut));
	memcpy(replies + rlen, s.reply, s.replylen);
	rlen += s.replylen;
	assert_int_equal(rlen, x->replylen);
	assert_memory_equal(replies, x->replies, rlen);
	check_done_like(&st, ref);
}

/* A client whose bytes trickle in one at a time into a growing buffer. */
static void trickle(const struct exchange *x, const struct socks_state *ref)
{
	struct socks_state st;
	uint8_t replies[2 * SOCKS_REPLY_MAX];
	size_t rlen = 0, consumed = 0;
	struct step s = { .rc = SOCKS_NEED_MORE };

	socks_state_init(&st);
	for (size_t avail = 0; avail <= x->len; avail++) {
		s = step(&st, x->bytes + consumed, avail - consumed);
		consumed += s.used;
		assert_int_equal(consumed, whole_prefix(x, avail));
		memcpy(replies + rlen, s.reply, s.replylen);
		rlen += s.replylen;
		assert_int_equal(s.rc, avail == x->len ? SOCKS_DONE
		                                        : SOCKS_NEED_MORE);
	}
	assert_int_equal(rlen, x->replylen);
	assert_memory_equal(replies, x->replies, rlen);
	check_done_like(&st, ref);
}

static void check_every_split(const struct exchange *x)
{
	struct socks_state ref;
	struct step s;
	size_t total = 0;

	for (size_t i = 0; i < x->nmsg; i++)
		total += x->msglens[i];
	assert_int_equal(total, x->len);

	socks_state_init(&ref);
	s = step(&ref, x->bytes, x->len);
	assert_int_equal(s.rc, SOCKS_DONE);
	assert_int_equal(s.used, x->len);
	assert_reply(&s, x->replies, x->replylen);

	for (size_t cut = 0; cut < x->len; cut++)
		split_once(x, cut, &ref);
	trickle(x, &ref);
}

#define EXCHANGE(bytes_, lens_, replies_) { \
	B(bytes_), (lens_), sizeof(lens_) / sizeof((lens_)[0]), B(replies_) }

static void test_split_every_byte(void **state UNUSED)
{
	static const size_t v4[] = { 13 };
	static const size_t v4a[] = { 21 };
	static const size_t v5_ip[] = { 3, 10 };
	static const size_t v5_v6[] = { 3, 22 };
	static const size_t v5_dom[] = { 4, 18 };
	static const size_t v5_auth[] = { 4, 11, 18 };
	static const size_t v5_auth_empty[] = { 3, 3, 10 };
	const struct exchange xs[] = {
		EXCHANGE("\x04\x01\x00\x50\x01\x02\x03\x04" "user\x00", v4, ""),
		EXCHANGE("\x04\x01\x00\x50\x00\x00\x00\x01" "me\x00" "a.example\x00",
		         v4a, ""),
		EXCHANGE("\x05\x01\x00" "\x05\x01\x00\x01\x01\x02\x03\x04\x00\x50",
		         v5_ip, "\x05\x00"),
		EXCHANGE("\x05\x01\x00" "\x05\x01\x00\x04"
		         "\x20\x01\x0d\xb8\x00\x00\x00\x00"
		         "\x00\x00\x00\x00\x00\x00\x00\x01" "\x01\xbb",
		         v5_v6, "\x05\x00"),
		EXCHANGE("\x05\x02\x01\x00" "\x05\x01\x00\x03\x0b" "example.com"
		         "\x00\x50", v5_dom, "\x05\x00"),
		EXCHANGE("\x05\x02\x00\x02" "\x01\x07" "a=b;c=d" "\x01\x00"
		         "\x05\x01\x00\x03\x0b" "example.com" "\x01\xbb",
		         v5_auth, "\x05\x02\x01\x00"),
		EXCHANGE("\x05\x01\x02" "\x01\x00\x00"
		         "\x05\x01\x00\x01\x01\x02\x03\x04\x00\x00",
		         v5_auth_empty, "\x05\x02\x01\x00"),
	};

	for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++)
		check_every_split(&xs[i]);
}

/* ---- errors ---- */

static void test_bad_version(void **state UNUSED)
{
	expect_error(B("\x06\x01\x00"), B(""));
	expect_error(B("GET / HTTP/1.1\r\n"), B(""));
	expect_error(B("\x00"), B(""));
}

static void test_no_acceptable_method(void **state UNUSED)
{
	/* GSSAPI only */
	expect_error(B("\x05\x01\x01"), B("\x05\xff"));
	expect_error(B("\x05\x03\x01\x03\x80"), B("\x05\xff"));
}

static void test_nmethods_zero(void **state UNUSED)
{
	expect_error(B("\x05\x00"), B("\x05\xff"));
}

static void test_bad_auth_version(void **state UNUSED)
{
	/* A client that skips auth and sends its request instead. */
	expect_error(B("\x05\x01\x02" "\x05\x01\x00\x01\x01\x02\x03\x04\x00\x50"),
	             B("\x05\x02" "\x01\x01"));
}

static void test_bad_commands(void **state UNUSED)
{
	/* BIND */
	expect_error(B("\x05\x01\x00" "\x05\x02\x00\x01\x01\x02\x03\x04\x00\x50"),
	             B("\x05\x00" "\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00"));
	/* Unknown commands (UDP ASSOCIATE, 0x03, is supported: test_udp.c) */
	expect_error(B("\x05\x01\x00" "\x05\x04\x00\x01\x00\x00\x00\x00\x00\x00"),
	             B("\x05\x00" "\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00"));
	expect_error(B("\x05\x01\x00" "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00"),
	             B("\x05\x00" "\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00"));
	/* Even after user/pass, the replies stay in order and in bounds. */
	expect_error(B("\x05\x01\x02" "\x01\x01" "u" "\x01" "p"
	               "\x05\x09\x00\x03\x01" "x" "\x00\x00"),
	             B("\x05\x02" "\x01\x00"
	               "\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00"));
}

static void test_bad_atyp(void **state UNUSED)
{
	expect_error(B("\x05\x01\x00" "\x05\x01\x00\x02"),
	             B("\x05\x00" "\x05\x08\x00\x01\x00\x00\x00\x00\x00\x00"));
	expect_error(B("\x05\x01\x00" "\x05\x01\x00\x00\x01\x02\x03\x04\x00\x50"),
	             B("\x05\x00" "\x05\x08\x00\x01\x00\x00\x00\x00\x00\x00"));
}

static void test_bad_domain(void **state UNUSED)
{
	/* empty */
	expect_error(B("\x05\x01\x00" "\x05\x01\x00\x03\x00" "\x00\x50"),
	             B("\x05\x00" "\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00"));
	/* NUL inside */
	expect_error(B("\x05\x01\x00" "\x05\x01\x00\x03\x03" "a\x00" "b" "\x00\x50"),
	             B("\x05\x00" "\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00"));
}

static void test_bad_request_version(void **state UNUSED)
{
	expect_error(B("\x05\x01\x00" "\x04\x01\x00\x01\x01\x02\x03\x04\x00\x50"),
	             B("\x05\x00" "\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00"));
}

/* Errors are reported only once enough bytes decide them. */
static void test_error_needs_bytes(void **state UNUSED)
{
	struct socks_state st;
	struct step s;

	socks_state_init(&st);
	s = step(&st, B("\x05\x01\x00" "\x05\x01\x00"));
	assert_int_equal(s.rc, SOCKS_NEED_MORE);
	assert_int_equal(s.used, 3);
	s = step(&st, B("\x05\x01\x00\x09"));
	assert_int_equal(s.rc, SOCKS_ERROR);
	assert_reply(&s, B("\x05\x08\x00\x01\x00\x00\x00\x00\x00\x00"));

	socks_state_init(&st);
	s = step(&st, NULL, 0);
	assert_int_equal(s.rc, SOCKS_NEED_MORE);
	assert_int_equal(s.used, 0);
	assert_int_equal(s.replylen, 0);
}

/* ---- final replies and formatting ---- */

static void test_socks_reply(void **state UNUSED)
{
	struct socks_state st;
	uint8_t out[SOCKS_REPLY_MAX];

	socks_state_init(&st);
	(void)step(&st, B("\x04\x01\x00\x50\x01\x02\x03\x04" "\x00"));
	assert_int_equal(socks_reply(&st, SOCKS5_SUCCEEDED, out), 8);
	assert_memory_equal(out, "\x00\x5a\x00\x00\x00\x00\x00\x00", 8);
	assert_int_equal(socks_reply(&st, SOCKS5_CONN_REFUSED, out), 8);
	assert_memory_equal(out, "\x00\x5b\x00\x00\x00\x00\x00\x00", 8);

	socks_state_init(&st);
	(void)step(&st, B("\x05\x01\x00" "\x05\x01\x00\x01\x01\x02\x03\x04\x00\x50"));
	assert_int_equal(socks_reply(&st, SOCKS5_SUCCEEDED, out), 10);
	assert_memory_equal(out, "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
	assert_int_equal(socks_reply(&st, SOCKS5_HOST_UNREACHABLE, out), 10);
	assert_memory_equal(out, "\x05\x04\x00\x01\x00\x00\x00\x00\x00\x00", 10);
}

static void test_dest_format(void **state UNUSED)
{
	struct socks_dest d;
	char buf[300];

	memset(&d, 0, sizeof(d));
	d.atyp = SOCKS_ATYP_IPV4;
	memcpy(d.ipv4, "\x01\x02\x03\x04", 4);
	d.port = 80;
	assert_string_equal(socks_dest_format(&d, buf, sizeof(buf)), "1.2.3.4:80");

	d.atyp = SOCKS_ATYP_IPV6;
	memcpy(d.ipv6, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
	d.port = 443;
	assert_string_equal(socks_dest_format(&d, buf, sizeof(buf)),
	                    "[2001:db8::1]:443");

	d.atyp = SOCKS_ATYP_DOMAIN;
	strcpy(d.domain, "example.com");
	d.port = 80;
	assert_string_equal(socks_dest_format(&d, buf, sizeof(buf)),
	                    "example.com:80");

	/* Control bytes from the network never reach a log line. */
	strcpy(d.domain, "a\nb\x1b");
	assert_string_equal(socks_dest_format(&d, buf, sizeof(buf)), "a?b?:80");

	/* A short buffer truncates but stays terminated. */
	strcpy(d.domain, "example.com");
	assert_string_equal(socks_dest_format(&d, buf, 8), "example");
}

/* ---- robustness ---- */

static uint32_t rng_next(uint32_t *x)
{
	/* xorshift32: deterministic, so a failure reproduces. */
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static void test_random_garbage(void **state UNUSED)
{
	uint32_t seed = 0x5eed1234;
	uint8_t buf[600];

	for (int iter = 0; iter < 10000; iter++) {
		struct socks_state st;
		size_t n = rng_next(&seed) % sizeof(buf), off = 0, avail = 0;
		struct step s;

		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)rng_next(&seed);
		/* Steer half the inputs past the version byte. */
		if (n > 0 && iter % 2 == 0)
			buf[0] = (iter % 4 == 0) ? 4 : 5;
		if (n > 3 && iter % 8 == 2)
			memcpy(buf, "\x05\x01\x00\x05", 4);

		/* A caller whose buffer grows by random chunks. */
		socks_state_init(&st);
		st.allow_noauth = (iter % 3) != 0;
		do {
			size_t chunk = 1 + rng_next(&seed) % 40;

			avail += chunk < n - avail ? chunk : n - avail;
			s = step(&st, buf + off, avail - off);
			off += s.used;
			assert_true(off <= avail);
		} while (s.rc == SOCKS_NEED_MORE && avail < n);
		if (s.rc == SOCKS_DONE) {
			assert_true(st.req.version == 4 || st.req.version == 5);
			assert_int_equal(st.req.cmd, SOCKS_CMD_CONNECT);
		}
		if (s.rc == SOCKS_ERROR)
			assert_non_null(st.error);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v4_ipv4),
		cmocka_unit_test(test_v4_empty_user),
		cmocka_unit_test(test_v4a_domain),
		cmocka_unit_test(test_v4_zero_ip_is_not_4a),
		cmocka_unit_test(test_v4_user_limits),
		cmocka_unit_test(test_v4_not_connect),
		cmocka_unit_test(test_v4a_host_limits),
		cmocka_unit_test(test_v5_noauth_ipv4),
		cmocka_unit_test(test_v5_noauth_ipv6),
		cmocka_unit_test(test_v5_noauth_domain),
		cmocka_unit_test(test_v5_userpass_binary),
		cmocka_unit_test(test_v5_userpass_empty),
		cmocka_unit_test(test_v5_tor_args),
		cmocka_unit_test(test_v5_longest_credentials),
		cmocka_unit_test(test_v5_method_choice),
		cmocka_unit_test(test_v5_noauth_not_allowed),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_trailing_data),
		cmocka_unit_test(test_split_every_byte),
		cmocka_unit_test(test_bad_version),
		cmocka_unit_test(test_no_acceptable_method),
		cmocka_unit_test(test_nmethods_zero),
		cmocka_unit_test(test_bad_auth_version),
		cmocka_unit_test(test_bad_commands),
		cmocka_unit_test(test_bad_atyp),
		cmocka_unit_test(test_bad_domain),
		cmocka_unit_test(test_bad_request_version),
		cmocka_unit_test(test_error_needs_bytes),
		cmocka_unit_test(test_socks_reply),
		cmocka_unit_test(test_dest_format),
		cmocka_unit_test(test_random_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
