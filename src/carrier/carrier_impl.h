/*
 * What every carrier struct starts with, so carrier.h's functions can
 * dispatch to the UDP or TCP implementation.  Private to src/carrier.
 */
#ifndef SCTPT_CARRIER_IMPL_H
#define SCTPT_CARRIER_IMPL_H

#include "carrier/carrier.h"
#include "carrier/proxy.h"

struct bufferevent;
struct event;

enum carrier_kind { CARRIER_KIND_UDP = 1, CARRIER_KIND_TCP };

struct carrier_hdr {
	enum carrier_kind kind;
	carrier_down_cb down_cb;
	void *down_arg;
};

/* tcp.c */
int tcp_carrier_send(struct carrier *c, const struct sockaddr *to, socklen_t tolen,
                     const uint8_t *buf, size_t len);
int tcp_carrier_local_addr(const struct carrier *c, struct sockaddr_storage *ss,
                           socklen_t *len);
void tcp_carrier_get_stats(const struct carrier *c, struct carrier_stats *st);
void tcp_carrier_drop_peer(struct carrier *c, const struct sockaddr *peer);
void tcp_carrier_peer_ok(struct carrier *c, const struct sockaddr *peer);
void tcp_carrier_free(struct carrier *c);

/*
 * tcp.c: negotiating through an upstream proxy on a TCP connection, shared
 * by the TCP carrier (CONNECT) and the UDP carrier (the UDP ASSOCIATE
 * control connection).  The caller owns the bufferevent; while the dial
 * runs it has the dial's callbacks.  The result comes exactly once through
 * cb, from the loop: why is NULL on success (the proxy's reply consumed,
 * anything after it left in the input; the caller sets its own callbacks
 * now), else a static sentence.  cb may free the dial and the bufferevent.
 */
#define PROXY_DIAL_TIMEOUT_MS 10000

struct proxy_dial;
typedef void (*proxy_dial_cb)(struct proxy_dial *d, const char *why, void *arg);

struct proxy_dial {
	struct bufferevent *bev;
	struct event *timer;            /* deadline, and failures found at start */
	struct proxy_neg neg;
	int connected;                  /* TCP connection to the proxy made */
	int finished;                   /* cb was called */
	const char *why;                /* failure waiting to be reported */
	proxy_dial_cb cb;
	void *arg;
};

/*
 * Connect bev (a socket not yet connected) to proxy p and negotiate cmd
 * to dest (NULL for UDP ASSOCIATE).  0, or -1 if nothing could be set up
 * (out of memory); every other failure is reported through cb.
 */
int proxy_dial_start(struct proxy_dial *d, struct bufferevent *bev,
                     const struct carrier_proxy *p, enum proxy_cmd cmd,
                     const struct sockaddr *dest, socklen_t destlen,
                     proxy_dial_cb cb, void *arg);
/* Stop (no callback after this) and wipe the credentials; bev is untouched. */
void proxy_dial_clear(struct proxy_dial *d);

#endif
