/*
 * `sctpt chain`, the pluggable-transport combiner, shared between its
 * files (cli/ only): chain.c (entry, children, lifecycle), chain_client.c
 * (tor's SOCKS side), chain_server.c (the bridge side: Extended ORPort
 * towards children and tor) and chain_relay.c (byte splicing and the
 * SOCKS5 client that talks to children).  The pure parts are in
 * src/chain/ (config, arguments, address map, Extended ORPort server).
 */
#ifndef SCTPT_CLI_CHAIN_INTERNAL_H
#define SCTPT_CLI_CHAIN_INTERNAL_H

#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "chain/chain.h"
#include "pt/pt.h"

struct event_base;
struct event;
struct bufferevent;
struct evconnlistener;
struct front;

#define CHAIN_BRIDGELINE_FILE "sctpt_chain_bridgelines.txt"
#define CHAIN_COOKIE_FILE "sctpt_chain_extor_cookie"
#define CHAIN_START_TIMEOUT_S 30
#define CHAIN_BACKOFF_MAX_S 60

enum hop_state {
	HOP_STARTING = 0,     /* launched, no METHOD line yet */
	HOP_READY,
	HOP_FAILED,           /* refused at start: the alias is not offered */
	HOP_WAITING,          /* died; restart scheduled */
};

struct chain_rt;
struct alias_rt;

struct hop_rt {
	struct alias_rt *ar;
	unsigned idx;
	const char *name;
	const struct chain_plugin *plugin;
	enum hop_state state;
	pid_t pid;
	int stdin_fd;
	struct bufferevent *out;          /* the child's stdout */
	char state_dir[PT_PATH_MAX + 192];
	char error[512];
	int done_seen;                    /* METHODS DONE */
	struct sockaddr_storage addr;     /* CMETHOD SOCKS / SMETHOD listen address */
	socklen_t addrlen;
	char args[PT_LINE_MAX];           /* SMETHOD ARGS, unparsed */
	uint64_t started_ms;
	unsigned restarts, backoff_s;
	struct event *restart_ev;
	struct event *ready_ev;           /* a restarted child must be ready in time */
	unsigned log_tokens;              /* children's LOG lines per second */
	uint64_t log_window_ms;
	unsigned log_dropped;

	/* Server. */
	char options[PT_LINE_MAX];        /* its TOR_PT_SERVER_TRANSPORT_OPTIONS */
	char bindaddr[CHAIN_NAME_MAX + 100];               /* what it binds */
	struct evconnlistener *extor_lis, *or_lis;
	struct sockaddr_storage extor_addr, or_addr;
	struct chain_addrmap map;         /* sources we connect to it from */
};

struct alias_rt {
	struct chain_rt *rt;
	const struct chain_alias *a;
	unsigned idx;
	int reported;                     /* METHOD / METHOD-ERROR sent to tor */
	int offered;
	struct hop_rt hop[CHAIN_MAX_HOPS];

	/* Client. */
	struct front *front;

	/* Server. */
	char public_addr[96];
};

struct chain_rt {
	struct event_base *base;
	enum chain_side side;
	struct pt_env env;                /* general TOR_PT_* (state dir, ports...) */
	const char *config_path;
	struct chain_config cfg;
	struct alias_rt alias[CHAIN_MAX_ALIASES];
	unsigned naliases;
	int all_reported;
	struct event *start_timer, *sigchld_ev, *stdin_ev, *parent_ev;
	struct event *stop_timer;
	int stopping, stop_stage;
	pid_t ppid;
	FILE *logf;
	unsigned conns;                   /* relayed connections, for the log */

	/* Server. */
	char cookie_path[PT_PATH_MAX + 64];
	uint8_t cookie[EXTOR_COOKIE_LEN];
	char tor_cookie_file[PT_PATH_MAX];
	int tor_extor;
	struct sockaddr_storage tor_addr;
	socklen_t tor_addrlen;
	uint16_t next_src;                /* rotates 127.0.x.y source addresses */
};

/* One protocol line to tor (managed.c's writer, shared). */
void pt_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define chain_line(...) pt_line(__VA_ARGS__)

/* chain.c */
int chain_hop_usable(const struct hop_rt *h);
void chain_alias_report(struct alias_rt *ar);

/* chain_client.c */
int chain_client_alias_start(struct alias_rt *ar, char *err, size_t errlen);
void chain_client_alias_stop(struct alias_rt *ar, int free_it);

/* chain_server.c */
int chain_server_prepare(struct chain_rt *rt, char *err, size_t errlen);
int chain_server_alias_prepare(struct alias_rt *ar, char *err, size_t errlen);
void chain_server_alias_offer(struct alias_rt *ar);
void chain_server_alias_stop(struct alias_rt *ar);

/* chain_relay.c: splice two connected bufferevents until either side ends. */
void relay_splice(struct bufferevent *a, struct bufferevent *b, int a_budget, int b_budget);
unsigned relay_active(void);

/* A SOCKS5 CONNECT through a child: done(arg, bev or NULL, why). */
typedef void (*socks_done_fn)(void *arg, struct bufferevent *bev, const char *why);
int socks_connect(struct event_base *base, const struct sockaddr *proxy, socklen_t plen,
                  const uint8_t *user, size_t ulen, const uint8_t *pass, size_t plen2,
                  const struct sockaddr *dest, socks_done_fn done, void *arg);

#endif
