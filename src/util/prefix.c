/* The --prefix syntax; see prefix.h. */
#include "util/prefix.h"

#include <string.h>

struct preset {
	const char *name;
	const char *bytes;
	size_t len;
};

#define PRESET(n, b) { n, b, sizeof(b) - 1 }

/*
 * What common protocols put first.  A preset is the same for everyone who
 * uses it, so it is a fingerprint of its own: docs/PROTOCOL.md says to
 * prefer a per-bridge template.
 */
static const struct preset presets[] = {
	/* TLS 1.0 record, handshake, ClientHello of 508 bytes, client version 1.2 */
	PRESET("tls", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
	PRESET("http-get", "GET / HTTP/1.1\r\n"),
	PRESET("http-post", "POST / HTTP/1.1\r\n"),
	/* DNS query header: recursion desired, one question */
	PRESET("dns", "\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"),
	PRESET("ssh", "SSH-2.0-OpenSSH_9.6\r\n"),
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_hex(const char *s, size_t len, uint8_t *out, const char **err)
{
	if (len == 0 || len % 2 != 0) {
		*err = "hex: needs an even, non-zero number of hex digits";
		return -1;
	}
	if (len / 2 > PREFIX_MAX) {
		*err = "prefix longer than 64 bytes";
		return -1;
	}
	for (size_t i = 0; i < len; i += 2) {
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);

		if (hi < 0 || lo < 0) {
			*err = "hex: holds a character that is no hex digit";
			return -1;
		}
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return (int)(len / 2);
}

static int parse_template(const char *s, size_t len, uint8_t *out, const char **err)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t b;

		if (n == PREFIX_MAX) {
			*err = "prefix longer than 64 bytes";
			return -1;
		}
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) {
			*err = "template holds a byte that is not printable ASCII (use \\xHH)";
			return -1;
		}
		if (s[i] != '\\') {
			out[n++] = (uint8_t)s[i];
			continue;
		}
		if (++i == len) {
			*err = "template ends with a lone backslash";
			return -1;
		}
		switch (s[i]) {
		case '\\': b = '\\'; break;
		case 'r': b = '\r'; break;
		case 'n': b = '\n'; break;
		case 't': b = '\t'; break;
		case 'x': {
			int hi, lo;

			if (len - i < 3 || (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0) {
				*err = "\\x needs exactly two hex digits";
				return -1;
			}
			b = (uint8_t)(hi << 4 | lo);
			i += 2;
			break;
		}
		default:
			*err = "unknown escape in template (\\xHH \\\\ \\r \\n \\t)";
			return -1;
		}
		out[n++] = b;
	}
	if (n == 0) {
		*err = "empty prefix";
		return -1;
	}
	return (int)n;
}

int prefix_parse(const char *spec, size_t len, uint8_t out[PREFIX_MAX], const char **err)
{
	static const char hexp[] = "hex:";

	if (len == 0) {
		*err = "empty prefix";
		return -1;
	}
	if (len > PREFIX_SPEC_MAX || memchr(spec, '\0', len) != NULL) {
		*err = "prefix specification too long or holds a NUL byte";
		return -1;
	}
	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++) {
		if (strlen(presets[i].name) == len && memcmp(presets[i].name, spec, len) == 0) {
			memcpy(out, presets[i].bytes, presets[i].len);
			return (int)presets[i].len;
		}
	}
	if (len >= sizeof(hexp) - 1 && memcmp(spec, hexp, sizeof(hexp) - 1) == 0)
		return parse_hex(spec + 4, len - 4, out, err);
	return parse_template(spec, len, out, err);
}
