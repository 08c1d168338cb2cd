/*
 * Graceful shutdown, one copy for the client, the server and managed mode;
 * see app.h.  The grace period is measured on the monotonic clock so that
 * a clock step during shutdown neither cuts it short nor stretches it.
 */
#include "app/app.h"

#include <string.h>
#include <event2/event.h>

#include "util/clock.h"
#include "util/fault.h"
#include "util/log.h"

#define TICK_MS 100

void app_shutdown_init(struct app_shutdown *sd, struct event_base *base,
                       unsigned (*busy)(void *arg), void (*stop)(void *arg),
                       void (*close_all)(void *arg), void *arg)
{
	memset(sd, 0, sizeof(*sd));
	sd->base = base;
	sd->busy = busy;
	sd->stop = stop;
	sd->close_all = close_all;
	sd->arg = arg;
}

static void exit_soon(struct app_shutdown *sd)
{
	/* Let the deferred closes (ABORT to the peer) run, then stop. */
	struct timeval tv = { 0, TICK_MS * 1000 };

	event_base_loopexit(sd->base, &tv);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct app_shutdown *sd = arg;

	if (sd->busy(sd->arg) > 0 && clock_ms_since(&sd->start) < APP_SHUTDOWN_GRACE_MS)
		return;
	sd->close_all(sd->arg);
	if (sd->tick != NULL)
		event_del(sd->tick);
	exit_soon(sd);
}

int app_shutdown_begin(struct app_shutdown *sd, const char *why)
{
	struct timeval tv = { 0, TICK_MS * 1000 };

	if (sd->started) {
		event_base_loopexit(sd->base, NULL);
		return 1;
	}
	log_notice("%s: closing (waiting up to %d s for open connections)",
	           why, APP_SHUTDOWN_GRACE_MS / 1000);
	sd->started = 1;
	sd->stop(sd->arg);
	sd->start = clock_now();
	sd->tick = FAULT("shutdown_event_new") ? NULL
	                                       : event_new(sd->base, -1, EV_PERSIST, tick_cb, sd);
	if (sd->tick == NULL || event_add(sd->tick, &tv) < 0) {
		/* Without the timer nothing would ever end the grace period. */
		log_warn("cannot time the shutdown; closing now");
		sd->close_all(sd->arg);
		exit_soon(sd);
		return 0;
	}
	tick_cb(-1, 0, sd);
	return 0;
}

int app_shutdown_started(const struct app_shutdown *sd)
{
	return sd->started;
}

void app_shutdown_release(struct app_shutdown *sd)
{
	if (sd->tick != NULL)
		event_free(sd->tick);
	sd->tick = NULL;
}
