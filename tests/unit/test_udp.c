/*
 * Unit tests for the UDP relay (docs/udp-relay.md): the RFC 1928 UDP
 * request header (front/socks.c) and the tunnel's datagram header
 * (mux/proto.c) on valid and hostile bytes, the SOCKS5 UDP ASSOCIATE
 * request, and the mux's UDP associations driven through a fake SCTP
 * association: open, accept, datagrams both ways, malformed datagrams,
 * the per-session cap, the peer's CLOSE and RST, a refusal from a peer
 * without the relay, bounded queues while the association is full.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "front/socks.h"
#include "mux/mux_internal.h"
#include "mux/proto.h"

#define UNUSED __attribute__((unused))
#define B(s) (const uint8_t *)(s), (sizeof(s) - 1)

/* ---------- the tunnel's datagram header ---------- */

static void test_hdr_roundtrip(void **state UNUSED)
{
	struct mux_dest d, o;
	uint8_t buf[MUX_UDP_HDR_MAX];
	size_t hl;
	int n;

	memset(&d, 0, sizeof(d));
	d.type = MUX_DEST_IPV4;
	memcpy(d.addr, "\x7f\x00\x00\x01", 4);
	d.port = 53;
	n = proto_encode_udp_hdr(&d, buf, sizeof(buf));
	assert_int_equal(n, 7);
	assert_memory_equal(buf, "\x01\x7f\x00\x00\x01\x00\x35", 7);
	assert_int_equal(proto_decode_udp_hdr(buf, 7, &o, &hl), 0);
	assert_int_equal(hl, 7);
	assert_int_equal(o.type, MUX_DEST_IPV4);
	assert_int_equal(o.port, 53);

	d.type = MUX_DEST_IPV6;
	memset(d.addr, 0, 16);
	d.addr[15] = 1;
	n = proto_encode_udp_hdr(&d, buf, sizeof(buf));
	assert_int_equal(n, 19);
	assert_int_equal(proto_decode_udp_hdr(buf, 19 + 5, &o, &hl), 0);
	assert_int_equal(hl, 19);
	assert_memory_equal(o.addr, d.addr, 16);

	d.type = MUX_DEST_DOMAIN;
	strcpy(d.domain, "example.org");
	n = proto_encode_udp_hdr(&d, buf, sizeof(buf));
	assert_int_equal(n, 1 + 1 + 11 + 2);
	assert_int_equal(proto_decode_udp_hdr(buf, (size_t)n, &o, &hl), 0);
	assert_string_equal(o.domain, "example.org");

	/* 255-byte name: the largest header. */
	memset(d.domain, 'a', 255);
	d.domain[255] = '\0';
	n = proto_encode_udp_hdr(&d, buf, sizeof(buf));
	assert_int_equal(n, MUX_UDP_HDR_MAX);
	assert_int_equal(proto_decode_udp_hdr(buf, (size_t)n, &o, &hl), 0);
	assert_int_equal(strlen(o.domain), 255);
}

static void test_hdr_encode_invalid(void **state UNUSED)
{
	struct mux_dest d;
	uint8_t buf[MUX_UDP_HDR_MAX];

	memset(&d, 0, sizeof(d));
	d.type = MUX_DEST_NONE;
	assert_int_equal(proto_encode_udp_hdr(&d, buf, sizeof(buf)), -1);
	d.type = MUX_DEST_IPV4;
	d.port = 0;
	assert_int_equal(proto_encode_udp_hdr(&d, buf, sizeof(buf)), -1);
	d.port = 1;
	assert_int_equal(proto_encode_udp_hdr(&d, buf, 6), -1);
	assert_int_equal(proto_encode_udp_hdr(&d, buf, 7), 7);
	d.type = 2;
	assert_int_equal(proto_encode_udp_hdr(&d, buf, sizeof(buf)), -1);
	d.type = MUX_DEST_DOMAIN;
	d.domain[0] = '\0';
	assert_int_equal(proto_encode_udp_hdr(&d, buf, sizeof(buf)), -1);
}

static void test_hdr_hostile(void **state UNUSED)
{
	struct mux_dest o;
	size_t hl;
	static uint8_t big[1 + 4 + 2 + MUX_UDP_PAYLOAD_MAX + 1];

	/* Every truncation of a valid header fails. */
	for (size_t n = 0; n < 7; n++)
		assert_int_equal(proto_decode_udp_hdr((const uint8_t *)"\x01\x7f\x00\x00\x01\x00\x35",
		                                      n, &o, &hl), -1);
	for (size_t n = 0; n < 5; n++)
		assert_int_equal(proto_decode_udp_hdr((const uint8_t *)"\x03\x01x\x00\x35", n, &o, &hl),
		                 -1);
	/* Unknown type, including the OPEN-only NONE. */
	assert_int_equal(proto_decode_udp_hdr(B("\x00\x00\x00"), &o, &hl), -2);
	assert_int_equal(proto_decode_udp_hdr(B("\x02\x01\x02\x03\x04\x00\x35"), &o, &hl), -2);
	assert_int_equal(proto_decode_udp_hdr(B("\xff"), &o, &hl), -2);
	/* Port 0, empty name, NUL in a name. */
	assert_int_equal(proto_decode_udp_hdr(B("\x01\x7f\x00\x00\x01\x00\x00"), &o, &hl), -1);
	assert_int_equal(proto_decode_udp_hdr(B("\x03\x00\x00\x35"), &o, &hl), -1);
	assert_int_equal(proto_decode_udp_hdr(B("\x03\x03" "a\x00b" "\x00\x35"), &o, &hl), -1);
	assert_int_equal(hl, 0);
	/* A name length running past the end. */
	assert_int_equal(proto_decode_udp_hdr(B("\x03\xff" "abc" "\x00\x35"), &o, &hl), -1);
	/* More than the largest UDP payload behind the header. */
	memcpy(big, "\x01\x01\x02\x03\x04\x00\x35", 7);
	assert_int_equal(proto_decode_udp_hdr(big, sizeof(big) - 1, &o, &hl), 0);
	assert_int_equal(proto_decode_udp_hdr(big, sizeof(big), &o, &hl), -1);
}

static void test_udp_open_codec(void **state UNUSED)
{
	uint8_t b[2];

	assert_int_equal(proto_encode_udp_open(b), 2);
	assert_int_equal(proto_decode_udp_open(b, 2), 0);
	assert_int_equal(proto_decode_udp_open(B("\x01")), -1);
	assert_int_equal(proto_decode_udp_open(B("\x02\x00")), -1);
	assert_int_equal(proto_decode_udp_open(B("\x01\x01")), -1);
	assert_int_equal(proto_decode_udp_open(B("\x01\x00\x00")), -1);
}

/* ---------- the RFC 1928 UDP request header ---------- */

static void test_socks_udp_valid(void **state UNUSED)
{
	struct socks_dest d;
	uint8_t out[SOCKS_UDP_HDR_MAX];
	size_t hl, n;

	assert_int_equal(socks_udp_decode(B("\x00\x00\x00\x01\x0a\x00\x00\x01\x00\x35" "q"),
	                                  &d, &hl), SOCKS_UDP_OK);
	assert_int_equal(hl, 10);
	assert_int_equal(d.atyp, SOCKS_ATYP_IPV4);
	assert_memory_equal(d.ipv4, "\x0a\x00\x00\x01", 4);
	assert_int_equal(d.port, 53);
	n = socks_udp_encode(&d, out, sizeof(out));
	assert_int_equal(n, 10);
	assert_memory_equal(out, "\x00\x00\x00\x01\x0a\x00\x00\x01\x00\x35", 10);

	assert_int_equal(socks_udp_decode(B("\x00\x00\x00\x03\x07" "a.b.c.d" "\x01\xbb"), &d, &hl),
	                 SOCKS_UDP_OK);
	assert_int_equal(hl, 4 + 1 + 7 + 2);
	assert_string_equal(d.domain, "a.b.c.d");
	assert_int_equal(d.port, 443);
	n = socks_udp_encode(&d, out, sizeof(out));
	assert_int_equal(n, hl);

	assert_int_equal(socks_udp_decode(B("\x00\x00\x00\x04" "\x20\x01\x0d\xb8\x00\x00\x00\x00"
	                                    "\x00\x00\x00\x00\x00\x00\x00\x01" "\x00\x35"), &d, &hl),
	                 SOCKS_UDP_OK);
	assert_int_equal(hl, 22);
	assert_int_equal(d.atyp, SOCKS_ATYP_IPV6);
	/* An empty datagram is a datagram. */
	assert_int_equal(socks_udp_decode(B("\x00\x00\x00\x01\x01\x02\x03\x04\x00\x35"), &d, &hl),
	                 SOCKS_UDP_OK);
	assert_int_equal(hl, 10);
	/* Too small an output buffer. */
	assert_int_equal(socks_udp_encode(&d, out, 9), 0);
	d.atyp = 2;
	assert_int_equal(socks_udp_encode(&d, out, sizeof(out)), 0);
}

static void test_socks_udp_hostile(void **state UNUSED)
{
	struct socks_dest d;
	size_t hl;

	/* FRAG != 0: a fragment, or the last of one (high bit). */
	assert_int_equal(socks_udp_decode(B("\x00\x00\x01\x01\x0a\x00\x00\x01\x00\x35"), &d, &hl),
	                 SOCKS_UDP_FRAG);
	assert_int_equal(socks_udp_decode(B("\x00\x00\x81\x01\x0a\x00\x00\x01\x00\x35"), &d, &hl),
	                 SOCKS_UDP_FRAG);
	/* RSV must be zero. */
	assert_int_equal(socks_udp_decode(B("\x00\x01\x00\x01\x0a\x00\x00\x01\x00\x35"), &d, &hl),
	                 SOCKS_UDP_BAD);
	assert_int_equal(socks_udp_decode(B("\x80\x00\x00\x01\x0a\x00\x00\x01\x00\x35"), &d, &hl),
	                 SOCKS_UDP_BAD);
	/* Address types. */
	assert_int_equal(socks_udp_decode(B("\x00\x00\x00\x02\x0a\x00\x00\x01\x00\x35"), &d, &hl),
	                 SOCKS_UDP_ATYP);
	assert_int_equal(socks_udp_decode(B("\x00\x00\x00\x00"), &d, &hl), SOCKS_UDP_ATYP);
	/* Truncations of a valid header. */
	for (size_t n = 0; n < 10; n++)
		assert_int_equal(socks_udp_decode((const uint8_t *)"\x00\x00\x00\x01\x0a\x00\x00\x01"
		                                  "\x00\x35", n, &d, &hl), SOCKS_UDP_BAD);
	for (size_t n = 0; n < 8; n++)
		assert_int_equal(socks_udp_decode((const uint8_t *)"\x00\x00\x00\x03\x01" "x" "\x00"
		                                  "\x35", n, &d, &hl), SOCKS_UDP_BAD);
	/* Port 0, empty name, NUL in a name. */
	assert_int_equal(socks_udp_decode(B("\x00\x00\x00\x01\x0a\x00\x00\x01\x00\x00"), &d, &hl),
	                 SOCKS_UDP_BAD);
	assert_int_equal(socks_udp_decode(B("\x00\x00\x00\x03\x00\x00\x35"), &d, &hl),
	                 SOCKS_UDP_BAD);
	assert_int_equal(socks_udp_decode(B("\x00\x00\x00\x03\x02" "a\x00" "\x00\x35"), &d, &hl),
	                 SOCKS_UDP_BAD);
	assert_int_equal(hl, 0);
}

/* Random bytes: no crash, and a header never reaches past the input. */
static void test_random_bytes(void **state UNUSED)
{
	uint8_t buf[300];
	struct socks_dest sd;
	struct mux_dest md;
	size_t hl;

	srand(1928);
	for (int i = 0; i < 200000; i++) {
		size_t n = (size_t)rand() % sizeof(buf);

		for (size_t k = 0; k < n; k++)
			buf[k] = (uint8_t)rand();
		/* Bias towards plausible headers. */
		if (n > 4 && (i & 1)) {
			buf[0] = buf[1] = 0;
			buf[2] = (uint8_t)(rand() % 3 == 0);
			buf[3] = (uint8_t)(1 + rand() % 4);
		}
		if (socks_udp_decode(buf, n, &sd, &hl) == SOCKS_UDP_OK) {
			assert_true(hl <= n);
			assert_true(sd.port != 0);
		}
		if (n > 0 && (i & 2))
			buf[0] = (uint8_t)(1 + rand() % 4);
		if (proto_decode_udp_hdr(buf, n, &md, &hl) == 0) {
			assert_true(hl <= n);
			assert_true(md.port != 0);
			assert_true(md.type == MUX_DEST_IPV4 || md.type == MUX_DEST_IPV6 ||
			            md.type == MUX_DEST_DOMAIN);
		}
	}
}

/* ---------- the SOCKS5 request and reply ---------- */

static void test_associate_request(void **state UNUSED)
{
	struct socks_state st;
	uint8_t reply[SOCKS_REPLY_MAX];
	size_t used, rl;
	int r;

	socks_state_init(&st);
	r = socks_step(&st, B("\x05\x01\x00" "\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00"), &used,
	               reply, &rl);
	assert_int_equal(r, SOCKS_DONE);
	assert_int_equal(st.req.cmd, SOCKS_CMD_UDP_ASSOCIATE);
	assert_int_equal(st.req.dest.port, 0);

	socks_state_init(&st);
	r = socks_step(&st, B("\x05\x01\x00" "\x05\x03\x00\x01\x7f\x00\x00\x01\x30\x39"), &used,
	               reply, &rl);
	assert_int_equal(r, SOCKS_DONE);
	assert_int_equal(st.req.dest.port, 12345);

	/* SOCKS4 has no UDP ASSOCIATE: 0x03 is refused. */
	socks_state_init(&st);
	r = socks_step(&st, B("\x04\x03\x00\x35\x01\x02\x03\x04\x00"), &used, reply, &rl);
	assert_int_equal(r, SOCKS_ERROR);
}

static void test_reply_bound(void **state UNUSED)
{
	uint8_t out[SOCKS_REPLY_MAX];
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(4000);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(socks_reply_bound(0, (struct sockaddr *)&sin, out), 10);
	assert_memory_equal(out, "\x05\x00\x00\x01\x7f\x00\x00\x01\x0f\xa0", 10);

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(4000);
	inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
	assert_int_equal(socks_reply_bound(0, (struct sockaddr *)&sin6, out), 22);
	assert_int_equal(out[3], 4);
	assert_int_equal(out[19], 1);
	assert_int_equal(out[20], 0x0f);
}

/* ---------- UDP associations on the mux, through a fake association ---------- */

#define MAX_MSGS 512

struct msg {
	uint16_t sid;
	uint32_t ppid;
	size_t len;
	int unordered;
	uint8_t data[64];
};

static struct msg msgs[MAX_MSGS];
static unsigned nmsgs, next_msg;
static int send_again;

static int fake_send_any(uint16_t sid, uint32_t ppid, const void *p, size_t n, int unordered)
{
	struct msg *g;

	if (send_again)
		return MUX_SEND_AGAIN;
	assert_true(nmsgs < MAX_MSGS);
	g = &msgs[nmsgs++];
	g->sid = sid;
	g->ppid = ppid;
	g->len = n;
	g->unordered = unordered;
	memcpy(g->data, p, n < sizeof(g->data) ? n : sizeof(g->data));
	return 0;
}

static int fake_send(void *ctx, uint16_t sid, uint32_t ppid, const void *p, size_t n)
{
	return fake_send_any(sid, ppid, p, n, 0);
}

static int fake_send_unordered(void *ctx, uint16_t sid, uint32_t ppid, const void *p, size_t n)
{
	return fake_send_any(sid, ppid, p, n, 1);
}

static unsigned fake_streams(void *ctx)
{
	return 16;
}

static void fake_free(void *ctx)
{
}

static const struct mux_sctp_ops fake_ops = {
	.send = fake_send,
	.streams = fake_streams,
	.free = fake_free,
	.send_unordered = fake_send_unordered,
};

static struct msg *next(uint16_t sid, uint32_t ppid)
{
	struct msg *g;

	assert_true(next_msg < nmsgs);
	g = &msgs[next_msg++];
	assert_int_equal(g->sid, sid);
	assert_int_equal(g->ppid, ppid);
	return g;
}

static void expect_nothing(void)
{
	if (next_msg < nmsgs)
		fail_msg("unexpected message: sid %u ppid %u", msgs[next_msg].sid,
		         msgs[next_msg].ppid);
}

/* The owner's view. */
static struct mux_stream *srv_s[16];
static int nudp_open, nopened, open_result, nclosed, close_code, ndgram;
static struct mux_dest last_addr;
static size_t last_len;
static int accept_now = 1;

static void cb_opened(struct mux_stream *s, int err, void *arg)
{
	nopened++;
	open_result = err;
}

static void cb_dgram(struct mux_stream *s, const struct mux_dest *a, const uint8_t *p, size_t n,
                     void *arg)
{
	ndgram++;
	last_addr = *a;
	last_len = n;
}

static void cb_closed(struct mux_stream *s, uint8_t code, void *arg)
{
	nclosed++;
	close_code = code;
}

static const struct mux_udp_cbs owner_cbs = {
	.opened = cb_opened,
	.dgram = cb_dgram,
	.closed = cb_closed,
};

static void cb_up(struct mux_session *mm, void *arg)
{
}

static void cb_down(struct mux_session *mm, const char *why, void *arg)
{
}

static void cb_stream_open(struct mux_session *mm, struct mux_stream *s,
                           const struct mux_dest *d, void *arg)
{
	mux_stream_reject(s, MUX_ERR_NOT_ALLOWED);
}

static void cb_udp_open(struct mux_session *mm, struct mux_stream *s, void *arg)
{
	nudp_open++;
	srv_s[s->sid] = s;
	if (accept_now)
		mux_udp_accept(s, &owner_cbs, NULL);
}

static struct mux_session_cbs sess_cbs = {
	.up = cb_up,
	.down = cb_down,
	.stream_open = cb_stream_open,
	.udp_open = cb_udp_open,
};

static struct mux_session *session(int client, unsigned max_udp)
{
	struct mux_config cfg;
	struct mux_session *m;

	mux_config_defaults(&cfg);
	cfg.max_udp = max_udp;
	m = mux_session_new_ops(&cfg, &sess_cbs, NULL, client, &fake_ops, NULL);
	assert_non_null(m);
	mux_session_on_up(m);
	nmsgs = next_msg = 0;
	send_again = 0;
	nudp_open = nopened = nclosed = ndgram = 0;
	open_result = close_code = -1;
	accept_now = 1;
	memset(srv_s, 0, sizeof(srv_s));
	return m;
}

static void peer(struct mux_session *m, uint16_t sid, uint32_t ppid, const uint8_t *p, size_t n)
{
	mux_session_on_message(m, sid, ppid, p, n, 1);
}

static void test_mux_server_flow(void **state UNUSED)
{
	struct mux_session *m = session(0, 4);
	struct mux_stats st;
	struct mux_dest to;
	struct msg *g;

	peer(m, 1, MUX_UDP_OPEN, B("\x01\x00"));
	assert_int_equal(nudp_open, 1);
	next(1, MUX_UDP_OK);
	/* A datagram to 127.0.0.1:53 with 3 bytes. */
	peer(m, 1, MUX_UDP_DGRAM, B("\x01\x7f\x00\x00\x01\x00\x35" "abc"));
	assert_int_equal(ndgram, 1);
	assert_int_equal(last_len, 3);
	assert_int_equal(last_addr.port, 53);
	/* Malformed ones are dropped and counted, the association stays. */
	peer(m, 1, MUX_UDP_DGRAM, B("\x01\x7f\x00"));
	peer(m, 1, MUX_UDP_DGRAM, B("\x09\x7f\x00\x00\x01\x00\x35"));
	peer(m, 1, MUX_UDP_DGRAM, B("\x01\x7f\x00\x00\x01\x00\x00"));
	assert_int_equal(ndgram, 1);
	mux_session_stats(m, &st);
	assert_int_equal(st.udp_bad, 3);
	assert_int_equal(st.udp_active, 1);
	expect_nothing();
	/* A reply goes out unordered with its source in the header. */
	memset(&to, 0, sizeof(to));
	to.type = MUX_DEST_IPV4;
	memcpy(to.addr, "\x01\x02\x03\x04", 4);
	to.port = 7;
	assert_int_equal(mux_udp_send(srv_s[1], &to, "hi", 2), 0);
	g = next(1, MUX_UDP_DGRAM);
	assert_true(g->unordered);
	assert_int_equal(g->len, 7 + 2);
	assert_memory_equal(g->data, "\x01\x01\x02\x03\x04\x00\x07" "hi", 9);
	/* A datagram on an idle id or on a TCP stream's id is not delivered. */
	peer(m, 3, MUX_UDP_DGRAM, B("\x01\x7f\x00\x00\x01\x00\x35" "x"));
	assert_int_equal(ndgram, 1);
	expect_nothing();
	/* The client's CLOSE: the owner hears it, CLOSE answers, the id is free. */
	peer(m, 1, MUX_CLOSE, B("\x00"));
	assert_int_equal(nclosed, 1);
	assert_int_equal(close_code, 0);
	next(1, MUX_CLOSE);
	mux_session_stats(m, &st);
	assert_int_equal(st.udp_active, 0);
	assert_int_equal(st.streams_active, 0);
	assert_int_equal(st.tombs, 0);
	mux_session_free(m);
}

static void test_mux_cap_and_refusals(void **state UNUSED)
{
	struct mux_session *m = session(0, 2);
	struct mux_stats st;
	struct msg *g;

	peer(m, 1, MUX_UDP_OPEN, B("\x01\x00"));
	peer(m, 3, MUX_UDP_OPEN, B("\x01\x00"));
	next(1, MUX_UDP_OK);
	next(3, MUX_UDP_OK);
	/* The third is over the cap: RST 0x12, nothing allocated. */
	peer(m, 5, MUX_UDP_OPEN, B("\x01\x00"));
	g = next(5, MUX_RST);
	assert_int_equal(g->data[0], MUX_ERR_LIMIT);
	mux_session_stats(m, &st);
	assert_int_equal(st.udp_refused, 1);
	assert_int_equal(st.udp_active, 2);
	/* A malformed UDP_OPEN is refused as a protocol error. */
	peer(m, 1, MUX_RST, B("\x10"));
	next(1, MUX_RST);
	peer(m, 7, MUX_UDP_OPEN, B("\x01\x00\x00"));
	g = next(7, MUX_RST);
	assert_int_equal(g->data[0], MUX_ERR_PROTOCOL);
	/* UDP_OPEN from the server side (even id) is ignored. */
	peer(m, 8, MUX_UDP_OPEN, B("\x01\x00"));
	expect_nothing();
	/* A TCP message type on a UDP association is a protocol error. */
	peer(m, 3, MUX_CREDIT, B("\x00\x00\x10\x00"));
	assert_int_equal(nclosed, 2);   /* the RST on 1, then this */
	assert_int_equal(close_code, MUX_ERR_PROTOCOL);
	g = next(3, MUX_RST);
	assert_int_equal(g->data[0], MUX_ERR_PROTOCOL);
	mux_session_free(m);

	/* Without a udp_open callback (the relay off) the answer is RST 0x07. */
	sess_cbs.udp_open = NULL;
	m = session(0, 4);
	peer(m, 1, MUX_UDP_OPEN, B("\x01\x00"));
	g = next(1, MUX_RST);
	assert_int_equal(g->data[0], MUX_ERR_UNSUPPORTED);
	mux_session_free(m);
	sess_cbs.udp_open = cb_udp_open;
}

/* UDP_OPENs in parts pass the first check together; the cap holds all the same. */
static void test_mux_cap_parts(void **state UNUSED)
{
	struct mux_session *m = session(0, 1);
	struct mux_stats st;
	struct msg *g;

	mux_session_on_message(m, 1, MUX_UDP_OPEN, B("\x01"), 0);
	mux_session_on_message(m, 3, MUX_UDP_OPEN, B("\x01"), 0);
	mux_session_on_message(m, 1, MUX_UDP_OPEN, B("\x00"), 1);
	mux_session_on_message(m, 3, MUX_UDP_OPEN, B("\x00"), 1);
	next(1, MUX_UDP_OK);
	g = next(3, MUX_RST);
	assert_int_equal(g->data[0], MUX_ERR_LIMIT);
	mux_session_stats(m, &st);
	assert_int_equal(st.udp_active, 1);
	assert_int_equal(st.udp_refused, 1);
	mux_session_free(m);
}

static void test_mux_client_flow(void **state UNUSED)
{
	struct mux_session *m = session(1, 2);
	struct mux_stream *s, *s2, *s3;
	struct mux_stats st;
	struct mux_dest to;
	struct msg *g;

	s = mux_udp_open(m, &owner_cbs, NULL);
	assert_non_null(s);
	g = next(1, MUX_UDP_OPEN);
	assert_int_equal(g->len, 2);
	/* Nothing may be sent before UDP_OK. */
	memset(&to, 0, sizeof(to));
	to.type = MUX_DEST_DOMAIN;
	strcpy(to.domain, "example.org");
	to.port = 53;
	assert_int_equal(mux_udp_send(s, &to, "q", 1), -1);
	/* A datagram before UDP_OK is a protocol error. */
	s2 = mux_udp_open(m, &owner_cbs, NULL);
	assert_non_null(s2);
	next(3, MUX_UDP_OPEN);
	peer(m, 3, MUX_UDP_DGRAM, B("\x01\x7f\x00\x00\x01\x00\x35" "x"));
	assert_int_equal(nopened, 1);
	assert_int_equal(open_result, MUX_ERR_PROTOCOL);
	next(3, MUX_RST);
	/* The cap on the client side too (s and the dying s2's tombstone: 1 left). */
	s3 = mux_udp_open(m, &owner_cbs, NULL);
	assert_non_null(s3);
	assert_null(mux_udp_open(m, &owner_cbs, NULL));
	next(5, MUX_UDP_OPEN);
	/* A peer without the relay refuses: the opener hears the code. */
	peer(m, 5, MUX_RST, B("\x07"));
	assert_int_equal(nopened, 2);
	assert_int_equal(open_result, MUX_ERR_UNSUPPORTED);
	next(5, MUX_RST);   /* answered like any RST */
	expect_nothing();
	peer(m, 1, MUX_UDP_OK, B("\x00"));
	assert_int_equal(nopened, 3);
	assert_int_equal(open_result, 0);
	assert_int_equal(mux_udp_send(s, &to, "q", 1), 0);
	g = next(1, MUX_UDP_DGRAM);
	assert_true(g->unordered);
	assert_memory_equal(g->data, "\x03\x0b" "example.org" "\x00\x35" "q", 16);
	/* A name as a reply's source is dropped (the server sends addresses). */
	peer(m, 1, MUX_UDP_DGRAM, B("\x03\x01x\x00\x35" "r"));
	assert_int_equal(ndgram, 0);
	peer(m, 1, MUX_UDP_DGRAM, B("\x01\x08\x08\x08\x08\x00\x35" "rr"));
	assert_int_equal(ndgram, 1);
	/* Delivered in parts: gathered into one datagram. */
	mux_session_on_message(m, 1, MUX_UDP_DGRAM, B("\x01\x08\x08"), 0);
	mux_session_on_message(m, 1, MUX_UDP_DGRAM, B("\x08\x08\x00\x35" "abcd"), 1);
	assert_int_equal(ndgram, 2);
	assert_int_equal(last_len, 4);
	mux_session_stats(m, &st);
	assert_int_equal(st.udp_bad, 1);
	/* The owner closes: CLOSE, no callback. */
	mux_udp_close(s);
	next(1, MUX_CLOSE);
	assert_int_equal(nclosed, 0);
	peer(m, 1, MUX_CLOSE, B("\x00"));
	mux_session_stats(m, &st);
	assert_int_equal(st.udp_active, 0);
	mux_session_free(m);
}

static void test_mux_bounded_queue(void **state UNUSED)
{
	struct mux_session *m = session(0, 4);
	struct mux_stats st;
	struct mux_dest to;
	static uint8_t payload[1000];
	unsigned sent = 0;

	peer(m, 1, MUX_UDP_OPEN, B("\x01\x00"));
	next(1, MUX_UDP_OK);
	memset(&to, 0, sizeof(to));
	to.type = MUX_DEST_IPV4;
	to.port = 9;
	/* The association is full: datagrams queue, the oldest go when full. */
	send_again = 1;
	for (int i = 0; i < 1000; i++)
		if (mux_udp_send(srv_s[1], &to, payload, sizeof(payload)) == 0)
			sent++;
	mux_session_stats(m, &st);
	assert_true(st.udp_queued <= MUX_UDP_QUEUE_BYTES);
	assert_true(st.udp_queued > 0);
	assert_int_equal(st.udp_dropped + MUX_UDP_QUEUE_MAX, 1000);
	assert_int_equal(mux_udp_dropped(srv_s[1]), st.udp_dropped);
	expect_nothing();
	/* Space again: the queue drains, in order, unordered. */
	send_again = 0;
	mux_session_on_writable(m);
	for (int i = 0; i < MUX_UDP_QUEUE_MAX; i++)
		assert_true(next(1, MUX_UDP_DGRAM)->unordered);
	expect_nothing();
	mux_session_stats(m, &st);
	assert_int_equal(st.udp_queued, 0);
	assert_int_equal(st.udp_dgrams_out, MUX_UDP_QUEUE_MAX);
	/* Session down: the owner hears it once. */
	mux_session_on_down(m, "test");
	assert_int_equal(nclosed, 1);
	mux_session_free(m);
}

static void test_mux_rate_limit(void **state UNUSED)
{
	struct mux_session *m = session(0, 4);
	struct mux_stats st;
	struct mux_dest to;
	unsigned ok = 0, in_before;

	m->cfg.udp_rate = 100;   /* burst: 64 datagrams */
	peer(m, 1, MUX_UDP_OPEN, B("\x01\x00"));
	next(1, MUX_UDP_OK);
	memset(&to, 0, sizeof(to));
	to.type = MUX_DEST_IPV4;
	to.port = 9;
	for (int i = 0; i < 1000; i++)
		if (mux_udp_send(srv_s[1], &to, "x", 1) == 0)
			ok++;
	/* The burst, and what the clock gave meanwhile (a few ms at most). */
	assert_true(ok >= 64 && ok <= 70);
	mux_session_stats(m, &st);
	assert_int_equal(st.udp_rate_dropped, 1000 - ok);
	assert_int_equal(st.udp_dropped, 1000 - ok);
	assert_int_equal(mux_udp_dropped(srv_s[1]), 1000 - ok);
	/* The other direction has its own bucket. */
	in_before = (unsigned)ndgram;
	for (int i = 0; i < 1000; i++)
		peer(m, 1, MUX_UDP_DGRAM, B("\x01\x7f\x00\x00\x01\x00\x35" "q"));
	assert_true(ndgram - in_before >= 64 && ndgram - in_before <= 70);
	mux_session_free(m);
}

/*
 * Turns for send space: while a TCP stream waits for it and datagrams had
 * more than their share, datagrams queue; with the balance in their favour
 * they go straight out, and on writable they go first.
 */
static void test_mux_fair_turns(void **state UNUSED)
{
	struct mux_session *m = session(0, 4);
	struct mux_stream tcp;
	struct mux_stats st;
	struct mux_dest to;

	peer(m, 1, MUX_UDP_OPEN, B("\x01\x00"));
	next(1, MUX_UDP_OK);
	memset(&to, 0, sizeof(to));
	to.type = MUX_DEST_IPV4;
	to.port = 9;
	/* A TCP stream waits (a stand-in on the list); datagrams are ahead. */
	memset(&tcp, 0, sizeof(tcp));
	TAILQ_INSERT_TAIL(&m->blocked, &tcp, blocked_link);
	m->fair = -1000;
	assert_int_equal(mux_udp_send(srv_s[1], &to, "a", 1), 0);
	expect_nothing();   /* queued behind the TCP stream */
	mux_session_stats(m, &st);
	assert_true(st.udp_queued > 0);
	assert_false(udp_goes_first(m));
	/* TCP sent its share: the datagrams go first at the next writable. */
	fair_tcp_sent(m, 5000);
	assert_true(udp_goes_first(m));
	TAILQ_REMOVE(&m->blocked, &tcp, blocked_link);
	mux_session_on_writable(m);
	next(1, MUX_UDP_DGRAM);
	expect_nothing();
	/* The balance is clamped: history does not buy a class unbounded turns. */
	for (int i = 0; i < 100; i++)
		fair_tcp_sent(m, 64 * 1024);
	assert_int_equal(m->fair, MUX_FAIR_CAP);
	for (int i = 0; i < 100; i++)
		fair_udp_sent(m, 64 * 1024);
	assert_int_equal(m->fair, -MUX_FAIR_CAP);
	/* With nothing of TCP waiting, datagrams go out whatever the balance. */
	assert_int_equal(mux_udp_send(srv_s[1], &to, "b", 1), 0);
	next(1, MUX_UDP_DGRAM);
	mux_session_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hdr_roundtrip),
		cmocka_unit_test(test_hdr_encode_invalid),
		cmocka_unit_test(test_hdr_hostile),
		cmocka_unit_test(test_udp_open_codec),
		cmocka_unit_test(test_socks_udp_valid),
		cmocka_unit_test(test_socks_udp_hostile),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_associate_request),
		cmocka_unit_test(test_reply_bound),
		cmocka_unit_test(test_mux_server_flow),
		cmocka_unit_test(test_mux_cap_and_refusals),
		cmocka_unit_test(test_mux_cap_parts),
		cmocka_unit_test(test_mux_client_flow),
		cmocka_unit_test(test_mux_bounded_queue),
		cmocka_unit_test(test_mux_rate_limit),
		cmocka_unit_test(test_mux_fair_turns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
