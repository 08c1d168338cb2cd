/*
 * The native engine's association core: one SCTP association (RFC 9260)
 * as a pure state machine.
 *
 * No sockets, threads, globals or clock reads.  The caller hands in
 * received packets, API calls and the current monotonic time in
 * milliseconds; the core hands back packets through env->output, events
 * through env->event, and one deadline (sctp_core_next_deadline) at which
 * the caller calls sctp_core_timeout().  Randomness (tags, initial TSNs,
 * heartbeat nonces) comes from env->random, so a test with a seeded source
 * replays exactly.
 *
 * It does the handshake (INIT, INIT-ACK, COOKIE-ECHO, COOKIE-ACK and the
 * collision and restart cases of §5.2), teardown (SHUTDOWN, ABORT),
 * HEARTBEAT, the unknown-chunk rules, and data transfer: DATA and I-DATA
 * with fragmentation and reassembly, SACK, loss recovery (RACK-TLP
 * adapted to TSNs, the 3-miss rule as a fallback, T3-rtx, spurious
 * retransmission detection and undo) and NewReno congestion control.  sctp_native.c drives it behind sctp.h
 * (--sctp-engine native); see docs/sctp-engine.md.
 *
 * Callbacks must not call back into the same association, and must not
 * free it: queue what they get and act after the call returns.
 */
#ifndef SCTPT_SCTP_ASSOC_H
#define SCTPT_SCTP_ASSOC_H

#include <stddef.h>
#include <stdint.h>

/* sctp_core_next_deadline() when no timer runs. */
#define SCTP_CORE_NO_DEADLINE UINT64_MAX

enum sctp_core_state {
	SCTP_S_CLOSED = 0,
	SCTP_S_COOKIE_WAIT,
	SCTP_S_COOKIE_ECHOED,
	SCTP_S_ESTABLISHED,
	SCTP_S_SHUTDOWN_PENDING,
	SCTP_S_SHUTDOWN_SENT,
	SCTP_S_SHUTDOWN_RECEIVED,
	SCTP_S_SHUTDOWN_ACK_SENT,
};

const char *sctp_core_state_str(enum sctp_core_state s);

/* Why an association went down. */
enum sctp_down_reason {
	SCTP_DOWN_SHUTDOWN = 1,    /* graceful, either side started it */
	SCTP_DOWN_PEER_ABORT,      /* ABORT received; cause in the event */
	SCTP_DOWN_LOCAL_ABORT,     /* sctp_core_abort() */
	SCTP_DOWN_INIT_TIMEOUT,    /* Max.Init.Retransmits exceeded (T1) */
	SCTP_DOWN_PEER_UNREACHABLE,/* Association.Max.Retrans (T2, heartbeats) */
	SCTP_DOWN_PROTOCOL,        /* we aborted a peer that broke the rules */
	SCTP_DOWN_CLOSED,          /* shutdown() before anything was sent */
};

enum sctp_event_type {
	SCTP_EV_UP = 1,            /* ESTABLISHED (streams and I-DATA below) */
	SCTP_EV_DOWN,              /* back to CLOSED: reason, cause */
	SCTP_EV_RESTART,           /* the peer restarted; new tags, still up */
	SCTP_EV_HEARTBEAT_ACK,     /* a probe came back: probe_id, rtt_ms */
	SCTP_EV_PEER_ERROR,        /* an ERROR chunk: cause = first cause code */
	SCTP_EV_SHUTDOWN_RECEIVED, /* the peer closes its side */
	SCTP_EV_DATA,              /* a whole message: sid, ppid, data, len */
	SCTP_EV_WRITABLE,          /* send buffer space freed after a
	                            * SCTP_CORE_WOULD_BLOCK */
};

struct sctp_core_event {
	enum sctp_event_type type;
	enum sctp_down_reason reason;   /* DOWN */
	uint16_t cause;                 /* DOWN (peer abort), PEER_ERROR */
	uint16_t out_streams;           /* UP, RESTART */
	uint16_t in_streams;            /* UP, RESTART */
	int idata;                      /* UP, RESTART: I-DATA negotiated */
	uint32_t probe_id;              /* HEARTBEAT_ACK */
	uint32_t rtt_ms;                /* HEARTBEAT_ACK */
	/* DATA: valid during the callback only.  The len bytes stay counted
	 * against our receive window until sctp_core_consume(). */
	uint16_t sid;
	uint32_t ppid;
	int unordered;
	const uint8_t *data;
	size_t len;
};

struct sctp_core_config {
	uint16_t local_port;            /* both ports non-zero */
	uint16_t remote_port;
	uint16_t os;                    /* outbound streams we ask for */
	uint16_t mis;                   /* inbound streams we accept */
	uint32_t a_rwnd;                /* advertised receiver window */
	int idata;                      /* offer I-DATA (RFC 8260) */
	int listen;                     /* in CLOSED, answer an INIT */
	uint32_t rto_initial_ms;        /* RFC 9260 §16 defaults when 0 */
	uint32_t rto_min_ms;
	uint32_t rto_max_ms;
	unsigned max_init_retrans;      /* 0: 8 */
	unsigned max_retrans;           /* Association.Max.Retrans; 0: 10 */
	/* The peer is declared unreachable only once Max.Retrans is passed
	 * AND this long has gone by since the first unanswered timer of the
	 * run (T3, heartbeat, T2); 0: no minimum, RFC 9260 as written. */
	uint32_t fail_min_ms;
	uint32_t cookie_life_ms;        /* 0: 60 s */
	uint32_t hb_interval_ms;        /* periodic heartbeats; 0: none */
	uint16_t mtu;                   /* largest packet we send; 0: 1200 */
	int no_crc;                     /* neither write nor check CRC32c */
	uint32_t sndbuf;                /* bytes queued or unacked; 0: 1 MiB */
	uint32_t sack_delay_ms;         /* delayed SACK; 0: 20 ms */
	unsigned sack_freq;             /* SACK every Nth packet; 0: 2 */
	/* How long the peer may hold a SACK (its delayed-ack timer): added
	 * to the RTO and to a lone packet's probe timeout.  0: sack_delay_ms
	 * (both ends of sctpt run the same tuning). */
	uint32_t peer_sack_delay_ms;
	/* Congestion controller (enum sctp_cc_algo; 0: NewReno) and, for
	 * SCTP_CC_FIXED, the rate in bytes per second. */
	int cc;
	uint64_t fixed_rate;
};

/* Congestion controllers; docs/sctp-engine.md "Congestion control". */
enum sctp_cc_algo {
	SCTP_CC_NEWRENO = 0,
	SCTP_CC_CUBIC,
	SCTP_CC_BBR,
	SCTP_CC_FIXED,             /* --bandwidth: paced, ignores loss */
};

/* "newreno", "cubic", "bbr", "fixed"; "?" for anything else. */
const char *sctp_core_cc_name(int algo);

struct sctp_core_env {
	void *arg;
	/* Fills p with n random bytes. */
	void (*random)(void *arg, uint8_t *p, size_t n);
	/* A packet to send; the bytes are valid during the call only. */
	void (*output)(void *arg, const uint8_t *pkt, size_t n);
	/* Something happened; may be NULL. */
	void (*event)(void *arg, const struct sctp_core_event *ev);
	/* Key for the State Cookie's HMAC-SHA256 (copied, wiped on free). */
	const uint8_t *secret;
	size_t secret_len;
};

struct sctp_core;

/* A new association in CLOSED, or NULL (bad config, no memory). */
struct sctp_core *sctp_core_new(const struct sctp_core_config *cfg,
                                  const struct sctp_core_env *env);
/* Frees; NULL is fine.  Sends nothing: abort first if the peer should know. */
void sctp_core_free(struct sctp_core *a);

/* Handles one received SCTP packet.  Never fails: bad input is dropped or
 * answered as RFC 9260 asks. */
void sctp_core_input(struct sctp_core *a, const uint8_t *pkt, size_t n,
                      uint64_t now_ms);
/* Runs every timer due at now_ms. */
/*
 * A receive batch: packets given to sctp_core_input() between these two
 * calls share one SACK decision and one flush, at sctp_core_batch_end()
 * (a gap or a duplicate is still acknowledged at once).  Call batch_end
 * soon after: until then the SACK owed and the data the SACKs released
 * wait.
 */
void sctp_core_batch_begin(struct sctp_core *a);
void sctp_core_batch_end(struct sctp_core *a, uint64_t now_ms);
void sctp_core_timeout(struct sctp_core *a, uint64_t now_ms);
/* When sctp_core_timeout() must next run, or SCTP_CORE_NO_DEADLINE. */
uint64_t sctp_core_next_deadline(const struct sctp_core *a);

/* Starts the handshake (sends INIT).  0, or -1 if not CLOSED. */
int sctp_core_connect(struct sctp_core *a, uint64_t now_ms);
/* Graceful close once nothing is outstanding.  0, or -1 if already closing
 * or closed. */
int sctp_core_shutdown(struct sctp_core *a, uint64_t now_ms);
/* Sends ABORT (User-Initiated Abort) if the peer knows us; goes CLOSED. */
void sctp_core_abort(struct sctp_core *a, uint64_t now_ms);
/* Sends a HEARTBEAT now (for the wire layer's path manager); its ACK comes
 * back as SCTP_EV_HEARTBEAT_ACK with *probe_id.  0, or -1 if not up. */
int sctp_core_probe(struct sctp_core *a, uint64_t now_ms, uint32_t *probe_id);

enum sctp_core_state sctp_core_state(const struct sctp_core *a);

/* sctp_core_send(): the send buffer has no room; wait for WRITABLE. */
#define SCTP_CORE_WOULD_BLOCK (-2)

/*
 * Queues one message on stream sid (copied).  0; SCTP_CORE_WOULD_BLOCK
 * when the send buffer (cfg.sndbuf) cannot take len more bytes; -1 if not
 * ESTABLISHED, sid is not an outbound stream, len is 0 or over the buffer.
 */
int sctp_core_send(struct sctp_core *a, uint16_t sid, uint32_t ppid,
                   int unordered, const void *buf, size_t len, uint64_t now_ms);
/* The caller is done with n delivered bytes: they leave the receive
 * window (a window update may be sent). */
void sctp_core_consume(struct sctp_core *a, size_t n, uint64_t now_ms);

/* What a test or a status page may read. */
struct sctp_core_info {
	uint32_t local_vtag;            /* the tag the peer writes */
	uint32_t peer_vtag;             /* the tag we write */
	uint16_t out_streams;
	uint16_t in_streams;
	int idata;
	uint32_t peer_rwnd;             /* its window now, less our flight */
	uint32_t rto_ms;
	unsigned init_retrans;          /* T1 expiries in this handshake */
	unsigned error_count;           /* T2 and heartbeat failures */
	unsigned dropped;               /* packets dropped (malformed, tag) */
	unsigned data_chunks;           /* DATA / I-DATA received */
	/* Data transfer. */
	uint32_t cwnd, ssthresh, flight;
	uint32_t outstanding_tsns;      /* sent, not cumulatively acked */
	uint32_t next_tsn;              /* the TSN our next new chunk gets */
	int t3_running;
	size_t sndbuf_used;             /* queued + unacked bytes */
	size_t rcv_buffered;            /* reassembly + delivered unconsumed */
	size_t rcv_overhead;            /* bookkeeping of the reassembly */
	uint32_t rwnd;                  /* what we advertise now */
	unsigned retransmits;           /* chunks sent again */
	unsigned fast_retransmits;       /* lost by the 3-miss fallback */
	unsigned t3_expiries;
	unsigned dup_tsns;              /* duplicates received */
	unsigned rcv_dropped;           /* DATA over the window or TSN map */
	unsigned sacks_sent;
	unsigned sacks_received;        /* SACK chunks taken (stale ones too) */
	unsigned packets_sent;
	/* Loss recovery (docs/sctp-engine.md, "Loss recovery"). */
	uint32_t srtt_ms, rttvar_ms;
	uint32_t min_rtt_ms;            /* UINT32_MAX before a sample */
	uint32_t reo_wnd_ms;            /* RACK reordering window now */
	unsigned lost_rack;             /* chunks RACK declared lost */
	unsigned tlp_probes;            /* tail-loss probes sent */
	unsigned tlp_losses;            /* probes that repaired a loss */
	unsigned spurious_rtx;          /* retransmissions proven needless */
	unsigned spurious_rto;          /* T3 expiries proven needless */
	unsigned undos;                 /* congestion responses undone */
	int reordering_seen;
	/* Congestion control and pacing. */
	const char *cc_name;
	uint64_t pacing_rate;           /* bytes/s; 0: not paced */
	uint64_t btl_bw;                /* bbr: bottleneck estimate, bytes/s */
	uint64_t delivery_rate;         /* latest sample, bytes/s */
	unsigned pace_waits;            /* flushes the pacer cut short */
	int reliable;                   /* sctp_core_set_reliable() in force */
};

void sctp_core_get_info(const struct sctp_core *a, struct sctp_core_info *out);

/*
 * The path under the association is (reliable != 0) or is no longer an
 * in-order, loss-free carrier (the TCP carrier): there the carrier's own
 * congestion control and retransmission do the work, so the core sends
 * up to a fixed window of wnd bytes (the carrier's output cap, less a
 * margin; also bounded by the peer's rwnd), declares a chunk lost only
 * on the SACK's gap evidence (a frame the carrier dropped), sends no
 * tail-loss probes, keeps T3 as a safety net with a floor of
 * SCTP_CORE_RELIABLE_RTO_MIN_MS, and SACKs less often.  Back on an
 * unreliable path the configured controller starts afresh (slow start).
 * docs/sctp-engine.md, "Over a reliable carrier".  No-op if unchanged.
 */
#define SCTP_CORE_RELIABLE_RTO_MIN_MS 1000
void sctp_core_set_reliable(struct sctp_core *a, int reliable, uint32_t wnd,
                            uint64_t now_ms);

#endif
