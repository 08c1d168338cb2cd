/*
 * Unit tests for the stream state machine (src/mux/stream.c, session.c,
 * relay.c) driven through the SCTP ops seam: a fake association records
 * every message the mux sends, the test plays the peer by calling
 * mux_session_on_message(), and the TCP side is one end of a socketpair
 * whose other end the test reads and writes as the application.
 *
 * Each test checks the exact messages sent and the state left behind, for
 * the races docs/streams.md has to get right: FIN then RST, RST while data
 * is queued, CLOSE crossing CLOSE, DATA after FIN or before OPEN_OK, credit
 * overrun, unknown stream ids, duplicate OPEN; and, with fault injection,
 * that a stream whose events cannot be created fails cleanly while others
 * keep working.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "mux/mux_internal.h"
#include "sctp/sctp.h"
#include "util/fault.h"

#define UNUSED __attribute__((unused))

/* ---------- the fake association ---------- */

#define MAX_MSGS 256

struct msg {
	uint16_t sid;
	uint32_t ppid;
	size_t len;
	uint8_t data[64];   /* the first bytes */
};

static struct msg msgs[MAX_MSGS];
static unsigned nmsgs, next_msg;
static int send_again;      /* answer MUX_SEND_AGAIN */
static uint32_t again_ppid; /* ... or only for this message type */
static unsigned nstreams = 16;
static int freed_assoc;

static int fake_send(void *ctx, uint16_t sid, uint32_t ppid, const void *p, size_t n)
{
	struct msg *g;

	if (send_again || (again_ppid != 0 && ppid == again_ppid))
		return MUX_SEND_AGAIN;
	assert_true(nmsgs < MAX_MSGS);
	g = &msgs[nmsgs++];
	g->sid = sid;
	g->ppid = ppid;
	g->len = n;
	memcpy(g->data, p, n < sizeof(g->data) ? n : sizeof(g->data));
	return 0;
}

static unsigned fake_streams(void *ctx)
{
	return nstreams;
}

static void fake_free(void *ctx)
{
	freed_assoc++;
}

/* The association's srtt as the mux sees it; negative: none yet. */
static int fake_srtt = -1;

static void fake_get_stats(void *ctx, struct sctp_assoc_stats *st)
{
	(void)ctx;
	if (fake_srtt >= 0) {
		st->have |= SCTP_STATS_RTT;
		st->srtt_ms = (uint32_t)fake_srtt;
	}
}

static const struct mux_sctp_ops fake_ops = {
	.send = fake_send,
	.streams = fake_streams,
	.free = fake_free,
	.get_stats = fake_get_stats,
};

/* The next message sent must be (sid, ppid) with a one-byte payload b (or any if b < 0). */
static void expect1(uint16_t sid, uint32_t ppid, int b)
{
	struct msg *g;

	assert_true(next_msg < nmsgs);
	g = &msgs[next_msg++];
	assert_int_equal(g->sid, sid);
	assert_int_equal(g->ppid, ppid);
	if (b >= 0) {
		assert_int_equal(g->len, 1);
		assert_int_equal(g->data[0], b);
	}
}

static void expect_data(uint16_t sid, const char *s)
{
	struct msg *g;

	assert_true(next_msg < nmsgs);
	g = &msgs[next_msg++];
	assert_int_equal(g->sid, sid);
	assert_int_equal(g->ppid, MUX_DATA);
	assert_int_equal(g->len, strlen(s));
	assert_memory_equal(g->data, s, strlen(s));
}

static uint32_t expect_credit(uint16_t sid)
{
	struct msg *g;

	assert_true(next_msg < nmsgs);
	g = &msgs[next_msg++];
	assert_int_equal(g->sid, sid);
	assert_int_equal(g->ppid, MUX_CREDIT);
	assert_int_equal(g->len, 4);
	return (uint32_t)g->data[0] << 24 | (uint32_t)g->data[1] << 16 |
	       (uint32_t)g->data[2] << 8 | g->data[3];
}

static void expect_nothing(void)
{
	if (next_msg < nmsgs)
		fail_msg("unexpected message: sid %u ppid %u len %zu", msgs[next_msg].sid,
		         msgs[next_msg].ppid, msgs[next_msg].len);
}

/* ---------- the session and its owner ---------- */

static struct event_base *base;
static struct mux_session *m;
static struct mux_stream *opened[64];   /* server: by sid */
static int nopened, ncancel, ndown;
static int open_err[64];                /* client: result of each open, -1 = none yet */
static struct bufferevent *open_bev[64];

static void cb_up(struct mux_session *mm, void *arg)
{
}

static void cb_down(struct mux_session *mm, const char *why, void *arg)
{
	ndown++;
}

static void cb_stream_open(struct mux_session *mm, struct mux_stream *s,
                           const struct mux_dest *d, void *arg)
{
	opened[s->sid] = s;
	nopened++;
}

static void cb_cancel(void *arg)
{
	ncancel++;
}

static const struct mux_session_cbs cbs = {
	.up = cb_up, .down = cb_down, .stream_open = cb_stream_open,
};

static void open_result(struct mux_stream *s, int err, struct bufferevent *bev, void *arg)
{
	int i = (int)(intptr_t)arg;

	open_err[i] = err;
	if (err != 0) {
		open_bev[i] = bev;   /* handed back: ours to free */
		return;
	}
	bufferevent_write(bev, "REPLY", 5);   /* like the SOCKS success reply */
}

static void new_session_cfg(int client, const struct mux_config *cfg);

static void new_session(int client)
{
	struct mux_config cfg;

	mux_config_defaults(&cfg);
	cfg.window = MUX_INITIAL_WINDOW;   /* no enlargement: no CREDIT at open */
	new_session_cfg(client, &cfg);
}

static void new_session_cfg(int client, const struct mux_config *cfgp)
{
	struct mux_config cfg = *cfgp;

	nmsgs = next_msg = 0;
	send_again = 0;
	again_ppid = 0;
	nopened = ncancel = ndown = freed_assoc = 0;
	memset(opened, 0, sizeof(opened));
	memset(open_bev, 0, sizeof(open_bev));
	for (unsigned i = 0; i < 64; i++)
		open_err[i] = -1;
	m = mux_session_new_ops(&cfg, &cbs, NULL, client, &fake_ops, (void *)1);
	assert_non_null(m);
	mux_session_on_up(m);
	assert_true(mux_session_is_up(m));
}

static int setup(void **state)
{
	base = event_base_new();
	fault_reset();
	return base == NULL;
}

static int teardown(void **state)
{
	mux_session_free(m);
	m = NULL;
	for (unsigned i = 0; i < 64; i++) {
		if (open_bev[i] != NULL)
			bufferevent_free(open_bev[i]);
		open_bev[i] = NULL;   /* a skipped test reaches here without new_session() */
	}
	/* Let lingering closes finish, then drop the loop. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
	fault_reset();
	return 0;
}

static void pump(void)
{
	for (int i = 0; i < 5; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

static void peer(uint16_t sid, uint32_t ppid, const void *p, size_t n)
{
	mux_session_on_message(m, sid, ppid, p, n, 1);
}

static void peer0(uint16_t sid, uint32_t ppid)
{
	static const uint8_t zero = 0;

	peer(sid, ppid, &zero, 1);
}

static void peer_rst(uint16_t sid, uint8_t code)
{
	peer(sid, MUX_RST, &code, 1);
}

/* A TCP side: bev on one end of a socketpair; *app gets the other end. */
static struct bufferevent *tcp_pair(int *app)
{
	int sv[2];
	struct bufferevent *bev;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	evutil_make_socket_nonblocking(sv[0]);
	evutil_make_socket_nonblocking(sv[1]);
	bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(bev);
	*app = sv[1];
	return bev;
}

/* Read what the application end has, up to n bytes; 0 on EOF, -1 if nothing. */
static ssize_t app_read(int fd, void *buf, size_t n)
{
	ssize_t r = recv(fd, buf, n, MSG_DONTWAIT);

	return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? -1 : r;
}

static const uint8_t open_fixed[] = { MUX_PROTO_VERSION, MUX_DEST_NONE, 0, 0 };

/* Server: the peer opens sid and we accept with a fresh TCP side. */
static struct mux_stream *server_stream(uint16_t sid, int *app)
{
	struct mux_stream *s;

	peer(sid, MUX_OPEN, open_fixed, sizeof(open_fixed));
	s = opened[sid];
	assert_non_null(s);
	mux_stream_set_cancel(s, cb_cancel, NULL);
	expect_nothing();
	mux_stream_accept(s, tcp_pair(app));
	expect1(sid, MUX_OPEN_OK, 0);
	expect_nothing();
	return s;
}

static unsigned active(void)
{
	struct mux_stats st;

	mux_session_stats(m, &st);
	return (unsigned)st.streams_active;
}

static unsigned tombs(void)
{
	struct mux_stats st;

	mux_session_stats(m, &st);
	return st.tombs;
}

static unsigned long proto_errors(void)
{
	struct mux_stats st;

	mux_session_stats(m, &st);
	return st.protocol_errors;
}

/* ---------- tests ---------- */

/* The whole life: OPEN, OPEN_OK, DATA both ways, FIN both ways, CLOSE crossing CLOSE. */
static void test_life_and_close_crossing(void **state)
{
	char buf[64];
	int app;

	new_session(0);
	server_stream(1, &app);
	peer(1, MUX_DATA, "hello", 5);
	assert_int_equal(app_read(app, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(write(app, "world", 5), 5);
	pump();
	expect_data(1, "world");
	expect_nothing();

	/* Peer FIN: the TCP side is half-closed at once (nothing queued). */
	peer0(1, MUX_FIN);
	assert_int_equal(app_read(app, buf, sizeof(buf)), 0);
	expect_nothing();

	/* Application EOF: FIN, then CLOSE since both FINs are done. */
	shutdown(app, SHUT_WR);
	pump();
	expect1(1, MUX_FIN, 0);
	expect1(1, MUX_CLOSE, 0);
	expect_nothing();
	/* Our side is over: the stream is freed, its id waits as a tombstone. */
	assert_int_equal(active(), 0);
	assert_int_equal(tombs(), 1);

	/* The peer's CLOSE crossed ours: both terminal, the id is free. */
	peer0(1, MUX_CLOSE);
	expect_nothing();
	assert_int_equal(active(), 0);
	assert_int_equal(tombs(), 0);
	assert_int_equal(proto_errors(), 0);
	close(app);
}

/* CLOSE crossing CLOSE while our CLOSE waits for send space. */
static void test_close_crossing_while_blocked(void **state)
{
	char buf[8];
	int app;

	new_session(0);
	server_stream(1, &app);
	peer0(1, MUX_FIN);
	assert_int_equal(app_read(app, buf, sizeof(buf)), 0);
	again_ppid = MUX_CLOSE;
	shutdown(app, SHUT_WR);
	pump();
	expect1(1, MUX_FIN, 0);
	expect_nothing();   /* CLOSE is owed, the association is full */
	peer0(1, MUX_CLOSE);
	expect_nothing();
	assert_int_equal(active(), 1);   /* ours still owed: the id stays taken */
	again_ppid = 0;
	mux_session_on_writable(m);
	expect1(1, MUX_CLOSE, 0);
	expect_nothing();
	assert_int_equal(active(), 0);
	assert_int_equal(proto_errors(), 0);
	close(app);
}

/* FIN then RST: the RST is answered with RST and the stream released. */
static void test_fin_then_rst(void **state)
{
	char buf[8];
	int app;

	new_session(0);
	server_stream(1, &app);
	peer0(1, MUX_FIN);
	assert_int_equal(app_read(app, buf, sizeof(buf)), 0);
	peer_rst(1, MUX_ERR_RESET);
	expect1(1, MUX_RST, MUX_ERR_RESET);
	expect_nothing();
	assert_int_equal(active(), 0);
	assert_int_equal(proto_errors(), 0);
	/* Later messages of that life are ignored, not answered. */
	peer(1, MUX_DATA, "x", 1);
	peer0(1, MUX_CLOSE);
	expect_nothing();
	assert_int_equal(ncancel, 0);
	close(app);
}

/* RST while DATA we read waits for send space: only RST goes out. */
static void test_rst_while_tx_queued(void **state)
{
	int app;

	new_session(0);
	server_stream(1, &app);
	send_again = 1;
	assert_int_equal(write(app, "queued", 6), 6);
	pump();
	expect_nothing();
	peer_rst(1, MUX_ERR_REFUSED);
	expect_nothing();
	send_again = 0;
	mux_session_on_writable(m);
	expect1(1, MUX_RST, MUX_ERR_RESET);
	expect_nothing();
	assert_int_equal(active(), 0);
	close(app);
}

/*
 * Issue 11: a read with nothing queued goes out straight from the relay's
 * read buffer; while the association is full, reads queue, and a later
 * read must not overtake them, whether or not the association has room by
 * then.  The bytes arrive in order either way.
 */
static void test_direct_send_keeps_order(void **state)
{
	int app;

	new_session(0);
	server_stream(1, &app);
	assert_int_equal(write(app, "one", 3), 3);
	pump();
	expect_data(1, "one");           /* nothing queued: sent at once */
	expect_nothing();
	send_again = 1;
	assert_int_equal(write(app, "two", 3), 3);
	pump();
	expect_nothing();                /* full: "two" waits in the queue */
	send_again = 0;                  /* room again, but no writable yet */
	assert_int_equal(write(app, "three", 5), 5);
	pump();
	/* Reads stopped while blocked, so "three" is still in the socket, or
	 * it queued behind "two": either way "two" comes first. */
	mux_session_on_writable(m);
	pump();
	assert_true(next_msg < nmsgs);
	if (msgs[next_msg].len == 3) {
		expect_data(1, "two");
		expect_data(1, "three");
	} else {
		expect_data(1, "twothree");
	}
	expect_nothing();
	assert_int_equal(proto_errors(), 0);
	close(app);
}

/* RST while received data is queued for a TCP side that does not read. */
static void test_rst_while_rx_queued(void **state)
{
	static uint8_t big[MUX_INITIAL_WINDOW];
	struct mux_stream *s;
	int app, small = 1;

	new_session(0);
	s = server_stream(1, &app);
	(void)setsockopt(app, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	(void)setsockopt(s->r.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	memset(big, 'a', sizeof(big));
	peer(1, MUX_DATA, big, sizeof(big));   /* exactly the initial window */
	assert_true(relay_out_len(s) > 0);
	assert_int_equal(proto_errors(), 0);
	/* Partial writes may have granted some back; take them off. */
	while (next_msg < nmsgs)
		(void)expect_credit(1);
	peer_rst(1, MUX_ERR_RESET);
	expect1(1, MUX_RST, MUX_ERR_RESET);
	expect_nothing();
	assert_int_equal(active(), 0);
	close(app);
}

static void test_data_after_fin(void **state)
{
	int app;

	new_session(0);
	server_stream(1, &app);
	peer0(1, MUX_FIN);
	peer(1, MUX_DATA, "late", 4);
	expect1(1, MUX_RST, MUX_ERR_PROTOCOL);
	expect_nothing();
	assert_int_equal(proto_errors(), 1);
	/* Freed at once; the id is held until the peer answers the RST. */
	assert_int_equal(active(), 0);
	assert_int_equal(tombs(), 1);
	peer(1, MUX_DATA, "in flight", 9);   /* dropped quietly */
	peer_rst(1, MUX_ERR_RESET);
	expect_nothing();
	assert_int_equal(active(), 0);
	assert_int_equal(tombs(), 0);
	assert_int_equal(proto_errors(), 1);
	close(app);
}

/* Client: OPEN goes out with the bytes already read; DATA before OPEN_OK is a violation. */
static void test_data_before_open_ok(void **state)
{
	struct mux_dest d = { .type = MUX_DEST_NONE };
	struct bufferevent *bev;
	struct mux_stream *s;
	int app;

	new_session(1);
	bev = tcp_pair(&app);

	assert_int_equal(write(app, "early", 5), 5);
	s = mux_stream_open(m, &d, bev, open_result, (void *)(intptr_t)1);
	assert_non_null(s);
	assert_int_equal(s->sid, 1);
	expect1(1, MUX_OPEN, -1);
	assert_int_equal(msgs[0].len, sizeof(open_fixed));
	assert_memory_equal(msgs[0].data, open_fixed, sizeof(open_fixed));
	pump();
	expect_data(1, "early");
	expect_nothing();

	peer(1, MUX_DATA, "bad", 3);
	expect1(1, MUX_RST, MUX_ERR_PROTOCOL);
	expect_nothing();
	assert_int_equal(open_err[1], MUX_ERR_PROTOCOL);
	assert_non_null(open_bev[1]);   /* handed back to the opener */
	assert_int_equal(active(), 0);
	assert_int_equal(tombs(), 1);
	/* The id is not handed out again before the peer answered. */
	assert_int_equal(sidtable_alloc(&m->st, 1), 3);
	peer_rst(1, MUX_ERR_RESET);
	expect_nothing();
	assert_int_equal(active(), 0);
	close(app);
}

/* Client: a refusal with code 0 still reads as a failure to the opener. */
static void test_rst_code_zero(void **state)
{
	struct mux_dest d = { .type = MUX_DEST_NONE };
	int app;

	new_session(1);
	assert_non_null(mux_stream_open(m, &d, tcp_pair(&app), open_result,
	                                (void *)(intptr_t)1));
	expect1(1, MUX_OPEN, -1);
	peer_rst(1, 0);
	assert_int_equal(open_err[1], MUX_ERR_GENERAL);
	assert_non_null(open_bev[1]);
	expect1(1, MUX_RST, MUX_ERR_RESET);
	expect_nothing();
	assert_int_equal(active(), 0);
	close(app);
}

/* Client: OPEN_OK delivers the reply the callback wrote before any DATA. */
static void test_open_ok_reply_first(void **state)
{
	struct mux_dest d = { .type = MUX_DEST_NONE };
	char buf[32];
	int app;

	new_session(1);
	assert_non_null(mux_stream_open(m, &d, tcp_pair(&app), open_result,
	                                (void *)(intptr_t)1));
	expect1(1, MUX_OPEN, -1);
	peer0(1, MUX_OPEN_OK);
	assert_int_equal(open_err[1], 0);
	peer(1, MUX_DATA, "data", 4);
	pump();
	assert_int_equal(app_read(app, buf, sizeof(buf)), 9);
	assert_memory_equal(buf, "REPLYdata", 9);
	expect_nothing();
	close(app);
}

static void test_credit_overrun(void **state)
{
	static uint8_t big[MUX_INITIAL_WINDOW + 1];
	int app;

	new_session(0);
	server_stream(1, &app);
	/* The window is exactly the initial credit; one byte more is a violation. */
	peer(1, MUX_DATA, big, sizeof(big));
	expect1(1, MUX_RST, MUX_ERR_PROTOCOL);
	expect_nothing();
	assert_int_equal(proto_errors(), 1);
	close(app);
}

/* Data before the outbound connection exists: only the initial window. */
static void test_credit_overrun_pending(void **state)
{
	static uint8_t big[MUX_INITIAL_WINDOW / 2 + 1];

	new_session(0);
	peer(1, MUX_OPEN, open_fixed, sizeof(open_fixed));
	assert_non_null(opened[1]);
	mux_stream_set_cancel(opened[1], cb_cancel, NULL);
	peer(1, MUX_DATA, big, sizeof(big));
	peer(1, MUX_DATA, big, sizeof(big));
	expect1(1, MUX_RST, MUX_ERR_PROTOCOL);
	expect_nothing();
	assert_int_equal(ncancel, 1);
	peer_rst(1, MUX_ERR_RESET);
	assert_int_equal(active(), 0);
}

/* A peer granting past 2^31 - 1 breaks the protocol. */
static void test_credit_add_overflow(void **state)
{
	const uint8_t inc[4] = { 0x7f, 0xff, 0xff, 0xff };
	const uint8_t zero[4] = { 0, 0, 0, 0 };
	int app;

	new_session(0);
	server_stream(1, &app);
	peer(1, MUX_CREDIT, inc, 4);
	expect1(1, MUX_RST, MUX_ERR_PROTOCOL);
	expect_nothing();
	close(app);
	server_stream(3, &app);
	peer(3, MUX_CREDIT, zero, 4);
	expect1(3, MUX_RST, MUX_ERR_PROTOCOL);
	close(app);
}

static void test_unknown_sid(void **state)
{
	new_session(0);
	peer(0, MUX_OPEN, open_fixed, sizeof(open_fixed));       /* stream 0 is reserved */
	peer(16, MUX_OPEN, open_fixed, sizeof(open_fixed));      /* beyond the table */
	peer(65535, MUX_DATA, "x", 1);
	peer(5, MUX_DATA, "x", 1);                                /* idle */
	peer0(5, MUX_FIN);
	peer_rst(5, MUX_ERR_RESET);                               /* never answered */
	peer(2, MUX_OPEN, open_fixed, sizeof(open_fixed));       /* even: server ids */
	expect_nothing();
	assert_int_equal(nopened, 0);
	assert_int_equal(active(), 0);
	assert_int_equal(proto_errors(), 7);
	/* A client accepts no OPEN at all. */
	mux_session_free(m);
	new_session(1);
	peer(1, MUX_OPEN, open_fixed, sizeof(open_fixed));
	expect_nothing();
	assert_int_equal(active(), 0);
}

/* A second OPEN on a stream that is still pending: the connect is cancelled. */
static void test_duplicate_open(void **state)
{
	int app;

	new_session(0);
	peer(1, MUX_OPEN, open_fixed, sizeof(open_fixed));
	mux_stream_set_cancel(opened[1], cb_cancel, NULL);
	peer(1, MUX_OPEN, open_fixed, sizeof(open_fixed));
	expect1(1, MUX_RST, MUX_ERR_PROTOCOL);
	expect_nothing();
	assert_int_equal(ncancel, 1);
	assert_int_equal(nopened, 1);
	/* The stream is gone with the cancel (the owner must not answer it). */
	assert_int_equal(active(), 0);
	peer_rst(1, MUX_ERR_RESET);
	assert_int_equal(tombs(), 0);

	/* And on an accepted stream too. */
	server_stream(3, &app);
	peer(3, MUX_OPEN, open_fixed, sizeof(open_fixed));
	expect1(3, MUX_RST, MUX_ERR_PROTOCOL);
	assert_int_equal(ncancel, 1);
	close(app);
}

/* A control message in parts, and one interleaved with another type. */
static void test_control_reassembly(void **state)
{
	static const uint8_t zero = 0;
	const uint8_t inc[4] = { 0, 0, 1, 0 };
	int app;

	new_session(0);
	mux_session_on_message(m, 1, MUX_OPEN, open_fixed, 2, 0);
	assert_int_equal(nopened, 0);
	mux_session_on_message(m, 1, MUX_OPEN, open_fixed + 2, 2, 1);
	assert_int_equal(nopened, 1);
	mux_stream_accept(opened[1], tcp_pair(&app));
	expect1(1, MUX_OPEN_OK, 0);
	mux_session_on_message(m, 1, MUX_CREDIT, inc, 2, 0);
	mux_session_on_message(m, 1, MUX_CLOSE, &zero, 1, 1);
	expect1(1, MUX_RST, MUX_ERR_PROTOCOL);
	/* The partial message was dropped: the peer's RST is still heard. */
	peer_rst(1, MUX_ERR_RESET);
	assert_int_equal(active(), 0);
	close(app);
}

/*
 * An empty first fragment still fixes the message's type: a LISTEN
 * finishing what began as an OPEN is refused, not taken for a LISTEN
 * (found by fuzz_mux).
 */
static void test_control_empty_fragment(void **state)
{
	uint8_t listen[MUX_FWD_OPEN_MAX];
	struct mux_listen_req req = { .port = 8080 };
	int n;

	new_session(0);
	n = proto_encode_listen(&req, listen, sizeof(listen));
	assert_true(n > 0);
	mux_session_on_message(m, 1, MUX_OPEN, open_fixed, 0, 0);
	mux_session_on_message(m, 1, MUX_LISTEN, listen, (size_t)n, 1);
	assert_int_equal(nopened, 0);
	expect1(1, MUX_RST, MUX_ERR_PROTOCOL);
	assert_int_equal(active(), 0);
}

/* The receiver grants credit back in quarter-window batches as TCP drains. */
static void test_credit_grant(void **state)
{
	static uint8_t chunk[MUX_INITIAL_WINDOW / 4];
	char buf[sizeof(chunk)];
	int app;

	new_session(0);
	server_stream(1, &app);
	peer(1, MUX_DATA, chunk, sizeof(chunk) - 1);
	expect_nothing();
	peer(1, MUX_DATA, chunk, 1);
	assert_int_equal(expect_credit(1), sizeof(chunk));
	expect_nothing();
	assert_int_equal(app_read(app, buf, sizeof(buf)), sizeof(chunk));
	close(app);
}

/* Session down: every stream fails, openers get their bev back. */
static void test_session_down(void **state)
{
	struct mux_dest d = { .type = MUX_DEST_NONE };
	int app1, app2;

	new_session(1);
	assert_non_null(mux_stream_open(m, &d, tcp_pair(&app1), open_result,
	                                (void *)(intptr_t)1));
	assert_non_null(mux_stream_open(m, &d, tcp_pair(&app2), open_result,
	                                (void *)(intptr_t)3));
	mux_session_on_down(m, "test");
	assert_int_equal(ndown, 1);
	assert_int_equal(open_err[1], MUX_ERR_GENERAL);
	assert_int_equal(open_err[3], MUX_ERR_GENERAL);
	assert_int_equal(active(), 0);
	close(app1);
	close(app2);
}

/* ---------- failure injection ---------- */

/* Server: the events of an accepted stream cannot be made; others still work. */
static void test_fault_accept(void **state)
{
	char buf[8];
	int app, app2;

	if (!FAULT_INJECTION_BUILT)
		skip();
	new_session(0);
	peer(1, MUX_OPEN, open_fixed, sizeof(open_fixed));
	mux_stream_set_cancel(opened[1], cb_cancel, NULL);
	fault_arm("mux_event_new", 1, 1);
	mux_stream_accept(opened[1], tcp_pair(&app));
	assert_int_equal(fault_fired("mux_event_new"), 1);
	expect1(1, MUX_RST, MUX_ERR_GENERAL);
	expect_nothing();
	pump();
	assert_int_equal(app_read(app, buf, sizeof(buf)), 0);   /* closed */
	assert_int_equal(ncancel, 0);
	peer_rst(1, MUX_ERR_RESET);
	assert_int_equal(active(), 0);
	close(app);

	server_stream(3, &app2);
	peer(3, MUX_DATA, "ok", 2);
	assert_int_equal(app_read(app2, buf, sizeof(buf)), 2);
	assert_int_equal(write(app2, "yes", 3), 3);
	pump();
	expect_data(3, "yes");
	close(app2);
}

/* Client: no stream without its events; the caller keeps bev; the next open works. */
static void test_fault_open(void **state)
{
	static const char *sites[] = { "mux_event_new", "mux_evbuffer_new", "mux_evbuffer_add" };
	struct mux_dest d = { .type = MUX_DEST_NONE };
	struct bufferevent *bev;
	struct mux_stream *s;
	char buf[8];
	int app;

	if (!FAULT_INJECTION_BUILT)
		skip();
	new_session(1);
	for (unsigned i = 0; i < sizeof(sites) / sizeof(sites[0]); i++) {
		bev = tcp_pair(&app);
		assert_int_equal(write(app, "abc", 3), 3);
		pump();
		/* what the front read with the SOCKS request stays in bev */
		bufferevent_enable(bev, EV_READ);
		pump();
		assert_int_equal(evbuffer_get_length(bufferevent_get_input(bev)), 3);
		fault_arm(sites[i], 1, 1);
		assert_null(mux_stream_open(m, &d, bev, open_result, (void *)(intptr_t)1));
		assert_int_equal(fault_fired(sites[i]), 1);
		expect_nothing();
		assert_int_equal(active(), 0);
		assert_int_equal(evbuffer_get_length(bufferevent_get_input(bev)), 3);
		bufferevent_free(bev);
		close(app);
		fault_reset();
	}
	bev = tcp_pair(&app);
	s = mux_stream_open(m, &d, bev, open_result, (void *)(intptr_t)1);
	assert_non_null(s);
	expect1(s->sid, MUX_OPEN, -1);
	peer0(s->sid, MUX_OPEN_OK);
	pump();
	assert_int_equal(app_read(app, buf, sizeof(buf)), 5);   /* REPLY */
	close(app);
}

/* The read event cannot be added: the stream fails with RST instead of never reading. */
static void test_fault_event_add(void **state)
{
	int app;

	if (!FAULT_INJECTION_BUILT)
		skip();
	new_session(0);
	peer(1, MUX_OPEN, open_fixed, sizeof(open_fixed));
	fault_arm("mux_event_add", 1, 1);
	mux_stream_accept(opened[1], tcp_pair(&app));
	expect1(1, MUX_OPEN_OK, 0);
	expect1(1, MUX_RST, MUX_ERR_GENERAL);
	expect_nothing();
	peer_rst(1, MUX_ERR_RESET);
	assert_int_equal(active(), 0);
	close(app);
}

/* No memory for data that arrives before the connection: that stream fails. */
static void test_fault_pending_rx(void **state)
{
	int app;

	if (!FAULT_INJECTION_BUILT)
		skip();
	new_session(0);
	peer(1, MUX_OPEN, open_fixed, sizeof(open_fixed));
	mux_stream_set_cancel(opened[1], cb_cancel, NULL);
	fault_arm("mux_evbuffer_new", 1, 1);
	peer(1, MUX_DATA, "x", 1);
	expect1(1, MUX_RST, MUX_ERR_GENERAL);
	assert_int_equal(ncancel, 1);
	server_stream(3, &app);
	close(app);
}


/* ---------- limits, tombstones and the memory budget ---------- */

static unsigned long stat_refused(void)
{
	struct mux_stats st;

	mux_session_stats(m, &st);
	return st.streams_refused;
}

/* A TCP side that takes (almost) nothing: received data stays queued. */
static void stall(struct mux_stream *s, int app)
{
	int small = 1;

	(void)setsockopt(app, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	(void)setsockopt(s->r.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
}

/* Beyond --max-conns an OPEN is refused before anything is allocated. */
static void test_refuse_before_alloc(void **state)
{
	struct mux_config cfg;
	struct mux_stats st;
	int app1, app3;

	mux_config_defaults(&cfg);
	cfg.window = MUX_INITIAL_WINDOW;
	cfg.max_streams = 2;
	new_session_cfg(0, &cfg);
	server_stream(1, &app1);
	server_stream(3, &app3);
	peer(5, MUX_OPEN, open_fixed, sizeof(open_fixed));
	expect1(5, MUX_RST, MUX_ERR_LIMIT);
	expect_nothing();
	mux_session_stats(m, &st);
	assert_int_equal(st.streams_opened, 2);   /* nothing allocated for 5 */
	assert_int_equal(st.streams_refused, 1);
	assert_int_equal(nopened, 2);
	assert_int_equal(tombs(), 1);
	/* What the peer sent after its OPEN is dropped quietly. */
	peer(5, MUX_DATA, "early", 5);
	peer0(5, MUX_FIN);
	expect_nothing();
	assert_int_equal(proto_errors(), 0);
	/* An honest peer answers; the id is free and a new OPEN is judged anew. */
	peer_rst(5, MUX_ERR_RESET);
	assert_int_equal(tombs(), 0);
	peer(5, MUX_OPEN, open_fixed, sizeof(open_fixed));
	expect1(5, MUX_RST, MUX_ERR_LIMIT);
	/* A peer that never answers: each refusal costs a byte, not a stream. */
	for (uint16_t sid = 7; sid < 16; sid += 2) {
		peer(sid, MUX_OPEN, open_fixed, sizeof(open_fixed));
		expect1(sid, MUX_RST, MUX_ERR_LIMIT);
	}
	assert_int_equal(active(), 2);
	assert_int_equal(tombs(), 6);
	assert_int_equal(stat_refused(), 7);
	/* Reusing an unanswered id: ignored, nothing sent, nothing allocated. */
	peer(5, MUX_OPEN, open_fixed, sizeof(open_fixed));
	expect_nothing();
	assert_int_equal(proto_errors(), 1);
	assert_int_equal(active(), 2);
	/* Once a stream ends, there is room again. */
	peer_rst(3, MUX_ERR_RESET);
	expect1(3, MUX_RST, MUX_ERR_RESET);
	peer_rst(7, MUX_ERR_RESET);
	peer(7, MUX_OPEN, open_fixed, sizeof(open_fixed));
	assert_int_equal(nopened, 3);
	expect_nothing();
	close(app1);
	close(app3);
}

/* A refusal while the association is full is sent, in order, once it has room. */
static void test_refuse_owed(void **state)
{
	struct mux_config cfg;

	mux_config_defaults(&cfg);
	cfg.window = MUX_INITIAL_WINDOW;
	cfg.max_streams = 0;
	new_session_cfg(0, &cfg);
	send_again = 1;
	peer(1, MUX_OPEN, open_fixed, sizeof(open_fixed));
	peer(3, MUX_OPEN, open_fixed, sizeof(open_fixed));
	expect_nothing();
	assert_int_equal(tombs(), 2);
	/* The peer resets 3 on its own before hearing from us: we still owe ours. */
	peer_rst(3, MUX_ERR_RESET);
	assert_int_equal(tombs(), 2);
	send_again = 0;
	mux_session_on_writable(m);
	expect1(1, MUX_RST, MUX_ERR_LIMIT);
	expect1(3, MUX_RST, MUX_ERR_LIMIT);
	expect_nothing();
	assert_int_equal(tombs(), 1);   /* 3 is done, 1 waits for the peer */
	assert_int_equal(active(), 0);
}

/* A reset stream is freed even if the peer never answers its RST. */
static void test_reset_freed_unanswered(void **state)
{
	int app;

	new_session(0);
	for (int round = 0; round < 7; round++) {
		uint16_t sid = (uint16_t)(1 + 2 * round);

		server_stream(sid, &app);
		peer(sid, MUX_DATA, "x", 1);
		close(app);
		mux_stream_reject(opened[sid], MUX_ERR_REFUSED);   /* no-op: accepted */
		stream_abort(opened[sid], MUX_ERR_REFUSED);
		expect1(sid, MUX_RST, MUX_ERR_REFUSED);
		expect_nothing();
		assert_int_equal(active(), 0);
	}
	assert_int_equal(tombs(), 7);
	/* A refused connect (egress failure) frees the stream the same way. */
	peer(15, MUX_OPEN, open_fixed, sizeof(open_fixed));
	mux_stream_reject(opened[15], MUX_ERR_REFUSED);
	expect1(15, MUX_RST, MUX_ERR_REFUSED);
	assert_int_equal(active(), 0);
	assert_int_equal(tombs(), 8);
	/* All odd ids are held: further OPENs are ignored, not answered. */
	peer(1, MUX_OPEN, open_fixed, sizeof(open_fixed));
	expect_nothing();
	assert_int_equal(active(), 0);
}

/* The budget must hold a new stream and its initial window, or the OPEN is refused. */
static void test_budget_refuses_open(void **state)
{
	static uint8_t big[MUX_INITIAL_WINDOW];
	struct mux_config cfg;
	struct mux_stats st;
	struct mux_stream *s;
	int app;

	mux_config_defaults(&cfg);
	cfg.window = MUX_INITIAL_WINDOW;
	cfg.mem_budget = 2 * (MUX_STREAM_COST + MUX_INITIAL_WINDOW) - 1;
	new_session_cfg(0, &cfg);
	s = server_stream(1, &app);
	stall(s, app);
	peer(1, MUX_DATA, big, sizeof(big));
	mux_session_stats(m, &st);
	assert_true(st.mem > MUX_STREAM_COST);
	assert_true(st.mem <= MUX_STREAM_COST + MUX_INITIAL_WINDOW);
	while (next_msg < nmsgs)
		(void)expect_credit(1);
	if (st.mem + MUX_STREAM_COST + MUX_INITIAL_WINDOW > cfg.mem_budget) {
		peer(3, MUX_OPEN, open_fixed, sizeof(open_fixed));
		expect1(3, MUX_RST, MUX_ERR_LIMIT);
		assert_int_equal(nopened, 1);
		assert_int_equal(stat_refused(), 1);
	}
	/* The stalled stream ends: its memory is back and streams are admitted. */
	peer_rst(1, MUX_ERR_RESET);
	expect1(1, MUX_RST, MUX_ERR_RESET);
	mux_session_stats(m, &st);
	assert_int_equal(st.mem, 0);
	peer_rst(3, MUX_ERR_RESET);
	peer(3, MUX_OPEN, open_fixed, sizeof(open_fixed));
	assert_int_equal(nopened, 2);
	expect_nothing();
	close(app);
}

/* Client: no stream is opened that the budget could not hold; the caller keeps bev. */
static void test_budget_client_open(void **state)
{
	struct mux_dest d = { .type = MUX_DEST_NONE };
	struct mux_config cfg;
	struct bufferevent *bev;
	int app, app2;

	mux_config_defaults(&cfg);
	cfg.window = MUX_INITIAL_WINDOW;
	cfg.mem_budget = 2 * MUX_STREAM_COST + MUX_INITIAL_WINDOW - 1;
	new_session_cfg(1, &cfg);
	assert_non_null(mux_stream_open(m, &d, tcp_pair(&app), open_result,
	                                (void *)(intptr_t)1));
	expect1(1, MUX_OPEN, -1);
	bev = tcp_pair(&app2);
	assert_null(mux_stream_open(m, &d, bev, open_result, (void *)(intptr_t)3));
	expect_nothing();
	assert_int_equal(active(), 1);
	bufferevent_free(bev);
	close(app);
	close(app2);
}

/* Over the budget, the stream with the most queued data is reset (0x12). */
static void test_budget_resets_largest(void **state)
{
	static uint8_t big[MUX_INITIAL_WINDOW];
	struct mux_config cfg;
	struct mux_stream *s1, *s3;
	struct mux_stats st;
	int app1, app3, app5;

	mux_config_defaults(&cfg);
	cfg.window = MUX_INITIAL_WINDOW;
	/* Room for three streams to open, not for all their windows. */
	cfg.mem_budget = 3 * MUX_STREAM_COST + MUX_INITIAL_WINDOW + MUX_INITIAL_WINDOW / 2;
	new_session_cfg(0, &cfg);
	s1 = server_stream(1, &app1);
	s3 = server_stream(3, &app3);
	server_stream(5, &app5);
	stall(s1, app1);
	stall(s3, app3);
	peer(1, MUX_DATA, big, sizeof(big));
	while (next_msg < nmsgs)
		(void)expect_credit(1);
	mux_session_stats(m, &st);
	assert_true(st.mem <= cfg.mem_budget);
	assert_int_equal(st.budget_resets, 0);
	for (int i = 0; i < 4; i++)
		peer(3, MUX_DATA, big, sizeof(big) / 4);
	mux_session_stats(m, &st);
	/* 1 holds the most: it goes, 3 stays. */
	assert_int_equal(st.budget_resets, 1);
	assert_int_equal(active(), 2);
	assert_non_null(sidtable_get(&m->st, 3));
	assert_null(sidtable_get(&m->st, 1));
	assert_true(st.mem <= cfg.mem_budget);
	while (next_msg < nmsgs && msgs[next_msg].ppid == MUX_CREDIT)
		next_msg++;
	expect1(1, MUX_RST, MUX_ERR_LIMIT);
	/* A stream whose TCP side reads is not touched. */
	peer(5, MUX_DATA, "fine", 4);
	mux_session_stats(m, &st);
	assert_int_equal(st.budget_resets, 1);
	close(app1);
	close(app3);
	close(app5);
}

/* Reading TCP stops at the budget and starts again once there is room. */
static void test_budget_holds_reads(void **state)
{
	struct mux_config cfg;
	size_t real;
	int app;

	mux_config_defaults(&cfg);
	cfg.window = MUX_INITIAL_WINDOW;
	new_session_cfg(0, &cfg);
	server_stream(1, &app);
	/* Other streams hold the whole budget (white box: the count is set). */
	real = m->mem;
	m->mem = cfg.mem_budget;
	assert_int_equal(write(app, "held", 4), 4);
	pump();
	expect_nothing();
	assert_true(m->reads_held);
	/* Not quite room enough yet (7/8 of the budget): still held. */
	m->mem = cfg.mem_budget / 8 * 7 + 1;
	mux_session_on_writable(m);
	pump();
	expect_nothing();
	/* Room again: reading resumes. */
	m->mem = real;
	mux_session_on_writable(m);
	assert_false(m->reads_held);
	pump();
	expect_data(1, "held");
	expect_nothing();
	close(app);
}

/* Server: stream 1 accepted; its start window granted right after OPEN_OK. */
static struct mux_stream *autotune_stream(int *app)
{
	struct mux_stream *s;

	peer(1, MUX_OPEN, open_fixed, sizeof(open_fixed));
	s = opened[1];
	assert_non_null(s);
	mux_stream_set_cancel(s, cb_cancel, NULL);
	mux_stream_accept(s, tcp_pair(app));
	expect1(1, MUX_OPEN_OK, 0);
	assert_int_equal(expect_credit(1), MUX_START_WINDOW - MUX_INITIAL_WINDOW);
	return s;
}

/*
 * Window auto-tuning: a stream that moves a whole window within four
 * round trips gets it doubled, granted with the next CREDIT, up to
 * --window and only as far as the session's budget for windows goes.
 */
static void test_window_autotune(void **state)
{
	static uint8_t chunk[MUX_INITIAL_WINDOW];
	static char buf[MUX_INITIAL_WINDOW];
	struct mux_config cfg;
	struct mux_stats st;
	struct mux_stream *s;
	uint64_t granted = 0;
	int app;

	mux_config_defaults(&cfg);
	cfg.window = 4 * MUX_START_WINDOW;
	/* Room for the first stream's start window and 100 KiB more. */
	cfg.rx_budget = MUX_START_WINDOW - MUX_INITIAL_WINDOW + 100 * 1024;
	new_session_cfg(0, &cfg);
	fake_srtt = 10000;          /* a long path: this test is fast against it */
	s = autotune_stream(&app);
	assert_int_equal(s->cr.window, MUX_START_WINDOW);
	granted = MUX_START_WINDOW;
	for (unsigned i = 0; i < 2 * MUX_START_WINDOW / sizeof(chunk); i++) {
		peer(1, MUX_DATA, chunk, sizeof(chunk));
		assert_int_equal(app_read(app, buf, sizeof(buf)), sizeof(chunk));
		while (next_msg < nmsgs && msgs[next_msg].sid == 1 &&
		       msgs[next_msg].ppid == MUX_CREDIT)
			granted += expect_credit(1);
	}
	expect_nothing();
	assert_int_equal(proto_errors(), 0);
	/* Grown once, by what the budget had left, and granted: the peer's
	 * credit is the window less what it has in flight (nothing). */
	assert_int_equal(s->cr.window, MUX_START_WINDOW + 100 * 1024);
	assert_int_equal(granted - 2 * MUX_START_WINDOW + s->cr.pending + s->cr.rx_consumed,
	                 s->cr.window);
	mux_session_stats(m, &st);
	assert_int_equal(st.windows_grown, 1);
	close(app);

	/* A path as fast as the consumer: no growth. */
	mux_session_free(m);
	new_session_cfg(0, &cfg);
	fake_srtt = 0;
	s = autotune_stream(&app);
	for (unsigned i = 0; i < 2 * MUX_START_WINDOW / sizeof(chunk); i++) {
		peer(1, MUX_DATA, chunk, sizeof(chunk));
		assert_int_equal(app_read(app, buf, sizeof(buf)), sizeof(chunk));
		if (i % 4 == 3)
			usleep(3000);       /* a window takes >= 6 ms: 4 x srtt (1 ms) */
	}
	assert_int_equal(s->cr.window, MUX_START_WINDOW);
	close(app);
	fake_srtt = -1;
}

/* Credit: the enlarged window is not the peer's before its CREDIT went out. */
static void test_credit_enlarged_unsent(void **state)
{
	static uint8_t big[MUX_INITIAL_WINDOW + 1];
	struct mux_config cfg;
	struct mux_stream *s;
	size_t over;
	int app;

	mux_config_defaults(&cfg);
	cfg.window = MUX_START_WINDOW;   /* 256 KiB, no auto-tuning */
	new_session_cfg(0, &cfg);
	peer(1, MUX_OPEN, open_fixed, sizeof(open_fixed));
	s = opened[1];
	assert_non_null(s);
	again_ppid = MUX_CREDIT;   /* the grant cannot go out yet */
	mux_stream_accept(s, tcp_pair(&app));
	expect1(1, MUX_OPEN_OK, 0);
	expect_nothing();
	stall(s, app);
	peer(1, MUX_DATA, big, sizeof(big));
	assert_int_equal(proto_errors(), 1);
	expect_nothing();   /* the stream waits for send space */
	again_ppid = 0;
	mux_session_on_writable(m);
	expect1(1, MUX_RST, MUX_ERR_PROTOCOL);   /* and the grant never goes out */
	expect_nothing();
	assert_int_equal(active(), 0);
	close(app);

	/* Once the CREDIT is sent, exactly the whole window may come. */
	again_ppid = 0;
	peer(3, MUX_OPEN, open_fixed, sizeof(open_fixed));
	s = opened[3];
	mux_stream_accept(s, tcp_pair(&app));
	expect1(3, MUX_OPEN_OK, 0);
	assert_int_equal(expect_credit(3), cfg.window - MUX_INITIAL_WINDOW);
	stall(s, app);
	for (unsigned i = 0; i < cfg.window / MUX_INITIAL_WINDOW; i++)
		peer(3, MUX_DATA, big, MUX_INITIAL_WINDOW);
	assert_int_equal(proto_errors(), 1);
	/* Grants for what the TCP side took are fine; more than that is not. */
	while (next_msg < nmsgs && msgs[next_msg].ppid == MUX_CREDIT)
		next_msg++;
	over = (size_t)s->cr.rx_allowed + 1;
	if (over <= sizeof(big)) {
		peer(3, MUX_DATA, big, over);   /* s is freed with its RST */
		expect1(3, MUX_RST, MUX_ERR_PROTOCOL);
		assert_int_equal(proto_errors(), 2);
	}
	close(app);
}

/* ---------- remote forwards: LISTEN, LISTEN_OK, FWD_OPEN ---------- */

static struct mux_stream *lstream;
static struct mux_listen_req last_req;
static uint32_t last_fwd_id;
static int ngone, listen_err, nlisten_cb;
static uint16_t listen_port;

static void cb_listen(struct mux_session *mm, struct mux_stream *s,
                      const struct mux_listen_req *req, void *arg)
{
	lstream = s;
	last_req = *req;
}

static void cb_fwd_open(struct mux_session *mm, struct mux_stream *s, uint32_t id,
                        const struct mux_dest *d, void *arg)
{
	opened[s->sid] = s;
	last_fwd_id = id;
	nopened++;
}

static void cb_gone(void *arg)
{
	ngone++;
}

static void cb_listen_answer(struct mux_stream *s, int err, uint16_t port, void *arg)
{
	nlisten_cb++;
	listen_err = err;
	listen_port = port;
}

static const struct mux_session_cbs fwd_cbs = {
	.up = cb_up, .down = cb_down, .stream_open = cb_stream_open,
	.listen = cb_listen, .fwd_open = cb_fwd_open,
};

static void new_session_fwd(int client)
{
	struct mux_config cfg;

	mux_session_free(m);   /* a test may make several sessions */
	mux_config_defaults(&cfg);
	cfg.window = MUX_INITIAL_WINDOW;
	new_session_cfg(client, &cfg);
	mux_session_free(m);   /* the same, with the forward callbacks */
	m = mux_session_new_ops(&cfg, &fwd_cbs, NULL, client, &fake_ops, (void *)1);
	assert_non_null(m);
	mux_session_on_up(m);
	lstream = NULL;
	ngone = listen_err = nlisten_cb = 0;
	listen_port = 0;
	last_fwd_id = 0;
}

/* LISTEN: loopback, port 4242, forward #7. */
static const uint8_t listen_msg[] = { 1, 0, 0, 0, 7, 0, 0, 0x10, 0x92 };

static void expect_listen_ok(uint16_t sid, uint16_t port)
{
	struct msg *g;

	assert_true(next_msg < nmsgs);
	g = &msgs[next_msg++];
	assert_int_equal(g->sid, sid);
	assert_int_equal(g->ppid, MUX_LISTEN_OK);
	assert_int_equal(g->len, 2);
	assert_int_equal(g->data[0] << 8 | g->data[1], port);
}

/* Server: a LISTEN is answered; the listener's stream carries nothing else. */
static void test_listen_server(void **state)
{
	new_session_fwd(0);
	peer(1, MUX_LISTEN, listen_msg, sizeof(listen_msg));
	assert_non_null(lstream);
	assert_int_equal(last_req.id, 7);
	assert_int_equal(last_req.port, 4242);
	expect_nothing();   /* no CREDIT on a listener's stream */
	mux_stream_set_gone(lstream, cb_gone, NULL);
	mux_listen_accept(lstream, 4242);
	expect_listen_ok(1, 4242);
	expect_nothing();
	assert_int_equal(active(), 1);
	/* DATA there is a protocol error: RST, and the owner hears it is gone. */
	peer(1, MUX_DATA, "x", 1);
	expect1(1, MUX_RST, MUX_ERR_PROTOCOL);
	assert_int_equal(ngone, 1);
	assert_int_equal(active(), 0);
	peer_rst(1, MUX_ERR_RESET);
	assert_int_equal(tombs(), 0);

	/* Other messages on a listener's stream too. */
	peer(3, MUX_LISTEN, listen_msg, sizeof(listen_msg));
	mux_listen_accept(lstream, 4242);
	expect_listen_ok(3, 4242);
	peer0(3, MUX_FIN);
	expect1(3, MUX_RST, MUX_ERR_PROTOCOL);
	peer_rst(3, MUX_ERR_RESET);

	/* The client ends it with RST: answered, gone. */
	peer(5, MUX_LISTEN, listen_msg, sizeof(listen_msg));
	mux_stream_set_gone(lstream, cb_gone, NULL);
	mux_listen_accept(lstream, 4242);
	expect_listen_ok(5, 4242);
	ngone = 0;
	peer_rst(5, MUX_ERR_GENERAL);
	expect1(5, MUX_RST, MUX_ERR_RESET);
	assert_int_equal(ngone, 1);
	assert_int_equal(active(), 0);
	assert_int_equal(tombs(), 0);

	/* A refusal goes out as RST with the policy's code. */
	peer(7, MUX_LISTEN, listen_msg, sizeof(listen_msg));
	mux_stream_reject(lstream, MUX_ERR_NO_PERMIT);
	expect1(7, MUX_RST, MUX_ERR_NO_PERMIT);
	expect_nothing();

	/* The session ends with a listener open: gone is called. */
	peer(9, MUX_LISTEN, listen_msg, sizeof(listen_msg));
	mux_stream_set_gone(lstream, cb_gone, NULL);
	mux_listen_accept(lstream, 4242);
	ngone = 0;
	mux_session_on_down(m, "test");
	assert_int_equal(ngone, 1);
}

/* Hostile LISTENs: malformed, on the wrong ids, to a server that takes none. */
static void test_listen_hostile(void **state)
{
	static const uint8_t bad[] = { 1, 0, 0, 0, 7, 0x80, 0, 0x10, 0x92 };   /* flags */
	unsigned long e0;

	new_session_fwd(0);
	peer(1, MUX_LISTEN, bad, sizeof(bad));
	expect1(1, MUX_RST, MUX_ERR_PROTOCOL);
	assert_null(lstream);
	peer(3, MUX_LISTEN, listen_msg, 3);
	expect1(3, MUX_RST, MUX_ERR_PROTOCOL);
	e0 = proto_errors();
	peer(2, MUX_LISTEN, listen_msg, sizeof(listen_msg));          /* even: the server's ids */
	peer(5, MUX_LISTEN_OK, "\x10\x92", 2);                        /* idle */
	peer(5, MUX_FWD_OPEN, "\0\0\0\1\1\0\0\0", 8);                 /* FWD_OPEN is the server's */
	expect_nothing();
	assert_int_equal(proto_errors(), e0 + 3);
	assert_null(lstream);
	/* A session without a listen callback (tor's server) refuses as unsupported. */
	mux_session_free(m);
	new_session(0);
	peer(1, MUX_LISTEN, listen_msg, sizeof(listen_msg));
	expect1(1, MUX_RST, MUX_ERR_UNSUPPORTED);
	expect_nothing();
	assert_int_equal(active(), 0);
}

/* A message type this version does not know, opening a stream: RST 0x07. */
static void test_unknown_type_refused(void **state)
{
	new_session(0);
	peer(1, 11, "abc", 3);
	expect1(1, MUX_RST, MUX_ERR_UNSUPPORTED);
	assert_int_equal(active(), 0);
	assert_int_equal(tombs(), 1);
	peer(1, 11, "abc", 3);           /* more of that life: dropped */
	expect_nothing();
	peer_rst(1, MUX_ERR_RESET);      /* the peer answers: the id is free */
	assert_int_equal(tombs(), 0);
	peer(2, 11, "abc", 3);           /* the server's own ids: ignored */
	expect_nothing();
	/* While the association is full, the refusal is owed and keeps its code. */
	send_again = 1;
	peer(3, 15, "abc", 3);
	expect_nothing();
	send_again = 0;
	mux_session_on_writable(m);
	expect1(3, MUX_RST, MUX_ERR_UNSUPPORTED);
	/* On the client: the server's even ids. */
	mux_session_free(m);
	new_session(1);
	peer(2, 15, "x", 1);
	expect1(2, MUX_RST, MUX_ERR_UNSUPPORTED);
	peer(1, 15, "x", 1);
	expect_nothing();
}

/* Client: LISTEN, LISTEN_OK; refusals and bad answers. */
static void test_listen_client(void **state)
{
	struct mux_listen_req req;
	struct mux_stream *s;

	new_session_fwd(1);
	memset(&req, 0, sizeof(req));
	req.id = 7;
	req.port = 4242;
	s = mux_listen_open(m, &req, cb_listen_answer, NULL);
	assert_non_null(s);
	mux_stream_set_gone(s, cb_gone, NULL);
	assert_true(next_msg < nmsgs);
	assert_int_equal(msgs[next_msg].sid, 1);
	assert_int_equal(msgs[next_msg].ppid, MUX_LISTEN);
	assert_int_equal(msgs[next_msg].len, sizeof(listen_msg));
	assert_memory_equal(msgs[next_msg].data, listen_msg, sizeof(listen_msg));
	next_msg++;
	expect_nothing();
	peer(1, MUX_LISTEN_OK, "\x9c\x40", 2);
	assert_int_equal(nlisten_cb, 1);
	assert_int_equal(listen_err, 0);
	assert_int_equal(listen_port, 40000);
	peer(1, MUX_LISTEN_OK, "\x9c\x40", 2);   /* twice: protocol error */
	expect1(1, MUX_RST, MUX_ERR_PROTOCOL);
	assert_int_equal(ngone, 1);
	assert_int_equal(nlisten_cb, 1);
	peer_rst(1, MUX_ERR_RESET);

	/* Refused: the callback gets the code, the stream answers and goes. */
	s = mux_listen_open(m, &req, cb_listen_answer, NULL);
	assert_non_null(s);
	next_msg = nmsgs;
	peer_rst(s->sid, MUX_ERR_GATEWAY);
	assert_int_equal(nlisten_cb, 2);
	assert_int_equal(listen_err, MUX_ERR_GATEWAY);
	assert_int_equal(active(), 0);

	/* A LISTEN_OK with port 0 is malformed. */
	s = mux_listen_open(m, &req, cb_listen_answer, NULL);
	next_msg = nmsgs;
	peer(s->sid, MUX_LISTEN_OK, "\0\0", 2);
	assert_int_equal(listen_err, MUX_ERR_PROTOCOL);
	assert_int_equal(active(), 0);

	/* Closed locally while waiting (the answer timed out). */
	s = mux_listen_open(m, &req, cb_listen_answer, NULL);
	next_msg = nmsgs;
	mux_listen_close(s, MUX_ERR_TIMEOUT);
	assert_int_equal(listen_err, MUX_ERR_TIMEOUT);
	assert_int_equal(nlisten_cb, 4);

	/* The association ends while waiting: the callback hears of it. */
	s = mux_listen_open(m, &req, cb_listen_answer, NULL);
	assert_non_null(s);
	mux_session_on_down(m, "test");
	assert_int_equal(nlisten_cb, 5);
	assert_int_equal(listen_err, MUX_ERR_GENERAL);

	/* A server cannot send LISTEN. */
	new_session_fwd(0);
	assert_null(mux_listen_open(m, &req, cb_listen_answer, NULL));
}

/* Server opens an even stream with FWD_OPEN; the client accepts it like the server does OPEN. */
/*
 * A UDP_OPEN on one of our own ids (here a FWD_OPEN still waiting for send
 * space) is a protocol error: it used to turn our stream into a UDP
 * association that then sent UDP_OPEN itself (found by fuzz_mux).
 */
static void test_udp_open_on_own_stream(void **state)
{
	struct mux_dest d;
	struct mux_stream *s;
	uint8_t udp_open[2];
	int app;

	memset(&d, 0, sizeof(d));
	new_session_fwd(0);
	again_ppid = MUX_FWD_OPEN;
	s = mux_stream_open_fwd(m, 9, &d, tcp_pair(&app), open_result, (void *)2);
	assert_non_null(s);
	expect_nothing();
	(void)proto_encode_udp_open(udp_open);
	peer(s->sid, MUX_UDP_OPEN, udp_open, sizeof(udp_open));
	again_ppid = 0;
	mux_session_on_writable(m);
	while (next_msg < nmsgs) {
		assert_int_not_equal(msgs[next_msg].ppid, MUX_UDP_OPEN);
		assert_int_not_equal(msgs[next_msg].ppid, MUX_UDP_OK);
		next_msg++;
	}
	assert_int_equal(proto_errors(), 1);
	close(app);
}

static void test_fwd_open_both_sides(void **state)
{
	struct mux_dest d;
	struct mux_stream *s;
	char buf[16];
	int app;

	struct bufferevent *bev;

	memset(&d, 0, sizeof(d));
	new_session_fwd(0);
	bev = tcp_pair(&app);
	assert_null(mux_stream_open(m, &d, bev, open_result, (void *)1));   /* OPEN is the client's */
	bufferevent_free(bev);
	close(app);
	s = mux_stream_open_fwd(m, 9, &d, tcp_pair(&app), open_result, (void *)2);
	assert_non_null(s);
	assert_int_equal(s->sid % 2, 0);
	assert_true(next_msg < nmsgs);
	assert_int_equal(msgs[next_msg].ppid, MUX_FWD_OPEN);
	assert_int_equal(msgs[next_msg].len, 8);
	assert_memory_equal(msgs[next_msg].data, "\0\0\0\x09\x01\0\0\0", 8);
	next_msg++;
	peer0(s->sid, MUX_OPEN_OK);
	assert_int_equal(open_err[2], 0);
	pump();
	assert_int_equal(app_read(app, buf, sizeof(buf)), 5);   /* the open callback's REPLY */
	close(app);

	/* The client side. */
	new_session_fwd(1);
	peer(2, MUX_FWD_OPEN, "\0\0\0\x09\x01\0\0\0", 8);
	assert_int_equal(last_fwd_id, 9);
	assert_non_null(opened[2]);
	mux_stream_accept(opened[2], tcp_pair(&app));
	expect1(2, MUX_OPEN_OK, 0);
	peer(2, MUX_DATA, "hi", 2);
	assert_int_equal(app_read(app, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "hi", 2);
	assert_int_equal(write(app, "yo", 2), 2);
	pump();
	expect_data(2, "yo");
	close(app);
	/* Bad FWD_OPENs: malformed, odd id, unknown address type; DATA before it. */
	peer(4, MUX_FWD_OPEN, "\0\0\0", 3);
	expect1(4, MUX_RST, MUX_ERR_PROTOCOL);
	peer(6, MUX_FWD_OPEN, "\0\0\0\1\1\x09\0\0", 8);
	expect1(6, MUX_RST, MUX_ERR_ATYP);
	peer(3, MUX_FWD_OPEN, "\0\0\0\1\1\0\0\0", 8);
	peer(8, MUX_DATA, "x", 1);
	/* A client session without the callback refuses. */
	mux_session_free(m);
	new_session(1);
	peer(2, MUX_FWD_OPEN, "\0\0\0\x09\x01\0\0\0", 8);
	expect1(2, MUX_RST, MUX_ERR_UNSUPPORTED);
	expect_nothing();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_life_and_close_crossing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_crossing_while_blocked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fin_then_rst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rst_while_tx_queued, setup, teardown),
		cmocka_unit_test_setup_teardown(test_direct_send_keeps_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rst_while_rx_queued, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_after_fin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_before_open_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_ok_reply_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rst_code_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_overrun, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_overrun_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_add_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_sid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_reassembly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_empty_fragment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_grant, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_accept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_event_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_pending_rx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_before_alloc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_owed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_freed_unanswered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_refuses_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_client_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_resets_largest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_holds_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_enlarged_unsent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window_autotune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listen_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listen_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_type_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listen_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fwd_open_both_sides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_open_on_own_stream, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
