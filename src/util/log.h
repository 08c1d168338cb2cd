/*
 * Logging for sctpt.  Everything goes to stderr (stdout is reserved for the
 * Tor managed-mode protocol).  A sink can be installed so that, later, log
 * lines also reach tor as LOG messages.  Anything the network can trigger
 * must use log_ratelimited() so a hostile peer cannot flood the log.
 *
 * Prefixes: a line about one layer's machinery starts with that layer's
 * name and a colon ("wire: ", "sctp: ", "udp carrier: ", "tcp carrier: ",
 * "impair: "); a line about one stream starts "stream N: ".  Lines an
 * operator acts on (association up, listening on ..., no answer from the
 * server) carry no prefix.  One file keeps to one of these.
 */
#ifndef SCTPT_UTIL_LOG_H
#define SCTPT_UTIL_LOG_H

#include <stdarg.h>
#include <stdio.h>

enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO,
	LOG_LEVEL_NOTICE,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERR,
	LOG_LEVEL_NONE
};

/* Set the minimum level that is written. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Where timestamped lines go: stderr by default, NULL for nowhere. */
void log_set_output(FILE *f);
/* Optional extra sink (e.g. tor LOG lines); NULL removes it. */
void log_set_sink(void (*sink)(enum log_level, const char *msg));

void log_msg(enum log_level level, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(...)  log_msg(LOG_LEVEL_DEBUG, __func__, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_LEVEL_INFO, NULL, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LEVEL_NOTICE, NULL, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_LEVEL_WARN, NULL, __VA_ARGS__)
#define log_err(...)    log_msg(LOG_LEVEL_ERR, NULL, __VA_ARGS__)

/*
 * A token bucket for log lines: at most `burst` lines, refilled at one line
 * per `interval` seconds.  Suppressed lines are counted and reported when the
 * next line gets through.
 */
struct log_ratelimit {
	double interval;
	int burst;
	double tokens;
	double last;
	unsigned long suppressed;
};
#define LOG_RATELIMIT_INIT(interval, burst) { (interval), (burst), (burst), 0, 0 }

void log_ratelimited(struct log_ratelimit *rl, enum log_level level,
                     const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Safe logging (on by default, off with -vvv): when on, client and
 * destination addresses must not appear in logs; use log_addr() for them.
 */
int log_safe_addresses(void);
/* s itself when safe logging is off, else "[scrubbed]". */
const char *log_addr(const char *s);
void log_set_unsafe(int unsafe);

#endif
