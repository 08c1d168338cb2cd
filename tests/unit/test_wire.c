/*
 * Unit tests for the wire layer's admission check: which datagrams from an
 * unknown address may create a session.  Raw bytes only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "wire/wire.h"

/* A minimal well-formed SCTP INIT: common header + INIT chunk (20 bytes). */
static const uint8_t init_pkt[32] = {
	0x13, 0x88, 0x13, 0x88,         /* ports 5000 -> 5000 */
	0x00, 0x00, 0x00, 0x00,         /* verification tag 0 */
	0x12, 0x34, 0x56, 0x78,         /* checksum (not checked here) */
	0x01, 0x00, 0x00, 0x14,         /* INIT, flags 0, length 20 */
	0xde, 0xad, 0xbe, 0xef,         /* initiate tag */
	0x00, 0x01, 0x00, 0x00,         /* a_rwnd */
	0xff, 0xff, 0xff, 0xff,         /* streams out / in */
	0x00, 0x00, 0x00, 0x01,         /* initial TSN */
};

static void test_init_admitted(void **state)
{
	assert_true(wire_is_session_start(init_pkt, sizeof(init_pkt)));
}

static void test_every_truncation_refused(void **state)
{
	for (size_t n = 0; n < sizeof(init_pkt); n++)
		assert_false(wire_is_session_start(init_pkt, n));
}

static void test_nonzero_vtag_refused(void **state)
{
	uint8_t p[sizeof(init_pkt)];

	for (int i = 4; i < 8; i++) {
		memcpy(p, init_pkt, sizeof(p));
		p[i] = 1;
		assert_false(wire_is_session_start(p, sizeof(p)));
	}
}

static void test_other_chunks_refused(void **state)
{
	uint8_t p[sizeof(init_pkt)];

	for (int t = 0; t < 256; t++) {
		if (t == 1)
			continue;
		memcpy(p, init_pkt, sizeof(p));
		p[12] = (uint8_t)t;
		assert_false(wire_is_session_start(p, sizeof(p)));
	}
}

static void test_bad_chunk_length_refused(void **state)
{
	uint8_t p[sizeof(init_pkt)];

	memcpy(p, init_pkt, sizeof(p));
	p[15] = 19;                     /* shorter than an INIT */
	assert_false(wire_is_session_start(p, sizeof(p)));
	p[15] = 21;                     /* longer than the datagram */
	assert_false(wire_is_session_start(p, sizeof(p)));
	p[14] = 0xff;
	p[15] = 0xff;
	assert_false(wire_is_session_start(p, sizeof(p)));
}

static void test_zero_initiate_tag_refused(void **state)
{
	uint8_t p[sizeof(init_pkt)];

	memcpy(p, init_pkt, sizeof(p));
	memset(p + 16, 0, 4);
	assert_false(wire_is_session_start(p, sizeof(p)));
}

static void test_random_garbage_rarely_admitted(void **state)
{
	/* Fixed-seed LCG: random datagrams essentially never look like INIT. */
	uint32_t x = 12345;
	int admitted = 0;
	uint8_t p[1500];

	for (int i = 0; i < 100000; i++) {
		size_t n = (x >> 8) % sizeof(p);

		for (size_t k = 0; k < n; k++) {
			x = x * 1103515245u + 12345u;
			p[k] = (uint8_t)(x >> 16);
		}
		admitted += wire_is_session_start(p, n);
	}
	assert_int_equal(admitted, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_admitted),
		cmocka_unit_test(test_every_truncation_refused),
		cmocka_unit_test(test_nonzero_vtag_refused),
		cmocka_unit_test(test_other_chunks_refused),
		cmocka_unit_test(test_bad_chunk_length_refused),
		cmocka_unit_test(test_zero_initiate_tag_refused),
		cmocka_unit_test(test_random_garbage_rarely_admitted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
