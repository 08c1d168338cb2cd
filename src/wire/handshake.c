/*
 * Wire handshake; see handshake.h and docs/PROTOCOL.md for the exact
 * derivations.  Every label is prefixed "sctpt-v2 " so keys from different
 * purposes, or from version 1 of the protocol, can never coincide.
 */
#include "wire/handshake.h"

#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util/bytes.h"

#define LABEL_PREFIX "sctpt-v2 "
#define LABEL(s) (const uint8_t *)(LABEL_PREFIX s), sizeof(LABEL_PREFIX s) - 1

static const uint8_t zero_nonce[WC_NONCE_LEN];

int wire_identity_from_priv(struct wire_identity *id, const uint8_t priv[WC_KEY_LEN],
                            const uint8_t secret[WIRE_SECRET_LEN])
{
	memcpy(id->priv, priv, WC_KEY_LEN);
	memcpy(id->cert.secret, secret, WIRE_SECRET_LEN);
	return wc_x25519_public(id->priv, id->cert.pub);
}

int wire_identity_generate(struct wire_identity *id)
{
	uint8_t priv[WC_KEY_LEN], secret[WIRE_SECRET_LEN];
	int r;

	if (wc_random(priv, sizeof(priv)) < 0 || wc_random(secret, sizeof(secret)) < 0)
		return -1;
	r = wire_identity_from_priv(id, priv, secret);
	wc_wipe(priv, sizeof(priv));
	return r;
}

int wire_cert_encode(const struct wire_cert *c, char *out, size_t outlen)
{
	uint8_t raw[WIRE_CERT_LEN];
	char tmp[WIRE_CERT_B64_MAX];
	int n;

	memcpy(raw, c->pub, WC_PUB_LEN);
	memcpy(raw + WC_PUB_LEN, c->secret, WIRE_SECRET_LEN);
	n = EVP_EncodeBlock((unsigned char *)tmp, raw, sizeof(raw));
	while (n > 0 && tmp[n - 1] == '=')
		n--;
	if (n <= 0 || (size_t)n + 1 > outlen)
		return -1;
	memcpy(out, tmp, (size_t)n);
	out[n] = '\0';
	return n;
}

int wire_cert_decode(const char *s, struct wire_cert *out)
{
	char tmp[WIRE_CERT_B64_MAX];
	uint8_t raw[WIRE_CERT_B64_MAX];
	size_t n = strlen(s);
	int len;

	/* 48 bytes are 64 base64 characters; accept with or without padding. */
	if (n != 64 && !(n == 66 && s[64] == '=' && s[65] == '='))
		return -1;
	memcpy(tmp, s, 64);
	for (size_t i = 0; i < 64; i++) {
		char ch = tmp[i];

		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
			return -1;
	}
	len = EVP_DecodeBlock(raw, (const unsigned char *)tmp, 64);
	if (len != WIRE_CERT_LEN)
		return -1;
	memcpy(out->pub, raw, WC_PUB_LEN);
	memcpy(out->secret, raw + WC_PUB_LEN, WIRE_SECRET_LEN);
	return 0;
}

/* mask = HKDF(salt = R, ikm = K, info) -> 32 bytes */
static int derive_mask(const uint8_t secret[WIRE_SECRET_LEN], const uint8_t r[WIRE_RAND_LEN],
                       const uint8_t *info, size_t infolen, uint8_t mask[WC_PUB_LEN])
{
	return wc_hkdf(r, WIRE_RAND_LEN, secret, WIRE_SECRET_LEN, info, infolen, mask, WC_PUB_LEN);
}

static int hello_key(const uint8_t dh1[WC_KEY_LEN], const uint8_t secret[WIRE_SECRET_LEN],
                     const uint8_t r[WIRE_RAND_LEN], uint8_t key[WC_KEY_LEN])
{
	uint8_t ikm[WC_KEY_LEN + WIRE_SECRET_LEN];
	int rc;

	memcpy(ikm, dh1, WC_KEY_LEN);
	memcpy(ikm + WC_KEY_LEN, secret, WIRE_SECRET_LEN);
	rc = wc_hkdf(r, WIRE_RAND_LEN, ikm, sizeof(ikm), LABEL("hello key"), key, WC_KEY_LEN);
	wc_wipe(ikm, sizeof(ikm));
	return rc;
}

/* key = HKDF(salt = empty, ikm = K, info = label | S) */
static int mac_key_labelled(const struct wire_cert *cert, const char *label, size_t llen,
                            uint8_t key[WC_KEY_LEN])
{
	uint8_t info[64 + WC_PUB_LEN];

	if (llen > 64)
		return -1;
	memcpy(info, label, llen);
	memcpy(info + llen, cert->pub, WC_PUB_LEN);
	return wc_hkdf(NULL, 0, cert->secret, WIRE_SECRET_LEN, info, llen + WC_PUB_LEN, key,
	               WC_KEY_LEN);
}

/* mac_key = HKDF(salt = empty, ikm = K, info = "sctpt-v2 hello mac" | S) */
int hs_mac_key(const struct wire_cert *cert, uint8_t key[WC_KEY_LEN])
{
	static const char label[] = LABEL_PREFIX "hello mac";

	return mac_key_labelled(cert, label, sizeof(label) - 1, key);
}

/* The prefixed form's key: "sctpt-v2 hello mac prefixed" | S. */
int hs_mac_key_prefixed(const struct wire_cert *cert, uint8_t key[WC_KEY_LEN])
{
	static const char label[] = LABEL_PREFIX "hello mac prefixed";

	return mac_key_labelled(cert, label, sizeof(label) - 1, key);
}

/* MAC = the first 16 bytes of HMAC-SHA256(mac_key, everything before it). */
static int hello_mac(const uint8_t mac_key[WC_KEY_LEN], const uint8_t *p, size_t n,
                     uint8_t mac[WIRE_MAC_LEN])
{
	uint8_t full[WC_HASH_LEN];

	if (wc_hmac_sha256(mac_key, WC_KEY_LEN, p, n, full) < 0)
		return -1;
	memcpy(mac, full, WIRE_MAC_LEN);
	return 0;
}

int hs_hello_mac_ok(const uint8_t mac_key[WC_KEY_LEN], const uint8_t *p, size_t n)
{
	uint8_t mac[WIRE_MAC_LEN];

	if (n < HS_HELLO_MIN || n > HS_MAX)
		return 0;
	if (hello_mac(mac_key, p, n - WIRE_MAC_LEN, mac) < 0)
		return 0;
	return CRYPTO_memcmp(mac, p + n - WIRE_MAC_LEN, WIRE_MAC_LEN) == 0;
}

int hs_hello_mac_ok_ctx(struct wc_hmac *mac, const uint8_t *p, size_t n)
{
	uint8_t full[WC_HASH_LEN];

	if (n < HS_HELLO_MIN || n > HS_MAX)
		return 0;
	if (wc_hmac_get(mac, p, n - WIRE_MAC_LEN, full) < 0)
		return 0;
	return CRYPTO_memcmp(full, p + n - WIRE_MAC_LEN, WIRE_MAC_LEN) == 0;
}

/*
 * R_c | (E ^ mask_c) | AEAD(k_hello, T | pad) into out: HELLO_BODY_MIN +
 * padlen bytes, the HELLO without its MAC.  st gets the keys.
 */
#define HELLO_BODY_MIN (HS_HELLO_MIN - WIRE_MAC_LEN)
static int hello_body(const struct wire_cert *cert, struct hs_client *st,
                      const uint8_t e_priv[WC_KEY_LEN], const uint8_t r[WIRE_RAND_LEN],
                      uint64_t minutes, const uint8_t *pad, size_t padlen, uint8_t *out)
{
	uint8_t mask[WC_PUB_LEN], key[WC_KEY_LEN], pt[HS_MAX];
	int rc = -1;

	memcpy(st->e_priv, e_priv, WC_KEY_LEN);
	if (wc_x25519_public(e_priv, st->e_pub) < 0 ||
	    wc_x25519(e_priv, cert->pub, st->dh1) < 0 ||
	    derive_mask(cert->secret, r, LABEL("hello mask"), mask) < 0 ||
	    hello_key(st->dh1, cert->secret, r, key) < 0)
		goto out;
	memcpy(out, r, WIRE_RAND_LEN);
	for (size_t i = 0; i < WC_PUB_LEN; i++)
		out[WIRE_RAND_LEN + i] = st->e_pub[i] ^ mask[i];
	put_u32be(pt, (uint32_t)(minutes >> 32));
	put_u32be(pt + 4, (uint32_t)minutes);
	if (padlen > 0)
		memcpy(pt + 8, pad, padlen);
	if (wc_aead_seal(key, zero_nonce, out, WIRE_RAND_LEN + WC_PUB_LEN, pt, 8 + padlen,
	                 out + WIRE_RAND_LEN + WC_PUB_LEN) < 0)
		goto out;
	rc = 0;
out:
	wc_wipe(key, sizeof(key));
	return rc;
}

int hs_client_hello(const struct wire_cert *cert, struct hs_client *st,
                    const uint8_t e_priv[WC_KEY_LEN], const uint8_t r[WIRE_RAND_LEN],
                    uint64_t minutes, const uint8_t *pad, size_t padlen, uint8_t *out)
{
	return hs_client_hello_prefixed(cert, st, e_priv, r, minutes, NULL, 0, pad, padlen, out);
}

/* The keyed mask of the prefixed form's length byte, from its MAC. */
static int prefix_len_mask(struct wc_hmac *mac_p, const uint8_t mac[WIRE_MAC_LEN], uint8_t *m)
{
	uint8_t full[WC_HASH_LEN];

	if (wc_hmac_get(mac_p, mac, WIRE_MAC_LEN, full) < 0)
		return -1;
	*m = full[0];
	return 0;
}

int hs_client_hello_prefixed(const struct wire_cert *cert, struct hs_client *st,
                             const uint8_t e_priv[WC_KEY_LEN], const uint8_t r[WIRE_RAND_LEN],
                             uint64_t minutes, const uint8_t *prefix, size_t plen,
                             const uint8_t *pad, size_t padlen, uint8_t *out)
{
	uint8_t mac_key[WC_KEY_LEN], full[WC_HASH_LEN], m;
	struct wc_hmac *mac_p = NULL;
	size_t n;
	int rc = -1;

	if (plen > HS_PREFIX_MAX || padlen > HS_MAX - HS_HELLO_MIN - (plen > 0 ? plen + 1 : 0))
		return -1;   /* also keeps n from wrapping */
	if (plen == 0) {
		n = HS_HELLO_MIN + padlen;
		if (hello_body(cert, st, e_priv, r, minutes, pad, padlen, out) < 0 ||
		    hs_mac_key(cert, mac_key) < 0 ||
		    hello_mac(mac_key, out, n - WIRE_MAC_LEN, out + n - WIRE_MAC_LEN) < 0)
			goto out;
	} else {
		/* prefix | body | L | MAC over all that, then L masked in place */
		n = plen + HELLO_BODY_MIN + padlen + 1 + WIRE_MAC_LEN;
		memcpy(out, prefix, plen);
		if (hello_body(cert, st, e_priv, r, minutes, pad, padlen, out + plen) < 0 ||
		    hs_mac_key_prefixed(cert, mac_key) < 0 ||
		    (mac_p = wc_hmac_new(mac_key, sizeof(mac_key))) == NULL)
			goto out;
		out[n - WIRE_MAC_LEN - 1] = (uint8_t)plen;
		if (wc_hmac_get(mac_p, out, n - WIRE_MAC_LEN, full) < 0)
			goto out;
		memcpy(out + n - WIRE_MAC_LEN, full, WIRE_MAC_LEN);
		if (prefix_len_mask(mac_p, out + n - WIRE_MAC_LEN, &m) < 0)
			goto out;
		out[n - WIRE_MAC_LEN - 1] ^= m;
	}
	memcpy(st->hello, out, n);
	st->hello_len = n;
	rc = (int)n;
out:
	wc_hmac_free(mac_p);
	wc_wipe(mac_key, sizeof(mac_key));
	return rc;
}

int hs_hello_locate(struct wc_hmac *mac, struct wc_hmac *mac_p, const uint8_t *p, size_t n,
                    size_t *off, size_t *blen)
{
	uint8_t buf[HS_MAX], full[WC_HASH_LEN], m;
	size_t plen;

	if (n < HS_HELLO_MIN || n > HS_MAX)
		return 0;
	if (hs_hello_mac_ok_ctx(mac, p, n)) {
		*off = 0;
		*blen = n - WIRE_MAC_LEN;
		return 1;
	}
	if (mac_p == NULL || n < HS_HELLO_MIN + 2 ||
	    prefix_len_mask(mac_p, p + n - WIRE_MAC_LEN, &m) < 0)
		return 0;
	plen = p[n - WIRE_MAC_LEN - 1] ^ m;
	if (plen == 0 || plen > HS_PREFIX_MAX || n < plen + HS_HELLO_MIN + 1)
		return 0;
	memcpy(buf, p, n - WIRE_MAC_LEN - 1);
	buf[n - WIRE_MAC_LEN - 1] = (uint8_t)plen;
	if (wc_hmac_get(mac_p, buf, n - WIRE_MAC_LEN, full) < 0 ||
	    CRYPTO_memcmp(full, p + n - WIRE_MAC_LEN, WIRE_MAC_LEN) != 0)
		return 0;
	*off = plen;
	*blen = n - plen - 1 - WIRE_MAC_LEN;
	return 1;
}

int hs_hello_replay_hash(struct wc_hmac *mac, const uint8_t *p, size_t n, size_t off,
                         size_t blen, uint8_t out[WC_HASH_LEN])
{
	uint8_t plain[HS_MAX], full[WC_HASH_LEN];

	if (n > HS_MAX || off > n || blen > n - off || blen + WIRE_MAC_LEN > HS_MAX)
		return -1;
	if (off == 0 && blen + WIRE_MAC_LEN == n) {
		wc_sha256(p, n, out);           /* the plain form itself */
		return 0;
	}
	memcpy(plain, p + off, blen);
	if (wc_hmac_get(mac, plain, blen, full) < 0)
		return -1;
	memcpy(plain + blen, full, WIRE_MAC_LEN);
	wc_sha256(plain, blen + WIRE_MAC_LEN, out);
	return 0;
}

int hs_server_parse_body(const struct wire_identity *id, const uint8_t *p, size_t n,
                         size_t off, size_t blen, struct hs_server *out)
{
	uint8_t mask[WC_PUB_LEN], key[WC_KEY_LEN], pt[HS_MAX];
	const uint8_t *b = p + off;
	int rc = -1;

	if (n > HS_MAX || blen < HELLO_BODY_MIN || off > n || blen > n - off)
		return -1;
	if (derive_mask(id->cert.secret, b, LABEL("hello mask"), mask) < 0)
		return -1;
	for (size_t i = 0; i < WC_PUB_LEN; i++)
		out->e_pub[i] = b[WIRE_RAND_LEN + i] ^ mask[i];
	if (wc_x25519(id->priv, out->e_pub, out->dh1) < 0 ||
	    hello_key(out->dh1, id->cert.secret, b, key) < 0)
		goto out;
	if (wc_aead_open(key, zero_nonce, b, WIRE_RAND_LEN + WC_PUB_LEN,
	                 b + WIRE_RAND_LEN + WC_PUB_LEN, blen - WIRE_RAND_LEN - WC_PUB_LEN, pt) < 0)
		goto out;
	out->minutes = (uint64_t)get_u32be(pt) << 32 | get_u32be(pt + 4);
	/* The whole datagram, prefix included, goes into the keys. */
	wc_sha256(p, n, out->hello_hash);
	{
		uint8_t mk[WC_KEY_LEN];
		struct wc_hmac *mac = NULL;

		if (hs_mac_key(&id->cert, mk) == 0)
			mac = wc_hmac_new(mk, sizeof(mk));
		wc_wipe(mk, sizeof(mk));
		rc = mac != NULL && hs_hello_replay_hash(mac, p, n, off, blen, out->replay_hash) == 0
		     ? 0 : -1;
		wc_hmac_free(mac);
	}
out:
	wc_wipe(key, sizeof(key));
	return rc;
}

int hs_server_parse(const struct wire_identity *id, const uint8_t *p, size_t n,
                    struct hs_server *out)
{
	uint8_t key[WC_KEY_LEN], key_p[WC_KEY_LEN];
	struct wc_hmac *mac = NULL, *mac_p = NULL;
	size_t off, blen;
	int ok = 0;

	if (n < HS_HELLO_MIN || n > HS_MAX)
		return -1;
	if (hs_mac_key(&id->cert, key) == 0 && hs_mac_key_prefixed(&id->cert, key_p) == 0 &&
	    (mac = wc_hmac_new(key, sizeof(key))) != NULL &&
	    (mac_p = wc_hmac_new(key_p, sizeof(key_p))) != NULL)
		ok = hs_hello_locate(mac, mac_p, p, n, &off, &blen);
	wc_hmac_free(mac);
	wc_hmac_free(mac_p);
	wc_wipe(key, sizeof(key));
	wc_wipe(key_p, sizeof(key_p));
	if (!ok)
		return -1;
	return hs_server_parse_body(id, p, n, off, blen, out);
}

/* The shared input of every later key: dh1 | dh2 | K. */
static void session_ikm(const uint8_t dh1[WC_KEY_LEN], const uint8_t dh2[WC_KEY_LEN],
                        const uint8_t secret[WIRE_SECRET_LEN], uint8_t ikm[80])
{
	memcpy(ikm, dh1, WC_KEY_LEN);
	memcpy(ikm + WC_KEY_LEN, dh2, WC_KEY_LEN);
	memcpy(ikm + 2 * WC_KEY_LEN, secret, WIRE_SECRET_LEN);
}

static int reply_key(const uint8_t ikm[80], const uint8_t hello_hash[WC_HASH_LEN],
                     const uint8_t r[WIRE_RAND_LEN], uint8_t key[WC_KEY_LEN])
{
	uint8_t salt[WC_HASH_LEN + WIRE_RAND_LEN];

	memcpy(salt, hello_hash, WC_HASH_LEN);
	memcpy(salt + WC_HASH_LEN, r, WIRE_RAND_LEN);
	return wc_hkdf(salt, sizeof(salt), ikm, 80, LABEL("reply key"), key, WC_KEY_LEN);
}

static int derive_dir(const uint8_t ikm[80], const uint8_t tr[WC_HASH_LEN],
                      const uint8_t *k, size_t kl, const uint8_t *iv, size_t ivl,
                      const uint8_t *hp, size_t hpl, struct wire_dir_keys *d)
{
	return wc_hkdf(tr, WC_HASH_LEN, ikm, 80, k, kl, d->key, WC_KEY_LEN) < 0 ||
	       wc_hkdf(tr, WC_HASH_LEN, ikm, 80, iv, ivl, d->iv, WC_NONCE_LEN) < 0 ||
	       wc_hkdf(tr, WC_HASH_LEN, ikm, 80, hp, hpl, d->hp, WC_KEY_LEN) < 0 ? -1 : 0;
}

/* tr = SHA-256(HELLO | REPLY); traffic keys = HKDF(salt = tr, ikm, label). */
static int session_keys(const uint8_t ikm[80], const uint8_t *hello, size_t hello_len,
                        const uint8_t *reply, size_t reply_len, struct wire_session_keys *keys)
{
	uint8_t both[2 * HS_MAX], tr[WC_HASH_LEN];

	if (hello_len > HS_MAX || reply_len > HS_MAX)
		return -1;
	memcpy(both, hello, hello_len);
	memcpy(both + hello_len, reply, reply_len);
	wc_sha256(both, hello_len + reply_len, tr);
	if (derive_dir(ikm, tr, LABEL("c2s key"), LABEL("c2s iv"), LABEL("c2s hp"), &keys->c2s) < 0 ||
	    derive_dir(ikm, tr, LABEL("s2c key"), LABEL("s2c iv"), LABEL("s2c hp"), &keys->s2c) < 0)
		return -1;
	return 0;
}

int hs_server_reply(const struct wire_identity *id, const struct hs_server *hs,
                    const uint8_t f_priv[WC_KEY_LEN], const uint8_t r[WIRE_RAND_LEN],
                    const uint8_t *pad, size_t padlen, const uint8_t *hello,
                    size_t hello_len, uint8_t *out, struct wire_session_keys *keys)
{
	uint8_t f_pub[WC_PUB_LEN], dh2[WC_KEY_LEN], mask[WC_PUB_LEN], key[WC_KEY_LEN], ikm[80];
	size_t n = HS_REPLY_MIN + padlen;
	int rc = -1;

	if (padlen > HS_MAX - HS_REPLY_MIN)   /* also keeps n from wrapping */
		return -1;
	if (wc_x25519_public(f_priv, f_pub) < 0 || wc_x25519(f_priv, hs->e_pub, dh2) < 0 ||
	    derive_mask(id->cert.secret, r, LABEL("reply mask"), mask) < 0)
		goto out;
	session_ikm(hs->dh1, dh2, id->cert.secret, ikm);
	if (reply_key(ikm, hs->hello_hash, r, key) < 0)
		goto out;
	memcpy(out, r, WIRE_RAND_LEN);
	for (size_t i = 0; i < WC_PUB_LEN; i++)
		out[WIRE_RAND_LEN + i] = f_pub[i] ^ mask[i];
	if (wc_aead_seal(key, zero_nonce, out, WIRE_RAND_LEN + WC_PUB_LEN, pad, padlen,
	                 out + WIRE_RAND_LEN + WC_PUB_LEN) < 0)
		goto out;
	if (session_keys(ikm, hello, hello_len, out, n, keys) < 0)
		goto out;
	rc = (int)n;
out:
	wc_wipe(dh2, sizeof(dh2));
	wc_wipe(key, sizeof(key));
	wc_wipe(ikm, sizeof(ikm));
	return rc;
}

int hs_client_finish(const struct wire_cert *cert, const struct hs_client *st,
                     const uint8_t *p, size_t n, struct wire_session_keys *keys)
{
	uint8_t f_pub[WC_PUB_LEN], dh2[WC_KEY_LEN], mask[WC_PUB_LEN], key[WC_KEY_LEN];
	uint8_t ikm[80], hh[WC_HASH_LEN], pt[HS_MAX];
	int rc = -1;

	if (n < HS_REPLY_MIN || n > HS_MAX)
		return -1;
	if (derive_mask(cert->secret, p, LABEL("reply mask"), mask) < 0)
		return -1;
	for (size_t i = 0; i < WC_PUB_LEN; i++)
		f_pub[i] = p[WIRE_RAND_LEN + i] ^ mask[i];
	if (wc_x25519(st->e_priv, f_pub, dh2) < 0)
		goto out;
	session_ikm(st->dh1, dh2, cert->secret, ikm);
	wc_sha256(st->hello, st->hello_len, hh);
	if (reply_key(ikm, hh, p, key) < 0 ||
	    wc_aead_open(key, zero_nonce, p, WIRE_RAND_LEN + WC_PUB_LEN,
	                 p + WIRE_RAND_LEN + WC_PUB_LEN, n - WIRE_RAND_LEN - WC_PUB_LEN, pt) < 0)
		goto out;
	if (session_keys(ikm, st->hello, st->hello_len, p, n, keys) < 0)
		goto out;
	rc = 0;
out:
	wc_wipe(dh2, sizeof(dh2));
	wc_wipe(key, sizeof(key));
	wc_wipe(ikm, sizeof(ikm));
	return rc;
}
