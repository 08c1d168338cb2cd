/*
 * TCP carrier framing: the masked 2-byte lengths of docs/PROTOCOL.md "TCP
 * carrier".  See tcpframe.h; all the state is the two keystream positions.
 */
#include "carrier/tcpframe.h"

#include <string.h>
#include <openssl/crypto.h>

#include "crypto/crypto.h"
#include "util/bytes.h"

int tcpframe_init(struct tcpframe *f, const uint8_t frame_key[32],
                  const uint8_t nonce[TCPFRAME_NONCE_LEN], int server, size_t max)
{
	static const uint8_t salt[] = "sctpt tcp frame v1";
	uint8_t info[TCPFRAME_NONCE_LEN + 3], c2s[32], s2c[32];
	int r;

	memset(f, 0, sizeof(*f));
	f->max = max == 0 || max > TCPFRAME_MAX ? TCPFRAME_MAX : max;
	memcpy(info, nonce, TCPFRAME_NONCE_LEN);
	memcpy(info + TCPFRAME_NONCE_LEN, "c2s", 3);
	r = wc_hkdf(salt, sizeof(salt) - 1, frame_key, 32, info, sizeof(info), c2s, 32);
	memcpy(info + TCPFRAME_NONCE_LEN, "s2c", 3);
	if (r == 0)
		r = wc_hkdf(salt, sizeof(salt) - 1, frame_key, 32, info, sizeof(info), s2c, 32);
	if (r == 0) {
		f->rx.mask = wc_mask_new(server ? c2s : s2c);
		f->tx.mask = wc_mask_new(server ? s2c : c2s);
		if (f->rx.mask == NULL || f->tx.mask == NULL)
			r = -1;
	}
	wc_wipe(c2s, sizeof(c2s));
	wc_wipe(s2c, sizeof(s2c));
	if (r < 0) {
		tcpframe_clear(f);
		return -1;
	}
	f->keyed = 1;
	return 0;
}

void tcpframe_clear(struct tcpframe *f)
{
	wc_mask_free(f->rx.mask);
	wc_mask_free(f->tx.mask);
	wc_wipe(f, sizeof(*f));
}

/*
 * The two keystream bytes at the current position, without moving it.
 * Block i is ChaCha20 under the direction key with u32be(i) | u32be(i >> 32)
 * | 0[8] as its 16-byte counter and nonce.
 */
static int ks_peek(struct tcpframe_ks *ks, uint8_t out[2])
{
	for (int i = 0; i < 2; i++) {
		uint64_t pos = ks->pos + (uint64_t)i, block = pos / 64;

		if (ks->mask == NULL)
			return -1;
		if (ks->block != block + 1) {
			uint8_t sample[16] = { 0 };

			put_u32be(sample, (uint32_t)block);
			put_u32be(sample + 4, (uint32_t)(block >> 32));
			if (wc_mask_get(ks->mask, sample, ks->cache, 64) < 0) {
				ks->block = 0;
				return -1;
			}
			ks->block = block + 1;
		}
		out[i] = ks->cache[pos % 64];
	}
	return 0;
}

int tcpframe_tx_header(struct tcpframe *f, size_t len, uint8_t hdr[TCPFRAME_HDR_LEN])
{
	uint8_t ks[2];

	if (len == 0 || len > TCPFRAME_MAX || ks_peek(&f->tx, ks) < 0)
		return -1;
	hdr[0] = (uint8_t)(len >> 8) ^ ks[0];
	hdr[1] = (uint8_t)len ^ ks[1];
	return 0;
}

void tcpframe_tx_commit(struct tcpframe *f)
{
	f->tx.pos += TCPFRAME_HDR_LEN;
}

int tcpframe_encode(struct tcpframe *f, const uint8_t *buf, size_t len, uint8_t *out)
{
	if (tcpframe_tx_header(f, len, out) < 0)
		return -1;
	memcpy(out + TCPFRAME_HDR_LEN, buf, len);
	tcpframe_tx_commit(f);
	return 0;
}

enum tcpframe_rc tcpframe_rx_length(struct tcpframe *f, const uint8_t hdr[TCPFRAME_HDR_LEN],
                                    size_t *len)
{
	uint8_t ks[2];
	size_t n;

	if (ks_peek(&f->rx, ks) < 0)
		return TCPFRAME_ERROR;
	n = (size_t)((hdr[0] ^ ks[0]) << 8 | (hdr[1] ^ ks[1]));
	if (n == 0 || n > f->max)
		return TCPFRAME_ERROR;
	*len = n;
	return TCPFRAME_FRAME;
}

void tcpframe_rx_commit(struct tcpframe *f)
{
	f->rx.pos += TCPFRAME_HDR_LEN;
}

enum tcpframe_rc tcpframe_decode(struct tcpframe *f, const uint8_t *in, size_t avail,
                                 size_t *off, size_t *len)
{
	enum tcpframe_rc rc;
	size_t n = 0;

	if (avail < TCPFRAME_HDR_LEN)
		return TCPFRAME_MORE;
	rc = tcpframe_rx_length(f, in, &n);
	if (rc != TCPFRAME_FRAME)
		return rc;
	if (avail - TCPFRAME_HDR_LEN < n)
		return TCPFRAME_MORE;   /* the length is read again next time */
	tcpframe_rx_commit(f);
	*off = TCPFRAME_HDR_LEN;
	*len = n;
	return TCPFRAME_FRAME;
}

enum tcpframe_rc tcpframe_accept_nonce(struct tcpframe *f, const uint8_t frame_key[32],
                                       const uint8_t *in, size_t avail, size_t max)
{
	if (avail < TCPFRAME_NONCE_LEN)
		return TCPFRAME_MORE;
	return tcpframe_init(f, frame_key, in, 1, max) == 0 ? TCPFRAME_FRAME : TCPFRAME_ERROR;
}

/* ---------- prefix (issue 16, docs/PROTOCOL.md "Prefix") ---------- */

struct wc_hmac *tcpframe_prefix_mac(const uint8_t frame_key[32])
{
	static const uint8_t salt[] = "sctpt tcp prefix";
	uint8_t k[32];
	struct wc_hmac *h = NULL;

	if (wc_hkdf(salt, sizeof(salt) - 1, frame_key, 32, NULL, 0, k, sizeof(k)) == 0)
		h = wc_hmac_new(k, sizeof(k));
	wc_wipe(k, sizeof(k));
	return h;
}

/* tag = the first TCPFRAME_TAG_LEN bytes of HMAC(Kp, prefix | N). */
static int prefix_tag(struct wc_hmac *h, const uint8_t *head, size_t plen,
                      uint8_t tag[TCPFRAME_TAG_LEN])
{
	uint8_t full[WC_HASH_LEN];

	if (wc_hmac_get(h, head, plen + TCPFRAME_NONCE_LEN, full) < 0)
		return -1;
	memcpy(tag, full, TCPFRAME_TAG_LEN);
	return 0;
}

int tcpframe_prefix_head(struct wc_hmac *h, const uint8_t *prefix, size_t plen,
                         const uint8_t nonce[TCPFRAME_NONCE_LEN], uint8_t *out)
{
	if (plen == 0 || plen > TCPFRAME_PREFIX_MAX)
		return -1;
	memcpy(out, prefix, plen);
	memcpy(out + plen, nonce, TCPFRAME_NONCE_LEN);
	if (prefix_tag(h, out, plen, out + plen + TCPFRAME_NONCE_LEN) < 0)
		return -1;
	return (int)(plen + TCPFRAME_NONCE_LEN + TCPFRAME_TAG_LEN);
}

size_t tcpframe_prefix_find(struct wc_hmac *h, const uint8_t *in, size_t avail)
{
	uint8_t tag[TCPFRAME_TAG_LEN];

	for (size_t plen = 1; plen <= TCPFRAME_PREFIX_MAX; plen++) {
		if (plen + TCPFRAME_NONCE_LEN + TCPFRAME_TAG_LEN > avail)
			break;
		if (prefix_tag(h, in, plen, tag) == 0 &&
		    CRYPTO_memcmp(tag, in + plen + TCPFRAME_NONCE_LEN, TCPFRAME_TAG_LEN) == 0)
			return plen;
	}
	return 0;
}
