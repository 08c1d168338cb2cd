/*
 * The association core's common machinery: the object, the clock, the
 * timers and the one deadline, output, events, and the input path that
 * checks a packet (framing, CRC32c, ports, verification tag: RFC 9260
 * §8.5, §8.5.1, out-of-the-blue packets §8.4) and dispatches its chunks
 * through a table to the role files.  Unknown chunk types follow their
 * upper two bits (§3.2).
 */
#include "sctp/assoc_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "util/bytes.h"
#include "util/log.h"

const char *sctp_core_state_str(enum sctp_core_state s)
{
	static const char *const names[] = {
		"CLOSED", "COOKIE-WAIT", "COOKIE-ECHOED", "ESTABLISHED",
		"SHUTDOWN-PENDING", "SHUTDOWN-SENT", "SHUTDOWN-RECEIVED",
		"SHUTDOWN-ACK-SENT",
	};

	if ((unsigned)s >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[s];
}

/* ---- lifecycle ---- */

static void config_defaults(struct sctp_core_config *c)
{
	if (c->os == 0)
		c->os = 65535;
	if (c->mis == 0)
		c->mis = 65535;
	if (c->a_rwnd < 1500)
		c->a_rwnd = c->a_rwnd == 0 ? 256 * 1024 : 1500;
	if (c->rto_initial_ms == 0)
		c->rto_initial_ms = SCTP_RTO_INITIAL_MS;
	if (c->rto_min_ms == 0)
		c->rto_min_ms = SCTP_RTO_MIN_MS;
	if (c->rto_max_ms == 0)
		c->rto_max_ms = SCTP_RTO_MAX_MS;
	if (c->rto_max_ms < c->rto_min_ms)
		c->rto_max_ms = c->rto_min_ms;
	if (c->max_init_retrans == 0)
		c->max_init_retrans = SCTP_MAX_INIT_RETRANS;
	if (c->max_retrans == 0)
		c->max_retrans = SCTP_MAX_RETRANS;
	if (c->cookie_life_ms == 0)
		c->cookie_life_ms = SCTP_COOKIE_LIFE_MS;
	if (c->mtu == 0)
		c->mtu = SCTP_MTU_DEFAULT;
	if (c->sndbuf == 0)
		c->sndbuf = 1024 * 1024;
	if (c->sack_delay_ms == 0)
		c->sack_delay_ms = 20;
	if (c->sack_freq == 0)
		c->sack_freq = 2;
	if (c->peer_sack_delay_ms == 0)
		c->peer_sack_delay_ms = c->sack_delay_ms;
	if (c->peer_sack_delay_ms > 500)
		c->peer_sack_delay_ms = 500;    /* RFC 9260 §6.2: at most 500 ms */
}

struct sctp_core *sctp_core_new(const struct sctp_core_config *cfg,
                                  const struct sctp_core_env *env)
{
	struct sctp_core *a;

	if (cfg == NULL || env == NULL || env->random == NULL ||
	    env->output == NULL || env->secret == NULL ||
	    env->secret_len == 0 || env->secret_len > SCTP_SECRET_MAX ||
	    (cfg->mtu != 0 && cfg->mtu < SCTP_MTU_MIN) ||
	    cfg->local_port == 0 || cfg->remote_port == 0 ||
	    core_cc_select(cfg->cc) == NULL ||
	    (cfg->cc == SCTP_CC_FIXED && cfg->fixed_rate == 0))
		return NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->cfg = *cfg;
	config_defaults(&a->cfg);
	a->env = *env;
	memcpy(a->secret, env->secret, env->secret_len);
	a->secret_len = env->secret_len;
	a->env.secret = NULL;
	a->env.secret_len = 0;
	if ((a->obuf = malloc(a->cfg.mtu)) == NULL ||
	    (a->rbuf = malloc(a->cfg.mtu)) == NULL || core_data_new(a) != 0) {
		sctp_core_free(a);
		return NULL;
	}
	for (int t = 0; t < SCTP_T_COUNT; t++)
		a->deadline[t] = SCTP_CORE_NO_DEADLINE;
	a->rto = a->cfg.rto_initial_ms;
	a->cc_ops = core_cc_select(a->cfg.cc);
	a->cc.fixed_rate = a->cfg.fixed_rate;
	a->env.random(a->env.arg, a->hb_nonce, sizeof(a->hb_nonce));
	return a;
}

void sctp_core_free(struct sctp_core *a)
{
	if (a == NULL)
		return;
	wc_wipe(a->secret, sizeof(a->secret));
	core_data_free(a);
	free(a->cookie);
	free(a->obuf);
	free(a->rbuf);
	free(a);
}

enum sctp_core_state sctp_core_state(const struct sctp_core *a)
{
	return a->state;
}

void sctp_core_get_info(const struct sctp_core *a, struct sctp_core_info *o)
{
	memset(o, 0, sizeof(*o));
	o->local_vtag = a->p.local_vtag;
	o->peer_vtag = a->p.peer_vtag;
	o->out_streams = a->p.out_streams;
	o->in_streams = a->p.in_streams;
	o->idata = a->p.idata;
	o->peer_rwnd = a->p.peer_rwnd;
	o->rto_ms = a->rto;
	o->init_retrans = a->init_retrans;
	o->error_count = a->error_count;
	o->dropped = a->dropped;
	o->data_chunks = a->data_chunks;
	core_data_info(a, o);
}

/* ---- state, events, time ---- */

void core_set_state(struct sctp_core *a, enum sctp_core_state s)
{
	if (a->state == s)
		return;
	log_debug("sctp assoc %08x: %s -> %s", a->p.local_vtag,
	          sctp_core_state_str(a->state), sctp_core_state_str(s));
	a->state = s;
}

void core_emit(struct sctp_core *a, const struct sctp_core_event *ev)
{
	if (a->env.event != NULL)
		a->env.event(a->env.arg, ev);
}

void core_down(struct sctp_core *a, enum sctp_down_reason why,
                     uint16_t cause)
{
	struct sctp_core_event ev = { .type = SCTP_EV_DOWN, .reason = why,
	                               .cause = cause };

	for (int t = 0; t < SCTP_T_COUNT; t++)
		a->deadline[t] = SCTP_CORE_NO_DEADLINE;
	free(a->cookie);
	a->cookie = NULL;
	a->cookie_len = 0;
	a->shutdown_wanted = 0;
	a->hb_pending_id = 0;
	a->error_count = 0;
	a->preserve_ms = 0;
	core_data_clear(a);
	core_set_state(a, SCTP_S_CLOSED);
	memset(&a->p, 0, sizeof(a->p));
	core_emit(a, &ev);
}

static void advance(struct sctp_core *a, uint64_t now)
{
	if (now > a->now)
		a->now = now;
}

/*
 * Over a reliable carrier T3 is only the safety net (a dead connection,
 * a frame the carrier dropped at the tail): the RTT there includes TCP's
 * queues and swings with them.  At least SCTP_CORE_RELIABLE_RTO_MIN_MS,
 * at most the RTO ceiling.  (Every SACK that moves the cumulative ack
 * restarts it, so a slow TCP that keeps delivering does not fire it.)
 */
static uint32_t reliable_t3(const struct sctp_core *a, uint32_t ms)
{
	uint32_t floor = SCTP_CORE_RELIABLE_RTO_MIN_MS;

	if (floor > a->cfg.rto_max_ms)
		floor = a->cfg.rto_max_ms;
	return ms < floor ? floor : ms;
}

void core_timer_start(struct sctp_core *a, enum core_timer_id t, uint32_t ms)
{
	if (t == SCTP_T3_RTX && a->reliable)
		ms = reliable_t3(a, ms);
	a->deadline[t] = a->now + ms;
}

void core_timer_stop(struct sctp_core *a, enum core_timer_id t)
{
	a->deadline[t] = SCTP_CORE_NO_DEADLINE;
}

int core_timer_running(const struct sctp_core *a, enum core_timer_id t)
{
	return a->deadline[t] != SCTP_CORE_NO_DEADLINE;
}

uint64_t sctp_core_next_deadline(const struct sctp_core *a)
{
	uint64_t d = SCTP_CORE_NO_DEADLINE;

	for (int t = 0; t < SCTP_T_COUNT; t++)
		if (a->deadline[t] < d)
			d = a->deadline[t];
	return d;
}

static void t5_guard(struct sctp_core *a)
{
	/* The peer kept the shutdown from completing for 5 RTO.Max. */
	core_send_cause(a, a->p.peer_vtag, SCTP_CT_ABORT, 0,
	                SCTP_C_USER_ABORT, NULL, 0);
	core_down(a, SCTP_DOWN_PEER_UNREACHABLE, 0);
}

static void (*const timer_fn[SCTP_T_COUNT])(struct sctp_core *) = {
	[SCTP_T1_INIT] = core_handshake_t1,
	[SCTP_T2_SHUTDOWN] = core_shutdown_t2,
	[SCTP_T5_GUARD] = t5_guard,
	[SCTP_T_HEARTBEAT] = core_heartbeat_timer,
	[SCTP_T3_RTX] = core_t3_expired,
	[SCTP_T_SACK] = core_sack_timer,
	[SCTP_T_RACK] = core_rack_timer,
	[SCTP_T_TLP] = core_tlp_timer,
	[SCTP_T_PACE] = core_pace_timer,
};

void sctp_core_timeout(struct sctp_core *a, uint64_t now)
{
	advance(a, now);
	/* Each timer at most once per call: a handler restarts its timer
	 * at least 1 ms ahead, or closes everything. */
	for (int t = 0; t < SCTP_T_COUNT; t++) {
		if (a->deadline[t] > a->now)
			continue;
		a->deadline[t] = SCTP_CORE_NO_DEADLINE;
		timer_fn[t](a);
	}
}

/*
 * One more unanswered timer (T3, heartbeat, T2) toward
 * Association.Max.Retrans (§8.3).  Returns 1 when the peer is to be
 * declared unreachable: past Max.Retrans, and, with cfg.fail_min_ms, at
 * least that long after the first error since the peer last answered.
 * The count alone is a number of RTOs, and an RTO that fresh RTT samples
 * keep small (or a low RTO.Min) spends it in well under a second, before
 * the wire layer has moved to another path; the time makes detection
 * independent of the RTO floor (docs/sctp-engine.md, "Failure
 * detection").  Every reset of error_count to 0 is an answer.
 */
int core_error_count(struct sctp_core *a)
{
	if (a->error_count == 0)
		a->err_since = a->now;
	if (a->error_count < UINT_MAX)
		a->error_count++;
	if (a->error_count <= a->cfg.max_retrans)
		return 0;
	return a->now - a->err_since >= a->cfg.fail_min_ms;
}

/* RFC 9260 §6.3.3 E2: double, up to RTO.Max. */
uint32_t core_rto_backoff(const struct sctp_core *a, uint32_t rto)
{
	uint64_t r = (uint64_t)rto * 2;

	return r > a->cfg.rto_max_ms ? a->cfg.rto_max_ms : (uint32_t)r;
}

/*
 * RFC 9260 §6.3.1 C1-C3, in milliseconds, with two changes for a core
 * that has RACK-TLP in front of its RTO (docs/sctp-engine.md, "Loss
 * recovery"): the variance term is at least SCTP_RTO_GRANULARITY_MS, and
 * the peer's delayed-SACK time is added, because a lone last packet is
 * acked only when that timer runs out, while the samples of a busy
 * association (every second packet acked at once) do not contain it.
 * rto_min_ms is then a floor for pathological samples, not the margin.
 */
void core_rto_sample(struct sctp_core *a, uint32_t r)
{
	uint32_t rto, var;

	if (!a->have_rtt) {
		a->srtt = r;
		a->rttvar = r / 2;
		a->have_rtt = 1;
	} else {
		uint32_t d = a->srtt > r ? a->srtt - r : r - a->srtt;

		a->rttvar = (uint32_t)(((uint64_t)a->rttvar * 3 + d) / 4);
		a->srtt = (uint32_t)(((uint64_t)a->srtt * 7 + r) / 8);
	}
	var = 4 * a->rttvar;
	if (var < SCTP_RTO_GRANULARITY_MS)
		var = SCTP_RTO_GRANULARITY_MS;
	rto = a->srtt + var + a->cfg.peer_sack_delay_ms;
	if (rto < a->cfg.rto_min_ms)
		rto = a->cfg.rto_min_ms;
	if (rto > a->cfg.rto_max_ms)
		rto = a->cfg.rto_max_ms;
	a->rto = rto;
}

uint32_t core_random_u32(struct sctp_core *a)
{
	uint8_t b[4];

	a->env.random(a->env.arg, b, sizeof(b));
	return get_u32be(b);
}

uint32_t core_random_tag(struct sctp_core *a)
{
	uint32_t t = core_random_u32(a);

	return t != 0 ? t : 1;     /* tag 0 belongs to INIT (§3.3.2) */
}

/* ---- output ---- */

void core_out_start(struct sctp_core *a, struct sctp_builder *b, uint32_t vtag)
{
	/* cfg.mtu >= SCTP_MTU_MIN, so the header always fits. */
	(void)sctp_build_start(b, a->obuf, a->cfg.mtu, a->cfg.local_port,
	                       a->cfg.remote_port, vtag);
}

void core_out_send(struct sctp_core *a, struct sctp_builder *b)
{
	size_t n = sctp_build_finish(b, a->cfg.no_crc);

	if (n > SCTP_HEADER_LEN)
		a->env.output(a->env.arg, a->obuf, n);
}

void core_send_empty(struct sctp_core *a, uint32_t vtag, uint8_t type, int t)
{
	struct sctp_builder b;

	core_out_start(a, &b, vtag);
	(void)sctp_build_empty(&b, type, t);
	core_out_send(a, &b);
}

void core_send_cause(struct sctp_core *a, uint32_t vtag, uint8_t type, int t,
                     uint16_t cause, const void *info, size_t n)
{
	struct sctp_builder b;

	core_out_start(a, &b, vtag);
	/* Cause 0 means none: an ABORT without a cause is allowed. */
	if (cause == 0 || sctp_build_cause(&b, type, t, cause, info, n) != 0)
		(void)sctp_build_causes(&b, type, t, NULL, 0);
	core_out_send(a, &b);
}

/* ---- input ---- */

/* Counted, not logged: a peer can send any number of these. */
static void drop(struct sctp_core *a, const char *why)
{
	(void)why;
	a->dropped++;
}

/* §8.4: a packet for no association (state CLOSED). */
static int input_ootb(struct sctp_core *a, const struct sctp_packet *pkt)
{
	struct sctp_chunk_iter it;
	struct sctp_chunk c;
	uint32_t vtag = pkt->hdr.vtag;

	/* Tag 0 belongs to INIT alone (§8.5.1 A); never reflect it. */
	if (vtag == 0 && pkt->first_type != SCTP_CT_INIT)
		return -1;
	sctp_chunk_iter_init(&it, pkt);
	while (sctp_chunk_next(&it, &c) == 1) {
		if (c.type == SCTP_CT_ABORT)
			return -1;                          /* rule 2 */
		if (c.type == SCTP_CT_ERROR || c.type == SCTP_CT_COOKIE_ACK ||
		    c.type == SCTP_CT_SHUTDOWN_COMPLETE)
			return -1;                          /* rules 6, 7 */
	}
	switch (pkt->first_type) {
	case SCTP_CT_INIT:
		if (vtag != 0)
			return -1;
		if (a->cfg.listen)
			return 0;                           /* §5.1 */
		sctp_chunk_iter_init(&it, pkt);
		if (sctp_chunk_next(&it, &c) == 1 && c.value_len >= 4 &&
		    get_u32be(c.value) != 0)
			core_send_cause(a, get_u32be(c.value), SCTP_CT_ABORT, 0,
			                0, NULL, 0);
		return -1;
	case SCTP_CT_COOKIE_ECHO:
		if (a->cfg.listen)
			return 0;
		break;
	case SCTP_CT_SHUTDOWN_ACK:                      /* rule 5 */
		core_send_empty(a, vtag, SCTP_CT_SHUTDOWN_COMPLETE, 1);
		return -1;
	default:
		break;
	}
	/* Rule 8: tell the sender, reflecting its tag. */
	core_send_cause(a, vtag, SCTP_CT_ABORT, 1, 0, NULL, 0);
	return -1;
}

static int abort_like_tag_ok(const struct sctp_core *a, uint32_t vtag, int t)
{
	if (t)
		return a->p.peer_vtag != 0 && vtag == a->p.peer_vtag;
	return vtag == a->p.local_vtag;
}

/* §8.5, §8.5.1: may this packet reach the association's chunk handlers? */
static int tag_ok(struct sctp_core *a, const struct sctp_packet *pkt)
{
	uint32_t vtag = pkt->hdr.vtag;
	struct sctp_chunk_iter it;
	struct sctp_chunk c;

	sctp_chunk_iter_init(&it, pkt);
	if (sctp_chunk_next(&it, &c) != 1)
		return 0;
	switch (c.type) {
	case SCTP_CT_INIT:
		return vtag == 0;
	case SCTP_CT_COOKIE_ECHO:
		return 1;               /* checked against the cookie (§5.1.5) */
	case SCTP_CT_ABORT:
	case SCTP_CT_SHUTDOWN_COMPLETE:
		return abort_like_tag_ok(a, vtag, c.flags & SCTP_CF_T);
	case SCTP_CT_SHUTDOWN_ACK:
		/* §8.5.1 E: before ESTABLISHED it is out of the blue. */
		if (a->state == SCTP_S_COOKIE_WAIT ||
		    a->state == SCTP_S_COOKIE_ECHOED) {
			core_send_empty(a, vtag, SCTP_CT_SHUTDOWN_COMPLETE, 1);
			return 0;
		}
		return vtag == a->p.local_vtag;
	default:
		return vtag == a->p.local_vtag;
	}
}

/* Chunk handlers: 0 to go on with the packet, -1 to stop. */
typedef int (*chunk_fn)(struct sctp_core *, const struct sctp_packet *,
                        const struct sctp_chunk *, unsigned idx);

static int data_accepted(const struct sctp_core *a)
{
	return a->state == SCTP_S_ESTABLISHED ||
	       a->state == SCTP_S_SHUTDOWN_PENDING ||
	       a->state == SCTP_S_SHUTDOWN_SENT;
}

static int on_data(struct sctp_core *a, const struct sctp_packet *pkt,
                   const struct sctp_chunk *c, unsigned idx)
{
	(void)pkt; (void)idx;
	if (!data_accepted(a))
		return 0;
	return core_data_input(a, c);
}

static int on_sack(struct sctp_core *a, const struct sctp_packet *pkt,
                   const struct sctp_chunk *c, unsigned idx)
{
	(void)pkt; (void)idx;
	if (a->state >= SCTP_S_ESTABLISHED)
		core_sack_input(a, c);
	return 0;
}

static int on_init(struct sctp_core *a, const struct sctp_packet *pkt,
                   const struct sctp_chunk *c, unsigned idx)
{
	(void)idx;
	core_handle_init(a, pkt, c);
	return -1;                  /* INIT travels alone */
}

static int on_init_ack(struct sctp_core *a, const struct sctp_packet *pkt,
                       const struct sctp_chunk *c, unsigned idx)
{
	(void)idx;
	core_handle_init_ack(a, pkt, c);
	return -1;
}

static int on_cookie_echo(struct sctp_core *a, const struct sctp_packet *pkt,
                          const struct sctp_chunk *c, unsigned idx)
{
	if (idx != 0)
		return 0;               /* only first in a packet (§6.10) */
	return core_handle_cookie_echo(a, pkt, c);
}

static int on_cookie_ack(struct sctp_core *a, const struct sctp_packet *pkt,
                         const struct sctp_chunk *c, unsigned idx)
{
	(void)pkt; (void)idx;
	core_handle_cookie_ack(a, c);
	return 0;
}

static int on_heartbeat(struct sctp_core *a, const struct sctp_packet *pkt,
                        const struct sctp_chunk *c, unsigned idx)
{
	(void)pkt; (void)idx;
	core_handle_heartbeat(a, c);
	return 0;
}

static int on_heartbeat_ack(struct sctp_core *a, const struct sctp_packet *pkt,
                            const struct sctp_chunk *c, unsigned idx)
{
	(void)pkt; (void)idx;
	core_handle_heartbeat_ack(a, c);
	return 0;
}

static int on_abort(struct sctp_core *a, const struct sctp_packet *pkt,
                    const struct sctp_chunk *c, unsigned idx)
{
	(void)idx;
	if (abort_like_tag_ok(a, pkt->hdr.vtag, c->flags & SCTP_CF_T))
		core_handle_abort(a, c);
	return -1;
}

static int on_shutdown(struct sctp_core *a, const struct sctp_packet *pkt,
                       const struct sctp_chunk *c, unsigned idx)
{
	(void)pkt; (void)idx;
	core_handle_shutdown(a, c);
	return 0;
}

static int on_shutdown_ack(struct sctp_core *a, const struct sctp_packet *pkt,
                           const struct sctp_chunk *c, unsigned idx)
{
	(void)c; (void)idx;
	core_handle_shutdown_ack(a, pkt);
	return 0;
}

static int on_shutdown_complete(struct sctp_core *a,
                                const struct sctp_packet *pkt,
                                const struct sctp_chunk *c, unsigned idx)
{
	(void)pkt; (void)c; (void)idx;
	core_handle_shutdown_complete(a);
	return -1;
}

static int on_error(struct sctp_core *a, const struct sctp_packet *pkt,
                    const struct sctp_chunk *c, unsigned idx)
{
	(void)pkt; (void)idx;
	core_handle_error(a, c);
	return 0;
}

static int on_ignore(struct sctp_core *a, const struct sctp_packet *pkt,
                     const struct sctp_chunk *c, unsigned idx)
{
	(void)a; (void)pkt; (void)c; (void)idx;
	return 0;
}

static const chunk_fn chunk_table[256] = {
	[SCTP_CT_DATA] = on_data,
	[SCTP_CT_INIT] = on_init,
	[SCTP_CT_INIT_ACK] = on_init_ack,
	[SCTP_CT_SACK] = on_sack,
	[SCTP_CT_HEARTBEAT] = on_heartbeat,
	[SCTP_CT_HEARTBEAT_ACK] = on_heartbeat_ack,
	[SCTP_CT_ABORT] = on_abort,
	[SCTP_CT_SHUTDOWN] = on_shutdown,
	[SCTP_CT_SHUTDOWN_ACK] = on_shutdown_ack,
	[SCTP_CT_ERROR] = on_error,
	[SCTP_CT_COOKIE_ECHO] = on_cookie_echo,
	[SCTP_CT_COOKIE_ACK] = on_cookie_ack,
	[SCTP_CT_SHUTDOWN_COMPLETE] = on_shutdown_complete,
	[SCTP_CT_I_DATA] = on_data,
};

/*
 * An unknown chunk to report (§3.2, upper bit 01 or 11): its whole bytes
 * in an Unrecognized Chunk Type cause, as many as fit one packet.
 */
static void report_unknown(struct sctp_core *a, const struct sctp_chunk *c)
{
	size_t need = 4 + ((4 + c->value_len + 3) & ~(size_t)3);
	size_t room = (size_t)a->cfg.mtu - SCTP_HEADER_LEN - SCTP_CHUNK_HEADER_LEN;

	if (need > room || a->rlen > room - need)
		return;
	put_u16be(a->rbuf + a->rlen, SCTP_C_UNRECOGNIZED_CHUNK);
	put_u16be(a->rbuf + a->rlen + 2, (uint16_t)(4 + 4 + c->value_len));
	a->rbuf[a->rlen + 4] = c->type;
	a->rbuf[a->rlen + 5] = c->flags;
	put_u16be(a->rbuf + a->rlen + 6, c->length);
	memcpy(a->rbuf + a->rlen + 8, c->value, c->value_len);
	memset(a->rbuf + a->rlen + 8 + c->value_len, 0,
	       need - 8 - c->value_len);
	a->rlen += need;
}

static void send_reports(struct sctp_core *a)
{
	struct sctp_builder b;

	if (a->rlen == 0)
		return;
	if (a->state != SCTP_S_CLOSED && a->p.peer_vtag != 0) {
		core_out_start(a, &b, a->p.peer_vtag);
		(void)sctp_build_causes(&b, SCTP_CT_ERROR, 0, a->rbuf, a->rlen);
		core_out_send(a, &b);
	}
	a->rlen = 0;
}

static void process_chunks(struct sctp_core *a, const struct sctp_packet *pkt)
{
	struct sctp_chunk_iter it;
	struct sctp_chunk c;
	unsigned idx = 0;

	a->rlen = 0;
	sctp_chunk_iter_init(&it, pkt);
	for (; sctp_chunk_next(&it, &c) == 1; idx++) {
		chunk_fn fn = chunk_table[c.type];

		if (fn == NULL) {
			enum sctp_unknown_action act =
				sctp_unknown_chunk_action(c.type);

			if (act == SCTP_UNKNOWN_STOP_REPORT ||
			    act == SCTP_UNKNOWN_SKIP_REPORT)
				report_unknown(a, &c);
			if (act == SCTP_UNKNOWN_STOP ||
			    act == SCTP_UNKNOWN_STOP_REPORT)
				break;
			fn = on_ignore;
		}
		if (fn(a, pkt, &c, idx) != 0 || a->state == SCTP_S_CLOSED)
			break;
	}
	send_reports(a);
}

void sctp_core_input(struct sctp_core *a, const uint8_t *p, size_t n,
                      uint64_t now)
{
	struct sctp_packet pkt;

	advance(a, now);
	if (sctp_packet_parse(p, n, &pkt) != 0) {
		drop(a, "malformed");
		return;
	}
	if (!a->cfg.no_crc && sctp_packet_check_crc(p, n) != 0) {
		drop(a, "checksum");
		return;
	}
	if (pkt.hdr.dst_port != a->cfg.local_port ||
	    pkt.hdr.src_port != a->cfg.remote_port) {
		drop(a, "ports");
		return;
	}
	if (a->state == SCTP_S_CLOSED) {
		if (input_ootb(a, &pkt) != 0) {
			a->dropped++;
			return;
		}
	} else if (!tag_ok(a, &pkt)) {
		drop(a, "verification tag");
		return;
	}
	process_chunks(a, &pkt);
	if (a->state != SCTP_S_CLOSED)
		core_data_after_packet(a);
}

/* ---- API ---- */

void sctp_core_batch_begin(struct sctp_core *a)
{
	core_data_batch_begin(a);
}

void sctp_core_batch_end(struct sctp_core *a, uint64_t now)
{
	advance(a, now);
	core_data_batch_end(a);
}

int sctp_core_connect(struct sctp_core *a, uint64_t now)
{
	advance(a, now);
	if (a->state != SCTP_S_CLOSED)
		return -1;
	return core_handshake_connect(a);
}

int sctp_core_shutdown(struct sctp_core *a, uint64_t now)
{
	advance(a, now);
	return core_shutdown_start(a);
}

void sctp_core_abort(struct sctp_core *a, uint64_t now)
{
	advance(a, now);
	if (a->state == SCTP_S_CLOSED)
		return;
	/* In COOKIE-WAIT the peer has no tag of ours to match: nothing to say. */
	if (a->p.peer_vtag != 0)
		core_send_cause(a, a->p.peer_vtag, SCTP_CT_ABORT, 0,
		                SCTP_C_USER_ABORT, NULL, 0);
	core_down(a, SCTP_DOWN_LOCAL_ABORT, 0);
}

int sctp_core_probe(struct sctp_core *a, uint64_t now, uint32_t *probe_id)
{
	advance(a, now);
	return core_heartbeat_send(a, probe_id);
}
