/*
 * Bridge arguments across a chain.  Keys are namespaced by hop with a dot:
 * "obfs4.cert=..." belongs to hop obfs4 as "cert=...".  Tor takes any key
 * with an '=' after it in a Bridge line and passes keys and values through
 * SOCKS with ';' and '\' escaped, so the dot needs no escaping anywhere; a
 * transport name is a C identifier, so it never holds a dot itself and the
 * first dot always ends the prefix.
 */
#include "chain/chain.h"

#include <stdio.h>
#include <string.h>

static int kv_add(struct pt_kvlist *l, const char *key, size_t klen, const char *value,
                  size_t vlen, const char **err)
{
	if (klen == 0) {
		*err = "empty argument name";
		return -1;
	}
	if (klen >= PT_KEY_MAX || vlen >= PT_VALUE_MAX) {
		*err = klen >= PT_KEY_MAX ? "argument name too long" : "argument value too long";
		return -1;
	}
	if (l->n >= PT_MAX_KV) {
		*err = "too many arguments";
		return -1;
	}
	memcpy(l->kv[l->n].key, key, klen);
	l->kv[l->n].key[klen] = '\0';
	if (pt_kv_get(l, l->kv[l->n].key) != NULL) {
		*err = "repeated argument";
		return -1;
	}
	memcpy(l->kv[l->n].value, value, vlen);
	l->kv[l->n].value[vlen] = '\0';
	l->n++;
	return 0;
}

int chain_smethod_args_parse(const char *s, struct pt_kvlist *out, const char **err)
{
	char key[PT_KEY_MAX], value[PT_VALUE_MAX];
	size_t len = 0;
	int in_value = 0;

	out->n = 0;
	*err = NULL;
	if (*s == '\0')
		return 0;
	for (const char *p = s;; p++) {
		char c = *p;

		if (c == '\\') {
			if (p[1] == '\0') {
				*err = "arguments end in a backslash";
				return -1;
			}
			c = *++p;
		} else if (c == ',' || c == '\0') {
			if (!in_value) {
				*err = len == 0 ? "empty argument" : "argument without '='";
				return -1;
			}
			if (kv_add(out, key, strlen(key), value, len, err) < 0)
				return -1;
			if (c == '\0')
				return 0;
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
			value[len++] = c;
		else
			key[len++] = c;
	}
}

int chain_args_combine(const char hop[][CHAIN_NAME_MAX], const struct pt_kvlist *per_hop,
                       unsigned nhops, struct pt_kvlist *out, const char **err)
{
	out->n = 0;
	*err = NULL;
	for (unsigned h = 0; h < nhops; h++) {
		for (size_t i = 0; i < per_hop[h].n; i++) {
			char key[PT_KEY_MAX];
			const struct pt_kv *kv = &per_hop[h].kv[i];
			int n = snprintf(key, sizeof(key), "%s.%s", hop[h], kv->key);

			if (n < 0 || (size_t)n >= sizeof(key)) {
				*err = "hop name plus argument name too long";
				return -1;
			}
			if (kv_add(out, key, (size_t)n, kv->value, strlen(kv->value), err) < 0)
				return -1;
		}
	}
	return 0;
}

/* Append s with a backslash before every byte of special. */
static int put_escaped(const char *s, const char *special, char *out, size_t outlen,
                       size_t *o)
{
	for (; *s != '\0'; s++) {
		if (strchr(special, *s) != NULL) {
			if (*o + 1 >= outlen)
				return -1;
			out[(*o)++] = '\\';
		}
		if (*o + 1 >= outlen)
			return -1;
		out[(*o)++] = *s;
	}
	return 0;
}

static int put_char(char c, char *out, size_t outlen, size_t *o)
{
	if (*o + 1 >= outlen)
		return -1;
	out[(*o)++] = c;
	return 0;
}

int chain_args_format_smethod(const struct pt_kvlist *l, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen == 0)
		return -1;
	for (size_t i = 0; i < l->n; i++) {
		if ((i > 0 && put_char(',', out, outlen, &o) < 0) ||
		    put_escaped(l->kv[i].key, "\\=,", out, outlen, &o) < 0 ||
		    put_char('=', out, outlen, &o) < 0 ||
		    put_escaped(l->kv[i].value, "\\=,", out, outlen, &o) < 0)
			return -1;
	}
	out[o] = '\0';
	return 0;
}

int chain_args_format_bridge(const struct pt_kvlist *l, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen == 0)
		return -1;
	for (size_t i = 0; i < l->n; i++) {
		for (const char *p = l->kv[i].value; *p != '\0'; p++)
			if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f)
				return -1;
		for (const char *p = l->kv[i].key; *p != '\0'; p++)
			if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f || *p == '=')
				return -1;
		if ((i > 0 && put_char(' ', out, outlen, &o) < 0) ||
		    put_escaped(l->kv[i].key, "", out, outlen, &o) < 0 ||
		    put_char('=', out, outlen, &o) < 0 ||
		    put_escaped(l->kv[i].value, "", out, outlen, &o) < 0)
			return -1;
	}
	out[o] = '\0';
	return 0;
}

int chain_args_split(const struct pt_kvlist *in, const char hop[][CHAIN_NAME_MAX],
                     unsigned nhops, struct pt_kvlist *per_hop, const char **err)
{
	*err = NULL;
	for (unsigned h = 0; h < nhops; h++)
		per_hop[h].n = 0;
	for (size_t i = 0; i < in->n; i++) {
		const char *key = in->kv[i].key, *dot = strchr(key, '.');
		unsigned h;

		if (dot == NULL || dot == key) {
			*err = "an argument has no hop prefix (want HOP.key=value)";
			return -1;
		}
		for (h = 0; h < nhops; h++)
			if (strlen(hop[h]) == (size_t)(dot - key) &&
			    strncmp(hop[h], key, (size_t)(dot - key)) == 0)
				break;
		if (h == nhops) {
			*err = "an argument's prefix names no hop of this chain";
			return -1;
		}
		if (kv_add(&per_hop[h], dot + 1, strlen(dot + 1), in->kv[i].value,
		           strlen(in->kv[i].value), err) < 0)
			return -1;
	}
	return 0;
}

int chain_args_socks(const struct pt_kvlist *l, uint8_t user[255], size_t *ulen,
                     uint8_t pass[255], size_t *plen)
{
	char buf[2 * 255 + 1];
	size_t o = 0;

	*ulen = *plen = 0;
	for (size_t i = 0; i < l->n; i++) {
		if ((i > 0 && put_char(';', buf, sizeof(buf), &o) < 0) ||
		    put_escaped(l->kv[i].key, ";\\=", buf, sizeof(buf), &o) < 0 ||
		    put_char('=', buf, sizeof(buf), &o) < 0 ||
		    put_escaped(l->kv[i].value, ";\\", buf, sizeof(buf), &o) < 0)
			return -1;
	}
	if (o == 0)
		return 0;
	*ulen = o > 255 ? 255 : o;
	memcpy(user, buf, *ulen);
	if (o > 255) {
		*plen = o - 255;
		memcpy(pass, buf + 255, *plen);
	} else {
		pass[0] = '\0';
		*plen = 1;
	}
	return 0;
}

int chain_server_options_split(const char *value, const char *alias,
                               const char hop[][CHAIN_NAME_MAX], unsigned nhops,
                               char out[][PT_LINE_MAX], char *err, size_t errlen)
{
	/* field 0 = transport name, 1 = key, 2 = value; each unescaped */
	char f[3][PT_LINE_MAX];
	size_t len = 0, o[CHAIN_MAX_HOPS] = { 0 };
	int field = 0;

	for (unsigned h = 0; h < nhops; h++)
		out[h][0] = '\0';
	for (const char *p = value;; p++) {
		char c = *p;

		if (c == '\\') {
			if (p[1] == '\0') {
				snprintf(err, errlen, "TOR_PT_SERVER_TRANSPORT_OPTIONS ends in a backslash");
				return -1;
			}
			c = *++p;
		} else if (c == ';' || c == '\0') {
			if (field == 0 && len == 0 && c == '\0')
				return 0;
			if (field != 2) {
				snprintf(err, errlen, "malformed TOR_PT_SERVER_TRANSPORT_OPTIONS "
				         "(want transport:key=value;...)");
				return -1;
			}
			f[2][len] = '\0';
			if (strcmp(f[0], alias) == 0) {
				char *dot = strchr(f[1], '.');
				unsigned h;

				for (h = 0; dot != NULL && h < nhops; h++)
					if (strlen(hop[h]) == (size_t)(dot - f[1]) &&
					    strncmp(hop[h], f[1], (size_t)(dot - f[1])) == 0)
						break;
				if (dot == NULL || h == nhops || dot[1] == '\0') {
					snprintf(err, errlen, "ServerTransportOptions %s: option '%.40s' does "
					         "not start with a hop of the chain (want HOP.key=value)",
					         alias, f[1]);
					return -1;
				}
				if ((o[h] > 0 && put_char(';', out[h], PT_LINE_MAX, &o[h]) < 0) ||
				    put_escaped(hop[h], ":;=\\", out[h], PT_LINE_MAX, &o[h]) < 0 ||
				    put_char(':', out[h], PT_LINE_MAX, &o[h]) < 0 ||
				    put_escaped(dot + 1, ":;=\\", out[h], PT_LINE_MAX, &o[h]) < 0 ||
				    put_char('=', out[h], PT_LINE_MAX, &o[h]) < 0 ||
				    put_escaped(f[2], ":;=\\", out[h], PT_LINE_MAX, &o[h]) < 0) {
					snprintf(err, errlen, "ServerTransportOptions %s: too long", alias);
					return -1;
				}
				out[h][o[h]] = '\0';
			}
			if (c == '\0')
				return 0;
			field = 0;
			len = 0;
			continue;
		} else if ((c == ':' && field == 0) || (c == '=' && field == 1)) {
			if (len == 0) {
				snprintf(err, errlen, "TOR_PT_SERVER_TRANSPORT_OPTIONS: empty %s",
				         field == 0 ? "transport name" : "key");
				return -1;
			}
			f[field][len] = '\0';
			field++;
			len = 0;
			continue;
		}
		if (len + 1 >= PT_LINE_MAX) {
			snprintf(err, errlen, "TOR_PT_SERVER_TRANSPORT_OPTIONS: an entry is too long");
			return -1;
		}
		f[field][len++] = c;
	}
}

int chain_bindaddr_find(const char *value, const char *alias, char *out, size_t outlen)
{
	size_t al = strlen(alias);

	for (const char *p = value; *p != '\0';) {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		const char *dash = memchr(p, '-', len);

		if (dash == NULL || dash == p || dash + 1 == p + len)
			return -1;
		if ((size_t)(dash - p) == al && strncmp(p, alias, al) == 0) {
			size_t n = len - (size_t)(dash + 1 - p);

			if (n >= outlen)
				return -1;
			memcpy(out, dash + 1, n);
			out[n] = '\0';
			return 1;
		}
		if (end == NULL)
			break;
		p = end + 1;
	}
	return 0;
}

int chain_list_has(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p != '\0';) {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

		if ((len == n && strncmp(p, name, n) == 0) || (len == 1 && *p == '*'))
			return 1;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return 0;
}
