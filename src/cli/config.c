/*
 * Config files (-c FILE, docs/config.md): a JSON object whose keys are the
 * command's long options.  The file is turned into "--key=value" arguments
 * put before the command line's, and the command's own getopt parser reads
 * them all, so every option is supported and validated exactly as on the
 * command line.  A key the command line also gives is dropped from the
 * file's part, so the command line replaces it (lists included).
 *
 * SIGHUP re-reads the file, has the command check all of it with its own
 * parser (as at start), and only then applies what is safe to change in a
 * running process: the log level here, what the command's reload function
 * takes (the server's egress and remote-forward rules, the client's
 * forwards).  Any error keeps the running setup.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/event.h>
#include <jansson.h>

#include <arpa/inet.h>

#include "util/log.h"
#include "util/netaddr.h"
#include "util/opt.h"

#define CONFIG_MAX_BYTES (1 << 20)
#define CONFIG_MAX_ARGS  4096

/* Keys that are lists (their option may be repeated). */
static const char *const list_keys[] = { "server", "listen", "allow",
                                         "local-forward", "remote-forward", "remote-allow",
                                         "permit-listen", NULL };

/* One argument made from the file, for pointing at its origin. */
struct origin {
	const char *key;
	int line;
};

static struct {
	const char *cmd;                 /* "client", "server" */
	const struct option *opts;
	const char *path;                /* NULL: no file */
	json_t *loaded;                  /* the file as read at start */
	char **argv;                     /* the expanded vector, kept for the run */
	int nfile;                       /* argv[1..nfile] came from the file */
	struct origin *origin;           /* nfile of them */
	int cur;                         /* getopt position, -1 outside the loop */
	int cmd_verbose, cmd_quiet;      /* -v / -q counts on the command line */
	int cmd_level;                   /* the command line set -v or -q */
	const char **given;              /* long options the command line gives */
	int ngiven;
	char **keep;                     /* the command line minus -c FILE */
	int nkeep;
	cli_reload_fn reload_fn;         /* SIGHUP: the command's check-and-apply */
	void *reload_arg;
	const char *const *live_keys;    /* keys reload_fn applies at once */
} cfg = { .cur = -1 };

/* A long option by exact name, or by unique prefix as getopt allows. */
static const struct option *find_opt(const struct option *opts, const char *name, size_t len)
{
	const struct option *hit = NULL;

	for (const struct option *o = opts; o->name != NULL; o++) {
		if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
			return o;
		if (strncmp(o->name, name, len) == 0)
			hit = hit == NULL ? o : (const struct option *)-1;
	}
	return hit == (const struct option *)-1 ? NULL : hit;
}

static const struct option *opt_by_val(const struct option *opts, int val)
{
	for (const struct option *o = opts; o->name != NULL; o++)
		if (o->val == val)
			return o;
	return NULL;
}

static int is_list_key(const char *k)
{
	for (int i = 0; list_keys[i] != NULL; i++)
		if (strcmp(k, list_keys[i]) == 0)
			return 1;
	return 0;
}

/* The line where "key": first appears in text; 0 when not found (escaped). */
static int key_line(const char *text, const char *key)
{
	size_t klen = strlen(key);
	const char *p = text;

	while ((p = strchr(p, '"')) != NULL) {
		const char *q = p + 1 + klen;

		if (strncmp(p + 1, key, klen) == 0 && *q == '"') {
			q++;
			while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')
				q++;
			if (*q == ':') {
				int line = 1;

				for (const char *r = text; r < p; r++)
					line += *r == '\n';
				return line;
			}
		}
		p++;
	}
	return 0;
}

static void key_error(const char *path, const char *text, const char *key, const char *what)
{
	int line = key_line(text, key);

	if (line > 0)
		fprintf(stderr, "sctpt: %s:%d: key \"%s\": %s\n", path, line, key, what);
	else
		fprintf(stderr, "sctpt: %s: key \"%s\": %s\n", path, key, what);
}

/* Read path into a NUL-terminated buffer (caller frees).  NULL, printed. */
static char *read_file(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "sctpt: cannot open config file %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = malloc(CONFIG_MAX_BYTES + 1);
	if (buf == NULL) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
	if (ferror(f) || n > CONFIG_MAX_BYTES) {
		fprintf(stderr, "sctpt: config file %s: %s\n", path,
		        ferror(f) ? "read error" : "larger than 1 MiB");
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*lenp = n;
	return buf;
}

/*
 * Load and check path: a JSON object of known keys with the right types.
 * Returns the object (caller json_decref) or NULL, printed; *textp gets
 * the file's text (caller frees) for line numbers.
 */
static json_t *load(const char *path, char **textp)
{
	json_error_t jerr;
	const char *key;
	json_t *root, *v;
	size_t len = 0;
	char *text = read_file(path, &len);

	*textp = NULL;
	if (text == NULL)
		return NULL;
	if (memchr(text, '\0', len) != NULL) {
		fprintf(stderr, "sctpt: %s: NUL byte in the file (not a JSON text file)\n", path);
		goto fail_text;
	}
	root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		fprintf(stderr, "sctpt: %s:%d:%d: %s\n", path, jerr.line, jerr.column, jerr.text);
		goto fail_text;
	}
	if (!json_is_object(root)) {
		fprintf(stderr, "sctpt: %s: the file must hold one JSON object {...}\n", path);
		goto fail;
	}
	json_object_foreach(root, key, v) {
		const struct option *o = NULL;

		for (const struct option *p = cfg.opts; p->name != NULL; p++)
			if (strcmp(p->name, key) == 0)
				o = p;
		if (o == NULL || strcmp(key, "help") == 0 || strcmp(key, "config") == 0) {
			key_error(path, text, key, o == NULL ? "unknown key (keys are the long options "
			          "of this command)" : "not allowed in a config file");
			goto fail;
		}
		if (o->has_arg == no_argument) {
			if (o->val == 'v' || o->val == 'q') {
				if (!json_is_boolean(v) && !(json_is_integer(v) &&
				    json_integer_value(v) >= 0 && json_integer_value(v) <= 5)) {
					key_error(path, text, key, "wrong type: want true, false or a "
					          "count 0..5");
					goto fail;
				}
			} else if (!json_is_boolean(v)) {
				key_error(path, text, key, "wrong type: want true or false");
				goto fail;
			}
			continue;
		}
		if (json_is_array(v)) {
			size_t i;
			json_t *e;

			if (!is_list_key(key)) {
				key_error(path, text, key, "wrong type: a list, but this option takes "
				          "one value");
				goto fail;
			}
			json_array_foreach(v, i, e) {
				if (!json_is_string(e)) {
					key_error(path, text, key, "wrong type: want a list of strings");
					goto fail;
				}
			}
		} else if (!json_is_string(v) && !json_is_integer(v)) {
			key_error(path, text, key, is_list_key(key) ?
			          "wrong type: want a string or a list of strings" :
			          "wrong type: want a string or a whole number");
			goto fail;
		}
	}
	*textp = text;
	return root;
fail:
	json_decref(root);
fail_text:
	free(text);
	return NULL;
}

/* Append "--key" or "--key=value" to out; -1 when there are too many. */
static int push(char **out, struct origin *origin, int *n, const char *key, const char *val,
                int line)
{
	char *s;

	if (*n >= CONFIG_MAX_ARGS)
		return -1;
	if (val != NULL) {
		if (asprintf(&s, "--%s=%s", key, val) < 0)
			return -1;
	} else if (asprintf(&s, "--%s", key) < 0) {
		return -1;
	}
	origin[*n].key = key;
	origin[*n].line = line;
	out[(*n)++] = s;
	return 0;
}

/* Which long options the command line gives (names in given[]), and -c. */
static int scan_cmdline(int argc, char **argv, const char **given, int *ngiven,
                        const char **path, char **keep, int *nkeep)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct option *o = NULL;

		if (strcmp(a, "--") == 0) {
			for (; i < argc; i++)
				keep[(*nkeep)++] = argv[i];
			break;
		}
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "sctpt %s: %s needs a FILE\n", cfg.cmd, a);
				return -1;
			}
			*path = argv[++i];
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0) {
			*path = a + 9;
			continue;
		}
		if (strncmp(a, "-c", 2) == 0 && a[2] != '\0' && a[1] != '-') {
			*path = a + 2;
			continue;
		}
		keep[(*nkeep)++] = argv[i];
		if (strncasecmp(a, "sctpt:", 6) == 0 && find_opt(cfg.opts, "link", 4) != NULL &&
		    *ngiven < CONFIG_MAX_ARGS) {
			given[(*ngiven)++] = "link";     /* the client's positional LINK */
			continue;
		}
		if (a[0] == '-' && a[1] == '-' && a[2] != '\0') {
			const char *eq = strchr(a + 2, '=');

			o = find_opt(cfg.opts, a + 2, eq != NULL ? (size_t)(eq - a - 2) : strlen(a + 2));
			if (o != NULL && o->has_arg == required_argument && eq == NULL && i + 1 < argc)
				keep[(*nkeep)++] = argv[++i];
		} else if (a[0] == '-' && a[1] != '\0' && a[1] != '-') {
			/* Short options: -v, -q, -h bundled ("-vv"). */
			if (strchr(a + 1, 'c') != NULL) {
				fprintf(stderr, "sctpt %s: give -c FILE on its own, not in '%s'\n",
				        cfg.cmd, a);
				return -1;
			}
			for (const char *p = a + 1; *p != '\0'; p++) {
				const struct option *so = opt_by_val(cfg.opts, *p);

				if (*p == 'v')
					cfg.cmd_verbose++;
				if (*p == 'q')
					cfg.cmd_quiet++;
				if (so != NULL && *ngiven < CONFIG_MAX_ARGS)
					given[(*ngiven)++] = so->name;
			}
			continue;
		}
		if (o != NULL) {
			if (o->val == 'v')
				cfg.cmd_verbose++;
			if (o->val == 'q')
				cfg.cmd_quiet++;
			if (*ngiven < CONFIG_MAX_ARGS)
				given[(*ngiven)++] = o->name;
		}
	}
	cfg.cmd_level = cfg.cmd_verbose > 0 || cfg.cmd_quiet > 0;
	return 0;
}

static int was_given(const char **given, int ngiven, const char *key)
{
	for (int i = 0; i < ngiven; i++)
		if (strcmp(given[i], key) == 0)
			return 1;
	/* A link on the command line brings its own cert and paths. */
	if (strcmp(key, "cert") == 0 || strcmp(key, "server") == 0)
		return was_given(given, ngiven, "link");
	/* -v and -q set one level together: either replaces both. */
	if (strcmp(key, "verbose") == 0 || strcmp(key, "quiet") == 0)
		return cfg.cmd_level;
	return 0;
}

/*
 * The argument vector for root: argv0, the file's options as "--key=value"
 * (those the command line does not give), then the command line's own.
 * *originp gets where each file argument came from.  0, or -1 (printed).
 * Keys are pointers into root, which must outlive the vector.
 */
static int build(json_t *root, const char *text, char *argv0, char ***outp,
                 struct origin **originp, int *nfilep, int *np)
{
	char **out = calloc(CONFIG_MAX_ARGS + (size_t)cfg.nkeep + 2, sizeof(*out));
	struct origin *origin = calloc(CONFIG_MAX_ARGS + 1, sizeof(*origin));
	const char *key;
	json_t *v;
	int n = 0;

	if (out == NULL || origin == NULL)
		goto fail;
	out[n++] = argv0;
	origin[0].key = NULL;
	json_object_foreach(root, key, v) {
		int line = key_line(text, key), rc = 0;
		char num[32];

		if (was_given(cfg.given, cfg.ngiven, key))
			continue;
		if (json_is_boolean(v)) {
			if (json_is_true(v))
				rc = push(out, origin, &n, key, NULL, line);
		} else if (json_is_integer(v) && opt_by_val(cfg.opts, 'v') != NULL &&
		           (strcmp(key, "verbose") == 0 || strcmp(key, "quiet") == 0)) {
			for (json_int_t k = 0; k < json_integer_value(v) && rc == 0; k++)
				rc = push(out, origin, &n, key, NULL, line);
		} else if (json_is_integer(v)) {
			snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
			rc = push(out, origin, &n, key, num, line);
		} else if (json_is_string(v)) {
			rc = push(out, origin, &n, key, json_string_value(v), line);
		} else {
			size_t i;
			json_t *e;

			json_array_foreach(v, i, e)
				if (rc == 0)
					rc = push(out, origin, &n, key, json_string_value(e), line);
		}
		if (rc < 0) {
			fprintf(stderr, "sctpt: %s: too many options\n", cfg.path);
			goto fail;
		}
	}
	*nfilep = n - 1;
	for (int i = 0; i < cfg.nkeep; i++)
		out[n++] = cfg.keep[i];
	out[n] = NULL;
	*outp = out;
	*originp = origin;
	*np = n;
	return 0;
fail:
	if (out != NULL)
		for (int i = 1; i < n; i++)
			free(out[i]);
	free(out);
	free(origin);
	return -1;
}

int cli_config_expand(const char *cmd, const struct option *opts, int *argcp, char ***argvp)
{
	int argc = *argcp, n = 0;
	char *text = NULL;
	json_t *root = NULL;

	cfg.cmd = cmd;
	cfg.opts = opts;
	/* given[] is bounded by CONFIG_MAX_ARGS, not argc: "-vvvv" names several. */
	cfg.given = calloc(CONFIG_MAX_ARGS + 1, sizeof(*cfg.given));
	cfg.keep = calloc((size_t)argc + 1, sizeof(*cfg.keep));
	if (cfg.given == NULL || cfg.keep == NULL ||
	    scan_cmdline(argc, *argvp, cfg.given, &cfg.ngiven, &cfg.path, cfg.keep,
	                 &cfg.nkeep) < 0)
		goto fail;
	if (cfg.path == NULL)
		return 0;
	root = load(cfg.path, &text);
	if (root == NULL ||
	    build(root, text, (*argvp)[0], &cfg.argv, &cfg.origin, &cfg.nfile, &n) < 0)
		goto fail;
	/* given and keep stay for the run: a reload builds its vector from them. */
	*argcp = n;
	*argvp = cfg.argv;
	cfg.loaded = root;
	free(text);
	return 1;
fail:
	json_decref(root);
	free(text);
	return -1;
}

void cli_config_at(int optind_now)
{
	cfg.cur = optind_now;
}

void cli_config_blame(void)
{
	int i = cfg.cur - 1;

	/* "--key=value" is one element: the option just read is optind - 1. */
	if (cfg.path == NULL || cfg.cur < 0 || i < 1 || i > cfg.nfile)
		return;
	if (cfg.origin[i].line > 0)
		fprintf(stderr, "sctpt: (that is %s:%d, key \"%s\")\n", cfg.path,
		        cfg.origin[i].line, cfg.origin[i].key);
	else
		fprintf(stderr, "sctpt: (that is key \"%s\" in %s)\n", cfg.origin[i].key, cfg.path);
}

static int count_of(json_t *root, const char *key)
{
	json_t *v = json_object_get(root, key);

	if (json_is_integer(v))
		return (int)json_integer_value(v);
	return json_is_true(v);
}

static const char *level_name(enum log_level l)
{
	static const char *const names[] = { "debug", "info", "notice", "warn", "err", "none" };

	return (unsigned)l < sizeof(names) / sizeof(names[0]) ? names[l] : "?";
}

static int is_live_key(const char *key)
{
	if (strcmp(key, "verbose") == 0 || strcmp(key, "quiet") == 0)
		return 1;
	for (int i = 0; cfg.live_keys != NULL && cfg.live_keys[i] != NULL; i++)
		if (strcmp(key, cfg.live_keys[i]) == 0)
			return 1;
	return 0;
}

/*
 * Run the command's check-and-apply on the file as it is now.  The file's
 * origins replace the start's for the time of the call, so that a bad value
 * is blamed on its line and key (cli_config_blame) as at start.
 */
static int reload_apply(json_t *root, const char *text)
{
	struct origin *saved_origin = cfg.origin, *origin = NULL;
	int saved_nfile = cfg.nfile, nfile = 0, n = 0, rc;
	char **out = NULL, **owned;

	if (cfg.reload_fn == NULL)
		return 0;
	if (build(root, text, cfg.argv[0], &out, &origin, &nfile, &n) < 0)
		return -1;
	/* getopt may permute out[]: remember which strings are ours to free. */
	owned = calloc((size_t)nfile + 1, sizeof(*owned));
	if (owned == NULL) {
		rc = -1;
		goto out;
	}
	memcpy(owned, out + 1, (size_t)nfile * sizeof(*owned));
	cfg.origin = origin;
	cfg.nfile = nfile;
	rc = cfg.reload_fn(n, out, cfg.reload_arg);
	cfg.origin = saved_origin;
	cfg.nfile = saved_nfile;
	cfg.cur = -1;
out:
	for (int i = 0; i < nfile; i++)
		free(owned != NULL ? owned[i] : out[i + 1]);
	free(owned);
	free(out);
	free(origin);
	return rc;
}

static void reload(void)
{
	enum log_level before = log_get_level();
	json_t *root, *a, *b;
	char *text = NULL;
	const char *key;

	if (cfg.path == NULL) {
		log_notice("reload: no config file (-c) to reload");
		return;
	}
	log_notice("reload: reading %s", cfg.path);
	root = load(cfg.path, &text);
	if (root == NULL || reload_apply(root, text) < 0) {
		log_warn("reload: %s not reloaded (the error is above); the running "
		         "configuration stays", cfg.path);
		json_decref(root);
		free(text);
		return;
	}
	free(text);
	if (cfg.cmd_level) {
		log_notice("reload: the log level was set on the command line; it stays");
	} else {
		opt_set_verbosity(count_of(root, "verbose"), count_of(root, "quiet"));
		if (log_get_level() != before)
			log_notice("reload: log level %s -> %s", level_name(before),
			           level_name(log_get_level()));
		else
			log_notice("reload: log level unchanged (%s)", level_name(before));
	}
	/*
	 * Everything else needs a restart: say so rather than pretend.  The
	 * comparison is with the file read at start, which is what runs.
	 */
	json_object_foreach(root, key, a) {
		if (is_live_key(key) || was_given(cfg.given, cfg.ngiven, key))
			continue;
		b = json_object_get(cfg.loaded, key);
		if (b == NULL || !json_equal(a, b))
			log_notice("reload: \"%s\" changed in %s: takes effect at restart", key,
			           cfg.path);
	}
	json_object_foreach(cfg.loaded, key, a) {
		if (!is_live_key(key) && !was_given(cfg.given, cfg.ngiven, key) &&
		    json_object_get(root, key) == NULL)
			log_notice("reload: \"%s\" removed from %s: takes effect at restart", key,
			           cfg.path);
	}
	json_decref(root);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	reload();
}

int cli_config_sighup(struct event_base *base, cli_reload_fn fn, void *arg,
                      const char *const *live_keys)
{
	/* Lives for the whole run, like the exit signals' events. */
	struct event *ev = evsignal_new(base, SIGHUP, on_hup, NULL);

	cfg.reload_fn = fn;
	cfg.reload_arg = arg;
	cfg.live_keys = live_keys;

	if (ev == NULL || event_add(ev, NULL) < 0) {
		if (ev != NULL)
			event_free(ev);
		log_err("cannot handle SIGHUP");
		return -1;
	}
	return 0;
}

static const char *cidr_str(const struct netaddr_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family, c->addr, a, sizeof(a)) == NULL)
		snprintf(a, sizeof(a), "?");
	snprintf(buf, len, "%s/%d", a, c->prefix);
	return buf;
}

static int cidr_in(const struct netaddr_cidr *c, const struct netaddr_cidr *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (set[i].family == c->family && set[i].prefix == c->prefix &&
		    memcmp(set[i].addr, c->addr, sizeof(c->addr)) == 0)
			return 1;
	return 0;
}

void cli_cidr_diff(const struct netaddr_cidr *from, size_t nfrom, const struct netaddr_cidr *to,
                   size_t nto, char *buf, size_t len)
{
	char one[INET6_ADDRSTRLEN + 8];
	size_t n = 0;
	int w;

	buf[0] = '\0';
	for (int pass = 0; pass < 2; pass++) {
		const struct netaddr_cidr *a = pass == 0 ? to : from, *b = pass == 0 ? from : to;
		size_t na = pass == 0 ? nto : nfrom, nb = pass == 0 ? nfrom : nto;

		for (size_t i = 0; i < na; i++) {
			if (cidr_in(&a[i], b, nb))
				continue;
			w = snprintf(buf + n, len - n, "%s%c%s", n > 0 ? " " : "",
			             pass == 0 ? '+' : '-', cidr_str(&a[i], one, sizeof(one)));
			if (w < 0 || (size_t)w >= len - n) {
				if (len > 4)
					memcpy(buf + len - 4, "...", 4);
				return;
			}
			n += (size_t)w;
		}
	}
}
