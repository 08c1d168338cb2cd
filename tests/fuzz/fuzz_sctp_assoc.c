/*
 * libFuzzer harness for the native engine's association core
 * (src/sctp/assoc*.c): the whole state machine, driven by packets, API
 * calls and timer expiries mixed, from a few fixed starting states.
 *
 * Input: a start-state byte (bits 0-1: 0 CLOSED listening, 1 COOKIE-WAIT,
 * 2 ESTABLISHED as client, 3 ESTABLISHED as server; bits 2-3 A's
 * congestion controller: NewReno, CUBIC, BBR, fixed 1 MB/s), then ops, each a
 * byte whose low 3 bits select:
 *   0  packet: 16-bit length, bytes; op bit 3 writes the association's
 *      own tag into the header, bit 4 writes a correct CRC32c
 *   1  let (next byte * 37) ms pass, run due timers
 *   2  jump to the next deadline and run it
 *   3  connect   4  shutdown   5  abort
 *   6  by op bits 3-4: heartbeat probe; A sends; B sends (a send takes a
 *      stream byte and a 16-bit length, modulo 70000; op bit 5 makes it
 *      unordered); both consume what was delivered to them
 *   7  exchange: deliver what each side sent to the other (a partner
 *      association B exists in every state)
 * Checked: every packet the core sends parses, carries a good CRC and
 * fits the MTU; no deadline is left in the past after timers ran; the
 * state stays in range; T3-rtx runs iff data is outstanding; the receive
 * buffer stays within the window and its reserve; delivered messages are
 * non-empty on a valid stream; loss recovery undoes nothing it has not
 * proven spurious, keeps reo_wnd within SRTT and no flight without
 * outstanding TSNs.  Memory is checked by ASan/LSan.
 *
 * Seeds in corpus/sctp_assoc/ come from tests/unit/test_sctp_assoc.c
 * (SCTPT_SCTP_ASSOC_CORPUS=DIR) plus a few hand-made op sequences, and
 * cc-* (data seeds with the controller bits set).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sctp/assoc.h"
#include "sctp/packet.h"
#include "util/bytes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define QN 16
#define QPKT 1500
#define MTU 1200

struct q {
	uint8_t buf[QN][QPKT];
	size_t len[QN];
	unsigned n;
};

struct side {
	struct sctp_core *a;
	struct q out;
	uint64_t rng;
	size_t unconsumed;
};

static struct side A, B;
static uint64_t now;

static void rnd(void *arg, uint8_t *p, size_t n)
{
	struct side *s = arg;

	for (size_t i = 0; i < n; i++) {
		s->rng = s->rng * 6364136223846793005ULL + 1442695040888963407ULL;
		p[i] = (uint8_t)(s->rng >> 56);
	}
}

static void out(void *arg, const uint8_t *p, size_t n)
{
	struct side *s = arg;
	struct sctp_packet pkt;

	if (n > MTU || sctp_packet_parse(p, n, &pkt) != 0 ||
	    sctp_packet_check_crc(p, n) != 0)
		abort();
	if (s->out.n >= QN)
		return;
	memcpy(s->out.buf[s->out.n], p, n);
	s->out.len[s->out.n++] = n;
}

static void ev(void *arg, const struct sctp_core_event *e)
{
	struct side *s = arg;

	if (e->type < SCTP_EV_UP || e->type > SCTP_EV_WRITABLE)
		abort();
	if (e->type == SCTP_EV_DATA) {
		if (e->len == 0 || e->data == NULL || e->sid >= 10)
			abort();
		s->unconsumed += e->len;
	}
}

static int cc_algo;

static struct sctp_core *mk(struct side *s, int id, int listen)
{
	static const uint8_t secret[2][16] = { "fuzz secret A..", "fuzz secret B.." };
	struct sctp_core_config c;
	struct sctp_core_env env;

	memset(&c, 0, sizeof(c));
	c.local_port = id ? 5001 : 5000;
	c.remote_port = id ? 5000 : 5001;
	c.os = 10;
	c.mis = 10;
	c.idata = 1;
	c.listen = listen;
	c.mtu = MTU;
	c.hb_interval_ms = id ? 0 : 30000;
	c.max_init_retrans = 4;
	c.max_retrans = 4;
	if (id == 0) {
		c.cc = cc_algo;
		c.fixed_rate = 1000000;
	}
	memset(&env, 0, sizeof(env));
	env.arg = s;
	env.random = rnd;
	env.output = out;
	env.event = ev;
	env.secret = secret[id];
	env.secret_len = sizeof(secret[id]);
	s->out.n = 0;
	s->rng = 1 + (uint64_t)id;
	s->unconsumed = 0;
	return sctp_core_new(&c, &env);
}

static void deliver(struct side *from, struct side *to)
{
	struct q q = from->out;

	from->out.n = 0;
	for (unsigned i = 0; i < q.n; i++)
		sctp_core_input(to->a, q.buf[i], q.len[i], now);
}

static void exchange(void)
{
	deliver(&A, &B);
	deliver(&B, &A);
}

static void check(struct sctp_core *a)
{
	struct sctp_core_info in;

	sctp_core_get_info(a, &in);
	if (sctp_core_state(a) >= SCTP_S_ESTABLISHED &&
	    in.t3_running != (in.outstanding_tsns != 0))
		abort();
	if (in.rcv_buffered > 256 * 1024 + 4 * MTU ||
	    in.rcv_overhead > 256 * 1024 || in.outstanding_tsns > 4096)
		abort();
	/* Loss recovery: an undo only after proof, reo_wnd within SRTT. */
	if (in.undos > in.spurious_rtx || in.spurious_rto > in.spurious_rtx ||
	    (in.srtt_ms > 0 && in.reo_wnd_ms > in.srtt_ms) ||
	    (in.outstanding_tsns == 0 && in.flight != 0))
		abort();
}

static void send_msg(struct side *s, uint8_t op, const uint8_t *p, size_t n)
{
	static uint8_t buf[70000];
	size_t len;

	if (n < 3)
		return;
	len = get_u16be(p + 1) % sizeof(buf);
	memset(buf, p[0], len);
	(void)sctp_core_send(s->a, p[0] % 12, op, (op >> 5) & 1, buf, len, now);
}

static void consume(struct side *s)
{
	sctp_core_consume(s->a, s->unconsumed, now);
	s->unconsumed = 0;
}

static void run_timers(struct sctp_core *a)
{
	uint64_t d;

	if (sctp_core_next_deadline(a) <= now)
		sctp_core_timeout(a, now);
	d = sctp_core_next_deadline(a);
	if (d <= now)
		abort();
	if ((unsigned)sctp_core_state(a) > SCTP_S_SHUTDOWN_ACK_SENT)
		abort();
	check(a);
}

static int setup(uint8_t st)
{
	now = 1000;
	A.a = mk(&A, 0, st == 0 || st == 3);
	B.a = mk(&B, 1, st != 3);
	if (A.a == NULL || B.a == NULL)
		return -1;
	switch (st) {
	case 1:
		sctp_core_connect(A.a, now);
		A.out.n = 0;            /* the INIT is lost */
		break;
	case 2:
	case 3:
		sctp_core_connect(st == 2 ? A.a : B.a, now);
		for (int i = 0; i < 4; i++) {
			now += 5;
			exchange();
		}
		if (sctp_core_state(A.a) != SCTP_S_ESTABLISHED)
			abort();
		break;
	default:
		break;
	}
	return 0;
}

static void packet(uint8_t op, const uint8_t *p, size_t n)
{
	static uint8_t buf[SCTP_PACKET_MAX];
	struct sctp_core_info info;

	memcpy(buf, p, n);
	if ((op & 0x08) && n >= SCTP_HEADER_LEN + 1 && buf[12] != SCTP_CT_INIT) {
		sctp_core_get_info(A.a, &info);
		put_u32be(buf + 4, info.local_vtag);
	}
	if (op & 0x10)
		sctp_packet_set_crc(buf, n);
	sctp_core_input(A.a, buf, n, now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i = 1;

	if (size < 1)
		return 0;
	cc_algo = (data[0] >> 2) & 3;
	if (setup(data[0] & 3) != 0)
		goto out;
	while (i < size) {
		uint8_t op = data[i++];
		uint32_t id;

		switch (op & 7) {
		case 0: {
			size_t n;

			if (size - i < 2)
				goto out;
			n = get_u16be(data + i);
			i += 2;
			if (n > size - i)
				n = size - i;
			packet(op, data + i, n);
			i += n;
			break;
		}
		case 1:
			if (i < size)
				now += (uint64_t)data[i++] * 37;
			break;
		case 2:
			if (sctp_core_next_deadline(A.a) != SCTP_CORE_NO_DEADLINE)
				now = sctp_core_next_deadline(A.a);
			break;
		case 3:
			sctp_core_connect(A.a, now);
			break;
		case 4:
			sctp_core_shutdown(A.a, now);
			break;
		case 5:
			sctp_core_abort(A.a, now);
			break;
		case 6:
			switch ((op >> 3) & 3) {
			case 0:
				sctp_core_probe(A.a, now, &id);
				break;
			case 1:
			case 2:
				send_msg(((op >> 3) & 3) == 1 ? &A : &B, op,
				         data + i, size - i);
				i = i + 3 < size ? i + 3 : size;
				break;
			default:
				consume(&A);
				consume(&B);
				break;
			}
			break;
		case 7:
			exchange();
			break;
		}
		run_timers(A.a);
		run_timers(B.a);
		/* What A sent and nobody exchanged is lost. */
		if (A.out.n == QN)
			A.out.n = 0;
	}
out:
	sctp_core_free(A.a);
	sctp_core_free(B.a);
	A.a = B.a = NULL;
	return 0;
}
