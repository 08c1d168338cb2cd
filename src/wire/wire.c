/*
 * Wire layer, pass-through version; see wire.h.  Peers are demultiplexed by
 * carrier address in a hash map bounded by max_peers.  Sealing is the
 * identity today; wire_link_send/wire_listener_datagram are the two places
 * where AEAD seal/open will go.
 */
#include "wire/wire.h"

#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "carrier/carrier.h"
#include "util/bytes.h"
#include "util/hmap.h"
#include "util/log.h"
#include "util/netaddr.h"

#define SCTP_COMMON_HEADER 12
#define SCTP_CHUNK_INIT 1

struct wire_listener {
	struct carrier *carrier;
	struct hmap *peers;            /* peer key -> struct wire_link */
	struct wire_config cfg;
	wire_accept_cb accept_cb;
	void *accept_arg;
};

struct wire_link {
	struct wire_listener *listener;   /* server side, else NULL */
	struct carrier *carrier;          /* client side: owned */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	uint8_t key[HMAP_KEY_MAX];
	size_t keylen;
	size_t max_datagram;
	wire_recv_cb recv_cb;
	void *recv_arg;
};

static struct log_ratelimit drop_rl = LOG_RATELIMIT_INIT(30.0, 2);

/* A canonical hash key for an address: family, port, address bytes. */
static size_t peer_key(const struct sockaddr *sa, uint8_t *key)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		key[0] = 4;
		memcpy(key + 1, &in->sin_port, 2);
		memcpy(key + 3, &in->sin_addr, 4);
		return 7;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		key[0] = 6;
		memcpy(key + 1, &in6->sin6_port, 2);
		memcpy(key + 3, &in6->sin6_addr, 16);
		memcpy(key + 19, &in6->sin6_scope_id, 4);
		return 23;
	}
	return 0;
}

int wire_is_session_start(const uint8_t *pkt, size_t len)
{
	uint16_t chunk_len;

	/* common header + INIT chunk header + fixed INIT parameters */
	if (len < SCTP_COMMON_HEADER + 20)
		return 0;
	if (get_u32be(pkt + 4) != 0)          /* an INIT carries vtag 0 */
		return 0;
	if (pkt[SCTP_COMMON_HEADER] != SCTP_CHUNK_INIT)
		return 0;
	chunk_len = get_u16be(pkt + SCTP_COMMON_HEADER + 2);
	if (chunk_len < 20 || chunk_len > len - SCTP_COMMON_HEADER)
		return 0;
	if (get_u32be(pkt + SCTP_COMMON_HEADER + 4) == 0)   /* initiate tag */
		return 0;
	return 1;
}

static struct wire_link *link_new(size_t max_datagram)
{
	struct wire_link *l = calloc(1, sizeof(*l));

	if (l != NULL)
		l->max_datagram = max_datagram;
	return l;
}

static void listener_datagram(struct carrier *c, const struct sockaddr *from,
                              socklen_t fromlen, const uint8_t *buf, size_t len,
                              void *arg)
{
	struct wire_listener *wl = arg;
	uint8_t key[HMAP_KEY_MAX];
	size_t keylen = peer_key(from, key);
	struct wire_link *l;

	if (keylen == 0)
		return;
	l = hmap_get(wl->peers, key, keylen);
	if (l == NULL) {
		if (!wire_is_session_start(buf, len)) {
			log_ratelimited(&drop_rl, LOG_LEVEL_INFO,
			                "wire: dropped datagram(s) from unknown peers");
			return;
		}
		if (hmap_count(wl->peers) >= wl->cfg.max_peers) {
			log_ratelimited(&drop_rl, LOG_LEVEL_WARN,
			                "wire: peer limit (%u) reached, new peer ignored",
			                wl->cfg.max_peers);
			return;
		}
		l = link_new(wl->cfg.max_datagram);
		if (l == NULL)
			return;
		l->listener = wl;
		memcpy(&l->peer, from, fromlen);
		l->peerlen = fromlen;
		memcpy(l->key, key, keylen);
		l->keylen = keylen;
		if (hmap_put(wl->peers, key, keylen, l) < 0) {
			free(l);
			return;
		}
		wl->accept_cb(wl, l, wl->accept_arg);
		/* The callee may have refused and freed it. */
		l = hmap_get(wl->peers, key, keylen);
		if (l == NULL)
			return;
	}
	/* Here the AEAD open of the packet will happen; drop on failure. */
	if (l->recv_cb != NULL)
		l->recv_cb(l, buf, len, l->recv_arg);
}

struct wire_listener *wire_listener_new(struct event_base *base,
                                        const struct sockaddr *addr, socklen_t len,
                                        const struct wire_config *cfg,
                                        wire_accept_cb cb, void *arg)
{
	struct wire_listener *wl = calloc(1, sizeof(*wl));

	if (wl == NULL)
		return NULL;
	wl->cfg = *cfg;
	wl->accept_cb = cb;
	wl->accept_arg = arg;
	wl->peers = hmap_new();
	if (wl->peers == NULL)
		goto fail;
	wl->carrier = carrier_udp_new(base, addr, len, NULL, 0, listener_datagram, wl);
	if (wl->carrier == NULL)
		goto fail;
	return wl;
fail:
	hmap_free(wl->peers);
	free(wl);
	return NULL;
}

static void link_orphan(void *value, void *arg)
{
	struct wire_link *l = value;

	l->listener = NULL;
}

void wire_listener_free(struct wire_listener *wl)
{
	if (wl == NULL)
		return;
	hmap_foreach(wl->peers, link_orphan, NULL);
	hmap_free(wl->peers);
	carrier_free(wl->carrier);
	free(wl);
}

int wire_listener_local_addr(const struct wire_listener *wl,
                             struct sockaddr_storage *ss, socklen_t *len)
{
	return carrier_local_addr(wl->carrier, ss, len);
}

unsigned wire_listener_peers(const struct wire_listener *wl)
{
	return (unsigned)hmap_count(wl->peers);
}

static void client_datagram(struct carrier *c, const struct sockaddr *from,
                            socklen_t fromlen, const uint8_t *buf, size_t len,
                            void *arg)
{
	struct wire_link *l = arg;

	/* The carrier is connected: the kernel already filtered the source. */
	if (l->recv_cb != NULL)
		l->recv_cb(l, buf, len, l->recv_arg);
}

struct wire_link *wire_link_connect(struct event_base *base,
                                    const struct sockaddr *server, socklen_t len,
                                    const struct wire_config *cfg)
{
	struct wire_link *l = link_new(cfg->max_datagram);

	if (l == NULL)
		return NULL;
	memcpy(&l->peer, server, len);
	l->peerlen = len;
	l->carrier = carrier_udp_new(base, NULL, 0, server, len, client_datagram, l);
	if (l->carrier == NULL) {
		free(l);
		return NULL;
	}
	return l;
}

void wire_link_set_recv(struct wire_link *l, wire_recv_cb cb, void *arg)
{
	l->recv_cb = cb;
	l->recv_arg = arg;
}

int wire_link_send(struct wire_link *l, const uint8_t *pkt, size_t len)
{
	/* Here the packet will be sealed (AEAD + padding) before sending. */
	if (len > l->max_datagram) {
		log_ratelimited(&drop_rl, LOG_LEVEL_WARN,
		                "wire: packet of %zu bytes exceeds the MTU (%zu); dropped",
		                len, l->max_datagram);
		return -1;
	}
	if (l->carrier != NULL)
		return carrier_send(l->carrier, NULL, 0, pkt, len);
	if (l->listener != NULL)
		return carrier_send(l->listener->carrier,
		                    (const struct sockaddr *)&l->peer, l->peerlen, pkt, len);
	return -1;
}

size_t wire_link_mtu(const struct wire_link *l)
{
	return l->max_datagram;   /* no sealing overhead yet */
}

const struct sockaddr *wire_link_peer(const struct wire_link *l, socklen_t *len)
{
	if (len != NULL)
		*len = l->peerlen;
	return (const struct sockaddr *)&l->peer;
}

void wire_link_free(struct wire_link *l)
{
	if (l == NULL)
		return;
	if (l->listener != NULL)
		hmap_del(l->listener->peers, l->key, l->keylen);
	carrier_free(l->carrier);
	free(l);
}
