/*
 * Stream mode: a TCP relay that delays, throttles and stalls each
 * direction of every connection.  Loss, duplication and reordering do not
 * apply here (TCP would hide them; use the IP-level mode).
 *
 * Each direction of a connection is a pipe: what is read becomes a chunk
 * due at read time + delay (+ jitter, but never before the previous chunk:
 * a byte stream keeps its order).  Due chunks are written out, paced by
 * the direction's rate (shared by all connections, like one bottleneck
 * link).  A pipe holds at most --tcp-buffer bytes and stops reading when
 * full, so TCP flow control pushes back on the sender.  A blackhole stops
 * writing (nothing is thrown away); lifting it resumes.
 */
#include "lab/impair/impair_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/queue.h>
#include <event2/event.h>

#include "util/log.h"
#include "util/netaddr.h"

#define TCP_READ_MAX (16 << 10)
#define TCP_ACCEPT_BUDGET 64
#define TCP_SLACK_US 200
#define TCP_RATE_CATCHUP_US 5000

struct tcp_chunk {
	TAILQ_ENTRY(tcp_chunk) link;
	uint64_t due_us;
	size_t len, off;
	uint8_t data[];
};

struct tcp_conn;

struct tcp_pipe {
	struct tcp_conn *c;
	int dir;
	int from, to;
	struct event *rd, *wr, *tm;
	TAILQ_HEAD(, tcp_chunk) q;
	size_t queued;
	uint64_t last_due;
	int rd_on;
	int eof;                /* the reading side sent FIN */
	int shut;               /* FIN passed on */
};

struct tcp_conn {
	LIST_ENTRY(tcp_conn) link;
	struct impair_tcp *t;
	long long id;
	int fds[2];             /* client, upstream */
	int connected;
	int closing;
	struct tcp_pipe p[2];
	struct event *reap;
};

struct impair_tcp {
	struct event_base *base;
	struct impair_engine *e;
	struct impair_tcp_config cfg;
	int fd;
	struct event *ev;
	LIST_HEAD(, tcp_conn) conns;
	unsigned nconns;
	long long next_id;
};

static struct log_ratelimit limit_rl = LOG_RATELIMIT_INIT(10.0, 3);

static void pipe_flush(struct tcp_pipe *p);
static void conn_abort(struct tcp_conn *c);

static void pipe_update_read(struct tcp_pipe *p)
{
	struct tcp_conn *c = p->c;
	int want = !c->closing && !p->eof && p->queued < c->t->cfg.buffer &&
	           (p->dir == IMPAIR_C2S || c->connected);

	if (want && !p->rd_on)
		event_add(p->rd, NULL);
	else if (!want && p->rd_on)
		event_del(p->rd);
	p->rd_on = want;
}

static void conn_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_conn *c = arg;
	struct impair_tcp *t = c->t;

	for (int d = 0; d < 2; d++) {
		struct tcp_pipe *p = &c->p[d];
		struct impair_counters *cnt = &impair_engine_shaper(t->e, d)->c;
		struct tcp_chunk *ch;

		while ((ch = TAILQ_FIRST(&p->q)) != NULL) {
			TAILQ_REMOVE(&p->q, ch, link);
			cnt->pending--;
			cnt->dropped++;
			cnt->dropped_other++;
			free(ch);
		}
		event_free(p->rd);
		event_free(p->wr);
		event_free(p->tm);
	}
	for (int i = 0; i < 2; i++)
		if (c->fds[i] >= 0)
			close(c->fds[i]);
	LIST_REMOVE(c, link);
	t->nconns--;
	log_info("impair: connection %lld closed", c->id);
	event_free(c->reap);
	free(c);
}

/* Stop everything now; free from the loop, outside any of c's callbacks. */
static void conn_close(struct tcp_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	for (int d = 0; d < 2; d++) {
		event_del(c->p[d].rd);
		event_del(c->p[d].wr);
		event_del(c->p[d].tm);
		c->p[d].rd_on = 0;
	}
	event_active(c->reap, 0, 0);
}

/* A reset on one side becomes a reset on the other. */
static void conn_abort(struct tcp_conn *c)
{
	struct linger lg = { 1, 0 };

	for (int i = 0; i < 2; i++)
		if (c->fds[i] >= 0)
			(void)setsockopt(c->fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	conn_close(c);
}

static void conn_check_done(struct tcp_conn *c)
{
	if (c->p[0].shut && c->p[1].shut)
		conn_close(c);
}

static void arm_timer(struct tcp_pipe *p, uint64_t at, uint64_t now)
{
	uint64_t wait = at > now ? at - now : 0;
	struct timeval tv = { (time_t)(wait / 1000000u), (suseconds_t)(wait % 1000000u) };

	event_add(p->tm, &tv);
}

static void pipe_flush(struct tcp_pipe *p)
{
	struct tcp_conn *c = p->c;
	struct impair_shaper *sh = impair_engine_shaper(c->t->e, p->dir);
	const struct impair_dir_settings *s = &impair_engine_settings(c->t->e)->dir[p->dir];
	struct tcp_chunk *ch;

	if (c->closing || !c->connected)
		return;
	if (s->blackhole || impair_rules_stall(impair_engine_rules(c->t->e), p->dir,
	                                       (uint64_t)c->id, impair_engine_seed(c->t->e)))
		return;          /* the on-change hook flushes again when it is lifted */
	while ((ch = TAILQ_FIRST(&p->q)) != NULL) {
		uint64_t now = impair_now_us();
		size_t want = ch->len - ch->off;
		ssize_t n;

		if (ch->due_us > now + TCP_SLACK_US) {
			arm_timer(p, ch->due_us, now);
			return;
		}
		if (s->rate_bps > 0) {
			/* Pace in slices of about 2 ms of the rate. */
			size_t slice = (size_t)(s->rate_bps / 8 / 500);

			if (sh->link_free_us > now + TCP_SLACK_US) {
				arm_timer(p, sh->link_free_us, now);
				return;
			}
			if (slice < 512)
				slice = 512;
			if (slice > TCP_READ_MAX)
				slice = TCP_READ_MAX;
			if (want > slice)
				want = slice;
		}
		n = send(p->to, ch->data + ch->off, want, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				event_add(p->wr, NULL);
				return;
			}
			conn_abort(c);
			return;
		}
		if (s->rate_bps > 0) {
			/*
			 * A timer that fires late must not slow the link down: up to
			 * TCP_RATE_CATCHUP_US of lateness is made up by sending sooner.
			 */
			uint64_t earliest = now > TCP_RATE_CATCHUP_US ? now - TCP_RATE_CATCHUP_US : 0;
			uint64_t start = sh->link_free_us > earliest ? sh->link_free_us : earliest;

			sh->link_free_us = start + (uint64_t)((double)n * 8e6 / (double)s->rate_bps);
		}
		sh->c.bytes_forwarded += (uint64_t)n;
		ch->off += (size_t)n;
		p->queued -= (size_t)n;
		if (ch->off == ch->len) {
			TAILQ_REMOVE(&p->q, ch, link);
			sh->c.forwarded++;
			sh->c.pending--;
			free(ch);
		}
		pipe_update_read(p);
	}
	if (p->eof && !p->shut) {
		(void)shutdown(p->to, SHUT_WR);
		p->shut = 1;
		conn_check_done(c);
	}
}

static void pipe_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_pipe *p = arg;
	struct tcp_conn *c = p->c;
	struct impair_engine *e = c->t->e;
	struct impair_shaper *sh = impair_engine_shaper(e, p->dir);
	size_t room = c->t->cfg.buffer - p->queued;
	uint8_t buf[TCP_READ_MAX];
	struct tcp_chunk *ch;
	uint64_t now, due;
	ssize_t n;

	if (room > sizeof(buf))
		room = sizeof(buf);
	n = recv(fd, buf, room, 0);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_abort(c);
		return;
	}
	if (n == 0) {
		p->eof = 1;
		pipe_update_read(p);
		pipe_flush(p);
		return;
	}
	now = impair_now_us();
	due = now + impair_delay_sample(sh, &impair_engine_settings(e)->dir[p->dir]) +
	      impair_rules_stream_delay(impair_engine_rules(e), p->dir, (uint64_t)c->id,
	                                impair_engine_seed(e));
	if (due < p->last_due)
		due = p->last_due;
	p->last_due = due;
	ch = malloc(sizeof(*ch) + (size_t)n);
	if (ch == NULL) {
		conn_abort(c);
		return;
	}
	ch->due_us = due;
	ch->len = (size_t)n;
	ch->off = 0;
	memcpy(ch->data, buf, (size_t)n);
	TAILQ_INSERT_TAIL(&p->q, ch, link);
	p->queued += (size_t)n;
	sh->c.seen++;
	sh->c.bytes_seen += (uint64_t)n;
	sh->c.pending++;
	if (due > now + TCP_SLACK_US)
		sh->c.delayed++;
	pipe_update_read(p);
	if (TAILQ_FIRST(&p->q) == ch)
		pipe_flush(p);
}

static void pipe_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	pipe_flush(arg);
}

static void pipe_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_pipe *p = arg;
	struct tcp_conn *c = p->c;

	if (!c->connected) {
		/* The upstream connect finished (c2s pipe's write event on its socket). */
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
			log_info("impair: connection %lld: upstream connect failed: %s", c->id,
			         strerror(err ? err : errno));
			conn_abort(c);
			return;
		}
		c->connected = 1;
		pipe_update_read(&c->p[IMPAIR_S2C]);
	}
	pipe_flush(p);
}

static int pipe_init(struct tcp_conn *c, int dir)
{
	struct tcp_pipe *p = &c->p[dir];
	struct event_base *base = c->t->base;

	p->c = c;
	p->dir = dir;
	p->from = c->fds[dir == IMPAIR_C2S ? 0 : 1];
	p->to = c->fds[dir == IMPAIR_C2S ? 1 : 0];
	TAILQ_INIT(&p->q);
	p->rd = event_new(base, p->from, EV_READ | EV_PERSIST, pipe_read_cb, p);
	p->wr = event_new(base, p->to, EV_WRITE, pipe_write_cb, p);
	p->tm = evtimer_new(base, pipe_timer_cb, p);
	return p->rd && p->wr && p->tm ? 0 : -1;
}

static void conn_new(struct impair_tcp *t, int cfd)
{
	struct tcp_conn *c = calloc(1, sizeof(*c));
	int one = 1;
	int ufd = -1;

	if (c == NULL)
		goto fail;
	ufd = socket(t->cfg.upstream.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ufd < 0)
		goto fail;
	(void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->t = t;
	c->fds[0] = cfd;
	c->fds[1] = ufd;
	c->reap = event_new(t->base, -1, 0, conn_reap_cb, c);
	if (c->reap == NULL || pipe_init(c, IMPAIR_C2S) < 0 || pipe_init(c, IMPAIR_S2C) < 0)
		goto fail_events;
	if (connect(ufd, (struct sockaddr *)&t->cfg.upstream, t->cfg.upstreamlen) < 0 &&
	    errno != EINPROGRESS)
		goto fail_events;
	c->id = t->next_id++;
	LIST_INSERT_HEAD(&t->conns, c, link);
	t->nconns++;
	event_add(c->p[IMPAIR_C2S].wr, NULL);    /* tells us when the connect is done */
	pipe_update_read(&c->p[IMPAIR_C2S]);
	log_info("impair: connection %lld accepted", c->id);
	return;
fail_events:
	for (int d = 0; d < 2; d++) {
		if (c->p[d].rd)
			event_free(c->p[d].rd);
		if (c->p[d].wr)
			event_free(c->p[d].wr);
		if (c->p[d].tm)
			event_free(c->p[d].tm);
	}
	if (c->reap)
		event_free(c->reap);
fail:
	log_ratelimited(&limit_rl, LOG_LEVEL_WARN, "impair: cannot relay a connection: %s",
	                strerror(errno));
	if (ufd >= 0)
		close(ufd);
	close(cfd);
	free(c);
}

static void accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct impair_tcp *t = arg;

	for (int i = 0; i < TCP_ACCEPT_BUDGET; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0)
			return;
		if (t->nconns >= t->cfg.max_conns) {
			struct linger lg = { 1, 0 };

			log_ratelimited(&limit_rl, LOG_LEVEL_WARN,
			                "impair: %u connections open (--max-flows), new one reset",
			                t->nconns);
			(void)setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(cfd);
			continue;
		}
		conn_new(t, cfd);
	}
}

/* A settings change may have lifted a blackhole or changed the rate. */
static void tcp_on_change(void *arg)
{
	struct impair_tcp *t = arg;
	struct tcp_conn *c;

	LIST_FOREACH(c, &t->conns, link) {
		for (int d = 0; d < 2; d++) {
			event_del(c->p[d].tm);
			pipe_flush(&c->p[d]);
		}
	}
}

struct impair_tcp *impair_tcp_new(struct event_base *base, struct impair_engine *e,
                                  const struct impair_tcp_config *cfg)
{
	struct impair_tcp *t = calloc(1, sizeof(*t));
	int one = 1;
	char buf[128];

	if (t == NULL)
		return NULL;
	t->base = base;
	t->e = e;
	t->cfg = *cfg;
	t->next_id = 1;
	LIST_INIT(&t->conns);
	t->fd = socket(cfg->listen.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0)
		goto fail;
	(void)setsockopt(t->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(t->fd, (struct sockaddr *)&cfg->listen, cfg->listenlen) < 0 ||
	    listen(t->fd, 128) < 0) {
		log_err("impair: cannot listen on tcp://%s: %s",
		        netaddr_format((struct sockaddr *)&cfg->listen, buf, sizeof(buf)),
		        strerror(errno));
		goto fail;
	}
	t->ev = event_new(base, t->fd, EV_READ | EV_PERSIST, accept_cb, t);
	if (t->ev == NULL || event_add(t->ev, NULL) < 0)
		goto fail;
	impair_engine_on_change(e, tcp_on_change, t);
	return t;
fail:
	impair_tcp_free(t);
	return NULL;
}

void impair_tcp_free(struct impair_tcp *t)
{
	struct tcp_conn *c;

	if (t == NULL)
		return;
	while ((c = LIST_FIRST(&t->conns)) != NULL) {
		conn_close(c);
		conn_reap_cb(-1, 0, c);
	}
	if (t->ev != NULL)
		event_free(t->ev);
	if (t->fd >= 0)
		close(t->fd);
	free(t);
}

void impair_tcp_local(const struct impair_tcp *t, struct sockaddr_storage *ss, socklen_t *len)
{
	*len = sizeof(*ss);
	if (getsockname(t->fd, (struct sockaddr *)ss, len) < 0) {
		*ss = t->cfg.listen;
		*len = t->cfg.listenlen;
	}
}

json_t *impair_tcp_conns(const struct impair_tcp *t)
{
	json_t *arr = json_array();
	const struct tcp_conn *c;

	if (arr == NULL)
		return NULL;
	LIST_FOREACH(c, &t->conns, link) {
		json_array_append_new(arr, json_pack("{s:I, s:b, s:I, s:I}", "id", (json_int_t)c->id,
		        "connected", c->connected,
		        "c2s_queued", (json_int_t)c->p[IMPAIR_C2S].queued,
		        "s2c_queued", (json_int_t)c->p[IMPAIR_S2C].queued));
	}
	return arr;
}
