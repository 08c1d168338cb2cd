/*
 * The receive side of data transfer: the TSN map (the cumulative point
 * and a bitmap of what arrived above it, at most CORE_TSN_MAP TSNs: a
 * TSN beyond is dropped and the peer sends it again), duplicates,
 * reassembly per stream (DATA: consecutive TSNs with one SSN; I-DATA:
 * one MID, FSN 0 up), ordered delivery per stream, unordered delivery as
 * soon as a message is whole.
 *
 * Memory: the payload bytes in reassembly plus the delivered bytes the
 * caller has not consumed stay under the a_rwnd we advertise.  A chunk
 * over it is dropped, except the next in-order TSN, which may use a
 * reserve of a few MTUs: it is the one that can complete a message and
 * free the buffer.  Bookkeeping is counted apart (RCHUNK_COST a chunk)
 * and capped at a_rwnd too, so a peer sending one-byte chunks cannot
 * make us hold 60 times the window.
 */
#include "sctp/assoc_data_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"

#define RCHUNK_COST 64             /* what a chunk's bookkeeping is charged */


uint32_t core_recv_rwnd(const struct sctp_core *a)
{
	size_t used = a->d->rcv_queued + a->d->rcv_unconsumed;

	return used >= a->cfg.a_rwnd ? 0 : (uint32_t)(a->cfg.a_rwnd - used);
}

int core_recv_map_has(const struct core_data *d, uint32_t tsn)
{
	uint32_t i = tsn & (CORE_TSN_MAP - 1);

	return (d->map[i / 8] >> (i % 8)) & 1;
}

static void map_set(struct core_data *d, uint32_t tsn, int v)
{
	uint32_t i = tsn & (CORE_TSN_MAP - 1);

	if (v)
		d->map[i / 8] |= (uint8_t)(1u << (i % 8));
	else
		d->map[i / 8] &= (uint8_t)~(1u << (i % 8));
}

static void map_add(struct core_data *d, uint32_t tsn)
{
	map_set(d, tsn, 1);
	if (tsn_lt(d->highest, tsn))
		d->highest = tsn;
	while (core_recv_map_has(d, d->cum + 1) && tsn_le(d->cum + 1, d->highest)) {
		d->cum++;
		map_set(d, d->cum, 0);
	}
}

void core_recv_free_streams(struct core_data *d)
{
	for (unsigned i = 0; d->is != NULL && i < d->n_is; i++) {
		struct core_istream *s = d->is[i];
		struct core_rchunk *c;

		if (s == NULL)
			continue;
		while ((c = s->ordered) != NULL) {
			s->ordered = c->next;
			free(c);
		}
		while ((c = s->unordered) != NULL) {
			s->unordered = c->next;
			free(c);
		}
		free(s);
	}
	free(d->is);
	d->is = NULL;
	d->n_is = 0;
}

static struct core_istream *istream_get(struct sctp_core *a, uint16_t sid)
{
	struct core_data *d = a->d;

	if (d->is == NULL) {
		if ((d->is = calloc(a->p.in_streams, sizeof(*d->is))) == NULL)
			return NULL;
		d->n_is = a->p.in_streams;
	}
	if (sid >= d->n_is)
		return NULL;
	if (d->is[sid] == NULL)
		d->is[sid] = calloc(1, sizeof(*d->is[sid]));
	return d->is[sid];
}

/* Sort order in a stream list: TSN for DATA, MID then FSN for I-DATA. */
static int rc_before(int idata, const struct core_rchunk *x,
                     const struct core_rchunk *y)
{
	if (!idata)
		return tsn_lt(x->tsn, y->tsn);
	if (x->mid != y->mid)
		return tsn_lt(x->mid, y->mid);
	return x->fsn < y->fsn;
}

static int rc_same_slot(int idata, const struct core_rchunk *x,
                        const struct core_rchunk *y)
{
	return idata ? x->mid == y->mid && x->fsn == y->fsn : x->tsn == y->tsn;
}

/* Does y follow x inside one message? */
static int rc_follows(int idata, const struct core_rchunk *x,
                      const struct core_rchunk *y)
{
	if (idata)
		return y->mid == x->mid && y->fsn == x->fsn + 1;
	return y->tsn == x->tsn + 1 && y->mid == x->mid &&
	       (y->flags & SCTP_CF_U) == (x->flags & SCTP_CF_U);
}

/* 0 if inserted, -1 if the slot is taken (a duplicate under another TSN). */
static int list_insert(int idata, struct core_rchunk **head,
                       struct core_rchunk *c)
{
	struct core_rchunk **pp = head;

	while (*pp != NULL && rc_before(idata, *pp, c))
		pp = &(*pp)->next;
	if (*pp != NULL && rc_same_slot(idata, *pp, c))
		return -1;
	c->next = *pp;
	*pp = c;
	return 0;
}

/* The last chunk of a whole message starting at h, or NULL. */
static struct core_rchunk *msg_complete(int idata, struct core_rchunk *h)
{
	if (!(h->flags & SCTP_CF_B) || (idata && h->fsn != 0))
		return NULL;
	for (struct core_rchunk *c = h;; c = c->next) {
		if (c->flags & SCTP_CF_E)
			return c;
		if (c->next == NULL || !rc_follows(idata, c, c->next) ||
		    (c->next->flags & SCTP_CF_B))
			return NULL;
	}
}

/* Hands the message *pp .. last to the caller and unlinks it.  -1 when
 * there is no memory to join it: it stays and is tried again later. */
static int deliver(struct sctp_core *a, uint16_t sid, struct core_rchunk **pp,
                   struct core_rchunk *last)
{
	struct core_data *d = a->d;
	struct sctp_core_event ev = { .type = SCTP_EV_DATA, .sid = sid };
	struct core_rchunk *c, *h = *pp, *stop = last->next;
	size_t total = 0, off = 0, nchunks = 0;
	uint8_t *buf;

	for (c = h; c != stop; c = c->next)
		total += c->len;
	if ((buf = malloc(total)) == NULL)
		return -1;
	ev.ppid = h->ppid;
	ev.unordered = (h->flags & SCTP_CF_U) != 0;
	for (c = h; c != stop;) {
		struct core_rchunk *n = c->next;

		memcpy(buf + off, c->data, c->len);
		off += c->len;
		nchunks++;
		free(c);
		c = n;
	}
	*pp = stop;
	d->rcv_queued -= total;
	d->rcv_overhead -= nchunks * RCHUNK_COST;
	d->rcv_unconsumed += total;
	ev.data = buf;
	ev.len = total;
	core_emit(a, &ev);
	free(buf);
	return 0;
}

static void deliver_stream(struct sctp_core *a, uint16_t sid,
                           struct core_istream *s)
{
	int idata = a->p.idata;
	struct core_rchunk *h, *last, **pp;

	/* Ordered: the head must be the next SSN / MID, whole. */
	while ((h = s->ordered) != NULL && a->state != SCTP_S_CLOSED) {
		if (idata ? h->mid != s->next_mid :
		            (uint16_t)h->mid != s->next_ssn)
			break;
		if ((last = msg_complete(idata, h)) == NULL)
			break;
		if (deliver(a, sid, &s->ordered, last) != 0)
			break;
		s->next_mid++;
		s->next_ssn++;
	}
	/* Unordered: any whole message. */
	pp = &s->unordered;
	while ((h = *pp) != NULL && a->state != SCTP_S_CLOSED) {
		if ((last = msg_complete(idata, h)) != NULL &&
		    deliver(a, sid, pp, last) == 0)
			continue;
		pp = &h->next;
	}
}

/* An ordered chunk for a message already delivered: never deliverable. */
static int stale(int idata, const struct core_istream *s,
                 const struct sctp_data *dc)
{
	if (dc->flags & SCTP_CF_U)
		return 0;
	if (idata)
		return tsn_lt(dc->mid, s->next_mid);
	return (int16_t)(uint16_t)(dc->ssn - s->next_ssn) < 0;
}

static void dup_seen(struct core_data *d, uint32_t tsn)
{
	d->dup_tsns++;
	if (d->ndups < CORE_SACK_DUPS)
		d->dups[d->ndups++] = tsn;
	d->sack_now = 1;
}

static void invalid_stream(struct sctp_core *a, uint16_t sid)
{
	uint8_t info[4];

	put_u16be(info, sid);
	put_u16be(info + 2, 0);
	core_send_cause(a, a->p.peer_vtag, SCTP_CT_ERROR, 0,
	                SCTP_C_INVALID_STREAM, info, sizeof(info));
}

int core_recv_chunk(struct sctp_core *a, const struct sctp_data *dc, int idata)
{
	struct core_data *d = a->d;
	struct core_istream *s;
	struct core_rchunk *c;
	uint32_t tsn = dc->tsn;
	size_t used = d->rcv_queued + d->rcv_unconsumed;
	size_t cost = dc->payload_len;
	int had_gap = d->highest != d->cum;

	d->sack_needed = 1;
	d->pkt_data = 1;
	if (dc->flags & SCTP_CF_I)
		d->sack_now = 1;                /* RFC 7053 */
	if (tsn_le(tsn, d->cum) || (tsn_le(tsn, d->highest) &&
	                            core_recv_map_has(d, tsn))) {
		dup_seen(d, tsn);
		return 0;
	}
	if (tsn - d->cum > CORE_TSN_MAP) {
		d->rcv_dropped++;
		d->sack_now = 1;
		return 0;
	}
	if ((used + cost > a->cfg.a_rwnd &&
	     (tsn != d->cum + 1 ||
	      used + cost > (size_t)a->cfg.a_rwnd + 4 * (size_t)a->cfg.mtu)) ||
	    d->rcv_overhead + RCHUNK_COST > a->cfg.a_rwnd) {
		d->rcv_dropped++;
		d->sack_now = 1;
		return 0;
	}
	if (dc->sid >= a->p.in_streams) {
		/* §6.5: report, and acknowledge the TSN all the same. */
		invalid_stream(a, dc->sid);
		map_add(d, tsn);
		return 0;
	}
	if ((s = istream_get(a, dc->sid)) == NULL ||
	    (c = malloc(sizeof(*c) + dc->payload_len)) == NULL)
		return 0;               /* no memory: not acked, comes again */
	map_add(d, tsn);
	if (tsn != d->cum || had_gap)
		d->sack_now = 1;        /* a gap opened, or one closed */
	if (stale(idata, s, dc)) {
		free(c);
		return 0;
	}
	c->next = NULL;
	c->tsn = tsn;
	c->flags = dc->flags;
	c->mid = idata ? dc->mid : dc->ssn;
	c->fsn = idata && !(dc->flags & SCTP_CF_B) ? dc->fsn : 0;
	c->ppid = dc->ppid;
	c->len = dc->payload_len;
	memcpy(c->data, dc->payload, dc->payload_len);
	if (list_insert(idata, (dc->flags & SCTP_CF_U) ? &s->unordered :
	                                                &s->ordered, c) != 0) {
		free(c);
		return 0;
	}
	d->rcv_queued += c->len;
	d->rcv_overhead += RCHUNK_COST;
	deliver_stream(a, dc->sid, s);
	return 0;
}
