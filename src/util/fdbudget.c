/*
 * File-descriptor budget and accept backoff; see fdbudget.h.
 */
#include "util/fdbudget.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "util/clock.h"

#define FD_BUDGET_RESCAN_MS 1000     /* a fresh count at least this often */
#define FD_BUDGET_NEAR_MS 50         /* near the limit, at most this often */

static struct {
	unsigned long used;          /* at the last scan, plus what was taken since */
	unsigned long limit;
	uint64_t scanned_ms;
	int scanned;
	int no_proc;                 /* /proc/self/fd cannot be read at all */
} fdb;

/* Count /proc/self/fd.  0, or -1 (EMFILE counts as "full", see caller). */
static int fd_budget_scan(void)
{
	struct rlimit rl;
	struct dirent *de;
	unsigned long n = 0;
	DIR *d;

	fdb.scanned_ms = clock_now_ms();
	fdb.scanned = 1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		fdb.limit = rl.rlim_cur == RLIM_INFINITY ? (unsigned long)-1 :
		            (unsigned long)rl.rlim_cur;
	d = opendir("/proc/self/fd");
	if (d == NULL) {
		if (errno == EMFILE || errno == ENFILE) {
			fdb.used = fdb.limit;   /* not even one to spare */
			return -1;
		}
		fdb.no_proc = 1;
		return -1;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	fdb.used = n > 0 ? n - 1 : 0;   /* not the directory's own descriptor */
	return 0;
}

static int fd_budget_fits(unsigned need, unsigned reserve)
{
	return fdb.limit > reserve && fdb.used + need <= fdb.limit - reserve;
}

int fd_budget_take(unsigned need, unsigned reserve)
{
	uint64_t age;

	if (fdb.no_proc)
		return 1;
	age = fdb.scanned ? clock_now_ms() - fdb.scanned_ms : UINT64_MAX;
	if (age >= FD_BUDGET_RESCAN_MS ||
	    (!fd_budget_fits(need, reserve) && age >= FD_BUDGET_NEAR_MS))
		(void)fd_budget_scan();
	if (fdb.no_proc)
		return 1;
	if (!fd_budget_fits(need, reserve))
		return 0;
	fdb.used += need;
	return 1;
}

void fd_budget_release(unsigned n)
{
	fdb.used = fdb.used > n ? fdb.used - n : 0;
}

void fd_budget_opened(unsigned n)
{
	fdb.used += n;
}

unsigned long fd_budget_in_use(void)
{
	return fdb.used;
}

unsigned long fd_budget_limit(void)
{
	return fdb.limit;
}

/* ---------- accept backoff ---------- */

static void accept_pause_resume(evutil_socket_t fd, short what, void *arg)
{
	struct accept_pause *ap = arg;

	(void)evconnlistener_enable(ap->lev);
}

int accept_pause_init(struct accept_pause *ap, struct event_base *base,
                      struct evconnlistener *lev, struct log_ratelimit *rl, const char *prefix)
{
	memset(ap, 0, sizeof(*ap));
	ap->lev = lev;
	ap->rl = rl;
	ap->prefix = prefix;
	ap->ev = evtimer_new(base, accept_pause_resume, ap);
	return ap->ev != NULL ? 0 : -1;
}

void accept_pause_error(struct accept_pause *ap, int err)
{
	struct timeval tv;

	if (ap->ms == 0)
		ap->ms = ACCEPT_PAUSE_MIN_MS;
	else if (ap->ms < ACCEPT_PAUSE_MAX_MS)
		ap->ms = ap->ms * 2 > ACCEPT_PAUSE_MAX_MS ? ACCEPT_PAUSE_MAX_MS : ap->ms * 2;
	tv.tv_sec = ap->ms / 1000;
	tv.tv_usec = (ap->ms % 1000) * 1000;
	log_ratelimited(ap->rl, LOG_LEVEL_WARN, "%saccept failed: %s; pausing new connections "
	                "for %u ms (%lu of %lu descriptors open)", ap->prefix,
	                evutil_socket_error_to_string(err), ap->ms, fd_budget_in_use(),
	                fd_budget_limit());
	/*
	 * Without the timer the listener would stay off for good; a paused
	 * listener that cannot be resumed is worse than one more try now.
	 */
	if (ap->ev == NULL || evconnlistener_disable(ap->lev) < 0)
		return;
	if (evtimer_add(ap->ev, &tv) < 0)
		(void)evconnlistener_enable(ap->lev);
}

void accept_pause_ok(struct accept_pause *ap)
{
	ap->ms = 0;
}

void accept_pause_clear(struct accept_pause *ap)
{
	if (ap->ev != NULL)
		event_free(ap->ev);
	ap->ev = NULL;
}
