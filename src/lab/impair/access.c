/*
 * Who may call the impair REST API (api.c has the why): pure checks of the
 * Host, Origin, Content-Type and Authorization headers, and the parser of
 * the --api-token file.  Strings in, verdicts out; unit-tested in
 * tests/unit/test_impair_access.c.
 */
#include "lab/impair/impair_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int impair_access_json(const char *content_type)
{
	static const char want[] = "application/json";
	const char *p = content_type;
	size_t n = sizeof(want) - 1;

	if (p == NULL)
		return 0;
	p += strspn(p, " \t");
	if (strncasecmp(p, want, n) != 0)
		return 0;
	p += n;
	p += strspn(p, " \t");
	return *p == '\0' || *p == ';';
}

int impair_access_host(const char *host, const char *local, uint16_t port, int loopback)
{
	const char *colon = strrchr(local, ':');
	size_t n = colon ? (size_t)(colon - local) : strlen(local);
	char alt[32];

	if (host == NULL)
		return 0;
	if (strcasecmp(host, local) == 0)
		return 1;
	/* Port 80 may be left out, as browsers do. */
	if (port == 80 && strlen(host) == n && strncasecmp(host, local, n) == 0)
		return 1;
	if (!loopback)
		return 0;
	/* No page can make "localhost" name another host; a rebound name is refused. */
	snprintf(alt, sizeof(alt), "localhost:%u", port);
	return strcasecmp(host, alt) == 0 || (port == 80 && strcasecmp(host, "localhost") == 0);
}

int impair_access_origin(const char *origin, const char *local, uint16_t port, int loopback)
{
	if (origin == NULL)
		return 1;   /* not a browser's cross-origin request */
	return strncasecmp(origin, "http://", 7) == 0 &&
	       impair_access_host(origin + 7, local, port, loopback);
}

/* Equal, in a time that does not depend on where they differ. */
static int access_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char d = alen != blen;

	for (size_t i = 0; i < alen && i < blen; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

int impair_access_bearer(const char *authorization, const char *token)
{
	const char *p = authorization;

	if (token == NULL)
		return 1;
	if (p == NULL || strncasecmp(p, "Bearer ", 7) != 0)
		return 0;
	p += 7;
	p += strspn(p, " ");
	return access_equal(p, strlen(p), token, strlen(token));
}

int impair_access_token_parse(const char *text, size_t n, char *out, size_t outlen,
                              char *err, size_t errlen)
{
	size_t k = 0;

	/* The first line; a trailing CR or blanks are the editor's, not the token's. */
	while (k < n && text[k] != '\n')
		k++;
	while (k > 0 && (text[k - 1] == '\r' || text[k - 1] == ' ' || text[k - 1] == '\t'))
		k--;
	if (k < IMPAIR_TOKEN_MIN) {
		snprintf(err, errlen, "the token must be at least %d characters on the first line",
		         IMPAIR_TOKEN_MIN);
		return -1;
	}
	if (k > IMPAIR_TOKEN_MAX || k >= outlen) {
		snprintf(err, errlen, "the token must be at most %d characters", IMPAIR_TOKEN_MAX);
		return -1;
	}
	for (size_t i = 0; i < k; i++) {
		if (text[i] < 0x21 || text[i] > 0x7e) {
			snprintf(err, errlen, "the token may hold only printable ASCII without "
			         "spaces (character %zu is not)", i + 1);
			return -1;
		}
	}
	memcpy(out, text, k);
	out[k] = '\0';
	return 0;
}
