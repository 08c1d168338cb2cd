/*
 * Unit tests for the PT combiner's pure parts (src/chain): the config file
 * and its exact error messages, bridge-argument namespacing both ways with
 * pt-spec escaping, ServerTransportOptions and BINDADDR splitting, the
 * address map, the Extended ORPort server against our own client, and
 * the rewriting of children's stdout lines.  Hostile inputs throughout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "chain/chain.h"
#include "pt/extor.h"
#include "util/netaddr.h"

#define UNUSED __attribute__((unused))

static struct chain_config cfg;
static char err[CHAIN_ERR_MAX];

/* Binaries under /ok/ exist and run; /noexec/ ones do not run; others are missing. */
static int fake_exec(const char *path, char *why, size_t whylen)
{
	if (strncmp(path, "/ok/", 4) == 0)
		return 0;
	snprintf(why, whylen, strncmp(path, "/noexec/", 8) == 0 ? "not executable"
	         : "no such file");
	return -1;
}

static int parse(const char *text, enum chain_side side)
{
	err[0] = '\0';
	return chain_config_parse(text, strlen(text), side, fake_exec, &cfg, err, sizeof(err));
}

#define GOOD \
	"# fog's example\n" \
	"ClientTransportPlugin obfs4 exec /ok/obfs4proxy\n" \
	"ServerTransportPlugin obfs4 exec /ok/obfs4proxy -enableLogging\n" \
	"ClientTransportPlugin sctp exec /ok/sctpt -v  # trailing comment\n" \
	"ServerTransportPlugin sctp exec /ok/sctpt\n" \
	"\n" \
	"  Alias obfs4_sctp obfs4|sctp\r\n" \
	"Alias sctp_obfs4\tsctp|obfs4\n"

static void test_config_good(void **s UNUSED)
{
	const struct chain_alias *a;
	const struct chain_plugin *p;

	assert_int_equal(parse(GOOD, CHAIN_CLIENT), 0);
	assert_int_equal(cfg.naliases, 2);
	a = chain_config_alias(&cfg, "obfs4_sctp");
	assert_non_null(a);
	assert_int_equal(a->nhops, 2);
	assert_string_equal(a->hop[0], "obfs4");
	assert_string_equal(a->hop[1], "sctp");
	p = chain_config_plugin(&cfg, CHAIN_CLIENT, "sctp");
	assert_non_null(p);
	assert_string_equal(p->path, "/ok/sctpt");
	assert_int_equal(p->argc, 1);
	assert_string_equal(p->argv[0], "-v");
	p = chain_config_plugin(&cfg, CHAIN_SERVER, "obfs4");
	assert_non_null(p);
	assert_int_equal(p->argc, 1);
	assert_null(chain_config_alias(&cfg, "nope"));
	assert_int_equal(parse(GOOD, CHAIN_SERVER), 0);
	/* One binary serving two names, three hops. */
	assert_int_equal(parse("ClientTransportPlugin a,b,c exec /ok/x\nAlias abc a|b|c\n",
	                       CHAIN_CLIENT), 0);
	assert_int_equal(cfg.alias[0].nhops, 3);
	assert_ptr_equal(chain_config_plugin(&cfg, CHAIN_CLIENT, "c"), &cfg.plugin[0]);
}

static void expect_error(const char *text, enum chain_side side, const char *msg)
{
	assert_int_equal(parse(text, side), -1);
	assert_string_equal(err, msg);
}

static void test_config_errors(void **s UNUSED)
{
	expect_error("ClientTransportPlugin obfs4 exec /ok/o\nAlias x obfs4|meek\n", CHAIN_CLIENT,
	             "line 2: Alias x: unknown transport 'meek' (no ClientTransportPlugin line for it)");
	/* The server side needs its own lines. */
	expect_error("ClientTransportPlugin a,b exec /ok/o\nAlias x a|b\n", CHAIN_SERVER,
	             "line 2: Alias x: unknown transport 'a' (no ServerTransportPlugin line for it)");
	expect_error("ClientTransportPlugin a,b exec /ok/o\nAlias x a|b|a\n", CHAIN_CLIENT,
	             "line 2: Alias x: transport 'a' appears twice (a chain may not loop "
	             "through a transport)");
	expect_error("ClientTransportPlugin a,b exec /ok/o\nAlias x a|x\n", CHAIN_CLIENT,
	             "line 2: Alias x: hop 'x' is an alias; aliases cannot contain aliases (a loop)");
	expect_error("ClientTransportPlugin a,b exec /ok/o\nAlias x a|b\nAlias y x|a\n",
	             CHAIN_CLIENT, "line 3: Alias y: hop 'x' is an alias; aliases cannot contain "
	             "aliases (a loop)");
	expect_error("ClientTransportPlugin a,b exec /ok/o\nAlias obfs4-sctp a|b\n", CHAIN_CLIENT,
	             "line 2: Alias: name 'obfs4-sctp' is not a C identifier (tor needs letters, "
	             "digits and '_', not starting with a digit)");
	expect_error("ClientTransportPlugin a,b exec /ok/o\nAlias 9x a|b\n", CHAIN_CLIENT,
	             "line 2: Alias: name '9x' is not a C identifier (tor needs letters, "
	             "digits and '_', not starting with a digit)");
	expect_error("ClientTransportPlugin a exec /missing/o\nClientTransportPlugin b exec /ok/b\n"
	             "Alias x a|b\n", CHAIN_CLIENT,
	             "line 1: transport a: cannot run /missing/o: no such file");
	expect_error("ClientTransportPlugin a exec /noexec/o\nClientTransportPlugin b exec /ok/b\n"
	             "Alias x a|b\n", CHAIN_CLIENT,
	             "line 1: transport a: cannot run /noexec/o: not executable");
	expect_error("ClientTransportPlugin a exec /ok/o\nAlias x a\n", CHAIN_CLIENT,
	             "line 2: Alias x: a chain needs at least two transports (A|B)");
	expect_error("ClientTransportPlugin a,b exec /ok/o\nAlias x a||b\n", CHAIN_CLIENT,
	             "line 2: Alias x: empty hop in 'a||b'");
	expect_error("ClientTransportPlugin a,b exec /ok/o\nAlias x a|b|\n", CHAIN_CLIENT,
	             "line 2: Alias x: empty hop in 'a|b|'");
	expect_error("ClientTransportPlugin a,b exec /ok/o\nAlias x a|b\nAlias x b|a\n",
	             CHAIN_CLIENT, "line 3: Alias x is defined twice");
	expect_error("ClientTransportPlugin a exec /ok/o\nClientTransportPlugin a exec /ok/p\n",
	             CHAIN_CLIENT, "line 2: ClientTransportPlugin: transport 'a' is already defined");
	expect_error("ClientTransportPlugin a exec relative/o\n", CHAIN_CLIENT,
	             "line 1: ClientTransportPlugin: 'relative/o' is not an absolute path");
	expect_error("ClientTransportPlugin a socks5 127.0.0.1:9\n", CHAIN_CLIENT,
	             "line 1: ClientTransportPlugin: want 'ClientTransportPlugin NAME exec PATH "
	             "[ARGS...]'");
	expect_error("Bridge obfs4 1.2.3.4:5\n", CHAIN_CLIENT, "line 1: unknown keyword 'Bridge' "
	             "(want ClientTransportPlugin, ServerTransportPlugin or Alias)");
	expect_error("# nothing\n", CHAIN_CLIENT, "no Alias line: nothing to offer tor");
	expect_error("ClientTransportPlugin a,,b exec /ok/o\n", CHAIN_CLIENT,
	             "line 1: ClientTransportPlugin: bad transport list 'a,,b'");
	expect_error("Alias x a|b\x01\n", CHAIN_CLIENT, "line 1: control character in the line");
	expect_error("Alias x\x80y a|b\n", CHAIN_CLIENT, "line 1: Alias: name 'x?y' is not a C "
	             "identifier (tor needs letters, digits and '_', not starting with a digit)");
	assert_int_equal(chain_config_parse("Alias x a|b\0", 12, CHAIN_CLIENT, NULL, &cfg, err,
	                                    sizeof(err)), -1);
	assert_string_equal(err, "config file has a NUL byte");
}

static void test_config_limits(void **s UNUSED)
{
	char big[4096], *p = big;

	/* A line over 1023 bytes. */
	memset(big, 'a', 2000);
	big[2000] = '\0';
	expect_error(big, CHAIN_CLIENT, "line 1: line longer than 1023 bytes");
	/* 17 arguments after the binary. */
	p += sprintf(p, "ClientTransportPlugin a exec /ok/x");
	for (int i = 0; i < 17; i++)
		p += sprintf(p, " %d", i);
	expect_error(big, CHAIN_CLIENT, "line 1: too many words (at most 16 arguments after the "
	             "binary)");
	/* Nine hops. */
	expect_error("ClientTransportPlugin a,b,c,d,e,f,g,h exec /ok/x\n"
	             "ClientTransportPlugin i exec /ok/x\nAlias x a|b|c|d|e|f|g|h|i\n",
	             CHAIN_CLIENT, "line 3: Alias x: more than 8 hops");
	/* A 64-byte name is too long for tor. */
	assert_int_equal(chain_is_identifier("a23456789012345678901234567890123456789012345678901"
	                                     "2345678901234"), 0);
	assert_int_equal(chain_is_identifier("_a1"), 1);
	assert_int_equal(chain_is_identifier(""), 0);
	assert_int_equal(chain_is_identifier("a.b"), 0);
}

/* ---------- arguments ---------- */

static const char hops[2][CHAIN_NAME_MAX] = { "obfs4", "sctp" };

static void test_smethod_args(void **s UNUSED)
{
	struct pt_kvlist l;
	const char *e;

	assert_int_equal(chain_smethod_args_parse("cert=AB\\,C\\=D\\\\,iat-mode=0", &l, &e), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.kv[0].key, "cert");
	assert_string_equal(l.kv[0].value, "AB,C=D\\");
	assert_string_equal(l.kv[1].value, "0");
	assert_int_equal(chain_smethod_args_parse("", &l, &e), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(chain_smethod_args_parse("a=1,", &l, &e), -1);
	assert_string_equal(e, "empty argument");
	assert_int_equal(chain_smethod_args_parse("a", &l, &e), -1);
	assert_string_equal(e, "argument without '='");
	assert_int_equal(chain_smethod_args_parse("=1", &l, &e), -1);
	assert_int_equal(chain_smethod_args_parse("a=1,a=2", &l, &e), -1);
	assert_string_equal(e, "repeated argument");
	assert_int_equal(chain_smethod_args_parse("a=1\\", &l, &e), -1);
	assert_string_equal(e, "arguments end in a backslash");
}

static void test_combine_and_format(void **s UNUSED)
{
	struct pt_kvlist per[2], all, back[2];
	char out[PT_LINE_MAX];
	const char *e;

	assert_int_equal(chain_smethod_args_parse("cert=x/y+z,iat-mode=0", &per[0], &e), 0);
	assert_int_equal(chain_smethod_args_parse("cert=S\\,1", &per[1], &e), 0);
	assert_int_equal(chain_args_combine(hops, per, 2, &all, &e), 0);
	assert_int_equal(all.n, 3);
	assert_string_equal(all.kv[0].key, "obfs4.cert");
	assert_string_equal(all.kv[2].key, "sctp.cert");
	assert_int_equal(chain_args_format_smethod(&all, out, sizeof(out)), 0);
	assert_string_equal(out, "obfs4.cert=x/y+z,obfs4.iat-mode=0,sctp.cert=S\\,1");
	/* The bridge line: no escaping, so no commas-as-data problem either. */
	assert_int_equal(chain_args_format_bridge(&all, out, sizeof(out)), 0);
	assert_string_equal(out, "obfs4.cert=x/y+z obfs4.iat-mode=0 sctp.cert=S,1");
	/* Round trip: what tor gives back splits into exactly the children's own. */
	assert_int_equal(chain_args_split(&all, hops, 2, back, &e), 0);
	assert_int_equal(back[0].n, 2);
	assert_string_equal(back[0].kv[0].key, "cert");
	assert_string_equal(back[0].kv[0].value, "x/y+z");
	assert_int_equal(back[1].n, 1);
	assert_string_equal(back[1].kv[0].value, "S,1");
	/* A value with a space cannot go on a bridge line. */
	strcpy(all.kv[0].value, "a b");
	assert_int_equal(chain_args_format_bridge(&all, out, sizeof(out)), -1);
	/* Too small an output. */
	assert_int_equal(chain_args_format_smethod(&all, out, 10), -1);
	/* A combined key over the limit. */
	memset(per[0].kv[0].key, 'k', PT_KEY_MAX - 3);
	per[0].kv[0].key[PT_KEY_MAX - 3] = '\0';
	assert_int_equal(chain_args_combine(hops, per, 2, &all, &e), -1);
	assert_string_equal(e, "hop name plus argument name too long");
}

static void test_split_errors(void **s UNUSED)
{
	struct pt_kvlist in, per[2];
	const char *e;

	assert_int_equal(pt_args_parse((const uint8_t *)"cert=x", 6, &in, &e), 0);
	assert_int_equal(chain_args_split(&in, hops, 2, per, &e), -1);
	assert_string_equal(e, "an argument has no hop prefix (want HOP.key=value)");
	assert_int_equal(pt_args_parse((const uint8_t *)"meek.url=x", 10, &in, &e), 0);
	assert_int_equal(chain_args_split(&in, hops, 2, per, &e), -1);
	assert_string_equal(e, "an argument's prefix names no hop of this chain");
	assert_int_equal(pt_args_parse((const uint8_t *)".x=1", 4, &in, &e), 0);
	assert_int_equal(chain_args_split(&in, hops, 2, per, &e), -1);
	/* "obfs4.x.y" is key "x.y" of obfs4; "obfs4." is an empty key. */
	assert_int_equal(pt_args_parse((const uint8_t *)"obfs4.x.y=1", 11, &in, &e), 0);
	assert_int_equal(chain_args_split(&in, hops, 2, per, &e), 0);
	assert_string_equal(per[0].kv[0].key, "x.y");
	assert_int_equal(pt_args_parse((const uint8_t *)"obfs4.=1", 8, &in, &e), 0);
	assert_int_equal(chain_args_split(&in, hops, 2, per, &e), -1);
	assert_string_equal(e, "empty argument name");
	/* Prefix matching is whole-name: "obfs" is not "obfs4". */
	assert_int_equal(pt_args_parse((const uint8_t *)"obfs.x=1", 8, &in, &e), 0);
	assert_int_equal(chain_args_split(&in, hops, 2, per, &e), -1);
}

static void test_socks_args(void **s UNUSED)
{
	struct pt_kvlist l, back;
	uint8_t user[255], pass[255], joined[512];
	size_t ulen, plen;
	const char *e;
	int n;

	l.n = 2;
	strcpy(l.kv[0].key, "cert");
	strcpy(l.kv[0].value, "a;b\\c=d");
	strcpy(l.kv[1].key, "k=");
	strcpy(l.kv[1].value, "v");
	assert_int_equal(chain_args_socks(&l, user, &ulen, pass, &plen), 0);
	assert_int_equal(ulen, strlen("cert=a\\;b\\\\c=d;k\\==v"));
	assert_memory_equal(user, "cert=a\\;b\\\\c=d;k\\==v", ulen);
	assert_int_equal(plen, 1);
	assert_int_equal(pass[0], 0);
	/* What pt_args_parse (and tor's other PTs) read back is the same list. */
	n = pt_args_join(user, ulen, pass, plen, joined, sizeof(joined));
	assert_int_equal(pt_args_parse(joined, (size_t)n, &back, &e), 0);
	assert_int_equal(back.n, 2);
	assert_string_equal(back.kv[0].value, "a;b\\c=d");
	assert_string_equal(back.kv[1].key, "k=");
	/* Over 255 bytes: continued in the password. */
	memset(l.kv[0].value, 'x', 400);
	l.kv[0].value[400] = '\0';
	l.n = 1;
	assert_int_equal(chain_args_socks(&l, user, &ulen, pass, &plen), 0);
	assert_int_equal(ulen, 255);
	assert_int_equal(plen, 405 - 255);
	n = pt_args_join(user, ulen, pass, plen, joined, sizeof(joined));
	assert_int_equal(n, 405);
	/* Over 510: refused. */
	memset(l.kv[0].value, ';', 300);
	l.kv[0].value[300] = '\0';
	assert_int_equal(chain_args_socks(&l, user, &ulen, pass, &plen), -1);
	/* Nothing: no credentials. */
	l.n = 0;
	assert_int_equal(chain_args_socks(&l, user, &ulen, pass, &plen), 0);
	assert_int_equal(ulen, 0);
}

static void test_server_options(void **s UNUSED)
{
	char out[2][PT_LINE_MAX];

	assert_int_equal(chain_server_options_split(
	        "obfs4_sctp:obfs4.iat-mode=1;other:x=1;obfs4_sctp:sctp.mtu=1200;"
	        "obfs4_sctp:sctp.pad=1\\:2\\;", "obfs4_sctp", hops, 2, out, err, sizeof(err)), 0);
	assert_string_equal(out[0], "obfs4:iat-mode=1");
	assert_string_equal(out[1], "sctp:mtu=1200;sctp:pad=1\\:2\\;");
	assert_int_equal(chain_server_options_split("", "obfs4_sctp", hops, 2, out, err,
	                                            sizeof(err)), 0);
	assert_string_equal(out[0], "");
	assert_int_equal(chain_server_options_split("obfs4_sctp:mtu=1", "obfs4_sctp", hops, 2,
	                                            out, err, sizeof(err)), -1);
	assert_string_equal(err, "ServerTransportOptions obfs4_sctp: option 'mtu' does not start "
	                    "with a hop of the chain (want HOP.key=value)");
	assert_int_equal(chain_server_options_split("obfs4_sctp:x", "obfs4_sctp", hops, 2, out,
	                                            err, sizeof(err)), -1);
	assert_int_equal(chain_server_options_split("a:b=c\\", "obfs4_sctp", hops, 2, out, err,
	                                            sizeof(err)), -1);
	assert_int_equal(chain_server_options_split(":b=c", "obfs4_sctp", hops, 2, out, err,
	                                            sizeof(err)), -1);
}

static void test_bindaddr_and_list(void **s UNUSED)
{
	char out[64];

	assert_int_equal(chain_bindaddr_find("obfs4-0.0.0.0:1,obfs4_sctp-127.0.0.1:4433",
	                                     "obfs4_sctp", out, sizeof(out)), 1);
	assert_string_equal(out, "127.0.0.1:4433");
	assert_int_equal(chain_bindaddr_find("obfs4-0.0.0.0:1", "obfs4_sctp", out, sizeof(out)), 0);
	assert_int_equal(chain_bindaddr_find("garbage", "x", out, sizeof(out)), -1);
	assert_int_equal(chain_bindaddr_find("x-", "x", out, sizeof(out)), -1);
	assert_int_equal(chain_bindaddr_find("x-[::1]:5", "x", out, 4), -1);
	assert_int_equal(chain_list_has("a,obfs4_sctp", "obfs4_sctp"), 1);
	assert_int_equal(chain_list_has("obfs4_sctp2", "obfs4_sctp"), 0);
	assert_int_equal(chain_list_has("*", "x"), 1);
	assert_int_equal(chain_list_has("", "x"), 0);
}

/* ---------- address map ---------- */

static struct sockaddr_storage lo(uint16_t port, const char *ip)
{
	struct sockaddr_storage ss;
	socklen_t len;

	assert_int_equal(netaddr_from_numeric(ip, port, &ss, &len), 0);
	return ss;
}

static void test_addrmap(void **s UNUSED)
{
	struct chain_addrmap m;
	struct sockaddr_storage k1 = lo(40001, "127.0.0.1"), k2 = lo(40002, "127.0.0.1"),
	                        k3 = lo(40001, "127.0.0.2"), k4 = lo(40003, "::1");
	char out[64];

	assert_int_equal(chain_addrmap_init(&m, 3, 1000), 0);
	assert_int_equal(chain_addrmap_put(&m, (struct sockaddr *)&k1, "198.51.100.7:1111", 0), 0);
	assert_int_equal(chain_addrmap_put(&m, (struct sockaddr *)&k2, "203.0.113.9:2222", 1), 0);
	assert_int_equal(chain_addrmap_put(&m, (struct sockaddr *)&k3, "[2001:db8::1]:3333", 2), 0);
	/* Full: refused, nothing evicted. */
	assert_int_equal(chain_addrmap_put(&m, (struct sockaddr *)&k4, "x:1", 3), -1);
	/* Exact matches by address and port, whatever order they come in. */
	assert_int_equal(chain_addrmap_take(&m, "127.0.0.1:40002", out, sizeof(out), 10), 1);
	assert_string_equal(out, "203.0.113.9:2222");
	assert_int_equal(chain_addrmap_take(&m, "127.0.0.1:40002", out, sizeof(out), 10), 0);
	assert_int_equal(chain_addrmap_take(&m, "127.0.0.2:40001", out, sizeof(out), 10), 1);
	assert_string_equal(out, "[2001:db8::1]:3333");
	/* Hostile USERADDR values find nothing. */
	assert_int_equal(chain_addrmap_take(&m, "localhost:40001", out, sizeof(out), 10), 0);
	assert_int_equal(chain_addrmap_take(&m, "127.0.0.1", out, sizeof(out), 10), 0);
	assert_int_equal(chain_addrmap_take(&m, "", out, sizeof(out), 10), 0);
	assert_int_equal(chain_addrmap_put(&m, (struct sockaddr *)&k4, "[::1]:9", 20), 0);
	assert_int_equal(chain_addrmap_take(&m, "[::1]:40003", out, sizeof(out), 21), 1);
	/* Expiry: an entry older than the TTL is not handed out. */
	assert_int_equal(chain_addrmap_take(&m, "127.0.0.1:40001", out, sizeof(out), 1000), 0);
	assert_int_equal(m.n, 0);
	/* Oldest first, for children without Extended ORPort. */
	assert_int_equal(chain_addrmap_put(&m, (struct sockaddr *)&k2, "b:2", 2000), 0);
	assert_int_equal(chain_addrmap_put(&m, (struct sockaddr *)&k1, "a:1", 2001), 0);
	assert_int_equal(chain_addrmap_take_oldest(&m, out, sizeof(out), 2002), 1);
	assert_string_equal(out, "b:2");
	chain_addrmap_remove(&m, (struct sockaddr *)&k1);
	assert_int_equal(chain_addrmap_take_oldest(&m, out, sizeof(out), 2003), 0);
	/* Expired entries make room for new ones. */
	for (int i = 0; i < 3; i++) {
		struct sockaddr_storage k = lo((uint16_t)(50000 + i), "127.0.0.1");

		assert_int_equal(chain_addrmap_put(&m, (struct sockaddr *)&k, "c:3", 3000), 0);
	}
	assert_int_equal(chain_addrmap_put(&m, (struct sockaddr *)&k1, "d:4", 4000), 0);
	assert_int_equal(chain_addrmap_take(&m, "127.0.0.1:40001", out, sizeof(out), 4001), 1);
	assert_string_equal(out, "d:4");
	chain_addrmap_free(&m);
}

/* ---------- Extended ORPort server against our own client ---------- */

static const uint8_t cookie[32] = { 1, 2, 3, 4, 5 };
static const uint8_t cnonce[32] = { 9, 9, 9 };
static const uint8_t snonce[32] = { 7, 7 };

static int run_pair(const uint8_t *client_cookie, const char *useraddr,
                    struct extor_server *srv, int split)
{
	struct extor_client cl;
	uint8_t to_srv[4096], to_cl[4096], out[EXTOR_OUT_MAX], greet[2];
	size_t ns = 0, nc = 0, used, outlen;
	int rs = EXTOR_NEED_MORE, rc = EXTOR_NEED_MORE;

	assert_int_equal(extor_client_init(&cl, client_cookie, cnonce, useraddr, "obfs4"), 0);
	extor_server_init(srv, cookie, snonce, greet);
	memcpy(to_cl, greet, 2);
	nc = 2;
	for (int round = 0; round < 1000 && rs == EXTOR_NEED_MORE; round++) {
		size_t lim = 3 * ((size_t)round + 1), give = split && nc > lim ? lim : nc;

		rc = extor_client_step(&cl, to_cl, give, &used, out, &outlen);
		memmove(to_cl, to_cl + used, nc - used);
		nc -= used;
		memcpy(to_srv + ns, out, outlen);
		ns += outlen;
		if (rc == EXTOR_ERROR)
			return -2;
		give = split && ns > lim + 2 ? lim + 2 : ns;
		rs = extor_server_step(srv, to_srv, give, &used, out, &outlen);
		memmove(to_srv, to_srv + used, ns - used);
		ns -= used;
		memcpy(to_cl + nc, out, outlen);
		nc += outlen;
		if (rs == EXTOR_ERROR) {
			/* The client sees the failure byte. */
			rc = extor_client_step(&cl, to_cl, nc, &used, out, &outlen);
			assert_int_equal(rc, EXTOR_ERROR);
			return -1;
		}
	}
	return rs;
}

static void test_extor_server(void **s UNUSED)
{
	struct extor_server srv;
	uint8_t wrong[32] = { 1, 2, 3, 4, 6 };

	assert_int_equal(run_pair(cookie, "127.0.0.1:40001", &srv, 0), EXTOR_OKAY);
	assert_string_equal(srv.useraddr, "127.0.0.1:40001");
	assert_string_equal(srv.transport, "obfs4");
	assert_int_equal(run_pair(cookie, "[::1]:5", &srv, 1), EXTOR_OKAY);
	assert_string_equal(srv.useraddr, "[::1]:5");
	assert_int_equal(run_pair(cookie, NULL, &srv, 1), EXTOR_OKAY);
	assert_string_equal(srv.useraddr, "");
	/* A wrong cookie: the client rejects our hash first. */
	assert_int_equal(run_pair(wrong, "1.2.3.4:5", &srv, 0), -2);
}

static void test_extor_server_hostile(void **s UNUSED)
{
	struct extor_server srv;
	uint8_t g[2], out[EXTOR_OUT_MAX], in[600];
	size_t used, outlen;

	extor_server_init(&srv, cookie, snonce, g);
	assert_int_equal(g[0], 1);
	assert_int_equal(g[1], 0);
	assert_int_equal(extor_server_step(&srv, (const uint8_t *)"\x02", 1, &used, out, &outlen),
	                 EXTOR_ERROR);
	/* A bad client hash gets the 0 byte. */
	extor_server_init(&srv, cookie, snonce, g);
	memset(in, 0, sizeof(in));
	in[0] = 1;
	assert_int_equal(extor_server_step(&srv, in, 1 + 32 + 32, &used, out, &outlen),
	                 EXTOR_ERROR);
	assert_int_equal(outlen, 65);
	assert_int_equal(out[64], 0);
	assert_non_null(strstr(srv.error, "wrong auth cookie"));
}

/* Past authentication, commands are parsed strictly. */
static void authed(struct extor_server *srv)
{
	uint8_t g[2], in[65], out[EXTOR_OUT_MAX];
	size_t used, outlen;

	extor_server_init(srv, cookie, snonce, g);
	in[0] = 1;
	memcpy(in + 1, cnonce, 32);
	assert_int_equal(extor_server_step(srv, in, 33, &used, out, &outlen), EXTOR_NEED_MORE);
	assert_int_equal(extor_hash(cookie, 0, cnonce, snonce, in), 0);
	assert_int_equal(extor_server_step(srv, in, 32, &used, out, &outlen), EXTOR_NEED_MORE);
	assert_int_equal(out[0], 1);
}

static void test_extor_server_commands(void **s UNUSED)
{
	struct extor_server srv;
	uint8_t out[EXTOR_OUT_MAX], in[2048];
	size_t used, outlen;

	authed(&srv);
	assert_int_equal(extor_server_step(&srv, (const uint8_t *)"\x00\x01\x00\x03\x01\x02\x03", 7,
	                                   &used, out, &outlen), EXTOR_ERROR);
	assert_string_equal(srv.error, "malformed USERADDR");
	authed(&srv);
	assert_int_equal(extor_server_step(&srv, (const uint8_t *)"\x00\x02\x00\x03" "a-b", 7,
	                                   &used, out, &outlen), EXTOR_ERROR);
	assert_string_equal(srv.error, "malformed TRANSPORT");
	authed(&srv);
	assert_int_equal(extor_server_step(&srv, (const uint8_t *)"\x00\x01\xff\xff", 4, &used,
	                                   out, &outlen), EXTOR_ERROR);
	/* Unknown commands skipped, a bounded number. */
	authed(&srv);
	for (int i = 0; i < 17; i++)
		memcpy(in + 4 * i, "\x77\x77\x00\x00", 4);
	assert_int_equal(extor_server_step(&srv, in, 4 * 17, &used, out, &outlen), EXTOR_ERROR);
	assert_string_equal(srv.error, "too many Extended ORPort commands");
	authed(&srv);
	assert_int_equal(extor_server_step(&srv, (const uint8_t *)"\x77\x77\x00\x00\x00\x00\x00",
	                                   7, &used, out, &outlen), EXTOR_NEED_MORE);
	assert_int_equal(used, 4);
}

/* ---------- children's lines ---------- */

static void test_lines(void **s UNUSED)
{
	struct chain_line l;
	char out[PT_LINE_MAX];

	assert_int_equal(chain_line_parse("VERSION 1", CHAIN_CLIENT, &l), 0);
	assert_int_equal(l.kind, CHAIN_LINE_VERSION);
	assert_int_equal(chain_line_parse("VERSION 2", CHAIN_CLIENT, &l), -1);
	assert_int_equal(chain_line_parse("CMETHOD obfs4 socks5 127.0.0.1:3456", CHAIN_CLIENT, &l), 0);
	assert_int_equal(l.kind, CHAIN_LINE_METHOD);
	assert_string_equal(l.name, "obfs4");
	assert_string_equal(l.addr, "127.0.0.1:3456");
	assert_int_equal(chain_line_parse("CMETHOD obfs4 socks4 127.0.0.1:3456", CHAIN_CLIENT, &l),
	                 -1);
	assert_int_equal(chain_line_parse("CMETHOD obfs4", CHAIN_CLIENT, &l), -1);
	assert_int_equal(chain_line_parse("CMETHOD-ERROR obfs4 no way out", CHAIN_CLIENT, &l), 0);
	assert_int_equal(l.kind, CHAIN_LINE_METHOD_ERROR);
	assert_string_equal(l.message, "no way out");
	assert_int_equal(chain_line_parse("CMETHODS DONE", CHAIN_CLIENT, &l), 0);
	assert_int_equal(l.kind, CHAIN_LINE_METHODS_DONE);
	/* The other side's lines mean nothing here. */
	assert_int_equal(chain_line_parse("SMETHODS DONE", CHAIN_CLIENT, &l), 0);
	assert_int_equal(l.kind, CHAIN_LINE_OTHER);
	assert_int_equal(chain_line_parse("SMETHOD sctp 0.0.0.0:4433 ARGS:cert=a\\,b", CHAIN_SERVER,
	                                  &l), 0);
	assert_string_equal(l.addr, "0.0.0.0:4433");
	assert_string_equal(l.args, "cert=a\\,b");
	assert_int_equal(chain_line_parse("ENV-ERROR bad things", CHAIN_SERVER, &l), 0);
	assert_int_equal(l.kind, CHAIN_LINE_ENV_ERROR);
	assert_string_equal(l.message, "bad things");
	assert_int_equal(chain_line_parse("PROXY DONE", CHAIN_CLIENT, &l), 0);
	assert_int_equal(l.kind, CHAIN_LINE_PROXY_DONE);
	assert_int_equal(chain_line_parse("LOG SEVERITY=notice MESSAGE=\"hi\"", CHAIN_CLIENT, &l), 0);
	assert_int_equal(l.kind, CHAIN_LINE_LOG);
	assert_int_equal(chain_line_parse("CMETHOD\x01 x", CHAIN_CLIENT, &l), -1);

	assert_int_equal(chain_line_relay("LOG SEVERITY=notice MESSAGE=\"hi \\\"x\\\"\"", "obfs4_sctp",
	                                  1, "sctp", out, sizeof(out)), 0);
	assert_string_equal(out, "LOG SEVERITY=notice MESSAGE=\"[obfs4_sctp hop 1 sctp] hi \\\"x\\\"\"");
	assert_int_equal(chain_line_relay("STATUS TRANSPORT=sctp ADDRESS=1.2.3.4:5 CONNECT=Success",
	                                  "obfs4_sctp", 1, "sctp", out, sizeof(out)), 0);
	assert_string_equal(out, "STATUS TRANSPORT=obfs4_sctp HOP=1 CHILD=sctp ADDRESS=1.2.3.4:5 "
	                    "CONNECT=Success");
	assert_int_equal(chain_line_relay("LOG SEVERITY=notice", "a", 0, "b", out, sizeof(out)), -1);
	assert_int_equal(chain_line_relay("STATUS X=1", "a", 0, "b", out, sizeof(out)), -1);
	assert_int_equal(chain_line_relay("CMETHOD x", "a", 0, "b", out, sizeof(out)), -1);
	assert_int_equal(chain_line_relay("LOG MESSAGE=\"x\"", "a", 0, "b", out, 10), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_good),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_config_limits),
		cmocka_unit_test(test_smethod_args),
		cmocka_unit_test(test_combine_and_format),
		cmocka_unit_test(test_split_errors),
		cmocka_unit_test(test_socks_args),
		cmocka_unit_test(test_server_options),
		cmocka_unit_test(test_bindaddr_and_list),
		cmocka_unit_test(test_addrmap),
		cmocka_unit_test(test_extor_server),
		cmocka_unit_test(test_extor_server_hostile),
		cmocka_unit_test(test_extor_server_commands),
		cmocka_unit_test(test_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
