/*
 * SCTP layer: one struct sctp_assoc is one association to one peer over
 * one wire link, run by one of two engines chosen per process
 * (tuning.engine): usrsctp in no-threads mode (sctp_usrsctp.c, the
 * default) or the native core of assoc.h (sctp_native.c).  Both are driven
 * by the libevent loop; callbacks come from the loop, never from inside an
 * engine call, and close is always deferred.  See docs/internals.md and
 * docs/sctp-engine.md.
 */
#ifndef SCTPT_SCTP_SCTP_H
#define SCTPT_SCTP_SCTP_H

#include <stddef.h>
#include <stdint.h>

#include "wire/wire.h"

struct event_base;
struct wire_link;
struct sctp_assoc;

enum sctp_engine {
	SCTP_ENGINE_USRSCTP = 0,   /* usrsctp in no-threads mode */
	SCTP_ENGINE_NATIVE,        /* src/sctp/assoc.h: the default */
};

struct sctp_tuning {
	enum sctp_engine engine;
	unsigned streams;          /* in and out streams requested (1..65535) */
	unsigned sndbuf, rcvbuf;   /* socket buffers in bytes */
	unsigned rto_min_ms, rto_max_ms, rto_initial_ms; /* rto_min 0: the engine's */
	unsigned sack_delay_ms;    /* delayed SACK timer */
	unsigned hb_interval_ms;   /* heartbeat interval on idle paths */
	unsigned max_retrans;      /* association failure threshold */
	unsigned init_attempts;    /* INIT retransmissions before giving up */
	unsigned setup_timeout_ms; /* accepted association must be up by then */
	int cc;                    /* congestion controller (native engine):
	                            * sctp_cc_parse(); default bbr */
	uint64_t bandwidth;        /* bytes/s: the fixed-rate controller
	                            * (--bandwidth), overrides cc; 0: off */
};

/* Fill t with the defaults documented in docs/internals.md. */
void sctp_tuning_defaults(struct sctp_tuning *t);
/* "native" or "usrsctp" to *out: 0, or -1 for anything else. */
int sctp_engine_parse(const char *s, enum sctp_engine *out);
const char *sctp_engine_name(enum sctp_engine e);
/* "newreno", "cubic" or "bbr" to *out (a value for sctp_tuning.cc): 0,
 * or -1 for anything else. */
int sctp_cc_parse(const char *s, int *out);
/* The name of what t runs: "newreno", "cubic", "bbr", "fixed" (native
 * engine), or NULL for usrsctp (its own NewReno, not configurable). */
const char *sctp_cc_name(const struct sctp_tuning *t);

/* Initialise the engine t->engine once for this process.  0 or -1. */
int sctp_global_init(struct event_base *base, const struct sctp_tuning *t);
/* Tear the engine down after every association is freed (best effort). */
void sctp_global_shutdown(void);

struct sctp_assoc_cbs {
	/* The association is established; streams usable: 1..n-1. */
	void (*up)(struct sctp_assoc *a, void *arg);
	/* It failed or ended; no more callbacks follow.  Owner frees it. */
	void (*down)(struct sctp_assoc *a, const char *why, void *arg);
	/* (Part of) a message; eor is set on its last part. */
	void (*message)(struct sctp_assoc *a, uint16_t sid, uint32_t ppid,
	                const uint8_t *data, size_t len, int eor, void *arg);
	/* Send space became available after sctp_assoc_send said SCTP_AGAIN. */
	void (*writable)(struct sctp_assoc *a, void *arg);
};

/* Start an association over link (client).  Takes ownership of link. */
struct sctp_assoc *sctp_assoc_connect(struct wire_link *link,
                                      const struct sctp_assoc_cbs *cbs, void *arg);
/* Accept the association a new peer is starting (server).  Takes link. */
struct sctp_assoc *sctp_assoc_accept(struct wire_link *link,
                                     const struct sctp_assoc_cbs *cbs, void *arg);

/* Release a link that will not get an association (error paths above). */
void sctp_link_discard(struct wire_link *link);

#define SCTP_AGAIN (-2)
/*
 * Send one whole message on stream sid.  Returns 0, SCTP_AGAIN when the
 * send buffer is full (the writable callback follows), or -1 on error.
 */
int sctp_assoc_send(struct sctp_assoc *a, uint16_t sid, uint32_t ppid,
                    const void *data, size_t len);
/*
 * The same, delivered unordered (the U bit): the peer hands it up as soon
 * as it is complete, never held behind a lost message of the stream.  For
 * datagrams (the UDP relay).  Neither engine sends it partially reliable:
 * the native engine has no PR-SCTP (RFC 3758), and usrsctp runs with it
 * disabled (unused features are attack surface; a native peer could not
 * use it anyway).  The mux drops stale datagrams itself (docs/udp-relay.md).
 */
int sctp_assoc_send_unordered(struct sctp_assoc *a, uint16_t sid, uint32_t ppid,
                              const void *data, size_t len);
/* Usable stream count (negotiated), 0 before the association is up. */
unsigned sctp_assoc_streams(const struct sctp_assoc *a);

/*
 * What the engine can tell about an association (the metrics endpoint).
 * have says which fields are set: the native engine fills all of them
 * (min_rtt, btl_bw and delivery_rate once it has a value: see below);
 * usrsctp's API (SCTP_STATUS) gives srtt, rto, cwnd and the peer's window.
 * A field whose bit is clear is unknown, not zero.
 */
#define SCTP_STATS_RTT      0x01   /* srtt_ms, rto_ms */
#define SCTP_STATS_RTTVAR   0x02
#define SCTP_STATS_CWND     0x04
#define SCTP_STATS_FLIGHT   0x08   /* flight, ssthresh */
#define SCTP_STATS_RWND     0x10   /* peer_rwnd */
#define SCTP_STATS_RTX      0x20   /* retransmissions */
#define SCTP_STATS_RTX_KIND 0x40   /* fast_retransmissions, t3_expiries, tlp_probes */
#define SCTP_STATS_PKTS     0x80   /* packets_sent */
#define SCTP_STATS_MIN_RTT  0x100  /* min_rtt_ms: after the first RTT sample */
#define SCTP_STATS_RACK     0x200  /* rack_losses, tlp_losses, reo_wnd_ms */
#define SCTP_STATS_SPURIOUS 0x400  /* spurious_rtx, spurious_rto, undos */
#define SCTP_STATS_SACKS    0x800  /* sacks_sent, sacks_received */
#define SCTP_STATS_RCV      0x1000 /* dup_tsns, data_dropped */
#define SCTP_STATS_PACING   0x2000 /* pacing_rate (0: not paced), pace_waits */
#define SCTP_STATS_BTL_BW   0x4000 /* btl_bw: bbr only, once it has one */
#define SCTP_STATS_DELIVERY 0x8000 /* delivery_rate: after the first sample */

struct sctp_assoc_stats {
	unsigned have;
	uint32_t srtt_ms, rttvar_ms, rto_ms;
	uint32_t cwnd, ssthresh, flight, peer_rwnd;
	uint64_t retransmissions, fast_retransmissions, t3_expiries, tlp_probes;
	uint64_t packets_sent;
	/* Loss recovery: the smallest recent RTT and RACK's reordering
	 * window now; chunks RACK declared lost, tail-loss probes that
	 * repaired a loss. */
	uint32_t min_rtt_ms, reo_wnd_ms;
	uint64_t rack_losses, tlp_losses;
	/* Retransmissions and T3 expiries later proven needless, and the
	 * congestion responses undone for them. */
	uint64_t spurious_rtx, spurious_rto, undos;
	uint64_t sacks_sent, sacks_received;
	uint64_t dup_tsns;              /* duplicate DATA received */
	uint64_t data_dropped;          /* DATA over our window or TSN map */
	uint64_t pacing_rate, btl_bw, delivery_rate;   /* bytes/s */
	uint64_t pace_waits;            /* flushes the pacer cut short */
	/* The controller running now ("bbr", "cubic", ...; "carrier" over
	 * the TCP carrier), a static string; NULL: not known. */
	const char *cc;
	int have_wire;                  /* the link's numbers below are set */
	struct wire_link_stats wire;
};
/* Fill st (have 0 when the engine knows nothing yet).  NULL a is fine. */
void sctp_assoc_get_stats(const struct sctp_assoc *a, struct sctp_assoc_stats *st);

/* Abort (if still open) and free, deferred to the loop.  NULL is fine. */
void sctp_assoc_free(struct sctp_assoc *a);
/* The carrier path under the association changed: probe it at once. */
void sctp_assoc_path_changed(struct sctp_assoc *a);

#endif
