/*
 * Unit tests for the Extended ORPort client (src/pt/extor.c) against
 * ext-orport-spec: SAFE_COOKIE with fixed vectors computed outside this
 * code, the cookie file, the command framing, and whole exchanges with a
 * scripted tor, fed byte by byte and all at once, checking every byte we
 * send.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pt/extor.h"

#define UNUSED __attribute__((unused))
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* A byte-string literal and its length, without the literal's own NUL. */
#define B(s) (const uint8_t *)(s), (sizeof(s) - 1)

/* ------------------------------------------------------------------------ */
/* Fixed vectors                                                             */

/*
 * Computed independently of this code, with Python's standard library:
 *
 *   import hmac, hashlib
 *   cookie = hashlib.sha256(b"sctpt extor test cookie").digest()
 *   cn = bytes(range(0x40, 0x60))            # ClientNonce
 *   sn = bytes(range(0xa0, 0xc0))            # ServerNonce
 *   s2c = hmac.new(cookie, b"ExtORPort authentication server-to-client hash"
 *                  + cn + sn, hashlib.sha256).digest()
 *   c2s = hmac.new(cookie, b"ExtORPort authentication client-to-server hash"
 *                  + cn + sn, hashlib.sha256).digest()
 */
/* Unsized: the literals' NULs are not part of the values. */
static const uint8_t cookie[] =
	"\x42\xaa\x17\x1a\x58\x90\x5b\x26\x01\x42\xa0\xda\xd2\x53\x93\xdf"
	"\x14\x0d\x1b\x0b\x75\xf0\xc5\x2c\x54\xb6\x4c\xc7\xde\xd3\x48\xb4";
static const uint8_t server_hash[] =
	"\xe5\xc8\x48\xe2\x98\xd4\xaf\xc4\x40\xa8\xef\xc2\x06\xad\x42\x45"
	"\x96\x12\xdc\x91\xec\x4f\x5c\x1c\x7d\x2a\xe7\xed\xcb\x1e\x7b\x4b";
static const uint8_t client_hash[] =
	"\x9a\xa7\x6c\xc5\xde\xa8\x11\x33\x0b\x05\xb7\x15\xa7\x7d\xa5\x76"
	"\x53\xe7\x95\xec\x5c\x25\xe3\x66\xc3\x37\xce\x7a\x8d\xc6\x8b\xed";
static uint8_t client_nonce[EXTOR_NONCE_LEN], server_nonce[EXTOR_NONCE_LEN];

_Static_assert(sizeof(cookie) == EXTOR_COOKIE_LEN + 1, "cookie vector");
_Static_assert(sizeof(server_hash) == EXTOR_HASH_LEN + 1, "server hash vector");
_Static_assert(sizeof(client_hash) == EXTOR_HASH_LEN + 1, "client hash vector");

#define COOKIE_HEADER "! Extended ORPort Auth Cookie !\n"

static int setup(void **state UNUSED)
{
	for (size_t i = 0; i < EXTOR_NONCE_LEN; i++) {
		client_nonce[i] = (uint8_t)(0x40 + i);
		server_nonce[i] = (uint8_t)(0xa0 + i);
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Byte buffers for what tor sends and what we expect to send                */

struct buf {
	uint8_t b[8192];
	size_t n;
};

static void add(struct buf *b, const void *p, size_t n)
{
	assert_true(b->n + n <= sizeof(b->b));
	if (n > 0)
		memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void add_reply(struct buf *b, uint16_t type, const void *body, size_t len)
{
	uint8_t h[4] = { (uint8_t)(type >> 8), (uint8_t)type, (uint8_t)(len >> 8),
	                 (uint8_t)len };

	add(b, h, 4);
	add(b, body, len);
}

/* tor up to and including a successful auth status. */
static void add_tor_auth(struct buf *b)
{
	add(b, "\x01\x00", 2);
	add(b, server_hash, EXTOR_HASH_LEN);
	add(b, server_nonce, EXTOR_NONCE_LEN);
	add(b, "\x01", 1);
}

/* What we send up to the client hash. */
static void add_our_auth(struct buf *b)
{
	add(b, "\x01", 1);
	add(b, client_nonce, EXTOR_NONCE_LEN);
	add(b, client_hash, EXTOR_HASH_LEN);
}

/* USERADDR "1.2.3.4:5678", TRANSPORT "sctp", DONE. */
#define OUR_COMMANDS \
	"\x00\x01\x00\x0c" "1.2.3.4:5678" \
	"\x00\x02\x00\x04" "sctp" \
	"\x00\x00\x00\x00"

/* ------------------------------------------------------------------------ */
/* Running the client                                                        */

struct run {
	struct extor_client st;
	int rc;
	size_t used;                /* consumed in total */
	uint8_t sent[4096];
	size_t sentlen;
	unsigned calls;
};

static int checked_step(struct run *r, const uint8_t *in, size_t n)
{
	uint8_t out[EXTOR_OUT_MAX];
	size_t used = (size_t)-1, outlen = (size_t)-1;

	r->rc = extor_client_step(&r->st, in, n, &used, out, &outlen);
	assert_true(r->rc == EXTOR_ERROR || r->rc == EXTOR_NEED_MORE ||
	            r->rc == EXTOR_OKAY || r->rc == EXTOR_DENIED);
	assert_true(used <= n);
	assert_true(outlen <= EXTOR_OUT_MAX);
	assert_true(r->sentlen + outlen <= sizeof(r->sent));
	memcpy(r->sent + r->sentlen, out, outlen);
	r->sentlen += outlen;
	r->used += used;
	r->calls++;
	return r->rc;
}

/*
 * A caller with a growing receive buffer: piece more bytes arrive before
 * each call, which sees everything not consumed yet.
 */
static void run(struct run *r, const char *useraddr, const uint8_t *in, size_t n,
                size_t piece)
{
	size_t avail = 0;

	memset(r, 0, sizeof(*r));
	assert_int_equal(extor_client_init(&r->st, cookie, client_nonce, useraddr, "sctp"), 0);
	do {
		avail += piece < n - avail ? piece : n - avail;
		checked_step(r, in + r->used, avail - r->used);
	} while (r->rc == EXTOR_NEED_MORE && avail < n);
}

/* The same outcome byte by byte, in pieces of 7, and all at once. */
static void expect_run(const char *useraddr, const struct buf *in, int rc,
                       const uint8_t *sent, size_t sentlen, size_t used)
{
	static const size_t pieces[] = { 1, 7, (size_t)-1 };
	static struct run r;

	for (size_t i = 0; i < N_ELEMS(pieces); i++) {
		run(&r, useraddr, in->b, in->n, pieces[i]);
		assert_int_equal(r.rc, rc);
		assert_int_equal(r.used, used);
		assert_int_equal(r.sentlen, sentlen);
		if (sentlen > 0)
			assert_memory_equal(r.sent, sent, sentlen);
		switch (rc) {
		case EXTOR_OKAY:
			assert_int_equal(r.st.phase, EXTOR_PHASE_DONE);
			break;
		case EXTOR_ERROR:
		case EXTOR_DENIED:
			assert_int_equal(r.st.phase, EXTOR_PHASE_FAILED);
			assert_non_null(r.st.error);
			assert_true(strlen(r.st.error) > 0);
			break;
		default:
			break;
		}
		if (pieces[i] == 1)
			assert_int_equal(r.calls, used > 0 ? used : 1);
	}
}

/* ------------------------------------------------------------------------ */
/* SAFE_COOKIE hashes                                                        */

static void test_hash_vectors(void **state UNUSED)
{
	uint8_t h[EXTOR_HASH_LEN];

	assert_int_equal(extor_hash(cookie, 1, client_nonce, server_nonce, h), 0);
	assert_memory_equal(h, server_hash, EXTOR_HASH_LEN);
	assert_int_equal(extor_hash(cookie, 0, client_nonce, server_nonce, h), 0);
	assert_memory_equal(h, client_hash, EXTOR_HASH_LEN);
}

/* Every input matters: the label, the nonces' order, the cookie. */
static void test_hash_inputs(void **state UNUSED)
{
	uint8_t h[EXTOR_HASH_LEN], other[EXTOR_COOKIE_LEN];

	assert_int_equal(extor_hash(cookie, 1, server_nonce, client_nonce, h), 0);
	assert_memory_not_equal(h, server_hash, EXTOR_HASH_LEN);
	assert_int_equal(extor_hash(cookie, 0, server_nonce, client_nonce, h), 0);
	assert_memory_not_equal(h, client_hash, EXTOR_HASH_LEN);
	memcpy(other, cookie, sizeof(other));
	other[31] ^= 1;
	assert_int_equal(extor_hash(other, 1, client_nonce, server_nonce, h), 0);
	assert_memory_not_equal(h, server_hash, EXTOR_HASH_LEN);
	/* Any non-zero direction is server-to-client. */
	assert_int_equal(extor_hash(cookie, 7, client_nonce, server_nonce, h), 0);
	assert_memory_equal(h, server_hash, EXTOR_HASH_LEN);
}

/* ------------------------------------------------------------------------ */
/* Cookie file                                                               */

static void test_cookie_parse(void **state UNUSED)
{
	uint8_t file[EXTOR_COOKIE_FILE_LEN + 1], got[EXTOR_COOKIE_LEN];

	assert_int_equal(sizeof(COOKIE_HEADER) - 1, 32);
	memcpy(file, COOKIE_HEADER, 32);
	memcpy(file + 32, cookie, EXTOR_COOKIE_LEN);
	file[64] = 'x';

	memset(got, 0, sizeof(got));
	assert_int_equal(extor_cookie_parse(file, EXTOR_COOKIE_FILE_LEN, got), 0);
	assert_memory_equal(got, cookie, EXTOR_COOKIE_LEN);

	/* Short, long, empty. */
	assert_int_equal(extor_cookie_parse(file, EXTOR_COOKIE_FILE_LEN - 1, got), -1);
	assert_int_equal(extor_cookie_parse(file, EXTOR_COOKIE_FILE_LEN + 1, got), -1);
	assert_int_equal(extor_cookie_parse(file, 32, got), -1);
	assert_int_equal(extor_cookie_parse(file, 0, got), -1);

	/* Any byte of the header wrong (the control port's cookie has none). */
	for (size_t i = 0; i < 32; i++) {
		file[i] ^= 0x20;
		assert_int_equal(extor_cookie_parse(file, EXTOR_COOKIE_FILE_LEN, got), -1);
		file[i] ^= 0x20;
	}
	memcpy(file, "! Extended ORPort Auth Cookie !\r", 32);
	assert_int_equal(extor_cookie_parse(file, EXTOR_COOKIE_FILE_LEN, got), -1);
}

/* ------------------------------------------------------------------------ */
/* Command framing                                                           */

static void test_command(void **state UNUSED)
{
	static uint8_t body[0x10000], big[0x10000 + 8];
	uint8_t out[64];

	memset(out, 0xaa, sizeof(out));
	assert_int_equal(extor_command(EXTOR_CMD_USERADDR, B("1.2.3.4:5678"), out, sizeof(out)), 16);
	assert_memory_equal(out, "\x00\x01\x00\x0c" "1.2.3.4:5678", 16);
	assert_int_equal(out[16], 0xaa);
	assert_int_equal(extor_command(EXTOR_CMD_TRANSPORT, B("sctp"), out, sizeof(out)), 8);
	assert_memory_equal(out, "\x00\x02\x00\x04sctp", 8);
	assert_int_equal(extor_command(EXTOR_CMD_DONE, NULL, 0, out, sizeof(out)), 4);
	assert_memory_equal(out, "\x00\x00\x00\x00", 4);
	assert_int_equal(extor_command(0xabcd, B("\x01\x02"), out, sizeof(out)), 6);
	assert_memory_equal(out, "\xab\xcd\x00\x02\x01\x02", 6);

	/* Exactly fitting, then one byte short: nothing written. */
	assert_int_equal(extor_command(EXTOR_CMD_TRANSPORT, B("sctp"), out, 8), 8);
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(extor_command(EXTOR_CMD_TRANSPORT, B("sctp"), out, 7), 0);
	assert_int_equal(out[0], 0xaa);
	assert_int_equal(extor_command(EXTOR_CMD_DONE, NULL, 0, out, 4), 4);
	assert_int_equal(extor_command(EXTOR_CMD_DONE, NULL, 0, out, 3), 0);
	assert_int_equal(extor_command(EXTOR_CMD_DONE, NULL, 0, out, 0), 0);

	/* A body longer than LEN can say. */
	assert_int_equal(extor_command(EXTOR_CMD_USERADDR, body, 0xffff, big, sizeof(big)),
	                 0x10003);
	assert_int_equal(big[2], 0xff);
	assert_int_equal(big[3], 0xff);
	assert_int_equal(extor_command(EXTOR_CMD_USERADDR, body, 0x10000, big, sizeof(big)), 0);
}

/* ------------------------------------------------------------------------ */
/* extor_client_init                                                         */

static void test_init(void **state UNUSED)
{
	static const char *const good[] = { "sctp", "obfs4", "meek_lite", "_", "A9", "x" };
	static const char *const bad[] = {
		"", "1sctp", "sc-tp", "sc tp", "sctp\n", "sc.tp", "s\xc3\xa9", "-",
	};
	struct extor_client st;
	char name[80], addr[80];

	for (size_t i = 0; i < N_ELEMS(good); i++) {
		assert_int_equal(extor_client_init(&st, cookie, client_nonce, "1.2.3.4:5", good[i]), 0);
		assert_int_equal(st.phase, EXTOR_PHASE_AUTH_TYPES);
	}
	for (size_t i = 0; i < N_ELEMS(bad); i++)
		assert_int_equal(extor_client_init(&st, cookie, client_nonce, "1.2.3.4:5", bad[i]), -1);
	assert_int_equal(extor_client_init(&st, cookie, client_nonce, "1.2.3.4:5", NULL), -1);

	/* The longest transport name that fits, then one more. */
	memset(name, 't', sizeof(st.transport) - 1);
	name[sizeof(st.transport) - 1] = '\0';
	assert_int_equal(extor_client_init(&st, cookie, client_nonce, NULL, name), 0);
	name[sizeof(st.transport) - 1] = 't';
	name[sizeof(st.transport)] = '\0';
	assert_int_equal(extor_client_init(&st, cookie, client_nonce, NULL, name), -1);

	/* The longest useraddr, then one more. */
	memset(addr, '1', sizeof(st.useraddr) - 1);
	addr[sizeof(st.useraddr) - 1] = '\0';
	assert_int_equal(extor_client_init(&st, cookie, client_nonce, addr, "sctp"), 0);
	assert_string_equal(st.useraddr, addr);
	addr[sizeof(st.useraddr) - 1] = '1';
	addr[sizeof(st.useraddr)] = '\0';
	assert_int_equal(extor_client_init(&st, cookie, client_nonce, addr, "sctp"), -1);

	/* The longest real one. */
	assert_int_equal(extor_client_init(&st, cookie, client_nonce,
	                                   "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535",
	                                   "sctp"), 0);
}

/* ------------------------------------------------------------------------ */
/* The exchange                                                              */

/* Each of tor's messages in turn, checking what we answer to each. */
static void test_stepwise(void **state UNUSED)
{
	static struct run r;
	uint8_t msg[EXTOR_HASH_LEN + EXTOR_NONCE_LEN];

	memset(&r, 0, sizeof(r));
	assert_int_equal(extor_client_init(&r.st, cookie, client_nonce, "1.2.3.4:5678", "sctp"), 0);

	/* Nothing yet: nothing to say. */
	assert_int_equal(checked_step(&r, NULL, 0), EXTOR_NEED_MORE);
	assert_int_equal(r.sentlen, 0);

	/* The auth types, in two pieces: we pick SAFE_COOKIE and send our nonce. */
	assert_int_equal(checked_step(&r, B("\x01")), EXTOR_NEED_MORE);
	assert_int_equal(r.used, 1);
	assert_int_equal(r.sentlen, 0);
	assert_int_equal(checked_step(&r, B("\x00")), EXTOR_NEED_MORE);
	assert_int_equal(r.used, 2);
	assert_int_equal(r.sentlen, 1 + EXTOR_NONCE_LEN);
	assert_int_equal(r.sent[0], EXTOR_AUTH_SAFE_COOKIE);
	assert_memory_equal(r.sent + 1, client_nonce, EXTOR_NONCE_LEN);
	assert_int_equal(r.st.phase, EXTOR_PHASE_SERVER_HASH);

	/* ServerHash and ServerNonce: nothing consumed until both are there. */
	memcpy(msg, server_hash, EXTOR_HASH_LEN);
	memcpy(msg + EXTOR_HASH_LEN, server_nonce, EXTOR_NONCE_LEN);
	assert_int_equal(checked_step(&r, msg, sizeof(msg) - 1), EXTOR_NEED_MORE);
	assert_int_equal(r.used, 2);
	assert_int_equal(r.sentlen, 1 + EXTOR_NONCE_LEN);
	assert_int_equal(checked_step(&r, msg, sizeof(msg)), EXTOR_NEED_MORE);
	assert_int_equal(r.used, 2 + sizeof(msg));
	assert_int_equal(r.sentlen, 1 + EXTOR_NONCE_LEN + EXTOR_HASH_LEN);
	assert_memory_equal(r.sent + 1 + EXTOR_NONCE_LEN, client_hash, EXTOR_HASH_LEN);
	assert_int_equal(r.st.phase, EXTOR_PHASE_AUTH_RESULT);

	/* Auth status 1: USERADDR, TRANSPORT, DONE. */
	assert_int_equal(checked_step(&r, B("\x01")), EXTOR_NEED_MORE);
	assert_int_equal(r.sentlen, 65 + sizeof(OUR_COMMANDS) - 1);
	assert_memory_equal(r.sent + 65, OUR_COMMANDS, sizeof(OUR_COMMANDS) - 1);
	assert_int_equal(r.st.phase, EXTOR_PHASE_REPLY);

	/* OKAY, its header in two pieces. */
	assert_int_equal(checked_step(&r, B("\x10\x00\x00")), EXTOR_NEED_MORE);
	assert_int_equal(r.used, 2 + sizeof(msg) + 1);
	assert_int_equal(checked_step(&r, B("\x10\x00\x00\x00")), EXTOR_OKAY);
	assert_int_equal(r.used, 2 + sizeof(msg) + 1 + 4);
	assert_int_equal(r.sentlen, 65 + sizeof(OUR_COMMANDS) - 1);
	assert_int_equal(r.st.phase, EXTOR_PHASE_DONE);

	/* Done is done: the relay's bytes are not ours. */
	assert_int_equal(checked_step(&r, B("GET / HTTP/1.0\r\n")), EXTOR_OKAY);
	assert_int_equal(r.used, 2 + sizeof(msg) + 1 + 4);
	assert_int_equal(r.sentlen, 65 + sizeof(OUR_COMMANDS) - 1);
}

static void test_okay(void **state UNUSED)
{
	static struct buf in, want;

	memset(&in, 0, sizeof(in));
	memset(&want, 0, sizeof(want));
	add_tor_auth(&in);
	add_reply(&in, EXTOR_REPLY_OKAY, NULL, 0);
	add_our_auth(&want);
	add(&want, OUR_COMMANDS, sizeof(OUR_COMMANDS) - 1);
	expect_run("1.2.3.4:5678", &in, EXTOR_OKAY, want.b, want.n, in.n);

	/* Data tor relays right after OKAY stays unconsumed. */
	add(&in, "\x00\x03relay bytes", 13);
	expect_run("1.2.3.4:5678", &in, EXTOR_OKAY, want.b, want.n, in.n - 13);
}

/* Several auth types, ours not first: still SAFE_COOKIE. */
static void test_auth_types(void **state UNUSED)
{
	static struct buf in, want;

	memset(&in, 0, sizeof(in));
	memset(&want, 0, sizeof(want));
	add(&in, "\x03\x02\x01\xff\x00", 5);
	add(&in, server_hash, EXTOR_HASH_LEN);
	add(&in, server_nonce, EXTOR_NONCE_LEN);
	add(&in, "\x01", 1);
	add_reply(&in, EXTOR_REPLY_OKAY, NULL, 0);
	add_our_auth(&want);
	add(&want, OUR_COMMANDS, sizeof(OUR_COMMANDS) - 1);
	expect_run("1.2.3.4:5678", &in, EXTOR_OKAY, want.b, want.n, in.n);

	/* A long list (a byte per type, repeats included) is fine too. */
	memset(&in, 0, sizeof(in));
	for (int i = 0; i < 255; i++)
		add(&in, "\x02", 1);
	add(&in, "\x01\x00", 2);
	add(&in, server_hash, EXTOR_HASH_LEN);
	add(&in, server_nonce, EXTOR_NONCE_LEN);
	add(&in, "\x01", 1);
	add_reply(&in, EXTOR_REPLY_OKAY, NULL, 0);
	expect_run("1.2.3.4:5678", &in, EXTOR_OKAY, want.b, want.n, in.n);
}

static void test_auth_types_errors(void **state UNUSED)
{
	static struct buf in;

	/* No SAFE_COOKIE: fail at the terminator, having sent nothing. */
	memset(&in, 0, sizeof(in));
	add(&in, "\x02\x03\x00", 3);
	add(&in, server_hash, EXTOR_HASH_LEN);
	expect_run("1.2.3.4:5678", &in, EXTOR_ERROR, NULL, 0, 3);

	memset(&in, 0, sizeof(in));
	add(&in, "\x00", 1);
	expect_run("1.2.3.4:5678", &in, EXTOR_ERROR, NULL, 0, 1);

	/* An endless list. */
	memset(&in, 0, sizeof(in));
	for (int i = 0; i < 1000; i++)
		add(&in, "\x01", 1);
	expect_run("1.2.3.4:5678", &in, EXTOR_ERROR, NULL, 0, 257);
}

static void test_server_hash_mismatch(void **state UNUSED)
{
	static struct buf in, want;
	uint8_t h[EXTOR_HASH_LEN];

	memset(&want, 0, sizeof(want));
	add(&want, "\x01", 1);
	add(&want, client_nonce, EXTOR_NONCE_LEN);

	/* Any bit of the hash. */
	for (size_t i = 0; i < EXTOR_HASH_LEN; i += 7) {
		memcpy(h, server_hash, sizeof(h));
		h[i] ^= (uint8_t)(1u << (i % 8));
		memset(&in, 0, sizeof(in));
		add(&in, "\x01\x00", 2);
		add(&in, h, EXTOR_HASH_LEN);
		add(&in, server_nonce, EXTOR_NONCE_LEN);
		add(&in, "\x01", 1);
		add_reply(&in, EXTOR_REPLY_OKAY, NULL, 0);
		/* We never send our client hash. */
		expect_run("1.2.3.4:5678", &in, EXTOR_ERROR, want.b, want.n, 66);
	}

	/* A tor that reflects our own hash, or knows another cookie. */
	memset(&in, 0, sizeof(in));
	add(&in, "\x01\x00", 2);
	add(&in, client_hash, EXTOR_HASH_LEN);
	add(&in, server_nonce, EXTOR_NONCE_LEN);
	expect_run("1.2.3.4:5678", &in, EXTOR_ERROR, want.b, want.n, 66);

	/* The right hash with another server nonce. */
	memset(&in, 0, sizeof(in));
	add(&in, "\x01\x00", 2);
	add(&in, server_hash, EXTOR_HASH_LEN);
	add(&in, client_nonce, EXTOR_NONCE_LEN);
	expect_run("1.2.3.4:5678", &in, EXTOR_ERROR, want.b, want.n, 66);
}

static void test_auth_status_fail(void **state UNUSED)
{
	static struct buf in, want;
	static const uint8_t statuses[] = { 0x00, 0x02, 0xff };

	memset(&want, 0, sizeof(want));
	add_our_auth(&want);
	for (size_t i = 0; i < N_ELEMS(statuses); i++) {
		memset(&in, 0, sizeof(in));
		add(&in, "\x01\x00", 2);
		add(&in, server_hash, EXTOR_HASH_LEN);
		add(&in, server_nonce, EXTOR_NONCE_LEN);
		add(&in, &statuses[i], 1);
		add_reply(&in, EXTOR_REPLY_OKAY, NULL, 0);
		/* No commands after a failed authentication. */
		expect_run("1.2.3.4:5678", &in, EXTOR_ERROR, want.b, want.n, 67);
	}
}

static void test_denied(void **state UNUSED)
{
	static struct buf in, want;

	memset(&in, 0, sizeof(in));
	memset(&want, 0, sizeof(want));
	add_tor_auth(&in);
	add_reply(&in, EXTOR_REPLY_DENY, NULL, 0);
	add(&in, "more", 4);
	add_our_auth(&want);
	add(&want, OUR_COMMANDS, sizeof(OUR_COMMANDS) - 1);
	expect_run("1.2.3.4:5678", &in, EXTOR_DENIED, want.b, want.n, in.n - 4);
}

static void test_unknown_replies(void **state UNUSED)
{
	static struct buf in, want;

	memset(&in, 0, sizeof(in));
	memset(&want, 0, sizeof(want));
	add_tor_auth(&in);
	add_reply(&in, 0x1002, "abc", 3);       /* unknown, with a body */
	add_reply(&in, 0xffff, NULL, 0);
	add_reply(&in, 0x0000, "\x10\x00\x00\x00", 4);  /* an OKAY inside a body */
	add_reply(&in, EXTOR_REPLY_OKAY, NULL, 0);
	add_our_auth(&want);
	add(&want, OUR_COMMANDS, sizeof(OUR_COMMANDS) - 1);
	expect_run("1.2.3.4:5678", &in, EXTOR_OKAY, want.b, want.n, in.n);

	/* An OKAY with a body: the body goes with it. */
	memset(&in, 0, sizeof(in));
	add_tor_auth(&in);
	add_reply(&in, EXTOR_REPLY_OKAY, "xyz", 3);
	expect_run("1.2.3.4:5678", &in, EXTOR_OKAY, want.b, want.n, in.n);
}

static void test_too_many_unknown_replies(void **state UNUSED)
{
	static struct buf in, want;
	size_t n16;

	memset(&in, 0, sizeof(in));
	memset(&want, 0, sizeof(want));
	add_our_auth(&want);
	add(&want, OUR_COMMANDS, sizeof(OUR_COMMANDS) - 1);

	add_tor_auth(&in);
	for (int i = 0; i < 16; i++)
		add_reply(&in, 0x2000, "?", 1);
	n16 = in.n;
	add_reply(&in, EXTOR_REPLY_OKAY, NULL, 0);
	expect_run("1.2.3.4:5678", &in, EXTOR_OKAY, want.b, want.n, in.n);

	/* The 17th unknown reply is one too many. */
	in.n = n16;
	add_reply(&in, 0x2000, "?", 1);
	add_reply(&in, EXTOR_REPLY_OKAY, NULL, 0);
	expect_run("1.2.3.4:5678", &in, EXTOR_ERROR, want.b, want.n, n16 + 5);
}

static void test_no_useraddr(void **state UNUSED)
{
	static struct buf in, want;

	memset(&in, 0, sizeof(in));
	memset(&want, 0, sizeof(want));
	add_tor_auth(&in);
	add_reply(&in, EXTOR_REPLY_OKAY, NULL, 0);
	add_our_auth(&want);
	add(&want, "\x00\x02\x00\x04" "sctp" "\x00\x00\x00\x00", 12);
	expect_run(NULL, &in, EXTOR_OKAY, want.b, want.n, in.n);
	expect_run("", &in, EXTOR_OKAY, want.b, want.n, in.n);
}

static void test_ipv6_useraddr(void **state UNUSED)
{
	static struct buf in, want;

	memset(&in, 0, sizeof(in));
	memset(&want, 0, sizeof(want));
	add_tor_auth(&in);
	add_reply(&in, EXTOR_REPLY_OKAY, NULL, 0);
	add_our_auth(&want);
	add(&want, "\x00\x01\x00\x11" "[2001:db8::1]:443", 4 + 17);
	add(&want, "\x00\x02\x00\x04" "sctp" "\x00\x00\x00\x00", 12);
	expect_run("[2001:db8::1]:443", &in, EXTOR_OKAY, want.b, want.n, in.n);
}

/* The end is sticky and consumes nothing more. */
static void test_sticky(void **state UNUSED)
{
	static struct buf in;
	static struct run r;

	memset(&in, 0, sizeof(in));
	add_tor_auth(&in);
	add_reply(&in, EXTOR_REPLY_OKAY, NULL, 0);
	run(&r, "1.2.3.4:5678", in.b, in.n, (size_t)-1);
	assert_int_equal(r.rc, EXTOR_OKAY);
	r.sentlen = 0;
	r.used = 0;
	assert_int_equal(checked_step(&r, in.b, in.n), EXTOR_OKAY);
	assert_int_equal(r.used, 0);
	assert_int_equal(r.sentlen, 0);

	memset(&in, 0, sizeof(in));
	add(&in, "\x00", 1);
	run(&r, "1.2.3.4:5678", in.b, in.n, (size_t)-1);
	assert_int_equal(r.rc, EXTOR_ERROR);
	r.sentlen = 0;
	r.used = 0;
	assert_int_equal(checked_step(&r, B("\x01\x00")), EXTOR_ERROR);
	assert_int_equal(r.used, 0);
	assert_int_equal(r.sentlen, 0);
	assert_non_null(r.st.error);

	/* After DENY nothing more is read or sent either. */
	memset(&in, 0, sizeof(in));
	add_tor_auth(&in);
	add_reply(&in, EXTOR_REPLY_DENY, NULL, 0);
	run(&r, "1.2.3.4:5678", in.b, in.n, (size_t)-1);
	assert_int_equal(r.rc, EXTOR_DENIED);
	r.sentlen = 0;
	r.used = 0;
	assert_true(checked_step(&r, B("\x10\x00\x00\x00")) < 0 || r.rc == EXTOR_DENIED);
	assert_int_equal(r.used, 0);
	assert_int_equal(r.sentlen, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_vectors),
		cmocka_unit_test(test_hash_inputs),
		cmocka_unit_test(test_cookie_parse),
		cmocka_unit_test(test_command),
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_stepwise),
		cmocka_unit_test(test_okay),
		cmocka_unit_test(test_auth_types),
		cmocka_unit_test(test_auth_types_errors),
		cmocka_unit_test(test_server_hash_mismatch),
		cmocka_unit_test(test_auth_status_fail),
		cmocka_unit_test(test_denied),
		cmocka_unit_test(test_unknown_replies),
		cmocka_unit_test(test_too_many_unknown_replies),
		cmocka_unit_test(test_no_useraddr),
		cmocka_unit_test(test_ipv6_useraddr),
		cmocka_unit_test(test_sticky),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
