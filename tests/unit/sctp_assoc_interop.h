/*
 * Interoperability of the native association core with the real usrsctp
 * (the stock Debian library), in one process over AF_CONN, on a virtual
 * clock: usrsctp runs without threads and advances by
 * usrsctp_handle_timers(10) when the link is idle, our core is handed the
 * same time.  usrsctp keeps its default extensions (AUTH, ECN, PR-SCTP,
 * ASCONF, ...), so its INITs carry parameters our core must skip.
 *
 * Included by test_sctp_assoc.c (it needs cmocka and sctp_sim.h first).
 */
#include <usrsctp.h>

#define IO_QCAP 1024

static struct {
	struct sim_pkt to_us[IO_QCAP];       /* usrsctp -> our core */
	unsigned n_to_us;
	struct sim_pkt to_them[IO_QCAP];     /* our core -> usrsctp */
	unsigned n_to_them;
	unsigned overflow;
	uint64_t now;
	struct sctp_core *a;
	struct sim_side side;                /* our event log and rng */
	unsigned sent_by_us[256];            /* by first chunk type */
	int inited;
	uint8_t drop_ours;                   /* lose our next packet of this type */
	uint16_t notif[16];                  /* usrsctp sac_state values */
	unsigned nnotif;
	int no_idata;                        /* our core offers DATA only */
	int loop;                            /* usrsctp talks to usrsctp */
	uint64_t moved;                      /* packets delivered */
	unsigned loss_pct;                   /* random loss both ways */
	uint64_t rng;
} IO;

/* usrsctp's output: no cmocka asserts here (no longjmp through usrsctp). */
static int io_usrsctp_out(void *addr, void *buf, size_t len, uint8_t tos,
                          uint8_t set_df)
{
	(void)addr; (void)tos; (void)set_df;
	if (IO.n_to_us >= IO_QCAP || len > SIM_PKT) {
		IO.overflow++;
		return 0;
	}
	memcpy(IO.to_us[IO.n_to_us].buf, buf, len);
	IO.to_us[IO.n_to_us].len = len;
	IO.n_to_us++;
	return 0;
}

static void io_our_out(void *arg, const uint8_t *p, size_t n)
{
	(void)arg;
	if (IO.n_to_them >= IO_QCAP || n > SIM_PKT) {
		IO.overflow++;
		return;
	}
	if (n > SCTP_HEADER_LEN)
		IO.sent_by_us[p[SCTP_HEADER_LEN]]++;
	if (IO.drop_ours != 0 && n > SCTP_HEADER_LEN &&
	    p[SCTP_HEADER_LEN] == IO.drop_ours) {
		IO.drop_ours = 0;
		return;
	}
	memcpy(IO.to_them[IO.n_to_them].buf, p, n);
	IO.to_them[IO.n_to_them].len = n;
	IO.n_to_them++;
}

static void io_init(void)
{
	if (IO.inited)
		return;
	usrsctp_init_nothreads(0, io_usrsctp_out, NULL);
	usrsctp_sysctl_set_sctp_blackhole(2);
	usrsctp_register_address((void *)2);
	IO.inited = 1;
}

/* Our association on local_port, talking to usrsctp on remote_port. */
static void io_ours(uint16_t local_port, uint16_t remote_port, int listen)
{
	struct sctp_core_config c;
	struct sctp_core_env env;

	memset(&c, 0, sizeof(c));
	c.local_port = local_port;
	c.remote_port = remote_port;
	c.os = 16;
	c.mis = 16;
	c.idata = !IO.no_idata;
	c.listen = listen;
	if (IO.loss_pct)
		c.rto_min_ms = 200;
	memset(&env, 0, sizeof(env));
	IO.side.rng = 0x1234 + local_port;
	IO.side.nev = 0;
	IO.side.sim = NULL;
	env.arg = &IO.side;
	env.random = sim_random_cb;
	env.output = io_our_out;
	env.event = sim_event_cb;
	env.secret = sim_secret[0];
	env.secret_len = sizeof(sim_secret[0]);
	sctp_core_free(IO.a);
	IO.a = sctp_core_new(&c, &env);
	assert_non_null(IO.a);
	memset(IO.sent_by_us, 0, sizeof(IO.sent_by_us));
	IO.nnotif = 0;
}

static struct socket *io_socket(uint16_t port)
{
	struct socket *s = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP,
	                                  NULL, NULL, 0, NULL);
	struct sockaddr_conn sc;
	struct sctp_event ev;

	assert_non_null(s);
	assert_int_equal(usrsctp_set_non_blocking(s, 1), 0);
	memset(&ev, 0, sizeof(ev));
	ev.se_assoc_id = SCTP_FUTURE_ASSOC;
	ev.se_on = 1;
	ev.se_type = SCTP_ASSOC_CHANGE;
	assert_int_equal(usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_EVENT, &ev,
	                                    sizeof(ev)), 0);
	memset(&sc, 0, sizeof(sc));
	sc.sconn_family = AF_CONN;
	sc.sconn_port = htons(port);
	sc.sconn_addr = (void *)2;
	assert_int_equal(usrsctp_bind(s, (struct sockaddr *)&sc, sizeof(sc)), 0);
	return s;
}

/* Reads usrsctp notifications (and any data) off a socket. */
static void io_read(struct socket *s)
{
	uint8_t buf[4096];

	if (s == NULL)
		return;
	for (int i = 0; i < 16; i++) {
		struct sockaddr_conn from;
		socklen_t fromlen = sizeof(from);
		struct sctp_rcvinfo info;
		socklen_t infolen = sizeof(info);
		unsigned int infotype = 0;
		int flags = 0;
		ssize_t n = usrsctp_recvv(s, buf, sizeof(buf),
		                          (struct sockaddr *)&from, &fromlen,
		                          &info, &infolen, &infotype, &flags);

		if (n <= 0)
			return;
		if ((flags & MSG_NOTIFICATION) && IO.nnotif < 16) {
			const union sctp_notification *sn = (const void *)buf;

			if (sn->sn_header.sn_type == SCTP_ASSOC_CHANGE)
				IO.notif[IO.nnotif++] = sn->sn_assoc_change.sac_state;
		}
	}
}

static int io_notified(uint16_t sac_state)
{
	for (unsigned i = 0; i < IO.nnotif; i++)
		if (IO.notif[i] == sac_state)
			return 1;
	return 0;
}

/*
 * One step: deliver both queues, then, if nothing moved, let 10 ms pass
 * on both clocks.  Returns 1 if packets moved.
 */
static int io_step(void)
{
	struct sim_pkt *q;
	unsigned n;
	int moved = 0;

	if (IO.n_to_them > 0) {
		static struct sim_pkt batch[IO_QCAP];

		n = IO.n_to_them;
		memcpy(batch, IO.to_them, n * sizeof(batch[0]));
		IO.n_to_them = 0;
		for (unsigned i = 0; i < n; i++)
			if (!IO.loss_pct || sim_rand(&IO.rng) % 100 >= IO.loss_pct)
				usrsctp_conninput((void *)2, batch[i].buf,
				                  batch[i].len, 0);
		moved = 1;
	}
	if (IO.n_to_us > 0) {
		static struct sim_pkt batch[IO_QCAP];

		n = IO.n_to_us;
		memcpy(batch, IO.to_us, n * sizeof(batch[0]));
		IO.n_to_us = 0;
		IO.moved += n;
		for (unsigned i = 0; i < n; i++) {
			q = &batch[i];
			if (IO.loop) {
				usrsctp_conninput((void *)2, q->buf, q->len, 0);
				continue;
			}
			if (IO.loss_pct && sim_rand(&IO.rng) % 100 < IO.loss_pct)
				continue;
			if (IO.a != NULL)
				sctp_core_input(IO.a, q->buf, q->len, IO.now);
		}
		moved = 1;
	}
	if (!moved) {
		IO.now += 10;
		usrsctp_handle_timers(10);
		if (IO.a != NULL && sctp_core_next_deadline(IO.a) <= IO.now)
			sctp_core_timeout(IO.a, IO.now);
	}
	return moved;
}

/* Runs until cond() holds or `ms` of virtual time pass. */
static int io_until(int (*cond)(struct socket *), struct socket *s, uint64_t ms)
{
	uint64_t end = IO.now + ms;

	for (unsigned steps = 0; steps < 100000 && IO.now < end; steps++) {
		io_step();
		io_read(s);
		if (cond != NULL && cond(s))
			return 1;
	}
	return cond == NULL;
}

static int cond_us_up(struct socket *s)
{
	(void)s;
	return sctp_core_state(IO.a) == SCTP_S_ESTABLISHED &&
	       io_notified(SCTP_COMM_UP);
}

static int cond_us_closed(struct socket *s)
{
	(void)s;
	return sctp_core_state(IO.a) == SCTP_S_CLOSED &&
	       IO.n_to_them == 0 && IO.n_to_us == 0;
}

static int cond_them_shutdown(struct socket *s)
{
	(void)s;
	return cond_us_closed(NULL) && io_notified(SCTP_SHUTDOWN_COMP);
}

static int cond_them_lost(struct socket *s)
{
	(void)s;
	return cond_us_closed(NULL) && io_notified(SCTP_COMM_LOST);
}

static void io_finish_usrsctp(void)
{
	for (int i = 0; i < 50; i++)
		io_step();
}

/* Our core connects to a usrsctp server: up (a COOKIE-ECHO lost), probe,
 * shutdown; up, abort; up, usrsctp aborts. */
static void test_usrsctp_interop_client(void **state UNUSED)
{
	struct socket *srv, *acc = NULL;
	const struct sim_ev *ev;
	uint32_t id = 0;

	io_init();
	srv = io_socket(6000);
	assert_int_equal(usrsctp_listen(srv, 3), 0);
	for (int run = 0; run < 3; run++) {
		io_ours((uint16_t)(6001 + run), 6000, 0);
		/* The first run loses our first COOKIE-ECHO: T1-cookie. */
		IO.drop_ours = run == 0 ? SCTP_CT_COOKIE_ECHO : 0;
		assert_int_equal(sctp_core_connect(IO.a, IO.now), 0);
		for (int i = 0; i < 2000 && acc == NULL; i++) {
			io_step();
			acc = usrsctp_accept(srv, NULL, NULL);
		}
		assert_non_null(acc);
		assert_true(io_until(cond_us_up, acc, 5000));
		ev = sim_last_ev(&IO.side, SCTP_EV_UP);
		assert_non_null(ev);
		assert_int_equal(ev->ev.out_streams, 16);
		assert_int_equal(IO.sent_by_us[SCTP_CT_COOKIE_ECHO], run == 0 ? 2 : 1);
		if (run == 0) {
			/* An on-demand probe comes back from usrsctp. */
			assert_int_equal(sctp_core_probe(IO.a, IO.now, &id), 0);
			io_until(NULL, acc, 100);
			ev = sim_last_ev(&IO.side, SCTP_EV_HEARTBEAT_ACK);
			assert_non_null(ev);
			assert_int_equal(ev->ev.probe_id, id);
			assert_int_equal(sctp_core_shutdown(IO.a, IO.now), 0);
			assert_true(io_until(cond_them_shutdown, acc, 5000));
			ev = sim_last_ev(&IO.side, SCTP_EV_DOWN);
			assert_int_equal(ev->ev.reason, SCTP_DOWN_SHUTDOWN);
			assert_int_equal(IO.sent_by_us[SCTP_CT_SHUTDOWN_COMPLETE], 1);
		} else if (run == 1) {
			sctp_core_abort(IO.a, IO.now);
			assert_true(io_until(cond_them_lost, acc, 5000));
			assert_int_equal(IO.sent_by_us[SCTP_CT_ABORT], 1);
		} else {
			struct linger lg = { 1, 0 };

			assert_int_equal(usrsctp_setsockopt(acc, SOL_SOCKET, SO_LINGER,
			                                    &lg, sizeof(lg)), 0);
			usrsctp_close(acc);
			acc = NULL;
			assert_true(io_until(cond_us_closed, NULL, 5000));
			ev = sim_last_ev(&IO.side, SCTP_EV_DOWN);
			assert_non_null(ev);
			assert_int_equal(ev->ev.reason, SCTP_DOWN_PEER_ABORT);
		}
		if (acc != NULL)
			usrsctp_close(acc);
		acc = NULL;
		io_finish_usrsctp();
	}
	usrsctp_close(srv);
	io_finish_usrsctp();
	FREE_AND_NULL(sctp_core_free, IO.a);
	assert_int_equal(IO.overflow, 0);
}

/* A usrsctp client connects to our listening core: up (an INIT-ACK lost),
 * a heartbeat echoed, usrsctp closes gracefully; up, we shut down; up, we
 * abort. */
static void test_usrsctp_interop_server(void **state UNUSED)
{
	const struct sim_ev *ev;

	io_init();
	for (int run = 0; run < 3; run++) {
		uint16_t cport = (uint16_t)(6011 + run);
		struct socket *cli = io_socket(cport);
		struct sockaddr_conn sc;

		io_ours(6010, cport, 1);
		/* The first run loses our first INIT-ACK: usrsctp's T1-init
		 * resends the INIT and we answer again, statelessly. */
		IO.drop_ours = run == 0 ? SCTP_CT_INIT_ACK : 0;
		memset(&sc, 0, sizeof(sc));
		sc.sconn_family = AF_CONN;
		sc.sconn_port = htons(6010);
		sc.sconn_addr = (void *)2;
		assert_true(usrsctp_connect(cli, (struct sockaddr *)&sc, sizeof(sc)) == 0 ||
		            errno == EINPROGRESS);
		assert_true(io_until(cond_us_up, cli, 5000));
		ev = sim_last_ev(&IO.side, SCTP_EV_UP);
		assert_non_null(ev);
		assert_int_equal(IO.sent_by_us[SCTP_CT_INIT_ACK], run == 0 ? 2 : 1);
		assert_int_equal(IO.sent_by_us[SCTP_CT_COOKIE_ACK], 1);
		if (run == 0) {
			/* A heartbeat usrsctp sends on demand is echoed. */
			struct sctp_paddrparams pp;

			memset(&pp, 0, sizeof(pp));
			memcpy(&pp.spp_address, &sc, sizeof(sc));
			pp.spp_flags = SPP_HB_DEMAND;
			assert_int_equal(usrsctp_setsockopt(cli, IPPROTO_SCTP,
			                 SCTP_PEER_ADDR_PARAMS, &pp, sizeof(pp)), 0);
			io_until(NULL, cli, 1000);
			assert_int_equal(IO.sent_by_us[SCTP_CT_HEARTBEAT_ACK], 1);
			assert_int_equal(sctp_core_state(IO.a), SCTP_S_ESTABLISHED);
			usrsctp_close(cli);
			cli = NULL;
			assert_true(io_until(cond_us_closed, NULL, 5000));
			ev = sim_last_ev(&IO.side, SCTP_EV_DOWN);
			assert_int_equal(ev->ev.reason, SCTP_DOWN_SHUTDOWN);
			assert_int_equal(IO.sent_by_us[SCTP_CT_SHUTDOWN_ACK], 1);
		} else if (run == 1) {
			assert_int_equal(sctp_core_shutdown(IO.a, IO.now), 0);
			assert_true(io_until(cond_them_shutdown, cli, 5000));
			ev = sim_last_ev(&IO.side, SCTP_EV_DOWN);
			assert_int_equal(ev->ev.reason, SCTP_DOWN_SHUTDOWN);
		} else {
			sctp_core_abort(IO.a, IO.now);
			assert_true(io_until(cond_them_lost, cli, 5000));
		}
		if (cli != NULL)
			usrsctp_close(cli);
		io_finish_usrsctp();
	}
	FREE_AND_NULL(sctp_core_free, IO.a);
	usrsctp_deregister_address((void *)2);
	for (int i = 0; i < 50 && usrsctp_finish() != 0; i++)
		io_step();
	assert_int_equal(IO.overflow, 0);
}

/* ---- data transfer with usrsctp ---- */

#define IOX_STREAMS 4
#define IOX_BYTES (3u * 1024 * 1024)  /* each way */

static struct {
	uint64_t h_ours_sent[IOX_STREAMS], h_ours_rcvd[IOX_STREAMS];
	uint64_t h_them_sent[IOX_STREAMS], h_them_rcvd[IOX_STREAMS];
	size_t ours_sent, ours_rcvd, them_sent, them_rcvd;
	size_t unconsumed;
	uint64_t rng_ours, rng_them;
	struct sim sim;                  /* only its event hook is used */
} IOX;

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static void iox_hook(struct sim *s, int id, const struct sctp_core_event *ev)
{
	(void)s; (void)id;
	if (ev->type != SCTP_EV_DATA || ev->sid >= IOX_STREAMS)
		return;
	IOX.h_ours_rcvd[ev->sid] = fnv(IOX.h_ours_rcvd[ev->sid], ev->data, ev->len);
	IOX.ours_rcvd += ev->len;
	IOX.unconsumed += ev->len;
}

static void iox_payload(uint64_t *rng, uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(sim_rand(rng) >> 56);
}

/* Our side: queue messages until the core says WOULD_BLOCK. */
static void iox_fill_ours(void)
{
	static uint8_t buf[8192];

	while (IOX.ours_sent < IOX_BYTES &&
	       sctp_core_state(IO.a) == SCTP_S_ESTABLISHED) {
		uint64_t save = IOX.rng_ours;
		uint64_t r = sim_rand(&IOX.rng_ours);
		size_t n = 1 + r % sizeof(buf);
		uint16_t sid = (uint16_t)((r >> 32) % IOX_STREAMS);
		int rc;

		if (n > IOX_BYTES - IOX.ours_sent)
			n = IOX_BYTES - IOX.ours_sent;
		iox_payload(&IOX.rng_ours, buf, n);
		rc = sctp_core_send(IO.a, sid, 51, 0, buf, n, IO.now);
		if (rc == SCTP_CORE_WOULD_BLOCK) {
			IOX.rng_ours = save;    /* the same message next time */
			return;
		}
		assert_int_equal(rc, 0);
		IOX.h_ours_sent[sid] = fnv(IOX.h_ours_sent[sid], buf, n);
		IOX.ours_sent += n;
	}
}

static void iox_fill_them(struct socket *s)
{
	static uint8_t buf[8192];

	while (IOX.them_sent < IOX_BYTES) {
		uint64_t save = IOX.rng_them;
		uint64_t r = sim_rand(&IOX.rng_them);
		size_t n = 1 + r % sizeof(buf);
		struct sctp_sndinfo si;

		if (n > IOX_BYTES - IOX.them_sent)
			n = IOX_BYTES - IOX.them_sent;
		memset(&si, 0, sizeof(si));
		si.snd_sid = (uint16_t)((r >> 32) % IOX_STREAMS);
		si.snd_ppid = htonl(52);
		iox_payload(&IOX.rng_them, buf, n);
		if (usrsctp_sendv(s, buf, n, NULL, 0, &si, sizeof(si),
		                  SCTP_SENDV_SNDINFO, 0) < 0) {
			IOX.rng_them = save;
			return;
		}
		IOX.h_them_sent[si.snd_sid] = fnv(IOX.h_them_sent[si.snd_sid], buf, n);
		IOX.them_sent += n;
	}
}

static void iox_read_them(struct socket *s)
{
	static uint8_t buf[65536];

	for (;;) {
		struct sockaddr_conn from;
		socklen_t fromlen = sizeof(from);
		struct sctp_rcvinfo info;
		socklen_t infolen = sizeof(info);
		unsigned int infotype = 0;
		int flags = 0;
		ssize_t n = usrsctp_recvv(s, buf, sizeof(buf),
		                          (struct sockaddr *)&from, &fromlen,
		                          &info, &infolen, &infotype, &flags);

		if (n <= 0)
			return;
		if (flags & MSG_NOTIFICATION) {
			const union sctp_notification *sn = (const void *)buf;

			if (sn->sn_header.sn_type == SCTP_ASSOC_CHANGE &&
			    IO.nnotif < 16)
				IO.notif[IO.nnotif++] = sn->sn_assoc_change.sac_state;
			continue;
		}
		assert_int_equal(infotype, SCTP_RECVV_RCVINFO);
		assert_true(info.rcv_sid < IOX_STREAMS);
		IOX.h_them_rcvd[info.rcv_sid] =
			fnv(IOX.h_them_rcvd[info.rcv_sid], buf, (size_t)n);
		IOX.them_rcvd += (size_t)n;
	}
}

static void iox_socket_opts(struct socket *s, int idata)
{
	const int on = 1;

	assert_int_equal(usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_RECVRCVINFO,
	                                    &on, sizeof(on)), 0);
	if (idata) {
		struct sctp_assoc_value av;
		int level = 2;

		assert_int_equal(usrsctp_setsockopt(s, IPPROTO_SCTP,
		                 SCTP_FRAGMENT_INTERLEAVE, &level, sizeof(level)), 0);
		memset(&av, 0, sizeof(av));
		av.assoc_id = SCTP_FUTURE_ASSOC;
		av.assoc_value = 1;
		assert_int_equal(usrsctp_setsockopt(s, IPPROTO_SCTP,
		                 0x00001206 /* SCTP_INTERLEAVING_SUPPORTED */,
		                 &av, sizeof(av)), 0);
	}
}

static int iox_done(void)
{
	return IOX.ours_rcvd == IOX_BYTES && IOX.them_rcvd == IOX_BYTES;
}

/*
 * 3 MB each way on four streams between our core and usrsctp, with 1%
 * loss both ways: as client and as server, with DATA and with I-DATA.
 * Every stream's bytes hash the same on both ends.
 */
static void test_usrsctp_interop_data(void **state UNUSED)
{
	io_init();
	for (int run = 0; run < 4; run++) {
		int idata = run & 1, client = run < 2;
		uint16_t ours = (uint16_t)(6100 + 2 * run), theirs = (uint16_t)(ours + 1);
		struct socket *ls = NULL, *s = NULL;
		const struct sim_ev *ev;
		struct sctp_core_info in;

		memset(&IOX, 0, sizeof(IOX));
		IOX.rng_ours = 0x1111 + (uint64_t)run;
		IOX.rng_them = 0x2222 + (uint64_t)run;
		IO.no_idata = !idata;
		IO.loss_pct = 1;
		IO.rng = 77 + (uint64_t)run;
		io_ours(ours, theirs, !client);
		IOX.sim.event_hook = iox_hook;
		IOX.sim.now = IO.now;
		IO.side.sim = &IOX.sim;
		if (client) {
			ls = io_socket(theirs);
			iox_socket_opts(ls, idata);
			assert_int_equal(usrsctp_listen(ls, 1), 0);
			assert_int_equal(sctp_core_connect(IO.a, IO.now), 0);
			for (int i = 0; i < 5000 && s == NULL; i++) {
				io_step();
				s = usrsctp_accept(ls, NULL, NULL);
			}
			assert_non_null(s);
			usrsctp_set_non_blocking(s, 1);
		} else {
			struct sockaddr_conn sc;

			s = io_socket(theirs);
			iox_socket_opts(s, idata);
			memset(&sc, 0, sizeof(sc));
			sc.sconn_family = AF_CONN;
			sc.sconn_port = htons(ours);
			sc.sconn_addr = (void *)2;
			assert_true(usrsctp_connect(s, (struct sockaddr *)&sc,
			                            sizeof(sc)) == 0 ||
			            errno == EINPROGRESS);
		}
		for (int i = 0; i < 5000 &&
		     sctp_core_state(IO.a) != SCTP_S_ESTABLISHED; i++)
			io_step();
		assert_int_equal(sctp_core_state(IO.a), SCTP_S_ESTABLISHED);
		ev = sim_last_ev(&IO.side, SCTP_EV_UP);
		assert_non_null(ev);
		assert_int_equal(ev->ev.idata, idata);
		for (unsigned steps = 0; steps < 2000000 && !iox_done(); steps++) {
			iox_fill_ours();
			iox_fill_them(s);
			io_step();
			iox_read_them(s);
			if (IOX.unconsumed > 0) {
				sctp_core_consume(IO.a, IOX.unconsumed, IO.now);
				IOX.unconsumed = 0;
			}
			IOX.sim.now = IO.now;
		}
		if (!iox_done())
			fail_msg("run %d: ours got %zu, usrsctp got %zu of %u", run,
			         IOX.ours_rcvd, IOX.them_rcvd, IOX_BYTES);
		for (int i = 0; i < IOX_STREAMS; i++) {
			assert_true(IOX.h_ours_rcvd[i] == IOX.h_them_sent[i]);
			assert_true(IOX.h_them_rcvd[i] == IOX.h_ours_sent[i]);
		}
		sctp_core_get_info(IO.a, &in);
		if (getenv("SCTPT_DATA_DEBUG"))
			fprintf(stderr, "run %d: %zu/%zu bytes, t=%llu ms, rtx %u, fast %u, t3 %u, cwnd %u\n",
			        run, IOX.ours_rcvd, IOX.them_rcvd,
			        (unsigned long long)IO.now, in.retransmits,
			        in.fast_retransmits, in.t3_expiries, in.cwnd);
		assert_true(in.retransmits > 0);        /* the loss was felt */
		IO.loss_pct = 0;
		assert_int_equal(sctp_core_shutdown(IO.a, IO.now), 0);
		assert_true(io_until(cond_us_closed, s, 20000));
		ev = sim_last_ev(&IO.side, SCTP_EV_DOWN);
		assert_non_null(ev);
		assert_int_equal(ev->ev.reason, SCTP_DOWN_SHUTDOWN);
		IO.side.sim = NULL;
		usrsctp_close(s);
		if (ls != NULL)
			usrsctp_close(ls);
		io_finish_usrsctp();
	}
	IO.no_idata = 0;
	IO.overflow = 0;
	FREE_AND_NULL(sctp_core_free, IO.a);
}

/*
 * The reference for test_bench in test_sctp_data.c: usrsctp talking to
 * usrsctp in memory over AF_CONN, 1100-byte messages one way, the same
 * batching as there.  Runs only with SCTPT_SCTP_BENCH=MB set.
 */
static void test_usrsctp_bench(void **state UNUSED)
{
	const char *env = getenv("SCTPT_SCTP_BENCH");
	static uint8_t msg[1100], rbuf[65536];
	struct socket *ls, *cli, *srv = NULL;
	struct sockaddr_conn sc;
	struct timespec t0, t1;
	size_t total, sent = 0, got = 0;
	uint64_t ns;

	if (env == NULL)
		return;
	total = (size_t)atoi(env) * 1024 * 1024;
	io_init();
	IO.loop = 1;
	ls = io_socket(6300);
	assert_int_equal(usrsctp_listen(ls, 1), 0);
	cli = io_socket(6301);
	memset(&sc, 0, sizeof(sc));
	sc.sconn_family = AF_CONN;
	sc.sconn_port = htons(6300);
	sc.sconn_addr = (void *)2;
	assert_true(usrsctp_connect(cli, (struct sockaddr *)&sc, sizeof(sc)) == 0 ||
	            errno == EINPROGRESS);
	for (int i = 0; i < 5000 && srv == NULL; i++) {
		io_step();
		srv = usrsctp_accept(ls, NULL, NULL);
	}
	assert_non_null(srv);
	usrsctp_set_non_blocking(srv, 1);
	for (int i = 0; i < 100; i++)
		io_step();
	IO.moved = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < total) {
		struct sctp_sndinfo si;

		memset(&si, 0, sizeof(si));
		while (sent < total) {
			si.snd_sid = (uint16_t)(sent % 7);
			if (usrsctp_sendv(cli, msg, sizeof(msg), NULL, 0, &si,
			                  sizeof(si), SCTP_SENDV_SNDINFO, 0) < 0)
				break;
			sent += sizeof(msg);
		}
		io_step();
		for (;;) {
			struct sockaddr_conn from;
			socklen_t fromlen = sizeof(from);
			struct sctp_rcvinfo info;
			socklen_t infolen = sizeof(info);
			unsigned int infotype = 0;
			int flags = 0;
			ssize_t n = usrsctp_recvv(srv, rbuf, sizeof(rbuf),
			                          (struct sockaddr *)&from, &fromlen,
			                          &info, &infolen, &infotype, &flags);

			if (n <= 0)
				break;
			if (!(flags & MSG_NOTIFICATION))
				got += (size_t)n;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ULL +
	     (uint64_t)t1.tv_nsec - (uint64_t)t0.tv_nsec;
	printf("usrsctp bench: %zu bytes, %llu packets, %.0f ns per packet, %.1f MB/s\n",
	       total, (unsigned long long)IO.moved,
	       (double)ns / (double)(IO.moved ? IO.moved : 1),
	       (double)total / ((double)ns / 1e9) / 1e6);
	IO.loop = 0;
	usrsctp_close(srv);
	usrsctp_close(cli);
	usrsctp_close(ls);
	for (int i = 0; i < 50; i++)
		io_step();
	IO.loop = 0;
	IO.n_to_us = 0;
}
