/*
 * Inside the data-transfer half of the association core: the send
 * queues and scheduler (assoc_send.c), the outstanding-TSN ring and
 * retransmission (assoc_rtx.c), the TSN map and reassembly
 * (assoc_recv.c), and SACK in both directions (assoc_sack.c).
 * assoc_data.c holds the lifecycle, the hooks the rest of the core
 * calls and the API.  Included only from src/sctp/.
 */
#ifndef SCTPT_SCTP_ASSOC_DATA_INTERNAL_H
#define SCTPT_SCTP_ASSOC_DATA_INTERNAL_H

#include "sctp/assoc_internal.h"

/* Hard caps.  Every structure a peer can fill is bounded by one of these. */
#define CORE_TSN_MAP 4096          /* received TSNs tracked above cum (power of 2) */
#define CORE_OUT_RING 4096         /* TSNs outstanding at once (power of 2) */
#define CORE_SACK_GAPS 64          /* gap blocks we report */
#define CORE_SACK_DUPS 16          /* duplicate TSNs we report */
/*
 * Inside a receive batch (sctp_core_batch_begin) a SACK goes at the
 * latest after this many packets with data: half the SACKs of one per
 * two packets, while a sender's slow start, which grows by at most one
 * MTU per SACK, still gets one per few packets of a large GRO batch or
 * TCP read.  8 saved no measurable CPU more and slowed slow start more
 * (docs/sctp-engine.md, "Measured").
 */
#define CORE_BATCH_SACK_MAX 4
#define CORE_SNDBUF_DEFAULT (1024 * 1024)
#define CORE_SACK_DELAY_MS 20
#define CORE_MAX_BURST 4           /* new-data packets per flush beyond cwnd */

/* Serial number arithmetic (RFC 1982) on 32-bit TSNs. */
static inline int tsn_lt(uint32_t x, uint32_t y)
{
	return (int32_t)(x - y) < 0;
}

static inline int tsn_le(uint32_t x, uint32_t y)
{
	return (int32_t)(x - y) <= 0;
}

/* A message waiting on its stream's queue, fragmented as it is sent. */
struct core_msg {
	struct core_msg *next;
	uint32_t ppid;
	uint32_t mid;              /* SSN (DATA) or MID (I-DATA), set at B */
	uint32_t fsn;              /* next fragment (I-DATA) */
	size_t len;
	size_t off;                /* bytes already cut into chunks */
	int unordered;
	uint8_t data[];
};

struct core_ostream {
	struct core_msg *head, *tail;
	struct core_ostream *sched_next; /* ring of streams with data */
	int scheduled;
	uint16_t sid;
	uint16_t next_ssn;
	uint32_t next_mid, next_umid;
};

/* Chunk states on the outstanding ring. */
#define CORE_CK_INFLIGHT 0x01      /* counted in flight */
#define CORE_CK_GAP 0x02           /* gap-acked */
#define CORE_CK_RTX 0x04           /* marked for retransmission */
#define CORE_CK_FAST 0x08          /* fast-retransmitted once already */
#define CORE_CK_T3 0x10            /* marked by T3 (spurious RTO check) */
#define CORE_CK_LOST 0x20          /* declared lost at least once */

/* One DATA / I-DATA chunk we sent and the peer has not cum-acked. */
struct core_chunk {
	uint32_t tsn;
	uint32_t ppid;
	uint32_t mid;
	uint32_t fsn;
	uint16_t sid;
	uint8_t flags;             /* B, E, U */
	uint8_t state;             /* CORE_CK_* */
	uint8_t misses;
	uint8_t tx;                /* transmissions */
	uint32_t sack_seq;         /* last SACK that covered it */
	uint64_t sent_at;          /* last transmission */
	uint64_t first_sent_at;    /* first transmission */
	/* Delivery-rate state when last sent (assoc_sack.c). */
	uint64_t rs_delivered;
	uint64_t rs_delivered_at;
	uint64_t rs_first_sent;
	int rs_app_limited;
	size_t len;
	uint8_t data[];
};

/* A received chunk waiting for its message to complete or its turn. */
struct core_rchunk {
	struct core_rchunk *next;
	uint32_t tsn;
	uint32_t ppid;
	uint32_t mid;              /* SSN (DATA) or MID */
	uint32_t fsn;
	uint8_t flags;
	size_t len;
	uint8_t data[];
};

struct core_istream {
	struct core_rchunk *ordered;    /* sorted: TSN (DATA), MID/FSN (I-DATA) */
	struct core_rchunk *unordered;
	uint16_t next_ssn;
	uint32_t next_mid;
};

struct core_data {
	/* Send side. */
	struct core_ostream **os;       /* out_streams, made on first use */
	uint16_t n_os;
	struct core_ostream *sched;     /* next stream to serve */
	struct core_ostream *sticky;    /* DATA: stream in the middle of a message */
	size_t sndbuf_used;
	size_t inprog;             /* I-DATA: bytes of messages begun, unfinished */
	int want_writable;

	/* Outstanding: ring indexed by TSN, una .. next_tsn - 1. */
	struct core_chunk **ring;
	uint32_t una;              /* lowest TSN not cum-acked */
	uint32_t flight;           /* bytes in flight */
	unsigned n_rtx;            /* chunks marked for retransmission */
	uint32_t peer_rwnd_raw;    /* a_rwnd of the latest SACK */
	uint32_t sack_seq;
	int in_recovery;
	uint32_t recover;          /* fast recovery exit point */
	uint32_t highest_sent;
	int t3_fired;              /* one T3 packet goes out ignoring cwnd */

	/* Receive side. */
	struct core_istream **is;
	uint16_t n_is;
	uint32_t cum;              /* peer TSNs received in order */
	uint32_t highest;          /* highest peer TSN received */
	uint8_t map[CORE_TSN_MAP / 8];  /* bit t % MAP for cum < t <= cum + MAP */
	size_t rcv_queued;         /* payload bytes in reassembly */
	size_t rcv_overhead;       /* their bookkeeping, charged apart */
	size_t rcv_unconsumed;     /* delivered, not consumed */
	uint32_t dups[CORE_SACK_DUPS];
	unsigned ndups;

	/* SACK we owe. */
	int sack_needed;           /* data arrived since the last SACK */
	int sack_now;              /* send it with the next flush */
	unsigned pkts_unacked;     /* packets with data since the last SACK */
	int pkt_data;              /* the packet being processed had data */
	int in_batch;              /* sctp_core_batch_begin(): flush at its end */
	int batch_dirty;           /* a packet's flush waits for the batch end */
	uint32_t rwnd_advertised;

	/* Loss recovery (assoc_rack.c). */
	struct {
		uint64_t xmit_ts;  /* send time of the latest-sent chunk delivered */
		uint32_t end_tsn;  /* its TSN (ties in the ms clock) */
		uint32_t rtt;      /* its RTT */
		int have;
		uint32_t min_rtt;  /* UINT32_MAX before a sample */
		uint64_t min_rtt_at;    /* when it was taken */
		int min_rtt_stale;      /* from another path: the next sample replaces it */
		uint32_t fack;     /* highest TSN delivered (cum or gap) */
		int have_fack;
		int reordering_seen;
		unsigned reo_mult;      /* reo_wnd = mult * min_rtt / 4 */
		unsigned reo_persist;   /* episodes until mult goes back to 1 */
		uint64_t reo_incr_at;   /* once per round trip */
	} rack;
	struct {
		int out;           /* a probe is unanswered */
		int is_rtx;        /* it resent tsn (else new data up to tsn) */
		uint32_t tsn;
		uint64_t sent_at;
		int want_new;      /* flush: one new chunk beyond cwnd */
		int restart;       /* data went out or was acked: re-arm PTO */
	} tlp;
	/* One loss episode's congestion response, until proven needless. */
	struct {
		int active;
		int broken;        /* more retransmissions than we track */
		uint32_t cwnd, ssthresh;        /* before the reduction */
		uint32_t recover;  /* the episode lasts until cum passes it */
		uint32_t tsn[32];  /* retransmitted, not yet reported duplicate */
		unsigned n;
		unsigned sent;     /* retransmissions in the episode */
		int from_rto;      /* the episode began with a T3 expiry */
	} undo;
	/* Delivery rate: bytes delivered (cum or gap) and when. */
	struct {
		uint64_t delivered;
		uint64_t delivered_at;
		uint64_t first_sent;       /* send time opening the interval */
		uint64_t app_limited;      /* delivered mark; 0: not limited */
		/* The sample a SACK builds: from its newest-sent chunk. */
		uint64_t prior_delivered, prior_at, send_elapsed;
		uint64_t epoch;         /* path switch: no rate from before it */
		int have, sample_app_limited;
	} rs;
	/* Pacer: a token bucket in bytes, refilled at cc.pacing_rate. */
	int64_t pace_tokens;
	uint64_t pace_at;          /* last refill */
	int pace_on;               /* pace_at is valid */
	int spurious_rto;          /* set by the SACK walk */
	int rtx_first;             /* the earliest outstanding TSN was marked */

	/* Counters for sctp_core_get_info(). */
	unsigned retransmits, fast_retransmits, t3_expiries;
	unsigned dup_tsns, rcv_dropped, sacks_sent, sacks_received, packets_sent;
	unsigned lost_rack, tlp_probes, tlp_losses, spurious_rtx;
	unsigned spurious_rtos, undos, pace_waits;
};

/* ---- assoc_send.c ---- */
int core_send_queue(struct sctp_core *a, uint16_t sid, uint32_t ppid,
                    int unordered, const void *buf, size_t len);
/* Sends what the windows allow (SACK first, retransmissions, new data). */
void core_send_flush(struct sctp_core *a);
void core_send_free_streams(struct core_data *d);
/* Payload bytes per chunk so that one chunk fits a packet alone. */
size_t core_send_frag_size(const struct sctp_core *a);
/* Bytes left the send buffer: maybe WRITABLE. */
void core_send_released(struct sctp_core *a, size_t n);

/* ---- assoc_rtx.c ---- */
static inline struct core_chunk *core_ring_at(const struct core_data *d,
                                              uint32_t tsn)
{
	return d->ring[tsn & (CORE_OUT_RING - 1)];
}
/* After the cum ack or the set of outstanding TSNs changed. */
void core_rtx_t3_update(struct sctp_core *a, int cum_advanced);
void core_rtx_mark(struct sctp_core *a, struct core_chunk *ck);
void core_rtx_free_ring(struct sctp_core *a);

/* ---- assoc_rack.c: loss detection, probes, undo ---- */
enum core_loss_by {
	CORE_LOSS_RACK,
	CORE_LOSS_DUPTHRESH,
};
/* A chunk newly acknowledged (cum or gap), before it is freed. */
void core_rack_on_ack(struct sctp_core *a, struct core_chunk *ck);
/* When the transmission this ack is for was sent, or UINT64_MAX if that
 * is ambiguous (a resent chunk whose ack may be either copy's). */
uint64_t core_rack_acked_send(const struct sctp_core *a,
                              const struct core_chunk *ck);
/* The SACK's duplicate TSN reports: proof of needless retransmissions. */
void core_rack_dups(struct sctp_core *a, const struct sctp_sack *s);
/* After a SACK's walk: marks lost what RACK says is, arms its timer. */
void core_rack_detect(struct sctp_core *a);
/* A chunk is lost: mark it, enter recovery if not in it. */
void core_loss_mark(struct sctp_core *a, struct core_chunk *ck,
                    enum core_loss_by by);
/* A congestion response begins, before cc reduces (rto: a T3 expiry). */
void core_loss_episode(struct sctp_core *a, int rto);
/* A chunk goes out again (counts against the episode's undo). */
void core_loss_note_rtx(struct sctp_core *a, const struct core_chunk *ck);
/* After a SACK was applied: spurious RTO, TLP outcome, episode end. */
void core_rack_after_sack(struct sctp_core *a, const struct sctp_sack *s);
/* After a flush: (re)arm the probe timeout; restart if data went out
 * or was acked. */
void core_tlp_update(struct sctp_core *a, int restart);
uint32_t core_rack_reo_wnd(const struct sctp_core *a);

/* ---- assoc_recv.c ---- */
/* 0, or -1 if the association was aborted. */
int core_recv_chunk(struct sctp_core *a, const struct sctp_data *dc, int idata);
void core_recv_free_streams(struct core_data *d);
uint32_t core_recv_rwnd(const struct sctp_core *a);
int core_recv_map_has(const struct core_data *d, uint32_t tsn);

/* ---- assoc_sack.c ---- */
/* Appends our SACK to b; 0 or a builder error. */
int core_sack_build(struct sctp_core *a, struct sctp_builder *b);
void core_sack_process(struct sctp_core *a, const struct sctp_sack *s);
/* The peer's cumulative ack without gaps (a SHUTDOWN). */
void core_sack_cum_only(struct sctp_core *a, uint32_t cum);

#endif
