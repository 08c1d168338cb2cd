/*
 * The REST API of `sctpt-lab impair` (libevent's evhttp, JSON via jansson):
 *
 *   GET  /settings            both directions' settings
 *   PUT  /settings            partial update, e.g. {"c2s": {"loss": 0.05}}
 *   POST /settings            the same
 *   GET  /stats               counters per direction, mode, seed
 *   GET  /flows               datagram flows (stream mode: connections)
 *   POST /rebind              {"flow": ID} or {} for all: new upstream port
 *   GET  /rules               the named rules, with their counters
 *   POST /rules               add one ({"name", "direction", "kind", ...})
 *   GET/PUT/DELETE /rules/NAME  one rule: read, create or replace, remove
 *   POST /reset               no rules, no impairment ({"counters": true}
 *                             zeroes the counters too)
 *   GET  /presets, POST /preset {"name": N}   link presets
 *   GET  /metrics             Prometheus text format
 *
 * Everything a client sends is hostile: a bad request gets 400 (413 for a
 * body over API_MAX_BODY) with {"error": "..."} and changes nothing.
 *
 * Who may call: any web page the researcher opens can make the browser
 * send requests to a loopback port (CSRF), and after DNS rebinding read the
 * answers too.  So the Host header must name the address the request
 * reached (or localhost:PORT on loopback), an Origin header, if present,
 * must be that same http:// origin, a request with a body must say it is
 * application/json (a form or a "simple" cross-origin fetch cannot, without
 * a CORS preflight we never grant), and with --api-token the request must
 * carry "Authorization: Bearer TOKEN".  403, 415 and 401 otherwise.
 */
#include "lab/impair/impair_internal.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "util/log.h"

#define API_MAX_BODY 8192          /* larger: 413 with a JSON error */
#define API_HTTP_MAX_BODY 65536    /* larger still: evhttp refuses it itself */
#define API_MAX_HEADERS 8192
#define API_TIMEOUT_S 10
#define API_HOST_MAX 80            /* "[v6 address]:port" */

/* Refusals: a few lines, then a count, however many come. */
static struct log_ratelimit api_refused_rl = LOG_RATELIMIT_INIT(10.0, 5);
/* Rule, preset and reset changes: a controller's timeline, not a flood. */
static struct log_ratelimit api_change_rl = LOG_RATELIMIT_INIT(10.0, 20);

struct impair_api {
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	struct impair_api_ctx *ctx;
	uint64_t started_us;
};

static void reply_json(struct evhttp_request *req, int code, const char *reason, json_t *j)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	if (text == NULL) {
		evbuffer_add_printf(out, "{\"error\":\"out of memory\"}\n");
		evhttp_send_reply(req, 500, "Internal Server Error", out);
	} else {
		evbuffer_add_printf(out, "%s\n", text);
		evhttp_send_reply(req, code, reason, out);
	}
	free(text);
	json_decref(j);
}

static void reply_error(struct evhttp_request *req, int code, const char *reason,
                        const char *msg)
{
	reply_json(req, code, reason, json_pack("{s:s}", "error", msg));
}

/* The request body as text, or NULL (error already sent). *len set. */
static char *read_body(struct evhttp_request *req, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	char *buf;

	if (!impair_access_json(evhttp_find_header(evhttp_request_get_input_headers(req),
	                                           "Content-Type"))) {
		reply_error(req, 415, "Unsupported Media Type",
		            "send the body with Content-Type: application/json");
		return NULL;
	}
	if (n > API_MAX_BODY) {
		reply_error(req, 413, "Payload Too Large", "request body too large");
		return NULL;
	}
	buf = malloc(n + 1);
	if (buf == NULL) {
		reply_error(req, 500, "Internal Server Error", "out of memory");
		return NULL;
	}
	evbuffer_remove(in, buf, n);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void settings_cb(struct impair_api *a, struct evhttp_request *req,
                        enum evhttp_cmd_type cmd)
{
	struct impair_settings s;
	char err[256];
	char *body;
	size_t len;

	if (cmd == EVHTTP_REQ_GET) {
		reply_json(req, 200, "OK", impair_settings_to_json(
		        impair_engine_settings(a->ctx->engine)));
		return;
	}
	if (cmd != EVHTTP_REQ_PUT && cmd != EVHTTP_REQ_POST) {
		reply_error(req, 405, "Method Not Allowed", "use GET, PUT or POST");
		return;
	}
	body = read_body(req, &len);
	if (body == NULL)
		return;
	s = *impair_engine_settings(a->ctx->engine);
	if (impair_settings_update_text(&s, body, len, err, sizeof(err)) < 0) {
		free(body);
		reply_error(req, 400, "Bad Request", err);
		return;
	}
	free(body);
	impair_engine_set_settings(a->ctx->engine, &s);
	log_notice("impair: settings changed through the API");
	reply_json(req, 200, "OK", impair_settings_to_json(&s));
}

static void stats_cb(struct impair_api *a, struct evhttp_request *req)
{
	struct impair_engine *e = a->ctx->engine;
	json_t *flows = NULL;
	json_int_t nflows = 0;

	if (a->ctx->udp)
		flows = impair_udp_flows(a->ctx->udp);
	else if (a->ctx->tcp)
		flows = impair_tcp_conns(a->ctx->tcp);
	if (flows)
		nflows = (json_int_t)json_array_size(flows);
	json_decref(flows);
	reply_json(req, 200, "OK", json_pack("{s:o, s:o, s:s, s:I, s:I, s:I}",
	        "c2s", impair_counters_to_json(&impair_engine_shaper(e, IMPAIR_C2S)->c),
	        "s2c", impair_counters_to_json(&impair_engine_shaper(e, IMPAIR_S2C)->c),
	        "mode", a->ctx->mode,
	        "seed", (json_int_t)(impair_engine_seed(e) & 0x7fffffffffffffffULL),
	        "flows", nflows,
	        "uptime_ms", (json_int_t)((impair_now_us() - a->started_us) / 1000u)));
}

static void flows_cb(struct impair_api *a, struct evhttp_request *req)
{
	json_t *flows;

	if (a->ctx->udp)
		flows = impair_udp_flows(a->ctx->udp);
	else if (a->ctx->tcp)
		flows = impair_tcp_conns(a->ctx->tcp);
	else
		flows = json_array();
	reply_json(req, 200, "OK", flows);
}

static void rebind_cb(struct impair_api *a, struct evhttp_request *req)
{
	char err[256];
	char *body;
	size_t len;
	json_t *j = NULL, *res;
	long long id = -1;

	if (a->ctx->udp == NULL) {
		reply_error(req, 400, "Bad Request", "rebind needs datagram (udp://) mode");
		return;
	}
	body = read_body(req, &len);
	if (body == NULL)
		return;
	if (len > 0) {
		json_error_t jerr;
		const char *key;
		json_t *val;

		j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
		if (j == NULL || !json_is_object(j)) {
			snprintf(err, sizeof(err), "body must be a JSON object like {\"flow\": 1} or {}");
			goto bad;
		}
		json_object_foreach(j, key, val) {
			if (strcmp(key, "flow") != 0) {
				snprintf(err, sizeof(err), "unknown key '%.40s' (want \"flow\")", key);
				goto bad;
			}
			if (!json_is_integer(val) || json_integer_value(val) < 1) {
				snprintf(err, sizeof(err), "flow must be a flow id (an integer >= 1)");
				goto bad;
			}
			id = (long long)json_integer_value(val);
		}
	}
	free(body);
	json_decref(j);
	res = impair_udp_rebind(a->ctx->udp, id, err, sizeof(err));
	if (res == NULL) {
		reply_error(req, 400, "Bad Request", err);
		return;
	}
	reply_json(req, 200, "OK", json_pack("{s:o}", "rebound", res));
	return;
bad:
	free(body);
	json_decref(j);
	reply_error(req, 400, "Bad Request", err);
}

/* The body as JSON (an empty body is {}), or NULL (error already sent). */
static json_t *read_json(struct evhttp_request *req)
{
	json_error_t jerr;
	char err[200];
	size_t len;
	char *body = read_body(req, &len);
	json_t *j;

	if (body == NULL)
		return NULL;
	j = len == 0 ? json_object() : json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	free(body);
	if (j == NULL) {
		snprintf(err, sizeof(err), "bad JSON at line %d column %d: %.80s", jerr.line,
		         jerr.column, jerr.text);
		reply_error(req, 400, "Bad Request", err);
	}
	return j;
}

static void rules_cb(struct impair_api *a, struct evhttp_request *req, enum evhttp_cmd_type cmd)
{
	struct impair_engine *e = a->ctx->engine;
	struct impair_rules *rs = impair_engine_rules(e);
	struct impair_rule r;
	char err[256];
	json_t *j;

	if (cmd == EVHTTP_REQ_GET) {
		reply_json(req, 200, "OK", impair_rules_to_json(rs));
		return;
	}
	if (cmd != EVHTTP_REQ_POST) {
		reply_error(req, 405, "Method Not Allowed", "use GET or POST (PUT /rules/NAME)");
		return;
	}
	if ((j = read_json(req)) == NULL)
		return;
	if (impair_rule_parse(j, NULL, &r, err, sizeof(err)) < 0) {
		json_decref(j);
		reply_error(req, 400, "Bad Request", err);
		return;
	}
	json_decref(j);
	if (impair_rules_find(rs, r.name) != NULL) {
		reply_error(req, 409, "Conflict", "a rule of that name exists (PUT /rules/NAME "
		            "replaces it)");
		return;
	}
	if (impair_rules_put(rs, &r, 0, impair_engine_seed(e)) < 0) {
		reply_error(req, 409, "Conflict", "too many rules (at most 32)");
		return;
	}
	impair_engine_rules_changed(e);
	log_ratelimited(&api_change_rl, LOG_LEVEL_NOTICE, "impair: rule %s (%s) added through "
	                "the API", r.name, impair_rule_kind_name(r.kind));
	reply_json(req, 201, "Created", impair_rule_to_json(impair_rules_find(rs, r.name)));
}

static void rule_cb(struct impair_api *a, struct evhttp_request *req, enum evhttp_cmd_type cmd,
                    const char *name)
{
	struct impair_engine *e = a->ctx->engine;
	struct impair_rules *rs = impair_engine_rules(e);
	struct impair_rule *old = impair_rule_name_ok(name) ? impair_rules_find(rs, name) : NULL;
	struct impair_rule r;
	char err[256];
	json_t *j;
	int res;

	if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_DELETE) {
		if (old == NULL) {
			reply_error(req, 404, "Not Found", "no such rule");
			return;
		}
		j = impair_rule_to_json(old);
		if (cmd == EVHTTP_REQ_DELETE) {
			(void)impair_rules_del(rs, name);
			impair_engine_rules_changed(e);
			log_ratelimited(&api_change_rl, LOG_LEVEL_NOTICE,
			                "impair: rule %s removed through the API", name);
			j = json_pack("{s:o}", "deleted", j);
		}
		reply_json(req, 200, "OK", j);
		return;
	}
	if (cmd != EVHTTP_REQ_PUT) {
		reply_error(req, 405, "Method Not Allowed", "use GET, PUT or DELETE");
		return;
	}
	if (!impair_rule_name_ok(name)) {
		reply_error(req, 400, "Bad Request", "bad rule name in the URL (1 to 64 of "
		            "A-Z a-z 0-9 _ . -)");
		return;
	}
	if ((j = read_json(req)) == NULL)
		return;
	if (impair_rule_parse(j, name, &r, err, sizeof(err)) < 0) {
		json_decref(j);
		reply_error(req, 400, "Bad Request", err);
		return;
	}
	json_decref(j);
	res = impair_rules_put(rs, &r, 1, impair_engine_seed(e));
	if (res < 0) {
		reply_error(req, 409, "Conflict", "too many rules (at most 32)");
		return;
	}
	impair_engine_rules_changed(e);
	log_ratelimited(&api_change_rl, LOG_LEVEL_NOTICE, "impair: rule %s (%s) %s through the API",
	                r.name, impair_rule_kind_name(r.kind), res ? "replaced" : "added");
	reply_json(req, res ? 200 : 201, res ? "OK" : "Created",
	           impair_rule_to_json(impair_rules_find(rs, r.name)));
}

static void reset_cb(struct impair_api *a, struct evhttp_request *req)
{
	struct impair_engine *e = a->ctx->engine;
	const char *key;
	json_t *j, *val;
	int zero = 0;

	if ((j = read_json(req)) == NULL)
		return;
	if (!json_is_object(j)) {
		json_decref(j);
		reply_error(req, 400, "Bad Request", "body must be {} or {\"counters\": true}");
		return;
	}
	json_object_foreach(j, key, val) {
		if (strcmp(key, "counters") != 0 || !json_is_boolean(val)) {
			json_decref(j);
			reply_error(req, 400, "Bad Request", "body must be {} or {\"counters\": true}");
			return;
		}
		zero = json_is_true(val);
	}
	json_decref(j);
	impair_engine_reset(e);
	if (zero)
		impair_engine_zero_counters(e);
	log_ratelimited(&api_change_rl, LOG_LEVEL_NOTICE, "impair: reset through the API (rules "
	                "removed, no impairment%s)", zero ? ", counters zeroed" : "");
	reply_json(req, 200, "OK", json_pack("{s:o, s:[], s:b}",
	        "settings", impair_settings_to_json(impair_engine_settings(e)),
	        "rules", "counters_zeroed", zero));
}

static void preset_cb(struct impair_api *a, struct evhttp_request *req)
{
	struct impair_settings s;
	const char *name;
	json_t *j;

	if ((j = read_json(req)) == NULL)
		return;
	name = json_string_value(json_object_get(j, "name"));
	if (!json_is_object(j) || json_object_size(j) != 1 || name == NULL) {
		json_decref(j);
		reply_error(req, 400, "Bad Request", "body must be {\"name\": PRESET}");
		return;
	}
	if (impair_preset_apply(name, &s) < 0) {
		char err[160];

		snprintf(err, sizeof(err), "no such preset (there are: %s)", impair_preset_names());
		json_decref(j);
		reply_error(req, 400, "Bad Request", err);
		return;
	}
	log_ratelimited(&api_change_rl, LOG_LEVEL_NOTICE,
	                "impair: preset %.20s applied through the API", name);
	json_decref(j);
	impair_engine_set_settings(a->ctx->engine, &s);
	reply_json(req, 200, "OK", impair_settings_to_json(&s));
}

/* ---- GET /metrics: Prometheus text format 0.0.4 */

static void metric_head(struct evbuffer *o, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(o, "# HELP sctpt_impair_%s %s\n# TYPE sctpt_impair_%s %s\n",
	                    name, help, name, type);
}

static const struct {
	const char *name, *help;
	size_t off;
	int gauge;
} dir_metrics[] = {
#define DM(n, m, h, g) { n, h, offsetof(struct impair_counters, m), g }
	DM("seen_packets_total", seen, "Packets (stream mode: reads) that arrived.", 0),
	DM("seen_bytes_total", bytes_seen, "Bytes that arrived.", 0),
	DM("forwarded_packets_total", forwarded, "Copies handed to the next hop.", 0),
	DM("forwarded_bytes_total", bytes_forwarded, "Bytes handed to the next hop.", 0),
	DM("duplicated_packets_total", duplicated, "Extra copies made.", 0),
	DM("dropped_packets_total", dropped, "Copies dropped, for any reason "
	   "(seen + duplicated = forwarded + dropped + pending).", 0),
	DM("pending_packets", pending, "Copies held for later right now.", 1),
	DM("delayed_packets_total", delayed, "Copies held for any time.", 0),
	DM("reordered_packets_total", reordered, "Copies held back to be overtaken.", 0),
	DM("corrupted_packets_total", corrupted, "Packets a corrupt rule changed.", 0),
#undef DM
};

static const struct {
	const char *reason;
	size_t off;
} drop_reasons[] = {
	{ "loss", offsetof(struct impair_counters, dropped_loss) },
	{ "blackhole", offsetof(struct impair_counters, dropped_blackhole) },
	{ "burst", offsetof(struct impair_counters, dropped_burst) },
	{ "rule", offsetof(struct impair_counters, dropped_rule) },
	{ "queue", offsetof(struct impair_counters, queue_drops) },
	{ "overflow", offsetof(struct impair_counters, dropped_overflow) },
	{ "other", offsetof(struct impair_counters, dropped_other) },
};

static uint64_t field_u64(const void *base, size_t off)
{
	uint64_t v;

	memcpy(&v, (const char *)base + off, sizeof(v));
	return v;
}

static const struct {
	const char *name, *help;
	size_t off;
} rule_metrics[] = {
#define RM(n, m, h) { n, h, offsetof(struct impair_rule_counters, m) }
	RM("rule_packets_total", packets, "Packets a rule applied to."),
	RM("rule_dropped_packets_total", dropped, "Packets a rule dropped (loss, burst, blackhole)."),
	RM("rule_duplicated_packets_total", duplicated, "Extra copies a rule made."),
	RM("rule_delayed_packets_total", delayed, "Copies a rule delayed or held back."),
	RM("rule_corrupted_packets_total", corrupted, "Packets a rule corrupted."),
	RM("rule_queue_drops_total", queue_drops, "Copies dropped at a rate rule's full queue."),
#undef RM
};

static void metrics_cb(struct impair_api *a, struct evhttp_request *req)
{
	struct impair_engine *e = a->ctx->engine;
	const struct impair_rules *rs = impair_engine_rules(e);
	const struct impair_counters *c[2] = { &impair_engine_shaper(e, IMPAIR_C2S)->c,
	                                       &impair_engine_shaper(e, IMPAIR_S2C)->c };
	struct evbuffer *o = evhttp_request_get_output_buffer(req);
	size_t nflows = 0;
	json_t *flows = NULL;

	for (size_t i = 0; i < sizeof(dir_metrics) / sizeof(dir_metrics[0]); i++) {
		metric_head(o, dir_metrics[i].name, dir_metrics[i].gauge ? "gauge" : "counter",
		            dir_metrics[i].help);
		for (int d = 0; d < 2; d++)
			evbuffer_add_printf(o, "sctpt_impair_%s{direction=\"%s\"} %" PRIu64 "\n",
			                    dir_metrics[i].name, impair_dir_name(d),
			                    field_u64(c[d], dir_metrics[i].off));
	}
	metric_head(o, "dropped_by_reason_packets_total", "counter",
	            "Copies dropped, by reason (they add up to dropped_packets_total).");
	for (int d = 0; d < 2; d++)
		for (size_t i = 0; i < sizeof(drop_reasons) / sizeof(drop_reasons[0]); i++)
			evbuffer_add_printf(o, "sctpt_impair_dropped_by_reason_packets_total"
			                    "{direction=\"%s\",reason=\"%s\"} %" PRIu64 "\n",
			                    impair_dir_name(d), drop_reasons[i].reason,
			                    field_u64(c[d], drop_reasons[i].off));
	for (size_t i = 0; i < sizeof(rule_metrics) / sizeof(rule_metrics[0]); i++) {
		metric_head(o, rule_metrics[i].name, "counter", rule_metrics[i].help);
		/* rule names are [A-Za-z0-9_.-]: nothing to escape in a label value */
		for (size_t k = 0; k < rs->n; k++)
			for (int d = 0; d < 2; d++)
				evbuffer_add_printf(o, "sctpt_impair_%s{rule=\"%s\",kind=\"%s\","
				                    "direction=\"%s\"} %" PRIu64 "\n", rule_metrics[i].name,
				                    rs->r[k].name, impair_rule_kind_name(rs->r[k].kind),
				                    impair_dir_name(d),
				                    field_u64(&rs->r[k].st[d].c, rule_metrics[i].off));
	}
	if (a->ctx->udp)
		flows = impair_udp_flows(a->ctx->udp);
	else if (a->ctx->tcp)
		flows = impair_tcp_conns(a->ctx->tcp);
	nflows = flows ? json_array_size(flows) : 0;
	json_decref(flows);
	metric_head(o, "rules", "gauge", "Named rules in place.");
	evbuffer_add_printf(o, "sctpt_impair_rules %zu\n", rs->n);
	metric_head(o, "flows", "gauge", "Datagram flows or TCP connections open.");
	evbuffer_add_printf(o, "sctpt_impair_flows %zu\n", nflows);
	metric_head(o, "uptime_seconds", "gauge", "Seconds since the API started.");
	evbuffer_add_printf(o, "sctpt_impair_uptime_seconds %.3f\n",
	                    (double)(impair_now_us() - a->started_us) / 1e6);
	metric_head(o, "info", "gauge", "The relay's mode and random seed.");
	evbuffer_add_printf(o, "sctpt_impair_info{mode=\"%s\",seed=\"%" PRIu64 "\"} 1\n",
	                    a->ctx->mode, (uint64_t)(impair_engine_seed(e) & 0x7fffffffffffffffULL));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	evhttp_send_reply(req, 200, "OK", o);
}

/*
 * The address the request reached, as a Host header names it
 * ("127.0.0.1:8080", "[::1]:8080"), its port, and whether it is loopback.
 * 0, or -1.
 */
static int api_local_host(struct evhttp_request *req, char *out, size_t outlen,
                          uint16_t *port, int *loopback)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char a[INET6_ADDRSTRLEN];

	if (bev == NULL || getsockname(bufferevent_getfd(bev), (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		*port = ntohs(sin->sin_port);
		*loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
		snprintf(out, outlen, "%s:%u", a, *port);
		return 0;
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;

		*port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], a, sizeof(a));
			*loopback = sin6->sin6_addr.s6_addr[12] == 127;
			snprintf(out, outlen, "%s:%u", a, *port);
		} else {
			inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
			*loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
			snprintf(out, outlen, "[%s]:%u", a, *port);
		}
		return 0;
	}
	return -1;
}

/*
 * Whether the request may go on (see the top of this file); if not, the
 * error is sent.
 */
static int api_admit(struct impair_api *a, struct evhttp_request *req)
{
	struct evkeyvalq *hdr = evhttp_request_get_input_headers(req);
	const char *host = evhttp_find_header(hdr, "Host");
	const char *origin = evhttp_find_header(hdr, "Origin");
	char local[API_HOST_MAX];
	const char *why = NULL;
	uint16_t port;
	int loop;

	if (api_local_host(req, local, sizeof(local), &port, &loop) < 0) {
		reply_error(req, 500, "Internal Server Error", "cannot tell the local address");
		return 0;
	}
	if (!impair_access_host(host, local, port, loop))
		why = "Host must be the API's address";
	else if (!impair_access_origin(origin, local, port, loop))
		why = "cross-origin requests are refused";
	if (why != NULL) {
		/* Not the headers themselves: they are the sender's bytes. */
		log_ratelimited(&api_refused_rl, LOG_LEVEL_NOTICE,
		                "impair: API request refused (403): %s", why);
		reply_error(req, 403, "Forbidden", why);
		return 0;
	}
	if (!impair_access_bearer(evhttp_find_header(hdr, "Authorization"), a->ctx->token)) {
		log_ratelimited(&api_refused_rl, LOG_LEVEL_NOTICE,
		                "impair: API request refused (401): no or wrong bearer token");
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		                  "Bearer realm=\"sctpt-lab impair\"");
		reply_error(req, 401, "Unauthorized",
		            "send Authorization: Bearer TOKEN (the --api-token file)");
		return 0;
	}
	return 1;
}

static void request_cb(struct evhttp_request *req, void *arg)
{
	struct impair_api *a = arg;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

	if (!api_admit(a, req))
		return;
	if (path == NULL) {
		reply_error(req, 400, "Bad Request", "bad request target");
		return;
	}
	if (strcmp(path, "/settings") == 0) {
		settings_cb(a, req, cmd);
	} else if (strcmp(path, "/stats") == 0) {
		if (cmd == EVHTTP_REQ_GET)
			stats_cb(a, req);
		else
			reply_error(req, 405, "Method Not Allowed", "use GET");
	} else if (strcmp(path, "/flows") == 0) {
		if (cmd == EVHTTP_REQ_GET)
			flows_cb(a, req);
		else
			reply_error(req, 405, "Method Not Allowed", "use GET");
	} else if (strcmp(path, "/rebind") == 0) {
		if (cmd == EVHTTP_REQ_POST || cmd == EVHTTP_REQ_PUT)
			rebind_cb(a, req);
		else
			reply_error(req, 405, "Method Not Allowed", "use POST");
	} else if (strcmp(path, "/rules") == 0) {
		rules_cb(a, req, cmd);
	} else if (strncmp(path, "/rules/", 7) == 0) {
		rule_cb(a, req, cmd, path + 7);
	} else if (strcmp(path, "/reset") == 0) {
		if (cmd == EVHTTP_REQ_POST)
			reset_cb(a, req);
		else
			reply_error(req, 405, "Method Not Allowed", "use POST");
	} else if (strcmp(path, "/preset") == 0) {
		if (cmd == EVHTTP_REQ_POST || cmd == EVHTTP_REQ_PUT)
			preset_cb(a, req);
		else
			reply_error(req, 405, "Method Not Allowed", "use POST (GET /presets lists them)");
	} else if (strcmp(path, "/presets") == 0) {
		if (cmd == EVHTTP_REQ_GET)
			reply_json(req, 200, "OK", impair_presets_to_json());
		else
			reply_error(req, 405, "Method Not Allowed", "use GET");
	} else if (strcmp(path, "/metrics") == 0) {
		if (cmd == EVHTTP_REQ_GET)
			metrics_cb(a, req);
		else
			reply_error(req, 405, "Method Not Allowed", "use GET");
	} else {
		reply_error(req, 404, "Not Found",
		            "no such resource: try /settings, /stats, /flows, /rebind, /rules, "
		            "/reset, /presets, /preset, /metrics");
	}
}

struct impair_api *impair_api_new(struct event_base *base, const struct sockaddr *addr,
                                  socklen_t len, struct impair_api_ctx *ctx)
{
	struct impair_api *a = calloc(1, sizeof(*a));
	evutil_socket_t fd = -1;

	if (a == NULL)
		return NULL;
	a->ctx = ctx;
	a->started_us = impair_now_us();
	a->http = evhttp_new(base);
	if (a->http == NULL)
		goto fail;
	evhttp_set_max_body_size(a->http, API_HTTP_MAX_BODY);
	evhttp_set_max_headers_size(a->http, API_MAX_HEADERS);
	evhttp_set_timeout(a->http, API_TIMEOUT_S);
	/* Other methods reach request_cb too, which answers 405 in JSON. */
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_PUT | EVHTTP_REQ_POST |
	                           EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS |
	                           EVHTTP_REQ_HEAD);
	evhttp_set_gencb(a->http, request_cb, a);
	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	{
		int one = 1;

		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	}
	if (bind(fd, addr, len) < 0 || listen(fd, 64) < 0)
		goto fail;
	a->sock = evhttp_accept_socket_with_handle(a->http, fd);
	if (a->sock == NULL)
		goto fail;
	return a;
fail:
	if (fd >= 0 && a->sock == NULL)
		evutil_closesocket(fd);
	impair_api_free(a);
	return NULL;
}

void impair_api_free(struct impair_api *a)
{
	if (a == NULL)
		return;
	if (a->http != NULL)
		evhttp_free(a->http);
	free(a);
}

uint16_t impair_api_port(const struct impair_api *a)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	evutil_socket_t fd = evhttp_bound_socket_get_fd(a->sock);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}
