/*
 * Inside the association core: the association record, its timers, and
 * the functions the role files (assoc.c, assoc_handshake.c,
 * assoc_shutdown.c, assoc_heartbeat.c, assoc_cookie.c, and data transfer:
 * assoc_data.c with assoc_data_internal.h) share.  Included only from
 * src/sctp/.
 */
#ifndef SCTPT_SCTP_ASSOC_INTERNAL_H
#define SCTPT_SCTP_ASSOC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sctp/assoc.h"
#include "sctp/packet.h"

#define SCTP_SECRET_MAX 64
#define SCTP_HB_NONCE_LEN 8

/* RFC 9260 §16 defaults. */
#define SCTP_RTO_INITIAL_MS 1000
#define SCTP_RTO_MIN_MS 1000
#define SCTP_RTO_MAX_MS 60000
#define SCTP_MAX_INIT_RETRANS 8
#define SCTP_MAX_RETRANS 10
#define SCTP_COOKIE_LIFE_MS 60000
/* How much longer a peer may ask the cookie to live (Cookie Preservative). */
#define SCTP_COOKIE_PRESERVE_MAX_MS 60000
/* The RTO's variance term is at least this (RFC 9002's kGranularity in
 * spirit, sized for a ms clock and an event loop on a loaded host). */
#define SCTP_RTO_GRANULARITY_MS 10
#define SCTP_MTU_DEFAULT 1200
#define SCTP_MTU_MIN 512

/*
 * One entry per timer.  The association's deadline is the earliest
 * running one; a timer is off at SCTP_CORE_NO_DEADLINE.
 */
enum core_timer_id {
	SCTP_T1_INIT = 0,          /* also T1-cookie: one at a time */
	SCTP_T2_SHUTDOWN,
	SCTP_T5_GUARD,             /* T5-shutdown-guard */
	SCTP_T_HEARTBEAT,          /* next probe, or the pending probe's RTO */
	SCTP_T3_RTX,               /* runs iff data is outstanding */
	SCTP_T_SACK,               /* delayed SACK */
	SCTP_T_RACK,               /* RACK reordering timer (assoc_rack.c) */
	SCTP_T_TLP,                /* tail-loss probe timeout (assoc_rack.c) */
	SCTP_T_PACE,               /* the pacer lets the next packet go */
	SCTP_T_COUNT,
};

/*
 * Congestion control, behind an ops table (assoc_cc.c: NewReno, CUBIC,
 * fixed rate; assoc_bbr.c: the delivery-rate model).  Driven from
 * assoc_sack.c (on_ack with a delivery-rate sample), assoc_rack.c
 * (on_fast_retransmit, undo, lost bytes) and assoc_rtx.c (on_rto).  A
 * controller sets cwnd and pacing_rate; the send path (assoc_send.c)
 * obeys both.  docs/sctp-engine.md, "Congestion control and pacing".
 */
#define CC_BW_ROUNDS 10            /* BBR's max filter, in round trips */

struct sctp_cc {
	uint32_t cwnd;
	uint32_t ssthresh;
	uint32_t partial_bytes_acked;
	uint32_t mtu;
	uint64_t pacing_rate;      /* bytes/s; 0: not paced */
	uint64_t lost_bytes;       /* declared lost, ever (core adds) */
	uint64_t fixed_rate;       /* fixed: bytes/s asked for */
	uint64_t rate_sample;      /* latest delivery-rate sample, bytes/s */
	uint32_t carrier_wnd;      /* carrier: the fixed window (core sets) */

	/* CUBIC (RFC 9438), windows in bytes, time in ms. */
	double w_max, w_est, k_s;
	uint64_t epoch_start;      /* 0: no epoch */
	uint32_t srtt;
	double prior_w_max;

	/* Delivery-rate model (assoc_bbr.c) and the fixed rate. */
	int mode;
	uint64_t bw[CC_BW_ROUNDS]; /* max delivery rate per round, ring */
	uint64_t round;            /* round trips counted */
	uint64_t next_round_delivered;
	uint64_t btl_bw;           /* max of bw[] (capped by bw_hi) */
	uint64_t bw_hi;            /* startup's loss cap; UINT64_MAX: none */
	uint64_t inflight_hi;      /* loss guard's cwnd cap; UINT64_MAX: none */
	uint32_t round_min_rtt;    /* least RTT sample of the judged rounds */
	uint64_t full_bw;
	unsigned full_bw_count;
	int filled_pipe;
	uint32_t min_rtt;          /* UINT32_MAX: none */
	uint64_t min_rtt_at;
	uint32_t recent_min_rtt;   /* least RTT since recent_at; UINT32_MAX: none */
	uint32_t recent_samples;
	uint64_t recent_at;        /* start of the stale-min_rtt window */
	int restart_after_probe;   /* a stale min_rtt: STARTUP after PROBE_RTT */
	uint64_t probe_rtt_done;   /* 0: not in PROBE_RTT's dwell yet */
	unsigned cycle;            /* PROBE_BW gain phase */
	uint64_t cycle_at;
	uint64_t round_lost, round_delivered;  /* this round's bytes */
	uint64_t lost_seen;        /* lost_bytes at the last ack */
	double pacing_gain, cwnd_gain;
	double loss_ratio;         /* fixed: smoothed, per round */
	int app_limited;           /* bbr: the latest sample was */
};

/* What one SACK told the controller. */
struct sctp_cc_ack {
	uint32_t acked;            /* bytes the cumulative ack newly freed */
	uint32_t newly;            /* bytes newly acked, cum or gap */
	uint32_t flight_before;    /* in flight before the SACK */
	uint32_t flight;           /* in flight after it */
	int advanced;              /* the cumulative ack moved */
	int in_recovery;           /* fast recovery lasts */
	uint64_t now;
	uint32_t srtt;             /* 0 before a sample */
	uint32_t rtt;              /* this SACK's RTT sample; UINT32_MAX none */
	/* Delivery-rate sample (RFC draft-cheng-iccrg-delivery-rate-
	 * estimation, on chunks): bytes delivered over the interval. */
	uint64_t delivered;        /* total delivered, ever */
	uint64_t prior_delivered;  /* at the sampled chunk's send */
	uint64_t rate;             /* bytes/s; 0: no sample */
	int app_limited;           /* the sample may under-measure */
};

struct sctp_cc_ops {
	const char *name;
	void (*init)(struct sctp_cc *cc, uint32_t mtu, uint32_t peer_rwnd);
	/* Every SACK that acked something new. */
	void (*on_ack)(struct sctp_cc *cc, const struct sctp_cc_ack *ack);
	void (*on_fast_retransmit)(struct sctp_cc *cc, uint32_t flight);
	void (*on_rto)(struct sctp_cc *cc, uint32_t flight);
	/* The reduction was for a loss that never happened (a spurious
	 * retransmission or RTO): back to what it was before. */
	void (*undo)(struct sctp_cc *cc, uint32_t prior_cwnd,
	             uint32_t prior_ssthresh);
};

extern const struct sctp_cc_ops core_cc_newreno;
extern const struct sctp_cc_ops core_cc_cubic;
extern const struct sctp_cc_ops core_cc_bbr;
extern const struct sctp_cc_ops core_cc_fixed;
/* Over a reliable carrier (sctp_core_set_reliable): cwnd is fixed at
 * cc->carrier_wnd, no pacing, loss does not shrink it. */
extern const struct sctp_cc_ops core_cc_carrier;
/* The ops for cfg->cc. */
const struct sctp_cc_ops *core_cc_select(int algo);

/* What a handshake agreed on: filled from a cookie or an INIT-ACK. */
struct core_tcb_params {
	uint32_t local_vtag;
	uint32_t peer_vtag;
	uint32_t local_tsn;        /* our initial TSN */
	uint32_t peer_tsn;         /* the peer's initial TSN */
	uint32_t peer_rwnd;
	uint16_t out_streams;
	uint16_t in_streams;
	int idata;
};

struct sctp_core {
	struct sctp_core_config cfg;
	struct sctp_core_env env;
	uint8_t secret[SCTP_SECRET_MAX];
	size_t secret_len;
	enum sctp_core_state state;
	uint64_t now;              /* latest time handed in (never goes back) */

	struct core_tcb_params p;  /* valid from COOKIE-WAIT on (partly) */
	uint32_t next_tsn;         /* TSN of our next new chunk */
	uint32_t cum_tsn_rcvd;     /* peer's TSNs received in order */

	/* Handshake: what to retransmit on T1. */
	uint8_t *cookie;           /* COOKIE-ECHOED: the peer's cookie */
	size_t cookie_len;
	uint32_t preserve_ms;      /* Cookie Preservative for the next INIT */
	uint64_t init_sent_at;     /* INIT or COOKIE-ECHO, for an RTT sample */
	int init_timing;           /* 0 once resent (Karn: no sample) */
	int shutdown_wanted;       /* shutdown() before ESTABLISHED */

	/* Timers: deadline and the RTO each was started with. */
	uint64_t deadline[SCTP_T_COUNT];
	uint32_t t1_rto;
	uint32_t t2_rto;
	unsigned init_retrans;
	unsigned error_count;
	uint64_t err_since;        /* first error since the count was 0 */

	/* RTO (§6.3.1). */
	uint32_t srtt, rttvar, rto;
	int have_rtt;

	/* Heartbeats: one probe in flight at a time counts for errors. */
	uint8_t hb_nonce[SCTP_HB_NONCE_LEN];
	uint32_t hb_next_id;
	uint32_t hb_pending_id;    /* 0 if none */
	uint32_t hb_rto;

	const struct sctp_cc_ops *cc_ops;
	struct sctp_cc cc;
	/* sctp_core_set_reliable(): while set, cc_ops is core_cc_carrier
	 * and cc_base the configured controller to go back to. */
	int reliable;
	const struct sctp_cc_ops *cc_base;

	struct core_data *d;       /* data transfer (assoc_data_internal.h) */

	uint8_t *obuf;             /* one packet being built (cfg.mtu bytes) */
	uint8_t *rbuf;             /* ERROR causes gathered from one packet */
	size_t rlen;
	unsigned dropped;
	unsigned data_chunks;
};

/* Over a reliable carrier: SACK every this many packets (and at a
 * receive batch's end), instead of cfg.sack_freq and CORE_BATCH_SACK_MAX. */
#define SCTP_RELIABLE_SACK_FREQ 16

/* ---- assoc.c: common machinery ---- */
void core_set_state(struct sctp_core *a, enum sctp_core_state s);
void core_emit(struct sctp_core *a, const struct sctp_core_event *ev);
/* Goes CLOSED, stops every timer, forgets the TCB, emits DOWN. */
void core_down(struct sctp_core *a, enum sctp_down_reason why,
                     uint16_t cause);
void core_timer_start(struct sctp_core *a, enum core_timer_id t, uint32_t ms);
void core_timer_stop(struct sctp_core *a, enum core_timer_id t);
int core_timer_running(const struct sctp_core *a, enum core_timer_id t);
uint32_t core_rto_backoff(const struct sctp_core *a, uint32_t rto);
int core_error_count(struct sctp_core *a);
void core_rto_sample(struct sctp_core *a, uint32_t rtt_ms);
uint32_t core_random_u32(struct sctp_core *a);
uint32_t core_random_tag(struct sctp_core *a);
/* Output: start a packet with a tag, send it (CRC unless cfg.no_crc). */
void core_out_start(struct sctp_core *a, struct sctp_builder *b, uint32_t vtag);
void core_out_send(struct sctp_core *a, struct sctp_builder *b);
/* One-chunk packets. */
void core_send_empty(struct sctp_core *a, uint32_t vtag, uint8_t type, int t);
void core_send_cause(struct sctp_core *a, uint32_t vtag, uint8_t type, int t,
                     uint16_t cause, const void *info, size_t n);

/* ---- assoc_cookie.c ---- */
#define SCTP_COOKIE_LEN 88
struct core_cookie {
	struct core_tcb_params p;
	uint32_t local_tie_tag;
	uint32_t peer_tie_tag;
	uint64_t created_ms;
	uint32_t life_ms;
};
void core_cookie_make(const struct sctp_core *a, const struct core_cookie *c,
                      uint8_t out[SCTP_COOKIE_LEN]);
/* 0, -1 if the HMAC or format is wrong, or 1 if stale (*stale_us set). */
int core_cookie_open(const struct sctp_core *a, const uint8_t *p, size_t n,
                     struct core_cookie *c, uint32_t *stale_us);

/* ---- assoc_handshake.c ---- */
int core_handshake_connect(struct sctp_core *a);
void core_handshake_t1(struct sctp_core *a);
void core_handle_init(struct sctp_core *a, const struct sctp_packet *pkt,
                      const struct sctp_chunk *c);
void core_handle_init_ack(struct sctp_core *a, const struct sctp_packet *pkt,
                          const struct sctp_chunk *c);
/* 0 if processed (the packet may go on), -1 to drop the rest. */
int core_handle_cookie_echo(struct sctp_core *a, const struct sctp_packet *pkt,
                            const struct sctp_chunk *c);
void core_handle_cookie_ack(struct sctp_core *a, const struct sctp_chunk *c);
void core_handle_stale_cookie(struct sctp_core *a, uint32_t stale_us);
/* Becomes ESTABLISHED with these parameters (UP or RESTART event). */
void core_handshake_established(struct sctp_core *a, int restart);

/* ---- assoc_shutdown.c ---- */
int core_shutdown_start(struct sctp_core *a);
void core_shutdown_progress(struct sctp_core *a);
void core_shutdown_t2(struct sctp_core *a);
void core_handle_shutdown(struct sctp_core *a, const struct sctp_chunk *c);
void core_handle_shutdown_ack(struct sctp_core *a, const struct sctp_packet *pkt);
void core_handle_shutdown_complete(struct sctp_core *a);
void core_handle_abort(struct sctp_core *a, const struct sctp_chunk *c);
void core_handle_error(struct sctp_core *a, const struct sctp_chunk *c);
/* We abort a peer that broke the protocol. */
void core_abort_violation(struct sctp_core *a, uint16_t cause, const char *why);

/* ---- assoc_heartbeat.c ---- */
int core_heartbeat_send(struct sctp_core *a, uint32_t *probe_id);
void core_heartbeat_timer(struct sctp_core *a);
void core_heartbeat_arm(struct sctp_core *a);
void core_handle_heartbeat(struct sctp_core *a, const struct sctp_chunk *c);
void core_handle_heartbeat_ack(struct sctp_core *a, const struct sctp_chunk *c);

/* ---- assoc_data.c: data transfer as the rest of the core sees it ---- */
/* A fresh TCB (up or restarted): reset send and receive state. */
void core_data_reset(struct sctp_core *a);
/* DATA or I-DATA in a state that accepts it; 0 or -1 (aborted). */
int core_data_input(struct sctp_core *a, const struct sctp_chunk *c);
void core_sack_input(struct sctp_core *a, const struct sctp_chunk *c);
/* A SHUTDOWN's cumulative TSN ack (acts as a SACK without gaps). */
void core_data_shutdown_ack_point(struct sctp_core *a, uint32_t cum_tsn);
/* 1 while data of ours is queued or unacknowledged. */
int core_data_outstanding(const struct sctp_core *a);
/* The cumulative TSN we have received (for SHUTDOWN). */
uint32_t core_data_cum_tsn(const struct sctp_core *a);
/* After a packet: send the SACK it calls for, if any. */
void core_data_after_packet(struct sctp_core *a);
void core_data_batch_begin(struct sctp_core *a);
void core_data_batch_end(struct sctp_core *a);
/* Allocates the data state (sctp_core_new); frees it (free, down). */
int core_data_new(struct sctp_core *a);
void core_data_free(struct sctp_core *a);
/* Drops every queue (down); the association may connect again. */
void core_data_clear(struct sctp_core *a);
void core_data_info(const struct sctp_core *a, struct sctp_core_info *o);
/* Timers. */
void core_t3_expired(struct sctp_core *a);
void core_sack_timer(struct sctp_core *a);
void core_rack_timer(struct sctp_core *a);
void core_tlp_timer(struct sctp_core *a);
void core_pace_timer(struct sctp_core *a);

#endif
