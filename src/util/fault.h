/*
 * Fault injection for tests: make a chosen allocation or libevent call fail
 * so that out-of-memory and resource-exhaustion paths run, not only read.
 *
 * Compiled in only when meson is set up with -Dfault_injection=true (the
 * sanitizer build of ./scripts/test.sh); elsewhere FAULT() is the constant 0
 * and costs nothing.  Call sites name themselves with a short string:
 *
 *     ev = FAULT("tcp_evtimer_new") ? NULL : evtimer_new(base, cb, arg);
 *
 * Names start with the role of their file (tcp_, wire_, mux_, ...) so that
 * one name fails exactly one place.  A site fails when armed, either from a test (fault_arm) or, for a whole
 * process, from the environment:
 *
 *     SCTPT_FAULT=site:nth[:count][,site:nth[:count]...]
 *
 * fails the nth call of that site (1 = the first) and the count - 1 calls
 * after it (count 0 = every call from the nth on; default 1).
 */
#ifndef SCTPT_UTIL_FAULT_H
#define SCTPT_UTIL_FAULT_H

#ifdef SCTPT_FAULT_INJECTION
#define FAULT(site) fault_fire(site)
#define FAULT_INJECTION_BUILT 1
#else
#define FAULT(site) 0
#define FAULT_INJECTION_BUILT 0
#endif

/* Always declared so that tests compile in every build; without
 * -Dfault_injection they do nothing and fault_fire returns 0. */
int fault_fire(const char *site);
/* Arm site: fail call number nth from now (1 = the next), count times (0 = forever). */
void fault_arm(const char *site, unsigned nth, unsigned count);
/* Disarm everything (and forget SCTPT_FAULT). */
void fault_reset(void);
/* How many times site has failed since the last reset. */
unsigned fault_fired(const char *site);

#endif
