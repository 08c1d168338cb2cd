/*
 * Prints the wire protocol test vectors of docs/PROTOCOL.md from fixed
 * inputs.  tests/unit/test_wire.c recomputes them and compares with the
 * document, so the document and the code cannot drift apart.
 *   build-dev/gen_vectors > vectors.txt
 */
#include <stdio.h>
#include <string.h>

#include "wire/handshake.h"
#include "wire/seal.h"

static void hex(const char *name, const uint8_t *p, size_t n)
{
	printf("%s: ", name);
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	printf("\n");
}

static void fill(uint8_t *p, size_t n, uint8_t start)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(start + i);
}

int main(void)
{
	struct wire_identity id;
	struct hs_client cst;
	struct hs_server sst;
	struct wire_session_keys ks, kc;
	struct wire_dir dir;
	uint8_t spriv[32], secret[16], epriv[32], rc[16], fpriv[32], rs[16];
	uint8_t hpad[5] = { 0 }, rpad[3] = { 0 }, hello[HS_MAX], reply[HS_MAX];
	uint8_t sctp[12 + 16], out[256], mins[8];
	uint64_t minutes = 29876543;   /* 2026-10-20, minutes since 1970 */
	char cert[WIRE_CERT_B64_MAX];
	int hl, rl;
	ssize_t n;

	fill(spriv, 32, 0x01);
	fill(secret, 16, 0x40);
	fill(epriv, 32, 0x21);
	fill(rc, 16, 0x60);
	fill(fpriv, 32, 0x81);
	fill(rs, 16, 0xa0);
	fill(sctp, sizeof(sctp), 0xc0);
	if (wire_identity_from_priv(&id, spriv, secret) < 0)
		return 1;
	wire_cert_encode(&id.cert, cert, sizeof(cert));
	for (int i = 0; i < 8; i++)
		mins[i] = (uint8_t)(minutes >> (56 - 8 * i));
	hex("server_priv", spriv, 32);
	hex("bridge_secret", secret, 16);
	hex("server_pub", id.cert.pub, 32);
	printf("cert: %s\n", cert);
	hex("client_eph_priv", epriv, 32);
	hex("client_random", rc, 16);
	hex("client_minutes", mins, 8);
	hex("hello_pad", hpad, sizeof(hpad));
	if (hs_mac_key(&id.cert, out) < 0)
		return 1;
	hex("hello_mac_key", out, 32);
	hl = hs_client_hello(&id.cert, &cst, epriv, rc, minutes, hpad, sizeof(hpad), hello);
	if (hl < 0 || hs_server_parse(&id, hello, (size_t)hl, &sst) < 0)
		return 1;
	hex("hello", hello, (size_t)hl);
	hex("server_eph_priv", fpriv, 32);
	hex("server_random", rs, 16);
	hex("reply_pad", rpad, sizeof(rpad));
	rl = hs_server_reply(&id, &sst, fpriv, rs, rpad, sizeof(rpad), hello, (size_t)hl, reply, &ks);
	if (rl < 0 || hs_client_finish(&id.cert, &cst, reply, (size_t)rl, &kc) < 0 ||
	    memcmp(&ks, &kc, sizeof(ks)) != 0)
		return 1;
	hex("reply", reply, (size_t)rl);
	hex("c2s_key", ks.c2s.key, 32);
	hex("c2s_iv", ks.c2s.iv, 12);
	hex("c2s_hp", ks.c2s.hp, 32);
	hex("s2c_key", ks.s2c.key, 32);
	hex("s2c_iv", ks.s2c.iv, 12);
	hex("s2c_hp", ks.s2c.hp, 32);
	hex("sctp_packet", sctp, sizeof(sctp));
	/* c2s packet 0 with 4 bytes of padding, then packet 1 with none */
	if (wire_dir_init(&dir, &ks.c2s, 2) < 0)
		return 1;
	n = wire_seal_packet(&dir, sctp, sizeof(sctp), 4, out);
	hex("c2s_packet_0_pad4", out, (size_t)n);
	n = wire_seal_packet(&dir, sctp, sizeof(sctp), 0, out);
	hex("c2s_packet_1_pad0", out, (size_t)n);
	/* with a rekey every 4 packets (epoch shift 2): packet 4 uses key 1 */
	dir.next_seq = 4;
	n = wire_seal_packet(&dir, sctp, sizeof(sctp), 0, out);
	hex("c2s_packet_4_shift2", out, (size_t)n);
	wire_dir_clear(&dir);
	return 0;
}
