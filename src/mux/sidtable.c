/*
 * Stream table; see sidtable.h.  Allocation searches round-robin from
 * the last id handed out, so freed ids are reused late rather than at
 * once: a just-closed id is the least likely to be confused in logs.
 */
#include "mux/sidtable.h"

#include <stdlib.h>

int sidtable_init(struct sidtable *t, unsigned n)
{
	t->slot = calloc(n > 0 ? n : 1, sizeof(*t->slot));
	t->tomb = calloc(n > 0 ? n : 1, 1);
	if (t->slot == NULL || t->tomb == NULL) {
		free(t->slot);
		free(t->tomb);
		t->slot = NULL;
		t->tomb = NULL;
		return -1;
	}
	t->n = n;
	t->next = 1;
	t->used = 0;
	t->tombs = 0;
	return 0;
}

void sidtable_free(struct sidtable *t)
{
	free(t->slot);
	free(t->tomb);
	t->slot = NULL;
	t->tomb = NULL;
	t->n = 0;
	t->used = 0;
	t->tombs = 0;
}

int sidtable_alloc(const struct sidtable *t, unsigned parity)
{
	unsigned sid = t->next;

	if (t->n < 2)
		return -1;
	for (unsigned tries = 0; tries < t->n; tries++, sid++) {
		if (sid >= t->n)
			sid = 1;
		if ((sid & 1) == (parity & 1) && t->slot[sid] == NULL && t->tomb[sid] == 0)
			return (int)sid;
	}
	return -1;
}

void *sidtable_get(const struct sidtable *t, unsigned sid)
{
	if (sid == 0 || sid >= t->n)
		return NULL;
	return t->slot[sid];
}

int sidtable_set(struct sidtable *t, unsigned sid, void *v)
{
	if (sid == 0 || sid >= t->n || t->slot[sid] != NULL || t->tomb[sid] != 0 || v == NULL)
		return -1;
	t->slot[sid] = v;
	t->used++;
	t->next = sid + 1;
	return 0;
}

void sidtable_clear(struct sidtable *t, unsigned sid)
{
	if (sid == 0 || sid >= t->n || t->slot[sid] == NULL)
		return;
	t->slot[sid] = NULL;
	t->used--;
}

uint8_t sidtable_tomb(const struct sidtable *t, unsigned sid)
{
	if (sid == 0 || sid >= t->n)
		return 0;
	return t->tomb[sid];
}

int sidtable_set_tomb(struct sidtable *t, unsigned sid, uint8_t v)
{
	if (sid == 0 || sid >= t->n || t->slot[sid] != NULL)
		return -1;
	if (t->tomb[sid] == 0 && v != 0)
		t->tombs++;
	else if (t->tomb[sid] != 0 && v == 0)
		t->tombs--;
	t->tomb[sid] = v;
	return 0;
}
