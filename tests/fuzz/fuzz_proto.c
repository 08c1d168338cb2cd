/*
 * libFuzzer harness for the stream protocol codec (src/mux/proto.c) and the
 * per-stream credit accounting (src/mux/credit.c).
 *
 * Each input is first decoded as every control payload a peer can send.
 * The decoders must agree with a reference written from docs/streams.md,
 * and whatever they accept must re-encode to the very same bytes.
 *
 * The same bytes then drive a sender and a receiver through the credit
 * accounting: each byte picks an operation (send, deliver DATA, write to
 * TCP, grant, send the grant, deliver CREDIT, or a peer overrunning its
 * credit or granting nonsense) and the following bytes its arguments.  After
 * every step the books must balance exactly, which is what bounds the
 * receiver's buffer by its window.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mux/credit.h"
#include "mux/proto.h"

/* Fails in release builds too, unlike assert(). */
#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* ---- decoders ---- */

/* docs/streams.md, OPEN: 0 valid, -2 unknown type, -1 otherwise. */
static int ref_open(const uint8_t *p, size_t n)
{
	size_t alen;
	uint16_t port;

	if (n < 4 || p[0] != 1)
		return -1;
	switch (p[1]) {
	case 0: alen = 0; break;
	case 1: alen = 4; break;
	case 4: alen = 16; break;
	case 3: alen = 1 + (size_t)p[2]; break;
	default: return -2;
	}
	if (n != 2 + alen + 2)
		return -1;
	if (p[1] == 3 && (p[2] == 0 || memchr(p + 3, 0, p[2]) != NULL))
		return -1;
	port = be16(p + n - 2);
	if ((p[1] == 0) != (port == 0))
		return -1;
	return 0;
}

static void check_open(const uint8_t *data, size_t size)
{
	struct mux_dest d;
	uint8_t out[MUX_OPEN_MAX + 1];
	char str[300];
	int r, n;

	memset(&d, 0xaa, sizeof(d));
	r = proto_decode_open(data, size, &d);
	CHECK(r == ref_open(data, size));
	if (r != 0)
		return;

	CHECK(d.type == data[1]);
	CHECK(d.port == be16(data + size - 2));
	switch (d.type) {
	case MUX_DEST_IPV4:
		CHECK(memcmp(d.addr, data + 2, 4) == 0);
		break;
	case MUX_DEST_IPV6:
		CHECK(memcmp(d.addr, data + 2, 16) == 0);
		break;
	case MUX_DEST_DOMAIN:
		/* NUL-terminated, exactly the declared length, those bytes. */
		CHECK(memchr(d.domain, '\0', sizeof(d.domain)) != NULL);
		CHECK(strlen(d.domain) == data[2]);
		CHECK(memcmp(d.domain, data + 3, data[2]) == 0);
		break;
	default:
		CHECK(d.type == MUX_DEST_NONE && d.port == 0);
		break;
	}

	/* What we accept, we would have sent byte for byte. */
	memset(out, 0x55, sizeof(out));
	n = proto_encode_open(&d, out, sizeof(out));
	CHECK(n >= 0 && (size_t)n == size);
	CHECK(memcmp(out, data, size) == 0);
	CHECK(out[size] == 0x55);
	CHECK(proto_encode_open(&d, out, size - 1) == -1);

	/* The log string is terminated and never overruns, whatever the room. */
	memset(str, 0x55, sizeof(str));
	CHECK(proto_dest_str(&d, str, sizeof(str)) == str);
	CHECK(memchr(str, '\0', sizeof(str)) != NULL);
	if (d.type == MUX_DEST_DOMAIN)
		CHECK(strncmp(str, d.domain, data[2]) == 0 && str[data[2]] == ':');
	memset(str, 0x55, sizeof(str));
	proto_dest_str(&d, str, 1 + size % 32);
	CHECK(memchr(str, '\0', 1 + size % 32) != NULL);
	CHECK((uint8_t)str[1 + size % 32] == 0x55);
}

static void check_small(const uint8_t *data, size_t size)
{
	uint32_t inc = 0;
	uint8_t code = 0, enc[4];
	int r;

	r = proto_decode_credit(data, size, &inc);
	CHECK(r == 0 || r == -1);
	CHECK((r == 0) == (size == 4 && memcmp(data, "\0\0\0\0", 4) != 0));
	if (r == 0) {
		CHECK(inc != 0);
		proto_encode_credit(inc, enc);
		CHECK(memcmp(enc, data, 4) == 0);
	}

	r = proto_decode_rst(data, size, &code);
	CHECK(r == 0 || r == -1);
	CHECK((r == 0) == (size == 1));
	if (r == 0)
		CHECK(code == data[0]);

	r = proto_decode_empty(data, size);
	CHECK(r == 0 || r == -1);
	CHECK((r == 0) == (size == 1 && data[0] == 0));

	CHECK(proto_err_str(size > 0 ? data[0] : 0) != NULL);
}

/* ---- credit accounting ---- */

/* Argument bytes; zeros once the input runs out. */
struct reader {
	const uint8_t *p;
	size_t n, off;
};

static uint32_t get(struct reader *r, int bytes)
{
	uint32_t v = 0;

	while (bytes-- > 0)
		v = v << 8 | (r->off < r->n ? r->p[r->off++] : 0);
	return v;
}

/* A sender (snd.tx) and a receiver (rcv.rx_*) of one direction of a stream. */
struct world {
	struct mux_credit snd, rcv;
	uint64_t data_inflight;     /* DATA bytes sent, not yet received */
	uint64_t credit_inflight;   /* CREDIT sent, not yet received */
	uint64_t buffered;          /* received, not yet written to TCP */
};

static void check_books(const struct world *w, const struct mux_credit *snd0,
                        const struct mux_credit *rcv0)
{
	const struct mux_credit *s = &w->snd, *r = &w->rcv;

	/* Every byte of the window is allowed (granted and sent), pending (a
	 * grant not yet sent), buffered or consumed. */
	CHECK((uint64_t)r->rx_allowed + r->pending + w->buffered + r->rx_consumed ==
	      r->window);
	CHECK(w->buffered <= r->window);
	/* What the receiver allows is the sender's or on its way there; a
	 * pending grant is neither until its CREDIT is sent. */
	CHECK((uint64_t)s->tx + w->data_inflight + w->credit_inflight == r->rx_allowed);
	CHECK(s->tx <= CREDIT_MAX);
	/* One direction's operations leave the other direction alone. */
	CHECK(r->window == rcv0->window && r->tx == rcv0->tx);
	CHECK(s->window == snd0->window && s->rx_allowed == snd0->rx_allowed &&
	      s->rx_consumed == snd0->rx_consumed && s->pending == snd0->pending);
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static void run_credit(const uint8_t *data, size_t size)
{
	struct reader rd = { data, size, 0 };
	struct world w;
	struct mux_credit snd0, rcv0, before;
	uint32_t initial, extra;

	memset(&w, 0, sizeof(w));
	/* Any window the sender's credit can hold (CREDIT_MAX). */
	initial = 1 + get(&rd, 2);
	extra = get(&rd, 4) % (CREDIT_MAX - initial + 1);
	credit_init(&w.snd, initial, 0);
	credit_init(&w.rcv, initial, extra);
	CHECK(w.rcv.window == initial + extra && w.rcv.pending == extra);
	snd0 = w.snd;
	rcv0 = w.rcv;
	check_books(&w, &snd0, &rcv0);

	while (rd.off < rd.n) {
		uint8_t op = (uint8_t)get(&rd, 1);

		switch (op % 8) {
		case 0: {   /* the sender reads avail bytes from its TCP side */
			size_t avail = get(&rd, 3), max_msg = get(&rd, 2);
			uint32_t tx = w.snd.tx;
			size_t n = credit_sendable(&w.snd, avail, max_msg);

			CHECK(n == min64(min64(avail, max_msg), tx));
			credit_sent(&w.snd, n);
			CHECK(w.snd.tx == tx - n);
			w.data_inflight += n;
			break;
		}
		case 1: {   /* DATA arrives */
			uint64_t m = min64(w.data_inflight, get(&rd, 4));

			CHECK(credit_receive(&w.rcv, (size_t)m) == 0);
			w.data_inflight -= m;
			w.buffered += m;
			break;
		}
		case 2: {   /* the receiver's TCP side takes some */
			uint64_t k = min64(w.buffered, get(&rd, 4));

			credit_consumed(&w.rcv, (size_t)k);
			w.buffered -= k;
			break;
		}
		case 3: {   /* the receiver considers a grant */
			int force = (int)(get(&rd, 1) & 1);
			int want;

			before = w.rcv;
			want = before.rx_consumed > 0 &&
			       (force || before.rx_consumed >= before.window / 4);
			CHECK(credit_grant(&w.rcv, force) == want);
			if (want) {
				CHECK(w.rcv.rx_consumed == 0);
				CHECK(w.rcv.pending == before.pending + before.rx_consumed);
				/* not spendable until its CREDIT is sent */
				CHECK(w.rcv.rx_allowed == before.rx_allowed);
			} else {
				CHECK(memcmp(&w.rcv, &before, sizeof(before)) == 0);
			}
			break;
		}
		case 4:     /* the grant goes out: now the peer may spend it */
			before = w.rcv;
			w.credit_inflight += w.rcv.pending;
			credit_grant_sent(&w.rcv);
			CHECK(w.rcv.pending == 0);
			CHECK(w.rcv.rx_allowed == before.rx_allowed + before.pending);
			break;
		case 5: {   /* CREDIT arrives, possibly several messages at once */
			uint64_t m = min64(w.credit_inflight, get(&rd, 4));

			if (m == 0)
				break;
			CHECK(credit_add(&w.snd, (uint32_t)m) == 0);
			w.credit_inflight -= m;
			break;
		}
		case 6: {   /* a peer overrunning its credit is refused, no change */
			uint64_t n = (uint64_t)w.rcv.rx_allowed + 1 + get(&rd, 4);

			before = w.rcv;
			CHECK(credit_receive(&w.rcv, (size_t)n) == -1);
			CHECK(memcmp(&w.rcv, &before, sizeof(before)) == 0);
			break;
		}
		case 7: {   /* an arbitrary grant, tried on a copy of the sender */
			uint32_t inc = get(&rd, 4);
			int ok = inc != 0 && (uint64_t)w.snd.tx + inc <= CREDIT_MAX;

			before = w.snd;
			CHECK(credit_add(&before, inc) == (ok ? 0 : -1));
			CHECK(before.tx == (ok ? w.snd.tx + inc : w.snd.tx));
			CHECK(before.rx_allowed == w.snd.rx_allowed &&
			      before.pending == w.snd.pending);
			break;
		}
		}
		check_books(&w, &snd0, &rcv0);
	}

	/* Whatever happened, draining everything returns the whole window. */
	CHECK(credit_receive(&w.rcv, (size_t)w.data_inflight) == 0);
	w.buffered += w.data_inflight;
	w.data_inflight = 0;
	credit_consumed(&w.rcv, (size_t)w.buffered);
	w.buffered = 0;
	(void)credit_grant(&w.rcv, 1);
	CHECK(w.rcv.rx_consumed == 0);
	w.credit_inflight += w.rcv.pending;
	credit_grant_sent(&w.rcv);
	if (w.credit_inflight > 0)
		CHECK(credit_add(&w.snd, (uint32_t)w.credit_inflight) == 0);
	w.credit_inflight = 0;
	check_books(&w, &snd0, &rcv0);
	CHECK(w.snd.tx == w.rcv.window && w.rcv.rx_allowed == w.rcv.window);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_open(data, size);
	check_small(data, size);
	run_credit(data, size);
	return 0;
}
