/*
 * --prefix: the spec parser (util/prefix.c) and the prefixed HELLO form
 * (wire/handshake.c, docs/PROTOCOL.md "Prefix").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "carrier/tcpframe.h"
#include "crypto/crypto.h"
#include "util/prefix.h"
#include "wire/handshake.h"

static int parse(const char *s, uint8_t out[PREFIX_MAX])
{
	const char *err = NULL;
	int n = prefix_parse(s, strlen(s), out, &err);

	if (n < 0)
		assert_non_null(err);
	return n;
}

static void test_presets_hex_templates(void **state)
{
	uint8_t b[PREFIX_MAX];

	(void)state;
	assert_int_equal(parse("http-get", b), 16);
	assert_memory_equal(b, "GET / HTTP/1.1\r\n", 16);
	assert_int_equal(parse("tls", b), 11);
	assert_memory_equal(b, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
	assert_int_equal(parse("dns", b), 10);
	assert_int_equal(parse("ssh", b), 21);
	assert_int_equal(parse("http-post", b), 17);
	assert_int_equal(parse("hex:00ff7A", b), 3);
	assert_memory_equal(b, "\x00\xff\x7a", 3);
	assert_int_equal(parse("a\\x00b\\\\c\\r\\n\\t ", b), 9);
	assert_memory_equal(b, "a\x00" "b\\c\r\n\t ", 9);
	/* a name that is no preset is a template */
	assert_int_equal(parse("tls1", b), 4);
	assert_memory_equal(b, "tls1", 4);
	assert_int_equal(parse("HEX:00", b), 6);
}

static void test_limits_and_errors(void **state)
{
	uint8_t b[PREFIX_MAX];
	char s[PREFIX_SPEC_MAX + 8];
	const char *err;

	(void)state;
	memset(s, 'a', 64);
	s[64] = '\0';
	assert_int_equal(parse(s, b), 64);
	s[64] = 'a';
	s[65] = '\0';
	assert_int_equal(parse(s, b), -1);
	strcpy(s, "hex:");
	memset(s + 4, 'f', 128);
	s[132] = '\0';
	assert_int_equal(parse(s, b), 64);
	strcpy(s + 132, "ff");
	assert_int_equal(parse(s, b), -1);
	for (int i = 0; i < 64; i++)
		memcpy(s + 4 * i, "\\x41", 4);
	s[256] = '\0';
	assert_int_equal(parse(s, b), 64);
	strcpy(s + 256, "\\x41");
	assert_int_equal(parse(s, b), -1);
	memset(s, 'a', PREFIX_SPEC_MAX + 1);
	assert_int_equal(prefix_parse(s, PREFIX_SPEC_MAX + 1, b, &err), -1);
	assert_int_equal(prefix_parse("ab\0c", 4, b, &err), -1);
	assert_int_equal(prefix_parse("", 0, b, &err), -1);
	assert_int_equal(parse("hex:", b), -1);
	assert_int_equal(parse("hex:0", b), -1);
	assert_int_equal(parse("hex:0g", b), -1);
	assert_int_equal(parse("a\\", b), -1);
	assert_int_equal(parse("a\\x4", b), -1);
	assert_int_equal(parse("a\\x4g", b), -1);
	assert_int_equal(parse("a\\q", b), -1);
	assert_int_equal(parse("a\\0", b), -1);
	assert_int_equal(parse("a\tb", b), -1);
	assert_int_equal(parse("caf\xc3\xa9", b), -1);
	assert_int_equal(parse("a\x7f", b), -1);
}

/* ------------------------------------------------------------------------ */

struct hs {
	struct wire_identity id;
	uint8_t epriv[WC_KEY_LEN], fpriv[WC_KEY_LEN], rc[WIRE_RAND_LEN], rs[WIRE_RAND_LEN];
	struct wc_hmac *mac, *mac_p;
};

static void hs_init(struct hs *h)
{
	uint8_t priv[WC_KEY_LEN], secret[WIRE_SECRET_LEN], k[WC_KEY_LEN];

	memset(h, 0, sizeof(*h));
	for (int i = 0; i < WC_KEY_LEN; i++) {
		priv[i] = (uint8_t)(i + 1);
		h->epriv[i] = (uint8_t)(0x21 + i);
		h->fpriv[i] = (uint8_t)(0x81 + i);
	}
	memset(secret, 0x40, sizeof(secret));
	memset(h->rc, 0x60, sizeof(h->rc));
	memset(h->rs, 0xa0, sizeof(h->rs));
	assert_int_equal(wire_identity_from_priv(&h->id, priv, secret), 0);
	assert_int_equal(hs_mac_key(&h->id.cert, k), 0);
	h->mac = wc_hmac_new(k, sizeof(k));
	assert_int_equal(hs_mac_key_prefixed(&h->id.cert, k), 0);
	h->mac_p = wc_hmac_new(k, sizeof(k));
	assert_non_null(h->mac);
	assert_non_null(h->mac_p);
}

static void hs_done(struct hs *h)
{
	wc_hmac_free(h->mac);
	wc_hmac_free(h->mac_p);
}

static void test_prefixed_hello_roundtrip(void **state)
{
	static const uint8_t pfx[] = "GET / HTTP/1.1\r\n";
	uint8_t hello[HS_MAX], reply[HS_MAX], pad[40] = { 0 };
	struct hs_client cst;
	struct hs_server sst;
	struct wire_session_keys ks, kc;
	struct hs h;
	size_t off, blen;
	int n, rl;

	(void)state;
	hs_init(&h);
	n = hs_client_hello_prefixed(&h.id.cert, &cst, h.epriv, h.rc, 1234, pfx, 16, pad,
	                             sizeof(pad), hello);
	assert_int_equal(n, 16 + HS_HELLO_MIN + 40 + 1);
	assert_memory_equal(hello, pfx, 16);
	assert_int_equal(hs_hello_locate(h.mac, h.mac_p, hello, (size_t)n, &off, &blen), 1);
	assert_int_equal(off, 16);
	assert_int_equal(blen, HS_HELLO_MIN - WIRE_MAC_LEN + 40);
	/* without the prefixed context it is no HELLO */
	assert_int_equal(hs_hello_locate(h.mac, NULL, hello, (size_t)n, &off, &blen), 0);
	assert_int_equal(hs_server_parse(&h.id, hello, (size_t)n, &sst), 0);
	assert_true(sst.minutes == 1234);
	rl = hs_server_reply(&h.id, &sst, h.fpriv, h.rs, NULL, 0, hello, (size_t)n, reply, &ks);
	assert_true(rl > 0);
	assert_int_equal(hs_client_finish(&h.id.cert, &cst, reply, (size_t)rl, &kc), 0);
	assert_memory_equal(&ks, &kc, sizeof(ks));
	/* every byte counts, the prefix and the length byte included */
	for (int i = 0; i < n; i++) {
		hello[i] ^= 0x01;
		assert_int_equal(hs_hello_locate(h.mac, h.mac_p, hello, (size_t)n, &off, &blen), 0);
		assert_int_equal(hs_server_parse(&h.id, hello, (size_t)n, &sst), -1);
		hello[i] ^= 0x01;
	}
	/* truncated or extended */
	assert_int_equal(hs_server_parse(&h.id, hello, (size_t)n - 1, &sst), -1);
	assert_int_equal(hs_server_parse(&h.id, hello + 1, (size_t)n - 1, &sst), -1);
	hs_done(&h);
}

static void test_prefixed_hello_bounds(void **state)
{
	uint8_t hello[HS_MAX], pfx[HS_PREFIX_MAX + 1], pad[HS_MAX] = { 0 };
	struct hs_client cst;
	struct hs_server sst;
	struct hs h;
	size_t off, blen;
	int n;

	(void)state;
	hs_init(&h);
	memset(pfx, 'x', sizeof(pfx));
	/* one byte and HS_PREFIX_MAX bytes, the smallest and the largest */
	n = hs_client_hello_prefixed(&h.id.cert, &cst, h.epriv, h.rc, 1, pfx, 1, NULL, 0, hello);
	assert_int_equal(n, HS_HELLO_MIN + 2);
	assert_int_equal(hs_server_parse(&h.id, hello, (size_t)n, &sst), 0);
	n = hs_client_hello_prefixed(&h.id.cert, &cst, h.epriv, h.rc, 1, pfx, HS_PREFIX_MAX, pad,
	                             HS_MAX - HS_HELLO_MIN - HS_PREFIX_MAX - 1, hello);
	assert_int_equal(n, HS_MAX);
	assert_int_equal(hs_hello_locate(h.mac, h.mac_p, hello, (size_t)n, &off, &blen), 1);
	assert_int_equal(off, HS_PREFIX_MAX);
	assert_int_equal(hs_server_parse(&h.id, hello, (size_t)n, &sst), 0);
	/* too long a prefix, or a HELLO that would not fit */
	assert_int_equal(hs_client_hello_prefixed(&h.id.cert, &cst, h.epriv, h.rc, 1, pfx,
	                                          HS_PREFIX_MAX + 1, NULL, 0, hello), -1);
	assert_int_equal(hs_client_hello_prefixed(&h.id.cert, &cst, h.epriv, h.rc, 1, pfx, 10, pad,
	                                          HS_MAX - HS_HELLO_MIN - 10, hello), -1);
	/* no prefix: the plain form, byte for byte */
	{
		uint8_t plain[HS_MAX];
		struct hs_client c2;
		int m = hs_client_hello(&h.id.cert, &c2, h.epriv, h.rc, 1, pad, 7, plain);

		n = hs_client_hello_prefixed(&h.id.cert, &cst, h.epriv, h.rc, 1, NULL, 0, pad, 7,
		                             hello);
		assert_int_equal(n, m);
		assert_memory_equal(hello, plain, (size_t)n);
		assert_int_equal(hs_hello_locate(h.mac, h.mac_p, hello, (size_t)n, &off, &blen), 1);
		assert_int_equal(off, 0);
	}
	/* junk of every length: nothing located */
	for (size_t len = 0; len <= HS_MAX; len += 7) {
		for (size_t i = 0; i < len; i++)
			hello[i] = (uint8_t)(i * 131 + len);
		assert_int_equal(hs_hello_locate(h.mac, h.mac_p, hello, len, &off, &blen), 0);
	}
	hs_done(&h);
}

/* One body in both forms, or behind two prefixes, is one HELLO to the replay filter. */
static void test_replay_hash_across_forms(void **state)
{
	uint8_t a[HS_MAX], b[HS_MAX], c[HS_MAX], ha[WC_HASH_LEN], hb[WC_HASH_LEN], hc[WC_HASH_LEN];
	struct hs_client st;
	struct hs_server sa, sb, sc;
	struct hs h;
	size_t off, blen;
	int na, nb, nc;

	(void)state;
	hs_init(&h);
	na = hs_client_hello(&h.id.cert, &st, h.epriv, h.rc, 77, NULL, 0, a);
	nb = hs_client_hello_prefixed(&h.id.cert, &st, h.epriv, h.rc, 77,
	                              (const uint8_t *)"GET ", 4, NULL, 0, b);
	nc = hs_client_hello_prefixed(&h.id.cert, &st, h.epriv, h.rc, 77,
	                              (const uint8_t *)"\x16\x03\x01", 3, NULL, 0, c);
	assert_true(na > 0 && nb > 0 && nc > 0);
	assert_int_equal(hs_hello_locate(h.mac, h.mac_p, a, (size_t)na, &off, &blen), 1);
	assert_int_equal(hs_hello_replay_hash(h.mac, a, (size_t)na, off, blen, ha), 0);
	assert_int_equal(hs_hello_locate(h.mac, h.mac_p, b, (size_t)nb, &off, &blen), 1);
	assert_int_equal(hs_hello_replay_hash(h.mac, b, (size_t)nb, off, blen, hb), 0);
	assert_int_equal(hs_hello_locate(h.mac, h.mac_p, c, (size_t)nc, &off, &blen), 1);
	assert_int_equal(hs_hello_replay_hash(h.mac, c, (size_t)nc, off, blen, hc), 0);
	assert_memory_equal(ha, hb, WC_HASH_LEN);
	assert_memory_equal(ha, hc, WC_HASH_LEN);
	/* the plain form's is the hash of the datagram, as before prefixes */
	wc_sha256(a, (size_t)na, hb);
	assert_memory_equal(ha, hb, WC_HASH_LEN);
	assert_int_equal(hs_server_parse(&h.id, a, (size_t)na, &sa), 0);
	assert_int_equal(hs_server_parse(&h.id, b, (size_t)nb, &sb), 0);
	assert_int_equal(hs_server_parse(&h.id, c, (size_t)nc, &sc), 0);
	assert_memory_equal(sa.replay_hash, ha, WC_HASH_LEN);
	assert_memory_equal(sb.replay_hash, ha, WC_HASH_LEN);
	assert_memory_equal(sc.replay_hash, ha, WC_HASH_LEN);
	/* while the keys still bind the datagram as sent */
	assert_memory_not_equal(sa.hello_hash, sb.hello_hash, WC_HASH_LEN);
	hs_done(&h);
}

/* The TCP carrier's prefixed head: prefix | N | tag, found by trying each length. */
static void test_tcp_prefix_head(void **state)
{
	uint8_t fk[32], nonce[TCPFRAME_NONCE_LEN], pfx[TCPFRAME_PREFIX_MAX];
	uint8_t head[TCPFRAME_PREFIX_SCAN + 64];
	struct wc_hmac *h, *other;
	int n;

	(void)state;
	memset(fk, 7, sizeof(fk));
	memset(nonce, 0x33, sizeof(nonce));
	memset(pfx, 'G', sizeof(pfx));
	h = tcpframe_prefix_mac(fk);
	fk[0] ^= 1;
	other = tcpframe_prefix_mac(fk);
	assert_non_null(h);
	assert_non_null(other);
	for (size_t plen = 1; plen <= TCPFRAME_PREFIX_MAX; plen++) {
		memset(head, 0xee, sizeof(head));   /* what follows: a frame */
		n = tcpframe_prefix_head(h, pfx, plen, nonce, head);
		assert_int_equal(n, (int)(plen + TCPFRAME_NONCE_LEN + TCPFRAME_TAG_LEN));
		assert_memory_equal(head, pfx, plen);
		assert_int_equal(tcpframe_prefix_find(h, head, TCPFRAME_PREFIX_SCAN), plen);
		/* another bridge's key, or one changed byte: no prefix found */
		assert_int_equal(tcpframe_prefix_find(other, head, TCPFRAME_PREFIX_SCAN), 0);
		for (int i = 0; i < n; i++) {
			head[i] ^= 0x80;
			assert_true(tcpframe_prefix_find(h, head, TCPFRAME_PREFIX_SCAN) != plen);
			head[i] ^= 0x80;
		}
		/* too few bytes to see the tag */
		assert_int_equal(tcpframe_prefix_find(h, head, (size_t)n - 1), 0);
	}
	assert_int_equal(tcpframe_prefix_head(h, pfx, 0, nonce, head), -1);
	assert_int_equal(tcpframe_prefix_head(h, pfx, TCPFRAME_PREFIX_MAX + 1, nonce, head), -1);
	/* a plain stream (nonce first) is no prefixed one */
	for (size_t i = 0; i < sizeof(head); i++)
		head[i] = (uint8_t)(i * 37 + 1);
	assert_int_equal(tcpframe_prefix_find(h, head, TCPFRAME_PREFIX_SCAN), 0);
	wc_hmac_free(h);
	wc_hmac_free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_presets_hex_templates),
		cmocka_unit_test(test_limits_and_errors),
		cmocka_unit_test(test_prefixed_hello_roundtrip),
		cmocka_unit_test(test_prefixed_hello_bounds),
		cmocka_unit_test(test_tcp_prefix_head),
		cmocka_unit_test(test_replay_hash_across_forms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
