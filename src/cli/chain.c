/*
 * `sctpt chain --config FILE`: the pluggable-transport combiner (see
 * docs/chain.md).  Tor starts it as a managed transport for one or more
 * aliases; it starts every hop of every alias as a child process speaking
 * pt-spec v1 (sctpt itself too: a child like any other), offers tor one
 * method per alias, and looks after the children: their LOG and STATUS
 * lines go to tor tagged with the hop, a child that dies is restarted with
 * backoff, and on shutdown each child's stdin is closed, then SIGTERM,
 * then SIGKILL.  Children also get PR_SET_PDEATHSIG, so none outlives us.
 */
#include "cli/cli.h"
#include "cli/chain_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/opt.h"
#include "util/sig.h"

#define CHILD_LINE_MAX 4096
#define CHILD_LOG_PER_SEC 20
#define STOP_STDIN_SECS 2       /* after closing stdin, before SIGTERM */
#define STOP_TERM_SECS 3        /* after SIGTERM, before SIGKILL */

extern char **environ;

static struct chain_rt *the_rt;   /* for the log sink and SIGCHLD */

static void log_to_tor(enum log_level level, const char *msg)
{
	static const char *const sev[] = { "debug", "info", "notice", "warning", "error" };
	static int busy;
	char q[PT_LINE_MAX - 64];

	if (busy || level >= LOG_LEVEL_NONE)
		return;
	busy = 1;
	chain_line("LOG SEVERITY=%s MESSAGE=%s", sev[level], pt_quote(msg, q, sizeof(q)));
	busy = 0;
}

int chain_hop_usable(const struct hop_rt *h)
{
	return h->state == HOP_READY && h->pid > 0;
}

static const char *method_word(const struct chain_rt *rt)
{
	return rt->side == CHAIN_CLIENT ? "CMETHOD" : "SMETHOD";
}

/* ---------- reporting to tor ---------- */

static void begin_stop(struct chain_rt *rt, const char *why);

static void check_all_reported(struct chain_rt *rt)
{
	if (rt->all_reported)
		return;
	for (unsigned i = 0; i < rt->naliases; i++)
		if (!rt->alias[i].reported)
			return;
	rt->all_reported = 1;
	if (rt->start_timer != NULL)
		event_del(rt->start_timer);
	chain_line("%sS DONE", method_word(rt));
	for (unsigned i = 0; i < rt->naliases; i++)
		if (rt->alias[i].offered)
			return;
	begin_stop(rt, "no alias could be offered");
}

static void hop_kill(struct hop_rt *h, int sig)
{
	if (h->pid > 0)
		(void)kill(h->pid, sig);
}

static void hop_close_pipes(struct hop_rt *h)
{
	if (h->stdin_fd >= 0)
		close(h->stdin_fd);
	h->stdin_fd = -1;
	if (h->out != NULL)
		bufferevent_free(h->out);
	h->out = NULL;
}

/* The alias failed at start: say which hop and why, and stop its children. */
static void alias_error(struct alias_rt *ar, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void alias_error(struct alias_rt *ar, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *p = msg; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	chain_line("%s-ERROR %s %s", method_word(ar->rt), ar->a->name, msg);
	log_warn("%s: not offered: %s", ar->a->name, msg);
	ar->reported = 1;
	for (unsigned i = 0; i < ar->a->nhops; i++) {
		hop_close_pipes(&ar->hop[i]);
		hop_kill(&ar->hop[i], SIGTERM);
	}
	check_all_reported(ar->rt);
}

void chain_alias_report(struct alias_rt *ar)
{
	char err[CHAIN_ERR_MAX];

	if (ar->reported)
		return;
	for (unsigned i = 0; i < ar->a->nhops; i++) {
		struct hop_rt *h = &ar->hop[i];

		if (h->state == HOP_FAILED) {
			alias_error(ar, "hop %u (%s): %s", i, h->name, h->error);
			return;
		}
		if (h->state != HOP_READY)
			return;
	}
	ar->reported = 1;
	if (ar->rt->side == CHAIN_CLIENT) {
		if (chain_client_alias_start(ar, err, sizeof(err)) < 0) {
			ar->reported = 0;
			alias_error(ar, "%s", err);
			return;
		}
		ar->offered = 1;
	} else {
		chain_server_alias_offer(ar);
	}
	check_all_reported(ar->rt);
}

static void status_line(struct hop_rt *h, const char *state, const char *detail)
{
	char q[512];

	chain_line("STATUS TRANSPORT=%s HOP=%u CHILD=%s STATE=%s DETAIL=%s", h->ar->a->name,
	           h->idx, h->name, state, pt_quote(detail, q, sizeof(q)));
}

/* ---------- children's stdout ---------- */

static void hop_failed(struct hop_rt *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hop_failed(struct hop_rt *h, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->error, sizeof(h->error), fmt, ap);
	va_end(ap);
	if (!h->ar->reported) {
		h->state = HOP_FAILED;
		chain_alias_report(h->ar);
		return;
	}
	/* A restarted child that refuses: it will exit (or be made to); backoff applies. */
	log_warn("%s: hop %u (%s) refused after a restart: %s", h->ar->a->name, h->idx, h->name,
	         h->error);
	hop_kill(h, SIGTERM);
}

static void relay_child_log(struct hop_rt *h, const char *line)
{
	char out[PT_LINE_MAX];
	uint64_t now = clock_now_ms();

	if (now - h->log_window_ms >= 1000) {
		if (h->log_dropped > 0)
			log_warn("%s: hop %u (%s): %u log lines dropped (more than %d a second)",
			         h->ar->a->name, h->idx, h->name, h->log_dropped, CHILD_LOG_PER_SEC);
		h->log_window_ms = now;
		h->log_tokens = CHILD_LOG_PER_SEC;
		h->log_dropped = 0;
	}
	if (h->log_tokens == 0) {
		h->log_dropped++;
		return;
	}
	h->log_tokens--;
	if (chain_line_relay(line, h->ar->a->name, h->idx, h->name, out, sizeof(out)) == 0)
		chain_line("%s", out);
}

static void child_line(struct hop_rt *h, const char *line)
{
	struct chain_line l;
	struct chain_rt *rt = h->ar->rt;

	if (chain_line_parse(line, rt->side, &l) < 0) {
		log_info("%s: hop %u (%s): ignoring a malformed line", h->ar->a->name, h->idx, h->name);
		return;
	}
	switch (l.kind) {
	case CHAIN_LINE_VERSION_ERROR:
		hop_failed(h, "it does not speak pt-spec version 1 (VERSION-ERROR %s)", l.message);
		break;
	case CHAIN_LINE_ENV_ERROR:
		hop_failed(h, "ENV-ERROR %s", l.message);
		break;
	case CHAIN_LINE_PROXY_ERROR:
		hop_failed(h, "PROXY-ERROR %s", l.message);
		break;
	case CHAIN_LINE_METHOD_ERROR:
		if (strcmp(l.name, h->name) == 0)
			hop_failed(h, "%s-ERROR %s", method_word(rt), l.message);
		break;
	case CHAIN_LINE_METHOD:
		if (strcmp(l.name, h->name) != 0 || h->state == HOP_READY)
			break;
		if (pt_parse_addr(l.addr, 0, &h->addr, &h->addrlen) < 0) {
			hop_failed(h, "its %s line has a bad address '%.60s'", method_word(rt), l.addr);
			break;
		}
		/* A listener on the wildcard address is reached on loopback. */
		if (rt->side == CHAIN_SERVER && h->idx + 1 < h->ar->a->nhops &&
		    h->addr.ss_family == AF_INET)
			((struct sockaddr_in *)&h->addr)->sin_addr.s_addr = htonl(0x7f000001);
		if (h->ar->offered && rt->side == CHAIN_SERVER && strcmp(h->args, l.args) != 0)
			log_warn("%s: hop %u (%s) came back with other ARGS: the bridge line "
			         "users have is stale now", h->ar->a->name, h->idx, h->name);
		snprintf(h->args, sizeof(h->args), "%s", l.args);
		h->state = HOP_READY;
		if (h->restarts > 0) {
			status_line(h, "running", "restarted");
			log_notice("%s: hop %u (%s) is running again", h->ar->a->name, h->idx, h->name);
		}
		chain_alias_report(h->ar);
		break;
	case CHAIN_LINE_METHODS_DONE:
		h->done_seen = 1;
		if (h->state == HOP_STARTING)
			hop_failed(h, "it did not offer %s", h->name);
		break;
	case CHAIN_LINE_LOG:
	case CHAIN_LINE_STATUS:
		relay_child_log(h, line);
		break;
	default:
		break;
	}
}

static void child_out_read(struct bufferevent *bev, void *arg)
{
	struct hop_rt *h = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t n;

	while (h->out == bev && (line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF)) != NULL) {
		if (n < CHILD_LINE_MAX)
			child_line(h, line);
		free(line);
	}
	if (h->out == bev && evbuffer_get_length(in) > CHILD_LINE_MAX) {
		log_warn("%s: hop %u (%s) wrote a line over %d bytes; dropped", h->ar->a->name,
		         h->idx, h->name, CHILD_LINE_MAX);
		evbuffer_drain(in, evbuffer_get_length(in));
	}
}

static void child_out_event(struct bufferevent *bev, short what, void *arg)
{
	struct hop_rt *h = arg;

	/* stdout closed: the child is exiting; SIGCHLD tells the rest. */
	bufferevent_free(bev);
	h->out = NULL;
}

/* ---------- starting children ---------- */

static int make_dirs(const char *path)
{
	char buf[PT_PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

struct envb {
	char *v[256];
	unsigned n;
};

static void env_add(struct envb *e, const char *name, const char *value)
{
	size_t len = strlen(name) + strlen(value) + 2;
	char *s;

	if (e->n + 1 >= sizeof(e->v) / sizeof(e->v[0]) || (s = malloc(len)) == NULL)
		return;
	snprintf(s, len, "%s=%s", name, value);
	e->v[e->n++] = s;
	e->v[e->n] = NULL;
}

static void env_free(struct envb *e)
{
	for (unsigned i = 0; i < e->n; i++)
		free(e->v[i]);
	e->n = 0;
}

static void env_pass(struct envb *e, const char *name)
{
	const char *v = getenv(name);

	if (v != NULL)
		env_add(e, name, v);
}

static void build_env(struct hop_rt *h, struct envb *e)
{
	struct chain_rt *rt = h->ar->rt;
	int outer = h->idx + 1 == h->ar->a->nhops;
	char buf[128];

	e->n = 0;
	e->v[0] = NULL;
	/* Everything but tor's variables, which are made per hop below. */
	for (char **p = environ; *p != NULL; p++) {
		char *s;

		if (strncmp(*p, "TOR_PT_", 7) == 0 || e->n + 40 >= sizeof(e->v) / sizeof(e->v[0]))
			continue;
		if ((s = strdup(*p)) != NULL) {
			e->v[e->n++] = s;
			e->v[e->n] = NULL;
		}
	}
	env_add(e, "TOR_PT_MANAGED_TRANSPORT_VER", "1");
	env_add(e, "TOR_PT_STATE_LOCATION", h->state_dir);
	env_pass(e, "TOR_PT_EXIT_ON_STDIN_CLOSE");
	if (rt->side == CHAIN_CLIENT) {
		env_add(e, "TOR_PT_CLIENT_TRANSPORTS", h->name);
		/* Only the outermost hop talks to the network, so only it gets the proxy. */
		if (outer) {
			env_pass(e, "TOR_PT_PROXY");
			env_pass(e, "TOR_PT_OUTBOUND_BIND_ADDRESS_V4");
			env_pass(e, "TOR_PT_OUTBOUND_BIND_ADDRESS_V6");
		}
		return;
	}
	env_add(e, "TOR_PT_SERVER_TRANSPORTS", h->name);
	env_add(e, "TOR_PT_SERVER_BINDADDR", h->bindaddr);
	env_add(e, "TOR_PT_ORPORT", netaddr_format((struct sockaddr *)&h->or_addr, buf, sizeof(buf)));
	env_add(e, "TOR_PT_EXTENDED_SERVER_PORT",
	        netaddr_format((struct sockaddr *)&h->extor_addr, buf, sizeof(buf)));
	env_add(e, "TOR_PT_AUTH_COOKIE_FILE", rt->cookie_path);
	if (h->options[0] != '\0')
		env_add(e, "TOR_PT_SERVER_TRANSPORT_OPTIONS", h->options);
}

/* Close every descriptor from lowfd up (in a child after fork). */
static void close_from(int lowfd)
{
	long max;

	if (syscall(SYS_close_range, (unsigned)lowfd, ~0u, 0) == 0)
		return;
	max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = lowfd; fd < max; fd++)
		(void)close(fd);
}

static int hop_spawn(struct hop_rt *h)
{
	const struct chain_plugin *p = h->plugin;
	char *argv[CHAIN_MAX_ARGV + 2];
	struct envb env;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };
	pid_t parent = getpid(), pid;

	if (make_dirs(h->state_dir) < 0) {
		snprintf(h->error, sizeof(h->error), "cannot create its state directory %.300s: %s",
		         h->state_dir, strerror(errno));
		return -1;
	}
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		snprintf(h->error, sizeof(h->error), "pipe: %s", strerror(errno));
		goto fail;
	}
	argv[0] = (char *)p->path;
	for (unsigned i = 0; i < p->argc; i++)
		argv[i + 1] = (char *)p->argv[i];
	argv[p->argc + 1] = NULL;
	build_env(h, &env);
	pid = fork();
	if (pid == 0) {
		/* Child: die with us, whatever happens to us. */
		(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0)
			_exit(127);
		/* Nothing of ours may stay open in a child: a relayed connection it
		 * held would outlive our close of it. */
		close_from(3);
		signal(SIGPIPE, SIG_DFL);
		execve(p->path, argv, env.v);
		_exit(127);
	}
	env_free(&env);
	if (pid < 0) {
		snprintf(h->error, sizeof(h->error), "fork: %s", strerror(errno));
		goto fail;
	}
	close(in[0]);
	close(out[1]);
	h->pid = pid;
	h->stdin_fd = in[1];
	h->started_ms = clock_now_ms();
	h->state = HOP_STARTING;
	h->done_seen = 0;
	(void)fcntl(out[0], F_SETFL, O_NONBLOCK);
	h->out = bufferevent_socket_new(h->ar->rt->base, out[0], BEV_OPT_CLOSE_ON_FREE);
	if (h->out == NULL) {
		close(out[0]);
		return 0;       /* it runs; we cannot hear it, so it never gets ready */
	}
	bufferevent_setcb(h->out, child_out_read, NULL, child_out_event, h);
	bufferevent_enable(h->out, EV_READ);
	log_info("%s: hop %u (%s) started, pid %d", h->ar->a->name, h->idx, h->name, (int)pid);
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	return -1;
}

static void ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hop_rt *h = arg;

	if (h->state != HOP_STARTING || h->pid <= 0 || h->ar->rt->stopping)
		return;
	log_warn("%s: hop %u (%s) restarted but not ready within %d s; killing it",
	         h->ar->a->name, h->idx, h->name, CHAIN_START_TIMEOUT_S);
	hop_kill(h, SIGKILL);
}

static void restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hop_rt *h = arg;
	struct timeval ready = { CHAIN_START_TIMEOUT_S, 0 };

	if (h->ar->rt->stopping)
		return;
	h->restarts++;
	if (h->ready_ev == NULL)
		h->ready_ev = event_new(h->ar->rt->base, -1, 0, ready_cb, h);
	if (h->ready_ev != NULL)
		event_add(h->ready_ev, &ready);
	if (hop_spawn(h) < 0) {
		log_warn("%s: hop %u (%s) cannot be restarted: %s", h->ar->a->name, h->idx, h->name,
		         h->error);
		h->state = HOP_WAITING;
		h->backoff_s = h->backoff_s * 2 > CHAIN_BACKOFF_MAX_S ? CHAIN_BACKOFF_MAX_S
		                                                      : h->backoff_s * 2;
		{
			struct timeval t = { (time_t)h->backoff_s, 0 };

			event_add(h->restart_ev, &t);
		}
	}
}

/* ---------- child exits ---------- */

static void describe_exit(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "ended");
}

static int children_alive(struct chain_rt *rt)
{
	int n = 0;

	for (unsigned i = 0; i < rt->naliases; i++)
		for (unsigned j = 0; j < rt->alias[i].a->nhops; j++)
			n += rt->alias[i].hop[j].pid > 0;
	return n;
}

static void hop_exited(struct hop_rt *h, int status)
{
	struct alias_rt *ar = h->ar;
	struct chain_rt *rt = ar->rt;
	char how[64];
	uint64_t ran;

	describe_exit(status, how, sizeof(how));
	h->pid = 0;
	hop_close_pipes(h);
	if (rt->stopping)
		return;
	if (!ar->reported) {
		if (h->state != HOP_FAILED)
			hop_failed(h, "%s before it was ready%s", how,
			           WIFEXITED(status) && WEXITSTATUS(status) == 127
			           ? " (could it be run?)" : "");
		return;
	}
	if (!ar->offered)
		return;       /* the alias was refused; its children just go */
	ran = clock_now_ms() - h->started_ms;
	if (h->backoff_s == 0 || ran >= (uint64_t)CHAIN_BACKOFF_MAX_S * 1000)
		h->backoff_s = 1;
	else
		h->backoff_s = h->backoff_s * 2 > CHAIN_BACKOFF_MAX_S ? CHAIN_BACKOFF_MAX_S
		                                                      : h->backoff_s * 2;
	h->state = HOP_WAITING;
	log_warn("%s: hop %u (%s) %s; restarting it in %u s", ar->a->name, h->idx, h->name, how,
	         h->backoff_s);
	status_line(h, "restarting", how);
	{
		struct timeval t = { (time_t)h->backoff_s, 0 };

		if (h->restart_ev == NULL)
			h->restart_ev = event_new(rt->base, -1, 0, restart_cb, h);
		if (h->restart_ev != NULL)
			event_add(h->restart_ev, &t);
	}
}

static void sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
	struct chain_rt *rt = arg;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (unsigned i = 0; i < rt->naliases; i++)
			for (unsigned j = 0; j < rt->alias[i].a->nhops; j++)
				if (rt->alias[i].hop[j].pid == pid)
					hop_exited(&rt->alias[i].hop[j], status);
	}
	if (rt->stopping && children_alive(rt) == 0)
		event_base_loopexit(rt->base, NULL);
}

/* ---------- start-up deadline and shutdown ---------- */

static void start_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct chain_rt *rt = arg;

	for (unsigned i = 0; i < rt->naliases; i++) {
		struct alias_rt *ar = &rt->alias[i];

		for (unsigned j = 0; !ar->reported && j < ar->a->nhops; j++)
			if (ar->hop[j].state == HOP_STARTING) {
				ar->hop[j].state = HOP_FAILED;
				snprintf(ar->hop[j].error, sizeof(ar->hop[j].error),
				         "no %s line within %d s", method_word(rt), CHAIN_START_TIMEOUT_S);
				chain_alias_report(ar);
			}
	}
}

static void stop_step_cb(evutil_socket_t fd, short what, void *arg)
{
	struct chain_rt *rt = arg;
	struct timeval t = { STOP_TERM_SECS, 0 };

	rt->stop_stage++;
	for (unsigned i = 0; i < rt->naliases; i++)
		for (unsigned j = 0; j < rt->alias[i].a->nhops; j++)
			hop_kill(&rt->alias[i].hop[j], rt->stop_stage == 1 ? SIGTERM : SIGKILL);
	if (rt->stop_stage >= 3 || children_alive(rt) == 0) {
		event_base_loopexit(rt->base, NULL);
		return;
	}
	if (rt->stop_stage == 2)
		t.tv_sec = 1;
	event_add(rt->stop_timer, &t);
}

static void begin_stop(struct chain_rt *rt, const char *why)
{
	struct timeval t = { STOP_STDIN_SECS, 0 };

	if (rt->stopping) {
		log_notice("%s again: stopping the children now", why);
		rt->stop_stage = 1;
		stop_step_cb(-1, 0, rt);
		return;
	}
	rt->stopping = 1;
	log_notice("%s: stopping (children get their stdin closed, then SIGTERM)", why);
	for (unsigned i = 0; i < rt->naliases; i++) {
		struct alias_rt *ar = &rt->alias[i];

		if (rt->side == CHAIN_CLIENT)
			chain_client_alias_stop(ar, 0);
		else
			chain_server_alias_stop(ar);
		for (unsigned j = 0; j < ar->a->nhops; j++) {
			struct hop_rt *h = &ar->hop[j];

			if (h->restart_ev != NULL)
				event_del(h->restart_ev);
			/* pt-spec: closing stdin is the first request to exit. */
			if (h->stdin_fd >= 0)
				close(h->stdin_fd);
			h->stdin_fd = -1;
			/* Without TOR_PT_EXIT_ON_STDIN_CLOSE it would not listen: go on at once. */
			if (getenv("TOR_PT_EXIT_ON_STDIN_CLOSE") == NULL ||
			    strcmp(getenv("TOR_PT_EXIT_ON_STDIN_CLOSE"), "1") != 0)
				t.tv_sec = 0;
		}
	}
	if (children_alive(rt) == 0) {
		event_base_loopexit(rt->base, NULL);
		return;
	}
	rt->stop_timer = event_new(rt->base, -1, 0, stop_step_cb, rt);
	if (rt->stop_timer == NULL || event_add(rt->stop_timer, &t) < 0) {
		rt->stop_stage = 2;
		stop_step_cb(-1, 0, rt);
	}
}

static void on_signal(int sig, void *arg)
{
	begin_stop(arg, sig == SIGINT ? "SIGINT" : "SIGTERM");
}

static void stdin_cb(evutil_socket_t fd, short what, void *arg)
{
	struct chain_rt *rt = arg;
	char buf[256];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
		return;
	event_del(rt->stdin_ev);
	begin_stop(rt, "stdin closed (tor has gone)");
}

static void parent_cb(evutil_socket_t fd, short what, void *arg)
{
	struct chain_rt *rt = arg;

	if (getppid() == rt->ppid)
		return;
	event_del(rt->parent_ev);
	begin_stop(rt, "parent process has gone");
}

static int watch_lifecycle(struct chain_rt *rt)
{
	struct timeval sec = { 1, 0 };

	if (sig_on_exit(rt->base, on_signal, rt) < 0)
		return -1;
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	rt->sigchld_ev = evsignal_new(rt->base, SIGCHLD, sigchld_cb, rt);
	rt->parent_ev = event_new(rt->base, -1, EV_PERSIST, parent_cb, rt);
	if (rt->sigchld_ev == NULL || event_add(rt->sigchld_ev, NULL) < 0 ||
	    rt->parent_ev == NULL || event_add(rt->parent_ev, &sec) < 0)
		return -1;
	if (rt->env.exit_on_stdin_close) {
		(void)fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
		rt->stdin_ev = event_new(rt->base, STDIN_FILENO, EV_READ | EV_PERSIST, stdin_cb, rt);
		if (rt->stdin_ev == NULL || event_add(rt->stdin_ev, NULL) < 0)
			return -1;
	}
	return 0;
}

/* ---------- configuration ---------- */

static int check_exec(const char *path, char *why, size_t whylen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "not a regular file");
		return -1;
	}
	if (access(path, X_OK) < 0) {
		snprintf(why, whylen, "not executable");
		return -1;
	}
	return 0;
}

static int read_config(const char *path, enum chain_side side, struct chain_config *cfg,
                       char *err, size_t errlen)
{
	char *buf = malloc(CHAIN_CONFIG_MAX + 1);
	char sub[CHAIN_ERR_MAX];
	size_t n;
	FILE *f;
	int r;

	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		free(buf);
		return -1;
	}
	n = fread(buf, 1, CHAIN_CONFIG_MAX + 1, f);
	fclose(f);
	r = chain_config_parse(buf, n, side, check_exec, cfg, sub, sizeof(sub));
	if (r < 0)
		snprintf(err, errlen, "%s: %s", path, sub);
	free(buf);
	return r;
}

static const char *getenv_cb(const char *name, void *arg)
{
	return getenv(name);
}

/* The names tor asked for, as a list; "*" means every alias. */
static void refuse_all(enum chain_side side, const char *msg)
{
	const char *w = side == CHAIN_CLIENT ? "CMETHOD" : "SMETHOD";
	const char *list = getenv(side == CHAIN_CLIENT ? "TOR_PT_CLIENT_TRANSPORTS"
	                                               : "TOR_PT_SERVER_TRANSPORTS");
	char buf[PT_LINE_MAX], *save = NULL;
	int any = 0;

	snprintf(buf, sizeof(buf), "%s", list != NULL ? list : "");
	for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "*") == 0 || !chain_is_identifier(t))
			continue;
		chain_line("%s-ERROR %s %s", w, t, msg);
		any = 1;
	}
	if (!any)
		chain_line("ENV-ERROR %s", msg);
	else
		chain_line("%sS DONE", w);
}

static void chain_usage(FILE *f)
{
	fprintf(f,
	"Usage (from tor's torrc):\n"
	"  ClientTransportPlugin ALIAS exec /usr/bin/sctpt chain --config FILE\n"
	"  ServerTransportPlugin ALIAS exec /usr/bin/sctpt chain --config FILE\n"
	"\n"
	"Stack pluggable transports: each Alias of FILE is offered to tor as one\n"
	"transport whose hops run as child processes, the left-most nearest tor.\n"
	"FILE has torrc-like lines:\n"
	"  ClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy\n"
	"  ServerTransportPlugin obfs4 exec /usr/bin/obfs4proxy\n"
	"  ClientTransportPlugin sctp exec /usr/bin/sctpt\n"
	"  ServerTransportPlugin sctp exec /usr/bin/sctpt\n"
	"  Alias obfs4_sctp obfs4|sctp\n"
	"Bridge-line arguments are namespaced by hop (obfs4.cert=... sctp.cert=...);\n"
	"the bridge writes its lines to " CHAIN_BRIDGELINE_FILE " in tor's state\n"
	"directory.  See docs/chain.md.\n"
	"\n"
	"  --config FILE   the chain configuration (required)\n"
	"  --log FILE      also append log lines to FILE\n"
	"  -v, -q          more or less logging\n");
}

static int chain_parse(struct chain_rt *rt, int argc, char **argv, int *verbose, int *quiet)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "log", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:hvq", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			rt->config_path = optarg;
			break;
		case 'l':
			if (rt->logf != NULL)
				fclose(rt->logf);
			rt->logf = fopen(optarg, "a");
			if (rt->logf == NULL) {
				fprintf(stderr, "sctpt chain: cannot open --log %s: %s\n", optarg,
				        strerror(errno));
				return -1;
			}
			break;
		case 'v':
			(*verbose)++;
			break;
		case 'q':
			(*quiet)++;
			break;
		case 'h':
			chain_usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sctpt chain: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (rt->config_path == NULL) {
		fprintf(stderr, "sctpt chain: --config FILE is required\n");
		return -1;
	}
	return 0;
}

/* Set up the aliases tor asked for; the others in the file are left alone. */
static int setup_aliases(struct chain_rt *rt)
{
	const char *list = getenv(rt->side == CHAIN_CLIENT ? "TOR_PT_CLIENT_TRANSPORTS"
	                                                   : "TOR_PT_SERVER_TRANSPORTS");
	char buf[PT_LINE_MAX], *save = NULL, err[CHAIN_ERR_MAX];
	const char *w = method_word(rt);

	snprintf(buf, sizeof(buf), "%s", list != NULL ? list : "");
	if (chain_list_has(buf, "*")) {
		for (unsigned i = 0; i < rt->cfg.naliases; i++)
			rt->alias[rt->naliases++].a = &rt->cfg.alias[i];
	} else {
		for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
			const struct chain_alias *a = chain_config_alias(&rt->cfg, t);

			if (a == NULL) {
				if (chain_is_identifier(t))
					chain_line("%s-ERROR %s no Alias %s in %s", w, t, t, rt->config_path);
				continue;
			}
			if (rt->naliases < CHAIN_MAX_ALIASES)
				rt->alias[rt->naliases++].a = a;
		}
	}
	for (unsigned i = 0; i < rt->naliases; i++) {
		struct alias_rt *ar = &rt->alias[i];

		ar->rt = rt;
		ar->idx = i;
		for (unsigned j = 0; j < ar->a->nhops; j++) {
			struct hop_rt *h = &ar->hop[j];

			h->ar = ar;
			h->idx = j;
			h->name = ar->a->hop[j];
			h->plugin = chain_config_plugin(&rt->cfg, rt->side, h->name);
			h->stdin_fd = -1;
			snprintf(h->state_dir, sizeof(h->state_dir), "%s/chain/%s/%u_%s",
			         rt->env.state_dir, ar->a->name, j, h->name);
		}
		if (rt->side == CHAIN_SERVER && chain_server_alias_prepare(ar, err, sizeof(err)) < 0) {
			alias_error(ar, "%s", err);
			continue;
		}
		for (unsigned j = 0; j < ar->a->nhops; j++) {
			struct hop_rt *h = &ar->hop[j];

			if (hop_spawn(h) < 0) {
				h->state = HOP_FAILED;
				chain_alias_report(ar);
				break;
			}
		}
	}
	return 0;
}

static void rt_free(struct chain_rt *rt)
{
	for (unsigned i = 0; i < rt->naliases; i++) {
		struct alias_rt *ar = &rt->alias[i];

		if (ar->a == NULL)
			continue;
		if (rt->side == CHAIN_CLIENT)
			chain_client_alias_stop(ar, 1);
		else
			chain_server_alias_stop(ar);
		for (unsigned j = 0; j < ar->a->nhops; j++) {
			struct hop_rt *h = &ar->hop[j];

			hop_close_pipes(h);
			if (h->restart_ev != NULL)
				event_free(h->restart_ev);
			if (h->ready_ev != NULL)
				event_free(h->ready_ev);
			chain_addrmap_free(&h->map);
		}
	}
	if (rt->start_timer != NULL)
		event_free(rt->start_timer);
	if (rt->stop_timer != NULL)
		event_free(rt->stop_timer);
	if (rt->sigchld_ev != NULL)
		event_free(rt->sigchld_ev);
	if (rt->stdin_ev != NULL)
		event_free(rt->stdin_ev);
	if (rt->parent_ev != NULL)
		event_free(rt->parent_ev);
	if (rt->base != NULL)
		event_base_free(rt->base);
	if (rt->logf != NULL)
		fclose(rt->logf);
	free(rt);
}

int chain_main(int argc, char **argv)
{
	struct chain_rt *rt = calloc(1, sizeof(*rt));
	struct timeval start = { CHAIN_START_TIMEOUT_S, 0 };
	char err[512];
	int verbose = 0, quiet = 0, r, rc = 1;

	if (rt == NULL)
		return 1;
	the_rt = rt;
	rt->ppid = getppid();
	if (chain_parse(rt, argc, argv, &verbose, &quiet) < 0) {
		if (getenv("TOR_PT_MANAGED_TRANSPORT_VER") != NULL)
			chain_line("ENV-ERROR bad 'sctpt chain' command line in the torrc "
			           "(see 'sctpt chain --help')");
		goto out;
	}
	if (getenv("TOR_PT_MANAGED_TRANSPORT_VER") == NULL) {
		fprintf(stderr, "sctpt chain: tor starts this (ClientTransportPlugin / "
		        "ServerTransportPlugin ... exec sctpt chain --config FILE); see "
		        "'sctpt chain --help'\n");
		goto out;
	}
	log_set_output(rt->logf);
	log_set_sink(log_to_tor);
	opt_set_verbosity(verbose, quiet);
	r = pt_env_parse(getenv_cb, NULL, &rt->env, err, sizeof(err));
	if (r == PT_VERSION_ERROR) {
		chain_line("VERSION-ERROR no-version");
		goto out;
	}
	if (r != PT_ENV_OK) {
		chain_line("ENV-ERROR %s", err);
		goto out;
	}
	rt->side = rt->env.client_listed ? CHAIN_CLIENT : CHAIN_SERVER;
	if (make_dirs(rt->env.state_dir) < 0) {
		chain_line("ENV-ERROR cannot create TOR_PT_STATE_LOCATION %s: %s", rt->env.state_dir,
		           strerror(errno));
		goto out;
	}
	chain_line("VERSION 1");
	if (read_config(rt->config_path, rt->side, &rt->cfg, err, sizeof(err)) < 0) {
		log_err("%s", err);
		refuse_all(rt->side, err);
		goto out;
	}
	if (rt->side == CHAIN_CLIENT && rt->env.has_proxy)
		chain_line("PROXY DONE");   /* handed to the outermost hop */
	(void)cli_raise_nofile();
	rt->base = cli_event_base_new();
	if (rt->base == NULL || watch_lifecycle(rt) < 0) {
		refuse_all(rt->side, "cannot set up the event loop");
		goto out;
	}
	if (rt->side == CHAIN_SERVER && chain_server_prepare(rt, err, sizeof(err)) < 0) {
		refuse_all(rt->side, err);
		goto out;
	}
	rt->start_timer = event_new(rt->base, -1, 0, start_timeout_cb, rt);
	if (rt->start_timer == NULL || event_add(rt->start_timer, &start) < 0) {
		refuse_all(rt->side, "cannot set up the event loop");
		goto out;
	}
	setup_aliases(rt);
	check_all_reported(rt);
	event_base_dispatch(rt->base);
	rc = 0;
out:
	if (rt->base != NULL) {
		/* Whatever is still alive goes now. */
		for (unsigned i = 0; i < rt->naliases; i++)
			for (unsigned j = 0; j < rt->alias[i].a->nhops; j++)
				hop_kill(&rt->alias[i].hop[j], SIGKILL);
		log_notice("sctpt chain stopped");
	}
	log_set_sink(NULL);
	rt_free(rt);
	return rc;
}
