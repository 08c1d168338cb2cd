/*
 * Unit tests for the wire security layer (wire/crypto, wire/handshake,
 * wire/seal).  The test vectors of docs/PROTOCOL.md are read from the
 * document and recomputed twice: through the real code with the fixed inputs
 * of tools/gen_vectors.c, and step by step from the formulas in the document
 * using only the OpenSSL wrappers, so the code, the document and the
 * generator cannot drift apart.  The rest feeds raw, tampered, replayed,
 * reordered and misdirected bytes to the parsers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "wire/handshake.h"
#include "wire/seal.h"

#ifndef SCTPT_SOURCE_DIR
#error "SCTPT_SOURCE_DIR must name the source root"
#endif
#define PROTOCOL_MD SCTPT_SOURCE_DIR "/docs/PROTOCOL.md"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define LBL(s) (const uint8_t *)("sctpt-v2 " s), sizeof("sctpt-v2 " s) - 1

/* ------------------------------------------------------------------------ */
/* Fixed inputs: exactly those of tools/gen_vectors.c.                       */

#define MINUTES 29876543ULL
#define SCTP_LEN 28
#define HELLO_PAD 5
#define REPLY_PAD 3

static void fill(uint8_t *p, size_t n, uint8_t start)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(start + i);
}

struct inputs {
	uint8_t spriv[32], secret[16], epriv[32], rc[16], fpriv[32], rs[16];
	uint8_t hpad[HELLO_PAD], rpad[REPLY_PAD], sctp[SCTP_LEN], mins[8];
};

static void inputs_init(struct inputs *in)
{
	memset(in, 0, sizeof(*in));
	fill(in->spriv, 32, 0x01);
	fill(in->secret, 16, 0x40);
	fill(in->epriv, 32, 0x21);
	fill(in->rc, 16, 0x60);
	fill(in->fpriv, 32, 0x81);
	fill(in->rs, 16, 0xa0);
	fill(in->sctp, sizeof(in->sctp), 0xc0);
	for (int i = 0; i < 8; i++)
		in->mins[i] = (uint8_t)(MINUTES >> (56 - 8 * i));
}

/* A completed handshake from the fixed inputs. */
struct fixture {
	struct inputs in;
	struct wire_identity id;
	struct hs_client cst;
	struct hs_server sst;
	struct wire_session_keys ks, kc;
	uint8_t hello[HS_MAX], reply[HS_MAX];
	size_t hello_len, reply_len;
};

static void fixture_init(struct fixture *f)
{
	int hl, rl;

	memset(f, 0, sizeof(*f));
	inputs_init(&f->in);
	assert_int_equal(wire_identity_from_priv(&f->id, f->in.spriv, f->in.secret), 0);
	hl = hs_client_hello(&f->id.cert, &f->cst, f->in.epriv, f->in.rc, MINUTES,
	                     f->in.hpad, HELLO_PAD, f->hello);
	assert_int_equal(hl, HS_HELLO_MIN + HELLO_PAD);
	f->hello_len = (size_t)hl;
	assert_int_equal(hs_server_parse(&f->id, f->hello, f->hello_len, &f->sst), 0);
	rl = hs_server_reply(&f->id, &f->sst, f->in.fpriv, f->in.rs, f->in.rpad, REPLY_PAD,
	                     f->hello, f->hello_len, f->reply, &f->ks);
	assert_int_equal(rl, HS_REPLY_MIN + REPLY_PAD);
	f->reply_len = (size_t)rl;
	assert_int_equal(hs_client_finish(&f->id.cert, &f->cst, f->reply, f->reply_len, &f->kc), 0);
	assert_memory_equal(&f->ks, &f->kc, sizeof(f->ks));
}

/* ------------------------------------------------------------------------ */
/* Hex and the "## Test vectors" block of docs/PROTOCOL.md.                  */

static void to_hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode hex into out (max bytes); the length, or -1. */
static int from_hex(const char *s, uint8_t *out, size_t max)
{
	size_t n = strlen(s);

	if (n % 2 != 0 || n / 2 > max)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return (int)(n / 2);
}

#define DOC_MAX 64

struct doc {
	char *text;
	int n;
	const char *name[DOC_MAX];
	const char *value[DOC_MAX];
	int used[DOC_MAX];
};

static char *read_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	size_t n;

	if (fp == NULL)
		return NULL;
	buf = malloc(1 << 20);
	if (buf == NULL) {
		fclose(fp);
		return NULL;
	}
	n = fread(buf, 1, (1 << 20) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/*
 * Collect the `name: value` lines of the first ```text fence after the
 * "## Test vectors" heading.  Fails the test on anything else in the fence.
 */
static void doc_load(struct doc *d)
{
	char *line, *next;
	int state = 0;   /* 0 before heading, 1 before fence, 2 in fence, 3 done */

	memset(d, 0, sizeof(*d));
	d->text = read_file(PROTOCOL_MD);
	if (d->text == NULL)
		fail_msg("cannot read %s", PROTOCOL_MD);
	for (line = d->text; line != NULL && state < 3; line = next) {
		size_t len;
		char *colon;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		len = strlen(line);
		while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
			line[--len] = '\0';
		if (state == 0) {
			if (strcmp(line, "## Test vectors") == 0)
				state = 1;
		} else if (state == 1) {
			if (strncmp(line, "## ", 3) == 0)
				break;
			if (strcmp(line, "```text") == 0)
				state = 2;
		} else if (strncmp(line, "```", 3) == 0) {
			state = 3;
		} else if (len > 0) {
			colon = strstr(line, ": ");
			if (colon == NULL || colon == line || d->n == DOC_MAX)
				fail_msg("malformed test vector line: \"%s\"", line);
			*colon = '\0';
			for (int i = 0; i < d->n; i++)
				if (strcmp(d->name[i], line) == 0)
					fail_msg("test vector %s given twice", line);
			d->name[d->n] = line;
			d->value[d->n] = colon + 2;
			d->n++;
		}
	}
	if (state != 3)
		fail_msg("%s: no ```text block under \"## Test vectors\"", PROTOCOL_MD);
}

static const char *doc_get(struct doc *d, const char *name)
{
	for (int i = 0; i < d->n; i++) {
		if (strcmp(d->name[i], name) == 0) {
			d->used[i] = 1;
			return d->value[i];
		}
	}
	fail_msg("test vector %s missing from %s", name, PROTOCOL_MD);
	return NULL;
}

/* The document's value of name, as bytes; its length is checked too. */
static void doc_bytes(struct doc *d, const char *name, uint8_t *out, size_t len)
{
	if (from_hex(doc_get(d, name), out, len) != (int)len)
		fail_msg("test vector %s: not %zu bytes of hex", name, len);
}

/* Same, for a vector of any length up to max; returns the length. */
static size_t doc_bytes_var(struct doc *d, const char *name, uint8_t *out, size_t max)
{
	int n = from_hex(doc_get(d, name), out, max);

	if (n <= 0)
		fail_msg("test vector %s: not hex, or longer than %zu bytes", name, max);
	return (size_t)n;
}

static void doc_check(struct doc *d, const char *name, const uint8_t *p, size_t n)
{
	char hex[2 * HS_MAX + 1];

	assert_true(n <= HS_MAX);
	to_hex(p, n, hex);
	if (strcmp(doc_get(d, name), hex) != 0)
		fail_msg("test vector %s:\n  document: %s\n  computed: %s", name,
		         doc_get(d, name), hex);
}

static void doc_done(struct doc *d)
{
	for (int i = 0; i < d->n; i++)
		if (!d->used[i])
			fail_msg("test vector %s in %s is not checked by this test", d->name[i],
			         PROTOCOL_MD);
	free(d->text);
	d->text = NULL;
}

/* ------------------------------------------------------------------------ */
/* Data packets built and taken apart from the formulas of docs/PROTOCOL.md. */

/* key_{e+1} = HKDF(salt = empty, ikm = key_e, info = "sctpt-v2 rekey", 32) */
static void spec_epoch_key(const uint8_t k0[32], uint64_t e, uint8_t out[32])
{
	uint8_t k[32];

	memcpy(k, k0, 32);
	for (uint64_t i = 0; i < e; i++) {
		assert_int_equal(wc_hkdf(NULL, 0, k, 32, LBL("rekey"), out, 32), 0);
		memcpy(k, out, 32);
	}
	memcpy(out, k, 32);
}

static void spec_nonce(const uint8_t iv[12], uint64_t seq, uint8_t nonce[12])
{
	memcpy(nonce, iv, 12);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] ^= (uint8_t)(seq >> (56 - 8 * i));
}

/* datagram = (seq ^ mask) | AEAD(key, iv ^ seq, plaintext); returns its length. */
static size_t spec_seal(const uint8_t key[32], const struct wire_dir_keys *k, uint64_t seq,
                        const uint8_t *pt, size_t ptlen, uint8_t *out)
{
	uint8_t nonce[12], mask[8];

	spec_nonce(k->iv, seq, nonce);
	assert_int_equal(wc_aead_seal(key, nonce, NULL, 0, pt, ptlen, out + 8), 0);
	assert_int_equal(wc_chacha20_mask(k->hp, out + 8 + ptlen, mask, 8), 0);
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(seq >> (56 - 8 * i)) ^ mask[i];
	return 8 + ptlen + WC_TAG_LEN;
}

static uint64_t spec_seq(const struct wire_dir_keys *k, const uint8_t *dg, size_t n)
{
	uint8_t mask[8];
	uint64_t seq = 0;

	assert_int_equal(wc_chacha20_mask(k->hp, dg + n - WC_TAG_LEN, mask, 8), 0);
	for (int i = 0; i < 8; i++)
		seq = seq << 8 | (uint8_t)(dg[i] ^ mask[i]);
	return seq;
}

/* Open with the key of epoch seq >> shift; returns the SCTP length. */
static size_t spec_open(const struct wire_dir_keys *k, unsigned shift, const uint8_t *dg,
                        size_t n, uint64_t want_seq, uint8_t *out)
{
	uint8_t key[32], nonce[12];
	uint64_t seq = spec_seq(k, dg, n);
	size_t ptlen = n - 8 - WC_TAG_LEN, padlen;

	assert_true(seq == want_seq);
	spec_epoch_key(k->key, seq >> shift, key);
	spec_nonce(k->iv, seq, nonce);
	assert_int_equal(wc_aead_open(key, nonce, NULL, 0, dg + 8, n - 8, out), 0);
	padlen = (size_t)out[ptlen - 2] << 8 | out[ptlen - 1];
	assert_true(padlen + 2 <= ptlen);
	for (size_t i = ptlen - 2 - padlen; i < ptlen - 2; i++)
		assert_int_equal(out[i], 0);
	return ptlen - 2 - padlen;
}

/* ------------------------------------------------------------------------ */
/* Test vectors.                                                             */

static void test_vectors_match_document(void **state)
{
	struct doc d;
	struct fixture f;
	struct wire_dir dir;
	uint8_t out[256];
	char cert[WIRE_CERT_B64_MAX];
	ssize_t n;

	doc_load(&d);
	fixture_init(&f);
	doc_check(&d, "server_priv", f.in.spriv, 32);
	doc_check(&d, "bridge_secret", f.in.secret, 16);
	doc_check(&d, "server_pub", f.id.cert.pub, 32);
	assert_int_equal(wire_cert_encode(&f.id.cert, cert, sizeof(cert)), 64);
	assert_string_equal(doc_get(&d, "cert"), cert);
	doc_check(&d, "client_eph_priv", f.in.epriv, 32);
	doc_check(&d, "client_random", f.in.rc, 16);
	doc_check(&d, "client_minutes", f.in.mins, 8);
	doc_check(&d, "hello_pad", f.in.hpad, HELLO_PAD);
	{
		uint8_t mk[32];

		assert_int_equal(hs_mac_key(&f.id.cert, mk), 0);
		doc_check(&d, "hello_mac_key", mk, 32);
		assert_int_equal(hs_hello_mac_ok(mk, f.hello, f.hello_len), 1);
	}
	doc_check(&d, "hello", f.hello, f.hello_len);
	doc_check(&d, "server_eph_priv", f.in.fpriv, 32);
	doc_check(&d, "server_random", f.in.rs, 16);
	doc_check(&d, "reply_pad", f.in.rpad, REPLY_PAD);
	doc_check(&d, "reply", f.reply, f.reply_len);
	doc_check(&d, "c2s_key", f.ks.c2s.key, 32);
	doc_check(&d, "c2s_iv", f.ks.c2s.iv, 12);
	doc_check(&d, "c2s_hp", f.ks.c2s.hp, 32);
	doc_check(&d, "s2c_key", f.ks.s2c.key, 32);
	doc_check(&d, "s2c_iv", f.ks.s2c.iv, 12);
	doc_check(&d, "s2c_hp", f.ks.s2c.hp, 32);
	doc_check(&d, "sctp_packet", f.in.sctp, SCTP_LEN);

	assert_int_equal(wire_dir_init(&dir, &f.ks.c2s, 2), 0);
	n = wire_seal_packet(&dir, f.in.sctp, SCTP_LEN, 4, out);
	assert_int_equal(n, SCTP_LEN + 4 + WIRE_DATA_OVERHEAD);
	doc_check(&d, "c2s_packet_0_pad4", out, (size_t)n);
	n = wire_seal_packet(&dir, f.in.sctp, SCTP_LEN, 0, out);
	assert_int_equal(n, SCTP_LEN + WIRE_DATA_OVERHEAD);
	doc_check(&d, "c2s_packet_1_pad0", out, (size_t)n);
	dir.next_seq = 4;
	n = wire_seal_packet(&dir, f.in.sctp, SCTP_LEN, 0, out);
	assert_int_equal(n, SCTP_LEN + WIRE_DATA_OVERHEAD);
	doc_check(&d, "c2s_packet_4_shift2", out, (size_t)n);
	assert_int_equal(dir.epoch, 1);
	wire_dir_clear(&dir);
	doc_done(&d);
}

/* The document's handshake vectors follow from its own formulas, step by step. */
static void test_vectors_follow_formulas(void **state)
{
	struct doc d;
	struct inputs in;
	struct wire_session_keys k;
	uint8_t hello[HS_MAX], reply[HS_MAX], both[2 * HS_MAX], pt[HS_MAX];
	uint8_t spub[32], mask[32], e_pub[32], f_pub[32], dh1[32], dh1b[32], dh2[32], dh2b[32];
	uint8_t ikm[80], key[32], salt[48], tr[32], zero[32] = { 0 }, a[32], b[32];
	size_t hl, rl;

	inputs_init(&in);
	doc_load(&d);
	doc_bytes(&d, "server_pub", spub, 32);
	hl = doc_bytes_var(&d, "hello", hello, HS_MAX);
	rl = doc_bytes_var(&d, "reply", reply, HS_MAX);
	doc_bytes(&d, "c2s_key", k.c2s.key, 32);
	doc_bytes(&d, "c2s_iv", k.c2s.iv, 12);
	doc_bytes(&d, "c2s_hp", k.c2s.hp, 32);
	doc_bytes(&d, "s2c_key", k.s2c.key, 32);
	doc_bytes(&d, "s2c_iv", k.s2c.iv, 12);
	doc_bytes(&d, "s2c_hp", k.s2c.hp, 32);
	assert_int_equal(hl, 88 + HELLO_PAD);
	assert_int_equal(rl, 64 + REPLY_PAD);

	/* An empty HKDF salt is HashLen zero bytes (RFC 5869). */
	assert_int_equal(wc_hkdf(NULL, 0, in.secret, 16, LBL("rekey"), a, 32), 0);
	assert_int_equal(wc_hkdf(zero, 32, in.secret, 16, LBL("rekey"), b, 32), 0);
	assert_memory_equal(a, b, 32);

	/* HELLO: first the MAC, keyed from K and S */
	assert_int_equal(wc_x25519_public(in.spriv, a), 0);
	assert_memory_equal(a, spub, 32);
	{
		static const char lbl[] = "sctpt-v2 hello mac";
		uint8_t info[sizeof(lbl) - 1 + 32], mk[32], doc_mk[32];

		memcpy(info, lbl, sizeof(lbl) - 1);
		memcpy(info + sizeof(lbl) - 1, spub, 32);
		assert_int_equal(wc_hkdf(NULL, 0, in.secret, 16, info, sizeof(info), mk, 32), 0);
		doc_bytes(&d, "hello_mac_key", doc_mk, 32);
		assert_memory_equal(mk, doc_mk, 32);
		assert_int_equal(wc_hmac_sha256(mk, 32, hello, hl - 16, b), 0);
		assert_memory_equal(b, hello + hl - 16, 16);
	}
	assert_memory_equal(hello, in.rc, 16);
	assert_int_equal(wc_hkdf(in.rc, 16, in.secret, 16, LBL("hello mask"), mask, 32), 0);
	for (int i = 0; i < 32; i++)
		e_pub[i] = hello[16 + i] ^ mask[i];
	assert_int_equal(wc_x25519_public(in.epriv, a), 0);
	assert_memory_equal(e_pub, a, 32);
	assert_int_equal(wc_x25519(in.epriv, spub, dh1), 0);
	assert_int_equal(wc_x25519(in.spriv, e_pub, dh1b), 0);
	assert_memory_equal(dh1, dh1b, 32);
	memcpy(ikm, dh1, 32);
	memcpy(ikm + 32, in.secret, 16);
	assert_int_equal(wc_hkdf(in.rc, 16, ikm, 48, LBL("hello key"), key, 32), 0);
	assert_int_equal(wc_aead_open(key, zero, hello, 48, hello + 48, hl - 48 - 16, pt), 0);
	assert_memory_equal(pt, in.mins, 8);
	assert_memory_equal(pt + 8, in.hpad, HELLO_PAD);

	/* REPLY */
	assert_memory_equal(reply, in.rs, 16);
	assert_int_equal(wc_hkdf(in.rs, 16, in.secret, 16, LBL("reply mask"), mask, 32), 0);
	for (int i = 0; i < 32; i++)
		f_pub[i] = reply[16 + i] ^ mask[i];
	assert_int_equal(wc_x25519_public(in.fpriv, a), 0);
	assert_memory_equal(f_pub, a, 32);
	assert_int_equal(wc_x25519(in.epriv, f_pub, dh2), 0);
	assert_int_equal(wc_x25519(in.fpriv, e_pub, dh2b), 0);
	assert_memory_equal(dh2, dh2b, 32);
	memcpy(ikm, dh1, 32);
	memcpy(ikm + 32, dh2, 32);
	memcpy(ikm + 64, in.secret, 16);
	wc_sha256(hello, hl, salt);
	memcpy(salt + 32, in.rs, 16);
	assert_int_equal(wc_hkdf(salt, 48, ikm, 80, LBL("reply key"), key, 32), 0);
	assert_int_equal(wc_aead_open(key, zero, reply, 48, reply + 48, rl - 48, pt), 0);
	assert_memory_equal(pt, in.rpad, REPLY_PAD);

	/* Session keys */
	memcpy(both, hello, hl);
	memcpy(both + hl, reply, rl);
	wc_sha256(both, hl + rl, tr);
	assert_int_equal(wc_hkdf(tr, 32, ikm, 80, LBL("c2s key"), a, 32), 0);
	assert_memory_equal(a, k.c2s.key, 32);
	assert_int_equal(wc_hkdf(tr, 32, ikm, 80, LBL("c2s iv"), a, 12), 0);
	assert_memory_equal(a, k.c2s.iv, 12);
	assert_int_equal(wc_hkdf(tr, 32, ikm, 80, LBL("c2s hp"), a, 32), 0);
	assert_memory_equal(a, k.c2s.hp, 32);
	assert_int_equal(wc_hkdf(tr, 32, ikm, 80, LBL("s2c key"), a, 32), 0);
	assert_memory_equal(a, k.s2c.key, 32);
	assert_int_equal(wc_hkdf(tr, 32, ikm, 80, LBL("s2c iv"), a, 12), 0);
	assert_memory_equal(a, k.s2c.iv, 12);
	assert_int_equal(wc_hkdf(tr, 32, ikm, 80, LBL("s2c hp"), a, 32), 0);
	assert_memory_equal(a, k.s2c.hp, 32);
	free(d.text);
}

/* The document's data packets: unmask, open with the epoch key, rebuild exactly. */
static void test_vector_packets_follow_formulas(void **state)
{
	struct doc d;
	struct wire_dir_keys k;
	uint8_t dg[256], pt[256], sctp[SCTP_LEN];
	size_t dl;
	struct {
		const char *name;
		uint64_t seq;
		size_t padlen;
	} pk[] = {
		{ "c2s_packet_0_pad4", 0, 4 },
		{ "c2s_packet_1_pad0", 1, 0 },
		{ "c2s_packet_4_shift2", 4, 0 },
	};

	doc_load(&d);
	doc_bytes(&d, "c2s_key", k.key, 32);
	doc_bytes(&d, "c2s_iv", k.iv, 12);
	doc_bytes(&d, "c2s_hp", k.hp, 32);
	doc_bytes(&d, "sctp_packet", sctp, SCTP_LEN);
	for (size_t i = 0; i < N_ELEMS(pk); i++) {
		uint8_t again[256], body[256];
		uint8_t epoch_key[32];

		dl = doc_bytes_var(&d, pk[i].name, dg, sizeof(dg));
		assert_int_equal(dl, SCTP_LEN + pk[i].padlen + WIRE_DATA_OVERHEAD);
		assert_int_equal(spec_open(&k, 2, dg, dl, pk[i].seq, pt), SCTP_LEN);
		assert_memory_equal(pt, sctp, SCTP_LEN);
		memcpy(body, sctp, SCTP_LEN);
		memset(body + SCTP_LEN, 0, pk[i].padlen);
		body[SCTP_LEN + pk[i].padlen] = 0;
		body[SCTP_LEN + pk[i].padlen + 1] = (uint8_t)pk[i].padlen;
		spec_epoch_key(k.key, pk[i].seq >> 2, epoch_key);
		assert_int_equal(spec_seal(epoch_key, &k, pk[i].seq, body,
		                           SCTP_LEN + pk[i].padlen + 2, again), dl);
		assert_memory_equal(again, dg, dl);
	}
	free(d.text);
}

/* The document's packets open with a receiving wire_dir, in order and late. */
static void test_vector_packets_open(void **state)
{
	static const char *names[] = { "c2s_packet_0_pad4", "c2s_packet_1_pad0",
	                               "c2s_packet_4_shift2" };
	static const int orders[][3] = { { 0, 1, 2 }, { 2, 0, 1 }, { 1, 2, 0 } };
	struct doc d;
	struct wire_dir_keys k;
	struct wire_dir rx;
	uint8_t dg[3][256], sctp[SCTP_LEN], out[256];
	size_t len[3];

	doc_load(&d);
	doc_bytes(&d, "c2s_key", k.key, 32);
	doc_bytes(&d, "c2s_iv", k.iv, 12);
	doc_bytes(&d, "c2s_hp", k.hp, 32);
	doc_bytes(&d, "sctp_packet", sctp, SCTP_LEN);
	for (int i = 0; i < 3; i++)
		len[i] = doc_bytes_var(&d, names[i], dg[i], sizeof(dg[i]));
	free(d.text);

	for (size_t o = 0; o < N_ELEMS(orders); o++) {
		assert_int_equal(wire_dir_init(&rx, &k, 2), 0);
		for (int j = 0; j < 3; j++) {
			int i = orders[o][j];

			memset(out, 0xee, sizeof(out));
			assert_int_equal(wire_open_packet(&rx, dg[i], len[i], out), SCTP_LEN);
			assert_memory_equal(out, sctp, SCTP_LEN);
		}
		for (int i = 0; i < 3; i++)
			assert_int_equal(wire_open_packet(&rx, dg[i], len[i], out), WIRE_REPLAY);
		assert_int_equal(rx.epoch, 1);
		wire_dir_clear(&rx);
	}
	/* The packets are c2s: the s2c direction of the same session refuses them. */
	doc_load(&d);
	doc_bytes(&d, "s2c_key", k.key, 32);
	doc_bytes(&d, "s2c_iv", k.iv, 12);
	doc_bytes(&d, "s2c_hp", k.hp, 32);
	free(d.text);
	assert_int_equal(wire_dir_init(&rx, &k, 2), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(wire_open_packet(&rx, dg[i], len[i], out), -1);
	wire_dir_clear(&rx);
}

static void test_session_keys(void **state)
{
	struct fixture f, g;

	fixture_init(&f);
	/* Four distinct secrets per session: no key, iv or hp is shared. */
	assert_memory_not_equal(f.ks.c2s.key, f.ks.s2c.key, 32);
	assert_memory_not_equal(f.ks.c2s.iv, f.ks.s2c.iv, 12);
	assert_memory_not_equal(f.ks.c2s.hp, f.ks.s2c.hp, 32);
	assert_memory_not_equal(f.ks.c2s.key, f.ks.c2s.hp, 32);
	assert_int_equal(f.sst.minutes, MINUTES);
	/* Another server ephemeral: other keys. */
	fixture_init(&g);
	g.in.fpriv[5] ^= 1;
	assert_int_equal(hs_server_reply(&g.id, &g.sst, g.in.fpriv, g.in.rs, NULL, 0, g.hello,
	                                 g.hello_len, g.reply, &g.ks), HS_REPLY_MIN);
	assert_int_equal(hs_client_finish(&g.id.cert, &g.cst, g.reply, HS_REPLY_MIN, &g.kc), 0);
	assert_memory_equal(&g.ks, &g.kc, sizeof(g.ks));
	assert_memory_not_equal(g.ks.c2s.key, f.ks.c2s.key, 32);
	assert_memory_not_equal(g.ks.s2c.key, f.ks.s2c.key, 32);
}

/* ------------------------------------------------------------------------ */
/* Tampering.                                                                */

static void test_hello_every_bit_flip_rejected(void **state)
{
	struct fixture f;
	struct hs_server s;
	uint8_t p[HS_MAX];

	fixture_init(&f);
	for (size_t i = 0; i < f.hello_len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(p, f.hello, f.hello_len);
			p[i] ^= (uint8_t)(1 << bit);
			if (hs_server_parse(&f.id, p, f.hello_len, &s) != -1)
				fail_msg("HELLO with byte %zu bit %d flipped accepted", i, bit);
		}
	}
	assert_int_equal(hs_server_parse(&f.id, f.hello, f.hello_len, &s), 0);
}

static void test_reply_every_bit_flip_rejected(void **state)
{
	struct fixture f;
	struct wire_session_keys k;
	uint8_t p[HS_MAX];

	fixture_init(&f);
	for (size_t i = 0; i < f.reply_len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(p, f.reply, f.reply_len);
			p[i] ^= (uint8_t)(1 << bit);
			if (hs_client_finish(&f.id.cert, &f.cst, p, f.reply_len, &k) != -1)
				fail_msg("REPLY with byte %zu bit %d flipped accepted", i, bit);
		}
	}
	assert_int_equal(hs_client_finish(&f.id.cert, &f.cst, f.reply, f.reply_len, &k), 0);
}

static void test_handshake_truncated_or_extended(void **state)
{
	struct fixture f;
	struct hs_server s;
	struct wire_session_keys k;
	uint8_t p[HS_MAX + 1];

	fixture_init(&f);
	for (size_t n = 0; n < f.hello_len; n++)
		assert_int_equal(hs_server_parse(&f.id, f.hello, n, &s), -1);
	for (size_t n = 0; n < f.reply_len; n++)
		assert_int_equal(hs_client_finish(&f.id.cert, &f.cst, f.reply, n, &k), -1);
	for (int b = 0; b < 256; b += 85) {
		memcpy(p, f.hello, f.hello_len);
		p[f.hello_len] = (uint8_t)b;
		assert_int_equal(hs_server_parse(&f.id, p, f.hello_len + 1, &s), -1);
		memcpy(p, f.reply, f.reply_len);
		p[f.reply_len] = (uint8_t)b;
		assert_int_equal(hs_client_finish(&f.id.cert, &f.cst, p, f.reply_len + 1, &k), -1);
	}
}

/* A snapshot of everything an opener keeps, to prove a rejection changed nothing. */
static void assert_dir_unchanged(const struct wire_dir *a, const struct wire_dir *b)
{
	assert_ptr_equal(a->aead, b->aead);
	assert_ptr_equal(a->prev, b->prev);
	assert_ptr_equal(a->mask, b->mask);
	assert_memory_equal(a->key, b->key, sizeof(a->key));
	assert_true(a->epoch == b->epoch);
	assert_true(a->top == b->top);
	assert_true(a->next_seq == b->next_seq);
	assert_memory_equal(a->bitmap, b->bitmap, sizeof(a->bitmap));
}

/* Seal packets 0..count-1 of the fixture's c2s direction with shift. */
static void seal_series(const struct fixture *f, unsigned shift, size_t count, size_t padlen,
                        uint8_t (*dg)[128], size_t *len)
{
	struct wire_dir tx;

	assert_int_equal(wire_dir_init(&tx, &f->ks.c2s, shift), 0);
	for (size_t i = 0; i < count; i++) {
		ssize_t n = wire_seal_packet(&tx, f->in.sctp, SCTP_LEN, padlen, dg[i]);

		assert_int_equal(n, SCTP_LEN + padlen + WIRE_DATA_OVERHEAD);
		len[i] = (size_t)n;
	}
	wire_dir_clear(&tx);
}

static void open_ok(struct wire_dir *rx, const struct fixture *f, const uint8_t *dg, size_t n)
{
	uint8_t out[256];

	assert_int_equal(wire_open_packet(rx, dg, n, out), SCTP_LEN);
	assert_memory_equal(out, f->in.sctp, SCTP_LEN);
}

/*
 * Flip every bit of packet `target` and offer it to an opener (epoch shift
 * 2) that has accepted the packets in opened[]: every copy is refused and
 * leaves the opener as it was; the genuine packet then opens.
 */
static void packet_flips(const struct fixture *f, uint8_t (*dg)[128], const size_t *len,
                         const int *opened, size_t nopened, size_t target)
{
	struct wire_dir rx, snap;
	uint8_t p[128], out[256];
	ssize_t r;

	assert_int_equal(wire_dir_init(&rx, &f->ks.c2s, 2), 0);
	for (size_t i = 0; i < nopened; i++)
		open_ok(&rx, f, dg[opened[i]], len[opened[i]]);
	memcpy(&snap, &rx, sizeof(rx));
	for (size_t i = 0; i < len[target]; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(p, dg[target], len[target]);
			p[i] ^= (uint8_t)(1 << bit);
			r = wire_open_packet(&rx, p, len[target], out);
			if (r != -1 && r != WIRE_REPLAY)
				fail_msg("packet %zu with byte %zu bit %d flipped opened (%zd)",
				         target, i, bit, r);
			/* A fresh opener has seen nothing: never a replay. */
			if (nopened == 0 && r != -1)
				fail_msg("packet %zu flip %zu/%d: %zd, not -1", target, i, bit, r);
			assert_dir_unchanged(&rx, &snap);
		}
	}
	open_ok(&rx, f, dg[target], len[target]);
	wire_dir_clear(&rx);
}

static void test_packet_every_bit_flip_rejected(void **state)
{
	struct fixture f;
	uint8_t dg[8][128];
	size_t len[8];
	static const int upto3[] = { 0, 1, 2, 3 }, but3[] = { 0, 1, 2, 4, 5, 6, 7 };

	fixture_init(&f);
	seal_series(&f, 2, 8, 3, dg, len);
	packet_flips(&f, dg, len, NULL, 0, 0);   /* fresh opener */
	packet_flips(&f, dg, len, upto3, 3, 3);  /* same epoch, in order */
	packet_flips(&f, dg, len, upto3, 4, 4);  /* next epoch: no candidate key is kept */
	packet_flips(&f, dg, len, but3, 7, 3);   /* previous epoch, late */
}

static void test_packet_truncated_or_extended(void **state)
{
	struct fixture f;
	struct wire_dir rx, snap;
	uint8_t dg[1][128], p[256], out[256];
	size_t len[1];

	fixture_init(&f);
	seal_series(&f, 0, 1, 0, dg, len);
	assert_int_equal(wire_dir_init(&rx, &f.ks.c2s, 0), 0);
	memcpy(&snap, &rx, sizeof(rx));
	for (size_t n = 0; n < len[0]; n++) {
		assert_int_equal(wire_open_packet(&rx, dg[0], n, out), -1);
		/* The tag is read from the end: drop bytes from the front too. */
		assert_int_equal(wire_open_packet(&rx, dg[0] + len[0] - n, n, out), -1);
		assert_dir_unchanged(&rx, &snap);
	}
	memcpy(p, dg[0], len[0]);
	p[len[0]] = 0;
	assert_int_equal(wire_open_packet(&rx, p, len[0] + 1, out), -1);
	assert_dir_unchanged(&rx, &snap);
	open_ok(&rx, &f, dg[0], len[0]);
	wire_dir_clear(&rx);
}

/* A peer bug, not an attack: authentic, but the padding length is too big. */
static void test_packet_bad_padlen_rejected(void **state)
{
	struct fixture f;
	struct wire_dir rx, snap;
	uint8_t pt[64], dg[128], out[128];
	size_t n;

	fixture_init(&f);
	assert_int_equal(wire_dir_init(&rx, &f.ks.c2s, 0), 0);
	memcpy(&snap, &rx, sizeof(rx));
	memset(pt, 0, sizeof(pt));
	for (size_t ptlen = 2; ptlen <= 6; ptlen++) {
		/* padlen + 2 == ptlen + 1: one too many */
		pt[ptlen - 2] = 0;
		pt[ptlen - 1] = (uint8_t)(ptlen - 1);
		n = spec_seal(f.ks.c2s.key, &f.ks.c2s, 7, pt, ptlen, dg);
		assert_int_equal(wire_open_packet(&rx, dg, n, out), -1);
		assert_dir_unchanged(&rx, &snap);
		pt[ptlen - 2] = 0xff;
		n = spec_seal(f.ks.c2s.key, &f.ks.c2s, 7, pt, ptlen, dg);
		assert_int_equal(wire_open_packet(&rx, dg, n, out), -1);
		assert_dir_unchanged(&rx, &snap);
	}
	/* padlen + 2 == ptlen exactly is well formed: an empty packet. */
	pt[0] = 0xaa;
	pt[1] = 0;
	pt[2] = 1;
	n = spec_seal(f.ks.c2s.key, &f.ks.c2s, 7, pt, 3, dg);
	assert_int_equal(wire_open_packet(&rx, dg, n, out), 0);
	assert_true(rx.top == 8);
	wire_dir_clear(&rx);
}

/* ------------------------------------------------------------------------ */
/* Replay.                                                                   */

static void test_packet_replay(void **state)
{
	struct fixture f;
	struct wire_dir rx;
	uint8_t dg[16][128], out[256];
	size_t len[16];
	static const int order[] = { 5, 0, 9, 3, 15, 1, 14, 2, 4, 8, 7, 6, 13, 10, 12, 11 };

	fixture_init(&f);
	seal_series(&f, 0, 16, 0, dg, len);
	assert_int_equal(wire_dir_init(&rx, &f.ks.c2s, 0), 0);
	open_ok(&rx, &f, dg[0], len[0]);
	assert_int_equal(wire_open_packet(&rx, dg[0], len[0], out), WIRE_REPLAY);
	assert_int_equal(wire_open_packet(&rx, dg[0], len[0], out), WIRE_REPLAY);
	wire_dir_clear(&rx);

	/* Any order within the window: each packet once, then never again. */
	assert_int_equal(wire_dir_init(&rx, &f.ks.c2s, 0), 0);
	for (size_t j = 0; j < N_ELEMS(order); j++) {
		open_ok(&rx, &f, dg[order[j]], len[order[j]]);
		for (size_t i = 0; i <= j; i++)
			assert_int_equal(wire_open_packet(&rx, dg[order[i]], len[order[i]], out),
			                 WIRE_REPLAY);
	}
	assert_true(rx.top == 16);
	wire_dir_clear(&rx);
}

/* Seal one packet with number seq (epoch 0 with the default shift). */
static size_t seal_at(const struct fixture *f, uint64_t seq, uint8_t *out)
{
	struct wire_dir tx;
	ssize_t n;

	assert_int_equal(wire_dir_init(&tx, &f->ks.c2s, 0), 0);
	tx.next_seq = seq;
	n = wire_seal_packet(&tx, f->in.sctp, SCTP_LEN, 0, out);
	assert_int_equal(n, SCTP_LEN + WIRE_DATA_OVERHEAD);
	assert_true(tx.next_seq == seq + 1);
	wire_dir_clear(&tx);
	return (size_t)n;
}

static ssize_t open_at(struct wire_dir *rx, const struct fixture *f, uint64_t seq)
{
	uint8_t dg[128], out[256];
	size_t n = seal_at(f, seq, dg);

	return wire_open_packet(rx, dg, n, out);
}

static void test_packet_replay_window_edges(void **state)
{
	const uint64_t W = WIRE_REPLAY_WINDOW;
	struct fixture f;
	struct wire_dir rx;

	fixture_init(&f);
	assert_int_equal(wire_dir_init(&rx, &f.ks.c2s, 0), 0);
	assert_int_equal(open_at(&rx, &f, W + 1), SCTP_LEN);          /* top = W + 2 */
	assert_int_equal(open_at(&rx, &f, 0), WIRE_REPLAY);           /* W + 2 behind */
	assert_int_equal(open_at(&rx, &f, 1), WIRE_REPLAY);           /* W + 1 behind */
	assert_int_equal(open_at(&rx, &f, 2), SCTP_LEN);              /* exactly W behind */
	assert_int_equal(open_at(&rx, &f, 2), WIRE_REPLAY);
	assert_int_equal(open_at(&rx, &f, W), SCTP_LEN);
	assert_int_equal(open_at(&rx, &f, W + 1), WIRE_REPLAY);
	wire_dir_clear(&rx);

	/*
	 * The bitmap is a ring: after 0..99 and then a jump to W + 50, the slots
	 * of 51..99 still mean "seen", those of W..W + 49 were cleared for reuse.
	 */
	assert_int_equal(wire_dir_init(&rx, &f.ks.c2s, 0), 0);
	for (uint64_t s = 0; s < 100; s++)
		assert_int_equal(open_at(&rx, &f, s), SCTP_LEN);
	assert_int_equal(open_at(&rx, &f, W + 50), SCTP_LEN);
	assert_int_equal(open_at(&rx, &f, 50), WIRE_REPLAY);          /* too old */
	assert_int_equal(open_at(&rx, &f, 51), WIRE_REPLAY);          /* seen */
	assert_int_equal(open_at(&rx, &f, 99), WIRE_REPLAY);          /* seen */
	assert_int_equal(open_at(&rx, &f, 100), SCTP_LEN);
	assert_int_equal(open_at(&rx, &f, W), SCTP_LEN);
	assert_int_equal(open_at(&rx, &f, W + 49), SCTP_LEN);
	assert_int_equal(open_at(&rx, &f, W + 49), WIRE_REPLAY);
	/* Moving top from W + 51 on frees the slot of 51 (seen) for W + 51. */
	assert_int_equal(open_at(&rx, &f, W + 120), SCTP_LEN);
	assert_int_equal(open_at(&rx, &f, W + 51), SCTP_LEN);
	assert_int_equal(open_at(&rx, &f, 51), WIRE_REPLAY);
	assert_int_equal(open_at(&rx, &f, 120), WIRE_REPLAY);         /* too old now */
	assert_int_equal(open_at(&rx, &f, 121), SCTP_LEN);
	/* A jump of more than the window forgets everything older. */
	assert_int_equal(open_at(&rx, &f, 3 * W), SCTP_LEN);         /* top = 3W + 1 */
	assert_int_equal(open_at(&rx, &f, 2 * W), WIRE_REPLAY);
	assert_int_equal(open_at(&rx, &f, 2 * W + 1), SCTP_LEN);
	assert_int_equal(open_at(&rx, &f, 3 * W - 1), SCTP_LEN);
	assert_int_equal(open_at(&rx, &f, W + 50), WIRE_REPLAY);
	wire_dir_clear(&rx);
}

/*
 * The handshake layer has no memory: the same HELLO parses every time, with
 * the same hello_hash.  Answering it only once is the listener's job
 * (wire/replay.c remembers SHA-256(HELLO), tests/unit/test_replay.c; docs/PROTOCOL.md,
 * "Server processing of a HELLO", step 5).
 */
static void test_hello_replay_parses_at_hs_layer(void **state)
{
	struct fixture f;
	struct hs_server a, b;
	uint8_t h[32];

	fixture_init(&f);
	assert_int_equal(hs_server_parse(&f.id, f.hello, f.hello_len, &a), 0);
	assert_int_equal(hs_server_parse(&f.id, f.hello, f.hello_len, &b), 0);
	assert_memory_equal(a.hello_hash, b.hello_hash, 32);
	assert_memory_equal(a.e_pub, b.e_pub, 32);
	wc_sha256(f.hello, f.hello_len, h);
	assert_memory_equal(a.hello_hash, h, 32);
}

/* ------------------------------------------------------------------------ */
/* Nonces and rekeying.                                                      */

#define SERIES 21

static void test_epochs_in_order(void **state)
{
	struct fixture f;
	struct wire_dir rx;
	uint8_t dg[SERIES][128], nonce[SERIES][12], out[256];
	size_t len[SERIES];

	fixture_init(&f);
	seal_series(&f, 2, SERIES, 0, dg, len);
	for (size_t i = 0; i < SERIES; i++) {
		/* Each packet is what the document's formulas give for its number. */
		assert_int_equal(spec_open(&f.ks.c2s, 2, dg[i], len[i], i, out), SCTP_LEN);
		assert_memory_equal(out, f.in.sctp, SCTP_LEN);
		spec_nonce(f.ks.c2s.iv, i, nonce[i]);
	}
	for (size_t i = 0; i < SERIES; i++) {
		for (size_t j = 0; j < i; j++) {
			assert_memory_not_equal(nonce[i], nonce[j], 12);
			/* Same plaintext, different ciphertext, tag and header. */
			assert_memory_not_equal(dg[i] + 8, dg[j] + 8, SCTP_LEN + 2);
			assert_memory_not_equal(dg[i] + len[i] - 16, dg[j] + len[j] - 16, 16);
			assert_memory_not_equal(dg[i], dg[j], 8);
		}
	}
	assert_int_equal(wire_dir_init(&rx, &f.ks.c2s, 2), 0);
	for (size_t i = 0; i < SERIES; i++) {
		open_ok(&rx, &f, dg[i], len[i]);
		assert_true(rx.epoch == i / 4);
	}
	wire_dir_clear(&rx);
}

/*
 * What an opener with epoch shift 2 must do, per docs/PROTOCOL.md: drop
 * seen packets, accept the current, previous or next epoch (the next one
 * becomes current), drop the rest.
 */
struct model {
	uint64_t epoch;
	int seen[SERIES];
};

static ssize_t model_open(struct model *m, uint64_t seq)
{
	uint64_t e = seq >> 2;

	if (m->seen[seq])
		return WIRE_REPLAY;
	if (e == m->epoch + 1)
		m->epoch++;
	else if (e != m->epoch && e + 1 != m->epoch)
		return -1;
	m->seen[seq] = 1;
	return SCTP_LEN;
}

static uint32_t xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Offer the series in order[] (twice), checking every answer against the model. */
static void run_order(const struct fixture *f, const struct wire_dir_keys *k,
                      uint8_t (*dg)[128], const size_t *len, const int *order, int count,
                      int expect_all)
{
	struct wire_dir rx;
	struct model m;
	uint8_t out[256];
	int accepted = 0;

	memset(&m, 0, sizeof(m));
	assert_int_equal(wire_dir_init(&rx, k, 2), 0);
	for (int pass = 0; pass < 2; pass++) {
		for (int j = 0; j < count; j++) {
			int i = order[j];
			ssize_t want = model_open(&m, (uint64_t)i);
			ssize_t got = wire_open_packet(&rx, dg[i], len[i], out);

			if (got != want)
				fail_msg("pass %d, packet %d (position %d): got %zd, want %zd",
				         pass, i, j, got, want);
			if (got >= 0) {
				assert_memory_equal(out, f->in.sctp, SCTP_LEN);
				accepted++;
			}
			assert_true(rx.epoch == m.epoch);
		}
	}
	if (expect_all)
		assert_int_equal(accepted, count);
	wire_dir_clear(&rx);
}

static void shuffled(const struct fixture *f, const struct wire_dir_keys *k)
{
	uint8_t dg[SERIES][128];
	size_t len[SERIES];
	int order[SERIES];
	uint32_t seed = 0x9e3779b9;
	struct wire_dir tx;

	assert_int_equal(wire_dir_init(&tx, k, 2), 0);
	for (int i = 0; i < SERIES; i++) {
		ssize_t n = wire_seal_packet(&tx, f->in.sctp, SCTP_LEN, (size_t)i, dg[i]);

		assert_true(n > 0);
		len[i] = (size_t)n;
	}
	wire_dir_clear(&tx);

	/* Reversed in blocks of three: crosses every epoch boundary both ways. */
	for (int i = 0; i < SERIES; i++)
		order[i] = i / 3 * 3 + 2 - i % 3;
	run_order(f, k, dg, len, order, SERIES, 1);
	/* Next epoch first, then the late ones of the previous epoch. */
	for (int i = 0; i < SERIES; i++)
		order[i] = i % 4 == 3 && i + 1 < SERIES ? i + 1 : i % 4 == 0 && i > 0 ? i - 1 : i;
	run_order(f, k, dg, len, order, SERIES, 1);
	/* Random displacements of up to three places: the model says which survive. */
	for (int round = 0; round < 300; round++) {
		for (int i = 0; i < SERIES; i++)
			order[i] = i;
		for (int i = 0; i < SERIES; i++) {
			int j = i + (int)(xorshift(&seed) % 4);

			if (j < SERIES) {
				int t = order[i];

				order[i] = order[j];
				order[j] = t;
			}
		}
		run_order(f, k, dg, len, order, SERIES, 0);
	}
	/* Any permutation at all. */
	for (int round = 0; round < 100; round++) {
		for (int i = 0; i < SERIES; i++)
			order[i] = i;
		for (int i = SERIES - 1; i > 0; i--) {
			int j = (int)(xorshift(&seed) % (uint32_t)(i + 1)), t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
		run_order(f, k, dg, len, order, SERIES, 0);
	}
}

static void test_epochs_shuffled_both_directions(void **state)
{
	struct fixture f;

	fixture_init(&f);
	shuffled(&f, &f.ks.c2s);
	shuffled(&f, &f.ks.s2c);
}

static void test_epochs_late_and_early(void **state)
{
	struct fixture f;
	struct wire_dir rx, snap;
	uint8_t dg[SERIES][128], out[256];
	size_t len[SERIES];

	fixture_init(&f);
	seal_series(&f, 2, SERIES, 0, dg, len);
	assert_int_equal(wire_dir_init(&rx, &f.ks.c2s, 2), 0);
	open_ok(&rx, &f, dg[0], len[0]);
	/* Two epochs ahead: no key for it yet; dropped and nothing changes. */
	memcpy(&snap, &rx, sizeof(rx));
	for (int i = 8; i < SERIES; i++) {
		assert_int_equal(wire_open_packet(&rx, dg[i], len[i], out), -1);
		assert_dir_unchanged(&rx, &snap);
	}
	/* One epoch ahead: accepted, becomes current; epoch 0 stays usable. */
	open_ok(&rx, &f, dg[5], len[5]);
	assert_true(rx.epoch == 1);
	open_ok(&rx, &f, dg[3], len[3]);
	open_ok(&rx, &f, dg[1], len[1]);
	open_ok(&rx, &f, dg[4], len[4]);
	/* Now epoch 2 is the next one and opens; epoch 3 is still too far. */
	assert_int_equal(wire_open_packet(&rx, dg[12], len[12], out), -1);
	open_ok(&rx, &f, dg[9], len[9]);
	assert_true(rx.epoch == 2);
	/* Epoch 1 is the previous one now; epoch 0 is two behind: dropped. */
	open_ok(&rx, &f, dg[6], len[6]);
	memcpy(&snap, &rx, sizeof(rx));
	assert_int_equal(wire_open_packet(&rx, dg[2], len[2], out), -1);
	assert_dir_unchanged(&rx, &snap);
	open_ok(&rx, &f, dg[12], len[12]);
	open_ok(&rx, &f, dg[8], len[8]);
	open_ok(&rx, &f, dg[11], len[11]);
	assert_int_equal(wire_open_packet(&rx, dg[7], len[7], out), -1);   /* epoch 1, now two behind */
	assert_int_equal(wire_open_packet(&rx, dg[11], len[11], out), WIRE_REPLAY);
	wire_dir_clear(&rx);
}

static void test_seq_limit(void **state)
{
	struct fixture f;
	struct wire_dir tx, rx, snap;
	uint8_t dg[128], pt[64], out[256];
	uint8_t key[32];
	ssize_t n;

	fixture_init(&f);
	/*
	 * The sealer refuses to go past the limit, without side effects.  Shift
	 * 61 first: should the check be missing, sealing fails here quickly
	 * instead of rolling 2^32 keys forward.
	 */
	for (unsigned shift = 61; shift != 30; shift = 30) {
		assert_int_equal(wire_dir_init(&tx, &f.ks.c2s, shift), 0);
		tx.next_seq = WIRE_SEQ_LIMIT;
		assert_int_equal(wire_seal_packet(&tx, f.in.sctp, SCTP_LEN, 0, dg), -1);
		assert_int_equal(wire_seal_packet(&tx, f.in.sctp, SCTP_LEN, 0, dg), -1);
		assert_true(tx.next_seq == WIRE_SEQ_LIMIT);
		tx.next_seq = UINT64_MAX;
		assert_int_equal(wire_seal_packet(&tx, f.in.sctp, SCTP_LEN, 0, dg), -1);
		wire_dir_clear(&tx);
	}

	/* The last number is usable (shift 61: the last packet is epoch 1). */
	assert_int_equal(wire_dir_init(&tx, &f.ks.c2s, 61), 0);
	assert_int_equal(wire_dir_init(&rx, &f.ks.c2s, 61), 0);
	tx.next_seq = WIRE_SEQ_LIMIT - 1;
	n = wire_seal_packet(&tx, f.in.sctp, SCTP_LEN, 0, dg);
	assert_int_equal(n, SCTP_LEN + WIRE_DATA_OVERHEAD);
	assert_true(spec_seq(&f.ks.c2s, dg, (size_t)n) == WIRE_SEQ_LIMIT - 1);
	assert_int_equal(wire_seal_packet(&tx, f.in.sctp, SCTP_LEN, 0, out), -1);
	assert_true(tx.next_seq == WIRE_SEQ_LIMIT);
	assert_int_equal(wire_open_packet(&rx, dg, (size_t)n, out), SCTP_LEN);
	assert_memory_equal(out, f.in.sctp, SCTP_LEN);
	assert_true(rx.epoch == 1);
	wire_dir_clear(&tx);

	/*
	 * An authentic packet numbered at or past the limit is dropped, even
	 * though its epoch (2) is the next one and its key is right.
	 */
	memcpy(&snap, &rx, sizeof(rx));
	memset(pt, 0, sizeof(pt));
	spec_epoch_key(f.ks.c2s.key, 2, key);
	for (uint64_t seq = WIRE_SEQ_LIMIT; seq < WIRE_SEQ_LIMIT + 3; seq++) {
		n = (ssize_t)spec_seal(key, &f.ks.c2s, seq, pt, 20, dg);
		assert_int_equal(wire_open_packet(&rx, dg, (size_t)n, out), -1);
		assert_dir_unchanged(&rx, &snap);
	}
	wire_dir_clear(&rx);
}

/* ------------------------------------------------------------------------ */
/* Wrong cert, wrong peer, wrong direction.                                  */

static void test_hello_for_other_cert_rejected(void **state)
{
	struct fixture f;
	struct wire_cert c;
	struct hs_client st;
	struct hs_server s;
	uint8_t hello[HS_MAX], other_priv[32];
	int n;

	fixture_init(&f);
	/* Another bridge secret, each byte in turn. */
	for (int i = 0; i < WIRE_SECRET_LEN; i++) {
		c = f.id.cert;
		c.secret[i] ^= 0x80;
		n = hs_client_hello(&c, &st, f.in.epriv, f.in.rc, MINUTES, NULL, 0, hello);
		assert_int_equal(n, HS_HELLO_MIN);
		assert_int_equal(hs_server_parse(&f.id, hello, (size_t)n, &s), -1);
	}
	/* Another server key with the right secret. */
	fill(other_priv, 32, 0x33);
	c = f.id.cert;
	assert_int_equal(wc_x25519_public(other_priv, c.pub), 0);
	n = hs_client_hello(&c, &st, f.in.epriv, f.in.rc, MINUTES, NULL, 0, hello);
	assert_int_equal(n, HS_HELLO_MIN);
	assert_int_equal(hs_server_parse(&f.id, hello, (size_t)n, &s), -1);
	/* A server with another private key but our cert's secret refuses ours. */
	{
		struct wire_identity id2;

		assert_int_equal(wire_identity_from_priv(&id2, other_priv, f.in.secret), 0);
		assert_int_equal(hs_server_parse(&id2, f.hello, f.hello_len, &s), -1);
		assert_int_equal(hs_server_parse(&id2, hello, (size_t)n, &s), 0);
	}
	/* A cert whose key is a low-order point cannot be used at all. */
	c = f.id.cert;
	memset(c.pub, 0, 32);
	assert_int_equal(hs_client_hello(&c, &st, f.in.epriv, f.in.rc, MINUTES, NULL, 0, hello), -1);
}

static void test_reply_to_other_hello_rejected(void **state)
{
	struct fixture f;
	struct hs_client st2;
	struct hs_server s2;
	struct wire_session_keys k;
	uint8_t hello2[HS_MAX], reply2[HS_MAX], r2[16];
	int hl, rl;

	fixture_init(&f);
	/* Same ephemeral key, another random: another HELLO, another transcript. */
	memcpy(r2, f.in.rc, 16);
	r2[0] ^= 1;
	hl = hs_client_hello(&f.id.cert, &st2, f.in.epriv, r2, MINUTES, f.in.hpad, HELLO_PAD, hello2);
	assert_int_equal(hs_server_parse(&f.id, hello2, (size_t)hl, &s2), 0);
	rl = hs_server_reply(&f.id, &s2, f.in.fpriv, f.in.rs, f.in.rpad, REPLY_PAD, hello2,
	                     (size_t)hl, reply2, &k);
	assert_true(rl > 0);
	assert_int_equal(hs_client_finish(&f.id.cert, &f.cst, reply2, (size_t)rl, &k), -1);
	assert_int_equal(hs_client_finish(&f.id.cert, &st2, f.reply, f.reply_len, &k), -1);
	assert_int_equal(hs_client_finish(&f.id.cert, &st2, reply2, (size_t)rl, &k), 0);

	/* Another ephemeral key. */
	f.in.epriv[0] ^= 0x40;
	hl = hs_client_hello(&f.id.cert, &st2, f.in.epriv, f.in.rc, MINUTES, f.in.hpad, HELLO_PAD,
	                     hello2);
	assert_int_equal(hs_server_parse(&f.id, hello2, (size_t)hl, &s2), 0);
	rl = hs_server_reply(&f.id, &s2, f.in.fpriv, f.in.rs, f.in.rpad, REPLY_PAD, hello2,
	                     (size_t)hl, reply2, &k);
	assert_int_equal(hs_client_finish(&f.id.cert, &f.cst, reply2, (size_t)rl, &k), -1);

	/* A client with another bridge secret refuses the right REPLY. */
	{
		struct wire_cert c = f.id.cert;

		c.secret[3] ^= 1;
		assert_int_equal(hs_client_finish(&c, &f.cst, f.reply, f.reply_len, &k), -1);
	}
}

/* No message is valid in another role: reflections meet silence. */
static void test_reflections_rejected(void **state)
{
	struct fixture f;
	struct hs_server s;
	struct wire_session_keys k;
	struct wire_dir rx;
	uint8_t dg[1][128], out[256];
	size_t len[1];

	fixture_init(&f);
	assert_int_equal(hs_server_parse(&f.id, f.reply, f.reply_len, &s), -1);
	assert_int_equal(hs_client_finish(&f.id.cert, &f.cst, f.hello, f.hello_len, &k), -1);
	seal_series(&f, 0, 1, 40, dg, len);
	assert_int_equal(hs_server_parse(&f.id, dg[0], len[0], &s), -1);
	assert_int_equal(wire_dir_init(&rx, &f.ks.s2c, 0), 0);
	assert_int_equal(wire_open_packet(&rx, dg[0], len[0], out), -1);
	assert_int_equal(wire_open_packet(&rx, f.hello, f.hello_len, out), -1);
	assert_int_equal(wire_open_packet(&rx, f.reply, f.reply_len, out), -1);
	wire_dir_clear(&rx);
}

/* ------------------------------------------------------------------------ */
/* cert= values.                                                             */

static void test_cert_round_trip(void **state)
{
	struct fixture f;
	struct wire_cert c, d;
	char s[WIRE_CERT_B64_MAX], t[WIRE_CERT_B64_MAX];
	uint32_t seed = 12345;

	fixture_init(&f);
	assert_int_equal(wire_cert_encode(&f.id.cert, s, sizeof(s)), 64);
	assert_int_equal(strlen(s), 64);
	assert_int_equal(wire_cert_decode(s, &c), 0);
	assert_memory_equal(&c, &f.id.cert, sizeof(c));
	for (int round = 0; round < 200; round++) {
		uint8_t *p = (uint8_t *)&c;

		for (size_t i = 0; i < sizeof(c); i++)
			p[i] = (uint8_t)xorshift(&seed);
		assert_int_equal(wire_cert_encode(&c, s, sizeof(s)), 64);
		assert_null(strchr(s, '='));
		assert_int_equal(wire_cert_decode(s, &d), 0);
		assert_memory_equal(&c, &d, sizeof(c));
		/* 48 bytes fill 64 characters exactly: one spelling per cert. */
		assert_int_equal(wire_cert_encode(&d, t, sizeof(t)), 64);
		assert_string_equal(s, t);
	}
	/* Every character of the alphabet, in every position. */
	for (int i = 0; i < 64; i++) {
		static const char abc[] =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

		memset(s, 'A', 64);
		s[64] = '\0';
		for (int j = 0; j < 64; j++) {
			s[i] = abc[j];
			assert_int_equal(wire_cert_decode(s, &d), 0);
			assert_int_equal(wire_cert_encode(&d, t, sizeof(t)), 64);
			assert_string_equal(s, t);
		}
	}
}

static void test_cert_encode_buffer(void **state)
{
	struct fixture f;
	char s[WIRE_CERT_B64_MAX];

	fixture_init(&f);
	memset(s, 'x', sizeof(s));
	assert_int_equal(wire_cert_encode(&f.id.cert, s, 64), -1);
	assert_int_equal(wire_cert_encode(&f.id.cert, s, 0), -1);
	assert_int_equal(wire_cert_encode(&f.id.cert, s, 65), 64);
	assert_int_equal(s[64], '\0');
}

static void test_cert_decode_rejects(void **state)
{
	struct fixture f;
	struct wire_cert c, before;
	char good[WIRE_CERT_B64_MAX], s[WIRE_CERT_B64_MAX + 8];
	static const char bad[] = "=-_. \t\n\r\"'*#@%~!$&(),:;<>?[]\\^`{|}\x7f\x80\xff";

	fixture_init(&f);
	assert_int_equal(wire_cert_encode(&f.id.cert, good, sizeof(good)), 64);
	memset(&c, 0x5a, sizeof(c));
	memcpy(&before, &c, sizeof(c));

	assert_int_equal(wire_cert_decode("", &c), -1);
	/* Every length from 0 to 70 except 64: prefixes and extensions of a good one. */
	for (size_t n = 0; n <= 70; n++) {
		if (n == 64)
			continue;
		for (size_t i = 0; i < n; i++)
			s[i] = good[i % 64];
		s[n] = '\0';
		assert_int_equal(wire_cert_decode(s, &c), -1);
	}
	/* 65 characters: one extra valid character, or a single '='. */
	snprintf(s, sizeof(s), "%sA", good);
	assert_int_equal(wire_cert_decode(s, &c), -1);
	snprintf(s, sizeof(s), "%s=", good);
	assert_int_equal(wire_cert_decode(s, &c), -1);
	/* 66 characters that are not "==", and three '='. */
	snprintf(s, sizeof(s), "%sA=", good);
	assert_int_equal(wire_cert_decode(s, &c), -1);
	snprintf(s, sizeof(s), "%s=A", good);
	assert_int_equal(wire_cert_decode(s, &c), -1);
	snprintf(s, sizeof(s), "%sAA", good);
	assert_int_equal(wire_cert_decode(s, &c), -1);
	snprintf(s, sizeof(s), "%s===", good);
	assert_int_equal(wire_cert_decode(s, &c), -1);
	/* Padding inside, not at the end, in the 64 characters. */
	snprintf(s, sizeof(s), "%.62s==", good);
	assert_int_equal(wire_cert_decode(s, &c), -1);
	/* Every invalid character in every position. */
	for (size_t i = 0; i < 64; i++) {
		for (size_t j = 0; j < sizeof(bad) - 1; j++) {
			memcpy(s, good, 65);
			s[i] = bad[j];
			assert_int_equal(wire_cert_decode(s, &c), -1);
		}
	}
	/* Surrounding whitespace is not trimmed. */
	snprintf(s, sizeof(s), " %.63s", good);
	assert_int_equal(wire_cert_decode(s, &c), -1);
	snprintf(s, sizeof(s), "%s\n", good);
	assert_int_equal(wire_cert_decode(s, &c), -1);
	/* A refused value leaves the output alone. */
	assert_memory_equal(&c, &before, sizeof(c));
}

static void test_cert_decode_padding(void **state)
{
	struct fixture f;
	struct wire_cert c;
	char s[WIRE_CERT_B64_MAX + 8];

	fixture_init(&f);
	assert_int_equal(wire_cert_encode(&f.id.cert, s, sizeof(s)), 64);
	strcat(s, "==");
	assert_int_equal(wire_cert_decode(s, &c), 0);
	assert_memory_equal(&c, &f.id.cert, sizeof(c));
}

/* ------------------------------------------------------------------------ */
/* Lengths.                                                                  */

static void test_hello_lengths(void **state)
{
	struct fixture f;
	struct hs_client st;
	struct hs_server s;
	static uint8_t pad[HS_MAX + 8], hello[HS_MAX + 8];
	int n;

	fixture_init(&f);
	memset(pad, 0x77, sizeof(pad));
	/* Shortest and longest HELLO both parse. */
	n = hs_client_hello(&f.id.cert, &st, f.in.epriv, f.in.rc, MINUTES, NULL, 0, hello);
	assert_int_equal(n, HS_HELLO_MIN);
	assert_int_equal(hs_server_parse(&f.id, hello, (size_t)n, &s), 0);
	assert_int_equal(s.minutes, MINUTES);
	n = hs_client_hello(&f.id.cert, &st, f.in.epriv, f.in.rc, UINT64_MAX, pad,
	                    HS_MAX - HS_HELLO_MIN, hello);
	assert_int_equal(n, HS_MAX);
	assert_int_equal(st.hello_len, HS_MAX);
	assert_int_equal(hs_server_parse(&f.id, hello, (size_t)n, &s), 0);
	assert_true(s.minutes == UINT64_MAX);
	/* One byte more is refused and nothing is written. */
	memset(hello, 0xee, sizeof(hello));
	assert_int_equal(hs_client_hello(&f.id.cert, &st, f.in.epriv, f.in.rc, MINUTES, pad,
	                                 HS_MAX - HS_HELLO_MIN + 1, hello), -1);
	assert_int_equal(hello[0], 0xee);
	assert_int_equal(hs_client_hello(&f.id.cert, &st, f.in.epriv, f.in.rc, MINUTES, pad,
	                                 sizeof(pad), hello), -1);
	/* The server refuses short and long datagrams before any crypto. */
	for (size_t len = 0; len < HS_HELLO_MIN; len++)
		assert_int_equal(hs_server_parse(&f.id, hello, len, &s), -1);
	assert_int_equal(hs_server_parse(&f.id, hello, HS_MAX + 1, &s), -1);
}

static void test_hello_oversized_datagram(void **state)
{
	struct fixture f;
	struct hs_server s;
	struct wire_session_keys k;
	uint8_t *big;

	fixture_init(&f);
	/* A datagram far over HS_MAX must be refused, not decrypted onto the stack. */
	big = calloc(1, 65536);
	assert_non_null(big);
	memcpy(big, f.hello, f.hello_len);
	assert_int_equal(hs_server_parse(&f.id, big, 65536, &s), -1);
	assert_int_equal(hs_server_parse(&f.id, big, HS_MAX + 1, &s), -1);
	memcpy(big, f.reply, f.reply_len);
	assert_int_equal(hs_client_finish(&f.id.cert, &f.cst, big, 65536, &k), -1);
	assert_int_equal(hs_client_finish(&f.id.cert, &f.cst, big, HS_MAX + 1, &k), -1);
	free(big);
}

static void test_reply_lengths(void **state)
{
	struct fixture f;
	struct wire_session_keys ks, kc;
	static uint8_t pad[HS_MAX], reply[HS_MAX];
	int n;

	fixture_init(&f);
	memset(pad, 0x55, sizeof(pad));
	n = hs_server_reply(&f.id, &f.sst, f.in.fpriv, f.in.rs, NULL, 0, f.hello, f.hello_len,
	                    reply, &ks);
	assert_int_equal(n, HS_REPLY_MIN);
	assert_int_equal(hs_client_finish(&f.id.cert, &f.cst, reply, (size_t)n, &kc), 0);
	assert_memory_equal(&ks, &kc, sizeof(ks));
	n = hs_server_reply(&f.id, &f.sst, f.in.fpriv, f.in.rs, pad, HS_MAX - HS_REPLY_MIN,
	                    f.hello, f.hello_len, reply, &ks);
	assert_int_equal(n, HS_MAX);
	assert_int_equal(hs_client_finish(&f.id.cert, &f.cst, reply, (size_t)n, &kc), 0);
	assert_memory_equal(&ks, &kc, sizeof(ks));
	assert_int_equal(hs_server_reply(&f.id, &f.sst, f.in.fpriv, f.in.rs, pad,
	                                 HS_MAX - HS_REPLY_MIN + 1, f.hello, f.hello_len,
	                                 reply, &ks), -1);
	for (size_t len = 0; len < HS_REPLY_MIN; len++)
		assert_int_equal(hs_client_finish(&f.id.cert, &f.cst, reply, len, &kc), -1);
}

static void test_packet_lengths(void **state)
{
	struct fixture f;
	struct wire_dir tx, rx;
	static uint8_t big[0x10000 + 64 + WIRE_DATA_OVERHEAD], out[sizeof(big)];
	uint8_t one = 0x42;
	ssize_t n;

	fixture_init(&f);
	assert_int_equal(wire_dir_init(&tx, &f.ks.c2s, 0), 0);
	assert_int_equal(wire_dir_init(&rx, &f.ks.c2s, 0), 0);
	/* The largest padding, and one more. */
	n = wire_seal_packet(&tx, f.in.sctp, SCTP_LEN, 0xffff, big);
	assert_int_equal(n, SCTP_LEN + 0xffff + WIRE_DATA_OVERHEAD);
	assert_int_equal(wire_open_packet(&rx, big, (size_t)n, out), SCTP_LEN);
	assert_memory_equal(out, f.in.sctp, SCTP_LEN);
	assert_int_equal(wire_seal_packet(&tx, f.in.sctp, SCTP_LEN, 0x10000, big), -1);
	assert_true(tx.next_seq == 1);
	/* The smallest datagram: a one-byte packet, no padding. */
	n = wire_seal_packet(&tx, &one, 1, 0, big);
	assert_int_equal(n, 1 + WIRE_DATA_OVERHEAD);
	assert_int_equal(wire_open_packet(&rx, big, (size_t)n, out), 1);
	assert_int_equal(out[0], 0x42);
	/* Anything shorter than the overhead plus one byte is refused. */
	for (size_t len = 0; len <= WIRE_DATA_OVERHEAD; len++)
		assert_int_equal(wire_open_packet(&rx, big, len, out), -1);
	wire_dir_clear(&tx);
	wire_dir_clear(&rx);
	/* Clearing twice, or a zeroed struct, is safe. */
	wire_dir_clear(&rx);
	memset(&rx, 0, sizeof(rx));
	wire_dir_clear(&rx);
}

/*
 * The packet is encrypted from the caller's buffer straight into out
 * (wc_aead_ctx_seal_tail), or in place when it already sits at out + 8:
 * both give the same datagram, byte for byte, for every padding length
 * shape, and it opens to the packet.
 */
static void test_packet_seal_in_place_or_not(void **state)
{
	struct fixture f;
	struct wire_dir a, b, rx;
	static uint8_t pk[1500], x[2048], y[2048], out[2048];
	static const size_t pads[] = { 0, 1, 15, 16, 63, 64, 65, 200 };
	ssize_t n, m;

	(void)state;
	for (size_t i = 0; i < sizeof(pk); i++)
		pk[i] = (uint8_t)(i * 7 + 3);
	fixture_init(&f);
	assert_int_equal(wire_dir_init(&a, &f.ks.c2s, 0), 0);
	assert_int_equal(wire_dir_init(&b, &f.ks.c2s, 0), 0);
	assert_int_equal(wire_dir_init(&rx, &f.ks.c2s, 0), 0);
	for (size_t len = 1; len <= 1400; len += 61) {
		for (size_t i = 0; i < sizeof(pads) / sizeof(pads[0]); i++) {
			memset(x, 0xee, sizeof(x));
			memset(y, 0xdd, sizeof(y));
			n = wire_seal_packet(&a, pk, len, pads[i], x);
			memcpy(y + 8, pk, len);
			m = wire_seal_packet(&b, y + 8, len, pads[i], y);
			assert_int_equal(n, (ssize_t)(len + pads[i] + WIRE_DATA_OVERHEAD));
			assert_int_equal(m, n);
			assert_memory_equal(x, y, (size_t)n);
			assert_int_equal(wire_open_packet(&rx, x, (size_t)n, out), (ssize_t)len);
			assert_memory_equal(out, pk, len);
		}
	}
	wire_dir_clear(&a);
	wire_dir_clear(&b);
	wire_dir_clear(&rx);
}

/* ------------------------------------------------------------------------ */
/* The HELLO's MAC: the server's first, cheap check.                        */

static void test_hello_mac(void **state)
{
	struct fixture f;
	struct wire_cert c;
	struct hs_client st;
	struct hs_server s;
	uint8_t mk[32], other[32], p[HS_MAX + 1], full[32];
	int n;

	fixture_init(&f);
	assert_int_equal(hs_mac_key(&f.id.cert, mk), 0);
	/* good */
	assert_int_equal(hs_hello_mac_ok(mk, f.hello, f.hello_len), 1);
	/* the MAC is MAC16(k_mac, body): the document's formula */
	assert_int_equal(wc_hmac_sha256(mk, 32, f.hello, f.hello_len - WIRE_MAC_LEN, full), 0);
	assert_memory_equal(full, f.hello + f.hello_len - WIRE_MAC_LEN, WIRE_MAC_LEN);
	/* bad: any bit flipped, in the body or in the MAC */
	for (size_t i = 0; i < f.hello_len; i++) {
		memcpy(p, f.hello, f.hello_len);
		p[i] ^= (uint8_t)(1 << (i % 8));
		if (hs_hello_mac_ok(mk, p, f.hello_len))
			fail_msg("MAC check passed with byte %zu changed", i);
	}
	/* truncated, extended, and outside 88..1400 */
	for (size_t len = 0; len < f.hello_len; len++)
		assert_int_equal(hs_hello_mac_ok(mk, f.hello, len), 0);
	memcpy(p, f.hello, f.hello_len);
	p[f.hello_len] = 0;
	assert_int_equal(hs_hello_mac_ok(mk, p, f.hello_len + 1), 0);
	/* a body with a valid MAC over it, but shorter than a HELLO */
	assert_int_equal(wc_hmac_sha256(mk, 32, f.hello, HS_HELLO_MIN - 1 - WIRE_MAC_LEN, full), 0);
	memcpy(p, f.hello, HS_HELLO_MIN - 1 - WIRE_MAC_LEN);
	memcpy(p + HS_HELLO_MIN - 1 - WIRE_MAC_LEN, full, WIRE_MAC_LEN);
	assert_int_equal(hs_hello_mac_ok(mk, p, HS_HELLO_MIN - 1), 0);
	/* the largest HELLO passes, one byte more never does */
	n = hs_client_hello(&f.id.cert, &st, f.in.epriv, f.in.rc, MINUTES, NULL, 0, p);
	assert_int_equal(n, HS_HELLO_MIN);
	assert_int_equal(hs_hello_mac_ok(mk, p, (size_t)n), 1);
	{
		static uint8_t zpad[HS_MAX];

		n = hs_client_hello(&f.id.cert, &st, f.in.epriv, f.in.rc, MINUTES, zpad,
		                    HS_MAX - HS_HELLO_MIN, p);
		assert_int_equal(n, HS_MAX);
		assert_int_equal(hs_hello_mac_ok(mk, p, HS_MAX), 1);
		assert_int_equal(wc_hmac_sha256(mk, 32, p, HS_MAX + 1 - WIRE_MAC_LEN, full), 0);
		memcpy(p + HS_MAX + 1 - WIRE_MAC_LEN, full, WIRE_MAC_LEN);
		assert_int_equal(hs_hello_mac_ok(mk, p, HS_MAX + 1), 0);
	}
	/* wrong key: another secret, another server key, or the other key altogether */
	c = f.id.cert;
	c.secret[3] ^= 1;
	assert_int_equal(hs_mac_key(&c, other), 0);
	assert_memory_not_equal(other, mk, 32);
	assert_int_equal(hs_hello_mac_ok(other, f.hello, f.hello_len), 0);
	c = f.id.cert;
	c.pub[31] ^= 1;
	assert_int_equal(hs_mac_key(&c, other), 0);
	assert_int_equal(hs_hello_mac_ok(other, f.hello, f.hello_len), 0);
	/* a HELLO built for another cert fails the check (and the parse) */
	n = hs_client_hello(&c, &st, f.in.epriv, f.in.rc, MINUTES, NULL, 0, p);
	assert_int_equal(n, HS_HELLO_MIN);
	assert_int_equal(hs_hello_mac_ok(mk, p, (size_t)n), 0);
	assert_int_equal(hs_hello_mac_ok(other, p, (size_t)n), 1);
	assert_int_equal(hs_server_parse(&f.id, p, (size_t)n, &s), -1);
	/*
	 * The version 1 HELLO of the same fixed inputs (docs/PROTOCOL.md before
	 * version 2), what an old client sends: refused, so the server is silent.
	 */
	{
		static const char v1[] =
			"606162636465666768696a6b6c6d6e6fc96fdf3f2dca525fe0e124b8ca7b776a"
			"da614d861e468a33f3ba7024c4400c20e872adbe323c27a4c6837e3eeffd214d"
			"b038b66ca9a3f5b8e143edd37d";
		uint8_t old[sizeof(v1) / 2];

		for (size_t i = 0; i < sizeof(old); i++) {
			unsigned int b;

			assert_int_equal(sscanf(v1 + 2 * i, "%2x", &b), 1);
			old[i] = (uint8_t)b;
		}
		assert_int_equal(sizeof(old), 72 + HELLO_PAD);
		assert_int_equal(hs_hello_mac_ok(mk, old, sizeof(old)), 0);
		assert_int_equal(hs_server_parse(&f.id, old, sizeof(old), &s), -1);
	}
	/* a version 2 HELLO without its MAC (the body, ending in its AEAD tag) is refused */
	assert_int_equal(hs_hello_mac_ok(mk, f.hello, f.hello_len - WIRE_MAC_LEN), 0);
	assert_int_equal(hs_server_parse(&f.id, f.hello, f.hello_len - WIRE_MAC_LEN, &s), -1);
	/* random datagrams of every HELLO length */
	for (size_t len = HS_HELLO_MIN; len <= HS_MAX; len += 13) {
		assert_int_equal(wc_random(p, len), 0);
		assert_int_equal(hs_hello_mac_ok(mk, p, len), 0);
	}
	/* the server's reusable context decides exactly as the one-shot check */
	{
		struct wc_hmac *h = wc_hmac_new(mk, sizeof(mk));
		struct wc_hmac *h2 = wc_hmac_new(other, sizeof(other));

		assert_non_null(h);
		assert_non_null(h2);
		for (int round = 0; round < 3; round++) {
			assert_int_equal(hs_hello_mac_ok_ctx(h, f.hello, f.hello_len), 1);
			assert_int_equal(hs_hello_mac_ok_ctx(h2, f.hello, f.hello_len), 0);
			assert_int_equal(hs_hello_mac_ok_ctx(h, f.hello, f.hello_len - 1), 0);
			assert_int_equal(hs_hello_mac_ok_ctx(h, f.hello, 0), 0);
		}
		for (size_t len = 0; len <= HS_MAX + 1; len += 7) {
			assert_int_equal(wc_random(p, len), 0);
			assert_int_equal(hs_hello_mac_ok_ctx(h, p, len), 0);
		}
		n = hs_client_hello(&c, &st, f.in.epriv, f.in.rc, MINUTES, NULL, 0, p);
		assert_int_equal(hs_hello_mac_ok_ctx(h2, p, (size_t)n), 1);
		assert_int_equal(hs_hello_mac_ok_ctx(h, p, (size_t)n), 0);
		assert_int_equal(hs_hello_mac_ok_ctx(h, f.hello, f.hello_len), 1);
		wc_hmac_free(h);
		wc_hmac_free(h2);
		wc_hmac_free(NULL);
	}
}

/*
 * A valid body whose MAC is right but whose AEAD is not: passes the cheap
 * check, fails the parse (the MAC is no authentication of the contents).
 */
static void test_hello_mac_then_aead(void **state)
{
	struct fixture f;
	struct hs_server s;
	uint8_t mk[32], p[HS_MAX], full[32];

	fixture_init(&f);
	assert_int_equal(hs_mac_key(&f.id.cert, mk), 0);
	memcpy(p, f.hello, f.hello_len);
	p[60] ^= 0x01;   /* inside the AEAD ciphertext */
	assert_int_equal(wc_hmac_sha256(mk, 32, p, f.hello_len - WIRE_MAC_LEN, full), 0);
	memcpy(p + f.hello_len - WIRE_MAC_LEN, full, WIRE_MAC_LEN);
	assert_int_equal(hs_hello_mac_ok(mk, p, f.hello_len), 1);
	assert_int_equal(hs_server_parse(&f.id, p, f.hello_len, &s), -1);
}

/*
 * SCTPT_WIRE_BENCH=N: time N rounds of what the server does per candidate
 * HELLO and print the rates (one core): the MAC check on junk (version 2's
 * cost of a junk datagram), the full parse of a valid HELLO (an X25519,
 * version 1's cost of every junk datagram), and parse + REPLY (a handshake).
 */
static double bench_secs(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void test_wire_bench(void **state)
{
	const char *env = getenv("SCTPT_WIRE_BENCH");
	unsigned rounds = env != NULL ? (unsigned)atoi(env) : 200;
	struct fixture f;
	struct hs_server s;
	struct wire_session_keys k;
	uint8_t mk[32], junk[4][HS_MAX], reply[HS_MAX];
	struct timespec t0, t1;
	struct wc_hmac *hm;
	unsigned ok = 0;
	double a, b, c;

	if (rounds == 0)
		rounds = 1;
	fixture_init(&f);
	assert_int_equal(hs_mac_key(&f.id.cert, mk), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(wc_random(junk[i], sizeof(junk[i])), 0);
	/* junk of 88..1400 bytes (the mean of 4 lengths), through the server's context */
	hm = wc_hmac_new(mk, sizeof(mk));
	assert_non_null(hm);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < rounds * 10; i++) {
		static const size_t lens[4] = { 88, 500, 972, 1400 };

		ok += (unsigned)hs_hello_mac_ok_ctx(hm, junk[i % 4], lens[i % 4]);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	wc_hmac_free(hm);
	a = rounds * 10 / bench_secs(&t0, &t1);
	assert_int_equal(ok, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < rounds; i++)
		assert_int_equal(hs_server_parse(&f.id, f.hello, f.hello_len, &s), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	b = rounds / bench_secs(&t0, &t1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < rounds; i++) {
		assert_int_equal(hs_server_parse(&f.id, f.hello, f.hello_len, &s), 0);
		assert_true(hs_server_reply(&f.id, &s, f.in.fpriv, f.in.rs, NULL, 0, f.hello,
		                            f.hello_len, reply, &k) > 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	c = rounds / bench_secs(&t0, &t1);
	if (env != NULL)
		printf("wire bench (one core): junk refused by the MAC %.0f/s; "
		       "HELLOs verified (X25519) %.0f/s; handshakes (verify + REPLY) %.0f/s\n",
		       a, b, c);
}

/*
 * SCTPT_WIRE_BENCH=N also times the data path: N runs of 100 packets of
 * 1400 bytes sealed in place (wire_seal_packet with pkt inside out) and
 * opened in place, printed as the best run's ns per packet.  The opened
 * packet must equal the sealed one, so a fast but wrong path fails here.
 */
static void test_wire_bench_datapath(void **state)
{
	const char *env = getenv("SCTPT_WIRE_BENCH");
	unsigned rounds = env != NULL ? (unsigned)atoi(env) : 10;
	struct fixture f;
	struct wire_dir tx, rx;
	static uint8_t pkt[1400], dg[100][1400 + WIRE_DATA_OVERHEAD];
	struct timespec t0, t1;
	double seal_ns = 1e18, open_ns = 1e18, copy_ns = 1e18, t;

	if (rounds == 0)
		rounds = 1;
	fixture_init(&f);
	assert_int_equal(wc_random(pkt, sizeof(pkt)), 0);
	assert_int_equal(wire_dir_init(&tx, &f.ks.c2s, 0), 0);
	assert_int_equal(wire_dir_init(&rx, &f.ks.c2s, 0), 0);
	/* The best of `rounds` runs of 100 packets: robust on a shared machine. */
	for (unsigned r = 0; r < rounds; r++) {
		ssize_t len[100];
		const uint8_t *p;

		for (int i = 0; i < 100; i++)
			memcpy(dg[i] + 8, pkt, sizeof(pkt));   /* as the layer above builds it */
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int i = 0; i < 100; i++)
			len[i] = wire_seal_packet(&tx, dg[i] + 8, sizeof(pkt), 0, dg[i]);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		t = bench_secs(&t0, &t1) * 1e7;
		seal_ns = t < seal_ns ? t : seal_ns;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int i = 0; i < 100; i++)
			len[i] = wire_open_packet_inplace(&rx, dg[i], (size_t)len[i], &p);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		t = bench_secs(&t0, &t1) * 1e7;
		open_ns = t < open_ns ? t : open_ns;
		for (int i = 0; i < 100; i++) {
			assert_int_equal(len[i], (ssize_t)sizeof(pkt));
			assert_memory_equal(dg[i] + 8, pkt, sizeof(pkt));
		}
		/* As the SCTP engine sends: from its own buffer into the slot. */
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int i = 0; i < 100; i++)
			len[i] = wire_seal_packet(&tx, pkt, sizeof(pkt), 0, dg[i]);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		t = bench_secs(&t0, &t1) * 1e7;
		copy_ns = t < copy_ns ? t : copy_ns;
		for (int i = 0; i < 100; i++)
			assert_int_equal(wire_open_packet_inplace(&rx, dg[i], (size_t)len[i], &p),
			                 (ssize_t)sizeof(pkt));
	}
	wire_dir_clear(&tx);
	wire_dir_clear(&rx);
	if (env != NULL)
		printf("wire bench (one core): 1400-byte packets, seal %.0f ns in place, %.0f ns "
		       "from another buffer, open %.0f ns (best of %u runs of 100)\n",
		       seal_ns, copy_ns, open_ns, rounds);
}

/* issue 16: a duplicate is known authentic without being accepted again. */
static void test_duplicate_authentic(void **state)
{
	struct fixture f;
	struct wire_dir tx, rx;
	uint8_t dg[3][256], out[256];
	ssize_t n[3];

	(void)state;
	fixture_init(&f);
	assert_int_equal(wire_dir_init(&tx, &f.ks.c2s, 0), 0);
	assert_int_equal(wire_dir_init(&rx, &f.ks.c2s, 0), 0);
	for (int i = 0; i < 3; i++)
		n[i] = wire_seal_packet(&tx, f.in.sctp, SCTP_LEN, 0, dg[i]);
	/* not yet accepted: not "authentic" in this sense (it says nothing of the past) */
	assert_int_equal(wire_packet_authentic(&rx, dg[0], (size_t)n[0], out), 0);
	assert_true(wire_open_packet(&rx, dg[0], (size_t)n[0], out) >= 0);
	assert_int_equal(wire_open_packet(&rx, dg[0], (size_t)n[0], out), WIRE_REPLAY);
	assert_int_equal(wire_packet_authentic(&rx, dg[0], (size_t)n[0], out), 1);
	/* a forged copy with the same number is not */
	dg[0][20] ^= 1;
	assert_int_equal(wire_open_packet(&rx, dg[0], (size_t)n[0], out), WIRE_REPLAY);
	assert_int_equal(wire_packet_authentic(&rx, dg[0], (size_t)n[0], out), 0);
	/* nothing changed: the next packets still open */
	assert_true(wire_open_packet(&rx, dg[2], (size_t)n[2], out) >= 0);
	assert_true(wire_open_packet(&rx, dg[1], (size_t)n[1], out) >= 0);
	wire_dir_clear(&tx);
	wire_dir_clear(&rx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_match_document),
		cmocka_unit_test(test_hello_mac),
		cmocka_unit_test(test_hello_mac_then_aead),
		cmocka_unit_test(test_wire_bench),
		cmocka_unit_test(test_wire_bench_datapath),
		cmocka_unit_test(test_vectors_follow_formulas),
		cmocka_unit_test(test_vector_packets_follow_formulas),
		cmocka_unit_test(test_vector_packets_open),
		cmocka_unit_test(test_session_keys),
		cmocka_unit_test(test_hello_every_bit_flip_rejected),
		cmocka_unit_test(test_reply_every_bit_flip_rejected),
		cmocka_unit_test(test_handshake_truncated_or_extended),
		cmocka_unit_test(test_packet_every_bit_flip_rejected),
		cmocka_unit_test(test_packet_truncated_or_extended),
		cmocka_unit_test(test_packet_bad_padlen_rejected),
		cmocka_unit_test(test_packet_replay),
		cmocka_unit_test(test_packet_replay_window_edges),
		cmocka_unit_test(test_hello_replay_parses_at_hs_layer),
		cmocka_unit_test(test_epochs_in_order),
		cmocka_unit_test(test_epochs_shuffled_both_directions),
		cmocka_unit_test(test_epochs_late_and_early),
		cmocka_unit_test(test_seq_limit),
		cmocka_unit_test(test_hello_for_other_cert_rejected),
		cmocka_unit_test(test_reply_to_other_hello_rejected),
		cmocka_unit_test(test_reflections_rejected),
		cmocka_unit_test(test_cert_round_trip),
		cmocka_unit_test(test_cert_encode_buffer),
		cmocka_unit_test(test_cert_decode_rejects),
		cmocka_unit_test(test_cert_decode_padding),
		cmocka_unit_test(test_hello_lengths),
		cmocka_unit_test(test_hello_oversized_datagram),
		cmocka_unit_test(test_reply_lengths),
		cmocka_unit_test(test_packet_lengths),
		cmocka_unit_test(test_duplicate_authentic),
		cmocka_unit_test(test_packet_seal_in_place_or_not),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
