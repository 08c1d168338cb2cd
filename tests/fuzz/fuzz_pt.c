/*
 * libFuzzer harness for Tor managed mode's pure parsers (src/pt): the first
 * input byte picks a target, the rest is its input.
 *
 *   0  pt_args_join + pt_args_parse (tor's SOCKS5 credentials), with a
 *      re-escape round trip of whatever parses
 *   1  pt_env_parse, the input split at NUL bytes into TOR_PT_* values
 *   2  pt_quote and pt_escape_smethod_arg at fuzzer-chosen buffer sizes
 *   3  extor_client_step on raw bytes from "tor" (and extor_cookie_parse)
 *   4  extor_client_step after a valid SAFE_COOKIE exchange, so that the
 *      reply parser is reached
 *
 * Besides the sanitizers' checks, every call keeps its contract (bounds,
 * terminators, quoting) and the Extended ORPort client must end alike
 * however the bytes are split.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pt/extor.h"
#include "pt/pt.h"

/* Fails in release builds too, unlike assert(). */
#define CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ------------------------------------------------------------------------ */
/* 0: per-bridge arguments                                                   */

/*
 * Bridge arguments have unique keys; TOR_PT_SERVER_TRANSPORT_OPTIONS may
 * repeat one (pt_kv_get then sees the first).
 */
static void check_kvlist(const struct pt_kvlist *l, int unique)
{
	CHECK(l->n <= PT_MAX_KV);
	for (size_t i = 0; i < l->n; i++) {
		size_t kl = strnlen(l->kv[i].key, PT_KEY_MAX), first = i;

		CHECK(kl > 0 && kl < PT_KEY_MAX);
		CHECK(strnlen(l->kv[i].value, PT_VALUE_MAX) < PT_VALUE_MAX);
		for (size_t j = i; j-- > 0;)
			if (strcmp(l->kv[i].key, l->kv[j].key) == 0)
				first = j;
		CHECK(!unique || first == i);
		CHECK(pt_kv_get(l, l->kv[i].key) == l->kv[first].value);
	}
}

/* Escape as tor would (plus '=' in keys, which tor never has to). */
static size_t escape_arg(const char *s, const char *special, uint8_t *out)
{
	size_t o = 0;

	for (; *s != '\0'; s++) {
		if (strchr(special, *s) != NULL)
			out[o++] = '\\';
		out[o++] = (uint8_t)*s;
	}
	return o;
}

static void fuzz_args(const uint8_t *data, size_t size)
{
	static struct pt_kvlist l, again;
	static uint8_t joined[2 * 255 + 1], re[PT_MAX_KV * (2 * PT_KEY_MAX + 2 * PT_VALUE_MAX + 2)];
	const char *err = NULL;
	size_t ulen, plen, o = 0;
	int n, r;

	/* As SOCKS5 would carry it: at most 255 bytes each. */
	if (size == 0)
		return;
	ulen = data[0];
	data++;
	size--;
	if (ulen > size)
		ulen = size;
	plen = size - ulen > 255 ? 255 : size - ulen;

	n = pt_args_join(data, ulen, data + ulen, plen, joined, sizeof(joined));
	CHECK(n >= -1 && n <= 510);
	if (n >= 0) {
		CHECK((size_t)n == ulen || (ulen == 255 && (size_t)n == ulen + plen));
		CHECK(joined[n] == '\0');
		CHECK(memcmp(joined, data, (size_t)n) == 0);
	}
	/* A too-small output buffer fails cleanly. */
	if (n > 0) {
		uint8_t *small = malloc((size_t)n);

		CHECK(small != NULL);
		CHECK(pt_args_join(data, ulen, data + ulen, plen, small, (size_t)n) == -1);
		free(small);
	}

	/* The whole input, unsplit. */
	r = pt_args_parse(data, size, &l, &err);
	CHECK(r == 0 || r == -1);
	CHECK((r == 0) == (err == NULL));
	if (r < 0)
		return;
	CHECK(size > 0);
	check_kvlist(&l, 1);

	/* Re-escaping what parsed gives back the same list. */
	for (size_t i = 0; i < l.n; i++) {
		if (i > 0)
			re[o++] = ';';
		o += escape_arg(l.kv[i].key, ";\\=", re + o);
		re[o++] = '=';
		o += escape_arg(l.kv[i].value, ";\\", re + o);
	}
	CHECK(o <= sizeof(re));
	CHECK(pt_args_parse(re, o, &again, &err) == 0);
	CHECK(again.n == l.n);
	for (size_t i = 0; i < l.n; i++) {
		CHECK(strcmp(again.kv[i].key, l.kv[i].key) == 0);
		CHECK(strcmp(again.kv[i].value, l.kv[i].value) == 0);
	}
}

/* ------------------------------------------------------------------------ */
/* 1: the environment                                                        */

static const char *const env_names[] = {
	"TOR_PT_MANAGED_TRANSPORT_VER",
	"TOR_PT_STATE_LOCATION",
	"TOR_PT_CLIENT_TRANSPORTS",
	"TOR_PT_SERVER_TRANSPORTS",
	"TOR_PT_EXIT_ON_STDIN_CLOSE",
	"TOR_PT_PROXY",
	"TOR_PT_OUTBOUND_BIND_ADDRESS_V4",
	"TOR_PT_OUTBOUND_BIND_ADDRESS_V6",
	"TOR_PT_SERVER_BINDADDR",
	"TOR_PT_ORPORT",
	"TOR_PT_EXTENDED_SERVER_PORT",
	"TOR_PT_AUTH_COOKIE_FILE",
	"TOR_PT_SERVER_TRANSPORT_OPTIONS",
};

struct fuzz_env {
	const char *value[N_ELEMS(env_names)];     /* NULL: unset */
};

static const char *fuzz_getenv(const char *name, void *arg)
{
	const struct fuzz_env *e = arg;

	for (size_t i = 0; i < N_ELEMS(env_names); i++)
		if (strcmp(name, env_names[i]) == 0)
			return e->value[i];
	CHECK(0);       /* a variable this harness does not know */
	return NULL;
}

static void check_env(const struct pt_env *env)
{
	CHECK(env->state_dir[0] != '\0');
	CHECK(strnlen(env->state_dir, PT_PATH_MAX) < PT_PATH_MAX);
	CHECK(env->client_listed != env->server_listed);
	CHECK(!env->client || env->client_listed);
	CHECK(!env->server || env->server_listed);
	CHECK(env->exit_on_stdin_close == 0 || env->exit_on_stdin_close == 1);
	if (env->client_listed) {
		CHECK(!env->has_bindaddr && !env->has_orport && !env->has_extorport);
		CHECK(env->options.n == 0);
		if (env->has_proxy)
			CHECK(env->proxy[0] != '\0' && strnlen(env->proxy, PT_PATH_MAX) < PT_PATH_MAX);
		if (env->has_bind_v4)
			CHECK(env->bind_v4.ss_family == AF_INET);
		if (env->has_bind_v6)
			CHECK(env->bind_v6.ss_family == AF_INET6);
		return;
	}
	CHECK(!env->has_proxy && !env->has_bind_v4 && !env->has_bind_v6);
	CHECK(env->has_orport || env->has_extorport);
	if (env->has_bindaddr)
		CHECK(env->bindaddr.ss_family == AF_INET || env->bindaddr.ss_family == AF_INET6);
	if (env->has_orport)
		CHECK(env->orport.ss_family == AF_INET || env->orport.ss_family == AF_INET6);
	if (env->has_extorport) {
		CHECK(env->extorport.ss_family == AF_INET || env->extorport.ss_family == AF_INET6);
		CHECK(env->cookie_file[0] != '\0');
	}
	check_kvlist(&env->options, 0);
}

/*
 * The fields that mean something (the parser copies whole key and value
 * arrays, bytes past the NUL included, so no memcmp of the struct).
 */
static int env_same(const struct pt_env *a, const struct pt_env *b)
{
	if (a->client != b->client || a->server != b->server ||
	    a->client_listed != b->client_listed || a->server_listed != b->server_listed ||
	    strcmp(a->state_dir, b->state_dir) != 0 ||
	    a->exit_on_stdin_close != b->exit_on_stdin_close ||
	    a->has_proxy != b->has_proxy || strcmp(a->proxy, b->proxy) != 0 ||
	    a->has_bind_v4 != b->has_bind_v4 || a->has_bind_v6 != b->has_bind_v6 ||
	    a->has_bindaddr != b->has_bindaddr || a->bindaddr_len != b->bindaddr_len ||
	    a->has_orport != b->has_orport || a->orport_len != b->orport_len ||
	    a->has_extorport != b->has_extorport || a->extorport_len != b->extorport_len ||
	    strcmp(a->cookie_file, b->cookie_file) != 0 || a->options.n != b->options.n)
		return 0;
	if (memcmp(&a->bindaddr, &b->bindaddr, sizeof(a->bindaddr)) != 0 ||
	    memcmp(&a->orport, &b->orport, sizeof(a->orport)) != 0 ||
	    memcmp(&a->extorport, &b->extorport, sizeof(a->extorport)) != 0 ||
	    memcmp(&a->bind_v4, &b->bind_v4, sizeof(a->bind_v4)) != 0 ||
	    memcmp(&a->bind_v6, &b->bind_v6, sizeof(a->bind_v6)) != 0)
		return 0;
	for (size_t i = 0; i < a->options.n; i++)
		if (strcmp(a->options.kv[i].key, b->options.kv[i].key) != 0 ||
		    strcmp(a->options.kv[i].value, b->options.kv[i].value) != 0)
			return 0;
	return 1;
}

static void fuzz_env(const uint8_t *data, size_t size)
{
	static struct pt_env env, env2;
	struct fuzz_env e;
	char *copy, *p, err[256], small[16];
	size_t errlen;
	int r, r2;

	if (size == 0)
		return;
	errlen = 1 + data[0] % sizeof(small);
	data++;
	size--;

	/* NUL-separated values in the order of env_names; "\xff" alone: unset. */
	copy = malloc(size + 1);
	CHECK(copy != NULL);
	memcpy(copy, data, size);
	copy[size] = '\0';
	memset(&e, 0, sizeof(e));
	p = copy;
	for (size_t i = 0; i < N_ELEMS(env_names) && p <= copy + size; i++) {
		e.value[i] = strcmp(p, "\xff") == 0 ? NULL : p;
		p += strlen(p) + 1;
	}

	memset(err, 'Z', sizeof(err));
	r = pt_env_parse(fuzz_getenv, &e, &env, err, sizeof(err));
	CHECK(r == PT_ENV_OK || r == PT_ENV_ERROR || r == PT_VERSION_ERROR);
	CHECK(memchr(err, '\0', sizeof(err)) != NULL);
	if (r != PT_ENV_OK)
		CHECK(err[0] != '\0');
	else
		check_env(&env);

	/* A short error buffer: same outcome, truncated and terminated. */
	memset(small, 'Z', sizeof(small));
	r2 = pt_env_parse(fuzz_getenv, &e, &env2, small, errlen);
	CHECK(r2 == r);
	CHECK(memchr(small, '\0', errlen) != NULL);
	for (size_t i = errlen; i < sizeof(small); i++)
		CHECK(small[i] == 'Z');
	if (r != PT_ENV_OK)
		CHECK(strncmp(small, err, errlen - 1) == 0);
	else
		CHECK(env_same(&env, &env2));
	free(copy);
}

/* ------------------------------------------------------------------------ */
/* 2: quoting and escaping                                                   */

static void check_quoted(const char *q)
{
	size_t n = strlen(q);

	CHECK(n >= 2 && q[0] == '"' && q[n - 1] == '"');
	for (size_t i = 1; i < n - 1; i++) {
		unsigned char c = (unsigned char)q[i];

		CHECK(c >= 0x20 && c < 0x7f && c != '"');
		if (c != '\\')
			continue;
		CHECK(i + 1 < n - 1);
		c = (unsigned char)q[++i];
		if (c >= '0' && c <= '3') {
			CHECK(i + 2 < n - 1);
			CHECK(q[i + 1] >= '0' && q[i + 1] <= '7');
			CHECK(q[i + 2] >= '0' && q[i + 2] <= '7');
			i += 2;
		} else {
			CHECK(strchr("\\\"nrt", c) != NULL);
		}
	}
}

/* The number of input bytes a (possibly truncated) quoting stands for. */
static size_t unquoted_len(const char *q)
{
	size_t n = strlen(q), k = 0;

	for (size_t i = 1; i < n - 1; i++, k++)
		if (q[i] == '\\')
			i += q[i + 1] >= '0' && q[i + 1] <= '3' ? 3 : 1;
	return k;
}

static void fuzz_quote(const uint8_t *data, size_t size)
{
	size_t outlen, slen, full_len, need = 0;
	char *s, *out, *full;
	int r;

	if (size == 0)
		return;
	outlen = data[0];
	data++;
	size--;
	s = malloc(size + 1);
	CHECK(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	slen = strlen(s);

	/* Exactly sized heap buffers, so that ASan sees any overrun. */
	full = malloc(4 * slen + 3);
	CHECK(full != NULL);
	CHECK(pt_quote(s, full, 4 * slen + 3) == full);
	check_quoted(full);
	full_len = strlen(full);
	CHECK(unquoted_len(full) == slen);

	out = malloc(outlen > 0 ? outlen : 1);
	CHECK(out != NULL);
	out[0] = 'Z';
	CHECK(pt_quote(s, out, outlen) == out);
	if (outlen == 0) {
		CHECK(out[0] == 'Z');
	} else if (outlen < 3) {
		CHECK(out[0] == '\0');
	} else {
		size_t n = strlen(out);

		CHECK(n < outlen);
		check_quoted(out);
		/* A prefix of the full quoting, cut between escapes. */
		CHECK(memcmp(out, full, n - 1) == 0);
		if (outlen > full_len)
			CHECK(strcmp(out, full) == 0);
		else
			CHECK(n + 4 >= outlen || n == full_len);
	}
	free(out);

	/* SMETHOD ARGS escaping: succeeds exactly when it fits. */
	for (size_t i = 0; i < slen; i++)
		need += (s[i] == '\\' || s[i] == '=' || s[i] == ',') ? 2 : 1;
	out = malloc(outlen > 0 ? outlen : 1);
	CHECK(out != NULL);
	r = pt_escape_smethod_arg(s, out, outlen);
	CHECK(r == 0 || r == -1);
	CHECK((r == 0) == (need + 1 <= outlen));
	if (r == 0) {
		size_t k = 0;

		CHECK(strlen(out) == need);
		/* Unescaping gives s back; every special byte is escaped. */
		for (size_t i = 0; i < need; i++, k++) {
			if (out[i] == '\\') {
				i++;
				CHECK(out[i] == '\\' || out[i] == '=' || out[i] == ',');
			} else {
				CHECK(out[i] != '=' && out[i] != ',');
			}
			CHECK(out[i] == s[k]);
		}
		CHECK(k == slen);
	}
	free(out);
	free(full);
	free(s);
}

/* ------------------------------------------------------------------------ */
/* 3, 4: the Extended ORPort client                                          */

static const uint8_t fz_cookie[EXTOR_COOKIE_LEN] = { 0x42, 0x17, 0x99, 0x01, 0xfe, 0x00, 0x33 };
static const uint8_t fz_client_nonce[EXTOR_NONCE_LEN] = { 0x40, 0x41, 0x42, 0x43 };
static const uint8_t fz_server_nonce[EXTOR_NONCE_LEN] = { 0xa0, 0xa1, 0xa2, 0xa3 };

struct outcome {
	struct extor_client st;
	int rc;
	size_t used;
	uint8_t sent[4 * EXTOR_OUT_MAX];
	size_t sentlen;
};

static int checked_step(struct outcome *o, const uint8_t *in, size_t n)
{
	uint8_t out[EXTOR_OUT_MAX];
	size_t used = (size_t)-1, outlen = (size_t)-1;
	int rc = extor_client_step(&o->st, in, n, &used, out, &outlen);

	CHECK(rc == EXTOR_ERROR || rc == EXTOR_NEED_MORE || rc == EXTOR_OKAY ||
	      rc == EXTOR_DENIED);
	CHECK(used <= n);
	CHECK(outlen <= EXTOR_OUT_MAX);
	/* A whole exchange sends 33 + 32 + three commands, once. */
	CHECK(o->sentlen + outlen <= sizeof(o->sent));
	memcpy(o->sent + o->sentlen, out, outlen);
	o->sentlen += outlen;
	o->used += used;
	o->rc = rc;
	if (rc == EXTOR_ERROR || rc == EXTOR_DENIED)
		CHECK(o->st.error != NULL && o->st.phase == EXTOR_PHASE_FAILED);
	if (rc == EXTOR_OKAY)
		CHECK(o->st.phase == EXTOR_PHASE_DONE);
	return rc;
}

static void extor_start(struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	CHECK(extor_client_init(&o->st, fz_cookie, fz_client_nonce, "192.0.2.1:5678", "sctp") == 0);
}

static void run_whole(struct outcome *o, const uint8_t *data, size_t size)
{
	extor_start(o);
	checked_step(o, data, size);
}

/* Pieces of 1..8 bytes, sizes taken from the input itself. */
static void run_split(struct outcome *o, const uint8_t *data, size_t size)
{
	size_t avail = 0, k = 0;

	extor_start(o);
	do {
		size_t piece = size > 0 ? 1 + data[k++ % size] % 8 : 0;

		avail += piece < size - avail ? piece : size - avail;
		checked_step(o, data + o->used, avail - o->used);
	} while (o->rc == EXTOR_NEED_MORE && avail < size);
}

static void check_outcome(struct outcome *o)
{
	CHECK(o->sentlen == 0 || o->sent[0] == EXTOR_AUTH_SAFE_COOKIE);
	if (o->sentlen > 0)
		CHECK(memcmp(o->sent + 1, fz_client_nonce, EXTOR_NONCE_LEN) == 0);
	/* Once over, nothing more is read or sent. */
	if (o->rc != EXTOR_NEED_MORE) {
		size_t used = o->used, sent = o->sentlen;

		checked_step(o, (const uint8_t *)"\x10\x00\x00\x00", 4);
		CHECK(o->used == used && o->sentlen == sent);
		CHECK(o->rc != EXTOR_NEED_MORE);
	}
}

static void fuzz_extor(const uint8_t *data, size_t size, int authenticated)
{
	static struct outcome whole, split;
	static uint8_t in[2 + EXTOR_HASH_LEN + EXTOR_NONCE_LEN + 1 + 65536];
	const uint8_t *p = data;
	size_t n = size;

	if (!authenticated) {
		/* The same bytes as a cookie file. */
		uint8_t c[EXTOR_COOKIE_LEN];
		int ok = size == EXTOR_COOKIE_FILE_LEN &&
		         memcmp(data, "! Extended ORPort Auth Cookie !\n", 32) == 0;

		CHECK(extor_cookie_parse(data, size, c) == (ok ? 0 : -1));
		if (ok)
			CHECK(memcmp(c, data + 32, EXTOR_COOKIE_LEN) == 0);
	}
	if (authenticated) {
		if (size > sizeof(in) - 67)
			return;
		in[0] = EXTOR_AUTH_SAFE_COOKIE;
		in[1] = 0;
		CHECK(extor_hash(fz_cookie, 1, fz_client_nonce, fz_server_nonce, in + 2) == 0);
		memcpy(in + 2 + EXTOR_HASH_LEN, fz_server_nonce, EXTOR_NONCE_LEN);
		in[66] = 1;
		memcpy(in + 67, data, size);
		p = in;
		n = 67 + size;
	}
	run_whole(&whole, p, n);
	run_split(&split, p, n);
	CHECK(whole.rc == split.rc);
	CHECK(whole.used == split.used);
	CHECK(whole.sentlen == split.sentlen);
	CHECK(memcmp(whole.sent, split.sent, whole.sentlen) == 0);
	CHECK(whole.st.phase == split.st.phase);
	if (whole.rc == EXTOR_ERROR || whole.rc == EXTOR_DENIED)
		CHECK(strcmp(whole.st.error, split.st.error) == 0);
	if (authenticated) {
		/* Auth went through: we sent our hash and our commands. */
		CHECK(whole.used >= 67);
		CHECK(whole.sentlen == 65 + (4 + 14) + (4 + 4) + 4);
	}
	check_outcome(&whole);
	check_outcome(&split);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 5) {
	case 0:
		fuzz_args(data + 1, size - 1);
		break;
	case 1:
		fuzz_env(data + 1, size - 1);
		break;
	case 2:
		fuzz_quote(data + 1, size - 1);
		break;
	case 3:
		fuzz_extor(data + 1, size - 1, 0);
		break;
	default:
		fuzz_extor(data + 1, size - 1, 1);
		break;
	}
	return 0;
}
