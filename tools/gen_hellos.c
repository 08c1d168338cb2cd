/*
 * Prints valid HELLOs for a cert= value, one hex line each, with fresh keys,
 * randomness and the current time: what a holder of cert= can make at will.
 * tests/integration/test_flood.py sends them from many ports and addresses
 * (never finishing the handshake) to check that pending sessions cannot lock
 * new clients out.  A test tool: not installed, not part of sctpt.
 *   gen_hellos CERT COUNT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "wire/handshake.h"

#define GEN_MAX 100000

int main(int argc, char **argv)
{
	struct wire_cert cert;
	struct hs_client st;
	uint8_t e_priv[WC_KEY_LEN], r[WIRE_RAND_LEN], pad[64], out[HS_MAX];
	const char *c;
	char *end;
	long count;

	if (argc != 3) {
		fprintf(stderr, "usage: gen_hellos CERT COUNT\n");
		return 2;
	}
	c = strncmp(argv[1], "cert=", 5) == 0 ? argv[1] + 5 : argv[1];
	count = strtol(argv[2], &end, 10);
	if (wire_cert_decode(c, &cert) < 0 || *end != '\0' || count < 0 || count > GEN_MAX) {
		fprintf(stderr, "gen_hellos: need a cert (64 base64 characters) and a count "
		        "0..%d\n", GEN_MAX);
		return 2;
	}
	memset(pad, 0, sizeof(pad));
	for (long i = 0; i < count; i++) {
		size_t padlen = wc_random_range(16, sizeof(pad));
		int n;

		if (wc_random(e_priv, sizeof(e_priv)) < 0 || wc_random(r, sizeof(r)) < 0)
			return 1;
		n = hs_client_hello(&cert, &st, e_priv, r, (uint64_t)time(NULL) / 60, pad, padlen,
		                    out);
		if (n < 0)
			return 1;
		for (int k = 0; k < n; k++)
			printf("%02x", out[k]);
		printf("\n");
	}
	wc_wipe(e_priv, sizeof(e_priv));
	wc_wipe(&st, sizeof(st));
	return fflush(stdout) == 0 ? 0 : 1;
}
