/*
 * Chained hash map; see hmap.h.  SipHash would be the textbook choice; a
 * seeded 64-bit FNV-1a mix is enough here because every map keyed by
 * network input is also bounded in size by a configured limit.
 */
#include "util/hmap.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

struct hmap_entry {
	struct hmap_entry *next;
	uint64_t hash;
	size_t keylen;
	uint8_t key[HMAP_KEY_MAX];
	void *value;
};

struct hmap {
	struct hmap_entry **buckets;
	size_t nbuckets;   /* power of two */
	size_t count;
};

static uint64_t hmap_seed;

static uint64_t hmap_hash(const void *key, size_t len)
{
	const uint8_t *p = key;
	uint64_t h = 0xcbf29ce484222325ULL ^ hmap_seed;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

struct hmap *hmap_new(void)
{
	struct hmap *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	if (hmap_seed == 0 && RAND_bytes((unsigned char *)&hmap_seed, sizeof(hmap_seed)) != 1)
		hmap_seed = 0x9e3779b97f4a7c15ULL;
	m->nbuckets = 16;
	m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
	if (m->buckets == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

void hmap_free(struct hmap *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct hmap_entry *e = m->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(m->buckets);
	free(m);
}

static struct hmap_entry **hmap_find(const struct hmap *m, const void *key,
                                     size_t keylen, uint64_t h)
{
	struct hmap_entry **pp = &m->buckets[h & (m->nbuckets - 1)];

	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->keylen == keylen &&
		    memcmp((*pp)->key, key, keylen) == 0)
			return pp;
	return pp;
}

void *hmap_get(const struct hmap *m, const void *key, size_t keylen)
{
	struct hmap_entry **pp;

	if (keylen > HMAP_KEY_MAX)
		return NULL;
	pp = hmap_find(m, key, keylen, hmap_hash(key, keylen));
	return *pp != NULL ? (*pp)->value : NULL;
}

static void hmap_grow(struct hmap *m)
{
	size_t n = m->nbuckets * 2;
	struct hmap_entry **nb = calloc(n, sizeof(*nb));

	if (nb == NULL)
		return;   /* keep working with longer chains */
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct hmap_entry *e = m->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(m->buckets);
	m->buckets = nb;
	m->nbuckets = n;
}

int hmap_put(struct hmap *m, const void *key, size_t keylen, void *value)
{
	uint64_t h;
	struct hmap_entry **pp, *e;

	if (keylen > HMAP_KEY_MAX)
		return -1;
	h = hmap_hash(key, keylen);
	pp = hmap_find(m, key, keylen, h);
	if (*pp != NULL) {
		(*pp)->value = value;
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -1;
	e->hash = h;
	e->keylen = keylen;
	memcpy(e->key, key, keylen);
	e->value = value;
	*pp = e;
	if (++m->count > m->nbuckets)
		hmap_grow(m);
	return 0;
}

void *hmap_del(struct hmap *m, const void *key, size_t keylen)
{
	struct hmap_entry **pp, *e;
	void *v;

	if (keylen > HMAP_KEY_MAX)
		return NULL;
	pp = hmap_find(m, key, keylen, hmap_hash(key, keylen));
	if (*pp == NULL)
		return NULL;
	e = *pp;
	*pp = e->next;
	v = e->value;
	free(e);
	m->count--;
	return v;
}

size_t hmap_count(const struct hmap *m)
{
	return m->count;
}

void hmap_foreach(const struct hmap *m, void (*fn)(void *value, void *arg), void *arg)
{
	for (size_t i = 0; i < m->nbuckets; i++)
		for (struct hmap_entry *e = m->buckets[i]; e != NULL; e = e->next)
			fn(e->value, arg);
}
