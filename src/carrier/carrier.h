/*
 * Carrier layer: moves opaque datagrams between two hosts, over UDP or over
 * TCP (each datagram framed with a hidden length, docs/PROTOCOL.md "TCP
 * carrier").  A carrier knows nothing about sessions: the wire layer above
 * demultiplexes peers by address (for TCP, the address of the connection).
 */
#ifndef SCTPT_CARRIER_CARRIER_H
#define SCTPT_CARRIER_CARRIER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct carrier;

#define CARRIER_MAX_DATAGRAM 65535

/*
 * Called for every datagram received; buf is valid only during the call,
 * and the callee may change it in place (the wire layer decrypts there).
 */
typedef void (*carrier_recv_cb)(struct carrier *c, const struct sockaddr *from,
                                socklen_t fromlen, uint8_t *buf,
                                size_t len, void *arg);

/*
 * Open a UDP carrier.  With bind_addr it listens there (server); with
 * peer it is connected to that one peer (client) and bound to an
 * ephemeral port.  Returns NULL with a logged reason on failure.
 */
struct carrier *carrier_udp_new(struct event_base *base,
                                const struct sockaddr *bind_addr, socklen_t bindlen,
                                const struct sockaddr *peer, socklen_t peerlen,
                                carrier_recv_cb cb, void *arg);

/*
 * An upstream proxy that carriers reach the server through: SOCKS5 (TCP
 * CONNECT for the TCP carrier, UDP ASSOCIATE for the UDP carrier), SOCKS4a
 * and HTTP CONNECT (TCP carrier only).
 */
enum carrier_proxy_type {
	CARRIER_PROXY_NONE = 0,
	CARRIER_PROXY_SOCKS5,
	CARRIER_PROXY_SOCKS4A,
	CARRIER_PROXY_HTTP,
};

#define CARRIER_PROXY_CRED_MAX 256

struct carrier_proxy {
	enum carrier_proxy_type type;
	struct sockaddr_storage addr;       /* the proxy itself (numeric) */
	socklen_t len;
	int has_auth;
	char user[CARRIER_PROXY_CRED_MAX];  /* SOCKS5 RFC 1929, SOCKS4 user id, HTTP Basic */
	char pass[CARRIER_PROXY_CRED_MAX];
};

/*
 * Parse socks5://[USER[:PASS]@]IP:PORT, socks4a://[USER@]IP:PORT or
 * http://[USER[:PASS]@]IP:PORT (the forms tor's TOR_PT_PROXY uses; the
 * address must be numeric, [v6] in brackets).  0, or -1 with *err set.
 */
int carrier_proxy_parse(const char *url, struct carrier_proxy *p, const char **err);
/* "socks5", "socks4a", "http". */
const char *carrier_proxy_name(enum carrier_proxy_type t);

/* The carrier can no longer deliver (TCP: the connection ended). */
typedef void (*carrier_down_cb)(struct carrier *c, const char *why, void *arg);

/*
 * TCP carrier, client side: connect to peer (from bind_addr if given).
 * Datagrams sent before the connection is up are queued.  frame_key (32
 * bytes) keys the length masks; both ends derive it from the bridge
 * secret.  The down callback reports the end of the connection.
 */
struct carrier *carrier_tcp_connect(struct event_base *base,
                                    const struct sockaddr *bind_addr, socklen_t bindlen,
                                    const struct sockaddr *peer, socklen_t peerlen,
                                    const struct carrier_proxy *proxy,
                                    const uint8_t frame_key[32],
                                    carrier_recv_cb cb, void *arg);
/*
 * The same, the stream starting with plen (1..64) bytes of prefix and a tag
 * (--prefix, issue 16; docs/PROTOCOL.md "Prefix"); plen 0 is the above.
 */
struct carrier *carrier_tcp_connect_prefixed(struct event_base *base,
                                             const struct sockaddr *bind_addr,
                                             socklen_t bindlen,
                                             const struct sockaddr *peer, socklen_t peerlen,
                                             const struct carrier_proxy *proxy,
                                             const uint8_t frame_key[32],
                                             const uint8_t *prefix, size_t plen,
                                             carrier_recv_cb cb, void *arg);

/*
 * UDP carrier to one peer through a SOCKS5 proxy's UDP ASSOCIATE (the
 * control connection must stay open; its end is reported through the
 * down callback).  Datagrams sent before the association is ready are
 * dropped, like on a path that is not up yet.
 */
struct carrier *carrier_udp_connect_proxy(struct event_base *base,
                                          const struct sockaddr *bind_addr, socklen_t bindlen,
                                          const struct sockaddr *peer, socklen_t peerlen,
                                          const struct carrier_proxy *proxy,
                                          carrier_recv_cb cb, void *arg);

/*
 * TCP carrier, server side: accept connections on addr.  Each connection
 * is a peer whose address is the connection's remote address.  A
 * connection whose first datagram does not arrive in time, or whose peer
 * the wire layer rejects (carrier_drop_peer), is read from for a random
 * time and closed, never answered.
 */
struct carrier *carrier_tcp_listen(struct event_base *base,
                                   const struct sockaddr *addr, socklen_t len,
                                   const uint8_t frame_key[32],
                                   carrier_recv_cb cb, void *arg);

/*
 * Server: hand connections that do not authenticate, with the bytes they
 * sent, to the TCP server at sa (a real web server) instead of draining
 * them, so a prober sees that server.  Only sa is ever dialled.
 */
void carrier_tcp_set_decoy(struct carrier *c, const struct sockaddr *sa, socklen_t len);

/* Down notifications (TCP); no-op for UDP. */
void carrier_set_down(struct carrier *c, carrier_down_cb cb, void *arg);

/*
 * The wire layer found nothing authentic from peer: on TCP that
 * connection is drained and closed after a random delay; no-op for UDP.
 */
void carrier_drop_peer(struct carrier *c, const struct sockaddr *peer);

/*
 * The wire layer authenticated a datagram from peer: on TCP that
 * connection may now be written to and is kept; no-op for UDP.
 */
void carrier_peer_ok(struct carrier *c, const struct sockaddr *peer);

/* Whether c is a TCP carrier. */
int carrier_is_tcp(const struct carrier *c);
/*
 * A TCP carrier queues datagrams in order and drops one only once this
 * many bytes wait to be written (a sender that keeps its flight below it
 * loses nothing there).
 */
#define CARRIER_TCP_OUT_CAP (512 * 1024)

/*
 * Send one datagram (to may be NULL on a connected carrier).  Returns 0, or
 * -1 if it was dropped (full socket buffer, unreachable): like the network,
 * the carrier may lose packets and the protocol above recovers.
 */
int carrier_send(struct carrier *c, const struct sockaddr *to, socklen_t tolen,
                 const uint8_t *buf, size_t len);

/*
 * Zero-copy sending: a slot of the carrier's send batch with room for len
 * bytes, for the caller to build the datagram in, then queue it with
 * carrier_tx_commit (len at most what was asked for) before any other call
 * on c.  NULL when there is no such slot (a TCP carrier, a proxied path
 * not ready yet, len above the slot size, no socket): carrier_send then
 * does the same with one copy.  A slot not committed is simply reused.
 */
uint8_t *carrier_tx_slot(struct carrier *c, size_t len);
/*
 * Queue the datagram built in the slot (to as for carrier_send).  0, or -1
 * if dropped: no slot was taken, or len exceeds it.
 */
int carrier_tx_commit(struct carrier *c, const struct sockaddr *to, socklen_t tolen,
                      size_t len);

/* Local address the carrier is bound to (for logs and tests). */
int carrier_local_addr(const struct carrier *c, struct sockaddr_storage *ss,
                       socklen_t *len);

/* Counters for diagnostics. */
struct carrier_stats {
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, tx_dropped;
};
void carrier_get_stats(const struct carrier *c, struct carrier_stats *st);

/* Close and free; NULL is fine. */
void carrier_free(struct carrier *c);

#endif
