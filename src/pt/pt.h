/*
 * Tor pluggable-transport (pt-spec v1) managed mode: the pure parts.
 * Environment parsing, per-bridge argument parsing as tor writes it, and
 * the escaping of the lines we print on stdout.  No I/O here, so every
 * path is unit-testable and fuzzable; src/cli/managed.c does the rest.
 */
#ifndef SCTPT_PT_PT_H
#define SCTPT_PT_PT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PT_TRANSPORT "sctp"     /* our method name towards tor */
#define PT_PATH_MAX 1024
#define PT_MAX_KV 16
#define PT_KEY_MAX 32           /* including the NUL */
#define PT_VALUE_MAX 512        /* including the NUL */
#define PT_LINE_MAX 2048        /* longest stdout line we produce */

struct pt_kv {
	char key[PT_KEY_MAX];
	char value[PT_VALUE_MAX];
};

struct pt_kvlist {
	struct pt_kv kv[PT_MAX_KV];
	size_t n;
};

/* The value of key, or NULL. */
const char *pt_kv_get(const struct pt_kvlist *l, const char *key);

struct pt_env {
	int client;                 /* TOR_PT_CLIENT_TRANSPORTS names us (or *) */
	int server;                 /* TOR_PT_SERVER_TRANSPORTS names us (or *) */
	int client_listed;          /* the variable was set (possibly without us) */
	int server_listed;
	char state_dir[PT_PATH_MAX];
	int exit_on_stdin_close;

	/* Client. */
	int has_proxy;
	char proxy[PT_PATH_MAX];    /* TOR_PT_PROXY, unparsed */
	int has_bind_v4, has_bind_v6;
	struct sockaddr_storage bind_v4, bind_v6;   /* outbound, port 0 */

	/* Server. */
	int has_bindaddr;
	struct sockaddr_storage bindaddr;
	socklen_t bindaddr_len;
	int has_orport, has_extorport;
	struct sockaddr_storage orport, extorport;
	socklen_t orport_len, extorport_len;
	char cookie_file[PT_PATH_MAX];
	struct pt_kvlist options;   /* ours from TOR_PT_SERVER_TRANSPORT_OPTIONS */
};

enum pt_env_result {
	PT_ENV_OK = 0,
	PT_ENV_ERROR = -1,          /* print "ENV-ERROR <err>" */
	PT_VERSION_ERROR = -2,      /* print "VERSION-ERROR no-version" */
};

/*
 * Parse the TOR_PT_* environment through get(name) (getenv in real life).
 * On failure err says what is wrong, in words fit for an ENV-ERROR line.
 */
int pt_env_parse(const char *(*get)(const char *name, void *arg), void *arg,
                 struct pt_env *env, char *err, size_t errlen);

/*
 * Per-bridge arguments: "k=v;k=v" with ';' and '\' escaped by a backslash
 * (tor's format for SOCKS credentials).  Keys must be non-empty and
 * unique.  0, or -1 with *err set to a static reason.
 */
int pt_args_parse(const uint8_t *s, size_t n, struct pt_kvlist *out, const char **err);

/*
 * Reassemble the argument string tor split over SOCKS5 credentials: the
 * username, continued in the password when it is exactly 255 bytes; a
 * password of one NUL byte is tor's filler.  out gets at most outlen - 1
 * bytes and a NUL; returns the length, or -1 if it does not fit.
 */
int pt_args_join(const uint8_t *user, size_t ulen, const uint8_t *pass, size_t plen,
                 uint8_t *out, size_t outlen);

/*
 * Escape a value for SMETHOD "ARGS:k=v,k=v": backslash before '\', '=' and
 * ','.  Returns 0, or -1 if out is too small.
 */
int pt_escape_smethod_arg(const char *in, char *out, size_t outlen);

/*
 * Quote s as a C string for LOG and STATUS values ("..." with \\, \", \n,
 * \r, \t and \ooo for other control and non-ASCII bytes).  Truncates to fit;
 * returns out.
 */
char *pt_quote(const char *s, char *out, size_t outlen);

/* Parse "IP:PORT" / "[V6]:PORT" (numeric only) into ss.  0 or -1. */
int pt_parse_addr(const char *s, int allow_port0, struct sockaddr_storage *ss,
                  socklen_t *len);

#endif
