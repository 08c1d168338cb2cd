/*
 * The two views of a metrics snapshot: Prometheus text exposition format
 * (version 0.0.4) and JSON.  Pure: a snapshot in, text out.
 *
 * Prometheus wants every sample of a family together under one HELP and
 * one TYPE line, so the text is written family by family, each walking
 * the sessions.  Label values are escaped (\\, \", \n); the only strings
 * that can hold outside data are addresses, and those are present only
 * when the operator opted in.
 */
#include "metrics/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct metrics_counters metrics_counters;

void mbuf_init(struct mbuf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void mbuf_free(struct mbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static int mbuf_reserve(struct mbuf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->err)
		return -1;
	if (b->len + n + 1 <= b->cap)
		return 0;
	if (b->len + n + 1 > b->max) {
		b->err = 1;
		return -1;
	}
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + n + 1)
		cap *= 2;
	if (cap > b->max)
		cap = b->max;
	p = realloc(b->p, cap);
	if (p == NULL) {
		b->err = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

static void mbuf_add(struct mbuf *b, const char *s, size_t n)
{
	if (mbuf_reserve(b, n) < 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void mbuf_printf(struct mbuf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	if (b->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = 1;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		mbuf_add(b, small, (size_t)n);
		return;
	}
	if (mbuf_reserve(b, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void metrics_snapshot_clear(struct metrics_snapshot *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nsessions; i++)
		free(s->sessions[i].streams);
	free(s->sessions);
	s->sessions = NULL;
	s->nsessions = 0;
}

/* ---------- Prometheus ---------- */

/* A label value: \ " and newline escaped; other bytes as they are. */
static void prom_escape(struct mbuf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			mbuf_add(b, "\\\\", 2);
		else if (*s == '"')
			mbuf_add(b, "\\\"", 2);
		else if (*s == '\n')
			mbuf_add(b, "\\n", 2);
		else
			mbuf_add(b, s, 1);
	}
}

static void family(struct mbuf *b, const char *name, const char *type, const char *help)
{
	mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_u(struct mbuf *b, const char *name, const char *labels, uint64_t v)
{
	mbuf_printf(b, "%s%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
	            labels[0] ? "}" : "", (unsigned long long)v);
}

/* Milliseconds as seconds, exactly (no floating point). */
static void sample_ms(struct mbuf *b, const char *name, const char *labels, uint64_t ms)
{
	mbuf_printf(b, "%s%s%s%s %llu.%03llu\n", name, labels[0] ? "{" : "", labels,
	            labels[0] ? "}" : "", (unsigned long long)(ms / 1000),
	            (unsigned long long)(ms % 1000));
}

/* One family with one sample per session: value read by get(). */
typedef uint64_t (*sess_get)(const struct metrics_session *ss);

static void per_session(struct mbuf *b, const struct metrics_snapshot *s, const char *name,
                        const char *type, const char *help, unsigned need, sess_get get,
                        int as_ms)
{
	char labels[64];
	int any = 0;

	for (size_t i = 0; i < s->nsessions; i++) {
		const struct metrics_session *ss = &s->sessions[i];

		if ((ss->have & need) != need)
			continue;
		if (!any)
			family(b, name, type, help);
		any = 1;
		snprintf(labels, sizeof(labels), "session=\"%llu\"", (unsigned long long)ss->id);
		if (as_ms)
			sample_ms(b, name, labels, get(ss));
		else
			sample_u(b, name, labels, get(ss));
	}
}

#define GETTER(field) \
	static uint64_t get_##field(const struct metrics_session *ss) { return ss->field; }
GETTER(srtt_ms)
GETTER(rttvar_ms)
GETTER(rto_ms)
GETTER(cwnd)
GETTER(ssthresh)
GETTER(flight)
GETTER(peer_rwnd)
GETTER(retransmissions)
GETTER(fast_retransmissions)
GETTER(t3_expiries)
GETTER(tlp_probes)
GETTER(sctp_packets_sent)
GETTER(min_rtt_ms)
GETTER(reo_wnd_ms)
GETTER(rack_losses)
GETTER(tlp_losses)
GETTER(spurious_rtx)
GETTER(spurious_rto)
GETTER(undos)
GETTER(sacks_sent)
GETTER(sacks_received)
GETTER(dup_tsns)
GETTER(data_dropped)
GETTER(pacing_rate)
GETTER(pace_waits)
GETTER(btl_bw)
GETTER(delivery_rate)
GETTER(handshake_failures)
GETTER(streams_active)
GETTER(streams_opened)
GETTER(streams_refused)
GETTER(mux_mem)
GETTER(age_ms)

/* A per-session family split by direction (in/out). */
static void per_session_dir(struct mbuf *b, const struct metrics_snapshot *s,
                            const char *name, const char *help, int packets)
{
	char labels[96];

	family(b, name, "counter", help);
	for (size_t i = 0; i < s->nsessions; i++) {
		const struct metrics_session *ss = &s->sessions[i];

		snprintf(labels, sizeof(labels), "session=\"%llu\",direction=\"in\"",
		         (unsigned long long)ss->id);
		sample_u(b, name, labels, packets ? ss->packets_in : ss->bytes_in);
		snprintf(labels, sizeof(labels), "session=\"%llu\",direction=\"out\"",
		         (unsigned long long)ss->id);
		sample_u(b, name, labels, packets ? ss->packets_out : ss->bytes_out);
	}
}

static void prom_process(struct mbuf *b, const struct metrics_snapshot *s)
{
	family(b, "sctpt_info", "gauge", "Build and configuration of this process (always 1).");
	mbuf_printf(b, "sctpt_info{role=\"");
	prom_escape(b, s->role ? s->role : "");
	mbuf_printf(b, "\",engine=\"");
	prom_escape(b, s->engine ? s->engine : "");
	mbuf_printf(b, "\",cc=\"");
	prom_escape(b, s->cc ? s->cc : "");
	mbuf_printf(b, "\",version=\"");
	prom_escape(b, s->version ? s->version : "");
	mbuf_printf(b, "\"} 1\n");
	family(b, "sctpt_uptime_seconds", "gauge", "Seconds since the process started.");
	sample_u(b, "sctpt_uptime_seconds", "", s->uptime_s);
	family(b, "sctpt_sessions", "gauge", "Associations (sessions) open now.");
	sample_u(b, "sctpt_sessions", "", s->nsessions);
	family(b, "sctpt_sessions_established_total", "counter",
	       "Associations that came up.");
	sample_u(b, "sctpt_sessions_established_total", "", s->c.sessions_established);
	family(b, "sctpt_sessions_closed_total", "counter",
	       "Associations that ended after coming up.");
	sample_u(b, "sctpt_sessions_closed_total", "", s->c.sessions_closed);
	family(b, "sctpt_connections_accepted_total", "counter",
	       "Client: SOCKS/HTTP requests relayed; "
	       "server: streams connected to their destination.");
	sample_u(b, "sctpt_connections_accepted_total", "", s->c.conn_accepted);
	family(b, "sctpt_connections_refused_total", "counter",
	       "Connections refused, by reason (client: locally or by the server's code; "
	       "server: the code it answered).");
	for (int r = 0; r < MR_COUNT; r++) {
		char labels[64];

		snprintf(labels, sizeof(labels), "reason=\"%s\"", metrics_refusal_name(r));
		sample_u(b, "sctpt_connections_refused_total", labels, s->c.conn_refused[r]);
	}
	family(b, "sctpt_handshake_failures_total", "counter",
	       "Client: connection attempts to the server that failed (handshake or association setup).");
	sample_u(b, "sctpt_handshake_failures_total", "", s->c.handshake_failures);
	if (!s->have_probes)
		return;
	family(b, "sctpt_handshakes_total", "counter", "Server: authentic HELLOs answered.");
	sample_u(b, "sctpt_handshakes_total", "", s->handshakes);
	family(b, "sctpt_rebinds_total", "counter",
	       "Server: sessions that moved to a new client address.");
	sample_u(b, "sctpt_rebinds_total", "", s->rebinds);
	family(b, "sctpt_probes_dropped_total", "counter",
	       "Server: packets dropped without an answer, by reason.");
	for (int p = 0; p < MP_COUNT; p++) {
		char labels[64];

		snprintf(labels, sizeof(labels), "reason=\"%s\"", metrics_probe_name(p));
		sample_u(b, "sctpt_probes_dropped_total", labels, s->probes[p]);
	}
}

/* The controller each session runs now: it can differ from the process's
 * (sctpt_info's cc) when a session rides the TCP carrier. */
static void prom_cc(struct mbuf *b, const struct metrics_snapshot *s)
{
	int any = 0;

	for (size_t i = 0; i < s->nsessions; i++) {
		const struct metrics_session *ss = &s->sessions[i];

		if (ss->cc == NULL)
			continue;
		if (!any)
			family(b, "sctpt_session_cc_info", "gauge",
			       "The congestion controller a session runs now (always 1).");
		any = 1;
		mbuf_printf(b, "sctpt_session_cc_info{session=\"%llu\",cc=\"",
		            (unsigned long long)ss->id);
		prom_escape(b, ss->cc);
		mbuf_printf(b, "\"} 1\n");
	}
}

/*
 * Loss recovery and pacing (native engine): a table rather than one call
 * each, so that the families, their units and the bit that gates them
 * read side by side.
 */
static void prom_recovery(struct mbuf *b, const struct metrics_snapshot *s)
{
	static const struct {
		const char *name, *type, *help;
		unsigned need;
		sess_get get;
		int as_ms;
	} fam[] = {
		{ "sctpt_session_min_rtt_seconds", "gauge",
		  "Smallest round-trip time seen recently (RACK's min_rtt).",
		  MS_HAVE_MIN_RTT, get_min_rtt_ms, 1 },
		{ "sctpt_session_reordering_window_seconds", "gauge",
		  "RACK reordering window now.", MS_HAVE_RACK, get_reo_wnd_ms, 1 },
		{ "sctpt_session_rack_losses_total", "counter",
		  "Chunks declared lost by RACK (time-based).", MS_HAVE_RACK, get_rack_losses, 0 },
		{ "sctpt_session_tlp_losses_total", "counter",
		  "Tail-loss probes that repaired a loss.", MS_HAVE_RACK, get_tlp_losses, 0 },
		{ "sctpt_session_spurious_retransmissions_total", "counter",
		  "Retransmissions later proven needless.", MS_HAVE_SPURIOUS, get_spurious_rtx, 0 },
		{ "sctpt_session_spurious_rtos_total", "counter",
		  "T3-rtx expiries later proven needless.", MS_HAVE_SPURIOUS, get_spurious_rto, 0 },
		{ "sctpt_session_undos_total", "counter",
		  "Congestion responses undone because the loss was spurious.",
		  MS_HAVE_SPURIOUS, get_undos, 0 },
		{ "sctpt_session_sacks_sent_total", "counter",
		  "SACK chunks sent.", MS_HAVE_SACKS, get_sacks_sent, 0 },
		{ "sctpt_session_sacks_received_total", "counter",
		  "SACK chunks received.", MS_HAVE_SACKS, get_sacks_received, 0 },
		{ "sctpt_session_duplicate_tsns_total", "counter",
		  "DATA chunks received twice.", MS_HAVE_RCV, get_dup_tsns, 0 },
		{ "sctpt_session_data_dropped_total", "counter",
		  "DATA chunks dropped: over our receive window or TSN map.",
		  MS_HAVE_RCV, get_data_dropped, 0 },
		{ "sctpt_session_pacing_rate_bytes_per_second", "gauge",
		  "Pacing rate now (0: not paced).", MS_HAVE_PACING, get_pacing_rate, 0 },
		{ "sctpt_session_pace_waits_total", "counter",
		  "Flushes the pacer cut short (packets held back to keep the rate).",
		  MS_HAVE_PACING, get_pace_waits, 0 },
		{ "sctpt_session_bottleneck_bandwidth_bytes_per_second", "gauge",
		  "BBR's bottleneck bandwidth estimate.", MS_HAVE_BTL_BW, get_btl_bw, 0 },
		{ "sctpt_session_delivery_rate_bytes_per_second", "gauge",
		  "Latest delivery-rate sample.", MS_HAVE_DELIVERY, get_delivery_rate, 0 },
	};

	prom_cc(b, s);
	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++)
		per_session(b, s, fam[f].name, fam[f].type, fam[f].help, fam[f].need,
		            fam[f].get, fam[f].as_ms);
}

static void prom_paths(struct mbuf *b, const struct metrics_snapshot *s)
{
	int any = 0;

	for (size_t i = 0; i < s->nsessions; i++) {
		const struct metrics_session *ss = &s->sessions[i];

		for (unsigned k = 0; k < ss->npaths; k++) {
			const struct metrics_path *p = &ss->paths[k];

			if (!any)
				family(b, "sctpt_session_path_info", "gauge",
				       "Paths of each session (always 1): kind udp/tcp, state active/standby/failed.");
			any = 1;
			mbuf_printf(b, "sctpt_session_path_info{session=\"%llu\",path=\"%u\","
			            "kind=\"%s\",state=\"%s\"", (unsigned long long)ss->id, k,
			            p->kind, p->state);
			if (p->addr[0] != '\0') {
				mbuf_printf(b, ",address=\"");
				prom_escape(b, p->addr);
				mbuf_printf(b, "\"");
			}
			mbuf_printf(b, "} 1\n");
		}
	}
	any = 0;
	for (size_t i = 0; i < s->nsessions; i++) {
		const struct metrics_session *ss = &s->sessions[i];

		for (unsigned k = 0; k < ss->npaths; k++) {
			char labels[64];

			if (ss->paths[k].last_rx_ms < 0)
				continue;
			if (!any)
				family(b, "sctpt_session_path_last_receive_seconds", "gauge",
				       "Seconds since the path last delivered an authentic packet.");
			any = 1;
			snprintf(labels, sizeof(labels), "session=\"%llu\",path=\"%u\"",
			         (unsigned long long)ss->id, k);
			sample_ms(b, "sctpt_session_path_last_receive_seconds", labels,
			          (uint64_t)ss->paths[k].last_rx_ms);
		}
	}
}

static void prom_peers(struct mbuf *b, const struct metrics_snapshot *s)
{
	int any = 0;

	for (size_t i = 0; i < s->nsessions; i++) {
		const struct metrics_session *ss = &s->sessions[i];

		if (ss->peer[0] == '\0')
			continue;
		if (!any)
			family(b, "sctpt_session_peer_info", "gauge",
			       "The peer's address of each session (only with --metrics-addresses).");
		any = 1;
		mbuf_printf(b, "sctpt_session_peer_info{session=\"%llu\",address=\"",
		            (unsigned long long)ss->id);
		prom_escape(b, ss->peer);
		mbuf_printf(b, "\"} 1\n");
	}
}

static void prom_streams(struct mbuf *b, const struct metrics_snapshot *s)
{
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{ "sctpt_stream_bytes_total", "counter", "Stream payload bytes, by direction." },
		{ "sctpt_stream_credit_bytes", "gauge",
		  "Flow-control credit: tx what we may still send, rx what the peer may still send us." },
		{ "sctpt_stream_queued_bytes", "gauge", "Bytes held in the stream's queues." },
		{ "sctpt_stream_age_seconds", "gauge", "Seconds since the stream was opened." },
	};
	char labels[160];

	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		int any = 0;

		for (size_t i = 0; i < s->nsessions; i++) {
			const struct metrics_session *ss = &s->sessions[i];

			for (size_t k = 0; k < ss->nstreams; k++) {
				const struct metrics_stream *st = &ss->streams[k];
				int n = snprintf(labels, sizeof(labels),
				                 "session=\"%llu\",stream=\"%u\"",
				                 (unsigned long long)ss->id, st->sid);

				if (!any)
					family(b, fam[f].name, fam[f].type, fam[f].help);
				any = 1;
				switch (f) {
				case 0:
					snprintf(labels + n, sizeof(labels) - n, ",direction=\"in\"");
					sample_u(b, fam[f].name, labels, st->bytes_in);
					snprintf(labels + n, sizeof(labels) - n, ",direction=\"out\"");
					sample_u(b, fam[f].name, labels, st->bytes_out);
					break;
				case 1:
					snprintf(labels + n, sizeof(labels) - n, ",direction=\"tx\"");
					sample_u(b, fam[f].name, labels, st->credit_tx);
					snprintf(labels + n, sizeof(labels) - n, ",direction=\"rx\"");
					sample_u(b, fam[f].name, labels, st->credit_rx);
					break;
				case 2:
					sample_u(b, fam[f].name, labels, st->queued);
					break;
				default:
					sample_ms(b, fam[f].name, labels, st->age_ms);
					break;
				}
			}
		}
	}
}

int metrics_render_prometheus(const struct metrics_snapshot *s, int streams, struct mbuf *b)
{
	prom_process(b, s);
	per_session(b, s, "sctpt_session_age_seconds", "gauge",
	            "Seconds since the session was admitted.", 0, get_age_ms, 1);
	per_session(b, s, "sctpt_session_srtt_seconds", "gauge",
	            "Smoothed round-trip time.", MS_HAVE_RTT, get_srtt_ms, 1);
	per_session(b, s, "sctpt_session_rttvar_seconds", "gauge",
	            "Round-trip time variation.", MS_HAVE_RTTVAR, get_rttvar_ms, 1);
	per_session(b, s, "sctpt_session_rto_seconds", "gauge",
	            "Retransmission timeout now.", MS_HAVE_RTT, get_rto_ms, 1);
	per_session(b, s, "sctpt_session_cwnd_bytes", "gauge",
	            "Congestion window.", MS_HAVE_CWND, get_cwnd, 0);
	per_session(b, s, "sctpt_session_ssthresh_bytes", "gauge",
	            "Slow-start threshold.", MS_HAVE_FLIGHT, get_ssthresh, 0);
	per_session(b, s, "sctpt_session_flight_bytes", "gauge",
	            "Bytes sent and not yet acknowledged.", MS_HAVE_FLIGHT, get_flight, 0);
	per_session(b, s, "sctpt_session_peer_rwnd_bytes", "gauge",
	            "The peer's receive window.", MS_HAVE_RWND, get_peer_rwnd, 0);
	per_session(b, s, "sctpt_session_retransmissions_total", "counter",
	            "DATA chunks sent again.", MS_HAVE_RTX, get_retransmissions, 0);
	per_session(b, s, "sctpt_session_fast_retransmissions_total", "counter",
	            "Chunks declared lost by the 3-miss rule.", MS_HAVE_RTX_KIND,
	            get_fast_retransmissions, 0);
	per_session(b, s, "sctpt_session_t3_expiries_total", "counter",
	            "Retransmission timer (T3-rtx) expiries.", MS_HAVE_RTX_KIND, get_t3_expiries, 0);
	per_session(b, s, "sctpt_session_tlp_probes_total", "counter",
	            "Tail-loss probes sent.", MS_HAVE_RTX_KIND, get_tlp_probes, 0);
	per_session(b, s, "sctpt_session_sctp_packets_sent_total", "counter",
	            "SCTP packets the engine sent.", MS_HAVE_SCTP_PKT, get_sctp_packets_sent, 0);
	prom_recovery(b, s);
	per_session_dir(b, s, "sctpt_session_bytes_total",
	                "Carrier payload bytes (sealed datagrams), by direction.", 0);
	per_session_dir(b, s, "sctpt_session_packets_total",
	                "Carrier datagrams, by direction.", 1);
	per_session(b, s, "sctpt_session_handshake_failures_total", "counter",
	            "Client: failed connection attempts before this session came up.", 0,
	            get_handshake_failures, 0);
	per_session(b, s, "sctpt_session_streams", "gauge",
	            "Streams open now.", 0, get_streams_active, 0);
	per_session(b, s, "sctpt_session_streams_opened_total", "counter",
	            "Streams opened.", 0, get_streams_opened, 0);
	per_session(b, s, "sctpt_session_streams_refused_total", "counter",
	            "Stream OPENs refused for a limit or the memory budget.", 0,
	            get_streams_refused, 0);
	per_session(b, s, "sctpt_session_memory_bytes", "gauge",
	            "Bytes counted against the session's memory budget.", 0, get_mux_mem, 0);
	prom_paths(b, s);
	prom_peers(b, s);
	if (streams)
		prom_streams(b, s);
	return b->err ? -1 : 0;
}

/* ---------- JSON ---------- */

static void json_str(struct mbuf *b, const char *s)
{
	mbuf_add(b, "\"", 1);
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };

			mbuf_add(b, e, 2);
		} else if (c < 0x20 || c >= 0x7f) {
			/* Addresses are ASCII; anything else is escaped rather
			 * than risk invalid UTF-8 in the output. */
			mbuf_printf(b, "\\u%04x", c);
		} else {
			mbuf_add(b, s, 1);
		}
	}
	mbuf_add(b, "\"", 1);
}

static void json_u(struct mbuf *b, const char *key, uint64_t v, int comma)
{
	mbuf_printf(b, "%s\"%s\":%llu", comma ? "," : "", key, (unsigned long long)v);
}

static void json_process(struct mbuf *b, const struct metrics_snapshot *s)
{
	mbuf_printf(b, "\"process\":{\"role\":");
	json_str(b, s->role);
	mbuf_printf(b, ",\"engine\":");
	json_str(b, s->engine);
	if (s->cc != NULL) {
		mbuf_printf(b, ",\"cc\":");
		json_str(b, s->cc);
	}
	mbuf_printf(b, ",\"version\":");
	json_str(b, s->version);
	json_u(b, "uptime_s", s->uptime_s, 1);
	json_u(b, "sessions", s->nsessions, 1);
	json_u(b, "sessions_established", s->c.sessions_established, 1);
	json_u(b, "sessions_closed", s->c.sessions_closed, 1);
	json_u(b, "connections_accepted", s->c.conn_accepted, 1);
	mbuf_printf(b, ",\"connections_refused\":{");
	for (int r = 0; r < MR_COUNT; r++)
		json_u(b, metrics_refusal_name(r), s->c.conn_refused[r], r > 0);
	mbuf_printf(b, "}");
	json_u(b, "handshake_failures", s->c.handshake_failures, 1);
	if (s->have_probes) {
		json_u(b, "handshakes", s->handshakes, 1);
		json_u(b, "rebinds", s->rebinds, 1);
		mbuf_printf(b, ",\"probes_dropped\":{");
		for (int p = 0; p < MP_COUNT; p++)
			json_u(b, metrics_probe_name(p), s->probes[p], p > 0);
		mbuf_printf(b, "}");
	}
	mbuf_printf(b, "}");
}

static void json_stream(struct mbuf *b, const struct metrics_stream *st)
{
	mbuf_printf(b, "{\"id\":%u,\"state\":", st->sid);
	json_str(b, st->state);
	json_u(b, "bytes_in", st->bytes_in, 1);
	json_u(b, "bytes_out", st->bytes_out, 1);
	json_u(b, "credit_tx", st->credit_tx, 1);
	json_u(b, "credit_rx", st->credit_rx, 1);
	json_u(b, "window", st->window, 1);
	json_u(b, "queued", st->queued, 1);
	json_u(b, "age_ms", st->age_ms, 1);
	if (st->dest[0] != '\0') {
		mbuf_printf(b, ",\"destination\":");
		json_str(b, st->dest);
	}
	mbuf_printf(b, "}");
}

/* Loss recovery and pacing: the numbers of prom_recovery(), same bits. */
static void json_recovery(struct mbuf *b, const struct metrics_session *ss)
{
	if (ss->cc != NULL) {
		mbuf_printf(b, ",\"cc\":");
		json_str(b, ss->cc);
	}
	if (ss->have & MS_HAVE_MIN_RTT)
		json_u(b, "min_rtt_ms", ss->min_rtt_ms, 1);
	if (ss->have & MS_HAVE_RACK) {
		json_u(b, "reo_wnd_ms", ss->reo_wnd_ms, 1);
		json_u(b, "rack_losses", ss->rack_losses, 1);
		json_u(b, "tlp_losses", ss->tlp_losses, 1);
	}
	if (ss->have & MS_HAVE_SPURIOUS) {
		json_u(b, "spurious_retransmissions", ss->spurious_rtx, 1);
		json_u(b, "spurious_rtos", ss->spurious_rto, 1);
		json_u(b, "undos", ss->undos, 1);
	}
	if (ss->have & MS_HAVE_SACKS) {
		json_u(b, "sacks_sent", ss->sacks_sent, 1);
		json_u(b, "sacks_received", ss->sacks_received, 1);
	}
	if (ss->have & MS_HAVE_RCV) {
		json_u(b, "dup_tsns", ss->dup_tsns, 1);
		json_u(b, "data_dropped", ss->data_dropped, 1);
	}
	if (ss->have & MS_HAVE_PACING) {
		json_u(b, "pacing_rate", ss->pacing_rate, 1);
		json_u(b, "pace_waits", ss->pace_waits, 1);
	}
	if (ss->have & MS_HAVE_BTL_BW)
		json_u(b, "btl_bw", ss->btl_bw, 1);
	if (ss->have & MS_HAVE_DELIVERY)
		json_u(b, "delivery_rate", ss->delivery_rate, 1);
}

static void json_session(struct mbuf *b, const struct metrics_session *ss, int streams)
{
	json_u(b, "id", ss->id, 0);
	mbuf_printf(b, ",\"state\":");
	json_str(b, ss->state);
	json_u(b, "age_ms", ss->age_ms, 1);
	if (ss->peer[0] != '\0') {
		mbuf_printf(b, ",\"peer\":");
		json_str(b, ss->peer);
	}
	if (ss->have & MS_HAVE_RTT) {
		json_u(b, "srtt_ms", ss->srtt_ms, 1);
		json_u(b, "rto_ms", ss->rto_ms, 1);
	}
	if (ss->have & MS_HAVE_RTTVAR)
		json_u(b, "rttvar_ms", ss->rttvar_ms, 1);
	if (ss->have & MS_HAVE_CWND)
		json_u(b, "cwnd", ss->cwnd, 1);
	if (ss->have & MS_HAVE_FLIGHT) {
		json_u(b, "ssthresh", ss->ssthresh, 1);
		json_u(b, "flight", ss->flight, 1);
	}
	if (ss->have & MS_HAVE_RWND)
		json_u(b, "peer_rwnd", ss->peer_rwnd, 1);
	if (ss->have & MS_HAVE_RTX)
		json_u(b, "retransmissions", ss->retransmissions, 1);
	if (ss->have & MS_HAVE_RTX_KIND) {
		json_u(b, "fast_retransmissions", ss->fast_retransmissions, 1);
		json_u(b, "t3_expiries", ss->t3_expiries, 1);
		json_u(b, "tlp_probes", ss->tlp_probes, 1);
	}
	if (ss->have & MS_HAVE_SCTP_PKT)
		json_u(b, "sctp_packets_sent", ss->sctp_packets_sent, 1);
	json_recovery(b, ss);
	json_u(b, "bytes_in", ss->bytes_in, 1);
	json_u(b, "bytes_out", ss->bytes_out, 1);
	json_u(b, "packets_in", ss->packets_in, 1);
	json_u(b, "packets_out", ss->packets_out, 1);
	json_u(b, "handshake_failures", ss->handshake_failures, 1);
	json_u(b, "streams_active", ss->streams_active, 1);
	json_u(b, "streams_opened", ss->streams_opened, 1);
	json_u(b, "streams_refused", ss->streams_refused, 1);
	json_u(b, "memory", ss->mux_mem, 1);
	mbuf_printf(b, ",\"paths\":[");
	for (unsigned k = 0; k < ss->npaths; k++) {
		const struct metrics_path *p = &ss->paths[k];

		mbuf_printf(b, "%s{\"index\":%u,\"kind\":", k ? "," : "", k);
		json_str(b, p->kind);
		mbuf_printf(b, ",\"state\":");
		json_str(b, p->state);
		if (p->last_rx_ms >= 0)
			json_u(b, "last_rx_ms", (uint64_t)p->last_rx_ms, 1);
		if (p->addr[0] != '\0') {
			mbuf_printf(b, ",\"address\":");
			json_str(b, p->addr);
		}
		mbuf_printf(b, "}");
	}
	mbuf_printf(b, "]");
	if (streams) {
		if (ss->streams_truncated)
			mbuf_printf(b, ",\"streams_truncated\":true");
		mbuf_printf(b, ",\"streams\":[");
		for (size_t k = 0; k < ss->nstreams; k++) {
			if (k > 0)
				mbuf_printf(b, ",");
			json_stream(b, &ss->streams[k]);
		}
		mbuf_printf(b, "]");
	}
}

int metrics_render_json(const struct metrics_snapshot *s, int streams, struct mbuf *b)
{
	mbuf_printf(b, "{\"schema\":1,");
	json_process(b, s);
	mbuf_printf(b, ",\"sessions\":[");
	for (size_t i = 0; i < s->nsessions; i++) {
		mbuf_printf(b, "%s{", i ? "," : "");
		json_session(b, &s->sessions[i], streams);
		mbuf_printf(b, "}");
	}
	mbuf_printf(b, "]}\n");
	return b->err ? -1 : 0;
}
