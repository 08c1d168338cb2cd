/*
 * usrsctp glue; see sctp.h and sctp_internal.h.
 *
 * Each association gets a small integer id passed to usrsctp as the
 * AF_CONN address (never a pointer: usrsctp copies it into the state cookie
 * the peer sees).  conn_output() maps the id back to the association and
 * hands the packet to the wire layer before returning, because usrsctp
 * frees the buffer afterwards.
 */
#include "sctp/sctp.h"
#include "sctp/sctp_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <usrsctp.h>

#include "util/clock.h"
#include "util/hmap.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "wire/wire.h"

#define SCTPT_SCTP_PORT 5000
#define RECV_BUF_SIZE (64 * 1024)
#define RECV_BUDGET 512            /* messages per wakeup, then yield */
#define TIMER_TICK_MS 10
/*
 * usrsctp 0.9.5 builds packets up to 12 bytes larger than the path MTU it
 * is given when I-DATA chunks are bundled (measured: 1464 for 1452), so
 * the MTU we hand it keeps this much in reserve.
 */
#define USRSCTP_MTU_SLACK 16
/* Defined by usrsctp 0.9.5 but missing from its public header (usrsctp.h). */
#ifndef SCTP_INTERLEAVING_SUPPORTED
#define SCTP_INTERLEAVING_SUPPORTED 0x00001206
#endif

enum assoc_state { ASSOC_CONNECTING, ASSOC_LISTENING, ASSOC_UP, ASSOC_DOWN };

struct usr_assoc {
	struct sctp_assoc base;     /* first: sctp.c dispatches through it */
	uintptr_t id;
	enum assoc_state state;
	struct socket *sock;        /* the association's socket */
	struct socket *lsock;       /* server: listening socket until accept */
	struct wire_link *link;
	struct sctp_assoc_cbs cbs;
	void *arg;
	struct event *ev;           /* activated by upcalls */
	struct event *reap_ev;      /* deferred free */
	struct event *setup_timer;
	unsigned streams;
	int want_write;
	int freeing;
	int registered;
};

static struct {
	struct event_base *base;
	struct event *timer;
	struct hmap *assocs;        /* id -> assoc */
	uintptr_t next_id;
	uint64_t last_tick_ms;   /* monotonic ms handed to usrsctp so far */
	struct sctp_tuning tuning;
	int initialised;
	uint8_t *recv_buf;
} G;

static struct log_ratelimit sctp_rl = LOG_RATELIMIT_INIT(10.0, 5);

static struct usr_assoc *assoc_by_id(uintptr_t id)
{
	return hmap_get(G.assocs, &id, sizeof(id));
}

static int conn_output(void *addr, void *buffer, size_t length, uint8_t tos,
                       uint8_t set_df)
{
	struct usr_assoc *a = assoc_by_id((uintptr_t)addr);

	if (a != NULL && a->link != NULL)
		(void)wire_link_send(a->link, buffer, length);
	return 0;   /* a lost packet is recovered by SCTP */
}

static void usrsctp_debug_printf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_debug("usrsctp: %s", buf);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = clock_now_ms();

	if (now <= G.last_tick_ms)
		return;
	/* Whole milliseconds only, so no fraction is ever lost or counted twice. */
	usrsctp_handle_timers((uint32_t)(now - G.last_tick_ms));
	G.last_tick_ms = now;
}

int usrsctp_glue_init(struct event_base *base, const struct sctp_tuning *t)
{
	struct timeval tick = { 0, TIMER_TICK_MS * 1000 };

	if (G.initialised)
		return 0;
	G.base = base;
	G.tuning = *t;
	G.next_id = 1;
	G.assocs = hmap_new();
	G.recv_buf = malloc(RECV_BUF_SIZE);
	if (G.assocs == NULL || G.recv_buf == NULL)
		return -1;
	usrsctp_init_nothreads(0, conn_output, usrsctp_debug_printf);
	/* Every packet is authenticated by the wire layer (AEAD): the CRC32c
	 * adds nothing and costs a pass over every byte. */
	usrsctp_enable_crc32c_offload();
	/* Features we do not use are attack surface. */
	usrsctp_sysctl_set_sctp_ecn_enable(0);
	usrsctp_sysctl_set_sctp_asconf_enable(0);
	usrsctp_sysctl_set_sctp_auto_asconf(0);
	usrsctp_sysctl_set_sctp_auth_enable(0);
	usrsctp_sysctl_set_sctp_pr_enable(0);
	usrsctp_sysctl_set_sctp_reconfig_enable(0);
	usrsctp_sysctl_set_sctp_nrsack_enable(0);
	usrsctp_sysctl_set_sctp_pktdrop_enable(0);
	usrsctp_sysctl_set_sctp_blackhole(2);
	/* After one timeout the path is "potentially failed": a heartbeat
	 * answer then restarts retransmission at once (RFC 7829). */
	usrsctp_sysctl_set_sctp_path_pf_threshold(1);
	usrsctp_sysctl_set_sctp_rto_min_default(t->rto_min_ms ? t->rto_min_ms : 200);
	usrsctp_sysctl_set_sctp_rto_max_default(t->rto_max_ms);
	usrsctp_sysctl_set_sctp_rto_initial_default(t->rto_initial_ms);
	usrsctp_sysctl_set_sctp_init_rto_max_default(t->rto_max_ms);
	usrsctp_sysctl_set_sctp_delayed_sack_time_default(t->sack_delay_ms);
	usrsctp_sysctl_set_sctp_heartbeat_interval_default(t->hb_interval_ms);
	usrsctp_sysctl_set_sctp_assoc_rtx_max_default(t->max_retrans);
	usrsctp_sysctl_set_sctp_path_rtx_max_default(t->max_retrans);
	usrsctp_sysctl_set_sctp_init_rtx_max_default(t->init_attempts);
	usrsctp_sysctl_set_sctp_sendspace(t->sndbuf);
	usrsctp_sysctl_set_sctp_recvspace(t->rcvbuf);
	usrsctp_sysctl_set_sctp_max_chunks_on_queue(1000000);
	usrsctp_sysctl_set_sctp_sack_freq_default(2);
	usrsctp_sysctl_set_sctp_nr_outgoing_streams_default(t->streams);
	usrsctp_sysctl_set_sctp_nr_incoming_streams_default(t->streams);
	usrsctp_sysctl_set_sctp_default_frag_interleave(2);
	G.last_tick_ms = clock_now_ms();
	G.timer = event_new(base, -1, EV_PERSIST, timer_cb, NULL);
	if (G.timer == NULL || event_add(G.timer, &tick) < 0)
		return -1;
	G.initialised = 1;
	return 0;
}

void usrsctp_glue_shutdown(void)
{
	if (!G.initialised)
		return;
	if (G.timer != NULL)
		event_free(G.timer);
	G.timer = NULL;
	/* usrsctp_finish() fails while sockets linger; a few rounds suffice. */
	for (int i = 0; i < 50 && usrsctp_finish() != 0; i++)
		usrsctp_handle_timers(100);
	hmap_free(G.assocs);
	free(G.recv_buf);
	memset(&G, 0, sizeof(G));
}

static void assoc_set_path_params(struct usr_assoc *a);

static void assoc_down(struct usr_assoc *a, const char *why)
{
	if (a->state == ASSOC_DOWN || a->freeing)
		return;
	a->state = ASSOC_DOWN;
	if (a->setup_timer != NULL)
		event_del(a->setup_timer);
	a->cbs.down(&a->base, why, a->arg);
}

static void handle_notification(struct usr_assoc *a, const uint8_t *buf, size_t n)
{
	const union sctp_notification *notif = (const void *)buf;

	if (n < sizeof(notif->sn_header))
		return;
	switch (notif->sn_header.sn_type) {
	case SCTP_ASSOC_CHANGE: {
		const struct sctp_assoc_change *sac = &notif->sn_assoc_change;

		if (n < sizeof(*sac))
			return;
		switch (sac->sac_state) {
		case SCTP_RESTART:
			/* The peer restarted from the same address: its streams are gone. */
			assoc_down(a, "peer restarted the association");
			break;
		case SCTP_COMM_UP:
			a->streams = sac->sac_outbound_streams < sac->sac_inbound_streams ?
			             sac->sac_outbound_streams : sac->sac_inbound_streams;
			if (a->state != ASSOC_UP) {
				a->state = ASSOC_UP;
				assoc_set_path_params(a);
				if (a->setup_timer != NULL)
					event_del(a->setup_timer);
				a->cbs.up(&a->base, a->arg);
			}
			break;
		case SCTP_COMM_LOST:
			assoc_down(a, "association lost (peer unreachable or aborted)");
			break;
		case SCTP_SHUTDOWN_COMP:
			assoc_down(a, "association shut down by peer");
			break;
		case SCTP_CANT_STR_ASSOC:
			assoc_down(a, "no answer from server");
			break;
		default:
			break;
		}
		break;
	}
	case SCTP_SHUTDOWN_EVENT:
		assoc_down(a, "peer is shutting down");
		break;
	default:
		break;
	}
}

static void assoc_read(struct usr_assoc *a)
{
	for (int i = 0; i < RECV_BUDGET; i++) {
		struct sctp_rcvinfo rcv;
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		socklen_t infolen = sizeof(rcv);
		unsigned int infotype = 0;
		int flags = 0;
		ssize_t n;

		if (a->freeing || a->state == ASSOC_DOWN || a->sock == NULL)
			return;
		memset(&rcv, 0, sizeof(rcv));
		n = usrsctp_recvv(a->sock, G.recv_buf, RECV_BUF_SIZE,
		                  (struct sockaddr *)&from, &fromlen, &rcv,
		                  &infolen, &infotype, &flags);
		if (n < 0) {
			if (errno == EWOULDBLOCK || errno == EAGAIN)
				return;
			assoc_down(a, errno == ECONNRESET ? "association aborted by peer"
			                                  : "association receive error");
			return;
		}
		if (n == 0) {
			assoc_down(a, "association closed by peer");
			return;
		}
		if (flags & MSG_NOTIFICATION) {
			handle_notification(a, G.recv_buf, (size_t)n);
			continue;
		}
		if (infotype != SCTP_RECVV_RCVINFO) {
			log_ratelimited(&sctp_rl, LOG_LEVEL_WARN,
			                "sctp: message without receive info dropped");
			continue;
		}
		a->cbs.message(&a->base, rcv.rcv_sid, ntohl(rcv.rcv_ppid), G.recv_buf,
		               (size_t)n, (flags & MSG_EOR) != 0, a->arg);
	}
	/* Budget used up: come back after other events had their turn. */
	if (!a->freeing && a->state != ASSOC_DOWN)
		event_active(a->ev, EV_READ, 0);
}

static int assoc_set_options(struct socket *s)
{
	const struct sctp_tuning *t = &G.tuning;
	int one = 1;
	int sz;
	struct sctp_initmsg init;
	struct sctp_assoc_value av;
	struct sctp_sack_info sack;
	struct sctp_event ev;
	static const uint16_t events[] = { SCTP_ASSOC_CHANGE, SCTP_SHUTDOWN_EVENT };

	if (usrsctp_set_non_blocking(s, 1) < 0)
		return -1;
	if (usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_NODELAY, &one, sizeof(one)) < 0)
		return -1;
	if (usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_RECVRCVINFO, &one, sizeof(one)) < 0)
		return -1;
	sz = (int)t->sndbuf;
	(void)usrsctp_setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	sz = (int)t->rcvbuf;
	(void)usrsctp_setsockopt(s, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));

	memset(&init, 0, sizeof(init));
	init.sinit_num_ostreams = (uint16_t)t->streams;
	init.sinit_max_instreams = (uint16_t)t->streams;
	init.sinit_max_attempts = (uint16_t)t->init_attempts;
	init.sinit_max_init_timeo = (uint16_t)t->rto_max_ms;
	if (usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_INITMSG, &init, sizeof(init)) < 0)
		return -1;

	/* I-DATA: level 2 fragment interleave first, then the feature. */
	sz = 2;
	if (usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_FRAGMENT_INTERLEAVE, &sz, sizeof(sz)) < 0)
		return -1;
	memset(&av, 0, sizeof(av));
	av.assoc_id = SCTP_FUTURE_ASSOC;
	av.assoc_value = 1;
	if (usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_INTERLEAVING_SUPPORTED, &av, sizeof(av)) < 0)
		log_ratelimited(&sctp_rl, LOG_LEVEL_WARN, "sctp: I-DATA not available: %s",
		                strerror(errno));

	memset(&sack, 0, sizeof(sack));
	sack.sack_assoc_id = SCTP_FUTURE_ASSOC;
	sack.sack_delay = t->sack_delay_ms;
	sack.sack_freq = 2;
	(void)usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_DELAYED_SACK, &sack, sizeof(sack));

	memset(&ev, 0, sizeof(ev));
	ev.se_assoc_id = SCTP_FUTURE_ASSOC;
	ev.se_on = 1;
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		ev.se_type = events[i];
		if (usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_EVENT, &ev, sizeof(ev)) < 0)
			return -1;
	}
	return 0;
}

static void sconn_fill(struct sockaddr_conn *sc, uintptr_t id)
{
	memset(sc, 0, sizeof(*sc));
	sc->sconn_family = AF_CONN;
	sc->sconn_port = htons(SCTPT_SCTP_PORT);
	sc->sconn_addr = (void *)id;
}

/*
 * Fix the path MTU to what one carrier datagram can hold, and set the
 * heartbeat interval.  Done on the established association, with the
 * peer's AF_CONN address (usrsctp refuses the wildcard form).
 */
static void assoc_set_path_params(struct usr_assoc *a)
{
	struct sctp_paddrparams pp;

	memset(&pp, 0, sizeof(pp));
	sconn_fill((struct sockaddr_conn *)&pp.spp_address, a->id);
	pp.spp_assoc_id = 0;
	pp.spp_flags = SPP_PMTUD_DISABLE | SPP_HB_ENABLE;
	pp.spp_pathmtu = (uint32_t)(wire_link_mtu(a->link) - USRSCTP_MTU_SLACK);
	pp.spp_hbinterval = G.tuning.hb_interval_ms;
	if (usrsctp_setsockopt(a->sock, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp, sizeof(pp)) < 0)
		log_warn("sctp: cannot set the path MTU: %s", strerror(errno));
}

/*
 * The path under the association changed (the wire layer moved to another
 * carrier path): ask for a heartbeat now, so that the round trip on the
 * new path is measured at once and retransmission does not wait out a
 * timer that backed off while the old path was dark.
 */
static void usr_path_changed(struct sctp_assoc *base)
{
	struct usr_assoc *a = (struct usr_assoc *)base;
	struct sctp_paddrparams pp;

	if (a == NULL || a->state != ASSOC_UP)
		return;
	memset(&pp, 0, sizeof(pp));
	sconn_fill((struct sockaddr_conn *)&pp.spp_address, a->id);
	pp.spp_flags = SPP_HB_DEMAND;
	if (usrsctp_setsockopt(a->sock, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp, sizeof(pp)) < 0)
		log_debug("sctp: cannot request a heartbeat: %s", strerror(errno));
}

static void upcall(struct socket *s, void *arg, int flags);

static void assoc_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct usr_assoc *a = arg;
	int events;

	if (a->freeing || a->state == ASSOC_DOWN)
		return;
	if (a->state == ASSOC_LISTENING && a->lsock != NULL) {
		struct socket *s = usrsctp_accept(a->lsock, NULL, NULL);

		if (s == NULL)
			return;   /* not yet: the handshake is still going */
		a->sock = s;
		usrsctp_set_upcall(a->lsock, NULL, NULL);
		usrsctp_close(a->lsock);
		a->lsock = NULL;
		a->state = ASSOC_CONNECTING;
		(void)usrsctp_set_non_blocking(s, 1);
		{
			/* Not reliably inherited from the listener: Nagle would hold
			 * small replies (OPEN_OK, echoes) until the next SACK. */
			int one = 1;

			if (usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_NODELAY, &one, sizeof(one)) < 0)
				log_warn("sctp: cannot set NODELAY: %s", strerror(errno));
		}
		usrsctp_set_upcall(s, upcall, (void *)a->id);
	}
	if (a->sock == NULL)
		return;
	events = usrsctp_get_events(a->sock);
	if (events & SCTP_EVENT_READ)
		assoc_read(a);
	if (a->freeing || a->state == ASSOC_DOWN)
		return;
	if ((events & SCTP_EVENT_WRITE) && a->want_write && a->state == ASSOC_UP) {
		a->want_write = 0;
		a->cbs.writable(&a->base, a->arg);
	}
	if (a->freeing || a->state == ASSOC_DOWN)
		return;
	if (events & SCTP_EVENT_ERROR)
		assoc_down(a, "association error");
}

static void upcall(struct socket *s, void *arg, int flags)
{
	struct usr_assoc *a = assoc_by_id((uintptr_t)arg);

	/* Never do work here: we may be deep inside usrsctp. */
	if (a != NULL && !a->freeing)
		event_active(a->ev, EV_READ, 0);
}

static void setup_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct usr_assoc *a = arg;

	if (a->state != ASSOC_UP)
		assoc_down(a, "association setup timed out");
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct usr_assoc *a = arg;

	if (a->lsock != NULL) {
		usrsctp_set_upcall(a->lsock, NULL, NULL);
		usrsctp_close(a->lsock);
	}
	if (a->sock != NULL) {
		struct linger lg = { 1, 0 };

		usrsctp_set_upcall(a->sock, NULL, NULL);
		/* Abort: the peer learns at once instead of by timeout. */
		(void)usrsctp_setsockopt(a->sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		usrsctp_close(a->sock);
	}
	if (a->registered)
		usrsctp_deregister_address((void *)a->id);
	hmap_del(G.assocs, &a->id, sizeof(a->id));
	wire_link_free(a->link);
	event_free(a->ev);
	event_free(a->reap_ev);
	if (a->setup_timer != NULL)
		event_free(a->setup_timer);
	free(a);
}

static int usr_send(struct sctp_assoc *base, uint16_t sid, uint32_t ppid,
                    const void *data, size_t len, unsigned flags);
static unsigned usr_streams(const struct sctp_assoc *base);
static void usr_free(struct sctp_assoc *base);

/*
 * What usrsctp's socket API gives about one association (SCTP_STATUS and
 * its primary path): srtt, rto, cwnd and the peer's window.  It keeps no
 * per-association retransmission counts, and rttvar and the flight in
 * bytes are not exported, so those stay absent.
 */
static void usr_get_stats(const struct sctp_assoc *base, struct sctp_assoc_stats *st)
{
	const struct usr_assoc *a = (const struct usr_assoc *)base;
	struct sctp_status ss;
	socklen_t len = sizeof(ss);

	if (a->link != NULL) {
		wire_link_get_stats(a->link, &st->wire);
		st->have_wire = 1;
	}
	if (a->sock == NULL || a->state != ASSOC_UP)
		return;
	memset(&ss, 0, sizeof(ss));
	if (usrsctp_getsockopt(a->sock, IPPROTO_SCTP, SCTP_STATUS, &ss, &len) < 0)
		return;
	/* All it tells per association.  Its loss, SACK and retransmission
	 * counters (usrsctp_get_stat) are process-wide sums, which would be
	 * wrong as soon as there are two associations: left unset. */
	st->have = SCTP_STATS_RTT | SCTP_STATS_CWND | SCTP_STATS_RWND;
	st->srtt_ms = ss.sstat_primary.spinfo_srtt;
	st->rto_ms = ss.sstat_primary.spinfo_rto;
	st->cwnd = ss.sstat_primary.spinfo_cwnd;
	st->peer_rwnd = ss.sstat_rwnd;
}

static const struct sctp_engine_ops usr_ops = {
	.send = usr_send,
	.streams = usr_streams,
	.free = usr_free,
	.path_changed = usr_path_changed,
	.get_stats = usr_get_stats,
};

static struct usr_assoc *assoc_new(struct wire_link *link,
                                    const struct sctp_assoc_cbs *cbs, void *arg)
{
	struct usr_assoc *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->base.ops = &usr_ops;
	a->id = G.next_id++;
	a->link = link;
	a->cbs = *cbs;
	a->arg = arg;
	a->ev = event_new(G.base, -1, 0, assoc_event_cb, a);
	a->reap_ev = event_new(G.base, -1, 0, reap_cb, a);
	if (a->ev == NULL || a->reap_ev == NULL || hmap_put(G.assocs, &a->id, sizeof(a->id), a) < 0) {
		if (a->ev != NULL)
			event_free(a->ev);
		if (a->reap_ev != NULL)
			event_free(a->reap_ev);
		free(a);
		return NULL;
	}
	usrsctp_register_address((void *)a->id);
	a->registered = 1;
	return a;
}

static void link_input(struct wire_link *l, const uint8_t *pkt, size_t len, void *arg)
{
	uintptr_t id = (uintptr_t)arg;

	/* Only packets the wire layer authenticated get here, so usrsctp's CRC32c
	 * check is offloaded (docs/internals.md, "The event loop and usrsctp"). */
	usrsctp_conninput((void *)id, pkt, len, 0);
}

static struct socket *assoc_socket(struct usr_assoc *a)
{
	struct socket *s = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP,
	                                  NULL, NULL, 0, NULL);
	struct sockaddr_conn sc;

	if (s == NULL)
		return NULL;
	if (assoc_set_options(s) < 0)
		goto fail;
	sconn_fill(&sc, a->id);
	if (usrsctp_bind(s, (struct sockaddr *)&sc, sizeof(sc)) < 0)
		goto fail;
	return s;
fail:
	log_err("sctp: socket setup failed: %s", strerror(errno));
	usrsctp_close(s);
	return NULL;
}

static void link_dead(struct wire_link *l, const char *why, void *arg)
{
	struct usr_assoc *a = assoc_by_id((uintptr_t)arg);

	if (a != NULL)
		assoc_down(a, why);
}

static struct usr_assoc *usr_connect(struct wire_link *link,
                                      const struct sctp_assoc_cbs *cbs, void *arg)
{
	struct usr_assoc *a = assoc_new(link, cbs, arg);
	struct sockaddr_conn sc;

	if (a == NULL) {
		wire_link_free(link);
		return NULL;
	}
	wire_link_set_recv(link, link_input, (void *)a->id);
	wire_link_set_dead(link, link_dead, (void *)a->id);
	a->state = ASSOC_CONNECTING;
	a->sock = assoc_socket(a);
	if (a->sock == NULL)
		goto fail;
	usrsctp_set_upcall(a->sock, upcall, (void *)a->id);
	sconn_fill(&sc, a->id);
	if (usrsctp_connect(a->sock, (struct sockaddr *)&sc, sizeof(sc)) < 0 &&
	    errno != EINPROGRESS) {
		log_err("sctp: connect failed: %s", strerror(errno));
		goto fail;
	}
	return a;
fail:
	a->freeing = 1;
	reap_cb(-1, 0, a);
	return NULL;
}

static struct usr_assoc *usr_accept(struct wire_link *link,
                                     const struct sctp_assoc_cbs *cbs, void *arg)
{
	struct usr_assoc *a = assoc_new(link, cbs, arg);
	struct timeval tv;

	if (a == NULL) {
		wire_link_free(link);
		return NULL;
	}
	wire_link_set_recv(link, link_input, (void *)a->id);
	wire_link_set_dead(link, link_dead, (void *)a->id);
	a->state = ASSOC_LISTENING;
	a->lsock = assoc_socket(a);
	if (a->lsock == NULL)
		goto fail;
	if (usrsctp_listen(a->lsock, 1) < 0)
		goto fail;
	usrsctp_set_upcall(a->lsock, upcall, (void *)a->id);
	a->setup_timer = event_new(G.base, -1, 0, setup_timeout_cb, a);
	tv.tv_sec = G.tuning.setup_timeout_ms / 1000;
	tv.tv_usec = (G.tuning.setup_timeout_ms % 1000) * 1000;
	if (a->setup_timer == NULL || event_add(a->setup_timer, &tv) < 0)
		goto fail;
	return a;
fail:
	a->freeing = 1;
	reap_cb(-1, 0, a);
	return NULL;
}

static int usr_send(struct sctp_assoc *base, uint16_t sid, uint32_t ppid,
                    const void *data, size_t len, unsigned flags)
{
	struct usr_assoc *a = (struct usr_assoc *)base;
	struct sctp_sndinfo snd;
	ssize_t r;

	if (a->freeing || a->state != ASSOC_UP || a->sock == NULL) {
		log_debug("sctp: send on association %lu in state %d refused", (unsigned long)a->id, a->state);
		return -1;
	}
	memset(&snd, 0, sizeof(snd));
	snd.snd_sid = sid;
	snd.snd_ppid = htonl(ppid);
	if (flags & SCTP_SEND_UNORDERED)
		snd.snd_flags = SCTP_UNORDERED;
	r = usrsctp_sendv(a->sock, data, len, NULL, 0, &snd, sizeof(snd),
	                  SCTP_SENDV_SNDINFO, 0);
	if (r >= 0)
		return 0;
	if (errno == EWOULDBLOCK || errno == EAGAIN) {
		a->want_write = 1;
		return SCTP_AGAIN;
	}
	log_ratelimited(&sctp_rl, LOG_LEVEL_WARN, "sctp: send failed on stream %u: %s",
	                sid, strerror(errno));
	return -1;
}

static unsigned usr_streams(const struct sctp_assoc *base)
{
	const struct usr_assoc *a = (const struct usr_assoc *)base;

	return a->state == ASSOC_UP ? a->streams : 0;
}

static void usr_free(struct sctp_assoc *base)
{
	struct usr_assoc *a = (struct usr_assoc *)base;

	if (a == NULL || a->freeing)
		return;
	a->freeing = 1;
	if (a->setup_timer != NULL)
		event_del(a->setup_timer);
	event_active(a->reap_ev, EV_READ, 0);
}

struct sctp_assoc *usrsctp_glue_connect(struct wire_link *link,
                                       const struct sctp_assoc_cbs *cbs, void *arg)
{
	struct usr_assoc *a = usr_connect(link, cbs, arg);

	return a != NULL ? &a->base : NULL;
}

struct sctp_assoc *usrsctp_glue_accept(struct wire_link *link,
                                      const struct sctp_assoc_cbs *cbs, void *arg)
{
	struct usr_assoc *a = usr_accept(link, cbs, arg);

	return a != NULL ? &a->base : NULL;
}
