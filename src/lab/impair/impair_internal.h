/*
 * Pieces of `sctpt-lab impair` that only its own files share: the engine (the
 * shaper and delay line of both directions on a libevent timer), the
 * three relays (datagram, stream, IP-level) and the REST API.
 */
#ifndef SCTPT_IMPAIR_INTERNAL_H
#define SCTPT_IMPAIR_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <jansson.h>

#include "lab/impair/pktq.h"
#include "lab/impair/rules.h"
#include "lab/impair/settings.h"
#include "lab/impair/shaper.h"

struct event_base;

/* Monotonic clock in microseconds. */
uint64_t impair_now_us(void);

/* ---- engine.c */

struct impair_engine;

/*
 * Sends one copy of a packet that is due: 0 if the kernel took it, -1 if
 * it was lost on the way (counted as dropped_other).  sink and gen are
 * what the relay passed to impair_engine_submit(); a relay whose sink has
 * gone since (gen differs) returns -1.
 */
typedef int (*impair_emit_fn)(void *ctx, int dir, uint32_t sink, uint32_t gen,
                              const uint8_t *p, size_t n);

/*
 * The engine on base with settings s, per-direction random streams derived
 * from seed, and a delay line of at most max_pkts packets / max_bytes
 * bytes (beyond: dropped_overflow).  NULL on failure.
 */
struct impair_engine *impair_engine_new(struct event_base *base, const struct impair_settings *s,
                                        uint64_t seed, size_t max_pkts, size_t max_bytes);
/* Frees queued packets too.  NULL is fine. */
void impair_engine_free(struct impair_engine *e);
void impair_engine_set_emit(struct impair_engine *e, impair_emit_fn fn, void *ctx);
/* Called after every settings change (e.g. a blackhole lifted). */
void impair_engine_on_change(struct impair_engine *e, void (*fn)(void *arg), void *arg);

/*
 * A packet arrived in direction dir: shape it, then send or queue its
 * copies.  flow is the relay's stable key of the packet's flow (the same
 * both ways, and in every run that sees the same flows in the same
 * order), which the rules' flow toxicity hashes.
 */
void impair_engine_submit(struct impair_engine *e, int dir, uint32_t sink, uint32_t gen,
                          uint64_t flow, const uint8_t *p, size_t n);

/* The rules (change them, then call impair_engine_rules_changed()). */
struct impair_rules *impair_engine_rules(struct impair_engine *e);
void impair_engine_rules_changed(struct impair_engine *e);
/*
 * POST /reset: no rules, default settings (no impairment), the bursty
 * loss chains back in their good state.  Counters are left alone.
 */
void impair_engine_reset(struct impair_engine *e);
/*
 * Zero every counter, the rules' too.  Copies still held are carried
 * over: seen = pending = what is held, so seen + duplicated = forwarded +
 * dropped + pending holds at once.
 */
void impair_engine_zero_counters(struct impair_engine *e);

const struct impair_settings *impair_engine_settings(const struct impair_engine *e);
void impair_engine_set_settings(struct impair_engine *e, const struct impair_settings *s);
/* The shaper (random stream, link state, counters) of one direction. */
struct impair_shaper *impair_engine_shaper(struct impair_engine *e, int dir);
uint64_t impair_engine_seed(const struct impair_engine *e);
/* The counters of one direction as a JSON object (NULL on OOM). */
json_t *impair_counters_to_json(const struct impair_counters *c);

/* ---- udp.c: datagram mode */

struct impair_udp_config {
	struct sockaddr_storage listen, upstream;
	socklen_t listenlen, upstreamlen;
	unsigned max_flows;
	unsigned flow_idle_s;
};

struct impair_udp;
struct impair_udp *impair_udp_new(struct event_base *base, struct impair_engine *e,
                                  const struct impair_udp_config *cfg);
void impair_udp_free(struct impair_udp *u);
/* The address actually bound (port 0 resolved). */
void impair_udp_local(const struct impair_udp *u, struct sockaddr_storage *ss, socklen_t *len);
/* [{"id", "client", "upstream_port", "idle_ms", "c2s", "s2c", "rebinds"}, ...] */
json_t *impair_udp_flows(const struct impair_udp *u);
/*
 * Give flow id (or every flow, if id < 0) a new upstream socket, so the
 * upstream sees its packets come from a new source port (a NAT rebinding).
 * Returns a JSON array of {"id", "old_port", "new_port"} or NULL with a
 * message in err (no such flow, socket failure).
 */
json_t *impair_udp_rebind(struct impair_udp *u, long long id, char *err, size_t errlen);

/* ---- tcp.c: stream mode */

struct impair_tcp_config {
	struct sockaddr_storage listen, upstream;
	socklen_t listenlen, upstreamlen;
	unsigned max_conns;
	size_t buffer;          /* bytes held per connection and direction */
};

struct impair_tcp;
struct impair_tcp *impair_tcp_new(struct event_base *base, struct impair_engine *e,
                                  const struct impair_tcp_config *cfg);
void impair_tcp_free(struct impair_tcp *t);
void impair_tcp_local(const struct impair_tcp *t, struct sockaddr_storage *ss, socklen_t *len);
/* [{"id", "c2s_queued", "s2c_queued"}, ...] */
json_t *impair_tcp_conns(const struct impair_tcp *t);

/* ---- tun.c: IP-level mode */

#define IMPAIR_NS_MAX 64
#define IMPAIR_TUN_ADDR_MAX 64
#define IMPAIR_IFNAME_MAX 16

struct impair_tun_end {
	char ns[IMPAIR_NS_MAX];            /* name under /var/run/netns */
	char addr[IMPAIR_TUN_ADDR_MAX];    /* ADDR/PREFIX given to `ip addr add` */
};

struct impair_tun_config {
	struct impair_tun_end end[2];      /* end[0]: the c2s side, end[1]: s2c */
	char dev[IMPAIR_IFNAME_MAX];
	unsigned mtu;
};

/* Parse "NS:ADDR/PREFIX".  0, or -1 with a message in err. */
int impair_tun_parse(const char *s, struct impair_tun_end *out, char *err, size_t errlen);

struct impair_tun;
struct impair_tun *impair_tun_new(struct event_base *base, struct impair_engine *e,
                                  const struct impair_tun_config *cfg);
void impair_tun_free(struct impair_tun *t);

/* ---- api.c: REST API */

struct impair_api_ctx {
	struct impair_engine *engine;
	struct impair_udp *udp;            /* the running relay; the others NULL */
	struct impair_tcp *tcp;
	struct impair_tun *tun;
	const char *mode;                  /* "udp", "tcp" or "tun" */
	const char *token;                 /* --api-token: required bearer token, or NULL */
};

/* ---- access.c: who may call the API (pure) */

#define IMPAIR_TOKEN_MIN 16
#define IMPAIR_TOKEN_MAX 256

/* Whether a Content-Type header (NULL: none) is application/json, with parameters or not. */
int impair_access_json(const char *content_type);
/* Whether a Host header (NULL: none) names local ("ADDR:PORT", "[V6]:PORT", as reached). */
int impair_access_host(const char *host, const char *local, uint16_t port, int loopback);
/* Whether an Origin header is absent or http://HOST with HOST as impair_access_host wants. */
int impair_access_origin(const char *origin, const char *local, uint16_t port, int loopback);
/* Whether an Authorization header carries "Bearer token" (always, if token is NULL). */
int impair_access_bearer(const char *authorization, const char *token);
/* The token of an --api-token file's text (its first line).  0, or -1 with err. */
int impair_access_token_parse(const char *text, size_t n, char *out, size_t outlen,
                              char *err, size_t errlen);

struct impair_api;
/* Serve the API on addr (already checked by the caller).  NULL on failure. */
struct impair_api *impair_api_new(struct event_base *base, const struct sockaddr *addr,
                                  socklen_t len, struct impair_api_ctx *ctx);
void impair_api_free(struct impair_api *a);
/* The port actually bound. */
uint16_t impair_api_port(const struct impair_api *a);

#endif
