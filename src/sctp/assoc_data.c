/*
 * Data-transfer hooks of the association core.  This slice only checks
 * DATA and I-DATA chunks (the kind the handshake negotiated, a payload)
 * and counts them; the data slice replaces these bodies with the send
 * queues, the TSN tracker, reassembly and SACK (docs/sctp-engine.md).
 */
#include "sctp/assoc_internal.h"

#include "util/bytes.h"

void core_data_reset(struct sctp_core *a)
{
	(void)a;
}

int core_data_input(struct sctp_core *a, const struct sctp_chunk *c)
{
	struct sctp_data d;
	uint8_t tsn[4];
	int rc;

	/* RFC 8260 §2.1: once I-DATA is agreed, DATA is a violation, and
	 * I-DATA without agreement too. */
	if ((c->type == SCTP_CT_I_DATA) != (a->p.idata != 0)) {
		core_abort_violation(a, SCTP_C_PROTOCOL_VIOLATION,
		                     "DATA kind not negotiated");
		return -1;
	}
	rc = c->type == SCTP_CT_I_DATA ? sctp_idata_parse(c, &d) :
	                                 sctp_data_parse(c, &d);
	if (rc == SCTP_PERR_NO_USER_DATA) {
		put_u32be(tsn, d.tsn);
		if (a->p.peer_vtag != 0)
			core_send_cause(a, a->p.peer_vtag, SCTP_CT_ABORT, 0,
			                SCTP_C_NO_USER_DATA, tsn, sizeof(tsn));
		core_down(a, SCTP_DOWN_PROTOCOL, SCTP_C_NO_USER_DATA);
		return -1;
	}
	if (rc != 0) {
		core_abort_violation(a, SCTP_C_PROTOCOL_VIOLATION, "short DATA");
		return -1;
	}
	a->data_chunks++;
	return 0;
}

void core_sack_input(struct sctp_core *a, const struct sctp_chunk *c)
{
	struct sctp_sack s;

	if (sctp_sack_parse(c, &s) == 0)
		a->p.peer_rwnd = s.a_rwnd;
}

void core_data_shutdown_ack_point(struct sctp_core *a, uint32_t cum_tsn)
{
	(void)a;
	(void)cum_tsn;
}

int core_data_outstanding(const struct sctp_core *a)
{
	(void)a;
	return 0;
}

uint32_t core_data_cum_tsn(const struct sctp_core *a)
{
	return a->cum_tsn_rcvd;
}

void core_data_after_packet(struct sctp_core *a)
{
	(void)a;
}
