/*
 * pt-spec v1 parsing and escaping; see pt.h.  Everything here is pure.
 */
#include "pt/pt.h"

#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "util/netaddr.h"

const char *pt_kv_get(const struct pt_kvlist *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->kv[i].key, key) == 0)
			return l->kv[i].value;
	return NULL;
}

static int seterr(char *err, size_t errlen, const char *fmt, const char *what)
{
	snprintf(err, errlen, fmt, what);
	return PT_ENV_ERROR;
}

/* Whether the comma-separated list names tok (or "*" when star is set). */
static int list_has_tok(const char *list, const char *tok, int star)
{
	size_t n = strlen(tok);

	for (const char *p = list; *p != '\0';) {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

		if ((len == n && strncmp(p, tok, n) == 0) || (star && len == 1 && *p == '*'))
			return 1;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return 0;
}

static int list_has(const char *list, const char *tok)
{
	return list_has_tok(list, tok, 1);
}

int pt_parse_addr(const char *s, int allow_port0, struct sockaddr_storage *ss,
                  socklen_t *len)
{
	char host[NETADDR_HOST_MAX];
	uint16_t port;

	if (netaddr_parse_hostport(s, host, sizeof(host), &port, allow_port0) < 0)
		return -1;
	return netaddr_from_numeric(host, port, ss, len);
}

/* A bare or bracketed IP address with no port, for the outbound binds. */
static int parse_bind_ip(const char *s, int family, struct sockaddr_storage *ss)
{
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(s);
	socklen_t len;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	if (s[0] == '[') {
		if (n < 3 || s[n - 1] != ']')
			return -1;
		memcpy(buf, s + 1, n - 2);
		buf[n - 2] = '\0';
	} else {
		memcpy(buf, s, n + 1);
	}
	if (netaddr_from_numeric(buf, 0, ss, &len) < 0 || ss->ss_family != family)
		return -1;
	return 0;
}

/* Our entry of TOR_PT_SERVER_BINDADDR ("name-addr:port,..."). */
static int parse_bindaddr(const char *v, struct pt_env *env, char *err, size_t errlen)
{
	size_t ourlen = strlen(PT_TRANSPORT);

	for (const char *p = v; *p != '\0';) {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		const char *dash = memchr(p, '-', len);
		char addr[NETADDR_HOST_MAX + 8];

		if (dash == NULL || dash == p)
			return seterr(err, errlen, "malformed TOR_PT_SERVER_BINDADDR entry%s", "");
		if ((size_t)(dash - p) == ourlen && strncmp(p, PT_TRANSPORT, ourlen) == 0) {
			size_t alen = len - (size_t)(dash + 1 - p);

			if (alen >= sizeof(addr))
				return seterr(err, errlen, "TOR_PT_SERVER_BINDADDR address too long%s", "");
			memcpy(addr, dash + 1, alen);
			addr[alen] = '\0';
			if (pt_parse_addr(addr, 1, &env->bindaddr, &env->bindaddr_len) < 0)
				return seterr(err, errlen,
				              "TOR_PT_SERVER_BINDADDR: bad address for " PT_TRANSPORT
				              " (want IP:PORT)%s", "");
			env->has_bindaddr = 1;
		}
		if (end == NULL)
			break;
		p = end + 1;
	}
	return PT_ENV_OK;
}

/*
 * TOR_PT_SERVER_TRANSPORT_OPTIONS: "name:k=v;name:k=v", with ':', ';', '='
 * and '\' escapable by a backslash.  Our options go to env->options.
 */
static int parse_server_options(const char *v, struct pt_env *env, char *err, size_t errlen)
{
	char name[64], key[PT_KEY_MAX], value[PT_VALUE_MAX];
	/* field 0 = name, 1 = key, 2 = value */
	int field = 0, ours = 0, name_long = 0;
	size_t len = 0;
	const char *p = v;

	for (;;) {
		char c = *p;
		int sep = c == '\0' || c == ';';

		if (c == '\\') {
			if (p[1] == '\0')
				return seterr(err, errlen,
				              "TOR_PT_SERVER_TRANSPORT_OPTIONS ends in a backslash%s", "");
			c = p[1];
			p++;
		} else if (sep) {
			if (field == 0 && len == 0 && c == '\0')
				return PT_ENV_OK;          /* empty variable or trailing ';' */
			if (field != 2)
				return seterr(err, errlen, "malformed TOR_PT_SERVER_TRANSPORT_OPTIONS "
				              "(want transport:key=value;...)%s", "");
			if (ours)
				value[len] = '\0';
			if (ours) {
				struct pt_kv *kv;

				if (env->options.n >= PT_MAX_KV)
					return seterr(err, errlen, "too many " PT_TRANSPORT
					              " options in TOR_PT_SERVER_TRANSPORT_OPTIONS%s", "");
				kv = &env->options.kv[env->options.n++];
				memcpy(kv->key, key, sizeof(kv->key));
				memcpy(kv->value, value, sizeof(kv->value));
			}
			if (c == '\0')
				return PT_ENV_OK;
			field = 0;
			len = 0;
			ours = 0;
			p++;
			continue;
		} else if (c == ':' && field == 0) {
			if (len == 0)
				return seterr(err, errlen, "TOR_PT_SERVER_TRANSPORT_OPTIONS: "
				              "empty transport name%s", "");
			if (!name_long)
				name[len] = '\0';
			ours = !name_long && strcmp(name, PT_TRANSPORT) == 0;
			name_long = 0;
			field = 1;
			len = 0;
			p++;
			continue;
		} else if (c == '=' && field == 1) {
			if (ours)
				key[len] = '\0';
			if (len == 0)
				return seterr(err, errlen, "TOR_PT_SERVER_TRANSPORT_OPTIONS: "
				              "empty key%s", "");
			field = 2;
			len = 0;
			p++;
			continue;
		}
		{
			size_t cap = field == 0 ? sizeof(name) : field == 1 ? sizeof(key) : sizeof(value);
			char *dst = field == 0 ? name : field == 1 ? key : value;

			/* Other transports' options are checked for syntax only. */
			if (field == 0 && len + 1 >= cap) {
				name_long = 1;
				len++;
			} else if (field > 0 && !ours) {
				len++;
			} else if (len + 1 >= cap) {
				return seterr(err, errlen, "TOR_PT_SERVER_TRANSPORT_OPTIONS: "
				              "a key or value of " PT_TRANSPORT " is too long%s", "");
			} else {
				dst[len++] = c;
			}
		}
		p++;
	}
}

static const char *env_get(const char *(*get)(const char *, void *), void *arg,
                           const char *name)
{
	return get(name, arg);
}

int pt_env_parse(const char *(*get)(const char *name, void *arg), void *arg,
                 struct pt_env *env, char *err, size_t errlen)
{
	const char *v;
	int r;

	memset(env, 0, sizeof(*env));
	snprintf(err, errlen, "unknown error");

	v = env_get(get, arg, "TOR_PT_MANAGED_TRANSPORT_VER");
	if (v == NULL || !list_has_tok(v, "1", 0)) {
		snprintf(err, errlen, "no-version");
		return PT_VERSION_ERROR;
	}

	v = env_get(get, arg, "TOR_PT_STATE_LOCATION");
	if (v == NULL || v[0] == '\0')
		return seterr(err, errlen, "TOR_PT_STATE_LOCATION is not set%s", "");
	if (strlen(v) >= sizeof(env->state_dir) - 64)
		return seterr(err, errlen, "TOR_PT_STATE_LOCATION is too long%s", "");
	strcpy(env->state_dir, v);

	v = env_get(get, arg, "TOR_PT_EXIT_ON_STDIN_CLOSE");
	if (v != NULL && v[0] != '\0') {
		if (strcmp(v, "1") == 0)
			env->exit_on_stdin_close = 1;
		else if (strcmp(v, "0") != 0)
			return seterr(err, errlen, "TOR_PT_EXIT_ON_STDIN_CLOSE must be 0 or 1%s", "");
	}

	v = env_get(get, arg, "TOR_PT_CLIENT_TRANSPORTS");
	if (v != NULL) {
		env->client_listed = 1;
		env->client = list_has(v, PT_TRANSPORT);
	}
	v = env_get(get, arg, "TOR_PT_SERVER_TRANSPORTS");
	if (v != NULL) {
		env->server_listed = 1;
		env->server = list_has(v, PT_TRANSPORT);
	}
	if (env->client_listed && env->server_listed)
		return seterr(err, errlen, "both TOR_PT_CLIENT_TRANSPORTS and "
		              "TOR_PT_SERVER_TRANSPORTS are set%s", "");
	if (!env->client_listed && !env->server_listed)
		return seterr(err, errlen, "neither TOR_PT_CLIENT_TRANSPORTS nor "
		              "TOR_PT_SERVER_TRANSPORTS is set%s", "");

	if (env->client_listed) {
		v = env_get(get, arg, "TOR_PT_PROXY");
		if (v != NULL && v[0] != '\0') {
			if (strlen(v) >= sizeof(env->proxy))
				return seterr(err, errlen, "TOR_PT_PROXY is too long%s", "");
			env->has_proxy = 1;
			strcpy(env->proxy, v);
		}
		v = env_get(get, arg, "TOR_PT_OUTBOUND_BIND_ADDRESS_V4");
		if (v != NULL && v[0] != '\0') {
			if (parse_bind_ip(v, AF_INET, &env->bind_v4) < 0)
				return seterr(err, errlen, "TOR_PT_OUTBOUND_BIND_ADDRESS_V4 is not an "
				              "IPv4 address%s", "");
			env->has_bind_v4 = 1;
		}
		v = env_get(get, arg, "TOR_PT_OUTBOUND_BIND_ADDRESS_V6");
		if (v != NULL && v[0] != '\0') {
			if (parse_bind_ip(v, AF_INET6, &env->bind_v6) < 0)
				return seterr(err, errlen, "TOR_PT_OUTBOUND_BIND_ADDRESS_V6 is not an "
				              "IPv6 address%s", "");
			env->has_bind_v6 = 1;
		}
		return PT_ENV_OK;
	}

	/* Server. */
	v = env_get(get, arg, "TOR_PT_SERVER_BINDADDR");
	if (v != NULL && (r = parse_bindaddr(v, env, err, errlen)) != PT_ENV_OK)
		return r;
	v = env_get(get, arg, "TOR_PT_ORPORT");
	if (v != NULL && v[0] != '\0') {
		if (pt_parse_addr(v, 0, &env->orport, &env->orport_len) < 0)
			return seterr(err, errlen, "TOR_PT_ORPORT is not IP:PORT%s", "");
		env->has_orport = 1;
	}
	v = env_get(get, arg, "TOR_PT_EXTENDED_SERVER_PORT");
	if (v != NULL && v[0] != '\0') {
		if (pt_parse_addr(v, 0, &env->extorport, &env->extorport_len) < 0)
			return seterr(err, errlen, "TOR_PT_EXTENDED_SERVER_PORT is not IP:PORT%s", "");
		env->has_extorport = 1;
		v = env_get(get, arg, "TOR_PT_AUTH_COOKIE_FILE");
		if (v == NULL || v[0] == '\0')
			return seterr(err, errlen, "TOR_PT_EXTENDED_SERVER_PORT is set but "
			              "TOR_PT_AUTH_COOKIE_FILE is not%s", "");
		if (strlen(v) >= sizeof(env->cookie_file))
			return seterr(err, errlen, "TOR_PT_AUTH_COOKIE_FILE is too long%s", "");
		strcpy(env->cookie_file, v);
	}
	if (!env->has_orport && !env->has_extorport)
		return seterr(err, errlen, "TOR_PT_ORPORT is not set (and no "
		              "TOR_PT_EXTENDED_SERVER_PORT)%s", "");
	v = env_get(get, arg, "TOR_PT_SERVER_TRANSPORT_OPTIONS");
	if (v != NULL && (r = parse_server_options(v, env, err, errlen)) != PT_ENV_OK)
		return r;
	return PT_ENV_OK;
}

int pt_args_parse(const uint8_t *s, size_t n, struct pt_kvlist *out, const char **err)
{
	char key[PT_KEY_MAX], value[PT_VALUE_MAX];
	size_t len = 0;
	int in_value = 0;

	out->n = 0;
	*err = NULL;
	if (n == 0) {
		*err = "no arguments";
		return -1;
	}
	for (size_t i = 0; i <= n; i++) {
		uint8_t c = i < n ? s[i] : ';';
		int end = i == n;

		if (!end && c == '\0') {
			*err = "NUL byte in arguments";
			return -1;
		}
		if (!end && c == '\\') {
			if (i + 1 >= n) {
				*err = "arguments end in a backslash";
				return -1;
			}
			c = s[++i];
			if (c == '\0') {
				*err = "NUL byte in arguments";
				return -1;
			}
		} else if (c == ';') {
			if (!in_value) {
				*err = len == 0 ? "empty argument" : "argument without '='";
				return -1;
			}
			value[len] = '\0';
			if (pt_kv_get(out, key) != NULL) {
				*err = "repeated argument";
				return -1;
			}
			if (out->n >= PT_MAX_KV) {
				*err = "too many arguments";
				return -1;
			}
			memcpy(out->kv[out->n].key, key, sizeof(key));
			memcpy(out->kv[out->n].value, value, sizeof(value));
			out->n++;
			in_value = 0;
			len = 0;
			continue;
		} else if (c == '=' && !in_value) {
			if (len == 0) {
				*err = "empty argument name";
				return -1;
			}
			key[len] = '\0';
			in_value = 1;
			len = 0;
			continue;
		}
		if (len + 1 >= (in_value ? sizeof(value) : sizeof(key))) {
			*err = in_value ? "argument value too long" : "argument name too long";
			return -1;
		}
		if (in_value)
			value[len++] = (char)c;
		else
			key[len++] = (char)c;
	}
	return 0;
}

int pt_args_join(const uint8_t *user, size_t ulen, const uint8_t *pass, size_t plen,
                 uint8_t *out, size_t outlen)
{
	size_t total = ulen;
	int use_pass = ulen == 255 && plen > 0 && !(plen == 1 && pass[0] == '\0');

	if (use_pass)
		total += plen;
	if (total + 1 > outlen)
		return -1;
	memcpy(out, user, ulen);
	if (use_pass)
		memcpy(out + ulen, pass, plen);
	out[total] = '\0';
	return (int)total;
}

int pt_escape_smethod_arg(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	for (const char *p = in; *p != '\0'; p++) {
		if (*p == '\\' || *p == '=' || *p == ',') {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = '\\';
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = *p;
	}
	if (o >= outlen)
		return -1;
	out[o] = '\0';
	return 0;
}

char *pt_quote(const char *s, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen < 3) {
		if (outlen > 0)
			out[0] = '\0';
		return out;
	}
	out[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		char esc[5];
		size_t n;

		switch (*p) {
		case '\\': memcpy(esc, "\\\\", 3); break;
		case '"': memcpy(esc, "\\\"", 3); break;
		case '\n': memcpy(esc, "\\n", 3); break;
		case '\r': memcpy(esc, "\\r", 3); break;
		case '\t': memcpy(esc, "\\t", 3); break;
		default:
			if (*p < 0x20 || *p >= 0x7f)
				snprintf(esc, sizeof(esc), "\\%03o", *p);
			else {
				esc[0] = (char)*p;
				esc[1] = '\0';
			}
		}
		n = strlen(esc);
		if (o + n + 2 > outlen)     /* room for the closing quote and NUL */
			break;
		memcpy(out + o, esc, n);
		o += n;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}
