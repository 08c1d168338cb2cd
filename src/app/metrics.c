/*
 * What the metrics endpoint reports for `sctpt client` and `sctpt server`:
 * the snapshot of metrics/metrics.h filled from the layers below on every
 * request (nothing is kept between requests).
 *
 * Privacy: sessions are named by an opaque counter.  Client and
 * destination addresses are copied only with --metrics-addresses.
 */
#include "app/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "metrics/metrics.h"
#include "mux/mux.h"
#include "sctp/sctp.h"
#include "util/clock.h"
#include "util/netaddr.h"
#include "wire/wire.h"

/*
 * Streams listed in one answer, across all sessions: a busy server holds
 * far more (4096 per client), and each costs a few hundred bytes of
 * snapshot and of output.  Beyond it, sessions say streams_truncated.
 */
#define APP_METRICS_STREAMS_MAX 16384

static const char *path_state(enum wire_path_state s)
{
	switch (s) {
	case WIRE_PATH_ACTIVE: return "active";
	case WIRE_PATH_STANDBY: return "standby";
	default: return "failed";
	}
}

static void format_dest(const struct mux_dest *d, char *buf, size_t len)
{
	char a[64];

	switch (d->type) {
	case MUX_DEST_IPV4:
		snprintf(buf, len, "%u.%u.%u.%u:%u", d->addr[0], d->addr[1], d->addr[2],
		         d->addr[3], d->port);
		break;
	case MUX_DEST_IPV6: {
		struct sockaddr_in6 sin6;

		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		memcpy(&sin6.sin6_addr, d->addr, 16);
		sin6.sin6_port = htons(d->port);
		netaddr_format((struct sockaddr *)&sin6, a, sizeof(a));
		snprintf(buf, len, "%s", a);
		break;
	}
	case MUX_DEST_DOMAIN:
		snprintf(buf, len, "%.*s:%u", (int)(len > 8 ? len - 8 : 0), d->domain, d->port);
		break;
	default:
		buf[0] = '\0';
		break;
	}
}

static void fill_sctp(struct metrics_session *out, const struct sctp_assoc_stats *a)
{
	static const struct { unsigned from, to; } map[] = {
		{ SCTP_STATS_RTT, MS_HAVE_RTT },
		{ SCTP_STATS_RTTVAR, MS_HAVE_RTTVAR },
		{ SCTP_STATS_CWND, MS_HAVE_CWND },
		{ SCTP_STATS_FLIGHT, MS_HAVE_FLIGHT },
		{ SCTP_STATS_RWND, MS_HAVE_RWND },
		{ SCTP_STATS_RTX, MS_HAVE_RTX },
		{ SCTP_STATS_RTX_KIND, MS_HAVE_RTX_KIND },
		{ SCTP_STATS_PKTS, MS_HAVE_SCTP_PKT },
		{ SCTP_STATS_MIN_RTT, MS_HAVE_MIN_RTT },
		{ SCTP_STATS_RACK, MS_HAVE_RACK },
		{ SCTP_STATS_SPURIOUS, MS_HAVE_SPURIOUS },
		{ SCTP_STATS_SACKS, MS_HAVE_SACKS },
		{ SCTP_STATS_RCV, MS_HAVE_RCV },
		{ SCTP_STATS_PACING, MS_HAVE_PACING },
		{ SCTP_STATS_BTL_BW, MS_HAVE_BTL_BW },
		{ SCTP_STATS_DELIVERY, MS_HAVE_DELIVERY },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (a->have & map[i].from)
			out->have |= map[i].to;
	out->srtt_ms = a->srtt_ms;
	out->rttvar_ms = a->rttvar_ms;
	out->rto_ms = a->rto_ms;
	out->cwnd = a->cwnd;
	out->ssthresh = a->ssthresh;
	out->flight = a->flight;
	out->peer_rwnd = a->peer_rwnd;
	out->retransmissions = a->retransmissions;
	out->fast_retransmissions = a->fast_retransmissions;
	out->t3_expiries = a->t3_expiries;
	out->tlp_probes = a->tlp_probes;
	out->sctp_packets_sent = a->packets_sent;
	out->min_rtt_ms = a->min_rtt_ms;
	out->reo_wnd_ms = a->reo_wnd_ms;
	out->rack_losses = a->rack_losses;
	out->tlp_losses = a->tlp_losses;
	out->spurious_rtx = a->spurious_rtx;
	out->spurious_rto = a->spurious_rto;
	out->undos = a->undos;
	out->sacks_sent = a->sacks_sent;
	out->sacks_received = a->sacks_received;
	out->dup_tsns = a->dup_tsns;
	out->data_dropped = a->data_dropped;
	out->pacing_rate = a->pacing_rate;
	out->btl_bw = a->btl_bw;
	out->delivery_rate = a->delivery_rate;
	out->pace_waits = a->pace_waits;
	out->cc = a->cc;
}

static void fill_wire(struct metrics_session *out, const struct wire_link_stats *w,
                      int addresses)
{
	out->bytes_in = w->bytes_in;
	out->bytes_out = w->bytes_out;
	out->packets_in = w->packets_in;
	out->packets_out = w->packets_out;
	out->npaths = w->npaths < METRICS_MAX_PATHS ? w->npaths : METRICS_MAX_PATHS;
	for (unsigned i = 0; i < out->npaths; i++) {
		out->paths[i].kind = w->paths[i].tcp ? "tcp" : "udp";
		out->paths[i].state = path_state(w->paths[i].state);
		out->paths[i].last_rx_ms = w->paths[i].last_rx_ms;
		if (addresses && w->paths[i].addrlen > 0)
			netaddr_format((const struct sockaddr *)&w->paths[i].addr,
			               out->paths[i].addr, sizeof(out->paths[i].addr));
	}
}

static int fill_streams(struct metrics_session *out, const struct mux_session *m,
                        size_t active, int addresses, size_t *budget)
{
	struct mux_stream_info *info;
	size_t n;

	if (active > *budget) {
		out->streams_truncated = 1;
		active = *budget;
	}
	if (active == 0)
		return 0;
	info = calloc(active, sizeof(*info));
	out->streams = calloc(active, sizeof(*out->streams));
	if (info == NULL || out->streams == NULL) {
		free(info);
		free(out->streams);
		out->streams = NULL;
		return -1;
	}
	n = mux_session_stream_info(m, info, active);
	for (size_t i = 0; i < n; i++) {
		struct metrics_stream *st = &out->streams[i];

		st->sid = info[i].sid;
		st->state = info[i].state;
		st->bytes_in = info[i].bytes_in;
		st->bytes_out = info[i].bytes_out;
		st->credit_tx = info[i].credit_tx;
		st->credit_rx = info[i].credit_rx;
		st->window = info[i].window;
		st->queued = info[i].queued;
		st->age_ms = info[i].age_ms;
		if (addresses)
			format_dest(&info[i].dest, st->dest, sizeof(st->dest));
	}
	out->nstreams = n;
	*budget -= n;
	free(info);
	return 0;
}

int app_metrics_session(const struct mux_session *m, uint64_t id, uint64_t start_ms,
                        const struct sockaddr *peer, int streams, int addresses,
                        size_t *budget, struct metrics_session *out)
{
	struct sctp_assoc_stats as;
	struct mux_stats ms;
	uint64_t now = clock_now_ms();

	memset(out, 0, sizeof(*out));
	out->id = id;
	out->state = mux_session_is_up(m) ? "up" : "connecting";
	out->age_ms = now >= start_ms ? now - start_ms : 0;
	if (addresses && peer != NULL)
		netaddr_format(peer, out->peer, sizeof(out->peer));
	mux_session_assoc_stats(m, &as);
	fill_sctp(out, &as);
	if (as.have_wire)
		fill_wire(out, &as.wire, addresses);
	mux_session_stats(m, &ms);
	out->streams_active = ms.streams_active;
	out->streams_opened = ms.streams_opened;
	out->streams_refused = ms.streams_refused;
	out->mux_mem = ms.mem;
	if (streams && fill_streams(out, m, ms.streams_active, addresses, budget) < 0)
		return -1;
	return 0;
}

int app_metrics_collect(struct metrics_snapshot *s, int streams, void *arg)
{
	const struct app_metrics *am = arg;
	uint64_t now = clock_now_ms();
	size_t budget = APP_METRICS_STREAMS_MAX;
	int r;

	s->role = am->role;
	s->engine = sctp_engine_name(am->sctp->engine);
	s->cc = sctp_cc_name(am->sctp);
	s->version = SCTPT_VERSION;
	s->uptime_s = now >= am->start_ms ? (now - am->start_ms) / 1000 : 0;
	s->c = metrics_counters;
	if (am->srv != NULL)
		return server_metrics(am->srv, streams, am->addresses, &budget, s);
	if (am->up == NULL)
		return 0;
	s->sessions = calloc(1, sizeof(*s->sessions));
	if (s->sessions == NULL)
		return -1;
	r = upstream_metrics(am->up, streams, am->addresses, &budget, &s->sessions[0]);
	if (r < 0)
		return -1;
	s->nsessions = (size_t)r;
	return 0;
}
