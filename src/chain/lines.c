/*
 * What the combiner's children print on stdout (pt-spec v1), read as
 * hostile input: a child may be any binary.  Lines are classified; LOG and
 * STATUS are rewritten for tor so that they name the alias and the hop.
 */
#include "chain/chain.h"

#include <stdio.h>
#include <string.h>

/* Copy the next space-separated word of *p into out; 0, or -1 if none or too long. */
static int next_word(const char **p, char *out, size_t outlen)
{
	const char *s = *p;
	size_t n;

	while (*s == ' ')
		s++;
	n = strcspn(s, " ");
	if (n == 0 || n >= outlen)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	*p = s + n;
	return 0;
}

static int starts(const char *line, const char *word)
{
	size_t n = strlen(word);

	return strncmp(line, word, n) == 0 && (line[n] == ' ' || line[n] == '\0');
}

static void rest(const char *p, char *out, size_t outlen)
{
	while (*p == ' ')
		p++;
	snprintf(out, outlen, "%s", p);
}

int chain_line_parse(const char *line, enum chain_side side, struct chain_line *out)
{
	const char *p;
	char word[PT_LINE_MAX];
	const char *method = side == CHAIN_CLIENT ? "CMETHOD" : "SMETHOD";
	const char *method_err = side == CHAIN_CLIENT ? "CMETHOD-ERROR" : "SMETHOD-ERROR";
	const char *methods_done = side == CHAIN_CLIENT ? "CMETHODS" : "SMETHODS";

	memset(out, 0, sizeof(*out));
	for (p = line; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			return -1;
	if (starts(line, "VERSION")) {
		p = line + 7;
		if (next_word(&p, word, sizeof(word)) < 0 || strcmp(word, "1") != 0)
			return -1;
		out->kind = CHAIN_LINE_VERSION;
		return 0;
	}
	if (starts(line, "VERSION-ERROR") || starts(line, "ENV-ERROR") ||
	    starts(line, "PROXY-ERROR")) {
		out->kind = line[0] == 'V' ? CHAIN_LINE_VERSION_ERROR
		            : line[0] == 'E' ? CHAIN_LINE_ENV_ERROR : CHAIN_LINE_PROXY_ERROR;
		rest(line + strcspn(line, " "), out->message, sizeof(out->message));
		return 0;
	}
	if (strcmp(line, "PROXY DONE") == 0) {
		out->kind = CHAIN_LINE_PROXY_DONE;
		return 0;
	}
	if (starts(line, methods_done)) {
		p = line + strlen(methods_done);
		if (next_word(&p, word, sizeof(word)) < 0 || strcmp(word, "DONE") != 0)
			return -1;
		out->kind = CHAIN_LINE_METHODS_DONE;
		return 0;
	}
	if (starts(line, method_err)) {
		p = line + strlen(method_err);
		if (next_word(&p, out->name, sizeof(out->name)) < 0)
			return -1;
		out->kind = CHAIN_LINE_METHOD_ERROR;
		rest(p, out->message, sizeof(out->message));
		return 0;
	}
	if (starts(line, method)) {
		p = line + strlen(method);
		if (next_word(&p, out->name, sizeof(out->name)) < 0)
			return -1;
		if (side == CHAIN_CLIENT) {
			if (next_word(&p, word, sizeof(word)) < 0 || strcmp(word, "socks5") != 0)
				return -1;   /* socks4 children are not supported */
		}
		if (next_word(&p, out->addr, sizeof(out->addr)) < 0)
			return -1;
		while (next_word(&p, word, sizeof(word)) == 0)
			if (side == CHAIN_SERVER && strncmp(word, "ARGS:", 5) == 0)
				snprintf(out->args, sizeof(out->args), "%s", word + 5);
		out->kind = CHAIN_LINE_METHOD;
		return 0;
	}
	if (starts(line, "LOG"))
		out->kind = CHAIN_LINE_LOG;
	else if (starts(line, "STATUS"))
		out->kind = CHAIN_LINE_STATUS;
	return 0;
}

int chain_line_relay(const char *line, const char *alias, unsigned hop, const char *name,
                     char *out, size_t outlen)
{
	const char *m, *after;
	int n;

	for (const char *p = line; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20)
			return -1;
	if (starts(line, "LOG")) {
		m = strstr(line, " MESSAGE=\"");
		if (m == NULL)
			return -1;
		after = m + 10;
		n = snprintf(out, outlen, "%.*s[%s hop %u %s] %s", (int)(after - line), line,
		             alias, hop, name, after);
	} else if (starts(line, "STATUS")) {
		m = strstr(line, " TRANSPORT=");
		if (m == NULL)
			return -1;
		after = m + 11 + strcspn(m + 11, " ");
		n = snprintf(out, outlen, "%.*s TRANSPORT=%s HOP=%u CHILD=%s%s", (int)(m - line),
		             line, alias, hop, name, after);
	} else {
		return -1;
	}
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}
