/*
 * The carrier API of carrier.h, dispatched through each kind's ops table
 * (udp.c, tcp.c), and the one place that hands datagrams up: it keeps a
 * carrier that the layer above frees from inside its receive callback
 * alive until the callback has returned.
 */
#include "carrier/carrier_internal.h"

#define HDR(c) ((struct carrier_hdr *)(c))
#define CHDR(c) ((const struct carrier_hdr *)(c))

void carrier_hdr_init(struct carrier_hdr *h, const struct carrier_ops *ops,
                      carrier_recv_cb cb, void *arg)
{
	h->ops = ops;
	h->recv_cb = cb;
	h->recv_arg = arg;
}

int carrier_deliver(struct carrier *c, const struct sockaddr *from, socklen_t fromlen,
                    uint8_t *buf, size_t len)
{
	struct carrier_hdr *h = HDR(c);

	h->busy++;
	h->recv_cb(c, from, fromlen, buf, len, h->recv_arg);
	h->busy--;
	if (!h->dead)
		return 0;
	if (h->busy == 0)
		h->ops->free(c);
	return -1;
}

void carrier_report_down(struct carrier *c, const char *why)
{
	struct carrier_hdr *h = HDR(c);

	if (h->down_cb != NULL && !h->dead)
		h->down_cb(c, why, h->down_arg);
}

int carrier_send(struct carrier *c, const struct sockaddr *to, socklen_t tolen,
                 const uint8_t *buf, size_t len)
{
	if (HDR(c)->dead)
		return -1;
	return HDR(c)->ops->send(c, to, tolen, buf, len);
}

uint8_t *carrier_tx_slot(struct carrier *c, size_t len)
{
	if (HDR(c)->dead || HDR(c)->ops->tx_slot == NULL)
		return NULL;
	return HDR(c)->ops->tx_slot(c, len);
}

int carrier_tx_commit(struct carrier *c, const struct sockaddr *to, socklen_t tolen,
                      size_t len)
{
	if (HDR(c)->ops->tx_commit == NULL)
		return -1;
	return HDR(c)->ops->tx_commit(c, to, tolen, len);
}

int carrier_local_addr(const struct carrier *c, struct sockaddr_storage *ss,
                       socklen_t *len)
{
	return CHDR(c)->ops->local_addr(c, ss, len);
}

void carrier_get_stats(const struct carrier *c, struct carrier_stats *st)
{
	CHDR(c)->ops->get_stats(c, st);
}

void carrier_set_down(struct carrier *c, carrier_down_cb cb, void *arg)
{
	HDR(c)->down_cb = cb;
	HDR(c)->down_arg = arg;
}

void carrier_drop_peer(struct carrier *c, const struct sockaddr *peer)
{
	if (HDR(c)->ops->drop_peer != NULL && !HDR(c)->dead)
		HDR(c)->ops->drop_peer(c, peer);
}

void carrier_peer_ok(struct carrier *c, const struct sockaddr *peer)
{
	if (HDR(c)->ops->peer_ok != NULL && !HDR(c)->dead)
		HDR(c)->ops->peer_ok(c, peer);
}

int carrier_is_tcp(const struct carrier *c)
{
	return CHDR(c)->ops->is_tcp;
}

void carrier_free(struct carrier *c)
{
	if (c == NULL)
		return;
	if (HDR(c)->busy > 0) {
		/* Inside its receive callback: carrier_deliver frees it after. */
		HDR(c)->dead = 1;
		return;
	}
	HDR(c)->ops->free(c);
}
