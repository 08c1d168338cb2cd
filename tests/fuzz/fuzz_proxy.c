/*
 * libFuzzer harness for the upstream proxy client (src/carrier/proxy.c):
 * the SOCKS5, SOCKS4 and HTTP CONNECT reply parsers, and the SOCKS5 UDP
 * datagram header parser.
 *
 * The first input byte picks the protocol, the command, whether the proxy
 * URL has credentials and the destination's family; the rest is what the
 * proxy sends.  Each conversation runs twice, with the proxy's bytes
 * arriving at once and in pieces whose sizes come from the input, and
 * both runs must end alike.  The same bytes are also parsed as a datagram
 * from a SOCKS5 UDP relay.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "carrier/proxy.h"
#include "util/netaddr.h"

/* Fails in release builds too, unlike assert(). */
#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
	struct proxy_neg n;
	int rc;
	size_t used;
	uint8_t sent[4 * PROXY_OUT_MAX];
	size_t sentlen;
};

static void checked_step(struct outcome *o, const uint8_t *in, size_t len)
{
	uint8_t out[PROXY_OUT_MAX];
	size_t used = (size_t)-1, outlen = (size_t)-1;

	o->rc = proxy_neg_step(&o->n, in, len, &used, out, &outlen);
	CHECK(o->rc == PROXY_ERROR || o->rc == PROXY_NEED_MORE || o->rc == PROXY_DONE);
	CHECK(used <= len);
	CHECK(outlen <= PROXY_OUT_MAX);
	if (o->rc == PROXY_ERROR)
		CHECK(used == 0 && outlen == 0);
	/* A whole negotiation sends at most greeting, auth and request. */
	CHECK(o->sentlen + outlen <= sizeof(o->sent));
	memcpy(o->sent + o->sentlen, out, outlen);
	o->sentlen += outlen;
	o->used += used;
}

static int start(struct outcome *o, uint8_t sel)
{
	static const char *const urls[] = {
		"socks5://127.0.0.1:1080", "socks5://user:password@127.0.0.1:1080",
		"socks4a://127.0.0.1:1080", "socks4a://userid@127.0.0.1:1080",
		"http://127.0.0.1:3128", "http://user:password@127.0.0.1:3128",
		"socks5://[::1]:1080", "http://[::1]:3128",
	};
	struct carrier_proxy p;
	struct sockaddr_storage dest;
	socklen_t dlen;
	const char *err;
	uint8_t out[PROXY_OUT_MAX];
	size_t outlen = (size_t)-1;
	enum proxy_cmd cmd = (sel & 0x10) ? PROXY_CMD_UDP_ASSOCIATE : PROXY_CMD_CONNECT;

	CHECK(carrier_proxy_parse(urls[sel & 7], &p, &err) == 0);
	CHECK(netaddr_from_numeric((sel & 0x20) ? "2001:db8::1" : "192.0.2.1", 4433, &dest,
	                           &dlen) == 0);
	memset(o, 0, sizeof(*o));
	o->rc = proxy_neg_init(&o->n, &p, cmd, (struct sockaddr *)&dest, dlen, out, &outlen);
	CHECK(o->rc == PROXY_ERROR || o->rc == PROXY_NEED_MORE);
	CHECK(outlen <= PROXY_OUT_MAX);
	if (o->rc == PROXY_ERROR)
		CHECK(o->n.error != NULL && outlen == 0);
	else
		CHECK(outlen > 0);
	memcpy(o->sent, out, outlen);
	o->sentlen = outlen;
	return o->rc;
}

static void check_final(struct outcome *o, const uint8_t *data, size_t size)
{
	size_t used_before = o->used;
	int rc = o->rc;

	if (rc == PROXY_ERROR) {
		CHECK(o->n.error != NULL && strlen(o->n.error) > 10);
		CHECK(o->n.phase == PROXY_PHASE_FAILED);
	}
	if (rc == PROXY_DONE) {
		CHECK(o->n.phase == PROXY_PHASE_DONE);
		CHECK(o->used <= size);
		if (o->n.type == CARRIER_PROXY_HTTP) {
			/* Ends with the empty line, within the bound. */
			CHECK(o->used <= PROXY_HTTP_HEAD_MAX);
			CHECK(data[o->used - 1] == '\n');
			CHECK(o->n.http_status >= 200 && o->n.http_status <= 299);
		}
		if (o->n.cmd == PROXY_CMD_UDP_ASSOCIATE) {
			const struct sockaddr_in *in = (const struct sockaddr_in *)&o->n.bound;
			const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&o->n.bound;

			CHECK(o->n.bound_len > 0);
			if (o->n.bound.ss_family == AF_INET)
				CHECK(in->sin_port != 0 && in->sin_addr.s_addr != 0);
			else
				CHECK(o->n.bound.ss_family == AF_INET6 && in6->sin6_port != 0 &&
				      memcmp(&in6->sin6_addr, &in6addr_any, 16) != 0);
		}
	}
	/* The end is sticky and consumes nothing more. */
	if (rc != PROXY_NEED_MORE) {
		checked_step(o, (const uint8_t *)"\x05\x00", 2);
		CHECK(o->rc == rc && o->used == used_before);
	}
}

/* Feed everything, calling again while messages keep being consumed. */
static void run_whole(struct outcome *o, const uint8_t *data, size_t size)
{
	while (o->rc == PROXY_NEED_MORE) {
		size_t before = o->used;

		checked_step(o, data + o->used, size - o->used);
		if (o->used == before)
			break;
	}
}

/* Bytes arrive in pieces of 1..16; piece k's size is read from data[k]. */
static void run_split(struct outcome *o, const uint8_t *data, size_t size)
{
	size_t avail = 0, k = 0;

	while (o->rc == PROXY_NEED_MORE) {
		size_t before = o->used;

		checked_step(o, data + o->used, avail - o->used);
		if (o->rc != PROXY_NEED_MORE || o->used != before)
			continue;
		if (avail == size)
			break;
		avail += 1 + data[k++ % size] % 16;
		if (avail > size)
			avail = size;
	}
}

static void check_same(const struct outcome *a, const struct outcome *b)
{
	CHECK(a->rc == b->rc);
	CHECK(a->used == b->used);
	CHECK(a->sentlen == b->sentlen && memcmp(a->sent, b->sent, a->sentlen) == 0);
	CHECK(a->n.phase == b->n.phase);
	if (a->rc == PROXY_ERROR)
		CHECK(strcmp(a->n.error, b->n.error) == 0);
	if (a->rc == PROXY_DONE)
		CHECK(a->n.bound_len == b->n.bound_len &&
		      memcmp(&a->n.bound, &b->n.bound, a->n.bound_len) == 0);
}

static void fuzz_udp(const uint8_t *data, size_t size)
{
	struct sockaddr_storage from;
	socklen_t fromlen = 0;
	size_t hl = (size_t)-1;
	int r = socks5_udp_parse(data, size, &from, &fromlen, &hl);

	CHECK(r <= SOCKS5_UDP_OK && r >= SOCKS5_UDP_NAME);
	if (r == SOCKS5_UDP_OK) {
		uint8_t h[SOCKS5_UDP_HDR_MAX];
		size_t k;

		CHECK(hl == 10 || hl == 22);
		CHECK(hl <= size);
		CHECK(proxy_same_addr((struct sockaddr *)&from, (struct sockaddr *)&from));
		/* Our own header for that source reads back the same. */
		k = socks5_udp_header((struct sockaddr *)&from, h);
		CHECK(k == 10 || k == 22);
		if (k == hl)
			CHECK(memcmp(h, data, hl) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct outcome whole, split;

	fuzz_udp(data, size);
	if (size < 1)
		return 0;
	if (start(&whole, data[0]) == PROXY_NEED_MORE) {
		start(&split, data[0]);
		run_whole(&whole, data + 1, size - 1);
		run_split(&split, data + 1, size - 1);
		check_same(&whole, &split);
		check_final(&whole, data + 1, size - 1);
		check_final(&split, data + 1, size - 1);
	}
	proxy_neg_clear(&whole.n);
	proxy_neg_clear(&split.n);
	return 0;
}
