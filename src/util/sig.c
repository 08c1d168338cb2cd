/*
 * Exit signals through the event loop; see sig.h.
 */
#include "util/sig.h"

#include <signal.h>
#include <stddef.h>
#include <event2/event.h>

#include "util/fault.h"

static const int sigs[] = { SIGINT, SIGTERM };
#define NSIGS (sizeof(sigs) / sizeof(sigs[0]))

struct sig_ctx {
	void (*fn)(int sig, void *arg);
	void *arg;
	struct event *ev[NSIGS];   /* live for the whole run, never freed */
};

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct sig_ctx *ctx = arg;

	ctx->fn((int)sig, ctx->arg);
}

int sig_on_exit(struct event_base *base, void (*fn)(int sig, void *arg), void *arg)
{
	static struct sig_ctx ctx;

	ctx.fn = fn;
	ctx.arg = arg;
	for (size_t i = 0; i < NSIGS; i++) {
		struct event *ev = FAULT("sig_evsignal_new") ? NULL
		                   : evsignal_new(base, sigs[i], signal_cb, &ctx);

		if (ev == NULL)
			return -1;
		if (event_add(ev, NULL) < 0) {
			event_free(ev);
			return -1;
		}
		/* Freed with the process; one of each for the whole run. */
		ctx.ev[i] = ev;
	}
	return 0;
}
