/*
 * One HTTP request from a lab tool to another (the controller polling and
 * driving its nodes).  A connection per request, freed just after its
 * callback (not from inside it, which evhttp does not allow); the answer is bounded and given to the callback as
 * text.  Numeric addresses only: no DNS, nothing to rebind.
 */
#include "lab/http/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "util/netaddr.h"

struct call {
	lab_http_done done;
	void *arg;
	size_t max_body;
	struct evhttp_connection *conn;
	struct event *reap;                /* frees conn after call_cb has returned */
	int finished;                      /* done was called */
	struct call *prev, *next;          /* every call not yet reaped */
};

static struct call *inflight;

static void unlink_call(struct call *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		inflight = c->next;
	if (c->next)
		c->next->prev = c->prev;
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;

	unlink_call(c);
	evhttp_connection_free(c->conn);
	event_free(c->reap);
	free(c);
}

/* The connection cannot be freed from inside its own callback: later. */
static void finish(struct call *c, int status, const char *body, size_t len)
{
	struct timeval now = { 0, 0 };

	c->finished = 1;
	c->done(status, body, len, c->arg);
	evtimer_add(c->reap, &now);
}

static void call_cb(struct evhttp_request *req, void *arg)
{
	struct call *c = arg;
	struct evbuffer *in;
	size_t n;
	char *text;

	if (req == NULL || evhttp_request_get_response_code(req) == 0) {
		finish(c, -1, "no answer (connection refused, reset or timed out)", 51);
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	n = evbuffer_get_length(in);
	if (n > c->max_body) {
		finish(c, -1, "answer too large", 16);
		return;
	}
	text = malloc(n + 1);
	if (text == NULL) {
		finish(c, -1, "out of memory", 13);
		return;
	}
	evbuffer_copyout(in, text, n);
	text[n] = '\0';
	finish(c, evhttp_request_get_response_code(req), text, n);
	free(text);
}

int lab_http_call(struct event_base *base, const char *url, enum evhttp_cmd_type method,
                  const char *json_body, const char *token, int timeout_s, size_t max_body,
                  lab_http_done done, void *arg, char *err, size_t errlen)
{
	char host[NETADDR_HOST_MAX], path[512], hosthdr[NETADDR_HOST_MAX + 16];
	struct evhttp_connection *conn;
	struct evhttp_request *req;
	struct evkeyvalq *h;
	struct call *c;
	uint16_t port;

	if (lab_http_parse_url(url, host, sizeof(host), &port, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "not an http://NUMERIC-ADDR:PORT/PATH URL");
		return -1;
	}
	if (path[0] == '\0')
		strcpy(path, "/");
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->done = done;
	c->arg = arg;
	c->max_body = max_body;
	c->reap = evtimer_new(base, reap_cb, c);
	conn = c->reap ? evhttp_connection_base_new(base, NULL, host, port) : NULL;
	if (conn == NULL) {
		if (c->reap)
			event_free(c->reap);
		free(c);
		snprintf(err, errlen, "cannot create a connection");
		return -1;
	}
	evhttp_connection_set_timeout(conn, timeout_s);
	evhttp_connection_set_retries(conn, 0);
	evhttp_connection_set_max_body_size(conn, (ev_ssize_t)max_body + 1);
	req = evhttp_request_new(call_cb, c);
	if (req == NULL) {
		evhttp_connection_free(conn);
		event_free(c->reap);
		free(c);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	h = evhttp_request_get_output_headers(req);
	if (strchr(host, ':') != NULL)
		snprintf(hosthdr, sizeof(hosthdr), "[%s]:%u", host, port);
	else
		snprintf(hosthdr, sizeof(hosthdr), "%s:%u", host, port);
	evhttp_add_header(h, "Host", hosthdr);
	evhttp_add_header(h, "Connection", "close");
	if (token != NULL && token[0] != '\0') {
		char auth[300];

		snprintf(auth, sizeof(auth), "Bearer %s", token);
		evhttp_add_header(h, "Authorization", auth);
	}
	if (json_body != NULL) {
		evhttp_add_header(h, "Content-Type", "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(req), json_body, strlen(json_body));
	}
	if (evhttp_make_request(conn, req, method, path) < 0) {
		/* evhttp frees req on failure; call_cb is not run. */
		evhttp_connection_free(conn);
		event_free(c->reap);
		free(c);
		snprintf(err, errlen, "cannot send the request");
		return -1;
	}
	c->conn = conn;
	c->next = inflight;
	if (inflight)
		inflight->prev = c;
	inflight = c;
	return 0;
}

void lab_http_cancel_all(void)
{
	while (inflight != NULL) {
		struct call *c = inflight;

		unlink_call(c);
		/* Frees a request still pending without calling call_cb. */
		evhttp_connection_free(c->conn);
		event_free(c->reap);
		if (!c->finished)
			c->done(LAB_HTTP_CANCELLED, "cancelled", 9, c->arg);
		free(c);
	}
}
