/*
 * Binary min-heap of packets; see pktq.h.  The heap array grows by
 * doubling up to max_pkts.
 */
#include "lab/impair/pktq.h"

#include <stdlib.h>
#include <string.h>

void impair_pktq_init(struct impair_pktq *q, size_t max_pkts, size_t max_bytes)
{
	memset(q, 0, sizeof(*q));
	q->max_pkts = max_pkts;
	q->max_bytes = max_bytes;
}

void impair_pktq_clear(struct impair_pktq *q)
{
	for (size_t i = 0; i < q->n; i++)
		free(q->heap[i]);
	free(q->heap);
	q->heap = NULL;
	q->n = q->cap = 0;
	q->bytes = 0;
}

struct impair_pkt *impair_pkt_new(size_t len)
{
	struct impair_pkt *p = malloc(sizeof(*p) + len);

	if (p != NULL) {
		memset(p, 0, sizeof(*p));
		p->len = (uint32_t)len;
	}
	return p;
}

static int before(const struct impair_pkt *a, const struct impair_pkt *b)
{
	if (a->due_us != b->due_us)
		return a->due_us < b->due_us;
	return a->seq < b->seq;
}

int impair_pktq_push(struct impair_pktq *q, struct impair_pkt *p)
{
	size_t i;

	if (q->n >= q->max_pkts || q->bytes + p->len > q->max_bytes)
		return -1;
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 64;
		struct impair_pkt **h;

		if (cap > q->max_pkts)
			cap = q->max_pkts;
		h = realloc(q->heap, cap * sizeof(*h));
		if (h == NULL)
			return -1;
		q->heap = h;
		q->cap = cap;
	}
	p->seq = q->seq++;
	i = q->n++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!before(p, q->heap[parent]))
			break;
		q->heap[i] = q->heap[parent];
		i = parent;
	}
	q->heap[i] = p;
	q->bytes += p->len;
	return 0;
}

struct impair_pkt *impair_pktq_peek(const struct impair_pktq *q)
{
	return q->n ? q->heap[0] : NULL;
}

struct impair_pkt *impair_pktq_pop(struct impair_pktq *q)
{
	struct impair_pkt *top, *last;
	size_t i = 0;

	if (q->n == 0)
		return NULL;
	top = q->heap[0];
	last = q->heap[--q->n];
	q->bytes -= top->len;
	if (q->n == 0)
		return top;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m;

		if (l >= q->n)
			break;
		m = (r < q->n && before(q->heap[r], q->heap[l])) ? r : l;
		if (!before(q->heap[m], last))
			break;
		q->heap[i] = q->heap[m];
		i = m;
	}
	q->heap[i] = last;
	return top;
}
