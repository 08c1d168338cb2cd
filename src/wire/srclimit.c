/*
 * Per-source limits of the handshake path; see srclimit.h.  Everything is
 * fixed-size from srclimit_new() on: two bucket tables (hosts, networks) of
 * 8-way sets with least-recently-used eviction, and the pending sessions in
 * an array as long as the peer limit.
 */
#include "wire/srclimit.h"

#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#define SRC_WAYS 8                  /* entries per set of a bucket table */
#define SRC_KEY_LEN 9               /* kind, then up to 8 bytes of prefix */

enum src_kind { SRC_V4_HOST = 1, SRC_V4_NET, SRC_V6_HOST, SRC_V6_NET, SRC_OTHER };

struct src_key {
	uint8_t b[SRC_KEY_LEN];
};

struct src_bucket {
	struct src_key key;
	int used;
	double tokens;
	uint64_t last_ms;               /* last refill, and last use (for eviction) */
};

struct src_table {
	struct src_bucket *e;
	size_t nsets;
	size_t used;
	double rate, burst;
};

struct src_pending {
	void *owner;
	struct src_key host, net;
	uint64_t since_ms;
};

struct srclimit {
	struct srclimit_config cfg;
	uint64_t seed;
	struct src_table hosts, nets;
	struct src_pending *pend;
	unsigned npend;
};

void srclimit_config_defaults(struct srclimit_config *c, unsigned max_peers)
{
	memset(c, 0, sizeof(*c));
	c->host_rate = 16;
	c->host_burst = 32;
	c->net_rate = 64;
	c->net_burst = 128;
	c->table_size = 4096;
	c->pending_max = max_peers;
	c->pending_host = 16;
	c->pending_net = 64;
	c->pending_ttl_ms = 10000;
	c->pending_grace_ms = 2000;
}

/* ---------- prefixes ---------- */

/*
 * The host and network prefixes of an address.  An IPv4-mapped IPv6
 * address (a dual-stack socket) counts as the IPv4 address it carries.
 */
static void src_prefixes(const struct sockaddr *sa, struct src_key *host, struct src_key *net)
{
	memset(host, 0, sizeof(*host));
	memset(net, 0, sizeof(*net));
	if (sa != NULL && sa->sa_family == AF_INET) {
		const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;

		host->b[0] = SRC_V4_HOST;
		memcpy(host->b + 1, a, 4);
		net->b[0] = SRC_V4_NET;
		memcpy(net->b + 1, a, 3);
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		const uint8_t *a = a6->s6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			host->b[0] = SRC_V4_HOST;
			memcpy(host->b + 1, a + 12, 4);
			net->b[0] = SRC_V4_NET;
			memcpy(net->b + 1, a + 12, 3);
		} else {
			host->b[0] = SRC_V6_HOST;
			memcpy(host->b + 1, a, 8);
			net->b[0] = SRC_V6_NET;
			memcpy(net->b + 1, a, 6);
		}
	} else {
		host->b[0] = SRC_OTHER;
		net->b[0] = SRC_OTHER;
	}
}

static int key_eq(const struct src_key *a, const struct src_key *b)
{
	return memcmp(a->b, b->b, SRC_KEY_LEN) == 0;
}

/* A 64-bit mix (splitmix64's finalizer). */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/*
 * Set index of a key, keyed with the seed so a sender cannot aim its
 * spoofed sources at one set.  (A collision only evicts, and an evicted
 * source starts with a full bucket: aiming gains an attacker nothing the
 * global bucket does not already bound.)
 */
static size_t key_set(const struct srclimit *sl, const struct src_table *t,
                      const struct src_key *k)
{
	uint64_t a = 0, b = 0;

	memcpy(&a, k->b, 8);
	b = k->b[8];
	return (size_t)(mix64(mix64(sl->seed ^ a) ^ b ^ 0x9e3779b97f4a7c15ULL) % t->nsets);
}

/* ---------- bucket tables ---------- */

static int table_init(struct src_table *t, size_t entries, double rate, double burst)
{
	t->nsets = entries / SRC_WAYS > 0 ? entries / SRC_WAYS : 1;
	t->e = calloc(t->nsets * SRC_WAYS, sizeof(*t->e));
	t->used = 0;
	t->rate = rate;
	t->burst = burst;
	return t->e != NULL ? 0 : -1;
}

static void bucket_refill(const struct src_table *t, struct src_bucket *b, uint64_t now_ms)
{
	if (now_ms <= b->last_ms)
		return;   /* same instant, or a clock that went back: nothing to add */
	b->tokens += (double)(now_ms - b->last_ms) / 1000.0 * t->rate;
	if (b->tokens > t->burst)
		b->tokens = t->burst;
	b->last_ms = now_ms;
}

/*
 * The bucket of k, refilled to now_ms; a new one (full) in place of the
 * least recently used entry of its set if k has none.
 */
static struct src_bucket *table_get(const struct srclimit *sl, struct src_table *t,
                                    const struct src_key *k, uint64_t now_ms)
{
	struct src_bucket *set = &t->e[key_set(sl, t, k) * SRC_WAYS], *victim = NULL;

	for (unsigned i = 0; i < SRC_WAYS; i++) {
		struct src_bucket *b = &set[i];

		if (b->used && key_eq(&b->key, k)) {
			bucket_refill(t, b, now_ms);
			return b;
		}
		/* An empty way beats any used one; among used ones, the stalest. */
		if (victim == NULL || (victim->used && (!b->used || b->last_ms < victim->last_ms)))
			victim = b;
	}
	if (!victim->used)
		t->used++;
	victim->key = *k;
	victim->used = 1;
	victim->tokens = t->burst;
	victim->last_ms = now_ms;
	return victim;
}

/* ---------- the limiter ---------- */

struct srclimit *srclimit_new(const struct srclimit_config *c, uint64_t seed)
{
	struct srclimit *sl = calloc(1, sizeof(*sl));

	if (sl == NULL)
		return NULL;
	sl->cfg = *c;
	sl->seed = seed;
	if (table_init(&sl->hosts, c->table_size / 2, c->host_rate, c->host_burst) < 0 ||
	    table_init(&sl->nets, c->table_size / 2, c->net_rate, c->net_burst) < 0)
		goto fail;
	if (c->pending_max > 0) {
		sl->pend = calloc(c->pending_max, sizeof(*sl->pend));
		if (sl->pend == NULL)
			goto fail;
	}
	return sl;
fail:
	srclimit_free(sl);
	return NULL;
}

void srclimit_free(struct srclimit *sl)
{
	if (sl == NULL)
		return;
	free(sl->hosts.e);
	free(sl->nets.e);
	free(sl->pend);
	free(sl);
}

int srclimit_hs_take(struct srclimit *sl, const struct sockaddr *sa, uint64_t now_ms)
{
	struct src_key hk, nk;
	struct src_bucket *h, *n;

	src_prefixes(sa, &hk, &nk);
	h = table_get(sl, &sl->hosts, &hk, now_ms);
	n = table_get(sl, &sl->nets, &nk, now_ms);
	if (h->tokens < 1.0 || n->tokens < 1.0)
		return 0;
	h->tokens -= 1.0;
	n->tokens -= 1.0;
	return 1;
}

size_t srclimit_table_used(const struct srclimit *sl)
{
	return sl->hosts.used + sl->nets.used;
}

/* ---------- pending sessions ---------- */

static void *pending_remove(struct srclimit *sl, unsigned i)
{
	void *owner = sl->pend[i].owner;

	sl->pend[i] = sl->pend[--sl->npend];
	memset(&sl->pend[sl->npend], 0, sizeof(sl->pend[sl->npend]));
	return owner;
}

static uint64_t age_ms(const struct src_pending *p, uint64_t now_ms)
{
	return now_ms > p->since_ms ? now_ms - p->since_ms : 0;
}

enum srclimit_verdict srclimit_pending_add(struct srclimit *sl, const struct sockaddr *sa,
                                           uint64_t now_ms, unsigned in_use,
                                           unsigned max_in_use, void *owner, void **evicted)
{
	struct src_key hk, nk;
	unsigned same_host = 0, same_net = 0, oldest = 0;
	int have_oldest = 0;
	enum srclimit_verdict v = SRCLIMIT_ADMIT;

	*evicted = NULL;
	if (owner == NULL)
		return SRCLIMIT_REFUSE;
	src_prefixes(sa, &hk, &nk);
	for (unsigned i = 0; i < sl->npend; i++) {
		const struct src_pending *p = &sl->pend[i];

		same_host += key_eq(&p->host, &hk);
		same_net += key_eq(&p->net, &nk);
		if (age_ms(p, now_ms) >= sl->cfg.pending_grace_ms &&
		    (!have_oldest || p->since_ms < sl->pend[oldest].since_ms)) {
			oldest = i;
			have_oldest = 1;
		}
	}
	if (same_host >= sl->cfg.pending_host || same_net >= sl->cfg.pending_net)
		return SRCLIMIT_REFUSE;
	if (in_use >= max_in_use || sl->npend >= sl->cfg.pending_max) {
		/* Full: the oldest pending session that had its chance gives way. */
		if (!have_oldest)
			return SRCLIMIT_REFUSE;
		*evicted = pending_remove(sl, oldest);
		v = SRCLIMIT_ADMIT_EVICT;
	}
	sl->pend[sl->npend].owner = owner;
	sl->pend[sl->npend].host = hk;
	sl->pend[sl->npend].net = nk;
	sl->pend[sl->npend].since_ms = now_ms;
	sl->npend++;
	return v;
}

void srclimit_pending_del(struct srclimit *sl, const void *owner)
{
	for (unsigned i = 0; i < sl->npend; i++)
		if (sl->pend[i].owner == owner) {
			(void)pending_remove(sl, i);
			return;
		}
}

void *srclimit_pending_expired(struct srclimit *sl, uint64_t now_ms)
{
	for (unsigned i = 0; i < sl->npend; i++)
		if (age_ms(&sl->pend[i], now_ms) >= sl->cfg.pending_ttl_ms)
			return pending_remove(sl, i);
	return NULL;
}

unsigned srclimit_pending_count(const struct srclimit *sl)
{
	return sl->npend;
}
