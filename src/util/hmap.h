/*
 * A small chained hash map from short byte keys (at most HMAP_KEY_MAX bytes,
 * e.g. a sockaddr or an integer id) to pointers.  The bucket array grows so
 * chains stay short; the hash is keyed with a per-process random seed so a
 * remote peer cannot choose colliding keys.
 */
#ifndef SCTPT_UTIL_HMAP_H
#define SCTPT_UTIL_HMAP_H

#include <stddef.h>
#include <stdint.h>

#define HMAP_KEY_MAX 32

struct hmap;

/* New empty map, or NULL on allocation failure. */
struct hmap *hmap_new(void);
/* Free the map (not the values).  NULL is fine. */
void hmap_free(struct hmap *m);
/* Value for key, or NULL. */
void *hmap_get(const struct hmap *m, const void *key, size_t keylen);
/* Insert or replace.  0, or -1 on allocation failure or key too long. */
int hmap_put(struct hmap *m, const void *key, size_t keylen, void *value);
/* Remove key; returns the old value or NULL. */
void *hmap_del(struct hmap *m, const void *key, size_t keylen);
size_t hmap_count(const struct hmap *m);
/* Call fn for each value; fn must not modify the map. */
void hmap_foreach(const struct hmap *m, void (*fn)(void *value, void *arg), void *arg);

#endif
