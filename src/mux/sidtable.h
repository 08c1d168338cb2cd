/*
 * Stream table: stream id -> stream, and allocation of free ids of one
 * parity (the client opens odd ids, the server even ones).  Pure data
 * structure; unit tested on its own.
 *
 * An id can also be held by a tombstone: a non-zero byte of the owner's
 * meaning, with no entry behind it.  The mux uses it for a stream whose
 * life is over on our side while the peer's last message is still owed,
 * so that waiting costs one byte instead of a whole stream.  A tombstoned
 * id is neither free (alloc skips it, set refuses it) nor an entry (get
 * returns NULL).
 */
#ifndef SCTPT_MUX_SIDTABLE_H
#define SCTPT_MUX_SIDTABLE_H

#include <stdint.h>

struct sidtable {
	void **slot;      /* n entries; slot[0] is never used */
	uint8_t *tomb;    /* n bytes: the tombstone of each id, 0 for none */
	unsigned n;       /* usable ids are 1..n-1 */
	unsigned next;    /* where the next search starts */
	unsigned used;    /* entries */
	unsigned tombs;   /* tombstones */
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
/* The tombstone of sid, 0 if none (also for ids out of range). */
uint8_t sidtable_tomb(const struct sidtable *t, unsigned sid);
/*
 * Set (v != 0) or remove (v == 0) the tombstone of sid, which must have
 * no entry.  0, or -1 if out of range or sid has an entry.
 */
int sidtable_set_tomb(struct sidtable *t, unsigned sid, uint8_t v);

#endif
