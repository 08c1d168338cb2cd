/*
 * File descriptors are a resource a remote peer can exhaust: every SOCKS
 * connection, every stream's outgoing connection and every TCP-carrier
 * connection holds one.  Whoever is about to open one for a peer asks the
 * budget first, and refuses cleanly (a SOCKS error, a stream RST) while a
 * reserve below RLIMIT_NOFILE is still free for the process itself
 * (listeners, DNS, the replay file, reconnecting).
 *
 * The count comes from /proc/self/fd, rescanned at most every
 * FD_BUDGET_RESCAN_MS (more often only near the limit); descriptors taken
 * since the last scan are added, closes are seen at the next scan, so the
 * estimate errs on the safe side.  Without /proc the budget always says yes
 * and only the accept backoff below protects the process.
 *
 * accept() failing with EMFILE/ENFILE leaves the pending connection in the
 * backlog, so the listening socket stays readable: retrying at once would
 * spin.  struct accept_pause disables the listener for a growing interval
 * (50 ms doubling to 2 s, reset by the next successful accept), re-enables
 * it from a timer, and logs through the caller's rate limit.
 */
#ifndef SCTPT_UTIL_FDBUDGET_H
#define SCTPT_UTIL_FDBUDGET_H

#include <stdint.h>

#include "util/log.h"

struct event;
struct event_base;
struct evconnlistener;

/* Descriptors kept free for the process itself. */
#define FD_BUDGET_RESERVE 32

/*
 * Whether `need` more descriptors leave at least `reserve` free below the
 * open-file limit; if so they are counted as taken.  1 or 0.
 */
int fd_budget_take(unsigned need, unsigned reserve);
/*
 * n descriptors this process counted were closed: the estimate drops now
 * rather than at the next scan (a close libevent defers by a loop turn is
 * covered by the reserve).
 */
void fd_budget_release(unsigned n);
/* n descriptors were opened without room in the budget (let in anyway). */
void fd_budget_opened(unsigned n);
/* Descriptors open (as last estimated) and the soft limit; for log lines. */
unsigned long fd_budget_in_use(void);
unsigned long fd_budget_limit(void);

#define ACCEPT_PAUSE_MIN_MS 50
#define ACCEPT_PAUSE_MAX_MS 2000

struct accept_pause {
	struct evconnlistener *lev;
	struct event *ev;
	unsigned ms;                   /* the last pause; 0 after a good accept */
	struct log_ratelimit *rl;
	const char *prefix;            /* log prefix, e.g. "tcp carrier: " */
};

/* 0, or -1 if the timer cannot be made (then errors still never spin: see .c). */
int accept_pause_init(struct accept_pause *ap, struct event_base *base,
                      struct evconnlistener *lev, struct log_ratelimit *rl, const char *prefix);
/* accept() failed with err: pause the listener, log (rate-limited). */
void accept_pause_error(struct accept_pause *ap, int err);
/* An accept succeeded: the next pause starts short again. */
void accept_pause_ok(struct accept_pause *ap);
void accept_pause_clear(struct accept_pause *ap);

#endif
