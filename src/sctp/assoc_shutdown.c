/*
 * Ending an association: the graceful SHUTDOWN / SHUTDOWN-ACK /
 * SHUTDOWN-COMPLETE exchange with T2-shutdown and the T5 guard (RFC 9260
 * §9.2), ABORT both ways (§9.1), and ERROR chunks from the peer.
 *
 * A graceful close waits for our outstanding data; the data slice says
 * when there is none (core_data_outstanding) and calls
 * core_shutdown_progress() when that changes.
 */
#include "sctp/assoc_internal.h"

#include <string.h>

#include "util/bytes.h"

static void send_shutdown(struct sctp_core *a)
{
	struct sctp_builder b;

	core_out_start(a, &b, a->p.peer_vtag);
	(void)sctp_build_shutdown(&b, core_data_cum_tsn(a));
	core_out_send(a, &b);
}

int core_shutdown_start(struct sctp_core *a)
{
	switch (a->state) {
	case SCTP_S_COOKIE_WAIT:
		/* The peer holds nothing of ours yet. */
		core_down(a, SCTP_DOWN_CLOSED, 0);
		return 0;
	case SCTP_S_COOKIE_ECHOED:
		/* The cookie may already be an association: finish, then close. */
		a->shutdown_wanted = 1;
		return 0;
	case SCTP_S_ESTABLISHED:
		core_set_state(a, SCTP_S_SHUTDOWN_PENDING);
		core_shutdown_progress(a);
		return 0;
	default:
		return -1;
	}
}

void core_shutdown_progress(struct sctp_core *a)
{
	if (core_data_outstanding(a))
		return;
	if (a->state == SCTP_S_SHUTDOWN_PENDING) {
		core_set_state(a, SCTP_S_SHUTDOWN_SENT);
		send_shutdown(a);
		a->error_count = 0;
		a->t2_rto = a->rto;
		core_timer_start(a, SCTP_T2_SHUTDOWN, a->t2_rto);
		core_timer_start(a, SCTP_T5_GUARD, 5 * a->cfg.rto_max_ms);
		core_timer_stop(a, SCTP_T_HEARTBEAT);
		a->hb_pending_id = 0;
	} else if (a->state == SCTP_S_SHUTDOWN_RECEIVED) {
		core_set_state(a, SCTP_S_SHUTDOWN_ACK_SENT);
		core_send_empty(a, a->p.peer_vtag, SCTP_CT_SHUTDOWN_ACK, 0);
		a->error_count = 0;
		a->t2_rto = a->rto;
		core_timer_start(a, SCTP_T2_SHUTDOWN, a->t2_rto);
		core_timer_stop(a, SCTP_T_HEARTBEAT);
		a->hb_pending_id = 0;
	}
}

/* T2-shutdown: resend SHUTDOWN or SHUTDOWN-ACK, back off, give up. */
void core_shutdown_t2(struct sctp_core *a)
{
	if (a->state != SCTP_S_SHUTDOWN_SENT &&
	    a->state != SCTP_S_SHUTDOWN_ACK_SENT)
		return;
	if (core_error_count(a)) {
		core_send_cause(a, a->p.peer_vtag, SCTP_CT_ABORT, 0,
		                SCTP_C_USER_ABORT, NULL, 0);
		core_down(a, SCTP_DOWN_PEER_UNREACHABLE, 0);
		return;
	}
	a->t2_rto = core_rto_backoff(a, a->t2_rto);
	a->rto = a->t2_rto;
	if (a->state == SCTP_S_SHUTDOWN_SENT)
		send_shutdown(a);
	else
		core_send_empty(a, a->p.peer_vtag, SCTP_CT_SHUTDOWN_ACK, 0);
	core_timer_start(a, SCTP_T2_SHUTDOWN, a->t2_rto);
}

void core_handle_shutdown(struct sctp_core *a, const struct sctp_chunk *c)
{
	struct sctp_core_event ev = { .type = SCTP_EV_SHUTDOWN_RECEIVED };
	uint32_t cum;

	if (sctp_shutdown_parse(c, &cum) != 0) {
		core_abort_violation(a, SCTP_C_PROTOCOL_VIOLATION, "short SHUTDOWN");
		return;
	}
	switch (a->state) {
	case SCTP_S_ESTABLISHED:
	case SCTP_S_SHUTDOWN_PENDING:
		core_data_shutdown_ack_point(a, cum);
		core_set_state(a, SCTP_S_SHUTDOWN_RECEIVED);
		core_emit(a, &ev);
		core_shutdown_progress(a);
		break;
	case SCTP_S_SHUTDOWN_SENT:
		/* Both sides closed at once (§9.2): answer and wait. */
		core_data_shutdown_ack_point(a, cum);
		core_set_state(a, SCTP_S_SHUTDOWN_ACK_SENT);
		core_emit(a, &ev);
		core_send_empty(a, a->p.peer_vtag, SCTP_CT_SHUTDOWN_ACK, 0);
		a->t2_rto = a->rto;
		core_timer_start(a, SCTP_T2_SHUTDOWN, a->t2_rto);
		break;
	case SCTP_S_SHUTDOWN_RECEIVED:
		core_data_shutdown_ack_point(a, cum);
		break;
	default:
		break;                  /* a retransmission; T2 answers it */
	}
}

void core_handle_shutdown_ack(struct sctp_core *a, const struct sctp_packet *pkt)
{
	(void)pkt;
	if (a->state != SCTP_S_SHUTDOWN_SENT &&
	    a->state != SCTP_S_SHUTDOWN_ACK_SENT)
		return;
	core_send_empty(a, a->p.peer_vtag, SCTP_CT_SHUTDOWN_COMPLETE, 0);
	core_down(a, SCTP_DOWN_SHUTDOWN, 0);
}

void core_handle_shutdown_complete(struct sctp_core *a)
{
	if (a->state == SCTP_S_SHUTDOWN_ACK_SENT)
		core_down(a, SCTP_DOWN_SHUTDOWN, 0);
}

void core_handle_abort(struct sctp_core *a, const struct sctp_chunk *c)
{
	struct sctp_causes ca;
	uint16_t cause = 0;

	/* A badly framed cause list still ends the association. */
	if (sctp_abort_parse(c, &ca) == 0)
		cause = ca.first_code;
	core_down(a, SCTP_DOWN_PEER_ABORT, cause);
}

void core_handle_error(struct sctp_core *a, const struct sctp_chunk *c)
{
	struct sctp_core_event ev = { .type = SCTP_EV_PEER_ERROR };
	struct sctp_causes ca;

	if (sctp_error_parse(c, &ca) != 0 || ca.ncauses == 0)
		return;
	if (ca.first_code == SCTP_C_STALE_COOKIE &&
	    a->state == SCTP_S_COOKIE_ECHOED) {
		/* The parser checked the cause holds its 4-byte measure. */
		core_handle_stale_cookie(a, get_u32be(ca.causes + 4));
		return;
	}
	ev.cause = ca.first_code;
	core_emit(a, &ev);
}

void core_abort_violation(struct sctp_core *a, uint16_t cause, const char *why)
{
	if (a->p.peer_vtag != 0)
		core_send_cause(a, a->p.peer_vtag, SCTP_CT_ABORT, 0, cause,
		                why, strlen(why));
	core_down(a, SCTP_DOWN_PROTOCOL, cause);
}
