/*
 * HEARTBEAT (RFC 9260 §8.3): echoing the peer's probes, optional periodic
 * probes, and probes on demand for the wire layer's path manager.
 *
 * Our Heartbeat Info is a per-association random nonce, a probe id and
 * the send time; an ACK whose nonce does not match is ignored.  One probe
 * at a time is "pending": if it is not answered within the RTO, that is
 * an error towards Association.Max.Retrans and the RTO backs off.
 *
 * Idle traffic is what an observer sees of a quiet session, so it has no
 * fixed period or size: each association has its own spread (0-10 % of
 * hb_interval_ms, from its nonce) and every interval is drawn uniformly
 * over it and the RTO around interval + RTO (below for why not more).  Probes carry HB_TAIL_MAX random
 * extra bytes at most; the peer echoes the parameter whole.
 */
#include "sctp/assoc_internal.h"

#include <string.h>

#include "util/bytes.h"

#define HB_INFO_LEN (SCTP_HB_NONCE_LEN + 4 + 8)
#define HB_TAIL_MAX 96              /* random bytes after our info, at most */
#define HB_JITTER_MIN_MS 200        /* the RTO's share of the jitter, at least */

static int hb_state_ok(const struct sctp_core *a)
{
	return a->state == SCTP_S_ESTABLISHED ||
	       a->state == SCTP_S_SHUTDOWN_PENDING ||
	       a->state == SCTP_S_SHUTDOWN_RECEIVED;
}

int core_heartbeat_send(struct sctp_core *a, uint32_t *probe_id)
{
	uint8_t info[HB_INFO_LEN + HB_TAIL_MAX];
	struct sctp_builder b;
	size_t tail;
	uint32_t id;

	if (!hb_state_ok(a))
		return -1;
	if ((id = ++a->hb_next_id) == 0)
		id = ++a->hb_next_id;
	memcpy(info, a->hb_nonce, SCTP_HB_NONCE_LEN);
	put_u32be(info + SCTP_HB_NONCE_LEN, id);
	put_u32be(info + SCTP_HB_NONCE_LEN + 4, (uint32_t)(a->now >> 32));
	put_u32be(info + SCTP_HB_NONCE_LEN + 8, (uint32_t)a->now);
	tail = core_random_u32(a) % (HB_TAIL_MAX + 1);
	memset(info + HB_INFO_LEN, 0, tail);        /* sealed on the wire anyway */
	core_out_start(a, &b, a->p.peer_vtag);
	(void)sctp_build_heartbeat(&b, SCTP_CT_HEARTBEAT, info, HB_INFO_LEN + tail);
	core_out_send(a, &b);
	a->hb_pending_id = id;
	a->hb_rto = a->rto;
	core_timer_start(a, SCTP_T_HEARTBEAT, a->hb_rto);
	if (probe_id != NULL)
		*probe_id = id;
	return 0;
}

/*
 * This association's extra spread: 0-10 % of the configured interval,
 * chosen by its (random) nonce, so it is fixed for the session and differs
 * between sessions.
 */
static uint64_t hb_spread_ms(const struct sctp_core *a)
{
	unsigned pct = (a->hb_nonce[0] | a->hb_nonce[1] << 8) % 11;

	return (uint64_t)a->cfg.hb_interval_ms * pct / 100;
}

/*
 * The next periodic probe: interval + RTO on average as RFC 9260 §8.3 has
 * it (the RTO taken as at least 200 ms), jittered by +-RTO/2 and by
 * +-spread/2.  Not more: in an outage the
 * probes' and the data's timeouts both count towards
 * Association.Max.Retrans, and the multi-path failover (the wire layer's
 * path timeout, 2 s against a 1 s keepalive) is tuned on this rhythm; a
 * spread of 20-50 % of the interval, earlier or later, made that failover
 * lose the association in most runs of test_two_paths_link_down_failover.
 */
void core_heartbeat_arm(struct sctp_core *a)
{
	uint64_t spread, iv, j;

	if (a->cfg.hb_interval_ms == 0 || a->hb_pending_id != 0 || !hb_state_ok(a))
		return;
	spread = hb_spread_ms(a);
	/* The RTO's part is at least HB_JITTER_MIN_MS: with the 50 ms RTO
	 * floor a short path's probes came within +-25 ms of a fixed period
	 * (test_idle_traffic_has_no_fixed_period); 200 ms is what the floor
	 * was when the failover above was tuned. */
	j = a->rto > HB_JITTER_MIN_MS ? a->rto : HB_JITTER_MIN_MS;
	iv = a->cfg.hb_interval_ms - spread / 2 + j / 2 +
	     core_random_u32(a) % (j + spread + 1);
	core_timer_start(a, SCTP_T_HEARTBEAT, iv > UINT32_MAX ? UINT32_MAX : (uint32_t)iv);
}

void core_heartbeat_timer(struct sctp_core *a)
{
	uint32_t r;

	if (!hb_state_ok(a)) {
		a->hb_pending_id = 0;
		return;
	}
	if (a->hb_pending_id != 0) {
		/* Unanswered within the RTO (§8.3). */
		a->hb_pending_id = 0;
		if (core_error_count(a)) {
			core_send_cause(a, a->p.peer_vtag, SCTP_CT_ABORT, 0,
			                SCTP_C_USER_ABORT, NULL, 0);
			core_down(a, SCTP_DOWN_PEER_UNREACHABLE, 0);
			return;
		}
		/* Back off from the RTO the probe was sent with, but never
		 * below the RTO now: T3 may have backed off further meanwhile
		 * (data outstanding in the same outage), and lowering it
		 * again made T3 fire at near the floor through an outage. */
		r = core_rto_backoff(a, a->hb_rto);
		if (r > a->rto)
			a->rto = r;
		if (a->cfg.hb_interval_ms == 0)
			return;         /* on-demand only: the caller decides */
	}
	(void)core_heartbeat_send(a, NULL);
}

void core_handle_heartbeat(struct sctp_core *a, const struct sctp_chunk *c)
{
	struct sctp_heartbeat hb;
	struct sctp_builder b;

	if (a->p.peer_vtag == 0 || sctp_heartbeat_parse(c, &hb) != 0)
		return;
	/* Echo the parameter as it came, whatever it holds. */
	core_out_start(a, &b, a->p.peer_vtag);
	if (sctp_build_raw(&b, SCTP_CT_HEARTBEAT_ACK, 0, hb.param, hb.param_len) == 0)
		core_out_send(a, &b);
}

void core_handle_heartbeat_ack(struct sctp_core *a, const struct sctp_chunk *c)
{
	struct sctp_core_event ev = { .type = SCTP_EV_HEARTBEAT_ACK };
	struct sctp_heartbeat hb;
	uint64_t sent;

	if (sctp_heartbeat_parse(c, &hb) != 0 || hb.info_len < HB_INFO_LEN ||
	    hb.info_len > HB_INFO_LEN + HB_TAIL_MAX ||
	    memcmp(hb.info, a->hb_nonce, SCTP_HB_NONCE_LEN) != 0)
		return;
	ev.probe_id = get_u32be(hb.info + SCTP_HB_NONCE_LEN);
	sent = (uint64_t)get_u32be(hb.info + SCTP_HB_NONCE_LEN + 4) << 32 |
	       get_u32be(hb.info + SCTP_HB_NONCE_LEN + 8);
	if (ev.probe_id == 0 || ev.probe_id > a->hb_next_id || sent > a->now)
		return;
	ev.rtt_ms = a->now - sent > UINT32_MAX ? UINT32_MAX :
	            (uint32_t)(a->now - sent);
	if (ev.probe_id == a->hb_pending_id) {
		/* Karn: only the probe whose timer runs gives a clean sample. */
		core_rto_sample(a, ev.rtt_ms);
		a->hb_pending_id = 0;
		core_timer_stop(a, SCTP_T_HEARTBEAT);
		core_heartbeat_arm(a);
		/*
		 * The path answers again after an outage (the wire layer
		 * moved to another path and probed it): T3, backed off to
		 * seconds while nothing answered, is brought forward to the
		 * fresh RTO, so the data waiting behind it goes now rather
		 * than up to RTO.Max later.
		 */
		if (a->error_count > 0 && core_timer_running(a, SCTP_T3_RTX) &&
		    a->deadline[SCTP_T3_RTX] > a->now + a->rto)
			core_timer_start(a, SCTP_T3_RTX, a->rto);
	}
	a->error_count = 0;
	core_emit(a, &ev);
}
