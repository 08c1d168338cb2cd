/*
 * sctpt-lab controller: one process that knows the lab's nodes (send, recv,
 * impair, sctpt metrics endpoints), polls their /stats into bounded time
 * series, forwards control changes to them, runs scenarios (run.c decides,
 * this file acts), stores the runs in --state-dir, and serves the REST API
 * (docs/lab-openapi.yaml) and the dashboard (src/lab/web) on one port.
 *
 * Single-threaded on one libevent loop: every change of the controller's
 * state happens in one callback, after the request was checked in full, so
 * no request sees or leaves a half-made change; files in the state
 * directory are replaced by rename, never rewritten in place.
 */
#include "lab/controller/controller.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "lab/controller/controller_internal.h"
#include "lab/http/http.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/opt.h"
#include "util/sig.h"

#ifndef LAB_WEB_DIR
#define LAB_WEB_DIR "/usr/local/share/sctpt/lab-web"
#endif
#ifndef LAB_UPLOT_DIR
#define LAB_UPLOT_DIR "/usr/local/share/sctpt/lab-web/uplot"
#endif

#define MAX_NODES 32
#define SERIES_MAX 720                 /* samples kept per node */
#define NODE_MAX_ANSWER (1u << 20)
#define NODE_TIMEOUT_S 5
#define EVENTS_MAX 200
#define RUN_SAMPLES_MAX 3600           /* per iteration */
#define RUN_LOG_MAX 400
#define RUN_FILE_MAX (16u << 20)
#define URL_MAX 256
#define TOKEN_MAX 257

struct sample {
	uint64_t seq;
	double t;                          /* seconds since the controller started */
	json_t *j;
};

struct node {
	int used;
	int ephemeral;                     /* a testbed's: not saved, removed with it */
	uint64_t gen;                      /* bumped on delete: late answers are dropped */
	char id[SC_ID_MAX];
	char kind[8];
	char url[URL_MAX];
	char token[TOKEN_MAX];
	struct sample ring[SERIES_MAX];
	unsigned head, n;
	uint64_t seq;
	int inflight, ok;
	char err[160];
	double last_ok;
};

struct active {
	int on;
	uint64_t gen;
	struct scenario sc;
	struct run_sm sm;
	json_t *rec;                       /* the run record (also in ctl.runs) */
	int send, recv, impair;            /* node indices, -1 if none */
	json_t *base_impair, *base_recv;
	int expect_transfer;               /* send's transfer number of this iteration */
	json_t *iter;                      /* the current iteration's object */
	int iter_made;                     /* the iteration r->iter belongs to */
	double t_run0, t_iter0;
	unsigned pending_sub;              /* calls outstanding of a multi-call action */
	int sub_failed;
	char sub_err[160];
};

struct ctl {
	struct event_base *base;
	struct lab_http *http;
	struct event *tick;
	char state_dir[PATH_MAX], web_dir[PATH_MAX], uplot_dir[PATH_MAX], sctpt_bin[PATH_MAX];
	unsigned long poll_ms, max_runs;
	int remote_nodes;
	struct node nodes[MAX_NODES];
	json_t *runs;                      /* run records, oldest first */
	json_t *events;
	unsigned next_run;
	struct active run;
	struct timespec t0;
	double last_poll;
	int exiting;                       /* a signal came: leave once the run is over */
};

static struct ctl *g;                  /* for the few callbacks with only an id */

/*
 * What a run records of each sctpt node's first session, per sample (and
 * the samples CSV's last columns, in this order): docs/metrics.md's JSON
 * names.  A field the engine does not report is left out of the sample
 * (0 in the CSV).
 */
static const char *const sctpt_fields[] = {
	"srtt_ms", "rttvar_ms", "cwnd", "flight", "retransmissions",
	"min_rtt_ms", "pacing_rate", "btl_bw", "delivery_rate",
	"rack_losses", "fast_retransmissions", "tlp_losses", "t3_expiries",
	"spurious_retransmissions", "sacks_sent", "sacks_received",
};
#define NSCTPT_FIELDS (sizeof(sctpt_fields) / sizeof(sctpt_fields[0]))

static int sctpt_field_ms(size_t i)
{
	size_t n = strlen(sctpt_fields[i]);

	return n > 3 && strcmp(sctpt_fields[i] + n - 3, "_ms") == 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)(ts.tv_sec - g->t0.tv_sec) + (double)(ts.tv_nsec - g->t0.tv_nsec) / 1e9;
}

static uint64_t now_ms(void)
{
	return (uint64_t)(now_s() * 1000.0);
}

static void wall(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void ev_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void ev_log(const char *fmt, ...)
{
	char msg[300], w[32];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	wall(w, sizeof(w));
	if (json_array_size(g->events) >= EVENTS_MAX)
		json_array_remove(g->events, 0);
	json_array_append_new(g->events, json_pack("{s:s, s:f, s:s}", "time", w, "t", now_s(),
	                                           "msg", msg));
	log_info("controller: %s", msg);
}

/* ---- files */

static int write_atomic(const char *path, json_t *j)
{
	char tmp[PATH_MAX + 8];
	char *text = json_dumps(j, JSON_COMPACT);
	int fd, ok;
	size_t n;

	if (text == NULL)
		return -1;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(text);
		return -1;
	}
	n = strlen(text);
	ok = write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
	close(fd);
	free(text);
	if (!ok || rename(tmp, path) < 0) {
		unlink(tmp);
		log_warn("controller: cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static json_t *read_json_file(const char *path, size_t max)
{
	struct stat st;
	json_error_t e;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	json_t *j = NULL;
	char *buf;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size <= max &&
	    (buf = malloc((size_t)st.st_size + 1)) != NULL) {
		ssize_t r = read(fd, buf, (size_t)st.st_size);

		if (r == st.st_size)
			j = json_loadb(buf, (size_t)r, JSON_REJECT_DUPLICATES, &e);
		free(buf);
	}
	close(fd);
	return j;
}

/* ---- what testbed.c borrows */

void ctl_event(const char *fmt, ...)
{
	char msg[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ev_log("%s", msg);
}

double ctl_now_s(void)
{
	return now_s();
}

int ctl_write_atomic(const char *path, json_t *j)
{
	return write_atomic(path, j);
}

json_t *ctl_read_json_file(const char *path, size_t max)
{
	return read_json_file(path, max);
}

static void save_nodes(void)
{
	json_t *a;
	char path[PATH_MAX + 16];

	if (g->state_dir[0] == '\0' || (a = json_array()) == NULL)
		return;
	for (int i = 0; i < MAX_NODES; i++)
		if (g->nodes[i].used && !g->nodes[i].ephemeral)
			json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s}", "id", g->nodes[i].id,
			        "kind", g->nodes[i].kind, "url", g->nodes[i].url,
			        "token", g->nodes[i].token));
	snprintf(path, sizeof(path), "%s/nodes.json", g->state_dir);
	write_atomic(path, a);
	json_decref(a);
}

static void save_run(json_t *rec)
{
	char path[PATH_MAX + 40];

	if (g->state_dir[0] == '\0')
		return;
	snprintf(path, sizeof(path), "%s/runs/%s.json", g->state_dir,
	         json_string_value(json_object_get(rec, "id")));
	write_atomic(path, rec);
}

static void drop_run_file(const char *id)
{
	char path[PATH_MAX + 40];

	if (g->state_dir[0] == '\0')
		return;
	snprintf(path, sizeof(path), "%s/runs/%s.json", g->state_dir, id);
	unlink(path);
}

/* ---- nodes */

static int node_find(const char *id)
{
	for (int i = 0; i < MAX_NODES; i++)
		if (g->nodes[i].used && strcmp(g->nodes[i].id, id) == 0)
			return i;
	return -1;
}

static int node_of_kind(const char *kind, const char *want_id)
{
	int found = -1;

	if (want_id != NULL && want_id[0] != '\0') {
		int i = node_find(want_id);

		return i >= 0 && strcmp(g->nodes[i].kind, kind) == 0 ? i : -2;
	}
	for (int i = 0; i < MAX_NODES; i++) {
		if (g->nodes[i].used && strcmp(g->nodes[i].kind, kind) == 0) {
			if (found >= 0)
				return -3;     /* ambiguous: the scenario must name it */
			found = i;
		}
	}
	return found;
}

static void node_clear(struct node *n)
{
	for (unsigned i = 0; i < n->n; i++)
		json_decref(n->ring[(n->head + i) % SERIES_MAX].j);
	memset(n->ring, 0, sizeof(n->ring));
	n->head = n->n = 0;
}

static int valid_kind(const char *k)
{
	return strcmp(k, "send") == 0 || strcmp(k, "recv") == 0 || strcmp(k, "impair") == 0 ||
	       strcmp(k, "sctpt") == 0;
}

/* Check and add a node from {"id", "kind", "url", "token"}; index or -1 with err. */
static int node_add(json_t *j, char *err, size_t errlen)
{
	const char *key, *id = NULL, *kind = NULL, *url = NULL, *token = "";
	char host[NETADDR_HOST_MAX], path[128];
	uint16_t port;
	json_t *v;
	int slot = -1;

	json_object_foreach(j, key, v) {
		if (!json_is_string(v)) {
			snprintf(err, errlen, "%.20s must be a string", key);
			return -1;
		}
		if (strcmp(key, "id") == 0)
			id = json_string_value(v);
		else if (strcmp(key, "kind") == 0)
			kind = json_string_value(v);
		else if (strcmp(key, "url") == 0)
			url = json_string_value(v);
		else if (strcmp(key, "token") == 0)
			token = json_string_value(v);
		else {
			snprintf(err, errlen, "unknown key '%.32s' (id, kind, url, token)", key);
			return -1;
		}
	}
	if (id == NULL || kind == NULL || url == NULL) {
		snprintf(err, errlen, "a node needs id, kind and url");
		return -1;
	}
	{
		size_t n = strlen(id);
		int okid = n > 0 && n < SC_ID_MAX;

		for (size_t i = 0; okid && i < n; i++)
			okid = (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
			       (id[i] >= '0' && id[i] <= '9') || id[i] == '-' || id[i] == '_';
		if (!okid) {
			snprintf(err, errlen, "id must be 1..32 of A-Z a-z 0-9 - _");
			return -1;
		}
	}
	if (!valid_kind(kind)) {
		snprintf(err, errlen, "kind must be send, recv, impair or sctpt");
		return -1;
	}
	if (strlen(url) >= URL_MAX ||
	    lab_http_parse_url(url, host, sizeof(host), &port, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "url must be http://NUMERIC-ADDR:PORT (no names)");
		return -1;
	}
	if (!g->remote_nodes) {
		char hp[NETADDR_HOST_MAX + 8];

		snprintf(hp, sizeof(hp), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
		if (!lab_access_loopback_hostport(hp, host, sizeof(host), &port, 0)) {
			snprintf(err, errlen, "url must be a loopback address (start the controller "
			         "with --remote-nodes to allow others)");
			return -1;
		}
	}
	if (strlen(token) >= TOKEN_MAX || strpbrk(token, "\r\n") != NULL) {
		snprintf(err, errlen, "token: at most 256 characters, one line");
		return -1;
	}
	if (node_find(id) >= 0) {
		snprintf(err, errlen, "a node '%s' exists (DELETE it first)", id);
		return -1;
	}
	for (int i = 0; i < MAX_NODES; i++)
		if (!g->nodes[i].used) {
			slot = i;
			break;
		}
	if (slot < 0) {
		snprintf(err, errlen, "at most %d nodes", MAX_NODES);
		return -1;
	}
	{
		struct node *n = &g->nodes[slot];
		uint64_t gen = n->gen + 1;

		memset(n, 0, sizeof(*n));
		n->gen = gen;
		n->used = 1;
		snprintf(n->id, sizeof(n->id), "%s", id);
		snprintf(n->kind, sizeof(n->kind), "%s", kind);
		snprintf(n->url, sizeof(n->url), "%s", url);
		/* No trailing slash: paths are appended. */
		for (size_t k = strlen(n->url); k > 7 && n->url[k - 1] == '/'; k--)
			n->url[k - 1] = '\0';
		snprintf(n->token, sizeof(n->token), "%s", token);
		snprintf(n->err, sizeof(n->err), "not polled yet");
	}
	return slot;
}

static void poll_all(void);

int ctl_node_register(const char *id, const char *kind, const char *url, char *err,
                      size_t errlen)
{
	json_t *j = json_pack("{s:s, s:s, s:s}", "id", id, "kind", kind, "url", url);
	int i = j ? node_add(j, err, errlen) : -1;

	json_decref(j);
	if (i < 0)
		return -1;
	g->nodes[i].ephemeral = 1;
	ev_log("node %s (%s) added by its testbed: %s", id, kind, url);
	return 0;
}

void ctl_node_unregister(const char *id)
{
	int i = node_find(id);

	if (i < 0)
		return;
	node_clear(&g->nodes[i]);
	g->nodes[i].used = 0;
	g->nodes[i].gen++;
	ev_log("node %s removed with its testbed", id);
}

static json_t *node_json(const struct node *n, int with_last)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:s, s:I, s:b, s:b}", "id", n->id,
	        "kind", n->kind, "url", n->url, "ok", n->ok, "error", n->ok ? "" : n->err,
	        "samples", (json_int_t)n->seq, "token", n->token[0] != '\0',
	        "testbed", n->ephemeral);

	if (n->ok)
		json_object_set_new(j, "age_s", json_real(now_s() - n->last_ok));
	if (with_last && n->n > 0)
		json_object_set(j, "last", n->ring[(n->head + n->n - 1) % SERIES_MAX].j);
	return j;
}

static json_t *node_last(int i)
{
	struct node *n = &g->nodes[i];

	return n->n > 0 ? n->ring[(n->head + n->n - 1) % SERIES_MAX].j : NULL;
}

/* ---- polling */

struct call_arg {
	int node;
	uint64_t gen;
};

static void run_sample(int node, json_t *j);

static void poll_done(int status, const char *body, size_t len, void *arg)
{
	struct call_arg *a = arg;
	int idx = a->node;
	struct node *n = &g->nodes[idx];
	json_error_t e;
	json_t *j;

	if (status == LAB_HTTP_CANCELLED || !n->used || n->gen != a->gen) {
		free(a);
		return;
	}
	free(a);
	n->inflight = 0;
	if (status != 200) {
		if (status < 0)
			snprintf(n->err, sizeof(n->err), "%.150s", body);
		else
			snprintf(n->err, sizeof(n->err), "HTTP %d from /stats", status);
		n->ok = 0;
		return;
	}
	j = json_loadb(body, len, 0, &e);
	if (j == NULL || !json_is_object(j)) {
		json_decref(j);
		snprintf(n->err, sizeof(n->err), "/stats did not answer a JSON object");
		n->ok = 0;
		return;
	}
	n->ok = 1;
	n->last_ok = now_s();
	if (n->n == SERIES_MAX) {
		json_decref(n->ring[n->head].j);
		n->head = (n->head + 1) % SERIES_MAX;
		n->n--;
	}
	n->ring[(n->head + n->n) % SERIES_MAX] = (struct sample){ ++n->seq, n->last_ok, j };
	n->n++;
	run_sample(idx, j);
}

static void poll_all(void)
{
	char err[120], url[URL_MAX + 16];

	for (int i = 0; i < MAX_NODES; i++) {
		struct node *n = &g->nodes[i];
		struct call_arg *a;

		if (!n->used || n->inflight)
			continue;
		a = malloc(sizeof(*a));
		if (a == NULL)
			return;
		a->node = i;
		a->gen = n->gen;
		snprintf(url, sizeof(url), "%s/stats", n->url);
		if (lab_http_call(g->base, url, EVHTTP_REQ_GET, NULL, n->token, NODE_TIMEOUT_S,
		                  NODE_MAX_ANSWER, poll_done, a, err, sizeof(err)) < 0) {
			free(a);
			n->ok = 0;
			snprintf(n->err, sizeof(n->err), "%s", err);
			continue;
		}
		n->inflight = 1;
	}
}

/* ---- runs */

static void run_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void run_log(const char *fmt, ...)
{
	json_t *log;
	char msg[300];
	va_list ap;

	if (!g->run.on)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log = json_object_get(g->run.rec, "log");
	if (json_array_size(log) < RUN_LOG_MAX)
		json_array_append_new(log, json_pack("{s:f, s:s}", "t_s", now_s() - g->run.t_run0,
		                                     "msg", msg));
	ev_log("run %s: %s", json_string_value(json_object_get(g->run.rec, "id")), msg);
}

static double num_at(json_t *j, const char *a, const char *b)
{
	json_t *v = json_object_get(j, a);

	if (b != NULL)
		v = json_object_get(v, b);
	return json_is_number(v) ? json_number_value(v) : 0;
}

/* Poll answers during a run also go into the iteration's samples. */
static void run_sample(int node, json_t *j)
{
	struct active *r = &g->run;
	json_t *samples, *row;

	if (!r->on || r->iter == NULL || r->sm.phase != RUN_RUNNING)
		return;
	/* sctpt's own view (docs/metrics.md), from every sctpt node with an association. */
	if (node != r->send && node != r->recv && node != r->impair &&
	    (strcmp(g->nodes[node].kind, "sctpt") != 0 ||
	     !json_is_object(json_array_get(json_object_get(j, "sessions"), 0))))
		return;
	samples = json_object_get(r->iter, "samples");
	if (json_array_size(samples) >= RUN_SAMPLES_MAX)
		return;
	row = json_pack("{s:f, s:s, s:s}", "t_s", now_s() - r->t_iter0, "node",
	                g->nodes[node].kind, "node_id", g->nodes[node].id);
	if (strcmp(g->nodes[node].kind, "sctpt") == 0) {
		json_t *s0 = json_array_get(json_object_get(j, "sessions"), 0);

		for (size_t i = 0; i < NSCTPT_FIELDS; i++)
			if (json_is_number(json_object_get(s0, sctpt_fields[i])))
				json_object_set_new(row, sctpt_fields[i],
				                    json_real(num_at(s0, sctpt_fields[i], NULL)));
	} else if (node == r->send) {
		json_object_set_new(row, "rate_bps", json_real(num_at(j, "rate_bps", NULL)));
		json_object_set_new(row, "bytes", json_real(num_at(j, "bytes", NULL)));
		if (json_object_get(j, "rpc")) {
			json_object_set_new(row, "rpc_count", json_real(num_at(j, "rpc", "count")));
			json_object_set_new(row, "p50_ms", json_real(num_at(j, "rpc", "p50_ms")));
			json_object_set_new(row, "p99_ms", json_real(num_at(j, "rpc", "p99_ms")));
		}
	} else if (node == r->recv) {
		json_object_set_new(row, "goodput_bps", json_real(num_at(j, "goodput_bps", NULL)));
		json_object_set_new(row, "bytes", json_real(num_at(j, "bytes", NULL)));
	} else {
		static const char *f[][3] = {
			{ "seen", "c2s_seen", "s2c_seen" },
			{ "forwarded", "c2s_forwarded", "s2c_forwarded" },
			{ "dropped", "c2s_dropped", "s2c_dropped" },
			{ "duplicated", "c2s_duplicated", "s2c_duplicated" },
			{ "pending", "c2s_pending", "s2c_pending" },
			{ "bytes_forwarded", "c2s_bytes_forwarded", "s2c_bytes_forwarded" },
		};

		for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
			json_object_set_new(row, f[i][1], json_real(num_at(j, "c2s", f[i][0])));
			json_object_set_new(row, f[i][2], json_real(num_at(j, "s2c", f[i][0])));
		}
	}
	json_array_append_new(samples, row);
}

static enum run_wl run_wl_state(void)
{
	struct active *r = &g->run;
	json_t *last = node_last(r->send);
	const char *st;

	if (last == NULL || r->expect_transfer <= 0)
		return WL_UNKNOWN;
	if (json_integer_value(json_object_get(last, "transfer")) != r->expect_transfer)
		return WL_UNKNOWN;
	st = json_string_value(json_object_get(last, "state"));
	if (st == NULL)
		return WL_UNKNOWN;
	return strcmp(st, "running") == 0 ? WL_RUNNING : WL_ENDED;
}

struct op_arg {
	uint64_t gen;
	enum run_act act;
	int what;                          /* which sub-call (0 impair, 1 recv, 2 send) */
};

static void run_pump(void);

static void run_finish(void)
{
	struct active *r = &g->run;
	char w[32];

	wall(w, sizeof(w));
	json_object_set_new(r->rec, "state", json_string(run_phase_name(r->sm.phase)));
	json_object_set_new(r->rec, "ended", json_string(w));
	json_object_set_new(r->rec, "duration_s", json_real(now_s() - r->t_run0));
	if (r->sm.why[0])
		json_object_set_new(r->rec, "error", json_string(r->sm.why));
	json_object_del(r->rec, "baseline");
	run_log("%s%s%s", run_phase_name(r->sm.phase), r->sm.why[0] ? ": " : "", r->sm.why);
	save_run(r->rec);
	json_decref(r->rec);
	json_decref(r->base_impair);
	json_decref(r->base_recv);
	json_decref(r->iter);
	memset(r, 0, sizeof(*r));
	r->send = r->recv = r->impair = -1;
	if (g->exiting)
		event_base_loopexit(g->base, NULL);
}

static void sub_done(struct op_arg *a, int ok, const char *why)
{
	struct active *r = &g->run;

	if (!ok && !r->sub_failed) {
		r->sub_failed = 1;
		snprintf(r->sub_err, sizeof(r->sub_err), "%s", why);
	}
	if (r->pending_sub > 0 && --r->pending_sub > 0)
		return;
	run_action_done(&r->sm, !r->sub_failed, r->sub_err);
	run_pump();
}

static json_t *parse_answer(int status, const char *body, size_t len, char *why, size_t wl)
{
	json_error_t e;
	json_t *j;

	if (status != 200) {
		json_t *err = status > 0 ? json_loadb(body, len, 0, &e) : NULL;
		const char *m = status < 0 ? body : json_string_value(json_object_get(err, "error"));

		snprintf(why, wl, "HTTP %d: %.120s", status, m ? m : "error");
		json_decref(err);
		return NULL;
	}
	j = json_loadb(body, len, 0, &e);
	if (j == NULL || !json_is_object(j)) {
		json_decref(j);
		snprintf(why, wl, "the node's answer is not a JSON object");
		return NULL;
	}
	return j;
}

static void op_done(int status, const char *body, size_t len, void *arg)
{
	struct op_arg *a = arg;
	struct active *r = &g->run;
	char why[200] = "";
	json_t *j;

	if (status == LAB_HTTP_CANCELLED || !r->on || r->gen != a->gen) {
		free(a);
		return;
	}
	j = parse_answer(status, body, len, why, sizeof(why));
	switch (a->act) {
	case ACT_SAVE_BASELINE:
		if (j && a->what == 0) {
			json_decref(r->base_impair);
			r->base_impair = json_incref(j);
		} else if (j && a->what == 1) {
			json_decref(r->base_recv);
			r->base_recv = json_incref(j);
		}
		if (j) {
			json_t *b = json_object_get(r->rec, "baseline");

			json_object_set(b, a->what == 0 ? "impair" : "recv", j);
			save_run(r->rec);   /* a restarted controller can restore it */
		}
		break;
	case ACT_START:
		if (j)
			r->expect_transfer = (int)json_integer_value(json_object_get(j, "transfer"));
		break;
	case ACT_COLLECT:
		if (j)
			json_object_set(r->iter, a->what == 2 ? "send" : "recv", j);
		break;
	case ACT_COUNTERS_BEFORE:
		if (j)
			json_object_set(r->iter, "impair_before", j);
		break;
	case ACT_COUNTERS_AFTER:
		if (j)
			json_object_set(r->iter, "impair_after", j);
		break;
	default:
		break;
	}
	json_decref(j);
	if (j == NULL)
		run_log("%s failed: %s", a->act == ACT_START ? "start" : a->act == ACT_STOP ? "stop"
		        : a->act == ACT_RESTORE ? "restore" : a->act == ACT_APPLY_EVENT ? "event"
		        : "a call", why);
	sub_done(a, j != NULL, why);
	free(a);
}

static int op_call(enum run_act act, int what, int node, enum evhttp_cmd_type m,
                   const char *path, json_t *body)
{
	struct node *n = &g->nodes[node];
	struct op_arg *a = malloc(sizeof(*a));
	char url[URL_MAX + 32], err[120];
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int rc;

	if (a == NULL)
		return -1;
	*a = (struct op_arg){ g->run.gen, act, what };
	snprintf(url, sizeof(url), "%s%s", n->url, path);
	g->run.pending_sub++;
	rc = lab_http_call(g->base, url, m, text, n->token, NODE_TIMEOUT_S, NODE_MAX_ANSWER,
	                   op_done, a, err, sizeof(err));
	free(text);
	if (rc < 0) {
		g->run.pending_sub--;
		free(a);
		if (!g->run.sub_failed) {
			g->run.sub_failed = 1;
			snprintf(g->run.sub_err, sizeof(g->run.sub_err), "%s", err);
		}
		return -1;
	}
	return 0;
}

/*
 * The impair settings body that restores the baseline: only the fields of
 * impair's documented per-direction settings, which are all a scenario can
 * change.  A newer impair may report more in GET /settings (read-only or
 * otherwise); sending them back could be refused, and the run did not
 * touch them.
 */
static json_t *impair_restore_body(json_t *base)
{
	static const char *fields[] = { "loss", "delay_ms", "jitter_ms", "jitter", "dup",
	                                "reorder", "reorder_ms", "rate_bps", "queue_bytes",
	                                "blackhole" };
	static const char *dirs[] = { "c2s", "s2c" };
	json_t *body = json_object();

	for (size_t d = 0; d < 2; d++) {
		json_t *src = json_object_get(base, dirs[d]), *dst = json_object();

		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
			json_t *v = json_object_get(src, fields[i]);

			if (v != NULL)
				json_object_set(dst, fields[i], v);
		}
		json_object_set_new(body, dirs[d], dst);
	}
	return body;
}

static void new_iteration(unsigned var)
{
	struct active *r = &g->run;
	json_t *iters = json_object_get(r->rec, "iterations");

	json_decref(r->iter);
	r->iter = json_pack("{s:i, s:s, s:i, s:f, s:[], s:[]}",
	        "index", (int)r->sm.iter,
	        "variant", r->sc.var[var].name,
	        "repeat", (int)(r->sm.iter / r->sc.nvariants),
	        "started_s", now_s() - r->t_run0,
	        "events", "samples");
	json_array_append(iters, r->iter);
	r->t_iter0 = now_s();
}

/* Start one action; the machine waits for sub_done. */
static void run_act(enum run_act act, unsigned arg)
{
	struct active *r = &g->run;
	json_t *b;

	/* An iteration's record exists from its first action on (SETUP). */
	if ((r->sm.phase == RUN_SETUP || act == ACT_START) && (int)r->sm.iter != r->iter_made) {
		new_iteration(r->sm.iter % r->sc.nvariants);
		r->iter_made = (int)r->sm.iter;
	}
	r->pending_sub = 0;
	r->sub_failed = 0;
	r->sub_err[0] = '\0';
	r->pending_sub = 1;                /* held until every call is made */
	switch (act) {
	case ACT_SAVE_BASELINE:
		if (r->impair >= 0)
			op_call(act, 0, r->impair, EVHTTP_REQ_GET, "/settings", NULL);
		if (r->recv >= 0)
			op_call(act, 1, r->recv, EVHTTP_REQ_GET, "/settings", NULL);
		break;
	case ACT_RESTORE:
		if (r->impair >= 0 && r->base_impair) {
			b = impair_restore_body(r->base_impair);
			op_call(act, 0, r->impair, EVHTTP_REQ_PUT, "/settings", b);
			json_decref(b);
		}
		if (r->recv >= 0 && r->base_recv)
			op_call(act, 1, r->recv, EVHTTP_REQ_PUT, "/settings", r->base_recv);
		break;
	case ACT_COUNTERS_BEFORE:
	case ACT_COUNTERS_AFTER:
		if (r->impair >= 0)
			op_call(act, 0, r->impair, EVHTTP_REQ_GET, "/stats", NULL);
		break;
	case ACT_APPLY_EVENT: {
		const struct sc_event *e = &r->sc.ev[arg];

		json_array_append_new(json_object_get(r->iter, "events"),
		        json_pack("{s:f, s:s}", "t_s", now_s() - r->t_iter0, "text", e->text));
		run_log("iteration %u: %s", r->sm.iter, e->text);
		if (e->kind == SC_EV_IMPAIR && r->impair >= 0) {
			b = sc_event_impair_json(e);
			op_call(act, 0, r->impair, EVHTTP_REQ_PUT, "/settings", b);
			json_decref(b);
		} else if (e->kind == SC_EV_RESTORE && r->impair >= 0 && r->base_impair) {
			b = impair_restore_body(r->base_impair);
			op_call(act, 0, r->impair, EVHTTP_REQ_PUT, "/settings", b);
			json_decref(b);
		} else if (e->kind == SC_EV_RECV_DELAY && r->recv >= 0) {
			b = json_pack("{s:I}", "delay_ms", (json_int_t)e->value);
			op_call(act, 1, r->recv, EVHTTP_REQ_PUT, "/settings", b);
			json_decref(b);
		}
		break;
	}
	case ACT_START: {
		const struct sc_variant *v = &r->sc.var[arg];
		const struct sc_workload *w = &r->sc.w;

		r->t_iter0 = now_s();
		json_object_set_new(r->iter, "started_s", json_real(now_s() - r->t_run0));
		r->expect_transfer = -1;
		b = json_pack("{s:s, s:s, s:i, s:I, s:I}", "action", "start",
		        "mode", w->rpc ? "rpc" : "bulk", "streams", (int)w->streams,
		        "seed", (json_int_t)(r->sc.seed + r->sm.iter / r->sc.nvariants),
		        "duration_s", (json_int_t)(w->bytes == 0 && (!w->rpc || w->rpc_count == 0)
		                                   ? (r->sc.duration_ms + 999) / 1000 : 0));
		if (w->bytes)
			json_object_set_new(b, "bytes", json_integer((json_int_t)w->bytes));
		if (w->rpc) {
			json_object_set_new(b, "rpc_req", json_integer(w->rpc_req));
			json_object_set_new(b, "rpc_resp", json_integer(w->rpc_resp));
			json_object_set_new(b, "rpc_gap_ms", json_integer(w->rpc_gap_ms));
			json_object_set_new(b, "rpc_count", json_integer((json_int_t)w->rpc_count));
		}
		json_object_set_new(b, "socks", json_string(v->socks));
		if (v->target[0])
			json_object_set_new(b, "target", json_string(v->target));
		run_log("iteration %u: start (variant %s)", r->sm.iter, v->name);
		op_call(act, 2, r->send, EVHTTP_REQ_PUT, "/settings", b);
		json_decref(b);
		break;
	}
	case ACT_STOP:
		b = json_pack("{s:s}", "action", "stop");
		op_call(act, 2, r->send, EVHTTP_REQ_PUT, "/settings", b);
		json_decref(b);
		break;
	case ACT_COLLECT:
		op_call(act, 2, r->send, EVHTTP_REQ_GET, "/stats", NULL);
		if (r->recv >= 0)
			op_call(act, 1, r->recv, EVHTTP_REQ_GET, "/stats", NULL);
		break;
	default:
		break;
	}
	/* Release the hold; if every call already failed or none was needed, go on. */
	r->pending_sub--;
	if (r->pending_sub == 0) {
		run_action_done(&r->sm, !r->sub_failed, r->sub_err);
		event_active(g->tick, EV_TIMEOUT, 0);   /* step again soon, not recursively */
	}
}

static void run_pump(void)
{
	struct active *r = &g->run;

	for (int guard = 0; r->on && guard < 8; guard++) {
		unsigned arg = 0;
		enum run_act a = run_next(&r->sm, now_ms(), run_wl_state(), &arg);

		json_object_set_new(r->rec, "state", json_string(run_phase_name(r->sm.phase)));
		if (a == ACT_NONE || a == ACT_WAIT)
			return;
		if (a == ACT_FINISH) {
			run_finish();
			return;
		}
		if (a == ACT_COLLECT || a == ACT_COUNTERS_AFTER)
			save_run(r->rec);
		run_act(a, arg);
		if (r->sm.pending)
			return;
	}
}

static void trim_runs(void)
{
	while (json_array_size(g->runs) > g->max_runs) {
		json_t *old = json_array_get(g->runs, 0);
		const char *st = json_string_value(json_object_get(old, "state"));

		if (g->run.on && old == g->run.rec)
			break;
		(void)st;
		drop_run_file(json_string_value(json_object_get(old, "id")));
		json_array_remove(g->runs, 0);
	}
}

/* POST /api/runs: check everything, then start.  Code and *out. */
static int run_create(json_t *body, json_t **out)
{
	struct active *r = &g->run;
	struct scenario sc;
	char err[240], id[16], w[32], *text;
	int send, recv, impair, has_impair_ev = 0, has_recv_ev = 0;
	json_t *versions;

	if (r->on) {
		*out = json_pack("{s:s, s:s}", "error", "a run is in progress (stop it first)",
		                 "active", json_string_value(json_object_get(r->rec, "id")));
		return 409;
	}
	text = json_dumps(body, JSON_COMPACT);
	if (text == NULL || sc_parse(text, strlen(text), &sc, err, sizeof(err)) < 0) {
		free(text);
		*out = json_pack("{s:s}", "error", text ? err : "out of memory");
		return 400;
	}
	free(text);
	for (unsigned i = 0; i < sc.nevents; i++) {
		has_impair_ev |= sc.ev[i].kind != SC_EV_RECV_DELAY;
		has_recv_ev |= sc.ev[i].kind == SC_EV_RECV_DELAY;
	}
	send = node_of_kind("send", sc.send);
	recv = node_of_kind("recv", sc.recv);
	impair = node_of_kind("impair", sc.impair);
	if (send < 0 || (recv < -1) || (impair < -1) || (has_impair_ev && impair < 0) ||
	    (has_recv_ev && recv < 0)) {
		const char *why = send == -1 ? "no send node registered"
		        : send < 0 ? "nodes.send does not name one send node (or several exist)"
		        : recv < -1 ? "nodes.recv does not name one recv node"
		        : impair < -1 ? "nodes.impair does not name one impair node"
		        : has_impair_ev ? "the timeline changes impair, but no impair node"
		        : "the timeline changes recv's delay, but no recv node";

		*out = json_pack("{s:s}", "error", why);
		return 400;
	}
	memset(r, 0, sizeof(*r));
	r->sc = sc;
	r->send = send;
	r->recv = recv;
	r->impair = impair;
	r->gen = ++g->next_run;
	r->iter_made = -1;
	r->t_run0 = now_s();
	run_init(&r->sm, &r->sc, impair >= 0, recv >= 0);
	snprintf(id, sizeof(id), "r%06u", g->next_run);
	wall(w, sizeof(w));
	versions = json_pack("{s:s, s:{}}", "controller", SCTPT_VERSION, "nodes");
	{
		int idx[3] = { send, recv, impair };

		for (int k = 0; k < 3; k++) {
			json_t *last = idx[k] >= 0 ? node_last(idx[k]) : NULL;
			const char *v = last ? json_string_value(json_object_get(last, "version")) : NULL;

			if (idx[k] >= 0)
				json_object_set_new(json_object_get(versions, "nodes"), g->nodes[idx[k]].id,
				                    v ? json_string(v) : json_null());
		}
	}
	r->rec = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:{s:s, s:s, s:s}, s:[], s:[], s:{},"
	                   " s:n}",
	        "id", id, "name", sc.name, "state", "pending", "created", w,
	        "scenario", sc_to_json(&sc), "versions", versions,
	        "nodes", "send", g->nodes[send].id,
	        "recv", recv >= 0 ? g->nodes[recv].id : "",
	        "impair", impair >= 0 ? g->nodes[impair].id : "",
	        "iterations", "log", "baseline", "error");
	if (impair >= 0)
		json_object_set_new(r->rec, "impair_url", json_string(g->nodes[impair].url));
	if (recv >= 0)
		json_object_set_new(r->rec, "recv_url", json_string(g->nodes[recv].url));
	json_object_set_new(r->rec, "send_url", json_string(g->nodes[send].url));
	r->on = 1;
	json_array_append(g->runs, r->rec);
	trim_runs();
	run_log("started: %s, %u iteration(s) of %.1f s", sc.name, r->sm.iters,
	        sc.duration_ms / 1000.0);
	save_run(r->rec);
	run_pump();
	*out = json_pack("{s:s}", "id", id);
	return 201;
}

static json_t *run_by_id(const char *id)
{
	size_t i;
	json_t *rec;

	json_array_foreach(g->runs, i, rec)
		if (strcmp(json_string_value(json_object_get(rec, "id")), id) == 0)
			return rec;
	return NULL;
}

static json_t *run_summary(json_t *rec)
{
	static const char *keys[] = { "id", "name", "state", "created", "ended", "error" };
	json_t *s = json_object();

	/* Records may come from disk: take what is there. */
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(rec, keys[i]);

		if (v != NULL)
			json_object_set(s, keys[i], v);
	}
	json_object_set_new(s, "iterations",
	                    json_integer((json_int_t)json_array_size(json_object_get(rec,
	                                                                        "iterations"))));
	return s;
}

/* CSV: one row per iteration (what=summary) or per sample (what=samples). */
static char *run_csv(json_t *rec, int samples, size_t *len)
{
	struct evbuffer *b = evbuffer_new();
	json_t *iters = json_object_get(rec, "iterations"), *it;
	size_t i;
	char *out;

	if (b == NULL)
		return NULL;
	if (!samples)
		evbuffer_add_printf(b, "run,iteration,variant,repeat,state,bytes,elapsed_s,"
		                    "goodput_bps,streams_ok,streams_failed,rpc_count,p50_ms,p90_ms,"
		                    "p99_ms,max_ms,c2s_dropped,s2c_dropped,c2s_forwarded,"
		                    "s2c_forwarded\n");
	else
	{
		evbuffer_add_printf(b, "run,iteration,variant,t_s,node,rate_bps,goodput_bps,bytes,"
		                    "p50_ms,p99_ms,c2s_dropped,s2c_dropped,c2s_forwarded,"
		                    "s2c_forwarded,node_id");
		for (size_t f = 0; f < NSCTPT_FIELDS; f++)
			evbuffer_add_printf(b, ",%s", sctpt_fields[f]);
		evbuffer_add_printf(b, "\n");
	}
	json_array_foreach(iters, i, it) {
		const char *rid = json_string_value(json_object_get(rec, "id"));
		const char *var = json_string_value(json_object_get(it, "variant"));
		json_t *s = json_object_get(it, "send");
		json_t *ia = json_object_get(it, "impair_after"), *ib = json_object_get(it,
		                                                                        "impair_before");

		/* Variant names are checked printable; quote them for commas. */
		if (!samples) {
			const char *st = json_string_value(json_object_get(s, "state"));

			evbuffer_add_printf(b, "%s,%d,\"%s\",%d,%s,%.0f,%.3f,%.0f,%.0f,%.0f,%.0f,%.3f,%.3f,"
			        "%.3f,%.3f,%.0f,%.0f,%.0f,%.0f\n", rid,
			        (int)json_integer_value(json_object_get(it, "index")), var ? var : "",
			        (int)json_integer_value(json_object_get(it, "repeat")),
			        st && strspn(st, "abcdefghijklmnopqrstuvwxyz") == strlen(st) ? st : "",
			        num_at(s, "bytes", NULL), num_at(s, "elapsed_s", NULL),
			        num_at(s, "goodput_bps", NULL), num_at(s, "streams_ok", NULL),
			        num_at(s, "streams_failed", NULL), num_at(s, "rpc", "count"),
			        num_at(s, "rpc", "p50_ms"), num_at(s, "rpc", "p90_ms"),
			        num_at(s, "rpc", "p99_ms"), num_at(s, "rpc", "max_ms"),
			        num_at(ia, "c2s", "dropped") - num_at(ib, "c2s", "dropped"),
			        num_at(ia, "s2c", "dropped") - num_at(ib, "s2c", "dropped"),
			        num_at(ia, "c2s", "forwarded") - num_at(ib, "c2s", "forwarded"),
			        num_at(ia, "s2c", "forwarded") - num_at(ib, "s2c", "forwarded"));
		} else {
			size_t k;
			json_t *row;

			json_array_foreach(json_object_get(it, "samples"), k, row) {
				const char *node = json_string_value(json_object_get(row, "node"));
				const char *nid = json_string_value(json_object_get(row, "node_id"));

				/* Node ids are [A-Za-z0-9_-] (node_add); older records have none. */
				if (nid == NULL || strspn(nid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
				                          "rstuvwxyz0123456789_-") != strlen(nid))
					nid = "";
				evbuffer_add_printf(b, "%s,%d,\"%s\",%.3f,%s,%.0f,%.0f,%.0f,%.3f,%.3f,%.0f,"
				        "%.0f,%.0f,%.0f,%s", rid,
				        (int)json_integer_value(json_object_get(it, "index")), var ? var : "",
				        num_at(row, "t_s", NULL),
				        node && valid_kind(node) ? node : "",
				        num_at(row, "rate_bps", NULL), num_at(row, "goodput_bps", NULL),
				        num_at(row, "bytes", NULL), num_at(row, "p50_ms", NULL),
				        num_at(row, "p99_ms", NULL), num_at(row, "c2s_dropped", NULL),
				        num_at(row, "s2c_dropped", NULL), num_at(row, "c2s_forwarded", NULL),
				        num_at(row, "s2c_forwarded", NULL), nid);
				for (size_t f = 0; f < NSCTPT_FIELDS; f++)
					evbuffer_add_printf(b, ",%.*f", sctpt_field_ms(f) ? 3 : 0,
					                    num_at(row, sctpt_fields[f], NULL));
				evbuffer_add_printf(b, "\n");
			}
		}
	}
	*len = evbuffer_get_length(b);
	out = malloc(*len + 1);
	if (out != NULL) {
		evbuffer_remove(b, out, *len);
		out[*len] = '\0';
	}
	evbuffer_free(b);
	return out;
}

/* ---- forwarding a control change to a node */

struct fwd {
	struct evhttp_request *req;
	int gone;
};

static void fwd_closed(struct evhttp_connection *conn, void *arg)
{
	struct fwd *f = arg;

	f->gone = 1;
}

static void fwd_done(int status, const char *body, size_t len, void *arg)
{
	struct fwd *f = arg;
	json_error_t e;
	json_t *j;

	if (f->gone || status == LAB_HTTP_CANCELLED) {
		free(f);
		return;
	}
	evhttp_connection_set_closecb(evhttp_request_get_connection(f->req), NULL, NULL);
	if (status < 0) {
		lab_http_reply_json(f->req, 502, json_pack("{s:s}", "error", body));
	} else {
		j = json_loadb(body, len, 0, &e);
		lab_http_reply_json(f->req, status == 200 ? 200 : status >= 400 && status < 500 ?
		                    status : 502, j ? j : json_pack("{s:s}", "error",
		                                                   "the node's answer is not JSON"));
	}
	free(f);
}

static void forward(struct evhttp_request *req, int node, enum evhttp_cmd_type m,
                    const char *path, json_t *body)
{
	struct node *n = &g->nodes[node];
	struct fwd *f = calloc(1, sizeof(*f));
	char url[URL_MAX + 32], err[120], *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

	if (f == NULL) {
		free(text);
		lab_http_reply_error(req, 500, "out of memory");
		return;
	}
	f->req = req;
	snprintf(url, sizeof(url), "%s%s", n->url, path);
	if (lab_http_call(g->base, url, m, text, n->token, NODE_TIMEOUT_S, NODE_MAX_ANSWER,
	                  fwd_done, f, err, sizeof(err)) < 0) {
		free(f);
		free(text);
		lab_http_reply_error(req, 502, err);
		return;
	}
	free(text);
	evhttp_connection_set_closecb(evhttp_request_get_connection(req), fwd_closed, f);
	if (body != NULL) {
		char *s = json_dumps(body, JSON_COMPACT);

		ev_log("control %s %s: %.200s", n->id, path, s ? s : "");
		free(s);
	}
}

/* ---- the API */

static const char *under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(path, prefix, n) == 0 ? path + n : NULL;
}

static void static_file(struct evhttp_request *req, const char *path)
{
	static const struct { const char *url, *file, *type; int vendor; } files[] = {
		{ "/", "index.html", "text/html; charset=utf-8", 0 },
		{ "/index.html", "index.html", "text/html; charset=utf-8", 0 },
		{ "/app.js", "app.js", "text/javascript; charset=utf-8", 0 },
		{ "/app.css", "app.css", "text/css; charset=utf-8", 0 },
		{ "/vendor/uPlot.iife.min.js", "uPlot.iife.min.js", "text/javascript; charset=utf-8", 1 },
		{ "/vendor/uPlot.min.css", "uPlot.min.css", "text/css; charset=utf-8", 1 },
	};
	char full[PATH_MAX * 2];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (strcmp(path, files[i].url) != 0)
			continue;
		snprintf(full, sizeof(full), "%s/%s", files[i].vendor ? g->uplot_dir : g->web_dir,
		         files[i].file);
		lab_http_reply_file(req, full, files[i].type);
		return;
	}
	lab_http_reply_error(req, 404, "no such resource (the API is under /api/)");
}

static void api_nodes(struct evhttp_request *req, const char *rest, enum evhttp_cmd_type cmd)
{
	char id[SC_ID_MAX + 1], err[200], q[24];
	const char *slash;
	int i;

	if (*rest == '\0') {
		if (cmd == EVHTTP_REQ_GET) {
			json_t *a = json_array();

			for (i = 0; i < MAX_NODES; i++)
				if (g->nodes[i].used)
					json_array_append_new(a, node_json(&g->nodes[i], 1));
			lab_http_reply_json(req, 200, a);
		} else if (cmd == EVHTTP_REQ_POST) {
			json_t *j = lab_http_read_object(req, 4096, 0);

			if (j == NULL)
				return;
			i = node_add(j, err, sizeof(err));
			json_decref(j);
			if (i < 0) {
				lab_http_reply_error(req, strstr(err, "exists") ? 409 : 400, err);
				return;
			}
			save_nodes();
			ev_log("node %s (%s) added: %s", g->nodes[i].id, g->nodes[i].kind,
			       g->nodes[i].url);
			poll_all();
			lab_http_reply_json(req, 201, node_json(&g->nodes[i], 0));
		} else {
			lab_http_reply_error(req, 405, "use GET or POST");
		}
		return;
	}
	rest++;   /* the '/' */
	slash = strchr(rest, '/');
	if ((size_t)(slash ? slash - rest : (long)strlen(rest)) >= sizeof(id) - 1) {
		lab_http_reply_error(req, 404, "no such node");
		return;
	}
	snprintf(id, sizeof(id), "%.*s", (int)(slash ? slash - rest : (long)strlen(rest)), rest);
	i = node_find(id);
	if (i < 0) {
		lab_http_reply_error(req, 404, "no such node");
		return;
	}
	if (slash == NULL) {
		if (cmd == EVHTTP_REQ_GET) {
			lab_http_reply_json(req, 200, node_json(&g->nodes[i], 1));
		} else if (cmd == EVHTTP_REQ_DELETE) {
			if (g->run.on && (i == g->run.send || i == g->run.recv || i == g->run.impair)) {
				lab_http_reply_error(req, 409, "the active run uses this node");
				return;
			}
			node_clear(&g->nodes[i]);
			g->nodes[i].used = 0;
			g->nodes[i].gen++;
			save_nodes();
			ev_log("node %s removed", id);
			lab_http_reply_json(req, 200, json_pack("{s:s}", "deleted", id));
		} else {
			lab_http_reply_error(req, 405, "use GET or DELETE");
		}
		return;
	}
	if (strcmp(slash, "/series") == 0) {
		struct node *n = &g->nodes[i];
		unsigned long since = 0;
		json_t *a = json_array();

		if (cmd != EVHTTP_REQ_GET) {
			json_decref(a);
			lab_http_reply_error(req, 405, "use GET");
			return;
		}
		if (lab_http_query(req, "since", q, sizeof(q)) != NULL &&
		    opt_parse_uint(q, 0, ULONG_MAX, &since) < 0) {
			json_decref(a);
			lab_http_reply_error(req, 400, "since must be a sample number");
			return;
		}
		for (unsigned k = 0; k < n->n; k++) {
			struct sample *s = &n->ring[(n->head + k) % SERIES_MAX];

			if (s->seq > since)
				json_array_append_new(a, json_pack("{s:I, s:f, s:O}", "seq",
				                      (json_int_t)s->seq, "t", s->t, "stats", s->j));
		}
		lab_http_reply_json(req, 200, json_pack("{s:s, s:s, s:I, s:o}", "id", n->id,
		                    "kind", n->kind, "last", (json_int_t)n->seq, "samples", a));
		return;
	}
	if (strcmp(slash, "/settings") == 0) {
		json_t *j;

		if (strcmp(g->nodes[i].kind, "sctpt") == 0) {
			lab_http_reply_error(req, 400, "sctpt nodes are read-only");
			return;
		}
		if (cmd == EVHTTP_REQ_GET) {
			forward(req, i, EVHTTP_REQ_GET, "/settings", NULL);
			return;
		}
		if (cmd != EVHTTP_REQ_PUT && cmd != EVHTTP_REQ_POST) {
			lab_http_reply_error(req, 405, "use GET or PUT");
			return;
		}
		if ((j = lab_http_read_object(req, 8192, 0)) == NULL)
			return;
		if (g->run.on && i == g->run.send) {
			json_decref(j);
			lab_http_reply_error(req, 409, "the active run drives this sender");
			return;
		}
		forward(req, i, EVHTTP_REQ_PUT, "/settings", j);
		json_decref(j);
		return;
	}
	lab_http_reply_error(req, 404, "try /api/nodes/ID, /series or /settings");
}

static void api_runs(struct evhttp_request *req, const char *rest, enum evhttp_cmd_type cmd)
{
	char id[16];
	const char *slash;
	json_t *rec;

	if (*rest == '\0') {
		if (cmd == EVHTTP_REQ_GET) {
			json_t *a = json_array();
			size_t i;

			json_array_foreach(g->runs, i, rec)
				json_array_append_new(a, run_summary(rec));
			lab_http_reply_json(req, 200, a);
		} else if (cmd == EVHTTP_REQ_POST) {
			json_t *j = lab_http_read_object(req, SC_MAX_TEXT, 0), *out = NULL;
			int code;

			if (j == NULL)
				return;
			code = run_create(j, &out);
			json_decref(j);
			lab_http_reply_json(req, code, out);
		} else {
			lab_http_reply_error(req, 405, "use GET or POST");
		}
		return;
	}
	rest++;
	slash = strchr(rest, '/');
	if ((slash ? (size_t)(slash - rest) : strlen(rest)) >= sizeof(id)) {
		lab_http_reply_error(req, 404, "no such run");
		return;
	}
	snprintf(id, sizeof(id), "%.*s", (int)(slash ? slash - rest : (long)strlen(rest)), rest);
	rec = run_by_id(id);
	if (rec == NULL) {
		lab_http_reply_error(req, 404, "no such run");
		return;
	}
	if (slash == NULL) {
		if (cmd == EVHTTP_REQ_GET) {
			lab_http_reply_json(req, 200, json_incref(rec));
		} else if (cmd == EVHTTP_REQ_DELETE) {
			size_t i;
			json_t *x;

			if (g->run.on && rec == g->run.rec) {
				lab_http_reply_error(req, 409, "the run is in progress (stop it first)");
				return;
			}
			drop_run_file(id);
			json_array_foreach(g->runs, i, x)
				if (x == rec) {
					json_array_remove(g->runs, i);
					break;
				}
			lab_http_reply_json(req, 200, json_pack("{s:s}", "deleted", id));
		} else {
			lab_http_reply_error(req, 405, "use GET or DELETE");
		}
		return;
	}
	if (cmd != EVHTTP_REQ_GET && strcmp(slash, "/stop") != 0) {
		lab_http_reply_error(req, 405, "use GET");
		return;
	}
	if (strcmp(slash, "/stop") == 0) {
		if (cmd != EVHTTP_REQ_POST) {
			lab_http_reply_error(req, 405, "use POST");
			return;
		}
		if (!g->run.on || rec != g->run.rec) {
			lab_http_reply_error(req, 409, "the run is not in progress");
			return;
		}
		run_abort(&g->run.sm, "stopped through the API");
		run_log("stop requested");
		run_pump();
		lab_http_reply_json(req, 202, json_pack("{s:s, s:s}", "id", id, "state",
		                    g->run.on ? run_phase_name(g->run.sm.phase) : "stopping"));
	} else if (strcmp(slash, "/report.json") == 0) {
		char *text = json_dumps(rec, JSON_INDENT(1));
		char fn[40];

		snprintf(fn, sizeof(fn), "sctpt-lab-%s.json", id);
		if (text == NULL) {
			lab_http_reply_error(req, 500, "out of memory");
			return;
		}
		lab_http_reply_text(req, 200, "application/json", text, strlen(text), fn);
		free(text);
	} else if (strcmp(slash, "/report.csv") == 0) {
		char q[16], fn[48];
		int samples = lab_http_query(req, "what", q, sizeof(q)) && strcmp(q, "samples") == 0;
		size_t len;
		char *csv = run_csv(rec, samples, &len);

		snprintf(fn, sizeof(fn), "sctpt-lab-%s-%s.csv", id, samples ? "samples" : "summary");
		if (csv == NULL) {
			lab_http_reply_error(req, 500, "out of memory");
			return;
		}
		lab_http_reply_text(req, 200, "text/csv; charset=utf-8", csv, len, fn);
		free(csv);
	} else {
		lab_http_reply_error(req, 404, "try /api/runs/ID, /stop, /report.json, /report.csv");
	}
}

/* Whether the active run drives a node of testbed i. */
static int run_uses_testbed(int i)
{
	int n[3] = { g->run.send, g->run.recv, g->run.impair };

	if (!g->run.on)
		return 0;
	for (int k = 0; k < 3; k++)
		if (n[k] >= 0 && g->nodes[n[k]].used && tb_owns_node(i, g->nodes[n[k]].id))
			return 1;
	return 0;
}

static void api_testbeds(struct evhttp_request *req, const char *rest,
                         enum evhttp_cmd_type cmd)
{
	char err[300];
	int i;

	if (*rest == '\0') {
		if (cmd == EVHTTP_REQ_GET) {
			lab_http_reply_json(req, 200, tb_list());
		} else if (cmd == EVHTTP_REQ_POST) {
			json_t *j = lab_http_read_object(req, 4096, 1), *out = NULL;
			int code;

			if (j == NULL)
				return;
			code = tb_create(j, &out, err, sizeof(err));
			json_decref(j);
			if (code == 201) {
				poll_all();
				lab_http_reply_json(req, 201, out);
			} else {
				lab_http_reply_error(req, code, err);
			}
		} else {
			lab_http_reply_error(req, 405, "use GET or POST");
		}
		return;
	}
	if ((i = tb_find(rest + 1)) < 0) {
		lab_http_reply_error(req, 404, "no such testbed");
		return;
	}
	if (cmd == EVHTTP_REQ_GET) {
		lab_http_reply_json(req, 200, tb_json(i));
	} else if (cmd == EVHTTP_REQ_DELETE) {
		json_t *j = json_pack("{s:s}", "deleted", rest + 1);

		if (run_uses_testbed(i)) {
			json_decref(j);
			lab_http_reply_error(req, 409, "the active run uses this testbed (stop it first)");
			return;
		}
		tb_delete(i);
		lab_http_reply_json(req, 200, j);
	} else {
		lab_http_reply_error(req, 405, "use GET or DELETE");
	}
}

static void api_cb(struct evhttp_request *req, const char *path, enum evhttp_cmd_type cmd,
                   void *arg)
{
	const char *rest;

	if ((rest = under(path, "/api/nodes")) != NULL && (*rest == '\0' || *rest == '/')) {
		api_nodes(req, rest, cmd);
	} else if ((rest = under(path, "/api/runs")) != NULL && (*rest == '\0' || *rest == '/')) {
		api_runs(req, rest, cmd);
	} else if ((rest = under(path, "/api/testbeds")) != NULL &&
	           (*rest == '\0' || (*rest == '/' && strchr(rest + 1, '/') == NULL))) {
		api_testbeds(req, rest, cmd);
	} else if (strcmp(path, "/api/info") == 0) {
		char upath[PATH_MAX + 32];

		snprintf(upath, sizeof(upath), "%s/uPlot.iife.min.js", g->uplot_dir);
		lab_http_reply_json(req, 200, json_pack("{s:s, s:I, s:b, s:s?, s:f, s:b}",
		        "version", SCTPT_VERSION, "poll_ms", (json_int_t)g->poll_ms,
		        "charts", access(upath, R_OK) == 0,
		        "active_run", g->run.on ? json_string_value(json_object_get(g->run.rec, "id"))
		                                : NULL,
		        "uptime_s", now_s(), "persistent", g->state_dir[0] != '\0'));
	} else if (strcmp(path, "/api/events") == 0) {
		lab_http_reply_json(req, 200, json_incref(g->events));
	} else if (strcmp(path, "/api/scenarios/check") == 0) {
		json_t *j;
		struct scenario sc;
		char err[240], *text;

		if (cmd != EVHTTP_REQ_POST) {
			lab_http_reply_error(req, 405, "use POST");
			return;
		}
		if ((j = lab_http_read_object(req, SC_MAX_TEXT, 0)) == NULL)
			return;
		text = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		if (text == NULL || sc_parse(text, strlen(text), &sc, err, sizeof(err)) < 0) {
			lab_http_reply_error(req, 400, text ? err : "out of memory");
			free(text);
			return;
		}
		free(text);
		lab_http_reply_json(req, 200, sc_to_json(&sc));
	} else if (under(path, "/api/") != NULL || strcmp(path, "/api") == 0) {
		lab_http_reply_error(req, 404, "no such resource (see docs/lab-openapi.yaml)");
	} else if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD) {
		static_file(req, path);
	} else {
		lab_http_reply_error(req, 405, "use GET");
	}
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	double t = now_s();

	if ((t - g->last_poll) * 1000.0 >= (double)g->poll_ms - 5) {
		g->last_poll = t;
		poll_all();
	}
	run_pump();
	tb_tick();
}

/* ---- start-up */

static void restore_done(int status, const char *body, size_t len, void *arg)
{
	free(arg);
	if (status == LAB_HTTP_CANCELLED)
		return;
	if (status == 200)
		ev_log("restored the settings an unfinished run had changed");
	else
		ev_log("could not restore the settings of an unfinished run (HTTP %d)", status);
}

static void restore_unfinished(json_t *rec)
{
	json_t *b = json_object_get(rec, "baseline");
	const char *iu = json_string_value(json_object_get(rec, "impair_url"));
	const char *ru = json_string_value(json_object_get(rec, "recv_url"));
	const char *su = json_string_value(json_object_get(rec, "send_url"));
	char url[URL_MAX + 16], err[120];

	json_object_set_new(rec, "state", json_string("aborted"));
	json_object_set_new(rec, "error", json_string("the controller stopped during the run; "
	                    "at the next start its workload was stopped and the settings impair "
	                    "and recv had at its start were sent back to them (see the events)"));
	if (iu && json_object_get(b, "impair") && strlen(iu) < URL_MAX) {
		json_t *body = impair_restore_body(json_object_get(b, "impair"));
		char *text = json_dumps(body, JSON_COMPACT);
		struct call_arg *a = malloc(sizeof(*a));

		snprintf(url, sizeof(url), "%s/settings", iu);
		if (a && text && lab_http_call(g->base, url, EVHTTP_REQ_PUT, text, NULL, NODE_TIMEOUT_S,
		                               NODE_MAX_ANSWER, restore_done, a,
		                               err, sizeof(err)) == 0)
			a = NULL;
		free(a);
		free(text);
		json_decref(body);
	}
	if (su && strlen(su) < URL_MAX) {
		struct call_arg *a = malloc(sizeof(*a));

		snprintf(url, sizeof(url), "%s/settings", su);
		if (a && lab_http_call(g->base, url, EVHTTP_REQ_PUT, "{\"action\":\"stop\"}", NULL,
		                       NODE_TIMEOUT_S, NODE_MAX_ANSWER, restore_done, a, err,
		                       sizeof(err)) == 0)
			a = NULL;
		free(a);
	}
	if (ru && json_object_get(b, "recv") && strlen(ru) < URL_MAX) {
		char *text = json_dumps(json_object_get(b, "recv"), JSON_COMPACT);
		struct call_arg *a = malloc(sizeof(*a));

		snprintf(url, sizeof(url), "%s/settings", ru);
		if (a && text && lab_http_call(g->base, url, EVHTTP_REQ_PUT, text, NULL, NODE_TIMEOUT_S,
		                               NODE_MAX_ANSWER, restore_done, a,
		                               err, sizeof(err)) == 0)
			a = NULL;
		free(a);
		free(text);
	}
	json_object_del(rec, "baseline");
	save_run(rec);
}

static int mkdir_p(const char *dir)
{
	char p[PATH_MAX + 64];

	snprintf(p, sizeof(p), "%s", dir);
	for (char *c = p + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -1;
		*c = '/';
	}
	return mkdir(p, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

static int cmp_run(const void *a, const void *b)
{
	const char *x = json_string_value(json_object_get(*(json_t *const *)a, "id"));
	const char *y = json_string_value(json_object_get(*(json_t *const *)b, "id"));

	return strcmp(x, y);
}

/* Nodes and runs of an earlier controller; bad files are skipped, said so. */
static int load_state(void)
{
	char path[PATH_MAX + 40];
	json_t *nodes, *list[1024];
	size_t nlist = 0, i;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/runs", g->state_dir);
	if (mkdir_p(path) < 0) {
		log_err("controller: cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/nodes.json", g->state_dir);
	nodes = read_json_file(path, 1u << 20);
	if (json_is_array(nodes)) {
		json_t *n;
		char err[200];

		json_array_foreach(nodes, i, n)
			if (!json_is_object(n) || node_add(n, err, sizeof(err)) < 0)
				log_warn("controller: %s: node %zu skipped", path, i);
	}
	json_decref(nodes);
	snprintf(path, sizeof(path), "%s/runs", g->state_dir);
	d = opendir(path);
	while (d != NULL && (de = readdir(d)) != NULL && nlist < 1024) {
		size_t n = strlen(de->d_name);
		unsigned num;
		char full[PATH_MAX + 300];
		json_t *rec;

		if (n != 12 || de->d_name[0] != 'r' || strcmp(de->d_name + 7, ".json") != 0 ||
		    sscanf(de->d_name, "r%6u", &num) != 1)
			continue;
		snprintf(full, sizeof(full), "%s/%s", path, de->d_name);
		rec = read_json_file(full, RUN_FILE_MAX);
		if (!json_is_object(rec) || !json_is_string(json_object_get(rec, "id")) ||
		    strlen(json_string_value(json_object_get(rec, "id"))) != 7 ||
		    strncmp(json_string_value(json_object_get(rec, "id")), de->d_name, 7) != 0 ||
		    !json_is_string(json_object_get(rec, "name")) ||
		    !json_is_array(json_object_get(rec, "iterations"))) {
			log_warn("controller: %s is not a run record; skipped", full);
			json_decref(rec);
			continue;
		}
		if (num > g->next_run)
			g->next_run = num;
		list[nlist++] = rec;
	}
	if (d != NULL)
		closedir(d);
	qsort(list, nlist, sizeof(list[0]), cmp_run);
	for (i = 0; i < nlist; i++) {
		const char *st = json_string_value(json_object_get(list[i], "state"));

		if (st == NULL || (strcmp(st, "done") != 0 && strcmp(st, "aborted") != 0 &&
		                   strcmp(st, "failed") != 0))
			restore_unfinished(list[i]);
		json_array_append_new(g->runs, list[i]);
	}
	trim_runs();
	return 0;
}

static void on_signal(int sig, void *arg)
{
	if (g->run.on && !g->run.sm.abort_req) {
		/* Put impair back first; a second signal leaves at once. */
		g->exiting = 1;
		run_abort(&g->run.sm, "the controller was stopped");
		run_pump();
		if (g->run.on) {
			struct timeval tv = { NODE_TIMEOUT_S * 3, 0 };

			event_base_loopexit(g->base, &tv);
			return;
		}
	}
	event_base_loopexit(g->base, NULL);
}

static void usage(FILE *f)
{
	fprintf(f,
	"Usage: sctpt-lab controller --listen 127.0.0.1:PORT [OPTIONS]\n"
	"\n"
	"The lab's controller: register the nodes (sctpt-lab send, recv, impair\n"
	"and sctpt --metrics endpoints), and it polls their /stats into time\n"
	"series, forwards control changes to them, runs scenarios (a workload\n"
	"under an impairment timeline, repeated, through several SOCKS proxies side\n"
	"by side) and keeps their results.  A web dashboard and the REST API\n"
	"(docs/lab-openapi.yaml) are served on the same port.  As root it also\n"
	"builds testbeds: sctpt, ssh -D and shadowsocks between send and recv in\n"
	"two network namespaces joined by impair, for the side-by-side comparison.\n"
	"\n"
	"Options:\n"
	"  --listen ADDR:PORT   where to serve (loopback only; port 0: any, logged)\n"
	"  --state-dir DIR      keep nodes and runs here (created; default: memory only)\n"
	"  --max-runs N         runs kept, oldest dropped first (1..1000, default 50)\n"
	"  --poll MS            how often nodes are polled (100..60000, default 500)\n"
	"  --web-dir DIR        the dashboard's files (default %s)\n"
	"  --uplot-dir DIR      uPlot's dist/ directory from npm (default\n"
	"                       WEB-DIR/node_modules/uplot/dist if there, else\n"
	"                       %s, where meson\n"
	"                       install put it; 'npm ci' in src/lab/web, run by\n"
	"                       scripts/setup.sh, installs it)\n"
	"  --remote-nodes       allow node URLs that are not loopback addresses\n"
	"  --sctpt-bin PATH     the sctpt binary a testbed starts (default: sctpt\n"
	"                       next to this sctpt-lab)\n"
	"  -v, --verbose        more log output\n"
	"  -q, --quiet          less log output\n"
	"  -h, --help           this help\n"
	"\n"
	"API (JSON; Host, Origin and Content-Type are checked as for impair's API):\n"
	"  GET/POST   /api/nodes               list / register {id, kind, url, token?}\n"
	"  GET/DELETE /api/nodes/ID\n"
	"  GET        /api/nodes/ID/series?since=SEQ   polled /stats samples\n"
	"  GET/PUT    /api/nodes/ID/settings   forwarded to the node's /settings\n"
	"  GET/POST   /api/runs                list / start a run (body: a scenario)\n"
	"  GET/DELETE /api/runs/ID\n"
	"  POST       /api/runs/ID/stop        abort; impair and recv are restored\n"
	"  GET        /api/runs/ID/report.json, /api/runs/ID/report.csv[?what=samples]\n"
	"  POST       /api/scenarios/check     parse a scenario, change nothing\n"
	"  GET/POST   /api/testbeds            list / build one (root): {peers?, loss?,\n"
	"                                      delay_ms?, seed?}; its \"scenario\" is the\n"
	"                                      side-by-side comparison for /api/runs\n"
	"  GET/DELETE /api/testbeds/ID         DELETE stops its processes, removes its\n"
	"                                      namespaces (also at exit, and after a crash\n"
	"                                      at the next start)\n"
	"  GET        /api/info, /api/events\n"
	"\n"
	"Scenario example (docs/lab.md has the format):\n"
	"  {\"name\": \"loss\", \"duration_s\": 60, \"seed\": 1, \"repeat\": 3,\n"
	"   \"workload\": {\"mode\": \"rpc\", \"streams\": 4, \"rpc_req\": 200, \"rpc_resp\": 2000},\n"
	"   \"timeline\": [\"at 0s loss 2%%\", \"at 30s blackhole c2s\", \"at 45s restore\"]}\n",
	LAB_WEB_DIR, LAB_UPLOT_DIR);
}

enum { O_LISTEN = 256, O_STATE, O_MAX_RUNS, O_POLL, O_WEB, O_UPLOT, O_REMOTE, O_SCTPT_BIN };

int controller_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "max-runs", required_argument, NULL, O_MAX_RUNS },
		{ "poll", required_argument, NULL, O_POLL },
		{ "web-dir", required_argument, NULL, O_WEB },
		{ "uplot-dir", required_argument, NULL, O_UPLOT },
		{ "remote-nodes", no_argument, NULL, O_REMOTE },
		{ "sctpt-bin", required_argument, NULL, O_SCTPT_BIN },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct ctl c;
	const char *listen = NULL;
	char err[200];
	int opt, verbose = 0, quiet = 0, bad = 0;
	struct timeval tv = { 0, 100000 };

	memset(&c, 0, sizeof(c));
	g = &c;
	c.poll_ms = 500;
	c.max_runs = 50;
	snprintf(c.web_dir, sizeof(c.web_dir), "%s", LAB_WEB_DIR);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "qvh", lo, NULL)) != -1) {
		switch (opt) {
		case O_LISTEN: listen = optarg; break;
		case O_STATE: bad = strlen(optarg) >= PATH_MAX - 64 || optarg[0] == '\0';
			if (!bad)
				strcpy(c.state_dir, optarg);
			break;
		case O_MAX_RUNS: bad = opt_parse_uint(optarg, 1, 1000, &c.max_runs) < 0; break;
		case O_POLL: bad = opt_parse_uint(optarg, 100, 60000, &c.poll_ms) < 0; break;
		case O_WEB:
		case O_UPLOT:
			bad = strlen(optarg) >= PATH_MAX - 64 || optarg[0] == '\0';
			if (!bad)
				strcpy(opt == O_WEB ? c.web_dir : c.uplot_dir, optarg);
			break;
		case O_REMOTE: c.remote_nodes = 1; break;
		case O_SCTPT_BIN: bad = strlen(optarg) >= PATH_MAX - 64 || optarg[0] == '\0';
			if (!bad)
				strcpy(c.sctpt_bin, optarg);
			break;
		case 'q': quiet++; break;
		case 'v': verbose++; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (bad) {
			fprintf(stderr, "sctpt-lab controller: bad value for --%s: '%s'\n",
			        lo[opt - O_LISTEN].name, optarg);
			return 2;
		}
	}
	if (optind < argc || listen == NULL) {
		fprintf(stderr, "sctpt-lab controller: %s\n", listen == NULL ?
		        "--listen ADDR:PORT is required" : "unexpected argument");
		usage(stderr);
		return 2;
	}
#ifdef LAB_WEB_SRC_DIR
	{
		char idx[PATH_MAX + 16];
		int given = 0;

		for (int k = 1; k < argc; k++)
			given |= strncmp(argv[k], "--web-dir", 9) == 0;
		snprintf(idx, sizeof(idx), "%s/index.html", c.web_dir);
		if (!given && access(idx, R_OK) != 0)
			snprintf(c.web_dir, sizeof(c.web_dir), "%s", LAB_WEB_SRC_DIR);
	}
#endif
	if (c.uplot_dir[0] == '\0') {
		/* npm's copy next to the dashboard (a build tree), else where meson installed it. */
		char probe[PATH_MAX + 32];

		snprintf(c.uplot_dir, sizeof(c.uplot_dir), "%.*s/node_modules/uplot/dist",
		         PATH_MAX - 64, c.web_dir);
		snprintf(probe, sizeof(probe), "%s/uPlot.iife.min.js", c.uplot_dir);
		if (access(probe, R_OK) != 0 && LAB_UPLOT_DIR[0] != '\0')
			snprintf(c.uplot_dir, sizeof(c.uplot_dir), "%s", LAB_UPLOT_DIR);
	}
	opt_set_verbosity(verbose, quiet);
	clock_gettime(CLOCK_MONOTONIC, &c.t0);
	c.run.send = c.run.recv = c.run.impair = -1;
	c.base = event_base_new();
	c.runs = json_array();
	c.events = json_array();
	if (c.base == NULL || c.runs == NULL || c.events == NULL)
		return 1;
	c.tick = event_new(c.base, -1, EV_PERSIST, tick_cb, &c);
	if (c.state_dir[0] != '\0' && load_state() < 0)
		return 1;
	if (tb_init(c.base, c.state_dir, c.sctpt_bin) < 0) {
		log_err("controller: cannot watch child processes");
		return 1;
	}
	c.http = lab_http_new(c.base, listen, "controller", api_cb, &c, err, sizeof(err));
	if (c.http == NULL) {
		log_err("controller: --listen: %s", err);
		return 1;
	}
	{
		char upath[PATH_MAX + 32];

		snprintf(upath, sizeof(upath), "%s/uPlot.iife.min.js", c.uplot_dir);
		if (access(upath, R_OK) != 0)
			log_warn("controller: no uPlot at %s: the dashboard has no charts (run "
			         "scripts/setup.sh, or give --uplot-dir)", c.uplot_dir);
	}
	event_add(c.tick, &tv);
	if (sig_on_exit(c.base, on_signal, &c) < 0)
		return 1;
	log_notice("controller: dashboard on http://%.*s:%u/", (int)(strrchr(listen, ':') -
	           listen), listen, lab_http_port(c.http));
	log_notice("controller: ready");
	event_base_dispatch(c.base);
	tb_shutdown();
	lab_http_cancel_all();
	for (int i = 0; i < MAX_NODES; i++)
		node_clear(&c.nodes[i]);
	lab_http_free(c.http);
	event_free(c.tick);
	json_decref(c.runs);
	json_decref(c.events);
	if (c.run.on) {
		json_decref(c.run.rec);
		json_decref(c.run.base_impair);
		json_decref(c.run.base_recv);
		json_decref(c.run.iter);
	}
	event_base_free(c.base);
	return 0;
}
