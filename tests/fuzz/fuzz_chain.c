/*
 * libFuzzer harness for the PT combiner's pure parts (src/chain): the
 * first input byte picks a target, the rest is its input.
 *
 *   0  chain_config_parse (client and server side), with the fake binary
 *      check accepting every path
 *   1  tor's per-bridge arguments: pt_args_parse, chain_args_split by hop,
 *      chain_args_socks re-encoding, and back: the round trip is exact
 *   2  SMETHOD ARGS: chain_smethod_args_parse, chain_args_combine,
 *      formatting and splitting back gives each hop its own list
 *   3  TOR_PT_SERVER_TRANSPORT_OPTIONS and TOR_PT_SERVER_BINDADDR splitting
 *   4  children's stdout lines: chain_line_parse and chain_line_relay
 *   5  the Extended ORPort server on raw bytes, whole and split alike
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char hops[3][CHAIN_NAME_MAX] = { "obfs4", "sctp", "meek_lite" };

static char *as_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	CHECK(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

static int any_exec(const char *path, char *why, size_t whylen)
{
	(void)why;
	(void)whylen;
	return path[1] == 'x' ? -1 : 0;
}

static void fuzz_config(const uint8_t *data, size_t size)
{
	static struct chain_config cfg;
	char err[CHAIN_ERR_MAX];

	for (int side = 0; side < 2; side++) {
		memset(err, 'Z', sizeof(err));
		if (chain_config_parse((const char *)data, size, (enum chain_side)side, any_exec, &cfg,
		                       err, sizeof(err)) < 0) {
			CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
			continue;
		}
		CHECK(cfg.naliases > 0 && cfg.naliases <= CHAIN_MAX_ALIASES);
		for (unsigned i = 0; i < cfg.naliases; i++) {
			const struct chain_alias *a = &cfg.alias[i];

			CHECK(chain_is_identifier(a->name));
			CHECK(a->nhops >= 2 && a->nhops <= CHAIN_MAX_HOPS);
			for (unsigned h = 0; h < a->nhops; h++) {
				const struct chain_plugin *p =
					chain_config_plugin(&cfg, (enum chain_side)side, a->hop[h]);

				CHECK(p != NULL && p->path[0] == '/');
				CHECK(chain_config_alias(&cfg, a->hop[h]) == NULL);
				for (unsigned k = 0; k < h; k++)
					CHECK(strcmp(a->hop[k], a->hop[h]) != 0);
			}
		}
	}
}

static void check_same(const struct pt_kvlist *a, const struct pt_kvlist *b)
{
	CHECK(a->n == b->n);
	for (size_t i = 0; i < a->n; i++) {
		CHECK(strcmp(a->kv[i].key, b->kv[i].key) == 0);
		CHECK(strcmp(a->kv[i].value, b->kv[i].value) == 0);
	}
}

static void fuzz_socks_args(const uint8_t *data, size_t size)
{
	static struct pt_kvlist in, per[3], back;
	uint8_t user[255], pass[255], joined[512];
	size_t ulen, plen;
	const char *err;

	if (pt_args_parse(data, size, &in, &err) < 0)
		return;
	if (chain_args_split(&in, hops, 3, per, &err) < 0) {
		CHECK(err != NULL);
		return;
	}
	for (unsigned h = 0; h < 3; h++) {
		int n;

		if (chain_args_socks(&per[h], user, &ulen, pass, &plen) < 0)
			continue;
		CHECK(ulen <= 255 && plen <= 255);
		if (per[h].n == 0) {
			CHECK(ulen == 0);
			continue;
		}
		n = pt_args_join(user, ulen, pass, plen, joined, sizeof(joined));
		CHECK(n > 0);
		CHECK(pt_args_parse(joined, (size_t)n, &back, &err) == 0);
		check_same(&per[h], &back);
	}
}

static void fuzz_smethod_args(const uint8_t *data, size_t size)
{
	static struct pt_kvlist per[3], all, back[3], again;
	static char out[3 * PT_LINE_MAX];
	char *s = as_string(data, size), *parts[3] = { s, NULL, NULL };
	const char *err;
	unsigned n = 1;

	/* Up to three hops' ARGS, separated by a newline. */
	for (char *p = s; *p != '\0' && n < 3; p++)
		if (*p == '\n') {
			*p = '\0';
			parts[n++] = p + 1;
		}
	for (unsigned h = 0; h < n; h++)
		if (chain_smethod_args_parse(parts[h], &per[h], &err) < 0)
			goto out;
	if (chain_args_combine(hops, per, n, &all, &err) < 0)
		goto out;
	if (chain_args_format_smethod(&all, out, sizeof(out)) == 0) {
		CHECK(chain_smethod_args_parse(out, &again, &err) == 0);
		check_same(&all, &again);
	}
	(void)chain_args_format_bridge(&all, out, sizeof(out));
	CHECK(chain_args_split(&all, hops, n, back, &err) == 0);
	for (unsigned h = 0; h < n; h++)
		check_same(&per[h], &back[h]);
out:
	free(s);
}

static void fuzz_env(const uint8_t *data, size_t size)
{
	static char out[3][PT_LINE_MAX];
	char err[256], addr[64], *s = as_string(data, size);

	if (chain_server_options_split(s, "obfs4_sctp", hops, 3, out, err, sizeof(err)) == 0)
		for (unsigned h = 0; h < 3; h++)
			CHECK(strnlen(out[h], PT_LINE_MAX) < PT_LINE_MAX);
	(void)chain_bindaddr_find(s, "obfs4_sctp", addr, sizeof(addr));
	(void)chain_list_has(s, "obfs4_sctp");
	free(s);
}

static void fuzz_lines(const uint8_t *data, size_t size)
{
	static struct chain_line l;
	static char out[PT_LINE_MAX];
	char *s = as_string(data, size);

	(void)chain_line_parse(s, CHAIN_CLIENT, &l);
	(void)chain_line_parse(s, CHAIN_SERVER, &l);
	if (chain_line_relay(s, "obfs4_sctp", 1, "sctp", out, sizeof(out)) == 0)
		CHECK(strnlen(out, sizeof(out)) < sizeof(out));
	free(s);
}

static const uint8_t fz_cookie[32] = { 3, 1, 4, 1, 5 };
static const uint8_t fz_nonce[32] = { 2, 7, 1, 8 };

static int srv_run(struct extor_server *st, const uint8_t *data, size_t size, size_t chunk,
                   size_t *total_out)
{
	uint8_t g[2], out[EXTOR_OUT_MAX];
	size_t off = 0, avail = 0, used, outlen;
	int r = EXTOR_NEED_MORE;

	extor_server_init(st, fz_cookie, fz_nonce, g);
	*total_out = 0;
	while (r == EXTOR_NEED_MORE && avail < size) {
		avail = avail + chunk < size ? avail + chunk : size;
		r = extor_server_step(st, data + off, avail - off, &used, out, &outlen);
		CHECK(used <= avail - off && outlen <= EXTOR_OUT_MAX);
		off += used;
		*total_out += outlen;
	}
	return r;
}

static void fuzz_extor(const uint8_t *data, size_t size)
{
	static struct extor_server a, b;
	size_t oa, ob;
	int ra, rb;

	ra = srv_run(&a, data, size, size > 0 ? size : 1, &oa);
	rb = srv_run(&b, data, size, 1 + (size > 0 ? data[0] % 7 : 0), &ob);
	CHECK(ra == rb && oa == ob && a.phase == b.phase);
	if (ra == EXTOR_OKAY) {
		CHECK(strcmp(a.useraddr, b.useraddr) == 0);
		CHECK(a.transport[0] == '\0' || chain_is_identifier(a.transport));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 6) {
	case 0: fuzz_config(data + 1, size - 1); break;
	case 1: fuzz_socks_args(data + 1, size - 1); break;
	case 2: fuzz_smethod_args(data + 1, size - 1); break;
	case 3: fuzz_env(data + 1, size - 1); break;
	case 4: fuzz_lines(data + 1, size - 1); break;
	default: fuzz_extor(data + 1, size - 1); break;
	}
	return 0;
}
