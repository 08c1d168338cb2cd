/*
 * libFuzzer harness for the forwarding decoders (docs/forwarding.md): the
 * LISTEN, LISTEN_OK and FWD_OPEN payloads a peer sends (mux/proto.c) and
 * the -L / -R / --permit-listen specifications (util/fwdspec.c).  The
 * first byte picks the decoder.  Besides memory safety: whatever decodes
 * must encode back to the same bytes (the codec is canonical), and an
 * accepted specification must have the fields its kind promises.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mux/proto.h"
#include "util/fwdspec.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void listen_msg(const uint8_t *p, size_t n)
{
	struct mux_listen_req r;
	uint8_t out[MUX_LISTEN_MAX];
	int k;

	if (proto_decode_listen(p, n, &r) < 0)
		return;
	k = proto_encode_listen(&r, out, sizeof(out));
	CHECK(k > 0 && (size_t)k == n && memcmp(out, p, n) == 0);
}

static void fwd_open_msg(const uint8_t *p, size_t n)
{
	struct mux_dest d;
	uint8_t out[MUX_FWD_OPEN_MAX];
	uint32_t id;
	int k;

	if (proto_decode_fwd_open(p, n, &id, &d) < 0)
		return;
	k = proto_encode_fwd_open(id, &d, out, sizeof(out));
	CHECK(k > 0 && (size_t)k == n && memcmp(out, p, n) == 0);
}

static void spec(const uint8_t *p, size_t n)
{
	struct fwd_spec f;
	const char *err = NULL;
	enum fwd_spec_kind kind;
	char *s;

	if (n < 1)
		return;
	kind = (enum fwd_spec_kind)(p[0] % 3);
	s = malloc(n);
	if (s == NULL)
		return;
	memcpy(s, p + 1, n - 1);
	s[n - 1] = '\0';
	if (fwd_spec_parse(s, kind, &f, &err) < 0) {
		CHECK(err != NULL);
	} else {
		CHECK(strlen(f.bind) < sizeof(f.bind) && strlen(f.host) < sizeof(f.host));
		if (kind == FWD_SPEC_LOCAL)
			CHECK(f.host[0] != '\0' && f.hostport != 0);
		if (f.host[0] != '\0')
			CHECK(fwd_host_valid(f.host) && f.hostport != 0);
		if (kind != FWD_SPEC_PERMIT)
			CHECK(!f.any_port);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint16_t port;

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0: listen_msg(data + 1, size - 1); break;
	case 1: fwd_open_msg(data + 1, size - 1); break;
	case 2:
		if (proto_decode_listen_ok(data + 1, size - 1, &port) == 0)
			CHECK(port != 0 && size == 3);
		break;
	default: spec(data + 1, size - 1); break;
	}
	return 0;
}
