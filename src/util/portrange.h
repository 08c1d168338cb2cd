/*
 * A UDP port range for port hopping (issue 16): "P1-P2" in a --listen or
 * --server URL and in share links.  Strict: decimal, 1..65535, no leading
 * zero, no sign or space, P1 < P2, at most PORTRANGE_MAX ports.
 */
#ifndef SCTPT_UTIL_PORTRANGE_H
#define SCTPT_UTIL_PORTRANGE_H

#include <stddef.h>
#include <stdint.h>

#define PORTRANGE_MAX 1024      /* ports in one range: one socket each on a server */

/* One port (1..65535) from s[0..len).  0 or -1. */
int portrange_parse_port(const char *s, size_t len, uint16_t *port);
/*
 * "P1-P2" from s[0..len): 0 with *lo < *hi and *hi - *lo < PORTRANGE_MAX,
 * or -1 with *err set.
 */
int portrange_parse(const char *s, size_t len, uint16_t *lo, uint16_t *hi, const char **err);

#endif
