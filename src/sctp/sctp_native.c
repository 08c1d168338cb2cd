/*
 * The native engine behind sctp.h: the pure association core of assoc.h
 * driven by the libevent loop.
 *
 * Packets from the wire link go into sctp_core_input() with the monotonic
 * clock; packets the core emits go straight out through wire_link_send().
 * Each association has one libevent timer, set to the core's next
 * deadline after every call into the core (no polling tick).
 *
 * The core must not be re-entered from its own callbacks, while mux sends
 * from inside its message callback.  So the core's events are queued (a
 * delivered message is copied) and handed to the owner after the core call
 * returns; then the message leaves the receive window (sctp_core_consume).
 */
#include "sctp/sctp.h"
#include "sctp/sctp_internal.h"

#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "crypto/crypto.h"
#include "sctp/assoc.h"
#include "util/clock.h"
#include "util/log.h"
#include "wire/wire.h"

/* The port pair usrsctp's glue uses: the two engines interoperate. */
#define NATIVE_SCTP_PORT 5000
/*
 * The RTO floor when --rto-min is not given.  The RTO itself is
 * SRTT + max(4 RTTVAR, 10 ms) + the peer's delayed-SACK time (assoc.c),
 * 30 ms at 0 ms RTT, and RACK-TLP finds most losses well before it; the
 * floor only covers scheduling stalls a ms-clock RTTVAR does not see (a
 * loaded 2-core host with crypto batches in the loop), and a spurious
 * RTO is detected and undone.  It was 200 ms while failure was a count
 * of T3 expiries: with 50 ms, eight came within ~2.6 s of a path cut and
 * ended the association before the wire layer's 2 s path timeout moved
 * it to the other path.  Failure now also takes NATIVE_FAIL_MIN_MS.
 * docs/sctp-engine.md, "Loss recovery" and "Failure detection".
 */
#define NATIVE_RTO_MIN_MS 50
/*
 * The peer is unreachable only after Max.Retrans unanswered timers AND
 * this long since the first of them: the wire layer's 2 s path timeout,
 * a TCP connect and handshake on the other path, and room for a loaded
 * host.
 */
#ifndef NATIVE_FAIL_MIN_MS
#define NATIVE_FAIL_MIN_MS 5000
#endif
#define SECRET_LEN 32
/*
 * Over a TCP carrier the core's window is this share of the carrier's
 * output cap: SCTP and framing headers (a few % of a full packet), SACKs
 * and window updates fit in the rest, so the carrier never drops a
 * frame for want of room.  docs/sctp-engine.md, "Over a reliable carrier".
 */
#define NATIVE_RELIABLE_WND(cap) ((cap) / 4 * 3)

struct nat_event {
	struct nat_event *next;
	enum sctp_event_type type;
	enum sctp_down_reason reason;
	uint16_t cause;
	uint16_t sid;
	uint32_t ppid;
	size_t len;
	uint8_t data[];
};

struct nat_assoc {
	struct sctp_assoc base;     /* first: sctp.c dispatches through it */
	struct sctp_core *core;
	struct wire_link *link;
	struct sctp_assoc_cbs cbs;
	void *arg;
	struct event *timer;        /* the core's next deadline */
	struct event *reap_ev;      /* deferred free */
	struct event *batch_ev;     /* end of a receive batch (after the carrier's read) */
	struct event *setup_timer;  /* accept: must be up by then */
	uint64_t armed;             /* deadline the timer is set to */
	struct nat_event *evq, **evq_tail;
	unsigned streams;
	int up, down, freeing, want_write, dispatching;
	int batching;               /* packets came in; batch_ev is active */
	int failed;                 /* a delivery was lost: abort */
	size_t reliable_cap;        /* what the core was last told (wire_link_reliable_cap) */
};

static struct {
	struct event_base *base;
	struct sctp_tuning tuning;
	uint8_t secret[SECRET_LEN];   /* State Cookie HMAC key, per process */
	int initialised;
} N;

static int nat_send(struct sctp_assoc *base, uint16_t sid, uint32_t ppid,
                    const void *data, size_t len, unsigned flags);
static unsigned nat_streams(const struct sctp_assoc *base);
static void nat_free(struct sctp_assoc *base);
static void nat_path_changed(struct sctp_assoc *base);
static void nat_get_stats(const struct sctp_assoc *base, struct sctp_assoc_stats *st);

static const struct sctp_engine_ops nat_ops = {
	.send = nat_send,
	.streams = nat_streams,
	.free = nat_free,
	.path_changed = nat_path_changed,
	.get_stats = nat_get_stats,
};

int native_glue_init(struct event_base *base, const struct sctp_tuning *t)
{
	if (N.initialised)
		return 0;
	N.base = base;
	N.tuning = *t;
	if (wc_random(N.secret, sizeof(N.secret)) < 0)
		return -1;
	N.initialised = 1;
	if (t->bandwidth)
		log_notice("sctp: native engine, congestion control fixed at %llu kbit/s",
		           (unsigned long long)(t->bandwidth * 8 / 1000));
	else
		log_notice("sctp: native engine, congestion control %s",
		           sctp_core_cc_name(t->cc));
	return 0;
}

void native_glue_shutdown(void)
{
	explicit_bzero(N.secret, sizeof(N.secret));
	memset(&N, 0, sizeof(N));
}

static void env_random(void *arg, uint8_t *p, size_t n)
{
	if (wc_random(p, n) < 0)
		abort();   /* no entropy: tags and TSNs would be guessable */
}

static void env_output(void *arg, const uint8_t *pkt, size_t n)
{
	struct nat_assoc *a = arg;

	if (a->link != NULL)
		(void)wire_link_send(a->link, pkt, n);   /* SCTP recovers a loss */
}

static void env_event(void *arg, const struct sctp_core_event *ev)
{
	struct nat_assoc *a = arg;
	struct nat_event *e;
	size_t len = ev->type == SCTP_EV_DATA ? ev->len : 0;

	if (ev->type == SCTP_EV_HEARTBEAT_ACK || ev->type == SCTP_EV_PEER_ERROR ||
	    ev->type == SCTP_EV_SHUTDOWN_RECEIVED)
		return;
	if (ev->type == SCTP_EV_UP) {
		a->streams = ev->out_streams < ev->in_streams ? ev->out_streams
		                                               : ev->in_streams;
	}
	e = malloc(sizeof(*e) + len);
	if (e == NULL) {
		log_err("sctp: out of memory queueing an event");
		if (ev->type == SCTP_EV_DATA)
			a->failed = 1;   /* a lost message would corrupt a stream */
		return;
	}
	e->next = NULL;
	e->type = ev->type;
	e->reason = ev->reason;
	e->cause = ev->cause;
	e->sid = ev->sid;
	e->ppid = ev->ppid;
	e->len = len;
	if (len > 0)
		memcpy(e->data, ev->data, len);
	*a->evq_tail = e;
	a->evq_tail = &e->next;
}

static const char *down_why(enum sctp_down_reason r)
{
	switch (r) {
	case SCTP_DOWN_SHUTDOWN:
		return "association shut down by peer";
	case SCTP_DOWN_PEER_ABORT:
		return "association aborted by peer";
	case SCTP_DOWN_LOCAL_ABORT:
		return "association aborted";
	case SCTP_DOWN_INIT_TIMEOUT:
		return "no answer from server";
	case SCTP_DOWN_PEER_UNREACHABLE:
		return "association lost (peer unreachable or aborted)";
	case SCTP_DOWN_PROTOCOL:
		return "association aborted: the peer broke the protocol";
	case SCTP_DOWN_CLOSED:
	default:
		return "association closed";
	}
}

static void assoc_down(struct nat_assoc *a, const char *why)
{
	if (a->down || a->freeing)
		return;
	a->down = 1;
	if (a->setup_timer != NULL)
		event_del(a->setup_timer);
	if (a->timer != NULL)
		event_del(a->timer);
	a->cbs.down(&a->base, why, a->arg);
}

/*
 * Set the one timer to the core's next deadline.  0, or -1 if it could not
 * be scheduled: without it no retransmission would ever fire, so the caller
 * ends the association.
 */
static int rearm(struct nat_assoc *a, uint64_t now)
{
	uint64_t d;
	struct timeval tv;

	if (a->down || a->freeing)
		return 0;
	d = sctp_core_next_deadline(a->core);
	if (d == a->armed)
		return 0;
	a->armed = d;
	if (d == SCTP_CORE_NO_DEADLINE) {
		event_del(a->timer);
		return 0;
	}
	d = d > now ? d - now : 0;
	tv.tv_sec = (time_t)(d / 1000);
	tv.tv_usec = (suseconds_t)(d % 1000) * 1000;
	if (event_add(a->timer, &tv) < 0) {
		a->armed = SCTP_CORE_NO_DEADLINE;
		return -1;
	}
	return 0;
}

/*
 * Hand queued events to the owner, outside any core call.  The owner may
 * send (re-entering the core, which may queue more) or free (deferred).
 */
static void dispatch(struct nat_assoc *a)
{
	uint64_t now = clock_now_ms();

	if (a->dispatching)
		return;   /* the outer loop picks up what this call queued */
	a->dispatching = 1;
	while (a->evq != NULL) {
		struct nat_event *e = a->evq;

		a->evq = e->next;
		if (a->evq == NULL)
			a->evq_tail = &a->evq;
		if (a->freeing || a->down) {
			free(e);
			continue;
		}
		switch (e->type) {
		case SCTP_EV_UP:
			if (!a->up) {
				a->up = 1;
				if (a->setup_timer != NULL)
					event_del(a->setup_timer);
				a->cbs.up(&a->base, a->arg);
			}
			break;
		case SCTP_EV_DOWN:
			assoc_down(a, down_why(e->reason));
			break;
		case SCTP_EV_RESTART:
			/* The peer restarted: its streams are gone. */
			assoc_down(a, "peer restarted the association");
			break;
		case SCTP_EV_DATA:
			a->cbs.message(&a->base, e->sid, e->ppid, e->data, e->len, 1, a->arg);
			if (!a->freeing && !a->down) {
				sctp_core_consume(a->core, e->len, now);
			}
			break;
		case SCTP_EV_WRITABLE:
			if (a->want_write && a->up) {
				a->want_write = 0;
				a->cbs.writable(&a->base, a->arg);
			}
			break;
		default:
			break;
		}
		free(e);
	}
	a->dispatching = 0;
	if (a->failed && !a->freeing && !a->down) {
		sctp_core_abort(a->core, now);
		assoc_down(a, "out of memory: association aborted");
	}
	if (!a->freeing && !a->down && sctp_core_state(a->core) == SCTP_S_CLOSED && a->up)
		assoc_down(a, "association closed");
	if (a->batching)
		return;   /* batch_cb's dispatch sets the timer once per batch */
	if (rearm(a, clock_now_ms()) < 0) {
		sctp_core_abort(a->core, clock_now_ms());
		assoc_down(a, "cannot schedule the association's timer: association aborted");
	}
}

/*
 * Tell the core whether the link's current path is a reliable carrier.
 * Asked before each call into the core: the wire layer may have moved
 * the link to another path (either end) since the last one.
 */
static void path_sync(struct nat_assoc *a, uint64_t now)
{
	size_t cap = wire_link_reliable_cap(a->link);

	if (cap == a->reliable_cap)
		return;
	a->reliable_cap = cap;
	/* A move while up is news (-v); the first path is not. */
	if (a->up)
		log_info("sctp: path is %s now", cap ? "a reliable carrier (TCP)" : "datagrams");
	else
		log_debug("sctp: path is %s now", cap ? "a reliable carrier (TCP)" : "datagrams");
	sctp_core_set_reliable(a->core, cap != 0,
	                       (uint32_t)NATIVE_RELIABLE_WND(cap), now);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nat_assoc *a = arg;
	uint64_t now = clock_now_ms();

	a->armed = SCTP_CORE_NO_DEADLINE;
	if (a->freeing || a->down)
		return;
	path_sync(a, now);
	sctp_core_timeout(a->core, now);
	dispatch(a);
}

/*
 * The end of a receive batch: this runs after the carrier's read callback
 * (one recvmmsg/GRO batch, or one TCP read's frames) has handed up every
 * packet, so the batch gets one SACK decision and one flush, and the
 * packets the flush builds leave in the carrier's same send batch.
 */
static void batch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nat_assoc *a = arg;

	a->batching = 0;
	if (a->freeing || a->down)
		return;
	sctp_core_batch_end(a->core, clock_now_ms());
	dispatch(a);
}

static void link_input(struct wire_link *l, const uint8_t *pkt, size_t len, void *arg)
{
	struct nat_assoc *a = arg;
	uint64_t now = clock_now_ms();

	if (a->freeing || a->down)
		return;
	if (!a->batching && a->batch_ev != NULL) {
		a->batching = 1;
		sctp_core_batch_begin(a->core);
		event_active(a->batch_ev, EV_READ, 0);
	}
	path_sync(a, now);
	sctp_core_input(a->core, pkt, len, now);
	dispatch(a);
}

static void link_dead(struct wire_link *l, const char *why, void *arg)
{
	struct nat_assoc *a = arg;

	assoc_down(a, why);
}

static void setup_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nat_assoc *a = arg;

	if (!a->up)
		assoc_down(a, "association setup timed out");
}

/* Counters for researchers (-v): how loss was recovered on this association. */
static void log_assoc_summary(const struct sctp_core *core)
{
	struct sctp_core_info i;

	sctp_core_get_info(core, &i);
	log_info("sctp: association counters: %u packets sent, %u SACKs sent, "
	         "%u SACKs received, "
	         "%u chunks retransmitted; lost by rack %u, 3-miss %u, "
	         "%u TLP probes (%u repaired a loss), %u T3 expiries; "
	         "%u spurious retransmissions (%u RTOs), %u undone; "
	         "%u duplicate TSNs, %u DATA dropped; srtt %u rttvar %u "
	         "min_rtt %d ms, rto %u ms; cc %s cwnd %u flight %u, "
	         "pacing %llu B/s (%u waits), btl_bw %llu B/s, "
	         "delivery rate %llu B/s",
	         i.packets_sent, i.sacks_sent, i.sacks_received, i.retransmits, i.lost_rack,
	         i.fast_retransmits, i.tlp_probes, i.tlp_losses, i.t3_expiries,
	         i.spurious_rtx, i.spurious_rto, i.undos, i.dup_tsns,
	         i.rcv_dropped, i.srtt_ms, i.rttvar_ms,
	         i.min_rtt_ms == UINT32_MAX ? -1 : (int)i.min_rtt_ms,
	         i.rto_ms, i.cc_name, i.cwnd, i.flight,
	         (unsigned long long)i.pacing_rate, i.pace_waits,
	         (unsigned long long)i.btl_bw,
	         (unsigned long long)i.delivery_rate);
}

/* The metrics endpoint's view: everything the core counts. */
static void nat_get_stats(const struct sctp_assoc *base, struct sctp_assoc_stats *st)
{
	const struct nat_assoc *a = (const struct nat_assoc *)base;
	struct sctp_core_info i;

	if (a->link != NULL) {
		wire_link_get_stats(a->link, &st->wire);
		st->have_wire = 1;
	}
	if (a->core == NULL)
		return;
	sctp_core_get_info(a->core, &i);
	st->have = SCTP_STATS_CWND | SCTP_STATS_FLIGHT | SCTP_STATS_RWND | SCTP_STATS_RTX |
	           SCTP_STATS_RTX_KIND | SCTP_STATS_PKTS | SCTP_STATS_RTT | SCTP_STATS_RTTVAR;
	st->srtt_ms = i.srtt_ms;
	st->rttvar_ms = i.rttvar_ms;
	st->rto_ms = i.rto_ms;
	st->cwnd = i.cwnd;
	st->ssthresh = i.ssthresh;
	st->flight = i.flight;
	st->peer_rwnd = i.peer_rwnd;
	st->retransmissions = i.retransmits;
	st->fast_retransmissions = i.fast_retransmits;
	st->t3_expiries = i.t3_expiries;
	st->tlp_probes = i.tlp_probes;
	st->packets_sent = i.packets_sent;
	st->have |= SCTP_STATS_RACK | SCTP_STATS_SPURIOUS | SCTP_STATS_SACKS |
	            SCTP_STATS_RCV | SCTP_STATS_PACING;
	if (i.min_rtt_ms != UINT32_MAX) {
		st->have |= SCTP_STATS_MIN_RTT;
		st->min_rtt_ms = i.min_rtt_ms;
	}
	st->reo_wnd_ms = i.reo_wnd_ms;
	st->rack_losses = i.lost_rack;
	st->tlp_losses = i.tlp_losses;
	st->spurious_rtx = i.spurious_rtx;
	st->spurious_rto = i.spurious_rto;
	st->undos = i.undos;
	st->sacks_sent = i.sacks_sent;
	st->sacks_received = i.sacks_received;
	st->dup_tsns = i.dup_tsns;
	st->data_dropped = i.rcv_dropped;
	st->pacing_rate = i.pacing_rate;
	st->pace_waits = i.pace_waits;
	/* Only bbr models the bottleneck; another controller's (or an old
	 * bbr's, after a switch to the TCP carrier) btl_bw means nothing. */
	if (i.cc_name != NULL && strcmp(i.cc_name, "bbr") == 0 && i.btl_bw != 0) {
		st->have |= SCTP_STATS_BTL_BW;
		st->btl_bw = i.btl_bw;
	}
	/* 0 is "no sample yet": a sample is never 0 (the core keeps the last). */
	if (i.delivery_rate != 0) {
		st->have |= SCTP_STATS_DELIVERY;
		st->delivery_rate = i.delivery_rate;
	}
	st->cc = i.cc_name;
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nat_assoc *a = arg;

	if (a->core != NULL) {
		log_assoc_summary(a->core);
		/* Abort: the peer learns at once instead of by timeout. */
		if (sctp_core_state(a->core) != SCTP_S_CLOSED)
			sctp_core_abort(a->core, clock_now_ms());
		sctp_core_free(a->core);
	}
	while (a->evq != NULL) {
		struct nat_event *e = a->evq;

		a->evq = e->next;
		free(e);
	}
	wire_link_free(a->link);
	if (a->timer != NULL)
		event_free(a->timer);
	if (a->reap_ev != NULL)
		event_free(a->reap_ev);
	if (a->batch_ev != NULL)
		event_free(a->batch_ev);
	if (a->setup_timer != NULL)
		event_free(a->setup_timer);
	free(a);
}

static struct nat_assoc *assoc_new(struct wire_link *link, int listen,
                                   const struct sctp_assoc_cbs *cbs, void *arg)
{
	const struct sctp_tuning *t = &N.tuning;
	struct nat_assoc *a = calloc(1, sizeof(*a));
	struct sctp_core_config cfg;
	struct sctp_core_env env;
	size_t mtu = wire_link_mtu(link);

	if (a == NULL) {
		wire_link_free(link);
		return NULL;
	}
	a->base.ops = &nat_ops;
	a->link = link;
	a->cbs = *cbs;
	a->arg = arg;
	a->armed = SCTP_CORE_NO_DEADLINE;
	a->evq_tail = &a->evq;

	memset(&cfg, 0, sizeof(cfg));
	cfg.local_port = NATIVE_SCTP_PORT;
	cfg.remote_port = NATIVE_SCTP_PORT;
	cfg.os = (uint16_t)t->streams;
	cfg.mis = (uint16_t)t->streams;
	cfg.a_rwnd = t->rcvbuf;
	cfg.idata = 1;
	cfg.listen = listen;
	cfg.rto_initial_ms = t->rto_initial_ms;
	cfg.rto_min_ms = t->rto_min_ms ? t->rto_min_ms : NATIVE_RTO_MIN_MS;
	cfg.rto_max_ms = t->rto_max_ms;
	cfg.max_init_retrans = t->init_attempts;
	cfg.max_retrans = t->max_retrans;
	cfg.fail_min_ms = NATIVE_FAIL_MIN_MS;
	cfg.hb_interval_ms = t->hb_interval_ms;
	cfg.mtu = (uint16_t)(mtu > 65535 ? 65535 : mtu);
	/*
	 * usrsctp runs with CRC32c offloaded (every packet is authenticated
	 * by the wire layer's AEAD) and so writes a zero checksum and checks
	 * none; the native engine does the same, so both see the same packets.
	 */
	cfg.no_crc = 1;
	cfg.sndbuf = t->sndbuf;
	cfg.sack_delay_ms = t->sack_delay_ms;
	cfg.peer_sack_delay_ms = t->sack_delay_ms;  /* the peer runs our tuning */
	cfg.sack_freq = 2;
	cfg.cc = t->bandwidth ? SCTP_CC_FIXED : t->cc;
	cfg.fixed_rate = t->bandwidth;

	memset(&env, 0, sizeof(env));
	env.arg = a;
	env.random = env_random;
	env.output = env_output;
	env.event = env_event;
	env.secret = N.secret;
	env.secret_len = sizeof(N.secret);

	a->core = sctp_core_new(&cfg, &env);
	a->timer = event_new(N.base, -1, 0, timer_cb, a);
	a->reap_ev = event_new(N.base, -1, 0, reap_cb, a);
	a->batch_ev = event_new(N.base, -1, 0, batch_cb, a);
	if (a->core == NULL || a->timer == NULL || a->reap_ev == NULL || a->batch_ev == NULL) {
		log_err("sctp: cannot set up an association (mtu %zu)", mtu);
		reap_cb(-1, 0, a);
		return NULL;
	}
	wire_link_set_recv(link, link_input, a);
	wire_link_set_dead(link, link_dead, a);
	return a;
}

struct sctp_assoc *native_glue_connect(struct wire_link *link,
                                       const struct sctp_assoc_cbs *cbs, void *arg)
{
	struct nat_assoc *a = assoc_new(link, 0, cbs, arg);

	if (a == NULL)
		return NULL;
	path_sync(a, clock_now_ms());
	if (sctp_core_connect(a->core, clock_now_ms()) < 0) {
		log_err("sctp: connect failed");
		reap_cb(-1, 0, a);
		return NULL;
	}
	if (rearm(a, clock_now_ms()) < 0) {
		log_err("sctp: cannot schedule the association's timer");
		reap_cb(-1, 0, a);
		return NULL;
	}
	return &a->base;
}

struct sctp_assoc *native_glue_accept(struct wire_link *link,
                                      const struct sctp_assoc_cbs *cbs, void *arg)
{
	struct nat_assoc *a = assoc_new(link, 1, cbs, arg);
	struct timeval tv;

	if (a == NULL)
		return NULL;
	a->setup_timer = event_new(N.base, -1, 0, setup_timeout_cb, a);
	tv.tv_sec = N.tuning.setup_timeout_ms / 1000;
	tv.tv_usec = (N.tuning.setup_timeout_ms % 1000) * 1000;
	if (a->setup_timer == NULL || event_add(a->setup_timer, &tv) < 0) {
		reap_cb(-1, 0, a);
		return NULL;
	}
	return &a->base;
}

static int nat_send(struct sctp_assoc *base, uint16_t sid, uint32_t ppid,
                    const void *data, size_t len, unsigned flags)
{
	struct nat_assoc *a = (struct nat_assoc *)base;
	int r;

	if (a->freeing || a->down || !a->up) {
		log_debug("sctp: send on a native association that is not up refused");
		return -1;
	}
	path_sync(a, clock_now_ms());
	r = sctp_core_send(a->core, sid, ppid, (flags & SCTP_SEND_UNORDERED) != 0, data, len,
	                   clock_now_ms());
	if (r == SCTP_CORE_WOULD_BLOCK) {
		a->want_write = 1;
		r = SCTP_AGAIN;
	} else if (r < 0) {
		log_debug("sctp: send of %zu bytes on stream %u refused", len, sid);
	}
	/* Sending may have emitted packets and changed the deadline; events it
	 * queued (none expected) go out from the loop's next dispatch. */
	if (!a->dispatching)
		dispatch(a);
	return r;
}

static unsigned nat_streams(const struct sctp_assoc *base)
{
	const struct nat_assoc *a = (const struct nat_assoc *)base;

	return a->up && !a->down ? a->streams : 0;
}

static void nat_free(struct sctp_assoc *base)
{
	struct nat_assoc *a = (struct nat_assoc *)base;

	if (a->freeing)
		return;
	a->freeing = 1;
	if (a->setup_timer != NULL)
		event_del(a->setup_timer);
	event_del(a->timer);
	event_active(a->reap_ev, EV_READ, 0);
}

/* The wire layer moved to another carrier path: probe it at once, so the
 * round trip on the new path is measured without waiting on a timer. */
static void nat_path_changed(struct sctp_assoc *base)
{
	struct nat_assoc *a = (struct nat_assoc *)base;
	uint32_t id;

	if (a->freeing || a->down || !a->up)
		return;
	path_sync(a, clock_now_ms());
	if (sctp_core_probe(a->core, clock_now_ms(), &id) < 0)
		return;
	if (!a->dispatching)
		dispatch(a);
}
