/*
 * The combiner's config file: fog's torrc-like lines.  See chain.h.
 * Every refusal names the line and says exactly what is wrong, because
 * the operator reads it in tor's log as a CMETHOD-ERROR/SMETHOD-ERROR.
 */
#include "chain/chain.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_WORDS (3 + CHAIN_MAX_ARGV + 1)

static int cfg_error(char *err, size_t errlen, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int cfg_error(char *err, size_t errlen, unsigned line, const char *fmt, ...)
{
	char msg[CHAIN_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(err, errlen, "line %u: %s", line, msg);
	else
		snprintf(err, errlen, "%s", msg);
	return -1;
}

int chain_is_identifier(const char *s)
{
	size_t n = 0;

	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return 0;
	for (; *s != '\0'; s++, n++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return n < CHAIN_NAME_MAX;
}

/* A word for an error message: printable, bounded. */
static const char *shown(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	for (; *s != '\0' && o + 4 < len; s++)
		buf[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	if (*s != '\0')
		buf[o++] = '.', buf[o++] = '.', buf[o++] = '.';
	buf[o] = '\0';
	return buf;
}

const struct chain_alias *chain_config_alias(const struct chain_config *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->naliases; i++)
		if (strcmp(cfg->alias[i].name, name) == 0)
			return &cfg->alias[i];
	return NULL;
}

const struct chain_plugin *chain_config_plugin(const struct chain_config *cfg,
                                               enum chain_side side, const char *name)
{
	for (unsigned i = 0; i < cfg->nplugins; i++) {
		const struct chain_plugin *p = &cfg->plugin[i];

		if (p->side != side)
			continue;
		for (unsigned j = 0; j < p->nnames; j++)
			if (strcmp(p->names[j], name) == 0)
				return p;
	}
	return NULL;
}

/* Split line in place into words at spaces and tabs. */
static int split_words(char *line, char **w, unsigned max, unsigned *n)
{
	*n = 0;
	for (char *p = line; *p != '\0';) {
		while (*p == ' ' || *p == '\t')
			*p++ = '\0';
		if (*p == '\0')
			break;
		if (*n >= max)
			return -1;
		w[(*n)++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
	}
	return 0;
}

static int parse_plugin(struct chain_config *cfg, enum chain_side side, char **w, unsigned n,
                        unsigned line, char *err, size_t errlen)
{
	struct chain_plugin *p;
	char b[80], names[CHAIN_ARG_MAX];
	char *save = NULL;

	if (n < 4 || strcmp(w[2], "exec") != 0)
		return cfg_error(err, errlen, line, "%s: want '%s NAME exec PATH [ARGS...]'", w[0], w[0]);
	if (cfg->nplugins >= CHAIN_MAX_PLUGINS)
		return cfg_error(err, errlen, line, "too many TransportPlugin lines (at most %d)",
		                 CHAIN_MAX_PLUGINS);
	p = &cfg->plugin[cfg->nplugins];
	memset(p, 0, sizeof(*p));
	p->side = side;
	p->line = line;
	if (strlen(w[1]) >= sizeof(names))
		return cfg_error(err, errlen, line, "%s: transport list too long", w[0]);
	strcpy(names, w[1]);
	for (char *t = strtok_r(names, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		if (!chain_is_identifier(t))
			return cfg_error(err, errlen, line, "%s: transport name '%s' is not a C "
			                 "identifier", w[0], shown(t, b, sizeof(b)));
		if (chain_config_plugin(cfg, side, t) != NULL)
			return cfg_error(err, errlen, line, "%s: transport '%s' is already defined",
			                 w[0], t);
		for (unsigned j = 0; j < p->nnames; j++)
			if (strcmp(p->names[j], t) == 0)
				return cfg_error(err, errlen, line, "%s: transport '%s' is listed twice",
				                 w[0], t);
		if (p->nnames >= CHAIN_MAX_HOPS)
			return cfg_error(err, errlen, line, "%s: too many transports on one line", w[0]);
		strcpy(p->names[p->nnames++], t);
	}
	if (p->nnames == 0 || w[1][0] == ',' || w[1][strlen(w[1]) - 1] == ',' ||
	    strstr(w[1], ",,") != NULL)
		return cfg_error(err, errlen, line, "%s: bad transport list '%s'", w[0],
		                 shown(w[1], b, sizeof(b)));
	if (strlen(w[3]) >= sizeof(p->path))
		return cfg_error(err, errlen, line, "%s: path too long", w[0]);
	if (w[3][0] != '/')
		return cfg_error(err, errlen, line, "%s: '%s' is not an absolute path", w[0],
		                 shown(w[3], b, sizeof(b)));
	strcpy(p->path, w[3]);
	for (unsigned i = 4; i < n; i++) {
		if (strlen(w[i]) >= CHAIN_ARG_MAX)
			return cfg_error(err, errlen, line, "%s: argument %u too long", w[0], i - 3);
		strcpy(p->argv[p->argc++], w[i]);
	}
	cfg->nplugins++;
	return 0;
}

static int parse_alias(struct chain_config *cfg, char **w, unsigned n, unsigned line,
                       char *err, size_t errlen)
{
	struct chain_alias *a;
	char b[80];
	const char *p;

	if (n != 3)
		return cfg_error(err, errlen, line, "Alias: want 'Alias NAME A|B[|C...]'");
	if (!chain_is_identifier(w[1]))
		return cfg_error(err, errlen, line, "Alias: name '%s' is not a C identifier "
		                 "(tor needs letters, digits and '_', not starting with a digit)",
		                 shown(w[1], b, sizeof(b)));
	if (chain_config_alias(cfg, w[1]) != NULL)
		return cfg_error(err, errlen, line, "Alias %s is defined twice", w[1]);
	if (cfg->naliases >= CHAIN_MAX_ALIASES)
		return cfg_error(err, errlen, line, "too many aliases (at most %d)", CHAIN_MAX_ALIASES);
	a = &cfg->alias[cfg->naliases];
	memset(a, 0, sizeof(*a));
	strcpy(a->name, w[1]);
	a->line = line;
	p = w[2];
	for (;;) {
		const char *bar = strchr(p, '|');
		size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);
		char hop[CHAIN_NAME_MAX];

		if (len == 0)
			return cfg_error(err, errlen, line, "Alias %s: empty hop in '%s'", a->name,
			                 shown(w[2], b, sizeof(b)));
		if (len >= sizeof(hop))
			return cfg_error(err, errlen, line, "Alias %s: hop name too long", a->name);
		memcpy(hop, p, len);
		hop[len] = '\0';
		if (!chain_is_identifier(hop))
			return cfg_error(err, errlen, line, "Alias %s: hop '%s' is not a C identifier",
			                 a->name, shown(hop, b, sizeof(b)));
		for (unsigned j = 0; j < a->nhops; j++)
			if (strcmp(a->hop[j], hop) == 0)
				return cfg_error(err, errlen, line, "Alias %s: transport '%s' appears "
				                 "twice (a chain may not loop through a transport)",
				                 a->name, hop);
		if (a->nhops >= CHAIN_MAX_HOPS)
			return cfg_error(err, errlen, line, "Alias %s: more than %d hops", a->name,
			                 CHAIN_MAX_HOPS);
		strcpy(a->hop[a->nhops++], hop);
		if (bar == NULL)
			break;
		p = bar + 1;
	}
	if (a->nhops < 2)
		return cfg_error(err, errlen, line, "Alias %s: a chain needs at least two "
		                 "transports (A|B)", a->name);
	cfg->naliases++;
	return 0;
}

/* After the whole file: aliases refer to known transports of this side. */
static int check_aliases(const struct chain_config *cfg, enum chain_side side,
                         chain_check_exec_fn check_exec, char *err, size_t errlen)
{
	const char *kw = side == CHAIN_CLIENT ? "ClientTransportPlugin" : "ServerTransportPlugin";

	if (cfg->naliases == 0)
		return cfg_error(err, errlen, 0, "no Alias line: nothing to offer tor");
	for (unsigned i = 0; i < cfg->naliases; i++) {
		const struct chain_alias *a = &cfg->alias[i];

		for (unsigned h = 0; h < a->nhops; h++) {
			const struct chain_plugin *p;
			char why[128] = "";

			if (chain_config_alias(cfg, a->hop[h]) != NULL)
				return cfg_error(err, errlen, a->line, "Alias %s: hop '%s' is an alias; "
				                 "aliases cannot contain aliases (a loop)", a->name,
				                 a->hop[h]);
			p = chain_config_plugin(cfg, side, a->hop[h]);
			if (p == NULL)
				return cfg_error(err, errlen, a->line, "Alias %s: unknown transport '%s' "
				                 "(no %s line for it)", a->name, a->hop[h], kw);
			if (check_exec != NULL && check_exec(p->path, why, sizeof(why)) < 0)
				return cfg_error(err, errlen, p->line, "transport %s: cannot run %s: %s",
				                 a->hop[h], p->path, why);
		}
	}
	return 0;
}

int chain_config_parse(const char *text, size_t len, enum chain_side side,
                       chain_check_exec_fn check_exec, struct chain_config *cfg,
                       char *err, size_t errlen)
{
	char buf[1024];
	unsigned line = 0;
	size_t pos = 0;

	memset(cfg, 0, sizeof(*cfg));
	if (len > CHAIN_CONFIG_MAX)
		return cfg_error(err, errlen, 0, "config file larger than %d bytes", CHAIN_CONFIG_MAX);
	if (memchr(text, '\0', len) != NULL)
		return cfg_error(err, errlen, 0, "config file has a NUL byte");
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t ll = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
		char *w[MAX_WORDS], *hash;
		unsigned n;
		int r;

		line++;
		if (ll >= sizeof(buf))
			return cfg_error(err, errlen, line, "line longer than %zu bytes", sizeof(buf) - 1);
		memcpy(buf, text + pos, ll);
		buf[ll] = '\0';
		pos += ll + (nl != NULL);
		if (ll > 0 && buf[ll - 1] == '\r')
			buf[ll - 1] = '\0';
		if ((hash = strchr(buf, '#')) != NULL)
			*hash = '\0';
		for (char *p = buf; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 && *p != '\t')
				return cfg_error(err, errlen, line, "control character in the line");
		if (split_words(buf, w, MAX_WORDS, &n) < 0)
			return cfg_error(err, errlen, line, "too many words (at most %d arguments "
			                 "after the binary)", CHAIN_MAX_ARGV);
		if (n == 0)
			continue;
		if (strcmp(w[0], "ClientTransportPlugin") == 0)
			r = parse_plugin(cfg, CHAIN_CLIENT, w, n, line, err, errlen);
		else if (strcmp(w[0], "ServerTransportPlugin") == 0)
			r = parse_plugin(cfg, CHAIN_SERVER, w, n, line, err, errlen);
		else if (strcmp(w[0], "Alias") == 0)
			r = parse_alias(cfg, w, n, line, err, errlen);
		else {
			char b[80];

			r = cfg_error(err, errlen, line, "unknown keyword '%s' (want "
			              "ClientTransportPlugin, ServerTransportPlugin or Alias)",
			              shown(w[0], b, sizeof(b)));
		}
		if (r < 0)
			return -1;
	}
	return check_aliases(cfg, side, check_exec, err, errlen);
}
