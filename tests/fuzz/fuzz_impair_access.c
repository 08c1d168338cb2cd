/*
 * libFuzzer harness for who may call the impair REST API
 * (src/lab/impair/access.c): the Host, Origin, Content-Type and
 * Authorization headers a client sends, and the --api-token file.
 *
 * Input: byte 0 selects what the rest is (0 Host, 1 Origin, 2 Content-Type,
 * 3 Authorization, else a token file).  Header values are NUL-terminated
 * at the first NUL, as evhttp hands them over.  Properties: the local
 * address itself is always admitted, every admitted Host is one of the few
 * spellings of it, and a parsed token is 16..256 printable bytes that
 * the Authorization check then accepts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lab/impair/impair_internal.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char local4[] = "127.0.0.1:8080", local6[] = "[::1]:80";

static int spelled_as_local(const char *h)
{
	return strcasecmp(h, local4) == 0 || strcasecmp(h, "localhost:8080") == 0 ||
	       strcasecmp(h, local6) == 0 || strcasecmp(h, "[::1]") == 0 ||
	       strcasecmp(h, "localhost:80") == 0 || strcasecmp(h, "localhost") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char v[1024], tok[IMPAIR_TOKEN_MAX + 1], auth[IMPAIR_TOKEN_MAX + 16], err[160];
	size_t n;

	if (size == 0)
		return 0;
	n = size - 1 < sizeof(v) - 1 ? size - 1 : sizeof(v) - 1;
	memcpy(v, data + 1, n);
	v[n] = '\0';
	switch (data[0]) {
	case 0:
		CHECK(impair_access_host(local4, local4, 8080, 1));
		if (impair_access_host(v, local4, 8080, 1))
			CHECK(spelled_as_local(v));
		if (impair_access_host(v, local6, 80, 1))
			CHECK(spelled_as_local(v));
		if (impair_access_host(v, local4, 8080, 0))
			CHECK(strcasecmp(v, local4) == 0);
		break;
	case 1:
		if (impair_access_origin(v, local4, 8080, 1))
			CHECK(strncasecmp(v, "http://", 7) == 0 && spelled_as_local(v + 7));
		break;
	case 2:
		if (impair_access_json(v))
			CHECK(strcasestr(v, "application/json") != NULL);
		break;
	case 3:
		CHECK(impair_access_bearer(v, NULL));
		(void)impair_access_bearer(v, "0123456789abcdef");
		break;
	default:
		if (impair_access_token_parse((const char *)data + 1, size - 1, tok, sizeof(tok), err,
		                              sizeof(err)) == 0) {
			size_t k = strlen(tok);

			CHECK(k >= IMPAIR_TOKEN_MIN && k <= IMPAIR_TOKEN_MAX);
			for (size_t i = 0; i < k; i++)
				CHECK(tok[i] > 0x20 && tok[i] < 0x7f);
			strcpy(auth, "Bearer ");
			strcat(auth, tok);
			CHECK(impair_access_bearer(auth, tok));
			auth[strlen(auth) - 1] ^= 1;
			CHECK(!impair_access_bearer(auth, tok));
		} else {
			CHECK(err[0] != '\0');
		}
		break;
	}
	return 0;
}
