/*
 * Loopback source address -> real client address, on the bridge.  When the
 * combiner connects to an inner hop it binds a loopback source it chose,
 * records it here with the client's real address, and takes the entry back
 * when that hop's Extended ORPort connection names the same source in its
 * USERADDR.  Bounded (a full table refuses, it never grows) and entries
 * left unclaimed expire, so a child that never reports cannot fill it.
 * A linear scan: the table holds connections in the middle of their
 * set-up only, a few hundred at most.
 */
#include "chain/chain.h"

#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "util/netaddr.h"

int chain_addrmap_init(struct chain_addrmap *m, size_t cap, uint64_t ttl_ms)
{
	memset(m, 0, sizeof(*m));
	if (cap == 0)
		return -1;
	m->e = calloc(cap, sizeof(*m->e));
	if (m->e == NULL)
		return -1;
	m->cap = cap;
	m->ttl_ms = ttl_ms;
	return 0;
}

void chain_addrmap_free(struct chain_addrmap *m)
{
	free(m->e);
	memset(m, 0, sizeof(*m));
}

static int same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	uint8_t ka[NETADDR_KEY_MAX], kb[NETADDR_KEY_MAX];
	size_t na = netaddr_key(a, ka), nb = netaddr_key(b, kb);

	return na > 0 && na == nb && memcmp(ka, kb, na) == 0 &&
	       netaddr_port(a) == netaddr_port(b);
}

static void drop(struct chain_addrmap *m, struct chain_addrmap_entry *e)
{
	e->used = 0;
	m->n--;
}

size_t chain_addrmap_expire(struct chain_addrmap *m, uint64_t now_ms)
{
	size_t k = 0;

	for (size_t i = 0; i < m->cap; i++)
		if (m->e[i].used && now_ms - m->e[i].added_ms >= m->ttl_ms) {
			drop(m, &m->e[i]);
			k++;
		}
	return k;
}

static struct chain_addrmap_entry *find(struct chain_addrmap *m, const struct sockaddr *key)
{
	size_t seen = 0;

	/* Stop once every entry in use has been looked at. */
	for (size_t i = 0; i < m->cap && seen < m->n; i++) {
		if (!m->e[i].used)
			continue;
		seen++;
		if (same_addr((const struct sockaddr *)&m->e[i].key, key))
			return &m->e[i];
	}
	return NULL;
}

int chain_addrmap_put(struct chain_addrmap *m, const struct sockaddr *key, const char *real,
                      uint64_t now_ms)
{
	struct chain_addrmap_entry *e;
	size_t klen = key->sa_family == AF_INET ? sizeof(struct sockaddr_in)
	              : key->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : 0;

	if (klen == 0 || strlen(real) >= sizeof(e->real))
		return -1;
	e = find(m, key);
	if (e == NULL) {
		if (m->n >= m->cap)
			chain_addrmap_expire(m, now_ms);
		for (size_t i = 0; i < m->cap && e == NULL; i++)
			if (!m->e[i].used)
				e = &m->e[i];
		if (e == NULL)
			return -1;
		m->n++;
	}
	memset(e, 0, sizeof(*e));
	memcpy(&e->key, key, klen);
	strcpy(e->real, real);
	e->added_ms = now_ms;
	e->seq = m->next_seq++;
	e->used = 1;
	return 0;
}

static int take(struct chain_addrmap *m, struct chain_addrmap_entry *e, char *out,
                size_t outlen, uint64_t now_ms)
{
	int fresh = now_ms - e->added_ms < m->ttl_ms;

	if (fresh) {
		if (strlen(e->real) >= outlen)
			return 0;
		strcpy(out, e->real);
	}
	drop(m, e);
	return fresh;
}

int chain_addrmap_take(struct chain_addrmap *m, const char *useraddr, char *out,
                       size_t outlen, uint64_t now_ms)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct chain_addrmap_entry *e;

	if (pt_parse_addr(useraddr, 0, &ss, &len) < 0)
		return 0;
	e = find(m, (struct sockaddr *)&ss);
	return e != NULL ? take(m, e, out, outlen, now_ms) : 0;
}

int chain_addrmap_take_oldest(struct chain_addrmap *m, char *out, size_t outlen,
                              uint64_t now_ms)
{
	struct chain_addrmap_entry *old = NULL;

	chain_addrmap_expire(m, now_ms);
	for (size_t i = 0; i < m->cap; i++)
		if (m->e[i].used && (old == NULL || m->e[i].seq < old->seq))
			old = &m->e[i];
	return old != NULL ? take(m, old, out, outlen, now_ms) : 0;
}

void chain_addrmap_remove(struct chain_addrmap *m, const struct sockaddr *key)
{
	struct chain_addrmap_entry *e = find(m, key);

	if (e != NULL)
		drop(m, e);
}
