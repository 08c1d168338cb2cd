/*
 * TCP carrier framing (docs/PROTOCOL.md, "TCP carrier") as a pure
 * encoder/decoder: no sockets, no event loop, no allocation beyond the two
 * keystream contexts.  Private to src/carrier (tcp.c), public to the unit
 * test and the fuzz harness.
 *
 *   client -> server   N (16 random bytes), then frames
 *   frame              LEN (2 bytes, XOR the direction's keystream) | LEN bytes
 *
 * The decoder keeps no input: the caller holds the unconsumed bytes (an
 * evbuffer) and asks again when more arrive, so a frame may come in any
 * number of pieces.  Nothing advances until a whole frame is there.
 */
#ifndef SCTPT_CARRIER_TCPFRAME_H
#define SCTPT_CARRIER_TCPFRAME_H

#include <stddef.h>
#include <stdint.h>

#define TCPFRAME_NONCE_LEN 16
#define TCPFRAME_HDR_LEN 2
#define TCPFRAME_MAX 65535              /* LEN is 1..65535 */

struct wc_mask;

/* One direction's keystream: position and the cached 64-byte block. */
struct tcpframe_ks {
	struct wc_mask *mask;
	uint64_t pos;                   /* keystream bytes used */
	uint64_t block;                 /* which block is in cache, +1 (0: none) */
	uint8_t cache[64];
};

struct tcpframe {
	struct tcpframe_ks rx, tx;
	size_t max;                     /* longest frame accepted (<= TCPFRAME_MAX) */
	int keyed;
};

/*
 * Key both directions from the frame key and the client's nonce; server
 * selects which direction is rx.  max bounds the accepted frame length
 * (0 means TCPFRAME_MAX).  0, or -1 (out of memory, crypto failure).
 */
int tcpframe_init(struct tcpframe *f, const uint8_t frame_key[32],
                  const uint8_t nonce[TCPFRAME_NONCE_LEN], int server, size_t max);
/* Free the keystream contexts; f is zeroed.  Fine on a zeroed f. */
void tcpframe_clear(struct tcpframe *f);

/*
 * Encode the 2-byte masked length of a len-byte datagram into hdr without
 * using up keystream: call tcpframe_tx_commit once the frame is queued
 * whole, and nothing if it could not be, so a failed send cannot shift the
 * keystream against the peer's.  0, or -1 (len 0 or over TCPFRAME_MAX,
 * keystream failure).
 */
int tcpframe_tx_header(struct tcpframe *f, size_t len, uint8_t hdr[TCPFRAME_HDR_LEN]);
void tcpframe_tx_commit(struct tcpframe *f);
/* Both at once into out (len + 2 bytes): header then datagram. */
int tcpframe_encode(struct tcpframe *f, const uint8_t *buf, size_t len, uint8_t *out);

enum tcpframe_rc {
	TCPFRAME_MORE = 0,              /* not a whole frame yet: nothing consumed */
	TCPFRAME_FRAME,                 /* a frame: *off and *len locate the datagram */
	TCPFRAME_ERROR,                 /* length zero or over max, or keystream failure */
};

/*
 * The length of the next frame from its 2 masked bytes, keystream not used
 * up (TCPFRAME_FRAME with *len, or TCPFRAME_ERROR).  tcpframe_rx_commit
 * uses it up once the caller consumed the whole frame.
 */
enum tcpframe_rc tcpframe_rx_length(struct tcpframe *f, const uint8_t hdr[TCPFRAME_HDR_LEN],
                                    size_t *len);
void tcpframe_rx_commit(struct tcpframe *f);

/*
 * Decode the next frame from the avail unconsumed bytes at in: on
 * TCPFRAME_FRAME the datagram is in[*off .. *off + *len) and
 * *off + *len bytes are consumed (the caller drops them).
 */
enum tcpframe_rc tcpframe_decode(struct tcpframe *f, const uint8_t *in, size_t avail,
                                 size_t *off, size_t *len);

/*
 * Server side, before any frame: the client's nonce.  While fewer than
 * TCPFRAME_NONCE_LEN bytes are there, TCPFRAME_MORE; then keys f (as
 * tcpframe_init with server = 1) and returns TCPFRAME_FRAME with
 * TCPFRAME_NONCE_LEN bytes consumed, or TCPFRAME_ERROR.
 */
enum tcpframe_rc tcpframe_accept_nonce(struct tcpframe *f, const uint8_t frame_key[32],
                                       const uint8_t *in, size_t avail, size_t max);

/*
 * Prefix (issue 16, docs/PROTOCOL.md "Prefix"): a client with --prefix
 * opens the stream with prefix | N | tag, tag the first TCPFRAME_TAG_LEN
 * bytes of HMAC(Kp, prefix | N), Kp from the frame key; the server finds
 * the prefix's length by trying each, so it needs no option.
 */
#define TCPFRAME_PREFIX_MAX 64
#define TCPFRAME_TAG_LEN 4
/* What the server waits for before it decides: the longest prefixed head. */
#define TCPFRAME_PREFIX_SCAN (TCPFRAME_PREFIX_MAX + TCPFRAME_NONCE_LEN + TCPFRAME_TAG_LEN)

struct wc_hmac;

/* The HMAC context keyed with Kp, or NULL. */
struct wc_hmac *tcpframe_prefix_mac(const uint8_t frame_key[32]);
/* prefix | nonce | tag into out: returns its length, or -1 (plen 0 or too long). */
int tcpframe_prefix_head(struct wc_hmac *h, const uint8_t *prefix, size_t plen,
                         const uint8_t nonce[TCPFRAME_NONCE_LEN], uint8_t *out);
/*
 * The length of the prefix the stream in[0..avail) starts with (1..64), or
 * 0 when it starts with the plain nonce (no tag matched).  At most 64
 * HMACs over at most 80 bytes.
 */
size_t tcpframe_prefix_find(struct wc_hmac *h, const uint8_t *in, size_t avail);

#endif
