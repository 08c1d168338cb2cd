/*
 * Data packet protection; see seal.h.
 *
 *   datagram = (seq XOR mask[0..8]) | AEAD(key_e, iv XOR seq, SCTP | zeros | padlen)
 *   mask     = ChaCha20(hp, counter|nonce = the 16-byte tag)
 *
 * The packet number never repeats in a direction, so no nonce is reused;
 * the mask makes the header as random-looking as the ciphertext.
 */
#include "wire/seal.h"

#include <string.h>

#include "util/bytes.h"

#define LABEL_REKEY (const uint8_t *)"sctpt-v2 rekey", sizeof("sctpt-v2 rekey") - 1

static void make_nonce(const uint8_t iv[WC_NONCE_LEN], uint64_t seq, uint8_t nonce[WC_NONCE_LEN])
{
	memcpy(nonce, iv, WC_NONCE_LEN);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] ^= (uint8_t)(seq >> (56 - 8 * i));
}

static int next_key(const uint8_t cur[WC_KEY_LEN], uint8_t next[WC_KEY_LEN])
{
	return wc_hkdf(NULL, 0, cur, WC_KEY_LEN, LABEL_REKEY, next, WC_KEY_LEN);
}

int wire_dir_init(struct wire_dir *d, const struct wire_dir_keys *k, unsigned epoch_shift)
{
	memset(d, 0, sizeof(*d));
	d->epoch_shift = epoch_shift > 0 && epoch_shift < 62 ? epoch_shift : WIRE_EPOCH_SHIFT;
	memcpy(d->key, k->key, WC_KEY_LEN);
	memcpy(d->iv, k->iv, WC_NONCE_LEN);
	d->aead = wc_aead_new(d->key);
	d->mask = wc_mask_new(k->hp);
	if (d->aead == NULL || d->mask == NULL) {
		wire_dir_clear(d);
		return -1;
	}
	return 0;
}

void wire_dir_clear(struct wire_dir *d)
{
	wc_aead_free(d->aead);
	wc_aead_free(d->prev);
	wc_mask_free(d->mask);
	wc_wipe(d, sizeof(*d));
}

/* Move to the next epoch's key. */
static int advance_epoch(struct wire_dir *d, int keep_prev)
{
	uint8_t k[WC_KEY_LEN];
	struct wc_aead *a;

	if (next_key(d->key, k) < 0 || (a = wc_aead_new(k)) == NULL) {
		wc_wipe(k, sizeof(k));
		return -1;
	}
	wc_aead_free(d->prev);
	d->prev = NULL;
	if (keep_prev)
		d->prev = d->aead;
	else
		wc_aead_free(d->aead);
	d->aead = a;
	memcpy(d->key, k, WC_KEY_LEN);
	wc_wipe(k, sizeof(k));
	d->epoch++;
	return 0;
}

ssize_t wire_seal_packet(struct wire_dir *d, const uint8_t *pkt, size_t len,
                         size_t padlen, uint8_t *out)
{
	uint8_t nonce[WC_NONCE_LEN], mask[8];
	uint8_t *body = out + 8;
	size_t ptlen = len + padlen + 2;
	uint64_t seq = d->next_seq;

	if (seq >= WIRE_SEQ_LIMIT || padlen > 0xffff)
		return -1;
	while ((seq >> d->epoch_shift) > d->epoch)
		if (advance_epoch(d, 0) < 0)
			return -1;
	/*
	 * plaintext: packet | zero padding | padding length (all encrypted).
	 * The packet is encrypted from where it is into out; a packet that
	 * overlaps out other than exactly in place is moved first.
	 */
	if (body != pkt && pkt < body + len && body < pkt + len) {
		memmove(body, pkt, len);
		pkt = body;
	}
	memset(body + len, 0, padlen);
	put_u16be(body + len + padlen, (uint16_t)padlen);
	make_nonce(d->iv, seq, nonce);
	if ((pkt == body ? wc_aead_ctx_seal(d->aead, nonce, body, ptlen, body)
	                 : wc_aead_ctx_seal_tail(d->aead, nonce, pkt, len, padlen + 2, body)) < 0)
		return -1;
	if (wc_mask_get(d->mask, body + ptlen, mask, sizeof(mask)) < 0)
		return -1;
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(seq >> (56 - 8 * i)) ^ mask[i];
	d->next_seq = seq + 1;
	return (ssize_t)(8 + ptlen + WC_TAG_LEN);
}

static int replay_seen(const struct wire_dir *d, uint64_t seq)
{
	if (seq >= d->top)
		return 0;
	if (d->top - seq > WIRE_REPLAY_WINDOW)
		return 1;   /* too old to tell: treat as a replay */
	return (d->bitmap[(seq / 64) % (WIRE_REPLAY_WINDOW / 64)] >> (seq % 64)) & 1;
}

static void replay_mark(struct wire_dir *d, uint64_t seq)
{
	if (seq >= d->top) {
		uint64_t gap = seq + 1 - d->top;

		if (gap >= WIRE_REPLAY_WINDOW) {
			memset(d->bitmap, 0, sizeof(d->bitmap));
		} else {
			for (uint64_t s = d->top; s <= seq; s++)
				d->bitmap[(s / 64) % (WIRE_REPLAY_WINDOW / 64)] &= ~(1ULL << (s % 64));
		}
		d->top = seq + 1;
	}
	d->bitmap[(seq / 64) % (WIRE_REPLAY_WINDOW / 64)] |= 1ULL << (seq % 64);
}

int wire_packet_plausible(struct wire_dir *d, const uint8_t *in, size_t n, int *newest)
{
	uint8_t mask[8];
	uint64_t seq = 0;

	*newest = 0;
	if (n < WIRE_DATA_OVERHEAD + 1 || d->mask == NULL)
		return 0;
	if (wc_mask_get(d->mask, in + n - WC_TAG_LEN, mask, sizeof(mask)) < 0)
		return 0;
	for (int i = 0; i < 8; i++)
		seq = seq << 8 | (uint8_t)(in[i] ^ mask[i]);
	if (seq + WIRE_REPLAY_WINDOW < d->top || seq >= d->top + 65536)
		return 0;
	*newest = seq >= d->top;
	return 1;
}

/*
 * A datagram opened in place that proved not authentic: the cipher has
 * already XORed its keystream over the ciphertext, and XORing it again
 * (encrypting under the same nonce; nothing leaves, so no nonce is reused
 * on the wire) gives the datagram back as it came, for the caller to try
 * as something else (a HELLO).  The tag, which opening leaves alone, is
 * kept aside because sealing writes a new one.
 */
static void restore(struct wc_aead *a, const uint8_t nonce[WC_NONCE_LEN], uint8_t *body,
                    size_t ptlen)
{
	uint8_t tag[WC_TAG_LEN];

	memcpy(tag, body + ptlen, WC_TAG_LEN);
	(void)wc_aead_ctx_seal(a, nonce, body, ptlen, body);
	memcpy(body + ptlen, tag, WC_TAG_LEN);
}

/* out is either a separate buffer or exactly in + 8 (opened in place). */
static ssize_t open_packet(struct wire_dir *d, const uint8_t *in, size_t n, uint8_t *out)
{
	uint8_t mask[8], nonce[WC_NONCE_LEN], k[WC_KEY_LEN];
	uint64_t seq = 0, e;
	size_t ptlen, padlen;
	struct wc_aead *a, *fresh = NULL;
	int r;

	if (n < WIRE_DATA_OVERHEAD + 1)
		return -1;
	if (wc_mask_get(d->mask, in + n - WC_TAG_LEN, mask, sizeof(mask)) < 0)
		return -1;
	for (int i = 0; i < 8; i++)
		seq = seq << 8 | (uint8_t)(in[i] ^ mask[i]);
	if (seq >= WIRE_SEQ_LIMIT)
		return -1;
	if (replay_seen(d, seq))
		return WIRE_REPLAY;
	e = seq >> d->epoch_shift;
	if (e == d->epoch) {
		a = d->aead;
	} else if (e + 1 == d->epoch && d->prev != NULL) {
		a = d->prev;
	} else if (e == d->epoch + 1) {
		/* The peer rolled its key; use the next one, commit if authentic. */
		if (next_key(d->key, k) < 0 || (fresh = wc_aead_new(k)) == NULL) {
			wc_wipe(k, sizeof(k));
			return -1;
		}
		wc_wipe(k, sizeof(k));
		a = fresh;
	} else {
		return -1;
	}
	ptlen = n - 8 - WC_TAG_LEN;
	make_nonce(d->iv, seq, nonce);
	if ((r = wc_aead_ctx_open(a, nonce, in + 8, n - 8, out)) < 0) {
		if (out == in + 8 && r == -1)
			restore(a, nonce, out, ptlen);
		wc_aead_free(fresh);
		return -1;
	}
	padlen = get_u16be(out + ptlen - 2);
	if (padlen + 2 > ptlen) {
		if (out == in + 8)
			restore(a, nonce, out, ptlen);
		wc_aead_free(fresh);
		return -1;   /* authentic but malformed: a bug in the peer */
	}
	if (fresh != NULL) {
		wc_aead_free(fresh);
		if (advance_epoch(d, 1) < 0)
			return -1;
	}
	replay_mark(d, seq);
	return (ssize_t)(ptlen - 2 - padlen);
}

int wire_packet_authentic(struct wire_dir *d, const uint8_t *in, size_t n, uint8_t *out)
{
	uint8_t mask[8], nonce[WC_NONCE_LEN];
	uint64_t seq = 0, e;
	struct wc_aead *a;

	if (n < WIRE_DATA_OVERHEAD + 1 || d->mask == NULL ||
	    wc_mask_get(d->mask, in + n - WC_TAG_LEN, mask, sizeof(mask)) < 0)
		return 0;
	for (int i = 0; i < 8; i++)
		seq = seq << 8 | (uint8_t)(in[i] ^ mask[i]);
	/* Only what the window still covers: older numbers say nothing new. */
	if (seq >= WIRE_SEQ_LIMIT || seq >= d->top || seq + WIRE_REPLAY_WINDOW < d->top)
		return 0;
	e = seq >> d->epoch_shift;
	if (e == d->epoch)
		a = d->aead;
	else if (e + 1 == d->epoch && d->prev != NULL)
		a = d->prev;
	else
		return 0;
	make_nonce(d->iv, seq, nonce);
	return wc_aead_ctx_open(a, nonce, in + 8, n - 8, out) == 0;
}

ssize_t wire_open_packet(struct wire_dir *d, const uint8_t *in, size_t n, uint8_t *out)
{
	return open_packet(d, in, n, out);
}

ssize_t wire_open_packet_inplace(struct wire_dir *d, uint8_t *in, size_t n,
                                 const uint8_t **pkt)
{
	ssize_t r = open_packet(d, in, n, in + 8);

	*pkt = r >= 0 ? in + 8 : NULL;
	return r;
}
