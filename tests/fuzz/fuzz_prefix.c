/*
 * libFuzzer harness for --prefix (issue 16): the spec parser
 * (util/prefix.c) and the server's view of a prefixed HELLO
 * (hs_hello_locate, hs_server_parse).
 *
 * The first byte selects the mode:
 *   0  the rest is a --prefix spec: a success gives 1..PREFIX_MAX bytes,
 *      and their hex: spelling parses back to the same bytes;
 *   1  the rest is a datagram: anything located lies inside it;
 *   2  the rest is XORed onto a genuine prefixed HELLO: it parses if and
 *      only if nothing changed (the prefix and length byte included);
 *   3  the rest is a port range (util/portrange.c, port hopping): a
 *      success is ascending, at most PORTRANGE_MAX ports, and prints back
 *      to the same text;
 *   4  the rest is the start of a TCP-carrier stream: a prefix found lies
 *      within it with room for the nonce and the tag; and the rest, as a
 *      prefix of up to 64 bytes, makes a head that is found again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "carrier/tcpframe.h"
#include "util/portrange.h"
#include "util/prefix.h"
#include "wire/handshake.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct wire_identity id;
static struct wc_hmac *mac, *mac_p, *tcp_mac;
static uint8_t hello[HS_MAX];
static size_t hello_len;

static void setup(void)
{
	static const uint8_t pfx[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
	uint8_t priv[32], secret[16], epriv[32], rc[16], k[WC_KEY_LEN], pad[9] = { 0 };
	struct hs_client cst;
	int n;

	for (int i = 0; i < 32; i++) {
		priv[i] = (uint8_t)(1 + i);
		epriv[i] = (uint8_t)(0x21 + i);
	}
	memset(secret, 0x40, sizeof(secret));
	memset(rc, 0x60, sizeof(rc));
	CHECK(wire_identity_from_priv(&id, priv, secret) == 0);
	CHECK(hs_mac_key(&id.cert, k) == 0);
	mac = wc_hmac_new(k, sizeof(k));
	CHECK(hs_mac_key_prefixed(&id.cert, k) == 0);
	mac_p = wc_hmac_new(k, sizeof(k));
	memset(k, 0x5a, sizeof(k));
	tcp_mac = tcpframe_prefix_mac(k);
	CHECK(mac != NULL && mac_p != NULL && tcp_mac != NULL);
	n = hs_client_hello_prefixed(&id.cert, &cst, epriv, rc, 29876543, pfx, sizeof(pfx) - 1,
	                             pad, sizeof(pad), hello);
	CHECK(n > 0);
	hello_len = (size_t)n;
}

static void spec(const uint8_t *data, size_t size)
{
	uint8_t a[PREFIX_MAX], b[PREFIX_MAX];
	char hex[4 + 2 * PREFIX_MAX];
	const char *err = NULL;
	int n, m;

	n = prefix_parse((const char *)data, size, a, &err);
	if (n < 0) {
		CHECK(err != NULL);
		return;
	}
	CHECK(n >= 1 && n <= PREFIX_MAX);
	memcpy(hex, "hex:", 4);
	for (int i = 0; i < n; i++) {
		hex[4 + 2 * i] = "0123456789abcdef"[a[i] >> 4];
		hex[5 + 2 * i] = "0123456789abcdef"[a[i] & 15];
	}
	m = prefix_parse(hex, 4 + 2 * (size_t)n, b, &err);
	CHECK(m == n && memcmp(a, b, (size_t)n) == 0);
}

static void range(const uint8_t *data, size_t size)
{
	char txt[16];
	const char *err = NULL;
	uint16_t lo, hi;
	int n;

	if (portrange_parse((const char *)data, size, &lo, &hi, &err) < 0) {
		CHECK(err != NULL);
		return;
	}
	CHECK(lo >= 1 && lo < hi && (unsigned)hi - lo < PORTRANGE_MAX);
	n = snprintf(txt, sizeof(txt), "%u-%u", (unsigned)lo, (unsigned)hi);
	CHECK(n > 0 && (size_t)n == size && memcmp(txt, data, size) == 0);
}

static void tcp_head(const uint8_t *data, size_t size)
{
	static const uint8_t nonce[TCPFRAME_NONCE_LEN] = { 1, 2, 3 };
	uint8_t head[TCPFRAME_PREFIX_SCAN];
	size_t plen = tcpframe_prefix_find(tcp_mac, data, size);
	int n;

	CHECK(plen <= TCPFRAME_PREFIX_MAX &&
	      (plen == 0 || plen + TCPFRAME_NONCE_LEN + TCPFRAME_TAG_LEN <= size));
	if (size == 0 || size > TCPFRAME_PREFIX_MAX)
		return;
	n = tcpframe_prefix_head(tcp_mac, data, size, nonce, head);
	CHECK(n == (int)(size + TCPFRAME_NONCE_LEN + TCPFRAME_TAG_LEN));
	/* found at this length, unless a shorter one matches by chance (2^-32 each) */
	plen = tcpframe_prefix_find(tcp_mac, head, (size_t)n);
	CHECK(plen >= 1 && plen <= size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[HS_MAX + 1];
	struct hs_server s;
	size_t off, blen;
	int same;

	if (mac == NULL)
		setup();
	if (size == 0)
		return 0;
	switch (data[0] % 5) {
	case 0:
		spec(data + 1, size - 1);
		break;
	case 1:
		if (hs_hello_locate(mac, mac_p, data + 1, size - 1, &off, &blen))
			CHECK(off <= HS_PREFIX_MAX && blen >= HS_HELLO_MIN - WIRE_MAC_LEN &&
			      off + blen <= size - 1 - WIRE_MAC_LEN);
		break;
	case 2:
		size--;
		if (size > HS_MAX)
			size = HS_MAX;
		same = size == hello_len;
		for (size_t i = 0; i < size; i++) {
			buf[i] = (i < hello_len ? hello[i] : 0) ^ data[1 + i];
			same &= data[1 + i] == 0;
		}
		CHECK((hs_server_parse(&id, buf, size, &s) == 0) == same);
		break;
	case 3:
		range(data + 1, size - 1);
		break;
	case 4:
		tcp_head(data + 1, size - 1);
		break;
	}
	return 0;
}
