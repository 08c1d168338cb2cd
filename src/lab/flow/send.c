/*
 * sctpt-lab send: opens N streams to `sctpt-lab recv`, directly or through
 * a SOCKS5 proxy (the sctpt client's listener, ssh -D, ss-local: the same
 * workload through each is the side-by-side comparison), and sends a seeded
 * pattern, a file or stdin (bulk), or fixed-size requests whose answers are
 * timed (rpc: the latency distribution).  Each stream ends with recv's
 * trailer, which must match what was sent (bytes and SHA-256).
 *
 * With --api it is a service for the controller: a transfer can be started
 * (with overrides) and stopped through PUT /settings, and the process stays
 * up between transfers.
 */
#include "lab/flow/flow.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/evp.h>

#include "lab/flow/flow_internal.h"
#include "lab/http/http.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/opt.h"
#include "util/sig.h"

#define SEND_CHUNK 16384
#define SEND_HIGH (256u * 1024)        /* keep this much queued above the socket */
#define SEND_MAX_SIZE (1ULL << 50)
#define SEND_MAX_ERRORS 8              /* distinct error lines kept */

enum src { SRC_PATTERN, SRC_FILE, SRC_STDIN };
enum sst { S_CONNECT, S_GREET, S_REQUEST, S_DATA, S_FINISH, S_TRAILER, S_DONE, S_FAILED };
static const char *sst_name[] = { "connecting", "socks-greeting", "socks-request", "sending",
                                  "finishing", "waiting-trailer", "verified", "failed" };

struct cfg {
	int mode;
	unsigned streams;
	uint64_t size;                  /* per stream; 0 with duration */
	unsigned long duration_s;
	uint64_t seed;
	uint32_t rpc_req, rpc_resp;
	unsigned long rpc_count, rpc_gap_ms;
	char socks[NETADDR_HOST_MAX + 8];   /* "" = direct */
	char target[NETADDR_HOST_MAX + 8];
};

struct send;

struct sstream {
	struct send *s;
	unsigned idx;
	enum sst st;
	struct bufferevent *bev;
	struct event *gap;
	EVP_MD_CTX *sha;
	uint64_t sent, resp_got, resp_off, rpc_done, t0_us, trailer_bytes;
	int eof_src;
	char err[160];
};

struct send {
	struct event_base *base;
	struct lab_http *api;
	struct event *tick, *stdin_ev;
	struct cfg cli, cur;
	enum src src;
	int fd;                          /* file or stdin */
	uint64_t file_size;
	unsigned long timeout_s, interval_s;
	int json, quiet, has_api, idle;
	/* the current transfer */
	unsigned transfer;
	const char *state;               /* idle running done failed stopped */
	struct sstream *ss;
	unsigned nss, nfinished, nok;
	uint64_t started_us, ended_us, last_bytes, last_in, last_tick_us, last_print_us;
	double rate, rate_in;                /* bytes/s out (requests, data), in (responses) */
	struct lat_hist lat;
	json_t *errors;
	json_t *last_summary;
	struct progress prog;
	int exit_code;
};

static uint64_t bytes_out(const struct send *s)
{
	uint64_t b = 0;

	for (unsigned i = 0; i < s->nss; i++) {
		const struct sstream *x = &s->ss[i];
		uint64_t q = x->bev ? evbuffer_get_length(bufferevent_get_output(x->bev)) : 0;

		b += x->sent > q ? x->sent - q : 0;
	}
	return b;
}

static uint64_t bytes_in(const struct send *s)
{
	uint64_t b = 0;

	for (unsigned i = 0; i < s->nss; i++)
		b += s->ss[i].resp_off;
	return b;
}

static double elapsed_s(const struct send *s)
{
	uint64_t end = s->ended_us ? s->ended_us : clock_now_us();

	return s->started_us ? (double)(end - s->started_us) / 1e6 : 0;
}

static json_t *summary_json(struct send *s)
{
	json_t *streams = json_array();
	uint64_t b = bytes_out(s);
	double el = elapsed_s(s);
	json_t *j;

	for (unsigned i = 0; i < s->nss && i < 256; i++) {
		struct sstream *x = &s->ss[i];
		json_t *o = json_pack("{s:i, s:s, s:I}", "stream", (int)i, "state", sst_name[x->st],
		                      "bytes", (json_int_t)x->sent);

		if (s->cur.mode == FLOW_RPC)
			json_object_set_new(o, "calls", json_integer((json_int_t)x->rpc_done));
		if (x->err[0])
			json_object_set_new(o, "error", json_string(x->err));
		json_array_append_new(streams, o);
	}
	j = json_pack("{s:s, s:s, s:i, s:s, s:s, s:i, s:i, s:i, s:I, s:f, s:f, s:f, s:I, s:f, s:I,"
	              " s:s, s:s, s:O, s:o}",
	        "role", "send",
	        "version", SCTPT_VERSION,
	        "transfer", (int)s->transfer,
	        "state", s->state,
	        "mode", s->cur.mode == FLOW_RPC ? "rpc" : "bulk",
	        "streams_total", (int)s->nss,
	        "streams_ok", (int)s->nok,
	        "streams_failed", (int)(s->nfinished - s->nok),
	        "bytes", (json_int_t)b,
	        "elapsed_s", el,
	        "goodput_bps", el > 0 ? (double)b * 8.0 / el : 0.0,
	        "rate_bps", s->rate * 8.0,
	        "bytes_in", (json_int_t)bytes_in(s),
	        "rate_in_bps", s->rate_in * 8.0,
	        "seed", (json_int_t)(s->cur.seed & 0x7fffffffffffffffULL),
	        "via", s->cur.socks[0] ? s->cur.socks : "direct",
	        "target", s->cur.target,
	        "errors", s->errors,
	        "streams", streams);
	if (s->cur.mode == FLOW_BULK)
		json_object_set_new(j, "bytes_total", s->cur.size && s->src != SRC_STDIN ?
		                    json_integer((json_int_t)(s->cur.size * s->nss)) : json_null());
	if (s->cur.mode == FLOW_RPC) {
		json_t *l = lat_to_json(&s->lat);

		json_object_set_new(l, "req", json_integer(s->cur.rpc_req));
		json_object_set_new(l, "resp", json_integer(s->cur.rpc_resp));
		json_object_set_new(j, "rpc", l);
	}
	return j;
}

static void print_summary(struct send *s)
{
	json_t *j = summary_json(s);

	if (s->json) {
		json_dumpf(j, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		fflush(stdout);
	} else {
		char b[32], r[32];
		double el = elapsed_s(s);
		uint64_t by = bytes_out(s);

		fprintf(stderr, "send: transfer %u %s: %u/%u streams verified, %s in %.2f s "
		        "(%s/s, %.1f Mbit/s)\n", s->transfer, s->state, s->nok, s->nss,
		        fmt_bytes((double)by, b, sizeof(b)), el,
		        fmt_bytes(el > 0 ? (double)by / el : 0, r, sizeof(r)),
		        el > 0 ? (double)by * 8 / el / 1e6 : 0);
		if (s->cur.mode == FLOW_RPC && s->lat.n > 0)
			fprintf(stderr, "send: rpc %llu calls of %u/%u bytes: p50 %.2f ms, p90 %.2f ms, "
			        "p99 %.2f ms, max %.2f ms\n", (unsigned long long)s->lat.n,
			        s->cur.rpc_req, s->cur.rpc_resp,
			        lat_quantile(&s->lat, 0.5) / 1000.0, lat_quantile(&s->lat, 0.9) / 1000.0,
			        lat_quantile(&s->lat, 0.99) / 1000.0, s->lat.max_us / 1000.0);
		for (size_t i = 0; i < json_array_size(s->errors); i++)
			fprintf(stderr, "send: error: %s\n",
			        json_string_value(json_array_get(s->errors, i)));
	}
	json_decref(s->last_summary);
	s->last_summary = j;
}

static void stream_close(struct sstream *x)
{
	if (x->bev) {
		bufferevent_free(x->bev);
		x->bev = NULL;
	}
	if (x->gap) {
		event_free(x->gap);
		x->gap = NULL;
	}
	EVP_MD_CTX_free(x->sha);
	x->sha = NULL;
}

static void transfer_end(struct send *s, const char *state)
{
	uint64_t b = bytes_out(s);

	for (unsigned i = 0; i < s->nss; i++) {
		struct sstream *x = &s->ss[i];

		if (x->bev) {
			/* What was queued when we stopped counts as not sent. */
			uint64_t q = evbuffer_get_length(bufferevent_get_output(x->bev));

			x->sent -= q < x->sent ? q : x->sent;
		}
		stream_close(x);
	}
	(void)b;
	if (s->stdin_ev)
		event_del(s->stdin_ev);
	s->ended_us = clock_now_us();
	s->state = state;
	if (s->prog.tty && !s->quiet && !s->json)
		progress_show(&s->prog, stderr, "send", bytes_out(s), 0, s->rate,
		              (s->ended_us - s->started_us) / 1000u, "", 1);
	print_summary(s);
	s->exit_code = strcmp(state, "done") == 0 ? 0 : 1;
	if (!s->has_api)
		event_base_loopexit(s->base, NULL);
}

static void add_error(struct send *s, const char *msg)
{
	for (size_t i = 0; i < json_array_size(s->errors); i++)
		if (strcmp(json_string_value(json_array_get(s->errors, i)), msg) == 0)
			return;
	if (json_array_size(s->errors) < SEND_MAX_ERRORS)
		json_array_append_new(s->errors, json_string(msg));
}

static void stream_done(struct sstream *x, int ok, const char *why)
{
	struct send *s = x->s;

	if (x->st == S_DONE || x->st == S_FAILED)
		return;
	if (!ok) {
		snprintf(x->err, sizeof(x->err), "%s", why);
		add_error(s, why);
		log_info("send: stream %u failed: %s", x->idx, why);
	}
	/* Keep the count of bytes that reached the socket. */
	if (x->bev) {
		uint64_t q = evbuffer_get_length(bufferevent_get_output(x->bev));

		x->sent -= q < x->sent ? q : x->sent;
	}
	stream_close(x);
	x->st = ok ? S_DONE : S_FAILED;
	s->nfinished++;
	if (ok)
		s->nok++;
	if (s->nfinished == s->nss)
		transfer_end(s, s->nok == s->nss ? "done" : "failed");
}

static int time_up(const struct send *s)
{
	return s->cur.duration_s > 0 &&
	       clock_now_us() - s->started_us >= (uint64_t)s->cur.duration_s * 1000000u;
}

/*
 * Only a stream of unknown length ends with a FIN: some proxies
 * (shadowsocks-libev) close both ways on a half-close, and the trailer would
 * be lost.  rpc ends with FLOW_RPC_END; a known length speaks for itself.
 */
static int needs_fin(const struct sstream *x)
{
	const struct send *s = x->s;

	return s->cur.mode == FLOW_BULK && (s->cur.size == 0 || s->src == SRC_STDIN);
}

static void to_trailer(struct sstream *x)
{
	struct timeval to = { (time_t)x->s->timeout_s, 0 };

	if (needs_fin(x))
		shutdown(bufferevent_getfd(x->bev), SHUT_WR);
	x->st = S_TRAILER;
	bufferevent_set_timeouts(x->bev, &to, NULL);
}

static void begin_finish(struct sstream *x)
{
	x->st = S_FINISH;
	if (x->s->cur.mode == FLOW_RPC) {
		static const uint8_t end = FLOW_RPC_END;

		bufferevent_write(x->bev, &end, 1);
	}
	bufferevent_setwatermark(x->bev, EV_WRITE, 0, 0);
	if (evbuffer_get_length(bufferevent_get_output(x->bev)) == 0)
		to_trailer(x);
}

static void stdin_cb(evutil_socket_t fd, short what, void *arg);

/* Queue bulk data up to SEND_HIGH. */
static void fill(struct sstream *x)
{
	struct send *s = x->s;
	struct evbuffer *out = bufferevent_get_output(x->bev);
	uint8_t buf[SEND_CHUNK];

	while (x->st == S_DATA && evbuffer_get_length(out) < SEND_HIGH) {
		size_t n = SEND_CHUNK;
		ssize_t got;

		if (s->cur.duration_s > 0 && time_up(s)) {
			begin_finish(x);
			return;
		}
		if (s->cur.size > 0 && s->src != SRC_STDIN) {
			if (x->sent >= s->cur.size) {
				begin_finish(x);
				return;
			}
			if (s->cur.size - x->sent < n)
				n = (size_t)(s->cur.size - x->sent);
		}
		switch (s->src) {
		case SRC_PATTERN:
			flow_pattern(s->cur.seed, x->idx, x->sent, buf, n);
			got = (ssize_t)n;
			break;
		case SRC_FILE:
			got = pread(s->fd, buf, n, (off_t)x->sent);
			if (got <= 0) {
				stream_done(x, 0, got == 0 ? "the file got shorter" : strerror(errno));
				return;
			}
			break;
		default:
			got = read(s->fd, buf, n);
			if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
				event_add(s->stdin_ev, NULL);
				return;
			}
			if (got < 0) {
				stream_done(x, 0, strerror(errno));
				return;
			}
			if (got == 0) {
				begin_finish(x);
				return;
			}
			break;
		}
		EVP_DigestUpdate(x->sha, buf, (size_t)got);
		bufferevent_write(x->bev, buf, (size_t)got);
		x->sent += (uint64_t)got;
	}
}

static void stdin_cb(evutil_socket_t fd, short what, void *arg)
{
	struct send *s = arg;

	if (s->nss == 1 && s->ss[0].st == S_DATA)
		fill(&s->ss[0]);
}

static void rpc_request(struct sstream *x)
{
	struct send *s = x->s;
	uint8_t buf[SEND_CHUNK];
	uint32_t left = s->cur.rpc_req;

	static const uint8_t op = FLOW_RPC_REQ;

	x->t0_us = clock_now_us();
	x->resp_got = 0;
	bufferevent_write(x->bev, &op, 1);
	while (left > 0) {
		size_t n = left < sizeof(buf) ? left : sizeof(buf);

		flow_pattern(s->cur.seed, x->idx, x->sent, buf, n);
		EVP_DigestUpdate(x->sha, buf, n);
		bufferevent_write(x->bev, buf, n);
		x->sent += n;
		left -= (uint32_t)n;
	}
}

static void rpc_next(struct sstream *x)
{
	struct send *s = x->s;

	if ((s->cur.rpc_count > 0 && x->rpc_done >= s->cur.rpc_count) ||
	    (s->cur.duration_s > 0 && time_up(s))) {
		begin_finish(x);
		return;
	}
	rpc_request(x);
}

static void gap_cb(evutil_socket_t fd, short what, void *arg)
{
	rpc_next(arg);
}

static void start_data(struct sstream *x)
{
	struct send *s = x->s;
	struct flow_hdr h = { 0 };
	uint8_t hb[FLOW_HDR_LEN];
	struct timeval to = { (time_t)s->timeout_s, 0 };

	h.mode = (uint8_t)s->cur.mode;
	h.flags = s->src == SRC_PATTERN || s->cur.mode == FLOW_RPC ? FLOW_F_PATTERN : 0;
	h.stream = x->idx;
	h.seed = s->cur.seed;
	h.length = s->cur.mode == FLOW_BULK && s->cur.size > 0 && s->src != SRC_STDIN ?
	           s->cur.size : FLOW_LEN_UNKNOWN;
	if (s->cur.mode == FLOW_RPC) {
		h.rpc_req = s->cur.rpc_req;
		h.rpc_resp = s->cur.rpc_resp;
	}
	flow_hdr_encode(&h, hb);
	bufferevent_write(x->bev, hb, sizeof(hb));
	x->st = S_DATA;
	if (s->cur.mode == FLOW_RPC) {
		bufferevent_set_timeouts(x->bev, &to, &to);
		rpc_next(x);
		return;
	}
	/* Bulk: nothing to read until the trailer; writes time out when stalled. */
	bufferevent_set_timeouts(x->bev, NULL, &to);
	bufferevent_setwatermark(x->bev, EV_WRITE, SEND_HIGH / 2, 0);
	fill(x);
}

static void socks_request(struct sstream *x)
{
	uint8_t req[300];
	char host[NETADDR_HOST_MAX];
	uint16_t port;
	int n;

	if (netaddr_parse_hostport(x->s->cur.target, host, sizeof(host), &port, 0) < 0 ||
	    (n = flow_socks5_request(host, port, req, sizeof(req))) < 0) {
		stream_done(x, 0, "bad target");
		return;
	}
	bufferevent_write(x->bev, req, (size_t)n);
	x->st = S_REQUEST;
}

static void check_trailer(struct sstream *x, const uint8_t *tb)
{
	struct flow_trailer t;
	uint8_t md[32];
	unsigned int mdlen = 32;
	char msg[160];

	if (flow_trailer_decode(tb, &t) < 0) {
		stream_done(x, 0, "recv answered with garbage (no trailer)");
		return;
	}
	EVP_DigestFinal_ex(x->sha, md, &mdlen);
	x->trailer_bytes = t.bytes;
	if (t.status == FLOW_BAD_PATTERN) {
		snprintf(msg, sizeof(msg), "recv saw data that is not the pattern at offset %llu",
		         (unsigned long long)t.bad_offset);
		stream_done(x, 0, msg);
	} else if (t.bytes != x->sent) {
		snprintf(msg, sizeof(msg), "recv got %llu bytes of %llu sent",
		         (unsigned long long)t.bytes, (unsigned long long)x->sent);
		stream_done(x, 0, msg);
	} else if (memcmp(md, t.sha256, 32) != 0) {
		stream_done(x, 0, "recv's SHA-256 differs from what was sent");
	} else if (t.status != FLOW_OK) {
		stream_done(x, 0, "recv counted a different length");
	} else {
		if (x->s->nss == 1 && x->s->src != SRC_PATTERN && !x->s->quiet) {
			char h[65];

			flow_hex(md, 32, h);
			log_notice("send: sha256 %s verified by recv", h);
		}
		stream_done(x, 1, NULL);
	}
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct sstream *x = arg;
	struct send *s = x->s;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t buf[SEND_CHUNK];
	char err[120];

	for (;;) {
		size_t avail = evbuffer_get_length(in);
		int n;

		switch (x->st) {
		case S_GREET:
			if (avail < 2)
				return;
			evbuffer_remove(in, buf, 2);
			if (buf[0] != 5 || buf[1] != 0) {
				stream_done(x, 0, buf[0] != 5 ? "not a SOCKS5 proxy"
				            : "the SOCKS5 proxy wants authentication");
				return;
			}
			socks_request(x);
			break;
		case S_REQUEST:
			n = flow_socks5_reply_len(evbuffer_pullup(in, avail < 262 ? -1 : 262),
			                          avail < 262 ? avail : 262, err, sizeof(err));
			if (n < 0) {
				stream_done(x, 0, err);
				return;
			}
			if (n == 0)
				return;
			evbuffer_drain(in, (size_t)n);
			start_data(x);
			if (x->st == S_FAILED)
				return;
			break;
		case S_DATA:
		case S_FINISH:
		case S_TRAILER:
			if (s->cur.mode == FLOW_RPC && x->st == S_DATA) {
				size_t want = s->cur.rpc_resp - x->resp_got;
				size_t m = avail < want ? avail : want;

				if (m > sizeof(buf))
					m = sizeof(buf);
				if (m == 0)
					return;
				evbuffer_remove(in, buf, m);
				if (flow_pattern_check(s->cur.seed, x->idx ^ 0x80000000u, x->resp_off,
				                       buf, m) < m) {
					stream_done(x, 0, "the response is not the pattern");
					return;
				}
				x->resp_off += m;
				x->resp_got += m;
				if (x->resp_got == s->cur.rpc_resp) {
					lat_add(&s->lat, clock_now_us() - x->t0_us);
					x->rpc_done++;
					if (s->cur.rpc_gap_ms > 0) {
						struct timeval tv = { (time_t)(s->cur.rpc_gap_ms / 1000),
						        (suseconds_t)(s->cur.rpc_gap_ms % 1000) * 1000 };

						evtimer_add(x->gap, &tv);
					} else {
						rpc_next(x);
					}
				}
				break;
			}
			if (avail == 0)
				return;
			if (x->st != S_TRAILER || avail > FLOW_TRAILER_LEN) {
				stream_done(x, 0, "recv sent data before the trailer");
				return;
			}
			if (avail < FLOW_TRAILER_LEN)
				return;
			evbuffer_remove(in, buf, FLOW_TRAILER_LEN);
			check_trailer(x, buf);
			return;
		default:
			return;
		}
	}
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct sstream *x = arg;

	if (x->st == S_DATA && x->s->cur.mode == FLOW_BULK) {
		fill(x);
	} else if (x->st == S_FINISH &&
	           evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		to_trailer(x);
	}
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct sstream *x = arg;
	struct send *s = x->s;

	if (what & BEV_EVENT_CONNECTED) {
		struct timeval to = { (time_t)s->timeout_s, 0 };
		int one = 1;

		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (s->cur.socks[0]) {
			bufferevent_set_timeouts(bev, &to, &to);
			static const uint8_t greet[] = { 5, 1, 0 };

			bufferevent_write(bev, greet, sizeof(greet));
			x->st = S_GREET;
		} else {
			start_data(x);
		}
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		stream_done(x, 0, x->st == S_TRAILER ? "no trailer from recv (timeout)"
		            : "stalled (timeout)");
		return;
	}
	if (what & BEV_EVENT_EOF) {
		stream_done(x, 0, x->st == S_TRAILER ? "closed before the trailer"
		            : "the connection was closed");
		return;
	}
	{
		char msg[160];
		int e = EVUTIL_SOCKET_ERROR();

		snprintf(msg, sizeof(msg), "%s: %s", x->st == S_CONNECT ? "connect" : "connection",
		         e ? evutil_socket_error_to_string(e) : "error");
		stream_done(x, 0, msg);
	}
}

static int stream_open(struct send *s, struct sstream *x, const struct sockaddr *sa,
                       socklen_t len)
{
	x->s = s;
	x->sha = EVP_MD_CTX_new();
	x->bev = bufferevent_socket_new(s->base, -1, BEV_OPT_CLOSE_ON_FREE);
	x->gap = evtimer_new(s->base, gap_cb, x);
	if (x->sha == NULL || x->bev == NULL || x->gap == NULL ||
	    EVP_DigestInit_ex(x->sha, EVP_sha256(), NULL) != 1)
		return -1;
	bufferevent_setcb(x->bev, read_cb, write_cb, event_cb, x);
	bufferevent_enable(x->bev, EV_READ | EV_WRITE);
	{
		struct timeval to = { (time_t)s->timeout_s, 0 };

		bufferevent_set_timeouts(x->bev, &to, &to);
	}
	x->st = S_CONNECT;
	if (bufferevent_socket_connect(x->bev, sa, (int)len) < 0)
		return -1;
	return 0;
}

/* Check a configuration; 0 or -1 with err. */
static int cfg_check(const struct send *s, const struct cfg *c, struct sockaddr_storage *ss,
                     socklen_t *len, char *err, size_t errlen)
{
	char host[NETADDR_HOST_MAX];
	uint16_t port;

	if (c->streams < 1 || c->streams > FLOW_MAX_STREAMS) {
		snprintf(err, errlen, "streams must be 1..%d", FLOW_MAX_STREAMS);
		return -1;
	}
	if (s->src == SRC_STDIN && c->streams != 1 && c->mode == FLOW_BULK) {
		snprintf(err, errlen, "stdin can feed one stream only");
		return -1;
	}
	if (c->mode == FLOW_RPC && c->rpc_count == 0 && c->duration_s == 0) {
		snprintf(err, errlen, "rpc needs --rpc-count or --duration");
		return -1;
	}
	if (c->mode == FLOW_BULK && c->size == 0 && c->duration_s == 0 && s->src == SRC_PATTERN) {
		snprintf(err, errlen, "the pattern needs --size or --duration");
		return -1;
	}
	if (netaddr_parse_hostport(c->target, host, sizeof(host), &port, 0) < 0) {
		snprintf(err, errlen, "target must be HOST:PORT");
		return -1;
	}
	if (c->socks[0]) {
		if (netaddr_parse_hostport(c->socks, host, sizeof(host), &port, 0) < 0 ||
		    netaddr_from_numeric(host, port, ss, len) < 0) {
			snprintf(err, errlen, "socks must be a numeric ADDR:PORT");
			return -1;
		}
	} else if (netaddr_from_numeric(host, port, ss, len) < 0) {
		snprintf(err, errlen, "a direct target must be a numeric ADDR:PORT "
		         "(names go through --socks)");
		return -1;
	}
	return 0;
}

static int transfer_start(struct send *s, const struct cfg *c, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (cfg_check(s, c, &ss, &len, err, errlen) < 0)
		return -1;
	if (s->ss != NULL && strcmp(s->state, "running") == 0) {
		snprintf(err, errlen, "a transfer is running (stop it first)");
		return -1;
	}
	if (s->src == SRC_FILE || (s->src == SRC_STDIN && s->transfer > 0)) {
		if (s->src == SRC_STDIN) {
			snprintf(err, errlen, "stdin was used up by the first transfer");
			return -1;
		}
	}
	free(s->ss);
	s->ss = calloc(c->streams, sizeof(*s->ss));
	if (s->ss == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->cur = *c;
	if (s->src == SRC_FILE)
		s->cur.size = s->file_size;
	s->nss = c->streams;
	s->nfinished = s->nok = 0;
	s->transfer++;
	s->state = "running";
	s->started_us = s->last_tick_us = s->last_print_us = clock_now_us();
	s->ended_us = 0;
	s->last_bytes = s->last_in = 0;
	s->rate = s->rate_in = 0;
	lat_reset(&s->lat);
	json_array_clear(s->errors);
	log_info("send: transfer %u: %u %s stream(s) to %s via %s", s->transfer, c->streams,
	         c->mode == FLOW_RPC ? "rpc" : "bulk", c->target, c->socks[0] ? c->socks : "direct");
	for (unsigned i = 0; i < s->nss; i++) {
		s->ss[i].idx = i;
		if (stream_open(s, &s->ss[i], (struct sockaddr *)&ss, len) < 0) {
			s->ss[i].s = s;
			stream_done(&s->ss[i], 0, "cannot open a socket");
			if (s->ss == NULL || strcmp(s->state, "running") != 0)
				break;
		}
	}
	return 0;
}

static void transfer_stop(struct send *s)
{
	if (s->ss == NULL || strcmp(s->state, "running") != 0)
		return;
	for (unsigned i = 0; i < s->nss; i++) {
		if (s->ss[i].st != S_DONE && s->ss[i].st != S_FAILED) {
			snprintf(s->ss[i].err, sizeof(s->ss[i].err), "stopped");
			if (s->ss[i].bev) {
				uint64_t q = evbuffer_get_length(bufferevent_get_output(s->ss[i].bev));

				s->ss[i].sent -= q < s->ss[i].sent ? q : s->ss[i].sent;
			}
			stream_close(&s->ss[i]);
			s->ss[i].st = S_FAILED;
			s->nfinished++;
		}
	}
	transfer_end(s, "stopped");
}

/* PUT /settings: {"action": "start", overrides...} or {"action": "stop"}. */
static int apply_settings(struct send *s, json_t *j, char *err, size_t errlen)
{
	struct cfg c = s->cli;
	const char *key, *action = NULL;
	json_t *v;

	json_object_foreach(j, key, v) {
		if (strcmp(key, "action") == 0) {
			if (!json_is_string(v) || (strcmp(json_string_value(v), "start") != 0 &&
			                           strcmp(json_string_value(v), "stop") != 0)) {
				snprintf(err, errlen, "action must be \"start\" or \"stop\"");
				return -1;
			}
			action = json_string_value(v);
		} else if (strcmp(key, "mode") == 0) {
			if (!json_is_string(v) || (strcmp(json_string_value(v), "bulk") != 0 &&
			                           strcmp(json_string_value(v), "rpc") != 0)) {
				snprintf(err, errlen, "mode must be \"bulk\" or \"rpc\"");
				return -1;
			}
			c.mode = strcmp(json_string_value(v), "rpc") == 0 ? FLOW_RPC : FLOW_BULK;
		} else if (strcmp(key, "socks") == 0 || strcmp(key, "target") == 0) {
			char *dst = key[0] == 's' ? c.socks : c.target;

			if (!json_is_string(v) || strlen(json_string_value(v)) >= sizeof(c.socks)) {
				snprintf(err, errlen, "%s must be a string ADDR:PORT", key);
				return -1;
			}
			strcpy(dst, json_string_value(v));
		} else {
			static const struct { const char *k; json_int_t max; } ints[] = {
				{ "streams", FLOW_MAX_STREAMS }, { "bytes", (json_int_t)SEND_MAX_SIZE },
				{ "duration_s", 86400 }, { "seed", INT64_MAX },
				{ "rpc_req", FLOW_RPC_MAX }, { "rpc_resp", FLOW_RPC_MAX },
				{ "rpc_count", 1000000000 }, { "rpc_gap_ms", 60000 },
			};
			size_t i;
			json_int_t x;

			for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
				if (strcmp(key, ints[i].k) == 0)
					break;
			if (i == sizeof(ints) / sizeof(ints[0])) {
				snprintf(err, errlen, "unknown key '%.40s'", key);
				return -1;
			}
			if (!json_is_integer(v) || (x = json_integer_value(v)) < 0 || x > ints[i].max) {
				snprintf(err, errlen, "%s must be an integer 0..%lld", key,
				         (long long)ints[i].max);
				return -1;
			}
			switch (i) {
			case 0: c.streams = (unsigned)x; break;
			case 1: c.size = (uint64_t)x; break;
			case 2: c.duration_s = (unsigned long)x; break;
			case 3: c.seed = (uint64_t)x; break;
			case 4: c.rpc_req = (uint32_t)x; break;
			case 5: c.rpc_resp = (uint32_t)x; break;
			case 6: c.rpc_count = (unsigned long)x; break;
			default: c.rpc_gap_ms = (unsigned long)x; break;
			}
		}
	}
	if (action == NULL) {
		snprintf(err, errlen, "say what to do: {\"action\": \"start\"} or \"stop\"");
		return -1;
	}
	if (strcmp(action, "stop") == 0) {
		transfer_stop(s);
		return 0;
	}
	if (c.mode == FLOW_RPC && (c.rpc_req == 0 || c.rpc_resp == 0)) {
		snprintf(err, errlen, "rpc_req and rpc_resp must be 1..%u", FLOW_RPC_MAX);
		return -1;
	}
	return transfer_start(s, &c, err, errlen);
}

static void api_cb(struct evhttp_request *req, const char *path, enum evhttp_cmd_type cmd,
                   void *arg)
{
	struct send *s = arg;

	if (strcmp(path, "/stats") == 0) {
		if (cmd != EVHTTP_REQ_GET) {
			lab_http_reply_error(req, 405, "use GET");
			return;
		}
		lab_http_reply_json(req, 200, summary_json(s));
	} else if (strcmp(path, "/settings") == 0) {
		char err[200];
		json_t *j;

		if (cmd == EVHTTP_REQ_GET) {
			lab_http_reply_json(req, 200, json_pack("{s:s, s:i}", "state", s->state,
			                                        "transfer", (int)s->transfer));
			return;
		}
		if (cmd != EVHTTP_REQ_PUT && cmd != EVHTTP_REQ_POST) {
			lab_http_reply_error(req, 405, "use GET, PUT or POST");
			return;
		}
		if ((j = lab_http_read_object(req, 4096, 0)) == NULL)
			return;
		if (apply_settings(s, j, err, sizeof(err)) < 0) {
			json_decref(j);
			lab_http_reply_error(req, strstr(err, "running") ? 409 : 400, err);
			return;
		}
		json_decref(j);
		lab_http_reply_json(req, 200, json_pack("{s:s, s:i}", "state", s->state,
		                                        "transfer", (int)s->transfer));
	} else {
		lab_http_reply_error(req, 404, "no such resource: try /stats, /settings");
	}
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct send *s = arg;
	uint64_t now = clock_now_us(), b;
	double dt;

	if (s->ss == NULL || strcmp(s->state, "running") != 0)
		return;
	/* Duration: streams that wait on the window must notice the end too. */
	for (unsigned i = 0; i < s->nss && s->cur.duration_s > 0 && time_up(s); i++)
		if (s->ss[i].st == S_DATA && s->ss[i].bev && s->cur.mode == FLOW_BULK)
			begin_finish(&s->ss[i]);
	if (s->ss == NULL || strcmp(s->state, "running") != 0)
		return;
	b = bytes_out(s);
	dt = (double)(now - s->last_tick_us) / 1e6;
	if (dt >= 0.5) {
		uint64_t in = bytes_in(s);

		s->rate = (double)(b - s->last_bytes) / dt;
		s->rate_in = (double)(in - s->last_in) / dt;
		s->last_bytes = b;
		s->last_in = in;
		s->last_tick_us = now;
	}
	if (s->quiet || s->json)
		return;
	if (!s->prog.tty && now - s->last_print_us < s->interval_s * 1000000u)
		return;
	s->last_print_us = now;
	{
		char extra[80] = "";
		uint64_t total = s->cur.mode == FLOW_BULK && s->src != SRC_STDIN ?
		                 s->cur.size * s->nss : 0;

		if (s->cur.mode == FLOW_RPC)
			snprintf(extra, sizeof(extra), "%llu calls p50 %.2f ms p99 %.2f ms",
			         (unsigned long long)s->lat.n, lat_quantile(&s->lat, 0.5) / 1000.0,
			         lat_quantile(&s->lat, 0.99) / 1000.0);
		else
			snprintf(extra, sizeof(extra), "%u/%u streams done", s->nfinished, s->nss);
		progress_show(&s->prog, stderr, "send", b, total, s->rate,
		              (now - s->started_us) / 1000u, extra, 0);
	}
}

static void on_signal(int sig, void *arg)
{
	struct send *s = arg;

	transfer_stop(s);
	event_base_loopexit(s->base, NULL);
}

static void usage(FILE *f)
{
	fprintf(f,
	"Usage: sctpt-lab send --to HOST:PORT [--socks ADDR:PORT] [OPTIONS]\n"
	"\n"
	"The sending end of the lab: opens --streams TCP streams to 'sctpt-lab recv'\n"
	"at --to, directly or through a SOCKS5 proxy (the sctpt client's --socks\n"
	"listener, ssh -D, ss-local), and sends data over each; recv's trailer\n"
	"confirms the byte count and SHA-256 of every stream.\n"
	"\n"
	"What to send (default: the seeded pattern):\n"
	"  --size BYTES         per stream (k M G: x1000, KiB MiB GiB: x1024)\n"
	"  --duration S         or for S seconds (1..86400)\n"
	"  --file PATH          the file (each stream sends all of it); '-' is stdin\n"
	"                       (one stream)\n"
	"  --seed N             the pattern's seed (default 1)\n"
	"  --rpc REQ[:RESP]     rpc mode: requests of REQ bytes, each answered with\n"
	"                       RESP bytes (default RESP = REQ; 1..1MiB), timed:\n"
	"                       p50/p90/p99 latency in the summary\n"
	"  --rpc-count N        requests per stream (default 1000), or --duration\n"
	"  --rpc-gap MS         think time between a response and the next request\n"
"                       (default 0)\n"
	"\n"
	"How:\n"
	"  --to HOST:PORT       recv's address (a name is passed to the proxy)\n"
	"  --socks ADDR:PORT    connect through this SOCKS5 proxy (no auth)\n"
	"  --streams N          concurrent streams (1..%d, default 1)\n"
	"  --timeout S          fail a stream stalled for S seconds (1..3600, default 60)\n"
	"\n"
	"Output and control:\n"
	"  --api ADDR:PORT      serve the JSON API here (loopback only, port 0: any);\n"
	"                       the process then stays up between transfers\n"
	"  --idle               with --api: wait for a start through the API\n"
	"  --interval S         seconds between plain progress lines (default 1)\n"
	"  --json               print the summary as JSON on stdout\n"
	"  -q, --quiet          no progress display\n"
	"  -v, --verbose        more log output\n"
	"  -h, --help           this help\n"
	"\n"
	"API (JSON; the same Host/Origin/Content-Type checks as impair's):\n"
	"  GET  /stats          state, bytes, goodput_bps, rate_bps, per stream\n"
	"                       state/bytes/error, rpc latency (p50_ms ... cdf)\n"
	"  PUT  /settings       {\"action\": \"start\"} with optional overrides: mode\n"
	"                       (\"bulk\"|\"rpc\"), streams, bytes, duration_s, seed,\n"
	"                       rpc_req, rpc_resp, rpc_count, rpc_gap_ms, socks,\n"
	"                       target (409 while a transfer runs);\n"
	"                       {\"action\": \"stop\"}\n"
	"\n"
	"Exit status: 0 if every stream was verified by recv, 1 if not, 2 on bad\n"
	"usage.\n", FLOW_MAX_STREAMS);
}

enum { O_TO = 256, O_SOCKS, O_STREAMS, O_SIZE, O_DURATION, O_FILE, O_SEED, O_RPC, O_RPC_COUNT,
       O_RPC_GAP, O_TIMEOUT, O_API, O_IDLE, O_INTERVAL, O_JSON };

static int parse_rpc(const char *a, struct cfg *c)
{
	char req[32];
	const char *colon = strchr(a, ':');
	uint64_t q, r;

	if (colon == NULL) {
		if (flow_parse_size(a, FLOW_RPC_MAX, &q) < 0 || q == 0)
			return -1;
		r = q;
	} else {
		if ((size_t)(colon - a) >= sizeof(req))
			return -1;
		memcpy(req, a, (size_t)(colon - a));
		req[colon - a] = '\0';
		if (flow_parse_size(req, FLOW_RPC_MAX, &q) < 0 || q == 0 ||
		    flow_parse_size(colon + 1, FLOW_RPC_MAX, &r) < 0 || r == 0)
			return -1;
	}
	c->mode = FLOW_RPC;
	c->rpc_req = (uint32_t)q;
	c->rpc_resp = (uint32_t)r;
	return 0;
}

static int open_source(struct send *s, const char *file)
{
	struct stat st;

	if (file == NULL) {
		s->src = SRC_PATTERN;
		return 0;
	}
	if (strcmp(file, "-") == 0) {
		s->fd = 0;
		if (fstat(0, &st) == 0 && S_ISREG(st.st_mode)) {
			s->src = SRC_FILE;  /* a redirected file: read it like one */
			s->file_size = (uint64_t)st.st_size;
			return 0;
		}
		s->src = SRC_STDIN;
		fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
		return 0;
	}
	s->fd = open(file, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0 || fstat(s->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "sctpt-lab send: cannot read %s: %s\n", file,
		        s->fd < 0 ? strerror(errno) : "not a regular file");
		return -1;
	}
	s->src = SRC_FILE;
	s->file_size = (uint64_t)st.st_size;
	return 0;
}

int send_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "to", required_argument, NULL, O_TO },
		{ "socks", required_argument, NULL, O_SOCKS },
		{ "streams", required_argument, NULL, O_STREAMS },
		{ "size", required_argument, NULL, O_SIZE },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "file", required_argument, NULL, O_FILE },
		{ "seed", required_argument, NULL, O_SEED },
		{ "rpc", required_argument, NULL, O_RPC },
		{ "rpc-count", required_argument, NULL, O_RPC_COUNT },
		{ "rpc-gap", required_argument, NULL, O_RPC_GAP },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "api", required_argument, NULL, O_API },
		{ "idle", no_argument, NULL, O_IDLE },
		{ "interval", required_argument, NULL, O_INTERVAL },
		{ "json", no_argument, NULL, O_JSON },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct send s;
	const char *api = NULL, *file = NULL;
	char err[200];
	int opt, verbose = 0, bad = 0, rc;
	struct timeval tick = { 0, 250000 };

	memset(&s, 0, sizeof(s));
	s.cli.streams = 1;
	s.cli.seed = 1;
	s.timeout_s = 60;
	s.interval_s = 1;
	s.state = "idle";
	optind = 1;
	while ((opt = getopt_long(argc, argv, "qvh", lo, NULL)) != -1) {
		unsigned long v;

		switch (opt) {
		case O_TO:
		case O_SOCKS:
			if (strlen(optarg) >= sizeof(s.cli.target))
				bad = 1;
			else
				strcpy(opt == O_TO ? s.cli.target : s.cli.socks, optarg);
			break;
		case O_STREAMS:
			bad = opt_parse_uint(optarg, 1, FLOW_MAX_STREAMS, &v) < 0;
			s.cli.streams = (unsigned)v;
			break;
		case O_SIZE: bad = flow_parse_size(optarg, SEND_MAX_SIZE, &s.cli.size) < 0; break;
		case O_DURATION: bad = opt_parse_uint(optarg, 1, 86400, &s.cli.duration_s) < 0; break;
		case O_FILE: file = optarg; break;
		case O_SEED:
			bad = opt_parse_uint(optarg, 0, (unsigned long)INT64_MAX, &v) < 0;
			s.cli.seed = v;
			break;
		case O_RPC: bad = parse_rpc(optarg, &s.cli) < 0; break;
		case O_RPC_COUNT:
			bad = opt_parse_uint(optarg, 1, 1000000000, &s.cli.rpc_count) < 0;
			break;
		case O_RPC_GAP: bad = opt_parse_uint(optarg, 0, 60000, &s.cli.rpc_gap_ms) < 0; break;
		case O_TIMEOUT: bad = opt_parse_uint(optarg, 1, 3600, &s.timeout_s) < 0; break;
		case O_API: api = optarg; break;
		case O_IDLE: s.idle = 1; break;
		case O_INTERVAL: bad = opt_parse_uint(optarg, 1, 3600, &s.interval_s) < 0; break;
		case O_JSON: s.json = 1; break;
		case 'q': s.quiet = 1; break;
		case 'v': verbose++; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (bad) {
			fprintf(stderr, "sctpt-lab send: bad value for --%s: '%s'\n",
			        lo[opt - O_TO].name, optarg);
			return 2;
		}
	}
	if (optind < argc || s.cli.target[0] == '\0') {
		fprintf(stderr, "sctpt-lab send: %s\n", s.cli.target[0] == '\0' ?
		        "--to HOST:PORT is required" : "unexpected argument");
		usage(stderr);
		return 2;
	}
	if (s.idle && api == NULL) {
		fprintf(stderr, "sctpt-lab send: --idle needs --api\n");
		return 2;
	}
	if (s.cli.mode == FLOW_RPC && file != NULL) {
		fprintf(stderr, "sctpt-lab send: --rpc sends the pattern, not --file\n");
		return 2;
	}
	if (s.cli.mode == FLOW_RPC && s.cli.rpc_count == 0 && s.cli.duration_s == 0)
		s.cli.rpc_count = 1000;
	opt_set_verbosity(verbose, 0);   /* -q is about the progress display */
	if (open_source(&s, file) < 0)
		return 2;
	{
		struct sockaddr_storage ss;
		socklen_t len;

		struct cfg chk = s.cli;

		/* --idle: what to send may come with the start request. */
		if (s.idle && chk.size == 0 && chk.duration_s == 0)
			chk.duration_s = 1;
		if (cfg_check(&s, &chk, &ss, &len, err, sizeof(err)) < 0) {
			fprintf(stderr, "sctpt-lab send: %s\n", err);
			return 2;
		}
	}
	s.has_api = api != NULL;
	s.base = event_base_new();
	s.errors = json_array();
	if (s.base == NULL || s.errors == NULL)
		return 1;
	progress_init(&s.prog, stderr);
	if (s.src == SRC_STDIN)
		s.stdin_ev = event_new(s.base, 0, EV_READ, stdin_cb, &s);
	if (api != NULL) {
		s.api = lab_http_new(s.base, api, "send", api_cb, &s, err, sizeof(err));
		if (s.api == NULL) {
			log_err("send: --api: %s", err);
			return 1;
		}
		log_notice("send: API on http://%.*s:%u", (int)(strrchr(api, ':') - api), api,
		           lab_http_port(s.api));
	}
	s.tick = event_new(s.base, -1, EV_PERSIST, tick_cb, &s);
	event_add(s.tick, &tick);
	if (sig_on_exit(s.base, on_signal, &s) < 0)
		return 1;
	if (!s.idle && transfer_start(&s, &s.cli, err, sizeof(err)) < 0) {
		log_err("send: %s", err);
		return 1;
	}
	if (s.has_api)
		log_notice("send: ready");
	event_base_dispatch(s.base);
	rc = s.exit_code;
	for (unsigned i = 0; i < s.nss; i++)
		stream_close(&s.ss[i]);
	free(s.ss);
	lab_http_free(s.api);
	if (s.stdin_ev)
		event_free(s.stdin_ev);
	event_free(s.tick);
	json_decref(s.errors);
	json_decref(s.last_summary);
	event_base_free(s.base);
	return rc;
}
