/*
 * libFuzzer harness for the UDP relay (docs/udp-relay.md).  The first
 * byte picks what the rest is:
 *
 *   0  a datagram from a SOCKS client: socks_udp_decode() must agree with
 *      a reference written from RFC 1928 section 7, and what it accepts
 *      must re-encode to the same header bytes;
 *   1  a tunnel datagram: proto_decode_udp_hdr() likewise, against
 *      docs/streams.md;
 *   2, 3  records driving a mux session (2 server, 3 client) with UDP
 *      associations through a fake association:
 *        0x00 sid ppid len_hi len_lo bytes...  a whole message from the peer
 *        0x08 sid ppid len bytes...            a part without EOR
 *        0x01                                  client: open a UDP association
 *        0x02 sid len                          the owner sends a datagram
 *        0x03 sid                              the owner closes
 *        0x04                                  the association is full / not
 *
 * Checked: only the UDP relay's messages and RST/CLOSE are sent, UDP_DGRAM
 * always unordered with a header that decodes; nothing follows a terminal
 * message within a life; the queues stay within their bounds; the
 * session's counters agree with its table.  Leaks are LeakSanitizer's.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "front/socks.h"
#include "mux/mux_internal.h"
#include "mux/proto.h"
#include "util/log.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---------- header codecs ---------- */

static size_t ref_alen(uint8_t atyp, const uint8_t *p, size_t n)
{
	switch (atyp) {
	case 1: return 4;
	case 4: return 16;
	case 3: return n >= 1 ? 1 + (size_t)p[0] : 0;
	}
	return 0;
}

static void check_socks(const uint8_t *p, size_t n)
{
	struct socks_dest d;
	uint8_t out[SOCKS_UDP_HDR_MAX];
	size_t hl, alen;
	int r = socks_udp_decode(p, n, &d, &hl), want;

	if (n < 4 || p[0] != 0 || p[1] != 0)
		want = SOCKS_UDP_BAD;
	else if (p[2] != 0)
		want = SOCKS_UDP_FRAG;
	else if (p[3] != 1 && p[3] != 3 && p[3] != 4)
		want = SOCKS_UDP_ATYP;
	else if (p[3] == 3 && n < 5)
		want = SOCKS_UDP_BAD;
	else if (n < 4 + (alen = ref_alen(p[3], p + 4, n - 4)) + 2)
		want = SOCKS_UDP_BAD;
	else if (p[3] == 3 && (p[4] == 0 || memchr(p + 5, 0, p[4]) != NULL))
		want = SOCKS_UDP_BAD;
	else if (p[4 + alen] == 0 && p[4 + alen + 1] == 0)
		want = SOCKS_UDP_BAD;
	else
		want = SOCKS_UDP_OK;
	CHECK(r == want);
	if (r != SOCKS_UDP_OK)
		return;
	CHECK(hl <= n);
	CHECK(socks_udp_encode(&d, out, sizeof(out)) == hl);
	CHECK(memcmp(out, p, hl) == 0);
}

static void check_tunnel(const uint8_t *p, size_t n)
{
	struct mux_dest d;
	uint8_t out[MUX_UDP_HDR_MAX];
	size_t hl, alen = 0;
	int r = proto_decode_udp_hdr(p, n, &d, &hl), want;

	if (n < 1)
		want = -1;
	else if (p[0] != 1 && p[0] != 3 && p[0] != 4)
		want = -2;
	else if (p[0] == 3 && (n < 2 || p[1] == 0))
		want = -1;
	else if (n < 1 + (alen = ref_alen(p[0], p + 1, n - 1)) + 2)
		want = -1;
	else if (n - (1 + alen + 2) > MUX_UDP_PAYLOAD_MAX)
		want = -1;
	else if (p[0] == 3 && memchr(p + 2, 0, p[1]) != NULL)
		want = -1;
	else if (p[1 + alen] == 0 && p[2 + alen] == 0)
		want = -1;
	else
		want = 0;
	CHECK(r == want);
	if (r != 0)
		return;
	CHECK(hl == 1 + alen + 2);
	CHECK(proto_encode_udp_hdr(&d, out, sizeof(out)) == (int)hl);
	CHECK(memcmp(out, p, hl) == 0);
}

/* ---------- the mux ---------- */

#define NSTREAMS 16

static struct mux_session *m;
static int again;
static int term[NSTREAMS];         /* we sent the terminal message of this life */
static struct mux_stream *owned[NSTREAMS];

static int fake_any(uint16_t sid, uint32_t ppid, const uint8_t *p, size_t n, int unordered)
{
	CHECK(sid > 0 && sid < NSTREAMS);
	CHECK(n > 0);
	CHECK(ppid == MUX_UDP_OPEN || ppid == MUX_UDP_OK || ppid == MUX_UDP_DGRAM ||
	      ppid == MUX_RST || ppid == MUX_CLOSE);
	CHECK(unordered == (ppid == MUX_UDP_DGRAM));
	if (again)
		return MUX_SEND_AGAIN;
	CHECK(!term[sid]);
	if (ppid == MUX_UDP_DGRAM) {
		struct mux_dest d;
		size_t hl;

		CHECK(proto_decode_udp_hdr(p, n, &d, &hl) == 0);
	}
	if (ppid == MUX_RST || ppid == MUX_CLOSE)
		term[sid] = 1;
	return 0;
}

static int fake_send(void *ctx, uint16_t sid, uint32_t ppid, const void *p, size_t n)
{
	return fake_any(sid, ppid, p, n, 0);
}

static int fake_send_unordered(void *ctx, uint16_t sid, uint32_t ppid, const void *p, size_t n)
{
	return fake_any(sid, ppid, p, n, 1);
}

static unsigned fake_streams(void *ctx)
{
	return NSTREAMS;
}

static void fake_free(void *ctx)
{
}

/*
 * Does this message start a new life on sid (session.c)?  On a free id of
 * the peer's parity: an opening message (server: OPEN, LISTEN, UDP_OPEN;
 * client: FWD_OPEN), or a whole message of a type the session does not
 * know, which it refuses with RST 0x07.
 */
static int starts_life(struct mux_session *ses, int is_client, uint16_t sid, uint32_t ppid,
                       int eor)
{
	if (sid >= NSTREAMS || sidtable_get(&ses->st, sid) != NULL ||
	    sidtable_tomb(&ses->st, sid) != 0)
		return 0;
	if ((sid & 1) != (is_client ? 0 : 1))
		return 0;
	if ((ppid < MUX_OPEN || ppid > MUX_FWD_OPEN) && (ppid < MUX_UDP_OPEN || ppid > MUX_UDP_DGRAM))
		return eor;
	return is_client ? ppid == MUX_FWD_OPEN :
	       ppid == MUX_OPEN || ppid == MUX_LISTEN || ppid == MUX_UDP_OPEN;
}

static const struct mux_sctp_ops fake_ops = {
	.send = fake_send,
	.streams = fake_streams,
	.free = fake_free,
	.send_unordered = fake_send_unordered,
};

static void cb_opened(struct mux_stream *s, int err, void *arg)
{
	if (err != 0)
		owned[s->sid] = NULL;
}

static void cb_dgram(struct mux_stream *s, const struct mux_dest *a, const uint8_t *p, size_t n,
                     void *arg)
{
	CHECK(a->port != 0);
	CHECK(n <= MUX_UDP_PAYLOAD_MAX);
	CHECK(!m->client || a->type != MUX_DEST_DOMAIN);
}

static void cb_closed(struct mux_stream *s, uint8_t code, void *arg)
{
	owned[s->sid] = NULL;
}

static const struct mux_udp_cbs owner = {
	.opened = cb_opened, .dgram = cb_dgram, .closed = cb_closed,
};

static void cb_up(struct mux_session *mm, void *arg)
{
}

static void cb_down(struct mux_session *mm, const char *why, void *arg)
{
}

static void cb_stream_open(struct mux_session *mm, struct mux_stream *s,
                           const struct mux_dest *d, void *arg)
{
	mux_stream_reject(s, MUX_ERR_NOT_ALLOWED);
}

static void cb_udp_open(struct mux_session *mm, struct mux_stream *s, void *arg)
{
	owned[s->sid] = s;
	mux_udp_accept(s, &owner, NULL);
}

static const struct mux_session_cbs cbs = {
	.up = cb_up, .down = cb_down, .stream_open = cb_stream_open, .udp_open = cb_udp_open,
};

static void check_session(void)
{
	struct mux_stats st;
	unsigned n = 0, udp = 0;

	mux_session_stats(m, &st);
	for (unsigned i = 1; i < m->st.n; i++) {
		struct mux_stream *s = sidtable_get(&m->st, i);

		if (s != NULL) {
			n++;
			udp += s->udp != NULL;
		}
	}
	CHECK(st.streams_active == n);
	CHECK(st.udp_active == udp);
	CHECK(udp <= m->cfg.max_udp);
	CHECK(st.udp_queued <= m->cfg.udp_budget);
}

struct input {
	const uint8_t *p;
	size_t n;
};

static int get0(struct input *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

static const uint8_t *payload(struct input *in, size_t len)
{
	static uint8_t buf[65536 + 16];
	size_t take = len < in->n ? len : in->n;

	memcpy(buf, in->p, take);
	memset(buf + take, 0, len - take);
	in->p += take;
	in->n -= take;
	return buf;
}

static void run_mux(struct input *in, int client)
{
	static uint8_t dgram[2048];
	struct mux_config cfg;

	mux_config_defaults(&cfg);
	cfg.max_udp = 4;
	cfg.udp_budget = 64 * 1024;
	memset(term, 0, sizeof(term));
	memset(owned, 0, sizeof(owned));
	again = 0;
	m = mux_session_new_ops(&cfg, &cbs, NULL, client, &fake_ops, NULL);
	if (m == NULL)
		return;
	mux_session_on_up(m);
	while (in->n > 0 && !m->down) {
		int op = get0(in), sid;
		size_t len;

		switch (op & 0x0f) {
		case 0x00:
		case 0x08: {
			uint16_t s = (uint16_t)get0(in);
			uint32_t ppid = (uint32_t)get0(in);
			const uint8_t *p;

			len = (size_t)get0(in);
			if ((op & 0x0f) == 0)
				len = len << 8 | (size_t)get0(in);
			p = payload(in, len);
			if (starts_life(m, client, s, ppid, (op & 0x0f) == 0))
				term[s] = 0;
			mux_session_on_message(m, s, ppid, p, len, (op & 0x0f) == 0);
			break;
		}
		case 0x01: {
			struct mux_stream *s;

			int id = sidtable_alloc(&m->st, 1);

			if (!client)
				break;
			if (id > 0 && id < NSTREAMS)
				term[id] = 0;
			s = mux_udp_open(m, &owner, NULL);
			if (s != NULL)
				owned[s->sid] = s;
			break;
		}
		case 0x02: {
			struct mux_dest d = { .type = MUX_DEST_IPV4, .port = 53 };

			sid = get0(in) % NSTREAMS;
			len = (size_t)get0(in) * 8;
			if (owned[sid] != NULL)
				(void)mux_udp_send(owned[sid], &d, dgram, len);
			break;
		}
		case 0x03:
			sid = get0(in) % NSTREAMS;
			if (owned[sid] != NULL) {
				struct mux_stream *s = owned[sid];

				owned[sid] = NULL;
				mux_udp_close(s);
			}
			break;
		case 0x04:
			again = !again;
			if (!again)
				mux_session_on_writable(m);
			break;
		default:
			break;
		}
		check_session();
	}
	again = 0;
	mux_session_free(m);
	m = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in;

	if (size < 1)
		return 0;
	log_set_level(LOG_LEVEL_NONE);
	in.p = data + 1;
	in.n = size - 1;
	switch (data[0] % 4) {
	case 0: check_socks(in.p, in.n); break;
	case 1: check_tunnel(in.p, in.n); break;
	default: run_mux(&in, data[0] % 4 == 3); break;
	}
	return 0;
}
