/*
 * Extended ORPort client (tor's ext-orport-spec): SAFE_COOKIE
 * authentication, then USERADDR, TRANSPORT and DONE, then OKAY or DENY.
 * A pure state machine like the SOCKS parser: bytes from tor in, bytes to
 * send out, no I/O, so it is unit-tested with fixed vectors and fuzzed.
 */
#ifndef SCTPT_PT_EXTOR_H
#define SCTPT_PT_EXTOR_H

#include <stddef.h>
#include <stdint.h>

#define EXTOR_COOKIE_LEN 32
#define EXTOR_COOKIE_FILE_LEN 64
#define EXTOR_NONCE_LEN 32
#define EXTOR_HASH_LEN 32
#define EXTOR_OUT_MAX 600       /* most bytes one step asks us to send */

/* Command and reply codes. */
#define EXTOR_CMD_DONE 0x0000
#define EXTOR_CMD_USERADDR 0x0001
#define EXTOR_CMD_TRANSPORT 0x0002
#define EXTOR_REPLY_OKAY 0x1000
#define EXTOR_REPLY_DENY 0x1001

#define EXTOR_AUTH_SAFE_COOKIE 0x01

enum extor_result {
	EXTOR_ERROR = -1,       /* protocol or authentication failure: close */
	EXTOR_NEED_MORE = 0,
	EXTOR_OKAY = 1,         /* tor accepted: relay from here on */
	EXTOR_DENIED = 2,       /* tor refused this connection */
};

enum extor_phase {
	EXTOR_PHASE_AUTH_TYPES = 0,
	EXTOR_PHASE_SERVER_HASH,
	EXTOR_PHASE_AUTH_RESULT,
	EXTOR_PHASE_REPLY,
	EXTOR_PHASE_DONE,
	EXTOR_PHASE_FAILED,
};

struct extor_client {
	enum extor_phase phase;
	uint8_t cookie[EXTOR_COOKIE_LEN];
	uint8_t client_nonce[EXTOR_NONCE_LEN];
	char useraddr[64];          /* "1.2.3.4:5678" or "[v6]:port"; may be empty */
	char transport[64];
	size_t types_seen;          /* auth type bytes read so far */
	int has_safe_cookie;
	unsigned replies_skipped;
	const char *error;          /* static reason on EXTOR_ERROR / EXTOR_DENIED */
};

/*
 * Start a client.  nonce is 32 random bytes (injected for tests);
 * useraddr may be NULL or empty to send no USERADDR.  transport must be a
 * C identifier.  0, or -1 if an argument is unusable.
 */
int extor_client_init(struct extor_client *st, const uint8_t cookie[EXTOR_COOKIE_LEN],
                      const uint8_t nonce[EXTOR_NONCE_LEN], const char *useraddr,
                      const char *transport);

/*
 * Feed bytes from tor.  *used gets how many were consumed (whole fields
 * only), out (EXTOR_OUT_MAX bytes) the bytes to send now and *outlen their
 * count.  Returns enum extor_result.
 */
int extor_client_step(struct extor_client *st, const uint8_t *in, size_t n,
                      size_t *used, uint8_t *out, size_t *outlen);

/* Extract the cookie from the contents of tor's cookie file.  0 or -1. */
int extor_cookie_parse(const uint8_t *buf, size_t len, uint8_t cookie[EXTOR_COOKIE_LEN]);

/*
 * The SAFE_COOKIE hashes (exposed for the unit tests' fixed vectors):
 * server_to_client selects which of the spec's two labels is used.
 */
int extor_hash(const uint8_t cookie[EXTOR_COOKIE_LEN], int server_to_client,
               const uint8_t client_nonce[EXTOR_NONCE_LEN],
               const uint8_t server_nonce[EXTOR_NONCE_LEN], uint8_t out[EXTOR_HASH_LEN]);

/* Append one command (type, body) to out; returns bytes written or 0 if no room. */
size_t extor_command(uint16_t type, const uint8_t *body, size_t len,
                     uint8_t *out, size_t outlen);

#endif
