/*
 * Unit tests for util/sharelink: links arrive from chat, mail and QR codes,
 * so the parser sees hostile bytes; every rule of docs/share-links.md has a
 * case here, and every accepted link must survive parse -> format -> parse.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "util/sharelink.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* docs/PROTOCOL.md's test-vector cert, and its base64url form. */
#define CERT_STD "B6N8vBQgk8i3VdwbEOhstCY3StFqqFPtC9/AsrhtHHxAQUJDREVGR0hJSktMTU5P"
#define CERT_URL "B6N8vBQgk8i3VdwbEOhstCY3StFqqFPtC9_AsrhtHHxAQUJDREVGR0hJSktMTU5P"
#define PFX "sctpt://" CERT_URL

static int parse(const char *s, struct sharelink *l)
{
	const char *err;
	int rc = sharelink_parse(s, strlen(s), l, &err);

	if (rc < 0)
		assert_non_null(err);
	return rc;
}

static void roundtrip(const struct sharelink *l)
{
	char buf[SHARELINK_MAX_LEN + 1];
	struct sharelink again;
	int n = sharelink_format(l, buf, sizeof(buf));

	assert_true(n > 0);
	assert_int_equal(parse(buf, &again), 0);
	assert_memory_equal(l, &again, sizeof(again));
}

static void test_good(void **state)
{
	struct sharelink l;

	assert_int_equal(parse(PFX "?udp=203.0.113.5:4433&tcp=[2001:db8::1]:443"
	                       "&udp=bridge.example.org:53#my%20bridge%20%E2%9C%93", &l), 0);
	assert_string_equal(l.cert, CERT_STD);
	assert_int_equal(l.npaths, 3);
	assert_int_equal(l.paths[0].tcp, 0);
	assert_string_equal(l.paths[0].host, "203.0.113.5");
	assert_int_equal(l.paths[0].port, 4433);
	assert_int_equal(l.paths[1].tcp, 1);
	assert_string_equal(l.paths[1].host, "2001:db8::1");
	assert_int_equal(l.paths[1].port, 443);
	assert_string_equal(l.paths[2].host, "bridge.example.org");
	assert_string_equal(l.name, "my bridge \xe2\x9c\x93");
	roundtrip(&l);
}

static void test_good_variants(void **state)
{
	static const char *good[] = {
		PFX "?udp=1.2.3.4:1",
		PFX "/?tcp=1.2.3.4:65535",
		"SCTPT://" CERT_URL "?udp=1.2.3.4:9",
		PFX "?udp=%5B::1%5D:9",              /* brackets percent-encoded */
		PFX "?udp=%31.2.3.4:9",              /* any byte may be encoded */
		PFX "?udp=1.2.3.4:9#",               /* empty name */
		PFX "?udp=1.2.3.4:9&x-future=anything%20here",
		PFX "?udp=1.2.3.4:9&udp=1.2.3.4:10&tcp=1.2.3.4:9",  /* distinct paths */
		PFX "?udp=1.2.3.4:9#a/b?c:d@e!$&'()*+,;=",
		PFX "?udp=a-b.c:9",
	};
	struct sharelink l;

	for (size_t i = 0; i < N_ELEMS(good); i++) {
		if (parse(good[i], &l) != 0)
			fail_msg("rejected: %s", good[i]);
		roundtrip(&l);
	}
}

static void test_bad(void **state)
{
	static const char *bad[] = {
		"",
		"sctpt://",
		"sctpt:" CERT_URL "?udp=1.2.3.4:9",
		"http://" CERT_URL "?udp=1.2.3.4:9",
		PFX,                                   /* no path */
		PFX "#name",                           /* no path */
		PFX "?",                               /* empty parameter */
		PFX "?udp=1.2.3.4:9&",
		PFX "?udp=1.2.3.4:9&&tcp=1.2.3.4:9",
		"sctpt://" CERT_STD "?udp=1.2.3.4:9",  /* standard base64: '/' */
		"sctpt://" "B6N8vBQgk8i3VdwbEOhstCY3StFqqFPtC9+AsrhtHHxAQUJDREVGR0hJSktMTU5P"
		"?udp=1.2.3.4:9",
		"sctpt://abc?udp=1.2.3.4:9",           /* short cert */
		PFX "A?udp=1.2.3.4:9",                 /* long cert */
		"sctpt://@" CERT_URL "?udp=1.2.3.4:9",
		PFX "x?udp=1.2.3.4:9",
		PFX "//?udp=1.2.3.4:9",
		PFX "?udp",                            /* no '=' */
		PFX "?udp=",
		PFX "?udp=1.2.3.4",                    /* no port */
		PFX "?udp=1.2.3.4:",
		PFX "?udp=1.2.3.4:0",
		PFX "?udp=1.2.3.4:65536",
		PFX "?udp=1.2.3.4:080",
		PFX "?udp=1.2.3.4:+80",
		PFX "?udp=1.2.3.4:99999999999999999999",
		PFX "?udp=:9",
		PFX "?udp=::1:9",                      /* IPv6 without brackets */
		PFX "?udp=[::1:9",
		PFX "?udp=[1.2.3.4]:9",
		PFX "?udp=[::1]9",
		PFX "?udp=[fe80::1%25eth0]:9",         /* zone ids */
		PFX "?udp=1.2.3.999:9",
		PFX "?udp=-a.b:9",
		PFX "?udp=a-.b:9",
		PFX "?udp=a..b:9",
		PFX "?udp=a.b.:9",
		PFX "?udp=a_b:9",
		PFX "?udp=a%20b:9",
		PFX "?udp=a b:9",
		PFX "?udp=1.2.3.4:9%",                 /* truncated escapes */
		PFX "?udp=1.2.3.4:9%4",
		PFX "?udp=1.2.3.4:9%zz",
		PFX "?udp=1.2.3.4%00:9",               /* encoded NUL */
		PFX "?UDP=1.2.3.4:9",                  /* keys are lower case */
		PFX "?sctp=1.2.3.4:9",                 /* unknown key */
		PFX "?cert=x&udp=1.2.3.4:9",
		PFX "?x-=1&udp=1.2.3.4:9",
		PFX "?udp=1.2.3.4:9&x-a=b c",
		PFX "?udp=1.2.3.4:9&udp=1.2.3.4:9",    /* duplicate path */
		PFX "?udp=1.2.3.4:9#%",
		PFX "?udp=1.2.3.4:9#%0A",              /* control in name */
		PFX "?udp=1.2.3.4:9#%C2%85",           /* C1 control */
		PFX "?udp=1.2.3.4:9#%FF",              /* not UTF-8 */
		PFX "?udp=1.2.3.4:9#%C0%AF",           /* overlong */
		PFX "?udp=1.2.3.4:9#%ED%A0%80",        /* surrogate */
		PFX "?udp=1.2.3.4:9#%E2%9C",           /* truncated sequence */
		PFX "?udp=1.2.3.4:9#a b",
		PFX "?udp=1.2.3.4:9#a#b",
		" " PFX "?udp=1.2.3.4:9",
		PFX "?udp=1.2.3.4:9\n",
	};
	struct sharelink l;

	for (size_t i = 0; i < N_ELEMS(bad); i++)
		if (parse(bad[i], &l) == 0)
			fail_msg("accepted: %s", bad[i]);
}

static void test_nul_and_lengths(void **state)
{
	static const char nul[] = PFX "?udp=1.2.3.4:9\0#x";
	char big[SHARELINK_MAX_LEN + 64], name[200];
	struct sharelink l;
	const char *err;
	size_t n;

	assert_int_equal(sharelink_parse(nul, sizeof(nul) - 1, &l, &err), -1);
	/* Without its NUL the same bytes are a good link: len is what counts. */
	assert_int_equal(sharelink_parse(nul, strlen(nul), &l, &err), 0);

	/* Overlong link. */
	n = (size_t)snprintf(big, sizeof(big), "%s?udp=1.2.3.4:9&x-pad=", PFX);
	memset(big + n, 'a', sizeof(big) - n - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(parse(big, &l), -1);

	/* Names: 64 bytes decoded pass, 65 do not. */
	memset(name, 'n', 64);
	name[64] = '\0';
	snprintf(big, sizeof(big), "%s?udp=1.2.3.4:9#%s", PFX, name);
	assert_int_equal(parse(big, &l), 0);
	snprintf(big, sizeof(big), "%s?udp=1.2.3.4:9#%sn", PFX, name);
	assert_int_equal(parse(big, &l), -1);

	/* A 253-character host passes, 254 does not; a 64-character label never. */
	char host[300];
	memset(host, 'a', 253);
	for (int i = 63; i < 253; i += 64)
		host[i] = '.';
	host[253] = '\0';
	snprintf(big, sizeof(big), "%s?udp=%s:9", PFX, host);
	assert_int_equal(parse(big, &l), 0);
	roundtrip(&l);
	snprintf(big, sizeof(big), "%s?udp=%sa:9", PFX, host);
	assert_int_equal(parse(big, &l), -1);
	memset(host, 'a', 64);
	host[64] = '\0';
	snprintf(big, sizeof(big), "%s?udp=%s:9", PFX, host);
	assert_int_equal(parse(big, &l), -1);
}

static void test_path_limit(void **state)
{
	char buf[1024];
	struct sharelink l;
	size_t n = (size_t)snprintf(buf, sizeof(buf), "%s?", PFX);

	for (int i = 1; i <= SHARELINK_MAX_PATHS; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%sudp=1.2.3.4:%d",
		                      i > 1 ? "&" : "", i);
	assert_int_equal(parse(buf, &l), 0);
	assert_int_equal(l.npaths, SHARELINK_MAX_PATHS);
	roundtrip(&l);
	snprintf(buf + n, sizeof(buf) - n, "&tcp=1.2.3.4:1");
	assert_int_equal(parse(buf, &l), -1);
}

static void test_format(void **state)
{
	struct sharelink l;
	char buf[SHARELINK_MAX_LEN + 1];
	int n;

	memset(&l, 0, sizeof(l));
	strcpy(l.cert, CERT_STD);
	l.npaths = 2;
	strcpy(l.paths[0].host, "::1");
	l.paths[0].port = 4433;
	l.paths[1].tcp = 1;
	strcpy(l.paths[1].host, "127.0.0.1");
	l.paths[1].port = 443;
	strcpy(l.name, "caf\xc3\xa9 #1");
	n = sharelink_format(&l, buf, sizeof(buf));
	assert_int_equal(n, (int)strlen(buf));
	assert_string_equal(buf, PFX "?udp=[::1]:4433&tcp=127.0.0.1:443#caf%C3%A9%20%231");
	/* Too small a buffer, never a truncated link. */
	assert_int_equal(sharelink_format(&l, buf, 40), -1);
	/* Invalid structs are refused. */
	l.paths[1].port = 0;
	assert_int_equal(sharelink_format(&l, buf, sizeof(buf)), -1);
	l.paths[1].port = 443;
	strcpy(l.paths[1].host, "bad host");
	assert_int_equal(sharelink_format(&l, buf, sizeof(buf)), -1);
	strcpy(l.paths[1].host, "::1");
	l.paths[1].tcp = 0;
	l.paths[1].port = 4433;
	assert_int_equal(sharelink_format(&l, buf, sizeof(buf)), -1);   /* duplicate */
	l.npaths = 0;
	assert_int_equal(sharelink_format(&l, buf, sizeof(buf)), -1);
	l.npaths = 1;
	l.cert[10] = '-';
	assert_int_equal(sharelink_format(&l, buf, sizeof(buf)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_good_variants),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_nul_and_lengths),
		cmocka_unit_test(test_path_limit),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
