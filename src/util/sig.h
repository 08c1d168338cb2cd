/*
 * SIGINT and SIGTERM delivered through the event loop, so that a handler
 * may do anything a callback may (no async-signal-safety limits).
 */
#ifndef SCTPT_UTIL_SIG_H
#define SCTPT_UTIL_SIG_H

struct event_base;

/* Call fn(sig, arg) from base's loop on SIGINT and SIGTERM.  0 or -1.
 * One registration per process: a second call replaces fn and arg. */
int sig_on_exit(struct event_base *base, void (*fn)(int sig, void *arg), void *arg);

#endif
