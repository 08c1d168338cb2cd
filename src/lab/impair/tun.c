/*
 * IP-level mode: two TUN devices, each created inside its own network
 * namespace, joined through the engine.  IP packets the kernel of
 * namespace end[0] routes into its TUN are impaired in direction c2s and
 * written into end[1]'s TUN, and the reverse for s2c, so any protocol
 * (TCP, UDP, ICMP) between the namespaces sees the same loss, delay,
 * duplication and reordering.  The devices vanish when impair exits.
 *
 * A TUN is created in a namespace by entering it (setns) just to open
 * /dev/net/tun, then coming back; addresses and the link state are set
 * with `ip -n NS ...` at start.
 */
#include "lab/impair/impair_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <event2/event.h>

#include "util/log.h"

#define TUN_BUDGET 256
#define TUN_MAX_PKT 65536

struct impair_tun {
	struct event_base *base;
	struct impair_engine *e;
	struct impair_tun_config cfg;
	int fd[2];
	struct event *ev[2];
	uint8_t buf[TUN_MAX_PKT];
};

static int ns_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= IMPAIR_NS_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '_' || ch == '.'))
			return 0;
	}
	return 1;
}

int impair_tun_parse(const char *s, struct impair_tun_end *out, char *err, size_t errlen)
{
	const char *colon = strchr(s, ':');
	const char *slash;
	size_t nslen;

	memset(out, 0, sizeof(*out));
	if (colon == NULL) {
		snprintf(err, errlen, "--tun wants NAMESPACE:ADDRESS/PREFIX");
		return -1;
	}
	nslen = (size_t)(colon - s);
	if (nslen == 0 || nslen >= sizeof(out->ns)) {
		snprintf(err, errlen, "--tun: bad namespace name");
		return -1;
	}
	memcpy(out->ns, s, nslen);
	if (!ns_name_ok(out->ns)) {
		snprintf(err, errlen, "--tun: namespace names use only letters, digits, '-', '_', '.'");
		return -1;
	}
	slash = strchr(colon + 1, '/');
	if (slash == NULL || slash == colon + 1 || slash[1] == '\0' ||
	    strlen(colon + 1) >= sizeof(out->addr) ||
	    strspn(colon + 1, "0123456789abcdefABCDEF:./") != strlen(colon + 1) ||
	    strspn(slash + 1, "0123456789") != strlen(slash + 1)) {
		snprintf(err, errlen, "--tun: want ADDRESS/PREFIX after the namespace, e.g. 10.77.0.1/24");
		return -1;
	}
	strcpy(out->addr, colon + 1);
	return 0;
}

/* Run a command (argv[0] looked up in PATH), wait for it: 0 if it exited 0. */
static int run(char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Open a TUN named dev inside namespace ns (under /var/run/netns). */
static int tun_open_in(const char *ns, const char *dev)
{
	char path[128];
	int self = -1, target = -1, fd = -1, saved;
	struct ifreq ifr;

	snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	target = open(path, O_RDONLY | O_CLOEXEC);
	if (self < 0 || target < 0) {
		log_err("impair: cannot open network namespace %s (%s): %s", ns, path,
		        strerror(errno));
		goto out;
	}
	if (setns(target, CLONE_NEWNET) < 0) {
		log_err("impair: cannot enter network namespace %s: %s", ns, strerror(errno));
		goto out;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		memset(&ifr, 0, sizeof(ifr));
		ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
		if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
			saved = errno;
			close(fd);
			fd = -1;
			errno = saved;
		}
	}
	saved = errno;
	if (setns(self, CLONE_NEWNET) < 0) {
		/* We would go on in the wrong namespace: nothing sane is left to do. */
		log_err("impair: cannot return to the original network namespace: %s",
		        strerror(errno));
		abort();
	}
	if (fd < 0)
		log_err("impair: cannot create TUN %s in namespace %s: %s", dev, ns, strerror(saved));
out:
	if (self >= 0)
		close(self);
	if (target >= 0)
		close(target);
	return fd;
}

static int tun_configure(const struct impair_tun_config *cfg, const struct impair_tun_end *end)
{
	char mtu[16];
	char *addr_argv[] = { "ip", "-n", (char *)end->ns, "addr", "add", (char *)end->addr, "dev",
	                      (char *)cfg->dev, NULL };
	char *up_argv[] = { "ip", "-n", (char *)end->ns, "link", "set", (char *)cfg->dev, "mtu",
	                    mtu, "up", NULL };

	snprintf(mtu, sizeof(mtu), "%u", cfg->mtu);
	if (run(addr_argv) < 0 || run(up_argv) < 0) {
		log_err("impair: 'ip -n %s' could not configure %s %s", end->ns, cfg->dev, end->addr);
		return -1;
	}
	return 0;
}

/*
 * The flow of an IP packet, for the rules' toxicity: a hash of protocol,
 * the two addresses and (TCP, UDP, SCTP) the two ports, with the two ends
 * in a fixed order so both directions give the same key.  Anything that
 * does not parse is flow 0.
 */
static uint64_t ip_flow(const uint8_t *p, size_t n)
{
	uint8_t a[18], b[18];
	size_t alen, hl;
	uint64_t h = 0;
	int proto;

	if (n >= 20 && (p[0] >> 4) == 4) {
		hl = (size_t)(p[0] & 15) * 4;
		proto = p[9];
		alen = 4;
		memcpy(a, p + 12, 4);
		memcpy(b, p + 16, 4);
	} else if (n >= 40 && (p[0] >> 4) == 6) {
		hl = 40;
		proto = p[6];           /* extension headers: ports are not looked for */
		alen = 16;
		memcpy(a, p + 8, 16);
		memcpy(b, p + 24, 16);
	} else {
		return 0;
	}
	if ((proto == 6 || proto == 17 || proto == 132) && hl >= 20 && n >= hl + 4) {
		memcpy(a + alen, p + hl, 2);
		memcpy(b + alen, p + hl + 2, 2);
	} else {
		memset(a + alen, 0, 2);
		memset(b + alen, 0, 2);
	}
	alen += 2;
	if (memcmp(a, b, alen) > 0) {
		uint8_t t[18];

		memcpy(t, a, alen);
		memcpy(a, b, alen);
		memcpy(b, t, alen);
	}
	h = impair_mix64((uint64_t)proto);
	for (size_t i = 0; i < alen; i++)
		h = impair_mix64(h ^ a[i]) ^ b[i];
	return impair_mix64(h);
}

static void tun_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct impair_tun *t = arg;
	int dir = fd == t->fd[0] ? IMPAIR_C2S : IMPAIR_S2C;

	for (int i = 0; i < TUN_BUDGET; i++) {
		ssize_t n = read(fd, t->buf, sizeof(t->buf));

		if (n <= 0)
			return;
		impair_engine_submit(t->e, dir, 0, 0, ip_flow(t->buf, (size_t)n), t->buf, (size_t)n);
	}
}

static int tun_emit(void *ctx, int dir, uint32_t sink, uint32_t gen, const uint8_t *p, size_t n)
{
	struct impair_tun *t = ctx;
	int fd = t->fd[dir == IMPAIR_C2S ? 1 : 0];

	return write(fd, p, n) == (ssize_t)n ? 0 : -1;
}

struct impair_tun *impair_tun_new(struct event_base *base, struct impair_engine *e,
                                  const struct impair_tun_config *cfg)
{
	struct impair_tun *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->base = base;
	t->e = e;
	t->cfg = *cfg;
	t->fd[0] = t->fd[1] = -1;
	for (int i = 0; i < 2; i++) {
		t->fd[i] = tun_open_in(cfg->end[i].ns, cfg->dev);
		if (t->fd[i] < 0 || tun_configure(cfg, &cfg->end[i]) < 0)
			goto fail;
		t->ev[i] = event_new(base, t->fd[i], EV_READ | EV_PERSIST, tun_read_cb, t);
		if (t->ev[i] == NULL || event_add(t->ev[i], NULL) < 0)
			goto fail;
	}
	impair_engine_set_emit(e, tun_emit, t);
	return t;
fail:
	impair_tun_free(t);
	return NULL;
}

void impair_tun_free(struct impair_tun *t)
{
	if (t == NULL)
		return;
	for (int i = 0; i < 2; i++) {
		if (t->ev[i] != NULL)
			event_free(t->ev[i]);
		if (t->fd[i] >= 0)
			close(t->fd[i]);
	}
	free(t);
}
