/*
 * The four-way handshake (RFC 9260 §5.1) and its irregular cases (§5.2):
 * INIT, INIT-ACK, COOKIE-ECHO and COOKIE-ACK, T1-init and T1-cookie with
 * exponential backoff up to Max.Init.Retransmits, INIT collisions, a
 * restarted peer, duplicate and stale cookies.
 *
 * A listening association in CLOSED answers an INIT statelessly: the
 * INIT-ACK carries everything in the cookie (assoc_cookie.c), and only a
 * COOKIE-ECHO with a valid cookie creates the association.
 */
#include "sctp/assoc_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"

static uint16_t min16(uint16_t x, uint16_t y)
{
	return x < y ? x : y;
}

/* Supported Extensions we offer: I-DATA only, and only if configured. */
static void our_ext(const struct sctp_core *a, struct sctp_init_params *ip,
                    uint8_t *buf)
{
	if (a->cfg.idata) {
		buf[0] = SCTP_CT_I_DATA;
		ip->ext = buf;
		ip->ext_len = 1;
	}
}

static void send_init(struct sctp_core *a)
{
	struct sctp_init_params ip = { 0 };
	struct sctp_builder b;
	uint8_t ext[1], preserve[8];

	ip.initiate_tag = a->p.local_vtag;
	ip.a_rwnd = a->cfg.a_rwnd;
	ip.os = a->cfg.os;
	ip.mis = a->cfg.mis;
	ip.initial_tsn = a->p.local_tsn;
	our_ext(a, &ip, ext);
	if (a->preserve_ms != 0) {
		/* §5.2.6: ask for a longer-lived cookie after a stale one. */
		put_u16be(preserve, SCTP_P_COOKIE_PRESERVATIVE);
		put_u16be(preserve + 2, 8);
		put_u32be(preserve + 4, a->preserve_ms);
		ip.extra = preserve;
		ip.extra_len = sizeof(preserve);
	}
	core_out_start(a, &b, 0);
	(void)sctp_build_init(&b, SCTP_CT_INIT, &ip);
	core_out_send(a, &b);
}

/*
 * The COOKIE-ECHO, and on its first sending the report of the INIT-ACK
 * parameters we did not recognise (§3.2.1: an ERROR after the cookie).
 */
static void send_cookie_echo(struct sctp_core *a, const struct sctp_init *in)
{
	struct sctp_builder b;

	core_out_start(a, &b, a->p.peer_vtag);
	if (sctp_build_cookie_echo(&b, a->cookie, a->cookie_len) != 0)
		return;
	if (in != NULL && in->n_unrecognized > 0 &&
	    sctp_chunk_open(&b, SCTP_CT_ERROR, 0) == 0) {
		for (unsigned i = 0; i < in->n_unrecognized; i++)
			if (sctp_chunk_put_tlv(&b, SCTP_C_UNRECOGNIZED_PARAMS,
			                       in->unrecognized[i].raw,
			                       in->unrecognized[i].length) != 0)
				break;
		if (sctp_chunk_close(&b) != 0)
			sctp_chunk_abandon(&b);
	}
	core_out_send(a, &b);
}

int core_handshake_connect(struct sctp_core *a)
{
	memset(&a->p, 0, sizeof(a->p));
	a->p.local_vtag = core_random_tag(a);
	a->p.local_tsn = core_random_u32(a);
	a->init_retrans = 0;
	a->preserve_ms = 0;
	a->t1_rto = a->rto;
	core_set_state(a, SCTP_S_COOKIE_WAIT);
	send_init(a);
	a->init_sent_at = a->now;
	a->init_timing = 1;
	core_timer_start(a, SCTP_T1_INIT, a->t1_rto);
	return 0;
}

/* T1-init or T1-cookie expired (§5.1.6 step 4, §6.3.3). */
void core_handshake_t1(struct sctp_core *a)
{
	if (a->state != SCTP_S_COOKIE_WAIT && a->state != SCTP_S_COOKIE_ECHOED)
		return;
	if (++a->init_retrans > a->cfg.max_init_retrans) {
		core_down(a, SCTP_DOWN_INIT_TIMEOUT, 0);
		return;
	}
	a->t1_rto = core_rto_backoff(a, a->t1_rto);
	a->rto = a->t1_rto;
	a->init_timing = 0;
	if (a->state == SCTP_S_COOKIE_WAIT)
		send_init(a);
	else
		send_cookie_echo(a, NULL);
	core_timer_start(a, SCTP_T1_INIT, a->t1_rto);
}

/*
 * Encodes the INIT's unrecognized parameters as Unrecognized Parameter
 * parameters for our INIT-ACK, as many as fit beside the fixed part.
 * INIT travels alone, so the error-report buffer is free.
 */
static size_t unrecognized_params(struct sctp_core *a, const struct sctp_init *in)
{
	size_t room = (size_t)a->cfg.mtu / 2, len = 0;

	for (unsigned i = 0; i < in->n_unrecognized; i++) {
		const struct sctp_tlv_ref *t = &in->unrecognized[i];
		size_t need = 4 + (((size_t)t->length + 3) & ~(size_t)3);

		if (need > room - len)
			break;
		put_u16be(a->rbuf + len, SCTP_P_UNRECOGNIZED);
		put_u16be(a->rbuf + len + 2, (uint16_t)(4 + t->length));
		memcpy(a->rbuf + len + 4, t->raw, t->length);
		memset(a->rbuf + len + 4 + t->length, 0, need - 4 - t->length);
		len += need;
	}
	return len;
}

static void send_init_ack(struct sctp_core *a, const struct sctp_init *in,
                          const struct core_cookie *ck)
{
	struct sctp_init_params ip = { 0 };
	struct sctp_builder b;
	uint8_t cookie[SCTP_COOKIE_LEN], ext[1];

	core_cookie_make(a, ck, cookie);
	ip.initiate_tag = ck->p.local_vtag;
	ip.a_rwnd = a->cfg.a_rwnd;
	ip.os = a->cfg.os;
	ip.mis = a->cfg.mis;
	ip.initial_tsn = ck->p.local_tsn;
	ip.cookie = cookie;
	ip.cookie_len = sizeof(cookie);
	our_ext(a, &ip, ext);
	ip.extra = a->rbuf;
	ip.extra_len = unrecognized_params(a, in);
	core_out_start(a, &b, in->initiate_tag);
	if (sctp_build_init(&b, SCTP_CT_INIT_ACK, &ip) != 0) {
		ip.extra_len = 0;
		(void)sctp_build_init(&b, SCTP_CT_INIT_ACK, &ip);
	}
	core_out_send(a, &b);
}

/* An Unresolvable Address ABORT for a Host Name Address (deprecated). */
static void refuse_host_name(struct sctp_core *a, const struct sctp_init *in)
{
	struct sctp_tlv_iter it;
	struct sctp_tlv_ref t;

	sctp_tlv_iter_init(&it, in->params, in->params_len);
	while (sctp_tlv_next(&it, &t) == 1) {
		if (t.type != SCTP_P_HOST_NAME)
			continue;
		if (t.length <= (size_t)a->cfg.mtu / 2) {
			core_send_cause(a, in->initiate_tag, SCTP_CT_ABORT, 0,
			                SCTP_C_UNRESOLVABLE_ADDR, t.raw, t.length);
			return;
		}
		break;
	}
	core_send_cause(a, in->initiate_tag, SCTP_CT_ABORT, 0,
	                SCTP_C_UNRESOLVABLE_ADDR, NULL, 0);
}

/* INIT: in CLOSED (listening), in COOKIE-WAIT/ECHOED (§5.2.1), later (§5.2.2). */
void core_handle_init(struct sctp_core *a, const struct sctp_packet *pkt,
                      const struct sctp_chunk *c)
{
	struct sctp_init in;
	struct core_cookie ck = { 0 };
	uint32_t extra;

	if (pkt->hdr.vtag != 0 || sctp_init_parse(c, &in) != 0) {
		a->dropped++;
		return;
	}
	if (in.host_name) {
		refuse_host_name(a, &in);
		return;
	}
	switch (a->state) {
	case SCTP_S_CLOSED:
		ck.p.local_vtag = core_random_tag(a);
		ck.p.local_tsn = core_random_u32(a);
		break;
	case SCTP_S_COOKIE_WAIT:
	case SCTP_S_COOKIE_ECHOED:
		/* Our original INIT's parameters, tag unchanged. */
		ck.p.local_vtag = a->p.local_vtag;
		ck.p.local_tsn = a->p.local_tsn;
		break;
	case SCTP_S_SHUTDOWN_ACK_SENT:
		/* §9.2: the peer lost our SHUTDOWN-COMPLETE's trigger. */
		core_send_empty(a, a->p.peer_vtag, SCTP_CT_SHUTDOWN_ACK, 0);
		return;
	default:
		/* §5.2.2: new tag; tie-tags let a restart be recognised. */
		do
			ck.p.local_vtag = core_random_tag(a);
		while (ck.p.local_vtag == a->p.local_vtag);
		ck.p.local_tsn = core_random_u32(a);
		ck.local_tie_tag = a->p.local_vtag;
		ck.peer_tie_tag = a->p.peer_vtag;
		break;
	}
	ck.p.peer_vtag = in.initiate_tag;
	ck.p.peer_tsn = in.initial_tsn;
	ck.p.peer_rwnd = in.a_rwnd;
	ck.p.out_streams = min16(a->cfg.os, in.mis);
	ck.p.in_streams = min16(a->cfg.mis, in.os);
	ck.p.idata = a->cfg.idata && sctp_init_supports(&in, SCTP_CT_I_DATA);
	extra = in.cookie_preservative_ms;
	if (extra > SCTP_COOKIE_PRESERVE_MAX_MS)
		extra = SCTP_COOKIE_PRESERVE_MAX_MS;
	ck.created_ms = a->now;
	ck.life_ms = a->cfg.cookie_life_ms + extra;
	send_init_ack(a, &in, &ck);
}

/* INIT-ACK: only in COOKIE-WAIT (§5.2.3). */
void core_handle_init_ack(struct sctp_core *a, const struct sctp_packet *pkt,
                          const struct sctp_chunk *c)
{
	struct sctp_init in;
	size_t room = (size_t)a->cfg.mtu - SCTP_HEADER_LEN - SCTP_CHUNK_HEADER_LEN;

	(void)pkt;
	if (a->state != SCTP_S_COOKIE_WAIT || sctp_init_parse(c, &in) != 0) {
		a->dropped++;
		return;
	}
	if (in.cookie_len > room) {
		/* A COOKIE-ECHO we could never send: give up now. */
		core_send_cause(a, in.initiate_tag, SCTP_CT_ABORT, 0,
		                SCTP_C_OUT_OF_RESOURCE, NULL, 0);
		core_down(a, SCTP_DOWN_PROTOCOL, 0);
		return;
	}
	free(a->cookie);
	if ((a->cookie = malloc(in.cookie_len)) == NULL) {
		a->cookie_len = 0;
		return;                 /* T1 tries again */
	}
	memcpy(a->cookie, in.cookie, in.cookie_len);
	a->cookie_len = in.cookie_len;
	a->p.peer_vtag = in.initiate_tag;
	a->p.peer_tsn = in.initial_tsn;
	a->p.peer_rwnd = in.a_rwnd;
	a->p.out_streams = min16(a->cfg.os, in.mis);
	a->p.in_streams = min16(a->cfg.mis, in.os);
	a->p.idata = a->cfg.idata && sctp_init_supports(&in, SCTP_CT_I_DATA);
	if (a->init_timing)
		core_rto_sample(a, (uint32_t)(a->now - a->init_sent_at));
	core_set_state(a, SCTP_S_COOKIE_ECHOED);
	send_cookie_echo(a, &in);
	a->init_retrans = 0;
	a->t1_rto = a->rto;
	a->init_sent_at = a->now;
	a->init_timing = 1;
	core_timer_start(a, SCTP_T1_INIT, a->t1_rto);
}

void core_handshake_established(struct sctp_core *a, int restart)
{
	struct sctp_core_event ev = { .type = restart ? SCTP_EV_RESTART : SCTP_EV_UP };

	free(a->cookie);
	a->cookie = NULL;
	a->cookie_len = 0;
	a->init_retrans = 0;
	a->error_count = 0;
	a->preserve_ms = 0;
	a->hb_pending_id = 0;
	for (int t = 0; t < SCTP_T_COUNT; t++)
		core_timer_stop(a, (enum core_timer_id)t);
	a->next_tsn = a->p.local_tsn;
	a->cum_tsn_rcvd = a->p.peer_tsn - 1;
	a->cc_ops->init(&a->cc, a->cfg.mtu, a->p.peer_rwnd);
	core_data_reset(a);
	core_set_state(a, SCTP_S_ESTABLISHED);
	ev.out_streams = a->p.out_streams;
	ev.in_streams = a->p.in_streams;
	ev.idata = a->p.idata;
	core_emit(a, &ev);
	core_heartbeat_arm(a);
	if (a->shutdown_wanted) {
		a->shutdown_wanted = 0;
		(void)core_shutdown_start(a);
	}
}

static void send_cookie_ack(struct sctp_core *a)
{
	core_send_empty(a, a->p.peer_vtag, SCTP_CT_COOKIE_ACK, 0);
}

/* §5.2.4 Table 7: how the cookie's tags meet the association's. */
enum cookie_case { CASE_NONE, CASE_A, CASE_B, CASE_C, CASE_D };

static enum cookie_case cookie_case(const struct sctp_core *a,
                                    const struct core_cookie *ck)
{
	int local = ck->p.local_vtag == a->p.local_vtag;
	int peer = ck->p.peer_vtag == a->p.peer_vtag;

	if (!local && !peer && ck->local_tie_tag != 0 &&
	    ck->local_tie_tag == a->p.local_vtag &&
	    ck->peer_tie_tag == a->p.peer_vtag)
		return CASE_A;          /* the peer restarted */
	if (local && !peer)
		return CASE_B;          /* INIT collision */
	if (!local && peer && ck->local_tie_tag == 0 && ck->peer_tie_tag == 0)
		return CASE_C;          /* a late cookie of a collision */
	if (local && peer)
		return CASE_D;          /* a duplicate */
	return CASE_NONE;
}

static void send_stale(struct sctp_core *a, uint32_t peer_vtag, uint32_t stale_us)
{
	uint8_t m[4];

	put_u32be(m, stale_us);
	core_send_cause(a, peer_vtag, SCTP_CT_ERROR, 0, SCTP_C_STALE_COOKIE,
	                m, sizeof(m));
}

int core_handle_cookie_echo(struct sctp_core *a, const struct sctp_packet *pkt,
                            const struct sctp_chunk *c)
{
	struct core_cookie ck;
	const uint8_t *cookie;
	size_t len;
	uint32_t stale_us;
	int rc;

	if (sctp_cookie_echo_parse(c, &cookie, &len) != 0 ||
	    (rc = core_cookie_open(a, cookie, len, &ck, &stale_us)) < 0 ||
	    pkt->hdr.vtag != ck.p.local_vtag) {
		a->dropped++;
		return -1;
	}
	if (a->state == SCTP_S_CLOSED) {
		if (rc == 1) {
			send_stale(a, ck.p.peer_vtag, stale_us);
			return -1;
		}
		a->p = ck.p;
		send_cookie_ack(a);
		core_handshake_established(a, 0);
		return 0;
	}
	switch (cookie_case(a, &ck)) {
	case CASE_A:
		if (rc == 1) {
			send_stale(a, ck.p.peer_vtag, stale_us);
			return -1;
		}
		if (a->state == SCTP_S_SHUTDOWN_ACK_SENT) {
			struct sctp_builder b;

			core_out_start(a, &b, ck.p.peer_vtag);
			(void)sctp_build_empty(&b, SCTP_CT_SHUTDOWN_ACK, 0);
			(void)sctp_build_cause(&b, SCTP_CT_ERROR, 0,
			                       SCTP_C_COOKIE_WHILE_SHUTDOWN, NULL, 0);
			core_out_send(a, &b);
			return -1;
		}
		a->p = ck.p;
		send_cookie_ack(a);
		core_handshake_established(a, 1);
		return 0;
	case CASE_B:
		if (rc == 1) {
			send_stale(a, ck.p.peer_vtag, stale_us);
			return -1;
		}
		if (a->state == SCTP_S_COOKIE_WAIT ||
		    a->state == SCTP_S_COOKIE_ECHOED) {
			a->p = ck.p;
			send_cookie_ack(a);
			core_handshake_established(a, 0);
		} else {
			a->p.peer_vtag = ck.p.peer_vtag;
			send_cookie_ack(a);
		}
		return 0;
	case CASE_D:
		/* Ours already: a retransmission needs no lifetime check. */
		if (a->state == SCTP_S_COOKIE_WAIT ||
		    a->state == SCTP_S_COOKIE_ECHOED) {
			a->p = ck.p;
			send_cookie_ack(a);
			core_handshake_established(a, 0);
		} else {
			send_cookie_ack(a);
		}
		return 0;
	case CASE_C:
	case CASE_NONE:
	default:
		a->dropped++;
		return -1;
	}
}

/* COOKIE-ACK: only in COOKIE-ECHOED (§5.2.5). */
void core_handle_cookie_ack(struct sctp_core *a, const struct sctp_chunk *c)
{
	if (a->state != SCTP_S_COOKIE_ECHOED ||
	    sctp_empty_chunk_parse(c, SCTP_CT_COOKIE_ACK, NULL) != 0)
		return;
	if (a->init_timing)
		core_rto_sample(a, (uint32_t)(a->now - a->init_sent_at));
	core_handshake_established(a, 0);
}

/*
 * §5.2.6: our cookie arrived stale.  Ask for a longer life (twice the
 * staleness) in a new INIT; this counts as a T1 retransmission.
 */
void core_handle_stale_cookie(struct sctp_core *a, uint32_t stale_us)
{
	uint64_t ms = (uint64_t)stale_us / 1000 * 2 + 1;

	if (a->state != SCTP_S_COOKIE_ECHOED)
		return;
	if (++a->init_retrans > a->cfg.max_init_retrans) {
		core_down(a, SCTP_DOWN_INIT_TIMEOUT, SCTP_C_STALE_COOKIE);
		return;
	}
	a->preserve_ms = ms > SCTP_COOKIE_PRESERVE_MAX_MS ?
	                 SCTP_COOKIE_PRESERVE_MAX_MS : (uint32_t)ms;
	free(a->cookie);
	a->cookie = NULL;
	a->cookie_len = 0;
	a->p.peer_vtag = 0;
	core_set_state(a, SCTP_S_COOKIE_WAIT);
	send_init(a);
	a->init_sent_at = a->now;
	a->init_timing = 1;
	a->t1_rto = a->rto;
	core_timer_start(a, SCTP_T1_INIT, a->t1_rto);
}
