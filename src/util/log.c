/*
 * Logging implementation: timestamped lines on stderr, an optional sink, and
 * token-bucket rate limiting for anything a remote peer can trigger.
 */
#include "util/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level min_level = LOG_LEVEL_NOTICE;
static void (*extra_sink)(enum log_level, const char *);
static int unsafe_addresses;
static FILE *out_file;
static int out_set;

static const char *const level_names[] = {
	"debug", "info", "notice", "warn", "err", "none"
};

void log_set_level(enum log_level level) { min_level = level; }
enum log_level log_get_level(void) { return min_level; }
void log_set_sink(void (*sink)(enum log_level, const char *)) { extra_sink = sink; }
void log_set_output(FILE *f) { out_file = f; out_set = 1; }
int log_safe_addresses(void) { return !unsafe_addresses; }
void log_set_unsafe(int unsafe) { unsafe_addresses = unsafe; }
const char *log_addr(const char *s) { return unsafe_addresses ? s : "[scrubbed]"; }

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void log_emit(enum log_level level, const char *func, const char *fmt,
                     va_list ap)
{
	char msg[1024];
	char stamp[32];
	size_t off = 0;
	struct timespec ts;
	struct tm tm;

	if (func != NULL)
		off = (size_t)snprintf(msg, sizeof(msg), "%s(): ", func);
	if (off >= sizeof(msg))
		off = 0;
	vsnprintf(msg + off, sizeof(msg) - off, fmt, ap);
	/* Never let a peer-supplied byte break the line structure. */
	for (char *p = msg; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = '?';

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	if (!out_set || out_file != NULL) {
		FILE *f = out_set ? out_file : stderr;

		fprintf(f, "%s.%03ld [%s] %s\n", stamp, ts.tv_nsec / 1000000L,
		        level_names[level], msg);
		if (out_set)
			fflush(f);
	}
	if (extra_sink != NULL)
		extra_sink(level, msg);
}

void log_msg(enum log_level level, const char *func, const char *fmt, ...)
{
	va_list ap;

	if (level < min_level || level >= LOG_LEVEL_NONE)
		return;
	va_start(ap, fmt);
	log_emit(level, func, fmt, ap);
	va_end(ap);
}

void log_ratelimited(struct log_ratelimit *rl, enum log_level level,
                     const char *fmt, ...)
{
	va_list ap;
	double now;

	if (level < min_level || level >= LOG_LEVEL_NONE)
		return;
	now = now_seconds();
	if (rl->last > 0 && rl->interval > 0) {
		rl->tokens += (now - rl->last) / rl->interval;
		if (rl->tokens > rl->burst)
			rl->tokens = rl->burst;
	}
	rl->last = now;
	if (rl->tokens < 1.0) {
		rl->suppressed++;
		return;
	}
	rl->tokens -= 1.0;
	if (rl->suppressed > 0) {
		log_msg(level, NULL, "(%lu similar messages suppressed)",
		        rl->suppressed);
		rl->suppressed = 0;
	}
	va_start(ap, fmt);
	log_emit(level, NULL, fmt, ap);
	va_end(ap);
}
