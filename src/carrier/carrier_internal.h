/*
 * What every carrier struct starts with, so carrier.h's functions can
 * dispatch through an ops table to the UDP or TCP implementation, and the
 * upstream-proxy dial shared by both.  Private to src/carrier.
 */
#ifndef SCTPT_CARRIER_INTERNAL_H
#define SCTPT_CARRIER_INTERNAL_H

#include "carrier/carrier.h"
#include "carrier/proxy.h"

struct bufferevent;
struct event;

/* One per carrier kind (udp.c, tcp.c); carrier.c dispatches through it. */
struct carrier_ops {
	const char *name;
	int is_tcp;
	int (*send)(struct carrier *c, const struct sockaddr *to, socklen_t tolen,
	            const uint8_t *buf, size_t len);
	/* NULL where there is no send batch to build in (TCP). */
	uint8_t *(*tx_slot)(struct carrier *c, size_t len);
	int (*tx_commit)(struct carrier *c, const struct sockaddr *to, socklen_t tolen,
	                 size_t len);
	int (*local_addr)(const struct carrier *c, struct sockaddr_storage *ss,
	                  socklen_t *len);
	void (*get_stats)(const struct carrier *c, struct carrier_stats *st);
	/* NULL where the kind has no connections to drop or keep (UDP). */
	void (*drop_peer)(struct carrier *c, const struct sockaddr *peer);
	void (*peer_ok)(struct carrier *c, const struct sockaddr *peer);
	/* Free now: never called while a receive callback runs (carrier.c). */
	void (*free)(struct carrier *c);
};

struct carrier_hdr {
	const struct carrier_ops *ops;
	carrier_recv_cb recv_cb;
	void *recv_arg;
	carrier_down_cb down_cb;
	void *down_arg;
	/*
	 * The layer above may free the carrier from inside its receive
	 * callback.  While one runs (busy), carrier_free only marks the
	 * carrier dead; carrier_deliver frees it when the callback returns.
	 */
	unsigned busy;
	int dead;
};

/* carrier.c: fill the header of a new carrier. */
void carrier_hdr_init(struct carrier_hdr *h, const struct carrier_ops *ops,
                      carrier_recv_cb cb, void *arg);

/*
 * carrier.c: hand one datagram to the layer above.  Returns 0, or -1 if
 * the callback freed the carrier: it is gone on return, and the caller
 * must touch nothing of it (nor of its connections) any more.
 */
int carrier_deliver(struct carrier *c, const struct sockaddr *from, socklen_t fromlen,
                    uint8_t *buf, size_t len);

/* Report the end of the carrier to the layer above (which may free it). */
void carrier_report_down(struct carrier *c, const char *why);

/*
 * dial.c: negotiating through an upstream proxy on a TCP connection, shared
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
