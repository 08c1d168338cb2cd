/*
 * Thin wrappers over OpenSSL 3 libcrypto for the wire protocol
 * (docs/PROTOCOL.md): X25519, HKDF-SHA256, SHA-256, ChaCha20-Poly1305 and a
 * ChaCha20 keystream for header masking.  No hand-written cryptography.
 * Every function returns 0 on success and -1 on failure unless noted.
 */
#ifndef SCTPT_CRYPTO_CRYPTO_H
#define SCTPT_CRYPTO_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define WC_KEY_LEN 32
#define WC_PUB_LEN 32
#define WC_NONCE_LEN 12
#define WC_TAG_LEN 16
#define WC_HASH_LEN 32

int wc_random(uint8_t *p, size_t n);
/* A uniform integer in [lo, hi] (lo when hi <= lo or the RNG fails). */
uint32_t wc_random_range(uint32_t lo, uint32_t hi);
/* pub = X25519 public key of priv. */
int wc_x25519_public(const uint8_t priv[WC_KEY_LEN], uint8_t pub[WC_PUB_LEN]);
/* out = X25519(priv, peer); fails on an all-zero result (small-order peer). */
int wc_x25519(const uint8_t priv[WC_KEY_LEN], const uint8_t peer[WC_PUB_LEN],
              uint8_t out[WC_KEY_LEN]);
void wc_sha256(const uint8_t *p, size_t n, uint8_t out[WC_HASH_LEN]);
/* HMAC-SHA256(key, p) -> out. */
int wc_hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *p, size_t n,
                   uint8_t out[WC_HASH_LEN]);
/* HKDF-SHA256(salt, ikm, info) -> out[outlen]. */
int wc_hkdf(const uint8_t *salt, size_t saltlen, const uint8_t *ikm, size_t ikmlen,
            const uint8_t *info, size_t infolen, uint8_t *out, size_t outlen);
/* One-shot ChaCha20-Poly1305: out gets ptlen bytes of ciphertext then the tag. */
int wc_aead_seal(const uint8_t key[WC_KEY_LEN], const uint8_t nonce[WC_NONCE_LEN],
                 const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t ptlen,
                 uint8_t *out);
/* ct holds ctlen bytes including the tag; out gets ctlen - 16 bytes. */
int wc_aead_open(const uint8_t key[WC_KEY_LEN], const uint8_t nonce[WC_NONCE_LEN],
                 const uint8_t *aad, size_t aadlen, const uint8_t *ct, size_t ctlen,
                 uint8_t *out);
/* n (<= 64) bytes of ChaCha20 keystream under key, with sample as counter||nonce. */
int wc_chacha20_mask(const uint8_t key[WC_KEY_LEN], const uint8_t sample[16],
                     uint8_t *out, size_t n);
/* Wipe key material. */
void wc_wipe(void *p, size_t n);

/* A reusable AEAD context (one per direction): avoids per-packet setup. */
struct wc_aead;
struct wc_aead *wc_aead_new(const uint8_t key[WC_KEY_LEN]);
void wc_aead_free(struct wc_aead *a);
int wc_aead_ctx_seal(struct wc_aead *a, const uint8_t nonce[WC_NONCE_LEN],
                     const uint8_t *pt, size_t ptlen, uint8_t *out);
/*
 * Seals pt (ptlen bytes; may be out) followed by the taillen bytes already
 * at out + ptlen: out gets ptlen + taillen bytes and the tag, the same as
 * wc_aead_ctx_seal over both.  pt must not otherwise overlap out.
 */
int wc_aead_ctx_seal_tail(struct wc_aead *a, const uint8_t nonce[WC_NONCE_LEN],
                          const uint8_t *pt, size_t ptlen, size_t taillen, uint8_t *out);
/* out may be ct (in place).  -1 not authentic; -2 failed with out untouched. */
int wc_aead_ctx_open(struct wc_aead *a, const uint8_t nonce[WC_NONCE_LEN],
                     const uint8_t *ct, size_t ctlen, uint8_t *out);

/* A reusable HMAC-SHA256 context under one key: no allocation per message. */
struct wc_hmac;
struct wc_hmac *wc_hmac_new(const uint8_t *key, size_t keylen);
void wc_hmac_free(struct wc_hmac *h);
int wc_hmac_get(struct wc_hmac *h, const uint8_t *p, size_t n, uint8_t out[WC_HASH_LEN]);

/* A reusable ChaCha20 keystream context for header masks. */
struct wc_mask;
struct wc_mask *wc_mask_new(const uint8_t key[WC_KEY_LEN]);
void wc_mask_free(struct wc_mask *m);
int wc_mask_get(struct wc_mask *m, const uint8_t sample[16], uint8_t *out, size_t n);

#endif
