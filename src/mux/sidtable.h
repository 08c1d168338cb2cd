/*
 * Stream table: stream id -> stream, and allocation of free ids of one
 * parity (the client opens odd ids, the server even ones).  Pure data
 * structure; unit tested on its own.
 */
#ifndef SCTPT_MUX_SIDTABLE_H
#define SCTPT_MUX_SIDTABLE_H

struct sidtable {
	void **slot;      /* n entries; slot[0] is never used */
	unsigned n;       /* usable ids are 1..n-1 */
	unsigned next;    /* where the next search starts */
	unsigned used;
};

/* n = negotiated stream count.  0, or -1 on allocation failure. */
int sidtable_init(struct sidtable *t, unsigned n);
void sidtable_free(struct sidtable *t);
/* A free id with the given parity (1 odd, 0 even), or -1 if none. */
int sidtable_alloc(const struct sidtable *t, unsigned parity);
/* The entry for sid, or NULL (also for ids out of range). */
void *sidtable_get(const struct sidtable *t, unsigned sid);
/* Occupy sid with v (non-NULL).  0, or -1 if out of range or taken. */
int sidtable_set(struct sidtable *t, unsigned sid, void *v);
/* Free sid. */
void sidtable_clear(struct sidtable *t, unsigned sid);

#endif
