/*
 * Hand-made packets against the association core: verification-tag
 * rules, unknown chunks and parameters, out-of-the-blue packets, and
 * §5.2 corners that a two-party simulation does not reach on its own.
 * Included by test_sctp_assoc.c.
 */

/* The last packet captured by a filter, and a held COOKIE-ECHO. */
static uint8_t LAST[SIM_PKT], CE[SIM_PKT];
static size_t LAST_LEN, CE_LEN;

/* ---- hand-made packets ---- */

static uint8_t PKT[SIM_PKT];

/* Starts a packet as side 1 would send it to side 0. */
static void hand_start(struct sctp_builder *b, uint32_t vtag)
{
	assert_int_equal(sctp_build_start(b, PKT, sizeof(PKT), 5001, 5000, vtag), 0);
}

/* The same, from side 0 to side 1. */
static void hand_start_to1(struct sctp_builder *b, uint32_t vtag)
{
	assert_int_equal(sctp_build_start(b, PKT, sizeof(PKT), 5000, 5001, vtag), 0);
}

static void hand_send(struct sctp_builder *b, int to)
{
	size_t n = sctp_build_finish(b, 0);

	sctp_core_input(S.side[to].a, PKT, n, S.now);
}

static void test_tag_rules(void **state UNUSED)
{
	struct sctp_core_info info;
	struct sctp_builder b;
	unsigned sent;

	pair(100);
	establish();
	sctp_core_get_info(S.side[0].a, &info);
	/* HEARTBEAT with a wrong tag: dropped, no answer. */
	sent = S.ntrace;
	hand_start(&b, info.local_vtag ^ 1);
	assert_int_equal(sctp_build_heartbeat(&b, SCTP_CT_HEARTBEAT, "x", 1), 0);
	hand_send(&b, 0);
	assert_int_equal(S.ntrace, sent);
	/* With the right tag it is echoed. */
	hand_start(&b, info.local_vtag);
	assert_int_equal(sctp_build_heartbeat(&b, SCTP_CT_HEARTBEAT, "x", 1), 0);
	hand_send(&b, 0);
	assert_int_equal(S.ntrace, sent + 1);
	assert_int_equal(S.trace[sent].first_type, SCTP_CT_HEARTBEAT_ACK);
	S.nq = 0;
	/* ABORT with T set must carry the peer's tag, not ours. */
	hand_start(&b, info.local_vtag);
	assert_int_equal(sctp_build_causes(&b, SCTP_CT_ABORT, 1, NULL, 0), 0);
	hand_send(&b, 0);
	assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_ESTABLISHED);
	/* SHUTDOWN-COMPLETE outside SHUTDOWN-ACK-SENT: ignored. */
	hand_start(&b, info.local_vtag);
	assert_int_equal(sctp_build_empty(&b, SCTP_CT_SHUTDOWN_COMPLETE, 0), 0);
	hand_send(&b, 0);
	assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_ESTABLISHED);
	/* INIT with a nonzero tag: dropped. */
	{
		struct sctp_init_params ip = { .initiate_tag = 7, .a_rwnd = 5000,
		                               .os = 1, .mis = 1, .initial_tsn = 1 };

		sent = S.ntrace;
		hand_start(&b, info.local_vtag);
		assert_int_equal(sctp_build_init(&b, SCTP_CT_INIT, &ip), 0);
		hand_send(&b, 0);
		assert_int_equal(S.ntrace, sent);
	}
	/* A bad checksum: dropped. */
	hand_start(&b, info.local_vtag);
	assert_int_equal(sctp_build_causes(&b, SCTP_CT_ABORT, 0, NULL, 0), 0);
	{
		size_t n = sctp_build_finish(&b, 0);

		PKT[8] ^= 1;
		sctp_core_input(S.side[0].a, PKT, n, S.now);
	}
	assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_ESTABLISHED);
	/* ABORT with T set and the peer's tag: accepted. */
	hand_start(&b, info.peer_vtag);
	assert_int_equal(sctp_build_causes(&b, SCTP_CT_ABORT, 1, NULL, 0), 0);
	hand_send(&b, 0);
	check_closed_by(0, SCTP_DOWN_PEER_ABORT);
	sim_free(&S);
}

static void test_unknown_chunks(void **state UNUSED)
{
	/* type, HEARTBEAT-ACKs expected after it, ERROR reports expected */
	static const struct { uint8_t type; unsigned acks; unsigned err; } cases[] = {
		{ 0x3f, 1, 0 },     /* 00: stop, silently */
		{ 0x45, 1, 1 },     /* 01: stop, report */
		{ 0x85, 2, 0 },     /* 10: skip */
		{ 0xc5, 2, 1 },     /* 11: skip, report */
	};
	struct sctp_core_info info;

	pair(110);
	establish();
	sctp_core_get_info(S.side[0].a, &info);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sctp_builder b;
		unsigned first = S.ntrace, acks = 0, errs = 0;

		hand_start(&b, info.local_vtag);
		assert_int_equal(sctp_build_heartbeat(&b, SCTP_CT_HEARTBEAT, "a", 1), 0);
		assert_int_equal(sctp_build_raw(&b, cases[i].type, 0, "zz", 2), 0);
		assert_int_equal(sctp_build_heartbeat(&b, SCTP_CT_HEARTBEAT, "b", 1), 0);
		hand_send(&b, 0);
		for (unsigned t = first; t < S.ntrace; t++) {
			acks += S.trace[t].first_type == SCTP_CT_HEARTBEAT_ACK;
			errs += S.trace[t].first_type == SCTP_CT_ERROR;
		}
		assert_int_equal(acks, cases[i].acks);
		assert_int_equal(errs, cases[i].err);
		assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_ESTABLISHED);
	}
	sim_run(&S, S.now + 100);
	/* Side 1 got the reports as PEER_ERROR events. */
	assert_int_equal(sim_count_ev(&S.side[1], SCTP_EV_PEER_ERROR), 2);
	assert_int_equal(sim_last_ev(&S.side[1], SCTP_EV_PEER_ERROR)->ev.cause,
	                 SCTP_C_UNRECOGNIZED_CHUNK);
	sim_free(&S);
}


static int capture_last(struct sim *s, int from, uint8_t *p, size_t *n)
{
	(void)s; (void)from;
	memcpy(LAST, p, *n);
	LAST_LEN = *n;
	return 1;
}

static void test_unknown_params(void **state UNUSED)
{
	/* Unknown parameters: 0xc123 skip+report, 0x8123 skip, then 0x4123
	 * stop+report: everything after it is ignored. */
	static const uint8_t extra[] = {
		0xc1, 0x23, 0x00, 0x05, 'q', 0, 0, 0,
		0x81, 0x23, 0x00, 0x04,
		0x41, 0x23, 0x00, 0x06, 'r', 's', 0, 0,
		0xc1, 0x24, 0x00, 0x04,
	};
	struct sctp_init_params ip = { .initiate_tag = 0x1234, .a_rwnd = 5000,
	                               .os = 3, .mis = 4, .initial_tsn = 99,
	                               .extra = extra, .extra_len = sizeof(extra) };
	struct sctp_builder b;
	struct sctp_packet pkt;
	struct sctp_chunk_iter it;
	struct sctp_chunk c;
	struct sctp_init in;
	struct sctp_tlv_iter ti;
	struct sctp_tlv_ref t;
	unsigned reports = 0;

	pair(120);
	S.filter = capture_last;
	hand_start_to1(&b, 0);
	assert_int_equal(sctp_build_init(&b, SCTP_CT_INIT, &ip), 0);
	hand_send(&b, 1);
	assert_int_equal(sctp_packet_parse(LAST, LAST_LEN, &pkt), 0);
	assert_int_equal(pkt.first_type, SCTP_CT_INIT_ACK);
	assert_int_equal(pkt.hdr.vtag, 0x1234);
	sctp_chunk_iter_init(&it, &pkt);
	assert_int_equal(sctp_chunk_next(&it, &c), 1);
	assert_int_equal(sctp_init_parse(&c, &in), 0);
	sctp_tlv_iter_init(&ti, in.params, in.params_len);
	while (sctp_tlv_next(&ti, &t) == 1) {
		if (t.type != SCTP_P_UNRECOGNIZED)
			continue;
		assert_true(get_u16be(t.value) == 0xc123 || get_u16be(t.value) == 0x4123);
		reports++;
	}
	assert_int_equal(reports, 2);
	/* The stateless listener is still CLOSED. */
	assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_CLOSED);

	/* An INIT-ACK with an unknown parameter: the COOKIE-ECHO carries an
	 * ERROR (Unrecognized Parameters) after it. */
	{
		struct sctp_core_info info;
		static const uint8_t ck[] = "cookie";

		assert_int_equal(sctp_core_connect(S.side[0].a, S.now), 0);
		sctp_core_get_info(S.side[0].a, &info);
		ip.cookie = ck;
		ip.cookie_len = sizeof(ck);
		ip.extra_len = 8;
		hand_start(&b, info.local_vtag);
		assert_int_equal(sctp_build_init(&b, SCTP_CT_INIT_ACK, &ip), 0);
		hand_send(&b, 0);
		assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_COOKIE_ECHOED);
		assert_int_equal(sctp_packet_parse(LAST, LAST_LEN, &pkt), 0);
		assert_int_equal(pkt.first_type, SCTP_CT_COOKIE_ECHO);
		assert_int_equal(pkt.hdr.vtag, 0x1234);
		assert_int_equal(pkt.nchunks, 2);
		sctp_chunk_iter_init(&it, &pkt);
		assert_int_equal(sctp_chunk_next(&it, &c), 1);
		assert_int_equal(sctp_chunk_next(&it, &c), 1);
		assert_int_equal(c.type, SCTP_CT_ERROR);
		assert_int_equal(get_u16be(c.value), SCTP_C_UNRECOGNIZED_PARAMS);
	}
	sim_free(&S);
}

static void test_out_of_the_blue(void **state UNUSED)
{
	struct sctp_core_config a = sim_config(0);
	struct sctp_builder b;
	struct sctp_packet pkt;
	struct sctp_chunk_iter it;
	struct sctp_chunk c;

	sim_init(&S, 130);
	assert_non_null(sim_attach(&S, 0, &a, 130));
	S.filter = capture_last;
	/* SHUTDOWN-ACK: SHUTDOWN-COMPLETE with T set, the tag reflected. */
	LAST_LEN = 0;
	hand_start(&b, 0xabcdef);
	assert_int_equal(sctp_build_empty(&b, SCTP_CT_SHUTDOWN_ACK, 0), 0);
	hand_send(&b, 0);
	assert_int_equal(sctp_packet_parse(LAST, LAST_LEN, &pkt), 0);
	assert_int_equal(pkt.first_type, SCTP_CT_SHUTDOWN_COMPLETE);
	assert_int_equal(pkt.hdr.vtag, 0xabcdef);
	sctp_chunk_iter_init(&it, &pkt);
	assert_int_equal(sctp_chunk_next(&it, &c), 1);
	assert_int_equal(c.flags & SCTP_CF_T, SCTP_CF_T);
	/* A HEARTBEAT: ABORT with T set. */
	hand_start(&b, 0x777);
	assert_int_equal(sctp_build_heartbeat(&b, SCTP_CT_HEARTBEAT, "x", 1), 0);
	hand_send(&b, 0);
	assert_int_equal(sctp_packet_parse(LAST, LAST_LEN, &pkt), 0);
	assert_int_equal(pkt.first_type, SCTP_CT_ABORT);
	assert_int_equal(pkt.hdr.vtag, 0x777);
	/* An ABORT: never answered. */
	LAST_LEN = 0;
	hand_start(&b, 0x777);
	assert_int_equal(sctp_build_causes(&b, SCTP_CT_ABORT, 0, NULL, 0), 0);
	hand_send(&b, 0);
	assert_int_equal(LAST_LEN, 0);
	/* An INIT to a non-listener: ABORT with the INIT's tag, T clear. */
	{
		struct sctp_init_params ip = { .initiate_tag = 0x4242, .a_rwnd = 5000,
		                               .os = 1, .mis = 1, .initial_tsn = 1 };

		hand_start(&b, 0);
		assert_int_equal(sctp_build_init(&b, SCTP_CT_INIT, &ip), 0);
		hand_send(&b, 0);
		assert_int_equal(sctp_packet_parse(LAST, LAST_LEN, &pkt), 0);
		assert_int_equal(pkt.first_type, SCTP_CT_ABORT);
		assert_int_equal(pkt.hdr.vtag, 0x4242);
	}
	/* A non-INIT with tag 0 is never answered (no reflected zero tag). */
	LAST_LEN = 0;
	hand_start(&b, 0);
	assert_int_equal(sctp_build_heartbeat(&b, SCTP_CT_HEARTBEAT, "x", 1), 0);
	hand_send(&b, 0);
	assert_int_equal(LAST_LEN, 0);
	assert_int_equal(sctp_core_state(S.side[0].a), SCTP_S_CLOSED);
	assert_int_equal(S.side[0].nev, 0);
	sim_free(&S);

	/* Connecting to a side that does not listen: its ABORT (T clear,
	 * our tag) ends the attempt at once. */
	{
		struct sctp_core_config b1 = sim_config(1);

		b1.listen = 0;
		sim_init(&S, 131);
		a = sim_config(0);
		assert_non_null(sim_attach(&S, 0, &a, 131));
		assert_non_null(sim_attach(&S, 1, &b1, 131));
		assert_int_equal(sctp_core_connect(S.side[0].a, 0), 0);
		sim_run(&S, 5000);
		check_closed_by(0, SCTP_DOWN_PEER_ABORT);
		assert_int_equal(sim_last_ev(&S.side[0], SCTP_EV_DOWN)->at, 20);
		assert_int_equal(sim_count_sent(&S, 0, SCTP_CT_INIT), 1);
		assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_CLOSED);
		sim_free(&S);
	}
}


/* Captures the COOKIE-ECHO side 0 sends; drops everything. */
static int capture_ce(struct sim *s, int from, uint8_t *p, size_t *n)
{
	struct sctp_packet pkt;

	(void)s;
	if (from == 0 && sctp_packet_parse(p, *n, &pkt) == 0 &&
	    pkt.first_type == SCTP_CT_COOKIE_ECHO) {
		memcpy(CE, p, *n);
		CE_LEN = *n;
	}
	if (from == 1) {
		memcpy(LAST, p, *n);
		LAST_LEN = *n;
	}
	return 1;
}

/*
 * §5.2.4 A in SHUTDOWN-ACK-SENT: a restarted peer's cookie is answered
 * with SHUTDOWN-ACK and an ERROR "Cookie Received While Shutting Down",
 * under the peer's new tag, and the shutdown goes on.
 */
static void test_cookie_while_shutting_down(void **state UNUSED)
{
	struct sctp_core_config a = sim_config(0);
	struct sctp_core_info bi, ai;
	struct sctp_builder b;
	struct sctp_packet pkt;
	unsigned first;

	pair(140);
	establish();
	sctp_core_get_info(S.side[1].a, &bi);
	/* Side 0 restarts; its INIT is answered with tie-tags; its
	 * COOKIE-ECHO is held back. */
	assert_non_null(sim_attach(&S, 0, &a, 141));
	assert_int_equal(sctp_core_connect(S.side[0].a, S.now), 0);
	sim_run(&S, S.now + 10);
	S.filter = capture_ce;
	CE_LEN = 0;
	sim_run(&S, S.now + 20);
	assert_true(CE_LEN > 0);
	sctp_core_get_info(S.side[0].a, &ai);
	/* Meanwhile side 1 gets a SHUTDOWN from the old peer. */
	hand_start_to1(&b, bi.local_vtag);
	assert_int_equal(sctp_build_shutdown(&b, 0), 0);
	hand_send(&b, 1);
	assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_SHUTDOWN_ACK_SENT);
	first = S.ntrace;
	sctp_core_input(S.side[1].a, CE, CE_LEN, S.now);
	assert_int_equal(S.ntrace, first + 1);
	assert_int_equal(sctp_packet_parse(LAST, LAST_LEN, &pkt), 0);
	assert_int_equal(pkt.hdr.vtag, ai.local_vtag);
	assert_int_equal(S.trace[first].types[0], SCTP_CT_SHUTDOWN_ACK);
	assert_int_equal(S.trace[first].types[1], SCTP_CT_ERROR);
	assert_int_equal(get_u16be(LAST + SCTP_HEADER_LEN + 4 + 4),
	                 SCTP_C_COOKIE_WHILE_SHUTDOWN);
	assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_SHUTDOWN_ACK_SENT);
	assert_int_equal(sim_count_ev(&S.side[1], SCTP_EV_RESTART), 0);
	sim_free(&S);
}

/* A Host Name Address in an INIT: ABORT "Unresolvable Address". */
static void test_host_name_refused(void **state UNUSED)
{
	static const uint8_t host[] = { 0x00, 0x0b, 0x00, 0x08, 'h', 'o', 's', 't' };
	struct sctp_init_params ip = { .initiate_tag = 0x5151, .a_rwnd = 5000,
	                               .os = 1, .mis = 1, .initial_tsn = 1,
	                               .extra = host, .extra_len = sizeof(host) };
	struct sctp_builder b;
	struct sctp_packet pkt;
	struct sctp_chunk_iter it;
	struct sctp_chunk c;
	struct sctp_causes ca;

	pair(150);
	S.filter = capture_last;
	LAST_LEN = 0;
	hand_start_to1(&b, 0);
	assert_int_equal(sctp_build_init(&b, SCTP_CT_INIT, &ip), 0);
	hand_send(&b, 1);
	assert_int_equal(sctp_packet_parse(LAST, LAST_LEN, &pkt), 0);
	assert_int_equal(pkt.first_type, SCTP_CT_ABORT);
	assert_int_equal(pkt.hdr.vtag, 0x5151);
	sctp_chunk_iter_init(&it, &pkt);
	assert_int_equal(sctp_chunk_next(&it, &c), 1);
	assert_int_equal(sctp_abort_parse(&c, &ca), 0);
	assert_int_equal(ca.first_code, SCTP_C_UNRESOLVABLE_ADDR);
	assert_int_equal(sctp_core_state(S.side[1].a), SCTP_S_CLOSED);
	sim_free(&S);
}

/* DATA after I-DATA was negotiated: ABORT (protocol violation). */
static void test_data_kind_violation(void **state UNUSED)
{
	struct sctp_data d = { .tsn = 1, .sid = 0, .payload = (const uint8_t *)"x",
	                       .payload_len = 1, .flags = SCTP_CF_B | SCTP_CF_E };
	struct sctp_core_info info;
	struct sctp_builder b;
	const struct sim_ev *down;

	pair(160);
	establish();
	sctp_core_get_info(S.side[0].a, &info);
	assert_true(info.idata);
	hand_start(&b, info.local_vtag);
	assert_int_equal(sctp_build_data(&b, &d), 0);
	hand_send(&b, 0);
	down = sim_last_ev(&S.side[0], SCTP_EV_DOWN);
	assert_non_null(down);
	assert_int_equal(down->ev.reason, SCTP_DOWN_PROTOCOL);
	assert_int_equal(sim_count_sent(&S, 0, SCTP_CT_ABORT), 1);
	sim_run(&S, S.now + 100);
	assert_int_equal(sim_last_ev(&S.side[1], SCTP_EV_DOWN)->ev.reason,
	                 SCTP_DOWN_PEER_ABORT);
	sim_free(&S);
}

/* Templates for test_garbage: what a handshake and a close put on the wire. */
static uint8_t TPL[32][SIM_PKT];
static size_t TPL_LEN[32];
static unsigned NTPL, BAD_OUT;

static int keep_templates(struct sim *s, int from, uint8_t *p, size_t *n)
{
	struct sctp_packet pkt;

	(void)s; (void)from;
	if (sctp_packet_parse(p, *n, &pkt) != 0 || sctp_packet_check_crc(p, *n) != 0 ||
	    *n > SCTP_MTU_DEFAULT_TEST)
		BAD_OUT++;
	if (NTPL < 32) {
		memcpy(TPL[NTPL], p, *n);
		TPL_LEN[NTPL++] = *n;
	}
	return 0;
}

/*
 * Mutated copies of real packets, with the right tag and a good CRC so
 * they reach the chunk handlers, into an established association: it
 * must never crash, and whatever it sends must be well formed.
 */
static void test_garbage(void **state UNUSED)
{
	uint64_t rng = 0x5eed;

	NTPL = 0;
	BAD_OUT = 0;
	pair(170);
	S.filter = keep_templates;
	establish();
	assert_int_equal(sctp_core_probe(S.side[0].a, S.now, NULL), 0);
	assert_int_equal(sctp_core_shutdown(S.side[1].a, S.now), 0);
	sim_run(&S, S.now + 1000);
	assert_true(NTPL >= 8);
	sim_free(&S);
	pair(171);
	S.filter = keep_templates;
	establish();
	for (unsigned i = 0; i < 20000; i++) {
		unsigned t = (unsigned)(sim_rand(&rng) % NTPL);
		size_t n = TPL_LEN[t];
		struct sctp_core_info info;

		memcpy(PKT, TPL[t], n);
		for (unsigned k = 1 + (unsigned)(sim_rand(&rng) % 4); k > 0; k--)
			PKT[SCTP_HEADER_LEN + sim_rand(&rng) % (n - SCTP_HEADER_LEN)] =
				(uint8_t)sim_rand(&rng);
		if (sim_rand(&rng) % 8 == 0)
			n -= sim_rand(&rng) % (n - SCTP_HEADER_LEN);
		/* As if from side 1: ports swapped, side 0's tag. */
		sctp_core_get_info(S.side[0].a, &info);
		put_u16be(PKT, 5001);
		put_u16be(PKT + 2, 5000);
		if (sim_rand(&rng) % 4 != 0)
			put_u32be(PKT + 4, info.local_vtag);
		sctp_packet_set_crc(PKT, n);
		sctp_core_input(S.side[0].a, PKT, n, S.now);
		S.now += sim_rand(&rng) % 50;
		sim_run(&S, S.now);
		if (sctp_core_state(S.side[0].a) == SCTP_S_CLOSED ||
		    sctp_core_state(S.side[1].a) == SCTP_S_CLOSED) {
			sim_free(&S);
			pair(172 + i);
			S.filter = keep_templates;
			establish();
		}
	}
	assert_int_equal(BAD_OUT, 0);
	sim_free(&S);
}
