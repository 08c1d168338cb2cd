/*
 * OpenSSL 3 wrappers; see crypto.h.  Contexts for the per-packet AEAD are
 * kept and re-keyed only by IV, which is most of the cost saved compared to
 * a one-shot call per packet.
 */
#include "crypto/crypto.h"

#include <limits.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/provider.h>

#include "util/fault.h"

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

/*
 * The per-packet path calls the provider's cipher functions directly.
 * Through EVP, OpenSSL 3.0 asks the provider for the IV length by name
 * (an OSSL_PARAM lookup, strcmp) on every re-IV, and wraps each call in
 * checks that only matter for a context whose cipher may change; ours
 * never does.  The functions are looked up once, by the algorithm's name,
 * in the provider that EVP_CIPHER_fetch() picks, so it is the same
 * implementation EVP would run.  If anything is missing we use EVP.
 */
struct pcipher {
	EVP_CIPHER *fetched;            /* holds the provider */
	void *provctx;
	OSSL_FUNC_cipher_newctx_fn *newctx;
	OSSL_FUNC_cipher_freectx_fn *freectx;
	OSSL_FUNC_cipher_encrypt_init_fn *einit;
	OSSL_FUNC_cipher_decrypt_init_fn *dinit;
	OSSL_FUNC_cipher_update_fn *update;
	OSSL_FUNC_cipher_final_fn *final;
	OSSL_FUNC_cipher_get_ctx_params_fn *get_params;
};

/* Whether name is one of the colon-separated names in names. */
static int name_in(const char *name, const char *names)
{
	size_t n = strlen(name);

	for (const char *p = names; p != NULL && *p != '\0';) {
		const char *e = strchr(p, ':');
		size_t len = e != NULL ? (size_t)(e - p) : strlen(p);

		if (len == n && OPENSSL_strncasecmp(p, name, n) == 0)
			return 1;
		p = e != NULL ? e + 1 : NULL;
	}
	return 0;
}

static void pcipher_find(struct pcipher *pc, const char *name)
{
	const OSSL_PROVIDER *prov;
	const OSSL_ALGORITHM *algs;
	const OSSL_DISPATCH *d = NULL;
	int nocache = 0;

	memset(pc, 0, sizeof(*pc));
	if ((pc->fetched = EVP_CIPHER_fetch(NULL, name, NULL)) == NULL ||
	    (prov = EVP_CIPHER_get0_provider(pc->fetched)) == NULL ||
	    (algs = OSSL_PROVIDER_query_operation(prov, OSSL_OP_CIPHER, &nocache)) == NULL)
		goto fail;
	for (const OSSL_ALGORITHM *a = algs; a->algorithm_names != NULL; a++)
		if (name_in(name, a->algorithm_names)) {
			d = a->implementation;
			break;
		}
	for (; d != NULL && d->function_id != 0; d++) {
		switch (d->function_id) {
		case OSSL_FUNC_CIPHER_NEWCTX:
			pc->newctx = OSSL_FUNC_cipher_newctx(d);
			break;
		case OSSL_FUNC_CIPHER_FREECTX:
			pc->freectx = OSSL_FUNC_cipher_freectx(d);
			break;
		case OSSL_FUNC_CIPHER_ENCRYPT_INIT:
			pc->einit = OSSL_FUNC_cipher_encrypt_init(d);
			break;
		case OSSL_FUNC_CIPHER_DECRYPT_INIT:
			pc->dinit = OSSL_FUNC_cipher_decrypt_init(d);
			break;
		case OSSL_FUNC_CIPHER_UPDATE:
			pc->update = OSSL_FUNC_cipher_update(d);
			break;
		case OSSL_FUNC_CIPHER_FINAL:
			pc->final = OSSL_FUNC_cipher_final(d);
			break;
		case OSSL_FUNC_CIPHER_GET_CTX_PARAMS:
			pc->get_params = OSSL_FUNC_cipher_get_ctx_params(d);
			break;
		}
	}
	OSSL_PROVIDER_unquery_operation(prov, OSSL_OP_CIPHER, algs);
	pc->provctx = OSSL_PROVIDER_get0_provider_ctx(prov);
	if (pc->newctx != NULL && pc->freectx != NULL && pc->einit != NULL && pc->dinit != NULL &&
	    pc->update != NULL && pc->final != NULL && pc->get_params != NULL)
		return;
fail:
	EVP_CIPHER_free(pc->fetched);
	memset(pc, 0, sizeof(*pc));   /* newctx NULL: use EVP */
}

static struct pcipher aead_pc, mask_pc;
static CRYPTO_ONCE pc_once = CRYPTO_ONCE_STATIC_INIT;

static void pc_init(void)
{
	pcipher_find(&aead_pc, "ChaCha20-Poly1305");
	pcipher_find(&mask_pc, "ChaCha20");
}

/* The provider functions for cipher, or NULL to use EVP. */
static const struct pcipher *pc_get(const struct pcipher *which)
{
	if (!CRYPTO_THREAD_run_once(&pc_once, pc_init) || which->newctx == NULL ||
	    FAULT("crypto_no_direct"))
		return NULL;
	return which;
}

struct wc_aead {
	const struct pcipher *pc;       /* direct, or NULL: */
	void *penc, *pdec;
	EVP_CIPHER_CTX *enc;            /* through EVP */
	EVP_CIPHER_CTX *dec;
};

struct wc_aead *wc_aead_new(const uint8_t key[WC_KEY_LEN])
{
	struct wc_aead *a = OPENSSL_zalloc(sizeof(*a));

	if (a == NULL)
		return NULL;
	a->pc = pc_get(&aead_pc);
	if (a->pc != NULL) {
		a->penc = a->pc->newctx(a->pc->provctx);
		a->pdec = a->pc->newctx(a->pc->provctx);
		if (a->penc == NULL || a->pdec == NULL ||
		    a->pc->einit(a->penc, key, WC_KEY_LEN, NULL, 0, NULL) != 1 ||
		    a->pc->dinit(a->pdec, key, WC_KEY_LEN, NULL, 0, NULL) != 1) {
			wc_aead_free(a);
			return NULL;
		}
		return a;
	}
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
	if (a->penc != NULL)
		a->pc->freectx(a->penc);   /* the provider wipes its key */
	if (a->pdec != NULL)
		a->pc->freectx(a->pdec);
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

int wc_aead_ctx_seal(struct wc_aead *a, const uint8_t nonce[WC_NONCE_LEN],
                     const uint8_t *pt, size_t ptlen, uint8_t *out)
{
	OSSL_PARAM tag[2];
	size_t len;

	if (a->pc == NULL)
		return aead_seal(a->enc, nonce, NULL, 0, pt, ptlen, out);
	if (a->pc->einit(a->penc, NULL, 0, nonce, WC_NONCE_LEN, NULL) != 1)
		return -1;
	if (ptlen > 0 && a->pc->update(a->penc, out, &len, ptlen, pt, ptlen) != 1)
		return -1;
	if (a->pc->final(a->penc, out + ptlen, &len, 0) != 1)
		return -1;
	tag[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, out + ptlen,
	                                           WC_TAG_LEN);
	tag[1] = OSSL_PARAM_construct_end();
	return a->pc->get_params(a->penc, tag) == 1 ? 0 : -1;
}

/*
 * Two updates, so a packet is encrypted from where the layer above built
 * it straight into the send slot, and only the short tail (padding and
 * its length, already at out + ptlen) in place: no copy of the packet
 * first.  ChaCha20-Poly1305 streams, so the result is the same bytes as
 * one call over pt | tail.
 */
int wc_aead_ctx_seal_tail(struct wc_aead *a, const uint8_t nonce[WC_NONCE_LEN],
                          const uint8_t *pt, size_t ptlen, size_t taillen, uint8_t *out)
{
	OSSL_PARAM tag[2];
	size_t len;
	int ilen;

	if (a->pc == NULL) {
		EVP_CIPHER_CTX *c = a->enc;

		if (ptlen > INT_MAX || taillen > INT_MAX ||
		    EVP_EncryptInit_ex(c, NULL, NULL, NULL, nonce) != 1 ||
		    (ptlen > 0 && EVP_EncryptUpdate(c, out, &ilen, pt, (int)ptlen) != 1) ||
		    (taillen > 0 && EVP_EncryptUpdate(c, out + ptlen, &ilen, out + ptlen,
		                                      (int)taillen) != 1) ||
		    EVP_EncryptFinal_ex(c, out + ptlen + taillen, &ilen) != 1)
			return -1;
		return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, WC_TAG_LEN,
		                           out + ptlen + taillen) == 1 ? 0 : -1;
	}
	if (a->pc->einit(a->penc, NULL, 0, nonce, WC_NONCE_LEN, NULL) != 1)
		return -1;
	if (ptlen > 0 && (a->pc->update(a->penc, out, &len, ptlen, pt, ptlen) != 1 ||
	                  len != ptlen))
		return -1;
	if (taillen > 0 && (a->pc->update(a->penc, out + ptlen, &len, taillen, out + ptlen,
	                                  taillen) != 1 || len != taillen))
		return -1;
	if (a->pc->final(a->penc, out + ptlen + taillen, &len, 0) != 1)
		return -1;
	tag[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
	                                           out + ptlen + taillen, WC_TAG_LEN);
	tag[1] = OSSL_PARAM_construct_end();
	return a->pc->get_params(a->penc, tag) == 1 ? 0 : -1;
}

int wc_aead_ctx_open(struct wc_aead *a, const uint8_t nonce[WC_NONCE_LEN],
                     const uint8_t *ct, size_t ctlen, uint8_t *out)
{
	uint8_t t[WC_TAG_LEN];
	OSSL_PARAM tag[2];
	size_t n, len;

	if (ctlen < WC_TAG_LEN)
		return -2;
	if (a->pc == NULL)
		return aead_open(a->dec, nonce, NULL, 0, ct, ctlen, out);
	n = ctlen - WC_TAG_LEN;
	memcpy(t, ct + n, WC_TAG_LEN);
	tag[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, t, WC_TAG_LEN);
	tag[1] = OSSL_PARAM_construct_end();
	/* The expected tag goes in with the nonce. */
	if (a->pc->dinit(a->pdec, NULL, 0, nonce, WC_NONCE_LEN, tag) != 1)
		return -2;   /* out untouched */
	if (n > 0 && a->pc->update(a->pdec, out, &len, n, ct, n) != 1)
		return -1;
	return a->pc->final(a->pdec, out + n, &len, 0) == 1 ? 0 : -1;
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
	const struct pcipher *pc;       /* direct, or NULL: */
	void *pctx;
	EVP_CIPHER_CTX *c;              /* through EVP */
};

struct wc_mask *wc_mask_new(const uint8_t key[WC_KEY_LEN])
{
	struct wc_mask *m = OPENSSL_zalloc(sizeof(*m));
	static const uint8_t iv[16];

	if (m == NULL)
		return NULL;
	m->pc = pc_get(&mask_pc);
	if (m->pc != NULL) {
		m->pctx = m->pc->newctx(m->pc->provctx);
		if (m->pctx == NULL ||
		    m->pc->einit(m->pctx, key, WC_KEY_LEN, iv, sizeof(iv), NULL) != 1) {
			wc_mask_free(m);
			return NULL;
		}
		return m;
	}
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
	if (m->pctx != NULL)
		m->pc->freectx(m->pctx);
	EVP_CIPHER_CTX_free(m->c);
	OPENSSL_free(m);
}

int wc_mask_get(struct wc_mask *m, const uint8_t sample[16], uint8_t *out, size_t n)
{
	static const uint8_t zero[64];
	size_t outl;
	int len;

	if (n > sizeof(zero))
		return -1;
	if (m->pc != NULL)
		return m->pc->einit(m->pctx, NULL, 0, sample, 16, NULL) == 1 &&
		       m->pc->update(m->pctx, out, &outl, n, zero, n) == 1 ? 0 : -1;
	if (EVP_EncryptInit_ex(m->c, NULL, NULL, NULL, sample) != 1 ||
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
