/*
 * OpenSSL 3 wrappers; see crypto.h.  Contexts for the per-packet AEAD are
 * kept and re-keyed only by IV, which is most of the cost saved compared to
 * a one-shot call per packet.
 */
#include "crypto/crypto.h"

#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/core_names.h>

int wc_random(uint8_t *p, size_t n)
{
	return RAND_bytes(p, (int)n) == 1 ? 0 : -1;
}

uint32_t wc_random_range(uint32_t lo, uint32_t hi)
{
	uint64_t span, limit;
	uint32_t r;

	if (hi <= lo)
		return lo;
	span = (uint64_t)hi - lo + 1;
	/* Reject the top partial bucket so every value is equally likely. */
	limit = (UINT64_C(1) << 32) - ((UINT64_C(1) << 32) % span);
	for (int tries = 0; tries < 64; tries++) {
		if (wc_random((uint8_t *)&r, sizeof(r)) < 0)
			return lo;
		if (r < limit)
			return lo + (uint32_t)(r % span);
	}
	return lo + (uint32_t)(r % span);
}

int wc_x25519_public(const uint8_t priv[WC_KEY_LEN], uint8_t pub[WC_PUB_LEN])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, WC_KEY_LEN);
	size_t len = WC_PUB_LEN;
	int r = -1;

	if (k != NULL && EVP_PKEY_get_raw_public_key(k, pub, &len) == 1 && len == WC_PUB_LEN)
		r = 0;
	EVP_PKEY_free(k);
	return r;
}

int wc_x25519(const uint8_t priv[WC_KEY_LEN], const uint8_t peer[WC_PUB_LEN],
              uint8_t out[WC_KEY_LEN])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, WC_KEY_LEN);
	EVP_PKEY *p = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, WC_PUB_LEN);
	EVP_PKEY_CTX *ctx = NULL;
	size_t len = WC_KEY_LEN;
	static const uint8_t zero[WC_KEY_LEN];
	int r = -1;

	if (k == NULL || p == NULL)
		goto out;
	ctx = EVP_PKEY_CTX_new(k, NULL);
	if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 ||
	    EVP_PKEY_derive_set_peer(ctx, p) != 1 ||
	    EVP_PKEY_derive(ctx, out, &len) != 1 || len != WC_KEY_LEN)
		goto out;
	r = CRYPTO_memcmp(out, zero, WC_KEY_LEN) == 0 ? -1 : 0;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(k);
	EVP_PKEY_free(p);
	return r;
}

void wc_sha256(const uint8_t *p, size_t n, uint8_t out[WC_HASH_LEN])
{
	unsigned int len = WC_HASH_LEN;

	EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

int wc_hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *p, size_t n,
                   uint8_t out[WC_HASH_LEN])
{
	unsigned int len = WC_HASH_LEN;

	if (HMAC(EVP_sha256(), key, (int)keylen, p, n, out, &len) == NULL || len != WC_HASH_LEN)
		return -1;
	return 0;
}

int wc_hkdf(const uint8_t *salt, size_t saltlen, const uint8_t *ikm, size_t ikmlen,
            const uint8_t *info, size_t infolen, uint8_t *out, size_t outlen)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t len = outlen;
	int r = -1;

	if (ctx == NULL)
		return -1;
	if (EVP_PKEY_derive_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) == 1 &&
	    EVP_PKEY_CTX_set1_hkdf_salt(ctx, saltlen > 0 ? salt : (const uint8_t *)"", (int)saltlen) == 1 &&
	    EVP_PKEY_CTX_set1_hkdf_key(ctx, ikm, (int)ikmlen) == 1 &&
	    EVP_PKEY_CTX_add1_hkdf_info(ctx, info, (int)infolen) == 1 &&
	    EVP_PKEY_derive(ctx, out, &len) == 1 && len == outlen)
		r = 0;
	EVP_PKEY_CTX_free(ctx);
	return r;
}

struct wc_aead {
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
};

struct wc_aead *wc_aead_new(const uint8_t key[WC_KEY_LEN])
{
	struct wc_aead *a = OPENSSL_zalloc(sizeof(*a));

	if (a == NULL)
		return NULL;
	a->enc = EVP_CIPHER_CTX_new();
	a->dec = EVP_CIPHER_CTX_new();
	if (a->enc == NULL || a->dec == NULL ||
	    EVP_EncryptInit_ex(a->enc, EVP_chacha20_poly1305(), NULL, key, NULL) != 1 ||
	    EVP_DecryptInit_ex(a->dec, EVP_chacha20_poly1305(), NULL, key, NULL) != 1) {
		wc_aead_free(a);
		return NULL;
	}
	return a;
}

void wc_aead_free(struct wc_aead *a)
{
	if (a == NULL)
		return;
	EVP_CIPHER_CTX_free(a->enc);
	EVP_CIPHER_CTX_free(a->dec);
	OPENSSL_free(a);
}

static int aead_seal(EVP_CIPHER_CTX *c, const uint8_t nonce[WC_NONCE_LEN],
                     const uint8_t *aad, size_t aadlen, const uint8_t *pt,
                     size_t ptlen, uint8_t *out)
{
	int len;

	if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, nonce) != 1)
		return -1;
	if (aadlen > 0 && EVP_EncryptUpdate(c, NULL, &len, aad, (int)aadlen) != 1)
		return -1;
	if (ptlen > 0 && EVP_EncryptUpdate(c, out, &len, pt, (int)ptlen) != 1)
		return -1;
	if (EVP_EncryptFinal_ex(c, out + ptlen, &len) != 1)
		return -1;
	return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, WC_TAG_LEN, out + ptlen) == 1 ? 0 : -1;
}

static int aead_open(EVP_CIPHER_CTX *c, const uint8_t nonce[WC_NONCE_LEN],
                     const uint8_t *aad, size_t aadlen, const uint8_t *ct,
                     size_t ctlen, uint8_t *out)
{
	uint8_t tag[WC_TAG_LEN];
	size_t n;
	int len;

	if (ctlen < WC_TAG_LEN)
		return -1;
	n = ctlen - WC_TAG_LEN;
	memcpy(tag, ct + n, WC_TAG_LEN);
	if (EVP_DecryptInit_ex(c, NULL, NULL, NULL, nonce) != 1)
		return -1;
	if (aadlen > 0 && EVP_DecryptUpdate(c, NULL, &len, aad, (int)aadlen) != 1)
		return -1;
	if (n > 0 && EVP_DecryptUpdate(c, out, &len, ct, (int)n) != 1)
		return -1;
	if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, WC_TAG_LEN, tag) != 1)
		return -1;
	return EVP_DecryptFinal_ex(c, out + n, &len) == 1 ? 0 : -1;
}

/*
 * The per-packet path.  OpenSSL 3's EVP_CIPHER_CTX_ctrl() turns each
 * GET_TAG/SET_TAG into an OSSL_PARAM array it builds and looks up by name
 * (strcmp), on top of the provider's own lookup; handing the provider the
 * tag parameter directly skips the translation, and setting the expected
 * tag together with the nonce saves a second call on the way in.
 */
int wc_aead_ctx_seal(struct wc_aead *a, const uint8_t nonce[WC_NONCE_LEN],
                     const uint8_t *pt, size_t ptlen, uint8_t *out)
{
	OSSL_PARAM tag[2];
	int len;

	if (EVP_EncryptInit_ex2(a->enc, NULL, NULL, nonce, NULL) != 1)
		return -1;
	if (ptlen > 0 && EVP_EncryptUpdate(a->enc, out, &len, pt, (int)ptlen) != 1)
		return -1;
	if (EVP_EncryptFinal_ex(a->enc, out + ptlen, &len) != 1)
		return -1;
	tag[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, out + ptlen,
	                                           WC_TAG_LEN);
	tag[1] = OSSL_PARAM_construct_end();
	return EVP_CIPHER_CTX_get_params(a->enc, tag) == 1 ? 0 : -1;
}

int wc_aead_ctx_open(struct wc_aead *a, const uint8_t nonce[WC_NONCE_LEN],
                     const uint8_t *ct, size_t ctlen, uint8_t *out)
{
	uint8_t t[WC_TAG_LEN];
	OSSL_PARAM tag[2];
	size_t n;
	int len;

	if (ctlen < WC_TAG_LEN)
		return -2;
	n = ctlen - WC_TAG_LEN;
	memcpy(t, ct + n, WC_TAG_LEN);
	tag[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, t, WC_TAG_LEN);
	tag[1] = OSSL_PARAM_construct_end();
	if (EVP_DecryptInit_ex2(a->dec, NULL, NULL, nonce, tag) != 1)
		return -2;   /* out untouched */
	if (n > 0 && EVP_DecryptUpdate(a->dec, out, &len, ct, (int)n) != 1)
		return -1;
	return EVP_DecryptFinal_ex(a->dec, out + n, &len) == 1 ? 0 : -1;
}

int wc_aead_seal(const uint8_t key[WC_KEY_LEN], const uint8_t nonce[WC_NONCE_LEN],
                 const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t ptlen,
                 uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int r = -1;

	if (c != NULL && EVP_EncryptInit_ex(c, EVP_chacha20_poly1305(), NULL, key, NULL) == 1)
		r = aead_seal(c, nonce, aad, aadlen, pt, ptlen, out);
	EVP_CIPHER_CTX_free(c);
	return r;
}

int wc_aead_open(const uint8_t key[WC_KEY_LEN], const uint8_t nonce[WC_NONCE_LEN],
                 const uint8_t *aad, size_t aadlen, const uint8_t *ct, size_t ctlen,
                 uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int r = -1;

	if (c != NULL && EVP_DecryptInit_ex(c, EVP_chacha20_poly1305(), NULL, key, NULL) == 1)
		r = aead_open(c, nonce, aad, aadlen, ct, ctlen, out);
	EVP_CIPHER_CTX_free(c);
	return r;
}

int wc_chacha20_mask(const uint8_t key[WC_KEY_LEN], const uint8_t sample[16],
                     uint8_t *out, size_t n)
{
	static const uint8_t zero[64];
	EVP_CIPHER_CTX *c;
	int len, r = -1;

	if (n > sizeof(zero))
		return -1;
	c = EVP_CIPHER_CTX_new();
	if (c != NULL && EVP_EncryptInit_ex(c, EVP_chacha20(), NULL, key, sample) == 1 &&
	    EVP_EncryptUpdate(c, out, &len, zero, (int)n) == 1)
		r = 0;
	EVP_CIPHER_CTX_free(c);
	return r;
}

void wc_wipe(void *p, size_t n)
{
	OPENSSL_cleanse(p, n);
}

struct wc_mask {
	EVP_CIPHER_CTX *c;
};

struct wc_mask *wc_mask_new(const uint8_t key[WC_KEY_LEN])
{
	struct wc_mask *m = OPENSSL_zalloc(sizeof(*m));
	static const uint8_t iv[16];

	if (m == NULL)
		return NULL;
	m->c = EVP_CIPHER_CTX_new();
	if (m->c == NULL || EVP_EncryptInit_ex(m->c, EVP_chacha20(), NULL, key, iv) != 1) {
		wc_mask_free(m);
		return NULL;
	}
	return m;
}

void wc_mask_free(struct wc_mask *m)
{
	if (m == NULL)
		return;
	EVP_CIPHER_CTX_free(m->c);
	OPENSSL_free(m);
}

int wc_mask_get(struct wc_mask *m, const uint8_t sample[16], uint8_t *out, size_t n)
{
	static const uint8_t zero[64];
	int len;

	if (n > sizeof(zero) || EVP_EncryptInit_ex(m->c, NULL, NULL, NULL, sample) != 1 ||
	    EVP_EncryptUpdate(m->c, out, &len, zero, (int)n) != 1)
		return -1;
	return 0;
}

struct wc_hmac {
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx;
};

struct wc_hmac *wc_hmac_new(const uint8_t *key, size_t keylen)
{
	struct wc_hmac *h = OPENSSL_zalloc(sizeof(*h));
	OSSL_PARAM params[2];

	if (h == NULL)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	h->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	h->ctx = h->mac != NULL ? EVP_MAC_CTX_new(h->mac) : NULL;
	if (h->ctx == NULL || EVP_MAC_init(h->ctx, key, keylen, params) != 1) {
		wc_hmac_free(h);
		return NULL;
	}
	return h;
}

void wc_hmac_free(struct wc_hmac *h)
{
	if (h == NULL)
		return;
	EVP_MAC_CTX_free(h->ctx);   /* wipes the keyed state */
	EVP_MAC_free(h->mac);
	OPENSSL_free(h);
}

int wc_hmac_get(struct wc_hmac *h, const uint8_t *p, size_t n, uint8_t out[WC_HASH_LEN])
{
	size_t len = 0;

	/* A NULL key restarts the MAC under the key given to wc_hmac_new(). */
	if (EVP_MAC_init(h->ctx, NULL, 0, NULL) != 1 || EVP_MAC_update(h->ctx, p, n) != 1 ||
	    EVP_MAC_final(h->ctx, out, &len, WC_HASH_LEN) != 1 || len != WC_HASH_LEN)
		return -1;
	return 0;
}
