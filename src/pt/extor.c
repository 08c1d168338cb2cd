/*
 * Extended ORPort client state machine; see extor.h and ext-orport-spec.
 *
 *   tor -> us   AuthTypes... 0x00
 *   us  -> tor  0x01 (SAFE_COOKIE), ClientNonce[32]
 *   tor -> us   ServerHash[32], ServerNonce[32]
 *   us  -> tor  ClientHash[32]                 (after checking ServerHash)
 *   tor -> us   status: 1 ok, 0 fail
 *   us  -> tor  USERADDR, TRANSPORT, DONE      (type[2] len[2] body)
 *   tor -> us   OKAY or DENY                   (same framing)
 */
#include "pt/extor.h"

#include <string.h>
#include <openssl/crypto.h>

#include "util/bytes.h"
#include "crypto/crypto.h"

#define COOKIE_HEADER "! Extended ORPort Auth Cookie !\x0a"
#define LABEL_S2C "ExtORPort authentication server-to-client hash"
#define LABEL_C2S "ExtORPort authentication client-to-server hash"
#define MAX_AUTH_TYPES 256
#define MAX_SKIPPED_REPLIES 16

static int is_identifier(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

int extor_client_init(struct extor_client *st, const uint8_t cookie[EXTOR_COOKIE_LEN],
                      const uint8_t nonce[EXTOR_NONCE_LEN], const char *useraddr,
                      const char *transport)
{
	memset(st, 0, sizeof(*st));
	if (transport == NULL || strlen(transport) >= sizeof(st->transport) ||
	    !is_identifier(transport))
		return -1;
	if (useraddr != NULL && strlen(useraddr) >= sizeof(st->useraddr))
		return -1;
	memcpy(st->cookie, cookie, EXTOR_COOKIE_LEN);
	memcpy(st->client_nonce, nonce, EXTOR_NONCE_LEN);
	if (useraddr != NULL)
		strcpy(st->useraddr, useraddr);
	strcpy(st->transport, transport);
	st->phase = EXTOR_PHASE_AUTH_TYPES;
	return 0;
}

int extor_hash(const uint8_t cookie[EXTOR_COOKIE_LEN], int server_to_client,
               const uint8_t client_nonce[EXTOR_NONCE_LEN],
               const uint8_t server_nonce[EXTOR_NONCE_LEN], uint8_t out[EXTOR_HASH_LEN])
{
	uint8_t msg[sizeof(LABEL_S2C) - 1 + 2 * EXTOR_NONCE_LEN];
	const char *label = server_to_client ? LABEL_S2C : LABEL_C2S;
	size_t ll = strlen(label);

	/* Both labels have the same length. */
	memcpy(msg, label, ll);
	memcpy(msg + ll, client_nonce, EXTOR_NONCE_LEN);
	memcpy(msg + ll + EXTOR_NONCE_LEN, server_nonce, EXTOR_NONCE_LEN);
	return wc_hmac_sha256(cookie, EXTOR_COOKIE_LEN, msg, ll + 2 * EXTOR_NONCE_LEN, out);
}

size_t extor_command(uint16_t type, const uint8_t *body, size_t len,
                     uint8_t *out, size_t outlen)
{
	if (len > 0xffff || outlen < 4 || len > outlen - 4)
		return 0;
	put_u16be(out, type);
	put_u16be(out + 2, (uint16_t)len);
	if (len > 0)
		memcpy(out + 4, body, len);
	return 4 + len;
}

int extor_cookie_parse(const uint8_t *buf, size_t len, uint8_t cookie[EXTOR_COOKIE_LEN])
{
	size_t hl = sizeof(COOKIE_HEADER) - 1;

	if (len != EXTOR_COOKIE_FILE_LEN || memcmp(buf, COOKIE_HEADER, hl) != 0)
		return -1;
	memcpy(cookie, buf + hl, EXTOR_COOKIE_LEN);
	return 0;
}

static int fail(struct extor_client *st, const char *why)
{
	st->phase = EXTOR_PHASE_FAILED;
	st->error = why;
	return EXTOR_ERROR;
}

int extor_client_step(struct extor_client *st, const uint8_t *in, size_t n,
                      size_t *used, uint8_t *out, size_t *outlen)
{
	size_t off = 0;

	*used = 0;
	*outlen = 0;
	for (;;) {
		switch (st->phase) {
		case EXTOR_PHASE_AUTH_TYPES:
			while (off < n) {
				uint8_t t = in[off++];

				if (t == 0) {
					if (!st->has_safe_cookie) {
						*used = off;
						return fail(st, "the Extended ORPort does not offer "
						            "SAFE_COOKIE authentication");
					}
					out[0] = EXTOR_AUTH_SAFE_COOKIE;
					memcpy(out + 1, st->client_nonce, EXTOR_NONCE_LEN);
					*outlen = 1 + EXTOR_NONCE_LEN;
					st->phase = EXTOR_PHASE_SERVER_HASH;
					break;
				}
				if (t == EXTOR_AUTH_SAFE_COOKIE)
					st->has_safe_cookie = 1;
				if (++st->types_seen > MAX_AUTH_TYPES) {
					*used = off;
					return fail(st, "too many authentication types offered");
				}
			}
			if (st->phase == EXTOR_PHASE_AUTH_TYPES) {
				*used = off;
				return EXTOR_NEED_MORE;
			}
			continue;
		case EXTOR_PHASE_SERVER_HASH: {
			uint8_t expect[EXTOR_HASH_LEN], client_hash[EXTOR_HASH_LEN];
			const uint8_t *server_hash, *server_nonce;

			if (n - off < EXTOR_HASH_LEN + EXTOR_NONCE_LEN) {
				*used = off;
				return EXTOR_NEED_MORE;
			}
			server_hash = in + off;
			server_nonce = in + off + EXTOR_HASH_LEN;
			off += EXTOR_HASH_LEN + EXTOR_NONCE_LEN;
			*used = off;
			if (extor_hash(st->cookie, 1, st->client_nonce, server_nonce, expect) < 0)
				return fail(st, "HMAC computation failed");
			if (CRYPTO_memcmp(expect, server_hash, EXTOR_HASH_LEN) != 0)
				return fail(st, "the Extended ORPort's hash does not match our "
				            "cookie (wrong or stale auth cookie file)");
			if (extor_hash(st->cookie, 0, st->client_nonce, server_nonce, client_hash) < 0)
				return fail(st, "HMAC computation failed");
			memcpy(out + *outlen, client_hash, EXTOR_HASH_LEN);
			*outlen += EXTOR_HASH_LEN;
			st->phase = EXTOR_PHASE_AUTH_RESULT;
			continue;
		}
		case EXTOR_PHASE_AUTH_RESULT: {
			size_t o;

			if (n - off < 1) {
				*used = off;
				return EXTOR_NEED_MORE;
			}
			if (in[off++] != 1) {
				*used = off;
				return fail(st, "the Extended ORPort rejected our authentication");
			}
			o = *outlen;
			if (st->useraddr[0] != '\0')
				o += extor_command(EXTOR_CMD_USERADDR, (const uint8_t *)st->useraddr,
				                   strlen(st->useraddr), out + o, EXTOR_OUT_MAX - o);
			o += extor_command(EXTOR_CMD_TRANSPORT, (const uint8_t *)st->transport,
			                   strlen(st->transport), out + o, EXTOR_OUT_MAX - o);
			o += extor_command(EXTOR_CMD_DONE, NULL, 0, out + o, EXTOR_OUT_MAX - o);
			*outlen = o;
			st->phase = EXTOR_PHASE_REPLY;
			continue;
		}
		case EXTOR_PHASE_REPLY: {
			uint16_t type, len;

			if (n - off < 4) {
				*used = off;
				return EXTOR_NEED_MORE;
			}
			type = get_u16be(in + off);
			len = get_u16be(in + off + 2);
			if (n - off - 4 < len) {
				*used = off;
				return EXTOR_NEED_MORE;
			}
			off += 4 + (size_t)len;
			*used = off;
			if (type == EXTOR_REPLY_OKAY) {
				st->phase = EXTOR_PHASE_DONE;
				return EXTOR_OKAY;
			}
			if (type == EXTOR_REPLY_DENY) {
				st->phase = EXTOR_PHASE_FAILED;
				st->error = "the Extended ORPort denied the connection";
				return EXTOR_DENIED;
			}
			/* Unknown replies are skipped, a few at most. */
			if (++st->replies_skipped > MAX_SKIPPED_REPLIES)
				return fail(st, "too many unknown Extended ORPort replies");
			continue;
		}
		case EXTOR_PHASE_DONE:
			*used = off;
			return EXTOR_OKAY;
		default:
			*used = off;
			return fail(st, st->error != NULL ? st->error : "Extended ORPort failure");
		}
	}
}
