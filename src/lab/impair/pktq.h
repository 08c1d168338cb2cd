/*
 * The delay line: packets waiting for their departure time, in a binary
 * min-heap ordered by (due time, arrival order), so equal times leave in
 * the order they came.  Bounded in packets and bytes.  Pure: no clock, no
 * I/O.
 */
#ifndef SCTPT_IMPAIR_PKTQ_H
#define SCTPT_IMPAIR_PKTQ_H

#include <stddef.h>
#include <stdint.h>

struct impair_pkt {
	uint64_t due_us;
	uint64_t seq;          /* set by impair_pktq_push */
	uint32_t sink;         /* who sends it: a flow slot, a TUN, ... */
	uint32_t gen;          /* the sink's generation when queued */
	uint8_t dir;
	uint32_t len;
	uint8_t data[];
};

struct impair_pktq {
	struct impair_pkt **heap;
	size_t n, cap;
	size_t max_pkts;
	size_t bytes, max_bytes;
	uint64_t seq;
};

/* An empty queue holding at most max_pkts packets and max_bytes bytes. */
void impair_pktq_init(struct impair_pktq *q, size_t max_pkts, size_t max_bytes);
/* Free every queued packet and the heap. */
void impair_pktq_clear(struct impair_pktq *q);

/* A packet with room for len bytes (not queued yet); NULL if out of memory. */
struct impair_pkt *impair_pkt_new(size_t len);

/* Queue p (the queue owns it from now on): 0, or -1 if full (p not taken). */
int impair_pktq_push(struct impair_pktq *q, struct impair_pkt *p);
/* The packet due first, or NULL if empty. */
struct impair_pkt *impair_pktq_peek(const struct impair_pktq *q);
/* Remove and return the packet due first (the caller frees it), or NULL. */
struct impair_pkt *impair_pktq_pop(struct impair_pktq *q);

#endif
