/*
 * The carrier's zero-copy send slots (carrier_tx_slot / carrier_tx_commit)
 * on real loopback UDP sockets: what is built in a slot arrives as built,
 * in order, also across a full batch; and every way of not getting or
 * misusing a slot (TCP carrier, oversize, no slot taken, commit longer
 * than the slot, a fault at the slot) drops cleanly and is counted.
 * Plus the wire layer's in-place open: a rejected datagram is left as it
 * came; and the direct-to-provider AEAD path agrees with EVP's.
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
#include "crypto/crypto.h"
#include "util/fault.h"
#include "wire/seal.h"

#define NPKT 150        /* more than two send batches */

struct rx {
	unsigned n;
	size_t len[NPKT];
	uint8_t first[NPKT];
	int bad;            /* a datagram not as built */
};

static void rx_cb(struct carrier *c, const struct sockaddr *from, socklen_t fromlen,
                  uint8_t *buf, size_t len, void *arg)
{
	struct rx *r = arg;

	if (r->n >= NPKT)
		return;
	r->len[r->n] = len;
	r->first[r->n] = buf[0];
	for (size_t i = 1; i < len; i++)
		if (buf[i] != (uint8_t)(buf[0] + i))
			r->bad = 1;
	r->n++;
}

static void loopback(struct sockaddr_in *sin)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

struct pair {
	struct event_base *base;
	struct carrier *srv, *cli;
	struct sockaddr_storage srv_addr, cli_addr;
	socklen_t srv_len, cli_len;
	struct rx at_srv, at_cli;
};

static void pair_open(struct pair *p)
{
	struct sockaddr_in any;

	memset(p, 0, sizeof(*p));
	p->base = event_base_new();
	assert_non_null(p->base);
	loopback(&any);
	p->srv = carrier_udp_new(p->base, (struct sockaddr *)&any, sizeof(any), NULL, 0,
	                         rx_cb, &p->at_srv);
	assert_non_null(p->srv);
	assert_int_equal(carrier_local_addr(p->srv, &p->srv_addr, &p->srv_len), 0);
	p->cli = carrier_udp_new(p->base, NULL, 0, (struct sockaddr *)&p->srv_addr,
	                         p->srv_len, rx_cb, &p->at_cli);
	assert_non_null(p->cli);
	assert_int_equal(carrier_local_addr(p->cli, &p->cli_addr, &p->cli_len), 0);
}

static void pair_close(struct pair *p)
{
	carrier_free(p->cli);
	carrier_free(p->srv);
	event_base_free(p->base);
}

static void fill(uint8_t *b, size_t len, uint8_t first)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(first + i);
}

/* Run the loop until `want` datagrams arrived at r (or 2 s). */
static void wait_for(struct pair *p, struct rx *r, unsigned want)
{
	for (int i = 0; i < 200 && r->n < want; i++) {
		struct timeval tv = { 0, 10000 };

		event_base_loopexit(p->base, &tv);
		event_base_dispatch(p->base);
	}
}

static void test_slots_arrive_in_order(void **state)
{
	struct pair p;
	struct carrier_stats st;

	pair_open(&p);
	/* Client (connected) to server, more than two full batches. */
	for (unsigned i = 0; i < NPKT; i++) {
		size_t len = 100 + i % 3 * 500;
		uint8_t *s = carrier_tx_slot(p.cli, len);

		assert_non_null(s);
		fill(s, len, (uint8_t)i);
		assert_int_equal(carrier_tx_commit(p.cli, NULL, 0, len), 0);
	}
	wait_for(&p, &p.at_srv, NPKT);
	assert_int_equal(p.at_srv.n, NPKT);
	assert_false(p.at_srv.bad);
	for (unsigned i = 0; i < NPKT; i++) {
		assert_int_equal(p.at_srv.first[i], (uint8_t)i);
		assert_int_equal(p.at_srv.len[i], 100 + i % 3 * 500);
	}
	carrier_get_stats(p.cli, &st);
	assert_int_equal(st.tx_packets, NPKT);
	assert_int_equal(st.tx_dropped, 0);

	/* Server (unconnected) back, with a shorter commit than the slot. */
	for (unsigned i = 0; i < 3; i++) {
		uint8_t *s = carrier_tx_slot(p.srv, 1400);

		assert_non_null(s);
		fill(s, 1000, (uint8_t)(7 * i));
		assert_int_equal(carrier_tx_commit(p.srv, (struct sockaddr *)&p.cli_addr,
		                                   p.cli_len, 1000), 0);
	}
	wait_for(&p, &p.at_cli, 3);
	assert_int_equal(p.at_cli.n, 3);
	assert_false(p.at_cli.bad);
	assert_int_equal(p.at_cli.first[2], 14);
	pair_close(&p);
}

static void test_slot_failures(void **state)
{
	struct pair p;
	struct carrier_stats st;
	uint8_t *s;
	uint8_t big[3000];

	pair_open(&p);
	/* Oversize: no slot; carrier_send still sends it, in order. */
	assert_null(carrier_tx_slot(p.cli, 2049));
	assert_null(carrier_tx_slot(p.cli, 0));
	/* Commit without a slot taken, and after the slot was used. */
	assert_int_equal(carrier_tx_commit(p.cli, NULL, 0, 100), -1);
	s = carrier_tx_slot(p.cli, 200);
	assert_non_null(s);
	fill(s, 200, 1);
	/* Longer than the slot: dropped, and the slot is gone. */
	assert_int_equal(carrier_tx_commit(p.cli, NULL, 0, 201), -1);
	assert_int_equal(carrier_tx_commit(p.cli, NULL, 0, 200), -1);
	/* Unconnected carrier without a destination. */
	assert_non_null(carrier_tx_slot(p.srv, 100));
	assert_int_equal(carrier_tx_commit(p.srv, NULL, 0, 100), -1);
	carrier_get_stats(p.cli, &st);
	assert_int_equal(st.tx_dropped, 3);
	if (FAULT_INJECTION_BUILT) {
		fault_arm("udp_tx_slot", 1, 1);
		assert_null(carrier_tx_slot(p.cli, 100));
		fault_reset();
	}
	/* An untaken slot does not block: a normal send and a big one pass. */
	fill(big, sizeof(big), 9);
	assert_int_equal(carrier_send(p.cli, NULL, 0, big, 500), 0);
	assert_int_equal(carrier_send(p.cli, NULL, 0, big, sizeof(big)), 0);
	wait_for(&p, &p.at_srv, 2);
	assert_int_equal(p.at_srv.n, 2);
	assert_int_equal(p.at_srv.len[0], 500);
	assert_int_equal(p.at_srv.len[1], sizeof(big));
	assert_false(p.at_srv.bad);
	pair_close(&p);
}

static void test_tcp_has_no_slots(void **state)
{
	struct event_base *base = event_base_new();
	struct sockaddr_in any;
	static const uint8_t key[32];
	struct carrier *c;

	loopback(&any);
	c = carrier_tcp_listen(base, (struct sockaddr *)&any, sizeof(any), key, rx_cb, NULL);
	assert_non_null(c);
	assert_null(carrier_tx_slot(c, 100));
	assert_int_equal(carrier_tx_commit(c, (struct sockaddr *)&any, sizeof(any), 100), -1);
	carrier_free(c);
	event_base_free(base);
}

/* In-place open: authentic opens in place; anything rejected is left as it came. */
static void test_open_inplace_restores(void **state)
{
	struct wire_dir_keys k;
	struct wire_dir tx, rx;
	uint8_t pkt[300], dg[300 + WIRE_DATA_OVERHEAD + 20], copy[sizeof(dg)];
	const uint8_t *out;
	ssize_t n;

	assert_int_equal(wc_random((uint8_t *)&k, sizeof(k)), 0);
	assert_int_equal(wc_random(pkt, sizeof(pkt)), 0);
	assert_int_equal(wire_dir_init(&tx, &k, 0), 0);
	assert_int_equal(wire_dir_init(&rx, &k, 0), 0);
	n = wire_seal_packet(&tx, pkt, sizeof(pkt), 20, dg);
	assert_int_equal(n, (ssize_t)sizeof(dg));
	/* A flipped ciphertext bit: rejected after the cipher ran, restored. */
	dg[100] ^= 0x04;
	memcpy(copy, dg, sizeof(dg));
	assert_int_equal(wire_open_packet_inplace(&rx, dg, sizeof(dg), &out), -1);
	assert_null(out);
	assert_memory_equal(dg, copy, sizeof(dg));
	/* Truncated: rejected before, untouched. */
	assert_int_equal(wire_open_packet_inplace(&rx, dg, 10, &out), -1);
	assert_memory_equal(dg, copy, sizeof(dg));
	dg[100] ^= 0x04;
	assert_int_equal(wire_open_packet_inplace(&rx, dg, sizeof(dg), &out), sizeof(pkt));
	assert_ptr_equal(out, dg + 8);
	assert_memory_equal(out, pkt, sizeof(pkt));
	/* Replayed: refused, and the datagram is what it was (now plaintext). */
	memcpy(copy, dg, sizeof(dg));
	assert_int_equal(wire_open_packet_inplace(&rx, dg, sizeof(dg), &out), WIRE_REPLAY);
	assert_memory_equal(dg, copy, sizeof(dg));
	wire_dir_clear(&tx);
	wire_dir_clear(&rx);
}

/*
 * The AEAD and the header mask run through the provider's functions
 * directly, or through EVP where those cannot be found (forced here with
 * the crypto_no_direct fault): both must give the same bytes both ways.
 */
static void test_direct_and_evp_agree(void **state)
{
	struct wire_dir_keys k;
	struct wire_dir tx_d, tx_e, rx_d, rx_e;
	uint8_t pkt[500], a[500 + WIRE_DATA_OVERHEAD + 10], b[sizeof(a)];
	const uint8_t *out;

	if (!FAULT_INJECTION_BUILT)
		skip();
	assert_int_equal(wc_random((uint8_t *)&k, sizeof(k)), 0);
	assert_int_equal(wc_random(pkt, sizeof(pkt)), 0);
	assert_int_equal(wire_dir_init(&tx_d, &k, 0), 0);
	assert_int_equal(wire_dir_init(&rx_d, &k, 0), 0);
	fault_arm("crypto_no_direct", 1, 0);
	assert_int_equal(wire_dir_init(&tx_e, &k, 0), 0);
	assert_int_equal(wire_dir_init(&rx_e, &k, 0), 0);
	assert_int_equal(fault_fired("crypto_no_direct"), 4);   /* 2 AEADs, 2 masks on EVP */
	fault_reset();
	for (int i = 0; i < 3; i++) {
		assert_int_equal(wire_seal_packet(&tx_d, pkt, sizeof(pkt), 10, a), sizeof(a));
		assert_int_equal(wire_seal_packet(&tx_e, pkt, sizeof(pkt), 10, b), sizeof(b));
		assert_memory_equal(a, b, sizeof(a));
		/* Each opened by the other path. */
		assert_int_equal(wire_open_packet_inplace(&rx_e, a, sizeof(a), &out), sizeof(pkt));
		assert_memory_equal(out, pkt, sizeof(pkt));
		b[50] ^= 1;
		memcpy(a, b, sizeof(a));
		assert_int_equal(wire_open_packet_inplace(&rx_d, b, sizeof(b), &out), -1);
		assert_memory_equal(a, b, sizeof(a));   /* restored */
		b[50] ^= 1;
		assert_int_equal(wire_open_packet_inplace(&rx_d, b, sizeof(b), &out), sizeof(pkt));
		assert_memory_equal(out, pkt, sizeof(pkt));
	}
	wire_dir_clear(&tx_d);
	wire_dir_clear(&tx_e);
	wire_dir_clear(&rx_d);
	wire_dir_clear(&rx_e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slots_arrive_in_order),
		cmocka_unit_test(test_slot_failures),
		cmocka_unit_test(test_tcp_has_no_slots),
		cmocka_unit_test(test_open_inplace_restores),
		cmocka_unit_test(test_direct_and_evp_agree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
