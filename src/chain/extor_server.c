/*
 * Extended ORPort server side (ext-orport-spec), for the combiner's
 * children: they believe they talk to tor.  SAFE_COOKIE only.
 *
 *   us    -> child  0x01 0x00                    (auth types)
 *   child -> us     0x01, ClientNonce[32]
 *   us    -> child  ServerHash[32], ServerNonce[32]
 *   child -> us     ClientHash[32]
 *   us    -> child  1 (or 0, and close)
 *   child -> us     commands (USERADDR, TRANSPORT, ...) up to DONE
 * Then the caller answers OKAY or DENY.
 */
#include "chain/chain.h"

#include <string.h>
#include <openssl/crypto.h>

#include "util/bytes.h"

#define MAX_COMMANDS 16

void extor_server_init(struct extor_server *st, const uint8_t cookie[EXTOR_COOKIE_LEN],
                       const uint8_t nonce[EXTOR_NONCE_LEN], uint8_t greeting[2])
{
	memset(st, 0, sizeof(*st));
	memcpy(st->cookie, cookie, EXTOR_COOKIE_LEN);
	memcpy(st->server_nonce, nonce, EXTOR_NONCE_LEN);
	st->phase = EXTOR_SRV_AUTH_TYPE;
	greeting[0] = EXTOR_AUTH_SAFE_COOKIE;
	greeting[1] = 0;
}

static int srv_fail(struct extor_server *st, const char *why)
{
	st->phase = EXTOR_SRV_FAILED;
	st->error = why;
	return EXTOR_ERROR;
}

/* A printable body without NULs, as text; -1 if it is not one. */
static int body_text(const uint8_t *b, size_t n, char *out, size_t outlen)
{
	if (n >= outlen)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (b[i] < 0x20 || b[i] >= 0x7f)
			return -1;
	memcpy(out, b, n);
	out[n] = '\0';
	return 0;
}

int extor_server_step(struct extor_server *st, const uint8_t *in, size_t n,
                      size_t *used, uint8_t *out, size_t *outlen)
{
	size_t off = 0;

	*used = 0;
	*outlen = 0;
	for (;;) {
		switch (st->phase) {
		case EXTOR_SRV_AUTH_TYPE:
			if (n - off < 1)
				goto more;
			if (in[off++] != EXTOR_AUTH_SAFE_COOKIE) {
				*used = off;
				return srv_fail(st, "the child chose an authentication type "
				                "other than SAFE_COOKIE");
			}
			st->phase = EXTOR_SRV_CLIENT_NONCE;
			continue;
		case EXTOR_SRV_CLIENT_NONCE:
			if (n - off < EXTOR_NONCE_LEN)
				goto more;
			memcpy(st->client_nonce, in + off, EXTOR_NONCE_LEN);
			off += EXTOR_NONCE_LEN;
			if (extor_hash(st->cookie, 1, st->client_nonce, st->server_nonce, out) < 0) {
				*used = off;
				return srv_fail(st, "HMAC computation failed");
			}
			memcpy(out + EXTOR_HASH_LEN, st->server_nonce, EXTOR_NONCE_LEN);
			*outlen = EXTOR_HASH_LEN + EXTOR_NONCE_LEN;
			st->phase = EXTOR_SRV_CLIENT_HASH;
			continue;
		case EXTOR_SRV_CLIENT_HASH: {
			uint8_t expect[EXTOR_HASH_LEN];
			int ok;

			if (n - off < EXTOR_HASH_LEN)
				goto more;
			if (extor_hash(st->cookie, 0, st->client_nonce, st->server_nonce, expect) < 0) {
				*used = off + EXTOR_HASH_LEN;
				return srv_fail(st, "HMAC computation failed");
			}
			ok = CRYPTO_memcmp(expect, in + off, EXTOR_HASH_LEN) == 0;
			off += EXTOR_HASH_LEN;
			out[(*outlen)++] = ok ? 1 : 0;
			if (!ok) {
				*used = off;
				return srv_fail(st, "the child's hash does not match our cookie "
				                "(wrong auth cookie file)");
			}
			st->phase = EXTOR_SRV_COMMANDS;
			continue;
		}
		case EXTOR_SRV_COMMANDS: {
			uint16_t type, len;
			const uint8_t *body;

			if (n - off < 4)
				goto more;
			type = get_u16be(in + off);
			len = get_u16be(in + off + 2);
			if (len > 512) {
				*used = off;
				return srv_fail(st, "Extended ORPort command too long");
			}
			if (n - off - 4 < len)
				goto more;
			body = in + off + 4;
			off += 4 + (size_t)len;
			if (++st->commands > MAX_COMMANDS) {
				*used = off;
				return srv_fail(st, "too many Extended ORPort commands");
			}
			if (type == EXTOR_CMD_USERADDR &&
			    body_text(body, len, st->useraddr, sizeof(st->useraddr)) < 0) {
				*used = off;
				return srv_fail(st, "malformed USERADDR");
			}
			if (type == EXTOR_CMD_TRANSPORT &&
			    (body_text(body, len, st->transport, sizeof(st->transport)) < 0 ||
			     !chain_is_identifier(st->transport))) {
				*used = off;
				return srv_fail(st, "malformed TRANSPORT");
			}
			if (type == EXTOR_CMD_DONE) {
				*used = off;
				st->phase = EXTOR_SRV_DONE;
				return EXTOR_OKAY;
			}
			continue;     /* unknown commands are ignored, as tor does */
		}
		case EXTOR_SRV_DONE:
			*used = off;
			return EXTOR_OKAY;
		default:
			*used = off;
			return srv_fail(st, st->error != NULL ? st->error : "Extended ORPort failure");
		}
	}
more:
	*used = off;
	return EXTOR_NEED_MORE;
}
