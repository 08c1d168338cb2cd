/*
 * Unit tests for the pure half of Tor managed mode (src/pt/pt.c): the
 * TOR_PT_* environment as tor sets it (pt-spec v1), the per-bridge
 * arguments tor sends in SOCKS5 credentials, and the escaping of what we
 * print on stdout.  The environment comes through an injected getter over
 * small tables, so every case states exactly which variables exist.
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

#include "pt/pt.h"

#define UNUSED __attribute__((unused))
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* A byte-string literal and its length, without the literal's own NUL. */
#define B(s) (const uint8_t *)(s), (sizeof(s) - 1)

/* ------------------------------------------------------------------------ */
/* The injected environment                                                  */

struct ev {
	const char *name;
	const char *value;          /* UNSET: the variable does not exist */
};

static const char unset_marker[] = "<unset>";
#define UNSET unset_marker

/* Overrides on top of a base table; both end with a NULL name. */
#define OVER(...) ((const struct ev[]){ __VA_ARGS__, { NULL, NULL } })
#define NO_OVER ((const struct ev *)NULL)

struct envset {
	const struct ev *base, *over;
};

static const struct ev *find_ev(const struct ev *t, const char *name)
{
	for (; t != NULL && t->name != NULL; t++)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

static const char *get_env(const char *name, void *arg)
{
	const struct envset *es = arg;
	const struct ev *e = find_ev(es->over, name);

	if (e == NULL)
		e = find_ev(es->base, name);
	if (e == NULL || e->value == UNSET)
		return NULL;
	return e->value;
}

static const struct ev client_env[] = {
	{ "TOR_PT_MANAGED_TRANSPORT_VER", "1" },
	{ "TOR_PT_STATE_LOCATION", "/var/lib/tor/pt_state" },
	{ "TOR_PT_EXIT_ON_STDIN_CLOSE", "1" },
	{ "TOR_PT_CLIENT_TRANSPORTS", "obfs4,sctp,meek_lite" },
	{ NULL, NULL },
};

/* What tor 0.4.x sets for a bridge with an ORPort and no ExtORPort. */
static const struct ev server_env[] = {
	{ "TOR_PT_MANAGED_TRANSPORT_VER", "1" },
	{ "TOR_PT_STATE_LOCATION", "/var/lib/tor/pt_state" },
	{ "TOR_PT_EXIT_ON_STDIN_CLOSE", "1" },
	{ "TOR_PT_SERVER_TRANSPORTS", "obfs4,sctp" },
	{ "TOR_PT_SERVER_BINDADDR", "obfs4-0.0.0.0:1984,sctp-[::1]:4433" },
	{ "TOR_PT_ORPORT", "127.0.0.1:9001" },
	{ "TOR_PT_EXTENDED_SERVER_PORT", "" },
	{ NULL, NULL },
};

static struct pt_env env;       /* large: keep it off the stack */

static int parse_env(const struct ev *base, const struct ev *over, char *err, size_t errlen)
{
	struct envset es = { base, over };

	return pt_env_parse(get_env, &es, &env, err, errlen);
}

static void expect_env_ok(const struct ev *base, const struct ev *over)
{
	char err[256];
	int r = parse_env(base, over, err, sizeof(err));

	if (r != PT_ENV_OK)
		print_error("unexpected error: %s\n", err);
	assert_int_equal(r, PT_ENV_OK);
}

/* The parse fails with want; err is non-empty and names var (if given). */
static void expect_env_error(const struct ev *base, const struct ev *over, int want,
                             const char *var)
{
	char err[256];
	int r;

	memset(err, 0, sizeof(err));
	r = parse_env(base, over, err, sizeof(err));
	assert_int_equal(r, want);
	assert_true(strlen(err) > 0);
	assert_true(strlen(err) < sizeof(err));
	if (var != NULL && strstr(err, var) == NULL) {
		print_error("error \"%s\" does not name %s\n", err, var);
		fail();
	}
}

static void assert_addr(const struct sockaddr_storage *ss, int family, const char *ip,
                        uint16_t port)
{
	char buf[INET6_ADDRSTRLEN];

	assert_int_equal(ss->ss_family, family);
	if (family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)));
		assert_int_equal(ntohs(sin->sin_port), port);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf)));
		assert_int_equal(ntohs(sin6->sin6_port), port);
	}
	assert_string_equal(buf, ip);
}

/* ------------------------------------------------------------------------ */
/* pt_env_parse: client                                                      */

static void test_env_client(void **state UNUSED)
{
	expect_env_ok(client_env, NO_OVER);
	assert_true(env.client);
	assert_true(env.client_listed);
	assert_false(env.server);
	assert_false(env.server_listed);
	assert_string_equal(env.state_dir, "/var/lib/tor/pt_state");
	assert_true(env.exit_on_stdin_close);
	assert_false(env.has_proxy);
	assert_false(env.has_bind_v4);
	assert_false(env.has_bind_v6);
	assert_false(env.has_bindaddr);
	assert_false(env.has_orport);
	assert_false(env.has_extorport);
	assert_int_equal(env.options.n, 0);

	/* We are the only one, the first, the last. */
	expect_env_ok(client_env, OVER({ "TOR_PT_CLIENT_TRANSPORTS", "sctp" }));
	assert_true(env.client);
	expect_env_ok(client_env, OVER({ "TOR_PT_CLIENT_TRANSPORTS", "sctp,obfs4" }));
	assert_true(env.client);
	expect_env_ok(client_env, OVER({ "TOR_PT_CLIENT_TRANSPORTS", "obfs4,webtunnel,sctp" }));
	assert_true(env.client);
}

/* pt-spec: PTs SHOULD ignore names they do not recognise. */
static void test_env_client_not_us(void **state UNUSED)
{
	static const char *const lists[] = {
		"obfs4,meek_lite", "sctpx", "xsctp", "sct", "SCTP", "", "sctp_,obfs4", ",",
	};

	for (size_t i = 0; i < N_ELEMS(lists); i++) {
		expect_env_ok(client_env, OVER({ "TOR_PT_CLIENT_TRANSPORTS", lists[i] }));
		assert_true(env.client_listed);
		assert_false(env.client);
		assert_false(env.server_listed);
	}
}

static void test_env_client_star(void **state UNUSED)
{
	expect_env_ok(client_env, OVER({ "TOR_PT_CLIENT_TRANSPORTS", "*" }));
	assert_true(env.client);
	expect_env_ok(client_env, OVER({ "TOR_PT_CLIENT_TRANSPORTS", "obfs4,*" }));
	assert_true(env.client);
	/* "*" only as a whole entry. */
	expect_env_ok(client_env, OVER({ "TOR_PT_CLIENT_TRANSPORTS", "obfs*,**" }));
	assert_false(env.client);
}

static void test_env_versions(void **state UNUSED)
{
	static const char *const ok[] = { "1", "1,2", "2,1", "3,1,2" };

	for (size_t i = 0; i < N_ELEMS(ok); i++) {
		expect_env_ok(client_env, OVER({ "TOR_PT_MANAGED_TRANSPORT_VER", ok[i] }));
		assert_true(env.client);
	}
}

static void test_env_exit_on_stdin_close(void **state UNUSED)
{
	expect_env_ok(client_env, OVER({ "TOR_PT_EXIT_ON_STDIN_CLOSE", "0" }));
	assert_false(env.exit_on_stdin_close);
	expect_env_ok(client_env, OVER({ "TOR_PT_EXIT_ON_STDIN_CLOSE", UNSET }));
	assert_false(env.exit_on_stdin_close);
	expect_env_ok(client_env, OVER({ "TOR_PT_EXIT_ON_STDIN_CLOSE", "" }));
	assert_false(env.exit_on_stdin_close);
	expect_env_ok(client_env, OVER({ "TOR_PT_EXIT_ON_STDIN_CLOSE", "1" }));
	assert_true(env.exit_on_stdin_close);
}

static void test_env_client_proxy(void **state UNUSED)
{
	expect_env_ok(client_env, OVER({ "TOR_PT_PROXY", "socks5://tor:test1234@198.51.100.1:8000" }));
	assert_true(env.has_proxy);
	assert_string_equal(env.proxy, "socks5://tor:test1234@198.51.100.1:8000");
	assert_true(env.client);

	expect_env_ok(client_env, OVER({ "TOR_PT_PROXY", "" }));
	assert_false(env.has_proxy);
}

static void test_env_client_outbound_bind(void **state UNUSED)
{
	expect_env_ok(client_env, OVER({ "TOR_PT_OUTBOUND_BIND_ADDRESS_V4", "203.0.113.4" },
	                               { "TOR_PT_OUTBOUND_BIND_ADDRESS_V6", "[2001:db8::4]" }));
	assert_true(env.has_bind_v4);
	assert_true(env.has_bind_v6);
	assert_addr(&env.bind_v4, AF_INET, "203.0.113.4", 0);
	assert_addr(&env.bind_v6, AF_INET6, "2001:db8::4", 0);

	/* The spec's example is bracketed; accept the bare form as well. */
	expect_env_ok(client_env, OVER({ "TOR_PT_OUTBOUND_BIND_ADDRESS_V6", "2001:db8::4" }));
	assert_false(env.has_bind_v4);
	assert_true(env.has_bind_v6);
	assert_addr(&env.bind_v6, AF_INET6, "2001:db8::4", 0);

	expect_env_ok(client_env, OVER({ "TOR_PT_OUTBOUND_BIND_ADDRESS_V4", "" },
	                               { "TOR_PT_OUTBOUND_BIND_ADDRESS_V6", "" }));
	assert_false(env.has_bind_v4);
	assert_false(env.has_bind_v6);
}

/* Server-only variables are not read (nor rejected) in client mode. */
static void test_env_client_ignores_server_vars(void **state UNUSED)
{
	expect_env_ok(client_env, OVER({ "TOR_PT_ORPORT", "garbage" },
	                               { "TOR_PT_SERVER_BINDADDR", "nonsense" },
	                               { "TOR_PT_SERVER_TRANSPORT_OPTIONS", "x" }));
	assert_true(env.client);
	assert_false(env.has_orport);
	assert_false(env.has_bindaddr);
}

/* ------------------------------------------------------------------------ */
/* pt_env_parse: server                                                      */

static void test_env_server(void **state UNUSED)
{
	expect_env_ok(server_env, NO_OVER);
	assert_true(env.server);
	assert_true(env.server_listed);
	assert_false(env.client);
	assert_false(env.client_listed);
	assert_true(env.exit_on_stdin_close);
	assert_true(env.has_bindaddr);
	assert_addr(&env.bindaddr, AF_INET6, "::1", 4433);
	assert_int_equal(env.bindaddr_len, sizeof(struct sockaddr_in6));
	assert_true(env.has_orport);
	assert_addr(&env.orport, AF_INET, "127.0.0.1", 9001);
	assert_int_equal(env.orport_len, sizeof(struct sockaddr_in));
	assert_false(env.has_extorport);
	assert_int_equal(env.options.n, 0);
}

static void test_env_server_bindaddr(void **state UNUSED)
{
	/* Several transports, ours in the middle, IPv4. */
	expect_env_ok(server_env,
	              OVER({ "TOR_PT_SERVER_TRANSPORTS", "obfs4,sctp,meek" },
	                   { "TOR_PT_SERVER_BINDADDR",
	                     "obfs4-0.0.0.0:1984,sctp-198.51.100.7:443,meek-[::]:8080" }));
	assert_true(env.has_bindaddr);
	assert_addr(&env.bindaddr, AF_INET, "198.51.100.7", 443);
	assert_int_equal(env.bindaddr_len, sizeof(struct sockaddr_in));

	/* tor's default ServerTransportListenAddr leaves the port to us. */
	expect_env_ok(server_env, OVER({ "TOR_PT_SERVER_BINDADDR", "sctp-0.0.0.0:0" }));
	assert_addr(&env.bindaddr, AF_INET, "0.0.0.0", 0);

	/* Another transport's entry is not ours to judge. */
	expect_env_ok(server_env, OVER({ "TOR_PT_SERVER_BINDADDR", "obfs4-whatever,sctp-[::1]:1" }));
	assert_addr(&env.bindaddr, AF_INET6, "::1", 1);

	/* No entry for us, or no variable: no bind address, not an error. */
	expect_env_ok(server_env, OVER({ "TOR_PT_SERVER_BINDADDR", "obfs4-0.0.0.0:1984" }));
	assert_false(env.has_bindaddr);
	expect_env_ok(server_env, OVER({ "TOR_PT_SERVER_BINDADDR", UNSET }));
	assert_false(env.has_bindaddr);
	expect_env_ok(server_env, OVER({ "TOR_PT_SERVER_BINDADDR", "" }));
	assert_false(env.has_bindaddr);
}

static void test_env_server_star_and_not_us(void **state UNUSED)
{
	expect_env_ok(server_env, OVER({ "TOR_PT_SERVER_TRANSPORTS", "*" }));
	assert_true(env.server);
	expect_env_ok(server_env, OVER({ "TOR_PT_SERVER_TRANSPORTS", "obfs4" },
	                               { "TOR_PT_SERVER_BINDADDR", "obfs4-0.0.0.0:1984" }));
	assert_true(env.server_listed);
	assert_false(env.server);
}

static void test_env_server_orport_only(void **state UNUSED)
{
	expect_env_ok(server_env, OVER({ "TOR_PT_EXTENDED_SERVER_PORT", UNSET }));
	assert_true(env.has_orport);
	assert_false(env.has_extorport);
	assert_string_equal(env.cookie_file, "");

	expect_env_ok(server_env, OVER({ "TOR_PT_ORPORT", "[2001:db8::9]:9001" }));
	assert_addr(&env.orport, AF_INET6, "2001:db8::9", 9001);
	assert_int_equal(env.orport_len, sizeof(struct sockaddr_in6));
}

static void test_env_server_extorport(void **state UNUSED)
{
	expect_env_ok(server_env,
	              OVER({ "TOR_PT_EXTENDED_SERVER_PORT", "127.0.0.1:4200" },
	                   { "TOR_PT_AUTH_COOKIE_FILE",
	                     "/var/lib/tor/extended_orport_auth_cookie" }));
	assert_true(env.has_orport);
	assert_true(env.has_extorport);
	assert_addr(&env.extorport, AF_INET, "127.0.0.1", 4200);
	assert_int_equal(env.extorport_len, sizeof(struct sockaddr_in));
	assert_string_equal(env.cookie_file, "/var/lib/tor/extended_orport_auth_cookie");

	/* The ExtORPort alone is enough. */
	expect_env_ok(server_env,
	              OVER({ "TOR_PT_ORPORT", UNSET },
	                   { "TOR_PT_EXTENDED_SERVER_PORT", "[::1]:4200" },
	                   { "TOR_PT_AUTH_COOKIE_FILE", "/c" }));
	assert_false(env.has_orport);
	assert_true(env.has_extorport);
	assert_addr(&env.extorport, AF_INET6, "::1", 4200);
}

static void test_env_server_options(void **state UNUSED)
{
	expect_env_ok(server_env,
	              OVER({ "TOR_PT_SERVER_TRANSPORT_OPTIONS",
	                     "sctp:mtu=1400;obfs4:iat-mode=1;sctp:pad=0\\:10" }));
	assert_int_equal(env.options.n, 2);
	assert_string_equal(env.options.kv[0].key, "mtu");
	assert_string_equal(env.options.kv[0].value, "1400");
	assert_string_equal(env.options.kv[1].key, "pad");
	assert_string_equal(env.options.kv[1].value, "0:10");
	assert_string_equal(pt_kv_get(&env.options, "mtu"), "1400");
	assert_null(pt_kv_get(&env.options, "iat-mode"));

	/*
	 * tor escapes ':', ';' and '\' in each "k=v" (pt-spec: "Colons,
	 * semicolons, and backslashes MUST be escaped"); '=' after the first
	 * is part of the value.  An escaped '=' is taken literally too.
	 */
	expect_env_ok(server_env,
	              OVER({ "TOR_PT_SERVER_TRANSPORT_OPTIONS",
	                     "sctp:a=x\\;y;"
	                     "obfs4:cert=AB\\;C\\:D\\\\E;"
	                     "sctp:b=c\\\\d;"
	                     "sctp:c=k=v==;"
	                     "sctp:d\\=e=f\\=g;"
	                     "sctp:e=h\\:i\\:j;"
	                     "sctp:f=\\\\\\;\\:;"
	                     "sctp:g=" }));
	assert_int_equal(env.options.n, 7);
	assert_string_equal(pt_kv_get(&env.options, "a"), "x;y");
	assert_string_equal(pt_kv_get(&env.options, "b"), "c\\d");
	assert_string_equal(pt_kv_get(&env.options, "c"), "k=v==");
	assert_string_equal(pt_kv_get(&env.options, "d=e"), "f=g");
	assert_string_equal(pt_kv_get(&env.options, "e"), "h:i:j");
	assert_string_equal(pt_kv_get(&env.options, "f"), "\\;:");
	assert_string_equal(pt_kv_get(&env.options, "g"), "");
	assert_null(pt_kv_get(&env.options, "cert"));

	/* Only other transports' options; empty; a trailing ';'. */
	expect_env_ok(server_env, OVER({ "TOR_PT_SERVER_TRANSPORT_OPTIONS", "obfs4:iat-mode=2" }));
	assert_int_equal(env.options.n, 0);
	expect_env_ok(server_env, OVER({ "TOR_PT_SERVER_TRANSPORT_OPTIONS", "" }));
	assert_int_equal(env.options.n, 0);
	expect_env_ok(server_env, OVER({ "TOR_PT_SERVER_TRANSPORT_OPTIONS", "sctp:x=1;" }));
	assert_int_equal(env.options.n, 1);
}

static void test_env_server_options_limits(void **state UNUSED)
{
	static char v[8192];
	/* One byte longer than fits; + 1 skips that byte. */
	char key[PT_KEY_MAX + 1], value[PT_VALUE_MAX + 1];
	size_t o = 0;

	/* PT_MAX_KV options of ours, others' options in between do not count. */
	for (int i = 0; i < PT_MAX_KV; i++)
		o += (size_t)snprintf(v + o, sizeof(v) - o, "sctp:k%d=%d;obfs4:k%d=x;", i, i, i);
	expect_env_ok(server_env, OVER({ "TOR_PT_SERVER_TRANSPORT_OPTIONS", v }));
	assert_int_equal(env.options.n, PT_MAX_KV);
	assert_string_equal(env.options.kv[PT_MAX_KV - 1].key, "k15");
	assert_string_equal(env.options.kv[PT_MAX_KV - 1].value, "15");
	snprintf(v + o, sizeof(v) - o, "sctp:one=more");
	expect_env_error(server_env, OVER({ "TOR_PT_SERVER_TRANSPORT_OPTIONS", v }),
	                 PT_ENV_ERROR, "TOR_PT_SERVER_TRANSPORT_OPTIONS");

	/* The longest key and value that fit. */
	memset(key, 'k', PT_KEY_MAX);
	key[PT_KEY_MAX] = '\0';
	memset(value, 'v', PT_VALUE_MAX);
	value[PT_VALUE_MAX] = '\0';
	snprintf(v, sizeof(v), "sctp:%s=%s", key + 1, value + 1);
	expect_env_ok(server_env, OVER({ "TOR_PT_SERVER_TRANSPORT_OPTIONS", v }));
	assert_int_equal(env.options.n, 1);
	assert_int_equal(strlen(env.options.kv[0].key), PT_KEY_MAX - 1);
	assert_int_equal(strlen(env.options.kv[0].value), PT_VALUE_MAX - 1);
	/* An escaped byte counts once. */
	snprintf(v, sizeof(v), "sctp:%s=\\:%s", key + 1, value + 2);
	expect_env_ok(server_env, OVER({ "TOR_PT_SERVER_TRANSPORT_OPTIONS", v }));
	assert_int_equal(strlen(env.options.kv[0].value), PT_VALUE_MAX - 1);

	/* One byte more in the key, then in the value. */
	snprintf(v, sizeof(v), "sctp:%s=1", key);
	expect_env_error(server_env, OVER({ "TOR_PT_SERVER_TRANSPORT_OPTIONS", v }),
	                 PT_ENV_ERROR, "TOR_PT_SERVER_TRANSPORT_OPTIONS");
	snprintf(v, sizeof(v), "sctp:k=%s", value);
	expect_env_error(server_env, OVER({ "TOR_PT_SERVER_TRANSPORT_OPTIONS", v }),
	                 PT_ENV_ERROR, "TOR_PT_SERVER_TRANSPORT_OPTIONS");
}

/* ------------------------------------------------------------------------ */
/* pt_env_parse: errors                                                      */

static void test_env_version_errors(void **state UNUSED)
{
	static const char *const bad[] = { "", "2", "1x", "11", "0", " 1", "1 ", "2,3", "v1" };
	char err[64];

	expect_env_error(client_env, OVER({ "TOR_PT_MANAGED_TRANSPORT_VER", UNSET }),
	                 PT_VERSION_ERROR, NULL);
	for (size_t i = 0; i < N_ELEMS(bad); i++)
		expect_env_error(client_env, OVER({ "TOR_PT_MANAGED_TRANSPORT_VER", bad[i] }),
		                 PT_VERSION_ERROR, NULL);
	/* The version is checked before anything else. */
	assert_int_equal(parse_env(server_env, OVER({ "TOR_PT_MANAGED_TRANSPORT_VER", "2" },
	                                            { "TOR_PT_STATE_LOCATION", UNSET }),
	                           err, sizeof(err)),
	                 PT_VERSION_ERROR);
}

static void test_env_state_errors(void **state UNUSED)
{
	static char longdir[PT_PATH_MAX + 16];

	expect_env_error(client_env, OVER({ "TOR_PT_STATE_LOCATION", UNSET }), PT_ENV_ERROR,
	                 "TOR_PT_STATE_LOCATION");
	expect_env_error(server_env, OVER({ "TOR_PT_STATE_LOCATION", "" }), PT_ENV_ERROR,
	                 "TOR_PT_STATE_LOCATION");
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[0] = '/';
	expect_env_error(client_env, OVER({ "TOR_PT_STATE_LOCATION", longdir }), PT_ENV_ERROR,
	                 "TOR_PT_STATE_LOCATION");
	/* Room is kept for the file names we put in it. */
	longdir[PT_PATH_MAX - 64] = '\0';
	expect_env_error(client_env, OVER({ "TOR_PT_STATE_LOCATION", longdir }), PT_ENV_ERROR,
	                 "TOR_PT_STATE_LOCATION");
	longdir[PT_PATH_MAX - 65] = '\0';
	expect_env_ok(client_env, OVER({ "TOR_PT_STATE_LOCATION", longdir }));
	assert_string_equal(env.state_dir, longdir);
}

static void test_env_role_errors(void **state UNUSED)
{
	char err[256];

	/* Both lists, even if one of them does not name us. */
	expect_env_error(client_env, OVER({ "TOR_PT_SERVER_TRANSPORTS", "sctp" }), PT_ENV_ERROR,
	                 "TOR_PT_SERVER_TRANSPORTS");
	assert_int_equal(parse_env(client_env, OVER({ "TOR_PT_SERVER_TRANSPORTS", "obfs4" }),
	                           err, sizeof(err)), PT_ENV_ERROR);
	assert_non_null(strstr(err, "TOR_PT_CLIENT_TRANSPORTS"));
	/* Neither list. */
	expect_env_error(client_env, OVER({ "TOR_PT_CLIENT_TRANSPORTS", UNSET }), PT_ENV_ERROR,
	                 "TOR_PT_CLIENT_TRANSPORTS");
	expect_env_error(server_env, OVER({ "TOR_PT_SERVER_TRANSPORTS", UNSET }), PT_ENV_ERROR,
	                 "TOR_PT_SERVER_TRANSPORTS");
}

static void test_env_exit_on_stdin_close_errors(void **state UNUSED)
{
	static const char *const bad[] = { "2", "yes", "true", "01", "1 ", " 0", "-1" };

	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		expect_env_error(client_env, OVER({ "TOR_PT_EXIT_ON_STDIN_CLOSE", bad[i] }),
		                 PT_ENV_ERROR, "TOR_PT_EXIT_ON_STDIN_CLOSE");
		expect_env_error(server_env, OVER({ "TOR_PT_EXIT_ON_STDIN_CLOSE", bad[i] }),
		                 PT_ENV_ERROR, "TOR_PT_EXIT_ON_STDIN_CLOSE");
	}
}

static void test_env_bindaddr_errors(void **state UNUSED)
{
	static const char *const bad[] = {
		"sctp127.0.0.1:4433",                   /* no dash */
		"obfs4-0.0.0.0:1,sctp",                 /* no dash, not even an address */
		"-127.0.0.1:4433",                      /* no name */
		",sctp-127.0.0.1:4433",                 /* empty entry */
		"obfs4-0.0.0.0:1,,sctp-127.0.0.1:1",
		"sctp-",
		"sctp-127.0.0.1",                       /* no port */
		"sctp-127.0.0.1:",
		"sctp-127.0.0.1:65536",
		"sctp-127.0.0.1:44x",
		"sctp-localhost:4433",                  /* numeric only */
		"sctp-::1:4433",                        /* IPv6 needs brackets */
		"sctp-[::1]",
		"sctp-[::1:4433",
		"sctp-1.2.3.256:1",
		"obfs4-0.0.0.0:1984,sctp-[::1]:4433x",
	};
	static char longv[300];

	for (size_t i = 0; i < N_ELEMS(bad); i++)
		expect_env_error(server_env, OVER({ "TOR_PT_SERVER_BINDADDR", bad[i] }),
		                 PT_ENV_ERROR, "TOR_PT_SERVER_BINDADDR");
	memcpy(longv, "sctp-", 5);
	memset(longv + 5, '1', sizeof(longv) - 6);
	expect_env_error(server_env, OVER({ "TOR_PT_SERVER_BINDADDR", longv }),
	                 PT_ENV_ERROR, "TOR_PT_SERVER_BINDADDR");
}

static void test_env_orport_errors(void **state UNUSED)
{
	static const char *const bad[] = {
		"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "localhost:9001", "::1:9001",
		"[::1]", "9001", ":9001", "127.0.0.1:9001 ",
	};

	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		expect_env_error(server_env, OVER({ "TOR_PT_ORPORT", bad[i] }), PT_ENV_ERROR,
		                 "TOR_PT_ORPORT");
		expect_env_error(server_env, OVER({ "TOR_PT_EXTENDED_SERVER_PORT", bad[i] },
		                                  { "TOR_PT_AUTH_COOKIE_FILE", "/c" }),
		                 PT_ENV_ERROR, "TOR_PT_EXTENDED_SERVER_PORT");
	}
}

static void test_env_extorport_errors(void **state UNUSED)
{
	static char longpath[PT_PATH_MAX + 1];

	/* ExtORPort without a cookie file. */
	expect_env_error(server_env, OVER({ "TOR_PT_EXTENDED_SERVER_PORT", "127.0.0.1:4200" }),
	                 PT_ENV_ERROR, "TOR_PT_AUTH_COOKIE_FILE");
	expect_env_error(server_env, OVER({ "TOR_PT_EXTENDED_SERVER_PORT", "127.0.0.1:4200" },
	                                  { "TOR_PT_AUTH_COOKIE_FILE", "" }),
	                 PT_ENV_ERROR, "TOR_PT_AUTH_COOKIE_FILE");
	memset(longpath, 'c', sizeof(longpath) - 1);
	expect_env_error(server_env, OVER({ "TOR_PT_EXTENDED_SERVER_PORT", "127.0.0.1:4200" },
	                                  { "TOR_PT_AUTH_COOKIE_FILE", longpath }),
	                 PT_ENV_ERROR, "TOR_PT_AUTH_COOKIE_FILE");

	/* Neither ORPort nor ExtORPort (unset or empty as tor writes it). */
	expect_env_error(server_env, OVER({ "TOR_PT_ORPORT", UNSET }), PT_ENV_ERROR,
	                 "TOR_PT_ORPORT");
	expect_env_error(server_env, OVER({ "TOR_PT_ORPORT", "" },
	                                  { "TOR_PT_EXTENDED_SERVER_PORT", UNSET }),
	                 PT_ENV_ERROR, "TOR_PT_ORPORT");
}

static void test_env_options_errors(void **state UNUSED)
{
	static const char *const bad[] = {
		"sctpmtu=1400",                 /* no colon */
		"sctp:mtu",                     /* no '=' */
		"sctp:mtu=1400;obfs4:iat",      /* another transport's, still malformed */
		"sctp:mtu=1400\\",              /* trailing backslash */
		"sctp:mtu=\\",
		"\\",
		":mtu=1400",                    /* empty transport name */
		"sctp:=1400",                   /* empty key */
		"sctp:mtu=1;;sctp:pad=0",       /* empty entry */
		";",
		"sctp\\:mtu=1400",              /* the colon is escaped away */
		"sctp:mtu\\=1400",              /* so is the '=' */
	};

	for (size_t i = 0; i < N_ELEMS(bad); i++)
		expect_env_error(server_env, OVER({ "TOR_PT_SERVER_TRANSPORT_OPTIONS", bad[i] }),
		                 PT_ENV_ERROR, "TOR_PT_SERVER_TRANSPORT_OPTIONS");
}

/*
 * Options meant for another transport are not ours to limit: pt-spec sets
 * no bound on names, keys or values, and tor passes those of every
 * transport the proxy is launched for (ServerTransportPlugin sctp,obfs4
 * exec sctpt).  Only well-formedness may be checked.  Every case is tried
 * and each failure printed before the test fails.
 */
static void test_env_server_options_not_ours(void **state UNUSED)
{
	static char name[101], key[41], value[601], v[1024];
	static const struct {
		const char *what, *fmt;
	} cases[] = {
		{ "100-byte transport name", "%s:k=v;sctp:mtu=1400" },
		{ "40-byte key", "obfs4:%s=v;sctp:mtu=1400" },
		{ "600-byte value", "obfs4:k=%s;sctp:mtu=1400" },
	};
	int failed = 0;

	memset(name, 'n', sizeof(name) - 1);
	memset(key, 'k', sizeof(key) - 1);
	memset(value, 'v', sizeof(value) - 1);
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		const char *arg = i == 0 ? name : i == 1 ? key : value;
		char err[256];

		snprintf(v, sizeof(v), cases[i].fmt, arg);
		if (parse_env(server_env, OVER({ "TOR_PT_SERVER_TRANSPORT_OPTIONS", v }), err,
		              sizeof(err)) != PT_ENV_OK) {
			print_error("another transport's %s rejected: %s\n", cases[i].what, err);
			failed++;
		} else if (env.options.n != 1 ||
		           strcmp(pt_kv_get(&env.options, "mtu"), "1400") != 0) {
			print_error("another transport's %s: our options lost\n", cases[i].what);
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

static void test_env_outbound_bind_errors(void **state UNUSED)
{
	static const struct {
		const char *var, *value;
	} bad[] = {
		{ "TOR_PT_OUTBOUND_BIND_ADDRESS_V4", "2001:db8::4" },      /* v6 in V4 */
		{ "TOR_PT_OUTBOUND_BIND_ADDRESS_V4", "[2001:db8::4]" },
		{ "TOR_PT_OUTBOUND_BIND_ADDRESS_V6", "203.0.113.4" },      /* v4 in V6 */
		{ "TOR_PT_OUTBOUND_BIND_ADDRESS_V6", "[203.0.113.4]" },
		{ "TOR_PT_OUTBOUND_BIND_ADDRESS_V4", "203.0.113.4:80" },   /* no port */
		{ "TOR_PT_OUTBOUND_BIND_ADDRESS_V6", "[2001:db8::4]:80" },
		{ "TOR_PT_OUTBOUND_BIND_ADDRESS_V6", "[2001:db8::4" },
		{ "TOR_PT_OUTBOUND_BIND_ADDRESS_V6", "2001:db8::4]" },
		{ "TOR_PT_OUTBOUND_BIND_ADDRESS_V6", "[]" },
		{ "TOR_PT_OUTBOUND_BIND_ADDRESS_V6", "[" },
		{ "TOR_PT_OUTBOUND_BIND_ADDRESS_V4", "host.example" },
		{ "TOR_PT_OUTBOUND_BIND_ADDRESS_V4", "203.0.113" },
		{ "TOR_PT_OUTBOUND_BIND_ADDRESS_V6",
		  "[2001:0db8:0000:0000:0000:0000:0000:0004:1111]" },      /* nine groups */
	};

	for (size_t i = 0; i < N_ELEMS(bad); i++)
		expect_env_error(client_env, OVER({ bad[i].var, bad[i].value }), PT_ENV_ERROR,
		                 bad[i].var);
}

static void test_env_proxy_errors(void **state UNUSED)
{
	static char longproxy[PT_PATH_MAX + 1];

	memcpy(longproxy, "socks5://", 9);
	memset(longproxy + 9, 'p', sizeof(longproxy) - 10);
	expect_env_error(client_env, OVER({ "TOR_PT_PROXY", longproxy }), PT_ENV_ERROR,
	                 "TOR_PT_PROXY");
}

/* A short err buffer truncates the message and stays NUL-terminated. */
static void test_env_short_err(void **state UNUSED)
{
	char err[9];

	memset(err, 'x', sizeof(err));
	assert_int_equal(parse_env(server_env, OVER({ "TOR_PT_ORPORT", "x" }), err, 8),
	                 PT_ENV_ERROR);
	assert_int_equal(strlen(err), 7);
	assert_int_equal(err[8], 'x');
	assert_int_equal(parse_env(server_env, OVER({ "TOR_PT_MANAGED_TRANSPORT_VER", "9" }),
	                           err, 1), PT_VERSION_ERROR);
	assert_int_equal(err[0], '\0');
}

/* ------------------------------------------------------------------------ */
/* pt_args_parse                                                             */

static int args(const uint8_t *s, size_t n, struct pt_kvlist *out, const char **err)
{
	int r;

	*err = (const char *)out;   /* must be overwritten */
	r = pt_args_parse(s, n, out, err);
	if (r == 0)
		assert_null(*err);
	else {
		assert_int_equal(r, -1);
		assert_non_null(*err);
		assert_true(strlen(*err) > 0);
	}
	return r;
}

static void expect_args_error(const uint8_t *s, size_t n)
{
	struct pt_kvlist l;
	const char *err;

	assert_int_equal(args(s, n, &l, &err), -1);
}

static void test_args_basic(void **state UNUSED)
{
	struct pt_kvlist l;
	const char *err;

	assert_int_equal(args(B("cert=ssH+9rP8dG2NLDN2XuFw63hIO/9MNNinLmxQDpVa+7kTOa9/m+tGWT1SmSYpQ9uTBGa6Hw;iat-mode=0"),
	                      &l, &err), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.kv[0].key, "cert");
	assert_string_equal(l.kv[0].value,
	                    "ssH+9rP8dG2NLDN2XuFw63hIO/9MNNinLmxQDpVa+7kTOa9/m+tGWT1SmSYpQ9uTBGa6Hw");
	assert_string_equal(l.kv[1].key, "iat-mode");
	assert_string_equal(l.kv[1].value, "0");
	assert_string_equal(pt_kv_get(&l, "iat-mode"), "0");
	assert_null(pt_kv_get(&l, "cert2"));
	assert_null(pt_kv_get(&l, "cer"));

	assert_int_equal(args(B("a=1"), &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(args(B("k="), &l, &err), 0);       /* empty value */
	assert_int_equal(l.n, 1);
	assert_string_equal(l.kv[0].value, "");
	assert_int_equal(args(B("a=1;b=2;c=3;d=;e=5"), &l, &err), 0);
	assert_int_equal(l.n, 5);
	assert_string_equal(pt_kv_get(&l, "c"), "3");
	assert_string_equal(pt_kv_get(&l, "d"), "");
	/* Bytes above 0x7f pass through. */
	assert_int_equal(args(B("k=\xc3\xa9\xff"), &l, &err), 0);
	assert_string_equal(l.kv[0].value, "\xc3\xa9\xff");
}

/*
 * tor (pt_get_socks_args_for_proxy) escapes only ';' and '\' with a
 * backslash; an '=' in a value stays as it is.  pt-spec 3.5 also asks for
 * '=' to be escaped, so "\=" must read as '=' too.
 */
static void test_args_escaping(void **state UNUSED)
{
	struct pt_kvlist l;
	const char *err;

	assert_int_equal(args(B("cert=AAAA==;x=a=b;y=\\;\\\\;z=p\\=q"), &l, &err), 0);
	assert_int_equal(l.n, 4);
	assert_string_equal(pt_kv_get(&l, "cert"), "AAAA==");
	assert_string_equal(pt_kv_get(&l, "x"), "a=b");
	assert_string_equal(pt_kv_get(&l, "y"), ";\\");
	assert_string_equal(pt_kv_get(&l, "z"), "p=q");

	/* Escapes in keys, an escaped '=' inside a key. */
	assert_int_equal(args(B("k\\;1=v;k\\\\2=w;k\\=3=x"), &l, &err), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.kv[0].key, "k;1");
	assert_string_equal(l.kv[1].key, "k\\2");
	assert_string_equal(l.kv[2].key, "k=3");
	assert_string_equal(l.kv[2].value, "x");

	/* A value of only escapes, and a backslash before an ordinary byte. */
	assert_int_equal(args(B("v=\\\\\\\\\\;\\;"), &l, &err), 0);
	assert_string_equal(l.kv[0].value, "\\\\;;");
	assert_int_equal(args(B("v=\\a"), &l, &err), 0);
	assert_string_equal(l.kv[0].value, "a");
}

static void test_args_errors(void **state UNUSED)
{
	struct pt_kvlist l;
	const char *err;

	assert_int_equal(args((const uint8_t *)"", 0, &l, &err), -1);      /* empty */
	assert_int_equal(l.n, 0);
	expect_args_error(B("cert"));                  /* missing '=' */
	expect_args_error(B("a=1;cert"));
	expect_args_error(B("a\\=1"));                 /* the only '=' is escaped */
	expect_args_error(B("=v"));                    /* empty key */
	expect_args_error(B("a=1;=v"));
	expect_args_error(B("a=1;;b=2"));              /* empty pair */
	expect_args_error(B(";"));
	expect_args_error(B("a=1;a=2"));               /* repeated key */
	expect_args_error(B("a=1;b=2;a=1"));
	expect_args_error(B("a\\;=1;a\\;=2"));
	expect_args_error(B("a=b\\"));                 /* trailing backslash */
	expect_args_error(B("a=b\\\\\\"));
	expect_args_error(B("\\"));
	expect_args_error(B("a=b\0c"));                /* NUL byte */
	expect_args_error(B("a\0=b"));
	expect_args_error(B("a=\\\0"));                /* escaped NUL */
	expect_args_error(B("\0"));
}

static void test_args_limits(void **state UNUSED)
{
	static uint8_t s[4096];
	struct pt_kvlist l;
	const char *err;
	size_t o = 0;

	/* The longest key and value. */
	memset(s, 'k', PT_KEY_MAX - 1);
	s[PT_KEY_MAX - 1] = '=';
	memset(s + PT_KEY_MAX, 'v', PT_VALUE_MAX - 1);
	assert_int_equal(args(s, PT_KEY_MAX + PT_VALUE_MAX - 1, &l, &err), 0);
	assert_int_equal(strlen(l.kv[0].key), PT_KEY_MAX - 1);
	assert_int_equal(strlen(l.kv[0].value), PT_VALUE_MAX - 1);
	/* Escapes count once. */
	s[PT_KEY_MAX] = '\\';
	s[PT_KEY_MAX + 1] = ';';
	assert_int_equal(args(s, PT_KEY_MAX + PT_VALUE_MAX - 1, &l, &err), 0);
	assert_int_equal(strlen(l.kv[0].value), PT_VALUE_MAX - 2);
	s[PT_KEY_MAX + PT_VALUE_MAX - 1] = 'v';
	assert_int_equal(args(s, PT_KEY_MAX + PT_VALUE_MAX, &l, &err), 0);
	assert_int_equal(strlen(l.kv[0].value), PT_VALUE_MAX - 1);
	/* One byte more in the value. */
	s[PT_KEY_MAX + PT_VALUE_MAX] = 'v';
	expect_args_error(s, PT_KEY_MAX + PT_VALUE_MAX + 1);
	/* One byte more in the key. */
	memset(s, 'k', PT_KEY_MAX);
	s[PT_KEY_MAX] = '=';
	s[PT_KEY_MAX + 1] = 'v';
	expect_args_error(s, PT_KEY_MAX + 2);

	/* PT_MAX_KV pairs, then one more. */
	for (int i = 0; i < PT_MAX_KV; i++)
		o += (size_t)snprintf((char *)s + o, sizeof(s) - o, "%sk%d=%d", i > 0 ? ";" : "",
		                      i, i);
	assert_int_equal(args(s, o, &l, &err), 0);
	assert_int_equal(l.n, PT_MAX_KV);
	assert_string_equal(pt_kv_get(&l, "k15"), "15");
	o += (size_t)snprintf((char *)s + o, sizeof(s) - o, ";x=y");
	expect_args_error(s, o);
}

/* ------------------------------------------------------------------------ */
/* pt_args_join                                                              */

static void test_args_join_short(void **state UNUSED)
{
	uint8_t out[600];

	/* What tor sends for an argument string of up to 255 bytes. */
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(pt_args_join(B("cert=abc;iat-mode=0"), B("\0"), out, sizeof(out)), 19);
	assert_memory_equal(out, "cert=abc;iat-mode=0", 20);
	/* Exactly fitting, then one too small. */
	assert_int_equal(pt_args_join(B("cert=abc"), B("\0"), out, 9), 8);
	assert_string_equal((char *)out, "cert=abc");
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(pt_args_join(B("cert=abc"), B("\0"), out, 8), -1);
	assert_int_equal(out[0], 0xaa);
	assert_int_equal(pt_args_join(B("cert=abc"), B("\0"), out, 0), -1);
	/* No password at all. */
	assert_int_equal(pt_args_join(B("a=b"), (const uint8_t *)"", 0, out, sizeof(out)), 3);
	assert_string_equal((char *)out, "a=b");
}

/*
 * tor (connection_proxy_connect) puts the first 255 bytes of a longer
 * argument string in the username and the rest in the password; exactly
 * 255 bytes go in the username with the "\0" password.
 */
static void test_args_join_long(void **state UNUSED)
{
	char full[520], cert[400];
	uint8_t out[600];
	struct pt_kvlist l;
	const char *err;
	size_t n;
	int r;

	for (size_t i = 0; i < 300; i++)
		cert[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i % 64];
	cert[300] = '\0';
	n = (size_t)snprintf(full, sizeof(full), "cert=%s;iat-mode=0;note=a\\;b=c", cert);
	assert_true(n > 255);

	r = pt_args_join((const uint8_t *)full, 255, (const uint8_t *)full + 255, n - 255,
	                 out, sizeof(out));
	assert_int_equal(r, (int)n);
	assert_memory_equal(out, full, n + 1);
	assert_int_equal(args(out, (size_t)r, &l, &err), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(pt_kv_get(&l, "cert"), cert);
	assert_string_equal(pt_kv_get(&l, "iat-mode"), "0");
	assert_string_equal(pt_kv_get(&l, "note"), "a;b=c");

	/* Output just big enough, then one byte short. */
	assert_int_equal(pt_args_join((const uint8_t *)full, 255, (const uint8_t *)full + 255,
	                              n - 255, out, n + 1), (int)n);
	assert_int_equal(pt_args_join((const uint8_t *)full, 255, (const uint8_t *)full + 255,
	                              n - 255, out, n), -1);

	/* Exactly 255 bytes: the "\0" password is filler. */
	full[255] = '\0';
	assert_int_equal(pt_args_join((const uint8_t *)full, 255, B("\0"), out, sizeof(out)), 255);
	assert_memory_equal(out, full, 256);

	/* 256 bytes: one byte of continuation. */
	r = pt_args_join((const uint8_t *)full, 255, B("Z"), out, sizeof(out));
	assert_int_equal(r, 256);
	assert_memory_equal(out, full, 255);
	assert_int_equal(out[255], 'Z');
	assert_int_equal(out[256], '\0');

	/* The longest tor sends: 255 + 255. */
	memset(full, 'x', 510);
	r = pt_args_join((const uint8_t *)full, 255, (const uint8_t *)full + 255, 255,
	                 out, sizeof(out));
	assert_int_equal(r, 510);
	assert_int_equal(out[510], '\0');
}

/* ------------------------------------------------------------------------ */
/* pt_escape_smethod_arg                                                     */

static void test_escape_smethod_arg(void **state UNUSED)
{
	char out[64];

	assert_int_equal(pt_escape_smethod_arg("abc", out, sizeof(out)), 0);
	assert_string_equal(out, "abc");
	assert_int_equal(pt_escape_smethod_arg("", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(pt_escape_smethod_arg("a\\b=c,d", out, sizeof(out)), 0);
	assert_string_equal(out, "a\\\\b\\=c\\,d");
	assert_int_equal(pt_escape_smethod_arg("==,,\\\\", out, sizeof(out)), 0);
	assert_string_equal(out, "\\=\\=\\,\\,\\\\\\\\");
	/* base64 as in a cert: only the padding needs escaping. */
	assert_int_equal(pt_escape_smethod_arg("q+/Z09==", out, sizeof(out)), 0);
	assert_string_equal(out, "q+/Z09\\=\\=");
	/* Other bytes are left alone. */
	assert_int_equal(pt_escape_smethod_arg("a;b:c d", out, sizeof(out)), 0);
	assert_string_equal(out, "a;b:c d");
}

static void test_escape_smethod_arg_overflow(void **state UNUSED)
{
	char out[16];

	/* "abc" needs 4 bytes. */
	assert_int_equal(pt_escape_smethod_arg("abc", out, 4), 0);
	assert_string_equal(out, "abc");
	memset(out, 'x', sizeof(out));
	assert_int_equal(pt_escape_smethod_arg("abc", out, 3), -1);
	assert_int_equal(out[3], 'x');
	/* "a=" escapes to "a\=", 4 bytes with the NUL. */
	assert_int_equal(pt_escape_smethod_arg("a=", out, 4), 0);
	assert_string_equal(out, "a\\=");
	memset(out, 'x', sizeof(out));
	assert_int_equal(pt_escape_smethod_arg("a=", out, 3), -1);
	assert_int_equal(out[3], 'x');
	/* The escape itself would be the last byte. */
	assert_int_equal(pt_escape_smethod_arg("=", out, 2), -1);
	assert_int_equal(pt_escape_smethod_arg("=", out, 3), 0);
	assert_int_equal(pt_escape_smethod_arg("", out, 1), 0);
	assert_string_equal(out, "");
	memset(out, 'x', sizeof(out));
	assert_int_equal(pt_escape_smethod_arg("", out, 0), -1);
	assert_int_equal(out[0], 'x');
}

/* ------------------------------------------------------------------------ */
/* pt_quote                                                                  */

/* out is one whole "..." with only the escapes pt_quote may produce. */
static void assert_valid_quoted(const char *out)
{
	size_t n = strlen(out);

	assert_true(n >= 2);
	assert_int_equal(out[0], '"');
	assert_int_equal(out[n - 1], '"');
	for (size_t i = 1; i < n - 1; i++) {
		unsigned char c = (unsigned char)out[i];

		assert_true(c >= 0x20 && c < 0x7f);
		assert_true(c != '"');
		if (c != '\\')
			continue;
		assert_true(i + 1 < n - 1);
		c = (unsigned char)out[++i];
		if (c >= '0' && c <= '3') {
			assert_true(i + 2 < n - 1);
			assert_true(out[i + 1] >= '0' && out[i + 1] <= '7');
			assert_true(out[i + 2] >= '0' && out[i + 2] <= '7');
			i += 2;
		} else {
			assert_non_null(strchr("\\\"nrt", c));
		}
	}
}

static void test_quote(void **state UNUSED)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "", "\"\"" },
		{ "hello world", "\"hello world\"" },
		{ "say \"hi\"", "\"say \\\"hi\\\"\"" },
		{ "C:\\dir\\", "\"C:\\\\dir\\\\\"" },
		{ "a\nb\rc\td", "\"a\\nb\\rc\\td\"" },
		{ "\x01\x1b\x1f", "\"\\001\\033\\037\"" },
		{ "del\x7f", "\"del\\177\"" },
		{ "caf\xc3\xa9 \xff\x80", "\"caf\\303\\251 \\377\\200\"" },
		{ "~ !'", "\"~ !'\"" },
	};
	char out[128];

	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		assert_ptr_equal(pt_quote(cases[i].in, out, sizeof(out)), out);
		assert_string_equal(out, cases[i].want);
		assert_valid_quoted(out);
	}
}

static void test_quote_truncation(void **state UNUSED)
{
	static const char *const inputs[] = {
		"abcdef", "a\"b\\c\nd", "\x01\x02\x03", "x\xff\xfey", "\t\t\t\t",
	};
	char full[128], out[128];

	/* Every size: a valid quoted prefix of the full quoting, no overrun. */
	for (size_t i = 0; i < N_ELEMS(inputs); i++) {
		size_t fl;

		pt_quote(inputs[i], full, sizeof(full));
		fl = strlen(full);
		for (size_t len = 3; len <= fl + 2; len++) {
			size_t n;

			memset(out, 'Z', sizeof(out));
			pt_quote(inputs[i], out, len);
			n = strlen(out);
			assert_true(n < len);
			assert_int_equal(out[len], 'Z');
			assert_valid_quoted(out);
			assert_memory_equal(out, full, n - 1);
			if (len > fl)
				assert_string_equal(out, full);
		}
	}
	/* Escapes are never cut in half. */
	assert_string_equal(pt_quote("\x01", out, 6), "\"\"");
	assert_string_equal(pt_quote("\x01", out, 7), "\"\\001\"");
	assert_string_equal(pt_quote("\\", out, 4), "\"\"");
	assert_string_equal(pt_quote("\\", out, 5), "\"\\\\\"");
	assert_string_equal(pt_quote("abc", out, 4), "\"a\"");
	assert_string_equal(pt_quote("abc", out, 3), "\"\"");
	/* Too small for even "": an empty string, nothing beyond. */
	memset(out, 'Z', sizeof(out));
	assert_string_equal(pt_quote("abc", out, 2), "");
	assert_int_equal(out[1], 'Z');
	assert_string_equal(pt_quote("abc", out, 1), "");
	memset(out, 'Z', sizeof(out));
	pt_quote("abc", out, 0);
	assert_int_equal(out[0], 'Z');
}

/* ------------------------------------------------------------------------ */
/* pt_parse_addr                                                             */

static void test_parse_addr(void **state UNUSED)
{
	struct sockaddr_storage ss;
	socklen_t len;

	assert_int_equal(pt_parse_addr("127.0.0.1:9001", 0, &ss, &len), 0);
	assert_addr(&ss, AF_INET, "127.0.0.1", 9001);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(pt_parse_addr("[::1]:4433", 0, &ss, &len), 0);
	assert_addr(&ss, AF_INET6, "::1", 4433);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_int_equal(pt_parse_addr("[2001:db8::1]:65535", 0, &ss, &len), 0);
	assert_addr(&ss, AF_INET6, "2001:db8::1", 65535);
	assert_int_equal(pt_parse_addr("0.0.0.0:0", 1, &ss, &len), 0);
	assert_addr(&ss, AF_INET, "0.0.0.0", 0);
	assert_int_equal(pt_parse_addr("[::]:0", 1, &ss, &len), 0);
	assert_addr(&ss, AF_INET6, "::", 0);
}

static void test_parse_addr_errors(void **state UNUSED)
{
	static const char *const bad[] = {
		"", ":", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:65536", "127.0.0.1:-1",
		"127.0.0.1:80x", "127.0.0.1:80 ", " 127.0.0.1:80", "localhost:80",
		"::1:80", "[::1]", "[::1]:", "[::1:80", "::1]:80", "[]:80", "1.2.3.256:80",
		"1.2.3:80", "[fe80::1%lo]:80",
	};
	struct sockaddr_storage ss;
	socklen_t len;

	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		if (pt_parse_addr(bad[i], 1, &ss, &len) != -1) {
			print_error("accepted \"%s\"\n", bad[i]);
			fail();
		}
	}
	assert_int_equal(pt_parse_addr("127.0.0.1:0", 0, &ss, &len), -1);
	assert_int_equal(pt_parse_addr("[::1]:0", 0, &ss, &len), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_client),
		cmocka_unit_test(test_env_client_not_us),
		cmocka_unit_test(test_env_client_star),
		cmocka_unit_test(test_env_versions),
		cmocka_unit_test(test_env_exit_on_stdin_close),
		cmocka_unit_test(test_env_client_proxy),
		cmocka_unit_test(test_env_client_outbound_bind),
		cmocka_unit_test(test_env_client_ignores_server_vars),
		cmocka_unit_test(test_env_server),
		cmocka_unit_test(test_env_server_bindaddr),
		cmocka_unit_test(test_env_server_star_and_not_us),
		cmocka_unit_test(test_env_server_orport_only),
		cmocka_unit_test(test_env_server_extorport),
		cmocka_unit_test(test_env_server_options),
		cmocka_unit_test(test_env_server_options_limits),
		cmocka_unit_test(test_env_version_errors),
		cmocka_unit_test(test_env_state_errors),
		cmocka_unit_test(test_env_role_errors),
		cmocka_unit_test(test_env_exit_on_stdin_close_errors),
		cmocka_unit_test(test_env_bindaddr_errors),
		cmocka_unit_test(test_env_orport_errors),
		cmocka_unit_test(test_env_extorport_errors),
		cmocka_unit_test(test_env_options_errors),
		cmocka_unit_test(test_env_server_options_not_ours),
		cmocka_unit_test(test_env_outbound_bind_errors),
		cmocka_unit_test(test_env_proxy_errors),
		cmocka_unit_test(test_env_short_err),
		cmocka_unit_test(test_args_basic),
		cmocka_unit_test(test_args_escaping),
		cmocka_unit_test(test_args_errors),
		cmocka_unit_test(test_args_limits),
		cmocka_unit_test(test_args_join_short),
		cmocka_unit_test(test_args_join_long),
		cmocka_unit_test(test_escape_smethod_arg),
		cmocka_unit_test(test_escape_smethod_arg_overflow),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_quote_truncation),
		cmocka_unit_test(test_parse_addr),
		cmocka_unit_test(test_parse_addr_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
