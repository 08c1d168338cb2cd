/*
 * libFuzzer harness for the mux session and stream state machine
 * (src/mux/session.c, stream.c, relay.c), driven through the SCTP ops
 * seam: arbitrary (sid, ppid, bytes) messages go to mux_session_on_message()
 * interleaved with the owner's and the application's moves, and every
 * message the mux sends is checked against docs/streams.md.
 *
 * Input: one byte of mode (bit 0: client session), then records, each an
 * opcode byte and its arguments:
 *
 *   0x00 sid ppid len_hi len_lo bytes...   a whole message from the peer
 *   0x08 sid ppid len bytes...             the same, a part without EOR
 *   0x01 sid                               server: accept sid (socketpair)
 *   0x02 sid code                          server: reject sid
 *   0x03                                   client: open a stream (ignored by a server)
 *   0x04 sid len                           the application writes len bytes
 *   0x05 sid                               the application half-closes
 *   0x06                                   the association is full / not
 *   0x07                                   run the event loop
 *   0x09 port_hi port_lo                   client: ask for a listener (LISTEN);
 *                                          server: open a forwarded stream (FWD_OPEN)
 *
 * Remote forwards (docs/forwarding.md): the server accepts a pending LISTEN
 * with 0x01 (LISTEN_OK) or refuses it with 0x02, the client a FWD_OPEN the
 * same way; a message of a type the mux does not know, opening a stream on
 * an idle id of the peer's parity, is refused with RST 0x07.
 *
 * Payload bytes beyond the end of the input read as zeros, so a short
 * input can still send a DATA message larger than the credit.
 *
 * Checked: only known message types are sent; nothing follows a terminal
 * message (RST or CLOSE) within one life of a stream; OPEN_OK and OPEN
 * come first; DATA never exceeds the credit the peer gave; the session's
 * stream count matches its table.  Leaks are LeakSanitizer's.
 *
 * Seeds in corpus/mux/ follow the life of a stream in docs/streams.md
 * (open/data/fin/close, RST races, overruns, unknown ids); they are written
 * by tools/gen_mux_corpus.py.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "mux/mux_internal.h"
#include "util/log.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSTREAMS 16

struct life {
	int term;                /* we sent RST or CLOSE */
	int opened;              /* a life is going on this sid */
	int client;              /* we are the opener */
	int first_sent;          /* the OPEN or OPEN_OK (or a RST) went out */
	int listener;            /* a LISTEN stream: LISTEN, LISTEN_OK and RST only */
	uint64_t sent, allowed;  /* DATA bytes vs. credit from the peer */
	int app;                 /* the application's end, or -1 */
};

static struct event_base *base;
static struct mux_session *m;
static struct life lives[NSTREAMS];
static struct mux_stream *pending[NSTREAMS];
static int pending_listen[NSTREAMS];
static int again;

static int fake_send(void *ctx, uint16_t sid, uint32_t ppid, const void *p, size_t n)
{
	struct life *l;

	CHECK(sid > 0 && sid < NSTREAMS);
	CHECK(ppid >= MUX_OPEN && ppid <= MUX_FWD_OPEN);
	CHECK(n > 0);
	if (again)
		return MUX_SEND_AGAIN;
	l = &lives[sid];
	CHECK(l->opened);
	CHECK(!l->term);
	if (!l->first_sent) {
		/* A life starts with OPEN, FWD_OPEN or LISTEN (opener) or OPEN_OK,
		 * LISTEN_OK / a refusal (acceptor). */
		if (l->client)
			CHECK(ppid == (m->client ? (l->listener ? MUX_LISTEN : MUX_OPEN) : MUX_FWD_OPEN));
		else
			CHECK(ppid == (l->listener ? MUX_LISTEN_OK : MUX_OPEN_OK) || ppid == MUX_RST);
		l->first_sent = 1;
	} else if (l->listener) {
		CHECK(ppid == MUX_RST || (!m->client && ppid == MUX_LISTEN_OK));
	} else {
		CHECK(ppid <= MUX_CLOSE);
	}
	if (ppid == MUX_DATA) {
		l->sent += n;
		CHECK(l->sent <= l->allowed);
	}
	if (ppid == MUX_RST || ppid == MUX_CLOSE)
		l->term = 1;
	return 0;
}

static unsigned fake_streams(void *ctx)
{
	return NSTREAMS;
}

static void fake_free(void *ctx)
{
}

static const struct mux_sctp_ops fake_ops = {
	.send = fake_send,
	.streams = fake_streams,
	.free = fake_free,
};

static void new_life(uint16_t sid, int client)
{
	struct life *l = &lives[sid];

	if (l->app >= 0)
		close(l->app);
	memset(l, 0, sizeof(*l));
	l->opened = 1;
	l->client = client;
	l->allowed = MUX_INITIAL_WINDOW;
	l->app = -1;
}

static void cb_up(struct mux_session *mm, void *arg)
{
}

static void cb_down(struct mux_session *mm, const char *why, void *arg)
{
}

/* The stream dies before we answered: forget it. */
static void cb_cancel(void *arg)
{
	pending[(uintptr_t)arg] = NULL;
	pending_listen[(uintptr_t)arg] = 0;
}

static void cb_stream_open(struct mux_session *mm, struct mux_stream *s,
                           const struct mux_dest *d, void *arg)
{
	pending[s->sid] = s;
	pending_listen[s->sid] = 0;
	mux_stream_set_cancel(s, cb_cancel, (void *)(uintptr_t)s->sid);
}

static void open_result(struct mux_stream *s, int err, struct bufferevent *bev, void *arg)
{
	if (err != 0 && bev != NULL)
		bufferevent_free(bev);
}

static void cb_listen(struct mux_session *mm, struct mux_stream *s,
                      const struct mux_listen_req *req, void *arg)
{
	pending[s->sid] = s;
	pending_listen[s->sid] = 1;
	mux_stream_set_cancel(s, cb_cancel, (void *)(uintptr_t)s->sid);
}

static void cb_fwd_open(struct mux_session *mm, struct mux_stream *s, uint32_t id,
                        const struct mux_dest *d, void *arg)
{
	cb_stream_open(mm, s, d, arg);
}

static void listen_answer(struct mux_stream *s, int err, uint16_t port, void *arg)
{
	CHECK(err != 0 || port != 0);
}

static const struct mux_session_cbs cbs = {
	.up = cb_up, .down = cb_down, .stream_open = cb_stream_open,
	.listen = cb_listen, .fwd_open = cb_fwd_open,
};

/* Would this message from the peer start a life on an idle sid (session.c)? */
static int starts_life(uint16_t sid, uint32_t ppid, int eor)
{
	if (sid >= NSTREAMS || sidtable_get(&m->st, sid) != NULL || sidtable_tomb(&m->st, sid) != 0)
		return 0;
	if ((sid & 1) != (m->client ? 0 : 1))
		return 0;   /* our own parity */
	if ((ppid < MUX_OPEN || ppid > MUX_FWD_OPEN) && (ppid < MUX_UDP_OPEN || ppid > MUX_UDP_DGRAM))
		return eor;   /* unknown: refused with RST 0x07 */
	/* A UDP_OPEN too (refused here: this harness offers no UDP relay). */
	return m->client ? ppid == MUX_FWD_OPEN :
	       ppid == MUX_OPEN || ppid == MUX_LISTEN || ppid == MUX_UDP_OPEN;
}

static struct bufferevent *tcp_pair(int *app)
{
	int sv[2];
	struct bufferevent *bev;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	evutil_make_socket_nonblocking(sv[0]);
	evutil_make_socket_nonblocking(sv[1]);
	bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	CHECK(bev != NULL);
	*app = sv[1];
	return bev;
}

/* The stream table, the tombstones, the counters and the budget agree. */
static void check_session(void)
{
	struct mux_stats st;
	unsigned n = 0, tombs = 0, owed = 0;
	size_t mem = 0;

	mux_session_stats(m, &st);
	for (unsigned i = 1; i < m->st.n; i++) {
		struct mux_stream *s = sidtable_get(&m->st, i);
		uint8_t t = sidtable_tomb(&m->st, i);

		CHECK(s == NULL || t == 0);
		if (s != NULL) {
			n++;
			mem += s->queued + MUX_STREAM_COST;
		}
		if (t != 0) {
			tombs++;
			CHECK(!((t & TOMB_TX) && (t & TOMB_RX)));   /* that id is free */
		}
		if (t & TOMB_OWED)
			owed++;
	}
	CHECK(st.streams_active == n);
	CHECK(st.streams_opened == st.streams_closed + st.streams_active);
	CHECK(st.tombs == tombs && m->owed == owed);
	CHECK(st.mem == mem);
}

struct input {
	const uint8_t *p;
	size_t n;
};

static int get(struct input *in)
{
	if (in->n == 0)
		return -1;
	in->n--;
	return *in->p++;
}

static int get0(struct input *in)
{
	int c = get(in);

	return c < 0 ? 0 : c;
}

/* len payload bytes: from the input while it lasts, zeros after. */
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

static void peer_message(struct input *in, int eor)
{
	uint16_t sid = (uint16_t)get0(in);
	uint32_t ppid = (uint32_t)get0(in);
	size_t len;
	const uint8_t *p;

	if (eor) {
		len = (size_t)get0(in) << 8;
		len |= (size_t)get0(in);
	} else {
		len = (size_t)get0(in);
	}
	p = payload(in, len);
	/* OPEN, LISTEN or UDP_OPEN (server), FWD_OPEN (client), or an unknown
	 * type on a free id of the peer's parity starts a new life (session.c). */
	if (starts_life(sid, ppid, eor)) {
		new_life(sid, 0);
		lives[sid].listener = ppid == MUX_LISTEN;
	}
	/* What the peer grants bounds what we may send. */
	if (sid < NSTREAMS && ppid == MUX_CREDIT && len == 4 && eor)
		lives[sid].allowed += (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		                      (uint32_t)p[2] << 8 | p[3];
	mux_session_on_message(m, sid, ppid, p, len, eor);
}

static void pump(void)
{
	event_base_loop(base, EVLOOP_NONBLOCK);
}

static void run(struct input *in)
{
	static const uint8_t junk[512];
	struct mux_dest d = { .type = MUX_DEST_NONE };
	int op, sid, app;

	while ((op = get(in)) >= 0) {
		switch (op & 0x0f) {
		case 0x00:
			peer_message(in, 1);
			break;
		case 0x08:
			peer_message(in, 0);
			break;
		case 0x01:
			sid = get0(in) % NSTREAMS;
			if (pending[sid] != NULL) {
				struct mux_stream *s = pending[sid];

				pending[sid] = NULL;
				if (pending_listen[sid]) {
					pending_listen[sid] = 0;
					mux_listen_accept(s, 4242);
					break;
				}
				mux_stream_accept(s, tcp_pair(&app));
				lives[sid].app = app;
			}
			break;
		case 0x02:
			sid = get0(in) % NSTREAMS;
			if (pending[sid] != NULL) {
				struct mux_stream *s = pending[sid];

				pending[sid] = NULL;
				pending_listen[sid] = 0;
				mux_stream_reject(s, (uint8_t)get0(in));
			}
			break;
		case 0x03: {
			struct bufferevent *bev;
			struct mux_stream *s;
			int id = sidtable_alloc(&m->st, 1);

			if (!m->client)
				break;   /* only the client opens streams */
			bev = tcp_pair(&app);
			if (id > 0)
				new_life((uint16_t)id, 1);
			s = mux_stream_open(m, &d, bev, open_result, NULL);
			if (s == NULL) {
				bufferevent_free(bev);
				close(app);
				break;
			}
			CHECK(s->sid == id);
			lives[s->sid].app = app;
			break;
		}
		case 0x09: {
			struct mux_listen_req req = { .id = 1 };
			int id = sidtable_alloc(&m->st, m->client ? 1 : 0);
			struct bufferevent *bev;
			struct mux_stream *s;

			req.port = (uint16_t)(get0(in) << 8);
			req.port |= (uint16_t)get0(in);
			if (m->client) {
				if (id > 0) {
					new_life((uint16_t)id, 1);
					lives[id].listener = 1;
				}
				s = mux_listen_open(m, &req, listen_answer, NULL);
				CHECK(s == NULL || s->sid == id);
				break;
			}
			bev = tcp_pair(&app);
			if (id > 0)
				new_life((uint16_t)id, 1);
			s = mux_stream_open_fwd(m, 1, &d, bev, open_result, NULL);
			if (s == NULL) {
				bufferevent_free(bev);
				close(app);
				break;
			}
			CHECK(s->sid == id);
			lives[s->sid].app = app;
			break;
		}
		case 0x04:
			sid = get0(in) % NSTREAMS;
			op = get0(in);
			if (lives[sid].app >= 0)
				(void)send(lives[sid].app, junk, (size_t)op * 2, MSG_DONTWAIT | MSG_NOSIGNAL);
			break;
		case 0x05:
			sid = get0(in) % NSTREAMS;
			if (lives[sid].app >= 0)
				(void)shutdown(lives[sid].app, SHUT_WR);
			break;
		case 0x06:
			again = !again;
			if (!again)
				mux_session_on_writable(m);
			break;
		case 0x07:
			pump();
			break;
		default:
			break;
		}
		check_session();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct mux_config cfg;
	int client;

	if (base == NULL) {
		log_set_level(LOG_LEVEL_NONE);
		base = event_base_new();
		CHECK(base != NULL);
	}
	if (size < 1)
		return 0;
	client = get0(&in) & 1;
	memset(lives, 0, sizeof(lives));
	memset(pending, 0, sizeof(pending));
	memset(pending_listen, 0, sizeof(pending_listen));
	for (unsigned i = 0; i < NSTREAMS; i++)
		lives[i].app = -1;
	again = 0;
	mux_config_defaults(&cfg);
	cfg.window = MUX_INITIAL_WINDOW * 2;   /* one enlargement, from a small budget */
	cfg.rx_budget = MUX_INITIAL_WINDOW * 4;
	cfg.max_streams = 6;
	/* Four streams with full windows fit, not six: the budget is exercised. */
	cfg.mem_budget = 4 * (MUX_STREAM_COST + MUX_INITIAL_WINDOW);
	m = mux_session_new_ops(&cfg, &cbs, NULL, client, &fake_ops, (void *)1);
	CHECK(m != NULL);
	mux_session_on_up(m);
	CHECK(mux_session_is_up(m));
	run(&in);
	mux_session_free(m);
	m = NULL;
	for (unsigned i = 0; i < NSTREAMS; i++)
		if (lives[i].app >= 0)
			close(lives[i].app);
	/* Let freed bufferevents close their sockets. */
	pump();
	return 0;
}
