/*
 * libFuzzer harness for wire/srclimit: the per-source limiter driven by
 * addresses a remote sender chooses (or spoofs) and the time, mixed with
 * pending sessions that authenticate, expire or give way.
 *
 * Input: ops, each a byte whose low 3 bits select:
 *   0  handshake from an address (below)
 *   1  pending session from an address, owner (next byte % 64), with
 *      in_use = pending count + (next byte % 8) established peers
 *   2  that owner authenticated or went away (next byte % 64)
 *   3  collect expired pending sessions
 *   4  let (next byte * 97) ms pass;  5  let 10 s pass
 *   6, 7  handshake from a random-looking IPv4 address (spoofed flood)
 * An address: a byte whose low 2 bits pick IPv4, IPv6, IPv4-mapped IPv6
 * or AF_UNIX, then its address bytes (4 or 16).
 * Checked against a shadow of the owners: an owner reported evicted or
 * expired was pending and is no more; no owner is pending twice; the
 * counts and the table stay within their bounds; no pending session
 * outlives its ttl past a collection.  Memory by ASan/LSan.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "wire/srclimit.h"

#define OWNERS 64
#define MAX_PEERS 24
#define TABLE 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct rd {
	const uint8_t *p;
	size_t n;
};

static uint8_t rd_byte(struct rd *r)
{
	uint8_t b;

	if (r->n == 0)
		return 0;
	b = *r->p++;
	r->n--;
	return b;
}

static void rd_bytes(struct rd *r, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = rd_byte(r);
}

static socklen_t rd_addr(struct rd *r, struct sockaddr_storage *ss)
{
	uint8_t kind = rd_byte(r) & 3;

	memset(ss, 0, sizeof(*ss));
	if (kind == 0) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		rd_bytes(r, (uint8_t *)&s4->sin_addr, 4);
		return sizeof(*s4);
	}
	if (kind == 1 || kind == 2) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		if (kind == 2) {
			s6->sin6_addr.s6_addr[10] = 0xff;
			s6->sin6_addr.s6_addr[11] = 0xff;
			rd_bytes(r, s6->sin6_addr.s6_addr + 12, 4);
		} else {
			rd_bytes(r, s6->sin6_addr.s6_addr, 16);
		}
		return sizeof(*s6);
	}
	((struct sockaddr_un *)ss)->sun_family = AF_UNIX;
	return sizeof(struct sockaddr_un);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char owner[OWNERS];
	int pending[OWNERS];
	uint64_t since[OWNERS];
	struct srclimit_config c;
	struct srclimit *sl;
	struct rd r = { data, size };
	uint64_t now = 1000, x = 0x9e3779b97f4a7c15ULL;
	unsigned npend = 0;

	srclimit_config_defaults(&c, MAX_PEERS);
	c.table_size = TABLE;
	c.pending_host = 3;
	c.pending_net = 6;
	sl = srclimit_new(&c, 42);
	if (sl == NULL)
		return 0;
	memset(pending, 0, sizeof(pending));
	memset(since, 0, sizeof(since));
	while (r.n > 0) {
		uint8_t op = rd_byte(&r);
		struct sockaddr_storage ss;
		void *ev = NULL, *got;
		unsigned o, extra;
		enum srclimit_verdict v;

		switch (op & 7) {
		case 0:
			(void)rd_addr(&r, &ss);
			(void)srclimit_hs_take(sl, (const struct sockaddr *)&ss, now);
			break;
		case 1:
			(void)rd_addr(&r, &ss);
			o = rd_byte(&r) % OWNERS;
			extra = rd_byte(&r) % 8;
			if (pending[o])
				break;   /* the listener never adds an owner twice */
			v = srclimit_pending_add(sl, (const struct sockaddr *)&ss, now, npend + extra,
			                         MAX_PEERS, &owner[o], &ev);
			if (v == SRCLIMIT_ADMIT_EVICT) {
				size_t e;

				assert(ev != NULL);
				e = (size_t)((char *)ev - owner);
				assert(e < OWNERS && pending[e] && e != o);
				assert(now - since[e] >= c.pending_grace_ms || now < since[e]);
				pending[e] = 0;
				npend--;
			} else {
				assert(ev == NULL);
			}
			if (v != SRCLIMIT_REFUSE) {
				pending[o] = 1;
				since[o] = now;
				npend++;
			}
			break;
		case 2:
			o = rd_byte(&r) % OWNERS;
			srclimit_pending_del(sl, &owner[o]);
			if (pending[o])
				npend--;
			pending[o] = 0;
			break;
		case 3:
			while ((got = srclimit_pending_expired(sl, now)) != NULL) {
				size_t e = (size_t)((char *)got - owner);

				assert(e < OWNERS && pending[e]);
				assert(now - since[e] >= c.pending_ttl_ms);
				pending[e] = 0;
				npend--;
			}
			for (o = 0; o < OWNERS; o++)
				assert(!pending[o] || now - since[o] < c.pending_ttl_ms);
			break;
		case 4:
			now += (uint64_t)rd_byte(&r) * 97;
			break;
		case 5:
			now += 10000;
			break;
		default: {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			memset(&ss, 0, sizeof(ss));
			s4->sin_family = AF_INET;
			memcpy(&s4->sin_addr, &x, 4);
			(void)srclimit_hs_take(sl, (const struct sockaddr *)&ss, now);
			break;
		}
		}
		assert(srclimit_pending_count(sl) == npend);
		assert(npend <= MAX_PEERS);
		assert(srclimit_table_used(sl) <= TABLE);
	}
	srclimit_free(sl);
	return 0;
}
