/*
 * sctpt wire handshake, version 2 (docs/PROTOCOL.md).  Pure functions: all
 * randomness and the clock come in as arguments, so test vectors are exact.
 *
 *   client -> server  HELLO  R_c | E_c ^ mask_c | AEAD(k_hello, T | pad) | MAC
 *   server -> client  REPLY  R_s | F   ^ mask_s | AEAD(k_reply, pad)
 *
 * E_c, F are ephemeral X25519 keys; the server's static key S and a 16-byte
 * bridge secret K come from the cert= value.  Only a holder of K and S can
 * build a HELLO the server accepts; only the holder of s can answer it.
 * The MAC (keyed from K and S) lets the server drop anything not built from
 * the cert for the price of one HMAC, before any public-key work.
 */
#ifndef SCTPT_WIRE_HANDSHAKE_H
#define SCTPT_WIRE_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"

#define WIRE_SECRET_LEN 16
#define WIRE_RAND_LEN 16
#define WIRE_MAC_LEN 16
#define HS_HELLO_MIN (WIRE_RAND_LEN + WC_PUB_LEN + 8 + WC_TAG_LEN + WIRE_MAC_LEN)   /* 88 */
#define HS_REPLY_MIN (WIRE_RAND_LEN + WC_PUB_LEN + WC_TAG_LEN)       /* 64 */
#define HS_MAX 1400
#define HS_PREFIX_MAX 64        /* longest --prefix a HELLO may start with */
#define WIRE_CERT_LEN (WC_PUB_LEN + WIRE_SECRET_LEN)
#define WIRE_CERT_B64_MAX 80

/* What a client is given: the server's public key and the bridge secret. */
struct wire_cert {
	uint8_t pub[WC_PUB_LEN];
	uint8_t secret[WIRE_SECRET_LEN];
};

/* What the server keeps: its private key too. */
struct wire_identity {
	uint8_t priv[WC_KEY_LEN];
	struct wire_cert cert;
};

/* Per-direction traffic secrets. */
struct wire_dir_keys {
	uint8_t key[WC_KEY_LEN];
	uint8_t iv[WC_NONCE_LEN];
	uint8_t hp[WC_KEY_LEN];
};

struct wire_session_keys {
	struct wire_dir_keys c2s, s2c;
};

/* Client state between HELLO and REPLY. */
struct hs_client {
	uint8_t e_priv[WC_KEY_LEN];
	uint8_t e_pub[WC_PUB_LEN];
	uint8_t dh1[WC_KEY_LEN];
	uint8_t hello[HS_MAX];
	size_t hello_len;
};

/* Server view of an accepted HELLO. */
struct hs_server {
	uint8_t e_pub[WC_PUB_LEN];
	uint8_t dh1[WC_KEY_LEN];
	uint64_t minutes;                /* the client's clock, in minutes */
	uint8_t hello_hash[WC_HASH_LEN]; /* SHA-256 of the datagram: for the keys */
	uint8_t replay_hash[WC_HASH_LEN];/* the same HELLO in either form: the
	                                  * replay filter (hs_hello_replay_hash) */
};

/* Identity files and cert= values. */
int wire_identity_generate(struct wire_identity *id);
int wire_identity_from_priv(struct wire_identity *id, const uint8_t priv[WC_KEY_LEN],
                            const uint8_t secret[WIRE_SECRET_LEN]);
/* Base64 (no padding) of pub | secret.  Returns the length or -1. */
int wire_cert_encode(const struct wire_cert *c, char *out, size_t outlen);
int wire_cert_decode(const char *s, struct wire_cert *out);

/* The key of the HELLO's MAC: anyone given cert= can compute it.  0 or -1. */
int hs_mac_key(const struct wire_cert *cert, uint8_t key[WC_KEY_LEN]);
/* The key of the prefixed form's MAC ("hello mac prefixed").  0 or -1. */
int hs_mac_key_prefixed(const struct wire_cert *cert, uint8_t key[WC_KEY_LEN]);
/*
 * The cheap first check of a candidate HELLO (a length and one HMAC,
 * compared in constant time): 1 if p could be a HELLO for mac_key, else 0.
 */
int hs_hello_mac_ok(const uint8_t mac_key[WC_KEY_LEN], const uint8_t *p, size_t n);
/* The same with a context keyed with mac_key (the server's, made once). */
int hs_hello_mac_ok_ctx(struct wc_hmac *mac, const uint8_t *p, size_t n);

/*
 * Build a HELLO into out (at least HS_MAX bytes) from the ephemeral private
 * key e_priv, the random R_c, the clock in minutes and padlen padding
 * bytes pad.  Returns its length, or -1.
 */
int hs_client_hello(const struct wire_cert *cert, struct hs_client *st,
                    const uint8_t e_priv[WC_KEY_LEN], const uint8_t r[WIRE_RAND_LEN],
                    uint64_t minutes, const uint8_t *pad, size_t padlen, uint8_t *out);

/*
 * The same with a prefix of plen (0..HS_PREFIX_MAX) bytes first (the
 * prefixed form, docs/PROTOCOL.md "Prefix"); plen 0 is hs_client_hello.
 */
int hs_client_hello_prefixed(const struct wire_cert *cert, struct hs_client *st,
                             const uint8_t e_priv[WC_KEY_LEN], const uint8_t r[WIRE_RAND_LEN],
                             uint64_t minutes, const uint8_t *prefix, size_t plen,
                             const uint8_t *pad, size_t padlen, uint8_t *out);

/*
 * The server's MAC check of either form, with contexts keyed by hs_mac_key
 * and hs_mac_key_prefixed (mac_p NULL: plain form only): 1 and the HELLO
 * body (without prefix, length byte and MAC) located at p[*off], *blen
 * bytes; 0 if p is no HELLO of ours.  A prefixed candidate costs two more
 * HMACs than a plain one (one of them over 16 bytes).
 */
int hs_hello_locate(struct wc_hmac *mac, struct wc_hmac *mac_p, const uint8_t *p, size_t n,
                    size_t *off, size_t *blen);
/*
 * What the replay filter remembers of a located HELLO: SHA-256(body |
 * MAC16(k_mac, body)), i.e. of the plain form of the same body, so that
 * one body sent in both forms, or with two prefixes, is one HELLO.  For a
 * plain HELLO that is SHA-256 of the datagram.  mac is keyed by hs_mac_key.
 * 0 or -1.
 */
int hs_hello_replay_hash(struct wc_hmac *mac, const uint8_t *p, size_t n, size_t off,
                         size_t blen, uint8_t out[WC_HASH_LEN]);
/* Check a located HELLO body and fill *out (hash over all n bytes). 0 or -1. */
int hs_server_parse_body(const struct wire_identity *id, const uint8_t *p, size_t n,
                         size_t off, size_t blen, struct hs_server *out);

/* Check a HELLO of either form (its MAC too): 0 and *out filled, or -1. */
int hs_server_parse(const struct wire_identity *id, const uint8_t *p, size_t n,
                    struct hs_server *out);

/* Build the REPLY and derive the session keys.  Returns its length or -1. */
int hs_server_reply(const struct wire_identity *id, const struct hs_server *hs,
                    const uint8_t f_priv[WC_KEY_LEN], const uint8_t r[WIRE_RAND_LEN],
                    const uint8_t *pad, size_t padlen, const uint8_t *hello,
                    size_t hello_len, uint8_t *out, struct wire_session_keys *keys);

/* Check a REPLY to our HELLO and derive the session keys.  0 or -1. */
int hs_client_finish(const struct wire_cert *cert, const struct hs_client *st,
                     const uint8_t *p, size_t n, struct wire_session_keys *keys);

#endif
