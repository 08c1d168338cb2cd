/*
 * Command-line helpers shared by both binaries (sctpt and sctpt-lab):
 * strict number parsing, the -v / -q log level, and name resolution at
 * startup.  Nothing here runs once the event loop does.
 */
#ifndef SCTPT_UTIL_OPT_H
#define SCTPT_UTIL_OPT_H

#include <stdint.h>
#include <sys/socket.h>

/* A decimal number in [min, max], nothing else (no sign, no suffix).  0 or -1. */
int opt_parse_uint(const char *s, unsigned long min, unsigned long max,
                   unsigned long *out);
/* Apply -v / -q counts to the log level (-vvv also logs addresses). */
void opt_set_verbosity(int verbose, int quiet);
/* Resolve "host" (blocking: startup only) into a sockaddr.  0 or -1 (logged). */
int opt_resolve(const char *host, uint16_t port, struct sockaddr_storage *ss,
                socklen_t *len);

#endif
