/*
 * The wire format of send <-> recv, the pattern, SOCKS5 messages and size
 * parsing: pure functions (flow_internal.h).
 */
#include "lab/flow/flow_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

void flow_hdr_encode(const struct flow_hdr *h, uint8_t out[FLOW_HDR_LEN])
{
	memset(out, 0, FLOW_HDR_LEN);
	memcpy(out, FLOW_MAGIC, 4);
	out[4] = h->mode;
	out[5] = h->flags;
	put32(out + 8, h->stream);
	put64(out + 12, h->seed);
	put64(out + 20, h->length);
	put32(out + 28, h->rpc_req);
	put32(out + 32, h->rpc_resp);
}

int flow_hdr_decode(const uint8_t in[FLOW_HDR_LEN], struct flow_hdr *h, char *err, size_t errlen)
{
	if (memcmp(in, FLOW_MAGIC, 4) != 0) {
		snprintf(err, errlen, "not a sctpt-lab send stream (bad magic)");
		return -1;
	}
	h->mode = in[4];
	h->flags = in[5];
	h->stream = get32(in + 8);
	h->seed = get64(in + 12);
	h->length = get64(in + 20);
	h->rpc_req = get32(in + 28);
	h->rpc_resp = get32(in + 32);
	if (h->mode != FLOW_BULK && h->mode != FLOW_RPC) {
		snprintf(err, errlen, "unknown mode %u", h->mode);
		return -1;
	}
	if ((h->flags & ~FLOW_F_PATTERN) != 0 || in[6] != 0 || in[7] != 0 ||
	    get32(in + 36) != 0) {
		snprintf(err, errlen, "unknown flags");
		return -1;
	}
	if (h->mode == FLOW_RPC && (h->rpc_req < 1 || h->rpc_req > FLOW_RPC_MAX ||
	                            h->rpc_resp < 1 || h->rpc_resp > FLOW_RPC_MAX)) {
		snprintf(err, errlen, "rpc sizes out of range (1..%u)", FLOW_RPC_MAX);
		return -1;
	}
	if (h->mode == FLOW_BULK && (h->rpc_req != 0 || h->rpc_resp != 0)) {
		snprintf(err, errlen, "rpc sizes in a bulk stream");
		return -1;
	}
	return 0;
}

void flow_trailer_encode(const struct flow_trailer *t, uint8_t out[FLOW_TRAILER_LEN])
{
	memcpy(out, FLOW_TRAILER_MAGIC, 4);
	put32(out + 4, t->status);
	put64(out + 8, t->bytes);
	put64(out + 16, t->bad_offset);
	memcpy(out + 24, t->sha256, 32);
}

int flow_trailer_decode(const uint8_t in[FLOW_TRAILER_LEN], struct flow_trailer *t)
{
	if (memcmp(in, FLOW_TRAILER_MAGIC, 4) != 0)
		return -1;
	t->status = get32(in + 4);
	t->bytes = get64(in + 8);
	t->bad_offset = get64(in + 16);
	memcpy(t->sha256, in + 24, 32);
	return t->status > FLOW_BAD_LENGTH ? -1 : 0;
}

/* splitmix64: 8 pattern bytes per 8-byte-aligned word. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t word(uint64_t key, uint64_t idx)
{
	return mix(key ^ mix(idx));
}

static uint64_t pattern_key(uint64_t seed, uint32_t stream)
{
	return mix(seed) ^ ((uint64_t)stream * 0xd1342543de82ef95ULL);
}

void flow_pattern(uint64_t seed, uint32_t stream, uint64_t off, uint8_t *out, size_t n)
{
	uint64_t key = pattern_key(seed, stream);
	size_t i = 0;

	while (i < n) {
		uint64_t w = word(key, (off + i) >> 3);
		unsigned k = (unsigned)((off + i) & 7);

		/* Little-endian bytes of the word, from byte k on. */
		for (; k < 8 && i < n; k++, i++)
			out[i] = (uint8_t)(w >> (8 * k));
	}
}

size_t flow_pattern_check(uint64_t seed, uint32_t stream, uint64_t off, const uint8_t *buf,
                          size_t n)
{
	uint8_t tmp[4096];
	size_t done = 0;

	while (done < n) {
		size_t m = n - done < sizeof(tmp) ? n - done : sizeof(tmp);

		flow_pattern(seed, stream, off + done, tmp, m);
		if (memcmp(tmp, buf + done, m) != 0) {
			for (size_t i = 0; i < m; i++)
				if (tmp[i] != buf[done + i])
					return done + i;
		}
		done += m;
	}
	return n;
}

int flow_socks5_request(const char *host, uint16_t port, uint8_t *out, size_t outlen)
{
	struct in_addr a4;
	struct in6_addr a6;
	size_t n = 0, hl;

	if (outlen < 4 + 1 + 255 + 2)
		return -1;
	out[n++] = 5;
	out[n++] = 1;    /* CONNECT */
	out[n++] = 0;
	if (inet_pton(AF_INET, host, &a4) == 1) {
		out[n++] = 1;
		memcpy(out + n, &a4, 4);
		n += 4;
	} else if (inet_pton(AF_INET6, host, &a6) == 1) {
		out[n++] = 4;
		memcpy(out + n, &a6, 16);
		n += 16;
	} else {
		hl = strlen(host);
		if (hl == 0 || hl > 255)
			return -1;
		out[n++] = 3;
		out[n++] = (uint8_t)hl;
		memcpy(out + n, host, hl);
		n += hl;
	}
	out[n++] = port >> 8;
	out[n++] = port & 0xff;
	return (int)n;
}

static const char *socks5_reason(uint8_t rep)
{
	static const char *r[] = {
		"succeeded", "general failure", "not allowed by ruleset",
		"network unreachable", "host unreachable", "connection refused",
		"TTL expired", "command not supported", "address type not supported",
	};

	return rep < sizeof(r) / sizeof(r[0]) ? r[rep] : "unknown reply code";
}

int flow_socks5_reply_len(const uint8_t *buf, size_t n, char *err, size_t errlen)
{
	size_t need;

	if (n < 2)
		return 0;
	if (buf[0] != 5) {
		snprintf(err, errlen, "not a SOCKS5 proxy (version byte %u)", buf[0]);
		return -1;
	}
	if (buf[1] != 0) {
		snprintf(err, errlen, "the proxy refused: %s", socks5_reason(buf[1]));
		return -1;
	}
	if (n < 5)
		return 0;
	switch (buf[3]) {
	case 1: need = 4 + 4 + 2; break;
	case 4: need = 4 + 16 + 2; break;
	case 3: need = 4 + 1 + (size_t)buf[4] + 2; break;
	default:
		snprintf(err, errlen, "bad SOCKS5 reply (address type %u)", buf[3]);
		return -1;
	}
	return n < need ? 0 : (int)need;
}

int flow_parse_size(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;
	double mult = 1;
	long double r;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (strcmp(end, "") == 0 || strcmp(end, "B") == 0)
		mult = 1;
	else if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0)
		mult = 1e3;
	else if (strcmp(end, "M") == 0)
		mult = 1e6;
	else if (strcmp(end, "G") == 0)
		mult = 1e9;
	else if (strcmp(end, "KiB") == 0)
		mult = 1024.0;
	else if (strcmp(end, "MiB") == 0)
		mult = 1048576.0;
	else if (strcmp(end, "GiB") == 0)
		mult = 1073741824.0;
	else
		return -1;
	r = (long double)v * mult;
	if (r > (long double)max)
		return -1;
	*out = (uint64_t)r;
	return 0;
}

void flow_hex(const uint8_t *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = '\0';
}
