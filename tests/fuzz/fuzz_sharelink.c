/*
 * libFuzzer harness for share links (util/sharelink.c).  Besides memory
 * safety: whatever parses must format, and the formatted link must parse
 * back to the same struct (so a link the client accepts is one keygen
 * could have printed), and must not be longer than the limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/sharelink.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sharelink a, b;
	static char buf[SHARELINK_MAX_LEN + 1];
	const char *err;
	int n;

	if (sharelink_parse((const char *)data, size, &a, &err) < 0) {
		CHECK(err != NULL);
		return 0;
	}
	CHECK(a.npaths >= 1 && a.npaths <= SHARELINK_MAX_PATHS);
	n = sharelink_format(&a, buf, sizeof(buf));
	CHECK(n > 0 && (size_t)n <= SHARELINK_MAX_LEN);
	CHECK(sharelink_parse(buf, (size_t)n, &b, &err) == 0);
	CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	return 0;
}
