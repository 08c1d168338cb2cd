/*
 * The pluggable-transport combiner (`sctpt chain`): its pure parts.
 *
 * A chain stacks transports: in "obfs4|sctp" tor's bytes are obfs4-encoded
 * and those bytes travel inside sctp.  The left-most hop is nearest tor,
 * the right-most (outermost) one faces the network.  Here: the config
 * file, the per-hop namespacing of bridge arguments (name.key=value), the
 * table that maps loopback source addresses back to real client
 * addresses, an Extended ORPort *server* (children talk to us as if we
 * were tor) and the rewriting of children's stdout lines.  No I/O: all of
 * it is unit-tested and fuzzed; src/cli/chain*.c does the processes and
 * sockets.
 */
#ifndef SCTPT_CHAIN_CHAIN_H
#define SCTPT_CHAIN_CHAIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "pt/extor.h"
#include "pt/pt.h"

#define CHAIN_NAME_MAX 64          /* transport or alias name, with the NUL */
#define CHAIN_MAX_PLUGINS 16       /* ...TransportPlugin lines */
#define CHAIN_MAX_ALIASES 16
#define CHAIN_MAX_HOPS 8
#define CHAIN_MAX_ARGV 16          /* arguments after the binary */
#define CHAIN_ARG_MAX 256          /* one argument, with the NUL */
#define CHAIN_CONFIG_MAX 65536     /* bytes of config file */
#define CHAIN_ERR_MAX 256

enum chain_side {
	CHAIN_CLIENT = 0,
	CHAIN_SERVER = 1,
};

/* One ClientTransportPlugin / ServerTransportPlugin line. */
struct chain_plugin {
	enum chain_side side;
	char names[CHAIN_MAX_HOPS][CHAIN_NAME_MAX];   /* "a,b exec ..." serves a and b */
	unsigned nnames;
	char path[PT_PATH_MAX];
	char argv[CHAIN_MAX_ARGV][CHAIN_ARG_MAX];
	unsigned argc;
	unsigned line;
};

struct chain_alias {
	char name[CHAIN_NAME_MAX];
	char hop[CHAIN_MAX_HOPS][CHAIN_NAME_MAX];   /* hop[0] is nearest tor */
	unsigned nhops;
	unsigned line;
};

struct chain_config {
	struct chain_plugin plugin[CHAIN_MAX_PLUGINS];
	unsigned nplugins;
	struct chain_alias alias[CHAIN_MAX_ALIASES];
	unsigned naliases;
};

/*
 * Whether path is a usable binary: 0, or -1 with why filled in ("no such
 * file", "not executable").  Injected so that the parser stays pure.
 */
typedef int (*chain_check_exec_fn)(const char *path, char *why, size_t whylen);

/*
 * Parse a config file's text (len bytes, NULs refused).  Lines:
 *   ClientTransportPlugin NAME[,NAME...] exec PATH [ARGS...]
 *   ServerTransportPlugin NAME[,NAME...] exec PATH [ARGS...]
 *   Alias NAME A|B[|C...]
 * '#' starts a comment.  Every alias must be complete for the side asked
 * (its hops known, each at most once, at least two), and every binary
 * check_exec accepts (check_exec may be NULL: no check).  0, or -1 with
 * err set to one line ("line 4: ...").
 */
int chain_config_parse(const char *text, size_t len, enum chain_side side,
                       chain_check_exec_fn check_exec, struct chain_config *cfg,
                       char *err, size_t errlen);

const struct chain_alias *chain_config_alias(const struct chain_config *cfg, const char *name);
/* The plugin that serves name on side, or NULL. */
const struct chain_plugin *chain_config_plugin(const struct chain_config *cfg,
                                               enum chain_side side, const char *name);

/* A C identifier of at most CHAIN_NAME_MAX - 1 bytes (what tor takes as a name). */
int chain_is_identifier(const char *s);

/* ---------- arguments ---------- */

/*
 * Parse SMETHOD "ARGS:" text (k=v,k=v with '\' escaping ',', '=' and '\')
 * into out.  0, or -1 with *err a static reason.
 */
int chain_smethod_args_parse(const char *s, struct pt_kvlist *out, const char **err);

/*
 * Combine the hops' server arguments into one list, each key prefixed by
 * its hop's name and a dot ("obfs4.cert").  0, or -1 (too many, too long).
 */
int chain_args_combine(const char hop[][CHAIN_NAME_MAX], const struct pt_kvlist *per_hop,
                       unsigned nhops, struct pt_kvlist *out, const char **err);

/* A list as SMETHOD ARGS text (k=v,k=v, escaped).  0, or -1 if it does not fit. */
int chain_args_format_smethod(const struct pt_kvlist *l, char *out, size_t outlen);

/*
 * A list as bridge-line words (k=v k=v).  A bridge line has no escaping:
 * a value with a space or control byte cannot be written (-1).
 */
int chain_args_format_bridge(const struct pt_kvlist *l, char *out, size_t outlen);

/*
 * Split tor's per-bridge arguments (already unescaped) by hop: "obfs4.cert"
 * goes to hop obfs4 as "cert".  A key without a known hop prefix is an
 * error (-1, *err static).
 */
int chain_args_split(const struct pt_kvlist *in, const char hop[][CHAIN_NAME_MAX],
                     unsigned nhops, struct pt_kvlist *per_hop, const char **err);

/*
 * One hop's arguments as tor would send them over SOCKS5: k=v;k=v with ';'
 * and '\' escaped (and '=' in keys), cut into username (up to 255 bytes)
 * and password (the rest, up to 255; a single NUL byte when there is no
 * rest, since a SOCKS5 password may not be empty).  An empty list gives
 * *ulen 0.  0, or -1 if it needs more than 510 bytes.
 */
int chain_args_socks(const struct pt_kvlist *l, uint8_t user[255], size_t *ulen,
                     uint8_t pass[255], size_t *plen);

/*
 * TOR_PT_SERVER_TRANSPORT_OPTIONS: take alias's entries ("alias:hop.k=v")
 * and write, for each hop, the variable its child gets ("hop:k=v;...",
 * escaped).  Other transports' entries are skipped.  0, or -1 with err.
 */
int chain_server_options_split(const char *value, const char *alias,
                               const char hop[][CHAIN_NAME_MAX], unsigned nhops,
                               char out[][PT_LINE_MAX], char *err, size_t errlen);

/*
 * TOR_PT_SERVER_BINDADDR ("name-addr:port,..."): alias's address into
 * out (the text after the dash).  1 found, 0 not there, -1 malformed.
 */
int chain_bindaddr_find(const char *value, const char *alias, char *out, size_t outlen);

/* Whether a comma list (TOR_PT_*_TRANSPORTS) names name, or is "*". */
int chain_list_has(const char *list, const char *name);

/* ---------- address map ---------- */

#define CHAIN_ADDRMAP_TTL_MS 60000

struct chain_addrmap_entry {
	struct sockaddr_storage key;     /* loopback source we connected from */
	char real[64];                   /* "IP:PORT" of the real client */
	uint64_t added_ms;
	uint64_t seq;
	int used;
};

struct chain_addrmap {
	struct chain_addrmap_entry *e;
	size_t cap, n;
	uint64_t next_seq;
	uint64_t ttl_ms;
};

/* A table of cap entries (malloc'ed).  0 or -1. */
int chain_addrmap_init(struct chain_addrmap *m, size_t cap, uint64_t ttl_ms);
void chain_addrmap_free(struct chain_addrmap *m);
/* Record key -> real; a key already there is replaced.  0, or -1 if full. */
int chain_addrmap_put(struct chain_addrmap *m, const struct sockaddr *key, const char *real,
                      uint64_t now_ms);
/*
 * Take the entry for key (USERADDR text a child sent, "IP:PORT"): copy its
 * real address to out and remove it.  1 found, 0 not.
 */
int chain_addrmap_take(struct chain_addrmap *m, const char *useraddr, char *out,
                       size_t outlen, uint64_t now_ms);
/* Take the oldest entry (for a child without Extended ORPort).  1 or 0. */
int chain_addrmap_take_oldest(struct chain_addrmap *m, char *out, size_t outlen,
                              uint64_t now_ms);
/* Forget key (its connection failed before the child reported it). */
void chain_addrmap_remove(struct chain_addrmap *m, const struct sockaddr *key);
/* Drop expired entries; returns how many. */
size_t chain_addrmap_expire(struct chain_addrmap *m, uint64_t now_ms);

/* ---------- Extended ORPort server ---------- */

enum extor_srv_phase {
	EXTOR_SRV_AUTH_TYPE = 0,
	EXTOR_SRV_CLIENT_NONCE,
	EXTOR_SRV_CLIENT_HASH,
	EXTOR_SRV_COMMANDS,
	EXTOR_SRV_DONE,
	EXTOR_SRV_FAILED,
};

struct extor_server {
	enum extor_srv_phase phase;
	uint8_t cookie[EXTOR_COOKIE_LEN];
	uint8_t server_nonce[EXTOR_NONCE_LEN];
	uint8_t client_nonce[EXTOR_NONCE_LEN];
	char useraddr[64];
	char transport[CHAIN_NAME_MAX];
	unsigned commands;
	const char *error;
};

/* The greeting to send first (auth types: SAFE_COOKIE, end): 2 bytes. */
#define EXTOR_SRV_GREETING_LEN 2
void extor_server_init(struct extor_server *st, const uint8_t cookie[EXTOR_COOKIE_LEN],
                       const uint8_t nonce[EXTOR_NONCE_LEN], uint8_t greeting[2]);

/*
 * Feed bytes from the child.  Returns EXTOR_NEED_MORE, EXTOR_OKAY (DONE
 * seen: useraddr/transport hold what the child said; the caller answers
 * with extor_command(EXTOR_REPLY_OKAY or _DENY)) or EXTOR_ERROR (error
 * set; close).  out gets at most EXTOR_OUT_MAX bytes to send.
 */
int extor_server_step(struct extor_server *st, const uint8_t *in, size_t n,
                      size_t *used, uint8_t *out, size_t *outlen);

/* ---------- children's stdout lines ---------- */

enum chain_line_kind {
	CHAIN_LINE_OTHER = 0,
	CHAIN_LINE_VERSION,          /* VERSION 1 */
	CHAIN_LINE_VERSION_ERROR,
	CHAIN_LINE_ENV_ERROR,
	CHAIN_LINE_METHOD,           /* CMETHOD / SMETHOD for our name */
	CHAIN_LINE_METHOD_ERROR,
	CHAIN_LINE_METHODS_DONE,
	CHAIN_LINE_PROXY_DONE,
	CHAIN_LINE_PROXY_ERROR,
	CHAIN_LINE_LOG,
	CHAIN_LINE_STATUS,
};

struct chain_line {
	enum chain_line_kind kind;
	char name[CHAIN_NAME_MAX];          /* METHOD, METHOD_ERROR: the transport */
	char addr[PT_PATH_MAX / 8];         /* METHOD: ADDR:PORT */
	char args[PT_LINE_MAX];             /* SMETHOD: the ARGS: text, or empty */
	char message[PT_LINE_MAX];          /* *_ERROR: the rest of the line */
};

/*
 * Classify one line (without its newline) a child printed; side says
 * whether CMETHOD or SMETHOD lines are expected.  0, or -1 if the line is
 * malformed (a METHOD line without address, a socks4 CMETHOD...).
 */
int chain_line_parse(const char *line, enum chain_side side, struct chain_line *out);

/*
 * Rewrite a child's LOG or STATUS line for tor: LOG gets "[alias hop N
 * name] " at the start of its MESSAGE; STATUS gets TRANSPORT=alias HOP=N
 * instead of the child's TRANSPORT=.  0, or -1 if the line is not one of
 * those or is malformed (it is then dropped).
 */
int chain_line_relay(const char *line, const char *alias, unsigned hop, const char *name,
                     char *out, size_t outlen);

#endif
