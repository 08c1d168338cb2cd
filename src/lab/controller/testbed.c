/*
 * Testbeds: the controller builds the side-by-side comparison itself.  A
 * testbed is two network namespaces, A and B, joined only by
 * `sctpt-lab impair --tun` (so every protocol between them, UDP and TCP
 * alike, sees the same loss and delay), with recv and each tunnel's server
 * end (sctpt server, sshd, ss-server) in B, and each tunnel's SOCKS end
 * (sctpt client, ssh -D, ss-local) and send in A.  The controller starts
 * every process itself (fork/exec of the real binaries, each in its own
 * session, killed if the controller dies), registers the lab nodes, and
 * tears everything down on DELETE, at exit, and - from the record in the
 * state directory or the namespace names - after a crash at its next start.
 *
 * The nodes' APIs listen on loopback inside their namespace; the controller
 * reaches them through a small relay of its own: a listener on the host's
 * loopback at the same port number (the nodes check that the Host header
 * names their port), each connection forwarded to a socket opened inside
 * the namespace.
 *
 * Bounded: at most TB_MAX testbeds of at most TB_MAX_PROCS processes, at
 * most RELAY_MAX_CONNS connections per relay, 1 MiB buffered each way.
 * Setup is a list of steps advanced from the controller's tick, so the
 * loop keeps serving while sshd or an association comes up.
 */
#include "lab/controller/controller_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "util/log.h"

#define TB_MAX 2
#define TB_MAX_PROCS 12
#define TB_MAX_RELAYS 8
#define TB_MAX_STEPS 16
#define TB_ARGV_MAX 32
#define RELAY_MAX_CONNS 32
#define RELAY_BUF_MAX (1u << 20)
#define TB_STEP_TIMEOUT_MS 30000
#define TB_TERM_WAIT_MS 3000
#define TB_LOG_SCAN_MAX 65536
#define NS_PREFIX "sctptlab-"
#define NETNS_DIR "/run/netns"

#define ADDR_A "10.77.0.1"
#define ADDR_B "10.77.0.2"
#define RECV_PORT 9000
#define SCTPT_PORT 4433
#define SSHD_PORT 2222
#define SS_PORT 8388
#define SOCKS_SCTPT 1080
#define SOCKS_SSH 1081
#define SOCKS_SS 1082
#define SS_KEY "sctpt-lab-testbed"
#define SS_METHOD "chacha20-ietf-poly1305"

enum { P_SCTPT = 1, P_SSH = 2, P_SS = 4, P_DIRECT = 8 };

enum wait_kind { W_NONE, W_LOG, W_PORT };

struct step {
	char name[24];
	int ns;                            /* 0: A, 1: B */
	char *argv[TB_ARGV_MAX];
	enum wait_kind wait;
	char needle[32];
	char host[16];
	uint16_t port;
	/* the lab node it is, if any */
	char node_kind[8];
	uint16_t api_port;
	char node_suffix[16];
};

struct proc {
	pid_t pid;                         /* 0: not running */
	char name[24];
	char log[PATH_MAX];
	unsigned long long start;          /* /proc/PID/stat starttime */
};

struct relay;

struct relay_conn {
	struct relay *r;
	struct relay_conn *next, **pprev;  /* the relay's list, freed with it */
	int closing;                       /* one side ended: flush the other, then free */
	struct bufferevent *a, *b;         /* host side, namespace side */
};

struct relay {
	int used;
	struct evconnlistener *lis;
	uint16_t port;
	int ns;
	unsigned nconns;
	struct relay_conn *conns;
};

struct testbed {
	int used;
	char id[8];
	char ns[2][48];
	char dir[PATH_MAX];
	enum { TB_STARTING, TB_READY, TB_FAILED } state;
	char error[200];
	unsigned peers;
	double loss;
	unsigned delay_ms;
	uint64_t seed;
	char cert[200];
	struct step steps[TB_MAX_STEPS];
	unsigned nsteps, cur;
	uint64_t step_t0;
	struct proc procs[TB_MAX_PROCS];
	unsigned nprocs;
	struct relay relays[TB_MAX_RELAYS];
	unsigned nrelays;
	char nodes[TB_MAX_RELAYS][SC_ID_MAX];
	unsigned nnodes;
	int tearing;
	double created;
};

static struct {
	struct event_base *base;
	char state_dir[PATH_MAX];
	char lab_bin[PATH_MAX], sctpt_bin[PATH_MAX];
	struct testbed tb[TB_MAX];
	unsigned next_id;
	int self_ns;
	struct event *sigchld;
} T;

/* strlcpy: fields of one struct, which snprintf's restrict forbids. */
static void copy(char *dst, size_t n, const char *src)
{
	size_t k = strnlen(src, n - 1);

	memmove(dst, src, k);
	dst[k] = '\0';
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the state record: what exists, for the cleanup after a crash */

static void record_path(char *p, size_t n)
{
	snprintf(p, n, "%s/testbeds.json", T.state_dir);
}

static void record_save(void)
{
	char path[PATH_MAX + 32];
	json_t *a;

	if (T.state_dir[0] == '\0' || (a = json_array()) == NULL)
		return;
	for (int i = 0; i < TB_MAX; i++) {
		struct testbed *t = &T.tb[i];
		json_t *pids;

		if (!t->used || (pids = json_array()) == NULL)
			continue;
		for (unsigned k = 0; k < t->nprocs; k++)
			if (t->procs[k].pid > 0)
				json_array_append_new(pids, json_pack("{s:I, s:I}", "pid",
				        (json_int_t)t->procs[k].pid, "start",
				        (json_int_t)t->procs[k].start));
		json_array_append_new(a, json_pack("{s:s, s:[s,s], s:s, s:o}", "id", t->id,
		        "namespaces", t->ns[0], t->ns[1], "dir", t->dir, "processes", pids));
	}
	record_path(path, sizeof(path));
	if (json_array_size(a) == 0)
		unlink(path);
	else
		ctl_write_atomic(path, a);
	json_decref(a);
}

/* ---- processes */

static unsigned long long proc_start(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL) {
		/* after "pid (comm)": field 3 is state ... field 22 is starttime */
		int field = 2;

		for (p++; *p && field < 22; p++)
			if (*p == ' ')
				field++;
		if (field == 22)
			v = strtoull(p, NULL, 10);
	}
	fclose(f);
	return v;
}

static int ns_open(const char *ns)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), NETNS_DIR "/%s", ns);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/*
 * fork/exec argv (argv[0] a path, or a name looked up in PATH) in network
 * namespace ns ("" = the controller's), output to log.  The child gets its
 * own session (so its whole group can be signalled) and dies with the
 * controller.  pid, or -1 with err.
 */
static pid_t spawn(const char *ns, char *const argv[], const char *log, char *err, size_t el)
{
	int nsfd = -1, logfd;
	pid_t parent = getpid(), pid;

	if (ns[0] != '\0' && (nsfd = ns_open(ns)) < 0) {
		snprintf(err, el, "namespace %s: %s", ns, strerror(errno));
		return -1;
	}
	logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0) {
		snprintf(err, el, "%s: %s", log, strerror(errno));
		if (nsfd >= 0)
			close(nsfd);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		sigset_t none;
		int devnull = open("/dev/null", O_RDONLY);

		setsid();
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) < 0)
			_exit(126);
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
			_exit(126);
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		execvp(argv[0], argv);
		dprintf(2, "testbed: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(logfd);
	if (nsfd >= 0)
		close(nsfd);
	if (pid < 0) {
		snprintf(err, el, "fork: %s", strerror(errno));
		return -1;
	}
	return pid;
}

/* Run a short command to its end (bounded): 0 if it exited 0. */
static int run_cmd(const char *ns, char *const argv[], const char *log, char *err, size_t el)
{
	pid_t pid = spawn(ns, argv, log, err, el);
	uint64_t t0 = mono_ms();
	int st;

	if (pid < 0)
		return -1;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			snprintf(err, el, "%s: waitpid: %s", argv[0], strerror(errno));
			return -1;
		}
		if (mono_ms() - t0 > 10000) {
			kill(-pid, SIGKILL);
			waitpid(pid, &st, 0);
			snprintf(err, el, "%s did not finish within 10 s", argv[0]);
			return -1;
		}
		usleep(5000);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(err, el, "%s %s failed (status %d; see %s)", argv[0], argv[1] ? argv[1] : "",
		         WIFEXITED(st) ? WEXITSTATUS(st) : -1, log);
		return -1;
	}
	return 0;
}

/* Kill every process whose network namespace is ns (what is left after its groups). */
static void ns_kill_all(const char *ns)
{
	char path[PATH_MAX];
	struct stat nst;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), NETNS_DIR "/%s", ns);
	if (stat(path, &nst) < 0 || (d = opendir("/proc")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char p[64];
		struct stat st;
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end != '\0' || pid <= 1 || pid == getpid())
			continue;
		snprintf(p, sizeof(p), "/proc/%ld/ns/net", pid);
		if (stat(p, &st) == 0 && st.st_ino == nst.st_ino && st.st_dev == nst.st_dev)
			kill((pid_t)pid, SIGKILL);
	}
	closedir(d);
}

static void ns_delete(const char *ns)
{
	char *argv[] = { "ip", "netns", "del", (char *)ns, NULL };
	char path[PATH_MAX], err[200];

	snprintf(path, sizeof(path), NETNS_DIR "/%s", ns);
	if (access(path, F_OK) != 0)
		return;
	ns_kill_all(ns);
	if (run_cmd("", argv, "/dev/null", err, sizeof(err)) < 0)
		log_warn("controller: testbed: %s", err);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	remove(p);
	return 0;
}

/* ---- the relay into a namespace */

/* A TCP socket inside namespace ns (the thread enters it just to create it). */
static int ns_socket(const char *ns)
{
	int nsfd = ns_open(ns), s = -1;

	if (nsfd < 0)
		return -1;
	if (setns(nsfd, CLONE_NEWNET) == 0) {
		s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (setns(T.self_ns, CLONE_NEWNET) < 0) {
			/* Cannot come back: nothing the controller opens would be right. */
			log_err("controller: testbed: cannot return to the own namespace: %s",
			        strerror(errno));
			abort();
		}
	}
	close(nsfd);
	return s;
}

/* Whether host:port accepts a connection inside namespace ns. */
static int ns_port_open(const char *ns, const char *host, uint16_t port)
{
	int s = ns_socket(ns), ok;
	struct sockaddr_in sin;
	int fl;

	if (s < 0)
		return 0;
	fl = fcntl(s, F_GETFL);
	fcntl(s, F_SETFL, fl & ~O_NONBLOCK);   /* local addresses answer at once */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	inet_pton(AF_INET, host, &sin.sin_addr);
	ok = connect(s, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(s);
	return ok;
}

static struct testbed *relay_tb(const struct relay *r)
{
	for (int i = 0; i < TB_MAX; i++)
		if (r >= T.tb[i].relays && r < T.tb[i].relays + TB_MAX_RELAYS)
			return &T.tb[i];
	return NULL;
}

static void rc_free(struct relay_conn *c)
{
	bufferevent_free(c->a);
	bufferevent_free(c->b);
	c->r->nconns--;
	*c->pprev = c->next;
	if (c->next != NULL)
		c->next->pprev = c->pprev;
	free(c);
}

static void rc_read(struct bufferevent *bev, void *arg)
{
	struct relay_conn *c = arg;
	struct bufferevent *other = bev == c->a ? c->b : c->a;

	bufferevent_write_buffer(other, bufferevent_get_input(bev));
	if (evbuffer_get_length(bufferevent_get_output(other)) >= RELAY_BUF_MAX)
		bufferevent_disable(bev, EV_READ);
}

static void rc_write(struct bufferevent *bev, void *arg)
{
	struct relay_conn *c = arg;

	if (c->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			rc_free(c);
		return;
	}
	/* bev's output drained below the low mark: read the other side again. */
	bufferevent_enable(bev == c->a ? c->b : c->a, EV_READ);
}

static void rc_event(struct bufferevent *bev, short what, void *arg)
{
	struct relay_conn *c = arg;
	struct bufferevent *other = bev == c->a ? c->b : c->a;

	if (what & BEV_EVENT_CONNECTED)
		return;
	/* One side ended or failed: what it sent still goes to the other, then both close. */
	if (!c->closing && (what & BEV_EVENT_EOF) &&
	    evbuffer_get_length(bufferevent_get_output(other)) > 0) {
		c->closing = 1;
		bufferevent_disable(bev, EV_READ | EV_WRITE);
		bufferevent_setwatermark(other, EV_WRITE, 0, 0);
		return;
	}
	rc_free(c);
}

static void relay_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                         int salen, void *arg)
{
	struct relay *r = arg;
	struct testbed *t = relay_tb(r);
	struct relay_conn *c;
	struct sockaddr_in sin;
	int s;

	(void)l; (void)sa; (void)salen;
	if (t == NULL || r->nconns >= RELAY_MAX_CONNS || (c = calloc(1, sizeof(*c))) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	if ((s = ns_socket(t->ns[r->ns])) < 0) {
		free(c);
		evutil_closesocket(fd);
		return;
	}
	c->r = r;
	c->a = bufferevent_socket_new(T.base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->b = bufferevent_socket_new(T.base, s, BEV_OPT_CLOSE_ON_FREE);
	if (c->a == NULL || c->b == NULL) {
		if (c->a)
			bufferevent_free(c->a);
		else
			evutil_closesocket(fd);
		if (c->b)
			bufferevent_free(c->b);
		else
			close(s);
		free(c);
		return;
	}
	r->nconns++;
	c->next = r->conns;
	c->pprev = &r->conns;
	if (r->conns != NULL)
		r->conns->pprev = &c->next;
	r->conns = c;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(r->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bufferevent_setcb(c->a, rc_read, rc_write, rc_event, c);
	bufferevent_setcb(c->b, rc_read, rc_write, rc_event, c);
	bufferevent_setwatermark(c->a, EV_WRITE, RELAY_BUF_MAX / 2, 0);
	bufferevent_setwatermark(c->b, EV_WRITE, RELAY_BUF_MAX / 2, 0);
	bufferevent_enable(c->a, EV_READ | EV_WRITE);
	bufferevent_enable(c->b, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->b, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		rc_free(c);
}

/* A relay listening on a free port of the host's loopback; its port, or 0. */
static uint16_t relay_new(struct testbed *t, int ns)
{
	struct relay *r;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	if (t->nrelays >= TB_MAX_RELAYS)
		return 0;
	r = &t->relays[t->nrelays];
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->lis = evconnlistener_new_bind(T.base, relay_accept, r,
	                                 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
	                                 (struct sockaddr *)&sin, sizeof(sin));
	if (r->lis == NULL ||
	    getsockname(evconnlistener_get_fd(r->lis), (struct sockaddr *)&sin, &len) < 0) {
		if (r->lis)
			evconnlistener_free(r->lis);
		r->lis = NULL;
		return 0;
	}
	r->used = 1;
	r->ns = ns;
	r->port = ntohs(sin.sin_port);
	t->nrelays++;
	return r->port;
}

/* ---- building the steps */

static char *dupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *dupf(const char *fmt, ...)
{
	char buf[PATH_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return strdup(buf);
}

static struct step *step_add(struct testbed *t, const char *name, int ns, enum wait_kind w,
                             const char *needle_or_host, unsigned port, ...)
{
	struct step *s = &t->steps[t->nsteps++];
	va_list ap;
	const char *a;
	int n = 0;

	snprintf(s->name, sizeof(s->name), "%s", name);
	s->ns = ns;
	s->wait = w;
	if (w == W_LOG)
		snprintf(s->needle, sizeof(s->needle), "%s", needle_or_host);
	else if (w == W_PORT)
		snprintf(s->host, sizeof(s->host), "%s", needle_or_host);
	s->port = (uint16_t)port;
	va_start(ap, port);
	while ((a = va_arg(ap, const char *)) != NULL && n < TB_ARGV_MAX - 1)
		s->argv[n++] = strdup(a);
	va_end(ap);
	s->argv[n] = NULL;
	return s;
}

/* Append more arguments (already allocated) to a step. */
static void step_more(struct step *s, char *a)
{
	int n = 0;

	while (s->argv[n] != NULL && n < TB_ARGV_MAX - 1)
		n++;
	if (n < TB_ARGV_MAX - 1) {
		s->argv[n] = a;
		s->argv[n + 1] = NULL;
	} else {
		free(a);
	}
}

static void step_node(struct testbed *t, struct step *s, const char *kind, const char *suffix,
                      const char *flag)
{
	uint16_t p = relay_new(t, s->ns);

	snprintf(s->node_kind, sizeof(s->node_kind), "%s", kind);
	snprintf(s->node_suffix, sizeof(s->node_suffix), "%s", suffix);
	s->api_port = p;
	step_more(s, strdup(flag));
	step_more(s, dupf("127.0.0.1:%u", p));
}

static const char *find_in_path(const char *name)
{
	static char buf[PATH_MAX];
	const char *path = getenv("PATH");
	char copy[4096], *save = NULL;

	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? name : NULL;
	snprintf(copy, sizeof(copy), "%s", path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(buf, sizeof(buf), "%s/%s", d, name);
		if (access(buf, X_OK) == 0)
			return buf;
	}
	return NULL;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t n = strlen(text);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, text, n) == (ssize_t)n;
	close(fd);
	return ok ? 0 : -1;
}

/* The synchronous part: namespaces, keys, configuration; then the step list. */
static int tb_prepare(struct testbed *t, char *err, size_t el)
{
	char log[PATH_MAX + 16], key[PATH_MAX + 16], buf[5 * PATH_MAX + 512];
	struct step *s;

	snprintf(log, sizeof(log), "%s/setup.log", t->dir);
	for (int i = 0; i < 2; i++) {
		char *add[] = { "ip", "netns", "add", t->ns[i], NULL };
		char *lo[] = { "ip", "-n", t->ns[i], "link", "set", "lo", "up", NULL };
		char *v6[] = { "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", NULL };
		char *v6d[] = { "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1", NULL };

		if (run_cmd("", add, log, err, el) < 0)
			return -1;
		record_save();
		if (run_cmd("", lo, log, err, el) < 0 || run_cmd(t->ns[i], v6, log, err, el) < 0 ||
		    run_cmd(t->ns[i], v6d, log, err, el) < 0)
			return -1;
	}
	s = step_add(t, "impair", 0, W_LOG, "impair: ready", 0, T.lab_bin, "impair", "--tun", NULL);
	step_more(s, dupf("%s:%s/24", t->ns[0], ADDR_A));
	step_more(s, strdup("--tun"));
	step_more(s, dupf("%s:%s/24", t->ns[1], ADDR_B));
	step_more(s, strdup("--seed"));
	step_more(s, dupf("%llu", (unsigned long long)t->seed));
	step_more(s, strdup("--loss"));
	step_more(s, dupf("%g", t->loss));
	step_more(s, strdup("--delay"));
	step_more(s, dupf("%u", t->delay_ms));
	step_node(t, s, "impair", "impair", "--api");
	s = step_add(t, "recv", 1, W_LOG, "ready", 0, T.lab_bin, "recv", "--listen", NULL);
	step_more(s, dupf("0.0.0.0:%u", RECV_PORT));
	step_more(s, strdup("-q"));
	step_node(t, s, "recv", "recv", "--api");
	if (t->peers & P_SCTPT) {
		char *kg[] = { T.sctpt_bin, "keygen", "--key", key, NULL };
		char out[PATH_MAX + 16], *c;
		FILE *f;

		snprintf(key, sizeof(key), "%s/sctpt.key", t->dir);
		snprintf(out, sizeof(out), "%s/keygen.out", t->dir);
		if (run_cmd("", kg, out, err, el) < 0)
			return -1;
		if ((f = fopen(out, "re")) == NULL)
			return snprintf(err, el, "%s: %s", out, strerror(errno)), -1;
		buf[0] = '\0';
		while (fgets(buf, sizeof(buf), f) != NULL && strncmp(buf, "cert=", 5) != 0)
			buf[0] = '\0';
		fclose(f);
		if (strncmp(buf, "cert=", 5) != 0 || strlen(buf + 5) >= sizeof(t->cert)) {
			snprintf(err, el, "sctpt keygen printed no cert= line (see %s)", out);
			return -1;
		}
		snprintf(t->cert, sizeof(t->cert), "%s", buf + 5);
		if ((c = strpbrk(t->cert, "\r\n")) != NULL)
			*c = '\0';
		s = step_add(t, "sctpt-server", 1, W_LOG, "listening on", 0, T.sctpt_bin, "server",
		             "--listen", NULL);
		step_more(s, dupf("udp://%s:%u", ADDR_B, SCTPT_PORT));
		step_more(s, strdup("--key"));
		step_more(s, strdup(key));
		step_more(s, strdup("--proxy"));
		step_more(s, strdup("--allow"));
		step_more(s, strdup("127.0.0.0/8"));
		step_node(t, s, "sctpt", "sctpt-server", "--metrics");
		s = step_add(t, "sctpt-client", 0, W_LOG, "association up", 0, T.sctpt_bin, "client",
		             "--server", NULL);
		step_more(s, dupf("udp://%s:%u", ADDR_B, SCTPT_PORT));
		step_more(s, strdup("--cert"));
		step_more(s, strdup(t->cert));
		step_more(s, strdup("--socks"));
		step_more(s, dupf("127.0.0.1:%u", SOCKS_SCTPT));
		step_node(t, s, "sctpt", "sctpt-client", "--metrics");
	}
	if (t->peers & P_SSH) {
		char d[PATH_MAX + 8], p[PATH_MAX + 32];
		char *kh[] = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", NULL, NULL };

		snprintf(d, sizeof(d), "%s/ssh", t->dir);
		if (mkdir(d, 0700) < 0)
			return snprintf(err, el, "%s: %s", d, strerror(errno)), -1;
		snprintf(p, sizeof(p), "%s/host", d);
		kh[7] = p;
		if (run_cmd("", kh, log, err, el) < 0)
			return -1;
		snprintf(p, sizeof(p), "%s/id", d);
		if (run_cmd("", kh, log, err, el) < 0)
			return -1;
		{
			char pub[PATH_MAX + 32], ak[PATH_MAX + 32], line[1024];
			FILE *f;

			snprintf(pub, sizeof(pub), "%s/id.pub", d);
			snprintf(ak, sizeof(ak), "%s/authorized_keys", d);
			if ((f = fopen(pub, "re")) == NULL || fgets(line, sizeof(line), f) == NULL ||
			    write_file(ak, line) < 0) {
				if (f)
					fclose(f);
				return snprintf(err, el, "cannot write %s", ak), -1;
			}
			fclose(f);
		}
		snprintf(buf, sizeof(buf),
		         "Port %u\nListenAddress %s\nHostKey %s/host\nAuthorizedKeysFile %s/authorized_keys\n"
		         "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
		         "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
		         "PidFile %s/sshd.pid\nAllowTcpForwarding yes\nMaxSessions 1000\n"
		         "MaxStartups 100\nLogLevel ERROR\n", SSHD_PORT, ADDR_B, d, d, d);
		snprintf(p, sizeof(p), "%s/sshd_config", d);
		if (write_file(p, buf) < 0)
			return snprintf(err, el, "cannot write %s", p), -1;
		mkdir("/run/sshd", 0755);      /* sshd's privilege separation directory */
		s = step_add(t, "sshd", 1, W_PORT, ADDR_B, SSHD_PORT, "/usr/sbin/sshd", "-D", "-e",
		             "-f", p, NULL);
		s = step_add(t, "ssh -D", 0, W_PORT, "127.0.0.1", SOCKS_SSH, "ssh", "-N", "-D", NULL);
		step_more(s, dupf("127.0.0.1:%u", SOCKS_SSH));
		step_more(s, strdup("-i"));
		step_more(s, dupf("%s/id", d));
		step_more(s, strdup("-o"));
		step_more(s, strdup("StrictHostKeyChecking=no"));
		step_more(s, strdup("-o"));
		step_more(s, strdup("UserKnownHostsFile=/dev/null"));
		step_more(s, strdup("-o"));
		step_more(s, strdup("BatchMode=yes"));
		step_more(s, strdup("-o"));
		step_more(s, strdup("ExitOnForwardFailure=yes"));
		step_more(s, strdup("-p"));
		step_more(s, dupf("%u", SSHD_PORT));
		step_more(s, dupf("root@%s", ADDR_B));
	}
	if (t->peers & P_SS) {
		s = step_add(t, "ss-server", 1, W_PORT, ADDR_B, SS_PORT, "ss-server", "-s", ADDR_B,
		             "-p", NULL);
		step_more(s, dupf("%u", SS_PORT));
		step_more(s, strdup("-k"));
		step_more(s, strdup(SS_KEY));
		step_more(s, strdup("-m"));
		step_more(s, strdup(SS_METHOD));
		step_more(s, strdup("--no-delay"));
		s = step_add(t, "ss-local", 0, W_PORT, "127.0.0.1", SOCKS_SS, "ss-local", "-s", ADDR_B,
		             "-p", NULL);
		step_more(s, dupf("%u", SS_PORT));
		step_more(s, strdup("-b"));
		step_more(s, strdup("127.0.0.1"));
		step_more(s, strdup("-l"));
		step_more(s, dupf("%u", SOCKS_SS));
		step_more(s, strdup("-k"));
		step_more(s, strdup(SS_KEY));
		step_more(s, strdup("-m"));
		step_more(s, strdup(SS_METHOD));
		step_more(s, strdup("--no-delay"));
	}
	s = step_add(t, "send", 0, W_LOG, "ready", 0, T.lab_bin, "send", "--to", NULL);
	step_more(s, dupf("127.0.0.1:%u", RECV_PORT));
	step_more(s, strdup("--idle"));
	step_more(s, strdup("-q"));
	step_node(t, s, "send", "send", "--api");
	for (unsigned i = 0; i < t->nsteps; i++)
		if (t->steps[i].node_kind[0] != '\0' && t->steps[i].api_port == 0)
			return snprintf(err, el, "no free port on loopback for a relay"), -1;
	return 0;
}

/* ---- running the steps */

static int log_has(const char *path, const char *needle)
{
	char buf[TB_LOG_SCAN_MAX + 1];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, TB_LOG_SCAN_MAX);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

static void tb_fail(struct testbed *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tb_fail(struct testbed *t, const char *fmt, ...)
{
	va_list ap;

	if (t->state == TB_FAILED)
		return;
	va_start(ap, fmt);
	vsnprintf(t->error, sizeof(t->error), fmt, ap);
	va_end(ap);
	t->state = TB_FAILED;
	ctl_event("testbed %s failed: %s", t->id, t->error);
}

static void tb_start_step(struct testbed *t)
{
	struct step *s = &t->steps[t->cur];
	struct proc *p = &t->procs[t->nprocs];
	char err[240];

	char log[PATH_MAX + 48];

	copy(p->name, sizeof(p->name), s->name);
	snprintf(log, sizeof(log), "%s/%s.log", t->dir, s->name);
	copy(p->log, sizeof(p->log), log);
	for (char *c = p->log + strlen(t->dir); *c; c++)
		if (*c == ' ')
			*c = '_';
	p->pid = spawn(t->ns[s->ns], s->argv, p->log, err, sizeof(err));
	if (p->pid < 0) {
		p->pid = 0;
		tb_fail(t, "%s: %s", s->name, err);
		return;
	}
	p->start = proc_start(p->pid);
	t->nprocs++;
	t->step_t0 = mono_ms();
	record_save();
}

static void tb_register(struct testbed *t)
{
	for (unsigned i = 0; i < t->nsteps; i++) {
		struct step *s = &t->steps[i];
		char id[SC_ID_MAX], url[64], err[200];

		if (s->node_kind[0] == '\0')
			continue;
		snprintf(id, sizeof(id), "%s-%s", t->id, s->node_suffix);
		snprintf(url, sizeof(url), "http://127.0.0.1:%u", s->api_port);
		if (ctl_node_register(id, s->node_kind, url, err, sizeof(err)) < 0) {
			tb_fail(t, "node %s: %s", id, err);
			return;
		}
		snprintf(t->nodes[t->nnodes++], SC_ID_MAX, "%s", id);
	}
}

/* Advance a starting testbed: called from the controller's tick. */
static void tb_advance(struct testbed *t)
{
	struct step *s;
	struct proc *p;
	int ok = 0;

	if (t->state != TB_STARTING)
		return;
	if (t->nprocs == t->cur) {
		if (t->cur == t->nsteps) {
			tb_register(t);
			if (t->state == TB_STARTING) {
				t->state = TB_READY;
				ctl_event("testbed %s ready (%.1f s)", t->id, ctl_now_s() - t->created);
			}
			return;
		}
		tb_start_step(t);
		return;
	}
	s = &t->steps[t->cur];
	p = &t->procs[t->cur];
	if (p->pid == 0) {
		tb_fail(t, "%s exited during setup (see %s)", s->name, p->log);
		return;
	}
	if (s->wait == W_LOG)
		ok = log_has(p->log, s->needle);
	else if (s->wait == W_PORT)
		ok = ns_port_open(t->ns[s->ns], s->host, s->port);
	else
		ok = 1;
	if (s->node_kind[0] != '\0' && ok)
		ok = ns_port_open(t->ns[s->ns], "127.0.0.1", s->api_port);
	if (ok) {
		t->cur++;
		tb_advance(t);
	} else if (mono_ms() - t->step_t0 > TB_STEP_TIMEOUT_MS) {
		tb_fail(t, "%s: not ready within %d s (see %s)", s->name, TB_STEP_TIMEOUT_MS / 1000,
		        p->log);
	}
}

void tb_tick(void)
{
	for (int i = 0; i < TB_MAX; i++)
		if (T.tb[i].used && !T.tb[i].tearing)
			tb_advance(&T.tb[i]);
}

static void sigchld_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what; (void)arg;
	for (int i = 0; i < TB_MAX; i++) {
		struct testbed *t = &T.tb[i];

		for (unsigned k = 0; t->used && k < t->nprocs; k++) {
			struct proc *p = &t->procs[k];
			int st;

			if (p->pid <= 0 || waitpid(p->pid, &st, WNOHANG) != p->pid)
				continue;
			p->pid = 0;
			if (!t->tearing)
				tb_fail(t, "%s exited (%s %d; see %s)", p->name,
				        WIFEXITED(st) ? "status" : "signal",
				        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), p->log);
		}
	}
}

/* ---- teardown */

static void tb_teardown(struct testbed *t)
{
	uint64_t t0;
	int left;

	t->tearing = 1;
	for (unsigned i = 0; i < t->nnodes; i++)
		ctl_node_unregister(t->nodes[i]);
	t->nnodes = 0;
	for (unsigned k = t->nprocs; k-- > 0;)
		if (t->procs[k].pid > 0)
			kill(-t->procs[k].pid, SIGTERM);
	t0 = mono_ms();
	do {
		left = 0;
		for (unsigned k = 0; k < t->nprocs; k++) {
			struct proc *p = &t->procs[k];

			if (p->pid > 0 && waitpid(p->pid, NULL, WNOHANG) == p->pid)
				p->pid = 0;
			left += p->pid > 0;
		}
		if (left)
			usleep(20000);
	} while (left && mono_ms() - t0 < TB_TERM_WAIT_MS);
	for (unsigned k = 0; k < t->nprocs; k++) {
		struct proc *p = &t->procs[k];

		if (p->pid > 0) {
			kill(-p->pid, SIGKILL);
			waitpid(p->pid, NULL, 0);
			p->pid = 0;
		}
	}
	for (unsigned r = 0; r < t->nrelays; r++) {
		if (t->relays[r].lis != NULL)
			evconnlistener_free(t->relays[r].lis);
		while (t->relays[r].conns != NULL)
			rc_free(t->relays[r].conns);
	}
	for (int i = 0; i < 2; i++)
		if (t->ns[i][0] != '\0')
			ns_delete(t->ns[i]);
	if (t->dir[0] != '\0')
		nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	for (unsigned i = 0; i < t->nsteps; i++)
		for (int k = 0; t->steps[i].argv[k] != NULL; k++)
			free(t->steps[i].argv[k]);
	memset(t, 0, sizeof(*t));
	record_save();
}

/* ---- the crash cleanup at start */

static void cleanup_namespace_prefix(void)
{
	DIR *d = opendir(NETNS_DIR);
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL) {
		long pid;
		char *end;

		if (strncmp(de->d_name, NS_PREFIX, strlen(NS_PREFIX)) != 0)
			continue;
		pid = strtol(de->d_name + strlen(NS_PREFIX), &end, 10);
		if (end == de->d_name + strlen(NS_PREFIX) || *end != '-' || pid <= 0)
			continue;
		/* A namespace of a controller that is gone. */
		if (pid != getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
			log_notice("controller: removing namespace %s left by a controller that "
			           "stopped (pid %ld)", de->d_name, pid);
			ns_delete(de->d_name);
		}
	}
	if (d != NULL)
		closedir(d);
}

static void cleanup_recorded(void)
{
	char path[PATH_MAX + 32];
	json_t *a, *t;
	size_t i;

	record_path(path, sizeof(path));
	a = ctl_read_json_file(path, 1u << 20);
	json_array_foreach(a, i, t) {
		json_t *v;
		size_t k;
		const char *dir = json_string_value(json_object_get(t, "dir"));

		json_array_foreach(json_object_get(t, "processes"), k, v) {
			json_int_t pid = json_integer_value(json_object_get(v, "pid"));
			json_int_t st = json_integer_value(json_object_get(v, "start"));

			if (pid > 1 && pid < INT_MAX && proc_start((pid_t)pid) == (unsigned long long)st &&
			    st != 0)
				kill(-(pid_t)pid, SIGKILL);
		}
		json_array_foreach(json_object_get(t, "namespaces"), k, v) {
			const char *ns = json_string_value(v);

			if (ns != NULL && strncmp(ns, NS_PREFIX, strlen(NS_PREFIX)) == 0 &&
			    strchr(ns, '/') == NULL) {
				log_notice("controller: removing namespace %s of testbed %s (the "
				           "controller stopped without tearing it down)", ns,
				           json_string_value(json_object_get(t, "id")));
				ns_delete(ns);
			}
		}
		if (dir != NULL && strstr(dir, "/sctpt-lab-tb-") != NULL)
			nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	json_decref(a);
	unlink(path);
}

int tb_init(struct event_base *base, const char *state_dir, const char *sctpt_bin)
{
	ssize_t n;

	memset(&T, 0, sizeof(T));
	T.base = base;
	T.self_ns = -1;
	snprintf(T.state_dir, sizeof(T.state_dir), "%s", state_dir);
	n = readlink("/proc/self/exe", T.lab_bin, sizeof(T.lab_bin) - 1);
	if (n > 0)
		T.lab_bin[n] = '\0';
	if (sctpt_bin != NULL && sctpt_bin[0] != '\0') {
		snprintf(T.sctpt_bin, sizeof(T.sctpt_bin), "%s", sctpt_bin);
	} else if (n > 0) {
		char *slash = strrchr(T.lab_bin, '/');

		snprintf(T.sctpt_bin, sizeof(T.sctpt_bin), "%.*s/sctpt",
		         (int)(slash ? slash - T.lab_bin : 1), slash ? T.lab_bin : ".");
	}
	if (geteuid() != 0)
		return 0;
	T.self_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	T.sigchld = evsignal_new(base, SIGCHLD, sigchld_cb, NULL);
	if (T.sigchld == NULL || event_add(T.sigchld, NULL) < 0)
		return -1;
	if (T.state_dir[0] != '\0')
		cleanup_recorded();
	cleanup_namespace_prefix();
	return 0;
}

void tb_shutdown(void)
{
	for (int i = 0; i < TB_MAX; i++)
		if (T.tb[i].used) {
			log_notice("controller: tearing down testbed %s", T.tb[i].id);
			tb_teardown(&T.tb[i]);
		}
	if (T.sigchld != NULL)
		event_free(T.sigchld);
	T.sigchld = NULL;
	if (T.self_ns >= 0)
		close(T.self_ns);
	T.self_ns = -1;
}

/* ---- the API side */

static const char *state_name(const struct testbed *t)
{
	return t->state == TB_READY ? "ready" : t->state == TB_FAILED ? "failed" : "starting";
}

/* The comparison scenario for this testbed: POST it to /api/runs (after any changes). */
static json_t *tb_scenario(const struct testbed *t)
{
	json_t *vars = json_array();
	char name[SC_NAME_MAX], tl[96], n[3][SC_ID_MAX];

	if (t->peers & P_SCTPT)
		json_array_append_new(vars, json_pack("{s:s, s:s}", "name", "sctpt", "socks",
		                                      "127.0.0.1:1080"));
	if (t->peers & P_SSH)
		json_array_append_new(vars, json_pack("{s:s, s:s}", "name", "ssh -D", "socks",
		                                      "127.0.0.1:1081"));
	if (t->peers & P_SS)
		json_array_append_new(vars, json_pack("{s:s, s:s}", "name", "shadowsocks", "socks",
		                                      "127.0.0.1:1082"));
	if (t->peers & P_DIRECT)
		json_array_append_new(vars, json_pack("{s:s, s:s}", "name", "direct", "target",
		                                      ADDR_B ":9000"));
	snprintf(name, sizeof(name), "side by side (%s): loss %g, %u ms each way", t->id, t->loss,
	         t->delay_ms);
	snprintf(tl, sizeof(tl), "at 0s loss %g, delay %ums", t->loss, t->delay_ms);
	snprintf(n[0], SC_ID_MAX, "%s-send", t->id);
	snprintf(n[1], SC_ID_MAX, "%s-recv", t->id);
	snprintf(n[2], SC_ID_MAX, "%s-impair", t->id);
	return json_pack("{s:s, s:i, s:I, s:i, s:{s:s, s:i, s:i, s:i, s:i}, s:[s], s:o, "
	                 "s:{s:s, s:s, s:s}}", "name", name, "duration_s", 20,
	                 "seed", (json_int_t)t->seed, "repeat", 1, "workload", "mode", "rpc",
	                 "streams", 8, "rpc_req", 1000, "rpc_resp", 1000, "rpc_gap_ms", 10,
	                 "timeline", tl, "variants", vars, "nodes", "send", n[0], "recv", n[1],
	                 "impair", n[2]);
}

json_t *tb_json(int i)
{
	struct testbed *t = &T.tb[i];
	json_t *peers = json_array(), *procs = json_array(), *nodes = json_array();

	if (t->peers & P_SCTPT)
		json_array_append_new(peers, json_string("sctpt"));
	if (t->peers & P_SSH)
		json_array_append_new(peers, json_string("ssh"));
	if (t->peers & P_SS)
		json_array_append_new(peers, json_string("shadowsocks"));
	if (t->peers & P_DIRECT)
		json_array_append_new(peers, json_string("direct"));
	for (unsigned k = 0; k < t->nprocs; k++)
		json_array_append_new(procs, json_pack("{s:s, s:I, s:b, s:s}", "name",
		        t->procs[k].name, "pid", (json_int_t)t->procs[k].pid, "running",
		        t->procs[k].pid > 0, "log", t->procs[k].log));
	for (unsigned k = 0; k < t->nnodes; k++)
		json_array_append_new(nodes, json_string(t->nodes[k]));
	return json_pack("{s:s, s:s, s:s, s:o, s:f, s:i, s:I, s:[s,s], s:o, s:o, s:o, s:s}",
	        "id", t->id, "state", state_name(t), "error", t->error, "peers", peers,
	        "loss", t->loss, "delay_ms", (int)t->delay_ms, "seed", (json_int_t)t->seed,
	        "namespaces", t->ns[0], t->ns[1], "processes", procs, "nodes", nodes,
	        "scenario", tb_scenario(t), "dir", t->dir);
}

int tb_find(const char *id)
{
	for (int i = 0; i < TB_MAX; i++)
		if (T.tb[i].used && strcmp(T.tb[i].id, id) == 0)
			return i;
	return -1;
}

json_t *tb_list(void)
{
	json_t *a = json_array();

	for (int i = 0; i < TB_MAX; i++)
		if (T.tb[i].used)
			json_array_append_new(a, tb_json(i));
	return a;
}

/* The node ids of testbed i, for "is a run using it". */
int tb_owns_node(int i, const char *node_id)
{
	struct testbed *t = &T.tb[i];
	size_t n = strlen(t->id);

	return strncmp(node_id, t->id, n) == 0 && node_id[n] == '-';
}

static int parse_spec(json_t *j, struct testbed *t, char *err, size_t el)
{
	const char *key;
	json_t *v;

	t->peers = P_SCTPT | P_SSH | P_SS;
	t->loss = 0.02;
	t->delay_ms = 25;
	t->seed = 1;
	json_object_foreach(j, key, v) {
		if (strcmp(key, "peers") == 0) {
			size_t i;
			json_t *p;

			if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 4)
				return snprintf(err, el, "peers: a list of 1..4 of sctpt, ssh, "
				                "shadowsocks, direct"), -1;
			t->peers = 0;
			json_array_foreach(v, i, p) {
				const char *s = json_string_value(p);
				unsigned bit = s == NULL ? 0 : strcmp(s, "sctpt") == 0 ? P_SCTPT
				             : strcmp(s, "ssh") == 0 ? P_SSH
				             : strcmp(s, "shadowsocks") == 0 ? P_SS
				             : strcmp(s, "direct") == 0 ? P_DIRECT : 0;

				if (bit == 0 || (t->peers & bit))
					return snprintf(err, el, "peers: each of sctpt, ssh, shadowsocks, "
					                "direct at most once"), -1;
				t->peers |= bit;
			}
		} else if (strcmp(key, "loss") == 0) {
			if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 0.5)
				return snprintf(err, el, "loss: a probability 0..0.5"), -1;
			t->loss = json_number_value(v);
		} else if (strcmp(key, "delay_ms") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 5000)
				return snprintf(err, el, "delay_ms: 0..5000 (one way)"), -1;
			t->delay_ms = (unsigned)json_integer_value(v);
		} else if (strcmp(key, "seed") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0)
				return snprintf(err, el, "seed: an integer >= 0"), -1;
			t->seed = (uint64_t)json_integer_value(v);
		} else {
			return snprintf(err, el, "unknown key '%.32s' (peers, loss, delay_ms, seed)",
			                key), -1;
		}
	}
	return 0;
}

static int tools_present(unsigned peers, char *err, size_t el)
{
	static const struct { unsigned bit; const char *peer, *tool; } need[] = {
		{ P_SSH, "ssh", "/usr/sbin/sshd" }, { P_SSH, "ssh", "ssh" },
		{ P_SSH, "ssh", "ssh-keygen" }, { P_SS, "shadowsocks", "ss-server" },
		{ P_SS, "shadowsocks", "ss-local" },
	};

	if (find_in_path("ip") == NULL)
		return snprintf(err, el, "'ip' (iproute2) is not installed"), -1;
	if ((peers & P_SCTPT) && access(T.sctpt_bin, X_OK) != 0)
		return snprintf(err, el, "peer sctpt: no sctpt binary at %s (give --sctpt-bin)",
		                T.sctpt_bin), -1;
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if ((peers & need[i].bit) && find_in_path(need[i].tool) == NULL)
			return snprintf(err, el, "peer %s needs %s, which is not installed",
			                need[i].peer, need[i].tool), -1;
	return 0;
}

/* POST /api/testbeds: an HTTP status; *out the testbed (201) or err. */
int tb_create(json_t *spec, json_t **out, char *err, size_t el)
{
	struct testbed *t = NULL;
	char tmpl[] = "/tmp/sctpt-lab-tb-XXXXXX";
	int slot = -1;

	if (geteuid() != 0 || T.self_ns < 0)
		return snprintf(err, el, "a testbed needs root (network namespaces, TUN devices): "
		                "run the controller as root"), 403;
	for (int i = 0; i < TB_MAX; i++)
		if (!T.tb[i].used) {
			slot = i;
			break;
		}
	if (slot < 0)
		return snprintf(err, el, "at most %d testbeds (DELETE one first)", TB_MAX), 409;
	t = &T.tb[slot];
	memset(t, 0, sizeof(*t));
	if (parse_spec(spec, t, err, el) < 0)
		return 400;
	if (tools_present(t->peers, err, el) < 0)
		return 400;
	if (mkdtemp(tmpl) == NULL)
		return snprintf(err, el, "mkdtemp: %s", strerror(errno)), 500;
	t->used = 1;
	snprintf(t->dir, sizeof(t->dir), "%s", tmpl);
	snprintf(t->id, sizeof(t->id), "tb%u", ++T.next_id % 100000);
	snprintf(t->ns[0], sizeof(t->ns[0]), NS_PREFIX "%d-tb%u-a", (int)getpid(),
	         T.next_id % 100000);
	snprintf(t->ns[1], sizeof(t->ns[1]), NS_PREFIX "%d-tb%u-b", (int)getpid(),
	         T.next_id % 100000);
	t->created = ctl_now_s();
	t->state = TB_STARTING;
	record_save();
	if (tb_prepare(t, err, el) < 0) {
		tb_teardown(t);
		return 500;
	}
	ctl_event("testbed %s created: namespaces %s and %s, %u processes to start", t->id,
	          t->ns[0], t->ns[1], t->nsteps);
	tb_advance(t);
	*out = tb_json(slot);
	return 201;
}

void tb_delete(int i)
{
	char id[8];

	snprintf(id, sizeof(id), "%s", T.tb[i].id);
	tb_teardown(&T.tb[i]);
	ctl_event("testbed %s deleted: its processes stopped, its namespaces removed", id);
}
