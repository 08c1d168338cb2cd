/*
 * libFuzzer harness for the SOCKS negotiation state machine.
 *
 * Each input is negotiated twice: in one piece, and as a caller with a
 * growing buffer would see it when the bytes arrive in small pieces whose
 * sizes come from the input itself.  Besides the memory-safety checks of
 * the sanitizers, both runs must end alike: how TCP happens to split the
 * bytes must never change what a client gets.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "front/socks.h"

/* Fails in release builds too, unlike assert(). */
#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* How one negotiation ended, for comparing the two runs. */
struct outcome {
	struct socks_state st;
	int rc;
	size_t used;                       /* total bytes consumed */
	uint8_t replies[4 * SOCKS_REPLY_MAX];
	size_t replylen;                   /* total reply bytes */
};

/* One socks_step() call with the invariants every call must keep. */
static int checked_step(struct outcome *o, const uint8_t *in, size_t n)
{
	uint8_t reply[SOCKS_REPLY_MAX];
	size_t used = (size_t)-1, replylen = (size_t)-1;
	int rc = socks_step(&o->st, in, n, &used, reply, &replylen);

	CHECK(rc == SOCKS_ERROR || rc == SOCKS_NEED_MORE || rc == SOCKS_DONE);
	CHECK(used <= n);
	CHECK(replylen <= SOCKS_REPLY_MAX);
	/* One whole negotiation never sends more than greeting+auth+reply. */
	CHECK(o->replylen + replylen <= sizeof(o->replies));
	memcpy(o->replies + o->replylen, reply, replylen);
	o->replylen += replylen;
	o->used += used;
	o->rc = rc;
	return rc;
}

static void check_final(struct outcome *o)
{
	const struct socks_request *req = &o->st.req;
	uint8_t out[SOCKS_REPLY_MAX];
	char buf[300];
	size_t before = o->replylen;

	if (o->rc == SOCKS_DONE) {
		CHECK(req->version == 4 || req->version == 5);
		/* UDP ASSOCIATE exists only in SOCKS5 (docs/udp-relay.md). */
		CHECK(req->cmd == SOCKS_CMD_CONNECT ||
		      (req->cmd == SOCKS_CMD_UDP_ASSOCIATE && req->version == 5));
		CHECK(req->dest.atyp == SOCKS_ATYP_IPV4 ||
		      req->dest.atyp == SOCKS_ATYP_IPV6 ||
		      req->dest.atyp == SOCKS_ATYP_DOMAIN);
		if (req->dest.atyp == SOCKS_ATYP_DOMAIN) {
			size_t dlen = strnlen(req->dest.domain,
			                      sizeof(req->dest.domain));

			CHECK(dlen >= 1 && dlen <= 255);
		}
		CHECK(req->user_len < SOCKS_USER_MAX);
		CHECK(req->pass_len <= SOCKS_PASS_MAX);
		CHECK(socks_reply(&o->st, SOCKS5_SUCCEEDED, out) <= SOCKS_REPLY_MAX);
		socks_dest_format(&req->dest, buf, sizeof(buf));
		CHECK(memchr(buf, '\0', sizeof(buf)) != NULL);
	}
	if (o->rc == SOCKS_ERROR)
		CHECK(o->st.error != NULL);
	/* The end is sticky and consumes nothing more. */
	if (o->rc != SOCKS_NEED_MORE) {
		size_t used_before = o->used;
		int rc = o->rc;

		CHECK(checked_step(o, (const uint8_t *)"\x05\x01\x00", 3) == rc);
		CHECK(o->used == used_before && o->replylen == before);
	}
}

static void run_whole(struct outcome *o, const uint8_t *data, size_t size)
{
	socks_state_init(&o->st);
	checked_step(o, data, size);
}

/*
 * Bytes arrive in pieces of 1..8; piece k's size is read from data[k], so
 * the fuzzer steers the splitting through the same bytes it mutates.
 */
static void run_split(struct outcome *o, const uint8_t *data, size_t size)
{
	size_t avail = 0, k = 0;

	socks_state_init(&o->st);
	do {
		size_t piece = size > 0 ? 1 + data[k++ % size] % 8 : 0;

		avail += piece < size - avail ? piece : size - avail;
		checked_step(o, data + o->used, avail - o->used);
	} while (o->rc == SOCKS_NEED_MORE && avail < size);
}

static void check_same(const struct outcome *a, const struct outcome *b)
{
	const struct socks_request *x = &a->st.req, *y = &b->st.req;

	CHECK(a->rc == b->rc);
	CHECK(a->used == b->used);
	CHECK(a->replylen == b->replylen);
	CHECK(memcmp(a->replies, b->replies, a->replylen) == 0);
	CHECK(a->st.phase == b->st.phase);
	if (a->rc == SOCKS_ERROR)
		CHECK(strcmp(a->st.error, b->st.error) == 0);
	if (a->rc != SOCKS_DONE)
		return;
	CHECK(x->version == y->version && x->cmd == y->cmd);
	CHECK(memcmp(&x->dest, &y->dest, sizeof(x->dest)) == 0);
	CHECK(x->has_auth == y->has_auth);
	CHECK(x->user_len == y->user_len && x->pass_len == y->pass_len);
	CHECK(memcmp(x->user, y->user, x->user_len) == 0);
	CHECK(memcmp(x->pass, y->pass, x->pass_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct outcome whole, split;

	memset(&whole, 0, sizeof(whole));
	memset(&split, 0, sizeof(split));
	run_whole(&whole, data, size);
	run_split(&split, data, size);
	check_same(&whole, &split);
	check_final(&whole);
	check_final(&split);
	return 0;
}
