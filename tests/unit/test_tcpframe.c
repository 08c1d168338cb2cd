/*
 * Unit tests for the TCP carrier's framing (src/carrier/tcpframe.c) and
 * for the TCP carrier's failure paths (src/carrier/tcp.c).
 *
 * The framing vectors are the raw bytes of docs/PROTOCOL.md "TCP carrier"
 * for a fixed frame key and nonce, computed outside sctpt (Python's
 * cryptography: HKDF-SHA256 and ChaCha20 as the spec writes them), and the
 * keystream is also recomputed here from the crypto primitives for longer
 * runs.  Streams are fed all at once, byte by byte and split at every
 * point.  The carrier tests run a client and a server over loopback and
 * use util/fault.h to fail an allocation or a queueing call at a chosen
 * moment (they skip in a build without -Dfault_injection).
 *
 * With SCTPT_TCPFRAME_CORPUS=DIR set, the seed corpus of the fuzz harness
 * (tests/fuzz/corpus/tcpframe) is written there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <event2/event.h>

#include <cmocka.h>

#include "carrier/carrier.h"
#include "carrier/tcpframe.h"
#include "crypto/crypto.h"
#include "util/fault.h"

#define UNUSED __attribute__((unused))

/* Frame key 00..1f, nonce a0..af. */
static const uint8_t fkey[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
/* Client to server: the nonce, "hello", "abc". */
static const uint8_t c2s_stream[] = {
	0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
	0xe7, 0x85, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
	0xc1, 0x02, 0x61, 0x62, 0x63,
};
/* Server to client: "Z". */
static const uint8_t s2c_stream[] = { 0xe4, 0x3f, 0x5a };

static const uint8_t *nonce = c2s_stream;

/* The spec's keystream of direction d ("c2s", "s2c"), n bytes from 0. */
static void spec_keystream(const char *d, uint8_t *out, size_t n)
{
	static const char salt[] = "sctpt tcp frame v1";
	uint8_t info[19], key[32];

	memcpy(info, nonce, 16);
	memcpy(info + 16, d, 3);
	assert_int_equal(wc_hkdf((const uint8_t *)salt, sizeof(salt) - 1, fkey, 32, info,
	                         sizeof(info), key, 32), 0);
	for (size_t i = 0; i * 64 < n; i++) {
		uint8_t sample[16] = { 0 }, blk[64];
		size_t take = n - i * 64 < 64 ? n - i * 64 : 64;

		sample[0] = (uint8_t)(i >> 24);
		sample[1] = (uint8_t)(i >> 16);
		sample[2] = (uint8_t)(i >> 8);
		sample[3] = (uint8_t)i;
		assert_int_equal(wc_chacha20_mask(key, sample, blk, 64), 0);
		memcpy(out + i * 64, blk, take);
	}
}

/*
 * Decode a whole stream that arrives in pieces of the given sizes
 * (cycled; 0 = all at once), as tcp.c does: unconsumed bytes are kept and
 * offered again.  Returns the frames found, concatenated as len|bytes
 * records in out; *err is set if the decoder reported an error.
 */
static size_t feed(struct tcpframe *f, const uint8_t *s, size_t n, const size_t *pieces,
                   size_t npieces, int server, uint8_t *out, int *err)
{
	uint8_t held[70000];
	size_t have = 0, got = 0, p = 0, outlen = 0;

	*err = 0;
	while (got < n) {
		size_t step = npieces == 0 || pieces[p % npieces] == 0 ? n - got :
		              pieces[p % npieces];

		p++;
		if (step > n - got)
			step = n - got;
		memcpy(held + have, s + got, step);
		have += step;
		got += step;
		for (;;) {
			enum tcpframe_rc rc;
			size_t off = 0, len = 0;

			if (server && !f->keyed) {
				rc = tcpframe_accept_nonce(f, fkey, held, have, 0);
				if (rc == TCPFRAME_MORE)
					break;
				assert_int_equal(rc, TCPFRAME_FRAME);
				memmove(held, held + TCPFRAME_NONCE_LEN, have - TCPFRAME_NONCE_LEN);
				have -= TCPFRAME_NONCE_LEN;
				continue;
			}
			rc = tcpframe_decode(f, held, have, &off, &len);
			if (rc == TCPFRAME_MORE)
				break;
			if (rc == TCPFRAME_ERROR) {
				*err = 1;
				return outlen;
			}
			out[outlen++] = (uint8_t)(len >> 8);
			out[outlen++] = (uint8_t)len;
			memcpy(out + outlen, held + off, len);
			outlen += len;
			memmove(held, held + off + len, have - off - len);
			have -= off + len;
		}
	}
	return outlen;
}

static const uint8_t c2s_frames[] = { 0, 5, 'h', 'e', 'l', 'l', 'o', 0, 3, 'a', 'b', 'c' };

static void test_vector_encode(void **state UNUSED)
{
	struct tcpframe cl, sv;
	uint8_t out[16];

	assert_int_equal(tcpframe_init(&cl, fkey, nonce, 0, 0), 0);
	assert_int_equal(tcpframe_encode(&cl, (const uint8_t *)"hello", 5, out), 0);
	assert_memory_equal(out, c2s_stream + 16, 7);
	assert_int_equal(tcpframe_encode(&cl, (const uint8_t *)"abc", 3, out), 0);
	assert_memory_equal(out, c2s_stream + 23, 5);
	assert_int_equal(tcpframe_init(&sv, fkey, nonce, 1, 0), 0);
	assert_int_equal(tcpframe_encode(&sv, (const uint8_t *)"Z", 1, out), 0);
	assert_memory_equal(out, s2c_stream, sizeof(s2c_stream));
	/* The lengths the spec allows, and no others. */
	assert_int_equal(tcpframe_encode(&sv, (const uint8_t *)"", 0, out), -1);
	assert_int_equal(tcpframe_tx_header(&sv, 65536, out), -1);
	assert_int_equal(tcpframe_tx_header(&sv, 65535, out), 0);
	tcpframe_clear(&cl);
	tcpframe_clear(&sv);
}

static void test_vector_decode_pieces(void **state UNUSED)
{
	static const size_t one[] = { 1 }, odd[] = { 3, 1, 7, 2 };
	uint8_t out[64];
	int err;

	/* All at once, byte by byte, in uneven pieces, split at every point. */
	for (int mode = 0; mode < 3 + (int)sizeof(c2s_stream); mode++) {
		struct tcpframe sv = { 0 };
		size_t split[2] = { (size_t)(mode - 3), 0 }, n;

		if (mode == 0)
			n = feed(&sv, c2s_stream, sizeof(c2s_stream), NULL, 0, 1, out, &err);
		else if (mode == 1)
			n = feed(&sv, c2s_stream, sizeof(c2s_stream), one, 1, 1, out, &err);
		else if (mode == 2)
			n = feed(&sv, c2s_stream, sizeof(c2s_stream), odd, 4, 1, out, &err);
		else if (split[0] == 0)
			continue;
		else
			n = feed(&sv, c2s_stream, sizeof(c2s_stream), split, 2, 1, out, &err);
		assert_int_equal(err, 0);
		assert_int_equal(n, sizeof(c2s_frames));
		assert_memory_equal(out, c2s_frames, sizeof(c2s_frames));
		tcpframe_clear(&sv);
	}
	/* The client reads the server's direction. */
	{
		struct tcpframe cl;
		static const uint8_t want[] = { 0, 1, 'Z' };

		assert_int_equal(tcpframe_init(&cl, fkey, nonce, 0, 0), 0);
		assert_int_equal(feed(&cl, s2c_stream, 3, one, 1, 0, out, &err), 3);
		assert_int_equal(err, 0);
		assert_memory_equal(out, want, 3);
		tcpframe_clear(&cl);
	}
}

/* Many frames of assorted sizes: lengths cross keystream blocks. */
static void test_roundtrip_many(void **state UNUSED)
{
	enum { NF = 300 };
	static uint8_t stream[NF * 400], out[NF * 400], want[NF * 400];
	struct tcpframe cl, sv = { 0 };
	uint8_t ks[NF * 2];
	size_t n = 0, wn = 0;
	static const size_t pieces[] = { 1, 5, 0, 97, 2 };
	int err;

	spec_keystream("c2s", ks, sizeof(ks));
	assert_int_equal(tcpframe_init(&cl, fkey, nonce, 0, 0), 0);
	memcpy(stream, nonce, 16);
	n = 16;
	for (int i = 0; i < NF; i++) {
		size_t len = 1 + (size_t)(i * 37) % 300;
		uint8_t p[300];

		memset(p, i, len);
		assert_int_equal(tcpframe_encode(&cl, p, len, stream + n), 0);
		/* Exactly LEN ^ keystream bytes 2i, 2i + 1. */
		assert_int_equal(stream[n], (uint8_t)(len >> 8) ^ ks[2 * i]);
		assert_int_equal(stream[n + 1], (uint8_t)len ^ ks[2 * i + 1]);
		n += 2 + len;
		want[wn++] = (uint8_t)(len >> 8);
		want[wn++] = (uint8_t)len;
		memcpy(want + wn, p, len);
		wn += len;
	}
	assert_int_equal(feed(&sv, stream, n, pieces, 5, 1, out, &err), wn);
	assert_int_equal(err, 0);
	assert_memory_equal(out, want, wn);
	tcpframe_clear(&cl);
	tcpframe_clear(&sv);
}

/* A header whose length is not queued does not use up keystream. */
static void test_tx_header_no_advance(void **state UNUSED)
{
	struct tcpframe cl;
	uint8_t h1[2], h2[2], out[8];

	assert_int_equal(tcpframe_init(&cl, fkey, nonce, 0, 0), 0);
	assert_int_equal(tcpframe_tx_header(&cl, 5, h1), 0);
	assert_int_equal(tcpframe_tx_header(&cl, 5, h2), 0);   /* not committed */
	assert_memory_equal(h1, h2, 2);
	assert_int_equal(tcpframe_encode(&cl, (const uint8_t *)"hello", 5, out), 0);
	assert_memory_equal(out, c2s_stream + 16, 7);
	tcpframe_clear(&cl);
}

static void test_zero_length(void **state UNUSED)
{
	struct tcpframe sv = { 0 };
	uint8_t s[18], out[8];
	int err;

	/* The masked length decodes to 0: the keystream bytes themselves. */
	memcpy(s, nonce, 16);
	s[16] = 0xe7;
	s[17] = 0x80;
	assert_int_equal(feed(&sv, s, sizeof(s), NULL, 0, 1, out, &err), 0);
	assert_int_equal(err, 1);
	tcpframe_clear(&sv);
}

static void test_oversize(void **state UNUSED)
{
	struct tcpframe sv;
	uint8_t hdr[2], ks[2];
	size_t len = 0;

	spec_keystream("c2s", ks, 2);
	/* 1200 with a limit of 1199; then the whole frame is not even needed. */
	assert_int_equal(tcpframe_init(&sv, fkey, nonce, 1, 1199), 0);
	hdr[0] = (uint8_t)(1200 >> 8) ^ ks[0];
	hdr[1] = (uint8_t)(1200 & 0xff) ^ ks[1];
	assert_int_equal(tcpframe_rx_length(&sv, hdr, &len), TCPFRAME_ERROR);
	assert_int_equal(tcpframe_decode(&sv, hdr, 2, &len, &len), TCPFRAME_ERROR);
	hdr[1] = (uint8_t)(1199 & 0xff) ^ ks[1];
	assert_int_equal(tcpframe_rx_length(&sv, hdr, &len), TCPFRAME_FRAME);
	assert_int_equal(len, 1199);
	tcpframe_clear(&sv);
	/* The default limit is the largest the 2 bytes can say. */
	assert_int_equal(tcpframe_init(&sv, fkey, nonce, 1, 0), 0);
	hdr[0] = 0xff ^ ks[0];
	hdr[1] = 0xff ^ ks[1];
	assert_int_equal(tcpframe_rx_length(&sv, hdr, &len), TCPFRAME_FRAME);
	assert_int_equal(len, 65535);
	tcpframe_clear(&sv);
}

/* A frame split across reads is not consumed, nor its keystream used. */
static void test_partial_then_rest(void **state UNUSED)
{
	struct tcpframe sv;
	const uint8_t *fr = c2s_stream + 16;
	size_t off = 0, len = 0;

	assert_int_equal(tcpframe_init(&sv, fkey, nonce, 1, 0), 0);
	for (size_t have = 0; have < 7; have++)
		assert_int_equal(tcpframe_decode(&sv, fr, have, &off, &len), TCPFRAME_MORE);
	assert_int_equal(tcpframe_decode(&sv, fr, 7, &off, &len), TCPFRAME_FRAME);
	assert_int_equal(off, 2);
	assert_int_equal(len, 5);
	assert_memory_equal(fr + off, "hello", 5);
	assert_int_equal(tcpframe_decode(&sv, fr + 7, 5, &off, &len), TCPFRAME_FRAME);
	assert_memory_equal(fr + 7 + off, "abc", 3);
	tcpframe_clear(&sv);
}

/* Garbage: random streams decode to errors or frames, never overrun. */
static void test_garbage(void **state UNUSED)
{
	static uint8_t s[4096], out[70000];
	int err;

	for (int round = 0; round < 200; round++) {
		struct tcpframe sv = { 0 };
		size_t n = 16 + wc_random_range(0, sizeof(s) - 16), got, sum = 0, pieces[1];

		assert_int_equal(wc_random(s, n), 0);
		pieces[0] = wc_random_range(0, 9);
		got = feed(&sv, s, n, pieces, 1, 1, out, &err);
		/* Every frame reported fits in what was fed. */
		for (size_t i = 0; i < got; ) {
			size_t len = (size_t)out[i] << 8 | out[i + 1];

			assert_true(len >= 1);
			i += 2 + len;
			sum += 2 + len;
		}
		assert_true(sum <= n - 16);
		tcpframe_clear(&sv);
	}
}

static void write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

/*
 * The fuzz harness's input: byte 0 is the piece size of the feed, byte 1
 * the frame limit (x 256, 0 = none), the rest the client's stream.
 */
static void test_write_corpus(void **state UNUSED)
{
	const char *dir = getenv("SCTPT_TCPFRAME_CORPUS");
	uint8_t buf[64];

	if (dir == NULL)
		skip();
	buf[0] = 0;
	buf[1] = 0;
	memcpy(buf + 2, c2s_stream, sizeof(c2s_stream));
	write_file(dir, "vector-at-once", buf, 2 + sizeof(c2s_stream));
	buf[0] = 1;
	write_file(dir, "vector-bytewise", buf, 2 + sizeof(c2s_stream));
	buf[0] = 3;
	write_file(dir, "vector-partial", buf, 2 + 16 + 5);
	buf[0] = 0;
	buf[18] = 0xe7;
	buf[19] = 0x80;
	write_file(dir, "zero-length", buf, 2 + 18);
	buf[1] = 1;
	buf[18] = 0xe7 ^ 0x04;
	write_file(dir, "oversize", buf, 2 + 18 + 4);
}

/* ---------- the TCP carrier over loopback, with faults ---------- */

struct pair {
	struct event_base *base;
	struct carrier *server, *client;
	struct sockaddr_storage saddr;
	socklen_t slen;
	uint8_t got[16][64];
	size_t gotlen[16];
	int ngot;
	int free_in_cb;          /* the server frees itself on the first datagram */
	int drop_in_cb;          /* the server drops the peer on the first datagram */
	int downs;
};

static void srv_recv(struct carrier *c, const struct sockaddr *from, socklen_t fromlen,
                     uint8_t *buf, size_t len, void *arg)
{
	struct pair *p = arg;

	(void)fromlen;
	if (p->ngot < 16 && len <= 64) {
		memcpy(p->got[p->ngot], buf, len);
		p->gotlen[p->ngot] = len;
	}
	p->ngot++;
	if (p->drop_in_cb) {
		/* As the wire layer does with a probe. */
		carrier_drop_peer(c, from);
		return;
	}
	carrier_peer_ok(c, from);
	if (p->free_in_cb) {
		/* As wire_link_free may: the carrier must not touch itself after. */
		carrier_drop_peer(c, from);
		carrier_free(c);
		p->server = NULL;
		event_base_loopbreak(p->base);
	}
}

static void cli_recv(struct carrier *c, const struct sockaddr *from, socklen_t fromlen,
                     uint8_t *buf, size_t len, void *arg)
{
	(void)c, (void)from, (void)fromlen, (void)buf, (void)len, (void)arg;
}

static void cli_down(struct carrier *c, const char *why, void *arg)
{
	struct pair *p = arg;

	(void)c, (void)why;
	p->downs++;
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	event_base_loopbreak(arg);
}

static void run_for(struct pair *p, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_once(p->base, -1, EV_TIMEOUT, stop_cb, p->base, &tv);
	event_base_dispatch(p->base);
}

static int pair_open(struct pair *p)
{
	struct sockaddr_in sin;

	memset(p, 0, sizeof(*p));
	p->base = event_base_new();
	assert_non_null(p->base);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->server = carrier_tcp_listen(p->base, (struct sockaddr *)&sin, sizeof(sin), fkey,
	                               srv_recv, p);
	assert_non_null(p->server);
	assert_int_equal(carrier_local_addr(p->server, &p->saddr, &p->slen), 0);
	p->client = carrier_tcp_connect(p->base, NULL, 0, (struct sockaddr *)&p->saddr,
	                                p->slen, NULL, fkey, cli_recv, p);
	if (p->client != NULL)
		carrier_set_down(p->client, cli_down, p);
	return p->client != NULL ? 0 : -1;
}

static void pair_close(struct pair *p)
{
	carrier_free(p->client);
	carrier_free(p->server);
	event_base_free(p->base);
	fault_reset();
}

static int fault_build(void)
{
	return FAULT_INJECTION_BUILT;
}

/* A frame that cannot be queued leaves no trace: later frames still parse. */
static void test_carrier_send_fault(void **state UNUSED)
{
	struct pair p;

	if (!fault_build())
		skip();
	assert_int_equal(pair_open(&p), 0);
	assert_int_equal(carrier_send(p.client, NULL, 0, (const uint8_t *)"one", 3), 0);
	fault_arm("tcp_frame_add", 1, 1);
	assert_int_equal(carrier_send(p.client, NULL, 0, (const uint8_t *)"two", 3), -1);
	assert_int_equal(fault_fired("tcp_frame_add"), 1);
	assert_int_equal(carrier_send(p.client, NULL, 0, (const uint8_t *)"three", 5), 0);
	run_for(&p, 300);
	assert_int_equal(p.ngot, 2);
	assert_memory_equal(p.got[0], "one", 3);
	assert_int_equal(p.gotlen[1], 5);
	assert_memory_equal(p.got[1], "three", 5);
	pair_close(&p);
}

/* The layer above frees the carrier inside its receive callback. */
static void test_carrier_free_in_callback(void **state UNUSED)
{
	struct pair p;

	assert_int_equal(pair_open(&p), 0);
	p.free_in_cb = 1;
	/* Two frames in one read: the second must not be delivered. */
	assert_int_equal(carrier_send(p.client, NULL, 0, (const uint8_t *)"a", 1), 0);
	assert_int_equal(carrier_send(p.client, NULL, 0, (const uint8_t *)"b", 1), 0);
	run_for(&p, 300);
	assert_int_equal(p.ngot, 1);
	assert_null(p.server);
	pair_close(&p);
}

/* Allocation failures while making carriers and accepting: clean refusals. */
static void test_carrier_alloc_faults(void **state UNUSED)
{
	static const char *sites[] = { "tcp_event_new", "tcp_evtimer_new", "tcp_bufferevent_new" };
	struct pair p;

	if (!fault_build())
		skip();
	/* The client cannot be made: NULL, nothing leaked (ASan run). */
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(pair_open(&p), 0);
		carrier_free(p.client);
		fault_arm(sites[i], 1, 1);
		p.client = carrier_tcp_connect(p.base, NULL, 0, (struct sockaddr *)&p.saddr,
		                               p.slen, NULL, fkey, cli_recv, &p);
		if (strcmp(sites[i], "tcp_event_new") == 0 || strcmp(sites[i], "tcp_evtimer_new") == 0 ||
		    strcmp(sites[i], "tcp_bufferevent_new") == 0)
			assert_null(p.client);
		assert_int_equal(fault_fired(sites[i]), 1);
		pair_close(&p);
	}
	/* The server cannot take a connection: it closes it and serves the next. */
	for (size_t i = 1; i < 3; i++) {
		assert_int_equal(pair_open(&p), 0);
		fault_arm(sites[i], 1, 1);   /* the client is made: the next is the accept */
		assert_int_equal(carrier_send(p.client, NULL, 0, (const uint8_t *)"x", 1), 0);
		run_for(&p, 200);
		assert_int_equal(fault_fired(sites[i]), 1);
		assert_int_equal(p.ngot, 0);
		assert_int_equal(p.downs, 1);   /* the client saw its connection end */
		carrier_free(p.client);
		p.client = carrier_tcp_connect(p.base, NULL, 0, (struct sockaddr *)&p.saddr,
		                               p.slen, NULL, fkey, cli_recv, &p);
		assert_non_null(p.client);
		assert_int_equal(carrier_send(p.client, NULL, 0, (const uint8_t *)"y", 1), 0);
		run_for(&p, 200);
		assert_int_equal(p.ngot, 1);
		pair_close(&p);
	}
}

/*
 * A probe dropped from inside the receive callback, its drain timer not
 * armable: the connection is closed from the loop (the client sees it
 * end), not freed under the callback's feet (the ASan run checks).
 */
static void test_carrier_drain_fault(void **state UNUSED)
{
	struct pair p;

	if (!fault_build())
		skip();
	assert_int_equal(pair_open(&p), 0);
	p.drop_in_cb = 1;
	fault_arm("tcp_evtimer_add", 1, 1);   /* the drain's timer */
	assert_int_equal(carrier_send(p.client, NULL, 0, (const uint8_t *)"junk", 4), 0);
	assert_int_equal(carrier_send(p.client, NULL, 0, (const uint8_t *)"more", 4), 0);
	run_for(&p, 300);
	assert_int_equal(fault_fired("tcp_evtimer_add"), 1);
	assert_int_equal(p.ngot, 1);      /* nothing after the drop */
	assert_int_equal(p.downs, 1);
	pair_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector_encode),
		cmocka_unit_test(test_vector_decode_pieces),
		cmocka_unit_test(test_roundtrip_many),
		cmocka_unit_test(test_tx_header_no_advance),
		cmocka_unit_test(test_zero_length),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_partial_then_rest),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_write_corpus),
		cmocka_unit_test(test_carrier_send_fault),
		cmocka_unit_test(test_carrier_free_in_callback),
		cmocka_unit_test(test_carrier_alloc_faults),
		cmocka_unit_test(test_carrier_drain_fault),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
