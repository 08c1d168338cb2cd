/* Port ranges for port hopping; see portrange.h. */
#include "util/portrange.h"

#include <string.h>

int portrange_parse_port(const char *s, size_t len, uint16_t *port)
{
	unsigned long v = 0;

	if (len == 0 || len > 5 || s[0] == '0')
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int portrange_parse(const char *s, size_t len, uint16_t *lo, uint16_t *hi, const char **err)
{
	const char *dash = memchr(s, '-', len);
	uint16_t a, b;

	if (dash == NULL ||
	    portrange_parse_port(s, (size_t)(dash - s), &a) < 0 ||
	    portrange_parse_port(dash + 1, len - (size_t)(dash - s) - 1, &b) < 0) {
		*err = "want a port range P1-P2 of ports 1..65535";
		return -1;
	}
	if (a >= b) {
		*err = "a port range must go up (P1 < P2)";
		return -1;
	}
	if ((unsigned)b - a + 1 > PORTRANGE_MAX) {
		*err = "a port range holds at most 1024 ports";
		return -1;
	}
	*lo = a;
	*hi = b;
	return 0;
}
