/*
 * Data packet protection (docs/PROTOCOL.md, "Data packets"): each SCTP
 * packet is sealed with ChaCha20-Poly1305 under a per-direction key, with
 * the 64-bit packet number as nonce, hidden by a header mask derived from
 * the tag, and padded inside the ciphertext.  Keys roll forward every
 * 2^epoch_shift packets.  The opener keeps a replay window.  Pure apart
 * from OpenSSL.
 */
#ifndef SCTPT_WIRE_SEAL_H
#define SCTPT_WIRE_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "crypto/crypto.h"
#include "wire/handshake.h"

#define WIRE_DATA_OVERHEAD (8 + 2 + WC_TAG_LEN)   /* header, pad length, tag */
#define WIRE_REPLAY_WINDOW 4096                   /* packets, a power of two */
#define WIRE_EPOCH_SHIFT 30                       /* rekey every 2^30 packets */
#define WIRE_SEQ_LIMIT (1ULL << 62)               /* a session ends before this */

struct wire_dir {
	struct wc_aead *aead;        /* key of epoch `epoch` */
	struct wc_aead *prev;        /* opener: key of epoch - 1, for late packets */
	struct wc_mask *mask;
	uint8_t key[WC_KEY_LEN];     /* key of epoch `epoch` */
	uint8_t iv[WC_NONCE_LEN];
	uint64_t epoch;
	unsigned epoch_shift;
	uint64_t next_seq;           /* sealer: the next packet number */
	uint64_t top;                /* opener: highest number accepted + 1 */
	uint64_t bitmap[WIRE_REPLAY_WINDOW / 64];
};

/* 0 or -1.  epoch_shift 0 means WIRE_EPOCH_SHIFT. */
int wire_dir_init(struct wire_dir *d, const struct wire_dir_keys *k, unsigned epoch_shift);
/* Free contexts and wipe keys.  Safe on a zeroed struct. */
void wire_dir_clear(struct wire_dir *d);

/*
 * Seal pkt (len bytes) with padlen bytes of padding into out, which needs
 * len + padlen + WIRE_DATA_OVERHEAD bytes.  pkt may already sit at out + 8
 * (built in place: then nothing is copied), or anywhere else not
 * overlapping out.  Returns the datagram length or
 * -1 (key limit reached, padding too long, crypto failure).
 */
ssize_t wire_seal_packet(struct wire_dir *d, const uint8_t *pkt, size_t len,
                         size_t padlen, uint8_t *out);

/*
 * Open a datagram into out (at least n bytes).  Returns the SCTP packet
 * length; WIRE_REPLAY if its packet number was already seen (or is too old
 * to tell); -1 if it is not authentic or malformed.  A rejected datagram
 * changes no state.
 */
#define WIRE_REPLAY (-2)
/*
 * Whether a datagram the opener calls WIRE_REPLAY is nonetheless authentic
 * (a duplicate of a packet it accepted): 1 or 0.  out (n bytes) is scratch;
 * no state changes.  The server counts such a duplicate from a session's
 * current address as a sign of life (see listener.c, moving addresses).
 */
int wire_packet_authentic(struct wire_dir *d, const uint8_t *in, size_t n, uint8_t *out);

/*
 * Cheap pre-check before trying a datagram against a session it may not
 * belong to: 1 if its unmasked packet number lies within the replay window
 * or at most 2^16 ahead of it (random bytes pass with p < 2^-47), else 0.
 * *newest is set when the number is beyond every one accepted so far.
 */
int wire_packet_plausible(struct wire_dir *d, const uint8_t *in, size_t n, int *newest);
ssize_t wire_open_packet(struct wire_dir *d, const uint8_t *in, size_t n, uint8_t *out);
/*
 * The same, decrypting in place: on success *pkt points at the SCTP packet
 * inside in (at in + 8) and in holds plaintext.  A rejected datagram is
 * left as it came (one more cipher pass when it got as far as the AEAD),
 * so the caller may still try it as something else.
 */
ssize_t wire_open_packet_inplace(struct wire_dir *d, uint8_t *in, size_t n,
                                 const uint8_t **pkt);

#endif
