/*
 * sctpt-lab recv: accepts the streams of `sctpt-lab send` on a TCP port,
 * consumes them one read at a time with a processing delay between reads
 * (changeable at run time through the API: it is what makes the receive
 * window and sctpt's stream credit fill up), verifies the pattern or hashes
 * the data, answers rpc requests, and reports per stream and in total.
 *
 * Peers are hostile: a bad header closes that connection (counted as
 * garbage, logged at a bounded rate), connections are bounded in number and
 * in idle time, and nothing a peer sends is held beyond one read's worth.
 */
#include "lab/flow/flow.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/queue.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/evp.h>

#include "lab/flow/flow_internal.h"
#include "lab/http/http.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/opt.h"
#include "util/sig.h"

#define RECV_HDR_TIMEOUT_S 10
#define RECV_KEEP_DONE 64              /* finished streams kept for /stats */
#define RECV_MAX_DELAY_MS 60000

struct recv;

struct rconn {
	LIST_ENTRY(rconn) link;
	struct recv *r;
	struct bufferevent *bev;
	struct event *resume;
	uint64_t id;
	int have_hdr, paused, eof, closing, in_req;
	struct flow_hdr h;
	uint64_t bytes, rpc_got, rpc_answered, resp_off;
	uint32_t status;
	uint64_t bad_offset;
	EVP_MD_CTX *sha;
	uint64_t started_us;
};

struct recv {
	struct event_base *base;
	struct evconnlistener *lis;
	struct lab_http *api;
	struct event *tick;
	LIST_HEAD(, rconn) conns;
	unsigned nconns, max_conns;
	unsigned long delay_ms, read_size, idle_s, count, interval_s;
	int json, quiet;
	uint64_t next_id, started_us;
	uint64_t bytes, streams_done, streams_ok, streams_failed, garbage, refused, rpc_calls;
	uint64_t last_bytes, last_tick_us, last_print_us;
	double rate;                        /* bytes/s over the last tick */
	json_t *done;                       /* the last RECV_KEEP_DONE finished streams */
	struct progress prog;
	int exit_code;
	struct log_ratelimit garbage_rl;
};

static const char *status_name(uint32_t s)
{
	return s == FLOW_OK ? "ok" : s == FLOW_BAD_PATTERN ? "bad-pattern" : "bad-length";
}

static json_t *conn_json(const struct rconn *c, const char *state, const char *sha)
{
	json_t *j = json_pack("{s:I, s:s, s:s, s:I, s:I, s:b, s:s, s:I}",
	        "id", (json_int_t)c->id,
	        "state", state,
	        "mode", c->h.mode == FLOW_RPC ? "rpc" : "bulk",
	        "stream", (json_int_t)c->h.stream,
	        "bytes", (json_int_t)c->bytes,
	        "pattern", (c->h.flags & FLOW_F_PATTERN) != 0,
	        "status", status_name(c->status),
	        "elapsed_ms", (json_int_t)((clock_now_us() - c->started_us) / 1000u));

	if (sha != NULL)
		json_object_set_new(j, "sha256", json_string(sha));
	if (c->status == FLOW_BAD_PATTERN)
		json_object_set_new(j, "bad_offset", json_integer((json_int_t)c->bad_offset));
	if (c->h.mode == FLOW_RPC)
		json_object_set_new(j, "rpc_answered", json_integer((json_int_t)c->rpc_answered));
	return j;
}

static void conn_free(struct rconn *c)
{
	struct recv *r = c->r;

	LIST_REMOVE(c, link);
	r->nconns--;
	if (c->resume)
		event_free(c->resume);
	if (c->bev)
		bufferevent_free(c->bev);
	EVP_MD_CTX_free(c->sha);
	free(c);
	if (r->count > 0 && r->streams_done >= r->count)
		event_base_loopexit(r->base, NULL);
}

static void keep_done(struct recv *r, json_t *j)
{
	if (json_array_size(r->done) >= RECV_KEEP_DONE)
		json_array_remove(r->done, 0);
	json_array_append_new(r->done, j);
}

static void event_cb(struct bufferevent *bev, short what, void *arg);

static void flushed_cb(struct bufferevent *bev, void *arg)
{
	struct rconn *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_free(c);
}

/* The peer sent its FIN and everything is consumed: answer with the trailer. */
static void conn_finish(struct rconn *c)
{
	struct recv *r = c->r;
	struct flow_trailer t = { 0 };
	uint8_t out[FLOW_TRAILER_LEN];
	char sha[65];
	unsigned int mdlen = 32;

	if (c->h.mode == FLOW_BULK && c->h.length != FLOW_LEN_UNKNOWN &&
	    c->bytes != c->h.length && c->status == FLOW_OK)
		c->status = FLOW_BAD_LENGTH;
	if (c->h.mode == FLOW_RPC && (c->rpc_got != 0 || c->in_req) && c->status == FLOW_OK)
		c->status = FLOW_BAD_LENGTH;       /* a request cut short */
	EVP_DigestFinal_ex(c->sha, t.sha256, &mdlen);
	t.status = c->status;
	t.bytes = c->bytes;
	t.bad_offset = c->bad_offset;
	flow_trailer_encode(&t, out);
	flow_hex(t.sha256, 32, sha);
	r->streams_done++;
	if (c->status == FLOW_OK)
		r->streams_ok++;
	else
		r->streams_failed++;
	if (c->status != FLOW_OK)
		r->exit_code = 1;
	keep_done(r, conn_json(c, "done", sha));
	/* A file's hash is what the researcher compares: printed; pattern streams
	 * verify themselves, and there may be thousands: -v. */
	if (!r->quiet || c->status != FLOW_OK)
		log_msg(c->status != FLOW_OK ? LOG_LEVEL_WARN : (c->h.flags & FLOW_F_PATTERN) ?
		        LOG_LEVEL_INFO : LOG_LEVEL_NOTICE, NULL,
		        "recv: stream %u: %llu bytes, %s, sha256 %s", c->h.stream,
		        (unsigned long long)c->bytes, status_name(c->status), sha);
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_write(c->bev, out, sizeof(out));
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	/* event_cb frees it if the sender goes away before taking the trailer. */
	bufferevent_setcb(c->bev, NULL, flushed_cb, event_cb, c);
}

static void conn_fail(struct rconn *c, const char *why)
{
	struct recv *r = c->r;

	if (c->have_hdr) {
		r->streams_done++;
		r->streams_failed++;
		r->exit_code = 1;
		json_t *j = conn_json(c, "failed", NULL);

		json_object_set_new(j, "error", json_string(why));
		keep_done(r, j);
		log_warn("recv: stream %u failed after %llu bytes: %s", c->h.stream,
		         (unsigned long long)c->bytes, why);
	}
	conn_free(c);
}

static void respond(struct rconn *c)
{
	uint8_t buf[16384];
	uint32_t left = c->h.rpc_resp;

	while (left > 0) {
		size_t n = left < sizeof(buf) ? left : sizeof(buf);

		/* Responses are the pattern of the stream's mirror number. */
		flow_pattern(c->h.seed, c->h.stream ^ 0x80000000u, c->resp_off, buf, n);
		bufferevent_write(c->bev, buf, n);
		c->resp_off += n;
		left -= (uint32_t)n;
	}
	c->rpc_answered++;
	c->r->rpc_calls++;
}

static void schedule_resume(struct rconn *c)
{
	struct timeval tv = { (time_t)(c->r->delay_ms / 1000),
	                      (suseconds_t)(c->r->delay_ms % 1000) * 1000 };

	c->paused = 1;
	bufferevent_disable(c->bev, EV_READ);
	evtimer_add(c->resume, &tv);
}

/* One "read": at most read_size bytes (and never past an rpc request). */
static void consume(struct rconn *c)
{
	struct recv *r = c->r;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	static uint8_t buf[1u << 20];

	while (!c->paused && !c->closing) {
		size_t avail = evbuffer_get_length(in), n;

		if (!c->have_hdr) {
			uint8_t hb[FLOW_HDR_LEN];
			char err[120];
			struct timeval idle = { (time_t)r->idle_s, 0 };

			if (avail < FLOW_HDR_LEN)
				break;
			evbuffer_remove(in, hb, sizeof(hb));
			if (flow_hdr_decode(hb, &c->h, err, sizeof(err)) < 0) {
				r->garbage++;
				log_ratelimited(&r->garbage_rl, LOG_LEVEL_NOTICE,
				                "recv: connection closed: %s", err);
				conn_free(c);
				return;
			}
			c->have_hdr = 1;
			bufferevent_set_timeouts(c->bev, &idle, &idle);
			continue;
		}
		if (c->h.mode == FLOW_RPC && !c->in_req) {
			uint8_t op;

			if (avail == 0)
				break;
			evbuffer_remove(in, &op, 1);
			if (op == FLOW_RPC_END) {
				conn_finish(c);
				return;
			}
			if (op != FLOW_RPC_REQ) {
				r->garbage++;
				conn_fail(c, "bad rpc framing");
				return;
			}
			c->in_req = 1;
			avail--;
		}
		n = r->read_size;
		if (c->h.mode == FLOW_RPC && n > c->h.rpc_req - c->rpc_got)
			n = c->h.rpc_req - c->rpc_got;
		/* One read takes what the socket holds, up to n, as read(2) would
		 * (libevent itself reads at most 4 KiB at a time). */
		while (avail < n && !c->eof) {
			int got = evbuffer_read(in, bufferevent_getfd(c->bev), (int)(n - avail));

			if (got == 0) {
				c->eof = 1;
				bufferevent_disable(c->bev, EV_READ);
			}
			if (got <= 0)
				break;
			avail += (size_t)got;
		}
		if (avail == 0)
			break;
		if (n > avail)
			n = avail;
		evbuffer_remove(in, buf, n);
		EVP_DigestUpdate(c->sha, buf, n);
		if ((c->h.flags & FLOW_F_PATTERN) && c->status == FLOW_OK) {
			size_t bad = flow_pattern_check(c->h.seed, c->h.stream, c->bytes, buf, n);

			if (bad < n) {
				c->status = FLOW_BAD_PATTERN;
				c->bad_offset = c->bytes + bad;
			}
		}
		c->bytes += n;
		r->bytes += n;
		if (c->h.mode == FLOW_BULK && c->h.length != FLOW_LEN_UNKNOWN &&
		    c->bytes > c->h.length && c->status == FLOW_OK)
			c->status = FLOW_BAD_LENGTH;
		if (c->h.mode == FLOW_RPC) {
			c->rpc_got += n;
			if (c->rpc_got == c->h.rpc_req) {
				c->rpc_got = 0;
				c->in_req = 0;
				respond(c);
			}
		} else if (c->h.length != FLOW_LEN_UNKNOWN && c->bytes == c->h.length) {
			conn_finish(c);     /* complete: no need to wait for a FIN */
			return;
		}
		if (r->delay_ms > 0) {
			schedule_resume(c);
			return;
		}
	}
	if (!c->paused && !c->closing && c->eof && evbuffer_get_length(in) == 0) {
		if (!c->have_hdr) {
			conn_free(c);      /* connected and closed: a port probe */
			return;
		}
		conn_finish(c);
	}
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *c = arg;

	size_t avail = evbuffer_get_length(bufferevent_get_input(c->bev));
	size_t want = c->r->read_size;

	c->paused = 0;
	if (c->h.mode == FLOW_RPC)
		want = !c->in_req ? 1 : c->h.rpc_req - c->rpc_got < want ? c->h.rpc_req - c->rpc_got
		                                                       : want;
	if (!c->eof)
		bufferevent_enable(c->bev, EV_READ);
	/* A whole read's worth is there (or no more will come): take it now;
	 * otherwise let the socket fill it first, as a blocking read() would. */
	if (avail >= want || c->eof)
		consume(c);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	consume(arg);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct rconn *c = arg;

	if (c->closing) {
		conn_free(c);   /* the sender went away before taking the trailer */
		return;
	}
	if (what & BEV_EVENT_EOF) {
		c->eof = 1;
		bufferevent_disable(bev, EV_READ);
		consume(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (!c->have_hdr)
			c->r->garbage++;
		conn_fail(c, "idle timeout");
		return;
	}
	conn_fail(c, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
	struct recv *r = arg;
	struct rconn *c;
	struct timeval hto = { RECV_HDR_TIMEOUT_S, 0 };

	if (r->nconns >= r->max_conns || (c = calloc(1, sizeof(*c))) == NULL) {
		struct linger lg = { 1, 0 };

		r->refused++;
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		evutil_closesocket(fd);
		return;
	}
	c->r = r;
	c->id = ++r->next_id;
	c->started_us = clock_now_us();
	c->sha = EVP_MD_CTX_new();
	c->bev = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->resume = evtimer_new(r->base, resume_cb, c);
	LIST_INSERT_HEAD(&r->conns, c, link);
	r->nconns++;
	if (c->sha == NULL || c->bev == NULL || c->resume == NULL ||
	    EVP_DigestInit_ex(c->sha, EVP_sha256(), NULL) != 1) {
		if (c->bev == NULL)
			evutil_closesocket(fd);
		conn_free(c);
		return;
	}
	/* Read no more than one read's worth ahead: the window does the rest. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, r->read_size);
	bufferevent_set_max_single_read(c->bev, r->read_size);
	bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
	bufferevent_set_timeouts(c->bev, &hto, NULL);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static json_t *stats_json(struct recv *r)
{
	json_t *streams = json_array();
	struct rconn *c;
	size_t k = 0;

	LIST_FOREACH(c, &r->conns, link) {
		if (!c->have_hdr || c->closing)
			continue;
		if (k++ >= RECV_KEEP_DONE)
			break;
		json_array_append_new(streams, conn_json(c, c->paused ? "delayed" : "open", NULL));
	}
	return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I,"
	                 " s:o, s:O}",
	        "role", "recv",
	        "version", SCTPT_VERSION,
	        "uptime_ms", (json_int_t)((clock_now_us() - r->started_us) / 1000u),
	        "delay_ms", (json_int_t)r->delay_ms,
	        "read_size", (json_int_t)r->read_size,
	        "conns", (json_int_t)r->nconns,
	        "bytes", (json_int_t)r->bytes,
	        "streams_done", (json_int_t)r->streams_done,
	        "streams_ok", (json_int_t)r->streams_ok,
	        "streams_failed", (json_int_t)r->streams_failed,
	        "garbage", (json_int_t)r->garbage,
	        "refused", (json_int_t)r->refused,
	        "goodput_bps", r->rate * 8.0,
	        "rpc_calls", (json_int_t)r->rpc_calls,
	        "open", streams,
	        "finished", r->done);
}

static void api_cb(struct evhttp_request *req, const char *path, enum evhttp_cmd_type cmd,
                   void *arg)
{
	struct recv *r = arg;

	if (strcmp(path, "/stats") == 0) {
		if (cmd != EVHTTP_REQ_GET) {
			lab_http_reply_error(req, 405, "use GET");
			return;
		}
		lab_http_reply_json(req, 200, stats_json(r));
	} else if (strcmp(path, "/settings") == 0) {
		json_t *j, *v;
		const char *key;

		if (cmd == EVHTTP_REQ_GET) {
			lab_http_reply_json(req, 200, json_pack("{s:I}", "delay_ms",
			                                        (json_int_t)r->delay_ms));
			return;
		}
		if (cmd != EVHTTP_REQ_PUT && cmd != EVHTTP_REQ_POST) {
			lab_http_reply_error(req, 405, "use GET, PUT or POST");
			return;
		}
		if ((j = lab_http_read_object(req, 4096, 0)) == NULL)
			return;
		json_object_foreach(j, key, v) {
			if (strcmp(key, "delay_ms") != 0) {
				json_decref(j);
				lab_http_reply_error(req, 400, "unknown key (want \"delay_ms\")");
				return;
			}
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > RECV_MAX_DELAY_MS) {
				json_decref(j);
				lab_http_reply_error(req, 400, "delay_ms must be an integer 0..60000");
				return;
			}
		}
		v = json_object_get(j, "delay_ms");
		if (v != NULL) {
			r->delay_ms = (unsigned long)json_integer_value(v);
			log_notice("recv: processing delay now %lu ms per read", r->delay_ms);
		}
		json_decref(j);
		lab_http_reply_json(req, 200, json_pack("{s:I}", "delay_ms", (json_int_t)r->delay_ms));
	} else {
		lab_http_reply_error(req, 404, "no such resource: try /stats, /settings");
	}
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct recv *r = arg;
	uint64_t now = clock_now_us();
	double dt = (double)(now - r->last_tick_us) / 1e6;
	char extra[64];

	if (dt > 0)
		r->rate = (double)(r->bytes - r->last_bytes) / dt;
	r->last_bytes = r->bytes;
	r->last_tick_us = now;
	if (r->quiet || r->json)
		return;
	if (!r->prog.tty && now - r->last_print_us < r->interval_s * 1000000u)
		return;
	if (r->nconns == 0 && !r->prog.tty && r->rate == 0)
		return;           /* plain lines only while something happens */
	r->last_print_us = now;
	snprintf(extra, sizeof(extra), "%u open, %llu done, delay %lu ms", r->nconns,
	         (unsigned long long)r->streams_done, r->delay_ms);
	progress_show(&r->prog, stderr, "recv", r->bytes, 0, r->rate,
	              (now - r->started_us) / 1000u, extra, 0);
}

static void on_signal(int sig, void *arg)
{
	struct recv *r = arg;

	event_base_loopexit(r->base, NULL);
}

static void usage(FILE *f)
{
	fprintf(f,
	"Usage: sctpt-lab recv --listen ADDR:PORT [OPTIONS]\n"
	"\n"
	"The receiving end of the lab: accepts the streams of 'sctpt-lab send'\n"
	"(directly, or through a SOCKS proxy: sctpt, ssh -D, ss-local), reads each\n"
	"one at most --read-size bytes at a time, waiting --delay ms after every read (a\n"
	"slow application: the receive window fills and the sender is held back),\n"
	"verifies the seeded pattern or hashes the data (SHA-256, logged), answers\n"
	"rpc requests, and sends the sender a trailer with what it counted.\n"
	"\n"
	"Options:\n"
	"  --listen ADDR:PORT   TCP address to accept streams on (required)\n"
	"  --delay MS           processing delay after each read (0..60000, default 0)\n"
	"  --read-size BYTES    at most this per read: a read takes what the socket\n"
	"                       holds (1..1MiB, default 64KiB)\n"
	"  --count N            exit after N streams (default: run until SIGINT/SIGTERM)\n"
	"  --max-conns N        connections at once (1..10000, default 1024); more\n"
	"                       are reset\n"
	"  --idle-timeout S     close a stream with no data for S seconds (1..3600,\n"
	"                       default 300)\n"
	"  --api ADDR:PORT      serve the JSON API here (loopback only, port 0: any)\n"
	"  --interval S         seconds between plain progress lines (default 1)\n"
	"  --json               print the final summary as JSON on stdout\n"
	"  -q, --quiet          no progress, no per-stream lines\n"
	"  -v, --verbose        more log output\n"
	"  -h, --help           this help\n"
	"\n"
	"API (JSON; the same Host/Origin/Content-Type checks as impair's):\n"
	"  GET  /stats          bytes, goodput_bps, streams_done/ok/failed, garbage,\n"
	"                       open and finished streams (with their sha256)\n"
	"  GET  /settings       {\"delay_ms\": N}\n"
	"  PUT  /settings       {\"delay_ms\": N}: the processing delay, at once\n"
	"\n"
	"Exit status: 0 if every stream verified, 1 if one did not, 2 on bad usage.\n");
}

enum { O_LISTEN = 256, O_DELAY, O_READ_SIZE, O_COUNT, O_MAX_CONNS, O_IDLE, O_API, O_INTERVAL,
       O_JSON };

int recv_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "delay", required_argument, NULL, O_DELAY },
		{ "read-size", required_argument, NULL, O_READ_SIZE },
		{ "count", required_argument, NULL, O_COUNT },
		{ "max-conns", required_argument, NULL, O_MAX_CONNS },
		{ "idle-timeout", required_argument, NULL, O_IDLE },
		{ "api", required_argument, NULL, O_API },
		{ "interval", required_argument, NULL, O_INTERVAL },
		{ "json", no_argument, NULL, O_JSON },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct recv r;
	const char *listen = NULL, *api = NULL;
	char host[NETADDR_HOST_MAX], err[200];
	struct sockaddr_storage ss;
	socklen_t sslen;
	uint16_t port;
	uint64_t rs = 65536;
	int opt, verbose = 0, bad = 0;
	struct timeval sec = { 0, 250000 };

	memset(&r, 0, sizeof(r));
	r.max_conns = 1024;
	r.idle_s = 300;
	r.interval_s = 1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "qvh", lo, NULL)) != -1) {
		unsigned long v;

		switch (opt) {
		case O_LISTEN: listen = optarg; break;
		case O_API: api = optarg; break;
		case O_DELAY:
			bad |= opt_parse_uint(optarg, 0, RECV_MAX_DELAY_MS, &r.delay_ms) < 0;
			break;
		case O_READ_SIZE:
			bad |= flow_parse_size(optarg, 1u << 20, &rs) < 0 || rs == 0;
			break;
		case O_COUNT: bad |= opt_parse_uint(optarg, 1, 1000000000, &r.count) < 0; break;
		case O_MAX_CONNS:
			bad |= opt_parse_uint(optarg, 1, 10000, &v) < 0;
			r.max_conns = (unsigned)v;
			break;
		case O_IDLE: bad |= opt_parse_uint(optarg, 1, 3600, &r.idle_s) < 0; break;
		case O_INTERVAL: bad |= opt_parse_uint(optarg, 1, 3600, &r.interval_s) < 0; break;
		case O_JSON: r.json = 1; break;
		case 'q': r.quiet = 1; break;
		case 'v': verbose++; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (bad) {
			fprintf(stderr, "sctpt-lab recv: bad value for --%s: '%s'\n",
			        lo[opt - O_LISTEN].name, optarg);
			return 2;
		}
	}
	if (optind < argc || listen == NULL) {
		fprintf(stderr, "sctpt-lab recv: %s\n", listen == NULL ? "--listen is required"
		        : "unexpected argument");
		usage(stderr);
		return 2;
	}
	r.read_size = (unsigned long)rs;
	opt_set_verbosity(verbose, 0);   /* -q is about the progress display */
	if (netaddr_parse_hostport(listen, host, sizeof(host), &port, 1) < 0 ||
	    netaddr_from_numeric(host, port, &ss, &sslen) < 0) {
		fprintf(stderr, "sctpt-lab recv: --listen wants a numeric ADDR:PORT, not '%s'\n",
		        listen);
		return 2;
	}
	r.base = event_base_new();
	r.done = json_array();
	r.garbage_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10.0, 5);
	r.started_us = r.last_tick_us = clock_now_us();
	LIST_INIT(&r.conns);
	progress_init(&r.prog, stderr);
	if (r.base == NULL || r.done == NULL)
		return 1;
	r.lis = evconnlistener_new_bind(r.base, accept_cb, &r,
	                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128,
	                                (struct sockaddr *)&ss, (int)sslen);
	if (r.lis == NULL) {
		log_err("recv: cannot listen on %s: %s", listen, strerror(errno));
		return 1;
	}
	if (api != NULL) {
		r.api = lab_http_new(r.base, api, "recv", api_cb, &r, err, sizeof(err));
		if (r.api == NULL) {
			log_err("recv: --api: %s", err);
			return 1;
		}
	}
	{
		struct sockaddr_storage b;
		socklen_t bl = sizeof(b);

		getsockname(evconnlistener_get_fd(r.lis), (struct sockaddr *)&b, &bl);
		if (r.api)
			log_notice("recv: API on http://%s:%u", host, lab_http_port(r.api));
		log_notice("recv: ready, listening on port %u", netaddr_port((struct sockaddr *)&b));
	}
	r.tick = event_new(r.base, -1, EV_PERSIST, tick_cb, &r);
	event_add(r.tick, &sec);
	if (sig_on_exit(r.base, on_signal, &r) < 0)
		return 1;
	event_base_dispatch(r.base);
	if (r.prog.tty && !r.quiet && !r.json)
		fputc('\n', stderr);
	{
		json_t *s = stats_json(&r);

		if (r.json) {
			json_dumpf(s, stdout, JSON_INDENT(2));
			fputc('\n', stdout);
		} else {
			char b[32];

			fprintf(stderr, "recv: %llu streams (%llu ok, %llu failed), %s, "
			        "%llu garbage connections\n", (unsigned long long)r.streams_done,
			        (unsigned long long)r.streams_ok, (unsigned long long)r.streams_failed,
			        fmt_bytes((double)r.bytes, b, sizeof(b)),
			        (unsigned long long)r.garbage);
		}
		json_decref(s);
	}
	while (!LIST_EMPTY(&r.conns)) {
		r.count = 0;
		conn_free(LIST_FIRST(&r.conns));
	}
	lab_http_free(r.api);
	evconnlistener_free(r.lis);
	event_free(r.tick);
	json_decref(r.done);
	event_base_free(r.base);
	return r.exit_code;
}
