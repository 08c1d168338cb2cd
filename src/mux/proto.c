/*
 * Stream protocol payload codec; see proto.h and docs/streams.md.
 */
#include "mux/proto.h"

#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include "util/bytes.h"

int proto_encode_open(const struct mux_dest *d, uint8_t *out, size_t outlen)
{
	size_t n = 0, alen;

	/* The same port rules the decoder enforces. */
	if ((d->type == MUX_DEST_NONE) != (d->port == 0))
		return -1;
	switch (d->type) {
	case MUX_DEST_NONE: alen = 0; break;
	case MUX_DEST_IPV4: alen = 4; break;
	case MUX_DEST_IPV6: alen = 16; break;
	case MUX_DEST_DOMAIN:
		alen = strnlen(d->domain, sizeof(d->domain));
		if (alen == 0 || alen > 255)
			return -1;
		alen += 1;   /* length byte */
		break;
	default:
		return -1;
	}
	if (outlen < 2 + alen + 2)
		return -1;
	out[n++] = MUX_PROTO_VERSION;
	out[n++] = d->type;
	if (d->type == MUX_DEST_DOMAIN) {
		out[n++] = (uint8_t)(alen - 1);
		memcpy(out + n, d->domain, alen - 1);
	} else {
		memcpy(out + n, d->addr, alen);
	}
	n += d->type == MUX_DEST_DOMAIN ? alen - 1 : alen;
	put_u16be(out + n, d->port);
	return (int)(n + 2);
}

int proto_decode_open(const uint8_t *p, size_t n, struct mux_dest *out)
{
	size_t need;

	memset(out, 0, sizeof(*out));
	if (n < 4 || p[0] != MUX_PROTO_VERSION)
		return -1;
	out->type = p[1];
	switch (p[1]) {
	case MUX_DEST_NONE:
		need = 4;
		break;
	case MUX_DEST_IPV4:
		need = 2 + 4 + 2;
		if (n == need)
			memcpy(out->addr, p + 2, 4);
		break;
	case MUX_DEST_IPV6:
		need = 2 + 16 + 2;
		if (n == need)
			memcpy(out->addr, p + 2, 16);
		break;
	case MUX_DEST_DOMAIN:
		if (p[2] == 0)
			return -1;
		need = 2 + 1 + (size_t)p[2] + 2;
		if (n != need)
			return -1;
		if (memchr(p + 3, 0, p[2]) != NULL)
			return -1;
		memcpy(out->domain, p + 3, p[2]);
		out->domain[p[2]] = '\0';
		break;
	default:
		return -2;
	}
	if (n != need)
		return -1;
	out->port = get_u16be(p + n - 2);
	if (out->type == MUX_DEST_NONE && out->port != 0)
		return -1;
	if (out->type != MUX_DEST_NONE && out->port == 0)
		return -1;
	return 0;
}

int proto_encode_udp_open(uint8_t out[2])
{
	out[0] = MUX_PROTO_VERSION;
	out[1] = 0;
	return 2;
}

int proto_decode_udp_open(const uint8_t *p, size_t n)
{
	return n == 2 && p[0] == MUX_PROTO_VERSION && p[1] == 0 ? 0 : -1;
}

int proto_encode_udp_hdr(const struct mux_dest *d, uint8_t *out, size_t outlen)
{
	uint8_t tmp[MUX_OPEN_MAX];
	int n;

	/* The OPEN encoding without its version byte; NONE makes no sense here. */
	if (d->type == MUX_DEST_NONE)
		return -1;
	n = proto_encode_open(d, tmp, sizeof(tmp));
	if (n < 0 || (size_t)n - 1 > outlen)
		return -1;
	memcpy(out, tmp + 1, (size_t)n - 1);
	return n - 1;
}

int proto_decode_udp_hdr(const uint8_t *p, size_t n, struct mux_dest *out, size_t *hdrlen)
{
	size_t alen, need;

	memset(out, 0, sizeof(*out));
	*hdrlen = 0;
	if (n < 1)
		return -1;
	out->type = p[0];
	switch (p[0]) {
	case MUX_DEST_IPV4: alen = 4; break;
	case MUX_DEST_IPV6: alen = 16; break;
	case MUX_DEST_DOMAIN:
		if (n < 2 || p[1] == 0)
			return -1;
		alen = 1 + (size_t)p[1];
		break;
	default:
		return -2;
	}
	need = 1 + alen + 2;
	if (n < need || n - need > MUX_UDP_PAYLOAD_MAX)
		return -1;
	if (p[0] == MUX_DEST_DOMAIN) {
		if (memchr(p + 2, 0, p[1]) != NULL)
			return -1;
		memcpy(out->domain, p + 2, p[1]);
		out->domain[p[1]] = '\0';
	} else {
		memcpy(out->addr, p + 1, alen);
	}
	out->port = get_u16be(p + 1 + alen);
	if (out->port == 0)
		return -1;
	*hdrlen = need;
	return 0;
}

void proto_encode_credit(uint32_t inc, uint8_t out[4])
{
	put_u32be(out, inc);
}

int proto_decode_credit(const uint8_t *p, size_t n, uint32_t *inc)
{
	if (n != 4)
		return -1;
	*inc = get_u32be(p);
	return *inc == 0 ? -1 : 0;
}

int proto_decode_rst(const uint8_t *p, size_t n, uint8_t *code)
{
	if (n != 1)
		return -1;
	*code = p[0];
	return 0;
}

int proto_decode_empty(const uint8_t *p, size_t n)
{
	return n == 1 && p[0] == 0 ? 0 : -1;
}

int proto_encode_listen(const struct mux_listen_req *r, uint8_t *out, size_t outlen)
{
	size_t alen, n = 0;

	switch (r->atyp) {
	case MUX_DEST_NONE: alen = 0; break;
	case MUX_DEST_IPV4: alen = 4; break;
	case MUX_DEST_IPV6: alen = 16; break;
	default: return -1;
	}
	if ((r->flags & ~MUX_LISTEN_SOCKS) != 0 || outlen < 7 + alen + 2)
		return -1;
	out[n++] = MUX_PROTO_VERSION;
	put_u32be(out + n, r->id);
	n += 4;
	out[n++] = r->flags;
	out[n++] = r->atyp;
	memcpy(out + n, r->addr, alen);
	n += alen;
	put_u16be(out + n, r->port);
	return (int)(n + 2);
}

int proto_decode_listen(const uint8_t *p, size_t n, struct mux_listen_req *out)
{
	size_t alen;

	memset(out, 0, sizeof(*out));
	if (n < 9 || p[0] != MUX_PROTO_VERSION)
		return -1;
	switch (p[6]) {
	case MUX_DEST_NONE: alen = 0; break;
	case MUX_DEST_IPV4: alen = 4; break;
	case MUX_DEST_IPV6: alen = 16; break;
	default: return -1;
	}
	if (n != 7 + alen + 2 || (p[5] & ~MUX_LISTEN_SOCKS) != 0)
		return -1;
	out->id = get_u32be(p + 1);
	out->flags = p[5];
	out->atyp = p[6];
	memcpy(out->addr, p + 7, alen);
	out->port = get_u16be(p + 7 + alen);
	return 0;
}

void proto_encode_listen_ok(uint16_t port, uint8_t out[2])
{
	put_u16be(out, port);
}

int proto_decode_listen_ok(const uint8_t *p, size_t n, uint16_t *port)
{
	if (n != 2)
		return -1;
	*port = get_u16be(p);
	return *port == 0 ? -1 : 0;
}

int proto_encode_fwd_open(uint32_t id, const struct mux_dest *d, uint8_t *out, size_t outlen)
{
	int r;

	if (outlen < 4)
		return -1;
	put_u32be(out, id);
	r = proto_encode_open(d, out + 4, outlen - 4);
	return r < 0 ? -1 : r + 4;
}

int proto_decode_fwd_open(const uint8_t *p, size_t n, uint32_t *id, struct mux_dest *out)
{
	if (n < 4) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	*id = get_u32be(p);
	return proto_decode_open(p + 4, n - 4, out);
}

const char *proto_err_str(uint8_t code)
{
	switch (code) {
	case MUX_ERR_GENERAL: return "general failure";
	case MUX_ERR_NOT_ALLOWED: return "not allowed by ruleset";
	case MUX_ERR_NET_UNREACH: return "network unreachable";
	case MUX_ERR_HOST_UNREACH: return "host unreachable";
	case MUX_ERR_REFUSED: return "connection refused";
	case MUX_ERR_TIMEOUT: return "timed out";
	case MUX_ERR_UNSUPPORTED: return "message not supported by the peer";
	case MUX_ERR_ATYP: return "address type not supported";
	case MUX_ERR_RESET: return "reset by application";
	case MUX_ERR_PROTOCOL: return "protocol violation";
	case MUX_ERR_LIMIT: return "limit reached";
	case MUX_ERR_SHUTDOWN: return "peer shutting down";
	case MUX_ERR_NO_PERMIT: return "no --permit-listen rule of the server allows it";
	case MUX_ERR_GATEWAY: return "the server only listens on loopback (no --gateway-ports)";
	case MUX_ERR_BIND: return "the server cannot listen there (address in use?)";
	default: return "unknown error";
	}
}

const char *proto_dest_str(const struct mux_dest *d, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	switch (d->type) {
	case MUX_DEST_IPV4:
		inet_ntop(AF_INET, d->addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, d->port);
		break;
	case MUX_DEST_IPV6:
		inet_ntop(AF_INET6, d->addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, d->port);
		break;
	case MUX_DEST_DOMAIN:
		snprintf(buf, len, "%s:%u", d->domain, d->port);
		break;
	default:
		snprintf(buf, len, "(fixed target)");
		break;
	}
	return buf;
}
