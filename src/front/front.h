/*
 * Front: the client-side listener that applications talk to.  It accepts
 * TCP connections, runs the SOCKS negotiation (socks.h) -- or, if
 * enabled, reads an HTTP proxy request (http.h) -- with bounded time and
 * memory, and hands each complete request to its owner, who opens a
 * stream and later answers with front_conn_succeeded() or
 * front_conn_failed().  HTTP requests reach the owner as a SOCKS5
 * CONNECT; the replies are written in the client's protocol.
 */
#ifndef SCTPT_FRONT_FRONT_H
#define SCTPT_FRONT_FRONT_H

#include <stdint.h>
#include <sys/socket.h>

#include "front/socks.h"

struct event_base;
struct bufferevent;
struct front;
struct front_conn;

struct front_config {
	unsigned max_conns;          /* connections at once, negotiating or relaying */
	unsigned handshake_timeout;  /* seconds to complete the SOCKS negotiation or HTTP head */
	int http;                    /* also accept HTTP proxy requests (http.h) */
	/* Connections relayed elsewhere that count against max_conns too. */
	unsigned (*busy)(void *arg);
	/*
	 * A port forward (-L, -R HOST:PORT): no negotiation at all; every
	 * accepted connection is handed over at once as a CONNECT to
	 * fixed_dest.  Success writes nothing; failure closes with a TCP RST.
	 */
	int fixed;
	struct socks_dest fixed_dest;
};

/*
 * A complete request.  The owner must eventually call exactly one of
 * front_conn_succeeded() (the connection is then relayed by the owner) or
 * front_conn_failed() (a SOCKS error reply, then close).
 */
typedef void (*front_request_cb)(struct front_conn *fc,
                                 const struct socks_request *req, void *arg);

struct front *front_new(struct event_base *base, const struct sockaddr *addr,
                        socklen_t len, const struct front_config *cfg,
                        front_request_cb cb, void *arg);
/*
 * The same on a socket the caller bound and put in listening state (taken
 * over, closed by front_free); NULL on failure (fd closed, not logged).
 */
struct front *front_new_fd(struct event_base *base, int fd, const struct front_config *cfg,
                           front_request_cb cb, void *arg);
/* Stop accepting; connections already handed over are not affected. */
void front_stop(struct front *f);
void front_free(struct front *f);
unsigned front_active(const struct front *f);
/* The address actually listened on (port 0 resolved).  0 or -1. */
int front_local_addr(const struct front *f, struct sockaddr_storage *ss, socklen_t *len);

/* The connection's bufferevent (input may hold pipelined data). */
struct bufferevent *front_conn_bev(struct front_conn *fc);
/*
 * The request succeeded: write the success reply into the bufferevent;
 * the connection now belongs to whoever relays bev (and is counted by the
 * config's busy() callback from now on).  fc is freed.
 */
void front_conn_succeeded(struct front_conn *fc, struct bufferevent *bev);
/*
 * A UDP ASSOCIATE succeeded: reply with bnd (where the client sends its
 * datagrams).  The control connection bev now belongs to the caller, who
 * keeps it open for as long as the association lives.  fc is freed.
 */
void front_conn_udp_succeeded(struct front_conn *fc, struct bufferevent *bev,
                              const struct sockaddr *bnd);
/*
 * The request failed: send the reply for rep (SOCKS5 code; for HTTP 403
 * for not allowed, 504 for a timeout, 502 otherwise), close, free.
 */
void front_conn_failed(struct front_conn *fc, struct bufferevent *bev, uint8_t rep);
/* The client spoke HTTP (for logs). */
int front_conn_is_http(const struct front_conn *fc);

#endif
